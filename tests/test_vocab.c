/*
** Unit tests for vocab: counting, lookup, growth, pinning, sorting, pruning,
** word2vec-format save/load (with FILE:LINE errors) and memory blobs.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlp.h"

static long add(nlp_vocab *v, const char *s)
{
    return nlp_vocab_add(v, s, strlen(s));
}

static void test_counting(void **state)
{
    (void)state;
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    assert_int_equal(nlp_vocab_size(v), 0);
    assert_int_equal(nlp_vocab_find_str(v, "a"), -1);
    assert_int_equal(add(v, "the"), 0);
    assert_int_equal(add(v, "cat"), 1);
    assert_int_equal(add(v, "the"), 0);
    assert_int_equal(nlp_vocab_add(v, "with space", 10), 2);
    assert_int_equal(nlp_vocab_add(v, "", 0), 3);          /* empty word is a word */
    assert_int_equal(nlp_vocab_add(v, "a\0b", 3), 4);      /* NUL inside */
    assert_int_equal(nlp_vocab_add(v, "a", 1), 5);         /* differs from "a\0b" */
    assert_int_equal(nlp_vocab_size(v), 6);
    assert_int_equal(nlp_vocab_count(v, 0), 2);
    assert_int_equal(nlp_vocab_count(v, 1), 1);
    assert_int_equal(nlp_vocab_total(v), 7);
    assert_string_equal(nlp_vocab_word(v, 2), "with space");
    assert_int_equal(nlp_vocab_word_len(v, 4), 3);
    assert_int_equal(nlp_vocab_find(v, "a\0b", 3), 4);
    assert_int_equal(nlp_vocab_find_str(v, "dog"), -1);
    assert_int_equal(nlp_vocab_add_count(v, "cat", 3, 10), 1);
    assert_int_equal(nlp_vocab_count(v, 1), 11);
    assert_int_equal(nlp_vocab_add_count(v, "x", 1, -1), NLP_EINVAL);
    assert_int_equal(nlp_vocab_set_count(v, 1, 4), NLP_OK);
    assert_int_equal(nlp_vocab_total(v), 10);
    nlp_vocab_free(v);
    nlp_vocab_free(NULL);
}

static void test_growth_and_long_words(void **state)
{
    (void)state;
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    char buf[32];
    enum { N = 50000 };
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "w%d", i);
        assert_int_equal(add(v, buf), i);
    }
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "w%d", i);
        assert_int_equal(nlp_vocab_find_str(v, buf), i);
        assert_string_equal(nlp_vocab_word(v, i), buf);
    }
    /* A long word is kept whole, never truncated. */
    size_t big = 100000;
    char *w = malloc(big);
    memset(w, 'x', big);
    long id = nlp_vocab_add(v, w, big);
    assert_int_equal(id, N);
    assert_int_equal(nlp_vocab_word_len(v, id), big);
    assert_int_equal(nlp_vocab_find(v, w, big), id);
    assert_int_equal(nlp_vocab_find(v, w, big - 1), -1);
    free(w);
    nlp_vocab_free(v);
}

static void test_sort_prune_pin(void **state)
{
    (void)state;
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    assert_int_equal(nlp_vocab_add_count(v, "</s>", 4, 0), 0);
    nlp_vocab_pin(v);
    assert_int_equal(nlp_vocab_pinned(v), 1);
    nlp_vocab_add_count(v, "b", 1, 3);
    nlp_vocab_add_count(v, "a", 1, 3);
    nlp_vocab_add_count(v, "rare", 4, 1);
    nlp_vocab_add_count(v, "top", 3, 9);
    nlp_vocab_add_count(v, "ab", 2, 3);
    assert_int_equal(nlp_vocab_sort(v), NLP_OK);
    /* Ties keep their order of first insertion: b, a, ab. */
    const char *want[] = {"</s>", "top", "b", "a", "ab", "rare"};
    for (long i = 0; i < 6; i++) {
        assert_string_equal(nlp_vocab_word(v, i), want[i]);
        assert_int_equal(nlp_vocab_find_str(v, want[i]), i);
    }
    /* Sorting again changes nothing (stable). */
    assert_int_equal(nlp_vocab_sort(v), NLP_OK);
    for (long i = 0; i < 6; i++)
        assert_string_equal(nlp_vocab_word(v, i), want[i]);

    /* Prune keeps the pinned symbol despite its zero count. */
    assert_int_equal(nlp_vocab_prune(v, 3), 1);
    assert_int_equal(nlp_vocab_size(v), 5);
    assert_int_equal(nlp_vocab_find_str(v, "rare"), -1);
    assert_int_equal(nlp_vocab_find_str(v, "</s>"), 0);
    assert_int_equal(nlp_vocab_find_str(v, "ab"), 4);
    assert_int_equal(nlp_vocab_total(v), 18);
    assert_int_equal(nlp_vocab_prune(v, 3), 0);
    /* Still usable after renumbering. */
    assert_int_equal(add(v, "new"), 5);
    assert_int_equal(nlp_vocab_truncate(v, 2), 4);
    assert_int_equal(nlp_vocab_size(v), 2);
    assert_int_equal(nlp_vocab_find_str(v, "top"), 1);
    assert_int_equal(nlp_vocab_find_str(v, "a"), -1);
    assert_int_equal(nlp_vocab_truncate(v, 0), 1);         /* pinned stays */
    assert_int_equal(nlp_vocab_size(v), 1);
    assert_int_equal(nlp_vocab_prune(v, 100), 0);
    nlp_vocab_free(v);
}

static void test_save_load(void **state)
{
    (void)state;
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    nlp_vocab_add_count(v, "</s>", 4, 7);
    nlp_vocab_add_count(v, "new york", 8, 5);
    nlp_vocab_add_count(v, "città", strlen("città"), 2);
    FILE *f = tmpfile();
    nlp_error e;
    nlp_error_clear(&e);
    assert_int_equal(nlp_vocab_save(v, f, "v.txt", &e), NLP_OK);
    rewind(f);
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    assert_string_equal(buf, "</s> 7\nnew york 5\ncittà 2\n");
    rewind(f);
    nlp_vocab *w;
    assert_int_equal(nlp_vocab_new(&w), NLP_OK);
    assert_int_equal(nlp_vocab_load(w, f, "v.txt", &e), NLP_OK);
    assert_int_equal(nlp_vocab_size(w), 3);
    assert_int_equal(nlp_vocab_find_str(w, "new york"), 1);
    assert_int_equal(nlp_vocab_count(w, 2), 2);
    fclose(f);
    nlp_vocab_free(w);

    /* A pinned symbol already present takes the listed count. */
    assert_int_equal(nlp_vocab_new(&w), NLP_OK);
    nlp_vocab_add_count(w, "</s>", 4, 0);
    nlp_vocab_pin(w);
    f = tmpfile();
    fputs("cat 3\r\n\n</s> 9\n", f);
    rewind(f);
    assert_int_equal(nlp_vocab_load(w, f, "v.txt", &e), NLP_OK);
    assert_int_equal(nlp_vocab_size(w), 2);
    assert_int_equal(nlp_vocab_count(w, 0), 9);
    assert_int_equal(nlp_vocab_find_str(w, "cat"), 1);
    fclose(f);
    nlp_vocab_free(w);

    /* A word with a newline cannot be saved. */
    nlp_vocab_add(v, "a\nb", 3);
    f = tmpfile();
    assert_int_equal(nlp_vocab_save(v, f, "v.txt", &e), NLP_EFORMAT);
    fclose(f);
    nlp_vocab_free(v);
}

/* Loads text; expects code and "file:line: ..." starting with prefix. */
static void bad_load(const char *text, int code, const char *prefix)
{
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    FILE *f = tmpfile();
    fputs(text, f);
    rewind(f);
    nlp_error e;
    nlp_error_clear(&e);
    assert_int_equal(nlp_vocab_load(v, f, "bad.vocab", &e), code);
    char buf[1024];
    nlp_error_format(&e, buf, sizeof buf);
    if (strncmp(buf, prefix, strlen(prefix)) != 0)
        fail_msg("got '%s', expected it to start with '%s'", buf, prefix);
    fclose(f);
    nlp_vocab_free(v);
}

static void test_load_errors(void **state)
{
    (void)state;
    bad_load("a 1\nnocount\n", NLP_EFORMAT, "bad.vocab:2: expected 'WORD COUNT'");
    bad_load("a 1\nb 2\nc x3\n", NLP_EFORMAT, "bad.vocab:3: bad count 'x3'");
    bad_load("a -1\n", NLP_EFORMAT, "bad.vocab:1: bad count");
    bad_load("a 1\n\nb 99999999999999999999999\n", NLP_EFORMAT, "bad.vocab:3: bad count");
    bad_load(" 5\n", NLP_EFORMAT, "bad.vocab:1: empty word");
    bad_load("a 1\nb 1\na 2\n", NLP_EFORMAT, "bad.vocab:3: word 'a' listed twice");
    bad_load("a 1\nb \n", NLP_EFORMAT, "bad.vocab:2: bad count ''");
}

static void test_blob(void **state)
{
    (void)state;
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    nlp_vocab_add_count(v, "<unk>", 5, 0);
    nlp_vocab_pin(v);
    nlp_vocab_add_count(v, "a\nb", 3, 4);
    nlp_vocab_add_count(v, "\0", 1, 1);
    nlp_vocab_add_count(v, "", 0, 2);
    unsigned char *b;
    size_t n;
    assert_int_equal(nlp_vocab_to_blob(v, &b, &n), NLP_OK);
    nlp_vocab *w;
    nlp_error e;
    assert_int_equal(nlp_vocab_from_blob(b, n, &w, &e), NLP_OK);
    assert_int_equal(nlp_vocab_size(w), 4);
    assert_int_equal(nlp_vocab_pinned(w), 1);
    for (long i = 0; i < 4; i++) {
        assert_int_equal(nlp_vocab_word_len(w, i), nlp_vocab_word_len(v, i));
        assert_memory_equal(nlp_vocab_word(w, i), nlp_vocab_word(v, i), nlp_vocab_word_len(v, i));
        assert_int_equal(nlp_vocab_count(w, i), nlp_vocab_count(v, i));
    }
    nlp_vocab_free(w);
    /* Every truncated prefix is refused cleanly. */
    for (size_t k = 0; k < n; k++) {
        assert_true(nlp_vocab_from_blob(b, k, &w, &e) < 0);
        assert_null(w);
    }
    b[0] = 'X';
    assert_int_equal(nlp_vocab_from_blob(b, n, &w, &e), NLP_EFORMAT);
    b[0] = 'N';
    b[4] = 9;
    assert_int_equal(nlp_vocab_from_blob(b, n, &w, &e), NLP_EVERSION);
    free(b);
    nlp_vocab_free(v);
}

/* Issue 11: count sums wrapped (signed overflow).  Counts near INT64_MAX
** are refused with NLP_ERANGE once a count or the total would pass it, and
** the vocabulary is left as it was. */
static void test_count_overflow(void **state)
{
    (void)state;
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    assert_int_equal(nlp_vocab_add_count(v, "a", 1, INT64_MAX - 1), 0);
    assert_int_equal(nlp_vocab_add_count(v, "a", 1, 2), NLP_ERANGE);     /* the word's count */
    assert_int_equal(nlp_vocab_add_count(v, "b", 1, 2), NLP_ERANGE);     /* the total */
    assert_int_equal(nlp_vocab_size(v), 1);
    assert_int_equal(nlp_vocab_count(v, 0), INT64_MAX - 1);
    assert_int_equal(nlp_vocab_total(v), INT64_MAX - 1);
    assert_int_equal(nlp_vocab_add(v, "a", 1), 0);                      /* exactly INT64_MAX */
    assert_int_equal(nlp_vocab_total(v), INT64_MAX);
    assert_int_equal(nlp_vocab_add_count(v, "b", 1, 0), 1);
    assert_int_equal(nlp_vocab_add(v, "b", 1), NLP_ERANGE);
    assert_int_equal(nlp_vocab_count(v, 1), 0);
    /* set_count: the rest of the total plus the new count must fit. */
    assert_int_equal(nlp_vocab_set_count(v, 1, 1), NLP_ERANGE);
    assert_int_equal(nlp_vocab_set_count(v, 1, -1), NLP_EINVAL);
    assert_int_equal(nlp_vocab_set_count(v, 0, 5), NLP_OK);
    assert_int_equal(nlp_vocab_set_count(v, 1, INT64_MAX - 5), NLP_OK);
    assert_int_equal(nlp_vocab_total(v), INT64_MAX);
    assert_int_equal(nlp_vocab_set_count(v, 0, 6), NLP_ERANGE);
    assert_int_equal(nlp_vocab_count(v, 0), 5);
    assert_int_equal(nlp_vocab_total(v), INT64_MAX);
    nlp_vocab_free(v);

    /* nlp_vocab_load: the fuzzer's "a 4611686018427387904\nb 4611686018427387904" */
    bad_load("a 4611686018427387904\nb 4611686018427387904\n", NLP_ERANGE,
             "bad.vocab:2: count 4611686018427387904 takes the total beyond");
    bad_load("a 9223372036854775807\nb 0\nc 1\n", NLP_ERANGE, "bad.vocab:3: count 1 takes");
    /* ... and through a pinned symbol, whose listed count replaces its own */
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    assert_int_equal(nlp_vocab_add_count(v, "</s>", 4, 0), 0);
    nlp_vocab_pin(v);
    FILE *f = tmpfile();
    fputs("a 9223372036854775000\n</s> 1000\n", f);
    rewind(f);
    nlp_error e;
    nlp_error_clear(&e);
    assert_int_equal(nlp_vocab_load(v, f, "pin.vocab", &e), NLP_ERANGE);
    assert_int_equal(e.line, 2);
    assert_int_equal(nlp_vocab_count(v, 0), 0);
    assert_int_equal(nlp_vocab_total(v), 9223372036854775000);
    fclose(f);
    nlp_vocab_free(v);
}

/* A blob of two one-byte words w0, w1 with counts c0, c1 (the layout of
** nlp_vocab_to_blob), as the fuzzer's reproducers. */
static size_t two_word_blob(unsigned char *b, char w0, uint64_t c0, char w1, uint64_t c1)
{
    memset(b, 0, 50);
    memcpy(b, "NLPV", 4);
    b[4] = 1;
    b[8] = 2;
    unsigned char *p = b + 24;
    const char w[2] = {w0, w1};
    const uint64_t c[2] = {c0, c1};
    for (int i = 0; i < 2; i++, p += 13) {
        p[0] = 1;
        for (int k = 0; k < 8; k++)
            p[4 + k] = (unsigned char)(c[i] >> (8 * k));
        p[12] = (unsigned char)w[i];
    }
    return 50;
}

static void test_blob_count_overflow(void **state)
{
    (void)state;
    unsigned char b[50];
    nlp_vocab *w;
    nlp_error e;
    const uint64_t half = (uint64_t)1 << 62;
    /* counts that sum beyond INT64_MAX */
    size_t n = two_word_blob(b, 'a', half, 'b', half);
    nlp_error_clear(&e);
    assert_int_equal(nlp_vocab_from_blob(b, n, &w, &e), NLP_ERANGE);
    assert_null(w);
    assert_non_null(strstr(e.text, "counts sum beyond"));
    /* a duplicate is refused as a duplicate, before its count is added */
    n = two_word_blob(b, 'a', half, 'a', half);
    nlp_error_clear(&e);
    assert_int_equal(nlp_vocab_from_blob(b, n, &w, &e), NLP_EFORMAT);
    assert_null(w);
    assert_non_null(strstr(e.text, "duplicate word at word 1"));
    n = two_word_blob(b, 'a', (uint64_t)INT64_MAX, 'a', (uint64_t)INT64_MAX);
    assert_int_equal(nlp_vocab_from_blob(b, n, &w, &e), NLP_EFORMAT);
    /* the largest total that fits loads and round-trips */
    n = two_word_blob(b, 'a', (uint64_t)INT64_MAX - 1, 'b', 1);
    assert_int_equal(nlp_vocab_from_blob(b, n, &w, &e), NLP_OK);
    assert_int_equal(nlp_vocab_total(w), INT64_MAX);
    unsigned char *out;
    size_t len;
    assert_int_equal(nlp_vocab_to_blob(w, &out, &len), NLP_OK);
    assert_int_equal(len, n);
    assert_memory_equal(out, b, n);
    free(out);
    nlp_vocab_free(w);
    /* a count above INT64_MAX is a format error */
    n = two_word_blob(b, 'a', (uint64_t)INT64_MAX + 1, 'b', 0);
    assert_int_equal(nlp_vocab_from_blob(b, n, &w, &e), NLP_EFORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counting),
        cmocka_unit_test(test_growth_and_long_words),
        cmocka_unit_test(test_sort_prune_pin),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_blob),
        cmocka_unit_test(test_count_overflow),
        cmocka_unit_test(test_blob_count_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
