/*
** lines: a line reader with no length limit.  See nlp/lines.h.
**
** One buffer holds buf[start..end) of unread bytes.  To return a line the
** reader searches for '\n' from `scan` (bytes before it are known to hold
** none); when there is none it moves the pending bytes to the front, grows
** the buffer if it is full, and reads another block.  The '\n' is replaced
** by a NUL in place, so a line costs no copy.
*/
#include "nlp/lines.h"
#include "nlp/alloc.h"
#include "nlp/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LINES_BLOCK (64 * 1024)   /* bytes asked of fread at a time */

struct nlp_lines {
    FILE *f;          /* input, owned by the caller */
    int flags;        /* NLP_LINES_* */
    char *buf;        /* bytes read but not yet returned live in buf[start..end) */
    size_t cap;       /* size of buf */
    size_t start;     /* first byte of the next line */
    size_t end;       /* one past the last byte read */
    size_t scan;      /* buf[start..scan) holds no '\n' */
    long lineno;      /* number of the last line returned */
    int eof;          /* fread reported end of file or an error */
};

int nlp_lines_new(nlp_lines **out, FILE *f, int flags)
{
    *out = NULL;
    if (!f || (flags & ~NLP_LINES_STRIP_CR))
        return NLP_EINVAL;
    nlp_lines *r = nlp_calloc(1, sizeof *r);
    if (!r)
        return NLP_ENOMEM;
    r->cap = LINES_BLOCK + 1;
    r->buf = nlp_malloc(r->cap);
    if (!r->buf) {
        nlp_free(r);
        return NLP_ENOMEM;
    }
    r->f = f;
    r->flags = flags;
    *out = r;
    return NLP_OK;
}

void nlp_lines_free(nlp_lines *r)
{
    if (!r)
        return;
    nlp_free(r->buf);
    nlp_free(r);
}

long nlp_lines_number(const nlp_lines *r)
{
    return r->lineno;
}

/* Makes room for at least LINES_BLOCK + 1 more bytes after end. */
static int make_room(nlp_lines *r)
{
    if (r->start > 0) {
        size_t pending = r->end - r->start;
        memmove(r->buf, r->buf + r->start, pending);
        r->scan -= r->start;
        r->end = pending;
        r->start = 0;
    }
    if (r->cap - r->end >= LINES_BLOCK + 1)
        return NLP_OK;
    size_t need = r->end + LINES_BLOCK + 1;
    size_t c = r->cap;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return NLP_ENOMEM;
        c *= 2;
    }
    char *p = nlp_realloc(r->buf, c);
    if (!p)
        return NLP_ENOMEM;
    r->buf = p;
    r->cap = c;
    return NLP_OK;
}

/* Hands out buf[start..stop) as the next line; `next` is where the one
** after it starts. */
static int emit(nlp_lines *r, size_t stop, size_t next, char **line, size_t *len)
{
    char *s = r->buf + r->start;
    size_t n = stop - r->start;
    if ((r->flags & NLP_LINES_STRIP_CR) && n > 0 && s[n - 1] == '\r')
        n--;
    s[n] = '\0';
    r->start = r->scan = next;
    r->lineno++;
    *line = s;
    *len = n;
    return 1;
}

int nlp_lines_next(nlp_lines *r, char **line, size_t *len)
{
    for (;;) {
        char *nl = r->scan < r->end ? memchr(r->buf + r->scan, '\n', r->end - r->scan) : NULL;
        if (nl) {
            size_t stop = (size_t)(nl - r->buf);
            return emit(r, stop, stop + 1, line, len);
        }
        r->scan = r->end;
        if (r->eof) {
            if (ferror(r->f))
                return NLP_EIO;
            if (r->start == r->end)
                return 0;
            /* Final line without a newline: make_room left a spare byte. */
            return emit(r, r->end, r->end, line, len);
        }
        int rc = make_room(r);
        if (rc != NLP_OK)
            return rc;
        size_t got = fread(r->buf + r->end, 1, LINES_BLOCK, r->f);
        r->end += got;
        if (got < LINES_BLOCK)
            r->eof = feof(r->f) || ferror(r->f);
    }
}

int nlp_lines_next_block(nlp_lines *r, char **block, size_t *len, long *nlines)
{
    for (;;) {
        char *nl = NULL;
        if (r->scan < r->end)
            nl = memrchr(r->buf + r->scan, '\n', r->end - r->scan);
        if (nl || (r->eof && r->start < r->end)) {
            size_t stop = nl ? (size_t)(nl - r->buf) + 1 : r->end;
            long count = 0;
            for (const char *p = r->buf + r->start;
                 (p = memchr(p, '\n', (size_t)(r->buf + stop - p))) != NULL; p++)
                count++;
            if (!nl)
                count++;                     /* final line without a newline */
            *block = r->buf + r->start;
            *len = stop - r->start;
            *nlines = count;
            r->lineno += count;
            r->start = r->scan = stop;
            return 1;
        }
        r->scan = r->end;
        if (r->eof)
            return ferror(r->f) ? NLP_EIO : 0;
        int rc = make_room(r);
        if (rc != NLP_OK)
            return rc;
        size_t got = fread(r->buf + r->end, 1, LINES_BLOCK, r->f);
        r->end += got;
        if (got < LINES_BLOCK)
            r->eof = feof(r->f) || ferror(r->f);
    }
}
