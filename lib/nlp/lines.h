/*
** lines: a line reader over a FILE* with no line-length limit.
**
** The reader keeps one growing buffer: memory stays proportional to the
** longest line read (plus a fixed read block), never to the file.  Lines
** may hold any bytes, NUL included (use the returned length, not strlen).
** A final line without a newline is returned like any other; an empty file
** gives no lines.  The '\n' is never part of the returned line; a '\r'
** before it is kept unless NLP_LINES_STRIP_CR is given (a lone '\r' inside
** a line is always kept).  The reader does not validate UTF-8.
*/
#ifndef NLP_LINES_H
#define NLP_LINES_H

#include <stddef.h>
#include <stdio.h>

typedef struct nlp_lines nlp_lines;

enum {
    NLP_LINES_STRIP_CR = 1 << 0   /* drop one '\r' before '\n' or at EOF (CRLF files) */
};

/*
** Sets *out to a reader of f (not closed by the reader; the caller keeps
** owning it) and returns NLP_OK.  flags: 0 or NLP_LINES_STRIP_CR.  Returns
** NLP_EINVAL when f is NULL or flags has another bit, NLP_ENOMEM when out
** of memory; *out is NULL on failure.  Free with nlp_lines_free.
*/
int nlp_lines_new(nlp_lines **out, FILE *f, int flags);

/*
** Reads the next line.  Returns 1 with *line pointing at its bytes (NUL-
** terminated, the terminator not counted in *len), 0 at end of input, or a
** negative code: NLP_EIO (read error: errno tells why) or NLP_ENOMEM.  The
** line lives in the reader's buffer and stays valid, and writable, until
** the next call or nlp_lines_free: the caller may modify the bytes in place.
*/
int nlp_lines_next(nlp_lines *r, char **line, size_t *len);

/*
** Reads a block of whole lines at once, for callers that process text in
** bulk: every complete line now buffered (at least one; a final line
** without a newline counts), each with its '\n' kept, so the block is
** *len bytes of plain text, not NUL-terminated.  *nlines receives the
** number of lines in it: they are numbered nlp_lines_number(r) - *nlines
** + 1 to nlp_lines_number(r).  NLP_LINES_STRIP_CR does not apply.  A block
** is at most the read block size (64 KiB) or one line when that is longer,
** so memory stays proportional to the longest line.  Returns 1, 0 at end
** of input, or NLP_EIO / NLP_ENOMEM.  The block stays valid until the next
** call; it may be mixed with nlp_lines_next.
*/
int nlp_lines_next_block(nlp_lines *r, char **block, size_t *len, long *nlines);

/* 1-based number of the line last returned by nlp_lines_next (0 before). */
long nlp_lines_number(const nlp_lines *r);

/* Frees the reader (not its FILE).  NULL is a no-op. */
void nlp_lines_free(nlp_lines *r);

#endif
