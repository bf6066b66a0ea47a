/*
** cli: what every libnlp tool does the same way: program name, GNU-style
** messages and exit codes, checked number parsing, safe stdout close.
**
**   exit 0  success          (--help and --version print to stdout)
**   exit 1  runtime error    "tool: FILE:LINE: what is wrong"
**   exit 2  usage error      "tool: what is wrong" + "Try 'tool --help' ..."
*/
#ifndef NLP_CLI_H
#define NLP_CLI_H

#include <stdio.h>

#include "nlp.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

/* Records the tool's name for messages and registers the stdout check. */
void cli_init(const char *name);

/* The tool's name as given to cli_init. */
const char *cli_name(void);

/* "tool: msg" on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "tool: msg" on stderr, then exit 1. */
_Noreturn void cli_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "tool: FILE:LINE: text" from a library error, then exit 1. */
_Noreturn void cli_die_error(const nlp_error *e);

/* "tool: msg" + "Try 'tool --help' for more information." then exit 2. */
_Noreturn void cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "tool (libnlp) VERSION" to stdout and exits 0. */
_Noreturn void cli_version(void);

/*
** Parses a whole-string integer/real option value in [min, max]; anything
** else ("abc", "12x", out of range) is a usage error naming the option.
*/
long cli_parse_long(const char *option, const char *arg, long min, long max);
double cli_parse_double(const char *option, const char *arg, double min, double max);

/*
** Warning callback for library readers (e.g. invalid UTF-8 lines): ctx is
** an int counter; the first CLI_MAX_WARNINGS are printed as
** "tool: FILE:LINE: text", the rest only counted.  cli_warn_summary() then
** says how many were not shown ("WHAT" names them).
*/
#define CLI_MAX_WARNINGS 10
void cli_warn_limited(void *count, const nlp_error *e);
void cli_warn_summary(int count, const char *what);

/* Opens path for reading ("-" is stdin) or dies with "tool: path: strerror". */
FILE *cli_open_read(const char *path);

#endif
