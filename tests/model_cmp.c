/*
** model_cmp: are two model files' tensors the same bits?
**
**   tests/model_cmp A.model B.model
**   tests/model_cmp --tol T A.model B.model
**
** Loads both (any kind, every check of nlp_model_load) and compares the
** tensors: the same names, shapes and bytes (memcmp of the float32 data),
** whatever the metadata says (run times and command lines differ between
** runs that computed the same weights).  Exit 0 when they match, 1 when
** they differ (each difference is named on stderr), 2 when a file does not
** load.  For the resume tests: an interrupted and resumed run must end
** with the very weights of an uninterrupted one.
**
** With --tol T the values need only be close: |a - b| <= T * (1 +
** max(|a|, |b|)) for every element (the largest difference of each tensor
** is reported on stderr), for runs that compute the same sums in another
** order (threads, MPI ranks).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlp/model.h"

static nlp_model *load(const char *path)
{
    nlp_model *m;
    nlp_error e;
    if (nlp_model_load(&m, path, NULL, &e) != NLP_OK) {
        char buf[1024];
        fprintf(stderr, "model_cmp: %s\n", nlp_error_format(&e, buf, sizeof buf));
        return NULL;
    }
    return m;
}

/* Tensors of a missing from b, or different; returns how many. */
static int compare(const nlp_model *a, const nlp_model *b, const char *na, const char *nb,
                   int values, double tol)
{
    int bad = 0;
    for (size_t i = 0; i < nlp_model_tensor_count(a); i++) {
        const char *name = nlp_model_tensor_name(a, i);
        int da, db;
        const size_t *sa, *sb;
        const float *xa = nlp_model_tensor(a, name, &da, &sa);
        const float *xb = nlp_model_tensor(b, name, &db, &sb);
        if (!xb) {
            fprintf(stderr, "model_cmp: tensor '%s' is in %s, not in %s\n", name, na, nb);
            bad++;
            continue;
        }
        if (!values)
            continue;
        size_t n = 1;
        int same = da == db;
        for (int d = 0; same && d < da; d++) {
            same = sa[d] == sb[d];
            n *= sa[d];
        }
        if (!same) {
            fprintf(stderr, "model_cmp: tensor '%s' has other shapes in %s and %s\n", name,
                    na, nb);
            bad++;
        } else if (tol > 0) {
            double worst = 0;
            size_t at = 0;
            for (size_t k = 0; k < n; k++) {
                double d = fabs((double)xa[k] - (double)xb[k]);
                double r = d / (1 + fmax(fabs((double)xa[k]), fabs((double)xb[k])));
                if (!(r <= worst)) { /* NaN counts as the worst */
                    worst = r;
                    at = k;
                }
            }
            fprintf(stderr, "model_cmp: tensor '%s': largest difference %.3g (relative to 1 + "
                    "|value|) at element %zu\n", name, worst, at);
            if (!(worst <= tol)) {
                fprintf(stderr, "model_cmp: tensor '%s' differs by more than %g\n", name, tol);
                bad++;
            }
        } else if (memcmp(xa, xb, n * sizeof *xa) != 0) {
            size_t k = 0;
            while (k < n && memcmp(xa + k, xb + k, sizeof *xa) == 0)
                k++;
            fprintf(stderr, "model_cmp: tensor '%s' differs from element %zu on (%.9g in %s, "
                    "%.9g in %s)\n", name, k, (double)xa[k], na, (double)xb[k], nb);
            bad++;
        }
    }
    return bad;
}

int main(int argc, char **argv)
{
    double tol = 0;
    if (argc == 5 && strcmp(argv[1], "--tol") == 0) {
        char *end;
        tol = strtod(argv[2], &end);
        if (end == argv[2] || *end || !(tol > 0 && tol < 1)) {
            fprintf(stderr, "model_cmp: --tol wants a number in (0, 1), not '%s'\n", argv[2]);
            return 2;
        }
        argv += 2;
        argc -= 2;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: model_cmp [--tol T] A.model B.model\n");
        return 2;
    }
    nlp_model *a = load(argv[1]), *b = a ? load(argv[2]) : NULL;
    if (!a || !b) {
        nlp_model_free(a);
        return 2;
    }
    int bad = compare(a, b, argv[1], argv[2], 1, tol) + compare(b, a, argv[2], argv[1], 0, tol);
    if (nlp_model_tensor_count(a) == 0) {
        fprintf(stderr, "model_cmp: %s has no tensors\n", argv[1]);
        bad++;
    }
    nlp_model_free(a);
    nlp_model_free(b);
    return bad ? 1 : 0;
}
