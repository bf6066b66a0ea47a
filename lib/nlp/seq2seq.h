/*
** seq2seq: an attention encoder-decoder (Bahdanau et al. 2015; Luong et
** al. 2015) for translation, or any token sequence to token sequence task.
**
**   source ids -> embedding (Vs,E) -> dropout -> bidirectional GRU/LSTM,
**       enc_layers stacked -> memory M (S,B,C)
**   bridge: the top encoder layer's final states [h_fwd; h_bwd] (2H) ->
**       tanh(W [h_fwd; h_bwd] + b) -> the initial h of EVERY decoder layer
**       (one linear 2H -> dec_layers*H); for LSTM the same from the final
**       cells, a second linear, gives every layer's c
**   target ids (BOS first) -> embedding (Vt,E) -> dropout = e_t
**   decoder: unidirectional GRU/LSTM, dec_layers stacked, one batched step
**       per target position (B rows per GEMM), top layer output h_t
**   attention (ctx_t, C features, over the non-padding source positions):
**     BAHDANAU       additive, scored with the PREVIOUS top state h_{t-1}
**                    (the bridge's state at t = 0); the decoder's input is
**                    [e_t; ctx_t], so the step-wise rnn API is used
**     LUONG_GENERAL  q^T W k, scored with the CURRENT state h_t; input e_t
**     LUONG_DOT      q . k with the current state; the memory is then a
**                    projection (no bias, 2H -> H, "attn.proj") of the
**                    encoder outputs, so that C = H (else C = 2H)
**     NONE           no context (the bridge carries the source); input e_t
**   output features f_t = [h_t; ctx_t; e_t] (H + C + E; no ctx for NONE),
**       as ../shared/anchors/torch_seq2seq.py, -> dropout ->
**     untied: logits = W_out f_t + b_out, W_out (Vt, H+C+E)
**     tied (tie_embeddings): logits = Emb_t (W_p f_t + b_p) + b_out: the
**       features are projected to E ("out.proj", a linear H+C+E -> E) and
**       scored against the target embedding table itself ("tgt_embed.
**       weight" serves both as input and output layer), so the output layer
**       has no (Vt, F) matrix of its own
**   loss: sum over the real target tokens (t < tgt_len[b]) of the
**       label-smoothed cross-entropy (1-ls) * -log p(y) + ls * mean over
**       the Vt classes of -log p(j) (ls = label_smoothing; 0 = plain).
**
** Dropout (p = dropout, training only): on both embeddings' outputs, between
** stacked recurrent layers, and on the output features f_t (as the anchor).
**
** Batches are time-major like nlp/rnn.h (see nlp_seq2seq_batch): ids at
** padding positions (s >= src_len[b], t >= tgt_len[b]) are never read, so
** any value may sit there.  A source of length 0 attends to nothing (zero
** context); a target of length 0 adds nothing.
**
** Vocabularies: both hold the four specials at fixed ids (the anchor's
** order): 0 "<pad>", 1 "<s>", 2 "</s>", 3 "<unk>" (nlp_seq2seq_vocab_new
** makes such a vocabulary, pinned); the target side begins with <s> and
** ends with </s>, unknown words map to <unk>.
**
** Threads: the model holds the parameters; each thread computes through its
** own workspace (nlp_seq2seq_work) over them, forward and backward on its
** rows of a batch, adding into a gradient buffer of its own.  Workspaces are
** sized at creation (max B, S, T) and never allocate in nlp_seq2seq_loss.
** Inference goes through a decoder (nlp_seq2seq_decoder), which offers the
** search of nlp/beam.h its step and reorder operations.
**
** Model files (nlp/model.h) have the kind "seq2seq": the hyperparameters as
** metadata, blobs "src_vocab" and "tgt_vocab" (nlp_vocab blobs), and one
** tensor per parameter view.
*/
#ifndef NLP_SEQ2SEQ_H
#define NLP_SEQ2SEQ_H

#include <stddef.h>
#include <stdint.h>

#include <nlp/error.h>
#include <nlp/model.h>
#include <nlp/params.h>
#include <nlp/rng.h>
#include <nlp/rnn.h>
#include <nlp/vectors.h>
#include <nlp/vocab.h>

struct nlp_beam_ops; /* nlp/beam.h */

#define NLP_SEQ2SEQ_KIND "seq2seq"
#define NLP_SEQ2SEQ_PAD 0 /* "<pad>" */
#define NLP_SEQ2SEQ_BOS 1 /* "<s>" */
#define NLP_SEQ2SEQ_EOS 2 /* "</s>" */
#define NLP_SEQ2SEQ_UNK 3 /* "<unk>" */
#define NLP_SEQ2SEQ_NSPECIAL 4
#define NLP_SEQ2SEQ_MAX_WIDTH 8192  /* embed, hidden, attention */
#define NLP_SEQ2SEQ_MAX_LAYERS 16

typedef enum nlp_seq2seq_attention {
    NLP_SEQ2SEQ_ATTN_NONE = 0,
    NLP_SEQ2SEQ_ATTN_BAHDANAU = 1,
    NLP_SEQ2SEQ_ATTN_LUONG_DOT = 2,
    NLP_SEQ2SEQ_ATTN_LUONG_GENERAL = 3
} nlp_seq2seq_attention;

/* Parses "none", "bahdanau", "luong-dot", "luong-general".  NLP_OK or
** NLP_EINVAL. */
int nlp_seq2seq_attention_parse(const char *name, nlp_seq2seq_attention *a);

/* The name of a (as parsed above), or NULL for an unknown value. */
const char *nlp_seq2seq_attention_name(nlp_seq2seq_attention a);

typedef struct nlp_seq2seq_config {
    nlp_rnn_cell cell;          /* NLP_RNN_GRU or NLP_RNN_LSTM; GRU */
    int embed;                  /* E, both embeddings; 128 */
    int hidden;                 /* H, encoder (per direction) and decoder; 256 */
    int enc_layers;             /* bidirectional encoder layers; 1 */
    int dec_layers;             /* decoder layers; 1 */
    nlp_seq2seq_attention attention; /* BAHDANAU */
    int attn_hidden;            /* Bahdanau's hidden size; 0 = H; 0 */
    float dropout;              /* p in [0,1); 0.2 */
    int tie_embeddings;         /* 0 or 1; 0 */
    float label_smoothing;      /* in [0,1); 0 */
} nlp_seq2seq_config;

/* Fills c with the defaults written next to each field (the anchor's
** sizes). */
void nlp_seq2seq_config_default(nlp_seq2seq_config *c);

/* A vocabulary holding the four specials at their ids, pinned (so sort and
** prune keep them first).  NLP_OK with *out set, or NLP_ENOMEM. */
int nlp_seq2seq_vocab_new(nlp_vocab **out);

typedef struct nlp_seq2seq nlp_seq2seq; /* opaque */

/*
** A new model for the vocabularies src and tgt (each >= 5 words, the
** specials at their ids), with weights drawn from rng: embeddings
** normal(0,1), recurrent layers as nlp_rnn_reset, linears and attention as
** torch.nn.Linear.  Takes over src and tgt (freed with the model, and on
** failure too).  Returns NLP_OK with *out set, NLP_EINVAL (a configuration
** field out of range, a vocabulary without its specials) with e naming it,
** or NLP_ENOMEM.
*/
int nlp_seq2seq_new(nlp_seq2seq **out, const nlp_seq2seq_config *cfg, nlp_vocab *src,
                    nlp_vocab *tgt, nlp_rng *rng, nlp_error *e);

/* Frees m and everything it owns.  NULL is a no-op.  Workspaces and
** decoders made over m must be freed first. */
void nlp_seq2seq_free(nlp_seq2seq *m);

/* Accessors (owned by m). */
const nlp_seq2seq_config *nlp_seq2seq_get_config(const nlp_seq2seq *m);
const nlp_vocab *nlp_seq2seq_src_vocab(const nlp_seq2seq *m);
const nlp_vocab *nlp_seq2seq_tgt_vocab(const nlp_seq2seq *m);
/* The parameters (for the optimiser and the harness). */
nlp_params *nlp_seq2seq_params(nlp_seq2seq *m);

/*
** Copies the vectors of v into the embedding rows of the words that the
** source (target = 0) or target (target = 1) vocabulary holds; other rows
** keep their values.  v->dim must equal embed.  With tie_embeddings the
** target table is the output layer too.  *found (may be NULL) gets the
** number of rows set.  NLP_OK or NLP_EINVAL with e (dimension mismatch).
*/
int nlp_seq2seq_set_vectors(nlp_seq2seq *m, int target, const nlp_vectors *v, long *found,
                            nlp_error *e);

/* ==== Batches, workspaces and the loss =================================== */

/* One batch, time-major; all arrays borrowed. */
typedef struct nlp_seq2seq_batch {
    int B;                /* sentences */
    int S;                /* padded source length */
    int T;                /* padded target length (BOS/EOS included) */
    const int *src;       /* (S,B) source ids */
    const int *src_len;   /* (B) each in 0..S */
    const int *tgt_in;    /* (T,B) decoder inputs: <s> y1 y2 ... */
    const int *tgt_out;   /* (T,B) targets:        y1 y2 ... </s> */
    const int *tgt_len;   /* (B) each in 0..T */
} nlp_seq2seq_batch;

typedef struct nlp_seq2seq_work nlp_seq2seq_work; /* opaque */

/*
** A workspace over m's parameters for batches of up to max_B sentences, of
** up to max_S source and max_T target positions.  Several workspaces may
** compute at once on different threads (each with its own gradient
** buffer); m must outlive them.  NLP_OK with *out set, NLP_EINVAL (< 1),
** NLP_ERANGE (too large) or NLP_ENOMEM; *out is NULL on failure.
*/
int nlp_seq2seq_work_new(nlp_seq2seq_work **out, nlp_seq2seq *m, int max_B, int max_S,
                         int max_T);

/* Frees w.  NULL is a no-op. */
void nlp_seq2seq_work_free(nlp_seq2seq_work *w);

/*
** Grows w's capacity to at least max_B x max_S x max_T (never shrinks;
** allocates, so not in a training loop).  NLP_OK, NLP_EINVAL, NLP_ERANGE or
** NLP_ENOMEM (w unchanged on failure).
*/
int nlp_seq2seq_work_resize(nlp_seq2seq_work *w, int max_B, int max_S, int max_T);

/*
** Forward (and, when grad is not NULL, backward) over the sentences
** [b0, b0+nb) of batch b.
**   grad       NULL: no gradient.  Otherwise (params->n floats) += the
**              gradient of (summed loss) * scale; e.g. a worker given one
**              share of a batch passes 1/(tokens of the WHOLE batch)
**   train      nonzero: dropout (when configured) with masks from rng
**   loss       out: sum of the (label-smoothed) cross-entropy in nats over
**              the real target tokens of the rows; may be NULL
**   count      out: those tokens (the sum of the rows' tgt_len); may be NULL
**   sent_logp  out (nb) or NULL: each sentence's log-probability of its
**              target, sum of log p(y_t) (no smoothing) -- forced decoding
**              for scoring; run it with train = 0
** Only the rows' own padded lengths are computed (the longest source and
** target among them), and the output layer only at real target positions.
** Several workspaces may run this at once on different threads (the
** parameters are only read; each call writes its own workspace and grad).
** Never allocates.  NLP_OK; NLP_ERANGE with e when
** the rows exceed w's capacity (resize it) or an id is outside a
** vocabulary; NLP_EINVAL with e (bad lengths or rows, rng missing).
*/
int nlp_seq2seq_loss(nlp_seq2seq_work *w, const nlp_seq2seq_batch *b, int b0, int nb,
                     float *grad, float scale, int train, nlp_rng *rng, double *loss,
                     size_t *count, double *sent_logp, nlp_error *e);

/* ==== Decoding =========================================================== */

typedef struct nlp_seq2seq_decoder nlp_seq2seq_decoder; /* opaque */

/*
** A decoder over m (inference only, no dropout) for up to max_n sentences
** of up to max_S source positions each, and up to max_rows decoder rows
** (max_n * beam width).  NLP_OK with *out set, NLP_EINVAL, NLP_ERANGE or
** NLP_ENOMEM.  m must outlive it.
*/
int nlp_seq2seq_decoder_new(nlp_seq2seq_decoder **out, nlp_seq2seq *m, int max_n, int max_S,
                            int max_rows);

/* Frees d.  NULL is a no-op. */
void nlp_seq2seq_decoder_free(nlp_seq2seq_decoder *d);

/*
** Encodes n sentences (src (S,n) time-major ids, src_len (n) each 0..S;
** only positions below the longest src_len are read, and computed) once, and sets rows 0..n-1 to the sentences' initial decoder states (row
** i is sentence i).  capacity: the most rows later steps may use (n * beam
** width, at most max_rows).  NLP_OK; NLP_ERANGE with e beyond the sizes d
** was made for or an id outside the source vocabulary; NLP_EINVAL.
*/
int nlp_seq2seq_decoder_begin(nlp_seq2seq_decoder *d, const int *src, const int *src_len,
                              int S, int n, int capacity, nlp_error *e);

/*
** One step for rows 0..rows-1 (the nlp_beam_ops step, ctx = d): row r's
** previous target token is prev[r]; writes log-probabilities (rows, Vt) to
** logp and advances each row's state; *attn (if attn is not NULL) gets the
** step's attention weights (rows, S'), S' = the longest source length of
** the begun batch (at least 1; what nlp_beam_search expects), row r's
** weights over its sentence's positions 0..src_len-1 and 0 beyond; owned
** by d and valid until the next step (NULL for attention NONE).  rows must be the
** rows of the last begin/reorder.
*/
int nlp_seq2seq_decoder_step(void *d, const int *prev, int rows, float *logp,
                             const float **attn, nlp_error *e);

/*
** Re-arranges rows (the nlp_beam_ops reorder, ctx = d): new row r takes the
** state and the source sentence of old row parent[r] (0 <= parent[r] < the
** current rows), for r < rows (1..capacity).
*/
int nlp_seq2seq_decoder_reorder(void *d, const int *parent, int rows, nlp_error *e);

/* Fills ops with d's step and reorder, ctx = d and V = the target
** vocabulary size. */
void nlp_seq2seq_decoder_ops(nlp_seq2seq_decoder *d, struct nlp_beam_ops *ops);

/* The source sentence row r attends to (after begin/reorder), -1 when r is
** out of range. */
int nlp_seq2seq_decoder_row_sentence(const nlp_seq2seq_decoder *d, int r);

/* ==== Files ============================================================== */

/*
** Adds to file what besides the parameter tensors makes it a seq2seq model:
** the hyperparameters and the two vocabulary blobs (by pointer into m; m
** must outlive the save).  The harness's save_model calls it.  NLP_OK or
** NLP_ENOMEM.
*/
int nlp_seq2seq_add_to_model(const nlp_seq2seq *m, nlp_model *file);

/*
** Writes m to path atomically with the extra metadata pairs meta (key,
** value, ..., NULL; may be NULL).  NLP_OK, NLP_EIO or NLP_ENOMEM with e.
*/
int nlp_seq2seq_save(const nlp_seq2seq *m, const char *path, const char *const *meta,
                     nlp_error *e);

/*
** Builds a model from a loaded file (a model or a harness checkpoint of
** kind "seq2seq"): every hyperparameter is range-checked and every tensor
** shape compared with what they imply before the weights are allocated.
** NLP_OK with *out set, or NLP_EKIND / NLP_EFORMAT / NLP_ENOMEM with e
** naming file (used in messages; may be NULL).
*/
int nlp_seq2seq_from_model(nlp_seq2seq **out, const nlp_model *f, const char *file,
                           nlp_error *e);

/*
** Loads path (nlp_model_load, kind "seq2seq") and nlp_seq2seq_from_model.
** *file (may be NULL) gets the loaded file (for a resumed run; free with
** nlp_model_free).  The errors of both.
*/
int nlp_seq2seq_load(nlp_seq2seq **out, const char *path, nlp_model **file, nlp_error *e);

#endif
