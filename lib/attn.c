/*
** attn: dot, general and additive attention, forward and backward.
** See nlp/attn.h for the shapes and the calling sequence.
**
** The encoder states are time-major (S,B,H), so the S states of batch row b
** are rows of a matrix with leading dimension B*H: the scores of row b are
** one sgemv over that strided matrix, the context one transposed sgemv, and
** the rank-1 gradient updates one K=1 sgemm.  The query-independent key
** projections (general, additive) are one GEMM over all S*B states, done
** once per source batch, and their gradient one GEMM after all decoder
** steps.
*/
#include "nlp/attn.h"
#include "nlp/alloc.h"
#include "nlp/error.h"
#include "nlp/tensor.h"
#include "fastmath.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nlp_attn {
    nlp_attn_kind kind;
    int hq, hk, ha;       /* query, key, additive hidden sizes */
    int max_S, max_B;     /* scratch capacity */
    nlp_params *p;        /* where the parameters live (not owned) */
    int vw, vwq, vwk, vv; /* view indices: general W; additive Wq, Wk, v; -1 absent */
    float *dscore;        /* (max_B, max_S) backward scratch */
    float *dqa;           /* (max_B, ha) additive backward scratch: dL/d(Wq q) */
};

size_t nlp_attn_nparams(nlp_attn_kind kind, int hq, int hk, int ha)
{
    if (hq < 1 || hk < 1)
        return 0;
    switch (kind) {
    case NLP_ATTN_GENERAL: return (size_t)hq * (size_t)hk;
    case NLP_ATTN_ADDITIVE:
        if (ha < 1)
            return 0;
        return (size_t)ha * (size_t)hq + (size_t)ha * (size_t)hk + (size_t)ha;
    case NLP_ATTN_DOT:
    default: return 0;
    }
}

/* Declares "<name>.<suffix>" in p; returns the view index or an error. */
static int declare(nlp_params *p, const char *name, const char *suffix, int ndim, int d0, int d1)
{
    char full[NLP_PARAM_NAME_MAX];
    int shape[2] = { d0, d1 };
    int k = snprintf(full, sizeof full, "%s.%s", name, suffix);
    if (k < 0 || (size_t)k >= sizeof full)
        return NLP_ERANGE;
    return nlp_params_add(p, full, ndim, shape);
}

int nlp_attn_new(nlp_attn **out, nlp_attn_kind kind, int hq, int hk, int ha,
                 int max_S, int max_B, nlp_params *p, const char *name)
{
    *out = NULL;
    if (!p || !name || hq < 1 || hk < 1 || max_S < 1 || max_B < 1)
        return NLP_EINVAL;
    if (kind != NLP_ATTN_DOT && kind != NLP_ATTN_GENERAL && kind != NLP_ATTN_ADDITIVE)
        return NLP_EINVAL;
    if ((kind == NLP_ATTN_DOT && hq != hk) || (kind == NLP_ATTN_ADDITIVE && ha < 1))
        return NLP_EINVAL;
    nlp_attn *a = nlp_calloc(1, sizeof *a);
    if (!a)
        return NLP_ENOMEM;
    a->kind = kind;
    a->hq = hq;
    a->hk = hk;
    a->ha = kind == NLP_ATTN_ADDITIVE ? ha : 0;
    a->max_S = max_S;
    a->max_B = max_B;
    a->p = p;
    a->vw = a->vwq = a->vwk = a->vv = -1;
    int rc = NLP_OK;
    if (kind == NLP_ATTN_GENERAL) {
        rc = a->vw = declare(p, name, "w", 2, hq, hk);
    } else if (kind == NLP_ATTN_ADDITIVE) {
        if ((rc = a->vwq = declare(p, name, "wq", 2, ha, hq)) >= 0 &&
            (rc = a->vwk = declare(p, name, "wk", 2, ha, hk)) >= 0)
            rc = a->vv = declare(p, name, "v", 1, ha, 1);
    }
    if (rc < 0) {
        nlp_attn_free(a);
        return rc;
    }
    a->dscore = nlp_malloc((size_t)max_B * (size_t)max_S * sizeof *a->dscore);
    if (kind == NLP_ATTN_ADDITIVE)
        a->dqa = nlp_malloc((size_t)max_B * (size_t)ha * sizeof *a->dqa);
    if (!a->dscore || (kind == NLP_ATTN_ADDITIVE && !a->dqa)) {
        nlp_attn_free(a);
        return NLP_ENOMEM;
    }
    *out = a;
    return NLP_OK;
}

void nlp_attn_free(nlp_attn *a)
{
    if (!a)
        return;
    nlp_free(a->dscore);
    nlp_free(a->dqa);
    nlp_free(a);
}

nlp_attn_kind nlp_attn_get_kind(const nlp_attn *a, int *hq, int *hk, int *ha)
{
    if (hq)
        *hq = a->hq;
    if (hk)
        *hk = a->hk;
    if (ha)
        *ha = a->ha;
    return a->kind;
}

void nlp_attn_reset(nlp_attn *a, nlp_rng *rng)
{
    const int views[4] = { a->vw, a->vwq, a->vwk, a->vv };
    for (int i = 0; i < 4; i++) {
        int v = views[i];
        if (v < 0)
            continue;
        const nlp_params_view *pv = &a->p->views[v];
        /* fan_in: the columns of a matrix; for v, its length ha. */
        int fan_in = pv->ndim == 2 ? pv->shape[1] : pv->shape[0];
        float bound = 1.0f / sqrtf((float)fan_in);
        nlp_tensor_uniform(nlp_params_data(a->p, v), pv->size, -bound, bound, rng);
    }
}

int nlp_attn_key_dim(const nlp_attn *a)
{
    switch (a->kind) {
    case NLP_ATTN_GENERAL: return a->hq;
    case NLP_ATTN_ADDITIVE: return a->ha;
    case NLP_ATTN_DOT:
    default: return 0;
    }
}

size_t nlp_attn_cache_size(const nlp_attn *a, int B)
{
    return a->kind == NLP_ATTN_ADDITIVE && B > 0 ? (size_t)B * (size_t)a->ha : 0;
}

static int check_sizes(const nlp_attn *a, int S, int B)
{
    if (S < 1 || B < 1)
        return NLP_EINVAL;
    if (S > a->max_S || B > a->max_B)
        return NLP_ERANGE;
    return NLP_OK;
}

static int check_lengths(const int *lengths, int S, int B)
{
    if (lengths)
        for (int b = 0; b < B; b++)
            if (lengths[b] < 0 || lengths[b] > S)
                return NLP_EINVAL;
    return NLP_OK;
}

/* The projection matrix applied to enc in the keys: W or Wk. */
static int key_view(const nlp_attn *a)
{
    return a->kind == NLP_ATTN_GENERAL ? a->vw : a->vwk;
}

int nlp_attn_keys_forward(const nlp_attn *a, float *keys, const float *enc, int S, int B)
{
    int rc = check_sizes(a, S, B);
    if (rc != NLP_OK || a->kind == NLP_ATTN_DOT)
        return rc;
    int kd = nlp_attn_key_dim(a);
    const float *W = nlp_params_data(a->p, key_view(a));  /* (kd,hk) */
    nlp_tensor_gemm(NLP_NOTRANS, NLP_TRANS, S * B, kd, a->hk, 1.0f, enc, a->hk, W, a->hk,
             0.0f, keys, kd);
    return NLP_OK;
}

int nlp_attn_keys_backward(nlp_attn *a, float *denc, const float *dkeys,
                           const float *enc, int S, int B)
{
    int rc = check_sizes(a, S, B);
    if (rc != NLP_OK || a->kind == NLP_ATTN_DOT)
        return rc;
    int kd = nlp_attn_key_dim(a), v = key_view(a);
    const float *W = nlp_params_data(a->p, v);
    float *dW = nlp_params_grad(a->p, v);
    if (denc)
        nlp_tensor_gemm(NLP_NOTRANS, NLP_NOTRANS, S * B, a->hk, kd, 1.0f, dkeys, kd, W, a->hk,
                 1.0f, denc, a->hk);
    nlp_tensor_gemm(NLP_TRANS, NLP_NOTRANS, kd, a->hk, S * B, 1.0f, dkeys, kd, enc, a->hk,
             1.0f, dW, a->hk);
    return NLP_OK;
}

/* In-place softmax over the first L entries of w (S); the rest set to 0. */
static void masked_softmax(float *w, int L, int S)
{
    if (L > 0) {
        float mx = w[0];
        for (int s = 1; s < L; s++)
            if (w[s] > mx)
                mx = w[s];
        double sum = 0.0;
        for (int s = 0; s < L; s++) {
            w[s] = expf(w[s] - mx);
            sum += w[s];
        }
        float inv = (float)(1.0 / sum);
        for (int s = 0; s < L; s++)
            w[s] *= inv;
    }
    for (int s = L; s < S; s++)
        w[s] = 0.0f;
}

/* The additive score of one (query, key) pair: v . tanh(k + qa), on
** fastmath's vectorised tanh (glibc's scalar tanhf was an eighth of a
** Bahdanau training step). */
FASTMATH_KERNEL float additive_score(int ha, const float *restrict k, const float *restrict qa,
                                     const float *restrict v)
{
    float sc = 0.0f;
#pragma omp simd reduction(+ : sc)
    for (int j = 0; j < ha; j++)
        sc += v[j] * fm_tanh(k[j] + qa[j]);
    return sc;
}

/* Its backward for the score gradient d: dv += d t, and d(Wq q) and
** d(keys) (dk may be NULL) += d v (1 - t^2), t = tanh(k + qa). */
FASTMATH_KERNEL void additive_backward(int ha, float d, const float *restrict k,
                                       const float *restrict qa, const float *restrict v,
                                       float *restrict dv, float *restrict dqa,
                                       float *restrict dk)
{
    if (dk) {
#pragma omp simd
        for (int j = 0; j < ha; j++) {
            float t = fm_tanh(k[j] + qa[j]);
            float dpre = d * v[j] * (1.0f - t * t);
            dv[j] += d * t;
            dqa[j] += dpre;
            dk[j] += dpre;
        }
    } else {
#pragma omp simd
        for (int j = 0; j < ha; j++) {
            float t = fm_tanh(k[j] + qa[j]);
            dv[j] += d * t;
            dqa[j] += d * v[j] * (1.0f - t * t);
        }
    }
}

int nlp_attn_forward(const nlp_attn *a, float *ctx, float *weights, float *cache,
                     const float *q, const float *enc, const float *keys,
                     const int *lengths, int S, int B)
{
    int rc = check_sizes(a, S, B);
    if (rc == NLP_OK)
        rc = check_lengths(lengths, S, B);
    if (rc != NLP_OK)
        return rc;
    const int hq = a->hq, hk = a->hk, ha = a->ha;
    const size_t ldk = (size_t)B * (size_t)hk;

    /* Scores into weights (B,S). */
    if (a->kind == NLP_ATTN_ADDITIVE) {
        const float *Wq = nlp_params_data(a->p, a->vwq);  /* (ha,hq) */
        const float *v = nlp_params_data(a->p, a->vv);    /* (ha) */
        nlp_tensor_gemm(NLP_NOTRANS, NLP_TRANS, B, ha, hq, 1.0f, q, hq, Wq, hq, 0.0f, cache, ha);
        for (int b = 0; b < B; b++) {
            int L = lengths ? lengths[b] : S;
            const float *qa = cache + (size_t)b * ha;
            for (int s = 0; s < L; s++) {
                const float *k = keys + ((size_t)s * B + b) * ha;
                weights[(size_t)b * S + s] = additive_score(ha, k, qa, v);
            }
        }
    } else {
        /* dot: keys are enc (kd = hk = hq); general: keys (S,B,hq). */
        const float *K = a->kind == NLP_ATTN_DOT ? enc : keys;
        for (int b = 0; b < B; b++) {
            int L = lengths ? lengths[b] : S;
            if (L > 0)
                nlp_tensor_gemv(NLP_NOTRANS, L, hq, 1.0f, K + (size_t)b * hq, B * hq,
                         q + (size_t)b * hq, 0.0f, weights + (size_t)b * S);
        }
    }

    for (int b = 0; b < B; b++) {
        int L = lengths ? lengths[b] : S;
        float *w = weights + (size_t)b * S;
        float *c = ctx + (size_t)b * hk;
        masked_softmax(w, L, S);
        memset(c, 0, (size_t)hk * sizeof *c);
        if (L > 0)
            nlp_tensor_gemv(NLP_TRANS, L, hk, 1.0f, enc + (size_t)b * hk, (int)ldk, w, 0.0f, c);
    }
    return NLP_OK;
}

int nlp_attn_backward(nlp_attn *a, float *dq, float *denc, float *dkeys,
                      const float *dctx, const float *dweights,
                      const float *q, const float *enc, const float *keys,
                      const int *lengths, const float *weights, const float *cache,
                      int S, int B)
{
    int rc = check_sizes(a, S, B);
    if (rc == NLP_OK)
        rc = check_lengths(lengths, S, B);
    if (rc != NLP_OK)
        return rc;
    const int hq = a->hq, hk = a->hk, ha = a->ha;
    const int ldk = B * hk;

    /* Through the context and the softmax: dscore (B,S). */
    for (int b = 0; b < B; b++) {
        int L = lengths ? lengths[b] : S;
        float *ds = a->dscore + (size_t)b * S;
        const float *w = weights + (size_t)b * S;
        const float *dc = dctx + (size_t)b * hk;
        if (L == 0)
            continue;
        /* dL/dw[s] = dctx . enc[s] (+ the caller's dweights). */
        nlp_tensor_gemv(NLP_NOTRANS, L, hk, 1.0f, enc + (size_t)b * hk, ldk, dc, 0.0f, ds);
        if (dweights)
            for (int s = 0; s < L; s++)
                ds[s] += dweights[(size_t)b * S + s];
        /* denc[s] += w[s] * dctx: a rank-1 update of the strided (L,hk). */
        if (denc)
            nlp_tensor_gemm(NLP_NOTRANS, NLP_NOTRANS, L, hk, 1, 1.0f, w, 1, dc, hk, 1.0f,
                     denc + (size_t)b * hk, ldk);
        /* softmax: dscore = w * (dw - sum w dw). */
        double dot = 0.0;
        for (int s = 0; s < L; s++)
            dot += (double)w[s] * ds[s];
        for (int s = 0; s < L; s++)
            ds[s] = w[s] * (ds[s] - (float)dot);
    }

    if (a->kind == NLP_ATTN_ADDITIVE) {
        const float *Wq = nlp_params_data(a->p, a->vwq);
        const float *v = nlp_params_data(a->p, a->vv);
        float *dWq = nlp_params_grad(a->p, a->vwq);
        float *dv = nlp_params_grad(a->p, a->vv);
        float *dqa = a->dqa;
        memset(dqa, 0, (size_t)B * ha * sizeof *dqa);
        for (int b = 0; b < B; b++) {
            int L = lengths ? lengths[b] : S;
            const float *qa = cache + (size_t)b * ha;
            float *dqa_b = dqa + (size_t)b * ha;
            const float *ds = a->dscore + (size_t)b * S;
            for (int s = 0; s < L; s++) {
                size_t row = ((size_t)s * B + b) * ha;
                const float *k = keys + row;
                float *dk = dkeys ? dkeys + row : NULL;
                additive_backward(ha, ds[s], k, qa, v, dv, dqa_b, dk);
            }
        }
        /* dq += dqa Wq;  dWq += dqa^T q. */
        if (dq)
            nlp_tensor_gemm(NLP_NOTRANS, NLP_NOTRANS, B, hq, ha, 1.0f, dqa, ha, Wq, hq, 1.0f, dq, hq);
        nlp_tensor_gemm(NLP_TRANS, NLP_NOTRANS, ha, hq, B, 1.0f, dqa, ha, q, hq, 1.0f, dWq, hq);
        return NLP_OK;
    }

    /* dot / general: score[b,s] = q_b . K[s,b]. */
    const float *K = a->kind == NLP_ATTN_DOT ? enc : keys;
    float *dK = a->kind == NLP_ATTN_DOT ? denc : dkeys;
    for (int b = 0; b < B; b++) {
        int L = lengths ? lengths[b] : S;
        if (L == 0)
            continue;
        const float *ds = a->dscore + (size_t)b * S;
        if (dq)
            nlp_tensor_gemv(NLP_TRANS, L, hq, 1.0f, K + (size_t)b * hq, B * hq, ds, 1.0f,
                     dq + (size_t)b * hq);
        if (dK)
            nlp_tensor_gemm(NLP_NOTRANS, NLP_NOTRANS, L, hq, 1, 1.0f, ds, 1, q + (size_t)b * hq, hq,
                     1.0f, dK + (size_t)b * hq, B * hq);
    }
    return NLP_OK;
}

const char *nlp_attn_kind_name(nlp_attn_kind kind)
{
    switch (kind) {
    case NLP_ATTN_DOT: return "dot";
    case NLP_ATTN_GENERAL: return "general";
    case NLP_ATTN_ADDITIVE: return "additive";
    default: return NULL;
    }
}

int nlp_attn_kind_parse(const char *name, nlp_attn_kind *kind)
{
    if (!name)
        return NLP_EINVAL;
    if (strcmp(name, "dot") == 0)
        *kind = NLP_ATTN_DOT;
    else if (strcmp(name, "general") == 0 || strcmp(name, "luong") == 0)
        *kind = NLP_ATTN_GENERAL;
    else if (strcmp(name, "additive") == 0 || strcmp(name, "bahdanau") == 0 ||
             strcmp(name, "concat") == 0)
        *kind = NLP_ATTN_ADDITIVE;
    else
        return NLP_EINVAL;
    return NLP_OK;
}
