/*
** rnn: recurrent layers (vanilla tanh RNN, LSTM, GRU), stacked and
** optionally bidirectional, batched time-major forward over T steps and
** backward through time.
**
** Shapes (all row-major float32, time-major as in PyTorch's default):
**   x   input               (T, B, I)
**   y   output of the top layer (T, B, D*H), D = 2 when bidirectional else 1;
**       the forward direction fills columns [0,H), the reverse one [H,2H)
**   h0, hT, c0, cT  states  (L*D, B, H), index l*D + d (layer l, direction
**       d = 0 forward, 1 reverse), like PyTorch's h_n; c only for LSTM.
**
** Cells follow PyTorch exactly, so weights and outputs match torch.nn.RNN,
** LSTM and GRU (with their default gate orders):
**   tanh:  h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
**   LSTM:  [i f g o] = W_ih x + b_ih + W_hh h + b_hh  (gates in this order)
**          c' = s(f) c + s(i) tanh(g),  h' = s(o) tanh(c')
**   GRU:   [r z n] gate blocks, r = s(x_r + h_r), z = s(x_z + h_z),
**          n = tanh(x_n + r * (W_hn h + b_hn)),  h' = (1 - z) n + z h
**          where x_* = W_i* x + b_i*, h_* = W_h* h + b_h*.
** Parameters, per layer l and direction (suffix "_reverse" for d = 1),
** declared in the nlp_params buffer under PyTorch's names:
**   <name>.weight_ih_l<l>[_reverse]  (G*H, I_l)  I_0 = I, I_l = D*H above
**   <name>.weight_hh_l<l>[_reverse]  (G*H, H)
**   <name>.bias_ih_l<l>[_reverse]    (G*H)
**   <name>.bias_hh_l<l>[_reverse]    (G*H)
** with G = 1 (tanh), 4 (LSTM), 3 (GRU); gate blocks of H rows, fused.
**
** Variable lengths: lengths (B) gives each sequence's length (0..T).  At a
** padded step t >= lengths[b] the state of sequence b is left unchanged and
** its output row is zero, and no gradient flows through that step; so the
** final state is the state after the sequence's own last step, and the
** reverse direction of a bidirectional layer starts at t = lengths[b]-1
** from h0.  NULL lengths means every sequence has length T.
**
** Truncated BPTT: pass the final state hT (cT) of one chunk as h0 (c0) of
** the next.  The state is detached at the chunk boundary: backward of the
** next chunk stops at its h0 (it can report dL/dh0 if asked, and the caller
** may ignore it).  hT may be the same array as h0 (cT as c0), so one state
** buffer can be carried in place.
**
** Dropout (config.dropout = p > 0) is inverted dropout on the outputs of
** every layer except the top one (what feeds the next layer), in training
** forwards only, with masks drawn from the rng passed to forward, so the
** same rng state reproduces the same masks.
**
** Speed: the input projections of all T steps are one GEMM per layer and
** direction; each step is one GEMM (B, G*H) over the batch with the gates
** fused; the backward recurrence does one GEMM per step, and the weight
** gradients over all T steps are one GEMM each afterwards.  All
** activations live in a workspace allocated by nlp_rnn_new() for at most
** max_T steps and max_B sequences: forward and backward never allocate.
**
** Step-wise use (unidirectional stacks): see nlp_rnn_step_begin() below,
** for decoders whose input at step t depends on their output at t-1.
*/
#ifndef NLP_RNN_H
#define NLP_RNN_H

#include <stddef.h>

#include <nlp/params.h>
#include <nlp/rng.h>

typedef enum nlp_rnn_cell {
    NLP_RNN_TANH = 0, /* vanilla Elman RNN, tanh */
    NLP_RNN_LSTM = 1,
    NLP_RNN_GRU = 2
} nlp_rnn_cell;

typedef struct nlp_rnn_config {
    nlp_rnn_cell cell; /* NLP_RNN_LSTM */
    int input;         /* I, input features of layer 0 (no default: set it) */
    int hidden;        /* H, state size per direction (no default: set it) */
    int layers;        /* L, stacked layers; 1 */
    int bidirectional; /* 0 or 1; 0 */
    float dropout;     /* p in [0,1) between layers, training only; 0 */
    int max_T;         /* workspace capacity in steps; 64 */
    int max_B;         /* workspace capacity in sequences; 32 */
} nlp_rnn_config;

typedef struct nlp_rnn nlp_rnn; /* opaque */

/* Fills c with the defaults written next to each field above (input and
** hidden are set to 0 and must be set by the caller). */
void nlp_rnn_config_default(nlp_rnn_config *c);

/*
** Creates a recurrent stack: declares its parameters in p (which must be in
** the layout phase; see nlp/params.h) under the prefix name, and allocates
** its workspace for max_T x max_B.  The parameters are usable after
** nlp_params_alloc(p); initialise them with nlp_rnn_reset().  p must
** outlive the rnn.  On success *out is the new object (free with
** nlp_rnn_free) and NLP_OK is returned; otherwise *out is NULL and the
** result is NLP_EINVAL (a field out of range, unknown cell), an error of
** nlp_params_add(), or NLP_ENOMEM.  On failure some views may already have
** been declared in p; discard p too.
*/
int nlp_rnn_new(nlp_rnn **out, const nlp_rnn_config *cfg, nlp_params *p,
                const char *name);

/*
** Another stack over the parameters of like, with a workspace of its own
** for max_T x max_B: the same configuration and parameter views, but read
** from p and with gradients added into p's grad buffer.  p must have the
** layout of like's parameters (the same views at the same offsets): e.g. a
** copy of like's nlp_params struct whose grad points to another buffer, so
** that worker threads run forward and backward on their shares of a batch
** at once, each into its own gradients (nlp/train.h).  Neither p nor like
** is changed; p must outlive the new stack.  Returns NLP_OK with *out set
** (free with nlp_rnn_free), NLP_EINVAL (NULL, another layout, max < 1),
** NLP_ERANGE or NLP_ENOMEM; *out is NULL on failure.
*/
int nlp_rnn_new_shared(nlp_rnn **out, const nlp_rnn *like, nlp_params *p, int max_T,
                       int max_B);

/* Releases r and its workspace (not the parameters).  NULL is a no-op. */
void nlp_rnn_free(nlp_rnn *r);

/* The configuration r was made with (max_T/max_B updated by resize). */
const nlp_rnn_config *nlp_rnn_get_config(const nlp_rnn *r);

/*
** Reallocates the workspace for max_T x max_B (e.g. B = 1, T = 1 for
** generation after training).  Not to be called in a training loop: it
** allocates.  Returns NLP_OK, NLP_EINVAL (< 1) or NLP_ENOMEM (r unchanged).
** Invalidates the cache of the last forward.
*/
int nlp_rnn_resize(nlp_rnn *r, int max_T, int max_B);

/*
** Initialises r's parameters (after nlp_params_alloc), drawing from rng:
** weight_ih Xavier-uniform per (H, I_l) gate block, weight_hh orthogonal
** per (H,H) gate block, biases 0 except the LSTM forget gate, whose
** bias_ih block is 1 (so the gate starts open; Jozefowicz et al. 2015).
*/
void nlp_rnn_reset(nlp_rnn *r, nlp_rng *rng);

/* D*H: features per step of the output y. */
int nlp_rnn_output_size(const nlp_rnn *r);

/* L*D*B*H: floats in one state array (h0, hT, c0, cT) for batch B. */
size_t nlp_rnn_state_size(const nlp_rnn *r, int B);

/* Bytes of workspace r holds (for memory reports). */
size_t nlp_rnn_workspace_bytes(const nlp_rnn *r);

/*
** Forward over T steps of B sequences; caches what backward needs.
**   y       (T,B,D*H) out, overwritten; must not alias x
**   hT, cT  (L*D,B,H) out, final states; either may be NULL (cT ignored
**           unless LSTM); hT may equal h0 and cT may equal c0
**   x       (T,B,I) in
**   h0, c0  (L*D,B,H) in, initial states; NULL means zeros
**   lengths (B) in, each in 0..T, or NULL for all T (see above); copied
**   train   nonzero: apply dropout (if configured) and draw from rng
**   rng     used only when train && dropout > 0; may be NULL otherwise
** Returns NLP_OK; NLP_ERANGE if T > max_T or B > max_B; NLP_EINVAL if
** T < 1, B < 1, a length outside 0..T, or rng NULL when it is needed.
** Never allocates.
*/
int nlp_rnn_forward(nlp_rnn *r, float *y, float *hT, float *cT,
                    const float *x, const float *h0, const float *c0,
                    const int *lengths, int T, int B, int train, nlp_rng *rng);

/*
** Layer 0's input projection with its biases, as the forward adds them
** (W_ih x + b_ih + b_hh; for a GRU the n block without b_hn), for
** direction d of n input rows x (n, I): out row i (G*H floats, rows ldo
** apart) for x row i.  For inference over a fixed vocabulary, whose rows
** can be computed once and looked up (nlp_rnn_forward_rows).  NLP_OK, or
** NLP_EINVAL (d not a direction, n < 0, ldo < G*H).  Never allocates.
*/
int nlp_rnn_project_input(const nlp_rnn *r, int d, const float *x, int n, float *out,
                          size_t ldo);

/*
** Inference forward over ids whose layer-0 input projections are given:
** the step input of (t, b) is the projection row ids[t*B + b] of rows[d]
** (rows ld floats apart, as nlp_rnn_project_input makes them) for each
** direction d (D pointers); an id < 0 is a padded step.  Otherwise as
** nlp_rnn_forward with x unused, zero initial states, no final states and
** train 0.  It leaves nothing for a backward (which returns NLP_EINVAL).
** Returns NLP_OK, NLP_ERANGE (T > max_T, B > max_B), NLP_EINVAL (T or B
** < 1, NULL rows, ld < G*H, a bad length).  The ids are not range-checked:
** each must index a row of every rows[d].  Never allocates.
*/
int nlp_rnn_forward_rows(nlp_rnn *r, float *y, const float *const *rows, size_t ld,
                         const int *ids, const int *lengths, int T, int B);

/*
** Backward through time of the last forward (same T, B, lengths, masks).
**   dx       (T,B,I) += dL/dx; NULL to skip (e.g. input is an embedding
**            whose gradient is not wanted); x must not alias dx
**   dh0, dc0 (L*D,B,H) += dL/dh0, dL/dc0; NULL to skip (detached state)
**   dy       (T,B,D*H) in, dL/dy; rows of padded steps are ignored
**   dhT, dcT (L*D,B,H) in, dL/d(final state), NULL means zero; dhT may
**            equal dh0 and dcT may equal dc0
**   x        (T,B,I) in: the same input given to forward, unchanged
** Adds (+=) the parameter gradients into the grad buffer of r's params.
** Returns NLP_OK, or NLP_EINVAL if there was no forward since creation or
** resize (or a step batch came after it).  Never allocates.  Does not change the forward cache, so it may
** be called again (gradients add up again).
*/
int nlp_rnn_backward(nlp_rnn *r, float *dx, float *dh0, float *dc0,
                     const float *dy, const float *dhT, const float *dcT,
                     const float *x);

/*
** Step-wise forward and backward, one time step of every layer per call,
** for a decoder whose input at step t depends on its output at step t-1
** (Bahdanau attention, Luong input feeding, scheduled sampling), which the
** whole-sequence calls cannot express.  Unidirectional stacks only.  For
** one batch of B sequences and T <= max_T steps:
**
**     nlp_rnn_step_begin(r, h0, c0, lengths, B, train);
**     for (t = 0; t < T; t++) {
**         ... build x_t (B,I), e.g. [embedding of y_{t-1}'s word; context] ...
**         nlp_rnn_step_forward(r, t, y + t*B*H, NULL, NULL, x_t, rng);
**         ... read y_t = y + t*B*H (the top layer's h_t): attention, loss ...
**     }
**     memset(dy, 0, ...);  ... dy[t] = dL/dy_t from the loss and attention ...
**     for (t = T - 1; t >= 0; t--) {
**         dx_t = 0;
**         nlp_rnn_step_backward(r, t, dx_t, dh0, dc0, dy + t*B*H, NULL, NULL);
**         ... route dx_t (B,I): the part that came from y_{t-1} (through
**             whatever the caller computed from it) goes into dy[t-1] ...
**     }
**
** So step t's backward receives the whole gradient of y_t: from the loss
** and attention at t and, through the caller, from step t+1's input, whose
** backward has already returned it.  The arithmetic is the whole-sequence
** layer's: the same parameters (views, PyTorch names), fused gates and
** GEMMs, except that the input projection is one (B, G*H) GEMM per step;
** T steps give the outputs, final states and gradients of nlp_rnn_forward
** and nlp_rnn_backward over the same T steps, up to float rounding.  The
** steps use the workspace of nlp_rnn_new() (max_T steps, max_B sequences,
** plus a copy of the step inputs), so they never allocate; a step batch and
** a whole-sequence forward share it and each invalidates the other's
** cache.  Lengths mean what they mean in nlp_rnn_forward: at a step
** t >= lengths[b], sequence b keeps its state, outputs zero and receives no
** gradient.  Dropout masks are drawn step by step (every layer of step 0,
** then step 1, ...), so the same rng state does not give the masks of a
** whole-sequence forward.  For generation and beam search, begin a batch
** of one step for each step, with the (reordered) states that the last
** step returned in h_t, c_t as h0, c0; beginning costs a copy of h0, c0.
*/

/*
** Starts a batch of B sequences for the step-wise calls, from states
**   h0, c0  (L,B,H) in, initial states; NULL means zeros (c0 LSTM only);
**           copied, so they may be reused or overwritten at once
**   lengths (B) in, each in 0..max_T, or NULL for no padding; copied
**   train   nonzero: apply dropout (if configured) in the steps
** Returns NLP_OK; NLP_EINVAL if r is bidirectional, B < 1 or a length is
** out of range; NLP_ERANGE if B > max_B.  On error nothing is changed.
** Drops the cache of any earlier forward (step-wise or not).  Never
** allocates.
*/
int nlp_rnn_step_begin(nlp_rnn *r, const float *h0, const float *c0, const int *lengths,
                       int B, int train);

/*
** Forward of step t (0, 1, 2, ... in order) of every layer for the batch.
**   y_t  (B,H) out: the top layer's output, overwritten (= its state h_t,
**        zero rows for padded sequences); may be the same array as x_t
**   h_t, c_t (L,B,H) out: every layer's state after the step, NULL to skip
**        (c_t LSTM only); after the last step they are hT, cT
**   x_t  (B,I) in: the step's input, copied (the caller may reuse it)
**   rng  draws the dropout masks when the batch trains with dropout (and
**        L > 1); may be NULL otherwise
** Returns NLP_OK; NLP_EINVAL if no batch was begun, t is not the next step,
** a backward step has been taken since the batch began, y_t or x_t is
** NULL, or rng is NULL when needed; NLP_ERANGE if t >= max_T.  Never
** allocates.
*/
int nlp_rnn_step_forward(nlp_rnn *r, int t, float *y_t, float *h_t, float *c_t,
                         const float *x_t, nlp_rng *rng);

/*
** Backward of step t, called for t = T-1, T-2, ..., 0 after T forward
** steps (the masks, lengths and states of those steps).
**   dx_t     (B,I) += dL/dx_t; NULL to skip
**   dh0, dc0 (L,B,H) += dL/dh0, dL/dc0 when t == 0 (ignored otherwise);
**            NULL to skip; may be the same arrays as dh_t, dc_t
**   dy_t     (B,H) in: dL/dy_t, everything that depends on the output of
**            step t (loss, attention, the caller's input to step t+1);
**            rows of padded sequences are ignored
**   dh_t, dc_t (L,B,H) in: gradients of the states after step t other than
**            through y_t (e.g. dL/dhT, dL/dcT at t = T-1, or a use of a
**            lower layer's state); NULL means zero
** The gradients of the states before step t are carried inside r to the
** call for t-1.  When step 0 is done, the parameter gradients of all T
** steps are added (+=) into the grad buffer of r's params, one GEMM per
** weight; until then it holds nothing of this batch, so run every step down
** to 0.  Calling again with t = T-1 starts the backward over (the
** gradients add up again).  Returns NLP_OK, or NLP_EINVAL if no step was
** forwarded since nlp_rnn_step_begin, t is neither T-1 nor one below the
** last backward step, or dy_t is NULL.  Never allocates.
*/
int nlp_rnn_step_backward(nlp_rnn *r, int t, float *dx_t, float *dh0, float *dc0,
                          const float *dy_t, const float *dh_t, const float *dc_t);

/* Parses "lstm" / "gru" / "rnn" (also "tanh").  NLP_OK or NLP_EINVAL. */
int nlp_rnn_cell_parse(const char *name, nlp_rnn_cell *cell);

/* "lstm", "gru" or "rnn". */
const char *nlp_rnn_cell_name(nlp_rnn_cell cell);

#endif
