/*
** Unit tests for w2v (Huffman codes, the unigram table, corpus counting,
** training, subsampling, divergence, word classes) and vectors (text/binary
** round trips, bad, truncated and lying files from files and pipes, atomic
** output files, queries, Spearman).  Regressions are named after their
** issue: test_issue11_3_* is defect 3 of issue 11.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nlp.h"

/* ---- Huffman -------------------------------------------------------------- */

static void check_huffman(const int64_t *counts, long n)
{
    nlp_w2v_huffman *h;
    assert_int_equal(nlp_w2v_huffman_new(&h, counts, n), NLP_OK);
    double kraft = 0;
    for (long i = 0; i < n; i++) {
        int64_t len = h->offset[i + 1] - h->offset[i];
        assert_true(len >= 1 && len <= n - 1);
        kraft += ldexp(1.0, -(int)len);
        /* The root (inner node n-2) is first on every path; points are inner ids. */
        assert_int_equal(h->points[h->offset[i]], n - 2);
        for (int64_t d = h->offset[i]; d < h->offset[i + 1]; d++)
            assert_true(h->points[d] >= 0 && h->points[d] <= n - 2);
        /* A more frequent word never has a longer code. */
        for (long j = 0; j < n; j++)
            if (counts[j] > counts[i])
                assert_true(h->offset[j + 1] - h->offset[j] <= len);
        /* Prefix-free: no code is a prefix of another. */
        for (long j = 0; j < n; j++) {
            if (j == i)
                continue;
            int64_t lj = h->offset[j + 1] - h->offset[j];
            if (lj < len)
                continue;
            assert_false(memcmp(h->bits + h->offset[i], h->bits + h->offset[j], (size_t)len) == 0);
        }
    }
    /* A full binary tree: the Kraft sum is exactly 1. */
    assert_true(fabs(kraft - 1.0) < 1e-9);
    nlp_w2v_huffman_free(h);
}

static void test_huffman(void **state)
{
    (void)state;
    int64_t a[] = {45, 13, 12, 16, 9, 5};
    check_huffman(a, 6);
    /* Textbook example (CLRS 16.3): code lengths 1,3,3,3,4,4. */
    nlp_w2v_huffman *h;
    assert_int_equal(nlp_w2v_huffman_new(&h, a, 6), NLP_OK);
    int want[] = {1, 3, 3, 3, 4, 4};
    for (int i = 0; i < 6; i++)
        assert_int_equal(h->offset[i + 1] - h->offset[i], want[i]);
    nlp_w2v_huffman_free(h);
    int64_t two[] = {3, 1};
    check_huffman(two, 2);
    int64_t eq[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    check_huffman(eq, 8);
    int64_t zipf[200];
    for (int i = 0; i < 200; i++)
        zipf[i] = 100000 / (i + 1);
    check_huffman(zipf, 200);
}

/* ---- unigram table --------------------------------------------------------- */

static void test_unigram(void **state)
{
    (void)state;
    int64_t counts[] = {1000, 500, 100, 10, 1, 0, 50};
    long n = 7;
    nlp_w2v_unigram *u;
    assert_int_equal(nlp_w2v_unigram_new(&u, counts, n, 0.75, 1), NLP_OK);
    double w[7], sum = 0;
    for (long i = 0; i < n; i++) {
        w[i] = i < 1 ? 0 : pow((double)counts[i], 0.75);
        sum += w[i];
    }
    nlp_rng r;
    nlp_rng_seed(&r, 3);
    enum { N = 1000000 };
    long got[7] = {0};
    for (int k = 0; k < N; k++) {
        long id = nlp_w2v_unigram_draw(u, nlp_rng_u64(&r));
        assert_true(id >= 0 && id < n);
        got[id]++;
    }
    assert_int_equal(got[0], 0);   /* skipped ("</s>") */
    assert_int_equal(got[5], 0);   /* count 0 */
    for (long i = 1; i < n; i++) {
        double p = w[i] / sum, sd = sqrt(N * p * (1 - p));
        if (fabs((double)got[i] - N * p) > 5 * sd + 1)
            fail_msg("word %ld drawn %ld times, expected %.0f", i, got[i], N * p);
    }
    nlp_w2v_unigram_free(u);
    /* Nothing to draw: refused. */
    int64_t zero[] = {5, 0};
    nlp_w2v_unigram *bad = (void *)zero;   /* a failed constructor must reset *out */
    assert_int_equal(nlp_w2v_unigram_new(&bad, zero, 2, 0.75, 1), NLP_EINVAL);
    assert_null(bad);
    assert_int_equal(nlp_w2v_unigram_new(&bad, zero, 0, 0.75, 1), NLP_EINVAL);
    nlp_w2v_huffman *hbad = (void *)zero;
    assert_int_equal(nlp_w2v_huffman_new(&hbad, zero, -1), NLP_EINVAL);
    assert_null(hbad);
    nlp_w2v_unigram_free(NULL);
}

/* ---- counting ----------------------------------------------------------- */

static FILE *text_file(const char *s)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    fputs(s, f);
    fflush(f);
    return f;
}

static void test_count(void **state)
{
    (void)state;
    FILE *f = text_file("the cat\tsat\n\non  the\r\nmat the\n");
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    assert_int_equal(nlp_w2v_vocab_init(v), NLP_OK);
    nlp_error e;
    assert_int_equal(nlp_w2v_count_fd(v, fileno(f), 0, "t", &e), NLP_OK);
    assert_int_equal(nlp_vocab_count(v, 0), 4);  /* four newlines */
    assert_int_equal(nlp_vocab_count(v, nlp_vocab_find_str(v, "the")), 3);
    assert_int_equal(nlp_vocab_size(v), 6);
    assert_int_equal(nlp_w2v_vocab_finish(v, 2, &e), NLP_OK);
    assert_int_equal(nlp_vocab_size(v), 2);
    assert_string_equal(nlp_vocab_word(v, 0), "</s>");
    assert_string_equal(nlp_vocab_word(v, 1), "the");
    assert_int_equal(nlp_w2v_vocab_finish(v, 5, &e), NLP_EEMPTY);
    nlp_vocab_free(v);
    fclose(f);

    /* A word longer than the read block is kept whole. */
    size_t big = (1 << 20) * 2 + 17;
    char *s = malloc(big + 8);
    memset(s, 'y', big);
    strcpy(s + big, " x\n");
    f = text_file(s);
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    nlp_w2v_vocab_init(v);
    assert_int_equal(nlp_w2v_count_fd(v, fileno(f), 0, "t", &e), NLP_OK);
    assert_int_equal(nlp_vocab_size(v), 3);
    assert_int_equal(nlp_vocab_word_len(v, 1), big);
    nlp_vocab_free(v);
    fclose(f);
    free(s);

    /* max_words bounds the table: words of count 1 go first. */
    f = text_file("a a a b c d e f g a\n");
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    nlp_w2v_vocab_init(v);
    assert_int_equal(nlp_w2v_count_fd(v, fileno(f), 4, "t", &e), NLP_OK);
    assert_true(nlp_vocab_size(v) <= 4);
    assert_true(nlp_vocab_find_str(v, "a") > 0);
    nlp_vocab_free(v);
    fclose(f);
}

/* ---- training ----------------------------------------------------------- */

/*
** Two groups of words that co-occur only within their group: lines of 8
** words a0..a9 or 8 words b0..b9; with the_too, each word is followed by
** "the", a frequent word that subsampling should mostly drop.
*/
static FILE *groups_corpus(int lines, int the_too)
{
    FILE *f = tmpfile();
    nlp_rng r;
    nlp_rng_seed(&r, 11);
    for (int i = 0; i < lines; i++) {
        int g = (int)nlp_rng_below(&r, 2);
        for (int k = 0; k < 8; k++) {
            fprintf(f, "%c%d ", g ? 'b' : 'a', (int)nlp_rng_below(&r, 10));
            if (the_too)
                fputs("the ", f);
        }
        fputc('\n', f);
    }
    fflush(f);
    return f;
}

static FILE *two_groups(int lines)
{
    return groups_corpus(lines, 0);
}

/* The test configuration: 20 dimensions, 3 epochs, no subsampling, seed 5. */
static void small_config(nlp_w2v_config *c, int cbow, int hs, int neg, int shared, int threads)
{
    nlp_w2v_config_default(c);
    c->size = 20;
    c->cbow = cbow;
    c->hs = hs;
    c->negative = neg;
    c->shared_negatives = shared;
    c->threads = threads;
    c->iter = 3;
    c->seed = 5;
    c->sample = 0;
}

/* Counts f (min-count 1) into a new vocabulary. */
static nlp_vocab *count_vocab(FILE *f)
{
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    nlp_error e;
    nlp_w2v_vocab_init(v);
    assert_int_equal(nlp_w2v_count_fd(v, fileno(f), 0, "t", &e), NLP_OK);
    assert_int_equal(nlp_w2v_vocab_finish(v, 1, &e), NLP_OK);
    return v;
}

/* Trains on f with c; *rc gets nlp_w2v_train's result (NULL: it must be NLP_OK). */
static nlp_w2v *train_with(FILE *f, nlp_vocab **vout, const nlp_w2v_config *c, int *rc, nlp_error *e)
{
    nlp_vocab *v = count_vocab(f);
    nlp_w2v *m;
    assert_int_equal(nlp_w2v_new(&m, c, v, e), NLP_OK);
    fseek(f, 0, SEEK_END);
    int r = nlp_w2v_train(m, fileno(f), ftell(f), "t", e);
    if (rc)
        *rc = r;
    else
        assert_int_equal(r, NLP_OK);
    *vout = v;
    return m;
}

static nlp_w2v *train(FILE *f, nlp_vocab **vout, int cbow, int hs, int neg, int shared, int threads)
{
    nlp_w2v_config c;
    nlp_error e;
    small_config(&c, cbow, hs, neg, shared, threads);
    return train_with(f, vout, &c, NULL, &e);
}

static double cosine(const float *a, const float *b, int d)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < d; i++) {
        ab += a[i] * b[i];
        aa += a[i] * a[i];
        bb += b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

/* Mean cosine within groups minus mean cosine across groups (a* and b* words only). */
static double separation(nlp_w2v *m, nlp_vocab *v)
{
    const float *x = nlp_w2v_vectors(m);
    int d = nlp_w2v_dim(m);
    double within = 0, across = 0;
    long nw = 0, na = 0;
    for (long i = 1; i < nlp_vocab_size(v); i++)
        for (long j = i + 1; j < nlp_vocab_size(v); j++) {
            const char *wi = nlp_vocab_word(v, i), *wj = nlp_vocab_word(v, j);
            if ((wi[0] != 'a' && wi[0] != 'b') || (wj[0] != 'a' && wj[0] != 'b'))
                continue;
            double c = cosine(x + i * d, x + j * d, d);
            if (nlp_vocab_word(v, i)[0] == nlp_vocab_word(v, j)[0]) {
                within += c;
                nw++;
            } else {
                across += c;
                na++;
            }
        }
    return within / nw - across / na;
}

/*
** Each configuration must separate the groups by at least min.  Measured
** over 10 corpora x 3 seeds, a working model gives at least 0.87 (skip-gram
** + negatives), 0.79 (CBOW + negatives), 1.25 / 1.05 (skip-gram / CBOW +
** hs), 0.87 (shared negatives), 1.03 (hs + negatives); a model whose
** sigmoid is stuck at 0.5 gives at most 0.13, 0.10, -, -, 0.09 and 0.58,
** one that never updates its output weights at most 0.09.
*/
static void test_train_separates(void **state)
{
    (void)state;
    FILE *f = two_groups(400);
    struct { int cbow, hs, neg, shared, threads; double min; } cfg[] = {
        {0, 0, 5, 0, 1, 0.75}, {1, 0, 5, 0, 1, 0.65}, {0, 1, 0, 0, 1, 1.0},
        {1, 1, 0, 0, 2, 0.9}, {0, 0, 5, 1, 1, 0.75}, {0, 1, 3, 0, 2, 0.85},
    };
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            nlp_w2v_config c;
            nlp_error e;
            nlp_vocab *v;
            small_config(&c, cfg[k].cbow, cfg[k].hs, cfg[k].neg, cfg[k].shared, cfg[k].threads);
            c.seed = seed;
            nlp_w2v *m = train_with(f, &v, &c, NULL, &e);
            assert_int_equal(nlp_vocab_size(v), 21);
            assert_true(nlp_w2v_words_processed(m) > 0);
            double s = separation(m, v);
            print_message("config %zu seed %d: separation %.3f\n", k, (int)seed, s);
            if (!(s > cfg[k].min))
                fail_msg("config %zu seed %d: separation %.3f, a working model gives more than %.2f",
                         k, (int)seed, s, cfg[k].min);
            nlp_w2v_free(m);
            nlp_vocab_free(v);
        }
    fclose(f);
}

/*
** -sample: each occurrence of a word of relative frequency f is kept with
** probability p = min(1, (sqrt(f/t) + 1) t/f) for the threshold t
** (word2vec's formula, in the man page).  In this corpus "the" is every
** other word (f = 8/17, p = 0.167 at t = 0.01) and the a/b words sit near
** the level (2.618 t) where p reaches 1: the words trained on must match
** the sum of count x p within 5 standard deviations of the binomial sums.
*/
static void test_train_subsampling(void **state)
{
    (void)state;
    const double t = 0.01;
    FILE *f = groups_corpus(400, 1);
    nlp_vocab *v = count_vocab(f);
    long the = nlp_vocab_find_str(v, "the");
    assert_true(the > 0);
    double total = (double)nlp_vocab_total(v), n_eos = (double)nlp_vocab_count(v, 0);
    double mean = 0, var = 0, p_the = 0;
    for (long i = 1; i < nlp_vocab_size(v); i++) {
        double n = (double)nlp_vocab_count(v, i), fr = n / total;
        double p = fmin(1.0, (sqrt(fr / t) + 1) * t / fr);
        mean += n * p;
        var += n * p * (1 - p);
        if (i == the)
            p_the = p;
    }
    nlp_vocab_free(v);
    assert_true(p_the > 0.15 && p_the < 0.18);
    struct { int cbow, hs, neg, threads; double min; } cfg[] = {
        {1, 0, 5, 1, 0.65}, {0, 0, 5, 1, 0.75}, {1, 1, 0, 2, 0.9},
    };
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        nlp_w2v_config c;
        nlp_error e;
        small_config(&c, cfg[k].cbow, cfg[k].hs, cfg[k].neg, 0, cfg[k].threads);
        c.sample = t;
        nlp_w2v *m = train_with(f, &v, &c, NULL, &e);
        double kept = (double)nlp_w2v_words_trained(m), want = c.iter * mean, sd = sqrt(c.iter * var);
        print_message("config %zu: kept %.0f of %.0f words, expected %.0f +- %.1f\n", k, kept,
                      c.iter * (total - n_eos), want, sd);
        if (fabs(kept - want) > 5 * sd)
            fail_msg("config %zu: kept %.0f words, expected %.0f +- 5 x %.1f", k, kept, want, sd);
        assert_int_equal(nlp_w2v_words_processed(m), c.iter * (int64_t)total);
        /* Still trains, and better than without: "the" no longer ties the groups together. */
        double s = separation(m, v);
        nlp_w2v_free(m);
        nlp_vocab_free(v);
        c.sample = 0;
        m = train_with(f, &v, &c, NULL, &e);
        assert_int_equal(nlp_w2v_words_trained(m), c.iter * (int64_t)(total - n_eos));
        double s0 = separation(m, v);
        print_message("config %zu: separation %.3f with -sample %g, %.3f without\n", k, s, t, s0);
        if (!(s > cfg[k].min) || !(s > s0))
            fail_msg("config %zu: separation %.3f with subsampling, %.3f without", k, s, s0);
        nlp_w2v_free(m);
        nlp_vocab_free(v);
    }
    fclose(f);
}

/*
** issue11-1: word2vec -alpha 2 diverges to NaN, and (int)NaN indexed the
** sigmoid table far out of bounds (a segfault).  Now training stops with
** NLP_ERANGE and a message, on every path; a run that stays finite is fine.
*/
static void test_issue11_1_alpha_2(void **state)
{
    (void)state;
    FILE *f = two_groups(400);
    struct { int cbow, hs, neg, shared, threads; } cfg[] = {
        {0, 0, 5, 0, 1}, {1, 0, 5, 0, 1}, {0, 0, 5, 1, 1}, {0, 1, 3, 0, 2}, {0, 0, 5, 0, 2},
        {0, 1, 0, 0, 1}, {1, 1, 0, 0, 1},
    };
    double alphas[] = {2, 5, 100};
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++)
        for (int a = 0; a < 3; a++) {
            nlp_w2v_config c;
            nlp_error e;
            nlp_vocab *v;
            int rc;
            small_config(&c, cfg[k].cbow, cfg[k].hs, cfg[k].neg, cfg[k].shared, cfg[k].threads);
            c.alpha = alphas[a];
            nlp_w2v *m = train_with(f, &v, &c, &rc, &e);
            print_message("config %zu alpha %g: %s\n", k, alphas[a], rc == NLP_OK ? "finite" : e.text);
            if (rc == NLP_OK) {
                /* Hierarchical softmax skips saturated nodes and may stay finite. */
                const float *x = nlp_w2v_vectors(m);
                for (long i = 0; i < nlp_vocab_size(v) * nlp_w2v_dim(m); i++)
                    assert_true(isfinite(x[i]));
                assert_true(cfg[k].neg == 0);
            } else {
                assert_int_equal(rc, NLP_ERANGE);
                assert_non_null(strstr(e.text, "training diverged"));
            }
            nlp_w2v_free(m);
            nlp_vocab_free(v);
        }
    /*
    ** A NaN already in the vectors takes the defined branch on both paths
    ** (negative sampling and hierarchical softmax alone): no update, an
    ** error.  With 16 dimensions nlp_w2v_vectors is the model's own array.
    */
    for (int hs = 0; hs <= 1; hs++) {
        nlp_w2v_config c;
        nlp_error e;
        nlp_vocab *v = count_vocab(f);
        small_config(&c, 0, hs, hs ? 0 : 5, 0, 1);
        c.size = 16;
        nlp_w2v *m;
        assert_int_equal(nlp_w2v_new(&m, &c, v, &e), NLP_OK);
        float *x = (float *)nlp_w2v_vectors(m);
        long a3 = nlp_vocab_find_str(v, "a3");
        x[a3 * 16 + 5] = NAN;
        fseek(f, 0, SEEK_END);
        assert_int_equal(nlp_w2v_train(m, fileno(f), ftell(f), "t", &e), NLP_ERANGE);
        /* Stopped early: not every epoch ran. */
        assert_true(nlp_w2v_words_processed(m) < c.iter * nlp_vocab_total(v));
        nlp_w2v_free(m);
        nlp_vocab_free(v);
    }
    fclose(f);
}

/*
** issue11-13: a read error in a worker thread is reported with that
** thread's errno (a directory gives EISDIR to pread), not whatever errno
** the main thread holds after joining.
*/
static void test_issue11_13_thread_errno(void **state)
{
    (void)state;
    FILE *f = two_groups(50);
    nlp_vocab *v = count_vocab(f);
    fclose(f);
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    assert_true(dir >= 0);
    for (int threads = 1; threads <= 3; threads++) {
        nlp_w2v_config c;
        nlp_error e;
        small_config(&c, 0, 0, 5, 0, threads);
        nlp_w2v *m;
        assert_int_equal(nlp_w2v_new(&m, &c, v, &e), NLP_OK);
        errno = 0;
        assert_int_equal(nlp_w2v_train(m, dir, 1000, "corpus-dir", &e), NLP_EIO);
        char msg[1024];
        nlp_error_format(&e, msg, sizeof msg);
        assert_string_equal(msg, "corpus-dir: read error: Is a directory");
        nlp_w2v_free(m);
    }
    nlp_vocab *v2;
    assert_int_equal(nlp_vocab_new(&v2), NLP_OK);
    nlp_w2v_vocab_init(v2);
    nlp_error e;
    errno = 0;
    assert_int_equal(nlp_w2v_count_fd(v2, dir, 0, "corpus-dir", &e), NLP_EIO);
    assert_string_equal(e.text, "read error: Is a directory");
    nlp_vocab_free(v2);
    nlp_vocab_free(v);
    close(dir);
}

static void test_train_repeatable(void **state)
{
    (void)state;
    FILE *f = two_groups(100);
    nlp_vocab *v1, *v2;
    nlp_w2v *a = train(f, &v1, 0, 0, 5, 0, 1);
    nlp_w2v *b = train(f, &v2, 0, 0, 5, 0, 1);
    long n = nlp_vocab_size(v1) * nlp_w2v_dim(a);
    assert_memory_equal(nlp_w2v_vectors(a), nlp_w2v_vectors(b), (size_t)n * sizeof(float));
    nlp_w2v_free(a);
    nlp_w2v_free(b);
    nlp_vocab_free(v1);
    nlp_vocab_free(v2);
    fclose(f);
}

/* Every word is read exactly once per epoch, however the file is sliced. */
static void test_slices_exact(void **state)
{
    (void)state;
    /* Long and short words, blank runs and lines, no final newline. */
    FILE *f = tmpfile();
    nlp_rng r;
    nlp_rng_seed(&r, 2);
    for (int i = 0; i < 3000; i++) {
        int len = 1 + (int)nlp_rng_below(&r, 3);
        for (int k = 0; k < len; k++)
            fputc('a' + (int)nlp_rng_below(&r, 4), f);
        fputs(nlp_rng_below(&r, 5) == 0 ? "\n" : nlp_rng_below(&r, 2) ? " " : " \t  ", f);
    }
    fputs("zz", f);
    fflush(f);
    long size = ftell(f);
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    nlp_error e;
    nlp_w2v_vocab_init(v);
    assert_int_equal(nlp_w2v_count_fd(v, fileno(f), 0, "t", &e), NLP_OK);
    assert_int_equal(nlp_w2v_vocab_finish(v, 1, &e), NLP_OK);
    int threads[] = {1, 2, 3, 7, 16};
    for (int k = 0; k < 5; k++) {
        nlp_w2v_config c;
        nlp_w2v_config_default(&c);
        c.size = 4;
        c.iter = 2;
        c.threads = threads[k];
        nlp_w2v *m;
        assert_int_equal(nlp_w2v_new(&m, &c, v, &e), NLP_OK);
        assert_int_equal(nlp_w2v_train(m, fileno(f), size, "t", &e), NLP_OK);
        assert_int_equal(nlp_w2v_words_processed(m), 2 * nlp_vocab_total(v));
        nlp_w2v_free(m);
    }
    nlp_vocab_free(v);
    fclose(f);
}

/*
** Every allocation of nlp_w2v_new failing alone gives NLP_ENOMEM and no
** model: a failed unigram table used to be taken for "no word has a count"
** and replaced, silently, by uniform negatives.
*/
static void test_new_nomem(void **state)
{
    (void)state;
    FILE *f = two_groups(50);
    nlp_vocab *v = count_vocab(f);
    fclose(f);
    for (int hs = 0; hs <= 1; hs++) {
        nlp_w2v_config c;
        small_config(&c, 0, hs, 5, 0, 1);
        nlp_w2v *m;
        nlp_error e;
        nlp_alloc_fail_at(0, 0);
        assert_int_equal(nlp_w2v_new(&m, &c, v, &e), NLP_OK);
        long total = nlp_alloc_count();
        nlp_w2v_free(m);
        assert_true(total > 5);
        for (long n = 1; n <= total; n++) {
            m = (nlp_w2v *)1;
            nlp_alloc_fail_at(n, 0);
            int rc = nlp_w2v_new(&m, &c, v, &e);
            nlp_alloc_fail_at(0, 0);
            if (rc != NLP_ENOMEM)
                fail_msg("hs %d: allocation %ld of %ld failing gave %d", hs, n, total, rc);
            assert_null(m);
        }
    }
    /* Training too, with threads (each has its own buffers and reader). */
    f = two_groups(50);
    fseek(f, 0, SEEK_END);
    for (int threads = 1; threads <= 2; threads++) {
        nlp_w2v_config c;
        nlp_error e;
        small_config(&c, 1, 1, 5, 0, threads);
        nlp_w2v *m;
        assert_int_equal(nlp_w2v_new(&m, &c, v, &e), NLP_OK);
        nlp_alloc_fail_at(0, 0);
        assert_int_equal(nlp_w2v_train(m, fileno(f), ftell(f), "t", &e), NLP_OK);
        long total = nlp_alloc_count();
        for (long n = 1; n <= total; n++) {
            nlp_alloc_fail_at(n, 0);
            int rc = nlp_w2v_train(m, fileno(f), ftell(f), "t", &e);
            nlp_alloc_fail_at(0, 0);
            if (rc != NLP_ENOMEM)
                fail_msg("threads %d: allocation %ld of %ld failing gave %d", threads, n, total, rc);
        }
        nlp_w2v_free(m);
    }
    fclose(f);
    nlp_vocab_free(v);
}

static void test_config_errors(void **state)
{
    (void)state;
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    nlp_w2v_vocab_init(v);
    nlp_vocab_add(v, "a", 1);
    nlp_w2v_config c;
    nlp_w2v_config_default(&c);
    nlp_w2v *m;
    nlp_error e;
    c.negative = 0;
    assert_int_equal(nlp_w2v_new(&m, &c, v, &e), NLP_EINVAL);
    assert_null(m);
    nlp_w2v_config_default(&c);
    c.size = 0;
    assert_int_equal(nlp_w2v_new(&m, &c, v, &e), NLP_EINVAL);
    nlp_w2v_config_default(&c);
    assert_int_equal(nlp_w2v_new(&m, &c, v, &e), NLP_OK);
    nlp_w2v_free(m);
    nlp_w2v_free(NULL);
    nlp_vocab_free(v);
}

/* ---- vectors files ---------------------------------------------------------- */

static nlp_vocab *words3(void)
{
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    nlp_vocab_add(v, "</s>", 4);
    nlp_vocab_add(v, "città", strlen("città"));
    nlp_vocab_add(v, "b", 1);
    return v;
}

static void roundtrip(int binary)
{
    nlp_vocab *w = words3();
    float data[] = {0.5f, -0.25f, 1e-7f, 0.123456789f, -3.0f, 2.0f, 0.0f, 1.0f, -1.0f};
    FILE *f = tmpfile();
    nlp_error e;
    assert_int_equal(nlp_vectors_write(f, w, data, 3, 3, binary, "v", &e), NLP_OK);
    rewind(f);
    nlp_vectors *v;
    assert_int_equal(nlp_vectors_read(f, "v", 0, &v, &e), NLP_OK);
    assert_int_equal(v->n, 3);
    assert_int_equal(v->dim, 3);
    assert_string_equal(nlp_vocab_word(v->words, 1), "città");
    for (int i = 0; i < 9; i++) {
        if (binary)
            assert_true(v->data[i] == data[i]);
        else
            assert_true(fabs(v->data[i] - data[i]) <= 5e-7);
    }
    nlp_vectors_free(v);
    rewind(f);
    assert_int_equal(nlp_vectors_read(f, "v", 2, &v, &e), NLP_OK);
    assert_int_equal(v->n, 2);
    nlp_vectors_free(v);
    fclose(f);
    nlp_vocab_free(w);
}

static void test_vectors_roundtrip(void **state)
{
    (void)state;
    roundtrip(0);
    roundtrip(1);
    /* The text layout is word2vec's exactly: "%lf " per number. */
    nlp_vocab *w = words3();
    float data[] = {0.5f, -0.25f, 1, 2, 3, 4, 5, 6, 7};
    FILE *f = tmpfile();
    nlp_error e;
    assert_int_equal(nlp_vectors_write(f, w, data, 1, 2, 0, "v", &e), NLP_OK);
    rewind(f);
    char buf[128];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    assert_string_equal(buf, "1 2\n</s> 0.500000 -0.250000 \n");
    fclose(f);
    /* Binary: word, space, raw floats, newline. */
    f = tmpfile();
    assert_int_equal(nlp_vectors_write(f, w, data, 1, 2, 1, "v", &e), NLP_OK);
    rewind(f);
    n = fread(buf, 1, sizeof buf, f);
    assert_int_equal(n, 4 + 5 + 8 + 1);
    assert_memory_equal(buf, "1 2\n</s> ", 9);
    float x[2];
    memcpy(x, buf + 9, 8);
    assert_true(x[0] == 0.5f && x[1] == -0.25f);
    assert_int_equal(buf[17], '\n');
    fclose(f);
    /* A word with a space cannot be written. */
    nlp_vocab_add(w, "a b", 3);
    f = tmpfile();
    assert_int_equal(nlp_vectors_write(f, w, data, 4, 2, 0, "v", &e), NLP_EFORMAT);
    fclose(f);
    nlp_vocab_free(w);
    /* gensim's text layout (no trailing space) and a binary file without newlines. */
    f = text_file("2 2\nx 1 2\ny 3 4\n");
    rewind(f);
    nlp_vectors *v;
    assert_int_equal(nlp_vectors_read(f, "g", 0, &v, &e), NLP_OK);
    assert_true(v->data[3] == 4.0f);
    nlp_vectors_free(v);
    fclose(f);
    f = tmpfile();
    float one[2] = {1.5f, 2.5f};
    fputs("2 2\nx ", f);
    fwrite(one, 4, 2, f);
    fputs("y ", f);
    fwrite(one, 4, 2, f);
    rewind(f);
    assert_int_equal(nlp_vectors_read(f, "g", 0, &v, &e), NLP_OK);
    assert_string_equal(nlp_vocab_word(v->words, 1), "y");
    assert_true(v->data[3] == 2.5f);
    nlp_vectors_free(v);
    fclose(f);
}

/* The fast text formatter prints exactly what printf("%lf ") prints. */
static void test_vectors_text_exact(void **state)
{
    (void)state;
    enum { N = 20000 };
    float *x = malloc(N * sizeof *x);
    nlp_rng r;
    nlp_rng_seed(&r, 9);
    float special[] = {0.0f, -0.0f, 0.0078125f, -0.0078125f, 0.5e-6f, 1.5e-6f, 2.5e-6f, 1e-45f,
                       -1e-38f, 1.0f, -1.0f, 999999.9f, 123456789.0f, 3e11f, 2e12f, -4e20f,
                       0.1f, 0.0000005f, 0.0000015f, 1e30f, INFINITY, -INFINITY, NAN};
    int ns = (int)(sizeof special / sizeof special[0]);
    for (int i = 0; i < N; i++) {
        if (i < ns) {
            x[i] = special[i];
        } else {
            /* Random bit patterns of every magnitude, and typical small values. */
            uint32_t u = (uint32_t)nlp_rng_u64(&r);
            memcpy(&x[i], &u, 4);
            if (i % 2)
                x[i] = (float)((nlp_rng_uniform(&r) - 0.5) * pow(10, (int)nlp_rng_below(&r, 8) - 4));
            if (i % 7 == 0)  /* exact multiples of 2^-k near ties */
                x[i] = (float)ldexp((double)nlp_rng_below(&r, 1 << 20), -(int)nlp_rng_below(&r, 30));
        }
    }
    nlp_vocab *w;
    assert_int_equal(nlp_vocab_new(&w), NLP_OK);
    nlp_vocab_add(w, "w", 1);
    char *got = NULL, *want = NULL;
    size_t gn = 0, wn = 0;
    FILE *f = open_memstream(&got, &gn);
    nlp_error e;
    assert_int_equal(nlp_vectors_write(f, w, x, 1, N, 0, "v", &e), NLP_OK);
    fclose(f);
    f = open_memstream(&want, &wn);
    fprintf(f, "1 %d\nw ", N);
    for (int i = 0; i < N; i++)
        fprintf(f, "%lf ", (double)x[i]);
    fputc('\n', f);
    fclose(f);
    if (gn != wn || memcmp(got, want, gn) != 0) {
        size_t k = 0;
        while (k < gn && k < wn && got[k] == want[k])
            k++;
        fail_msg("text differs at byte %zu: got '%.30s' want '%.30s'", k, got + k, want + k);
    }
    free(got);
    free(want);
    free(x);
    nlp_vocab_free(w);
}

/*
** A stream reading the n bytes at data through a pipe (not seekable: the
** reader cannot learn the size), fed by a child process.
*/
static FILE *pipe_file(const void *data, size_t n)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        const char *p = data;
        while (n > 0) {
            ssize_t w = write(fds[1], p, n);
            if (w <= 0)
                _exit(1);
            p += w;
            n -= (size_t)w;
        }
        _exit(0);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "rb");
    assert_non_null(f);
    return f;
}

/* Closes a pipe_file stream and reaps its writer. */
static void pipe_close(FILE *f)
{
    fclose(f);
    int st;
    wait(&st);
}

/* Reads n bytes at data from a regular file and from a pipe: the same code, or NLP_OK. */
static int read_both(const void *data, size_t n, long max_rows, nlp_error *e, char *msg, size_t cap)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    rewind(f);
    nlp_vectors *v;
    nlp_error_clear(e);
    int rc = nlp_vectors_read(f, "bad.vec", max_rows, &v, e);
    fclose(f);
    if (rc == NLP_OK)
        nlp_vectors_free(v);
    else
        assert_null(v);
    nlp_error_format(e, msg, cap);
    f = pipe_file(data, n);
    nlp_error e2;
    nlp_error_clear(&e2);
    int rc2 = nlp_vectors_read(f, "bad.vec", max_rows, &v, &e2);
    pipe_close(f);
    if (rc2 == NLP_OK)
        nlp_vectors_free(v);
    char msg2[1024];
    nlp_error_format(&e2, msg2, sizeof msg2);
    if (rc2 != rc || strcmp(msg, msg2) != 0)
        fail_msg("file: %d '%s', pipe: %d '%s'", rc, msg, rc2, msg2);
    return rc;
}

static void bad_vectors(const char *text, int code, const char *prefix)
{
    nlp_error e;
    char buf[1024];
    int rc = read_both(text, strlen(text), 0, &e, buf, sizeof buf);
    if (rc != code)
        fail_msg("'%s': got %d '%s', expected %d", text, rc, buf, code);
    if (strncmp(buf, prefix, strlen(prefix)) != 0)
        fail_msg("got '%s', expected '%s...'", buf, prefix);
}

static void test_vectors_bad(void **state)
{
    (void)state;
    bad_vectors("", NLP_EFORMAT, "bad.vec:1: expected a header");
    bad_vectors("2 x\n", NLP_EFORMAT, "bad.vec:1: expected a header");
    bad_vectors("2 2", NLP_EFORMAT, "bad.vec:1: expected a header");
    bad_vectors("2 2 2\n", NLP_EFORMAT, "bad.vec:1: expected a header");
    bad_vectors("-1 2\n", NLP_EFORMAT, "bad.vec:1: expected a header");
    bad_vectors("2 1000001\n", NLP_EFORMAT, "bad.vec:1: expected a header");
    bad_vectors("99999999999999999999 2\n", NLP_EFORMAT, "bad.vec:1: expected a header");
    bad_vectors("2 2\na 1 2\n", NLP_ETRUNCATED, "bad.vec:3: file ends after 1 of 2 rows");
    bad_vectors("2 2\na 1 2\nb 1\n", NLP_EFORMAT, "bad.vec:3: row has 1 numbers, expected 2");
    bad_vectors("2 2\na 1 2\nb 1 2 3\n", NLP_EFORMAT, "bad.vec:3: row has more than 2");
    bad_vectors("2 2\na 1 2\nb 1 zz\n", NLP_EFORMAT, "bad.vec:3: bad number at position 2");
    bad_vectors("2 2\na 1 2\na 1 2\n", NLP_EFORMAT, "bad.vec:3: word 'a' listed twice");
    bad_vectors("2 2\na 1 2\n\nb 1 2\n", NLP_EFORMAT, "bad.vec:3: expected 'WORD NUMBERS...'");
    bad_vectors("2 2\na 1 2\nb 1 2\nc 1 2\n", NLP_EFORMAT,
                "bad.vec:4: more data after the 2 rows the header announces");
    bad_vectors("2 2\na 1 nan\nb 1 2\n", NLP_EFORMAT, "bad.vec:2: number 2 (of 2) is out of range");
    bad_vectors("2 2\na 1 2\nb 1e39 2\n", NLP_EFORMAT, "bad.vec:3: number 1 (of 2) is out of range");
    bad_vectors("2 2\na 1 -inf\nb 1 2\n", NLP_EFORMAT, "bad.vec:2: number 2 (of 2) is out of range");
}

/* issue11-3: a text file cut inside its last number is truncated, not a wrong value. */
static void test_issue11_3_vectors_cut(void **state)
{
    (void)state;
    const char *whole = "3 2\nx 0.5 -1.25\ny 2 3\ncittà 1.5 0.125\n";
    bad_vectors("3 2\nx 0.5 -1.25\ny 2 3\ncittà 1.5 0.12", NLP_ETRUNCATED,
                "bad.vec:4: row 3 has no final newline");
    bad_vectors("3 2\nx 0.5 -1.25\ny 2 3\ncittà 1.5 ", NLP_ETRUNCATED,
                "bad.vec:4: the file ends inside row 3 (1 of 2 numbers)");
    /* Every proper prefix of a text file fails; the whole file reads. */
    size_t n = strlen(whole);
    nlp_error e;
    char msg[1024];
    for (size_t k = 0; k < n; k++) {
        int rc = read_both(whole, k, 0, &e, msg, sizeof msg);
        if (rc == NLP_OK)
            fail_msg("prefix of %zu bytes accepted", k);
    }
    assert_int_equal(read_both(whole, n, 0, &e, msg, sizeof msg), NLP_OK);
    /* A binary file: every prefix short of the rows fails. */
    nlp_vocab *w = words3();
    float data[6] = {0.5f, -1.25f, 2, 3, 1.5f, 0.125f};
    char *bin = NULL;
    size_t bn = 0;
    FILE *f = open_memstream(&bin, &bn);
    assert_int_equal(nlp_vectors_write(f, w, data, 3, 2, 1, "v", &e), NLP_OK);
    fclose(f);
    for (size_t k = 0; k + 1 < bn; k++)
        if (read_both(bin, k, 0, &e, msg, sizeof msg) == NLP_OK)
            fail_msg("binary prefix of %zu bytes accepted", k);
    assert_int_equal(read_both(bin, bn, 0, &e, msg, sizeof msg), NLP_OK);
    /* Binary rows with a non-finite number are refused. */
    float nan = NAN;
    memcpy(bin + bn - 5, &nan, 4);
    assert_int_equal(read_both(bin, bn, 0, &e, msg, sizeof msg), NLP_EFORMAT);
    assert_non_null(strstr(msg, "row 3: number 2 of 2 is not finite"));
    /* Every allocation of a read failing alone gives NLP_ENOMEM, text and binary. */
    memcpy(bin + bn - 5, &data[5], 4);
    const char *files[2] = {whole, bin};
    size_t sizes[2] = {n, bn};
    for (int k = 0; k < 2; k++) {
        f = tmpfile();
        assert_int_equal(fwrite(files[k], 1, sizes[k], f), sizes[k]);
        rewind(f);
        nlp_vectors *v;
        nlp_alloc_fail_at(0, 0);
        assert_int_equal(nlp_vectors_read(f, "v", 0, &v, &e), NLP_OK);
        long total = nlp_alloc_count();
        nlp_vectors_free(v);
        for (long a = 1; a <= total; a++) {
            rewind(f);
            nlp_alloc_fail_at(a, 0);
            int rc = nlp_vectors_read(f, "v", 0, &v, &e);
            nlp_alloc_fail_at(0, 0);
            if (rc != NLP_ENOMEM)
                fail_msg("file %d: allocation %ld of %ld failing gave %d", k, a, total, rc);
            assert_null(v);
        }
        fclose(f);
    }
    free(bin);
    nlp_vocab_free(w);
}

/*
** issue11-3: a header claiming a huge row count (row * dim * 4 used to wrap
** and the rows then overran the heap) costs nothing: memory grows with the
** rows present, from a file or a pipe.  The child runs under a 1 GiB
** address-space limit (not with AddressSanitizer, which reserves terabytes).
*/
static void test_issue11_3_vectors_huge_header(void **state)
{
    (void)state;
    const char *claims[] = {
        "9223372036854775807 2\na 1 2\n",
        "4611686018427387904 4\na 1 2 3 4\n",           /* rows * 4 * 4 wraps to 0 */
        "9223372036854775807 1000000\na 1\n",
        "1073741824 1000000\nb 1 2\n",
    };
    for (size_t k = 0; k < sizeof claims / sizeof claims[0]; k++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
#if !defined(__SANITIZE_ADDRESS__)
            struct rlimit lim = {(rlim_t)1 << 30, (rlim_t)1 << 30};
            if (setrlimit(RLIMIT_AS, &lim) != 0)
                _exit(3);
#endif
            nlp_error e;
            char msg[1024];
            int rc = read_both(claims[k], strlen(claims[k]), 0, &e, msg, sizeof msg);
            _exit(rc == NLP_ETRUNCATED || rc == NLP_EFORMAT ? 0 : 2);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("claim %zu: child %s %d", k, WIFEXITED(st) ? "exited" : "killed by signal",
                     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
    nlp_error e;
    char msg[1024];
    assert_int_equal(read_both(claims[1], strlen(claims[1]), 0, &e, msg, sizeof msg), NLP_ETRUNCATED);
    assert_string_equal(msg, "bad.vec:3: file ends after 1 of 4611686018427387904 rows");
    assert_int_equal(read_both(claims[2], strlen(claims[2]), 0, &e, msg, sizeof msg), NLP_EFORMAT);
    assert_string_equal(msg, "bad.vec:2: row has 1 numbers, expected 1000000");
    /* Many rows through a pipe: the array grows past its first allocation. */
    size_t cap = 1 << 22, n = 0;
    char *big = malloc(cap);
    n += (size_t)sprintf(big, "20000 3\n");
    for (int i = 0; i < 20000; i++)
        n += (size_t)sprintf(big + n, "w%d %d 0.5 -%d\n", i, i, i);
    FILE *f = pipe_file(big, n);
    nlp_vectors *v;
    assert_int_equal(nlp_vectors_read(f, "p", 0, &v, &e), NLP_OK);
    pipe_close(f);
    assert_int_equal(v->n, 20000);
    assert_true(v->data[3 * 19999] == 19999.0f && v->data[3 * 19999 + 2] == -19999.0f);
    assert_string_equal(nlp_vocab_word(v->words, 12345), "w12345");
    nlp_vectors_free(v);
    free(big);
}

/* issue11-13: reading a directory says so (it used to say "expected a header"). */
static void test_issue11_13_vectors_directory(void **state)
{
    (void)state;
    FILE *f = fopen(".", "rb");
    assert_non_null(f);
    nlp_vectors *v;
    nlp_error e;
    assert_int_equal(nlp_vectors_read(f, "dir", 0, &v, &e), NLP_EIO);
    fclose(f);
    char msg[1024];
    nlp_error_format(&e, msg, sizeof msg);
    assert_string_equal(msg, "dir: read error: Is a directory");
    /* /dev/zero has no newline: the header is refused after a few bytes, not read forever. */
    f = fopen("/dev/zero", "rb");
    assert_non_null(f);
    assert_int_equal(nlp_vectors_read(f, "zero", 0, &v, &e), NLP_EFORMAT);
    fclose(f);
}

/* ---- atomic output files ---------------------------------------------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Files in dir other than . and .. */
static int entries(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

/*
** issue11-8: vectors used to be written in place, after training, so a full
** disk or a kill during the write destroyed the previous file.  Now word2vec
** writes them through an nlp_outfile, which appears whole (commit) or leaves
** the previous file (any failure, a kill).  The output file itself --
** checks before training, symbolic links, permissions, devices, kills,
** stale temporaries, allocation failures -- is tested in test_outfile.c;
** here, the vectors writer on it: what it writes, and that a failing disk
** gives the vectors writer the real reason.
*/
static void test_issue11_8_atomic_output(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_w2v.XXXXXX", path[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/vec.txt", dir);
    nlp_error e;
    nlp_outfile *o;
    char msg[1024];

    nlp_vocab *w = words3();
    float data[6] = {1, 2, 3, 4, 5, 6};
    spit(path, "previous\n");
    assert_int_equal(nlp_outfile_new(&o, path, &e), NLP_OK);
    assert_int_equal(nlp_vectors_write(nlp_outfile_stream(o), w, data, 3, 2, 0, path, &e), NLP_OK);
    char *got = slurp(path);
    assert_string_equal(got, "previous\n");   /* untouched until commit */
    free(got);
    assert_int_equal(nlp_outfile_commit(o, &e), NLP_OK);
    got = slurp(path);
    assert_string_equal(got, "3 2\n</s> 1.000000 2.000000 \ncittà 3.000000 4.000000 \nb 5.000000 6.000000 \n");
    free(got);
    assert_int_equal(entries(dir), 1);

    /* The disk fills while the rows are written (a file size limit): the
    ** writer reports the reason, the caller gives up, the previous file stays. */
    enum { DIM = 2000 };   /* three rows of ~18 kB each */
    float *rows = calloc(3 * DIM, sizeof *rows);
    assert_non_null(rows);
    struct rlimit saved, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = saved;
    lim.rlim_cur = 4096;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    assert_int_equal(nlp_outfile_new(&o, path, &e), NLP_OK);
    int rc = nlp_vectors_write(nlp_outfile_stream(o), w, rows, 3, DIM, 0, path, &e);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, oldsig);
    assert_int_equal(rc, NLP_EIO);
    nlp_error_format(&e, msg, sizeof msg);
    char want[700];
    snprintf(want, sizeof want, "%s: write error: File too large", path);
    assert_string_equal(msg, want);
    nlp_outfile_free(o);
    got = slurp(path);
    assert_string_equal(got, "3 2\n</s> 1.000000 2.000000 \ncittà 3.000000 4.000000 \nb 5.000000 6.000000 \n");
    free(got);
    assert_int_equal(entries(dir), 1);

    free(rows);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
    nlp_vocab_free(w);
}

/* ---- word classes ------------------------------------------------------------ */

/* word2vec.c's -classes loop, transcribed (float sums, the -10 floor), as the reference. */
static void classes_reference(const float *syn0, long vocab_size, int layer1_size, int clcn, int *cl)
{
    int *centcn = malloc((size_t)clcn * sizeof *centcn);
    float *cent = calloc((size_t)clcn * layer1_size, sizeof *cent);
    for (long a = 0; a < vocab_size; a++)
        cl[a] = (int)(a % clcn);
    for (int it = 0; it < NLP_W2V_CLASS_ITER; it++) {
        for (long b = 0; b < (long)clcn * layer1_size; b++)
            cent[b] = 0;
        for (int b = 0; b < clcn; b++)
            centcn[b] = 1;
        for (long c = 0; c < vocab_size; c++) {
            for (int d = 0; d < layer1_size; d++)
                cent[layer1_size * cl[c] + d] += syn0[c * layer1_size + d];
            centcn[cl[c]]++;
        }
        for (int b = 0; b < clcn; b++) {
            float closev = 0;
            for (int c = 0; c < layer1_size; c++) {
                cent[layer1_size * b + c] /= centcn[b];
                closev += cent[layer1_size * b + c] * cent[layer1_size * b + c];
            }
            closev = sqrtf(closev);
            for (int c = 0; c < layer1_size; c++)
                cent[layer1_size * b + c] /= closev;
        }
        for (long c = 0; c < vocab_size; c++) {
            float closev = -10;
            int closeid = 0;
            for (int d = 0; d < clcn; d++) {
                float x = 0;
                for (int b = 0; b < layer1_size; b++)
                    x += cent[layer1_size * d + b] * syn0[c * layer1_size + b];
                if (x > closev) {
                    closev = x;
                    closeid = d;
                }
            }
            cl[c] = closeid;
        }
    }
    free(centcn);
    free(cent);
}

static void test_classes(void **state)
{
    (void)state;
    /* Three clusters of points, interleaved so that a % k starts them mixed. */
    enum { N = 300, D = 8 };
    float *x = malloc(N * D * sizeof *x);
    int32_t cl[N];
    int ref[N];
    nlp_rng r;
    nlp_rng_seed(&r, 4);
    for (int i = 0; i < N; i++) {
        int g = (int)nlp_rng_below(&r, 3);
        for (int d = 0; d < D; d++)
            x[i * D + d] = (d == g ? 2.0f : 0.0f) + (nlp_rng_uniform(&r) - 0.5f) * 0.6f;
    }
    for (int k = 1; k <= 5; k++) {
        assert_int_equal(nlp_w2v_classes(x, N, D, k, NLP_W2V_CLASS_ITER, cl), NLP_OK);
        classes_reference(x, N, D, k, ref);
        for (int i = 0; i < N; i++) {
            assert_true(cl[i] >= 0 && cl[i] < k);
            if (cl[i] != ref[i])
                fail_msg("k %d: word %d in class %d, word2vec's loop gives %d", k, i, cl[i], ref[i]);
        }
    }
    /* k = 3 recovers the clusters (whatever the numbering). */
    assert_int_equal(nlp_w2v_classes(x, N, D, 3, NLP_W2V_CLASS_ITER, cl), NLP_OK);
    int map[3] = {-1, -1, -1};
    for (int i = 0; i < N; i++) {
        int g = 0;
        for (int d = 1; d < 3; d++)
            if (x[i * D + d] > x[i * D + g])
                g = d;
        if (map[g] < 0)
            map[g] = cl[i];
        assert_int_equal(cl[i], map[g]);
    }
    assert_true(map[0] != map[1] && map[1] != map[2] && map[0] != map[2]);
    /* More classes than words: word i stays alone in class i. */
    assert_int_equal(nlp_w2v_classes(x, 4, D, 10, NLP_W2V_CLASS_ITER, cl), NLP_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(cl[i], i);
    /* Zero iterations: word2vec's start, a mod k. */
    assert_int_equal(nlp_w2v_classes(x, N, D, 7, 0, cl), NLP_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(cl[i], i % 7);
    assert_int_equal(nlp_w2v_classes(x, N, D, 0, 10, cl), NLP_EINVAL);
    assert_int_equal(nlp_w2v_classes(x, N, 0, 2, 10, cl), NLP_EINVAL);
    assert_int_equal(nlp_w2v_classes(x, 0, D, 2, 10, cl), NLP_OK);
    /* Allocation failures give NLP_ENOMEM. */
    for (long n = 1;; n++) {
        nlp_alloc_fail_at(n, 0);
        int rc = nlp_w2v_classes(x, N, D, 3, 2, cl);
        nlp_alloc_fail_at(0, 0);
        if (rc == NLP_OK)
            break;
        assert_int_equal(rc, NLP_ENOMEM);
    }
    free(x);
}

/* ---- queries -------------------------------------------------------------- */

static void test_queries(void **state)
{
    (void)state;
    FILE *f = text_file("5 2\nman 1 0\nwoman 1 1\nking 0 1\nqueen -1 2\napple 0.1 -1\n");
    rewind(f);
    nlp_vectors *v;
    nlp_error e;
    assert_int_equal(nlp_vectors_read(f, "q", 0, &v, &e), NLP_OK);
    fclose(f);
    nlp_vectors_normalize(v);
    for (long i = 0; i < v->n; i++)
        assert_true(fabs(hypot(v->data[2 * i], v->data[2 * i + 1]) - 1) < 1e-6);
    long ids[3];
    float sc[3];
    long ex = 0;
    int k = nlp_vectors_nearest(v, v->data, 0, &ex, 1, 3, ids, sc);
    assert_int_equal(k, 3);
    assert_int_equal(ids[0], 1);
    assert_true(sc[0] >= sc[1] && sc[1] >= sc[2]);
    assert_int_equal(nlp_vectors_nearest(v, v->data, 2, &ex, 1, 3, ids, sc), 1);
    /* man : woman :: king : ? -> queen */
    long q[3] = {0, 1, 2}, ans;
    assert_int_equal(nlp_vectors_analogy(v, 0, q, 1, &ans), NLP_OK);
    assert_int_equal(ans, 3);
    /* Restricted to 3 rows, queen is out of reach and a, b, c are excluded: nothing. */
    assert_int_equal(nlp_vectors_analogy(v, 3, q, 1, &ans), NLP_OK);
    assert_int_equal(ans, -1);
    nlp_vectors_free(v);
    /* A row so small that 1 / its norm exceeds the float range still becomes unit length. */
    f = text_file("2 2\ntiny 1e-40 1e-40\nzero 0 0\n");
    rewind(f);
    assert_int_equal(nlp_vectors_read(f, "q", 0, &v, &e), NLP_OK);
    fclose(f);
    nlp_vectors_normalize(v);
    assert_true(fabs(v->data[0] - (float)M_SQRT1_2) < 1e-6 && fabs(v->data[1] - (float)M_SQRT1_2) < 1e-6);
    assert_true(v->data[2] == 0 && v->data[3] == 0);
    nlp_vectors_free(v);
}

static void test_spearman(void **state)
{
    (void)state;
    double x[] = {1, 2, 3, 4, 5}, y[] = {2, 4, 6, 8, 100}, z[] = {5, 4, 3, 2, 1};
    assert_true(fabs(nlp_vectors_spearman(x, y, 5) - 1) < 1e-12);
    assert_true(fabs(nlp_vectors_spearman(x, z, 5) + 1) < 1e-12);
    /* Ties get average ranks: ranks of t are 1.5 1.5 3 4 5. */
    double t[] = {1, 1, 2, 3, 4};
    double rt[] = {1.5, 1.5, 3, 4, 5}, rx[] = {1, 2, 3, 4, 5};
    double mx = 3, my = 3, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < 5; i++) {
        sxy += (rx[i] - mx) * (rt[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (rt[i] - my) * (rt[i] - my);
    }
    assert_true(fabs(nlp_vectors_spearman(x, t, 5) - sxy / sqrt(sxx * syy)) < 1e-12);
    double c[] = {1, 1, 1, 1, 1};
    assert_true(isnan(nlp_vectors_spearman(x, c, 5)));
    assert_true(isnan(nlp_vectors_spearman(x, y, 1)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huffman),
        cmocka_unit_test(test_unigram),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_train_separates),
        cmocka_unit_test(test_train_subsampling),
        cmocka_unit_test(test_issue11_1_alpha_2),
        cmocka_unit_test(test_issue11_13_thread_errno),
        cmocka_unit_test(test_train_repeatable),
        cmocka_unit_test(test_slices_exact),
        cmocka_unit_test(test_new_nomem),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_vectors_roundtrip),
        cmocka_unit_test(test_vectors_text_exact),
        cmocka_unit_test(test_vectors_bad),
        cmocka_unit_test(test_issue11_3_vectors_cut),
        cmocka_unit_test(test_issue11_3_vectors_huge_header),
        cmocka_unit_test(test_issue11_13_vectors_directory),
        cmocka_unit_test(test_issue11_8_atomic_output),
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_spearman),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
