/*
** The focus of this file is the forecaster of lib/forecast.c: the
** persistence and linear baselines against values computed by hand, the
** --difference round trip through a model (difference, forecast,
** integrate), the gradient of the mean squared error through the whole
** model checked against finite differences (every cell, two layers, two
** inputs, a horizon of 2), the parallel step's shares summing to the
** serial gradient, a learnable synthetic series learned to a stated MSE
** through the harness, save/load (every number range-checked), and
** allocation faults over the constructor, fit, trainer, save and load:
** every allocation failed in turn, alone and with all later ones, gives
** NLP_ENOMEM and leaves the heap as it was.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradcheck.h"
#include "nlp/alloc.h"
#include "nlp/forecast.h"
#include "nlp/model.h"
#include "nlp/params.h"
#include "nlp/rng.h"
#include "nlp/series.h"
#include "nlp/train.h"

/* The heap in use, to find leaks on the failure paths. */
#include "heapcheck.h"


static char tmpdir[256];

static void path_in(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static const char *const NAMES[] = {"y", "u", "v"};

static nlp_forecast *make(nlp_forecast_model kind, int k, int W, int H, int diff, int hidden,
                          int layers)
{
    nlp_forecast_config c;
    nlp_forecast_config_default(&c);
    c.model = kind;
    c.inputs = k;
    c.window = W;
    c.horizon = H;
    c.difference = diff;
    c.hidden = hidden;
    c.layers = layers;
    nlp_rng r;
    nlp_rng_seed(&r, 7);
    nlp_forecast *m;
    nlp_error e;
    assert_int_equal(nlp_forecast_new(&m, &c, NAMES, &r, &e), NLP_OK);
    return m;
}

/* ==== Baselines ========================================================== */

static void test_baselines_by_hand(void **state)
{
    (void)state;
    /* x = 1 3 2 5 4: the pairs (x_t, x_t+1) are (1,3) (3,2) (2,5) (5,4);
    ** least squares: slope Sxy/Sxx = 0.5/8.75, intercept 3.5 - slope*2.75. */
    const double x[] = {1, 3, 2, 5, 4};
    nlp_forecast *m = make(NLP_FORECAST_LINEAR, 1, 1, 1, 0, 4, 1);
    nlp_error e;
    assert_int_equal(nlp_forecast_fit(m, x, 5, &e), NLP_OK);
    const double slope = 0.5 / 8.75, icpt = 3.5 - slope * 2.75;
    double out[3];
    assert_int_equal(nlp_forecast_predict(m, NLP_FORECAST_OWN, x, 5, 1, out, &e), NLP_OK);
    assert_true(fabs(out[0] - (icpt + slope * 4)) < 1e-4);
    /* Iterated: the forecast becomes the next input. */
    assert_int_equal(nlp_forecast_predict(m, NLP_FORECAST_OWN, x, 5, 2, out, &e), NLP_OK);
    assert_true(fabs(out[1] - (icpt + slope * out[0])) < 1e-4);
    /* Persistence: the last value, every step. */
    assert_int_equal(nlp_forecast_predict(m, NLP_FORECAST_BY_PERSISTENCE, x, 5, 3, out, &e),
                     NLP_OK);
    assert_true(out[0] == 4 && out[1] == 4 && out[2] == 4);
    /* Rolling scores of persistence: errors 2 -1 3 -1. */
    nlp_forecast_score sc;
    assert_int_equal(nlp_forecast_score_series(m, NLP_FORECAST_BY_PERSISTENCE, x, 5, 1, &sc,
                                               NULL, &e), NLP_OK);
    assert_int_equal(sc.n, 4);
    assert_true(fabs(sc.mse - 15.0 / 4) < 1e-12);
    assert_true(fabs(sc.mae - 7.0 / 4) < 1e-12);
    assert_true(fabs(sc.mape - 100.0 * (2.0 / 3 + 1.0 / 2 + 3.0 / 5 + 1.0 / 4) / 4) < 1e-9);
    assert_true(fabs(nlp_forecast_naive_scale(m) - 7.0 / 4) < 1e-12);
    assert_true(fabs(sc.mase - 1) < 1e-12);
    /* The linear baseline's rolling one-step forecasts, by hand. */
    double pred[4];
    assert_int_equal(nlp_forecast_score_series(m, NLP_FORECAST_BY_LINEAR, x, 5, 1, &sc, pred,
                                               &e), NLP_OK);
    double se = 0;
    for (int t = 0; t < 4; t++) {
        double f = icpt + slope * x[t];
        assert_true(fabs(pred[t] - f) < 1e-4);
        se += (f - x[t + 1]) * (f - x[t + 1]);
    }
    assert_true(fabs(sc.mse - se / 4) < 1e-4);
    /* Too short for the window and a step. */
    assert_int_equal(nlp_forecast_score_series(m, NLP_FORECAST_BY_LINEAR, x, 1, 1, &sc, NULL,
                                               &e), NLP_EEMPTY);
    nlp_forecast_free(m);

    /* Too few rows to fit. */
    m = make(NLP_FORECAST_LINEAR, 1, 4, 2, 1, 4, 1);
    assert_int_equal(nlp_forecast_fit(m, x, 5, &e), NLP_EEMPTY);
    assert_non_null(strstr(e.text, "need at least 7"));
    nlp_forecast_free(m);
}

static void test_difference_round_trip(void **state)
{
    (void)state;
    /* x = 1 3 6 10 15 21: differences 2 3 4 5 6 grow by 1, which the
    ** linear model of the differences (window 2) fits exactly; its
    ** forecasts integrated back give 28, 36, 45. */
    const double x[] = {1, 3, 6, 10, 15, 21};
    nlp_forecast *m = make(NLP_FORECAST_LINEAR, 1, 2, 1, 1, 4, 1);
    nlp_error e;
    assert_int_equal(nlp_forecast_fit(m, x, 6, &e), NLP_OK);
    assert_int_equal(nlp_forecast_history(m), 3);
    double mean, std;
    nlp_forecast_stats(m, 0, &mean, &std);
    assert_true(fabs(mean - 4) < 1e-12); /* of the differences */
    double out[3];
    assert_int_equal(nlp_forecast_predict(m, NLP_FORECAST_OWN, x, 6, 3, out, &e), NLP_OK);
    assert_true(fabs(out[0] - 28) < 1e-3);
    assert_true(fabs(out[1] - 36) < 1e-3);
    assert_true(fabs(out[2] - 45) < 1e-3);
    /* The same as differencing by hand and integrating the forecasts of
    ** the differences. */
    double d[5], dd[8], back[9];
    nlp_series_difference(d, x, 6, 1);
    memcpy(dd, d, sizeof d);
    dd[5] = out[0] - x[5];
    dd[6] = out[1] - out[0];
    dd[7] = out[2] - out[1];
    nlp_series_integrate(back, x, dd, 8, 1);
    for (int i = 0; i < 6; i++)
        assert_true(back[i] == x[i]);
    for (int i = 0; i < 3; i++)
        assert_true(fabs(back[6 + i] - out[i]) < 1e-9);
    /* Persistence is the last level whatever the representation. */
    assert_int_equal(nlp_forecast_predict(m, NLP_FORECAST_BY_PERSISTENCE, x, 6, 1, out, &e),
                     NLP_OK);
    assert_true(out[0] == 21);
    nlp_forecast_free(m);
}

/* ==== Gradient =========================================================== */

typedef struct gfx {
    nlp_forecast *m;
    const double *x;
    long n;
    const long *ends;
    int B;
} gfx;

static double gfx_loss(void *ctx)
{
    gfx *g = ctx;
    double loss;
    nlp_params *p = nlp_forecast_params(g->m);
    nlp_params_zero_grad(p);
    assert_int_equal(nlp_forecast_loss(g->m, g->x, g->n, g->ends, g->B, 0, NULL, &loss), NLP_OK);
    return loss;
}

static void series3(double *x, long n)
{
    nlp_rng r;
    nlp_rng_seed(&r, 3);
    for (long t = 0; t < n; t++) {
        x[t * 3] = sin(0.4 * (double)t) + 0.3 * nlp_rng_normal(&r);
        x[t * 3 + 1] = cos(0.3 * (double)t);
        x[t * 3 + 2] = nlp_rng_normal(&r);
    }
}

static void test_gradient(void **state)
{
    (void)state;
    enum { N = 40 };
    double x[N * 3];
    series3(x, N);
    const long ends[] = {5, 17, 30, 9};
    nlp_forecast_model kinds[] = {NLP_FORECAST_LSTM, NLP_FORECAST_GRU, NLP_FORECAST_RNN};
    for (int c = 0; c < 3; c++)
        for (int diff = 0; diff < 2; diff++) {
            nlp_forecast *m = make(kinds[c], 3, 4, 2, diff, 5, 2);
            nlp_error e;
            assert_int_equal(nlp_forecast_fit(m, x, N, &e), NLP_OK);
            assert_int_equal(nlp_forecast_reserve(m, 4), NLP_OK);
            gfx g = {m, x, N, ends, 4};
            nlp_params *p = nlp_forecast_params(m);
            gfx_loss(&g);
            float *grad = malloc(p->n * sizeof *grad);
            assert_non_null(grad);
            memcpy(grad, p->grad, p->n * sizeof *grad);
            gc_options o = gc_defaults();
            o.label = nlp_forecast_model_name(kinds[c]);
            gc_result r = gc_check(p->data, grad, p->n, gfx_loss, &g, &o);
            assert_true(gc_ok(&r, &o));
            /* A wrong gradient is caught (the check can fail). */
            grad[p->views[nlp_params_index(p, "head.weight")].offset] *= 1.5f;
            r = gc_check(p->data, grad, p->n, gfx_loss, &g, &o);
            assert_false(gc_ok(&r, &o));
            free(grad);
            nlp_forecast_free(m);
        }
}

/* The parallel step's shares add up to the serial step's gradient. */
static void test_shares(void **state)
{
    (void)state;
    enum { N = 60 };
    double x[N * 3];
    series3(x, N);
    nlp_forecast *m = make(NLP_FORECAST_LSTM, 3, 5, 1, 0, 6, 1);
    nlp_error e;
    assert_int_equal(nlp_forecast_fit(m, x, 45, &e), NLP_OK);
    nlp_forecast_train_config tc;
    nlp_forecast_train_config_default(&tc);
    tc.batch = 7;
    nlp_forecast_trainer *t1, *t2;
    assert_int_equal(nlp_forecast_trainer_new(&t1, m, &tc, x, N, 45, &e), NLP_OK);
    assert_int_equal(nlp_forecast_trainer_new(&t2, m, &tc, x, N, 45, &e), NLP_OK);
    long nva;
    assert_int_equal(nlp_forecast_trainer_windows(t1, &nva), 45 - 5 - 1 + 1);
    assert_int_equal(nva, N - 45);
    const nlp_train_task *a = nlp_forecast_trainer_task(t1), *b = nlp_forecast_trainer_task(t2);
    nlp_params *p = nlp_forecast_params(m);
    float *serial = calloc(p->n, sizeof *serial), *g0 = calloc(p->n, sizeof *g0),
          *g1 = calloc(p->n, sizeof *g1);
    assert_true(serial && g0 && g1);
    double loss, count, l0, c0, l1, c1;
    assert_int_equal(b->prepare_workers(b->ctx, 2, &e), NLP_OK);
    for (int step = 0; step < 7; step++) { /* past an epoch's end */
        nlp_params_zero_grad(p);
        int ra = a->step(a->ctx, &loss, &count, &e);
        assert_true(ra == 0 || ra == 1);
        memcpy(serial, p->grad, p->n * sizeof *serial);
        memset(g0, 0, p->n * sizeof *g0);
        memset(g1, 0, p->n * sizeof *g1);
        assert_int_equal(b->step_share(b->ctx, 0, 2, g0, &l0, &c0, &e), NLP_OK);
        assert_int_equal(b->step_share(b->ctx, 1, 2, g1, &l1, &c1, &e), NLP_OK);
        assert_int_equal(b->step_end(b->ctx, 2, &e), ra);
        assert_true(c0 + c1 == count);
        assert_true(fabs((l0 * c0 + l1 * c1) / count - loss) < 1e-6);
        for (size_t i = 0; i < p->n; i++)
            assert_true(fabsf(g0[i] + g1[i] - serial[i]) <= 1e-5f + 1e-4f * fabsf(serial[i]));
    }
    double v;
    assert_int_equal(a->evaluate(a->ctx, &v, &e), NLP_OK);
    assert_true(isfinite(v) && v > 0);
    free(serial);
    free(g0);
    free(g1);
    nlp_forecast_trainer_free(t1);
    nlp_forecast_trainer_free(t2);
    nlp_forecast_free(m);
}

/* ==== Learning =========================================================== */

/*
** A learnable series: a sine of period 16 plus a slower one, noise-free.
** An LSTM of 16 units over a window of 16 trained by the harness for 300
** steps of 16 windows must bring the validation MSE below 0.005 (the
** series' variance is 0.625; the linear baseline, which an exact linear
** recurrence of sines also fits, sets the scale of "good").
*/
static void test_learns_sines(void **state)
{
    (void)state;
    enum { N = 400 };
    double x[N];
    for (int t = 0; t < N; t++)
        x[t] = sin(2 * M_PI * t / 16.0) + 0.5 * sin(2 * M_PI * t / 37.0);
    nlp_forecast *m = make(NLP_FORECAST_LSTM, 1, 16, 1, 0, 16, 1);
    nlp_error e;
    assert_int_equal(nlp_forecast_fit(m, x, 320, &e), NLP_OK);
    nlp_forecast_train_config tc;
    nlp_forecast_train_config_default(&tc);
    tc.batch = 16;
    nlp_forecast_trainer *ft;
    assert_int_equal(nlp_forecast_trainer_new(&ft, m, &tc, x, N, 320, &e), NLP_OK);
    nlp_train_config c;
    nlp_train_config_default(&c);
    char out[300];
    path_in(out, sizeof out, "sines.model");
    c.output = out;
    c.log = NULL;
    c.epochs = 0;
    c.max_steps = 300;
    c.valid_every = 100;
    c.optim.lr = 0.01;
    nlp_train *run;
    assert_int_equal(nlp_train_new(&run, &c, nlp_forecast_trainer_task(ft), &e), NLP_OK);
    nlp_train_result res;
    assert_int_equal(nlp_train_run(run, &res, &e), NLP_OK);
    nlp_train_free(run);
    nlp_forecast_trainer_free(ft);
    nlp_forecast_free(m);
    /* The best model on disk, scored on the validation part. */
    assert_int_equal(nlp_forecast_load(&m, out, NULL, &e), NLP_OK);
    nlp_forecast_score sc, pers;
    assert_int_equal(nlp_forecast_score_series(m, NLP_FORECAST_OWN, x + 320 - 16, N - 320 + 16,
                                               1, &sc, NULL, &e), NLP_OK);
    assert_int_equal(nlp_forecast_score_series(m, NLP_FORECAST_BY_PERSISTENCE, x + 320 - 16,
                                               N - 320 + 16, 1, &pers, NULL, &e), NLP_OK);
    fprintf(stderr, "sines: validation mse %.5f (persistence %.5f) after %ld steps\n", sc.mse,
            pers.mse, res.steps);
    assert_true(sc.mse < 0.005);
    assert_true(sc.mse < pers.mse / 10);
    assert_true(fabs(res.best_metric - sc.mse) < 1e-6 * (1 + sc.mse));
    nlp_forecast_free(m);
    unlink(out);
}

/* ==== Files ============================================================== */

static void test_save_load(void **state)
{
    (void)state;
    enum { N = 50 };
    double x[N * 3];
    series3(x, N);
    char path[300], bad[300];
    path_in(path, sizeof path, "f.model");
    path_in(bad, sizeof bad, "bad.model");
    for (int kind = 0; kind <= NLP_FORECAST_PERSISTENCE; kind++) {
        nlp_forecast *m = make((nlp_forecast_model)kind, 3, 4, 3, kind & 1, 6, 2);
        nlp_error e;
        assert_int_equal(nlp_forecast_fit(m, x, 40, &e), NLP_OK);
        assert_int_equal(nlp_forecast_save(m, path, NULL, &e), NLP_OK);
        nlp_forecast *l;
        assert_int_equal(nlp_forecast_load(&l, path, NULL, &e), NLP_OK);
        assert_string_equal(nlp_forecast_name(l, 2), "v");
        double a[3], b[3];
        for (int how = 0; how < 3; how++) {
            assert_int_equal(nlp_forecast_predict(m, (nlp_forecast_method)how, x, N, 3, a, &e),
                             NLP_OK);
            assert_int_equal(nlp_forecast_predict(l, (nlp_forecast_method)how, x, N, 3, b, &e),
                             NLP_OK);
            for (int i = 0; i < 3; i++)
                assert_true(a[i] == b[i]);
        }
        /* Multivariate and beyond the horizon: refused, said why. */
        assert_int_equal(nlp_forecast_predict(l, NLP_FORECAST_OWN, x, N, 4, a, &e),
                         NLP_EINVAL);
        assert_non_null(strstr(e.text, "unknown"));
        nlp_forecast_free(l);
        nlp_forecast_free(m);
    }
    /* Every number range-checked: a file whose metadata lies is refused. */
    static const char *const lies[][2] = {
        {"window", "0"}, {"window", "100000"}, {"inputs", "-1"}, {"horizon", "x"},
        {"hidden", "7"}, {"layers", "3"}, {"difference", "2"}, {"dropout", "1.5"},
        {"std.1", "0"}, {"mean.0", "nan"}, {"model", "arima"}, {"name.2", ""},
        {"naive_scale", "-1"}, {"window", "700"},
    };
    nlp_forecast *m = make(NLP_FORECAST_GRU, 3, 4, 3, 0, 6, 2);
    nlp_error e;
    assert_int_equal(nlp_forecast_fit(m, x, 40, &e), NLP_OK);
    assert_int_equal(nlp_forecast_save(m, path, NULL, &e), NLP_OK);
    nlp_forecast_free(m);
    for (size_t i = 0; i < sizeof lies / sizeof *lies; i++) {
        nlp_model *f;
        assert_int_equal(nlp_model_load(&f, path, NULL, &e), NLP_OK);
        assert_int_equal(nlp_model_set_meta(f, lies[i][0], lies[i][1]), NLP_OK);
        assert_int_equal(nlp_model_save(f, bad, &e), NLP_OK);
        nlp_model_free(f);
        nlp_forecast *l = (nlp_forecast *)1;
        int rc = nlp_forecast_load(&l, bad, NULL, &e);
        if (rc != NLP_EFORMAT)
            fprintf(stderr, "lie %s=%s: %d %s\n", lies[i][0], lies[i][1], rc, e.text);
        assert_int_equal(rc, NLP_EFORMAT);
        assert_null(l);
        assert_string_equal(e.file, bad);
    }
    /* Another tool's model. */
    nlp_model *f;
    assert_int_equal(nlp_model_new(&f, "charlm"), NLP_OK);
    assert_int_equal(nlp_model_save(f, bad, &e), NLP_OK);
    nlp_model_free(f);
    nlp_forecast *l;
    assert_int_equal(nlp_forecast_load(&l, bad, NULL, &e), NLP_EKIND);
    /* Every truncated prefix of a model file is refused, never a crash. */
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    static unsigned char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, in);
    fclose(in);
    assert_true(len > 100 && len < sizeof buf);
    for (size_t cut = 0; cut < len; cut += 1 + cut / 64) {
        FILE *o = fopen(bad, "wb");
        assert_non_null(o);
        assert_int_equal(fwrite(buf, 1, cut, o), cut);
        assert_int_equal(fclose(o), 0);
        l = (nlp_forecast *)1;
        int rc = nlp_forecast_load(&l, bad, NULL, &e);
        assert_true(rc == NLP_ETRUNCATED || rc == NLP_EFORMAT);
        assert_null(l);
    }
    unlink(path);
    unlink(bad);
}

/* ==== Faults ============================================================= */

static int op_all(const char *path)
{
    enum { N = 30 };
    double x[N * 3];
    series3(x, N);
    nlp_forecast_config c;
    nlp_forecast_config_default(&c);
    c.inputs = 3;
    c.window = 3;
    c.horizon = 2;
    c.hidden = 4;
    c.layers = 2;
    nlp_rng r;
    nlp_rng_seed(&r, 1);
    nlp_forecast *m = (nlp_forecast *)1, *l = NULL;
    nlp_error e;
    int rc = nlp_forecast_new(&m, &c, NAMES, &r, &e);
    if (rc != NLP_OK) {
        assert_null(m);
        return rc;
    }
    double out[2];
    nlp_forecast_trainer *t = NULL;
    nlp_forecast_train_config tc;
    nlp_forecast_train_config_default(&tc);
    if ((rc = nlp_forecast_fit(m, x, 24, &e)) == NLP_OK &&
        (rc = nlp_forecast_trainer_new(&t, m, &tc, x, N, 24, &e)) == NLP_OK &&
        (rc = nlp_forecast_save(m, path, NULL, &e)) == NLP_OK &&
        (rc = nlp_forecast_load(&l, path, NULL, &e)) == NLP_OK)
        rc = nlp_forecast_predict(l, NLP_FORECAST_OWN, x, N, 2, out, &e);
    nlp_forecast_trainer_free(t);
    nlp_forecast_free(l);
    nlp_forecast_free(m);
    return rc;
}

/* op_all on a path with no file before. */
static int op_all_fresh(void *path)
{
    unlink(path);
    return op_all(path);
}

static void test_faults(void **state)
{
    (void)state;
    char path[300];
    path_in(path, sizeof path, "faults.model");
    assert_true(fault_loop("forecast: new, fit, trainer, save, load, predict", op_all_fresh,
                           path) > 10);
    unlink(path);
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_forecast.XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_baselines_by_hand),
        cmocka_unit_test(test_difference_round_trip),
        cmocka_unit_test(test_gradient),
        cmocka_unit_test(test_shares),
        cmocka_unit_test(test_learns_sines),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
