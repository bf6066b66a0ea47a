/*
** linear: y = x W^T + b as GEMMs (see nlp/linear.h).
*/
#include "nlp/linear.h"

#include <math.h>
#include <stdio.h>

#include "nlp/error.h"
#include "nlp/tensor.h"

int nlp_linear_init(nlp_linear *l, nlp_params *p, const char *name, int in,
                    int out, int bias)
{
    char full[NLP_PARAM_NAME_MAX + 16];
    if (!l || !name || in < 1 || out < 1)
        return NLP_EINVAL;
    snprintf(full, sizeof full, "%s.weight", name);
    int wshape[2] = {out, in};
    int w = nlp_params_add(p, full, 2, wshape);
    if (w < 0)
        return w;
    int b = -1;
    if (bias) {
        snprintf(full, sizeof full, "%s.bias", name);
        b = nlp_params_add(p, full, 1, &out);
        if (b < 0)
            return b;
    }
    l->params = p;
    l->w = w;
    l->b = b;
    l->in = in;
    l->out = out;
    return NLP_OK;
}

void nlp_linear_reset(nlp_linear *l, nlp_rng *r)
{
    float a = 1.0f / sqrtf((float)l->in);
    nlp_tensor_uniform(nlp_params_data(l->params, l->w), (size_t)l->out * l->in, -a, a, r);
    if (l->b >= 0)
        nlp_tensor_uniform(nlp_params_data(l->params, l->b), (size_t)l->out, -a, a, r);
}

void nlp_linear_forward(const nlp_linear *l, float *y, const float *x, int n)
{
    const float *W = nlp_params_data(l->params, l->w);
    int O = l->out;
    float beta = 0.0f;
    if (l->b >= 0) {
        /* Broadcast the bias into y, then let the GEMM add onto it. */
        const float *b = nlp_params_data(l->params, l->b);
        for (int i = 0; i < n; i++) {
            float *yi = y + (size_t)i * O;
            for (int j = 0; j < O; j++)
                yi[j] = b[j];
        }
        beta = 1.0f;
    }
    nlp_tensor_gemm(NLP_NOTRANS, NLP_TRANS, n, O, l->in, 1.0f, x, l->in, W, l->in, beta, y, O);
}

void nlp_linear_backward(nlp_linear *l, float *dx, const float *dy,
                         const float *x, int n)
{
    const float *W = nlp_params_data(l->params, l->w);
    float *dW = nlp_params_grad(l->params, l->w);
    int O = l->out, I = l->in;
    if (dx)
        nlp_tensor_gemm(NLP_NOTRANS, NLP_NOTRANS, n, I, O, 1.0f, dy, O, W, I, 1.0f, dx, I);
    nlp_tensor_gemm(NLP_TRANS, NLP_NOTRANS, O, I, n, 1.0f, dy, O, x, I, 1.0f, dW, I);
    if (l->b >= 0) {
        float *db = nlp_params_grad(l->params, l->b);
        for (int i = 0; i < n; i++) {
            const float *d = dy + (size_t)i * O;
            for (int j = 0; j < O; j++)
                db[j] += d[j];
        }
    }
}
