/*
** seq2seq_common: what the train, translate and score commands share.
**
**   - the training task (nlp/train.h) of a seq2seq model over a parallel
**     corpus: length-bucketed batches (nlp/pairs.h), the parallel step
**     (each worker a share of the batch's rows in its own workspace),
**     validation by perplexity or by BLEU of greedy translations, and the
**     checkpointed position (batcher, dropout rng);
**   - the translation of a batch of sources: the model's decoder under
**     the search of nlp/beam.h (greedy with k = 1);
**   - reading a corpus the way every command names its inputs, the
**     model of translate and score, a command's --help.
*/
#ifndef NLP_SEQ2SEQ_COMMON_H
#define NLP_SEQ2SEQ_COMMON_H

#include <stdio.h>

#include "nlp/beam.h"
#include "nlp/pairs.h"
#include "nlp/seq2seq.h"
#include "nlp/train.h"

/* ==== Commands =========================================================== */

/* A command's --help: help() (its own options), then -h and --version;
** exits 0. */
_Noreturn void s2s_command_help(void (*help)(void));

/* The model of translate and score: MODEL (-m, checked given) loaded after
** the BLAS threads are set; dies with the loader's message. */
nlp_seq2seq *s2s_load_model(const char *model, int threads);

/* ==== Reading ============================================================ */

/*
** Reads a corpus: the tsv file path ("-" or NULL: stdin) when src is NULL,
** else the two line-aligned files src and tgt.  Dies with "seq2seq:
** FILE:LINE: what" (exit 1) on bad input.
*/
nlp_pairs *s2s_read_pairs(const char *path, const char *src, const char *tgt);

/* ==== Translation ======================================================== */

typedef struct s2s_search_config {
    int beam;               /* k; 1 = greedy; 5 */
    int n_best;             /* 1 */
    float length_penalty;   /* GNMT alpha; 0 */
    double max_len_ratio;   /* a hypothesis has at most ceil(R * source
                               length) + S2S_MAX_LEN_EXTRA tokens (fewer
                               when attention is kept for very long
                               sources: S2S_ATTENTION_BUDGET); 2 */
    int want_attention;     /* 0 */
} s2s_search_config;

#define S2S_MAX_LEN_EXTRA 5

/* Floats the kept attention of one search may take (1 GiB); beyond, the
** longest translations are cut shorter. */
#define S2S_ATTENTION_BUDGET (256.0 * 1024 * 1024)

void s2s_search_config_default(s2s_search_config *c);

typedef struct s2s_search {
    nlp_seq2seq *m;               /* borrowed */
    nlp_seq2seq_decoder *dec;
    nlp_beam *beam;
    s2s_search_config cfg;
    int max_n, max_S, max_len;    /* sizes it was made for */
    int *src;                     /* (max_S, max_n) time-major source ids */
    int *max_len_of;              /* (max_n) */
} s2s_search;

/*
** A search over m for batches of up to max_n sentences of up to max_S
** tokens.  NLP_OK or an error with e filled.
*/
int s2s_search_new(s2s_search **out, nlp_seq2seq *m, const s2s_search_config *c, int max_n,
                   int max_S, nlp_error *e);
void s2s_search_free(s2s_search *s);

/* The most tokens a hypothesis of a source of len tokens may have. */
int s2s_max_len(const s2s_search_config *c, int len);

/*
** Translates n sources (ids[i], len[i] tokens each; len 0 allowed); the
** results are nlp_beam_result(s->beam, i, j, ...).  NLP_OK or an error.
*/
int s2s_search_run(s2s_search *s, const int *const *ids, const int *len, int n, nlp_error *e);

/* ==== Training =========================================================== */

typedef enum s2s_metric { S2S_METRIC_PPL = 0, S2S_METRIC_BLEU = 1 } s2s_metric;

typedef struct s2s_train_config {
    nlp_pairs_batch_config batch;   /* the batches of training */
    uint64_t seed;                  /* batch order and dropout */
    s2s_metric metric;              /* validation metric */
    int eval_batch;                 /* sentences per validation batch; 64 */
    double max_len_ratio;           /* for --valid-metric bleu's translations */
    FILE *log;                      /* a line of dev perplexity beside BLEU; may be NULL */
} s2s_train_config;

typedef struct s2s_trainer s2s_trainer;

/*
** The training task for m over train (encoded with m's vocabularies) and,
** when dev is not NULL, validation on dev (encoded) whose references for
** BLEU are the words of dev_raw (the corpus as read; may be NULL with the
** perplexity metric).  Everything is borrowed and must outlive t.
*/
int s2s_trainer_new(s2s_trainer **out, nlp_seq2seq *m, const s2s_train_config *c,
                    const nlp_pairs *train, const nlp_pairs *dev, const nlp_pairs *dev_raw,
                    nlp_error *e);
void s2s_trainer_free(s2s_trainer *t);
const nlp_train_task *s2s_trainer_task(s2s_trainer *t);

/* Batches per epoch. */
long s2s_trainer_batches(const s2s_trainer *t);

/* Target tokens trained on in this process and the seconds its steps took. */
double s2s_trainer_tokens(const s2s_trainer *t);
double s2s_trainer_seconds(const s2s_trainer *t);

/*
** Corpus statistics of a validation pass of m over dev (for score and
** tests): the sum of log p of every target with </s>, the tokens counted.
** Per-pair log-probabilities go to logp (dev->n) when not NULL.
*/
int s2s_forced_logp(nlp_seq2seq *m, const nlp_pairs *dev, int batch, double *sum,
                    size_t *tokens, double *logp, nlp_error *e);

#endif
