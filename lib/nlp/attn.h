/*
** attn: attention of decoder queries over encoder states.
**
** Three scoring functions (Luong et al. 2015; Bahdanau et al. 2015):
**
**   NLP_ATTN_DOT       score(q, k) = q . k                    (hq == hk)
**   NLP_ATTN_GENERAL   score(q, k) = q^T W k,  W (hq,hk)
**   NLP_ATTN_ADDITIVE  score(q, k) = v^T tanh(Wq q + Wk k),
**                      Wq (ha,hq), Wk (ha,hk), v (ha)         (no biases)
**
** then weights = softmax over the unmasked source positions and
** context = sum_s weights[s] * enc[s].  Masked (padding) positions get weight
** exactly 0; a batch row whose every position is masked gets all-zero
** weights and a zero context (never NaN).
**
** Shapes (time-major like nlp/rnn.h, row-major, contiguous):
**   enc      (S,B,hk)  encoder states, S source steps, batch B
**   mask     (S,B)     1 = real token, 0 = padding; NULL = nothing masked
**   keys     (S,B,kd)  projected keys, kd = nlp_attn_key_dim(): the part of
**                      the score that depends only on enc, computed ONCE per
**                      source batch and reused at every decoder step
**   q        (B,hq)    the decoder queries of one step
**   weights  (B,S)     attention weights of one step
**   ctx      (B,hk)    context vectors of one step
**
** A decoder step is:  nlp_attn_keys_forward() once per source batch, then
** nlp_attn_forward() per decoder step.  Backward runs in reverse:
** nlp_attn_backward() per step (accumulating into dkeys and denc), then
** nlp_attn_keys_backward() once.  As everywhere in libnlp, the caller owns
** every activation buffer (enc, keys, weights, ctx and their gradients) and
** backward ADDS (+=) into its outputs, so zero them before a batch.
**
** Parameters live in the caller's flat parameter buffer (nlp/param.h):
** reserve nlp_attn_nparams() floats there and point the module at them with
** nlp_attn_bind().  Layout inside that block: additive: Wq (ha,hq), then
** Wk (ha,hk), then v (ha); general: W (hq,hk); dot: nothing.
**
** Dot and general use BLAS level 2 per batch row (sgemv/sger over strided
** rows) and level 3 for the key projections; additive uses an sgemm for each
** projection and a fused tanh loop for the scores.
*/
#ifndef NLP_ATTN_H
#define NLP_ATTN_H

#include <stddef.h>

#include <nlp/rng.h>

typedef enum nlp_attn_kind {
    NLP_ATTN_DOT = 0,
    NLP_ATTN_GENERAL = 1,
    NLP_ATTN_ADDITIVE = 2
} nlp_attn_kind;

typedef struct nlp_attn {
    nlp_attn_kind kind;
    int hq, hk, ha;         /* query, key (encoder), additive hidden sizes */
    int max_s, max_b;       /* largest S and B the scratch space allows */
    float *w, *g;           /* bound parameter block and its gradient */
    float *wq, *wk, *v;     /* views: additive Wq (ha,hq), Wk (ha,hk), v (ha);
                               general: wk = W (hq,hk); NULL when absent */
    float *dwq, *dwk, *dv;  /* the matching gradient views */
    float *scratch;         /* internal work space (owned) */
} nlp_attn;

/*
** Number of parameter floats for a kind and sizes: dot 0, general hq*hk,
** additive ha*hq + ha*hk + ha.  Returns 0 also for invalid sizes (dot with
** hq != hk, or a size <= 0): check with nlp_attn_new().
*/
size_t nlp_attn_nparams(nlp_attn_kind kind, int hq, int hk, int ha);

/* Width kd of the projected keys: dot 0 (keys are enc itself), general hq,
** additive ha. */
int nlp_attn_key_dim(const nlp_attn *a);

/*
** A module of the given kind for queries of size hq over encoder states of
** size hk (ha: additive hidden size, ignored otherwise), for batches of up to
** max_b rows over up to max_s source steps (scratch space is sized once
** here, so forward/backward never allocate).  Parameters are unbound: call
** nlp_attn_bind() before use.  Returns NULL when out of memory or the sizes
** are invalid (dot needs hq == hk; every size > 0).  Free with
** nlp_attn_free().
*/
nlp_attn *nlp_attn_new(nlp_attn_kind kind, int hq, int hk, int ha, int max_s, int max_b);

/* Frees a (not the parameters it is bound to); NULL is a no-op. */
void nlp_attn_free(nlp_attn *a);

/*
** Points the parameter views at w and the gradient views at g, each a block
** of nlp_attn_nparams() floats inside the caller's buffers (g may be NULL
** for inference only).  The module does not own them; they must outlive
** its use.
*/
void nlp_attn_bind(nlp_attn *a, float *w, float *g);

/*
** Initialises the bound parameters like PyTorch's nn.Linear default:
** uniform in +-1/sqrt(fan_in) (fan_in hk for W and Wk, hq for Wq, ha for v).
*/
void nlp_attn_init(nlp_attn *a, nlp_rng *rng);

/*
** keys (S,B,kd) = the query-independent projection of enc (S,B,hk):
** general: keys[s,b] = W enc[s,b]; additive: keys[s,b] = Wk enc[s,b];
** dot: nothing is written (keys may be NULL).  One GEMM.
** Returns NLP_OK or NLP_EINVAL (S or B out of [1, max]).
*/
int nlp_attn_keys_forward(const nlp_attn *a, float *keys, const float *enc, int S, int B);

/*
** Backward of nlp_attn_keys_forward: with dkeys (S,B,kd) the gradient
** accumulated over all decoder steps, adds into denc (S,B,hk) and into the
** bound parameter gradient (dW or dWk).  No-op for dot.  Returns NLP_OK or
** NLP_EINVAL.
*/
int nlp_attn_keys_backward(nlp_attn *a, float *denc, const float *dkeys,
                           const float *enc, int S, int B);

/*
** One decoder step.  Writes weights (B,S) and ctx (B,hk).
**   cache  (B,ha) for additive (stores Wq q for the backward pass); ignored
**          (may be NULL) otherwise.  Size: nlp_attn_cache_size().
**   keys   from nlp_attn_keys_forward (ignored for dot).
** Returns NLP_OK or NLP_EINVAL (S or B out of range).
*/
int nlp_attn_forward(const nlp_attn *a, float *ctx, float *weights, float *cache,
                     const float *q, const float *enc, const float *keys,
                     const float *mask, int S, int B);

/* Floats of per-step cache nlp_attn_forward needs for B rows: B*ha for
** additive, 0 otherwise. */
size_t nlp_attn_cache_size(const nlp_attn *a, int B);

/*
** Backward of one nlp_attn_forward step.  Inputs are the step's forward
** inputs and outputs (q, enc, keys, mask, weights, cache) and the
** gradients dctx (B,hk) and, optionally, dweights (B,S) (NULL when the
** weights feed nothing but the context).  Adds (+=) into:
**   dq     (B,hq)
**   denc   (S,B,hk)  through the context (and, for dot, through the scores)
**   dkeys  (S,B,kd)  general/additive; ignored for dot (may be NULL)
**   the bound parameter gradient (additive: dWq and dv)
** Returns NLP_OK or NLP_EINVAL (S or B out of range, or no gradient bound
** for a kind with parameters).
*/
int nlp_attn_backward(nlp_attn *a, float *dq, float *denc, float *dkeys,
                      const float *dctx, const float *dweights,
                      const float *q, const float *enc, const float *keys,
                      const float *mask, const float *weights, const float *cache,
                      int S, int B);

/* "dot", "general", "additive"; NULL for an unknown kind. */
const char *nlp_attn_kind_name(nlp_attn_kind kind);

/* Parses the names above (also "bahdanau" = additive, "luong" = general).
** Returns NLP_OK or NLP_EINVAL. */
int nlp_attn_kind_parse(const char *name, nlp_attn_kind *kind);

#endif
