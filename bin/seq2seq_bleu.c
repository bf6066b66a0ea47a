/*
** seq2seq bleu: corpus BLEU-4 (and chrF) of a hypothesis file against a
** reference file, as sacreBLEU 2.x computes them by default.
**
**   seq2seq bleu [--lowercase] [--tokenize 13a|none] [--chrf] [--strict] REF [HYP]
**
** The two files are read in step, a line of each at a time, so memory
** stays proportional to the longest line.  Each line goes the way
** sacreBLEU's CLI takes it: UTF-8 repaired (or refused with --strict),
** trailing white space stripped, lowercased on request; BLEU then sees
** its 13a tokens, chrF the line itself.  The metrics are lib/bleu's.
*/
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nlp/bleu.h"
#include "nlp/lines.h"
#include "nlp/utf8.h"
#include "seq2seq.h"

void seq2seq_bleu_help(void)
{
    printf("Usage: seq2seq bleu [OPTION]... REF [HYP]\n"
           "Corpus BLEU-4 of the hypotheses HYP (standard input when not given, or -)\n"
           "against the references REF, one sentence a line, as sacreBLEU 2.x computes it\n"
           "by default (13a tokenisation, exp smoothing, case-sensitive); prints\n"
           "sacreBLEU's score line and the signature line.\n"
           "\n"
           "      --lowercase            compare lowercased text\n"
           "      --tokenize TOK         13a (mteval-v13a) or none [13a]\n"
           "      --chrf                 also chrF (character 6-grams, beta 2)\n"
           "      --strict               stop at invalid UTF-8 instead of replacing it\n"
           "  -h, --help                 display this help and exit\n");
}

enum { OPT_LOWERCASE = 256, OPT_TOKENIZE, OPT_CHRF, OPT_STRICT };

/* One of the two inputs and the buffers its lines go through. */
typedef struct input {
    const char *path;
    const char *name;           /* in messages */
    FILE *f;
    nlp_lines *lines;
    cli_utf8_warnings warn;
    char *repaired;             /* invalid UTF-8 replaced (free()) */
    size_t repaired_cap;
    char *lower;                /* lowercased (nlp_free) */
    size_t lower_cap;
    char *tok;                  /* 13a-tokenised (nlp_free) */
    size_t tok_cap;
    const char *text;           /* the line as compared: valid, stripped, maybe lowercased */
    size_t len;
} input;

typedef struct options {
    int lowercase;
    int tokenize;               /* 1: 13a, 0: none */
    int chrf;
    int strict;
} options;

static void input_open(input *in, const char *path)
{
    memset(in, 0, sizeof *in);
    in->path = path;
    in->name = cli_input_name(path);
    in->f = cli_open_read(path);
    if (nlp_lines_new(&in->lines, in->f, 0) != NLP_OK)
        cli_die("out of memory");
    cli_utf8_begin(&in->warn, in->name);
}

static void input_close(input *in)
{
    cli_utf8_end(&in->warn);
    nlp_lines_free(in->lines);
    cli_close_read(in->f);
    free(in->repaired);
    nlp_free(in->lower);
    nlp_free(in->tok);
}

/* Reads the next line: 1, or 0 at the end. */
static int input_next(input *in, const options *o)
{
    char *line;
    size_t len;
    int rc = nlp_lines_next(in->lines, &line, &len);
    if (rc == 0)
        return 0;
    if (rc == NLP_EIO)
        cli_die("%s: read error: %s", in->name, strerror(errno));
    if (rc < 0)
        cli_die("out of memory");
    long no = nlp_lines_number(in->lines);
    if (!nlp_utf8_is_valid(line, len)) {
        if (o->strict)
            cli_die("%s:%ld: invalid UTF-8", in->name, no);
        cli_utf8_warn_line(&in->warn, no);
        if (nlp_utf8_repair(line, len, &in->repaired, &in->repaired_cap, &len, NULL, NULL) !=
            NLP_OK)
            cli_die("out of memory");
        line = in->repaired;
    }
    /* sacreBLEU reads each line through str.rstrip(). */
    len = nlp_bleu_rstrip(line, len);
    if (o->lowercase) {
        int lrc = nlp_bleu_lowercase(line, len, &in->lower, &in->lower_cap, &len);
        if (lrc != NLP_OK)
            cli_die("%s:%ld: %s", in->name, no, nlp_error_string(lrc));
        line = in->lower;
    }
    in->text = line;
    in->len = len;
    return 1;
}

/* The text BLEU compares: 13a-tokenised, or as it is. */
static void bleu_text(input *in, const options *o, const char **s, size_t *n)
{
    *s = in->text;
    *n = in->len;
    if (!o->tokenize)
        return;
    int rc = nlp_bleu_tokenize_13a(in->text, in->len, &in->tok, &in->tok_cap, n);
    if (rc != NLP_OK)
        cli_die("%s:%ld: %s", in->name, nlp_lines_number(in->lines), nlp_error_string(rc));
    *s = in->tok;
}

static void print_results(const options *o, const nlp_bleu_stats *bs, const nlp_chrf_stats *cs)
{
    nlp_bleu_result r;
    nlp_bleu_score(bs, &r);
    /* sacreBLEU's BLEUScore and Signature formats (metrics/bleu.py, base.py);
    ** the version is ours, not a claim to be sacreBLEU. */
    printf("BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %llu "
           "ref_len = %llu)\n", r.bleu, r.precision[0], r.precision[1], r.precision[2],
           r.precision[3], r.bp, r.ratio, (unsigned long long)r.hyp_len,
           (unsigned long long)r.ref_len);
    printf("nrefs:1|case:%s|eff:no|tok:%s|smooth:exp|version:libnlp-%s\n",
           o->lowercase ? "lc" : "mixed", o->tokenize ? "13a" : "none", nlp_version());
    if (o->chrf) {
        printf("chrF%g = %.2f\n", NLP_CHRF_BETA, nlp_bleu_chrf_score(cs, NLP_CHRF_BETA));
        printf("nrefs:1|case:%s|eff:yes|nc:%d|nw:0|space:no|version:libnlp-%s\n",
               o->lowercase ? "lc" : "mixed", NLP_CHRF_ORDER, nlp_version());
    }
}

int seq2seq_bleu_main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"lowercase", no_argument, NULL, OPT_LOWERCASE},
        {"tokenize", required_argument, NULL, OPT_TOKENIZE},
        {"chrf", no_argument, NULL, OPT_CHRF},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}
    };
    options o = {.tokenize = 1};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_LOWERCASE:
            o.lowercase = 1;
            break;
        case OPT_TOKENIZE:
            if (!strcmp(optarg, "13a"))
                o.tokenize = 1;
            else if (!strcmp(optarg, "none"))
                o.tokenize = 0;
            else
                cli_usage_error("invalid value for --tokenize: '%s' (expected 13a or none)",
                                optarg);
            break;
        case OPT_CHRF:
            o.chrf = 1;
            break;
        case OPT_STRICT:
            o.strict = 1;
            break;
        case 'h':
            seq2seq_bleu_help();
            exit(CLI_EXIT_OK);
        default:
            cli_option_error(c, argv);
        }
    }
    if (optind >= argc)
        cli_usage_error("bleu: missing REF operand (the references, one a line)");
    if (argc - optind > 2)
        cli_usage_error("bleu: extra operand '%s'", argv[optind + 2]);
    const char *ref_path = argv[optind];
    const char *hyp_path = optind + 1 < argc ? argv[optind + 1] : "-";
    if (!strcmp(ref_path, "-") && !strcmp(hyp_path, "-"))
        cli_usage_error("bleu: REF and HYP cannot both be standard input");

    input ref, hyp;
    input_open(&ref, ref_path);
    input_open(&hyp, hyp_path);
    nlp_bleu *b;
    if (nlp_bleu_new(&b) != NLP_OK)
        cli_die("out of memory");
    nlp_bleu_stats bs = {0};
    nlp_chrf_stats cs = {0};
    long pairs = 0;
    for (;;) {
        int have_ref = input_next(&ref, &o), have_hyp = input_next(&hyp, &o);
        if (!have_ref && !have_hyp)
            break;
        if (!have_hyp)
            cli_die("%s:%ld: no hypothesis for this reference (%s has %ld line%s)", ref.name,
                    nlp_lines_number(ref.lines), hyp.name, pairs, pairs == 1 ? "" : "s");
        if (!have_ref)
            cli_die("%s:%ld: no reference for this hypothesis (%s has %ld line%s)", hyp.name,
                    nlp_lines_number(hyp.lines), ref.name, pairs, pairs == 1 ? "" : "s");
        pairs++;
        const char *hs, *rs;
        size_t hn, rn;
        bleu_text(&hyp, &o, &hs, &hn);
        bleu_text(&ref, &o, &rs, &rn);
        int rc = nlp_bleu_add_line(b, &bs, hs, hn, rs, rn);
        if (rc == NLP_OK && o.chrf)
            rc = nlp_bleu_chrf_add(b, &cs, hyp.text, hyp.len, ref.text, ref.len);
        if (rc != NLP_OK)
            cli_die("%s:%ld: %s", hyp.name, pairs, nlp_error_string(rc));
    }
    if (pairs == 0)
        cli_die("%s: no lines: nothing to score", ref.name);
    nlp_bleu_free(b);
    input_close(&ref);
    input_close(&hyp);
    print_results(&o, &bs, &cs);
    return CLI_EXIT_OK;
}
