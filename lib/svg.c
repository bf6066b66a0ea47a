/*
** svg: line charts and heatmaps as self-contained SVG (see nlp/svg.h).
**
** Everything is streamed with fprintf; the only allocation is the
** temporary file name of an atomic save.  Coordinates are computed from
** halves of the values ((x/2 - lo/2) / (hi/2 - lo/2)) so that any two
** finite doubles give a finite span.
*/
#include "nlp/svg.h"
#include "nlp/alloc.h"
#include "nlp/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define DEF_WIDTH 720
#define DEF_HEIGHT 420
#define DEF_CELL 24
#define MIN_SIZE 200       /* smallest picture that leaves room for the plot */
#define CHAR_W 7.0         /* rough width of a 12px sans-serif character */
#define TARGET_TICKS 5     /* about this many intervals per axis */
#define MAX_TICKS 40       /* a bound for the tick loops, never reached */
#define DOT_MAX 60         /* series with at most this many points get dots */
#define TOOLTIP_MAX 10000  /* heatmap cells with a <title> up to this many */
#define LABEL_MAX 300.0    /* pixels given to heatmap labels at most */
#define TMP_ATTEMPTS 100

static const char *const palette[] = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"
};
#define NPALETTE (sizeof palette / sizeof palette[0])

/* ==== Text ============================================================== */

void nlp_svg_escape(FILE *f, const char *s)
{
    if (!s)
        return;
    size_t n = strlen(s), i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            switch (c) {
            case '&': fputs("&amp;", f); break;
            case '<': fputs("&lt;", f); break;
            case '>': fputs("&gt;", f); break;
            case '"': fputs("&quot;", f); break;
            case '\'': fputs("&apos;", f); break;
            default:
                if (c < 0x20 && c != '\t' && c != '\n')
                    fputs("\xEF\xBF\xBD", f); /* XML 1.0 forbids them */
                else
                    fputc(c, f);
            }
            i++;
            continue;
        }
        int32_t cp;
        int k = nlp_utf8_decode(s + i, n - i, &cp);
        if (k <= 0 || cp == 0xFFFE || cp == 0xFFFF) {
            fputs("\xEF\xBF\xBD", f);
            i += (size_t)(k < 0 ? -k : (k ? k : 1));
        } else {
            fwrite(s + i, 1, (size_t)k, f);
            i += (size_t)k;
        }
    }
}

/* Code points in s (for a rough text width). */
static double text_width(const char *s)
{
    return s ? CHAR_W * (double)nlp_utf8_length(s, strlen(s)) : 0.0;
}

static int valid_color(const char *c)
{
    size_t n = strlen(c);
    if (c[0] != '#' || (n != 4 && n != 7))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f') ||
              (c[i] >= 'A' && c[i] <= 'F')))
            return 0;
    return 1;
}

/* A number for a label: "%.*f" with the decimals the tick step needs, "%g"
** for very large or small magnitudes; never "-0". */
static void fmt_number(char *buf, size_t n, double v, double step)
{
    if (v == 0.0)
        v = 0.0; /* -0 */
    double a = fabs(v);
    if ((a >= 1e6 || (a > 0 && a < 1e-4)) || !(step > 1e-6)) {
        snprintf(buf, n, "%.4g", v);
        return;
    }
    int dec = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6)
        dec = 6;
    snprintf(buf, n, "%.*f", dec, v);
    if (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1))
        memmove(buf, buf + 1, strlen(buf)); /* "-0.00" from a tiny negative */
}

/* ==== Axes ============================================================== */

typedef struct axis {
    double lo, hi;    /* the drawn range */
    double step;      /* between ticks */
    int nticks;       /* ticks at lo + i*step, i < nticks */
    int used;         /* some series is on this axis */
} axis;

/* lo/2 and hi/2 keep the span finite for any finite doubles. */
static double axis_frac(const axis *a, double v)
{
    double span = a->hi * 0.5 - a->lo * 0.5;
    return span > 0 ? (v * 0.5 - a->lo * 0.5) / span : 0.5;
}

/* 1, 2, 5 or 10 times a power of ten, the nearest to raw (Heckbert's
** "nice numbers", Graphics Gems, 1990): between 4 and 10 intervals. */
static double nice_step(double raw)
{
    double p = pow(10.0, floor(log10(raw)));
    double f = raw / p;
    double m = f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0;
    return m * p;
}

/* Range over the finite values seen (min > max when none), then round
** numbers around it. */
static void axis_finish(axis *a, double min, double max)
{
    if (!(min <= max)) {
        min = 0.0;
        max = 1.0;
    }
    if (min == max) {
        double d = min == 0.0 ? 1.0 : fabs(min) * 0.1;
        min -= d;
        max += d;
        if (!isfinite(min) || !isfinite(max)) { /* within 10% of DBL_MAX */
            min = -DBL_MAX;
            max = DBL_MAX;
        }
    }
    double span = max * 0.5 - min * 0.5; /* half the span */
    double step = nice_step(span * 2.0 / TARGET_TICKS);
    double lo = floor(min / step) * step, hi = ceil(max / step) * step;
    if (isfinite(step) && step > 0 && isfinite(lo) && isfinite(hi) && lo <= min && hi >= max &&
        (hi - lo) / step < MAX_TICKS) {
        a->lo = lo;
        a->hi = hi;
        a->step = step;
        a->nticks = (int)floor((hi - lo) / step + 0.5) + 1;
    } else {
        /* Near the limits of double: the exact range, ends as the ticks. */
        a->lo = min;
        a->hi = max;
        a->step = 0;
        a->nticks = 2;
    }
}

static double tick_value(const axis *a, int i)
{
    if (a->step == 0)
        return i == 0 ? a->lo : a->hi;
    return a->lo + a->step * i;
}

static const char *series_color(const nlp_svg_series *s, int k)
{
    return s->color ? s->color : palette[(size_t)k % NPALETTE];
}

static int point_ok(const nlp_svg_series *s, size_t i)
{
    return isfinite(s->x[i]) && isfinite(s->y[i]);
}

/* ==== Line chart ======================================================== */

typedef struct frame {
    double left, top, width, height; /* the plot area */
} frame;

static void text_at(FILE *f, double x, double y, const char *anchor, const char *extra,
                    const char *s)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor,
            extra ? extra : "");
    nlp_svg_escape(f, s);
    fputs("</text>\n", f);
}

static void write_header(FILE *f, int w, int h)
{
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
               "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n"
               "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
            w, h, w, h, w, h);
}

static void draw_series(FILE *f, const nlp_svg_series *s, const axis *xa, const axis *ya,
                        const frame *fr, const char *color)
{
    size_t finite = 0;
    for (size_t i = 0; i < s->n; i++)
        finite += point_ok(s, i);
    size_t i = 0;
    while (i < s->n) {
        while (i < s->n && !point_ok(s, i))
            i++;
        size_t j = i;
        while (j < s->n && point_ok(s, j))
            j++;
        if (j - i >= 2) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" "
                       "stroke-linejoin=\"round\" points=\"", color);
            for (size_t k = i; k < j; k++)
                fprintf(f, "%s%.2f,%.2f", k > i ? " " : "",
                        fr->left + axis_frac(xa, s->x[k]) * fr->width,
                        fr->top + (1.0 - axis_frac(ya, s->y[k])) * fr->height);
            fputs("\"/>\n", f);
        }
        /* Dots for a short series and for points with no neighbour. */
        for (size_t k = i; k < j; k++)
            if (finite <= DOT_MAX || j - i == 1)
                fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\" fill=\"%s\"/>\n",
                        fr->left + axis_frac(xa, s->x[k]) * fr->width,
                        fr->top + (1.0 - axis_frac(ya, s->y[k])) * fr->height, color);
        i = j;
    }
}

static int check_size(int *w, int *h, int defw, int defh, nlp_error *e)
{
    if (*w == 0)
        *w = defw;
    if (*h == 0)
        *h = defh;
    if (*w < MIN_SIZE || *h < MIN_SIZE || *w > NLP_SVG_MAX_SIZE || *h > NLP_SVG_MAX_SIZE)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "svg: size %dx%d out of range (%d to %d)",
                             *w, *h, MIN_SIZE, NLP_SVG_MAX_SIZE);
    return NLP_OK;
}

static int finish_write(FILE *f, nlp_error *e)
{
    if (fflush(f) != 0 || ferror(f))
        return nlp_error_set(e, NLP_EIO, NULL, 0, "cannot write the picture: %s",
                             strerror(errno ? errno : EIO));
    return NLP_OK;
}

int nlp_svg_chart_write(FILE *f, const nlp_svg_chart *c, nlp_error *e)
{
    if (!f || !c || c->nseries < 1 || !c->series)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "svg: a chart needs at least one series");
    for (int k = 0; k < c->nseries; k++) {
        const nlp_svg_series *s = &c->series[k];
        if (s->n > 0 && (!s->x || !s->y))
            return nlp_error_set(e, NLP_EINVAL, NULL, 0, "svg: series %d has no data", k);
        if (s->color && !valid_color(s->color))
            return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                                 "svg: series %d: colour must be #rgb or #rrggbb", k);
    }
    int w = c->width, h = c->height;
    int rc = check_size(&w, &h, DEF_WIDTH, DEF_HEIGHT, e);
    if (rc != NLP_OK)
        return rc;

    /* Ranges. */
    axis xa, ya[2];
    memset(&xa, 0, sizeof xa);
    memset(ya, 0, sizeof ya);
    double xmin = INFINITY, xmax = -INFINITY, ymin[2] = { INFINITY, INFINITY },
           ymax[2] = { -INFINITY, -INFINITY };
    for (int k = 0; k < c->nseries; k++) {
        const nlp_svg_series *s = &c->series[k];
        int a = s->right_axis ? 1 : 0;
        ya[a].used = 1;
        for (size_t i = 0; i < s->n; i++) {
            if (!point_ok(s, i))
                continue;
            xmin = fmin(xmin, s->x[i]);
            xmax = fmax(xmax, s->x[i]);
            ymin[a] = fmin(ymin[a], s->y[i]);
            ymax[a] = fmax(ymax[a], s->y[i]);
        }
    }
    axis_finish(&xa, xmin, xmax);
    axis_finish(&ya[0], ymin[0], ymax[0]);
    axis_finish(&ya[1], ymin[1], ymax[1]);
    const int right = ya[1].used;
    frame fr;
    fr.left = 70;
    fr.top = c->title ? 40 : 20;
    fr.width = w - fr.left - (right ? 70 : 25);
    fr.height = h - fr.top - (c->xlabel ? 50 : 35);

    write_header(f, w, h);
    if (c->title)
        text_at(f, w / 2.0, 24, "middle", " font-size=\"15\"", c->title);

    /* Grid and ticks. */
    char num[64];
    fputs("<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n", f);
    for (int i = 0; i < xa.nticks; i++) {
        double px = fr.left + axis_frac(&xa, tick_value(&xa, i)) * fr.width;
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", px, fr.top, px,
                fr.top + fr.height);
    }
    const axis *grid_y = ya[0].used ? &ya[0] : &ya[1];
    for (int i = 0; i < grid_y->nticks; i++) {
        double py = fr.top + (1.0 - axis_frac(grid_y, tick_value(grid_y, i))) * fr.height;
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", fr.left, py,
                fr.left + fr.width, py);
    }
    fputs("</g>\n", f);
    fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
               "stroke=\"#444444\" stroke-width=\"1\"/>\n", fr.left, fr.top, fr.width, fr.height);
    fputs("<g stroke=\"#444444\" stroke-width=\"1\">\n", f);
    for (int i = 0; i < xa.nticks; i++) {
        double px = fr.left + axis_frac(&xa, tick_value(&xa, i)) * fr.width;
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", px,
                fr.top + fr.height, px, fr.top + fr.height + 4);
    }
    for (int a = 0; a < 2; a++) {
        if (!ya[a].used && !(a == 0 && !right))
            continue;
        double x0 = a == 0 ? fr.left - 4 : fr.left + fr.width;
        for (int i = 0; i < ya[a].nticks; i++) {
            double py = fr.top + (1.0 - axis_frac(&ya[a], tick_value(&ya[a], i))) * fr.height;
            fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x0, py,
                    x0 + 4, py);
        }
    }
    fputs("</g>\n", f);
    fputs("<g fill=\"#333333\">\n", f);
    for (int i = 0; i < xa.nticks; i++) {
        double v = tick_value(&xa, i);
        fmt_number(num, sizeof num, v, xa.step);
        text_at(f, fr.left + axis_frac(&xa, v) * fr.width, fr.top + fr.height + 16, "middle",
                NULL, num);
    }
    for (int a = 0; a < 2; a++) {
        if (!ya[a].used && !(a == 0 && !right))
            continue; /* the left axis is drawn even when empty */
        for (int i = 0; i < ya[a].nticks; i++) {
            double v = tick_value(&ya[a], i);
            fmt_number(num, sizeof num, v, ya[a].step);
            double py = fr.top + (1.0 - axis_frac(&ya[a], v)) * fr.height + 4;
            if (a == 0)
                text_at(f, fr.left - 7, py, "end", NULL, num);
            else
                text_at(f, fr.left + fr.width + 7, py, "start", NULL, num);
        }
    }
    fputs("</g>\n", f);
    if (c->xlabel)
        text_at(f, fr.left + fr.width / 2, h - 12, "middle", NULL, c->xlabel);
    if (c->ylabel && (ya[0].used || !right)) {
        char rot[96];
        snprintf(rot, sizeof rot, " transform=\"rotate(-90 16 %.1f)\"", fr.top + fr.height / 2);
        text_at(f, 16, fr.top + fr.height / 2, "middle", rot, c->ylabel);
    }
    if (c->y2label && right) {
        char rot[96];
        double x = w - 12;
        snprintf(rot, sizeof rot, " transform=\"rotate(90 %.1f %.1f)\"", x, fr.top + fr.height / 2);
        text_at(f, x, fr.top + fr.height / 2, "middle", rot, c->y2label);
    }

    /* The lines. */
    for (int k = 0; k < c->nseries; k++) {
        const nlp_svg_series *s = &c->series[k];
        draw_series(f, s, &xa, &ya[s->right_axis ? 1 : 0], &fr, series_color(s, k));
    }

    /* Legend, top right inside the plot. */
    double lw = 0;
    int nnamed = 0;
    for (int k = 0; k < c->nseries; k++)
        if (c->series[k].name && c->series[k].name[0]) {
            lw = fmax(lw, text_width(c->series[k].name));
            nnamed++;
        }
    if (nnamed > 0) {
        lw = fmin(lw + 40, fr.width - 20);
        double lx = fr.left + fr.width - lw - 10, ly = fr.top + 10;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#ffffff\" "
                   "fill-opacity=\"0.85\" stroke=\"#cccccc\"/>\n", lx, ly, lw, 18.0 * nnamed + 6);
        int row = 0;
        for (int k = 0; k < c->nseries; k++) {
            const nlp_svg_series *s = &c->series[k];
            if (!s->name || !s->name[0])
                continue;
            double y = ly + 15 + 18.0 * row++;
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                       "stroke-width=\"2\"/>\n", lx + 6, y - 4, lx + 26, y - 4,
                    series_color(s, k));
            text_at(f, lx + 32, y, "start", NULL, s->name);
        }
    }
    fputs("</svg>\n", f);
    return finish_write(f, e);
}

/* ==== Heatmap =========================================================== */

/* White (0) to dark blue (1). */
static void heat_color(double t, char out[8])
{
    static const double lo[3] = { 255, 255, 255 }, hi[3] = { 8, 48, 107 };
    if (!(t >= 0))
        t = 0;
    if (t > 1)
        t = 1;
    int rgb[3];
    for (int i = 0; i < 3; i++)
        rgb[i] = (int)floor(lo[i] + (hi[i] - lo[i]) * t + 0.5);
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

static void label_of(char *buf, size_t n, const char *const *labels, int i, const char **out)
{
    if (labels && labels[i]) {
        *out = labels[i];
    } else {
        snprintf(buf, n, "%d", i);
        *out = buf;
    }
}

int nlp_svg_heatmap_write(FILE *f, const nlp_svg_heatmap *h, nlp_error *e)
{
    if (!f || !h || !h->values || h->rows < 1 || h->cols < 1)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "svg: a heatmap needs rows x cols values");
    int cell = h->cell ? h->cell : DEF_CELL;
    if (cell < 1 || cell > 200)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "svg: cell size %d out of range (1 to 200)",
                             cell);
    if ((long)h->rows * cell > NLP_SVG_MAX_SIZE || (long)h->cols * cell > NLP_SVG_MAX_SIZE)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "svg: %dx%d cells of %d pixels exceed %d pixels", h->rows, h->cols,
                             cell, NLP_SVG_MAX_SIZE);
    size_t count = (size_t)h->rows * (size_t)h->cols;
    double vmin = h->vmin, vmax = h->vmax;
    if (vmin == 0 && vmax == 0) {
        vmin = INFINITY;
        vmax = -INFINITY;
        for (size_t i = 0; i < count; i++)
            if (isfinite(h->values[i])) {
                vmin = fmin(vmin, h->values[i]);
                vmax = fmax(vmax, h->values[i]);
            }
        if (!(vmin <= vmax))
            vmin = vmax = 0;
    }
    if (!isfinite(vmin) || !isfinite(vmax) || vmin > vmax)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "svg: bad colour range [%g, %g]", vmin,
                             vmax);
    double span = vmax * 0.5 - vmin * 0.5;

    char buf[32];
    const char *s;
    double rw = 0, cw = 0;
    for (int r = 0; r < h->rows; r++) {
        label_of(buf, sizeof buf, h->row_labels, r, &s);
        rw = fmax(rw, text_width(s));
    }
    for (int c = 0; c < h->cols; c++) {
        label_of(buf, sizeof buf, h->col_labels, c, &s);
        cw = fmax(cw, text_width(s));
    }
    rw = fmin(rw, LABEL_MAX);
    cw = fmin(cw, LABEL_MAX);
    const double left = rw + 16, top = (h->title ? 36 : 10) + cw * 0.75 + 12;
    const double gw = (double)h->cols * cell, gh = (double)h->rows * cell;
    const double scale_w = 90; /* colour bar and its labels */
    int w = (int)ceil(left + gw + scale_w), ht = (int)ceil(top + gh + 20);
    if (w < MIN_SIZE)
        w = MIN_SIZE;
    if (ht < MIN_SIZE)
        ht = MIN_SIZE;

    write_header(f, w, ht);
    if (h->title)
        text_at(f, w / 2.0, 22, "middle", " font-size=\"15\"", h->title);
    /* Column labels at -45 degrees above the grid, row labels to its left. */
    for (int c = 0; c < h->cols; c++) {
        label_of(buf, sizeof buf, h->col_labels, c, &s);
        double x = left + (c + 0.5) * cell, y = top - 6;
        char rot[96];
        snprintf(rot, sizeof rot, " transform=\"rotate(-45 %.1f %.1f)\"", x, y);
        text_at(f, x, y, "start", rot, s);
    }
    for (int r = 0; r < h->rows; r++) {
        label_of(buf, sizeof buf, h->row_labels, r, &s);
        text_at(f, left - 6, top + (r + 0.5) * cell + 4, "end", NULL, s);
    }
    char color[8];
    const int tips = count <= TOOLTIP_MAX;
    fputs("<g stroke=\"none\">\n", f);
    for (int r = 0; r < h->rows; r++)
        for (int c = 0; c < h->cols; c++) {
            double v = h->values[(size_t)r * (size_t)h->cols + (size_t)c];
            if (isfinite(v))
                heat_color(span > 0 ? (v * 0.5 - vmin * 0.5) / span : 0.0, color);
            else
                strcpy(color, "#bbbbbb");
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"%s\"",
                    left + (double)c * cell, top + (double)r * cell, cell, cell, color);
            if (tips) {
                const char *rl, *cl;
                char rb[32], cb[32];
                label_of(rb, sizeof rb, h->row_labels, r, &rl);
                label_of(cb, sizeof cb, h->col_labels, c, &cl);
                fputs("><title>", f);
                nlp_svg_escape(f, rl);
                fputs(" / ", f);
                nlp_svg_escape(f, cl);
                fprintf(f, ": %.4g</title></rect>\n", v);
            } else {
                fputs("/>\n", f);
            }
        }
    fputs("</g>\n", f);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
               "stroke=\"#444444\"/>\n", left, top, gw, gh);
    /* Colour bar: ten steps from vmax (top) to vmin. */
    const double bx = left + gw + 14, bh = fmin(gh, 200.0);
    for (int i = 0; i < 10; i++) {
        heat_color(1.0 - i / 9.0, color);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.2f\" fill=\"%s\"/>\n", bx,
                top + bh * i / 10.0, bh / 10.0, color);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.2f\" fill=\"none\" "
               "stroke=\"#444444\"/>\n", bx, top, bh);
    snprintf(buf, sizeof buf, "%.3g", vmax);
    text_at(f, bx + 18, top + 10, "start", NULL, buf);
    snprintf(buf, sizeof buf, "%.3g", vmin);
    text_at(f, bx + 18, top + bh, "start", NULL, buf);
    fputs("</svg>\n", f);
    return finish_write(f, e);
}

/* ==== Atomic save ======================================================= */

typedef int (*writer)(FILE *f, const void *what, nlp_error *e);

static int write_chart(FILE *f, const void *c, nlp_error *e)
{
    return nlp_svg_chart_write(f, c, e);
}

static int write_heatmap(FILE *f, const void *h, nlp_error *e)
{
    return nlp_svg_heatmap_write(f, h, e);
}

static int save_atomic(const char *path, writer fn, const void *what, nlp_error *e)
{
    if (!path || !path[0])
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "no picture file name");
    size_t tn = strlen(path) + 64;
    char *tmp = nlp_malloc(tn);
    if (!tmp)
        return nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
    int fd = -1;
    for (int attempt = 0; attempt < TMP_ATTEMPTS && fd < 0; attempt++) {
        snprintf(tmp, tn, "%s.tmp%ld.%d", path, (long)getpid(), attempt);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        int err = errno;
        nlp_free(tmp);
        return nlp_error_set(e, NLP_EIO, path, 0, "cannot create a temporary file: %s",
                             strerror(err));
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int err = errno;
        close(fd);
        unlink(tmp);
        nlp_free(tmp);
        return nlp_error_set(e, NLP_EIO, path, 0, "%s", strerror(err));
    }
    errno = 0;
    int rc = fn(f, what, e);
    const char *why = NULL;
    int err = 0;
    if (rc == NLP_OK && fsync(fileno(f)) != 0) {
        why = "cannot sync";
        err = errno;
    }
    if (fclose(f) != 0 && rc == NLP_OK && !why) {
        why = "cannot write";
        err = errno;
    }
    if (rc == NLP_OK && !why && rename(tmp, path) != 0) {
        why = "cannot rename the temporary file into place";
        err = errno;
    }
    if (rc != NLP_OK || why)
        unlink(tmp);
    nlp_free(tmp);
    if (why)
        return nlp_error_set(e, NLP_EIO, path, 0, "%s: %s", why, strerror(err ? err : EIO));
    if (rc != NLP_OK && e && !e->file[0])
        snprintf(e->file, sizeof e->file, "%s", path);
    return rc;
}

int nlp_svg_chart_save(const char *path, const nlp_svg_chart *c, nlp_error *e)
{
    return save_atomic(path, write_chart, c, e);
}

int nlp_svg_heatmap_save(const char *path, const nlp_svg_heatmap *h, nlp_error *e)
{
    return save_atomic(path, write_heatmap, h, e);
}
