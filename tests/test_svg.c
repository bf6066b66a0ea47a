/*
** Unit tests for svg.  The focus of this file is that every picture is a
** well-formed XML document (checked by the small parser below: balanced
** tags, quoted attributes, known entities, one <svg> root) with the
** points where they belong: breaks at NaN, a lone point as a dot, round
** tick labels, huge values, escaped text, heatmap colours, and atomic
** saves that leave an old file alone on failure.
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
#include <dirent.h>
#include <unistd.h>

#include "nlp.h"
#include "nlp/svg.h"

/* ==== A tiny XML well-formedness checker ================================= */

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == ':' || c == '.';
}

/* At s[0] == '&': a known entity?  Returns its length or 0. */
static size_t entity(const char *s)
{
    static const char *const known[] = { "&amp;", "&lt;", "&gt;", "&quot;", "&apos;" };
    for (size_t i = 0; i < 5; i++)
        if (strncmp(s, known[i], strlen(known[i])) == 0)
            return strlen(known[i]);
    return 0;
}

/* NULL when doc is well-formed with a single <svg> root, else why not. */
static const char *xml_check(const char *doc)
{
    static char why[160];
    char stack[64][32];
    int depth = 0, roots = 0;
    const char *p = doc;
    if (strncmp(p, "<?xml ", 6) == 0) {
        p = strstr(p, "?>");
        if (!p)
            return "unterminated prolog";
        p += 2;
    }
    while (*p) {
        if (*p != '<') {
            if (*p == '&') {
                size_t k = entity(p);
                if (!k)
                    return "bare '&' in text";
                p += k;
                continue;
            }
            if (*p == '>')
                return "bare '>' in text";
            if (depth == 0 && !(*p == '\n' || *p == ' '))
                return "text outside the root";
            p++;
            continue;
        }
        if (strncmp(p, "<!--", 4) == 0) {
            p = strstr(p, "-->");
            if (!p)
                return "unterminated comment";
            p += 3;
            continue;
        }
        if (p[1] == '/') {
            const char *q = p + 2;
            size_t n = 0;
            while (name_char(q[n]))
                n++;
            if (depth == 0 || n != strlen(stack[depth - 1]) || strncmp(q, stack[depth - 1], n))
                return "closing tag does not match";
            if (q[n] != '>')
                return "bad closing tag";
            depth--;
            p = q + n + 1;
            continue;
        }
        const char *q = p + 1;
        size_t n = 0;
        while (name_char(q[n]))
            n++;
        if (n == 0 || n >= 32)
            return "bad tag name";
        char name[32];
        memcpy(name, q, n);
        name[n] = '\0';
        q += n;
        for (;;) {
            while (*q == ' ' || *q == '\n')
                q++;
            if (*q == '/' || *q == '>')
                break;
            size_t an = 0;
            while (name_char(q[an]))
                an++;
            if (an == 0) {
                snprintf(why, sizeof why, "bad attribute in <%s> at '%.20s'", name, q);
                return why;
            }
            q += an;
            if (*q != '=') {
                snprintf(why, sizeof why, "attribute without a value in <%s>", name);
                return why;
            }
            q++;
            char quote = *q;
            if (quote != '"' && quote != '\'') {
                snprintf(why, sizeof why, "unquoted attribute in <%s>", name);
                return why;
            }
            q++;
            while (*q && *q != quote) {
                if (*q == '<')
                    return "'<' in an attribute";
                if (*q == '&') {
                    size_t k = entity(q);
                    if (!k)
                        return "bare '&' in an attribute";
                    q += k;
                } else {
                    q++;
                }
            }
            if (!*q)
                return "unterminated attribute";
            q++;
            if (*q != ' ' && *q != '\n' && *q != '/' && *q != '>')
                return "no space between attributes";
        }
        if (depth == 0) {
            roots++;
            if (strcmp(name, "svg") != 0)
                return "the root is not <svg>";
        }
        if (*q == '/') {
            if (q[1] != '>')
                return "bad empty-element tag";
            p = q + 2;
        } else {
            if (depth == 64)
                return "too deep";
            strcpy(stack[depth++], name);
            p = q + 1;
        }
    }
    if (depth != 0)
        return "unclosed element";
    if (roots != 1)
        return "not exactly one root element";
    return NULL;
}

/* ==== Helpers ============================================================ */

static char *chart_text(const nlp_svg_chart *c, int *rc)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    assert_non_null(f);
    nlp_error e;
    *rc = nlp_svg_chart_write(f, c, &e);
    fclose(f);
    return buf;
}

static char *heatmap_text(const nlp_svg_heatmap *h, int *rc)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    assert_non_null(f);
    nlp_error e;
    *rc = nlp_svg_heatmap_write(f, h, &e);
    fclose(f);
    return buf;
}

static void assert_well_formed(const char *doc)
{
    const char *why = xml_check(doc);
    if (why)
        fail_msg("not well-formed: %s\n%s", why, doc);
}

static int count(const char *doc, const char *needle)
{
    int k = 0;
    for (const char *p = doc; (p = strstr(p, needle)); p += strlen(needle))
        k++;
    return k;
}

/* The value of attribute attr in the element starting at tag. */
static double attr(const char *tag, const char *name)
{
    char key[32];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *p = strstr(tag, key);
    const char *end = strchr(tag, '>');
    assert_non_null(p);
    assert_true(p < end);
    return strtod(p + strlen(key), NULL);
}

/* The plot frame: the first rect drawn with fill none and the dark stroke. */
static void plot_frame(const char *doc, double *x0, double *y0, double *x1, double *y1)
{
    const char *r = strstr(doc, "fill=\"none\" stroke=\"#444444\"");
    assert_non_null(r);
    while (r > doc && strncmp(r, "<rect", 5) != 0)
        r--;
    *x0 = attr(r, "x");
    *y0 = attr(r, "y");
    *x1 = *x0 + attr(r, "width");
    *y1 = *y0 + attr(r, "height");
}

/* Every polyline vertex and circle centre, checked to lie in the frame;
** returns how many there were and their x in order in xs (up to max). */
static int points_in_frame(const char *doc, double *xs, int max)
{
    double x0, y0, x1, y1;
    plot_frame(doc, &x0, &y0, &x1, &y1);
    int k = 0;
    for (const char *p = doc; (p = strstr(p, "points=\"")); ) {
        p += 8;
        while (*p != '"') {
            char *end;
            double x = strtod(p, &end);
            assert_true(*end == ',');
            double y = strtod(end + 1, &end);
            if (!(x >= x0 - 1e-6 && x <= x1 + 1e-6 && y >= y0 - 1e-6 && y <= y1 + 1e-6))
                fail_msg("point (%g, %g) outside the frame [%g,%g]x[%g,%g]", x, y, x0, x1, y0,
                         y1);
            if (k < max)
                xs[k] = x;
            k++;
            p = end;
            while (*p == ' ')
                p++;
        }
    }
    for (const char *p = doc; (p = strstr(p, "<circle")); p++) {
        double x = attr(p, "cx"), y = attr(p, "cy");
        assert_true(x >= x0 - 1e-6 && x <= x1 + 1e-6 && y >= y0 - 1e-6 && y <= y1 + 1e-6);
    }
    return k;
}

/* ==== Tests ============================================================== */

static void test_checker(void **state)
{
    (void)state;
    /* The checker itself must catch what it claims to. */
    assert_null(xml_check("<svg a=\"1\"><g/><text>x &amp; y</text></svg>\n"));
    assert_non_null(xml_check("<svg a=1></svg>"));
    assert_non_null(xml_check("<svg><g></svg>"));
    assert_non_null(xml_check("<svg><text>a & b</text></svg>"));
    assert_non_null(xml_check("<svg><text>a > b</text></svg>"));
    assert_non_null(xml_check("<svg></svg><svg></svg>"));
    assert_non_null(xml_check("<svg a=\"<\"></svg>"));
    assert_non_null(xml_check("<svg a=\"1\"b=\"2\"></svg>"));
}

static void test_chart(void **state)
{
    (void)state;
    double x[6] = { 0, 200, 400, 600, 800, 1000 };
    double y[6] = { 0.87, 0.5, NAN, 0.3, 0.2, 0.13 };
    double vx[2] = { 500, 1000 }, vy[2] = { 2.5, 2.1 };
    nlp_svg_series s[2] = {
        { .name = "training loss", .x = x, .y = y, .n = 6 },
        { .name = "valid bpc", .x = vx, .y = vy, .n = 2, .right_axis = 1 },
    };
    nlp_svg_chart c = { .title = "charlm", .xlabel = "step", .ylabel = "loss",
                        .y2label = "valid bpc", .series = s, .nseries = 2 };
    int rc;
    char *doc = chart_text(&c, &rc);
    assert_int_equal(rc, NLP_OK);
    assert_well_formed(doc);
    assert_non_null(strstr(doc, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    /* Self-contained: no scripts, links or external references. */
    assert_null(strstr(doc, "<script"));
    assert_null(strstr(doc, "href"));
    assert_null(strstr(doc, "url("));
    assert_null(strstr(doc, "nan"));
    assert_null(strstr(doc, "inf"));
    /* The NaN breaks the first line in two; the second series is a line. */
    assert_int_equal(count(doc, "<polyline"), 3);
    double xs[16];
    int k = points_in_frame(doc, xs, 16);
    assert_int_equal(k, 5 + 2);
    for (int i = 1; i < 5; i++)
        if (i != 2)
            assert_true(xs[i] > xs[i - 1]);
    /* Round ticks: x in steps of 200, left y in steps of 0.1. */
    assert_non_null(strstr(doc, ">200</text>"));
    assert_non_null(strstr(doc, ">1000</text>"));
    assert_non_null(strstr(doc, ">0.4</text>"));
    assert_non_null(strstr(doc, ">0.6</text>"));
    assert_null(strstr(doc, ">0.30000"));
    /* Legend, labels, second axis. */
    assert_non_null(strstr(doc, ">training loss</text>"));
    assert_non_null(strstr(doc, ">valid bpc</text>"));
    assert_non_null(strstr(doc, "rotate(90"));
    assert_non_null(strstr(doc, ">step</text>"));
    free(doc);
}

static void test_single_point_and_empty(void **state)
{
    (void)state;
    double x = 3, y = -2;
    nlp_svg_series s = { .name = "one", .x = &x, .y = &y, .n = 1 };
    nlp_svg_chart c = { .series = &s, .nseries = 1 };
    int rc;
    char *doc = chart_text(&c, &rc);
    assert_int_equal(rc, NLP_OK);
    assert_well_formed(doc);
    assert_int_equal(count(doc, "<polyline"), 0);
    assert_int_equal(count(doc, "<circle"), 1);
    points_in_frame(doc, NULL, 0);
    assert_null(strstr(doc, "nan"));
    free(doc);

    /* Only NaN points, and a series of no points: empty axes. */
    double nx[2] = { NAN, 1 }, ny[2] = { 1, NAN };
    nlp_svg_series s2[2] = { { .x = nx, .y = ny, .n = 2 }, { .n = 0 } };
    c.series = s2;
    c.nseries = 2;
    doc = chart_text(&c, &rc);
    assert_int_equal(rc, NLP_OK);
    assert_well_formed(doc);
    assert_int_equal(count(doc, "<polyline"), 0);
    assert_int_equal(count(doc, "<circle"), 0);
    free(doc);

    /* A long series: no dots, one line with every point. */
    enum { N = 1000 };
    double *lx = malloc(N * sizeof *lx), *ly = malloc(N * sizeof *ly);
    for (int i = 0; i < N; i++) {
        lx[i] = i;
        ly[i] = exp(-i / 300.0);
    }
    nlp_svg_series s3 = { .x = lx, .y = ly, .n = N };
    c.series = &s3;
    c.nseries = 1;
    doc = chart_text(&c, &rc);
    assert_int_equal(rc, NLP_OK);
    assert_well_formed(doc);
    assert_int_equal(count(doc, "<circle"), 0);
    assert_int_equal(points_in_frame(doc, NULL, 0), N);
    free(doc);
    free(lx);
    free(ly);
}

static void test_extreme_values(void **state)
{
    (void)state;
    double x[3] = { -1e308, 0, 1e308 }, y[3] = { 1e300, -1e300, 5e-320 };
    nlp_svg_series s = { .x = x, .y = y, .n = 3 };
    nlp_svg_chart c = { .series = &s, .nseries = 1, .width = 300, .height = 200 };
    int rc;
    char *doc = chart_text(&c, &rc);
    assert_int_equal(rc, NLP_OK);
    assert_well_formed(doc);
    assert_null(strstr(doc, "nan"));
    assert_null(strstr(doc, "inf"));
    assert_int_equal(points_in_frame(doc, NULL, 0), 3);
    free(doc);
    /* A constant series: a range is made around it. */
    double cy[3] = { 7, 7, 7 };
    s.y = cy;
    x[0] = 1;
    x[2] = 2;
    doc = chart_text(&c, &rc);
    assert_int_equal(rc, NLP_OK);
    assert_well_formed(doc);
    assert_int_equal(points_in_frame(doc, NULL, 0), 3);
    free(doc);
}

static void test_escaping(void **state)
{
    (void)state;
    double x[2] = { 0, 1 }, y[2] = { 0, 1 };
    nlp_svg_series s = { .name = "a<b & c>d", .x = x, .y = y, .n = 2 };
    nlp_svg_chart c = { .title = "\"q\" 'x' <&> \x01 bad\xff perch\xc3\xa9",
                        .xlabel = "</svg>", .series = &s, .nseries = 1 };
    int rc;
    char *doc = chart_text(&c, &rc);
    assert_int_equal(rc, NLP_OK);
    assert_well_formed(doc);
    assert_non_null(strstr(doc, "a&lt;b &amp; c&gt;d"));
    assert_non_null(strstr(doc, "&quot;q&quot; &apos;x&apos; &lt;&amp;&gt; \xEF\xBF\xBD bad"
                                "\xEF\xBF\xBD perch\xc3\xa9"));
    assert_non_null(strstr(doc, "&lt;/svg&gt;"));
    assert_null(strstr(doc, "\x01"));
    assert_null(strstr(doc, "\xff"));
    free(doc);

    /* A colour is never written unchecked. */
    s.color = "red\" onload=\"x";
    doc = chart_text(&c, &rc);
    assert_int_equal(rc, NLP_EINVAL);
    free(doc);
    s.color = "#00ff00";
    doc = chart_text(&c, &rc);
    assert_int_equal(rc, NLP_OK);
    assert_non_null(strstr(doc, "stroke=\"#00ff00\""));
    free(doc);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    int rc;
    nlp_svg_chart c = { .nseries = 0 };
    free(chart_text(&c, &rc));
    assert_int_equal(rc, NLP_EINVAL);
    nlp_svg_series s = { .n = 3 }; /* points but no data */
    c.series = &s;
    c.nseries = 1;
    free(chart_text(&c, &rc));
    assert_int_equal(rc, NLP_EINVAL);
    double x = 1;
    s.x = s.y = &x;
    s.n = 1;
    c.width = 50;
    free(chart_text(&c, &rc));
    assert_int_equal(rc, NLP_EINVAL);
    c.width = NLP_SVG_MAX_SIZE + 1;
    free(chart_text(&c, &rc));
    assert_int_equal(rc, NLP_EINVAL);

    nlp_svg_heatmap h = { .rows = 0, .cols = 2 };
    float v[4] = { 0, 1, 2, 3 };
    free(heatmap_text(&h, &rc));
    assert_int_equal(rc, NLP_EINVAL);
    h.values = v;
    h.rows = 2;
    h.vmin = 2;
    h.vmax = 1;
    free(heatmap_text(&h, &rc));
    assert_int_equal(rc, NLP_EINVAL);
    h.vmin = 0;
    h.vmax = 0;
    h.rows = 100000;
    free(heatmap_text(&h, &rc));
    assert_int_equal(rc, NLP_EINVAL);
}

static void test_heatmap(void **state)
{
    (void)state;
    float v[12] = { 0.1f, 0.7f, 0.1f, 0.1f,
                    0.0f, 0.2f, 0.8f, NAN,
                    0.25f, 0.25f, 0.25f, 1.0f };
    const char *rows[3] = { "il", "gatto", "</s>" };
    const char *cols[4] = { "the", "cat", "&", NULL };
    nlp_svg_heatmap h = { .title = "attention", .values = v, .rows = 3, .cols = 4,
                          .row_labels = rows, .col_labels = cols };
    int rc;
    char *doc = heatmap_text(&h, &rc);
    assert_int_equal(rc, NLP_OK);
    assert_well_formed(doc);
    assert_non_null(strstr(doc, "&lt;/s&gt;"));
    assert_non_null(strstr(doc, ">&amp;</text>"));
    assert_non_null(strstr(doc, ">3</text>")); /* the NULL label: its index */
    /* The range is the values': min white, max dark blue, NaN grey. */
    assert_non_null(strstr(doc, "fill=\"#ffffff\"><title>gatto / the: 0</title>"));
    assert_non_null(strstr(doc, "fill=\"#08306b\"><title>&lt;/s&gt; / 3: 1</title>"));
    assert_int_equal(count(doc, "fill=\"#bbbbbb\""), 1);
    assert_int_equal(count(doc, "<title>"), 12);
    free(doc);

    /* A fixed range clamps; a constant matrix is drawn. */
    h.vmin = 0.5;
    h.vmax = 0.6;
    h.row_labels = h.col_labels = NULL;
    doc = heatmap_text(&h, &rc);
    assert_int_equal(rc, NLP_OK);
    assert_well_formed(doc);
    assert_non_null(strstr(doc, "fill=\"#ffffff\"><title>0 / 0: 0.1</title>"));
    free(doc);
    float k[1] = { 3 };
    nlp_svg_heatmap h1 = { .values = k, .rows = 1, .cols = 1 };
    doc = heatmap_text(&h1, &rc);
    assert_int_equal(rc, NLP_OK);
    assert_well_formed(doc);
    free(doc);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_save(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_svg.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], bad[256];
    snprintf(path, sizeof path, "%s/plot.svg", dir);
    snprintf(bad, sizeof bad, "%s/no/such/dir.svg", dir);
    double x[2] = { 0, 1 }, y[2] = { 1, 0 };
    nlp_svg_series s = { .x = x, .y = y, .n = 2 };
    nlp_svg_chart c = { .series = &s, .nseries = 1 };
    nlp_error e;
    assert_int_equal(nlp_svg_chart_save(path, &c, &e), NLP_OK);
    char *doc = slurp(path);
    assert_non_null(doc);
    assert_well_formed(doc);
    /* A failed save (bad chart) leaves the old file and no temporary. */
    c.nseries = 0;
    assert_int_equal(nlp_svg_chart_save(path, &c, &e), NLP_EINVAL);
    char *again = slurp(path);
    assert_string_equal(doc, again);
    free(again);
    assert_int_equal(dir_entries(dir), 1);
    c.nseries = 1;
    assert_int_equal(nlp_svg_chart_save(bad, &c, &e), NLP_EIO);
    assert_non_null(strstr(e.file, "dir.svg"));
    /* Out of memory for the temporary name. */
    nlp_alloc_fail_at(1, 0);
    assert_int_equal(nlp_svg_chart_save(path, &c, &e), NLP_ENOMEM);
    nlp_alloc_fail_at(0, 0);
    assert_int_equal(dir_entries(dir), 1);
    /* A heatmap saved the same way. */
    float v[2] = { 0, 1 };
    nlp_svg_heatmap h = { .values = v, .rows = 1, .cols = 2 };
    assert_int_equal(nlp_svg_heatmap_save(path, &h, &e), NLP_OK);
    free(doc);
    doc = slurp(path);
    assert_well_formed(doc);
    assert_non_null(strstr(doc, "<rect"));
    free(doc);
    /* A stream that cannot be written. */
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        assert_int_equal(nlp_svg_chart_write(full, &c, &e), NLP_EIO);
        fclose(full);
    }
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker),
        cmocka_unit_test(test_chart),
        cmocka_unit_test(test_single_point_and_empty),
        cmocka_unit_test(test_extreme_values),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_heatmap),
        cmocka_unit_test(test_save),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
