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
** resize.  Never allocates.  Does not change the forward cache, so it may
** be called again (gradients add up again).
*/
int nlp_rnn_backward(nlp_rnn *r, float *dx, float *dh0, float *dc0,
                     const float *dy, const float *dhT, const float *dcT,
                     const float *x);

/* Parses "lstm" / "gru" / "rnn" (also "tanh").  NLP_OK or NLP_EINVAL. */
int nlp_rnn_cell_parse(const char *name, nlp_rnn_cell *cell);

/* "lstm", "gru" or "rnn". */
const char *nlp_rnn_cell_name(nlp_rnn_cell cell);

#endif
