/*
** gradcheck: finite-difference gradient checks for the unit tests.
**
** Header-only (static functions), shared by the tests of every layer:
**
**     static double loss_fn(void *ctx) { ... forward, return a scalar ... }
**     gc_result res = gc_check(param, analytic_grad, n, loss_fn, ctx, &opt);
**     assert_true(res.max_rel < opt.tol);     // or gc_assert(&res, &opt)
**
** Numerical gradient: central differences  (L(x+h) - L(x-h)) / (2h),  with
** the float parameter perturbed in place and restored bit-exactly, h taken
** as the difference actually representable in float ((float)(x+h) - x) and
** everything computed in double.  Truncation error is O(h^2 L''').
**
** Error metric (per checked element):
**     rel = |a - num| / max(|a|, |num|, floor)
** the usual relative error, with an absolute floor so that elements whose
** true gradient is ~0 are judged by absolute error |a - num| / floor
** instead of dividing rounding noise by ~0.
**
** Choosing h, floor and tol: the layers compute in float32, so each loss
** evaluation carries rounding noise of roughly e = k * 6e-8 * sqrt(sum of
** the squared terms of the loss) (independent roundings add like a random
** walk; k ~ 3 for a few operations per term).  The difference quotient
** carries e/h of it, while the truncation error grows like h^2 L'''/6.  For
** the tiny layers of the tests (losses of ~100 terms of size ~0.3) e/h is
** ~2e-4 at h = 1e-3 and the truncation error is still ~1e-5 at h = 5e-3,
** so h = 5e-3 balances the two.  Measured on the rnn test matrix (every
** cell, depth, direction, mask, dropout) the worst rel with floor 1e-2 is
** below 1e-2 (9e-3); tol = 3e-2 leaves a 3x margin, and a real bug (a
** missing term, a wrong sign or index, a 10% error in one element) gives
** rel >= 0.09 on some element, so it is still caught (the tests include a
** deliberately wrong gradient to show it).  Compute the loss in double (e.g.
** sum of y[i] * fixed random weights, gc_dot) so it adds no rounding.
**
** Non-finite values never pass: an analytic or numerical gradient that is
** NaN or infinite (a NaN loss gives a NaN difference quotient) counts as
** an infinite error, so it is the worst element and fails any tolerance.
** (A plain "rel > tol" test would let NaN through, since every comparison
** with NaN is false.)
*/
#ifndef NLP_TESTS_GRADCHECK_H
#define NLP_TESTS_GRADCHECK_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>

/* Computes the scalar loss at the current parameters (read through ctx). */
typedef double (*gc_loss_fn)(void *ctx);

typedef struct gc_options {
    double h;         /* perturbation, default 5e-3 */
    double floor;     /* denominator floor of the relative error, 1e-2 */
    double tol;       /* pass when max_rel < tol, 3e-2 */
    size_t max_check; /* check at most this many elements, spread evenly
                         over the n (0 = all); default 0 */
    int verbose;      /* print each element to stderr; default 0 */
    const char *label; /* name printed in messages; default "param" */
    int richardson;   /* 1: also differences at 2h and combine the two,
                         (4 d(h) - d(2h)) / 3, cancelling the h^2 error
                         (the five-point stencil), so a larger h can
                         lower the rounding noise of a deep loss; default 0 */
} gc_options;

typedef struct gc_result {
    double max_rel;   /* largest relative error seen */
    size_t worst;     /* index of that element */
    double worst_a;   /* analytic gradient there */
    double worst_num; /* numerical gradient there */
    size_t checked;   /* elements checked */
    size_t nonfinite; /* elements whose analytic or numerical gradient is
                         NaN or infinite (each fails the check) */
} gc_result;

static inline gc_options gc_defaults(void)
{
    gc_options o = {5e-3, 1e-2, 3e-2, 0, 0, "param", 0};
    return o;
}

/* The relative error of one element; INFINITY when a or num is not finite. */
static inline double gc_rel_error(double a, double num, double floor)
{
    if (!isfinite(a) || !isfinite(num))
        return INFINITY;
    double d = fabs(a), e = fabs(num);
    double den = d > e ? d : e;
    if (den < floor)
        den = floor;
    return fabs(a - num) / den;
}

/*
** 1 when r passes opt's tolerance: every checked element finite and the
** worst relative error below tol (a NaN anywhere fails).  Does not assert,
** so a test can check that a bad gradient is reported.
*/
static inline int gc_ok(const gc_result *r, const gc_options *opt)
{
    double tol = opt ? opt->tol : gc_defaults().tol;
    return r->checked > 0 && r->nonfinite == 0 && isfinite(r->max_rel) && r->max_rel < tol;
}

/*
** Compares the analytic gradient grad (n) of the loss with respect to x (n)
** with central differences of f(ctx) (which must read x).  x is restored
** exactly.  grad must have been computed at the current x and is not
** changed (so it may live in a buffer f does not touch).  Returns the
** worst element; prints it to stderr (with opt->label) when it fails.
*/
static inline gc_result gc_check(float *x, const float *grad, size_t n,
                                 gc_loss_fn f, void *ctx, const gc_options *opt)
{
    gc_options o = opt ? *opt : gc_defaults();
    gc_result r = {0, 0, 0, 0, 0, 0};
    size_t stride = 1;
    if (o.max_check && n > o.max_check)
        stride = (n + o.max_check - 1) / o.max_check;
    for (size_t i = 0; i < n; i += stride) {
        float x0 = x[i];
        float xp = (float)(x0 + o.h), xm = (float)(x0 - o.h);
        x[i] = xp;
        double lp = f(ctx);
        x[i] = xm;
        double lm = f(ctx);
        x[i] = x0;
        double num = (lp - lm) / ((double)xp - (double)xm);
        if (o.richardson) {
            float xp2 = (float)(x0 + 2 * o.h), xm2 = (float)(x0 - 2 * o.h);
            x[i] = xp2;
            double lp2 = f(ctx);
            x[i] = xm2;
            double lm2 = f(ctx);
            x[i] = x0;
            num = (4 * num - (lp2 - lm2) / ((double)xp2 - (double)xm2)) / 3;
        }
        double rel = gc_rel_error(grad[i], num, o.floor);
        if (o.verbose)
            fprintf(stderr, "%s[%zu]: analytic %.8g numerical %.8g rel %.3g\n",
                    o.label ? o.label : "param", i, (double)grad[i], num, rel);
        if (!isfinite(grad[i]) || !isfinite(num))
            r.nonfinite++;
        if (rel > r.max_rel || r.checked == 0) {
            r.max_rel = rel;
            r.worst = i;
            r.worst_a = grad[i];
            r.worst_num = num;
        }
        r.checked++;
    }
    if (!gc_ok(&r, &o))
        fprintf(stderr, "gradcheck %s: element %zu analytic %.8g numerical %.8g "
                "rel error %.3g >= tol %.3g (%zu checked, %zu not finite)\n",
                o.label ? o.label : "param", r.worst, r.worst_a, r.worst_num,
                r.max_rel, o.tol, r.checked, r.nonfinite);
    return r;
}

/*
** Fills w (n) with fixed pseudo-random weights in [-1,1) from a tiny LCG
** seeded by seed, for "loss = sum w[i] * y[i]" projections that make every
** output matter with a different weight.  No libnlp dependency.
*/
static inline void gc_weights(double *w, size_t n, unsigned long seed)
{
    unsigned long long s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        w[i] = (double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
    }
}

/* sum w[i] * y[i] in double: the usual test loss; dL/dy[i] = w[i]. */
static inline double gc_dot(const double *w, const float *y, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += w[i] * (double)y[i];
    return s;
}

#endif
