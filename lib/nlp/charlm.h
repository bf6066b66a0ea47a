/*
** charlm: a character-level language model over Unicode code points.
**
**   id (T,B) -> embed (T,B,E) -> stacked RNN/LSTM/GRU (T,B,H) -> dropout
**            -> linear (T,B,V) -> softmax cross-entropy against the next id
**
** Characters are Unicode code points, never bytes: "è", "’" and "«" are one
** symbol each.  The vocabulary (nlp/vocab.h) holds each character as its
** UTF-8 bytes; id 0 is the pinned unknown symbol "<unk>".  Characters seen
** fewer than min_count times in the training text are trained as <unk>, so
** the model learns a real probability for "a character I do not know"
** (the Good-Turing idea: rare events stand for unseen ones); scoring gives
** characters outside the vocabulary that probability, and generation never
** emits <unk>.
**
** Training (nlp_charlm_trainer, a task of the shared loop in nlp/train.h):
** the training ids are cut into B parallel streams of L = n/B consecutive
** characters, stream b = ids[b*L, (b+1)*L); each step takes the next T
** characters of every stream as a (T,B) batch, predicts the T following
** ones, and back-propagates through those T steps only (truncated BPTT)
** while the recurrent state is carried to the next chunk.  An epoch ends
** when a stream has fewer than T+1 characters left; the state is then
** reset.  This is exactly the data order of
** ../shared/anchors/torch_charlm.py.  The harness owns the optimiser,
** clipping, limits, validation and checkpoints; the trainer's checkpoint
** state (the carried state, the stream position, the dropout rng) makes a
** resumed run repeat the same floating-point operations in the same order
** as an uninterrupted one with the same number of threads.
**
** Threads (nlp_train_config.threads = W > 1): worker w of W takes the
** contiguous streams [w*B/W, (w+1)*B/W) of every chunk (W <= B), with a
** workspace and an rnn of its own (nlp_rnn_new_shared) over the model's
** parameters, and adds its part of the gradient of the chunk's mean loss
** into its own buffer; the harness sums the buffers in worker order.  Its
** dropout rng is seeded, every step, from the (w+1)-th of W draws from the
** trainer's rng, so the checkpoint state is the same as on one thread.
** Without dropout one step's gradient is the one-thread gradient up to
** float rounding; with dropout the masks differ from one thread's.
**
** Model files (nlp/model.h) have kind "charlm": metadata with the
** hyperparameters, the vocabulary blob "vocab", one tensor per parameter
** view (PyTorch-style names, e.g. "rnn.weight_hh_l0"); a checkpoint adds
** the harness's "train.*" metadata and optimiser state and the trainer's
** "charlm.*" state (nlp_charlm_trainer_task), and can be used as a model
** too (its weights are the latest, not the best).
*/
#ifndef NLP_CHARLM_H
#define NLP_CHARLM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <nlp/codepoints.h>
#include <nlp/embed.h>
#include <nlp/error.h>
#include <nlp/linear.h>
#include <nlp/model.h>
#include <nlp/params.h>
#include <nlp/rng.h>
#include <nlp/rnn.h>
#include <nlp/train.h>
#include <nlp/vocab.h>

#define NLP_CHARLM_KIND "charlm"      /* model-file kind */
#define NLP_CHARLM_UNK "<unk>"        /* vocabulary word of id 0 */
#define NLP_CHARLM_UNK_ID 0
#define NLP_CHARLM_EVAL_STREAMS 32    /* most parallel streams of nlp_charlm_eval */
#define NLP_CHARLM_EVAL_SEGMENT 1024  /* fewest predictions per stream */
#define NLP_CHARLM_EVAL_T 64          /* steps per chunk of nlp_charlm_eval */
#define NLP_CHARLM_EVAL_WARMUP 256    /* unscored context read before a segment */

/*
** Builds a character vocabulary from the code points cp[0..n): "<unk>"
** (id 0, count = characters seen fewer than min_count times) then every
** character seen at least min_count times (min_count >= 1), most frequent
** first (ties by UTF-8 bytes, so the result depends only on the text).
** On success *out is a new vocabulary the caller owns.  Returns NLP_OK,
** NLP_EEMPTY (n == 0), NLP_EINVAL (min_count < 1 or a code point that is
** not a Unicode scalar value) or NLP_ENOMEM.
*/
int nlp_charlm_vocab_build(nlp_vocab **out, const int32_t *cp, size_t n, long min_count);

/* ==== The model ========================================================== */

typedef struct nlp_charlm_config {
    nlp_rnn_cell cell; /* NLP_RNN_LSTM */
    int layers;        /* stacked recurrent layers; 2 */
    int hidden;        /* state size; 384 */
    int embed;         /* embedding size; 64 */
    float dropout;     /* between layers and before the output layer; 0.35 */
} nlp_charlm_config;

/* Fills c with the defaults written next to each field. */
void nlp_charlm_config_default(nlp_charlm_config *c);


typedef struct nlp_charlm {
    nlp_charlm_config cfg;
    nlp_vocab *vocab;   /* owned: id 0 "<unk>", then characters (UTF-8) */
    int V;              /* vocabulary size */
    nlp_params *params; /* owned: every weight, one buffer */
    nlp_embed emb;      /* "embed.weight" (V,E) */
    nlp_rnn *rnn;       /* owned: "rnn.*", PyTorch LSTM/GRU/RNN names */
    nlp_linear out;     /* "out.weight" (V,H), "out.bias" (V) */
    int cap_T, cap_B;   /* workspace capacity of rnn */
} nlp_charlm;

/*
** A new model for vocabulary vocab (taken over: freed with the model, even
** on failure), with the rnn workspace sized for chunks of up to max_T steps
** over max_B streams, weights initialised from seed (embedding N(0,1),
** recurrent weights orthogonal, input weights Xavier, output as
** torch.nn.Linear).  Returns NLP_OK with *out set, or NLP_EINVAL (bad
** config, vocabulary without "<unk>" at id 0), NLP_ENOMEM; *out is NULL on
** failure.
*/
int nlp_charlm_new(nlp_charlm **out, const nlp_charlm_config *cfg, nlp_vocab *vocab,
                   int max_T, int max_B, uint64_t seed);

/* Frees m and everything it owns.  NULL is a no-op. */
void nlp_charlm_free(nlp_charlm *m);

/* Grows the workspace to at least max_T x max_B (allocates; not in a loop). */
int nlp_charlm_reserve(nlp_charlm *m, int max_T, int max_B);

/* Number of trainable parameters. */
size_t nlp_charlm_param_count(const nlp_charlm *m);

/* The id of code point c, NLP_CHARLM_UNK_ID when not in the vocabulary. */
int nlp_charlm_id(const nlp_charlm *m, int32_t c);

/*
** The UTF-8 bytes of id (not NUL-terminated when len is used) and their
** length in *len; for <unk> an empty string.  Owned by m.
*/
const char *nlp_charlm_utf8(const nlp_charlm *m, int id, size_t *len);

/*
** Replaces the code points of t by their ids, in place; *nunk (may be
** NULL) receives how many were not in the vocabulary (now <unk>).
*/
void nlp_charlm_encode(const nlp_charlm *m, nlp_codepoints *t, size_t *nunk);

/* ==== Evaluation ========================================================= */

typedef struct nlp_charlm_score {
    double nats;        /* -sum ln p(next char), over the predictions */
    size_t count;       /* predictions made: n - 1 for a text of n ids */
    size_t unk;         /* predicted characters that were <unk> */
    double unk_nats;    /* their share of nats */
} nlp_charlm_score;

/* Bits per character of s (0 when nothing was predicted). */
double nlp_charlm_bpc(const nlp_charlm_score *s);

/*
** Scores ids[0..n) (encoded with nlp_charlm_encode): every character but
** the first is predicted from those before it.  The text is cut into
** S = clamp((n-1) / NLP_CHARLM_EVAL_SEGMENT, 1, NLP_CHARLM_EVAL_STREAMS)
** contiguous segments scored side by side (batched: much faster than one
** stream), the state carried across chunks of NLP_CHARLM_EVAL_T steps.
** Every segment but the first starts from a zero state NLP_CHARLM_EVAL_WARMUP
** characters before its first prediction and reads them unscored, so each
** character is predicted with a long history, as one stream over the whole
** text would predict it (a cold start per segment cost about 0.02 bpc on
** the Divina Commedia's validation part).  The result depends only on the model and the text, so
** training's validation figure equals charlm-score's on the same text.
** No dropout.  Allocates its buffers (and may grow the rnn workspace).  Returns NLP_OK (a text of fewer than 2 ids scores nothing),
** NLP_ERANGE for an id outside the vocabulary, or NLP_ENOMEM.
*/
int nlp_charlm_eval(nlp_charlm *m, const int32_t *ids, size_t n, nlp_charlm_score *out);

/* ==== Generation ======================================================== */

/* The recurrent state of one stream, for stepping a character at a time. */
typedef struct nlp_charlm_state {
    float *h, *c;       /* (L,1,H) state; c only for LSTM */
    float *x;           /* (E) embedded input */
    float *y;           /* (H) top-layer output */
    float *logits;      /* (V) scores of the next character */
} nlp_charlm_state;

/* Allocates s for m, zero state.  NLP_OK or NLP_ENOMEM (s is then empty). */
int nlp_charlm_state_init(nlp_charlm_state *s, const nlp_charlm *m);

/* Frees the arrays of s (s itself is the caller's). */
void nlp_charlm_state_free(nlp_charlm_state *s);

/* Zeroes the state: the model has seen nothing. */
void nlp_charlm_state_reset(nlp_charlm_state *s, const nlp_charlm *m);

/*
** Feeds one id: advances s and leaves the scores of the next character in
** s->logits (V floats), which the caller may modify.  Never allocates.
** Returns NLP_OK or NLP_ERANGE (bad id).
*/
int nlp_charlm_step(nlp_charlm *m, nlp_charlm_state *s, int id);

/* ==== Training: a task of the shared harness (nlp/train.h) ============== */

typedef struct nlp_charlm_train_config {
    int batch;              /* B parallel streams; 32 */
    int seq_len;            /* T steps per chunk; 64 */
    uint64_t seed;          /* dropout rng; 1 */
} nlp_charlm_train_config;

/* Fills c with the defaults written next to each field. */
void nlp_charlm_train_config_default(nlp_charlm_train_config *c);

/*
** Reads the configuration a charlm checkpoint was written with into c.
** Returns NLP_OK, or NLP_EFORMAT ("not a checkpoint", or a value out of
** range) with e filled.
*/
int nlp_charlm_train_config_read(nlp_charlm_train_config *c, const nlp_model *ckpt,
                                 nlp_error *e);

typedef struct nlp_charlm_trainer nlp_charlm_trainer; /* opaque */

/*
** A trainer for m over the training ids ids[0..n) and the validation ids
** valid[0..nvalid) (both borrowed: they must outlive it; nvalid < 2 means
** no validation).  Needs n >= batch * (seq_len + 1); grows m's workspace
** to (seq_len, batch) and, with validation, to what nlp_charlm_eval uses.
** Returns NLP_OK with *out set, NLP_EINVAL (bad config, seq_len * batch too
** large), NLP_EEMPTY (text too short; e->text says how long it must be),
** NLP_ERANGE (an id outside the vocabulary) or NLP_ENOMEM, with e filled.
*/
int nlp_charlm_trainer_new(nlp_charlm_trainer **out, nlp_charlm *m,
                           const nlp_charlm_train_config *cfg, const int32_t *ids, size_t n,
                           const int32_t *valid, size_t nvalid, nlp_error *e);

/* Frees the trainer (not the model or the ids).  NULL is a no-op. */
void nlp_charlm_trainer_free(nlp_charlm_trainer *t);

/*
** The trainer as a task for nlp_train_new() (owned by t, valid while t
** is): kind "charlm", metric "bpc" (validation bits per character with
** nlp_charlm_eval, lower is better; no evaluate without validation text),
** unit "chars", params m->params, and
**   step        nlp_charlm_trainer_step;
**   prepare_workers, step_share, step_end
**               the parallel step (see the top of this file): W workers'
**               workspaces, a worker's share of the chunk, then the move
**               to the next chunk;
**   save_model  the hyperparameters and the vocabulary (the harness adds
**               the weights), so the file loads with nlp_charlm_load;
**   save_state  batch, seq_len, seed, the stream position, epochs, the
**               dropout rng, the carried state and a check of the texts;
**   load_state  the inverse, every number range-checked: a checkpoint of
**               another text, batch or seq_len is NLP_EFORMAT.
*/
const nlp_train_task *nlp_charlm_trainer_task(nlp_charlm_trainer *t);

/*
** Forward and backward on the next chunk: the next seq_len characters of
** every stream as a (T,B) batch, predicting the following ones, the
** recurrent state carried in from the previous chunk.  ADDS the gradient
** of the chunk's mean cross-entropy to m->params->grad (zeroing, clipping
** and the update are the caller's: the harness's).  *loss (may be NULL):
** the chunk's mean loss in bits per character, the unit of the metric;
** *count (may be NULL): the characters predicted, T*B.  Returns 0, 1 when
** the chunk was the last of an epoch (the position is back at the start,
** the carried state zero), or a negative NLP_E* code with e filled.
*/
int nlp_charlm_trainer_step(nlp_charlm_trainer *t, double *loss, double *count, nlp_error *e);

/* Characters per stream, L = n / batch; stream b is ids[b*L, (b+1)*L). */
size_t nlp_charlm_trainer_stream_length(const nlp_charlm_trainer *t);

/* Steps per epoch, floor((L - 1) / seq_len). */
long nlp_charlm_trainer_steps_per_epoch(const nlp_charlm_trainer *t);

/* Offset in every stream of the next chunk (0 at the start of an epoch). */
size_t nlp_charlm_trainer_position(const nlp_charlm_trainer *t);

/* Epochs this trainer has completed (over resumes). */
long nlp_charlm_trainer_epochs(const nlp_charlm_trainer *t);

/*
** Throughput of this process: the steps it ran, and the seconds they and
** the updates after them took as the harness ran the task (from the start
** of one step to the next callback; validation and saving excluded), so
** run_steps * T * B / run_seconds is the training speed in characters per
** second that bench/charlm.sh compares.
*/
long nlp_charlm_trainer_run_steps(const nlp_charlm_trainer *t);
double nlp_charlm_trainer_run_seconds(const nlp_charlm_trainer *t);

/*
** The (T,B) input and target ids of the last chunk stepped, time-major
** (row t*B + b is stream b at step t); owned by t.  For tests.
*/
void nlp_charlm_trainer_chunk(const nlp_charlm_trainer *t, const int **inputs,
                              const int **targets);

/* ==== Files ============================================================= */

/*
** Saves m to path (atomically, see nlp/model.h) with extra metadata pairs
** meta[0], meta[1], meta[2], ... up to a NULL key (meta may be NULL).
** Returns NLP_OK, NLP_EIO or NLP_ENOMEM with e filled.
*/
int nlp_charlm_save(const nlp_charlm *m, const char *path, const char *const *meta,
                    nlp_error *e);

/*
** Loads a model (or a checkpoint) of kind "charlm" from path, with its
** workspace sized for max_T x max_B.  The hyperparameters are checked
** against the tensors present in the file before anything is allocated for
** the model.  Returns NLP_OK with *out set, or the errors of nlp_model_load
** (NLP_EKIND for another tool's model, NLP_ETRUNCATED, NLP_ECHECKSUM, ...)
** and NLP_EFORMAT for a charlm file whose content does not add up; e names
** the file.  If file is not NULL, *file receives the loaded nlp_model
** (caller frees it with nlp_model_free) for reading more metadata or
** resuming (nlp_train_resume); else it is freed.
*/
int nlp_charlm_load(nlp_charlm **out, const char *path, int max_T, int max_B,
                    nlp_model **file, nlp_error *e);

#endif
