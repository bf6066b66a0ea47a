/*
** cli: shared command-line plumbing for the libnlp tools.  See cli.h.
** (A program may keep its name in a static; the library may not.)
*/
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *tool_name = "libnlp";

/* Catches a failed write to stdout (full disk, closed pipe) at exit. */
static void close_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
        if (errno == EPIPE)
            _exit(CLI_EXIT_FAILURE);
        fprintf(stderr, "%s: write error: %s\n", tool_name, strerror(errno));
        _exit(CLI_EXIT_FAILURE);
    }
}

void cli_init(const char *name)
{
    tool_name = name;
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

void cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help' for more information.\n", tool_name);
    exit(CLI_EXIT_USAGE);
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
        cli_warn("%d more %s not shown", count - CLI_MAX_WARNINGS, what);
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
