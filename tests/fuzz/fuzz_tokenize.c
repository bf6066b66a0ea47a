/*
** fuzz_tokenize: the tokenizer (nlp/tokenize.h) on arbitrary bytes with
** arbitrary options.
**
** Input layout:
**   byte 0   bits 0-1 unit (3: invalid), bits 2-3 normalize (3: invalid),
**            bit 4 lower, bit 5 no_punct, bit 6 strict,
**            bit 7 through nlp_tokenize_each instead of _begin/_next
**   byte 1   language: an index into langs[] below; from 240 up, the next
**            (byte - 240) bytes are the locale name itself
**   byte 2   bit 0: each line in a buffer of its own (else the whole text
**            at once); bit 1: tokenize the text a second time with the same
**            tokenizer, which must give the same tokens; with bits 6 and 7
**            set, the text is repeated to 1 KiB << (bits 2-4) (up to
**            128 KiB), so that texts pass the tokenizer's batches of 4096
**            tokens
**   rest     the text, passed with its length in a buffer of exactly that
**            size (no NUL after it)
**
** Checks: the tokenizer accepts every valid option set; begin fails only as
** documented (NLP_EUTF8, strict mode, exactly when the text is invalid);
** every token is non-empty valid UTF-8 inside its batch's text, never holds
** a newline, and tokens come in line order.
*/
#include "fuzz.h"

static const char *const langs[] = {
    NULL, "en", "it", "de", "fr", "tr", "el", "ja", "th", "zh", "ar", "he",
    "pt_BR", "en_US_POSIX", "root", "", "x", "not a locale", "en@calendar=x",
};
#define NLANGS (sizeof langs / sizeof langs[0])

/* A digest of the tokens of one run, to compare two runs. */
typedef struct digest {
    uint64_t hash;
    size_t ntok;
    uint32_t last_line;
} digest;

static void digest_bytes(digest *d, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        d->hash = (d->hash ^ s[i]) * 0x100000001b3ull;   /* FNV-1a */
}

/* Checks one token and adds it to d; lines is the number of '\n' in the
** text the token came from. */
static void token(digest *d, const char *tok, size_t len, int flags, uint32_t line,
                  size_t lines)
{
    FUZZ_CHECK(len > 0);
    FUZZ_CHECK(memchr(tok, '\n', len) == NULL);
    FUZZ_CHECK(nlp_utf8_is_valid(tok, len));
    FUZZ_CHECK(d->ntok == 0 || line >= d->last_line);
    FUZZ_CHECK(line <= lines);
    d->last_line = line;
    d->ntok++;
    digest_bytes(d, tok, len);
    digest_bytes(d, &flags, sizeof flags);
}

typedef struct each_ctx {
    digest *d;
    size_t lines;
} each_ctx;

static int each_token(const char *tok, size_t len, int flags, void *arg)
{
    each_ctx *c = arg;
    /* nlp_tokenize_each gives no line numbers: keep the order check quiet. */
    token(c->d, tok, len, flags, c->d->last_line, c->lines);
    return 0;
}

/* Tokenizes s[0..n) (an exact-size buffer) into d. */
static void run(nlp_tokenizer *t, const nlp_tokenize_config *o, int use_each,
                const char *s, size_t n, digest *d)
{
    nlp_error e;
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += s[i] == '\n';
    int valid = nlp_utf8_is_valid(s, n);
    int rc;
    if (use_each) {
        each_ctx c = { d, lines };
        nlp_error_clear(&e);
        rc = nlp_tokenize_each(t, s, n, each_token, &c, &e);
    } else {
        size_t before = d->ntok;
        nlp_error_clear(&e);
        rc = nlp_tokenize_begin(t, s, n, &e);
        nlp_tokens b;
        int k;
        while ((k = nlp_tokenize_next(t, &b)) == 1) {
            FUZZ_CHECK(b.n > 0);
            for (size_t i = 0; i < b.n; i++)
                token(d, b.text + b.tok[i].start, b.tok[i].len, b.tok[i].flags,
                      b.tok[i].line, lines);
        }
        FUZZ_CHECK(k == 0);
        FUZZ_CHECK(rc == NLP_OK || d->ntok == before);
    }
    size_t first = 0;
    size_t bad = nlp_tokenize_invalid(t, &first);
    if (o->strict && !valid) {
        FUZZ_CHECK(rc == NLP_EUTF8);
        fuzz_check_error(rc, &e);
    } else {
        FUZZ_CHECK(rc == NLP_OK);
    }
    FUZZ_CHECK((bad == 0) == valid);
    FUZZ_CHECK(bad == 0 || first < n);
}

/* Tokenizes the text whole or line by line, each line in its own buffer. */
static digest pass(nlp_tokenizer *t, const nlp_tokenize_config *o, int use_each,
                   int by_line, const uint8_t *text, size_t n)
{
    digest d = { 0xcbf29ce484222325ull, 0, 0 };
    size_t start = 0;
    do {
        size_t stop = n;
        if (by_line) {
            const uint8_t *nl = memchr(text + start, '\n', n - start);
            if (nl)
                stop = (size_t)(nl - text);
        }
        char *s = fuzz_dup(text + start, stop - start);
        run(t, o, use_each, s, stop - start, &d);
        free(s);
        start = stop + 1;
    } while (start < n);
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = { data, size };
    uint8_t opt = fuzz_byte(&in), lang = fuzz_byte(&in), mode = fuzz_byte(&in);
    nlp_tokenize_config o;
    nlp_tokenize_config_default(&o);
    o.unit = opt & 3;
    o.normalize = (opt >> 2) & 3;
    o.lower = (opt >> 4) & 1;
    o.no_punct = (opt >> 5) & 1;
    o.strict = (opt >> 6) & 1;
    int use_each = (opt >> 7) & 1;
    char name[16] = "";
    if (lang >= 240) {
        size_t k = (size_t)(lang - 240);
        if (k > in.n)
            k = in.n;
        memcpy(name, in.p, k);   /* k <= 15: the name stays NUL-terminated */
        in.p += k;
        in.n -= k;
        o.lang = name;
    } else {
        o.lang = langs[lang % NLANGS];
    }

    nlp_tokenizer *t = NULL;
    nlp_error e;
    nlp_error_clear(&e);
    int rc = nlp_tokenize_new(&t, &o, &e);
    if (o.unit > NLP_TOKENIZE_CHAR || o.normalize > NLP_TOKENIZE_NONE) {
        FUZZ_CHECK(rc == NLP_EINVAL);
    }
    if (rc != NLP_OK) {
        /* Bad options, or a locale name ICU does not take. */
        FUZZ_CHECK(t == NULL);
        FUZZ_CHECK(rc == NLP_EINVAL || rc == NLP_EICU);
        fuzz_check_error(rc, &e);
        return 0;
    }
    size_t reps = 1;
    if ((mode & 0xc0) == 0xc0 && in.n > 0)
        reps = ((size_t)1024 << ((mode >> 2) & 7)) / in.n + 1;
    size_t n = in.n * reps;
    uint8_t *text = malloc(n ? n : 1);
    FUZZ_CHECK(text != NULL);
    for (size_t r = 0; r < reps && in.n; r++)
        memcpy(text + r * in.n, in.p, in.n);
    digest a = pass(t, &o, use_each, mode & 1, text, n);
    if (mode & 2) {
        digest b = pass(t, &o, use_each, mode & 1, text, n);
        FUZZ_CHECK(a.ntok == b.ntok && a.hash == b.hash);
    }
    free(text);
    nlp_tokenize_free(t);
    return 0;
}
