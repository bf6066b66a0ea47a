/*
** forecast: recurrent time-series forecasting from the shell, always beside
** the persistence and linear baselines.
**
**   forecast train -o gdp.model --time DATE --target value --window 12 series.csv
**   tail -n 30 series.csv | forecast predict -m gdp.model --steps 6
**   forecast eval -m gdp.model --plot eval.svg < heldout.csv
**
** The table reader (nlp/series.h), the model and its training task
** (nlp/forecast.h) are the library's; the training harness (nlp/train.h)
** with train_cli's shared options runs the recurrent models.  This file
** holds the options, the wiring and the reports.
*/
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "train_cli.h"
#include "nlp/forecast.h"
#include "nlp/series.h"
#include "nlp/svg.h"

#define DEF_EPOCHS 200
#define DEF_PATIENCE 20
#define DEF_LR_ADAM 0.003
#define DEF_VALID 0.2
/* The lecture's habit made the default: decorrelate before believing a
** score (on a trend, a model of the levels extrapolates outside the range
** it was trained on). */
#define DEF_DIFFERENCE 1

/* ==== Messages =========================================================== */

/* ==== Tables ============================================================= */

/* How a table is read: the options every command shares. */
typedef struct table_opts {
    const char *target;     /* --target, NULL: the first non-time column */
    char *inputs;           /* --inputs (owned copy, split in place) */
    const char *time;       /* --time */
    nlp_series_fill fill;   /* --fill */
    nlp_series_format format; /* --format */
} table_opts;

static nlp_series *read_table(const char *path, const char *const *cols, const int *numbers,
                              int k, const char *time, int time_number, nlp_series_fill fill,
                              nlp_series_format format)
{
    nlp_series_read_config rc;
    nlp_series_read_config_default(&rc);
    rc.columns = cols;
    rc.numbers = numbers;
    rc.ncolumns = k;
    rc.time = time;
    rc.time_number = time_number;
    rc.fill = fill;
    rc.format = format;
    FILE *f = cli_open_read(path);
    nlp_series *s;
    nlp_error e;
    nlp_error_clear(&e);
    if (nlp_series_read(&s, f, cli_input_name(path), &rc, &e) != NLP_OK)
        cli_die_error(&e);
    cli_close_read(f);
    return s;
}

/* The columns of a new model: the target, then the other --inputs. */
static int columns(const table_opts *o, const char **cols)
{
    int k = 1;
    cols[0] = o->target;
    for (char *p = o->inputs, *tok; p && (tok = strsep(&p, ","));) {
        if (!*tok)
            cli_usage_error("--inputs: an empty column name");
        if (o->target && !strcmp(tok, o->target))
            continue;
        int dup = 0;
        for (int j = 1; j < k; j++)
            dup |= !strcmp(cols[j], tok);
        if (dup)
            continue;
        if (k >= NLP_FORECAST_MAX_INPUTS)
            cli_usage_error("--inputs: more than %d columns", NLP_FORECAST_MAX_INPUTS);
        cols[k++] = tok;
    }
    return k;
}

/* The model's own columns, by name and number (a headerless tail works). */
static nlp_series *read_for_model(const nlp_forecast *m, const nlp_model *f, const char *path)
{
    const int k = nlp_forecast_get_config(m)->inputs;
    const char **cols = malloc((size_t)k * sizeof *cols);
    int *nums = malloc((size_t)k * sizeof *nums);
    if (!cols || !nums)
        cli_die("out of memory");
    nlp_error e;
    nlp_error_clear(&e);
    for (int j = 0; j < k; j++) {
        char key[48];
        long v = 0;
        cols[j] = nlp_forecast_name(m, j);
        snprintf(key, sizeof key, "forecast.column.%d", j);
        if (nlp_model_meta(f, key) && nlp_model_meta_range(f, key, 1, NLP_SERIES_MAX_FIELDS, &v,
                                                           &e) != NLP_OK)
            cli_die_error(&e);
        nums[j] = (int)v;
    }
    long tn = 0, fill = 0, fmt = 0;
    const char *time = nlp_model_meta(f, "forecast.time");
    if (time && !*time)
        time = NULL;
    if ((nlp_model_meta(f, "forecast.time_column") &&
         nlp_model_meta_range(f, "forecast.time_column", 0, NLP_SERIES_MAX_FIELDS, &tn, &e)) ||
        (nlp_model_meta(f, "forecast.fill") &&
         nlp_model_meta_range(f, "forecast.fill", 0, 2, &fill, &e)) ||
        (nlp_model_meta(f, "forecast.format") &&
         nlp_model_meta_range(f, "forecast.format", 0, 3, &fmt, &e)))
        cli_die_error(&e);
    nlp_series *s = read_table(path, cols, nums, k, time, (int)tn, (nlp_series_fill)fill,
                               (nlp_series_format)fmt);
    free(cols);
    free(nums);
    return s;
}

static nlp_forecast *load(const char *path, nlp_model **file)
{
    if (!path)
        cli_usage_error("no model: give -m MODEL");
    nlp_forecast *m;
    nlp_error e;
    nlp_error_clear(&e);
    if (nlp_forecast_load(&m, path, file, &e) != NLP_OK)
        cli_die_error(&e);
    return m;
}

/* ==== Reports ============================================================ */

static const char *method_name(const nlp_forecast *m, nlp_forecast_method how)
{
    return how == NLP_FORECAST_OWN ? nlp_forecast_model_name(nlp_forecast_get_config(m)->model)
         : how == NLP_FORECAST_BY_PERSISTENCE ? "persistence" : "linear";
}

/*
** The table every report prints: for each step scored, the model, then
** persistence, then the linear baseline (the baselines once when the model
** is one), with MSE, MAE, MAPE, MASE and skill = 1 - MSE/MSE(persistence).
*/
static void report(FILE *out, nlp_forecast *m, const double *x, long n, const char *name,
                   double **preds)
{
    const nlp_forecast_config *c = nlp_forecast_get_config(m);
    int steps[2] = {1, c->horizon};
    /* The H-step rows when the series holds a window and H more rows. */
    int nsteps = c->horizon > 1 && n >= nlp_forecast_history(m) + c->horizon ? 2 : 1;
    nlp_forecast_method how[3] = {NLP_FORECAST_OWN, NLP_FORECAST_BY_PERSISTENCE,
                                  NLP_FORECAST_BY_LINEAR};
    int nhow = c->model == NLP_FORECAST_LSTM || c->model == NLP_FORECAST_GRU ||
               c->model == NLP_FORECAST_RNN ? 3 : 2;
    if (nhow == 2) /* the model is a baseline: list the two baselines */
        how[0] = NLP_FORECAST_BY_PERSISTENCE, how[1] = NLP_FORECAST_BY_LINEAR;
    nlp_error e;
    nlp_error_clear(&e);
    fprintf(out, "# %s: '%s', %ld rows, window %d%s, horizon %d\n", name, nlp_forecast_name(m, 0),
            n, c->window, c->difference ? " (differenced)" : "", c->horizon);
    fprintf(out, "step\tmodel\tforecasts\tmse\tmae\tmape\tmase\tskill\n");
    for (int si = 0; si < nsteps; si++) {
        nlp_forecast_score sc[3];
        for (int i = 0; i < nhow; i++) {
            double *p = si == 0 && preds ? preds[i] : NULL;
            if (nlp_forecast_score_series(m, how[i], x, n, steps[si], &sc[i], p, &e) != NLP_OK)
                cli_die("%s: %s", name, e.text);
        }
        double pm = sc[nhow == 3 ? 1 : 0].mse;
        for (int i = 0; i < nhow; i++)
            fprintf(out, "%d\t%s\t%ld\t%.6g\t%.6g\t%.4g\t%.4g\t%.4f\n", steps[si],
                    method_name(m, how[i]), sc[i].n, sc[i].mse, sc[i].mae, sc[i].mape,
                    sc[i].mase, pm > 0 ? 1 - sc[i].mse / pm : NAN);
    }
}

/* ==== train ============================================================== */

enum {
    OPT_TARGET = 256, OPT_INPUTS, OPT_TIME, OPT_FILL, OPT_FORMAT, OPT_WINDOW, OPT_HORIZON,
    OPT_VALID, OPT_MODEL, OPT_HIDDEN, OPT_LAYERS, OPT_DROPOUT, OPT_DIFFERENCE, OPT_LEVELS, OPT_BATCH,
    OPT_STEPS, OPT_SVG, OPT_VERSION
};

static const struct option train_options[] = {
    {"output", required_argument, NULL, 'o'},
    {"target", required_argument, NULL, OPT_TARGET},
    {"inputs", required_argument, NULL, OPT_INPUTS},
    {"time", required_argument, NULL, OPT_TIME},
    {"fill", required_argument, NULL, OPT_FILL},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"horizon", required_argument, NULL, OPT_HORIZON},
    {"valid", required_argument, NULL, OPT_VALID},
    {"model", required_argument, NULL, OPT_MODEL},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
    {"layers", required_argument, NULL, OPT_LAYERS},
    {"dropout", required_argument, NULL, OPT_DROPOUT},
    {"difference", no_argument, NULL, OPT_DIFFERENCE},
    {"no-difference", no_argument, NULL, OPT_LEVELS},
    {"batch", required_argument, NULL, OPT_BATCH},
    CLI_TRAIN_LONG_OPTIONS,
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}
};

static void help_table(void)
{
    printf("Table (CSV, TSV or whitespace-separated; a header line is optional):\n"
           "      --target COL           the column to forecast, by name or 1-based\n"
           "                             number [the first that is not --time]\n"
           "      --inputs COL,...       further input columns (multivariate); the\n"
           "                             target is always an input\n"
           "      --time COL             a date/time column, skipped\n"
           "      --fill HOW             missing or non-numeric cells: none (an error\n"
           "                             naming file, line and column), previous or\n"
           "                             linear [none]\n"
           "      --format FMT           csv, tsv, whitespace or auto [auto]\n"
           "\n");
}

static void help_train(const cli_train *tr)
{
    nlp_forecast_config m;
    nlp_forecast_train_config t;
    nlp_forecast_config_default(&m);
    nlp_forecast_train_config_default(&t);
    printf("Usage: forecast train -o MODEL [OPTION]... [SERIES]\n"
           "Train a forecaster of the target column of SERIES (or standard input), rows\n"
           "in time order.  The last --valid fraction is held out: the model with the\n"
           "best validation MSE is kept, and the report sets it beside persistence\n"
           "(the last value) and the least-squares linear baseline.\n"
           "\n");
    help_table();
    printf("Model:\n"
           "  -o, --output MODEL         where the model goes; the checkpoint is\n"
           "                             MODEL.ckpt\n"
           "      --model KIND           lstm, gru, rnn, linear or persistence [%s]\n"
           "      --window W             steps of history per forecast [%d]\n"
           "      --horizon H            values forecast at once (direct) [%d]\n"
           "      --difference           model first differences and integrate the\n"
           "                             forecasts back, which decorrelates a trending\n"
           "                             series (the default)\n"
           "      --no-difference        model the levels themselves\n"
           "      --hidden N             recurrent units [%d]\n"
           "      --layers N             stacked recurrent layers [%d]\n"
           "      --dropout P            between stacked layers [%g]\n"
           "      --valid FRACTION       held out at the end, in [0,0.9] [%g]\n"
           "      --batch N              windows per step [%d]\n"
           "\n",
           nlp_forecast_model_name(m.model), m.window, m.horizon, m.hidden, m.layers,
           (double)m.dropout, DEF_VALID, t.batch);
    cli_train_help(tr, stdout);
}

static void help_predict(void)
{
    printf("Usage: forecast predict -m MODEL [OPTION]... [RECENT]\n"
           "Forecast the next values of the target after the last rows of RECENT (or\n"
           "standard input; the model's columns, chosen by name, or by number when the\n"
           "rows have no header), one line each.  Up to the model's horizon the\n"
           "forecast is direct, beyond it iterated (univariate models only).\n"
           "\n"
           "  -m, --model MODEL          the model to use (required)\n"
           "      --steps K              values to forecast [the model's horizon]\n"
           "\n");
}

static void help_eval(void)
{
    printf("Usage: forecast eval -m MODEL [OPTION]... [SERIES]\n"
           "Rolling forecasts over SERIES (or standard input): from every window, the\n"
           "next value (and the value the model's horizon ahead), scored against what\n"
           "came, for the model, persistence and the linear baseline fitted with the\n"
           "model: MSE, MAE, MAPE (percent), MASE (MAE over the naive forecast's MAE on\n"
           "the training part) and skill, 1 - MSE/MSE(persistence).\n"
           "\n"
           "  -m, --model MODEL          the model to use (required)\n"
           "      --plot FILE.svg        draw the series and the one-step forecasts\n"
           "\n");
}

static void help_tail(void)
{
    printf("  -h, --help                 display this help and exit\n"
           "      --version              output version information and exit\n"
           "\n"
           "Ctrl-C or SIGTERM during training writes MODEL.ckpt and exits with status\n"
           "130 or 143; 'forecast train --resume MODEL.ckpt SERIES' continues\n"
           "bit-identically.  Exit status: 0 success, 1 error, 2 usage error.\n");
}

static void train_defaults(cli_train *tr)
{
    cli_train_init(tr);
    tr->cfg.epochs = DEF_EPOCHS;
    tr->cfg.patience = DEF_PATIENCE;
    tr->lr[NLP_OPTIM_ADAM] = DEF_LR_ADAM;
}

static void help_all(void)
{
    cli_train tr;
    train_defaults(&tr);
    printf("Usage: forecast COMMAND [OPTION]...\n"
           "Time-series forecasting with a recurrent network (LSTM, GRU, tanh RNN),\n"
           "always beside the persistence and linear baselines.  Commands: train,\n"
           "predict, eval.\n\n");
    help_train(&tr);
    printf("\n");
    help_predict();
    help_eval();
    help_tail();
}

static int cmd_train(int argc, char **argv)
{
    cli_train tr;
    train_defaults(&tr);
    nlp_forecast_config mc;
    nlp_forecast_train_config tc;
    nlp_forecast_config_default(&mc);
    mc.difference = DEF_DIFFERENCE;
    nlp_forecast_train_config_default(&tc);
    table_opts to = {NULL, NULL, NULL, NLP_SERIES_FILL_NONE, NLP_SERIES_AUTO};
    const char *output = NULL, *fixed = NULL;
    double valid = DEF_VALID;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":o:h" CLI_TRAIN_SHORT_OPTIONS, train_options, NULL)) !=
           -1) {
        if (cli_train_option(&tr, c, optarg))
            continue;
        char flag[40];
        cli_option_flag(train_options, c, flag, sizeof flag);
        switch (c) {
        case 'o': output = optarg; break;
        case OPT_TARGET: to.target = optarg; break;
        case OPT_INPUTS:
            free(to.inputs);
            if (!(to.inputs = strdup(optarg)))
                cli_die("out of memory");
            break;
        case OPT_TIME: to.time = optarg; break;
        case OPT_FILL:
            if (nlp_series_fill_parse(optarg, &to.fill) != NLP_OK)
                cli_usage_error("invalid value for --fill: '%s' (expected none, previous or "
                                "linear)", optarg);
            break;
        case OPT_FORMAT:
            if (nlp_series_format_parse(optarg, &to.format) != NLP_OK)
                cli_usage_error("invalid value for --format: '%s' (expected csv, tsv, "
                                "whitespace or auto)", optarg);
            break;
        case OPT_WINDOW: mc.window = (int)cli_parse_long(flag, optarg, 1, NLP_FORECAST_MAX_WINDOW); break;
        case OPT_HORIZON: mc.horizon = (int)cli_parse_long(flag, optarg, 1, NLP_FORECAST_MAX_HORIZON); break;
        case OPT_VALID: valid = cli_parse_double(flag, optarg, 0, 0.9); break;
        case OPT_MODEL:
            if (nlp_forecast_model_parse(optarg, &mc.model) != NLP_OK)
                cli_usage_error("invalid value for --model: '%s' (expected lstm, gru, rnn, "
                                "linear or persistence)", optarg);
            break;
        case OPT_HIDDEN: mc.hidden = (int)cli_parse_long(flag, optarg, 1, NLP_FORECAST_MAX_HIDDEN); break;
        case OPT_LAYERS: mc.layers = (int)cli_parse_long(flag, optarg, 1, NLP_FORECAST_MAX_LAYERS); break;
        case OPT_DROPOUT: mc.dropout = (float)cli_parse_double(flag, optarg, 0, 0.99); break;
        case OPT_DIFFERENCE: mc.difference = 1; break;
        case OPT_LEVELS: mc.difference = 0; break;
        case OPT_BATCH: tc.batch = (int)cli_parse_long(flag, optarg, 1, 4096); break;
        case 'h':
            help_train(&tr);
            help_tail();
            exit(CLI_EXIT_OK);
        case OPT_VERSION: cli_version();
        default: cli_option_error(c, argv);
        }
        if (c != 'o' && !fixed)
            fixed = cli_option_name(train_options, c);
    }
    if (argc - optind > 1)
        cli_usage_error("one series at most (got %d)", argc - optind);
    const char *path = optind < argc ? argv[optind] : "-";
    if (tr.resume && fixed)
        cli_usage_error("--%s cannot be changed when resuming: the checkpoint fixes it", fixed);
    const char *cols[NLP_FORECAST_MAX_INPUTS];
    if (!tr.resume) {
        mc.inputs = columns(&to, cols);
        nlp_error ce;
        if ((long)mc.window * mc.inputs > NLP_FORECAST_MAX_FEATURES)
            cli_usage_error("--window %d with %d inputs: at most %d values per window", mc.window,
                            mc.inputs, NLP_FORECAST_MAX_FEATURES);
        if (nlp_forecast_config_check(&mc, &ce) != NLP_OK)
            cli_usage_error("%s", ce.text);
    }
    const int rnn = mc.model <= NLP_FORECAST_RNN;
    cli_train_finish(&tr);
    cli_train_paths(&tr, output, NULL);
    output = tr.cfg.output;
    const int quiet = tr.cfg.verbosity < 0;

    nlp_error e;
    nlp_error_clear(&e);
    nlp_forecast *m = NULL;
    nlp_model *ck = NULL;
    nlp_series *s;
    long ntrain;
    if (tr.resume) {
        m = load(tr.resume, &ck);
        if (nlp_forecast_train_config_read(&tc, ck, &e) != NLP_OK ||
            cli_train_resume(&tr, ck, &e) != NLP_OK) {
            if (!e.file[0])
                snprintf(e.file, sizeof e.file, "%s", tr.resume);
            cli_die_error(&e);
        }
        mc = *nlp_forecast_get_config(m);
        s = read_for_model(m, ck, path);
        if (nlp_model_meta_double(ck, "forecast.valid", &valid, &e) != NLP_OK)
            cli_die_error(&e);
        if (!(valid >= 0 && valid <= 0.9))
            cli_die("%s: 'forecast.valid' out of range", tr.resume);
    } else {
        s = read_table(path, cols, NULL, mc.inputs, to.time, 0, to.fill, to.format);
    }
    const char *name = cli_input_name(path);
    ntrain = s->n - (long)floor(valid * (double)s->n);
    const long need = (long)mc.window + mc.difference + mc.horizon;
    if (ntrain < need)
        cli_die("%s: %ld rows (%ld for training after --valid %g): a window of %d%s and a "
                "horizon of %d need at least %ld", name, s->n, ntrain, valid, mc.window,
                mc.difference ? " differenced" : "", mc.horizon, need);
    if (!m) {
        nlp_rng rng;
        nlp_rng_seed(&rng, tr.seed);
        if (nlp_forecast_new(&m, &mc, (const char *const *)s->names, &rng, &e) != NLP_OK)
            cli_die_error(&e);
    }
    if (nlp_forecast_fit(m, s->x, ntrain, &e) != NLP_OK) {
        snprintf(e.file, sizeof e.file, "%s", name);
        cli_die_error(&e);
    }
    if (!quiet) {
        cli_warn("%s: %ld rows (%ld training, %ld validation), %d input%s, target '%s'", name,
                 s->n, ntrain, s->n - ntrain, mc.inputs, mc.inputs > 1 ? "s" : "", s->names[0]);
        if (s->filled)
            cli_warn("%s: %ld missing or non-numeric cells filled (%s)", name, s->filled,
                     nlp_series_fill_name(to.fill));
    }

    /* What reads the next table the same way. */
    char command[1024] = "", vbuf[32], tbuf[16], fbuf[8], fmbuf[8];
    char keys[NLP_FORECAST_MAX_INPUTS][32], nums[NLP_FORECAST_MAX_INPUTS][16];
    for (int i = 0, k = 0; i < argc && k + 2 < (int)sizeof command; i++)
        k += snprintf(command + k, sizeof command - (size_t)k, "%s%s", i ? " " : "", argv[i]);
    snprintf(vbuf, sizeof vbuf, "%.17g", valid);
    const char **meta = malloc((size_t)(2 * mc.inputs + 16) * sizeof *meta);
    if (!meta)
        cli_die("out of memory");
    int nm = 0;
    if (!ck) {
        snprintf(tbuf, sizeof tbuf, "%d", s->time_number);
        snprintf(fbuf, sizeof fbuf, "%d", (int)to.fill);
        snprintf(fmbuf, sizeof fmbuf, "%d", (int)s->format);
        meta[nm++] = "forecast.time";
        meta[nm++] = to.time ? to.time : "";
        meta[nm++] = "forecast.time_column";
        meta[nm++] = tbuf;
        meta[nm++] = "forecast.fill";
        meta[nm++] = fbuf;
        meta[nm++] = "forecast.format";
        meta[nm++] = fmbuf;
        for (int j = 0; j < mc.inputs; j++) {
            snprintf(keys[j], sizeof keys[j], "forecast.column.%d", j);
            snprintf(nums[j], sizeof nums[j], "%d", s->numbers[j]);
            meta[nm++] = keys[j];
            meta[nm++] = nums[j];
        }
    } else {
        /* Carried over from the checkpoint as they were. */
        static const char *carry[] = {"forecast.time", "forecast.time_column", "forecast.fill",
                                      "forecast.format"};
        for (int i = 0; i < 4; i++) {
            meta[nm++] = carry[i];
            meta[nm++] = nlp_model_meta(ck, carry[i]) ? nlp_model_meta(ck, carry[i]) : "";
        }
        for (int j = 0; j < mc.inputs; j++) {
            snprintf(keys[j], sizeof keys[j], "forecast.column.%d", j);
            meta[nm++] = keys[j];
            meta[nm++] = nlp_model_meta(ck, keys[j]) ? nlp_model_meta(ck, keys[j]) : "0";
        }
    }
    meta[nm++] = "forecast.valid";
    meta[nm++] = vbuf;
    meta[nm++] = "command";
    meta[nm++] = command;
    meta[nm] = NULL;

    int status = 0, kept = 1;
    if (!rnn) {
        /* Baselines are fitted, not trained: written at once. */
        if (nlp_forecast_save(m, output, meta, &e) != NLP_OK)
            cli_die_error(&e);
        if (!quiet)
            cli_warn("%s model fitted on %ld rows, written to %s", nlp_forecast_model_name(mc.model),
                     ntrain, output);
    } else {
        tr.cfg.meta = meta;
        tr.cfg.stop = cli_train_signals();
        nlp_forecast_trainer *ft;
        if (nlp_forecast_trainer_new(&ft, m, &tc, s->x, s->n, ntrain, &e) != NLP_OK) {
            snprintf(e.file, sizeof e.file, "%s", name);
            cli_die_error(&e);
        }
        nlp_train *run;
        if (nlp_train_new(&run, &tr.cfg, nlp_forecast_trainer_task(ft), &e) != NLP_OK)
            cli_die_error(&e);
        if (ck && nlp_train_resume(run, ck, &e) != NLP_OK) {
            if (!e.file[0])
                snprintf(e.file, sizeof e.file, "%s", tr.resume);
            cli_die_error(&e);
        }
        long nva;
        long ntr = nlp_forecast_trainer_windows(ft, &nva);
        if (!quiet)
            cli_warn("%ld training and %ld validation windows; %s %dx%d, window %d, horizon %d%s, "
                     "%zu parameters", ntr, nva, nlp_forecast_model_name(mc.model), mc.layers,
                     mc.hidden, mc.window, mc.horizon, mc.difference ? ", differenced" : "",
                     nlp_params_count(nlp_forecast_params(m)));
        nlp_train_result res;
        double t0 = nlp_progress_now();
        int rc = nlp_train_run(run, &res, &e);
        double secs = nlp_progress_now() - t0;
        cli_train_report(rc, &e, &res, output, tr.cfg.checkpoint, NULL, quiet);
        if (tr.cfg.verbosity > 0)
            cli_warn("train_seconds=%.3f steps=%ld steps_per_s=%.1f best_valid_mse=%.6g", secs,
                     res.steps, secs > 0 ? (double)res.steps / secs : 0.0, res.best_metric);
        status = cli_train_exit_status(&res);
        nlp_train_free(run);
        nlp_forecast_trainer_free(ft);
        /* The report is about the model kept, as eval will load it (none
        ** when a run resumed elsewhere kept nothing new here). */
        kept = access(output, F_OK) == 0;
        if (!quiet && res.reason != NLP_TRAIN_REQUESTED && !isnan(res.best_metric) && kept) {
            nlp_forecast_free(m);
            m = load(output, NULL);
        }
    }
    if (!quiet && status == 0 && kept && s->n > ntrain) {
        /* The validation part scored, with the history it needs before it. */
        long from = ntrain - nlp_forecast_history(m);
        if (from >= 0 && s->n - from >= nlp_forecast_history(m) + 1) {
            char what[64];
            snprintf(what, sizeof what, "validation (last %ld rows)", s->n - ntrain);
            report(stderr, m, s->x + (size_t)from * (size_t)s->k, s->n - from, what, NULL);
        }
    }
    free(meta);
    nlp_model_free(ck);
    nlp_forecast_free(m);
    nlp_series_free(s);
    free(to.inputs);
    cli_train_free(&tr);
    return status;
}

/* ==== predict ============================================================ */

/*
** What predict and eval start from: the series operand (one at most; "-",
** standard input, when none) in *path, the model MODEL in *m and *f, the
** chart file svg (NULL: none) checked writable, then the series read as
** the model was trained on.  Dies on any error.
*/
static nlp_series *model_and_series(int argc, char **argv, const char *model, const char *svg,
                                    const char **path, nlp_forecast **m, nlp_model **f)
{
    if (argc - optind > 1)
        cli_usage_error("one series at most (got %d)", argc - optind);
    *path = optind < argc ? argv[optind] : "-";
    *m = load(model, f);
    if (svg)
        cli_train_check_writable(svg);
    return read_for_model(*m, *f, *path);
}

static const struct option predict_options[] = {
    {"model", required_argument, NULL, 'm'},
    {"steps", required_argument, NULL, OPT_STEPS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}
};

static int cmd_predict(int argc, char **argv)
{
    const char *model = NULL;
    long steps = 0;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:h", predict_options, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case OPT_STEPS: steps = cli_parse_long("--steps", optarg, 1, 1000000); break;
        default: cli_command_option(c, OPT_VERSION, argv, help_predict, help_tail);
        }
    }
    const char *path;
    nlp_model *f;
    nlp_forecast *m;
    nlp_series *s = model_and_series(argc, argv, model, NULL, &path, &m, &f);
    if (!steps)
        steps = nlp_forecast_get_config(m)->horizon;
    double *out = malloc((size_t)steps * sizeof *out);
    if (!out)
        cli_die("out of memory");
    nlp_error e;
    nlp_error_clear(&e);
    if (nlp_forecast_predict(m, NLP_FORECAST_OWN, s->x, s->n, steps, out, &e) != NLP_OK)
        cli_die("%s: %s", cli_input_name(path), e.text);
    for (long i = 0; i < steps; i++)
        printf("%.10g\n", out[i]);
    free(out);
    nlp_series_free(s);
    nlp_forecast_free(m);
    nlp_model_free(f);
    return CLI_EXIT_OK;
}

/* ==== eval =============================================================== */

static const struct option eval_options[] = {
    {"model", required_argument, NULL, 'm'},
    {"plot", required_argument, NULL, OPT_SVG},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}
};

static void plot(const char *file, nlp_forecast *m, const nlp_series *s, double **preds, int np)
{
    const long hist = nlp_forecast_history(m), N = s->n - hist;
    double *t = malloc((size_t)s->n * sizeof *t), *y = malloc((size_t)s->n * sizeof *y);
    if (!t || !y)
        cli_die("out of memory");
    for (long i = 0; i < s->n; i++) {
        t[i] = (double)i;
        y[i] = s->x[(size_t)i * s->k];
    }
    nlp_svg_series ser[4] = {{"actual", t, y, (size_t)s->n, 0, "#000000"}};
    nlp_forecast_method how[3] = {NLP_FORECAST_OWN, NLP_FORECAST_BY_PERSISTENCE,
                                  NLP_FORECAST_BY_LINEAR};
    if (np == 2)
        how[0] = NLP_FORECAST_BY_PERSISTENCE, how[1] = NLP_FORECAST_BY_LINEAR;
    for (int i = 0; i < np; i++)
        ser[i + 1] = (nlp_svg_series){method_name(m, how[i]), t + hist, preds[i], (size_t)N, 0,
                                      NULL};
    char title[160];
    snprintf(title, sizeof title, "one-step forecasts of %s", nlp_forecast_name(m, 0));
    nlp_svg_chart ch = {title, "step", nlp_forecast_name(m, 0), NULL, 0, 0, ser, np + 1};
    nlp_error e;
    nlp_error_clear(&e);
    if (nlp_svg_chart_save(file, &ch, &e) != NLP_OK)
        cli_die_error(&e);
    free(t);
    free(y);
}

static int cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *svg = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:h", eval_options, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case OPT_SVG: svg = optarg; break;
        default: cli_command_option(c, OPT_VERSION, argv, help_eval, help_tail);
        }
    }
    const char *path;
    nlp_model *f;
    nlp_forecast *m;
    nlp_series *s = model_and_series(argc, argv, model, svg, &path, &m, &f);
    const long hist = nlp_forecast_history(m);
    if (s->n < hist + 1)
        cli_die("%s: %ld rows: a window of %ld rows and one to forecast need at least %ld",
                cli_input_name(path), s->n, hist, hist + 1);
    const nlp_forecast_model kind = nlp_forecast_get_config(m)->model;
    int np = kind <= NLP_FORECAST_RNN ? 3 : 2;
    double *preds[3] = {NULL, NULL, NULL};
    for (int i = 0; i < np; i++)
        if (!(preds[i] = malloc((size_t)(s->n - hist) * sizeof **preds)))
            cli_die("out of memory");
    report(stdout, m, s->x, s->n, cli_input_name(path), preds);
    if (svg)
        plot(svg, m, s, preds, np);
    for (int i = 0; i < np; i++)
        free(preds[i]);
    nlp_series_free(s);
    nlp_forecast_free(m);
    nlp_model_free(f);
    return CLI_EXIT_OK;
}

/* ==== main =============================================================== */

static const cli_command commands[] = {
    {"train", cmd_train, NULL, NULL},
    {"predict", cmd_predict, NULL, NULL},
    {"eval", cmd_eval, NULL, NULL},
};

int main(int argc, char **argv)
{
    cli_init("forecast");
    return cli_dispatch(argc, argv, commands, sizeof commands / sizeof commands[0], help_all);
}
