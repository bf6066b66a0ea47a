/*
** fuzz_pairs: the parallel-corpus reader of seq2seq (nlp/pairs.h):
** nlp_pairs_read (tsv) and nlp_pairs_read_files (two files), then the
** vocabularies, the encoding, the tokenizer and the length-bucketed
** batcher with its checkpoint position.
**
** Input layout:
**   byte 0   bit 0: two files, the source before the first NUL byte and
**            the target after it (no NUL: an empty target file); else one
**            tsv file; bit 1: min_count 2 (else 1); bits 2-3: max_vocab 0,
**            5, 8 or 2 (2 is refused); bit 4: batch by tokens
**   byte 1   bits 0-2: batch - 1; bits 3-6: batch_tokens / 4; bit 7: pools
**            of 3 pairs (else one pool)
**   byte 2   bit 0: shuffle; the byte is the batcher's seed too
**   rest     the corpus
**
** Checks: a failure is a documented code with a message naming the file
** and a line; a corpus as read has its pairs' tokens in its word tables
** (no white space inside, valid UTF-8, counts that add up), increasing
** lines, the longest lengths; a tsv corpus written back as two files reads
** the same; the vocabularies start with the specials and respect
** min_count and max_vocab; the encoding keeps the lengths and agrees with
** nlp_pairs_tokenize; every batch of an epoch holds each pair once, padded
** as documented, within the batcher's maxima and the token budget; a
** saved position restored after moving on gives the same batch again.
*/
#include "fuzz.h"

#include <limits.h>

#include "nlp/pairs.h"

#define SRC "src.txt"
#define TGT "tgt.txt"

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static void check_failure(int rc, const nlp_pairs *p, const nlp_error *e, int two)
{
    FUZZ_CHECK(p == NULL);
    fuzz_check_error(rc, e);
    FUZZ_CHECK(rc == NLP_EFORMAT || rc == NLP_EUTF8 || rc == NLP_EEMPTY || rc == NLP_ERANGE
               || rc == NLP_ENOMEM);
    if (two)
        FUZZ_CHECK(strcmp(e->file, SRC) == 0 || strcmp(e->file, TGT) == 0);
    else
        FUZZ_CHECK(strcmp(e->file, SRC) == 0);
    FUZZ_CHECK(rc == NLP_EEMPTY || rc == NLP_ENOMEM || e->line >= 1);
}

/* One side of a corpus as read: ids index its word table, whose counts
** add up to the side's tokens. */
static void check_side(const nlp_pairs *p, const size_t *start, const int *ids,
                       const nlp_vocab *words, int max_len)
{
    FUZZ_CHECK(start[0] == 0);
    long size = nlp_vocab_size(words);
    FUZZ_CHECK(size >= 1);
    int longest = 0;
    for (long i = 0; i < p->n; i++) {
        FUZZ_CHECK(start[i + 1] > start[i]);
        size_t len = start[i + 1] - start[i];
        FUZZ_CHECK(len <= NLP_PAIRS_MAX_TOKENS);
        if ((int)len > longest)
            longest = (int)len;
    }
    FUZZ_CHECK(longest == max_len);
    long long total = 0;
    for (long w = 0; w < size; w++) {
        const char *s = nlp_vocab_word(words, w);
        size_t len = nlp_vocab_word_len(words, w);
        FUZZ_CHECK(len > 0 && nlp_utf8_is_valid(s, len) && !memchr(s, 0, len));
        for (size_t i = 0; i < len; i++)
            FUZZ_CHECK(!is_ws((unsigned char)s[i]));
        FUZZ_CHECK(nlp_vocab_count(words, w) >= 1);
        total += nlp_vocab_count(words, w);
    }
    FUZZ_CHECK(total == (long long)start[p->n]);
    for (size_t i = 0; i < start[p->n]; i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < size);
}

static void check_read(const nlp_pairs *p)
{
    FUZZ_CHECK(p->n >= 1);
    FUZZ_CHECK(p->src_words && p->tgt_words);
    check_side(p, p->src_start, p->src, p->src_words, p->max_src);
    check_side(p, p->tgt_start, p->tgt, p->tgt_words, p->max_tgt);
    for (long i = 0; i < p->n; i++) {
        FUZZ_CHECK(p->line[i] >= 1 && (i == 0 || p->line[i] > p->line[i - 1]));
        FUZZ_CHECK(nlp_pairs_src_len(p, i) == (int)(p->src_start[i + 1] - p->src_start[i]));
        FUZZ_CHECK(nlp_pairs_tgt_len(p, i) == (int)(p->tgt_start[i + 1] - p->tgt_start[i]));
    }
    FUZZ_CHECK(p->lines >= p->line[p->n - 1]);
}

/* A growable byte string. */
typedef struct text {
    char *p;
    size_t n, cap;
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->n + n > t->cap) {
        t->cap = 2 * (t->n + n) + 16;
        t->p = realloc(t->p, t->cap);
        FUZZ_CHECK(t->p != NULL);
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
}

/* Pair i's side as text: its tokens joined by single spaces. */
static void put_side(text *t, const size_t *start, const int *ids, const nlp_vocab *w, long i)
{
    for (size_t j = start[i]; j < start[i + 1]; j++) {
        if (j > start[i])
            put(t, " ", 1);
        put(t, nlp_vocab_word(w, ids[j]), nlp_vocab_word_len(w, ids[j]));
    }
}

static int same_corpus(const nlp_pairs *a, const nlp_pairs *b)
{
    if (a->n != b->n || a->max_src != b->max_src || a->max_tgt != b->max_tgt)
        return 0;
    size_t ns = a->src_start[a->n], nt = a->tgt_start[a->n];
    if (memcmp(a->src_start, b->src_start, (size_t)(a->n + 1) * sizeof *a->src_start)
        || memcmp(a->tgt_start, b->tgt_start, (size_t)(a->n + 1) * sizeof *a->tgt_start)
        || memcmp(a->src, b->src, ns * sizeof *a->src) || memcmp(a->tgt, b->tgt, nt * sizeof *a->tgt))
        return 0;
    return nlp_vocab_size(a->src_words) == nlp_vocab_size(b->src_words)
           && nlp_vocab_size(a->tgt_words) == nlp_vocab_size(b->tgt_words);
}

/* A tsv corpus written as two files reads the same pairs. */
static void two_files_agree(const nlp_pairs *p)
{
    text s = { 0 }, t = { 0 };
    for (long i = 0; i < p->n; i++) {
        put_side(&s, p->src_start, p->src, p->src_words, i);
        put(&s, "\n", 1);
        put_side(&t, p->tgt_start, p->tgt, p->tgt_words, i);
        put(&t, "\n", 1);
    }
    FILE *fs = fuzz_fmemopen(s.p, s.n), *ft = fuzz_fmemopen(t.p, t.n);
    nlp_pairs *q = NULL;
    nlp_error e;
    FUZZ_CHECK(nlp_pairs_read_files(&q, fs, SRC, ft, TGT, &e) == NLP_OK);
    FUZZ_CHECK(same_corpus(p, q));
    nlp_pairs_free(q);
    fclose(fs);
    fclose(ft);
    free(s.p);
    free(t.p);
}

static void check_vocab(const nlp_vocab *v, long min_count, long max_vocab)
{
    nlp_error e;
    FUZZ_CHECK(nlp_pairs_vocab_check(v, &e) == NLP_OK);
    long size = nlp_vocab_size(v);
    FUZZ_CHECK(size >= NLP_PAIRS_NSPECIAL && (max_vocab == 0 || size <= max_vocab));
    FUZZ_CHECK(strcmp(nlp_vocab_word(v, NLP_PAIRS_PAD), NLP_PAIRS_PAD_WORD) == 0);
    FUZZ_CHECK(strcmp(nlp_vocab_word(v, NLP_PAIRS_UNK), NLP_PAIRS_UNK_WORD) == 0);
    for (long w = NLP_PAIRS_NSPECIAL; w < size; w++) {
        FUZZ_CHECK(nlp_vocab_count(v, w) >= min_count);
        FUZZ_CHECK(w == NLP_PAIRS_NSPECIAL || nlp_vocab_count(v, w) <= nlp_vocab_count(v, w - 1));
    }
}

/* The batch b filled with the current batch of bt over the encoded p. */
static void check_batch(const nlp_pairs *p, const nlp_pairs_batch *b, int rows,
                        const nlp_pairs_batch_config *c, long *seen)
{
    FUZZ_CHECK(b->B == rows && rows >= 1);
    long tokens = 0;
    int S = 0, T = 0;
    for (int r = 0; r < rows; r++) {
        long i = b->index[r];
        FUZZ_CHECK(i >= 0 && i < p->n);
        seen[i]++;
        int sl = nlp_pairs_src_len(p, i), tl = nlp_pairs_tgt_len(p, i);
        FUZZ_CHECK(b->src_len[r] == sl && b->tgt_len[r] == tl + 1);
        if (sl > S)
            S = sl;
        if (tl + 1 > T)
            T = tl + 1;
        for (int s = 0; s < b->S; s++)
            FUZZ_CHECK(b->src[s * rows + r]
                       == (s < sl ? p->src[p->src_start[i] + (size_t)s] : NLP_PAIRS_PAD));
        for (int t = 0; t < b->T; t++) {
            int in = t == 0 ? NLP_PAIRS_BOS : t <= tl ? p->tgt[p->tgt_start[i] + (size_t)t - 1]
                                                      : NLP_PAIRS_PAD;
            int out = t < tl ? p->tgt[p->tgt_start[i] + (size_t)t] : t == tl ? NLP_PAIRS_EOS
                                                                              : NLP_PAIRS_PAD;
            FUZZ_CHECK(b->tgt_in[t * rows + r] == in && b->tgt_out[t * rows + r] == out);
        }
        tokens += tl + 1;
    }
    FUZZ_CHECK(b->S == S && b->T == T && b->tokens == tokens);
    if (c->batch_tokens > 0)
        FUZZ_CHECK(rows == 1 || (long)rows * (S > T ? S : T) <= c->batch_tokens);
    else
        FUZZ_CHECK(rows <= c->batch);
}

static void batches(const nlp_pairs *enc, const nlp_pairs_batch_config *c, uint64_t seed)
{
    nlp_error e;
    nlp_pairs_batcher *bt = NULL;
    int rc = nlp_pairs_batcher_new(&bt, enc, c, seed, &e);
    FUZZ_CHECK(rc == NLP_OK);
    int mB, mS, mT;
    nlp_pairs_batcher_max(bt, &mB, &mS, &mT);
    FUZZ_CHECK(mB >= 1 && mS >= 1 && mT >= 2);
    nlp_pairs_batch *b = NULL;
    FUZZ_CHECK(nlp_pairs_batch_new(&b, mB, mS, mT) == NLP_OK);
    long nb = 0, nb0 = 0;
    long *seen = calloc((size_t)enc->n, sizeof *seen);
    FUZZ_CHECK(seen != NULL);
    nlp_model *ck = NULL;
    int saved_rows = -1;
    long saved_index0 = -1;
    /* Two epochs; the position is saved halfway through the first. */
    for (int epoch = 0; epoch < 2; epoch++) {
        memset(seen, 0, (size_t)enc->n * sizeof *seen);
        /* (Batches by tokens depend on the epoch's pools.) */
        nb = nlp_pairs_batcher_batches(bt);
        FUZZ_CHECK(nb >= 1 && nb <= enc->n);
        if (epoch == 0)
            nb0 = nb;
        for (long k = 0; k < nb; k++) {
            FUZZ_CHECK(nlp_pairs_batcher_epoch(bt) == epoch);
            FUZZ_CHECK(nlp_pairs_batcher_position(bt) == k);
            int rows = nlp_pairs_batcher_rows(bt);
            FUZZ_CHECK(rows >= 1 && rows <= mB);
            FUZZ_CHECK(nlp_pairs_batcher_fill(bt, 0, rows, b) == NLP_OK);
            FUZZ_CHECK(b->S <= mS && b->T <= mT);
            FUZZ_CHECK(nlp_pairs_batcher_tokens(bt) == b->tokens);
            check_batch(enc, b, rows, c, seen);
            FUZZ_CHECK(nlp_pairs_batcher_fill(bt, 0, rows + 1, b) == NLP_EINVAL);
            FUZZ_CHECK(nlp_pairs_batcher_fill(bt, rows, rows, b) == NLP_EINVAL);
            if (epoch == 0 && k == nb / 2) {
                FUZZ_CHECK(nlp_model_new(&ck, "checkpoint") == NLP_OK);
                FUZZ_CHECK(nlp_pairs_batcher_save(bt, ck, "data", &e) == NLP_OK);
                saved_rows = rows;
                saved_index0 = b->index[0];
            }
            FUZZ_CHECK(nlp_pairs_batcher_advance(bt) == (k == nb - 1));
        }
        for (long i = 0; i < enc->n; i++)
            FUZZ_CHECK(seen[i] == 1);
    }
    /* Back to the saved position: the same batch. */
    FUZZ_CHECK(nlp_pairs_batcher_load(bt, ck, "data", &e) == NLP_OK);
    FUZZ_CHECK(nlp_pairs_batcher_epoch(bt) == 0 && nlp_pairs_batcher_position(bt) == nb0 / 2);
    FUZZ_CHECK(nlp_pairs_batcher_rows(bt) == saved_rows);
    FUZZ_CHECK(nlp_pairs_batcher_fill(bt, 0, saved_rows, b) == NLP_OK);
    FUZZ_CHECK(b->index[0] == saved_index0);
    /* A position under another prefix is not there. */
    rc = nlp_pairs_batcher_load(bt, ck, "other", &e);
    FUZZ_CHECK(rc == NLP_EFORMAT);
    fuzz_check_error(rc, &e);
    nlp_model_free(ck);
    free(seen);
    nlp_pairs_batch_free(b);
    nlp_pairs_batcher_free(bt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = { data, size };
    uint8_t o0 = fuzz_byte(&in), o1 = fuzz_byte(&in), o2 = fuzz_byte(&in);
    int two = o0 & 1;
    long min_count = (o0 & 2) ? 2 : 1;
    static const long max_vocabs[4] = { 0, 5, 8, 2 };
    long max_vocab = max_vocabs[(o0 >> 2) & 3];
    nlp_pairs_batch_config bc;
    nlp_pairs_batch_config_default(&bc);
    bc.batch = 1 + (o1 & 7);
    bc.batch_tokens = (o0 & 16) ? 4 * (long)((o1 >> 3) & 15) : 0;
    bc.pool = (o1 & 128) ? 3 : 0;
    bc.shuffle = o2 & 1;

    nlp_pairs *p = (nlp_pairs *)1;
    nlp_error e;
    nlp_error_clear(&e);
    int rc;
    char *buf = fuzz_dup(in.p, in.n);
    if (two) {
        const char *nul = memchr(buf, 0, in.n);
        size_t ns = nul ? (size_t)(nul - buf) : in.n;
        size_t nt = nul ? in.n - ns - 1 : 0;
        char *sb = fuzz_dup(buf, ns), *tb = fuzz_dup(buf + in.n - nt, nt);
        FILE *fs = fuzz_fmemopen(sb, ns), *ft = fuzz_fmemopen(tb, nt);
        rc = nlp_pairs_read_files(&p, fs, SRC, ft, TGT, &e);
        fclose(fs);
        fclose(ft);
        free(sb);
        free(tb);
    } else {
        FILE *f = fuzz_fmemopen(buf, in.n);
        rc = nlp_pairs_read(&p, f, SRC, &e);
        fclose(f);
    }
    free(buf);
    if (rc != NLP_OK) {
        check_failure(rc, p, &e, two);
        return 0;
    }
    check_read(p);
    if (!two)
        two_files_agree(p);

    nlp_vocab *sv = NULL, *tv = NULL;
    rc = nlp_pairs_vocab_build(&sv, p->src_words, min_count, max_vocab);
    if (max_vocab > 0 && max_vocab < NLP_PAIRS_NSPECIAL) {
        FUZZ_CHECK(rc == NLP_EINVAL);
        max_vocab = 0;
        rc = nlp_pairs_vocab_build(&sv, p->src_words, min_count, max_vocab);
    }
    FUZZ_CHECK(rc == NLP_OK);
    FUZZ_CHECK(nlp_pairs_vocab_build(&tv, p->tgt_words, min_count, max_vocab) == NLP_OK);
    check_vocab(sv, min_count, max_vocab);
    check_vocab(tv, min_count, max_vocab);

    nlp_pairs *enc = NULL;
    size_t sunk = 0, tunk = 0;
    FUZZ_CHECK(nlp_pairs_encode(&enc, p, sv, tv, &sunk, &tunk) == NLP_OK);
    FUZZ_CHECK(enc->n == p->n && enc->src_words == NULL && enc->tgt_words == NULL);
    FUZZ_CHECK(sunk <= p->src_start[p->n] && tunk <= p->tgt_start[p->n]);
    FUZZ_CHECK(memcmp(enc->src_start, p->src_start, (size_t)(p->n + 1) * sizeof *p->src_start) == 0);
    FUZZ_CHECK(memcmp(enc->tgt_start, p->tgt_start, (size_t)(p->n + 1) * sizeof *p->tgt_start) == 0);
    for (size_t i = 0; i < enc->src_start[enc->n]; i++)
        FUZZ_CHECK(enc->src[i] >= NLP_PAIRS_UNK && enc->src[i] < nlp_vocab_size(sv));
    for (size_t i = 0; i < enc->tgt_start[enc->n]; i++)
        FUZZ_CHECK(enc->tgt[i] >= NLP_PAIRS_UNK && enc->tgt[i] < nlp_vocab_size(tv));
    FUZZ_CHECK(nlp_pairs_crc(enc) == nlp_pairs_crc(enc));
    nlp_pairs *again = NULL;
    FUZZ_CHECK(nlp_pairs_encode(&again, enc, sv, tv, NULL, NULL) == NLP_EINVAL && again == NULL);

    /* The tokenizer on each source as text gives the encoded ids. */
    nlp_pairs_tokens tok = { 0 };
    for (long i = 0; i < p->n && i < 16; i++) {
        text t = { 0 };
        put_side(&t, p->src_start, p->src, p->src_words, i);
        put(&t, "\t", 1);
        size_t nunk = 0;
        FUZZ_CHECK(nlp_pairs_tokenize(sv, t.p, t.n, &tok, &nunk) == NLP_OK);
        FUZZ_CHECK(tok.n == nlp_pairs_src_len(p, i));
        for (int j = 0; j < tok.n; j++) {
            FUZZ_CHECK(tok.id[j] == enc->src[enc->src_start[i] + (size_t)j]);
            FUZZ_CHECK(tok.off[j] + tok.len[j] <= t.n);
        }
        free(t.p);
    }
    nlp_pairs_tokens_free(&tok);

    batches(enc, &bc, o2);
    nlp_pairs_free(enc);
    nlp_vocab_free(sv);
    nlp_vocab_free(tv);
    nlp_pairs_free(p);
    return 0;
}
