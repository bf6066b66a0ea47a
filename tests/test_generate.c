/*
** Unit tests for generate: priming a character language model and sampling
** from it.  The focus: the same seed gives the same text; a prime changes
** what comes next (a model trained on "ab" repeated continues a prime's
** alternation); <unk> is never drawn even when the model prefers it; the
** length is in characters, not bytes; the write callback gets whole
** characters in the chunks promised; errors and allocation failures unwind.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nlp/alloc.h"
#include "nlp/charlm.h"
#include "nlp/generate.h"
#include "nlp/utf8.h"

/* ---- helpers ---- */

/* The text a sample wrote, and how it came. */
typedef struct sink {
    char *s;
    size_t n, cap;
    int calls;
    int bad_chunk;   /* a chunk that was not whole UTF-8 characters */
    int stop_after;  /* return non-zero at this call (1-based); 0 = never */
    size_t chunk;    /* when not 0: chunks of more characters are counted in */
    int long_chunks; /* ... this, and those of fewer that do not end a line */
    int short_chunks;/* (only the last may) in this */
} sink;

static int sink_write(void *ctx, const char *s, size_t n)
{
    sink *k = ctx;
    k->calls++;
    if (n == 0 || !nlp_utf8_is_valid(s, n))
        k->bad_chunk = 1;
    size_t chars = nlp_utf8_length(s, n);
    if (k->chunk && chars > k->chunk)
        k->long_chunks++;
    if (k->chunk && chars < k->chunk && s[n - 1] != '\n')
        k->short_chunks++;
    if (k->n + n + 1 > k->cap) {
        k->cap = (k->n + n + 1) * 2;
        k->s = realloc(k->s, k->cap);
        assert_non_null(k->s);
    }
    memcpy(k->s + k->n, s, n);
    k->n += n;
    k->s[k->n] = '\0';
    return k->stop_after && k->calls >= k->stop_after;
}

static void sink_free(sink *k)
{
    free(k->s);
    memset(k, 0, sizeof *k);
}

/* An untrained model whose vocabulary is the characters of s (min count 1). */
static nlp_charlm *model_of(const char *s, uint64_t seed)
{
    nlp_codepoints t;
    nlp_codepoints_init(&t);
    assert_int_equal(nlp_codepoints_append(&t, s, strlen(s), "t", 1, NULL, NULL, NULL), NLP_OK);
    nlp_vocab *v;
    assert_int_equal(nlp_charlm_vocab_build(&v, t.cp, t.n, 1), NLP_OK);
    nlp_codepoints_free(&t);
    nlp_charlm_config c;
    nlp_charlm_config_default(&c);
    c.layers = 1;
    c.hidden = 16;
    c.embed = 8;
    c.dropout = 0;
    nlp_charlm *m;
    assert_int_equal(nlp_charlm_new(&m, &c, v, 16, 4, seed), NLP_OK);
    return m;
}

/* A model trained on "ab" repeated until it predicts the alternation. */
static nlp_charlm *alternating_model(void)
{
    char text[801];
    for (int i = 0; i < 800; i++)
        text[i] = i % 2 ? 'b' : 'a';
    text[800] = '\0';
    nlp_charlm *m = model_of(text, 3);
    nlp_codepoints t;
    nlp_codepoints_init(&t);
    assert_int_equal(nlp_codepoints_append(&t, text, 800, "t", 1, NULL, NULL, NULL), NLP_OK);
    nlp_charlm_encode(m, &t, NULL);
    nlp_charlm_train_config tc;
    nlp_charlm_train_config_default(&tc);
    tc.batch = 4;
    tc.seq_len = 16;
    nlp_charlm_trainer *tr;
    nlp_error e;
    assert_int_equal(nlp_charlm_trainer_new(&tr, m, &tc, t.cp, t.n, NULL, 0, &e), NLP_OK);
    /* The harness's update: zero, the task's forward and backward, clip, Adam. */
    nlp_optim_config oc;
    nlp_optim_config_default(&oc, NLP_OPTIM_ADAM);
    oc.lr = 0.02;
    nlp_optim *o;
    assert_int_equal(nlp_optim_new(&o, m->params->n, &oc), NLP_OK);
    for (int i = 0; i < 150; i++) {
        nlp_params_zero_grad(m->params);
        assert_true(nlp_charlm_trainer_step(tr, NULL, NULL, &e) >= 0);
        nlp_optim_clip(m->params->grad, m->params->n, 5.0f);
        nlp_optim_step(o, m->params->data, m->params->grad);
    }
    nlp_optim_free(o);
    nlp_charlm_trainer_free(tr);
    nlp_codepoints_free(&t);
    return m;
}

/* Samples length characters after prime (NULL: none) with seed. */
static void sample_text(nlp_charlm *m, const char *prime, size_t length, double temperature,
                        uint64_t seed, sink *out)
{
    nlp_generator *g;
    assert_int_equal(nlp_generate_new(&g, m), NLP_OK);
    if (prime)
        assert_int_equal(nlp_generate_prime(g, prime, strlen(prime)), NLP_OK);
    nlp_generate_config c;
    nlp_generate_config_default(&c);
    c.length = length;
    c.sample.temperature = temperature;
    nlp_rng rng;
    nlp_rng_seed(&rng, seed);
    memset(out, 0, sizeof *out);
    assert_int_equal(nlp_generate_sample(g, &c, &rng, sink_write, out), NLP_OK);
    nlp_generate_free(g);
}

static const char *const ITALIAN = "Tant’ è amara che poco è più morte; «così» però…\n";

/* ---- tests ---- */

static void test_defaults(void **state)
{
    (void)state;
    nlp_generate_config c;
    nlp_generate_config_default(&c);
    assert_int_equal(c.length, 500);
    assert_int_equal(c.chunk, 0);
    assert_true(c.sample.temperature == 1.0);
    assert_int_equal(c.sample.top_k, 0);
    assert_true(c.sample.top_p == 1.0);
}

static void test_same_seed_same_text(void **state)
{
    (void)state;
    nlp_charlm *m = model_of(ITALIAN, 1);
    sink a, b, d;
    sample_text(m, "Tant", 300, 1.0, 42, &a);
    sample_text(m, "Tant", 300, 1.0, 42, &b);
    sample_text(m, "Tant", 300, 1.0, 43, &d);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.s, b.s, a.n);
    /* 300 draws from a near-uniform untrained model: another seed differs. */
    assert_true(a.n != d.n || memcmp(a.s, d.s, a.n) != 0);
    sink_free(&a);
    sink_free(&b);
    sink_free(&d);
    nlp_charlm_free(m);
}

static void test_length_in_characters(void **state)
{
    (void)state;
    nlp_charlm *m = model_of(ITALIAN, 2);
    for (size_t len = 0; len <= 1000; len += 250) {
        sink k;
        sample_text(m, NULL, len, 1.5, 7, &k);
        assert_true(nlp_utf8_is_valid(k.s ? k.s : "", k.n));
        assert_int_equal(nlp_utf8_length(k.s ? k.s : "", k.n), len);
        if (len == 1000)
            assert_true(k.n > len); /* è, ’, «, », … are more than a byte */
        assert_int_equal(k.bad_chunk, 0);
        sink_free(&k);
    }
    nlp_charlm_free(m);
}

static void test_never_unk(void **state)
{
    (void)state;
    nlp_charlm *m = model_of("abc\n", 4);
    /* Make <unk> by far the likeliest next character. */
    float *bias = nlp_params_data(m->params, m->out.b);
    bias[NLP_CHARLM_UNK_ID] = 50.0f;
    nlp_generator *g;
    assert_int_equal(nlp_generate_new(&g, m), NLP_OK);
    nlp_generate_config c;
    nlp_generate_config_default(&c);
    float probs[8];
    assert_int_equal(m->V, 5);
    assert_true(nlp_generate_probs(g, &c, probs) >= 1);
    assert_true(probs[NLP_CHARLM_UNK_ID] == 0.0f);
    double sum = 0;
    for (int i = 0; i < m->V; i++)
        sum += probs[i];
    assert_true(fabs(sum - 1.0) < 1e-5);
    /* Greedy and sampled: every draw is a real character. */
    double temps[2] = {0.0, 1.0};
    for (int i = 0; i < 2; i++) {
        c.sample.temperature = temps[i];
        c.length = 400;
        c.sample.ban = -1; /* ignored: <unk> stays banned */
        nlp_rng rng;
        nlp_rng_seed(&rng, 9);
        sink k = {0};
        assert_int_equal(nlp_generate_sample(g, &c, &rng, sink_write, &k), NLP_OK);
        assert_int_equal(nlp_utf8_length(k.s, k.n), 400);
        assert_int_equal(strspn(k.s, "abc\n"), k.n);
        assert_null(strstr(k.s, NLP_CHARLM_UNK));
        sink_free(&k);
    }
    nlp_generate_free(g);
    nlp_charlm_free(m);
}

static void test_prime_changes_distribution(void **state)
{
    (void)state;
    nlp_charlm *m = alternating_model();
    int a = nlp_charlm_id(m, 'a'), b = nlp_charlm_id(m, 'b');
    nlp_generator *g;
    assert_int_equal(nlp_generate_new(&g, m), NLP_OK);
    nlp_generate_config c;
    nlp_generate_config_default(&c);
    float pa[4], pb[4];
    assert_int_equal(m->V, 3);
    /* After "...a" the model expects b, after "...b" it expects a. */
    assert_int_equal(nlp_generate_prime(g, "ababa", 5), NLP_OK);
    assert_true(nlp_generate_probs(g, &c, pa) >= 1);
    nlp_generate_reset(g);
    assert_int_equal(nlp_generate_prime(g, "abab", 4), NLP_OK);
    assert_true(nlp_generate_probs(g, &c, pb) >= 1);
    assert_true(pa[b] > 0.9f);
    assert_true(pb[a] > 0.9f);
    nlp_generate_free(g);
    /* So a greedy sample continues the prime's alternation. */
    sink k;
    sample_text(m, "aba", 6, 0.0, 1, &k);
    assert_string_equal(k.s, "bababa");
    sink_free(&k);
    sample_text(m, "ab", 6, 0.0, 1, &k);
    assert_string_equal(k.s, "ababab");
    sink_free(&k);
    nlp_charlm_free(m);
}

static void test_prime_forms_agree(void **state)
{
    (void)state;
    nlp_charlm *m = model_of(ITALIAN, 5);
    const char *p = "più «così»";
    nlp_codepoints t;
    nlp_codepoints_init(&t);
    assert_int_equal(nlp_codepoints_append(&t, p, strlen(p), "p", 1, NULL, NULL, NULL), NLP_OK);
    nlp_generator *g;
    assert_int_equal(nlp_generate_new(&g, m), NLP_OK);
    nlp_generate_config c;
    nlp_generate_config_default(&c);
    c.length = 100;
    /* UTF-8, code points, and the same text in two calls: one state. */
    sink k[3];
    for (int i = 0; i < 3; i++) {
        nlp_generate_reset(g);
        if (i == 0) {
            assert_int_equal(nlp_generate_prime(g, p, strlen(p)), NLP_OK);
        } else if (i == 1) {
            assert_int_equal(nlp_generate_prime_cp(g, t.cp, t.n), NLP_OK);
        } else {
            assert_int_equal(nlp_generate_prime(g, p, 4), NLP_OK); /* "più" */
            assert_int_equal(nlp_generate_prime(g, p + 4, strlen(p) - 4), NLP_OK);
        }
        nlp_rng rng;
        nlp_rng_seed(&rng, 11);
        memset(&k[i], 0, sizeof k[i]);
        assert_int_equal(nlp_generate_sample(g, &c, &rng, sink_write, &k[i]), NLP_OK);
    }
    assert_string_equal(k[0].s, k[1].s);
    assert_string_equal(k[0].s, k[2].s);
    /* No prime is the same as a prime of one line break. */
    sink n1, n2;
    sample_text(m, NULL, 100, 1.0, 12, &n1);
    sample_text(m, "\n", 100, 1.0, 12, &n2);
    assert_string_equal(n1.s, n2.s);
    /* Characters the model does not know are read as <unk>. */
    sink u1, u2;
    sample_text(m, "Zq", 50, 1.0, 13, &u1);
    sample_text(m, "XY", 50, 1.0, 13, &u2);
    assert_string_equal(u1.s, u2.s);
    /* Invalid input feeds nothing. */
    nlp_generate_reset(g);
    assert_int_equal(nlp_generate_prime(g, "a\xff", 2), NLP_EUTF8);
    const int32_t bad[2] = {'a', 0xD800};
    assert_int_equal(nlp_generate_prime_cp(g, bad, 2), NLP_EINVAL);
    c.length = 100;
    sink n3 = {0};
    nlp_rng rng;
    nlp_rng_seed(&rng, 12);
    assert_int_equal(nlp_generate_sample(g, &c, &rng, sink_write, &n3), NLP_OK);
    assert_string_equal(n1.s, n3.s);
    for (int i = 0; i < 3; i++)
        sink_free(&k[i]);
    sink_free(&n1);
    sink_free(&n2);
    sink_free(&n3);
    sink_free(&u1);
    sink_free(&u2);
    nlp_codepoints_free(&t);
    nlp_generate_free(g);
    nlp_charlm_free(m);
}

static void test_sample_continues(void **state)
{
    (void)state;
    nlp_charlm *m = model_of(ITALIAN, 6);
    sink whole;
    sample_text(m, "Tant", 200, 1.0, 21, &whole);
    nlp_generator *g;
    assert_int_equal(nlp_generate_new(&g, m), NLP_OK);
    assert_int_equal(nlp_generate_prime(g, "Tant", 4), NLP_OK);
    nlp_generate_config c;
    nlp_generate_config_default(&c);
    c.length = 120;
    nlp_rng rng;
    nlp_rng_seed(&rng, 21);
    sink k = {0};
    assert_int_equal(nlp_generate_sample(g, &c, &rng, sink_write, &k), NLP_OK);
    c.length = 80;
    assert_int_equal(nlp_generate_sample(g, &c, &rng, sink_write, &k), NLP_OK);
    assert_string_equal(whole.s, k.s);
    sink_free(&whole);
    sink_free(&k);
    nlp_generate_free(g);
    nlp_charlm_free(m);
}

static void test_chunks(void **state)
{
    (void)state;
    nlp_charlm *m = model_of(ITALIAN, 7);
    nlp_generator *g;
    assert_int_equal(nlp_generate_new(&g, m), NLP_OK);
    nlp_generate_config c;
    nlp_generate_config_default(&c);
    c.length = 3000;
    c.sample.temperature = 2.0; /* many line breaks */
    sink k[3];
    const size_t chunk[3] = {0, 1, 7};
    for (int i = 0; i < 3; i++) {
        nlp_generate_reset(g);
        c.chunk = chunk[i];
        nlp_rng rng;
        nlp_rng_seed(&rng, 5);
        memset(&k[i], 0, sizeof k[i]);
        k[i].chunk = chunk[i];
        assert_int_equal(nlp_generate_sample(g, &c, &rng, sink_write, &k[i]), NLP_OK);
        assert_int_equal(k[i].bad_chunk, 0);
        assert_int_equal(k[i].long_chunks, 0);
        assert_true(k[i].short_chunks <= 1);
    }
    size_t lines = 0, chars = nlp_utf8_length(k[0].s, k[0].n);
    for (size_t i = 0; i < k[0].n; i++)
        lines += k[0].s[i] == '\n';
    assert_true(lines > 10);
    /* The same text whatever the chunks. */
    assert_string_equal(k[0].s, k[1].s);
    assert_string_equal(k[0].s, k[2].s);
    /* chunk 1: one call per character; chunk 0: one per line (+ the tail);
    ** chunk 7: 7 characters a call, or fewer up to a line break. */
    assert_int_equal(k[1].calls, (int)chars);
    int tail = k[0].s[k[0].n - 1] != '\n';
    assert_int_equal(k[0].calls, (int)lines + tail);
    assert_true(k[2].calls >= (int)(chars / 7));
    assert_true(k[2].calls > (int)lines);
    for (int i = 0; i < 3; i++)
        sink_free(&k[i]);
    nlp_generate_free(g);
    nlp_charlm_free(m);
}

static void test_errors(void **state)
{
    (void)state;
    nlp_charlm *m = model_of(ITALIAN, 8);
    nlp_generator *g;
    assert_int_equal(nlp_generate_new(&g, m), NLP_OK);
    nlp_generate_config c;
    nlp_generate_config_default(&c);
    nlp_rng rng;
    nlp_rng_seed(&rng, 1);
    sink k = {0};
    /* The writer stops the generation: NLP_EIO after its call. */
    c.chunk = 1;
    k.stop_after = 3;
    assert_int_equal(nlp_generate_sample(g, &c, &rng, sink_write, &k), NLP_EIO);
    assert_int_equal(k.calls, 3);
    sink_free(&k);
    /* Bad sampling options. */
    c.sample.temperature = -1;
    assert_int_equal(nlp_generate_sample(g, &c, &rng, sink_write, &k), NLP_EINVAL);
    float probs[64];
    assert_int_equal(nlp_generate_probs(g, &c, probs), NLP_EINVAL);
    c.sample.temperature = 1;
    c.sample.top_p = 0;
    assert_int_equal(nlp_generate_sample(g, &c, &rng, sink_write, &k), NLP_EINVAL);
    assert_int_equal(k.calls, 0);
    nlp_generate_free(g);
    nlp_generate_free(NULL);
    nlp_charlm_free(m);
    /* A model that knows no character: nothing could be drawn. */
    nlp_charlm *u = model_of("a", 9);
    int V = u->V;
    u->V = 1; /* as a model whose vocabulary is only <unk> */
    assert_int_equal(nlp_generate_new(&g, u), NLP_EINVAL);
    assert_null(g);
    u->V = V;
    nlp_charlm_free(u);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    nlp_charlm *m = model_of(ITALIAN, 10);
    nlp_generator *g;
    nlp_alloc_fail_at(0, 0);
    assert_int_equal(nlp_generate_new(&g, m), NLP_OK);
    long n = nlp_alloc_count();
    nlp_generate_free(g);
    assert_true(n >= 3);
    for (long i = 1; i <= n; i++) {
        nlp_alloc_fail_at(i, 0);
        assert_int_equal(nlp_generate_new(&g, m), NLP_ENOMEM);
        assert_null(g);
    }
    nlp_alloc_fail_at(0, 0);
    /* Sampling never allocates. */
    assert_int_equal(nlp_generate_new(&g, m), NLP_OK);
    nlp_alloc_fail_at(1, 1);
    nlp_generate_config c;
    nlp_generate_config_default(&c);
    nlp_rng rng;
    nlp_rng_seed(&rng, 1);
    assert_int_equal(nlp_generate_prime(g, "Tant", 4), NLP_OK);
    float probs[64];
    assert_true(nlp_generate_probs(g, &c, probs) >= 1);
    nlp_alloc_fail_at(0, 0);
    sink k = {0};
    nlp_alloc_fail_at(1, 1);
    int rc = nlp_generate_sample(g, &c, &rng, sink_write, &k);
    nlp_alloc_fail_at(0, 0);
    assert_int_equal(rc, NLP_OK);
    assert_int_equal(nlp_utf8_length(k.s, k.n), 500);
    sink_free(&k);
    nlp_generate_free(g);
    nlp_charlm_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_same_seed_same_text),
        cmocka_unit_test(test_length_in_characters),
        cmocka_unit_test(test_never_unk),
        cmocka_unit_test(test_prime_changes_distribution),
        cmocka_unit_test(test_prime_forms_agree),
        cmocka_unit_test(test_sample_continues),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
