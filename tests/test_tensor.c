/*
** Unit tests for tensor: the BLAS wrappers against naive loops (every
** transposition, padded leading dimensions), initialisers (bounds,
** orthogonality), inverted dropout, aligned allocation.
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

#include "nlp/rng.h"
#include "nlp/tensor.h"

/* Naive reference: C = alpha op(A) op(B) + beta C, in double. */
static void gemm_naive(int ta, int tb, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[k * lda + i] : A[i * lda + k];
                double b = tb ? B[j * ldb + k] : B[k * ldb + j];
                s += a * b;
            }
            C[i * ldc + j] = (float)(alpha * s + (beta == 0 ? 0.0 : beta * C[i * ldc + j]));
        }
}

static void test_gemm(void **state)
{
    (void)state;
    nlp_rng r;
    nlp_rng_seed(&r, 1);
    enum { MMAX = 5, N = 7, K = 3, PAD = 2 };
    float A[(MMAX + PAD) * (K + PAD) * 2], B[(N + PAD) * (K + PAD) * 2];
    float C1[MMAX * (N + PAD)], C2[MMAX * (N + PAD)];
    nlp_tensor_uniform(A, sizeof A / sizeof *A, -1, 1, &r);
    nlp_tensor_uniform(B, sizeof B / sizeof *B, -1, 1, &r);
    /* M == 1 takes the sgemv path (generation steps). */
    for (int M = 1; M <= MMAX; M += MMAX - 1)
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int bi = 0; bi < 3; bi++) {
                float beta = bi == 0 ? 0.0f : bi == 1 ? 1.0f : -0.5f;
                int lda = (ta ? M : K) + PAD, ldb = (tb ? K : N) + PAD, ldc = N + PAD;
                nlp_tensor_uniform(C1, sizeof C1 / sizeof *C1, -1, 1, &r);
                memcpy(C2, C1, sizeof C1);
                if (beta == 0.0f)
                    C1[0] = C2[0] = NAN; /* beta 0 must not propagate NaN */
                nlp_tensor_gemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, C1, ldc);
                gemm_naive(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, C2, ldc);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < ldc; j++)
                        assert_float_equal(C1[i * ldc + j], C2[i * ldc + j], 1e-5);
            }
    /* K == 0 scales C by beta. */
    float c[2] = {2, 4};
    nlp_tensor_gemm(NLP_NOTRANS, NLP_NOTRANS, 1, 2, 0, 1.0f, A, 1, B, 2, 0.5f, c, 2);
    assert_float_equal(c[0], 1.0f, 0);
    assert_float_equal(c[1], 2.0f, 0);
}

static void test_gemv_axpy(void **state)
{
    (void)state;
    float A[6] = {1, 2, 3, 4, 5, 6}; /* (2,3) */
    float x3[3] = {1, 0, -1}, x2[2] = {1, 2}, y2[2] = {1, 1}, y3[3] = {0, 0, 0};
    nlp_tensor_gemv(NLP_NOTRANS, 2, 3, 1.0f, A, 3, x3, 2.0f, y2);
    assert_float_equal(y2[0], -2 + 2, 0);
    assert_float_equal(y2[1], -2 + 2, 0);
    nlp_tensor_gemv(NLP_TRANS, 2, 3, 1.0f, A, 3, x2, 0.0f, y3);
    assert_float_equal(y3[0], 9, 0);
    assert_float_equal(y3[1], 12, 0);
    assert_float_equal(y3[2], 15, 0);
    nlp_tensor_axpy(3, -1.0f, x3, y3);
    assert_float_equal(y3[0], 8, 0);
    assert_float_equal(y3[2], 16, 0);
}

static void test_threads(void **state)
{
    (void)state;
    int old = nlp_tensor_threads();
    assert_true(old >= 1);
    nlp_tensor_set_threads(1);
    assert_int_equal(nlp_tensor_threads(), 1);
    nlp_tensor_set_threads(0); /* clamps to 1 */
    assert_int_equal(nlp_tensor_threads(), 1);
    nlp_tensor_set_threads(old);
}

static void test_alloc(void **state)
{
    (void)state;
    assert_null(nlp_tensor_alloc(0));
    float *p = nlp_tensor_alloc(37);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    for (int i = 0; i < 37; i++)
        assert_true(p[i] == 0.0f);
    nlp_tensor_free(p);
    nlp_tensor_free(NULL);
}

static void test_init_bounds(void **state)
{
    (void)state;
    nlp_rng r;
    nlp_rng_seed(&r, 3);
    enum { R = 30, C = 20 };
    float w[R * C];
    nlp_tensor_xavier(w, R, C, 1.0f, &r);
    float a = sqrtf(6.0f / (R + C)), mx = 0;
    for (int i = 0; i < R * C; i++) {
        assert_true(fabsf(w[i]) <= a);
        if (fabsf(w[i]) > mx)
            mx = fabsf(w[i]);
    }
    assert_true(mx > 0.9f * a); /* uses the whole range */
    nlp_tensor_uniform(w, R * C, 2.0f, 3.0f, &r);
    for (int i = 0; i < R * C; i++)
        assert_true(w[i] >= 2.0f && w[i] < 3.0f);
    /* Same seed, same weights. */
    float w2[R * C];
    nlp_rng_seed(&r, 9);
    nlp_tensor_normal(w, R * C, 0, 1, &r);
    nlp_rng_seed(&r, 9);
    nlp_tensor_normal(w2, R * C, 0, 1, &r);
    assert_memory_equal(w, w2, sizeof w);
}

/* max |Q Q^T - I| over the `rows` rows (or columns when by_col). */
static double ortho_error(const float *w, int rows, int cols, int ld, int by_col, float gain)
{
    int n = by_col ? cols : rows, len = by_col ? rows : cols;
    double worst = 0;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double s = 0;
            for (int k = 0; k < len; k++) {
                double x = by_col ? w[k * ld + a] : w[a * ld + k];
                double y = by_col ? w[k * ld + b] : w[b * ld + k];
                s += x * y;
            }
            double e = fabs(s - (a == b ? (double)gain * gain : 0.0));
            if (e > worst)
                worst = e;
        }
    return worst;
}

static void test_orthogonal(void **state)
{
    (void)state;
    nlp_rng r;
    nlp_rng_seed(&r, 5);
    float w[16 * 24];
    nlp_tensor_orthogonal(w, 16, 16, 16, 1.0f, &r); /* square */
    assert_true(ortho_error(w, 16, 16, 16, 0, 1.0f) < 1e-5);
    assert_true(ortho_error(w, 16, 16, 16, 1, 1.0f) < 1e-5);
    nlp_tensor_orthogonal(w, 8, 24, 24, 2.0f, &r); /* wide: rows orthonormal */
    assert_true(ortho_error(w, 8, 24, 24, 0, 2.0f) < 1e-4);
    nlp_tensor_orthogonal(w, 24, 8, 16, 1.0f, &r); /* tall, padded ld */
    assert_true(ortho_error(w, 24, 8, 16, 1, 1.0f) < 1e-5);
    /* More vectors than one block of the orthogonaliser (256). */
    float *big = malloc(300 * 300 * sizeof(float));
    nlp_tensor_orthogonal(big, 300, 300, 300, 1.0f, &r);
    assert_true(ortho_error(big, 300, 300, 300, 0, 1.0f) < 1e-5);
    nlp_tensor_orthogonal(big, 290, 270, 300, 1.0f, &r); /* tall, by columns */
    assert_true(ortho_error(big, 290, 270, 300, 1, 1.0f) < 1e-5);
    free(big);
}

static void test_dropout(void **state)
{
    (void)state;
    enum { N = 20000 };
    float *in = malloc(N * sizeof(float)), *out = malloc(N * sizeof(float));
    float *mask = malloc(N * sizeof(float)), *mask2 = malloc(N * sizeof(float));
    float *d = malloc(N * sizeof(float));
    nlp_rng r;
    nlp_rng_seed(&r, 11);
    for (int i = 0; i < N; i++)
        in[i] = 1.0f + (float)(i % 7);
    nlp_tensor_dropout_forward(out, mask, in, N, 0.25f, &r);
    int zeros = 0;
    for (int i = 0; i < N; i++) {
        assert_true(mask[i] == 0.0f || fabsf(mask[i] - 1.0f / 0.75f) < 1e-6f);
        zeros += mask[i] == 0.0f;
        assert_float_equal(out[i], in[i] * mask[i], 0);
    }
    /* 25% dropped, within 5 standard deviations. */
    assert_true(fabs(zeros - 0.25 * N) < 5 * sqrt(N * 0.25 * 0.75));
    /* Same seed, same mask. */
    nlp_rng_seed(&r, 11);
    nlp_tensor_dropout_forward(out, mask2, in, N, 0.25f, &r);
    assert_memory_equal(mask, mask2, N * sizeof(float));
    /* Backward adds dout*mask; in place it masks. */
    for (int i = 0; i < N; i++)
        d[i] = 1.0f;
    nlp_tensor_dropout_backward(d, in, mask, N);
    for (int i = 0; i < N; i++)
        assert_float_equal(d[i], 1.0f + in[i] * mask[i], 1e-6);
    memcpy(d, in, N * sizeof(float));
    nlp_tensor_dropout_backward(d, d, mask, N);
    for (int i = 0; i < N; i++)
        assert_float_equal(d[i], in[i] * mask[i], 0);
    /* p = 0: identity, no draws. */
    nlp_rng s = r;
    nlp_tensor_dropout_forward(out, mask, in, N, 0.0f, &r);
    assert_memory_equal(&s, &r, sizeof r);
    assert_memory_equal(out, in, N * sizeof(float));
    free(in);
    free(out);
    free(mask);
    free(mask2);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_gemv_axpy),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_init_bounds),
        cmocka_unit_test(test_orthogonal),
        cmocka_unit_test(test_dropout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
