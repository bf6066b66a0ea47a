/*
** classify_run: applying and scoring a classifier (nlp/classify.h):
** lines classified in input order from a window read ahead and batched by
** length, labels ranked by probability, and the scores of a labelled set
** (accuracy, per-label precision, recall and F1, the confusion matrix).
** What the sentiment tool's predict and eval print, without the printing.
*/
#include "nlp/classify.h"
#include "nlp/alloc.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "sort.h"

/* ==== Lines in input order ============================================== */

typedef struct stream_line {
    int *ids;               /* the line's tokens */
    size_t cap;
    int n;
} stream_line;

struct nlp_classify_stream {
    nlp_classify *m;        /* not owned */
    int K, batch, window;
    stream_line *lines;     /* (window) */
    int nlines;             /* held */
    int ready;              /* the held lines were classified */
    long *order, *tmp;      /* (window) lines sorted by length, merge buffer */
    const int **seqs;       /* (batch) */
    int *lens;              /* (batch) */
    float *probs;           /* (window + batch, K): lines', then a batch's */
    long *rank, *rtmp;      /* (K) */
    size_t ntok, nunk;
};

void nlp_classify_stream_free(nlp_classify_stream *s)
{
    if (!s)
        return;
    for (int i = 0; s->lines && i < s->window; i++)
        nlp_free(s->lines[i].ids);
    nlp_free(s->lines);
    nlp_free(s->order);
    nlp_free(s->tmp);
    nlp_free(s->seqs);
    nlp_free(s->lens);
    nlp_free(s->probs);
    nlp_free(s->rank);
    nlp_free(s->rtmp);
    nlp_free(s);
}

int nlp_classify_stream_new(nlp_classify_stream **out, nlp_classify *m, int batch, int window)
{
    *out = NULL;
    if (batch < 1 || window < 1 || batch > (1 << 20) || window > (1 << 24))
        return NLP_EINVAL;
    const int K = (int)nlp_vocab_size(nlp_classify_labels(m));
    nlp_classify_stream *s = nlp_calloc(1, sizeof *s);
    if (!s)
        return NLP_ENOMEM;
    s->m = m;
    s->K = K;
    s->batch = batch;
    s->window = window;
    s->lines = nlp_calloc((size_t)window, sizeof *s->lines);
    s->order = nlp_malloc((size_t)window * sizeof *s->order);
    s->tmp = nlp_malloc((size_t)window * sizeof *s->tmp);
    s->seqs = nlp_malloc((size_t)batch * sizeof *s->seqs);
    s->lens = nlp_malloc((size_t)batch * sizeof *s->lens);
    s->probs = nlp_malloc(((size_t)window + (size_t)batch) * (size_t)K * sizeof *s->probs);
    s->rank = nlp_malloc((size_t)K * sizeof *s->rank);
    s->rtmp = nlp_malloc((size_t)K * sizeof *s->rtmp);
    if (!s->lines || !s->order || !s->tmp || !s->seqs || !s->lens || !s->probs || !s->rank ||
        !s->rtmp) {
        nlp_classify_stream_free(s);
        return NLP_ENOMEM;
    }
    *out = s;
    return NLP_OK;
}

int nlp_classify_stream_add(nlp_classify_stream *s, const char *text, size_t len)
{
    if (s->ready) { /* the last flush's lines were read: start again */
        s->nlines = 0;
        s->ready = 0;
    }
    if (s->nlines >= s->window)
        return NLP_EINVAL;
    stream_line *l = &s->lines[s->nlines];
    int rc = nlp_classify_tokens(nlp_classify_words(s->m), text, len, &l->ids, &l->cap, &l->n,
                                 &s->nunk);
    if (rc != NLP_OK)
        return rc;
    s->ntok += (size_t)l->n;
    return ++s->nlines == s->window;
}

static int shorter_line(const void *ctx, long a, long b)
{
    const stream_line *l = ctx;
    return l[a].n < l[b].n;
}

static int more_likely(const void *ctx, long a, long b)
{
    const float *p = ctx;
    return p[a] > p[b];
}

int nlp_classify_stream_flush(nlp_classify_stream *s, int *n)
{
    *n = 0;
    if (s->ready) {
        s->nlines = 0;
        s->ready = 0;
    }
    const int K = s->K;
    for (int i = 0; i < s->nlines; i++)
        s->order[i] = i;
    nlp_sort_stable(s->order, s->tmp, s->nlines, shorter_line, s->lines);
    float *out = s->probs + (size_t)s->window * K; /* a batch's rows, then to their lines */
    /* Longest batch first: the workspace grows once, not at every length. */
    for (int i = s->nlines ? (s->nlines - 1) / s->batch * s->batch : 0;
         i >= 0 && i < s->nlines; i -= s->batch) {
        int B = s->nlines - i < s->batch ? s->nlines - i : s->batch;
        for (int b = 0; b < B; b++) {
            s->seqs[b] = s->lines[s->order[i + b]].ids;
            s->lens[b] = s->lines[s->order[i + b]].n;
        }
        int rc = nlp_classify_predict(s->m, s->seqs, s->lens, B, out);
        if (rc != NLP_OK)
            return rc;
        for (int b = 0; b < B; b++)
            memcpy(s->probs + (size_t)s->order[i + b] * K, out + (size_t)b * K,
                   (size_t)K * sizeof *out);
    }
    *n = s->nlines;
    s->ready = 1;
    return NLP_OK;
}

const float *nlp_classify_stream_probs(const nlp_classify_stream *s, int i)
{
    return s->probs + (size_t)i * s->K;
}

const long *nlp_classify_stream_rank(nlp_classify_stream *s, int i)
{
    for (int k = 0; k < s->K; k++)
        s->rank[k] = k;
    nlp_sort_stable(s->rank, s->rtmp, s->K, more_likely, nlp_classify_stream_probs(s, i));
    return s->rank;
}

void nlp_classify_stream_counts(const nlp_classify_stream *s, size_t *tokens, size_t *unknown)
{
    *tokens = s->ntok;
    *unknown = s->nunk;
}

/* ==== Scores ============================================================= */

void nlp_classify_scores_free(nlp_classify_scores *sc)
{
    if (!sc)
        return;
    nlp_free(sc->row_name);
    nlp_free(sc->first_line);
    nlp_free(sc->conf);
    nlp_free(sc->support);
    nlp_free(sc->precision);
    nlp_free(sc->recall);
    nlp_free(sc->f1);
    nlp_free(sc->scored);
    nlp_free(sc);
}

int nlp_classify_scores_new(nlp_classify_scores **out, const nlp_classify *m,
                            const nlp_classify_data *d, const int *pred)
{
    *out = NULL;
    const nlp_vocab *labels = nlp_classify_labels(m);
    const long K = nlp_vocab_size(labels), nd = nlp_vocab_size(d->labels);
    if (nd > LONG_MAX - K || (size_t)(K + nd) > SIZE_MAX / sizeof(long) / (size_t)K)
        return NLP_ERANGE;
    nlp_classify_scores *sc = nlp_calloc(1, sizeof *sc);
    long *row_of = nlp_malloc((size_t)(nd ? nd : 1) * sizeof *row_of); /* data label -> row */
    const size_t cap = (size_t)(K + nd);
    if (sc) {
        sc->row_name = nlp_malloc(cap * sizeof *sc->row_name);
        sc->first_line = nlp_malloc(cap * sizeof *sc->first_line);
    }
    if (!sc || !row_of || !sc->row_name || !sc->first_line) {
        nlp_free(row_of);
        nlp_classify_scores_free(sc);
        return NLP_ENOMEM;
    }
    /* Rows: true labels, the model's K then the unseen ones in the data's
    ** order; columns: predicted labels (always the model's). */
    long R = K;
    for (long i = 0; i < K; i++) {
        sc->row_name[i] = nlp_vocab_word(labels, i);
        sc->first_line[i] = 0;
    }
    for (long i = 0; i < nd; i++) {
        long id = nlp_vocab_find(labels, nlp_vocab_word(d->labels, i),
                                 nlp_vocab_word_len(d->labels, i));
        if (id < 0) {
            sc->row_name[R] = nlp_vocab_word(d->labels, i);
            sc->first_line[R] = 0;
            id = R++;
        }
        row_of[i] = id;
    }
    sc->K = K;
    sc->R = R;
    sc->n = d->n;
    sc->conf = nlp_calloc((size_t)(R * K), sizeof *sc->conf);
    sc->support = nlp_calloc((size_t)R, sizeof *sc->support);
    sc->precision = nlp_calloc((size_t)R, sizeof *sc->precision);
    sc->recall = nlp_calloc((size_t)R, sizeof *sc->recall);
    sc->f1 = nlp_calloc((size_t)R, sizeof *sc->f1);
    sc->scored = nlp_calloc((size_t)R, sizeof *sc->scored);
    if (!sc->conf || !sc->support || !sc->precision || !sc->recall || !sc->f1 || !sc->scored) {
        nlp_free(row_of);
        nlp_classify_scores_free(sc);
        return NLP_ENOMEM;
    }
    for (long i = 0; i < d->n; i++) {
        long r = row_of[d->label[i]];
        if (pred[i] < 0 || pred[i] >= K) {
            nlp_free(row_of);
            nlp_classify_scores_free(sc);
            return NLP_EINVAL;
        }
        sc->conf[r * K + pred[i]]++;
        sc->hit += r == pred[i];
        if (r >= K) {
            sc->unseen++;
            if (!sc->first_line[r])
                sc->first_line[r] = d->line[i];
        }
    }
    nlp_free(row_of);
    sc->accuracy = d->n ? (double)sc->hit / (double)d->n : 0;
    double f1sum = 0;
    long f1n = 0;
    for (long r = 0; r < R; r++) {
        long tp = r < K ? sc->conf[r * K + r] : 0, predicted = 0;
        for (long j = 0; j < K; j++)
            sc->support[r] += sc->conf[r * K + j];
        if (r < K)
            for (long i = 0; i < R; i++)
                predicted += sc->conf[i * K + r];
        if (!sc->support[r] && !predicted)
            continue; /* a label neither present nor predicted has no score */
        double p = predicted ? (double)tp / (double)predicted : 0;
        double rec = sc->support[r] ? (double)tp / (double)sc->support[r] : 0;
        sc->precision[r] = p;
        sc->recall[r] = rec;
        sc->f1[r] = p + rec > 0 ? 2 * p * rec / (p + rec) : 0;
        sc->scored[r] = 1;
        f1sum += sc->f1[r];
        f1n++;
    }
    sc->macro_f1 = f1n ? f1sum / (double)f1n : 0;
    *out = sc;
    return NLP_OK;
}
