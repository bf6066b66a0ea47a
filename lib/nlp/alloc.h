/*
** alloc: the one place libnlp allocates memory.
**
** Every allocation in lib/ goes through nlp_malloc/nlp_calloc/nlp_realloc/
** nlp_strdup/nlp_aligned_alloc and is released with nlp_free, so a test can
** make the Nth allocation fail and check that every caller unwinds with
** NLP_ENOMEM and leaks nothing (as SQLite's and Lua's test allocators do).
**
** The failure schedule is the one piece of process-wide state in libnlp: it
** exists only for tests, is off unless nlp_alloc_fail_at() is called, and is
** kept in atomics so threaded code may allocate while it is armed.
*/
#ifndef NLP_ALLOC_H
#define NLP_ALLOC_H

#include <stddef.h>

/* malloc(3) and friends, counted and subject to the failure schedule.
** nlp_malloc(0) returns a unique pointer, like glibc's malloc(0). */
void *nlp_malloc(size_t n);
void *nlp_calloc(size_t count, size_t size);  /* NULL when count*size overflows */
void *nlp_realloc(void *p, size_t n);          /* on failure p stays valid */
char *nlp_strdup(const char *s);
char *nlp_strndup(const char *s, size_t n);
/* Zeroed memory aligned to align (a power of two, multiple of sizeof(void*));
** bytes is rounded up to a multiple of align.  Freed with nlp_free. */
void *nlp_aligned_alloc(size_t align, size_t bytes);
/* nlp_free(NULL) is a no-op.  Memory from these functions is ordinary
** malloc(3) memory, so free(3) releases it too (callers outside lib/ may
** use either). */
void nlp_free(void *p);

/*
** Grows the array *p, of *cap elements of size bytes each, to hold at least
** need elements: the capacity doubles, starting from first when it is 0.
** Returns 0, or NLP_ENOMEM (-1; *p and *cap untouched) when the memory or
** the size arithmetic runs out.
*/
int nlp_grow(void **p, size_t *cap, size_t need, size_t size, size_t first);

/*
** Test hooks.  nlp_alloc_fail_at(n) with n >= 1 makes the n-th allocation
** from now fail (return NULL), and every one after it too when sticky is
** non-zero; n = 0 disarms.  nlp_alloc_count() is the number of allocation
** calls since the last nlp_alloc_fail_at(), so a test can first count the
** allocations of an operation, then fail each in turn.
*/
void nlp_alloc_fail_at(long n, int sticky);
long nlp_alloc_count(void);

#endif
