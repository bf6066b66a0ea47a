/*
** loss: softmax cross-entropy, accuracy, (log-)softmax.  See nlp/loss.h.
**
** Each row is two passes over v logits: the maximum, then exp(z - max)
** summed in double (the stable log-sum-exp); the gradient pass reuses the
** exponentials.  Rows are independent; the loss sum runs in row order in
** double, so the result does not depend on how rows were produced.
*/
#include "nlp/loss.h"
#include "nlp/error.h"

#include <math.h>

/* Largest finite-or-infinite value of a row; -inf for an all-NaN row. */
static float row_max(const float *x, size_t v)
{
    float mx = -INFINITY;
    for (size_t j = 0; j < v; j++)
        if (x[j] > mx)
            mx = x[j];
    return mx;
}

/* log(sum exp(x)) with the max shift; NaN if x holds NaN or +inf. */
static double row_logsumexp(const float *x, size_t v, float mx)
{
    if (!(mx > -INFINITY) || isinf(mx))
        return isinf(mx) && mx > 0 ? NAN : (double)mx;  /* all -inf: -inf */
    double sum = 0.0;
    for (size_t j = 0; j < v; j++)
        sum += exp((double)(x[j] - mx));
    return (double)mx + log(sum);
}

int nlp_loss_xent(double *loss, size_t *count, float *dlogits,
                  const float *logits, const int *targets, const float *mask,
                  size_t n, size_t v, float scale)
{
    if (v == 0)
        return NLP_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (targets[i] >= 0 && (size_t)targets[i] >= v)
            return NLP_EINVAL;
    double total = 0.0;
    size_t counted = 0;
    for (size_t i = 0; i < n; i++) {
        const float *z = logits + i * v;
        float *dz = dlogits ? dlogits + i * v : NULL;
        float w = mask ? mask[i] : 1.0f;
        int t = targets[i];
        if (t < 0 || w == 0.0f) {
            if (dz)
                for (size_t j = 0; j < v; j++)
                    dz[j] = 0.0f;
            continue;
        }
        counted++;
        float mx = row_max(z, v);
        float zt = z[t];          /* read before dz (maybe z) is written */
        double sum = 0.0;
        if (dz) {
            /* One exp per logit: keep exp(z - max) in dz, then normalise.
            ** Each z[j] is read before dz[j] is written, so dz may be z. */
            for (size_t j = 0; j < v; j++) {
                float ej = expf(z[j] - mx);
                dz[j] = ej;
                sum += ej;
            }
            float f = w * scale;
            float inv = (float)(f / sum);
            for (size_t j = 0; j < v; j++)
                dz[j] *= inv;
            dz[t] -= f;
        } else {
            for (size_t j = 0; j < v; j++)
                sum += expf(z[j] - mx);
        }
        total += (double)w * ((double)mx + log(sum) - (double)zt);
    }
    if (loss)
        *loss = total;
    if (count)
        *count = counted;
    return NLP_OK;
}

size_t nlp_loss_argmax(const float *x, size_t v)
{
    size_t best = 0;
    float bv = NAN;
    for (size_t j = 0; j < v; j++) {
        if (isnan(x[j]))
            continue;
        if (isnan(bv) || x[j] > bv) {
            bv = x[j];
            best = j;
        }
    }
    return best;
}

int nlp_loss_accuracy(size_t *correct, size_t *count, const float *logits,
                      const int *targets, const float *mask, size_t n, size_t v)
{
    if (v == 0)
        return NLP_EINVAL;
    size_t ok = 0, cnt = 0;
    for (size_t i = 0; i < n; i++) {
        int t = targets[i];
        if (t >= 0 && (size_t)t >= v)
            return NLP_EINVAL;
        if (t < 0 || (mask && mask[i] == 0.0f))
            continue;
        cnt++;
        if (nlp_loss_argmax(logits + i * v, v) == (size_t)t)
            ok++;
    }
    if (correct)
        *correct = ok;
    if (count)
        *count = cnt;
    return NLP_OK;
}

double nlp_loss_log_softmax(float *out, const float *x, size_t v)
{
    float mx = row_max(x, v);
    double lse = row_logsumexp(x, v, mx);
    for (size_t j = 0; j < v; j++)
        out[j] = (float)((double)x[j] - lse);
    return lse;
}

double nlp_loss_softmax(float *out, const float *x, size_t v)
{
    float mx = row_max(x, v);
    double lse = row_logsumexp(x, v, mx);
    for (size_t j = 0; j < v; j++)
        out[j] = (float)exp((double)x[j] - lse);
    return lse;
}
