/*
** forecast: the recurrent forecaster, its baselines, its model file and
** its training task.  See nlp/forecast.h.
**
** The layers are the library's (nlp_rnn, nlp_linear); this file adds the
** windows, the mean squared error, the closed-form linear baseline and
** the bookkeeping of levels, differences and standardisation.
*/
#include "nlp/forecast.h"
#include "nlp/alloc.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlp/crc32.h"
#include "nlp/linear.h"
#include "nlp/params.h"
#include "nlp/rnn.h"
#include "nlp/series.h"
#include "nlp/tensor.h"

/* Ridge added to the baseline's normal equations, per window: keeps a
** constant or collinear input solvable and moves a well-posed fit by
** about 1e-6 of its coefficients. */
#define RIDGE 1e-6
/* Floats of recurrent workspace per batch the evaluation may use
** (W * B * hidden): caps B for wide models. */
#define EVAL_WORK (1L << 22)
#define MAX_BATCH 65536

static const char *const model_names[] = {"lstm", "gru", "rnn", "linear", "persistence"};

int nlp_forecast_model_parse(const char *name, nlp_forecast_model *m)
{
    for (int i = 0; name && i < 5; i++)
        if (!strcmp(name, model_names[i])) {
            *m = (nlp_forecast_model)i;
            return NLP_OK;
        }
    if (name && !strcmp(name, "tanh")) {
        *m = NLP_FORECAST_RNN;
        return NLP_OK;
    }
    return NLP_EINVAL;
}

const char *nlp_forecast_model_name(nlp_forecast_model m)
{
    return (int)m >= 0 && (int)m < 5 ? model_names[m] : "?";
}

static int recurrent(const nlp_forecast_config *c)
{
    return c->model <= NLP_FORECAST_RNN;
}

void nlp_forecast_config_default(nlp_forecast_config *c)
{
    c->model = NLP_FORECAST_LSTM;
    c->inputs = 1;
    c->window = 24;
    c->horizon = 1;
    c->hidden = 32;
    c->layers = 1;
    c->dropout = 0;
    c->difference = 0;
}

int nlp_forecast_config_check(const nlp_forecast_config *c, nlp_error *e)
{
    const char *bad = NULL;
    if ((int)c->model < 0 || (int)c->model > NLP_FORECAST_PERSISTENCE)
        bad = "model";
    else if (c->inputs < 1 || c->inputs > NLP_FORECAST_MAX_INPUTS)
        bad = "inputs";
    else if (c->window < 1 || c->window > NLP_FORECAST_MAX_WINDOW)
        bad = "window";
    else if (c->horizon < 1 || c->horizon > NLP_FORECAST_MAX_HORIZON)
        bad = "horizon";
    else if ((long)c->window * c->inputs > NLP_FORECAST_MAX_FEATURES)
        bad = "window * inputs (the linear baseline's features)";
    else if (c->hidden < 1 || c->hidden > NLP_FORECAST_MAX_HIDDEN)
        bad = "hidden";
    else if (c->layers < 1 || c->layers > NLP_FORECAST_MAX_LAYERS)
        bad = "layers";
    else if (!(c->dropout >= 0 && c->dropout < 1))
        bad = "dropout";
    else if (c->difference != 0 && c->difference != 1)
        bad = "difference";
    if (bad)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "forecast configuration: %s out of range",
                             bad);
    return NLP_OK;
}

/* ==== The model ========================================================== */

/* A forward/backward workspace over the model's parameters (its own
** gradient pointer): the serial step, each worker of the parallel step,
** and nlp_forecast_loss. */
typedef struct fc_ws {
    nlp_params params;  /* the model's, grad = where this workspace adds */
    nlp_rnn *rnn;       /* owned: the model's views over params */
    nlp_linear head;    /* over params */
    int cap;            /* windows */
    float *x;           /* (W,cap,k) */
    float *y, *dy;      /* (W,cap,hidden) */
    float *o, *s;       /* (cap,H) outputs (gradient in place), targets */
    nlp_rng rng;        /* a worker's dropout masks */
} fc_ws;

struct nlp_forecast {
    nlp_forecast_config cfg;
    char **names;        /* (k) */
    double *mean, *std;  /* (k) of the representation */
    double naive;        /* MASE scale */
    int fitted;
    float *base;         /* (H, W*k+1) the linear baseline */
    nlp_params *params;  /* recurrent models only */
    nlp_rnn *rnn;        /* evaluation stack, max_B = eb */
    nlp_linear head;
    int eb;              /* evaluation batch */
    float *ex, *ey, *eo; /* (W,eb,k), (W,eb,hidden), (eb,H) */
    float *feat;         /* (W*k+1) one window for the baseline */
    float *lin;          /* (H) the baseline's standardised outputs */
    fc_ws lws;           /* nlp_forecast_loss's workspace (cap 0 until reserved) */
};

static void ws_free(fc_ws *w)
{
    nlp_rnn_free(w->rnn);
    nlp_tensor_free(w->x);
    nlp_tensor_free(w->y);
    nlp_tensor_free(w->dy);
    nlp_tensor_free(w->o);
    nlp_tensor_free(w->s);
    memset(w, 0, sizeof *w);
}

static int ws_make(const nlp_forecast *m, fc_ws *w, int cap)
{
    const nlp_forecast_config *c = &m->cfg;
    memset(w, 0, sizeof *w);
    w->params = *m->params;
    w->head = m->head;
    w->head.params = &w->params;
    w->cap = cap;
    const size_t WB = (size_t)c->window * (size_t)cap;
    int rc = nlp_rnn_new_shared(&w->rnn, m->rnn, &w->params, c->window, cap);
    w->x = nlp_tensor_alloc(WB * (size_t)c->inputs);
    w->y = nlp_tensor_alloc(WB * (size_t)c->hidden);
    w->dy = nlp_tensor_alloc(WB * (size_t)c->hidden);
    w->o = nlp_tensor_alloc((size_t)cap * (size_t)c->horizon);
    w->s = nlp_tensor_alloc((size_t)cap * (size_t)c->horizon);
    if (rc != NLP_OK || !w->x || !w->y || !w->dy || !w->o || !w->s) {
        ws_free(w);
        return rc == NLP_OK ? NLP_ENOMEM : rc;
    }
    return NLP_OK;
}

void nlp_forecast_free(nlp_forecast *m)
{
    if (!m)
        return;
    for (int j = 0; m->names && j < m->cfg.inputs; j++)
        nlp_free(m->names[j]);
    nlp_free(m->names);
    nlp_free(m->mean);
    nlp_free(m->std);
    nlp_tensor_free(m->base);
    nlp_tensor_free(m->feat);
    nlp_tensor_free(m->lin);
    ws_free(&m->lws);
    nlp_rnn_free(m->rnn);
    nlp_params_free(m->params);
    nlp_tensor_free(m->ex);
    nlp_tensor_free(m->ey);
    nlp_tensor_free(m->eo);
    nlp_free(m);
}

static int features(const nlp_forecast *m)
{
    return m->cfg.window * m->cfg.inputs;
}

/* Everything but the recurrent layout: names, statistics, baseline. */
static int alloc_common(nlp_forecast *m, const char *const *names)
{
    const int k = m->cfg.inputs;
    m->names = nlp_calloc((size_t)k, sizeof *m->names);
    m->mean = nlp_calloc((size_t)k, sizeof *m->mean);
    m->std = nlp_calloc((size_t)k, sizeof *m->std);
    m->base = nlp_tensor_alloc((size_t)m->cfg.horizon * (size_t)(features(m) + 1));
    m->feat = nlp_tensor_alloc((size_t)features(m) + 1);
    m->lin = nlp_tensor_alloc((size_t)m->cfg.horizon);
    if (!m->names || !m->mean || !m->std || !m->base || !m->feat || !m->lin)
        return NLP_ENOMEM;
    for (int j = 0; j < k; j++) {
        m->std[j] = 1;
        if (names && !(m->names[j] = nlp_strdup(names[j])))
            return NLP_ENOMEM;
    }
    return NLP_OK;
}

/* The recurrent stack and head declared in a new parameter set, with a
** minimal workspace (the real one comes with finish_layout, after a loader
** has checked the shapes). */
static int layout(nlp_forecast *m)
{
    const nlp_forecast_config *c = &m->cfg;
    int rc = nlp_params_new(&m->params);
    if (rc != NLP_OK)
        return rc;
    nlp_rnn_config rc_;
    nlp_rnn_config_default(&rc_);
    rc_.cell = c->model == NLP_FORECAST_LSTM ? NLP_RNN_LSTM
             : c->model == NLP_FORECAST_GRU ? NLP_RNN_GRU : NLP_RNN_TANH;
    rc_.input = c->inputs;
    rc_.hidden = c->hidden;
    rc_.layers = c->layers;
    rc_.dropout = c->dropout;
    rc_.max_T = 1;
    rc_.max_B = 1;
    if ((rc = nlp_rnn_new(&m->rnn, &rc_, m->params, "rnn")) != NLP_OK)
        return rc;
    return nlp_linear_init(&m->head, m->params, "head", c->hidden, c->horizon, 1);
}

static int finish_layout(nlp_forecast *m)
{
    const nlp_forecast_config *c = &m->cfg;
    int rc = nlp_params_alloc(m->params);
    if (rc != NLP_OK)
        return rc;
    long eb = EVAL_WORK / ((long)c->window * c->hidden);
    m->eb = eb < 1 ? 1 : eb > NLP_FORECAST_EVAL_BATCH ? NLP_FORECAST_EVAL_BATCH : (int)eb;
    if ((rc = nlp_rnn_resize(m->rnn, c->window, m->eb)) != NLP_OK)
        return rc;
    const size_t WB = (size_t)c->window * (size_t)m->eb;
    m->ex = nlp_tensor_alloc(WB * (size_t)c->inputs);
    m->ey = nlp_tensor_alloc(WB * (size_t)c->hidden);
    m->eo = nlp_tensor_alloc((size_t)m->eb * (size_t)c->horizon);
    return m->ex && m->ey && m->eo ? NLP_OK : NLP_ENOMEM;
}

int nlp_forecast_new(nlp_forecast **out, const nlp_forecast_config *cfg,
                     const char *const *names, nlp_rng *rng, nlp_error *e)
{
    *out = NULL;
    int rc = nlp_forecast_config_check(cfg, e);
    if (rc != NLP_OK)
        return rc;
    for (int j = 0; j < cfg->inputs; j++)
        if (!names || !names[j] || !names[j][0])
            return nlp_error_set(e, NLP_EINVAL, NULL, 0, "feature %d has no name", j + 1);
    if (recurrent(cfg) && !rng)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "a recurrent model needs an rng");
    nlp_forecast *m = nlp_calloc(1, sizeof *m);
    if (!m)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    m->cfg = *cfg;
    rc = alloc_common(m, names);
    if (rc == NLP_OK && recurrent(cfg)) {
        rc = layout(m);
        if (rc == NLP_OK)
            rc = finish_layout(m);
        if (rc == NLP_OK) {
            nlp_rnn_reset(m->rnn, rng);
            nlp_linear_reset(&m->head, rng);
        }
    }
    if (rc != NLP_OK) {
        nlp_forecast_free(m);
        return nlp_error_set(e, rc, NULL, 0, rc == NLP_ENOMEM ? NULL : "model layout: %s",
                             nlp_error_string(rc));
    }
    *out = m;
    return NLP_OK;
}

long nlp_forecast_history(const nlp_forecast *m)
{
    return (long)m->cfg.window + m->cfg.difference;
}

const nlp_forecast_config *nlp_forecast_get_config(const nlp_forecast *m)
{
    return &m->cfg;
}

const char *nlp_forecast_name(const nlp_forecast *m, int j)
{
    return j >= 0 && j < m->cfg.inputs ? m->names[j] : NULL;
}

nlp_params *nlp_forecast_params(nlp_forecast *m)
{
    return m->params;
}

double nlp_forecast_naive_scale(const nlp_forecast *m)
{
    return m->naive;
}

void nlp_forecast_stats(const nlp_forecast *m, int j, double *mean, double *std)
{
    *mean = m->mean[j];
    *std = m->std[j];
}

/* ==== Windows ============================================================ */

/* Feature j of row r in the model's representation (level or difference). */
static double rep(const nlp_forecast *m, const double *x, long r, int j)
{
    const size_t k = (size_t)m->cfg.inputs;
    double v = x[(size_t)r * k + (size_t)j];
    return m->cfg.difference ? v - x[(size_t)(r - 1) * k + (size_t)j] : v;
}

/* The standardised window ending at row e into out + t*stride (k each). */
static void window(const nlp_forecast *m, float *out, size_t stride, const double *x, long e)
{
    const int W = m->cfg.window, k = m->cfg.inputs;
    if (!m->cfg.difference) {
        nlp_series_window(out, stride, x, k, e, W, m->mean, m->std);
        return;
    }
    for (int t = 0; t < W; t++)
        for (int j = 0; j < k; j++)
            out[(size_t)t * stride + (size_t)j] =
                (float)((rep(m, x, e - W + 1 + t, j) - m->mean[j]) / m->std[j]);
}

/* Standardised targets of the window ending at e: s (H). */
static void targets(const nlp_forecast *m, float *s, const double *x, long e)
{
    for (int h = 1; h <= m->cfg.horizon; h++)
        s[h - 1] = (float)((rep(m, x, e + h, 0) - m->mean[0]) / m->std[0]);
}

/* Standardised outputs o (H) back to levels out (H) after row e. */
static void levels(const nlp_forecast *m, double *out, const float *o, const double *x, long e)
{
    const size_t k = (size_t)m->cfg.inputs;
    double acc = x[(size_t)e * k];
    for (int h = 0; h < m->cfg.horizon; h++) {
        double v = (double)o[h] * m->std[0] + m->mean[0];
        if (m->cfg.difference) {
            acc += v;
            out[h] = acc;
        } else {
            out[h] = v;
        }
    }
}

/* The baseline's standardised outputs o (H) for the window ending at e. */
static void linear_out(nlp_forecast *m, float *o, const double *x, long e)
{
    const int F = features(m), H = m->cfg.horizon;
    window(m, m->feat, (size_t)m->cfg.inputs, x, e);
    for (int h = 0; h < H; h++) {
        const float *w = m->base + (size_t)h * (size_t)(F + 1);
        double s = w[F];
        for (int f = 0; f < F; f++)
            s += (double)w[f] * m->feat[f];
        o[h] = (float)s;
    }
}

/* ==== Fitting ============================================================ */

/* Solves A X = B in place for symmetric positive definite A (n,n) and B
** (n,r): Cholesky, then the two triangular solves.  0, or -1 when A is
** not positive definite. */
static int cholesky_solve(double *A, double *B, int n, int r)
{
    for (int j = 0; j < n; j++) {
        double d = A[(size_t)j * n + j];
        for (int p = 0; p < j; p++)
            d -= A[(size_t)j * n + p] * A[(size_t)j * n + p];
        if (!(d > 0))
            return -1;
        d = sqrt(d);
        A[(size_t)j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double s = A[(size_t)i * n + j];
            for (int p = 0; p < j; p++)
                s -= A[(size_t)i * n + p] * A[(size_t)j * n + p];
            A[(size_t)i * n + j] = s / d;
        }
    }
    for (int c = 0; c < r; c++) {
        for (int i = 0; i < n; i++) { /* L y = b */
            double s = B[(size_t)i * r + c];
            for (int p = 0; p < i; p++)
                s -= A[(size_t)i * n + p] * B[(size_t)p * r + c];
            B[(size_t)i * r + c] = s / A[(size_t)i * n + i];
        }
        for (int i = n - 1; i >= 0; i--) { /* L^T x = y */
            double s = B[(size_t)i * r + c];
            for (int p = i + 1; p < n; p++)
                s -= A[(size_t)p * n + i] * B[(size_t)p * r + c];
            B[(size_t)i * r + c] = s / A[(size_t)i * n + i];
        }
    }
    return 0;
}

int nlp_forecast_fit(nlp_forecast *m, const double *x, long n, nlp_error *e)
{
    const nlp_forecast_config *c = &m->cfg;
    const int k = c->inputs, H = c->horizon, F = features(m), F1 = F + 1;
    const long hist = nlp_forecast_history(m);
    if (n < hist + H)
        return nlp_error_set(e, NLP_EEMPTY, NULL, 0,
                             "%ld rows; a window of %d%s and a horizon of %d need at least %ld",
                             n, c->window, c->difference ? " (differenced)" : "", H, hist + H);
    /* The representation's statistics over the part's rows. */
    const long first = c->difference;
    double *z = nlp_malloc((size_t)(n - first) * (size_t)k * sizeof *z);
    if (!z)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    for (long t = first; t < n; t++)
        for (int j = 0; j < k; j++)
            z[(size_t)(t - first) * k + j] = rep(m, x, t, j);
    nlp_series_stats(z, n - first, k, 0, n - first, m->mean, m->std);
    nlp_free(z);
    double naive = 0;
    for (long t = 1; t < n; t++)
        naive += fabs(x[(size_t)t * k] - x[(size_t)(t - 1) * k]);
    m->naive = n > 1 ? naive / (double)(n - 1) : 0;

    /* The baseline: normal equations over every window of the part. */
    double *A = nlp_calloc((size_t)F1 * (size_t)F1, sizeof *A);
    double *B = nlp_calloc((size_t)F1 * (size_t)H, sizeof *B);
    float *s = nlp_tensor_alloc((size_t)H);
    if (!A || !B || !s) {
        nlp_free(A);
        nlp_free(B);
        nlp_tensor_free(s);
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    }
    long nwin = 0;
    for (long end = hist - 1; end + H <= n - 1; end++, nwin++) {
        window(m, m->feat, (size_t)k, x, end);
        m->feat[F] = 1;
        targets(m, s, x, end);
        for (int i = 0; i < F1; i++) {
            double fi = m->feat[i];
            for (int j = 0; j <= i; j++)
                A[(size_t)i * F1 + j] += fi * m->feat[j];
            for (int h = 0; h < H; h++)
                B[(size_t)i * H + h] += fi * s[h];
        }
    }
    for (int i = 0; i < F1; i++)
        for (int j = i + 1; j < F1; j++)
            A[(size_t)i * F1 + j] = A[(size_t)j * F1 + i];
    for (int i = 0; i < F; i++)
        A[(size_t)i * F1 + i] += RIDGE * (double)nwin;
    A[(size_t)F * F1 + F] += 1e-12 * (double)nwin;
    int bad = cholesky_solve(A, B, F1, H);
    if (!bad)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < F1; i++) {
                double v = B[(size_t)i * H + h];
                if (!isfinite(v) || fabs(v) > 1e30)
                    bad = 1;
                m->base[(size_t)h * F1 + i] = (float)v;
            }
    nlp_free(A);
    nlp_free(B);
    nlp_tensor_free(s);
    if (bad)
        return nlp_error_set(e, NLP_ERANGE, NULL, 0,
                             "the linear baseline cannot be fitted (the inputs are degenerate)");
    m->fitted = 1;
    return NLP_OK;
}

/* ==== Forecasts ========================================================== */

/* Recurrent forward of B windows (ends) on the workspace buffers x, y of
** rnn r and head hd: outputs o (B,H) standardised. */
static int rnn_out(const nlp_forecast *m, nlp_rnn *r, const nlp_linear *hd, float *xb,
                   float *yb, float *o, const double *x, const long *ends, int B, int train,
                   nlp_rng *rng)
{
    const int W = m->cfg.window, k = m->cfg.inputs, Hd = m->cfg.hidden;
    for (int b = 0; b < B; b++)
        window(m, xb + (size_t)b * k, (size_t)B * k, x, ends[b]);
    int rc = nlp_rnn_forward(r, yb, NULL, NULL, xb, NULL, NULL, NULL, W, B, train, rng);
    if (rc != NLP_OK)
        return rc;
    nlp_linear_forward(hd, o, yb + (size_t)(W - 1) * B * Hd, B);
    return NLP_OK;
}

int nlp_forecast_direct(nlp_forecast *m, nlp_forecast_method method, const double *x,
                        long n, const long *ends, long B, double *out)
{
    const int H = m->cfg.horizon;
    const long hist = nlp_forecast_history(m);
    if (!m->fitted || B < 0)
        return NLP_EINVAL;
    for (long b = 0; b < B; b++)
        if (ends[b] < hist - 1 || ends[b] >= n)
            return NLP_EINVAL;
    if (method == NLP_FORECAST_OWN) {
        if (m->cfg.model == NLP_FORECAST_PERSISTENCE)
            method = NLP_FORECAST_BY_PERSISTENCE;
        else if (m->cfg.model == NLP_FORECAST_LINEAR)
            method = NLP_FORECAST_BY_LINEAR;
    }
    const size_t k = (size_t)m->cfg.inputs;
    if (method == NLP_FORECAST_BY_PERSISTENCE) {
        for (long b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                out[(size_t)b * H + h] = x[(size_t)ends[b] * k];
        return NLP_OK;
    }
    if (method == NLP_FORECAST_BY_LINEAR) {
        for (long b = 0; b < B; b++) {
            linear_out(m, m->lin, x, ends[b]);
            levels(m, out + (size_t)b * H, m->lin, x, ends[b]);
        }
        return NLP_OK;
    }
    if (!m->params)
        return NLP_EINVAL;
    for (long b0 = 0; b0 < B; b0 += m->eb) {
        int nb = B - b0 < m->eb ? (int)(B - b0) : m->eb;
        int rc = rnn_out(m, m->rnn, &m->head, m->ex, m->ey, m->eo, x, ends + b0, nb, 0, NULL);
        if (rc != NLP_OK)
            return rc;
        for (int b = 0; b < nb; b++)
            levels(m, out + (size_t)(b0 + b) * H, m->eo + (size_t)b * H, x, ends[b0 + b]);
    }
    return NLP_OK;
}

int nlp_forecast_predict(nlp_forecast *m, nlp_forecast_method method, const double *x,
                         long n, long steps, double *out, nlp_error *e)
{
    const int H = m->cfg.horizon, k = m->cfg.inputs;
    const long hist = nlp_forecast_history(m);
    if (n < hist)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "%ld rows of history; the model needs the last %ld", n, hist);
    if (steps < 1)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "no steps to forecast");
    if (steps > H && k > 1 && method != NLP_FORECAST_BY_PERSISTENCE)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "%ld steps from a model of horizon %d: iterating needs the future "
                             "of the other %d inputs, which is unknown (train with --horizon "
                             "%ld, or forecast at most %d steps)", steps, H, k - 1, steps, H);
    /* A private copy of the history's tail, extended by the forecasts. */
    const long rows = hist + steps;
    double *h = nlp_malloc((size_t)rows * (size_t)k * sizeof *h);
    double *o = nlp_malloc((size_t)H * sizeof *o);
    if (!h || !o) {
        nlp_free(h);
        nlp_free(o);
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    }
    memcpy(h, x + (size_t)(n - hist) * (size_t)k, (size_t)hist * (size_t)k * sizeof *h);
    long done = 0, end = hist - 1;
    int rc = NLP_OK;
    while (done < steps && rc == NLP_OK) {
        rc = nlp_forecast_direct(m, method, h, end + 1, &end, 1, o);
        for (int j = 0; rc == NLP_OK && j < H && done < steps; j++) {
            out[done++] = o[j];
            if (k == 1)
                h[++end] = o[j];
        }
    }
    nlp_free(h);
    nlp_free(o);
    return rc == NLP_OK ? NLP_OK : nlp_error_set(e, rc, NULL, 0, "forecast: %s",
                                                 nlp_error_string(rc));
}

int nlp_forecast_score_series(nlp_forecast *m, nlp_forecast_method method, const double *x,
                              long n, int h, nlp_forecast_score *score, double *pred,
                              nlp_error *e)
{
    const int H = m->cfg.horizon, k = m->cfg.inputs;
    const long hist = nlp_forecast_history(m);
    memset(score, 0, sizeof *score);
    if (h < 1 || h > H)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "step %d of a horizon of %d", h, H);
    long N = n - hist - h + 1;
    if (N < 1)
        return nlp_error_set(e, NLP_EEMPTY, NULL, 0,
                             "%ld rows: a window of %ld rows and %d step%s ahead need at least "
                             "%ld", n, hist, h, h > 1 ? "s" : "", hist + h);
    const long chunk = 1024;
    long *ends = nlp_malloc((size_t)chunk * sizeof *ends);
    double *o = nlp_malloc((size_t)chunk * (size_t)H * sizeof *o);
    if (!ends || !o) {
        nlp_free(ends);
        nlp_free(o);
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    }
    double se = 0, ae = 0, ape = 0;
    long nape = 0;
    int rc = NLP_OK;
    for (long i0 = 0; i0 < N && rc == NLP_OK; i0 += chunk) {
        long nb = N - i0 < chunk ? N - i0 : chunk;
        for (long b = 0; b < nb; b++)
            ends[b] = hist - 1 + i0 + b;
        rc = nlp_forecast_direct(m, method, x, n, ends, nb, o);
        for (long b = 0; rc == NLP_OK && b < nb; b++) {
            double f = o[(size_t)b * H + (h - 1)];
            double a = x[(size_t)(ends[b] + h) * k];
            double d = f - a;
            se += d * d;
            ae += fabs(d);
            if (a != 0) {
                ape += fabs(d / a);
                nape++;
            }
            if (pred)
                pred[i0 + b] = f;
        }
    }
    nlp_free(ends);
    nlp_free(o);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "forecast: %s", nlp_error_string(rc));
    score->n = N;
    score->mse = se / (double)N;
    score->mae = ae / (double)N;
    score->mape = nape ? 100.0 * ape / (double)nape : NAN;
    score->mase = m->naive > 0 ? score->mae / m->naive : NAN;
    return NLP_OK;
}

/* ==== The loss =========================================================== */

/*
** Forward and backward of the squared error of B windows on workspace w:
** adds into w->params.grad the gradient of sum / den (den: the whole
** batch's B*H when w holds a share); *sse gets the share's sum of squared
** standardised errors.
*/
static int fwd_bwd(const nlp_forecast *m, fc_ws *w, const double *x, const long *ends, int B,
                   double den, int train, nlp_rng *rng, double *sse)
{
    const int W = m->cfg.window, H = m->cfg.horizon, Hd = m->cfg.hidden;
    if (B > w->cap)
        return NLP_ERANGE;
    int rc = rnn_out(m, w->rnn, &w->head, w->x, w->y, w->o, x, ends, B, train, rng);
    if (rc != NLP_OK)
        return rc;
    double s = 0;
    for (int b = 0; b < B; b++) {
        targets(m, w->s + (size_t)b * H, x, ends[b]);
        for (int h = 0; h < H; h++) {
            size_t i = (size_t)b * H + h;
            double d = (double)w->o[i] - w->s[i];
            s += d * d;
            w->o[i] = (float)(2.0 * d / den);
        }
    }
    *sse = s;
    const size_t last = (size_t)(W - 1) * (size_t)B * (size_t)Hd;
    memset(w->dy, 0, (size_t)W * (size_t)B * (size_t)Hd * sizeof *w->dy);
    nlp_linear_backward(&w->head, w->dy + last, w->o, w->y + last, B);
    return nlp_rnn_backward(w->rnn, NULL, NULL, NULL, w->dy, NULL, NULL, w->x);
}

int nlp_forecast_reserve(nlp_forecast *m, int B)
{
    if (!m->params || B < 1 || B > MAX_BATCH)
        return NLP_EINVAL;
    if (m->lws.cap >= B)
        return NLP_OK;
    /* In place: the workspace's stack points at its own params copy. */
    ws_free(&m->lws);
    return ws_make(m, &m->lws, B);
}

int nlp_forecast_loss(nlp_forecast *m, const double *x, long n, const long *ends, int B,
                      int train, nlp_rng *rng, double *loss)
{
    if (!m->params || !m->fitted || B < 1)
        return NLP_EINVAL;
    for (int b = 0; b < B; b++)
        if (ends[b] < nlp_forecast_history(m) - 1 || ends[b] + m->cfg.horizon >= n)
            return NLP_EINVAL;
    m->lws.params = *m->params;
    double den = (double)B * m->cfg.horizon, sse;
    int rc = fwd_bwd(m, &m->lws, x, ends, B, den, train, rng, &sse);
    if (rc == NLP_OK)
        *loss = sse / den;
    return rc;
}

/* ==== Files ============================================================== */

static int set_indexed(nlp_model *f, const char *what, int j, double v, const char *s)
{
    char key[48];
    snprintf(key, sizeof key, "%s.%d", what, j);
    return s ? nlp_model_set_meta(f, key, s) : nlp_model_set_meta_double(f, key, v);
}

int nlp_forecast_add_to_model(const nlp_forecast *m, nlp_model *f)
{
    const nlp_forecast_config *c = &m->cfg;
    int rc = nlp_model_set_meta(f, "model", nlp_forecast_model_name(c->model));
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "inputs", c->inputs);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "window", c->window);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "horizon", c->horizon);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "hidden", c->hidden);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "layers", c->layers);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "dropout", c->dropout);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "difference", c->difference);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "naive_scale", m->naive);
    for (int j = 0; rc == NLP_OK && j < c->inputs; j++) {
        rc = set_indexed(f, "name", j, 0, m->names[j]);
        if (rc == NLP_OK) rc = set_indexed(f, "mean", j, m->mean[j], NULL);
        if (rc == NLP_OK) rc = set_indexed(f, "std", j, m->std[j], NULL);
    }
    if (rc == NLP_OK)
        rc = nlp_model_add_tensor(f, "baseline.weight", m->base, 2,
                                  (size_t[]){(size_t)c->horizon, (size_t)features(m) + 1});
    return rc;
}

int nlp_forecast_save(const nlp_forecast *m, const char *path, const char *const *meta,
                      nlp_error *e)
{
    if (!m->fitted)
        return nlp_error_set(e, NLP_EINVAL, path, 0, "the model is not fitted");
    nlp_model *f;
    int rc = nlp_model_new(&f, NLP_FORECAST_KIND);
    if (rc == NLP_OK)
        rc = nlp_forecast_add_to_model(m, f);
    return nlp_model_finish_save(f, rc, meta, m->params, path, e);
}

/* A finite double metadata value in [lo, hi]. */
static int meta_real(const nlp_model *f, const char *path, const char *key, double lo,
                     double hi, double *v, nlp_error *e)
{
    int rc = nlp_model_meta_double(f, key, v, e);
    if (rc != NLP_OK)
        return rc;
    if (!(*v >= lo && *v <= hi))
        return nlp_error_set(e, NLP_EFORMAT, path, 0, "'%s' is %g, outside [%g, %g]", key, *v,
                             lo, hi);
    return NLP_OK;
}

int nlp_forecast_load(nlp_forecast **out, const char *path, nlp_model **file, nlp_error *e)
{
    *out = NULL;
    if (file)
        *file = NULL;
    nlp_model *f = NULL;
    nlp_forecast *m = NULL;
    int rc = nlp_model_load(&f, path, NLP_FORECAST_KIND, e);
    if (rc != NLP_OK)
        return rc;
    nlp_forecast_config c;
    nlp_forecast_config_default(&c);
    long k, W, H, hid, L, diff;
    double drop, naive;
    const char *name = nlp_model_meta(f, "model");
    if (!name || nlp_forecast_model_parse(name, &c.model) != NLP_OK) {
        rc = nlp_error_set(e, NLP_EFORMAT, path, 0, "missing or unknown model type");
        goto fail;
    }
    if ((rc = nlp_model_meta_range(f, "inputs", 1, NLP_FORECAST_MAX_INPUTS, &k, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "window", 1, NLP_FORECAST_MAX_WINDOW, &W, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "horizon", 1, NLP_FORECAST_MAX_HORIZON, &H, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "hidden", 1, NLP_FORECAST_MAX_HIDDEN, &hid, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "layers", 1, NLP_FORECAST_MAX_LAYERS, &L, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "difference", 0, 1, &diff, e)) != NLP_OK ||
        (rc = meta_real(f, path, "dropout", 0, 0.999, &drop, e)) != NLP_OK ||
        (rc = meta_real(f, path, "naive_scale", 0, 1e300, &naive, e)) != NLP_OK)
        goto fail;
    c.inputs = (int)k;
    c.window = (int)W;
    c.horizon = (int)H;
    c.hidden = (int)hid;
    c.layers = (int)L;
    c.difference = (int)diff;
    c.dropout = (float)drop;
    if (nlp_forecast_config_check(&c, NULL) != NLP_OK) {
        rc = nlp_error_set(e, NLP_EFORMAT, path, 0,
                           "window * inputs is %ld, more than %d", W * k, NLP_FORECAST_MAX_FEATURES);
        goto fail;
    }
    /* Shapes before any allocation sized by them. */
    if ((rc = nlp_model_check_tensor(f, "baseline.weight", 2,
                                     (size_t[]){(size_t)H, (size_t)(W * k) + 1}, e)) != NLP_OK)
        goto fail;
    m = nlp_calloc(1, sizeof *m);
    if (!m) {
        rc = nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
        goto fail;
    }
    m->cfg = c;
    if ((rc = alloc_common(m, NULL)) != NLP_OK) {
        nlp_error_set(e, rc, path, 0, NULL);
        goto fail;
    }
    for (int j = 0; j < c.inputs; j++) {
        char key[48];
        snprintf(key, sizeof key, "name.%d", j);
        const char *nm = nlp_model_meta(f, key);
        if (!nm || !nm[0]) {
            rc = nlp_error_set(e, NLP_EFORMAT, path, 0, "missing '%s'", key);
            goto fail;
        }
        if (!(m->names[j] = nlp_strdup(nm))) {
            rc = nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
            goto fail;
        }
        snprintf(key, sizeof key, "mean.%d", j);
        if ((rc = meta_real(f, path, key, -1e300, 1e300, &m->mean[j], e)) != NLP_OK)
            goto fail;
        snprintf(key, sizeof key, "std.%d", j);
        if ((rc = meta_real(f, path, key, 1e-300, 1e300, &m->std[j], e)) != NLP_OK)
            goto fail;
    }
    m->naive = naive;
    if ((rc = nlp_model_read_tensor(f, "baseline.weight", m->base, 2,
                                    (size_t[]){(size_t)H, (size_t)(W * k) + 1}, e)) != NLP_OK)
        goto fail;
    if (recurrent(&c)) {
        if ((rc = layout(m)) != NLP_OK) {
            nlp_error_set(e, rc, path, 0, rc == NLP_ENOMEM ? NULL : "bad model configuration");
            goto fail;
        }
        if ((rc = nlp_model_check_params(f, m->params, e)) != NLP_OK)
            goto fail;
        if ((rc = finish_layout(m)) != NLP_OK) {
            nlp_error_set(e, rc, path, 0, NULL);
            goto fail;
        }
        if ((rc = nlp_model_read_params(f, m->params, e)) != NLP_OK)
            goto fail;
    }
    m->fitted = 1;
    *out = m;
    if (file)
        *file = f;
    else
        nlp_model_free(f);
    return NLP_OK;
fail:
    if (e && !e->file[0])
        snprintf(e->file, sizeof e->file, "%s", path);
    nlp_forecast_free(m);
    nlp_model_free(f);
    return rc;
}

/* ==== Training =========================================================== */

struct nlp_forecast_trainer {
    nlp_forecast *m;             /* not owned */
    nlp_forecast_train_config cfg;
    nlp_train_task task;
    const double *x;             /* (n,k) not owned */
    long n, ntrain;
    long *tr, ntr;               /* training window ends */
    long *va, nva;               /* validation window ends */
    long *order;                 /* (ntr) this epoch's order of tr */
    long nbatch;                 /* batches per epoch */
    uint32_t crc;                /* of x and ntrain, checked on resume */
    double *vout;                /* (nva, H) validation forecasts */
    long trained;                /* windows stepped over, this process */
    fc_ws *wk;                   /* (nwk) workspaces of the step's shares */
    int nwk;
    /* Position: saved in a checkpoint. */
    long epoch, pos;
    nlp_rng epoch_rng, order_rng, rng;
};

void nlp_forecast_train_config_default(nlp_forecast_train_config *c)
{
    c->batch = 32;
    c->seed = 1;
}

static void workers_free(nlp_forecast_trainer *t)
{
    for (int i = 0; i < t->nwk; i++)
        ws_free(&t->wk[i]);
    nlp_free(t->wk);
    t->wk = NULL;
    t->nwk = 0;
}

void nlp_forecast_trainer_free(nlp_forecast_trainer *t)
{
    if (!t)
        return;
    workers_free(t);
    nlp_free(t->tr);
    nlp_free(t->va);
    nlp_free(t->order);
    nlp_free(t->vout);
    nlp_free(t);
}

static void draw_order(nlp_forecast_trainer *t)
{
    t->epoch_rng = t->order_rng;
    for (long i = 0; i < t->ntr; i++)
        t->order[i] = t->tr[i];
    nlp_rng_shuffle(&t->order_rng, t->order, t->ntr);
    t->pos = 0;
}

/* The current batch: *first window in order, *B windows. */
static void batch(const nlp_forecast_trainer *t, long *first, int *B)
{
    *first = t->pos * (long)t->cfg.batch;
    long left = t->ntr - *first;
    *B = left < t->cfg.batch ? (int)left : t->cfg.batch;
}

static int task_prepare_workers(void *ctx, int W, nlp_error *e)
{
    nlp_forecast_trainer *t = ctx;
    if (W < 1 || W > t->cfg.batch)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "%d training threads for a batch of %d "
                             "windows: every thread needs at least one", W, t->cfg.batch);
    workers_free(t);
    t->wk = nlp_calloc((size_t)W, sizeof *t->wk);
    if (!t->wk)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    for (int i = 0; i < W; i++) {
        int cap = (int)(((long)(i + 1) * t->cfg.batch + W - 1) / W - (long)i * t->cfg.batch / W);
        int rc = ws_make(t->m, &t->wk[i], cap < 1 ? 1 : cap);
        if (rc != NLP_OK) {
            t->nwk = i;
            workers_free(t);
            return nlp_error_set(e, rc, NULL, 0, "training threads: %s", nlp_error_string(rc));
        }
        t->nwk = i + 1;
    }
    return NLP_OK;
}

/*
** Share i of W of the current batch: windows [i*B/W, (i+1)*B/W) of it, the
** gradient of the whole batch's mean loss.  Its dropout rng is seeded from
** the (i+1)-th draw of t->rng (step_end makes the draws), so a checkpoint
** needs only t->rng.
*/
static int task_step_share(void *ctx, int i, int W, float *grad, double *loss, double *count,
                           nlp_error *e)
{
    nlp_forecast_trainer *t = ctx;
    if (W != t->nwk || i < 0 || i >= W)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "training thread %d of %d: prepared for "
                             "%d", i, W, t->nwk);
    long first;
    int B;
    batch(t, &first, &B);
    int b0, nb;
    nlp_train_share(i, W, B, &b0, &nb);
    *loss = 0;
    *count = 0;
    if (nb == 0)
        return NLP_OK;
    fc_ws *w = &t->wk[i];
    w->params = *t->m->params;
    w->params.grad = grad;
    nlp_train_share_rng(&w->rng, &t->rng, i);
    const double den = (double)B * t->m->cfg.horizon;
    double sse;
    int rc = fwd_bwd(t->m, w, t->x, t->order + first + b0, nb, den, 1, &w->rng, &sse);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "training step: %s", nlp_error_string(rc));
    *loss = sse / ((double)nb * t->m->cfg.horizon);
    *count = nb;
    return NLP_OK;
}

static int task_step_end(void *ctx, int W, nlp_error *e)
{
    nlp_forecast_trainer *t = ctx;
    if (W != t->nwk)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "step_end for %d threads, prepared for %d",
                             W, t->nwk);
    long first;
    int B;
    batch(t, &first, &B);
    t->trained += B;
    nlp_train_share_rng_end(&t->rng, W);
    if (++t->pos == t->nbatch) {
        t->epoch++;
        draw_order(t);
        return 1;
    }
    return 0;
}

/* The serial step: one share of one, on worker 0's workspace. */
static int task_step(void *ctx, double *loss, double *count, nlp_error *e)
{
    nlp_forecast_trainer *t = ctx;
    if (t->nwk != 1) {
        int rc = task_prepare_workers(t, 1, e);
        if (rc != NLP_OK)
            return rc;
    }
    int rc = task_step_share(t, 0, 1, t->m->params->grad, loss, count, e);
    return rc != NLP_OK ? rc : task_step_end(t, 1, e);
}

static int task_evaluate(void *ctx, double *metric, nlp_error *e)
{
    nlp_forecast_trainer *t = ctx;
    const int H = t->m->cfg.horizon, k = t->m->cfg.inputs;
    int rc = nlp_forecast_direct(t->m, NLP_FORECAST_OWN, t->x, t->n, t->va, t->nva, t->vout);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "validation: %s", nlp_error_string(rc));
    double se = 0;
    for (long b = 0; b < t->nva; b++)
        for (int h = 0; h < H; h++) {
            double d = t->vout[(size_t)b * H + h] - t->x[(size_t)(t->va[b] + h + 1) * k];
            se += d * d;
        }
    *metric = se / ((double)t->nva * H);
    return NLP_OK;
}

static double task_epoch_fraction(void *ctx)
{
    const nlp_forecast_trainer *t = ctx;
    return (double)t->pos / (double)t->nbatch;
}

static int task_save_model(void *ctx, nlp_model *f, nlp_error *e)
{
    nlp_forecast_trainer *t = ctx;
    int rc = nlp_forecast_add_to_model(t->m, f);
    return rc == NLP_OK ? NLP_OK : nlp_error_set(e, rc, NULL, 0, NULL);
}

static int task_save_state(void *ctx, nlp_model *f, nlp_error *e)
{
    const nlp_forecast_trainer *t = ctx;
    int rc = nlp_model_set_meta_long(f, "forecast.batch", t->cfg.batch);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "forecast.seed", t->cfg.seed);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "forecast.epoch", (uint64_t)t->epoch);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "forecast.pos", (uint64_t)t->pos);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "forecast.rows", (uint64_t)t->n);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "forecast.train_rows", (uint64_t)t->ntrain);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "forecast.crc", t->crc);
    if (rc == NLP_OK) rc = nlp_train_add_rng(f, "forecast.epoch_rng", &t->epoch_rng);
    if (rc == NLP_OK) rc = nlp_train_add_rng(f, "forecast.rng", &t->rng);
    return rc == NLP_OK ? NLP_OK : nlp_error_set(e, rc, NULL, 0, NULL);
}

int nlp_forecast_train_config_read(nlp_forecast_train_config *c, const nlp_model *f,
                                   nlp_error *e)
{
    if (!nlp_model_meta(f, "forecast.batch"))
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "not a checkpoint (a model saved as the best one has no "
                             "training state; resume from the .ckpt file)");
    uint64_t b, seed;
    int rc;
    if ((rc = nlp_model_meta_u64(f, "forecast.batch", MAX_BATCH, &b, e)) != NLP_OK ||
        (rc = nlp_model_meta_u64(f, "forecast.seed", UINT64_MAX, &seed, e)) != NLP_OK)
        return rc;
    if (b < 1)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint: batch is 0");
    c->batch = (int)b;
    c->seed = seed;
    return NLP_OK;
}

static int task_load_state(void *ctx, const nlp_model *f, nlp_error *e)
{
    nlp_forecast_trainer *t = ctx;
    nlp_forecast_train_config c = t->cfg;
    int rc = nlp_forecast_train_config_read(&c, f, e);
    if (rc != NLP_OK)
        return rc;
    if (c.batch != t->cfg.batch || c.seed != t->cfg.seed)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "checkpoint: batch or seed differ from the trainer's");
    uint64_t rows, trows, crc, epoch, pos;
    if ((rc = nlp_model_meta_u64(f, "forecast.rows", UINT64_MAX, &rows, e)) != NLP_OK ||
        (rc = nlp_model_meta_u64(f, "forecast.train_rows", UINT64_MAX, &trows, e)) != NLP_OK ||
        (rc = nlp_model_meta_u64(f, "forecast.crc", UINT32_MAX, &crc, e)) != NLP_OK)
        return rc;
    if (rows != (uint64_t)t->n || trows != (uint64_t)t->ntrain || crc != t->crc)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "the series differs from the one the checkpoint was made with");
    if ((rc = nlp_model_meta_u64(f, "forecast.epoch", LONG_MAX, &epoch, e)) != NLP_OK ||
        (rc = nlp_model_meta_u64(f, "forecast.pos", (uint64_t)t->nbatch - 1, &pos, e)) != NLP_OK)
        return rc;
    nlp_rng er, r;
    if ((rc = nlp_train_read_rng(f, "forecast.epoch_rng", &er, e)) != NLP_OK ||
        (rc = nlp_train_read_rng(f, "forecast.rng", &r, e)) != NLP_OK)
        return rc;
    t->order_rng = er;
    draw_order(t); /* the epoch's order, redrawn as it was drawn */
    t->pos = (long)pos;
    t->epoch = (long)epoch;
    t->rng = r;
    return NLP_OK;
}

int nlp_forecast_trainer_new(nlp_forecast_trainer **out, nlp_forecast *m,
                             const nlp_forecast_train_config *cfg, const double *x, long n,
                             long ntrain, nlp_error *e)
{
    *out = NULL;
    if (!m->params || !m->fitted)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "a fitted recurrent model is needed");
    if (cfg->batch < 1 || cfg->batch > MAX_BATCH)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "batch out of range");
    if (ntrain < 1 || ntrain > n)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "training rows out of range");
    const long hist = nlp_forecast_history(m), H = m->cfg.horizon;
    long ntr = ntrain - hist - H + 1, nva = 0;
    if (ntr < 1)
        return nlp_error_set(e, NLP_EEMPTY, NULL, 0,
                             "%ld training rows; a window of %ld rows and a horizon of %ld "
                             "need at least %ld", ntrain, hist, H, hist + H);
    /* Validation windows: the first target at ntrain or later. */
    long v0 = ntrain - 1 > hist - 1 ? ntrain - 1 : hist - 1;
    if (n - H - v0 > 0 && ntrain < n)
        nva = n - H - v0;
    nlp_forecast_trainer *t = nlp_calloc(1, sizeof *t);
    if (!t)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    t->m = m;
    t->cfg = *cfg;
    t->x = x;
    t->n = n;
    t->ntrain = ntrain;
    t->ntr = ntr;
    t->nva = nva;
    t->nbatch = (ntr + cfg->batch - 1) / cfg->batch;
    t->tr = nlp_malloc((size_t)ntr * sizeof *t->tr);
    t->order = nlp_malloc((size_t)ntr * sizeof *t->order);
    if (nva) {
        t->va = nlp_malloc((size_t)nva * sizeof *t->va);
        t->vout = nlp_malloc((size_t)nva * (size_t)H * sizeof *t->vout);
    }
    if (!t->tr || !t->order || (nva && (!t->va || !t->vout))) {
        nlp_forecast_trainer_free(t);
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    }
    for (long i = 0; i < ntr; i++)
        t->tr[i] = hist - 1 + i;
    for (long i = 0; i < nva; i++)
        t->va[i] = v0 + i;
    const size_t k = (size_t)m->cfg.inputs;
    t->crc = nlp_crc32(0, x, (size_t)n * k * sizeof *x);
    int64_t nt = ntrain;
    t->crc = nlp_crc32(t->crc, &nt, sizeof nt);
    nlp_rng_seed(&t->order_rng, cfg->seed);
    nlp_rng_split(&t->order_rng, &t->rng);
    draw_order(t);
    int rc = task_prepare_workers(t, 1, e);
    if (rc != NLP_OK) {
        nlp_forecast_trainer_free(t);
        return rc;
    }
    t->task.ctx = t;
    t->task.kind = NLP_FORECAST_KIND;
    t->task.metric = "mse";
    t->task.higher_is_better = 0;
    t->task.unit = "windows";
    t->task.params = m->params;
    t->task.step = task_step;
    t->task.evaluate = nva ? task_evaluate : NULL;
    t->task.epoch_fraction = task_epoch_fraction;
    t->task.save_model = task_save_model;
    t->task.save_state = task_save_state;
    t->task.load_state = task_load_state;
    t->task.prepare_workers = task_prepare_workers;
    t->task.step_share = task_step_share;
    t->task.step_end = task_step_end;
    *out = t;
    return NLP_OK;
}

const nlp_train_task *nlp_forecast_trainer_task(nlp_forecast_trainer *t)
{
    return &t->task;
}

long nlp_forecast_trainer_windows(const nlp_forecast_trainer *t, long *valid)
{
    if (valid)
        *valid = t->nva;
    return t->ntr;
}
