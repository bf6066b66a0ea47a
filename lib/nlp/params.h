/*
** param: every trainable parameter of a model in one contiguous buffer.
**
** A model's layers declare their tensors first (the layout phase:
** nlp_params_add, usually called for you by nlp_embed_init, nlp_linear_init,
** nlp_rnn_new), then nlp_params_alloc() makes ONE allocation for the values
** and ONE for the gradients, both of nlp_params.n floats with the same
** layout.  So zeroing the gradients is one memset, an optimiser is one loop
** over n floats (it allocates its own moments of the same length n), and a
** model file saves and loads the buffer view by view (name, shape, data).
**
**     nlp_params *p;
**     nlp_params_new(&p);                           // check the code
**     nlp_embed_init(&emb, p, "embed", V, E);      // layout
**     nlp_rnn_new(&rnn, &cfg, p, "rnn");            // layout
**     nlp_params_alloc(p);                          // one allocation
**     nlp_embed_reset(&emb, rng); nlp_rnn_reset(rnn, rng);
**     ... nlp_params_zero_grad(p); forward; backward; optimiser over p ...
**
** Every view starts at a multiple of NLP_PARAM_ALIGN floats (64 bytes);
** the padding between views is zero in data and grad and stays so (no
** layer writes it), so a flat loop over all n floats is harmless.
** Layers keep the view's offset, not a pointer, so they are valid from the
** layout phase on and stay valid after the buffer is filled by a loader.
*/
#ifndef NLP_PARAM_H
#define NLP_PARAM_H

#include <stddef.h>

#define NLP_PARAM_NAME_MAX 64  /* bytes in a view name, with the NUL */
#define NLP_PARAM_MAX_DIMS 4
#define NLP_PARAM_ALIGN 16     /* floats: views start on 64-byte boundaries */

/* One named tensor inside the buffer. */
typedef struct nlp_params_view {
    char name[NLP_PARAM_NAME_MAX]; /* e.g. "rnn.weight_hh_l0", unique */
    int ndim;                      /* 1..NLP_PARAM_MAX_DIMS */
    int shape[NLP_PARAM_MAX_DIMS]; /* row-major; unused dims are 1 */
    size_t offset;                 /* first float in data/grad */
    size_t size;                   /* product of shape */
} nlp_params_view;

typedef struct nlp_params {
    float *data;          /* (n) values; NULL until nlp_params_alloc */
    float *grad;          /* (n) gradients; NULL until nlp_params_alloc */
    size_t n;             /* floats in data and grad, padding included */
    nlp_params_view *views; /* (nviews) in declaration order */
    int nviews;
    int cap;              /* allocated entries in views */
} nlp_params;

/*
** Sets *out to a new empty parameter set in the layout phase and returns
** NLP_OK; the caller owns it and frees it with nlp_params_free().  Returns
** NLP_ENOMEM (and sets *out to NULL) when out of memory.
*/
int nlp_params_new(nlp_params **out);

/* Releases p, its views and both buffers.  NULL is a no-op. */
void nlp_params_free(nlp_params *p);

/*
** Declares a tensor of ndim dimensions shape[0..ndim-1] (each >= 1) named
** name.  Only in the layout phase (before nlp_params_alloc).  Returns the
** view's index (>= 0), or NLP_EINVAL (bad shape, already allocated, name
** empty or already used), NLP_ERANGE (name too long, size overflows) or
** NLP_ENOMEM.  The offset is in p->views[index].offset right away.
*/
int nlp_params_add(nlp_params *p, const char *name, int ndim, const int *shape);

/*
** Ends the layout phase: allocates data and grad (n floats each, 64-byte
** aligned, all zero).  Returns NLP_OK, NLP_EINVAL if already allocated or
** empty, or NLP_ENOMEM (then p is still in the layout phase).
*/
int nlp_params_alloc(nlp_params *p);

/* Sets every gradient to zero (one memset).  No-op before allocation. */
void nlp_params_zero_grad(nlp_params *p);

/* The view named name, or NULL. */
const nlp_params_view *nlp_params_find(const nlp_params *p, const char *name);

/* Index of the view named name, or -1. */
int nlp_params_index(const nlp_params *p, const char *name);

/* Values / gradient of view i (0 <= i < nviews); NULL before allocation. */
float *nlp_params_data(const nlp_params *p, int i);
float *nlp_params_grad(const nlp_params *p, int i);

/* Number of real parameters (sum of view sizes, padding excluded). */
size_t nlp_params_count(const nlp_params *p);

#endif
