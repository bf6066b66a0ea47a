/*
** tensor: aligned float buffers, OpenBLAS wrappers, initialisers, dropout.
*/
#include "nlp/tensor.h"

#include "nlp/alloc.h"

#include "gemm_small.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- memory -------------------------------------------------------- */

#define TENSOR_ALIGN 64 /* bytes: one cache line, one AVX-512 vector */

float *nlp_tensor_alloc(size_t n)
{
    if (n == 0 || n > (SIZE_MAX - TENSOR_ALIGN) / sizeof(float))
        return NULL;
    return nlp_aligned_alloc(TENSOR_ALIGN, n * sizeof(float));
}

void nlp_tensor_free(float *p)
{
    nlp_free(p);
}

/* ---- BLAS ------------------------------------------------------------ */

void nlp_tensor_gemm(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta,
              float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        /* Nothing to multiply: C = beta*C, with beta == 0 clearing C. */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    if (alpha == 0.0f) {
        /* As BLAS: A and B are not read, so Inf or NaN there does not show. */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    if (M == 1) {
        /* One row (a generation step): sgemm would pack the whole of B on
           every call; sgemv reads it once, several times faster. */
        int incx = transA ? lda : 1;
        if (beta == 0.0f)
            memset(C, 0, sizeof(float) * (size_t)N); /* beta 0 must not keep NaNs */
        if (transB)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, A, incx, beta, C, 1);
        else
            cblas_sgemv(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A, incx, beta, C, 1);
        return;
    }
    if (!transA && M <= GEMM_SMALL_MAX_M) {
        /* A few rows (a recurrent step): sgemm packs all of B on every
           call, as costly as the product; the small kernels read B in
           place (lib/gemm_small.c, bench/gemm.sh).  AVX-512 only: AVX2
           versions lost to OpenBLAS's own AVX2 (Haswell) kernels (NN
           0.65-0.95x, NT 0.9-1.0x at M = 16..32), so a CPU without
           AVX-512 keeps cblas. */
        if (gemm_small_isa() == GEMM_ISA_AVX512) {
            gemm_small(GEMM_ISA_AVX512, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            return;
        }
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb,
                beta, C, ldc);
}

void nlp_tensor_gemv(int trans, int M, int N, float alpha, const float *A, int lda,
              const float *x, float beta, float *y)
{
    if (M <= 0 || N <= 0)
        return;
    cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, M, N, alpha, A,
                lda, x, 1, beta, y, 1);
}

void nlp_tensor_axpy(size_t n, float alpha, const float *x, float *y)
{
    /* cblas takes an int count: go in chunks for huge n. */
    while (n > 0) {
        int k = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
        cblas_saxpy(k, alpha, x, 1, y, 1);
        x += k;
        y += k;
        n -= (size_t)k;
    }
}

void nlp_tensor_set_threads(int n)
{
    openblas_set_num_threads(n < 1 ? 1 : n);
}

int nlp_tensor_threads(void)
{
    return openblas_get_num_threads();
}

/* ---- initialisers ------------------------------------------------------ */

void nlp_tensor_uniform(float *w, size_t n, float lo, float hi, nlp_rng *r)
{
    for (size_t i = 0; i < n; i++)
        w[i] = lo + (hi - lo) * nlp_rng_uniform(r);
}

void nlp_tensor_normal(float *w, size_t n, float mean, float std, nlp_rng *r)
{
    for (size_t i = 0; i < n; i++)
        w[i] = (float)(mean + std * nlp_rng_normal(r));
}

void nlp_tensor_xavier(float *w, int rows, int cols, float gain, nlp_rng *r)
{
    float a = gain * sqrtf(6.0f / (float)(rows + cols));
    nlp_tensor_uniform(w, (size_t)rows * cols, -a, a, r);
}

/*
** Orthonormalises `count` vectors of length `len` in place: vector k,
** element j is at w[k*vs + j*es], with either es == 1 (rows, vs = ld) or
** vs == 1 (columns, es = ld).  Classical Gram-Schmidt applied twice
** ("CGS2", Giraud et al. 2005: as orthogonal as modified Gram-Schmidt and
** made of matrix-vector products, so it runs in BLAS), over the earlier
** vectors in blocks of GS_BLOCK so the coefficients fit on the stack.  A
** vector that collapses (norm below 1e-6 after projection, which for
** Gaussian input happens with probability ~0) is redrawn.
*/
#define GS_BLOCK 256

static void gram_schmidt(float *w, int count, int len, int ld, int by_rows, nlp_rng *r)
{
    float c[GS_BLOCK];
    size_t vs = by_rows ? (size_t)ld : 1, es = by_rows ? 1 : (size_t)ld;
    for (int k = 0; k < count; k++) {
        float *v = w + (size_t)k * vs;
        for (int tries = 0;; tries++) {
            for (int pass = 0; pass < 2; pass++)
                for (int j0 = 0; j0 < k; j0 += GS_BLOCK) {
                    int n = k - j0 < GS_BLOCK ? k - j0 : GS_BLOCK;
                    const float *U = w + (size_t)j0 * vs;
                    if (by_rows) { /* U is (n, len) row-major */
                        cblas_sgemv(CblasRowMajor, CblasNoTrans, n, len, 1.0f, U, ld, v, 1, 0.0f, c, 1);
                        cblas_sgemv(CblasRowMajor, CblasTrans, n, len, -1.0f, U, ld, c, 1, 1.0f, v, 1);
                    } else { /* U is (len, n) with leading dimension ld */
                        cblas_sgemv(CblasRowMajor, CblasTrans, len, n, 1.0f, U, ld, v, ld, 0.0f, c, 1);
                        cblas_sgemv(CblasRowMajor, CblasNoTrans, len, n, -1.0f, U, ld, c, 1, 1.0f, v, ld);
                    }
                }
            double nrm = 0;
            for (int j = 0; j < len; j++)
                nrm += (double)v[j * es] * v[j * es];
            nrm = sqrt(nrm);
            if (nrm > 1e-6 || tries > 8) {
                for (int j = 0; j < len; j++)
                    v[j * es] = (float)(v[j * es] / (nrm > 0 ? nrm : 1.0));
                break;
            }
            for (int j = 0; j < len; j++)
                v[j * es] = (float)nlp_rng_normal(r);
        }
    }
}

void nlp_tensor_orthogonal(float *w, int rows, int cols, int ld, float gain,
                           nlp_rng *r)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            w[(size_t)i * ld + j] = (float)nlp_rng_normal(r);
    if (rows <= cols)
        gram_schmidt(w, rows, cols, ld, 1, r);
    else
        gram_schmidt(w, cols, rows, ld, 0, r);
    if (gain != 1.0f)
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                w[(size_t)i * ld + j] *= gain;
}

/* ---- dropout --------------------------------------------------------- */

void nlp_tensor_dropout_forward(float *out, float *mask, const float *in, size_t n,
                         float p, nlp_rng *r)
{
    if (p <= 0.0f) {
        for (size_t i = 0; i < n; i++) {
            mask[i] = 1.0f;
            out[i] = in[i];
        }
        return;
    }
    float keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) {
        mask[i] = nlp_rng_uniform(r) < p ? 0.0f : keep;
        out[i] = in[i] * mask[i];
    }
}

void nlp_tensor_dropout_backward(float *din, const float *dout, const float *mask,
                          size_t n)
{
    if (din == dout) {
        for (size_t i = 0; i < n; i++)
            din[i] *= mask[i];
        return;
    }
    for (size_t i = 0; i < n; i++)
        din[i] += dout[i] * mask[i];
}
