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
#include <unistd.h>

#include "gradcheck.h"
#include "nlp/alloc.h"
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
** 0 random (of length tlen[] - 1), 1 reverse, 2 copy.  Padding positions
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
            int y = task == 0 ? NLP_SEQ2SEQ_NSPECIAL + (int)nlp_rng_below(r, (uint64_t)nsym)
                  : task == 1 ? seq[slen[b] - 1 - k] : seq[k];
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
    ** carries ~3e-4 of noise, 3% of a 1e-2 gradient (measured: h = 2e-3
    ** fails by noise, 2e-2 by truncation); h = 1e-2 halves the noise. */
    o.h = 1e-2;
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

int main(void)
{
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
