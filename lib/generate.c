/*
** generate: priming a character language model with a text and sampling
** from it, one character at a time.  See nlp/generate.h.
**
** Built on the public charlm API only (nlp_charlm_step, the state, ids and
** UTF-8 of the vocabulary) and on nlp/sample.h, so a tool that samples is
** a thin loop over this module.
*/
#include "nlp/generate.h"

#include <string.h>

#include "nlp/alloc.h"
#include "nlp/error.h"
#include "nlp/utf8.h"

/* Bytes gathered before a write call: many lines of text. */
#define GEN_BUF 4096

struct nlp_generator {
    nlp_charlm *m;           /* borrowed */
    nlp_charlm_state st;     /* the one stream's state; st.logits = next scores */
    nlp_sampler *sampler;    /* (V) work buffers of the draws */
    size_t fed;              /* ids fed since new/reset: 0 = nothing read */
    char buf[GEN_BUF];       /* the chunk being gathered */
};

void nlp_generate_config_default(nlp_generate_config *c)
{
    nlp_sample_config_default(&c->sample);
    c->length = 500;
    c->chunk = 0;
}

int nlp_generate_new(nlp_generator **out, nlp_charlm *m)
{
    *out = NULL;
    if (!m || m->V < 2)
        return NLP_EINVAL;
    nlp_generator *g = nlp_calloc(1, sizeof *g);
    if (!g)
        return NLP_ENOMEM;
    g->m = m;
    int rc = nlp_sample_new(&g->sampler, (size_t)m->V);
    if (rc == NLP_OK)
        rc = nlp_charlm_state_init(&g->st, m);
    if (rc != NLP_OK) {
        nlp_generate_free(g);
        return rc;
    }
    *out = g;
    return NLP_OK;
}

void nlp_generate_free(nlp_generator *g)
{
    if (!g)
        return;
    nlp_sample_free(g->sampler);
    nlp_charlm_state_free(&g->st);
    nlp_free(g);
}

void nlp_generate_reset(nlp_generator *g)
{
    nlp_charlm_state_reset(&g->st, g->m);
    g->fed = 0;
}

/* Feeds one id: the state moves on and st.logits scores the next one. */
static int feed(nlp_generator *g, int id)
{
    int rc = nlp_charlm_step(g->m, &g->st, id);
    if (rc == NLP_OK)
        g->fed++;
    return rc;
}

int nlp_generate_prime(nlp_generator *g, const char *s, size_t n)
{
    if (!nlp_utf8_is_valid(s, n))
        return NLP_EUTF8;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int k = nlp_utf8_decode(s + i, n - i, &cp);
        i += (size_t)k; /* k >= 1: the text is valid */
        int rc = feed(g, nlp_charlm_id(g->m, cp));
        if (rc != NLP_OK)
            return rc;
    }
    return NLP_OK;
}

int nlp_generate_prime_cp(nlp_generator *g, const int32_t *cp, size_t n)
{
    char u[4];
    for (size_t i = 0; i < n; i++)
        if (nlp_utf8_encode(cp[i], u) == 0)
            return NLP_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int rc = feed(g, nlp_charlm_id(g->m, cp[i]));
        if (rc != NLP_OK)
            return rc;
    }
    return NLP_OK;
}

/* Without a prime the model starts as after a line break (the usual
** start of a text's lines), or after its most frequent character (id 1)
** when it has none. */
static int start(nlp_generator *g)
{
    if (g->fed > 0)
        return NLP_OK;
    int id = nlp_charlm_id(g->m, '\n');
    return feed(g, id != NLP_CHARLM_UNK_ID ? id : 1);
}

/* c->sample with <unk> banned, checked. */
static int sample_config(const nlp_generate_config *c, nlp_sample_config *so)
{
    *so = c->sample;
    so->ban = NLP_CHARLM_UNK_ID;
    return nlp_sample_config_check(so);
}

long nlp_generate_probs(nlp_generator *g, const nlp_generate_config *c, float *probs)
{
    nlp_sample_config so;
    int rc = sample_config(c, &so);
    if (rc == NLP_OK)
        rc = start(g);
    if (rc != NLP_OK)
        return rc;
    return nlp_sample_probs(g->sampler, g->st.logits, &so, probs);
}

int nlp_generate_sample(nlp_generator *g, const nlp_generate_config *c, nlp_rng *rng,
                        nlp_generate_write_fn write, void *ctx)
{
    nlp_sample_config so;
    int rc = sample_config(c, &so);
    if (rc == NLP_OK)
        rc = start(g);
    if (rc != NLP_OK)
        return rc;
    size_t len = 0;   /* bytes in buf */
    size_t chars = 0; /* characters in buf */
    for (size_t i = 0; i < c->length; i++) {
        long id = nlp_sample_draw(g->sampler, g->st.logits, &so, rng);
        if (id < 0)
            return (int)id;
        size_t n;
        const char *u = nlp_charlm_utf8(g->m, (int)id, &n);
        /* A loaded model has one code point (<= 4 bytes) per entry; a
        ** vocabulary built by hand might not, and goes out unbuffered. */
        if (n > GEN_BUF - len) {
            if (write(ctx, g->buf, len) != 0)
                return NLP_EIO;
            len = chars = 0;
        }
        if (n > GEN_BUF) {
            if (write(ctx, u, n) != 0)
                return NLP_EIO;
        } else {
            memcpy(g->buf + len, u, n);
            len += n;
            chars++;
        }
        int line_end = n == 1 && u[0] == '\n';
        if (len > 0 && (line_end || (c->chunk && chars >= c->chunk) || len == GEN_BUF)) {
            if (write(ctx, g->buf, len) != 0)
                return NLP_EIO;
            len = chars = 0;
        }
        rc = feed(g, (int)id);
        if (rc != NLP_OK)
            return rc;
    }
    if (len > 0 && write(ctx, g->buf, len) != 0)
        return NLP_EIO;
    return NLP_OK;
}
