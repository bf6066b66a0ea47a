/*
** rng: explicit, seeded pseudo-random number generator (xoshiro256**).
**
** No hidden state: every caller owns an nlp_rng and passes it in, so two
** models or two threads never share a stream, and a seed makes a run
** repeatable.  Threads take independent streams with nlp_rng_split().
*/
#ifndef NLP_RNG_H
#define NLP_RNG_H

#include <stdint.h>

typedef struct nlp_rng {
    uint64_t s[4];
} nlp_rng;

/* Seeds r from a 64-bit seed (expanded with splitmix64, so 0 is fine). */
void nlp_rng_seed(nlp_rng *r, uint64_t seed);

/* Next 64 random bits. */
uint64_t nlp_rng_u64(nlp_rng *r);

/* Uniform integer in [0, n); n > 0.  Unbiased (rejection sampling). */
uint64_t nlp_rng_below(nlp_rng *r, uint64_t n);

/* Shuffles a (n) in place, every order equally likely (Fisher-Yates, n-1
** draws of nlp_rng_below). */
void nlp_rng_shuffle(nlp_rng *r, long *a, long n);

/* Uniform float in [0, 1), 24 random bits. */
float nlp_rng_uniform(nlp_rng *r);

/* Uniform double in [0, 1), 53 random bits. */
double nlp_rng_uniform_double(nlp_rng *r);

/* Standard normal deviate (Box-Muller; one of each pair is dropped). */
double nlp_rng_normal(nlp_rng *r);

/*
** Fills child with a stream independent of parent's and advances parent
** past it (xoshiro's jump: 2^128 steps), e.g. one stream per thread.
*/
void nlp_rng_split(nlp_rng *parent, nlp_rng *child);

#endif
