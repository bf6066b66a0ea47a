/*
** seq2seq: the attention encoder-decoder.  See nlp/seq2seq.h for the
** architecture.
**
** Every computation runs through a "net": the layers (embeddings, encoder,
** bridge, attention, decoder, output) declared over one nlp_params.  The
** model declares its net into the real, allocated parameters; each
** workspace and decoder declares the same layout, in the same order, into
** a shadow nlp_params of its own that is never allocated: its data points
** at the model's values and its grad at whatever buffer the caller passes,
** so the layers (which keep view indices, not pointers) read the shared
** weights and add into a private gradient, and the recurrent layers and
** the attention get scratch space of the shadow's own capacity.
*/
#include "nlp/seq2seq.h"
#include "nlp/alloc.h"
#include "nlp/attn.h"
#include "nlp/beam.h"
#include "nlp/embed.h"
#include "nlp/linear.h"
#include "nlp/loss.h"
#include "nlp/tensor.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Output rows scored per GEMM: bounds the logits buffer (rows x Vt). */
#define OUT_CHUNK 1024

static const char *const SPECIALS[NLP_SEQ2SEQ_NSPECIAL] = {"<pad>", "<s>", "</s>", "<unk>"};

/* ==== Names and configuration ============================================ */

static const char *const ATTN_NAMES[] = {"none", "bahdanau", "luong-dot", "luong-general"};

int nlp_seq2seq_attention_parse(const char *name, nlp_seq2seq_attention *a)
{
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, ATTN_NAMES[i]) == 0) {
            *a = (nlp_seq2seq_attention)i;
            return NLP_OK;
        }
    return NLP_EINVAL;
}

const char *nlp_seq2seq_attention_name(nlp_seq2seq_attention a)
{
    return (int)a >= 0 && (int)a < 4 ? ATTN_NAMES[a] : NULL;
}

void nlp_seq2seq_config_default(nlp_seq2seq_config *c)
{
    c->cell = NLP_RNN_GRU;
    c->embed = 128;
    c->hidden = 256;
    c->enc_layers = 1;
    c->dec_layers = 1;
    c->attention = NLP_SEQ2SEQ_ATTN_BAHDANAU;
    c->attn_hidden = 0;
    c->dropout = 0.2f;
    c->tie_embeddings = 0;
    c->label_smoothing = 0;
}

static int config_check(const nlp_seq2seq_config *c, nlp_error *e)
{
    const char *bad = NULL;
    if (c->cell != NLP_RNN_GRU && c->cell != NLP_RNN_LSTM)
        bad = "cell (gru or lstm)";
    else if (c->embed < 1 || c->embed > NLP_SEQ2SEQ_MAX_WIDTH)
        bad = "embed";
    else if (c->hidden < 1 || c->hidden > NLP_SEQ2SEQ_MAX_WIDTH)
        bad = "hidden";
    else if (c->enc_layers < 1 || c->enc_layers > NLP_SEQ2SEQ_MAX_LAYERS)
        bad = "enc_layers";
    else if (c->dec_layers < 1 || c->dec_layers > NLP_SEQ2SEQ_MAX_LAYERS)
        bad = "dec_layers";
    else if (!nlp_seq2seq_attention_name(c->attention))
        bad = "attention";
    else if (c->attn_hidden < 0 || c->attn_hidden > NLP_SEQ2SEQ_MAX_WIDTH)
        bad = "attn_hidden";
    else if (!(c->dropout >= 0 && c->dropout < 1))
        bad = "dropout (0 <= p < 1)";
    else if (c->tie_embeddings != 0 && c->tie_embeddings != 1)
        bad = "tie_embeddings (0 or 1)";
    else if (!(c->label_smoothing >= 0 && c->label_smoothing < 1))
        bad = "label_smoothing (0 <= ls < 1)";
    if (bad)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "seq2seq: bad configuration: %s", bad);
    return NLP_OK;
}

int nlp_seq2seq_vocab_new(nlp_vocab **out)
{
    int rc = nlp_vocab_new(out);
    if (rc != NLP_OK)
        return rc;
    for (int i = 0; i < NLP_SEQ2SEQ_NSPECIAL; i++)
        if (nlp_vocab_add_count(*out, SPECIALS[i], strlen(SPECIALS[i]), 0) != i) {
            nlp_vocab_free(*out);
            *out = NULL;
            return NLP_ENOMEM;
        }
    nlp_vocab_pin(*out);
    return NLP_OK;
}

static int vocab_ok(const nlp_vocab *v)
{
    if (!v || nlp_vocab_size(v) <= NLP_SEQ2SEQ_NSPECIAL || nlp_vocab_size(v) > INT_MAX / 2)
        return 0;
    for (int i = 0; i < NLP_SEQ2SEQ_NSPECIAL; i++)
        if (nlp_vocab_word_len(v, i) != strlen(SPECIALS[i]) ||
            memcmp(nlp_vocab_word(v, i), SPECIALS[i], strlen(SPECIALS[i])) != 0)
            return 0;
    return 1;
}

/* ==== The layers over one parameter set ================================== */

/* Sizes every net of a model shares. */
typedef struct dims {
    int E, H, Le, Ld, A;   /* embed, hidden, layers, attention hidden */
    int C;                 /* context features: 0 (none), H (dot), 2H */
    int I;                 /* decoder input: E (+ C for Bahdanau) */
    int F;                 /* output features H + C + E */
    int kd;                /* attention key width */
    int Vs, Vt;
    int lstm, bahdanau, luong, tie;
} dims;

typedef struct net {
    nlp_params *p;
    nlp_embed semb, temb;
    nlp_rnn *enc, *dec;
    nlp_attn *attn;        /* NULL for NONE */
    nlp_linear proj;       /* luong-dot: encoder outputs 2H -> H, no bias */
    nlp_linear bridge;     /* 2H -> Ld*H */
    nlp_linear bridge_c;   /* LSTM: 2H -> Ld*H */
    nlp_linear out;        /* untied: F -> Vt; tied: F -> E ("out.proj") */
    int out_bias;          /* tied: view "out.bias" (Vt); -1 otherwise */
} net;

static void dims_make(dims *d, const nlp_seq2seq_config *c, int Vs, int Vt)
{
    d->E = c->embed;
    d->H = c->hidden;
    d->Le = c->enc_layers;
    d->Ld = c->dec_layers;
    d->A = c->attn_hidden > 0 ? c->attn_hidden : c->hidden;
    d->lstm = c->cell == NLP_RNN_LSTM;
    d->bahdanau = c->attention == NLP_SEQ2SEQ_ATTN_BAHDANAU;
    d->luong = c->attention == NLP_SEQ2SEQ_ATTN_LUONG_DOT ||
               c->attention == NLP_SEQ2SEQ_ATTN_LUONG_GENERAL;
    d->C = c->attention == NLP_SEQ2SEQ_ATTN_NONE ? 0
         : c->attention == NLP_SEQ2SEQ_ATTN_LUONG_DOT ? d->H : 2 * d->H;
    d->I = d->E + (d->bahdanau ? d->C : 0);
    d->F = d->H + d->C + d->E;
    d->kd = c->attention == NLP_SEQ2SEQ_ATTN_BAHDANAU ? d->A
          : c->attention == NLP_SEQ2SEQ_ATTN_LUONG_GENERAL ? d->H : 0;
    d->Vs = Vs;
    d->Vt = Vt;
    d->tie = c->tie_embeddings;
}

static void net_free(net *n)
{
    nlp_rnn_free(n->enc);
    nlp_rnn_free(n->dec);
    nlp_attn_free(n->attn);
    n->enc = n->dec = NULL;
    n->attn = NULL;
}

/*
** Declares the model's layers in p (layout phase), with the recurrent and
** attention scratch sized for max_S source / max_T target steps of max_B
** rows.  The same calls in the same order give the same views and offsets.
*/
static int net_build(net *n, const nlp_seq2seq_config *c, const dims *d, nlp_params *p,
                     int max_S, int max_Be, int max_T, int max_Bd)
{
    const int max_Ba = max_Be > max_Bd ? max_Be : max_Bd;
    memset(n, 0, sizeof *n);
    n->p = p;
    n->out_bias = -1;
    int rc;
    if ((rc = nlp_embed_init(&n->semb, p, "src_embed", d->Vs, d->E)) != NLP_OK ||
        (rc = nlp_embed_init(&n->temb, p, "tgt_embed", d->Vt, d->E)) != NLP_OK)
        return rc;
    nlp_rnn_config rc_enc;
    nlp_rnn_config_default(&rc_enc);
    rc_enc.cell = c->cell;
    rc_enc.input = d->E;
    rc_enc.hidden = d->H;
    rc_enc.layers = d->Le;
    rc_enc.bidirectional = 1;
    rc_enc.dropout = c->dropout;
    rc_enc.max_T = max_S;
    rc_enc.max_B = max_Be;
    if ((rc = nlp_rnn_new(&n->enc, &rc_enc, p, "encoder")) != NLP_OK)
        return rc;
    if ((rc = nlp_linear_init(&n->bridge, p, "bridge", 2 * d->H, d->Ld * d->H, 1)) != NLP_OK)
        return rc;
    if (d->lstm &&
        (rc = nlp_linear_init(&n->bridge_c, p, "bridge_c", 2 * d->H, d->Ld * d->H, 1)) != NLP_OK)
        return rc;
    switch (c->attention) {
    case NLP_SEQ2SEQ_ATTN_LUONG_DOT:
        if ((rc = nlp_linear_init(&n->proj, p, "attn.proj", 2 * d->H, d->H, 0)) != NLP_OK)
            return rc;
        rc = nlp_attn_new(&n->attn, NLP_ATTN_DOT, d->H, d->H, 0, max_S, max_Ba, p, "attn");
        break;
    case NLP_SEQ2SEQ_ATTN_LUONG_GENERAL:
        rc = nlp_attn_new(&n->attn, NLP_ATTN_GENERAL, d->H, 2 * d->H, 0, max_S, max_Ba, p, "attn");
        break;
    case NLP_SEQ2SEQ_ATTN_BAHDANAU:
        rc = nlp_attn_new(&n->attn, NLP_ATTN_ADDITIVE, d->H, 2 * d->H, d->A, max_S, max_Ba, p,
                          "attn");
        break;
    default: break;
    }
    if (rc != NLP_OK)
        return rc;
    nlp_rnn_config rc_dec = rc_enc;
    rc_dec.input = d->I;
    rc_dec.layers = d->Ld;
    rc_dec.bidirectional = 0;
    rc_dec.max_T = max_T;
    rc_dec.max_B = max_Bd;
    if ((rc = nlp_rnn_new(&n->dec, &rc_dec, p, "decoder")) != NLP_OK)
        return rc;
    if (d->tie) {
        if ((rc = nlp_linear_init(&n->out, p, "out.proj", d->F, d->E, 1)) != NLP_OK)
            return rc;
        rc = nlp_params_add(p, "out.bias", 1, (int[]){d->Vt});
        if (rc < 0)
            return rc;
        n->out_bias = rc;
        return NLP_OK;
    }
    return nlp_linear_init(&n->out, p, "out", d->F, d->Vt, 1);
}

/* ==== The model ========================================================== */

struct nlp_seq2seq {
    nlp_seq2seq_config cfg;
    dims d;
    nlp_vocab *src, *tgt;
    unsigned char *sblob, *tblob; /* the vocabularies serialised, for saving */
    size_t nsblob, ntblob;
    nlp_params *p;
    net net;
};

void nlp_seq2seq_free(nlp_seq2seq *m)
{
    if (!m)
        return;
    net_free(&m->net);
    nlp_params_free(m->p);
    nlp_vocab_free(m->src);
    nlp_vocab_free(m->tgt);
    nlp_free(m->sblob);
    nlp_free(m->tblob);
    nlp_free(m);
}

const nlp_seq2seq_config *nlp_seq2seq_get_config(const nlp_seq2seq *m) { return &m->cfg; }
const nlp_vocab *nlp_seq2seq_src_vocab(const nlp_seq2seq *m) { return m->src; }
const nlp_vocab *nlp_seq2seq_tgt_vocab(const nlp_seq2seq *m) { return m->tgt; }
nlp_params *nlp_seq2seq_params(nlp_seq2seq *m) { return m->p; }

/* The model struct with its layout declared (parameters not allocated). */
static int model_layout(nlp_seq2seq **out, const nlp_seq2seq_config *c, long Vs, long Vt)
{
    *out = NULL;
    nlp_seq2seq *m = nlp_calloc(1, sizeof *m);
    if (!m)
        return NLP_ENOMEM;
    m->cfg = *c;
    dims_make(&m->d, c, (int)Vs, (int)Vt);
    int rc = nlp_params_new(&m->p);
    if (rc == NLP_OK)
        rc = net_build(&m->net, c, &m->d, m->p, 1, 1, 1, 1);
    if (rc != NLP_OK) {
        nlp_seq2seq_free(m);
        return rc;
    }
    *out = m;
    return NLP_OK;
}

static void model_reset(nlp_seq2seq *m, nlp_rng *rng)
{
    net *n = &m->net;
    nlp_embed_reset(&n->semb, rng);
    nlp_embed_reset(&n->temb, rng);
    nlp_rnn_reset(n->enc, rng);
    nlp_linear_reset(&n->bridge, rng);
    if (m->d.lstm)
        nlp_linear_reset(&n->bridge_c, rng);
    if (m->cfg.attention == NLP_SEQ2SEQ_ATTN_LUONG_DOT)
        nlp_linear_reset(&n->proj, rng);
    if (n->attn)
        nlp_attn_reset(n->attn, rng);
    nlp_rnn_reset(n->dec, rng);
    nlp_linear_reset(&n->out, rng);
    if (n->out_bias >= 0) {
        const nlp_params_view *v = &m->p->views[n->out_bias];
        float b = 1.0f / sqrtf((float)m->d.E);
        nlp_tensor_uniform(nlp_params_data(m->p, n->out_bias), v->size, -b, b, rng);
    }
}

int nlp_seq2seq_new(nlp_seq2seq **out, const nlp_seq2seq_config *cfg, nlp_vocab *src,
                    nlp_vocab *tgt, nlp_rng *rng, nlp_error *e)
{
    *out = NULL;
    int rc = config_check(cfg, e);
    if (rc == NLP_OK && (!vocab_ok(src) || !vocab_ok(tgt)))
        rc = nlp_error_set(e, NLP_EINVAL, NULL, 0,
                           "seq2seq: a vocabulary needs <pad> <s> </s> <unk> at ids 0-3 and "
                           "at least one word");
    if (rc == NLP_OK && !rng)
        rc = nlp_error_set(e, NLP_EINVAL, NULL, 0, "seq2seq: no rng");
    nlp_seq2seq *m = NULL;
    if (rc == NLP_OK && (rc = model_layout(&m, cfg, nlp_vocab_size(src),
                                           nlp_vocab_size(tgt))) != NLP_OK)
        nlp_error_set(e, rc, NULL, 0, rc == NLP_ENOMEM ? NULL : "seq2seq: model too large");
    if (rc != NLP_OK) {
        nlp_vocab_free(src);
        nlp_vocab_free(tgt);
        return rc;
    }
    m->src = src;
    m->tgt = tgt;
    if ((rc = nlp_params_alloc(m->p)) != NLP_OK ||
        (rc = nlp_vocab_to_blob(src, &m->sblob, &m->nsblob)) != NLP_OK ||
        (rc = nlp_vocab_to_blob(tgt, &m->tblob, &m->ntblob)) != NLP_OK) {
        nlp_seq2seq_free(m);
        return nlp_error_set(e, rc, NULL, 0, NULL);
    }
    model_reset(m, rng);
    *out = m;
    return NLP_OK;
}

int nlp_seq2seq_set_vectors(nlp_seq2seq *m, int target, const nlp_vectors *v, long *found,
                            nlp_error *e)
{
    if (found)
        *found = 0;
    if (!v || v->dim != m->d.E)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "vectors of dimension %d, but the embeddings have %d",
                             v ? v->dim : 0, m->d.E);
    const nlp_vocab *words = target ? m->tgt : m->src;
    const nlp_embed *emb = target ? &m->net.temb : &m->net.semb;
    float *W = nlp_params_data(m->p, emb->w);
    long n = 0;
    for (long i = 0; i < v->n; i++) {
        long id = nlp_vocab_find(words, nlp_vocab_word(v->words, i),
                                 nlp_vocab_word_len(v->words, i));
        if (id < 0 || id >= emb->V)
            continue;
        memcpy(W + (size_t)id * (size_t)m->d.E, v->data + (size_t)i * (size_t)v->dim,
               (size_t)m->d.E * sizeof *W);
        n++;
    }
    if (found)
        *found = n;
    return NLP_OK;
}

/* ---- shadow parameter sets ---- */

static void shadow_free(nlp_params *p, net *n)
{
    net_free(n);
    if (p) {
        p->data = p->grad = NULL; /* borrowed */
        nlp_params_free(p);
    }
}

/* A net over a shadow of m's parameters with its own scratch capacity. */
static int shadow_new(nlp_params **out, net *n, const nlp_seq2seq *m, int max_S, int max_Be,
                      int max_T, int max_Bd)
{
    *out = NULL;
    memset(n, 0, sizeof *n);
    nlp_params *p;
    int rc = nlp_params_new(&p);
    if (rc != NLP_OK)
        return rc;
    rc = net_build(n, &m->cfg, &m->d, p, max_S, max_Be, max_T, max_Bd);
    /* The same layout calls give the same views (alloc rounds n up). */
    if (rc == NLP_OK && (p->nviews != m->p->nviews || p->n > m->p->n ||
                         memcmp(p->views, m->p->views, (size_t)p->nviews * sizeof *p->views)))
        rc = NLP_EINVAL;
    if (rc == NLP_OK)
        p->n = m->p->n;
    if (rc != NLP_OK) {
        shadow_free(p, n);
        return rc;
    }
    p->data = m->p->data;
    p->grad = m->p->grad;
    *out = p;
    return NLP_OK;
}

/* ==== Shared pieces of the forward and backward ========================== */

/* a (n) = tanh(a). */
static void tanh_inplace(float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] = tanhf(a[i]);
}

/*
** The bridge: from the encoder's final states st (Le*2,B,H) (h or c) the
** input in (B,2H) = [top fwd; top bwd], out (B,Ld*H) = tanh(linear(in)),
** and the decoder's initial state s0 (Ld,B,H).
*/
static void bridge_forward(const dims *d, const nlp_linear *l, float *in, float *out, float *s0,
                           const float *st, int B)
{
    const size_t H = (size_t)d->H;
    const float *fw = st + (size_t)(2 * (d->Le - 1)) * (size_t)B * H;
    const float *bw = fw + (size_t)B * H;
    for (int b = 0; b < B; b++) {
        memcpy(in + (size_t)b * 2 * H, fw + (size_t)b * H, H * sizeof *in);
        memcpy(in + (size_t)b * 2 * H + H, bw + (size_t)b * H, H * sizeof *in);
    }
    nlp_linear_forward(l, out, in, B);
    tanh_inplace(out, (size_t)B * (size_t)d->Ld * H);
    for (int b = 0; b < B; b++)
        for (int k = 0; k < d->Ld; k++)
            memcpy(s0 + ((size_t)k * (size_t)B + (size_t)b) * H,
                   out + ((size_t)b * (size_t)d->Ld + (size_t)k) * H, H * sizeof *s0);
}

/* Backward of bridge_forward: ds0 (Ld,B,H) -> dst (Le*2,B,H) +=, using the
** scratch dout (B,Ld*H), din (B,2H). */
static void bridge_backward(const dims *d, nlp_linear *l, float *dout, float *din,
                            const float *in, const float *out, const float *ds0, float *dst,
                            int B)
{
    const size_t H = (size_t)d->H;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < d->Ld; k++) {
            const size_t o = ((size_t)b * (size_t)d->Ld + (size_t)k) * H;
            const float *g = ds0 + ((size_t)k * (size_t)B + (size_t)b) * H;
            for (size_t j = 0; j < H; j++)
                dout[o + j] = g[j] * (1.0f - out[o + j] * out[o + j]);
        }
    memset(din, 0, (size_t)B * 2 * H * sizeof *din);
    nlp_linear_backward(l, din, dout, in, B);
    float *fw = dst + (size_t)(2 * (d->Le - 1)) * (size_t)B * H;
    float *bw = fw + (size_t)B * H;
    for (int b = 0; b < B; b++)
        for (size_t j = 0; j < H; j++) {
            fw[(size_t)b * H + j] += din[(size_t)b * 2 * H + j];
            bw[(size_t)b * H + j] += din[(size_t)b * 2 * H + H + j];
        }
}

/*
** Logits (n,Vt) of the output features f (n,F): untied one GEMM, tied the
** projection pr (n,E) = out.proj(f) then pr Emb^T + bias.
*/
static void output_forward(const net *n, const dims *d, float *logits, float *pr,
                           const float *f, int rows)
{
    if (!d->tie) {
        nlp_linear_forward(&n->out, logits, f, rows);
        return;
    }
    nlp_linear_forward(&n->out, pr, f, rows);
    const float *Emb = nlp_params_data(n->p, n->temb.w);
    const float *bias = nlp_params_data(n->p, n->out_bias);
    for (int r = 0; r < rows; r++)
        memcpy(logits + (size_t)r * (size_t)d->Vt, bias, (size_t)d->Vt * sizeof *logits);
    nlp_tensor_gemm(NLP_NOTRANS, NLP_TRANS, rows, d->Vt, d->E, 1.0f, pr, d->E, Emb, d->E, 1.0f,
                    logits, d->Vt);
}

/*
** The label-smoothed cross-entropy of one row of logits z (V) against y,
** replacing z with the gradient of (loss * scale) when grad is set.
** *lp gets log p(y).  Returns the row's loss.  One expf per logit (the
** exponentials are kept in z for the gradient), summed in double.
*/
static double row_xent(float *z, int V, int y, float ls, float scale, int grad, double *lp)
{
    float mx = z[0];
    double sz = 0;
    for (int j = 0; j < V; j++) {
        if (z[j] > mx)
            mx = z[j];
        sz += z[j];
    }
    const float zy = z[y];
    double s = 0;
    if (grad)
        for (int j = 0; j < V; j++) {
            float ej = expf(z[j] - mx);
            z[j] = ej;
            s += ej;
        }
    else
        for (int j = 0; j < V; j++)
            s += expf(z[j] - mx);
    const double lse = (double)mx + log(s);
    *lp = (double)zy - lse;
    double loss = (1.0 - ls) * -*lp + (ls > 0 ? ls * (lse - sz / V) : 0);
    if (grad) {
        const float a = (float)(scale / s), u = scale * ls / (float)V;
        for (int j = 0; j < V; j++)
            z[j] = z[j] * a - u;
        z[y] -= scale * (1.0f - ls);
    }
    return loss;
}

/* z (V) = log softmax(z), in place, one expf per element. */
static void row_log_softmax(float *z, int V)
{
    float mx = z[0];
    for (int j = 1; j < V; j++)
        if (z[j] > mx)
            mx = z[j];
    double s = 0;
    for (int j = 0; j < V; j++)
        s += expf(z[j] - mx);
    const float lse = mx + (float)log(s);
    for (int j = 0; j < V; j++)
        z[j] -= lse;
}

/* ==== Workspaces ========================================================= */

struct nlp_seq2seq_work {
    nlp_seq2seq *m;
    nlp_params *p;     /* shadow */
    net n;
    int max_B, max_S, max_T;
    void *mem;         /* one block holding every buffer below */
    int *sids, *tids, *tout, *slen, *tlen, *ridx;
    float *xs, *xs_mask, *dxs, *ys, *dys, *mm, *dmm, *keys, *dkeys;
    float *hT, *cT, *dhT, *dcT, *bin, *bout, *cin, *cout, *dbout, *dbin;
    float *h0, *c0, *dh0, *dc0;
    float *xt, *xt_mask, *dxt, *xin, *dxin, *yd, *dyd, *ctx, *dctx, *aw, *acache;
    float *f, *f_mask, *df, *pr, *dpr, *logits;
};

/* Carves the buffers of sizes sz[] (floats or ints, 64-byte aligned) out of
** one block; returns it, or NULL. */
typedef struct carve {
    void **dst;
    size_t n;
} carve;

static void *carve_all(carve *c, int k)
{
    size_t total = 0;
    for (int i = 0; i < k; i++) {
        size_t b = (c[i].n * 4 + 63) / 64 * 64;
        if (c[i].n > SIZE_MAX / 8 || total > SIZE_MAX / 2 - b)
            return NULL;
        total += b;
    }
    unsigned char *m = nlp_aligned_alloc(64, total ? total : 64);
    if (!m)
        return NULL;
    size_t off = 0;
    for (int i = 0; i < k; i++) {
        *c[i].dst = c[i].n ? m + off : NULL;
        off += (c[i].n * 4 + 63) / 64 * 64;
    }
    return m;
}

static void work_release(nlp_seq2seq_work *w)
{
    shadow_free(w->p, &w->n);
    w->p = NULL;
    nlp_free(w->mem);
    w->mem = NULL;
}

/* Builds w's shadow net and buffers for the capacities (w->m set). */
static int work_build(nlp_seq2seq_work *w, int B, int S, int T)
{
    const dims *d = &w->m->d;
    int rc = shadow_new(&w->p, &w->n, w->m, S, B, T, B);
    if (rc != NLP_OK)
        return rc;
    const size_t Bz = (size_t)B, SB = (size_t)S * Bz, TB = (size_t)T * Bz;
    const size_t E = (size_t)d->E, H = (size_t)d->H, C = (size_t)d->C, F = (size_t)d->F;
    const size_t kd = (size_t)d->kd, Ld = (size_t)d->Ld, Le2 = 2 * (size_t)d->Le;
    const size_t drop = w->m->cfg.dropout > 0;
    const size_t dot = w->m->cfg.attention == NLP_SEQ2SEQ_ATTN_LUONG_DOT;
    const size_t ha = d->bahdanau ? (size_t)d->A : 0;
    const size_t rows = TB < OUT_CHUNK ? TB : OUT_CHUNK;
    const size_t lstm = (size_t)d->lstm;
    carve c[] = {
        {(void **)&w->sids, SB}, {(void **)&w->tids, TB}, {(void **)&w->tout, TB},
        {(void **)&w->slen, Bz}, {(void **)&w->tlen, Bz}, {(void **)&w->ridx, TB},
        {(void **)&w->xs, SB * E}, {(void **)&w->xs_mask, drop * SB * E},
        {(void **)&w->dxs, SB * E}, {(void **)&w->ys, SB * 2 * H}, {(void **)&w->dys, SB * 2 * H},
        {(void **)&w->mm, dot * SB * H}, {(void **)&w->dmm, dot * SB * H},
        {(void **)&w->keys, SB * kd}, {(void **)&w->dkeys, SB * kd},
        {(void **)&w->hT, Le2 * Bz * H}, {(void **)&w->cT, lstm * Le2 * Bz * H},
        {(void **)&w->dhT, Le2 * Bz * H}, {(void **)&w->dcT, lstm * Le2 * Bz * H},
        {(void **)&w->bin, Bz * 2 * H}, {(void **)&w->bout, Bz * Ld * H},
        {(void **)&w->cin, lstm * Bz * 2 * H}, {(void **)&w->cout, lstm * Bz * Ld * H},
        {(void **)&w->dbout, Bz * Ld * H}, {(void **)&w->dbin, Bz * 2 * H},
        {(void **)&w->h0, Ld * Bz * H}, {(void **)&w->c0, lstm * Ld * Bz * H},
        {(void **)&w->dh0, Ld * Bz * H}, {(void **)&w->dc0, lstm * Ld * Bz * H},
        {(void **)&w->xt, TB * E}, {(void **)&w->xt_mask, drop * TB * E},
        {(void **)&w->dxt, TB * E}, {(void **)&w->xin, Bz * (size_t)d->I},
        {(void **)&w->dxin, Bz * (size_t)d->I}, {(void **)&w->yd, TB * H},
        {(void **)&w->dyd, TB * H}, {(void **)&w->ctx, TB * C}, {(void **)&w->dctx, TB * C},
        {(void **)&w->aw, C ? TB * (size_t)S : 0}, {(void **)&w->acache, TB * ha},
        {(void **)&w->f, TB * F}, {(void **)&w->f_mask, drop * TB * F}, {(void **)&w->df, TB * F},
        {(void **)&w->pr, d->tie ? TB * E : 0}, {(void **)&w->dpr, d->tie ? TB * E : 0},
        {(void **)&w->logits, rows * (size_t)d->Vt},
    };
    w->mem = carve_all(c, (int)(sizeof c / sizeof c[0]));
    if (!w->mem) {
        work_release(w);
        return NLP_ENOMEM;
    }
    w->max_B = B;
    w->max_S = S;
    w->max_T = T;
    return NLP_OK;
}

static int caps_ok(int B, int S, int T)
{
    if (B < 1 || S < 1 || T < 1)
        return NLP_EINVAL;
    if ((size_t)S * (size_t)B > (size_t)INT_MAX / 4 || (size_t)T * (size_t)B > (size_t)INT_MAX / 4)
        return NLP_ERANGE;
    return NLP_OK;
}

int nlp_seq2seq_work_new(nlp_seq2seq_work **out, nlp_seq2seq *m, int max_B, int max_S,
                         int max_T)
{
    *out = NULL;
    if (!m)
        return NLP_EINVAL;
    int rc = caps_ok(max_B, max_S, max_T);
    if (rc != NLP_OK)
        return rc;
    nlp_seq2seq_work *w = nlp_calloc(1, sizeof *w);
    if (!w)
        return NLP_ENOMEM;
    w->m = m;
    if ((rc = work_build(w, max_B, max_S, max_T)) != NLP_OK) {
        nlp_free(w);
        return rc;
    }
    *out = w;
    return NLP_OK;
}

void nlp_seq2seq_work_free(nlp_seq2seq_work *w)
{
    if (!w)
        return;
    work_release(w);
    nlp_free(w);
}

int nlp_seq2seq_work_resize(nlp_seq2seq_work *w, int max_B, int max_S, int max_T)
{
    if (!w)
        return NLP_EINVAL;
    int rc = caps_ok(max_B, max_S, max_T);
    if (rc != NLP_OK)
        return rc;
    if (max_B <= w->max_B && max_S <= w->max_S && max_T <= w->max_T)
        return NLP_OK;
    nlp_seq2seq_work nw;
    memset(&nw, 0, sizeof nw);
    nw.m = w->m;
    if ((rc = work_build(&nw, max_B > w->max_B ? max_B : w->max_B,
                         max_S > w->max_S ? max_S : w->max_S,
                         max_T > w->max_T ? max_T : w->max_T)) != NLP_OK)
        return rc;
    work_release(w);
    *w = nw;
    return NLP_OK;
}

/* Copies the rows [b0,b0+nb) of the (S,B) ids into the (Sm,nb) local ids,
** -1 at padding positions; checks the real ids against V. */
static int take_ids(int *dst, const int *src, const int *len, int S, int B, int b0, int nb,
                    int Sm, int V)
{
    for (int s = 0; s < Sm; s++)
        for (int j = 0; j < nb; j++) {
            int id = -1;
            if (s < len[j]) {
                id = src[(size_t)s * (size_t)B + (size_t)(b0 + j)];
                if (id < 0 || id >= V)
                    return NLP_ERANGE;
            }
            dst[(size_t)s * (size_t)nb + (size_t)j] = id;
        }
    (void)S;
    return NLP_OK;
}

/* The step's query rows (B,H) for Bahdanau: h_{t-1} of the top layer. */
static const float *bahdanau_query(const nlp_seq2seq_work *w, int t, int nb)
{
    const size_t H = (size_t)w->m->d.H;
    return t == 0 ? w->h0 + (size_t)(w->m->d.Ld - 1) * (size_t)nb * H
                  : w->yd + (size_t)(t - 1) * (size_t)nb * H;
}

int nlp_seq2seq_loss(nlp_seq2seq_work *w, const nlp_seq2seq_batch *b, int b0, int nb,
                     float *grad, float scale, int train, nlp_rng *rng, double *loss,
                     size_t *count, double *sent_logp, nlp_error *e)
{
    if (loss)
        *loss = 0;
    if (count)
        *count = 0;
    if (!w || !b || !b->src || !b->src_len || !b->tgt_in || !b->tgt_out || !b->tgt_len ||
        b->B < 1 || b->S < 1 || b->T < 1 || b0 < 0 || nb < 1 || b0 > b->B - nb)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "seq2seq: bad batch or rows");
    const nlp_seq2seq *m = w->m;
    const dims *d = &m->d;
    const float p = train ? m->cfg.dropout : 0;
    if (p > 0 && !rng)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "seq2seq: dropout needs an rng");
    int Sm = 1, Tm = 1;
    for (int j = 0; j < nb; j++) {
        int sl = b->src_len[b0 + j], tl = b->tgt_len[b0 + j];
        if (sl < 0 || sl > b->S || tl < 0 || tl > b->T)
            return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                                 "seq2seq: sentence %d: lengths %d, %d outside 0..%d, 0..%d",
                                 b0 + j, sl, tl, b->S, b->T);
        if (sl > Sm)
            Sm = sl;
        if (tl > Tm)
            Tm = tl;
    }
    if (nb > w->max_B || Sm > w->max_S || Tm > w->max_T)
        return nlp_error_set(e, NLP_ERANGE, NULL, 0,
                             "seq2seq: %d sentences of %d and %d tokens exceed the workspace "
                             "(%d, %d, %d)", nb, Sm, Tm, w->max_B, w->max_S, w->max_T);
    memcpy(w->slen, b->src_len + b0, (size_t)nb * sizeof *w->slen);
    memcpy(w->tlen, b->tgt_len + b0, (size_t)nb * sizeof *w->tlen);
    if (take_ids(w->sids, b->src, w->slen, b->S, b->B, b0, nb, Sm, d->Vs) != NLP_OK ||
        take_ids(w->tids, b->tgt_in, w->tlen, b->T, b->B, b0, nb, Tm, d->Vt) != NLP_OK ||
        take_ids(w->tout, b->tgt_out, w->tlen, b->T, b->B, b0, nb, Tm, d->Vt) != NLP_OK)
        return nlp_error_set(e, NLP_ERANGE, NULL, 0, "seq2seq: an id outside the vocabulary");
    net *n = &w->n;
    w->p->data = m->p->data;
    w->p->grad = grad ? grad : m->p->grad;
    const int B = nb, S = Sm, T = Tm;
    const size_t SB = (size_t)S * (size_t)B, TB = (size_t)T * (size_t)B;
    const size_t E = (size_t)d->E, H = (size_t)d->H, C = (size_t)d->C, F = (size_t)d->F;
    const size_t I = (size_t)d->I, Bz = (size_t)B;
    const size_t ha = d->bahdanau ? (size_t)d->A : 0;
    float *mem = m->cfg.attention == NLP_SEQ2SEQ_ATTN_LUONG_DOT ? w->mm : w->ys;
    float *dmem = m->cfg.attention == NLP_SEQ2SEQ_ATTN_LUONG_DOT ? w->dmm : w->dys;
    int rc;

    /* ---- encoder ---- */
    nlp_embed_forward(&n->semb, w->xs, w->sids, (int)SB);
    if (p > 0)
        nlp_tensor_dropout_forward(w->xs, w->xs_mask, w->xs, SB * E, p, rng);
    if ((rc = nlp_rnn_forward(n->enc, w->ys, w->hT, d->lstm ? w->cT : NULL, w->xs, NULL, NULL,
                              w->slen, S, B, p > 0, rng)) != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "seq2seq: encoder: %s", nlp_error_string(rc));
    if (m->cfg.attention == NLP_SEQ2SEQ_ATTN_LUONG_DOT)
        nlp_linear_forward(&n->proj, w->mm, w->ys, (int)SB);
    if (n->attn && d->kd)
        nlp_attn_keys_forward(n->attn, w->keys, mem, S, B);
    bridge_forward(d, &n->bridge, w->bin, w->bout, w->h0, w->hT, B);
    if (d->lstm)
        bridge_forward(d, &n->bridge_c, w->cin, w->cout, w->c0, w->cT, B);

    /* ---- decoder, one batched step per target position ---- */
    nlp_embed_forward(&n->temb, w->xt, w->tids, (int)TB);
    if (p > 0)
        nlp_tensor_dropout_forward(w->xt, w->xt_mask, w->xt, TB * E, p, rng);
    if ((rc = nlp_rnn_step_begin(n->dec, w->h0, d->lstm ? w->c0 : NULL, w->tlen, B,
                                 p > 0)) != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "seq2seq: decoder: %s", nlp_error_string(rc));
    for (int t = 0; t < T; t++) {
        const float *xt = w->xt + (size_t)t * Bz * E;
        float *yt = w->yd + (size_t)t * Bz * H;
        /* No context without attention (C = 0): NULL + 0 is undefined. */
        float *ct = C ? w->ctx + (size_t)t * Bz * C : NULL;
        float *at = w->aw ? w->aw + (size_t)t * Bz * (size_t)S : NULL;
        float *cache = ha ? w->acache + (size_t)t * Bz * ha : NULL;
        const float *x = xt;
        if (d->bahdanau) {
            nlp_attn_forward(n->attn, ct, at, cache, bahdanau_query(w, t, B), mem, w->keys,
                             w->slen, S, B);
            for (size_t r = 0; r < Bz; r++) {
                memcpy(w->xin + r * I, xt + r * E, E * sizeof *w->xin);
                memcpy(w->xin + r * I + E, ct + r * C, C * sizeof *w->xin);
            }
            x = w->xin;
        }
        if ((rc = nlp_rnn_step_forward(n->dec, t, yt, NULL, NULL, x, rng)) != NLP_OK)
            return nlp_error_set(e, rc, NULL, 0, "seq2seq: decoder step: %s",
                                 nlp_error_string(rc));
        if (d->luong)
            nlp_attn_forward(n->attn, ct, at, NULL, yt, mem, w->keys, w->slen, S, B);
    }
    /* The output layer sees only the real target positions: padded rows
    ** cost no GEMM work.  Row k of f is position ridx[k] = t*B + b. */
    size_t NR = 0;
    for (size_t r = 0; r < TB; r++)
        if (w->tout[r] >= 0)
            w->ridx[NR++] = (int)r;
    for (size_t k = 0; k < NR; k++) {
        const size_t r = (size_t)w->ridx[k];
        float *fr = w->f + k * F;
        memcpy(fr, w->yd + r * H, H * sizeof *fr);
        if (C)
            memcpy(fr + H, w->ctx + r * C, C * sizeof *fr);
        memcpy(fr + H + C, w->xt + r * E, E * sizeof *fr);
    }
    if (p > 0)
        nlp_tensor_dropout_forward(w->f, w->f_mask, w->f, NR * F, p, rng);

    /* ---- output layer and loss, chunks of rows ---- */
    const int V = d->Vt;
    const float ls = m->cfg.label_smoothing;
    double total = 0;
    if (sent_logp)
        for (int j = 0; j < B; j++)
            sent_logp[j] = 0;
    if (grad)
        memset(w->df, 0, NR * F * sizeof *w->df);
    if (d->tie && NR)
        nlp_linear_forward(&n->out, w->pr, w->f, (int)NR);
    for (size_t r0 = 0; r0 < NR; r0 += OUT_CHUNK) {
        const int nr = (int)(NR - r0 < OUT_CHUNK ? NR - r0 : OUT_CHUNK);
        if (d->tie) {
            const float *Emb = nlp_params_data(n->p, n->temb.w);
            const float *bias = nlp_params_data(n->p, n->out_bias);
            for (int r = 0; r < nr; r++)
                memcpy(w->logits + (size_t)r * (size_t)V, bias, (size_t)V * sizeof *w->logits);
            nlp_tensor_gemm(NLP_NOTRANS, NLP_TRANS, nr, V, d->E, 1.0f, w->pr + r0 * E, d->E,
                            Emb, d->E, 1.0f, w->logits, V);
        } else {
            nlp_linear_forward(&n->out, w->logits, w->f + r0 * F, nr);
        }
        for (int r = 0; r < nr; r++) {
            const size_t pos = (size_t)w->ridx[r0 + (size_t)r];
            double lp;
            total += row_xent(w->logits + (size_t)r * (size_t)V, V, w->tout[pos], ls, scale,
                              grad != NULL, &lp);
            if (sent_logp)
                sent_logp[pos % Bz] += lp;
        }
        if (!grad)
            continue;
        if (d->tie) {
            const float *Emb = nlp_params_data(n->p, n->temb.w);
            float *dEmb = nlp_params_grad(n->p, n->temb.w);
            float *db = nlp_params_grad(n->p, n->out_bias);
            nlp_tensor_gemm(NLP_NOTRANS, NLP_NOTRANS, nr, d->E, V, 1.0f, w->logits, V, Emb,
                            d->E, 0.0f, w->dpr + r0 * E, d->E);
            nlp_tensor_gemm(NLP_TRANS, NLP_NOTRANS, V, d->E, nr, 1.0f, w->logits, V,
                            w->pr + r0 * E, d->E, 1.0f, dEmb, d->E);
            for (int r = 0; r < nr; r++)
                nlp_tensor_axpy((size_t)V, 1.0f, w->logits + (size_t)r * (size_t)V, db);
        } else {
            nlp_linear_backward(&n->out, w->df + r0 * F, w->logits, w->f + r0 * F, nr);
        }
    }
    if (loss)
        *loss = total;
    if (count)
        *count = NR;
    if (!grad)
        return NLP_OK;

    /* ---- backward ---- */
    if (d->tie && NR)
        nlp_linear_backward(&n->out, w->df, w->dpr, w->f, (int)NR);
    if (p > 0)
        nlp_tensor_dropout_backward(w->df, w->df, w->f_mask, NR * F);
    memset(w->dyd, 0, TB * H * sizeof *w->dyd);
    if (C)
        memset(w->dctx, 0, TB * C * sizeof *w->dctx);
    memset(w->dxt, 0, TB * E * sizeof *w->dxt);
    for (size_t k = 0; k < NR; k++) {
        const size_t r = (size_t)w->ridx[k];
        const float *g = w->df + k * F;
        memcpy(w->dyd + r * H, g, H * sizeof *g);
        if (C)
            memcpy(w->dctx + r * C, g + H, C * sizeof *g);
        memcpy(w->dxt + r * E, g + H + C, E * sizeof *g);
    }
    memset(w->dh0, 0, (size_t)d->Ld * Bz * H * sizeof *w->dh0);
    if (d->lstm)
        memset(w->dc0, 0, (size_t)d->Ld * Bz * H * sizeof *w->dc0);
    memset(dmem, 0, SB * (C ? C : 1) * sizeof *dmem);
    memset(w->dys, 0, SB * 2 * H * sizeof *w->dys);
    if (d->kd)
        memset(w->dkeys, 0, SB * (size_t)d->kd * sizeof *w->dkeys);
    for (int t = T - 1; t >= 0; t--) {
        float *dyt = w->dyd + (size_t)t * Bz * H;
        float *dxt = w->dxt + (size_t)t * Bz * E;
        float *dct = C ? w->dctx + (size_t)t * Bz * C : NULL;
        const float *yt = w->yd + (size_t)t * Bz * H;
        const float *at = w->aw ? w->aw + (size_t)t * Bz * (size_t)S : NULL;
        if (d->luong)
            nlp_attn_backward(n->attn, dyt, dmem, w->dkeys, dct, NULL, yt, mem, w->keys,
                              w->slen, at, NULL, S, B);
        if (d->bahdanau) {
            memset(w->dxin, 0, Bz * I * sizeof *w->dxin);
            rc = nlp_rnn_step_backward(n->dec, t, w->dxin, w->dh0, d->lstm ? w->dc0 : NULL,
                                       dyt, NULL, NULL);
            for (size_t r = 0; r < Bz; r++) {
                nlp_tensor_axpy(E, 1.0f, w->dxin + r * I, dxt + r * E);
                nlp_tensor_axpy(C, 1.0f, w->dxin + r * I + E, dct + r * C);
            }
            float *dq = t == 0 ? w->dh0 + (size_t)(d->Ld - 1) * Bz * H
                               : w->dyd + (size_t)(t - 1) * Bz * H;
            nlp_attn_backward(n->attn, dq, dmem, w->dkeys, dct, NULL, bahdanau_query(w, t, B),
                              mem, w->keys, w->slen, at, w->acache + (size_t)t * Bz * ha, S, B);
        } else {
            rc = nlp_rnn_step_backward(n->dec, t, dxt, w->dh0, d->lstm ? w->dc0 : NULL, dyt,
                                       NULL, NULL);
        }
        if (rc != NLP_OK)
            return nlp_error_set(e, rc, NULL, 0, "seq2seq: decoder backward: %s",
                                 nlp_error_string(rc));
    }
    if (n->attn && d->kd)
        nlp_attn_keys_backward(n->attn, dmem, w->dkeys, mem, S, B);
    if (m->cfg.attention == NLP_SEQ2SEQ_ATTN_LUONG_DOT)
        nlp_linear_backward(&n->proj, w->dys, w->dmm, w->ys, (int)SB);
    const size_t st = 2 * (size_t)d->Le * Bz * H;
    memset(w->dhT, 0, st * sizeof *w->dhT);
    bridge_backward(d, &n->bridge, w->dbout, w->dbin, w->bin, w->bout, w->dh0, w->dhT, B);
    if (d->lstm) {
        memset(w->dcT, 0, st * sizeof *w->dcT);
        bridge_backward(d, &n->bridge_c, w->dbout, w->dbin, w->cin, w->cout, w->dc0, w->dcT, B);
    }
    memset(w->dxs, 0, SB * E * sizeof *w->dxs);
    if ((rc = nlp_rnn_backward(n->enc, w->dxs, NULL, NULL, w->dys, w->dhT,
                               d->lstm ? w->dcT : NULL, w->xs)) != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "seq2seq: encoder backward: %s",
                             nlp_error_string(rc));
    if (p > 0) {
        nlp_tensor_dropout_backward(w->dxs, w->dxs, w->xs_mask, SB * E);
        nlp_tensor_dropout_backward(w->dxt, w->dxt, w->xt_mask, TB * E);
    }
    nlp_embed_backward(&n->semb, w->dxs, w->sids, (int)SB);
    nlp_embed_backward(&n->temb, w->dxt, w->tids, (int)TB);
    return NLP_OK;
}

/* ==== Decoding =========================================================== */

struct nlp_seq2seq_decoder {
    nlp_seq2seq *m;
    nlp_params *p;     /* shadow */
    net n;
    int max_n, max_S, max_rows;
    int S, nsent, rows, cap, begun;
    void *mem;
    int *sids, *slen, *map, *map2, *rlen;
    float *xs, *ys, *mm, *keys, *hT, *cT, *bin, *bout, *cin, *cout, *h0, *c0;
    float *rmem, *rkeys, *h, *c, *h2, *c2;
    float *emb, *xin, *y, *ctx, *aw, *cache, *f, *pr;
};

void nlp_seq2seq_decoder_free(nlp_seq2seq_decoder *d)
{
    if (!d)
        return;
    shadow_free(d->p, &d->n);
    nlp_free(d->mem);
    nlp_free(d);
}

int nlp_seq2seq_decoder_new(nlp_seq2seq_decoder **out, nlp_seq2seq *m, int max_n, int max_S,
                            int max_rows)
{
    *out = NULL;
    if (!m || max_n < 1 || max_S < 1 || max_rows < max_n)
        return NLP_EINVAL;
    int rc = caps_ok(max_rows, max_S, 1);
    if (rc != NLP_OK)
        return rc;
    nlp_seq2seq_decoder *d = nlp_calloc(1, sizeof *d);
    if (!d)
        return NLP_ENOMEM;
    d->m = m;
    if ((rc = shadow_new(&d->p, &d->n, m, max_S, max_n, 1, max_rows)) != NLP_OK) {
        nlp_free(d);
        return rc;
    }
    const dims *k = &m->d;
    const size_t N = (size_t)max_n, R = (size_t)max_rows, S = (size_t)max_S;
    const size_t E = (size_t)k->E, H = (size_t)k->H, C = (size_t)k->C, kd = (size_t)k->kd;
    const size_t Ld = (size_t)k->Ld, Le2 = 2 * (size_t)k->Le, lstm = (size_t)k->lstm;
    const size_t dot = m->cfg.attention == NLP_SEQ2SEQ_ATTN_LUONG_DOT;
    carve c[] = {
        {(void **)&d->sids, S * N}, {(void **)&d->slen, N}, {(void **)&d->map, R},
        {(void **)&d->map2, R}, {(void **)&d->rlen, R},
        {(void **)&d->xs, S * N * E}, {(void **)&d->ys, S * N * 2 * H},
        {(void **)&d->mm, dot * S * N * H}, {(void **)&d->keys, S * N * kd},
        {(void **)&d->hT, Le2 * N * H}, {(void **)&d->cT, lstm * Le2 * N * H},
        {(void **)&d->bin, N * 2 * H}, {(void **)&d->bout, N * Ld * H},
        {(void **)&d->cin, lstm * N * 2 * H}, {(void **)&d->cout, lstm * N * Ld * H},
        {(void **)&d->h0, Ld * N * H}, {(void **)&d->c0, lstm * Ld * N * H},
        {(void **)&d->rmem, S * R * C}, {(void **)&d->rkeys, S * R * kd},
        {(void **)&d->h, Ld * R * H}, {(void **)&d->c, lstm * Ld * R * H},
        {(void **)&d->h2, Ld * R * H}, {(void **)&d->c2, lstm * Ld * R * H},
        {(void **)&d->emb, R * E}, {(void **)&d->xin, R * (size_t)k->I}, {(void **)&d->y, R * H},
        {(void **)&d->ctx, R * C}, {(void **)&d->aw, C ? R * S : 0},
        {(void **)&d->cache, k->bahdanau ? R * (size_t)k->A : 0}, {(void **)&d->f, R * (size_t)k->F},
        {(void **)&d->pr, k->tie ? R * E : 0},
    };
    d->mem = carve_all(c, (int)(sizeof c / sizeof c[0]));
    if (!d->mem) {
        nlp_seq2seq_decoder_free(d);
        return NLP_ENOMEM;
    }
    d->max_n = max_n;
    d->max_S = max_S;
    d->max_rows = max_rows;
    *out = d;
    return NLP_OK;
}

/* The per-row memory and keys (S,rows,.) and lengths from the sentences'
** through the row -> sentence map. */
static void gather_rows(nlp_seq2seq_decoder *d)
{
    const dims *k = &d->m->d;
    const size_t C = (size_t)k->C, kd = (size_t)k->kd, R = (size_t)d->rows;
    const size_t N = (size_t)d->nsent;
    const float *mem = d->m->cfg.attention == NLP_SEQ2SEQ_ATTN_LUONG_DOT ? d->mm : d->ys;
    for (size_t r = 0; r < R; r++)
        d->rlen[r] = d->slen[d->map[r]];
    if (!C)
        return;
    for (size_t s = 0; s < (size_t)d->S; s++)
        for (size_t r = 0; r < R; r++) {
            const size_t from = s * N + (size_t)d->map[r], to = s * R + r;
            memcpy(d->rmem + to * C, mem + from * C, C * sizeof *d->rmem);
            if (kd)
                memcpy(d->rkeys + to * kd, d->keys + from * kd, kd * sizeof *d->rkeys);
        }
}

int nlp_seq2seq_decoder_begin(nlp_seq2seq_decoder *d, const int *src, const int *src_len,
                              int S, int n, int capacity, nlp_error *e)
{
    d->begun = 0;
    if (!src || !src_len || S < 1 || n < 1 || capacity < n)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "seq2seq decoder: bad batch");
    if (S > d->max_S || n > d->max_n || capacity > d->max_rows)
        return nlp_error_set(e, NLP_ERANGE, NULL, 0,
                             "seq2seq decoder: %d sentences of %d tokens, %d rows exceed its "
                             "size (%d, %d, %d)", n, S, capacity, d->max_n, d->max_S,
                             d->max_rows);
    for (int i = 0; i < n; i++)
        if (src_len[i] < 0 || src_len[i] > S)
            return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                                 "seq2seq decoder: sentence %d: length %d outside 0..%d", i,
                                 src_len[i], S);
    const nlp_seq2seq *m = d->m;
    const dims *k = &m->d;
    memcpy(d->slen, src_len, (size_t)n * sizeof *d->slen);
    /* Only the longest source's positions are computed: the attention rows
    ** have that many columns, as nlp_beam_search reads them. */
    const int Sp = S;
    S = 1;
    for (int i = 0; i < n; i++)
        if (src_len[i] > S)
            S = src_len[i];
    if (take_ids(d->sids, src, d->slen, Sp, n, 0, n, S, k->Vs) != NLP_OK)
        return nlp_error_set(e, NLP_ERANGE, NULL, 0,
                             "seq2seq decoder: an id outside the source vocabulary");
    net *nt = &d->n;
    d->p->data = m->p->data;
    const size_t SN = (size_t)S * (size_t)n;
    nlp_embed_forward(&nt->semb, d->xs, d->sids, (int)SN);
    int rc = nlp_rnn_forward(nt->enc, d->ys, d->hT, k->lstm ? d->cT : NULL, d->xs, NULL, NULL,
                             d->slen, S, n, 0, NULL);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "seq2seq decoder: encoder: %s",
                             nlp_error_string(rc));
    const float *mem = d->ys;
    if (m->cfg.attention == NLP_SEQ2SEQ_ATTN_LUONG_DOT) {
        nlp_linear_forward(&nt->proj, d->mm, d->ys, (int)SN);
        mem = d->mm;
    }
    if (nt->attn && k->kd)
        nlp_attn_keys_forward(nt->attn, d->keys, mem, S, n);
    bridge_forward(k, &nt->bridge, d->bin, d->bout, d->h, d->hT, n);
    if (k->lstm)
        bridge_forward(k, &nt->bridge_c, d->cin, d->cout, d->c, d->cT, n);
    d->S = S;
    d->nsent = n;
    d->rows = n;
    d->cap = capacity;
    for (int i = 0; i < n; i++)
        d->map[i] = i;
    gather_rows(d);
    d->begun = 1;
    return NLP_OK;
}

int nlp_seq2seq_decoder_step(void *ctx, const int *prev, int rows, float *logp,
                             const float **attn, nlp_error *e)
{
    nlp_seq2seq_decoder *d = ctx;
    if (attn)
        *attn = NULL;
    if (!d || !d->begun || !prev || !logp || rows != d->rows)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "seq2seq decoder: step of %d rows, %d begun", rows,
                             d && d->begun ? d->rows : 0);
    const nlp_seq2seq *m = d->m;
    const dims *k = &m->d;
    net *nt = &d->n;
    d->p->data = m->p->data;
    for (int r = 0; r < rows; r++)
        if (prev[r] < 0 || prev[r] >= k->Vt)
            return nlp_error_set(e, NLP_ERANGE, NULL, 0,
                                 "seq2seq decoder: row %d: token %d outside the target "
                                 "vocabulary", r, prev[r]);
    const size_t R = (size_t)rows, E = (size_t)k->E, H = (size_t)k->H, C = (size_t)k->C;
    const size_t I = (size_t)k->I, F = (size_t)k->F;
    nlp_embed_forward(&nt->temb, d->emb, prev, rows);
    const float *x = d->emb;
    if (k->bahdanau) {
        nlp_attn_forward(nt->attn, d->ctx, d->aw, d->cache, d->h + (size_t)(k->Ld - 1) * R * H,
                         d->rmem, d->rkeys, d->rlen, d->S, rows);
        for (size_t r = 0; r < R; r++) {
            memcpy(d->xin + r * I, d->emb + r * E, E * sizeof *d->xin);
            memcpy(d->xin + r * I + E, d->ctx + r * C, C * sizeof *d->xin);
        }
        x = d->xin;
    }
    int rc = nlp_rnn_step_begin(nt->dec, d->h, k->lstm ? d->c : NULL, NULL, rows, 0);
    if (rc == NLP_OK)
        rc = nlp_rnn_step_forward(nt->dec, 0, d->y, d->h, k->lstm ? d->c : NULL, x, NULL);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "seq2seq decoder: step: %s", nlp_error_string(rc));
    if (k->luong)
        nlp_attn_forward(nt->attn, d->ctx, d->aw, NULL, d->y, d->rmem, d->rkeys, d->rlen, d->S,
                         rows);
    for (size_t r = 0; r < R; r++) {
        float *fr = d->f + r * F;
        memcpy(fr, d->y + r * H, H * sizeof *fr);
        if (C)
            memcpy(fr + H, d->ctx + r * C, C * sizeof *fr);
        memcpy(fr + H + C, d->emb + r * E, E * sizeof *fr);
    }
    output_forward(nt, k, logp, d->pr, d->f, rows);
    for (size_t r = 0; r < R; r++)
        row_log_softmax(logp + r * (size_t)k->Vt, k->Vt);
    if (attn && C)
        *attn = d->aw;
    return NLP_OK;
}

int nlp_seq2seq_decoder_reorder(void *ctx, const int *parent, int rows, nlp_error *e)
{
    nlp_seq2seq_decoder *d = ctx;
    if (!d || !d->begun || !parent || rows < 1 || rows > d->cap)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                             "seq2seq decoder: reorder to %d rows (capacity %d)", rows,
                             d && d->begun ? d->cap : 0);
    for (int r = 0; r < rows; r++)
        if (parent[r] < 0 || parent[r] >= d->rows)
            return nlp_error_set(e, NLP_EINVAL, NULL, 0,
                                 "seq2seq decoder: row %d: parent %d outside 0..%d", r,
                                 parent[r], d->rows - 1);
    const dims *k = &d->m->d;
    const size_t H = (size_t)k->H, Ro = (size_t)d->rows, Rn = (size_t)rows;
    int changed = rows != d->rows;
    for (size_t l = 0; l < (size_t)k->Ld; l++)
        for (size_t r = 0; r < Rn; r++) {
            const size_t from = (l * Ro + (size_t)parent[r]) * H, to = (l * Rn + r) * H;
            memcpy(d->h2 + to, d->h + from, H * sizeof *d->h);
            if (k->lstm)
                memcpy(d->c2 + to, d->c + from, H * sizeof *d->c);
        }
    for (size_t r = 0; r < Rn; r++) {
        d->map2[r] = d->map[parent[r]];
        if (r >= Ro || d->map2[r] != d->map[r])
            changed = 1;
    }
    float *t = d->h;
    d->h = d->h2;
    d->h2 = t;
    t = d->c;
    d->c = d->c2;
    d->c2 = t;
    int *mp = d->map;
    d->map = d->map2;
    d->map2 = mp;
    d->rows = rows;
    if (changed)
        gather_rows(d);
    return NLP_OK;
}

void nlp_seq2seq_decoder_ops(nlp_seq2seq_decoder *d, struct nlp_beam_ops *ops)
{
    ops->ctx = d;
    ops->V = d->m->d.Vt;
    ops->step = nlp_seq2seq_decoder_step;
    ops->reorder = nlp_seq2seq_decoder_reorder;
}

int nlp_seq2seq_decoder_row_sentence(const nlp_seq2seq_decoder *d, int r)
{
    return d && d->begun && r >= 0 && r < d->rows ? d->map[r] : -1;
}

/* ==== Files ============================================================== */

int nlp_seq2seq_add_to_model(const nlp_seq2seq *m, nlp_model *f)
{
    const nlp_seq2seq_config *c = &m->cfg;
    int rc = nlp_model_set_meta(f, "cell", nlp_rnn_cell_name(c->cell));
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "embed", c->embed);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "hidden", c->hidden);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "enc_layers", c->enc_layers);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "dec_layers", c->dec_layers);
    if (rc == NLP_OK) rc = nlp_model_set_meta(f, "attention", nlp_seq2seq_attention_name(c->attention));
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "attn_hidden", c->attn_hidden);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "dropout", c->dropout);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "tie_embeddings", c->tie_embeddings);
    if (rc == NLP_OK) rc = nlp_model_set_meta_double(f, "label_smoothing", c->label_smoothing);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "src_vocab_size", m->d.Vs);
    if (rc == NLP_OK) rc = nlp_model_set_meta_long(f, "tgt_vocab_size", m->d.Vt);
    if (rc == NLP_OK) rc = nlp_model_add_blob(f, "src_vocab", m->sblob, m->nsblob);
    if (rc == NLP_OK) rc = nlp_model_add_blob(f, "tgt_vocab", m->tblob, m->ntblob);
    return rc;
}

int nlp_seq2seq_save(const nlp_seq2seq *m, const char *path, const char *const *meta,
                     nlp_error *e)
{
    nlp_model *f;
    int rc = nlp_model_new(&f, NLP_SEQ2SEQ_KIND);
    if (rc == NLP_OK)
        rc = nlp_seq2seq_add_to_model(m, f);
    return nlp_model_finish_save(f, rc, meta, m->p, path, e);
}

int nlp_seq2seq_from_model(nlp_seq2seq **out, const nlp_model *f, const char *path,
                           nlp_error *e)
{
    *out = NULL;
    if (!f)
        return nlp_error_set(e, NLP_EINVAL, path, 0, "no model");
    if (strcmp(nlp_model_kind(f), NLP_SEQ2SEQ_KIND) != 0)
        return nlp_error_set(e, NLP_EKIND, path, 0, "a '%s' model, not a %s model",
                             nlp_model_kind(f), NLP_SEQ2SEQ_KIND);
    nlp_seq2seq_config c;
    nlp_seq2seq_config_default(&c);
    long embed, hidden, le, ld, ah, tie, Vs, Vt;
    double dropout, ls;
    int rc;
    const char *cell = nlp_model_meta(f, "cell"), *att = nlp_model_meta(f, "attention");
    if (!cell || nlp_rnn_cell_parse(cell, &c.cell) != NLP_OK ||
        (c.cell != NLP_RNN_GRU && c.cell != NLP_RNN_LSTM))
        return nlp_error_set(e, NLP_EFORMAT, path, 0, "missing or unknown cell type");
    if (!att || nlp_seq2seq_attention_parse(att, &c.attention) != NLP_OK)
        return nlp_error_set(e, NLP_EFORMAT, path, 0, "missing or unknown attention");
    if ((rc = nlp_model_meta_range(f, "embed", 1, NLP_SEQ2SEQ_MAX_WIDTH, &embed, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "hidden", 1, NLP_SEQ2SEQ_MAX_WIDTH, &hidden, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "enc_layers", 1, NLP_SEQ2SEQ_MAX_LAYERS, &le, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "dec_layers", 1, NLP_SEQ2SEQ_MAX_LAYERS, &ld, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "attn_hidden", 0, NLP_SEQ2SEQ_MAX_WIDTH, &ah, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "tie_embeddings", 0, 1, &tie, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "src_vocab_size", NLP_SEQ2SEQ_NSPECIAL + 1, INT_MAX / 2,
                                   &Vs, e)) != NLP_OK ||
        (rc = nlp_model_meta_range(f, "tgt_vocab_size", NLP_SEQ2SEQ_NSPECIAL + 1, INT_MAX / 2,
                                   &Vt, e)) != NLP_OK ||
        (rc = nlp_model_meta_double(f, "dropout", &dropout, e)) != NLP_OK ||
        (rc = nlp_model_meta_double(f, "label_smoothing", &ls, e)) != NLP_OK)
        return rc;
    if (!(dropout >= 0 && dropout < 1))
        return nlp_error_set(e, NLP_EFORMAT, path, 0, "dropout %g outside [0,1)", dropout);
    if (!(ls >= 0 && ls < 1))
        return nlp_error_set(e, NLP_EFORMAT, path, 0, "label_smoothing %g outside [0,1)", ls);
    c.embed = (int)embed;
    c.hidden = (int)hidden;
    c.enc_layers = (int)le;
    c.dec_layers = (int)ld;
    c.attn_hidden = (int)ah;
    c.tie_embeddings = (int)tie;
    c.dropout = (float)dropout;
    c.label_smoothing = (float)ls;
    if (config_check(&c, NULL) != NLP_OK)
        return nlp_error_set(e, NLP_EFORMAT, path, 0, "bad model configuration");
    nlp_seq2seq *m;
    if ((rc = model_layout(&m, &c, Vs, Vt)) != NLP_OK)
        return nlp_error_set(e, rc == NLP_ENOMEM ? rc : NLP_EFORMAT, path, 0,
                             rc == NLP_ENOMEM ? NULL : "bad model configuration");
    /* The shapes the file holds before any allocation they size. */
    if ((rc = nlp_model_check_params(f, m->p, e)) != NLP_OK)
        goto fail;
    if ((rc = nlp_vocab_from_model(&m->src, f, "src_vocab", path, e)) != NLP_OK ||
        (rc = nlp_vocab_from_model(&m->tgt, f, "tgt_vocab", path, e)) != NLP_OK)
        goto fail;
    if (nlp_vocab_size(m->src) != Vs || nlp_vocab_size(m->tgt) != Vt || !vocab_ok(m->src) ||
        !vocab_ok(m->tgt)) {
        rc = nlp_error_set(e, NLP_EFORMAT, path, 0,
                           "the vocabularies do not match the model (sizes or specials)");
        goto fail;
    }
    if ((rc = nlp_params_alloc(m->p)) != NLP_OK ||
        (rc = nlp_vocab_to_blob(m->src, &m->sblob, &m->nsblob)) != NLP_OK ||
        (rc = nlp_vocab_to_blob(m->tgt, &m->tblob, &m->ntblob)) != NLP_OK) {
        nlp_error_set(e, rc, path, 0, NULL);
        goto fail;
    }
    if ((rc = nlp_model_read_params(f, m->p, e)) != NLP_OK)
        goto fail;
    *out = m;
    return NLP_OK;
fail:
    nlp_seq2seq_free(m);
    return rc;
}

int nlp_seq2seq_load(nlp_seq2seq **out, const char *path, nlp_model **file, nlp_error *e)
{
    *out = NULL;
    if (file)
        *file = NULL;
    nlp_model *f;
    int rc = nlp_model_load(&f, path, NLP_SEQ2SEQ_KIND, e);
    if (rc != NLP_OK)
        return rc;
    if ((rc = nlp_seq2seq_from_model(out, f, path, e)) != NLP_OK) {
        nlp_model_free(f);
        return rc;
    }
    if (file)
        *file = f;
    else
        nlp_model_free(f);
    return NLP_OK;
}
