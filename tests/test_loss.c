/*
** Unit tests for loss: softmax cross-entropy against a direct double
** computation, its gradient against finite differences (with and without
** padding/mask), numerical stability, accuracy, argmax, (log-)softmax.
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
#include "nlp/loss.h"
#include "gradcheck.h"

/* Reference: -log softmax(z)[t] computed naively in double. */
static double ref_xent(const float *z, size_t v, int t)
{
    double mx = z[0];
    for (size_t j = 1; j < v; j++)
        if (z[j] > mx)
            mx = z[j];
    double s = 0;
    for (size_t j = 0; j < v; j++)
        s += exp((double)z[j] - mx);
    return mx + log(s) - z[t];
}

static void fill(float *x, size_t n, double scale, uint64_t seed)
{
    nlp_rng r;
    nlp_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(scale * nlp_rng_normal(&r));
}

static void test_xent_value(void **state)
{
    (void)state;
    enum { N = 6, V = 7 };
    float z[N * V], dz[N * V];
    int t[N] = { 0, 6, 3, -1, 2, 5 };
    float mask[N] = { 1, 1, 0.5f, 1, 0, 2 };
    fill(z, N * V, 2.0, 1);

    double loss;
    size_t count;
    assert_int_equal(nlp_loss_xent(&loss, &count, dz, z, t, NULL, N, V, 1.0f), NLP_OK);
    double want = 0;
    for (int i = 0; i < N; i++)
        if (t[i] >= 0)
            want += ref_xent(z + i * V, V, t[i]);
    assert_int_equal(count, 5);
    assert_true(fabs(loss - want) < 1e-5 * want);
    /* The ignored row's gradient is zero; the others sum to zero. */
    for (int j = 0; j < V; j++)
        assert_true(dz[3 * V + j] == 0.0f);
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < V; j++)
            s += dz[i * V + j];
        assert_true(fabs(s) < 1e-6);
    }

    /* With the mask: weights 1, 1, 0.5, (ignored), 0 (ignored), 2. */
    assert_int_equal(nlp_loss_xent(&loss, &count, dz, z, t, mask, N, V, 0.25f), NLP_OK);
    want = ref_xent(z, V, 0) + ref_xent(z + V, V, 6) + 0.5 * ref_xent(z + 2 * V, V, 3) +
           2 * ref_xent(z + 5 * V, V, 5);
    assert_int_equal(count, 4);
    assert_true(fabs(loss - want) < 1e-5 * want);
    for (int j = 0; j < V; j++)
        assert_true(dz[4 * V + j] == 0.0f);

    /* In place gives the same bits as a separate buffer. */
    float zi[N * V];
    memcpy(zi, z, sizeof z);
    double loss2;
    assert_int_equal(nlp_loss_xent(&loss2, NULL, zi, zi, t, mask, N, V, 0.25f), NLP_OK);
    assert_true(loss2 == loss);
    assert_memory_equal(zi, dz, sizeof dz);

    /* Only the loss (no gradient, no count). */
    assert_int_equal(nlp_loss_xent(&loss2, NULL, NULL, z, t, mask, N, V, 1.0f), NLP_OK);
    assert_true(loss2 == loss);
}

static void test_xent_errors(void **state)
{
    (void)state;
    float z[6] = { 0 };
    int t[2] = { 0, 3 };
    double loss;
    assert_int_equal(nlp_loss_xent(&loss, NULL, NULL, z, t, NULL, 2, 3, 1.0f), NLP_EINVAL);
    assert_int_equal(nlp_loss_xent(&loss, NULL, NULL, z, t, NULL, 2, 0, 1.0f), NLP_EINVAL);
    size_t c;
    assert_int_equal(nlp_loss_accuracy(&c, NULL, z, t, NULL, 2, 3), NLP_EINVAL);
    /* No rows: zero loss and count. */
    size_t count = 99;
    assert_int_equal(nlp_loss_xent(&loss, &count, NULL, z, t, NULL, 0, 3, 1.0f), NLP_OK);
    assert_true(loss == 0.0 && count == 0);
}

static void test_xent_stable(void **state)
{
    (void)state;
    /* Logits far beyond expf's range: the shifted log-sum-exp stays exact. */
    float z[4] = { 1e4f, 1e4f - 1.0f, -1e4f, 3e4f };
    int t[1] = { 0 };
    float dz[4];
    double loss;
    assert_int_equal(nlp_loss_xent(&loss, NULL, dz, z, t, NULL, 1, 4, 1.0f), NLP_OK);
    assert_true(isfinite(loss));
    assert_true(fabs(loss - 2e4) < 1e-2);
    assert_true(fabs(dz[0] + 1.0f) < 1e-6 && fabs(dz[3] - 1.0f) < 1e-6);
    /* Equal logits: log V. */
    float u[5] = { -50, -50, -50, -50, -50 };
    assert_int_equal(nlp_loss_xent(&loss, NULL, NULL, u, t, NULL, 1, 5, 1.0f), NLP_OK);
    assert_true(fabs(loss - log(5.0)) < 1e-6);
    /* A NaN logit makes the loss NaN, so a divergence check can see it. */
    u[2] = NAN;
    assert_int_equal(nlp_loss_xent(&loss, NULL, NULL, u, t, NULL, 1, 5, 1.0f), NLP_OK);
    assert_true(isnan(loss));
}

/* ---- gradient check ---- */

typedef struct xent_ctx {
    float *z;
    const int *t;
    const float *mask;
    size_t n, v;
    float scale;
} xent_ctx;

static double xent_loss(void *p)
{
    xent_ctx *c = p;
    double loss;
    nlp_loss_xent(&loss, NULL, NULL, c->z, c->t, c->mask, c->n, c->v, c->scale);
    return loss * c->scale;
}

/*
** The loss is a sum of ~N log-sum-exps of O(1) terms, so one float
** evaluation is accurate to ~1e-7 relative and gradcheck's defaults
** (h 1e-3, tolerance 1e-2 relative with a 1e-2 floor) hold with a wide
** margin; a wrong sign or a missing -1 at the target gives errors near 1.
*/
static void test_xent_gradcheck(void **state)
{
    (void)state;
    enum { N = 5, V = 6 };
    float z[N * V], dz[N * V];
    int t[N] = { 1, -1, 5, 0, 3 };
    float mask[N] = { 1, 1, 0, 0.5f, 1 };
    const float *masks[2] = { NULL, mask };
    for (int k = 0; k < 2; k++) {
        fill(z, N * V, 1.5, 3 + k);
        xent_ctx c = { z, t, masks[k], N, V, 1.0f / 3 };
        assert_int_equal(nlp_loss_xent(NULL, NULL, dz, z, t, masks[k], N, V, c.scale), NLP_OK);
        gc_options o = gc_defaults();
        o.label = k ? "xent logits (mask)" : "xent logits";
        gc_result r = gc_check(z, dz, N * V, xent_loss, &c, &o);
        assert_true(gc_ok(&r, &o));
    }
}

/* loss = sum w[i] x[i], except that it is NaN while x[nan_at] is moved
** off its starting value (nan_at < 0: never): a numerical NaN. */
typedef struct lin_ctx {
    const float *x;
    const double *w;
    size_t n;
    long nan_at;
    float x0;
} lin_ctx;

static double lin_loss(void *p)
{
    const lin_ctx *c = p;
    if (c->nan_at >= 0 && c->x[c->nan_at] != c->x0)
        return NAN;
    return gc_dot(c->w, c->x, c->n);
}

/*
** Issue 11 item 12: gradcheck must fail on a NaN or infinite gradient,
** analytic or numerical, wherever it is (NaN > max is false, so a NaN
** after the first element used to pass unseen).  gc_check and gc_ok do
** not assert, so the verdict is tested directly.
*/
static void test_gradcheck_nonfinite(void **state)
{
    (void)state;
    enum { N = 9 };
    float x[N], g[N];
    double w[N];
    fill(x, N, 1.0, 11);
    gc_weights(w, N, 5);
    lin_ctx c = { x, w, N, -1, 0 };
    gc_options o = gc_defaults();
    o.label = "self-test";

    for (int i = 0; i < N; i++)
        g[i] = (float)w[i];
    gc_result r = gc_check(x, g, N, lin_loss, &c, &o);
    assert_true(gc_ok(&r, &o));   /* the exact gradient passes */
    assert_int_equal(r.nonfinite, 0);

    const float bad[] = { NAN, INFINITY, -INFINITY };
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        for (size_t at = 0; at < N; at += 4) {   /* first, middle, last */
            for (int i = 0; i < N; i++)
                g[i] = (float)w[i];
            g[at] = bad[b];
            r = gc_check(x, g, N, lin_loss, &c, &o);
            assert_false(gc_ok(&r, &o));
            assert_int_equal(r.nonfinite, 1);
            assert_int_equal(r.worst, at);
        }
    }

    /* A numerical NaN (the loss is NaN around element 4). */
    for (int i = 0; i < N; i++)
        g[i] = (float)w[i];
    c.nan_at = 4;
    c.x0 = x[4];
    r = gc_check(x, g, N, lin_loss, &c, &o);
    assert_false(gc_ok(&r, &o));
    assert_int_equal(r.nonfinite, 1);
    assert_int_equal(r.worst, 4);
    assert_true(x[4] == c.x0);    /* restored */

    /* The element metric itself, and a result that checked nothing. */
    assert_true(isinf(gc_rel_error(NAN, 1.0, 1e-2)));
    assert_true(isinf(gc_rel_error(1.0, INFINITY, 1e-2)));
    assert_true(isinf(gc_rel_error(INFINITY, INFINITY, 1e-2)));
    assert_true(gc_rel_error(1.0, 1.0, 1e-2) == 0);
    gc_result none = { 0, 0, 0, 0, 0, 0 };
    assert_false(gc_ok(&none, &o));
    gc_result nan_max = { NAN, 0, 0, 0, 1, 0 };
    assert_false(gc_ok(&nan_max, &o));
}

static void test_accuracy_argmax(void **state)
{
    (void)state;
    float z[3 * 3] = { 0, 2, 1,   5, 5, 1,   0, 0, 3 };
    int t[3] = { 1, 1, 2 };
    float mask[3] = { 1, 1, 0 };
    size_t ok, cnt;
    assert_int_equal(nlp_loss_accuracy(&ok, &cnt, z, t, NULL, 3, 3), NLP_OK);
    assert_int_equal(cnt, 3);
    assert_int_equal(ok, 2);  /* row 1 ties on 0 and 1: the first wins */
    assert_int_equal(nlp_loss_accuracy(&ok, &cnt, z, t, mask, 3, 3), NLP_OK);
    assert_int_equal(cnt, 2);
    assert_int_equal(ok, 1);
    t[0] = -1;
    assert_int_equal(nlp_loss_accuracy(&ok, &cnt, z, t, NULL, 3, 3), NLP_OK);
    assert_int_equal(cnt, 2);
    assert_int_equal(ok, 1);

    float a[4] = { NAN, -1, 3, 3 };
    assert_int_equal(nlp_loss_argmax(a, 4), 2);
    float b[2] = { NAN, NAN };
    assert_int_equal(nlp_loss_argmax(b, 2), 0);
    float c[3] = { -INFINITY, -INFINITY, -5 };
    assert_int_equal(nlp_loss_argmax(c, 3), 2);
}

static void test_log_softmax(void **state)
{
    (void)state;
    float x[5] = { 1, 2, 3, -4, 0.5f }, out[5], p[5];
    double lse = nlp_loss_log_softmax(out, x, 5);
    double s = 0, want = 0;
    for (int j = 0; j < 5; j++)
        want += exp(x[j]);
    assert_true(fabs(lse - log(want)) < 1e-6);
    for (int j = 0; j < 5; j++) {
        s += exp(out[j]);
        assert_true(fabs(out[j] - (x[j] - log(want))) < 1e-6);
    }
    assert_true(fabs(s - 1) < 1e-6);
    assert_true(nlp_loss_softmax(p, x, 5) == lse);
    for (int j = 0; j < 5; j++)
        assert_true(fabs(p[j] - exp(out[j])) < 1e-6);
    /* In place, and huge values. */
    float y[3] = { 1000, 1000, 1000 };
    nlp_loss_log_softmax(y, y, 3);
    for (int j = 0; j < 3; j++)
        assert_true(fabs(y[j] + log(3.0)) < 1e-6);
    /* The cross-entropy of a row equals -log_softmax at the target. */
    double loss;
    int t[1] = { 2 };
    nlp_loss_xent(&loss, NULL, NULL, x, t, NULL, 1, 5, 1.0f);
    assert_true(fabs(loss + out[2]) < 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xent_value),
        cmocka_unit_test(test_xent_errors),
        cmocka_unit_test(test_xent_stable),
        cmocka_unit_test(test_xent_gradcheck),
        cmocka_unit_test(test_gradcheck_nonfinite),
        cmocka_unit_test(test_accuracy_argmax),
        cmocka_unit_test(test_log_softmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
