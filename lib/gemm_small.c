/*
** gemm_small: C = alpha A op(B) + beta C for few rows of A (M <= 64).
**
** cblas_sgemm packs B on every call; with M = 16 that costs as much as the
** multiply.  These kernels read B where it lies:
**
**   NN  C[i, j:j+16v] += A[i,k] * B[k, j:j+16v]: a register tile of rows x
**       vectors of C, A[i,k] broadcast against contiguous rows of B.
**   NT  C[i,j] = A[i,:] . B[j,:]: a tile of rows x columns of C, each a
**       vector of partial dot products over k, summed across lanes at the
**       end (one transposing reduction per row of the tile).
**
** The kernels are compiled for AVX-512 through target attributes and used
** only when the CPU has it, so the library still runs anywhere.  There are
** no AVX2 versions: written and measured against OpenBLAS's AVX2 kernels
** (OPENBLAS_CORETYPE=Haswell) on Zen 4, they lost for NN (12 ymm FMAs per
** strided row of B hide too little) and only tied for NT, so on such CPUs
** cblas_sgemm does everything.
** Tails (rows, columns, k) are handled by masks, so any M, N, K and any
** leading dimension work.  beta == 0 never reads C.
*/
#include "gemm_small.h"

#include <stddef.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GEMM_X86 1
#include <immintrin.h>
#endif

#ifdef GEMM_X86

int gemm_small_isa(void)
{
    /* GCC and clang check the OS saves the wide registers too (XCR0). */
    if (__builtin_cpu_supports("avx512f"))
        return GEMM_ISA_AVX512;
    return GEMM_ISA_NONE;
}

/* The tile loops must unroll fully at -O2 too, so the accumulators live in
   registers rather than on the stack. */
#define UNROLL _Pragma("GCC unroll 16")

#define INLINE512 static inline __attribute__((always_inline, target("avx512f")))
#define TARGET512 static __attribute__((target("avx512f")))

/*
** k is blocked so that one block of B's rows stays in the TLB and L2 while
** every tile of C passes over it; later blocks add into C (beta 1).
*/
#define KBLOCK 256

/* ==== AVX-512 ========================================================= */

#define NN512_MR 8 /* rows of C per tile */
#define NN512_NV 3 /* 16-float vectors of C per tile row */

/*
** One NN tile: mr rows x nv vectors (the last one masked by `last`) of C,
** over K values of k.  Constant mr and nv after inlining, so acc lives in
** registers (24 accumulators + 3 rows of B + 1 broadcast of 32).
*/
INLINE512 void nn512_tile(int mr, int nv, __mmask16 last, int K, const float *A, size_t lda,
                          const float *B, size_t ldb, float alpha, float beta, float *C,
                          size_t ldc)
{
    __m512 acc[NN512_MR][NN512_NV];
    UNROLL
    for (int i = 0; i < mr; i++)
        UNROLL
        for (int v = 0; v < nv; v++)
            acc[i][v] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        const float *b = B + (size_t)k * ldb;
        __m512 bv[NN512_NV];
        UNROLL
        for (int v = 0; v < nv; v++)
            bv[v] = v == nv - 1 ? _mm512_maskz_loadu_ps(last, b + 16 * v)
                                : _mm512_loadu_ps(b + 16 * v);
        UNROLL
        for (int i = 0; i < mr; i++) {
            __m512 a = _mm512_set1_ps(A[(size_t)i * lda + k]);
            UNROLL
            for (int v = 0; v < nv; v++)
                acc[i][v] = _mm512_fmadd_ps(a, bv[v], acc[i][v]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    UNROLL
    for (int i = 0; i < mr; i++)
        UNROLL
        for (int v = 0; v < nv; v++) {
            float *c = C + (size_t)i * ldc + 16 * v;
            __mmask16 m = v == nv - 1 ? last : (__mmask16)0xFFFF;
            __m512 r = _mm512_mul_ps(va, acc[i][v]);
            if (beta != 0.0f)
                r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, c), r);
            _mm512_mask_storeu_ps(c, m, r);
        }
}

#define NN512_CASE(MR, NV)                                                                    \
    case (MR) * 4 + (NV):                                                                     \
        nn512_tile(MR, NV, last, K, A, lda, B, ldb, alpha, beta, C, ldc);                     \
        break;
#define NN512_ROW(MR) NN512_CASE(MR, 1) NN512_CASE(MR, 2) NN512_CASE(MR, 3)

TARGET512 void nn512_tile_any(int mr, int nv, __mmask16 last, int K, const float *A,
                              size_t lda, const float *B, size_t ldb, float alpha, float beta,
                              float *C, size_t ldc)
{
    switch (mr * 4 + nv) {
        NN512_ROW(1) NN512_ROW(2) NN512_ROW(3) NN512_ROW(4)
        NN512_ROW(5) NN512_ROW(6) NN512_ROW(7) NN512_ROW(8)
    default:
        break;
    }
}

TARGET512 void nn512(int M, int N, int K, float alpha, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    for (int k0 = 0; k0 < K; k0 += KBLOCK) {
        const int kc = K - k0 < KBLOCK ? K - k0 : KBLOCK;
        const float bk = k0 == 0 ? beta : 1.0f;
        for (int j0 = 0; j0 < N; j0 += 16 * NN512_NV) {
            const int nc = N - j0 < 16 * NN512_NV ? N - j0 : 16 * NN512_NV;
            const int nv = (nc + 15) / 16;
            const __mmask16 last = (__mmask16)(0xFFFFu >> (16 * nv - nc));
            for (int i0 = 0; i0 < M; i0 += NN512_MR) {
                const int mr = M - i0 < NN512_MR ? M - i0 : NN512_MR;
                nn512_tile_any(mr, nv, last, kc, A + (size_t)i0 * lda + k0, lda,
                               B + (size_t)k0 * ldb + j0, ldb, alpha, bk,
                               C + (size_t)i0 * ldc + j0, ldc);
            }
        }
    }
}

#define NT512_MR 4 /* rows of C (of A) per tile */
#define NT512_NR 6 /* columns of C (rows of B) per tile */

/*
** Sums of the lanes of v[0..7] (v[n..7] treated as zero), in lanes 0..7:
** lane pairs, then 128-bit quarters, then within quarters, so 8 sums cost
** about as much as 2 separate horizontal sums.
*/
INLINE512 __m512 hsum8_512(const __m512 *v, int n)
{
    __m512 w[8];
    UNROLL
    for (int j = 0; j < 8; j++)
        w[j] = j < n ? v[j] : _mm512_setzero_ps();
    __m512 p[4]; /* p[q] = [halves-sum of w[2q] | halves-sum of w[2q+1]] */
    UNROLL
    for (int q = 0; q < 4; q++)
        p[q] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * q], w[2 * q + 1], 0x44),
                             _mm512_shuffle_f32x4(w[2 * q], w[2 * q + 1], 0xEE));
    /* s0 quarters: w0 w1 w2 w3 (4 partial sums each); s1: w4 .. w7. */
    __m512 s0 = _mm512_add_ps(_mm512_shuffle_f32x4(p[0], p[1], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f32x4(p[0], p[1], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512 s1 = _mm512_add_ps(_mm512_shuffle_f32x4(p[2], p[3], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f32x4(p[2], p[3], _MM_SHUFFLE(3, 1, 3, 1)));
    /* Quarter q: [wq0 w(q+4)0 wq1 w(q+4)1] + [wq2 w(q+4)2 wq3 w(q+4)3]. */
    __m512 z = _mm512_add_ps(_mm512_unpacklo_ps(s0, s1), _mm512_unpackhi_ps(s0, s1));
    z = _mm512_add_ps(z, _mm512_permute_ps(z, _MM_SHUFFLE(1, 0, 3, 2)));
    /* Quarter q now holds [sum wq, sum w(q+4), ...]. */
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_permutexvar_ps(idx, z); /* sums in lanes 0..7 */
}

/*
** One NT tile: mr rows of A against nr rows of B over all K, k in vectors
** of 16 (the tail masked by `ktail`, zero lanes adding nothing).
*/
INLINE512 void nt512_tile(int mr, int nr, __mmask16 ktail, int K, const float *A, size_t lda,
                          const float *B, size_t ldb, float alpha, float beta, float *C,
                          size_t ldc)
{
    __m512 acc[NT512_MR][NT512_NR];
    UNROLL
    for (int i = 0; i < mr; i++)
        UNROLL
        for (int j = 0; j < nr; j++)
            acc[i][j] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 a[NT512_MR];
        UNROLL
        for (int i = 0; i < mr; i++)
            a[i] = _mm512_loadu_ps(A + (size_t)i * lda + k);
        UNROLL
        for (int j = 0; j < nr; j++) {
            __m512 b = _mm512_loadu_ps(B + (size_t)j * ldb + k);
            UNROLL
            for (int i = 0; i < mr; i++)
                acc[i][j] = _mm512_fmadd_ps(a[i], b, acc[i][j]);
        }
    }
    if (k < K) {
        __m512 a[NT512_MR];
        UNROLL
        for (int i = 0; i < mr; i++)
            a[i] = _mm512_maskz_loadu_ps(ktail, A + (size_t)i * lda + k);
        UNROLL
        for (int j = 0; j < nr; j++) {
            __m512 b = _mm512_maskz_loadu_ps(ktail, B + (size_t)j * ldb + k);
            UNROLL
            for (int i = 0; i < mr; i++)
                acc[i][j] = _mm512_fmadd_ps(a[i], b, acc[i][j]);
        }
    }
    /* 512-bit masked stores: plain AVX-512F, no VL needed. */
    const __mmask16 m = (__mmask16)((1u << nr) - 1);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    UNROLL
    for (int i = 0; i < mr; i++) {
        float *c = C + (size_t)i * ldc;
        __m512 r = _mm512_mul_ps(va, hsum8_512(acc[i], nr));
        if (beta != 0.0f)
            r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, c), r);
        _mm512_mask_storeu_ps(c, m, r);
    }
}

#define NT512_CASE(MR, NR)                                                                    \
    case (MR) * 8 + (NR):                                                                     \
        nt512_tile(MR, NR, ktail, K, A, lda, B, ldb, alpha, beta, C, ldc);                    \
        break;
#define NT512_ROW(MR)                                                                         \
    NT512_CASE(MR, 1) NT512_CASE(MR, 2) NT512_CASE(MR, 3) NT512_CASE(MR, 4)                   \
    NT512_CASE(MR, 5) NT512_CASE(MR, 6)

TARGET512 void nt512_tile_any(int mr, int nr, __mmask16 ktail, int K, const float *A,
                              size_t lda, const float *B, size_t ldb, float alpha, float beta,
                              float *C, size_t ldc)
{
    switch (mr * 8 + nr) {
        NT512_ROW(1) NT512_ROW(2) NT512_ROW(3) NT512_ROW(4)
    default:
        break;
    }
}

TARGET512 void nt512(int M, int N, int K, float alpha, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    const __mmask16 ktail = (__mmask16)((1u << (K % 16)) - 1);
    /* The nr rows of B stay in L1 while every row block of A passes. */
    for (int j0 = 0; j0 < N; j0 += NT512_NR) {
        const int nr = N - j0 < NT512_NR ? N - j0 : NT512_NR;
        for (int i0 = 0; i0 < M; i0 += NT512_MR) {
            const int mr = M - i0 < NT512_MR ? M - i0 : NT512_MR;
            nt512_tile_any(mr, nr, ktail, K, A + (size_t)i0 * lda, lda, B + (size_t)j0 * ldb,
                           ldb, alpha, beta, C + (size_t)i0 * ldc + j0, ldc);
        }
    }
}

void gemm_small(int isa, int transB, int M, int N, int K, float alpha, const float *A,
                int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    const size_t la = (size_t)lda, lb = (size_t)ldb, lc = (size_t)ldc;
    if (isa == GEMM_ISA_AVX512) {
        if (transB)
            nt512(M, N, K, alpha, A, la, B, lb, beta, C, lc);
        else
            nn512(M, N, K, alpha, A, la, B, lb, beta, C, lc);
    }
}

#else /* not x86-64 with GNU C: no kernels, cblas does everything */

int gemm_small_isa(void)
{
    return GEMM_ISA_NONE;
}

void gemm_small(int isa, int transB, int M, int N, int K, float alpha, const float *A,
                int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    (void)isa, (void)transB, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda;
    (void)B, (void)ldb, (void)beta, (void)C, (void)ldc;
}

#endif
