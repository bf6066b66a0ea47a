/*
** The focus of this file is the numeric table reader and the transforms of
** lib/series.c: formats and their detection, headers, columns by name and
** number, the time column, the file:line:column of every bad cell, the
** fills, standardisation statistics, differencing and its inverse, windows.
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

#include "nlp/alloc.h"
#include "nlp/series.h"

#include "heapcheck.h"

/* Reads text with columns cols (k) and the other settings; returns the
** code, *out the table (or NULL), e filled. */
static int read_text(const char *text, const char *const *cols, int k, const char *time,
                     nlp_series_fill fill, nlp_series **out, nlp_error *e)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    assert_non_null(f);
    nlp_series_read_config c;
    nlp_series_read_config_default(&c);
    c.columns = cols;
    c.ncolumns = k;
    c.time = time;
    c.fill = fill;
    nlp_error_clear(e);
    int rc = nlp_series_read(out, f, "t.csv", &c, e);
    fclose(f);
    return rc;
}

static void test_csv_header_names(void **state)
{
    (void)state;
    const char *text = "\"year\",\"q\",\"gdp\",\"cons\"\n1959,1,2710.349,1707.4\n"
                       "1959,2,2778.801,1733.7\r\n\n# a comment\n1959,3,2775.488,1751.8\n";
    const char *cols[] = {"gdp", "cons"};
    nlp_series *s;
    nlp_error e;
    assert_int_equal(read_text(text, cols, 2, NULL, NLP_SERIES_FILL_NONE, &s, &e), NLP_OK);
    assert_int_equal(s->n, 3);
    assert_int_equal(s->k, 2);
    assert_int_equal(s->header, 1);
    assert_int_equal(s->format, NLP_SERIES_CSV);
    assert_true(s->x[0] == 2710.349 && s->x[1] == 1707.4);
    assert_true(s->x[4] == 2775.488 && s->x[5] == 1751.8);
    assert_int_equal(s->line[2], 6);
    assert_string_equal(s->names[0], "gdp");
    assert_int_equal(s->numbers[0], 3);
    assert_int_equal(s->numbers[1], 4);
    nlp_series_free(s);
    /* By number, and the order asked for is kept. */
    const char *num[] = {"4", "1"};
    assert_int_equal(read_text(text, num, 2, NULL, NLP_SERIES_FILL_NONE, &s, &e), NLP_OK);
    assert_true(s->x[0] == 1707.4 && s->x[1] == 1959);
    nlp_series_free(s);
}

static void test_formats(void **state)
{
    (void)state;
    const char *one[] = {"2"};
    nlp_series *s;
    nlp_error e;
    /* Whitespace, no header (the first line has numbers). */
    assert_int_equal(read_text("  1   10\n2\t 20\n3 30  \n", one, 1, NULL,
                               NLP_SERIES_FILL_NONE, &s, &e), NLP_OK);
    assert_int_equal(s->format, NLP_SERIES_WHITESPACE);
    assert_int_equal(s->header, 0);
    assert_int_equal(s->n, 3);
    assert_true(s->x[2] == 30);
    assert_string_equal(s->names[0], "2");
    nlp_series_free(s);
    /* TSV with a date column named as time. */
    const char *v[] = {"value"};
    assert_int_equal(read_text("DATE\tvalue\nJan-1-1995\t66.19\nFeb-1-1995\t65.15\n", v, 1,
                               "DATE", NLP_SERIES_FILL_NONE, &s, &e), NLP_OK);
    assert_int_equal(s->format, NLP_SERIES_TSV);
    assert_true(s->x[1] == 65.15);
    assert_int_equal(s->time_number, 1);
    nlp_series_free(s);
    /* A NULL column: the first that is not the time column. */
    const char *first[] = {NULL};
    assert_int_equal(read_text("DATE,value\nJan-1-1995,66.19\n", first, 1, "DATE",
                               NLP_SERIES_FILL_NONE, &s, &e), NLP_OK);
    assert_string_equal(s->names[0], "value");
    nlp_series_free(s);
}

static void test_bad_cells(void **state)
{
    (void)state;
    const char *cols[] = {"b"};
    nlp_series *s = (nlp_series *)1;
    nlp_error e;
    /* Line 3, column 5 (the byte where the field "x1" starts). */
    assert_int_equal(read_text("a,b\n1,2\n3, x1\n", cols, 1, NULL, NLP_SERIES_FILL_NONE, &s, &e),
                     NLP_EFORMAT);
    assert_null(s);
    assert_string_equal(e.file, "t.csv");
    assert_int_equal(e.line, 3);
    assert_int_equal(e.column, 4);
    assert_non_null(strstr(e.text, "'x1' in column 'b' is not a number"));
    /* An empty cell. */
    assert_int_equal(read_text("a,b\n1,\n", cols, 1, NULL, NLP_SERIES_FILL_NONE, &s, &e),
                     NLP_EFORMAT);
    assert_int_equal(e.line, 2);
    assert_int_equal(e.column, 3);
    assert_non_null(strstr(e.text, "empty cell"));
    /* inf and nan are not numbers of a series. */
    assert_int_equal(read_text("a,b\n1,inf\n", cols, 1, NULL, NLP_SERIES_FILL_NONE, &s, &e),
                     NLP_EFORMAT);
    /* Out of range. */
    assert_int_equal(read_text("a,b\n1,1e300\n", cols, 1, NULL, NLP_SERIES_FILL_NONE, &s, &e),
                     NLP_ERANGE);
    assert_int_equal(e.column, 3);
    /* A missing column name: the header's line and the column list. */
    const char *nope[] = {"c"};
    assert_int_equal(read_text("a,b\n1,2\n", nope, 1, NULL, NLP_SERIES_FILL_NONE, &s, &e),
                     NLP_EFORMAT);
    assert_int_equal(e.line, 1);
    assert_non_null(strstr(e.text, "no column 'c'"));
    assert_non_null(strstr(e.text, "'a', 'b'"));
    /* A number past the last column. */
    const char *three[] = {"3"};
    assert_int_equal(read_text("1,2\n", three, 1, NULL, NLP_SERIES_FILL_NONE, &s, &e),
                     NLP_EFORMAT);
    /* A short line. */
    assert_int_equal(read_text("a,b\n1,2\n3\n", cols, 1, NULL, NLP_SERIES_FILL_NONE, &s, &e),
                     NLP_EFORMAT);
    assert_int_equal(e.line, 3);
    assert_non_null(strstr(e.text, "1 fields where the first line has 2"));
    /* The time column cannot be a value. */
    const char *a[] = {"a"};
    assert_int_equal(read_text("a,b\n1,2\n", a, 1, "a", NLP_SERIES_FILL_NONE, &s, &e),
                     NLP_EFORMAT);
    /* Only a header. */
    assert_int_equal(read_text("a,b\n", cols, 1, NULL, NLP_SERIES_FILL_NONE, &s, &e),
                     NLP_EEMPTY);
    /* A bad cell in a column not chosen is not read. */
    assert_int_equal(read_text("a,b\nx,2\n", cols, 1, NULL, NLP_SERIES_FILL_NONE, &s, &e),
                     NLP_OK);
    nlp_series_free(s);
}

static void test_fill(void **state)
{
    (void)state;
    const char *cols[] = {"v"};
    nlp_series *s;
    nlp_error e;
    const char *text = "v\nNA\n1\n\n?\nx\n4\n.\n";
    /* Rows: NA 1 ? x 4 . -- the empty line is skipped. */
    assert_int_equal(read_text(text, cols, 1, NULL, NLP_SERIES_FILL_PREVIOUS, &s, &e), NLP_OK);
    assert_int_equal(s->n, 6);
    assert_int_equal(s->filled, 4);
    double prev[] = {1, 1, 1, 1, 4, 4};
    for (int i = 0; i < 6; i++)
        assert_true(s->x[i] == prev[i]);
    nlp_series_free(s);
    assert_int_equal(read_text(text, cols, 1, NULL, NLP_SERIES_FILL_LINEAR, &s, &e), NLP_OK);
    double lin[] = {1, 1, 2, 3, 4, 4};
    for (int i = 0; i < 6; i++)
        assert_true(fabs(s->x[i] - lin[i]) < 1e-12);
    nlp_series_free(s);
    /* Nothing to fill from. */
    assert_int_equal(read_text("v\nNA\n?\n", cols, 1, NULL, NLP_SERIES_FILL_LINEAR, &s, &e),
                     NLP_EFORMAT);
    assert_non_null(strstr(e.text, "no numeric value"));
}

static void test_fallback_numbers(void **state)
{
    (void)state;
    /* A headerless tail of a table with a header: the numbers stored. */
    const char *cols[] = {"gdp"};
    const int nums[] = {3};
    FILE *f = fmemopen((void *)"1,2,30\n1,3,40\n", 14, "r");
    nlp_series_read_config c;
    nlp_series_read_config_default(&c);
    c.columns = cols;
    c.numbers = nums;
    c.ncolumns = 1;
    nlp_series *s;
    nlp_error e;
    assert_int_equal(nlp_series_read(&s, f, "tail", &c, &e), NLP_OK);
    assert_true(s->x[0] == 30 && s->x[1] == 40);
    nlp_series_free(s);
    fclose(f);
}

static void test_transforms(void **state)
{
    (void)state;
    /* Two columns: 1,4,9,16,25 and a constant. */
    double x[10] = {1, 7, 4, 7, 9, 7, 16, 7, 25, 7}, mean[2], std[2];
    assert_int_equal(nlp_series_stats(x, 5, 2, 0, 5, mean, std), NLP_OK);
    assert_true(fabs(mean[0] - 11) < 1e-12);
    /* population variance of 1,4,9,16,25 around 11: (100+49+4+25+196)/5 */
    assert_true(fabs(std[0] - sqrt(374.0 / 5)) < 1e-12);
    assert_true(mean[1] == 7 && std[1] == 1); /* constant: std 1 */
    /* Training part only: rows 0..2. */
    assert_int_equal(nlp_series_stats(x, 5, 2, 0, 3, mean, std), NLP_OK);
    assert_true(fabs(mean[0] - 14.0 / 3) < 1e-12);
    assert_int_equal(nlp_series_stats(x, 5, 2, 3, 3, mean, std), NLP_EINVAL);
    assert_int_equal(nlp_series_stats(x, 5, 2, 0, 6, mean, std), NLP_EINVAL);

    /* --difference round trip: difference, then integrate. */
    double d[8], back[10];
    nlp_series_difference(d, x, 5, 2);
    double want[8] = {3, 0, 5, 0, 7, 0, 9, 0};
    for (int i = 0; i < 8; i++)
        assert_true(d[i] == want[i]);
    nlp_series_integrate(back, x, d, 4, 2);
    for (int i = 0; i < 10; i++)
        assert_true(back[i] == x[i]);
    /* Non-integers: back within rounding. */
    double y[6] = {0.1, 2.7, -3.3, 1e-3, 12345.678, -0.5}, dy[5], by[6];
    nlp_series_difference(dy, y, 6, 1);
    nlp_series_integrate(by, y, dy, 5, 1);
    for (int i = 0; i < 6; i++)
        assert_true(fabs(by[i] - y[i]) < 1e-9);

    /* A window, time-major in a batch of 2 (stride 2*k). */
    float out[3 * 2 * 2];
    memset(out, 0, sizeof out);
    double m2[2] = {1, 7}, s2[2] = {2, 1};
    nlp_series_window(out, 4, x, 2, 3, 3, m2, s2); /* rows 1..3 */
    assert_true(out[0] == 1.5f && out[1] == 0);    /* (4-1)/2 */
    assert_true(out[4] == 4 && out[8] == 7.5f);    /* (9-1)/2, (16-1)/2 */
    assert_true(out[2] == 0 && out[3] == 0);       /* the other sequence untouched */
}

/* Every allocation of a read failed in turn: NLP_ENOMEM, never a crash
** (leaks: ASan's checker in the sanitizer build). */
/* Reads text (two columns of it, linear fill); nothing out on failure. */
static int op_read(void *text)
{
    const char *cols[] = {"c", "b"};
    nlp_series *s;
    nlp_error e;
    int rc = read_text(text, cols, 2, "DATE", NLP_SERIES_FILL_LINEAR, &s, &e);
    if (rc == NLP_OK)
        nlp_series_free(s);
    else
        CHECK(s == NULL);
    return rc;
}

static void test_read_faults(void **state)
{
    (void)state;
    static char text[20000];
    size_t k = (size_t)snprintf(text, sizeof text, "DATE,a,b,c\n");
    for (int i = 0; i < 600 && k + 40 < sizeof text; i++)
        k += (size_t)snprintf(text + k, sizeof text - k, "d%d,%d,%s,%d.5\n", i, i,
                              i % 7 ? "3" : "NA", -i);
    assert_true(fault_loop("nlp_series_read", op_read, text) > 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_header_names),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_bad_cells),
        cmocka_unit_test(test_fill),
        cmocka_unit_test(test_fallback_numbers),
        cmocka_unit_test(test_transforms),
        cmocka_unit_test(test_read_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
