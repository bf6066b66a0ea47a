/*
** charlm-generate: sample text from a character language model.
**
**   charlm-generate -m dante.model --prime "Nel mezzo" --temperature 0.8
**
** The state is conditioned on --prime (printed first), then --length
** characters are drawn one at a time and written as they come: each is a
** whole code point from the model's vocabulary, so the output is always
** valid UTF-8.  The unknown symbol is never drawn.
*/
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "nlp/charlm.h"
#include "nlp/sample.h"
#include "nlp/tensor.h"
#include "nlp/utf8.h"

#define DEF_LENGTH 500

static _Noreturn void usage(void)
{
    printf("Usage: charlm-generate -m MODEL [OPTION]...\n"
           "Write text sampled from a character language model made by charlm-train.\n"
           "\n"
           "  -m, --model MODEL          the model (or a training checkpoint) to sample\n"
           "  -n, --length N             characters to generate after the prime [%d]\n"
           "  -t, --temperature T        sharpen (< 1) or flatten (> 1) the distribution;\n"
           "                             0 always takes the most likely character [1]\n"
           "      --top-k K              draw only among the K most likely; 0 = all [0]\n"
           "      --top-p P              draw only among the most likely characters whose\n"
           "                             probabilities add up to P (nucleus) [1]\n"
           "  -p, --prime TEXT           condition on TEXT and print it first; without it\n"
           "                             the model starts as after a line break [\"\"]\n"
           "  -s, --seed N               random seed; the same seed gives the same text\n"
           "                             [from the clock]\n"
           "      --threads N            BLAS threads [1]\n"
           "  -h, --help                 display this help and exit\n"
           "      --version              output version information and exit\n"
           "\n"
           "Exit status: 0 success, 1 error, 2 usage error.\n",
           DEF_LENGTH);
    exit(CLI_EXIT_OK);
}

enum { OPT_TOP_K = 256, OPT_TOP_P, OPT_THREADS, OPT_VERSION };

static const struct option long_options[] = {
    {"model", required_argument, NULL, 'm'},
    {"length", required_argument, NULL, 'n'},
    {"temperature", required_argument, NULL, 't'},
    {"top-k", required_argument, NULL, OPT_TOP_K},
    {"top-p", required_argument, NULL, OPT_TOP_P},
    {"prime", required_argument, NULL, 'p'},
    {"seed", required_argument, NULL, 's'},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}
};

int main(int argc, char **argv)
{
    cli_init("charlm-generate");
    const char *model = NULL, *prime = "";
    long length = DEF_LENGTH;
    long threads = 1;
    int have_seed = 0;
    uint64_t seed = 0;
    nlp_sample_config so;
    nlp_sample_config_default(&so);
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:n:t:p:s:h", long_options, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'n': length = cli_parse_long("--length", optarg, 0, LONG_MAX); break;
        case 't': so.temperature = cli_parse_double("--temperature", optarg, 0, 1e6); break;
        case OPT_TOP_K: so.top_k = cli_parse_long("--top-k", optarg, 0, INT_MAX); break;
        case OPT_TOP_P:
            so.top_p = cli_parse_double("--top-p", optarg, 0, 1);
            if (so.top_p <= 0)
                cli_usage_error("invalid value for --top-p: %g (expected 0 < P <= 1)", so.top_p);
            break;
        case 'p': prime = optarg; break;
        case 's':
            seed = (uint64_t)cli_parse_long("--seed", optarg, 0, LONG_MAX);
            have_seed = 1;
            break;
        case OPT_THREADS: threads = cli_parse_long("--threads", optarg, 1, 1024); break;
        case 'h': usage();
        case OPT_VERSION: cli_version();
        case ':': cli_usage_error("option '%s' requires an argument", argv[optind - 1]);
        default:
            if (optopt && optopt < 256)
                cli_usage_error("invalid option -- '%c'", optopt);
            cli_usage_error("unrecognized option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!model)
        cli_usage_error("no model given (-m MODEL)");
    size_t plen = strlen(prime);
    if (!nlp_utf8_is_valid(prime, plen))
        cli_usage_error("--prime: invalid UTF-8");
    if (!have_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
    }
    nlp_tensor_set_threads((int)threads);

    nlp_charlm *m;
    nlp_error e;
    if (nlp_charlm_load(&m, model, 1, 1, NULL, &e) != NLP_OK)
        cli_die_error(&e);
    nlp_charlm_state st;
    nlp_sampler *sampler = nlp_sample_new((size_t)m->V);
    if (!sampler || nlp_charlm_state_init(&st, m) != NLP_OK)
        cli_die("out of memory");
    so.ban = NLP_CHARLM_UNK_ID;
    nlp_rng rng;
    nlp_rng_seed(&rng, seed);
    int tty = isatty(STDOUT_FILENO);

    /* Condition on the prime, printed as given; unknown characters go in
    ** as <unk>.  Without a prime the model starts as after a line break
    ** (or after its most frequent character when it has no line breaks). */
    fwrite(prime, 1, plen, stdout);
    int rc = NLP_OK;
    if (plen == 0) {
        int id = nlp_charlm_id(m, '\n');
        rc = nlp_charlm_step(m, &st, id != NLP_CHARLM_UNK_ID ? id : 1);
    }
    for (size_t i = 0; i < plen && rc == NLP_OK;) {
        int32_t cp;
        int k = nlp_utf8_decode(prime + i, plen - i, &cp);
        i += (size_t)k;
        rc = nlp_charlm_step(m, &st, nlp_charlm_id(m, cp));
    }
    if (plen)
        fflush(stdout);
    for (long i = 0; i < length && rc == NLP_OK; i++) {
        long id = nlp_sample_draw(sampler, st.logits, &so, &rng);
        if (id < 0)
            cli_die("sampling failed: %s", nlp_error_string((int)id));
        size_t n;
        const char *u = nlp_charlm_utf8(m, (int)id, &n);
        fwrite(u, 1, n, stdout);
        if (tty || (n == 1 && u[0] == '\n'))
            fflush(stdout);
        rc = nlp_charlm_step(m, &st, (int)id);
    }
    if (rc != NLP_OK)
        cli_die("generation failed: %s", nlp_error_string(rc));
    nlp_sample_free(sampler);
    nlp_charlm_state_free(&st);
    nlp_charlm_free(m);
    return CLI_EXIT_OK;
}
