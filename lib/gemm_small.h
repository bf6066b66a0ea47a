/*
** gemm_small: private single-precision GEMM kernels for few rows (the
** per-timestep recurrent products, M = batch rows), where cblas_sgemm
** spends as long packing B as multiplying.  These read B in place.
** Not part of the public API (nothing here starts with nlp_).
*/
#ifndef GEMM_SMALL_H
#define GEMM_SMALL_H

/* Instruction sets a kernel can be built for, best last. */
enum { GEMM_ISA_NONE = 0, GEMM_ISA_AVX512 = 2 };

/* Largest M for which gemm_small() beats cblas_sgemm here (bench/gemm.sh). */
#define GEMM_SMALL_MAX_M 64

/* GEMM_ISA_AVX512 when this CPU (and its OS) supports it, else NONE. */
int gemm_small_isa(void);

/*
** C = alpha * A op(B) + beta * C, row-major, A not transposed: A is (M,K)
** with lda >= K; B is (K,N) with ldb >= N, or (N,K) with ldb >= K when
** transB; C is (M,N) with ldc >= N.  M, N, K >= 1.  beta == 0 never reads
** C.  isa is GEMM_ISA_AVX512, which gemm_small_isa() must have reported
** (other CPUs keep cblas_sgemm).
*/
void gemm_small(int isa, int transB, int M, int N, int K, float alpha, const float *A,
                int lda, const float *B, int ldb, float beta, float *C, int ldc);

#endif
