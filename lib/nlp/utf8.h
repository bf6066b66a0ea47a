/*
** utf8: decoding, encoding, validation/repair, normalisation and case
** folding of UTF-8 text.
**
** Decoding follows Unicode 15 §3.9 (table 3-7, "well-formed UTF-8 byte
** sequences") and the "maximal subpart" practice of §3.9 / WHATWG Encoding:
** an ill-formed sequence is consumed as the longest prefix of a well-formed
** sequence (at least one byte), and each such prefix becomes exactly one
** U+FFFD when repaired.  So "\xE2\x82" (truncated euro sign) is one U+FFFD,
** "\xC0\xAF" (overlong '/') is two, "\xED\xA0\x80" (a surrogate) is three.
**
** Normalisation and case folding use utf8proc; they need valid UTF-8
** (repair first).  Nothing here prints or keeps global state.
*/
#ifndef NLP_UTF8_H
#define NLP_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define NLP_UTF8_REPLACEMENT 0xFFFD   /* U+FFFD REPLACEMENT CHARACTER */
#define NLP_UTF8_MAX_CP 0x10FFFF      /* largest Unicode scalar value */

/*
** Decodes the code point at s (at most n bytes are read).  Returns the
** number of bytes consumed (1..4) and stores the code point in *cp.  For an
** ill-formed sequence (overlong form, surrogate, value above U+10FFFF,
** stray continuation byte, invalid lead byte 0xC0/0xC1/0xF5..0xFF,
** sequence truncated by the end of the buffer or by a non-continuation
** byte) returns -k, where k >= 1 is the length of its maximal subpart (the
** bytes to skip), and stores U+FFFD in *cp.  Returns 0 when n == 0.
** cp may be NULL.
*/
int nlp_utf8_decode(const char *s, size_t n, int32_t *cp);

/*
** Encodes cp into out (no terminating NUL).  Returns the byte count (1..4),
** or 0 when cp is not a Unicode scalar value (negative, a surrogate
** U+D800..U+DFFF or above U+10FFFF); out is then untouched.
*/
size_t nlp_utf8_encode(int32_t cp, char out[4]);

/*
** Length in bytes of the longest valid prefix of s[0..n).  The buffer is
** valid UTF-8 exactly when the result equals n.  NUL bytes are valid
** (U+0000).  Has an ASCII fast path.
*/
size_t nlp_utf8_valid_prefix(const char *s, size_t n);

/* 1 when s[0..n) is valid UTF-8, else 0. */
int nlp_utf8_is_valid(const char *s, size_t n);

/* Number of code points in valid UTF-8 s[0..n) (each ill-formed maximal
** subpart counts as one, as it would after repair). */
size_t nlp_utf8_length(const char *s, size_t n);

/*
** Repairs s[0..n): copies it into the caller's growable buffer *buf
** (capacity *cap; *buf may be NULL with *cap 0 and is realloc'd as needed,
** the caller frees it with free()) replacing each ill-formed maximal
** subpart with U+FFFD (EF BF BD).  The result is NUL-terminated (the NUL is
** not counted in *outlen).  *nbad receives the number of replacements and
** *first_bad the byte offset in s of the first one (n when there is none);
** either pointer may be NULL.  s and *buf must not overlap.
** Returns NLP_OK, or NLP_ENOMEM (then *buf and *cap are left valid, unchanged
** or grown, and must still be freed).
*/
int nlp_utf8_repair(const char *s, size_t n, char **buf, size_t *cap,
                    size_t *outlen, size_t *nbad, size_t *first_bad);

/* Flags for nlp_utf8_map.  NFC and NFKC are exclusive. */
enum {
    NLP_UTF8_NFC = 1 << 0,       /* canonical composition */
    NLP_UTF8_NFKC = 1 << 1,      /* compatibility composition */
    NLP_UTF8_CASEFOLD = 1 << 2   /* full Unicode case folding (ß -> ss) */
};

/*
** Transforms valid UTF-8 s[0..n) by flags (any of NLP_UTF8_NFC or
** NLP_UTF8_NFKC, optionally with NLP_UTF8_CASEFOLD; flags 0 copies).  On
** success *out is a new NUL-terminated buffer allocated by the library with
** malloc (the caller frees it with free()), *outlen its length without the
** NUL.  Returns NLP_OK, NLP_EUTF8 when s is not valid UTF-8, NLP_EINVAL for
** bad flags, or NLP_ENOMEM; *out is NULL on error.
*/
int nlp_utf8_map(const char *s, size_t n, int flags, char **out, size_t *outlen);

/* Shorthands for nlp_utf8_map(s, n, NLP_UTF8_NFC / NLP_UTF8_NFKC /
** NLP_UTF8_CASEFOLD | NLP_UTF8_NFC, out, outlen); same contract. */
int nlp_utf8_nfc(const char *s, size_t n, char **out, size_t *outlen);
int nlp_utf8_nfkc(const char *s, size_t n, char **out, size_t *outlen);
int nlp_utf8_casefold(const char *s, size_t n, char **out, size_t *outlen);

/*
** 1 when nlp_utf8_map(s, n, flags, ...) would certainly return s unchanged,
** without allocating: a cheap conservative test (ASCII without upper case
** letters; for NFC also any text below U+0300 whose NFC quick-check is Yes).
** 0 means "may change": call nlp_utf8_map.  s must be valid UTF-8.
*/
int nlp_utf8_map_is_identity(const char *s, size_t n, int flags);

#endif
