/*
** Unit tests for attn: forward against a naive double-precision reference,
** and finite-difference gradient checks of every input and parameter for
** each attention kind, with and without padding, over two decoder steps
** that share the projected keys (so the accumulation of dkeys across steps
** and the final keys backward are checked too).
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

#include "nlp.h"
#include "nlp/attn.h"
#include "gradcheck.h"

enum { S = 4, B = 3, HQ = 4, HK = 5, HA = 3, STEPS = 2 };

typedef struct fixture {
    nlp_attn_kind kind;
    int hq;               /* HK for dot, HQ otherwise */
    nlp_params *p;
    nlp_attn *a;
    const int *lengths;
    float enc[S * B * HK], denc[S * B * HK];
    float q[STEPS][B * HK], dq[STEPS][B * HK];
    float keys[S * B * HK], dkeys[S * B * HK];
    float cache[STEPS][B * HA];
    float ctx[STEPS][B * HK], weights[STEPS][B * S];
    double wc[STEPS][B * HK], ww[STEPS][B * S];  /* loss projections */
    float dctx[STEPS][B * HK], dweights[STEPS][B * S];
} fixture;

static void randn(float *x, size_t n, double scale, nlp_rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(scale * nlp_rng_normal(r));
}

static fixture *make(nlp_attn_kind kind, const int *lengths, uint64_t seed)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->kind = kind;
    f->hq = kind == NLP_ATTN_DOT ? HK : HQ;
    f->lengths = lengths;
    assert_int_equal(nlp_params_new(&f->p), NLP_OK);
    assert_int_equal(nlp_attn_new(&f->a, kind, f->hq, HK, HA, S, B, f->p, "attn"), NLP_OK);
    if (kind != NLP_ATTN_DOT)
        assert_int_equal(nlp_params_alloc(f->p), NLP_OK);
    nlp_rng r;
    nlp_rng_seed(&r, seed);
    if (kind != NLP_ATTN_DOT) {
        nlp_attn_reset(f->a, &r);
        /* Larger than the init so the scores vary and tanh bends. */
        for (size_t i = 0; i < f->p->n; i++)
            f->p->data[i] *= 2.0f;
    }
    randn(f->enc, sizeof f->enc / sizeof f->enc[0], 0.8, &r);
    randn(&f->q[0][0], sizeof f->q / sizeof(float), 0.8, &r);
    gc_weights(&f->wc[0][0], sizeof f->wc / sizeof(double), seed + 1);
    gc_weights(&f->ww[0][0], sizeof f->ww / sizeof(double), seed + 2);
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < B * HK; i++)
            f->dctx[t][i] = (float)f->wc[t][i];
        for (int i = 0; i < B * S; i++)
            f->dweights[t][i] = (float)f->ww[t][i];
    }
    return f;
}

static void destroy(fixture *f)
{
    nlp_attn_free(f->a);
    nlp_params_free(f->p);
    free(f);
}

/* Forward of both steps; the loss sums fixed projections of every context
** and every weight, in double. */
static double loss_fn(void *ctx)
{
    fixture *f = ctx;
    assert_int_equal(nlp_attn_keys_forward(f->a, f->keys, f->enc, S, B), NLP_OK);
    double L = 0;
    for (int t = 0; t < STEPS; t++) {
        assert_int_equal(nlp_attn_forward(f->a, f->ctx[t], f->weights[t], f->cache[t], f->q[t],
                                          f->enc, f->keys, f->lengths, S, B), NLP_OK);
        L += gc_dot(f->wc[t], f->ctx[t], B * HK) + gc_dot(f->ww[t], f->weights[t], B * S);
    }
    return L;
}

static void backward(fixture *f)
{
    if (f->p->grad)
        nlp_params_zero_grad(f->p);
    memset(f->denc, 0, sizeof f->denc);
    memset(f->dkeys, 0, sizeof f->dkeys);
    memset(f->dq, 0, sizeof f->dq);
    loss_fn(f);
    for (int t = STEPS - 1; t >= 0; t--)
        assert_int_equal(nlp_attn_backward(f->a, f->dq[t], f->denc, f->dkeys, f->dctx[t],
                                           f->dweights[t], f->q[t], f->enc, f->keys,
                                           f->lengths, f->weights[t], f->cache[t], S, B),
                         NLP_OK);
    assert_int_equal(nlp_attn_keys_backward(f->a, f->denc, f->dkeys, f->enc, S, B), NLP_OK);
}

/* Naive score in double straight from the definitions in nlp/attn.h. */
static double naive_score(const fixture *f, const float *q, const float *k)
{
    const float *W = f->p->data;
    double s = 0;
    if (f->kind == NLP_ATTN_DOT) {
        for (int i = 0; i < HK; i++)
            s += (double)q[i] * k[i];
    } else if (f->kind == NLP_ATTN_GENERAL) {
        const nlp_params_view *v = nlp_params_find(f->p, "attn.w");
        for (int i = 0; i < HQ; i++)
            for (int j = 0; j < HK; j++)
                s += (double)q[i] * W[v->offset + (size_t)i * HK + j] * k[j];
    } else {
        const nlp_params_view *vq = nlp_params_find(f->p, "attn.wq");
        const nlp_params_view *vk = nlp_params_find(f->p, "attn.wk");
        const nlp_params_view *vv = nlp_params_find(f->p, "attn.v");
        for (int a = 0; a < HA; a++) {
            double pre = 0;
            for (int i = 0; i < HQ; i++)
                pre += (double)W[vq->offset + (size_t)a * HQ + i] * q[i];
            for (int j = 0; j < HK; j++)
                pre += (double)W[vk->offset + (size_t)a * HK + j] * k[j];
            s += W[vv->offset + a] * tanh(pre);
        }
    }
    return s;
}

static void check_forward(fixture *f)
{
    loss_fn(f);
    for (int t = 0; t < STEPS; t++)
        for (int b = 0; b < B; b++) {
            int L = f->lengths ? f->lengths[b] : S;
            const float *q = f->q[t] + (size_t)b * f->hq;
            double sc[S], mx = -INFINITY, sum = 0;
            for (int s = 0; s < L; s++) {
                sc[s] = naive_score(f, q, f->enc + ((size_t)s * B + b) * HK);
                if (sc[s] > mx)
                    mx = sc[s];
            }
            for (int s = 0; s < L; s++)
                sum += exp(sc[s] - mx);
            for (int s = 0; s < S; s++) {
                double w = s < L ? exp(sc[s] - mx) / sum : 0.0;
                float got = f->weights[t][(size_t)b * S + s];
                if (s >= L)
                    assert_true(got == 0.0f);  /* exactly zero */
                else if (fabs(got - w) > 1e-5)
                    fail_msg("%s step %d row %d pos %d: weight %g, want %g",
                             nlp_attn_kind_name(f->kind), t, b, s, got, w);
            }
            for (int j = 0; j < HK; j++) {
                double c = 0;
                for (int s = 0; s < L; s++)
                    c += exp(sc[s] - mx) / sum * f->enc[((size_t)s * B + b) * HK + j];
                float got = f->ctx[t][(size_t)b * HK + j];
                assert_false(isnan(got));
                if (fabs(got - c) > 1e-5)
                    fail_msg("%s ctx[%d][%d][%d] = %g, want %g", nlp_attn_kind_name(f->kind),
                             t, b, j, got, c);
            }
        }
}

/*
** Tolerance: the loss is a sum of ~60 O(1) terms computed in float (one
** evaluation good to ~1e-6 absolute), so with h = 1e-3 the difference
** quotient carries ~1e-3 of noise on gradients of O(0.1..1): gradcheck's
** default 1e-2 relative error (floor 1e-2) holds with margin, while a
** wrong sign, a missing softmax term or a wrong index shows as >= 0.1.
*/
static void gradcheck_all(fixture *f, const char *what)
{
    char label[128];
    gc_options o = gc_defaults();
    o.label = label;
    backward(f);

    /* The analytic gradients are kept in copies: gc_check re-runs the
    ** forward, which rewrites the activations. */
    float denc[S * B * HK], dq[STEPS][B * HK];
    memcpy(denc, f->denc, sizeof denc);
    memcpy(dq, f->dq, sizeof dq);
    snprintf(label, sizeof label, "%s enc", what);
    gc_result r = gc_check(f->enc, denc, S * B * HK, loss_fn, f, &o);
    assert_true(gc_ok(&r, &o));
    for (int t = 0; t < STEPS; t++) {
        snprintf(label, sizeof label, "%s q[%d]", what, t);
        r = gc_check(f->q[t], dq[t], (size_t)B * f->hq, loss_fn, f, &o);
        assert_true(gc_ok(&r, &o));
    }
    if (f->p->n) {
        float *g = malloc(f->p->n * sizeof *g);
        memcpy(g, f->p->grad, f->p->n * sizeof *g);
        for (int v = 0; v < f->p->nviews; v++) {
            const nlp_params_view *pv = &f->p->views[v];
            snprintf(label, sizeof label, "%s %s", what, pv->name);
            r = gc_check(f->p->data + pv->offset, g + pv->offset, pv->size, loss_fn, f, &o);
            assert_true(gc_ok(&r, &o));
        }
        free(g);
    }
}

static const int lens_pad[B] = { S, 2, 0 };

static void run_kind(nlp_attn_kind kind)
{
    for (int padded = 0; padded < 2; padded++) {
        char what[64];
        snprintf(what, sizeof what, "%s%s", nlp_attn_kind_name(kind), padded ? " padded" : "");
        fixture *f = make(kind, padded ? lens_pad : NULL, 10 + 3 * (uint64_t)kind + padded);
        check_forward(f);
        gradcheck_all(f, what);
        if (padded) {
            /* No gradient reaches padding positions of enc. */
            for (int s = 0; s < S; s++)
                for (int b = 0; b < B; b++)
                    if (s >= lens_pad[b])
                        for (int j = 0; j < HK; j++)
                            assert_true(f->denc[((size_t)s * B + b) * HK + j] == 0.0f);
            /* The empty row has zero context and zero query gradient. */
            for (int j = 0; j < HK; j++)
                assert_true(f->ctx[0][2 * HK + j] == 0.0f);
            for (int j = 0; j < f->hq; j++)
                assert_true(f->dq[0][(size_t)2 * f->hq + j] == 0.0f);
        }
        destroy(f);
    }
}

static void test_dot(void **state)
{
    (void)state;
    run_kind(NLP_ATTN_DOT);
}

static void test_general(void **state)
{
    (void)state;
    run_kind(NLP_ATTN_GENERAL);
}

static void test_additive(void **state)
{
    (void)state;
    run_kind(NLP_ATTN_ADDITIVE);
}

static void test_api(void **state)
{
    (void)state;
    nlp_params *p;
    assert_int_equal(nlp_params_new(&p), NLP_OK);
    nlp_attn *a = (nlp_attn *)1;
    assert_int_equal(nlp_attn_new(&a, NLP_ATTN_DOT, 3, 4, 0, 5, 2, p, "x"), NLP_EINVAL);
    assert_null(a);
    assert_int_equal(nlp_attn_new(&a, NLP_ATTN_ADDITIVE, 3, 4, 0, 5, 2, p, "x"), NLP_EINVAL);
    assert_int_equal(nlp_attn_new(&a, (nlp_attn_kind)5, 3, 3, 3, 5, 2, p, "x"), NLP_EINVAL);
    assert_int_equal(nlp_attn_new(&a, NLP_ATTN_GENERAL, 3, 4, 0, 0, 2, p, "x"), NLP_EINVAL);
    assert_int_equal(nlp_attn_new(&a, NLP_ATTN_ADDITIVE, 3, 4, 6, 5, 2, p, "att"), NLP_OK);
    assert_int_equal(nlp_params_count(p), nlp_attn_nparams(NLP_ATTN_ADDITIVE, 3, 4, 6));
    assert_int_equal(nlp_attn_nparams(NLP_ATTN_ADDITIVE, 3, 4, 6), 6 * 3 + 6 * 4 + 6);
    assert_int_equal(nlp_attn_nparams(NLP_ATTN_GENERAL, 3, 4, 6), 12);
    assert_int_equal(nlp_attn_nparams(NLP_ATTN_DOT, 3, 3, 6), 0);
    assert_non_null(nlp_params_find(p, "att.wq"));
    assert_non_null(nlp_params_find(p, "att.wk"));
    assert_non_null(nlp_params_find(p, "att.v"));
    assert_int_equal(nlp_attn_key_dim(a), 6);
    assert_int_equal(nlp_attn_cache_size(a, 2), 12);
    int hq, hk, ha;
    assert_int_equal(nlp_attn_get_kind(a, &hq, &hk, &ha), NLP_ATTN_ADDITIVE);
    assert_true(hq == 3 && hk == 4 && ha == 6);
    assert_int_equal(nlp_params_alloc(p), NLP_OK);
    /* Sizes beyond the scratch capacity, and bad lengths. */
    float enc[6 * 3 * 4] = { 0 }, keys[6 * 3 * 6], q[3 * 3] = { 0 }, ctx[3 * 4], w[3 * 6], cache[18];
    assert_int_equal(nlp_attn_keys_forward(a, keys, enc, 6, 2), NLP_ERANGE);
    assert_int_equal(nlp_attn_keys_forward(a, keys, enc, 5, 3), NLP_ERANGE);
    assert_int_equal(nlp_attn_keys_forward(a, keys, enc, 0, 2), NLP_EINVAL);
    assert_int_equal(nlp_attn_keys_forward(a, keys, enc, 5, 2), NLP_OK);
    int bad[2] = { 6, 1 };
    assert_int_equal(nlp_attn_forward(a, ctx, w, cache, q, enc, keys, bad, 5, 2), NLP_EINVAL);
    bad[0] = -1;
    assert_int_equal(nlp_attn_forward(a, ctx, w, cache, q, enc, keys, bad, 5, 2), NLP_EINVAL);
    nlp_attn_free(a);
    nlp_attn_free(NULL);
    nlp_params_free(p);

    nlp_attn_kind k;
    assert_int_equal(nlp_attn_kind_parse("bahdanau", &k), NLP_OK);
    assert_int_equal(k, NLP_ATTN_ADDITIVE);
    assert_int_equal(nlp_attn_kind_parse("luong", &k), NLP_OK);
    assert_int_equal(k, NLP_ATTN_GENERAL);
    assert_int_equal(nlp_attn_kind_parse("dot", &k), NLP_OK);
    assert_int_equal(k, NLP_ATTN_DOT);
    assert_int_equal(nlp_attn_kind_parse("cosine", &k), NLP_EINVAL);
    assert_string_equal(nlp_attn_kind_name(NLP_ATTN_GENERAL), "general");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dot),
        cmocka_unit_test(test_general),
        cmocka_unit_test(test_additive),
        cmocka_unit_test(test_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
