/*
** fuzz_bleu: the BLEU and chrF counters and their text helpers
** (nlp/bleu.h): nlp_bleu_tokenize_13a, nlp_bleu_lowercase, nlp_bleu_rstrip,
** nlp_bleu_add_line / nlp_bleu_add_tokens and nlp_bleu_chrf_add.
**
** Input layout:
**   byte 0   bit 0: tokenise both sides with 13a first; bit 1: lowercase
**            them first (repairing invalid UTF-8, else the refusal is what
**            is checked); bit 2: rstrip them; bit 3: several pairs, one per
**            line of each side (else one pair); bit 4: start the helpers'
**            output buffers at a capacity of 1 byte (else NULL/0)
**   rest     hypothesis, a NUL byte, reference (no NUL: the reference is
**            the hypothesis reversed, code point by code point)
**
** Checks: the helpers' results are NUL-terminated at their length; 13a's
** output is its tokens joined by single spaces (no white space at either
** end, none inside a token; it is not a fixed point of 13a, as in sacreBLEU:
** "x.,5" gives "x . ,5", then "x . , 5"); lowercase refuses
** exactly the invalid UTF-8 and keeps valid UTF-8 valid; the counts obey
** their definitions (correct <= total, total[n] = tokens - n per line);
** a hypothesis scored against itself gets BLEU 100 when it has 4 tokens,
** chrF 100 when it has a character; add_tokens agrees with add_line;
** adding pairs one by one then merging equals adding them in one corpus;
** scores are finite and within 0..100.
*/
#include "fuzz.h"

#include <math.h>

#include "nlp/bleu.h"

/* A helper's output buffer, started empty or at 1 byte (flags bit 4). */
typedef struct outbuf {
    char *p;
    size_t cap, len;
} outbuf;

static void outbuf_init(outbuf *b, int tiny)
{
    b->p = NULL;
    b->cap = 0;
    b->len = 0;
    if (tiny) {
        b->p = nlp_malloc(1);
        FUZZ_CHECK(b->p != NULL);
        b->cap = 1;
    }
}

/* The code point at s[0..n) and its length, invalid bytes one at a time. */
static size_t next_cp(const char *s, size_t n, int32_t *cp)
{
    int k = nlp_utf8_decode(s, n, cp);
    if (k <= 0) {
        *cp = -1;
        return 1;
    }
    return (size_t)k;
}

/* Tokens of s[0..n) as nlp_bleu_add_line sees them (runs of non-space). */
static size_t count_tokens(const char *s, size_t n)
{
    size_t count = 0, i = 0;
    int in = 0;
    while (i < n) {
        int32_t cp;
        size_t k = next_cp(s + i, n - i, &cp);
        int sp = cp >= 0 && nlp_bleu_is_space(cp);
        if (!sp && !in)
            count++;
        in = !sp;
        i += k;
    }
    return count;
}

/* 13a output: no white space but single ASCII spaces between tokens. */
static void check_13a_form(const char *s, size_t n)
{
    FUZZ_CHECK(s[n] == '\0');
    if (n == 0)
        return;
    FUZZ_CHECK(s[0] != ' ' && s[n - 1] != ' ');
    size_t i = 0;
    while (i < n) {
        int32_t cp;
        size_t k = next_cp(s + i, n - i, &cp);
        if (cp == ' ')
            FUZZ_CHECK(s[i + 1] != ' ');
        else
            FUZZ_CHECK(cp < 0 || !nlp_bleu_is_space(cp));
        i += k;
    }
}

/* Applies the option bytes' helpers to s[0..n); the result in o. */
static void prepare(const char *s, size_t n, uint8_t flags, outbuf *o)
{
    int tiny = (flags & 16) != 0;
    char *cur = fuzz_dup(s, n);
    size_t len = n;

    if (flags & 4) {
        size_t k = nlp_bleu_rstrip(cur, len);
        FUZZ_CHECK((size_t)k <= len);
        FUZZ_CHECK(nlp_bleu_rstrip(cur, k) == k);
        len = k;
    }
    if (flags & 2) {
        outbuf lo;
        outbuf_init(&lo, tiny);
        int rc = nlp_bleu_lowercase(cur, len, &lo.p, &lo.cap, &lo.len);
        int valid = nlp_utf8_is_valid(cur, len);
        if (!valid) {
            FUZZ_CHECK(rc == NLP_EUTF8);
            char *rep = NULL;
            size_t rcap = 0, rlen;
            FUZZ_CHECK(nlp_utf8_repair(cur, len, &rep, &rcap, &rlen, NULL, NULL) == NLP_OK);
            rc = nlp_bleu_lowercase(rep, rlen, &lo.p, &lo.cap, &lo.len);
            free(rep);
        }
        FUZZ_CHECK(rc == NLP_OK);
        FUZZ_CHECK(lo.len < lo.cap && lo.p[lo.len] == '\0');
        FUZZ_CHECK(nlp_utf8_is_valid(lo.p, lo.len));
        free(cur);
        cur = fuzz_dup(lo.p, lo.len);
        len = lo.len;
        nlp_free(lo.p);
    }
    if (flags & 1) {
        outbuf t;
        outbuf_init(&t, tiny);
        FUZZ_CHECK(nlp_bleu_tokenize_13a(cur, len, &t.p, &t.cap, &t.len) == NLP_OK);
        FUZZ_CHECK(t.len < t.cap);
        check_13a_form(t.p, t.len);
        free(cur);
        cur = fuzz_dup(t.p, t.len);
        len = t.len;
        nlp_free(t.p);
    }
    o->p = cur;
    o->len = len;
    o->cap = len;
}

/* The tokens of s[0..n) as NUL-terminated strings (for add_tokens). */
static char **split_tokens(const char *s, size_t n, size_t *count)
{
    size_t nt = count_tokens(s, n);
    char **tok = malloc((nt ? nt : 1) * sizeof *tok);
    FUZZ_CHECK(tok != NULL);
    size_t i = 0, t = 0;
    while (i < n) {
        int32_t cp;
        size_t k = next_cp(s + i, n - i, &cp);
        if (cp >= 0 && nlp_bleu_is_space(cp)) {
            i += k;
            continue;
        }
        size_t start = i;
        while (i < n) {
            k = next_cp(s + i, n - i, &cp);
            if (cp >= 0 && nlp_bleu_is_space(cp))
                break;
            i += k;
        }
        tok[t] = malloc(i - start + 1);
        FUZZ_CHECK(tok[t] != NULL);
        memcpy(tok[t], s + start, i - start);
        tok[t][i - start] = '\0';
        t++;
    }
    FUZZ_CHECK(t == nt);
    *count = nt;
    return tok;
}

static void free_tokens(char **tok, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(tok[i]);
    free(tok);
}

static void check_bleu_result(const nlp_bleu_stats *st)
{
    nlp_bleu_result r;
    nlp_bleu_score(st, &r);
    FUZZ_CHECK(isfinite(r.bleu) && r.bleu >= 0 && r.bleu <= 100 + 1e-9);
    FUZZ_CHECK(isfinite(r.bp) && r.bp >= 0 && r.bp <= 1);
    FUZZ_CHECK(r.hyp_len == st->hyp_len && r.ref_len == st->ref_len);
    for (int k = 0; k < NLP_BLEU_ORDER; k++)
        FUZZ_CHECK(isfinite(r.precision[k]) && r.precision[k] >= 0 && r.precision[k] <= 100 + 1e-9);
}

/* One pair: BLEU and chrF counts with their invariants, into the totals. */
static void pair(nlp_bleu *b, const char *h, size_t hn, const char *r, size_t rn,
                 nlp_bleu_stats *corpus, nlp_chrf_stats *ccorpus, int *chrf_ok)
{
    nlp_bleu_stats st = { 0 };
    char *hc = fuzz_dup(h, hn), *rc_ = fuzz_dup(r, rn);
    FUZZ_CHECK(nlp_bleu_add_line(b, &st, hc, hn, rc_, rn) == NLP_OK);
    size_t nh = count_tokens(hc, hn), nr = count_tokens(rc_, rn);
    FUZZ_CHECK(st.hyp_len == nh && st.ref_len == nr);
    for (int k = 0; k < NLP_BLEU_ORDER; k++) {
        FUZZ_CHECK(st.total[k] == (nh > (size_t)k ? nh - (size_t)k : 0));
        FUZZ_CHECK(st.correct[k] <= st.total[k]);
        FUZZ_CHECK(st.correct[k] <= (nr > (size_t)k ? nr - (size_t)k : 0));
    }
    check_bleu_result(&st);

    /* Token arrays give the same counts when no token holds a NUL. */
    if (!memchr(hc, 0, hn) && !memchr(rc_, 0, rn)) {
        size_t th, tr;
        char **ht = split_tokens(hc, hn, &th), **rt = split_tokens(rc_, rn, &tr);
        nlp_bleu_stats s2 = { 0 };
        FUZZ_CHECK(nlp_bleu_add_tokens(b, &s2, (const char *const *)ht, th,
                                       (const char *const *)rt, tr) == NLP_OK);
        FUZZ_CHECK(memcmp(&s2, &st, sizeof st) == 0);
        free_tokens(ht, th);
        free_tokens(rt, tr);
    }

    /* The hypothesis against itself. */
    nlp_bleu_stats self = { 0 };
    FUZZ_CHECK(nlp_bleu_add_line(b, &self, hc, hn, hc, hn) == NLP_OK);
    for (int k = 0; k < NLP_BLEU_ORDER; k++)
        FUZZ_CHECK(self.correct[k] == self.total[k]);
    if (nh >= NLP_BLEU_ORDER) {
        nlp_bleu_result res;
        nlp_bleu_score(&self, &res);
        FUZZ_CHECK(fabs(res.bleu - 100) < 1e-9);
    }
    FUZZ_CHECK(nlp_bleu_stats_merge(corpus, &st) == NLP_OK);

    /* chrF on valid UTF-8 only. */
    nlp_chrf_stats cs = { 0 };
    int rc = nlp_bleu_chrf_add(b, &cs, hc, hn, rc_, rn);
    if (!nlp_utf8_is_valid(hc, hn) || !nlp_utf8_is_valid(rc_, rn)) {
        FUZZ_CHECK(rc == NLP_EUTF8);
        nlp_chrf_stats zero = { 0 };
        FUZZ_CHECK(memcmp(&cs, &zero, sizeof cs) == 0);
        *chrf_ok = 0;
    } else {
        FUZZ_CHECK(rc == NLP_OK);
        for (int k = 0; k < NLP_CHRF_ORDER; k++)
            FUZZ_CHECK(cs.match[k] <= cs.hyp[k] && cs.match[k] <= cs.ref[k]);
        double score = nlp_bleu_chrf_score(&cs, NLP_CHRF_BETA);
        FUZZ_CHECK(isfinite(score) && score >= 0 && score <= 100 + 1e-9);
        FUZZ_CHECK(nlp_bleu_chrf_merge(ccorpus, &cs) == NLP_OK);
        nlp_chrf_stats cself = { 0 };
        FUZZ_CHECK(nlp_bleu_chrf_add(b, &cself, hc, hn, hc, hn) == NLP_OK);
        for (int k = 0; k < NLP_CHRF_ORDER; k++)
            FUZZ_CHECK(cself.match[k] == cself.hyp[k] && cself.hyp[k] == cself.ref[k]);
        if (cself.hyp[0] > 0)
            FUZZ_CHECK(fabs(nlp_bleu_chrf_score(&cself, NLP_CHRF_BETA) - 100) < 1e-9);
    }
    free(hc);
    free(rc_);
}

/* The next line of s[*pos..n), or the rest when lines is 0. */
static int next_line(const char *s, size_t n, size_t *pos, int lines, const char **l,
                     size_t *ln)
{
    if (*pos > n || (*pos == n && n > 0))
        return 0;
    const char *p = s + *pos;
    size_t rest = n - *pos;
    const char *nl = lines ? memchr(p, '\n', rest) : NULL;
    *l = p;
    *ln = nl ? (size_t)(nl - p) : rest;
    *pos += *ln + 1;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = { data, size };
    uint8_t flags = fuzz_byte(&in);
    const char *text = (const char *)in.p;
    const char *nul = memchr(text, 0, in.n);
    char *rev = NULL;
    const char *h = text, *r;
    size_t hn, rn;
    if (nul) {
        hn = (size_t)(nul - text);
        r = nul + 1;
        rn = in.n - hn - 1;
    } else {
        hn = in.n;
        /* Reversed by code point (invalid bytes one by one), so valid
        ** UTF-8 stays valid. */
        rev = fuzz_dup(text, in.n);
        for (size_t i = 0; i < in.n;) {
            int32_t cp;
            size_t k = next_cp(text + i, in.n - i, &cp);
            memcpy(rev + in.n - i - k, text + i, k);
            i += k;
        }
        r = rev;
        rn = in.n;
    }

    nlp_bleu *b = NULL;
    FUZZ_CHECK(nlp_bleu_new(&b) == NLP_OK && b != NULL);
    nlp_bleu_stats corpus = { 0 }, all = { 0 };
    nlp_chrf_stats ccorpus = { 0 };
    int chrf_ok = 1;
    int lines = (flags & 8) != 0;
    size_t hp = 0, rp = 0;
    const char *hl, *rl;
    size_t hln, rln;
    int npairs = 0;
    while (next_line(h, hn, &hp, lines, &hl, &hln) && next_line(r, rn, &rp, lines, &rl, &rln)) {
        outbuf ho, ro;
        prepare(hl, hln, flags, &ho);
        prepare(rl, rln, flags, &ro);
        pair(b, ho.p, ho.len, ro.p, ro.len, &corpus, &ccorpus, &chrf_ok);
        /* One counter over the whole corpus, as the tool does it. */
        FUZZ_CHECK(nlp_bleu_add_line(b, &all, ho.p, ho.len, ro.p, ro.len) == NLP_OK);
        free(ho.p);
        free(ro.p);
        if (++npairs == 64)
            break;
    }
    FUZZ_CHECK(memcmp(&all, &corpus, sizeof all) == 0);
    check_bleu_result(&corpus);
    if (chrf_ok) {
        double score = nlp_bleu_chrf_score(&ccorpus, NLP_CHRF_BETA);
        FUZZ_CHECK(isfinite(score) && score >= 0 && score <= 100 + 1e-9);
    }
    nlp_bleu_free(b);
    free(rev);
    return 0;
}
