/*
** embed: embedding lookup, forward and sparse backward.
**
** The table is one view "<name>.weight" of shape (V,E) in an nlp_params
** buffer.  Forward copies the rows of the ids; backward adds each output
** gradient row into the gradient row of its id, touching only the rows
** used (no dense (V,E) work).  Ids are flat: a time-major batch of ids
** (T,B) is simply n = T*B ids, and the output is (T,B,E) = (n,E).
**
** nlp_embed is a small value struct the caller embeds in its model (no
** _new/_free, it owns no memory): it refers to its parameters by offset.
*/
#ifndef NLP_EMBED_H
#define NLP_EMBED_H

#include <nlp/params.h>
#include <nlp/rng.h>

typedef struct nlp_embed {
    nlp_params *params; /* where the table lives (not owned) */
    int w;              /* view index of "<name>.weight" (V,E) */
    int V;              /* rows: vocabulary size */
    int E;              /* columns: embedding size */
} nlp_embed;

/*
** Layout phase: declares "<name>.weight" (V,E) in p and fills e.
** V, E >= 1.  Returns NLP_OK or the error of nlp_params_add().
*/
int nlp_embed_init(nlp_embed *e, nlp_params *p, const char *name, int V, int E);

/*
** After nlp_params_alloc: weight = normal(0, 1), as torch.nn.Embedding,
** drawn from r in row-major order.
*/
void nlp_embed_reset(nlp_embed *e, nlp_rng *r);

/*
** out (n,E) = weight[ids[i]] for i < n.  An id < 0 is padding: its row of
** out is zero.  Returns NLP_OK, or NLP_ERANGE if some id >= V (out is then
** unspecified).  ids (n).
*/
int nlp_embed_forward(const nlp_embed *e, float *out, const int *ids, int n);

/*
** grad weight[ids[i]] += dout[i] (rows of E) for i < n; ids < 0 and ids
** >= V are skipped.  dout (n,E), ids (n) as given to forward.  Sequential
** in i, so repeated ids accumulate deterministically.
*/
void nlp_embed_backward(nlp_embed *e, const float *dout, const int *ids, int n);

#endif
