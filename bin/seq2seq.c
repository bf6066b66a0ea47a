/*
** seq2seq: attention encoder-decoder translation from the shell.
**
**   seq2seq train -o de-en.model train.tsv
**   seq2seq translate -m de-en.model < test.de > test.hyp
**   seq2seq score -m de-en.model < pairs.tsv
**   seq2seq bleu test.en < test.hyp
**
** This file only dispatches: `seq2seq COMMAND [ARG]...` runs the command's
** main (bin/seq2seq.h) with argv[0] = COMMAND.  A new command is one row
** of the table below.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "seq2seq.h"

typedef struct command {
    const char *name;
    int (*main)(int argc, char **argv);
    void (*help)(void);     /* the command's usage and options, to stdout */
    const char *summary;    /* one line for seq2seq --help */
} command;

static const command commands[] = {
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

/* "train, translate, score or bleu": the command names for messages. */
static void command_list(char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NCOMMANDS && used < n; i++) {
        const char *sep = i == 0 ? "" : i + 1 == NCOMMANDS ? " or " : ", ";
        int w = snprintf(buf + used, n - used, "%s%s", sep, commands[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static _Noreturn void help(void)
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
    exit(CLI_EXIT_OK);
}

int main(int argc, char **argv)
{
    cli_init("seq2seq");
    char names[256];
    command_list(names, sizeof names);
    if (argc < 2)
        cli_usage_error("no command (%s)", names);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
        help();
    if (!strcmp(cmd, "--version"))
        cli_version();
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].main(argc - 1, argv + 1);
    if (cmd[0] == '-')
        cli_usage_error("unrecognized option '%s' (a command comes first: %s)", cmd, names);
    cli_usage_error("unknown command '%s' (expected %s)", cmd, names);
}
