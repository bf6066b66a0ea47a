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
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nlp/crc32.h"
#include "nlp/loss.h"
#include "nlp/model.h"
#include "nlp/tensor.h"
#include "nlp/utf8.h"

/* ==== Text =============================================================== */

void nlp_charlm_text_init(nlp_charlm_text *t)
{
    memset(t, 0, sizeof *t);
}

void nlp_charlm_text_free(nlp_charlm_text *t)
{
    if (!t)
        return;
    nlp_free(t->cp);
    memset(t, 0, sizeof *t);
}

static int text_reserve(nlp_charlm_text *t, size_t more)
{
    if (t->cap - t->n >= more)
        return NLP_OK;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap - t->n < more) {
        if (cap > SIZE_MAX / 2 / sizeof *t->cp)
            return NLP_ENOMEM;
        cap *= 2;
    }
    int32_t *p = nlp_realloc(t->cp, cap * sizeof *p);
    if (!p)
        return NLP_ENOMEM;
    t->cp = p;
    t->cap = cap;
    return NLP_OK;
}

int nlp_charlm_text_append(nlp_charlm_text *t, const char *s, size_t n, const char *name,
                           int strict, nlp_charlm_warn_fn warn, void *ctx, nlp_error *e)
{
    /* Every code point takes at least one byte: n entries are enough. */
    if (text_reserve(t, n) != NLP_OK)
        return nlp_error_set(e, NLP_ENOMEM, name, 0, NULL);
    int32_t *out = t->cp + t->n;
    long line = 1;
    long warned = 0; /* last line a warning was given for */
    size_t i = 0;
    while (i < n) {
        unsigned char b = (unsigned char)s[i];
        if (b < 0x80) {
            *out++ = b;
            line += b == '\n';
            i++;
            continue;
        }
        int32_t cp;
        int k = nlp_utf8_decode(s + i, n - i, &cp);
        if (k < 0) {
            if (strict) {
                t->n = (size_t)(out - t->cp);
                return nlp_error_set(e, NLP_EUTF8, name, line, "invalid UTF-8");
            }
            t->nbad++;
            if (warn && warned != line) {
                nlp_error w;
                nlp_error_set(&w, NLP_EUTF8, name, line, "invalid UTF-8");
                warn(ctx, &w);
            }
            warned = line;
            *out++ = NLP_UTF8_REPLACEMENT;
            i += (size_t)-k;
        } else {
            *out++ = cp;
            i += (size_t)k;
        }
    }
    t->n = (size_t)(out - t->cp);
    return NLP_OK;
}

int nlp_charlm_text_read(nlp_charlm_text *t, FILE *f, const char *name, int strict,
                         nlp_charlm_warn_fn warn, void *ctx, nlp_error *e)
{
    /* Whole file in memory: a sequence split across reads needs no care,
    ** and the code points take four times as much anyway. */
    size_t cap = 1 << 16, len = 0;
    char *buf = nlp_malloc(cap);
    if (!buf)
        return nlp_error_set(e, NLP_ENOMEM, name, 0, NULL);
    for (;;) {
        if (len == cap) {
            char *p = cap <= SIZE_MAX / 2 ? nlp_realloc(buf, cap * 2) : NULL;
            if (!p) {
                nlp_free(buf);
                return nlp_error_set(e, NLP_ENOMEM, name, 0, NULL);
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        nlp_free(buf);
        return nlp_error_set(e, NLP_EIO, name, 0, "read error");
    }
    int rc = nlp_charlm_text_append(t, buf, len, name, strict, warn, ctx, e);
    nlp_free(buf);
    return rc;
}

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
    c->hidden = 256;
    c->embed = 64;
    c->dropout = 0.25f;
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

void nlp_charlm_encode(const nlp_charlm *m, nlp_charlm_text *t, size_t *nunk)
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
    int *lengths = nlp_malloc((size_t)S * sizeof *lengths);
    int *xid = nlp_malloc((size_t)Tc * S * sizeof *xid);
    int *tid = nlp_malloc((size_t)Tc * S * sizeof *tid);
    float *emb = nlp_tensor_alloc((size_t)Tc * S * E);
    float *y = nlp_tensor_alloc((size_t)Tc * S * H);
    float *logits = nlp_tensor_alloc((size_t)Tc * S * V);
    float *h = nlp_tensor_alloc((size_t)L * S * H);
    float *c = m->cfg.cell == NLP_RNN_LSTM ? nlp_tensor_alloc((size_t)L * S * H) : NULL;
    rc = NLP_ENOMEM;
    if (!start || !len || !lengths || !xid || !tid || !emb || !y || !logits || !h
        || (m->cfg.cell == NLP_RNN_LSTM && !c))
        goto done;

    /* Segment s predicts ids[start+1 .. start+len] from ids[start .. start+len-1]. */
    size_t longest = 0, at = 0;
    for (int s = 0; s < S; s++) {
        start[s] = at;
        len[s] = P / (size_t)S + ((size_t)s < P % (size_t)S);
        at += len[s];
        if (len[s] > longest)
            longest = len[s];
    }
    for (size_t k0 = 0; k0 < longest; k0 += (size_t)Tc) {
        int Tk = longest - k0 < (size_t)Tc ? (int)(longest - k0) : Tc;
        for (int s = 0; s < S; s++) {
            size_t left = len[s] > k0 ? len[s] - k0 : 0;
            lengths[s] = left < (size_t)Tk ? (int)left : Tk;
        }
        for (int t = 0; t < Tk; t++)
            for (int s = 0; s < S; s++) {
                int r = t * S + s;
                if (t < lengths[s]) {
                    size_t i = start[s] + k0 + (size_t)t;
                    xid[r] = ids[i];
                    tid[r] = ids[i + 1];
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

/* ==== Training =========================================================== */

void nlp_charlm_train_config_default(nlp_charlm_train_config *c)
{
    c->batch = 32;
    c->seq_len = 64;
    c->clip = 5.0f;
    nlp_optim_config_default(&c->optim, NLP_OPTIM_ADAM);
    c->optim.lr = 2e-3;
    c->seed = 1;
}

void nlp_charlm_trainer_free(nlp_charlm_trainer *t)
{
    if (!t)
        return;
    nlp_optim_free(t->opt);
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

int nlp_charlm_trainer_new(nlp_charlm_trainer **out, nlp_charlm *m,
                           const nlp_charlm_train_config *cfg,
                           const int32_t *ids, size_t n, nlp_error *e)
{
    *out = NULL;
    if (cfg->batch < 1 || cfg->seq_len < 1 || !(cfg->clip >= 0)
        || nlp_optim_config_check(&cfg->optim) != NLP_OK)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "invalid training configuration");
    size_t need = (size_t)cfg->batch * ((size_t)cfg->seq_len + 1);
    if (n < need)
        return nlp_error_set(e, NLP_EEMPTY, NULL, 0,
                             "%zu characters of training text; --batch %d and --seq-len %d "
                             "need at least %zu", n, cfg->batch, cfg->seq_len, need);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->V)
            return nlp_error_set(e, NLP_ERANGE, NULL, 0, "id %d outside the vocabulary",
                                 (int)ids[i]);
    if (nlp_charlm_reserve(m, cfg->seq_len, cfg->batch) != NLP_OK)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);

    nlp_charlm_trainer *t = nlp_calloc(1, sizeof *t);
    if (!t)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    t->m = m;
    t->cfg = *cfg;
    t->ids = ids;
    t->n = n;
    t->L = n / (size_t)cfg->batch;
    t->steps_per_epoch = (long)((t->L - 1) / (size_t)cfg->seq_len);
    nlp_rng_seed(&t->rng, cfg->seed);

    const size_t TB = (size_t)cfg->seq_len * cfg->batch;
    const size_t E = (size_t)m->cfg.embed, H = (size_t)m->cfg.hidden, V = (size_t)m->V;
    const size_t state = (size_t)m->cfg.layers * cfg->batch * H;
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
    int rc = nlp_optim_new(&t->opt, m->params->n, &cfg->optim);
    if (rc == NLP_OK && (!t->h || (m->cfg.cell == NLP_RNN_LSTM && !t->c) || !t->x_ids
                         || !t->y_ids || !t->emb || !t->demb || !t->y || !t->dy || !t->logits
                         || (m->cfg.dropout > 0 && (!t->yd || !t->mask))))
        rc = NLP_ENOMEM;
    if (rc != NLP_OK) {
        nlp_charlm_trainer_free(t);
        return nlp_error_set(e, rc, NULL, 0, NULL);
    }
    *out = t;
    return NLP_OK;
}

int nlp_charlm_train_step(nlp_charlm_trainer *t, double *loss)
{
    nlp_charlm *m = t->m;
    const int T = t->cfg.seq_len, B = t->cfg.batch, V = m->V;
    const int TB = T * B;
    const size_t H = (size_t)m->cfg.hidden, E = (size_t)m->cfg.embed;

    /* The chunk, time-major: row t*B+b is stream b at step t. */
    for (int s = 0; s < T; s++)
        for (int b = 0; b < B; b++) {
            const int32_t *p = t->ids + (size_t)b * t->L + t->pos + (size_t)s;
            t->x_ids[s * B + b] = p[0];
            t->y_ids[s * B + b] = p[1];
        }

    /* Forward. */
    nlp_embed_forward(&m->emb, t->emb, t->x_ids, TB);
    int rc = nlp_rnn_forward(m->rnn, t->y, t->h, t->c, t->emb, t->h, t->c, NULL, T, B, 1,
                             &t->rng);
    if (rc != NLP_OK)
        return rc;
    const float *top = t->y;
    if (m->cfg.dropout > 0) {
        nlp_tensor_dropout_forward(t->yd, t->mask, t->y, (size_t)TB * H, m->cfg.dropout, &t->rng);
        top = t->yd;
    }
    nlp_linear_forward(&m->out, t->logits, top, TB);
    double nats = 0;
    size_t count = 0;
    /* Mean loss over the chunk, as torch's CrossEntropyLoss. */
    nlp_loss_xent(&nats, &count, t->logits, t->logits, t->y_ids, NULL, (size_t)TB,
                  (size_t)V, 1.0f / (float)TB);
    if (!isfinite(nats))
        return NLP_ERANGE;

    /* Backward. */
    nlp_params *p = m->params;
    nlp_params_zero_grad(p);
    memset(t->dy, 0, (size_t)TB * H * sizeof *t->dy);
    nlp_linear_backward(&m->out, t->dy, t->logits, top, TB);
    if (m->cfg.dropout > 0)
        nlp_tensor_dropout_backward(t->dy, t->dy, t->mask, (size_t)TB * H);
    memset(t->demb, 0, (size_t)TB * E * sizeof *t->demb);
    if ((rc = nlp_rnn_backward(m->rnn, t->demb, NULL, NULL, t->dy, NULL, NULL, t->emb)) != NLP_OK)
        return rc;
    nlp_embed_backward(&m->emb, t->demb, t->x_ids, TB);

    /* Update. */
    double norm = nlp_optim_clip(p->grad, p->n, t->cfg.clip);
    if (!isfinite(norm))
        return NLP_ERANGE;
    nlp_optim_step(t->opt, p->data, p->grad);

    t->step++;
    t->epoch_nats += nats;
    t->epoch_count += count;
    if (loss)
        *loss = count ? nats / (double)count : 0;
    t->pos += (size_t)T;
    if (t->pos + (size_t)T + 1 > t->L) {
        /* End of an epoch: back to the start of every stream, fresh state. */
        t->pos = 0;
        size_t state = (size_t)m->cfg.layers * B * H;
        memset(t->h, 0, state * sizeof *t->h);
        if (t->c)
            memset(t->c, 0, state * sizeof *t->c);
        t->epoch++;
        t->last_epoch_nats = t->epoch_nats;
        t->last_epoch_count = t->epoch_count;
        t->epoch_nats = 0;
        t->epoch_count = 0;
        return 1;
    }
    return 0;
}

/* ==== Files ============================================================== */

/*
** Builds the model-file image of m: metadata, vocabulary blob, one tensor
** per parameter view (by pointer into m's buffer).  *blob receives the
** vocabulary bytes, which the caller frees after saving.
*/
static int model_file(const nlp_charlm *m, const char *const *meta, nlp_model **out,
                      unsigned char **blob)
{
    *out = NULL;
    *blob = NULL;
    nlp_model *f;
    int rc = nlp_model_new(&f, NLP_CHARLM_KIND);
    if (rc != NLP_OK)
        return rc;
    size_t nblob;
    rc = nlp_vocab_to_blob(m->vocab, blob, &nblob);
    if (rc == NLP_OK) rc = nlp_model_set_meta(f, "cell", nlp_rnn_cell_name(m->cfg.cell));
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "layers", m->cfg.layers);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "hidden", m->cfg.hidden);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "embed", m->cfg.embed);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "dropout", m->cfg.dropout);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "vocab_size", m->V);
    for (size_t i = 0; meta && meta[i] && rc == NLP_OK; i += 2)
        rc = nlp_model_set_meta(f, meta[i], meta[i + 1] ? meta[i + 1] : "");
    if (rc == NLP_OK)
        rc = nlp_model_add_blob(f, "vocab", *blob, nblob);
    if (rc == NLP_OK)
        rc = nlp_model_add_params(f, m->params);
    if (rc != NLP_OK) {
        nlp_model_free(f);
        nlp_free(*blob);
        *blob = NULL;
        return rc;
    }
    *out = f;
    return NLP_OK;
}

int nlp_charlm_save(const nlp_charlm *m, const char *path, const char *const *meta,
                    nlp_error *e)
{
    nlp_model *f;
    unsigned char *blob;
    int rc = model_file(m, meta, &f, &blob);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, path, 0, NULL);
    rc = nlp_model_save(f, path, e);
    nlp_model_free(f);
    nlp_free(blob);
    return rc;
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
    if (nlp_vocab_size(v) != vsize || vsize < 2
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

/* ---- checkpoints ---- */

static uint32_t ids_crc(const int32_t *ids, size_t n)
{
    /* The ids as little-endian bytes, so the check is the same everywhere. */
    uint32_t crc = 0;
    unsigned char buf[4096];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        buf[k++] = (unsigned char)v;
        buf[k++] = (unsigned char)(v >> 8);
        buf[k++] = (unsigned char)(v >> 16);
        buf[k++] = (unsigned char)(v >> 24);
        if (k == sizeof buf) {
            crc = nlp_crc32(crc, buf, k);
            k = 0;
        }
    }
    return nlp_crc32(crc, buf, k);
}

static int set_u64(nlp_model *f, const char *key, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return nlp_model_set_meta(f, key, buf);
}

static int get_u64(const nlp_model *f, const char *key, uint64_t *v, nlp_error *e)
{
    const char *s = nlp_model_meta(f, key);
    char *end;
    if (s && *s >= '0' && *s <= '9') {
        unsigned long long x = strtoull(s, &end, 10);
        if (*end == '\0') {
            *v = x;
            return NLP_OK;
        }
    }
    return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint: bad or missing '%s'", key);
}

int nlp_charlm_checkpoint_save(const nlp_charlm_trainer *t, const char *path,
                               const char *const *meta, nlp_error *e)
{
    const nlp_charlm *m = t->m;
    nlp_model *f;
    unsigned char *blob;
    int rc = model_file(m, meta, &f, &blob);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, path, 0, NULL);
    /* The optimiser's live settings: the caller may have lowered cfg.lr. */
    const nlp_optim_config *o = &t->opt->cfg;
    char key[32];
    rc = nlp_model_set_meta(f, "train.checkpoint", "1");
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "train.batch", t->cfg.batch);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "train.seq_len", t->cfg.seq_len);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "train.clip", t->cfg.clip);
    if (rc == NLP_OK) rc = set_u64(f, "train.seed", t->cfg.seed);
    if (rc == NLP_OK) rc = nlp_model_set_meta(f, "train.optimizer", nlp_optim_kind_name(o->kind));
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "train.lr", o->lr);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "train.momentum", o->momentum);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "train.nesterov", o->nesterov);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "train.beta1", o->beta1);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "train.beta2", o->beta2);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "train.alpha", o->alpha);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "train.eps", o->eps);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "train.weight_decay", o->weight_decay);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "train.schedule", (long)o->schedule);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "train.gamma", o->gamma);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "train.step_size", o->step_size);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "train.warmup", o->warmup);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "train.epoch", t->epoch);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "train.step", t->step);
    if (rc == NLP_OK) rc = set_u64(f, "train.pos", t->pos);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "train.epoch_nats", t->epoch_nats);
    if (rc == NLP_OK) rc = set_u64(f, "train.epoch_count", t->epoch_count);
    if (rc == NLP_OK) rc = set_u64(f, "train.data_n", t->n);
    if (rc == NLP_OK) rc = set_u64(f, "train.data_crc", ids_crc(t->ids, t->n));
    for (int i = 0; i < 4 && rc == NLP_OK; i++) {
        snprintf(key, sizeof key, "train.rng%d", i);
        rc = set_u64(f, key, t->rng.s[i]);
    }
    size_t shape[3] = {(size_t)m->cfg.layers, (size_t)t->cfg.batch, (size_t)m->cfg.hidden};
    if (rc == NLP_OK) rc = nlp_model_add_tensor(f, "train.h", t->h, 3, shape);
    if (rc == NLP_OK && t->c) rc = nlp_model_add_tensor(f, "train.c", t->c, 3, shape);
    if (rc == NLP_OK) rc = nlp_model_add_optim(f, t->opt);
    if (rc != NLP_OK)
        rc = nlp_error_set(e, rc, path, 0, NULL);
    else
        rc = nlp_model_save(f, path, e);
    nlp_model_free(f);
    nlp_free(blob);
    return rc;
}

int nlp_charlm_checkpoint_config(const nlp_model *f, nlp_charlm_train_config *c,
                                 nlp_error *e)
{
    nlp_charlm_train_config_default(c);
    const char *s = nlp_model_meta(f, "train.checkpoint");
    if (!s || strcmp(s, "1") != 0)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "not a checkpoint (a model saved as the best one has no "
                             "training state; resume from the .ckpt file)");
    long batch, seq_len, nesterov, schedule, step_size, warmup;
    double clip, lr, momentum, beta1, beta2, alpha, eps, wd, gamma;
    uint64_t seed;
    int rc;
    if ((rc = nlp_model_meta_long(f, "train.batch", &batch, e)) != NLP_OK
        || (rc = nlp_model_meta_long(f, "train.seq_len", &seq_len, e)) != NLP_OK
        || (rc = nlp_model_meta_double(f, "train.clip", &clip, e)) != NLP_OK
        || (rc = get_u64(f, "train.seed", &seed, e)) != NLP_OK
        || (rc = nlp_model_meta_double(f, "train.lr", &lr, e)) != NLP_OK
        || (rc = nlp_model_meta_double(f, "train.momentum", &momentum, e)) != NLP_OK
        || (rc = nlp_model_meta_long(f, "train.nesterov", &nesterov, e)) != NLP_OK
        || (rc = nlp_model_meta_double(f, "train.beta1", &beta1, e)) != NLP_OK
        || (rc = nlp_model_meta_double(f, "train.beta2", &beta2, e)) != NLP_OK
        || (rc = nlp_model_meta_double(f, "train.alpha", &alpha, e)) != NLP_OK
        || (rc = nlp_model_meta_double(f, "train.eps", &eps, e)) != NLP_OK
        || (rc = nlp_model_meta_double(f, "train.weight_decay", &wd, e)) != NLP_OK
        || (rc = nlp_model_meta_long(f, "train.schedule", &schedule, e)) != NLP_OK
        || (rc = nlp_model_meta_double(f, "train.gamma", &gamma, e)) != NLP_OK
        || (rc = nlp_model_meta_long(f, "train.step_size", &step_size, e)) != NLP_OK
        || (rc = nlp_model_meta_long(f, "train.warmup", &warmup, e)) != NLP_OK)
        return rc;
    const char *kind = nlp_model_meta(f, "train.optimizer");
    if (!kind || nlp_optim_kind_parse(kind, &c->optim.kind) != NLP_OK)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint: unknown optimizer");
    if (batch < 1 || batch > 1 << 20 || seq_len < 1 || seq_len > 1 << 20)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint: bad batch or seq_len");
    c->batch = (int)batch;
    c->seq_len = (int)seq_len;
    c->clip = (float)clip;
    c->seed = seed;
    c->optim.lr = lr;
    c->optim.momentum = momentum;
    c->optim.nesterov = (int)nesterov;
    c->optim.beta1 = beta1;
    c->optim.beta2 = beta2;
    c->optim.alpha = alpha;
    c->optim.eps = eps;
    c->optim.weight_decay = wd;
    c->optim.schedule = (nlp_lr_schedule)schedule;
    c->optim.gamma = gamma;
    c->optim.step_size = step_size;
    c->optim.warmup = warmup;
    if (nlp_optim_config_check(&c->optim) != NLP_OK)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint: bad optimizer settings");
    return NLP_OK;
}

int nlp_charlm_checkpoint_restore(nlp_charlm_trainer *t, const nlp_model *f, nlp_error *e)
{
    nlp_charlm_train_config c;
    int rc = nlp_charlm_checkpoint_config(f, &c, e);
    if (rc != NLP_OK)
        return rc;
    if (c.batch != t->cfg.batch || c.seq_len != t->cfg.seq_len)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint: batch or seq_len differ");
    long epoch, step;
    double nats;
    uint64_t pos, count, data_n, data_crc, s[4];
    if ((rc = nlp_model_meta_long(f, "train.epoch", &epoch, e)) != NLP_OK
        || (rc = nlp_model_meta_long(f, "train.step", &step, e)) != NLP_OK
        || (rc = nlp_model_meta_double(f, "train.epoch_nats", &nats, e)) != NLP_OK
        || (rc = get_u64(f, "train.pos", &pos, e)) != NLP_OK
        || (rc = get_u64(f, "train.epoch_count", &count, e)) != NLP_OK
        || (rc = get_u64(f, "train.data_n", &data_n, e)) != NLP_OK
        || (rc = get_u64(f, "train.data_crc", &data_crc, e)) != NLP_OK)
        return rc;
    for (int i = 0; i < 4; i++) {
        char key[32];
        snprintf(key, sizeof key, "train.rng%d", i);
        if ((rc = get_u64(f, key, &s[i], e)) != NLP_OK)
            return rc;
    }
    if (data_n != t->n || data_crc != ids_crc(t->ids, t->n))
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                             "the training text differs from the one the checkpoint was "
                             "made with (%" PRIu64 " characters of training text then, %zu now)",
                             data_n, t->n);
    if (pos + (uint64_t)t->cfg.seq_len + 1 > t->L || epoch < 0 || step < 0)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "checkpoint: position out of range");
    const nlp_charlm *m = t->m;
    size_t shape[3] = {(size_t)m->cfg.layers, (size_t)t->cfg.batch, (size_t)m->cfg.hidden};
    if ((rc = nlp_model_read_tensor(f, "train.h", t->h, 3, shape, e)) != NLP_OK)
        return rc;
    if (t->c && (rc = nlp_model_read_tensor(f, "train.c", t->c, 3, shape, e)) != NLP_OK)
        return rc;
    if ((rc = nlp_model_read_optim(f, t->opt, e)) != NLP_OK)
        return rc;
    t->epoch = epoch;
    t->step = step;
    t->pos = (size_t)pos;
    t->epoch_nats = nats;
    t->epoch_count = (size_t)count;
    memcpy(t->rng.s, s, sizeof s);
    return NLP_OK;
}
