/*
** optim: SGD, Adam, RMSprop over one flat parameter buffer; global-norm
** clipping; learning-rate schedules.  See nlp/optim.h for the update rules,
** which follow torch.optim (single-tensor, non-fused code path) operation
** for operation, in float, so results match PyTorch's to rounding.
**
** Every update is elementwise, so the OpenMP split over elements gives the
** same bits on any thread count.
*/
#include "nlp/optim.h"
#include "nlp/alloc.h"
#include "nlp/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct nlp_optim {
    nlp_optim_config cfg;  /* as given to nlp_optim_new; do not write it:
                              scale the rate with nlp_optim_set_lr_scale */
    size_t n;              /* number of parameters */
    long step;             /* updates done so far; Adam's t is step+1 */
    float *m;              /* (n) SGD/RMSprop momentum buffer, Adam first
                              moment; NULL when the rule needs none */
    float *v;              /* (n) Adam second moment, RMSprop square
                              average; NULL when the rule needs none */
    double lr_scale;       /* factor on the schedule's rate; 1 (see
                              nlp_optim_set_lr_scale) */
};

/* Below this many parameters a parallel loop costs more than it saves. */
#define OPTIM_OMP_MIN 65536

/* torch.nn.utils.clip_grad_norm_ divides by (norm + 1e-6). */
#define CLIP_EPS 1e-6

void nlp_optim_config_default(nlp_optim_config *c, nlp_optim_kind kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->alpha = 0.99;
    c->eps = 1e-8;
    c->gamma = 1.0;
    c->step_size = 1;
    switch (kind) {
    case NLP_OPTIM_ADAM: c->lr = 1e-3; break;
    case NLP_OPTIM_RMSPROP: c->lr = 1e-2; break;
    case NLP_OPTIM_SGD:
    default: c->lr = 0.1; break;
    }
}

static int in01(double x) { return x >= 0.0 && x < 1.0; }

int nlp_optim_config_check(const nlp_optim_config *c)
{
    if (!c)
        return NLP_EINVAL;
    if (c->kind != NLP_OPTIM_SGD && c->kind != NLP_OPTIM_ADAM && c->kind != NLP_OPTIM_RMSPROP)
        return NLP_EINVAL;
    if (!(c->lr > 0.0) || !isfinite(c->lr))
        return NLP_EINVAL;
    if (!in01(c->momentum) || !in01(c->beta1) || !in01(c->beta2) || !in01(c->alpha))
        return NLP_EINVAL;
    if (c->nesterov && !(c->momentum > 0.0))
        return NLP_EINVAL;
    if ((c->kind != NLP_OPTIM_SGD) && (!(c->eps > 0.0) || !isfinite(c->eps)))
        return NLP_EINVAL;
    if (!(c->weight_decay >= 0.0) || !isfinite(c->weight_decay))
        return NLP_EINVAL;
    if (c->schedule != NLP_LR_CONSTANT && c->schedule != NLP_LR_EXP && c->schedule != NLP_LR_STEP)
        return NLP_EINVAL;
    if (c->schedule != NLP_LR_CONSTANT && !(c->gamma > 0.0 && c->gamma <= 1.0))
        return NLP_EINVAL;
    if (c->schedule == NLP_LR_STEP && c->step_size <= 0)
        return NLP_EINVAL;
    if (c->warmup < 0)
        return NLP_EINVAL;
    return NLP_OK;
}

float nlp_optim_lr_at(const nlp_optim_config *c, long t)
{
    if (t < 0)
        t = 0;
    double lr = c->lr;
    switch (c->schedule) {
    case NLP_LR_EXP: lr *= pow(c->gamma, (double)t); break;
    case NLP_LR_STEP: lr *= pow(c->gamma, (double)(t / (c->step_size > 0 ? c->step_size : 1))); break;
    case NLP_LR_CONSTANT:
    default: break;
    }
    if (c->warmup > 0 && t < c->warmup)
        lr *= (double)(t + 1) / (double)c->warmup;
    return (float)lr;
}

int nlp_optim_new(nlp_optim **out, size_t n, const nlp_optim_config *c)
{
    *out = NULL;
    if (n == 0 || !c || nlp_optim_config_check(c) != NLP_OK)
        return NLP_EINVAL;
    nlp_optim *o = nlp_calloc(1, sizeof *o);
    if (!o)
        return NLP_ENOMEM;
    o->cfg = *c;
    o->n = n;
    o->lr_scale = 1.0;
    int need_m = (c->kind == NLP_OPTIM_ADAM) || c->momentum > 0.0;
    int need_v = (c->kind == NLP_OPTIM_ADAM) || (c->kind == NLP_OPTIM_RMSPROP);
    if (need_m && !(o->m = nlp_calloc(n, sizeof *o->m)))
        goto fail;
    if (need_v && !(o->v = nlp_calloc(n, sizeof *o->v)))
        goto fail;
    *out = o;
    return NLP_OK;
fail:
    nlp_optim_free(o);
    return NLP_ENOMEM;
}

void nlp_optim_free(nlp_optim *o)
{
    if (!o)
        return;
    nlp_free(o->m);
    nlp_free(o->v);
    nlp_free(o);
}

void nlp_optim_reset(nlp_optim *o)
{
    if (o->m)
        memset(o->m, 0, o->n * sizeof *o->m);
    if (o->v)
        memset(o->v, 0, o->n * sizeof *o->v);
    o->step = 0;
    o->lr_scale = 1.0;
}

float nlp_optim_lr(const nlp_optim *o)
{
    float lr = nlp_optim_lr_at(&o->cfg, o->step);
    /* Scale 1 keeps the schedule's float exactly. */
    return o->lr_scale == 1.0 ? lr : (float)((double)lr * o->lr_scale);
}

void nlp_optim_set_lr_scale(nlp_optim *o, double scale)
{
    if (isfinite(scale) && scale > 0.0)
        o->lr_scale = scale;
}

double nlp_optim_lr_scale(const nlp_optim *o)
{
    return o->lr_scale;
}

const nlp_optim_config *nlp_optim_get_config(const nlp_optim *o)
{
    return &o->cfg;
}

size_t nlp_optim_size(const nlp_optim *o)
{
    return o->n;
}

long nlp_optim_steps(const nlp_optim *o)
{
    return o->step;
}

float *nlp_optim_m(const nlp_optim *o)
{
    return o->m;
}

float *nlp_optim_v(const nlp_optim *o)
{
    return o->v;
}

int nlp_optim_set_steps(nlp_optim *o, long steps)
{
    if (steps < 0)
        return NLP_EINVAL;
    o->step = steps;
    return NLP_OK;
}

static void step_sgd(const nlp_optim *o, float *restrict w, const float *restrict g, float lr)
{
    const long n = (long)o->n;
    const float wd = (float)o->cfg.weight_decay, mu = (float)o->cfg.momentum;
    float *restrict buf = o->m;
    if (!buf) {
#pragma omp parallel for if (n >= OPTIM_OMP_MIN) schedule(static)
        for (long i = 0; i < n; i++) {
            float gi = g[i] + wd * w[i];
            w[i] -= lr * gi;
        }
        return;
    }
    /* PyTorch: buf = g on the first step, else mu*buf + g.  With buf zeroed
    ** the general formula gives the same, but keep the first-step copy so
    ** -0.0 and rounding match exactly. */
    const int first = o->step == 0;
    const int nesterov = o->cfg.nesterov;
#pragma omp parallel for if (n >= OPTIM_OMP_MIN) schedule(static)
    for (long i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float b = first ? gi : mu * buf[i] + gi;
        buf[i] = b;
        float d = nesterov ? gi + mu * b : b;
        w[i] -= lr * d;
    }
}

static void step_adam(const nlp_optim *o, float *restrict w, const float *restrict g, float lr)
{
    const long n = (long)o->n;
    const double b1d = o->cfg.beta1, b2d = o->cfg.beta2;
    const float wd = (float)o->cfg.weight_decay, eps = (float)o->cfg.eps;
    const float b1 = (float)b1d, omb1 = (float)(1.0 - b1d);
    const float b2 = (float)b2d, omb2 = (float)(1.0 - b2d);
    float *restrict m = o->m, *restrict v = o->v;
    /* torch.optim.adam._single_tensor_adam: bias corrections as Python
    ** floats (double), step_size = lr / bc1, denom = sqrt(v)/sqrt(bc2) + eps. */
    double t = (double)(o->step + 1);
    double bc1 = 1.0 - pow(b1d, t);
    double bc2 = 1.0 - pow(b2d, t);
    const float step_size = (float)((double)lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
#pragma omp parallel for if (n >= OPTIM_OMP_MIN) schedule(static)
    for (long i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float mi = b1 * m[i] + omb1 * gi;
        float vi = b2 * v[i] + omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        w[i] -= step_size * (mi / denom);
    }
}

static void step_rmsprop(const nlp_optim *o, float *restrict w, const float *restrict g, float lr)
{
    const long n = (long)o->n;
    const float wd = (float)o->cfg.weight_decay, eps = (float)o->cfg.eps, mu = (float)o->cfg.momentum;
    const float a = (float)o->cfg.alpha, oma = (float)(1.0 - o->cfg.alpha);
    float *restrict s = o->v, *restrict buf = o->m;
#pragma omp parallel for if (n >= OPTIM_OMP_MIN) schedule(static)
    for (long i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float si = a * s[i] + oma * gi * gi;
        s[i] = si;
        float avg = sqrtf(si) + eps;
        if (buf) {
            float b = mu * buf[i] + gi / avg;
            buf[i] = b;
            w[i] -= lr * b;
        } else {
            w[i] -= lr * (gi / avg);
        }
    }
}

float nlp_optim_step(nlp_optim *o, float *w, const float *g)
{
    float lr = nlp_optim_lr(o);
    switch (o->cfg.kind) {
    case NLP_OPTIM_ADAM: step_adam(o, w, g, lr); break;
    case NLP_OPTIM_RMSPROP: step_rmsprop(o, w, g, lr); break;
    case NLP_OPTIM_SGD:
    default: step_sgd(o, w, g, lr); break;
    }
    o->step++;
    return lr;
}

double nlp_optim_grad_norm(const float *g, size_t n)
{
    /* Four partial sums: independent of threads (fixed order) and quicker
    ** than one dependent chain of double additions. */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)g[i] * g[i];
        s1 += (double)g[i + 1] * g[i + 1];
        s2 += (double)g[i + 2] * g[i + 2];
        s3 += (double)g[i + 3] * g[i + 3];
    }
    for (; i < n; i++)
        s0 += (double)g[i] * g[i];
    return sqrt((s0 + s1) + (s2 + s3));
}

double nlp_optim_clip(float *g, size_t n, float max_norm)
{
    double norm = nlp_optim_grad_norm(g, n);
    if (max_norm > 0.0f && isfinite(norm) && norm > max_norm) {
        float coef = (float)((double)max_norm / (norm + CLIP_EPS));
        for (size_t i = 0; i < n; i++)
            g[i] *= coef;
    }
    return norm;
}

const char *nlp_optim_kind_name(nlp_optim_kind kind)
{
    switch (kind) {
    case NLP_OPTIM_SGD: return "sgd";
    case NLP_OPTIM_ADAM: return "adam";
    case NLP_OPTIM_RMSPROP: return "rmsprop";
    default: return NULL;
    }
}

int nlp_optim_kind_parse(const char *name, nlp_optim_kind *kind)
{
    static const nlp_optim_kind all[] = { NLP_OPTIM_SGD, NLP_OPTIM_ADAM, NLP_OPTIM_RMSPROP };
    if (!name)
        return NLP_EINVAL;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, nlp_optim_kind_name(all[i])) == 0) {
            *kind = all[i];
            return NLP_OK;
        }
    return NLP_EINVAL;
}
