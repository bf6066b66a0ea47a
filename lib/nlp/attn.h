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
** then weights = softmax over the non-padding source positions and
** context = sum_s weights[s] * enc[s].  Padding positions get weight exactly 0;
** a batch row of length 0 gets all-zero
** weights and a zero context (never NaN).
**
** Shapes (time-major like nlp/rnn.h, row-major, contiguous):
**   enc      (S,B,hk)  encoder states, S source steps, batch B
**   lengths  (B)       source length of each row, 0..S, as in nlp/rnn.h:
**                      positions s >= lengths[b] are padding; NULL = all S
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
** Parameters live in an nlp_params buffer (nlp/params.h), declared by
** nlp_attn_new() in the layout phase, like every libnlp layer:
**   additive  "<name>.wq" (ha,hq), "<name>.wk" (ha,hk), "<name>.v" (ha)
**   general   "<name>.w"  (hq,hk)
**   dot       none
** The module refers to them by view index, so it stays valid when a loader
** fills the buffer.
**
** Dot and general use BLAS level 2 per batch row (sgemv/sger over strided
** rows) and level 3 for the key projections; additive uses an sgemm for each
** projection and a fused tanh loop for the scores.
*/
#ifndef NLP_ATTN_H
#define NLP_ATTN_H

#include <stddef.h>

#include <nlp/params.h>
#include <nlp/rng.h>

typedef enum nlp_attn_kind {
    NLP_ATTN_DOT = 0,
    NLP_ATTN_GENERAL = 1,
    NLP_ATTN_ADDITIVE = 2
} nlp_attn_kind;

typedef struct nlp_attn nlp_attn; /* opaque */

/*
** Number of parameter floats for a kind and sizes: dot 0, general hq*hk,
** additive ha*hq + ha*hk + ha (padding between views not included).
*/
size_t nlp_attn_nparams(nlp_attn_kind kind, int hq, int hk, int ha);

/*
** Creates an attention module of the given kind for queries of size hq over
** encoder states of size hk (ha: additive hidden size, ignored otherwise),
** for batches of up to max_B rows over up to max_S source steps (its scratch
** space is sized here, so forward/backward never allocate).  Declares its
** parameters in p (layout phase) under the prefix name; initialise them
** after nlp_params_alloc() with nlp_attn_reset().  p must outlive the
** module.  On success *out is the new module (free with nlp_attn_free) and
** NLP_OK is returned; otherwise *out is NULL and the result is NLP_EINVAL
** (a size < 1, dot with hq != hk, unknown kind), an error of
** nlp_params_add(), or NLP_ENOMEM.
*/
int nlp_attn_new(nlp_attn **out, nlp_attn_kind kind, int hq, int hk, int ha,
                 int max_S, int max_B, nlp_params *p, const char *name);

/* Frees a (not its parameters); NULL is a no-op. */
void nlp_attn_free(nlp_attn *a);

/* The module's kind and sizes (any pointer may be NULL). */
nlp_attn_kind nlp_attn_get_kind(const nlp_attn *a, int *hq, int *hk, int *ha);

/*
** Initialises the parameters (after nlp_params_alloc) like PyTorch's
** nn.Linear default: uniform in +-1/sqrt(fan_in), fan_in = hk for W and Wk,
** hq for Wq, ha for v; drawn from rng in declaration order.
*/
void nlp_attn_reset(nlp_attn *a, nlp_rng *rng);

/* Width kd of the projected keys: dot 0 (keys are enc itself), general hq,
** additive ha. */
int nlp_attn_key_dim(const nlp_attn *a);

/* Floats of per-step cache nlp_attn_forward() needs for B rows: B*ha for
** additive, 0 otherwise. */
size_t nlp_attn_cache_size(const nlp_attn *a, int B);

/*
** keys (S,B,kd) = the query-independent projection of enc (S,B,hk):
** general: keys[s,b] = W enc[s,b]; additive: keys[s,b] = Wk enc[s,b];
** dot: nothing is written (keys may be NULL).  One GEMM.
** Returns NLP_OK, NLP_ERANGE (S > max_S or B > max_B) or NLP_EINVAL (< 1).
*/
int nlp_attn_keys_forward(const nlp_attn *a, float *keys, const float *enc, int S, int B);

/*
** Backward of nlp_attn_keys_forward: with dkeys (S,B,kd) the gradient
** accumulated over all decoder steps, adds into denc (S,B,hk) (NULL to
** skip) and into the parameter gradient (dW or dWk).  No-op for dot.
** Returns as nlp_attn_keys_forward.
*/
int nlp_attn_keys_backward(nlp_attn *a, float *denc, const float *dkeys,
                           const float *enc, int S, int B);

/*
** One decoder step.  Writes weights (B,S) and ctx (B,hk).
**   cache  (B,ha) for additive (keeps Wq q for the backward pass); ignored
**          (may be NULL) otherwise.  Size: nlp_attn_cache_size().
**   keys   from nlp_attn_keys_forward (ignored for dot).
**   q      (B,hq), enc (S,B,hk), lengths (B) or NULL.
** Returns NLP_OK, NLP_ERANGE or NLP_EINVAL as nlp_attn_keys_forward (also
** NLP_EINVAL for a length outside 0..S).
*/
int nlp_attn_forward(const nlp_attn *a, float *ctx, float *weights, float *cache,
                     const float *q, const float *enc, const float *keys,
                     const int *lengths, int S, int B);

/*
** Backward of one nlp_attn_forward step.  Inputs are the step's forward
** inputs and outputs (q, enc, keys, lengths, weights, cache), unchanged, and
** the gradients dctx (B,hk) and, optionally, dweights (B,S) (NULL when the
** weights feed nothing but the context).  Adds (+=) into:
**   dq     (B,hq)      NULL to skip
**   denc   (S,B,hk)    through the context (and, for dot, through the
**                      scores); NULL to skip
**   dkeys  (S,B,kd)    general/additive (pass it to nlp_attn_keys_backward
**                      after the last step); ignored for dot (may be NULL)
**   the parameter gradient (additive: dWq and dv)
** Returns NLP_OK, NLP_ERANGE or NLP_EINVAL as nlp_attn_keys_forward.
*/
int nlp_attn_backward(nlp_attn *a, float *dq, float *denc, float *dkeys,
                      const float *dctx, const float *dweights,
                      const float *q, const float *enc, const float *keys,
                      const int *lengths, const float *weights, const float *cache,
                      int S, int B);

/* "dot", "general", "additive"; NULL for an unknown kind. */
const char *nlp_attn_kind_name(nlp_attn_kind kind);

/* Parses the names above (also "bahdanau" = additive, "luong" = general).
** Returns NLP_OK or NLP_EINVAL. */
int nlp_attn_kind_parse(const char *name, nlp_attn_kind *kind);

#endif
