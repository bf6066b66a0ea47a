/*
** train: the training loop every trainer shares (see nlp/train.h).
**
** One iteration of nlp_train_run:
**
**   1. the run ends when a limit is reached (epochs, steps, time) or early
**      stopping fired; a stop request writes a checkpoint and returns; a
**      periodic checkpoint is written when due;
**   2. zero the gradients, task->step (forward + backward), check the loss
**      and the gradient norm are finite, clip, one optimiser update;
**   3. bookkeeping: loss sums, the loss history of the plot, the epoch
**      count; at a validation point: evaluate, keep the best model, count
**      validations without a new best (early stopping, plateau decay),
**      report, redraw the plot.
**
** Everything step 1 and 3 depend on is the loop state below, written into
** every checkpoint and range-checked on resume, so a resumed run takes the
** same decisions at the same steps as an uninterrupted one.  Wall-clock time
** only decides when the time limit ends the run and when periodic
** checkpoints are written; neither changes a parameter.
**
** Checkpoint metadata (all "train.*"): checkpoint (format, 1); the loop
** state epoch, step, epoch_start_step, elapsed, best_metric, best_step,
** plateau, bad_validations, lr_scale, epoch_loss, epoch_count, last_loss,
** since_valid, interval_loss, interval_count, valid_elapsed, loss_width,
** loss_points, valid_points; blobs train.loss_history (loss_points x 4
** little-endian doubles: last step, loss sum, count sum, steps) and
** train.valid_history (valid_points x 3: step, metric, training loss); the
** configuration epochs, max_steps, time_limit, valid_every, patience,
** lr_decay, lr_patience, min_lr, clip, checkpoint_every, average (absent in
** older checkpoints: 0) and optim.* (kind, lr, momentum, nesterov, beta1,
** beta2, alpha, eps, weight_decay, schedule, gamma, step_size, warmup).
** With weight averaging on and started, also average_steps (updates the
** average has had) and the tensor train.average (params->n floats).
**
** Weight averaging (cfg.average = d > 0): t->avg follows the parameters
** after every update; validation and the model files swap it into the
** parameter buffer (the raw weights kept in t->avg_raw, copied back bit
** for bit), so steps and checkpoints always see the raw weights.
*/
#include "nlp/train.h"
#include "nlp/alloc.h"
#include "nlp/crc32.h"
#include "nlp/progress.h"
#include "nlp/svg.h"
#include "nlp/tensor.h"

#include <errno.h>
#include <pthread.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CKPT_FORMAT 1
/* Counts read from a checkpoint (steps, epochs, validations) above this are
** refused: 1e15 steps is over 30 years at a million steps a second, and
** every such count stays exact as a double. */
#define MAX_COUNT 1000000000000000L
#define MAX_SECONDS 1e10   /* elapsed and limits: over 300 years */
#define MAX_RATE 1e6       /* largest learning rate or weight decay read back */
#define LOSS_BUCKETS 256   /* loss-history points kept: pairs merge when full */
#define RNG_HEX 64         /* an rng in metadata: 4 x 16 hex digits */
#define AVG_OMP_MIN 65536  /* the average's update in OpenMP from this size,
                              as the optimiser's */

/* ==== The run's state ==================================================== */

/* One worker of the parallel step (cfg.threads > 1).  Worker 0 runs on the
** caller's thread and adds into params->grad itself; the others have a
** buffer each, summed into it in worker order after the shares. */
typedef struct train_worker {
    struct nlp_train *t;
    int id;
    float *grad;              /* (params->n); worker 0: params->grad */
    double loss, count;       /* the share's, from step_share */
    int rc;                   /* step_share's result */
    nlp_error err;            /* its error */
} train_worker;

/* The team: W-1 threads made once, woken for every step. */
typedef struct train_team {
    int n;                    /* W workers, thread 0 the caller's */
    int base, total;          /* worker w takes share base + w of total:
                                 rank * W of size * W with a collective,
                                 else 0 of W */
    train_worker *w;          /* (n) */
    pthread_t *th;            /* (n) th[1..n-1] */
    int started;              /* threads made */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen;        /* step number: a change wakes the workers */
    int pending;              /* workers 1..n-1 still on this step */
    int quit;
    int blas;                 /* the caller's BLAS threads, during a run */
    int omp;                  /* the caller's OpenMP threads, during a run */
} train_team;

struct nlp_train {
    nlp_train_config cfg;
    nlp_train_task task;
    char *ckpt_path;          /* owned */
    nlp_optim *opt;
    nlp_progress prog;

    /* Loop state: in every checkpoint. */
    long epoch;               /* epochs completed */
    long step;                /* updates done in all */
    long epoch_start_step;    /* step at which the current epoch began */
    double elapsed;           /* training seconds before this run */
    double best;              /* best metric (meaningful when best_step >= 0) */
    long best_step;           /* -1: no validation yet */
    long plateau;             /* validations without a new best since the last
                                 decay or best */
    long bad;                 /* validations in a row without a new best */
    double epoch_loss, epoch_count;  /* sums over the current epoch */
    double last_loss;         /* mean loss of the last complete epoch; NAN */
    long since_valid;         /* steps since the last validation */
    double interval_loss, interval_count; /* sums since the last validation */
    double valid_elapsed;     /* elapsed at the last validation */
    /* Plot history: the training loss in at most LOSS_BUCKETS buckets of
    ** loss_width steps each (pairs merge when full), and every validation. */
    long loss_width;
    int nloss;
    double lstep[LOSS_BUCKETS], lsum[LOSS_BUCKETS], lcount[LOSS_BUCKETS],
        lnsteps[LOSS_BUCKETS];
    double ly[LOSS_BUCKETS];  /* scratch: the plotted means */
    double *vstep, *vmetric, *vtrain; /* (nvalid) */
    size_t nvalid, capvalid;

    /* This run only. */
    int running;
    double run_start;         /* clock at nlp_train_run's start */
    double last_ckpt;         /* clock at the last checkpoint */
    long run_steps;           /* steps done by this run */
    double run_count;         /* items covered by this run */
    double run_pos0;          /* epoch position at the start; NAN: unknown */

    /* Weight averaging (cfg.average > 0; else both NULL). */
    float *avg;               /* (params->n) the average */
    float *avg_raw;           /* (params->n) the raw weights while the average
                                 is in the parameter buffer */
    int avg_ready;            /* avg holds an average (else it starts from the
                                 weights when the run starts) */
    int avg_in;               /* the average is in the parameter buffer now */
    long avg_steps;           /* updates of the average: in every checkpoint */

    train_team *team;         /* cfg.threads > 1 or a collective, with
                                 step_share; else NULL */
    /* Several processes (nlp_train_collective): NULL for one. */
    const nlp_train_collective *coll;
    int vote_stop, vote_time, vote_ckpt; /* this iteration's agreed decisions */
};

/* Process 0, or the only one: the one that writes files and reports. */
static int is_root(const nlp_train *t)
{
    return !t->coll || t->coll->rank == 0;
}

static double clock_now(const nlp_train *t)
{
    return t->cfg.clock ? t->cfg.clock(t->cfg.clock_ctx) : nlp_progress_now();
}

static double elapsed_now(const nlp_train *t)
{
    return t->elapsed + (t->running ? clock_now(t) - t->run_start : 0.0);
}

/* ==== Configuration ====================================================== */

void nlp_train_config_default(nlp_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->epochs = 20;
    c->lr_decay = 0.5;
    c->lr_patience = 2;
    c->min_lr = 1e-5;
    c->clip = 5.0;
    nlp_optim_config_default(&c->optim, NLP_OPTIM_ADAM);
    c->log = stderr;
    c->live = -1;
    c->log_every = 100;
    c->threads = 1;
}

static int finite_nonneg(double x)
{
    return isfinite(x) && x >= 0.0;
}

int nlp_train_config_check(const nlp_train_config *c, nlp_error *e)
{
#define BAD(...) return nlp_error_set(e, NLP_EINVAL, NULL, 0, __VA_ARGS__)
    if (!c)
        BAD("no training configuration");
    if (c->epochs < 0)
        BAD("epochs must be >= 0 (0 = no limit), not %ld", c->epochs);
    if (c->max_steps < 0)
        BAD("max_steps must be >= 0 (0 = no limit), not %ld", c->max_steps);
    if (!finite_nonneg(c->time_limit) || c->time_limit > MAX_SECONDS)
        BAD("time_limit must be in [0, %g] seconds, not %g", MAX_SECONDS, c->time_limit);
    if (c->valid_every < 0)
        BAD("valid_every must be >= 0 (0 = after each epoch), not %ld", c->valid_every);
    if (c->patience < 0)
        BAD("patience must be >= 0 (0 = never stop early), not %ld", c->patience);
    if (!(c->lr_decay > 0.0 && c->lr_decay <= 1.0))
        BAD("lr_decay must be in (0, 1] (1 = never), not %g", c->lr_decay);
    if (c->lr_patience < 1)
        BAD("lr_patience must be >= 1, not %ld", c->lr_patience);
    if (!finite_nonneg(c->min_lr))
        BAD("min_lr must be finite and >= 0, not %g", c->min_lr);
    if (!finite_nonneg(c->clip))
        BAD("clip must be finite and >= 0 (0 = none), not %g", c->clip);
    if (nlp_optim_config_check(&c->optim) != NLP_OK)
        BAD("invalid optimiser configuration (optim: learning rate, betas, schedule)");
    if (!(c->average >= 0.0 && c->average < 1.0))
        BAD("average must be in [0, 1) (0 = no weight averaging), not %g", c->average);
    if (!finite_nonneg(c->checkpoint_every) || c->checkpoint_every > MAX_SECONDS)
        BAD("checkpoint_every must be in [0, %g] seconds, not %g", MAX_SECONDS,
            c->checkpoint_every);
    if (!c->output || !c->output[0])
        BAD("no output model file (output)");
    if (c->checkpoint && !c->checkpoint[0])
        BAD("checkpoint path is empty");
    if (c->plot && !c->plot[0])
        BAD("plot path is empty");
    if (c->live < -1 || c->live > 1)
        BAD("live must be -1, 0 or 1, not %d", c->live);
    if (c->log_every < 0)
        BAD("log_every must be >= 0, not %ld", c->log_every);
    if (c->threads < 1 || c->threads > NLP_TRAIN_MAX_THREADS)
        BAD("threads must be in 1..%d, not %d", NLP_TRAIN_MAX_THREADS, c->threads);
    if (c->collective) {
        const nlp_train_collective *k = c->collective;
        if (k->size < 1 || k->size > NLP_TRAIN_MAX_PROCESSES || k->rank < 0 ||
            k->rank >= k->size)
            BAD("collective: rank %d of %d processes (at most %d)", k->rank, k->size,
                NLP_TRAIN_MAX_PROCESSES);
        if (!k->sum_float || !k->sum_double || !k->broadcast)
            BAD("collective: sum_float, sum_double and broadcast are required");
    }
#undef BAD
    return NLP_OK;
}

/* ---- reading numbers back from a checkpoint ---- */

enum { LO_OPEN = 1, HI_OPEN = 2, NAN_OK = 4 };

/* "nan" or a number in the interval; flags as above.  Every message names
** the key, the value and the expected range. */
static int get_double(const nlp_model *m, const char *key, double lo, double hi, int flags,
                      double *out, nlp_error *e)
{
    const char *s = nlp_model_meta(m, key);
    if (!s)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint has no '%s' setting", key);
    char *end;
    double v = strtod(s, &end);
    int ok = end != s && !*end;
    if (ok && isnan(v))
        ok = (flags & NAN_OK) != 0;
    else if (ok)
        ok = isfinite(v) && ((flags & LO_OPEN) ? v > lo : v >= lo) &&
             ((flags & HI_OPEN) ? v < hi : v <= hi);
    if (!ok)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "checkpoint setting '%s' is '%s', expected a number in %c%g, %g%c%s",
                             key, s, (flags & LO_OPEN) ? '(' : '[', lo, hi,
                             (flags & HI_OPEN) ? ')' : ']', (flags & NAN_OK) ? " or nan" : "");
    *out = isnan(v) ? NAN : v;
    return NLP_OK;
}

static int get_long(const nlp_model *m, const char *key, long lo, long hi, long *out,
                    nlp_error *e)
{
    const char *s = nlp_model_meta(m, key);
    if (!s)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint has no '%s' setting", key);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "checkpoint setting '%s' is '%s', expected an integer in [%ld, %ld]",
                             key, s, lo, hi);
    *out = v;
    return NLP_OK;
}

static int is_checkpoint(const nlp_model *m, nlp_error *e)
{
    long fmt;
    if (!nlp_model_meta(m, "train.checkpoint"))
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "not a checkpoint (a model file has no training state)");
    return get_long(m, "train.checkpoint", CKPT_FORMAT, CKPT_FORMAT, &fmt, e);
}

int nlp_train_config_read(nlp_train_config *c, const nlp_model *ckpt, nlp_error *e)
{
    int rc = is_checkpoint(ckpt, e);
    if (rc != NLP_OK)
        return rc;
    nlp_train_config t = *c;
    nlp_optim_config *o = &t.optim;
    long nesterov, schedule;
    const char *kind = nlp_model_meta(ckpt, "train.optim.kind");
    if (!kind)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint has no 'train.optim.kind' setting");
    if (nlp_optim_kind_parse(kind, &o->kind) != NLP_OK)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "checkpoint setting 'train.optim.kind' is '%s', expected adam, "
                             "rmsprop or sgd", kind);
    if ((rc = get_long(ckpt, "train.epochs", 0, MAX_COUNT, &t.epochs, e)) ||
        (rc = get_long(ckpt, "train.max_steps", 0, MAX_COUNT, &t.max_steps, e)) ||
        (rc = get_double(ckpt, "train.time_limit", 0, MAX_SECONDS, 0, &t.time_limit, e)) ||
        (rc = get_long(ckpt, "train.valid_every", 0, MAX_COUNT, &t.valid_every, e)) ||
        (rc = get_long(ckpt, "train.patience", 0, MAX_COUNT, &t.patience, e)) ||
        (rc = get_double(ckpt, "train.lr_decay", 0, 1, LO_OPEN, &t.lr_decay, e)) ||
        (rc = get_long(ckpt, "train.lr_patience", 1, MAX_COUNT, &t.lr_patience, e)) ||
        (rc = get_double(ckpt, "train.min_lr", 0, MAX_RATE, 0, &t.min_lr, e)) ||
        (rc = get_double(ckpt, "train.clip", 0, 1e30, 0, &t.clip, e)) ||
        (rc = get_double(ckpt, "train.checkpoint_every", 0, MAX_SECONDS, 0,
                         &t.checkpoint_every, e)) ||
        (rc = get_double(ckpt, "train.optim.lr", 0, MAX_RATE, LO_OPEN, &o->lr, e)) ||
        (rc = get_double(ckpt, "train.optim.momentum", 0, 1, HI_OPEN, &o->momentum, e)) ||
        (rc = get_long(ckpt, "train.optim.nesterov", 0, 1, &nesterov, e)) ||
        (rc = get_double(ckpt, "train.optim.beta1", 0, 1, HI_OPEN, &o->beta1, e)) ||
        (rc = get_double(ckpt, "train.optim.beta2", 0, 1, HI_OPEN, &o->beta2, e)) ||
        (rc = get_double(ckpt, "train.optim.alpha", 0, 1, HI_OPEN, &o->alpha, e)) ||
        (rc = get_double(ckpt, "train.optim.eps", 0, 1, LO_OPEN, &o->eps, e)) ||
        (rc = get_double(ckpt, "train.optim.weight_decay", 0, MAX_RATE, 0, &o->weight_decay,
                         e)) ||
        (rc = get_long(ckpt, "train.optim.schedule", NLP_LR_CONSTANT, NLP_LR_STEP, &schedule,
                       e)) ||
        (rc = get_double(ckpt, "train.optim.gamma", 0, 1, LO_OPEN, &o->gamma, e)) ||
        (rc = get_long(ckpt, "train.optim.step_size", 1, MAX_COUNT, &o->step_size, e)) ||
        (rc = get_long(ckpt, "train.optim.warmup", 0, MAX_COUNT, &o->warmup, e)))
        return rc;
    /* Checkpoints from before weight averaging have no key: it was off. */
    t.average = 0;
    if (nlp_model_meta(ckpt, "train.average") &&
        (rc = get_double(ckpt, "train.average", 0, 1, HI_OPEN, &t.average, e)))
        return rc;
    o->nesterov = (int)nesterov;
    o->schedule = (nlp_lr_schedule)schedule;
    if (nlp_optim_config_check(o) != NLP_OK)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "checkpoint optimiser settings (train.optim.*) are inconsistent");
    *c = t;
    return NLP_OK;
}

/* ==== Several processes ================================================== */

/* A collective's failure, with a message when it gave none. */
static int collective_failed(nlp_error *e, int rc, const char *what)
{
    if (rc >= 0)
        rc = NLP_EIO;
    if (e && e->code == NLP_OK)
        nlp_error_set(e, rc, NULL, 0, "%s over the processes failed: %s", what,
                      nlp_error_string(rc));
    return rc;
}

/* ==== The team of the parallel step ===================================== */

static void share(train_worker *w)
{
    nlp_train *t = w->t;
    const size_t n = t->task.params->n;
    memset(w->grad, 0, n * sizeof *w->grad);
    nlp_error_clear(&w->err);
    w->loss = NAN;
    w->count = 0;
    w->rc = t->task.step_share(t->task.ctx, t->team->base + w->id, t->team->total, w->grad,
                               &w->loss, &w->count, &w->err);
}

static void *worker_main(void *arg)
{
    train_worker *w = arg;
    train_team *team = w->t->team;
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&team->mu);
        while (team->gen == seen && !team->quit)
            pthread_cond_wait(&team->go, &team->mu);
        if (team->quit) {
            pthread_mutex_unlock(&team->mu);
            return NULL;
        }
        seen = team->gen;
        pthread_mutex_unlock(&team->mu);
        share(w);
        pthread_mutex_lock(&team->mu);
        if (--team->pending == 0)
            pthread_cond_signal(&team->done);
        pthread_mutex_unlock(&team->mu);
    }
}

static void team_free(train_team *team)
{
    if (!team)
        return;
    if (team->started > 0) {
        pthread_mutex_lock(&team->mu);
        team->quit = 1;
        pthread_cond_broadcast(&team->go);
        pthread_mutex_unlock(&team->mu);
        for (int i = 1; i <= team->started; i++)
            pthread_join(team->th[i], NULL);
    }
    if (team->w)
        for (int i = 1; i < team->n; i++)
            nlp_tensor_free(team->w[i].grad);
    pthread_cond_destroy(&team->done);
    pthread_cond_destroy(&team->go);
    pthread_mutex_destroy(&team->mu);
    nlp_free(team->w);
    nlp_free(team->th);
    nlp_free(team);
}

/* Makes t's team of cfg.threads workers (the task has prepared them). */
static int team_new(nlp_train *t, nlp_error *e)
{
    const int n = t->cfg.threads;
    train_team *team = nlp_calloc(1, sizeof *team);
    if (!team)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    if (pthread_mutex_init(&team->mu, NULL) != 0) {
        nlp_free(team);
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, "cannot make a mutex");
    }
    if (pthread_cond_init(&team->go, NULL) != 0) {
        pthread_mutex_destroy(&team->mu);
        nlp_free(team);
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, "cannot make a condition variable");
    }
    if (pthread_cond_init(&team->done, NULL) != 0) {
        pthread_cond_destroy(&team->go);
        pthread_mutex_destroy(&team->mu);
        nlp_free(team);
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, "cannot make a condition variable");
    }
    t->team = team;
    team->n = n;
    team->base = t->coll ? t->coll->rank * n : 0;
    team->total = t->coll ? t->coll->size * n : n;
    team->w = nlp_calloc((size_t)n, sizeof *team->w);
    team->th = nlp_calloc((size_t)n, sizeof *team->th);
    if (!team->w || !team->th)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    for (int i = 0; i < n; i++) {
        team->w[i].t = t;
        team->w[i].id = i;
        team->w[i].grad = i == 0 ? t->task.params->grad
                                 : nlp_tensor_alloc(t->task.params->n);
        if (!team->w[i].grad)
            return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    }
    for (int i = 1; i < n; i++) {
        int rc = pthread_create(&team->th[i], NULL, worker_main, &team->w[i]);
        if (rc != 0)
            return nlp_error_set(e, NLP_ENOMEM, NULL, 0, "cannot start training thread %d: %s",
                                 i, strerror(rc));
        team->started = i;
    }
    return NLP_OK;
}

/*
** The BLAS and the OpenMP loops (the optimiser's) on one thread while the
** team steps (from the start of a run), the caller's counts back for
** validation and after the run.  Switching the BLAS every step instead
** cost a quarter of the speed, and the optimiser's OpenMP team 4%: their
** threads spin after their work and take the cores from the workers.
*/
static void blas_for_team(nlp_train *t, int on)
{
    train_team *team = t->team;
    if (!team)
        return;
    if (on) {
        team->blas = nlp_tensor_threads();
        if (team->blas != 1)
            nlp_tensor_set_threads(1);
#ifdef _OPENMP
        team->omp = omp_get_max_threads();
        if (team->omp != 1)
            omp_set_num_threads(1);
#endif
    } else {
        if (team->blas != 1)
            nlp_tensor_set_threads(team->blas);
#ifdef _OPENMP
        if (team->omp != 1)
            omp_set_num_threads(team->omp);
#endif
    }
}

/*
** The parallel forward and backward: every worker's share at once, then the gradients summed into params->grad in
** worker order (worker 0's already is), the losses combined in that order,
** and the task's step_end.  Returns what step returns.
*/
static int team_step(nlp_train *t, double *loss, double *count, nlp_error *e)
{
    train_team *team = t->team;
    pthread_mutex_lock(&team->mu);
    team->pending = team->n - 1;
    team->gen++;
    pthread_cond_broadcast(&team->go);
    pthread_mutex_unlock(&team->mu);
    team->w[0].grad = t->task.params->grad;
    share(&team->w[0]);
    pthread_mutex_lock(&team->mu);
    while (team->pending > 0)
        pthread_cond_wait(&team->done, &team->mu);
    pthread_mutex_unlock(&team->mu);

    for (int i = 0; i < team->n; i++)
        if (team->w[i].rc < 0) {
            if (e)
                *e = team->w[i].err;
            if (!e || e->code == NLP_OK)
                nlp_error_set(e, team->w[i].rc, NULL, 0, "training thread %d failed: %s", i,
                              nlp_error_string(team->w[i].rc));
            return team->w[i].rc;
        }
    const size_t n = t->task.params->n;
    float *g = t->task.params->grad;
    for (int i = 1; i < team->n; i++) {
        const float *gi = team->w[i].grad;
        for (size_t k = 0; k < n; k++)
            g[k] += gi[k];
    }
    double sum = 0, items = 0, plain = 0;
    for (int i = 0; i < team->n; i++) {
        sum += team->w[i].loss * team->w[i].count;
        items += team->w[i].count;
        plain += team->w[i].loss;
    }
    if (t->coll) {
        /* The one reduction of the gradient per step, then the losses:
        ** every process has the whole batch's from here on. */
        double l[3] = { sum, items, plain };
        int rc = t->coll->sum_float(t->coll->ctx, g, n, e);
        if (rc == NLP_OK)
            rc = t->coll->sum_double(t->coll->ctx, l, 3, e);
        if (rc != NLP_OK)
            return collective_failed(e, rc, "summing the gradients");
        sum = l[0];
        items = l[1];
        plain = l[2];
    }
    *count = items;
    *loss = items > 0 ? sum / items : plain / team->total;
    return t->task.step_end(t->task.ctx, team->total, e);
}

/* ==== Creating and freeing =============================================== */

int nlp_train_new(nlp_train **out, const nlp_train_config *cfg, const nlp_train_task *task,
                  nlp_error *e)
{
    if (!out)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "nlp_train_new: no result pointer");
    *out = NULL;
    int rc = nlp_train_config_check(cfg, e);
    if (rc != NLP_OK)
        return rc;
    if (!task || !task->kind || !task->kind[0] || !task->step || !task->save_model)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "training task needs a kind, a step and a save_model callback");
    if (!task->params || !task->params->data || !task->params->grad || task->params->n == 0)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "training task has no allocated parameters");
    nlp_train *t = nlp_calloc(1, sizeof *t);
    if (!t)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    t->cfg = *cfg;
    t->task = *task;
    if (cfg->checkpoint) {
        t->ckpt_path = nlp_strdup(cfg->checkpoint);
    } else {
        size_t n = strlen(cfg->output);
        if ((t->ckpt_path = nlp_malloc(n + sizeof ".ckpt"))) {
            memcpy(t->ckpt_path, cfg->output, n);
            memcpy(t->ckpt_path + n, ".ckpt", sizeof ".ckpt");
        }
    }
    rc = t->ckpt_path ? nlp_optim_new(&t->opt, task->params->n, &cfg->optim) : NLP_ENOMEM;
    if (rc == NLP_OK && cfg->average > 0) {
        t->avg = nlp_tensor_alloc(task->params->n);
        t->avg_raw = nlp_tensor_alloc(task->params->n);
        if (!t->avg || !t->avg_raw)
            rc = NLP_ENOMEM;
    }
    if (rc != NLP_OK) {
        nlp_train_free(t);
        return nlp_error_set(e, rc, NULL, 0, NULL);
    }
    t->best = NAN;
    t->best_step = -1;
    t->last_loss = NAN;
    t->loss_width = 1;
    nlp_progress_init(&t->prog, NULL, 0);
    t->coll = cfg->collective && cfg->collective->size > 1 ? cfg->collective : NULL;
    if (t->coll && !task->step_share) {
        nlp_train_free(t);
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "training task '%s' has no parallel "
                             "step: it cannot be spread over %d processes", task->kind,
                             t->coll->size);
    }
    if ((cfg->threads > 1 || t->coll) && task->step_share) {
        if (!task->prepare_workers || !task->step_end) {
            nlp_train_free(t);
            return nlp_error_set(e, NLP_EINVAL, NULL, 0, "training task has step_share "
                                 "without prepare_workers and step_end");
        }
        const int total = t->coll ? t->coll->size * cfg->threads : cfg->threads;
        if ((rc = task->prepare_workers(task->ctx, total, e)) != NLP_OK
            || (rc = team_new(t, e)) != NLP_OK) {
            nlp_train_free(t);
            return rc;
        }
    }
    *out = t;
    return NLP_OK;
}

void nlp_train_free(nlp_train *t)
{
    if (!t)
        return;
    team_free(t->team);
    nlp_optim_free(t->opt);
    nlp_tensor_free(t->avg);
    nlp_tensor_free(t->avg_raw);
    nlp_free(t->ckpt_path);
    nlp_free(t->vstep);
    nlp_free(t->vmetric);
    nlp_free(t->vtrain);
    nlp_free(t);
}

const nlp_optim *nlp_train_optim(const nlp_train *t)
{
    return t->opt;
}

const char *nlp_train_checkpoint_path(const nlp_train *t)
{
    return t->ckpt_path;
}

const char *nlp_train_stop_name(nlp_train_stop reason)
{
    switch (reason) {
    case NLP_TRAIN_EPOCHS: return "epochs done";
    case NLP_TRAIN_STEPS: return "step limit";
    case NLP_TRAIN_TIME: return "time limit";
    case NLP_TRAIN_PATIENCE: return "early stopping";
    case NLP_TRAIN_REQUESTED: return "stop requested";
    default: return "?";
    }
}

/* ==== Weight averaging ================================================== */

/*
** The average's update after an optimiser step: avg = d_s avg + (1 - d_s) w
** with d_s = min(d, (1 + s) / (10 + s)), s the updates the average has had
** (warm-up: the first updates weigh the new weights most, so the average
** does not stay near the initial ones).  Element by element, so the result
** is the same on any number of OpenMP threads, and on every process of a
** collective (which all hold the same weights after a step).
*/
static void average_update(nlp_train *t)
{
    if (!t->avg)
        return;
    const long n = (long)t->task.params->n;
    const float *restrict w = t->task.params->data;
    float *restrict a = t->avg;
    const double s = (double)t->avg_steps;
    const double d = fmin(t->cfg.average, (1.0 + s) / (10.0 + s));
    const float keep = (float)d, take = (float)(1.0 - d);
#pragma omp parallel for if (n >= AVG_OMP_MIN) schedule(static)
    for (long i = 0; i < n; i++)
        a[i] = keep * a[i] + take * w[i];
    t->avg_steps++;
}

/*
** on: the average into the parameter buffer (the raw weights kept in
** avg_raw); off: the raw weights back, bit for bit.  Only on the process
** that validates and writes.  Returns 1 when it changed the buffer, 0 when
** it already was so (or there is no average yet), for the caller to undo
** exactly what it did.
*/
static int average_in(nlp_train *t, int on)
{
    if (!t->avg || !t->avg_ready || !is_root(t) || t->avg_in == on)
        return 0;
    float *w = t->task.params->data;
    const size_t bytes = t->task.params->n * sizeof *w;
    if (on) {
        memcpy(t->avg_raw, w, bytes);
        memcpy(w, t->avg, bytes);
    } else {
        memcpy(w, t->avg_raw, bytes);
    }
    t->avg_in = on;
    return 1;
}

/* At the start of a run: an average not yet started (a new run, or a
** checkpoint without one) starts from the weights as they are. */
static void average_start(nlp_train *t)
{
    if (!t->avg || t->avg_ready)
        return;
    memcpy(t->avg, t->task.params->data, t->task.params->n * sizeof *t->avg);
    t->avg_ready = 1;
    t->avg_steps = 0;
}

/* ==== Writing model files and checkpoints ================================ */

static void put_f64(unsigned char *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

static double get_f64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)p[i] << (8 * i);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static int set_long(nlp_model *m, const char *key, long v, int rc)
{
    return rc != NLP_OK ? rc : nlp_model_set_meta_long(m, key, v);
}

/* %.17g round-trips; NAN is written as "nan" (nlp_model_set_meta_double
** would print "-nan" for some NaNs, which strtod reads too, but one
** spelling is tidier). */
static int set_double(nlp_model *m, const char *key, double v, int rc)
{
    if (rc != NLP_OK)
        return rc;
    return isnan(v) ? nlp_model_set_meta(m, key, "nan") : nlp_model_set_meta_double(m, key, v);
}

static int add_config(nlp_model *m, const nlp_train_config *c)
{
    const nlp_optim_config *o = &c->optim;
    int rc = nlp_model_set_meta(m, "train.optim.kind", nlp_optim_kind_name(o->kind));
    rc = set_long(m, "train.epochs", c->epochs, rc);
    rc = set_long(m, "train.max_steps", c->max_steps, rc);
    rc = set_double(m, "train.time_limit", c->time_limit, rc);
    rc = set_long(m, "train.valid_every", c->valid_every, rc);
    rc = set_long(m, "train.patience", c->patience, rc);
    rc = set_double(m, "train.lr_decay", c->lr_decay, rc);
    rc = set_long(m, "train.lr_patience", c->lr_patience, rc);
    rc = set_double(m, "train.min_lr", c->min_lr, rc);
    rc = set_double(m, "train.clip", c->clip, rc);
    rc = set_double(m, "train.checkpoint_every", c->checkpoint_every, rc);
    rc = set_double(m, "train.average", c->average, rc);
    rc = set_double(m, "train.optim.lr", o->lr, rc);
    rc = set_double(m, "train.optim.momentum", o->momentum, rc);
    rc = set_long(m, "train.optim.nesterov", o->nesterov, rc);
    rc = set_double(m, "train.optim.beta1", o->beta1, rc);
    rc = set_double(m, "train.optim.beta2", o->beta2, rc);
    rc = set_double(m, "train.optim.alpha", o->alpha, rc);
    rc = set_double(m, "train.optim.eps", o->eps, rc);
    rc = set_double(m, "train.optim.weight_decay", o->weight_decay, rc);
    rc = set_long(m, "train.optim.schedule", (long)o->schedule, rc);
    rc = set_double(m, "train.optim.gamma", o->gamma, rc);
    rc = set_long(m, "train.optim.step_size", o->step_size, rc);
    rc = set_long(m, "train.optim.warmup", o->warmup, rc);
    return rc;
}

static int add_state(nlp_model *m, const nlp_train *t, double elapsed)
{
    int rc = set_long(m, "train.checkpoint", CKPT_FORMAT, NLP_OK);
    rc = set_long(m, "train.epoch_start_step", t->epoch_start_step, rc);
    rc = set_long(m, "train.plateau", t->plateau, rc);
    rc = set_long(m, "train.bad_validations", t->bad, rc);
    rc = set_double(m, "train.lr_scale", nlp_optim_lr_scale(t->opt), rc);
    rc = set_double(m, "train.epoch_loss", t->epoch_loss, rc);
    rc = set_double(m, "train.epoch_count", t->epoch_count, rc);
    rc = set_double(m, "train.last_loss", t->last_loss, rc);
    rc = set_long(m, "train.since_valid", t->since_valid, rc);
    rc = set_double(m, "train.interval_loss", t->interval_loss, rc);
    rc = set_double(m, "train.interval_count", t->interval_count, rc);
    rc = set_double(m, "train.valid_elapsed", fmin(t->valid_elapsed, elapsed), rc);
    rc = set_long(m, "train.loss_width", t->loss_width, rc);
    rc = set_long(m, "train.loss_points", t->nloss, rc);
    rc = set_long(m, "train.valid_points", (long)t->nvalid, rc);
    return rc;
}

/*
** The file for path: parameters, what the task adds, cfg.meta, the
** "train.*" facts; for a checkpoint also the optimiser, the loop state, the
** configuration, the history and the task's state.  Saved atomically.
*/
static int write_file(nlp_train *t, const char *path, int ckpt, nlp_error *e)
{
    if (!is_root(t))
        return NLP_OK;
    const nlp_train_task *k = &t->task;
    unsigned char *lbuf = NULL, *vbuf = NULL;
    const double elapsed = elapsed_now(t);
    nlp_error_clear(e);
    /* A model holds the averaged weights, a checkpoint the raw ones (and
    ** the average beside them). */
    const int swapped = average_in(t, !ckpt);
    nlp_model *m;
    int rc = nlp_model_new(&m, k->kind);
    if (rc != NLP_OK) {
        if (swapped)
            average_in(t, ckpt);
        return nlp_error_set(e, rc, path, 0, NULL);
    }
    rc = nlp_model_add_params(m, k->params);
    if (rc != NLP_OK) {
        nlp_error_set(e, rc, path, 0, "cannot add the parameters: %s", nlp_error_string(rc));
        goto done;
    }
    if ((rc = k->save_model(k->ctx, m, e)) != NLP_OK) {
        if (e && e->code == NLP_OK)
            nlp_error_set(e, rc, path, 0, "saving the model: %s", nlp_error_string(rc));
        goto done;
    }
    if (t->cfg.meta)
        for (const char *const *p = t->cfg.meta; p[0] && p[1] && rc == NLP_OK; p += 2)
            rc = nlp_model_set_meta(m, p[0], p[1]);
    if (rc == NLP_OK && k->metric)
        rc = nlp_model_set_meta(m, "train.metric", k->metric);
    if (t->best_step >= 0) /* else absent: a reader's meta_double refuses "nan" */
        rc = set_double(m, "train.best_metric", t->best, rc);
    rc = set_long(m, "train.best_step", t->best_step, rc);
    rc = set_long(m, "train.step", t->step, rc);
    rc = set_long(m, "train.epoch", t->epoch, rc);
    rc = set_double(m, "train.elapsed", elapsed, rc);
    if (ckpt) {
        if (rc == NLP_OK)
            rc = nlp_model_add_optim(m, t->opt);
        if (rc == NLP_OK)
            rc = add_state(m, t, elapsed);
        if (rc == NLP_OK)
            rc = add_config(m, &t->cfg);
        if (rc == NLP_OK && t->avg && t->avg_ready) {
            size_t shape[1] = { k->params->n };
            rc = set_long(m, "train.average_steps", t->avg_steps, rc);
            if (rc == NLP_OK)
                rc = nlp_model_add_tensor(m, "train.average", t->avg, 1, shape);
        }
        if (rc == NLP_OK) {
            size_t ln = (size_t)t->nloss * 32, vn = t->nvalid * 24;
            lbuf = nlp_malloc(ln);
            vbuf = nlp_malloc(vn);
            if (!lbuf || !vbuf)
                rc = NLP_ENOMEM;
        }
        if (rc == NLP_OK) {
            for (int i = 0; i < t->nloss; i++) {
                put_f64(lbuf + 32 * (size_t)i, t->lstep[i]);
                put_f64(lbuf + 32 * (size_t)i + 8, t->lsum[i]);
                put_f64(lbuf + 32 * (size_t)i + 16, t->lcount[i]);
                put_f64(lbuf + 32 * (size_t)i + 24, t->lnsteps[i]);
            }
            for (size_t i = 0; i < t->nvalid; i++) {
                put_f64(vbuf + 24 * i, t->vstep[i]);
                put_f64(vbuf + 24 * i + 8, t->vmetric[i]);
                put_f64(vbuf + 24 * i + 16, t->vtrain[i]);
            }
            rc = nlp_model_add_blob(m, "train.loss_history", lbuf, (size_t)t->nloss * 32);
        }
        if (rc == NLP_OK)
            rc = nlp_model_add_blob(m, "train.valid_history", vbuf, t->nvalid * 24);
    }
    if (rc != NLP_OK) {
        nlp_error_set(e, rc, path, 0, "cannot build the %s: %s", ckpt ? "checkpoint" : "model",
                      nlp_error_string(rc));
        goto done;
    }
    if (ckpt && k->save_state && (rc = k->save_state(k->ctx, m, e)) != NLP_OK) {
        if (e && e->code == NLP_OK)
            nlp_error_set(e, rc, path, 0, "saving the task's state: %s", nlp_error_string(rc));
        goto done;
    }
    rc = nlp_model_save(m, path, e);
done:
    nlp_model_free(m);
    nlp_free(lbuf);
    nlp_free(vbuf);
    if (swapped)
        average_in(t, ckpt);
    return rc;
}

/* Several processes: the shares' own state made whole on every process
** (task->share_state), for process 0's checkpoint. */
static int sync_state(nlp_train *t, nlp_error *e)
{
    if (!t->coll || !t->task.share_state || !t->team)
        return NLP_OK;
    float *buf;
    size_t n;
    for (int k = 0; (buf = t->task.share_state(t->task.ctx, k, t->team->base, t->team->n,
                                               t->team->total, &n)); k++) {
        int rc = t->coll->sum_float(t->coll->ctx, buf, n, e);
        if (rc != NLP_OK)
            return collective_failed(e, rc, "gathering the task's state");
    }
    return NLP_OK;
}

int nlp_train_checkpoint(nlp_train *t, nlp_error *e)
{
    int rc = sync_state(t, e);
    if (rc != NLP_OK)
        return rc;
    if (!is_root(t))
        return NLP_OK; /* process 0 writes it */
    return write_file(t, t->ckpt_path, 1, e);
}

/* ==== Resuming =========================================================== */

/* The loop state of a checkpoint, parsed before any of it is applied. */
typedef struct saved {
    long epoch, step, epoch_start_step, best_step, plateau, bad, since_valid, loss_width;
    long nloss, nvalid;
    double elapsed, best, lr_scale, epoch_loss, epoch_count, last_loss, interval_loss,
        interval_count, valid_elapsed;
} saved;

static int bad_state(nlp_error *e, const char *what)
{
    return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint: %s", what);
}

static int read_state(const nlp_model *m, saved *s, nlp_error *e)
{
    int rc;
    const double inf = HUGE_VAL;
    if ((rc = get_long(m, "train.step", 0, MAX_COUNT, &s->step, e)) ||
        (rc = get_long(m, "train.epoch", 0, s->step, &s->epoch, e)) ||
        (rc = get_long(m, "train.epoch_start_step", 0, s->step, &s->epoch_start_step, e)) ||
        (rc = get_double(m, "train.elapsed", 0, MAX_SECONDS, 0, &s->elapsed, e)) ||
        (rc = get_long(m, "train.best_step", -1, s->step, &s->best_step, e)) ||
        (rc = get_long(m, "train.plateau", 0, s->step + 1, &s->plateau, e)) ||
        (rc = get_long(m, "train.bad_validations", 0, s->step + 1, &s->bad, e)) ||
        (rc = get_double(m, "train.lr_scale", 0, 1, LO_OPEN, &s->lr_scale, e)) ||
        (rc = get_double(m, "train.epoch_loss", -inf, inf, HI_OPEN, &s->epoch_loss, e)) ||
        (rc = get_double(m, "train.epoch_count", 0, inf, HI_OPEN, &s->epoch_count, e)) ||
        (rc = get_double(m, "train.last_loss", -inf, inf, HI_OPEN | NAN_OK, &s->last_loss, e)) ||
        (rc = get_long(m, "train.since_valid", 0, s->step, &s->since_valid, e)) ||
        (rc = get_double(m, "train.interval_loss", -inf, inf, HI_OPEN, &s->interval_loss, e)) ||
        (rc = get_double(m, "train.interval_count", 0, inf, HI_OPEN, &s->interval_count, e)) ||
        (rc = get_double(m, "train.valid_elapsed", 0, s->elapsed, 0, &s->valid_elapsed, e)) ||
        (rc = get_long(m, "train.loss_width", 1, MAX_COUNT, &s->loss_width, e)) ||
        (rc = get_long(m, "train.loss_points", 0, LOSS_BUCKETS, &s->nloss, e)) ||
        (rc = get_long(m, "train.valid_points", 0, s->step + 1, &s->nvalid, e)))
        return rc;
    if (s->best_step >= 0) {
        if ((rc = get_double(m, "train.best_metric", -inf, inf, HI_OPEN, &s->best, e)))
            return rc;
    } else {
        s->best = NAN;
    }
    if (s->loss_width & (s->loss_width - 1))
        return bad_state(e, "'train.loss_width' is not a power of two");
    if (s->epoch_start_step < s->epoch)
        return bad_state(e, "'train.epoch_start_step' is before the end of the epochs done");
    if (s->plateau > s->bad)
        return bad_state(e, "'train.plateau' exceeds 'train.bad_validations'");
    return NLP_OK;
}

/* Integer-valued double in [lo, hi]. */
static int whole_in(double x, double lo, double hi)
{
    return isfinite(x) && x == floor(x) && x >= lo && x <= hi;
}

/* Decodes and checks the history blobs into fresh arrays (owned by the
** caller on success). */
static int read_history(const nlp_model *m, const saved *s, double lh[4][LOSS_BUCKETS],
                        double **vs, double **vm, double **vt, nlp_error *e)
{
    size_t ln, vn;
    const unsigned char *lb = nlp_model_blob(m, "train.loss_history", &ln);
    const unsigned char *vb = nlp_model_blob(m, "train.valid_history", &vn);
    if (!lb || ln != (size_t)s->nloss * 32)
        return bad_state(e, "blob 'train.loss_history' is missing or does not hold "
                            "'train.loss_points' records");
    if (!vb || vn != (size_t)s->nvalid * 24)
        return bad_state(e, "blob 'train.valid_history' is missing or does not hold "
                            "'train.valid_points' records");
    double prev = -1, nsteps = 0;
    for (long i = 0; i < s->nloss; i++) {
        for (int j = 0; j < 4; j++)
            lh[j][i] = get_f64(lb + 32 * (size_t)i + 8 * (size_t)j);
        if (!whole_in(lh[0][i], prev + 1, (double)s->step) ||
            !whole_in(lh[3][i], 1, (double)s->loss_width) || !isfinite(lh[1][i]) ||
            !(lh[2][i] >= 0 && isfinite(lh[2][i])))
            return bad_state(e, "blob 'train.loss_history' holds a record out of range");
        prev = lh[0][i];
        nsteps += lh[3][i];
    }
    if (nsteps != (double)s->step)
        return bad_state(e, "blob 'train.loss_history' does not cover 'train.step' steps");
    *vs = nlp_malloc((size_t)s->nvalid * sizeof **vs);
    *vm = nlp_malloc((size_t)s->nvalid * sizeof **vm);
    *vt = nlp_malloc((size_t)s->nvalid * sizeof **vt);
    if (!*vs || !*vm || !*vt) {
        nlp_free(*vs);
        nlp_free(*vm);
        nlp_free(*vt);
        *vs = *vm = *vt = NULL;
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    }
    prev = 0;
    for (long i = 0; i < s->nvalid; i++) {
        double st = get_f64(vb + 24 * (size_t)i), me = get_f64(vb + 24 * (size_t)i + 8),
               tr = get_f64(vb + 24 * (size_t)i + 16);
        if (!whole_in(st, prev, (double)s->step) || isinf(me) || isinf(tr)) {
            nlp_free(*vs);
            nlp_free(*vm);
            nlp_free(*vt);
            *vs = *vm = *vt = NULL;
            return bad_state(e, "blob 'train.valid_history' holds a record out of range");
        }
        (*vs)[i] = st;
        (*vm)[i] = isnan(me) ? NAN : me;
        (*vt)[i] = isnan(tr) ? NAN : tr;
        prev = st;
    }
    return NLP_OK;
}

/*
** The average of a checkpoint (for a run with averaging on), checked: the
** tensor train.average of params->n finite floats (*avg points into ckpt)
** with train.average_steps in [0, step]; or neither (written without
** averaging): *avg NULL, and the run starts the average from the weights.
*/
static int read_average(const nlp_train *t, const nlp_model *ckpt, long step,
                        const float **avg, long *avg_steps, nlp_error *e)
{
    *avg = NULL;
    *avg_steps = 0;
    const int has_steps = nlp_model_meta(ckpt, "train.average_steps") != NULL;
    const int has_avg = nlp_model_tensor(ckpt, "train.average", NULL, NULL) != NULL;
    if (!has_steps && !has_avg)
        return NLP_OK;
    if (!has_avg)
        return bad_state(e, "'train.average_steps' without the tensor 'train.average'");
    int rc = get_long(ckpt, "train.average_steps", 0, step, avg_steps, e);
    if (rc != NLP_OK)
        return rc;
    const size_t n = t->task.params->n, shape[1] = { n };
    if ((rc = nlp_model_check_tensor(ckpt, "train.average", 1, shape, e)) != NLP_OK)
        return rc;
    const float *a = nlp_model_tensor(ckpt, "train.average", NULL, NULL);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i]))
            return bad_state(e, "tensor 'train.average' holds a value that is not finite");
    *avg = a;
    return NLP_OK;
}

int nlp_train_resume(nlp_train *t, const nlp_model *ckpt, nlp_error *e)
{
    if (!t || !ckpt)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "nlp_train_resume: no run or checkpoint");
    if (strcmp(nlp_model_kind(ckpt), t->task.kind) != 0)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint is of kind '%s', not '%s'",
                             nlp_model_kind(ckpt), t->task.kind);
    int rc = is_checkpoint(ckpt, e);
    if (rc != NLP_OK)
        return rc;
    saved s;
    if ((rc = read_state(ckpt, &s, e)) != NLP_OK)
        return rc;
    double lh[4][LOSS_BUCKETS];
    memset(lh, 0, sizeof lh);
    double *vs = NULL, *vm = NULL, *vt = NULL;
    if ((rc = read_history(ckpt, &s, lh, &vs, &vm, &vt, e)) != NLP_OK)
        return rc;
    const float *avg = NULL;
    long avg_steps = 0;
    if (t->avg && (rc = read_average(t, ckpt, s.step, &avg, &avg_steps, e)) != NLP_OK)
        goto fail;
    long ostep;
    if ((rc = get_long(ckpt, "optim.step", s.step, s.step, &ostep, e)) != NLP_OK ||
        (rc = nlp_model_read_optim(ckpt, t->opt, e)) != NLP_OK)
        goto fail;
    if (nlp_optim_steps(t->opt) != s.step) {
        rc = nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                           "checkpoint: optimiser step %ld does not match 'train.step' %ld",
                           nlp_optim_steps(t->opt), s.step);
        goto fail;
    }
    if (t->task.load_state && (rc = t->task.load_state(t->task.ctx, ckpt, e)) != NLP_OK) {
        if (e && e->code == NLP_OK)
            nlp_error_set(e, rc, NULL, 0, "restoring the task's state: %s", nlp_error_string(rc));
        goto fail;
    }
    nlp_optim_set_lr_scale(t->opt, s.lr_scale);
    if (t->avg) {
        /* Without an average in the checkpoint, the run starts one from
        ** the weights it resumes with. */
        if (avg)
            memcpy(t->avg, avg, t->task.params->n * sizeof *t->avg);
        t->avg_ready = avg != NULL;
        t->avg_steps = avg_steps;
        t->avg_in = 0;
    }
    t->epoch = s.epoch;
    t->step = s.step;
    t->epoch_start_step = s.epoch_start_step;
    t->elapsed = s.elapsed;
    t->best = s.best;
    t->best_step = s.best_step;
    t->plateau = s.plateau;
    t->bad = s.bad;
    t->epoch_loss = s.epoch_loss;
    t->epoch_count = s.epoch_count;
    t->last_loss = s.last_loss;
    t->since_valid = s.since_valid;
    t->interval_loss = s.interval_loss;
    t->interval_count = s.interval_count;
    t->valid_elapsed = s.valid_elapsed;
    t->loss_width = s.loss_width;
    t->nloss = (int)s.nloss;
    memcpy(t->lstep, lh[0], sizeof t->lstep);
    memcpy(t->lsum, lh[1], sizeof t->lsum);
    memcpy(t->lcount, lh[2], sizeof t->lcount);
    memcpy(t->lnsteps, lh[3], sizeof t->lnsteps);
    nlp_free(t->vstep);
    nlp_free(t->vmetric);
    nlp_free(t->vtrain);
    t->vstep = vs;
    t->vmetric = vm;
    t->vtrain = vt;
    t->nvalid = t->capvalid = (size_t)s.nvalid;
    return NLP_OK;
fail:
    nlp_free(vs);
    nlp_free(vm);
    nlp_free(vt);
    return rc;
}

/* ==== Progress =========================================================== */

static const char *fmt_rate(double r, char *buf, size_t n)
{
    if (!isfinite(r) || r < 0)
        snprintf(buf, n, "?");
    else if (r >= 1e6)
        snprintf(buf, n, "%.2fM", r / 1e6);
    else if (r >= 1e3)
        snprintf(buf, n, "%.1fk", r / 1e3);
    else
        snprintf(buf, n, "%.3g", r);
    return buf;
}

static const char *unit_of(const nlp_train *t)
{
    return t->task.unit && t->task.unit[0] ? t->task.unit : "items";
}

static const char *metric_of(const nlp_train *t)
{
    return t->task.metric && t->task.metric[0] ? t->task.metric : "metric";
}

/* Fraction of the current epoch done, in [0,1], or NAN when unknown. */
static double epoch_fraction(const nlp_train *t)
{
    double f = t->task.epoch_fraction ? t->task.epoch_fraction(t->task.ctx) : NAN;
    if (isnan(f) && t->epoch > 0 && t->epoch_start_step > 0) {
        double spe = (double)t->epoch_start_step / (double)t->epoch;
        f = (double)(t->step - t->epoch_start_step) / spe;
    }
    if (isnan(f))
        return NAN;
    return f < 0 ? 0 : f > 1 ? 1 : f;
}

/* Seconds to the nearest limit at this run's pace; NAN when unknown. */
static double eta(const nlp_train *t)
{
    double run = clock_now(t) - t->run_start, best = INFINITY;
    if (t->cfg.max_steps > 0 && t->run_steps > 0)
        best = fmin(best, (double)(t->cfg.max_steps - t->step) * run / (double)t->run_steps);
    if (t->cfg.epochs > 0) {
        double pos = (double)t->epoch + epoch_fraction(t), done = pos - t->run_pos0;
        if (done > 0) {
            best = fmin(best, ((double)t->cfg.epochs - pos) * run / done);
        } else if (t->epoch > 0 && t->epoch_start_step > 0 && t->run_steps > 0) {
            /* The position was unknown when the run started: steps left at
            ** the steps per epoch seen so far. */
            double spe = (double)t->epoch_start_step / (double)t->epoch;
            double left = (double)t->cfg.epochs * spe - (double)t->step;
            best = fmin(best, fmax(left, 0.0) * run / (double)t->run_steps);
        }
    }
    if (t->cfg.time_limit > 0)
        best = fmin(best, t->cfg.time_limit - elapsed_now(t));
    return isfinite(best) ? fmax(best, 0.0) : NAN;
}

/* "step 1200, epoch 3 45%: loss 1.2345, 12.3k chars/s, lr 0.002, ETA 2m10s" */
static void status_text(const nlp_train *t, char *buf, size_t n)
{
    char r[32], d[32], ep[48];
    double run = clock_now(t) - t->run_start;
    double f = epoch_fraction(t);
    if (isnan(f))
        snprintf(ep, sizeof ep, "epoch %ld", t->epoch + 1);
    else
        snprintf(ep, sizeof ep, "epoch %ld %.0f%%", t->epoch + 1, 100.0 * f);
    double loss = t->interval_count > 0 ? t->interval_loss / t->interval_count : NAN;
    double e = eta(t);
    snprintf(buf, n, "step %ld, %s: loss %.4f, %s %s/s, lr %.3g, ETA %s", t->step, ep, loss,
             fmt_rate(run > 0 ? t->run_count / run : NAN, r, sizeof r), unit_of(t),
             (double)nlp_optim_lr(t->opt),
             isnan(e) ? "?" : nlp_progress_duration(e, d, sizeof d));
}

/* ==== The loop =========================================================== */

static int better(const nlp_train *t, double m)
{
    if (!isfinite(m))
        return 0;
    if (t->best_step < 0)
        return 1;
    return t->task.higher_is_better ? m > t->best : m < t->best;
}

static int plot(nlp_train *t, nlp_error *e)
{
    if (!t->cfg.plot || !is_root(t))
        return NLP_OK;
    for (int i = 0; i < t->nloss; i++)
        t->ly[i] = t->lcount[i] > 0 ? t->lsum[i] / t->lcount[i] : NAN;
    char title[160], vlabel[96];
    snprintf(vlabel, sizeof vlabel, "validation %s", metric_of(t));
    if (t->task.evaluate)
        snprintf(title, sizeof title, "%s: training loss and %s", t->task.kind, vlabel);
    else
        snprintf(title, sizeof title, "%s: training loss", t->task.kind);
    nlp_svg_series s[2];
    memset(s, 0, sizeof s);
    s[0].name = "training loss";
    s[0].x = t->lstep;
    s[0].y = t->ly;
    s[0].n = (size_t)t->nloss;
    s[1].name = vlabel;
    s[1].x = t->vstep;
    s[1].y = t->vmetric;
    s[1].n = t->nvalid;
    s[1].right_axis = 1;
    nlp_svg_chart c;
    memset(&c, 0, sizeof c);
    c.title = title;
    c.xlabel = "step";
    c.ylabel = "training loss";
    c.y2label = vlabel;
    c.series = s;
    c.nseries = t->task.evaluate ? 2 : 1;
    return nlp_svg_chart_save(t->cfg.plot, &c, e);
}

static void record_loss(nlp_train *t, double loss, double count)
{
    if (t->nloss == 0 || t->lnsteps[t->nloss - 1] >= (double)t->loss_width) {
        if (t->nloss == LOSS_BUCKETS) {
            /* Full: merge neighbours, buckets twice as wide. */
            for (int i = 0; i < LOSS_BUCKETS / 2; i++) {
                t->lstep[i] = t->lstep[2 * i + 1];
                t->lsum[i] = t->lsum[2 * i] + t->lsum[2 * i + 1];
                t->lcount[i] = t->lcount[2 * i] + t->lcount[2 * i + 1];
                t->lnsteps[i] = t->lnsteps[2 * i] + t->lnsteps[2 * i + 1];
            }
            t->nloss = LOSS_BUCKETS / 2;
            t->loss_width *= 2;
        }
        if (t->nloss == 0 || t->lnsteps[t->nloss - 1] >= (double)t->loss_width) {
            int i = t->nloss++;
            t->lsum[i] = t->lcount[i] = t->lnsteps[i] = 0;
        }
    }
    int i = t->nloss - 1;
    t->lstep[i] = (double)t->step;
    t->lsum[i] += loss * count;
    t->lcount[i] += count;
    t->lnsteps[i] += 1;
}

/* One update.  Returns 0, 1 (the step ended an epoch) or an error. */
static int do_step(nlp_train *t, nlp_error *e)
{
    nlp_params *p = t->task.params;
    double loss = NAN, count = 0;
    int r;
    if (t->team) {
        r = team_step(t, &loss, &count, e); /* each worker zeroes its gradients */
    } else {
        nlp_params_zero_grad(p);
        r = t->task.step(t->task.ctx, &loss, &count, e);
    }
    if (r < 0) {
        if (e && e->code == NLP_OK)
            nlp_error_set(e, r, NULL, 0, "training step %ld failed: %s", t->step + 1,
                          nlp_error_string(r));
        return r;
    }
    if (r > 1)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "training step returned %d", r);
    if (!isfinite(loss))
        return nlp_error_set(e, NLP_ERANGE, NULL, 0,
                             "training diverged at step %ld: the loss is %g (try a lower "
                             "learning rate or a gradient clip)", t->step + 1, loss);
    if (!(count >= 0) || !isfinite(count))
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "training step %ld covered %g items",
                             t->step + 1, count);
    double norm = nlp_optim_clip(p->grad, p->n, (float)t->cfg.clip);
    if (!isfinite(norm))
        return nlp_error_set(e, NLP_ERANGE, NULL, 0,
                             "training diverged at step %ld: the gradient norm is %g (try a "
                             "lower learning rate or a gradient clip)", t->step + 1, norm);
    nlp_optim_step(t->opt, p->data, p->grad);
    average_update(t);
    t->step++;
    t->run_steps++;
    t->since_valid++;
    t->run_count += count;
    t->epoch_loss += loss * count;
    t->epoch_count += count;
    t->interval_loss += loss * count;
    t->interval_count += count;
    record_loss(t, loss, count);
    if (r == 1) {
        t->epoch++;
        t->epoch_start_step = t->step;
        t->last_loss = t->epoch_count > 0 ? t->epoch_loss / t->epoch_count : NAN;
        t->epoch_loss = t->epoch_count = 0;
    }
    return r;
}

/* Room for one more validation point. */
static int reserve_valid(nlp_train *t, nlp_error *e)
{
    if (t->nvalid < t->capvalid)
        return NLP_OK;
    size_t cap = t->capvalid ? 2 * t->capvalid : 64;
    double *a[3] = { t->vstep, t->vmetric, t->vtrain };
    for (int i = 0; i < 3; i++) {
        double *p = nlp_realloc(a[i], cap * sizeof *p);
        if (!p) {
            /* The arrays grown so far keep their contents: still valid. */
            t->vstep = a[0];
            t->vmetric = a[1];
            t->vtrain = a[2];
            return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
        }
        a[i] = p;
    }
    t->vstep = a[0];
    t->vmetric = a[1];
    t->vtrain = a[2];
    t->capvalid = cap;
    return NLP_OK;
}

/* The part of a validation point that runs on the weights validated (the
** average when averaging): evaluate, keep the best (or the latest) model,
** count validations without a new best, decay. */
static int evaluate_and_keep(nlp_train *t, double *metric, int *improved, int *decayed,
                             nlp_error *e)
{
    int rc = NLP_OK;
    if (t->task.evaluate) {
        blas_for_team(t, 0);
        if (is_root(t))
            rc = t->task.evaluate(t->task.ctx, metric, e);
        blas_for_team(t, 1);
        if (t->coll) {
            /* Process 0's metric (or failure) decides for all. */
            double v[2] = { (double)rc, *metric };
            int crc = t->coll->broadcast(t->coll->ctx, v, 2, e);
            if (crc != NLP_OK)
                return collective_failed(e, crc, "sharing the validation metric");
            if (!is_root(t) && v[0] < 0)
                return nlp_error_set(e, (int)v[0], NULL, 0, "validation failed on process 0");
            *metric = v[1];
        }
        if (rc < 0) {
            if (e && e->code == NLP_OK)
                nlp_error_set(e, rc, NULL, 0, "validation failed: %s", nlp_error_string(rc));
            return rc;
        }
        if (better(t, *metric)) {
            *improved = 1;
            t->best = *metric;
            t->best_step = t->step;
            t->bad = 0;
            t->plateau = 0;
            if ((rc = write_file(t, t->cfg.output, 0, e)) != NLP_OK)
                return rc;
        } else {
            t->bad++;
            t->plateau++;
            if (t->plateau >= t->cfg.lr_patience && t->cfg.lr_decay < 1.0) {
                double s = nlp_optim_lr_scale(t->opt), ns = s * t->cfg.lr_decay;
                double floor_scale = t->cfg.min_lr / t->cfg.optim.lr;
                if (ns < floor_scale)
                    ns = floor_scale;
                if (ns < s) {
                    nlp_optim_set_lr_scale(t->opt, ns);
                    *decayed = 1;
                }
                t->plateau = 0;
            }
        }
    } else if ((rc = write_file(t, t->cfg.output, 0, e)) != NLP_OK) {
        return rc; /* no validation data: the latest model is kept */
    }
    return NLP_OK;
}

/* A validation point: evaluate_and_keep, then report and plot. */
static int validate(nlp_train *t, int epoch_end, nlp_error *e)
{
    int rc = reserve_valid(t, e);
    if (rc != NLP_OK)
        return rc;
    double metric = NAN;
    int improved = 0, decayed = 0;
    double old_lr = nlp_optim_lr(t->opt);
    /* The averaged weights for validation and the best model; the raw ones
    ** back before the next step, on every way out. */
    const int swapped = average_in(t, 1);
    rc = evaluate_and_keep(t, &metric, &improved, &decayed, e);
    if (swapped)
        average_in(t, 0);
    if (rc != NLP_OK)
        return rc;
    double train = t->interval_count > 0 ? t->interval_loss / t->interval_count : NAN;
    t->vstep[t->nvalid] = (double)t->step;
    t->vmetric[t->nvalid] = metric;
    t->vtrain[t->nvalid] = train;
    t->nvalid++;

    /* "epoch 3 step 1200: train 1.2345, valid bpc 2.0512 (best), lr 0.002,
    ** 12.3k chars/s, 1m20s" */
    double now = elapsed_now(t), dt = now - t->valid_elapsed;
    char r[32], d[32], v[96] = "";
    if (t->task.evaluate)
        snprintf(v, sizeof v, ", valid %s %.4f%s", metric_of(t), metric,
                 improved ? " (best)" : "");
    nlp_progress_line(&t->prog, "epoch %ld step %ld: train %.4f%s, lr %.3g, %s %s/s, %s",
                      epoch_end ? t->epoch : t->epoch + 1, t->step, train, v,
                      (double)nlp_optim_lr(t->opt),
                      fmt_rate(dt > 0 ? t->interval_count / dt : NAN, r, sizeof r), unit_of(t),
                      nlp_progress_duration(now, d, sizeof d));
    if (t->cfg.verbosity > 0 && decayed)
        nlp_progress_line(&t->prog, "plateau: %ld validations without a new best; learning "
                          "rate %.3g -> %.3g", t->cfg.lr_patience, (double)old_lr,
                          (double)nlp_optim_lr(t->opt));
    if (t->cfg.verbosity > 0 && t->task.evaluate && t->cfg.patience > 0 &&
        t->bad >= t->cfg.patience)
        nlp_progress_line(&t->prog, "early stopping: %ld validations without a new best "
                          "(best %s %.4f at step %ld)", t->bad, metric_of(t), t->best,
                          t->best_step);
    t->interval_loss = t->interval_count = 0;
    t->since_valid = 0;
    t->valid_elapsed = now;
    return plot(t, e);
}

/* The reason the run ends now, or -1 to go on. */
static int limit(const nlp_train *t)
{
    if (t->cfg.epochs > 0 && t->epoch >= t->cfg.epochs)
        return NLP_TRAIN_EPOCHS;
    if (t->cfg.max_steps > 0 && t->step >= t->cfg.max_steps)
        return NLP_TRAIN_STEPS;
    if (t->coll ? t->vote_time
                : t->cfg.time_limit > 0 && elapsed_now(t) >= t->cfg.time_limit)
        return NLP_TRAIN_TIME;
    if (t->task.evaluate && t->cfg.patience > 0 && t->bad >= t->cfg.patience)
        return NLP_TRAIN_PATIENCE;
    return -1;
}

static void fill_result(const nlp_train *t, nlp_train_result *res, int reason)
{
    if (!res)
        return;
    res->reason = (nlp_train_stop)reason;
    res->epochs = t->epoch;
    res->steps = t->step;
    res->elapsed = elapsed_now(t);
    res->best_metric = t->best_step >= 0 ? t->best : NAN;
    res->best_step = t->best_step;
    if (!isnan(t->last_loss))
        res->last_loss = t->last_loss;
    else
        res->last_loss = t->epoch_count > 0 ? t->epoch_loss / t->epoch_count : NAN;
    res->lr = nlp_optim_lr(t->opt);
}

/*
** Several processes: the decisions of this iteration that a clock or a
** signal makes, agreed by all (one sum of three votes): a stop request
** anywhere stops everyone; the time limit and the periodic checkpoint
** follow process 0's clock.
*/
static int vote(nlp_train *t, nlp_error *e)
{
    const int root = is_root(t);
    double v[3] = {
        t->cfg.stop && *t->cfg.stop ? 1.0 : 0.0,
        root && t->cfg.time_limit > 0 && elapsed_now(t) >= t->cfg.time_limit ? 1.0 : 0.0,
        root && t->cfg.checkpoint_every > 0 &&
                clock_now(t) - t->last_ckpt >= t->cfg.checkpoint_every ? 1.0 : 0.0
    };
    int rc = t->coll->sum_double(t->coll->ctx, v, 3, e);
    if (rc != NLP_OK)
        return collective_failed(e, rc, "agreeing on stopping");
    t->vote_stop = v[0] > 0;
    t->vote_time = v[1] > 0;
    t->vote_ckpt = v[2] > 0;
    return NLP_OK;
}

/*
** Several processes: every one must start from process 0's parameters
** (the same corpus, options, seed or checkpoint); else every process fails
** with the first rank that differs.
*/
static int same_start(nlp_train *t, nlp_error *e)
{
    const nlp_params *p = t->task.params;
    const double n = (double)p->n, crc = (double)nlp_crc32(0, p->data, p->n * sizeof *p->data);
    double root[2] = { n, crc };
    int rc = t->coll->broadcast(t->coll->ctx, root, 2, e);
    const int differs = root[0] != n || root[1] != crc;
    const int size = t->coll->size;
    double *votes = NULL; /* one per rank, to name the first that differs */
    if (rc == NLP_OK) {
        votes = nlp_calloc((size_t)size, sizeof *votes);
        if (!votes)
            return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
        votes[t->coll->rank] = differs;
        rc = t->coll->sum_double(t->coll->ctx, votes, (size_t)size, e);
    }
    if (rc != NLP_OK) {
        nlp_free(votes);
        return collective_failed(e, rc, "comparing the starting parameters");
    }
    int first = -1, count = 0;
    for (int r = 0; r < size; r++)
        if (votes[r] > 0) {
            if (first < 0)
                first = r;
            count++;
        }
    nlp_free(votes);
    if (first >= 0)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "rank %d starts from other parameters than rank 0 (%d rank%s "
                             "differ): every rank needs the same binary, corpus, options, "
                             "seed and checkpoint", first, count, count == 1 ? "" : "s");
    return NLP_OK;
}

int nlp_train_run(nlp_train *t, nlp_train_result *res, nlp_error *e)
{
    if (!t)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "nlp_train_run: no run");
    nlp_error_clear(e);
    nlp_progress_init(&t->prog, t->cfg.verbosity < 0 || !is_root(t) ? NULL : t->cfg.log,
                      t->cfg.live);
    t->running = 1;
    blas_for_team(t, 1);
    t->run_start = t->last_ckpt = clock_now(t);
    t->run_steps = 0;
    t->run_count = 0;
    t->run_pos0 = (double)t->epoch + epoch_fraction(t);
    average_start(t);
    int rc = NLP_OK, reason = -1;
    char line[256], d[32];
    if (t->coll && (rc = same_start(t, e)) != NLP_OK)
        goto out;
    for (;;) {
        if (t->coll && (rc = vote(t, e)) != NLP_OK)
            goto out;
        if ((reason = limit(t)) >= 0)
            break;
        if (t->coll ? t->vote_stop : t->cfg.stop && *t->cfg.stop) {
            if ((rc = nlp_train_checkpoint(t, e)) != NLP_OK)
                goto out;
            reason = NLP_TRAIN_REQUESTED;
            nlp_progress_line(&t->prog, "stop requested at epoch %ld step %ld: checkpoint "
                              "written to %s", t->epoch + 1, t->step, t->ckpt_path);
            goto out;
        }
        if (t->coll ? t->vote_ckpt
                    : t->cfg.checkpoint_every > 0 &&
                      clock_now(t) - t->last_ckpt >= t->cfg.checkpoint_every) {
            if ((rc = nlp_train_checkpoint(t, e)) != NLP_OK)
                goto out;
            t->last_ckpt = clock_now(t);
        }
        int r = do_step(t, e);
        if (r < 0) {
            rc = r;
            goto out;
        }
        int due = t->cfg.valid_every > 0 ? t->since_valid >= t->cfg.valid_every : r == 1;
        if (due) {
            if ((rc = validate(t, r == 1, e)) != NLP_OK)
                goto out;
        } else if (t->prog.out) {
            if (t->cfg.verbosity > 0 && t->cfg.log_every > 0 && t->step % t->cfg.log_every == 0) {
                status_text(t, line, sizeof line);
                nlp_progress_line(&t->prog, "%s", line);
            } else if (t->prog.live) {
                status_text(t, line, sizeof line);
                nlp_progress_update(&t->prog, "%s", line);
            }
        }
    }
    /* A limit or early stopping: measure the weights we stopped with, keep
    ** the latest model when there is no validation, final plot and
    ** checkpoint. */
    if (t->since_valid > 0 || t->nvalid == 0) {
        if ((rc = validate(t, t->step == t->epoch_start_step, e)))
            goto out;
    } else {
        if (!t->task.evaluate && (rc = write_file(t, t->cfg.output, 0, e)) != NLP_OK)
            goto out;
        if ((rc = plot(t, e)) != NLP_OK)
            goto out;
    }
    if (t->cfg.checkpoint_every > 0 && (rc = nlp_train_checkpoint(t, e)) != NLP_OK)
        goto out;
    if (t->task.evaluate && t->best_step >= 0)
        nlp_progress_line(&t->prog, "done (%s): epoch %ld, step %ld; best valid %s %.4f at "
                          "step %ld; training time %s", nlp_train_stop_name(reason), t->epoch,
                          t->step, metric_of(t), t->best, t->best_step,
                          nlp_progress_duration(elapsed_now(t), d, sizeof d));
    else
        nlp_progress_line(&t->prog, "done (%s): epoch %ld, step %ld; training time %s",
                          nlp_train_stop_name(reason), t->epoch, t->step,
                          nlp_progress_duration(elapsed_now(t), d, sizeof d));
out:
    nlp_progress_finish(&t->prog);
    fill_result(t, res, reason < 0 ? NLP_TRAIN_STEPS : reason);
    t->elapsed = elapsed_now(t);
    t->running = 0;
    blas_for_team(t, 0);
    return rc;
}

/* ==== Rng helpers ======================================================== */

void nlp_train_share(int i, int W, int n, int *first, int *count)
{
    *first = (int)((long long)i * n / W);
    *count = (int)((long long)(i + 1) * n / W) - *first;
}

void nlp_train_share_rng(nlp_rng *worker, const nlp_rng *run, int i)
{
    nlp_rng r = *run;
    uint64_t seed = 0;
    for (int k = 0; k <= i; k++)
        seed = nlp_rng_u64(&r);
    nlp_rng_seed(worker, seed);
}

void nlp_train_share_rng_end(nlp_rng *run, int W)
{
    for (int k = 0; k < W; k++)
        (void)nlp_rng_u64(run);
}

int nlp_train_add_rng(nlp_model *file, const char *name, const nlp_rng *r)
{
    if (!file || !name || !r)
        return NLP_EINVAL;
    char buf[RNG_HEX + 1];
    snprintf(buf, sizeof buf, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, r->s[0],
             r->s[1], r->s[2], r->s[3]);
    return nlp_model_set_meta(file, name, buf);
}

int nlp_train_read_rng(const nlp_model *file, const char *name, nlp_rng *r, nlp_error *e)
{
    const char *s = nlp_model_meta(file, name);
    if (!s)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint has no '%s' setting", name);
    uint64_t v[4] = { 0, 0, 0, 0 };
    int ok = strlen(s) == RNG_HEX;
    for (int i = 0; ok && i < RNG_HEX; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            ok = 0;
        else
            v[i / 16] = v[i / 16] << 4 | (uint64_t)d;
    }
    if (ok && !(v[0] | v[1] | v[2] | v[3]))
        ok = 0; /* xoshiro's one forbidden state */
    if (!ok)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "checkpoint setting '%s' is not a random-number generator state "
                             "(64 hex digits, not all zero)", name);
    memcpy(r->s, v, sizeof v);
    return NLP_OK;
}
