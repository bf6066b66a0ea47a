/*
** sample: drawing one symbol from a model's output scores (logits).
**
** A language model or a decoder ends each step with n logits; this module
** turns them into a distribution and draws from it with an explicit nlp_rng:
**
**   1. temperature T: p ~ exp(logit / T); T = 0 is greedy (argmax);
**   2. top-k: keep only the k highest logits (ties broken by lower index);
**   3. top-p (nucleus): keep the smallest set of most likely symbols whose
**      mass reaches p (always at least one);
**   4. symbols the caller bans (e.g. <unk>) get probability 0;
**
** then the kept probabilities are renormalised and one index is drawn.  The
** steps apply in that order (as in most toolkits), each on the result of the
** one before.  Work buffers live in an nlp_sampler sized once, so drawing
** never allocates.
*/
#ifndef NLP_SAMPLE_H
#define NLP_SAMPLE_H

#include <stddef.h>

#include <nlp/rng.h>

typedef struct nlp_sample_config {
    double temperature;  /* >= 0; 0 means argmax; default 1 */
    long top_k;          /* keep the k best; 0 = all (default) */
    double top_p;        /* nucleus mass in (0, 1]; 1 = all (default) */
    long ban;            /* one index never drawn (e.g. <unk>); -1 = none (default) */
} nlp_sample_config;

/* Fills o with the defaults: temperature 1, no top-k, top-p 1, no ban. */
void nlp_sample_config_default(nlp_sample_config *o);

/*
** Checks o: temperature finite and >= 0, top_k >= 0, 0 < top_p <= 1.
** Returns NLP_OK or NLP_EINVAL.
*/
int nlp_sample_config_check(const nlp_sample_config *o);

typedef struct nlp_sampler nlp_sampler;

/*
** Sets *out to a sampler for distributions over n symbols (n >= 1) and
** returns NLP_OK; the caller owns it and frees it with nlp_sample_free().
** Returns NLP_EINVAL when n is 0, NLP_ENOMEM when out of memory; *out is
** NULL on failure.
*/
int nlp_sample_new(nlp_sampler **out, size_t n);

/* Frees s; NULL is a no-op. */
void nlp_sample_free(nlp_sampler *s);

/*
** Writes into probs (n floats) the distribution that nlp_sample_draw()
** draws from for these logits and options: zero outside the kept set, the
** rest sums to 1.  Returns the number of symbols kept (>= 1), or NLP_EINVAL
** when the options are invalid or every symbol is banned.  Logits that are
** -INFINITY are never kept unless all kept candidates are; NaN logits are
** treated as -INFINITY.
*/
long nlp_sample_probs(nlp_sampler *s, const float *logits,
                       const nlp_sample_config *o, float *probs);

/*
** Draws one index in [0, n) from logits under o, using exactly one
** nlp_rng_uniform_double() from rng (none at temperature 0, so a greedy run
** leaves rng alone).  Returns the index, or NLP_EINVAL as
** nlp_sample_probs() does.
*/
long nlp_sample_draw(nlp_sampler *s, const float *logits,
                      const nlp_sample_config *o, nlp_rng *rng);

/* Index of the largest of n >= 1 values (the first on ties; NaN never wins
** unless all are NaN, then 0). */
size_t nlp_sample_argmax(const float *x, size_t n);

#endif
