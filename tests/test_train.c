/*
** Unit tests for train, the shared training loop.  The focus of this file
** is that the harness takes its decisions at exactly the right steps, with
** a small deterministic task written here: linear regression over an
** nlp_params buffer, batches drawn by the task's own rng (so checkpoints
** must carry it), a validation metric that is either the real validation
** error (plus an optional scripted bump) or a scripted sequence, and a
** fake clock advanced by each step.
**
** Checked: step, epoch and time limits stop where they should; early
** stopping after `patience` validations; plateau decay of the learning
** rate with its floor; the best model on disk holds the best validation
** weights; with no validation the latest model is kept; stop + checkpoint
** + resume in a fresh nlp_train gives bit-identical weights, optimiser
** moments, model file and plot for several stop steps; divergence returns
** NLP_ERANGE and leaves the model file alone; corrupted checkpoint values
** are refused naming the key; every allocation failure unwinds with
** NLP_ENOMEM (leaks show in the ASan build); progress lines.  Weight
** averaging: the average equals a hand computation from the weights each
** step saw; evaluate and the model file get the average while every step
** gets the raw weights (the same trajectory as a run without averaging);
** resuming with averaging on is bit-identical; a checkpoint without an
** average resumed with one starts it from the weights resumed.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nlp.h"
#include "nlp/train.h"

enum {
    D = 3,          /* inputs */
    NTRAIN = 40,
    NVALID = 16,
    BATCH = 4,
    SPE = 10,       /* steps per epoch */
    MAXEVAL = 64
};

static char tmpdir[64];
static char out_path[160], ckpt_path[160], plot_path[160];

/* ==== The task =========================================================== */

typedef struct task_ctx {
    nlp_params *p;
    float x[NTRAIN][D], y[NTRAIN];
    float vx[NVALID][D], vy[NVALID];
    /* State between steps (saved by save_state). */
    nlp_rng rng;             /* draws each batch */
    long pos;                /* steps into the epoch */
    long calls;              /* evaluate calls so far */
    /* Scripting. */
    const double *script;    /* evaluate returns script[calls] when set */
    int nscript;
    const double *bump;      /* else the validation error + bump[calls % 4] */
    long stop_at;            /* set *stop during this step (1-based count) */
    volatile sig_atomic_t *stop;
    long nan_loss_at, nan_grad_at;
    double now, step_seconds; /* the fake clock */
    int no_fraction;
    /* Records. */
    long steps;              /* step calls */
    float snap[MAXEVAL][64]; /* params at each evaluate call */
    float stepsnap[MAXEVAL][64]; /* params at the start of step i (1-based) */
    double lr[MAXEVAL];      /* learning rate at each evaluate call */
    long ckpt_seen[64];      /* train.step of the checkpoint file before step i */
    int watch_ckpt;
    nlp_train *t;
    unsigned char *file_before; /* output file bytes at the diverging step */
    size_t file_before_n;
    float params_before[64];
} task_ctx;

static size_t NP; /* floats in the params buffer */

static void make_data(task_ctx *c)
{
    nlp_rng r;
    nlp_rng_seed(&r, 7);
    const float w[D] = { 1.5f, -2.0f, 0.5f }, b = 0.3f;
    for (int i = 0; i < NTRAIN + NVALID; i++) {
        float *x = i < NTRAIN ? c->x[i] : c->vx[i - NTRAIN];
        float y = b;
        for (int j = 0; j < D; j++) {
            x[j] = (float)nlp_rng_normal(&r);
            y += w[j] * x[j];
        }
        y += 0.1f * (float)nlp_rng_normal(&r);
        if (i < NTRAIN)
            c->y[i] = y;
        else
            c->vy[i - NTRAIN] = y;
    }
}

/* A fresh task with parameters from seed (w random, b 0). */
static task_ctx *task_new(uint64_t seed)
{
    task_ctx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_int_equal(nlp_params_new(&c->p), NLP_OK);
    assert_true(nlp_params_add(c->p, "w", 1, (int[]){ D }) >= 0);
    assert_true(nlp_params_add(c->p, "b", 1, (int[]){ 1 }) >= 0);
    assert_int_equal(nlp_params_alloc(c->p), NLP_OK);
    NP = c->p->n;
    assert_true(NP <= 64);
    nlp_rng r;
    nlp_rng_seed(&r, seed);
    for (int j = 0; j < D; j++)
        nlp_params_data(c->p, 0)[j] = (float)(0.1 * nlp_rng_normal(&r));
    nlp_rng_seed(&c->rng, seed + 100);
    make_data(c);
    return c;
}

static void task_free(task_ctx *c)
{
    nlp_params_free(c->p);
    free(c->file_before);
    free(c);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

static int task_step(void *ctx, double *loss, double *count, nlp_error *e)
{
    task_ctx *c = ctx;
    c->steps++;
    c->now += c->step_seconds;
    if (c->steps < MAXEVAL)
        memcpy(c->stepsnap[c->steps], c->p->data, NP * sizeof(float));
    if (c->watch_ckpt && c->steps < 64) {
        nlp_model *m;
        long s = -1;
        if (nlp_model_load(&m, ckpt_path, "linreg", NULL) == NLP_OK) {
            nlp_model_meta_long(m, "train.step", &s, NULL);
            nlp_model_free(m);
        }
        c->ckpt_seen[c->steps] = s;
    }
    if (c->steps == c->nan_loss_at || c->steps == c->nan_grad_at) {
        memcpy(c->params_before, c->p->data, NP * sizeof(float));
        free(c->file_before);
        c->file_before = slurp(out_path, &c->file_before_n);
    }
    float *w = nlp_params_data(c->p, 0), *b = nlp_params_data(c->p, 1);
    float *gw = nlp_params_grad(c->p, 0), *gb = nlp_params_grad(c->p, 1);
    double sum = 0;
    for (int k = 0; k < BATCH; k++) {
        int i = (int)nlp_rng_below(&c->rng, NTRAIN);
        float pred = b[0];
        for (int j = 0; j < D; j++)
            pred += w[j] * c->x[i][j];
        float d = pred - c->y[i];
        sum += 0.5 * (double)d * d;
        for (int j = 0; j < D; j++)
            gw[j] += d * c->x[i][j] / BATCH;
        gb[0] += d / BATCH;
    }
    *loss = sum / BATCH;
    *count = BATCH;
    if (c->steps == c->nan_loss_at)
        *loss = NAN;
    if (c->steps == c->nan_grad_at)
        gw[1] = NAN;
    if (c->stop && c->steps == c->stop_at)
        *c->stop = 1;
    (void)e;
    if (++c->pos == SPE) {
        c->pos = 0;
        return 1;
    }
    return 0;
}

static double valid_mse(const task_ctx *c)
{
    const float *w = nlp_params_data(c->p, 0), *b = nlp_params_data(c->p, 1);
    double s = 0;
    for (int i = 0; i < NVALID; i++) {
        double pred = b[0];
        for (int j = 0; j < D; j++)
            pred += (double)w[j] * c->vx[i][j];
        s += (pred - c->vy[i]) * (pred - c->vy[i]);
    }
    return s / NVALID;
}

static int task_eval(void *ctx, double *metric, nlp_error *e)
{
    task_ctx *c = ctx;
    if (c->calls < MAXEVAL) {
        memcpy(c->snap[c->calls], c->p->data, NP * sizeof(float));
        c->lr[c->calls] = c->t ? nlp_optim_lr(nlp_train_optim(c->t)) : NAN;
    }
    if (c->script) {
        if (c->calls >= c->nscript)
            return nlp_error_set(e, NLP_EINVAL, NULL, 0, "script exhausted");
        *metric = c->script[c->calls];
    } else {
        *metric = valid_mse(c) + (c->bump ? c->bump[c->calls % 4] : 0.0);
    }
    c->calls++;
    return NLP_OK;
}

static double task_fraction(void *ctx)
{
    const task_ctx *c = ctx;
    return (double)c->pos / SPE;
}

static int task_save_model(void *ctx, nlp_model *m, nlp_error *e)
{
    (void)ctx;
    int rc = nlp_model_set_meta_long(m, "linreg.inputs", D);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "linreg: %s", nlp_error_string(rc));
    return NLP_OK;
}

static int task_save_state(void *ctx, nlp_model *m, nlp_error *e)
{
    const task_ctx *c = ctx;
    int rc = nlp_model_set_meta_long(m, "linreg.pos", c->pos);
    if (rc == NLP_OK)
        rc = nlp_model_set_meta_long(m, "linreg.calls", c->calls);
    if (rc == NLP_OK)
        rc = nlp_train_add_rng(m, "linreg.rng", &c->rng);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "linreg state: %s", nlp_error_string(rc));
    return NLP_OK;
}

static int task_load_state(void *ctx, const nlp_model *m, nlp_error *e)
{
    task_ctx *c = ctx;
    long pos, calls;
    int rc;
    if ((rc = nlp_model_meta_long(m, "linreg.pos", &pos, e)) ||
        (rc = nlp_model_meta_long(m, "linreg.calls", &calls, e)))
        return rc;
    if (pos < 0 || pos >= SPE || calls < 0)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "linreg state out of range");
    if ((rc = nlp_train_read_rng(m, "linreg.rng", &c->rng, e)))
        return rc;
    c->pos = pos;
    c->calls = calls;
    return NLP_OK;
}

static double fake_clock(void *ctx)
{
    return ((task_ctx *)ctx)->now;
}

static nlp_train_task make_task(task_ctx *c, int with_eval)
{
    nlp_train_task k;
    memset(&k, 0, sizeof k);
    k.ctx = c;
    k.kind = "linreg";
    k.metric = "mse";
    k.unit = "samples";
    k.params = c->p;
    k.step = task_step;
    k.evaluate = with_eval ? task_eval : NULL;
    k.epoch_fraction = c->no_fraction ? NULL : task_fraction;
    k.save_model = task_save_model;
    k.save_state = task_save_state;
    k.load_state = task_load_state;
    return k;
}

static nlp_train_config make_config(task_ctx *c)
{
    nlp_train_config cfg;
    nlp_train_config_default(&cfg);
    cfg.epochs = 0;
    cfg.lr_decay = 1;
    cfg.clip = 1.0;
    cfg.optim.lr = 0.05;
    cfg.output = out_path;
    cfg.checkpoint = ckpt_path;
    cfg.log = NULL;
    cfg.live = 0;
    cfg.clock = fake_clock;
    cfg.clock_ctx = c;
    c->step_seconds = 1.0;
    return cfg;
}

/* Runs task c under cfg in a new nlp_train; returns the run's code. */
static int run(task_ctx *c, const nlp_train_config *cfg, int with_eval, nlp_train_result *res,
               nlp_error *e)
{
    nlp_train_task k = make_task(c, with_eval);
    nlp_train *t;
    int rc = nlp_train_new(&t, cfg, &k, e);
    assert_int_equal(rc, NLP_OK);
    c->t = t;
    rc = nlp_train_run(t, res, e);
    c->t = NULL;
    nlp_train_free(t);
    return rc;
}

static void load_params(const char *path, float *dst)
{
    nlp_model *m;
    nlp_error e;
    if (nlp_model_load(&m, path, "linreg", &e) != NLP_OK)
        fail_msg("%s: %s", path, e.text);
    task_ctx *c = task_new(99);
    assert_int_equal(nlp_model_read_params(m, c->p, &e), NLP_OK);
    memcpy(dst, c->p->data, NP * sizeof(float));
    task_free(c);
    nlp_model_free(m);
}

/* ==== Limits ============================================================= */

static void test_step_and_epoch_limits(void **state)
{
    (void)state;
    nlp_train_result res;
    nlp_error e;

    task_ctx *c = task_new(1);
    nlp_train_config cfg = make_config(c);
    cfg.max_steps = 37;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    assert_int_equal(res.reason, NLP_TRAIN_STEPS);
    assert_int_equal(res.steps, 37);
    assert_int_equal(c->steps, 37);
    assert_int_equal(res.epochs, 3);
    assert_int_equal(c->calls, 4); /* three epochs, then the stopped weights */
    assert_true(res.elapsed == 37.0);
    assert_true(isfinite(res.last_loss) && res.last_loss > 0);
    assert_true(res.best_step >= 10 && res.best_step <= 37);
    task_free(c);

    c = task_new(1);
    cfg = make_config(c);
    cfg.epochs = 3;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    assert_int_equal(res.reason, NLP_TRAIN_EPOCHS);
    assert_int_equal(res.steps, 30);
    assert_int_equal(res.epochs, 3);
    assert_int_equal(c->calls, 3);
    task_free(c);

    /* Every valid_every steps, not at epoch ends; and the end. */
    c = task_new(1);
    cfg = make_config(c);
    cfg.max_steps = 30;
    cfg.valid_every = 7;
    cfg.epochs = 5;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    assert_int_equal(res.reason, NLP_TRAIN_STEPS);
    assert_int_equal(c->calls, 5);
    task_free(c);

    /* The epoch limit wins when both end at the same step. */
    c = task_new(1);
    cfg = make_config(c);
    cfg.max_steps = 20;
    cfg.epochs = 2;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    assert_int_equal(res.reason, NLP_TRAIN_EPOCHS);
    assert_int_equal(res.steps, 20);
    task_free(c);
}

static void test_time_limit(void **state)
{
    (void)state;
    nlp_train_result res;
    nlp_error e;
    task_ctx *c = task_new(2);
    nlp_train_config cfg = make_config(c);
    cfg.time_limit = 10.5;
    cfg.checkpoint_every = 3;
    c->watch_ckpt = 1;
    unlink(ckpt_path);
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    assert_int_equal(res.reason, NLP_TRAIN_TIME);
    assert_int_equal(res.steps, 11); /* 11 s >= 10.5 s */
    assert_true(res.elapsed == 11.0);
    /* Checkpoints every 3 (fake) seconds, seen by the following steps. */
    for (int i = 1; i <= 11; i++) {
        long want = i <= 3 ? -1 : (i - 1) / 3 * 3;
        if (c->ckpt_seen[i] != want)
            fail_msg("before step %d the checkpoint was at step %ld, expected %ld", i,
                     c->ckpt_seen[i], want);
    }
    /* And one at the end. */
    nlp_model *m;
    long s;
    assert_int_equal(nlp_model_load(&m, ckpt_path, "linreg", &e), NLP_OK);
    assert_int_equal(nlp_model_meta_long(m, "train.step", &s, &e), NLP_OK);
    assert_int_equal(s, 11);
    nlp_model_free(m);
    task_free(c);

    /* Counted over a resume: 4 s, stop, then 7 more. */
    volatile sig_atomic_t stop = 0;
    c = task_new(2);
    cfg = make_config(c);
    cfg.time_limit = 10.5;
    cfg.stop = &stop;
    c->stop = &stop;
    c->stop_at = 4;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    assert_int_equal(res.reason, NLP_TRAIN_REQUESTED);
    assert_int_equal(res.steps, 4);
    assert_true(res.elapsed == 4.0);
    task_free(c);

    assert_int_equal(nlp_model_load(&m, ckpt_path, "linreg", &e), NLP_OK);
    c = task_new(50);
    c->now = 1000; /* another clock origin */
    assert_int_equal(nlp_model_read_params(m, c->p, &e), NLP_OK);
    stop = 0;
    cfg = make_config(c);
    assert_int_equal(nlp_train_config_read(&cfg, m, &e), NLP_OK);
    assert_true(cfg.time_limit == 10.5);
    nlp_train_task k = make_task(c, 1);
    nlp_train *t;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_OK);
    assert_int_equal(nlp_train_resume(t, m, &e), NLP_OK);
    nlp_model_free(m);
    assert_int_equal(nlp_train_run(t, &res, &e), NLP_OK);
    assert_int_equal(res.reason, NLP_TRAIN_TIME);
    assert_int_equal(res.steps, 11);
    assert_int_equal(c->steps, 7);
    assert_true(res.elapsed == 11.0);
    nlp_train_free(t);
    task_free(c);
}

/* ==== Early stopping, plateau decay, best model ========================== */

static void test_patience_and_best_model(void **state)
{
    (void)state;
    static const double script[] = { 5, 4, 3, 3.5, 3.2, 3.1, 9, 9, 9 };
    nlp_train_result res;
    nlp_error e;
    task_ctx *c = task_new(3);
    c->script = script;
    c->nscript = 9;
    nlp_train_config cfg = make_config(c);
    cfg.patience = 3;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    assert_int_equal(res.reason, NLP_TRAIN_PATIENCE);
    assert_int_equal(c->calls, 6);
    assert_int_equal(res.steps, 60);
    assert_true(res.best_metric == 3.0);
    assert_int_equal(res.best_step, 30);

    /* The model on disk holds the weights of the third validation, and
    ** says so. */
    float disk[64];
    load_params(out_path, disk);
    assert_memory_equal(disk, c->snap[2], NP * sizeof(float));
    assert_memory_not_equal(disk, c->snap[5], NP * sizeof(float));
    nlp_model *m;
    double best;
    long step;
    assert_int_equal(nlp_model_load(&m, out_path, "linreg", &e), NLP_OK);
    assert_int_equal(nlp_model_meta_double(m, "train.best_metric", &best, &e), NLP_OK);
    assert_int_equal(nlp_model_meta_long(m, "train.best_step", &step, &e), NLP_OK);
    assert_true(best == 3.0);
    assert_int_equal(step, 30);
    assert_string_equal(nlp_model_meta(m, "linreg.inputs"), "3");
    assert_string_equal(nlp_model_meta(m, "train.metric"), "mse");
    assert_null(nlp_model_meta(m, "train.checkpoint")); /* a model, not a checkpoint */
    nlp_model_free(m);
    task_free(c);

    /* Higher is better: the same with the order reversed. */
    static const double acc[] = { 0.1, 0.5, 0.4, 0.6, 0.55, 0.59, 0.6, 0.7 };
    c = task_new(3);
    c->script = acc;
    c->nscript = 8;
    cfg = make_config(c);
    cfg.patience = 3;
    nlp_train_task k = make_task(c, 1);
    k.higher_is_better = 1;
    nlp_train *t;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_OK);
    assert_int_equal(nlp_train_run(t, &res, &e), NLP_OK);
    nlp_train_free(t);
    assert_int_equal(res.reason, NLP_TRAIN_PATIENCE);
    assert_int_equal(c->calls, 7); /* 0.6 at the 4th; 0.55, 0.59, 0.6 are no better */
    assert_true(res.best_metric == 0.6);
    assert_int_equal(res.best_step, 40);
    load_params(out_path, disk);
    assert_memory_equal(disk, c->snap[3], NP * sizeof(float));
    task_free(c);

    /* Patience 0: never stops early. */
    c = task_new(3);
    c->script = script;
    c->nscript = 9;
    cfg = make_config(c);
    cfg.epochs = 9;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    assert_int_equal(res.reason, NLP_TRAIN_EPOCHS);
    assert_int_equal(c->calls, 9);
    task_free(c);
}

static void test_plateau_decay(void **state)
{
    (void)state;
    static const double script[] = { 5, 6, 7, 8, 9, 4, 6, 7, 8, 9, 10, 11 };
    nlp_train_result res;
    nlp_error e;
    task_ctx *c = task_new(4);
    c->script = script;
    c->nscript = 12;
    nlp_train_config cfg = make_config(c);
    nlp_optim_config_default(&cfg.optim, NLP_OPTIM_SGD);
    cfg.optim.lr = 0.1;
    cfg.epochs = 12;
    cfg.lr_decay = 0.5;
    cfg.lr_patience = 2;
    cfg.min_lr = 0.03;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    assert_int_equal(c->calls, 12);
    /* The rate in force at each validation (before its own decision):
    ** two without a new best halve it, the floor stops it at 0.03, a new
    ** best resets the count. */
    const double want[12] = { 0.1, 0.1, 0.1, 0.05, 0.05, 0.03, 0.03, 0.03, 0.03, 0.03, 0.03,
                              0.03 };
    for (int i = 0; i < 12; i++) {
        if (fabs(c->lr[i] - want[i]) > 1e-7 * want[i])
            fail_msg("validation %d: lr %.9g, expected %g", i, c->lr[i], want[i]);
        assert_true(c->lr[i] >= (double)(float)cfg.min_lr * (1 - 1e-7));
    }
    assert_true(c->lr[1] == 0.1f && c->lr[3] == 0.05f); /* exact halving */
    assert_true(fabs(res.lr - 0.03) < 1e-8);
    task_free(c);

    /* lr_decay 1: the rate never changes. */
    c = task_new(4);
    c->script = script;
    c->nscript = 12;
    cfg.lr_decay = 1;
    cfg.clock_ctx = c;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    for (int i = 0; i < 12; i++)
        assert_true(c->lr[i] == 0.1f);
    task_free(c);

    /* The schedule still applies underneath the scale. */
    c = task_new(4);
    c->script = script;
    c->nscript = 12;
    cfg.clock_ctx = c;
    cfg.lr_decay = 0.5;
    cfg.min_lr = 0;
    cfg.optim.schedule = NLP_LR_STEP;
    cfg.optim.gamma = 0.5;
    cfg.optim.step_size = 50;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    assert_true(c->lr[3] == 0.05f);             /* step 30: scale 0.5 */
    assert_true(c->lr[5] == (float)(0.05 * 0.25)); /* step 50: schedule 0.5, scale 0.25 */
    task_free(c);
}

static void test_no_validation(void **state)
{
    (void)state;
    /* Without evaluate the latest model is written at each epoch end and at
    ** the end, and patience does nothing. */
    nlp_train_result res;
    nlp_error e;
    task_ctx *c = task_new(5);
    nlp_train_config cfg = make_config(c);
    cfg.max_steps = 25;
    cfg.patience = 1;
    cfg.lr_decay = 0.5;
    cfg.lr_patience = 1;
    unlink(out_path);
    c->nan_loss_at = -1;
    assert_int_equal(run(c, &cfg, 0, &res, &e), NLP_OK);
    assert_int_equal(res.reason, NLP_TRAIN_STEPS);
    assert_int_equal(res.steps, 25);
    assert_true(isnan(res.best_metric));
    assert_int_equal(res.best_step, -1);
    float disk[64];
    load_params(out_path, disk);
    assert_memory_equal(disk, c->p->data, NP * sizeof(float));
    assert_true(res.lr == 0.05f);
    nlp_model *m;
    long best_step, step;
    assert_int_equal(nlp_model_load(&m, out_path, "linreg", &e), NLP_OK);
    assert_null(nlp_model_meta(m, "train.best_metric"));
    assert_int_equal(nlp_model_meta_long(m, "train.best_step", &best_step, &e), NLP_OK);
    assert_int_equal(nlp_model_meta_long(m, "train.step", &step, &e), NLP_OK);
    assert_int_equal(best_step, -1);
    assert_int_equal(step, 25);
    nlp_model_free(m);
    task_free(c);

    /* Mid-run: the file holds the weights of the last epoch end. */
    c = task_new(5);
    cfg = make_config(c);
    cfg.max_steps = 15;
    c->nan_loss_at = 14; /* stops the run at step 14 and keeps the file */
    assert_int_equal(run(c, &cfg, 0, &res, &e), NLP_ERANGE);
    load_params(out_path, disk);
    /* Step 14 saw the weights after 13 updates; the file has those after 10. */
    assert_memory_not_equal(disk, c->params_before, NP * sizeof(float));
    task_free(c);
    c = task_new(5);
    cfg = make_config(c);
    cfg.max_steps = 10;
    assert_int_equal(run(c, &cfg, 0, &res, &e), NLP_OK);
    float ten[64];
    memcpy(ten, c->p->data, NP * sizeof(float));
    task_free(c);
    assert_memory_equal(disk, ten, NP * sizeof(float));
}

/* ==== Checkpoint and resume ============================================== */

typedef struct outcome {
    nlp_train_result res;
    float params[64];
    float m[64], v[64];
    long calls;
    unsigned char *model, *plot;
    size_t model_n, plot_n;
    char *log;               /* progress lines of the run(s) */
    size_t log_n;
} outcome;

static void outcome_free(outcome *o)
{
    free(o->model);
    free(o->plot);
    free(o->log);
}

/* Drops the line starting with prefix from s (in place). */
static void drop_line(char *s, const char *prefix)
{
    char *p = strstr(s, prefix);
    if (!p || (p != s && p[-1] != '\n'))
        fail_msg("no line '%s' in:\n%s", prefix, s);
    char *end = strchr(p, '\n');
    memmove(p, end ? end + 1 : p + strlen(p), strlen(end ? end + 1 : p + strlen(p)) + 1);
}

static void capture(outcome *o, const nlp_train *t, const task_ctx *c, const nlp_train_result *r)
{
    o->res = *r;
    memcpy(o->params, c->p->data, NP * sizeof(float));
    const nlp_optim *opt = nlp_train_optim(t);
    memcpy(o->m, nlp_optim_m(opt), NP * sizeof(float));
    memcpy(o->v, nlp_optim_v(opt), NP * sizeof(float));
    o->calls = c->calls;
    o->model = slurp(out_path, &o->model_n);
    o->plot = slurp(plot_path, &o->plot_n);
    assert_non_null(o->model);
    assert_non_null(o->plot);
}

static const double bumps[4] = { 0, 100, 100, 100 };

/* One configuration of the resume test: cfg as built by setup(). */
typedef void (*setup_fn)(nlp_train_config *cfg);

static void setup_epochs(nlp_train_config *cfg)
{
    cfg->epochs = 6;
    cfg->lr_decay = 0.7;
    cfg->lr_patience = 1;
    cfg->min_lr = 0.01;
    cfg->plot = plot_path;
}

static void setup_valid_every(nlp_train_config *cfg)
{
    cfg->max_steps = 45;
    cfg->valid_every = 7;
    cfg->patience = 3;
    cfg->lr_decay = 0.5;
    cfg->lr_patience = 2;
    cfg->plot = plot_path;
    nlp_optim_config_default(&cfg->optim, NLP_OPTIM_RMSPROP);
    cfg->optim.momentum = 0.5;
    cfg->optim.lr = 0.01;
}

static void uninterrupted(setup_fn setup, outcome *o)
{
    task_ctx *c = task_new(11);
    c->bump = bumps;
    nlp_train_config cfg = make_config(c);
    setup(&cfg);
    FILE *log = open_memstream(&o->log, &o->log_n);
    cfg.log = log;
    nlp_train_task k = make_task(c, 1);
    nlp_train *t;
    nlp_error e;
    nlp_train_result r;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_OK);
    c->t = t;
    assert_int_equal(nlp_train_run(t, &r, &e), NLP_OK);
    fclose(log);
    capture(o, t, c, &r);
    nlp_train_free(t);
    task_free(c);
}

/* Stops at step k (*stop set inside the step), resumes in a fresh run. */
static void interrupted(setup_fn setup, long k, outcome *o)
{
    volatile sig_atomic_t stop = 0;
    nlp_error e;
    nlp_train_result r;
    task_ctx *c = task_new(11);
    c->bump = bumps;
    c->stop = &stop;
    c->stop_at = k;
    nlp_train_config cfg = make_config(c);
    setup(&cfg);
    cfg.stop = &stop;
    /* Both runs log to one stream: the lines must be the uninterrupted
    ** run's, plus the one about the stop. */
    FILE *log = open_memstream(&o->log, &o->log_n);
    cfg.log = log;
    unlink(ckpt_path);
    assert_int_equal(run(c, &cfg, 1, &r, &e), NLP_OK);
    if (r.reason != NLP_TRAIN_REQUESTED || r.steps != k)
        fail_msg("stop at %ld did not land: reason %d, %ld steps", k, r.reason, r.steps);
    task_free(c);

    /* A fresh process, as far as the run can tell: other initial weights,
    ** another rng, the configuration from the checkpoint. */
    nlp_model *m;
    if (nlp_model_load(&m, ckpt_path, "linreg", &e) != NLP_OK)
        fail_msg("%s", e.text);
    c = task_new(12345);
    c->bump = bumps;
    c->now = 77;
    assert_int_equal(nlp_model_read_params(m, c->p, &e), NLP_OK);
    nlp_train_config_default(&cfg);
    cfg.output = out_path;
    cfg.checkpoint = ckpt_path;
    cfg.plot = plot_path;
    cfg.log = log;
    cfg.live = 0;
    cfg.clock = fake_clock;
    cfg.clock_ctx = c;
    c->step_seconds = 1.0;
    if (nlp_train_config_read(&cfg, m, &e) != NLP_OK)
        fail_msg("%s", e.text);
    nlp_train_task task = make_task(c, 1);
    nlp_train *t;
    assert_int_equal(nlp_train_new(&t, &cfg, &task, &e), NLP_OK);
    if (nlp_train_resume(t, m, &e) != NLP_OK)
        fail_msg("resume: %s", e.text);
    nlp_model_free(m);
    c->t = t;
    assert_int_equal(nlp_train_run(t, &r, &e), NLP_OK);
    fclose(log);
    drop_line(o->log, "stop requested at ");
    capture(o, t, c, &r);
    nlp_train_free(t);
    task_free(c);
}

static void compare(const outcome *a, const outcome *b, long k)
{
    if (memcmp(a->params, b->params, NP * sizeof(float)) != 0)
        fail_msg("stop at %ld: parameters differ after resuming", k);
    assert_memory_equal(a->m, b->m, NP * sizeof(float));
    assert_memory_equal(a->v, b->v, NP * sizeof(float));
    assert_int_equal(a->res.reason, b->res.reason);
    assert_int_equal(a->res.steps, b->res.steps);
    assert_int_equal(a->res.epochs, b->res.epochs);
    assert_int_equal(a->res.best_step, b->res.best_step);
    assert_true(a->res.best_metric == b->res.best_metric);
    assert_true(a->res.elapsed == b->res.elapsed);
    assert_true(a->res.lr == b->res.lr);
    assert_true(a->res.last_loss == b->res.last_loss);
    assert_int_equal(a->calls, b->calls);
    /* The best model file and the plot, byte for byte. */
    assert_int_equal(a->model_n, b->model_n);
    assert_memory_equal(a->model, b->model, a->model_n);
    if (a->plot_n != b->plot_n || memcmp(a->plot, b->plot, a->plot_n) != 0)
        fail_msg("stop at %ld: the plot differs after resuming", k);
    /* The same reports (losses, metrics, rates, times of the fake clock). */
    if (strcmp(a->log, b->log) != 0)
        fail_msg("stop at %ld: the progress lines differ:\n%s---\n%s", k, a->log, b->log);
}

static void test_resume_bit_identical(void **state)
{
    (void)state;
    outcome a, b;
    memset(&a, 0, sizeof a);
    uninterrupted(setup_epochs, &a);
    assert_int_equal(a.res.reason, NLP_TRAIN_EPOCHS);
    assert_int_equal(a.res.steps, 60);
    assert_true(a.res.lr < 0.05f); /* the bumps made it decay */
    /* Stops before, at and after epoch ends, at the first and last step. */
    const long ks[] = { 1, 7, 10, 11, 23, 30, 41, 59 };
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        memset(&b, 0, sizeof b);
        interrupted(setup_epochs, ks[i], &b);
        compare(&a, &b, ks[i]);
        outcome_free(&b);
    }
    outcome_free(&a);

    /* Mid-interval validation, patience counting over the resume, another
    ** optimiser. */
    memset(&a, 0, sizeof a);
    uninterrupted(setup_valid_every, &a);
    assert_int_equal(a.res.reason, NLP_TRAIN_PATIENCE);
    assert_int_equal(a.res.steps, 28);
    const long ks2[] = { 3, 7, 14, 20, 27 };
    for (size_t i = 0; i < sizeof ks2 / sizeof ks2[0]; i++) {
        memset(&b, 0, sizeof b);
        interrupted(setup_valid_every, ks2[i], &b);
        compare(&a, &b, ks2[i]);
        outcome_free(&b);
    }
    outcome_free(&a);
}

static void test_checkpoint_config_roundtrip(void **state)
{
    (void)state;
    nlp_error e;
    task_ctx *c = task_new(6);
    nlp_train_config cfg = make_config(c);
    cfg.epochs = 17;
    cfg.max_steps = 1234;
    cfg.time_limit = 99.25;
    cfg.valid_every = 33;
    cfg.patience = 4;
    cfg.lr_decay = 0.3;
    cfg.lr_patience = 5;
    cfg.min_lr = 1e-6;
    cfg.clip = 2.5;
    cfg.checkpoint_every = 600;
    nlp_optim_config_default(&cfg.optim, NLP_OPTIM_SGD);
    cfg.optim.lr = 0.123;
    cfg.optim.momentum = 0.9;
    cfg.optim.nesterov = 1;
    cfg.optim.weight_decay = 1e-4;
    cfg.optim.schedule = NLP_LR_EXP;
    cfg.optim.gamma = 0.999;
    cfg.optim.warmup = 10;
    nlp_train_task k = make_task(c, 1);
    nlp_train *t;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_OK);
    assert_string_equal(nlp_train_checkpoint_path(t), ckpt_path);
    assert_int_equal(nlp_train_checkpoint(t, &e), NLP_OK);
    nlp_train_free(t);
    nlp_model *m;
    assert_int_equal(nlp_model_load(&m, ckpt_path, "linreg", &e), NLP_OK);
    nlp_train_config back;
    nlp_train_config_default(&back);
    back.output = "elsewhere";
    assert_int_equal(nlp_train_config_read(&back, m, &e), NLP_OK);
    assert_int_equal(back.epochs, 17);
    assert_int_equal(back.max_steps, 1234);
    assert_true(back.time_limit == 99.25);
    assert_int_equal(back.valid_every, 33);
    assert_int_equal(back.patience, 4);
    assert_true(back.lr_decay == 0.3);
    assert_int_equal(back.lr_patience, 5);
    assert_true(back.min_lr == 1e-6);
    assert_true(back.clip == 2.5);
    assert_true(back.checkpoint_every == 600);
    assert_memory_equal(&back.optim, &cfg.optim, sizeof cfg.optim);
    assert_string_equal(back.output, "elsewhere"); /* paths are not read */
    assert_null(back.checkpoint);
    /* A checkpoint is a usable model file too. */
    float disk[64];
    load_params(ckpt_path, disk);
    assert_memory_equal(disk, c->p->data, NP * sizeof(float));
    nlp_model_free(m);
    task_free(c);

    /* The default checkpoint path. */
    c = task_new(6);
    cfg = make_config(c);
    cfg.checkpoint = NULL;
    k = make_task(c, 1);
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_OK);
    char want[200];
    snprintf(want, sizeof want, "%s.ckpt", out_path);
    assert_string_equal(nlp_train_checkpoint_path(t), want);
    nlp_train_free(t);
    task_free(c);
}

/* A checkpoint whose key is set to value must be refused, naming the key
** (resumed with cfg.average = refuse_average). */
static double refuse_average;
static void expect_refused(const char *key, const char *value, int config)
{
    nlp_model *m;
    nlp_error e;
    assert_int_equal(nlp_model_load(&m, ckpt_path, "linreg", &e), NLP_OK);
    assert_int_equal(nlp_model_set_meta(m, key, value), NLP_OK);
    task_ctx *c = task_new(8);
    nlp_train_config cfg = make_config(c);
    cfg.average = refuse_average;
    int rc;
    if (config) {
        rc = nlp_train_config_read(&cfg, m, &e);
    } else {
        nlp_train_task k = make_task(c, 1);
        nlp_train *t;
        assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_OK);
        rc = nlp_train_resume(t, m, &e);
        nlp_train_free(t);
    }
    if (rc != NLP_EFORMAT)
        fail_msg("%s = '%s' was accepted (%d)", key, value, rc);
    if (!strstr(e.text, key))
        fail_msg("%s = '%s': the message does not name the key: %s", key, value, e.text);
    nlp_model_free(m);
    task_free(c);
}

static void test_corrupt_checkpoint(void **state)
{
    (void)state;
    volatile sig_atomic_t stop = 0;
    nlp_train_result res;
    nlp_error e;
    task_ctx *c = task_new(8);
    c->stop = &stop;
    c->stop_at = 23;
    nlp_train_config cfg = make_config(c);
    cfg.stop = &stop;
    cfg.lr_decay = 0.5;
    cfg.lr_patience = 1;
    c->bump = bumps;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    assert_int_equal(res.reason, NLP_TRAIN_REQUESTED);
    task_free(c);

    /* The untouched checkpoint resumes. */
    nlp_model *m;
    assert_int_equal(nlp_model_load(&m, ckpt_path, "linreg", &e), NLP_OK);
    c = task_new(8);
    cfg = make_config(c);
    nlp_train_task k = make_task(c, 1);
    nlp_train *t;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_OK);
    assert_int_equal(nlp_train_resume(t, m, &e), NLP_OK);
    assert_true(nlp_optim_lr_scale(nlp_train_optim(t)) == 0.5);
    nlp_train_free(t);
    nlp_model_free(m);
    task_free(c);

    static const char *const state_bad[][2] = {
        { "train.step", "9223372036854775808" },
        { "train.step", "-1" },
        { "train.step", "1e3" },
        { "train.step", "100" },                 /* the optimiser did 23 */
        { "train.epoch", "-1" },
        { "train.epoch", "24" },                 /* more epochs than steps */
        { "train.epoch_start_step", "1" },       /* before two epoch ends */
        { "train.elapsed", "nan" },
        { "train.elapsed", "inf" },
        { "train.elapsed", "-5" },
        { "train.elapsed", "1e300" },
        { "train.best_step", "24" },
        { "train.best_step", "-2" },
        { "train.best_metric", "nan" },
        { "train.plateau", "-3" },
        { "train.plateau", "2" },                /* more than bad_validations */
        { "train.bad_validations", "99999999999999999999" },
        { "train.lr_scale", "0" },
        { "train.lr_scale", "2" },
        { "train.lr_scale", "nan" },
        { "train.epoch_loss", "inf" },
        { "train.epoch_count", "-1" },
        { "train.last_loss", "inf" },
        { "train.since_valid", "24" },
        { "train.interval_count", "nan" },
        { "train.valid_elapsed", "1000" },       /* after the elapsed time */
        { "train.loss_width", "3" },
        { "train.loss_width", "0" },
        { "train.loss_points", "257" },
        { "train.loss_points", "5" },            /* the blob holds 23 */
        { "train.valid_points", "1000" },
        { "train.valid_points", "1" },           /* the blob holds 2 */
        { "train.checkpoint", "2" },
        { "linreg.rng", "00000000000000000000000000000000000000000000000000000000000000zz" },
        { "linreg.rng", "0000000000000000000000000000000000000000000000000000000000000000" },
        { "linreg.rng", "12" },
        { "optim.step", "-5" },
    };
    for (size_t i = 0; i < sizeof state_bad / sizeof state_bad[0]; i++)
        expect_refused(state_bad[i][0], state_bad[i][1], 0);

    static const char *const config_bad[][2] = {
        { "train.epochs", "-1" },
        { "train.max_steps", "abc" },
        { "train.time_limit", "nan" },
        { "train.valid_every", "-7" },
        { "train.patience", "1e99" },
        { "train.lr_decay", "0" },
        { "train.lr_decay", "1.5" },
        { "train.lr_patience", "0" },
        { "train.min_lr", "-1" },
        { "train.clip", "inf" },
        { "train.checkpoint_every", "-1" },
        { "train.optim.kind", "adagrad" },
        { "train.optim.lr", "0" },
        { "train.optim.beta1", "1" },
        { "train.optim.eps", "-1" },
        { "train.optim.schedule", "7" },
        { "train.optim.nesterov", "2" },
        { "train.optim.step_size", "0" },
        { "train.checkpoint", "x" },
    };
    for (size_t i = 0; i < sizeof config_bad / sizeof config_bad[0]; i++)
        expect_refused(config_bad[i][0], config_bad[i][1], 1);

    /* A model file is not a checkpoint. */
    assert_int_equal(nlp_model_load(&m, out_path, "linreg", &e), NLP_OK);
    nlp_train_config_default(&cfg);
    assert_int_equal(nlp_train_config_read(&cfg, m, &e), NLP_EFORMAT);
    assert_non_null(strstr(e.text, "not a checkpoint"));
    c = task_new(8);
    cfg = make_config(c);
    k = make_task(c, 1);
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_OK);
    assert_int_equal(nlp_train_resume(t, m, &e), NLP_EFORMAT);
    nlp_train_free(t);
    nlp_model_free(m);
    task_free(c);
}

/* ==== Divergence ========================================================= */

static void test_divergence(void **state)
{
    (void)state;
    for (int grad = 0; grad < 2; grad++) {
        nlp_train_result res;
        nlp_error e;
        task_ctx *c = task_new(9);
        if (grad)
            c->nan_grad_at = 25;
        else
            c->nan_loss_at = 25;
        nlp_train_config cfg = make_config(c);
        cfg.epochs = 5;
        cfg.plot = plot_path;
        assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_ERANGE);
        assert_non_null(strstr(e.text, "diverged at step 25"));
        assert_non_null(strstr(e.text, grad ? "gradient" : "loss"));
        assert_int_equal(res.steps, 24);
        /* No update from the bad step; the model file as it was. */
        assert_memory_equal(c->p->data, c->params_before, NP * sizeof(float));
        size_t n;
        unsigned char *now = slurp(out_path, &n);
        assert_non_null(now);
        assert_non_null(c->file_before);
        assert_int_equal(n, c->file_before_n);
        assert_memory_equal(now, c->file_before, n);
        free(now);
        float disk[64];
        load_params(out_path, disk);
        assert_true(memcmp(disk, c->snap[0], NP * sizeof(float)) == 0 ||
                    memcmp(disk, c->snap[1], NP * sizeof(float)) == 0);
        task_free(c);
    }
}

/* ==== Weight averaging =================================================== */

/*
** The average by hand (nlp/train.h): started from the weights at the start
** of step `first` of c's run, then k updates, each with the weights after
** step first + u (what step first + u + 1 saw, or `last` after the last
** step of the run): a = d_u a + (1 - d_u) w, d_u = min(d, (1 + u) / (10 + u)).
*/
static void hand_average(const task_ctx *c, double d, long first, long k, const float *last,
                         float *a)
{
    assert_true(first >= 1 && first + k - 1 <= c->steps && c->steps < MAXEVAL);
    memcpy(a, c->stepsnap[first], NP * sizeof(float));
    for (long u = 0; u < k; u++) {
        long after = first + u; /* the step whose update this is */
        const float *w = after + 1 <= c->steps ? c->stepsnap[after + 1] : last;
        double du = fmin(d, (1.0 + (double)u) / (10.0 + (double)u));
        float keep = (float)du, take = (float)(1.0 - du);
        for (size_t i = 0; i < NP; i++)
            a[i] = keep * a[i] + take * w[i];
    }
}

/* a and b within float rounding (the hand computation may round another
** way if the compiler fuses a multiply-add). */
static void assert_near(const float *a, const float *b, const char *what)
{
    for (size_t i = 0; i < NP; i++)
        if (!(fabsf(a[i] - b[i]) <= 1e-6f * fmaxf(1.0f, fabsf(b[i]))))
            fail_msg("%s: element %zu is %.9g, expected %.9g", what, i, (double)a[i],
                     (double)b[i]);
}

static void test_average_hand(void **state)
{
    (void)state;
    /* 0.95: the warm-up decides the three decays (0.1, 2/11, 1/4); 0.15:
    ** the decay from the second update on. */
    const double ds[] = { 0.95, 0.15 };
    for (size_t j = 0; j < 2; j++) {
        nlp_train_result res;
        nlp_error e;
        task_ctx *c = task_new(21);
        nlp_train_config cfg = make_config(c);
        cfg.max_steps = 3;
        cfg.average = ds[j];
        unlink(out_path);
        assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
        assert_int_equal(res.steps, 3);
        assert_int_equal(c->calls, 1); /* the validation at the end */
        float want[64], disk[64];
        hand_average(c, ds[j], 1, 3, c->p->data, want);
        assert_near(c->snap[0], want, "the average evaluate saw");
        /* Not the raw weights (which the buffer holds again). */
        assert_memory_not_equal(c->snap[0], c->p->data, NP * sizeof(float));
        load_params(out_path, disk);
        assert_memory_equal(disk, c->snap[0], NP * sizeof(float));
        task_free(c);
    }
}

/* Runs c for `steps` steps validating every 2 (a scripted metric whose
** best is the first), with averaging d. */
static void run_scripted(task_ctx *c, double d, int with_eval, long steps)
{
    static const double script[] = { 1, 2, 3, 4, 5 };
    c->script = script;
    c->nscript = 5;
    nlp_train_config cfg = make_config(c);
    cfg.max_steps = steps;
    cfg.valid_every = 2;
    cfg.average = d;
    nlp_train_result res;
    nlp_error e;
    unlink(out_path);
    assert_int_equal(run(c, &cfg, with_eval, &res, &e), NLP_OK);
    assert_int_equal(res.steps, steps);
}

static void test_average_raw_steps(void **state)
{
    (void)state;
    task_ctx *a = task_new(22), *b = task_new(22);
    run_scripted(a, 0, 1, 9);
    run_scripted(b, 0.9, 1, 9);
    /* Every step saw the raw weights: the same trajectory as without
    ** averaging, bit for bit, and the raw weights are back at the end. */
    assert_int_equal(a->steps, 9);
    assert_int_equal(b->steps, 9);
    for (long i = 1; i <= 9; i++)
        if (memcmp(a->stepsnap[i], b->stepsnap[i], NP * sizeof(float)) != 0)
            fail_msg("step %ld saw other weights with averaging on", i);
    assert_memory_equal(a->p->data, b->p->data, NP * sizeof(float));
    /* Validation at steps 2, 4, 6, 8 and at the end (9): without averaging
    ** the raw weights, with it the average of that many updates. */
    assert_int_equal(a->calls, 5);
    assert_int_equal(b->calls, 5);
    for (int k = 0; k < 5; k++) {
        long at = k < 4 ? 2 * (k + 1) : 9;
        const float *raw = at < 9 ? a->stepsnap[at + 1] : a->p->data;
        float want[64];
        char what[64];
        assert_memory_equal(a->snap[k], raw, NP * sizeof(float));
        hand_average(b, 0.9, 1, at, b->p->data, want);
        snprintf(what, sizeof what, "the average at step %ld", at);
        assert_near(b->snap[k], want, what);
        assert_memory_not_equal(b->snap[k], raw, NP * sizeof(float));
    }
    /* The best model (the first validation's) holds the average of step 2. */
    float disk[64];
    load_params(out_path, disk);
    assert_memory_equal(disk, b->snap[0], NP * sizeof(float));
    task_free(a);
    task_free(b);

    /* Without validation the latest model is the average too, whether
    ** the run ends between validation points (9) or on one (8: the file is
    ** written once more at the end). */
    for (long steps = 8; steps <= 9; steps++) {
        a = task_new(23);
        b = task_new(23);
        run_scripted(a, 0, 0, steps);
        load_params(out_path, disk);
        assert_memory_equal(disk, a->p->data, NP * sizeof(float));
        run_scripted(b, 0.9, 0, steps);
        assert_memory_equal(a->p->data, b->p->data, NP * sizeof(float));
        float want[64];
        hand_average(b, 0.9, 1, steps, b->p->data, want);
        load_params(out_path, disk);
        assert_near(disk, want, "the latest model without validation");
        assert_memory_not_equal(disk, b->p->data, NP * sizeof(float));
        task_free(a);
        task_free(b);
    }
}

static void setup_average(nlp_train_config *cfg)
{
    setup_epochs(cfg);
    cfg->average = 0.9;
}

static void setup_average_valid_every(nlp_train_config *cfg)
{
    setup_valid_every(cfg);
    cfg->average = 0.99;
}

/* Stops a run of averaging `from` at step k, resumes it with averaging
** `to` (the checkpoint's configuration otherwise) for `more` steps;
** returns the resumed task (to free). */
static task_ctx *stop_and_resume(double from, long k, double to, long more)
{
    volatile sig_atomic_t stop = 0;
    nlp_error e;
    nlp_train_result r;
    task_ctx *c = task_new(31);
    c->stop = &stop;
    c->stop_at = k;
    nlp_train_config cfg = make_config(c);
    cfg.stop = &stop;
    cfg.average = from;
    unlink(ckpt_path);
    assert_int_equal(run(c, &cfg, 1, &r, &e), NLP_OK);
    assert_int_equal(r.reason, NLP_TRAIN_REQUESTED);
    task_free(c);
    nlp_model *m;
    assert_int_equal(nlp_model_load(&m, ckpt_path, "linreg", &e), NLP_OK);
    assert_true((nlp_model_tensor(m, "train.average", NULL, NULL) != NULL) == (from > 0));
    c = task_new(999);
    assert_int_equal(nlp_model_read_params(m, c->p, &e), NLP_OK);
    cfg = make_config(c);
    assert_int_equal(nlp_train_config_read(&cfg, m, &e), NLP_OK);
    assert_true(cfg.average == from);
    cfg.average = to;
    cfg.max_steps = k + more;
    nlp_train_task task = make_task(c, 1);
    nlp_train *t;
    assert_int_equal(nlp_train_new(&t, &cfg, &task, &e), NLP_OK);
    if (nlp_train_resume(t, m, &e) != NLP_OK)
        fail_msg("resume: %s", e.text);
    nlp_model_free(m);
    assert_int_equal(nlp_train_run(t, &r, &e), NLP_OK);
    assert_int_equal(r.steps, k + more);
    nlp_train_free(t);
    return c;
}

static void test_average_resume(void **state)
{
    (void)state;
    outcome a, b;
    memset(&a, 0, sizeof a);
    uninterrupted(setup_average, &a);
    assert_int_equal(a.res.reason, NLP_TRAIN_EPOCHS);
    const long ks[] = { 1, 7, 10, 23, 41, 59 };
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        memset(&b, 0, sizeof b);
        interrupted(setup_average, ks[i], &b);
        compare(&a, &b, ks[i]);
        outcome_free(&b);
    }
    /* The best model is the average, not the raw weights of that step. */
    outcome plain;
    memset(&plain, 0, sizeof plain);
    uninterrupted(setup_epochs, &plain);
    assert_memory_equal(plain.params, a.params, NP * sizeof(float));
    assert_false(plain.model_n == a.model_n &&
                 memcmp(plain.model, a.model, a.model_n) == 0);
    outcome_free(&plain);
    outcome_free(&a);
    memset(&a, 0, sizeof a);
    uninterrupted(setup_average_valid_every, &a);
    const long ks2[] = { 3, 14, 27 };
    for (size_t i = 0; i < sizeof ks2 / sizeof ks2[0]; i++) {
        memset(&b, 0, sizeof b);
        interrupted(setup_average_valid_every, ks2[i], &b);
        compare(&a, &b, ks2[i]);
        outcome_free(&b);
    }
    outcome_free(&a);

    /* A checkpoint without an average, resumed with averaging: it starts
    ** from the weights resumed, with the warm-up from the start. */
    task_ctx *c = stop_and_resume(0, 5, 0.5, 3);
    assert_int_equal(c->steps, 3);
    assert_int_equal(c->calls, 1);
    float want[64], disk[64];
    hand_average(c, 0.5, 1, 3, c->p->data, want);
    assert_near(c->snap[0], want, "an average started on resuming");
    load_params(out_path, disk);
    assert_memory_equal(disk, c->snap[0], NP * sizeof(float));
    task_free(c);
    /* With an average, resumed with averaging off: the raw weights. */
    c = stop_and_resume(0.9, 5, 0, 3);
    assert_memory_equal(c->snap[0], c->p->data, NP * sizeof(float));
    task_free(c);
}


static void test_average_corrupt(void **state)
{
    (void)state;
    volatile sig_atomic_t stop = 0;
    nlp_train_result res;
    nlp_error e;
    for (int with = 0; with < 2; with++) {
        task_ctx *c = task_new(8);
        c->stop = &stop;
        c->stop_at = 13;
        stop = 0;
        nlp_train_config cfg = make_config(c);
        cfg.stop = &stop;
        cfg.average = with ? 0.9 : 0;
        unlink(ckpt_path);
        assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
        assert_int_equal(res.reason, NLP_TRAIN_REQUESTED);
        task_free(c);
        refuse_average = 0.9;
        if (with) {
            expect_refused("train.average_steps", "-1", 0);
            expect_refused("train.average_steps", "14", 0); /* more than the steps */
            expect_refused("train.average_steps", "x", 0);
            expect_refused("train.average", "1", 1);
            expect_refused("train.average", "-0.5", 1);
            expect_refused("train.average", "nan", 1);
            refuse_average = 0;
            continue;
        }
        /* Tensors: missing, of another size, not finite; steps missing. */
        nlp_model *m;
        const size_t two[1] = { 2 }, np[1] = { NP };
        float bad[64];
        for (size_t i = 0; i < NP; i++)
            bad[i] = 0.5f;
        bad[NP - 1] = NAN;
        for (int k = 0; k < 4; k++) {
            assert_int_equal(nlp_model_load(&m, ckpt_path, "linreg", &e), NLP_OK);
            if (k != 3)
                assert_int_equal(nlp_model_set_meta(m, "train.average_steps", "3"), NLP_OK);
            if (k == 1)
                assert_int_equal(nlp_model_add_tensor(m, "train.average", bad, 1, two), NLP_OK);
            if (k >= 2)
                assert_int_equal(nlp_model_add_tensor(m, "train.average", bad, 1, np), NLP_OK);
            task_ctx *c2 = task_new(8);
            cfg = make_config(c2);
            cfg.average = 0.9;
            nlp_train_task kt = make_task(c2, 1);
            nlp_train *t;
            assert_int_equal(nlp_train_new(&t, &cfg, &kt, &e), NLP_OK);
            int rc = nlp_train_resume(t, m, &e);
            if (rc != NLP_EFORMAT || !strstr(e.text, k == 3 ? "train.average_steps" : "train.average"))
                fail_msg("bad average %d accepted (%d): %s", k, rc, e.text);
            if (k == 2)
                assert_non_null(strstr(e.text, "not finite"));
            nlp_train_free(t);
            task_free(c2);
            nlp_model_free(m);
        }
    }
    refuse_average = 0;
}

/* ==== Out of memory ====================================================== */

/* new + one step (validated, plotted, best model written) + checkpoint.
** Returns the first error, or NLP_OK. */
static int oom_sequence(task_ctx *c, double average)
{
    nlp_train_config cfg = make_config(c);
    cfg.max_steps = 1;
    cfg.average = average;
    cfg.plot = plot_path;
    nlp_train_task k = make_task(c, 1);
    nlp_train *t = NULL;
    nlp_error e;
    nlp_train_result res;
    int rc = nlp_train_new(&t, &cfg, &k, &e);
    if (rc == NLP_OK) {
        assert_non_null(t);
        rc = nlp_train_run(t, &res, &e);
    } else {
        assert_null(t);
    }
    if (rc == NLP_OK)
        rc = nlp_train_checkpoint(t, &e);
    if (rc != NLP_OK && rc != NLP_ENOMEM)
        fail_msg("unexpected error %d: %s", rc, e.text);
    if (rc == NLP_ENOMEM)
        assert_int_equal(e.code, NLP_ENOMEM);
    nlp_train_free(t);
    return rc;
}

/* Every allocation failure of a run and of a resume, with cfg.average. */
static void oom_check(double average)
{
    task_ctx *c = task_new(10);
    nlp_alloc_fail_at(0, 0);
    assert_int_equal(oom_sequence(c, average), NLP_OK);
    long n = nlp_alloc_count();
    task_free(c);
    assert_true(n > 10);
    /* nlp_model_save syncs the directory after the rename as a best effort
    ** (the file is in place by then), and that allocates: a failure there
    ** is rightly not an error.  Two model files are saved (the best model
    ** and the checkpoint), so at most two failures may go unreported;
    ** every other one must come back as NLP_ENOMEM. */
    for (int sticky = 0; sticky < 2; sticky++) {
        int unreported = 0;
        for (long i = 1; i <= n; i++) {
            c = task_new(10);
            nlp_alloc_fail_at(i, sticky);
            int rc = oom_sequence(c, average);
            nlp_alloc_fail_at(0, 0);
            if (rc == NLP_OK)
                unreported++;
            task_free(c);
        }
        if (unreported > (sticky ? 1 : 2))
            fail_msg("%d of %ld allocation failures (sticky %d) were not reported", unreported,
                     n, sticky);
    }

    /* new + resume from a checkpoint with history: every failure reported. */
    c = task_new(10);
    nlp_train_config cfg = make_config(c);
    cfg.epochs = 2;
    cfg.average = average;
    cfg.checkpoint_every = 1000; /* so a last checkpoint is written */
    nlp_train_result res;
    nlp_error e;
    unlink(ckpt_path);
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    nlp_train_task k = make_task(c, 1);
    nlp_train *t;
    nlp_model *m;
    assert_int_equal(nlp_model_load(&m, ckpt_path, "linreg", &e), NLP_OK);
    assert_string_equal(nlp_model_meta(m, "train.valid_points"), "2");
    assert_true((nlp_model_tensor(m, "train.average", NULL, NULL) != NULL) == (average > 0));
    nlp_alloc_fail_at(0, 0);
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_OK);
    assert_int_equal(nlp_train_resume(t, m, &e), NLP_OK);
    nlp_train_free(t);
    n = nlp_alloc_count();
    for (long i = 1; i <= n; i++) {
        nlp_alloc_fail_at(i, 0);
        int rc = nlp_train_new(&t, &cfg, &k, &e);
        if (rc == NLP_OK)
            rc = nlp_train_resume(t, m, &e);
        nlp_alloc_fail_at(0, 0);
        if (rc != NLP_ENOMEM)
            fail_msg("resume: allocation %ld of %ld failed, the result was %d", i, n, rc);
        nlp_train_free(t);
    }
    nlp_model_free(m);
    task_free(c);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    oom_check(0);
    oom_check(0.9); /* weight averaging: two buffers more */
}

/* ==== Progress =========================================================== */

static char *run_logged(int verbosity, int live, const double *script, int nscript,
                        long epochs)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *log = open_memstream(&buf, &n);
    assert_non_null(log);
    task_ctx *c = task_new(13);
    c->script = script;
    c->nscript = nscript;
    nlp_train_config cfg = make_config(c);
    cfg.epochs = epochs;
    cfg.log = log;
    cfg.live = live;
    cfg.verbosity = verbosity;
    cfg.log_every = 4;
    cfg.lr_decay = 0.5;
    cfg.lr_patience = 1;
    cfg.patience = 2;
    nlp_train_result res;
    nlp_error e;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    task_free(c);
    fclose(log);
    return buf;
}

static int count_lines(const char *s, const char *prefix)
{
    int k = 0;
    size_t n = strlen(prefix);
    for (const char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        k += strncmp(p, prefix, n) == 0;
    return k;
}

static void test_progress(void **state)
{
    (void)state;
    static const double script[] = { 2.5, 2.25, 3, 4 };
    /* In a pipe: one line per validation, and the end. */
    char *log = run_logged(0, 0, script, 4, 10);
    assert_int_equal(count_lines(log, "epoch "), 4);
    assert_non_null(strstr(log, "epoch 1 step 10: train "));
    assert_non_null(strstr(log, ", valid mse 2.5000 (best), lr 0.05, "));
    assert_non_null(strstr(log, "epoch 2 step 20: train "));
    assert_non_null(strstr(log, ", valid mse 2.2500 (best), lr 0.05, "));
    assert_non_null(strstr(log, "epoch 3 step 30: train "));
    assert_non_null(strstr(log, ", valid mse 3.0000, lr 0.025, ")); /* decayed */
    assert_non_null(strstr(log, " samples/s, "));
    assert_non_null(strstr(log, "done (early stopping): epoch 4, step 40; best valid mse "
                                "2.2500 at step 20"));
    assert_null(strstr(log, "\r"));
    assert_null(strstr(log, "step 4,")); /* no periodic lines */
    assert_null(strstr(log, "plateau"));
    free(log);

    /* Quiet. */
    log = run_logged(-1, 0, script, 4, 10);
    assert_string_equal(log, "");
    free(log);

    /* Verbose: a line every 4 steps, the plateau and early-stopping events. */
    log = run_logged(1, 0, script, 4, 10);
    assert_non_null(strstr(log, "step 4, epoch 1 40%: loss "));
    assert_non_null(strstr(log, "step 12, epoch 2 20%: loss "));
    /* ETA to the nearest limit (10 epochs of 10 one-second steps): */
    assert_non_null(strstr(log, "4 samples/s, lr 0.05, ETA 1m36s\n")); /* step 4 */
    assert_non_null(strstr(log, "plateau: 1 validations without a new best; learning rate "
                                "0.05 -> 0.025"));
    assert_non_null(strstr(log, "early stopping: 2 validations without a new best"));
    free(log);

    /* Without epoch_fraction the position is estimated from the steps an
    ** epoch took, also after a resume (train.epoch_start_step). */
    volatile sig_atomic_t stop = 0;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    task_ctx *c = task_new(13);
    c->no_fraction = 1;
    c->stop = &stop;
    c->stop_at = 13;
    nlp_train_config cfg = make_config(c);
    cfg.epochs = 3;
    cfg.stop = &stop;
    cfg.log = f;
    cfg.verbosity = 1;
    cfg.log_every = 1;
    nlp_train_result res;
    nlp_error e;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    assert_int_equal(res.reason, NLP_TRAIN_REQUESTED);
    task_free(c);
    fclose(f);
    assert_non_null(strstr(buf, "step 9, epoch 1: loss "));   /* unknown in epoch 1 */
    assert_non_null(strstr(buf, "step 12, epoch 2 20%: loss "));
    assert_non_null(strstr(buf, "ETA 18.0s\n")); /* 30 - 12 steps of 1 s */
    free(buf);
    f = open_memstream(&buf, &n);
    nlp_model *m;
    assert_int_equal(nlp_model_load(&m, ckpt_path, "linreg", &e), NLP_OK);
    c = task_new(13);
    c->no_fraction = 1;
    assert_int_equal(nlp_model_read_params(m, c->p, &e), NLP_OK);
    cfg = make_config(c);
    cfg.epochs = 3;
    cfg.log = f;
    cfg.verbosity = 1;
    cfg.log_every = 1;
    nlp_train_task k = make_task(c, 1);
    nlp_train *t;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_OK);
    assert_int_equal(nlp_train_resume(t, m, &e), NLP_OK);
    assert_int_equal(nlp_train_run(t, &res, &e), NLP_OK);
    nlp_train_free(t);
    nlp_model_free(m);
    task_free(c);
    fclose(f);
    assert_non_null(strstr(buf, "step 14, epoch 2 40%: loss "));
    free(buf);

    /* Live on a terminal: redrawn in place. */
    log = run_logged(0, 1, script, 4, 10);
    assert_non_null(strstr(log, "\r\033[K"));
    assert_non_null(strstr(log, "ETA "));
    free(log);
}

/* ==== Configuration, arguments and helpers =============================== */

static void test_config_and_arguments(void **state)
{
    (void)state;
    nlp_train_config c;
    nlp_train_config_default(&c);
    assert_int_equal(c.epochs, 20);
    assert_int_equal(c.max_steps, 0);
    assert_true(c.lr_decay == 0.5 && c.min_lr == 1e-5 && c.clip == 5.0);
    assert_int_equal(c.lr_patience, 2);
    assert_int_equal(c.optim.kind, NLP_OPTIM_ADAM);
    assert_true(c.log == stderr);
    assert_int_equal(c.live, -1);
    nlp_error e;
    assert_int_equal(nlp_train_config_check(&c, &e), NLP_EINVAL); /* no output */
    assert_non_null(strstr(e.text, "output"));
    c.output = "x";
    assert_int_equal(nlp_train_config_check(&c, &e), NLP_OK);
    nlp_train_config d = c;
    d.epochs = -1;
    assert_int_equal(nlp_train_config_check(&d, &e), NLP_EINVAL);
    assert_non_null(strstr(e.text, "epochs"));
    d = c;
    d.lr_decay = 0;
    assert_int_equal(nlp_train_config_check(&d, &e), NLP_EINVAL);
    assert_non_null(strstr(e.text, "lr_decay"));
    d = c;
    d.time_limit = NAN;
    assert_int_equal(nlp_train_config_check(&d, &e), NLP_EINVAL);
    assert_non_null(strstr(e.text, "time_limit"));
    d = c;
    d.clip = -1;
    assert_int_equal(nlp_train_config_check(&d, &e), NLP_EINVAL);
    assert_non_null(strstr(e.text, "clip"));
    d = c;
    d.optim.lr = 0;
    assert_int_equal(nlp_train_config_check(&d, &e), NLP_EINVAL);
    assert_non_null(strstr(e.text, "optim"));
    d = c;
    d.live = 2;
    assert_int_equal(nlp_train_config_check(&d, &e), NLP_EINVAL);
    assert_non_null(strstr(e.text, "live"));
    d = c;
    d.lr_patience = 0;
    assert_int_equal(nlp_train_config_check(&d, &e), NLP_EINVAL);
    assert_non_null(strstr(e.text, "lr_patience"));
    assert_true(c.average == 0);
    const double bad_average[] = { 1, -0.1, NAN, 2 };
    for (size_t i = 0; i < sizeof bad_average / sizeof *bad_average; i++) {
        d = c;
        d.average = bad_average[i];
        assert_int_equal(nlp_train_config_check(&d, &e), NLP_EINVAL);
        assert_non_null(strstr(e.text, "average"));
    }
    d = c;
    d.average = 0.9999;
    assert_int_equal(nlp_train_config_check(&d, &e), NLP_OK);

    /* Tasks without what is required. */
    task_ctx *tc = task_new(1);
    nlp_train_config cfg = make_config(tc);
    nlp_train_task k = make_task(tc, 1);
    nlp_train *t = (nlp_train *)&k;
    k.step = NULL;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_EINVAL);
    assert_null(t);
    k = make_task(tc, 1);
    k.kind = "";
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_EINVAL);
    k = make_task(tc, 1);
    k.save_model = NULL;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_EINVAL);
    nlp_params *empty;
    assert_int_equal(nlp_params_new(&empty), NLP_OK);
    k = make_task(tc, 1);
    k.params = empty;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_EINVAL);
    nlp_params_free(empty);
    cfg.output = NULL;
    k = make_task(tc, 1);
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_EINVAL);
    nlp_train_free(NULL);
    task_free(tc);

    assert_string_equal(nlp_train_stop_name(NLP_TRAIN_PATIENCE), "early stopping");
    assert_string_equal(nlp_train_stop_name(NLP_TRAIN_REQUESTED), "stop requested");
    assert_string_equal(nlp_train_stop_name((nlp_train_stop)42), "?");
}

static void test_rng_helpers(void **state)
{
    (void)state;
    nlp_model *m;
    assert_int_equal(nlp_model_new(&m, "linreg"), NLP_OK);
    nlp_rng r, s;
    nlp_rng_seed(&r, 42);
    for (int i = 0; i < 5; i++)
        nlp_rng_u64(&r);
    assert_int_equal(nlp_train_add_rng(m, "x.rng", &r), NLP_OK);
    nlp_error e;
    assert_int_equal(nlp_train_read_rng(m, "x.rng", &s, &e), NLP_OK);
    assert_memory_equal(&r, &s, sizeof r);
    assert_true(nlp_rng_u64(&r) == nlp_rng_u64(&s));
    assert_int_equal(nlp_train_read_rng(m, "y.rng", &s, &e), NLP_EFORMAT);
    assert_non_null(strstr(e.text, "y.rng"));
    nlp_model_set_meta(m, "x.rng", "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef");
    assert_int_equal(nlp_train_read_rng(m, "x.rng", &s, &e), NLP_EFORMAT); /* upper case */
    nlp_model_free(m);
}

/* The plot file after a run: an SVG with both curves. */
static void test_plot(void **state)
{
    (void)state;
    task_ctx *c = task_new(14);
    nlp_train_config cfg = make_config(c);
    cfg.epochs = 3;
    cfg.plot = plot_path;
    unlink(plot_path);
    nlp_train_result res;
    nlp_error e;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_OK);
    size_t n;
    unsigned char *svg = slurp(plot_path, &n);
    assert_non_null(svg);
    svg[n] = '\0';
    assert_non_null(strstr((char *)svg, "<svg "));
    assert_non_null(strstr((char *)svg, "</svg>"));
    assert_non_null(strstr((char *)svg, ">training loss</text>"));
    assert_non_null(strstr((char *)svg, ">validation mse</text>"));
    assert_non_null(strstr((char *)svg, "<polyline"));
    free(svg);
    task_free(c);

    /* A plot that cannot be written is an error of the run. */
    c = task_new(14);
    cfg = make_config(c);
    cfg.epochs = 1;
    char bad[200];
    snprintf(bad, sizeof bad, "%s/no/such/dir/plot.svg", tmpdir);
    cfg.plot = bad;
    assert_int_equal(run(c, &cfg, 1, &res, &e), NLP_EIO);
    assert_non_null(strstr(e.file, "plot.svg"));
    task_free(c);
}

/* ==== Setup ============================================================== */

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_train.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(out_path, sizeof out_path, "%s/best.model", tmpdir);
    snprintf(ckpt_path, sizeof ckpt_path, "%s/run.ckpt", tmpdir);
    snprintf(plot_path, sizeof plot_path, "%s/curve.svg", tmpdir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(out_path);
    unlink(ckpt_path);
    unlink(plot_path);
    rmdir(tmpdir);
    return 0;
}

/* ---- the parallel step ---- */

#include <pthread.h>

#define TEAM_MAX 4
typedef struct team_ctx {
    nlp_params *p;
    int prepared;                /* W given to prepare_workers */
    long ends;                   /* step_end calls */
    pthread_t who[TEAM_MAX];     /* the thread that ran each worker, last step */
    pthread_t first[TEAM_MAX];   /* ... the first step */
    long shares[TEAM_MAX];
    long fail_at;                /* worker 1 fails on this step end count + 1 */
} team_ctx;

static int team_prepare(void *ctx, int W, nlp_error *e)
{
    team_ctx *c = ctx;
    if (W > TEAM_MAX)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "at most %d workers", TEAM_MAX);
    c->prepared = W;
    return NLP_OK;
}

/* Worker w adds (w+1) * 2^-(w+1) to every gradient: the sum in worker
** order is exact, and its loss is w+1 over w+1 items. */
static int team_share(void *ctx, int w, int W, float *grad, double *loss, double *count,
                      nlp_error *e)
{
    team_ctx *c = ctx;
    assert_true(W == c->prepared);
    for (size_t i = 0; i < c->p->n; i++)
        assert_true(grad[i] == 0.0f); /* zeroed for the worker */
    if (w == 1 && c->fail_at > 0 && c->ends + 1 == c->fail_at)
        return nlp_error_set(e, NLP_ERANGE, NULL, 0, "worker one gave up");
    for (size_t i = 0; i < c->p->n; i++)
        grad[i] += (float)(w + 1) * ldexpf(1.0f, -(w + 1));
    c->who[w] = pthread_self();
    if (c->shares[w]++ == 0)
        c->first[w] = c->who[w];
    *loss = w + 1;
    *count = w + 1;
    return NLP_OK;
}

static int team_end(void *ctx, int W, nlp_error *e)
{
    (void)e;
    team_ctx *c = ctx;
    assert_true(W == c->prepared);
    c->ends++;
    return 0;
}

/* The serial step: never called when the team runs. */
static int team_serial(void *ctx, double *loss, double *count, nlp_error *e)
{
    (void)ctx;
    (void)loss;
    (void)count;
    (void)e;
    fail_msg("the serial step ran with cfg.threads > 1");
    return NLP_EINVAL;
}

static int team_save(void *ctx, nlp_model *f, nlp_error *e)
{
    (void)ctx;
    (void)f;
    (void)e;
    return NLP_OK;
}

/*
** cfg.threads = W: prepare_workers once; every step runs W shares, worker
** 0 on the caller's thread and the others on threads of their own that
** live from step to step (no thread per step); the gradients sum into the
** one buffer before the single update; the losses combine weighted by the
** counts; a worker's error ends the run with its message; a task without
** the parallel step keeps the serial one; bad counts are refused.
*/
static void test_threads_team(void **state)
{
    (void)state;
    team_ctx c;
    memset(&c, 0, sizeof c);
    assert_int_equal(nlp_params_new(&c.p), NLP_OK);
    int shape[1] = {5};
    assert_true(nlp_params_add(c.p, "w", 1, shape) >= 0);
    assert_int_equal(nlp_params_alloc(c.p), NLP_OK);
    nlp_train_task k;
    memset(&k, 0, sizeof k);
    k.ctx = &c;
    k.kind = "team";
    k.metric = "loss";
    k.unit = "items";
    k.params = c.p;
    k.step = NULL; /* set below: required even with the parallel step */
    k.save_model = team_save;
    k.prepare_workers = team_prepare;
    k.step_share = team_share;
    k.step_end = team_end;
    nlp_train_config cfg;
    nlp_train_config_default(&cfg);
    cfg.epochs = 0;
    cfg.max_steps = 4;
    cfg.clip = 0;
    nlp_optim_config_default(&cfg.optim, NLP_OPTIM_SGD);
    cfg.optim.lr = 1;
    cfg.output = out_path;
    cfg.log = NULL;
    cfg.threads = 3;
    nlp_error e;
    nlp_train *t;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_EINVAL); /* no step */
    k.step = team_serial;
    cfg.threads = 0;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_EINVAL);
    assert_non_null(strstr(e.text, "threads"));
    cfg.threads = TEAM_MAX + 1;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_EINVAL); /* the task's refusal */
    assert_non_null(strstr(e.text, "at most"));
    cfg.threads = 3;
    k.step_end = NULL;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_EINVAL);
    k.step_end = team_end;
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_OK);
    assert_int_equal(c.prepared, 3);
    memset(c.p->data, 0, c.p->n * sizeof *c.p->data);
    nlp_train_result res;
    assert_int_equal(nlp_train_run(t, &res, &e), NLP_OK);
    assert_int_equal(res.steps, 4);
    assert_int_equal(c.ends, 4);
    /* Each update: -(1/2 + 2/4 + 3/8) = -1.375 per step. */
    for (size_t i = 0; i < 5; i++)
        assert_true(c.p->data[i] == -4 * 1.375f);
    /* (1*1 + 2*2 + 3*3) / (1+2+3) */
    assert_true(fabs(res.last_loss - 14.0 / 6.0) < 1e-12);
    for (int w = 0; w < 3; w++) {
        assert_int_equal(c.shares[w], 4);
        assert_true(pthread_equal(c.who[w], c.first[w])); /* the same thread every step */
        assert_true(pthread_equal(c.who[w], pthread_self()) == (w == 0));
    }
    assert_false(pthread_equal(c.who[1], c.who[2]));
    /* A worker's failure is the run's. */
    c.fail_at = 6;
    cfg.max_steps = 10;
    nlp_train_free(t);
    assert_int_equal(nlp_train_new(&t, &cfg, &k, &e), NLP_OK);
    c.ends = 4;
    assert_int_equal(nlp_train_run(t, &res, &e), NLP_ERANGE);
    assert_non_null(strstr(e.text, "worker one gave up"));
    assert_int_equal(c.ends, 5);
    nlp_train_free(t);
    nlp_params_free(c.p);
    unlink(out_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_and_epoch_limits),
        cmocka_unit_test(test_time_limit),
        cmocka_unit_test(test_patience_and_best_model),
        cmocka_unit_test(test_plateau_decay),
        cmocka_unit_test(test_no_validation),
        cmocka_unit_test(test_resume_bit_identical),
        cmocka_unit_test(test_checkpoint_config_roundtrip),
        cmocka_unit_test(test_corrupt_checkpoint),
        cmocka_unit_test(test_divergence),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_config_and_arguments),
        cmocka_unit_test(test_rng_helpers),
        cmocka_unit_test(test_plot),
        cmocka_unit_test(test_threads_team),
        cmocka_unit_test(test_average_hand),
        cmocka_unit_test(test_average_raw_steps),
        cmocka_unit_test(test_average_resume),
        cmocka_unit_test(test_average_corrupt),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
