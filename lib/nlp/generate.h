/*
** generate: text from a character language model, one character at a time.
**
**   nlp_generator *g;
**   nlp_generate_new(&g, model);
**   nlp_generate_prime(g, "Nel mezzo", 9);       condition on a text
**   nlp_generate_config c;
**   nlp_generate_config_default(&c);
**   c.length = 600; c.sample.temperature = 0.7;
**   nlp_generate_sample(g, &c, &rng, write, ctx); 600 characters to write()
**   nlp_generate_free(g);
**
** A generator holds one recurrent state of a model (nlp/charlm.h) and a
** sampler (nlp/sample.h).  Priming feeds a text's characters to the state;
** sampling then draws each next character from the model's distribution
** given everything before it (temperature, top-k, top-p as in
** nlp/sample.h), feeds it back, and hands its UTF-8 bytes to the caller.
** Every drawn character is a whole code point of the model's vocabulary,
** so the output is valid UTF-8; the unknown symbol <unk> is never drawn.
** The random draws come from the caller's nlp_rng only: the same model,
** prime, configuration and seed give the same text.
*/
#ifndef NLP_GENERATE_H
#define NLP_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include <nlp/charlm.h>
#include <nlp/rng.h>
#include <nlp/sample.h>

typedef struct nlp_generate_config {
    nlp_sample_config sample; /* temperature, top-k, top-p (nlp_sample_config_default);
                                 sample.ban is ignored: <unk> is never drawn */
    size_t length;            /* characters to draw; 500 */
    size_t chunk;             /* most characters per write call, 0 = no limit; 0 */
} nlp_generate_config;

/* Fills c with the defaults written next to each field. */
void nlp_generate_config_default(nlp_generate_config *c);

/*
** Receives the generated text: n bytes of whole UTF-8 characters at s
** (not NUL-terminated, valid only during the call).  Returns 0 to go on,
** anything else to stop the generation.
*/
typedef int (*nlp_generate_write_fn)(void *ctx, const char *s, size_t n);

typedef struct nlp_generator nlp_generator;

/*
** A generator over model m (borrowed: it must outlive the generator, which
** steps it, so one model serves one generator at a time), with a zero
** state.  Returns NLP_OK with *out set, NLP_EINVAL when m knows no
** character besides <unk> (nothing could be drawn), or NLP_ENOMEM; *out
** is NULL on failure.  Free with nlp_generate_free.
*/
int nlp_generate_new(nlp_generator **out, nlp_charlm *m);

/* Frees g (not its model).  NULL is a no-op. */
void nlp_generate_free(nlp_generator *g);

/* Back to the zero state: the model has read nothing. */
void nlp_generate_reset(nlp_generator *g);

/*
** Conditions the state on the UTF-8 text s[0..n) (after whatever it read
** before): each character is fed in turn, one the model does not know as
** <unk>.  Returns NLP_OK, or NLP_EUTF8 when s is not valid UTF-8 (then
** nothing is fed).  Never allocates.
*/
int nlp_generate_prime(nlp_generator *g, const char *s, size_t n);

/*
** The same for code points cp[0..n) (e.g. an nlp_codepoints text before
** nlp_charlm_encode).  Returns NLP_OK, or NLP_EINVAL for a value that is
** not a Unicode scalar value (then nothing is fed).
*/
int nlp_generate_prime_cp(nlp_generator *g, const int32_t *cp, size_t n);

/*
** Writes into probs (the model's V floats, indexed by id) the distribution
** the next draw of nlp_generate_sample would use under c: <unk> has 0, the
** rest sums to 1.  A generator that has read nothing since new/reset
** first reads the start symbol, as nlp_generate_sample does.  Returns the
** number of characters kept (>= 1), NLP_EINVAL (bad c->sample) or
** NLP_ERANGE (the model failed a step).
*/
long nlp_generate_probs(nlp_generator *g, const nlp_generate_config *c, float *probs);

/*
** Draws c->length characters with c->sample and rng, feeding each back,
** and passes them to write(ctx, bytes, n) in chunks of whole characters:
** a chunk ends after each line break, after c->chunk characters (when not
** 0; 1 writes each character as it is drawn, e.g. for a terminal), when
** the generator's buffer is full, and at the end.  A generator that has
** read nothing since new/reset (no prime) first reads a line break, or the
** model's most frequent character when it has no line break, so the text
** starts as a new line does.  The state then continues after the drawn
** text: a second call goes on where the first stopped.
** Returns NLP_OK, NLP_EINVAL (bad c->sample), NLP_ERANGE (a step failed)
** or NLP_EIO when write returned non-zero (what was drawn before was
** written).  Never allocates.
*/
int nlp_generate_sample(nlp_generator *g, const nlp_generate_config *c, nlp_rng *rng,
                        nlp_generate_write_fn write, void *ctx);

#endif
