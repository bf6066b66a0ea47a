/*
** seq2seq: attention encoder-decoder translation from the shell.
**
**   seq2seq train -o de-en.model train.tsv
**   seq2seq translate -m de-en.model < test.de > test.hyp
**   seq2seq score -m de-en.model < pairs.tsv
**   seq2seq bleu test.en < test.hyp
**
** This file only dispatches: `seq2seq COMMAND [ARG]...` runs the command's
** main (bin/seq2seq.h) with argv[0] = COMMAND, through cli_dispatch.  A
** new command is one row of the table below.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "seq2seq.h"

static const cli_command commands[] = {
    {"train", seq2seq_train_main, seq2seq_train_help,
     "train an attention encoder-decoder on parallel text"},
    {"translate", seq2seq_translate_main, seq2seq_translate_help,
     "translate line by line (beam or greedy search)"},
    {"score", seq2seq_score_main, seq2seq_score_help,
     "log-probability and perplexity of given translations"},
    {"bleu", seq2seq_bleu_main, seq2seq_bleu_help,
     "corpus BLEU and chrF of a hypothesis against a reference, as sacreBLEU"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void help(void)
{
    printf("Usage: seq2seq COMMAND [OPTION]... [ARG]...\n"
           "An attention encoder-decoder that learns to translate one token sequence\n"
           "into another, and the metrics to judge it.\n"
           "\n"
           "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        printf("  %-12s %s\n", commands[i].name, commands[i].summary);
    printf("\n'seq2seq COMMAND --help' shows one command's options; all of them follow.\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        printf("\n");
        commands[i].help();
    }
    printf("\n"
           "seq2seq itself (before a command):\n"
           "  -h, --help                 display this help and exit\n"
           "      --version              output version information and exit\n"
           "\n"
           "Exit status: 0 success, 1 error, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    cli_init("seq2seq");
    return cli_dispatch(argc, argv, commands, NCOMMANDS, help);
}
