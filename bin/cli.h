/*
** cli: what every libnlp tool does the same way: program name, GNU-style
** messages and exit codes, checked number parsing, one name for standard
** input, limited invalid-UTF-8 warnings, checked writes to stdout.
**
**   exit 0  success          (--help and --version print to stdout)
**   exit 1  runtime error    "tool: FILE:LINE: what is wrong"; also a failed
**                            write to stdout ("tool: write error: ...")
**   exit 2  usage error      "tool: what is wrong" + "Try 'tool --help' ..."
**
** A closed pipe (`tool | head`) is not an error to report: cli_init()
** restores the default SIGPIPE action, so the tool stops silently, as the
** coreutils do.
*/
#ifndef NLP_CLI_H
#define NLP_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "nlp.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

/* How every tool names standard input in messages (for "-" or no FILE). */
#define CLI_STDIN_NAME "<stdin>"

/*
** The model charlm-train writes when given no -o, and that charlm-generate
** and charlm-score read when given no -m: a file in the current directory.
*/
#define CLI_DEFAULT_CHARLM_MODEL "charlm.model"

/*
** Records the tool's name for messages, restores the default SIGPIPE action
** and registers the check of stdout at exit (a failed write or close of
** stdout turns the exit status into 1 with "tool: write error: ...").
*/
void cli_init(const char *name);

/* The tool's name as given to cli_init. */
const char *cli_name(void);

/* "tool: msg" on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "tool: msg" on stderr, then exit 1. */
_Noreturn void cli_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "tool: FILE:LINE: text" from a library error, then exit 1. */
_Noreturn void cli_die_error(const nlp_error *e);

/* The same, naming path as the file when e names none. */
_Noreturn void cli_die_error_in(nlp_error *e, const char *path);

/* "tool: msg" + "Try 'tool --help' for more information." then exit 2. */
_Noreturn void cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
** The usage error for what getopt_long returned when it did not recognise
** the command line: c is ':' (a missing argument) or '?' (an unknown
** option, or an argument given to an option that takes none).  Call it
** with opterr = 0 and an optstring that starts with ':'.
*/
_Noreturn void cli_option_error(int c, char *const argv[]);

/*
** A subcommand's option that none of its own cases took: 'h' prints
** help() then tail() (the tool's common end of every help) and exits 0,
** version_code (the command's --version) prints the version, anything
** else is cli_option_error's usage error.
*/
_Noreturn void cli_command_option(int c, int version_code, char *const argv[],
                                  void (*help)(void), void (*tail)(void));

/* Prints "tool (libnlp) VERSION" to stdout and exits 0. */
_Noreturn void cli_version(void);

/*
** Parses a whole-string integer/real option value in [min, max]; anything
** else ("abc", "12x", out of range) is a usage error naming the option.
*/
long cli_parse_long(const char *option, const char *arg, long min, long max);
double cli_parse_double(const char *option, const char *arg, double min, double max);

/*
** The long name of the option in opts (a getopt_long table) whose val is
** c, for messages; "?" when none has it.
*/
const char *cli_option_name(const struct option *opts, int c);

/* The same as "--NAME" in buf (n bytes, truncated to fit); returns buf. */
const char *cli_option_flag(const struct option *opts, int c, char *buf, size_t n);

/* ==== Subcommands ====================================================== */

/*
** One command of a tool run as `tool COMMAND [ARG]...`: main is called with
** argv[0] = the command's name and the command's own arguments after it,
** and returns the exit status (or exits through cli_die/cli_usage_error).
** help (may be NULL) prints the command's usage and options to stdout and
** summary (may be NULL) is one line about it, for the tool's own --help;
** cli_dispatch uses neither.
*/
typedef struct cli_command {
    const char *name;
    int (*main)(int argc, char **argv);
    void (*help)(void);
    const char *summary;
} cli_command;

/*
** Runs the command that argv[1] names, one of the n commands, and returns
** its exit status.  Before a command, "--help" or "-h" calls help (the
** tool's help, to stdout) and exits 0, "--version" is cli_version(); no
** command, another option or an unknown command is a usage error (exit 2)
** that lists the commands' names ("train, predict or eval").
*/
int cli_dispatch(int argc, char **argv, const cli_command *commands, size_t n,
                 void (*help)(void));

/* ==== Input ============================================================ */

/* The name of path in messages: CLI_STDIN_NAME for "-", else path. */
const char *cli_input_name(const char *path);

/*
** Opens path for reading ("-" is stdin) or dies with "tool: path: strerror".
** Close with cli_close_read (which leaves stdin open).
*/
FILE *cli_open_read(const char *path);

/* Closes a file from cli_open_read; stdin is left open. */
void cli_close_read(FILE *f);

/*
** The model to load: given when not NULL; else def when that file exists
** (the default path, where trainer writes by default); else a usage error
** "no model given and DEF not found (train one with TRAINER, or give -m
** MODEL)", exit 2 like any missing operand.
*/
const char *cli_model_path(const char *given, const char *def, const char *trainer);

/* ==== Invalid UTF-8 warnings =========================================== */

/*
** Every tool warns the same way about the lines of an input that hold
** invalid UTF-8 (replaced by U+FFFD unless --strict): the first
** CLI_MAX_WARNINGS lines of each input as "tool: FILE:LINE: invalid
** UTF-8", then, when the input is done, one summary for the rest:
** "tool: FILE: ... and N more lines with invalid UTF-8".
*/
#define CLI_MAX_WARNINGS 5

typedef struct cli_utf8_warnings {
    const char *name;   /* the input, as named in messages (see cli_input_name) */
    long lines;         /* its lines with invalid UTF-8 so far */
} cli_utf8_warnings;

/* Starts counting for the input called name (kept, not copied). */
void cli_utf8_begin(cli_utf8_warnings *w, const char *name);

/*
** Warning callback for library readers (nlp_codepoints_warn_fn and the like):
** ctx is a cli_utf8_warnings; e names the file and line.
*/
void cli_utf8_warn(void *ctx, const nlp_error *e);

/* The same for a tool that finds the bad line itself (1-based line). */
void cli_utf8_warn_line(cli_utf8_warnings *w, long line);

/* Ends the input: prints the summary line when some were not shown. */
void cli_utf8_end(cli_utf8_warnings *w);

/*
** Input callback for readers of several inputs (nlp_codepoints_read_files):
** ctx is a cli_utf8_warnings; begins (end == 0) or ends (end == 1) the
** input called name.  With cli_utf8_warn as the warning callback.
*/
void cli_utf8_input(void *ctx, const char *name, int end);

/*
** Older form, kept for callers that count over all their inputs: ctx is an
** int counter; the first CLI_MAX_WARNINGS are printed as "tool:
** FILE:LINE: text", the rest only counted.  cli_warn_summary() then says
** "tool: ... and N more WHAT".  New code uses cli_utf8_* (per input, and
** the summary names the input).
*/
void cli_warn_limited(void *count, const nlp_error *e);
void cli_warn_summary(int count, const char *what);

/* ==== Output =========================================================== */

/*
** Writes n bytes to stdout; a failed write is reported ("tool: write
** error: strerror") and exits 1.
*/
void cli_write(const void *s, size_t n);

/* Reports the failed write to stdout that errno describes, then exit 1. */
_Noreturn void cli_write_error(void);

#endif
