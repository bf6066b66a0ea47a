/*
** make-seeds: writes the seed corpus of the fuzz targets (tests/fuzz/corpus/
** TARGET/NAME) with the library itself, so the seeds are valid files of
** today's formats.  Run by `make fuzz-seeds`; the output is committed.
** Each seed starts with its target's option bytes (see the comment at the
** top of each fuzz_TARGET.c), then the file.  Everything is deterministic.
**
** Usage: make-seeds DIR   (DIR/tokenize, DIR/model, ... must exist)
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nlp.h"
#include "nlp/bleu.h"
#include "nlp/forecast.h"
#include "nlp/pairs.h"
#include "nlp/seq2seq.h"
#include "nlp/series.h"

static const char *outdir;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "make-seeds: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void check(int rc, const nlp_error *e, const char *what)
{
    if (rc != NLP_OK) {
        char buf[1024];
        die("%s: %s", what, e ? nlp_error_format(e, buf, sizeof buf) : nlp_error_string(rc));
    }
}

/* Writes DIR/target/name: the option bytes opt[0..nopt), then data[0..n). */
static void seed(const char *target, const char *name, const char *opt, size_t nopt,
                 const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(opt, 1, nopt, f) != nopt || fwrite(data, 1, n, f) != n || fclose(f) != 0)
        die("%s: %s", path, strerror(errno));
}

static void seed_str(const char *target, const char *name, const char *opt, size_t nopt,
                     const char *text)
{
    seed(target, name, opt, nopt, text, strlen(text));
}

/* The bytes of the file at path, in a malloc'd buffer. */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("%s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t cap = 0;
    *n = 0;
    for (;;) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 4096;
            buf = realloc(buf, cap);
            if (!buf)
                die("out of memory");
        }
        size_t k = fread(buf + *n, 1, cap - *n, f);
        *n += k;
        if (k == 0)
            break;
    }
    fclose(f);
    return buf;
}

/* Sets the wall times a harness checkpoint records to 0, so that the seed
** is the same bytes on every run. */
static void zero_elapsed(const char *path)
{
    nlp_model *f;
    nlp_error e;
    check(nlp_model_load(&f, path, NULL, &e), &e, "checkpoint");
    static const char *const keys[] = { "train.elapsed", "train.valid_elapsed" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (nlp_model_meta(f, keys[i]) && nlp_model_set_meta(f, keys[i], "0") != NLP_OK)
            die("out of memory");
    check(nlp_model_save(f, path, &e), &e, "checkpoint save");
    nlp_model_free(f);
}

/* ---- tokenize: option bytes (unit/normalize/flags, language, mode), text */

static void tokenize_seeds(void)
{
    static const struct {
        const char *name;
        char opt[3];
        const char *text;
    } s[] = {
        { "en", { 0x00, 1, 0 },
          "I can't believe it's 3.14 at https://example.com/a?b=1, e-mail me: a.b@c.org!\n"
          "We'll see Dr. Smith on 08/16/2000 at 12:30 -- call 303-832-8160 :-) etc.\n" },
        { "en-sentence-lower", { 0x11, 1, 2 },
          "The U.S. economy grew. Didn't it?! Yes... a 15-year-old non-human e-mail.\n" },
        { "it", { 0x00, 2, 1 },
          "Nel mezzo del cammin di nostra vita mi ritrovai per una selva oscura,\n"
          "ché la diritta via era smarrita. L'amor che move il sole, dell'anima, c'è un'altra po' '93\n" },
        { "de-nfkc", { 0x04, 3, 0 }, "Größe ﬁnden: Straße, Ⅻ und ① — „Anführungszeichen“.\n" },
        { "el-lower", { 0x10, 6, 0 }, "ΟΔΥΣΣΕΥΣ ἄνδρα μοι ἔννεπε, Μοῦσα· ΣΊΣΥΦΟΣ;\n" },
        { "tr-lower", { 0x10, 5, 0 }, "İSTANBUL ve IĞDIR ılık\n" },
        { "ja", { 0x00, 7, 0 }, "吾輩は猫である。名前はまだ無い。東京タワー\n" },
        { "th", { 0x00, 8, 0 }, "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ\n" },
        { "ar-he", { 0x00, 10, 0 }, "مرحبا بالعالم ١٢٣ שלום עולם\n" },
        { "char-emoji", { 0x02, 0, 0 }, "e\xcc\x81 \xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb \xf0\x9f\x87\xae\xf0\x9f\x87\xb9 \xe0\xa4\x95\xe0\xa5\x8d\xe0\xa4\xb7\n" },
        { "invalid-utf8", { 0x00, 0, 0 }, "ok \xff\xfe bad \xc3( trunc \xe2\x82 end\x80\n" },
        { "strict-invalid", { 0x40, 0, 0 }, "valid then \xed\xa0\x80 surrogate\n" },
        { "no-punct-each", { (char)0xa0, 1, 0 }, "Hello, world! (Really?) \"Yes\" -- no; 'quoted'.\n" },
        /* Repeated to 16 KiB: past the batch of 4096 tokens. */
        { "batches", { 0x01, 1, (char)0xd0 },
          "Mr. O'Neil can't pay $3.50 at x.org/a-b, e.g. a U.S. co-op? No -- it's a:b :-) ...\n" },
        /* Repeated to 8 KiB without a space: batches cut where they can. */
        { "no-space", { 0x00, 0, (char)0xcc }, "x,y;z.w!a-b=c/d:e_f+g(h)" },
        { "locale-name", { 0x00, (char)(240 + 5), 0 }, "pt_BRO café à noite, pôr-do-sol\n" },
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        seed_str("tokenize", s[i].name, s[i].opt, 3, s[i].text);
    static const char controls[] = "tab\there\r\nnul\0byte\x01\x1f del\x7f line\n\nlast";
    seed("tokenize", "controls", "\x08\x00\x03", 3, controls, sizeof controls - 1);
}

/* ---- model: option bytes (flags, workspace), model file ----------------- */

static const char charlm_text[] = "abc cab\nbà è\n";

/* A tiny charlm model: the vocabulary of charlm_text, its cell and size. */
static nlp_charlm *tiny_charlm(nlp_rnn_cell cell, int layers)
{
    nlp_codepoints t;
    nlp_codepoints_init(&t);
    nlp_error e;
    check(nlp_codepoints_append(&t, charlm_text, strlen(charlm_text), "seed", 1, NULL, NULL, &e),
          &e, "charlm text");
    nlp_vocab *v;
    check(nlp_charlm_vocab_build(&v, t.cp, t.n, 1), NULL, "charlm vocabulary");
    nlp_codepoints_free(&t);
    nlp_charlm_config c;
    nlp_charlm_config_default(&c);
    c.cell = cell;
    c.layers = layers;
    c.hidden = 3;
    c.embed = 2;
    c.dropout = 0.125f;
    nlp_charlm *m;
    check(nlp_charlm_new(&m, &c, v, 4, 2, 1), NULL, "charlm model");
    return m;
}

static void model_seed(const char *name, const char *opt, const char *tmp)
{
    size_t n;
    unsigned char *buf = slurp(tmp, &n);
    seed("model", name, opt, 2, buf, n);
    free(buf);
    unlink(tmp);
}

static void model_seeds(const char *tmpdir)
{
    char tmp[4096];
    nlp_error e;
    snprintf(tmp, sizeof tmp, "%s/m", tmpdir);
    static const struct {
        const char *name;
        nlp_rnn_cell cell;
        int layers;
        char opt[2];
    } models[] = {
        { "charlm-lstm", NLP_RNN_LSTM, 1, { 0x01, 0x00 } },
        { "charlm-gru-2", NLP_RNN_GRU, 2, { 0x07, 0x1b } },
        { "charlm-rnn", NLP_RNN_TANH, 1, { 0x03, 0x03 } },
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        nlp_charlm *m = tiny_charlm(models[i].cell, models[i].layers);
        const char *meta[] = { "command", "charlm-train -o m", NULL };
        check(nlp_charlm_save(m, tmp, meta, &e), &e, "charlm save");
        model_seed(models[i].name, models[i].opt, tmp);
        nlp_charlm_free(m);
    }

    /* A checkpoint after one step on ids[i] = i % V (fuzz_model.c rebuilds
    ** that text to restore it). */
    nlp_charlm *m = tiny_charlm(NLP_RNN_LSTM, 1);
    nlp_charlm_train_config tc;
    nlp_charlm_train_config_default(&tc);
    tc.batch = 2;
    tc.seq_len = 3;
    size_t nids = 24;
    int32_t ids[24];
    for (size_t i = 0; i < nids; i++)
        ids[i] = (int32_t)(i % (size_t)m->V);
    nlp_charlm_trainer *t;
    check(nlp_charlm_trainer_new(&t, m, &tc, ids, nids, NULL, 0, &e), &e, "charlm trainer");
    /* One step through the harness, which writes the checkpoint at the end. */
    char best[4096];
    snprintf(best, sizeof best, "%s/best", tmpdir);
    nlp_train_config rc;
    nlp_train_config_default(&rc);
    rc.max_steps = 1;
    rc.checkpoint_every = 1e9;
    rc.output = best;
    rc.checkpoint = tmp;
    rc.log = NULL;
    nlp_train *run;
    check(nlp_train_new(&run, &rc, nlp_charlm_trainer_task(t), &e), &e, "harness");
    check(nlp_train_run(run, NULL, &e), &e, "charlm train step");
    nlp_train_free(run);
    zero_elapsed(tmp);
    model_seed("charlm-checkpoint", "\x01\x03", tmp);
    nlp_charlm_trainer_free(t);
    nlp_charlm_free(m);

    /* Another kind, with every part the format has. */
    nlp_model *g;
    (void)nlp_model_new(&g, "other"); /* NULL on failure */
    if (!g)
        die("out of memory");
    static const float a[6] = { 1, -2, 0.5f, 3e-8f, -0.0f, 65504 };
    static const float b[1] = { 42 };
    nlp_vocab *v;
    (void)nlp_vocab_new(&v); /* NULL on failure */
    if (!v || nlp_vocab_add_count(v, "<unk>", 5, 0) < 0 || nlp_vocab_add_count(v, "città", 6, 3) < 0
        || nlp_vocab_add_count(v, "a b", 3, 1) < 0)
        die("vocabulary");
    nlp_vocab_pin(v);
    unsigned char *vb;
    size_t nvb;
    check(nlp_vocab_to_blob(v, &vb, &nvb), NULL, "vocabulary blob");
    if (nlp_model_set_meta(g, "hidden", "7") || nlp_model_set_meta_double(g, "lr", 0.002)
        || nlp_model_set_meta(g, "note", "ünïcode value")
        || nlp_model_add_tensor(g, "w", a, 2, (size_t[]){ 2, 3 })
        || nlp_model_add_tensor(g, "b", b, 1, (size_t[]){ 1 })
        || nlp_model_add_tensor(g, "c", a, 3, (size_t[]){ 1, 2, 3 })
        || nlp_model_add_blob(g, "vocab", vb, nvb) || nlp_model_add_blob(g, "empty", "", 0))
        die("model");
    check(nlp_model_save(g, tmp, &e), &e, "model save");
    model_seed("other-kind", "\x05\x00", tmp);
    nlp_model_free(g);

    /* The smallest model, with an untouched checksum (option bit 0 off). */
    (void)nlp_model_new(&g, "x");
    if (!g)
        die("out of memory");
    check(nlp_model_save(g, tmp, &e), &e, "model save");
    model_seed("empty", "\x04\x00", tmp);
    nlp_model_free(g);
    nlp_vocab_free(v);
    free(vb);
}

/* ---- vectors: option bytes (max_rows, round trip), vectors file --------- */

static void vectors_seeds(void)
{
    nlp_vocab *v;
    (void)nlp_vocab_new(&v); /* NULL on failure */
    const char *words[] = { "the", "città", "über", "猫", "</s>" };
    for (size_t i = 0; i < 5; i++)
        if (!v || nlp_vocab_add(v, words[i], strlen(words[i])) < 0)
            die("vocabulary");
    static const float x[5 * 4] = {
        0.1f, -0.25f, 1e-7f, 3.0f,   -1, 2, -3, 4,   0.5f, 0.5f, 0.5f, 0.5f,
        1e10f, -1e-10f, 0, 7.125f,   0.333333f, -0.666666f, 1.5f, -2.5f,
    };
    for (int binary = 0; binary < 2; binary++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        nlp_error e;
        if (!f)
            die("open_memstream: %s", strerror(errno));
        check(nlp_vectors_write(f, v, x, 5, 4, binary, "seed", &e), &e, "vectors write");
        fclose(f);
        char opt[2] = { 0, (char)(1 | (binary << 1)) };
        seed("vectors", binary ? "binary" : "text", opt, 2, buf, len);
        opt[0] = 2;
        opt[1] = 0;
        seed("vectors", binary ? "binary-2rows" : "text-2rows", opt, 2, buf, len);
        free(buf);
    }
    nlp_vocab_free(v);
    /* As gensim writes text: no trailing space; a CRLF file; a binary file
    ** without the newline after each row. */
    seed_str("vectors", "gensim", "\x00\x01", 2, "2 3\nhello 0.1 0.2 0.3\nworld -1 2e-3 4\n");
    seed_str("vectors", "crlf", "\x00\x00", 2, "2 2\r\na 1 2\r\nb 3 4\r\n");
    static const unsigned char bin[] = "2 1\nx \x00\x00\x80\x3f" "y \x00\x00\x00\xc0";
    seed("vectors", "binary-no-newline", "\x00\x03", 2, bin, sizeof bin - 1);
}

/* ---- lines: option bytes (strip CR and repeats, call pattern), text ----- */

static void lines_seeds(void)
{
    seed_str("lines", "plain", "\x00\x00", 2, "first line\nsecond\n\nfourth, no newline");
    seed_str("lines", "crlf", "\x01\x55", 2, "dos\r\nline\r\n\r\nlone\rcr\r\nend\r");
    static const char nul[] = "nul\0inside\nand\0\0\n";
    seed("lines", "nul", "\x00\xff", 2, nul, sizeof nul - 1);
    /* Repeated 64 times: about 80 KiB, past the reader's 64 KiB block. */
    char big[1300];
    size_t n = 0;
    for (int i = 0; n + 40 < sizeof big; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "line %d: %.*s\n", i, i % 23,
                              "abcdefghijklmnopqrstuvw");
    seed("lines", "blocks", "\x7e\x0f", 2, big, n);
    /* One 76 KiB line. */
    memset(big, 'x', sizeof big);
    seed("lines", "long-line", "\x7a\x00", 2, big, sizeof big);
}

/* ---- vocab: option byte (blob or lines, pinned), file ------------------ */

static void vocab_seeds(void)
{
    seed_str("vocab", "lines", "\x00", 1, "the 1061396\nof 593677\ncittà 12\n</s> 0\n");
    seed_str("vocab", "lines-pinned", "\x02", 1, "<unk> 5\nword with spaces 3\r\ntab\tword 2\n\n");
    nlp_vocab *v;
    (void)nlp_vocab_new(&v); /* NULL on failure */
    if (!v || nlp_vocab_add_count(v, "<unk>", 5, 0) < 0)
        die("vocabulary");
    nlp_vocab_pin(v);
    if (nlp_vocab_add_count(v, "a", 1, 9) < 0 || nlp_vocab_add_count(v, "über", 5, 4) < 0
        || nlp_vocab_add_count(v, "nul\0byte", 8, 1) < 0)
        die("vocabulary");
    unsigned char *b;
    size_t n;
    check(nlp_vocab_to_blob(v, &b, &n), NULL, "vocabulary blob");
    seed("vocab", "blob", "\x01", 1, b, n);
    free(b);
    nlp_vocab_free(v);
}

/* ---- labelled text: option byte (format), the lines -------------------- */

static void classify_seeds(void)
{
    seed_str("classify", "tsv", "\x01", 1, "pos\tgood film\nneg\tnot good\n\npos\t\xc3\xa0 la carte\n");
    seed_str("classify", "fasttext", "\x02", 1,
             "__label__pos good film\n__label__neg not  good\r\n__label__x y\n");
    seed_str("classify", "auto", "\x00", 1, "__label__a b c\n__label__b c\n");
}

/* ---- bleu: option byte, hypothesis NUL reference ------------------------ */

static void bleu_seed(const char *name, char opt, const char *hyp, const char *ref)
{
    size_t nh = strlen(hyp), nr = strlen(ref);
    char *buf = malloc(nh + 1 + nr);
    if (!buf)
        die("out of memory");
    memcpy(buf, hyp, nh);
    buf[nh] = '\0';
    memcpy(buf + nh + 1, ref, nr);
    seed("bleu", name, &opt, 1, buf, nh + 1 + nr);
    free(buf);
}

static void bleu_seeds(void)
{
    bleu_seed("13a", 0x01, "The cat sat on the mat, didn't it? &quot;Yes&quot; &amp; 3.14-2 <skipped>-\nend",
              "The cat is on the mat , isn't it ? \"Yes\" & 3.14 - 2");
    bleu_seed("lower-13a-lines", 0x1f, "ΣΟΦΟΣ İstanbul ΟΔΥΣΣΕΥΣ\nA B C D E  \nx.,5 a..b\n",
              "σοφος istanbul οδυσσευς\na b c d e\nx . , 5\n");
    bleu_seed("none-spaces", 0x08, "a\xc2\xa0" "b\xe3\x80\x80" "c\td\xe2\x80\xa8" "e\nsame same same same\n",
              "a b c d e\nsame same same same\n");
    static const char invalid[] = "\x03ok \xff\xfe bad \xc3( \xe2\x82 end\x80";
    seed("bleu", "invalid-utf8", invalid, 1, invalid + 1, sizeof invalid - 2);
    seed_str("bleu", "no-reference", "\x04", 1, "one two three four five six, seven.  \n");
}

/* ---- series: option bytes (format/header/fill/time, columns), table ---- */

static void series_seeds(void)
{
    /* Columns by name "realgdp" (index 6), "1" (4), NULL. */
    seed_str("series", "csv-names", "\x00\x02\x06\x04\x00", 5,
             "# macrodata\ndate,realgdp,\"infl, %\"\r\n1959-01,2710.349,0.00\r\n"
             "1959-04,2778.801,2.34\r\n1959-07,2775.488,2.74\r\n");
    seed_str("series", "tsv-fill-linear", "\x62\x01\x00\x81", 4,
             "date\tv\tw\n2000\t1\t\n2001\tNA\t2\n2002\t3\tNaN\n2003\t\t4\n");
    seed_str("series", "whitespace-previous", "\x1b\x09\x81\x82", 4,
             "  1   2\n\n\t3  nan\n 1e30 -1e-300\n7 8\n");
    seed_str("series", "no-header-numbers", "\x05\x08\x0a", 3, "1,2\n3,4\n5,6\n");
    seed_str("series", "quotes", "\x81\x01\x01\x80", 4,
             "t,\"a\",\"b\"\"c\"\n\"1\",\"2.5\",3\n2,-4,\"5e2\"\n");
}

/* ---- forecast: option byte (flags), model file ------------------------- */

/* The table of fuzz_forecast.c: x (n,k). */
static double *forecast_table(long n, int k)
{
    double *x = malloc((size_t)n * (size_t)k * sizeof *x);
    if (!x)
        die("out of memory");
    for (long i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            x[i * k + j] = (double)((i * 7 + j * 3) % 11) - 5 + 0.25 * j + 0.1 * (double)i;
    return x;
}

#define FORECAST_ROWS 48
#define FORECAST_TRAIN 40

static nlp_forecast *tiny_forecast(nlp_forecast_model kind, int k, int W, int H, int diff,
                                   int layers, const double *x)
{
    static const char *const names[] = { "y", "x1", "x 2" };
    nlp_forecast_config c;
    nlp_forecast_config_default(&c);
    c.model = kind;
    c.inputs = k;
    c.window = W;
    c.horizon = H;
    c.difference = diff;
    c.hidden = 3;
    c.layers = layers;
    c.dropout = layers > 1 ? 0.25f : 0;
    nlp_rng r;
    nlp_rng_seed(&r, 5);
    nlp_forecast *m;
    nlp_error e;
    check(nlp_forecast_new(&m, &c, names, &r, &e), &e, "forecast model");
    check(nlp_forecast_fit(m, x, FORECAST_TRAIN, &e), &e, "forecast fit");
    return m;
}

static void forecast_seeds(const char *tmpdir)
{
    char tmp[4096];
    nlp_error e;
    snprintf(tmp, sizeof tmp, "%s/f", tmpdir);
    static const struct {
        const char *name;
        nlp_forecast_model kind;
        int k, W, H, diff, layers;
        char opt;
    } models[] = {
        { "lstm", NLP_FORECAST_LSTM, 1, 3, 2, 0, 1, 0x07 },
        { "gru-2-multi", NLP_FORECAST_GRU, 2, 2, 1, 1, 2, 0x05 },
        { "rnn-diff", NLP_FORECAST_RNN, 1, 2, 2, 1, 1, 0x03 },
        { "linear", NLP_FORECAST_LINEAR, 3, 2, 3, 0, 1, 0x07 },
        { "persistence", NLP_FORECAST_PERSISTENCE, 1, 1, 1, 1, 1, 0x06 },
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        double *x = forecast_table(FORECAST_ROWS, models[i].k);
        nlp_forecast *m = tiny_forecast(models[i].kind, models[i].k, models[i].W, models[i].H,
                                        models[i].diff, models[i].layers, x);
        const char *meta[] = { "command", "forecast train -o m", NULL };
        check(nlp_forecast_save(m, tmp, meta, &e), &e, "forecast save");
        size_t n;
        unsigned char *buf = slurp(tmp, &n);
        seed("forecast", models[i].name, &models[i].opt, 1, buf, n);
        free(buf);
        unlink(tmp);
        nlp_forecast_free(m);
        free(x);
    }

    /* A checkpoint after one step on the table (fuzz_forecast.c rebuilds
    ** it to restore the checkpoint). */
    double *x = forecast_table(FORECAST_ROWS, 1);
    nlp_forecast *m = tiny_forecast(NLP_FORECAST_LSTM, 1, 3, 2, 1, 1, x);
    nlp_forecast_train_config tc;
    nlp_forecast_train_config_default(&tc);
    tc.batch = 4;
    nlp_forecast_trainer *t;
    check(nlp_forecast_trainer_new(&t, m, &tc, x, FORECAST_ROWS, FORECAST_TRAIN, &e), &e,
          "forecast trainer");
    char best[4096];
    snprintf(best, sizeof best, "%s/best", tmpdir);
    nlp_train_config rc;
    nlp_train_config_default(&rc);
    rc.max_steps = 1;
    rc.checkpoint_every = 1e9;
    rc.output = best;
    rc.checkpoint = tmp;
    rc.log = NULL;
    nlp_train *run;
    check(nlp_train_new(&run, &rc, nlp_forecast_trainer_task(t), &e), &e, "harness");
    check(nlp_train_run(run, NULL, &e), &e, "forecast train step");
    nlp_train_free(run);
    zero_elapsed(tmp);
    size_t n;
    unsigned char *buf = slurp(tmp, &n);
    seed("forecast", "lstm-checkpoint", "\x01", 1, buf, n);
    free(buf);
    unlink(tmp);
    unlink(best);
    nlp_forecast_trainer_free(t);
    nlp_forecast_free(m);
    free(x);
}

/* ---- pairs: option bytes (reader/vocabulary, batches, seed), corpus ---- */

static void pairs_seeds(void)
{
    seed_str("pairs", "tsv", "\x00\x03\x01", 3,
             "ein Haus\ta house\n\nzwei H\xc3\xa4user .\ttwo houses .\r\n"
             "ein ein Haus\ta a house\n<unk> <s>\t</s> x\n");
    seed_str("pairs", "tsv-tokens-pools", "\x16\xb5\x07", 3,
             "a b c d e f\tA B C D E F G\nb\tB\nc c\tC C\n  d \x0b e\f\tD E\na\tA\nf f f\tF\n");
    static const char two[] = "le chat\nun chien noir\n\n\xc3\xa9t\xc3\xa9\tchaud\n"
                              "\0the cat\na black dog\n\nhot summer\n";
    seed("pairs", "two-files", "\x09\x02\x03", 3, two, sizeof two - 1);
    static const char uneven[] = "a\nb\nc\n\0x\ny\n";
    seed("pairs", "two-files-uneven", "\x01\x00\x00", 3, uneven, sizeof uneven - 1);
    seed_str("pairs", "errors", "\x00\x00\x00", 3, "ok\tfine\nno tab here\n");
}

/* ---- seq2seq: option bytes (flags, batch ids), model file ------------- */

static nlp_vocab *seq2seq_vocab(int n, const char *prefix)
{
    nlp_vocab *v;
    if (nlp_seq2seq_vocab_new(&v) != NLP_OK)
        die("out of memory");
    for (int i = 0; i < n; i++) {
        char w[32];
        snprintf(w, sizeof w, "%s%d", prefix, i);
        if (nlp_vocab_add(v, w, strlen(w)) < 0)
            die("vocabulary");
    }
    return v;
}

static void seq2seq_seeds(const char *tmpdir)
{
    char tmp[4096];
    nlp_error e;
    snprintf(tmp, sizeof tmp, "%s/s", tmpdir);
    static const struct {
        const char *name;
        nlp_rnn_cell cell;
        nlp_seq2seq_attention attention;
        int enc_layers, dec_layers, tie;
        char opt[2];
    } models[] = {
        { "gru-bahdanau", NLP_RNN_GRU, NLP_SEQ2SEQ_ATTN_BAHDANAU, 1, 1, 0, { 0x07, 0x00 } },
        { "lstm-luong-dot-2", NLP_RNN_LSTM, NLP_SEQ2SEQ_ATTN_LUONG_DOT, 2, 2, 0, { 0x03, 0x05 } },
        { "gru-luong-general-tied", NLP_RNN_GRU, NLP_SEQ2SEQ_ATTN_LUONG_GENERAL, 1, 2, 1,
          { 0x05, 0x11 } },
        { "lstm-none", NLP_RNN_LSTM, NLP_SEQ2SEQ_ATTN_NONE, 1, 1, 0, { 0x01, 0x2a } },
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        nlp_seq2seq_config c;
        nlp_seq2seq_config_default(&c);
        c.cell = models[i].cell;
        c.attention = models[i].attention;
        c.embed = 3;
        c.hidden = 2;
        c.attn_hidden = models[i].attention == NLP_SEQ2SEQ_ATTN_BAHDANAU ? 3 : 0;
        c.enc_layers = models[i].enc_layers;
        c.dec_layers = models[i].dec_layers;
        c.tie_embeddings = models[i].tie;
        c.dropout = 0.25f;
        c.label_smoothing = i == 1 ? 0.1f : 0;
        nlp_rng rng;
        nlp_rng_seed(&rng, 3);
        nlp_seq2seq *m;
        check(nlp_seq2seq_new(&m, &c, seq2seq_vocab(2, "s"), seq2seq_vocab(3, "t\xc3\xa9"), &rng, &e),
              &e, "seq2seq model");
        const char *meta[] = { "command", "seq2seq train -o m", NULL };
        check(nlp_seq2seq_save(m, tmp, meta, &e), &e, "seq2seq save");
        size_t n;
        unsigned char *buf = slurp(tmp, &n);
        seed("seq2seq", models[i].name, models[i].opt, 2, buf, n);
        free(buf);
        unlink(tmp);
        nlp_seq2seq_free(m);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "Usage: make-seeds DIR\n");
        return 2;
    }
    outdir = argv[1];
    char tmpdir[] = "/tmp/make-seeds.XXXXXX";
    if (!mkdtemp(tmpdir))
        die("mkdtemp: %s", strerror(errno));
    tokenize_seeds();
    model_seeds(tmpdir);
    vectors_seeds();
    lines_seeds();
    vocab_seeds();
    classify_seeds();
    bleu_seeds();
    series_seeds();
    forecast_seeds(tmpdir);
    pairs_seeds();
    seq2seq_seeds(tmpdir);
    rmdir(tmpdir);
    return 0;
}
