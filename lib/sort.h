/*
** sort: the one stable sort of index arrays in libnlp (internal).
**
** qsort(3) is neither stable by contract nor given a context, and the
** orders libnlp needs (vocabulary by count, examples by length, labels by
** probability) must be reproducible on every libc, ties included.
*/
#ifndef NLP_SORT_H
#define NLP_SORT_H

/* Nonzero when index a must come before index b (a strict order). */
typedef int (*nlp_sort_before_fn)(const void *ctx, long a, long b);

/*
** Reorders idx[0..n) so that no element is preceded by one it must come
** before; elements in no such relation keep their relative order (stable).
** tmp has room for n.  A bottom-up merge sort: n log n, no recursion, no
** allocation.
*/
void nlp_sort_stable(long *idx, long *tmp, long n, nlp_sort_before_fn before, const void *ctx);

#endif
