/* Unit tests for the line reader: empty input, final line without a
** newline, NUL bytes, CRLF, and lines far longer than the read block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlp.h"
#include "nlp/lines.h"

/* A temporary file holding data[0..n), rewound. */
static FILE *file_with(const char *data, size_t n)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    rewind(f);
    return f;
}

/* Reads the next line and checks it against want[0..n). */
static void expect_line(nlp_lines *r, const char *want, size_t n, long lineno)
{
    char *line;
    size_t len;
    assert_int_equal(nlp_lines_next(r, &line, &len), 1);
    assert_int_equal(len, n);
    assert_memory_equal(line, want, n);
    assert_int_equal(line[len], '\0');
    assert_int_equal(nlp_lines_number(r), lineno);
}

static void expect_eof(nlp_lines *r)
{
    char *line;
    size_t len;
    assert_int_equal(nlp_lines_next(r, &line, &len), 0);
    assert_int_equal(nlp_lines_next(r, &line, &len), 0);
}

static void test_empty(void **state)
{
    (void)state;
    FILE *f = file_with("", 0);
    nlp_lines *r;
    assert_int_equal(nlp_lines_new(&r, f, 0), NLP_OK);
    assert_int_equal(nlp_lines_number(r), 0);
    expect_eof(r);
    nlp_lines_free(r);
    fclose(f);
    nlp_lines_free(NULL);
}

static void test_basic(void **state)
{
    (void)state;
    const char text[] = "one\n\ntwo words\nlast";
    FILE *f = file_with(text, sizeof text - 1);
    nlp_lines *r;
    assert_int_equal(nlp_lines_new(&r, f, 0), NLP_OK);
    expect_line(r, "one", 3, 1);
    expect_line(r, "", 0, 2);
    expect_line(r, "two words", 9, 3);
    expect_line(r, "last", 4, 4);           /* no final newline */
    expect_eof(r);
    assert_int_equal(nlp_lines_number(r), 4);
    nlp_lines_free(r);
    fclose(f);

    f = file_with("\n", 1);                 /* one empty line */
    assert_int_equal(nlp_lines_new(&r, f, 0), NLP_OK);
    expect_line(r, "", 0, 1);
    expect_eof(r);
    nlp_lines_free(r);
    fclose(f);
}

static void test_nul_and_cr(void **state)
{
    (void)state;
    const char text[] = "a\0b\r\nc\rd\r\n\r";
    FILE *f = file_with(text, sizeof text - 1);
    nlp_lines *r;
    assert_int_equal(nlp_lines_new(&r, f, 0), NLP_OK);
    expect_line(r, "a\0b\r", 4, 1);
    expect_line(r, "c\rd\r", 4, 2);
    expect_line(r, "\r", 1, 3);
    expect_eof(r);
    nlp_lines_free(r);

    rewind(f);
    assert_int_equal(nlp_lines_new(&r, f, NLP_LINES_STRIP_CR), NLP_OK);
    expect_line(r, "a\0b", 3, 1);
    expect_line(r, "c\rd", 3, 2);           /* a lone CR inside stays */
    expect_line(r, "", 0, 3);
    expect_eof(r);
    nlp_lines_free(r);
    fclose(f);
}

/* Lines longer than the read block, of many sizes, some without a final
** newline; the line content may be modified in place by the caller. */
static void test_long_lines(void **state)
{
    (void)state;
    size_t sizes[] = {65535, 65536, 65537, 200000, 1, 3 << 20, 0, 131072};
    size_t nsizes = sizeof sizes / sizeof sizes[0], total = 0;
    for (size_t i = 0; i < nsizes; i++)
        total += sizes[i] + 1;
    char *data = malloc(total);
    assert_non_null(data);
    size_t p = 0;
    for (size_t i = 0; i < nsizes; i++) {
        for (size_t j = 0; j < sizes[i]; j++)
            data[p++] = (char)('a' + (i + j) % 26);
        data[p++] = '\n';
    }
    for (int final_newline = 1; final_newline >= 0; final_newline--) {
        FILE *f = file_with(data, total - (final_newline ? 0 : 1));
        nlp_lines *r;
        assert_int_equal(nlp_lines_new(&r, f, 0), NLP_OK);
        p = 0;
        for (size_t i = 0; i < nsizes; i++) {
            char *line;
            size_t len;
            if (!final_newline && i == nsizes - 1) {
                expect_line(r, data + p, sizes[i], (long)i + 1);
                break;
            }
            assert_int_equal(nlp_lines_next(r, &line, &len), 1);
            assert_int_equal(len, sizes[i]);
            assert_memory_equal(line, data + p, len);
            memset(line, 'X', len);        /* the caller may write into it */
            p += sizes[i] + 1;
        }
        expect_eof(r);
        nlp_lines_free(r);
        fclose(f);
    }
    free(data);
}

/* Blocks of whole lines: their concatenation is the input, each ends with
** a newline but the last of a file without one, line numbers add up, and
** they mix with nlp_lines_next. */
static void test_blocks(void **state)
{
    (void)state;
    size_t total = 300000;
    char *data = malloc(total);
    assert_non_null(data);
    long lines = 0;
    for (size_t i = 0; i < total; i++) {
        data[i] = (i * 7919) % 61 == 0 ? '\n' : (char)('a' + i % 26);
        lines += data[i] == '\n';
    }
    data[total - 1] = 'z';   /* no final newline */
    lines++;
    FILE *f = file_with(data, total);
    nlp_lines *r;
    assert_int_equal(nlp_lines_new(&r, f, 0), NLP_OK);
    char *line, *block;
    size_t len, got = 0, blen;
    long nl, counted = 0;
    expect_line(r, data, (size_t)((char *)memchr(data, '\n', total) - data), 1);
    got = (size_t)((char *)memchr(data, '\n', total) - data) + 1;
    counted = 1;
    int rc;
    while ((rc = nlp_lines_next_block(r, &block, &blen, &nl)) == 1) {
        assert_true(blen > 0 && nl > 0);
        assert_memory_equal(block, data + got, blen);
        long c = 0;
        for (size_t i = 0; i < blen; i++)
            c += block[i] == '\n';
        if (got + blen < total)
            assert_int_equal(block[blen - 1], '\n');
        assert_int_equal(nl, got + blen == total ? c + 1 : c);
        counted += nl;
        assert_int_equal(nlp_lines_number(r), counted);
        got += blen;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(got, total);
    assert_int_equal(counted, lines);
    assert_int_equal(nlp_lines_next(r, &line, &len), 0);
    nlp_lines_free(r);
    fclose(f);

    f = file_with("", 0);
    assert_int_equal(nlp_lines_new(&r, f, 0), NLP_OK);
    assert_int_equal(nlp_lines_next_block(r, &block, &blen, &nl), 0);
    nlp_lines_free(r);
    fclose(f);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_nul_and_cr),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
