/*
** Unit tests for sample: temperature, top-k, top-p, bans, and that draws
** follow the distribution nlp_sample_probs() reports.
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

#include "nlp/error.h"
#include "nlp/rng.h"
#include "nlp/sample.h"

enum { N = 8 };

/* Logits with distinct values in a shuffled order: rank 0 is index 5. */
static const float logits8[N] = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f, 3.0f, -2.0f, 1.5f};

static double softmax_at(const float *x, size_t n, size_t i, double t)
{
    double m = -INFINITY, z = 0;
    for (size_t j = 0; j < n; j++)
        if (x[j] > m)
            m = x[j];
    for (size_t j = 0; j < n; j++)
        z += exp((x[j] - m) / t);
    return exp((x[i] - m) / t) / z;
}

static void test_opts(void **state)
{
    (void)state;
    nlp_sample_config o;
    nlp_sample_config_default(&o);
    assert_int_equal(nlp_sample_config_check(&o), NLP_OK);
    assert_true(o.temperature == 1.0 && o.top_k == 0 && o.top_p == 1.0 && o.ban == -1);
    o.temperature = -0.1;
    assert_int_equal(nlp_sample_config_check(&o), NLP_EINVAL);
    o.temperature = NAN;
    assert_int_equal(nlp_sample_config_check(&o), NLP_EINVAL);
    nlp_sample_config_default(&o);
    o.top_p = 0;
    assert_int_equal(nlp_sample_config_check(&o), NLP_EINVAL);
    o.top_p = 1.01;
    assert_int_equal(nlp_sample_config_check(&o), NLP_EINVAL);
    nlp_sample_config_default(&o);
    o.top_k = -1;
    assert_int_equal(nlp_sample_config_check(&o), NLP_EINVAL);
    nlp_sampler *bad = (void *)&o;   /* a failed constructor must reset *out */
    assert_int_equal(nlp_sample_new(&bad, 0), NLP_EINVAL);
    assert_null(bad);
    nlp_sample_free(NULL);
}

static void test_argmax(void **state)
{
    (void)state;
    assert_int_equal(nlp_sample_argmax(logits8, N), 5);
    const float ties[4] = {1, 3, 3, 0};
    assert_int_equal(nlp_sample_argmax(ties, 4), 1);
    const float nans[3] = {NAN, -5, NAN};
    assert_int_equal(nlp_sample_argmax(nans, 3), 1);
}

/* Plain softmax at temperature 1 and 0.5 matches the formula. */
static void test_probs_temperature(void **state)
{
    (void)state;
    nlp_sampler *s;
    assert_int_equal(nlp_sample_new(&s, N), NLP_OK);
    nlp_sample_config o;
    nlp_sample_config_default(&o);
    float p[N];
    for (double t = 0.25; t <= 4; t *= 2) {
        o.temperature = t;
        assert_int_equal(nlp_sample_probs(s, logits8, &o, p), N);
        double sum = 0;
        for (int i = 0; i < N; i++) {
            assert_float_equal(p[i], softmax_at(logits8, N, (size_t)i, t), 1e-6);
            sum += p[i];
        }
        assert_float_equal(sum, 1.0, 1e-6);
    }
    nlp_sample_free(s);
}

/* Temperature 0 and temperatures tending to 0 pick the argmax, always. */
static void test_temperature_zero_is_argmax(void **state)
{
    (void)state;
    nlp_sampler *s;
    assert_int_equal(nlp_sample_new(&s, N), NLP_OK);
    nlp_sample_config o;
    nlp_sample_config_default(&o);
    nlp_rng r;
    nlp_rng_seed(&r, 3);
    o.temperature = 0;
    nlp_rng before = r;
    for (int i = 0; i < 100; i++)
        assert_int_equal(nlp_sample_draw(s, logits8, &o, &r), 5);
    /* Greedy leaves the generator alone. */
    assert_memory_equal(&before, &r, sizeof r);
    o.temperature = 1e-4;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(nlp_sample_draw(s, logits8, &o, &r), 5);
    float p[N];
    o.temperature = 1e-3;
    assert_int_equal(nlp_sample_probs(s, logits8, &o, p), 1);
    assert_float_equal(p[5], 1.0, 1e-6);
    nlp_sample_free(s);
}

/* Top-k: draws never leave the k best, whatever the temperature. */
static void test_top_k(void **state)
{
    (void)state;
    nlp_sampler *s;
    assert_int_equal(nlp_sample_new(&s, N), NLP_OK);
    nlp_sample_config o;
    nlp_sample_config_default(&o);
    nlp_rng r;
    nlp_rng_seed(&r, 11);
    /* Ranks: 5 (3.0), 2 (2.0), 7 (1.5), 4 (1.0), 0 (0.5), 3, 1, 6. */
    const long order[N] = {5, 2, 7, 4, 0, 3, 1, 6};
    for (long k = 1; k <= N; k++) {
        o.top_k = k;
        o.temperature = 5.0; /* flatten, so the tail would be drawn often */
        float p[N];
        assert_int_equal(nlp_sample_probs(s, logits8, &o, p), k);
        for (long j = k; j < N; j++)
            assert_true(p[order[j]] == 0.0f);
        int seen[N] = {0};
        for (int i = 0; i < 4000; i++) {
            long x = nlp_sample_draw(s, logits8, &o, &r);
            assert_true(x >= 0 && x < N);
            int ok = 0;
            for (long j = 0; j < k; j++)
                ok |= order[j] == x;
            assert_true(ok);
            seen[x] = 1;
        }
        /* And every one of the k best does come up. */
        for (long j = 0; j < k; j++)
            assert_true(seen[order[j]]);
    }
    /* k larger than n keeps everything. */
    o.top_k = 100;
    float p[N];
    assert_int_equal(nlp_sample_probs(s, logits8, &o, p), N);
    /* Ties at the boundary: the lower index wins, so exactly k are kept. */
    const float ties[4] = {1, 2, 2, 2};
    nlp_sampler *s4;
    assert_int_equal(nlp_sample_new(&s4, 4), NLP_OK);
    o.top_k = 2;
    o.temperature = 1;
    float p4[4];
    assert_int_equal(nlp_sample_probs(s4, ties, &o, p4), 2);
    assert_true(p4[0] == 0 && p4[3] == 0);
    assert_float_equal(p4[1], 0.5, 1e-6);
    nlp_sample_free(s4);
    nlp_sample_free(s);
}

/* Top-p: the kept set is the smallest prefix of the sorted distribution
** whose mass reaches p, and it is renormalised. */
static void test_top_p(void **state)
{
    (void)state;
    nlp_sampler *s;
    assert_int_equal(nlp_sample_new(&s, N), NLP_OK);
    nlp_sample_config o;
    nlp_sample_config_default(&o);
    const long order[N] = {5, 2, 7, 4, 0, 3, 1, 6};
    double full[N];
    for (int i = 0; i < N; i++)
        full[i] = softmax_at(logits8, N, (size_t)i, 1.0);
    for (double top = 0.05; top <= 1.0; top += 0.05) {
        o.top_p = top;
        float p[N];
        long kept = nlp_sample_probs(s, logits8, &o, p);
        assert_true(kept >= 1 && kept <= N);
        /* Mass of the kept prefix reaches p; one fewer would not. */
        double mass = 0, before = 0;
        for (long j = 0; j < kept; j++) {
            before = mass;
            mass += full[order[j]];
        }
        assert_true(mass >= top - 1e-6);
        if (kept > 1)
            assert_true(before < top + 1e-6);
        double sum = 0;
        for (long j = 0; j < N; j++) {
            if (j < kept)
                assert_float_equal(p[order[j]], full[order[j]] / mass, 1e-5);
            else
                assert_true(p[order[j]] == 0.0f);
            sum += p[order[j]];
        }
        assert_float_equal(sum, 1.0, 1e-5);
    }
    /* A tiny p keeps just the best. */
    o.top_p = 1e-9;
    float p[N];
    assert_int_equal(nlp_sample_probs(s, logits8, &o, p), 1);
    assert_float_equal(p[5], 1.0, 1e-7);
    nlp_sample_free(s);
}

/* Draws follow the reported distribution: chi-square-like bound on each
** frequency (5 standard deviations) over many draws, with all the options
** on at once. */
static void check_frequencies(nlp_sampler *s, const float *logits, size_t n,
                              const nlp_sample_config *o, uint64_t seed)
{
    enum { DRAWS = 200000 };
    float p[64];
    long count[64] = {0};
    assert_true(n <= 64);
    assert_true(nlp_sample_probs(s, logits, o, p) >= 1);
    nlp_rng r;
    nlp_rng_seed(&r, seed);
    for (int i = 0; i < DRAWS; i++) {
        long x = nlp_sample_draw(s, logits, o, &r);
        assert_true(x >= 0 && (size_t)x < n);
        count[x]++;
    }
    for (size_t i = 0; i < n; i++) {
        double expect = p[i] * (double)DRAWS;
        double sd = sqrt(DRAWS * (double)p[i] * (1 - p[i]));
        if (p[i] == 0)
            assert_int_equal(count[i], 0);
        else
            assert_true(fabs((double)count[i] - expect) <= 5 * sd + 1);
    }
}

static void test_distribution_matches(void **state)
{
    (void)state;
    nlp_sampler *s;
    assert_int_equal(nlp_sample_new(&s, N), NLP_OK);
    nlp_sample_config o;
    nlp_sample_config_default(&o);
    check_frequencies(s, logits8, N, &o, 1);
    o.temperature = 0.7;
    check_frequencies(s, logits8, N, &o, 2);
    o.top_k = 5;
    check_frequencies(s, logits8, N, &o, 3);
    o.top_p = 0.8;
    check_frequencies(s, logits8, N, &o, 4);
    o.top_k = 0;
    o.temperature = 2;
    check_frequencies(s, logits8, N, &o, 5);
    nlp_sample_free(s);

    /* A larger vocabulary with a long flat tail. */
    float big[60];
    for (int i = 0; i < 60; i++)
        big[i] = (float)(i % 7) * 0.3f - (float)(i / 20);
    nlp_sampler *s60;
    assert_int_equal(nlp_sample_new(&s60, 60), NLP_OK);
    nlp_sample_config_default(&o);
    check_frequencies(s60, big, 60, &o, 6);
    o.top_p = 0.9;
    o.temperature = 0.8;
    check_frequencies(s60, big, 60, &o, 7);
    nlp_sample_free(s60);
}

/* A banned index is never drawn, even when it is by far the best; banning
** the only candidate is an error. */
static void test_ban_and_infinities(void **state)
{
    (void)state;
    nlp_sampler *s;
    assert_int_equal(nlp_sample_new(&s, N), NLP_OK);
    nlp_sample_config o;
    nlp_sample_config_default(&o);
    o.ban = 5;
    nlp_rng r;
    nlp_rng_seed(&r, 9);
    for (int i = 0; i < 5000; i++)
        assert_true(nlp_sample_draw(s, logits8, &o, &r) != 5);
    o.temperature = 0;
    assert_int_equal(nlp_sample_draw(s, logits8, &o, &r), 2);
    o.top_k = 1;
    o.temperature = 1;
    assert_int_equal(nlp_sample_draw(s, logits8, &o, &r), 2);
    nlp_sample_free(s);

    nlp_sampler *one;
    assert_int_equal(nlp_sample_new(&one, 1), NLP_OK);
    const float x1[1] = {0};
    nlp_sample_config_default(&o);
    assert_int_equal(nlp_sample_draw(one, x1, &o, &r), 0);
    o.ban = 0;
    assert_int_equal(nlp_sample_draw(one, x1, &o, &r), NLP_EINVAL);
    float p1[1];
    assert_int_equal(nlp_sample_probs(one, x1, &o, p1), NLP_EINVAL);
    nlp_sample_free(one);

    /* -INFINITY and NaN logits are never drawn while others are finite. */
    const float inf[4] = {-INFINITY, 0.0f, NAN, -1.0f};
    nlp_sampler *s4;
    assert_int_equal(nlp_sample_new(&s4, 4), NLP_OK);
    nlp_sample_config_default(&o);
    for (int i = 0; i < 2000; i++) {
        long x = nlp_sample_draw(s4, inf, &o, &r);
        assert_true(x == 1 || x == 3);
    }
    /* All -INFINITY: uniform over the candidates. */
    const float allinf[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    float p[4];
    assert_int_equal(nlp_sample_probs(s4, allinf, &o, p), 4);
    assert_float_equal(p[2], 0.25, 1e-7);
    /* Invalid options are refused by draw too. */
    o.top_p = 2;
    assert_int_equal(nlp_sample_draw(s4, inf, &o, &r), NLP_EINVAL);
    nlp_sample_free(s4);
}

/* Same seed, same draws. */
static void test_repeatable(void **state)
{
    (void)state;
    nlp_sampler *s;
    assert_int_equal(nlp_sample_new(&s, N), NLP_OK);
    nlp_sample_config o;
    nlp_sample_config_default(&o);
    o.top_p = 0.95;
    nlp_rng a, b;
    nlp_rng_seed(&a, 77);
    nlp_rng_seed(&b, 77);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(nlp_sample_draw(s, logits8, &o, &a),
                         nlp_sample_draw(s, logits8, &o, &b));
    nlp_sample_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_argmax),
        cmocka_unit_test(test_probs_temperature),
        cmocka_unit_test(test_temperature_zero_is_argmax),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_distribution_matches),
        cmocka_unit_test(test_ban_and_infinities),
        cmocka_unit_test(test_repeatable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
