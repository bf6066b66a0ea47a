/*
** train_cli: the command line every libnlp trainer shares.  See train_cli.h.
*/
#include "train_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"
#include "nlp/outfile.h"
#include "nlp/tensor.h"

/* Option names by CLI_TRAIN_OPT_* - CLI_TRAIN_OPT_EPOCHS, for messages. */
static const char *const names[CLI_TRAIN_OPT_END - CLI_TRAIN_OPT_EPOCHS] = {
    "epochs", "time-limit", "max-steps", "lr", "lr-decay", "lr-patience", "min-lr",
    "patience", "optimizer", "clip", "seed", "threads", "checkpoint-every", "resume",
    "valid-every", "plot", "average"
};

void cli_train_init(cli_train *o)
{
    memset(o, 0, sizeof *o);
    nlp_train_config_default(&o->cfg);
    o->cfg.log = stderr;
    o->optimizer = NLP_OPTIM_ADAM;
    /* Defaults for a recurrent model clipped at 5, one per optimiser (one
    ** rate for all made --optimizer sgd crawl).  Adam 2e-3; RMSprop 2e-3
    ** as char-rnn (PyTorch's 1e-2 learns slower: the default 2x256 charlm
    ** on the Divina Commedia is at 3.25 bpc after 40 s against 2.67);
    ** SGD 1 as Zaremba et al.'s LSTM language models (0.1 barely moves:
    ** 3.25 bpc after 30 s against 2.60 for a 1x128 charlm). */
    o->lr[NLP_OPTIM_SGD] = 1.0;
    o->lr[NLP_OPTIM_ADAM] = 0.002;
    o->lr[NLP_OPTIM_RMSPROP] = 0.002;
    o->seed = 1;
    o->threads = 1;
    o->processes = 1;
}

void cli_train_processes(cli_train *o, const nlp_train_collective *c)
{
    o->cfg.collective = c;
    o->rank = c ? c->rank : 0;
    o->processes = c ? c->size : 1;
    if (o->rank != 0)
        o->cfg.verbosity = -1;
}

int cli_train_option(cli_train *o, int c, const char *arg)
{
    if (c == 'v') {
        o->cfg.verbosity = 1;
        return 1;
    }
    if (c == 'q') {
        o->cfg.verbosity = -1;
        return 1;
    }
    if (c < CLI_TRAIN_OPT_EPOCHS || c >= CLI_TRAIN_OPT_END)
        return 0;
    char flag[32];
    snprintf(flag, sizeof flag, "--%s", names[c - CLI_TRAIN_OPT_EPOCHS]);
    nlp_train_config *t = &o->cfg;
    switch (c) {
    case CLI_TRAIN_OPT_EPOCHS: t->epochs = cli_parse_long(flag, arg, 0, LONG_MAX); break;
    case CLI_TRAIN_OPT_TIME_LIMIT: t->time_limit = cli_parse_double(flag, arg, 0, 1e9); break;
    case CLI_TRAIN_OPT_MAX_STEPS: t->max_steps = cli_parse_long(flag, arg, 0, LONG_MAX); break;
    case CLI_TRAIN_OPT_LR: o->lr_given = cli_parse_double(flag, arg, 1e-9, 100); break;
    case CLI_TRAIN_OPT_LR_DECAY: t->lr_decay = cli_parse_double(flag, arg, 0.01, 1); break;
    case CLI_TRAIN_OPT_LR_PATIENCE:
        t->lr_patience = cli_parse_long(flag, arg, 1, LONG_MAX);
        break;
    case CLI_TRAIN_OPT_MIN_LR: t->min_lr = cli_parse_double(flag, arg, 0, 100); break;
    case CLI_TRAIN_OPT_PATIENCE: t->patience = cli_parse_long(flag, arg, 0, LONG_MAX); break;
    case CLI_TRAIN_OPT_OPTIMIZER:
        if (nlp_optim_kind_parse(arg, &o->optimizer) != NLP_OK)
            cli_usage_error("invalid value for --optimizer: '%s' (expected adam, rmsprop or "
                            "sgd)", arg);
        break;
    case CLI_TRAIN_OPT_CLIP: t->clip = cli_parse_double(flag, arg, 0, 1e9); break;
    case CLI_TRAIN_OPT_SEED: o->seed = (uint64_t)cli_parse_long(flag, arg, 0, LONG_MAX); break;
    case CLI_TRAIN_OPT_THREADS: o->threads = (int)cli_parse_long(flag, arg, 1, 1024); break;
    case CLI_TRAIN_OPT_CHECKPOINT_EVERY:
        t->checkpoint_every = cli_parse_double(flag, arg, 0, 1e9);
        break;
    case CLI_TRAIN_OPT_RESUME: o->resume = arg; break;
    case CLI_TRAIN_OPT_VALID_EVERY:
        t->valid_every = cli_parse_long(flag, arg, 0, LONG_MAX);
        break;
    case CLI_TRAIN_OPT_PLOT: t->plot = arg; break;
    case CLI_TRAIN_OPT_AVERAGE:
        t->average = cli_parse_double(flag, arg, 0, 1);
        if (t->average >= 1)
            cli_usage_error("invalid value for --average: %s (expected a decay in [0, 1): "
                            "0 = off, 0.999 = about the last 1000 steps)", arg);
        break;
    }
    o->given |= 1u << (c - CLI_TRAIN_OPT_EPOCHS);
    return 1;
}

void cli_train_help(const cli_train *o, FILE *out)
{
    const nlp_train_config *t = &o->cfg;
    fprintf(out,
            "Training (the same in every libnlp trainer):\n"
            "      --epochs N             passes over the training data; 0 = no limit [%ld]\n"
            "      --time-limit SECONDS   stop after this much training time, counted over\n"
            "                             resumed runs too; 0 = no limit [%g]\n"
            "      --max-steps N          stop after N training steps in all (resumed runs\n"
            "                             included); 0 = no limit [%ld]\n"
            "      --optimizer NAME       adam, rmsprop or sgd [%s]\n"
            "      --lr RATE              learning rate [adam %g, rmsprop %g, sgd %g]\n"
            "      --lr-decay FACTOR      multiply the learning rate by FACTOR on a plateau\n"
            "                             (see --lr-patience); 1 = never [%g]\n"
            "      --lr-patience N        validations without a new best before a decay [%ld]\n"
            "      --min-lr RATE          the decay never takes the rate below RATE [%g]\n"
            "      --patience N           stop after N validations in a row without a new\n"
            "                             best; 0 = never [%ld]\n"
            "      --clip NORM            global gradient-norm limit; 0 = none [%g]\n"
            "      --valid-every N        validate every N steps; 0 = after each epoch [%ld]\n"
            "      --seed N               initial weights and dropout [%llu]\n"
            "      --threads N            training threads: each step's batch is split\n"
            "                             across N workers [%d]\n"
            "      --checkpoint-every SECONDS\n"
            "                             also write the checkpoint this often and at the\n"
            "                             end; 0 = only when interrupted [%g]\n"
            "      --resume CHECKPOINT    continue an interrupted run from its checkpoint\n"
            "      --plot FILE            write an SVG plot of the training loss and the\n"
            "                             validation metric against steps, after every\n"
            "                             validation\n"
            "      --average DECAY        validate and save an exponential moving average\n"
            "                             of the weights with this decay per step, reached\n"
            "                             after a warm-up of 9/(1-DECAY) steps; 0 = off [%g]\n"
            "  -v, --verbose              more detail on standard error\n"
            "  -q, --quiet                only errors\n",
            t->epochs, t->time_limit, t->max_steps, nlp_optim_kind_name(o->optimizer),
            o->lr[NLP_OPTIM_ADAM], o->lr[NLP_OPTIM_RMSPROP], o->lr[NLP_OPTIM_SGD],
            t->lr_decay, t->lr_patience, t->min_lr, t->patience, t->clip, t->valid_every,
            (unsigned long long)o->seed, o->threads, t->checkpoint_every, t->average);
}

void cli_train_finish(cli_train *o)
{
    /* What a checkpoint fixes: the run continues with its own. */
    static const int fixed[] = {
        CLI_TRAIN_OPT_LR, CLI_TRAIN_OPT_LR_DECAY, CLI_TRAIN_OPT_LR_PATIENCE,
        CLI_TRAIN_OPT_MIN_LR, CLI_TRAIN_OPT_OPTIMIZER, CLI_TRAIN_OPT_CLIP, CLI_TRAIN_OPT_SEED
    };
    for (size_t i = 0; o->resume && i < sizeof fixed / sizeof *fixed; i++)
        if (CLI_TRAIN_GIVEN(o, fixed[i]))
            cli_usage_error("--%s cannot be changed when resuming: the checkpoint fixes it",
                            names[fixed[i] - CLI_TRAIN_OPT_EPOCHS]);
    /* Each optimiser keeps PyTorch's defaults for its other settings. */
    nlp_optim_config_default(&o->cfg.optim, o->optimizer);
    o->cfg.optim.lr = o->lr_given > 0 ? o->lr_given : o->lr[o->optimizer];
    o->cfg.threads = o->threads;
    nlp_tensor_set_threads(o->threads);
#ifdef _OPENMP
    omp_set_num_threads(o->threads);
#endif
}

int cli_train_resume(cli_train *o, const nlp_model *ckpt, nlp_error *e)
{
    nlp_train_config c = o->cfg;
    int rc = nlp_train_config_read(&c, ckpt, e);
    if (rc != NLP_OK)
        return rc;
    const nlp_train_config *g = &o->cfg;
    if (CLI_TRAIN_GIVEN(o, CLI_TRAIN_OPT_EPOCHS)) c.epochs = g->epochs;
    if (CLI_TRAIN_GIVEN(o, CLI_TRAIN_OPT_TIME_LIMIT)) c.time_limit = g->time_limit;
    if (CLI_TRAIN_GIVEN(o, CLI_TRAIN_OPT_MAX_STEPS)) c.max_steps = g->max_steps;
    if (CLI_TRAIN_GIVEN(o, CLI_TRAIN_OPT_PATIENCE)) c.patience = g->patience;
    if (CLI_TRAIN_GIVEN(o, CLI_TRAIN_OPT_VALID_EVERY)) c.valid_every = g->valid_every;
    if (CLI_TRAIN_GIVEN(o, CLI_TRAIN_OPT_CHECKPOINT_EVERY))
        c.checkpoint_every = g->checkpoint_every;
    /* Averaging may be turned on (from the weights resumed), off or
    ** changed; else the checkpoint's. */
    if (CLI_TRAIN_GIVEN(o, CLI_TRAIN_OPT_AVERAGE)) c.average = g->average;
    /* Where to write and how to report are this run's, never the file's. */
    c.output = g->output;
    c.checkpoint = g->checkpoint;
    c.plot = g->plot;
    c.meta = g->meta;
    c.log = g->log;
    c.live = g->live;
    c.verbosity = g->verbosity;
    c.stop = g->stop;
    o->cfg = c;
    o->optimizer = c.optim.kind;
    return NLP_OK;
}

char *cli_train_resume_output(const char *ckpt)
{
    static const char suffix[] = ".ckpt";
    const size_t n = strlen(ckpt), k = sizeof suffix - 1;
    if (n <= k || strcmp(ckpt + n - k, suffix) != 0 || ckpt[n - k - 1] == '/')
        return NULL;
    char *out = malloc(n - k + 1);
    if (!out)
        cli_die("out of memory");
    memcpy(out, ckpt, n - k);
    out[n - k] = '\0';
    return out;
}

void cli_train_check_writable(const char *path)
{
    nlp_error e;
    if (nlp_outfile_check(path, &e) != NLP_OK)
        cli_die_error(&e);
}

int cli_train_paths(cli_train *o, const char *output, const char *fallback)
{
    int fell_back = 0;
    if (!output && o->resume) {
        if (!(output = o->paths[0] = cli_train_resume_output(o->resume)))
            cli_usage_error("cannot name the model after '%s' (no .ckpt ending): give -o MODEL",
                            o->resume);
    }
    if (!output) {
        if (!fallback)
            cli_usage_error("no model file: give -o MODEL");
        output = fallback;
        fell_back = 1;
    }
    char *ckpt = o->paths[1] = malloc(strlen(output) + sizeof ".ckpt");
    if (!ckpt)
        cli_die("out of memory");
    strcat(strcpy(ckpt, output), ".ckpt");
    if (o->rank == 0) { /* the one that writes */
        cli_train_check_output(output);
        cli_train_check_output(ckpt);
        if (o->cfg.plot)
            cli_train_check_writable(o->cfg.plot);
    }
    o->cfg.output = output;
    o->cfg.checkpoint = ckpt;
    return fell_back;
}

void cli_train_free(cli_train *o)
{
    free(o->paths[0]);
    free(o->paths[1]);
    o->paths[0] = o->paths[1] = NULL;
}

void cli_train_check_output(const char *path)
{
    cli_train_check_writable(path);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
        return;
    /* Something is there: overwrite it only when it is a model already. */
    char magic[sizeof NLP_MODEL_MAGIC - 1];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        cli_die("%s: %s", path, strerror(errno));
    ssize_t got = read(fd, magic, sizeof magic);
    close(fd);
    if (got != (ssize_t)sizeof magic || memcmp(magic, NLP_MODEL_MAGIC, sizeof magic) != 0)
        cli_die("%s: exists and is not a libnlp model: not overwriting it (remove it or "
                "give another -o)", path);
}

static volatile sig_atomic_t stop_signal; /* written by the handler only */

/* Flag only (see train_cli.h): the first signal is the one reported. */
static void on_signal(int sig)
{
    if (!stop_signal)
        stop_signal = sig;
}

volatile sig_atomic_t *cli_train_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return &stop_signal;
}

int cli_train_exit_status(const nlp_train_result *res)
{
    if (res->reason != NLP_TRAIN_REQUESTED)
        return CLI_EXIT_OK;
    return 128 + (stop_signal ? stop_signal : SIGINT);
}

void cli_train_report(int rc, const nlp_error *e, const nlp_train_result *res,
                      const char *output, const char *checkpoint, const char *rate, int quiet)
{
    if (rc == NLP_ERANGE)
        cli_die("training diverged at step %ld (the loss is not finite); the best model so "
                "far is in %s; try a lower --lr or --clip", res->steps + 1, output);
    if (rc != NLP_OK)
        cli_die_error(e);
    if (quiet)
        return;
    if (res->reason == NLP_TRAIN_REQUESTED)
        cli_warn("interrupted: continue with --resume %s", checkpoint);
    else if (access(output, F_OK) != 0)
        /* Resumed elsewhere, and nothing beat the best of before. */
        cli_warn("no model written to %s: the best one (step %ld) is where the interrupted "
                 "run wrote it", output, res->best_step);
    else
        cli_warn("model written to %s (%s%s%s)", output,
                 isnan(res->best_metric) ? "the latest, without validation"
                                         : "the best on validation",
                 rate ? "; " : "", rate ? rate : "");
}
