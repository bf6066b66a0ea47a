/*
** svg: small self-contained SVG pictures (loss curves, attention heatmaps).
**
** The output is one standalone SVG 1.1 document: no scripts, no external
** fonts, style sheets or images (text uses the generic "sans-serif"
** family), every attribute quoted and every piece of caller text escaped
** for XML, so a browser or an image viewer shows it as it is.
**
** Two pictures:
**   - a line chart: several series of (x, y) points against one x axis, a
**     left y axis and optionally a second, right one (e.g. training loss on
**     the left, a validation metric on the right); ticks on round numbers
**     (1, 2, 5 times a power of ten), axis labels, a title and a legend.
**     Non-finite points are skipped (the line is broken there); an isolated
**     point is drawn as a dot.
**   - a heatmap: a rows x cols matrix of values as coloured cells (white to
**     dark blue), with row and column labels, e.g. attention weights with
**     target words as rows and source words as columns.
**
** Each is written to a FILE* (nlp_svg_*_write) or atomically to a path
** (nlp_svg_*_save: a temporary file in the same directory, flushed,
** fsync()ed and renamed over path, so a reader never sees half a picture).
** The descriptions are plain structs: zero fields take the defaults given
** next to them, so `nlp_svg_chart c = {0};` plus the series is enough.
*/
#ifndef NLP_SVG_H
#define NLP_SVG_H

#include <stddef.h>
#include <stdio.h>

#include <nlp/error.h>

/* Largest width or height accepted, in pixels. */
#define NLP_SVG_MAX_SIZE 20000

/* One line of a chart. */
typedef struct nlp_svg_series {
    const char *name;   /* legend text; NULL or "": not in the legend */
    const double *x;    /* (n) x values */
    const double *y;    /* (n) y values; a point with a non-finite x or y
                           is skipped and breaks the line */
    size_t n;
    int right_axis;     /* 0: against the left y axis; 1: the right one */
    const char *color;  /* "#rrggbb"; NULL: the next colour of the palette */
} nlp_svg_series;

typedef struct nlp_svg_chart {
    const char *title;     /* NULL: none */
    const char *xlabel;    /* NULL: none */
    const char *ylabel;    /* left axis; NULL: none */
    const char *y2label;   /* right axis (drawn when a series uses it) */
    int width, height;     /* pixels; 0: 720 x 420 */
    const nlp_svg_series *series; /* (nseries) */
    int nseries;
} nlp_svg_chart;

typedef struct nlp_svg_heatmap {
    const char *title;          /* NULL: none */
    const float *values;        /* (rows, cols) row-major; non-finite: grey */
    int rows, cols;             /* >= 1 each */
    const char *const *row_labels; /* (rows) or NULL: numbers from 0 */
    const char *const *col_labels; /* (cols) or NULL: numbers from 0 */
    double vmin, vmax;          /* colour range; both 0: the values' range */
    int cell;                   /* pixels per cell; 0: 24 */
} nlp_svg_heatmap;

/*
** Writes chart c as an SVG document to f.  Returns NLP_OK, NLP_EINVAL (no
** series, a series with points but NULL x or y, size out of range,
** nseries < 0) or NLP_EIO when writing fails (e->text says why).  A chart
** whose series hold no finite point is still drawn (empty axes).
*/
int nlp_svg_chart_write(FILE *f, const nlp_svg_chart *c, nlp_error *e);

/* As nlp_svg_chart_write, atomically to path.  Also NLP_ENOMEM; on any
** failure an existing file at path is left untouched. */
int nlp_svg_chart_save(const char *path, const nlp_svg_chart *c, nlp_error *e);

/*
** Writes heatmap h to f.  Returns NLP_OK, NLP_EINVAL (no values, rows or
** cols < 1 or too many for NLP_SVG_MAX_SIZE, vmin > vmax, non-finite
** range) or NLP_EIO.
*/
int nlp_svg_heatmap_write(FILE *f, const nlp_svg_heatmap *h, nlp_error *e);

/* As nlp_svg_heatmap_write, atomically to path (also NLP_ENOMEM). */
int nlp_svg_heatmap_save(const char *path, const nlp_svg_heatmap *h, nlp_error *e);

/*
** Writes s to f with the five XML special characters escaped (&amp; &lt;
** &gt; &quot; &apos;) and control characters other than tab and newline,
** which XML 1.0 forbids, replaced by U+FFFD.  NULL writes nothing.
*/
void nlp_svg_escape(FILE *f, const char *s);

#endif
