/*
** classify: a many-to-one recurrent text classifier (the sentiment tool).
**
** A sentence of whitespace-separated tokens goes through
**
**   embeddings (V,E) -> dropout -> bidirectional GRU/LSTM, stacked ->
**   pooling over the valid steps (max | mean | last | attention) ->
**   dropout -> linear (K, D*H) -> softmax over K labels
**
** and the loss is the mean softmax cross-entropy of a batch.  Batches are
** time-major (T,B) with per-sentence lengths (nlp/rnn.h): a padded step
** changes nothing and gets no gradient.
**
** Pooling of the top layer's outputs y_t (D*H features) over t < len:
**   max        elementwise maximum (the gradient goes to the arg max);
**   mean       average;
**   last       the forward direction's output at len-1 beside the reverse
**              direction's output at 0 (each direction's final state);
**   attention  u_t = tanh(W y_t + b), s_t = v . u_t, a = softmax(s) over
**              the valid steps, pooled = sum_t a_t y_t, with W (A, D*H),
**              b (A) and the query v (A) learned (Yang et al. 2016).
** A sentence of length 0 pools to zeros (its logits are the output bias).
**
** Vocabulary: id 0 is "<unk>" (every token the model does not know); then
** the training words; then, optionally, words that only a vectors file
** knows.  Rows [0, trained) of the embedding table are parameters
** ("embed.weight"); rows [trained, V) are a fixed table ("embed.fixed")
** that training never changes: the vectors of words absent from the
** training data, or every row when the embeddings are frozen.
**
** Labelled text, one example a line, in either format:
**   tsv       LABEL<TAB>TEXT        (the label is everything before the
**             first TAB)
**   fasttext  __label__LABEL TEXT   (fastText's supervised format)
** detected per file from its first non-empty line (fasttext when it starts
** with "__label__"), or forced.  Text is split on ASCII white space (run
** the tokenize tool first on raw text).  Empty lines are skipped; a line
** with no label, or a label and no text, is an error naming the line, as
** is invalid UTF-8.
**
** Model files (nlp/model.h) have the kind "sentiment": the hyperparameters
** as metadata, blobs "vocab" and "labels" (nlp_vocab blobs), the parameter
** tensors and "embed.fixed".
*/
#ifndef NLP_CLASSIFY_H
#define NLP_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <nlp/error.h>
#include <nlp/model.h>
#include <nlp/rng.h>
#include <nlp/rnn.h>
#include <nlp/train.h>
#include <nlp/vectors.h>
#include <nlp/vocab.h>

#define NLP_CLASSIFY_KIND "sentiment"
#define NLP_CLASSIFY_UNK "<unk>"
#define NLP_CLASSIFY_UNK_ID 0
#define NLP_CLASSIFY_MAX_LABELS 65536 /* labels of one model */

/* ==== Labelled text ====================================================== */

typedef enum nlp_classify_format {
    NLP_CLASSIFY_AUTO = 0,  /* detected from the first non-empty line */
    NLP_CLASSIFY_TSV = 1,   /* LABEL<TAB>TEXT */
    NLP_CLASSIFY_FASTTEXT = 2 /* __label__LABEL TEXT */
} nlp_classify_format;

/* Parses "tsv", "fasttext" or "auto".  NLP_OK or NLP_EINVAL. */
int nlp_classify_format_parse(const char *name, nlp_classify_format *f);

/* "auto", "tsv" or "fasttext". */
const char *nlp_classify_format_name(nlp_classify_format f);

/*
** A labelled file as read: its own word and label tables (every distinct
** token and label, in order of first appearance, with counts) and the
** examples as ids into them.  Read-only for callers.
*/
typedef struct nlp_classify_data {
    long n;                 /* examples */
    size_t *start;          /* (n+1): example i is tok[start[i] .. start[i+1]) */
    int *tok;               /* (start[n]) ids in words */
    int *label;             /* (n) ids in labels */
    long *line;             /* (n) 1-based line of each example */
    nlp_vocab *words;       /* distinct tokens, with counts */
    nlp_vocab *labels;      /* distinct labels, with counts */
    nlp_classify_format format; /* the format read (never AUTO) */
    long lines;             /* lines read, empty ones included */
} nlp_classify_data;

/*
** Reads labelled lines from f (path names it in messages) in format fmt.
** On success *out is a new data set (free with nlp_classify_data_free);
** it may hold no example (an empty file).  Errors, with path and line in
** e: NLP_EFORMAT (no TAB / no __label__, empty label, no text, two
** fastText labels), NLP_EUTF8 (invalid UTF-8), NLP_ERANGE (more than
** INT_MAX distinct words or tokens), NLP_EIO, NLP_ENOMEM; *out is NULL.
*/
int nlp_classify_data_read(nlp_classify_data **out, FILE *f, const char *path,
                           nlp_classify_format fmt, nlp_error *e);

/* Frees d.  NULL is a no-op. */
void nlp_classify_data_free(nlp_classify_data *d);

/*
** Splits the len bytes of text on ASCII white space and looks each token
** up in words (NULL: none known): ids[i] is the token's id, or
** NLP_CLASSIFY_UNK_ID when absent.  *ids is a growable buffer of *cap ints
** (NULL and 0 to start; released with nlp_free).  Sets *n to the token
** count and adds the unknown tokens to *nunk (may be NULL).  Returns NLP_OK,
** NLP_ERANGE (more than INT_MAX tokens) or NLP_ENOMEM.
*/
int nlp_classify_tokens(const nlp_vocab *words, const char *text, size_t len, int **ids,
                        size_t *cap, int *n, size_t *nunk);

/* ==== Vocabulary and labels ============================================== */

/*
** The word list of a new model: "<unk>", then the words of counts whose
** count is at least min_count, most frequent first (ties in order of first
** appearance); *trained is the number of these rows (<unk> included).
** Then, when vectors is not NULL, up to max_extra (< 0: all) words of
** vectors absent from the list, in the vectors' order: rows that take
** their vector and are never trained.  On success *out is a new
** vocabulary (counts copied; 0 for the extra words).  NLP_OK, NLP_ERANGE
** (more than INT_MAX words) or NLP_ENOMEM.
*/
int nlp_classify_words_build(nlp_vocab **out, long *trained, const nlp_vocab *counts,
                             long min_count, const nlp_vectors *vectors, long max_extra);

/*
** The label set of a new model: the labels of seen sorted by their bytes
** (so the order does not depend on the data's order).  NLP_OK, NLP_ENOMEM,
** or NLP_EINVAL when seen has fewer than 2 or more than
** NLP_CLASSIFY_MAX_LABELS labels.
*/
int nlp_classify_labels_build(nlp_vocab **out, const nlp_vocab *seen);

/* ==== The model ========================================================== */

typedef enum nlp_classify_pool {
    NLP_CLASSIFY_POOL_MAX = 0,
    NLP_CLASSIFY_POOL_MEAN = 1,
    NLP_CLASSIFY_POOL_LAST = 2,
    NLP_CLASSIFY_POOL_ATTENTION = 3
} nlp_classify_pool;

/* Parses "max", "mean", "last", "attention".  NLP_OK or NLP_EINVAL. */
int nlp_classify_pool_parse(const char *name, nlp_classify_pool *p);

/* The name of p, or NULL for an unknown value. */
const char *nlp_classify_pool_name(nlp_classify_pool p);

typedef struct nlp_classify_config {
    nlp_rnn_cell cell;      /* NLP_RNN_LSTM or NLP_RNN_GRU; LSTM */
    int embed;              /* E, embedding size; 100 */
    int hidden;             /* H, state size per direction; 150 */
    int layers;             /* stacked recurrent layers; 1 */
    int bidirectional;      /* 0 or 1; 1 */
    nlp_classify_pool pool; /* max */
    int attention;          /* A, attention pooling size; 0 = D*H; 0 */
    float dropout;          /* p in [0,1) on the embeddings, between layers
                               and on the pooled features; 0.5 */
    float word_dropout;     /* q in [0,1): in training each token becomes
                               <unk> with probability q; 0 */
} nlp_classify_config;

/* Fills c with the defaults written next to each field. */
void nlp_classify_config_default(nlp_classify_config *c);

typedef struct nlp_classify nlp_classify; /* opaque */

/*
** A new model over the vocabulary words (id 0 must be "<unk>") of which
** rows [0, trained) are trained parameters and the rest fixed, and the
** label set labels (2 .. NLP_CLASSIFY_MAX_LABELS).  Takes over words and
** labels (freed with the model, and on failure too).  Weights are drawn
** from rng: embeddings normal(0, 1) (as torch.nn.Embedding), recurrent
** weights and biases uniform in +-1/sqrt(H) (as torch.nn.LSTM), the rest
** as each layer's reset says.  Returns NLP_OK with *out set, NLP_EINVAL (a
** configuration field out of range, bad trained or vocabulary) with e
** naming it, or NLP_ENOMEM.
*/
int nlp_classify_new(nlp_classify **out, const nlp_classify_config *cfg, nlp_vocab *words,
                     long trained, nlp_vocab *labels, nlp_rng *rng, nlp_error *e);

/* Frees m and everything it owns.  NULL is a no-op. */
void nlp_classify_free(nlp_classify *m);

/*
** Initialises the embedding rows of the words that v holds with their
** vectors (v->dim must equal the embedding size) and draws every other
** row (<unk>'s too) from normal(0, s), s the standard deviation of v's
** numbers, so known and unknown rows have one scale.  *found (may be NULL)
** gets the number of the model's words v holds.  NLP_OK or NLP_EINVAL
** (dimension mismatch).
*/
int nlp_classify_set_vectors(nlp_classify *m, const nlp_vectors *v, long *found,
                             nlp_rng *rng);

/* How the vocabulary of nlp_classify_new_for_data met the vectors. */
typedef struct nlp_classify_coverage {
    long words;             /* training words in the vocabulary (<unk> aside) */
    long in_vectors;        /* of these, the ones the vectors have */
    long extra;             /* words only the vectors know (untrained rows) */
} nlp_classify_coverage;

/*
** A new model for the training data d: the vocabulary of
** nlp_classify_words_build (words seen min_count times, then up to
** max_extra words only vectors knows; vectors may be NULL), the labels of
** nlp_classify_labels_build, weights drawn from an rng seeded with seed
** and, with vectors, the embedding rows set from them
** (nlp_classify_set_vectors; the embedding size becomes vectors->dim);
** freeze nonzero makes every embedding row fixed (it needs vectors).
** *cov (may be NULL) gets the coverage.  NLP_OK with *out set, or
** NLP_EINVAL (fewer than 2 or more than NLP_CLASSIFY_MAX_LABELS labels, a
** bad configuration), NLP_ERANGE, NLP_ENOMEM, with e filled.
*/
int nlp_classify_new_for_data(nlp_classify **out, const nlp_classify_config *cfg,
                              const nlp_classify_data *d, long min_count,
                              const nlp_vectors *vectors, long max_extra, int freeze,
                              uint64_t seed, nlp_classify_coverage *cov, nlp_error *e);

/* Accessors: the configuration, vocabulary, label set, trained rows,
** parameters (for the optimiser; read-only otherwise). */
const nlp_classify_config *nlp_classify_get_config(const nlp_classify *m);
const nlp_vocab *nlp_classify_words(const nlp_classify *m);
const nlp_vocab *nlp_classify_labels(const nlp_classify *m);
long nlp_classify_trained_rows(const nlp_classify *m);
nlp_params *nlp_classify_params(nlp_classify *m);

/*
** Sizes the workspace for training (forward and backward) on batches of up
** to max_B sentences of up to max_T tokens (allocates; not for a training
** loop).  NLP_OK, NLP_EINVAL (< 1), NLP_ERANGE (too large) or NLP_ENOMEM
** (then m has no workspace until a reserve succeeds).
*/
int nlp_classify_reserve(nlp_classify *m, int max_T, int max_B);

/*
** Prediction (nlp_classify_predict, nlp_classify_predict_set and the
** trainer's validation) looks each word's layer-0 input projection
** (W_ih e + b, per direction) up instead of computing it at every
** occurrence: a word's row is computed the first time it is met and kept
** until the weights change (a training forward, nlp_classify_params,
** nlp_classify_set_vectors).  At most this many words keep a row (by
** default as many as fit in 128 MiB; the vocabulary is most frequent
** first); the others are projected again in every batch.  Drops the rows
** kept so far.  NLP_OK or NLP_EINVAL (words < 1).
*/
int nlp_classify_set_cache_words(nlp_classify *m, long words);

/*
** Forward over B sentences: sentence b is the lens[b] ids seqs[b] (each in
** 0..V-1; lens[b] may be 0).  train nonzero applies dropout with masks
** drawn from rng (which may be NULL otherwise).  The logits (B,K) are then
** nlp_classify_logits(m).  Never allocates.  Returns NLP_OK, NLP_ERANGE
** (more than the reserved B or T, no nlp_classify_reserve (a workspace
** grown by prediction alone lacks what this needs), or an id outside the
** vocabulary) or NLP_EINVAL.
*/
int nlp_classify_forward(nlp_classify *m, const int *const *seqs, const int *lens, int B,
                         int train, nlp_rng *rng);

/* The logits (B,K) of the last forward, owned by m. */
const float *nlp_classify_logits(const nlp_classify *m);

/*
** After a forward: the batch's mean cross-entropy (nats) against targets
** (B; a target < 0 is ignored) in *loss and the number of arg max hits in
** *correct (either may be NULL); keeps the gradient of the mean loss for
** nlp_classify_backward.  NLP_OK or NLP_EINVAL (target >= K, no forward, or
** the last forward was a prediction).
*/
int nlp_classify_loss(nlp_classify *m, const int *targets, double *loss, size_t *correct);

/*
** Backward of the last forward and loss: adds (+=) the gradient of the
** mean loss into the gradients of m's parameters.  Never allocates.
** NLP_OK or NLP_EINVAL (no loss computed since the forward).
*/
int nlp_classify_backward(nlp_classify *m);

/*
** Class probabilities of B sentences: probs (B,K) row b = softmax of
** sentence b's logits (no dropout), through the projection cache (see
** nlp_classify_set_cache_words), so equal to the forward's up to float
** rounding.  Grows the workspace (forward buffers only) when the batch is
** larger than reserved, and the cache (so it may allocate).  The logits
** are nlp_classify_logits(m) afterwards; no loss or backward may follow.
** NLP_OK, NLP_EINVAL (B < 1, a negative length), NLP_ERANGE (id outside
** the vocabulary), NLP_ENOMEM.
*/
int nlp_classify_predict(nlp_classify *m, const int *const *seqs, const int *lens, int B,
                         float *probs);

/* ==== Encoded example sets =============================================== */

/* Examples as model ids: what training and evaluation run over. */
typedef struct nlp_classify_set {
    long n;                 /* examples */
    size_t *start;          /* (n+1) */
    int *tok;               /* (start[n]) model word ids */
    int *label;             /* (n) model label ids; -1: a label the model
                               does not know */
    const long *line;       /* (n) lines in the file (the data's; borrowed) */
    int max_len;            /* longest example */
} nlp_classify_set;

/*
** Encodes d with m's vocabulary and labels.  *unk (may be NULL) gets the
** number of tokens mapped to <unk>, *unseen (may be NULL) the number of
** examples whose label m does not know.  d must outlive the set (line).
** NLP_OK or NLP_ENOMEM.
*/
int nlp_classify_set_make(nlp_classify_set **out, const nlp_classify *m,
                          const nlp_classify_data *d, size_t *unk, long *unseen);

/* Frees s.  NULL is a no-op. */
void nlp_classify_set_free(nlp_classify_set *s);

/*
** Predicted label of every example of s into pred (n), in batches of up to
** batch sentences of similar length (may allocate workspace).  NLP_OK,
** NLP_ERANGE, NLP_ENOMEM.
*/
int nlp_classify_predict_set(nlp_classify *m, const nlp_classify_set *s, int batch, int *pred);

/* ==== Lines in input order (lib/classify_run.c) ========================= */

typedef struct nlp_classify_stream nlp_classify_stream; /* opaque */

/*
** A predictor of text lines in input order: up to window lines are held
** (tokenised with m's vocabulary), then classified together in batches of
** up to batch lines of similar length (padding is wasted work: on SST-2 a
** batch in input order is twice as long as its average sentence), and
** read back in the order they came.  m is borrowed.  NLP_OK, NLP_EINVAL
** (batch or window < 1 or absurd), NLP_ENOMEM.
*/
int nlp_classify_stream_new(nlp_classify_stream **out, nlp_classify *m, int batch, int window);

/* Frees s (not the model).  NULL is a no-op. */
void nlp_classify_stream_free(nlp_classify_stream *s);

/*
** Holds the line of len bytes (whitespace-separated tokens).  Returns 1
** when the window is full (flush now), 0 when there is room, or
** NLP_ERANGE (more than INT_MAX tokens), NLP_ENOMEM, NLP_EINVAL (full).
** The lines of the last flush are dropped first.
*/
int nlp_classify_stream_add(nlp_classify_stream *s, const char *text, size_t len);

/*
** Classifies the lines held: *n gets their number; line i's (0 = the
** first added since the last flush) probabilities are then
** nlp_classify_stream_probs(s, i) (K floats) and its labels most likely
** first (ties: lower id) nlp_classify_stream_rank(s, i) (K ids, owned by
** s, until the next rank), both valid until the next add or flush.
** NLP_OK or the errors of nlp_classify_predict.
*/
int nlp_classify_stream_flush(nlp_classify_stream *s, int *n);
const float *nlp_classify_stream_probs(const nlp_classify_stream *s, int i);
const long *nlp_classify_stream_rank(nlp_classify_stream *s, int i);

/* Tokens added so far and how many of them were not in the vocabulary. */
void nlp_classify_stream_counts(const nlp_classify_stream *s, size_t *tokens, size_t *unknown);

/* ==== Scores of a labelled set (lib/classify_run.c) ===================== */

/*
** Rows are true labels: the model's K (in its order), then the labels of
** the data the model does not know (their examples count as wrong);
** columns are predicted labels (the model's).  Read-only for callers.
*/
typedef struct nlp_classify_scores {
    long n, hit;            /* examples, correct */
    double accuracy;        /* hit / n */
    long unseen;            /* examples whose label the model lacks */
    long K, R;              /* columns, rows (R >= K) */
    const char **row_name;  /* (R) the label of each row (the model's or
                               the data's strings: they must outlive this) */
    long *first_line;       /* (R) rows >= K: line of the first example */
    long *conf;             /* (R,K) examples of row r predicted as k */
    long *support;          /* (R) examples of each row */
    double *precision, *recall, *f1; /* (R) */
    unsigned char *scored;  /* (R) present or predicted: has a score */
    double macro_f1;        /* mean F1 over the scored rows */
} nlp_classify_scores;

/*
** The scores of m's predictions pred (d->n model label ids, e.g. from
** nlp_classify_predict_set over d's set) against d's labels.  NLP_OK,
** NLP_EINVAL (a prediction outside 0..K-1), NLP_ERANGE, NLP_ENOMEM.
*/
int nlp_classify_scores_new(nlp_classify_scores **out, const nlp_classify *m,
                            const nlp_classify_data *d, const int *pred);

/* Frees sc.  NULL is a no-op. */
void nlp_classify_scores_free(nlp_classify_scores *sc);

/* ==== Files ============================================================== */

/*
** Adds to file what besides the parameter tensors makes it a model of
** this kind: the hyperparameters, the vocabulary and label blobs and the
** fixed embedding rows (all by pointer into m or into blobs m keeps: m
** must outlive the save).  The harness calls it for every file it writes.
** NLP_OK or NLP_ENOMEM.
*/
int nlp_classify_add_to_model(const nlp_classify *m, nlp_model *file);

/*
** Writes m to path (atomically), with the extra metadata pairs meta (key,
** value, ..., NULL; may be NULL).  NLP_OK, NLP_EIO, NLP_ENOMEM with e.
*/
int nlp_classify_save(const nlp_classify *m, const char *path, const char *const *meta,
                      nlp_error *e);

/*
** Loads a model saved by nlp_classify_save (or a checkpoint or best model
** written by the harness).  Every hyperparameter is range-checked and
** every tensor's shape compared with what they imply before the weights
** are allocated.  *file (may be NULL) gets the loaded file (for a resumed
** run; free with nlp_model_free).  NLP_OK, or the errors of
** nlp_model_load and NLP_EFORMAT naming the problem.
*/
int nlp_classify_load(nlp_classify **out, const char *path, nlp_model **file, nlp_error *e);

/* ==== Training =========================================================== */

typedef struct nlp_classify_train_config {
    int batch;              /* sentences per step; 32 */
    int eval_batch;         /* sentences per validation batch; 256 */
    uint64_t seed;          /* order of the batches and dropout masks; 1 */
    int bucket_pool;        /* batches per pool sorted by length; 0 = the
                               whole set is one pool; 0 */
} nlp_classify_train_config;

void nlp_classify_train_config_default(nlp_classify_train_config *c);

typedef struct nlp_classify_trainer nlp_classify_trainer; /* opaque */

/*
** A training task (nlp/train.h) for m over the set train (>= 1 example)
** with validation on dev (may be NULL: no validation; dev accuracy in
** percent otherwise).  Each epoch the examples are shuffled and cut into
** pools of cfg.bucket_pool batches (one pool: all of them), each pool is
** sorted by length with random tie-breaks and cut into batches of
** cfg.batch, and the batches are shuffled.  m, train and dev are borrowed
** and must outlive the trainer.
** Reserves m's workspace.  NLP_OK, NLP_EINVAL, NLP_ENOMEM with e.
*/
int nlp_classify_trainer_new(nlp_classify_trainer **out, nlp_classify *m,
                             const nlp_classify_train_config *cfg,
                             const nlp_classify_set *train, const nlp_classify_set *dev,
                             nlp_error *e);

/* Frees t (not the model or the sets).  NULL is a no-op. */
void nlp_classify_trainer_free(nlp_classify_trainer *t);

/* The task to give nlp_train_new (owned by t). */
const nlp_train_task *nlp_classify_trainer_task(nlp_classify_trainer *t);

/* Sentences trained on by t's task so far (in this process). */
long nlp_classify_trainer_sentences(const nlp_classify_trainer *t);

/* The examples (indices into the training set) of t's next step, into
** examples (room for cfg.batch); returns how many. */
int nlp_classify_trainer_next_batch(const nlp_classify_trainer *t, long *examples);

/*
** Reads the training configuration a checkpoint was written with (batch,
** seed, bucket pool) into c.  NLP_OK or NLP_EFORMAT ("not a checkpoint",
** out of range).
*/
int nlp_classify_train_config_read(nlp_classify_train_config *c, const nlp_model *ckpt,
                                   nlp_error *e);

#endif
