/*
** seq2seq train: train an attention encoder-decoder on parallel text.
**
**   paste src.tok tgt.tok | seq2seq train -o de-en.model
**   seq2seq train -o de-en.model --source train.de --target train.en \
**       --valid-source val.de --valid-target val.en
**
** The corpus is read whole (nlp/pairs.h), the vocabularies made from it,
** and the model (nlp/seq2seq.h) trained by the shared harness (nlp/train.h)
** through the task of seq2seq_common.c, which keeps the best model on the
** validation pairs in MODEL and checkpoints to MODEL.ckpt.
*/
#include "config.h"

#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mpi.h"
#include "seq2seq.h"
#include "seq2seq_common.h"
#include "train_cli.h"
#include "nlp/vectors.h"

/* Defaults of the options of train, and of the shared ones it sets (the
** PyTorch reference's: Adam at 1e-3, clipping at 1). */
#define DEF_EPOCHS 30
#define DEF_LR 0.001
#define DEF_CLIP 1.0
#define DEF_PATIENCE 4
#define DEF_MIN_COUNT 2
#define DEF_MAX_VOCAB 0
#define DEF_EVAL_BATCH 64
#define DEF_MAX_LEN_RATIO 2.0
#define DEF_MIN_LR 1e-5
/* Chosen for Multi30k-sized data (tens of thousands of pairs) trained for up
** to an hour: more dropout, label smoothing and a weight average than the
** library's anchor-sized defaults, which overfit after a few epochs. */
#define DEF_DROPOUT 0.3f
#define DEF_LABEL_SMOOTHING 0.1f
#define DEF_AVERAGE 0.999

static void tool_defaults(cli_train *tr)
{
    cli_train_init(tr);
    tr->cfg.epochs = DEF_EPOCHS;
    tr->cfg.clip = DEF_CLIP;
    tr->cfg.patience = DEF_PATIENCE;
    tr->cfg.min_lr = DEF_MIN_LR;
    tr->lr[NLP_OPTIM_ADAM] = DEF_LR;
    tr->cfg.average = DEF_AVERAGE;
}

static void tool_model_defaults(nlp_seq2seq_config *m)
{
    nlp_seq2seq_config_default(m);
    m->dropout = DEF_DROPOUT;
    m->label_smoothing = DEF_LABEL_SMOOTHING;
}

void seq2seq_train_help(void)
{
    cli_train tr;
    tool_defaults(&tr);
    nlp_seq2seq_config m;
    tool_model_defaults(&m);
    nlp_pairs_batch_config b;
    nlp_pairs_batch_config_default(&b);
    printf("Usage: seq2seq train -o MODEL [OPTION]... [TRAIN.tsv]\n"
           "  or:  seq2seq train -o MODEL --source FILE --target FILE [OPTION]...\n"
           "Train an attention encoder-decoder on parallel text: one pair a line,\n"
           "'source<TAB>target' (TRAIN.tsv, or standard input), or two line-aligned\n"
           "files; tokens are separated by spaces (run tokenize first).  With validation\n"
           "pairs the model with the best validation metric is kept in MODEL, and\n"
           "training stops after --patience validations without a new best.\n"
           "\n"
           "Data:\n"
           "  -o, --output MODEL         where the best model goes; the checkpoint is\n"
           "                             MODEL.ckpt (required; with --resume X.ckpt: X)\n"
           "      --source FILE          source sentences, one a line (with --target)\n"
           "      --target FILE          target sentences, line-aligned with --source\n"
           "      --valid DEV.tsv        validation pairs, 'source<TAB>target'\n"
           "      --valid-source FILE    validation sources (with --valid-target)\n"
           "      --valid-target FILE    validation targets\n"
           "      --valid-metric M       ppl (perplexity) or bleu (of greedy\n"
           "                             translations, tokens as given) [ppl]\n"
           "      --min-count N          words seen fewer times are <unk> [%d]\n"
           "      --max-vocab N          at most N words a side, the four specials\n"
           "                             included; 0 = no limit [%d]\n"
           "      --batch N              pairs per step, of similar length [%d]\n"
           "      --batch-tokens N       instead, as many pairs as fit N padded tokens\n"
           "                             (pairs x longest side); 0 = off [0]\n"
           "      --max-len-ratio R      --valid-metric bleu: translations of at most\n"
           "                             R x source length + %d tokens [%g]\n"
           "\n"
           "Model:\n"
           "      --cell TYPE            gru or lstm [%s]\n"
           "      --embed N              embedding size, both sides [%d]\n"
           "      --hidden N             units per layer (per direction in the\n"
           "                             encoder) [%d]\n"
           "      --enc-layers N         stacked bidirectional encoder layers [%d]\n"
           "      --dec-layers N         stacked decoder layers [%d]\n"
           "      --attention KIND       bahdanau, luong-dot, luong-general or none [%s]\n"
           "      --attn-hidden N        Bahdanau's hidden size; 0 = --hidden [%d]\n"
           "      --dropout P            on embeddings, between layers and on the\n"
           "                             output features [%g]\n"
           "      --label-smoothing A    in [0,1) [%g]\n"
           "      --tie-embeddings       the decoder's input embedding is its output\n"
           "                             layer too\n"
           "      --src-embeddings FILE  word2vec vectors (text or binary) for source\n"
           "                             words; the dimension must be --embed\n"
           "      --tgt-embeddings FILE  the same for target words\n"
           "\n",
           DEF_MIN_COUNT, DEF_MAX_VOCAB, b.batch, S2S_MAX_LEN_EXTRA, DEF_MAX_LEN_RATIO,
           nlp_rnn_cell_name(m.cell), m.embed, m.hidden, m.enc_layers, m.dec_layers,
           nlp_seq2seq_attention_name(m.attention), m.attn_hidden, (double)m.dropout,
           (double)m.label_smoothing);
    cli_train_help(&tr, stdout);
    printf("\nCtrl-C or SIGTERM writes MODEL.ckpt and exits with status 130 or 143;\n"
           "--resume MODEL.ckpt with the same data continues bit-identically.\n");
}

enum {
    OPT_SOURCE = 256, OPT_TARGET, OPT_VALID, OPT_VALID_SOURCE, OPT_VALID_TARGET,
    OPT_VALID_METRIC, OPT_MIN_COUNT, OPT_MAX_VOCAB, OPT_BATCH, OPT_BATCH_TOKENS,
    OPT_MAX_LEN_RATIO,
    /* options that shape the model: fixed when resuming */
    OPT_CELL, OPT_EMBED, OPT_HIDDEN, OPT_ENC_LAYERS, OPT_DEC_LAYERS, OPT_ATTENTION,
    OPT_ATTN_HIDDEN, OPT_DROPOUT, OPT_LABEL_SMOOTHING, OPT_TIE, OPT_SRC_EMB, OPT_TGT_EMB,
    OPT_VERSION
};

static const struct option long_options[] = {
    {"output", required_argument, NULL, 'o'},
    {"source", required_argument, NULL, OPT_SOURCE},
    {"target", required_argument, NULL, OPT_TARGET},
    {"valid", required_argument, NULL, OPT_VALID},
    {"valid-source", required_argument, NULL, OPT_VALID_SOURCE},
    {"valid-target", required_argument, NULL, OPT_VALID_TARGET},
    {"valid-metric", required_argument, NULL, OPT_VALID_METRIC},
    {"min-count", required_argument, NULL, OPT_MIN_COUNT},
    {"max-vocab", required_argument, NULL, OPT_MAX_VOCAB},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"batch-tokens", required_argument, NULL, OPT_BATCH_TOKENS},
    {"max-len-ratio", required_argument, NULL, OPT_MAX_LEN_RATIO},
    {"cell", required_argument, NULL, OPT_CELL},
    {"embed", required_argument, NULL, OPT_EMBED},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
    {"enc-layers", required_argument, NULL, OPT_ENC_LAYERS},
    {"dec-layers", required_argument, NULL, OPT_DEC_LAYERS},
    {"attention", required_argument, NULL, OPT_ATTENTION},
    {"attn-hidden", required_argument, NULL, OPT_ATTN_HIDDEN},
    {"dropout", required_argument, NULL, OPT_DROPOUT},
    {"label-smoothing", required_argument, NULL, OPT_LABEL_SMOOTHING},
    {"tie-embeddings", no_argument, NULL, OPT_TIE},
    {"src-embeddings", required_argument, NULL, OPT_SRC_EMB},
    {"tgt-embeddings", required_argument, NULL, OPT_TGT_EMB},
    CLI_TRAIN_LONG_OPTIONS,
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}
};


/* Word vectors into one side's embedding rows. */
static void load_vectors(nlp_seq2seq *m, int target, const char *path, int quiet)
{
    FILE *f = cli_open_read(path);
    nlp_vectors *v;
    nlp_error e;
    if (nlp_vectors_read(f, cli_input_name(path), 0, &v, &e) != NLP_OK)
        cli_die_error(&e);
    cli_close_read(f);
    long found;
    if (nlp_seq2seq_set_vectors(m, target, v, &found, &e) != NLP_OK)
        cli_die_error_in(&e, cli_input_name(path));
    if (!quiet)
        cli_warn("%s: vectors for %ld of %ld %s words", cli_input_name(path), found,
                 nlp_vocab_size(target ? nlp_seq2seq_tgt_vocab(m) : nlp_seq2seq_src_vocab(m)),
                 target ? "target" : "source");
    nlp_vectors_free(v);
}

/* The train command's own settings, kept in every file for --resume. */
typedef struct train_settings {
    long min_count, max_vocab, batch, batch_tokens, metric;
    double max_len_ratio;
    uint64_t seed;
} train_settings;

static int read_settings(train_settings *s, const nlp_model *ck, nlp_error *e)
{
    uint64_t seed;
    int rc;
    if ((rc = nlp_model_meta_range(ck, "seq2seq-train.min_count", 1, LONG_MAX, &s->min_count, e))
        || (rc = nlp_model_meta_range(ck, "seq2seq-train.max_vocab", 0, INT_MAX, &s->max_vocab, e))
        || (rc = nlp_model_meta_range(ck, "seq2seq-train.batch", 1, 1000000, &s->batch, e))
        || (rc = nlp_model_meta_range(ck, "seq2seq-train.batch_tokens", 0, 100000000,
                                      &s->batch_tokens, e))
        || (rc = nlp_model_meta_range(ck, "seq2seq-train.valid_metric", 0, 1, &s->metric, e))
        || (rc = nlp_model_meta_u64(ck, "seq2seq-train.seed", UINT64_MAX, &seed, e))
        || (rc = nlp_model_meta_double(ck, "seq2seq-train.max_len_ratio", &s->max_len_ratio, e)))
        return rc;
    if (!(s->max_len_ratio > 0 && s->max_len_ratio <= 100))
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "seq2seq-train.max_len_ratio out of range");
    s->seed = seed;
    return NLP_OK;
}

int seq2seq_train_main(int argc, char **argv)
{
    cli_train tr;
    tool_defaults(&tr);
    nlp_seq2seq_config mc;
    tool_model_defaults(&mc);
    nlp_pairs_batch_config bc;
    nlp_pairs_batch_config_default(&bc);
    train_settings ts = {DEF_MIN_COUNT, DEF_MAX_VOCAB, bc.batch, 0, S2S_METRIC_PPL,
                         DEF_MAX_LEN_RATIO, 1};
    const char *output = NULL, *source = NULL, *target = NULL, *valid = NULL;
    const char *valid_source = NULL, *valid_target = NULL, *src_emb = NULL, *tgt_emb = NULL;
    const char *fixed_option = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":o:h" CLI_TRAIN_SHORT_OPTIONS, long_options, NULL))
           != -1) {
        if (cli_train_option(&tr, c, optarg))
            continue;
        char flag[40];
        cli_option_flag(long_options, c, flag, sizeof flag);
        switch (c) {
        case 'o': output = optarg; break;
        case OPT_SOURCE: source = optarg; break;
        case OPT_TARGET: target = optarg; break;
        case OPT_VALID: valid = optarg; break;
        case OPT_VALID_SOURCE: valid_source = optarg; break;
        case OPT_VALID_TARGET: valid_target = optarg; break;
        case OPT_VALID_METRIC:
            if (!strcmp(optarg, "ppl"))
                ts.metric = S2S_METRIC_PPL;
            else if (!strcmp(optarg, "bleu"))
                ts.metric = S2S_METRIC_BLEU;
            else
                cli_usage_error("invalid value for --valid-metric: '%s' (expected ppl or bleu)",
                                optarg);
            break;
        case OPT_MIN_COUNT: ts.min_count = cli_parse_long(flag, optarg, 1, LONG_MAX); break;
        case OPT_MAX_VOCAB:
            ts.max_vocab = cli_parse_long(flag, optarg, 0, INT_MAX);
            if (ts.max_vocab > 0 && ts.max_vocab <= NLP_PAIRS_NSPECIAL)
                cli_usage_error("--max-vocab %ld leaves no room for words beside the %d "
                                "specials", ts.max_vocab, NLP_PAIRS_NSPECIAL);
            break;
        case OPT_BATCH: ts.batch = cli_parse_long(flag, optarg, 1, 1000000); break;
        case OPT_BATCH_TOKENS: ts.batch_tokens = cli_parse_long(flag, optarg, 0, 100000000); break;
        case OPT_MAX_LEN_RATIO: ts.max_len_ratio = cli_parse_double(flag, optarg, 0.01, 100); break;
        case OPT_CELL:
            if (nlp_rnn_cell_parse(optarg, &mc.cell) != NLP_OK || mc.cell == NLP_RNN_TANH)
                cli_usage_error("invalid value for --cell: '%s' (expected gru or lstm)", optarg);
            break;
        case OPT_EMBED: mc.embed = (int)cli_parse_long(flag, optarg, 1, NLP_SEQ2SEQ_MAX_WIDTH); break;
        case OPT_HIDDEN: mc.hidden = (int)cli_parse_long(flag, optarg, 1, NLP_SEQ2SEQ_MAX_WIDTH); break;
        case OPT_ENC_LAYERS:
            mc.enc_layers = (int)cli_parse_long(flag, optarg, 1, NLP_SEQ2SEQ_MAX_LAYERS);
            break;
        case OPT_DEC_LAYERS:
            mc.dec_layers = (int)cli_parse_long(flag, optarg, 1, NLP_SEQ2SEQ_MAX_LAYERS);
            break;
        case OPT_ATTENTION:
            if (nlp_seq2seq_attention_parse(optarg, &mc.attention) != NLP_OK)
                cli_usage_error("invalid value for --attention: '%s' (expected bahdanau, "
                                "luong-dot, luong-general or none)", optarg);
            break;
        case OPT_ATTN_HIDDEN:
            mc.attn_hidden = (int)cli_parse_long(flag, optarg, 0, NLP_SEQ2SEQ_MAX_WIDTH);
            break;
        case OPT_DROPOUT: mc.dropout = (float)cli_parse_double(flag, optarg, 0, 0.95); break;
        case OPT_LABEL_SMOOTHING:
            mc.label_smoothing = (float)cli_parse_double(flag, optarg, 0, 0.99);
            break;
        case OPT_TIE: mc.tie_embeddings = 1; break;
        case OPT_SRC_EMB: src_emb = optarg; break;
        case OPT_TGT_EMB: tgt_emb = optarg; break;
        case 'h': s2s_command_help(seq2seq_train_help);
        case OPT_VERSION: cli_version();
        default: cli_option_error(c, argv);
        }
        if (((c >= OPT_CELL && c <= OPT_TGT_EMB) || (c >= OPT_MIN_COUNT && c <= OPT_MAX_LEN_RATIO)
             || c == OPT_VALID_METRIC) && !fixed_option)
            fixed_option = cli_option_name(long_options, c);
    }
    if (tr.resume && fixed_option)
        cli_usage_error("--%s cannot be changed when resuming: the checkpoint fixes it",
                        fixed_option);
    if (!source != !target)
        cli_usage_error("--source and --target go together");
    if (source && optind < argc)
        cli_usage_error("a TRAIN.tsv file and --source/--target: give one or the other");
    if (optind + 1 < argc)
        cli_usage_error("extra operand '%s' (one TRAIN.tsv at most)", argv[optind + 1]);
    if (!valid_source != !valid_target)
        cli_usage_error("--valid-source and --valid-target go together");
    if (valid && valid_source)
        cli_usage_error("--valid and --valid-source/--valid-target: give one or the other");
    if (ts.metric == S2S_METRIC_BLEU && !valid && !valid_source)
        cli_usage_error("--valid-metric bleu needs validation pairs (--valid or "
                        "--valid-source/--valid-target)");
    if (!tr.resume && !output)
        cli_usage_error("no model given: -o MODEL (the best model goes there)");
    cli_train_finish(&tr);
#ifdef HAVE_MPI
    /* Under mpirun: every rank reads the pairs and trains its share of
    ** each batch; standard input reaches rank 0 only. */
    if (cli_mpi_launched_size() > 1 && !source
        && (optind >= argc || strcmp(argv[optind], "-") == 0))
        cli_usage_error("under mpirun every rank reads the training pairs: give TRAIN.tsv "
                        "or --source/--target (standard input reaches rank 0 only)");
    cli_mpi_start();
    cli_train_processes(&tr, cli_mpi_collective());
#endif

    /* Resuming: the checkpoint brings the model and the settings. */
    nlp_seq2seq *m = NULL;
    nlp_model *ck = NULL;
    nlp_error e;
    if (tr.resume) {
        if (nlp_seq2seq_load(&m, tr.resume, &ck, &e) != NLP_OK
            || read_settings(&ts, ck, &e) != NLP_OK || cli_train_resume(&tr, ck, &e) != NLP_OK)
            cli_die_error_in(&e, tr.resume);
        mc = *nlp_seq2seq_get_config(m);
    } else {
        ts.seed = tr.seed;
    }
    bc.batch = (int)ts.batch;
    bc.batch_tokens = ts.batch_tokens;
    cli_train_paths(&tr, output, NULL);
    output = tr.cfg.output;
    const char *ckpt = tr.cfg.checkpoint;
    const int quiet = tr.cfg.verbosity < 0;

    /* The data, and the vocabularies made from it. */
    nlp_pairs *raw = s2s_read_pairs(optind < argc ? argv[optind] : NULL, source, target);
    nlp_pairs *raw_dev = valid || valid_source ? s2s_read_pairs(valid, valid_source, valid_target)
                                               : NULL;
    if (!m) {
        nlp_vocab *sv, *tv;
        if (nlp_pairs_vocab_build(&sv, raw->src_words, ts.min_count, ts.max_vocab) != NLP_OK
            || nlp_pairs_vocab_build(&tv, raw->tgt_words, ts.min_count, ts.max_vocab) != NLP_OK)
            cli_die("building the vocabularies: out of memory");
        if (nlp_vocab_size(sv) <= NLP_PAIRS_NSPECIAL || nlp_vocab_size(tv) <= NLP_PAIRS_NSPECIAL)
            cli_die("no %s word occurs %ld times in the training data (lower --min-count)",
                    nlp_vocab_size(sv) <= NLP_PAIRS_NSPECIAL ? "source" : "target", ts.min_count);
        nlp_rng rng;
        nlp_rng_seed(&rng, ts.seed);
        if (nlp_seq2seq_new(&m, &mc, sv, tv, &rng, &e) != NLP_OK)
            cli_die_error(&e);
        if (src_emb)
            load_vectors(m, 0, src_emb, quiet);
        if (tgt_emb)
            load_vectors(m, 1, tgt_emb, quiet);
    }
    nlp_pairs *data, *dev = NULL;
    size_t unk_src, unk_tgt, dunk_src = 0, dunk_tgt = 0;
    if (nlp_pairs_encode(&data, raw, nlp_seq2seq_src_vocab(m), nlp_seq2seq_tgt_vocab(m), &unk_src,
                         &unk_tgt) != NLP_OK
        || (raw_dev && nlp_pairs_encode(&dev, raw_dev, nlp_seq2seq_src_vocab(m),
                                        nlp_seq2seq_tgt_vocab(m), &dunk_src, &dunk_tgt) != NLP_OK))
        cli_die("encoding the data: out of memory");
    s2s_train_config tc;
    tc.batch = bc;
    tc.seed = ts.seed;
    tc.metric = (s2s_metric)ts.metric;
    tc.eval_batch = DEF_EVAL_BATCH;
    tc.max_len_ratio = ts.max_len_ratio;
    tc.log = quiet ? NULL : stderr;
    s2s_trainer *st;
    if (s2s_trainer_new(&st, m, &tc, data, dev, raw_dev, &e) != NLP_OK)
        cli_die_error(&e);
    {
        int B;
        nlp_pairs_batcher *probe;
        if (nlp_pairs_batcher_new(&probe, data, &bc, 1, &e) != NLP_OK)
            cli_die_error(&e);
        nlp_pairs_batcher_max(probe, &B, NULL, NULL);
        nlp_pairs_batcher_free(probe);
        if (tr.threads > B)
            cli_usage_error("--threads %d is more than the %d pairs of a batch: every thread "
                            "needs at least one", tr.threads, B);
    }

    /* Metadata of every file written: how the run was made. */
    char command[1024] = "", b1[32], b2[32], b3[32], b4[32], b5[32], b6[32], b7[32];
    for (int i = 0, k = 0; i < argc && k + 2 < (int)sizeof command; i++)
        k += snprintf(command + k, sizeof command - (size_t)k, "%s%s", i ? " " : "seq2seq ",
                      argv[i]);
    snprintf(b1, sizeof b1, "%ld", ts.min_count);
    snprintf(b2, sizeof b2, "%ld", ts.max_vocab);
    snprintf(b3, sizeof b3, "%ld", ts.batch);
    snprintf(b4, sizeof b4, "%ld", ts.batch_tokens);
    snprintf(b5, sizeof b5, "%ld", ts.metric);
    snprintf(b6, sizeof b6, "%.17g", ts.max_len_ratio);
    snprintf(b7, sizeof b7, "%llu", (unsigned long long)ts.seed);
    const char *meta[] = {"seq2seq-train.min_count", b1, "seq2seq-train.max_vocab", b2,
                          "seq2seq-train.batch", b3, "seq2seq-train.batch_tokens", b4,
                          "seq2seq-train.valid_metric", b5, "seq2seq-train.max_len_ratio", b6,
                          "seq2seq-train.seed", b7, "command", command, NULL};
    tr.cfg.meta = meta;
    tr.cfg.stop = cli_train_signals(); /* from here on Ctrl-C checkpoints */
    nlp_train *run;
    if (nlp_train_new(&run, &tr.cfg, s2s_trainer_task(st), &e) != NLP_OK)
        cli_die_error(&e);
    if (ck && nlp_train_resume(run, ck, &e) != NLP_OK)
        cli_die_error_in(&e, tr.resume);
    nlp_model_free(ck);
    if (!quiet) {
        size_t ns = data->src_start[data->n], nt = data->tgt_start[data->n];
        cli_warn("%ld training pairs (%zu source, %zu target tokens; %.1f%% and %.1f%% <unk>)"
                 "%s%ld validation pairs; vocabularies %ld and %ld; %s %s, embed %d, hidden %d, "
                 "%d+%d layers: %zu parameters; %ld batches an epoch",
                 data->n, ns, nt, ns ? 100.0 * (double)unk_src / (double)ns : 0.0,
                 nt ? 100.0 * (double)unk_tgt / (double)nt : 0.0, dev ? ", " : ", no ",
                 dev ? dev->n : 0L, nlp_vocab_size(nlp_seq2seq_src_vocab(m)),
                 nlp_vocab_size(nlp_seq2seq_tgt_vocab(m)), nlp_rnn_cell_name(mc.cell),
                 nlp_seq2seq_attention_name(mc.attention), mc.embed, mc.hidden, mc.enc_layers,
                 mc.dec_layers, nlp_seq2seq_params(m)->n, s2s_trainer_batches(st));
    }
    if (tr.cfg.verbosity > 0)
        cli_warn("validation <unk>: %zu source, %zu target tokens; batch %ld, batch tokens "
                 "%ld, %s lr %g, clip %g, dropout %g, label smoothing %g, %d threads%s%s",
                 dunk_src, dunk_tgt, ts.batch, ts.batch_tokens,
                 nlp_optim_kind_name(tr.cfg.optim.kind), tr.cfg.optim.lr, tr.cfg.clip,
                 (double)mc.dropout, (double)mc.label_smoothing, tr.threads,
                 tr.resume ? "; resuming " : "", tr.resume ? tr.resume : "");

    nlp_train_result res;
    int rc = nlp_train_run(run, &res, &e);
    const double secs = s2s_trainer_seconds(st);
    const double rate = secs > 0 ? s2s_trainer_tokens(st) / secs : 0;
    char rate_text[64];
    snprintf(rate_text, sizeof rate_text, "%.0f target tokens/s", rate);
    cli_train_report(rc, &e, &res, output, ckpt, rate_text, quiet);
    if (tr.cfg.verbosity > 0)
        cli_warn("tgt_tokens_per_s=%.0f steps=%ld epochs=%ld valid_%s=%.4f", rate, res.steps,
                 res.epochs, ts.metric == S2S_METRIC_BLEU ? "bleu" : "ppl", res.best_metric);
    int status = cli_train_exit_status(&res);
#ifdef HAVE_MPI
    cli_mpi_finish();
#endif
    nlp_train_free(run);
    s2s_trainer_free(st);
    nlp_pairs_free(data);
    nlp_pairs_free(dev);
    nlp_pairs_free(raw);
    nlp_pairs_free(raw_dev);
    nlp_seq2seq_free(m);
    cli_train_free(&tr);
    return status;
}
