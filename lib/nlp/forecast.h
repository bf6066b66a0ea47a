/*
** forecast: recurrent time-series forecasting, always beside the
** persistence and least-squares linear baselines.
**
** A series is a table x (n,k) of k features per time step (nlp/series.h);
** feature 0 is the target, the others are further inputs.  Each feature
** is represented as z = x (levels) or, with cfg.difference, as its first
** difference z(t) = x(t) - x(t-1) (the decorrelation a random walk needs),
** then standardised, s = (z - mean) / std, with the mean and standard
** deviation of the training part only.
**
** From the window of the W standardised rows ending at the last known step
** e, a model forecasts the target's next H values (direct multi-step):
**   lstm|gru|rnn  a recurrent stack (nlp/rnn.h) over the W steps of k
**                 inputs; a linear head (H, hidden) on the top layer's
**                 output at the last step gives the H standardised values;
**                 trained on the mean squared error through nlp/train
**   linear        the least-squares fit of the H values on the W*k window
**                 values and a constant (ridge 1e-6 per window for
**                 stability), solved in closed form
**   persistence   the next values equal the last known one, x(e+h) = x(e)
** Outputs go back to the target's units: s*std + mean, and with
** cfg.difference the differences are summed onto x(e) (integrated).
** Every model file also holds the linear baseline fitted on the training
** part, so an evaluation always reports model, persistence and linear side
** by side.  Forecasts beyond H steps are iterated (the forecasts appended
** to the history), which needs a univariate model (k = 1): the future of
** the other inputs is unknown.
**
** Model files (nlp/model.h) have the kind "forecast": the configuration,
** the standardisation and the column names as metadata, the baseline's
** coefficients as "baseline.weight" (H, W*k+1), and for a recurrent model
** its parameters ("rnn.*", "head.weight", "head.bias").
*/
#ifndef NLP_FORECAST_H
#define NLP_FORECAST_H

#include <stddef.h>
#include <stdint.h>

#include <nlp/error.h>
#include <nlp/model.h>
#include <nlp/rng.h>
#include <nlp/train.h>

#define NLP_FORECAST_KIND "forecast"
#define NLP_FORECAST_MAX_INPUTS 1024
#define NLP_FORECAST_MAX_WINDOW 10000
#define NLP_FORECAST_MAX_HORIZON 1000
#define NLP_FORECAST_MAX_HIDDEN 8192
#define NLP_FORECAST_MAX_LAYERS 16
#define NLP_FORECAST_MAX_FEATURES 2048  /* W*k, the linear baseline's inputs */
#define NLP_FORECAST_EVAL_BATCH 256     /* windows per forward outside training */

typedef enum nlp_forecast_model {
    NLP_FORECAST_LSTM = 0,
    NLP_FORECAST_GRU = 1,
    NLP_FORECAST_RNN = 2,
    NLP_FORECAST_LINEAR = 3,
    NLP_FORECAST_PERSISTENCE = 4
} nlp_forecast_model;

/* Parses "lstm", "gru", "rnn" (also "tanh"), "linear", "persistence".
** NLP_OK or NLP_EINVAL.  The name of m ("?" for an unknown value). */
int nlp_forecast_model_parse(const char *name, nlp_forecast_model *m);
const char *nlp_forecast_model_name(nlp_forecast_model m);

typedef struct nlp_forecast_config {
    nlp_forecast_model model; /* NLP_FORECAST_LSTM */
    int inputs;       /* k features per step (the target first); 1 */
    int window;       /* W steps in; 24 */
    int horizon;      /* H values out (direct); 1 */
    int hidden;       /* recurrent state size; 32 */
    int layers;       /* stacked recurrent layers; 1 */
    float dropout;    /* between stacked layers, in [0,1); 0 */
    int difference;   /* 1: model first differences; 0 */
} nlp_forecast_config;

/* Fills c with the defaults written next to each field. */
void nlp_forecast_config_default(nlp_forecast_config *c);

/* NLP_OK or NLP_EINVAL with e->text naming the field out of range. */
int nlp_forecast_config_check(const nlp_forecast_config *c, nlp_error *e);

typedef struct nlp_forecast nlp_forecast; /* opaque */

/*
** A new, unfitted model of configuration cfg whose k = cfg->inputs
** features are called names[0..k) (copied; for the model file, so that a
** later table's columns are chosen the same way).  Recurrent weights are
** drawn from rng (nlp_rnn_reset, nlp_linear_reset); rng may be NULL for
** linear and persistence.  NLP_OK with *out set, NLP_EINVAL (cfg, names)
** with e, NLP_ENOMEM.
*/
int nlp_forecast_new(nlp_forecast **out, const nlp_forecast_config *cfg,
                     const char *const *names, nlp_rng *rng, nlp_error *e);

/* Frees m.  NULL is a no-op. */
void nlp_forecast_free(nlp_forecast *m);

/*
** Fits what the training part x (n,k) fixes: the standardisation of each
** feature's representation, the naive scale of MASE (the mean |x(t) -
** x(t-1)| of the target), and the linear baseline on every window of the
** part (the H values after it inside the part too).  Needs n >=
** nlp_forecast_history(m) + H rows, else NLP_EEMPTY ("N rows; a window of
** W and a horizon of H need at least M").  NLP_OK, NLP_ENOMEM.
*/
int nlp_forecast_fit(nlp_forecast *m, const double *x, long n, nlp_error *e);

/* Rows of history a forecast needs: W, or W+1 with differencing. */
long nlp_forecast_history(const nlp_forecast *m);

/* Accessors (owned by m): the configuration; the name of feature j (NULL
** out of range); the recurrent parameters (NULL for linear and
** persistence); the MASE scale of the last fit. */
const nlp_forecast_config *nlp_forecast_get_config(const nlp_forecast *m);
const char *nlp_forecast_name(const nlp_forecast *m, int j);
nlp_params *nlp_forecast_params(nlp_forecast *m);
double nlp_forecast_naive_scale(const nlp_forecast *m);
/* Standardisation of feature j: mean and std of its representation. */
void nlp_forecast_stats(const nlp_forecast *m, int j, double *mean, double *std);

/* Which forecaster of a model: its own, or a baseline. */
typedef enum nlp_forecast_method {
    NLP_FORECAST_OWN = 0,         /* the model's (cfg.model) */
    NLP_FORECAST_BY_PERSISTENCE = 1,
    NLP_FORECAST_BY_LINEAR = 2    /* the baseline fitted with the model */
} nlp_forecast_method;

/*
** Direct H-step forecasts of the target from B windows of x (n,k, raw
** units): window b ends at row ends[b] (>= nlp_forecast_history(m) - 1, <
** n); out (B,H) row b gets the forecasts of rows ends[b]+1 .. ends[b]+H in
** the target's units.  Any B (the recurrent forward runs in batches of at
** most NLP_FORECAST_EVAL_BATCH windows, fewer for wide models, on the
** model's own workspace: not to be called from two threads on one model).
** Never allocates; no dropout.  NLP_OK, NLP_EINVAL (an end out of range,
** an unfitted model).
*/
int nlp_forecast_direct(nlp_forecast *m, nlp_forecast_method method, const double *x,
                        long n, const long *ends, long B, double *out);

/*
** The next steps values of the target after the last row of history x
** (n,k, n >= nlp_forecast_history(m)): direct while steps <= H, else
** iterated H at a time (k = 1 only).  out (steps).  NLP_OK, NLP_EINVAL (k >
** 1 and steps > H, e says so; n too small), NLP_ENOMEM.
*/
int nlp_forecast_predict(nlp_forecast *m, nlp_forecast_method method, const double *x,
                         long n, long steps, double *out, nlp_error *e);

/* ==== Scores ============================================================= */

typedef struct nlp_forecast_score {
    long n;         /* forecasts scored */
    double mse, mae;
    double mape;    /* percent, over the actual values that are not 0 */
    double mase;    /* mae / the model's naive scale (NAN when that is 0) */
} nlp_forecast_score;

/*
** Rolling forecasts over x (n,k): from every window ending at e = history-1
** .. n-1-h, the h-th forecast (1 <= h <= H) of method against x(e+h).
** NLP_OK, NLP_EEMPTY (no window fits), NLP_EINVAL, NLP_ENOMEM.  pred
** (may be NULL) gets the forecasts, n-history-h+1 of them, for plots.
*/
int nlp_forecast_score_series(nlp_forecast *m, nlp_forecast_method method, const double *x,
                              long n, int h, nlp_forecast_score *score, double *pred,
                              nlp_error *e);

/* ==== Files ============================================================== */

/*
** Adds the configuration, names, standardisation and baseline (by pointer:
** m must outlive the save) to file; not the recurrent parameters, which
** the harness adds (nlp_forecast_save adds them too).  NLP_OK, NLP_ENOMEM.
*/
int nlp_forecast_add_to_model(const nlp_forecast *m, nlp_model *file);

/* Writes a fitted m to path atomically with the extra metadata pairs meta
** (key, value, ..., NULL; may be NULL).  NLP_OK, NLP_EIO, NLP_ENOMEM. */
int nlp_forecast_save(const nlp_forecast *m, const char *path, const char *const *meta,
                      nlp_error *e);

/*
** Loads a model written by nlp_forecast_save or the harness (best model or
** checkpoint).  Every number is range-checked and every tensor's shape
** compared with what the configuration implies before anything sized by
** them is allocated.  *file (may be NULL) gets the loaded file (for a
** resumed run).  NLP_OK, the errors of nlp_model_load, NLP_EFORMAT.
*/
int nlp_forecast_load(nlp_forecast **out, const char *path, nlp_model **file, nlp_error *e);

/* ==== Training =========================================================== */

typedef struct nlp_forecast_train_config {
    int batch;        /* windows per step; 32 */
    uint64_t seed;    /* window order and dropout masks; 1 */
} nlp_forecast_train_config;

/* Fills c with the defaults written next to each field. */
void nlp_forecast_train_config_default(nlp_forecast_train_config *c);

/* Reads batch and seed of a checkpoint into c.  NLP_OK or NLP_EFORMAT. */
int nlp_forecast_train_config_read(nlp_forecast_train_config *c, const nlp_model *ckpt,
                                   nlp_error *e);

typedef struct nlp_forecast_trainer nlp_forecast_trainer; /* opaque */

/*
** A training task (nlp/train.h) for the fitted recurrent model m on the
** table x (n,k): rows [0, ntrain) train (every window whose H targets lie
** inside them), rows from ntrain on validate (every window whose first
** target is at or after ntrain; the metric is their MSE in the target's
** units over the H values).  ntrain == n: no validation.  The loss is the
** MSE of the standardised values.  m and x are borrowed.  The parallel
** step splits each batch into contiguous shares.  NLP_OK, NLP_EINVAL (not
** a recurrent model, not fitted), NLP_EEMPTY (no training window),
** NLP_ENOMEM, with e.
*/
int nlp_forecast_trainer_new(nlp_forecast_trainer **out, nlp_forecast *m,
                             const nlp_forecast_train_config *cfg, const double *x, long n,
                             long ntrain, nlp_error *e);

/* Frees t (not the model or the table).  NULL is a no-op. */
void nlp_forecast_trainer_free(nlp_forecast_trainer *t);

/* The task to give nlp_train_new (owned by t). */
const nlp_train_task *nlp_forecast_trainer_task(nlp_forecast_trainer *t);

/* Training windows per epoch; *valid (may be NULL) the validation ones. */
long nlp_forecast_trainer_windows(const nlp_forecast_trainer *t, long *valid);

/*
** One forward and backward of the mean squared error on the B windows
** ending at ends (all with H known targets in x), with dropout from rng
** when train; adds the gradient into m's parameters' grad.  *loss: the MSE
** (standardised).  For tests (gradient checks) and benchmarks; the trainer
** uses the same code.  NLP_OK, NLP_EINVAL, NLP_ERANGE (B > batch capacity:
** call nlp_forecast_reserve).
*/
int nlp_forecast_loss(nlp_forecast *m, const double *x, long n, const long *ends, int B,
                      int train, nlp_rng *rng, double *loss);

/* Sizes nlp_forecast_loss's workspace for batches of up to B windows
** (allocates; the trainer has its own).  NLP_OK, NLP_EINVAL (a model
** without parameters, B outside 1..65536), NLP_ENOMEM (no workspace
** then). */
int nlp_forecast_reserve(nlp_forecast *m, int B);

#endif
