/* Unit tests for the utf8 module: decoding edge cases (overlong forms,
** surrogates, truncated sequences, 4-byte characters, the largest code
** point), repair by maximal subparts, NFC/NFKC and full case folding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "nlp.h"
#include "nlp/utf8.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static void test_decode_valid(void **state)
{
    (void)state;
    int32_t cp;
    assert_int_equal(nlp_utf8_decode(S("A"), &cp), 1);
    assert_int_equal(cp, 'A');
    assert_int_equal(nlp_utf8_decode("\0", 1, &cp), 1);
    assert_int_equal(cp, 0);
    assert_int_equal(nlp_utf8_decode(S("\xC3\xA9"), &cp), 2);         /* é */
    assert_int_equal(cp, 0xE9);
    assert_int_equal(nlp_utf8_decode(S("\xC2\x80"), &cp), 2);         /* smallest 2-byte */
    assert_int_equal(cp, 0x80);
    assert_int_equal(nlp_utf8_decode(S("\xE2\x82\xAC"), &cp), 3);     /* € */
    assert_int_equal(cp, 0x20AC);
    assert_int_equal(nlp_utf8_decode(S("\xE0\xA0\x80"), &cp), 3);     /* smallest 3-byte */
    assert_int_equal(cp, 0x800);
    assert_int_equal(nlp_utf8_decode(S("\xED\x9F\xBF"), &cp), 3);     /* just below surrogates */
    assert_int_equal(cp, 0xD7FF);
    assert_int_equal(nlp_utf8_decode(S("\xEE\x80\x80"), &cp), 3);     /* just above them */
    assert_int_equal(cp, 0xE000);
    assert_int_equal(nlp_utf8_decode(S("\xEF\xBF\xBF"), &cp), 3);
    assert_int_equal(cp, 0xFFFF);
    assert_int_equal(nlp_utf8_decode(S("\xF0\x9F\x98\x80"), &cp), 4); /* 😀 */
    assert_int_equal(cp, 0x1F600);
    assert_int_equal(nlp_utf8_decode(S("\xF0\x90\x80\x80"), &cp), 4); /* smallest 4-byte */
    assert_int_equal(cp, 0x10000);
    assert_int_equal(nlp_utf8_decode(S("\xF4\x8F\xBF\xBF"), &cp), 4); /* U+10FFFF */
    assert_int_equal(cp, 0x10FFFF);
    assert_int_equal(nlp_utf8_decode("", 0, &cp), 0);
    assert_int_equal(nlp_utf8_decode(S("x"), NULL), 1);
}

static void test_decode_invalid(void **state)
{
    (void)state;
    int32_t cp;
    /* Stray continuation, invalid lead bytes. */
    assert_int_equal(nlp_utf8_decode(S("\x80"), &cp), -1);
    assert_int_equal(cp, 0xFFFD);
    assert_int_equal(nlp_utf8_decode(S("\xBF"), &cp), -1);
    assert_int_equal(nlp_utf8_decode(S("\xFE"), &cp), -1);
    assert_int_equal(nlp_utf8_decode(S("\xFF"), &cp), -1);
    assert_int_equal(nlp_utf8_decode(S("\xF5\x80\x80\x80"), &cp), -1);
    /* Overlong forms: C0/C1 leads, E0 80..9F, F0 80..8F are rejected at
    ** the first or second byte. */
    assert_int_equal(nlp_utf8_decode(S("\xC0\xAF"), &cp), -1);
    assert_int_equal(nlp_utf8_decode(S("\xC1\xBF"), &cp), -1);
    assert_int_equal(nlp_utf8_decode(S("\xE0\x80\xAF"), &cp), -1);
    assert_int_equal(nlp_utf8_decode(S("\xE0\x9F\xBF"), &cp), -1);
    assert_int_equal(nlp_utf8_decode(S("\xF0\x80\x80\xAF"), &cp), -1);
    assert_int_equal(nlp_utf8_decode(S("\xF0\x8F\xBF\xBF"), &cp), -1);
    /* Surrogates U+D800..U+DFFF. */
    assert_int_equal(nlp_utf8_decode(S("\xED\xA0\x80"), &cp), -1);
    assert_int_equal(nlp_utf8_decode(S("\xED\xBF\xBF"), &cp), -1);
    /* Above U+10FFFF. */
    assert_int_equal(nlp_utf8_decode(S("\xF4\x90\x80\x80"), &cp), -1);
    assert_int_equal(nlp_utf8_decode(S("\xF7\xBF\xBF\xBF"), &cp), -1);
    /* Truncated sequences: the maximal subpart is consumed. */
    assert_int_equal(nlp_utf8_decode(S("\xC3"), &cp), -1);
    assert_int_equal(nlp_utf8_decode(S("\xE2\x82"), &cp), -2);
    assert_int_equal(nlp_utf8_decode(S("\xE2"), &cp), -1);
    assert_int_equal(nlp_utf8_decode(S("\xF0\x9F\x98"), &cp), -3);
    assert_int_equal(nlp_utf8_decode(S("\xF0\x9F"), &cp), -2);
    /* Cut by a non-continuation byte, which is not consumed. */
    assert_int_equal(nlp_utf8_decode(S("\xE2\x82" "A"), &cp), -2);
    assert_int_equal(nlp_utf8_decode(S("\xC3" "A"), &cp), -1);
    assert_int_equal(nlp_utf8_decode(S("\xF0\x9F\x98" "\xF0"), &cp), -3);
    /* The length limit is respected even when more bytes follow. */
    assert_int_equal(nlp_utf8_decode("\xE2\x82\xAC", 2, &cp), -2);
}

static void test_encode(void **state)
{
    (void)state;
    char b[4];
    int32_t cps[] = {0, 0x41, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD,
                     0xFFFF, 0x10000, 0x1F600, 0x10FFFF};
    size_t lens[] = {1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        int32_t back;
        size_t k = nlp_utf8_encode(cps[i], b);
        assert_int_equal(k, lens[i]);
        assert_int_equal(nlp_utf8_decode(b, k, &back), (int)k);
        assert_int_equal(back, cps[i]);
    }
    assert_int_equal(nlp_utf8_encode(-1, b), 0);
    assert_int_equal(nlp_utf8_encode(0xD800, b), 0);
    assert_int_equal(nlp_utf8_encode(0xDFFF, b), 0);
    assert_int_equal(nlp_utf8_encode(0x110000, b), 0);
    /* Round trip of every scalar value. */
    for (int32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp == 0xD800)
            cp = 0xE000;
        int32_t back;
        size_t k = nlp_utf8_encode(cp, b);
        if (nlp_utf8_decode(b, k, &back) != (int)k || back != cp)
            fail_msg("round trip of U+%04X", (unsigned)cp);
    }
}

static void test_validate(void **state)
{
    (void)state;
    assert_true(nlp_utf8_is_valid(S("plain ascii text, long enough for the fast path")));
    assert_true(nlp_utf8_is_valid(S("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80")));
    assert_true(nlp_utf8_is_valid("", 0));
    assert_true(nlp_utf8_is_valid("a\0b", 3));
    assert_false(nlp_utf8_is_valid(S("abcdefghijk\xC3")));
    assert_int_equal(nlp_utf8_valid_prefix(S("abcdefghijkl\xFFmn")), 12);
    assert_int_equal(nlp_utf8_valid_prefix(S("\xC3\xA9\xED\xA0\x80")), 2);
    assert_int_equal(nlp_utf8_length(S("caf\xC3\xA9\xF0\x9F\x98\x80")), 5);
    assert_int_equal(nlp_utf8_length(S("a\xE2\x82z")), 3);
}

/* Repairs s and checks the output, the count and the first offset. */
static void check_repair(const char *s, size_t n, const char *want, size_t want_bad,
                         size_t want_first)
{
    char *buf = NULL;
    size_t cap = 0, len = 99, bad = 99, first = 99;
    assert_int_equal(nlp_utf8_repair(s, n, &buf, &cap, &len, &bad, &first), NLP_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);
    assert_int_equal(buf[len], '\0');
    assert_int_equal(bad, want_bad);
    assert_int_equal(first, want_first);
    assert_true(nlp_utf8_is_valid(buf, len));
    free(buf);
}

#define R "\xEF\xBF\xBD"

static void test_repair(void **state)
{
    (void)state;
    check_repair(S("hello"), "hello", 0, 5);
    check_repair("", 0, "", 0, 0);
    check_repair(S("a\xFF" "b"), "a" R "b", 1, 1);
    /* Each maximal subpart is one U+FFFD (the Unicode §3.9 example). */
    check_repair(S("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
                 "a" R R R "b" R "c" R R "d", 6, 1);
    check_repair(S("\xC0\xAF"), R R, 2, 0);              /* overlong: two */
    check_repair(S("\xED\xA0\x80"), R R R, 3, 0);        /* surrogate: three */
    check_repair(S("x\xE2\x82"), "x" R, 1, 1);           /* truncated: one */
    check_repair(S("\xF0\x9F\x98" "!"), R "!", 1, 0);
    check_repair(S("\xF4\x90\x80\x80"), R R R R, 4, 0);  /* > U+10FFFF */
    /* Reusing a buffer grows it as needed. */
    char *buf = NULL;
    size_t cap = 0, len;
    assert_int_equal(nlp_utf8_repair(S("ab"), &buf, &cap, &len, NULL, NULL), NLP_OK);
    assert_int_equal(nlp_utf8_repair(S("\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"), &buf, &cap,
                                     &len, NULL, NULL), NLP_OK);
    assert_int_equal(len, 30);
    assert_true(cap >= 31);
    free(buf);
}

/* Maps s by flags and compares with want. */
static void check_map(const char *s, int flags, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(nlp_utf8_map(s, strlen(s), flags, &out, &len), NLP_OK);
    assert_non_null(out);
    assert_int_equal(len, strlen(want));
    assert_string_equal(out, want);
    free(out);
    /* The identity shortcut must never claim a change-free map wrongly. */
    if (nlp_utf8_map_is_identity(s, strlen(s), flags))
        assert_string_equal(s, want);
}

static void test_normalize(void **state)
{
    (void)state;
    /* e + COMBINING ACUTE composes to é under NFC. */
    check_map("caf\x65\xCC\x81", NLP_UTF8_NFC, "caf\xC3\xA9");
    check_map("caf\xC3\xA9", NLP_UTF8_NFC, "caf\xC3\xA9");
    /* Canonical reordering of combining marks (dot below before acute). */
    check_map("a\xCC\x81\xCC\xA3", NLP_UTF8_NFC, "\xE1\xBA\xA1\xCC\x81");
    /* NFC keeps compatibility characters, NFKC maps them. */
    check_map("\xEF\xAC\x81" "x", NLP_UTF8_NFC, "\xEF\xAC\x81" "x");   /* ﬁ ligature */
    check_map("\xEF\xAC\x81" "x", NLP_UTF8_NFKC, "fix");
    check_map("x\xC2\xB2", NLP_UTF8_NFKC, "x2");                       /* superscript two */
    check_map("\xEF\xBC\xA1", NLP_UTF8_NFKC, "A");                     /* fullwidth A */
    check_map("\xC2\xA0", NLP_UTF8_NFKC, " ");                         /* no-break space */
    check_map("\xC2\xA0", NLP_UTF8_NFC, "\xC2\xA0");
    check_map("\xE2\x84\xAB", NLP_UTF8_NFC, "\xC3\x85");               /* ANGSTROM SIGN -> Å */
    check_map("", NLP_UTF8_NFC, "");
    check_map("plain", 0, "plain");
    /* A NUL inside is kept. */
    char *out;
    size_t len;
    assert_int_equal(nlp_utf8_map("a\0b", 3, NLP_UTF8_NFC, &out, &len), NLP_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "a\0b", 3);
    free(out);
    assert_int_equal(nlp_utf8_nfc(S("e\xCC\x81"), &out, &len), NLP_OK);
    assert_string_equal(out, "\xC3\xA9");
    free(out);
    assert_int_equal(nlp_utf8_nfkc(S("\xE2\x91\xA0"), &out, &len), NLP_OK);  /* ① */
    assert_string_equal(out, "1");
    free(out);
}

static void test_casefold(void **state)
{
    (void)state;
    check_map("Hello WORLD", NLP_UTF8_CASEFOLD, "hello world");
    check_map("Stra\xC3\x9F" "e", NLP_UTF8_CASEFOLD | NLP_UTF8_NFC, "strasse");      /* ß -> ss */
    check_map("\xCE\xA3\xCE\x99\xCE\xA3", NLP_UTF8_CASEFOLD, "\xCF\x83\xCE\xB9\xCF\x83"); /* ΣΙΣ */
    check_map("\xCF\x82", NLP_UTF8_CASEFOLD, "\xCF\x83");                             /* final ς -> σ */
    check_map("\xC3\x89T\xC3\x89", NLP_UTF8_CASEFOLD | NLP_UTF8_NFC, "\xC3\xA9t\xC3\xA9"); /* ÉTÉ */
    check_map("\xD0\x9C\xD0\x98\xD0\xA0", NLP_UTF8_CASEFOLD, "\xD0\xBC\xD0\xB8\xD1\x80"); /* МИР */
    check_map("\xEF\xAC\x81", NLP_UTF8_CASEFOLD, "fi");                               /* ﬁ folds to fi */
    check_map("\xC4\xB0", NLP_UTF8_CASEFOLD, "i\xCC\x87");                            /* İ */
    check_map("\xF0\x90\x90\x80", NLP_UTF8_CASEFOLD, "\xF0\x90\x90\xA8");             /* Deseret 𐐀 */
    check_map("\xE1\xBA\x9E", NLP_UTF8_CASEFOLD | NLP_UTF8_NFKC, "ss");               /* capital ẞ */
    char *out;
    size_t len;
    assert_int_equal(nlp_utf8_casefold(S("MA\xC3\x9F"), &out, &len), NLP_OK);
    assert_string_equal(out, "mass");
    assert_int_equal(len, 4);
    free(out);
}

static void test_map_errors(void **state)
{
    (void)state;
    char *out = (char *)1;
    assert_int_equal(nlp_utf8_map(S("a\xFF"), NLP_UTF8_NFC, &out, NULL), NLP_EUTF8);
    assert_null(out);
    assert_int_equal(nlp_utf8_map(S("a"), NLP_UTF8_NFC | NLP_UTF8_NFKC, &out, NULL), NLP_EINVAL);
    assert_int_equal(nlp_utf8_map(S("a"), 1 << 10, &out, NULL), NLP_EINVAL);
}

static void test_identity(void **state)
{
    (void)state;
    assert_true(nlp_utf8_map_is_identity(S("hello, world"), NLP_UTF8_NFC));
    assert_false(nlp_utf8_map_is_identity(S("Hello"), NLP_UTF8_NFC | NLP_UTF8_CASEFOLD));
    assert_true(nlp_utf8_map_is_identity(S("caf\xC3\xA9"), NLP_UTF8_NFC));
    assert_true(nlp_utf8_map_is_identity(S("caf\xC3\xA9"), NLP_UTF8_NFC | NLP_UTF8_CASEFOLD));
    assert_false(nlp_utf8_map_is_identity(S("CAF\xC3\x89"), NLP_UTF8_NFC | NLP_UTF8_CASEFOLD));
    assert_false(nlp_utf8_map_is_identity(S("e\xCC\x81"), NLP_UTF8_NFC));
    assert_true(nlp_utf8_map_is_identity(S("\xC2\xB2"), NLP_UTF8_NFC));
    assert_false(nlp_utf8_map_is_identity(S("\xC2\xB2"), NLP_UTF8_NFKC));
    assert_false(nlp_utf8_map_is_identity(S("\xC3\x9F"), NLP_UTF8_NFC | NLP_UTF8_CASEFOLD));
}

/* Whatever the identity shortcut accepts, the map leaves unchanged (a
** sample of all planes; bench-checked for every code point against ICU's
** quick check). */
static void test_identity_sample(void **state)
{
    (void)state;
    int flags[] = {NLP_UTF8_NFC, NLP_UTF8_NFKC, NLP_UTF8_NFC | NLP_UTF8_CASEFOLD};
    for (int32_t cp = 0x80; cp <= 0x10FFFF; cp += (cp < 0x30000 ? 3 : 997)) {
        char b[8];
        size_t k = nlp_utf8_encode(cp, b);
        if (k == 0)
            continue;
        b[k] = 'a';   /* followed by a letter, as in a word */
        for (int f = 0; f < 3; f++) {
            if (!nlp_utf8_map_is_identity(b, k + 1, flags[f]))
                continue;
            char *out;
            size_t len;
            assert_int_equal(nlp_utf8_map(b, k + 1, flags[f], &out, &len), NLP_OK);
            if (len != k + 1 || memcmp(out, b, k + 1) != 0)
                fail_msg("U+%04X flags %d claimed stable", (unsigned)cp, flags[f]);
            free(out);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_valid),
        cmocka_unit_test(test_decode_invalid),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_repair),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_casefold),
        cmocka_unit_test(test_map_errors),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_identity_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
