/* Unit tests for the core modules: err, rng, progress, alloc (with nlp_grow)
** and the stable index sort of lib/sort.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nlp.h"
#include "../lib/sort.h"

static void test_error_format(void **state)
{
    (void)state;
    nlp_error e;
    char buf[1024];
    nlp_error_clear(&e);
    assert_int_equal(e.code, NLP_OK);
    assert_int_equal(nlp_error_set(&e, NLP_EFORMAT, "in.txt", 12, "bad %s", "thing"), NLP_EFORMAT);
    assert_string_equal(nlp_error_format(&e, buf, sizeof buf), "in.txt:12: bad thing");
    nlp_error_set(&e, NLP_EIO, "out.model", 0, NULL);
    assert_string_equal(nlp_error_format(&e, buf, sizeof buf), "out.model: input/output error");
    nlp_error_set(&e, NLP_EEMPTY, NULL, 0, NULL);
    assert_string_equal(nlp_error_format(&e, buf, sizeof buf), "empty input");
    /* A NULL error object is allowed everywhere. */
    assert_int_equal(nlp_error_set(NULL, NLP_EINVAL, NULL, 0, NULL), NLP_EINVAL);
    nlp_error_clear(NULL);
    /* Every code has its own text. */
    for (int c = NLP_ERANGE; c < NLP_OK; c++)
        assert_string_not_equal(nlp_error_string(c), "unknown error");
    assert_string_equal(nlp_error_string(-999), "unknown error");
}

static void test_rng_repeatable(void **state)
{
    (void)state;
    nlp_rng a, b;
    nlp_rng_seed(&a, 42);
    nlp_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++)
        assert_true(nlp_rng_u64(&a) == nlp_rng_u64(&b));
    nlp_rng_seed(&b, 43);
    assert_true(nlp_rng_u64(&a) != nlp_rng_u64(&b));
}

static void test_rng_distributions(void **state)
{
    (void)state;
    nlp_rng r;
    nlp_rng_seed(&r, 7);
    enum { N = 200000, K = 10 };
    long counts[K] = {0};
    double sum = 0, sumsq = 0;
    for (int i = 0; i < N; i++) {
        uint64_t k = nlp_rng_below(&r, K);
        assert_true(k < K);
        counts[k]++;
        float u = nlp_rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        double z = nlp_rng_normal(&r);
        sum += z;
        sumsq += z * z;
    }
    /* Each bucket within 5 standard deviations of N/K. */
    double sd = sqrt(N * 0.1 * 0.9);
    for (int k = 0; k < K; k++)
        assert_true(fabs((double)counts[k] - N / K) < 5 * sd);
    double mean = sum / N, var = sumsq / N - mean * mean;
    assert_true(fabs(mean) < 0.02);
    assert_true(fabs(var - 1.0) < 0.03);
}

/* nlp_rng_shuffle: a permutation, each of the 6 orders of 3 about as often;
** 0 and 1 elements are left alone. */
static void test_rng_shuffle(void **state)
{
    (void)state;
    nlp_rng r;
    nlp_rng_seed(&r, 11);
    enum { N = 60000 };
    long counts[9] = {0};
    for (int i = 0; i < N; i++) {
        long a[3] = {0, 1, 2};
        nlp_rng_shuffle(&r, a, 3);
        assert_true(a[0] != a[1] && a[1] != a[2] && a[0] != a[2]);
        counts[a[0] * 3 + a[1]]++;
    }
    double sd = sqrt(N * (1.0 / 6) * (5.0 / 6));
    for (int k = 0; k < 9; k++)
        if (k / 3 != k % 3)
            assert_true(fabs((double)counts[k] - N / 6.0) < 5 * sd);
    long one = 7;
    nlp_rng_shuffle(&r, &one, 1);
    assert_int_equal(one, 7);
    nlp_rng_shuffle(&r, NULL, 0);
}

static void test_rng_split(void **state)
{
    (void)state;
    nlp_rng p, q, c1, c2;
    nlp_rng_seed(&p, 1);
    nlp_rng_seed(&q, 1);
    nlp_rng_split(&p, &c1);
    nlp_rng_split(&q, &c2);
    /* Deterministic, and the child differs from the advanced parent. */
    assert_memory_equal(&c1, &c2, sizeof c1);
    assert_memory_equal(&p, &q, sizeof p);
    assert_true(nlp_rng_u64(&c1) != nlp_rng_u64(&p));
}

static void test_progress(void **state)
{
    (void)state;
    char buf[256];
    assert_string_equal(nlp_progress_duration(3.44, buf, sizeof buf), "3.4s");
    assert_string_equal(nlp_progress_duration(123, buf, sizeof buf), "2m03s");
    assert_string_equal(nlp_progress_duration(3723, buf, sizeof buf), "1h02m03s");

    /* Not live (a file): updates are dropped, lines are kept. */
    FILE *f = tmpfile();
    assert_non_null(f);
    nlp_progress p;
    nlp_progress_init(&p, f, -1);
    assert_int_equal(p.live, 0);
    assert_int_equal(nlp_progress_update(&p, "%d%%", 50), 0);
    nlp_progress_line(&p, "epoch %d", 1);
    rewind(f);
    memset(buf, 0, sizeof buf);
    assert_true(fread(buf, 1, sizeof buf - 1, f) > 0);
    assert_string_equal(buf, "epoch 1\n");
    fclose(f);

    /* Forced live: the first update draws, a second at once is throttled. */
    f = tmpfile();
    nlp_progress_init(&p, f, 1);
    assert_int_equal(nlp_progress_update(&p, "a"), 1);
    assert_int_equal(nlp_progress_update(&p, "b"), 0);
    nlp_progress_line(&p, "done");
    rewind(f);
    memset(buf, 0, sizeof buf);
    assert_true(fread(buf, 1, sizeof buf - 1, f) > 0);
    assert_string_equal(buf, "\r\033[Ka\r\033[Kdone\n");
    fclose(f);
    assert_non_null(nlp_version());
}

static void test_alloc_schedule(void **state)
{
    (void)state;
    nlp_alloc_fail_at(3, 0);
    void *a = nlp_malloc(8), *b = nlp_calloc(2, 8), *c = nlp_strdup("x");
    char *d = nlp_strndup("hello", 2);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);           /* the third call fails ... */
    assert_non_null(d);       /* ... and only it, when not sticky */
    assert_string_equal(d, "he");
    assert_int_equal(nlp_alloc_count(), 4);
    nlp_alloc_fail_at(2, 1);
    void *e = nlp_malloc(1), *f = nlp_realloc(a, 64), *g = nlp_aligned_alloc(64, 10);
    assert_non_null(e);
    assert_null(f);           /* a is still ours after a failed realloc */
    assert_null(g);           /* sticky: every later call fails too */
    nlp_alloc_fail_at(0, 0);
    g = nlp_aligned_alloc(64, 10);
    assert_non_null(g);
    assert_int_equal((uintptr_t)g % 64, 0);
    assert_int_equal(((unsigned char *)g)[63], 0);
    assert_null(nlp_calloc(SIZE_MAX / 2, 4)); /* overflow, not a wrapped size */
    nlp_free(a); nlp_free(b); nlp_free(d); nlp_free(e); nlp_free(g);
    nlp_free(NULL);
}

static void test_grow(void **state)
{
    (void)state;
    int *p = NULL;
    size_t cap = 0;
    assert_int_equal(nlp_grow((void **)&p, &cap, 0, sizeof *p, 4), NLP_OK);
    assert_null(p);                       /* nothing needed, nothing allocated */
    assert_int_equal(nlp_grow((void **)&p, &cap, 3, sizeof *p, 4), NLP_OK);
    assert_int_equal(cap, 4);             /* starts at first */
    p[0] = 7;
    void *before = p;
    assert_int_equal(nlp_grow((void **)&p, &cap, 4, sizeof *p, 4), NLP_OK);
    assert_ptr_equal(p, before);          /* room enough: untouched */
    assert_int_equal(nlp_grow((void **)&p, &cap, 9, sizeof *p, 4), NLP_OK);
    assert_int_equal(cap, 16);            /* doubles past need */
    assert_int_equal(p[0], 7);            /* contents kept */
    before = p;
    assert_int_equal(nlp_grow((void **)&p, &cap, SIZE_MAX / 2, sizeof *p, 4), NLP_ENOMEM);
    assert_ptr_equal(p, before);          /* size overflow: refused, array kept */
    assert_int_equal(cap, 16);
    nlp_alloc_fail_at(1, 0);
    assert_int_equal(nlp_grow((void **)&p, &cap, 17, sizeof *p, 4), NLP_ENOMEM);
    assert_int_equal(cap, 16);
    assert_int_equal(p[0], 7);
    nlp_alloc_fail_at(0, 0);
    nlp_free(p);
}

/* Orders by key[] ascending only: equal keys are the ties. */
static int key_less(const void *ctx, long a, long b)
{
    const int *key = ctx;
    return key[a] < key[b];
}

static void test_sort_stable(void **state)
{
    (void)state;
    enum { N = 300 };
    long idx[N], tmp[N];
    int key[N];
    nlp_rng rng;
    nlp_rng_seed(&rng, 17);
    for (long n = 0; n <= N; n += n < 20 ? 1 : 37) {
        for (long i = 0; i < n; i++) {
            key[i] = (int)(nlp_rng_u64(&rng) % 5); /* many ties */
            idx[i] = n - 1 - i;                    /* ties must keep this order */
        }
        nlp_sort_stable(idx, tmp, n, key_less, key);
        int seen[N] = {0};
        for (long i = 0; i < n; i++) {
            assert_true(idx[i] >= 0 && idx[i] < n);
            assert_int_equal(seen[idx[i]]++, 0);   /* a permutation */
            if (i > 0) {
                assert_true(key[idx[i - 1]] <= key[idx[i]]);
                if (key[idx[i - 1]] == key[idx[i]])
                    assert_true(idx[i - 1] > idx[i]); /* stable: input order */
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_rng_repeatable),
        cmocka_unit_test(test_rng_shuffle),
        cmocka_unit_test(test_rng_distributions),
        cmocka_unit_test(test_rng_split),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_alloc_schedule),
        cmocka_unit_test(test_grow),
        cmocka_unit_test(test_sort_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
