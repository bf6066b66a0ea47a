/*
** train: the training loop every libnlp trainer shares.
**
** A trainer (charlm, seq2seq, sentiment, ...) describes its work as an
** nlp_train_task: a few callbacks over its own context.  The harness owns
** everything else, the same way for every tool:
**
**   - the optimiser (one nlp_optim over the task's nlp_params buffer),
**     gradient zeroing, global-norm clipping and the update, so a task's
**     step only runs forward and backward;
**   - limits: epochs, steps, training time (counted across resumes);
**   - validation every epoch or every valid_every steps; the best model so
**     far is written (atomically) to cfg.output; early stopping after
**     cfg.patience validations without a new best;
**   - learning-rate decay on a plateau: after cfg.lr_patience validations
**     without a new best the rate is multiplied by cfg.lr_decay, never below
**     cfg.min_lr, through nlp_optim_set_lr_scale() (the optimiser's own
**     schedule still applies underneath);
**   - checkpoints holding everything the run depends on: parameters,
**     optimiser kind, configuration and moments, the harness's loop state,
**     and the task's state (data position, every rng, carried state),
**     written atomically every cfg.checkpoint_every seconds and when a stop
**     is requested (*cfg.stop != 0, set by a signal handler in the tool);
**     nlp_train_resume() continues bit-identically with the same
**     cfg.threads;
**   - progress on cfg.log: a live line on a terminal; in a pipe or log one
**     line per validation; nothing with verbosity < 0, more with > 0;
**   - cfg.plot: an SVG of training loss and validation metric against steps
**     (lib/svg), rewritten after every validation.
**
** The harness never prints to stdout and never exits the process.
**
** Threads (cfg.threads = W > 1, a task with step_share): one team of W
** threads (the caller's and W-1 made by nlp_train_new, kept until
** nlp_train_free) runs every step: worker w forward and backward on its
** share of the batch into its own gradient buffer, with the BLAS on one
** thread during the run (nlp_tensor_set_threads(1); the caller's count is
** put back for validation and when the run returns); then the caller's thread sums the
** buffers into params->grad in the order 0, 1, ..., W-1, combines the
** losses in that order too, and the step goes on as on one thread (the
** task's step_end, clip, update).  Reproducibility: a run with W threads
** repeats bit for bit with W threads (and resumes bit-identically with
** W); W = 1 is the serial step exactly; another W gives the same
** arithmetic summed in another order (float rounding apart) and, with
** dropout, other masks.
**
** One iteration: the run ends if a limit is reached (cfg.epochs epochs
** completed, cfg.max_steps steps, cfg.time_limit seconds) or early
** stopping fired; else a stop request writes the checkpoint and returns
** NLP_TRAIN_REQUESTED (so a limit reached at the same point wins); else a
** periodic checkpoint is written when due; then one step (zero the
** gradients, task->step, check, clip, update, the weight average), then,
** at a validation point, evaluate and decide.  When the run ends on a limit or early
** stopping, the weights it stopped with are validated too (if any step
** came after the last validation), the plot is redrawn and, when
** cfg.checkpoint_every > 0, a last checkpoint is written.  "Time" is the
** wall-clock time of nlp_train_run (steps, validation and files) on
** cfg.clock, added up over resumed runs.  A validation metric that is not
** finite never counts as a new best.
**
** Progress lines (every tool the same; the metric name and the unit come
** from the task):
**   validation  "epoch 3 step 1200: train 1.2345, valid bpc 2.0512 (best),
**               lr 0.002, 12.3k chars/s, 1m20s" (train: mean loss since the
**               last validation; the rate over that interval; training time)
**   live        "step 1234, epoch 3 45%: loss 1.2345, 12.3k chars/s,
**               lr 0.002, ETA 3m20s" (ETA to the nearest limit), redrawn in
**               place on a terminal; with verbosity > 0 also written as a
**               line every cfg.log_every steps
**   verbose     "plateau: 2 validations without a new best; learning rate
**               0.002 -> 0.001", "early stopping: ..."
**   the end     "done (early stopping): epoch 7, step 8400; best valid bpc
**               2.0512 at step 7200; training time 20m00s", or "stop
**               requested at epoch 3 step 1234: checkpoint written to PATH"
** A tool adds only what is its own (what to do next, exit status).
**
** Model and checkpoint files (nlp/model.h) have the task's kind.  The
** harness writes the parameters itself (one tensor per view); the task's
** save_model adds what else makes the file loadable (hyperparameter
** metadata, vocabulary blobs).  A checkpoint adds "train.*" metadata, the
** optimiser state and what the task's save_state writes, and is a usable
** model file too (with the latest raw weights, not the best nor the
** average: see weight averaging below).  Every file the
** harness writes carries cfg.meta and "train.metric", "train.best_metric"
** (when there is a best), "train.best_step" (-1: none), "train.step",
** "train.epoch", "train.elapsed" (seconds); the
** "train.*" and "optim.*" keys belong to the harness (lib/train.c lists
** those of a checkpoint), tasks use their own prefix.
*/
#ifndef NLP_TRAIN_H
#define NLP_TRAIN_H

#include <signal.h>
#include <stdio.h>

#include <nlp/error.h>
#include <nlp/model.h>
#include <nlp/optim.h>
#include <nlp/params.h>
#include <nlp/rng.h>

/* ==== The task interface ================================================= */

typedef struct nlp_train_task {
    void *ctx;               /* passed to every callback */
    const char *kind;        /* model-file kind, e.g. "charlm" */
    const char *metric;      /* name of the validation metric, e.g. "bpc" */
    int higher_is_better;    /* 0: lower metric is better (bpc, loss);
                                1: higher is (accuracy, BLEU) */
    const char *unit;        /* what step counts, for rates: "chars", "tokens" */
    nlp_params *params;      /* the parameters trained (borrowed) */

    /*
    ** Forward and backward on the next training batch.  The harness has
    ** zeroed the gradients; step ADDS into them.  *loss: the batch's mean
    ** loss; *count: how many items it covered (characters, tokens,
    ** sentences), which weights the epoch's mean loss and the rate.
    ** Returns 0, 1 when this batch was the last of an epoch (the task has
    ** rewound to the start of its data, carried state reset), or a negative
    ** NLP_E* code with e filled.  Required.
    */
    int (*step)(void *ctx, double *loss, double *count, nlp_error *e);

    /*
    ** The validation metric in *metric (no dropout, no parameter change).
    ** NULL when the task has no validation data: then the latest model is
    ** the one kept, and patience and plateau decay do nothing.
    */
    int (*evaluate)(void *ctx, double *metric, nlp_error *e);

    /* How far the current epoch is, in [0,1] (progress and ETA); NAN when
    ** unknown.  Optional: without it (or with NAN) the harness estimates it
    ** from the steps the first epochs took. */
    double (*epoch_fraction)(void *ctx);

    /*
    ** Adds to file what besides the parameters makes it a loadable model of
    ** this kind: hyperparameter metadata, vocabulary blobs.  Required.
    */
    int (*save_model)(void *ctx, nlp_model *file, nlp_error *e);

    /*
    ** Checkpoint extras: data position, rngs (nlp_train_add_rng), carried
    ** state, ...; and the inverse, from a checkpoint loaded as a model of
    ** this kind.  load_state range-checks every number it reads.  Both
    ** optional (a task without state between steps).
    */
    int (*save_state)(void *ctx, nlp_model *file, nlp_error *e);
    int (*load_state)(void *ctx, const nlp_model *file, nlp_error *e);

    /*
    ** The parallel step, optional (all three or none), used when
    ** cfg.threads = W > 1; without it the harness calls step (and W only
    ** reaches the tool's BLAS threads).
    **
    ** prepare_workers(ctx, W, e) is called once, by nlp_train_new: make W
    ** workers' workspaces (a share never allocates).  NLP_OK, or NLP_EINVAL
    ** (the batch cannot be split W ways), NLP_ENOMEM, with e filled.
    **
    ** step_share(ctx, w, W, grad, ...) runs on worker thread w, for w =
    ** 0..W-1 at once: forward and backward on the w-th share of the next
    ** batch, ADDING into grad (params->n floats, worker w's own, zeroed by
    ** the harness) the share's part of the gradient of the WHOLE batch's
    ** loss, so that the shares' gradients sum to the batch's.  It reads the
    ** parameters and the task's state and writes only what is worker w's
    ** own.  *loss: the share's mean loss, *count: its items.  0 or a
    ** negative NLP_E* code with e (worker w's own) filled.
    **
    ** step_end(ctx, W, e) runs on the calling thread when every share is
    ** done: moves past the batch (data position, rngs).  Returns what step
    ** returns: 0, 1 at the end of an epoch, or a negative NLP_E* code.
    */
    int (*prepare_workers)(void *ctx, int nworkers, nlp_error *e);
    int (*step_share)(void *ctx, int worker, int nworkers, float *grad, double *loss,
                      double *count, nlp_error *e);
    int (*step_end)(void *ctx, int nworkers, nlp_error *e);

    /*
    ** Several processes (cfg.collective), for a task whose shares carry
    ** state of their own between steps (charlm: the recurrent state of
    ** each share's streams), which a checkpoint must hold whole.  Before
    ** every checkpoint, on every process, the harness asks for the k-th
    ** buffer of that state (k = 0, 1, ... until NULL), of *n floats:
    ** share_state must zero in it what shares other than [first,
    ** first+count) of total own (those this process ran), then the
    ** harness sums it over the processes, which leaves the whole state,
    ** the same bits, on every one.  Optional: NULL when the shares keep
    ** nothing between steps.
    */
    float *(*share_state)(void *ctx, int k, int first, int count, int total, size_t *n);
} nlp_train_task;

/* ==== Several processes ================================================= */

/*
** A run spread over several processes (MPI ranks, on one machine or many),
** given to the harness by the tool as cfg.collective; lib/ knows no
** transport (bin/mpi.c implements this with MPI).  Every process runs the
** same program on the same data with the same configuration and calls
** nlp_train_run; the harness then
**
**   - splits every batch into size x W shares (W = cfg.threads): process
**     r's worker w takes share r*W + w, as one process with size*W threads
**     would (task->prepare_workers(ctx, size*W), step_share(ctx, r*W+w,
**     size*W, ...), step_end(ctx, size*W) on every process), so the task
**     needs nothing more than its parallel step; a task without one is
**     refused (NLP_EINVAL);
**   - sums the gradient buffer over the processes once per step
**     (sum_float of params->n floats) and the shares' losses and counts
**     (sum_double), so every process applies the same update and keeps the
**     same loop state;
**   - agrees on every decision a clock or a signal makes, once per
**     iteration (sum_double of three votes): a stop request on any process
**     stops all of them at the same step; the time limit and periodic
**     checkpoints follow process 0's clock;
**   - validates on process 0 only and broadcasts the metric (so a machine
**     whose BLAS rounds differently cannot take another decision);
**   - writes models, checkpoints and the plot, and reports progress, on
**     process 0 only (log is unused elsewhere; nlp_train_checkpoint writes
**     nothing there);
**   - checks at the start of nlp_train_run that every process holds the
**     same parameters (count and CRC-32 against process 0's): a different
**     corpus, model option, seed or checkpoint on one machine is NLP_EINVAL
**     on every process, naming the first such rank.
** Resuming: every process reads the same checkpoint (written by process
** 0), with the same size and W, and continues bit-identically as long as
** sum_float adds in the same order as before (MPI_Allreduce on the same
** number of processes and the same Open MPI does).
**
** The functions run on the thread that called nlp_train_run, in the same
** order on every process; each returns NLP_OK or a negative NLP_E* code
** with e filled, after which the run ends with that error (the tool
** should then end every process: a collective that one process left will
** never complete).
*/
typedef struct nlp_train_collective {
    int rank;                /* this process, 0..size-1; 0 is the root */
    int size;                /* processes; 1 (or no collective) is one process */
    void *ctx;               /* passed to the functions */
    /* buf[0..n) summed over the processes, in place; every process gets
    ** the same bits. */
    int (*sum_float)(void *ctx, float *buf, size_t n, nlp_error *e);
    int (*sum_double)(void *ctx, double *buf, size_t n, nlp_error *e);
    /* Process 0's buf[0..n) copied into every process's buf. */
    int (*broadcast)(void *ctx, double *buf, size_t n, nlp_error *e);
} nlp_train_collective;

/* ==== Configuration ====================================================== */

typedef struct nlp_train_config {
    long epochs;             /* passes over the training data; 0 = no limit; 20 */
    long max_steps;          /* training steps in all; 0 = no limit; 0 */
    double time_limit;       /* seconds of training over resumed runs too;
                                0 = no limit; 0 */
    long valid_every;        /* steps between validations; 0 = after each epoch; 0 */
    long patience;           /* stop after this many validations in a row
                                without a new best; 0 = never; 0 */
    double lr_decay;         /* factor in (0,1] on a plateau; 1 = never; 0.5 */
    long lr_patience;        /* validations without a new best before a decay; 2 */
    double min_lr;           /* the decay never takes optim.lr times the scale
                                below this (the schedule underneath may), nor
                                raises it; 1e-5 */
    double clip;             /* global gradient-norm limit, 0 = none; 5 */
    nlp_optim_config optim;  /* Adam with its defaults */
    double average;          /* weight averaging (below): the decay d in
                                [0, 1); 0 = off; 0 */
    double checkpoint_every; /* seconds between checkpoints; 0 = only on stop; 0 */
    const char *output;      /* best model (required) */
    const char *checkpoint;  /* checkpoint path; NULL: output + ".ckpt" */
    const char *plot;        /* SVG written after each validation; NULL: none */
    const char *const *meta; /* extra metadata pairs for every file written
                                (key, value, ..., NULL); may be NULL */
    FILE *log;               /* progress and reports; NULL: silent; stderr */
    int live;                /* live line: -1 when log is a terminal, 0, 1; -1 */
    int verbosity;           /* -1 quiet, 0 normal, 1 verbose; 0 */
    volatile sig_atomic_t *stop; /* non-zero: checkpoint and return; may be NULL */
    long log_every;          /* verbosity > 0: a progress line every this many
                                steps; 0 = none; 100 */
    double (*clock)(void *clock_ctx); /* monotonic seconds for the time limit,
                                checkpoint_every and rates; NULL:
                                nlp_progress_now (tests pass a fake one) */
    void *clock_ctx;         /* passed to clock */
    int threads;             /* W workers per step, 1..NLP_TRAIN_MAX_THREADS,
                                for a task with step_share; 1 */
    const nlp_train_collective *collective; /* several processes (above);
                                borrowed; NULL: this process alone */
} nlp_train_config;

/*
** Weight averaging (cfg.average = d > 0): the harness keeps an exponential
** moving average of the whole parameter buffer, updated after every
** optimiser step as avg = d_s avg + (1 - d_s) w with the warm-up
** d_s = min(d, (1 + s) / (10 + s)), s the updates the average has had
** before this one (so the first is d_0 = 0.1: the average soon leaves the
** initial weights), in float, element by element.  It starts from the
** weights at the start of the run.  task->evaluate and the writing of the
** model file cfg.output (task->save_model included) run with the average
** in params->data; the raw weights are copied back afterwards, bit for
** bit, so every training step, and task->save_state, sees the raw weights.
** A checkpoint holds the raw weights as its parameters (it is a model file
** of the latest raw weights) plus the average: tensor "train.average"
** (params->n floats) and "train.average_steps" (s).  Resuming with
** averaging on from a checkpoint written without it (no such tensor)
** starts the average from the weights resumed, with the warm-up from
** s = 0; resuming with averaging off ignores a stored average.  With a
** collective every process updates its own copy: their weights are the
** same after every step, so their averages are too, with no communication.
** Costs two buffers of params->n floats, and one pass over them per step.
*/

#define NLP_TRAIN_MAX_THREADS 1024
#define NLP_TRAIN_MAX_PROCESSES 65536 /* collective->size */

/* Fills c with the defaults written next to each field. */
void nlp_train_config_default(nlp_train_config *c);

/* Checks ranges (counts >= 0, lr_decay in (0,1], lr_patience >= 1,
** average in [0,1), min_lr, clip, time_limit, checkpoint_every finite and
** >= 0, the optimiser
** configuration, output given).  NLP_OK or NLP_EINVAL with e->text naming
** the field. */
int nlp_train_config_check(const nlp_train_config *c, nlp_error *e);

/*
** Reads the configuration a checkpoint was written with (limits, schedule,
** optimiser configuration, clip, average (0 when the checkpoint predates
** weight averaging); paths are NOT read: a path stored in a file
** is never followed) into c, leaving other fields as they are.  NLP_OK or
** NLP_EFORMAT ("not a checkpoint", or a value out of range) with e filled.
*/
int nlp_train_config_read(nlp_train_config *c, const nlp_model *ckpt, nlp_error *e);

/* ==== The run ============================================================ */

typedef enum nlp_train_stop {
    NLP_TRAIN_EPOCHS = 0,    /* cfg.epochs done */
    NLP_TRAIN_STEPS,         /* cfg.max_steps done */
    NLP_TRAIN_TIME,          /* cfg.time_limit reached */
    NLP_TRAIN_PATIENCE,      /* early stopping */
    NLP_TRAIN_REQUESTED      /* *cfg.stop was set; a checkpoint was written */
} nlp_train_stop;

typedef struct nlp_train_result {
    nlp_train_stop reason;
    long epochs;             /* epochs completed */
    long steps;              /* steps done in all (over resumes) */
    double elapsed;          /* training seconds in all (over resumes) */
    double best_metric;      /* best validation metric; NAN when none */
    long best_step;          /* step of the best model; -1 when none */
    double last_loss;        /* mean training loss of the last epoch (or so far) */
    double lr;               /* learning rate at the end */
} nlp_train_result;

typedef struct nlp_train nlp_train; /* opaque */

/*
** A run of task with configuration cfg (copied; the strings, meta, log,
** stop and task->params are borrowed and must outlive the run).  Makes the
** optimiser and, with cfg.threads > 1 and a task with step_share, calls
** task->prepare_workers and starts the team's threads (kept until
** nlp_train_free; the caller's thread is worker 0).  Returns NLP_OK with
** *out set, NLP_EINVAL (bad configuration or task, or the task's refusal
** of the thread count), NLP_ENOMEM (also: a thread could not be made),
** with e filled.
*/
int nlp_train_new(nlp_train **out, const nlp_train_config *cfg,
                  const nlp_train_task *task, nlp_error *e);

/* Frees t (not the task).  NULL is a no-op. */
void nlp_train_free(nlp_train *t);

/*
** Continues from a checkpoint loaded as a model of the task's kind, whose
** parameters the task's loader has already read into task->params: restores
** the optimiser, the loop state (epoch, step, elapsed time, best metric,
** plateau counters, learning-rate scale, plot history) and calls
** task->load_state.  Call it before nlp_train_run, on t made with the
** checkpoint's configuration (nlp_train_config_read, then the caller's
** overrides).  Every number is range-checked: negative, NaN, infinite or
** absurdly large values and inconsistent ones (more epochs than steps, an
** optimiser step other than train.step) are NLP_EFORMAT with a message
** naming the key; NLP_ENOMEM too.  The loop state changes only on success;
** after a failure the optimiser and the task may be half restored, so free
** t.  e->file is left empty: the caller knows the path.
*/
int nlp_train_resume(nlp_train *t, const nlp_model *ckpt, nlp_error *e);

/*
** Trains until a limit, early stopping or a stop request, validating,
** keeping the best model, checkpointing and reporting as configured above.
** Fills *res (may be NULL; also on failure, where reason means nothing).
** Returns NLP_OK (whatever the stop reason), NLP_ERANGE when training
** diverged (a non-finite loss or gradient: the update is skipped and the
** run stops; the best model on disk is intact), NLP_EINVAL when step
** returns a value other than 0/1 or a count that is negative or not
** finite, or the first error of a callback or of a file write, with e
** filled.
*/
int nlp_train_run(nlp_train *t, nlp_train_result *res, nlp_error *e);

/* The run's optimiser (for reports and tests). */
const nlp_optim *nlp_train_optim(const nlp_train *t);

/* Short text for a stop reason ("epochs done", "step limit", "time limit",
** "early stopping", "stop requested"); "?" for an unknown value. */
const char *nlp_train_stop_name(nlp_train_stop reason);

/* The checkpoint path in use (cfg.checkpoint or output + ".ckpt"); owned
** by t. */
const char *nlp_train_checkpoint_path(const nlp_train *t);

/* Writes a checkpoint now (to nlp_train_checkpoint_path(t)).  NLP_OK,
** NLP_EIO, NLP_ENOMEM, or the error of task->save_model / save_state.
** With a collective, call it on every process at the same point: each
** takes part in gathering the shares' state (task->share_state), and
** process 0 writes. */
int nlp_train_checkpoint(nlp_train *t, nlp_error *e);

/* ==== Helpers for tasks' step_share ====================================== */

/* Worker i's share of a batch of n items split W ways: the contiguous
** items [*first, *first + *count), i*n/W up to (i+1)*n/W, so the W shares
** cover the batch in order and differ in size by at most one.  Requires
** 0 <= i < W and n >= 0. */
void nlp_train_share(int i, int W, int n, int *first, int *count);

/* The dropout rng of worker i's share: seeded from the (i+1)-th draw of
** the run's rng, which nlp_train_share_rng_end then makes once all W
** shares are done, so the masks depend on the run and W only, and a
** checkpoint needs nothing more than the run's rng. */
void nlp_train_share_rng(nlp_rng *worker, const nlp_rng *run, int i);
void nlp_train_share_rng_end(nlp_rng *run, int W);

/* ==== Helpers for tasks' save_state/load_state =========================== */

/* Stores the state of r in file as metadata name (64 hex digits) / restores
** it.  add: NLP_OK, NLP_ENOMEM, NLP_EINVAL.  read: NLP_OK, or NLP_EFORMAT
** when missing or malformed (not 64 lower-case hex digits, or all zero),
** naming the key; r is unchanged then. */
int nlp_train_add_rng(nlp_model *file, const char *name, const nlp_rng *r);
int nlp_train_read_rng(const nlp_model *file, const char *name, nlp_rng *r,
                       nlp_error *e);

#endif
