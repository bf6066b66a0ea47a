/*
** fuzz.h: what the libFuzzer targets in tests/fuzz/ share.
**
** Each target is one fuzz_NAME.c defining LLVMFuzzerTestOneInput; it feeds
** the input to one parser of the library and then checks what the API
** promises about the result.  A broken promise aborts (FUZZ_CHECK), so
** libFuzzer saves the input like any crash.  Inputs handed to the library
** are copied into buffers of exactly their size: a read past the end is an
** ASan report, not a silent read of the next byte.
*/
#ifndef FUZZ_H
#define FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with the condition's text when an API promise does not hold. */
#define FUZZ_CHECK(cond)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                     \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* The input, consumed from the front: option bytes first, then the data. */
typedef struct fuzz_input {
    const uint8_t *p;
    size_t n;
} fuzz_input;

/* The next byte, or 0 when the input is used up. */
static inline uint8_t fuzz_byte(fuzz_input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

/* A malloc'ed copy of p[0..n) in a block of exactly n bytes (one byte for
** n == 0, which is never read).  Not NUL-terminated. */
static inline char *fuzz_dup(const void *p, size_t n)
{
    char *s = malloc(n ? n : 1);
    FUZZ_CHECK(s != NULL);
    if (n)
        memcpy(s, p, n);
    return s;
}

/* A stream reading buf[0..n); an empty input reads /dev/null, since
** fmemopen refuses size 0.  Close with fclose. */
static inline FILE *fuzz_fmemopen(const void *buf, size_t n)
{
    FILE *f = n ? fmemopen((void *)buf, n, "r") : fopen("/dev/null", "r");
    FUZZ_CHECK(f != NULL);
    return f;
}

/*
** A path naming a file that holds exactly data[0..n), for APIs that only
** load from a path.  The file is an anonymous memory file made once and
** rewritten on every call, so nothing touches the disk and nothing is left
** behind.  The path stays valid until the next call.
*/
static inline const char *fuzz_path(const void *data, size_t n)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("nlp-fuzz", MFD_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    size_t done = 0;
    while (done < n) {
        ssize_t k = pwrite(fd, (const char *)data + done, n - done, (off_t)done);
        FUZZ_CHECK(k > 0);
        done += (size_t)k;
    }
    return path;
}

/* Checks a failure as nlp/error.h promises it: a known negative code,
** recorded in e with a message. */
static inline void fuzz_check_error(int rc, const nlp_error *e)
{
    FUZZ_CHECK(rc < 0 && strcmp(nlp_error_string(rc), nlp_error_string(-1000)) != 0);
    FUZZ_CHECK(e->code == rc);
    FUZZ_CHECK(e->text[0] != '\0');
    char buf[NLP_ERROR_TEXT_MAX + NLP_ERROR_FILE_MAX + 32];
    nlp_error_format(e, buf, sizeof buf);
    FUZZ_CHECK(buf[0] != '\0');
}

#endif
