/*
** rnn: tanh RNN, LSTM and GRU layers, stacked and bidirectional, with
** backpropagation through time (see nlp/rnn.h for the contract).
**
** Layout of the cache, per layer and direction, for the T and B of the
** last forward (buffers are sized for max_T and max_B; a (T,B,X) buffer
** uses its first T*B*X floats):
**
**   G   (T,B,G*H)  gate activations after their nonlinearities
**                  (LSTM i f g o, GRU r z n, tanh h)
**   Hs  (T+1,B,H)  states, time-aligned: for the forward direction
**                  Hs[0] = h0 and Hs[t+1] = h after step t; for the reverse
**                  direction Hs[T] = h0 and Hs[t] = h after step t.  Then
**                  the previous state of every step, in time order, is ONE
**                  contiguous (T*B,H) block (Hs[0..T-1] forward, Hs[1..T]
**                  reverse), and the recurrent weight gradient over all
**                  steps is one GEMM with it.
**   Cs  (T+1,B,H)  LSTM cell states, aligned like Hs
**   TC  (T,B,H)    LSTM tanh(c_t)
**   HN  (T,B,H)    GRU W_hn h + b_hn (needed by dL/dr)
**   dG  (T,B,G*H)  backward: gradients of the input-side pre-activations
**   dGh (T,B,G*H)  GRU only: the hidden side (differs in the n block);
**                  for LSTM and tanh it is dG itself
**
** Per layer below the top: Y (T,B,D*H) its output, and with dropout the
** mask and the dropped output Yd that the next layer reads.
**
** The step-wise API (unidirectional stacks only) fills the same buffers one
** step at a time, so after T steps the cache is laid out exactly as after
** a whole-sequence forward of T steps and the weight gradients are the
** same single GEMMs over all steps.  It adds X0 (T,B,I), a copy of the
** step inputs (the caller may reuse its x_t buffer), and the per-layer
** gradient carries sdh, sdc (L,B,H), since its backward visits every layer
** at each step instead of every step of each layer.
*/
#include "nlp/rnn.h"
#include "nlp/alloc.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlp/error.h"
#include "nlp/tensor.h"
#include "fastmath.h"

#define MAX_LAYERS 64

typedef struct rnn_dir {
    int w_ih, w_hh, b_ih, b_hh; /* view indices in params */
    float *G, *Hs, *Cs, *TC, *HN, *dG, *dGh;
} rnn_dir;

typedef struct rnn_layer {
    int in;          /* I_l: input features of this layer */
    rnn_dir dir[2];
    float *Y;        /* (T,B,D*H) output (layers below the top) */
    float *mask;     /* (T,B,D*H) dropout mask (below the top, dropout > 0) */
    float *Yd;       /* (T,B,D*H) Y * mask */
} rnn_layer;

struct nlp_rnn {
    nlp_rnn_config cfg;
    nlp_params *params;
    int G;               /* gates: 1, 4 or 3 */
    int D;               /* directions: 1 or 2 */
    rnn_layer *layer;    /* (L) */
    float *block;        /* the one workspace allocation */
    size_t block_floats;
    float *S;            /* (B,G*H) GRU: W_hh h of one step */
    float *dhn;          /* (B,H) dL/dh flowing to the previous step */
    float *dcn;          /* (B,H) dL/dc flowing to the previous step */
    float *dping, *dpong; /* (T,B,D*H) gradients between layers */
    int *len;            /* (max_B) lengths of the last forward */
    float *X0;           /* (T,B,I) step inputs (D == 1 only) */
    float *sdh, *sdc;    /* (L,B,H) step backward: dL/dh, dL/dc per layer */
    float *sdx;          /* (B,H) step backward: gradient between layers */
    /* The last forward, for backward. */
    int mode;            /* what the cache holds: CACHE_* */
    int T, B;            /* steps and sequences cached (T: steps so far) */
    int dropped;         /* dropout masks were applied */
    int back;            /* step mode: next step backward accepts (besides
                            T-1, which always restarts), INT_MIN before */
    /* nlp_rnn_forward_rows' layer-0 input, during that call only. */
    const float *const *rows;
    size_t rows_ld;
    const int *rows_ids;
};

enum { CACHE_NONE = 0, CACHE_SEQ = 1, CACHE_STEP = 2 };

/* ---- elementwise kernels ------------------------------------------------
** The per-row kernels below hold all the gate arithmetic, on fastmath's
** vectorisable exp, sigmoid and tanh, each compiled per instruction set
** (KERNEL).
*/
#define KERNEL FASTMATH_KERNEL

/*
** LSTM step for one sequence: g (4H) pre-activations in, activations out;
** cp (H) previous cell; cc, tc, h, y (H) out: cell, tanh(cell), state,
** output.
*/
KERNEL void lstm_fwd_row(int H, float *restrict g, const float *restrict cp,
                         float *restrict cc, float *restrict tc, float *restrict h,
                         float *restrict y)
{
#pragma omp simd
    for (int j = 0; j < H; j++) {
        float ig = fm_sigmoid(g[j]), fg = fm_sigmoid(g[H + j]);
        float gg = fm_tanh(g[2 * H + j]), og = fm_sigmoid(g[3 * H + j]);
        float c = fg * cp[j] + ig * gg;
        float th = fm_tanh(c);
        g[j] = ig;
        g[H + j] = fg;
        g[2 * H + j] = gg;
        g[3 * H + j] = og;
        cc[j] = c;
        tc[j] = th;
        h[j] = y[j] = og * th;
    }
}

/*
** GRU step: g (3H) input pre-activations in, [r z n] out; sh (3H) W_hh h;
** bhn (H) b_hn; hp (H) previous state; hn, h, y (H) out.
*/
KERNEL void gru_fwd_row(int H, float *restrict g, const float *restrict sh,
                        const float *restrict bhn, const float *restrict hp,
                        float *restrict hn, float *restrict h, float *restrict y)
{
#pragma omp simd
    for (int j = 0; j < H; j++) {
        float rg = fm_sigmoid(g[j] + sh[j]);
        float zg = fm_sigmoid(g[H + j] + sh[H + j]);
        float hnj = sh[2 * H + j] + bhn[j];
        float ng = fm_tanh(g[2 * H + j] + rg * hnj);
        g[j] = rg;
        g[H + j] = zg;
        g[2 * H + j] = ng;
        hn[j] = hnj;
        h[j] = y[j] = (1.0f - zg) * ng + zg * hp[j];
    }
}

KERNEL void tanh_fwd_row(int H, float *restrict g, float *restrict h, float *restrict y)
{
#pragma omp simd
    for (int j = 0; j < H; j++)
        h[j] = y[j] = g[j] = fm_tanh(g[j]);
}

/*
** LSTM backward of one step for one sequence.  dh (H) in: gradient from the
** next step, set to 0 on return (the GEMM adds the rest); dy (H) from the
** output; dc (H) in/out; g (4H) activations; cp (H) previous cell; tc (H)
** tanh(c); dg (4H) out: pre-activation gradients.
*/
KERNEL void lstm_bwd_row(int H, float *restrict dh, const float *restrict dy,
                         float *restrict dc, const float *restrict g,
                         const float *restrict cp, const float *restrict tc,
                         float *restrict dg)
{
#pragma omp simd
    for (int j = 0; j < H; j++) {
        float ig = g[j], fg = g[H + j], gg = g[2 * H + j], og = g[3 * H + j];
        float d = dh[j] + dy[j], th = tc[j];
        float c = dc[j] + d * og * (1.0f - th * th);
        dg[j] = c * gg * ig * (1.0f - ig);
        dg[H + j] = c * cp[j] * fg * (1.0f - fg);
        dg[2 * H + j] = c * ig * (1.0f - gg * gg);
        dg[3 * H + j] = d * th * og * (1.0f - og);
        dc[j] = c * fg;
        dh[j] = 0.0f;
    }
}

/*
** GRU backward: dh (H) in (from the next step), out: the direct part
** dh*z of the previous state's gradient; dy (H); g (3H) [r z n]; hn (H);
** hp (H) previous state; dg (3H) input side, dgh (3H) hidden side, out.
*/
KERNEL void gru_bwd_row(int H, float *restrict dh, const float *restrict dy,
                        const float *restrict g, const float *restrict hn,
                        const float *restrict hp, float *restrict dg, float *restrict dgh)
{
#pragma omp simd
    for (int j = 0; j < H; j++) {
        float rg = g[j], zg = g[H + j], ng = g[2 * H + j];
        float d = dh[j] + dy[j];
        float dn = d * (1.0f - zg) * (1.0f - ng * ng);
        float dz = d * (hp[j] - ng) * zg * (1.0f - zg);
        float dr = dn * hn[j] * rg * (1.0f - rg);
        dg[j] = dgh[j] = dr;
        dg[H + j] = dgh[H + j] = dz;
        dg[2 * H + j] = dn;
        dgh[2 * H + j] = dn * rg;
        dh[j] = d * zg;
    }
}

KERNEL void tanh_bwd_row(int H, float *restrict dh, const float *restrict dy,
                         const float *restrict g, float *restrict dg)
{
#pragma omp simd
    for (int j = 0; j < H; j++) {
        float d = dh[j] + dy[j];
        dg[j] = d * (1.0f - g[j] * g[j]);
        dh[j] = 0.0f;
    }
}

/* db (n) += sum of the rows of a (rows, n). */
KERNEL void colsum(int n, float *restrict db, const float *restrict a, size_t rows)
{
    for (size_t i = 0; i < rows; i++) {
        const float *ai = a + i * n;
#pragma omp simd
        for (int j = 0; j < n; j++)
            db[j] += ai[j];
    }
}

/* ---- creation ----------------------------------------------------------- */

void nlp_rnn_config_default(nlp_rnn_config *c)
{
    memset(c, 0, sizeof *c);
    c->cell = NLP_RNN_LSTM;
    c->layers = 1;
    c->max_T = 64;
    c->max_B = 32;
}

/*
** Carves the workspace out of one block.  Called with base == NULL it only
** counts the floats needed (and changes nothing), then with the block to
** assign the pointers.  Every buffer starts on a 16-float (64-byte) boundary.
*/
static size_t carve(nlp_rnn *r, float *base, int T, int B)
{
    size_t off = 0;
    int H = r->cfg.hidden, GH = r->G * H, DH = r->D * H, L = r->cfg.layers;
    size_t TB = (size_t)T * B;
#define TAKE(ptr, n)                                       \
    do {                                                   \
        if (base)                                          \
            (ptr) = base + off;                            \
        off += ((size_t)(n) + 15) / 16 * 16;               \
    } while (0)
    for (int l = 0; l < L; l++) {
        rnn_layer *ly = &r->layer[l];
        for (int d = 0; d < r->D; d++) {
            rnn_dir *dr = &ly->dir[d];
            TAKE(dr->G, TB * GH);
            TAKE(dr->dG, TB * GH);
            TAKE(dr->Hs, (TB + B) * H);
            if (base) {
                dr->Cs = dr->TC = dr->HN = NULL;
                dr->dGh = dr->dG;
            }
            if (r->cfg.cell == NLP_RNN_LSTM) {
                TAKE(dr->Cs, (TB + B) * H);
                TAKE(dr->TC, TB * H);
            } else if (r->cfg.cell == NLP_RNN_GRU) {
                TAKE(dr->HN, TB * H);
                TAKE(dr->dGh, TB * GH);
            }
        }
        if (base)
            ly->Y = ly->mask = ly->Yd = NULL;
        if (l < L - 1) {
            TAKE(ly->Y, TB * DH);
            if (r->cfg.dropout > 0) {
                TAKE(ly->mask, TB * DH);
                TAKE(ly->Yd, TB * DH);
            }
        }
    }
    if (base)
        r->S = r->dping = r->dpong = NULL;
    if (r->cfg.cell == NLP_RNN_GRU)
        TAKE(r->S, (size_t)B * GH);
    TAKE(r->dhn, (size_t)B * H);
    TAKE(r->dcn, (size_t)B * H);
    if (L > 1) {
        TAKE(r->dping, TB * DH);
        TAKE(r->dpong, TB * DH);
    }
    if (base)
        r->X0 = r->sdh = r->sdc = r->sdx = NULL;
    if (r->D == 1) { /* the step-wise API */
        TAKE(r->X0, TB * r->cfg.input);
        TAKE(r->sdh, (size_t)L * B * H);
        if (r->cfg.cell == NLP_RNN_LSTM)
            TAKE(r->sdc, (size_t)L * B * H);
        if (L > 1)
            TAKE(r->sdx, (size_t)B * H);
    }
#undef TAKE
    return off;
}

int nlp_rnn_resize(nlp_rnn *r, int max_T, int max_B)
{
    if (max_T < 1 || max_B < 1)
        return NLP_EINVAL;
    /* Refuse sizes whose float count would overflow (generous bound). */
    double est = (double)(max_T + 1) * max_B * r->cfg.hidden * r->G * r->D *
                 r->cfg.layers * 8.0 + (double)max_T * max_B * r->cfg.input;
    if (est > 1e15)
        return NLP_ERANGE;
    size_t n = carve(r, NULL, max_T, max_B);
    float *block = nlp_tensor_alloc(n);
    int *len = nlp_malloc((size_t)max_B * sizeof(int));
    if (!block || !len) {
        nlp_tensor_free(block);
        nlp_free(len);
        return NLP_ENOMEM;
    }
    nlp_tensor_free(r->block);
    nlp_free(r->len);
    r->block = block;
    r->block_floats = n;
    r->len = len;
    r->cfg.max_T = max_T;
    r->cfg.max_B = max_B;
    carve(r, block, max_T, max_B);
    r->mode = CACHE_NONE;
    r->T = r->B = 0;
    return NLP_OK;
}

static int add_view(nlp_params *p, const char *name, const char *what, int l,
                    int rev, int rows, int cols)
{
    char full[NLP_PARAM_NAME_MAX + 64];
    snprintf(full, sizeof full, "%s.%s_l%d%s", name, what, l, rev ? "_reverse" : "");
    int shape[2] = {rows, cols};
    return nlp_params_add(p, full, cols ? 2 : 1, shape);
}

int nlp_rnn_new(nlp_rnn **out, const nlp_rnn_config *cfg, nlp_params *p,
                const char *name)
{
    *out = NULL;
    if (!cfg || !p || !name)
        return NLP_EINVAL;
    if ((cfg->cell != NLP_RNN_TANH && cfg->cell != NLP_RNN_LSTM && cfg->cell != NLP_RNN_GRU) ||
        cfg->input < 1 || cfg->hidden < 1 || cfg->layers < 1 || cfg->layers > MAX_LAYERS ||
        (cfg->bidirectional != 0 && cfg->bidirectional != 1) ||
        !(cfg->dropout >= 0.0f && cfg->dropout < 1.0f) || cfg->max_T < 1 || cfg->max_B < 1)
        return NLP_EINVAL;
    nlp_rnn *r = nlp_calloc(1, sizeof *r);
    if (!r)
        return NLP_ENOMEM;
    r->cfg = *cfg;
    r->params = p;
    r->G = cfg->cell == NLP_RNN_LSTM ? 4 : cfg->cell == NLP_RNN_GRU ? 3 : 1;
    r->D = cfg->bidirectional ? 2 : 1;
    r->layer = nlp_calloc((size_t)cfg->layers, sizeof *r->layer);
    if (!r->layer) {
        nlp_free(r);
        return NLP_ENOMEM;
    }
    int H = cfg->hidden, GH = r->G * H;
    for (int l = 0; l < cfg->layers; l++) {
        rnn_layer *ly = &r->layer[l];
        ly->in = l == 0 ? cfg->input : r->D * H;
        for (int d = 0; d < r->D; d++) {
            rnn_dir *dr = &ly->dir[d];
            int rc;
            if ((rc = dr->w_ih = add_view(p, name, "weight_ih", l, d, GH, ly->in)) < 0 ||
                (rc = dr->w_hh = add_view(p, name, "weight_hh", l, d, GH, H)) < 0 ||
                (rc = dr->b_ih = add_view(p, name, "bias_ih", l, d, GH, 0)) < 0 ||
                (rc = dr->b_hh = add_view(p, name, "bias_hh", l, d, GH, 0)) < 0) {
                nlp_rnn_free(r);
                return rc;
            }
        }
    }
    int rc = nlp_rnn_resize(r, cfg->max_T, cfg->max_B);
    if (rc != NLP_OK) {
        nlp_rnn_free(r);
        return rc;
    }
    *out = r;
    return NLP_OK;
}

int nlp_rnn_new_shared(nlp_rnn **out, const nlp_rnn *like, nlp_params *p, int max_T,
                       int max_B)
{
    *out = NULL;
    if (!like || !p)
        return NLP_EINVAL;
    /* Same layout: the view indices of like must mean the same tensors. */
    const nlp_params *q = like->params;
    if (p->n != q->n || p->nviews != q->nviews)
        return NLP_EINVAL;
    for (int i = 0; i < p->nviews; i++)
        if (p->views[i].offset != q->views[i].offset)
            return NLP_EINVAL;
    if (max_T < 1 || max_B < 1)
        return NLP_EINVAL;
    nlp_rnn *r = nlp_calloc(1, sizeof *r);
    if (!r)
        return NLP_ENOMEM;
    r->cfg = like->cfg;
    r->params = p;
    r->G = like->G;
    r->D = like->D;
    r->layer = nlp_calloc((size_t)like->cfg.layers, sizeof *r->layer);
    if (!r->layer) {
        nlp_free(r);
        return NLP_ENOMEM;
    }
    for (int l = 0; l < like->cfg.layers; l++) {
        r->layer[l].in = like->layer[l].in;
        for (int d = 0; d < like->D; d++) {
            const rnn_dir *s = &like->layer[l].dir[d];
            rnn_dir *dr = &r->layer[l].dir[d];
            dr->w_ih = s->w_ih;
            dr->w_hh = s->w_hh;
            dr->b_ih = s->b_ih;
            dr->b_hh = s->b_hh;
        }
    }
    int rc = nlp_rnn_resize(r, max_T, max_B);
    if (rc != NLP_OK) {
        nlp_rnn_free(r);
        return rc;
    }
    *out = r;
    return NLP_OK;
}

void nlp_rnn_free(nlp_rnn *r)
{
    if (!r)
        return;
    nlp_tensor_free(r->block);
    nlp_free(r->len);
    nlp_free(r->layer);
    nlp_free(r);
}

const nlp_rnn_config *nlp_rnn_get_config(const nlp_rnn *r)
{
    return &r->cfg;
}

int nlp_rnn_output_size(const nlp_rnn *r)
{
    return r->D * r->cfg.hidden;
}

size_t nlp_rnn_state_size(const nlp_rnn *r, int B)
{
    return (size_t)r->cfg.layers * r->D * (size_t)B * r->cfg.hidden;
}

size_t nlp_rnn_workspace_bytes(const nlp_rnn *r)
{
    return r->block_floats * sizeof(float) + (size_t)r->cfg.max_B * sizeof(int) +
           (size_t)r->cfg.layers * sizeof(rnn_layer) + sizeof *r;
}

void nlp_rnn_reset(nlp_rnn *r, nlp_rng *rng)
{
    nlp_params *p = r->params;
    int H = r->cfg.hidden;
    for (int l = 0; l < r->cfg.layers; l++) {
        rnn_layer *ly = &r->layer[l];
        for (int d = 0; d < r->D; d++) {
            rnn_dir *dr = &ly->dir[d];
            float *wih = nlp_params_data(p, dr->w_ih), *whh = nlp_params_data(p, dr->w_hh);
            float *bih = nlp_params_data(p, dr->b_ih), *bhh = nlp_params_data(p, dr->b_hh);
            for (int k = 0; k < r->G; k++) {
                nlp_tensor_xavier(wih + (size_t)k * H * ly->in, H, ly->in, 1.0f, rng);
                nlp_tensor_orthogonal(whh + (size_t)k * H * H, H, H, H, 1.0f, rng);
            }
            memset(bih, 0, (size_t)r->G * H * sizeof(float));
            memset(bhh, 0, (size_t)r->G * H * sizeof(float));
            if (r->cfg.cell == NLP_RNN_LSTM)
                for (int j = 0; j < H; j++)
                    bih[H + j] = 1.0f; /* forget gate */
        }
    }
}

/* ---- forward ------------------------------------------------------------ */

/* Gt (rows, G*H) = the biases of one direction, broadcast: b_ih + b_hh,
** except the GRU n block, whose b_hn is applied inside r * (...). */
static void bias_rows(const nlp_rnn *r, float *Gt, size_t rows, const float *bih,
                      const float *bhh)
{
    const int H = r->cfg.hidden, GH = r->G * H;
    for (size_t i = 0; i < rows; i++) {
        float *g = Gt + i * GH;
        if (r->cfg.cell == NLP_RNN_GRU) {
            for (int j = 0; j < 2 * H; j++)
                g[j] = bih[j] + bhh[j];
            for (int j = 2 * H; j < GH; j++)
                g[j] = bih[j];
        } else
            for (int j = 0; j < GH; j++)
                g[j] = bih[j] + bhh[j];
    }
}

/* Hs[slot] (and Cs[slot]) of one direction = h0 (c0), (B,H) or NULL for 0. */
static void set_state(const nlp_rnn *r, rnn_dir *dr, size_t slot, const float *h0,
                      const float *c0, int B)
{
    const size_t BH = (size_t)B * r->cfg.hidden;
    float *hs0 = dr->Hs + slot * BH;
    if (h0)
        memcpy(hs0, h0, BH * sizeof(float));
    else
        memset(hs0, 0, BH * sizeof(float));
    if (r->cfg.cell == NLP_RNN_LSTM) {
        float *cs0 = dr->Cs + slot * BH;
        if (c0)
            memcpy(cs0, c0, BH * sizeof(float));
        else
            memset(cs0, 0, BH * sizeof(float));
    }
}

/*
** Step t of one direction for B sequences, the recurrence proper: on entry
** G[t] (B,G*H) holds the input projection with biases, on return the gate
** activations; reads the state Hs[prev] (Cs[prev]) and writes Hs[cur]
** (Cs[cur]), TC[t] or HN[t], and the output rows yt (B, ldy).
*/
static void recur_forward(nlp_rnn *r, rnn_dir *dr, const float *Whh, const float *bhh,
                          int t, size_t prev, size_t cur, float *yt, int ldy, int B)
{
    const int H = r->cfg.hidden, GH = r->G * H;
    const size_t BH = (size_t)B * H, BGH = (size_t)B * GH;
    const int cell = r->cfg.cell;
    const int *len = r->len;
    const float *hp = dr->Hs + prev * BH;
    float *hc = dr->Hs + cur * BH;
    float *Gt = dr->G + (size_t)t * BGH;
    if (cell == NLP_RNN_GRU)
        nlp_tensor_gemm(NLP_NOTRANS, NLP_TRANS, B, GH, H, 1.0f, hp, H, Whh, H, 0.0f, r->S, GH);
    else
        nlp_tensor_gemm(NLP_NOTRANS, NLP_TRANS, B, GH, H, 1.0f, hp, H, Whh, H, 1.0f, Gt, GH);
    for (int b = 0; b < B; b++) {
        const float *hpb = hp + (size_t)b * H;
        float *hcb = hc + (size_t)b * H;
        float *g = Gt + (size_t)b * GH;
        float *yb = yt + (size_t)b * ldy;
        if (t >= len[b]) {
            /* Padded step: state unchanged, output zero. */
            memcpy(hcb, hpb, H * sizeof(float));
            if (cell == NLP_RNN_LSTM)
                memcpy(dr->Cs + cur * BH + (size_t)b * H, dr->Cs + prev * BH + (size_t)b * H,
                       H * sizeof(float));
            memset(yb, 0, H * sizeof(float));
            continue;
        }
        if (cell == NLP_RNN_LSTM)
            lstm_fwd_row(H, g, dr->Cs + prev * BH + (size_t)b * H,
                         dr->Cs + cur * BH + (size_t)b * H,
                         dr->TC + (size_t)t * BH + (size_t)b * H, hcb, yb);
        else if (cell == NLP_RNN_GRU)
            gru_fwd_row(H, g, r->S + (size_t)b * GH, bhh + 2 * H, hpb,
                        dr->HN + (size_t)t * BH + (size_t)b * H, hcb, yb);
        else
            tanh_fwd_row(H, g, hcb, yb);
    }
}

/*
** One direction of one layer over all T steps.
**   X (T*B, I) layer input; y (T,B,ldy) output, this direction's columns
**   at y + d*H; h0, c0 (B,H) or NULL; hT, cT (B,H) or NULL.
*/
static void dir_forward(nlp_rnn *r, rnn_dir *dr, int d, const float *X, int I,
                        float *y, int ldy, const float *h0, const float *c0,
                        float *hT, float *cT, int T, int B)
{
    const nlp_params *p = r->params;
    const int H = r->cfg.hidden, GH = r->G * H;
    const size_t BH = (size_t)B * H;
    const float *Wih = nlp_params_data(p, dr->w_ih), *Whh = nlp_params_data(p, dr->w_hh);
    const float *bih = nlp_params_data(p, dr->b_ih), *bhh = nlp_params_data(p, dr->b_hh);

    /* Input projection of all steps at once, biases broadcast first; or,
    ** for nlp_rnn_forward_rows, its rows looked up (X NULL). */
    size_t TB = (size_t)T * B;
    if (X) {
        bias_rows(r, dr->G, TB, bih, bhh);
        nlp_tensor_gemm(NLP_NOTRANS, NLP_TRANS, (int)TB, GH, I, 1.0f, X, I, Wih, I, 1.0f,
                        dr->G, GH);
    } else {
        for (size_t i = 0; i < TB; i++) {
            float *g = dr->G + i * GH;
            int id = r->rows_ids[i];
            if (id < 0)
                memset(g, 0, (size_t)GH * sizeof *g);
            else
                memcpy(g, r->rows[d] + (size_t)id * r->rows_ld, (size_t)GH * sizeof *g);
        }
    }

    set_state(r, dr, d ? (size_t)T : 0, h0, c0, B);
    for (int s = 0; s < T; s++) {
        int t = d ? T - 1 - s : s;
        size_t prev = d ? (size_t)t + 1 : (size_t)t, cur = d ? (size_t)t : (size_t)t + 1;
        recur_forward(r, dr, Whh, bhh, t, prev, cur, y + (size_t)t * B * ldy + (size_t)d * H,
                     ldy, B);
    }
    const float *hlast = dr->Hs + (d ? 0 : (size_t)T * BH);
    if (hT)
        memcpy(hT, hlast, BH * sizeof(float));
    if (cT && r->cfg.cell == NLP_RNN_LSTM)
        memcpy(cT, dr->Cs + (d ? 0 : (size_t)T * BH), BH * sizeof(float));
}

int nlp_rnn_forward(nlp_rnn *r, float *y, float *hT, float *cT,
                    const float *x, const float *h0, const float *c0,
                    const int *lengths, int T, int B, int train, nlp_rng *rng)
{
    if (T < 1 || B < 1)
        return NLP_EINVAL;
    if (T > r->cfg.max_T || B > r->cfg.max_B)
        return NLP_ERANGE;
    if (!x && !r->rows)
        return NLP_EINVAL;
    int use_dropout = train && r->cfg.dropout > 0 && r->cfg.layers > 1;
    if (use_dropout && !rng)
        return NLP_EINVAL;
    if (lengths) {
        for (int b = 0; b < B; b++)
            if (lengths[b] < 0 || lengths[b] > T)
                return NLP_EINVAL;
        memcpy(r->len, lengths, (size_t)B * sizeof(int));
    } else
        for (int b = 0; b < B; b++)
            r->len[b] = T;

    const int H = r->cfg.hidden, D = r->D, L = r->cfg.layers, DH = D * H;
    const size_t BH = (size_t)B * H, TB = (size_t)T * B;
    const float *in = x;
    for (int l = 0; l < L; l++) {
        rnn_layer *ly = &r->layer[l];
        float *out = l == L - 1 ? y : ly->Y;
        for (int d = 0; d < D; d++) {
            size_t k = (size_t)(l * D + d) * BH;
            dir_forward(r, &ly->dir[d], d, in, ly->in, out, DH, h0 ? h0 + k : NULL,
                        c0 ? c0 + k : NULL, hT ? hT + k : NULL, cT ? cT + k : NULL, T, B);
        }
        if (l < L - 1) {
            if (use_dropout) {
                nlp_tensor_dropout_forward(ly->Yd, ly->mask, ly->Y, TB * DH, r->cfg.dropout, rng);
                in = ly->Yd;
            } else
                in = ly->Y;
        }
    }
    r->mode = CACHE_SEQ;
    r->T = T;
    r->B = B;
    r->dropped = use_dropout;
    return NLP_OK;
}

int nlp_rnn_project_input(const nlp_rnn *r, int d, const float *x, int n, float *out,
                          size_t ldo)
{
    const int H = r->cfg.hidden, GH = r->G * H, I = r->cfg.input;
    if (d < 0 || d >= r->D || n < 0 || ldo < (size_t)GH || ldo > INT_MAX)
        return NLP_EINVAL;
    if (n == 0)
        return NLP_OK;
    const rnn_dir *dr = &r->layer[0].dir[d];
    const nlp_params *p = r->params;
    const float *bih = nlp_params_data(p, dr->b_ih), *bhh = nlp_params_data(p, dr->b_hh);
    for (int i = 0; i < n; i++)
        bias_rows(r, out + (size_t)i * ldo, 1, bih, bhh);
    nlp_tensor_gemm(NLP_NOTRANS, NLP_TRANS, n, GH, I, 1.0f, x, I, nlp_params_data(p, dr->w_ih),
                    I, 1.0f, out, (int)ldo);
    return NLP_OK;
}

int nlp_rnn_forward_rows(nlp_rnn *r, float *y, const float *const *rows, size_t ld,
                         const int *ids, const int *lengths, int T, int B)
{
    if (T < 1 || B < 1 || !rows || !ids || ld < (size_t)r->G * r->cfg.hidden)
        return NLP_EINVAL;
    for (int d = 0; d < r->D; d++)
        if (!rows[d])
            return NLP_EINVAL;
    if (T > r->cfg.max_T || B > r->cfg.max_B)
        return NLP_ERANGE;
    r->rows = rows;
    r->rows_ld = ld;
    r->rows_ids = ids;
    /* Layer 0 reads its input through the rows (X NULL); the cache cannot
    ** serve a backward (no x), so it is marked empty afterwards. */
    int rc = nlp_rnn_forward(r, y, NULL, NULL, NULL, NULL, NULL, lengths, T, B, 0, NULL);
    r->rows = NULL;
    r->rows_ids = NULL;
    r->mode = CACHE_NONE;
    return rc;
}

/* ---- backward ----------------------------------------------------------- */

/*
** Backward of step t of one direction (the state before it in Hs[prev],
** Cs[prev]): from dyt (B, ldy), the output's gradient, and dhn, dcn (B,H),
** the gradient of the state after the step, fills dG[t] (and dGh[t]) and
** replaces dhn, dcn by the gradient of the state before the step.
*/
static void recur_backward(nlp_rnn *r, rnn_dir *dr, const float *Whh, int t, size_t prev,
                           const float *dyt, int ldy, float *dhn, float *dcn, int B)
{
    const int H = r->cfg.hidden, GH = r->G * H;
    const size_t BH = (size_t)B * H, BGH = (size_t)B * GH;
    const int cell = r->cfg.cell;
    const int *len = r->len;
    const float *hp = dr->Hs + prev * BH;
    const float *Gt = dr->G + (size_t)t * BGH;
    float *dGt = dr->dG + (size_t)t * BGH;
    float *dGht = dr->dGh + (size_t)t * BGH;
    for (int b = 0; b < B; b++) {
        float *dgb = dGt + (size_t)b * GH;
        float *dhnb = dhn + (size_t)b * H;
        if (t >= len[b]) {
            /* Padded: the state passed through unchanged, so does its
               gradient (dhn, dcn keep their rows); no parameter use. */
            memset(dgb, 0, GH * sizeof(float));
            if (dGht != dGt)
                memset(dGht + (size_t)b * GH, 0, GH * sizeof(float));
            continue;
        }
        const float *g = Gt + (size_t)b * GH;
        const float *dyb = dyt + (size_t)b * ldy;
        if (cell == NLP_RNN_LSTM)
            lstm_bwd_row(H, dhnb, dyb, dcn + (size_t)b * H, g,
                         dr->Cs + prev * BH + (size_t)b * H,
                         dr->TC + (size_t)t * BH + (size_t)b * H, dgb);
        else if (cell == NLP_RNN_GRU)
            gru_bwd_row(H, dhnb, dyb, g, dr->HN + (size_t)t * BH + (size_t)b * H,
                        hp + (size_t)b * H, dgb, dGht + (size_t)b * GH);
        else
            tanh_bwd_row(H, dhnb, dyb, g, dgb);
    }
    /* dL/dh_prev += dGh_t W_hh; padded rows of dGh are zero. */
    nlp_tensor_gemm(NLP_NOTRANS, NLP_NOTRANS, B, H, GH, 1.0f, dGht, GH, Whh, H, 1.0f, dhn, H);
}

/*
** Backward recurrence of one direction of one layer: fills dG (and dGh)
** for every step, from dy (T,B,ldy) (this direction's columns at
** dy + d*H) and the state gradients dhT, dcT (B,H) or NULL; adds the
** gradient of h0, c0 into dh0, dc0 (B,H) when not NULL.
*/
static void dir_backward(nlp_rnn *r, rnn_dir *dr, int d, const float *dy, int ldy,
                         const float *dhT, const float *dcT, float *dh0, float *dc0,
                         int T, int B)
{
    const int H = r->cfg.hidden;
    const size_t BH = (size_t)B * H;
    const float *Whh = nlp_params_data(r->params, dr->w_hh);
    const int cell = r->cfg.cell;
    float *dhn = r->dhn, *dcn = r->dcn;

    if (dhT)
        memcpy(dhn, dhT, BH * sizeof(float));
    else
        memset(dhn, 0, BH * sizeof(float));
    if (cell == NLP_RNN_LSTM) {
        if (dcT)
            memcpy(dcn, dcT, BH * sizeof(float));
        else
            memset(dcn, 0, BH * sizeof(float));
    }
    for (int s = T - 1; s >= 0; s--) {
        int t = d ? T - 1 - s : s;
        size_t prev = d ? (size_t)t + 1 : (size_t)t;
        recur_backward(r, dr, Whh, t, prev, dy + (size_t)t * B * ldy + (size_t)d * H, ldy,
                       dhn, dcn, B);
    }
    if (dh0)
        nlp_tensor_axpy(BH, 1.0f, dhn, dh0);
    if (dc0 && cell == NLP_RNN_LSTM)
        nlp_tensor_axpy(BH, 1.0f, dcn, dc0);
}

/* Weight and bias gradients of one direction over all steps, and dX. */
static void dir_weights(nlp_rnn *r, rnn_dir *dr, int d, const float *X, int I,
                        float *dX, float beta, int T, int B)
{
    nlp_params *p = r->params;
    const int H = r->cfg.hidden, GH = r->G * H;
    const int TB = T * B;
    const float *Wih = nlp_params_data(p, dr->w_ih);
    float *dWih = nlp_params_grad(p, dr->w_ih), *dWhh = nlp_params_grad(p, dr->w_hh);
    float *dbih = nlp_params_grad(p, dr->b_ih), *dbhh = nlp_params_grad(p, dr->b_hh);
    const float *Hprev = dr->Hs + (d ? (size_t)B * H : 0);

    nlp_tensor_gemm(NLP_TRANS, NLP_NOTRANS, GH, H, TB, 1.0f, dr->dGh, GH, Hprev, H, 1.0f, dWhh, H);
    nlp_tensor_gemm(NLP_TRANS, NLP_NOTRANS, GH, I, TB, 1.0f, dr->dG, GH, X, I, 1.0f, dWih, I);
    colsum(GH, dbih, dr->dG, (size_t)TB);
    colsum(GH, dbhh, dr->dGh, (size_t)TB);
    if (dX)
        nlp_tensor_gemm(NLP_NOTRANS, NLP_NOTRANS, TB, I, GH, 1.0f, dr->dG, GH, Wih, I, beta, dX, I);
}

int nlp_rnn_backward(nlp_rnn *r, float *dx, float *dh0, float *dc0,
                     const float *dy, const float *dhT, const float *dcT,
                     const float *x)
{
    if (r->mode != CACHE_SEQ)
        return NLP_EINVAL;
    const int T = r->T, B = r->B, H = r->cfg.hidden, D = r->D, L = r->cfg.layers;
    const int DH = D * H;
    const size_t BH = (size_t)B * H, TB = (size_t)T * B;
    const float *dout = dy; /* gradient wrt this layer's output */
    for (int l = L - 1; l >= 0; l--) {
        rnn_layer *ly = &r->layer[l];
        for (int d = 0; d < D; d++) {
            size_t k = (size_t)(l * D + d) * BH;
            dir_backward(r, &ly->dir[d], d, dout, DH, dhT ? dhT + k : NULL,
                         dcT ? dcT + k : NULL, dh0 ? dh0 + k : NULL, dc0 ? dc0 + k : NULL,
                         T, B);
        }
        /* This layer's input and where its gradient goes. */
        const float *X;
        float *dX;
        float beta;
        if (l == 0) {
            X = x;
            dX = dx;
            beta = 1.0f;
        } else {
            rnn_layer *below = &r->layer[l - 1];
            X = r->dropped ? below->Yd : below->Y;
            dX = (L - 1 - l) % 2 ? r->dpong : r->dping;
            beta = 0.0f;
        }
        for (int d = 0; d < D; d++)
            dir_weights(r, &ly->dir[d], d, X, ly->in, dX, d ? 1.0f : beta, T, B);
        if (l > 0) {
            if (r->dropped)
                nlp_tensor_dropout_backward(dX, dX, r->layer[l - 1].mask, TB * DH);
            dout = dX;
        }
    }
    return NLP_OK;
}

/* ---- step-wise ------------------------------------------------------------ */

int nlp_rnn_step_begin(nlp_rnn *r, const float *h0, const float *c0, const int *lengths,
                       int B, int train)
{
    if (r->D != 1 || B < 1)
        return NLP_EINVAL;
    if (B > r->cfg.max_B)
        return NLP_ERANGE;
    if (lengths) {
        for (int b = 0; b < B; b++)
            if (lengths[b] < 0 || lengths[b] > r->cfg.max_T)
                return NLP_EINVAL;
        memcpy(r->len, lengths, (size_t)B * sizeof(int));
    } else
        for (int b = 0; b < B; b++)
            r->len[b] = r->cfg.max_T; /* never reached: no step is padded */
    const size_t BH = (size_t)B * r->cfg.hidden;
    for (int l = 0; l < r->cfg.layers; l++)
        set_state(r, &r->layer[l].dir[0], 0, h0 ? h0 + l * BH : NULL, c0 ? c0 + l * BH : NULL,
                  B);
    r->mode = CACHE_STEP;
    r->T = 0;
    r->B = B;
    r->dropped = train && r->cfg.dropout > 0 && r->cfg.layers > 1;
    r->back = INT_MIN;
    return NLP_OK;
}

int nlp_rnn_step_forward(nlp_rnn *r, int t, float *y_t, float *h_t, float *c_t,
                         const float *x_t, nlp_rng *rng)
{
    if (r->mode != CACHE_STEP || r->back != INT_MIN || t != r->T || !y_t || !x_t)
        return NLP_EINVAL;
    if (t >= r->cfg.max_T)
        return NLP_ERANGE;
    if (r->dropped && !rng)
        return NLP_EINVAL;
    const nlp_params *p = r->params;
    const int B = r->B, H = r->cfg.hidden, GH = r->G * H, L = r->cfg.layers;
    const size_t BH = (size_t)B * H, BGH = (size_t)B * GH, BI = (size_t)B * r->cfg.input;
    /* Kept for the weight gradient; x_t may be reused (or be y_t). */
    float *in = r->X0 + (size_t)t * BI;
    memcpy(in, x_t, BI * sizeof(float));
    for (int l = 0; l < L; l++) {
        rnn_layer *ly = &r->layer[l];
        rnn_dir *dr = &ly->dir[0];
        const float *Wih = nlp_params_data(p, dr->w_ih), *Whh = nlp_params_data(p, dr->w_hh);
        const float *bih = nlp_params_data(p, dr->b_ih), *bhh = nlp_params_data(p, dr->b_hh);
        float *Gt = dr->G + (size_t)t * BGH;
        bias_rows(r, Gt, (size_t)B, bih, bhh);
        nlp_tensor_gemm(NLP_NOTRANS, NLP_TRANS, B, GH, ly->in, 1.0f, in, ly->in, Wih, ly->in,
                        1.0f, Gt, GH);
        float *out = l == L - 1 ? y_t : ly->Y + (size_t)t * BH;
        recur_forward(r, dr, Whh, bhh, t, (size_t)t, (size_t)t + 1, out, H, B);
        if (h_t)
            memcpy(h_t + l * BH, dr->Hs + ((size_t)t + 1) * BH, BH * sizeof(float));
        if (c_t && r->cfg.cell == NLP_RNN_LSTM)
            memcpy(c_t + l * BH, dr->Cs + ((size_t)t + 1) * BH, BH * sizeof(float));
        if (l < L - 1) {
            if (r->dropped) {
                in = ly->Yd + (size_t)t * BH;
                nlp_tensor_dropout_forward(in, ly->mask + (size_t)t * BH, out, BH,
                                           r->cfg.dropout, rng);
            } else
                in = out;
        }
    }
    r->T = t + 1;
    return NLP_OK;
}

int nlp_rnn_step_backward(nlp_rnn *r, int t, float *dx_t, float *dh0, float *dc0,
                          const float *dy_t, const float *dh_t, const float *dc_t)
{
    if (r->mode != CACHE_STEP || t < 0 || (t != r->T - 1 && t != r->back) || !dy_t)
        return NLP_EINVAL;
    nlp_params *p = r->params;
    const int T = r->T, B = r->B, H = r->cfg.hidden, GH = r->G * H, L = r->cfg.layers;
    const int lstm = r->cfg.cell == NLP_RNN_LSTM;
    const size_t BH = (size_t)B * H, BGH = (size_t)B * GH;
    if (t == T - 1) { /* (re)start: nothing flows in from beyond the last step */
        memset(r->sdh, 0, (size_t)L * BH * sizeof(float));
        if (lstm)
            memset(r->sdc, 0, (size_t)L * BH * sizeof(float));
    }
    const float *dout = dy_t; /* gradient wrt this layer's output at step t */
    for (int l = L - 1; l >= 0; l--) {
        rnn_layer *ly = &r->layer[l];
        rnn_dir *dr = &ly->dir[0];
        const float *Wih = nlp_params_data(p, dr->w_ih), *Whh = nlp_params_data(p, dr->w_hh);
        float *dhn = r->sdh + l * BH, *dcn = lstm ? r->sdc + l * BH : NULL;
        if (dh_t)
            nlp_tensor_axpy(BH, 1.0f, dh_t + l * BH, dhn);
        if (dc_t && lstm)
            nlp_tensor_axpy(BH, 1.0f, dc_t + l * BH, dcn);
        recur_backward(r, dr, Whh, t, (size_t)t, dout, H, dhn, dcn, B);
        const float *dGt = dr->dG + (size_t)t * BGH;
        if (l > 0) {
            nlp_tensor_gemm(NLP_NOTRANS, NLP_NOTRANS, B, H, GH, 1.0f, dGt, GH, Wih, H, 0.0f,
                            r->sdx, H);
            if (r->dropped)
                nlp_tensor_dropout_backward(r->sdx, r->sdx, r->layer[l - 1].mask + (size_t)t * BH,
                                            BH);
            dout = r->sdx;
        } else if (dx_t)
            nlp_tensor_gemm(NLP_NOTRANS, NLP_NOTRANS, B, ly->in, GH, 1.0f, dGt, GH, Wih, ly->in,
                            1.0f, dx_t, ly->in);
    }
    if (t == 0) {
        /* Every step's dG is in place: the weight gradients of all steps,
           one GEMM each, as in the whole-sequence backward. */
        for (int l = 0; l < L; l++) {
            rnn_layer *ly = &r->layer[l];
            const float *X = l == 0 ? r->X0
                             : r->dropped ? r->layer[l - 1].Yd : r->layer[l - 1].Y;
            dir_weights(r, &ly->dir[0], 0, X, ly->in, NULL, 0.0f, T, B);
        }
        if (dh0)
            nlp_tensor_axpy((size_t)L * BH, 1.0f, r->sdh, dh0);
        if (dc0 && lstm)
            nlp_tensor_axpy((size_t)L * BH, 1.0f, r->sdc, dc0);
    }
    r->back = t - 1;
    return NLP_OK;
}

/* ---- cell names ------------------------------------------------------ */

int nlp_rnn_cell_parse(const char *name, nlp_rnn_cell *cell)
{
    if (strcmp(name, "lstm") == 0)
        *cell = NLP_RNN_LSTM;
    else if (strcmp(name, "gru") == 0)
        *cell = NLP_RNN_GRU;
    else if (strcmp(name, "rnn") == 0 || strcmp(name, "tanh") == 0)
        *cell = NLP_RNN_TANH;
    else
        return NLP_EINVAL;
    return NLP_OK;
}

const char *nlp_rnn_cell_name(nlp_rnn_cell cell)
{
    switch (cell) {
    case NLP_RNN_LSTM: return "lstm";
    case NLP_RNN_GRU: return "gru";
    case NLP_RNN_TANH: return "rnn";
    }
    return "?";
}
