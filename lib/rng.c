/*
** rng: xoshiro256** by Blackman and Vigna (public domain reference at
** prng.di.unimi.it), seeded through splitmix64 as its authors recommend.
*/
#include "nlp/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void nlp_rng_seed(nlp_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

uint64_t nlp_rng_u64(nlp_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t nlp_rng_below(nlp_rng *r, uint64_t n)
{
    /* Reject the top partial block so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = nlp_rng_u64(r);
    while (x >= limit);
    return x % n;
}

void nlp_rng_shuffle(nlp_rng *r, long *a, long n)
{
    for (long i = n - 1; i > 0; i--) {
        long j = (long)nlp_rng_below(r, (uint64_t)i + 1);
        long x = a[i];
        a[i] = a[j];
        a[j] = x;
    }
}

float nlp_rng_uniform(nlp_rng *r)
{
    return (float)(nlp_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

double nlp_rng_uniform_double(nlp_rng *r)
{
    return (double)(nlp_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double nlp_rng_normal(nlp_rng *r)
{
    double u1, u2;
    do
        u1 = nlp_rng_uniform_double(r);
    while (u1 <= 0.0);
    u2 = nlp_rng_uniform_double(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void nlp_rng_split(nlp_rng *parent, nlp_rng *child)
{
    static const uint64_t JUMP[] = {0x180ec6d33cfd0abaULL, 0xd5a61266f0c9392cULL,
                                    0xa9582618e03fc9aaULL, 0x39abdc4529b1661cULL};
    *child = *parent;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 64; b++) {
            if (JUMP[i] & (1ULL << b)) {
                s0 ^= parent->s[0];
                s1 ^= parent->s[1];
                s2 ^= parent->s[2];
                s3 ^= parent->s[3];
            }
            nlp_rng_u64(parent);
        }
    parent->s[0] = s0;
    parent->s[1] = s1;
    parent->s[2] = s2;
    parent->s[3] = s3;
}
