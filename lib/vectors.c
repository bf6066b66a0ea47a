/*
** vectors: word2vec vector files and their evaluation.  See nlp/vectors.h.
*/
#include "nlp/vectors.h"
#include "nlp/alloc.h"

#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- writing ------------------------------------------------------------ */

static int has_space_or_nul(const char *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)w[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0)
            return 1;
    }
    return 0;
}

static void put_float_le(unsigned char *p, float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

/*
** Formats x as printf("%lf ", (double)x) does, into p (room for 64 bytes: FLT_MAX takes 48);
** returns the length.  printf is exact (correct rounding, ties to even)
** and so is this: a float is m * 2^e with a 24-bit m, so x * 10^6 is the
** integer m * 10^6 shifted right by -e, and the bits shifted out decide
** the rounding.  Values too large or not finite go through snprintf.
** About ten times faster than printf, which dominated writing text vectors.
*/
static int format_lf(char *p, float x)
{
    if (!isfinite(x) || fabsf(x) >= 1e12f)
        return snprintf(p, 64, "%lf ", (double)x);
    uint32_t bits;
    memcpy(&bits, &x, 4);
    int neg = (int)(bits >> 31);
    int exp = (int)((bits >> 23) & 0xff);
    uint64_t m = bits & 0x7fffff;
    if (exp == 0)
        exp = 1;                     /* subnormal */
    else
        m |= 0x800000;
    int e = exp - 150;               /* x = m * 2^e */
    uint64_t n = m * 1000000u, q;
    if (e >= 0) {
        q = n << e;                  /* |x| < 1e12: fits in 64 bits */
    } else if (-e >= 64) {
        q = 0;                       /* below 2^-40: rounds to zero */
    } else {
        int sh = -e;
        q = n >> sh;
        uint64_t rem = n & ((UINT64_C(1) << sh) - 1), half = UINT64_C(1) << (sh - 1);
        if (rem > half || (rem == half && (q & 1)))
            q++;
    }
    char tmp[32];
    int len = 0;
    uint64_t ip = q / 1000000u, fp = q % 1000000u;
    for (int k = 0; k < 6; k++) {
        tmp[len++] = (char)('0' + fp % 10);
        fp /= 10;
    }
    tmp[len++] = '.';
    do {
        tmp[len++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    int o = 0;
    if (neg)
        p[o++] = '-';
    while (len)
        p[o++] = tmp[--len];
    p[o++] = ' ';
    return o;
}

int nlp_vectors_write(FILE *f, const nlp_vocab *words, const float *data, long n, int dim,
                      int binary, const char *path, nlp_error *e)
{
    unsigned char *row = NULL;
    if (binary && !(row = nlp_malloc((size_t)dim * 4 + 1)))
        return nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
    int rc = NLP_OK;
    if (fprintf(f, "%ld %d\n", n, dim) < 0)
        rc = NLP_EIO;
    for (long i = 0; i < n && rc == NLP_OK; i++) {
        const char *w = nlp_vocab_word(words, i);
        size_t len = nlp_vocab_word_len(words, i);
        if (has_space_or_nul(w, len)) {
            nlp_free(row);
            return nlp_error_set(e, NLP_EFORMAT, path, 0,
                                 "word %ld holds whitespace or a NUL byte: not representable", i);
        }
        if (fwrite(w, 1, len, f) != len || putc(' ', f) == EOF) {
            rc = NLP_EIO;
            break;
        }
        const float *x = data + (size_t)i * (size_t)dim;
        if (binary) {
            for (int d = 0; d < dim; d++)
                put_float_le(row + 4 * d, x[d]);
            row[(size_t)dim * 4] = '\n';
            if (fwrite(row, 1, (size_t)dim * 4 + 1, f) != (size_t)dim * 4 + 1)
                rc = NLP_EIO;
        } else {
            /* Exactly word2vec's output: "%lf " per number, then a newline. */
            for (int d = 0; d < dim; d++) {
                char num[64];
                int k = format_lf(num, x[d]);
                if (fwrite(num, 1, (size_t)k, f) != (size_t)k) {
                    rc = NLP_EIO;
                    break;
                }
            }
            if (rc == NLP_OK && putc('\n', f) == EOF)
                rc = NLP_EIO;
        }
    }
    nlp_free(row);
    if (rc == NLP_OK && (fflush(f) != 0 || ferror(f)))
        rc = NLP_EIO;
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, path, 0, "write error: %s", strerror(errno));
    return NLP_OK;
}

/* ---- reading ------------------------------------------------------------ */

/* Longest header line, and longest word, accepted (a longer one is refused, never cut). */
#define HEADER_MAX 128
#define WORD_MAX ((size_t)64 << 20)
/* Bytes of rows allocated at first when the file size gives no bound (a pipe). */
#define FIRST_BYTES ((size_t)1 << 20)

/* A FILE with a pushback buffer, so the format can be sniffed from a pipe. */
typedef struct src {
    FILE *f;
    unsigned char *pb;   /* bytes read ahead */
    size_t pbn, pbpos;
    int err;             /* errno of the first failed read, 0 if none */
} src;

static int src_getc(src *s)
{
    if (s->pbpos < s->pbn)
        return s->pb[s->pbpos++];
    int c = getc_unlocked(s->f);
    if (c == EOF && !s->err && ferror(s->f))
        s->err = errno ? errno : EIO;
    return c;
}

static void src_ungetc(src *s, int c)
{
    if (c == EOF)
        return;
    if (s->pbpos > 0 && s->pbpos <= s->pbn)
        s->pb[--s->pbpos] = (unsigned char)c;
    else
        ungetc(c, s->f);
}

static int is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int is_num_char(int c)
{
    return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'
        || c == 'n' || c == 'a' || c == 'i' || c == 'f' || c == 'N' || c == 'A' || c == 'I' || c == 'F'
        || is_blank(c);
}

/* Growing byte buffer for a word. */
typedef struct wbuf {
    char *p;
    size_t n, cap;
} wbuf;

static int wbuf_push(wbuf *b, int c)
{
    if (b->n + 1 >= b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        char *p = nlp_realloc(b->p, cap);
        if (!p)
            return NLP_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    b->p[b->n++] = (char)c;
    b->p[b->n] = '\0';
    return NLP_OK;
}

/*
** Parses a decimal integer field of the header at *p into *x, checked
** against [min, max] before anything is converted, and moves *p past it.
** 0, or -1 when the field is missing, malformed or out of range.
*/
static int header_field(const char **p, long min, long max, long *x)
{
    const char *s = *p;
    while (is_blank((unsigned char)*s))
        s++;
    if (*s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno == ERANGE || v < min || v > max)
        return -1;
    *x = v;
    *p = end;
    return 0;
}

/*
** The header line "ROWS DIM": NLP_OK, NLP_EIO, or NLP_EFORMAT with the
** message in e.  Reads at most HEADER_MAX bytes (a file without a newline
** there is not a vectors file; /dev/zero must not be read forever).
*/
static int read_header(src *s, long *rows, int *dim, const char *path, nlp_error *e)
{
    char line[HEADER_MAX + 1];
    size_t n = 0;
    int c;
    while ((c = src_getc(s)) != EOF && c != '\n') {
        if (n == HEADER_MAX)
            return nlp_error_set(e, NLP_EFORMAT, path, 1,
                                 "expected a header 'ROWS DIMENSIONS' (line 1 is too long)");
        line[n++] = (char)c;
    }
    line[n] = '\0';
    if (s->err)
        return nlp_error_set(e, NLP_EIO, path, 0, "read error: %s", strerror(s->err));
    long r, d;
    const char *p = line;
    if (c == EOF || header_field(&p, 0, LONG_MAX, &r) != 0 || header_field(&p, 1, NLP_VECTORS_MAX_DIM, &d) != 0)
        return nlp_error_set(e, NLP_EFORMAT, path, 1,
                             c == EOF && n == 0 ? "expected a header 'ROWS DIMENSIONS' (the file is empty)"
                                                : "expected a header 'ROWS DIMENSIONS' (dimensions 1..%d)",
                             NLP_VECTORS_MAX_DIM);
    while (is_blank((unsigned char)*p))
        p++;
    if (*p)
        return nlp_error_set(e, NLP_EFORMAT, path, 1,
                             "expected a header 'ROWS DIMENSIONS', not more fields");
    *rows = r;
    *dim = (int)d;
    return NLP_OK;
}

/*
** Reads the word of a row: it ends at a space or tab.  Returns 1, 0 at the
** end of the file (nothing read), or NLP_EFORMAT / NLP_ERANGE / NLP_ENOMEM.
*/
static int read_word(src *s, wbuf *w)
{
    w->n = 0;
    int c = src_getc(s);
    if (c == EOF)
        return 0;
    while (c != EOF && c != ' ' && c != '\t' && c != '\n') {
        if (w->n == WORD_MAX)
            return NLP_ERANGE;
        if (wbuf_push(w, c) != NLP_OK)
            return NLP_ENOMEM;
        c = src_getc(s);
    }
    if (c != ' ' && c != '\t')
        return NLP_EFORMAT;
    if (w->n == 0)
        return NLP_EFORMAT;
    return 1;
}

/* Reads one text number into *x: 0 ok, -1 bad, -2 end of line (or file) first, -3 not finite. */
static int read_text_number(src *s, float *x)
{
    char tok[64];
    size_t n = 0;
    int c;
    while (is_blank(c = src_getc(s)))
        ;
    if (c == '\n' || c == EOF) {
        src_ungetc(s, c);
        return -2;
    }
    while (c != EOF && !is_blank(c) && c != '\n') {
        if (n < sizeof tok - 1)
            tok[n++] = (char)c;
        else
            return -1;
        c = src_getc(s);
    }
    src_ungetc(s, c);
    tok[n] = '\0';
    char *end;
    errno = 0;
    float v = strtof(tok, &end);
    if (*end != '\0')
        return -1;
    /* Overflow gives HUGE_VALF (ERANGE); underflow a tiny value, kept. */
    if (!isfinite(v) || (errno == ERANGE && fabsf(v) > 1.0f))
        return -3;
    *x = v;
    return 0;
}

/* How many valid numbers the n bytes at p hold, or -1 if some token is not one. */
static int count_numbers(const char *p, size_t n)
{
    int count = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && is_blank((unsigned char)p[i]))
            i++;
        if (i == n)
            break;
        char tok[64];
        size_t k = 0;
        while (i < n && !is_blank((unsigned char)p[i])) {
            if (k == sizeof tok - 1)
                return -1;
            tok[k++] = p[i++];
        }
        tok[k] = '\0';
        char *end;
        strtof(tok, &end);
        if (*end != '\0' || end == tok)
            return -1;
        count++;
    }
    return count;
}

/*
** Rows to allocate before any is read: never more than the header claims
** (keep), nor, for a regular file, more than its remaining bytes can hold
** (a row takes at least 2 dim + 2 bytes: a one-byte word, a space, dim
** one-digit numbers with separators and a newline; binary rows take more);
** from a pipe, FIRST_BYTES worth, then the array doubles as rows arrive, so
** memory stays within a few times the bytes actually read.
*/
static long first_capacity(FILE *f, long keep, int dim)
{
    struct stat st;
    size_t first = FIRST_BYTES / ((size_t)dim * sizeof(float));
    long cap = (size_t)keep < first ? keep : (long)first;
    off_t at;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (at = ftello(f)) >= 0) {
        off_t left = st.st_size > at ? st.st_size - at : 0;
        off_t fit = left / (2 * (off_t)dim + 2);
        cap = fit < (off_t)keep ? (long)fit : keep;
    }
    return cap > 0 ? cap : 1;
}

/* Makes room for at least rows rows in v->data (capacity *cap), up to max rows. */
static int grow_rows(nlp_vectors *v, long rows, long max, long *cap)
{
    if (rows <= *cap)
        return NLP_OK;
    long want = *cap > max / 2 ? max : *cap * 2;
    if (want < rows)
        want = rows;
    size_t row_bytes = (size_t)v->dim * sizeof(float);
    if ((size_t)want > SIZE_MAX / row_bytes)
        return NLP_ENOMEM;
    float *p = nlp_realloc(v->data, (size_t)want * row_bytes);
    if (!p)
        return NLP_ENOMEM;
    v->data = p;
    *cap = want;
    return NLP_OK;
}

int nlp_vectors_read(FILE *f, const char *path, long max_rows, nlp_vectors **out, nlp_error *e)
{
    *out = NULL;
    src s = {f, NULL, 0, 0, 0};
    long rows = 0;
    int dim = 1;
    int rc = read_header(&s, &rows, &dim, path, e);
    if (rc != NLP_OK)
        return rc;
    long keep = max_rows > 0 && max_rows < rows ? max_rows : rows;
    nlp_vectors *v = nlp_calloc(1, sizeof *v);
    if (!v)
        return nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
    v->dim = dim;
    rc = nlp_vocab_new(&v->words);
    long cap = first_capacity(f, keep, dim);
    /* cap rows of dim <= NLP_VECTORS_MAX_DIM floats: checked like every later size. */
    if ((size_t)cap <= SIZE_MAX / ((size_t)dim * sizeof(float)))
        v->data = nlp_malloc((size_t)cap * (size_t)dim * sizeof(float));
    wbuf w = {0};
    long line = 2;
    int binary = -1;
    if (rc == NLP_OK && !v->data)
        rc = NLP_ENOMEM;
    if (rc != NLP_OK) {
        rc = nlp_error_set(e, rc, path, 0, NULL);
        goto done;
    }
    for (long i = 0; i < keep; i++) {
        int r = read_word(&s, &w);
        if (s.err)
            goto ioerr;
        if (r == 0) {
            rc = nlp_error_set(e, NLP_ETRUNCATED, path, line,
                               "file ends after %ld of %ld rows", i, rows);
            goto done;
        }
        if (r < 0) {
            rc = nlp_error_set(e, r, path, line,
                               r == NLP_ENOMEM ? NULL
                               : r == NLP_ERANGE ? "word longer than %zu bytes"
                                                 : "expected 'WORD NUMBERS...'",
                               WORD_MAX);
            goto done;
        }
        if (grow_rows(v, i + 1, keep, &cap) != NLP_OK) {
            rc = nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
            goto done;
        }
        if (binary < 0) {
            /* Sniff: a text row continues with numbers; binary bytes almost never all look so. */
            size_t want = (size_t)dim * 4;
            s.pb = nlp_malloc(want);
            if (!s.pb) {
                rc = nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
                goto done;
            }
            binary = 0;
            int c, newline = 0;
            while (s.pbn < want && (c = getc_unlocked(f)) != EOF) {
                s.pb[s.pbn++] = (unsigned char)c;
                if (c == '\n') {
                    newline = 1;
                    break;
                }
                if (!is_num_char(c))
                    binary = 1;
            }
            if (ferror(f)) {
                s.err = errno ? errno : EIO;
                goto ioerr;
            }
            /*
            ** A newline before any non-numeric byte: text, unless nothing
            ** numeric precedes it (a binary float whose first byte is 0x0A).
            ** A short text row then fails with a clear "row has N numbers".
            */
            if (!binary && newline)
                binary = count_numbers((const char *)s.pb, s.pbn - 1) <= 0;
        }
        float *x = v->data + (size_t)i * (size_t)dim;
        if (binary) {
            unsigned char b[4];
            for (int d = 0; d < dim; d++) {
                for (int k = 0; k < 4; k++) {
                    int c = src_getc(&s);
                    if (c == EOF) {
                        if (s.err)
                            goto ioerr;
                        rc = nlp_error_set(e, NLP_ETRUNCATED, path, line, "row %ld is truncated", i + 1);
                        goto done;
                    }
                    b[k] = (unsigned char)c;
                }
                uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
                memcpy(&x[d], &u, 4);
                if (!isfinite(x[d])) {
                    rc = nlp_error_set(e, NLP_EFORMAT, path, line,
                                       "row %ld: number %d of %d is not finite", i + 1, d + 1, dim);
                    goto done;
                }
            }
            /* The original word2vec ends binary rows with a newline, gensim does not. */
            int c = src_getc(&s);
            if (c == '\n')
                line++;
            else
                src_ungetc(&s, c);
        } else {
            for (int d = 0; d < dim; d++) {
                int r2 = read_text_number(&s, &x[d]);
                if (s.err)
                    goto ioerr;
                if (r2 == -2 && d > 0 && src_getc(&s) == EOF) {
                    rc = nlp_error_set(e, NLP_ETRUNCATED, path, line,
                                       "the file ends inside row %ld (%d of %d numbers)", i + 1, d, dim);
                    goto done;
                }
                if (r2 != 0) {
                    rc = nlp_error_set(e, NLP_EFORMAT, path, line,
                                       r2 == -2 ? "row has %d numbers, expected %d"
                                       : r2 == -3 ? "number %d (of %d) is out of range or not finite"
                                                  : "bad number at position %d (of %d)",
                                       r2 == -2 ? d : d + 1, dim);
                    goto done;
                }
            }
            int c;
            while (is_blank(c = src_getc(&s)))
                ;
            if (s.err)
                goto ioerr;
            /* A row cut inside its last number would parse: only its newline proves it whole. */
            if (c == EOF) {
                rc = nlp_error_set(e, NLP_ETRUNCATED, path, line,
                                   "row %ld has no final newline (is the file cut short?)", i + 1);
                goto done;
            }
            if (c != '\n') {
                rc = nlp_error_set(e, NLP_EFORMAT, path, line, "row has more than %d numbers", dim);
                goto done;
            }
            line++;
        }
        long id = nlp_vocab_add_count(v->words, w.p, w.n, 0);
        if (id < 0) {
            rc = nlp_error_set(e, (int)id, path, line, NULL);
            goto done;
        }
        if (id != i) {
            rc = nlp_error_set(e, NLP_EFORMAT, path, binary ? 0 : line - 1,
                               "word '%.60s' listed twice", w.p);
            goto done;
        }
        v->n = i + 1;
    }
    if (keep == rows) {
        /* All the header's rows are in: anything but blanks after them is a bad header. */
        int c;
        while ((c = src_getc(&s)) == '\n' || is_blank(c))
            ;
        if (s.err)
            goto ioerr;
        if (c != EOF) {
            rc = nlp_error_set(e, NLP_EFORMAT, path, binary > 0 ? 0 : line,
                               "more data after the %ld rows the header announces", rows);
            goto done;
        }
    }
    goto done;
ioerr:
    rc = nlp_error_set(e, NLP_EIO, path, 0, "read error: %s", strerror(s.err));
done:
    nlp_free(w.p);
    nlp_free(s.pb);
    if (rc != NLP_OK) {
        nlp_vectors_free(v);
        return rc;
    }
    *out = v;
    return NLP_OK;
}

void nlp_vectors_free(nlp_vectors *v)
{
    if (!v)
        return;
    nlp_vocab_free(v->words);
    nlp_free(v->data);
    nlp_free(v);
}

void nlp_vectors_normalize(nlp_vectors *v)
{
    for (long i = 0; i < v->n; i++) {
        float *x = v->data + (size_t)i * (size_t)v->dim;
        double s = 0;
        for (int d = 0; d < v->dim; d++)
            s += (double)x[d] * x[d];
        if (s > 0) {
            /* In double: 1 / norm of a tiny row may exceed the float range. */
            double norm = sqrt(s);
            for (int d = 0; d < v->dim; d++)
                x[d] = (float)(x[d] / norm);
        }
    }
}

/* ---- queries ------------------------------------------------------------ */

int nlp_vectors_nearest(const nlp_vectors *v, const float *q, long limit, const long *exclude,
                        int nex, int k, long *ids, float *scores)
{
    long n = limit > 0 && limit < v->n ? limit : v->n;
    int found = 0;
    for (long i = 0; i < n; i++) {
        int skip = 0;
        for (int j = 0; j < nex; j++)
            if (exclude[j] == i)
                skip = 1;
        if (skip)
            continue;
        float s = cblas_sdot(v->dim, q, 1, v->data + (size_t)i * (size_t)v->dim, 1);
        if (found == k && !(s > scores[k - 1]))
            continue;
        int at = found < k ? found++ : k - 1;
        while (at > 0 && scores[at - 1] < s) {
            scores[at] = scores[at - 1];
            ids[at] = ids[at - 1];
            at--;
        }
        scores[at] = s;
        ids[at] = i;
    }
    return found;
}

/* Questions scored per BLAS call. */
#define ANALOGY_BATCH 256

int nlp_vectors_analogy(const nlp_vectors *v, long limit, const long *q, long n, long *answer)
{
    long rows = limit > 0 && limit < v->n ? limit : v->n;
    int D = v->dim;
    float *target = nlp_malloc((size_t)ANALOGY_BATCH * (size_t)D * sizeof(float));
    float *scores = nlp_malloc((size_t)ANALOGY_BATCH * (size_t)(rows > 0 ? rows : 1) * sizeof(float));
    if (!target || !scores) {
        nlp_free(target);
        nlp_free(scores);
        return NLP_ENOMEM;
    }
    for (long b0 = 0; b0 < n; b0 += ANALOGY_BATCH) {
        int nb = (int)(n - b0 < ANALOGY_BATCH ? n - b0 : ANALOGY_BATCH);
        for (int j = 0; j < nb; j++) {
            const long *t = q + 3 * (b0 + j);
            const float *a = v->data + (size_t)t[0] * D, *b = v->data + (size_t)t[1] * D,
                        *c = v->data + (size_t)t[2] * D;
            for (int d = 0; d < D; d++)
                target[(size_t)j * D + d] = b[d] - a[d] + c[d];
        }
        /* scores (nb, rows) = target (nb, D) . data (rows, D)' */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, (int)rows, D, 1.0f,
                    target, D, v->data, D, 0.0f, scores, (int)rows);
        for (int j = 0; j < nb; j++) {
            const long *t = q + 3 * (b0 + j);
            const float *s = scores + (size_t)j * rows;
            long best = -1;
            float bs = -INFINITY;
            for (long i = 0; i < rows; i++)
                if (s[i] > bs && i != t[0] && i != t[1] && i != t[2]) {
                    bs = s[i];
                    best = i;
                }
            answer[b0 + j] = best;
        }
    }
    nlp_free(target);
    nlp_free(scores);
    return NLP_OK;
}

/* ---- Spearman ------------------------------------------------------------ */

typedef struct ranked {
    double x;
    long i;
} ranked;

static int by_x(const void *a, const void *b)
{
    double x = ((const ranked *)a)->x, y = ((const ranked *)b)->x;
    return (x > y) - (x < y);
}

/* Average ranks (1-based) of x into r; 0 or NLP_ENOMEM. */
static int ranks(const double *x, long n, double *r)
{
    ranked *t = nlp_malloc((size_t)n * sizeof *t);
    if (!t)
        return NLP_ENOMEM;
    for (long i = 0; i < n; i++) {
        t[i].x = x[i];
        t[i].i = i;
    }
    qsort(t, (size_t)n, sizeof *t, by_x);
    for (long i = 0; i < n;) {
        long j = i;
        while (j + 1 < n && t[j + 1].x == t[i].x)
            j++;
        double avg = (double)(i + j) / 2 + 1;
        for (long k = i; k <= j; k++)
            r[t[k].i] = avg;
        i = j + 1;
    }
    nlp_free(t);
    return NLP_OK;
}

double nlp_vectors_spearman(const double *x, const double *y, long n)
{
    if (n < 2)
        return NAN;
    double *rx = nlp_malloc((size_t)n * sizeof *rx), *ry = nlp_malloc((size_t)n * sizeof *ry);
    double r = NAN;
    if (rx && ry && ranks(x, n, rx) == NLP_OK && ranks(y, n, ry) == NLP_OK) {
        double mx = 0, my = 0;
        for (long i = 0; i < n; i++) {
            mx += rx[i];
            my += ry[i];
        }
        mx /= (double)n;
        my /= (double)n;
        double sxy = 0, sxx = 0, syy = 0;
        for (long i = 0; i < n; i++) {
            sxy += (rx[i] - mx) * (ry[i] - my);
            sxx += (rx[i] - mx) * (rx[i] - mx);
            syy += (ry[i] - my) * (ry[i] - my);
        }
        if (sxx > 0 && syy > 0)
            r = sxy / sqrt(sxx * syy);
    }
    nlp_free(rx);
    nlp_free(ry);
    return r;
}
