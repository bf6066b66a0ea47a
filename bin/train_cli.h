/*
** train_cli: the command line every libnlp trainer shares, around the
** training harness of nlp/train.h.
**
**   - the common training options, spelled the same in every trainer:
**     --epochs --time-limit --max-steps --lr --lr-decay --lr-patience
**     --min-lr --patience --optimizer --clip --seed --threads
**     --checkpoint-every --resume --valid-every --plot --average -v -q,
**     parsed into
**     an nlp_train_config, with their --help block printing the tool's
**     real defaults (the default learning rate per optimiser);
**   - which of them a checkpoint fixes when resuming, and which may change;
**   - the output checks made before any training: the model path can be
**     written, is not a directory, and is not some other file that a
**     model would overwrite;
**   - the SIGINT/SIGTERM handler (below).
**
** A tool puts CLI_TRAIN_LONG_OPTIONS in its getopt_long table and
** CLI_TRAIN_SHORT_OPTIONS in its option string, and hands every option
** it does not know itself to cli_train_option():
**
**     cli_train tr;
**     cli_train_init(&tr);
**     tr.cfg.epochs = 20;                       // the tool's own defaults
**     tr.lr[NLP_OPTIM_ADAM] = 0.002;
**     while ((c = getopt_long(...)) != -1)
**         if (!cli_train_option(&tr, c, optarg)) switch (c) { ...the tool's... }
**     cli_train_finish(&tr);                    // optimiser config, threads
**
** Signals: cli_train_signals() makes SIGINT and SIGTERM only record the
** signal in a volatile sig_atomic_t, which the harness polls between
** steps (cfg.stop): it then writes a checkpoint and returns, and the tool
** exits with 128 + the signal.  The handler never exits and is not reset
** after the first signal: a second Ctrl-C while the checkpoint is being
** written is recorded and nothing more, so the save finishes (and it is
** atomic anyway: temporary file, fsync, rename), leaving the complete new
** checkpoint, or the previous one if the save itself fails.  Ctrl-\
** (SIGQUIT) or SIGKILL still end the process at once.
*/
#ifndef NLP_TRAIN_CLI_H
#define NLP_TRAIN_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "nlp/model.h"
#include "nlp/train.h"

/* getopt_long values of the shared long options (a tool's own stay below). */
enum {
    CLI_TRAIN_OPT_EPOCHS = 0x1000,
    CLI_TRAIN_OPT_TIME_LIMIT,
    CLI_TRAIN_OPT_MAX_STEPS,
    CLI_TRAIN_OPT_LR,
    CLI_TRAIN_OPT_LR_DECAY,
    CLI_TRAIN_OPT_LR_PATIENCE,
    CLI_TRAIN_OPT_MIN_LR,
    CLI_TRAIN_OPT_PATIENCE,
    CLI_TRAIN_OPT_OPTIMIZER,
    CLI_TRAIN_OPT_CLIP,
    CLI_TRAIN_OPT_SEED,
    CLI_TRAIN_OPT_THREADS,
    CLI_TRAIN_OPT_CHECKPOINT_EVERY,
    CLI_TRAIN_OPT_RESUME,
    CLI_TRAIN_OPT_VALID_EVERY,
    CLI_TRAIN_OPT_PLOT,
    CLI_TRAIN_OPT_AVERAGE,
    CLI_TRAIN_OPT_END
};

#define CLI_TRAIN_SHORT_OPTIONS "vq"
#define CLI_TRAIN_LONG_OPTIONS                                                 \
    {"epochs", required_argument, NULL, CLI_TRAIN_OPT_EPOCHS},                 \
    {"time-limit", required_argument, NULL, CLI_TRAIN_OPT_TIME_LIMIT},         \
    {"max-steps", required_argument, NULL, CLI_TRAIN_OPT_MAX_STEPS},           \
    {"lr", required_argument, NULL, CLI_TRAIN_OPT_LR},                         \
    {"lr-decay", required_argument, NULL, CLI_TRAIN_OPT_LR_DECAY},             \
    {"lr-patience", required_argument, NULL, CLI_TRAIN_OPT_LR_PATIENCE},       \
    {"min-lr", required_argument, NULL, CLI_TRAIN_OPT_MIN_LR},                 \
    {"patience", required_argument, NULL, CLI_TRAIN_OPT_PATIENCE},             \
    {"optimizer", required_argument, NULL, CLI_TRAIN_OPT_OPTIMIZER},           \
    {"clip", required_argument, NULL, CLI_TRAIN_OPT_CLIP},                     \
    {"seed", required_argument, NULL, CLI_TRAIN_OPT_SEED},                     \
    {"threads", required_argument, NULL, CLI_TRAIN_OPT_THREADS},               \
    {"checkpoint-every", required_argument, NULL, CLI_TRAIN_OPT_CHECKPOINT_EVERY}, \
    {"resume", required_argument, NULL, CLI_TRAIN_OPT_RESUME},                 \
    {"valid-every", required_argument, NULL, CLI_TRAIN_OPT_VALID_EVERY},       \
    {"plot", required_argument, NULL, CLI_TRAIN_OPT_PLOT},                     \
    {"average", required_argument, NULL, CLI_TRAIN_OPT_AVERAGE},               \
    {"verbose", no_argument, NULL, 'v'},                                       \
    {"quiet", no_argument, NULL, 'q'}

typedef struct cli_train {
    nlp_train_config cfg;   /* what the harness runs with: the harness's
                               defaults, then the tool's, then the options */
    double lr[3];           /* default learning rate per nlp_optim_kind (the
                               tool's; init: sgd 1, adam 0.002, rmsprop 0.002) */
    double lr_given;        /* --lr, 0 when not given */
    nlp_optim_kind optimizer; /* --optimizer; adam */
    uint64_t seed;          /* --seed: the tool's weights, dropout, ...; 1 */
    int threads;            /* --threads: cfg.threads workers per step (tasks
                               with a parallel step), BLAS and OpenMP; 1 */
    const char *resume;     /* --resume CHECKPOINT, or NULL */
    unsigned given;         /* options on the command line: bit
                               (opt - CLI_TRAIN_OPT_EPOCHS); v and q: none */
    char *paths[2];         /* owned: the output and checkpoint names made
                               by cli_train_paths; freed by cli_train_free */
    int rank, processes;    /* this process of how many (cli_train_processes);
                               0 of 1 */
} cli_train;

/* Is option opt (CLI_TRAIN_OPT_*) on the command line? */
#define CLI_TRAIN_GIVEN(o, opt) (((o)->given >> ((opt) - CLI_TRAIN_OPT_EPOCHS)) & 1u)

/* The harness's defaults (nlp_train_config_default), Adam, seed 1, one
** thread, the learning rates above, log on stderr. */
void cli_train_init(cli_train *o);

/*
** Handles option c (a getopt_long result) with argument arg when it is a
** shared one: returns 1, or 0 when c is not one of them.  A bad value is a
** usage error (exit 2) naming the option.
*/
int cli_train_option(cli_train *o, int c, const char *arg);

/* Prints the shared options' --help block to out with o's defaults. */
void cli_train_help(const cli_train *o, FILE *out);

/*
** After the options: a usage error (exit 2) when resuming with an option
** the checkpoint fixes (the learning rate, its schedule, the optimiser,
** clipping, the seed); the optimiser's configuration (PyTorch's defaults
** for the kind, the learning rate given or the tool's default for that
** kind); the thread count (BLAS, OpenMP).
*/
void cli_train_finish(cli_train *o);

/*
** Resuming: reads the checkpoint's configuration into o->cfg, keeping
** the limits given on the command line (--epochs, --time-limit,
** --max-steps, --patience, --valid-every, --checkpoint-every), --average
** (given: averaging is turned on, off or changed from here on; else the
** checkpoint's) and every
** path and reporting setting of o (a path stored in a file is never
** followed).  Returns NLP_OK or NLP_EFORMAT with e filled.
*/
int cli_train_resume(cli_train *o, const nlp_model *ckpt, nlp_error *e);

/*
** The model path of a run resumed from ckpt without -o: the checkpoint's
** directory and base name without ".ckpt" (malloc'ed), so "runs/a.ckpt"
** gives "runs/a"; NULL (a usage error for the tool) when ckpt does not end
** in ".ckpt" or is only that.
*/
char *cli_train_resume_output(const char *ckpt);

/*
** Dies (exit 1, "tool: PATH: reason") unless a file can be created in the
** directory of path, path is not a directory and, when it exists, is a
** libnlp model file (so training never overwrites a text or anything else
** by mistake).  Checked before any training.
*/
void cli_train_check_output(const char *path);

/* As cli_train_check_output for a file that is not a model (--plot): it
** may exist and be overwritten, but must be writable and not a directory. */
void cli_train_check_writable(const char *path);

/*
** Settles where the run writes, before any training: the model is output
** (-o), or when resuming without -o the checkpoint's name without ".ckpt"
** (a usage error when it has no such ending), or else fallback (NULL: a
** usage error asking for -o).  The checkpoint is MODEL.ckpt.  Both are
** checked with cli_train_check_output, --plot with cli_train_check_writable,
** and set in o->cfg.  Returns 1 when fallback was taken (the tool should
** say where the model goes), 0 otherwise.
*/
int cli_train_paths(cli_train *o, const char *output, const char *fallback);

/*
** Several processes (mpirun; bin/mpi.h makes c): cfg.collective = c, and
** o->rank, o->processes from it.  Only rank 0 reports (every other rank
** runs with verbosity -1: errors only) and checks the output paths in
** cli_train_paths (the others write nothing, and their machines may not
** even have the directory).  c NULL: one process, nothing changes.
*/
void cli_train_processes(cli_train *o, const nlp_train_collective *c);

/* Frees what cli_train_paths made (o->cfg.output and .checkpoint). */
void cli_train_free(cli_train *o);

/*
** Installs the SIGINT/SIGTERM handler (see the top of this file) and
** returns the flag it sets (the signal number), for cfg.stop.
*/
volatile sig_atomic_t *cli_train_signals(void);

/* The exit status for a run that ended with res: 128 + the signal when it
** was stopped by one, else 0. */
int cli_train_exit_status(const nlp_train_result *res);

/*
** The end of every trainer's run, after rc = nlp_train_run(..., res, e):
** a diverged run (NLP_ERANGE) or another error ends the program with
** status 1 and a message; else, unless quiet, one line says where the
** model is: "interrupted: continue with --resume CHECKPOINT", "no model
** written to OUTPUT: ..." (a run resumed elsewhere where nothing beat the
** best of before), or "model written to OUTPUT (the best on validation;
** RATE)", RATE being the tool's speed text (NULL: none).
*/
void cli_train_report(int rc, const nlp_error *e, const nlp_train_result *res,
                      const char *output, const char *checkpoint, const char *rate, int quiet);

#endif
