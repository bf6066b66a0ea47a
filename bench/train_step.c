/*
** train_step: times one character-LM training step built from libnlp's
** layers, the same work as ../shared/anchors/torch_charlm.py does per step:
**
**   embed (V,E) -> rnn (L layers, H) -> linear (H -> V) -> softmax
**   cross-entropy (mean) -> backward -> global-norm clip 5 -> Adam
**
** with the state carried across steps (truncated BPTT), on random ids (the
** speed does not depend on the text).  Prints one line of key=value
** figures: chars/s (= B*T*steps/s), the GEMM FLOP rate of the step, peak
** memory (max RSS), and the number of allocations made inside the timed
** steps (malloc & co. are wrapped in this program, which interposes them
** for the library and OpenBLAS too).  Built and run by bench/train_step.sh.
*/
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "nlp/embed.h"
#include "nlp/error.h"
#include "nlp/linear.h"
#include "nlp/loss.h"
#include "nlp/optim.h"
#include "nlp/params.h"
#include "nlp/rng.h"
#include "nlp/rnn.h"
#include "nlp/tensor.h"

/* ---- allocation counter ---------------------------------------------------
** Interposes the allocation functions for the whole process (the library,
** OpenBLAS and libgomp call them through the dynamic linker too) and, while
** `counting` is set, records each call by its caller's address, so the
** report can say which shared object allocated.  Forwards to glibc.
*/
#include <dlfcn.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static volatile int counting;
enum { NCALLERS = 256 };
static void *callers[NCALLERS];
static long ncalls[NCALLERS];
static long nallocs;

static void note(void *caller)
{
    __atomic_add_fetch(&nallocs, 1, __ATOMIC_RELAXED);
    size_t h = ((uintptr_t)caller >> 4) % NCALLERS;
    for (int k = 0; k < NCALLERS; k++, h = (h + 1) % NCALLERS) {
        void *c = __atomic_load_n(&callers[h], __ATOMIC_RELAXED);
        if (c == caller || (c == NULL && __atomic_compare_exchange_n(&callers[h], &c, caller, 0,
                                                                      __ATOMIC_RELAXED,
                                                                      __ATOMIC_RELAXED)) ||
            c == caller) {
            __atomic_add_fetch(&ncalls[h], 1, __ATOMIC_RELAXED);
            return;
        }
    }
}
#define NOTE() do { if (counting) note(__builtin_return_address(0)); } while (0)

void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);
void *aligned_alloc(size_t al, size_t n);
void *memalign(size_t al, size_t n);
int posix_memalign(void **p, size_t al, size_t n);

void *malloc(size_t n) { NOTE(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { NOTE(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { NOTE(); return __libc_realloc(p, n); }
void *aligned_alloc(size_t al, size_t n) { NOTE(); return __libc_memalign(al, n); }
void *memalign(size_t al, size_t n) { NOTE(); return __libc_memalign(al, n); }
int posix_memalign(void **p, size_t al, size_t n)
{
    NOTE();
    *p = __libc_memalign(al, n);
    return *p ? 0 : 12 /* ENOMEM */;
}

/* "libnlp.so.0:0,libgomp.so.1:43": allocations per shared object. */
static void alloc_report(char *buf, size_t size)
{
    const char *names[NCALLERS];
    long counts[NCALLERS];
    int n = 0;
    for (int h = 0; h < NCALLERS; h++) {
        if (!callers[h])
            continue;
        Dl_info di;
        const char *f = dladdr(callers[h], &di) && di.dli_fname ? di.dli_fname : "?";
        const char *base = strrchr(f, '/');
        base = base ? base + 1 : f;
        int k;
        for (k = 0; k < n && strcmp(names[k], base); k++)
            ;
        if (k == n) {
            names[n] = base;
            counts[n++] = 0;
        }
        counts[k] += ncalls[h];
    }
    size_t off = 0;
    buf[0] = 0;
    for (int k = 0; k < n && off < size; k++)
        off += (size_t)snprintf(buf + off, size - off, "%s%s:%ld", k ? "," : "", names[k], counts[k]);
    if (n == 0)
        snprintf(buf, size, "none");
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "train_step: %s: %s\n", what, nlp_error_string(rc));
    exit(1);
}

int main(int argc, char **argv)
{
    const char *cell = "lstm";
    int L = 2, E = 64, H = 256, B = 32, T = 64, V = 100, threads = 1, warmup = 2;
    int steps = 0;
    double seconds = 10;
    static const struct option opts[] = {
        {"cell", 1, 0, 'c'}, {"layers", 1, 0, 'l'}, {"embed", 1, 0, 'e'},
        {"hidden", 1, 0, 'H'}, {"batch", 1, 0, 'b'}, {"seq-len", 1, 0, 't'},
        {"vocab", 1, 0, 'v'}, {"threads", 1, 0, 'j'}, {"steps", 1, 0, 's'},
        {"seconds", 1, 0, 'S'}, {"warmup", 1, 0, 'w'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': cell = optarg; break;
        case 'l': L = atoi(optarg); break;
        case 'e': E = atoi(optarg); break;
        case 'H': H = atoi(optarg); break;
        case 'b': B = atoi(optarg); break;
        case 't': T = atoi(optarg); break;
        case 'v': V = atoi(optarg); break;
        case 'j': threads = atoi(optarg); break;
        case 's': steps = atoi(optarg); break;
        case 'S': seconds = atof(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: train_step [--cell lstm|gru|rnn] [--layers N] [--embed N] "
                            "[--hidden N] [--batch N] [--seq-len N] [--vocab N] [--threads N] "
                            "[--steps N | --seconds S] [--warmup N]\n");
            return 2;
        }
    }
    nlp_tensor_set_threads(threads);
#ifdef _OPENMP
    omp_set_num_threads(threads); /* the optimiser's loops */
#endif
    nlp_rnn_config rc;
    nlp_rnn_config_default(&rc);
    rc.cell = !strcmp(cell, "gru") ? NLP_RNN_GRU : !strcmp(cell, "rnn") ? NLP_RNN_TANH : NLP_RNN_LSTM;
    rc.input = E;
    rc.hidden = H;
    rc.layers = L;
    rc.max_T = T;
    rc.max_B = B;

    /* Model: layout, one allocation, initialisation. */
    nlp_params *p;
    nlp_embed emb;
    nlp_rnn *rnn;
    nlp_linear out;
    int err;
    if ((err = nlp_params_new(&p)) ||
        (err = nlp_embed_init(&emb, p, "embed", V, E)) ||
        (err = nlp_rnn_new(&rnn, &rc, p, "rnn")) ||
        (err = nlp_linear_init(&out, p, "out", H, V, 1)) || (err = nlp_params_alloc(p)))
        die("model", err);
    nlp_rng rng;
    nlp_rng_seed(&rng, 1);
    nlp_embed_reset(&emb, &rng);
    nlp_rnn_reset(rnn, &rng);
    nlp_linear_reset(&out, &rng);
    nlp_optim_config oc;
    nlp_optim_config_default(&oc, NLP_OPTIM_ADAM);
    oc.lr = 2e-3f;
    nlp_optim *opt;
    if ((err = nlp_optim_new(&opt, p->n, &oc)))
        die("optimiser", err);

    /* Activations: allocated once. */
    size_t TB = (size_t)T * B, ns = nlp_rnn_state_size(rnn, B);
    int *ids = malloc((TB + B) * sizeof(int));
    float *X = nlp_tensor_alloc(TB * E), *dX = nlp_tensor_alloc(TB * E);
    float *Y = nlp_tensor_alloc(TB * H), *dY = nlp_tensor_alloc(TB * H);
    float *Z = nlp_tensor_alloc(TB * V);
    float *h = nlp_tensor_alloc(ns), *c = nlp_tensor_alloc(ns);
    if (!ids || !X || !dX || !Y || !dY || !Z || !h || !c)
        die("activations", NLP_ENOMEM);
    for (size_t i = 0; i < TB + B; i++)
        ids[i] = (int)nlp_rng_below(&rng, (uint64_t)V);

    double loss = 0, t0 = 0, elapsed = 0;
    int done = 0;
    for (int s = 0;; s++) {
        if (s == warmup) {
            counting = 1;
            t0 = now();
        }
        /* Inputs ids[0..TB), targets shifted by one step (B ids). */
        size_t cnt;
        if ((err = nlp_embed_forward(&emb, X, ids, (int)TB)) ||
            (err = nlp_rnn_forward(rnn, Y, h, c, X, h, c, NULL, T, B, 1, &rng)))
            die("forward", err);
        nlp_linear_forward(&out, Z, Y, (int)TB);
        if ((err = nlp_loss_xent(&loss, &cnt, Z, Z, ids + B, NULL, TB, (size_t)V, 1.0f / (float)TB)))
            die("loss", err);
        nlp_params_zero_grad(p);
        memset(dY, 0, TB * H * sizeof(float));
        memset(dX, 0, TB * E * sizeof(float));
        nlp_linear_backward(&out, dY, Z, Y, (int)TB);
        if ((err = nlp_rnn_backward(rnn, dX, NULL, NULL, dY, NULL, NULL, X)))
            die("backward", err);
        nlp_embed_backward(&emb, dX, ids, (int)TB);
        nlp_optim_clip(p->grad, p->n, 5.0f);
        nlp_optim_step(opt, p->data, p->grad);
        if (s >= warmup) {
            done++;
            elapsed = now() - t0;
            if ((steps && done >= steps) || (!steps && elapsed >= seconds))
                break;
        }
    }
    counting = 0;

    /* GEMM work per step: forward, backward (dX and dW) = 3 products. */
    int G = rc.cell == NLP_RNN_LSTM ? 4 : rc.cell == NLP_RNN_GRU ? 3 : 1;
    double flops = 0;
    for (int l = 0; l < L; l++)
        flops += 6.0 * TB * G * H * ((l ? H : E) + H);
    flops += 6.0 * TB * H * V;
    char who[1024];
    alloc_report(who, sizeof who);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("cell=%s layers=%d embed=%d hidden=%d batch=%d seq=%d vocab=%d threads=%d "
           "steps=%d seconds=%.3f chars_per_s=%.0f gflops=%.2f loss=%.4f "
           "maxrss_mb=%.1f rnn_workspace_mb=%.1f params=%zu allocs_in_steps=%ld alloc_callers=%s\n",
           cell, L, E, H, B, T, V, threads, done, elapsed, TB * done / elapsed,
           flops * done / elapsed / 1e9, loss / (double)TB, ru.ru_maxrss / 1024.0,
           nlp_rnn_workspace_bytes(rnn) / 1048576.0, nlp_params_count(p), nallocs, who);
    nlp_optim_free(opt);
    nlp_rnn_free(rnn);
    nlp_params_free(p);
    free(ids);
    nlp_tensor_free(X), nlp_tensor_free(dX), nlp_tensor_free(Y), nlp_tensor_free(dY);
    nlp_tensor_free(Z), nlp_tensor_free(h), nlp_tensor_free(c);
    return 0;
}
