/*
** Unit tests for beam: beam and greedy search over a batched decoder.
**
** The focus: the search is right on toy decoders whose every number the
** test knows.  A toy row's state is its whole history (sentence id, BOS,
** the tokens fed), its distribution a function of that history (a hashed
** one, a Markov table, or a hand-written script), so a row that took the
** wrong parent's state on reorder gives scores the test's own recomputation
** of the result's tokens does not reproduce.  Checked: beam 1 is a plain
** greedy loop token for token; a beam as wide as the set of all sequences
** finds the brute-force best (and n-best), with and without the length
** penalty; the GNMT penalty reorders as its formula says; max lengths,
** n-best order, attention along each result's own ancestry; reorder gets
** only valid parents and finished sentences leave the rows; bad
** configurations, sizes and decoder output are refused; the search never
** allocates and nlp_beam_new unwinds every allocation failure.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlp/alloc.h"
#include "nlp/beam.h"
#include "nlp/error.h"

#include "heapcheck.h"

/* ---- a toy decoder ---- */

#define TOY_MAXL 40   /* longest history a toy row holds (BOS + tokens) */

typedef struct toy toy;
/* Log-probabilities over the V targets after history hist[0..len)
** (hist[0] = BOS) of sentence sid. */
typedef void (*toy_dist_fn)(const toy *d, int sid, const int *hist, int len, float *logp);

struct toy {
    int V, bos, cap, rows;
    toy_dist_fn dist;
    uint64_t seed;
    float scale;          /* hash_dist: logits uniform in [0, scale) */
    float eos_bias;       /* hash_dist: added to EOS's logit */
    const float *table;   /* markov_dist: (V, V) log-probabilities */
    const unsigned char *never;  /* (V) ids the search must never feed back, or NULL */
    int *sid, *len, *hist;        /* (cap), (cap), (cap, TOY_MAXL) */
    int *sid2, *len2, *hist2;
    int S;                /* attention columns; 0 = give no attention */
    float *attn;          /* (cap, S) */
    int no_attn;          /* give NULL attention anyway */
    /* faults to inject */
    int bad_at_step;      /* at this step (1-based) write bad_value ... */
    float bad_value;
    int bad_attn;         /* ... into the attention instead of the logp */
    int fail_at_step;     /* this step returns NLP_EIO */
    /* what the search did */
    int steps, reorders, bad;
    int rows_at[TOY_MAXL + 2];   /* rows of each step */
    char why[200];        /* the first contract violation */
};

static void toy_bad(toy *d, const char *why)
{
    if (!d->bad++)
        snprintf(d->why, sizeof d->why, "%s", why);
}

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* x - logsumexp(x), computed in double: each value <= 0. */
static void log_softmax(const double *x, int V, float *out)
{
    double mx = x[0], s = 0.0;
    for (int v = 1; v < V; v++)
        if (x[v] > mx)
            mx = x[v];
    for (int v = 0; v < V; v++)
        s += exp(x[v] - mx);
    double ls = log(s);
    for (int v = 0; v < V; v++)
        out[v] = (float)(x[v] - mx - ls);
}

/* Random logits drawn from the hash of the whole history. */
static void hash_dist(const toy *d, int sid, const int *hist, int len, float *logp)
{
    uint64_t h = mix64(d->seed ^ (uint64_t)sid * 0x51ed27u);
    for (int t = 0; t < len; t++)
        h = mix64(h ^ (uint64_t)(hist[t] + 1));
    double x[64];
    assert_true(d->V <= 64);
    for (int v = 0; v < d->V; v++)
        x[v] = d->scale * (double)(mix64(h + (uint64_t)v) >> 11) / 9007199254740992.0;
    x[d->bos] -= 5.0;   /* toys rarely want BOS back */
    x[1] += d->eos_bias;
    log_softmax(x, d->V, logp);
}

/* A first-order Markov chain: the row of the last token. */
static void markov_dist(const toy *d, int sid, const int *hist, int len, float *logp)
{
    (void)sid;
    memcpy(logp, d->table + (size_t)hist[len - 1] * d->V, (size_t)d->V * sizeof(float));
}

static void toy_init(toy *d, int V, int cap, toy_dist_fn dist, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    d->V = V;
    d->bos = 0;
    d->cap = cap;
    d->dist = dist;
    d->seed = seed;
    d->scale = 4.0f;
    d->sid = calloc((size_t)cap, sizeof(int));
    d->len = calloc((size_t)cap, sizeof(int));
    d->hist = calloc((size_t)cap * TOY_MAXL, sizeof(int));
    d->sid2 = calloc((size_t)cap, sizeof(int));
    d->len2 = calloc((size_t)cap, sizeof(int));
    d->hist2 = calloc((size_t)cap * TOY_MAXL, sizeof(int));
    assert_true(d->sid && d->len && d->hist && d->sid2 && d->len2 && d->hist2);
}

/* Attention rows of S columns (S >= 1). */
static void toy_attention(toy *d, int S)
{
    d->S = S;
    d->attn = calloc((size_t)d->cap * S, sizeof(float));
    assert_non_null(d->attn);
}

static void toy_free(toy *d)
{
    free(d->sid);
    free(d->len);
    free(d->hist);
    free(d->sid2);
    free(d->len2);
    free(d->hist2);
    free(d->attn);
}

/* Begins n sentences, ids sid0.., for a search of width k. */
static void toy_begin(toy *d, int n, int sid0, int k)
{
    assert_true(n * k <= d->cap);
    d->rows = n;
    d->steps = d->reorders = d->bad = 0;
    d->why[0] = '\0';
    memset(d->rows_at, 0, sizeof d->rows_at);
    for (int r = 0; r < n; r++) {
        d->sid[r] = sid0 + r;
        d->len[r] = 0;
    }
}

/* The attention a row with history hist[0..len) gives source position x:
** the history's token there + 1, or -len past its end. */
static float toy_attn_value(const int *hist, int len, int x)
{
    return x < len ? (float)(hist[x] + 1) : -(float)len;
}

static int toy_step(void *ctx, const int *prev, int rows, float *logp, const float **attn,
                    nlp_error *e)
{
    toy *d = ctx;
    d->steps++;
    if (d->steps <= TOY_MAXL + 1)
        d->rows_at[d->steps] = rows;
    if (rows != d->rows)
        toy_bad(d, "step: rows is not the row count");
    if (rows < 1 || rows > d->cap) {
        toy_bad(d, "step: rows out of range");
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "toy: rows %d", rows);
    }
    if (d->fail_at_step == d->steps)
        return nlp_error_set(e, NLP_EIO, NULL, 0, "toy: step %d fails", d->steps);
    for (int r = 0; r < rows; r++) {
        int *h = d->hist + (size_t)r * TOY_MAXL;
        if (prev[r] < 0 || prev[r] >= d->V) {
            toy_bad(d, "step: prev out of range");
            return NLP_EINVAL;
        }
        if (d->len[r] == 0 ? prev[r] != d->bos : prev[r] == 1 || (d->never && d->never[prev[r]]))
            toy_bad(d, "step: prev is BOS only first, never EOS or a banned id");
        if (d->len[r] >= TOY_MAXL) {
            toy_bad(d, "step: history too long");
            return NLP_EINVAL;
        }
        h[d->len[r]++] = prev[r];
        d->dist(d, d->sid[r], h, d->len[r], logp + (size_t)r * d->V);
        if (d->S)
            for (int x = 0; x < d->S; x++)
                d->attn[(size_t)r * d->S + x] = toy_attn_value(h, d->len[r], x);
    }
    if (d->bad_at_step == d->steps) {
        if (d->bad_attn)
            d->attn[(size_t)(rows - 1) * d->S] = d->bad_value;
        else
            logp[(size_t)(rows - 1) * d->V + d->V - 1] = d->bad_value;
    }
    if (attn)
        *attn = d->S && !d->no_attn ? d->attn : NULL;
    return NLP_OK;
}

static int toy_reorder(void *ctx, const int *parent, int rows, nlp_error *e)
{
    (void)e;
    toy *d = ctx;
    d->reorders++;
    if (rows < 1 || rows > d->cap) {
        toy_bad(d, "reorder: rows out of range");
        return NLP_EINVAL;
    }
    for (int r = 0; r < rows; r++) {
        int p = parent[r];
        if (p < 0 || p >= d->rows) {
            toy_bad(d, "reorder: parent out of range");
            return NLP_EINVAL;
        }
        d->sid2[r] = d->sid[p];
        d->len2[r] = d->len[p];
        memcpy(d->hist2 + (size_t)r * TOY_MAXL, d->hist + (size_t)p * TOY_MAXL,
               TOY_MAXL * sizeof(int));
    }
    int *t;
    t = d->sid; d->sid = d->sid2; d->sid2 = t;
    t = d->len; d->len = d->len2; d->len2 = t;
    t = d->hist; d->hist = d->hist2; d->hist2 = t;
    d->rows = rows;
    return NLP_OK;
}

static nlp_beam_ops toy_ops(toy *d)
{
    nlp_beam_ops ops = {d, d->V, toy_step, toy_reorder};
    return ops;
}

/* ---- references ---- */

/* The raw score of sentence sid's tokens[0..len) (+ EOS when ended),
** recomputed from the toy's distribution in the search's order. */
static double ref_score(const toy *d, int sid, const int *tokens, int len, int ended)
{
    int hist[TOY_MAXL];
    float lp[64];
    double s = 0.0;
    hist[0] = d->bos;
    for (int t = 0; t <= len; t++) {
        if (t == len && !ended)
            break;
        d->dist(d, sid, hist, t + 1, lp);
        int v = t < len ? tokens[t] : 1;
        s += lp[v];
        hist[t + 1] = v;
    }
    return s;
}

/* A plain greedy loop: the arg-max id (lowest on ties) of the ids not in
** skip, until EOS (id 1) or max_len tokens.  Returns the length. */
static int ref_greedy(const toy *d, int sid, int max_len, const unsigned char *skip,
                      int *tokens, int *ended, double *logprob)
{
    int hist[TOY_MAXL];
    float lp[64];
    int len = 0;
    hist[0] = d->bos;
    *ended = 0;
    *logprob = 0.0;
    for (int t = 1; t <= max_len; t++) {
        d->dist(d, sid, hist, t, lp);
        int best = -1;
        for (int v = 0; v < d->V; v++)
            if (!skip[v] && (best < 0 || lp[v] > lp[best]))
                best = v;
        *logprob += lp[best];
        if (best == 1) {
            *ended = 1;
            break;
        }
        tokens[len++] = best;
        hist[t] = best;
    }
    return len;
}

/* Every hypothesis the search could return, by brute force. */
typedef struct allhyp {
    double *norm;
    int n, cap;
} allhyp;

static void brute(const toy *d, int sid, int max_len, const unsigned char *skip, float alpha,
                  int *hist, int t, double raw, allhyp *out)
{
    float lp[64];
    d->dist(d, sid, hist, t, lp);   /* history of t ids: BOS + t-1 tokens */
    assert_true(out->n < out->cap);
    double s = raw + lp[1];
    out->norm[out->n++] = s / nlp_beam_length_penalty(alpha, t);
    for (int v = 0; v < d->V; v++) {
        if (skip[v] || v == 1)
            continue;
        double sv = raw + lp[v];
        if (t == max_len) {
            assert_true(out->n < out->cap);
            out->norm[out->n++] = sv / nlp_beam_length_penalty(alpha, t);
        } else {
            hist[t] = v;
            brute(d, sid, max_len, skip, alpha, hist, t + 1, sv, out);
        }
    }
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* ---- helpers ---- */

/* A beam search over V ids with BOS 0 (banned), EOS 1. */
static nlp_beam *make_beam(int V, int k, int n_best, float alpha, int max_n, int max_S,
                           int max_len, int want_attention)
{
    static const int ban_bos[1] = {0};
    nlp_beam_config c;
    nlp_beam_config_default(&c);
    c.V = V;
    c.k = k;
    c.n_best = n_best;
    c.length_penalty = alpha;
    c.bos = 0;
    c.eos = 1;
    c.ban = ban_bos;
    c.n_ban = 1;
    c.want_attention = want_attention;
    nlp_beam *b = NULL;
    assert_int_equal(nlp_beam_new(&b, &c, max_n, max_S, max_len), NLP_OK);
    assert_non_null(b);
    return b;
}

/* Runs b on d for sentences sid0..sid0+n-1; fails the test on any error
** or contract violation. */
static void run(nlp_beam *b, toy *d, int n, int sid0, int k, const int *src_len,
                const int *max_len)
{
    nlp_error e;
    nlp_error_clear(&e);
    toy_begin(d, n, sid0, k);
    nlp_beam_ops ops = toy_ops(d);
    int rc = nlp_beam_search(b, &ops, n, src_len, max_len, &e);
    if (rc != NLP_OK)
        fail_msg("search failed: %d %s", rc, e.text);
    if (d->bad)
        fail_msg("decoder contract broken %d times, first: %s", d->bad, d->why);
}

/* Checks every result of sentence i: logprob = the recomputed score of its
** tokens, score = logprob / lp, sorted best first, lengths within max_len. */
static void check_results(const nlp_beam *b, const toy *d, int i, int sid, int max_len,
                          float alpha)
{
    int cnt = nlp_beam_count(b, i);
    assert_true(cnt >= 1);
    double last = INFINITY;
    for (int j = 0; j < cnt; j++) {
        nlp_beam_hyp h;
        assert_int_equal(nlp_beam_result(b, i, j, &h), NLP_OK);
        assert_true(h.len >= 0 && h.len <= max_len);
        if (!h.ended)
            assert_int_equal(h.len, max_len);
        else
            assert_true(h.len < max_len);
        for (int t = 0; t < h.len; t++)
            assert_true(h.tokens[t] >= 2 && h.tokens[t] < d->V);
        double ref = ref_score(d, sid, h.tokens, h.len, h.ended);
        if (ref != h.logprob)
            fail_msg("sentence %d hyp %d: logprob %.17g, its tokens score %.17g", i, j,
                     h.logprob, ref);
        assert_true(h.score == h.logprob / nlp_beam_length_penalty(alpha, h.len + h.ended));
        assert_true(h.score <= last);
        last = h.score;
    }
}

static unsigned char *skip_of(int V, const int *ids, int n)
{
    unsigned char *s = calloc((size_t)V, 1);
    assert_non_null(s);
    for (int i = 0; i < n; i++)
        s[ids[i]] = 1;
    return s;
}

/* ---- tests ---- */

/* Beam 1 is the plain greedy loop, token for token, on hashed and Markov
** decoders, batches of sentences of different max lengths, with and
** without the length penalty (which greedy ignores), with banned ids. */
static void test_greedy_equals_beam1(void **state)
{
    (void)state;
    const int n = 4, V = 7;
    static const int bans[2] = {0, 5};   /* BOS and one more */
    unsigned char *never = skip_of(V, bans, 2);
    unsigned char *skip_ref = skip_of(V, bans, 2);
    long tokens_compared = 0;
    for (int seed = 1; seed <= 300; seed++) {
        int kind = seed % 2;
        float alpha = seed % 3 == 0 ? 0.0f : 0.7f;
        float table[7 * 7];
        uint64_t r = mix64((uint64_t)seed * 77);
        for (int a = 0; a < V; a++) {
            double x[7];
            for (int v = 0; v < V; v++) {
                r = mix64(r);
                /* coarse logits make exact ties between ids common */
                x[v] = (double)(r % 4);
            }
            log_softmax(x, V, table + a * V);
        }
        toy d;
        toy_init(&d, V, n, kind ? hash_dist : markov_dist, (uint64_t)seed);
        d.table = table;
        d.never = never;
        d.eos_bias = -1.0f;
        nlp_beam_config c;
        nlp_beam_config_default(&c);
        c.V = V;
        c.k = 1;
        c.length_penalty = alpha;
        c.bos = 0;
        c.eos = 1;
        c.ban = bans;
        c.n_ban = 2;
        nlp_beam *b;
        assert_int_equal(nlp_beam_new(&b, &c, n, 1, 30), NLP_OK);
        int ml[4];
        for (int i = 0; i < n; i++)
            ml[i] = 1 + (int)(mix64((uint64_t)seed * 13 + (uint64_t)i) % 30);
        run(b, &d, n, 0, 1, NULL, ml);
        for (int i = 0; i < n; i++) {
            int tok[40], ended;
            double lp;
            int len = ref_greedy(&d, i, ml[i], skip_ref, tok, &ended, &lp);
            assert_int_equal(nlp_beam_count(b, i), 1);
            nlp_beam_hyp h;
            assert_int_equal(nlp_beam_result(b, i, 0, &h), NLP_OK);
            if (h.len != len || h.ended != ended || memcmp(h.tokens, tok, (size_t)len * sizeof(int)))
                fail_msg("seed %d sentence %d: beam 1 gives %d tokens (ended %d), greedy %d (ended %d)",
                         seed, i, h.len, h.ended, len, ended);
            assert_true(h.logprob == lp);
            tokens_compared += len + 1;
        }
        check_results(b, &d, 0, 0, ml[0], alpha);
        nlp_beam_free(b);
        toy_free(&d);
    }
    assert_true(tokens_compared > 3000);   /* the loops really ran long sentences */
    free(never);
    free(skip_ref);
}

/* A beam at least as wide as the set of all hypotheses keeps all of them,
** so it returns the brute-force best n_best, with alpha 0 and alpha > 0. */
static void test_exhaustive(void **state)
{
    (void)state;
    /* (V, max_len): live ids are 2..V-1, so (V-2)^max_len cut sequences */
    static const int cases[][2] = {{4, 5}, {5, 3}, {6, 2}, {4, 1}, {3, 6}};
    static const unsigned char skip[8] = {1, 0, 0, 0, 0, 0, 0, 0};   /* BOS */
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int V = cases[ci][0], L = cases[ci][1];
        /* live: the most live hypotheses at a step; total: all hypotheses */
        int live = 1, total = 0;
        for (int t = 0; t < L; t++) {
            total += live;
            live *= V - 2;
        }
        total += live;
        for (int ai = 0; ai < 2; ai++) {
            /* With alpha 0 the stop is exact, so room for every live one
            ** and one more (then no EOS ranks below the last live one) is
            ** enough; GNMT's stop at k finished needs room for all. */
            float alpha = ai ? 0.8f : 0.0f;
            int k = ai ? total : live + 1;
            int n_best = k < 4 ? k : 4;
            nlp_beam *b = make_beam(V, k, n_best, alpha, 3, 1, L, 0);
            for (int seed = 1; seed <= 20; seed++) {
                toy d;
                toy_init(&d, V, 3 * k, hash_dist, (uint64_t)seed * 1000 + ci);
                d.scale = 3.0f;
                int ml[3] = {L, L, L};
                run(b, &d, 3, 0, k, NULL, ml);
                for (int i = 0; i < 3; i++) {
                    allhyp all = {calloc(4096, sizeof(double)), 0, 4096};
                    int hist[TOY_MAXL] = {0};
                    brute(&d, i, L, skip, alpha, hist, 1, 0.0, &all);
                    qsort(all.norm, (size_t)all.n, sizeof(double), cmp_desc);
                    int want = all.n < n_best ? all.n : n_best;
                    assert_int_equal(nlp_beam_count(b, i), want);
                    for (int j = 0; j < want; j++) {
                        nlp_beam_hyp h;
                        assert_int_equal(nlp_beam_result(b, i, j, &h), NLP_OK);
                        if (h.score != all.norm[j])
                            fail_msg("V %d L %d alpha %g seed %d sentence %d: hyp %d scores %.17g, "
                                     "brute force %.17g", V, L, (double)alpha, seed, i, j,
                                     h.score, all.norm[j]);
                    }
                    check_results(b, &d, i, i, L, alpha);
                    free(all.norm);
                }
                toy_free(&d);
            }
            nlp_beam_free(b);
        }
    }
}

/* The best raw score of beams 1..8 on random tables, with alpha 0.  A wider
** beam is not a superset of a narrower one (it may prune the narrow one's
** path for prefixes that look better and end worse), so "never below" is
** not a theorem: this counts how often it happens, and checks what is
** sure: every width returns a hypothesis whose score is its tokens' score,
** the mean best score does not fall as the beam widens, and the widest
** beam is never below greedy here on these tables (a fixed set, so the
** test is repeatable). */
static void test_wider_beams(void **state)
{
    (void)state;
    const int V = 8, L = 8, n = 4, K = 8;
    double sum[9] = {0};
    int below_narrower = 0, below_greedy = 0, pairs = 0;
    nlp_beam *bs[9];
    for (int k = 1; k <= K; k++)
        bs[k] = make_beam(V, k, 1, 0.0f, n, 1, L, 0);
    for (int seed = 1; seed <= 150; seed++) {
        toy d;
        toy_init(&d, V, n * K, hash_dist, (uint64_t)seed * 7919);
        d.scale = 3.0f;
        d.eos_bias = -0.5f;
        double best[9][4];
        for (int k = 1; k <= K; k++) {
            run(bs[k], &d, n, 0, k, NULL, NULL);
            for (int i = 0; i < n; i++) {
                nlp_beam_hyp h;
                assert_int_equal(nlp_beam_result(bs[k], i, 0, &h), NLP_OK);
                check_results(bs[k], &d, i, i, L, 0.0f);
                best[k][i] = h.score;
                sum[k] += h.score;
            }
        }
        for (int i = 0; i < n; i++) {
            for (int k = 2; k <= K; k++) {
                pairs++;
                if (best[k][i] < best[k - 1][i])
                    below_narrower++;
            }
            if (best[K][i] < best[1][i])
                below_greedy++;
        }
        toy_free(&d);
    }
    for (int k = 2; k <= K; k++)
        if (sum[k] < sum[k - 1] - 1e-9)
            fail_msg("mean best score falls from beam %d (%g) to beam %d (%g)", k - 1,
                     sum[k - 1] / 600, k, sum[k] / 600);
    fprintf(stderr, "wider beams: beam k+1 below beam k in %d of %d cases, beam %d below "
            "greedy in %d of %d; mean best raw score %.4f (greedy) .. %.4f (beam %d)\n",
            below_narrower, pairs, K, below_greedy, 150 * n, sum[1] / (150 * n),
            sum[K] / (150 * n), K);
    assert_int_equal(below_greedy, 0);
    for (int k = 1; k <= K; k++)
        nlp_beam_free(bs[k]);
}

/*
** The hand-built case: V = {BOS, EOS, a, b}.  EOS at once scores
** log 0.5 = -0.693 (1 step); "a a a" EOS scores log 0.49 + 3 log 0.9 =
** -1.029 (4 steps).  Raw (alpha 0): the empty one wins.  GNMT with alpha
** 2: lp(1) = 1, lp(4) = (9/6)^2 = 2.25, so "a a a" has -0.457 and wins.
** (EOS after "a" or "a a" is unlikely enough to rank below both live
** ones of a beam of 2, so GNMT's stop at 2 finished waits for "a a a".)
*/
static void script_dist(const toy *d, int sid, const int *hist, int len, float *logp)
{
    (void)sid;
    double p[4];
    int m = len - 1, all_a = 1;
    for (int t = 1; t < len; t++)
        all_a &= hist[t] == 2;
    if (m == 0) {
        p[0] = 1e-6; p[1] = 0.5; p[2] = 0.49; p[3] = 0.01;
    } else if (!all_a) {
        p[0] = 1e-6; p[1] = 0.1; p[2] = 0.45; p[3] = 0.45;
    } else if (m < 3) {
        p[0] = 1e-6; p[1] = 0.01; p[2] = 0.9; p[3] = 0.09;
    } else if (m == 3) {
        p[0] = 1e-6; p[1] = 0.9; p[2] = 0.05; p[3] = 0.05;
    } else {
        p[0] = 1e-6; p[1] = 0.3; p[2] = 0.35; p[3] = 0.35;
    }
    double x[4];
    for (int v = 0; v < 4; v++)
        x[v] = log(p[v]);
    log_softmax(x, d->V, logp);
}

static void test_length_penalty(void **state)
{
    (void)state;
    const int aaa[3] = {2, 2, 2};
    for (int ai = 0; ai < 2; ai++) {
        float alpha = ai ? 2.0f : 0.0f;
        nlp_beam *b = make_beam(4, 2, 2, alpha, 1, 1, 4, 0);
        toy d;
        toy_init(&d, 4, 2, script_dist, 0);
        run(b, &d, 1, 0, 2, NULL, NULL);
        assert_int_equal(nlp_beam_count(b, 0), 2);
        nlp_beam_hyp best, second;
        assert_int_equal(nlp_beam_result(b, 0, 0, &best), NLP_OK);
        assert_int_equal(nlp_beam_result(b, 0, 1, &second), NLP_OK);
        const nlp_beam_hyp *empty = ai ? &second : &best, *longer = ai ? &best : &second;
        assert_int_equal(empty->len, 0);
        assert_int_equal(empty->ended, 1);
        assert_int_equal(longer->len, 3);
        assert_int_equal(longer->ended, 1);
        assert_memory_equal(longer->tokens, aaa, sizeof aaa);
        assert_true(fabs(empty->logprob - log(0.5)) < 1e-5);
        assert_true(fabs(longer->logprob - (log(0.49) + 3 * log(0.9))) < 1e-5);
        assert_true(fabs(longer->score - longer->logprob / (ai ? 2.25 : 1.0)) < 1e-12);
        assert_true(empty->score == empty->logprob);
        check_results(b, &d, 0, 0, 4, alpha);
        nlp_beam_free(b);
        toy_free(&d);
    }
    /* n-best 1: with alpha 0 the empty one, finished at step 1 above every
    ** live one, ends the search there; with alpha 2 a live one divided by
    ** lp(max length) might still beat it, so the search goes on to "a a a". */
    for (int ai = 0; ai < 2; ai++) {
        nlp_beam *b = make_beam(4, 2, 1, ai ? 2.0f : 0.0f, 1, 1, 4, 0);
        toy d;
        toy_init(&d, 4, 2, script_dist, 0);
        run(b, &d, 1, 0, 2, NULL, NULL);
        nlp_beam_hyp h;
        assert_int_equal(nlp_beam_result(b, 0, 0, &h), NLP_OK);
        assert_int_equal(h.len, ai ? 3 : 0);
        assert_int_equal(d.steps, ai ? 4 : 1);
        nlp_beam_free(b);
        toy_free(&d);
    }
    /* The formula itself. */
    assert_true(nlp_beam_length_penalty(0.0f, 7) == 1.0);
    assert_true(fabs(nlp_beam_length_penalty(0.6f, 10) - pow(15.0 / 6.0, (double)0.6f)) < 1e-12);
    assert_true(nlp_beam_length_penalty(1.0f, 1) == 1.0);
}

/*
** Why "a wider beam never scores below greedy" is no theorem: V = {BOS,
** EOS, a, b, c}.  Greedy takes a (0.5), then a (0.34) and EOS (0.98):
** -1.79.  A beam of 2 keeps "b a" and "b b" (0.49 * 0.5 = -1.41 each) over
** "a a" (-1.77), and every continuation of those costs at least log 0.33
** a step, so its best is far below greedy's.  A beam of 3 keeps "a a" too.
*/
static void lose_dist(const toy *d, int sid, const int *hist, int len, float *logp)
{
    (void)sid;
    double p[5] = {1e-6, 0.01, 0.33, 0.33, 0.33};
    int m = len - 1;
    if (m == 0) {
        p[1] = 0.01; p[2] = 0.5; p[3] = 0.49; p[4] = 1e-6;
    } else if (m == 1 && hist[1] == 2) {
        p[1] = 0.33; p[2] = 0.34; p[3] = 0.33; p[4] = 1e-6;
    } else if (m == 1 && hist[1] == 3) {
        p[1] = 1e-6; p[2] = 0.5; p[3] = 0.5; p[4] = 1e-6;
    } else if (m == 2 && hist[1] == 2 && hist[2] == 2) {
        p[1] = 0.98; p[2] = 0.01; p[3] = 0.01; p[4] = 1e-6;
    }
    double x[5];
    for (int v = 0; v < 5; v++)
        x[v] = log(p[v]);
    log_softmax(x, d->V, logp);
}

static void test_wider_can_lose(void **state)
{
    (void)state;
    static const unsigned char skip[5] = {1, 0, 0, 0, 0};
    double best[4];
    for (int k = 1; k <= 3; k++) {
        nlp_beam *b = make_beam(5, k, 1, 0.0f, 1, 1, 4, 0);
        toy d;
        toy_init(&d, 5, k, lose_dist, 0);
        run(b, &d, 1, 0, k, NULL, NULL);
        check_results(b, &d, 0, 0, 4, 0.0f);
        nlp_beam_hyp h;
        assert_int_equal(nlp_beam_result(b, 0, 0, &h), NLP_OK);
        best[k] = h.score;
        if (k == 1) {
            int tok[8], ended;
            double lp;
            int len = ref_greedy(&d, 0, 4, skip, tok, &ended, &lp);
            assert_true(len == 2 && tok[0] == 2 && tok[1] == 2 && ended);
            assert_true(h.len == 2 && h.ended && h.logprob == lp);
        }
        nlp_beam_free(b);
        toy_free(&d);
    }
    assert_true(best[2] < best[1] - 1.0);
    assert_true(best[3] >= best[1]);
}

/* A decoder that (almost) never ends: every hypothesis runs to its own
** max length and stops there, cut (ended 0); the search takes exactly the
** longest max length's steps. */
static void test_max_length(void **state)
{
    (void)state;
    const int n = 5, k = 3;
    const int ml[5] = {3, 1, 7, 0, 2};
    nlp_beam *b = make_beam(6, k, 3, 0.5f, n, 1, 10, 0);
    toy d;
    toy_init(&d, 6, n * k, hash_dist, 42);
    d.eos_bias = -40.0f;
    run(b, &d, n, 0, k, NULL, ml);
    assert_int_equal(d.steps, 7);
    for (int i = 0; i < n; i++) {
        int cnt = nlp_beam_count(b, i);
        assert_int_equal(cnt, ml[i] == 0 ? 1 : 3);
        for (int j = 0; j < cnt; j++) {
            nlp_beam_hyp h;
            assert_int_equal(nlp_beam_result(b, i, j, &h), NLP_OK);
            assert_int_equal(h.len, ml[i]);
            assert_int_equal(h.ended, 0);
        }
        check_results(b, &d, i, i, ml[i], 0.5f);
    }
    nlp_beam_hyp h;
    assert_int_equal(nlp_beam_result(b, 3, 0, &h), NLP_OK);
    assert_true(h.logprob == 0.0 && h.len == 0);
    /* NULL max lengths: the size b was made for. */
    run(b, &d, 2, 0, k, NULL, NULL);
    assert_int_equal(d.steps, 10);
    assert_int_equal(nlp_beam_result(b, 1, 2, &h), NLP_OK);
    assert_int_equal(h.len, 10);
    nlp_beam_free(b);
    toy_free(&d);
}

/* n-best lists sorted by normalised score, distinct, each the score of its
** own tokens, for several widths and penalties. */
static void test_n_best(void **state)
{
    (void)state;
    const int n = 3, V = 9, L = 9;
    for (int k = 2; k <= 6; k += 2) {
        for (int ai = 0; ai < 3; ai++) {
            float alpha = (float)ai * 0.6f;
            nlp_beam *b = make_beam(V, k, k, alpha, n, 1, L, 0);
            for (int seed = 1; seed <= 20; seed++) {
                toy d;
                toy_init(&d, V, n * k, hash_dist, (uint64_t)seed * 31 + (uint64_t)k);
                int ml[3] = {L, 4, 6};
                run(b, &d, n, 0, k, NULL, ml);
                for (int i = 0; i < n; i++) {
                    check_results(b, &d, i, i, ml[i], alpha);
                    int cnt = nlp_beam_count(b, i);
                    assert_int_equal(cnt, k);
                    for (int j = 1; j < cnt; j++) {
                        nlp_beam_hyp p, q;
                        nlp_beam_result(b, i, j - 1, &p);
                        nlp_beam_result(b, i, j, &q);
                        assert_false(p.len == q.len && p.ended == q.ended &&
                                     memcmp(p.tokens, q.tokens, (size_t)p.len * sizeof(int)) == 0);
                    }
                }
                toy_free(&d);
            }
            nlp_beam_free(b);
        }
    }
}

/* Each result's attention rows are the ones its own ancestry received: the
** toy's row encodes the history it was computed from. */
static void test_attention_ancestry(void **state)
{
    (void)state;
    const int n = 3, k = 4, V = 7, L = 8;
    const int src_len[3] = {5, 12, 2};
    nlp_beam *b = make_beam(V, k, k, 0.3f, n, 12, L, 1);
    long rows_checked = 0;
    for (int seed = 1; seed <= 30; seed++) {
        toy d;
        toy_init(&d, V, n * k, hash_dist, (uint64_t)seed * 101);
        toy_attention(&d, 12);
        int ml[3] = {L, 6, L};
        run(b, &d, n, 0, k, src_len, ml);
        for (int i = 0; i < n; i++) {
            check_results(b, &d, i, i, ml[i], 0.3f);
            for (int j = 0; j < nlp_beam_count(b, i); j++) {
                nlp_beam_hyp h;
                assert_int_equal(nlp_beam_result(b, i, j, &h), NLP_OK);
                assert_non_null(h.attn);
                assert_int_equal(h.src_len, src_len[i]);
                int hist[TOY_MAXL];
                hist[0] = 0;
                memcpy(hist + 1, h.tokens, (size_t)h.len * sizeof(int));
                for (int t = 0; t < h.len; t++) {
                    /* token t was emitted from the history BOS, tokens[0..t) */
                    for (int x = 0; x < src_len[i]; x++) {
                        float want = toy_attn_value(hist, t + 1, x);
                        if (h.attn[(size_t)t * src_len[i] + x] != want)
                            fail_msg("seed %d sentence %d hyp %d: attention [%d][%d] is %g, "
                                     "its ancestry gave %g", seed, i, j, t, x,
                                     (double)h.attn[(size_t)t * src_len[i] + x], (double)want);
                    }
                    rows_checked++;
                }
            }
        }
        toy_free(&d);
    }
    assert_true(rows_checked > 1000);
    nlp_beam_free(b);
}

/* Sentences of different max lengths in one batch: reorder gets only valid
** parents, rows never exceed n*k, a sentence that ends leaves the rows, and
** each sentence's results are those it gets when searched alone. */
static void test_batch_drops_finished(void **state)
{
    (void)state;
    const int n = 6, k = 3, V = 8;
    const int ml[6] = {2, 9, 0, 5, 1, 12};
    nlp_beam *b = make_beam(V, k, 2, 0.0f, n, 1, 12, 0);
    nlp_beam *one = make_beam(V, k, 2, 0.0f, 1, 1, 12, 0);
    for (int seed = 1; seed <= 25; seed++) {
        toy d;
        toy_init(&d, V, n * k, hash_dist, (uint64_t)seed * 3 + 1);
        d.eos_bias = -3.0f;  /* long sentences, so the lengths decide */
        run(b, &d, n, 0, k, NULL, ml);
        int rows_total = 0;
        for (int t = 1; t <= d.steps; t++) {
            int alive = 0;
            for (int i = 0; i < n; i++)
                alive += ml[i] >= t;
            if (d.rows_at[t] > alive * (t == 1 ? 1 : k))
                fail_msg("seed %d step %d: %d rows for %d sentences that may still run", seed, t,
                         d.rows_at[t], alive);
            rows_total += d.rows_at[t];
        }
        assert_true(d.rows_at[1] == 5);   /* the one of max length 0 never ran */
        assert_true(d.rows_at[d.steps] <= k);
        for (int i = 0; i < n; i++) {
            check_results(b, &d, i, i, ml[i], 0.0f);
            toy alone;
            toy_init(&alone, V, k, hash_dist, (uint64_t)seed * 3 + 1);
            alone.eos_bias = -3.0f;
            run(one, &alone, 1, i, k, NULL, &ml[i]);
            assert_int_equal(nlp_beam_count(one, 0), nlp_beam_count(b, i));
            for (int j = 0; j < nlp_beam_count(b, i); j++) {
                nlp_beam_hyp p, q;
                nlp_beam_result(b, i, j, &p);
                nlp_beam_result(one, 0, j, &q);
                assert_int_equal(p.len, q.len);
                assert_int_equal(p.ended, q.ended);
                assert_memory_equal(p.tokens, q.tokens, (size_t)p.len * sizeof(int));
                assert_true(p.logprob == q.logprob);
            }
            toy_free(&alone);
        }
        (void)rows_total;
        toy_free(&d);
    }
    nlp_beam_free(b);
    nlp_beam_free(one);
}

/* Fewer candidates than the beam is wide: V = {BOS, EOS, a} with BOS
** banned leaves one live continuation per hypothesis; and a vocabulary
** where EOS is all that is allowed. */
static void test_few_candidates(void **state)
{
    (void)state;
    nlp_beam *b = make_beam(3, 4, 4, 0.0f, 2, 1, 5, 0);
    toy d;
    toy_init(&d, 3, 8, hash_dist, 5);
    run(b, &d, 2, 0, 4, NULL, NULL);
    for (int i = 0; i < 2; i++) {
        check_results(b, &d, i, i, 5, 0.0f);
        /* the hypotheses are a^m EOS for m < 5 and a^5: six, four kept */
        assert_int_equal(nlp_beam_count(b, i), 4);
    }
    toy_free(&d);
    nlp_beam_free(b);

    static const int ban[2] = {0, 2};
    nlp_beam_config c;
    nlp_beam_config_default(&c);
    c.V = 3; c.k = 2; c.n_best = 2; c.bos = 0; c.eos = 1; c.ban = ban; c.n_ban = 2;
    assert_int_equal(nlp_beam_new(&b, &c, 1, 1, 5), NLP_OK);
    toy_init(&d, 3, 2, hash_dist, 6);
    run(b, &d, 1, 0, 2, NULL, NULL);
    assert_int_equal(d.steps, 1);
    assert_int_equal(nlp_beam_count(b, 0), 1);
    nlp_beam_hyp h;
    assert_int_equal(nlp_beam_result(b, 0, 0, &h), NLP_OK);
    assert_true(h.len == 0 && h.ended == 1);
    toy_free(&d);
    nlp_beam_free(b);
}

/* The pad id is never generated, nor any banned one (the toy checks every
** prev it is fed and the results are checked here). */
static void test_pad_and_ban(void **state)
{
    (void)state;
    static const int ban[2] = {0, 4};
    unsigned char never[6] = {0, 0, 0, 1, 1, 0};   /* pad 3, ban 4 (BOS only first) */
    nlp_beam_config c;
    nlp_beam_config_default(&c);
    c.V = 6; c.k = 3; c.n_best = 3; c.bos = 0; c.eos = 1; c.pad = 3;
    c.ban = ban; c.n_ban = 2;
    nlp_beam *b;
    int copy[2] = {0, 4};
    c.ban = copy;
    assert_int_equal(nlp_beam_new(&b, &c, 2, 1, 10), NLP_OK);
    copy[1] = 2;   /* the search copied the list */
    for (int seed = 1; seed <= 20; seed++) {
        toy d;
        toy_init(&d, 6, 6, hash_dist, (uint64_t)seed);
        d.never = never;
        d.scale = 6.0f;
        run(b, &d, 2, 0, 3, NULL, NULL);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < nlp_beam_count(b, i); j++) {
                nlp_beam_hyp h;
                nlp_beam_result(b, i, j, &h);
                for (int t = 0; t < h.len; t++)
                    assert_true(h.tokens[t] == 2 || h.tokens[t] == 5);
            }
        toy_free(&d);
    }
    nlp_beam_free(b);
}

static void test_bad_config(void **state)
{
    (void)state;
    static const int ban_eos[1] = {1}, ban_far[1] = {9}, ban_neg[1] = {-1};
    nlp_beam_config good;
    nlp_beam_config_default(&good);
    assert_int_equal(good.k, 5);
    assert_int_equal(good.n_best, 1);
    assert_true(good.length_penalty == 0.0f);
    good.V = 5;
    good.bos = 0;
    good.eos = 1;
    assert_int_equal(nlp_beam_config_check(&good, NULL), NLP_OK);
    struct {
        const char *field, *msg;
        nlp_beam_config c;
    } bad[20];
    int nb = 0;
#define BAD(what, text, stmt)                                                    \
    do {                                                                         \
        bad[nb].field = what;                                                    \
        bad[nb].msg = text;                                                      \
        bad[nb].c = good;                                                        \
        { nlp_beam_config *c = &bad[nb].c; stmt; }                               \
        nb++;                                                                    \
    } while (0)
    BAD("V 0", "vocabulary size 0", c->V = 0);
    BAD("k 0", "beam width 0", c->k = 0);
    BAD("k -3", "beam width -3", c->k = -3);
    BAD("n_best 0", "n-best 0", c->n_best = 0);
    BAD("n_best > k", "n-best 6", c->n_best = 6);
    BAD("alpha < 0", "length penalty -0.5", c->length_penalty = -0.5f);
    BAD("alpha NaN", "length penalty nan", c->length_penalty = NAN);
    BAD("alpha inf", "length penalty inf", c->length_penalty = INFINITY);
    BAD("alpha big", "length penalty 11", c->length_penalty = 11.0f);
    BAD("bos unset", "start id -1", c->bos = -1);
    BAD("bos = V", "start id 5", c->bos = 5);
    BAD("eos unset", "end id -1", c->eos = -1);
    BAD("pad -2", "padding id -2", c->pad = -2);
    BAD("pad = eos", "padding id 1 is the end id", c->pad = 1);
    BAD("pad = V", "padding id 5", c->pad = 5);
    BAD("ban eos", "banned id 1 is the end id", c->ban = ban_eos; c->n_ban = 1);
    BAD("ban far", "banned id 9", c->ban = ban_far; c->n_ban = 1);
    BAD("ban neg", "banned id -1", c->ban = ban_neg; c->n_ban = 1);
    BAD("ban NULL", "1 banned ids but no list", c->ban = NULL; c->n_ban = 1);
    BAD("n_ban < 0", "-1 banned ids", c->n_ban = -1);
#undef BAD
    for (int i = 0; i < nb; i++) {
        nlp_error e;
        nlp_error_clear(&e);
        if (nlp_beam_config_check(&bad[i].c, &e) != NLP_EINVAL)
            fail_msg("%s: accepted", bad[i].field);
        if (!strstr(e.text, bad[i].msg))
            fail_msg("%s: message \"%s\" lacks \"%s\"", bad[i].field, e.text, bad[i].msg);
        nlp_beam *b = (nlp_beam *)&e;
        assert_int_equal(nlp_beam_new(&b, &bad[i].c, 1, 1, 1), NLP_EINVAL);
        assert_null(b);
    }
    assert_int_equal(nlp_beam_config_check(NULL, NULL), NLP_EINVAL);
    /* Sizes: not positive, or whose products overflow. */
    nlp_beam *b = (nlp_beam *)&good;
    assert_int_equal(nlp_beam_new(&b, &good, 0, 1, 1), NLP_EINVAL);
    assert_null(b);
    assert_int_equal(nlp_beam_new(&b, &good, 1, 0, 1), NLP_EINVAL);
    assert_int_equal(nlp_beam_new(&b, &good, 1, 1, 0), NLP_EINVAL);
    assert_int_equal(nlp_beam_new(&b, &good, -4, 1, 1), NLP_EINVAL);
    assert_int_equal(nlp_beam_new(NULL, &good, 1, 1, 1), NLP_EINVAL);
    nlp_beam_config wide = good;
    wide.k = INT_MAX;
    wide.n_best = INT_MAX;
    assert_int_equal(nlp_beam_new(&b, &wide, 2, 1, 1), NLP_EINVAL);     /* rows overflow int */
    wide = good;
    wide.want_attention = 1;
    wide.k = 1 << 15;
    if (sizeof(size_t) == 8) {
        assert_int_equal(nlp_beam_new(&b, &wide, 1 << 15, INT_MAX, INT_MAX), NLP_EINVAL);
    }
    assert_null(b);
    nlp_beam_free(NULL);
}

/* Searches the object was not made for, and decoders that misbehave:
** EINVAL/ERANGE with a message, the decoder's own code passed on, no
** results left behind. */
static void test_bad_search(void **state)
{
    (void)state;
    const int k = 2, V = 6;
    nlp_beam *b = make_beam(V, k, 1, 0.0f, 3, 4, 6, 1);
    toy d;
    toy_init(&d, V, 3 * k, hash_dist, 9);
    toy_attention(&d, 4);
    nlp_beam_ops ops = toy_ops(&d);
    nlp_error e;
    int sl[3] = {4, 2, 3}, ml[3] = {6, 6, 6};
    run(b, &d, 3, 0, k, sl, ml);
    assert_int_equal(nlp_beam_count(b, 2), 1);

    struct {
        const char *what;
        int n, sl_bad, ml_bad, rc;
        const char *msg;
    } cases[] = {
        {"n above max_n", 4, 0, 0, NLP_EINVAL, "4 sentences, not in 0..3"},
        {"n < 0", -1, 0, 0, NLP_EINVAL, "-1 sentences"},
        {"source too long", 3, 5, 0, NLP_EINVAL, "source length 5 is not in 0..4"},
        {"source < 0", 3, -1, 0, NLP_EINVAL, "source length -1"},
        {"max length too long", 3, 0, 7, NLP_EINVAL, "maximum length 7 is not in 0..6"},
        {"max length < 0", 3, 0, -2, NLP_EINVAL, "maximum length -2"},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int s2[3] = {4, 2, 3}, m2[3] = {6, 6, 6};
        if (cases[ci].sl_bad)
            s2[1] = cases[ci].sl_bad;
        if (cases[ci].ml_bad)
            m2[2] = cases[ci].ml_bad;
        toy_begin(&d, 3, 0, k);
        nlp_error_clear(&e);
        int rc = nlp_beam_search(b, &ops, cases[ci].n, s2, m2, &e);
        if (rc != cases[ci].rc || !strstr(e.text, cases[ci].msg))
            fail_msg("%s: got %d \"%s\"", cases[ci].what, rc, e.text);
        assert_int_equal(d.steps, 0);
        assert_int_equal(nlp_beam_count(b, 0), 0);
    }
    /* wrong V, missing callbacks, no attention sizes */
    nlp_beam_ops wrong = ops;
    wrong.V = 7;
    assert_int_equal(nlp_beam_search(b, &wrong, 1, sl, ml, &e), NLP_EINVAL);
    assert_non_null(strstr(e.text, "has 7 targets"));
    wrong = ops;
    wrong.reorder = NULL;
    assert_int_equal(nlp_beam_search(b, &wrong, 1, sl, ml, &e), NLP_EINVAL);
    assert_int_equal(nlp_beam_search(b, NULL, 1, sl, ml, &e), NLP_EINVAL);
    assert_int_equal(nlp_beam_search(NULL, &ops, 1, sl, ml, &e), NLP_EINVAL);
    assert_int_equal(nlp_beam_search(b, &ops, 1, NULL, ml, &e), NLP_EINVAL);
    assert_non_null(strstr(e.text, "no source lengths"));

    /* What the decoder gives: NaN, +inf, -inf, a positive log-probability,
    ** a NaN attention weight, no attention, a failing step. */
    struct {
        const char *what;
        float value;
        int attn, no_attn, fail, rc;
        const char *msg;
    } faults[] = {
        {"NaN log-prob", NAN, 0, 0, 0, NLP_ERANGE, "log-probability nan"},
        {"+inf log-prob", INFINITY, 0, 0, 0, NLP_ERANGE, "log-probability inf"},
        {"-inf log-prob", -INFINITY, 0, 0, 0, NLP_ERANGE, "log-probability -inf"},
        {"positive log-prob", 0.25f, 0, 0, 0, NLP_ERANGE, "log-probability 0.25"},
        {"NaN attention", NAN, 1, 0, 0, NLP_ERANGE, "attention weight nan"},
        {"no attention", 0, 0, 1, 0, NLP_EINVAL, "gave no attention"},
        {"step fails", 0, 0, 0, 1, NLP_EIO, "toy: step 3 fails"},
    };
    for (size_t fi = 0; fi < sizeof faults / sizeof faults[0]; fi++) {
        toy_begin(&d, 3, 0, k);
        d.bad_at_step = faults[fi].fail || faults[fi].no_attn ? 0 : 3;
        d.bad_value = faults[fi].value;
        d.bad_attn = faults[fi].attn;
        d.no_attn = faults[fi].no_attn;
        d.fail_at_step = faults[fi].fail ? 3 : 0;
        nlp_error_clear(&e);
        int rc = nlp_beam_search(b, &ops, 3, sl, ml, &e);
        if (rc != faults[fi].rc || !strstr(e.text, faults[fi].msg))
            fail_msg("%s: got %d \"%s\"", faults[fi].what, rc, e.text);
        assert_int_equal(nlp_beam_count(b, 0), 0);
        nlp_beam_hyp h;
        assert_int_equal(nlp_beam_result(b, 0, 0, &h), NLP_EINVAL);
        assert_null(h.tokens);
    }
    d.bad_at_step = d.fail_at_step = d.no_attn = 0;
    /* and it works again after */
    run(b, &d, 3, 0, k, sl, ml);
    nlp_beam_hyp h;
    assert_int_equal(nlp_beam_result(b, 0, 0, &h), NLP_OK);
    assert_int_equal(nlp_beam_result(b, 0, 1, &h), NLP_EINVAL);
    assert_int_equal(nlp_beam_result(b, 3, 0, &h), NLP_EINVAL);
    assert_int_equal(nlp_beam_result(b, -1, 0, &h), NLP_EINVAL);
    assert_int_equal(nlp_beam_result(b, 0, -1, &h), NLP_EINVAL);
    assert_int_equal(nlp_beam_count(b, 3), 0);
    assert_int_equal(nlp_beam_count(b, -1), 0);
    /* zero sentences: nothing to do, no call */
    toy_begin(&d, 0, 0, k);
    assert_int_equal(nlp_beam_search(b, &ops, 0, NULL, NULL, &e), NLP_OK);
    assert_int_equal(d.steps + d.reorders, 0);
    nlp_beam_free(b);
    toy_free(&d);
}

/* The search allocates nothing; nlp_beam_new returns NLP_ENOMEM and frees
** what it took for every allocation that fails, alone or with all after. */
static void test_alloc_failures(void **state)
{
    (void)state;
    nlp_beam *b = make_beam(9, 4, 2, 0.6f, 3, 5, 7, 1);
    toy d;
    toy_init(&d, 9, 12, hash_dist, 3);
    toy_attention(&d, 5);
    int sl[3] = {5, 3, 1};
    nlp_alloc_fail_at(0, 0);
    run(b, &d, 3, 0, 4, sl, NULL);
    assert_int_equal(nlp_alloc_count(), 0);
    nlp_beam_free(b);
    toy_free(&d);

    static const int ban[2] = {0, 3};
    nlp_beam_config c;
    nlp_beam_config_default(&c);
    c.V = 9; c.k = 4; c.n_best = 2; c.bos = 0; c.eos = 1; c.ban = ban; c.n_ban = 2;
    for (int att = 0; att <= 1; att++) {
        c.want_attention = att;
        nlp_alloc_fail_at(0, 0);
        assert_int_equal(nlp_beam_new(&b, &c, 3, 5, 7), NLP_OK);
        long count = nlp_alloc_count();
        nlp_beam_free(b);
        assert_true(count >= 10);
        for (int sticky = 0; sticky <= 1; sticky++)
            for (long n = 1; n <= count; n++) {
                size_t before = heap_in_use();
                nlp_alloc_fail_at(n, sticky);
                b = (nlp_beam *)&c;
                int rc = nlp_beam_new(&b, &c, 3, 5, 7);
                nlp_alloc_fail_at(0, 0);
                if (rc != NLP_ENOMEM || b != NULL)
                    fail_msg("allocation %ld of %ld failing%s: got %d", n, count,
                             sticky ? " (sticky)" : "", rc);
                if (heap_in_use() != before)
                    fail_msg("allocation %ld of %ld failing%s: a leak", n, count,
                             sticky ? " (sticky)" : "");
            }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_equals_beam1),
        cmocka_unit_test(test_exhaustive),
        cmocka_unit_test(test_wider_beams),
        cmocka_unit_test(test_wider_can_lose),
        cmocka_unit_test(test_length_penalty),
        cmocka_unit_test(test_max_length),
        cmocka_unit_test(test_n_best),
        cmocka_unit_test(test_attention_ancestry),
        cmocka_unit_test(test_batch_drops_finished),
        cmocka_unit_test(test_few_candidates),
        cmocka_unit_test(test_pad_and_ban),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_bad_search),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
