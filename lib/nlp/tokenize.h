/*
** tokenize: splits UTF-8 text into words, sentences or user-perceived
** characters with ICU4C break iterators (UAX #29, run directly over the
** UTF-8 bytes through UText), then applies post-rules that follow
** Universal Dependencies surface tokenisation:
**
**   - whitespace and control characters separate tokens and are dropped;
**     punctuation is its own token, but runs of sentence punctuation
**     ("...", "?!"), repeated symbols ("--", "**") and emoticons (":-)")
**     stay whole;
**   - numbers (3.14, 1,000, 12:30, 08/16/2000, 303-832-8160), URLs,
**     e-mail addresses, hyphenated words (counter-attack) and
**     abbreviations (e.g., U.S., Dr., etc.; single capital initials "M.")
**     stay whole;
**   - lang "en": clitics split off (don't -> do n't, can't -> ca n't,
**     won't -> wo n't, it's -> it 's, I'm, we're, they've, I'd, we'll);
**     as in UD English EWT, hyphenated words split (15 - year) except
**     after common prefixes (e-mail, non-human) and in digit groups
**     (303-832-8160), units split from numbers (39 K, 375 mm), and an
**     abbreviation's period that ends the line is its own token ("etc .");
**   - lang "it": elision splits after the apostrophe (l'amor -> l' amor,
**     dell'anima -> dell' anima, c'è, un'altra), and apocopes like po'
**     keep their apostrophe;
**   both the ASCII apostrophe ' and the typographic one ’ (U+2019) count.
**
** Use: nlp_tokenize_begin(t, line, n), then nlp_tokenize_next(t, &batch)
** until it returns 0.  A tokenizer is reusable; no memory is allocated per
** token, only when a longer line than any before arrives (and for case
** folding or normalising non-ASCII text).  Not thread-safe: use one
** tokenizer per thread.
*/
#ifndef NLP_TOKENIZE_H
#define NLP_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

#include "nlp/error.h"

/* What one token is. */
enum nlp_token_unit {
    NLP_TOKENIZE_WORD = 0,       /* words, numbers, punctuation (default) */
    NLP_TOKENIZE_SENTENCE = 1,   /* words, with sentence starts marked */
    NLP_TOKENIZE_CHAR = 2        /* grapheme clusters (UAX #29) */
};

/* Normalisation applied to the text before tokenizing. */
enum nlp_token_norm {
    NLP_TOKENIZE_NFC = 0,        /* canonical composition (default) */
    NLP_TOKENIZE_NFKC = 1,       /* compatibility composition */
    NLP_TOKENIZE_NONE = 2        /* text as given */
};

/* Options; set the defaults with nlp_tokenize_config_default. */
typedef struct nlp_tokenize_config {
    int unit;             /* NLP_TOKENIZE_WORD / _SENTENCE / _CHAR */
    int normalize;        /* NLP_TOKENIZE_NFC / _NFKC / _NONE */
    const char *lang;     /* "en", "it", another ICU locale name, or NULL
                             (no language rules); copied by _new */
    int lower;            /* 1: full Unicode case folding of each token */
    int no_punct;         /* 1: drop punctuation tokens (category P*) */
    int strict;           /* 1: invalid UTF-8 is an error (NLP_EUTF8);
                             0: each bad sequence becomes U+FFFD */
} nlp_tokenize_config;

/* Kinds of tokens. */
enum nlp_token_kind {
    NLP_TOKEN_WORD = 0,     /* letters (with marks, digits, joiners) */
    NLP_TOKEN_NUMBER = 1,   /* numbers, dates, times, phone numbers */
    NLP_TOKEN_PUNCT = 2,    /* punctuation (general category P*) */
    NLP_TOKEN_SYMBOL = 3,   /* symbols, emoji, U+FFFD, other */
    NLP_TOKEN_URL = 4,      /* URL (scheme:// or www.) */
    NLP_TOKEN_EMAIL = 5,    /* e-mail address */
    NLP_TOKEN_CHAR = 6      /* a grapheme cluster (unit char) */
};

/* Token flags. */
enum {
    NLP_TOKEN_SENT_START = 1 << 0   /* first token of a sentence (unit sentence;
                                       the first token of the text has it too) */
};

/* One token: bytes [start, start+len) of the batch's text.  Offsets are
** 32-bit: a text passed to nlp_tokenize_begin is below 2 GiB (ICU break
** iterators count in int32_t). */
typedef struct nlp_token {
    uint32_t start;   /* byte offset in nlp_tokens.text */
    uint32_t len;     /* length in bytes, > 0 */
    uint16_t kind;    /* enum nlp_token_kind */
    uint16_t flags;   /* NLP_TOKEN_* flags */
    uint32_t line;    /* 0-based line of the text the token is on (the
                         number of '\n' before it), for callers that pass
                         many lines at once */
} nlp_token;

/* One batch of tokens: views into the tokenizer, valid until its next call
** or nlp_tokenize_free. */
typedef struct nlp_tokens {
    const char *text;     /* the text the tokens index: the repaired and
                             normalised input, or with lower a buffer of the
                             batch's case-folded tokens */
    const nlp_token *tok; /* the tokens, in text order */
    size_t n;             /* number of tokens, > 0 */
} nlp_tokens;

typedef struct nlp_tokenizer nlp_tokenizer;

/* Fills o with the defaults: word unit, NFC, no language, no lower, keep
** punctuation, not strict. */
void nlp_tokenize_config_default(nlp_tokenize_config *o);

/*
** Creates a tokenizer with options o (NULL means the defaults).  Returns
** NLP_OK and stores it in *t, or NLP_EINVAL (bad option: unit, normalize,
** or a lang that is not a locale name like "en" or "pt_BR"), NLP_EICU (ICU
** could not open its break rules) or NLP_ENOMEM, with the reason in e (may
** be NULL); *t is then NULL.  Free with nlp_tokenize_free.
*/
int nlp_tokenize_new(nlp_tokenizer **t, const nlp_tokenize_config *o, nlp_error *e);

/* Frees t; NULL is a no-op. */
void nlp_tokenize_free(nlp_tokenizer *t);

/*
** Starts tokenizing s[0..n): one line, or many lines at once (faster:
** tokens never span a newline, sentences end at one, and each token's
** line field tells its line).  s may hold any bytes (NUL and other controls separate
** tokens and are dropped) and must stay unchanged until the last
** nlp_tokenize_next of this text.  Invalid UTF-8 is repaired (each bad
** sequence becomes U+FFFD, see nlp/utf8.h) unless the tokenizer is strict.
** Returns NLP_OK; NLP_EUTF8 in strict mode when s is not valid UTF-8 (e
** gets the 1-based byte column; nlp_tokenize_next then gives nothing);
** NLP_ERANGE when n >= 2^31; NLP_ENOMEM; NLP_EICU.  t stays usable after
** an error.
*/
int nlp_tokenize_begin(nlp_tokenizer *t, const char *s, size_t n, nlp_error *e);

/*
** Number of ill-formed sequences found by the last nlp_tokenize_begin
** (replaced by U+FFFD, or refused in strict mode); *first (may be NULL)
** receives the byte offset of the first one.
*/
size_t nlp_tokenize_invalid(const nlp_tokenizer *t, size_t *first);

/*
** Gives the next batch of tokens of the text started by
** nlp_tokenize_begin.  Batches hold up to a few thousand tokens, so memory
** does not grow with the number of tokens in a line.  Returns 1 with *out
** filled, 0 when the text has no more tokens, or NLP_ENOMEM / NLP_EICU.
*/
int nlp_tokenize_next(nlp_tokenizer *t, nlp_tokens *out);

/*
** Convenience for short texts: calls the function f(tok, len, flags, arg)
** for every token of s[0..n) in order (tok is not NUL-terminated and valid
** only during the call); stops early and returns f's value when it is not
** 0.  Otherwise returns NLP_OK or an error of nlp_tokenize_begin/_next.
*/
int nlp_tokenize_each(nlp_tokenizer *t, const char *s, size_t n,
                      int (*f)(const char *tok, size_t len, int flags, void *arg),
                      void *arg, nlp_error *e);

#endif
