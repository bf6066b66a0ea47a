/*
** seq2seq_common: the training task, the search and the corpus reader the
** seq2seq commands share.  See seq2seq_common.h.
*/
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "seq2seq_common.h"
#include "nlp/alloc.h"
#include "nlp/bleu.h"
#include "nlp/progress.h"
#include "nlp/tensor.h"

/* ==== Commands =========================================================== */

void s2s_command_help(void (*help)(void))
{
    help();
    printf("  -h, --help                 display this help and exit\n"
           "      --version              output version information and exit\n");
    exit(CLI_EXIT_OK);
}

nlp_seq2seq *s2s_load_model(const char *model, int threads)
{
    nlp_tensor_set_threads(threads);
    nlp_error e;
    nlp_seq2seq *m;
    if (nlp_seq2seq_load(&m, model, NULL, &e) != NLP_OK)
        cli_die_error(&e);
    return m;
}

/* ==== Reading ============================================================ */

nlp_pairs *s2s_read_pairs(const char *path, const char *src, const char *tgt)
{
    nlp_pairs *p;
    nlp_error e;
    int rc;
    if (!src) {
        const char *in = path ? path : "-";
        FILE *f = cli_open_read(in);
        rc = nlp_pairs_read(&p, f, cli_input_name(in), &e);
        cli_close_read(f);
    } else {
        FILE *fs = cli_open_read(src), *ft = cli_open_read(tgt);
        rc = nlp_pairs_read_files(&p, fs, cli_input_name(src), ft, cli_input_name(tgt), &e);
        cli_close_read(fs);
        cli_close_read(ft);
    }
    if (rc != NLP_OK)
        cli_die_error(&e);
    return p;
}

/* ==== Translation ======================================================== */

void s2s_search_config_default(s2s_search_config *c)
{
    c->beam = 5;
    c->n_best = 1;
    c->length_penalty = 0;
    c->max_len_ratio = 2;
    c->want_attention = 0;
}

int s2s_max_len(const s2s_search_config *c, int len)
{
    double m = ceil(c->max_len_ratio * len) + S2S_MAX_LEN_EXTRA;
    return m > NLP_PAIRS_MAX_TOKENS ? NLP_PAIRS_MAX_TOKENS : (int)m;
}

int s2s_search_new(s2s_search **out, nlp_seq2seq *m, const s2s_search_config *c, int max_n,
                   int max_S, nlp_error *e)
{
    *out = NULL;
    if (max_n < 1 || max_S < 1 || (long long)max_n * c->beam > INT_MAX
        || (long long)max_n * max_S > INT_MAX / 4)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "search of %d sentences of %d tokens",
                             max_n, max_S);
    s2s_search *s = calloc(1, sizeof *s);
    if (!s)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    s->m = m;
    s->cfg = *c;
    s->max_n = max_n;
    s->max_S = max_S;
    s->max_len = s2s_max_len(c, max_S);
    /* The attention rows kept for every hypothesis take rows x length x
    ** source floats: a very long source gets shorter translations rather
    ** than an absurd allocation. */
    if (c->want_attention) {
        double cap = S2S_ATTENTION_BUDGET / ((double)max_n * c->beam * max_S);
        if (cap < s->max_len)
            s->max_len = cap < 1 ? 1 : (int)cap;
    }
    nlp_beam_config bc;
    nlp_beam_config_default(&bc);
    bc.V = (int)nlp_vocab_size(nlp_seq2seq_tgt_vocab(m));
    bc.k = c->beam;
    bc.n_best = c->n_best;
    bc.length_penalty = c->length_penalty;
    bc.bos = NLP_SEQ2SEQ_BOS;
    bc.eos = NLP_SEQ2SEQ_EOS;
    bc.pad = NLP_SEQ2SEQ_PAD;
    static const int ban[] = {NLP_SEQ2SEQ_BOS};
    bc.ban = ban;
    bc.n_ban = 1;
    bc.want_attention = c->want_attention;
    int rc = nlp_beam_new(&s->beam, &bc, max_n, max_S, s->max_len);
    if (rc != NLP_OK) {
        nlp_beam_config_check(&bc, e);
        s2s_search_free(s);
        return rc == NLP_EINVAL ? rc : nlp_error_set(e, rc, NULL, 0, "beam search: %s",
                                                     nlp_error_string(rc));
    }
    rc = nlp_seq2seq_decoder_new(&s->dec, m, max_n, max_S, max_n * c->beam);
    s->src = malloc((size_t)max_n * (size_t)max_S * sizeof *s->src);
    s->max_len_of = malloc((size_t)max_n * sizeof *s->max_len_of);
    if (rc != NLP_OK || !s->src || !s->max_len_of) {
        s2s_search_free(s);
        return nlp_error_set(e, rc == NLP_OK ? NLP_ENOMEM : rc, NULL, 0, "decoder: %s",
                             nlp_error_string(rc == NLP_OK ? NLP_ENOMEM : rc));
    }
    *out = s;
    return NLP_OK;
}

void s2s_search_free(s2s_search *s)
{
    if (!s)
        return;
    nlp_seq2seq_decoder_free(s->dec);
    nlp_beam_free(s->beam);
    free(s->src);
    free(s->max_len_of);
    free(s);
}

int s2s_search_run(s2s_search *s, const int *const *ids, const int *len, int n, nlp_error *e)
{
    if (n < 1 || n > s->max_n)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "search of %d sentences (at most %d)", n,
                             s->max_n);
    int S = 1;
    for (int i = 0; i < n; i++) {
        if (len[i] < 0 || len[i] > s->max_S)
            return nlp_error_set(e, NLP_EINVAL, NULL, 0, "a source of %d tokens (at most %d)",
                                 len[i], s->max_S);
        S = len[i] > S ? len[i] : S;
    }
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < S; t++)
            s->src[t * n + i] = t < len[i] ? ids[i][t] : NLP_SEQ2SEQ_PAD;
        s->max_len_of[i] = s2s_max_len(&s->cfg, len[i]);
        if (s->max_len_of[i] > s->max_len)
            s->max_len_of[i] = s->max_len;
    }
    int rc = nlp_seq2seq_decoder_begin(s->dec, s->src, len, S, n, n * s->cfg.beam, e);
    if (rc != NLP_OK)
        return rc;
    nlp_beam_ops ops;
    nlp_seq2seq_decoder_ops(s->dec, &ops);
    return nlp_beam_search(s->beam, &ops, n, len, s->max_len_of, e);
}

/* ==== Training =========================================================== */

/* Seeds of the training's random streams: the run's seed xor these. */
#define BATCH_STREAM UINT64_C(0x6261746368657321)   /* "batches!" */
#define DROPOUT_STREAM UINT64_C(0x64726f706f757421) /* "dropout!" */

typedef struct worker {
    nlp_seq2seq_work *work;
    nlp_rng rng;            /* this step's dropout masks */
} worker;

struct s2s_trainer {
    nlp_seq2seq *m;
    s2s_train_config cfg;
    const nlp_pairs *train, *dev, *dev_raw;
    nlp_pairs_batcher *batches;
    nlp_pairs_batch *cur;       /* the current training batch, filled */
    nlp_rng rng;                /* draws each step's dropout seeds */
    worker *wk;
    int nwk;
    s2s_search *search;         /* greedy, for BLEU */
    nlp_bleu *bleu;
    const char **hyp_words, **ref_words;
    int hyp_cap, ref_cap;
    nlp_train_task task;
    double tokens, seconds, mark;
};

static nlp_seq2seq_batch as_model_batch(const nlp_pairs_batch *b)
{
    nlp_seq2seq_batch s = {b->B, b->S, b->T, b->src, b->src_len, b->tgt_in, b->tgt_out,
                           b->tgt_len};
    return s;
}

static int fill_current(s2s_trainer *t)
{
    return nlp_pairs_batcher_fill(t->batches, 0, nlp_pairs_batcher_rows(t->batches), t->cur);
}

static void workers_free(s2s_trainer *t)
{
    for (int i = 0; i < t->nwk; i++)
        nlp_seq2seq_work_free(t->wk[i].work);
    free(t->wk);
    t->wk = NULL;
    t->nwk = 0;
}

static int task_prepare_workers(void *ctx, int W, nlp_error *e)
{
    s2s_trainer *t = ctx;
    int B, S, T;
    nlp_pairs_batcher_max(t->batches, &B, &S, &T);
    if (W < 1 || W > B)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "%d training threads for batches of at "
                             "most %d pairs: every thread needs at least one", W, B);
    workers_free(t);
    t->wk = calloc((size_t)W, sizeof *t->wk);
    if (!t->wk)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    t->nwk = W;
    for (int i = 0; i < W; i++) {
        /* A share is at most ceil(B / W) rows. */
        int rc = nlp_seq2seq_work_new(&t->wk[i].work, t->m, (B + W - 1) / W, S, T);
        if (rc != NLP_OK) {
            workers_free(t);
            return nlp_error_set(e, rc, NULL, 0, "training workspace: %s", nlp_error_string(rc));
        }
    }
    return NLP_OK;
}

/*
** Worker i's share: rows [i*B/W, (i+1)*B/W) of the current batch, the
** gradient of the whole batch's mean token loss.  Its dropout rng is seeded
** from the (i+1)-th draw of t->rng, which step_end then makes: the masks
** depend on the run and W only, and a checkpoint needs only t->rng.
*/
static int task_step_share(void *ctx, int i, int W, float *grad, double *loss, double *count,
                           nlp_error *e)
{
    s2s_trainer *t = ctx;
    if (W != t->nwk || i < 0 || i >= W)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "training thread %d of %d: prepared for "
                             "%d", i, W, t->nwk);
    if (i == 0)
        t->mark = nlp_progress_now();
    const nlp_pairs_batch *b = t->cur;
    int b0, nb;
    nlp_train_share(i, W, b->B, &b0, &nb);
    *loss = 0;
    *count = 0;
    if (nb == 0)
        return NLP_OK;
    nlp_train_share_rng(&t->wk[i].rng, &t->rng, i);
    nlp_seq2seq_batch sb = as_model_batch(b);
    double sum;
    size_t n;
    int rc = nlp_seq2seq_loss(t->wk[i].work, &sb, b0, nb, grad, 1.0f / (float)b->tokens, 1,
                              &t->wk[i].rng, &sum, &n, NULL, e);
    if (rc != NLP_OK)
        return rc;
    *loss = n ? sum / (double)n : 0;
    *count = (double)n;
    return NLP_OK;
}

static int task_step_end(void *ctx, int W, nlp_error *e)
{
    s2s_trainer *t = ctx;
    if (W != t->nwk)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "step_end for %d threads, prepared for %d",
                             W, t->nwk);
    nlp_train_share_rng_end(&t->rng, W);
    t->tokens += (double)t->cur->tokens;
    int last = nlp_pairs_batcher_advance(t->batches);
    int rc = fill_current(t);
    t->seconds += nlp_progress_now() - t->mark;
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "a batch beyond its capacity");
    return last;
}

/* The serial step is the parallel one with one worker. */
static int task_step(void *ctx, double *loss, double *count, nlp_error *e)
{
    s2s_trainer *t = ctx;
    if (t->nwk != 1) {
        int rc = task_prepare_workers(t, 1, e);
        if (rc != NLP_OK)
            return rc;
    }
    int rc = task_step_share(t, 0, 1, nlp_seq2seq_params(t->m)->grad, loss, count, e);
    if (rc != NLP_OK)
        return rc;
    return task_step_end(t, 1, e);
}

static int grow_words(const char ***w, int *cap, int n)
{
    if (n <= *cap)
        return NLP_OK;
    const char **q = realloc(*w, (size_t)n * sizeof *q);
    if (!q)
        return NLP_ENOMEM;
    *w = q;
    *cap = n;
    return NLP_OK;
}

/* BLEU (tokenised as the data is) of greedy translations of dev. */
static int dev_bleu(s2s_trainer *t, double *bleu, nlp_error *e)
{
    nlp_bleu_stats st = {0};
    const nlp_vocab *tv = nlp_seq2seq_tgt_vocab(t->m);
    const nlp_pairs *d = t->dev, *raw = t->dev_raw;
    const int nb = t->cfg.eval_batch;
    const int *ids[nb > 0 ? nb : 1];
    int len[nb > 0 ? nb : 1];
    for (long lo = 0; lo < d->n; lo += nb) {
        int n = (int)(d->n - lo < nb ? d->n - lo : nb);
        for (int i = 0; i < n; i++) {
            ids[i] = d->src + d->src_start[lo + i];
            len[i] = nlp_pairs_src_len(d, lo + i);
        }
        int rc = s2s_search_run(t->search, ids, len, n, e);
        if (rc != NLP_OK)
            return rc;
        for (int i = 0; i < n; i++) {
            nlp_beam_hyp h;
            nlp_beam_result(t->search->beam, i, 0, &h);
            const long k = lo + i;
            const int nr = nlp_pairs_tgt_len(raw, k);
            if (grow_words(&t->hyp_words, &t->hyp_cap, h.len + 1) != NLP_OK
                || grow_words(&t->ref_words, &t->ref_cap, nr) != NLP_OK)
                return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
            for (int j = 0; j < h.len; j++)
                t->hyp_words[j] = nlp_vocab_word(tv, h.tokens[j]);
            for (int j = 0; j < nr; j++)
                t->ref_words[j] = nlp_vocab_word(raw->tgt_words, raw->tgt[raw->tgt_start[k] + j]);
            if ((rc = nlp_bleu_add_tokens(t->bleu, &st, t->hyp_words, (size_t)h.len,
                                          t->ref_words, (size_t)nr)) != NLP_OK)
                return nlp_error_set(e, rc, NULL, 0, "BLEU: %s", nlp_error_string(rc));
        }
    }
    nlp_bleu_result r;
    nlp_bleu_score(&st, &r);
    *bleu = r.bleu;
    return NLP_OK;
}

int s2s_forced_logp(nlp_seq2seq *m, const nlp_pairs *dev, int batch, double *sum,
                    size_t *tokens, double *logp, nlp_error *e)
{
    nlp_pairs_batch_config c;
    nlp_pairs_batch_config_default(&c);
    c.batch = batch;
    c.pool = 0;
    c.shuffle = 0;
    nlp_pairs_batcher *bt = NULL;
    nlp_pairs_batch *b = NULL;
    nlp_seq2seq_work *w = NULL;
    double *lp = malloc((size_t)batch * sizeof *lp);
    int B, S, T;
    int rc = nlp_pairs_batcher_new(&bt, dev, &c, 1, e);
    if (rc == NLP_OK) {
        nlp_pairs_batcher_max(bt, &B, &S, &T);
        rc = nlp_pairs_batch_new(&b, B, S, T);
        if (rc == NLP_OK)
            rc = nlp_seq2seq_work_new(&w, m, B, S, T);
        if (rc != NLP_OK || !lp)
            rc = nlp_error_set(e, rc == NLP_OK ? NLP_ENOMEM : rc, NULL, 0, "scoring: %s",
                               nlp_error_string(rc == NLP_OK ? NLP_ENOMEM : rc));
    }
    *sum = 0;
    *tokens = 0;
    for (long k = 0, nb = rc == NLP_OK ? nlp_pairs_batcher_batches(bt) : 0; k < nb; k++) {
        if ((rc = nlp_pairs_batcher_fill(bt, 0, nlp_pairs_batcher_rows(bt), b)) != NLP_OK) {
            nlp_error_set(e, rc, NULL, 0, "a batch beyond its capacity");
            break;
        }
        nlp_seq2seq_batch sb = as_model_batch(b);
        size_t n;
        rc = nlp_seq2seq_loss(w, &sb, 0, b->B, NULL, 1, 0, NULL, NULL, &n, lp, e);
        if (rc != NLP_OK)
            break;
        for (int r = 0; r < b->B; r++) {
            *sum += lp[r];
            if (logp)
                logp[b->index[r]] = lp[r];
        }
        *tokens += n;
        nlp_pairs_batcher_advance(bt);
    }
    free(lp);
    nlp_seq2seq_work_free(w);
    nlp_pairs_batch_free(b);
    nlp_pairs_batcher_free(bt);
    return rc;
}

static int task_evaluate(void *ctx, double *metric, nlp_error *e)
{
    s2s_trainer *t = ctx;
    double sum;
    size_t n;
    int rc = s2s_forced_logp(t->m, t->dev, t->cfg.eval_batch, &sum, &n, NULL, e);
    if (rc != NLP_OK)
        return rc;
    const double ppl = n ? exp(-sum / (double)n) : NAN;
    if (t->cfg.metric == S2S_METRIC_PPL) {
        *metric = ppl;
        return NLP_OK;
    }
    if ((rc = dev_bleu(t, metric, e)) != NLP_OK)
        return rc;
    if (t->cfg.log)
        fprintf(t->cfg.log, "seq2seq: validation: perplexity %.3f, BLEU %.2f (greedy)\n", ppl,
                *metric);
    return NLP_OK;
}

static double task_epoch_fraction(void *ctx)
{
    s2s_trainer *t = ctx;
    return (double)nlp_pairs_batcher_position(t->batches)
           / (double)nlp_pairs_batcher_batches(t->batches);
}

static int task_save_model(void *ctx, nlp_model *f, nlp_error *e)
{
    s2s_trainer *t = ctx;
    int rc = nlp_seq2seq_add_to_model(t->m, f);
    return rc == NLP_OK ? NLP_OK : nlp_error_set(e, rc, NULL, 0, NULL);
}

static int task_save_state(void *ctx, nlp_model *f, nlp_error *e)
{
    s2s_trainer *t = ctx;
    int rc = nlp_pairs_batcher_save(t->batches, f, "seq2seq.data", e);
    if (rc == NLP_OK && (rc = nlp_train_add_rng(f, "seq2seq.rng", &t->rng)) != NLP_OK)
        nlp_error_set(e, rc, NULL, 0, NULL);
    return rc;
}

static int task_load_state(void *ctx, const nlp_model *f, nlp_error *e)
{
    s2s_trainer *t = ctx;
    nlp_rng r;
    int rc = nlp_train_read_rng(f, "seq2seq.rng", &r, e);
    if (rc == NLP_OK)
        rc = nlp_pairs_batcher_load(t->batches, f, "seq2seq.data", e);
    if (rc != NLP_OK)
        return rc;
    t->rng = r;
    if ((rc = fill_current(t)) != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, "a batch beyond its capacity");
    return NLP_OK;
}

int s2s_trainer_new(s2s_trainer **out, nlp_seq2seq *m, const s2s_train_config *c,
                    const nlp_pairs *train, const nlp_pairs *dev, const nlp_pairs *dev_raw,
                    nlp_error *e)
{
    *out = NULL;
    s2s_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return nlp_error_set(e, NLP_ENOMEM, NULL, 0, NULL);
    t->m = m;
    t->cfg = *c;
    t->train = train;
    t->dev = dev;
    t->dev_raw = dev_raw;
    /* The weights were drawn from a stream seeded with seed itself: the
    ** batch order and the dropout masks take streams of their own. */
    nlp_rng_seed(&t->rng, c->seed ^ DROPOUT_STREAM);
    int rc = nlp_pairs_batcher_new(&t->batches, train, &c->batch, c->seed ^ BATCH_STREAM, e);
    if (rc != NLP_OK)
        goto fail;
    int B, S, T;
    nlp_pairs_batcher_max(t->batches, &B, &S, &T);
    if ((rc = nlp_pairs_batch_new(&t->cur, B, S, T)) != NLP_OK
        || (rc = fill_current(t)) != NLP_OK) {
        nlp_error_set(e, rc, NULL, 0, "training batches: %s", nlp_error_string(rc));
        goto fail;
    }
    if (dev && c->metric == S2S_METRIC_BLEU) {
        s2s_search_config sc;
        s2s_search_config_default(&sc);
        sc.beam = 1;
        sc.max_len_ratio = c->max_len_ratio;
        if ((rc = s2s_search_new(&t->search, m, &sc, c->eval_batch,
                                 dev->max_src > 0 ? dev->max_src : 1, e)) != NLP_OK)
            goto fail;
        if ((rc = nlp_bleu_new(&t->bleu)) != NLP_OK) {
            nlp_error_set(e, rc, NULL, 0, NULL);
            goto fail;
        }
    }
    t->task.ctx = t;
    t->task.kind = NLP_SEQ2SEQ_KIND;
    t->task.metric = c->metric == S2S_METRIC_BLEU ? "bleu" : "ppl";
    t->task.higher_is_better = c->metric == S2S_METRIC_BLEU;
    t->task.unit = "tokens";
    t->task.params = nlp_seq2seq_params(m);
    t->task.step = task_step;
    t->task.evaluate = dev ? task_evaluate : NULL;
    t->task.epoch_fraction = task_epoch_fraction;
    t->task.save_model = task_save_model;
    t->task.save_state = task_save_state;
    t->task.load_state = task_load_state;
    t->task.prepare_workers = task_prepare_workers;
    t->task.step_share = task_step_share;
    t->task.step_end = task_step_end;
    *out = t;
    return NLP_OK;
fail:
    s2s_trainer_free(t);
    return rc;
}

void s2s_trainer_free(s2s_trainer *t)
{
    if (!t)
        return;
    workers_free(t);
    nlp_pairs_batch_free(t->cur);
    nlp_pairs_batcher_free(t->batches);
    s2s_search_free(t->search);
    nlp_bleu_free(t->bleu);
    free(t->hyp_words);
    free(t->ref_words);
    free(t);
}

const nlp_train_task *s2s_trainer_task(s2s_trainer *t)
{
    return &t->task;
}

long s2s_trainer_batches(const s2s_trainer *t)
{
    return nlp_pairs_batcher_batches(t->batches);
}

double s2s_trainer_tokens(const s2s_trainer *t)
{
    return t->tokens;
}

double s2s_trainer_seconds(const s2s_trainer *t)
{
    return t->seconds;
}
