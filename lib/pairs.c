/*
** pairs: a parallel corpus, its vocabularies and its length-bucketed
** batches (see nlp/pairs.h).
*/
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "nlp/alloc.h"
#include "nlp/crc32.h"
#include "nlp/lines.h"
#include "nlp/pairs.h"
#include "nlp/train.h"
#include "nlp/utf8.h"

/* ==== Reading ============================================================ */

static int is_blank(unsigned char c, int tab_is_space)
{
    return c == ' ' || c == '\v' || c == '\f' || c == '\r' || (tab_is_space && c == '\t');
}

/* The growable arrays behind a corpus being read. */
typedef struct reader {
    nlp_pairs *p;
    size_t cap_pair, cap_line, cap_src, cap_tgt;
} reader;

/* 1 when s[0..len) holds a token. */
static int has_token(const char *s, size_t len, int tab_is_space)
{
    for (size_t i = 0; i < len; i++)
        if (!is_blank((unsigned char)s[i], tab_is_space))
            return 1;
    return 0;
}

/* Appends the tokens of one side to *tok (its count in *k), adding them to
** words; the side's length goes to *n. */
static int add_side(nlp_vocab *words, int **tok, size_t *cap, size_t *k, const char *s,
                    size_t len, int tab_is_space, int *n, const char *what, const char *path,
                    long line, nlp_error *e)
{
    size_t i = 0, first = *k;
    while (i < len) {
        while (i < len && is_blank((unsigned char)s[i], tab_is_space))
            i++;
        if (i == len)
            break;
        size_t st = i;
        while (i < len && !is_blank((unsigned char)s[i], tab_is_space))
            i++;
        if (*k - first >= NLP_PAIRS_MAX_TOKENS)
            return nlp_error_set(e, NLP_ERANGE, path, line, "%s side has more than %d tokens",
                                 what, NLP_PAIRS_MAX_TOKENS);
        if (*k >= (size_t)INT_MAX)
            return nlp_error_set(e, NLP_ERANGE, path, line, "more than %d tokens in all",
                                 INT_MAX);
        if (nlp_grow((void **)tok, cap, *k + 1, sizeof **tok, 16) != NLP_OK)
            return nlp_error_set(e, NLP_ENOMEM, path, line, NULL);
        long id = nlp_vocab_add(words, s + st, i - st);
        if (id < 0)
            return nlp_error_set(e, (int)id, path, line, NULL);
        if (id >= INT_MAX - 1)
            return nlp_error_set(e, NLP_ERANGE, path, line, "too many distinct %s words", what);
        (*tok)[(*k)++] = (int)id;
    }
    if (*k == first)
        return nlp_error_set(e, NLP_EFORMAT, path, line, "empty %s side", what);
    *n = (int)(*k - first);
    return NLP_OK;
}

/* Adds one pair from its two sides (each named by its file in messages). */
static int add_pair(reader *r, const char *src, size_t slen, const char *spath, const char *tgt,
                    size_t tlen, const char *tpath, int tab_is_space, long line, nlp_error *e)
{
    nlp_pairs *p = r->p;
    if (p->n >= LONG_MAX - 1 || (size_t)p->n + 2 > SIZE_MAX / sizeof(size_t))
        return nlp_error_set(e, NLP_ERANGE, spath, line, "too many pairs");
    if (nlp_grow((void **)&p->src_start, &r->cap_pair, (size_t)p->n + 2, sizeof *p->src_start, 16)
            != NLP_OK)
        return nlp_error_set(e, NLP_ENOMEM, spath, line, NULL);
    /* tgt_start grows with src_start: the same capacity (they are two arrays). */
    size_t cap_t = r->cap_pair;
    void *q = nlp_realloc(p->tgt_start, cap_t * sizeof *p->tgt_start);
    if (!q)
        return nlp_error_set(e, NLP_ENOMEM, spath, line, NULL);
    p->tgt_start = q;
    if (nlp_grow((void **)&p->line, &r->cap_line, (size_t)p->n + 1, sizeof *p->line, 16) != NLP_OK)
        return nlp_error_set(e, NLP_ENOMEM, spath, line, NULL);
    size_t ks = p->src_start[p->n], kt = p->tgt_start[p->n];
    int ns, nt;
    int rc = add_side(p->src_words, &p->src, &r->cap_src, &ks, src, slen, tab_is_space, &ns,
                      "source", spath, line, e);
    if (rc == NLP_OK)
        rc = add_side(p->tgt_words, &p->tgt, &r->cap_tgt, &kt, tgt, tlen, tab_is_space, &nt,
                      "target", tpath, line, e);
    if (rc != NLP_OK)
        return rc;
    p->line[p->n] = line;
    p->n++;
    p->src_start[p->n] = ks;
    p->tgt_start[p->n] = kt;
    if (ns > p->max_src)
        p->max_src = ns;
    if (nt > p->max_tgt)
        p->max_tgt = nt;
    return NLP_OK;
}

/* A new, empty corpus with its word tables. */
static int pairs_alloc(nlp_pairs **out, reader *r)
{
    nlp_pairs *p = nlp_calloc(1, sizeof *p);
    *out = p;
    if (!p)
        return NLP_ENOMEM;
    memset(r, 0, sizeof *r);
    r->p = p;
    (void)nlp_vocab_new(&p->src_words); /* NULL on failure, checked below */
    (void)nlp_vocab_new(&p->tgt_words);
    p->src_start = nlp_calloc(1, sizeof *p->src_start);
    p->tgt_start = nlp_calloc(1, sizeof *p->tgt_start);
    r->cap_pair = 1;
    if (!p->src_words || !p->tgt_words || !p->src_start || !p->tgt_start)
        return NLP_ENOMEM;
    return NLP_OK;
}

/* The checks every line of either format gets. */
static int check_text(const char *s, size_t len, const char *path, long line, nlp_error *e)
{
    if (!nlp_utf8_is_valid(s, len)) {
        size_t at = nlp_utf8_valid_prefix(s, len);
        return nlp_error_set(e, NLP_EUTF8, path, line, "invalid UTF-8 at byte %zu", at + 1);
    }
    if (memchr(s, '\0', len))
        return nlp_error_set(e, NLP_EFORMAT, path, line, "NUL byte in the line");
    return NLP_OK;
}

static int read_error(int got, const char *path, const nlp_lines *lr, nlp_error *e)
{
    return nlp_error_set(e, got, path, nlp_lines_number(lr) + 1,
                         got == NLP_EIO ? "read error" : NULL);
}

int nlp_pairs_read(nlp_pairs **out, FILE *f, const char *path, nlp_error *e)
{
    *out = NULL;
    reader r;
    nlp_pairs *p;
    nlp_lines *lr = NULL;
    int rc = pairs_alloc(&p, &r);
    if (rc == NLP_OK)
        rc = nlp_lines_new(&lr, f, NLP_LINES_STRIP_CR);
    if (rc != NLP_OK) {
        rc = nlp_error_set(e, rc, path, 0, NULL);
        goto done;
    }
    char *s;
    size_t len;
    int got;
    while ((got = nlp_lines_next(lr, &s, &len)) == 1) {
        long line = nlp_lines_number(lr);
        if ((rc = check_text(s, len, path, line, e)) != NLP_OK)
            goto done;
        char *tab = memchr(s, '\t', len);
        if (!tab) {
            if (!has_token(s, len, 0))
                continue; /* a blank line holds no pair */
            rc = nlp_error_set(e, NLP_EFORMAT, path, line,
                               "no TAB between source and target (the format is "
                               "'source<TAB>target')");
            goto done;
        }
        size_t at = (size_t)(tab - s);
        char *tab2 = memchr(tab + 1, '\t', len - at - 1);
        if (tab2) {
            size_t ntab = 0;
            for (size_t i = 0; i < len; i++)
                ntab += s[i] == '\t';
            rc = nlp_error_set(e, NLP_EFORMAT, path, line,
                               "%zu TABs: expected one, between source and target", ntab);
            goto done;
        }
        if ((rc = add_pair(&r, s, at, path, tab + 1, len - at - 1, path, 0, line, e)) != NLP_OK)
            goto done;
    }
    if (got < 0) {
        rc = read_error(got, path, lr, e);
        goto done;
    }
    p->lines = nlp_lines_number(lr);
    if (p->n == 0)
        rc = nlp_error_set(e, NLP_EEMPTY, path, 0, "no sentence pair in the input");
done:
    nlp_lines_free(lr);
    if (rc != NLP_OK) {
        nlp_pairs_free(p);
        return rc;
    }
    *out = p;
    return NLP_OK;
}

int nlp_pairs_read_files(nlp_pairs **out, FILE *src, const char *src_path, FILE *tgt,
                         const char *tgt_path, nlp_error *e)
{
    *out = NULL;
    reader r;
    nlp_pairs *p;
    nlp_lines *ls = NULL, *lt = NULL;
    int rc = pairs_alloc(&p, &r);
    if (rc == NLP_OK)
        rc = nlp_lines_new(&ls, src, NLP_LINES_STRIP_CR);
    if (rc == NLP_OK)
        rc = nlp_lines_new(&lt, tgt, NLP_LINES_STRIP_CR);
    if (rc != NLP_OK) {
        rc = nlp_error_set(e, rc, src_path, 0, NULL);
        goto done;
    }
    for (;;) {
        char *s, *t;
        size_t slen, tlen;
        int gs = nlp_lines_next(ls, &s, &slen);
        if (gs < 0) {
            rc = read_error(gs, src_path, ls, e);
            goto done;
        }
        if (gs == 1 && (rc = check_text(s, slen, src_path, nlp_lines_number(ls), e)) != NLP_OK)
            goto done;
        /* The source line lives in ls's buffer, which reading tgt leaves alone. */
        int gt = nlp_lines_next(lt, &t, &tlen);
        if (gt < 0) {
            rc = read_error(gt, tgt_path, lt, e);
            goto done;
        }
        if (gs == 0 && gt == 0)
            break;
        if (gs != gt) {
            const char *shorter = gs == 0 ? src_path : tgt_path;
            const char *longer = gs == 0 ? tgt_path : src_path;
            long at = (gs == 0 ? nlp_lines_number(ls) : nlp_lines_number(lt)) + 1;
            rc = nlp_error_set(e, NLP_EFORMAT, shorter, at,
                               "ends here, but %s has more lines (the files must be "
                               "line-aligned)", longer);
            goto done;
        }
        long line = nlp_lines_number(ls);
        if ((rc = check_text(t, tlen, tgt_path, line, e)) != NLP_OK)
            goto done;
        int hs = has_token(s, slen, 1), ht = has_token(t, tlen, 1);
        if (!hs && !ht)
            continue;
        if (!hs || !ht) {
            rc = nlp_error_set(e, NLP_EFORMAT, hs ? tgt_path : src_path, line,
                               "empty %s side (its line in %s is not)", hs ? "target" : "source",
                               hs ? src_path : tgt_path);
            goto done;
        }
        if ((rc = add_pair(&r, s, slen, src_path, t, tlen, tgt_path, 1, line, e)) != NLP_OK)
            goto done;
    }
    p->lines = nlp_lines_number(ls);
    if (p->n == 0)
        rc = nlp_error_set(e, NLP_EEMPTY, src_path, 0, "no sentence pair in the input");
done:
    nlp_lines_free(ls);
    nlp_lines_free(lt);
    if (rc != NLP_OK) {
        nlp_pairs_free(p);
        return rc;
    }
    *out = p;
    return NLP_OK;
}

void nlp_pairs_free(nlp_pairs *p)
{
    if (!p)
        return;
    nlp_free(p->src_start);
    nlp_free(p->src);
    nlp_free(p->tgt_start);
    nlp_free(p->tgt);
    nlp_free(p->line);
    nlp_vocab_free(p->src_words);
    nlp_vocab_free(p->tgt_words);
    nlp_free(p);
}

int nlp_pairs_src_len(const nlp_pairs *p, long i)
{
    return (int)(p->src_start[i + 1] - p->src_start[i]);
}

int nlp_pairs_tgt_len(const nlp_pairs *p, long i)
{
    return (int)(p->tgt_start[i + 1] - p->tgt_start[i]);
}

/* ==== Vocabularies and encoding ========================================== */

static const char *const special_words[NLP_PAIRS_NSPECIAL] = {
    NLP_PAIRS_PAD_WORD, NLP_PAIRS_BOS_WORD, NLP_PAIRS_EOS_WORD, NLP_PAIRS_UNK_WORD
};

static int is_special(const char *s, size_t len)
{
    for (int i = 0; i < NLP_PAIRS_NSPECIAL; i++)
        if (strlen(special_words[i]) == len && memcmp(special_words[i], s, len) == 0)
            return 1;
    return 0;
}

int nlp_pairs_vocab_build(nlp_vocab **out, const nlp_vocab *counts, long min_count,
                          long max_vocab)
{
    *out = NULL;
    if (min_count < 1 || max_vocab < 0 || (max_vocab > 0 && max_vocab < NLP_PAIRS_NSPECIAL))
        return NLP_EINVAL;
    nlp_vocab *v;
    int rc = nlp_vocab_new(&v);
    if (rc != NLP_OK)
        return rc;
    for (int i = 0; i < NLP_PAIRS_NSPECIAL; i++)
        if (nlp_vocab_add_count(v, special_words[i], strlen(special_words[i]), 0) < 0) {
            rc = NLP_ENOMEM;
            goto fail;
        }
    nlp_vocab_pin(v);
    for (long id = 0, n = nlp_vocab_size(counts); id < n; id++) {
        const char *w = nlp_vocab_word(counts, id);
        size_t len = nlp_vocab_word_len(counts, id);
        int64_t c = nlp_vocab_count(counts, id);
        if (c < min_count || is_special(w, len))
            continue;
        long got = nlp_vocab_add_count(v, w, len, c);
        if (got < 0) {
            rc = (int)got;
            goto fail;
        }
    }
    /* Stable: equal counts keep their order of first appearance. */
    if ((rc = nlp_vocab_sort(v)) != NLP_OK)
        goto fail;
    if (max_vocab > 0 && nlp_vocab_truncate(v, max_vocab) < 0) {
        rc = NLP_ENOMEM;
        goto fail;
    }
    *out = v;
    return NLP_OK;
fail:
    nlp_vocab_free(v);
    return rc;
}

int nlp_pairs_vocab_check(const nlp_vocab *v, nlp_error *e)
{
    if (nlp_vocab_size(v) < NLP_PAIRS_NSPECIAL || nlp_vocab_size(v) > INT_MAX)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "vocabulary of %ld words: not one of a seq2seq model",
                             nlp_vocab_size(v));
    for (int i = 0; i < NLP_PAIRS_NSPECIAL; i++)
        if (nlp_vocab_find_str(v, special_words[i]) != i)
            return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                                 "vocabulary without %s at id %d", special_words[i], i);
    return NLP_OK;
}

int nlp_pairs_word_id(const nlp_vocab *v, const char *s, size_t len)
{
    long id = nlp_vocab_find(v, s, len);
    if (id < NLP_PAIRS_UNK) /* absent (-1), or a special input cannot mean */
        return NLP_PAIRS_UNK;
    return (int)id;
}

/* Maps one side's ids from the table in to the vocabulary v. */
static void encode_side(int *dst, const int *src, size_t n, const nlp_vocab *words,
                        const nlp_vocab *v, size_t *nunk)
{
    for (size_t i = 0; i < n; i++) {
        long w = src[i];
        int id = nlp_pairs_word_id(v, nlp_vocab_word(words, w), nlp_vocab_word_len(words, w));
        if (id == NLP_PAIRS_UNK && nunk)
            (*nunk)++;
        dst[i] = id;
    }
}

int nlp_pairs_encode(nlp_pairs **out, const nlp_pairs *in, const nlp_vocab *src,
                     const nlp_vocab *tgt, size_t *src_unk, size_t *tgt_unk)
{
    *out = NULL;
    if (!in->src_words || !in->tgt_words)
        return NLP_EINVAL;
    nlp_pairs *p = nlp_calloc(1, sizeof *p);
    if (!p)
        return NLP_ENOMEM;
    size_t n1 = (size_t)in->n + 1, ns = in->src_start[in->n], nt = in->tgt_start[in->n];
    p->src_start = nlp_malloc(n1 * sizeof *p->src_start);
    p->tgt_start = nlp_malloc(n1 * sizeof *p->tgt_start);
    p->src = nlp_malloc((ns ? ns : 1) * sizeof *p->src);
    p->tgt = nlp_malloc((nt ? nt : 1) * sizeof *p->tgt);
    p->line = nlp_malloc((in->n ? (size_t)in->n : 1) * sizeof *p->line);
    if (!p->src_start || !p->tgt_start || !p->src || !p->tgt || !p->line) {
        nlp_pairs_free(p);
        return NLP_ENOMEM;
    }
    p->n = in->n;
    p->lines = in->lines;
    p->max_src = in->max_src;
    p->max_tgt = in->max_tgt;
    memcpy(p->src_start, in->src_start, n1 * sizeof *p->src_start);
    memcpy(p->tgt_start, in->tgt_start, n1 * sizeof *p->tgt_start);
    memcpy(p->line, in->line, (size_t)in->n * sizeof *p->line);
    if (src_unk)
        *src_unk = 0;
    if (tgt_unk)
        *tgt_unk = 0;
    encode_side(p->src, in->src, ns, in->src_words, src, src_unk);
    encode_side(p->tgt, in->tgt, nt, in->tgt_words, tgt, tgt_unk);
    *out = p;
    return NLP_OK;
}

uint32_t nlp_pairs_crc(const nlp_pairs *p)
{
    uint32_t crc = 0;
    for (long i = 0; i < p->n; i++) {
        int32_t len[2] = {nlp_pairs_src_len(p, i), nlp_pairs_tgt_len(p, i)};
        crc = nlp_crc32_le32(crc, len, 2);
    }
    crc = nlp_crc32_le32(crc, (const int32_t *)p->src, p->src_start[p->n]);
    return nlp_crc32_le32(crc, (const int32_t *)p->tgt, p->tgt_start[p->n]);
}

int nlp_pairs_tokenize(const nlp_vocab *v, const char *text, size_t len, nlp_pairs_tokens *t,
                       size_t *nunk)
{
    t->n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_blank((unsigned char)text[i], 1))
            i++;
        if (i == len)
            break;
        size_t st = i;
        while (i < len && !is_blank((unsigned char)text[i], 1))
            i++;
        if (t->n >= NLP_PAIRS_MAX_TOKENS)
            return NLP_ERANGE;
        if (t->n == t->cap) {
            int cap = t->cap ? 2 * t->cap : 64;
            if (cap > NLP_PAIRS_MAX_TOKENS)
                cap = NLP_PAIRS_MAX_TOKENS;
            int *id = nlp_realloc(t->id, (size_t)cap * sizeof *id);
            if (!id)
                return NLP_ENOMEM;
            t->id = id;
            size_t *off = nlp_realloc(t->off, (size_t)cap * sizeof *off);
            if (!off)
                return NLP_ENOMEM;
            t->off = off;
            size_t *ln = nlp_realloc(t->len, (size_t)cap * sizeof *ln);
            if (!ln)
                return NLP_ENOMEM;
            t->len = ln;
            t->cap = cap;
        }
        int id = nlp_pairs_word_id(v, text + st, i - st);
        if (id == NLP_PAIRS_UNK && nunk)
            (*nunk)++;
        t->id[t->n] = id;
        t->off[t->n] = st;
        t->len[t->n] = i - st;
        t->n++;
    }
    return NLP_OK;
}

void nlp_pairs_tokens_free(nlp_pairs_tokens *t)
{
    nlp_free(t->id);
    nlp_free(t->off);
    nlp_free(t->len);
    memset(t, 0, sizeof *t);
}

/* ==== Batches ============================================================ */

struct nlp_pairs_batcher {
    const nlp_pairs *p;
    nlp_pairs_batch_config cfg;
    nlp_rng rng;          /* draws the next epoch's order */
    nlp_rng epoch_rng;    /* rng as it was when the current epoch's order was drawn */
    long epoch;           /* epochs begun before the current one */
    long pos;             /* current batch in the epoch */
    long nbatches;        /* batches of the current epoch */
    long *order;          /* (n) pair indices, batch after batch */
    long *start;          /* (n+1) batch k is order[start[k] .. start[k+1]) */
    long *perm;           /* (nbatches): the epoch's k-th batch is perm[k] */
    long *tmp;            /* (n) scratch for sorting and building */
    int max_B, max_S, max_T;
};

void nlp_pairs_batch_config_default(nlp_pairs_batch_config *c)
{
    c->batch = 64;
    c->batch_tokens = 0;
    c->pool = 6400;
    c->shuffle = 1;
}

/* Sort key of pair i: source length, then target length. */
static long pair_key(const nlp_pairs *p, long i)
{
    return (long)nlp_pairs_src_len(p, i) * (NLP_PAIRS_MAX_TOKENS + 1) + nlp_pairs_tgt_len(p, i);
}

/* Stable merge sort of a[0..n) by pair_key, with scratch tmp. */
static void sort_by_length(const nlp_pairs *p, long *a, long n, long *tmp)
{
    for (long w = 1; w < n; w *= 2) {
        for (long lo = 0; lo < n; lo += 2 * w) {
            long mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            long i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = pair_key(p, a[j]) < pair_key(p, a[i]) ? a[j++] : a[i++];
            while (i < mid)
                tmp[k++] = a[i++];
            while (j < hi)
                tmp[k++] = a[j++];
        }
        memcpy(a, tmp, (size_t)n * sizeof *a);
    }
}

/* Draws the order of an epoch from b->rng (kept first in epoch_rng) and
** cuts it into batches; also records the largest batch shapes seen. */
static void draw_epoch(nlp_pairs_batcher *b)
{
    const nlp_pairs *p = b->p;
    const long n = p->n;
    b->epoch_rng = b->rng;
    for (long i = 0; i < n; i++)
        b->order[i] = i;
    if (b->cfg.shuffle)
        nlp_rng_shuffle(&b->rng, b->order, n);
    const long pool = b->cfg.pool > 0 ? b->cfg.pool : n;
    for (long lo = 0; lo < n; lo += pool)
        sort_by_length(p, b->order + lo, lo + pool < n ? pool : n - lo, b->tmp);
    /* Batches never span two pools: each pool is cut on its own. */
    long k = 0;
    for (long lo = 0; lo < n; lo += pool) {
        const long hi = lo + pool < n ? lo + pool : n;
        long i = lo;
        while (i < hi) {
            b->start[k++] = i;
            long rows = 0;
            int S = 0, T = 0;
            while (i < hi) {
                long id = b->order[i];
                int s = nlp_pairs_src_len(p, id), t = nlp_pairs_tgt_len(p, id) + 1;
                int S2 = s > S ? s : S, T2 = t > T ? t : T;
                if (b->cfg.batch_tokens > 0) {
                    long m = S2 > T2 ? S2 : T2;
                    if (rows > 0 && (rows + 1) * m > b->cfg.batch_tokens)
                        break;
                } else if (rows == b->cfg.batch) {
                    break;
                }
                S = S2;
                T = T2;
                rows++;
                i++;
            }
            if (rows > b->max_B)
                b->max_B = (int)rows;
            if (S > b->max_S)
                b->max_S = S;
            if (T > b->max_T)
                b->max_T = T;
        }
    }
    b->start[k] = n;
    b->nbatches = k;
    for (long j = 0; j < k; j++)
        b->perm[j] = j;
    if (b->cfg.shuffle)
        nlp_rng_shuffle(&b->rng, b->perm, k);
    b->pos = 0;
}

int nlp_pairs_batcher_new(nlp_pairs_batcher **out, const nlp_pairs *p,
                          const nlp_pairs_batch_config *c, uint64_t seed, nlp_error *e)
{
    *out = NULL;
    if (c->batch < 1 || c->batch_tokens < 0 || c->pool < 0 || !p || p->n < 1)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "batches: batch %d, batch tokens %ld, pool %ld, %ld pairs",
                             c->batch, c->batch_tokens, c->pool, p ? p->n : 0L);
    if ((size_t)p->n > SIZE_MAX / sizeof(long) - 1)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    nlp_pairs_batcher *b = nlp_calloc(1, sizeof *b);
    if (!b)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    const size_t n = (size_t)p->n;
    b->order = nlp_malloc(n * sizeof *b->order);
    b->start = nlp_malloc((n + 1) * sizeof *b->start);
    b->perm = nlp_malloc(n * sizeof *b->perm);
    b->tmp = nlp_malloc(n * sizeof *b->tmp);
    if (!b->order || !b->start || !b->perm || !b->tmp) {
        nlp_pairs_batcher_free(b);
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    }
    b->p = p;
    b->cfg = *c;
    nlp_rng_seed(&b->rng, seed);
    /* The shapes a batch can take are bounded by the data: the longest
    ** sides, and batch rows (or batch_tokens rows of one token). */
    b->max_S = p->max_src;
    b->max_T = p->max_tgt + 1;
    long mb = c->batch_tokens > 0 ? c->batch_tokens : c->batch;
    if (mb > p->n)
        mb = p->n;
    b->max_B = (int)(mb > INT_MAX ? INT_MAX : mb);
    draw_epoch(b);
    *out = b;
    return NLP_OK;
}

void nlp_pairs_batcher_free(nlp_pairs_batcher *b)
{
    if (!b)
        return;
    nlp_free(b->order);
    nlp_free(b->start);
    nlp_free(b->perm);
    nlp_free(b->tmp);
    nlp_free(b);
}

long nlp_pairs_batcher_batches(const nlp_pairs_batcher *b)
{
    return b->nbatches;
}

long nlp_pairs_batcher_position(const nlp_pairs_batcher *b)
{
    return b->pos;
}

long nlp_pairs_batcher_epoch(const nlp_pairs_batcher *b)
{
    return b->epoch;
}

int nlp_pairs_batcher_rows(const nlp_pairs_batcher *b)
{
    long k = b->perm[b->pos];
    return (int)(b->start[k + 1] - b->start[k]);
}

long nlp_pairs_batcher_tokens(const nlp_pairs_batcher *b)
{
    long k = b->perm[b->pos], t = 0;
    for (long i = b->start[k]; i < b->start[k + 1]; i++)
        t += nlp_pairs_tgt_len(b->p, b->order[i]) + 1;
    return t;
}

void nlp_pairs_batcher_max(const nlp_pairs_batcher *b, int *B, int *S, int *T)
{
    if (B)
        *B = b->max_B;
    if (S)
        *S = b->max_S;
    if (T)
        *T = b->max_T;
}

int nlp_pairs_batch_new(nlp_pairs_batch **out, int max_B, int max_S, int max_T)
{
    *out = NULL;
    if (max_B < 1 || max_S < 1 || max_T < 1 || (long long)max_B * max_S > INT_MAX
        || (long long)max_B * max_T > INT_MAX)
        return NLP_EINVAL;
    nlp_pairs_batch *t = nlp_calloc(1, sizeof *t);
    if (!t)
        return NLP_ENOMEM;
    const size_t B = (size_t)max_B;
    t->src = nlp_malloc(B * (size_t)max_S * sizeof *t->src);
    t->tgt_in = nlp_malloc(B * (size_t)max_T * sizeof *t->tgt_in);
    t->tgt_out = nlp_malloc(B * (size_t)max_T * sizeof *t->tgt_out);
    t->src_len = nlp_malloc(B * sizeof *t->src_len);
    t->tgt_len = nlp_malloc(B * sizeof *t->tgt_len);
    t->index = nlp_malloc(B * sizeof *t->index);
    if (!t->src || !t->tgt_in || !t->tgt_out || !t->src_len || !t->tgt_len || !t->index) {
        nlp_pairs_batch_free(t);
        return NLP_ENOMEM;
    }
    t->cap_B = max_B;
    t->cap_S = max_S;
    t->cap_T = max_T;
    *out = t;
    return NLP_OK;
}

void nlp_pairs_batch_free(nlp_pairs_batch *t)
{
    if (!t)
        return;
    nlp_free(t->src);
    nlp_free(t->tgt_in);
    nlp_free(t->tgt_out);
    nlp_free(t->src_len);
    nlp_free(t->tgt_len);
    nlp_free(t->index);
    nlp_free(t);
}

int nlp_pairs_batcher_fill(const nlp_pairs_batcher *b, int lo, int hi, nlp_pairs_batch *out)
{
    const nlp_pairs *p = b->p;
    const long k = b->perm[b->pos];
    const long first = b->start[k], rows = b->start[k + 1] - first;
    if (lo < 0 || hi <= lo || hi > rows || hi - lo > out->cap_B)
        return NLP_EINVAL;
    const int B = hi - lo;
    int S = 0, T = 0;
    for (int r = 0; r < B; r++) {
        long id = b->order[first + lo + r];
        int s = nlp_pairs_src_len(p, id), t = nlp_pairs_tgt_len(p, id) + 1;
        S = s > S ? s : S;
        T = t > T ? t : T;
    }
    if (S > out->cap_S || T > out->cap_T)
        return NLP_EINVAL;
    out->B = B;
    out->S = S;
    out->T = T;
    out->tokens = 0;
    for (int r = 0; r < B; r++) {
        long id = b->order[first + lo + r];
        const int *src = p->src + p->src_start[id], *tgt = p->tgt + p->tgt_start[id];
        const int s = nlp_pairs_src_len(p, id), t = nlp_pairs_tgt_len(p, id);
        for (int i = 0; i < S; i++)
            out->src[i * B + r] = i < s ? src[i] : NLP_PAIRS_PAD;
        for (int i = 0; i < T; i++) {
            out->tgt_in[i * B + r] = i == 0 ? NLP_PAIRS_BOS : i <= t ? tgt[i - 1] : NLP_PAIRS_PAD;
            out->tgt_out[i * B + r] = i < t ? tgt[i] : i == t ? NLP_PAIRS_EOS : NLP_PAIRS_PAD;
        }
        out->src_len[r] = s;
        out->tgt_len[r] = t + 1;
        out->index[r] = id;
        out->tokens += t + 1;
    }
    return NLP_OK;
}

int nlp_pairs_batcher_advance(nlp_pairs_batcher *b)
{
    if (++b->pos < b->nbatches)
        return 0;
    b->epoch++;
    draw_epoch(b);
    return 1;
}

void nlp_pairs_batcher_rewind(nlp_pairs_batcher *b)
{
    b->pos = 0;
}

/* ==== Checkpoints ======================================================== */

/* prefix + "." + name into buf (keys are short; a longer prefix is cut and
** then simply not found). */
static const char *key(char *buf, size_t n, const char *prefix, const char *name)
{
    snprintf(buf, n, "%s.%s", prefix, name);
    return buf;
}

int nlp_pairs_batcher_save(const nlp_pairs_batcher *b, nlp_model *file, const char *prefix,
                           nlp_error *e)
{
    char k[128];
    int rc = nlp_model_set_meta_long(file, key(k, sizeof k, prefix, "epoch"), b->epoch);
    if (rc == NLP_OK)
        rc = nlp_model_set_meta_long(file, key(k, sizeof k, prefix, "position"), b->pos);
    if (rc == NLP_OK)
        rc = nlp_model_set_meta_long(file, key(k, sizeof k, prefix, "batches"), b->nbatches);
    if (rc == NLP_OK)
        rc = nlp_model_set_meta_long(file, key(k, sizeof k, prefix, "pairs"), b->p->n);
    if (rc == NLP_OK)
        rc = nlp_model_set_meta_u64(file, key(k, sizeof k, prefix, "crc"), nlp_pairs_crc(b->p));
    if (rc == NLP_OK)
        rc = nlp_train_add_rng(file, key(k, sizeof k, prefix, "rng"), &b->epoch_rng);
    return rc == NLP_OK ? NLP_OK : nlp_error_set(e, rc, NULL, 0, NULL);
}

int nlp_pairs_batcher_load(nlp_pairs_batcher *b, const nlp_model *file, const char *prefix,
                           nlp_error *e)
{
    char k[128];
    long epoch, pos, nb, n;
    uint64_t crc;
    nlp_rng r;
    int rc;
    if ((rc = nlp_model_meta_range(file, key(k, sizeof k, prefix, "pairs"), 1, LONG_MAX, &n, e))
            != NLP_OK)
        return rc;
    if (n != b->p->n)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "%s: the checkpoint was trained on %ld pairs, this data has %ld",
                             k, n, b->p->n);
    if ((rc = nlp_model_meta_u64(file, key(k, sizeof k, prefix, "crc"), UINT32_MAX, &crc, e))
            != NLP_OK)
        return rc;
    if (crc != nlp_pairs_crc(b->p))
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "%s: the checkpoint was trained on other data (CRC differs)", k);
    if ((rc = nlp_model_meta_range(file, key(k, sizeof k, prefix, "epoch"), 0, LONG_MAX - 1,
                                   &epoch, e)) != NLP_OK
        || (rc = nlp_model_meta_range(file, key(k, sizeof k, prefix, "batches"), 1, n, &nb, e))
               != NLP_OK
        || (rc = nlp_model_meta_range(file, key(k, sizeof k, prefix, "position"), 0, nb - 1,
                                      &pos, e)) != NLP_OK
        || (rc = nlp_train_read_rng(file, key(k, sizeof k, prefix, "rng"), &r, e)) != NLP_OK)
        return rc;
    /* Redraw the epoch from its rng; its batch count must be the one saved
    ** (another --batch or --batch-tokens cuts other batches). */
    nlp_pairs_batcher t = *b;
    t.rng = r;
    draw_epoch(&t);
    if (t.nbatches != nb) {
        /* draw_epoch wrote b's arrays (shared with t): draw b's epoch again. */
        nlp_rng keep = b->epoch_rng;
        long keep_pos = b->pos;
        b->rng = keep;
        draw_epoch(b);
        b->pos = keep_pos;
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "%s: %ld batches an epoch in the checkpoint, %ld with these "
                             "batch settings", key(k, sizeof k, prefix, "batches"), nb,
                             t.nbatches);
    }
    *b = t;
    b->epoch = epoch;
    b->pos = pos;
    return NLP_OK;
}
