/*
** series: the numeric table reader and the forecaster's transforms.  See
** nlp/series.h.
*/
#include "nlp/series.h"
#include "nlp/alloc.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nlp/lines.h"

/* ==== Names ============================================================== */

int nlp_series_format_parse(const char *name, nlp_series_format *f)
{
    static const char *const names[] = {"auto", "csv", "tsv", "whitespace"};
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, names[i])) {
            *f = (nlp_series_format)i;
            return NLP_OK;
        }
    return NLP_EINVAL;
}

static const char *const fill_names[] = {"none", "previous", "linear"};

int nlp_series_fill_parse(const char *name, nlp_series_fill *f)
{
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, fill_names[i])) {
            *f = (nlp_series_fill)i;
            return NLP_OK;
        }
    return NLP_EINVAL;
}

const char *nlp_series_fill_name(nlp_series_fill f)
{
    return (int)f >= 0 && (int)f < 3 ? fill_names[f] : "?";
}

void nlp_series_read_config_default(nlp_series_read_config *c)
{
    c->format = NLP_SERIES_AUTO;
    c->header = -1;
    c->columns = NULL;
    c->ncolumns = 0;
    c->numbers = NULL;
    c->time = NULL;
    c->time_number = 0;
    c->fill = NLP_SERIES_FILL_NONE;
}

void nlp_series_free(nlp_series *s)
{
    if (!s)
        return;
    nlp_free(s->x);
    nlp_free(s->line);
    for (int j = 0; s->names && j < s->k; j++)
        nlp_free(s->names[j]);
    nlp_free(s->names);
    nlp_free(s->numbers);
    nlp_free(s);
}

/* ==== Fields ============================================================= */

typedef struct field {
    char *s;      /* the field's bytes (unquoted, NUL-terminated in place) */
    size_t len;
    long col;     /* 1-based byte of the line where it starts */
} field;

typedef struct splitter {
    field *f;
    size_t cap;
    int n;
} splitter;

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int push(splitter *sp, char *s, size_t len, long col)
{
    if (sp->n >= NLP_SERIES_MAX_FIELDS)
        return NLP_ERANGE;
    if ((size_t)sp->n == sp->cap) {
        size_t c = sp->cap ? sp->cap * 2 : 64;
        field *f = nlp_realloc(sp->f, c * sizeof *f);
        if (!f)
            return NLP_ENOMEM;
        sp->f = f;
        sp->cap = c;
    }
    /* Blanks around a field are not part of it. */
    while (len && is_blank(*s)) {
        s++;
        len--;
        col++;
    }
    while (len && is_blank(s[len - 1]))
        len--;
    sp->f[sp->n++] = (field){s, len, col};
    return NLP_OK;
}

/*
** Splits line (len bytes, writable) into sp in format fmt.  CSV fields in
** double quotes are unquoted in place ("" is a quote).  Each field is NUL-
** terminated in place (the separator or closing quote is overwritten).
*/
static int split(splitter *sp, char *line, size_t len, nlp_series_format fmt)
{
    sp->n = 0;
    int rc;
    if (fmt == NLP_SERIES_WHITESPACE) {
        size_t i = 0;
        while (i < len) {
            while (i < len && is_blank(line[i]))
                i++;
            if (i == len)
                break;
            size_t s = i;
            while (i < len && !is_blank(line[i]))
                i++;
            if ((rc = push(sp, line + s, i - s, (long)s + 1)) != NLP_OK)
                return rc;
            if (i < len)
                line[i++] = '\0';
        }
        return NLP_OK;
    }
    const char sep = fmt == NLP_SERIES_TSV ? '\t' : ',';
    size_t i = 0;
    for (;;) {
        size_t s = i;
        while (fmt == NLP_SERIES_CSV && s < len && line[s] == ' ')
            s++;
        if (fmt == NLP_SERIES_CSV && s < len && line[s] == '"') {
            /* A quoted field: unquote into place. */
            size_t r = s + 1, w = s;
            while (r < len) {
                if (line[r] == '"') {
                    if (r + 1 < len && line[r + 1] == '"') {
                        line[w++] = '"';
                        r += 2;
                        continue;
                    }
                    r++;
                    break;
                }
                line[w++] = line[r++];
            }
            size_t flen = w - s;
            while (r < len && line[r] != sep)
                r++; /* bytes after the closing quote are ignored */
            if ((rc = push(sp, line + s, flen, (long)s + 1)) != NLP_OK)
                return rc;
            int more = r < len;
            line[s + flen] = '\0';
            if (!more)
                return NLP_OK;
            i = r + 1;
            continue;
        }
        size_t end = i;
        while (end < len && line[end] != sep)
            end++;
        if ((rc = push(sp, line + i, end - i, (long)i + 1)) != NLP_OK)
            return rc;
        if (end >= len) {
            line[end] = '\0';
            return NLP_OK;
        }
        line[end] = '\0';
        i = end + 1;
    }
}

/* A finite number in range filling the whole field: 1, else 0 (*v set). */
static int number(const field *f, double *v, int *range)
{
    *range = 0;
    if (f->len == 0)
        return 0;
    char *end;
    errno = 0;
    double d = strtod(f->s, &end);
    if (end != f->s + f->len || !isfinite(d))
        return 0;
    /* strtod accepts "nan" and "inf" spelt out: isfinite caught them. */
    if (fabs(d) > NLP_SERIES_MAX_VALUE) {
        *range = 1;
        return 0;
    }
    *v = d;
    return 1;
}

/* The column of spec: a header name, else a 1-based number; -1 if none. */
static int resolve(const char *spec, char *const *names, int nf)
{
    for (int i = 0; names && i < nf; i++)
        if (!strcmp(names[i], spec))
            return i;
    if (!*spec)
        return -1;
    long v = 0;
    for (const char *p = spec; *p; p++) {
        if (*p < '0' || *p > '9' || v > NLP_SERIES_MAX_FIELDS)
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v >= 1 && v <= nf ? (int)v - 1 : -1;
}

/* ==== The reader ========================================================= */

typedef struct reader {
    nlp_series *s;
    size_t cap;        /* rows allocated in s->x, s->line */
    int nf;            /* fields per line */
    int *pick;         /* (k) field index of each chosen column */
    char **names;      /* (nf) header names, or NULL */
    splitter sp;
} reader;

static int add_row(reader *r, long line, const char *path, int fill, nlp_error *e)
{
    nlp_series *s = r->s;
    const int k = s->k;
    if ((size_t)s->n == r->cap) {
        size_t c = r->cap ? r->cap * 2 : 256;
        if (c > SIZE_MAX / sizeof(double) / (size_t)k || c > (size_t)LONG_MAX)
            return nlp_error_set(e, NLP_ENOMEM, path, line, NULL);
        double *x = nlp_realloc(s->x, c * (size_t)k * sizeof *x);
        if (!x)
            return nlp_error_set(e, NLP_ENOMEM, path, line, NULL);
        s->x = x;
        long *l = nlp_realloc(s->line, c * sizeof *l);
        if (!l)
            return nlp_error_set(e, NLP_ENOMEM, path, line, NULL);
        s->line = l;
        r->cap = c;
    }
    double *row = s->x + (size_t)s->n * (size_t)k;
    for (int j = 0; j < k; j++) {
        const field *f = &r->sp.f[r->pick[j]];
        int range;
        if (number(f, &row[j], &range))
            continue;
        if (range) {
            int rc = nlp_error_set(e, NLP_ERANGE, path, line,
                                   "%s%.*s%s is out of range (at most %g in magnitude)",
                                   "'", (int)(f->len > 40 ? 40 : f->len), f->s, "'",
                                   NLP_SERIES_MAX_VALUE);
            if (e)
                e->column = f->col;
            return rc;
        }
        if (fill) {
            row[j] = NAN;
            s->filled++;
            continue;
        }
        char what[96];
        if (r->names)
            snprintf(what, sizeof what, "column '%.60s'", r->names[r->pick[j]]);
        else
            snprintf(what, sizeof what, "column %d", r->pick[j] + 1);
        int rc = f->len
            ? nlp_error_set(e, NLP_EFORMAT, path, line,
                            "'%.*s' in %s is not a number (--fill previous|linear fills "
                            "such cells)", (int)(f->len > 40 ? 40 : f->len), f->s, what)
            : nlp_error_set(e, NLP_EFORMAT, path, line,
                            "empty cell in %s (--fill previous|linear fills missing values)",
                            what);
        if (e)
            e->column = f->col;
        return rc;
    }
    s->line[s->n++] = line;
    return NLP_OK;
}

/* Fills the NaN cells of column j as the fill f says. */
static int fill_column(nlp_series *s, int j, nlp_series_fill f, const char *path,
                       const char *name, nlp_error *e)
{
    const int k = s->k;
    double *x = s->x;
    long first = -1;
    for (long t = 0; t < s->n; t++)
        if (!isnan(x[(size_t)t * k + j])) {
            first = t;
            break;
        }
    if (first < 0)
        return nlp_error_set(e, NLP_EFORMAT, path, 0, "%s has no numeric value to fill from",
                             name);
    for (long t = 0; t < first; t++)
        x[(size_t)t * k + j] = x[(size_t)first * k + j];
    long prev = first;
    for (long t = first + 1; t < s->n; t++) {
        if (!isnan(x[(size_t)t * k + j])) {
            prev = t;
            continue;
        }
        long next = t + 1;
        while (next < s->n && isnan(x[(size_t)next * k + j]))
            next++;
        double a = x[(size_t)prev * k + j];
        for (long u = t; u < next; u++) {
            if (f == NLP_SERIES_FILL_LINEAR && next < s->n) {
                double b = x[(size_t)next * k + j];
                x[(size_t)u * k + j] = a + (b - a) * (double)(u - prev) / (double)(next - prev);
            } else {
                x[(size_t)u * k + j] = a;
            }
        }
        t = next - 1;
    }
    return NLP_OK;
}

/* Detects the format of the first line. */
static nlp_series_format detect(const char *s, size_t len)
{
    if (memchr(s, '\t', len))
        return NLP_SERIES_TSV;
    if (memchr(s, ',', len))
        return NLP_SERIES_CSV;
    return NLP_SERIES_WHITESPACE;
}

/* The column list for messages: "a, b, c" (cut short), or the count. */
static void column_list(char *buf, size_t n, char *const *names, int nf)
{
    if (!names) {
        snprintf(buf, n, "the table has no header; columns are numbered 1 to %d", nf);
        return;
    }
    size_t k = (size_t)snprintf(buf, n, "the columns are ");
    for (int i = 0; i < nf && k + 8 < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s'%s'", i ? ", " : "", names[i]);
    if (k >= n - 1 && n > 4)
        memcpy(buf + n - 4, "...", 4);
}

static int begin(reader *r, char *line, size_t len, long lineno, const char *path,
                 const nlp_series_read_config *cfg, int *is_header, nlp_error *e)
{
    nlp_series *s = r->s;
    s->format = cfg->format != NLP_SERIES_AUTO ? cfg->format : detect(line, len);
    int rc = split(&r->sp, line, len, s->format);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, path, lineno, rc == NLP_ERANGE ? "more than %d fields" : NULL,
                             NLP_SERIES_MAX_FIELDS);
    r->nf = r->sp.n;
    int header = cfg->header;
    if (header < 0) {
        header = 1;
        for (int i = 0; i < r->nf && header; i++) {
            double v;
            int range;
            if (number(&r->sp.f[i], &v, &range) || range)
                header = 0;
        }
    }
    *is_header = header;
    s->header = header;
    if (header) {
        r->names = nlp_calloc((size_t)r->nf, sizeof *r->names);
        if (!r->names)
            return nlp_error_set(e, NLP_ENOMEM, path, lineno, NULL);
        for (int i = 0; i < r->nf; i++)
            if (!(r->names[i] = nlp_strndup(r->sp.f[i].s, r->sp.f[i].len)))
                return nlp_error_set(e, NLP_ENOMEM, path, lineno, NULL);
    }
    char list[256];
    int time = -1;
    if (cfg->time) {
        time = resolve(cfg->time, r->names, r->nf);
        if (time < 0 && !r->names && cfg->time_number >= 1 && cfg->time_number <= r->nf)
            time = cfg->time_number - 1;
        if (time < 0) {
            column_list(list, sizeof list, r->names, r->nf);
            return nlp_error_set(e, NLP_EFORMAT, path, lineno, "no time column '%s' (%s)",
                                 cfg->time, list);
        }
        s->time_number = time + 1;
    }
    for (int j = 0; j < s->k; j++) {
        const char *spec = cfg->columns[j];
        int c;
        if (!spec) {
            c = time == 0 ? 1 : 0;
            if (c >= r->nf)
                return nlp_error_set(e, NLP_EFORMAT, path, lineno,
                                     "no column besides the time column");
        } else {
            c = resolve(spec, r->names, r->nf);
            int fb = cfg->numbers ? cfg->numbers[j] : 0;
            if (c < 0 && !r->names && fb >= 1 && fb <= r->nf)
                c = fb - 1;
        }
        if (c < 0) {
            column_list(list, sizeof list, r->names, r->nf);
            return nlp_error_set(e, NLP_EFORMAT, path, lineno, "no column '%s' (%s)", spec, list);
        }
        if (c == time)
            return nlp_error_set(e, NLP_EFORMAT, path, lineno,
                                 "column '%s' is the time column (--time): it is not a value",
                                 spec);
        r->pick[j] = c;
        char num[16];
        snprintf(num, sizeof num, "%d", c + 1);
        s->numbers[j] = c + 1;
        if (!(s->names[j] = nlp_strdup(r->names ? r->names[c] : num)))
            return nlp_error_set(e, NLP_ENOMEM, path, lineno, NULL);
    }
    return NLP_OK;
}

int nlp_series_read(nlp_series **out, FILE *f, const char *path,
                    const nlp_series_read_config *cfg, nlp_error *e)
{
    *out = NULL;
    if (!cfg || cfg->ncolumns < 1 || cfg->ncolumns > NLP_SERIES_MAX_COLUMNS || !cfg->columns)
        return nlp_error_set(e, NLP_EINVAL, path, 0, "choose 1 to %d columns",
                             NLP_SERIES_MAX_COLUMNS);
    reader r = {0};
    nlp_lines *lr = NULL;
    int rc = nlp_lines_new(&lr, f, NLP_LINES_STRIP_CR);
    nlp_series *s = nlp_calloc(1, sizeof *s);
    r.s = s;
    r.pick = nlp_calloc((size_t)cfg->ncolumns, sizeof *r.pick);
    if (rc == NLP_OK && (!s || !r.pick))
        rc = NLP_ENOMEM;
    if (rc != NLP_OK) {
        rc = nlp_error_set(e, rc, path, 0, NULL);
        goto done;
    }
    s->k = cfg->ncolumns;
    s->names = nlp_calloc((size_t)s->k, sizeof *s->names);
    s->numbers = nlp_calloc((size_t)s->k, sizeof *s->numbers);
    if (!s->names || !s->numbers) {
        rc = nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
        goto done;
    }
    const int fill = cfg->fill != NLP_SERIES_FILL_NONE;
    int started = 0;
    char *line;
    size_t len;
    int got;
    while ((got = nlp_lines_next(lr, &line, &len)) == 1) {
        long no = nlp_lines_number(lr);
        size_t i = 0;
        while (i < len && is_blank(line[i]))
            i++;
        if (i == len || line[i] == '#')
            continue;
        if (!started) {
            int is_header = 0;
            started = 1;
            if ((rc = begin(&r, line, len, no, path, cfg, &is_header, e)) != NLP_OK)
                goto done;
            if (is_header)
                continue;
        } else if ((rc = split(&r.sp, line, len, s->format)) != NLP_OK) {
            rc = nlp_error_set(e, rc, path, no, rc == NLP_ERANGE ? "more than %d fields" : NULL,
                               NLP_SERIES_MAX_FIELDS);
            goto done;
        }
        if (r.sp.n != r.nf) {
            rc = nlp_error_set(e, NLP_EFORMAT, path, no, "%d fields where the first line has %d",
                               r.sp.n, r.nf);
            goto done;
        }
        if ((rc = add_row(&r, no, path, fill, e)) != NLP_OK)
            goto done;
    }
    if (got < 0) {
        rc = nlp_error_set(e, got, path, nlp_lines_number(lr),
                           got == NLP_EIO ? "read error: %s" : NULL, strerror(errno));
        goto done;
    }
    if (s->n == 0) {
        rc = nlp_error_set(e, NLP_EEMPTY, path, 0, "no data rows");
        goto done;
    }
    if (fill && s->filled)
        for (int j = 0; j < s->k; j++) {
            char name[96];
            if (r.names)
                snprintf(name, sizeof name, "column '%.60s'", r.names[r.pick[j]]);
            else
                snprintf(name, sizeof name, "column %d", r.pick[j] + 1);
            if ((rc = fill_column(s, j, cfg->fill, path, name, e)) != NLP_OK)
                goto done;
        }
    *out = s;
    s = NULL;
    rc = NLP_OK;
done:
    nlp_series_free(s);
    nlp_lines_free(lr);
    for (int i = 0; r.names && i < r.nf; i++)
        nlp_free(r.names[i]);
    nlp_free(r.names);
    nlp_free(r.pick);
    nlp_free(r.sp.f);
    return rc;
}

/* ==== Transforms ========================================================= */

int nlp_series_stats(const double *x, long n, int k, long r0, long r1, double *mean,
                     double *std)
{
    if (r0 < 0 || r1 <= r0 || r1 > n || k < 1)
        return NLP_EINVAL;
    const double m = (double)(r1 - r0);
    for (int j = 0; j < k; j++) {
        double s = 0, scale = 0;
        for (long t = r0; t < r1; t++)
            s += x[(size_t)t * k + j];
        double mu = s / m, v = 0;
        for (long t = r0; t < r1; t++) {
            double d = x[(size_t)t * k + j] - mu;
            v += d * d;
            if (fabs(x[(size_t)t * k + j]) > scale)
                scale = fabs(x[(size_t)t * k + j]);
        }
        double sd = sqrt(v / m);
        mean[j] = mu;
        std[j] = sd > 1e-12 * (scale > 1 ? scale : 1) ? sd : 1;
    }
    return NLP_OK;
}

void nlp_series_difference(double *d, const double *x, long n, int k)
{
    for (long t = 0; t + 1 < n; t++)
        for (int j = 0; j < k; j++)
            d[(size_t)t * k + j] = x[(size_t)(t + 1) * k + j] - x[(size_t)t * k + j];
}

void nlp_series_integrate(double *x, const double *x0, const double *d, long n, int k)
{
    for (int j = 0; j < k; j++)
        x[j] = x0[j];
    for (long t = 0; t < n; t++)
        for (int j = 0; j < k; j++)
            x[(size_t)(t + 1) * k + j] = x[(size_t)t * k + j] + d[(size_t)t * k + j];
}

void nlp_series_window(float *out, size_t stride, const double *x, int k, long end, int W,
                       const double *mean, const double *std)
{
    for (int t = 0; t < W; t++) {
        const double *row = x + (size_t)(end - W + 1 + t) * (size_t)k;
        float *o = out + (size_t)t * stride;
        for (int j = 0; j < k; j++)
            o[j] = (float)((row[j] - mean[j]) / std[j]);
    }
}
