/*
** charlm-train: train a character-level language model on UTF-8 text.
**
**   cat divina.txt | charlm-train -o dante.model
**
** The corpus is read whole (stdin or FILEs), decoded to code points, split
** into training text and a validation tail (--valid), and the model is
** trained with truncated BPTT over --batch parallel streams until --epochs
** or --time-limit.  After each epoch the validation bits-per-character is
** measured and the best model so far is written to MODEL.
**
** Interruption: SIGINT/SIGTERM only set a flag; the loop notices it between
** two steps, writes MODEL.ckpt (the whole training state) and exits with
** 128+signal.  `--resume MODEL.ckpt` with the same corpus continues exactly
** where the run stopped (bit-identical on one thread).
*/
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"
#include "nlp/charlm.h"
#include "nlp/model.h"
#include "nlp/progress.h"
#include "nlp/tensor.h"

/* Defaults, written once here and printed by --help. */
#define DEF_EPOCHS 20
#define DEF_TIME_LIMIT 300.0
#define DEF_VALID 0.05
#define DEF_MIN_COUNT 2
#define DEF_LR_DECAY 0.5
#define DEF_THREADS 1

static volatile sig_atomic_t stop_signal; /* set by the handler only */

static void on_signal(int sig)
{
    stop_signal = sig;
}

static _Noreturn void usage(void)
{
    nlp_charlm_config m;
    nlp_charlm_train_config t;
    nlp_charlm_config_default(&m);
    nlp_charlm_train_config_default(&t);
    printf("Usage: charlm-train [OPTION]... -o MODEL [FILE]...\n"
           "Train a character-level language model on UTF-8 text read from the FILEs\n"
           "(or standard input; '-' is standard input).  Characters are Unicode code\n"
           "points.  The last --valid fraction is held out; after every epoch the\n"
           "model with the best validation bits-per-character is written to MODEL.\n"
           "With the defaults training stops after %d epochs or %.0f seconds (5 minutes)\n"
           "of training, whichever comes first.\n"
           "\n"
           "Model:\n"
           "      --cell TYPE            lstm, gru or rnn [%s]\n"
           "      --layers N             stacked recurrent layers [%d]\n"
           "      --hidden N             units per layer [%d]\n"
           "      --embed N              character embedding size [%d]\n"
           "      --dropout P            dropout between layers and before the output [%g]\n"
           "      --min-count N          characters seen fewer times are trained as the\n"
           "                             unknown symbol <unk> [%d]\n"
           "Training:\n"
           "      --seq-len N            steps unrolled through time per chunk [%d]\n"
           "      --batch N              parallel streams over the text [%d]\n"
           "      --epochs N             passes over the training text [%d]\n"
           "      --time-limit SECONDS   stop after this much training time, counted over\n"
           "                             resumed runs too; 0 = no limit [%.0f]\n"
           "      --max-steps N          stop after N training steps; 0 = no limit [0]\n"
           "      --lr RATE              learning rate [%g]\n"
           "      --lr-decay FACTOR      multiply the learning rate by FACTOR after an\n"
           "                             epoch that does not improve the validation\n"
           "                             bpc; 1 = never [%g]\n"
           "      --optimizer NAME       adam, rmsprop or sgd [%s]\n"
           "      --clip NORM            global gradient-norm limit; 0 = none [%g]\n"
           "      --valid FRACTION       held out from the end for validation [%g]\n"
           "      --seed N               initial weights and dropout [%llu]\n"
           "      --threads N            BLAS/OpenMP threads [%d]\n"
           "      --strict               refuse invalid UTF-8 (default: replace it by\n"
           "                             U+FFFD and warn)\n"
           "Files:\n"
           "  -o, --output MODEL         where the best model goes (required unless\n"
           "                             resuming; the checkpoint is MODEL.ckpt)\n"
           "      --checkpoint-every SECONDS\n"
           "                             also write MODEL.ckpt this often and at the end;\n"
           "                             0 = only when interrupted [0]\n"
           "      --resume CHECKPOINT    continue an interrupted run from its checkpoint\n"
           "                             (give the same corpus again)\n"
           "  -v, --verbose              more detail on standard error\n"
           "  -q, --quiet                only errors\n"
           "  -h, --help                 display this help and exit\n"
           "      --version              output version information and exit\n"
           "\n"
           "Ctrl-C or SIGTERM writes MODEL.ckpt and exits with status 130 or 143.\n"
           "Exit status: 0 success, 1 error, 2 usage error.\n",
           DEF_EPOCHS, DEF_TIME_LIMIT, nlp_rnn_cell_name(m.cell), m.layers, m.hidden,
           m.embed, (double)m.dropout, DEF_MIN_COUNT, t.seq_len, t.batch, DEF_EPOCHS,
           DEF_TIME_LIMIT, t.optim.lr, DEF_LR_DECAY, nlp_optim_kind_name(t.optim.kind),
           (double)t.clip, DEF_VALID, (unsigned long long)t.seed, DEF_THREADS);
    exit(CLI_EXIT_OK);
}

enum {
    OPT_CELL = 256, OPT_LAYERS, OPT_HIDDEN, OPT_EMBED, OPT_DROPOUT, OPT_MIN_COUNT,
    OPT_SEQ_LEN, OPT_BATCH, OPT_EPOCHS, OPT_TIME_LIMIT, OPT_MAX_STEPS, OPT_LR, OPT_LR_DECAY,
    OPT_OPTIMIZER, OPT_CLIP, OPT_VALID, OPT_SEED, OPT_THREADS, OPT_STRICT,
    OPT_CHECKPOINT_EVERY, OPT_RESUME, OPT_VERSION
};

static const struct option long_options[] = {
    {"cell", required_argument, NULL, OPT_CELL},
    {"layers", required_argument, NULL, OPT_LAYERS},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
    {"embed", required_argument, NULL, OPT_EMBED},
    {"dropout", required_argument, NULL, OPT_DROPOUT},
    {"min-count", required_argument, NULL, OPT_MIN_COUNT},
    {"seq-len", required_argument, NULL, OPT_SEQ_LEN},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"time-limit", required_argument, NULL, OPT_TIME_LIMIT},
    {"max-steps", required_argument, NULL, OPT_MAX_STEPS},
    {"lr", required_argument, NULL, OPT_LR},
    {"lr-decay", required_argument, NULL, OPT_LR_DECAY},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"clip", required_argument, NULL, OPT_CLIP},
    {"valid", required_argument, NULL, OPT_VALID},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"output", required_argument, NULL, 'o'},
    {"checkpoint-every", required_argument, NULL, OPT_CHECKPOINT_EVERY},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}
};

typedef struct options {
    nlp_charlm_config model;
    nlp_charlm_train_config train;
    long min_count;
    long epochs;
    double time_limit;
    long max_steps;
    double valid;
    double lr_decay;
    int threads;
    int strict;
    const char *output;
    char *output_copy;        /* output read from a checkpoint (freed at exit) */
    double checkpoint_every;
    const char *resume;
    int verbose;              /* -1 quiet, 0 normal, 1 verbose */
    const char *shape_option; /* first option that fixes the model or data */
} options;

/* ---- helpers ---- */

/* Dies unless a file can be created in the directory of path (and path is
** not a directory), so a bad -o fails before any training. */
static void check_writable(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        cli_die("%s: is a directory", path);
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp)
        cli_die("out of memory");
    memcpy(tmp, path, n + 1);
    char *slash = strrchr(tmp, '/');
    const char *name = "XXXXXX";
    if (slash)
        strcpy(slash + 1, ".charlm-train.XXXXXX");
    else
        snprintf(tmp, n + 16, ".charlm-train.%s", name);
    int fd = mkstemp(tmp);
    if (fd < 0)
        cli_die("%s: cannot write: %s", path, strerror(errno));
    close(fd);
    unlink(tmp);
    free(tmp);
}

static const char *fmt_rate(double r, char *buf, size_t n)
{
    if (r >= 1e6)
        snprintf(buf, n, "%.2fM", r / 1e6);
    else if (r >= 1e3)
        snprintf(buf, n, "%.1fk", r / 1e3);
    else
        snprintf(buf, n, "%.0f", r);
    return buf;
}

static void die_error(nlp_error *e, const char *path)
{
    if (path && !e->file[0])
        snprintf(e->file, sizeof e->file, "%s", path);
    cli_die_error(e);
}

/* ---- the run ---- */

typedef struct run {
    options *o;
    nlp_charlm *m;
    nlp_charlm_trainer *t;
    const int32_t *valid;     /* validation ids */
    size_t nvalid;
    char *ckpt;               /* MODEL.ckpt */
    double best;              /* best validation bpc so far (INFINITY: none) */
    long best_step;           /* step it was measured at; -1 before any */
    double elapsed;           /* training seconds, over resumed runs too */
    char command[1024];       /* for the model file's metadata */
    nlp_progress prog;
} run;

/* Metadata written with every model and checkpoint. */
static void run_meta(const run *r, char vals[][32], const char *meta[])
{
    int k = 0, v = 0;
#define META(key, fmt, val)                                \
    do {                                                   \
        snprintf(vals[v], 32, fmt, val);                   \
        meta[k++] = key;                                   \
        meta[k++] = vals[v++];                             \
    } while (0)
    META("train.best_valid_bpc", "%.17g", r->best);
    META("train.best_step", "%ld", r->best_step);
    META("train.elapsed", "%.17g", r->elapsed);
    META("train.valid_fraction", "%.17g", r->o->valid);
    META("train.min_count", "%ld", r->o->min_count);
    META("train.epochs", "%ld", r->o->epochs);
    META("train.time_limit", "%.17g", r->o->time_limit);
    META("train.steps_done", "%ld", r->t->step);
    META("train.lr_decay", "%.17g", r->o->lr_decay);
#undef META
    meta[k++] = "train.output";
    meta[k++] = r->o->output;
    meta[k++] = "command";
    meta[k++] = r->command;
    meta[k] = NULL;
}

static void save_best(run *r)
{
    char vals[16][32];
    const char *meta[40];
    run_meta(r, vals, meta);
    nlp_error e;
    if (nlp_charlm_save(r->m, r->o->output, meta, &e) != NLP_OK)
        die_error(&e, r->o->output);
}

static void save_checkpoint(run *r)
{
    char vals[16][32];
    const char *meta[40];
    run_meta(r, vals, meta);
    nlp_error e;
    if (nlp_charlm_checkpoint_save(r->t, r->ckpt, meta, &e) != NLP_OK)
        die_error(&e, r->ckpt);
}

/* Validation bpc (NAN without a validation set); saves MODEL when best. */
static double evaluate(run *r, int *improved)
{
    *improved = 0;
    if (r->nvalid < 2) {
        /* No validation text: the latest model is the one kept. */
        save_best(r);
        return NAN;
    }
    nlp_charlm_score s;
    int rc = nlp_charlm_eval(r->m, r->valid, r->nvalid, &s);
    if (rc != NLP_OK)
        cli_die("validation failed: %s", nlp_error_string(rc));
    double bpc = nlp_charlm_bpc(&s);
    if (isfinite(bpc) && bpc < r->best) {
        r->best = bpc;
        r->best_step = r->t->step;
        *improved = 1;
        save_best(r);
    }
    return bpc;
}

int main(int argc, char **argv)
{
    cli_init("charlm-train");
    options o;
    memset(&o, 0, sizeof o);
    nlp_charlm_config_default(&o.model);
    nlp_charlm_train_config_default(&o.train);
    o.min_count = DEF_MIN_COUNT;
    o.epochs = DEF_EPOCHS;
    o.time_limit = DEF_TIME_LIMIT;
    o.valid = DEF_VALID;
    o.lr_decay = DEF_LR_DECAY;
    o.threads = DEF_THREADS;
    int given_epochs = 0, given_time = 0, given_optim = 0, given_lr = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:vqh", long_options, NULL)) != -1) {
        const char *name = NULL;
        for (const struct option *p = long_options; p->name; p++)
            if (p->val == c)
                name = p->name;
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", name ? name : "?");
        switch (c) {
        case OPT_CELL:
            if (nlp_rnn_cell_parse(optarg, &o.model.cell) != NLP_OK)
                cli_usage_error("invalid value for --cell: '%s' (expected lstm, gru or rnn)",
                                optarg);
            break;
        case OPT_LAYERS: o.model.layers = (int)cli_parse_long(flag, optarg, 1, 16); break;
        case OPT_HIDDEN: o.model.hidden = (int)cli_parse_long(flag, optarg, 1, 8192); break;
        case OPT_EMBED: o.model.embed = (int)cli_parse_long(flag, optarg, 1, 8192); break;
        case OPT_DROPOUT: o.model.dropout = (float)cli_parse_double(flag, optarg, 0, 0.99); break;
        case OPT_MIN_COUNT: o.min_count = cli_parse_long(flag, optarg, 1, LONG_MAX); break;
        case OPT_SEQ_LEN: o.train.seq_len = (int)cli_parse_long(flag, optarg, 1, 100000); break;
        case OPT_BATCH: o.train.batch = (int)cli_parse_long(flag, optarg, 1, 100000); break;
        case OPT_EPOCHS:
            o.epochs = cli_parse_long(flag, optarg, 1, LONG_MAX);
            given_epochs = 1;
            break;
        case OPT_TIME_LIMIT:
            o.time_limit = cli_parse_double(flag, optarg, 0, 1e9);
            given_time = 1;
            break;
        case OPT_MAX_STEPS: o.max_steps = cli_parse_long(flag, optarg, 0, LONG_MAX); break;
        case OPT_LR:
            o.train.optim.lr = cli_parse_double(flag, optarg, 1e-9, 100);
            given_lr = 1;
            break;
        case OPT_LR_DECAY: o.lr_decay = cli_parse_double(flag, optarg, 0.01, 1); break;
        case OPT_OPTIMIZER: {
            nlp_optim_kind k;
            if (nlp_optim_kind_parse(optarg, &k) != NLP_OK)
                cli_usage_error("invalid value for --optimizer: '%s' (expected adam, rmsprop "
                                "or sgd)", optarg);
            o.train.optim.kind = k;
            given_optim = 1;
            break;
        }
        case OPT_CLIP: o.train.clip = (float)cli_parse_double(flag, optarg, 0, 1e9); break;
        case OPT_VALID: o.valid = cli_parse_double(flag, optarg, 0, 0.5); break;
        case OPT_SEED:
            o.train.seed = (uint64_t)cli_parse_long(flag, optarg, 0, LONG_MAX);
            break;
        case OPT_THREADS: o.threads = (int)cli_parse_long(flag, optarg, 1, 1024); break;
        case OPT_STRICT: o.strict = 1; break;
        case 'o': o.output = optarg; break;
        case OPT_CHECKPOINT_EVERY:
            o.checkpoint_every = cli_parse_double(flag, optarg, 0, 1e9);
            break;
        case OPT_RESUME: o.resume = optarg; break;
        case 'v': o.verbose = 1; break;
        case 'q': o.verbose = -1; break;
        case 'h': usage();
        case OPT_VERSION: cli_version();
        case ':': cli_usage_error("option '%s' requires an argument", argv[optind - 1]);
        default:
            if (optopt && optopt < 256)
                cli_usage_error("invalid option -- '%c'", optopt);
            cli_usage_error("unrecognized option '%s'", argv[optind - 1]);
        }
        switch (c) {
        case OPT_CELL: case OPT_LAYERS: case OPT_HIDDEN: case OPT_EMBED: case OPT_DROPOUT:
        case OPT_MIN_COUNT: case OPT_SEQ_LEN: case OPT_BATCH: case OPT_LR: case OPT_OPTIMIZER:
        case OPT_LR_DECAY:
        case OPT_CLIP: case OPT_VALID: case OPT_SEED:
            if (!o.shape_option)
                o.shape_option = name;
            break;
        }
    }
    /* Each optimiser keeps its own PyTorch defaults except the learning
    ** rate, which is ours unless given. */
    if (given_optim) {
        double lr = o.train.optim.lr;
        nlp_optim_config_default(&o.train.optim, o.train.optim.kind);
        if (given_lr || o.train.optim.kind == NLP_OPTIM_ADAM)
            o.train.optim.lr = lr;
    }
    if (o.resume && o.shape_option)
        cli_usage_error("--%s cannot be changed when resuming: the checkpoint fixes it",
                        o.shape_option);
    if (!o.resume && !o.output)
        cli_usage_error("no output model given (-o MODEL)");

    /* Resuming: the checkpoint brings the model and the configuration. */
    run r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    r.best = INFINITY;
    r.best_step = -1;
    nlp_model *ckfile = NULL;
    nlp_error e;
    if (o.resume) {
        int rc = nlp_charlm_load(&r.m, o.resume, 1, 1, &ckfile, &e);
        if (rc != NLP_OK)
            die_error(&e, o.resume);
        if (nlp_charlm_checkpoint_config(ckfile, &o.train, &e) != NLP_OK)
            die_error(&e, o.resume);
        o.model = r.m->cfg;
        double d;
        long l;
        if (nlp_model_meta_double(ckfile, "train.valid_fraction", &d, &e) != NLP_OK)
            die_error(&e, o.resume);
        o.valid = d;
        if (nlp_model_meta_long(ckfile, "train.min_count", &l, &e) != NLP_OK)
            die_error(&e, o.resume);
        o.min_count = l;
        if (nlp_model_meta_double(ckfile, "train.lr_decay", &d, &e) != NLP_OK)
            die_error(&e, o.resume);
        o.lr_decay = d;
        if (nlp_model_meta_double(ckfile, "train.best_valid_bpc", &d, &e) == NLP_OK)
            r.best = d;
        if (nlp_model_meta_long(ckfile, "train.best_step", &l, &e) == NLP_OK)
            r.best_step = l;
        if (nlp_model_meta_double(ckfile, "train.elapsed", &d, &e) == NLP_OK)
            r.elapsed = d;
        if (!given_epochs && nlp_model_meta_long(ckfile, "train.epochs", &l, &e) == NLP_OK)
            o.epochs = l;
        if (!given_time && nlp_model_meta_double(ckfile, "train.time_limit", &d, &e) == NLP_OK)
            o.time_limit = d;
        if (!o.output) {
            const char *out = nlp_model_meta(ckfile, "train.output");
            if (!out || !*out)
                cli_usage_error("no output model given (-o MODEL) and none in %s", o.resume);
            if (!(o.output = o.output_copy = strdup(out))) /* ckfile is freed early */
                cli_die("out of memory");
        }
    }
    check_writable(o.output);
    size_t olen = strlen(o.output);
    r.ckpt = malloc(olen + 6);
    if (!r.ckpt)
        cli_die("out of memory");
    memcpy(r.ckpt, o.output, olen);
    memcpy(r.ckpt + olen, ".ckpt", 6);
    {
        size_t k = 0;
        for (int i = 0; i < argc && k + 2 < sizeof r.command; i++)
            k += (size_t)snprintf(r.command + k, sizeof r.command - k, "%s%s", i ? " " : "",
                                  argv[i]);
    }

    nlp_tensor_set_threads(o.threads);
#ifdef _OPENMP
    omp_set_num_threads(o.threads);
#endif

    /* The corpus. */
    nlp_codepoints text;
    nlp_codepoints_init(&text);
    int warnings = 0; /* lines with invalid UTF-8 */
    int nfiles = argc - optind;
    if (nlp_codepoints_read_files(&text, (const char *const *)argv + optind, (size_t)nfiles,
                                  "-", o.strict, cli_warn_limited, &warnings, &e) != NLP_OK)
        cli_die_error(&e);
    cli_warn_summary(warnings, "lines with invalid UTF-8");
    if (text.nbad)
        cli_warn("%zu invalid UTF-8 sequences replaced by U+FFFD", text.nbad);
    if (text.n == 0)
        cli_die("empty input: nothing to train on");
    size_t nvalid = (size_t)floor((double)text.n * o.valid);
    size_t ntrain = text.n - nvalid;
    size_t need = (size_t)o.train.batch * ((size_t)o.train.seq_len + 1);
    if (ntrain < need)
        cli_die("corpus too short: %zu characters of training text, but --batch %d and "
                "--seq-len %d need at least %zu", ntrain, o.train.batch, o.train.seq_len, need);
    if (o.valid > 0 && nvalid < 2)
        cli_die("corpus too short for validation: --valid %g holds out %zu character%s "
                "(use --valid 0 to train without validation)", o.valid, nvalid,
                nvalid == 1 ? "" : "s");

    /* Vocabulary and model. */
    const int cap_T = o.train.seq_len > NLP_CHARLM_EVAL_T ? o.train.seq_len : NLP_CHARLM_EVAL_T;
    const int cap_B = o.train.batch > NLP_CHARLM_EVAL_STREAMS ? o.train.batch
                                                               : NLP_CHARLM_EVAL_STREAMS;
    if (r.m) {
        if (nlp_charlm_reserve(r.m, cap_T, cap_B) != NLP_OK)
            cli_die("out of memory");
    } else {
        nlp_vocab *v;
        int rc = nlp_charlm_vocab_build(&v, text.cp, ntrain, o.min_count);
        if (rc != NLP_OK)
            cli_die("building the vocabulary: %s", nlp_error_string(rc));
        if (nlp_vocab_size(v) < 2)
            cli_die("no character occurs %ld times in the training text (lower --min-count)",
                    o.min_count);
        rc = nlp_charlm_new(&r.m, &o.model, v, cap_T, cap_B, o.train.seed);
        if (rc != NLP_OK)
            cli_die("creating the model: %s", nlp_error_string(rc));
    }
    size_t nunk_train = 0, nunk;
    for (size_t i = 0; i < ntrain; i++)
        nunk_train += nlp_charlm_id(r.m, text.cp[i]) == NLP_CHARLM_UNK_ID;
    nlp_charlm_encode(r.m, &text, &nunk);
    r.valid = text.cp + ntrain;
    r.nvalid = nvalid;

    if (nlp_charlm_trainer_new(&r.t, r.m, &o.train, text.cp, ntrain, &e) != NLP_OK)
        cli_die_error(&e);
    if (ckfile) {
        if (nlp_charlm_checkpoint_restore(r.t, ckfile, &e) != NLP_OK)
            die_error(&e, o.resume);
        nlp_model_free(ckfile);
        ckfile = NULL;
    }

    /* From here on Ctrl-C means "checkpoint and stop".  SA_RESETHAND: a
    ** second one kills at once (the model files are written atomically). */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    nlp_progress_init(&r.prog, o.verbose < 0 ? NULL : stderr, -1);
    nlp_progress *pg = &r.prog;
    const long spe = r.t->steps_per_epoch;
    const long total_steps = o.epochs * spe;
    nlp_progress_line(pg, "charlm-train: %zu characters (%zu training, %zu validation), "
                      "%d symbols; %s %dx%d, embed %d: %zu parameters; %ld steps per epoch",
                      text.n, ntrain, nvalid, r.m->V, nlp_rnn_cell_name(o.model.cell),
                      o.model.layers, o.model.hidden, o.model.embed,
                      nlp_charlm_param_count(r.m), spe);
    if (o.verbose > 0) {
        nlp_progress_line(pg, "charlm-train: %zu training and %zu validation characters are "
                          "<unk> (min-count %ld); batch %d, seq-len %d, %s lr %g, clip %g, "
                          "dropout %g, %d threads", nunk_train, nunk - nunk_train, o.min_count,
                          o.train.batch, o.train.seq_len,
                          nlp_optim_kind_name(o.train.optim.kind), o.train.optim.lr,
                          (double)o.train.clip, (double)o.model.dropout, o.threads);
        if (o.resume)
            nlp_progress_line(pg, "charlm-train: resuming %s at epoch %ld, step %ld "
                              "(%.1fs of training done)", o.resume, r.t->epoch + 1, r.t->step,
                              r.elapsed);
    }

    /* ---- the training loop ---- */
    const size_t chars_per_step = (size_t)o.train.batch * o.train.seq_len;
    long steps_this_run = 0, steps_since_eval = 0;
    double t0 = nlp_progress_now(), run_train = 0; /* this run's training seconds */
    double last_ckpt = 0;
    int stop = 0; /* 1 done, 2 interrupted */
    const char *why = "epochs done";
    if (r.t->epoch >= o.epochs) {
        stop = 1;
    } else if (o.time_limit > 0 && r.elapsed >= o.time_limit) {
        stop = 1;
        why = "time limit";
    }
    double epoch_start_elapsed = r.elapsed;
    long epoch_start_step = r.t->step;
    char b1[32], b2[32], b3[32];
    while (!stop) {
        double ts = nlp_progress_now();
        double loss;
        int rc = nlp_charlm_train_step(r.t, &loss);
        double dt = nlp_progress_now() - ts;
        run_train += dt;
        r.elapsed += dt;
        if (rc < 0) {
            nlp_progress_finish(pg);
            cli_die("training diverged at step %ld (the loss is not finite); try a lower --lr "
                    "or --clip", r.t->step + 1);
        }
        steps_this_run++;
        steps_since_eval++;
        double rate = (double)(steps_this_run * (long)chars_per_step) / run_train;
        double eta = (double)(total_steps - r.t->step) * run_train / (double)steps_this_run;
        if (o.time_limit > 0 && o.time_limit - r.elapsed < eta)
            eta = o.time_limit - r.elapsed;
        if (rc == 1) {
            /* End of an epoch: validation, report, best model. */
            int improved;
            double vbpc = evaluate(&r, &improved);
            steps_since_eval = 0;
            /* No progress on held-out text: smaller steps (saved in the
            ** checkpoint with the optimiser, so resuming stays exact). */
            int decayed = 0;
            if (!improved && r.nvalid >= 2 && o.lr_decay < 1) {
                r.t->opt->cfg.lr *= o.lr_decay;
                decayed = 1;
            }
            double tbpc = r.t->last_epoch_count
                              ? r.t->last_epoch_nats / (double)r.t->last_epoch_count / log(2.0)
                              : NAN;
            double erate = (double)((r.t->step - epoch_start_step) * (long)chars_per_step)
                           / (r.elapsed - epoch_start_elapsed);
            char lrnote[48] = "";
            if (decayed)
                snprintf(lrnote, sizeof lrnote, ", lr now %g", r.t->opt->cfg.lr);
            nlp_progress_line(pg, "epoch %ld/%ld: train %.4f bpc, valid %.4f bpc%s%s, %s chars/s, "
                              "elapsed %s, ETA %s", r.t->epoch, o.epochs, tbpc, vbpc,
                              improved ? " (best)" : "", lrnote, fmt_rate(erate, b1, sizeof b1),
                              nlp_progress_duration(r.elapsed, b2, sizeof b2),
                              nlp_progress_duration(r.t->epoch >= o.epochs ? 0 : eta, b3,
                                                    sizeof b3));
            epoch_start_elapsed = r.elapsed;
            epoch_start_step = r.t->step;
            if (r.t->epoch >= o.epochs)
                stop = 1;
        } else {
            double frac = (double)r.t->pos / (double)(spe * o.train.seq_len);
            nlp_progress_update(pg, "epoch %ld/%ld %3.0f%%: train %.3f bpc, %s chars/s, "
                                "elapsed %s, ETA %s", r.t->epoch + 1, o.epochs, 100 * frac,
                                loss / log(2.0), fmt_rate(rate, b1, sizeof b1),
                                nlp_progress_duration(r.elapsed, b2, sizeof b2),
                                nlp_progress_duration(eta, b3, sizeof b3));
        }
        if (!stop && o.time_limit > 0 && r.elapsed >= o.time_limit) {
            stop = 1;
            why = "time limit";
        }
        if (!stop && o.max_steps > 0 && steps_this_run >= o.max_steps) {
            stop = 1;
            why = "--max-steps";
        }
        if (!stop && stop_signal) {
            stop = 2;
            break;
        }
        if (!stop && o.checkpoint_every > 0 && nlp_progress_now() - t0 - last_ckpt
                                                   >= o.checkpoint_every) {
            save_checkpoint(&r);
            last_ckpt = nlp_progress_now() - t0;
        }
    }
    nlp_progress_finish(pg);
    if (stop == 2) {
        save_checkpoint(&r);
        if (o.verbose >= 0)
            cli_warn("interrupted at epoch %ld, step %ld: checkpoint written to %s; continue "
                     "with --resume %s", r.t->epoch + 1, r.t->step, r.ckpt, r.ckpt);
        int sig = stop_signal;
        nlp_charlm_trainer_free(r.t);
        nlp_charlm_free(r.m);
        nlp_codepoints_free(&text);
        free(r.ckpt);
        free(o.output_copy);
        return 128 + sig;
    }
    /* Stopped in the middle of an epoch: measure the weights we stopped with. */
    if (steps_since_eval > 0 || r.best_step < 0) {
        int improved;
        double vbpc = evaluate(&r, &improved);
        if (steps_since_eval > 0)
            nlp_progress_line(pg, "stopped in epoch %ld (%s): valid %.4f bpc%s, elapsed %s",
                              r.t->epoch + 1, why, vbpc, improved ? " (best)" : "",
                              nlp_progress_duration(r.elapsed, b2, sizeof b2));
    }
    if (o.checkpoint_every > 0)
        save_checkpoint(&r);
    double rate = run_train > 0 ? (double)(steps_this_run * (long)chars_per_step) / run_train : 0;
    if (r.nvalid >= 2)
        nlp_progress_line(pg, "charlm-train: done (%s): %ld steps, %s chars/s, training time %s; "
                          "best valid %.4f bpc (step %ld) in %s", why, r.t->step,
                          fmt_rate(rate, b1, sizeof b1),
                          nlp_progress_duration(r.elapsed, b2, sizeof b2), r.best,
                          r.best_step, o.output);
    else
        nlp_progress_line(pg, "charlm-train: done (%s): %ld steps, %s chars/s, training time %s; "
                          "model in %s", why, r.t->step, fmt_rate(rate, b1, sizeof b1),
                          nlp_progress_duration(r.elapsed, b2, sizeof b2), o.output);
    if (o.verbose > 0)
        nlp_progress_line(pg, "charlm-train: chars_per_s=%.0f steps=%ld valid_bpc=%.4f",
                          rate, steps_this_run, r.best);
    nlp_charlm_trainer_free(r.t);
    nlp_charlm_free(r.m);
    nlp_codepoints_free(&text);
    free(r.ckpt);
    free(o.output_copy);
    return CLI_EXIT_OK;
}
