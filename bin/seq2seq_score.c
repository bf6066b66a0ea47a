/*
** seq2seq score: the model's log-probability of given translations.
**
**   seq2seq score -m de-en.model < pairs.tsv
**
** Forced decoding: for each pair the sum of log p(y_t | y_<t, source) over
** the target's tokens and </s>, and the per-token perplexity
** exp(-logp / (tokens + 1)); one line per pair, in input order.
*/
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "seq2seq.h"
#include "seq2seq_common.h"

#define DEF_BATCH 64

void seq2seq_score_help(void)
{
    printf("Usage: seq2seq score -m MODEL [OPTION]... [PAIRS.tsv]\n"
           "  or:  seq2seq score -m MODEL --source FILE --target FILE [OPTION]...\n"
           "Print the model's log-probability (natural log) of each pair's target given\n"
           "its source, counting </s>, and the per-token perplexity, as\n"
           "'LOGPROB<TAB>PERPLEXITY', one line per pair in input order (blank lines\n"
           "hold no pair and print nothing); then, on standard error, the corpus\n"
           "perplexity.  Pairs as for train: 'source<TAB>target' from PAIRS.tsv (or\n"
           "standard input), or two line-aligned files.\n"
           "\n"
           "  -m, --model MODEL          the model to use (required)\n"
           "      --source FILE          source sentences (with --target)\n"
           "      --target FILE          target sentences, line-aligned with --source\n"
           "      --batch N              pairs scored together [%d]\n"
           "      --threads N            BLAS threads [1]\n"
           "  -q, --quiet                no corpus perplexity on standard error\n"
           "\n", DEF_BATCH);
}

enum { OPT_SOURCE = 256, OPT_TARGET, OPT_BATCH, OPT_THREADS, OPT_VERSION };

static const struct option long_options[] = {
    {"model", required_argument, NULL, 'm'},
    {"source", required_argument, NULL, OPT_SOURCE},
    {"target", required_argument, NULL, OPT_TARGET},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}
};

int seq2seq_score_main(int argc, char **argv)
{
    const char *model = NULL, *source = NULL, *target = NULL;
    int batch = DEF_BATCH, threads = 1, quiet = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:qh", long_options, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case OPT_SOURCE: source = optarg; break;
        case OPT_TARGET: target = optarg; break;
        case OPT_BATCH: batch = (int)cli_parse_long("--batch", optarg, 1, 100000); break;
        case OPT_THREADS: threads = (int)cli_parse_long("--threads", optarg, 1, 1024); break;
        case 'q': quiet = 1; break;
        case 'h': s2s_command_help(seq2seq_score_help);
        case OPT_VERSION: cli_version();
        default: cli_option_error(c, argv);
        }
    }
    if (!model)
        cli_usage_error("no model given (-m MODEL)");
    if (!source != !target)
        cli_usage_error("--source and --target go together");
    if (source && optind < argc)
        cli_usage_error("a PAIRS.tsv file and --source/--target: give one or the other");
    if (optind + 1 < argc)
        cli_usage_error("extra operand '%s' (one PAIRS.tsv at most)", argv[optind + 1]);
    nlp_seq2seq *m = s2s_load_model(model, threads);
    nlp_error e;
    nlp_pairs *raw = s2s_read_pairs(optind < argc ? argv[optind] : NULL, source, target);
    nlp_pairs *p;
    size_t unk_s, unk_t;
    if (nlp_pairs_encode(&p, raw, nlp_seq2seq_src_vocab(m), nlp_seq2seq_tgt_vocab(m), &unk_s,
                         &unk_t) != NLP_OK)
        cli_die("out of memory");
    double *logp = malloc((size_t)p->n * sizeof *logp);
    if (!logp)
        cli_die("out of memory");
    double sum;
    size_t tokens;
    if (s2s_forced_logp(m, p, batch, &sum, &tokens, logp, &e) != NLP_OK)
        cli_die_error(&e);
    for (long i = 0; i < p->n; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "%.4f\t%.4f\n", logp[i],
                         exp(-logp[i] / (nlp_pairs_tgt_len(p, i) + 1)));
        cli_write(line, (size_t)n);
    }
    if (!quiet)
        cli_warn("%ld pairs, %zu target tokens with </s>: log-probability %.4f, perplexity "
                 "%.4f; %zu source and %zu target tokens <unk>", p->n, tokens, sum,
                 tokens ? exp(-sum / (double)tokens) : NAN, unk_s, unk_t);
    free(logp);
    nlp_pairs_free(p);
    nlp_pairs_free(raw);
    nlp_seq2seq_free(m);
    return CLI_EXIT_OK;
}
