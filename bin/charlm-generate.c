/*
** charlm-generate: sample text from a character language model.
**
**   charlm-generate -m dante.model --prime "Nel mezzo" --temperature 0.8
**
** The state is conditioned on the prime (--prime TEXT or --prime-file FILE,
** printed first), then --length characters are drawn one at a time and
** written as they come (lib/generate.c does the work): each is a whole code
** point from the model's vocabulary, so the output is always valid UTF-8,
** and it ends with a line break.  The unknown symbol is never drawn.
** Without -m the model is charlm.model, where charlm-train writes by
** default.
*/
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "nlp/charlm.h"
#include "nlp/generate.h"
#include "nlp/tensor.h"
#include "nlp/utf8.h"

static _Noreturn void usage(void)
{
    nlp_generate_config d;
    nlp_generate_config_default(&d);
    printf("Usage: charlm-generate [-m MODEL] [OPTION]...\n"
           "Write text sampled from a character language model made by charlm-train.\n"
           "\n"
           "  -m, --model MODEL          the model (or a training checkpoint) to sample\n"
           "                             [" CLI_DEFAULT_CHARLM_MODEL ", charlm-train's default]\n"
           "  -n, --length N             characters to generate after the prime [%zu]\n"
           "  -t, --temperature T        sharpen (< 1) or flatten (> 1) the distribution;\n"
           "                             0 always takes the most likely character [%g]\n"
           "      --top-k K              draw only among the K most likely; 0 = all [%ld]\n"
           "      --top-p P              draw only among the most likely characters whose\n"
           "                             probabilities add up to P (nucleus) [%g]\n"
           "  -p, --prime TEXT           condition on TEXT and print it first; without a\n"
           "                             prime the model starts as after a line break [\"\"]\n"
           "      --prime-file FILE      the same with the text of FILE ('-' is standard\n"
           "                             input), line breaks included\n"
           "      --strict               refuse invalid UTF-8 in the prime file (default:\n"
           "                             replace it by U+FFFD and warn)\n"
           "  -s, --seed N               random seed; the same seed gives the same text\n"
           "                             [from the clock and process id; -v shows it]\n"
           "      --threads N            BLAS threads [1]\n"
           "  -v, --verbose              print the seed used (and the model) on stderr\n"
           "  -h, --help                 display this help and exit\n"
           "      --version              output version information and exit\n"
           "\n"
           "The output ends with a line break.\n"
           "Exit status: 0 success, 1 error (a bad model or prime file, a write error),\n"
           "2 usage error (also no -m and no " CLI_DEFAULT_CHARLM_MODEL " here).\n",
           d.length, d.sample.temperature, d.sample.top_k, d.sample.top_p);
    exit(CLI_EXIT_OK);
}

enum { OPT_TOP_K = 256, OPT_TOP_P, OPT_PRIME_FILE, OPT_STRICT, OPT_THREADS, OPT_VERSION };

static const struct option long_options[] = {
    {"model", required_argument, NULL, 'm'},
    {"length", required_argument, NULL, 'n'},
    {"temperature", required_argument, NULL, 't'},
    {"top-k", required_argument, NULL, OPT_TOP_K},
    {"top-p", required_argument, NULL, OPT_TOP_P},
    {"prime", required_argument, NULL, 'p'},
    {"prime-file", required_argument, NULL, OPT_PRIME_FILE},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"seed", required_argument, NULL, 's'},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}
};

/* Where the text goes: stdout, flushed at every chunk (a line, or each
** character on a terminal), remembering whether it ends a line. */
typedef struct output {
    size_t bytes;   /* written so far */
    char last;      /* the last byte written */
    int err;        /* errno of a failed write */
} output;

static int out_write(void *ctx, const char *s, size_t n)
{
    output *o = ctx;
    if (n == 0)
        return 0;
    if (fwrite(s, 1, n, stdout) != n || fflush(stdout) != 0) {
        o->err = errno;
        return -1;
    }
    o->bytes += n;
    o->last = s[n - 1];
    return 0;
}

static _Noreturn void die_write(const output *o)
{
    errno = o->err;
    cli_write_error();
}

/* A seed that --seed accepts (0..LONG_MAX), so that -v's report can be
** given back to reproduce the sample. */
static uint64_t clock_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t s = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
                 (uint64_t)getpid() << 32;
    return s & (uint64_t)LONG_MAX;
}

int main(int argc, char **argv)
{
    cli_init("charlm-generate");
    const char *model = NULL, *prime = NULL, *prime_file = NULL;
    long threads = 1;
    int have_seed = 0, strict = 0, verbose = 0;
    uint64_t seed = 0;
    nlp_generate_config gc;
    nlp_generate_config_default(&gc);
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:n:t:p:s:vh", long_options, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'n': gc.length = (size_t)cli_parse_long("--length", optarg, 0, LONG_MAX); break;
        case 't': gc.sample.temperature = cli_parse_double("--temperature", optarg, 0, 1e6); break;
        case OPT_TOP_K: gc.sample.top_k = cli_parse_long("--top-k", optarg, 0, INT_MAX); break;
        case OPT_TOP_P:
            gc.sample.top_p = cli_parse_double("--top-p", optarg, 0, 1);
            if (gc.sample.top_p <= 0)
                cli_usage_error("invalid value for --top-p: %g (expected 0 < P <= 1)",
                                gc.sample.top_p);
            break;
        case 'p': prime = optarg; break;
        case OPT_PRIME_FILE: prime_file = optarg; break;
        case OPT_STRICT: strict = 1; break;
        case 's':
            seed = (uint64_t)cli_parse_long("--seed", optarg, 0, LONG_MAX);
            have_seed = 1;
            break;
        case OPT_THREADS: threads = cli_parse_long("--threads", optarg, 1, 1024); break;
        case 'v': verbose = 1; break;
        case 'h': usage();
        case OPT_VERSION: cli_version();
        default: cli_option_error(c, argv);
        }
    }
    if (optind < argc)
        cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (prime && prime_file)
        cli_usage_error("give --prime or --prime-file, not both");
    if (prime && !nlp_utf8_is_valid(prime, strlen(prime)))
        cli_usage_error("--prime: invalid UTF-8");
    model = cli_model_path(model, CLI_DEFAULT_CHARLM_MODEL, "charlm-train");
    if (!have_seed)
        seed = clock_seed();
    nlp_tensor_set_threads((int)threads);

    /* The prime file as code points: invalid UTF-8 is warned about and
    ** replaced (or refused with --strict) as every tool does. */
    nlp_error e;
    nlp_codepoints text;
    nlp_codepoints_init(&text);
    if (prime_file) {
        FILE *f = cli_open_read(prime_file);
        cli_utf8_warnings w;
        cli_utf8_begin(&w, cli_input_name(prime_file));
        if (nlp_codepoints_read(&text, f, w.name, strict, cli_utf8_warn, &w, &e) != NLP_OK)
            cli_die_error(&e);
        cli_utf8_end(&w);
        cli_close_read(f);
    }

    nlp_charlm *m;
    if (nlp_charlm_load(&m, model, 1, 1, NULL, &e) != NLP_OK)
        cli_die_error(&e);
    nlp_generator *g;
    int rc = nlp_generate_new(&g, m);
    if (rc == NLP_EINVAL)
        cli_die("%s: the model knows no character to draw", model);
    if (rc != NLP_OK)
        cli_die("out of memory");
    if (verbose) {
        cli_warn("model %s", model);
        cli_warn("seed %" PRIu64, seed);
    }
    nlp_rng rng;
    nlp_rng_seed(&rng, seed);
    if (isatty(STDOUT_FILENO))
        gc.chunk = 1; /* each character as it is drawn */

    /* The prime is printed as the model reads it (a prime file re-encoded,
    ** so with U+FFFD for what was invalid). */
    output out = {0, 0, 0};
    if (prime) {
        size_t n = strlen(prime);
        if (out_write(&out, prime, n) != 0)
            die_write(&out);
        rc = nlp_generate_prime(g, prime, n);
    } else {
        char buf[4096];
        size_t len = 0;
        for (size_t i = 0; i < text.n; i++) {
            if (sizeof buf - len < 4) {
                if (out_write(&out, buf, len) != 0)
                    die_write(&out);
                len = 0;
            }
            len += nlp_utf8_encode(text.cp[i], buf + len);
        }
        if (out_write(&out, buf, len) != 0)
            die_write(&out);
        rc = nlp_generate_prime_cp(g, text.cp, text.n);
    }
    if (rc == NLP_OK)
        rc = nlp_generate_sample(g, &gc, &rng, out_write, &out);
    if (rc == NLP_EIO)
        die_write(&out);
    if (rc != NLP_OK)
        cli_die("generation failed: %s", nlp_error_string(rc));
    if (out.bytes > 0 && out.last != '\n' && out_write(&out, "\n", 1) != 0)
        die_write(&out);
    nlp_generate_free(g);
    nlp_charlm_free(m);
    nlp_codepoints_free(&text);
    return CLI_EXIT_OK;
}
