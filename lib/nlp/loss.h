/*
** loss: softmax cross-entropy over rows of logits, accuracy, log-softmax.
**
** The output layer of every libnlp model ends in N rows of V logits (one row
** per predicted symbol, e.g. N = T*B time-major) and N integer targets.  The
** loss of a row is  log(sum_j exp(z_j)) - z_target,  computed with the
** max-shifted ("stable") log-sum-exp so that large logits never overflow;
** row losses are summed in double, so a sum over millions of rows does not
** lose precision.  The same pass writes the gradient of the scaled loss with
** respect to the logits, (softmax(z) - onehot(target)) * scale, so a training
** step needs no second sweep over the logits.
**
** Padding: a row whose target is negative (e.g. -1 for a pad position), or
** whose mask entry is 0, is ignored: it adds nothing to the loss or the
** count and its gradient row is set to zero.  Targets >= V are an error.
**
** Nothing here allocates; every function is safe to call from several
** threads on disjoint buffers.
*/
#ifndef NLP_LOSS_H
#define NLP_LOSS_H

#include <stddef.h>

/*
** Softmax cross-entropy of n rows of v logits against targets.
**
**   loss     out: sum over the counted rows of w_i * (-log softmax(z_i)[t_i])
**            in nats (double); may be NULL
**   count    out: number of counted rows (target >= 0 and mask != 0); may be NULL
**   dlogits  out (n,v): w_i * scale * (softmax(z_i) - onehot(t_i)) for counted
**            rows, 0 for ignored rows; NULL skips the gradient.  dlogits may
**            equal logits (the gradient then replaces the logits in place);
**            otherwise the two must not overlap.  The gradient is WRITTEN,
**            not accumulated.
**   logits   in (n,v), row-major
**   targets  in (n): symbol index in [0, v), or < 0 to ignore the row
**   mask     in (n) or NULL: per-row weight w_i; 0 ignores the row (padding),
**            1 counts it; other values weight the row's loss and gradient.
**            NULL means every w_i = 1.
**   scale    gradient factor, e.g. 1.0f/count to get the gradient of the
**            mean loss, or 1.0f for the summed loss.
**
** Returns NLP_OK, or NLP_EINVAL when v == 0 or a target is >= v (nothing
** useful is written in that case).  Non-finite logits give a non-finite
** loss (the caller's divergence check sees it); they are not an error.
*/
int nlp_loss_xent(double *loss, size_t *count, float *dlogits,
                  const float *logits, const int *targets, const float *mask,
                  size_t n, size_t v, float scale);

/*
** Counts the rows whose largest logit (the first on ties) is the target.
** Ignored rows (target < 0 or mask 0) are not counted in either figure.
**   correct  out: rows predicted right; may be NULL
**   count    out: rows considered; may be NULL
** logits (n,v), targets (n), mask (n) or NULL.  Returns NLP_OK or
** NLP_EINVAL (v == 0 or a target >= v).
*/
int nlp_loss_accuracy(size_t *correct, size_t *count, const float *logits,
                      const int *targets, const float *mask, size_t n, size_t v);

/*
** Index of the largest of v >= 1 values; the first on ties, NaNs ignored
** (0 when every value is NaN).
*/
size_t nlp_loss_argmax(const float *x, size_t v);

/*
** log-softmax of one row: out[j] = x[j] - logsumexp(x), v >= 1.  out may
** equal x.  Returns logsumexp(x) (double), the log of the partition sum,
** so  -out[t]  is the cross-entropy of target t, used for scoring and
** perplexity.  A row containing +inf or NaN gives NaN outputs.
*/
double nlp_loss_log_softmax(float *out, const float *x, size_t v);

/*
** Softmax of one row (v >= 1): out[j] = exp(x[j] - max) / sum; out may
** equal x.  Returns logsumexp(x), as nlp_loss_log_softmax does.
*/
double nlp_loss_softmax(float *out, const float *x, size_t v);

#endif
