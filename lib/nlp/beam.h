/*
** beam: beam search (and greedy search, its k = 1 case) over any decoder
** that steps a batch of rows.
**
**   nlp_beam_config c;
**   nlp_beam_config_default(&c);
**   c.V = V; c.bos = BOS; c.eos = EOS; c.k = 5; c.length_penalty = 0.6f;
**   nlp_beam *b;
**   nlp_beam_new(&b, &c, max_n, max_S, max_len);   once, sized for the largest batch
**   ... begin the model's decoder for n sentences with capacity n*k rows ...
**   nlp_beam_search(b, &ops, n, src_len, max_len_of, &e);
**   nlp_beam_hyp h;
**   nlp_beam_result(b, i, 0, &h);                   best hypothesis of sentence i
**   nlp_beam_free(b);
**
** The model is seen only through nlp_beam_ops: step (one decoder step for
** every live row, log-probabilities out) and reorder (rows take the state
** of other rows), so the search is tested on toy decoders and serves any
** model.  Rows are the live hypotheses, grouped by sentence in sentence
** order, each sentence's rows ranked best first.
**
** The algorithm.  Each hypothesis carries the sum of its tokens' log-
** probabilities (its raw score).  At every step, for every live sentence,
** the candidates are all (live hypothesis, token) continuations except the
** banned tokens, ranked by raw score, ties by the lower (rank of the
** hypothesis, token id), i.e. the lower index in the sentence's rows x V
** block; the k best that do not end in EOS become the live hypotheses of
** the next step (a min-heap of k over the rows x V candidates, most of
** which fail one compare with its worst: O(kV) per sentence, no sort; about
** 2 ns a candidate, against the hundreds of multiply-adds a candidate
** costs in a decoder's output layer).  Each EOS continuation ranked above the last of
** them (all of them when fewer than k remain) is a finished hypothesis and
** takes no live slot.  With k = 1 this is exactly greedy decoding: the arg-max
** token at each step, ties to the lowest id, ending at the first EOS.
** Finished hypotheses are ranked by the normalised score raw / lp(steps),
** lp the GNMT length penalty ((5 + steps) / 6)^alpha, steps the number of
** log-probabilities in the sum (the tokens, plus the EOS when it ended in
** one); the n_best best are kept.  A sentence's search ends when
**   - its n_best-th kept hypothesis scores at least the best live raw score
**     divided by lp(its max length): no descendant of a live one can do
**     better, since log-probabilities are <= 0 (with alpha = 0: the best
**     finished raw score >= the best live raw score, for n_best = 1);
**   - with alpha > 0, k hypotheses have finished (GNMT's rule; it may miss
**     a longer, better one);
**   - it reaches its maximum length: the live hypotheses are then finished
**     as they are, without EOS (nlp_beam_hyp.ended = 0);
**   - or no candidate is left.
** A wider beam usually scores better, but not always: it may prune the
** prefix a narrower one (greedy too) follows for prefixes that look better
** and end worse (tests/test_beam.c has such a case).  The beam is exact
** only when it can hold every hypothesis.
** A sentence that ends is dropped from the rows (reorder with fewer rows),
** so the decoder's work shrinks as sentences finish.  With want_attention,
** each step's attention row is stored per step and live slot with a back-
** pointer to the parent slot, and a result's matrix is rebuilt along its
** own ancestry.
**
** Ownership: nlp_beam_new allocates everything a search needs (sized by
** its arguments and c->V), so a search allocates nothing.  The ops and
** their context are borrowed during nlp_beam_search only.  Results live in
** the nlp_beam until the next search or nlp_beam_free.
*/
#ifndef NLP_BEAM_H
#define NLP_BEAM_H

#include <nlp/error.h>

/* What a decoder must offer the search.  rows = the live hypotheses, each a
** row of the model's batched decoder state. */
typedef struct nlp_beam_ops {
    void *ctx;
    int V;            /* target vocabulary size */
    /* One decoder step for rows 0..rows-1: row r's previous token is prev[r];
    ** writes log-probabilities over the V targets to logp[r*V .. r*V+V) and
    ** advances each row's state.  If attn is not NULL, *attn is set to the
    ** step's attention weights, rows x S (S = the source batch's padded
    ** length, row-major), valid until the next call.  Returns NLP_OK or a
    ** negative code with e set. */
    int (*step)(void *ctx, const int *prev, int rows, float *logp,
                const float **attn, nlp_error *e);
    /* Re-arrange rows: new row r takes the state of old row parent[r]
    ** (0 <= parent[r] < the old row count), for r < rows; rows may be more
    ** (expanding each sentence to k beams after the first step) or fewer
    ** (dropping finished sentences) than before, never more than the
    ** capacity the decoder was begun with. */
    int (*reorder)(void *ctx, const int *parent, int rows, nlp_error *e);
} nlp_beam_ops;

typedef struct nlp_beam_config {
    int V;                /* target vocabulary size, must equal ops->V; 0 (must be set) */
    int k;                /* beam width, >= 1; 1 = greedy; 5 */
    int n_best;           /* hypotheses returned per sentence, 1..k; 1 */
    float length_penalty; /* GNMT alpha, finite, 0..NLP_BEAM_ALPHA_MAX; 0 = raw sum */
    int bos;              /* start id, the first prev token, 0..V-1; -1 (must be set) */
    int eos;              /* end id, 0..V-1; -1 (must be set) */
    int pad;              /* padding id, never generated, or -1 = none; -1 */
    const int *ban;       /* n_ban more ids never generated (e.g. <s>, <unk>), or NULL;
                             copied by nlp_beam_new; must not hold eos; NULL */
    int n_ban;            /* 0 */
    int want_attention;   /* keep each result's attention matrix; 0 */
} nlp_beam_config;

/* The largest length_penalty accepted (GNMT used 0.6-1). */
#define NLP_BEAM_ALPHA_MAX 10.0f

/* Fills c with the defaults written next to each field. */
void nlp_beam_config_default(nlp_beam_config *c);

/*
** NLP_OK if c is usable, else NLP_EINVAL with the reason in e (which may be
** NULL), e.g. "beam: n_best 6 is above k 5".  nlp_beam_new runs this.
*/
int nlp_beam_config_check(const nlp_beam_config *c, nlp_error *e);

/* GNMT's length penalty ((5 + steps) / 6)^alpha; 1 when alpha = 0. */
double nlp_beam_length_penalty(float alpha, int steps);

typedef struct nlp_beam nlp_beam;

/*
** A search for up to max_n sentences (>= 1) at once, sources of up to
** max_S tokens (>= 1; the columns of the attention rows) and targets of up
** to max_len tokens (>= 1), with the configuration c (copied, the ban list
** too).  Allocates all its memory here: about max_n*k*(V floats + max_len
** ints), plus max_n*k*max_len*max_S floats with want_attention.  Returns
** NLP_OK with *out set, NLP_EINVAL for a bad c or size (nlp_beam_config_check
** says why) or sizes whose product overflows, or NLP_ENOMEM; *out is NULL on
** failure.  Free with nlp_beam_free.
*/
int nlp_beam_new(nlp_beam **out, const nlp_beam_config *c, int max_n, int max_S,
                 int max_len);

/* Frees b.  NULL is a no-op. */
void nlp_beam_free(nlp_beam *b);

/*
** Searches the n sentences (0 <= n <= max_n) whose decoder states are rows
** 0..n-1 of ops (the caller began the model's decoder for n sentences with
** a capacity of n*k rows; the first prev token of each is c->bos).
** src_len[i] (0..max_S) is sentence i's source length: its attention rows
** are read from columns 0..src_len[i]-1 of the step's rows x S matrix, S
** being max(src_len[0..n)) (the padded length of the source batch); src_len
** may be NULL without want_attention.  max_len[i] (0..max_len of
** nlp_beam_new) is the most tokens sentence i's hypotheses may have (0
** gives one empty hypothesis, no step); NULL = the max_len b was sized for.
** ops->step is called at most max(max_len[i]) times, ops->reorder after a
** step whenever the rows change (and before the first step when a sentence
** of max length 0 leaves).  Returns NLP_OK; NLP_EINVAL (bad argument,
** ops->V != c->V, a size above what b was sized for, no attention from the
** decoder with want_attention and a source that is not empty); NLP_ERANGE (the decoder gave a log-
** probability that is not finite or is above 0, or a non-finite attention
** weight); or the code ops->step/reorder returned (their e kept).  e says
** what was wrong; on error b holds no results.  Never allocates.
*/
int nlp_beam_search(nlp_beam *b, const nlp_beam_ops *ops, int n, const int *src_len,
                    const int *max_len, nlp_error *e);

/* One result hypothesis; the pointers are into b, valid until the next
** search or nlp_beam_free. */
typedef struct nlp_beam_hyp {
    const int *tokens;   /* len ids, without BOS and without EOS */
    int len;
    double logprob;      /* sum of the log-probabilities, EOS's included */
    double score;        /* logprob / lp(len + ended): what the ranking used */
    int ended;           /* 1 = ended in EOS, 0 = cut at the max length */
    const float *attn;   /* len x src_len row-major (row t = the weights the
                            step emitting tokens[t] gave the source), or NULL
                            without want_attention */
    int src_len;         /* the columns of attn */
} nlp_beam_hyp;

/* The number of hypotheses of sentence i of the last search (1..n_best;
** fewer than n_best only when fewer candidates existed), or 0 when i is
** out of range or the last search failed. */
int nlp_beam_count(const nlp_beam *b, int i);

/*
** Fills *h with hypothesis j (0 = best; sorted by score, best first) of
** sentence i of the last search.  Returns NLP_OK, or NLP_EINVAL when i or j
** is out of range (then *h is zeroed).
*/
int nlp_beam_result(const nlp_beam *b, int i, int j, nlp_beam_hyp *h);

#endif
