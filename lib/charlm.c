/*
** charlm: the character-level language model.  See nlp/charlm.h.
**
** This file wires the library's layers together (embed -> rnn -> linear ->
** softmax cross-entropy) and adds what is specific to a character model:
** code points in, the <unk> convention, B streams over one text, the
** streaming evaluation, one-step generation and the checkpoint state.
*/
#include "nlp/charlm.h"
#include "nlp/alloc.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nlp/crc32.h"
#include "nlp/loss.h"
#include "nlp/model.h"
#include "nlp/progress.h"
#include "nlp/tensor.h"
#include "nlp/utf8.h"

/* ==== Vocabulary ========================================================= */

int nlp_charlm_vocab_build(nlp_vocab **out, const int32_t *cp, size_t n, long min_count)
{
    *out = NULL;
    if (min_count < 1)
        return NLP_EINVAL;
    if (n == 0)
        return NLP_EEMPTY;
    uint64_t *count = nlp_calloc(NLP_UTF8_MAX_CP + 1, sizeof *count);
    if (!count)
        return NLP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int32_t c = cp[i];
        if (c < 0 || c > NLP_UTF8_MAX_CP || (c >= 0xD800 && c <= 0xDFFF)) {
            nlp_free(count);
            return NLP_EINVAL;
        }
        count[c]++;
    }
    nlp_vocab *v;
    int rc = nlp_vocab_new(&v);
    if (rc != NLP_OK)
        goto fail;
    rc = NLP_ENOMEM;
    if (nlp_vocab_add_count(v, NLP_CHARLM_UNK, strlen(NLP_CHARLM_UNK), 0) != 0)
        goto fail;
    nlp_vocab_pin(v);
    uint64_t rare = 0;
    for (int32_t c = 0; c <= NLP_UTF8_MAX_CP; c++) {
        if (!count[c])
            continue;
        if (count[c] < (uint64_t)min_count) {
            rare += count[c];
            continue;
        }
        char u[4];
        size_t k = nlp_utf8_encode(c, u);
        if (nlp_vocab_add_count(v, u, k, (int64_t)count[c]) < 0)
            goto fail;
    }
    nlp_vocab_set_count(v, NLP_CHARLM_UNK_ID, (int64_t)rare);
    if ((rc = nlp_vocab_sort(v)) != NLP_OK)
        goto fail;
    nlp_free(count);
    *out = v;
    return NLP_OK;
fail:
    nlp_free(count);
    nlp_vocab_free(v);
    return rc;
}

/* ==== Model ============================================================== */

void nlp_charlm_config_default(nlp_charlm_config *c)
{
    c->cell = NLP_RNN_LSTM;
    c->layers = 2;
    /* Chosen on the Divina Commedia's validation part with --average 0.999
    ** (charlm-train's default): 2x384 with dropout 0.35 reached 1.947 bpc
    ** after 14 epochs where 2x256 with 0.25 stalled at 1.957. */
    c->hidden = 384;
    c->embed = 64;
    c->dropout = 0.35f;
}

static int config_ok(const nlp_charlm_config *c)
{
    return (c->cell == NLP_RNN_LSTM || c->cell == NLP_RNN_GRU || c->cell == NLP_RNN_TANH)
        && c->layers >= 1 && c->hidden >= 1 && c->embed >= 1
        && c->dropout >= 0 && c->dropout < 1;
}

/* nlp_charlm_new; init == 0 leaves the weights at zero (a loader fills them,
** and orthogonal initialisation of a large model is not free). */
static int create(nlp_charlm **out, const nlp_charlm_config *cfg, nlp_vocab *vocab,
                  int max_T, int max_B, uint64_t seed, int init)
{
    *out = NULL;
    if (!vocab || !config_ok(cfg) || max_T < 1 || max_B < 1 || nlp_vocab_size(vocab) < 2
        || nlp_vocab_size(vocab) > INT32_MAX
        || strcmp(nlp_vocab_word(vocab, NLP_CHARLM_UNK_ID), NLP_CHARLM_UNK) != 0) {
        nlp_vocab_free(vocab);
        return NLP_EINVAL;
    }
    nlp_charlm *m = nlp_calloc(1, sizeof *m);
    if (!m) {
        nlp_vocab_free(vocab);
        return NLP_ENOMEM;
    }
    m->cfg = *cfg;
    m->vocab = vocab;
    m->V = (int)nlp_vocab_size(vocab);
    m->cap_T = max_T;
    m->cap_B = max_B;
    int rc = nlp_params_new(&m->params);
    if (rc != NLP_OK)
        goto fail;
    if ((rc = nlp_embed_init(&m->emb, m->params, "embed", m->V, cfg->embed)) != NLP_OK)
        goto fail;
    nlp_rnn_config rc_cfg;
    nlp_rnn_config_default(&rc_cfg);
    rc_cfg.cell = cfg->cell;
    rc_cfg.input = cfg->embed;
    rc_cfg.hidden = cfg->hidden;
    rc_cfg.layers = cfg->layers;
    rc_cfg.dropout = cfg->dropout;
    rc_cfg.max_T = max_T;
    rc_cfg.max_B = max_B;
    if ((rc = nlp_rnn_new(&m->rnn, &rc_cfg, m->params, "rnn")) != NLP_OK)
        goto fail;
    if ((rc = nlp_linear_init(&m->out, m->params, "out", cfg->hidden, m->V, 1)) != NLP_OK)
        goto fail;
    if ((rc = nlp_params_alloc(m->params)) != NLP_OK)
        goto fail;
    if (init) {
        /* Initialisation order is part of the seed's meaning: keep it. */
        nlp_rng r;
        nlp_rng_seed(&r, seed);
        nlp_embed_reset(&m->emb, &r);
        nlp_rnn_reset(m->rnn, &r);
        nlp_linear_reset(&m->out, &r);
    }
    *out = m;
    return NLP_OK;
fail:
    nlp_charlm_free(m);
    return rc;
}

int nlp_charlm_new(nlp_charlm **out, const nlp_charlm_config *cfg, nlp_vocab *vocab,
                   int max_T, int max_B, uint64_t seed)
{
    return create(out, cfg, vocab, max_T, max_B, seed, 1);
}

void nlp_charlm_free(nlp_charlm *m)
{
    if (!m)
        return;
    nlp_rnn_free(m->rnn);
    nlp_params_free(m->params);
    nlp_vocab_free(m->vocab);
    nlp_free(m);
}

int nlp_charlm_reserve(nlp_charlm *m, int max_T, int max_B)
{
    if (max_T <= m->cap_T && max_B <= m->cap_B)
        return NLP_OK;
    int T = max_T > m->cap_T ? max_T : m->cap_T;
    int B = max_B > m->cap_B ? max_B : m->cap_B;
    int rc = nlp_rnn_resize(m->rnn, T, B);
    if (rc == NLP_OK) {
        m->cap_T = T;
        m->cap_B = B;
    }
    return rc;
}

size_t nlp_charlm_param_count(const nlp_charlm *m)
{
    return nlp_params_count(m->params);
}

int nlp_charlm_id(const nlp_charlm *m, int32_t c)
{
    char u[4];
    size_t k = nlp_utf8_encode(c, u);
    if (k == 0)
        return NLP_CHARLM_UNK_ID;
    long id = nlp_vocab_find(m->vocab, u, k);
    return id < 0 ? NLP_CHARLM_UNK_ID : (int)id;
}

const char *nlp_charlm_utf8(const nlp_charlm *m, int id, size_t *len)
{
    if (id <= NLP_CHARLM_UNK_ID || id >= m->V) {
        *len = 0;
        return "";
    }
    *len = nlp_vocab_word_len(m->vocab, id);
    return nlp_vocab_word(m->vocab, id);
}

void nlp_charlm_encode(const nlp_charlm *m, nlp_codepoints *t, size_t *nunk)
{
    /* A direct table for the first code points (ASCII and Latin-1 cover
    ** most of the Western text), the vocabulary's hash for the rest. */
    enum { DIRECT = 0x800 };
    int direct[DIRECT];
    for (int32_t c = 0; c < DIRECT; c++)
        direct[c] = nlp_charlm_id(m, c);
    size_t unk = 0;
    for (size_t i = 0; i < t->n; i++) {
        int32_t c = t->cp[i];
        int id = c >= 0 && c < DIRECT ? direct[c] : nlp_charlm_id(m, c);
        unk += id == NLP_CHARLM_UNK_ID;
        t->cp[i] = id;
    }
    if (nunk)
        *nunk = unk;
}

/* ==== Evaluation ========================================================= */

double nlp_charlm_bpc(const nlp_charlm_score *s)
{
    return s->count ? s->nats / (double)s->count / log(2.0) : 0.0;
}

int nlp_charlm_eval(nlp_charlm *m, const int32_t *ids, size_t n, nlp_charlm_score *out)
{
    memset(out, 0, sizeof *out);
    if (n < 2)
        return NLP_OK;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->V)
            return NLP_ERANGE;
    const size_t P = n - 1; /* predictions */
    size_t segs = P / NLP_CHARLM_EVAL_SEGMENT;
    const int S = segs < 1 ? 1 : segs > NLP_CHARLM_EVAL_STREAMS ? NLP_CHARLM_EVAL_STREAMS : (int)segs;
    const int Tc = NLP_CHARLM_EVAL_T;
    const int E = m->cfg.embed, H = m->cfg.hidden, V = m->V, L = m->cfg.layers;
    int rc = nlp_charlm_reserve(m, Tc, S);
    if (rc != NLP_OK)
        return rc;

    size_t *start = nlp_malloc((size_t)S * sizeof *start);
    size_t *len = nlp_malloc((size_t)S * sizeof *len);
    size_t *warm = nlp_malloc((size_t)S * sizeof *warm);
    int *lengths = nlp_malloc((size_t)S * sizeof *lengths);
    int *xid = nlp_malloc((size_t)Tc * S * sizeof *xid);
    int *tid = nlp_malloc((size_t)Tc * S * sizeof *tid);
    float *emb = nlp_tensor_alloc((size_t)Tc * S * E);
    float *y = nlp_tensor_alloc((size_t)Tc * S * H);
    float *logits = nlp_tensor_alloc((size_t)Tc * S * V);
    float *h = nlp_tensor_alloc((size_t)L * S * H);
    float *c = m->cfg.cell == NLP_RNN_LSTM ? nlp_tensor_alloc((size_t)L * S * H) : NULL;
    rc = NLP_ENOMEM;
    if (!start || !len || !warm || !lengths || !xid || !tid || !emb || !y || !logits || !h
        || (m->cfg.cell == NLP_RNN_LSTM && !c))
        goto done;

    /* Segment s predicts ids[start+1 .. start+len] from ids[start .. start+len-1],
    ** after reading the warm characters before start unscored.  Stream s runs
    ** over ids[start-warm .. start+len). */
    size_t longest = 0, at = 0;
    for (int s = 0; s < S; s++) {
        start[s] = at;
        len[s] = P / (size_t)S + ((size_t)s < P % (size_t)S);
        warm[s] = at < NLP_CHARLM_EVAL_WARMUP ? at : NLP_CHARLM_EVAL_WARMUP;
        at += len[s];
        if (warm[s] + len[s] > longest)
            longest = warm[s] + len[s];
    }
    for (size_t k0 = 0; k0 < longest; k0 += (size_t)Tc) {
        int Tk = longest - k0 < (size_t)Tc ? (int)(longest - k0) : Tc;
        for (int s = 0; s < S; s++) {
            size_t total = warm[s] + len[s];
            size_t left = total > k0 ? total - k0 : 0;
            lengths[s] = left < (size_t)Tk ? (int)left : Tk;
        }
        for (int t = 0; t < Tk; t++)
            for (int s = 0; s < S; s++) {
                int r = t * S + s;
                size_t k = k0 + (size_t)t; /* position in stream s */
                if (t < lengths[s]) {
                    size_t i = start[s] - warm[s] + k;
                    xid[r] = ids[i];
                    tid[r] = k < warm[s] ? -1 : ids[i + 1]; /* context only */
                } else {
                    xid[r] = -1; /* padding: a zero row */
                    tid[r] = -1;
                }
            }
        if ((rc = nlp_embed_forward(&m->emb, emb, xid, Tk * S)) != NLP_OK)
            goto done;
        rc = nlp_rnn_forward(m->rnn, y, h, c, emb, h, c, lengths, Tk, S, 0, NULL);
        if (rc != NLP_OK)
            goto done;
        nlp_linear_forward(&m->out, logits, y, Tk * S);
        for (int r = 0; r < Tk * S; r++) {
            if (tid[r] < 0)
                continue;
            float *row = logits + (size_t)r * V;
            double lse = nlp_loss_log_softmax(row, row, (size_t)V);
            (void)lse;
            double nats = -(double)row[tid[r]];
            out->nats += nats;
            out->count++;
            if (tid[r] == NLP_CHARLM_UNK_ID) {
                out->unk++;
                out->unk_nats += nats;
            }
        }
    }
    rc = NLP_OK;
done:
    nlp_free(start);
    nlp_free(len);
    nlp_free(warm);
    nlp_free(lengths);
    nlp_free(xid);
    nlp_free(tid);
    nlp_tensor_free(emb);
    nlp_tensor_free(y);
    nlp_tensor_free(logits);
    nlp_tensor_free(h);
    nlp_tensor_free(c);
    return rc;
}

/* ==== Generation ========================================================= */

int nlp_charlm_state_init(nlp_charlm_state *s, const nlp_charlm *m)
{
    memset(s, 0, sizeof *s);
    size_t state = (size_t)m->cfg.layers * m->cfg.hidden;
    s->h = nlp_tensor_alloc(state);
    s->c = m->cfg.cell == NLP_RNN_LSTM ? nlp_tensor_alloc(state) : NULL;
    s->x = nlp_tensor_alloc((size_t)m->cfg.embed);
    s->y = nlp_tensor_alloc((size_t)m->cfg.hidden);
    s->logits = nlp_tensor_alloc((size_t)m->V);
    if (!s->h || (m->cfg.cell == NLP_RNN_LSTM && !s->c) || !s->x || !s->y || !s->logits) {
        nlp_charlm_state_free(s);
        return NLP_ENOMEM;
    }
    return NLP_OK;
}

void nlp_charlm_state_free(nlp_charlm_state *s)
{
    if (!s)
        return;
    nlp_tensor_free(s->h);
    nlp_tensor_free(s->c);
    nlp_tensor_free(s->x);
    nlp_tensor_free(s->y);
    nlp_tensor_free(s->logits);
    memset(s, 0, sizeof *s);
}

void nlp_charlm_state_reset(nlp_charlm_state *s, const nlp_charlm *m)
{
    size_t state = (size_t)m->cfg.layers * m->cfg.hidden;
    memset(s->h, 0, state * sizeof *s->h);
    if (s->c)
        memset(s->c, 0, state * sizeof *s->c);
}

int nlp_charlm_step(nlp_charlm *m, nlp_charlm_state *s, int id)
{
    if (id < 0 || id >= m->V)
        return NLP_ERANGE;
    int rc = nlp_embed_forward(&m->emb, s->x, &id, 1);
    if (rc != NLP_OK)
        return rc;
    rc = nlp_rnn_forward(m->rnn, s->y, s->h, s->c, s->x, s->h, s->c, NULL, 1, 1, 0, NULL);
    if (rc != NLP_OK)
        return rc;
    nlp_linear_forward(&m->out, s->logits, s->y, 1);
    return NLP_OK;
}

/* ==== Files ============================================================== */

/*
** Adds to f what besides the weights makes it a charlm model: the
** hyperparameters and the vocabulary blob (by pointer: blob must outlive
** the save).
*/
static int add_model_parts(const nlp_charlm *m, nlp_model *f, const unsigned char *blob,
                           size_t nblob)
{
    int rc = nlp_model_set_meta(f, "cell", nlp_rnn_cell_name(m->cfg.cell));
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "layers", m->cfg.layers);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "hidden", m->cfg.hidden);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "embed", m->cfg.embed);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "dropout", m->cfg.dropout);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "vocab_size", m->V);
    if (rc == NLP_OK) rc = nlp_model_add_blob(f, "vocab", blob, nblob);
    return rc;
}

int nlp_charlm_save(const nlp_charlm *m, const char *path, const char *const *meta,
                    nlp_error *e)
{
    unsigned char *blob = NULL;
    size_t nblob;
    nlp_model *f;
    int rc = nlp_model_new(&f, NLP_CHARLM_KIND);
    if (rc == NLP_OK)
        rc = nlp_vocab_to_blob(m->vocab, &blob, &nblob);
    if (rc == NLP_OK)
        rc = add_model_parts(m, f, blob, nblob);
    if (rc == NLP_OK)
        rc = nlp_model_set_meta_pairs(f, meta);
    if (rc == NLP_OK)
        rc = nlp_model_add_params(f, m->params);
    if (rc == NLP_OK)
        rc = nlp_model_save(f, path, e);
    else
        nlp_error_set(e, rc, path, 0, NULL);
    nlp_model_free(f);
    nlp_free(blob);
    return rc;
}

/* Tensor name of f must exist with exactly the dimensions want[0..ndim);
** the message also says which hyperparameters asked for that shape. */
static int expect_tensor(const nlp_model *f, const char *path, const nlp_charlm_config *cfg,
                         int V, const char *name, int ndim, const size_t *want, nlp_error *e)
{
    nlp_error te;
    if (nlp_model_check_tensor(f, name, ndim, want, &te) == NLP_OK)
        return NLP_OK;
    return nlp_error_set(e, NLP_EFORMAT, path, 0,
                         "%s (from the hyperparameters: %s, %d layers, hidden %d, embed %d, "
                         "%d symbols)", te.text, nlp_rnn_cell_name(cfg->cell), cfg->layers,
                         cfg->hidden, cfg->embed, V);
}

/*
** Checks that f holds every weight a model of cfg over V symbols has, with
** its exact shape, BEFORE the model is allocated: the sizes then come from
** tensors present in the file, so a small file claiming a huge model is
** refused instead of allocating gigabytes.  The names and shapes are those
** create() declares (embed, PyTorch's nn.LSTM/GRU/RNN names, linear); a
** saved model of each cell loading again is the test that they agree.
*/
static int check_tensors(const nlp_model *f, const char *path, const nlp_charlm_config *cfg,
                         int V, nlp_error *e)
{
    const size_t G = cfg->cell == NLP_RNN_LSTM ? 4 : cfg->cell == NLP_RNN_GRU ? 3 : 1;
    const size_t H = (size_t)cfg->hidden, E = (size_t)cfg->embed, nV = (size_t)V;
    int rc;
    if ((rc = expect_tensor(f, path, cfg, V, "embed.weight", 2, (size_t[]){nV, E}, e)) != NLP_OK)
        return rc;
    for (int l = 0; l < cfg->layers; l++) {
        static const char *const what[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
        for (int k = 0; k < 4; k++) {
            char name[64];
            snprintf(name, sizeof name, "rnn.%s_l%d", what[k], l);
            size_t shape[2] = {G * H, k == 0 ? (l ? H : E) : H};
            if ((rc = expect_tensor(f, path, cfg, V, name, k < 2 ? 2 : 1, shape, e)) != NLP_OK)
                return rc;
        }
    }
    if ((rc = expect_tensor(f, path, cfg, V, "out.weight", 2, (size_t[]){nV, H}, e)) != NLP_OK)
        return rc;
    return expect_tensor(f, path, cfg, V, "out.bias", 1, (size_t[]){nV}, e);
}

int nlp_charlm_load(nlp_charlm **out, const char *path, int max_T, int max_B,
                    nlp_model **file, nlp_error *e)
{
    *out = NULL;
    if (file)
        *file = NULL;
    nlp_model *f = NULL;
    int rc = nlp_model_load(&f, path, NLP_CHARLM_KIND, e);
    if (rc != NLP_OK)
        return rc;
    nlp_charlm_config cfg;
    nlp_charlm_config_default(&cfg);
    long layers, hidden, embed, vsize;
    double dropout;
    const char *cell = nlp_model_meta(f, "cell");
    if (!cell || nlp_rnn_cell_parse(cell, &cfg.cell) != NLP_OK) {
        rc = nlp_error_set(e, NLP_EFORMAT, path, 0, "missing or unknown cell type");
        goto fail;
    }
    if ((rc = nlp_model_meta_long(f, "layers", &layers, e)) != NLP_OK
        || (rc = nlp_model_meta_long(f, "hidden", &hidden, e)) != NLP_OK
        || (rc = nlp_model_meta_long(f, "embed", &embed, e)) != NLP_OK
        || (rc = nlp_model_meta_long(f, "vocab_size", &vsize, e)) != NLP_OK
        || (rc = nlp_model_meta_double(f, "dropout", &dropout, e)) != NLP_OK)
        goto fail;
    if (layers < 1 || layers > 64 || hidden < 1 || hidden > 1 << 16 || embed < 1
        || embed > 1 << 16 || !(dropout >= 0 && dropout < 1)) {
        rc = nlp_error_set(e, NLP_EFORMAT, path, 0, "hyperparameters out of range");
        goto fail;
    }
    cfg.layers = (int)layers;
    cfg.hidden = (int)hidden;
    cfg.embed = (int)embed;
    cfg.dropout = (float)dropout;
    size_t nblob;
    const void *blob = nlp_model_blob(f, "vocab", &nblob);
    if (!blob) {
        rc = nlp_error_set(e, NLP_EFORMAT, path, 0, "no vocabulary");
        goto fail;
    }
    nlp_vocab *v;
    nlp_error ve;
    if ((rc = nlp_vocab_from_blob(blob, nblob, &v, &ve)) != NLP_OK) {
        nlp_error_set(e, rc, path, 0, "bad vocabulary: %s", ve.text);
        goto fail;
    }
    if (nlp_vocab_size(v) != vsize || vsize < 2 || vsize > INT32_MAX
        || strcmp(nlp_vocab_word(v, NLP_CHARLM_UNK_ID), NLP_CHARLM_UNK) != 0) {
        nlp_vocab_free(v);
        rc = nlp_error_set(e, NLP_EFORMAT, path, 0, "vocabulary does not match the model");
        goto fail;
    }
    /* Every other word must be one character. */
    for (long i = 1; i < vsize; i++) {
        int32_t c;
        size_t k = nlp_vocab_word_len(v, i);
        if (nlp_utf8_decode(nlp_vocab_word(v, i), k, &c) != (int)k) {
            nlp_vocab_free(v);
            rc = nlp_error_set(e, NLP_EFORMAT, path, 0, "vocabulary entry %ld is not one character", i);
            goto fail;
        }
    }
    if ((rc = check_tensors(f, path, &cfg, (int)vsize, e)) != NLP_OK) {
        nlp_vocab_free(v);
        goto fail;
    }
    nlp_charlm *m;
    if ((rc = create(&m, &cfg, v, max_T, max_B, 0, 0)) != NLP_OK) {
        nlp_error_set(e, rc, path, 0, rc == NLP_ENOMEM ? NULL : "bad model configuration");
        goto fail;
    }
    if ((rc = nlp_model_read_params(f, m->params, e)) != NLP_OK) {
        nlp_charlm_free(m);
        goto fail;
    }
    *out = m;
    if (file)
        *file = f;
    else
        nlp_model_free(f);
    return NLP_OK;
fail:
    nlp_model_free(f);
    return rc;
}


/* ==== Training =========================================================== */

/* The activations of one forward and backward over a (T,B) chunk. */
typedef struct chunk_ws {
    int *x_ids, *y_ids;          /* (T,B) inputs and targets */
    float *emb, *demb;           /* (T,B,E) */
    float *y, *dy;               /* (T,B,H) rnn output and its gradient */
    float *yd, *mask;            /* (T,B,H) output after dropout, its mask */
    float *logits;               /* (T,B,V), gradient in place */
} chunk_ws;

/* A worker of the parallel step: streams [b0, b0+nb) of every chunk, over
** the model's parameters with gradients into the harness's buffer. */
typedef struct charlm_worker {
    nlp_params params;           /* m->params, grad = the worker's buffer */
    nlp_embed emb;               /* m->emb over params */
    nlp_linear out;              /* m->out over params */
    nlp_rnn *rnn;                /* owned: m->rnn's views over params */
    int b0, nb;
    nlp_rng rng;                 /* this step's dropout masks */
    float *h, *c;                /* (L,nb,H) the share's carried state */
    chunk_ws ws;                 /* (T,nb) */
} charlm_worker;

struct nlp_charlm_trainer {
    nlp_charlm *m;               /* the model trained (not owned) */
    nlp_charlm_train_config cfg;
    nlp_train_task task;         /* callbacks over this trainer */
    const int32_t *ids;          /* (n) training ids (not owned) */
    size_t n;
    const int32_t *valid;        /* (nvalid) validation ids (not owned) */
    size_t nvalid;
    size_t L;                    /* characters per stream: n / batch */
    long steps_per_epoch;        /* floor((L-1) / seq_len) */
    uint32_t ids_crc, valid_crc; /* the texts, checked on resume */
    unsigned char *blob;         /* the vocabulary, for save_model */
    size_t nblob;
    /* Position: everything below is saved in a checkpoint. */
    long epoch;                  /* epochs completed */
    size_t pos;                  /* start of the next chunk in each stream */
    nlp_rng rng;                 /* dropout masks */
    float *h, *c;                /* (L,B,H) carried state; c for LSTM only */
    /* Workspace, allocated once. */
    int *x_ids, *y_ids;          /* (T,B) inputs and targets */
    float *emb, *demb;           /* (T,B,E) */
    float *y, *dy;               /* (T,B,H) rnn output and its gradient */
    float *yd, *mask;            /* (T,B,H) output after dropout, its mask */
    float *logits;               /* (T,B,V), gradient in place */
    /* Throughput of this process (not saved). */
    long run_steps;              /* steps */
    double run_seconds;          /* steps and the updates after them */
    double mark;                 /* start of the step being timed; 0: none */
    /* The parallel step (nlp/train.h), made by prepare_workers. */
    charlm_worker *wk;           /* (nwk) */
    int nwk;
};

/* Ends the interval timed since the last step started, if any: the step,
** then the harness's update, up to the next callback. */
static void stop_clock(nlp_charlm_trainer *t)
{
    if (t->mark > 0)
        t->run_seconds += nlp_progress_now() - t->mark;
    t->mark = 0;
}

void nlp_charlm_train_config_default(nlp_charlm_train_config *c)
{
    c->batch = 32;
    c->seq_len = 64;
    c->seed = 1;
}

static void ws_free(chunk_ws *w)
{
    nlp_free(w->x_ids);
    nlp_free(w->y_ids);
    nlp_tensor_free(w->emb);
    nlp_tensor_free(w->demb);
    nlp_tensor_free(w->y);
    nlp_tensor_free(w->dy);
    nlp_tensor_free(w->yd);
    nlp_tensor_free(w->mask);
    nlp_tensor_free(w->logits);
    memset(w, 0, sizeof *w);
}

static void workers_free(nlp_charlm_trainer *t)
{
    for (int i = 0; i < t->nwk; i++) {
        charlm_worker *w = &t->wk[i];
        nlp_rnn_free(w->rnn);
        nlp_tensor_free(w->h);
        nlp_tensor_free(w->c);
        ws_free(&w->ws);
    }
    nlp_free(t->wk);
    t->wk = NULL;
    t->nwk = 0;
}

void nlp_charlm_trainer_free(nlp_charlm_trainer *t)
{
    if (!t)
        return;
    workers_free(t);
    nlp_free(t->blob);
    nlp_tensor_free(t->h);
    nlp_tensor_free(t->c);
    nlp_free(t->x_ids);
    nlp_free(t->y_ids);
    nlp_tensor_free(t->emb);
    nlp_tensor_free(t->demb);
    nlp_tensor_free(t->y);
    nlp_tensor_free(t->dy);
    nlp_tensor_free(t->yd);
    nlp_tensor_free(t->mask);
    nlp_tensor_free(t->logits);
    nlp_free(t);
}

/* The ids as little-endian bytes, so the check is the same everywhere. */
static uint32_t ids_crc(const int32_t *ids, size_t n)
{
    return nlp_crc32_le32(0, ids, n);
}

static int task_step(void *ctx, double *loss, double *count, nlp_error *e)
{
    nlp_charlm_trainer *t = ctx;
    stop_clock(t);
    t->mark = nlp_progress_now();
    return nlp_charlm_trainer_step(t, loss, count, e);
}

static int task_evaluate(void *ctx, double *metric, nlp_error *e)
{
    nlp_charlm_trainer *t = ctx;
    stop_clock(t);
    nlp_charlm_score s;
    int rc = nlp_charlm_eval(t->m, t->valid, t->nvalid, &s);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "validation: %s", nlp_error_string(rc));
    *metric = nlp_charlm_bpc(&s);
    return NLP_OK;
}

static double task_epoch_fraction(void *ctx)
{
    const nlp_charlm_trainer *t = ctx;
    return (double)t->pos / ((double)t->steps_per_epoch * (double)t->cfg.seq_len);
}

static int task_save_model(void *ctx, nlp_model *f, nlp_error *e)
{
    nlp_charlm_trainer *t = ctx;
    stop_clock(t);
    int rc = add_model_parts(t->m, f, t->blob, t->nblob);
    return rc == NLP_OK ? NLP_OK : nlp_error_set(e, rc, NULL, 0, NULL);
}


static int task_save_state(void *ctx, nlp_model *f, nlp_error *e)
{
    const nlp_charlm_trainer *t = ctx;
    const nlp_charlm *m = t->m;
    int rc = nlp_model_set_meta_long(f, "charlm.batch", t->cfg.batch);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "charlm.seq_len", t->cfg.seq_len);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "charlm.seed", t->cfg.seed);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "charlm.pos", t->pos);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "charlm.epoch", t->epoch);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "charlm.data_n", t->n);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "charlm.data_crc", t->ids_crc);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "charlm.valid_n", t->nvalid);
    if (rc == NLP_OK) rc = nlp_model_set_meta_u64(f, "charlm.valid_crc", t->valid_crc);
    if (rc == NLP_OK) rc = nlp_train_add_rng(f, "charlm.rng", &t->rng);
    size_t shape[3] = {(size_t)m->cfg.layers, (size_t)t->cfg.batch, (size_t)m->cfg.hidden};
    if (rc == NLP_OK) rc = nlp_model_add_tensor(f, "charlm.h", t->h, 3, shape);
    if (rc == NLP_OK && t->c) rc = nlp_model_add_tensor(f, "charlm.c", t->c, 3, shape);
    return rc == NLP_OK ? NLP_OK : nlp_error_set(e, rc, NULL, 0, NULL);
}

int nlp_charlm_train_config_read(nlp_charlm_train_config *c, const nlp_model *f,
                                 nlp_error *e)
{
    if (!nlp_model_meta(f, "charlm.batch"))
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "not a checkpoint (a model saved as the best one has no "
                             "training state; resume from the .ckpt file)");
    uint64_t batch, seq_len, seed;
    int rc;
    /* The same bounds as the trainer's: T*B rows must fit an int. */
    if ((rc = nlp_model_meta_u64(f, "charlm.batch", INT_MAX, &batch, e)) != NLP_OK
        || (rc = nlp_model_meta_u64(f, "charlm.seq_len", INT_MAX, &seq_len, e)) != NLP_OK
        || (rc = nlp_model_meta_u64(f, "charlm.seed", UINT64_MAX, &seed, e)) != NLP_OK)
        return rc;
    if (batch < 1 || seq_len < 1 || seq_len > (uint64_t)INT_MAX / batch)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint: bad batch or seq_len");
    c->batch = (int)batch;
    c->seq_len = (int)seq_len;
    c->seed = seed;
    return NLP_OK;
}

/* Every value of x[0..n) finite: a carried state read from a file. */
static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

static int task_load_state(void *ctx, const nlp_model *f, nlp_error *e)
{
    nlp_charlm_trainer *t = ctx;
    const nlp_charlm *m = t->m;
    nlp_charlm_train_config c;
    int rc = nlp_charlm_train_config_read(&c, f, e);
    if (rc != NLP_OK)
        return rc;
    if (c.batch != t->cfg.batch || c.seq_len != t->cfg.seq_len || c.seed != t->cfg.seed)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "checkpoint: batch, seq_len or seed differ from the trainer's");
    uint64_t pos, data_n, data_crc, valid_n, valid_crc;
    long epoch;
    if ((rc = nlp_model_meta_u64(f, "charlm.data_n", SIZE_MAX, &data_n, e)) != NLP_OK
        || (rc = nlp_model_meta_u64(f, "charlm.data_crc", UINT32_MAX, &data_crc, e)) != NLP_OK
        || (rc = nlp_model_meta_u64(f, "charlm.valid_n", SIZE_MAX, &valid_n, e)) != NLP_OK
        || (rc = nlp_model_meta_u64(f, "charlm.valid_crc", UINT32_MAX, &valid_crc, e)) != NLP_OK)
        return rc;
    if (data_n != t->n || data_crc != t->ids_crc || valid_n != t->nvalid
        || valid_crc != t->valid_crc)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "the training text differs from the one the checkpoint was made "
                             "with (%" PRIu64 " training and %" PRIu64 " validation characters "
                             "then, %zu and %zu now)", data_n, valid_n, t->n, t->nvalid);
    /* A chunk starts at a multiple of T and needs T+1 characters: pos is
    ** at most L-T-1 (L >= T+1 by construction), compared without adding. */
    const size_t T = (size_t)t->cfg.seq_len;
    if ((rc = nlp_model_meta_u64(f, "charlm.pos", t->L - T - 1, &pos, e)) != NLP_OK)
        return rc;
    if (pos % T != 0)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "checkpoint: position %" PRIu64 " is not a multiple of seq_len %zu",
                             pos, T);
    if ((rc = nlp_model_meta_long(f, "charlm.epoch", &epoch, e)) != NLP_OK)
        return rc;
    if (epoch < 0)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint: negative epoch count");
    nlp_rng rng;
    if ((rc = nlp_train_read_rng(f, "charlm.rng", &rng, e)) != NLP_OK)
        return rc;
    /* Everything checked before anything of t changes. */
    size_t shape[3] = {(size_t)m->cfg.layers, (size_t)t->cfg.batch, (size_t)m->cfg.hidden};
    size_t state = shape[0] * shape[1] * shape[2];
    const char *names[2] = {"charlm.h", t->c ? "charlm.c" : NULL};
    const float *saved[2] = {NULL, NULL};
    for (int k = 0; k < 2 && names[k]; k++) {
        if ((rc = nlp_model_check_tensor(f, names[k], 3, shape, e)) != NLP_OK)
            return rc;
        saved[k] = nlp_model_tensor(f, names[k], NULL, NULL);
        if (!all_finite(saved[k], state))
            return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                                 "checkpoint: carried state '%s' not finite", names[k]);
    }
    memcpy(t->h, saved[0], state * sizeof *t->h);
    if (t->c)
        memcpy(t->c, saved[1], state * sizeof *t->c);
    t->pos = (size_t)pos;
    t->epoch = epoch;
    t->rng = rng;
    return NLP_OK;
}

static int task_prepare_workers(void *ctx, int W, nlp_error *e);
static int task_step_share(void *ctx, int i, int W, float *grad, double *loss, double *count,
                           nlp_error *e);
static int task_step_end(void *ctx, int W, nlp_error *e);
static float *task_share_state(void *ctx, int k, int first, int count, int total, size_t *n);

int nlp_charlm_trainer_new(nlp_charlm_trainer **out, nlp_charlm *m,
                           const nlp_charlm_train_config *cfg, const int32_t *ids, size_t n,
                           const int32_t *valid, size_t nvalid, nlp_error *e)
{
    *out = NULL;
    if (cfg->batch < 1 || cfg->seq_len < 1)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "invalid training configuration");
    /* (T,B) chunks are indexed with int rows, and (T,B,max(E,H,V)) floats
    ** must be addressable: refuse what would overflow either. */
    size_t widest = (size_t)m->V;
    if ((size_t)m->cfg.hidden > widest)
        widest = (size_t)m->cfg.hidden;
    if ((size_t)m->cfg.embed > widest)
        widest = (size_t)m->cfg.embed;
    if ((size_t)cfg->seq_len > (size_t)INT_MAX / (size_t)cfg->batch
        || (size_t)cfg->seq_len * (size_t)cfg->batch > SIZE_MAX / sizeof(float) / widest)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "--seq-len %d times --batch %d is too large",
                             cfg->seq_len, cfg->batch);
    const size_t TB = (size_t)cfg->seq_len * (size_t)cfg->batch;
    const size_t need = TB + (size_t)cfg->batch; /* B streams of T+1 */
    if (n < need)
        return nlp_error_set(e, NLP_EEMPTY, NULL, 0,
                             "%zu characters of training text; --batch %d and --seq-len %d "
                             "need at least %zu", n, cfg->batch, cfg->seq_len, need);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->V)
            return nlp_error_set(e, NLP_ERANGE, NULL, 0, "id %d outside the vocabulary",
                                 (int)ids[i]);
    for (size_t i = 0; i < nvalid; i++)
        if (valid[i] < 0 || valid[i] >= m->V)
            return nlp_error_set(e, NLP_ERANGE, NULL, 0, "validation id %d outside the "
                                 "vocabulary", (int)valid[i]);
    /* Validation's batched chunks too, so evaluating never allocates the
    ** rnn workspace in the middle of a run. */
    int cap_T = cfg->seq_len, cap_B = cfg->batch;
    if (nvalid >= 2) {
        cap_T = cap_T > NLP_CHARLM_EVAL_T ? cap_T : NLP_CHARLM_EVAL_T;
        cap_B = cap_B > NLP_CHARLM_EVAL_STREAMS ? cap_B : NLP_CHARLM_EVAL_STREAMS;
    }
    if (nlp_charlm_reserve(m, cap_T, cap_B) != NLP_OK)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);

    nlp_charlm_trainer *t = nlp_calloc(1, sizeof *t);
    if (!t)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    t->m = m;
    t->cfg = *cfg;
    t->ids = ids;
    t->n = n;
    t->valid = valid;
    t->nvalid = nvalid;
    t->L = n / (size_t)cfg->batch;
    t->steps_per_epoch = (long)((t->L - 1) / (size_t)cfg->seq_len);
    t->ids_crc = ids_crc(ids, n);
    t->valid_crc = ids_crc(valid, nvalid);
    nlp_rng_seed(&t->rng, cfg->seed);

    const size_t E = (size_t)m->cfg.embed, H = (size_t)m->cfg.hidden, V = (size_t)m->V;
    const size_t state = (size_t)m->cfg.layers * (size_t)cfg->batch * H;
    t->h = nlp_tensor_alloc(state);
    t->c = m->cfg.cell == NLP_RNN_LSTM ? nlp_tensor_alloc(state) : NULL;
    t->x_ids = nlp_malloc(TB * sizeof *t->x_ids);
    t->y_ids = nlp_malloc(TB * sizeof *t->y_ids);
    t->emb = nlp_tensor_alloc(TB * E);
    t->demb = nlp_tensor_alloc(TB * E);
    t->y = nlp_tensor_alloc(TB * H);
    t->dy = nlp_tensor_alloc(TB * H);
    if (m->cfg.dropout > 0) {
        t->yd = nlp_tensor_alloc(TB * H);
        t->mask = nlp_tensor_alloc(TB * H);
    }
    t->logits = nlp_tensor_alloc(TB * V);
    int rc = nlp_vocab_to_blob(m->vocab, &t->blob, &t->nblob);
    if (rc != NLP_OK || !t->h || (m->cfg.cell == NLP_RNN_LSTM && !t->c) || !t->x_ids
        || !t->y_ids || !t->emb || !t->demb || !t->y || !t->dy || !t->logits
        || (m->cfg.dropout > 0 && (!t->yd || !t->mask))) {
        nlp_charlm_trainer_free(t);
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    }
    t->task.ctx = t;
    t->task.kind = NLP_CHARLM_KIND;
    t->task.metric = "bpc";
    t->task.higher_is_better = 0;
    t->task.unit = "chars";
    t->task.params = m->params;
    t->task.step = task_step;
    t->task.evaluate = nvalid >= 2 ? task_evaluate : NULL;
    t->task.epoch_fraction = task_epoch_fraction;
    t->task.save_model = task_save_model;
    t->task.save_state = task_save_state;
    t->task.load_state = task_load_state;
    t->task.prepare_workers = task_prepare_workers;
    t->task.step_share = task_step_share;
    t->task.step_end = task_step_end;
    t->task.share_state = task_share_state;
    *out = t;
    return NLP_OK;
}

const nlp_train_task *nlp_charlm_trainer_task(nlp_charlm_trainer *t)
{
    return &t->task;
}

/*
** Forward and backward of B streams over T steps whose inputs and targets
** are in w->x_ids, w->y_ids, from the carried state h, c (updated in
** place), adding into the gradients of the parameters emb, rnn and out
** point to the gradient of the loss summed over the chunk times scale.
** *nats, *n: the chunk's loss in nats and its predictions.
*/
static int chunk_fwd_bwd(const nlp_charlm *m, nlp_embed *emb, nlp_rnn *rnn, nlp_linear *out,
                         chunk_ws *w, float *h, float *c, nlp_rng *rng, int T, int B,
                         float scale, double *nats, size_t *n, nlp_error *e)
{
    const int TB = T * B, V = m->V;
    const size_t H = (size_t)m->cfg.hidden, E = (size_t)m->cfg.embed;
    /* Forward. */
    int rc = nlp_embed_forward(emb, w->emb, w->x_ids, TB);
    if (rc == NLP_OK)
        rc = nlp_rnn_forward(rnn, w->y, h, c, w->emb, h, c, NULL, T, B, 1, rng);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "training step: %s", nlp_error_string(rc));
    const float *top = w->y;
    if (m->cfg.dropout > 0) {
        nlp_tensor_dropout_forward(w->yd, w->mask, w->y, (size_t)TB * H, m->cfg.dropout, rng);
        top = w->yd;
    }
    nlp_linear_forward(out, w->logits, top, TB);
    *nats = 0;
    *n = 0;
    nlp_loss_xent(nats, n, w->logits, w->logits, w->y_ids, NULL, (size_t)TB, (size_t)V, scale);

    /* Backward, adding into the gradients the caller zeroed. */
    memset(w->dy, 0, (size_t)TB * H * sizeof *w->dy);
    nlp_linear_backward(out, w->dy, w->logits, top, TB);
    if (m->cfg.dropout > 0)
        nlp_tensor_dropout_backward(w->dy, w->dy, w->mask, (size_t)TB * H);
    memset(w->demb, 0, (size_t)TB * E * sizeof *w->demb);
    rc = nlp_rnn_backward(rnn, w->demb, NULL, NULL, w->dy, NULL, NULL, w->emb);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "training step: %s", nlp_error_string(rc));
    nlp_embed_backward(emb, w->demb, w->x_ids, TB);
    return NLP_OK;
}

/* Past the chunk just stepped: 1 at the end of an epoch (back to the
** start of every stream, fresh state), else 0. */
static int advance(nlp_charlm_trainer *t)
{
    const nlp_charlm *m = t->m;
    const int T = t->cfg.seq_len, B = t->cfg.batch;
    const size_t H = (size_t)m->cfg.hidden;
    t->run_steps++;
    t->pos += (size_t)T;
    if (t->L - t->pos < (size_t)T + 1) {
        /* End of an epoch: back to the start of every stream, fresh state. */
        t->pos = 0;
        size_t state = (size_t)m->cfg.layers * (size_t)B * H;
        memset(t->h, 0, state * sizeof *t->h);
        if (t->c)
            memset(t->c, 0, state * sizeof *t->c);
        t->epoch++;
        return 1;
    }
    return 0;
}

int nlp_charlm_trainer_step(nlp_charlm_trainer *t, double *loss, double *count, nlp_error *e)
{
    nlp_charlm *m = t->m;
    const int T = t->cfg.seq_len, B = t->cfg.batch;
    const int TB = T * B; /* fits: checked by nlp_charlm_trainer_new */

    /* The chunk, time-major: row t*B+b is stream b at step t. */
    for (int s = 0; s < T; s++)
        for (int b = 0; b < B; b++) {
            const int32_t *p = t->ids + (size_t)b * t->L + t->pos + (size_t)s;
            t->x_ids[s * B + b] = p[0];
            t->y_ids[s * B + b] = p[1];
        }
    chunk_ws w = {t->x_ids, t->y_ids, t->emb, t->demb, t->y, t->dy, t->yd, t->mask, t->logits};
    double nats;
    size_t n;
    /* Mean loss over the chunk, as torch's CrossEntropyLoss: the gradient
    ** left in logits is scaled by 1/TB. */
    int rc = chunk_fwd_bwd(m, &m->emb, m->rnn, &m->out, &w, t->h, t->c, &t->rng, T, B,
                           1.0f / (float)TB, &nats, &n, e);
    if (rc != NLP_OK)
        return rc;
    if (loss)
        *loss = n ? nats / (double)n / log(2.0) : 0;
    if (count)
        *count = (double)n;
    return advance(t);
}

/* ---- the parallel step (nlp/train.h) ---- */

static int task_prepare_workers(void *ctx, int W, nlp_error *e)
{
    nlp_charlm_trainer *t = ctx;
    const nlp_charlm *m = t->m;
    const int B = t->cfg.batch, T = t->cfg.seq_len;
    if (W < 1 || W > B)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "%d training threads for a batch of %d "
                             "streams: every thread needs at least one", W, B);
    workers_free(t);
    t->wk = nlp_calloc((size_t)W, sizeof *t->wk);
    if (!t->wk)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    t->nwk = W;
    const size_t E = (size_t)m->cfg.embed, H = (size_t)m->cfg.hidden, V = (size_t)m->V;
    for (int i = 0; i < W; i++) {
        charlm_worker *w = &t->wk[i];
        /* Contiguous shares, in stream order. */
        nlp_train_share(i, W, B, &w->b0, &w->nb);
        w->params = *m->params;
        w->emb = m->emb;
        w->emb.params = &w->params;
        w->out = m->out;
        w->out.params = &w->params;
        const size_t TB = (size_t)T * (size_t)w->nb;
        const size_t state = (size_t)m->cfg.layers * (size_t)w->nb * H;
        int rc = nlp_rnn_new_shared(&w->rnn, m->rnn, &w->params, T, w->nb);
        w->h = nlp_tensor_alloc(state);
        w->c = m->cfg.cell == NLP_RNN_LSTM ? nlp_tensor_alloc(state) : NULL;
        w->ws.x_ids = nlp_malloc(TB * sizeof *w->ws.x_ids);
        w->ws.y_ids = nlp_malloc(TB * sizeof *w->ws.y_ids);
        w->ws.emb = nlp_tensor_alloc(TB * E);
        w->ws.demb = nlp_tensor_alloc(TB * E);
        w->ws.y = nlp_tensor_alloc(TB * H);
        w->ws.dy = nlp_tensor_alloc(TB * H);
        if (m->cfg.dropout > 0) {
            w->ws.yd = nlp_tensor_alloc(TB * H);
            w->ws.mask = nlp_tensor_alloc(TB * H);
        }
        w->ws.logits = nlp_tensor_alloc(TB * V);
        if (rc != NLP_OK || !w->h || (m->cfg.cell == NLP_RNN_LSTM && !w->c) || !w->ws.x_ids
            || !w->ws.y_ids || !w->ws.emb || !w->ws.demb || !w->ws.y || !w->ws.dy
            || !w->ws.logits || (m->cfg.dropout > 0 && (!w->ws.yd || !w->ws.mask))) {
            workers_free(t);
            return nlp_error_set(e, rc == NLP_OK || rc == NLP_ENOMEM ? NLP_ENOMEM : rc, NULL, 0,
                                 "training threads: %s", nlp_error_string(rc == NLP_OK ? NLP_ENOMEM : rc));
        }
    }
    return NLP_OK;
}

/* Copies streams [b0, b0+nb) of the (L,B,H) state s into the (L,nb,H) d,
** or back when back is set. */
static void state_share(float *s, float *d, int L, int B, int b0, int nb, size_t H, int back)
{
    for (int l = 0; l < L; l++) {
        float *all = s + ((size_t)l * (size_t)B + (size_t)b0) * H;
        float *mine = d + (size_t)l * (size_t)nb * H;
        if (back)
            memcpy(all, mine, (size_t)nb * H * sizeof *all);
        else
            memcpy(mine, all, (size_t)nb * H * sizeof *all);
    }
}

/*
** Worker i's share: streams [b0, b0+nb) of the next chunk, the same
** arithmetic as nlp_charlm_trainer_step on those columns (the gradient
** scaled by 1/(T*B) of the whole chunk), into grad.  Its dropout rng is
** seeded from the (i+1)-th draw of t->rng, which step_end then makes, so
** the masks depend on the run and W only and a checkpoint needs nothing
** more than t->rng.
*/
static int task_step_share(void *ctx, int i, int W, float *grad, double *loss, double *count,
                           nlp_error *e)
{
    nlp_charlm_trainer *t = ctx;
    const nlp_charlm *m = t->m;
    if (W != t->nwk || i < 0 || i >= W)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "training thread %d of %d: prepared for "
                             "%d", i, W, t->nwk);
    if (i == 0) {
        /* The caller's thread: time the step as task_step does. */
        stop_clock(t);
        t->mark = nlp_progress_now();
    }
    charlm_worker *w = &t->wk[i];
    const int T = t->cfg.seq_len, B = t->cfg.batch, nb = w->nb;
    const size_t H = (size_t)m->cfg.hidden;
    w->params = *m->params;
    w->params.grad = grad;
    nlp_train_share_rng(&w->rng, &t->rng, i);

    for (int s = 0; s < T; s++)
        for (int j = 0; j < nb; j++) {
            const int32_t *p = t->ids + (size_t)(w->b0 + j) * t->L + t->pos + (size_t)s;
            w->ws.x_ids[s * nb + j] = t->x_ids[s * B + w->b0 + j] = p[0];
            w->ws.y_ids[s * nb + j] = t->y_ids[s * B + w->b0 + j] = p[1];
        }
    state_share(t->h, w->h, m->cfg.layers, B, w->b0, nb, H, 0);
    if (t->c)
        state_share(t->c, w->c, m->cfg.layers, B, w->b0, nb, H, 0);
    double nats;
    size_t n;
    int rc = chunk_fwd_bwd(m, &w->emb, w->rnn, &w->out, &w->ws, w->h, w->c, &w->rng, T, nb,
                           1.0f / (float)(T * B), &nats, &n, e);
    if (rc != NLP_OK)
        return rc;
    state_share(t->h, w->h, m->cfg.layers, B, w->b0, nb, H, 1);
    if (t->c)
        state_share(t->c, w->c, m->cfg.layers, B, w->b0, nb, H, 1);
    *loss = n ? nats / (double)n / log(2.0) : 0;
    *count = (double)n;
    return NLP_OK;
}

static int task_step_end(void *ctx, int W, nlp_error *e)
{
    nlp_charlm_trainer *t = ctx;
    if (W != t->nwk)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "step_end for %d threads, prepared for %d",
                             W, t->nwk);
    nlp_train_share_rng_end(&t->rng, W);
    return advance(t);
}

/* Several processes: the carried state h (k = 0) and c (k = 1, LSTM),
** zero in the streams of shares outside [first, first+count). */
static float *task_share_state(void *ctx, int k, int first, int count, int total, size_t *n)
{
    nlp_charlm_trainer *t = ctx;
    float *s = k == 0 ? t->h : k == 1 ? t->c : NULL;
    if (!s || total != t->nwk || first < 0 || count < 0 || first + count > total)
        return NULL;
    const int L = t->m->cfg.layers, B = t->cfg.batch;
    const size_t H = (size_t)t->m->cfg.hidden;
    const int b0 = t->wk[first].b0;
    const int b1 = first + count < total ? t->wk[first + count].b0 : B;
    for (int l = 0; l < L; l++) {
        float *layer = s + (size_t)l * (size_t)B * H;
        memset(layer, 0, (size_t)b0 * H * sizeof *layer);
        memset(layer + (size_t)b1 * H, 0, (size_t)(B - b1) * H * sizeof *layer);
    }
    *n = (size_t)L * (size_t)B * H;
    return s;
}

size_t nlp_charlm_trainer_stream_length(const nlp_charlm_trainer *t)
{
    return t->L;
}

long nlp_charlm_trainer_steps_per_epoch(const nlp_charlm_trainer *t)
{
    return t->steps_per_epoch;
}

size_t nlp_charlm_trainer_position(const nlp_charlm_trainer *t)
{
    return t->pos;
}

long nlp_charlm_trainer_epochs(const nlp_charlm_trainer *t)
{
    return t->epoch;
}

void nlp_charlm_trainer_chunk(const nlp_charlm_trainer *t, const int **inputs,
                              const int **targets)
{
    *inputs = t->x_ids;
    *targets = t->y_ids;
}

long nlp_charlm_trainer_run_steps(const nlp_charlm_trainer *t)
{
    return t->run_steps;
}

double nlp_charlm_trainer_run_seconds(const nlp_charlm_trainer *t)
{
    return t->run_seconds + (t->mark > 0 ? nlp_progress_now() - t->mark : 0);
}
