/*
** cli: shared command-line plumbing for the libnlp tools.  See cli.h.
** (A program may keep its name in a static; the library may not.)
*/
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *tool_name = "libnlp";
static int write_error_reported; /* by cli_write_error: not again at exit */

/*
** Catches a failed write to stdout (a full disk, an I/O error) at exit, as
** coreutils' close_stdout does: buffered output is flushed by fclose, and
** an error seen earlier (ferror) counts too.  Registered first, so it runs
** after every other atexit handler.
*/
static void close_stdout(void)
{
    int failed_before = ferror(stdout);
    errno = 0;
    int close_failed = fclose(stdout) != 0;
    if (!failed_before && !close_failed)
        return;
    if (!write_error_reported) {
        /* An earlier failure whose errno is gone is reported without one. */
        if (close_failed && errno)
            fprintf(stderr, "%s: write error: %s\n", tool_name, strerror(errno));
        else
            fprintf(stderr, "%s: write error\n", tool_name);
    }
    _exit(CLI_EXIT_FAILURE);
}

void cli_init(const char *name)
{
    tool_name = name;
    /* A tool whose reader went away (`tool | head`) stops silently, killed
    ** by SIGPIPE, even when started with SIGPIPE ignored. */
    signal(SIGPIPE, SIG_DFL);
    atexit(close_stdout);
}

const char *cli_name(void)
{
    return tool_name;
}

static void vmessage(const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
}

void cli_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    exit(CLI_EXIT_FAILURE);
}

void cli_die_error(const nlp_error *e)
{
    char buf[NLP_ERROR_FILE_MAX + NLP_ERROR_TEXT_MAX + 32];
    cli_die("%s", nlp_error_format(e, buf, sizeof buf));
}

void cli_die_error_in(nlp_error *e, const char *path)
{
    if (!e->file[0])
        snprintf(e->file, sizeof e->file, "%s", path);
    cli_die_error(e);
}

void cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help' for more information.\n", tool_name);
    exit(CLI_EXIT_USAGE);
}

void cli_option_error(int c, char *const argv[])
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    if (c == ':') {
        if (optopt && optopt < 256 && strncmp(arg, "--", 2) != 0)
            cli_usage_error("option requires an argument -- '%c'", optopt);
        cli_usage_error("option '%s' requires an argument", arg);
    }
    /* getopt_long sets optopt to the option's value when a long option
    ** that takes no argument was given one ("--strict=yes"). */
    if (optopt && strncmp(arg, "--", 2) == 0 && strchr(arg, '=')) {
        int n = (int)(strchr(arg, '=') - arg);
        cli_usage_error("option '%.*s' doesn't allow an argument", n, arg);
    }
    if (optopt && optopt < 256)
        cli_usage_error("invalid option -- '%c'", optopt);
    cli_usage_error("unrecognized option '%s'", arg);
}

void cli_command_option(int c, int version_code, char *const argv[], void (*help)(void),
                        void (*tail)(void))
{
    if (c == 'h') {
        help();
        tail();
        exit(CLI_EXIT_OK);
    }
    if (c == version_code)
        cli_version();
    cli_option_error(c, argv);
}

void cli_version(void)
{
    printf("%s (libnlp) %s\n", tool_name, nlp_version());
    exit(CLI_EXIT_OK);
}

long cli_parse_long(const char *option, const char *arg, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end != '\0' || errno == ERANGE)
        cli_usage_error("invalid value for %s: '%s' (expected an integer)", option, arg);
    if (v < min || v > max)
        cli_usage_error("invalid value for %s: %ld (expected %ld..%ld)", option, v, min, max);
    return v;
}

double cli_parse_double(const char *option, const char *arg, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (end == arg || *end != '\0' || errno == ERANGE || !isfinite(v))
        cli_usage_error("invalid value for %s: '%s' (expected a number)", option, arg);
    if (v < min || v > max)
        cli_usage_error("invalid value for %s: %g (expected %g..%g)", option, v, min, max);
    return v;
}

const char *cli_option_name(const struct option *opts, int c)
{
    for (const struct option *p = opts; p->name; p++)
        if (p->val == c)
            return p->name;
    return "?";
}

const char *cli_option_flag(const struct option *opts, int c, char *buf, size_t n)
{
    snprintf(buf, n, "--%s", cli_option_name(opts, c));
    return buf;
}

/* ==== Subcommands ====================================================== */

/* "train, translate, score or bleu": the commands' names for messages. */
static void command_list(const cli_command *commands, size_t n, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(buf + used, size - used, "%s%s", sep, commands[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int cli_dispatch(int argc, char **argv, const cli_command *commands, size_t n,
                 void (*help)(void))
{
    char names[256];
    command_list(commands, n, names, sizeof names);
    if (argc < 2)
        cli_usage_error("no command (%s)", names);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        help();
        exit(CLI_EXIT_OK);
    }
    if (!strcmp(cmd, "--version"))
        cli_version();
    for (size_t i = 0; i < n; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].main(argc - 1, argv + 1);
    if (cmd[0] == '-')
        cli_usage_error("unrecognized option '%s' (a command comes first: %s)", cmd, names);
    cli_usage_error("unknown command '%s' (expected %s)", cmd, names);
}

/* ==== Input ============================================================ */

const char *cli_input_name(const char *path)
{
    return strcmp(path, "-") == 0 ? CLI_STDIN_NAME : path;
}

FILE *cli_open_read(const char *path)
{
    if (strcmp(path, "-") == 0)
        return stdin;
    FILE *f = fopen(path, "rb");
    if (!f)
        cli_die("%s: %s", path, strerror(errno));
    return f;
}

void cli_close_read(FILE *f)
{
    if (f && f != stdin)
        fclose(f);
}

const char *cli_model_path(const char *given, const char *def, const char *trainer)
{
    if (given)
        return given;
    struct stat st;
    if (stat(def, &st) == 0)
        return def;
    cli_usage_error("no model given and %s not found (train one with %s, or give -m MODEL)",
                    def, trainer);
}

/* ==== Invalid UTF-8 warnings =========================================== */

void cli_utf8_begin(cli_utf8_warnings *w, const char *name)
{
    w->name = name;
    w->lines = 0;
}

void cli_utf8_warn(void *ctx, const nlp_error *e)
{
    cli_utf8_warnings *w = ctx;
    if (++w->lines <= CLI_MAX_WARNINGS) {
        char buf[NLP_ERROR_FILE_MAX + NLP_ERROR_TEXT_MAX + 32];
        cli_warn("%s", nlp_error_format(e, buf, sizeof buf));
    }
}

void cli_utf8_warn_line(cli_utf8_warnings *w, long line)
{
    if (++w->lines <= CLI_MAX_WARNINGS)
        cli_warn("%s:%ld: invalid UTF-8", w->name, line);
}

void cli_utf8_end(cli_utf8_warnings *w)
{
    if (w->lines > CLI_MAX_WARNINGS)
        cli_warn("%s: ... and %ld more line%s with invalid UTF-8", w->name,
                 w->lines - CLI_MAX_WARNINGS, w->lines - CLI_MAX_WARNINGS == 1 ? "" : "s");
    w->lines = 0;
}

void cli_utf8_input(void *ctx, const char *name, int end)
{
    if (end)
        cli_utf8_end(ctx);
    else
        cli_utf8_begin(ctx, name);
}

void cli_warn_limited(void *count, const nlp_error *e)
{
    int *n = count;
    if (++*n <= CLI_MAX_WARNINGS) {
        char buf[NLP_ERROR_FILE_MAX + NLP_ERROR_TEXT_MAX + 32];
        cli_warn("%s", nlp_error_format(e, buf, sizeof buf));
    }
}

void cli_warn_summary(int count, const char *what)
{
    if (count > CLI_MAX_WARNINGS)
        cli_warn("... and %d more %s", count - CLI_MAX_WARNINGS, what);
}

/* ==== Output =========================================================== */

void cli_write_error(void)
{
    cli_warn("write error: %s", strerror(errno));
    write_error_reported = 1;
    exit(CLI_EXIT_FAILURE);
}

void cli_write(const void *s, size_t n)
{
    if (n > 0 && fwrite(s, 1, n, stdout) != n)
        cli_write_error();
}
