/*
** vectors: word2vec vector files and their evaluation.  See nlp/vectors.h.
*/
#include "nlp/vectors.h"
#include "nlp/alloc.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* A FILE with a pushback buffer, so the format can be sniffed from a pipe. */
typedef struct src {
    FILE *f;
    unsigned char *pb;   /* bytes read ahead */
    size_t pbn, pbpos;
} src;

static int src_getc(src *s)
{
    if (s->pbpos < s->pbn)
        return s->pb[s->pbpos++];
    return getc_unlocked(s->f);
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

static int read_header(src *s, long *rows, int *dim)
{
    char line[128];
    size_t n = 0;
    int c;
    while ((c = src_getc(s)) != EOF && c != '\n')
        if (n < sizeof line - 1)
            line[n++] = (char)c;
    line[n] = '\0';
    long r, d;
    char extra;
    if (sscanf(line, "%ld %ld %c", &r, &d, &extra) != 2 || r < 0 || d < 1 || d > 1000000)
        return -1;
    *rows = r;
    *dim = (int)d;
    return 0;
}

/*
** Reads the word of a row: leading newlines are skipped (binary rows end
** with one); the word ends at a space or tab.  Returns 1, 0 at end of file,
** or an error code.
*/
static int read_word(src *s, wbuf *w, long *line)
{
    int c;
    w->n = 0;
    while ((c = src_getc(s)) == '\n')
        (*line)++;
    if (c == EOF)
        return 0;
    while (c != EOF && c != ' ' && c != '\t' && c != '\n') {
        if (wbuf_push(w, c) != NLP_OK)
            return NLP_ENOMEM;
        c = src_getc(s);
    }
    if (c != ' ' && c != '\t')
        return NLP_EFORMAT;
    return 1;
}

/* Reads one text number into *x: 0 ok, -1 bad, -2 end of line first. */
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
    *x = strtof(tok, &end);
    return *end == '\0' ? 0 : -1;
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

int nlp_vectors_read(FILE *f, const char *path, long max_rows, nlp_vectors **out, nlp_error *e)
{
    *out = NULL;
    src s = {f, NULL, 0, 0};
    long rows;
    int dim;
    if (read_header(&s, &rows, &dim) != 0)
        return nlp_error_set(e, ferror(f) ? NLP_EIO : NLP_EFORMAT, path, 1,
                             "expected a header 'ROWS DIMENSIONS'");
    long keep = max_rows > 0 && max_rows < rows ? max_rows : rows;
    nlp_vectors *v = nlp_calloc(1, sizeof *v);
    if (!v)
        return nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
    v->dim = dim;
    v->words = nlp_vocab_new();
    v->data = nlp_malloc((size_t)(keep > 0 ? keep : 1) * (size_t)dim * sizeof(float));
    wbuf w = {0};
    int rc = NLP_OK;
    long line = 2;
    int binary = -1;
    if (!v->words || !v->data) {
        rc = nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
        goto done;
    }
    for (long i = 0; i < keep; i++) {
        int r = read_word(&s, &w, &line);
        if (r == 0) {
            rc = nlp_error_set(e, NLP_ETRUNCATED, path, line,
                               "file ends after %ld of %ld rows", i, rows);
            goto done;
        }
        if (r < 0) {
            rc = nlp_error_set(e, r, path, line, r == NLP_ENOMEM ? NULL : "expected 'WORD NUMBERS...'");
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
                        rc = nlp_error_set(e, NLP_ETRUNCATED, path, line, "row %ld is truncated", i + 1);
                        goto done;
                    }
                    b[k] = (unsigned char)c;
                }
                uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
                memcpy(&x[d], &u, 4);
            }
            int c = src_getc(&s);
            if (c == '\n')
                line++;
            else
                src_ungetc(&s, c);
        } else {
            for (int d = 0; d < dim; d++) {
                int r2 = read_text_number(&s, &x[d]);
                if (r2 != 0) {
                    rc = nlp_error_set(e, NLP_EFORMAT, path, line,
                                       r2 == -2 ? "row has %d numbers, expected %d"
                                                : "bad number at position %d (of %d)",
                                       r2 == -2 ? d : d + 1, dim);
                    goto done;
                }
            }
            int c;
            while (is_blank(c = src_getc(&s)))
                ;
            if (c != '\n' && c != EOF) {
                rc = nlp_error_set(e, NLP_EFORMAT, path, line, "row has more than %d numbers", dim);
                goto done;
            }
            line++;
        }
        long id = nlp_vocab_add_count(v->words, w.p ? w.p : "", w.n, 0);
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
    if (ferror(f))
        rc = nlp_error_set(e, NLP_EIO, path, 0, "read error: %s", strerror(errno));
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
            float inv = (float)(1.0 / sqrt(s));
            for (int d = 0; d < v->dim; d++)
                x[d] *= inv;
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
