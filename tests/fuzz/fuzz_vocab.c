/*
** fuzz_vocab: the two vocabulary readers (nlp/vocab.h): word2vec's
** "WORD COUNT" lines (nlp_vocab_load, what word2vec -read-vocab reads) and
** the binary blob inside model files (nlp_vocab_from_blob).
**
** Input layout:
**   byte 0   bit 0: the rest is a blob, else "WORD COUNT" lines;
**            bit 1: (lines) pin "<unk>" and "</s>" first, as tools do
**   rest     the file or blob
**
** Checks: a failure is a documented code with a message; every word of a
** loaded vocabulary is found under its id; saving it and loading the result
** gives the same words and counts; a blob re-serialises to the same bytes.
*/
#include "fuzz.h"

#define VOCAB_NAME "fuzz.vocab"

static void check_ids(const nlp_vocab *v)
{
    long n = nlp_vocab_size(v);
    FUZZ_CHECK(n >= 0 && nlp_vocab_pinned(v) >= 0 && nlp_vocab_pinned(v) <= n);
    for (long i = 0; i < n; i++) {
        FUZZ_CHECK(nlp_vocab_find(v, nlp_vocab_word(v, i), nlp_vocab_word_len(v, i)) == i);
        FUZZ_CHECK(nlp_vocab_count(v, i) >= 0);
    }
}

static int same(const nlp_vocab *a, const nlp_vocab *b)
{
    if (nlp_vocab_size(a) != nlp_vocab_size(b))
        return 0;
    for (long i = 0; i < nlp_vocab_size(a); i++) {
        size_t k = nlp_vocab_word_len(a, i);
        if (nlp_vocab_word_len(b, i) != k || memcmp(nlp_vocab_word(a, i), nlp_vocab_word(b, i), k)
            || nlp_vocab_count(a, i) != nlp_vocab_count(b, i))
            return 0;
    }
    return 1;
}

static void blob(const uint8_t *p, size_t n)
{
    nlp_vocab *v = NULL;
    nlp_error e;
    nlp_error_clear(&e);
    int rc = nlp_vocab_from_blob(p, n, &v, &e);
    if (rc != NLP_OK) {
        FUZZ_CHECK(v == NULL);
        fuzz_check_error(rc, &e);
        return;
    }
    check_ids(v);
    unsigned char *out = NULL;
    size_t len = 0;
    FUZZ_CHECK(nlp_vocab_to_blob(v, &out, &len) == NLP_OK);
    FUZZ_CHECK(len == n && memcmp(out, p, n) == 0);
    free(out);
    nlp_vocab_free(v);
}

/* A new vocabulary holding the symbols tools pin before loading a file. */
static nlp_vocab *start(int pin)
{
    nlp_vocab *v;
    FUZZ_CHECK(nlp_vocab_new(&v) == NLP_OK);
    if (pin) {
        FUZZ_CHECK(nlp_vocab_add_count(v, "<unk>", 5, 0) == 0);
        FUZZ_CHECK(nlp_vocab_add_count(v, "</s>", 4, 0) == 1);
        nlp_vocab_pin(v);
    }
    return v;
}

static void lines(const uint8_t *p, size_t n, int pin)
{
    FILE *f = fuzz_fmemopen(p, n);
    nlp_vocab *v = start(pin);
    nlp_error e;
    nlp_error_clear(&e);
    int rc = nlp_vocab_load(v, f, VOCAB_NAME, &e);
    fclose(f);
    if (rc != NLP_OK) {
        fuzz_check_error(rc, &e);
        FUZZ_CHECK(strcmp(e.file, VOCAB_NAME) == 0);
        check_ids(v);   /* the words before the bad line stay, intact */
        nlp_vocab_free(v);
        return;
    }
    check_ids(v);
    int unsaveable = 0;
    for (long i = 0; i < nlp_vocab_size(v); i++) {
        size_t k = nlp_vocab_word_len(v, i);
        unsaveable |= memchr(nlp_vocab_word(v, i), '\n', k) || memchr(nlp_vocab_word(v, i), 0, k);
    }
    char *buf = NULL;
    size_t len = 0;
    f = open_memstream(&buf, &len);
    FUZZ_CHECK(f != NULL);
    rc = nlp_vocab_save(v, f, VOCAB_NAME, &e);
    FUZZ_CHECK(fclose(f) == 0);
    if (unsaveable) {
        FUZZ_CHECK(rc == NLP_EFORMAT);
    } else {
        FUZZ_CHECK(rc == NLP_OK);
        f = fuzz_fmemopen(buf, len);
        nlp_vocab *r = start(pin);
        rc = nlp_vocab_load(r, f, VOCAB_NAME, &e);
        fclose(f);
        FUZZ_CHECK(rc == NLP_OK);
        FUZZ_CHECK(same(v, r));
        nlp_vocab_free(r);
    }
    free(buf);
    nlp_vocab_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = { data, size };
    uint8_t mode = fuzz_byte(&in);
    uint8_t *p = (uint8_t *)fuzz_dup(in.p, in.n);
    if (mode & 1)
        blob(p, in.n);
    else
        lines(p, in.n, (mode >> 1) & 1);
    free(p);
    return 0;
}
