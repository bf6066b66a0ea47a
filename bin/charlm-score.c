/*
** charlm-score: how well a character language model predicts a text.
**
**   charlm-score -m dante.model < purgatorio.txt
**
** Prints the bits per character (the mean of -log2 p(next character)) and
** the perplexity per character (2^bpc).  Every character but the first is
** predicted; a character outside the model's vocabulary is scored with the
** probability the model gives its unknown symbol, and such characters are
** counted and listed.  The text is scored exactly as charlm-train scores
** its validation text, so the figures agree.  Without -m it reads
** charlm.model, where charlm-train writes by default.
*/
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nlp/charlm.h"
#include "nlp/tensor.h"
#include "nlp/utf8.h"

#define MAX_LISTED 10     /* unknown characters shown by name */

static _Noreturn void usage(void)
{
    printf("Usage: charlm-score [-m MODEL] [OPTION]... [FILE]...\n"
           "Score UTF-8 text from the FILEs (or standard input; '-' is standard input)\n"
           "under a character language model made by charlm-train: print the number of\n"
           "characters, the characters unknown to the model, bits per character and\n"
           "perplexity per character.\n"
           "\n"
           "  -m, --model MODEL          the model (or a training checkpoint)\n"
           "                             [" CLI_DEFAULT_CHARLM_MODEL ", charlm-train's default]\n"
           "      --strict               refuse invalid UTF-8 (default: replace it by\n"
           "                             U+FFFD and warn)\n"
           "      --threads N            BLAS threads [1]\n"
           "  -h, --help                 display this help and exit\n"
           "      --version              output version information and exit\n"
           "\n"
           "Output, one \"name: value\" per line:\n"
           "  characters: N              characters read\n"
           "  predicted: N               characters predicted (all but the first)\n"
           "  unknown: N [LIST]          predicted characters outside the vocabulary\n"
           "  bits-per-character: X\n"
           "  perplexity: X              2^bits-per-character\n"
           "\n"
           "Exit status: 0 success, 1 error (a bad model, unreadable input, a write\n"
           "error), 2 usage error (also no -m and no " CLI_DEFAULT_CHARLM_MODEL " here).\n");
    exit(CLI_EXIT_OK);
}

enum { OPT_STRICT = 256, OPT_THREADS, OPT_VERSION };

static const struct option long_options[] = {
    {"model", required_argument, NULL, 'm'},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}
};

int main(int argc, char **argv)
{
    cli_init("charlm-score");
    const char *model = NULL;
    int strict = 0;
    long threads = 1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:h", long_options, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case OPT_STRICT: strict = 1; break;
        case OPT_THREADS: threads = cli_parse_long("--threads", optarg, 1, 1024); break;
        case 'h': usage();
        case OPT_VERSION: cli_version();
        default: cli_option_error(c, argv);
        }
    }
    model = cli_model_path(model, CLI_DEFAULT_CHARLM_MODEL, "charlm-train");
    nlp_tensor_set_threads((int)threads);

    nlp_charlm *m;
    nlp_error e;
    if (nlp_charlm_load(&m, model, NLP_CHARLM_EVAL_T, NLP_CHARLM_EVAL_STREAMS, NULL, &e)
        != NLP_OK)
        cli_die_error(&e);

    nlp_codepoints text;
    nlp_codepoints_init(&text);
    cli_utf8_warnings w;
    int nfiles = argc - optind;
    if (nlp_codepoints_read_files(&text, (const char *const *)argv + optind, (size_t)nfiles,
                                  CLI_STDIN_NAME, strict, cli_utf8_warn, cli_utf8_input, &w,
                                  &e) != NLP_OK)
        cli_die_error(&e);

    /* The distinct unknown characters among the predicted ones, in order of
    ** appearance, for the report. */
    int32_t listed[MAX_LISTED];
    int nlisted = 0, more = 0;
    for (size_t i = 1; i < text.n; i++) {
        int32_t cp = text.cp[i];
        if (nlp_charlm_id(m, cp) != NLP_CHARLM_UNK_ID)
            continue;
        int seen = 0;
        for (int j = 0; j < nlisted; j++)
            seen |= listed[j] == cp;
        if (!seen) {
            if (nlisted < MAX_LISTED)
                listed[nlisted++] = cp;
            else
                more = 1;
        }
    }
    size_t n = text.n;
    nlp_charlm_encode(m, &text, NULL);
    nlp_charlm_score s;
    int rc = nlp_charlm_eval(m, text.cp, text.n, &s);
    if (rc != NLP_OK)
        cli_die("scoring failed: %s", nlp_error_string(rc));
    if (s.count == 0)
        cli_die("%s: nothing to score (the text needs at least two characters)",
                nfiles == 1 ? cli_input_name(argv[optind]) : nfiles ? "input" : CLI_STDIN_NAME);
    double bpc = nlp_charlm_bpc(&s);
    printf("characters: %zu\n", n);
    printf("predicted: %zu\n", s.count);
    printf("unknown: %zu", s.unk);
    for (int j = 0; j < nlisted; j++) {
        char u[5] = {0};
        size_t k = nlp_utf8_encode(listed[j], u);
        u[k] = '\0';
        /* Control characters are shown by number only. */
        if (listed[j] < 0x20 || listed[j] == 0x7f)
            printf(" U+%04X", (unsigned)listed[j]);
        else
            printf(" U+%04X %s", (unsigned)listed[j], u);
    }
    printf("%s\n", more ? " ..." : "");
    printf("bits-per-character: %.6f\n", bpc);
    printf("perplexity: %.6f\n", pow(2.0, bpc));
    nlp_codepoints_free(&text);
    nlp_charlm_free(m);
    return CLI_EXIT_OK;
}
