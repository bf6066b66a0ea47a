/*
** tensor: float32 row-major arrays, BLAS wrappers, initialisers, dropout.
**
** libnlp keeps tensors as plain `float *` over contiguous row-major memory
** (llm.c style): a (T,B,H) tensor is T*B*H floats with H varying fastest.
** Shapes are written next to every argument.  The matrix products go to
** OpenBLAS through the thin wrappers below, so the rest of the library
** never includes <cblas.h> and the thread count is set in one place.
**
** Randomness always comes from a caller-owned nlp_rng (nlp/rng.h): the same
** seed gives the same initial weights and the same dropout masks.
*/
#ifndef NLP_TENSOR_H
#define NLP_TENSOR_H

#include <stddef.h>

#include <nlp/rng.h>

/* ---- memory -------------------------------------------------------- */

/*
** Allocates n floats aligned to 64 bytes (a cache line / AVX-512 vector),
** all set to zero.  Returns NULL when out of memory or n == 0.  Release
** with nlp_tensor_free().
*/
float *nlp_tensor_alloc(size_t n);

/* Releases memory from nlp_tensor_alloc().  NULL is a no-op. */
void nlp_tensor_free(float *p);

/* ---- BLAS wrappers -------------------------------------------------- */

/* Transposition flags for nlp_tensor_gemm/nlp_tensor_gemv. */
enum { NLP_NOTRANS = 0, NLP_TRANS = 1 };

/*
** C = alpha * op(A) op(B) + beta * C, all row-major (cblas_sgemm).
** op(A) is (M,K): A is (M,K) with leading dimension lda >= K, or, with
** transA == NLP_TRANS, A is (K,M) with lda >= M.  op(B) is (K,N): B is (K,N)
** with ldb >= N, or (N,K) with ldb >= K when transposed.  C is (M,N) with
** ldc >= N.  beta == 0 overwrites C (NaN in C does not propagate).
** M, N or K == 0 is allowed (K == 0 scales C by beta).
*/
void nlp_tensor_gemm(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta,
              float *C, int ldc);

/*
** y = alpha * op(A) x + beta * y (cblas_sgemv).  A is (M,N) row-major with
** lda >= N.  Without transposition x is (N) and y is (M); with
** trans == NLP_TRANS, x is (M) and y is (N).
*/
void nlp_tensor_gemv(int trans, int M, int N, float alpha, const float *A, int lda,
              const float *x, float beta, float *y);

/* y += alpha * x; x, y are (n) (cblas_saxpy). */
void nlp_tensor_axpy(size_t n, float alpha, const float *x, float *y);

/*
** Sets the number of threads OpenBLAS uses for every following call in the
** process (openblas_set_num_threads); n < 1 means 1.  This is process-wide
** state owned by OpenBLAS, not by libnlp: tools call it once from main()
** for --threads.  nlp_tensor_threads() returns the current count.
*/
void nlp_tensor_set_threads(int n);
int nlp_tensor_threads(void);

/* ---- initialisers ----------------------------------------------------- */

/* w (n) = uniform in [lo, hi). */
void nlp_tensor_uniform(float *w, size_t n, float lo, float hi, nlp_rng *r);

/* w (n) = normal(mean, std). */
void nlp_tensor_normal(float *w, size_t n, float mean, float std, nlp_rng *r);

/*
** Xavier/Glorot uniform for a weight w (rows, cols) used as y = x w^T,
** i.e. fan_out = rows, fan_in = cols: uniform in +-gain*sqrt(6/(rows+cols))
** (Glorot and Bengio 2010).  gain 1 for linear/sigmoid layers.
*/
void nlp_tensor_xavier(float *w, int rows, int cols, float gain, nlp_rng *r);

/*
** Orthogonal initialisation (Saxe et al. 2014) of w (rows, cols), row-major
** with leading dimension ld >= cols: a Gaussian matrix orthonormalised by
** Gram-Schmidt (classical, applied twice, in BLAS), then scaled by gain.
** When rows <= cols the rows come out orthonormal, otherwise the columns.
** For a recurrent weight (G*H, H) call it once per (H,H) gate block.
** Needs no memory; never fails.
*/
void nlp_tensor_orthogonal(float *w, int rows, int cols, int ld, float gain,
                           nlp_rng *r);

/* ---- dropout --------------------------------------------------------- */

/*
** Inverted dropout over n values: mask[i] = 0 with probability p and
** 1/(1-p) otherwise, out[i] = in[i] * mask[i].  p in [0,1); p == 0 sets
** mask to 1 and draws nothing.  out may equal in.  mask (n) is kept for the
** backward pass.  One nlp_rng_uniform() is drawn per element, in order, so
** the same rng state gives the same mask.
*/
void nlp_tensor_dropout_forward(float *out, float *mask, const float *in, size_t n,
                         float p, nlp_rng *r);

/* din (n) += dout (n) * mask (n).  din may equal dout (then it is
** overwritten with dout*mask, not added). */
void nlp_tensor_dropout_backward(float *din, const float *dout, const float *mask,
                          size_t n);

#endif
