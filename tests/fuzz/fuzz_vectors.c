/*
** fuzz_vectors: the word2vec vectors reader (nlp_vectors_read), text and
** binary, through a memory stream.
**
** Input layout:
**   byte 0   max_rows: 0 = all, else byte % 8 (only the first rows are read)
**   byte 1   bit 0: write what was read (bit 1: in binary, else in text)
**            and read it back, which must give the same words and numbers
**   rest     the vectors file
**
** Checks: a failure is a documented code with the file name; a read gives
** n rows (at most max_rows) of dim numbers with n distinct words; the
** evaluation functions run on what was read; writing and reading again
** round-trips exactly (binary) or as printf's "%lf" rounds (text).
*/
#include "fuzz.h"

#include <math.h>

#define VECTORS_NAME "fuzz.vec"

/* What the writer refuses in a word (nlp_vectors_write). */
static int unwritable(const char *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (w[i] == 0 || strchr(" \t\n\r\v\f", w[i]))
            return 1;
    return 0;
}

/*
** Whether the first row of v, written in binary, may read back as text: the
** reader tells the formats apart by the bytes of the first row's numbers
** (nlp/vectors.h), so a binary row whose bytes all look numeric up to a
** newline or its end is taken for text.  Round trips skip such files.
*/
static int looks_numeric(const nlp_vectors *v)
{
    if (v->n == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)v->data;
    for (size_t i = 0; i < (size_t)v->dim * 4; i++) {
        if (p[i] == '\n')
            return 1;
        if (p[i] == 0 || !strchr("0123456789.+-eEnaifNAIF \t\r\v\f", p[i]))
            return 0;
    }
    return 1;
}

/* The number a text file written from x reads back as. */
static float through_text(float x)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%lf", (double)x);
    return strtof(buf, NULL);
}

static void round_trip(const nlp_vectors *v, int binary)
{
    int refuse = 0;
    for (long i = 0; i < v->n; i++)
        refuse |= unwritable(nlp_vocab_word(v->words, i), nlp_vocab_word_len(v->words, i));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    FUZZ_CHECK(f != NULL);
    nlp_error e;
    int rc = nlp_vectors_write(f, v->words, v->data, v->n, v->dim, binary, VECTORS_NAME, &e);
    FUZZ_CHECK(fclose(f) == 0);
    if (refuse) {
        FUZZ_CHECK(rc == NLP_EFORMAT);
        fuzz_check_error(rc, &e);
        free(buf);
        return;
    }
    FUZZ_CHECK(rc == NLP_OK);
    if (binary && looks_numeric(v)) {
        free(buf);
        return;
    }
    f = fuzz_fmemopen(buf, len);
    nlp_vectors *r = NULL;
    rc = nlp_vectors_read(f, VECTORS_NAME, 0, &r, &e);
    fclose(f);
    FUZZ_CHECK(rc == NLP_OK);
    FUZZ_CHECK(r->n == v->n && r->dim == v->dim);
    for (long i = 0; i < v->n; i++) {
        size_t k = nlp_vocab_word_len(v->words, i);
        FUZZ_CHECK(nlp_vocab_word_len(r->words, i) == k);
        FUZZ_CHECK(memcmp(nlp_vocab_word(r->words, i), nlp_vocab_word(v->words, i), k) == 0);
    }
    size_t count = (size_t)v->n * (size_t)v->dim;
    if (binary) {
        FUZZ_CHECK(memcmp(r->data, v->data, count * sizeof(float)) == 0);
    } else {
        for (size_t i = 0; i < count; i++) {
            float want = through_text(v->data[i]);
            FUZZ_CHECK(isnan(want) ? isnan(r->data[i]) : r->data[i] == want);
        }
    }
    nlp_vectors_free(r);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = { data, size };
    uint8_t rows = fuzz_byte(&in), mode = fuzz_byte(&in);
    long max_rows = rows % 8;
    char *text = fuzz_dup(in.p, in.n);
    FILE *f = fuzz_fmemopen(text, in.n);
    nlp_vectors *v = NULL;
    nlp_error e;
    nlp_error_clear(&e);
    int rc = nlp_vectors_read(f, VECTORS_NAME, max_rows, &v, &e);
    fclose(f);
    if (rc != NLP_OK) {
        FUZZ_CHECK(v == NULL);
        fuzz_check_error(rc, &e);
        FUZZ_CHECK(strcmp(e.file, VECTORS_NAME) == 0);
        free(text);
        return 0;
    }
    FUZZ_CHECK(v->n >= 0 && v->dim >= 1);
    FUZZ_CHECK(max_rows == 0 || v->n <= max_rows);
    FUZZ_CHECK(nlp_vocab_size(v->words) == v->n);
    size_t count = (size_t)v->n * (size_t)v->dim;
    volatile float sum = 0;   /* touch every number */
    for (size_t i = 0; i < count; i++)
        sum += v->data[i];
    (void)sum;

    if (mode & 1)
        round_trip(v, (mode >> 1) & 1);

    if (v->n > 0) {
        nlp_vectors_normalize(v);
        long ids[4];
        float scores[4];
        long exclude[1] = { 0 };
        int k = nlp_vectors_nearest(v, v->data, 0, exclude, 1, 4, ids, scores);
        FUZZ_CHECK(k >= 0 && k <= 4 && k <= v->n - 1);
        for (int i = 0; i < k; i++)
            FUZZ_CHECK(ids[i] > 0 && ids[i] < v->n);
        if (v->n >= 3) {
            long q[6] = { 0, 1, 2, 2, 1, 0 }, answer[2];
            FUZZ_CHECK(nlp_vectors_analogy(v, 0, q, 2, answer) == NLP_OK);
        }
    }
    nlp_vectors_free(v);
    free(text);
    return 0;
}
