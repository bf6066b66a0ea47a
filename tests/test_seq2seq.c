/*
** Tests of the seq2seq model (lib/seq2seq.c): the gradient of the whole
** loss against every parameter view for each attention kind and cell, the
** step-wise decoder against the training forward, the worker split, the
** reverse and copy tasks, model files and allocation failures.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "gradcheck.h"
#include "nlp/alloc.h"
#include "nlp/loss.h"
#include "nlp/beam.h"
#include "nlp/model.h"
#include "nlp/optim.h"
#include "nlp/seq2seq.h"

/* A vocabulary of the specials and n symbols "a0", "a1", ... */
static nlp_vocab *symbols(int n)
{
    nlp_vocab *v;
    assert_int_equal(nlp_seq2seq_vocab_new(&v), NLP_OK);
    for (int i = 0; i < n; i++) {
        char w[16];
        snprintf(w, sizeof w, "a%d", i);
        assert_true(nlp_vocab_add(v, w, strlen(w)) >= 0);
    }
    return v;
}

static nlp_seq2seq *make_model(const nlp_seq2seq_config *c, int ns, int nt, uint64_t seed)
{
    nlp_rng rng;
    nlp_rng_seed(&rng, seed);
    nlp_seq2seq *m;
    nlp_error e;
    int rc = nlp_seq2seq_new(&m, c, symbols(ns), symbols(nt), &rng, &e);
    if (rc != NLP_OK)
        fprintf(stderr, "%s\n", e.text);
    assert_int_equal(rc, NLP_OK);
    return m;
}

/* A batch with its own storage: B sentences, lengths given. */
typedef struct tbatch {
    nlp_seq2seq_batch b;
    int src[64 * 16], tin[64 * 17], tout[64 * 17], slen[64], tlen[64];
} tbatch;

/* Random sources of the lengths slen[]; targets are f(source) where f is
** 0 random (of length tlen[] - 1), 1 reverse, 2 copy, 3 a toy translation.  Padding positions
** hold junk (-7, 999) that the model must never read. */
static void fill_batch(tbatch *t, int B, int S, int T, const int *slen, const int *tlen,
                       int nsym, int task, nlp_rng *r)
{
    memset(t, 0, sizeof *t);
    t->b.B = B;
    t->b.S = S;
    t->b.T = T;
    for (int i = 0; i < S * B; i++)
        t->src[i] = 999;
    for (int i = 0; i < T * B; i++)
        t->tin[i] = t->tout[i] = -7;
    for (int b = 0; b < B; b++) {
        t->slen[b] = slen[b];
        int n = task == 0 ? tlen[b] - 1 : slen[b];
        t->tlen[b] = n + 1;
        int seq[32];
        for (int s = 0; s < slen[b]; s++) {
            seq[s] = NLP_SEQ2SEQ_NSPECIAL + (int)nlp_rng_below(r, (uint64_t)nsym);
            t->src[s * B + b] = seq[s];
        }
        for (int k = 0; k < n; k++) {
            /* Task 3: the word mapping i -> 3i+1 mod nsym with each pair of
            ** neighbours swapped (a consistent reordering). */
            int pair = k ^ 1;
            int y = task == 0 ? NLP_SEQ2SEQ_NSPECIAL + (int)nlp_rng_below(r, (uint64_t)nsym)
                  : task == 1 ? seq[slen[b] - 1 - k]
                  : task == 2 ? seq[k]
                  : NLP_SEQ2SEQ_NSPECIAL +
                        (3 * (seq[pair < slen[b] ? pair : k] - NLP_SEQ2SEQ_NSPECIAL) + 1) % nsym;
            t->tin[(k + 1) * B + b] = y;
            t->tout[k * B + b] = y;
        }
        t->tin[b] = NLP_SEQ2SEQ_BOS;
        t->tout[n * B + b] = NLP_SEQ2SEQ_EOS;
    }
    t->b.src = t->src;
    t->b.src_len = t->slen;
    t->b.tgt_in = t->tin;
    t->b.tgt_out = t->tout;
    t->b.tgt_len = t->tlen;
}

/* ==== Gradient check ===================================================== */

typedef struct gc_ctx {
    nlp_seq2seq_work *w;
    const nlp_seq2seq_batch *b;
    nlp_rng rng; /* the dropout masks: the same for every evaluation */
} gc_ctx;

static double gc_loss(void *p)
{
    gc_ctx *c = p;
    nlp_rng r = c->rng;
    double loss;
    size_t n;
    nlp_error e;
    assert_int_equal(nlp_seq2seq_loss(c->w, c->b, 0, c->b->B, NULL, 1, 1, &r, &loss, &n, NULL, &e),
                     NLP_OK);
    return loss;
}

static void gradcheck_case(nlp_rnn_cell cell, nlp_seq2seq_attention att, int tie, float dropout)
{
    nlp_seq2seq_config c;
    nlp_seq2seq_config_default(&c);
    c.cell = cell;
    c.embed = 5;
    c.hidden = 4;
    c.enc_layers = 2;
    c.dec_layers = 2;
    c.attention = att;
    c.attn_hidden = 3;
    c.dropout = dropout;
    c.tie_embeddings = tie;
    c.label_smoothing = 0.1f;
    nlp_seq2seq *m = make_model(&c, 5, 6, 11 + (uint64_t)att);
    nlp_params *p = nlp_seq2seq_params(m);
    /* Scale the weights up a little so that no gradient is tiny. */
    for (size_t i = 0; i < p->n; i++)
        p->data[i] *= 1.5f;
    nlp_rng r;
    nlp_rng_seed(&r, 5);
    tbatch tb;
    const int slen[3] = {4, 2, 3}, tlen[3] = {4, 2, 1};
    fill_batch(&tb, 3, 5, 5, slen, tlen, 5, 0, &r); /* S = 5 > every length: padding */
    nlp_seq2seq_work *w;
    assert_int_equal(nlp_seq2seq_work_new(&w, m, 3, 5, 5), NLP_OK);
    gc_ctx g = {w, &tb.b, r};
    float *grad = calloc(p->n, sizeof *grad);
    assert_non_null(grad);
    nlp_rng r2 = g.rng;
    double loss;
    size_t n;
    nlp_error e;
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, 3, grad, 1, 1, &r2, &loss, &n, NULL, &e), NLP_OK);
    assert_int_equal(n, 4 + 2 + 1);
    assert_true(isfinite(loss) && loss > 0);
    assert_true(fabs(loss - gc_loss(&g)) < 1e-9 * fabs(loss) + 1e-12);
    gc_options o = gc_defaults();
    o.max_check = 24;
    /* The loss sums ~10 float cross-entropies through two recurrent stacks:
    ** its rounding noise is ~3e-6, so at the default h = 5e-3 the quotient
    ** carries ~3e-4 of noise, 3% of a 1e-2 gradient; plain differences
    ** fail by noise at h = 2e-3 and by truncation at 2e-2.  Richardson's
    ** combination cancels the h^2 truncation, so h can grow: the worst
    ** element over all cases measured 0.034 at h = 1e-2, 0.024 at 2e-2 and
    ** 0.019 at 4e-2 (falling with h: noise, not a wrong gradient). */
    o.h = 4e-2;
    o.richardson = 1;
    for (int v = 0; v < p->nviews; v++) {
        const nlp_params_view *pv = &p->views[v];
        o.label = pv->name;
        gc_result res = gc_check(p->data + pv->offset, grad + pv->offset, pv->size, gc_loss, &g,
                                 &o);
        if (!gc_ok(&res, &o))
            fprintf(stderr, "%s %s tie %d: view %s\n", nlp_rnn_cell_name(cell),
                    nlp_seq2seq_attention_name(att), tie, pv->name);
        assert_true(gc_ok(&res, &o));
    }
    free(grad);
    nlp_seq2seq_work_free(w);
    nlp_seq2seq_free(m);
}

static void test_grad_gru_bahdanau(void **s) { (void)s; gradcheck_case(NLP_RNN_GRU, NLP_SEQ2SEQ_ATTN_BAHDANAU, 0, 0); }
static void test_grad_lstm_bahdanau(void **s) { (void)s; gradcheck_case(NLP_RNN_LSTM, NLP_SEQ2SEQ_ATTN_BAHDANAU, 0, 0); }
static void test_grad_gru_dot(void **s) { (void)s; gradcheck_case(NLP_RNN_GRU, NLP_SEQ2SEQ_ATTN_LUONG_DOT, 0, 0); }
static void test_grad_lstm_dot(void **s) { (void)s; gradcheck_case(NLP_RNN_LSTM, NLP_SEQ2SEQ_ATTN_LUONG_DOT, 1, 0); }
static void test_grad_gru_general(void **s) { (void)s; gradcheck_case(NLP_RNN_GRU, NLP_SEQ2SEQ_ATTN_LUONG_GENERAL, 1, 0); }
static void test_grad_lstm_general(void **s) { (void)s; gradcheck_case(NLP_RNN_LSTM, NLP_SEQ2SEQ_ATTN_LUONG_GENERAL, 0, 0); }
static void test_grad_gru_none(void **s) { (void)s; gradcheck_case(NLP_RNN_GRU, NLP_SEQ2SEQ_ATTN_NONE, 0, 0); }
static void test_grad_lstm_none(void **s) { (void)s; gradcheck_case(NLP_RNN_LSTM, NLP_SEQ2SEQ_ATTN_NONE, 1, 0); }
static void test_grad_dropout(void **s) { (void)s; gradcheck_case(NLP_RNN_GRU, NLP_SEQ2SEQ_ATTN_BAHDANAU, 1, 0.3f); }


/* ==== The step-wise decoder equals the training forward ================== */

static void small_config(nlp_seq2seq_config *c, nlp_rnn_cell cell, nlp_seq2seq_attention att,
                         int tie)
{
    nlp_seq2seq_config_default(c);
    c->cell = cell;
    c->embed = 6;
    c->hidden = 5;
    c->enc_layers = 2;
    c->dec_layers = 2;
    c->attention = att;
    c->attn_hidden = 4;
    c->dropout = 0.25f; /* inference and train = 0 must ignore it */
    c->tie_embeddings = tie;
    c->label_smoothing = 0.2f;
}

static void decoder_case(nlp_rnn_cell cell, nlp_seq2seq_attention att, int tie)
{
    nlp_seq2seq_config c;
    small_config(&c, cell, att, tie);
    nlp_seq2seq *m = make_model(&c, 7, 8, 3);
    const int V = 4 + 8;
    nlp_rng r;
    nlp_rng_seed(&r, 9);
    tbatch tb;
    const int B = 3, slen[3] = {5, 1, 3}, tlen[3] = {2, 6, 4};
    fill_batch(&tb, B, 6, 6, slen, tlen, 7, 0, &r);
    nlp_seq2seq_work *w;
    assert_int_equal(nlp_seq2seq_work_new(&w, m, B, 6, 6), NLP_OK);
    double want[3], loss;
    size_t n;
    nlp_error e;
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, B, NULL, 1, 0, NULL, &loss, &n, want, &e),
                     NLP_OK);
    /* Rows: each sentence twice (as a beam of 2 would), swapped halfway. */
    nlp_seq2seq_decoder *d;
    assert_int_equal(nlp_seq2seq_decoder_new(&d, m, B, 6, 2 * B), NLP_OK);
    nlp_beam_ops ops;
    nlp_seq2seq_decoder_ops(d, &ops);
    assert_int_equal(ops.V, V);
    assert_ptr_equal(ops.ctx, d);
    assert_int_equal(nlp_seq2seq_decoder_begin(d, tb.src, tb.slen, 6, B, 2 * B, &e), NLP_OK);
    int parent[6] = {0, 0, 1, 1, 2, 2};
    nlp_alloc_fail_at(1000000000L, 0); /* only to count: decoding never allocates */
    assert_int_equal(ops.reorder(ops.ctx, parent, 2 * B, &e), NLP_OK);
    double got[6] = {0};
    float logp[6 * 12];
    int prev[6];
    for (int t = 0; t < 6; t++) {
        for (int k = 0; k < 2 * B; k++) {
            int sb = nlp_seq2seq_decoder_row_sentence(d, k);
            assert_int_equal(sb, k / 2);
            prev[k] = t < tb.tlen[sb] ? tb.tin[t * B + sb] : NLP_SEQ2SEQ_EOS;
        }
        const float *aw;
        assert_int_equal(ops.step(ops.ctx, prev, 2 * B, logp, &aw, &e), NLP_OK);
        for (int k = 0; k < 2 * B; k++) {
            int sb = k / 2;
            double z = 0;
            for (int j = 0; j < V; j++)
                z += exp(logp[k * V + j]);
            assert_true(fabs(z - 1) < 1e-4);
            if (att == NLP_SEQ2SEQ_ATTN_NONE) {
                assert_null(aw);
            } else {
                double a = 0; /* rows of 5 columns: the longest source */
                for (int s = 0; s < 5; s++) {
                    if (s >= tb.slen[sb])
                        assert_true(aw[k * 5 + s] == 0);
                    a += aw[k * 5 + s];
                }
                assert_true(fabs(a - 1) < 1e-5);
            }
            if (t < tb.tlen[sb])
                got[k] += logp[k * V + tb.tout[t * B + sb]];
        }
        if (t == 2) {
            int swap[6] = {1, 0, 3, 2, 5, 4};
            double g[6];
            memcpy(g, got, sizeof g);
            for (int k = 0; k < 6; k++)
                got[k] = g[swap[k]];
            assert_int_equal(ops.reorder(ops.ctx, swap, 2 * B, &e), NLP_OK);
        }
    }
    assert_int_equal(nlp_alloc_count(), 0);
    nlp_alloc_fail_at(0, 0);
    for (int k = 0; k < 2 * B; k++) {
        if (fabs(got[k] - want[k / 2]) > 1e-4 * (1 + fabs(want[k / 2])))
            fprintf(stderr, "row %d: decoder %.9g, forward %.9g\n", k, got[k], want[k / 2]);
        assert_true(fabs(got[k] - want[k / 2]) <= 1e-4 * (1 + fabs(want[k / 2])));
    }
    /* Dropping rows: keep sentence 2's and sentence 0's rows, in that order. */
    int keep[2] = {4, 1};
    assert_int_equal(ops.reorder(ops.ctx, keep, 2, &e), NLP_OK);
    assert_int_equal(nlp_seq2seq_decoder_row_sentence(d, 0), 2);
    assert_int_equal(nlp_seq2seq_decoder_row_sentence(d, 1), 0);
    assert_int_equal(nlp_seq2seq_decoder_row_sentence(d, 2), -1);
    /* Bad calls. */
    assert_int_equal(ops.step(ops.ctx, prev, 3, logp, NULL, &e), NLP_EINVAL);
    int badp[2] = {0, 2};
    assert_int_equal(ops.reorder(ops.ctx, badp, 2, &e), NLP_EINVAL);
    assert_int_equal(ops.reorder(ops.ctx, parent, 7, &e), NLP_EINVAL);
    prev[0] = V;
    assert_int_equal(ops.step(ops.ctx, prev, 2, logp, NULL, &e), NLP_ERANGE);
    assert_int_equal(nlp_seq2seq_decoder_begin(d, tb.src, tb.slen, 7, B, B, &e), NLP_ERANGE);
    nlp_seq2seq_decoder_free(d);
    nlp_seq2seq_work_free(w);
    nlp_seq2seq_free(m);
}

static void test_decoder_forward(void **s)
{
    (void)s;
    decoder_case(NLP_RNN_GRU, NLP_SEQ2SEQ_ATTN_BAHDANAU, 0);
    decoder_case(NLP_RNN_LSTM, NLP_SEQ2SEQ_ATTN_BAHDANAU, 1);
    decoder_case(NLP_RNN_GRU, NLP_SEQ2SEQ_ATTN_LUONG_DOT, 1);
    decoder_case(NLP_RNN_LSTM, NLP_SEQ2SEQ_ATTN_LUONG_GENERAL, 0);
    decoder_case(NLP_RNN_LSTM, NLP_SEQ2SEQ_ATTN_NONE, 0);
}

/* ==== Worker split ======================================================= */

typedef struct share_job {
    nlp_seq2seq_work *w;
    const nlp_seq2seq_batch *b;
    int b0, nb;
    float *grad;
    float scale;
    int rc;
} share_job;

static void *share_run(void *arg)
{
    share_job *j = arg;
    nlp_error e;
    j->rc = nlp_seq2seq_loss(j->w, j->b, j->b0, j->nb, j->grad, j->scale, 1, NULL, NULL, NULL,
                             NULL, &e);
    return NULL;
}

static void test_worker_split(void **s)
{
    (void)s;
    nlp_seq2seq_config c;
    small_config(&c, NLP_RNN_LSTM, NLP_SEQ2SEQ_ATTN_BAHDANAU, 0);
    c.dropout = 0;
    nlp_seq2seq *m = make_model(&c, 7, 8, 4);
    nlp_params *p = nlp_seq2seq_params(m);
    nlp_rng r;
    nlp_rng_seed(&r, 2);
    tbatch tb;
    const int slen[6] = {5, 1, 3, 6, 2, 4}, tlen[6] = {2, 6, 4, 3, 7, 1};
    fill_batch(&tb, 6, 6, 7, slen, tlen, 7, 0, &r);
    nlp_seq2seq_work *w, *w0, *w1;
    assert_int_equal(nlp_seq2seq_work_new(&w, m, 6, 6, 7), NLP_OK);
    assert_int_equal(nlp_seq2seq_work_new(&w0, m, 3, 6, 7), NLP_OK);
    assert_int_equal(nlp_seq2seq_work_new(&w1, m, 3, 2, 2), NLP_OK);
    nlp_error e;
    /* Too small: a clear NLP_ERANGE; resized, it computes. */
    assert_int_equal(nlp_seq2seq_loss(w1, &tb.b, 3, 3, NULL, 1, 0, NULL, NULL, NULL, NULL, &e),
                     NLP_ERANGE);
    assert_int_equal(nlp_seq2seq_work_resize(w1, 3, 6, 7), NLP_OK);
    float *g = calloc(p->n, sizeof *g), *g0 = calloc(p->n, sizeof *g0),
          *g1 = calloc(p->n, sizeof *g1);
    double l, l0, l1;
    size_t n, n0, n1;
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, 6, NULL, 1, 1, NULL, &l, &n, NULL, &e), NLP_OK);
    const float scale = 1.0f / (float)n;
    nlp_alloc_fail_at(1000000000L, 0); /* only to count: a step never allocates */
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, 6, g, scale, 1, NULL, &l, &n, NULL, &e), NLP_OK);
    assert_int_equal(nlp_alloc_count(), 0);
    nlp_alloc_fail_at(0, 0);
    assert_int_equal(nlp_seq2seq_loss(w0, &tb.b, 0, 3, g0, scale, 1, NULL, &l0, &n0, NULL, &e),
                     NLP_OK);
    assert_int_equal(nlp_seq2seq_loss(w1, &tb.b, 3, 3, g1, scale, 1, NULL, &l1, &n1, NULL, &e),
                     NLP_OK);
    assert_int_equal(n, n0 + n1);
    assert_true(fabs(l - (l0 + l1)) < 1e-5 * l);
    double gmax = 0, dmax = 0;
    for (size_t i = 0; i < p->n; i++) {
        gmax = fmax(gmax, fabs(g[i]));
        dmax = fmax(dmax, fabs(g[i] - (g0[i] + g1[i])));
    }
    assert_true(gmax > 1e-3);
    assert_true(dmax <= 1e-5 * gmax);
    /* The two shares at once on two threads: the same bits as one by one. */
    float *t0 = calloc(p->n, sizeof *t0), *t1 = calloc(p->n, sizeof *t1);
    share_job jobs[2] = {{w0, &tb.b, 0, 3, t0, scale, 0}, {w1, &tb.b, 3, 3, t1, scale, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, share_run, &jobs[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(jobs[0].rc, NLP_OK);
    assert_int_equal(jobs[1].rc, NLP_OK);
    assert_memory_equal(t0, g0, p->n * sizeof *t0);
    assert_memory_equal(t1, g1, p->n * sizeof *t1);
    free(t0);
    free(t1);
    /* The model's own gradient buffer is untouched by the workers. */
    for (size_t i = 0; i < p->n; i++)
        assert_true(p->grad[i] == 0);
    free(g);
    free(g0);
    free(g1);
    nlp_seq2seq_work_free(w);
    nlp_seq2seq_work_free(w0);
    nlp_seq2seq_work_free(w1);
    nlp_seq2seq_free(m);
}

/* ==== Learning =========================================================== */

/* Greedy decoding of n sentences through the ops; out (n, max) tokens, -1
** padded, EOS not stored; argmax attention per step in am (n, max) when
** am is not NULL. */
static void greedy(nlp_seq2seq *m, const tbatch *tb, int n, int max, int *out, int *am)
{
    nlp_seq2seq_decoder *d;
    assert_int_equal(nlp_seq2seq_decoder_new(&d, m, n, tb->b.S, n), NLP_OK);
    nlp_beam_ops ops;
    nlp_seq2seq_decoder_ops(d, &ops);
    nlp_error e;
    assert_int_equal(nlp_seq2seq_decoder_begin(d, tb->src, tb->slen, tb->b.S, n, n, &e), NLP_OK);
    int *prev = malloc((size_t)n * sizeof *prev), *done = calloc((size_t)n, sizeof *done);
    float *logp = malloc((size_t)n * (size_t)ops.V * sizeof *logp);
    int Sm = 1; /* the columns of the attention rows */
    for (int i = 0; i < n; i++)
        Sm = tb->slen[i] > Sm ? tb->slen[i] : Sm;
    for (int i = 0; i < n * max; i++)
        out[i] = -1;
    for (int i = 0; i < n; i++)
        prev[i] = NLP_SEQ2SEQ_BOS;
    for (int t = 0; t < max; t++) {
        const float *aw;
        assert_int_equal(ops.step(ops.ctx, prev, n, logp, &aw, &e), NLP_OK);
        for (int i = 0; i < n; i++) {
            int y = (int)nlp_loss_argmax(logp + (size_t)i * (size_t)ops.V, (size_t)ops.V);
            if (am && aw)
                am[i * max + t] = (int)nlp_loss_argmax(aw + (size_t)i * (size_t)Sm, (size_t)Sm);
            if (!done[i]) {
                if (y == NLP_SEQ2SEQ_EOS)
                    done[i] = 1;
                else
                    out[i * max + t] = y;
            }
            prev[i] = y;
        }
    }
    free(prev);
    free(done);
    free(logp);
    nlp_seq2seq_decoder_free(d);
}

/* Random lengths 3..10. */
static void random_lengths(int *slen, int *tlen, int n, nlp_rng *r)
{
    for (int i = 0; i < n; i++)
        slen[i] = tlen[i] = 3 + (int)nlp_rng_below(r, 8);
}

/* Trains m on task (1 reverse, 2 copy, 3 translation) with Adam until exact match on a
** held-out batch reaches target or `seconds` pass; returns the last accuracy. */
static double train_task(nlp_seq2seq *m, int task, int nsym, double target, double seconds,
                         tbatch *test)
{
    nlp_params *p = nlp_seq2seq_params(m);
    nlp_optim_config oc;
    nlp_optim_config_default(&oc, NLP_OPTIM_ADAM);
    oc.lr = 0.005;
    nlp_optim *o;
    assert_int_equal(nlp_optim_new(&o, p->n, &oc), NLP_OK);
    nlp_seq2seq_work *w;
    assert_int_equal(nlp_seq2seq_work_new(&w, m, 64, 10, 11), NLP_OK);
    nlp_rng r, dr;
    nlp_rng_seed(&r, 77);
    nlp_rng_seed(&dr, 78);
    tbatch *tb = malloc(sizeof *tb);
    int slen[64], tlen[64];
    random_lengths(slen, tlen, 64, &r);
    fill_batch(test, 64, 10, 11, slen, tlen, nsym, task, &r);
    /* The time limit is CPU time (every thread of the process): "under a
    ** minute on one thread", whatever else the machine is running. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    double acc = 0;
    int out[64 * 12];
    nlp_error e;
    for (long step = 1;; step++) {
        random_lengths(slen, tlen, 32, &r);
        fill_batch(tb, 32, 10, 11, slen, tlen, nsym, task, &r);
        nlp_params_zero_grad(p);
        double loss;
        size_t n;
        int tokens = 0;
        for (int i = 0; i < 32; i++)
            tokens += tb->tlen[i];
        assert_int_equal(nlp_seq2seq_loss(w, &tb->b, 0, 32, p->grad, 1.0f / (float)tokens, 1, &dr,
                                          &loss, &n, NULL, &e), NLP_OK);
        nlp_optim_clip(p->grad, p->n, 1.0f);
        nlp_optim_step(o, p->data, p->grad);
        if (step % 100 == 0) {
            greedy(m, test, 64, 12, out, NULL);
            int good = 0;
            for (int i = 0; i < 64; i++) {
                int ok = 1, L = test->slen[i];
                for (int k = 0; k < 12 && ok; k++) {
                    int want = k < L ? test->tout[k * 64 + i] : -1;
                    ok = out[i * 12 + k] == want;
                }
                good += ok;
            }
            acc = good / 64.0;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
            double el = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
            if (getenv("S2S_VERBOSE"))
                fprintf(stderr, "step %ld loss %.4f exact %.3f %.1fs\n", step, loss / (double)n,
                        acc, el);
            if (acc >= target || el > seconds)
                break;
        }
    }
    free(tb);
    nlp_seq2seq_work_free(w);
    nlp_optim_free(o);
    return acc;
}

/* The size of the models the learning tests train (no dropout). */
static void learner_config(nlp_seq2seq_config *c)
{
    nlp_seq2seq_config_default(c);
    c->embed = 32;
    c->hidden = 64;
    c->dropout = 0;
}

static void test_learns_reverse(void **s)
{
    (void)s;
    nlp_seq2seq_config c;
    learner_config(&c);
    nlp_seq2seq *m = make_model(&c, 10, 10, 1);
    tbatch *test = malloc(sizeof *test);
    double acc = train_task(m, 1, 10, 0.95, 50, test);
    fprintf(stderr, "reverse: %.1f%% exact\n", 100 * acc);
    assert_true(acc >= 0.95);
    /* nlp_beam_search over the ops: k = 1 is the greedy loop token for
    ** token; k = 4 (rows expanded, reordered and dropped through the
    ** decoder) reverses as well. */
    int out[64 * 12];
    greedy(m, test, 64, 12, out, NULL);
    for (int k = 1; k <= 4; k += 3) {
        nlp_beam_config bc;
        nlp_beam_config_default(&bc);
        bc.V = 14;
        bc.k = k;
        bc.bos = NLP_SEQ2SEQ_BOS;
        bc.eos = NLP_SEQ2SEQ_EOS;
        bc.pad = NLP_SEQ2SEQ_PAD;
        bc.want_attention = 1;
        nlp_beam *bm;
        assert_int_equal(nlp_beam_new(&bm, &bc, 64, 10, 12), NLP_OK);
        nlp_seq2seq_decoder *d;
        assert_int_equal(nlp_seq2seq_decoder_new(&d, m, 64, 10, 64 * k), NLP_OK);
        nlp_beam_ops ops;
        nlp_seq2seq_decoder_ops(d, &ops);
        nlp_error e;
        assert_int_equal(nlp_seq2seq_decoder_begin(d, test->src, test->slen, 10, 64, 64 * k, &e),
                         NLP_OK);
        int rc = nlp_beam_search(bm, &ops, 64, test->slen, NULL, &e);
        if (rc != NLP_OK)
            fprintf(stderr, "%s\n", e.text);
        assert_int_equal(rc, NLP_OK);
        int good = 0;
        for (int i = 0; i < 64; i++) {
            nlp_beam_hyp h;
            assert_int_equal(nlp_beam_result(bm, i, 0, &h), NLP_OK);
            assert_int_equal(h.src_len, test->slen[i]);
            if (k == 1)
                for (int t = 0; t < 12; t++)
                    assert_int_equal(t < h.len ? h.tokens[t] : -1, out[i * 12 + t]);
            int ok = h.len == test->slen[i];
            for (int t = 0; ok && t < h.len; t++)
                ok = h.tokens[t] == test->tout[t * 64 + i];
            good += ok;
        }
        fprintf(stderr, "reverse, beam %d: %.1f%% exact\n", k, 100.0 * good / 64);
        assert_true(good >= 0.9 * 64);
        nlp_seq2seq_decoder_free(d);
        nlp_beam_free(bm);
    }
    free(test);
    nlp_seq2seq_free(m);
}

static void test_learns_translation(void **s)
{
    (void)s;
    nlp_seq2seq_config c;
    learner_config(&c);
    c.cell = NLP_RNN_LSTM;
    nlp_seq2seq *m = make_model(&c, 10, 10, 3);
    tbatch *test = malloc(sizeof *test);
    double acc = train_task(m, 3, 10, 0.95, 50, test);
    fprintf(stderr, "toy translation (LSTM): %.1f%% exact\n", 100 * acc);
    assert_true(acc >= 0.95);
    free(test);
    nlp_seq2seq_free(m);
}

static void test_copy_attention(void **s)
{
    (void)s;
    nlp_seq2seq_config c;
    learner_config(&c);
    const int nsym = 30;
    /* Luong: the context of step t feeds the prediction of y_t directly.
    ** Bahdanau's feeds the decoder state, and the bidirectional states of
    ** position t-1 also hold x_t: measured over seeds 2-4, Bahdanau models
    ** copy exactly but put the arg max on t for 66-94% of tokens (the rest
    ** on t-1), Luong general and dot on 99.1-99.8%. */
    c.attention = NLP_SEQ2SEQ_ATTN_LUONG_GENERAL;
    nlp_seq2seq *m = make_model(&c, nsym, nsym, 2);
    tbatch *test = malloc(sizeof *test);
    double acc = train_task(m, 2, nsym, 0.9, 50, test);
    assert_true(acc >= 0.9);
    int out[64 * 12], am[64 * 12];
    greedy(m, test, 64, 12, out, am);
    int hit = 0, all = 0;
    for (int i = 0; i < 64; i++)
        for (int t = 0; t < test->slen[i]; t++) {
            hit += am[i * 12 + t] == t;
            all++;
        }
    fprintf(stderr, "copy: %.1f%% exact, attention on the copied position %.1f%%\n", 100 * acc,
            100.0 * hit / all);
    assert_true(hit >= 0.9 * all);
    free(test);
    nlp_seq2seq_free(m);
}

/* ==== Files ============================================================== */

static char tmpdir[] = "/tmp/test_seq2seqXXXXXX";
static char model_path[64];

static void test_save_load(void **s)
{
    (void)s;
    nlp_seq2seq_config c;
    small_config(&c, NLP_RNN_LSTM, NLP_SEQ2SEQ_ATTN_LUONG_GENERAL, 1);
    nlp_seq2seq *m = make_model(&c, 7, 8, 5);
    nlp_error e;
    const char *meta[] = {"command", "test", NULL};
    assert_int_equal(nlp_seq2seq_save(m, model_path, meta, &e), NLP_OK);
    nlp_seq2seq *m2;
    nlp_model *f;
    assert_int_equal(nlp_seq2seq_load(&m2, model_path, &f, &e), NLP_OK);
    assert_string_equal(nlp_model_meta(f, "command"), "test");
    const nlp_seq2seq_config *c2 = nlp_seq2seq_get_config(m2);
    assert_int_equal(c2->cell, c.cell);
    assert_int_equal(c2->attention, c.attention);
    assert_int_equal(c2->tie_embeddings, 1);
    assert_true(c2->label_smoothing == c.label_smoothing && c2->dropout == c.dropout);
    assert_int_equal(nlp_vocab_size(nlp_seq2seq_tgt_vocab(m2)), 12);
    assert_string_equal(nlp_vocab_word(nlp_seq2seq_src_vocab(m2), 10), "a6");
    nlp_params *p = nlp_seq2seq_params(m), *p2 = nlp_seq2seq_params(m2);
    assert_int_equal(p->n, p2->n);
    assert_memory_equal(p->data, p2->data, p->n * sizeof *p->data);
    nlp_rng r;
    nlp_rng_seed(&r, 1);
    tbatch tb;
    const int slen[3] = {5, 1, 3}, tlen[3] = {2, 6, 4};
    fill_batch(&tb, 3, 6, 6, slen, tlen, 7, 0, &r);
    double a[3], b[3];
    nlp_seq2seq_work *w, *w2;
    assert_int_equal(nlp_seq2seq_work_new(&w, m, 3, 6, 6), NLP_OK);
    assert_int_equal(nlp_seq2seq_work_new(&w2, m2, 3, 6, 6), NLP_OK);
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, 3, NULL, 1, 0, NULL, NULL, NULL, a, &e), NLP_OK);
    assert_int_equal(nlp_seq2seq_loss(w2, &tb.b, 0, 3, NULL, 1, 0, NULL, NULL, NULL, b, &e), NLP_OK);
    assert_memory_equal(a, b, sizeof a);
    nlp_seq2seq_work_free(w);
    nlp_seq2seq_work_free(w2);

    /* Corrupted or out-of-range metadata: each refused with NLP_EFORMAT. */
    static const char *const bad[][2] = {
        {"hidden", "100000"}, {"hidden", "6"}, {"hidden", "x"}, {"enc_layers", "0"},
        {"dec_layers", "17"}, {"attention", "sideways"}, {"cell", "rnn"}, {"dropout", "1"},
        {"label_smoothing", "-0.5"}, {"tie_embeddings", "2"}, {"tgt_vocab_size", "99999999999"},
        {"src_vocab_size", "8"}, {"attn_hidden", "-1"}, {"embed", "7"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(nlp_model_set_meta(f, bad[i][0], bad[i][1]), NLP_OK);
        unsigned char *buf;
        size_t n;
        assert_int_equal(nlp_model_to_buffer(f, &buf, &n), NLP_OK);
        nlp_model *g;
        assert_int_equal(nlp_model_load_buffer(&g, buf, n, "bad.model", NULL, &e), NLP_OK);
        nlp_seq2seq *m3 = (nlp_seq2seq *)&e;
        int rc = nlp_seq2seq_from_model(&m3, g, "bad.model", &e);
        if (rc != NLP_EFORMAT)
            fprintf(stderr, "%s=%s: %d\n", bad[i][0], bad[i][1], rc);
        assert_int_equal(rc, NLP_EFORMAT);
        assert_null(m3);
        assert_non_null(strstr(e.file, "bad.model"));
        nlp_model_free(g);
        free(buf);
        /* Restore the good value. */
        char v[64];
        snprintf(v, sizeof v, "%s", nlp_model_meta(f, bad[i][0]));
        nlp_model *fresh;
        assert_int_equal(nlp_model_load(&fresh, model_path, NULL, &e), NLP_OK);
        assert_int_equal(nlp_model_set_meta(f, bad[i][0], nlp_model_meta(fresh, bad[i][0])),
                         NLP_OK);
        nlp_model_free(fresh);
    }
    /* A model of another kind. */
    nlp_model *other;
    assert_int_equal(nlp_model_new(&other, "charlm"), NLP_OK);
    nlp_seq2seq *m4;
    assert_int_equal(nlp_seq2seq_from_model(&m4, other, "x.model", &e), NLP_EKIND);
    assert_int_equal(nlp_model_add_params(other, p), NLP_OK);
    char other_path[80];
    snprintf(other_path, sizeof other_path, "%s/other.model", tmpdir);
    assert_int_equal(nlp_model_save(other, other_path, &e), NLP_OK);
    assert_int_equal(nlp_seq2seq_load(&m4, other_path, NULL, &e), NLP_EKIND);
    assert_null(m4);
    unlink(other_path);
    nlp_model_free(other);
    nlp_model_free(f);
    nlp_seq2seq_free(m2);
    nlp_seq2seq_free(m);
}

/* ==== Allocation failures ================================================ */

static void test_faults(void **s)
{
    (void)s;
    nlp_seq2seq_config c;
    small_config(&c, NLP_RNN_LSTM, NLP_SEQ2SEQ_ATTN_BAHDANAU, 1);
    nlp_error e;
    for (int sticky = 0; sticky < 2; sticky++) {
        long fails = 0;
        for (long k = 1;; k++) {
            nlp_vocab *a = symbols(3), *b = symbols(4);
            nlp_rng r;
            nlp_rng_seed(&r, 1);
            nlp_seq2seq *m = NULL;
            nlp_seq2seq_work *w = NULL;
            nlp_seq2seq_decoder *d = NULL;
            nlp_alloc_fail_at(k, sticky);
            int rc = nlp_seq2seq_new(&m, &c, a, b, &r, &e);
            if (rc == NLP_OK)
                rc = nlp_seq2seq_work_new(&w, m, 2, 3, 3);
            if (rc == NLP_OK)
                rc = nlp_seq2seq_work_resize(w, 3, 4, 4);
            if (rc == NLP_OK)
                rc = nlp_seq2seq_decoder_new(&d, m, 2, 3, 4);
            if (rc == NLP_OK)
                rc = nlp_seq2seq_save(m, model_path, NULL, &e);
            nlp_alloc_fail_at(0, 0);
            nlp_seq2seq_decoder_free(d);
            nlp_seq2seq_work_free(w);
            nlp_seq2seq_free(m);
            if (rc == NLP_OK)
                break;
            assert_true(rc == NLP_ENOMEM || rc == NLP_EIO);
            fails++;
        }
        assert_true(fails > 20);
        fails = 0;
        for (long k = 1;; k++) {
            nlp_seq2seq *m = NULL;
            nlp_alloc_fail_at(k, sticky);
            int rc = nlp_seq2seq_load(&m, model_path, NULL, &e);
            nlp_alloc_fail_at(0, 0);
            nlp_seq2seq_free(m);
            if (rc == NLP_OK)
                break;
            assert_int_equal(rc, NLP_ENOMEM);
            assert_null(m);
            fails++;
        }
        assert_true(fails > 10);
    }
}

static void test_bad_batches(void **s)
{
    (void)s;
    nlp_seq2seq_config c;
    small_config(&c, NLP_RNN_GRU, NLP_SEQ2SEQ_ATTN_BAHDANAU, 0);
    nlp_seq2seq *m = make_model(&c, 5, 5, 8);
    nlp_seq2seq_work *w;
    assert_int_equal(nlp_seq2seq_work_new(&w, m, 3, 6, 6), NLP_OK);
    nlp_rng r;
    nlp_rng_seed(&r, 3);
    tbatch tb;
    const int slen[3] = {5, 1, 3}, tlen[3] = {2, 6, 4};
    fill_batch(&tb, 3, 6, 6, slen, tlen, 5, 0, &r);
    nlp_params *p = nlp_seq2seq_params(m);
    nlp_error e;
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, 3, NULL, 1, 0, NULL, NULL, NULL, NULL, &e),
                     NLP_OK);
    /* Dropout without an rng; rows outside the batch. */
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, 3, p->grad, 1, 1, NULL, NULL, NULL, NULL, &e),
                     NLP_EINVAL);
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 2, 2, NULL, 1, 0, NULL, NULL, NULL, NULL, &e),
                     NLP_EINVAL);
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, 0, NULL, 1, 0, NULL, NULL, NULL, NULL, &e),
                     NLP_EINVAL);
    /* An id outside a vocabulary at a real position; junk at padding is fine. */
    tb.src[0] = 9;
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, 3, NULL, 1, 0, NULL, NULL, NULL, NULL, &e),
                     NLP_ERANGE);
    tb.src[0] = 4;
    tb.tout[1] = -1;
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, 3, NULL, 1, 0, NULL, NULL, NULL, NULL, &e),
                     NLP_ERANGE);
    tb.tout[1] = 4;
    tb.tin[5 * 3 + 0] = 12345; /* sentence 0 has 2 target positions */
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, 3, NULL, 1, 0, NULL, NULL, NULL, NULL, &e),
                     NLP_OK);
    /* Lengths outside the padded sizes. */
    tb.slen[1] = 7;
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, 3, NULL, 1, 0, NULL, NULL, NULL, NULL, &e),
                     NLP_EINVAL);
    tb.slen[1] = -1;
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, 3, NULL, 1, 0, NULL, NULL, NULL, NULL, &e),
                     NLP_EINVAL);
    tb.slen[1] = 0; /* an empty source is allowed: zero context */
    double lp[3];
    assert_int_equal(nlp_seq2seq_loss(w, &tb.b, 0, 3, NULL, 1, 0, NULL, NULL, NULL, lp, &e),
                     NLP_OK);
    assert_true(isfinite(lp[1]) && lp[1] < 0);
    assert_int_equal(nlp_seq2seq_work_new(&(nlp_seq2seq_work *){NULL}, m, 0, 1, 1), NLP_EINVAL);
    nlp_seq2seq_work_free(w);
    nlp_seq2seq_free(m);
}

static void test_vectors(void **s)
{
    (void)s;
    nlp_seq2seq_config c;
    small_config(&c, NLP_RNN_GRU, NLP_SEQ2SEQ_ATTN_BAHDANAU, 0);
    nlp_seq2seq *m = make_model(&c, 5, 5, 8);
    nlp_vectors v;
    float data[3 * 6];
    for (int i = 0; i < 18; i++)
        data[i] = (float)i / 4;
    assert_int_equal(nlp_vocab_new(&v.words), NLP_OK);
    nlp_vocab_add(v.words, "zz", 2);
    nlp_vocab_add(v.words, "a2", 2);
    nlp_vocab_add(v.words, "a0", 2);
    v.n = 3;
    v.dim = 6;
    v.data = data;
    nlp_params *p = nlp_seq2seq_params(m);
    const float *S = nlp_params_data(p, nlp_params_index(p, "src_embed.weight"));
    const float *T = nlp_params_data(p, nlp_params_index(p, "tgt_embed.weight"));
    float before[9 * 6];
    memcpy(before, T, sizeof before);
    long found;
    nlp_error e;
    assert_int_equal(nlp_seq2seq_set_vectors(m, 0, &v, &found, &e), NLP_OK);
    assert_int_equal(found, 2);
    assert_memory_equal(S + 6 * 6, data + 6, 6 * sizeof *S);  /* a2 is id 6 */
    assert_memory_equal(S + 4 * 6, data + 12, 6 * sizeof *S); /* a0 is id 4 */
    assert_memory_equal(T, before, sizeof before);            /* the other side */
    v.dim = 5;
    assert_int_equal(nlp_seq2seq_set_vectors(m, 1, &v, &found, &e), NLP_EINVAL);
    assert_int_equal(found, 0);
    nlp_vocab_free(v.words);
    nlp_seq2seq_free(m);
}

static void test_config_errors(void **s)
{
    (void)s;
    nlp_seq2seq_config c;
    nlp_error e;
    nlp_rng r;
    nlp_rng_seed(&r, 1);
    nlp_seq2seq *m;
    for (int i = 0; i < 8; i++) {
        nlp_seq2seq_config_default(&c);
        switch (i) {
        case 0: c.embed = 0; break;
        case 1: c.hidden = 9000; break;
        case 2: c.enc_layers = 0; break;
        case 3: c.dropout = 1; break;
        case 4: c.label_smoothing = -0.1f; break;
        case 5: c.attention = (nlp_seq2seq_attention)9; break;
        case 6: c.cell = NLP_RNN_TANH; break;
        case 7: c.tie_embeddings = 3; break;
        }
        assert_int_equal(nlp_seq2seq_new(&m, &c, symbols(2), symbols(2), &r, &e), NLP_EINVAL);
        assert_null(m);
    }
    nlp_seq2seq_config_default(&c);
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    nlp_vocab_add(v, "x", 1);
    assert_int_equal(nlp_seq2seq_new(&m, &c, v, symbols(2), &r, &e), NLP_EINVAL);
    nlp_seq2seq_attention a;
    assert_int_equal(nlp_seq2seq_attention_parse("luong-dot", &a), NLP_OK);
    assert_int_equal(a, NLP_SEQ2SEQ_ATTN_LUONG_DOT);
    assert_int_equal(nlp_seq2seq_attention_parse("dot", &a), NLP_EINVAL);
    assert_string_equal(nlp_seq2seq_attention_name(NLP_SEQ2SEQ_ATTN_NONE), "none");
}

static int setup_dir(void **s)
{
    (void)s;
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(model_path, sizeof model_path, "%s/m.model", tmpdir);
    return 0;
}

static int remove_dir(void **s)
{
    (void)s;
    unlink(model_path);
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
#ifdef _OPENMP
    omp_set_num_threads(1); /* "on one thread"; and no spinning on a busy machine */
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_gru_bahdanau),
        cmocka_unit_test(test_grad_lstm_bahdanau),
        cmocka_unit_test(test_grad_gru_dot),
        cmocka_unit_test(test_grad_lstm_dot),
        cmocka_unit_test(test_grad_gru_general),
        cmocka_unit_test(test_grad_lstm_general),
        cmocka_unit_test(test_grad_gru_none),
        cmocka_unit_test(test_grad_lstm_none),
        cmocka_unit_test(test_grad_dropout),
        cmocka_unit_test(test_decoder_forward),
        cmocka_unit_test(test_worker_split),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_bad_batches),
        cmocka_unit_test(test_learns_reverse),
        cmocka_unit_test(test_learns_translation),
        cmocka_unit_test(test_copy_attention),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
