/*
** Unit tests for embed: lookup, padding ids, out-of-range ids, and the
** sparse backward against finite differences (tolerance: gradcheck.h).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gradcheck.h"
#include "nlp/embed.h"
#include "nlp/error.h"
#include "nlp/rng.h"

enum { V = 6, E = 4, N = 7 };

static void test_lookup(void **state)
{
    (void)state;
    nlp_params *p;
    assert_int_equal(nlp_params_new(&p), NLP_OK);
    nlp_embed e;
    assert_int_equal(nlp_embed_init(&e, p, "emb", V, E), NLP_OK);
    assert_int_equal(nlp_embed_init(&e, p, "emb", V, E), NLP_EINVAL); /* same name */
    assert_int_equal(nlp_embed_init(&e, p, "x", 0, E), NLP_EINVAL);
    assert_non_null(nlp_params_find(p, "emb.weight"));
    assert_int_equal(nlp_params_alloc(p), NLP_OK);
    nlp_rng r;
    nlp_rng_seed(&r, 1);
    nlp_embed_reset(&e, &r);
    const float *W = nlp_params_data(p, e.w);
    int ids[N] = {2, 0, -1, 5, 2, 3, 1};
    float out[N * E];
    assert_int_equal(nlp_embed_forward(&e, out, ids, N), NLP_OK);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < E; j++)
            assert_true(out[i * E + j] == (ids[i] < 0 ? 0.0f : W[ids[i] * E + j]));
    int bad[2] = {1, V};
    assert_int_equal(nlp_embed_forward(&e, out, bad, 2), NLP_ERANGE);
    /* Backward: repeated ids accumulate, padding and bad ids are skipped,
       untouched rows stay zero. */
    float dout[N * E];
    for (int i = 0; i < N * E; i++)
        dout[i] = (float)(i + 1);
    nlp_embed_backward(&e, dout, ids, N);
    const float *G = nlp_params_grad(p, e.w);
    for (int j = 0; j < E; j++) {
        assert_float_equal(G[2 * E + j], dout[0 * E + j] + dout[4 * E + j], 0);
        assert_float_equal(G[4 * E + j], 0.0f, 0);
        assert_float_equal(G[5 * E + j], dout[3 * E + j], 0);
    }
    nlp_embed_backward(&e, dout, bad, 2);
    nlp_params_free(p);
}

typedef struct ctx {
    nlp_embed *e;
    const int *ids;
    float *out;
    double *w;
} ctx;

static double loss(void *c_)
{
    ctx *c = c_;
    nlp_embed_forward(c->e, c->out, c->ids, N);
    double s = 0;
    for (int i = 0; i < N * E; i++)
        s += c->w[i] * c->out[i] * c->out[i] * 0.5; /* nonlinear in W */
    return s;
}

static void test_gradcheck(void **state)
{
    (void)state;
    nlp_params *p;
    assert_int_equal(nlp_params_new(&p), NLP_OK);
    nlp_embed e;
    nlp_embed_init(&e, p, "emb", V, E);
    nlp_params_alloc(p);
    nlp_rng r;
    nlp_rng_seed(&r, 2);
    nlp_embed_reset(&e, &r);
    int ids[N] = {2, 0, -1, 5, 2, 3, 2};
    float out[N * E], dout[N * E];
    double w[N * E];
    gc_weights(w, N * E, 7);
    ctx c = {&e, ids, out, w};
    loss(&c);
    for (int i = 0; i < N * E; i++)
        dout[i] = (float)(w[i] * out[i]);
    nlp_params_zero_grad(p);
    nlp_embed_backward(&e, dout, ids, N);
    gc_options o = gc_defaults();
    o.label = "embed.weight";
    gc_result res = gc_check(p->data, p->grad, p->n, loss, &c, &o);
    assert_true(gc_ok(&res, &o));
    /* The check can fail: a wrong gradient is caught. */
    p->grad[2 * E + 1] *= 1.1f;
    o.label = "deliberately wrong";
    res = gc_check(p->data, p->grad, p->n, loss, &c, &o);
    assert_false(gc_ok(&res, &o));
    nlp_params_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_gradcheck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
