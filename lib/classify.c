/*
** classify: the many-to-one recurrent text classifier.  See nlp/classify.h.
**
** This file wires the library's layers together (an embedding lookup over
** two tables, nlp_rnn, a pooling of its own, nlp_linear, nlp_loss) and adds
** what is specific to labelled sentences: the two input formats, the
** vocabulary with <unk> and vector-only words, batches of similar length,
** the model file and the training task for nlp/train.
*/
#include "nlp/classify.h"
#include "nlp/alloc.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nlp/crc32.h"
#include "nlp/linear.h"
#include "nlp/lines.h"
#include "nlp/loss.h"
#include "nlp/params.h"
#include "nlp/tensor.h"
#include "nlp/utf8.h"
#include "sort.h"

#define FT_PREFIX "__label__"
#define FT_PREFIX_LEN 9

/* Hyperparameter bounds a model file may state (far above any real use,
** low enough that every size product below fits). */
#define MAX_LAYERS 16
#define MAX_WIDTH 8192     /* embed, hidden, attention */

/* Inference keeps the layer-0 input projections of at most this many bytes
** of words (the most frequent come first in the vocabulary); rarer words
** past it are projected again in every batch that has them. */
#define PROJ_MAX_BYTES ((size_t)128 << 20)
#define PROJ_FIRST_ROWS 1024 /* the cache's first size; it doubles */

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* ==== Names ============================================================== */

int nlp_classify_format_parse(const char *name, nlp_classify_format *f)
{
    if (!name)
        return NLP_EINVAL;
    if (!strcmp(name, "auto"))
        *f = NLP_CLASSIFY_AUTO;
    else if (!strcmp(name, "tsv"))
        *f = NLP_CLASSIFY_TSV;
    else if (!strcmp(name, "fasttext"))
        *f = NLP_CLASSIFY_FASTTEXT;
    else
        return NLP_EINVAL;
    return NLP_OK;
}

const char *nlp_classify_format_name(nlp_classify_format f)
{
    return f == NLP_CLASSIFY_TSV ? "tsv" : f == NLP_CLASSIFY_FASTTEXT ? "fasttext" : "auto";
}

static const char *const pool_names[] = {"max", "mean", "last", "attention"};

int nlp_classify_pool_parse(const char *name, nlp_classify_pool *p)
{
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, pool_names[i])) {
            *p = (nlp_classify_pool)i;
            return NLP_OK;
        }
    return NLP_EINVAL;
}

const char *nlp_classify_pool_name(nlp_classify_pool p)
{
    return (int)p >= 0 && (int)p < 4 ? pool_names[p] : NULL;
}

/* ==== Labelled text ====================================================== */

void nlp_classify_data_free(nlp_classify_data *d)
{
    if (!d)
        return;
    nlp_free(d->start);
    nlp_free(d->tok);
    nlp_free(d->label);
    nlp_free(d->line);
    nlp_vocab_free(d->words);
    nlp_vocab_free(d->labels);
    nlp_free(d);
}

int nlp_classify_tokens(const nlp_vocab *words, const char *text, size_t len, int **ids,
                        size_t *cap, int *n, size_t *nunk)
{
    size_t k = 0, i = 0;
    *n = 0;
    while (i < len) {
        while (i < len && is_space((unsigned char)text[i]))
            i++;
        if (i == len)
            break;
        size_t s = i;
        while (i < len && !is_space((unsigned char)text[i]))
            i++;
        if (k >= INT_MAX)
            return NLP_ERANGE;
        if (nlp_grow((void **)ids, cap, k + 1, sizeof **ids, 256) != NLP_OK)
            return NLP_ENOMEM;
        long id = words ? nlp_vocab_find(words, text + s, i - s) : -1;
        if (id < 0) {
            id = NLP_CLASSIFY_UNK_ID;
            if (nunk)
                (*nunk)++;
        }
        (*ids)[k++] = (int)id;
    }
    *n = (int)k;
    return NLP_OK;
}

/* Everything read so far, and the growable arrays behind d. */
typedef struct reader {
    nlp_classify_data *d;
    size_t cap_ex, cap_label, cap_line, cap_tok;
} reader;

static int add_example(reader *r, const char *label, size_t llen, const char *text,
                       size_t tlen, long line, const char *path, nlp_error *e)
{
    nlp_classify_data *d = r->d;
    if (d->n >= LONG_MAX - 1 || (size_t)d->n + 2 > SIZE_MAX / sizeof(size_t))
        return nlp_error_set(e, NLP_ERANGE, path, line, "too many examples");
    if (nlp_grow((void **)&d->start, &r->cap_ex, (size_t)d->n + 2, sizeof *d->start, 256) != NLP_OK ||
        nlp_grow((void **)&d->label, &r->cap_label, (size_t)d->n + 1, sizeof *d->label, 256) != NLP_OK ||
        nlp_grow((void **)&d->line, &r->cap_line, (size_t)d->n + 1, sizeof *d->line, 256) != NLP_OK)
        return nlp_error_set(e, NLP_ENOMEM, path, line, NULL);

    long lid = nlp_vocab_add(d->labels, label, llen);
    if (lid < 0)
        return nlp_error_set(e, (int)lid, path, line, NULL);
    if (lid >= NLP_CLASSIFY_MAX_LABELS)
        return nlp_error_set(e, NLP_ERANGE, path, line, "more than %d labels",
                             NLP_CLASSIFY_MAX_LABELS);
    size_t k = d->start[d->n], i = 0, first = k;
    while (i < tlen) {
        while (i < tlen && is_space((unsigned char)text[i]))
            i++;
        if (i == tlen)
            break;
        size_t s = i;
        while (i < tlen && !is_space((unsigned char)text[i]))
            i++;
        if (k >= INT_MAX)
            return nlp_error_set(e, NLP_ERANGE, path, line, "more than %d tokens", INT_MAX);
        if (nlp_grow((void **)&d->tok, &r->cap_tok, k + 1, sizeof *d->tok, 256) != NLP_OK)
            return nlp_error_set(e, NLP_ENOMEM, path, line, NULL);
        long id = nlp_vocab_add(d->words, text + s, i - s);
        if (id < 0)
            return nlp_error_set(e, (int)id, path, line, NULL);
        if (id >= INT_MAX - 1)
            return nlp_error_set(e, NLP_ERANGE, path, line, "too many distinct words");
        d->tok[k++] = (int)id;
    }
    if (k == first)
        return nlp_error_set(e, NLP_EFORMAT, path, line, "no text after the label");
    d->label[d->n] = (int)lid;
    d->line[d->n] = line;
    d->n++;
    d->start[d->n] = k;
    return NLP_OK;
}

/* One non-empty line in format fmt (never AUTO). */
static int parse_line(reader *r, char *s, size_t len, long line, nlp_classify_format fmt,
                      const char *path, nlp_error *e)
{
    if (fmt == NLP_CLASSIFY_TSV) {
        char *tab = memchr(s, '\t', len);
        if (!tab)
            return nlp_error_set(e, NLP_EFORMAT, path, line,
                                 "no TAB between label and text (the tsv format is "
                                 "'label<TAB>text')");
        if (tab == s)
            return nlp_error_set(e, NLP_EFORMAT, path, line, "empty label before the TAB");
        return add_example(r, s, (size_t)(tab - s), tab + 1, len - (size_t)(tab - s) - 1,
                           line, path, e);
    }
    size_t i = 0;
    while (i < len && is_space((unsigned char)s[i]))
        i++;
    size_t ls = i;
    while (i < len && !is_space((unsigned char)s[i]))
        i++;
    if (i - ls < FT_PREFIX_LEN || memcmp(s + ls, FT_PREFIX, FT_PREFIX_LEN) != 0)
        return nlp_error_set(e, NLP_EFORMAT, path, line,
                             "no label: the fasttext format is '__label__LABEL text'");
    if (i - ls == FT_PREFIX_LEN)
        return nlp_error_set(e, NLP_EFORMAT, path, line, "empty label after __label__");
    /* A second label would be a multi-label example: not this model's. */
    for (size_t j = i; j + FT_PREFIX_LEN <= len; j++)
        if ((j == 0 || is_space((unsigned char)s[j - 1])) &&
            memcmp(s + j, FT_PREFIX, FT_PREFIX_LEN) == 0)
            return nlp_error_set(e, NLP_EFORMAT, path, line,
                                 "a second __label__ (one label per line only)");
    return add_example(r, s + ls + FT_PREFIX_LEN, i - ls - FT_PREFIX_LEN, s + i, len - i,
                       line, path, e);
}

int nlp_classify_data_read(nlp_classify_data **out, FILE *f, const char *path,
                           nlp_classify_format fmt, nlp_error *e)
{
    *out = NULL;
    reader r = {0};
    nlp_classify_data *d = nlp_calloc(1, sizeof *d);
    nlp_lines *lr = NULL;
    int rc = nlp_lines_new(&lr, f, NLP_LINES_STRIP_CR);
    if (rc == NLP_OK && !d)
        rc = NLP_ENOMEM;
    if (rc != NLP_OK) {
        rc = nlp_error_set(e, rc, path, 0, NULL);
        goto done;
    }
    r.d = d;
    /* A failed constructor leaves NULL, checked below with the rest. */
    (void)nlp_vocab_new(&d->words);
    (void)nlp_vocab_new(&d->labels);
    d->start = nlp_calloc(1, sizeof *d->start);
    d->label = nlp_malloc(sizeof *d->label);
    d->line = nlp_malloc(sizeof *d->line);
    r.cap_ex = r.cap_label = r.cap_line = 1;
    if (!d->words || !d->labels || !d->start || !d->label || !d->line) {
        rc = nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
        goto done;
    }
    char *s;
    size_t len;
    int got;
    while ((got = nlp_lines_next(lr, &s, &len)) == 1) {
        long line = nlp_lines_number(lr);
        if (len == 0)
            continue;
        if (!nlp_utf8_is_valid(s, len)) {
            size_t at = nlp_utf8_valid_prefix(s, len);
            rc = nlp_error_set(e, NLP_EUTF8, path, line, "invalid UTF-8 at byte %zu", at + 1);
            goto done;
        }
        if (memchr(s, '\0', len)) {
            rc = nlp_error_set(e, NLP_EFORMAT, path, line, "NUL byte in the line");
            goto done;
        }
        if (fmt == NLP_CLASSIFY_AUTO) {
            size_t i = 0;
            while (i < len && is_space((unsigned char)s[i]))
                i++;
            fmt = len - i >= FT_PREFIX_LEN && !memcmp(s + i, FT_PREFIX, FT_PREFIX_LEN)
                      ? NLP_CLASSIFY_FASTTEXT : NLP_CLASSIFY_TSV;
        }
        if ((rc = parse_line(&r, s, len, line, fmt, path, e)) != NLP_OK)
            goto done;
    }
    if (got < 0) {
        rc = nlp_error_set(e, got, path, nlp_lines_number(lr) + 1,
                           got == NLP_EIO ? "read error" : NULL);
        goto done;
    }
    d->format = fmt == NLP_CLASSIFY_AUTO ? NLP_CLASSIFY_TSV : fmt;
    d->lines = nlp_lines_number(lr);
done:
    nlp_lines_free(lr);
    if (rc != NLP_OK) {
        nlp_classify_data_free(d);
        return rc;
    }
    *out = d;
    return NLP_OK;
}

/* ==== Vocabulary and labels ============================================== */

static int more_frequent(const void *ctx, long a, long b)
{
    return nlp_vocab_count(ctx, a) > nlp_vocab_count(ctx, b);
}

int nlp_classify_words_build(nlp_vocab **out, long *trained, const nlp_vocab *counts,
                             long min_count, const nlp_vectors *vectors, long max_extra)
{
    *out = NULL;
    long n = nlp_vocab_size(counts);
    long *ids = nlp_malloc((size_t)(n ? n : 1) * sizeof *ids);
    nlp_vocab *v;
    (void)nlp_vocab_new(&v); /* NULL on failure */
    if (!ids || !v) {
        nlp_free(ids);
        nlp_vocab_free(v);
        return NLP_ENOMEM;
    }
    int rc = NLP_OK;
    if (nlp_vocab_add_count(v, NLP_CLASSIFY_UNK, strlen(NLP_CLASSIFY_UNK), 0) < 0) {
        rc = NLP_ENOMEM;
        goto done;
    }
    nlp_vocab_pin(v);
    /* Most frequent first, ties in id order. */
    for (long i = 0; i < n; i++)
        ids[i] = i;
    {
        long *tmp = nlp_malloc((size_t)(n ? n : 1) * sizeof *tmp);
        if (!tmp) {
            rc = NLP_ENOMEM;
            goto done;
        }
        nlp_sort_stable(ids, tmp, n, more_frequent, counts);
        nlp_free(tmp);
    }
    for (long i = 0; i < n; i++) {
        long id = ids[i];
        int64_t c = nlp_vocab_count(counts, id);
        if (c < min_count)
            continue;
        const char *w = nlp_vocab_word(counts, id);
        size_t wl = nlp_vocab_word_len(counts, id);
        if (wl == strlen(NLP_CLASSIFY_UNK) && !memcmp(w, NLP_CLASSIFY_UNK, wl))
            continue; /* a literal "<unk>" in the text is the unknown word */
        if (nlp_vocab_size(v) >= INT_MAX - 1) {
            rc = NLP_ERANGE;
            goto done;
        }
        if (nlp_vocab_add_count(v, w, wl, c) < 0) {
            rc = NLP_ENOMEM;
            goto done;
        }
    }
    *trained = nlp_vocab_size(v);
    if (vectors) {
        long added = 0;
        for (long i = 0; i < vectors->n && (max_extra < 0 || added < max_extra); i++) {
            const char *w = nlp_vocab_word(vectors->words, i);
            size_t wl = nlp_vocab_word_len(vectors->words, i);
            if (nlp_vocab_find(v, w, wl) >= 0)
                continue;
            if (nlp_vocab_size(v) >= INT_MAX - 1) {
                rc = NLP_ERANGE;
                goto done;
            }
            if (nlp_vocab_add_count(v, w, wl, 0) < 0) {
                rc = NLP_ENOMEM;
                goto done;
            }
            added++;
        }
    }
done:
    nlp_free(ids);
    if (rc != NLP_OK) {
        nlp_vocab_free(v);
        return rc;
    }
    *out = v;
    return NLP_OK;
}

static int bytes_cmp(const nlp_vocab *v, long a, long b)
{
    size_t la = nlp_vocab_word_len(v, a), lb = nlp_vocab_word_len(v, b);
    int c = memcmp(nlp_vocab_word(v, a), nlp_vocab_word(v, b), la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

int nlp_classify_labels_build(nlp_vocab **out, const nlp_vocab *seen)
{
    *out = NULL;
    long n = nlp_vocab_size(seen);
    if (n < 2 || n > NLP_CLASSIFY_MAX_LABELS)
        return NLP_EINVAL;
    long *ids = nlp_malloc((size_t)n * sizeof *ids);
    nlp_vocab *v;
    (void)nlp_vocab_new(&v); /* NULL on failure */
    if (!ids || !v) {
        nlp_free(ids);
        nlp_vocab_free(v);
        return NLP_ENOMEM;
    }
    /* Insertion sort: at most NLP_CLASSIFY_MAX_LABELS, usually a handful. */
    for (long i = 0; i < n; i++) {
        long j = i;
        while (j > 0 && bytes_cmp(seen, ids[j - 1], i) > 0) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = i;
    }
    for (long i = 0; i < n; i++)
        if (nlp_vocab_add_count(v, nlp_vocab_word(seen, ids[i]), nlp_vocab_word_len(seen, ids[i]),
                                nlp_vocab_count(seen, ids[i])) < 0) {
            nlp_free(ids);
            nlp_vocab_free(v);
            return NLP_ENOMEM;
        }
    nlp_free(ids);
    *out = v;
    return NLP_OK;
}

/* ==== The model ========================================================== */

struct nlp_classify {
    nlp_classify_config cfg;
    nlp_vocab *words;       /* V words, 0 = <unk> */
    nlp_vocab *labels;      /* K labels */
    int V, Vt, K;           /* words, trained rows, labels */
    int E, H, D, DH, A;     /* sizes; A only for attention pooling */
    nlp_params *params;
    int emb;                /* view of "embed.weight" (Vt,E); -1 when Vt == 0 */
    float *fixed;           /* (V-Vt, E) rows never trained; NULL when none */
    nlp_rnn *rnn;
    nlp_linear att;         /* (A, DH) + bias: attention pooling */
    int att_v;              /* view of "pool.query" (A) */
    nlp_linear out;         /* (K, DH) + bias */
    unsigned char *wblob, *lblob; /* vocab and label blobs, for saving */
    size_t nwblob, nlblob;
    /* Workspace for max_T x max_B, and the last forward. */
    int max_T, max_B;
    int backward_ws;        /* the workspace has what training needs (x and
                               the gradients); 0: prediction only */
    int T, B;               /* shape of the last forward, 0 = none */
    int train;              /* the last forward applied dropout */
    int infer;              /* the last forward was the cached inference one
                               (no backward can follow) */
    int have_loss;          /* nlp_classify_loss ran since the forward */
    int *ids;               /* (T,B) time-major, -1 padding */
    int *len;               /* (B) */
    float *x, *xmask, *dx;  /* (T,B,E) embedded input, dropout mask, gradient */
    float *y, *dy;          /* (T,B,DH) rnn output and its gradient */
    float *u, *du;          /* (T,B,A) attention pooling */
    float *alpha;           /* (T,B) attention weights */
    int *arg;               /* (B,DH) arg max step of max pooling */
    float *pooled, *pmask, *dpooled; /* (B,DH) */
    float *logits, *dlogits; /* (B,K) */
    /* Inference: the rows W_ih e + b of layer 0 for each word e, per
    ** direction side by side (D*G*H floats a row), made when a word is
    ** first met and kept while the weights stay as they are: the input
    ** GEMM of every step becomes a lookup. */
    int GH;                 /* G*H: gate pre-activations per direction */
    float *proj;            /* (pcap + pextra, D*GH): slots of cached words,
                               then a batch's uncached ones */
    int *slot;              /* (V) a word's slot, -1 none */
    int *slot_word;         /* (pmax) the word in each slot */
    int pcap, pused, pmax;  /* slots allocated, used, at most */
    size_t pextra;          /* rows allocated past the slots */
    int pstale;             /* the weights may have changed since */
    int *prow;              /* (max_T*max_B) row of each (t,b), -1 padding */
    float *px;              /* (max_T*max_B, E) embeddings to project */
};

void nlp_classify_config_default(nlp_classify_config *c)
{
    c->cell = NLP_RNN_LSTM;
    c->embed = 100;
    c->hidden = 150;
    c->layers = 1;
    c->bidirectional = 1;
    c->pool = NLP_CLASSIFY_POOL_MAX;
    c->attention = 0;
    c->dropout = 0.5f;
    c->word_dropout = 0.0f;
}

static const char *config_problem(const nlp_classify_config *c)
{
    if (c->cell != NLP_RNN_LSTM && c->cell != NLP_RNN_GRU && c->cell != NLP_RNN_TANH)
        return "unknown cell";
    if (c->embed < 1 || c->embed > MAX_WIDTH)
        return "embedding size out of range (1..8192)";
    if (c->hidden < 1 || c->hidden > MAX_WIDTH)
        return "hidden size out of range (1..8192)";
    if (c->layers < 1 || c->layers > MAX_LAYERS)
        return "layers out of range (1..16)";
    if (c->bidirectional != 0 && c->bidirectional != 1)
        return "bidirectional must be 0 or 1";
    if (!nlp_classify_pool_name(c->pool))
        return "unknown pooling";
    if (c->attention < 0 || c->attention > MAX_WIDTH)
        return "attention size out of range (0..8192)";
    if (!(c->dropout >= 0 && c->dropout < 1))
        return "dropout must be in [0,1)";
    if (!(c->word_dropout >= 0 && c->word_dropout < 1))
        return "word dropout must be in [0,1)";
    return NULL;
}

static void free_workspace(nlp_classify *m)
{
    nlp_free(m->ids);
    nlp_free(m->len);
    nlp_tensor_free(m->x);
    nlp_tensor_free(m->xmask);
    nlp_tensor_free(m->dx);
    nlp_tensor_free(m->y);
    nlp_tensor_free(m->dy);
    nlp_tensor_free(m->u);
    nlp_tensor_free(m->du);
    nlp_tensor_free(m->alpha);
    nlp_free(m->arg);
    nlp_tensor_free(m->pooled);
    nlp_tensor_free(m->pmask);
    nlp_tensor_free(m->dpooled);
    nlp_tensor_free(m->logits);
    nlp_tensor_free(m->dlogits);
    nlp_free(m->prow);
    nlp_tensor_free(m->px);
    m->prow = NULL;
    m->px = NULL;
    m->ids = m->len = m->arg = NULL;
    m->x = m->xmask = m->dx = m->y = m->dy = m->u = m->du = m->alpha = NULL;
    m->pooled = m->pmask = m->dpooled = m->logits = m->dlogits = NULL;
    m->max_T = m->max_B = 0;
    m->backward_ws = 0;
}

/* Drops the projection cache (the weights or the batch capacity changed). */
static void proj_free(nlp_classify *m)
{
    nlp_tensor_free(m->proj);
    nlp_free(m->slot);
    nlp_free(m->slot_word);
    m->proj = NULL;
    m->slot = m->slot_word = NULL;
    m->pcap = m->pused = 0;
    m->pextra = 0;
    m->pstale = 0;
}

void nlp_classify_free(nlp_classify *m)
{
    if (!m)
        return;
    free_workspace(m);
    proj_free(m);
    nlp_rnn_free(m->rnn);
    nlp_params_free(m->params);
    nlp_tensor_free(m->fixed);
    nlp_vocab_free(m->words);
    nlp_vocab_free(m->labels);
    nlp_free(m->wblob);
    nlp_free(m->lblob);
    nlp_free(m);
}

/*
** The model's layout: declares every parameter in m->params (layout phase)
** and makes the rnn with a 1x1 workspace.  Nothing proportional to the
** vocabulary is allocated here, so a loader can compare the declared
** shapes with a file's tensors first.
*/
static int layout(nlp_classify *m)
{
    const nlp_classify_config *c = &m->cfg;
    m->E = c->embed;
    m->H = c->hidden;
    m->D = c->bidirectional ? 2 : 1;
    m->DH = m->D * m->H;
    m->A = c->pool == NLP_CLASSIFY_POOL_ATTENTION ? (c->attention ? c->attention : m->DH) : 0;
    m->GH = (c->cell == NLP_RNN_LSTM ? 4 : c->cell == NLP_RNN_GRU ? 3 : 1) * m->H;
    {
        size_t row = (size_t)m->D * (size_t)m->GH * sizeof(float);
        size_t most = PROJ_MAX_BYTES / row;
        m->pmax = most < 1 ? 1 : most < (size_t)m->V ? (int)most : m->V;
    }
    m->emb = -1;
    m->att_v = -1;
    int rc = nlp_params_new(&m->params);
    if (rc != NLP_OK)
        return rc;
    if (m->Vt > 0) {
        int shape[2] = {m->Vt, m->E};
        if ((rc = nlp_params_add(m->params, "embed.weight", 2, shape)) < 0)
            return rc;
        m->emb = rc;
    }
    nlp_rnn_config rc_cfg;
    nlp_rnn_config_default(&rc_cfg);
    rc_cfg.cell = c->cell;
    rc_cfg.input = m->E;
    rc_cfg.hidden = m->H;
    rc_cfg.layers = c->layers;
    rc_cfg.bidirectional = c->bidirectional;
    rc_cfg.dropout = c->dropout;
    rc_cfg.max_T = 1;
    rc_cfg.max_B = 1;
    if ((rc = nlp_rnn_new(&m->rnn, &rc_cfg, m->params, "rnn")) != NLP_OK)
        return rc;
    if (m->A) {
        if ((rc = nlp_linear_init(&m->att, m->params, "pool.proj", m->DH, m->A, 1)) != NLP_OK)
            return rc;
        if ((rc = nlp_params_add(m->params, "pool.query", 1, (int[]){m->A})) < 0)
            return rc;
        m->att_v = rc;
    }
    return nlp_linear_init(&m->out, m->params, "out", m->DH, m->K, 1);
}

/* Allocates the weights and the blobs once the layout is accepted. */
static int finish(nlp_classify *m)
{
    int rc = nlp_params_alloc(m->params);
    if (rc != NLP_OK)
        return rc;
    if (m->V > m->Vt) {
        m->fixed = nlp_tensor_alloc((size_t)(m->V - m->Vt) * (size_t)m->E);
        if (!m->fixed)
            return NLP_ENOMEM;
    }
    if ((rc = nlp_vocab_to_blob(m->words, &m->wblob, &m->nwblob)) != NLP_OK)
        return rc;
    return nlp_vocab_to_blob(m->labels, &m->lblob, &m->nlblob);
}

static int check_words(const nlp_vocab *words, long trained, const nlp_vocab *labels)
{
    long V = words ? nlp_vocab_size(words) : 0, K = labels ? nlp_vocab_size(labels) : 0;
    if (V < 1 || V > INT_MAX - 1 || trained < 0 || trained > V || K < 2 ||
        K > NLP_CLASSIFY_MAX_LABELS)
        return 0;
    return strcmp(nlp_vocab_word(words, NLP_CLASSIFY_UNK_ID), NLP_CLASSIFY_UNK) == 0;
}

int nlp_classify_new(nlp_classify **out, const nlp_classify_config *cfg, nlp_vocab *words,
                     long trained, nlp_vocab *labels, nlp_rng *rng, nlp_error *e)
{
    *out = NULL;
    const char *why = config_problem(cfg);
    if (why || !check_words(words, trained, labels)) {
        nlp_vocab_free(words);
        nlp_vocab_free(labels);
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "%s",
                             why ? why : "bad vocabulary or label set");
    }
    nlp_classify *m = nlp_calloc(1, sizeof *m);
    if (!m) {
        nlp_vocab_free(words);
        nlp_vocab_free(labels);
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    }
    m->cfg = *cfg;
    m->words = words;
    m->labels = labels;
    m->V = (int)nlp_vocab_size(words);
    m->Vt = (int)trained;
    m->K = (int)nlp_vocab_size(labels);
    int rc = layout(m);
    if (rc == NLP_OK)
        rc = finish(m);
    if (rc != NLP_OK) {
        nlp_classify_free(m);
        return nlp_error_set(e, rc, NULL, 0, NULL);
    }
    /* Embeddings first (trained rows, then fixed), then the layers. */
    if (m->Vt)
        nlp_tensor_normal(nlp_params_data(m->params, m->emb), (size_t)m->Vt * m->E, 0, 1, rng);
    if (m->fixed)
        nlp_tensor_normal(m->fixed, (size_t)(m->V - m->Vt) * m->E, 0, 1, rng);
    /* The recurrent weights as torch.nn.LSTM/GRU: every one uniform in
    ** +-1/sqrt(H).  With N(0,1) embeddings under dropout, nlp_rnn_reset's
    ** Xavier/orthogonal start saturates the gates and learns SST-2 much
    ** more slowly (dev 63% against 70% after 2-3 epochs). */
    const float a = 1.0f / sqrtf((float)m->H);
    for (int i = 0; i < m->params->nviews; i++)
        if (!strncmp(m->params->views[i].name, "rnn.", 4))
            nlp_tensor_uniform(nlp_params_data(m->params, i), m->params->views[i].size, -a, a,
                               rng);
    if (m->A) {
        nlp_linear_reset(&m->att, rng);
        float b = 1.0f / sqrtf((float)m->A);
        nlp_tensor_uniform(nlp_params_data(m->params, m->att_v), (size_t)m->A, -b, b, rng);
    }
    nlp_linear_reset(&m->out, rng);
    *out = m;
    return NLP_OK;
}

/* The embedding row of word id (0 <= id < V). */
static float *row(const nlp_classify *m, int id)
{
    if (id < m->Vt)
        return nlp_params_data(m->params, m->emb) + (size_t)id * m->E;
    return m->fixed + (size_t)(id - m->Vt) * m->E;
}

int nlp_classify_set_vectors(nlp_classify *m, const nlp_vectors *v, long *found, nlp_rng *rng)
{
    if (v->dim != m->E)
        return NLP_EINVAL;
    /* The scale of the given vectors, for the rows they lack. */
    double s = 0, s2 = 0;
    size_t cnt = (size_t)v->n * (size_t)v->dim;
    for (size_t i = 0; i < cnt; i++) {
        s += v->data[i];
        s2 += (double)v->data[i] * v->data[i];
    }
    double var = cnt ? s2 / (double)cnt - (s / (double)cnt) * (s / (double)cnt) : 1;
    float sd = var > 0 ? (float)sqrt(var) : 1.0f;
    long hit = 0;
    for (int id = 0; id < m->V; id++) {
        long r = nlp_vocab_find(v->words, nlp_vocab_word(m->words, id),
                                nlp_vocab_word_len(m->words, id));
        float *dst = row(m, id);
        if (r >= 0) {
            memcpy(dst, v->data + (size_t)r * (size_t)v->dim, (size_t)m->E * sizeof *dst);
            hit++;
        } else {
            nlp_tensor_normal(dst, (size_t)m->E, 0, sd, rng);
        }
    }
    if (found)
        *found = hit;
    m->pstale = 1;
    return NLP_OK;
}

int nlp_classify_new_for_data(nlp_classify **out, const nlp_classify_config *cfg,
                              const nlp_classify_data *d, long min_count,
                              const nlp_vectors *vectors, long max_extra, int freeze,
                              uint64_t seed, nlp_classify_coverage *cov, nlp_error *e)
{
    *out = NULL;
    nlp_classify_config c = *cfg;
    if (vectors)
        c.embed = vectors->dim;
    if (freeze && !vectors)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "frozen embeddings need vectors");
    nlp_vocab *words, *labels;
    long trained;
    int rc = nlp_classify_words_build(&words, &trained, d->words, min_count, vectors, max_extra);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "building the vocabulary: %s", nlp_error_string(rc));
    if ((rc = nlp_classify_labels_build(&labels, d->labels)) != NLP_OK) {
        nlp_vocab_free(words);
        if (rc == NLP_EINVAL)
            return nlp_error_set(e, rc, NULL, 0, "%ld labels: a model needs 2 to %d",
                                 nlp_vocab_size(d->labels), NLP_CLASSIFY_MAX_LABELS);
        return nlp_error_set(e, rc, NULL, 0, NULL);
    }
    nlp_rng rng;
    nlp_rng_seed(&rng, seed);
    nlp_classify *m;
    if ((rc = nlp_classify_new(&m, &c, words, freeze ? 0 : trained, labels, &rng, e)) != NLP_OK)
        return rc;
    long in_vectors = 0;
    if (vectors) {
        nlp_classify_set_vectors(m, vectors, NULL, &rng); /* the dimension matches */
        for (long i = 1; i < trained; i++)
            in_vectors += nlp_vocab_find(vectors->words, nlp_vocab_word(m->words, i),
                                         nlp_vocab_word_len(m->words, i)) >= 0;
    }
    if (cov) {
        cov->words = trained - 1;
        cov->in_vectors = in_vectors;
        cov->extra = m->V - trained;
    }
    *out = m;
    return NLP_OK;
}

const nlp_classify_config *nlp_classify_get_config(const nlp_classify *m)
{
    return &m->cfg;
}

const nlp_vocab *nlp_classify_words(const nlp_classify *m)
{
    return m->words;
}

const nlp_vocab *nlp_classify_labels(const nlp_classify *m)
{
    return m->labels;
}

long nlp_classify_trained_rows(const nlp_classify *m)
{
    return m->Vt;
}

nlp_params *nlp_classify_params(nlp_classify *m)
{
    m->pstale = 1; /* the caller may write the weights */
    return m->params;
}

/* The workspace for max_T x max_B (growing only), with what training
** needs when backward (or when it had it already). */
static int reserve(nlp_classify *m, int max_T, int max_B, int backward)
{
    if (max_T < 1 || max_B < 1)
        return NLP_EINVAL;
    backward = backward || m->backward_ws;
    if (max_T <= m->max_T && max_B <= m->max_B && backward == m->backward_ws)
        return NLP_OK;
    if (max_T < m->max_T)
        max_T = m->max_T;
    if (max_B < m->max_B)
        max_B = m->max_B;
    size_t TB = (size_t)max_T * (size_t)max_B;
    size_t widest = (size_t)m->E;
    if ((size_t)m->DH > widest)
        widest = (size_t)m->DH;
    if ((size_t)m->A > widest)
        widest = (size_t)m->A;
    if ((size_t)m->K > widest)
        widest = (size_t)m->K;
    if ((size_t)m->D * m->GH > widest)
        widest = (size_t)m->D * m->GH;
    if ((size_t)max_T > (size_t)INT_MAX / (size_t)max_B ||
        TB > SIZE_MAX / sizeof(float) / widest)
        return NLP_ERANGE;
    int rc = nlp_rnn_resize(m->rnn, max_T, max_B);
    if (rc != NLP_OK)
        return rc;
    free_workspace(m); /* (the projection cache stays: it sizes itself) */
    const size_t B = (size_t)max_B, E = (size_t)m->E, DH = (size_t)m->DH, A = (size_t)m->A;
    m->ids = nlp_malloc(TB * sizeof *m->ids);
    m->len = nlp_malloc(B * sizeof *m->len);
    m->y = nlp_tensor_alloc(TB * DH);
    if (A)
        m->u = nlp_tensor_alloc(TB * A);
    m->alpha = nlp_tensor_alloc(TB);
    m->arg = nlp_malloc(B * DH * sizeof *m->arg);
    m->pooled = nlp_tensor_alloc(B * DH);
    m->logits = nlp_tensor_alloc(B * (size_t)m->K);
    m->prow = nlp_malloc(TB * sizeof *m->prow);
    m->px = nlp_tensor_alloc(TB * E);
    int bad = !m->ids || !m->len || !m->y || (A && !m->u) || !m->alpha || !m->arg ||
              !m->pooled || !m->logits || !m->prow || !m->px;
    if (backward) {
        m->x = nlp_tensor_alloc(TB * E);
        m->xmask = nlp_tensor_alloc(TB * E);
        m->dx = nlp_tensor_alloc(TB * E);
        m->dy = nlp_tensor_alloc(TB * DH);
        if (A)
            m->du = nlp_tensor_alloc(TB * A);
        m->pmask = nlp_tensor_alloc(B * DH);
        m->dpooled = nlp_tensor_alloc(B * DH);
        m->dlogits = nlp_tensor_alloc(B * (size_t)m->K);
        bad = bad || !m->x || !m->xmask || !m->dx || !m->dy || (A && !m->du) || !m->pmask ||
              !m->dpooled || !m->dlogits;
    }
    if (bad) {
        free_workspace(m);
        return NLP_ENOMEM;
    }
    m->max_T = max_T;
    m->max_B = max_B;
    m->backward_ws = backward;
    m->T = m->B = 0;
    return NLP_OK;
}

int nlp_classify_reserve(nlp_classify *m, int max_T, int max_B)
{
    return reserve(m, max_T, max_B, 1);
}

int nlp_classify_set_cache_words(nlp_classify *m, long words)
{
    if (words < 1)
        return NLP_EINVAL;
    proj_free(m);
    m->pmax = words < m->V ? (int)words : m->V;
    return NLP_OK;
}

/* ---- forward and backward -------------------------------------------- */

static void pool_forward(nlp_classify *m)
{
    const int T = m->T, B = m->B, DH = m->DH, H = m->H;
    const float *y = m->y;
    float *p = m->pooled;
    switch (m->cfg.pool) {
    case NLP_CLASSIFY_POOL_MAX:
        for (int b = 0; b < B; b++) {
            float *pb = p + (size_t)b * DH;
            int *ab = m->arg + (size_t)b * DH;
            if (m->len[b] == 0) {
                memset(pb, 0, (size_t)DH * sizeof *pb);
                for (int j = 0; j < DH; j++)
                    ab[j] = -1;
                continue;
            }
            memcpy(pb, y + (size_t)b * DH, (size_t)DH * sizeof *pb);
            if (m->infer) {
                /* No backward: the maximum only, a loop that vectorises. */
                for (int t = 1; t < m->len[b]; t++) {
                    const float *yt = y + ((size_t)t * B + b) * DH;
                    for (int j = 0; j < DH; j++)
                        pb[j] = yt[j] > pb[j] ? yt[j] : pb[j];
                }
                continue;
            }
            for (int j = 0; j < DH; j++)
                ab[j] = 0;
            for (int t = 1; t < m->len[b]; t++) {
                const float *yt = y + ((size_t)t * B + b) * DH;
                for (int j = 0; j < DH; j++)
                    if (yt[j] > pb[j]) {
                        pb[j] = yt[j];
                        ab[j] = t;
                    }
            }
        }
        break;
    case NLP_CLASSIFY_POOL_MEAN:
        for (int b = 0; b < B; b++) {
            float *pb = p + (size_t)b * DH;
            memset(pb, 0, (size_t)DH * sizeof *pb);
            for (int t = 0; t < m->len[b]; t++) {
                const float *yt = y + ((size_t)t * B + b) * DH;
                for (int j = 0; j < DH; j++)
                    pb[j] += yt[j];
            }
            if (m->len[b]) {
                float inv = 1.0f / (float)m->len[b];
                for (int j = 0; j < DH; j++)
                    pb[j] *= inv;
            }
        }
        break;
    case NLP_CLASSIFY_POOL_LAST:
        for (int b = 0; b < B; b++) {
            float *pb = p + (size_t)b * DH;
            if (m->len[b] == 0) {
                memset(pb, 0, (size_t)DH * sizeof *pb);
                continue;
            }
            const float *yl = y + ((size_t)(m->len[b] - 1) * B + b) * DH;
            memcpy(pb, yl, (size_t)H * sizeof *pb);
            if (m->D == 2)
                memcpy(pb + H, y + (size_t)b * DH + H, (size_t)H * sizeof *pb);
        }
        break;
    case NLP_CLASSIFY_POOL_ATTENTION: {
        const int A = m->A;
        const float *v = nlp_params_data(m->params, m->att_v);
        nlp_linear_forward(&m->att, m->u, y, T * B);
        for (size_t i = 0; i < (size_t)T * B * A; i++)
            m->u[i] = tanhf(m->u[i]);
        for (int b = 0; b < B; b++) {
            float *pb = p + (size_t)b * DH;
            memset(pb, 0, (size_t)DH * sizeof *pb);
            const int L = m->len[b];
            float mx = -INFINITY;
            for (int t = 0; t < T; t++) {
                float s = 0;
                if (t < L) {
                    const float *ut = m->u + ((size_t)t * B + b) * A;
                    for (int k = 0; k < A; k++)
                        s += v[k] * ut[k];
                    if (s > mx)
                        mx = s;
                }
                m->alpha[(size_t)t * B + b] = s;
            }
            double z = 0;
            for (int t = 0; t < L; t++) {
                float *a = &m->alpha[(size_t)t * B + b];
                *a = expf(*a - mx);
                z += *a;
            }
            for (int t = 0; t < T; t++) {
                float *a = &m->alpha[(size_t)t * B + b];
                *a = t < L ? (float)(*a / z) : 0.0f;
                if (t < L)
                    nlp_tensor_axpy((size_t)DH, *a, y + ((size_t)t * B + b) * DH, pb);
            }
        }
        break;
    }
    }
}

/* dy (T,B,DH) = dL/dy from dpooled (B,DH); params' gradients += (attention). */
static void pool_backward(nlp_classify *m)
{
    const int T = m->T, B = m->B, DH = m->DH, H = m->H;
    const float *dp = m->dpooled;
    float *dy = m->dy;
    memset(dy, 0, (size_t)T * B * DH * sizeof *dy);
    switch (m->cfg.pool) {
    case NLP_CLASSIFY_POOL_MAX:
        for (int b = 0; b < B; b++) {
            const int *ab = m->arg + (size_t)b * DH;
            for (int j = 0; j < DH; j++)
                if (ab[j] >= 0)
                    dy[((size_t)ab[j] * B + b) * DH + j] += dp[(size_t)b * DH + j];
        }
        break;
    case NLP_CLASSIFY_POOL_MEAN:
        for (int b = 0; b < B; b++) {
            if (!m->len[b])
                continue;
            float inv = 1.0f / (float)m->len[b];
            for (int t = 0; t < m->len[b]; t++)
                nlp_tensor_axpy((size_t)DH, inv, dp + (size_t)b * DH,
                                dy + ((size_t)t * B + b) * DH);
        }
        break;
    case NLP_CLASSIFY_POOL_LAST:
        for (int b = 0; b < B; b++) {
            if (!m->len[b])
                continue;
            float *dl = dy + ((size_t)(m->len[b] - 1) * B + b) * DH;
            for (int j = 0; j < H; j++)
                dl[j] += dp[(size_t)b * DH + j];
            if (m->D == 2) {
                float *d0 = dy + (size_t)b * DH;
                for (int j = H; j < DH; j++)
                    d0[j] += dp[(size_t)b * DH + j];
            }
        }
        break;
    case NLP_CLASSIFY_POOL_ATTENTION: {
        const int A = m->A;
        const float *v = nlp_params_data(m->params, m->att_v);
        float *dv = nlp_params_grad(m->params, m->att_v);
        memset(m->du, 0, (size_t)T * B * A * sizeof *m->du);
        for (int b = 0; b < B; b++) {
            const int L = m->len[b];
            const float *dpb = dp + (size_t)b * DH;
            /* da_t = dp . y_t; dy_t += a_t dp; ds_t = a_t (da_t - sum a da). */
            double dot = 0;
            for (int t = 0; t < L; t++) {
                size_t r = (size_t)t * B + b;
                const float *yt = m->y + r * DH;
                float da = 0;
                for (int j = 0; j < DH; j++)
                    da += dpb[j] * yt[j];
                m->du[r * A] = da; /* kept in the first slot until ds is known */
                dot += (double)m->alpha[r] * da;
                nlp_tensor_axpy((size_t)DH, m->alpha[r], dpb, dy + r * DH);
            }
            for (int t = 0; t < L; t++) {
                size_t r = (size_t)t * B + b;
                float ds = m->alpha[r] * (float)(m->du[r * A] - dot);
                const float *ut = m->u + r * A;
                float *dut = m->du + r * A;
                for (int k = 0; k < A; k++) {
                    dv[k] += ds * ut[k];
                    dut[k] = ds * v[k] * (1.0f - ut[k] * ut[k]);
                }
            }
        }
        nlp_linear_backward(&m->att, dy, m->du, m->y, T * B);
        break;
    }
    }
}

/* The batch's longest length (at least 1), or -1 for a negative one. */
static int batch_T(const int *lens, int B)
{
    int T = 1;
    for (int b = 0; b < B; b++) {
        if (lens[b] < 0)
            return -1;
        if (lens[b] > T)
            T = lens[b];
    }
    return T;
}

/* m->ids (T,B) time-major, -1 padding, and m->len from the batch. */
static int fill_batch(nlp_classify *m, const int *const *seqs, const int *lens, int T, int B)
{
    for (int b = 0; b < B; b++) {
        m->len[b] = lens[b];
        const int *sb = seqs[b];
        for (int t = 0; t < lens[b]; t++) {
            int id = sb[t];
            if (id < 0 || id >= m->V)
                return NLP_ERANGE;
            m->ids[(size_t)t * B + b] = id;
        }
        for (int t = lens[b]; t < T; t++)
            m->ids[(size_t)t * B + b] = -1;
    }
    return NLP_OK;
}

int nlp_classify_forward(nlp_classify *m, const int *const *seqs, const int *lens, int B,
                         int train, nlp_rng *rng)
{
    if (B < 1 || !seqs || !lens ||
        (train && (m->cfg.dropout > 0 || m->cfg.word_dropout > 0) && !rng))
        return NLP_EINVAL;
    if (B > m->max_B || !m->backward_ws)
        return NLP_ERANGE;
    int T = batch_T(lens, B);
    if (T < 0)
        return NLP_EINVAL;
    if (T > m->max_T)
        return NLP_ERANGE;
    const int E = m->E;
    const float p = train ? m->cfg.dropout : 0.0f;
    m->T = m->B = 0;
    m->have_loss = 0;
    if (train)
        m->pstale = 1; /* an update follows */
    int rc = fill_batch(m, seqs, lens, T, B);
    if (rc != NLP_OK)
        return rc;
    if (train && m->cfg.word_dropout > 0) {
        /* Word dropout: a token becomes <unk>, as unseen words are at test
        ** time (no draw at all when off, so older runs repeat). */
        const double q = m->cfg.word_dropout;
        for (size_t i = 0; i < (size_t)T * B; i++)
            if (m->ids[i] >= 0 && nlp_rng_uniform(rng) < q)
                m->ids[i] = NLP_CLASSIFY_UNK_ID;
    }
    for (size_t i = 0; i < (size_t)T * B; i++) {
        float *xi = m->x + i * E;
        if (m->ids[i] < 0)
            memset(xi, 0, (size_t)E * sizeof *xi);
        else
            memcpy(xi, row(m, m->ids[i]), (size_t)E * sizeof *xi);
    }
    if (p > 0)
        nlp_tensor_dropout_forward(m->x, m->xmask, m->x, (size_t)T * B * E, p, rng);
    rc = nlp_rnn_forward(m->rnn, m->y, NULL, NULL, m->x, NULL, NULL, m->len, T, B,
                         train != 0, rng);
    if (rc != NLP_OK)
        return rc;
    m->T = T;
    m->B = B;
    m->train = train != 0;
    m->infer = 0;
    pool_forward(m);
    if (p > 0)
        nlp_tensor_dropout_forward(m->pooled, m->pmask, m->pooled, (size_t)B * m->DH, p, rng);
    nlp_linear_forward(&m->out, m->logits, m->pooled, B);
    return NLP_OK;
}

/* ---- inference through the projection cache --------------------------- */

/*
** Gives every word of the batch in m->ids (T,B) a row of layer-0
** projections, in m->prow: the word's slot in the cache (made and
** computed now if it has none and there is room), or else a row past the
** slots computed for this batch only.  May allocate (the cache grows).
*/
static int proj_rows(nlp_classify *m, int T, int B)
{
    const size_t TB = (size_t)T * B, rl = (size_t)m->D * m->GH, E = (size_t)m->E;
    if ((size_t)m->pmax + TB > INT_MAX)
        return NLP_ERANGE; /* a row number would not fit an int */
    if (!m->slot) {
        m->slot = nlp_malloc((size_t)m->V * sizeof *m->slot);
        m->slot_word = nlp_malloc((size_t)m->pmax * sizeof *m->slot_word);
        if (!m->slot || !m->slot_word) {
            proj_free(m);
            return NLP_ENOMEM;
        }
        for (int v = 0; v < m->V; v++)
            m->slot[v] = -1;
        m->pused = m->pcap = 0;
        m->pstale = 0;
    }
    if (m->pstale) {
        for (int i = 0; i < m->pused; i++)
            m->slot[m->slot_word[i]] = -1;
        m->pused = 0;
        m->pstale = 0;
    }
    /* Slots for the new words; batch rows (-2 - k) for what does not fit. */
    const int first = m->pused;
    int nover = 0;
    for (size_t i = 0; i < TB; i++) {
        int id = m->ids[i];
        if (id < 0)
            m->prow[i] = -1;
        else if (m->slot[id] >= 0)
            m->prow[i] = m->slot[id];
        else if (m->pused < m->pmax) {
            m->slot[id] = m->pused;
            m->slot_word[m->pused] = id;
            m->prow[i] = m->pused++;
        } else
            m->prow[i] = -2 - nover++;
    }
    if (m->pused > m->pcap || (size_t)nover > m->pextra || !m->proj) {
        size_t cap = (size_t)m->pcap, extra = m->pextra;
        if (m->pused > m->pcap || !m->proj) {
            cap = m->pcap ? 2 * (size_t)m->pcap : PROJ_FIRST_ROWS;
            if (cap < (size_t)m->pused)
                cap = (size_t)m->pused;
            if (cap > (size_t)m->pmax)
                cap = (size_t)m->pmax;
        }
        if ((size_t)nover > extra) /* room for the whole workspace's batch */
            extra = (size_t)m->max_T * (size_t)m->max_B;
        float *np = nlp_tensor_alloc((cap + extra) * rl);
        if (!np) {
            for (int i = first; i < m->pused; i++)
                m->slot[m->slot_word[i]] = -1;
            m->pused = first;
            return NLP_ENOMEM;
        }
        if (m->proj)
            memcpy(np, m->proj, (size_t)first * rl * sizeof *np);
        nlp_tensor_free(m->proj);
        m->proj = np;
        m->pcap = (int)cap;
        m->pextra = extra;
    }
    /* Project the new words' embeddings and this batch's overflow. */
    const int nnew = m->pused - first;
    for (int i = 0; i < nnew; i++)
        memcpy(m->px + (size_t)i * E, row(m, m->slot_word[first + i]), E * sizeof *m->px);
    if (nover) {
        for (size_t i = 0; i < TB; i++)
            if (m->prow[i] <= -2) {
                int k = -2 - m->prow[i];
                memcpy(m->px + ((size_t)nnew + (size_t)k) * E, row(m, m->ids[i]),
                       E * sizeof *m->px);
                m->prow[i] = m->pcap + k;
            }
    }
    for (int d = 0; d < m->D; d++) {
        float *base = m->proj + (size_t)d * m->GH;
        nlp_rnn_project_input(m->rnn, d, m->px, nnew, base + (size_t)first * rl, rl);
        nlp_rnn_project_input(m->rnn, d, m->px + (size_t)nnew * E, nover,
                              base + (size_t)m->pcap * rl, rl);
    }
    return NLP_OK;
}

/* Forward without dropout through the cache, growing the workspace (for
** prediction only) as needed.  May allocate. */
static int infer_forward(nlp_classify *m, const int *const *seqs, const int *lens, int B)
{
    if (B < 1 || !seqs || !lens)
        return NLP_EINVAL;
    int T = batch_T(lens, B);
    if (T < 0)
        return NLP_EINVAL;
    if (T > m->max_T || B > m->max_B) {
        /* Grow geometrically so a stream of ever longer lines stays cheap. */
        int nT = m->max_T, nB = m->max_B > B ? m->max_B : B;
        if (T > nT)
            nT = nT <= INT_MAX / 2 && 2 * nT > T ? 2 * nT : T;
        int rc = reserve(m, nT, nB, 0);
        if (rc != NLP_OK)
            return rc;
    }
    m->T = m->B = 0;
    m->have_loss = 0;
    int rc = fill_batch(m, seqs, lens, T, B);
    if (rc == NLP_OK)
        rc = proj_rows(m, T, B);
    if (rc != NLP_OK)
        return rc;
    const float *rows[2] = {m->proj, m->proj + m->GH};
    rc = nlp_rnn_forward_rows(m->rnn, m->y, rows, (size_t)m->D * m->GH, m->prow, m->len, T, B);
    if (rc != NLP_OK)
        return rc;
    m->T = T;
    m->B = B;
    m->train = 0;
    m->infer = 1;
    pool_forward(m);
    nlp_linear_forward(&m->out, m->logits, m->pooled, B);
    return NLP_OK;
}

const float *nlp_classify_logits(const nlp_classify *m)
{
    return m->logits;
}

/* nlp_classify_loss with the gradient scaled by scale (> 0), or by 1/n of
** the n valid targets when scale is 0 (a share of a batch: 1/batch). */
static int loss_scaled(nlp_classify *m, const int *targets, float scale, double *loss,
                       size_t *correct)
{
    if (!m->B || !m->dlogits || m->infer)
        return NLP_EINVAL;
    size_t n = 0, hit = 0;
    for (int b = 0; b < m->B; b++)
        if (targets[b] >= 0)
            n++;
    if (scale == 0)
        scale = n ? 1.0f / (float)n : 0.0f;
    double nats = 0;
    int rc = nlp_loss_xent(&nats, NULL, m->dlogits, m->logits, targets, NULL, (size_t)m->B,
                           (size_t)m->K, scale);
    if (rc != NLP_OK)
        return rc;
    nlp_loss_accuracy(&hit, NULL, m->logits, targets, NULL, (size_t)m->B, (size_t)m->K);
    if (loss)
        *loss = n ? nats / (double)n : 0;
    if (correct)
        *correct = hit;
    m->have_loss = 1;
    return NLP_OK;
}

int nlp_classify_loss(nlp_classify *m, const int *targets, double *loss, size_t *correct)
{
    return loss_scaled(m, targets, 0.0f, loss, correct);
}

/*
** A worker's model for the parallel step: m's configuration, vocabulary
** and fixed rows (borrowed), its parameters read through p (a copy of
** m's nlp_params whose grad is the worker's), a recurrent stack and a
** training workspace of its own for max_T x max_B.  Free with clone_free.
*/
static int clone_new(nlp_classify **out, const nlp_classify *m, nlp_params *p, int max_T,
                     int max_B)
{
    *out = NULL;
    nlp_classify *c = nlp_calloc(1, sizeof *c);
    if (!c)
        return NLP_ENOMEM;
    c->cfg = m->cfg;
    c->words = m->words;
    c->labels = m->labels;
    c->V = m->V;
    c->Vt = m->Vt;
    c->K = m->K;
    c->E = m->E;
    c->H = m->H;
    c->D = m->D;
    c->DH = m->DH;
    c->A = m->A;
    c->GH = m->GH;
    c->pmax = m->pmax;
    c->params = p;
    c->emb = m->emb;
    c->fixed = m->fixed;
    c->att = m->att;
    c->att.params = p;
    c->att_v = m->att_v;
    c->out = m->out;
    c->out.params = p;
    int rc = nlp_rnn_new_shared(&c->rnn, m->rnn, p, max_T, max_B);
    if (rc == NLP_OK)
        rc = reserve(c, max_T, max_B, 1);
    if (rc != NLP_OK) {
        free_workspace(c);
        nlp_rnn_free(c->rnn);
        nlp_free(c);
        return rc;
    }
    *out = c;
    return NLP_OK;
}

static void clone_free(nlp_classify *c)
{
    if (!c)
        return;
    free_workspace(c);
    proj_free(c);
    nlp_rnn_free(c->rnn);
    nlp_free(c);
}

int nlp_classify_backward(nlp_classify *m)
{
    if (!m->B || !m->have_loss)
        return NLP_EINVAL;
    const int T = m->T, B = m->B, E = m->E, DH = m->DH;
    const int drop = m->train && m->cfg.dropout > 0;
    memset(m->dpooled, 0, (size_t)B * DH * sizeof *m->dpooled);
    nlp_linear_backward(&m->out, m->dpooled, m->dlogits, m->pooled, B);
    if (drop)
        nlp_tensor_dropout_backward(m->dpooled, m->dpooled, m->pmask, (size_t)B * DH);
    pool_backward(m);
    float *dx = m->Vt > 0 ? m->dx : NULL;
    if (dx)
        memset(dx, 0, (size_t)T * B * E * sizeof *dx);
    int rc = nlp_rnn_backward(m->rnn, dx, NULL, NULL, m->dy, NULL, NULL, m->x);
    if (rc != NLP_OK)
        return rc;
    if (dx) {
        if (drop)
            nlp_tensor_dropout_backward(dx, dx, m->xmask, (size_t)T * B * E);
        float *g = nlp_params_grad(m->params, m->emb);
        for (size_t i = 0; i < (size_t)T * B; i++) {
            int id = m->ids[i];
            if (id >= 0 && id < m->Vt)
                nlp_tensor_axpy((size_t)E, 1.0f, dx + i * E, g + (size_t)id * E);
        }
    }
    return NLP_OK;
}

int nlp_classify_predict(nlp_classify *m, const int *const *seqs, const int *lens, int B,
                         float *probs)
{
    int rc = infer_forward(m, seqs, lens, B);
    if (rc != NLP_OK)
        return rc;
    for (int b = 0; b < B; b++)
        nlp_loss_softmax(probs + (size_t)b * m->K, m->logits + (size_t)b * m->K, (size_t)m->K);
    return NLP_OK;
}

/* ==== Encoded example sets =============================================== */

void nlp_classify_set_free(nlp_classify_set *s)
{
    if (!s)
        return;
    nlp_free(s->start);
    nlp_free(s->tok);
    nlp_free(s->label);
    nlp_free(s);
}

int nlp_classify_set_make(nlp_classify_set **out, const nlp_classify *m,
                          const nlp_classify_data *d, size_t *unk, long *unseen)
{
    *out = NULL;
    size_t ntok = d->start[d->n];
    long nw = nlp_vocab_size(d->words), nl = nlp_vocab_size(d->labels);
    nlp_classify_set *s = nlp_calloc(1, sizeof *s);
    int *wmap = nlp_malloc((size_t)(nw ? nw : 1) * sizeof *wmap);
    int *lmap = nlp_malloc((size_t)(nl ? nl : 1) * sizeof *lmap);
    if (s) {
        s->start = nlp_malloc(((size_t)d->n + 1) * sizeof *s->start);
        s->tok = nlp_malloc((ntok ? ntok : 1) * sizeof *s->tok);
        s->label = nlp_malloc((size_t)(d->n ? d->n : 1) * sizeof *s->label);
    }
    if (!s || !wmap || !lmap || !s->start || !s->tok || !s->label) {
        nlp_free(wmap);
        nlp_free(lmap);
        nlp_classify_set_free(s);
        return NLP_ENOMEM;
    }
    for (long i = 0; i < nw; i++) {
        long id = nlp_vocab_find(m->words, nlp_vocab_word(d->words, i),
                                 nlp_vocab_word_len(d->words, i));
        wmap[i] = id < 0 ? NLP_CLASSIFY_UNK_ID : (int)id;
    }
    for (long i = 0; i < nl; i++) {
        long id = nlp_vocab_find(m->labels, nlp_vocab_word(d->labels, i),
                                 nlp_vocab_word_len(d->labels, i));
        lmap[i] = id < 0 ? -1 : (int)id;
    }
    size_t nunk = 0;
    long nunseen = 0;
    int max_len = 0;
    for (size_t k = 0; k < ntok; k++) {
        s->tok[k] = wmap[d->tok[k]];
        nunk += s->tok[k] == NLP_CLASSIFY_UNK_ID;
    }
    for (long i = 0; i < d->n; i++) {
        s->start[i] = d->start[i];
        s->label[i] = lmap[d->label[i]];
        nunseen += s->label[i] < 0;
        size_t L = d->start[i + 1] - d->start[i];
        if (L > (size_t)max_len)
            max_len = (int)L; /* L <= ntok < INT_MAX by the reader */
    }
    s->start[d->n] = ntok;
    s->n = d->n;
    s->line = d->line;
    s->max_len = max_len;
    nlp_free(wmap);
    nlp_free(lmap);
    if (unk)
        *unk = nunk;
    if (unseen)
        *unseen = nunseen;
    *out = s;
    return NLP_OK;
}

typedef struct {
    const nlp_classify_set *s;
    const uint64_t *key;
} length_order;

static int shorter(const void *ctx, long a, long b)
{
    const length_order *o = ctx;
    const size_t la = o->s->start[a + 1] - o->s->start[a], lb = o->s->start[b + 1] - o->s->start[b];
    return la < lb || (la == lb && o->key && o->key[a] < o->key[b]);
}

/* Sorts idx (n) by the length of the examples of s, shortest first, ties
** by key (n, may be NULL: then in idx's order); tmp has room for n. */
static void sort_by_length_in(long *idx, long *tmp, long n, const nlp_classify_set *s,
                              const uint64_t *key)
{
    const length_order o = {s, key};
    nlp_sort_stable(idx, tmp, n, shorter, &o);
}

/* sort_by_length_in with a scratch buffer of its own. */
static int sort_by_length(long *idx, long n, const nlp_classify_set *s, const uint64_t *key)
{
    long *tmp = nlp_malloc((size_t)(n ? n : 1) * sizeof *tmp);
    if (!tmp)
        return NLP_ENOMEM;
    sort_by_length_in(idx, tmp, n, s, key);
    nlp_free(tmp);
    return NLP_OK;
}

/* Runs the examples idx[0..n) of s through the model in batches of at
** most batch, calling back with each batch's logits. */
typedef void (*batch_fn)(void *ctx, const long *idx, int B, const float *logits, int K);

static int run_sorted(nlp_classify *m, const nlp_classify_set *s, const long *idx, long n,
                      int batch, batch_fn fn, void *ctx)
{
    const int **seqs = nlp_malloc((size_t)batch * sizeof *seqs);
    int *lens = nlp_malloc((size_t)batch * sizeof *lens);
    int rc = seqs && lens ? NLP_OK : NLP_ENOMEM;
    /* Longest batch first: the workspace grows once, not at every length. */
    for (long i = n ? (n - 1) / batch * batch : 0; rc == NLP_OK && i >= 0 && i < n;
         i -= batch) {
        int B = n - i < batch ? (int)(n - i) : batch;
        for (int b = 0; b < B; b++) {
            long ex = idx[i + b];
            seqs[b] = s->tok + s->start[ex];
            lens[b] = (int)(s->start[ex + 1] - s->start[ex]);
        }
        rc = infer_forward(m, seqs, lens, B);
        if (rc == NLP_OK)
            fn(ctx, idx + i, B, m->logits, m->K);
    }
    nlp_free(seqs);
    nlp_free(lens);
    return rc;
}

static void store_pred(void *ctx, const long *idx, int B, const float *logits, int K)
{
    int *pred = ctx;
    for (int b = 0; b < B; b++)
        pred[idx[b]] = (int)nlp_loss_argmax(logits + (size_t)b * K, (size_t)K);
}

int nlp_classify_predict_set(nlp_classify *m, const nlp_classify_set *s, int batch, int *pred)
{
    if (batch < 1)
        return NLP_EINVAL;
    long *idx = nlp_malloc((size_t)(s->n ? s->n : 1) * sizeof *idx);
    if (!idx)
        return NLP_ENOMEM;
    for (long i = 0; i < s->n; i++)
        idx[i] = i;
    int rc = sort_by_length(idx, s->n, s, NULL);
    if (rc == NLP_OK)
        rc = run_sorted(m, s, idx, s->n, batch, store_pred, pred);
    nlp_free(idx);
    return rc;
}

/* ==== Files ============================================================== */

int nlp_classify_add_to_model(const nlp_classify *m, nlp_model *f)
{
    const nlp_classify_config *c = &m->cfg;
    int rc = nlp_model_set_meta(f, "cell", nlp_rnn_cell_name(c->cell));
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "embed", c->embed);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "hidden", c->hidden);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "layers", c->layers);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "bidirectional", c->bidirectional);
    if (rc == NLP_OK) rc = nlp_model_set_meta(f, "pool", nlp_classify_pool_name(c->pool));
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "attention", c->attention);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "dropout", c->dropout);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "word_dropout", c->word_dropout);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "vocab_size", m->V);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "trained_rows", m->Vt);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "labels", m->K);
    if (rc == NLP_OK) rc = nlp_model_add_blob(f, "vocab", m->wblob, m->nwblob);
    if (rc == NLP_OK) rc = nlp_model_add_blob(f, "labels", m->lblob, m->nlblob);
    if (rc == NLP_OK && m->fixed)
        rc = nlp_model_add_tensor(f, "embed.fixed", m->fixed, 2,
                                  (size_t[]){(size_t)(m->V - m->Vt), (size_t)m->E});
    return rc;
}

int nlp_classify_save(const nlp_classify *m, const char *path, const char *const *meta,
                      nlp_error *e)
{
    nlp_model *f;
    int rc = nlp_model_new(&f, NLP_CLASSIFY_KIND);
    if (rc == NLP_OK)
        rc = nlp_classify_add_to_model(m, f);
    return nlp_model_finish_save(f, rc, meta, m->params, path, e);
}

static const char *shape_text(char *buf, size_t n, int ndim, const size_t *shape)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%zu", i ? "," : "[", shape[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
    return buf;
}

/* Tensor name of f must exist with exactly the dimensions want[0..ndim). */
static int expect_tensor(const nlp_model *f, const char *path, const char *name, int ndim,
                         const size_t *want, nlp_error *e)
{
    int fnd;
    const size_t *fs;
    char a[96], b[96];
    if (!nlp_model_tensor(f, name, &fnd, &fs))
        return nlp_error_set(e, NLP_EFORMAT, path, 0, "no tensor '%s'", name);
    int same = fnd == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = fs[i] == want[i];
    if (!same)
        return nlp_error_set(e, NLP_EFORMAT, path, 0,
                             "tensor '%s' has shape %s, but the hyperparameters need %s", name,
                             shape_text(a, sizeof a, fnd, fs), shape_text(b, sizeof b, ndim, want));
    return NLP_OK;
}

int nlp_classify_load(nlp_classify **out, const char *path, nlp_model **file, nlp_error *e)
{
    *out = NULL;
    if (file)
        *file = NULL;
    nlp_model *f = NULL;
    nlp_classify *m = NULL;
    int rc = nlp_model_load(&f, path, NLP_CLASSIFY_KIND, e);
    if (rc != NLP_OK)
        return rc;
    nlp_classify_config c;
    nlp_classify_config_default(&c);
    long embed, hidden, layers, bidir, att, V, Vt, K;
    double dropout;
    const char *cell = nlp_model_meta(f, "cell"), *pool = nlp_model_meta(f, "pool");
    if (!cell || nlp_rnn_cell_parse(cell, &c.cell) != NLP_OK) {
        rc = nlp_error_set(e, NLP_EFORMAT, path, 0, "missing or unknown cell type");
        goto fail;
    }
    if (!pool || nlp_classify_pool_parse(pool, &c.pool) != NLP_OK) {
        rc = nlp_error_set(e, NLP_EFORMAT, path, 0, "missing or unknown pooling");
        goto fail;
    }
    if ((rc = nlp_model_meta_range(f, "embed", 1, MAX_WIDTH, &embed, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "hidden", 1, MAX_WIDTH, &hidden, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "layers", 1, MAX_LAYERS, &layers, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "bidirectional", 0, 1, &bidir, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "attention", 0, MAX_WIDTH, &att, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "vocab_size", 1, INT_MAX - 1, &V, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "trained_rows", 0, V, &Vt, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "labels", 2, NLP_CLASSIFY_MAX_LABELS, &K, e)) != NLP_OK ||
        (rc = nlp_model_meta_double(f, "dropout", &dropout, e)) != NLP_OK)
        goto fail;
    if (!(dropout >= 0 && dropout < 1)) {
        rc = nlp_error_set(e, NLP_EFORMAT, path, 0, "dropout out of range");
        goto fail;
    }
    double word_dropout = 0; /* absent from models made before it existed */
    if (nlp_model_meta(f, "word_dropout") &&
        ((rc = nlp_model_meta_double(f, "word_dropout", &word_dropout, e)) != NLP_OK ||
         !(word_dropout >= 0 && word_dropout < 1))) {
        rc = nlp_error_set(e, NLP_EFORMAT, path, 0, "word_dropout out of range");
        goto fail;
    }
    c.word_dropout = (float)word_dropout;
    c.embed = (int)embed;
    c.hidden = (int)hidden;
    c.layers = (int)layers;
    c.bidirectional = (int)bidir;
    c.attention = (int)att;
    c.dropout = (float)dropout;
    /* The weights' shapes before anything proportional to them exists. */
    m = nlp_calloc(1, sizeof *m);
    if (!m) {
        rc = nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
        goto fail;
    }
    m->cfg = c;
    m->V = (int)V;
    m->Vt = (int)Vt;
    m->K = (int)K;
    if ((rc = layout(m)) != NLP_OK) {
        nlp_error_set(e, rc, path, 0, rc == NLP_ENOMEM ? NULL : "bad model configuration");
        goto fail;
    }
    for (int i = 0; i < m->params->nviews; i++) {
        const nlp_params_view *pv = &m->params->views[i];
        size_t shape[NLP_PARAM_MAX_DIMS];
        for (int k = 0; k < pv->ndim; k++)
            shape[k] = (size_t)pv->shape[k];
        if ((rc = expect_tensor(f, path, pv->name, pv->ndim, shape, e)) != NLP_OK)
            goto fail;
    }
    if (V > Vt &&
        (rc = expect_tensor(f, path, "embed.fixed", 2, (size_t[]){(size_t)(V - Vt), (size_t)embed},
                            e)) != NLP_OK)
        goto fail;
    if ((rc = nlp_vocab_from_model(&m->words, f, "vocab", path, e)) != NLP_OK ||
        (rc = nlp_vocab_from_model(&m->labels, f, "labels", path, e)) != NLP_OK)
        goto fail;
    if (nlp_vocab_size(m->words) != V || nlp_vocab_size(m->labels) != K ||
        !check_words(m->words, Vt, m->labels)) {
        rc = nlp_error_set(e, NLP_EFORMAT, path, 0, "vocabulary or labels do not match the model");
        goto fail;
    }
    if ((rc = finish(m)) != NLP_OK) {
        nlp_error_set(e, rc, path, 0, NULL);
        goto fail;
    }
    if ((rc = nlp_model_read_params(f, m->params, e)) != NLP_OK)
        goto fail;
    if (m->fixed &&
        (rc = nlp_model_read_tensor(f, "embed.fixed", m->fixed, 2,
                                    (size_t[]){(size_t)(V - Vt), (size_t)embed}, e)) != NLP_OK)
        goto fail;
    *out = m;
    if (file)
        *file = f;
    else
        nlp_model_free(f);
    return NLP_OK;
fail:
    nlp_classify_free(m);
    nlp_model_free(f);
    return rc;
}

/* ==== Training =========================================================== */

struct nlp_classify_trainer {
    nlp_classify *m;            /* not owned */
    nlp_classify_train_config cfg;
    nlp_train_task task;
    const nlp_classify_set *train, *dev;
    uint32_t train_crc, dev_crc; /* the sets, checked on resume */
    long nbatch;                /* batches per epoch */
    long *order;                /* (n) examples sorted by (length, key) */
    long *border;               /* (nbatch) the epoch's batch order */
    uint64_t *key;              /* (n) random tie-breaks */
    long *dev_order;            /* (dev n) dev sorted by length */
    const int **seqs;           /* (batch) */
    int *lens, *targets;        /* (batch) */
    size_t dev_correct;         /* accumulator of evaluate */
    long trained;               /* sentences stepped over, this process */
    /* Position: saved in a checkpoint. */
    long epoch;                 /* epochs completed */
    long pos;                   /* next batch in border */
    nlp_rng epoch_rng;          /* the order rng as it was when this epoch's
                                   order was drawn (so it can be redrawn) */
    nlp_rng order_rng;          /* draws each epoch's order */
    nlp_rng rng;                /* dropout masks */
    /* The parallel step (nlp/train.h), made by prepare_workers. */
    struct classify_worker *wk; /* (nwk) */
    int nwk;
};

/* A worker of the parallel step: a contiguous share of each batch, on its
** own clone of the model whose gradients go to the harness's buffer. */
typedef struct classify_worker {
    nlp_params params;          /* m's, grad = the worker's buffer */
    nlp_classify *c;            /* owned: clone_new over params */
    nlp_rng rng;                /* this step's dropout masks */
    const int **seqs;           /* (share) */
    int *lens, *targets;        /* (share) */
} classify_worker;

void nlp_classify_train_config_default(nlp_classify_train_config *c)
{
    c->batch = 32;
    c->eval_batch = 256;
    c->seed = 1;
    c->bucket_pool = 0;
}

static void workers_free(nlp_classify_trainer *t)
{
    for (int i = 0; i < t->nwk; i++) {
        classify_worker *w = &t->wk[i];
        clone_free(w->c);
        nlp_free(w->seqs);
        nlp_free(w->lens);
        nlp_free(w->targets);
    }
    nlp_free(t->wk);
    t->wk = NULL;
    t->nwk = 0;
}

void nlp_classify_trainer_free(nlp_classify_trainer *t)
{
    if (!t)
        return;
    workers_free(t);
    nlp_free(t->order);
    nlp_free(t->border);
    nlp_free(t->key);
    nlp_free(t->dev_order);
    nlp_free(t->seqs);
    nlp_free(t->lens);
    nlp_free(t->targets);
    nlp_free(t);
}

/* Draws an epoch's order from t->order_rng (saved first in epoch_rng). */
static int draw_order(nlp_classify_trainer *t)
{
    const long n = t->train->n;
    t->epoch_rng = t->order_rng;
    for (long i = 0; i < n; i++) {
        t->order[i] = i;
        t->key[i] = nlp_rng_u64(&t->order_rng);
    }
    /* Pools of bucket_pool batches from a shuffle, each sorted by length:
    ** batches still of similar length, but not the same company of
    ** sentences every epoch. */
    long pool = t->cfg.bucket_pool > 0 ? (long)t->cfg.bucket_pool * t->cfg.batch : n;
    if (pool < n)
        nlp_rng_shuffle(&t->order_rng, t->order, n);
    else
        pool = n;
    long *tmp = nlp_malloc((size_t)pool * sizeof *tmp);
    if (!tmp)
        return NLP_ENOMEM;
    for (long first = 0; first < n; first += pool)
        sort_by_length_in(t->order + first, tmp, n - first < pool ? n - first : pool, t->train,
                          t->key);
    nlp_free(tmp);
    for (long i = 0; i < t->nbatch; i++)
        t->border[i] = i;
    nlp_rng_shuffle(&t->order_rng, t->border, t->nbatch);
    t->pos = 0;
    return NLP_OK;
}

static uint32_t set_crc(const nlp_classify_set *s)
{
    if (!s)
        return 0;
    /* Token and label ids as little-endian bytes, with the boundaries. */
    uint32_t crc = 0;
    for (long i = 0; i < s->n; i++) {
        int32_t head[2] = {(int32_t)(s->start[i + 1] - s->start[i]), s->label[i]};
        crc = nlp_crc32_le32(crc, head, 2);
        crc = nlp_crc32_le32(crc, s->tok + s->start[i], s->start[i + 1] - s->start[i]);
    }
    return crc;
}

/* The current batch: its first index in t->order and its size. */
static int batch_at(const nlp_classify_trainer *t, long *first)
{
    *first = t->border[t->pos] * (long)t->cfg.batch;
    long left = t->train->n - *first;
    return left < t->cfg.batch ? (int)left : t->cfg.batch;
}

/* Past the batch of B sentences: 1 at the end of an epoch (the next
** epoch's order drawn), else 0; or an error. */
static int advance(nlp_classify_trainer *t, int B, nlp_error *e)
{
    t->trained += B;
    if (++t->pos == t->nbatch) {
        t->epoch++;
        int rc = draw_order(t);
        if (rc != NLP_OK)
            return nlp_error_set(e, rc, NULL, 0, NULL);
        return 1;
    }
    return 0;
}

static int task_step(void *ctx, double *loss, double *count, nlp_error *e)
{
    nlp_classify_trainer *t = ctx;
    nlp_classify *m = t->m;
    const nlp_classify_set *s = t->train;
    long first;
    int B = batch_at(t, &first);
    for (int b = 0; b < B; b++) {
        long ex = t->order[first + b];
        t->seqs[b] = s->tok + s->start[ex];
        t->lens[b] = (int)(s->start[ex + 1] - s->start[ex]);
        t->targets[b] = s->label[ex];
    }
    int rc = nlp_classify_forward(m, t->seqs, t->lens, B, 1, &t->rng);
    if (rc == NLP_OK)
        rc = nlp_classify_loss(m, t->targets, loss, NULL);
    if (rc == NLP_OK)
        rc = nlp_classify_backward(m);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "training step: %s", nlp_error_string(rc));
    *count = (double)B;
    return advance(t, B, e);
}

/* ---- the parallel step (nlp/train.h) ---- */

static int task_prepare_workers(void *ctx, int W, nlp_error *e)
{
    nlp_classify_trainer *t = ctx;
    const int B = t->cfg.batch;
    if (W < 1 || W > B)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "%d training threads for a batch of %d "
                             "sentences: every thread needs at least one", W, B);
    workers_free(t);
    t->wk = nlp_calloc((size_t)W, sizeof *t->wk);
    if (!t->wk)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    t->nwk = W;
    const int share = (B + W - 1) / W; /* the largest share */
    const int maxT = t->train->max_len > 0 ? t->train->max_len : 1;
    for (int i = 0; i < W; i++) {
        classify_worker *w = &t->wk[i];
        w->params = *t->m->params;
        int rc = clone_new(&w->c, t->m, &w->params, maxT, share);
        w->seqs = nlp_malloc((size_t)share * sizeof *w->seqs);
        w->lens = nlp_malloc((size_t)share * sizeof *w->lens);
        w->targets = nlp_malloc((size_t)share * sizeof *w->targets);
        if (rc == NLP_OK && (!w->seqs || !w->lens || !w->targets))
            rc = NLP_ENOMEM;
        if (rc != NLP_OK) {
            workers_free(t);
            return nlp_error_set(e, rc, NULL, 0, "training threads: %s", nlp_error_string(rc));
        }
    }
    return NLP_OK;
}

/*
** Worker i's share: sentences [i*B/W, (i+1)*B/W) of the batch of B, the
** same arithmetic as task_step on them with the gradient scaled by 1/B of
** the whole batch, into grad.  One worker draws its dropout masks from
** t->rng itself (step_end keeps where it got to), so W = 1 is task_step
** bit for bit; with W > 1 worker i's rng is seeded from the (i+1)-th draw
** of t->rng, which step_end then makes, so the masks depend on the run
** and W only and a checkpoint needs nothing more than t->rng.
*/
static int task_step_share(void *ctx, int i, int W, float *grad, double *loss, double *count,
                           nlp_error *e)
{
    nlp_classify_trainer *t = ctx;
    if (W != t->nwk || i < 0 || i >= W)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "training thread %d of %d: prepared for "
                             "%d", i, W, t->nwk);
    classify_worker *w = &t->wk[i];
    const nlp_classify_set *s = t->train;
    long first;
    const int B = batch_at(t, &first);
    int b0, nb;
    nlp_train_share(i, W, B, &b0, &nb);
    w->params = *t->m->params;
    w->params.grad = grad;
    if (W == 1)
        w->rng = t->rng;
    else
        nlp_train_share_rng(&w->rng, &t->rng, i);
    *loss = 0;
    *count = 0;
    if (nb == 0)
        return NLP_OK; /* a last batch smaller than W */
    for (int b = 0; b < nb; b++) {
        long ex = t->order[first + b0 + b];
        w->seqs[b] = s->tok + s->start[ex];
        w->lens[b] = (int)(s->start[ex + 1] - s->start[ex]);
        w->targets[b] = s->label[ex];
    }
    double mean;
    int rc = nlp_classify_forward(w->c, w->seqs, w->lens, nb, 1, &w->rng);
    if (rc == NLP_OK)
        rc = loss_scaled(w->c, w->targets, 1.0f / (float)B, &mean, NULL);
    if (rc == NLP_OK)
        rc = nlp_classify_backward(w->c);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "training step, thread %d: %s", i,
                             nlp_error_string(rc));
    *loss = mean;
    *count = (double)nb;
    return NLP_OK;
}

static int task_step_end(void *ctx, int W, nlp_error *e)
{
    nlp_classify_trainer *t = ctx;
    if (W != t->nwk)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "step_end for %d threads, prepared for %d",
                             W, t->nwk);
    if (W == 1)
        t->rng = t->wk[0].rng;
    else
        nlp_train_share_rng_end(&t->rng, W);
    t->m->pstale = 1; /* the update follows: the main model's rows are old */
    long first;
    return advance(t, batch_at(t, &first), e);
}

static void count_correct(void *ctx, const long *idx, int B, const float *logits, int K)
{
    nlp_classify_trainer *t = ctx;
    for (int b = 0; b < B; b++)
        t->dev_correct += (int)nlp_loss_argmax(logits + (size_t)b * K, (size_t)K) ==
                          t->dev->label[idx[b]];
}

static int task_evaluate(void *ctx, double *metric, nlp_error *e)
{
    nlp_classify_trainer *t = ctx;
    t->dev_correct = 0;
    int rc = run_sorted(t->m, t->dev, t->dev_order, t->dev->n, t->cfg.eval_batch, count_correct,
                        t);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "validation: %s", nlp_error_string(rc));
    *metric = 100.0 * (double)t->dev_correct / (double)t->dev->n;
    return NLP_OK;
}

static double task_epoch_fraction(void *ctx)
{
    const nlp_classify_trainer *t = ctx;
    return (double)t->pos / (double)t->nbatch;
}

static int task_save_model(void *ctx, nlp_model *f, nlp_error *e)
{
    nlp_classify_trainer *t = ctx;
    int rc = nlp_classify_add_to_model(t->m, f);
    return rc == NLP_OK ? NLP_OK : nlp_error_set(e, rc, NULL, 0, NULL);
}

static int task_save_state(void *ctx, nlp_model *f, nlp_error *e)
{
    const nlp_classify_trainer *t = ctx;
    int rc = nlp_model_set_meta_long(f, "sentiment.batch", t->cfg.batch);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "sentiment.seed", t->cfg.seed);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "sentiment.bucket_pool", t->cfg.bucket_pool);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "sentiment.epoch", (uint64_t)t->epoch);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "sentiment.pos", (uint64_t)t->pos);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "sentiment.train_n", (uint64_t)t->train->n);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "sentiment.train_crc", t->train_crc);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "sentiment.dev_n", t->dev ? (uint64_t)t->dev->n : 0);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "sentiment.dev_crc", t->dev_crc);
    if (rc == NLP_OK) rc = nlp_train_add_rng(f, "sentiment.epoch_rng", &t->epoch_rng);
    if (rc == NLP_OK) rc = nlp_train_add_rng(f, "sentiment.rng", &t->rng);
    return rc == NLP_OK ? NLP_OK : nlp_error_set(e, rc, NULL, 0, NULL);
}

int nlp_classify_train_config_read(nlp_classify_train_config *c, const nlp_model *f,
                                   nlp_error *e)
{
    if (!nlp_model_meta(f, "sentiment.batch"))
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "not a checkpoint (a model saved as the best one has no "
                             "training state; resume from the .ckpt file)");
    uint64_t batch, seed, pool = 0;
    int rc;
    if ((rc = nlp_model_meta_u64(f, "sentiment.batch", 1 << 20, &batch, e)) != NLP_OK ||
        (rc = nlp_model_meta_u64(f, "sentiment.seed", UINT64_MAX, &seed, e)) != NLP_OK)
        return rc;
    /* (absent from checkpoints made before pools: one pool) */
    if (nlp_model_meta(f, "sentiment.bucket_pool") &&
        (rc = nlp_model_meta_u64(f, "sentiment.bucket_pool", 1 << 20, &pool, e)) != NLP_OK)
        return rc;
    if (batch < 1)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint: batch is 0");
    c->batch = (int)batch;
    c->seed = seed;
    c->bucket_pool = (int)pool;
    return NLP_OK;
}

static int task_load_state(void *ctx, const nlp_model *f, nlp_error *e)
{
    nlp_classify_trainer *t = ctx;
    nlp_classify_train_config c = t->cfg;
    int rc = nlp_classify_train_config_read(&c, f, e);
    if (rc != NLP_OK)
        return rc;
    if (c.batch != t->cfg.batch || c.seed != t->cfg.seed || c.bucket_pool != t->cfg.bucket_pool)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "checkpoint: batch, seed or bucket pool differ from the trainer's");
    uint64_t epoch, pos, tn, tcrc, dn, dcrc;
    if ((rc = nlp_model_meta_u64(f, "sentiment.train_n", UINT64_MAX, &tn, e)) != NLP_OK ||
        (rc = nlp_model_meta_u64(f, "sentiment.train_crc", UINT32_MAX, &tcrc, e)) != NLP_OK ||
        (rc = nlp_model_meta_u64(f, "sentiment.dev_n", UINT64_MAX, &dn, e)) != NLP_OK ||
        (rc = nlp_model_meta_u64(f, "sentiment.dev_crc", UINT32_MAX, &dcrc, e)) != NLP_OK)
        return rc;
    if (tn != (uint64_t)t->train->n || tcrc != t->train_crc ||
        dn != (t->dev ? (uint64_t)t->dev->n : 0) || dcrc != t->dev_crc)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "the training or validation data differ from the ones the "
                             "checkpoint was made with");
    if ((rc = nlp_model_meta_u64(f, "sentiment.epoch", LONG_MAX, &epoch, e)) != NLP_OK ||
        (rc = nlp_model_meta_u64(f, "sentiment.pos", (uint64_t)t->nbatch - 1, &pos, e)) != NLP_OK)
        return rc;
    nlp_rng er, r;
    if ((rc = nlp_train_read_rng(f, "sentiment.epoch_rng", &er, e)) != NLP_OK ||
        (rc = nlp_train_read_rng(f, "sentiment.rng", &r, e)) != NLP_OK)
        return rc;
    /* Redraw the epoch's order exactly as it was drawn. */
    t->order_rng = er;
    if ((rc = draw_order(t)) != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, NULL);
    t->pos = (long)pos;
    t->epoch = (long)epoch;
    t->rng = r;
    return NLP_OK;
}

int nlp_classify_trainer_new(nlp_classify_trainer **out, nlp_classify *m,
                             const nlp_classify_train_config *cfg,
                             const nlp_classify_set *train, const nlp_classify_set *dev,
                             nlp_error *e)
{
    *out = NULL;
    if (cfg->batch < 1 || cfg->eval_batch < 1)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "batch sizes must be at least 1");
    if (cfg->bucket_pool < 0)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "the bucket pool cannot be negative");
    if (!train || train->n < 1)
        return nlp_error_set(e, NLP_EEMPTY, NULL, 0, "no training examples");
    for (long i = 0; i < train->n; i++)
        if (train->label[i] < 0)
            return nlp_error_set(e, NLP_EINVAL, NULL, 0, "a training label the model lacks");
    int maxT = train->max_len > 0 ? train->max_len : 1;
    int maxB = cfg->batch;
    if (dev && dev->n > 0) {
        if (dev->max_len > maxT)
            maxT = dev->max_len;
        if (cfg->eval_batch > maxB)
            maxB = cfg->eval_batch;
    } else {
        dev = NULL;
    }
    int rc = nlp_classify_reserve(m, maxT, maxB);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "workspace for %d x %d tokens: %s", maxB, maxT,
                             nlp_error_string(rc));
    nlp_classify_trainer *t = nlp_calloc(1, sizeof *t);
    if (!t)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    t->m = m;
    t->cfg = *cfg;
    t->train = train;
    t->dev = dev;
    t->nbatch = (train->n + cfg->batch - 1) / cfg->batch;
    size_t n = (size_t)train->n;
    t->order = nlp_malloc(n * sizeof *t->order);
    t->key = nlp_malloc(n * sizeof *t->key);
    t->border = nlp_malloc((size_t)t->nbatch * sizeof *t->border);
    t->seqs = nlp_malloc((size_t)cfg->batch * sizeof *t->seqs);
    t->lens = nlp_malloc((size_t)cfg->batch * sizeof *t->lens);
    t->targets = nlp_malloc((size_t)cfg->batch * sizeof *t->targets);
    if (dev)
        t->dev_order = nlp_malloc((size_t)dev->n * sizeof *t->dev_order);
    if (!t->order || !t->key || !t->border || !t->seqs || !t->lens || !t->targets ||
        (dev && !t->dev_order)) {
        nlp_classify_trainer_free(t);
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    }
    if (dev) {
        for (long i = 0; i < dev->n; i++)
            t->dev_order[i] = i;
        if (sort_by_length(t->dev_order, dev->n, dev, NULL) != NLP_OK) {
            nlp_classify_trainer_free(t);
            return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
        }
    }
    t->train_crc = set_crc(train);
    t->dev_crc = set_crc(dev);
    /* Two streams from the seed: the batch order, and dropout. */
    nlp_rng_seed(&t->order_rng, cfg->seed);
    nlp_rng_split(&t->order_rng, &t->rng);
    if (draw_order(t) != NLP_OK) {
        nlp_classify_trainer_free(t);
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    }
    t->task.ctx = t;
    t->task.kind = NLP_CLASSIFY_KIND;
    t->task.metric = "accuracy";
    t->task.higher_is_better = 1;
    t->task.unit = "sentences";
    t->task.params = m->params;
    t->task.step = task_step;
    t->task.evaluate = dev ? task_evaluate : NULL;
    t->task.epoch_fraction = task_epoch_fraction;
    t->task.save_model = task_save_model;
    t->task.save_state = task_save_state;
    t->task.load_state = task_load_state;
    t->task.prepare_workers = task_prepare_workers;
    t->task.step_share = task_step_share;
    t->task.step_end = task_step_end;
    *out = t;
    return NLP_OK;
}

const nlp_train_task *nlp_classify_trainer_task(nlp_classify_trainer *t)
{
    return &t->task;
}

long nlp_classify_trainer_sentences(const nlp_classify_trainer *t)
{
    return t->trained;
}

int nlp_classify_trainer_next_batch(const nlp_classify_trainer *t, long *examples)
{
    long first;
    int B = batch_at(t, &first);
    memcpy(examples, t->order + first, (size_t)B * sizeof *examples);
    return B;
}
