/*
** fastmath: branch-free float exp, sigmoid and tanh that the compiler
** vectorises, for the elementwise loops of rnn and attn (internal to
** libnlp, not installed).
**
** glibc's tanhf goes through a scalar expm1f and took a quarter of a
** training step.  exp: Cody-Waite range reduction x = n ln2 + r, |r| <=
** ln2/2, and the degree-5 polynomial of Cephes' expf (about 1 ulp), times
** 2^n built in the exponent bits; n is rounded with the 1.5*2^23 trick,
** which needs no SSE4.1, and never converted from float to int (issue 11).
** tanh: Cephes' tanhf odd polynomial for |x| < 0.625, 1 - 2/(exp(2x) + 1)
** above, selected without a branch.  Error against double: ~2e-7 absolute
** (tests/test_rnn compares with PyTorch to 2e-6).  Inputs of any size and
** +-Inf saturate (exp clamps its argument); NaN gives NaN, so a diverged
** model shows as NaN rather than as a number.
**
** FASTMATH_KERNEL marks a loop function to compile for AVX-512, AVX2+FMA
** and baseline x86-64, picked at load time (target_clones); `omp simd` in
** such a loop asks for vectorisation regardless of the cost model (a no-op
** without OpenMP).
*/
#ifndef NLP_FASTMATH_H
#define NLP_FASTMATH_H

#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define FASTMATH_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static
#else
#define FASTMATH_KERNEL static
#endif

static inline float fm_exp(float x)
{
    /* Clamp so that 2^n below is a normal float.  NaN passes (both
       comparisons are false) and stays NaN through the polynomial. */
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    /* k's low mantissa bits hold the integer n + 2^22 (exactly, as |n| <
       2^22); n is read from those bits rather than by a float-to-int
       conversion, which would be undefined for NaN. */
    float k = x * 1.44269504088896341f + 12582912.0f;
    float n = k - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n from its exponent bits (n + 127 in 1..254 after the clamp;
       unsigned, so a negative n wraps as intended).  Multiplying keeps a
       NaN p NaN, whatever bits k had. */
    union { float f; uint32_t i; } kb = {k}, s;
    s.i = (kb.i - 0x4B400000u + 127u) << 23;
    return p * s.f;
}

static inline float fm_sigmoid(float x)
{
    return 1.0f / (1.0f + fm_exp(-x));
}

static inline float fm_tanh(float x)
{
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float big = 1.0f - 2.0f / (fm_exp(2.0f * x) + 1.0f);
    return z < 0.390625f ? small : big;
}

#endif
