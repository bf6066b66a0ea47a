/*
** beam: beam search and greedy search (k = 1, the same code) over a
** batched decoder seen through nlp_beam_ops.  See nlp/beam.h for the
** algorithm and the contract.
**
** Layout.  The live rows are grouped by sentence in sentence order; a
** sentence's rows are its live slots, ranked best first.  Per sentence and
** step the chosen continuations are kept in a back-pointer history
** (token, parent slot), and with want_attention the attention row each
** pre-step slot received, so a finished hypothesis is rebuilt, tokens and
** attention, along its own ancestry at the end of the search.
*/
#include "nlp/beam.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nlp/alloc.h"
#include "nlp/error.h"

/* A continuation: its raw score and its index j*V + v in the sentence's
** rows x V block (slot j, token v); the index breaks ties. */
typedef struct cand {
    double score;
    int64_t idx;   /* k*V may pass INT_MAX */
} cand;

/* A finished hypothesis, by its end: tokens are the ancestry of slot p
** after step t-1, plus tok when it was cut at the max length (ended = 0). */
typedef struct fin {
    double raw, norm;
    int t, p, tok, ended;
} fin;

typedef struct sent {
    int row0, live;   /* its rows in the current layout */
    int done;
    int max_len, src_len;
    int nfin;         /* kept finished hypotheses, <= n_best, best first */
    long finished;    /* all that finished (GNMT's stop at k) */
} sent;

struct nlp_beam {
    nlp_beam_config c;      /* c.ban points at ban below */
    int *ban;               /* (n_ban) */
    unsigned char *skip;    /* (V) 1 = never a live continuation: banned, pad, eos */
    int max_n, max_S, max_len, R;
    int *prev, *prev2;      /* (R) the rows' previous tokens, now and next */
    int *parent;            /* (R) the reorder's argument */
    double *raw, *raw2;     /* (R) the rows' raw scores, now and next */
    float *logp;            /* (R, V) */
    int *htok, *hpar;       /* (max_n, max_len, k) back-pointer history */
    float *hatt;            /* (max_n, max_len, k, max_S) or NULL */
    cand *heap;             /* (k) */
    fin *fins;              /* (max_n, n_best) */
    sent *sents;            /* (max_n) */
    int *rtok;              /* (max_n, n_best, max_len) results */
    float *ratt;            /* (max_n, n_best, max_len, max_S) or NULL */
    int n_res;              /* sentences of the last search; 0 = none */
};

void nlp_beam_config_default(nlp_beam_config *c)
{
    memset(c, 0, sizeof *c);
    c->V = 0;
    c->k = 5;
    c->n_best = 1;
    c->length_penalty = 0.0f;
    c->bos = -1;
    c->eos = -1;
    c->pad = -1;
    c->ban = NULL;
    c->n_ban = 0;
    c->want_attention = 0;
}

int nlp_beam_config_check(const nlp_beam_config *c, nlp_error *e)
{
    if (!c)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "beam: no configuration");
    if (c->V < 1)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "beam: vocabulary size %d is not >= 1", c->V);
    if (c->k < 1)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "beam: beam width %d is not >= 1", c->k);
    if (c->n_best < 1 || c->n_best > c->k)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "beam: n-best %d is not in 1..%d (the beam width)", c->n_best, c->k);
    if (!isfinite(c->length_penalty) || c->length_penalty < 0.0f ||
        c->length_penalty > NLP_BEAM_ALPHA_MAX)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "beam: length penalty %g is not in 0..%g",
                             (double)c->length_penalty, (double)NLP_BEAM_ALPHA_MAX);
    if (c->bos < 0 || c->bos >= c->V)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "beam: start id %d is not in 0..%d", c->bos, c->V - 1);
    if (c->eos < 0 || c->eos >= c->V)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "beam: end id %d is not in 0..%d", c->eos, c->V - 1);
    if (c->pad < -1 || c->pad >= c->V)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "beam: padding id %d is not -1 or in 0..%d", c->pad, c->V - 1);
    if (c->pad == c->eos)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "beam: padding id %d is the end id", c->pad);
    if (c->n_ban < 0 || (c->n_ban > 0 && !c->ban))
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "beam: %d banned ids but no list", c->n_ban);
    for (int i = 0; i < c->n_ban; i++) {
        if (c->ban[i] < 0 || c->ban[i] >= c->V)
            return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                                 "beam: banned id %d is not in 0..%d", c->ban[i], c->V - 1);
        if (c->ban[i] == c->eos)
            return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                                 "beam: banned id %d is the end id", c->ban[i]);
    }
    return NLP_OK;
}

double nlp_beam_length_penalty(float alpha, int steps)
{
    if (alpha == 0.0f)
        return 1.0;
    return pow((5.0 + steps) / 6.0, (double)alpha);
}

/* a*b into *out; 0 when it overflows size_t. */
static int mulz(size_t a, size_t b, size_t *out)
{
    if (b && a > SIZE_MAX / b)
        return 0;
    *out = a * b;
    return 1;
}

/* a*b*c*d elements of size each into *bytes; 0 on overflow. */
static int bytes4(size_t a, size_t b, size_t c, size_t d, size_t size, size_t *bytes)
{
    size_t x;
    return mulz(a, b, &x) && mulz(x, c, &x) && mulz(x, d, &x) && mulz(x, size, bytes);
}

void nlp_beam_free(nlp_beam *b)
{
    if (!b)
        return;
    nlp_free(b->ban);
    nlp_free(b->skip);
    nlp_free(b->prev);
    nlp_free(b->prev2);
    nlp_free(b->parent);
    nlp_free(b->raw);
    nlp_free(b->raw2);
    nlp_free(b->logp);
    nlp_free(b->htok);
    nlp_free(b->hpar);
    nlp_free(b->hatt);
    nlp_free(b->heap);
    nlp_free(b->fins);
    nlp_free(b->sents);
    nlp_free(b->rtok);
    nlp_free(b->ratt);
    nlp_free(b);
}

int nlp_beam_new(nlp_beam **out, const nlp_beam_config *c, int max_n, int max_S,
                 int max_len)
{
    if (!out)
        return NLP_EINVAL;
    *out = NULL;
    if (nlp_beam_config_check(c, NULL) != NLP_OK || max_n < 1 || max_S < 1 || max_len < 1)
        return NLP_EINVAL;
    size_t k = (size_t)c->k, nb = (size_t)c->n_best, V = (size_t)c->V;
    size_t n = (size_t)max_n, S = (size_t)max_S, L = (size_t)max_len;
    size_t R, logp_b, hist_b, hatt_b = 0, fins_b, rtok_b, ratt_b = 0;
    if (!mulz(n, k, &R) || R > INT_MAX || !bytes4(R, V, 1, 1, sizeof(float), &logp_b) ||
        !bytes4(n, L, k, 1, sizeof(int), &hist_b) ||
        !bytes4(n, nb, 1, 1, sizeof(fin), &fins_b) ||
        !bytes4(n, nb, L, 1, sizeof(int), &rtok_b))
        return NLP_EINVAL;
    if (c->want_attention &&
        (!bytes4(n, L, k, S, sizeof(float), &hatt_b) ||
         !bytes4(n, nb, L, S, sizeof(float), &ratt_b)))
        return NLP_EINVAL;

    nlp_beam *b = nlp_calloc(1, sizeof *b);
    if (!b)
        return NLP_ENOMEM;
    b->c = *c;
    b->max_n = max_n;
    b->max_S = max_S;
    b->max_len = max_len;
    b->R = (int)R;
    b->ban = nlp_malloc((size_t)c->n_ban * sizeof(int));
    b->skip = nlp_calloc(V, 1);
    b->prev = nlp_malloc(R * sizeof(int));
    b->prev2 = nlp_malloc(R * sizeof(int));
    b->parent = nlp_malloc(R * sizeof(int));
    b->raw = nlp_malloc(R * sizeof(double));
    b->raw2 = nlp_malloc(R * sizeof(double));
    b->logp = nlp_malloc(logp_b);
    b->htok = nlp_malloc(hist_b);
    b->hpar = nlp_malloc(hist_b);
    b->heap = nlp_malloc(k * sizeof(cand));
    b->fins = nlp_malloc(fins_b);
    b->sents = nlp_calloc(n, sizeof(sent));
    b->rtok = nlp_malloc(rtok_b);
    if (c->want_attention) {
        b->hatt = nlp_malloc(hatt_b);
        b->ratt = nlp_malloc(ratt_b);
    }
    if (!b->ban || !b->skip || !b->prev || !b->prev2 || !b->parent || !b->raw ||
        !b->raw2 || !b->logp || !b->htok || !b->hpar || !b->heap || !b->fins ||
        !b->sents || !b->rtok || (c->want_attention && (!b->hatt || !b->ratt))) {
        nlp_beam_free(b);
        return NLP_ENOMEM;
    }
    if (c->n_ban > 0)
        memcpy(b->ban, c->ban, (size_t)c->n_ban * sizeof(int));
    b->c.ban = c->n_ban > 0 ? b->ban : NULL;
    for (int i = 0; i < c->n_ban; i++)
        b->skip[c->ban[i]] = 1;
    if (c->pad >= 0)
        b->skip[c->pad] = 1;
    b->skip[c->eos] = 1;   /* EOS continuations are looked at apart: they finish */
    *out = b;
    return NLP_OK;
}

/* ---- the search ---- */

/* Whether continuation a ranks above b: higher score, ties to the lower index. */
static inline int better(const cand *a, const cand *b)
{
    return a->score > b->score || (a->score == b->score && a->idx < b->idx);
}

/* Min-heap (the worst on top) of h[0..n): restores it below position i. */
static void sift_down(cand *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, w = i;
        if (l < n && better(&h[w], &h[l]))
            w = l;
        if (l + 1 < n && better(&h[w], &h[l + 1]))
            w = l + 1;
        if (w == i)
            return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void sift_up(cand *h, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!better(&h[p], &h[i]))
            return;
        cand t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

/*
** The k best live continuations of the m rows from row r0 (slot j = row
** r0 + j), best first, into h; returns how many (< k when fewer exist).
** Candidates come in index order, so a later one with an equal score ranks
** below and only a strictly higher score enters a full heap.
*/
static int select_top(nlp_beam *b, int r0, int m, cand *h)
{
    const int V = b->c.V, k = b->c.k;
    const unsigned char *skip = b->skip;
    int nh = 0;
    for (int j = 0; j < m; j++) {
        const float *lp = b->logp + (size_t)(r0 + j) * V;
        double base = b->raw[r0 + j];
        /* Most candidates fail this one compare: below the heap's worst
        ** (scores are finite, so all pass while the heap fills). */
        double thr = nh < k ? -INFINITY : h[0].score;
        for (int v = 0; v < V; v++) {
            double s = base + lp[v];
            if (!(s > thr) || skip[v])
                continue;
            if (nh < k) {
                h[nh].score = s;
                h[nh].idx = (int64_t)j * V + v;
                sift_up(h, nh++);
            } else {
                h[0].score = s;
                h[0].idx = (int64_t)j * V + v;
                sift_down(h, nh, 0);
            }
            if (nh == k)
                thr = h[0].score;
        }
    }
    /* Pop the worst to the back: h becomes sorted best first. */
    for (int n = nh; n > 1; n--) {
        cand t = h[0];
        h[0] = h[n - 1];
        h[n - 1] = t;
        sift_down(h, n - 1, 0);
    }
    return nh;
}

/* Offers a finished hypothesis to sentence i's n_best kept, best first;
** an equal score goes after those already there. */
static void offer(nlp_beam *b, int i, const fin *f)
{
    sent *s = &b->sents[i];
    fin *kept = b->fins + (size_t)i * b->c.n_best;
    const int nb = b->c.n_best;
    s->finished++;
    int pos = s->nfin;
    while (pos > 0 && kept[pos - 1].norm < f->norm)
        pos--;
    if (pos >= nb)
        return;
    int last = s->nfin < nb ? s->nfin : nb - 1;
    memmove(kept + pos + 1, kept + pos, (size_t)(last - pos) * sizeof *kept);
    kept[pos] = *f;
    if (s->nfin < nb)
        s->nfin++;
}

static size_t hist_at(const nlp_beam *b, int i, int t, int j)
{
    return ((size_t)i * b->max_len + (size_t)t) * b->c.k + (size_t)j;
}

/* Writes sentence i's kept hypothesis j into the result arrays. */
static void rebuild(nlp_beam *b, int i, int j)
{
    const fin *f = b->fins + (size_t)i * b->c.n_best + j;
    const sent *s = &b->sents[i];
    int L = f->ended ? f->t - 1 : f->t;
    int S = s->src_len;
    size_t slot = (size_t)i * b->c.n_best + j;
    int *tok = b->rtok + slot * b->max_len;
    float *att = b->ratt ? b->ratt + slot * b->max_len * b->max_S : NULL;
    if (L > 0 && !f->ended) {
        tok[L - 1] = f->tok;
        if (att)
            memcpy(att + (size_t)(L - 1) * S, b->hatt + hist_at(b, i, f->t - 1, f->p) * b->max_S,
                   (size_t)S * sizeof(float));
    }
    /* q: the slot after step pos of the ancestry; its token is position pos. */
    int q = f->p;
    for (int pos = f->t - 1; pos >= 1; pos--) {
        size_t h = hist_at(b, i, pos - 1, q);
        int qp = b->hpar[h];
        tok[pos - 1] = b->htok[h];
        if (att)
            memcpy(att + (size_t)(pos - 1) * S, b->hatt + hist_at(b, i, pos - 1, qp) * b->max_S,
                   (size_t)S * sizeof(float));
        q = qp;
    }
}

/* Calls reorder unless parent[0..rows) keeps every one of old_rows rows. */
static int reorder_rows(const nlp_beam_ops *ops, const int *parent, int rows, int old_rows,
                        nlp_error *e)
{
    int same = rows == old_rows;
    for (int r = 0; same && r < rows; r++)
        same = parent[r] == r;
    if (same)
        return NLP_OK;
    int rc = ops->reorder(ops->ctx, parent, rows, e);
    if (rc > 0)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "beam: reorder returned %d", rc);
    return rc;
}

/* Checks one step's output for the live rows. */
static int check_step(nlp_beam *b, int rows, const float *attn, int S, nlp_error *e)
{
    const int V = b->c.V;
    const float *lp = b->logp;
    const size_t end = (size_t)rows * V;
    /* A branch-free pass (NaN fails both compares), then the culprit. */
    int ok = 1;
    for (size_t x = 0; x < end; x++)
        ok &= (lp[x] <= 0.0f) & (lp[x] >= -FLT_MAX);
    for (size_t x = 0; !ok && x < end; x++)
        if (!isfinite(lp[x]) || lp[x] > 0.0f)
            return nlp_error_set(e, NLP_ERANGE, NULL, 0,
                                 "beam: the decoder gave row %zu token %zu the log-probability %g",
                                 x / V, x % V, (double)lp[x]);
    if (b->c.want_attention) {
        if (!attn && S > 0)
            return nlp_error_set(e, NLP_EINVAL, NULL, 0, "beam: the decoder gave no attention");
        for (int i = 0; i < b->n_res; i++) {
            const sent *s = &b->sents[i];
            if (s->done)
                continue;
            for (int j = 0; j < s->live; j++) {
                const float *a = attn + (size_t)(s->row0 + j) * S;
                for (int x = 0; x < s->src_len; x++)
                    if (!isfinite(a[x]))
                        return nlp_error_set(e, NLP_ERANGE, NULL, 0,
                                             "beam: the decoder gave row %d source position %d "
                                             "the attention weight %g",
                                             s->row0 + j, x, (double)a[x]);
            }
        }
    }
    return NLP_OK;
}

int nlp_beam_search(nlp_beam *b, const nlp_beam_ops *ops, int n, const int *src_len,
                    const int *max_len, nlp_error *e)
{
    if (!b)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "beam: no search object");
    b->n_res = 0;
    const nlp_beam_config *c = &b->c;
    if (!ops || !ops->step || !ops->reorder)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "beam: no decoder step or reorder");
    if (ops->V != c->V)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "beam: the decoder has %d targets, the search was made for %d",
                             ops->V, c->V);
    if (n < 0 || n > b->max_n)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "beam: %d sentences, not in 0..%d", n, b->max_n);
    if (c->want_attention && !src_len && n > 0)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "beam: attention wanted but no source lengths");
    int S = 0, maxL = 0;
    for (int i = 0; i < n; i++) {
        int sl = src_len ? src_len[i] : 0;
        int ml = max_len ? max_len[i] : b->max_len;
        if (sl < 0 || sl > b->max_S)
            return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                                 "beam: sentence %d's source length %d is not in 0..%d",
                                 i, sl, b->max_S);
        if (ml < 0 || ml > b->max_len)
            return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                                 "beam: sentence %d's maximum length %d is not in 0..%d",
                                 i, ml, b->max_len);
        if (sl > S)
            S = sl;
        if (ml > maxL)
            maxL = ml;
    }

    /* Row i = sentence i; those that may produce nothing are dropped now. */
    const int k = c->k, V = c->V, eos = c->eos;
    const double alpha = c->length_penalty;
    int rows = 0;
    for (int i = 0; i < n; i++) {
        sent *s = &b->sents[i];
        memset(s, 0, sizeof *s);
        s->src_len = src_len ? src_len[i] : 0;
        s->max_len = max_len ? max_len[i] : b->max_len;
        if (s->max_len == 0) {
            fin f = {0.0, 0.0, 0, 0, 0, 0};
            s->done = 1;
            offer(b, i, &f);
            continue;
        }
        s->row0 = rows;
        s->live = 1;
        b->parent[rows] = i;
        b->prev[rows] = c->bos;
        b->raw[rows] = 0.0;
        rows++;
    }
    b->n_res = n;   /* check_step reads the sentences */
    int rc = rows > 0 ? reorder_rows(ops, b->parent, rows, n, e) : NLP_OK;

    for (int t = 1; rc == NLP_OK && rows > 0 && t <= maxL; t++) {
        const float *attn = NULL;
        rc = ops->step(ops->ctx, b->prev, rows, b->logp, c->want_attention ? &attn : NULL, e);
        if (rc > 0)
            rc = nlp_error_set(e, NLP_EINVAL, NULL, 0, "beam: step returned %d", rc);
        if (rc == NLP_OK)
            rc = check_step(b, rows, attn, S, e);
        if (rc != NLP_OK)
            break;
        int new_rows = 0;
        for (int i = 0; i < n; i++) {
            sent *s = &b->sents[i];
            if (s->done)
                continue;
            const int r0 = s->row0, m = s->live;
            if (c->want_attention && s->src_len > 0)
                for (int j = 0; j < m; j++)
                    memcpy(b->hatt + hist_at(b, i, t - 1, j) * b->max_S,
                           attn + (size_t)(r0 + j) * S, (size_t)s->src_len * sizeof(float));
            cand *h = b->heap;
            int nl = select_top(b, r0, m, h);
            const double lp_t = nlp_beam_length_penalty(c->length_penalty, t);
            /* EOS continuations ranked above the last live one finish. */
            for (int j = 0; j < m; j++) {
                cand ce = {b->raw[r0 + j] + b->logp[(size_t)(r0 + j) * V + eos],
                           (int64_t)j * V + eos};
                if (nl < k || better(&ce, &h[nl - 1])) {
                    fin f = {ce.score, ce.score / lp_t, t, j, eos, 1};
                    offer(b, i, &f);
                }
            }
            int done = nl == 0;
            if (!done && t == s->max_len) {
                /* Cut: the live ones finish as they are. */
                for (int q = 0; q < nl; q++) {
                    fin f = {h[q].score, h[q].score / lp_t, t, (int)(h[q].idx / V),
                             (int)(h[q].idx % V), 0};
                    offer(b, i, &f);
                }
                done = 1;
            }
            if (!done && s->nfin == c->n_best) {
                /* No descendant of a live one can beat the n_best-th kept. */
                double bound = h[0].score / nlp_beam_length_penalty(c->length_penalty, s->max_len);
                if (b->fins[(size_t)i * c->n_best + c->n_best - 1].norm >= bound)
                    done = 1;
            }
            if (!done && alpha > 0.0 && s->finished >= k)
                done = 1;
            if (done) {
                s->done = 1;
                s->live = 0;
                continue;
            }
            for (int q = 0; q < nl; q++) {
                size_t hx = hist_at(b, i, t - 1, q);
                int j = (int)(h[q].idx / V), v = (int)(h[q].idx % V);
                b->htok[hx] = v;
                b->hpar[hx] = j;
                b->parent[new_rows + q] = r0 + j;
                b->prev2[new_rows + q] = v;
                b->raw2[new_rows + q] = h[q].score;
            }
            s->row0 = new_rows;
            s->live = nl;
            new_rows += nl;
        }
        if (new_rows > 0)
            rc = reorder_rows(ops, b->parent, new_rows, rows, e);
        rows = new_rows;
        int *ti = b->prev; b->prev = b->prev2; b->prev2 = ti;
        double *td = b->raw; b->raw = b->raw2; b->raw2 = td;
    }
    if (rc != NLP_OK) {
        b->n_res = 0;
        return rc;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < b->sents[i].nfin; j++)
            rebuild(b, i, j);
    return NLP_OK;
}

int nlp_beam_count(const nlp_beam *b, int i)
{
    if (!b || i < 0 || i >= b->n_res)
        return 0;
    return b->sents[i].nfin;
}

int nlp_beam_result(const nlp_beam *b, int i, int j, nlp_beam_hyp *h)
{
    if (!h)
        return NLP_EINVAL;
    memset(h, 0, sizeof *h);
    if (!b || i < 0 || i >= b->n_res || j < 0 || j >= b->sents[i].nfin)
        return NLP_EINVAL;
    const fin *f = b->fins + (size_t)i * b->c.n_best + j;
    size_t slot = (size_t)i * b->c.n_best + j;
    h->tokens = b->rtok + slot * b->max_len;
    h->len = f->ended ? f->t - 1 : f->t;
    h->logprob = f->raw;
    h->score = f->norm;
    h->ended = f->ended;
    h->attn = b->ratt ? b->ratt + slot * b->max_len * b->max_S : NULL;
    h->src_len = b->sents[i].src_len;
    return NLP_OK;
}
