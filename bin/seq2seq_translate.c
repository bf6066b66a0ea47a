/*
** seq2seq translate: translate sentences with a trained model.
**
**   seq2seq translate -m de-en.model < test.de > test.hyp
**
** Reads one source sentence a line (tokens separated by spaces), gathers
** --batch lines, translates them together (beam search, nlp/beam.h, over
** the model's decoder) and writes one line per input line, in order, then
** flushes: a pipe sees each batch's translations as soon as they are done.
** From a regular file, where nobody waits for a line, READ_AHEAD batches
** are read at once and regrouped by source length, so the sentences of a
** batch finish together: the steps where only a few rows remain, each
** still paying a full pass over the output layer's weights, get rare.
*/
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cli.h"
#include "seq2seq.h"
#include "seq2seq_common.h"
#include "nlp/outfile.h"
#include "nlp/svg.h"
#include "nlp/utf8.h"

#define DEF_BATCH 64
#define READ_AHEAD 8 /* batches read at once from a regular file */

void seq2seq_translate_help(void)
{
    s2s_search_config s;
    s2s_search_config_default(&s);
    printf("Usage: seq2seq translate -m MODEL [OPTION]... [FILE]\n"
           "Translate each line of FILE (or standard input; tokens separated by spaces,\n"
           "as in training) and print one translation per line, in input order; each\n"
           "batch's translations are written as soon as it is done.  An empty line gives\n"
           "an empty line.\n"
           "\n"
           "  -m, --model MODEL          the model to use (required)\n"
           "      --beam K               beam width; 1 = greedy search [%d]\n"
           "      --n-best N             print the N best translations of each line, as\n"
           "                             'LINE<TAB>SCORE<TAB>TRANSLATION' (LINE counts\n"
           "                             from 1; SCORE is the log-probability divided by\n"
           "                             the length penalty); at most --beam [%d]\n"
           "      --length-penalty A     GNMT length penalty ((5+len)/6)^A; 0 = rank by\n"
           "                             the log-probability sum [%g]\n"
           "      --max-len-ratio R      translations of at most R x source length + %d\n"
           "                             tokens [%g]\n"
           "      --replace-unk          put the source token with the highest attention\n"
           "                             in place of each <unk> generated\n"
           "      --attention-out FILE   write the attention of every translation to the\n"
           "                             SVG FILE: one heatmap per sentence, source\n"
           "                             tokens across, target tokens down\n"
           "      --batch N              lines translated together [%d]\n"
           "      --threads N            BLAS threads [1]\n"
           "  -v, --verbose              report the speed and <unk> tokens\n"
           "\n",
           s.beam, s.n_best, (double)s.length_penalty, S2S_MAX_LEN_EXTRA, s.max_len_ratio,
           DEF_BATCH);
}

enum {
    OPT_BEAM = 256, OPT_NBEST, OPT_LP, OPT_RATIO, OPT_REPLACE_UNK, OPT_ATTN_OUT, OPT_BATCH,
    OPT_THREADS, OPT_VERSION
};

static const struct option long_options[] = {
    {"model", required_argument, NULL, 'm'},
    {"beam", required_argument, NULL, OPT_BEAM},
    {"n-best", required_argument, NULL, OPT_NBEST},
    {"length-penalty", required_argument, NULL, OPT_LP},
    {"max-len-ratio", required_argument, NULL, OPT_RATIO},
    {"replace-unk", no_argument, NULL, OPT_REPLACE_UNK},
    {"attention-out", required_argument, NULL, OPT_ATTN_OUT},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}
};

/* One sentence's attention panel for --attention-out. */
typedef struct panel {
    long line;
    int rows, cols;
    float *values;     /* (rows, cols) */
    char **row_labels; /* target tokens */
    char **col_labels; /* source tokens */
} panel;

typedef struct panels {
    panel *p;
    size_t n, cap;
} panels;

static char *dup_bytes(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        cli_die("out of memory");
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void panels_add(panels *ps, long line, const nlp_beam_hyp *h, const char *text,
                       const nlp_pairs_tokens *src, const char *const *words,
                       const size_t *wlen)
{
    if (h->len == 0 || src->n == 0)
        return;
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 16;
        ps->p = realloc(ps->p, ps->cap * sizeof *ps->p);
        if (!ps->p)
            cli_die("out of memory");
    }
    panel *p = &ps->p[ps->n++];
    p->line = line;
    p->rows = h->len;
    p->cols = src->n;
    p->values = malloc((size_t)h->len * (size_t)src->n * sizeof *p->values);
    p->row_labels = malloc((size_t)h->len * sizeof *p->row_labels);
    p->col_labels = malloc((size_t)src->n * sizeof *p->col_labels);
    if (!p->values || !p->row_labels || !p->col_labels)
        cli_die("out of memory");
    memcpy(p->values, h->attn, (size_t)h->len * (size_t)src->n * sizeof *p->values);
    for (int t = 0; t < h->len; t++)
        p->row_labels[t] = dup_bytes(words[t], wlen[t]);
    for (int s = 0; s < src->n; s++)
        p->col_labels[s] = dup_bytes(text + src->off[s], src->len[s]);
}

/* Pixels per cell of a heatmap, and the most a panel's cells may take. */
#define PANEL_CELL 24
#define PANEL_ROOM (NLP_SVG_MAX_SIZE - 4000)

static int by_line(const void *a, const void *b)
{
    const long x = ((const panel *)a)->line, y = ((const panel *)b)->line;
    return (x > y) - (x < y);
}

/* Every panel into one SVG document, one below the other in input order
** (each heatmap a nested <svg> of lib/svg's drawing); lines are unique, so
** the order does not depend on the order of translation. */
static void panels_write(panels *ps, const char *path)
{
    if (ps->n > 1)
        qsort(ps->p, ps->n, sizeof *ps->p, by_line);
    nlp_error e;
    nlp_outfile *o;
    if (nlp_outfile_new(&o, path, &e) != NLP_OK)
        cli_die_error(&e);
    FILE *f = nlp_outfile_stream(o);
    char **docs = calloc(ps->n ? ps->n : 1, sizeof *docs);
    int *w = calloc(ps->n ? ps->n : 1, sizeof *w), *hgt = calloc(ps->n ? ps->n : 1, sizeof *hgt);
    if (!docs || !w || !hgt)
        cli_die("out of memory");
    int width = 200, height = 0;
    for (size_t i = 0; i < ps->n; i++) {
        panel *p = &ps->p[i];
        char title[64];
        snprintf(title, sizeof title, "line %ld", p->line);
        /* Smaller cells for long sentences, within lib/svg's size limit
        ** (the labels take room too). */
        const int most = p->rows > p->cols ? p->rows : p->cols;
        const int cell = PANEL_CELL * most <= PANEL_ROOM ? PANEL_CELL : PANEL_ROOM / most;
        if (cell < 1) {
            cli_warn("%s: line %ld left out: %d x %d tokens are too many to draw", path,
                     p->line, p->rows, p->cols);
            w[i] = hgt[i] = 0;
            continue;
        }
        nlp_svg_heatmap h = {title, p->values, p->rows, p->cols,
                             (const char *const *)p->row_labels,
                             (const char *const *)p->col_labels, 0, 1, cell};
        size_t n;
        FILE *m = open_memstream(&docs[i], &n);
        if (!m)
            cli_die("out of memory");
        if (nlp_svg_heatmap_write(m, &h, &e) != NLP_OK)
            cli_die_error(&e);
        fclose(m);
        const char *svg = strstr(docs[i], "<svg");
        if (!svg || sscanf(strstr(svg, "width=\"") ? strstr(svg, "width=\"") : "", "width=\"%d\"",
                           &w[i]) != 1
            || sscanf(strstr(svg, "height=\"") ? strstr(svg, "height=\"") : "",
                      "height=\"%d\"", &hgt[i]) != 1)
            cli_die("%s: unexpected heatmap drawing", path);
        width = w[i] > width ? w[i] : width;
        height += hgt[i];
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
               "height=\"%d\" viewBox=\"0 0 %d %d\">\n",
            width, height > 0 ? height : 20, width, height > 0 ? height : 20);
    int y = 0;
    for (size_t i = 0; i < ps->n; i++) {
        if (!docs[i])
            continue;
        fprintf(f, "<g transform=\"translate(0,%d)\">\n%s</g>\n", y, strstr(docs[i], "<svg"));
        y += hgt[i];
        free(docs[i]);
    }
    fputs("</svg>\n", f);
    free(docs);
    free(w);
    free(hgt);
    if (nlp_outfile_commit(o, &e) != NLP_OK)
        cli_die_error(&e);
}

static void panels_free(panels *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        panel *p = &ps->p[i];
        for (int t = 0; t < p->rows; t++)
            free(p->row_labels[t]);
        for (int s = 0; s < p->cols; s++)
            free(p->col_labels[s]);
        free(p->row_labels);
        free(p->col_labels);
        free(p->values);
    }
    free(ps->p);
}

/* The lines of a batch: their text (copied) and tokens. */
typedef struct batch_line {
    char *text;
    size_t len, cap;
    nlp_pairs_tokens tok;
    long line;
    char *res;            /* its output lines, written in input order */
    size_t res_len, res_cap;
} batch_line;

/* A rough bound on the search's memory for group sentences of up to S
** source tokens, in floats: the beam's attention rows, when kept, and the
** decoder's states over the source. */
static double search_cost(const s2s_search_config *c, int group, int S)
{
    double rows = (double)group * c->beam, len = s2s_max_len(c, S);
    return rows * len * (c->want_attention ? S : 1) + rows * S * 4096.0;
}

/* Appends n bytes to line b's output. */
static void line_out(batch_line *b, const char *s, size_t n)
{
    if (b->res_len + n > b->res_cap) {
        b->res_cap = 2 * (b->res_len + n);
        if (!(b->res = realloc(b->res, b->res_cap)))
            cli_die("out of memory");
    }
    memcpy(b->res + b->res_len, s, n);
    b->res_len += n;
}

/* The output of lines idx[0..k) from the search's rows which[line] (-1:
** an empty line), appended to each line's res. */
static void format_lines(batch_line *bl, const int *idx, int k, const int *which,
                         const s2s_search *search, const s2s_search_config *sc,
                         const nlp_vocab *tv, int replace_unk, panels *ps, const char ***words,
                         size_t **wlen, int *words_cap, char **out, size_t *out_cap)
{
    for (int r = 0; r < k; r++) {
        const int i = idx[r];
        int hyps = which[i] < 0 ? 1 : nlp_beam_count(search->beam, which[i]);
        for (int j = 0; j < hyps; j++) {
            nlp_beam_hyp h = {0};
            if (which[i] >= 0)
                nlp_beam_result(search->beam, which[i], j, &h);
            if (h.len + 1 > *words_cap) {
                *words_cap = 2 * (h.len + 1);
                *words = realloc(*words, (size_t)*words_cap * sizeof **words);
                *wlen = realloc(*wlen, (size_t)*words_cap * sizeof **wlen);
                if (!*words || !*wlen)
                    cli_die("out of memory");
            }
            /* Each token's text: its word, or for a <unk> with
            ** --replace-unk the source token it attends to most. */
            size_t need = 64;
            for (int t = 0; t < h.len; t++) {
                (*words)[t] = nlp_vocab_word(tv, h.tokens[t]);
                (*wlen)[t] = nlp_vocab_word_len(tv, h.tokens[t]);
                if (replace_unk && h.tokens[t] == NLP_SEQ2SEQ_UNK && h.attn
                    && h.src_len > 0) {
                    const float *row = h.attn + (size_t)t * (size_t)h.src_len;
                    int best = 0;
                    for (int q = 1; q < h.src_len; q++)
                        if (row[q] > row[best])
                            best = q;
                    (*words)[t] = bl[i].text + bl[i].tok.off[best];
                    (*wlen)[t] = bl[i].tok.len[best];
                }
                need += (*wlen)[t] + 1;
            }
            if (need > *out_cap) {
                *out_cap = 2 * need;
                *out = realloc(*out, *out_cap);
                if (!*out)
                    cli_die("out of memory");
            }
            size_t o = 0;
            if (sc->n_best > 1)
                o += (size_t)snprintf(*out, *out_cap, "%ld\t%.4f\t", bl[i].line, h.score);
            for (int t = 0; t < h.len; t++) {
                if (t)
                    (*out)[o++] = ' ';
                memcpy(*out + o, (*words)[t], (*wlen)[t]);
                o += (*wlen)[t];
            }
            (*out)[o++] = '\n';
            line_out(&bl[i], *out, o);
            if (ps && j == 0 && which[i] >= 0)
                panels_add(ps, bl[i].line, &h, bl[i].text, &bl[i].tok, *words, *wlen);
        }
    }
}

int seq2seq_translate_main(int argc, char **argv)
{
    const char *model = NULL, *attn_out = NULL;
    s2s_search_config sc;
    s2s_search_config_default(&sc);
    int batch = DEF_BATCH, threads = 1, verbose = 0, replace_unk = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:vh", long_options, NULL)) != -1) {
        char flag[40];
        cli_option_flag(long_options, c, flag, sizeof flag);
        switch (c) {
        case 'm': model = optarg; break;
        case OPT_BEAM: sc.beam = (int)cli_parse_long(flag, optarg, 1, 1000); break;
        case OPT_NBEST: sc.n_best = (int)cli_parse_long(flag, optarg, 1, 1000); break;
        case OPT_LP: sc.length_penalty = (float)cli_parse_double(flag, optarg, 0, NLP_BEAM_ALPHA_MAX); break;
        case OPT_RATIO: sc.max_len_ratio = cli_parse_double(flag, optarg, 0.01, 100); break;
        case OPT_REPLACE_UNK: replace_unk = 1; break;
        case OPT_ATTN_OUT: attn_out = optarg; break;
        case OPT_BATCH: batch = (int)cli_parse_long(flag, optarg, 1, 100000); break;
        case OPT_THREADS: threads = (int)cli_parse_long(flag, optarg, 1, 1024); break;
        case 'v': verbose = 1; break;
        case 'h': s2s_command_help(seq2seq_translate_help);
        case OPT_VERSION: cli_version();
        default: cli_option_error(c, argv);
        }
    }
    if (!model)
        cli_usage_error("no model given (-m MODEL)");
    if (sc.n_best > sc.beam)
        cli_usage_error("--n-best %d is more than --beam %d", sc.n_best, sc.beam);
    if (optind + 1 < argc)
        cli_usage_error("extra operand '%s' (one FILE at most)", argv[optind + 1]);
    nlp_seq2seq *m = s2s_load_model(model, threads);
    nlp_error e;
    const nlp_seq2seq_config *mc = nlp_seq2seq_get_config(m);
    if ((replace_unk || attn_out) && mc->attention == NLP_SEQ2SEQ_ATTN_NONE)
        cli_die("%s: --%s needs attention, and this model has none", model,
                replace_unk ? "replace-unk" : "attention-out");
    if (attn_out && nlp_outfile_check(attn_out, &e) != NLP_OK)
        cli_die_error(&e);
    sc.want_attention = replace_unk || attn_out;
    const nlp_vocab *sv = nlp_seq2seq_src_vocab(m), *tv = nlp_seq2seq_tgt_vocab(m);

    const char *path = optind < argc ? argv[optind] : "-";
    const char *name = cli_input_name(path);
    FILE *in = cli_open_read(path);
    char *gl = NULL;
    size_t gl_cap = 0;
    long nlines = 0;
    /* Read ahead only where no one waits for each line. */
    struct stat st;
    const int window = fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode)
                           && batch <= INT_MAX / READ_AHEAD ? batch * READ_AHEAD : batch;
    batch_line *bl = calloc((size_t)window, sizeof *bl);
    const int **ids = calloc((size_t)batch, sizeof *ids);
    int *len = calloc((size_t)batch, sizeof *len), *which = calloc((size_t)window, sizeof *which);
    int *order = calloc((size_t)window, sizeof *order);
    if (!bl || !ids || !len || !which || !order)
        cli_die("out of memory");
    s2s_search *search = NULL;
    int search_S = 0;
    panels ps = {0};
    const char **words = NULL;
    size_t *wlen = NULL;
    int words_cap = 0;
    char *out = NULL;
    size_t out_cap = 0;
    size_t unk = 0, ntok = 0;
    long nsent = 0;
    const double t0 = nlp_progress_now();
    int eof = 0;
    while (!eof) {
        int n = 0;
        while (n < window) {
            /* getline, not nlp_lines: it returns each line as soon as it
            ** arrives from a pipe (nlp_lines fills a 64 KiB block first). */
            errno = 0;
            ssize_t got = getline(&gl, &gl_cap, in);
            if (got < 0 && ferror(in)) {
                nlp_error_set(&e, NLP_EIO, name, nlines + 1, "read error: %s", strerror(errno));
                cli_die_error(&e);
            }
            if (got < 0) {
                eof = 1;
                break;
            }
            char *s = gl;
            size_t sl = (size_t)got;
            if (sl > 0 && s[sl - 1] == '\n')
                sl--;
            if (sl > 0 && s[sl - 1] == '\r')
                sl--;
            long line = ++nlines;
            if (!nlp_utf8_is_valid(s, sl)) {
                nlp_error_set(&e, NLP_EUTF8, name, line, "invalid UTF-8 at byte %zu",
                              nlp_utf8_valid_prefix(s, sl) + 1);
                cli_die_error(&e);
            }
            if (memchr(s, '\0', sl)) {
                nlp_error_set(&e, NLP_EFORMAT, name, line, "NUL byte in the line");
                cli_die_error(&e);
            }
            batch_line *b = &bl[n];
            if (sl + 1 > b->cap) {
                b->cap = sl + 1;
                b->text = realloc(b->text, b->cap);
                if (!b->text)
                    cli_die("out of memory");
            }
            memcpy(b->text, s, sl);
            b->text[sl] = '\0';
            b->len = sl;
            b->line = line;
            int rc = nlp_pairs_tokenize(sv, b->text, sl, &b->tok, &unk);
            if (rc == NLP_ERANGE) {
                nlp_error_set(&e, rc, name, line, "more than %d tokens", NLP_PAIRS_MAX_TOKENS);
                cli_die_error(&e);
            }
            if (rc != NLP_OK)
                cli_die("out of memory");
            ntok += (size_t)b->tok.n;
            n++;
        }
        if (n == 0)
            break;
        /* The non-empty lines are searched; an empty one is an empty line.
        ** Long sources search in smaller groups, so that the search's
        ** memory (rows x length x source for the attention) stays
        ** bounded; the lines still come out in order. */
        int S = 1;
        for (int i = 0; i < n; i++)
            S = bl[i].tok.n > S ? bl[i].tok.n : S;
        int group = batch;
        while (group > 1 && search_cost(&sc, group, S) > S2S_ATTENTION_BUDGET)
            group /= 2;
        if (!search || S > search_S || group > search->max_n) {
            int want_S = S > 2 * search_S ? S : 2 * search_S;
            want_S = want_S < 64 ? 64 : want_S;
            /* Never more than the budget allows for the group. */
            while (want_S > S && search_cost(&sc, group, want_S) > S2S_ATTENTION_BUDGET)
                want_S = want_S / 2 > S ? want_S / 2 : S;
            s2s_search_free(search);
            search_S = want_S;
            if (s2s_search_new(&search, m, &sc, group, search_S, &e) != NLP_OK)
                cli_die_error(&e);
        }
        /* The window's non-empty lines shortest first (stable): sentences
        ** of one length finish together, so the rows the search drops are
        ** contiguous and the padding is small.  Each group of them is
        ** searched in turn; an empty line is an empty line at once. */
        int ne = 0;
        for (int i = 0; i < n; i++) {
            which[i] = -1;
            if (bl[i].tok.n == 0) {
                format_lines(bl, &i, 1, which, search, &sc, tv, replace_unk, NULL, &words,
                             &wlen, &words_cap, &out, &out_cap);
                continue;
            }
            int at = ne++;
            while (at > 0 && bl[order[at - 1]].tok.n > bl[i].tok.n) {
                order[at] = order[at - 1];
                at--;
            }
            order[at] = i;
        }
        for (int lo = 0; lo < ne; lo += group) {
            const int k = ne - lo < group ? ne - lo : group;
            for (int q = 0; q < k; q++) {
                ids[q] = bl[order[lo + q]].tok.id;
                len[q] = bl[order[lo + q]].tok.n;
                which[order[lo + q]] = q;
            }
            if (s2s_search_run(search, ids, len, k, &e) != NLP_OK)
                cli_die_error(&e);
            format_lines(bl, order + lo, k, which, search, &sc, tv, replace_unk,
                         attn_out ? &ps : NULL, &words, &wlen, &words_cap, &out, &out_cap);
        }
        for (int i = 0; i < n; i++) {
            cli_write(bl[i].res, bl[i].res_len);
            bl[i].res_len = 0;
        }
        nsent += n;
        if (fflush(stdout) != 0)
            cli_write_error();
    }
    if (attn_out)
        panels_write(&ps, attn_out);
    if (verbose) {
        double secs = nlp_progress_now() - t0;
        cli_warn("%ld sentences in %.2f s (%.1f sentences/s), beam %d; %zu of %zu source "
                 "tokens <unk>", nsent, secs, secs > 0 ? (double)nsent / secs : 0.0, sc.beam,
                 unk, ntok);
    }
    panels_free(&ps);
    for (int i = 0; i < window; i++) {
        free(bl[i].res);
        free(bl[i].text);
        nlp_pairs_tokens_free(&bl[i].tok);
    }
    free(bl);
    free(ids);
    free(len);
    free(which);
    free(order);
    free(words);
    free(wlen);
    free(out);
    s2s_search_free(search);
    free(gl);
    cli_close_read(in);
    nlp_seq2seq_free(m);
    return CLI_EXIT_OK;
}
