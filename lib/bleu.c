/*
** bleu: corpus BLEU and chrF as sacreBLEU 2.x computes them by default.
** See nlp/bleu.h for the contracts.
**
** Both metrics count n-grams of one sentence pair: a sequence of 32-bit
** symbols (interned token ids for BLEU, code points for chrF), the
** hypothesis then the reference, and an open-addressing hash table of the
** n-grams of one order at a time, each entry counting its occurrences on
** either side.
** The table is sized for the pair at hand (only that part is cleared), so
** a short sentence after a long one costs what a short sentence costs;
** memory is some 35 bytes per byte of the longest pair (chrF's characters
** dominate), kept for the next pair.
*/
#include "nlp/bleu.h"
#include "nlp/alloc.h"
#include "nlp/error.h"
#include "nlp/utf8.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

/* ==== Growable arrays ================================================= */

/* Makes *p hold at least n elements of size sz (contents kept). */
static int reserve(void **p, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap)
        return NLP_OK;
    size_t want = *cap ? *cap : 16;
    while (want < n) {
        if (want > SIZE_MAX / 2)
            return NLP_ERANGE;
        want *= 2;
    }
    if (want > SIZE_MAX / sz)
        return NLP_ERANGE;
    void *q = nlp_realloc(*p, want * sz);
    if (!q)
        return NLP_ENOMEM;
    *p = q;
    *cap = want;
    return NLP_OK;
}

/* A byte string under construction. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static int sb_reserve(sbuf *b, size_t extra)
{
    if (extra > SIZE_MAX - 1 - b->len)
        return NLP_ERANGE;
    return reserve((void **)&b->p, &b->cap, b->len + extra + 1, 1);
}

/* Appends n bytes; the caller has reserved room (sb_reserve). */
static void sb_put(sbuf *b, const char *s, size_t n)
{
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* ==== White space ====================================================== */

int nlp_bleu_is_space(int32_t cp)
{
    if (cp < 0x80)
        return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/*
** The length of the white space starting at s[0..n): 0 when s does not
** start with white space (an invalid byte is not white space).
*/
static size_t space_at(const char *s, size_t n)
{
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80)
        return nlp_bleu_is_space(c) ? 1 : 0;
    if (c != 0xC2 && c != 0xE1 && c != 0xE2 && c != 0xE3)
        return 0;   /* the lead bytes of the non-ASCII white space */
    int32_t cp;
    int k = nlp_utf8_decode(s, n, &cp);
    return k > 0 && nlp_bleu_is_space(cp) ? (size_t)k : 0;
}

/* The length of the non-space character (or invalid byte run) at s. */
static size_t char_at(const char *s, size_t n)
{
    if ((unsigned char)s[0] < 0x80)
        return 1;
    int k = nlp_utf8_decode(s, n, NULL);
    return (size_t)(k < 0 ? -k : k);
}

size_t nlp_bleu_rstrip(const char *s, size_t n)
{
    /* Forward scan: the end of the last non-space character.  (Scanning
    ** backwards would have to resynchronise on UTF-8 boundaries.) */
    size_t end = 0, i = 0;
    while (i < n) {
        size_t k = space_at(s + i, n - i);
        if (k) {
            i += k;
        } else {
            i += char_at(s + i, n - i);
            end = i;
        }
    }
    return end;
}

/* ==== Hashing =========================================================== */

/* The 64-bit finaliser of MurmurHash3 (Appleby): every input bit affects
** every output bit, so the low bits index the table well. */
static uint64_t fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* Hash of bytes, 8 at a time, mixed after each word. */
static uint64_t hash_bytes(uint64_t seed, const char *s, size_t n)
{
    uint64_t h = seed ^ 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = fmix64(h ^ w);
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return fmix64(h ^ w ^ ((uint64_t)n << 56));
}

/* The hash of an n-gram extended by one symbol (n-grams of one start share
** their prefix's state, so all orders cost one step each). */
static uint64_t hash_step(uint64_t h, uint32_t sym)
{
    return fmix64(h ^ (sym + 0x9e3779b97f4a7c15ULL));
}

/* ==== The counter ======================================================= */

/* One distinct reference n-gram of the order being counted: seq[pos ..
** pos+n). */
typedef struct ngram {
    uint32_t tag;       /* the hash's high half, never 0; 0 marks an empty slot */
    uint32_t pos;
    uint32_t hyp, ref;  /* occurrences on each side (hyp: up to ref, for clipping) */
} ngram;

/* One distinct token string of the pair, while interning. */
typedef struct token {
    uint64_t hash;      /* 0: empty slot */
    uint32_t span;      /* its first occurrence in nlp_bleu.spans */
    uint32_t id;
} token;

/* A token of a line: bytes s[0..len). */
typedef struct span {
    const char *s;
    size_t len;
} span;

/*
** A pair may hold at most this many symbols (tokens or characters), so
** that positions and counts fit 32 bits and the tables stay small: 4
** billion tokens make a line of 8 GB at least.
*/
#define MAX_SYMBOLS UINT32_MAX

struct nlp_bleu {
    uint64_t seed;      /* of the hashes: slots no input can aim at */
    uint32_t *seq;      /* the pair's symbols: hypothesis, then reference */
    size_t seq_cap;
    uint64_t *state;    /* [i]: hash state of the n-gram starting at seq[i] */
    size_t state_cap;
    ngram *table;       /* n-gram hash table (a power-of-two prefix in use) */
    size_t table_cap;
    token *tokens;      /* interning hash table */
    size_t tokens_cap;
    span *spans;        /* the pair's tokens, hypothesis then reference */
    size_t spans_cap;
};

int nlp_bleu_new(nlp_bleu **out)
{
    *out = nlp_calloc(1, sizeof **out);
    if (!*out)
        return NLP_ENOMEM;
    /* A seed per counter, from its address and the clock, so that text
    ** crafted to collide in the tables (a quadratic run of probes) cannot
    ** know where its n-grams land.  The scores never depend on it. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    (*out)->seed = fmix64((uint64_t)(uintptr_t)*out ^ fmix64((uint64_t)ts.tv_nsec ^
                                                             ((uint64_t)ts.tv_sec << 32)));
    return NLP_OK;
}

void nlp_bleu_free(nlp_bleu *b)
{
    if (!b)
        return;
    nlp_free(b->seq);
    nlp_free(b->state);
    nlp_free(b->table);
    nlp_free(b->tokens);
    nlp_free(b->spans);
    nlp_free(b);
}

/* The table size for `entries` keys: a power of two, filled to at most
** 3/4, at least 16. */
static int table_size(size_t entries, size_t *size)
{
    size_t s = 16;
    while (s - s / 4 < entries) {
        if (s > SIZE_MAX / 2)
            return NLP_ERANGE;
        s *= 2;
    }
    *size = s;
    return NLP_OK;
}

/*
** Counts the n-grams of orders 1..order of seq[0..nh) (hypothesis) and
** seq[nh..nh+nr) (reference): for each order n, hyp_out[n-1] the
** hypothesis n-grams, ref_out[n-1] the reference's, match_out[n-1] the sum
** over distinct n-grams of min(hyp count, ref count).  One order at a
** time, in one table of the reference's n-grams (a hypothesis n-gram that
** the reference lacks needs no entry); state[i] carries the hash of the
** n-gram at i from one order to the next, so each order costs one hash
** step per position.
*/
static int count_ngrams(nlp_bleu *b, size_t nh, size_t nr, int order, uint64_t *hyp_out,
                        uint64_t *ref_out, uint64_t *match_out)
{
    for (int n = 0; n < order; n++)
        hyp_out[n] = ref_out[n] = match_out[n] = 0;
    if (nh > MAX_SYMBOLS || nr > MAX_SYMBOLS - nh)
        return NLP_ERANGE;
    size_t total = nh + nr, size;
    int rc = table_size(nr, &size);
    if (rc != NLP_OK ||
        (rc = reserve((void **)&b->table, &b->table_cap, size, sizeof *b->table)) != NLP_OK ||
        (rc = reserve((void **)&b->state, &b->state_cap, total, sizeof *b->state)) != NLP_OK)
        return rc;
    ngram *t = b->table;
    uint64_t *state = b->state;
    const uint32_t *seq = b->seq;
    size_t mask = size - 1;
    for (size_t i = 0; i < total; i++)
        state[i] = b->seed;
    for (int n = 1; n <= order; n++) {
        ref_out[n - 1] = nr >= (size_t)n ? nr - (size_t)n + 1 : 0;
        hyp_out[n - 1] = nh >= (size_t)n ? nh - (size_t)n + 1 : 0;
    }
    for (int n = 1; n <= order; n++) {
        if (ref_out[n - 1] == 0 || hyp_out[n - 1] == 0)
            break;      /* nothing to match at this order or above */
        memset(t, 0, size * sizeof *t);
        /* side 0: the reference's n-grams into the table; side 1: the
        ** hypothesis's looked up. */
        for (int side = 0; side < 2; side++) {
            size_t lo = side == 0 ? nh : 0, len = side == 0 ? nr : nh;
            for (size_t i = 0; i + (size_t)n <= len; i++) {
                const uint32_t *g = seq + lo + i;
                uint64_t h = state[lo + i] = hash_step(state[lo + i], g[n - 1]);
                uint64_t key = fmix64(h ^ (uint64_t)n);
                uint32_t tag = (uint32_t)(key >> 32);
                if (tag == 0)
                    tag = 1;
                size_t j = (size_t)key & mask;
                while (t[j].tag != 0 && !(t[j].tag == tag &&
                                          memcmp(seq + t[j].pos, g, (size_t)n * sizeof *g) == 0))
                    j = (j + 1) & mask;
                if (side == 0) {
                    if (t[j].tag == 0) {
                        t[j].tag = tag;
                        t[j].pos = (uint32_t)(lo + i);
                    }
                    t[j].ref++;
                } else if (t[j].hyp < t[j].ref) {
                    /* Matches up to the reference's count: clipping. */
                    t[j].hyp++;
                    match_out[n - 1]++;
                }
            }
        }
    }
    return NLP_OK;
}

/* a += b for n counters, or NLP_ERANGE with a unchanged. */
static int add_checked(uint64_t *a, const uint64_t *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i] > UINT64_MAX - b[i])
            return NLP_ERANGE;
    for (int i = 0; i < n; i++)
        a[i] += b[i];
    return NLP_OK;
}

/* ==== BLEU ============================================================== */

/* Adds the pair now in b->seq (nh hypothesis then nr reference symbols). */
static int bleu_add_seq(nlp_bleu *b, nlp_bleu_stats *st, size_t nh, size_t nr)
{
    uint64_t hyp[NLP_BLEU_ORDER], ref[NLP_BLEU_ORDER], match[NLP_BLEU_ORDER];
    int rc = count_ngrams(b, nh, nr, NLP_BLEU_ORDER, hyp, ref, match);
    if (rc != NLP_OK)
        return rc;
    nlp_bleu_stats s = {.hyp_len = nh, .ref_len = nr};
    memcpy(s.correct, match, sizeof match);
    memcpy(s.total, hyp, sizeof hyp);
    return nlp_bleu_stats_merge(st, &s);
}

/*
** Interns the n spans b->spans[0..n): b->seq[i] becomes the id of span i,
** equal spans (byte for byte) getting equal ids.
*/
static int intern_spans(nlp_bleu *b, size_t n)
{
    if (n > MAX_SYMBOLS)
        return NLP_ERANGE;
    size_t size;
    int rc = table_size(n, &size);
    if (rc != NLP_OK ||
        (rc = reserve((void **)&b->tokens, &b->tokens_cap, size, sizeof *b->tokens)) != NLP_OK ||
        (rc = reserve((void **)&b->seq, &b->seq_cap, n, sizeof *b->seq)) != NLP_OK)
        return rc;
    token *t = b->tokens;
    memset(t, 0, size * sizeof *t);
    size_t mask = size - 1;
    uint32_t next = 0;
    for (size_t i = 0; i < n; i++) {
        const span *sp = &b->spans[i];
        uint64_t key = hash_bytes(b->seed, sp->s, sp->len);
        if (key == 0)
            key = 1;
        size_t j = (size_t)key & mask;
        for (;;) {
            if (t[j].hash == 0) {
                t[j] = (token){.hash = key, .span = (uint32_t)i, .id = next++};
                break;
            }
            const span *o = &b->spans[t[j].span];
            if (t[j].hash == key && o->len == sp->len && memcmp(o->s, sp->s, sp->len) == 0)
                break;
            j = (j + 1) & mask;
        }
        b->seq[i] = t[j].id;
    }
    return NLP_OK;
}

/* Appends the white-space-separated tokens of s[0..n) to b->spans from
** index *count on. */
static int split_spans(nlp_bleu *b, const char *s, size_t n, size_t *count)
{
    size_t i = 0;
    while (i < n) {
        size_t k = space_at(s + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        size_t start = i;
        while (i < n && !space_at(s + i, n - i))
            i += char_at(s + i, n - i);
        if (*count == SIZE_MAX)
            return NLP_ERANGE;
        int rc = reserve((void **)&b->spans, &b->spans_cap, *count + 1, sizeof *b->spans);
        if (rc != NLP_OK)
            return rc;
        b->spans[(*count)++] = (span){s + start, i - start};
    }
    return NLP_OK;
}

int nlp_bleu_add_line(nlp_bleu *b, nlp_bleu_stats *st, const char *hyp, size_t hyp_len,
                      const char *ref, size_t ref_len)
{
    if (!b || !st || (!hyp && hyp_len) || (!ref && ref_len))
        return NLP_EINVAL;
    size_t nh = 0, n = 0;
    int rc = split_spans(b, hyp, hyp_len, &nh);
    n = nh;
    if (rc == NLP_OK)
        rc = split_spans(b, ref, ref_len, &n);
    if (rc == NLP_OK)
        rc = intern_spans(b, n);
    return rc == NLP_OK ? bleu_add_seq(b, st, nh, n - nh) : rc;
}

int nlp_bleu_add_tokens(nlp_bleu *b, nlp_bleu_stats *st, const char *const *hyp,
                        size_t nhyp, const char *const *ref, size_t nref)
{
    if (!b || !st || (!hyp && nhyp) || (!ref && nref))
        return NLP_EINVAL;
    if (nhyp > SIZE_MAX - nref)
        return NLP_ERANGE;
    int rc = reserve((void **)&b->spans, &b->spans_cap, nhyp + nref, sizeof *b->spans);
    if (rc != NLP_OK)
        return rc;
    for (size_t i = 0; i < nhyp + nref; i++) {
        const char *s = i < nhyp ? hyp[i] : ref[i - nhyp];
        if (!s)
            return NLP_EINVAL;
        b->spans[i] = (span){s, strlen(s)};
    }
    rc = intern_spans(b, nhyp + nref);
    return rc == NLP_OK ? bleu_add_seq(b, st, nhyp, nref) : rc;
}

int nlp_bleu_add_ids(nlp_bleu *b, nlp_bleu_stats *st, const int32_t *hyp, size_t nhyp,
                     const int32_t *ref, size_t nref)
{
    if (!b || !st || (!hyp && nhyp) || (!ref && nref))
        return NLP_EINVAL;
    if (nhyp > SIZE_MAX - nref)
        return NLP_ERANGE;
    int rc = reserve((void **)&b->seq, &b->seq_cap, nhyp + nref, sizeof *b->seq);
    if (rc != NLP_OK)
        return rc;
    for (size_t i = 0; i < nhyp; i++)
        b->seq[i] = (uint32_t)hyp[i];
    for (size_t i = 0; i < nref; i++)
        b->seq[nhyp + i] = (uint32_t)ref[i];
    return bleu_add_seq(b, st, nhyp, nref);
}

int nlp_bleu_stats_merge(nlp_bleu_stats *dst, const nlp_bleu_stats *src)
{
    /* All or nothing: check every sum before changing any. */
    uint64_t a[2 + 2 * NLP_BLEU_ORDER], s[2 + 2 * NLP_BLEU_ORDER];
    a[0] = dst->hyp_len, a[1] = dst->ref_len;
    s[0] = src->hyp_len, s[1] = src->ref_len;
    memcpy(a + 2, dst->correct, sizeof dst->correct);
    memcpy(a + 2 + NLP_BLEU_ORDER, dst->total, sizeof dst->total);
    memcpy(s + 2, src->correct, sizeof src->correct);
    memcpy(s + 2 + NLP_BLEU_ORDER, src->total, sizeof src->total);
    int rc = add_checked(a, s, 2 + 2 * NLP_BLEU_ORDER);
    if (rc != NLP_OK)
        return rc;
    dst->hyp_len = a[0], dst->ref_len = a[1];
    memcpy(dst->correct, a + 2, sizeof dst->correct);
    memcpy(dst->total, a + 2 + NLP_BLEU_ORDER, sizeof dst->total);
    return NLP_OK;
}

/* sacreBLEU's my_log: log, with log(0) floored to -9999999999. */
static double floored_log(double x)
{
    return x == 0.0 ? -9999999999.0 : log(x);
}

void nlp_bleu_score(const nlp_bleu_stats *st, nlp_bleu_result *r)
{
    /* The arithmetic follows sacreBLEU's compute_bleu operation for
    ** operation, so the doubles, not just their rounding, agree. */
    memset(r, 0, sizeof *r);
    r->hyp_len = st->hyp_len;
    r->ref_len = st->ref_len;
    r->ratio = st->ref_len ? (double)st->hyp_len / (double)st->ref_len : 0.0;
    r->bp = 1.0;
    if (st->hyp_len < st->ref_len)
        r->bp = st->hyp_len > 0 ? exp(1.0 - (double)st->ref_len / (double)st->hyp_len) : 0.0;
    int any = 0;
    for (int n = 0; n < NLP_BLEU_ORDER; n++)
        any |= st->correct[n] != 0;
    if (!any)
        return;
    double smooth = 1.0;
    for (int n = 0; n < NLP_BLEU_ORDER; n++) {
        if (st->total[n] == 0)
            break;  /* this and the higher orders stay 0: the score is 0 */
        if (st->correct[n] == 0) {
            smooth *= 2.0;
            r->precision[n] = 100.0 / (smooth * (double)st->total[n]);
        } else {
            r->precision[n] = 100.0 * (double)st->correct[n] / (double)st->total[n];
        }
    }
    double sum = 0.0;
    for (int n = 0; n < NLP_BLEU_ORDER; n++)
        sum += floored_log(r->precision[n]);
    r->bleu = r->bp * exp(sum / NLP_BLEU_ORDER);
}

/* ==== chrF ============================================================== */

/* Appends the code points of valid UTF-8 s[0..n), white space left out, to
** b->seq from index *count on. */
static int decode_no_space(nlp_bleu *b, const char *s, size_t n, size_t *count)
{
    /* At most one code point per byte. */
    if (n > SIZE_MAX - *count)
        return NLP_ERANGE;
    int rc = reserve((void **)&b->seq, &b->seq_cap, *count + n, sizeof *b->seq);
    if (rc != NLP_OK)
        return rc;
    size_t i = 0;
    while (i < n) {
        int32_t cp;
        int k = nlp_utf8_decode(s + i, n - i, &cp);
        if (k <= 0)
            return NLP_EUTF8;
        i += (size_t)k;
        if (!nlp_bleu_is_space(cp))
            b->seq[(*count)++] = (uint32_t)cp;
    }
    return NLP_OK;
}

int nlp_bleu_chrf_add(nlp_bleu *b, nlp_chrf_stats *st, const char *hyp, size_t hyp_len,
                      const char *ref, size_t ref_len)
{
    if (!b || !st || (!hyp && hyp_len) || (!ref && ref_len))
        return NLP_EINVAL;
    size_t nh = 0, n;
    int rc = decode_no_space(b, hyp, hyp_len, &nh);
    n = nh;
    if (rc == NLP_OK)
        rc = decode_no_space(b, ref, ref_len, &n);
    nlp_chrf_stats s;
    if (rc == NLP_OK)
        rc = count_ngrams(b, nh, n - nh, NLP_CHRF_ORDER, s.hyp, s.ref, s.match);
    if (rc != NLP_OK)
        return rc;
    /* sacreBLEU counts a hypothesis's n-grams of an order only when the
    ** reference has n-grams of that order. */
    for (int k = 0; k < NLP_CHRF_ORDER; k++)
        if (s.ref[k] == 0)
            s.hyp[k] = 0;
    return nlp_bleu_chrf_merge(st, &s);
}

int nlp_bleu_chrf_merge(nlp_chrf_stats *dst, const nlp_chrf_stats *src)
{
    uint64_t a[3 * NLP_CHRF_ORDER], s[3 * NLP_CHRF_ORDER];
    memcpy(a, dst, sizeof a);
    memcpy(s, src, sizeof s);
    _Static_assert(sizeof a == sizeof(nlp_chrf_stats), "nlp_chrf_stats is 3 arrays");
    int rc = add_checked(a, s, 3 * NLP_CHRF_ORDER);
    if (rc == NLP_OK)
        memcpy(dst, a, sizeof a);
    return rc;
}

double nlp_bleu_chrf_score(const nlp_chrf_stats *st, double beta)
{
    /* sacreBLEU's _compute_f_score without eps smoothing, in its order. */
    double factor = beta * beta;
    double avg_prec = 0.0, avg_rec = 0.0;
    int orders = 0;
    for (int n = 0; n < NLP_CHRF_ORDER; n++) {
        if (st->hyp[n] > 0 && st->ref[n] > 0) {
            avg_prec += (double)st->match[n] / (double)st->hyp[n];
            avg_rec += (double)st->match[n] / (double)st->ref[n];
            orders++;
        }
    }
    if (orders == 0)
        return 0.0;
    avg_prec /= orders;
    avg_rec /= orders;
    if (avg_prec + avg_rec == 0.0)
        return 0.0;
    double score = (1 + factor) * avg_prec * avg_rec;
    score /= factor * avg_prec + avg_rec;
    return 100 * score;
}

/* ==== The 13a tokeniser ================================================= */

/* out = in with every (non-overlapping, left to right) pat replaced by rep,
** as Python's str.replace. */
static int replace_all(const sbuf *in, sbuf *out, const char *pat, const char *rep)
{
    size_t pl = strlen(pat), rl = strlen(rep);
    out->len = 0;
    /* rep is never longer than pat here, so the input's size is enough. */
    int rc = sb_reserve(out, in->len);
    if (rc != NLP_OK)
        return rc;
    size_t i = 0;
    while (i < in->len) {
        const char *hit = pl <= in->len - i ? memmem(in->p + i, in->len - i, pat, pl) : NULL;
        size_t upto = hit ? (size_t)(hit - in->p) : in->len;
        sb_put(out, in->p + i, upto - i);
        if (!hit)
            break;
        sb_put(out, rep, rl);
        i = upto + pl;
    }
    out->p[out->len] = '\0';
    return NLP_OK;
}

/* Step 1's class: {|}~ [\]^_` space!"#$%& ()*+ :;<=>?@ / (not ' - . ,
** nor the digits and letters). */
static int is_13a_punct(unsigned char c)
{
    return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
           (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/*
** Appends s[0..n) to out with its white space runs (Unicode) made one
** space each, so that the passes below stay within a constant factor of
** the line: white space only ever plays the part of a non-digit in them,
** whatever its kind and length.
*/
static void put_collapsed(sbuf *out, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = space_at(s + i, n - i);
        if (k) {
            if (out->len == 0 || out->p[out->len - 1] != ' ')
                out->p[out->len++] = ' ';
            i += k;
        } else {
            out->p[out->len++] = s[i++];
        }
    }
}

/*
** The four regular expressions of sacreBLEU's TokenizerRegexp, each a
** left-to-right scan with Python's re.sub semantics (a match consumes its
** two characters).  They test ASCII bytes only, and a multi-byte character
** acts as one non-digit whichever of its bytes is looked at, so scanning
** bytes gives what scanning code points gives.
**   1  ([{-~[-` -&(-+:-@/])  ->  ' \1 '
**   2  ([^0-9])([.,])        ->  '\1 \2 '
**   3  ([.,])([^0-9])        ->  ' \1 \2'
**   4  ([0-9])(-)            ->  '\1 \2 '
*/
static int regex_pass(int step, const sbuf *in, sbuf *out)
{
    out->len = 0;
    /* Each input byte gives at most 3 bytes (step 1) or 2 (steps 2-4). */
    size_t grow = step == 1 ? 3 : 2;
    if (in->len > (SIZE_MAX - 2) / grow)
        return NLP_ERANGE;
    int rc = sb_reserve(out, in->len * grow);
    if (rc != NLP_OK)
        return rc;
    const unsigned char *s = (const unsigned char *)in->p;
    size_t n = in->len, i = 0;
    while (i < n) {
        char piece[4];
        size_t plen = 0, used = 1;
        unsigned char c = s[i], d = i + 1 < n ? s[i + 1] : 0;
        int two = i + 1 < n;
        if (step == 1 && is_13a_punct(c)) {
            piece[0] = ' ', piece[1] = (char)c, piece[2] = ' ', plen = 3;
        } else if (step == 2 && two && !is_digit(c) && (d == '.' || d == ',')) {
            piece[0] = (char)c, piece[1] = ' ', piece[2] = (char)d, piece[3] = ' ';
            plen = 4, used = 2;
        } else if (step == 3 && two && (c == '.' || c == ',') && !is_digit(d)) {
            piece[0] = ' ', piece[1] = (char)c, piece[2] = ' ', piece[3] = (char)d;
            plen = 4, used = 2;
        } else if (step == 4 && two && is_digit(c) && d == '-') {
            piece[0] = (char)c, piece[1] = ' ', piece[2] = '-', piece[3] = ' ';
            plen = 4, used = 2;
        }
        if (plen) {
            put_collapsed(out, piece, plen);
            i += used;
        } else {
            /* A whole character, so that white space is seen whole. */
            size_t k = space_at(in->p + i, n - i);
            if (!k)
                k = 1;
            put_collapsed(out, in->p + i, k);
            i += k;
        }
    }
    out->p[out->len] = '\0';
    return NLP_OK;
}

int nlp_bleu_tokenize_13a(const char *s, size_t n, char **buf, size_t *cap, size_t *out_len)
{
    if ((!s && n) || !buf || !cap || !out_len)
        return NLP_EINVAL;
    sbuf a = {0}, c = {0};
    int rc = sb_reserve(&a, n);
    if (rc != NLP_OK)
        goto done;
    sb_put(&a, s, n);
    a.p[a.len] = '\0';
    /* The language-independent part, in sacreBLEU's order. */
    static const char *const edits[][2] = {
        {"<skipped>", ""}, {"-\n", ""}, {"\n", " "},
        {"&quot;", "\""}, {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"},
    };
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        if (e >= 3 && !memchr(a.p, '&', a.len))
            break;
        if (!memmem(a.p, a.len, edits[e][0], strlen(edits[e][0])))
            continue;
        if ((rc = replace_all(&a, &c, edits[e][0], edits[e][1])) != NLP_OK)
            goto done;
        sbuf t = a;
        a = c;
        c = t;
    }
    /* sacreBLEU pads the line with a space on each side before the regular
    ** expressions: a leading '.' then follows a non-digit. */
    c.len = 0;
    if ((rc = sb_reserve(&c, a.len + 2)) != NLP_OK)
        goto done;
    sb_put(&c, " ", 1);
    sb_put(&c, a.p, a.len);
    sb_put(&c, " ", 1);
    for (int step = 1; step <= 4; step++) {
        if ((rc = regex_pass(step, &c, &a)) != NLP_OK)
            goto done;
        sbuf t = a;
        a = c;
        c = t;
    }
    /* c holds the result with runs of white space made single spaces:
    ** drop the first and last. */
    size_t from = 0, to = c.len;
    while (from < to && c.p[from] == ' ')
        from++;
    while (to > from && c.p[to - 1] == ' ')
        to--;
    if ((rc = reserve((void **)buf, cap, to - from + 1, 1)) != NLP_OK)
        goto done;
    memcpy(*buf, c.p + from, to - from);
    (*buf)[to - from] = '\0';
    *out_len = to - from;
done:
    nlp_free(a.p);
    nlp_free(c.p);
    return rc;
}

/* ==== Lowercasing ======================================================= */

/* Python's "cased" (Lowercase, Uppercase or titlecase letters), as utf8proc
** knows it. */
static int is_cased(int32_t cp)
{
    utf8proc_category_t cat = utf8proc_category(cp);
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
           cat == UTF8PROC_CATEGORY_LT || utf8proc_islower(cp) || utf8proc_isupper(cp);
}

/* Unicode's Case_Ignorable: marks, format characters, modifiers and the
** word-internal punctuation of Word_Break MidLetter/MidNumLet/Single_Quote. */
static int is_case_ignorable(int32_t cp)
{
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_SK:
        return 1;
    default:
        break;
    }
    switch (cp) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
    case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52:
    case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return 1;
    default:
        return 0;
    }
}

int nlp_bleu_lowercase(const char *s, size_t n, char **buf, size_t *cap, size_t *out_len)
{
    if ((!s && n) || !buf || !cap || !out_len)
        return NLP_EINVAL;
    if (!nlp_utf8_is_valid(s, n))
        return NLP_EUTF8;
    /* A code point's lowercase is at most 1.5 times as long in UTF-8
    ** (U+0130 becomes 3 bytes from 2, U+023A 3 from 2); 2n + 1 is room. */
    if (n > (SIZE_MAX - 1) / 2)
        return NLP_ERANGE;
    int rc = reserve((void **)buf, cap, 2 * n + 1, 1);
    if (rc != NLP_OK)
        return rc;
    char *out = *buf;
    size_t o = 0, i = 0;
    /* Final sigma (Python's handle_capital_sigma): a capital sigma after a
    ** cased letter (case-ignorables skipped) and not before one.  The look-
    ** ahead runs over case-ignorables only, which end at the next sigma at
    ** the latest (a sigma is cased), so each is looked at once: linear. */
    int prev_cased = 0;
    while (i < n) {
        int32_t cp;
        i += (size_t)nlp_utf8_decode(s + i, n - i, &cp);
        if (cp == 0x130) {
            memcpy(out + o, "i\xcc\x87", 3);
            o += 3;
        } else if (cp == 0x3A3) {
            int final = prev_cased;
            for (size_t j = i; final && j < n;) {
                int32_t next;
                j += (size_t)nlp_utf8_decode(s + j, n - j, &next);
                if (!is_case_ignorable(next)) {
                    final = !is_cased(next);
                    break;
                }
            }
            o += nlp_utf8_encode(final ? 0x3C2 : 0x3C3, out + o);
        } else {
            o += nlp_utf8_encode(utf8proc_tolower(cp), out + o);
        }
        if (!is_case_ignorable(cp))
            prev_cased = is_cased(cp);
    }
    out[o] = '\0';
    *out_len = o;
    return NLP_OK;
}
