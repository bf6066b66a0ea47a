/*
** bleu: corpus BLEU and chrF as sacreBLEU 2.x defines them by default.
**
** BLEU (Papineni et al. 2002, as mteval-v13a and sacreBLEU compute it):
** each sentence pair adds its n-gram statistics (orders 1..4: the
** hypothesis's n-grams, and how many of them the reference has, clipped by
** the reference's count) and the two lengths into corpus totals, an
** nlp_bleu_stats; nlp_bleu_score turns totals into the score, with the
** brevity penalty and sacreBLEU's default 'exp' smoothing (an order with
** no match counts as 1/2^k of a match, k = 1, 2, ... for successive such
** orders).  Counting is by hashing, linear in the sentence's length, in
** memory proportional to the longest sentence seen; the counts are 64-bit
** and every sum is overflow-checked.
**
** chrF (Popovic 2015, sacreBLEU's default chrF2): character n-grams of
** orders 1..6 of each side with its white space removed, precision and
** recall per order summed over the corpus, then the F-beta (beta 2) of
** their averages over the orders that occur.
**
** Text helpers make a line what sacreBLEU compares: nlp_bleu_tokenize_13a
** (the mteval-v13a tokeniser) and nlp_bleu_lowercase (Python's
** str.lower).  Tokens are separated by Unicode white space as Python's
** str.split() sees it (nlp_bleu_is_space).
**
**   nlp_bleu *b;  nlp_bleu_stats st = {0};  nlp_bleu_result r;
**   nlp_bleu_new(&b);
**   for each pair: nlp_bleu_add_line(b, &st, hyp, hyp_len, ref, ref_len);
**   nlp_bleu_score(&st, &r);    r.bleu is 0..100
**   nlp_bleu_free(b);
**
** Nothing here prints, exits or keeps global state; an nlp_bleu is scratch
** memory for one thread at a time (the statistics live in the caller's
** structs, so threads may each count into their own and merge).
*/
#ifndef NLP_BLEU_H
#define NLP_BLEU_H

#include <stddef.h>
#include <stdint.h>

#define NLP_BLEU_ORDER 4    /* BLEU-4: n-grams of orders 1..4 */
#define NLP_CHRF_ORDER 6    /* chrF: character n-grams of orders 1..6 */
#define NLP_CHRF_BETA 2.0   /* recall weighs beta^2 = 4 times precision */

/* Corpus totals for BLEU; all zero (= {0}) is the empty corpus. */
typedef struct nlp_bleu_stats {
    uint64_t hyp_len;                   /* hypothesis tokens */
    uint64_t ref_len;                   /* reference tokens */
    uint64_t correct[NLP_BLEU_ORDER];   /* [n-1]: clipped matching n-grams */
    uint64_t total[NLP_BLEU_ORDER];     /* [n-1]: hypothesis n-grams */
} nlp_bleu_stats;

/* A BLEU score and what it is made of (sacreBLEU's BLEUScore). */
typedef struct nlp_bleu_result {
    double bleu;                        /* 0..100 */
    double precision[NLP_BLEU_ORDER];   /* percent, smoothed; all 0 when bleu is 0
                                           because nothing matched */
    double bp;                          /* brevity penalty, 0..1 */
    double ratio;                       /* hyp_len / ref_len; 0 when ref_len is 0 */
    uint64_t hyp_len, ref_len;
} nlp_bleu_result;

/* Corpus totals for chrF; all zero is the empty corpus. */
typedef struct nlp_chrf_stats {
    uint64_t hyp[NLP_CHRF_ORDER];       /* [n-1]: hypothesis character n-grams */
    uint64_t ref[NLP_CHRF_ORDER];       /* [n-1]: reference character n-grams */
    uint64_t match[NLP_CHRF_ORDER];     /* [n-1]: clipped matches */
} nlp_chrf_stats;

/* Scratch memory (hash tables and buffers) for counting n-grams. */
typedef struct nlp_bleu nlp_bleu;

/*
** Sets *out to a new, empty counter and returns NLP_OK, or NLP_ENOMEM
** (*out is then NULL).  Free with nlp_bleu_free.
*/
int nlp_bleu_new(nlp_bleu **out);

/* Frees b and its buffers.  NULL is a no-op. */
void nlp_bleu_free(nlp_bleu *b);

/*
** Adds one sentence pair of already-tokenised text to st: the tokens of
** hyp[0..hyp_len) and ref[0..ref_len) are their runs of non-white-space
** (nlp_bleu_is_space), compared byte for byte.  Give it the output of
** nlp_bleu_tokenize_13a for sacreBLEU's default, or tokenised text as is
** for its --tokenize none.  Bytes need not be valid UTF-8 (an invalid byte
** is part of a token).  Returns NLP_OK; NLP_ENOMEM (st unchanged); or
** NLP_ERANGE when a total would overflow 64 bits (st unchanged).
*/
int nlp_bleu_add_line(nlp_bleu *b, nlp_bleu_stats *st, const char *hyp, size_t hyp_len,
                      const char *ref, size_t ref_len);

/*
** The same for token arrays: hyp[0..nhyp) and ref[0..nref) are NUL-
** terminated tokens (for example a vocabulary's words of a decoded
** sentence), compared as strings.  The arrays are only read.  Returns as
** nlp_bleu_add_line; NLP_EINVAL when an array with tokens is NULL.
*/
int nlp_bleu_add_tokens(nlp_bleu *b, nlp_bleu_stats *st, const char *const *hyp,
                        size_t nhyp, const char *const *ref, size_t nref);

/*
** The same for sequences of token ids (any int32 values; equal ids are
** equal tokens): for dev BLEU on a vocabulary's ids without making
** strings.  Mind that an id standing for <unk> matches itself.  Returns as
** nlp_bleu_add_tokens.
*/
int nlp_bleu_add_ids(nlp_bleu *b, nlp_bleu_stats *st, const int32_t *hyp, size_t nhyp,
                     const int32_t *ref, size_t nref);

/*
** Adds src's totals into dst (threads counting separately, then merged).
** Returns NLP_OK, or NLP_ERANGE when a sum would overflow (dst unchanged).
*/
int nlp_bleu_stats_merge(nlp_bleu_stats *dst, const nlp_bleu_stats *src);

/*
** The corpus BLEU of st into *r, as sacreBLEU's compute_bleu with
** smooth_method 'exp' and no effective order: BP = exp(1 - ref/hyp) when
** hyp < ref (0 when hyp is 0); 0 when no unigram matches; an order with
** no hypothesis n-gram makes the score 0; otherwise
** BP * exp(mean of log precision) over the 4 orders.  Never fails.
*/
void nlp_bleu_score(const nlp_bleu_stats *st, nlp_bleu_result *r);

/*
** Adds one sentence pair to chrF totals: hyp[0..hyp_len) and
** ref[0..ref_len), valid UTF-8 (repair first: nlp_utf8_repair), with their
** white space removed, compared as code points.  As sacreBLEU does, an
** order the reference is too short to have contributes no hypothesis
** n-grams either.  Returns NLP_OK, NLP_EUTF8 (invalid UTF-8), NLP_ENOMEM
** or NLP_ERANGE (a total would overflow); st is unchanged on failure.
*/
int nlp_bleu_chrf_add(nlp_bleu *b, nlp_chrf_stats *st, const char *hyp, size_t hyp_len,
                      const char *ref, size_t ref_len);

/* Adds src's chrF totals into dst; NLP_OK or NLP_ERANGE (dst unchanged). */
int nlp_bleu_chrf_merge(nlp_chrf_stats *dst, const nlp_chrf_stats *src);

/*
** The corpus chrF of st, 0..100, with the given beta (NLP_CHRF_BETA for
** chrF2): precision and recall of each order that has both hypothesis and
** reference n-grams, averaged over those orders, then their F-beta; 0
** when no order qualifies or nothing matches.
*/
double nlp_bleu_chrf_score(const nlp_chrf_stats *st, double beta);

/*
** Tokenises s[0..n) by the mteval-v13a rules (sacreBLEU's tokenizer_13a):
** "<skipped>" removed, "-\n" removed, other newlines made spaces;
** &quot; &amp; &lt; &gt; unescaped in that order; each of
** {|}~[\]^_`!"#$%&()*+:;<=>?@/ split off; '.' and ',' split off unless
** between two digits; '-' split off after a digit; then the tokens (runs
** of non-white-space) joined by single spaces.  The result, NUL-
** terminated, goes into the caller's growable buffer *buf of capacity
** *cap (*buf may be NULL with *cap 0; grown with nlp_realloc, freed by the
** caller with nlp_free), its length without the NUL in *out_len.  Bytes
** are not validated (the rules touch ASCII only; white space is decoded
** where the bytes are valid UTF-8).  Returns NLP_OK or NLP_ENOMEM (*buf
** and *cap then still valid, to be freed) or NLP_ERANGE (a size overflow).
*/
int nlp_bleu_tokenize_13a(const char *s, size_t n, char **buf, size_t *cap, size_t *out_len);

/*
** Lowercases valid UTF-8 s[0..n) as Python's str.lower() does: full
** Unicode lowercase mapping (U+0130 becomes "i" + U+0307) and the final
** sigma rule (a capital sigma that ends a word becomes U+03C2).  Output as
** for nlp_bleu_tokenize_13a.  Returns NLP_OK, NLP_EUTF8 (s is not valid
** UTF-8: repair it first), NLP_ENOMEM or NLP_ERANGE.
*/
int nlp_bleu_lowercase(const char *s, size_t n, char **buf, size_t *cap, size_t *out_len);

/*
** 1 when code point cp is white space to Python's str.split() and
** str.strip() (str.isspace: tab to carriage return, U+001C..U+001F, space,
** U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F,
** U+3000), else 0.
*/
int nlp_bleu_is_space(int32_t cp);

/*
** Length of s[0..n) without its trailing white space (nlp_bleu_is_space;
** Python's str.rstrip(), as sacreBLEU applies to every line it reads).
*/
size_t nlp_bleu_rstrip(const char *s, size_t n);

#endif
