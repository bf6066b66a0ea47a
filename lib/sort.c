/* sort: a stable bottom-up merge sort of indices (see sort.h). */
#include "sort.h"

#include <string.h>

void nlp_sort_stable(long *idx, long *tmp, long n, nlp_sort_before_fn before, const void *ctx)
{
    for (long w = 1; w < n; w *= 2) {
        for (long lo = 0; lo < n; lo += 2 * w) {
            const long mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            long a = lo, b = mid, k = lo;
            /* The right run's element goes first only when it must: stable. */
            while (a < mid && b < hi)
                tmp[k++] = before(ctx, idx[b], idx[a]) ? idx[b++] : idx[a++];
            while (a < mid)
                tmp[k++] = idx[a++];
            while (b < hi)
                tmp[k++] = idx[b++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof *idx);
    }
}
