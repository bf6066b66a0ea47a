/*
** tokenize: ICU break iterators + post-rules.  See nlp/tokenize.h.
**
** Flow for one text (usually a line):
**   begin: repair invalid UTF-8 (or refuse it), normalise (skipped when the
**          text is ASCII or needs no change), point ICU's UText at the
**          bytes: the break iterators then work on UTF-8 directly.
**   next:  pull word segments from ICU until a batch is full and ICU stands
**          on whitespace (every post-rule joins only touching tokens, so a
**          batch never ends inside something a rule would join), then run
**          the passes over the batch:
**            spans   URLs and e-mail addresses become single tokens
**            joins   hyphenated words, numbers with / : -, abbreviations,
**                    punctuation runs, emoticons, Italian po' and '93
**            splits  English clitics, Italian elision
**            finish  sentence starts, --no-punct, case folding
*/
#include "nlp/tokenize.h"
#include "nlp/alloc.h"
#include "nlp/utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ubrk.h>
#include <unicode/uchar.h>
#include <unicode/utext.h>

/* Tokens per batch: big enough to amortise the per-batch work, small
** enough to stay in cache.  A batch may grow to BATCH_HARD_MAX tokens while
** waiting for whitespace; beyond that it is cut anywhere (only a text with
** thousands of tokens and no space, where a join may then be missed). */
#define BATCH_TOKENS 4096
#define BATCH_HARD_MAX (16 * BATCH_TOKENS)

enum lang_rules { RULES_NONE, RULES_EN, RULES_IT };

/* A URL or e-mail address found in the text: bytes [start, end). */
typedef struct span {
    size_t start, end;
    int kind;
} span;

struct nlp_tokenizer {
    nlp_tokenize_config o;
    char lang[32];             /* copy of o.lang ("" for none) */
    int rules;                 /* enum lang_rules */
    UBreakIterator *bi;        /* word or character iterator */
    UBreakIterator *sbi;       /* sentence iterator (unit sentence) */
    UText *ut;                 /* UTF-8 view of the current text */

    const char *text;          /* current text (input, rbuf or nbuf) */
    size_t len;                /* its length */
    size_t n_invalid, first_invalid;
    char *rbuf;                /* repaired text */
    size_t rcap;
    char *nbuf;                /* normalised text */
    size_t ncap;
    int started;               /* begin succeeded, next may run */
    int done;                  /* ICU reached the end of the text */
    int32_t pos;               /* ICU position: start of the next segment */
    int32_t sent_next;         /* next sentence boundary not yet passed */
    int pending_start;         /* a dropped token started a sentence */
    int after_title;           /* the last token was a title: "Dr." */
    size_t line_pos;           /* newlines before this byte are counted in line */
    uint32_t line;             /* 0-based line of the text at line_pos */

    nlp_token *tok, *tok2;     /* the batch, and scratch for passes */
    size_t ntok, cap, cap2;
    span *spans;
    size_t nspans, spancap;
    char *fbuf;                /* case-folded tokens of the batch */
    size_t fcap, flen;
};

/* ---------------------------------------------------------------------
** Small helpers
*/

void nlp_tokenize_config_default(nlp_tokenize_config *o)
{
    memset(o, 0, sizeof *o);
    o->unit = NLP_TOKENIZE_WORD;
    o->normalize = NLP_TOKENIZE_NFC;
}

static int is_ascii_alpha(unsigned char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static int is_ascii_alnum(unsigned char c)
{
    return is_ascii_alpha(c) || (c >= '0' && c <= '9');
}

/* Code point at byte i of the text (valid UTF-8 by construction). */
static int32_t cp_at(const nlp_tokenizer *t, size_t i)
{
    int32_t cp;
    unsigned char c = (unsigned char)t->text[i];
    if (c < 0x80)
        return c;
    nlp_utf8_decode(t->text + i, t->len - i, &cp);
    return cp;
}

/* Code point ending at byte i (i > 0) of the text. */
static int32_t cp_before(const nlp_tokenizer *t, size_t i)
{
    size_t j = i - 1;
    while (j > 0 && ((unsigned char)t->text[j] & 0xC0) == 0x80)
        j--;
    return cp_at(t, j);
}

static int is_apostrophe(int32_t cp)
{
    return cp == '\'' || cp == 0x2019;   /* ' and RIGHT SINGLE QUOTATION MARK */
}

/* The token's only code point, or -1 when it holds more than one. */
static int32_t single_cp(const nlp_tokenizer *t, const nlp_token *k)
{
    if (k->len == 1)
        return (unsigned char)t->text[k->start] < 0x80 ? (unsigned char)t->text[k->start] : -1;
    if (k->len > 4)
        return -1;
    int32_t cp;
    int n = nlp_utf8_decode(t->text + k->start, k->len, &cp);
    return n > 0 && (uint32_t)n == k->len ? cp : -1;
}

static size_t tok_end(const nlp_token *k)
{
    return (size_t)k->start + k->len;
}

/* Case-insensitive ASCII comparison of the token with a word. */
static int tok_is(const nlp_tokenizer *t, const nlp_token *k, const char *w)
{
    size_t n = strlen(w);
    if (k->len != n)
        return 0;
    const char *s = t->text + k->start;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c | 0x20);
        if (c != (unsigned char)w[i])
            return 0;
    }
    return 1;
}

static int tok_in(const nlp_tokenizer *t, const nlp_token *k, const char *const *list)
{
    unsigned char c0 = (unsigned char)t->text[k->start];
    if (c0 >= 'A' && c0 <= 'Z')
        c0 = (unsigned char)(c0 | 0x20);
    for (; *list; list++)
        if ((unsigned char)(*list)[0] == c0 && tok_is(t, k, *list))
            return 1;
    return 0;
}

/* ---------------------------------------------------------------------
** Word lists (lower case; matched case-insensitively)
*/

/* Abbreviations that keep their final period.  Words that often end a
** sentence ("no", "us") are left out. */
static const char *const abbrev_en[] = {
    "mr", "mrs", "ms", "dr", "drs", "st", "sts", "jr", "sr", "prof", "rev", "hon",
    "gen", "gov", "sen", "rep", "capt", "col", "lt", "sgt", "cmdr", "adm", "maj",
    "inc", "corp", "ltd", "co", "llc", "bros", "pvt", "dept", "univ", "assn",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat",
    "etc", "ect", "vs", "viz", "approx", "ext", "est", "fig", "figs", "vol", "vols",
    "pp", "ave", "blvd", "rd", "mt", "ft", "ps", "cf", "al", "ca", "esp", NULL
};

static const char *const abbrev_it[] = {
    "sig", "sigg", "sigra", "dott", "dr", "prof", "avv", "ing", "arch", "geom", "rag",
    "on", "sen", "gen", "col", "cap", "mons", "sant", "ss", "spa", "srl",
    "ecc", "art", "artt", "es", "pag", "pagg", "cfr", "sec", "secc", "vol", "cap",
    "distr", "tel", "fig", "nr", "n", "v", "l", "p", "c", "ca", "gen", "feb", "mar",
    "apr", "giu", "lug", "ago", "set", "ott", "dic", NULL
};

/* Titles after which ICU's sentence iterator must not end a sentence
** (its own exception lists miss some: "Dr. Who"). */
static const char *const titles_en[] = {
    "mr", "mrs", "ms", "dr", "drs", "prof", "rev", "hon", "gen", "gov", "sen", "rep",
    "capt", "col", "lt", "sgt", "st", "mt", "messrs", NULL
};

static const char *const titles_it[] = {
    "sig", "sigg", "sigra", "dott", "dr", "prof", "avv", "ing", "on", "sen", "gen",
    "col", "mons", "sant", "arch", "geom", "rag", "art", "artt", "cap", NULL
};

/* Italian words that end in an apostrophe (apocope or elision before a
** non-letter): po', mo', be', E' (for È), l' before a digit, ... */
static const char *const apocope_it[] = {
    "po", "mo", "be", "ca", "e", "di", "fa", "va", "sta", "da", "to",
    "l", "dell", "all", "dall", "nell", "sull", "coll", "pell", "un", "quest", "quell",
    "c", "d", "s", "m", "t", "v", "n", "dov", "com", "anch", "cos", "mezz",
    "tutt", "bell", "sant", "nessun", "qual", "trent", "quarant", "cinquant",
    "sessant", "settant", "ottant", "novant", NULL
};

/* English clitics split off before the apostrophe: it 's, I 'm, ... */
static const char *const clitic_en[] = {"s", "m", "re", "ve", "d", "ll", NULL};

/* ---------------------------------------------------------------------
** Creation
*/

/* A locale name: 2-8 letters, then optional _XX/-XX parts of letters/digits. */
static int valid_locale(const char *s)
{
    size_t n = 0;
    while (is_ascii_alpha((unsigned char)s[n]))
        n++;
    if (n < 2 || n > 8)
        return 0;
    for (; s[n]; n++)
        if (!is_ascii_alnum((unsigned char)s[n]) && s[n] != '_' && s[n] != '-')
            return 0;
    return n < 24;
}

int nlp_tokenize_new(nlp_tokenizer **tp, const nlp_tokenize_config *o, nlp_error *e)
{
    nlp_tokenize_config def;
    *tp = NULL;
    if (!o) {
        nlp_tokenize_config_default(&def);
        o = &def;
    }
    if (o->unit < NLP_TOKENIZE_WORD || o->unit > NLP_TOKENIZE_CHAR)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "unknown token unit %d", o->unit);
    if (o->normalize < NLP_TOKENIZE_NFC || o->normalize > NLP_TOKENIZE_NONE)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "unknown normalisation %d", o->normalize);
    if (o->lang && o->lang[0] && !valid_locale(o->lang))
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "invalid language '%s'", o->lang);
    nlp_tokenizer *t = nlp_calloc(1, sizeof *t);
    if (!t)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    t->o = *o;
    if (o->lang)
        strcpy(t->lang, o->lang);
    t->o.lang = t->lang;
    if (strncmp(t->lang, "en", 2) == 0 && !is_ascii_alpha((unsigned char)t->lang[2]))
        t->rules = RULES_EN;
    else if (strncmp(t->lang, "it", 2) == 0 && !is_ascii_alpha((unsigned char)t->lang[2]))
        t->rules = RULES_IT;

    UErrorCode st = U_ZERO_ERROR;
    t->ut = utext_openUTF8(NULL, "", 0, &st);
    t->bi = ubrk_open(o->unit == NLP_TOKENIZE_CHAR ? UBRK_CHARACTER : UBRK_WORD,
                      t->lang, NULL, 0, &st);
    if (o->unit == NLP_TOKENIZE_SENTENCE && U_SUCCESS(st)) {
        /* "@ss=standard" turns on ICU's abbreviation suppressions
        ** ("Mr. Smith" is one sentence) where the locale has them. */
        char loc[64];
        snprintf(loc, sizeof loc, "%s@ss=standard", t->lang[0] ? t->lang : "en");
        t->sbi = ubrk_open(UBRK_SENTENCE, loc, NULL, 0, &st);
    }
    if (U_FAILURE(st)) {
        int rc = nlp_error_set(e, NLP_EICU, NULL, 0, "ICU break iterator: %s", u_errorName(st));
        nlp_tokenize_free(t);
        return rc;
    }
    *tp = t;
    return NLP_OK;
}

void nlp_tokenize_free(nlp_tokenizer *t)
{
    if (!t)
        return;
    if (t->bi)
        ubrk_close(t->bi);
    if (t->sbi)
        ubrk_close(t->sbi);
    if (t->ut)
        utext_close(t->ut);
    nlp_free(t->rbuf);
    nlp_free(t->nbuf);
    nlp_free(t->tok);
    nlp_free(t->tok2);
    nlp_free(t->spans);
    nlp_free(t->fbuf);
    nlp_free(t);
}

/* ---------------------------------------------------------------------
** Begin: repair, normalise, hand the bytes to ICU
*/

/* Length of the leading run of ASCII bytes. */
static size_t ascii_run(const char *s, size_t n)
{
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & UINT64_C(0x8080808080808080))
            break;
        i += 8;
    }
    while (i < n && (unsigned char)s[i] < 0x80)
        i++;
    return i;
}

/* Normalises s[0..n) into t->nbuf in pieces of about NORM_CHUNK bytes,
** each cut before an ASCII space or newline: a starter that composes with
** nothing before it, so normalising the pieces apart gives the same text,
** while utf8proc's temporary buffers (4 bytes per code point) stay small.
** Pieces that need no change are copied. */
#define NORM_CHUNK (64 * 1024)
static int normalize_chunked(nlp_tokenizer *t, const char *s, size_t n, int flags, size_t *outlen)
{
    size_t i = 0, o = 0;
    while (i < n) {
        size_t end = n;
        if (n - i > NORM_CHUNK) {
            end = i + NORM_CHUNK;
            while (end > i && s[end] != ' ' && s[end] != '\n')
                end--;
            if (end == i) {   /* no space in the piece: go on to the next one */
                end = i + NORM_CHUNK;
                while (end < n && s[end] != ' ' && s[end] != '\n')
                    end++;
            }
        }
        size_t m = end - i;
        if (nlp_utf8_map_is_identity(s + i, m, flags)) {
            if (nlp_grow((void **)&t->nbuf, &t->ncap, o + m, 1, 256))
                return NLP_ENOMEM;
            memcpy(t->nbuf + o, s + i, m);
            o += m;
        } else {
            char *p;
            size_t plen;
            int rc = nlp_utf8_map(s + i, m, flags, &p, &plen);
            if (rc != NLP_OK)
                return rc;
            if (nlp_grow((void **)&t->nbuf, &t->ncap, o + plen, 1, 256)) {
                nlp_free(p);
                return NLP_ENOMEM;
            }
            memcpy(t->nbuf + o, p, plen);
            nlp_free(p);
            o += plen;
        }
        i = end;
    }
    *outlen = o;
    return NLP_OK;
}

int nlp_tokenize_begin(nlp_tokenizer *t, const char *s, size_t n, nlp_error *e)
{
    t->started = 0;
    t->n_invalid = 0;
    t->first_invalid = n;
    if (n > INT32_MAX - 1)
        return nlp_error_set(e, NLP_ERANGE, NULL, 0, "text of %zu bytes is too long", n);
    int ascii = ascii_run(s, n) == n;
    if (!ascii && !nlp_utf8_is_valid(s, n)) {
        size_t outlen;
        int rc = nlp_utf8_repair(s, n, &t->rbuf, &t->rcap, &outlen, &t->n_invalid,
                                 &t->first_invalid);
        if (rc != NLP_OK)
            return nlp_error_set(e, rc, NULL, 0, NULL);
        if (t->o.strict) {
            nlp_error_set(e, NLP_EUTF8, NULL, 0, "invalid UTF-8");
            if (e)
                e->column = (long)t->first_invalid + 1;
            return NLP_EUTF8;
        }
        s = t->rbuf;
        n = outlen;
        if (n > INT32_MAX - 1)
            return nlp_error_set(e, NLP_ERANGE, NULL, 0, "text of %zu bytes is too long", n);
    }
    if (!ascii && t->o.normalize != NLP_TOKENIZE_NONE) {
        int flags = t->o.normalize == NLP_TOKENIZE_NFKC ? NLP_UTF8_NFKC : NLP_UTF8_NFC;
        if (!nlp_utf8_map_is_identity(s, n, flags)) {
            size_t outlen;
            int rc = normalize_chunked(t, s, n, flags, &outlen);
            if (rc != NLP_OK)
                return nlp_error_set(e, rc, NULL, 0, "normalisation failed");
            if (outlen > INT32_MAX - 1)
                return nlp_error_set(e, NLP_ERANGE, NULL, 0, "text of %zu bytes is too long", outlen);
            s = t->nbuf;
            n = outlen;
        }
    }
    t->text = s;
    t->len = n;
    UErrorCode st = U_ZERO_ERROR;
    t->ut = utext_openUTF8(t->ut, s, (int64_t)n, &st);
    ubrk_setUText(t->bi, t->ut, &st);
    if (t->sbi)
        ubrk_setUText(t->sbi, t->ut, &st);
    if (U_FAILURE(st))
        return nlp_error_set(e, NLP_EICU, NULL, 0, "ICU: %s", u_errorName(st));
    t->pos = ubrk_first(t->bi);
    t->sent_next = 0;
    t->pending_start = 0;
    t->after_title = 0;
    t->line_pos = 0;
    t->line = 0;
    t->done = 0;
    t->started = 1;
    return NLP_OK;
}

size_t nlp_tokenize_invalid(const nlp_tokenizer *t, size_t *first)
{
    if (first)
        *first = t->first_invalid;
    return t->n_invalid;
}

/* ---------------------------------------------------------------------
** Segments from ICU
*/

/* What a segment without word status is, by its first code point. */
enum { SEG_DROP = -1 };

/* ASCII classes: 0 separator (dropped), 1 punctuation (P*), 2 symbol (S*),
** 3 letter or digit. */
static const unsigned char ascii_classes[128] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* controls */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1,   /*  !"#$%&'()*+,-./ */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 2, 2, 2, 1,   /* 0-9 :;<=>? */
    1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,   /* @A-O */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 2, 1,   /* P-Z [\]^_ */
    2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,   /* `a-o */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 2, 1, 2, 0    /* p-z {|}~ DEL */
};

static int ascii_class(unsigned char c)
{
    return ascii_classes[c & 0x7F];
}

static int other_kind(int32_t cp)
{
    if (cp < 0x80) {
        static const int kinds[] = {SEG_DROP, NLP_TOKEN_PUNCT, NLP_TOKEN_SYMBOL, NLP_TOKEN_WORD};
        return kinds[ascii_class((unsigned char)cp)];
    }
    int8_t type = u_charType(cp);
    if (u_isUWhiteSpace(cp) || type == U_CONTROL_CHAR || type == U_FORMAT_CHAR)
        return SEG_DROP;
    return u_ispunct(cp) ? NLP_TOKEN_PUNCT : u_isalnum(cp) ? NLP_TOKEN_WORD : NLP_TOKEN_SYMBOL;
}

static inline int push(nlp_tokenizer *t, size_t start, size_t end, int kind)
{
    if (t->ntok == t->cap && nlp_grow((void **)&t->tok, &t->cap, t->ntok + 1, sizeof *t->tok, 256))
        return NLP_ENOMEM;
    nlp_token *k = &t->tok[t->ntok++];
    k->start = (uint32_t)start;
    k->len = (uint32_t)(end - start);
    k->kind = (uint16_t)kind;
    k->flags = 0;
    return NLP_OK;
}

/* Collects the next batch of raw segments; returns the end of the batch's
** text range (where the whitespace that stopped it begins, or the end). */
static int collect(nlp_tokenizer *t, size_t *range_end)
{
    UBreakIterator *bi = t->bi;
    int chars = t->o.unit == NLP_TOKENIZE_CHAR;
    int32_t prev = t->pos;
    t->ntok = 0;
    for (;;) {
        int32_t b = ubrk_next(bi);
        if (b == UBRK_DONE) {
            t->done = 1;
            *range_end = t->len;
            return NLP_OK;
        }
        int kind;
        unsigned char c0 = (unsigned char)t->text[prev];
        if (chars) {
            int32_t cp = c0 < 0x80 ? c0 : cp_at(t, (size_t)prev);
            kind = other_kind(cp);
            if (kind != SEG_DROP)
                kind = kind == NLP_TOKEN_PUNCT ? NLP_TOKEN_PUNCT : NLP_TOKEN_CHAR;
        } else {
            int32_t status = ubrk_getRuleStatus(bi);
            if (status >= UBRK_WORD_LETTER)
                kind = NLP_TOKEN_WORD;
            else if (status >= UBRK_WORD_NUMBER)
                kind = NLP_TOKEN_NUMBER;
            else
                kind = other_kind(c0 < 0x80 ? c0 : cp_at(t, (size_t)prev));
        }
        if (kind == SEG_DROP) {
            if (t->ntok >= BATCH_TOKENS) {
                t->pos = b;
                *range_end = (size_t)prev;
                return NLP_OK;
            }
        } else {
            if (push(t, (size_t)prev, (size_t)b, kind))
                return NLP_ENOMEM;
            if (t->ntok >= (chars ? BATCH_TOKENS : BATCH_HARD_MAX)) {
                t->pos = b;
                *range_end = (size_t)b;
                return NLP_OK;
            }
        }
        prev = b;
    }
}

/* ---------------------------------------------------------------------
** Pass: URLs and e-mail addresses
*/

/* Bytes that may appear in a URL (besides non-ASCII letters). */
static int url_byte(unsigned char c)
{
    return c >= 0x80 || (c > ' ' && c != '<' && c != '>' && c != '"' && c != 0x7F &&
                         c != '{' && c != '}' && c != '|' && c != '\\' && c != '^' && c != '`');
}

/* End of a URL that starts at i: runs over URL bytes, then gives back
** trailing punctuation and an unbalanced closing bracket. */
static size_t url_end(const nlp_tokenizer *t, size_t i)
{
    const unsigned char *s = (const unsigned char *)t->text;
    size_t j = i;
    int paren = 0, bracket = 0;
    while (j < t->len && url_byte(s[j])) {
        if (s[j] == '(')
            paren++;
        else if (s[j] == ')')
            paren--;
        else if (s[j] == '[')
            bracket++;
        else if (s[j] == ']')
            bracket--;
        j++;
    }
    while (j > i) {
        unsigned char c = s[j - 1];
        if (c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?' ||
            c == '\'' || c == '*') {
            j--;
        } else if (c == ')' && paren < 0) {
            paren++;
            j--;
        } else if (c == ']' && bracket < 0) {
            bracket++;
            j--;
        } else if (c >= 0x80 && j - i >= 3 && s[j - 3] == 0xE2 && s[j - 2] == 0x80 &&
                   (c == 0x99 || c == 0x9D || c == 0xA6)) {
            j -= 3;   /* ’ ” … */
        } else {
            break;
        }
    }
    return j;
}

static int email_local(unsigned char c)
{
    return is_ascii_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static int email_domain(unsigned char c)
{
    return is_ascii_alnum(c) || c == '.' || c == '-' || c == '_';
}

static int add_span(nlp_tokenizer *t, size_t a, size_t b, int kind)
{
    if (t->nspans == t->spancap &&
        nlp_grow((void **)&t->spans, &t->spancap, t->nspans + 1, sizeof *t->spans, 256))
        return NLP_ENOMEM;
    t->spans[t->nspans++] = (span){a, b, kind};
    return NLP_OK;
}

/* Finds URLs and addresses in text[lo..hi). */
static int find_spans(nlp_tokenizer *t, size_t lo, size_t hi)
{
    const unsigned char *s = (const unsigned char *)t->text;
    size_t floor = lo;   /* spans may not start before the previous one's end */
    t->nspans = 0;
    for (size_t i = lo; i < hi; i++) {
        size_t a = 0, b = 0;
        int kind = -1;
        if (s[i] == ':' && i + 3 < hi && s[i + 1] == '/' && s[i + 2] == '/' && url_byte(s[i + 3])) {
            a = i;
            while (a > floor && (is_ascii_alnum(s[a - 1]) || s[a - 1] == '+' || s[a - 1] == '-' ||
                                 s[a - 1] == '.'))
                a--;
            if (a < i && is_ascii_alpha(s[a])) {
                b = url_end(t, i + 3);
                kind = NLP_TOKEN_URL;
            }
        } else if ((s[i] | 0x20) == 'w' && i + 4 < hi && (s[i + 1] | 0x20) == 'w' &&
                   (s[i + 2] | 0x20) == 'w' && s[i + 3] == '.' && is_ascii_alnum(s[i + 4]) &&
                   (i == floor || !is_ascii_alnum(s[i - 1]))) {
            a = i;
            b = url_end(t, i + 4);
            kind = NLP_TOKEN_URL;
        } else if (s[i] == '@' && i + 1 < hi && is_ascii_alnum(s[i + 1])) {
            a = i;
            while (a > floor && email_local(s[a - 1]))
                a--;
            while (a < i && s[a] == '.')
                a++;
            b = i + 1;
            int dot = 0;
            while (b < hi && email_domain(s[b])) {
                dot |= s[b] == '.';
                b++;
            }
            while (b > i + 1 && (s[b - 1] == '.' || s[b - 1] == '-'))
                b--;
            /* user@host, user@host.org or @host.org; not a lone @name */
            if (a < i || (dot && memchr(s + i + 1, '.', b - i - 1)))
                kind = NLP_TOKEN_EMAIL;
        }
        if (kind >= 0 && b > a) {
            if (add_span(t, a, b, kind))
                return NLP_ENOMEM;
            floor = b;
            i = b - 1;
        }
    }
    return NLP_OK;
}

static int push2(nlp_tokenizer *t, size_t *w, size_t start, size_t end, int kind, int flags)
{
    if (*w == t->cap2 && nlp_grow((void **)&t->tok2, &t->cap2, *w + 1, sizeof *t->tok2, 256))
        return NLP_ENOMEM;
    t->tok2[*w] = (nlp_token){(uint32_t)start, (uint32_t)(end - start), (uint16_t)kind,
                              (uint16_t)flags, 0};
    (*w)++;
    return NLP_OK;
}

static void swap_tokens(nlp_tokenizer *t, size_t n)
{
    nlp_token *p = t->tok;
    size_t c = t->cap;
    t->tok = t->tok2;
    t->cap = t->cap2;
    t->tok2 = p;
    t->cap2 = c;
    t->ntok = n;
}

/* Replaces the tokens that overlap a span by the span. */
static int pass_spans(nlp_tokenizer *t, size_t lo, size_t hi)
{
    /* Most text has none: look for '@', "://" and "www." with memchr. */
    const char *s = t->text, *stop = t->text + hi;
    int maybe = memchr(s + lo, '@', hi - lo) != NULL;
    for (const char *p = s + lo; !maybe && (p = memchr(p, ':', (size_t)(stop - p))) != NULL; p++)
        maybe = p + 2 < stop && p[1] == '/' && p[2] == '/';
    for (const char *p = s + lo; !maybe && (p = memchr(p, '.', (size_t)(stop - p))) != NULL; p++)
        maybe = p - 3 >= s + lo && (p[-1] | 0x20) == 'w' && (p[-2] | 0x20) == 'w' &&
                (p[-3] | 0x20) == 'w';
    if (!maybe)
        return NLP_OK;
    if (find_spans(t, lo, hi))
        return NLP_ENOMEM;
    if (t->nspans == 0)
        return NLP_OK;
    size_t k = 0, w = 0;
    nlp_token *tok = t->tok;
    for (size_t j = 0; j < t->nspans; j++) {
        const span *sp = &t->spans[j];
        while (k < t->ntok && tok_end(&tok[k]) <= sp->start) {
            if (push2(t, &w, tok[k].start, tok_end(&tok[k]), tok[k].kind, 0))
                return NLP_ENOMEM;
            k++;
        }
        if (k < t->ntok && tok[k].start < sp->start &&
            push2(t, &w, tok[k].start, sp->start, tok[k].kind, 0))
            return NLP_ENOMEM;
        if (push2(t, &w, sp->start, sp->end, sp->kind, 0))
            return NLP_ENOMEM;
        while (k < t->ntok && tok_end(&tok[k]) <= sp->end)
            k++;
        if (k < t->ntok && tok[k].start < sp->end) {   /* keep the rest of a cut token */
            size_t end = tok_end(&tok[k]);
            tok[k].start = (uint32_t)sp->end;
            tok[k].len = (uint32_t)(end - sp->end);
        }
    }
    for (; k < t->ntok; k++)
        if (push2(t, &w, tok[k].start, tok_end(&tok[k]), tok[k].kind, 0))
            return NLP_ENOMEM;
    swap_tokens(t, w);
    return NLP_OK;
}

/* ---------------------------------------------------------------------
** Pass: joins (in place; the batch only shrinks)
*/

/* A word that keeps a following period: U.S, e.g, a.m (letters in groups
** of at most three joined by periods), a capital initial, or a listed
** abbreviation of the language. */
static int is_abbrev(const nlp_tokenizer *t, const nlp_token *word)
{
    nlp_token tail = *word;
    const nlp_token *k = &tail;
    if (t->rules == RULES_IT) {
        /* dell'art. -> the part after the elision */
        const char *s0 = t->text + word->start;
        for (size_t i = word->len; i-- > 0;) {
            if (s0[i] == '\'' || (i >= 2 && memcmp(s0 + i - 2, "\xE2\x80\x99", 3) == 0)) {
                tail.start = word->start + (uint32_t)i + 1;
                tail.len = word->len - (uint32_t)i - 1;
                break;
            }
        }
        if (tail.len == 0)
            return 0;
    }
    const unsigned char *s = (const unsigned char *)t->text + k->start;
    size_t n = k->len, run = 0;
    int dots = 0, ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        if (is_ascii_alpha(s[i])) {
            ok = ++run <= 3;
        } else if (s[i] == '.' && run > 0) {
            run = 0;
            dots++;
        } else {
            ok = 0;
        }
    }
    if (ok && dots > 0 && run > 0)
        return 1;
    if (n == 1 && s[0] >= 'A' && s[0] <= 'Z')
        return 1;
    if (t->rules == RULES_EN)
        return tok_in(t, k, abbrev_en);
    if (t->rules == RULES_IT)
        return tok_in(t, k, abbrev_it);
    return 0;
}

static int is_sentence_punct(int32_t cp)
{
    return cp == '.' || cp == '!' || cp == '?';
}

/* Characters that form one token when repeated: -- ** == << >> ... */
static int repeat_joins(int32_t cp)
{
    return cp == '-' || cp == '=' || cp == '*' || cp == '#' || cp == '~' || cp == '_' ||
           cp == '<' || cp == '>' || cp == '$' || cp == '+' || cp == '/' || cp == '\\' ||
           cp == '^' || cp == 0x2013 || cp == 0x2014;   /* – — */
}

/* What the token before (a, in join) is a run of.  pass_joins keeps it up
** to date as a grows, scanning only the bytes each join adds: rescanning a
** whole growing run at every join (a line of 64 KiB of '*') is quadratic. */
typedef struct run_state {
    int32_t cp;    /* the one code point a repeats, or -1 */
    int punct;     /* a holds only . ! ? */
    int dash_eq;   /* a holds only - and = */
} run_state;

/* Narrows rs to the bytes [i, end) that a gains; i is at a code point
** boundary (the text is valid UTF-8, tokens start at code points).  Each
** property, once false, stays false: no byte is read for it again. */
static void run_extend(const nlp_tokenizer *t, run_state *rs, size_t i, size_t end)
{
    const char *s = t->text;
    for (size_t j = i; rs->cp >= 0 && j < end;) {
        int32_t c;
        int m = nlp_utf8_decode(s + j, end - j, &c);
        if (m <= 0 || c != rs->cp)
            rs->cp = -1;
        else
            j += (size_t)m;
    }
    for (size_t j = i; rs->punct && j < end; j++)
        rs->punct = is_sentence_punct((unsigned char)s[j]);
    for (size_t j = i; rs->dash_eq && j < end; j++)
        rs->dash_eq = s[j] == '-' || s[j] == '=';
}

/* rs for the (non-empty) token k alone. */
static void run_start(const nlp_tokenizer *t, run_state *rs, const nlp_token *k)
{
    int32_t c;
    int m = nlp_utf8_decode(t->text + k->start, k->len, &c);
    rs->cp = m > 0 ? c : -1;
    rs->punct = 1;
    rs->dash_eq = 1;
    run_extend(t, rs, k->start, tok_end(k));
}

/* Whitespace, a control character or the end of the text at byte i. */
static int is_sep_at(const nlp_tokenizer *t, size_t i)
{
    return i >= t->len || other_kind(cp_at(t, i)) == SEG_DROP;
}

/* Whitespace, a control character or the start of the text before byte i. */
static int is_sep_before(const nlp_tokenizer *t, size_t i)
{
    return i == 0 || other_kind(cp_before(t, i)) == SEG_DROP;
}

/* English words before a hyphen that stay joined: e-mail, non-human,
** re-wording (EWT splits other hyphenated words: 15 - year). */
static const char *const hyphen_prefix_en[] = {
    "e", "anti", "counter", "mis", "non", "over", "re", "semi", "vice", "co", "pre",
    "ex", "multi", "pro", "inter", "mid", "sub", "super", "ultra", "mini", "micro",
    "bi", "tri", "de", "un", "utf", NULL
};

/* File name extensions that stay with their period: .doc, report.pdf. */
static const char *const extensions[] = {
    "doc", "docx", "pdf", "txt", "xls", "xlsx", "ppt", "pptx", "jpg", "jpeg", "gif",
    "png", "htm", "html", "exe", "zip", "mp3", "mp4", "avi", "wav", "csv", "xml",
    "com", "net", "org", "edu", "gov", NULL
};

/* Units split from the number before them: 39K -> 39 K, 375mm -> 375 mm. */
static const char *const units_en[] = {
    "k", "mm", "cm", "km", "kg", "gb", "mb", "kb", "tb", "hr", "hrs", "min", "mins",
    "p", "pm", "am", "x", "lb", "lbs", "oz", "mph", "ghz", "mhz", "day", NULL
};

static int is_hyphen(int32_t cp)
{
    return cp == '-' || cp == 0x2010 || cp == 0x2011;   /* - ‐ ‑ */
}

static int is_alnum_kind(const nlp_token *k)
{
    return k->kind == NLP_TOKEN_WORD || k->kind == NLP_TOKEN_NUMBER;
}

/* Only whitespace from byte i to the end of the line. */
static int only_space_after(const nlp_tokenizer *t, size_t i)
{
    while (i < t->len && t->text[i] != '\n') {
        if (other_kind(cp_at(t, i)) != SEG_DROP)
            return 0;
        i += (unsigned char)t->text[i] < 0x80 ? 1 : 1 + ((unsigned char)t->text[i] >= 0xE0) +
                                                    ((unsigned char)t->text[i] >= 0xF0);
    }
    return 1;
}

static int is_emoticon_mouth(int32_t cp)
{
    return cp == ')' || cp == '(' || cp == 'P' || cp == 'p' || cp == 'D' || cp == '?' ||
           cp == '/' || cp == '|';
}

/* Two digits, maybe followed by s: the 93 of '93, the 90s of '90s. */
static int is_decade(const nlp_tokenizer *t, const nlp_token *k)
{
    const char *s = t->text + k->start;
    return (k->len == 2 || (k->len == 3 && s[2] == 's')) &&
           s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9';
}

/* Joins that read the token before, a (the last one kept; rs says what it
** is a run of), and the tokens from tok[r] on (b, c, d, e, when present).
** Returns how many of them to absorb into a (0 = none), and may set *kind
** for the joined token. */
static int join(const nlp_tokenizer *t, const nlp_token *a, const run_state *rs,
                const nlp_token *tok, size_t r, size_t n, int *kind)
{
    const nlp_token *b = &tok[r];
    if (tok_end(a) != b->start)
        return 0;
    const nlp_token *c = r + 1 < n && tok_end(b) == tok[r + 1].start ? &tok[r + 1] : NULL;
    const nlp_token *d = c && r + 2 < n && tok_end(c) == tok[r + 2].start ? &tok[r + 2] : NULL;
    const nlp_token *e = d && r + 3 < n && tok_end(d) == tok[r + 3].start ? &tok[r + 3] : NULL;
    int32_t bc = single_cp(t, b);
    int32_t ac = single_cp(t, a);
    int en = t->rules == RULES_EN;

    if (is_alnum_kind(a) && c && is_alnum_kind(c)) {
        /* hyphenated words; in English only prefixes and number groups
        ** (303-832-8160), as EWT */
        if (is_hyphen(bc)) {
            if (!en)
                return 2;
            if (a->kind == NLP_TOKEN_NUMBER && c->kind == NLP_TOKEN_NUMBER && c->len >= 3)
                return 2;
            if (a->kind == NLP_TOKEN_WORD && tok_in(t, a, hyphen_prefix_en))
                return 2;
        }
        /* 12:30, 12:30:45 */
        if (bc == ':' && a->kind == NLP_TOKEN_NUMBER && c->kind == NLP_TOKEN_NUMBER)
            return 2;
        /* dates 08/16/2000 (a second slash already joined or to come) */
        if (bc == '/' && a->kind == NLP_TOKEN_NUMBER && c->kind == NLP_TOKEN_NUMBER &&
            (memchr(t->text + a->start, '/', a->len) ||
             (d && e && single_cp(t, d) == '/' && e->kind == NLP_TOKEN_NUMBER)))
            return 2;
        /* b/c w/o */
        if (bc == '/' && a->len == 1 && c->len == 1 && is_ascii_alpha((unsigned char)t->text[a->start]) &&
            ((t->text[a->start] == 'b' && t->text[c->start] == 'c') ||
             (t->text[a->start] == 'w' && t->text[c->start] == 'o')))
            return 2;
    }
    /* w/ */
    if (bc == '/' && a->len == 1 && t->text[a->start] == 'w' && !c && is_sep_at(t, tok_end(b)) &&
        is_sep_before(t, a->start))
        return 1;
    /* U.S. Dr. etc. M.; in English not the period that ends the text
    ** (EWT: "in the U.S ." but "Inc. .") */
    if (a->kind == NLP_TOKEN_WORD && bc == '.' && is_abbrev(t, a) &&
        !(en && !c && only_space_after(t, tok_end(b))))
        return 1;
    /* .doc report.pdf */
    if (bc == '.' && !is_hyphen(ac) && c && c->kind == NLP_TOKEN_WORD && tok_in(t, c, extensions) &&
        (tok_end(c) >= t->len || !u_isalnum(cp_at(t, tok_end(c))))) {
        if (is_alnum_kind(a)) {
            *kind = NLP_TOKEN_WORD;
            return 2;
        }
    }
    /* ... ?! !!! -- ==== ----== */
    if ((a->kind == NLP_TOKEN_PUNCT || a->kind == NLP_TOKEN_SYMBOL) && bc >= 0) {
        if (is_sentence_punct(bc) && rs->punct && !(bc != '.' && a->len >= 3 && rs->cp == '.'))
            return 1;
        if (repeat_joins(bc) && rs->cp == bc)
            return 1;
        if ((bc == '-' || bc == '=') && rs->dash_eq)
            return 1;
    }
    if (is_sep_before(t, a->start)) {
        /* :) :( :-) ;) :P :? as whole words */
        if ((ac == ':' || ac == ';') && is_emoticon_mouth(bc) &&
            (c ? single_cp(t, c) == ')' || is_sentence_punct(single_cp(t, c)) : 1))
            return 1;
        if ((ac == ':' || ac == ';') && bc == '-' && c && is_emoticon_mouth(single_cp(t, c)))
            return 2;
        /* #hashtag, +1 */
        if (ac == '#' && b->kind == NLP_TOKEN_WORD)
            return 1;
        if (ac == '+' && b->kind == NLP_TOKEN_NUMBER) {
            *kind = NLP_TOKEN_NUMBER;
            return 1;
        }
        /* '93 '90: an apostrophe for the century */
        if (is_apostrophe(ac) && is_alnum_kind(b) && is_decade(t, b) &&
            (tok_end(b) >= t->len || !u_isalnum(cp_at(t, tok_end(b))))) {
            *kind = NLP_TOKEN_NUMBER;
            return 1;
        }
    }
    /* 70's 12's */
    if (en && a->kind == NLP_TOKEN_NUMBER && is_apostrophe(bc) && c && c->len == 1 &&
        (t->text[c->start] | 0x20) == 's') {
        *kind = NLP_TOKEN_NUMBER;
        return 2;
    }
    /* U+FFFD (a repaired byte) stays inside the word it interrupts: caf\xE9s */
    if (bc == NLP_UTF8_REPLACEMENT && (is_alnum_kind(a) || rs->cp == NLP_UTF8_REPLACEMENT))
        return 1;
    if (is_alnum_kind(b) && cp_before(t, tok_end(a)) == NLP_UTF8_REPLACEMENT &&
        (is_alnum_kind(a) || rs->cp == NLP_UTF8_REPLACEMENT)) {
        *kind = NLP_TOKEN_WORD;
        return 1;
    }
    /* po' E' l'8: a word that keeps its apostrophe */
    if (t->rules == RULES_IT && a->kind == NLP_TOKEN_WORD && is_apostrophe(bc) &&
        tok_in(t, a, apocope_it))
        return 1;
    return 0;
}

static void pass_joins(nlp_tokenizer *t)
{
    nlp_token *tok = t->tok;
    size_t n = t->ntok, w = 0;
    run_state rs = { -1, 0, 0 };   /* of tok[w - 1] */
    for (size_t r = 0; r < n; r++) {
        if (w > 0) {
            nlp_token *a = &tok[w - 1];
            int kind = -1;
            int absorb = join(t, a, &rs, tok, r, n, &kind);
            if (absorb > 0) {
                const nlp_token *last = &tok[r + (size_t)absorb - 1];
                if (kind < 0)
                    kind = a->kind == NLP_TOKEN_NUMBER && last->kind == NLP_TOKEN_WORD ?
                           NLP_TOKEN_WORD : a->kind;
                size_t old_end = tok_end(a);
                a->len = (uint32_t)(tok_end(last) - a->start);
                a->kind = (uint16_t)kind;
                run_extend(t, &rs, old_end, tok_end(a));
                r += (size_t)absorb - 1;
                continue;
            }
        }
        tok[w++] = tok[r];
        run_start(t, &rs, &tok[w - 1]);
    }
    t->ntok = w;
}

/* ---------------------------------------------------------------------
** Pass: language splits
*/

/* English: n't, 's, 'm, 're, 've, 'd, 'll at the end of a word.  Returns
** the split offset inside the token, or 0. */
static size_t split_en(const nlp_tokenizer *t, const nlp_token *k)
{
    const char *s = t->text + k->start;
    size_t n = k->len;
    /* find the last apostrophe */
    size_t a = n;
    int alen = 0;
    for (size_t i = n; i-- > 1;) {
        if (s[i] == '\'') {
            a = i;
            alen = 1;
            break;
        }
        if (i >= 2 && (unsigned char)s[i - 2] == 0xE2 && (unsigned char)s[i - 1] == 0x80 &&
            (unsigned char)s[i] == 0x99) {
            a = i - 2;
            alen = 3;
            break;
        }
    }
    if (a == n || a == 0)
        return 0;
    nlp_token suffix = {k->start + (uint32_t)a + (uint32_t)alen,
                        k->len - (uint32_t)a - (uint32_t)alen, 0, 0, 0};
    if (suffix.len == 1 && (s[n - 1] | 0x20) == 't' && a >= 2 && (s[a - 1] | 0x20) == 'n')
        return a - 1;                       /* do|n't ca|n't wo|n't */
    if (suffix.len > 0 && suffix.len <= 2 && tok_in(t, &suffix, clitic_en))
        return a;                           /* it|'s I|'m we|'re */
    return 0;
}

/* English: 39K -> 39 K, 375mm -> 375 mm (a listed unit, in lower case or
** K), alot -> a lot.  Returns the split offset inside the token, or 0. */
static size_t split_unit(const nlp_tokenizer *t, const nlp_token *k)
{
    const char *s = t->text + k->start;
    size_t i = 0;
    if (tok_is(t, k, "alot"))
        return 1;
    while (i < k->len && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == 0 || i == k->len)
        return 0;
    nlp_token unit = {k->start + (uint32_t)i, k->len - (uint32_t)i, 0, 0, 0};
    if (unit.len == 1 && s[i] == 'K')
        return i;
    for (size_t j = i; j < k->len; j++)
        if (s[j] < 'a' || s[j] > 'z')
            return 0;
    return tok_in(t, &unit, units_en) ? i : 0;
}

/* The next apostrophe (' or ’) at or after byte i of text[..hi), or hi. */
static size_t next_apostrophe(const nlp_tokenizer *t, size_t i, size_t hi)
{
    const char *s = t->text;
    const char *a = i < hi ? memchr(s + i, '\'', hi - i) : NULL;
    size_t lim = a ? (size_t)(a - s) : hi;
    for (const char *p = s + i; p < s + lim && (p = memchr(p, 0xE2, (size_t)(s + lim - p))) != NULL;
         p++)
        if (p + 2 < s + hi && (unsigned char)p[1] == 0x80 && (unsigned char)p[2] == 0x99)
            return (size_t)(p - s);
    return lim;
}

/* The cuts a language rule makes inside token k (at most MAX_CUTS offsets
** into the text, increasing); returns their number. */
#define MAX_CUTS 8
static int token_cuts(const nlp_tokenizer *t, const nlp_token *k, int has_apostrophe,
                      size_t cuts[MAX_CUTS])
{
    size_t start = k->start, end = tok_end(k);
    int n = 0;
    if (t->rules == RULES_EN) {
        size_t cut = k->kind == NLP_TOKEN_WORD && has_apostrophe ? split_en(t, k) : 0;
        if (cut == 0)
            cut = split_unit(t, k);
        if (cut > 0)
            cuts[n++] = start + cut;
    } else if (t->rules == RULES_IT && k->kind == NLP_TOKEN_WORD && has_apostrophe) {
        /* l'amor -> l' amor; dell'all'altra -> dell' all' altra */
        for (size_t i = start + 1; i + 1 < end && n < MAX_CUTS; i++) {
            size_t alen = t->text[i] == '\'' ? 1 :
                          (i + 3 < end && memcmp(t->text + i, "\xE2\x80\x99", 3) == 0) ? 3 : 0;
            if (alen == 0)
                continue;
            cuts[n++] = i + alen;
            i += alen - 1;
        }
    }
    return n;
}

/* Splits tokens by the language rules.  Candidates are found cheaply
** (apostrophes by memchr over the batch text; in English also tokens that
** start with a digit, or "alot"), and the batch is copied only from the
** first split on, in runs. */
static int pass_splits(nlp_tokenizer *t, size_t lo, size_t hi)
{
    size_t n = t->ntok, w = 0, copied = 0;   /* tok[0..copied) are in tok2[0..w) */
    size_t ap = next_apostrophe(t, lo, hi);
    int en = t->rules == RULES_EN;
    for (size_t r = 0; r < n; r++) {
        const nlp_token *k = &t->tok[r];
        if (!is_alnum_kind(k))
            continue;
        while (ap < k->start)
            ap = next_apostrophe(t, ap + 1, hi);
        int has_ap = ap < tok_end(k);
        if (!has_ap) {
            const unsigned char *s = (const unsigned char *)t->text + k->start;
            if (!en || !((s[0] >= '0' && s[0] <= '9' && is_ascii_alpha(s[k->len - 1])) ||
                         (k->len == 4 && (s[0] | 0x20) == 'a')))
                continue;
        }
        size_t cuts[MAX_CUTS];
        int nc = token_cuts(t, k, has_ap, cuts);
        if (nc == 0)
            continue;
        /* copy the unchanged run before this token, then the pieces */
        size_t run = r - copied;
        if (nlp_grow((void **)&t->tok2, &t->cap2, w + run + (size_t)nc + 1, sizeof *t->tok2, 256))
            return NLP_ENOMEM;
        memcpy(t->tok2 + w, t->tok + copied, run * sizeof *t->tok);
        w += run;
        size_t start = k->start;
        for (int c = 0; c <= nc; c++) {
            size_t stop = c < nc ? cuts[c] : tok_end(k);
            t->tok2[w++] = (nlp_token){(uint32_t)start, (uint32_t)(stop - start), k->kind, 0, 0};
            start = stop;
        }
        copied = r + 1;
    }
    if (copied == 0)
        return NLP_OK;   /* nothing split: no copy */
    size_t run = n - copied;
    if (nlp_grow((void **)&t->tok2, &t->cap2, w + run, sizeof *t->tok2, 256))
        return NLP_ENOMEM;
    memcpy(t->tok2 + w, t->tok + copied, run * sizeof *t->tok);
    swap_tokens(t, w + run);
    return NLP_OK;
}

/* ---------------------------------------------------------------------
** Pass: sentence starts, dropping punctuation, case folding
*/

/* A title such as "Dr." or a capital initial "M." (with its period). */
static int is_title(const nlp_tokenizer *t, const nlp_token *k)
{
    if (k->len < 2 || t->text[k->start + k->len - 1] != '.')
        return 0;
    nlp_token w = *k;
    w.len--;
    if (w.len == 1 && t->text[w.start] >= 'A' && t->text[w.start] <= 'Z')
        return 1;
    return (t->rules == RULES_EN && tok_in(t, &w, titles_en)) ||
           (t->rules == RULES_IT && tok_in(t, &w, titles_it));
}

static int pass_finish(nlp_tokenizer *t)
{
    size_t w = 0;
    int fold = t->o.lower;
    int fold_flags = NLP_UTF8_CASEFOLD |
                     (t->o.normalize == NLP_TOKENIZE_NFKC ? NLP_UTF8_NFKC :
                      t->o.normalize == NLP_TOKENIZE_NFC ? NLP_UTF8_NFC : 0);
    t->flen = 0;
    for (size_t r = 0; r < t->ntok; r++) {
        nlp_token k = t->tok[r];
        for (size_t p = t->line_pos; p < k.start; p++)
            t->line += t->text[p] == '\n';
        t->line_pos = tok_end(&k);
        k.line = t->line;
        if (t->sbi) {
            if ((int32_t)k.start >= t->sent_next) {
                if (!t->after_title)
                    k.flags |= NLP_TOKEN_SENT_START;
                t->sent_next = ubrk_following(t->sbi, (int32_t)k.start);
                if (t->sent_next == UBRK_DONE)
                    t->sent_next = INT32_MAX;
            }
            t->after_title = is_title(t, &k);
        }
        if (t->o.no_punct && k.kind == NLP_TOKEN_PUNCT) {
            t->pending_start |= k.flags & NLP_TOKEN_SENT_START;
            continue;
        }
        if (t->pending_start) {
            k.flags |= NLP_TOKEN_SENT_START;
            t->pending_start = 0;
        }
        if (fold) {
            const char *s = t->text + k.start;
            size_t ascii = ascii_run(s, k.len);
            if (nlp_grow((void **)&t->fbuf, &t->fcap, t->flen + k.len, 1, 256))
                return NLP_ENOMEM;
            if (ascii == k.len) {
                char *o = t->fbuf + t->flen;
                for (size_t i = 0; i < k.len; i++) {
                    unsigned char c = (unsigned char)s[i];
                    o[i] = (char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
                }
                k.start = (uint32_t)t->flen;
                t->flen += k.len;
            } else {
                char *m;
                size_t mlen;
                int rc = nlp_utf8_map(s, k.len, fold_flags, &m, &mlen);
                if (rc != NLP_OK)
                    return rc;
                if (mlen == 0 || nlp_grow((void **)&t->fbuf, &t->fcap, t->flen + mlen, 1, 256)) {
                    nlp_free(m);
                    if (mlen == 0)
                        continue;   /* folded to nothing: cannot happen, be safe */
                    return NLP_ENOMEM;
                }
                memcpy(t->fbuf + t->flen, m, mlen);
                nlp_free(m);
                k.start = (uint32_t)t->flen;
                k.len = (uint32_t)mlen;
                t->flen += mlen;
            }
        }
        t->tok[w++] = k;
    }
    t->ntok = w;
    return NLP_OK;
}

int nlp_tokenize_next(nlp_tokenizer *t, nlp_tokens *out)
{
    while (t->started && !t->done) {
        size_t lo = (size_t)t->pos, hi;
        if (collect(t, &hi))
            return NLP_ENOMEM;
        if (t->ntok == 0)
            continue;
        if (t->o.unit != NLP_TOKENIZE_CHAR) {
            if (pass_spans(t, lo, hi))
                return NLP_ENOMEM;
            pass_joins(t);
            if (t->rules != RULES_NONE && pass_splits(t, lo, hi))
                return NLP_ENOMEM;
        }
        int rc = pass_finish(t);
        if (rc != NLP_OK)
            return rc;
        if (t->ntok == 0)
            continue;
        out->text = t->o.lower ? t->fbuf : t->text;
        out->tok = t->tok;
        out->n = t->ntok;
        return 1;
    }
    return 0;
}

int nlp_tokenize_each(nlp_tokenizer *t, const char *s, size_t n,
                      int (*f)(const char *tok, size_t len, int flags, void *arg),
                      void *arg, nlp_error *e)
{
    int rc = nlp_tokenize_begin(t, s, n, e);
    if (rc != NLP_OK)
        return rc;
    nlp_tokens b;
    while ((rc = nlp_tokenize_next(t, &b)) == 1) {
        for (size_t i = 0; i < b.n; i++) {
            int r = f(b.text + b.tok[i].start, b.tok[i].len, b.tok[i].flags, arg);
            if (r != 0)
                return r;
        }
    }
    if (rc < 0)
        return nlp_error_set(e, rc, NULL, 0, NULL);
    return NLP_OK;
}
