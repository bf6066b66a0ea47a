/*
** alloc: counted allocation with a test-only failure schedule.
*/
#include "nlp/alloc.h"
#include "nlp/error.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The failure schedule (see alloc.h for why this is global). */
static atomic_long alloc_calls;   /* allocations since the schedule was set */
static atomic_long alloc_fail_n;  /* 0: off; else the call number that fails */
static atomic_int alloc_sticky;   /* fail every call from fail_n on */

static int alloc_should_fail(void)
{
    long n = atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed) + 1;
    long f = atomic_load_explicit(&alloc_fail_n, memory_order_relaxed);
    if (f <= 0)
        return 0;
    return n == f || (n > f && atomic_load_explicit(&alloc_sticky, memory_order_relaxed));
}

void nlp_alloc_fail_at(long n, int sticky)
{
    atomic_store(&alloc_fail_n, 0);
    atomic_store(&alloc_calls, 0);
    atomic_store(&alloc_sticky, sticky != 0);
    atomic_store(&alloc_fail_n, n > 0 ? n : 0);
}

long nlp_alloc_count(void)
{
    return atomic_load(&alloc_calls);
}

void *nlp_malloc(size_t n)
{
    if (alloc_should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *nlp_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    if (alloc_should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *nlp_realloc(void *p, size_t n)
{
    if (alloc_should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

char *nlp_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = nlp_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *nlp_strdup(const char *s)
{
    return nlp_strndup(s, SIZE_MAX);
}

void *nlp_aligned_alloc(size_t align, size_t bytes)
{
    if (bytes == 0)
        bytes = 1;
    if (bytes > SIZE_MAX - align)
        return NULL;
    bytes = (bytes + align - 1) / align * align;
    if (alloc_should_fail())
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align, bytes) != 0)
        return NULL;
    memset(p, 0, bytes);
    return p;
}

void nlp_free(void *p)
{
    free(p);
}

int nlp_grow(void **p, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return NLP_OK;
    size_t c = *cap ? *cap : (first ? first : 1);
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return NLP_ENOMEM;
        c *= 2;
    }
    if (size && c > SIZE_MAX / size)
        return NLP_ENOMEM;
    void *q = nlp_realloc(*p, c * size);
    if (!q)
        return NLP_ENOMEM;
    *p = q;
    *cap = c;
    return NLP_OK;
}
