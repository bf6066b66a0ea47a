/*
** Unit tests for linear: forward against a naive loop, backward (weight,
** bias, input) against finite differences (tolerance: gradcheck.h), with
** and without bias.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gradcheck.h"
#include "nlp/error.h"
#include "nlp/linear.h"
#include "nlp/rng.h"
#include "nlp/tensor.h"

enum { IN = 5, OUT = 4, N = 6 };

typedef struct ctx {
    nlp_linear *l;
    float *x, *y;
    double *w;
} ctx;

/* loss = sum w * tanh(y): nonlinear, so a wrong dy would show. */
static double loss(void *c_)
{
    ctx *c = c_;
    nlp_linear_forward(c->l, c->y, c->x, N);
    double s = 0;
    for (int i = 0; i < N * OUT; i++)
        s += c->w[i] * tanh(c->y[i]);
    return s;
}

static void run(int bias)
{
    nlp_params *p;
    assert_int_equal(nlp_params_new(&p), NLP_OK);
    nlp_linear l;
    assert_int_equal(nlp_linear_init(&l, p, "out", IN, OUT, bias), NLP_OK);
    assert_int_equal(nlp_linear_init(&l, p, "bad", 0, OUT, bias), NLP_EINVAL);
    assert_non_null(nlp_params_find(p, "out.weight"));
    assert_true((nlp_params_find(p, "out.bias") != NULL) == (bias != 0));
    assert_int_equal(nlp_params_alloc(p), NLP_OK);
    nlp_rng r;
    nlp_rng_seed(&r, 4);
    nlp_linear_reset(&l, &r);
    float x[N * IN], y[N * OUT], dy[N * OUT], dx[N * IN];
    double w[N * OUT];
    nlp_tensor_uniform(x, N * IN, -1, 1, &r);
    gc_weights(w, N * OUT, 3);
    /* Forward against the definition. */
    nlp_linear_forward(&l, y, x, N);
    const float *W = nlp_params_data(p, l.w), *b = bias ? nlp_params_data(p, l.b) : NULL;
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OUT; o++) {
            double s = b ? b[o] : 0;
            for (int k = 0; k < IN; k++)
                s += (double)x[i * IN + k] * W[o * IN + k];
            assert_float_equal(y[i * OUT + o], s, 1e-5);
        }
    /* Backward. */
    ctx c = {&l, x, y, w};
    loss(&c);
    for (int i = 0; i < N * OUT; i++)
        dy[i] = (float)(w[i] * (1 - tanh(y[i]) * tanh(y[i])));
    nlp_params_zero_grad(p);
    for (int i = 0; i < N * IN; i++)
        dx[i] = 0.5f; /* backward adds into dx */
    nlp_linear_backward(&l, dx, dy, x, N);
    for (int i = 0; i < N * IN; i++)
        dx[i] -= 0.5f;
    gc_options o = gc_defaults();
    o.label = "linear params";
    gc_result res = gc_check(p->data, p->grad, p->n, loss, &c, &o);
    assert_true(gc_ok(&res, &o));
    o.label = "linear x";
    res = gc_check(x, dx, N * IN, loss, &c, &o);
    assert_true(gc_ok(&res, &o));
    /* dx NULL: weights only, same weight gradient again. */
    float g1[64];
    memcpy(g1, p->grad, sizeof(float) * (p->n < 64 ? p->n : 64));
    nlp_params_zero_grad(p);
    nlp_linear_backward(&l, NULL, dy, x, N);
    for (size_t i = 0; i < (p->n < 64 ? p->n : 64); i++)
        assert_float_equal(p->grad[i], g1[i], 1e-6);
    nlp_params_free(p);
}

static void test_with_bias(void **state)
{
    (void)state;
    run(1);
}

static void test_without_bias(void **state)
{
    (void)state;
    run(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_with_bias),
        cmocka_unit_test(test_without_bias),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
