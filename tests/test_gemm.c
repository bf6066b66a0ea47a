/*
** Unit tests for the small-M GEMM path (lib/gemm_small.c) behind
** nlp_tensor_gemm: every form, M 1..70 (across the small-M threshold),
** N and K with tails, padded leading dimensions, alpha 1 and -0.5, beta 0
** over a C full of NaN, beta 1 and 0.5, against a triple loop in double.
** Each instruction set the CPU supports is tested directly, and the public
** function is tested as dispatched.
**
** Tolerance: |got - want| <= 1e-5 * (|alpha| sum_k |a_ik b_kj| + |beta c_ij|)
** + 1e-30, i.e. relative to the magnitude of the terms summed (a float sum
** of K terms in another order differs by about K * 2^-24 of that; K here is
** at most 300, so 1e-5 leaves room and still catches any wrong term).
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

#include "gemm_small.h"
#include "nlp/rng.h"
#include "nlp/tensor.h"

#define TOL 1e-5

/* Which implementation a case runs: an ISA of gemm_small, or the public
   function (its dispatch, including the cblas side above the threshold). */
enum { PUBLIC = -1 };

typedef struct {
    int M, N, K, tb, pad;
    float alpha, beta;
} gcase;

/* Runs one case on `impl`; returns the number of wrong elements. */
static int run_case(int impl, const gcase *g, nlp_rng *r)
{
    const int M = g->M, N = g->N, K = g->K;
    const int lda = K + g->pad, ldb = (g->tb ? K : N) + g->pad, ldc = N + g->pad;
    const int brows = g->tb ? N : K;
    float *A = malloc(sizeof(float) * (size_t)M * lda);
    float *B = malloc(sizeof(float) * (size_t)brows * ldb);
    float *C = malloc(sizeof(float) * (size_t)M * ldc);
    float *C0 = malloc(sizeof(float) * (size_t)M * ldc);
    assert_non_null(A);
    assert_non_null(B);
    assert_non_null(C);
    assert_non_null(C0);
    /* Padding holds NaN: a kernel that reads past a row's end shows. */
    for (size_t i = 0; i < (size_t)M * lda; i++)
        A[i] = (int)(i % lda) < K ? nlp_rng_uniform(r) * 2 - 1 : NAN;
    for (size_t i = 0; i < (size_t)brows * ldb; i++)
        B[i] = (int)(i % ldb) < (g->tb ? K : N) ? nlp_rng_uniform(r) * 2 - 1 : NAN;
    for (size_t i = 0; i < (size_t)M * ldc; i++)
        C0[i] = g->beta == 0.0f ? NAN : ((int)(i % ldc) < N ? nlp_rng_uniform(r) * 2 - 1 : 7.0f);
    memcpy(C, C0, sizeof(float) * (size_t)M * ldc);

    if (impl == PUBLIC)
        nlp_tensor_gemm(NLP_NOTRANS, g->tb, M, N, K, g->alpha, A, lda, B, ldb, g->beta, C, ldc);
    else
        gemm_small(impl, g->tb, M, N, K, g->alpha, A, lda, B, ldb, g->beta, C, ldc);

    int bad = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            float got = C[(size_t)i * ldc + j];
            if (j >= N) { /* padding of C untouched */
                float was = C0[(size_t)i * ldc + j];
                if (!(isnan(was) ? isnan(got) : got == was))
                    bad++;
                continue;
            }
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double a = A[(size_t)i * lda + k];
                double b = g->tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
                mag += fabs(a * b);
            }
            double c0 = g->beta == 0.0f ? 0.0 : C0[(size_t)i * ldc + j];
            double want = g->alpha * s + g->beta * c0;
            double tol = TOL * (fabs(g->alpha) * mag + fabs(g->beta * c0)) + 1e-30;
            if (!(fabs(got - want) <= tol)) {
                if (bad < 3)
                    fprintf(stderr,
                            "impl %d %s M=%d N=%d K=%d pad=%d alpha=%g beta=%g: C[%d,%d] = %.9g, "
                            "want %.9g\n",
                            impl, g->tb ? "NT" : "NN", M, N, K, g->pad, g->alpha, g->beta, i, j,
                            got, want);
                bad++;
            }
        }
    free(A);
    free(B);
    free(C);
    free(C0);
    return bad;
}

static const int sizes[] = {1, 3, 15, 16, 17, 31, 33, 47, 48, 49, 255, 257};
#define NSIZES (int)(sizeof sizes / sizeof sizes[0])

/* All forms, M 1..70, a spread of N x K with tails, alpha/beta/padding
   varied with the case so that every combination recurs. */
static void sweep(int impl)
{
    nlp_rng r;
    nlp_rng_seed(&r, 7);
    const float alphas[] = {1.0f, -0.5f}, betas[] = {0.0f, 1.0f, 0.5f};
    int cases = 0, bad = 0;
    for (int tb = 0; tb < 2; tb++)
        for (int M = 1; M <= 70; M++)
            for (int s = 0; s < NSIZES; s++) {
                /* N runs over all sizes; K over a rotation, so each M sees
                   several K and every (N, K) pair appears across M. */
                gcase g = {M, sizes[s], sizes[(s + M) % NSIZES], tb, (M + s) % 3 == 0 ? 0 : 5,
                           alphas[(M + s) % 2], betas[(M + 2 * s) % 3]};
                if (M > 20 && g.N > 100 && g.K > 100)
                    g.K = 17; /* keep the test fast */
                bad += run_case(impl, &g, &r);
                cases++;
            }
    /* The recurrent shapes themselves, both betas. */
    const int shapes[][2] = {{1024, 256}, {256, 1024}, {96, 32}};
    for (int tb = 0; tb < 2; tb++)
        for (int p = 0; p < 3; p++)
            for (int M = 8; M <= 64; M *= 2)
                for (int b = 0; b < 2; b++) {
                    gcase g = {M, shapes[p][0], shapes[p][1], tb, b ? 3 : 0, 1.0f, b ? 1.0f : 0.0f};
                    bad += run_case(impl, &g, &r);
                    cases++;
                }
    fprintf(stderr, "impl %d: %d cases, %d wrong elements\n", impl, cases, bad);
    assert_int_equal(bad, 0);
}

static void test_avx512(void **state)
{
    (void)state;
    if (gemm_small_isa() < GEMM_ISA_AVX512) {
        fprintf(stderr, "CPU without AVX-512: kernel not tested here\n");
        skip();
    }
    sweep(GEMM_ISA_AVX512);
}

static void test_public(void **state)
{
    (void)state;
    sweep(PUBLIC);
}

/* beta 0 writes C without reading it: Inf and NaN there vanish; alpha 0
   does not read A or B (BLAS semantics), so their Inf does not show. */
static void test_special(void **state)
{
    (void)state;
    const int M = 16, N = 40, K = 33;
    float A[16 * 33], B[40 * 33], C[16 * 40];
    for (int i = 0; i < M * K; i++)
        A[i] = 1.0f;
    for (int i = 0; i < N * K; i++)
        B[i] = 2.0f;
    for (int tb = 0; tb < 2; tb++) {
        for (int i = 0; i < M * N; i++)
            C[i] = i % 2 ? INFINITY : NAN;
        nlp_tensor_gemm(NLP_NOTRANS, tb, M, N, K, 1.0f, A, K, B, tb ? K : N, 0.0f, C, N);
        for (int i = 0; i < M * N; i++)
            assert_true(C[i] == 2.0f * K);
        A[5] = INFINITY;
        for (int i = 0; i < M * N; i++)
            C[i] = 3.0f;
        nlp_tensor_gemm(NLP_NOTRANS, tb, M, N, K, 0.0f, A, K, B, tb ? K : N, 0.5f, C, N);
        for (int i = 0; i < M * N; i++)
            assert_true(C[i] == 1.5f);
        A[5] = 1.0f;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avx512),
        cmocka_unit_test(test_public),
        cmocka_unit_test(test_special),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
