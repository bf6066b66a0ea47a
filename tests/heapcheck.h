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
** <stdlib.h>.
*/
#ifndef NLP_TESTS_HEAPCHECK_H
#define NLP_TESTS_HEAPCHECK_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
static size_t heap_in_use(void)
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

static size_t heap_in_use(void)
{
    return (size_t)atomic_load(&heap_bytes);
}
#else
static size_t heap_in_use(void)
{
    return 0;   /* no counter: ASan's leak checker is the only judge */
}
#endif

#endif /* NLP_TESTS_HEAPCHECK_H */
