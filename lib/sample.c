/*
** sample: temperature, top-k and nucleus sampling from logits.  See
** nlp/sample.h.
**
** Every call builds the list of candidates (index, weight) in the sampler's
** buffers: weights are exp((logit - max) / T) in double, so no temperature
** overflows.  Top-k and top-p need the candidates in decreasing order; the
** plain case (neither) skips the sort and walks them in index order.
*/
#include "nlp/sample.h"
#include "nlp/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nlp/error.h"

typedef struct cand {
    float logit;  /* score, NaN already mapped to -INFINITY */
    long index;   /* symbol */
} cand;

struct nlp_sampler {
    size_t n;       /* number of symbols */
    cand *c;        /* (n) candidates */
    double *w;      /* (n) unnormalised weights of the kept candidates */
};

void nlp_sample_config_default(nlp_sample_config *o)
{
    o->temperature = 1.0;
    o->top_k = 0;
    o->top_p = 1.0;
    o->ban = -1;
}

int nlp_sample_config_check(const nlp_sample_config *o)
{
    if (!o || !isfinite(o->temperature) || o->temperature < 0 || o->top_k < 0
        || !(o->top_p > 0 && o->top_p <= 1))
        return NLP_EINVAL;
    return NLP_OK;
}

int nlp_sample_new(nlp_sampler **out, size_t n)
{
    *out = NULL;
    if (n == 0)
        return NLP_EINVAL;
    nlp_sampler *s = nlp_calloc(1, sizeof *s);
    if (!s)
        return NLP_ENOMEM;
    s->n = n;
    s->c = nlp_calloc(n, sizeof *s->c);
    s->w = nlp_calloc(n, sizeof *s->w);
    if (!s->c || !s->w) {
        nlp_sample_free(s);
        return NLP_ENOMEM;
    }
    *out = s;
    return NLP_OK;
}

void nlp_sample_free(nlp_sampler *s)
{
    if (!s)
        return;
    nlp_free(s->c);
    nlp_free(s->w);
    nlp_free(s);
}

size_t nlp_sample_argmax(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i]) && (isnan(x[best]) || x[i] > x[best]))
            best = i;
    return best;
}

/* Decreasing logit, then increasing index: a total order, so the result of
** qsort (which is not stable) is the same on every platform. */
static int cand_cmp(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (a->logit > b->logit)
        return -1;
    if (a->logit < b->logit)
        return 1;
    return (a->index > b->index) - (a->index < b->index);
}

/*
** Fills s->c[0..m) and s->w[0..m) with the kept candidates and their weights;
** returns m (>= 1) and the weights' sum in *total, or NLP_EINVAL.
*/
static long prepare(nlp_sampler *s, const float *logits, const nlp_sample_config *o,
                    double *total)
{
    if (nlp_sample_config_check(o) != NLP_OK)
        return NLP_EINVAL;
    size_t m = 0;
    float max = -INFINITY;
    for (size_t i = 0; i < s->n; i++) {
        if ((long)i == o->ban)
            continue;
        float v = isnan(logits[i]) ? -INFINITY : logits[i];
        s->c[m].logit = v;
        s->c[m].index = (long)i;
        if (v > max)
            max = v;
        m++;
    }
    if (m == 0)
        return NLP_EINVAL;

    if (o->temperature == 0) {
        /* Greedy: the first best candidate (lowest index on ties). */
        size_t best = 0;
        for (size_t j = 1; j < m; j++)
            if (s->c[j].logit > s->c[best].logit)
                best = j;
        s->c[0] = s->c[best];
        s->w[0] = 1.0;
        *total = 1.0;
        return 1;
    }

    int sorted = o->top_k > 0 || o->top_p < 1;
    if (sorted) {
        qsort(s->c, m, sizeof *s->c, cand_cmp);
        if (o->top_k > 0 && (size_t)o->top_k < m)
            m = (size_t)o->top_k;
    }
    double sum = 0;
    for (size_t j = 0; j < m; j++) {
        /* All -INFINITY: every candidate equally likely. */
        double d = max == -INFINITY ? 0.0 : ((double)s->c[j].logit - max) / o->temperature;
        s->w[j] = exp(d);
        sum += s->w[j];
    }
    if (o->top_p < 1) {
        double need = o->top_p * sum, cum = 0;
        size_t keep = 0;
        while (keep < m) {
            cum += s->w[keep++];
            if (cum >= need)
                break;
        }
        m = keep;
        sum = cum;
    }
    *total = sum;
    return (long)m;
}

long nlp_sample_probs(nlp_sampler *s, const float *logits,
                       const nlp_sample_config *o, float *probs)
{
    double total;
    long m = prepare(s, logits, o, &total);
    if (m < 0)
        return m;
    memset(probs, 0, s->n * sizeof *probs);
    long kept = 0;
    for (long j = 0; j < m; j++) {
        probs[s->c[j].index] = (float)(s->w[j] / total);
        kept += s->w[j] > 0;
    }
    return kept;
}

long nlp_sample_draw(nlp_sampler *s, const float *logits,
                      const nlp_sample_config *o, nlp_rng *rng)
{
    double total;
    long m = prepare(s, logits, o, &total);
    if (m < 0)
        return m;
    if (o->temperature == 0)
        return s->c[0].index;
    double u = nlp_rng_uniform_double(rng) * total, cum = 0;
    long last = 0;
    for (long j = 0; j < m; j++) {
        if (s->w[j] <= 0)
            continue;
        last = j;
        cum += s->w[j];
        if (u < cum)
            return s->c[j].index;
    }
    /* Rounding left u at the very top: the last candidate with weight. */
    return s->c[last].index;
}
