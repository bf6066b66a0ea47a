/*
** Unit tests for codepoints: UTF-8 text to code points, invalid UTF-8
** repaired with one warning per line or refused (strict), whole files and
** corpora of several files, and the errors of unreadable ones.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nlp/alloc.h"
#include "nlp/codepoints.h"

static int warn_calls;
static long warn_line;
static char warn_file[64];

static void count_warning(void *ctx, const nlp_error *e)
{
    (void)ctx;
    warn_calls++;
    warn_line = e->line;
    snprintf(warn_file, sizeof warn_file, "%s", e->file);
}

/* The inputs bracketed, as "+name" and "-name", one after the other. */
static char inputs[256];

static void note_input(void *ctx, const char *name, int end)
{
    (void)ctx;
    size_t k = strlen(inputs);
    snprintf(inputs + k, sizeof inputs - k, "%s%c%s", k ? " " : "", end ? '-' : '+', name);
}

static void tmpname(char *buf, size_t n, const char *what)
{
    snprintf(buf, n, "test_codepoints.%ld.%s", (long)getpid(), what);
}

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(s, f);
    fclose(f);
}

static void test_code_points(void **state)
{
    (void)state;
    nlp_codepoints t;
    nlp_codepoints_init(&t);
    /* a, e-grave, right single quote, guillemet, an emoji, newline */
    const char *s = "a\xc3\xa8\xe2\x80\x99\xc2\xab\xf0\x9f\x98\x80\n";
    assert_int_equal(nlp_codepoints_append(&t, s, strlen(s), "t", 0, NULL, NULL, NULL), NLP_OK);
    assert_int_equal(t.n, 6);
    const int32_t want[6] = {'a', 0xE8, 0x2019, 0xAB, 0x1F600, '\n'};
    for (int i = 0; i < 6; i++)
        assert_int_equal(t.cp[i], want[i]);
    assert_int_equal(t.nbad, 0);
    /* Appending keeps what is there. */
    assert_int_equal(nlp_codepoints_append(&t, "xy", 2, "t", 0, NULL, NULL, NULL), NLP_OK);
    assert_int_equal(t.n, 8);
    assert_int_equal(t.cp[7], 'y');
    nlp_codepoints_free(&t);
    nlp_codepoints_free(&t); /* twice is fine */
    assert_null(t.cp);
    assert_int_equal(t.n, 0);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    nlp_codepoints t;
    nlp_codepoints_init(&t);
    const char *s = "ok\nbad \xff here \xe2\x82 and\nfine\n\xc0\xaf\n";
    warn_calls = 0;
    assert_int_equal(nlp_codepoints_append(&t, s, strlen(s), "in.txt", 0, count_warning, NULL,
                                           NULL), NLP_OK);
    /* One warning per line with trouble: lines 2 and 4. */
    assert_int_equal(warn_calls, 2);
    assert_int_equal(warn_line, 4);
    assert_string_equal(warn_file, "in.txt");
    /* \xff -> 1, truncated euro sign -> 1, overlong "/" -> 2 (maximal subparts). */
    assert_int_equal(t.nbad, 4);
    size_t fffd = 0;
    for (size_t i = 0; i < t.n; i++)
        fffd += t.cp[i] == 0xFFFD;
    assert_int_equal(fffd, 4);
    nlp_codepoints_free(&t);

    /* Strict: an error naming file and line, at the first one; what came
    ** before it is kept. */
    nlp_error e;
    nlp_codepoints_init(&t);
    assert_int_equal(nlp_codepoints_append(&t, s, strlen(s), "in.txt", 1, NULL, NULL, &e),
                     NLP_EUTF8);
    assert_string_equal(e.file, "in.txt");
    assert_int_equal(e.line, 2);
    assert_string_equal(e.text, "invalid UTF-8");
    assert_int_equal(t.n, 7); /* "ok\nbad " */
    nlp_codepoints_free(&t);
}

static void test_read_file(void **state)
{
    (void)state;
    char path[64];
    tmpname(path, sizeof path, "txt");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    /* Larger than one read block, with a multi-byte character across it. */
    for (int i = 0; i < 40000; i++)
        fputs("\xc3\xa8", f);
    fclose(f);
    f = fopen(path, "rb");
    nlp_codepoints t;
    nlp_codepoints_init(&t);
    assert_int_equal(nlp_codepoints_read(&t, f, path, 1, NULL, NULL, NULL), NLP_OK);
    fclose(f);
    assert_int_equal(t.n, 40000);
    assert_int_equal(t.cp[39999], 0xE8);
    nlp_codepoints_free(&t);
    unlink(path);
}

/* Several files in order, line numbers per file, "-" and no file at all
** as standard input (with the caller's name for it). */
static void test_read_files(void **state)
{
    (void)state;
    char a[64], b[64];
    tmpname(a, sizeof a, "a");
    tmpname(b, sizeof b, "b");
    write_file(a, "ab\n");
    write_file(b, "c\n\xff\n");
    const char *paths[] = {a, b, a};
    nlp_codepoints t;
    nlp_codepoints_init(&t);
    warn_calls = 0;
    inputs[0] = '\0';
    nlp_error e;
    assert_int_equal(nlp_codepoints_read_files(&t, paths, 3, NULL, 0, count_warning, note_input,
                                               NULL, &e), NLP_OK);
    assert_int_equal(t.n, 10);
    const int32_t want[10] = {'a', 'b', '\n', 'c', '\n', 0xFFFD, '\n', 'a', 'b', '\n'};
    for (int i = 0; i < 10; i++)
        assert_int_equal(t.cp[i], want[i]);
    assert_int_equal(warn_calls, 1);
    assert_int_equal(warn_line, 2);
    assert_string_equal(warn_file, b);
    char order[256];
    snprintf(order, sizeof order, "+%s -%s +%s -%s +%s -%s", a, a, b, b, a, a);
    assert_string_equal(inputs, order);
    nlp_codepoints_free(&t);

    /* Strict stops at the second file, naming it; that input is not ended. */
    inputs[0] = '\0';
    nlp_codepoints_init(&t);
    assert_int_equal(nlp_codepoints_read_files(&t, paths, 3, NULL, 1, NULL, note_input, NULL,
                                               &e), NLP_EUTF8);
    assert_string_equal(e.file, b);
    assert_int_equal(e.line, 2);
    snprintf(order, sizeof order, "+%s -%s +%s", a, a, b);
    assert_string_equal(inputs, order);
    nlp_codepoints_free(&t);

    /* Standard input, as "-" and as no file, under the name given. */
    assert_non_null(freopen(b, "rb", stdin));
    const char *dash[] = {"-"};
    nlp_codepoints_init(&t);
    warn_calls = 0;
    assert_int_equal(nlp_codepoints_read_files(&t, dash, 1, "<stdin>", 0, count_warning, NULL,
                                               NULL, &e), NLP_OK);
    assert_int_equal(t.n, 4);
    assert_string_equal(warn_file, "<stdin>");
    nlp_codepoints_free(&t);
    assert_non_null(freopen(a, "rb", stdin));
    nlp_codepoints_init(&t);
    assert_int_equal(nlp_codepoints_read_files(&t, NULL, 0, NULL, 1, NULL, NULL, NULL, &e),
                     NLP_OK);
    assert_int_equal(t.n, 3);
    nlp_codepoints_free(&t);
    assert_non_null(freopen(b, "rb", stdin));
    nlp_codepoints_init(&t);
    assert_int_equal(nlp_codepoints_read_files(&t, NULL, 0, NULL, 1, NULL, NULL, NULL, &e),
                     NLP_EUTF8);
    assert_string_equal(e.file, "-");
    nlp_codepoints_free(&t);
    unlink(a);
    unlink(b);
}

static void test_unreadable(void **state)
{
    (void)state;
    char dir[64], missing[64];
    tmpname(dir, sizeof dir, "dir");
    tmpname(missing, sizeof missing, "missing");
    assert_int_equal(mkdir(dir, 0700), 0);
    nlp_codepoints t;
    nlp_codepoints_init(&t);
    nlp_error e;
    const char *p1[] = {missing};
    assert_int_equal(nlp_codepoints_read_files(&t, p1, 1, NULL, 0, NULL, NULL, NULL, &e), NLP_EIO);
    assert_string_equal(e.file, missing);
    assert_non_null(strstr(e.text, "No such file"));
    /* A directory opens but cannot be read: its name and the reason. */
    const char *p2[] = {dir};
    assert_int_equal(nlp_codepoints_read_files(&t, p2, 1, NULL, 0, NULL, NULL, NULL, &e), NLP_EIO);
    assert_string_equal(e.file, dir);
    assert_non_null(strstr(e.text, "Is a directory"));
    nlp_codepoints_free(&t);
    rmdir(dir);
}

/* Every allocation failing in turn: a clean NLP_ENOMEM, nothing leaked. */
static void test_out_of_memory(void **state)
{
    (void)state;
    char a[64];
    tmpname(a, sizeof a, "oom");
    write_file(a, "some text\n");
    const char *paths[] = {a, a};
    int failed = 0;
    for (long n = 1; n < 20; n++) {
        nlp_codepoints t;
        nlp_codepoints_init(&t);
        nlp_error e;
        nlp_alloc_fail_at(n, 0);
        int rc = nlp_codepoints_read_files(&t, paths, 2, NULL, 0, NULL, NULL, NULL, &e);
        nlp_alloc_fail_at(0, 0);
        if (rc == NLP_OK) {
            assert_int_equal(t.n, 20);
        } else {
            assert_int_equal(rc, NLP_ENOMEM);
            failed++;
        }
        nlp_codepoints_free(&t);
    }
    assert_true(failed >= 2);
    unlink(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_points),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_read_files),
        cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
