/*
** w2v: word2vec training.  See nlp/w2v.h.
**
** The algorithm follows the original word2vec.c (Mikolov, 2013) step by
** step (same window shrinking, same subsampling formula, same sigmoid table
** and clipping, same learning-rate schedule, CBOW averaging the context),
** with these differences:
**   - no globals: the model, its configuration and every thread's state are
**     explicit; each thread has its own nlp_rng stream;
**   - negative samples come from an exact alias table (O(vocabulary)
**     memory) instead of a 1e8-entry table, and never draw "</s>";
**   - the corpus is read with pread() into a growing buffer: words are
**     never truncated, and threads split the file into exact byte slices;
**   - rows are padded to a multiple of 16 floats (64-byte aligned), so the
**     vector loops have no remainder and vectorise cleanly;
**   - optionally (shared_negatives), skip-gram draws one set of negatives per
**     centre word and updates the whole window as small matrix products.
*/
#include "nlp/w2v.h"
#include "nlp/alloc.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nlp/rng.h"
#include "nlp/progress.h"

/* Sigmoid table: word2vec's EXP_TABLE_SIZE entries over [-MAX_EXP, MAX_EXP]. */
#define EXP_TABLE_SIZE 1000
#define MAX_EXP 6
/* Words between two updates of the shared counter (word2vec uses 10000). */
#define REPORT_EVERY 10000
/* Floor of the learning rate, as a fraction of the start (word2vec: 1e-4). */
#define MIN_ALPHA_FRACTION 1e-4
/* Rows are padded to this many floats (64 bytes: one cache line); dot() assumes 16. */
#define ROW_ALIGN 16
/* Bytes read from the corpus at a time. */
#define READ_BLOCK (1 << 20)

/* Hot loops are compiled for several x86-64 levels and picked at load time. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__gnu_linux__)
#define HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HOT
#endif
#define INLINE static inline __attribute__((always_inline))

void nlp_w2v_config_default(nlp_w2v_config *c)
{
    memset(c, 0, sizeof *c);
    c->size = 100;
    c->window = 5;
    c->sample = 1e-3;
    c->hs = 0;
    c->negative = 5;
    c->threads = 1;
    c->iter = 5;
    c->alpha = 0;
    c->cbow = 1;
    c->shared_negatives = 0;
    c->seed = 1;
    c->sync_words = NLP_W2V_SYNC_WORDS;
}

/* ---- reading the corpus ------------------------------------------------ */

/* Word separators: ASCII whitespace, and NUL (never part of a word, so every word can be written out). */
static int is_space(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\0';
}

/*
** A reader over bytes [start, end) of a file: returns the words that start
** in the slice (a word may run past end) and the newlines inside it.
*/
typedef struct reader {
    int fd;
    off_t base;        /* file offset of buf[0] */
    off_t end;         /* slice end */
    char *buf;
    size_t cap, len;   /* allocated, valid bytes */
    size_t at;         /* next unread byte */
    int eof;           /* the file has no more bytes after buf[len] */
    int skip_partial;  /* the slice starts inside a word: skip its rest */
    int err;           /* errno of the failed read, kept with the reader: errno
                          itself is overwritten by later calls and other threads */
} reader;

enum { TOK_END = 0, TOK_WORD = 1, TOK_EOL = 2 };

static int reader_init(reader *r, int fd)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->cap = READ_BLOCK;
    r->buf = nlp_malloc(r->cap);
    return r->buf ? NLP_OK : NLP_ENOMEM;
}

static void reader_free(reader *r)
{
    nlp_free(r->buf);
    r->buf = NULL;
}

static int reader_start(reader *r, off_t start, off_t end)
{
    r->base = start;
    r->end = end;
    r->len = r->at = 0;
    r->eof = 0;
    r->skip_partial = 0;
    if (start > 0) {
        char c;
        ssize_t got;
        do
            got = pread(r->fd, &c, 1, start - 1);
        while (got < 0 && errno == EINTR);
        if (got < 0) {
            r->err = errno;
            return NLP_EIO;
        }
        r->skip_partial = got == 1 && !is_space((unsigned char)c);
    }
    return NLP_OK;
}

/* Keeps buf[at..len), reads more after it (growing buf when full). */
static int reader_fill(reader *r)
{
    if (r->at > 0) {
        memmove(r->buf, r->buf + r->at, r->len - r->at);
        r->base += (off_t)r->at;
        r->len -= r->at;
        r->at = 0;
    }
    if (r->len == r->cap) {
        char *b = nlp_realloc(r->buf, r->cap * 2);
        if (!b)
            return NLP_ENOMEM;
        r->buf = b;
        r->cap *= 2;
    }
    ssize_t got;
    do
        got = pread(r->fd, r->buf + r->len, r->cap - r->len, r->base + (off_t)r->len);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
        r->err = errno;
        return NLP_EIO;
    }
    if (got == 0)
        r->eof = 1;
    r->len += (size_t)got;
    return NLP_OK;
}

/*
** Next token: TOK_WORD with *w and *n set (valid until the next call),
** TOK_EOL for a newline, TOK_END at the end of the slice, or an NLP_E code.
*/
static int reader_next(reader *r, const char **w, size_t *n)
{
    int rc;
    if (r->skip_partial) {
        for (;;) {
            while (r->at < r->len && !is_space((unsigned char)r->buf[r->at]))
                r->at++;
            if (r->at < r->len || r->eof)
                break;
            if ((rc = reader_fill(r)) != NLP_OK)
                return rc;
        }
        r->skip_partial = 0;
    }
    for (;;) {
        while (r->at < r->len) {
            unsigned char c = (unsigned char)r->buf[r->at];
            if (!is_space(c))
                goto word;
            if (r->base + (off_t)r->at >= r->end)
                return TOK_END;
            r->at++;
            if (c == '\n')
                return TOK_EOL;
        }
        if (r->eof)
            return TOK_END;
        if ((rc = reader_fill(r)) != NLP_OK)
            return rc;
    }
word:
    if (r->base + (off_t)r->at >= r->end)
        return TOK_END;
    size_t i = r->at + 1;
    for (;;) {
        while (i < r->len && !is_space((unsigned char)r->buf[i]))
            i++;
        if (i < r->len || r->eof)
            break;
        size_t off = i - r->at;
        if ((rc = reader_fill(r)) != NLP_OK)
            return rc;
        i = r->at + off;
    }
    *w = r->buf + r->at;
    *n = i - r->at;
    r->at = i;
    return TOK_WORD;
}

/* ---- vocabulary ---------------------------------------------------------- */

int nlp_w2v_vocab_init(nlp_vocab *v)
{
    long id = nlp_vocab_add_count(v, NLP_W2V_EOS, strlen(NLP_W2V_EOS), 0);
    if (id < 0)
        return (int)id;
    nlp_vocab_pin(v);
    return NLP_OK;
}

int nlp_w2v_count_fd(nlp_vocab *v, int fd, long max_words, const char *path, nlp_error *e)
{
    reader r;
    if (reader_init(&r, fd) != NLP_OK)
        return nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
    int rc = reader_start(&r, 0, (off_t)INT64_MAX);
    int64_t min_reduce = 1;
    const char *w;
    size_t n;
    while (rc == NLP_OK) {
        int t = reader_next(&r, &w, &n);
        if (t == TOK_END)
            break;
        if (t < 0) {
            rc = t;
            break;
        }
        long id = t == TOK_EOL ? nlp_vocab_add_count(v, NLP_W2V_EOS, strlen(NLP_W2V_EOS), 1)
                               : nlp_vocab_add(v, w, n);
        if (id < 0) {
            rc = (int)id;
            break;
        }
        if (max_words > 0 && nlp_vocab_size(v) > max_words) {
            long k = nlp_vocab_prune(v, min_reduce + 1);
            if (k < 0)
                rc = (int)k;
            min_reduce++;
        }
    }
    int err = r.err;
    reader_free(&r);
    if (rc == NLP_EIO)
        return nlp_error_set(e, rc, path, 0, "read error: %s", strerror(err ? err : EIO));
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, path, 0, NULL);
    return NLP_OK;
}

int nlp_w2v_vocab_finish(nlp_vocab *v, int64_t min_count, nlp_error *e)
{
    int rc = nlp_vocab_sort(v);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, NULL);
    long k = nlp_vocab_prune(v, min_count);
    if (k < 0)
        return nlp_error_set(e, (int)k, NULL, 0, NULL);
    if (nlp_vocab_size(v) <= 1)
        return nlp_error_set(e, NLP_EEMPTY, NULL, 0,
                             "no word occurs at least %lld times (see -min-count)",
                             (long long)min_count);
    return NLP_OK;
}

/* ---- Huffman tree ------------------------------------------------------ */

static int by_count_desc(const void *a, const void *b, void *counts)
{
    const int64_t *c = counts;
    long x = *(const long *)a, y = *(const long *)b;
    if (c[x] != c[y])
        return c[x] > c[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

int nlp_w2v_huffman_new(nlp_w2v_huffman **out, const int64_t *counts, long n)
{
    *out = NULL;
    /* n + 1 offsets and 2n nodes must fit; int32 inner-node ids. */
    if (n < 0 || n > INT32_MAX || (n > 0 && !counts))
        return NLP_EINVAL;
    nlp_w2v_huffman *h = nlp_calloc(1, sizeof *h);
    long nodes = 2 * n;  /* leaves 0..n-1, inner n..2n-2 */
    long *order = nlp_malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    int64_t *cnt = nlp_malloc((size_t)(nodes > 0 ? nodes : 1) * sizeof *cnt);
    long *parent = nlp_malloc((size_t)(nodes > 0 ? nodes : 1) * sizeof *parent);
    uint8_t *bit = nlp_malloc((size_t)(nodes > 0 ? nodes : 1));
    if (h)
        h->offset = nlp_malloc((size_t)(n + 1) * sizeof *h->offset);
    if (!h || !order || !cnt || !parent || !bit || !h->offset)
        goto fail;
    h->n = n;
    /*
    ** word2vec's CreateBinaryTree: leaves sorted by count descending; inner
    ** nodes are created in increasing count order, so two queues (leaves from
    ** the rarest up, inner nodes in creation order) give the two smallest.
    */
    for (long i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, by_count_desc, (void *)counts);
    for (long i = 0; i < n; i++)
        cnt[i] = counts[order[i]];
    long pos1 = n - 1, pos2 = n;
    for (long a = 0; a < n - 1; a++) {
        long m[2];
        for (int k = 0; k < 2; k++) {
            if (pos1 >= 0 && (pos2 >= n + a || cnt[pos1] < cnt[pos2]))
                m[k] = pos1--;
            else
                m[k] = pos2++;
        }
        /* Saturating: counts read from a file may sum beyond int64. */
        cnt[n + a] = cnt[m[0]] > INT64_MAX - cnt[m[1]] ? INT64_MAX : cnt[m[0]] + cnt[m[1]];
        parent[m[0]] = n + a;
        parent[m[1]] = n + a;
        bit[m[0]] = 0;
        bit[m[1]] = 1;
    }
    /* Code lengths first, then fill codes root first. */
    int64_t total = 0;
    for (long i = 0; i < n; i++) {
        long len = 0;
        for (long b = i; b < 2 * n - 2; b = parent[b])
            len++;
        h->offset[order[i]] = len;  /* temporarily the length */
        total += len;
    }
    h->bits = nlp_malloc((size_t)(total > 0 ? total : 1));
    h->points = nlp_malloc((size_t)(total > 0 ? total : 1) * sizeof *h->points);
    if (!h->bits || !h->points)
        goto fail;
    int64_t off = 0;
    for (long w = 0; w < n; w++) {
        int64_t len = h->offset[w];
        h->offset[w] = off;
        off += len;
    }
    h->offset[n] = off;
    for (long i = 0; i < n; i++) {
        long w = order[i];
        int64_t o = h->offset[w], len = h->offset[w + 1] - o;
        long b = i;
        for (int64_t d = len - 1; d >= 0; d--) {
            /* Node b hangs below parent[b]; its inner index is parent - n. */
            h->bits[o + d] = bit[b];
            h->points[o + d] = (int32_t)(parent[b] - n);
            b = parent[b];
        }
    }
    nlp_free(order);
    nlp_free(cnt);
    nlp_free(parent);
    nlp_free(bit);
    *out = h;
    return NLP_OK;
fail:
    nlp_free(order);
    nlp_free(cnt);
    nlp_free(parent);
    nlp_free(bit);
    nlp_w2v_huffman_free(h);
    return NLP_ENOMEM;
}

void nlp_w2v_huffman_free(nlp_w2v_huffman *h)
{
    if (!h)
        return;
    nlp_free(h->offset);
    nlp_free(h->bits);
    nlp_free(h->points);
    nlp_free(h);
}

/* ---- negative sampling: Walker's alias method ------------------------- */

typedef struct alias_entry {
    uint32_t threshold;  /* keep i when the low 32 random bits are below this */
    int32_t alias;       /* otherwise draw this; == i when always kept */
} alias_entry;

struct nlp_w2v_unigram {
    long n;
    alias_entry *t;
};

int nlp_w2v_unigram_new(nlp_w2v_unigram **out, const int64_t *counts, long n, double power,
                        long skip)
{
    *out = NULL;
    if (n <= 0 || n > INT32_MAX || !counts)
        return NLP_EINVAL;
    int rc = NLP_ENOMEM;
    nlp_w2v_unigram *u = nlp_malloc(sizeof *u);
    double *p = nlp_malloc((size_t)n * sizeof *p);
    long *small = nlp_malloc((size_t)n * sizeof *small);
    long *large = nlp_malloc((size_t)n * sizeof *large);
    alias_entry *t = u ? nlp_malloc((size_t)n * sizeof *t) : NULL;
    double sum = 0;
    if (!u || !p || !small || !large || !t)
        goto fail;
    for (long i = 0; i < n; i++) {
        p[i] = i < skip ? 0.0 : pow((double)counts[i], power);
        sum += p[i];
    }
    rc = NLP_EINVAL;
    if (!(sum > 0))
        goto fail;
    long ns = 0, nl = 0;
    for (long i = 0; i < n; i++) {
        p[i] = p[i] * (double)n / sum;  /* mean 1 */
        if (p[i] < 1.0)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
        long s = small[--ns], l = large[nl - 1];
        /* p[s] is below 1, but rounding can push it below 0: clamp before converting. */
        double q = p[s] * 4294967296.0;
        t[s].threshold = q > 0 ? (q < 4294967295.0 ? (uint32_t)q : UINT32_MAX) : 0;
        t[s].alias = (int32_t)l;
        p[l] -= 1.0 - p[s];
        if (p[l] < 1.0) {
            nl--;
            small[ns++] = l;
        }
    }
    /* What is left has probability 1 (up to rounding). */
    while (nl > 0) {
        long l = large[--nl];
        t[l].threshold = UINT32_MAX;
        t[l].alias = (int32_t)l;
    }
    while (ns > 0) {
        long s = small[--ns];
        t[s].threshold = UINT32_MAX;
        t[s].alias = (int32_t)s;
    }
    u->n = n;
    u->t = t;
    nlp_free(p);
    nlp_free(small);
    nlp_free(large);
    *out = u;
    return NLP_OK;
fail:
    nlp_free(u);
    nlp_free(p);
    nlp_free(small);
    nlp_free(large);
    nlp_free(t);
    return rc;
}

void nlp_w2v_unigram_free(nlp_w2v_unigram *u)
{
    if (!u)
        return;
    nlp_free(u->t);
    nlp_free(u);
}

INLINE long unigram_draw(const nlp_w2v_unigram *u, uint64_t bits)
{
    /* High 32 bits pick a column (Lemire's multiply-shift), low 32 bits a side. */
    uint64_t i = ((bits >> 32) * (uint64_t)u->n) >> 32;
    const alias_entry *a = &u->t[i];
    return (uint32_t)bits < a->threshold ? (long)i : (long)a->alias;
}

long nlp_w2v_unigram_draw(const nlp_w2v_unigram *u, uint64_t bits)
{
    return unigram_draw(u, bits);
}

/* ---- the model ---------------------------------------------------------- */

struct nlp_w2v {
    nlp_w2v_config c;
    const nlp_vocab *vocab;
    long V;                    /* vocabulary size */
    int D;                     /* dimensions */
    int stride;                /* floats per row (D rounded up to ROW_ALIGN) */
    float *syn0;               /* (V, stride) input vectors: the result */
    float *syn1;               /* (V-1, stride) inner Huffman nodes, hs only */
    float *syn1neg;            /* (V, stride) output vectors, negative sampling only */
    float *out;                /* (V, D) unpadded copy for nlp_w2v_vectors */
    float exp_table[EXP_TABLE_SIZE];
    float *keep;               /* (V) subsampling: probability to keep each word */
    nlp_w2v_huffman *huff;     /* hs only */
    nlp_w2v_unigram *uni;      /* negative only */
    int64_t train_words;       /* sum of vocabulary counts */
    double alpha0;             /* start learning rate */
    /* Shared by the threads during nlp_w2v_train: */
    int64_t words_done;        /* words read by all threads (atomic) */
    int64_t words_kept;        /* words left by subsampling, all threads */
    int stop;                  /* set (atomic) when a thread saw training diverge */
    double start_time;
    /* Several processes (c.collective): the pauses for the averages. */
    const nlp_train_collective *coll; /* NULL: one process */
    pthread_mutex_t mu;
    pthread_cond_t paused, resume;
    int waiting;               /* threads paused for the next average */
    unsigned long round;       /* averages done: a change resumes the threads */
    int all_done;              /* every process is done: threads return */
    int64_t quota;             /* words a thread reads between two averages */
    int64_t global_base;       /* words of all processes at the last average */
    int64_t local_base;        /* words_done of this process then */
    float *base[3];            /* syn0, syn1, syn1neg at the last sync, when the
                                  updates are added up (not sync_average) */
};

static float *alloc_rows(long rows, int stride)
{
    size_t n = (size_t)(rows > 0 ? rows : 1);
    if (n > SIZE_MAX / sizeof(float) / (size_t)stride)
        return NULL;
    return nlp_aligned_alloc(64, n * (size_t)stride * sizeof(float));
}

int nlp_w2v_new(nlp_w2v **out, const nlp_w2v_config *config, const nlp_vocab *v, nlp_error *e)
{
    *out = NULL;
    const nlp_w2v_config *c = config;
    if (c->size < 1 || c->size > 100000)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "vector size must be 1..100000");
    if (c->window < 1)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "window must be at least 1");
    if (c->iter < 1)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "iter must be at least 1");
    if (c->threads < 1)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "threads must be at least 1");
    if (c->negative < 0)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "negative must be 0 or more");
    if (!c->hs && c->negative == 0)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "choose hierarchical softmax (-hs 1) or negative sampling (-negative N)");
    if (!(c->sample >= 0) || !isfinite(c->sample))
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "sample must be 0 or more");
    if (!isfinite(c->alpha))
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "alpha must be a finite number");
    if (c->collective && c->collective->size > 1) {
        const nlp_train_collective *k = c->collective;
        if (c->sync_words < 1)
            return nlp_error_set(e, NLP_EINVAL, NULL, 0, "sync_words must be at least 1");
        if (!k->sum_float || !k->sum_double || k->rank < 0 || k->rank >= k->size ||
            k->size > NLP_TRAIN_MAX_PROCESSES ||
            (long)k->size * c->threads > INT32_MAX)
            return nlp_error_set(e, NLP_EINVAL, NULL, 0, "invalid collective: rank %d of %d",
                                 k->rank, k->size);
    }
    long V = nlp_vocab_size(v);
    if (V < 2 || V > INT32_MAX)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "the vocabulary must hold 2..2^31-1 words");
    /* Counts may come from a file (-read-vocab): their sum must fit. */
    int64_t total = 0;
    for (long i = 0; i < V; i++) {
        int64_t cn = nlp_vocab_count(v, i);
        if (cn < 0 || cn > INT64_MAX - total)
            return nlp_error_set(e, NLP_ERANGE, NULL, 0, "the word counts sum beyond 2^63");
        total += cn;
    }
    nlp_w2v *m = nlp_calloc(1, sizeof *m);
    if (!m)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    m->c = *c;
    m->vocab = v;
    m->V = V;
    m->D = c->size;
    m->stride = (c->size + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
    m->alpha0 = c->alpha > 0 ? c->alpha : c->cbow ? 0.05 : 0.025;
    m->syn0 = alloc_rows(V, m->stride);
    m->keep = nlp_malloc((size_t)V * sizeof *m->keep);
    int64_t *counts = nlp_malloc((size_t)V * sizeof *counts);
    if (!m->syn0 || !m->keep || !counts)
        goto nomem;
    for (long i = 0; i < V; i++)
        counts[i] = nlp_vocab_count(v, i);
    m->train_words = total;
    int rc;
    if (c->hs) {
        m->syn1 = alloc_rows(V - 1, m->stride);
        if (!m->syn1)
            goto nomem;
        if ((rc = nlp_w2v_huffman_new(&m->huff, counts, V)) != NLP_OK)
            goto fail;
    }
    if (c->negative > 0) {
        m->syn1neg = alloc_rows(V, m->stride);
        if (!m->syn1neg)
            goto nomem;
        /* Only "</s>" has a count (e.g. -read-vocab): draw uniformly among the rest. */
        int any = 0;
        for (long i = 1; i < V; i++)
            any |= counts[i] > 0;
        if (!any)
            for (long i = 1; i < V; i++)
                counts[i] = 1;
        /* A failure is reported, never a silent switch to uniform negatives. */
        if ((rc = nlp_w2v_unigram_new(&m->uni, counts, V, any ? 0.75 : 1.0, 1)) != NLP_OK)
            goto fail;
    }
    nlp_free(counts);
    counts = NULL;
    /* word2vec: expTable[i] = sigmoid((i / EXP_TABLE_SIZE * 2 - 1) * MAX_EXP). */
    for (int i = 0; i < EXP_TABLE_SIZE; i++) {
        double x = exp(((double)i / EXP_TABLE_SIZE * 2 - 1) * MAX_EXP);
        m->exp_table[i] = (float)(x / (x + 1));
    }
    /* word2vec's subsampling: keep with (sqrt(f / t) + 1) * t / f, f = count / total. */
    double thr = c->sample * (double)m->train_words;
    for (long i = 0; i < V; i++) {
        double cn = (double)nlp_vocab_count(v, i);
        double k = (c->sample > 0 && cn > 0) ? (sqrt(cn / thr) + 1) * thr / cn : 1.0;
        m->keep[i] = k < 1.0 ? (float)k : 1.0f;   /* a probability: no float overflow either */
    }
    /* Input vectors: uniform in [-0.5, 0.5) / size, as word2vec. */
    nlp_rng r;
    nlp_rng_seed(&r, c->seed);
    for (long i = 0; i < V; i++)
        for (int d = 0; d < m->D; d++)
            m->syn0[(size_t)i * m->stride + d] = (nlp_rng_uniform(&r) - 0.5f) / (float)m->D;
    *out = m;
    return NLP_OK;
nomem:
    rc = NLP_ENOMEM;
fail:
    nlp_free(counts);
    nlp_w2v_free(m);
    return nlp_error_set(e, rc, NULL, 0, NULL);
}

void nlp_w2v_free(nlp_w2v *m)
{
    if (!m)
        return;
    nlp_free(m->syn0);
    nlp_free(m->syn1);
    nlp_free(m->syn1neg);
    nlp_free(m->out);
    nlp_free(m->keep);
    nlp_w2v_huffman_free(m->huff);
    nlp_w2v_unigram_free(m->uni);
    nlp_free(m);
}

int nlp_w2v_dim(const nlp_w2v *m)
{
    return m->D;
}

int64_t nlp_w2v_words_processed(const nlp_w2v *m)
{
    return m->words_done;
}

int64_t nlp_w2v_words_trained(const nlp_w2v *m)
{
    return m->words_kept;
}

const float *nlp_w2v_vectors(const nlp_w2v *m)
{
    if (m->stride == m->D)
        return m->syn0;
    nlp_w2v *mm = (nlp_w2v *)m;  /* the unpadded copy is a cache */
    if (!mm->out) {
        mm->out = nlp_malloc((size_t)m->V * (size_t)m->D * sizeof(float));
        if (!mm->out)
            return NULL;
    }
    for (long i = 0; i < m->V; i++)
        memcpy(mm->out + (size_t)i * m->D, m->syn0 + (size_t)i * m->stride,
               (size_t)m->D * sizeof(float));
    return mm->out;
}

/* ---- vector kernels (n is a multiple of ROW_ALIGN, rows 64-byte aligned) */

INLINE float dot(const float *restrict a, const float *restrict b, int n)
{
    float acc[ROW_ALIGN] = {0};
    for (int i = 0; i < n; i += ROW_ALIGN)
        for (int k = 0; k < ROW_ALIGN; k++)
            acc[k] += a[i + k] * b[i + k];
    /* Pairwise tree: vector halves, then a few scalars. */
    for (int k = 0; k < 8; k++)
        acc[k] += acc[k + 8];
    for (int k = 0; k < 4; k++)
        acc[k] += acc[k + 4];
    return (acc[0] + acc[2]) + (acc[1] + acc[3]);
}

/* y += g * x, in fixed blocks so that -O2 vectorises it too. */
INLINE void axpy(float *restrict y, float g, const float *restrict x, int n)
{
    for (int i = 0; i < n; i += ROW_ALIGN)
        for (int k = 0; k < ROW_ALIGN; k++)
            y[i + k] += g * x[i + k];
}

/* y = 0, same blocks. */
INLINE void zero(float *restrict y, int n)
{
    for (int i = 0; i < n; i += ROW_ALIGN)
        for (int k = 0; k < ROW_ALIGN; k++)
            y[i + k] = 0;
}

/*
** sigmoid(f) from the table, for f in [-MAX_EXP, MAX_EXP] only: callers
** compare f with the range first, so the conversion to int below never sees
** a value outside [0, 996] (nor a NaN, whose conversion is undefined and
** indexed far outside the table).  The scale keeps word2vec's integer
** EXP_TABLE_SIZE / MAX_EXP / 2 (83, not 83.3), so the same f reads the same
** entry as in the original.
*/
INLINE float sigmoid_in_range(const nlp_w2v *m, float f)
{
    return m->exp_table[(int)((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2))];
}

/*
** word2vec's gradient for a target with label given f = input . output.
** Beyond the table sigmoid is taken as 0 or 1, as in word2vec; a NaN f
** (training has diverged) gives no update and sets *bad.
*/
INLINE float grad_ns(const nlp_w2v *m, float f, int label, float alpha, int *bad)
{
    if (f >= -MAX_EXP && f <= MAX_EXP)
        return ((float)label - sigmoid_in_range(m, f)) * alpha;
    if (f > MAX_EXP)
        return (float)(label - 1) * alpha;
    if (f < -MAX_EXP)
        return (float)label * alpha;
    *bad = 1;
    return 0;
}

/* ---- one thread -------------------------------------------------------- */

typedef struct worker {
    nlp_w2v *m;
    int id;
    off_t start, end;          /* byte slice */
    nlp_rng rng;
    float *neu1, *neu1e;       /* (stride) */
    float *grad;               /* shared negatives: (2 window, 1 + negative) */
    float *dctx;               /* shared negatives: (2 window, stride) */
    int32_t *ctx;              /* shared negatives: context ids (2 window) */
    int32_t *sen;              /* (NLP_W2V_MAX_SENTENCE) */
    int64_t kept;              /* words left by subsampling */
    int64_t since_sync;        /* several processes: words read since the last average */
    int finished;              /* several processes: done, waiting for the others */
    int diverged;              /* a dot product was NaN */
    int rc;
    int err;                   /* errno of a failed read (this thread's own) */
    int fd;
} worker;

/* Negative sampling + hs updates of one (input l1, target word) pair. */
INLINE void train_pair(nlp_w2v *m, worker *w, const float *l1, long word, float alpha)
{
    const int S = m->stride;
    float *neu1e = w->neu1e;
    if (m->c.hs) {
        const nlp_w2v_huffman *h = m->huff;
        for (int64_t d = h->offset[word]; d < h->offset[word + 1]; d++) {
            float *l2 = m->syn1 + (size_t)h->points[d] * S;
            float f = dot(l1, l2, S);
            /* word2vec skips the node outside (-MAX_EXP, MAX_EXP); so does NaN. */
            if (!(f > -MAX_EXP && f < MAX_EXP)) {
                if (f != f)
                    w->diverged = 1;
                continue;
            }
            float g = (1.0f - (float)h->bits[d] - sigmoid_in_range(m, f)) * alpha;
            axpy(neu1e, g, l2, S);
            axpy(l2, g, l1, S);
        }
    }
    for (int d = 0; d < m->c.negative + 1 && m->c.negative > 0; d++) {
        long target;
        int label;
        if (d == 0) {
            target = word;
            label = 1;
        } else {
            target = unigram_draw(m->uni, nlp_rng_u64(&w->rng));
            if (target == word)
                continue;
            label = 0;
        }
        float *l2 = m->syn1neg + (size_t)target * S;
        float g = grad_ns(m, dot(l1, l2, S), label, alpha, &w->diverged);
        axpy(neu1e, g, l2, S);
        axpy(l2, g, l1, S);
    }
}

/*
** Skip-gram with negatives shared by the window: the k context rows C and
** the 1 + negative target rows T interact through the k x (1+neg) matrix
** G = alpha * (label - sigmoid(C T')); then C += G T and T += G' C, both
** computed from the values before the update.
*/
INLINE void train_window_shared(nlp_w2v *m, worker *w, long word, const int32_t *ctx, int k, float alpha)
{
    const int S = m->stride, nt = m->c.negative + 1;
    int32_t targets[nt];
    int labels[nt];
    int t = 0;
    targets[t] = (int32_t)word;
    labels[t++] = 1;
    for (int d = 1; d < nt; d++) {
        long target = unigram_draw(m->uni, nlp_rng_u64(&w->rng));
        if (target == word)
            continue;
        targets[t] = (int32_t)target;
        labels[t++] = 0;
    }
    float *G = w->grad;
    for (int j = 0; j < k; j++) {
        const float *l1 = m->syn0 + (size_t)ctx[j] * S;
        for (int i = 0; i < t; i++)
            G[j * nt + i] = grad_ns(m, dot(l1, m->syn1neg + (size_t)targets[i] * S, S), labels[i], alpha,
                                    &w->diverged);
    }
    /* Context gradients first: T's update below needs C before its own. */
    for (int j = 0; j < k; j++) {
        float *dc = w->dctx + (size_t)j * S;
        zero(dc, S);
        for (int i = 0; i < t; i++)
            axpy(dc, G[j * nt + i], m->syn1neg + (size_t)targets[i] * S, S);
    }
    for (int i = 0; i < t; i++) {
        float *l2 = m->syn1neg + (size_t)targets[i] * S;
        for (int j = 0; j < k; j++)
            axpy(l2, G[j * nt + i], m->syn0 + (size_t)ctx[j] * S, S);
    }
    for (int j = 0; j < k; j++)
        axpy(m->syn0 + (size_t)ctx[j] * S, 1.0f, w->dctx + (size_t)j * S, S);
}

HOT static void train_sentence(nlp_w2v *m, worker *w, const int32_t *sen, int len, float alpha)
{
    const int S = m->stride, window = m->c.window;
    float *neu1 = w->neu1, *neu1e = w->neu1e;
    for (int pos = 0; pos < len; pos++) {
        long word = sen[pos];
        int b = (int)nlp_rng_below(&w->rng, (uint64_t)window);
        if (m->c.cbow) {
            zero(neu1, S);
            zero(neu1e, S);
            int cw = 0;
            for (int a = b; a < window * 2 + 1 - b; a++) {
                int c = pos - window + a;
                if (a == window || c < 0 || c >= len)
                    continue;
                axpy(neu1, 1.0f, m->syn0 + (size_t)sen[c] * S, S);
                cw++;
            }
            if (cw == 0)
                continue;
            float inv = 1.0f / (float)cw;
            for (int i = 0; i < S; i += ROW_ALIGN)
                for (int k = 0; k < ROW_ALIGN; k++)
                    neu1[i + k] *= inv;
            train_pair(m, w, neu1, word, alpha);
            for (int a = b; a < window * 2 + 1 - b; a++) {
                int c = pos - window + a;
                if (a == window || c < 0 || c >= len)
                    continue;
                axpy(m->syn0 + (size_t)sen[c] * S, 1.0f, neu1e, S);
            }
        } else if (m->c.shared_negatives && m->c.negative > 0 && !m->c.hs) {
            int k = 0;
            for (int a = b; a < window * 2 + 1 - b; a++) {
                int c = pos - window + a;
                if (a == window || c < 0 || c >= len)
                    continue;
                w->ctx[k++] = sen[c];
            }
            if (k > 0)
                train_window_shared(m, w, word, w->ctx, k, alpha);
        } else {
            for (int a = b; a < window * 2 + 1 - b; a++) {
                int c = pos - window + a;
                if (a == window || c < 0 || c >= len)
                    continue;
                float *l1 = m->syn0 + (size_t)sen[c] * S;
                zero(neu1e, S);
                train_pair(m, w, l1, word, alpha);
                axpy(l1, 1.0f, neu1e, S);
            }
        }
    }
}

static void sync_pause(nlp_w2v *m);

/* Words of all processes so far, for the learning rate: exact at the last
** average, this process's since then times the processes. */
static double words_seen(const nlp_w2v *m, int64_t done)
{
    if (!m->coll)
        return (double)done;
    return (double)m->global_base + (double)(done - m->local_base) * m->coll->size;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    nlp_w2v *m = w->m;
    const nlp_vocab *v = m->vocab;
    const double total = (double)m->c.iter * (double)m->train_words + 1;
    const float alpha0 = (float)m->alpha0;
    float alpha = alpha0;
    reader r;
    if (reader_init(&r, w->fd) != NLP_OK) {
        w->rc = NLP_ENOMEM;
        return NULL;
    }
    int64_t unreported = 0;
    for (int epoch = 0; epoch < m->c.iter && w->rc == NLP_OK; epoch++) {
        if ((w->rc = reader_start(&r, w->start, w->end)) != NLP_OK) {
            w->err = r.err;
            break;
        }
        int more = 1;
        while (more) {
            int len = 0;
            /* Read one sentence: up to a newline, the slice end or the length cap. */
            for (;;) {
                const char *s;
                size_t n;
                int t = reader_next(&r, &s, &n);
                if (t < 0) {
                    w->rc = t;
                    w->err = r.err;
                    more = 0;
                    break;
                }
                if (t == TOK_END) {
                    more = 0;
                    break;
                }
                if (t == TOK_EOL) {
                    unreported++;  /* "</s>" counts as a word, as in word2vec */
                    break;
                }
                long id = nlp_vocab_find(v, s, n);
                if (id < 0)
                    continue;      /* unknown words do not count */
                unreported++;
                if (id == 0)
                    break;
                float keep = m->keep[id];
                if (keep < 1.0f && keep < nlp_rng_uniform(&w->rng))
                    continue;
                w->sen[len++] = (int32_t)id;
                if (len >= NLP_W2V_MAX_SENTENCE)
                    break;
            }
            if (unreported >= REPORT_EVERY || !more) {
                int64_t done = __atomic_add_fetch(&m->words_done, unreported, __ATOMIC_RELAXED);
                w->since_sync += unreported;
                unreported = 0;
                alpha = alpha0 * (float)(1.0 - words_seen(m, done) / total);
                if (alpha < alpha0 * (float)MIN_ALPHA_FRACTION)
                    alpha = alpha0 * (float)MIN_ALPHA_FRACTION;
                if (w->id == 0 && m->c.progress) {
                    double el = nlp_progress_now() - m->start_time;
                    m->c.progress(m->c.progress_arg, words_seen(m, done) / total, alpha,
                                  el > 0 ? words_seen(m, done) / el : 0);
                }
            }
            if (len > 0) {
                w->kept += len;
                train_sentence(m, w, w->sen, len, alpha);
            }
            /* Diverged: every further update is NaN; all threads stop. */
            if (w->diverged)
                __atomic_store_n(&m->stop, 1, __ATOMIC_RELAXED);
            if (__atomic_load_n(&m->stop, __ATOMIC_RELAXED)) {
                __atomic_add_fetch(&m->words_done, unreported, __ATOMIC_RELAXED);
                unreported = 0;
                more = 0;
            }
            if (m->coll && more && w->since_sync + unreported >= m->quota) {
                /* Time for an average: the words so far count first. */
                __atomic_add_fetch(&m->words_done, unreported, __ATOMIC_RELAXED);
                w->since_sync += unreported;
                unreported = 0;
                sync_pause(m); /* the average zeroes since_sync */
            }
        }
        if (__atomic_load_n(&m->stop, __ATOMIC_RELAXED))
            break;
    }
    reader_free(&r);
    if (m->coll) {
        /* Done (or failed): in every average until all processes are. */
        pthread_mutex_lock(&m->mu);
        w->finished = 1;
        while (!m->all_done) {
            unsigned long r0 = m->round;
            if (++m->waiting == m->c.threads)
                pthread_cond_signal(&m->paused);
            while (m->round == r0)
                pthread_cond_wait(&m->resume, &m->mu);
        }
        pthread_mutex_unlock(&m->mu);
    }
    return NULL;
}

/* A thread waits for the next average (several processes). */
static void sync_pause(nlp_w2v *m)
{
    pthread_mutex_lock(&m->mu);
    unsigned long r0 = m->round;
    if (++m->waiting == m->c.threads)
        pthread_cond_signal(&m->paused);
    while (m->round == r0)
        pthread_cond_wait(&m->resume, &m->mu);
    pthread_mutex_unlock(&m->mu);
}

/* floor(size * t / T) without overflow or floating point (t <= T). */
static off_t slice_at(off_t size, int t, int T)
{
    return size / T * t + size % T * t / T;
}

/* 1 when every input vector is finite. */
static int all_finite(const nlp_w2v *m)
{
    for (long i = 0; i < m->V; i++) {
        const float *x = m->syn0 + (size_t)i * m->stride;
        for (int d = 0; d < m->D; d++)
            if (!isfinite(x[d]))
                return 0;
    }
    return 1;
}

/*
** The processes' weights combined into the same matrices on every one:
** summed (one sum per matrix), then either divided by their number
** (sync_average, pWord2Vec's model averaging), or, by default, turned into
** the weights of the last sync plus every process's updates since:
** sum - (R - 1) base.  Averaging scales each process's updates by 1/R, so
** R processes learn as if at 1/R of the learning rate (on gutenberg,
** CBOW, 5 epochs, 2 processes syncing every 250000 words: analogy 15.0%,
** adding up 18.8%, against 20.3% for one process
** with 2 threads); adding them up applies every update once, as threads do.
*/
static int average(nlp_w2v *m, nlp_error *e)
{
    const nlp_train_collective *k = m->coll;
    float *mat[3] = { m->syn0, m->syn1, m->syn1neg };
    size_t rows[3] = { (size_t)m->V, (size_t)m->V - 1, (size_t)m->V };
    const float inv = 1.0f / (float)k->size, others = (float)(k->size - 1);
    for (int i = 0; i < 3; i++) {
        if (!mat[i])
            continue;
        size_t n = rows[i] * (size_t)m->stride;
        int rc = k->sum_float(k->ctx, mat[i], n, e);
        if (rc != NLP_OK) {
            if (e && e->code == NLP_OK)
                nlp_error_set(e, rc < 0 ? rc : NLP_EIO, NULL, 0, "averaging the vectors over "
                              "the processes failed");
            return rc < 0 ? rc : NLP_EIO;
        }
        float *x = mat[i], *b = m->base[i];
        if (m->c.sync_average || !b) {
            for (size_t j = 0; j < n; j++)
                x[j] *= inv;
        } else {
            for (size_t j = 0; j < n; j++)
                b[j] = x[j] = x[j] - others * b[j];
        }
    }
    return NLP_OK;
}

/*
** Several processes: the calling thread's part while the T threads train.
** Whenever every thread is paused (its quota read, or done), the processes
** sum their words and states (still working, failed, diverged) and
** average the weights; then the threads resume, or, once no process works
** or one failed, return.  *others_failed: another process failed.
*/
static int coordinate(nlp_w2v *m, const worker *ws, int T, int *others_failed, nlp_error *e)
{
    const nlp_train_collective *k = m->coll;
    int rc = NLP_OK;
    for (int done = 0; !done;) {
        pthread_mutex_lock(&m->mu);
        while (m->waiting < T)
            pthread_cond_wait(&m->paused, &m->mu);
        int working = 0, failed = 0;
        for (int t = 0; t < T; t++) {
            working |= !ws[t].finished;
            failed |= ws[t].rc != NLP_OK;
        }
        pthread_mutex_unlock(&m->mu);
        /* Every thread is paused: the weights hold still. */
        int64_t local = __atomic_load_n(&m->words_done, __ATOMIC_RELAXED);
        double v[4] = { (double)(local - m->local_base), working, failed,
                        __atomic_load_n(&m->stop, __ATOMIC_RELAXED) };
        rc = k->sum_double(k->ctx, v, 4, e);
        if (rc == NLP_OK)
            rc = average(m, e);
        if (rc == NLP_OK) {
            m->global_base += (int64_t)v[0];
            m->local_base = local;
            if (v[2] > 0 && !failed)
                *others_failed = 1;
            if (v[2] > 0 || v[3] > 0)
                __atomic_store_n(&m->stop, 1, __ATOMIC_RELAXED);
        } else if (e && e->code == NLP_OK) {
            nlp_error_set(e, rc < 0 ? rc : NLP_EIO, NULL, 0, "summing over the processes failed");
        }
        done = rc != NLP_OK || v[1] == 0 || v[2] > 0 || v[3] > 0;
        pthread_mutex_lock(&m->mu);
        for (int t = 0; t < T; t++)
            ((worker *)ws)[t].since_sync = 0;
        m->all_done = done;
        m->waiting = 0;
        m->round++;
        pthread_cond_broadcast(&m->resume);
        pthread_mutex_unlock(&m->mu);
    }
    return rc < 0 ? rc : rc > 0 ? NLP_EIO : NLP_OK;
}

int nlp_w2v_train(nlp_w2v *m, int fd, off_t size, const char *path, nlp_error *e)
{
    int T = m->c.threads;
    worker *ws = nlp_calloc((size_t)T, sizeof *ws);
    pthread_t *tids = nlp_calloc((size_t)T, sizeof *tids);
    int rc = NLP_OK;
    if (!ws || !tids) {
        nlp_free(ws);
        nlp_free(tids);
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    }
    m->words_done = 0;
    m->words_kept = 0;
    m->stop = 0;
    m->start_time = nlp_progress_now();
    nlp_rng master;
    nlp_rng_seed(&master, m->c.seed ^ 0x5eed5eed5eed5eedULL);
    const int nt = m->c.negative + 1, W2 = 2 * m->c.window;
    /* Several processes: slices r*T .. r*T+T-1 of R*T, and the rngs of
    ** those threads of one process with R*T threads. */
    m->coll = m->c.collective && m->c.collective->size > 1 ? m->c.collective : NULL;
    const int first = m->coll ? m->coll->rank * T : 0, all = m->coll ? m->coll->size * T : T;
    if (m->coll) {
        nlp_rng skip;
        for (int t = 0; t < first; t++)
            nlp_rng_split(&master, &skip);
        m->waiting = 0;
        m->round = 0;
        m->all_done = 0;
        m->global_base = m->local_base = 0;
        m->quota = m->c.sync_words / T > 0 ? m->c.sync_words / T : 1;
        float *mat[3] = { m->syn0, m->syn1, m->syn1neg };
        size_t rows[3] = { (size_t)m->V, (size_t)m->V - 1, (size_t)m->V };
        for (int i = 0; i < 3 && !m->c.sync_average; i++)
            if (mat[i]) {
                if (!(m->base[i] = alloc_rows((long)rows[i], m->stride)))
                    rc = NLP_ENOMEM;
                else
                    memcpy(m->base[i], mat[i], rows[i] * (size_t)m->stride * sizeof(float));
            }
    }
    for (int t = 0; t < T; t++) {
        worker *w = &ws[t];
        w->m = m;
        w->id = t;
        w->fd = fd;
        w->start = slice_at(size, first + t, all);
        w->end = slice_at(size, first + t + 1, all);
        nlp_rng_split(&master, &w->rng);
        w->neu1 = alloc_rows(1, m->stride);
        w->neu1e = alloc_rows(1, m->stride);
        w->grad = alloc_rows(W2, nt);
        w->dctx = alloc_rows(W2, m->stride);
        w->ctx = nlp_malloc((size_t)W2 * sizeof *w->ctx);
        w->sen = nlp_malloc(NLP_W2V_MAX_SENTENCE * sizeof *w->sen);
        if (!w->neu1 || !w->neu1e || !w->grad || !w->dctx || !w->ctx || !w->sen)
            rc = NLP_ENOMEM;
    }
    int started = 0, others_failed = 0, crc = NLP_OK, sync_init = 0;
    if (rc == NLP_OK && m->coll) {
        /* Several processes: T threads, this one coordinates the averages. */
        if (pthread_mutex_init(&m->mu, NULL) != 0) {
            rc = NLP_ENOMEM;
        } else if (pthread_cond_init(&m->paused, NULL) != 0) {
            pthread_mutex_destroy(&m->mu);
            rc = NLP_ENOMEM;
        } else if (pthread_cond_init(&m->resume, NULL) != 0) {
            pthread_cond_destroy(&m->paused);
            pthread_mutex_destroy(&m->mu);
            rc = NLP_ENOMEM;
        } else {
            sync_init = 1;
        }
        for (; rc == NLP_OK && started < T; started++)
            if (pthread_create(&tids[started], NULL, worker_main, &ws[started]) != 0) {
                rc = NLP_EINVAL;
                break;
            }
        if (rc == NLP_OK) {
            crc = coordinate(m, ws, T, &others_failed, e);
        } else if (started > 0) {
            /* The threads made wait for averages: end them. */
            __atomic_store_n(&m->stop, 1, __ATOMIC_RELAXED);
            pthread_mutex_lock(&m->mu);
            m->all_done = 1;
            m->round++;
            pthread_cond_broadcast(&m->resume);
            pthread_mutex_unlock(&m->mu);
        }
    } else if (rc == NLP_OK) {
        if (T == 1) {
            worker_main(&ws[0]);
            started = 0;
        } else {
            for (; started < T; started++)
                if (pthread_create(&tids[started], NULL, worker_main, &ws[started]) != 0) {
                    rc = NLP_EINVAL;
                    break;
                }
        }
    }
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    if (sync_init) {
        pthread_cond_destroy(&m->resume);
        pthread_cond_destroy(&m->paused);
        pthread_mutex_destroy(&m->mu);
    }
    for (int i = 0; i < 3; i++) {
        nlp_free(m->base[i]);
        m->base[i] = NULL;
    }
    int err = 0, diverged = 0;
    for (int t = 0; t < T; t++) {
        if (rc == NLP_OK && ws[t].rc != NLP_OK) {
            rc = ws[t].rc;
            err = ws[t].err;   /* the failing thread's errno, not this thread's */
        }
        diverged |= ws[t].diverged;
        m->words_kept += ws[t].kept;
        nlp_free(ws[t].neu1);
        nlp_free(ws[t].neu1e);
        nlp_free(ws[t].grad);
        nlp_free(ws[t].dctx);
        nlp_free(ws[t].ctx);
        nlp_free(ws[t].sen);
    }
    nlp_free(ws);
    nlp_free(tids);
    if (crc != NLP_OK)
        return crc; /* e filled by the collective */
    if (rc == NLP_OK && others_failed)
        return nlp_error_set(e, NLP_EIO, NULL, 0, "training failed on another process");
    if (rc == NLP_EIO)
        return nlp_error_set(e, rc, path, 0, "read error: %s", strerror(err ? err : EIO));
    if (rc == NLP_EINVAL)
        return nlp_error_set(e, rc, NULL, 0, "cannot start %d threads", T);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, path, 0, NULL);
    if (diverged || !all_finite(m)) {
        double total = (double)m->c.iter * (double)m->train_words;
        return nlp_error_set(e, NLP_ERANGE, NULL, 0,
                             "training diverged (the vectors are no longer finite numbers) after "
                             "%.1f%% of the words; try a smaller learning rate than %g",
                             total > 0 ? 100.0 * (double)m->words_done / total : 100.0, m->alpha0);
    }
    return NLP_OK;
}

/* ---- word classes ---------------------------------------------------------- */

/* Rows scored per BLAS call in nlp_w2v_classes. */
#define CLASS_BLOCK 256

int nlp_w2v_classes(const float *vectors, long n, int dim, int k, int iter, int32_t *classes)
{
    if (n < 0 || dim < 1 || k < 1 || iter < 0)
        return NLP_EINVAL;
    if (n == 0)
        return NLP_OK;
    /* Classes from n on start empty and stay empty (see below): leave them out. */
    long K = k < n ? k : n;
    if ((size_t)K > SIZE_MAX / sizeof(double) / (size_t)dim
        || (size_t)K > SIZE_MAX / sizeof(float) / CLASS_BLOCK)
        return NLP_ENOMEM;
    double *sum = nlp_malloc((size_t)K * (size_t)dim * sizeof *sum);
    float *cent = nlp_malloc((size_t)K * (size_t)dim * sizeof *cent);
    float *score = nlp_malloc((size_t)CLASS_BLOCK * (size_t)K * sizeof *score);
    int64_t *members = nlp_malloc((size_t)K * sizeof *members);
    uint8_t *usable = nlp_malloc((size_t)K);
    if (!sum || !cent || !score || !members || !usable) {
        nlp_free(sum);
        nlp_free(cent);
        nlp_free(score);
        nlp_free(members);
        nlp_free(usable);
        return NLP_ENOMEM;
    }
    /* word2vec's start: word a in class a mod k. */
    for (long i = 0; i < n; i++)
        classes[i] = (int32_t)(i % K);
    for (int it = 0; it < iter; it++) {
        /* Centroids: the members' sum over (members + 1), as word2vec, then unit length. */
        memset(sum, 0, (size_t)K * (size_t)dim * sizeof *sum);
        for (long c = 0; c < K; c++)
            members[c] = 1;
        for (long i = 0; i < n; i++) {
            double *s = sum + (size_t)classes[i] * (size_t)dim;
            const float *x = vectors + (size_t)i * (size_t)dim;
            for (int d = 0; d < dim; d++)
                s[d] += x[d];
            members[classes[i]]++;
        }
        for (long c = 0; c < K; c++) {
            double *s = sum + (size_t)c * (size_t)dim, norm = 0;
            for (int d = 0; d < dim; d++) {
                s[d] /= (double)members[c];
                norm += s[d] * s[d];
            }
            norm = sqrt(norm);
            /* word2vec divides by a zero norm and gets NaN, which never wins. */
            usable[c] = norm > 0 && isfinite(norm);
            for (int d = 0; d < dim; d++)
                cent[(size_t)c * (size_t)dim + d] = usable[c] ? (float)(s[d] / norm) : 0.0f;
        }
        /* Each word joins the class of largest dot product (the first on a tie). */
        for (long i0 = 0; i0 < n; i0 += CLASS_BLOCK) {
            int nb = (int)(n - i0 < CLASS_BLOCK ? n - i0 : CLASS_BLOCK);
            /* score (nb, K) = vectors[i0..] (nb, dim) . cent (K, dim)' */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, (int)K, dim, 1.0f,
                        vectors + (size_t)i0 * (size_t)dim, dim, cent, dim, 0.0f, score, (int)K);
            for (int j = 0; j < nb; j++) {
                const float *sc = score + (size_t)j * (size_t)K;
                long best = 0;
                int found = 0;
                for (long c = 0; c < K; c++)
                    if (usable[c] && (!found || sc[c] > sc[best])) {
                        best = c;
                        found = 1;
                    }
                classes[i0 + j] = (int32_t)best;
            }
        }
    }
    nlp_free(sum);
    nlp_free(cent);
    nlp_free(score);
    nlp_free(members);
    nlp_free(usable);
    return NLP_OK;
}
