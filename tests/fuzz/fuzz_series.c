/*
** fuzz_series: the numeric table reader nlp_series_read and the transforms
** of nlp/series.h on the table read.
**
** Input layout:
**   byte 0   bits 0-1: format (auto, csv, tsv, whitespace); bits 2-3:
**            header (0 and 3: detect, 1: none, 2: the first line); bits
**            4-5: fill (none, previous, linear; 3 is none); bit 6: a time
**            column named "date"; bit 7: time_number 1
**   byte 1   bits 0-2: ncolumns - 1; bit 3: a numbers array (fallback
**            column numbers for names)
**   then     one byte per column: 0 is a NULL entry (the first column that
**            is not the time column); bit 7 set: the number (bits 0-6) as
**            text, 0 included; else a name of a small list (bits 0-2);
**            bits 3-4 the column's fallback number (0: none)
**   rest     the table
**
** Checks: a failure is a documented code with a message naming the file
** and *out is NULL; a table has at least one row and the columns asked
** for, finite values within NLP_SERIES_MAX_VALUE, increasing line numbers,
** a concrete format and a 0/1 header that agree with forced ones, no
** filled cell without a fill; reading again with the detected format and
** header forced gives the same table, and so does reading with a fill a
** table that needed none; the transforms: stats give finite means and
** positive deviations, integrating the differences gives the table back
** up to rounding, a window reads only what it should.
*/
#include "fuzz.h"

#include <float.h>
#include <math.h>

#include "nlp/series.h"

#define PATH "fuzz.csv"
#define MAX_COLS 8

static const char *const names[8] = { "a", "b", "value", "x y", "1", "2", "realgdp", "date" };

/* Reads the table with cfg; checks the failure contract.  NULL on failure,
** *rc_out the code. */
static nlp_series *read_table(const uint8_t *buf, size_t n, const nlp_series_read_config *cfg,
                              int *rc_out)
{
    FILE *f = fuzz_fmemopen(buf, n);
    nlp_series *s = (nlp_series *)1;
    nlp_error e;
    nlp_error_clear(&e);
    int rc = nlp_series_read(&s, f, PATH, cfg, &e);
    fclose(f);
    *rc_out = rc;
    if (rc != NLP_OK) {
        FUZZ_CHECK(s == NULL);
        fuzz_check_error(rc, &e);
        FUZZ_CHECK(strcmp(e.file, PATH) == 0);
        FUZZ_CHECK(rc == NLP_EFORMAT || rc == NLP_EEMPTY || rc == NLP_ERANGE || rc == NLP_ENOMEM);
        FUZZ_CHECK(e.line >= 0);
        return NULL;
    }
    FUZZ_CHECK(s != NULL);
    return s;
}

static void check_table(const nlp_series *s, const nlp_series_read_config *cfg)
{
    FUZZ_CHECK(s->n >= 1 && s->k == cfg->ncolumns);
    FUZZ_CHECK(s->format != NLP_SERIES_AUTO && s->format <= NLP_SERIES_WHITESPACE);
    FUZZ_CHECK(cfg->format == NLP_SERIES_AUTO || s->format == cfg->format);
    FUZZ_CHECK(s->header == 0 || s->header == 1);
    FUZZ_CHECK(cfg->header < 0 || s->header == cfg->header);
    FUZZ_CHECK(s->filled >= 0 && s->filled <= s->n * (long)s->k);
    FUZZ_CHECK(cfg->fill != NLP_SERIES_FILL_NONE || s->filled == 0);
    FUZZ_CHECK(s->time_number >= 0);
    for (int j = 0; j < s->k; j++) {
        FUZZ_CHECK(s->names[j] != NULL);
        FUZZ_CHECK(s->numbers[j] >= 1 && s->numbers[j] <= NLP_SERIES_MAX_FIELDS);
        FUZZ_CHECK(s->numbers[j] != s->time_number);
    }
    for (long i = 0; i < s->n; i++) {
        FUZZ_CHECK(s->line[i] >= 1 && (i == 0 || s->line[i] > s->line[i - 1]));
        for (int j = 0; j < s->k; j++) {
            double v = s->x[i * s->k + j];
            FUZZ_CHECK(isfinite(v) && fabs(v) <= NLP_SERIES_MAX_VALUE);
        }
    }
}

static int same_table(const nlp_series *a, const nlp_series *b)
{
    if (a->n != b->n || a->k != b->k || a->format != b->format || a->header != b->header
        || a->time_number != b->time_number)
        return 0;
    if (memcmp(a->x, b->x, (size_t)a->n * (size_t)a->k * sizeof *a->x) != 0
        || memcmp(a->line, b->line, (size_t)a->n * sizeof *a->line) != 0
        || memcmp(a->numbers, b->numbers, (size_t)a->k * sizeof *a->numbers) != 0)
        return 0;
    for (int j = 0; j < a->k; j++)
        if (strcmp(a->names[j], b->names[j]) != 0)
            return 0;
    return 1;
}

static void transforms(const nlp_series *s)
{
    long n = s->n;
    int k = s->k;
    double mean[MAX_COLS], std[MAX_COLS];
    FUZZ_CHECK(nlp_series_stats(s->x, n, k, 0, n, mean, std) == NLP_OK);
    for (int j = 0; j < k; j++)
        FUZZ_CHECK(isfinite(mean[j]) && isfinite(std[j]) && std[j] > 0);
    FUZZ_CHECK(nlp_series_stats(s->x, n, k, 0, 0, mean, std) == NLP_EINVAL);
    FUZZ_CHECK(nlp_series_stats(s->x, n, k, 0, n + 1, mean, std) == NLP_EINVAL);

    /* A window of the last W rows into a block of exactly its size. */
    int W = n < 5 ? (int)n : 5;
    FUZZ_CHECK(nlp_series_stats(s->x, n, k, 0, n, mean, std) == NLP_OK);
    float *win = malloc((size_t)W * (size_t)k * sizeof *win);
    FUZZ_CHECK(win != NULL);
    nlp_series_window(win, (size_t)k, s->x, k, n - 1, W, mean, std);
    for (int t = 0; t < W; t++)
        for (int j = 0; j < k; j++) {
            double want = (s->x[(n - W + t) * k + j] - mean[j]) / std[j];
            float got = win[t * k + j];
            FUZZ_CHECK(!isfinite(want) || fabs(got - want) <= 1e-5 * fabs(want) + 1e-30
                       || fabs(want) > FLT_MAX);
        }
    free(win);

    if (n < 2)
        return;
    double *d = malloc((size_t)(n - 1) * (size_t)k * sizeof *d);
    double *y = malloc((size_t)n * (size_t)k * sizeof *y);
    FUZZ_CHECK(d && y);
    nlp_series_difference(d, s->x, n, k);
    nlp_series_integrate(y, s->x, d, n - 1, k);
    for (int j = 0; j < k; j++) {
        double big = 0;
        for (long i = 0; i < n; i++)
            big = fmax(big, fabs(s->x[i * k + j]));
        /* Each difference and each sum rounds once, at most 2*big. */
        double tol = 8.0 * (double)n * DBL_EPSILON * big;
        for (long i = 0; i < n; i++)
            FUZZ_CHECK(fabs(y[i * k + j] - s->x[i * k + j]) <= tol);
    }
    free(d);
    free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = { data, size };
    uint8_t o0 = fuzz_byte(&in), o1 = fuzz_byte(&in);
    nlp_series_read_config cfg;
    nlp_series_read_config_default(&cfg);
    cfg.format = (nlp_series_format)(o0 & 3);
    static const int headers[4] = { -1, 0, 1, -1 };
    cfg.header = headers[(o0 >> 2) & 3];
    cfg.fill = (nlp_series_fill)(((o0 >> 4) & 3) % 3);
    cfg.time = (o0 & 64) ? "date" : NULL;
    cfg.time_number = (o0 & 128) ? 1 : 0;
    cfg.ncolumns = 1 + (o1 & 7);
    char numtext[MAX_COLS][8];
    const char *cols[MAX_COLS];
    int numbers[MAX_COLS];
    for (int j = 0; j < cfg.ncolumns; j++) {
        uint8_t b = fuzz_byte(&in);
        numbers[j] = (b >> 3) & 3;
        if (b == 0) {
            cols[j] = NULL;
        } else if (b & 0x80) {
            snprintf(numtext[j], sizeof numtext[j], "%d", b & 0x7f);
            cols[j] = numtext[j];
        } else {
            cols[j] = names[b & 7];
        }
    }
    cfg.columns = cols;
    cfg.numbers = (o1 & 8) ? numbers : NULL;

    uint8_t *buf = (uint8_t *)fuzz_dup(in.p, in.n);
    int rc;
    nlp_series *s = read_table(buf, in.n, &cfg, &rc);
    if (s) {
        check_table(s, &cfg);
        /* The detected format and header, forced, read the same table. */
        nlp_series_read_config c2 = cfg;
        c2.format = s->format;
        c2.header = s->header;
        int rc2;
        nlp_series *t = read_table(buf, in.n, &c2, &rc2);
        FUZZ_CHECK(t != NULL && same_table(s, t) && t->filled == s->filled);
        nlp_series_free(t);
        /* A table that needed no fill reads the same with either fill. */
        if (cfg.fill == NLP_SERIES_FILL_NONE)
            for (int fill = NLP_SERIES_FILL_PREVIOUS; fill <= NLP_SERIES_FILL_LINEAR; fill++) {
                c2 = cfg;
                c2.fill = (nlp_series_fill)fill;
                t = read_table(buf, in.n, &c2, &rc2);
                FUZZ_CHECK(t != NULL && same_table(s, t) && t->filled == 0);
                nlp_series_free(t);
            }
        transforms(s);
        nlp_series_free(s);
    }
    /* No columns is a bad configuration. */
    nlp_series_read_config bad = cfg;
    bad.ncolumns = 0;
    FILE *f = fuzz_fmemopen(buf, in.n);
    nlp_error e;
    nlp_series *none = (nlp_series *)1;
    FUZZ_CHECK(nlp_series_read(&none, f, PATH, &bad, &e) == NLP_EINVAL && none == NULL);
    fclose(f);
    free(buf);
    return 0;
}
