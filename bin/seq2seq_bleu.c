/*
** seq2seq bleu: corpus BLEU-4 (and chrF) of a hypothesis file against a
** reference file, as sacreBLEU 2.x computes them by default.
*/
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "seq2seq.h"

void seq2seq_bleu_help(void)
{
    printf("Usage: seq2seq bleu [OPTION]... REF [HYP]\n"
           "Corpus BLEU-4 of the hypotheses HYP (or standard input) against the\n"
           "references REF, one sentence a line, as sacreBLEU 2.x computes it by default.\n"
           "\n"
           "      --lowercase            compare lowercased text\n"
           "      --tokenize TOK         13a (mteval-v13a) or none [13a]\n"
           "      --chrf                 also chrF (character 6-grams, beta 2)\n"
           "      --strict               stop at invalid UTF-8 instead of replacing it\n");
}

enum { OPT_LOWERCASE = 256, OPT_TOKENIZE, OPT_CHRF, OPT_STRICT, OPT_HELP };

int seq2seq_bleu_main(int argc, char **argv)
{
    static const struct option options[] = {
        {"lowercase", no_argument, NULL, OPT_LOWERCASE},
        {"tokenize", required_argument, NULL, OPT_TOKENIZE},
        {"chrf", no_argument, NULL, OPT_CHRF},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case OPT_LOWERCASE: case OPT_CHRF: case OPT_STRICT:
            break;
        case OPT_TOKENIZE:
            if (strcmp(optarg, "13a") && strcmp(optarg, "none"))
                cli_usage_error("invalid value for --tokenize: '%s' (expected 13a or none)",
                                optarg);
            break;
        case 'h':
            seq2seq_bleu_help();
            exit(CLI_EXIT_OK);
        default:
            cli_option_error(c, argv);
        }
    }
    cli_die("bleu: not built yet");
}
