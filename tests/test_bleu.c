/* Unit tests for BLEU and chrF: hand-computed corpus scores (identical,
** no overlap, brevity penalty, clipping, exp smoothing of orders with no
** match, an order with no n-gram at all, empty lines), the three ways of
** giving tokens, merging and overflow, chrF fixtures, the 13a tokeniser's
** rules one by one, Python's lowercasing, long lines in linear time, and
** every allocation failing in turn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nlp.h"
#include "nlp/bleu.h"

/* ==== Helpers ============================================================ */

/* |a - b| <= eps, in double (cmocka's float assertion rounds to float). */
#define assert_double_equal(a, b, eps) expect_near((a), (b), (eps), #a, __LINE__)

static void expect_near(double a, double b, double eps, const char *what, int line)
{
    if (!(fabs(a - b) <= eps))
        fail_msg("line %d: %s = %.17g, expected %.17g (within %g)", line, what, a, b, eps);
}

/* BLEU of a corpus of n pairs of already tokenised lines. */
static void corpus(const char *const *hyp, const char *const *ref, int n, nlp_bleu_result *r,
                   nlp_bleu_stats *st)
{
    nlp_bleu *b;
    assert_int_equal(nlp_bleu_new(&b), NLP_OK);
    memset(st, 0, sizeof *st);
    for (int i = 0; i < n; i++)
        assert_int_equal(nlp_bleu_add_line(b, st, hyp[i], strlen(hyp[i]), ref[i],
                                           strlen(ref[i])), NLP_OK);
    nlp_bleu_score(st, r);
    nlp_bleu_free(b);
}

static double chrf(const char *const *hyp, const char *const *ref, int n)
{
    nlp_bleu *b;
    nlp_chrf_stats st = {0};
    assert_int_equal(nlp_bleu_new(&b), NLP_OK);
    for (int i = 0; i < n; i++)
        assert_int_equal(nlp_bleu_chrf_add(b, &st, hyp[i], strlen(hyp[i]), ref[i],
                                           strlen(ref[i])), NLP_OK);
    nlp_bleu_free(b);
    return nlp_bleu_chrf_score(&st, NLP_CHRF_BETA);
}

static void expect_precisions(const nlp_bleu_result *r, double p1, double p2, double p3,
                              double p4)
{
    assert_double_equal(r->precision[0], p1, 1e-9);
    assert_double_equal(r->precision[1], p2, 1e-9);
    assert_double_equal(r->precision[2], p3, 1e-9);
    assert_double_equal(r->precision[3], p4, 1e-9);
}

/* The 13a tokenisation of s is want. */
static void expect_13a(const char *s, const char *want)
{
    char *buf = NULL;
    size_t cap = 0, len;
    assert_int_equal(nlp_bleu_tokenize_13a(s, strlen(s), &buf, &cap, &len), NLP_OK);
    if (len != strlen(want) || memcmp(buf, want, len) != 0)
        fail_msg("13a('%s') = '%.*s', expected '%s'", s, (int)len, buf, want);
    assert_int_equal(buf[len], '\0');
    nlp_free(buf);
}

static void expect_lower(const char *s, const char *want)
{
    char *buf = NULL;
    size_t cap = 0, len;
    assert_int_equal(nlp_bleu_lowercase(s, strlen(s), &buf, &cap, &len), NLP_OK);
    if (len != strlen(want) || memcmp(buf, want, len) != 0)
        fail_msg("lower('%s') = '%.*s', expected '%s'", s, (int)len, buf, want);
    nlp_free(buf);
}

/* ==== BLEU ============================================================== */

static void test_identical(void **state)
{
    const char *h[] = {"the cat sat on the mat", "a dog"}, *r[] = {"the cat sat on the mat",
                                                                   "a dog"};
    nlp_bleu_result res;
    nlp_bleu_stats st;
    corpus(h, r, 2, &res, &st);
    assert_double_equal(res.bleu, 100.0, 1e-9);
    expect_precisions(&res, 100, 100, 100, 100);
    assert_double_equal(res.bp, 1.0, 0);
    assert_double_equal(res.ratio, 1.0, 0);
    assert_int_equal(res.hyp_len, 8);
    assert_int_equal(res.ref_len, 8);
    /* 6 + 2 unigrams, 5 + 1 bigrams, 4 trigrams, 3 4-grams. */
    assert_int_equal(st.total[0], 8);
    assert_int_equal(st.total[1], 6);
    assert_int_equal(st.total[2], 4);
    assert_int_equal(st.total[3], 3);
    assert_memory_equal(st.correct, st.total, sizeof st.total);
}

static void test_no_overlap(void **state)
{
    const char *h[] = {"a b c d"}, *r[] = {"e f g h"};
    nlp_bleu_result res;
    nlp_bleu_stats st;
    corpus(h, r, 1, &res, &st);
    /* No unigram matches: 0, and (as sacreBLEU) no smoothed precisions. */
    assert_double_equal(res.bleu, 0.0, 0);
    expect_precisions(&res, 0, 0, 0, 0);
    assert_double_equal(res.bp, 1.0, 0);
}

static void test_brevity_penalty(void **state)
{
    /* 4 of 8 tokens, every n-gram right: BP = exp(1 - 8/4) = 1/e. */
    const char *h[] = {"a b c d"}, *r[] = {"a b c d e f g h"};
    nlp_bleu_result res;
    nlp_bleu_stats st;
    corpus(h, r, 1, &res, &st);
    expect_precisions(&res, 100, 100, 100, 100);
    assert_double_equal(res.bp, exp(-1.0), 1e-15);
    assert_double_equal(res.bleu, 100 * exp(-1.0), 1e-9);
    assert_double_equal(res.ratio, 0.5, 0);
    /* A longer hypothesis has no penalty. */
    const char *h2[] = {"a b c d e f g h i"}, *r2[] = {"a b c d e f g h"};
    corpus(h2, r2, 1, &res, &st);
    assert_double_equal(res.bp, 1.0, 0);
    assert_double_equal(res.ratio, 9.0 / 8.0, 1e-15);
}

static void test_exp_smoothing(void **state)
{
    /* "a b x c" / "a b c d": unigrams 3/4, bigrams 1/3 (a b), trigrams 0/2,
    ** 4-grams 0/1.  exp smoothing: the first order with no match counts as
    ** 1/2 match, the next as 1/4: 100/(2*2) = 25 and 100/(4*1) = 25.
    ** BLEU = (75 * 100/3 * 25 * 25)^(1/4) = 1562500^(1/4) = 25 sqrt 2. */
    const char *h[] = {"a b x c"}, *r[] = {"a b c d"};
    nlp_bleu_result res;
    nlp_bleu_stats st;
    corpus(h, r, 1, &res, &st);
    expect_precisions(&res, 75, 100.0 / 3, 25, 25);
    assert_double_equal(res.bleu, 25 * sqrt(2.0), 1e-9);
    assert_int_equal(st.correct[2], 0);
    assert_int_equal(st.total[2], 2);
}

static void test_clipping(void **state)
{
    /* "the" 4 times against a reference that has it once: 1/4; then the
    ** smoothed orders 100/(2*3), 100/(4*2), 100/(8*1). */
    const char *h[] = {"the the the the"}, *r[] = {"the cat"};
    nlp_bleu_result res;
    nlp_bleu_stats st;
    corpus(h, r, 1, &res, &st);
    expect_precisions(&res, 25, 100.0 / 6, 12.5, 12.5);
    assert_double_equal(res.bleu, pow(25 * (100.0 / 6) * 12.5 * 12.5, 0.25), 1e-9);
    assert_double_equal(res.ratio, 2.0, 0);
    /* Clipping per sentence: the same n-gram may match in each. */
    const char *h2[] = {"x y", "x y"}, *r2[] = {"x y", "x y"};
    corpus(h2, r2, 2, &res, &st);
    assert_int_equal(st.correct[0], 4);
    assert_int_equal(st.correct[1], 2);
}

static void test_missing_order(void **state)
{
    /* Two-token hypotheses have no trigram: sacreBLEU stops at that order
    ** (its precision stays 0, log 0 floored) and the score is 0. */
    const char *h[] = {"a b"}, *r[] = {"a b c"};
    nlp_bleu_result res;
    nlp_bleu_stats st;
    corpus(h, r, 1, &res, &st);
    assert_double_equal(res.bleu, 0.0, 0);
    expect_precisions(&res, 100, 100, 0, 0);
    assert_double_equal(res.bp, exp(1 - 3.0 / 2), 1e-15);
}

static void test_empty_lines(void **state)
{
    nlp_bleu_result res;
    nlp_bleu_stats st;
    /* An empty hypothesis adds the reference's length only. */
    const char *h[] = {"", "a b c d"}, *r[] = {"a b c d", "a b c d"};
    corpus(h, r, 2, &res, &st);
    assert_int_equal(res.hyp_len, 4);
    assert_int_equal(res.ref_len, 8);
    assert_double_equal(res.bleu, 100 * exp(-1.0), 1e-9);
    /* An empty reference: its hypothesis's n-grams count, none matches.
    ** unigrams 4/6, bigrams 3/4 (x y, y z, z w), trigrams 2/2, 4-grams 1/1. */
    const char *h2[] = {"a b", "x y z w"}, *r2[] = {"", "x y z w"};
    corpus(h2, r2, 2, &res, &st);
    expect_precisions(&res, 400.0 / 6, 75, 100, 100);
    assert_double_equal(res.bleu, pow((400.0 / 6) * 75 * 100 * 100, 0.25), 1e-9);
    assert_double_equal(res.ratio, 1.5, 0);
    /* Nothing at all: 0, BP 1, ratio 0 (as sacreBLEU). */
    const char *h3[] = {""}, *r3[] = {""};
    corpus(h3, r3, 1, &res, &st);
    assert_double_equal(res.bleu, 0.0, 0);
    assert_double_equal(res.bp, 1.0, 0);
    assert_double_equal(res.ratio, 0.0, 0);
    /* Hypotheses all empty against words: BP 0. */
    const char *h4[] = {" \t "}, *r4[] = {"a"};
    corpus(h4, r4, 1, &res, &st);
    assert_int_equal(res.hyp_len, 0);
    assert_double_equal(res.bp, 0.0, 0);
    assert_double_equal(res.bleu, 0.0, 0);
}

static void test_white_space(void **state)
{
    /* Tokens are separated by Unicode white space as Python's split() sees
    ** it: NBSP, U+2028, U+3000, U+001C and tabs, not U+200B. */
    const char *h[] = {"a\xc2\xa0" "b\xe2\x80\xa8" "c\xe3\x80\x80" "d\x1c" "e\tf"};
    const char *r[] = {"a b c d e f"};
    nlp_bleu_result res;
    nlp_bleu_stats st;
    corpus(h, r, 1, &res, &st);
    assert_double_equal(res.bleu, 100.0, 1e-9);
    const char *h2[] = {"a\xe2\x80\x8b" "b"}, *r2[] = {"a b"};
    corpus(h2, r2, 1, &res, &st);
    assert_int_equal(res.hyp_len, 1);
    /* Bytes compare exactly: case matters, invalid bytes are token bytes. */
    const char *h3[] = {"The \xff"}, *r3[] = {"the \xff"};
    corpus(h3, r3, 1, &res, &st);
    assert_int_equal(st.correct[0], 1);
    assert_int_equal(nlp_bleu_is_space(0x85), 1);
    assert_int_equal(nlp_bleu_is_space(0x200B), 0);
    assert_int_equal(nlp_bleu_is_space(0xFEFF), 0);
    assert_int_equal(nlp_bleu_rstrip("a b \t\xc2\xa0\r", 8), 3);
    assert_int_equal(nlp_bleu_rstrip(" \t", 2), 0);
    assert_int_equal(nlp_bleu_rstrip("a\xc2", 2), 2);  /* a truncated sequence is not space */
}

static void test_tokens_and_ids(void **state)
{
    /* The three entry points count the same pair alike. */
    const char *hl = "the cat the cat sat", *rl = "the cat sat on the mat";
    const char *ht[] = {"the", "cat", "the", "cat", "sat"};
    const char *rt[] = {"the", "cat", "sat", "on", "the", "mat"};
    const int32_t hi[] = {7, -1, 7, -1, 900000}, ri[] = {7, -1, 900000, 3, 7, 4};
    nlp_bleu *b;
    nlp_bleu_stats a = {0}, t = {0}, i = {0};
    assert_int_equal(nlp_bleu_new(&b), NLP_OK);
    assert_int_equal(nlp_bleu_add_line(b, &a, hl, strlen(hl), rl, strlen(rl)), NLP_OK);
    assert_int_equal(nlp_bleu_add_tokens(b, &t, ht, 5, rt, 6), NLP_OK);
    assert_int_equal(nlp_bleu_add_ids(b, &i, hi, 5, ri, 6), NLP_OK);
    assert_memory_equal(&a, &t, sizeof a);
    assert_memory_equal(&a, &i, sizeof a);
    /* unigrams: the x2 (ref 2), cat x2 (ref 1), sat: 4/5 */
    assert_int_equal(a.correct[0], 4);
    assert_int_equal(a.total[0], 5);
    /* bigrams: the cat x2 (ref 1), cat the (0), cat sat (1): 2/4 */
    assert_int_equal(a.correct[1], 2);
    assert_int_equal(a.total[1], 4);
    assert_int_equal(nlp_bleu_add_tokens(b, &t, NULL, 1, rt, 6), NLP_EINVAL);
    const char *withnull[] = {"a", NULL};
    assert_int_equal(nlp_bleu_add_tokens(b, &t, withnull, 2, rt, 6), NLP_EINVAL);
    assert_int_equal(nlp_bleu_add_ids(b, &i, NULL, 0, NULL, 0), NLP_OK);
    nlp_bleu_free(b);
    nlp_bleu_free(NULL);
}

static void test_merge_and_overflow(void **state)
{
    /* Statistics counted apart and merged equal those counted together. */
    const char *h[] = {"a b x c", "the the the the"}, *r[] = {"a b c d", "the cat"};
    nlp_bleu_result res, merged_res;
    nlp_bleu_stats both, one, two;
    corpus(h, r, 2, &res, &both);
    corpus(h, r, 1, &merged_res, &one);
    corpus(h + 1, r + 1, 1, &merged_res, &two);
    assert_int_equal(nlp_bleu_stats_merge(&one, &two), NLP_OK);
    assert_memory_equal(&one, &both, sizeof one);
    nlp_bleu_score(&one, &merged_res);
    assert_double_equal(merged_res.bleu, res.bleu, 0);
    /* A sum past 64 bits is refused, all or nothing. */
    nlp_bleu_stats big = both;
    big.total[3] = UINT64_MAX;
    nlp_bleu_stats saved = big;
    assert_int_equal(nlp_bleu_stats_merge(&big, &both), NLP_ERANGE);
    assert_memory_equal(&big, &saved, sizeof big);
    nlp_bleu *b;
    assert_int_equal(nlp_bleu_new(&b), NLP_OK);
    assert_int_equal(nlp_bleu_add_line(b, &big, "a b c d", 7, "a b c d", 7), NLP_ERANGE);
    assert_memory_equal(&big, &saved, sizeof big);
    nlp_chrf_stats c = {0};
    c.match[5] = UINT64_MAX;
    nlp_chrf_stats csaved = c;
    assert_int_equal(nlp_bleu_chrf_add(b, &c, "abcdef", 6, "abcdef", 6), NLP_ERANGE);
    assert_memory_equal(&c, &csaved, sizeof c);
    nlp_bleu_free(b);
}

/* ==== chrF ============================================================== */

static void test_chrf(void **state)
{
    const char *same[] = {"abc def"};
    assert_double_equal(chrf(same, same, 1), 100.0, 1e-9);
    /* "ab" / "abc": order 1: P 2/2, R 2/3; order 2: P 1/1, R 1/2; orders
    ** 3..6 have no hypothesis n-gram and do not count.  P = 1, R = 7/12,
    ** F2 = 5PR / (4P + R) = (35/12) / (55/12) = 7/11. */
    const char *h1[] = {"ab"}, *r1[] = {"abc"};
    assert_double_equal(chrf(h1, r1, 1), 700.0 / 11, 1e-9);
    /* White space is removed first: the same. */
    const char *h2[] = {" a b"}, *r2[] = {"ab\xc2\xa0" "c"};
    assert_double_equal(chrf(h2, r2, 1), 700.0 / 11, 1e-9);
    /* "abcd" / "ab": order 1: P 2/4, R 1; order 2: P 1/3, R 1.  P = 5/12,
    ** R = 1: F2 = (25/12) / (32/12) = 25/32. */
    const char *h3[] = {"abcd"}, *r3[] = {"ab"};
    assert_double_equal(chrf(h3, r3, 1), 2500.0 / 32, 1e-9);
    /* With "xyz" / "xyz" beside it: "abcd"'s trigrams are not counted, as
    ** its reference has none (sacreBLEU): order 1: 5/7, R 5/5; order 2:
    ** 3/5, R 1; order 3: 1/1, R 1.  P = (5/7 + 3/5 + 1) / 3 = 81/105,
    ** F2 = 5P / (4P + 1). */
    const char *h4[] = {"abcd", "xyz"}, *r4[] = {"ab", "xyz"};
    double p = 81.0 / 105;
    assert_double_equal(chrf(h4, r4, 2), 100 * 5 * p / (4 * p + 1), 1e-9);
    /* Case matters; code points, not bytes, are the characters. */
    const char *h5[] = {"AB"}, *r5[] = {"ab"};
    assert_double_equal(chrf(h5, r5, 1), 0.0, 0);
    const char *h6[] = {"\xc3\xa9"}, *r6[] = {"\xc3\xa8"};   /* é vs è share a byte */
    assert_double_equal(chrf(h6, r6, 1), 0.0, 0);
    /* Empty lines: nothing to compare, 0. */
    const char *h7[] = {""}, *r7[] = {""};
    assert_double_equal(chrf(h7, r7, 1), 0.0, 0);
    /* Invalid UTF-8 is refused. */
    nlp_bleu *b;
    nlp_chrf_stats st = {0};
    assert_int_equal(nlp_bleu_new(&b), NLP_OK);
    assert_int_equal(nlp_bleu_chrf_add(b, &st, "a\xff", 2, "a", 1), NLP_EUTF8);
    nlp_chrf_stats zero = {0};
    assert_memory_equal(&st, &zero, sizeof st);
    nlp_bleu_free(b);
}

/* ==== 13a ================================================================ */

static void test_13a(void **state)
{
    /* Punctuation of the class becomes tokens. */
    expect_13a("Hello, world!", "Hello , world !");
    expect_13a("$5 {x} [y] a/b @c #d ~e ^f _g `h *i +j =k ;l :m ?n <o> %p |q \\r",
               "$ 5 { x } [ y ] a / b @ c # d ~ e ^ f _ g ` h * i + j = k ; l : m ? n < o > "
               "% p | q \\ r");
    /* The apostrophe and '-' between letters stay; periods between
    ** letters do not. */
    expect_13a("It's a U.S. e.g. test.", "It's a U . S . e . g . test .");
    expect_13a("co-op x--y", "co-op x--y");
    /* '.' and ',' stay only between digits. */
    expect_13a("3.14 and 1,000.", "3.14 and 1,000 .");
    expect_13a("1.5 1,5 1.a a.1 5. ,5 a,b 1,a,2", "1.5 1,5 1 . a a . 1 5 . , 5 a , b 1 , a , 2");
    expect_13a(".5", ". 5");        /* the line's padding makes '.' follow a non-digit */
    /* '-' after a digit. */
    expect_13a("2-3", "2 - 3");
    expect_13a("5--6", "5 - -6");
    /* Entities, in sacreBLEU's order (&amp;quot; is not a quote). */
    expect_13a("&quot;Hi&quot; &amp; &lt;b&gt;", "\" Hi \" & < b >");
    expect_13a("&amp;quot;", "& quot ;");
    expect_13a("&amp;lt;", "<");
    expect_13a("AT&T", "AT & T");
    /* <skipped>, hyphenated line ends, newlines, white space of any kind. */
    expect_13a("a<skipped>b", "ab");
    expect_13a("a-\nb", "ab");
    expect_13a("a\tb\nc", "a b c");
    expect_13a("  a\xc2\xa0\xc2\xa0" "b\xe2\x80\xa8 \x1c", "a b");
    expect_13a("a\xe2\x80\x8b" "b", "a\xe2\x80\x8b" "b");    /* U+200B is not white space */
    /* Non-ASCII letters are left alone, before punctuation too. */
    expect_13a("caf\xc3\xa9. na\xc3\xafve,x", "caf\xc3\xa9 . na\xc3\xafve , x");
    expect_13a("", "");
    expect_13a(" \t ", "");
    /* NUL bytes are characters like any other. */
    char *buf = NULL;
    size_t cap = 0, len;
    assert_int_equal(nlp_bleu_tokenize_13a("a\0.b", 4, &buf, &cap, &len), NLP_OK);
    assert_int_equal(len, 6);
    assert_memory_equal(buf, "a\0 . b", 6);
    nlp_free(buf);
}

static void test_lowercase(void **state)
{
    expect_lower("\xc3\x80" "B", "\xc3\xa0" "b");                  /* ÀB -> àb */
    expect_lower("\xc4\xb0", "i\xcc\x87");                         /* İ -> i + U+0307 */
    expect_lower("\xe1\xba\x9e \xe2\x84\xaa", "\xc3\x9f k");       /* ẞ -> ß, Kelvin -> k */
    expect_lower("\xc7\x85", "\xc7\x86");                          /* titlecase ǅ -> ǆ */
    expect_lower("stra\xc3\x9f" "e", "stra\xc3\x9f" "e");          /* ß stays (not folded) */
    /* Final sigma: ΟΔΟΣ -> οδος, ΣΑ -> σα, ΣΑΣ. -> σας. (. is case-
    ** ignorable), Σ alone -> σ, AΣ'b -> aσ'b, AΣ' -> aς'. */
    expect_lower("\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xa3\xce\x91",
                 "\xce\xbf\xce\xb4\xce\xbf\xcf\x82 \xcf\x83\xce\xb1");
    expect_lower("\xce\xa3\xce\x91\xce\xa3.", "\xcf\x83\xce\xb1\xcf\x82.");
    expect_lower("\xce\xa3", "\xcf\x83");
    expect_lower("A\xce\xa3'b", "a\xcf\x83'b");
    expect_lower("A\xce\xa3'", "a\xcf\x82'");
    expect_lower("", "");
    char *buf = NULL;
    size_t cap = 0, len;
    assert_int_equal(nlp_bleu_lowercase("A\xff", 2, &buf, &cap, &len), NLP_EUTF8);
    nlp_free(buf);
}

/* ==== Long lines and failures =========================================== */

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void test_long_lines(void **state)
{
    /* 400000 tokens of one word, then a long line of dots and digits
    ** through 13a, then sigmas and apostrophes through lowercasing: all in
    ** linear time (a quadratic step would take minutes here). */
    enum { N = 400000 };
    char *line = malloc(2 * N);
    assert_non_null(line);
    for (size_t i = 0; i < N; i++)
        line[2 * i] = 'a', line[2 * i + 1] = ' ';
    nlp_bleu *b;
    nlp_bleu_stats st = {0};
    nlp_bleu_result r;
    assert_int_equal(nlp_bleu_new(&b), NLP_OK);
    double t0 = seconds();
    assert_int_equal(nlp_bleu_add_line(b, &st, line, 2 * N, line, 2 * N), NLP_OK);
    nlp_bleu_score(&st, &r);
    assert_double_equal(r.bleu, 100.0, 1e-9);
    assert_int_equal(st.total[3], N - 3);
    /* A short pair after the long one costs a short pair's time. */
    for (int i = 0; i < 20000; i++)
        assert_int_equal(nlp_bleu_add_line(b, &st, "x y", 3, "x y", 3), NLP_OK);
    nlp_chrf_stats cs = {0};
    assert_int_equal(nlp_bleu_chrf_add(b, &cs, line, 2 * N, line, 2 * N), NLP_OK);
    assert_int_equal(cs.match[5], N - 5);
    for (size_t i = 0; i < 2 * N; i++)
        line[i] = "1.a,"[i % 4];
    char *buf = NULL;
    size_t cap = 0, len;
    assert_int_equal(nlp_bleu_tokenize_13a(line, 2 * N, &buf, &cap, &len), NLP_OK);
    assert_true(len > 2 * N);
    /* "Σ'" repeated: each sigma's look-ahead stops at the next one. */
    for (size_t i = 0; i + 3 <= 2 * N; i += 3)
        memcpy(line + i, "\xce\xa3'", 3);
    size_t n = 2 * N / 3 * 3;
    assert_int_equal(nlp_bleu_lowercase(line, n, &buf, &cap, &len), NLP_OK);
    assert_int_equal(len, n);
    double t = seconds() - t0;
    assert_true(t < 20.0);
    nlp_free(buf);
    nlp_bleu_free(b);
    free(line);
}

static void test_alloc_failures(void **state)
{
    /* Every allocation of each operation failing in turn: NLP_ENOMEM,
    ** statistics unchanged, nothing leaked (under ASan). */
    const char *text = "the cat, 3.14 &quot;sat&quot; \xce\x9f\xce\xa3 on the mat-\nof 2-3";
    size_t tn = strlen(text);
    /* What each operation gives when nothing fails. */
    nlp_bleu *b0;
    nlp_bleu_stats want = {0};
    nlp_chrf_stats cwant = {0};
    assert_int_equal(nlp_bleu_new(&b0), NLP_OK);
    assert_int_equal(nlp_bleu_add_line(b0, &want, text, tn, text, tn), NLP_OK);
    assert_int_equal(nlp_bleu_chrf_add(b0, &cwant, text, tn, text, tn), NLP_OK);
    nlp_bleu_free(b0);
    int failures = 0;
    for (long n = 1; n < 30; n++) {
        nlp_bleu *b = NULL;
        nlp_bleu_stats st = {0}, zero = {0};
        nlp_chrf_stats cs = {0}, czero = {0};
        char *buf = NULL;
        size_t cap = 0, len;
        nlp_alloc_fail_at(n, 0);
        int rc = nlp_bleu_new(&b);
        if (rc == NLP_OK)
            rc = nlp_bleu_add_line(b, &st, text, tn, text, tn);
        if (rc == NLP_OK)
            rc = nlp_bleu_chrf_add(b, &cs, text, tn, text, tn);
        if (rc == NLP_OK)
            rc = nlp_bleu_tokenize_13a(text, tn, &buf, &cap, &len);
        if (rc == NLP_OK)
            rc = nlp_bleu_lowercase(text, tn, &buf, &cap, &len);
        nlp_alloc_fail_at(0, 0);
        if (rc != NLP_OK) {
            assert_int_equal(rc, NLP_ENOMEM);
            failures++;
            if (!b)
                assert_int_equal(n, 1);
        }
        /* Statistics are all or nothing. */
        assert_true(!memcmp(&st, &zero, sizeof st) || !memcmp(&st, &want, sizeof st));
        assert_true(!memcmp(&cs, &czero, sizeof cs) || !memcmp(&cs, &cwant, sizeof cs));
        nlp_free(buf);
        nlp_bleu_free(b);
    }
    assert_true(failures >= 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identical),
        cmocka_unit_test(test_no_overlap),
        cmocka_unit_test(test_brevity_penalty),
        cmocka_unit_test(test_exp_smoothing),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_missing_order),
        cmocka_unit_test(test_empty_lines),
        cmocka_unit_test(test_white_space),
        cmocka_unit_test(test_tokens_and_ids),
        cmocka_unit_test(test_merge_and_overflow),
        cmocka_unit_test(test_chrf),
        cmocka_unit_test(test_13a),
        cmocka_unit_test(test_lowercase),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
