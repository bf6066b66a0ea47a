/*
** param: one contiguous parameter buffer with named views (see nlp/params.h).
*/
#include "nlp/params.h"
#include "nlp/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nlp/error.h"
#include "nlp/tensor.h"

int nlp_params_new(nlp_params **out)
{
    *out = nlp_calloc(1, sizeof(nlp_params));
    return *out ? NLP_OK : NLP_ENOMEM;
}

void nlp_params_free(nlp_params *p)
{
    if (!p)
        return;
    nlp_tensor_free(p->data);
    nlp_tensor_free(p->grad);
    nlp_free(p->views);
    nlp_free(p);
}

int nlp_params_index(const nlp_params *p, const char *name)
{
    for (int i = 0; i < p->nviews; i++)
        if (strcmp(p->views[i].name, name) == 0)
            return i;
    return -1;
}

const nlp_params_view *nlp_params_find(const nlp_params *p, const char *name)
{
    int i = nlp_params_index(p, name);
    return i < 0 ? NULL : &p->views[i];
}

int nlp_params_add(nlp_params *p, const char *name, int ndim, const int *shape)
{
    if (!p || p->data || !name || !*name || ndim < 1 || ndim > NLP_PARAM_MAX_DIMS || !shape)
        return NLP_EINVAL;
    if (strlen(name) >= NLP_PARAM_NAME_MAX)
        return NLP_ERANGE;
    if (nlp_params_index(p, name) >= 0)
        return NLP_EINVAL;
    size_t size = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1)
            return NLP_EINVAL;
        if (size > SIZE_MAX / 4 / (size_t)shape[d])
            return NLP_ERANGE;
        size *= (size_t)shape[d];
    }
    size_t offset = (p->n + NLP_PARAM_ALIGN - 1) / NLP_PARAM_ALIGN * NLP_PARAM_ALIGN;
    if (offset > SIZE_MAX / 4 - size - NLP_PARAM_ALIGN)
        return NLP_ERANGE;
    if (p->nviews == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        nlp_params_view *v = nlp_realloc(p->views, (size_t)cap * sizeof *v);
        if (!v)
            return NLP_ENOMEM;
        p->views = v;
        p->cap = cap;
    }
    nlp_params_view *v = &p->views[p->nviews];
    memset(v, 0, sizeof *v);
    strcpy(v->name, name);
    v->ndim = ndim;
    for (int d = 0; d < NLP_PARAM_MAX_DIMS; d++)
        v->shape[d] = d < ndim ? shape[d] : 1;
    v->offset = offset;
    v->size = size;
    p->n = offset + size;
    return p->nviews++;
}

int nlp_params_alloc(nlp_params *p)
{
    if (!p || p->data || p->nviews == 0)
        return NLP_EINVAL;
    /* Round the end up too, so a vectorised loop over n never straddles. */
    size_t n = (p->n + NLP_PARAM_ALIGN - 1) / NLP_PARAM_ALIGN * NLP_PARAM_ALIGN;
    float *d = nlp_tensor_alloc(n), *g = nlp_tensor_alloc(n);
    if (!d || !g) {
        nlp_tensor_free(d);
        nlp_tensor_free(g);
        return NLP_ENOMEM;
    }
    p->data = d;
    p->grad = g;
    p->n = n;
    return NLP_OK;
}

void nlp_params_zero_grad(nlp_params *p)
{
    if (p && p->grad)
        memset(p->grad, 0, p->n * sizeof(float));
}

float *nlp_params_data(const nlp_params *p, int i)
{
    if (!p->data || i < 0 || i >= p->nviews)
        return NULL;
    return p->data + p->views[i].offset;
}

float *nlp_params_grad(const nlp_params *p, int i)
{
    if (!p->grad || i < 0 || i >= p->nviews)
        return NULL;
    return p->grad + p->views[i].offset;
}

size_t nlp_params_count(const nlp_params *p)
{
    size_t s = 0;
    for (int i = 0; i < p->nviews; i++)
        s += p->views[i].size;
    return s;
}
