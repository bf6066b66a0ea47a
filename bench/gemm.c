/*
** gemm: GFLOP/s of cblas_sgemm and of nlp_tensor_gemm, side by side, at the
** recurrent-step shapes (few rows M, row-major, A not transposed, B as is
** (NN) or transposed (NT), alpha 1, beta 1).  Built and run by
** bench/gemm.sh; single thread (OPENBLAS_NUM_THREADS=1 from the script).
**
**   gemm [--reps R] [--seconds S] [--m LIST] [--nk LIST]
**
** For each shape and form, R measurements of each side, interleaved, each
** repeating the call for S seconds of this thread's CPU time; prints the
** medians.
*/
#include "nlp/tensor.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* This thread's CPU time: the machine is shared, and time spent descheduled
   is not the kernel's (equal to wall-clock time on a quiet machine). */
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* GFLOP/s of one side: repeat the product for `seconds`. */
static double rate(int ours, int tb, int M, int N, int K, const float *A, const float *B,
                   float *C, double seconds)
{
    long reps = 0;
    double t0 = now(), t;
    do {
        for (int r = 0; r < 8; r++) {
            if (ours)
                nlp_tensor_gemm(NLP_NOTRANS, tb, M, N, K, 1.0f, A, K, B, tb ? K : N, 1.0f, C, N);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
                            K, 1.0f, A, K, B, tb ? K : N, 1.0f, C, N);
        }
        reps += 8;
    } while ((t = now() - t0) < seconds);
    return 2.0 * M * N * K * reps / t / 1e9;
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    char *end;
    while (*s && n < max) {
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 1 << 16)
            return -1;
        out[n++] = (int)v;
        s = *end == ',' || *end == 'x' ? end + 1 : end;
        if (end == s && *s)
            return -1;
    }
    return n;
}

int main(int argc, char **argv)
{
    int reps = 5;
    double seconds = 0.2;
    int ms[16] = {8, 16, 32, 64}, nm = 4;
    int nk[32] = {1024, 256, 256, 1024, 1536, 384, 384, 1536, 2048, 512, 512, 2048}, nnk = 12;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--reps"))
            reps = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--seconds"))
            seconds = atof(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--m"))
            nm = parse_list(argv[++i], ms, 16);
        else if (i + 1 < argc && !strcmp(argv[i], "--nk"))
            nnk = parse_list(argv[++i], nk, 32);
        else {
            fprintf(stderr, "usage: gemm [--reps R] [--seconds S] [--m 8,16] [--nk 1024x256,...]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 100 || !(seconds > 0 && seconds < 60) || nm < 1 || nnk < 2 ||
        nnk % 2) {
        fprintf(stderr, "gemm: bad arguments\n");
        return 2;
    }
    int maxm = 0, maxnk = 0;
    for (int i = 0; i < nm; i++)
        maxm = ms[i] > maxm ? ms[i] : maxm;
    for (int i = 0; i < nnk; i += 2)
        maxnk = nk[i] * nk[i + 1] > maxnk ? nk[i] * nk[i + 1] : maxnk;
    int maxd = 0;
    for (int i = 0; i < nnk; i++)
        maxd = nk[i] > maxd ? nk[i] : maxd;
    float *A = nlp_tensor_alloc((size_t)maxm * maxd), *B = nlp_tensor_alloc((size_t)maxnk);
    float *C = nlp_tensor_alloc((size_t)maxm * maxd);
    if (!A || !B || !C) {
        fprintf(stderr, "gemm: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < (size_t)maxm * maxd; i++)
        A[i] = (float)(i % 7) * 0.1f - 0.3f, C[i] = 0;
    for (size_t i = 0; i < (size_t)maxnk; i++)
        B[i] = (float)(i % 5) * 0.01f - 0.02f;

    printf("%-4s %5s %5s %5s %9s %9s %7s\n", "form", "M", "N", "K", "cblas", "ours", "ratio");
    double *rc = malloc(sizeof(double) * reps), *ro = malloc(sizeof(double) * reps);
    if (!rc || !ro)
        return 1;
    for (int tb = 0; tb < 2; tb++)
        for (int p = 0; p < nnk; p += 2)
            for (int mi = 0; mi < nm; mi++) {
                int M = ms[mi], N = nk[p], K = nk[p + 1];
                rate(0, tb, M, N, K, A, B, C, seconds / 4); /* warm up both */
                rate(1, tb, M, N, K, A, B, C, seconds / 4);
                for (int r = 0; r < reps; r++) {
                    rc[r] = rate(0, tb, M, N, K, A, B, C, seconds);
                    ro[r] = rate(1, tb, M, N, K, A, B, C, seconds);
                }
                qsort(rc, reps, sizeof *rc, cmp);
                qsort(ro, reps, sizeof *ro, cmp);
                double c = rc[reps / 2], o = ro[reps / 2];
                printf("%-4s %5d %5d %5d %9.1f %9.1f %6.2fx\n", tb ? "NT" : "NN", M, N, K, c, o,
                       o / c);
                fflush(stdout);
            }
    free(rc);
    free(ro);
    nlp_tensor_free(A);
    nlp_tensor_free(B);
    nlp_tensor_free(C);
    return 0;
}
