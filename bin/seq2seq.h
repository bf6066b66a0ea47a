/*
** seq2seq: the subcommands of the seq2seq tool (bin/seq2seq.c dispatches).
**
** Each subcommand is a pair: its main, called with argv[0] = the command's
** name ("bleu") and the command's own arguments after it, which returns
** the exit status (or exits through cli_die / cli_usage_error); and its
** help, which prints the command's usage and options to stdout (seq2seq
** --help prints every command's, so that the man page check sees them all).
** cli_init("seq2seq") has run before either is called.
*/
#ifndef NLP_SEQ2SEQ_TOOL_H
#define NLP_SEQ2SEQ_TOOL_H

/* seq2seq bleu: corpus BLEU (and chrF) of a hypothesis against a reference. */
int seq2seq_bleu_main(int argc, char **argv);
void seq2seq_bleu_help(void);

/* seq2seq train: train a model on parallel text. */
int seq2seq_train_main(int argc, char **argv);
void seq2seq_train_help(void);

/* seq2seq translate: translate line by line with a model. */
int seq2seq_translate_main(int argc, char **argv);
void seq2seq_translate_help(void);

/* seq2seq score: the model's log-probability of given pairs. */
int seq2seq_score_main(int argc, char **argv);
void seq2seq_score_help(void);

#endif
