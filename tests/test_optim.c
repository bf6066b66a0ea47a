/*
** Unit tests for optim: the first Adam steps against the formula computed
** here independently in double; five steps of every optimiser against
** PyTorch 1.13 on a small quadratic (values printed by the script in the
** comment below); clipping; learning-rate schedules and the learning-rate
** scale; configuration checks.
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
#include "nlp/optim.h"

enum { NP = 4 };

/* f(w) = sum c w^2 + d w, so grad = 2 c w + d. */
static const float qc[NP] = { 1.0f, 0.5f, 2.0f, 1.0f };
static const float qd[NP] = { 0.1f, -0.3f, 0.2f, 1.0f };
static const float w_start[NP] = { 0.5f, -1.0f, 2.0f, 0.0f };

static void quad_grad(float *g, const float *w)
{
    for (int i = 0; i < NP; i++)
        g[i] = 2.0f * qc[i] * w[i] + qd[i];
}

static void run_quadratic(const nlp_optim_config *c, int steps, float *w)
{
    float g[NP];
    memcpy(w, w_start, sizeof w_start);
    nlp_optim *o;
    assert_int_equal(nlp_optim_new(&o, NP, c), NLP_OK);
    for (int s = 0; s < steps; s++) {
        quad_grad(g, w);
        nlp_optim_step(o, w, g);
    }
    assert_int_equal(nlp_optim_steps(o), steps);
    nlp_optim_free(o);
}

/* The first three Adam steps, recomputed in double from the paper's
** formula (Kingma and Ba 2015, with PyTorch's placement of eps). */
static void test_adam_formula(void **state)
{
    (void)state;
    nlp_optim_config c;
    nlp_optim_config_default(&c, NLP_OPTIM_ADAM);
    c.lr = 0.01f;
    nlp_optim *o;
    assert_int_equal(nlp_optim_new(&o, 3, &c), NLP_OK);
    float w[3] = { 1.0f, -2.0f, 0.25f };
    double rw[3] = { 1.0, -2.0, 0.25 }, m[3] = { 0 }, v[3] = { 0 };
    const double g_steps[3][3] = { { 0.5, -1.0, 1e-3 }, { 0.4, 2.0, -1e-3 }, { -0.1, 0.0, 5.0 } };
    for (int t = 1; t <= 3; t++) {
        float g[3];
        for (int i = 0; i < 3; i++)
            g[i] = (float)g_steps[t - 1][i];
        assert_true(nlp_optim_step(o, w, g) == 0.01f);
        for (int i = 0; i < 3; i++) {
            double gi = g[i];
            m[i] = 0.9 * m[i] + 0.1 * gi;
            v[i] = 0.999 * v[i] + 0.001 * gi * gi;
            double mh = m[i] / (1 - pow(0.9, t)), vh = v[i] / (1 - pow(0.999, t));
            rw[i] -= 0.01 * mh / (sqrt(vh) + 1e-8);
            assert_true(fabs(w[i] - rw[i]) < 1e-6);
            assert_true(fabs(nlp_optim_m(o)[i] - m[i]) <= 1e-6 * fabs(m[i]));
            assert_true(fabs(nlp_optim_v(o)[i] - v[i]) <= 1e-6 * v[i]);
        }
    }
    /* The very first step moves every weight by lr against the gradient's
    ** sign (m/sqrt(v) = g/|g| after bias correction). */
    nlp_optim_reset(o);
    assert_int_equal(nlp_optim_steps(o), 0);
    float w2[3] = { 0, 0, 0 }, g2[3] = { 3.0f, -0.01f, 100.0f };
    nlp_optim_step(o, w2, g2);
    assert_true(fabs(w2[0] + 0.01) < 1e-6 && fabs(w2[1] - 0.01) < 1e-6 && fabs(w2[2] + 0.01) < 1e-6);
    nlp_optim_free(o);
}

/*
** PyTorch 1.13 reference (float32), five steps on the quadratic above:
**   w = torch.tensor([0.5, -1.0, 2.0, 0.0], requires_grad=True)
**   opt = torch.optim.<Kind>([w], ...)
**   5 x { zero_grad; ((c*w*w).sum() + (d*w).sum()).backward(); step }
*/
static void test_against_pytorch(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        nlp_optim_kind kind;
        double lr, momentum, weight_decay;
        int nesterov;
        float want[NP];
    } cases[] = {
        { "Adam(lr=0.1)", NLP_OPTIM_ADAM, 0.1f, 0, 0, 0,
          { 0.0229588002f, -0.505346358f, 1.50286245f, -0.472185552f } },
        { "Adam(lr=0.1, weight_decay=0.01)", NLP_OPTIM_ADAM, 0.1f, 0, 0.01f, 0,
          { 0.0229793638f, -0.50536418f, 1.50286257f, -0.471899867f } },
        { "SGD(lr=0.05)", NLP_OPTIM_SGD, 0.05f, 0, 0, 0,
          { 0.274769515f, -0.705915213f, 0.621743977f, -0.204754993f } },
        { "SGD(lr=0.05, momentum=0.9)", NLP_OPTIM_SGD, 0.05f, 0.9f, 0, 0,
          { -0.0660380125f, -0.242302775f, -1.23986101f, -0.514580011f } },
        { "SGD(lr=0.05, momentum=0.9, nesterov=True)", NLP_OPTIM_SGD, 0.05f, 0.9f, 0, 1,
          { -0.10751991f, -0.11072506f, -0.902221024f, -0.552290797f } },
        { "RMSprop(lr=0.01)", NLP_OPTIM_RMSPROP, 0.01f, 0, 0, 0,
          { 0.21670869f, -0.69126451f, 1.6852268f, -0.278429002f } },
        { "RMSprop(lr=0.01, momentum=0.5)", NLP_OPTIM_RMSPROP, 0.01f, 0.5f, 0, 0,
          { 0.0489486828f, -0.486753196f, 1.472754f, -0.438775301f } },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        nlp_optim_config c;
        nlp_optim_config_default(&c, cases[k].kind);
        c.lr = cases[k].lr;
        c.momentum = cases[k].momentum;
        c.weight_decay = cases[k].weight_decay;
        c.nesterov = cases[k].nesterov;
        float w[NP];
        run_quadratic(&c, 5, w);
        for (int i = 0; i < NP; i++) {
            /* float32 on both sides; differences are a few ulps of the
            ** intermediate values (which are O(1)). */
            if (fabsf(w[i] - cases[k].want[i]) > 1e-6f)
                fail_msg("%s: w[%d] = %.9g, PyTorch %.9g", cases[k].name, i, w[i],
                         cases[k].want[i]);
        }
    }
}

static void test_buffers(void **state)
{
    (void)state;
    nlp_optim_config c;
    nlp_optim *o;
    nlp_optim_config_default(&c, NLP_OPTIM_SGD);
    assert_int_equal(nlp_optim_new(&o, 5, &c), NLP_OK);
    assert_null(nlp_optim_m(o));
    assert_null(nlp_optim_v(o));
    nlp_optim_free(o);
    c.momentum = 0.5f;
    assert_int_equal(nlp_optim_new(&o, 5, &c), NLP_OK);
    assert_non_null(nlp_optim_m(o));
    assert_null(nlp_optim_v(o));
    nlp_optim_free(o);
    nlp_optim_config_default(&c, NLP_OPTIM_ADAM);
    assert_int_equal(nlp_optim_new(&o, 5, &c), NLP_OK);
    assert_non_null(nlp_optim_m(o));
    assert_non_null(nlp_optim_v(o));
    nlp_optim_free(o);
    nlp_optim_config_default(&c, NLP_OPTIM_RMSPROP);
    assert_int_equal(nlp_optim_new(&o, 5, &c), NLP_OK);
    assert_null(nlp_optim_m(o));
    assert_non_null(nlp_optim_v(o));
    /* The accessors: o's own copy of c, its size, its step count. */
    c.lr = 0.5;
    assert_true(nlp_optim_get_config(o) != &c);
    assert_int_equal(nlp_optim_get_config(o)->kind, NLP_OPTIM_RMSPROP);
    assert_true(nlp_optim_get_config(o)->lr == 1e-2);
    assert_int_equal(nlp_optim_size(o), 5);
    assert_int_equal(nlp_optim_steps(o), 0);
    assert_int_equal(nlp_optim_set_steps(o, 7), NLP_OK);
    assert_int_equal(nlp_optim_steps(o), 7);
    assert_int_equal(nlp_optim_set_steps(o, -1), NLP_EINVAL);
    assert_int_equal(nlp_optim_steps(o), 7);
    nlp_optim_reset(o);
    assert_int_equal(nlp_optim_steps(o), 0);
    nlp_optim_free(o);
    max_align_t junk;
    o = (void *)&junk;   /* a failed constructor must reset *out */
    assert_int_equal(nlp_optim_new(&o, 0, &c), NLP_EINVAL);
    assert_null(o);
    assert_int_equal(nlp_optim_new(&o, 5, NULL), NLP_EINVAL);
    nlp_optim_free(NULL);
}

static void test_config_check(void **state)
{
    (void)state;
    nlp_optim_config c;
    for (int k = 0; k < 3; k++) {
        nlp_optim_config_default(&c, (nlp_optim_kind)k);
        assert_int_equal(nlp_optim_config_check(&c), NLP_OK);
    }
    nlp_optim_config_default(&c, NLP_OPTIM_ADAM);
    assert_true(c.lr == 1e-3 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8);
    nlp_optim_config_default(&c, NLP_OPTIM_RMSPROP);
    assert_true(c.lr == 1e-2 && c.alpha == 0.99);

#define BAD(field, value)                                                  \
    do {                                                                   \
        nlp_optim_config_default(&c, NLP_OPTIM_ADAM);                      \
        c.field = value;                                                   \
        assert_int_equal(nlp_optim_config_check(&c), NLP_EINVAL);          \
        nlp_optim *bad_ = (void *)&c;                                      \
        assert_int_equal(nlp_optim_new(&bad_, 3, &c), NLP_EINVAL);         \
        assert_null(bad_);                                                 \
    } while (0)
    BAD(lr, 0.0f);
    BAD(lr, -1.0f);
    BAD(lr, NAN);
    BAD(beta1, 1.0f);
    BAD(beta2, -0.1f);
    BAD(eps, 0.0f);
    BAD(momentum, 1.5f);
    BAD(nesterov, 1);
    BAD(weight_decay, -1.0f);
    BAD(kind, (nlp_optim_kind)7);
    BAD(warmup, -1);
    nlp_optim_config_default(&c, NLP_OPTIM_ADAM);
    c.schedule = NLP_LR_STEP;
    c.gamma = 0.5f;
    c.step_size = 0;
    assert_int_equal(nlp_optim_config_check(&c), NLP_EINVAL);
    c.step_size = 10;
    assert_int_equal(nlp_optim_config_check(&c), NLP_OK);
    c.gamma = 1.5f;
    assert_int_equal(nlp_optim_config_check(&c), NLP_EINVAL);
#undef BAD

    nlp_optim_kind k;
    assert_int_equal(nlp_optim_kind_parse("rmsprop", &k), NLP_OK);
    assert_int_equal(k, NLP_OPTIM_RMSPROP);
    assert_int_equal(nlp_optim_kind_parse("adagrad", &k), NLP_EINVAL);
    assert_string_equal(nlp_optim_kind_name(NLP_OPTIM_ADAM), "adam");
    assert_null(nlp_optim_kind_name((nlp_optim_kind)9));
}

static void test_schedules(void **state)
{
    (void)state;
    nlp_optim_config c;
    nlp_optim_config_default(&c, NLP_OPTIM_SGD);
    c.lr = 1.0f;
    assert_true(nlp_optim_lr_at(&c, 0) == 1.0f && nlp_optim_lr_at(&c, 1000) == 1.0f);
    c.schedule = NLP_LR_EXP;
    c.gamma = 0.5f;
    assert_true(nlp_optim_lr_at(&c, 0) == 1.0f);
    assert_true(nlp_optim_lr_at(&c, 3) == 0.125f);
    c.schedule = NLP_LR_STEP;
    c.step_size = 10;
    assert_true(nlp_optim_lr_at(&c, 9) == 1.0f);
    assert_true(nlp_optim_lr_at(&c, 10) == 0.5f);
    assert_true(nlp_optim_lr_at(&c, 25) == 0.25f);
    c.warmup = 4;
    assert_true(nlp_optim_lr_at(&c, 0) == 0.25f);
    assert_true(nlp_optim_lr_at(&c, 1) == 0.5f);
    assert_true(nlp_optim_lr_at(&c, 3) == 1.0f);
    assert_true(nlp_optim_lr_at(&c, 4) == 1.0f);

    /* The step uses the schedule at o->step and advances it. */
    nlp_optim *o;
    assert_int_equal(nlp_optim_new(&o, 1, &c), NLP_OK);
    float w = 0, g = 1;
    assert_true(nlp_optim_lr(o) == 0.25f);
    assert_true(nlp_optim_step(o, &w, &g) == 0.25f);
    assert_true(w == -0.25f);
    assert_true(nlp_optim_step(o, &w, &g) == 0.5f);
    assert_true(w == -0.75f);
    nlp_optim_free(o);
}

static void test_clip(void **state)
{
    (void)state;
    float g[4] = { 3, 4, 0, 0 };
    assert_true(nlp_optim_grad_norm(g, 4) == 5.0);
    /* Below the threshold: untouched. */
    assert_true(nlp_optim_clip(g, 4, 10.0f) == 5.0);
    assert_true(g[0] == 3 && g[1] == 4);
    /* Above: scaled to max_norm / (norm + 1e-6), as PyTorch. */
    assert_true(nlp_optim_clip(g, 4, 1.0f) == 5.0);
    assert_true(fabsf(g[0] - 0.6f) < 1e-6f && fabsf(g[1] - 0.8f) < 1e-6f);
    assert_true(fabs(nlp_optim_grad_norm(g, 4) - 1.0) < 1e-6);
    /* max_norm <= 0: only the norm. */
    float h[3] = { 1e20f, 1e20f, 0 };
    double n = nlp_optim_clip(h, 3, 0.0f);
    assert_true(fabs(n - sqrt(2.0) * 1e20) < 1e6 * 1e8);  /* no float overflow */
    assert_true(h[0] == 1e20f);
    /* A non-finite norm is reported and the gradient left alone. */
    float k[2] = { INFINITY, 1 };
    assert_true(isinf(nlp_optim_clip(k, 2, 1.0f)));
    assert_true(k[1] == 1.0f);
    /* Long odd-length vector: the norm is accurate. */
    enum { N = 1001 };
    float *v = malloc(N * sizeof *v);
    for (int i = 0; i < N; i++)
        v[i] = 0.5f;
    assert_true(fabs(nlp_optim_grad_norm(v, N) - 0.5 * sqrt((double)N)) < 1e-9);
    free(v);
}

/* A larger vector crosses the OpenMP threshold: same bits as elementwise
** runs on a small copy, so threads cannot change the result. */
static void test_large_elementwise(void **state)
{
    (void)state;
    enum { N = 100003 };
    float *w = malloc(N * sizeof *w), *g = malloc(N * sizeof *g);
    nlp_rng r;
    nlp_rng_seed(&r, 5);
    for (int i = 0; i < N; i++) {
        w[i] = (float)nlp_rng_normal(&r);
        g[i] = (float)nlp_rng_normal(&r);
    }
    float w_small[3] = { w[0], w[N / 2], w[N - 1] }, g_small[3] = { g[0], g[N / 2], g[N - 1] };
    nlp_optim_config c;
    nlp_optim_config_default(&c, NLP_OPTIM_ADAM);
    nlp_optim *big, *small;
    assert_int_equal(nlp_optim_new(&big, N, &c), NLP_OK);
    assert_int_equal(nlp_optim_new(&small, 3, &c), NLP_OK);
    for (int s = 0; s < 3; s++) {
        nlp_optim_step(big, w, g);
        nlp_optim_step(small, w_small, g_small);
    }
    assert_true(w[0] == w_small[0] && w[N / 2] == w_small[1] && w[N - 1] == w_small[2]);
    nlp_optim_free(big);
    nlp_optim_free(small);
    free(w);
    free(g);
}

/* The learning-rate scale multiplies the schedule's rate, shows in
** nlp_optim_lr(), drives the update, survives steps, and is reset. */
static void test_lr_scale(void **state)
{
    (void)state;
    nlp_optim_config c;
    nlp_optim_config_default(&c, NLP_OPTIM_SGD);
    c.lr = 1.0;
    c.schedule = NLP_LR_STEP;
    c.gamma = 0.5;
    c.step_size = 2;
    nlp_optim *o;
    assert_int_equal(nlp_optim_new(&o, 1, &c), NLP_OK);
    assert_true(nlp_optim_lr_scale(o) == 1.0);
    float w = 0, g = 1;
    assert_true(nlp_optim_lr(o) == 1.0f);
    nlp_optim_set_lr_scale(o, 0.25);
    assert_true(nlp_optim_lr_scale(o) == 0.25);
    assert_true(nlp_optim_lr(o) == 0.25f);
    assert_true(nlp_optim_step(o, &w, &g) == 0.25f);
    assert_true(w == -0.25f);
    assert_true(nlp_optim_step(o, &w, &g) == 0.25f); /* step 1: schedule still 1 */
    assert_true(w == -0.5f);
    /* Step 2: the schedule halves, the scale stays on top of it. */
    assert_true(nlp_optim_lr(o) == 0.125f);
    assert_true(nlp_optim_step(o, &w, &g) == 0.125f);
    assert_true(w == -0.625f);
    /* Invalid scales are ignored. */
    nlp_optim_set_lr_scale(o, 0.0);
    nlp_optim_set_lr_scale(o, -1.0);
    nlp_optim_set_lr_scale(o, NAN);
    nlp_optim_set_lr_scale(o, INFINITY);
    assert_true(nlp_optim_lr_scale(o) == 0.25);
    /* A non-power-of-two scale: the product in double, rounded once. */
    nlp_optim_set_lr_scale(o, 0.3);
    assert_true(nlp_optim_lr(o) == (float)(0.5 * 0.3));
    /* Scale 1 gives the schedule's float bit for bit. */
    nlp_optim_set_lr_scale(o, 1.0);
    assert_true(nlp_optim_lr(o) == nlp_optim_lr_at(nlp_optim_get_config(o), nlp_optim_steps(o)));
    nlp_optim_set_lr_scale(o, 0.5);
    nlp_optim_reset(o);
    assert_true(nlp_optim_lr_scale(o) == 1.0);
    assert_true(nlp_optim_lr(o) == 1.0f);
    nlp_optim_free(o);

    /* Adam with a scale moves exactly as Adam with the scaled rate. */
    nlp_optim_config_default(&c, NLP_OPTIM_ADAM);
    c.lr = 0.01;
    nlp_optim *a;
    assert_int_equal(nlp_optim_new(&a, NP, &c), NLP_OK);
    c.lr = (double)(float)(0.01 * 0.5);
    nlp_optim *b;
    assert_int_equal(nlp_optim_new(&b, NP, &c), NLP_OK);
    assert_non_null(a);
    assert_non_null(b);
    nlp_optim_set_lr_scale(a, 0.5);
    float wa[NP], wb[NP], ga[NP], gb[NP];
    memcpy(wa, w_start, sizeof wa);
    memcpy(wb, w_start, sizeof wb);
    for (int s = 0; s < 5; s++) {
        quad_grad(ga, wa);
        quad_grad(gb, wb);
        assert_true(nlp_optim_step(a, wa, ga) == nlp_optim_step(b, wb, gb));
    }
    assert_memory_equal(wa, wb, sizeof wa);
    nlp_optim_free(a);
    nlp_optim_free(b);
}

/* Every optimiser actually minimises the quadratic. */
static void test_converges(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        nlp_optim_config c;
        nlp_optim_config_default(&c, (nlp_optim_kind)k);
        c.lr = k == NLP_OPTIM_SGD ? 0.1f : 0.05f;
        if (k == NLP_OPTIM_SGD)
            c.momentum = 0.5f;
        float w[NP];
        run_quadratic(&c, 2000, w);
        for (int i = 0; i < NP; i++) {
            float opt = -qd[i] / (2 * qc[i]);
            if (fabsf(w[i] - opt) > 1e-2f)
                fail_msg("%s: w[%d] = %g, optimum %g", nlp_optim_kind_name(c.kind), i, w[i], opt);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_formula),
        cmocka_unit_test(test_against_pytorch),
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_lr_scale),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_large_elementwise),
        cmocka_unit_test(test_converges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
