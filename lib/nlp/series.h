/*
** series: numeric tables of time series, and the transforms a forecaster
** applies to them (standardisation, differencing and its inverse, windows).
**
** A table is one row per time step, in time order, one column per
** variable:
**   csv         fields separated by ',' ("..." quotes a field; "" inside is
**               a quote), e.g. statsmodels' macrodata.csv
**   tsv         fields separated by TAB
**   whitespace  fields separated by runs of spaces and TABs
** detected from the first non-empty line (a TAB: tsv; else a ',': csv;
** else whitespace) unless forced.  Empty lines and lines starting with '#'
** are skipped; CRLF line ends are accepted.  The first line is a header
** (column names) when none of its fields is a number, unless forced either
** way.  Every line has the field count of the first one.
**
** Columns are chosen by name (from the header) or by 1-based number; a name
** wins over a number.  Only the chosen columns are parsed: each cell must be
** a finite decimal number (strtod syntax, magnitude at most
** NLP_SERIES_MAX_VALUE), or it is an error naming the file, the line and
** the column (e->line, e->column: the 1-based byte where the field starts;
** e->text names the column too) -- unless a fill is asked for: then an
** empty, "NA", "NaN" or other non-numeric cell is missing and takes the
** previous value of its column (NLP_SERIES_FILL_PREVIOUS) or the value on
** the straight line between its neighbours (NLP_SERIES_FILL_LINEAR); cells
** before a column's first value take that value, and after its last value
** (linear) the last one.  A column with no value at all stays an error.
**
** Nothing here prints or exits; errors are NLP_E* codes with e filled.
*/
#ifndef NLP_SERIES_H
#define NLP_SERIES_H

#include <stddef.h>
#include <stdio.h>

#include <nlp/error.h>

#define NLP_SERIES_MAX_COLUMNS 1024  /* columns chosen from one table */
#define NLP_SERIES_MAX_FIELDS 65536  /* fields on a line */
#define NLP_SERIES_MAX_VALUE 1e30    /* larger magnitudes are refused: their
                                        differences and squares must stay
                                        finite in double */

typedef enum nlp_series_format {
    NLP_SERIES_AUTO = 0,
    NLP_SERIES_CSV = 1,
    NLP_SERIES_TSV = 2,
    NLP_SERIES_WHITESPACE = 3
} nlp_series_format;

typedef enum nlp_series_fill {
    NLP_SERIES_FILL_NONE = 0,     /* a missing cell is an error */
    NLP_SERIES_FILL_PREVIOUS = 1, /* carry the last value forward */
    NLP_SERIES_FILL_LINEAR = 2    /* interpolate between the neighbours */
} nlp_series_fill;

/* Parse "auto", "csv", "tsv", "whitespace" / "none", "previous", "linear":
** NLP_OK or NLP_EINVAL.  nlp_series_fill_name: the name ("?" if unknown). */
int nlp_series_format_parse(const char *name, nlp_series_format *f);
int nlp_series_fill_parse(const char *name, nlp_series_fill *f);
const char *nlp_series_fill_name(nlp_series_fill f);

typedef struct nlp_series_read_config {
    nlp_series_format format;  /* NLP_SERIES_AUTO */
    int header;                /* -1 detect, 0 none, 1 the first line; -1 */
    const char *const *columns; /* (ncolumns) names or 1-based numbers; a
                                  NULL entry: the first column that is not
                                  the time column */
    int ncolumns;              /* 1..NLP_SERIES_MAX_COLUMNS */
    const int *numbers;        /* (ncolumns) or NULL: 1-based column to take
                                  when columns[j] is a name and the table
                                  has no header (a tail of the table a
                                  model was trained on); 0: none */
    const char *time;          /* a date/time column, never parsed, that
                                  may not be chosen; NULL: none */
    int time_number;           /* the same fallback for time; 0: none */
    nlp_series_fill fill;      /* NLP_SERIES_FILL_NONE */
} nlp_series_read_config;

/* Fills c with the defaults written next to each field (no columns). */
void nlp_series_read_config_default(nlp_series_read_config *c);

/* A table as read: the chosen columns, in the order asked for. */
typedef struct nlp_series {
    long n;             /* rows */
    int k;              /* columns */
    double *x;          /* (n,k) row-major */
    char **names;       /* (k) each column's header name, or its number */
    int *numbers;       /* (k) each column's 1-based number in the table */
    int time_number;    /* the time column's number; 0: none */
    long *line;         /* (n) 1-based line of each row */
    long filled;        /* cells that were missing and filled */
    nlp_series_format format; /* the format read (never AUTO) */
    int header;         /* 1 when the first line was a header */
} nlp_series;

/*
** Reads the table of f (path names it in messages) with cfg.  On success
** *out is a new table (free with nlp_series_free), with at least one row.
** Errors, with path, line and (for a cell) column in e: NLP_EFORMAT (a
** cell that is not a number, a field count that differs from the first
** line's, a column name or number the table does not have, the time column
** chosen, a column with no value), NLP_EEMPTY (no data rows), NLP_ERANGE
** (too many fields, a value beyond NLP_SERIES_MAX_VALUE), NLP_EINVAL (a bad
** cfg), NLP_EIO, NLP_ENOMEM; *out is NULL then.
*/
int nlp_series_read(nlp_series **out, FILE *f, const char *path,
                    const nlp_series_read_config *cfg, nlp_error *e);

/* Frees s.  NULL is a no-op. */
void nlp_series_free(nlp_series *s);

/* ==== Transforms ========================================================= */

/*
** Mean and standard deviation (population, divided by n) of each of the k
** columns of x (n,k) over rows [r0, r1), into mean (k) and std (k); a
** column with a standard deviation below 1e-12 times its scale (constant)
** gets std 1, so standardising never divides by zero.  NLP_OK, or
** NLP_EINVAL when r1 <= r0 or the range is outside [0, n).
*/
int nlp_series_stats(const double *x, long n, int k, long r0, long r1, double *mean,
                     double *std);

/*
** One input window: the W rows ending at row end (inclusive; end >= W-1)
** of x (.,k), standardised, (x - mean) / std per column, as floats: row
** end-W+1+t goes to out + t*stride (k floats), so out may be a time-major
** (W,B,k) batch (stride B*k) or a plain (W,k) block (stride k).
*/
void nlp_series_window(float *out, size_t stride, const double *x, int k, long end, int W,
                       const double *mean, const double *std);

/*
** First differences: d (n-1,k) row t = x row t+1 - x row t (n >= 2).  d
** may not alias x.
*/
void nlp_series_difference(double *d, const double *x, long n, int k);

/*
** The inverse: x (n+1,k) with row 0 = x0 (k) and row t+1 = row t + d row t,
** for d (n,k).  Summed in double, so difference then integrate returns the
** input up to rounding (exactly for integers below 2^53).
*/
void nlp_series_integrate(double *x, const double *x0, const double *d, long n, int k);

#endif
