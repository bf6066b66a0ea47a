/*
** Unit tests for classify, the many-to-one text classifier.
**
** The focus of this file is: the two labelled-text formats and their
** errors; finite-difference checks of the whole composed loss for each
** pooling kind (and both cells, with dropout and an empty sentence); a
** task only word order can solve; the same model from both formats;
** word vectors that really reach the model (including words only the
** vectors know); bad vectors files; save/load and a file whose
** hyperparameters lie about its tensors.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nlp/alloc.h"
#include "nlp/classify.h"
#include "nlp/model.h"
#include "nlp/optim.h"
#include "gradcheck.h"

/* ---- helpers ---- */

static nlp_classify_data *read_text(const char *text, nlp_classify_format fmt, int expect_rc,
                                    nlp_error *e)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    assert_non_null(f);
    nlp_classify_data *d = NULL;
    nlp_error_clear(e);
    int rc = nlp_classify_data_read(&d, f, "mem", fmt, e);
    fclose(f);
    assert_int_equal(rc, expect_rc);
    return d;
}

/* A model over the data d (words with min_count 1, its labels). */
static nlp_classify *model_for(const nlp_classify_data *d, const nlp_classify_config *cfg,
                               const nlp_vectors *vec, int freeze, uint64_t seed)
{
    nlp_vocab *words, *labels;
    long trained;
    assert_int_equal(nlp_classify_words_build(&words, &trained, d->words, 1, vec, -1), NLP_OK);
    assert_int_equal(nlp_classify_labels_build(&labels, d->labels), NLP_OK);
    nlp_rng rng;
    nlp_rng_seed(&rng, seed);
    nlp_classify *m;
    nlp_error e;
    assert_int_equal(nlp_classify_new(&m, cfg, words, freeze ? 0 : trained, labels, &rng, &e),
                     NLP_OK);
    if (vec)
        assert_int_equal(nlp_classify_set_vectors(m, vec, NULL, &rng), NLP_OK);
    return m;
}

/* Trains m on s for steps steps with Adam at lr through the trainer's task
** (the harness's part done here: zero, step, update). */
static void train_steps(nlp_classify *m, const nlp_classify_set *s, int batch, long steps,
                        double lr, uint64_t seed)
{
    nlp_classify_train_config tc;
    nlp_classify_train_config_default(&tc);
    tc.batch = batch;
    tc.seed = seed;
    nlp_classify_trainer *t;
    nlp_error e;
    assert_int_equal(nlp_classify_trainer_new(&t, m, &tc, s, NULL, &e), NLP_OK);
    const nlp_train_task *task = nlp_classify_trainer_task(t);
    nlp_params *p = nlp_classify_params(m);
    nlp_optim_config oc;
    nlp_optim_config_default(&oc, NLP_OPTIM_ADAM);
    oc.lr = lr;
    nlp_optim *o;
    assert_int_equal(nlp_optim_new(&o, p->n, &oc), NLP_OK);
    for (long i = 0; i < steps; i++) {
        double loss, count;
        nlp_params_zero_grad(p);
        int rc = task->step(task->ctx, &loss, &count, &e);
        assert_true(rc == 0 || rc == 1);
        assert_true(isfinite(loss));
        nlp_optim_clip(p->grad, p->n, 5.0f);
        nlp_optim_step(o, p->data, p->grad);
    }
    nlp_optim_free(o);
    nlp_classify_trainer_free(t);
}

static double accuracy(nlp_classify *m, const nlp_classify_set *s)
{
    int *pred = malloc((size_t)s->n * sizeof *pred);
    assert_int_equal(nlp_classify_predict_set(m, s, 64, pred), NLP_OK);
    long hit = 0;
    for (long i = 0; i < s->n; i++)
        hit += pred[i] == s->label[i];
    free(pred);
    return (double)hit / (double)s->n;
}

/* A growing text buffer. */
typedef struct buf {
    char *s;
    size_t n, cap;
} buf;

static void put(buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (b->s && (size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        b->cap = b->cap * 2 + (size_t)k + 64;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
    }
}

/* ---- reading ---- */

static void test_read_formats(void **state)
{
    (void)state;
    nlp_error e;
    nlp_classify_data *d = read_text("pos\tgood film\n\nneg\t  bad   one \r\npos\tfine\n",
                                     NLP_CLASSIFY_AUTO, NLP_OK, &e);
    assert_int_equal(d->format, NLP_CLASSIFY_TSV);
    assert_int_equal(d->n, 3);
    assert_int_equal(d->lines, 4);
    assert_int_equal(d->line[1], 3);
    assert_int_equal(d->start[3], 5);
    assert_int_equal(nlp_vocab_size(d->labels), 2);
    assert_string_equal(nlp_vocab_word(d->words, d->tok[3]), "one");
    nlp_classify_data_free(d);

    d = read_text("__label__pos good film\n__label__neg bad one\n", NLP_CLASSIFY_AUTO, NLP_OK, &e);
    assert_int_equal(d->format, NLP_CLASSIFY_FASTTEXT);
    assert_int_equal(d->n, 2);
    assert_string_equal(nlp_vocab_word(d->labels, d->label[1]), "neg");
    assert_string_equal(nlp_vocab_word(d->words, d->tok[0]), "good");
    nlp_classify_data_free(d);

    /* Forced tsv: a tsv label may look like a fastText one. */
    d = read_text("__label__x\ta b\n", NLP_CLASSIFY_TSV, NLP_OK, &e);
    assert_string_equal(nlp_vocab_word(d->labels, 0), "__label__x");
    nlp_classify_data_free(d);

    /* An empty file is no error here (the tool refuses it). */
    d = read_text("", NLP_CLASSIFY_AUTO, NLP_OK, &e);
    assert_int_equal(d->n, 0);
    nlp_classify_data_free(d);
}

static void test_read_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        nlp_classify_format fmt;
        int rc;
        long line;
        const char *what;
    } cases[] = {
        {"pos\ta\nno tab here\n", NLP_CLASSIFY_AUTO, NLP_EFORMAT, 2, "no TAB"},
        {"pos\ta\n\tjust text\n", NLP_CLASSIFY_AUTO, NLP_EFORMAT, 2, "empty label"},
        {"pos\ta\nneg\t   \n", NLP_CLASSIFY_AUTO, NLP_EFORMAT, 2, "no text"},
        {"__label__a x\nplain words\n", NLP_CLASSIFY_AUTO, NLP_EFORMAT, 2, "no label"},
        {"__label__a x\n__label__b\n", NLP_CLASSIFY_AUTO, NLP_EFORMAT, 2, "no text"},
        {"__label__ x\n", NLP_CLASSIFY_AUTO, NLP_EFORMAT, 1, "empty label"},
        {"__label__a x __label__b y\n", NLP_CLASSIFY_AUTO, NLP_EFORMAT, 1, "second"},
        {"pos\tok\n\nneg\tbad \xff byte\n", NLP_CLASSIFY_AUTO, NLP_EUTF8, 3, "UTF-8"},
        {"pos\tok\n", NLP_CLASSIFY_FASTTEXT, NLP_EFORMAT, 1, "no label"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nlp_error e;
        nlp_classify_data *d = read_text(cases[i].text, cases[i].fmt, cases[i].rc, &e);
        assert_null(d);
        assert_int_equal(e.line, cases[i].line);
        assert_string_equal(e.file, "mem");
        if (!strstr(e.text, cases[i].what))
            fail_msg("case %zu: '%s' lacks '%s'", i, e.text, cases[i].what);
    }
}

static void test_words_and_labels(void **state)
{
    (void)state;
    nlp_error e;
    nlp_classify_data *d = read_text("b\tx y y z\na\ty z z\nc\tz w\n", NLP_CLASSIFY_AUTO,
                                     NLP_OK, &e);
    nlp_vocab *w, *l;
    long trained;
    assert_int_equal(nlp_classify_words_build(&w, &trained, d->words, 2, NULL, -1), NLP_OK);
    /* <unk>, then z (4), y (3); x and w are below min_count 2. */
    assert_int_equal(trained, 3);
    assert_int_equal(nlp_vocab_size(w), 3);
    assert_string_equal(nlp_vocab_word(w, 0), "<unk>");
    assert_string_equal(nlp_vocab_word(w, 1), "z");
    assert_string_equal(nlp_vocab_word(w, 2), "y");
    nlp_vocab_free(w);
    assert_int_equal(nlp_classify_labels_build(&l, d->labels), NLP_OK);
    assert_string_equal(nlp_vocab_word(l, 0), "a");
    assert_string_equal(nlp_vocab_word(l, 2), "c");
    nlp_vocab_free(l);
    nlp_classify_data_free(d);

    d = read_text("only\tone label\nonly\there\n", NLP_CLASSIFY_AUTO, NLP_OK, &e);
    assert_int_equal(nlp_classify_labels_build(&l, d->labels), NLP_EINVAL);
    nlp_classify_data_free(d);

    int *ids = NULL;
    size_t cap = 0, unk = 0;
    int n;
    d = read_text("a\tknown words\n", NLP_CLASSIFY_AUTO, NLP_OK, &e);
    assert_int_equal(nlp_classify_tokens(d->words, "  words new\tknown ", 18, &ids, &cap, &n,
                                         &unk), NLP_OK);
    assert_int_equal(n, 3);
    assert_int_equal(unk, 1);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], NLP_CLASSIFY_UNK_ID);
    assert_int_equal(ids[2], 0);
    nlp_free(ids);
    nlp_classify_data_free(d);
}

/* ---- gradient check of the composed loss ---- */

typedef struct gc_ctx {
    nlp_classify *m;
    const int *const *seqs;
    const int *lens;
    const int *targets;
    int B;
    uint64_t seed; /* the same dropout masks at every evaluation */
} gc_ctx;

static double gc_loss(void *ctx)
{
    gc_ctx *c = ctx;
    nlp_rng rng;
    nlp_rng_seed(&rng, c->seed);
    assert_int_equal(nlp_classify_forward(c->m, c->seqs, c->lens, c->B, 1, &rng), NLP_OK);
    double loss;
    assert_int_equal(nlp_classify_loss(c->m, c->targets, &loss, NULL), NLP_OK);
    return loss;
}

static void check_pool(nlp_classify_pool pool, nlp_rnn_cell cell, int layers, float dropout,
                       int bidirectional)
{
    nlp_error e;
    nlp_classify_data *d = read_text("a\tw1 w2 w3 w4 w5 w6\nb\tw2 w5\nc\tw6 w1 w3\n",
                                     NLP_CLASSIFY_AUTO, NLP_OK, &e);
    nlp_classify_config cfg;
    nlp_classify_config_default(&cfg);
    cfg.cell = cell;
    cfg.embed = 3;
    cfg.hidden = 4;
    cfg.layers = layers;
    cfg.pool = pool;
    cfg.attention = 5;
    cfg.dropout = dropout;
    cfg.word_dropout = dropout > 0 ? 0.3f : 0.0f; /* with 3 of 4 sentences, some <unk> */
    cfg.bidirectional = bidirectional;
    nlp_classify *m = model_for(d, &cfg, NULL, 0, 7);
    assert_int_equal(nlp_classify_reserve(m, 6, 4), NLP_OK);
    /* Sentences of 6, 2 and 0 tokens and one with <unk>. */
    static const int s0[] = {1, 2, 3, 4, 5, 6}, s1[] = {2, 5}, s3[] = {6, 0, 3};
    const int *seqs[4] = {s0, s1, s0, s3};
    int lens[4] = {6, 2, 0, 3}, targets[4] = {0, 1, 2, 2};
    gc_ctx c = {m, seqs, lens, targets, 4, 99};
    nlp_params *p = nlp_classify_params(m);
    float *grad = malloc(p->n * sizeof *grad);
    gc_loss(&c);
    nlp_params_zero_grad(p);
    assert_int_equal(nlp_classify_backward(m), NLP_OK);
    memcpy(grad, p->grad, p->n * sizeof *grad);
    gc_options o = gc_defaults();
    char label[128];
    for (int v = 0; v < p->nviews; v++) {
        snprintf(label, sizeof label, "%s/%s/%s", nlp_classify_pool_name(pool),
                 nlp_rnn_cell_name(cell), p->views[v].name);
        o.label = label;
        gc_result r = gc_check(p->data + p->views[v].offset, grad + p->views[v].offset,
                               p->views[v].size, gc_loss, &c, &o);
        assert_true(gc_ok(&r, &o));
    }
    /* A wrong gradient is caught: the check can fail. */
    grad[p->views[p->nviews - 1].offset] += 0.5f;
    gc_result r = gc_check(p->data + p->views[p->nviews - 1].offset,
                           grad + p->views[p->nviews - 1].offset, 1, gc_loss, &c, &o);
    assert_false(r.max_rel < o.tol);
    free(grad);
    nlp_classify_free(m);
    nlp_classify_data_free(d);
}

static void test_gradcheck_max(void **state)
{
    (void)state;
    check_pool(NLP_CLASSIFY_POOL_MAX, NLP_RNN_LSTM, 1, 0, 1);
    check_pool(NLP_CLASSIFY_POOL_MAX, NLP_RNN_GRU, 2, 0.3f, 1);
}

static void test_gradcheck_mean(void **state)
{
    (void)state;
    check_pool(NLP_CLASSIFY_POOL_MEAN, NLP_RNN_GRU, 1, 0, 1);
    check_pool(NLP_CLASSIFY_POOL_MEAN, NLP_RNN_LSTM, 2, 0.3f, 1);
}

static void test_gradcheck_last(void **state)
{
    (void)state;
    check_pool(NLP_CLASSIFY_POOL_LAST, NLP_RNN_LSTM, 1, 0, 1);
    check_pool(NLP_CLASSIFY_POOL_LAST, NLP_RNN_GRU, 1, 0.3f, 0);
}

static void test_gradcheck_attention(void **state)
{
    (void)state;
    check_pool(NLP_CLASSIFY_POOL_ATTENTION, NLP_RNN_GRU, 1, 0, 1);
    check_pool(NLP_CLASSIFY_POOL_ATTENTION, NLP_RNN_LSTM, 2, 0.3f, 1);
}

/* ---- prediction through the projection cache ---- */

/* Softmax of the plain forward's logits (train 0) of the batch. */
static void plain_probs(nlp_classify *m, const int *const *seqs, const int *lens, int B, int K,
                        float *probs)
{
    assert_int_equal(nlp_classify_forward(m, seqs, lens, B, 0, NULL), NLP_OK);
    const float *lg = nlp_classify_logits(m);
    for (int b = 0; b < B; b++) {
        float mx = lg[b * K];
        for (int k = 1; k < K; k++)
            mx = lg[b * K + k] > mx ? lg[b * K + k] : mx;
        double z = 0;
        for (int k = 0; k < K; k++)
            z += exp(lg[b * K + k] - mx);
        for (int k = 0; k < K; k++)
            probs[b * K + k] = (float)(exp(lg[b * K + k] - mx) / z);
    }
}

static void assert_close(const float *a, const float *b, int n, float tol)
{
    for (int i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= tol))
            fail_msg("probability %d: %.7f against %.7f", i, (double)a[i], (double)b[i]);
}

/*
** Predictions looked up through the cache equal the plain forward's, for
** every cell and pooling, one and two layers, both directions; with a
** cache too small for the batch's words (rows made per batch); after a
** training step changed the weights (the rows are made again); and the
** cache never lets a loss or backward follow a prediction.
*/
static void test_predict_cache(void **state)
{
    (void)state;
    nlp_error e;
    nlp_classify_data *d = read_text("a\tw1 w2 w3 w4 w5 w6\nb\tw2 w5\nc\tw6 w1 w3\n",
                                     NLP_CLASSIFY_AUTO, NLP_OK, &e);
    static const int s0[] = {1, 2, 3, 4, 5, 6}, s1[] = {2, 5}, s3[] = {6, 0, 3, 3};
    const int *seqs[4] = {s0, s1, s0, s3};
    int lens[4] = {6, 2, 0, 4}, targets[4] = {0, 1, 2, 2};
    for (int k = 0; k < 16; k++) {
        nlp_classify_config cfg;
        nlp_classify_config_default(&cfg);
        cfg.cell = k % 2 ? NLP_RNN_GRU : NLP_RNN_LSTM;
        cfg.pool = (nlp_classify_pool)(k / 2 % 4);
        cfg.layers = 1 + k / 8;
        cfg.bidirectional = k % 3 != 2;
        cfg.embed = 5;
        cfg.hidden = 7;
        cfg.attention = 4;
        cfg.dropout = 0.2f;
        nlp_classify *m = model_for(d, &cfg, NULL, 0, 40 + (uint64_t)k);
        assert_int_equal(nlp_classify_reserve(m, 6, 4), NLP_OK);
        /* Taken once, before any prediction: what makes the rows stale
        ** below is the training forward alone. */
        nlp_params *p = nlp_classify_params(m);
        float want[12], got[12];
        for (int round = 0; round < 3; round++) {
            if (round == 1) /* 3 words kept, the rest made per batch */
                assert_int_equal(nlp_classify_set_cache_words(m, 3), NLP_OK);
            plain_probs(m, seqs, lens, 4, 3, want);
            assert_int_equal(nlp_classify_predict(m, seqs, lens, 4, got), NLP_OK);
            assert_close(got, want, 12, 1e-6f);
            assert_int_equal(nlp_classify_loss(m, targets, NULL, NULL), NLP_EINVAL);
            assert_int_equal(nlp_classify_backward(m), NLP_EINVAL);
            /* Again from the kept rows. */
            assert_int_equal(nlp_classify_predict(m, seqs + 1, lens + 1, 3, got), NLP_OK);
            assert_close(got, want + 3, 9, 1e-6f);
            /* A training step moves the weights: the rows are stale. */
            nlp_rng rng;
            nlp_rng_seed(&rng, 5);
            assert_int_equal(nlp_classify_forward(m, seqs, lens, 4, 1, &rng), NLP_OK);
            assert_int_equal(nlp_classify_loss(m, targets, NULL, NULL), NLP_OK);
            nlp_params_zero_grad(p);
            assert_int_equal(nlp_classify_backward(m), NLP_OK);
            for (size_t i = 0; i < p->n; i++)
                p->data[i] -= 0.5f * p->grad[i];
        }
        plain_probs(m, seqs, lens, 4, 3, want);
        assert_int_equal(nlp_classify_predict(m, seqs, lens, 4, got), NLP_OK);
        assert_close(got, want, 12, 1e-6f);
        nlp_classify_free(m);
    }
    /* A model that only ever predicted: the forward has no workspace. */
    nlp_classify_config cfg;
    nlp_classify_config_default(&cfg);
    cfg.embed = 3;
    cfg.hidden = 2;
    nlp_classify *m = model_for(d, &cfg, NULL, 0, 9);
    float got[12];
    assert_int_equal(nlp_classify_predict(m, seqs, lens, 4, got), NLP_OK);
    assert_int_equal(nlp_classify_forward(m, seqs, lens, 4, 0, NULL), NLP_ERANGE);
    static const int bad[] = {1, 99};
    const int *bs[1] = {bad};
    int bl[1] = {2};
    assert_int_equal(nlp_classify_predict(m, bs, bl, 1, got), NLP_ERANGE);
    nlp_classify_free(m);
    nlp_classify_data_free(d);
}

/* ---- learning ---- */

/*
** "good not" against "not good" among the same filler words: every
** sentence of either label has the same bag of words, so only the order
** tells them apart.
*/
static void word_order_data(buf *b, int n, nlp_rng *r)
{
    for (int i = 0; i < n; i++) {
        int label = (int)nlp_rng_below(r, 2);
        int len = 2 + (int)nlp_rng_below(r, 5), at = (int)nlp_rng_below(r, (uint64_t)len + 1);
        put(b, "%s\t", label ? "pos" : "neg");
        for (int k = 0; k <= len; k++) {
            if (k == at)
                put(b, label ? "good not " : "not good ");
            if (k < len)
                put(b, "f%d ", (int)nlp_rng_below(r, 6));
        }
        put(b, "\n");
    }
}

static void test_word_order(void **state)
{
    (void)state;
    nlp_rng r;
    nlp_rng_seed(&r, 5);
    buf tr = {0}, te = {0};
    word_order_data(&tr, 600, &r);
    word_order_data(&te, 300, &r);
    nlp_error e;
    nlp_classify_data *dtr = read_text(tr.s, NLP_CLASSIFY_AUTO, NLP_OK, &e);
    nlp_classify_data *dte = read_text(te.s, NLP_CLASSIFY_AUTO, NLP_OK, &e);
    nlp_classify_config cfg;
    nlp_classify_config_default(&cfg);
    cfg.cell = NLP_RNN_GRU;
    cfg.embed = 8;
    cfg.hidden = 12;
    cfg.dropout = 0;
    nlp_classify *m = model_for(dtr, &cfg, NULL, 0, 3);
    nlp_classify_set *str, *ste;
    assert_int_equal(nlp_classify_set_make(&str, m, dtr, NULL, NULL), NLP_OK);
    assert_int_equal(nlp_classify_set_make(&ste, m, dte, NULL, NULL), NLP_OK);
    train_steps(m, str, 16, 600, 0.01, 1);
    double acc = accuracy(m, ste);
    if (acc < 0.95)
        fail_msg("word-order accuracy %.3f < 0.95", acc);
    nlp_classify_set_free(str);
    nlp_classify_set_free(ste);
    nlp_classify_free(m);
    nlp_classify_data_free(dtr);
    nlp_classify_data_free(dte);
    free(tr.s);
    free(te.s);
}

/* ---- lines in input order, ranks and scores (classify_run) ---- */

static void test_stream_and_scores(void **state)
{
    (void)state;
    nlp_error e;
    nlp_classify_data *d = read_text("a\tx y z\nb\ty y\nc\tz\n", NLP_CLASSIFY_AUTO, NLP_OK, &e);
    nlp_classify_config cfg;
    nlp_classify_config_default(&cfg);
    cfg.embed = 4;
    cfg.hidden = 3;
    nlp_classify *m = model_for(d, &cfg, NULL, 0, 4);
    /* Lines of different lengths (one empty), window 5, batches of 2: the
    ** same probabilities, in input order, as each line alone. */
    static const char *const lines[6] = {"x y z x y", "", "z", "y q z", "x x", "z y"};
    nlp_classify_stream *st;
    assert_int_equal(nlp_classify_stream_new(&st, m, 0, 5), NLP_EINVAL);
    assert_null(st);
    assert_int_equal(nlp_classify_stream_new(&st, m, 2, 5), NLP_OK);
    int n, base = 0;
    for (int i = 0; i < 6; i++) {
        int rc = nlp_classify_stream_add(st, lines[i], strlen(lines[i]));
        assert_int_equal(rc, i == 4);
        if (rc == 1 || i == 5) {
            assert_int_equal(nlp_classify_stream_flush(st, &n), NLP_OK);
            assert_int_equal(n, i == 4 ? 5 : 1);
            for (int j = 0; j < n; j++) {
                int ids[8], len = 0;
                int *tb = NULL;
                size_t cap = 0;
                assert_int_equal(nlp_classify_tokens(nlp_classify_words(m), lines[base + j],
                                                     strlen(lines[base + j]), &tb, &cap, &len,
                                                     NULL), NLP_OK);
                if (len > 0) /* tb is NULL for a line of no tokens */
                    memcpy(ids, tb, (size_t)len * sizeof *ids);
                nlp_free(tb);
                const int *seqs[1] = {ids};
                float want[3];
                assert_int_equal(nlp_classify_predict(m, seqs, &len, 1, want), NLP_OK);
                const float *got = nlp_classify_stream_probs(st, j);
                assert_close(got, want, 3, 1e-6f);
                const long *rank = nlp_classify_stream_rank(st, j);
                assert_true(got[rank[0]] >= got[rank[1]] && got[rank[1]] >= got[rank[2]]);
                assert_true(rank[0] != rank[1] && rank[1] != rank[2] && rank[0] != rank[2]);
            }
            base += n;
        }
    }
    size_t ntok, nunk;
    nlp_classify_stream_counts(st, &ntok, &nunk);
    assert_int_equal(ntok, 13);
    assert_int_equal(nunk, 1); /* q */
    nlp_classify_stream_free(st);

    /* Scores: labels a b c (the model's), and d unseen; predictions fixed. */
    nlp_classify_data *t = read_text("a\tx\nb\tx\nb\tx\nd\tx\nc\tx\nd\tx\n", NLP_CLASSIFY_AUTO,
                                     NLP_OK, &e);
    const int pred[6] = {0, 1, 0, 2, 2, 0};
    nlp_classify_scores *sc;
    assert_int_equal(nlp_classify_scores_new(&sc, m, t, pred), NLP_OK);
    assert_int_equal(sc->K, 3);
    assert_int_equal(sc->R, 4);
    assert_int_equal(sc->hit, 3);
    assert_int_equal(sc->unseen, 2);
    assert_string_equal(sc->row_name[3], "d");
    assert_int_equal(sc->first_line[3], 4);
    /* a: tp 1, predicted 3, support 1; b: tp 1, predicted 1, support 2. */
    assert_true(fabs(sc->precision[0] - 1.0 / 3) < 1e-12 && sc->recall[0] == 1);
    assert_true(sc->precision[1] == 1 && sc->recall[1] == 0.5);
    assert_true(fabs(sc->f1[1] - 2.0 / 3) < 1e-12);
    assert_int_equal(sc->conf[3 * 3 + 2], 1);
    assert_int_equal(sc->conf[3 * 3 + 0], 1);
    assert_true(sc->scored[3] && sc->f1[3] == 0);
    assert_true(fabs(sc->macro_f1 - (0.5 + 2.0 / 3 + 2.0 / 3 + 0) / 4) < 1e-12);
    nlp_classify_scores_free(sc);
    const int badp[6] = {0, 1, 0, 3, 2, 0};
    assert_int_equal(nlp_classify_scores_new(&sc, m, t, badp), NLP_EINVAL);
    nlp_classify_data_free(t);
    nlp_classify_free(m);
    nlp_classify_data_free(d);
}

/* ---- the parallel step ---- */

/* A trainer over s for m (batch 8) with its task. */
static nlp_classify_trainer *trainer_for(nlp_classify *m, const nlp_classify_set *s,
                                         const nlp_train_task **task)
{
    nlp_classify_train_config tc;
    nlp_classify_train_config_default(&tc);
    tc.batch = 8;
    tc.seed = 3;
    nlp_classify_trainer *t;
    nlp_error e;
    assert_int_equal(nlp_classify_trainer_new(&t, m, &tc, s, NULL, &e), NLP_OK);
    *task = nlp_classify_trainer_task(t);
    return t;
}

/* Steps of W shares (the harness's part: zero, every share, sum in
** worker order, step_end), gradients into grad; returns the mean loss. */
static double share_step(const nlp_train_task *task, int W, float **wgrad, size_t n,
                         float *grad)
{
    nlp_error e;
    double sum = 0, items = 0;
    for (int i = 0; i < W; i++) {
        double loss, count;
        memset(wgrad[i], 0, n * sizeof *wgrad[i]);
        assert_int_equal(task->step_share(task->ctx, i, W, wgrad[i], &loss, &count, &e), NLP_OK);
        sum += loss * count;
        items += count;
    }
    memcpy(grad, wgrad[0], n * sizeof *grad);
    for (int i = 1; i < W; i++)
        for (size_t k = 0; k < n; k++)
            grad[k] += wgrad[i][k];
    int r = task->step_end(task->ctx, W, &e);
    assert_true(r == 0 || r == 1);
    return sum / items;
}

/*
** One worker is the serial step bit for bit (dropout included, over
** several steps and an epoch's end); 2 and 3 workers give the serial
** gradient within float rounding (no dropout: their masks differ); a
** thread count above the batch is refused.
*/
static void test_parallel_step(void **state)
{
    (void)state;
    nlp_rng r;
    nlp_rng_seed(&r, 21);
    buf tr = {0};
    word_order_data(&tr, 21, &r); /* batches of 8, 8 and 5 */
    nlp_error e;
    nlp_classify_data *d = read_text(tr.s, NLP_CLASSIFY_AUTO, NLP_OK, &e);
    for (int pool = 0; pool < 4; pool++) {
        for (int W = 1; W <= 3; W++) {
            nlp_classify_config cfg;
            nlp_classify_config_default(&cfg);
            cfg.cell = pool % 2 ? NLP_RNN_GRU : NLP_RNN_LSTM;
            cfg.pool = (nlp_classify_pool)pool;
            cfg.layers = 1 + pool / 2;
            cfg.embed = 6;
            cfg.hidden = 5;
            cfg.dropout = W == 1 ? 0.3f : 0.0f;
            nlp_classify *ms = model_for(d, &cfg, NULL, 0, 8), *mp = model_for(d, &cfg, NULL, 0, 8);
            nlp_classify_set *ss, *sp;
            assert_int_equal(nlp_classify_set_make(&ss, ms, d, NULL, NULL), NLP_OK);
            assert_int_equal(nlp_classify_set_make(&sp, mp, d, NULL, NULL), NLP_OK);
            const nlp_train_task *ts, *tp;
            nlp_classify_trainer *trs = trainer_for(ms, ss, &ts), *trp = trainer_for(mp, sp, &tp);
            assert_int_equal(tp->prepare_workers(tp->ctx, W, &e), NLP_OK);
            nlp_params *ps = nlp_classify_params(ms), *pp = nlp_classify_params(mp);
            const size_t n = ps->n;
            float *wgrad[3], *grad = malloc(n * sizeof *grad);
            for (int i = 0; i < W; i++)
                wgrad[i] = malloc(n * sizeof *wgrad[i]);
            for (int step = 0; step < 4; step++) { /* across the epoch's end */
                double ls, count;
                nlp_params_zero_grad(ps);
                int rs = ts->step(ts->ctx, &ls, &count, &e);
                assert_true(rs == 0 || rs == 1);
                double lp = share_step(tp, W, wgrad, n, grad);
                if (W == 1) {
                    assert_memory_equal(grad, ps->grad, n * sizeof *grad);
                    assert_true(lp == ls);
                } else {
                    double norm = 0;
                    for (size_t k = 0; k < n; k++)
                        norm = fmax(norm, fabs(ps->grad[k]));
                    for (size_t k = 0; k < n; k++)
                        if (fabsf(grad[k] - ps->grad[k]) > 1e-5 * norm + 1e-7)
                            fail_msg("W=%d pool %d step %d: gradient %zu is %g, serially %g", W,
                                     pool, step, k, (double)grad[k], (double)ps->grad[k]);
                    assert_true(fabs(lp - ls) < 1e-5 * fabs(ls));
                }
                /* The same update on both, so the next step starts equal. */
                for (size_t k = 0; k < n; k++) {
                    ps->data[k] -= 0.1f * ps->grad[k];
                    pp->data[k] = ps->data[k];
                }
            }
            for (int i = 0; i < W; i++)
                free(wgrad[i]);
            free(grad);
            nlp_classify_trainer_free(trs);
            nlp_classify_trainer_free(trp);
            nlp_classify_set_free(ss);
            nlp_classify_set_free(sp);
            nlp_classify_free(ms);
            nlp_classify_free(mp);
        }
    }
    /* More threads than sentences in a batch. */
    nlp_classify_config cfg;
    nlp_classify_config_default(&cfg);
    cfg.embed = 3;
    cfg.hidden = 2;
    nlp_classify *m = model_for(d, &cfg, NULL, 0, 1);
    nlp_classify_set *s;
    assert_int_equal(nlp_classify_set_make(&s, m, d, NULL, NULL), NLP_OK);
    const nlp_train_task *task;
    nlp_classify_trainer *t = trainer_for(m, s, &task);
    assert_int_equal(task->prepare_workers(task->ctx, 9, &e), NLP_EINVAL);
    nlp_classify_trainer_free(t);
    nlp_classify_set_free(s);
    nlp_classify_free(m);
    nlp_classify_data_free(d);
    free(tr.s);
}

/* Padding of an epoch's batches (tokens short of each batch's longest);
** checks every example comes once and each batch is sorted by length, and
** records which batch each example was in. */
static long epoch_batches(const nlp_train_task *task, nlp_classify_trainer *t,
                          const nlp_classify_set *s, long *batch_of)
{
    long seen = 0, pad = 0, ex[4];
    for (long i = 0; i < s->n; i++)
        batch_of[i] = -1;
    for (long b = 0; seen < s->n; b++) {
        int B = nlp_classify_trainer_next_batch(t, ex);
        assert_true(B >= 1 && B <= 4);
        long maxlen = 0;
        for (int i = 0; i < B; i++) {
            long len = (long)(s->start[ex[i] + 1] - s->start[ex[i]]);
            if (i > 0)
                assert_true(len >= (long)(s->start[ex[i - 1] + 1] - s->start[ex[i - 1]]));
            maxlen = len > maxlen ? len : maxlen;
            assert_int_equal(batch_of[ex[i]], -1);
            batch_of[ex[i]] = b;
        }
        for (int i = 0; i < B; i++)
            pad += maxlen - (long)(s->start[ex[i] + 1] - s->start[ex[i]]);
        double loss, count;
        nlp_error e;
        int r = task->step(task->ctx, &loss, &count, &e);
        assert_true(r == (seen + B == s->n));
        seen += B;
    }
    return pad;
}

/*
** Bucket pools: every epoch visits each example once in batches sorted by
** length; one pool (0) pads least but keeps the same batches every epoch,
** pools of 4 batches pad far less than pools of 1 (batches at random) and
** mix the batches between epochs.
*/
static void test_bucket_pools(void **state)
{
    (void)state;
    enum { N = 64 };
    nlp_rng r;
    nlp_rng_seed(&r, 8);
    long len[N];
    for (int i = 0; i < N; i++)
        len[i] = i + 1;
    nlp_rng_shuffle(&r, len, N);
    buf text = {0};
    for (int i = 0; i < N; i++) {
        put(&text, i % 2 ? "b\t" : "a\t");
        for (int k = 0; k < len[i]; k++)
            put(&text, k ? " w" : "w");
        put(&text, "\n");
    }
    nlp_error e;
    nlp_classify_data *d = read_text(text.s, NLP_CLASSIFY_TSV, NLP_OK, &e);
    nlp_classify_config cfg;
    nlp_classify_config_default(&cfg);
    cfg.embed = 2;
    cfg.hidden = 2;
    const int pools[3] = {0, 1, 4};
    long pad[3], same[3];
    for (int p = 0; p < 3; p++) {
        nlp_classify *m = model_for(d, &cfg, NULL, 0, 1);
        nlp_classify_set *s;
        assert_int_equal(nlp_classify_set_make(&s, m, d, NULL, NULL), NLP_OK);
        nlp_classify_train_config tc;
        nlp_classify_train_config_default(&tc);
        tc.batch = 4;
        tc.bucket_pool = pools[p];
        nlp_classify_trainer *t;
        assert_int_equal(nlp_classify_trainer_new(&t, m, &tc, s, NULL, &e), NLP_OK);
        const nlp_train_task *task = nlp_classify_trainer_task(t);
        long b1[N], b2[N];
        pad[p] = epoch_batches(task, t, s, b1);
        epoch_batches(task, t, s, b2);
        /* Pairs of examples in one batch in epoch 1 still together in 2. */
        long together = 0, pairs = 0;
        for (int i = 0; i < N; i++)
            for (int j = i + 1; j < N; j++)
                if (b1[i] == b1[j]) {
                    pairs++;
                    together += b2[i] == b2[j];
                }
        assert_int_equal(pairs, N / 4 * 6);
        same[p] = together;
        nlp_classify_trainer_free(t);
        nlp_classify_set_free(s);
        nlp_classify_free(m);
    }
    /* Lengths 1..64 all differ: one pool is batches of 4 neighbours. */
    assert_int_equal(pad[0], N / 4 * 6);
    assert_int_equal(same[0], N / 4 * 6);
    if (!(pad[2] < pad[1] / 2))
        fail_msg("pools of 4 batches pad %ld tokens, batches at random %ld", pad[2], pad[1]);
    if (!(same[2] < same[0] / 2))
        fail_msg("pools of 4 batches keep %ld of %ld pairs together", same[2], same[0]);
    nlp_classify_data_free(d);
    free(text.s);
}

static void test_formats_same_model(void **state)
{
    (void)state;
    nlp_rng r;
    nlp_rng_seed(&r, 11);
    buf tsv = {0}, ft = {0};
    static const char *const labels[3] = {"neg", "neutral", "pos"};
    for (int i = 0; i < 120; i++) {
        int l = (int)nlp_rng_below(&r, 3), len = 1 + (int)nlp_rng_below(&r, 6);
        put(&tsv, "%s\t", labels[l]);
        put(&ft, "__label__%s ", labels[l]);
        for (int k = 0; k < len; k++) {
            int w = (int)nlp_rng_below(&r, 10);
            put(&tsv, "%sw%d_%d", k ? " " : "", l, w);
            put(&ft, "%sw%d_%d", k ? " " : "", l, w);
        }
        put(&tsv, "\n");
        put(&ft, "\n");
    }
    nlp_error e;
    nlp_classify_data *a = read_text(tsv.s, NLP_CLASSIFY_AUTO, NLP_OK, &e);
    nlp_classify_data *b = read_text(ft.s, NLP_CLASSIFY_AUTO, NLP_OK, &e);
    assert_int_equal(a->format, NLP_CLASSIFY_TSV);
    assert_int_equal(b->format, NLP_CLASSIFY_FASTTEXT);
    nlp_classify_config cfg;
    nlp_classify_config_default(&cfg);
    cfg.embed = 6;
    cfg.hidden = 5;
    nlp_classify *ma = model_for(a, &cfg, NULL, 0, 2), *mb = model_for(b, &cfg, NULL, 0, 2);
    nlp_classify_set *sa, *sb;
    assert_int_equal(nlp_classify_set_make(&sa, ma, a, NULL, NULL), NLP_OK);
    assert_int_equal(nlp_classify_set_make(&sb, mb, b, NULL, NULL), NLP_OK);
    train_steps(ma, sa, 8, 100, 0.01, 4);
    train_steps(mb, sb, 8, 100, 0.01, 4);
    nlp_params *pa = nlp_classify_params(ma), *pb = nlp_classify_params(mb);
    assert_int_equal(pa->n, pb->n);
    assert_memory_equal(pa->data, pb->data, pa->n * sizeof(float));
    /* ... and training changed them (the comparison is not of two inits). */
    nlp_classify *m0 = model_for(a, &cfg, NULL, 0, 2);
    assert_memory_not_equal(nlp_classify_params(m0)->data, pa->data, pa->n * sizeof(float));
    double acc = accuracy(ma, sa);
    if (acc < 0.8)
        fail_msg("three labels: training accuracy %.3f < 0.8", acc);
    nlp_classify_free(m0);
    nlp_classify_set_free(sa);
    nlp_classify_set_free(sb);
    nlp_classify_free(ma);
    nlp_classify_free(mb);
    nlp_classify_data_free(a);
    nlp_classify_data_free(b);
    free(tsv.s);
    free(ft.s);
}

/* ---- word vectors ---- */

#define VEC_WORDS 200
#define VEC_DIM 4

/* Words v0..v199; word i belongs to class i % 2, which dimension 0 of its
** vector encodes (+-1); the other dimensions are noise. */
static void write_vectors(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    nlp_rng r;
    nlp_rng_seed(&r, 21);
    fprintf(f, "%d %d\n", VEC_WORDS, VEC_DIM);
    for (int i = 0; i < VEC_WORDS; i++) {
        fprintf(f, "v%d %g", i, i % 2 ? 1.0 : -1.0);
        for (int k = 1; k < VEC_DIM; k++)
            fprintf(f, " %.4f", nlp_rng_normal(&r));
        fprintf(f, "\n");
    }
    fclose(f);
}

/* Sentences of 3..6 words of one class, from words [lo, hi). */
static void class_data(buf *b, int n, int lo, int hi, nlp_rng *r)
{
    for (int i = 0; i < n; i++) {
        int c = (int)nlp_rng_below(r, 2), len = 3 + (int)nlp_rng_below(r, 4);
        put(b, "%s\t", c ? "odd" : "even");
        for (int k = 0; k < len; k++) {
            int w = lo + (int)nlp_rng_below(r, (uint64_t)(hi - lo) / 2) * 2 + c;
            put(b, "%sv%d", k ? " " : "", w);
        }
        put(b, "\n");
    }
}

static void test_vectors_used(void **state)
{
    (void)state;
    char path[] = "/tmp/test_classify_vecXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_vectors(path);
    /* Through a pipe: the reader must not seek. */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "cat %s", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    nlp_vectors *v;
    nlp_error e;
    assert_int_equal(nlp_vectors_read(p, "pipe", 0, &v, &e), NLP_OK);
    pclose(p);
    assert_int_equal(v->n, VEC_WORDS);

    nlp_rng r;
    nlp_rng_seed(&r, 8);
    buf tr = {0}, te = {0};
    class_data(&tr, 200, 0, 100, &r);   /* training words v0..v99 */
    class_data(&te, 200, 100, 200, &r); /* test words only the vectors know */
    nlp_classify_data *dtr = read_text(tr.s, NLP_CLASSIFY_AUTO, NLP_OK, &e);
    nlp_classify_data *dte = read_text(te.s, NLP_CLASSIFY_AUTO, NLP_OK, &e);
    nlp_classify_config cfg;
    nlp_classify_config_default(&cfg);
    cfg.embed = VEC_DIM;
    cfg.hidden = 6;
    cfg.dropout = 0;
    for (int with = 1; with >= 0; with--) {
        nlp_classify *m = model_for(dtr, &cfg, with ? v : NULL, 1, 6);
        assert_int_equal(nlp_classify_trained_rows(m), 0);
        assert_int_equal(nlp_vocab_size(nlp_classify_words(m)), with ? VEC_WORDS + 1 : 101);
        nlp_classify_set *str, *ste;
        size_t unk;
        assert_int_equal(nlp_classify_set_make(&str, m, dtr, NULL, NULL), NLP_OK);
        assert_int_equal(nlp_classify_set_make(&ste, m, dte, &unk, NULL), NLP_OK);
        assert_int_equal(unk == 0, with);
        /* Frozen: the embedding rows are the vectors, unchanged by training. */
        train_steps(m, str, 16, 30, 0.02, 1);
        double acc = accuracy(m, ste);
        if (with && acc < 0.95)
            fail_msg("with vectors: test accuracy %.3f < 0.95 after 30 steps", acc);
        if (!with && acc > 0.8)
            fail_msg("without vectors the unseen words cannot be classified, yet %.3f", acc);
        nlp_classify_set_free(str);
        nlp_classify_set_free(ste);
        nlp_classify_free(m);
    }
    nlp_vectors_free(v);
    nlp_classify_data_free(dtr);
    nlp_classify_data_free(dte);
    free(tr.s);
    free(te.s);
    unlink(path);
}

static void test_bad_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        long line;
    } cases[] = {
        {"2 3\na 1 2 3\nb 1 2\n", NLP_EFORMAT, 3},      /* a row too short */
        {"2 3\na 1 2 3\nb 1 2 3 4\n", NLP_EFORMAT, 3},  /* a row too long */
        {"3 3\na 1 2 3\nb 1 2 3\n", NLP_ETRUNCATED, 4}, /* the header promises more */
        {"2 3\na 1 2 3\n", NLP_ETRUNCATED, 3},          /* a short file */
        {"2 x\na 1 2 3\n", NLP_EFORMAT, 1},             /* a header that is no header */
        {"", NLP_EFORMAT, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[] = "/tmp/test_classify_badXXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, cases[i].text, strlen(cases[i].text)),
                         (ssize_t)strlen(cases[i].text));
        close(fd);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "cat %s", path);
        FILE *p = popen(cmd, "r");
        nlp_vectors *v = NULL;
        nlp_error e;
        nlp_error_clear(&e);
        int rc = nlp_vectors_read(p, "pipe", 0, &v, &e);
        pclose(p);
        unlink(path);
        if (rc == NLP_OK || (rc != cases[i].rc && !(cases[i].rc == NLP_EFORMAT && rc < 0)))
            fail_msg("case %zu: rc %d, expected %d (%s)", i, rc, cases[i].rc, e.text);
        assert_null(v);
        if (cases[i].line && e.line && e.line != cases[i].line)
            fail_msg("case %zu: line %ld, expected %ld (%s)", i, e.line, cases[i].line, e.text);
    }
    /* A dimension that does not match the model. */
    nlp_error e;
    nlp_classify_data *d = read_text("a\tx\nb\ty\n", NLP_CLASSIFY_AUTO, NLP_OK, &e);
    nlp_classify_config cfg;
    nlp_classify_config_default(&cfg);
    cfg.embed = 5;
    nlp_classify *m = model_for(d, &cfg, NULL, 0, 1);
    FILE *f = fmemopen((void *)"1 3\nx 1 2 3\n", 12, "r");
    nlp_vectors *v;
    assert_int_equal(nlp_vectors_read(f, "mem", 0, &v, &e), NLP_OK);
    fclose(f);
    assert_int_equal(nlp_classify_set_vectors(m, v, NULL, NULL), NLP_EINVAL);
    nlp_vectors_free(v);
    nlp_classify_free(m);
    nlp_classify_data_free(d);
}

/* ---- files ---- */

static void test_save_load(void **state)
{
    (void)state;
    char path[] = "/tmp/test_classify_modelXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    nlp_error e;
    nlp_classify_data *d = read_text("a\tx y z\nb\ty y\nc\tz\n", NLP_CLASSIFY_AUTO, NLP_OK, &e);
    FILE *f = fmemopen((void *)"2 4\nx 1 2 3 4\nextra 4 3 2 1\n", 28, "r");
    nlp_vectors *v;
    assert_int_equal(nlp_vectors_read(f, "mem", 0, &v, &e), NLP_OK);
    fclose(f);
    for (int pool = 0; pool < 4; pool++) {
        nlp_classify_config cfg;
        nlp_classify_config_default(&cfg);
        cfg.embed = 4;
        cfg.hidden = 3;
        cfg.pool = (nlp_classify_pool)pool;
        cfg.cell = pool % 2 ? NLP_RNN_GRU : NLP_RNN_LSTM;
        nlp_classify *m = model_for(d, &cfg, v, 0, 3);
        assert_int_equal(nlp_vocab_size(nlp_classify_words(m)), 5); /* <unk> y z x extra */
        assert_int_equal(nlp_classify_trained_rows(m), 4);
        assert_int_equal(nlp_classify_save(m, path, NULL, &e), NLP_OK);
        nlp_classify *m2;
        assert_int_equal(nlp_classify_load(&m2, path, NULL, &e), NLP_OK);
        static const int s0[] = {1, 2, 4, 0}, s1[] = {3};
        const int *seqs[2] = {s0, s1};
        int lens[2] = {4, 1};
        float p1[6], p2[6];
        assert_int_equal(nlp_classify_predict(m, seqs, lens, 2, p1), NLP_OK);
        assert_int_equal(nlp_classify_predict(m2, seqs, lens, 2, p2), NLP_OK);
        assert_memory_equal(p1, p2, sizeof p1);
        assert_true(fabsf(p1[0] + p1[1] + p1[2] - 1.0f) < 1e-5f);
        nlp_classify_free(m2);
        nlp_classify_free(m);
    }

    /* A file whose hyperparameters claim a huge vocabulary while its
    ** tensors are small: refused before anything of that size exists. */
    nlp_model *mf;
    assert_int_equal(nlp_model_load(&mf, path, "sentiment", &e), NLP_OK);
    assert_int_equal(nlp_model_set_meta_long(mf, "vocab_size", 2000000000L), NLP_OK);
    assert_int_equal(nlp_model_save(mf, path, &e), NLP_OK);
    nlp_model_free(mf);
    nlp_classify *bad;
    nlp_alloc_fail_at(0, 0);
    long before = nlp_alloc_count();
    assert_int_equal(nlp_classify_load(&bad, path, NULL, &e), NLP_EFORMAT);
    assert_null(bad);
    assert_non_null(strstr(e.text, "embed.fixed"));
    (void)before;
    /* Hidden size that does not match the tensors. */
    assert_int_equal(nlp_model_load(&mf, path, "sentiment", &e), NLP_OK);
    assert_int_equal(nlp_model_set_meta_long(mf, "vocab_size", 5), NLP_OK);
    assert_int_equal(nlp_model_set_meta_long(mf, "hidden", 4), NLP_OK);
    assert_int_equal(nlp_model_save(mf, path, &e), NLP_OK);
    nlp_model_free(mf);
    assert_int_equal(nlp_classify_load(&bad, path, NULL, &e), NLP_EFORMAT);
    assert_non_null(strstr(e.text, "shape"));
    /* Out of range numbers. */
    assert_int_equal(nlp_model_load(&mf, path, "sentiment", &e), NLP_OK);
    assert_int_equal(nlp_model_set_meta_long(mf, "hidden", -3), NLP_OK);
    assert_int_equal(nlp_model_save(mf, path, &e), NLP_OK);
    nlp_model_free(mf);
    assert_int_equal(nlp_classify_load(&bad, path, NULL, &e), NLP_EFORMAT);
    assert_non_null(strstr(e.text, "hidden"));
    /* Another tool's model. */
    assert_int_equal(nlp_model_new(&mf, "charlm"), NLP_OK);
    assert_int_equal(nlp_model_save(mf, path, &e), NLP_OK);
    nlp_model_free(mf);
    assert_int_equal(nlp_classify_load(&bad, path, NULL, &e), NLP_EKIND);
    nlp_vectors_free(v);
    nlp_classify_data_free(d);
    unlink(path);
}

/* Every allocation of reading, building, training a step and saving can
** fail cleanly (the test allocator fails the n-th call). */
static void test_alloc_failures(void **state)
{
    (void)state;
    const char *text = "a\tx y z\nb\ty y\n__c\tz\n";
    for (long n = 1;; n++) {
        nlp_alloc_fail_at(n, 0);
        FILE *f = fmemopen((void *)text, strlen(text), "r");
        nlp_classify_data *d = NULL;
        nlp_error e;
        int rc = nlp_classify_data_read(&d, f, "mem", NLP_CLASSIFY_AUTO, &e);
        fclose(f);
        nlp_vocab *w = NULL, *l = NULL;
        long trained;
        nlp_classify *m = NULL;
        nlp_classify_set *s = NULL;
        nlp_classify_trainer *t = NULL;
        if (rc == NLP_OK)
            rc = nlp_classify_words_build(&w, &trained, d->words, 1, NULL, -1);
        if (rc == NLP_OK)
            rc = nlp_classify_labels_build(&l, d->labels);
        else
            l = NULL;
        if (rc == NLP_OK) {
            nlp_classify_config cfg;
            nlp_classify_config_default(&cfg);
            cfg.embed = 3;
            cfg.hidden = 2;
            nlp_rng rng;
            nlp_rng_seed(&rng, 1);
            rc = nlp_classify_new(&m, &cfg, w, trained, l, &rng, &e);
            w = l = NULL;
        }
        if (rc == NLP_OK)
            rc = nlp_classify_set_make(&s, m, d, NULL, NULL);
        if (rc == NLP_OK) {
            nlp_classify_train_config tc;
            nlp_classify_train_config_default(&tc);
            rc = nlp_classify_trainer_new(&t, m, &tc, s, s, &e);
        }
        if (rc == NLP_OK) {
            double loss, count, metric;
            const nlp_train_task *task = nlp_classify_trainer_task(t);
            rc = task->step(task->ctx, &loss, &count, &e);
            if (rc >= 0)
                rc = task->evaluate(task->ctx, &metric, &e);
        }
        long calls = nlp_alloc_count();
        nlp_alloc_fail_at(0, 0);
        nlp_classify_trainer_free(t);
        nlp_classify_set_free(s);
        nlp_classify_free(m);
        nlp_vocab_free(w);
        nlp_vocab_free(l);
        nlp_classify_data_free(d);
        if (rc >= 0) {
            assert_true(calls < n); /* nothing failed: every allocation was tried */
            break;
        }
        assert_int_equal(rc, NLP_ENOMEM);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_formats),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_words_and_labels),
        cmocka_unit_test(test_gradcheck_max),
        cmocka_unit_test(test_gradcheck_mean),
        cmocka_unit_test(test_gradcheck_last),
        cmocka_unit_test(test_gradcheck_attention),
        cmocka_unit_test(test_predict_cache),
        cmocka_unit_test(test_stream_and_scores),
        cmocka_unit_test(test_word_order),
        cmocka_unit_test(test_parallel_step),
        cmocka_unit_test(test_bucket_pools),
        cmocka_unit_test(test_formats_same_model),
        cmocka_unit_test(test_vectors_used),
        cmocka_unit_test(test_bad_vectors),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
