/*
** err: status codes and error context for libnlp.
**
** Every fallible libnlp function returns NLP_OK (0) or a negative NLP_E*
** code.  Functions that read files or text also fill a caller-owned
** nlp_error, so a tool can print "FILE:LINE: what is wrong" without the
** library ever printing anything itself.
*/
#ifndef NLP_ERR_H
#define NLP_ERR_H

#include <stddef.h>

enum {
    NLP_OK = 0,
    NLP_ENOMEM = -1,      /* allocation failed */
    NLP_EIO = -2,         /* read/write/open failed; errno-style detail in text */
    NLP_EINVAL = -3,      /* bad argument or option value */
    NLP_EUTF8 = -4,       /* invalid UTF-8 in strict mode */
    NLP_EFORMAT = -5,     /* malformed file or record */
    NLP_ETRUNCATED = -6,  /* file ends early */
    NLP_ECHECKSUM = -7,   /* CRC mismatch */
    NLP_EVERSION = -8,    /* file from a newer format version */
    NLP_EKIND = -9,       /* model file of another tool's kind */
    NLP_EEMPTY = -10,     /* input holds nothing to work on */
    NLP_EICU = -11,       /* ICU reported a failure */
    NLP_ERANGE = -12      /* value out of range (too long, too large) */
};

#define NLP_ERROR_TEXT_MAX 512
#define NLP_ERROR_FILE_MAX 256

/* Where and why an operation failed.  line/column are 1-based; 0 = unknown. */
typedef struct nlp_error {
    int code;                        /* NLP_E* code, NLP_OK when clear */
    char file[NLP_ERROR_FILE_MAX];   /* file name, "" when not about a file */
    long line;                       /* 1-based line, 0 when not known */
    long column;                     /* 1-based column, 0 when not known */
    char text[NLP_ERROR_TEXT_MAX];   /* human-readable message, no trailing newline */
} nlp_error;

/* Static English text for a code; never NULL. */
const char *nlp_error_string(int code);

/* Resets e to "no error".  e may be NULL. */
void nlp_error_clear(nlp_error *e);

/*
** Records an error in e (which may be NULL) and returns code, so callers can
** write `return nlp_error_set(e, NLP_EFORMAT, path, line, "bad header");`.
** file may be NULL; fmt is printf-style and may be NULL (nlp_error_string text).
*/
int nlp_error_set(nlp_error *e, int code, const char *file, long line,
                  const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
** Formats e as "file:line:column: text" (parts that are unknown are left
** out; the column only with a line) into
** buf of size n; returns buf.  Used by tools to print messages.
*/
char *nlp_error_format(const nlp_error *e, char *buf, size_t n);

#endif
