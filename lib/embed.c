/*
** embed: embedding lookup with a sparse backward (see nlp/embed.h).
*/
#include "nlp/embed.h"

#include <stdio.h>
#include <string.h>

#include "nlp/error.h"
#include "nlp/tensor.h"

int nlp_embed_init(nlp_embed *e, nlp_params *p, const char *name, int V, int E)
{
    char full[NLP_PARAM_NAME_MAX + 16];
    if (!e || !name || V < 1 || E < 1)
        return NLP_EINVAL;
    snprintf(full, sizeof full, "%s.weight", name);
    int shape[2] = {V, E};
    int w = nlp_params_add(p, full, 2, shape);
    if (w < 0)
        return w;
    e->params = p;
    e->w = w;
    e->V = V;
    e->E = E;
    return NLP_OK;
}

void nlp_embed_reset(nlp_embed *e, nlp_rng *r)
{
    nlp_tensor_normal(nlp_params_data(e->params, e->w), (size_t)e->V * e->E, 0.0f, 1.0f, r);
}

int nlp_embed_forward(const nlp_embed *e, float *out, const int *ids, int n)
{
    const float *W = nlp_params_data(e->params, e->w);
    size_t E = (size_t)e->E;
    int rc = NLP_OK;
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * E;
        if (ids[i] < 0)
            memset(o, 0, E * sizeof(float));
        else if (ids[i] >= e->V) {
            memset(o, 0, E * sizeof(float));
            rc = NLP_ERANGE;
        } else
            memcpy(o, W + (size_t)ids[i] * E, E * sizeof(float));
    }
    return rc;
}

void nlp_embed_backward(nlp_embed *e, const float *dout, const int *ids, int n)
{
    float *G = nlp_params_grad(e->params, e->w);
    size_t E = (size_t)e->E;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= e->V)
            continue;
        float *g = G + (size_t)ids[i] * E;
        const float *d = dout + (size_t)i * E;
        for (size_t j = 0; j < E; j++)
            g[j] += d[j];
    }
}
