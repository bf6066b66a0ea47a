/*
** optim: optimisers over one flat parameter buffer, gradient clipping,
** learning-rate schedules.
**
** A libnlp model keeps every trainable parameter in ONE contiguous float
** buffer with a gradient buffer of the same layout (nlp/params.h), so an
** optimiser is one loop over n floats.  The optimiser owns its state (the
** moment buffers), allocated once by nlp_optim_new(); a step never
** allocates.  The update rules follow PyTorch's torch.optim exactly (same
** defaults, same order of operations, same bias correction), so a run here
** can be compared number for number with a PyTorch run:
**
**   SGD      buf = momentum*buf + g   (buf = g on the first step)
**            g'  = nesterov ? g + momentum*buf : buf
**            w  -= lr * g'                         (momentum 0: w -= lr*g)
**   Adam     m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;  t = step+1
**            w -= (lr / (1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
**   RMSprop  s = alpha*s + (1-alpha)*g*g;  d = sqrt(s) + eps
**            momentum > 0: buf = momentum*buf + g/d;  w -= lr*buf
**            otherwise:    w -= lr * g/d
**
** where g = grad + weight_decay*w (PyTorch's L2 "weight_decay"; 0 = off).
** The state is a public part of the struct so that checkpoints can store and
** restore it (nlp_model_add_optim / nlp_model_read_optim in nlp/model.h).
*/
#ifndef NLP_OPTIM_H
#define NLP_OPTIM_H

#include <stddef.h>

typedef enum nlp_optim_kind {
    NLP_OPTIM_SGD = 0,
    NLP_OPTIM_ADAM = 1,
    NLP_OPTIM_RMSPROP = 2
} nlp_optim_kind;

/* How the learning rate changes with the step count t (0-based). */
typedef enum nlp_lr_schedule {
    NLP_LR_CONSTANT = 0,  /* lr */
    NLP_LR_EXP = 1,       /* lr * gamma^t                      (ExponentialLR) */
    NLP_LR_STEP = 2       /* lr * gamma^floor(t / step_size)   (StepLR) */
} nlp_lr_schedule;

typedef struct nlp_optim_config {
    /* Hyperparameters are doubles, as PyTorch's Python floats: derived
    ** coefficients such as 1 - beta2 are formed in double and then rounded
    ** to float once, so they equal PyTorch's bit for bit. */
    nlp_optim_kind kind;
    double lr;             /* base learning rate, > 0 */
    double momentum;       /* SGD, RMSprop: momentum in [0,1); 0 = none */
    int nesterov;          /* SGD: Nesterov momentum (needs momentum > 0) */
    double beta1, beta2;   /* Adam: moment decay rates in [0,1) */
    double alpha;          /* RMSprop: square-average decay in [0,1) */
    double eps;            /* Adam, RMSprop: denominator guard, > 0 */
    double weight_decay;   /* L2 penalty added to the gradient, >= 0 */
    nlp_lr_schedule schedule;
    double gamma;          /* NLP_LR_EXP / NLP_LR_STEP decay factor in (0,1] */
    long step_size;        /* NLP_LR_STEP: steps between decays, > 0 */
    long warmup;           /* linear warm-up over the first `warmup` steps
                              (lr * (t+1)/warmup, then the schedule); 0 = none */
} nlp_optim_config;

/*
** Fills c with PyTorch's defaults for kind:
**   SGD      lr 0.1 (PyTorch has none), momentum 0
**   Adam     lr 1e-3, betas 0.9/0.999, eps 1e-8
**   RMSprop  lr 1e-2, alpha 0.99, eps 1e-8, momentum 0
** and weight_decay 0, constant schedule (gamma 1, step_size 1), no warm-up.
*/
void nlp_optim_config_default(nlp_optim_config *c, nlp_optim_kind kind);

/* Checks the ranges documented above.  Returns NLP_OK or NLP_EINVAL. */
int nlp_optim_config_check(const nlp_optim_config *c);

/*
** The learning rate the schedule gives at 0-based step t (warm-up, then
** constant / exponential / step decay).  Pure function of c and t.
*/
float nlp_optim_lr_at(const nlp_optim_config *c, long t);

/*
** The optimiser: its configuration, step count, moment buffers and
** learning-rate scale.  Opaque: read it through the accessors below
** (nlp_optim_get_config, _size, _steps, _m, _v) and change the rate only
** with nlp_optim_set_lr_scale.
*/
typedef struct nlp_optim nlp_optim;

/*
** Sets *out to an optimiser for n parameters with configuration c (copied)
** and returns NLP_OK; the caller owns it and frees it with nlp_optim_free().
** The state buffers start at zero and step at 0.  Returns NLP_EINVAL when n
** is 0 or c is NULL or fails nlp_optim_config_check(), NLP_ENOMEM when out
** of memory; *out is NULL on failure.
**
** Which buffers exist (non-NULL): SGD with momentum: m; Adam: m and v;
** RMSprop: v, plus m when momentum > 0.  Plain SGD: neither.
*/
int nlp_optim_new(nlp_optim **out, size_t n, const nlp_optim_config *c);

/* Frees o and its state; NULL is a no-op. */
void nlp_optim_free(nlp_optim *o);

/* Zeroes the state buffers and the step count (a fresh start). */
void nlp_optim_reset(nlp_optim *o);

/*
** One update of w (n floats) from the gradient g (n floats), with the
** learning rate nlp_optim_lr_at(&o->cfg, o->step); then o->step += 1.
** w and g must not overlap.  g is not modified (clip it first with
** nlp_optim_clip if wanted).  Elementwise, so the result does not depend
** on the thread count.  Returns the learning rate used.
*/
float nlp_optim_step(nlp_optim *o, float *w, const float *g);

/* The learning rate the next nlp_optim_step() will use:
** nlp_optim_lr_at(&o->cfg, o->step) times the scale below. */
float nlp_optim_lr(const nlp_optim *o);

/*
** A factor applied on top of the schedule (plateau decay in lib/train):
** every later step uses nlp_optim_lr_at(&o->cfg, o->step) * scale (the
** product in double, rounded to float), so scale 1 gives the schedule's
** rate bit for bit.  scale must be finite and > 0; other values are ignored.
** nlp_optim_new() and nlp_optim_reset() set it to 1.  Not part of what
** nlp_model_add_optim() stores: a caller that changes it saves it itself.
*/
void nlp_optim_set_lr_scale(nlp_optim *o, double scale);

/* The current factor (1 unless set). */
double nlp_optim_lr_scale(const nlp_optim *o);

/* The configuration o was made with (its own copy; valid while o lives). */
const nlp_optim_config *nlp_optim_get_config(const nlp_optim *o);

/* The number of parameters o updates (n of nlp_optim_new). */
size_t nlp_optim_size(const nlp_optim *o);

/* Updates done so far (Adam's t is this + 1). */
long nlp_optim_steps(const nlp_optim *o);

/*
** The state buffers, n floats each, or NULL when the rule needs none (see
** nlp_optim_new): m is the SGD/RMSprop momentum buffer or Adam's first
** moment, v Adam's second moment or RMSprop's square average.  They belong
** to o; a loader restoring saved state may write them (nlp_model_read_optim).
*/
float *nlp_optim_m(const nlp_optim *o);
float *nlp_optim_v(const nlp_optim *o);

/*
** Sets the number of updates done, for a loader restoring saved state with
** nlp_optim_m/_v (the schedule and Adam's bias correction depend on it).
** Returns NLP_OK, or NLP_EINVAL when steps is negative (o is unchanged).
*/
int nlp_optim_set_steps(nlp_optim *o, long steps);

/* Euclidean norm of g (n floats), accumulated in double. */
double nlp_optim_grad_norm(const float *g, size_t n);

/*
** Global-norm clipping (torch.nn.utils.clip_grad_norm_): computes the norm
** of g (in double) and, when max_norm > 0 and the norm exceeds it, scales g
** by max_norm / (norm + 1e-6).  Returns the norm BEFORE clipping (useful for
** logging; a non-finite value means the gradients diverged, and g is then
** left untouched).
*/
double nlp_optim_clip(float *g, size_t n, float max_norm);

/* Short name of a kind ("sgd", "adam", "rmsprop"); NULL for an unknown kind. */
const char *nlp_optim_kind_name(nlp_optim_kind kind);

/* Parses "sgd" / "adam" / "rmsprop" into *kind.  Returns NLP_OK or NLP_EINVAL. */
int nlp_optim_kind_parse(const char *name, nlp_optim_kind *kind);

#endif
