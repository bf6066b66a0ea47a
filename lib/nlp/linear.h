/*
** linear: dense layer y = x W^T + b, forward and backward.
**
** Parameters "<name>.weight" (out,in) and, when bias is on, "<name>.bias"
** (out), as torch.nn.Linear, live in an nlp_params buffer.  Rows are
** independent: a time-major activation (T,B,in) is n = T*B rows.  One GEMM
** each way; the weight gradient over all n rows is one GEMM.
**
** nlp_linear is a small value struct the caller embeds in its model (no
** _new/_free, it owns no memory).
*/
#ifndef NLP_LINEAR_H
#define NLP_LINEAR_H

#include <nlp/params.h>
#include <nlp/rng.h>

typedef struct nlp_linear {
    nlp_params *params; /* where W and b live (not owned) */
    int w;              /* view index of "<name>.weight" (out,in) */
    int b;              /* view index of "<name>.bias" (out), -1 without bias */
    int in;             /* input features */
    int out;            /* output features */
} nlp_linear;

/*
** Layout phase: declares the weight (out,in) and, if bias != 0, the bias
** (out) in p, and fills l.  in, out >= 1.  Returns NLP_OK or the error of
** nlp_params_add().
*/
int nlp_linear_init(nlp_linear *l, nlp_params *p, const char *name, int in,
                    int out, int bias);

/*
** After nlp_params_alloc: weight and bias uniform in +-1/sqrt(in), the
** default of torch.nn.Linear, drawn from r (weight first).
*/
void nlp_linear_reset(nlp_linear *l, nlp_rng *r);

/* y (n,out) = x (n,in) W^T + b.  y is overwritten; it must not alias x. */
void nlp_linear_forward(const nlp_linear *l, float *y, const float *x, int n);

/*
** Backward of forward(y, x, n) given dy (n,out) = dL/dy:
**   dx (n,in) += dy W   (skipped when dx is NULL: input needs no gradient)
**   grad W (out,in) += dy^T x,   grad b (out) += sum over rows of dy.
** x (n,in) is the same input given to forward.
*/
void nlp_linear_backward(nlp_linear *l, float *dx, const float *dy,
                         const float *x, int n);

#endif
