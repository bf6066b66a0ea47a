/*
** fuzz_seq2seq: the seq2seq model loader (nlp/seq2seq.h): a model file of
** kind "seq2seq" through nlp_seq2seq_load or nlp_model_load_buffer and
** nlp_seq2seq_from_model, then the loss, the decoder and a save/reload.
**
** Input layout:
**   byte 0   bit 0: before loading, rewrite the declared size and the CRC
**            to match the bytes (as fuzz_model); bit 1: load through a path
**            with nlp_seq2seq_load (else from a buffer); bit 2: save the
**            loaded model and load it again
**   byte 1   the ids of the toy batch: source and target ids are
**            derived from it modulo the vocabulary sizes
**   rest     the model file
**
** Checks: a failure is a documented code with a message naming the file,
** and nothing is returned; a loaded model has a configuration within the
** documented ranges and vocabularies with the four specials; the forced
** decoding loss of a two-sentence batch runs, counts the real target tokens
** and refuses an id outside the vocabulary; a training forward and
** backward (dropout on) runs on the batch and on one row of it; the decoder begins, steps,
** reorders and steps again, its rows following their sentences and its
** attention present exactly when the model attends; a saved and reloaded
** model gives the same log-probabilities bit for bit.
*/
#include "fuzz.h"

#include <math.h>

#include "nlp/seq2seq.h"

#define NAME "fuzz.model"

static void put_le(uint8_t *p, uint64_t x, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

static void check_vocab(const nlp_vocab *v)
{
    static const char *const specials[4] = { "<pad>", "<s>", "</s>", "<unk>" };
    FUZZ_CHECK(v != NULL && nlp_vocab_size(v) >= 5);
    for (int i = 0; i < 4; i++)
        FUZZ_CHECK(strcmp(nlp_vocab_word(v, i), specials[i]) == 0);
}

/* A fresh directory to save to, removed after use (as fuzz_forecast). */
static const char *save_dir(char *dir, size_t size)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, size, "%s/nlp-fuzz-seq2seq.XXXXXX", t && t[0] ? t : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    return dir;
}

#define B 2
#define S 3
#define T 3

/* The toy batch: (S,B) and (T,B) ids from seed, lengths {3,1} and {3,2}. */
typedef struct toy {
    int src[S * B], src_len[B], tgt_in[T * B], tgt_out[T * B], tgt_len[B];
    nlp_seq2seq_batch b;
} toy;

static void make_toy(toy *y, uint8_t seed, long vs, long vt)
{
    for (int i = 0; i < S * B; i++)
        y->src[i] = (int)(3 + (seed + 5 * i) % (vs - 3));
    for (int i = 0; i < T * B; i++) {
        y->tgt_in[i] = i < B ? NLP_SEQ2SEQ_BOS : (int)(3 + (seed + 7 * i) % (vt - 3));
        y->tgt_out[i] = (int)(3 + (seed + 11 * i) % (vt - 3));
    }
    y->src_len[0] = 3;
    y->src_len[1] = 1;
    y->tgt_len[0] = 3;
    y->tgt_len[1] = 2;
    y->b = (nlp_seq2seq_batch){ B, S, T, y->src, y->src_len, y->tgt_in, y->tgt_out, y->tgt_len };
}

/* Runs the loss and the decoder; the first step's log-probabilities (B,Vt)
** and the loss into the caller's buffers. */
static void run(nlp_seq2seq *m, uint8_t seed, float *logp0, double *loss_out)
{
    const nlp_seq2seq_config *c = nlp_seq2seq_get_config(m);
    long vs = nlp_vocab_size(nlp_seq2seq_src_vocab(m));
    long vt = nlp_vocab_size(nlp_seq2seq_tgt_vocab(m));
    toy y;
    make_toy(&y, seed, vs, vt);
    nlp_error e;

    nlp_seq2seq_work *w = NULL;
    int rc = nlp_seq2seq_work_new(&w, m, B, S, T);
    FUZZ_CHECK(rc == NLP_OK);
    double loss = 0, logp[B];
    size_t count = 0;
    FUZZ_CHECK(nlp_seq2seq_loss(w, &y.b, 0, B, NULL, 1, 0, NULL, &loss, &count, logp, &e)
               == NLP_OK);
    FUZZ_CHECK(count == 5);
    *loss_out = loss;
    /* A training step's forward and backward, with dropout. */
    nlp_params *P = nlp_seq2seq_params(m);
    float *grad = calloc(P->n ? P->n : 1, sizeof *grad);
    FUZZ_CHECK(grad != NULL);
    nlp_rng rng;
    nlp_rng_seed(&rng, seed);
    double tloss;
    size_t tcount;
    FUZZ_CHECK(nlp_seq2seq_loss(w, &y.b, 0, B, grad, 0.2f, 1, &rng, &tloss, &tcount, NULL, &e)
               == NLP_OK);
    FUZZ_CHECK(tcount == 5);
    /* One row alone: a worker's share. */
    FUZZ_CHECK(nlp_seq2seq_loss(w, &y.b, 1, 1, grad, 0.2f, 0, NULL, NULL, &tcount, NULL, &e)
               == NLP_OK);
    FUZZ_CHECK(tcount == 2);
    free(grad);
    /* An id outside the vocabulary at a real position. */
    y.tgt_out[0] = (int)vt;
    rc = nlp_seq2seq_loss(w, &y.b, 0, B, NULL, 1, 0, NULL, NULL, NULL, NULL, &e);
    FUZZ_CHECK(rc == NLP_ERANGE);
    fuzz_check_error(rc, &e);
    nlp_seq2seq_work_free(w);

    nlp_seq2seq_decoder *d = NULL;
    FUZZ_CHECK(nlp_seq2seq_decoder_new(&d, m, B, S, 2 * B) == NLP_OK);
    FUZZ_CHECK(nlp_seq2seq_decoder_begin(d, y.src, y.src_len, S, B, 2 * B, &e) == NLP_OK);
    float *lp = malloc((size_t)(2 * B) * (size_t)vt * sizeof *lp);
    FUZZ_CHECK(lp != NULL);
    int prev[2 * B] = { NLP_SEQ2SEQ_BOS, NLP_SEQ2SEQ_BOS, 4, 4 };
    const float *attn = (const float *)1;
    FUZZ_CHECK(nlp_seq2seq_decoder_step(d, prev, B, lp, &attn, &e) == NLP_OK);
    FUZZ_CHECK((attn == NULL) == (c->attention == NLP_SEQ2SEQ_ATTN_NONE));
    if (attn)
        for (int s = 1; s < S; s++)
            FUZZ_CHECK(attn[1 * S + s] == 0); /* sentence 1 has one position */
    memcpy(logp0, lp, (size_t)B * (size_t)vt * sizeof *lp);
    int parent[2 * B] = { 1, 0, 1, 0 };
    FUZZ_CHECK(nlp_seq2seq_decoder_reorder(d, parent, 2 * B, &e) == NLP_OK);
    for (int r = 0; r < 2 * B; r++)
        FUZZ_CHECK(nlp_seq2seq_decoder_row_sentence(d, r) == parent[r]);
    FUZZ_CHECK(nlp_seq2seq_decoder_row_sentence(d, 2 * B) == -1);
    FUZZ_CHECK(nlp_seq2seq_decoder_step(d, prev, 2 * B, lp, NULL, &e) == NLP_OK);
    /* An id outside the source vocabulary. */
    y.src[0] = (int)vs;
    rc = nlp_seq2seq_decoder_begin(d, y.src, y.src_len, S, B, 2 * B, &e);
    FUZZ_CHECK(rc == NLP_ERANGE);
    fuzz_check_error(rc, &e);
    free(lp);
    nlp_seq2seq_decoder_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = { data, size };
    uint8_t flags = fuzz_byte(&in), seed = fuzz_byte(&in);
    uint8_t *buf = (uint8_t *)fuzz_dup(in.p, in.n);
    size_t n = in.n;
    if ((flags & 1) && n >= 28) {
        put_le(buf + 16, n, 8);
        put_le(buf + n - 4, nlp_crc32(0, buf, n - 4), 4);
    }
    nlp_seq2seq *m = (nlp_seq2seq *)1;
    nlp_error e;
    nlp_error_clear(&e);
    int rc;
    const char *name;
    if (flags & 2) {
        name = fuzz_path(buf, n);
        nlp_model *file = (nlp_model *)1;
        rc = nlp_seq2seq_load(&m, name, &file, &e);
        FUZZ_CHECK((rc == NLP_OK) == (file != NULL));
        nlp_model_free(file);
    } else {
        name = NAME;
        nlp_model *f = NULL;
        rc = nlp_model_load_buffer(&f, buf, n, NAME, NULL, &e);
        if (rc == NLP_OK) {
            rc = nlp_seq2seq_from_model(&m, f, NAME, &e);
            FUZZ_CHECK(rc != NLP_EKIND || strcmp(nlp_model_kind(f), NLP_SEQ2SEQ_KIND) != 0);
            nlp_model_free(f);
        } else {
            m = NULL;
        }
    }
    if (rc != NLP_OK) {
        FUZZ_CHECK(m == NULL);
        fuzz_check_error(rc, &e);
        FUZZ_CHECK(strcmp(e.file, name) == 0);
        free(buf);
        return 0;
    }
    FUZZ_CHECK(m != NULL);
    const nlp_seq2seq_config *c = nlp_seq2seq_get_config(m);
    FUZZ_CHECK(c->cell == NLP_RNN_GRU || c->cell == NLP_RNN_LSTM);
    FUZZ_CHECK(c->embed >= 1 && c->embed <= NLP_SEQ2SEQ_MAX_WIDTH);
    FUZZ_CHECK(c->hidden >= 1 && c->hidden <= NLP_SEQ2SEQ_MAX_WIDTH);
    FUZZ_CHECK(c->attn_hidden >= 0 && c->attn_hidden <= NLP_SEQ2SEQ_MAX_WIDTH);
    FUZZ_CHECK(c->enc_layers >= 1 && c->enc_layers <= NLP_SEQ2SEQ_MAX_LAYERS);
    FUZZ_CHECK(c->dec_layers >= 1 && c->dec_layers <= NLP_SEQ2SEQ_MAX_LAYERS);
    FUZZ_CHECK(nlp_seq2seq_attention_name(c->attention) != NULL);
    FUZZ_CHECK(c->dropout >= 0 && c->dropout < 1);
    FUZZ_CHECK(c->label_smoothing >= 0 && c->label_smoothing < 1);
    FUZZ_CHECK(c->tie_embeddings == 0 || c->tie_embeddings == 1);
    check_vocab(nlp_seq2seq_src_vocab(m));
    check_vocab(nlp_seq2seq_tgt_vocab(m));
    FUZZ_CHECK(nlp_seq2seq_params(m) != NULL);

    long vt = nlp_vocab_size(nlp_seq2seq_tgt_vocab(m));
    float *lp = malloc((size_t)B * (size_t)vt * sizeof *lp);
    FUZZ_CHECK(lp != NULL);
    double loss;
    run(m, seed, lp, &loss);

    if (flags & 4) {
        char dir[256], path[300];
        snprintf(path, sizeof path, "%s/m", save_dir(dir, sizeof dir));
        FUZZ_CHECK(nlp_seq2seq_save(m, path, NULL, &e) == NLP_OK);
        nlp_seq2seq *r = NULL;
        FUZZ_CHECK(nlp_seq2seq_load(&r, path, NULL, &e) == NLP_OK);
        unlink(path);
        FUZZ_CHECK(rmdir(dir) == 0);
        FUZZ_CHECK(memcmp(nlp_seq2seq_get_config(r), c, sizeof *c) == 0);
        float *lp2 = malloc((size_t)B * (size_t)vt * sizeof *lp2);
        FUZZ_CHECK(lp2 != NULL);
        double loss2;
        run(r, seed, lp2, &loss2);
        FUZZ_CHECK(memcmp(lp, lp2, (size_t)B * (size_t)vt * sizeof *lp) == 0);
        FUZZ_CHECK(memcmp(&loss, &loss2, sizeof loss) == 0);
        free(lp2);
        nlp_seq2seq_free(r);
    }
    free(lp);
    nlp_seq2seq_free(m);
    free(buf);
    return 0;
}
