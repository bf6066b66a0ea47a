/*
** utf8: decoding, validation/repair, normalisation, case folding.
** See nlp/utf8.h for the contracts and the maximal-subpart rule.
*/
#include "nlp/utf8.h"
#include "nlp/alloc.h"
#include "nlp/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* Bytes 80..BF are the only continuation bytes (Unicode table 3-7). */
#define IS_CONT(b) (((b) & 0xC0u) == 0x80u)

/* ---------------------------------------------------------------------
** Decoding
*/

int nlp_utf8_decode(const char *str, size_t n, int32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    int32_t dummy;
    if (!cp)
        cp = &dummy;
    if (n == 0) {
        *cp = 0;
        return 0;
    }
    unsigned b0 = s[0];
    if (b0 < 0x80) {
        *cp = (int32_t)b0;
        return 1;
    }
    /* Lead byte: sequence length and the allowed range of the 2nd byte
    ** (table 3-7 narrows it for E0, ED, F0 and F4 to exclude overlong
    ** forms, surrogates and values above U+10FFFF). */
    int len;
    unsigned lo = 0x80, hi = 0xBF;
    int32_t v;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
        v = (int32_t)(b0 & 0x1F);
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        v = (int32_t)(b0 & 0x0F);
        if (b0 == 0xE0)
            lo = 0xA0;
        else if (b0 == 0xED)
            hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        v = (int32_t)(b0 & 0x07);
        if (b0 == 0xF0)
            lo = 0x90;
        else if (b0 == 0xF4)
            hi = 0x8F;
    } else {
        /* 80..BF stray continuation, C0/C1 always overlong, F5..FF never used. */
        *cp = NLP_UTF8_REPLACEMENT;
        return -1;
    }
    if (n < 2 || s[1] < lo || s[1] > hi) {
        *cp = NLP_UTF8_REPLACEMENT;
        return -1;
    }
    v = (v << 6) | (int32_t)(s[1] & 0x3F);
    for (int i = 2; i < len; i++) {
        if ((size_t)i >= n || !IS_CONT(s[i])) {
            *cp = NLP_UTF8_REPLACEMENT;
            return -i;          /* the maximal subpart is s[0..i) */
        }
        v = (v << 6) | (int32_t)(s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

size_t nlp_utf8_encode(int32_t cp, char out[4])
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0)
        return 0;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            return 0;
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp <= NLP_UTF8_MAX_CP) {
        o[0] = (unsigned char)(0xF0 | (cp >> 18));
        o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (unsigned char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

/* ---------------------------------------------------------------------
** Validation and repair
*/

/* Length of the leading run of ASCII bytes, eight at a time. */
static size_t ascii_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & UINT64_C(0x8080808080808080))
            break;
        i += 8;
    }
    while (i < n && s[i] < 0x80)
        i++;
    return i;
}

size_t nlp_utf8_valid_prefix(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        i += ascii_prefix(s + i, n - i);
        if (i >= n)
            break;
        int k = nlp_utf8_decode(str + i, n - i, NULL);
        if (k < 0)
            return i;
        i += (size_t)k;
    }
    return n;
}

int nlp_utf8_is_valid(const char *s, size_t n)
{
    return nlp_utf8_valid_prefix(s, n) == n;
}

size_t nlp_utf8_length(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, count = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
        } else {
            int k = nlp_utf8_decode(str + i, n - i, NULL);
            i += (size_t)(k < 0 ? -k : k);
        }
        count++;
    }
    return count;
}

/* Makes *buf hold at least need bytes; keeps it valid on failure. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (*buf && *cap >= need)
        return NLP_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return NLP_ENOMEM;
        c *= 2;
    }
    char *p = nlp_realloc(*buf, c);
    if (!p)
        return NLP_ENOMEM;
    *buf = p;
    *cap = c;
    return NLP_OK;
}

int nlp_utf8_repair(const char *s, size_t n, char **buf, size_t *cap,
                    size_t *outlen, size_t *nbad, size_t *first_bad)
{
    size_t bad = 0, first = n;
    size_t valid = nlp_utf8_valid_prefix(s, n);
    /* A replacement (3 bytes) never replaces fewer than 1 byte: 3n + 1
    ** bounds the output.  Valid input needs only n + 1. */
    size_t need = valid == n ? n + 1 : (n > (SIZE_MAX - 1) / 3 ? SIZE_MAX : 3 * n + 1);
    if (need == SIZE_MAX)
        return NLP_ENOMEM;
    int rc = reserve(buf, cap, need);
    if (rc != NLP_OK)
        return rc;
    char *o = *buf;
    memcpy(o, s, valid);
    size_t j = valid, i = valid;
    while (i < n) {
        int k = nlp_utf8_decode(s + i, n - i, NULL);
        if (k > 0) {
            memcpy(o + j, s + i, (size_t)k);
            j += (size_t)k;
            i += (size_t)k;
            continue;
        }
        if (bad++ == 0)
            first = i;
        o[j++] = (char)0xEF;
        o[j++] = (char)0xBF;
        o[j++] = (char)0xBD;
        i += (size_t)-k;
    }
    o[j] = '\0';
    if (outlen)
        *outlen = j;
    if (nbad)
        *nbad = bad;
    if (first_bad)
        *first_bad = first;
    return NLP_OK;
}

/* ---------------------------------------------------------------------
** Normalisation and case folding (utf8proc)
*/

static int map_options(int flags, utf8proc_option_t *opt)
{
    if ((flags & ~(NLP_UTF8_NFC | NLP_UTF8_NFKC | NLP_UTF8_CASEFOLD)) != 0 ||
        ((flags & NLP_UTF8_NFC) && (flags & NLP_UTF8_NFKC)))
        return NLP_EINVAL;
    utf8proc_option_t o = UTF8PROC_STABLE;
    if (flags & NLP_UTF8_NFC)
        o |= UTF8PROC_COMPOSE;
    if (flags & NLP_UTF8_NFKC)
        o |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    if (flags & NLP_UTF8_CASEFOLD)
        o |= UTF8PROC_CASEFOLD;
    *opt = o;
    return NLP_OK;
}

int nlp_utf8_map(const char *s, size_t n, int flags, char **out, size_t *outlen)
{
    utf8proc_option_t opt;
    *out = NULL;
    int rc = map_options(flags, &opt);
    if (rc != NLP_OK)
        return rc;
    if (!nlp_utf8_is_valid(s, n))
        return NLP_EUTF8;
    if (n == 0 || (flags & (NLP_UTF8_NFC | NLP_UTF8_NFKC | NLP_UTF8_CASEFOLD)) == 0) {
        char *p = nlp_malloc(n + 1);
        if (!p)
            return NLP_ENOMEM;
        memcpy(p, s, n);
        p[n] = '\0';
        *out = p;
        if (outlen)
            *outlen = n;
        return NLP_OK;
    }
    if (n > (size_t)PTRDIFF_MAX / 8)
        return NLP_ERANGE;
    /* What utf8proc_map does, but allocating through nlp_malloc (so the
    ** failure schedule reaches it): count the decomposed code points,
    ** decompose into a UTF-32 buffer, then compose/fold and re-encode in
    ** place, which only shrinks. */
    const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
    utf8proc_ssize_t cps = utf8proc_decompose(u, (utf8proc_ssize_t)n, NULL, 0, opt);
    if (cps < 0)
        return cps == UTF8PROC_ERROR_OVERFLOW ? NLP_ERANGE : NLP_EUTF8;
    if ((size_t)cps > (SIZE_MAX - 1) / sizeof(utf8proc_int32_t))
        return NLP_ERANGE;
    utf8proc_int32_t *buf = nlp_malloc((size_t)cps * sizeof *buf + 1);
    if (!buf)
        return NLP_ENOMEM;
    utf8proc_ssize_t got = utf8proc_decompose(u, (utf8proc_ssize_t)n, buf, cps, opt);
    utf8proc_ssize_t m = got < 0 ? got : utf8proc_reencode(buf, got, opt);
    if (m < 0) {
        nlp_free(buf);
        return m == UTF8PROC_ERROR_NOMEM ? NLP_ENOMEM :
               m == UTF8PROC_ERROR_OVERFLOW ? NLP_ERANGE : NLP_EUTF8;
    }
    char *dst = (char *)buf;   /* m UTF-8 bytes and a NUL, at the start */
    /* Return a buffer of about the text's size, not 4 bytes per code
    ** point, when that saves much (a caller may keep it). */
    if ((size_t)m + 1 < (size_t)cps * sizeof *buf / 2) {
        char *small = nlp_malloc((size_t)m + 1);
        if (!small) {
            nlp_free(buf);
            return NLP_ENOMEM;
        }
        memcpy(small, dst, (size_t)m + 1);
        nlp_free(buf);
        dst = small;
    }
    *out = dst;
    if (outlen)
        *outlen = (size_t)m;
    return NLP_OK;
}

int nlp_utf8_nfc(const char *s, size_t n, char **out, size_t *outlen)
{
    return nlp_utf8_map(s, n, NLP_UTF8_NFC, out, outlen);
}

int nlp_utf8_nfkc(const char *s, size_t n, char **out, size_t *outlen)
{
    return nlp_utf8_map(s, n, NLP_UTF8_NFKC, out, outlen);
}

int nlp_utf8_casefold(const char *s, size_t n, char **out, size_t *outlen)
{
    return nlp_utf8_map(s, n, NLP_UTF8_NFC | NLP_UTF8_CASEFOLD, out, outlen);
}

/* First code point whose NFC quick-check value is not Yes (U+0300 COMBINING
** GRAVE ACCENT, NFC_QC=Maybe); everything below it is NFC-stable. */
#define NFC_QC_YES_BELOW 0x300

/* Hangul jamo and syllables compose algorithmically (utf8proc's tables do
** not show it): always "may change". */
static int is_hangul(int32_t cp)
{
    return (cp >= 0x1100 && cp <= 0x11FF) || (cp >= 0xA960 && cp <= 0xA97F) ||
           (cp >= 0xAC00 && cp <= 0xD7FF);
}

/* 1 when cp is certainly left alone by the map with these flags, whatever
** surrounds it: canonical combining class 0, no decomposition that the
** form applies, not the second character of a composition pair (utf8proc
** marks those with comb_index >= 0x8000), no case folding when folding. */
static int cp_is_stable(int32_t cp, int flags)
{
    const utf8proc_property_t *p = utf8proc_get_property(cp);
    int fold = (flags & NLP_UTF8_CASEFOLD) != 0;
    if (fold && p->casefold_seqindex != UINT16_MAX)
        return 0;
    if (cp < NFC_QC_YES_BELOW)
        return !(flags & NLP_UTF8_NFKC) || p->decomp_seqindex == UINT16_MAX || p->decomp_type == 0;
    if (!(flags & (NLP_UTF8_NFC | NLP_UTF8_NFKC)))
        return !fold;   /* casefold alone on text above U+02FF: let utf8proc decide */
    if (p->combining_class != 0 || is_hangul(cp) || p->comp_exclusion)
        return 0;
    if (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000)
        return 0;
    if (p->decomp_seqindex != UINT16_MAX && (p->decomp_type == 0 || (flags & NLP_UTF8_NFKC)))
        return 0;
    return 1;
}

int nlp_utf8_map_is_identity(const char *str, size_t n, int flags)
{
    const unsigned char *s = (const unsigned char *)str;
    int fold = (flags & NLP_UTF8_CASEFOLD) != 0;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            if (fold) {
                if (s[i] >= 'A' && s[i] <= 'Z')
                    return 0;
                i++;
            } else {
                i += ascii_prefix(s + i, n - i);
            }
            continue;
        }
        int32_t cp;
        int k = nlp_utf8_decode(str + i, n - i, &cp);
        if (k <= 0 || !cp_is_stable(cp, flags))
            return 0;
        i += (size_t)k;
    }
    return 1;
}
