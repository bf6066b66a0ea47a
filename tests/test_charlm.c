/*
** Unit tests for charlm: UTF-8 text to code points, the character
** vocabulary and <unk>, the stream layout of training, evaluation against
** step-by-step generation, save/load, wrong files, and checkpoints that
** resume bit-identically.
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

#include "nlp/charlm.h"
#include "nlp/loss.h"
#include "nlp/model.h"

/* ---- helpers ---- */

static int warn_calls;
static long warn_line;

static void count_warning(void *ctx, const nlp_error *e)
{
    (void)ctx;
    warn_calls++;
    warn_line = e->line;
}

static void text_of(nlp_charlm_text *t, const char *s)
{
    nlp_charlm_text_init(t);
    assert_int_equal(nlp_charlm_text_append(t, s, strlen(s), "t", 0, NULL, NULL, NULL), NLP_OK);
}

/* A temporary file name in the test's directory, unique per process. */
static void tmpname(char *buf, size_t n, const char *what)
{
    snprintf(buf, n, "test_charlm.%ld.%s", (long)getpid(), what);
}

/* A small model trained for a few steps on a repeating text. */
static const char *const REPEAT = "abcabd abcabe. ";

static void repeating(nlp_charlm_text *t, int copies)
{
    nlp_charlm_text_init(t);
    for (int i = 0; i < copies; i++)
        assert_int_equal(nlp_charlm_text_append(t, REPEAT, strlen(REPEAT), "r", 0, NULL, NULL,
                                                NULL), NLP_OK);
}

static nlp_charlm *small_model(const nlp_charlm_text *t, nlp_rnn_cell cell, float dropout)
{
    nlp_vocab *v;
    assert_int_equal(nlp_charlm_vocab_build(&v, t->cp, t->n, 1), NLP_OK);
    nlp_charlm_config c;
    nlp_charlm_config_default(&c);
    c.cell = cell;
    c.layers = 2;
    c.hidden = 12;
    c.embed = 5;
    c.dropout = dropout;
    nlp_charlm *m;
    assert_int_equal(nlp_charlm_new(&m, &c, v, 8, 4, 42), NLP_OK);
    return m;
}

static void small_train_config(nlp_charlm_train_config *tc)
{
    nlp_charlm_train_config_default(tc);
    tc->batch = 4;
    tc->seq_len = 8;
    tc->optim.lr = 0.01f;
    tc->seed = 5;
}

/* ---- text ---- */

static void test_text_code_points(void **state)
{
    (void)state;
    nlp_charlm_text t;
    /* a, e-grave, right single quote, guillemet, an emoji, newline */
    text_of(&t, "a\xc3\xa8\xe2\x80\x99\xc2\xab\xf0\x9f\x98\x80\n");
    assert_int_equal(t.n, 6);
    const int32_t want[6] = {'a', 0xE8, 0x2019, 0xAB, 0x1F600, '\n'};
    for (int i = 0; i < 6; i++)
        assert_int_equal(t.cp[i], want[i]);
    assert_int_equal(t.nbad, 0);
    nlp_charlm_text_free(&t);
    nlp_charlm_text_free(&t); /* twice is fine */
}

static void test_text_invalid_utf8(void **state)
{
    (void)state;
    nlp_charlm_text t;
    nlp_charlm_text_init(&t);
    const char *s = "ok\nbad \xff here \xe2\x82 and\nfine\n\xc0\xaf\n";
    warn_calls = 0;
    assert_int_equal(nlp_charlm_text_append(&t, s, strlen(s), "in.txt", 0, count_warning, NULL,
                                            NULL), NLP_OK);
    /* One warning per line with trouble: lines 2 and 4. */
    assert_int_equal(warn_calls, 2);
    assert_int_equal(warn_line, 4);
    /* \xff -> 1, truncated euro sign -> 1, overlong "/" -> 2 (maximal subparts). */
    assert_int_equal(t.nbad, 4);
    size_t fffd = 0;
    for (size_t i = 0; i < t.n; i++)
        fffd += t.cp[i] == 0xFFFD;
    assert_int_equal(fffd, 4);
    nlp_charlm_text_free(&t);

    /* Strict: an error naming file and line, at the first one. */
    nlp_error e;
    nlp_charlm_text_init(&t);
    assert_int_equal(nlp_charlm_text_append(&t, s, strlen(s), "in.txt", 1, NULL, NULL, &e),
                     NLP_EUTF8);
    assert_string_equal(e.file, "in.txt");
    assert_int_equal(e.line, 2);
    assert_string_equal(e.text, "invalid UTF-8");
    nlp_charlm_text_free(&t);
}

static void test_text_read_file(void **state)
{
    (void)state;
    char path[64];
    tmpname(path, sizeof path, "txt");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    /* Larger than one read block, with a multi-byte character across it. */
    for (int i = 0; i < 40000; i++)
        fputs("\xc3\xa8", f);
    fclose(f);
    f = fopen(path, "rb");
    nlp_charlm_text t;
    nlp_charlm_text_init(&t);
    assert_int_equal(nlp_charlm_text_read(&t, f, path, 1, NULL, NULL, NULL), NLP_OK);
    fclose(f);
    assert_int_equal(t.n, 40000);
    assert_int_equal(t.cp[39999], 0xE8);
    nlp_charlm_text_free(&t);
    unlink(path);
}

/* ---- vocabulary ---- */

static void test_vocab_unk_and_order(void **state)
{
    (void)state;
    nlp_charlm_text t;
    text_of(&t, "aaab\xc3\xa8\xc3\xa8z");
    nlp_vocab *v;
    assert_int_equal(nlp_charlm_vocab_build(&v, t.cp, t.n, 2), NLP_OK);
    /* <unk> first, holding the rare ones (b, z), then by count. */
    assert_int_equal(nlp_vocab_size(v), 3);
    assert_string_equal(nlp_vocab_word(v, 0), "<unk>");
    assert_int_equal(nlp_vocab_count(v, 0), 2);
    assert_string_equal(nlp_vocab_word(v, 1), "a");
    assert_string_equal(nlp_vocab_word(v, 2), "\xc3\xa8");
    assert_int_equal(nlp_vocab_count(v, 2), 2);
    nlp_vocab_free(v);

    assert_int_equal(nlp_charlm_vocab_build(&v, t.cp, 0, 1), NLP_EEMPTY);
    assert_int_equal(nlp_charlm_vocab_build(&v, t.cp, t.n, 0), NLP_EINVAL);
    int32_t bad[2] = {'a', 0xD800};
    assert_int_equal(nlp_charlm_vocab_build(&v, bad, 2, 1), NLP_EINVAL);
    assert_null(v);
    nlp_charlm_text_free(&t);
}

static void test_encode_and_ids(void **state)
{
    (void)state;
    nlp_charlm_text t;
    text_of(&t, "ab\xe2\x80\x99" "ab");
    nlp_charlm *m = small_model(&t, NLP_RNN_LSTM, 0);
    assert_int_equal(m->V, 4);
    int q = nlp_charlm_id(m, 0x2019);
    assert_true(q > 0);
    size_t len;
    const char *u = nlp_charlm_utf8(m, q, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(u, "\xe2\x80\x99", 3);
    assert_int_equal(nlp_charlm_id(m, 0x1F600), NLP_CHARLM_UNK_ID);
    assert_int_equal(nlp_charlm_id(m, -5), NLP_CHARLM_UNK_ID);
    u = nlp_charlm_utf8(m, NLP_CHARLM_UNK_ID, &len);
    assert_int_equal(len, 0);

    nlp_charlm_text x;
    text_of(&x, "a\xf0\x9f\x98\x80" "b\xc3\xa8");
    size_t unk;
    nlp_charlm_encode(m, &x, &unk);
    assert_int_equal(unk, 2);
    assert_int_equal(x.cp[0], nlp_charlm_id(m, 'a'));
    assert_int_equal(x.cp[1], NLP_CHARLM_UNK_ID);
    assert_int_equal(x.cp[3], NLP_CHARLM_UNK_ID);
    nlp_charlm_text_free(&x);
    nlp_charlm_free(m);
    nlp_charlm_text_free(&t);
}

static void test_bad_config(void **state)
{
    (void)state;
    nlp_charlm_text t;
    text_of(&t, "abcabc");
    nlp_vocab *v;
    assert_int_equal(nlp_charlm_vocab_build(&v, t.cp, t.n, 1), NLP_OK);
    nlp_charlm_config c;
    nlp_charlm_config_default(&c);
    c.dropout = 1.0f;
    nlp_charlm *m = (nlp_charlm *)&c; /* set to NULL on failure */
    assert_int_equal(nlp_charlm_new(&m, &c, v, 4, 4, 1), NLP_EINVAL); /* v freed */
    assert_null(m);
    nlp_rnn_cell cell;
    assert_int_equal(nlp_rnn_cell_parse("gru", &cell), NLP_OK);
    assert_int_equal(cell, NLP_RNN_GRU);
    assert_int_equal(nlp_rnn_cell_parse("rnn", &cell), NLP_OK);
    assert_int_equal(cell, NLP_RNN_TANH);
    assert_int_equal(nlp_rnn_cell_parse("LSTM", &cell), NLP_EINVAL);
    assert_string_equal(nlp_rnn_cell_name(NLP_RNN_LSTM), "lstm");
    nlp_charlm_free(NULL);
    nlp_charlm_trainer_free(NULL);
    nlp_charlm_text_free(&t);
}

/* ---- evaluation = generation, step by step ---- */

static double stepwise_nats(nlp_charlm *m, const int32_t *ids, size_t n)
{
    nlp_charlm_state s;
    assert_int_equal(nlp_charlm_state_init(&s, m), NLP_OK);
    double nats = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        assert_int_equal(nlp_charlm_step(m, &s, ids[i]), NLP_OK);
        nlp_loss_log_softmax(s.logits, s.logits, (size_t)m->V);
        nats -= s.logits[ids[i + 1]];
    }
    nlp_charlm_state_free(&s);
    return nats;
}

static void test_eval_matches_steps(void **state)
{
    (void)state;
    for (int cell = 0; cell < 3; cell++) {
        nlp_charlm_text t;
        repeating(&t, 40);
        nlp_charlm *m = small_model(&t, (nlp_rnn_cell)cell, 0);
        nlp_charlm_encode(m, &t, NULL);
        /* Below 2 * NLP_CHARLM_EVAL_SEGMENT predictions: one stream, so the
        ** batched chunks must give what one step at a time gives. */
        assert_true(t.n < 2 * NLP_CHARLM_EVAL_SEGMENT);
        nlp_charlm_score sc;
        assert_int_equal(nlp_charlm_eval(m, t.cp, t.n, &sc), NLP_OK);
        assert_int_equal(sc.count, t.n - 1);
        double want = stepwise_nats(m, t.cp, t.n);
        assert_float_equal(sc.nats, want, 1e-3 * want);
        assert_float_equal(nlp_charlm_bpc(&sc), sc.nats / (double)sc.count / log(2.0), 1e-12);
        /* Nothing to predict. */
        assert_int_equal(nlp_charlm_eval(m, t.cp, 1, &sc), NLP_OK);
        assert_int_equal(sc.count, 0);
        assert_true(nlp_charlm_bpc(&sc) == 0);
        /* An id outside the vocabulary. */
        int32_t bad[3] = {1, 99, 1};
        assert_int_equal(nlp_charlm_eval(m, bad, 3, &sc), NLP_ERANGE);
        nlp_charlm_free(m);
        nlp_charlm_text_free(&t);
    }
}

/* Many streams: each segment starts cold, the rest follows the text. */
static void test_eval_streams_and_unk(void **state)
{
    (void)state;
    nlp_charlm_text t;
    repeating(&t, 300); /* 4500 characters: 4 streams */
    nlp_charlm *m = small_model(&t, NLP_RNN_GRU, 0);
    nlp_charlm_encode(m, &t, NULL);
    t.cp[100] = NLP_CHARLM_UNK_ID;
    t.cp[2000] = NLP_CHARLM_UNK_ID;
    nlp_charlm_score sc;
    assert_int_equal(nlp_charlm_eval(m, t.cp, t.n, &sc), NLP_OK);
    assert_int_equal(sc.count, t.n - 1);
    assert_int_equal(sc.unk, 2);
    assert_true(sc.unk_nats > 0 && sc.unk_nats < sc.nats);
    /* Four segments from a zero state, each scored like a text of its own
    ** (the segment's first input is the last character before it). */
    size_t P = t.n - 1, S = P / NLP_CHARLM_EVAL_SEGMENT, at = 0;
    double sum = 0;
    for (size_t s = 0; s < S; s++) {
        size_t len = P / S + (s < P % S);
        sum += stepwise_nats(m, t.cp + at, len + 1);
        at += len;
    }
    assert_float_equal(sc.nats, sum, 1e-3 * sum);
    nlp_charlm_free(m);
    nlp_charlm_text_free(&t);
}

/* ---- training ---- */

static void test_trainer_streams_and_learning(void **state)
{
    (void)state;
    nlp_charlm_text t;
    repeating(&t, 30); /* 450 characters */
    nlp_charlm *m = small_model(&t, NLP_RNN_LSTM, 0);
    nlp_charlm_encode(m, &t, NULL);
    nlp_charlm_train_config tc;
    small_train_config(&tc);
    nlp_charlm_trainer *tr;
    nlp_error e;
    /* Too short for B streams of T+1 characters. */
    assert_int_equal(nlp_charlm_trainer_new(&tr, m, &tc, t.cp, 35, &e), NLP_EEMPTY);
    assert_non_null(strstr(e.text, "need at least 36"));
    assert_int_equal(nlp_charlm_trainer_new(&tr, m, &tc, t.cp, t.n, &e), NLP_OK);
    /* 450 / 4 = 112 per stream; (112 - 1) / 8 = 13 steps per epoch. */
    assert_int_equal(tr->L, 112);
    assert_int_equal(tr->steps_per_epoch, 13);
    double first = 0, loss;
    for (int epoch = 0; epoch < 30; epoch++) {
        for (long s = 0; s < tr->steps_per_epoch; s++) {
            int rc = nlp_charlm_train_step(tr, &loss);
            assert_int_equal(rc, s == tr->steps_per_epoch - 1);
            if (epoch == 0 && s == 0) {
                first = loss;
                /* The first chunk of stream 1 starts at character L. */
                assert_int_equal(tr->x_ids[1], t.cp[tr->L]);
                assert_int_equal(tr->y_ids[1], t.cp[tr->L + 1]);
            }
        }
        assert_int_equal(tr->pos, 0);
        assert_int_equal(tr->epoch, epoch + 1);
        assert_int_equal(tr->epoch_count, 0);
        assert_int_equal(tr->last_epoch_count, 13 * 8 * 4);
    }
    /* The text repeats every 15 characters; "abcab?" needs memory. */
    double last = tr->last_epoch_nats / (double)tr->last_epoch_count;
    assert_true(first > 1.0);
    assert_true(last < 0.3 * first);
    nlp_charlm_trainer_free(tr);
    nlp_charlm_free(m);
    nlp_charlm_text_free(&t);
}

/* ---- files ---- */

static void test_save_load(void **state)
{
    (void)state;
    nlp_charlm_text t;
    repeating(&t, 20);
    nlp_charlm *m = small_model(&t, NLP_RNN_GRU, 0.25f);
    nlp_charlm_encode(m, &t, NULL);
    char path[64];
    tmpname(path, sizeof path, "model");
    const char *meta[] = {"note", "hello", NULL};
    nlp_error e;
    assert_int_equal(nlp_charlm_save(m, path, meta, &e), NLP_OK);
    nlp_charlm *l;
    nlp_model *f;
    assert_int_equal(nlp_charlm_load(&l, path, 1, 1, &f, &e), NLP_OK);
    assert_string_equal(nlp_model_meta(f, "note"), "hello");
    assert_int_equal(l->V, m->V);
    assert_int_equal(l->cfg.cell, NLP_RNN_GRU);
    assert_int_equal(l->cfg.hidden, 12);
    assert_float_equal(l->cfg.dropout, 0.25, 1e-7);
    assert_int_equal(l->params->n, m->params->n);
    assert_memory_equal(l->params->data, m->params->data, m->params->n * sizeof(float));
    for (int id = 0; id < m->V; id++) {
        size_t a, b;
        const char *ua = nlp_charlm_utf8(m, id, &a), *ub = nlp_charlm_utf8(l, id, &b);
        assert_int_equal(a, b);
        assert_memory_equal(ua, ub, a);
    }
    /* Not a checkpoint. */
    nlp_charlm_train_config tc;
    assert_int_equal(nlp_charlm_checkpoint_config(f, &tc, &e), NLP_EFORMAT);
    assert_non_null(strstr(e.text, "not a checkpoint"));
    nlp_model_free(f);
    /* The loaded model scores like the original (its workspace grows). */
    nlp_charlm_score s1, s2;
    assert_int_equal(nlp_charlm_eval(m, t.cp, t.n, &s1), NLP_OK);
    assert_int_equal(nlp_charlm_eval(l, t.cp, t.n, &s2), NLP_OK);
    assert_true(s1.nats == s2.nats);
    nlp_charlm_free(l);

    /* Truncated: every prefix is refused, never a crash. */
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    rewind(fp);
    char *buf = malloc((size_t)size);
    assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    char cut[64];
    tmpname(cut, sizeof cut, "cut");
    for (long k = 0; k < size; k += 1 + k / 8) {
        fp = fopen(cut, "wb");
        fwrite(buf, 1, (size_t)k, fp);
        fclose(fp);
        nlp_charlm *x = (nlp_charlm *)buf;
        int rc = nlp_charlm_load(&x, cut, 1, 1, NULL, &e);
        assert_true(rc == NLP_ETRUNCATED || rc == NLP_EFORMAT);
        assert_null(x);
    }
    unlink(cut);
    free(buf);

    /* Another tool's model. */
    nlp_model *other;
    assert_int_equal(nlp_model_new(&other, "word2vec"), NLP_OK);
    assert_int_equal(nlp_model_save(other, path, &e), NLP_OK);
    nlp_model_free(other);
    assert_int_equal(nlp_charlm_load(&l, path, 1, 1, NULL, &e), NLP_EKIND);
    assert_string_equal(e.file, path);
    /* A charlm file without its parts. */
    assert_int_equal(nlp_model_new(&other, "charlm"), NLP_OK);
    nlp_model_set_meta(other, "cell", "lstm");
    assert_int_equal(nlp_model_save(other, path, &e), NLP_OK);
    nlp_model_free(other);
    assert_int_equal(nlp_charlm_load(&l, path, 1, 1, NULL, &e), NLP_EFORMAT);
    assert_null(l);
    unlink(path);
    nlp_charlm_free(m);
    nlp_charlm_text_free(&t);
}

/* Train 2k steps straight, or k steps + checkpoint + a fresh trainer
** restored from it + k steps: the weights must be the same bits. */
static void test_checkpoint_resume_bit_identical(void **state)
{
    (void)state;
    char path[64];
    tmpname(path, sizeof path, "ckpt");
    for (int cell = 0; cell < 3; cell++) {
        nlp_charlm_text t;
        repeating(&t, 30);
        nlp_charlm_train_config tc;
        small_train_config(&tc);
        tc.optim.kind = cell == 2 ? NLP_OPTIM_RMSPROP : NLP_OPTIM_ADAM;
        nlp_error e;

        nlp_charlm *a = small_model(&t, (nlp_rnn_cell)cell, 0.2f);
        nlp_charlm *b = small_model(&t, (nlp_rnn_cell)cell, 0.2f);
        nlp_charlm_encode(a, &t, NULL);
        nlp_charlm_trainer *ta;
        assert_int_equal(nlp_charlm_trainer_new(&ta, a, &tc, t.cp, t.n, &e), NLP_OK);
        const int K = 17; /* crosses an epoch boundary (13 steps) */
        for (int i = 0; i < 2 * K; i++) {
            /* Halfway the learning rate is lowered (as --lr-decay does): the
            ** checkpoint must carry the lowered rate. */
            if (i == K)
                ta->opt->cfg.lr *= 0.5;
            assert_true(nlp_charlm_train_step(ta, NULL) >= 0);
        }

        nlp_charlm_trainer *tb;
        assert_int_equal(nlp_charlm_trainer_new(&tb, b, &tc, t.cp, t.n, &e), NLP_OK);
        for (int i = 0; i < K; i++)
            assert_true(nlp_charlm_train_step(tb, NULL) >= 0);
        tb->opt->cfg.lr *= 0.5;
        assert_int_equal(nlp_charlm_checkpoint_save(tb, path, NULL, &e), NLP_OK);
        nlp_charlm_trainer_free(tb);
        nlp_charlm_free(b);

        nlp_model *f;
        assert_int_equal(nlp_charlm_load(&b, path, 1, 1, &f, &e), NLP_OK);
        nlp_charlm_train_config rc;
        assert_int_equal(nlp_charlm_checkpoint_config(f, &rc, &e), NLP_OK);
        assert_int_equal(rc.batch, tc.batch);
        assert_int_equal(rc.seq_len, tc.seq_len);
        assert_true(rc.seed == tc.seed);
        assert_int_equal(rc.optim.kind, tc.optim.kind);
        assert_true(rc.optim.lr == tc.optim.lr * 0.5);
        assert_int_equal(nlp_charlm_trainer_new(&tb, b, &rc, t.cp, t.n, &e), NLP_OK);
        assert_int_equal(nlp_charlm_checkpoint_restore(tb, f, &e), NLP_OK);
        assert_int_equal(tb->step, K);
        assert_int_equal(tb->epoch, 1);
        for (int i = 0; i < K; i++)
            assert_true(nlp_charlm_train_step(tb, NULL) >= 0);
        assert_memory_equal(a->params->data, b->params->data, a->params->n * sizeof(float));
        assert_int_equal(ta->pos, tb->pos);
        assert_true(ta->epoch_nats == tb->epoch_nats);

        /* Another text is refused. */
        nlp_charlm_trainer *tc2;
        assert_int_equal(nlp_charlm_trainer_new(&tc2, b, &rc, t.cp, t.n - 1, &e), NLP_OK);
        assert_int_equal(nlp_charlm_checkpoint_restore(tc2, f, &e), NLP_EFORMAT);
        assert_non_null(strstr(e.text, "differs"));
        nlp_charlm_trainer_free(tc2);

        nlp_model_free(f);
        nlp_charlm_trainer_free(ta);
        nlp_charlm_trainer_free(tb);
        nlp_charlm_free(a);
        nlp_charlm_free(b);
        nlp_charlm_text_free(&t);
    }
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_code_points),
        cmocka_unit_test(test_text_invalid_utf8),
        cmocka_unit_test(test_text_read_file),
        cmocka_unit_test(test_vocab_unk_and_order),
        cmocka_unit_test(test_encode_and_ids),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_eval_matches_steps),
        cmocka_unit_test(test_eval_streams_and_unk),
        cmocka_unit_test(test_trainer_streams_and_learning),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_checkpoint_resume_bit_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
