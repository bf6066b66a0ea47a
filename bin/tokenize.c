/*
** tokenize: split UTF-8 text into tokens, one input line -> one output line.
**
**   tokenize [OPTION]... [FILE]...
**
** Reads the FILEs (or standard input; "-" is standard input, named
** "<stdin>" in messages), writes tokens separated by single spaces.
** Lines with invalid UTF-8 are warned about as by every libnlp tool
** (cli_utf8_*: a few per file, then a summary), or refused with --strict.
** All the work is in libnlp (nlp/tokenize.h); this file parses options,
** reads lines and writes output through one large buffer.
*/
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlp.h"
#include "nlp/lines.h"
#include "nlp/tokenize.h"

#define OUT_BUFSIZE (1 << 20)   /* bytes gathered before each fwrite */

/* Output buffer: tokens are copied here and written in large blocks. */
typedef struct outbuf {
    char *buf;
    size_t len;
} outbuf;

static void out_flush(outbuf *o)
{
    cli_write(o->buf, o->len);
    o->len = 0;
}

static void out_write(outbuf *o, const char *s, size_t n)
{
    if (n > OUT_BUFSIZE - o->len) {
        out_flush(o);
        if (n > OUT_BUFSIZE) {
            cli_write(s, n);
            return;
        }
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static inline void out_char(outbuf *o, char c)
{
    if (o->len == OUT_BUFSIZE)
        out_flush(o);
    o->buf[o->len++] = c;
}

_Noreturn static void usage(void)
{
    printf("Usage: %s [OPTION]... [FILE]...\n", cli_name());
    fputs("Split UTF-8 text into tokens: one input line gives one output line,\n"
          "tokens separated by single spaces.  With no FILE, or when FILE is -,\n"
          "read standard input.\n"
          "\n"
          "  -u, --unit=UNIT        word, sentence (one sentence per output line)\n"
          "                         or char (grapheme clusters) [word]\n"
          "  -l, --lang=LANG        language rules: en (clitics: do n't, it 's),\n"
          "                         it (elision: l' amor); other ICU locale names\n"
          "                         only select ICU's rules [none]\n"
          "      --lower            full Unicode case folding of the tokens [off]\n"
          "      --normalize=FORM   nfc, nfkc or none [nfc]\n"
          "      --no-punct         drop punctuation tokens [off]\n"
          "      --one-per-line     one token per line, an empty line after each\n"
          "                         input line (each sentence with --unit sentence) [off]\n"
          "      --strict           stop with exit 1 at invalid UTF-8 instead of\n"
          "                         replacing it with U+FFFD and warning [off]\n"
          "  -h, --help             show this help and exit\n"
          "      --version          show the version and exit\n"
          "\n"
          "Exit status: 0 on success, 1 on an input or output error, 2 on a usage error.\n",
          stdout);
    exit(CLI_EXIT_OK);
}

enum { OPT_LOWER = 256, OPT_NORMALIZE, OPT_NO_PUNCT, OPT_ONE_PER_LINE, OPT_STRICT, OPT_VERSION };

/* Settings of the tool beyond the library's options. */
typedef struct tool {
    nlp_tokenizer *tz;
    int one_per_line;
    int strict;
    int sentences;
    outbuf out;
    cli_utf8_warnings warnings;  /* of the file being read */
} tool;

/* Copies a short token without a call to memcpy. */
static inline void copy_token(char *o, const char *s, size_t n)
{
    if (n <= 16) {
        for (size_t i = 0; i < n; i++)
            o[i] = s[i];
    } else {
        memcpy(o, s, n);
    }
}

/* Writes the tokens of a batch: a space (or newline) before each but the
** first of the line, a newline after each with --one-per-line. */
static void write_batch(tool *tl, const nlp_tokens *b, int *first)
{
    outbuf *o = &tl->out;
    /* locals, so that stores through buf do not force reloads of o->len */
    char *buf = o->buf;
    size_t len = o->len;
    int opl = tl->one_per_line, sentences = tl->sentences;
    for (size_t i = 0; i < b->n; i++) {
        const nlp_token *k = &b->tok[i];
        /* separator before the token: none, ' ' or '\n' */
        char sep = 0;
        if (!*first) {
            int sent = sentences && (k->flags & NLP_TOKEN_SENT_START);
            sep = sent ? '\n' : opl ? 0 : ' ';
        }
        *first = 0;
        if (k->len + 2 > OUT_BUFSIZE - len) {
            o->len = len;
            out_flush(o);
            len = 0;
            if (k->len + 2 > OUT_BUFSIZE) {   /* a token longer than the buffer */
                if (sep)
                    out_char(o, sep);
                out_write(o, b->text + k->start, k->len);
                if (opl)
                    out_char(o, '\n');
                len = o->len;
                continue;
            }
        }
        if (sep)
            buf[len++] = sep;
        copy_token(buf + len, b->text + k->start, k->len);
        len += k->len;
        if (opl)
            buf[len++] = '\n';
    }
    o->len = len;
}

/* Writes n newlines. */
static void out_newlines(outbuf *o, long n)
{
    while (n-- > 0)
        out_char(o, '\n');
}

/*
** Tokenizes text s[0..n) holding nlines lines, the first numbered lineno,
** and writes one output line per input line.  Invalid UTF-8 is reported
** with its line, so a caller passes a block of many lines only when it is
** valid, and single lines otherwise.
*/
static void run_text(tool *tl, const char *s, size_t n, long nlines, const char *name, long lineno)
{
    nlp_error err;
    int rc = nlp_tokenize_begin(tl->tz, s, n, &err);
    if (rc == NLP_EUTF8) {
        out_flush(&tl->out);
        if (fflush(stdout) != 0)
            cli_write_error();
        cli_die("%s:%ld: invalid UTF-8", name, lineno);
    } else if (rc == NLP_OK && nlp_tokenize_invalid(tl->tz, NULL) > 0) {
        /* the output so far first, so that the warning follows its line */
        if (tl->warnings.lines < CLI_MAX_WARNINGS) {
            out_flush(&tl->out);
            if (fflush(stdout) != 0)
                cli_write_error();
        }
        cli_utf8_warn_line(&tl->warnings, lineno);
    } else if (rc != NLP_OK) {
        cli_die("%s:%ld: %s", name, lineno, err.text[0] ? err.text : nlp_error_string(rc));
    }
    nlp_tokens b;
    int first = 1;
    long line = 0;   /* line of the text being written */
    while ((rc = nlp_tokenize_next(tl->tz, &b)) == 1) {
        size_t i = 0;
        while (i < b.n) {
            /* the run of tokens on the current line */
            size_t j = i;
            while (j < b.n && b.tok[j].line == line)
                j++;
            if (j > i) {
                nlp_tokens run = {b.text, b.tok + i, j - i};
                write_batch(tl, &run, &first);
            }
            if (j < b.n) {
                out_newlines(&tl->out, (long)b.tok[j].line - line);
                line = b.tok[j].line;
                first = 1;
            }
            i = j;
        }
    }
    if (rc < 0)
        cli_die("%s:%ld: %s", name, lineno + line, nlp_error_string(rc));
    out_newlines(&tl->out, nlines - line);
}

/* Tokenizes one open file; returns 0, or 1 after a read error was reported. */
static int run_file(tool *tl, FILE *f, const char *name)
{
    nlp_lines *r;
    int rc = nlp_lines_new(&r, f, 0);
    if (rc != NLP_OK)
        cli_die("%s", nlp_error_string(rc));
    char *block;
    size_t len;
    long nlines;
    int status = 0;
    cli_utf8_begin(&tl->warnings, name);
    while ((rc = nlp_lines_next_block(r, &block, &len, &nlines)) == 1) {
        long lineno = nlp_lines_number(r) - nlines + 1;
        if (nlp_utf8_is_valid(block, len)) {
            run_text(tl, block, len, nlines, name, lineno);
            continue;
        }
        /* line by line, to report each bad line */
        for (long k = 0; k < nlines; k++) {
            char *nl = memchr(block, '\n', len);
            size_t n = nl ? (size_t)(nl - block) : len;
            run_text(tl, block, n, 1, name, lineno + k);
            block += n + (nl != NULL);
            len -= n + (nl != NULL);
        }
    }
    if (rc == NLP_EIO) {
        out_flush(&tl->out);
        cli_warn("%s: read error: %s", name, strerror(errno));
        status = 1;
    } else if (rc < 0) {
        cli_die("%s: %s", name, nlp_error_string(rc));
    }
    if (tl->warnings.lines > CLI_MAX_WARNINGS) {
        /* the summary after the file's output */
        out_flush(&tl->out);
        if (fflush(stdout) != 0)
            cli_write_error();
    }
    cli_utf8_end(&tl->warnings);
    nlp_lines_free(r);
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"unit", required_argument, NULL, 'u'},
        {"lang", required_argument, NULL, 'l'},
        {"lower", no_argument, NULL, OPT_LOWER},
        {"normalize", required_argument, NULL, OPT_NORMALIZE},
        {"no-punct", no_argument, NULL, OPT_NO_PUNCT},
        {"one-per-line", no_argument, NULL, OPT_ONE_PER_LINE},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0}
    };
    cli_init("tokenize");
    nlp_tokenize_config o;
    nlp_tokenize_config_default(&o);
    tool tl = {0};
    int c;
    opterr = 0;   /* messages below name the tool, not argv[0] */
    while ((c = getopt_long(argc, argv, ":u:l:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'u':
            if (strcmp(optarg, "word") == 0)
                o.unit = NLP_TOKENIZE_WORD;
            else if (strcmp(optarg, "sentence") == 0)
                o.unit = NLP_TOKENIZE_SENTENCE;
            else if (strcmp(optarg, "char") == 0)
                o.unit = NLP_TOKENIZE_CHAR;
            else
                cli_usage_error("invalid value for --unit: '%s' (expected word, sentence or char)",
                                optarg);
            break;
        case 'l':
            o.lang = optarg;
            break;
        case OPT_LOWER:
            o.lower = 1;
            break;
        case OPT_NORMALIZE:
            if (strcmp(optarg, "nfc") == 0)
                o.normalize = NLP_TOKENIZE_NFC;
            else if (strcmp(optarg, "nfkc") == 0)
                o.normalize = NLP_TOKENIZE_NFKC;
            else if (strcmp(optarg, "none") == 0)
                o.normalize = NLP_TOKENIZE_NONE;
            else
                cli_usage_error("invalid value for --normalize: '%s' (expected nfc, nfkc or none)",
                                optarg);
            break;
        case OPT_NO_PUNCT:
            o.no_punct = 1;
            break;
        case OPT_ONE_PER_LINE:
            tl.one_per_line = 1;
            break;
        case OPT_STRICT:
            o.strict = 1;
            break;
        case 'h':
            usage();
        case OPT_VERSION:
            cli_version();
        default:
            cli_option_error(c, argv);
        }
    }
    nlp_error err;
    nlp_error_clear(&err);
    if (nlp_tokenize_new(&tl.tz, &o, &err) != NLP_OK) {
        if (err.code == NLP_EINVAL)
            cli_usage_error("%s", err.text);
        cli_die_error(&err);
    }
    tl.strict = o.strict;
    tl.sentences = o.unit == NLP_TOKENIZE_SENTENCE;
    tl.out.buf = malloc(OUT_BUFSIZE);
    if (!tl.out.buf)
        cli_die("out of memory");

    int status = 0;
    if (optind == argc) {
        status |= run_file(&tl, stdin, CLI_STDIN_NAME);
    } else {
        for (int i = optind; i < argc; i++) {
            int is_stdin = strcmp(argv[i], "-") == 0;
            FILE *f = is_stdin ? stdin : fopen(argv[i], "rb");
            if (!f) {
                out_flush(&tl.out);
                cli_warn("%s: %s", argv[i], strerror(errno));
                status = 1;
                continue;
            }
            status |= run_file(&tl, f, cli_input_name(argv[i]));
            if (!is_stdin)
                fclose(f);
        }
    }
    out_flush(&tl.out);
    free(tl.out.buf);
    nlp_tokenize_free(tl.tz);
    return status;
}
