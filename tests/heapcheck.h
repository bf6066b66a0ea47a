/*
** heapcheck: the bytes the test program holds on the heap, so that the
** fault-injection tests can find leaks on the failure paths:
**
**     size_t before = heap_in_use();
**     ... run an operation with an allocation failing ...
**     assert_true(heap_in_use() == before);
**
** ASan's counter in the sanitizer build; else (glibc) malloc wrappers
** defined here, over glibc's own entry points; else 0 (no counter: ASan's
** leak checker is the only judge).  Header-only and it DEFINES malloc and
** friends: include it in exactly one file of a test program, after
** <stdlib.h> and <cmocka.h>.
**
** And the fault loop over it: fault_loop(name, op, arg) runs op(arg) with
** every allocation of lib/ failing in turn (nlp_alloc_fail_at), alone and
** with all later ones, each time requiring NLP_ENOMEM and the heap as it
** was; CHECK(cond) states an operation's own promise on failure.
*/
#ifndef NLP_TESTS_HEAPCHECK_H
#define NLP_TESTS_HEAPCHECK_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "nlp/alloc.h"
#include "nlp/error.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAPCHECK_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HEAPCHECK_ASAN 1
#endif

#ifdef HEAPCHECK_ASAN
/* From <sanitizer/allocator_interface.h>, which not every compiler
** installs; the sanitizer runtime always has it. */
size_t __sanitizer_get_current_allocated_bytes(void);
/* Bytes the program holds on the heap. */
static inline size_t heap_in_use(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#elif defined(__GLIBC__)
/*
** Without ASan the program counts the heap itself: it replaces malloc and
** friends (as glibc allows, by symbol interposition) with thin wrappers
** over glibc's own __libc_* entry points that add and subtract each
** block's usable size.  (glibc's mallinfo2 is not exact enough: blocks in
** its per-thread cache count as in use.)
*/
#include <malloc.h>
#include <stdatomic.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void *__libc_valloc(size_t n);
extern void *__libc_pvalloc(size_t n);
extern void __libc_free(void *p);

static atomic_llong heap_bytes;

static void *counted(void *p)
{
    if (p)
        atomic_fetch_add_explicit(&heap_bytes, (long long)malloc_usable_size(p),
                                  memory_order_relaxed);
    return p;
}

void *malloc(size_t n)
{
    return counted(__libc_malloc(n));
}

void *calloc(size_t n, size_t size)
{
    return counted(__libc_calloc(n, size));
}

void free(void *p)
{
    if (!p)
        return;
    atomic_fetch_sub_explicit(&heap_bytes, (long long)malloc_usable_size(p), memory_order_relaxed);
    __libc_free(p);
}

void *realloc(void *p, size_t n)
{
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = __libc_realloc(p, n);
    if (q || (p && n == 0))   /* moved or resized; or freed by realloc(p, 0) */
        atomic_fetch_sub_explicit(&heap_bytes, (long long)old, memory_order_relaxed);
    return counted(q);
}

void *reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n * size);
}

void *memalign(size_t align, size_t n)
{
    return counted(__libc_memalign(align, n));
}

void *aligned_alloc(size_t align, size_t n)
{
    return counted(__libc_memalign(align, n));
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    void *p = counted(__libc_memalign(align, n));
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *valloc(size_t n)
{
    return counted(__libc_valloc(n));
}

void *pvalloc(size_t n)
{
    return counted(__libc_pvalloc(n));
}

static inline size_t heap_in_use(void)
{
    return (size_t)atomic_load(&heap_bytes);
}
#else
static inline size_t heap_in_use(void)
{
    return 0;   /* no counter: ASan's leak checker is the only judge */
}
#endif

/* What the fault loop is doing, for messages from inside an operation. */
static const char *cur_op = "";
static long cur_n;
static int cur_sticky;

/* An operation's own promise on failure; disarms the schedule before
** failing the test, so the tests after it run normally. */
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            nlp_alloc_fail_at(0, 0);                                                 \
            fail_msg("%s, allocation %ld%s failing: %s does not hold", cur_op, cur_n, \
                     cur_sticky ? " and later ones" : "", #cond);                    \
        }                                                                            \
    } while (0)

typedef int (*fault_op)(void *arg);

/* Which schedules fault_loop_modes runs. */
enum { FAIL_ALONE = 1, FAIL_STICKY = 2, FAIL_BOTH = 3 };

/*
** Runs op once unarmed (warm-up), once counting its allocations, then once
** per allocation with that one failing (FAIL_ALONE) and with the later
** ones failing too (FAIL_STICKY), expecting NLP_ENOMEM and no change in
** the heap each time.  Returns the number of allocation points covered.
*/
static inline long fault_loop_modes(const char *name, fault_op op, void *arg, int modes)
{
    cur_op = name;
    cur_n = 0;
    cur_sticky = 0;
    nlp_alloc_fail_at(0, 0);
    int rc = op(arg);
    if (rc != NLP_OK)
        fail_msg("%s: warm-up run failed with %d", name, rc);
    size_t h0 = heap_in_use();
    nlp_alloc_fail_at(0, 0);
    rc = op(arg);
    long count = nlp_alloc_count();
    if (rc != NLP_OK)
        fail_msg("%s: counting run failed with %d", name, rc);
    if (heap_in_use() != h0)
        fail_msg("%s: a successful run leaves %zd bytes more on the heap", name,
                 (ptrdiff_t)(heap_in_use() - h0));
    if (count < 1)
        fail_msg("%s: no allocation to fail", name);
    for (int sticky = 0; sticky <= 1; sticky++) {
        if (!(modes & (sticky ? FAIL_STICKY : FAIL_ALONE)))
            continue;
        for (long n = 1; n <= count; n++) {
            cur_n = n;
            cur_sticky = sticky;
            size_t before = heap_in_use();
            nlp_alloc_fail_at(n, sticky);
            rc = op(arg);
            long calls = nlp_alloc_count();
            nlp_alloc_fail_at(0, 0);
            size_t after = heap_in_use();
            if (rc != NLP_ENOMEM)
                fail_msg("%s: allocation %ld of %ld failing%s: got %d (%s), want NLP_ENOMEM "
                         "(%ld allocations tried)", name, n, count,
                         sticky ? " (sticky)" : "", rc, nlp_error_string(rc), calls);
            if (after != before)
                fail_msg("%s: allocation %ld of %ld failing%s: %zd bytes leaked", name, n, count,
                         sticky ? " (sticky)" : "", (ptrdiff_t)(after - before));
        }
    }
    fprintf(stderr, "%s: %ld allocations, each failed %s\n", name, count,
            modes == FAIL_BOTH ? "alone and sticky" : modes == FAIL_ALONE ? "alone only" :
            "sticky only");
    cur_op = "";
    return count;
}

static inline long fault_loop(const char *name, fault_op op, void *arg)
{
    return fault_loop_modes(name, op, arg, FAIL_BOTH);
}

#endif /* NLP_TESTS_HEAPCHECK_H */
