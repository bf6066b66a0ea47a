/*
** codepoints: UTF-8 text read into an array of Unicode code points.
**
** What a character-level model reads: files (or standard input) decoded
** whole into code points, with ill-formed UTF-8 either repaired (each
** maximal subpart becomes one U+FFFD, see nlp/utf8.h) and reported once
** per line through a warning callback, or refused (strict).  The library
** never prints: the callback decides what the user sees.
**
**     nlp_codepoints t;
**     nlp_codepoints_init(&t);
**     rc = nlp_codepoints_read_files(&t, paths, npaths, "<stdin>", strict,
**                                    warn, NULL, warn_ctx, &err);
**     ... t.cp[0 .. t.n) ...
**     nlp_codepoints_free(&t);
*/
#ifndef NLP_CODEPOINTS_H
#define NLP_CODEPOINTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <nlp/error.h>

/* A text as code points (a caller-owned struct; the array is the library's). */
typedef struct nlp_codepoints {
    int32_t *cp;     /* (n) code points; a user may overwrite them (e.g. ids) */
    size_t n;        /* characters */
    size_t cap;      /* allocated entries in cp */
    size_t nbad;     /* ill-formed UTF-8 sequences replaced by U+FFFD */
} nlp_codepoints;

/* Called once per input line holding invalid UTF-8, with e->file, e->line
** and e->text ("invalid UTF-8") set; ctx is the caller's. */
typedef void (*nlp_codepoints_warn_fn)(void *ctx, const nlp_error *e);

/* Sets t to the empty text (no allocation). */
void nlp_codepoints_init(nlp_codepoints *t);

/* Frees t's array and empties it; t itself is the caller's.  Safe twice. */
void nlp_codepoints_free(nlp_codepoints *t);

/*
** Decodes the n bytes at s (one "file" called name in messages) and appends
** their code points to t.  Each ill-formed sequence becomes one U+FFFD and
** t->nbad grows; warn (may be NULL) is called once per line that had any,
** with the 1-based line number.  With strict != 0 the first one is an error
** instead: NLP_EUTF8 with name and line in e (t keeps what came before it).
** Other errors: NLP_ENOMEM.  e may be NULL.
*/
int nlp_codepoints_append(nlp_codepoints *t, const char *s, size_t n, const char *name,
                          int strict, nlp_codepoints_warn_fn warn, void *ctx, nlp_error *e);

/*
** As nlp_codepoints_append for all of f (read to its end; not closed).  A
** read error is NLP_EIO with name and the system's reason in e.
*/
int nlp_codepoints_read(nlp_codepoints *t, FILE *f, const char *name, int strict,
                        nlp_codepoints_warn_fn warn, void *ctx, nlp_error *e);

/* Called before (end == 0) and after (end == 1) each input a corpus reader
** reads, with the input's name as used in messages (valid until the reader
** returns); ctx is the caller's, the one the warnings get. */
typedef void (*nlp_codepoints_input_fn)(void *ctx, const char *name, int end);

/*
** Reads a corpus: the files paths[0..npaths) one after the other, appended
** to t; npaths == 0 reads standard input.  A path "-" is standard input,
** named stdin_name in messages ("-" when NULL).  warn and input (either
** may be NULL) get ctx: input brackets each input (so a caller can limit
** and sum up its warnings per input), warn is called once per line with
** invalid UTF-8 as in nlp_codepoints_append.  Stops at the first error
** (input is then not called to end that input): NLP_EIO (a file that
** cannot be opened or read, with its name and the system's reason, e.g.
** "Is a directory"), NLP_EUTF8 (strict) or NLP_ENOMEM, with e filled.
*/
int nlp_codepoints_read_files(nlp_codepoints *t, const char *const *paths, size_t npaths,
                              const char *stdin_name, int strict,
                              nlp_codepoints_warn_fn warn, nlp_codepoints_input_fn input,
                              void *ctx, nlp_error *e);

#endif
