/*
** charlm-train: train a character-level language model on UTF-8 text.
**
**   cat divina.txt | charlm-train              (writes charlm.model)
**
** The corpus is read whole (stdin or FILEs), decoded to code points, split
** into training text and a validation tail (--valid), and trained as a
** charlm task (nlp/charlm.h) by the shared harness (nlp/train.h), which
** keeps the best model in MODEL and checkpoints to MODEL.ckpt.  The common
** training options, the output checks and the signal handling are
** train_cli's; this file holds the model's options and the wiring.
*/
#include "config.h"

#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "train_cli.h"
#include "nlp/charlm.h"
#include "nlp/codepoints.h"
#include "nlp/model.h"
#ifdef HAVE_MPI
#include "mpi.h"
#endif

/* Defaults of charlm-train's own options and of the shared ones it sets. */
#define DEF_VALID 0.05
#define DEF_MIN_COUNT 2
#define DEF_EPOCHS 0
#define DEF_TIME_LIMIT 1200.0
#define DEF_AVERAGE 0.999
#define DEF_MIN_LR 1e-4

static _Noreturn void usage(const cli_train *tr)
{
    nlp_charlm_config m;
    nlp_charlm_train_config t;
    nlp_charlm_config_default(&m);
    nlp_charlm_train_config_default(&t);
    printf("Usage: charlm-train [OPTION]... [FILE]...\n"
           "Train a character-level language model on UTF-8 text read from the FILEs\n"
           "(or standard input; '-' is standard input).  Characters are Unicode code\n"
           "points.  The last --valid fraction is held out; after every epoch the\n"
           "model with the best validation bits-per-character is written to MODEL\n"
           "(%s unless -o is given).  With the defaults training stops\n"
           "after %.0f seconds (20 minutes) of training.\n"
           "\n"
           "Model and data:\n"
           "      --cell TYPE            lstm, gru or rnn [%s]\n"
           "      --layers N             stacked recurrent layers [%d]\n"
           "      --hidden N             units per layer [%d]\n"
           "      --embed N              character embedding size [%d]\n"
           "      --dropout P            dropout between the layers and before the\n"
           "                             output [%g]\n"
           "      --min-count N          characters seen fewer times are trained as the\n"
           "                             unknown symbol <unk> [%d]\n"
           "      --seq-len N            steps unrolled through time per chunk [%d]\n"
           "      --batch N              parallel streams over the text [%d]\n"
           "      --valid FRACTION       held out from the end for validation [%g]\n"
           "      --strict               refuse invalid UTF-8 (default: replace it by\n"
           "                             U+FFFD and warn)\n"
           "  -o, --output MODEL         where the best model goes; the checkpoint is\n"
           "                             MODEL.ckpt [%s; with --resume X.ckpt: X]\n"
           "\n",
           CLI_DEFAULT_CHARLM_MODEL, DEF_TIME_LIMIT, nlp_rnn_cell_name(m.cell),
           m.layers, m.hidden, m.embed, (double)m.dropout, DEF_MIN_COUNT, t.seq_len, t.batch,
           DEF_VALID, CLI_DEFAULT_CHARLM_MODEL);
    cli_train_help(tr, stdout);
    printf("  -h, --help                 display this help and exit\n"
           "      --version              output version information and exit\n"
           "\n"
           "Ctrl-C or SIGTERM writes MODEL.ckpt and exits with status 130 or 143;\n"
           "--resume MODEL.ckpt with the same corpus continues bit-identically.\n"
           "Exit status: 0 success, 1 error, 2 usage error.\n");
    exit(CLI_EXIT_OK);
}

enum {
    OPT_CELL = 256, OPT_LAYERS, OPT_HIDDEN, OPT_EMBED, OPT_DROPOUT, OPT_MIN_COUNT,
    OPT_SEQ_LEN, OPT_BATCH, OPT_VALID, OPT_STRICT, OPT_VERSION
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
    {"valid", required_argument, NULL, OPT_VALID},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"output", required_argument, NULL, 'o'},
    CLI_TRAIN_LONG_OPTIONS,
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}
};


int main(int argc, char **argv)
{
    cli_init("charlm-train");
    cli_train tr;
    cli_train_init(&tr);
    tr.cfg.epochs = DEF_EPOCHS;
    tr.cfg.time_limit = DEF_TIME_LIMIT;
    tr.cfg.min_lr = DEF_MIN_LR;
    tr.cfg.average = DEF_AVERAGE;
    nlp_charlm_config mc;
    nlp_charlm_train_config cc;
    nlp_charlm_config_default(&mc);
    nlp_charlm_train_config_default(&cc);
    double valid = DEF_VALID;
    long min_count = DEF_MIN_COUNT;
    int strict = 0;
    const char *output = NULL, *shape_option = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h" CLI_TRAIN_SHORT_OPTIONS, long_options, NULL))
           != -1) {
        if (cli_train_option(&tr, c, optarg))
            continue;
        char flag[32];
        cli_option_flag(long_options, c, flag, sizeof flag);
        switch (c) {
        case OPT_CELL:
            if (nlp_rnn_cell_parse(optarg, &mc.cell) != NLP_OK)
                cli_usage_error("invalid value for --cell: '%s' (expected lstm, gru or rnn)",
                                optarg);
            break;
        case OPT_LAYERS: mc.layers = (int)cli_parse_long(flag, optarg, 1, 16); break;
        case OPT_HIDDEN: mc.hidden = (int)cli_parse_long(flag, optarg, 1, 8192); break;
        case OPT_EMBED: mc.embed = (int)cli_parse_long(flag, optarg, 1, 8192); break;
        case OPT_DROPOUT: mc.dropout = (float)cli_parse_double(flag, optarg, 0, 0.99); break;
        case OPT_MIN_COUNT: min_count = cli_parse_long(flag, optarg, 1, LONG_MAX); break;
        case OPT_SEQ_LEN: cc.seq_len = (int)cli_parse_long(flag, optarg, 1, 100000); break;
        case OPT_BATCH: cc.batch = (int)cli_parse_long(flag, optarg, 1, 100000); break;
        case OPT_VALID: valid = cli_parse_double(flag, optarg, 0, 0.5); break;
        case OPT_STRICT: strict = 1; break;
        case 'o': output = optarg; break;
        case 'h': usage(&tr);
        case OPT_VERSION: cli_version();
        default: cli_option_error(c, argv);
        }
        if (c >= OPT_CELL && c <= OPT_VALID && !shape_option)
            shape_option = cli_option_name(long_options, c);
    }
    if (tr.resume && shape_option)
        cli_usage_error("--%s cannot be changed when resuming: the checkpoint fixes it",
                        shape_option);
    cli_train_finish(&tr);
#ifdef HAVE_MPI
    /* Under mpirun: every rank trains its share of each batch. */
    cli_mpi_start();
    cli_train_processes(&tr, cli_mpi_collective());
#endif

    /* Resuming: the checkpoint brings the model and the configuration. */
    nlp_charlm *m = NULL;
    nlp_model *ck = NULL;
    nlp_error e;
    if (tr.resume) {
        /* The split must be the same: the task checks the texts. */
        if (nlp_charlm_load(&m, tr.resume, 1, 1, &ck, &e) != NLP_OK
            || nlp_charlm_train_config_read(&cc, ck, &e) != NLP_OK
            || cli_train_resume(&tr, ck, &e) != NLP_OK
            || nlp_model_meta_double(ck, "charlm-train.valid", &valid, &e) != NLP_OK
            || nlp_model_meta_long(ck, "charlm-train.min_count", &min_count, &e) != NLP_OK)
            cli_die_error_in(&e, tr.resume);
        if (!(valid >= 0 && valid <= 0.5) || min_count < 1)
            cli_die("%s: charlm-train.valid or charlm-train.min_count out of range", tr.resume);
        mc = m->cfg;
    } else {
        cc.seed = tr.seed;
    }
    /* Each training thread takes a share of the streams. */
    if (tr.processes == 1 && tr.threads > cc.batch)
        cli_usage_error("--threads %d is more than the batch's %d streams: every thread "
                        "needs at least one", tr.threads, cc.batch);
    if (tr.processes > 1 && (long)tr.threads * tr.processes > cc.batch)
        cli_usage_error("%d ranks x --threads %d is more than the batch's %d streams: every "
                        "thread needs at least one", tr.processes, tr.threads, cc.batch);

    /* Where the model goes: -o, next to the checkpoint resumed (never a
    ** path read from it), or the default in the current directory; all
    ** checked before any training. */
    const int announce = cli_train_paths(&tr, output, CLI_DEFAULT_CHARLM_MODEL);
    output = tr.cfg.output;
    const char *ckpt = tr.cfg.checkpoint;

    /* The corpus, split into training text and the validation tail. */
    nlp_codepoints text;
    nlp_codepoints_init(&text);
    cli_utf8_warnings w;
    if (nlp_codepoints_read_files(&text, (const char *const *)argv + optind,
                                  (size_t)(argc - optind), CLI_STDIN_NAME, strict, cli_utf8_warn,
                                  cli_utf8_input, &w, &e) != NLP_OK)
        cli_die_error(&e);
    if (text.n == 0)
        cli_die("empty input: nothing to train on");
    const size_t nvalid = (size_t)floor((double)text.n * valid), ntrain = text.n - nvalid;
    const size_t need = (size_t)cc.batch * ((size_t)cc.seq_len + 1);
    if (ntrain < need)
        cli_die("corpus too short: %zu characters of training text, but --batch %d and "
                "--seq-len %d need at least %zu", ntrain, cc.batch, cc.seq_len, need);
    if (valid > 0 && nvalid < 2)
        cli_die("corpus too short for validation: --valid %g holds out %zu character%s "
                "(use --valid 0 to train without validation)", valid, nvalid,
                nvalid == 1 ? "" : "s");
    if (!m) {
        nlp_vocab *v;
        int rc = nlp_charlm_vocab_build(&v, text.cp, ntrain, min_count);
        if (rc != NLP_OK)
            cli_die("building the vocabulary: %s", nlp_error_string(rc));
        if (nlp_vocab_size(v) < 2)
            cli_die("no character occurs %ld times in the training text (lower --min-count)",
                    min_count);
        if ((rc = nlp_charlm_new(&m, &mc, v, cc.seq_len, cc.batch, tr.seed)) != NLP_OK)
            cli_die("creating the model: %s", nlp_error_string(rc));
    }
    size_t nunk_train = 0, nunk;
    for (size_t i = 0; i < ntrain; i++)
        nunk_train += nlp_charlm_id(m, text.cp[i]) == NLP_CHARLM_UNK_ID;
    nlp_charlm_encode(m, &text, &nunk);
    nlp_charlm_trainer *ct;
    if (nlp_charlm_trainer_new(&ct, m, &cc, text.cp, ntrain, text.cp + ntrain, nvalid, &e)
        != NLP_OK)
        cli_die_error(&e);

    /* Metadata of every file written: how to rebuild the split, and how
    ** the model was made. */
    char command[1024] = "", vbuf[32], mbuf[32];
    for (int i = 0, k = 0; i < argc && k + 2 < (int)sizeof command; i++)
        k += snprintf(command + k, sizeof command - (size_t)k, "%s%s", i ? " " : "", argv[i]);
    snprintf(vbuf, sizeof vbuf, "%.17g", valid);
    snprintf(mbuf, sizeof mbuf, "%ld", min_count);
    const char *meta[] = {"charlm-train.valid", vbuf, "charlm-train.min_count", mbuf,
                          "command", command, NULL};
    tr.cfg.meta = meta;
    tr.cfg.stop = cli_train_signals(); /* from here on Ctrl-C checkpoints */
    nlp_train *run;
    if (nlp_train_new(&run, &tr.cfg, nlp_charlm_trainer_task(ct), &e) != NLP_OK)
        cli_die_error(&e);
    if (ck && nlp_train_resume(run, ck, &e) != NLP_OK)
        cli_die_error_in(&e, tr.resume);
    nlp_model_free(ck);
    const int quiet = tr.cfg.verbosity < 0;
    if (announce && !quiet)
        cli_warn("no -o given: the model goes to %s", output);
    if (!quiet)
        cli_warn("%zu characters (%zu training, %zu validation), %d symbols; %s %dx%d, "
                 "embed %d: %zu parameters; %ld steps per epoch", text.n, ntrain, nvalid, m->V,
                 nlp_rnn_cell_name(mc.cell), mc.layers, mc.hidden, mc.embed,
                 nlp_charlm_param_count(m), nlp_charlm_trainer_steps_per_epoch(ct));
    if (tr.cfg.verbosity > 0)
        cli_warn("%zu training and %zu validation characters are <unk> (min-count %ld); "
                 "batch %d, seq-len %d, %s lr %g, clip %g, dropout %g, %d threads%s%s",
                 nunk_train, nunk - nunk_train, min_count, cc.batch, cc.seq_len,
                 nlp_optim_kind_name(tr.cfg.optim.kind), tr.cfg.optim.lr, tr.cfg.clip,
                 (double)mc.dropout, tr.threads, tr.resume ? "; resuming " : "",
                 tr.resume ? tr.resume : "");

    nlp_train_result res;
    int rc = nlp_train_run(run, &res, &e);
    /* The harness has reported the run; what is the tool's to add. */
    const double secs = nlp_charlm_trainer_run_seconds(ct);
    const double rate = secs > 0 ? (double)nlp_charlm_trainer_run_steps(ct) * cc.batch
                                       * cc.seq_len / secs : 0;
    char rate_text[64];
    snprintf(rate_text, sizeof rate_text, "%.0f chars/s", rate);
    cli_train_report(rc, &e, &res, output, ckpt, rate_text, quiet);
    if (tr.cfg.verbosity > 0)
        cli_warn("chars_per_s=%.0f steps=%ld valid_bpc=%.4f", rate, res.steps, res.best_metric);
    int status = cli_train_exit_status(&res);
#ifdef HAVE_MPI
    cli_mpi_finish();
#endif
    nlp_train_free(run);
    nlp_charlm_trainer_free(ct);
    nlp_charlm_free(m);
    nlp_codepoints_free(&text);
    cli_train_free(&tr);
    return status;
}
