/*
** fuzz_forecast: loading a forecast model file (nlp_forecast_load, kind
** "forecast" of nlp/model.h), then everything a loaded model offers:
** accessors, forecasts by each method, rolling scores, a save and reload,
** and for a recurrent model a checkpoint restore and one training step.
**
** Input layout:
**   byte 0   bit 0: before loading, rewrite the declared size and the CRC
**            to match the bytes (as fuzz_model); bit 1: also forecast
**            beyond the horizon (iterated; refused for k > 1); bit 2: save
**            the loaded model and load it again
**   rest     the model file
**
** The table the forecasts are made on is synthetic, table() below; the
** checkpoint seed of make-seeds.c was trained on the same table, so its
** restore gets past the table's checksum.
**
** Checks: a failure is a documented code with a message naming the file,
** and nothing is returned; a loaded model's configuration passes
** nlp_forecast_config_check, its names, standardisation and history agree
** with it, each method forecasts on enough history and refuses too little;
** a saved and reloaded model forecasts the same numbers; a checkpoint's
** state restores or is refused with NLP_EFORMAT, and a step then runs.
*/
#include "fuzz.h"

#include <math.h>

#include "nlp/forecast.h"

/* Rows of the synthetic table and its training part (make-seeds.c). */
#define TABLE_ROWS 48
#define TABLE_TRAIN 40

static void put_le(uint8_t *p, uint64_t x, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

/* x (n,k): a deterministic pattern, the same as make-seeds.c's. */
static double *table(long n, int k)
{
    double *x = malloc((size_t)n * (size_t)k * sizeof *x);
    FUZZ_CHECK(x != NULL);
    for (long i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            x[i * k + j] = (double)((i * 7 + j * 3) % 11) - 5 + 0.25 * j + 0.1 * (double)i;
    return x;
}

/* A fresh directory to save to (atomic saves rename, so not a memfd);
** removed after each use, since libFuzzer ends without running atexit. */
static const char *save_dir(char *dir, size_t size)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, size, "%s/nlp-fuzz-forecast.XXXXXX", t && t[0] ? t : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    return dir;
}

/* Forecasts of every method on x (n,k); into out (3, steps). */
static void forecast_all(nlp_forecast *m, const double *x, long n, long steps, double *out)
{
    const nlp_forecast_config *c = nlp_forecast_get_config(m);
    nlp_error e;
    for (int how = 0; how < 3; how++) {
        nlp_error_clear(&e);
        int rc = nlp_forecast_predict(m, (nlp_forecast_method)how, x, n, steps,
                                      out + how * steps, &e);
        /* Persistence needs no future of the other inputs. */
        if (steps > c->horizon && c->inputs > 1 && how != NLP_FORECAST_BY_PERSISTENCE) {
            FUZZ_CHECK(rc == NLP_EINVAL);
            fuzz_check_error(rc, &e);
        } else {
            FUZZ_CHECK(rc == NLP_OK);
        }
    }
}

static void checkpoint(nlp_forecast *m, const nlp_model *file)
{
    const nlp_forecast_config *c = nlp_forecast_get_config(m);
    nlp_error e;
    nlp_forecast_train_config tc;
    nlp_forecast_train_config_default(&tc);
    int rc = nlp_forecast_train_config_read(&tc, file, &e);
    if (rc != NLP_OK) {
        FUZZ_CHECK(rc == NLP_EFORMAT);
        fuzz_check_error(rc, &e);
        return;
    }
    /* The workspace is sized by the batch: keep it small. */
    if (tc.batch < 1 || tc.batch > 64)
        return;
    double *x = table(TABLE_ROWS, c->inputs);
    nlp_forecast_trainer *t = NULL;
    rc = nlp_forecast_trainer_new(&t, m, &tc, x, TABLE_ROWS, TABLE_TRAIN, &e);
    if (rc == NLP_OK) {
        long valid = -1;
        FUZZ_CHECK(nlp_forecast_trainer_windows(t, &valid) > 0 && valid >= 0);
        const nlp_train_task *task = nlp_forecast_trainer_task(t);
        rc = task->load_state(task->ctx, file, &e);
        if (rc == NLP_OK) {
            double loss, count;
            nlp_params_zero_grad(nlp_forecast_params(m));
            rc = task->step(task->ctx, &loss, &count, &e);
            FUZZ_CHECK(rc == 0 || rc == 1 || rc == NLP_ERANGE);
        } else {
            FUZZ_CHECK(rc == NLP_EFORMAT);
            fuzz_check_error(rc, &e);
        }
        nlp_forecast_trainer_free(t);
    } else {
        FUZZ_CHECK(t == NULL);
        FUZZ_CHECK(rc == NLP_EEMPTY || rc == NLP_ENOMEM);
        fuzz_check_error(rc, &e);
    }
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = { data, size };
    uint8_t flags = fuzz_byte(&in);
    uint8_t *buf = (uint8_t *)fuzz_dup(in.p, in.n);
    size_t n = in.n;
    if ((flags & 1) && n >= 28) {
        put_le(buf + 16, n, 8);
        put_le(buf + n - 4, nlp_crc32(0, buf, n - 4), 4);
    }
    const char *path = fuzz_path(buf, n);
    nlp_forecast *m = (nlp_forecast *)1;
    nlp_model *file = (nlp_model *)1;
    nlp_error e;
    nlp_error_clear(&e);
    int rc = nlp_forecast_load(&m, path, &file, &e);
    if (rc != NLP_OK) {
        FUZZ_CHECK(m == NULL && file == NULL);
        fuzz_check_error(rc, &e);
        FUZZ_CHECK(strcmp(e.file, path) == 0);
        free(buf);
        return 0;
    }
    FUZZ_CHECK(m != NULL && file != NULL);
    FUZZ_CHECK(strcmp(nlp_model_kind(file), NLP_FORECAST_KIND) == 0);

    const nlp_forecast_config *c = nlp_forecast_get_config(m);
    FUZZ_CHECK(nlp_forecast_config_check(c, &e) == NLP_OK);
    int k = c->inputs, H = c->horizon;
    for (int j = 0; j < k; j++) {
        const char *name = nlp_forecast_name(m, j);
        FUZZ_CHECK(name != NULL && name[0] != '\0');
        double mean, std;
        nlp_forecast_stats(m, j, &mean, &std);
        FUZZ_CHECK(isfinite(mean) && isfinite(std) && std > 0);
    }
    FUZZ_CHECK(nlp_forecast_name(m, k) == NULL && nlp_forecast_name(m, -1) == NULL);
    long hist = nlp_forecast_history(m);
    FUZZ_CHECK(hist == c->window + (c->difference ? 1 : 0));
    int recurrent = c->model <= NLP_FORECAST_RNN;
    FUZZ_CHECK((nlp_forecast_params(m) != NULL) == recurrent);
    double naive = nlp_forecast_naive_scale(m);
    FUZZ_CHECK(naive >= 0 && isfinite(naive));

    /* Forecasts on just enough history, and a refusal on one row less. */
    long rows = hist + H + 2;
    double *x = table(rows, k);
    long steps = (flags & 2) ? H + 3 : H;
    double *out = malloc(3 * (size_t)steps * sizeof *out);
    FUZZ_CHECK(out != NULL);
    forecast_all(m, x, hist, steps, out);
    for (int how = 0; how < 3; how++) {
        FUZZ_CHECK(nlp_forecast_predict(m, (nlp_forecast_method)how, x, hist - 1, 1, out, &e)
                   == NLP_EINVAL);
    }
    forecast_all(m, x, rows, steps, out);
    long ends[2] = { hist - 1, rows - 1 };
    double *dout = malloc(2 * (size_t)H * sizeof *dout);
    FUZZ_CHECK(dout != NULL);
    FUZZ_CHECK(nlp_forecast_direct(m, NLP_FORECAST_OWN, x, rows, ends, 2, dout) == NLP_OK);
    ends[0] = hist - 2;
    FUZZ_CHECK(nlp_forecast_direct(m, NLP_FORECAST_BY_LINEAR, x, rows, ends, 2, dout)
               == NLP_EINVAL);
    free(dout);
    for (int h = 1; h <= H && h <= 2; h++) {
        nlp_forecast_score sc;
        rc = nlp_forecast_score_series(m, NLP_FORECAST_OWN, x, rows, h, &sc, NULL, &e);
        FUZZ_CHECK(rc == NLP_OK);
        FUZZ_CHECK(sc.n == rows - hist - h + 1);
    }

    if (flags & 4) {
        char dir[256], sp[300];
        snprintf(sp, sizeof sp, "%s/m", save_dir(dir, sizeof dir));
        rc = nlp_forecast_save(m, sp, NULL, &e);
        FUZZ_CHECK(rc == NLP_OK);
        nlp_forecast *r = NULL;
        rc = nlp_forecast_load(&r, sp, NULL, &e);
        FUZZ_CHECK(rc == NLP_OK);
        unlink(sp);
        FUZZ_CHECK(rmdir(dir) == 0);
        FUZZ_CHECK(memcmp(nlp_forecast_get_config(r), c, sizeof *c) == 0);
        for (int j = 0; j < k; j++)
            FUZZ_CHECK(strcmp(nlp_forecast_name(r, j), nlp_forecast_name(m, j)) == 0);
        double *again = malloc(3 * (size_t)steps * sizeof *again);
        FUZZ_CHECK(again != NULL);
        forecast_all(r, x, rows, steps, again);
        /* (Refused forecasts left both buffers unwritten.) */
        for (long i = 0; i < 3 * steps; i++)
            if ((steps <= H || k == 1 || i / steps == NLP_FORECAST_BY_PERSISTENCE))
                FUZZ_CHECK(memcmp(&again[i], &out[i], sizeof out[i]) == 0
                           || (isnan(again[i]) && isnan(out[i])));
        free(again);
        nlp_forecast_free(r);
    }
    free(out);
    free(x);

    if (recurrent)
        checkpoint(m, file);
    nlp_model_free(file);
    nlp_forecast_free(m);
    free(buf);
    return 0;
}
