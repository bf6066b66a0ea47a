/*
** codepoints: UTF-8 text to code points.  See nlp/codepoints.h.
*/
#include "nlp/codepoints.h"
#include "nlp/alloc.h"

#include <errno.h>
#include <string.h>

#include "nlp/utf8.h"

void nlp_codepoints_init(nlp_codepoints *t)
{
    memset(t, 0, sizeof *t);
}

void nlp_codepoints_free(nlp_codepoints *t)
{
    if (!t)
        return;
    nlp_free(t->cp);
    memset(t, 0, sizeof *t);
}

/* Room for `more` entries after t->n, growing by doubling. */
static int reserve(nlp_codepoints *t, size_t more)
{
    if (t->cap - t->n >= more)
        return NLP_OK;
    if (more > SIZE_MAX / sizeof *t->cp - t->n)
        return NLP_ENOMEM;
    size_t need = t->n + more;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < need)
        cap = cap > SIZE_MAX / sizeof *t->cp / 2 ? need : cap * 2;
    int32_t *p = nlp_realloc(t->cp, cap * sizeof *p);
    if (!p)
        return NLP_ENOMEM;
    t->cp = p;
    t->cap = cap;
    return NLP_OK;
}

int nlp_codepoints_append(nlp_codepoints *t, const char *s, size_t n, const char *name,
                          int strict, nlp_codepoints_warn_fn warn, void *ctx, nlp_error *e)
{
    /* Every code point takes at least one byte: n entries are enough. */
    if (reserve(t, n) != NLP_OK)
        return nlp_error_set(e, NLP_ENOMEM, name, 0, NULL);
    int32_t *out = t->cp + t->n;
    long line = 1;
    long warned = 0; /* last line a warning was given for */
    size_t i = 0;
    while (i < n) {
        unsigned char b = (unsigned char)s[i];
        if (b < 0x80) {
            *out++ = b;
            line += b == '\n';
            i++;
            continue;
        }
        int32_t cp;
        int k = nlp_utf8_decode(s + i, n - i, &cp);
        if (k < 0) {
            if (strict) {
                t->n = (size_t)(out - t->cp);
                return nlp_error_set(e, NLP_EUTF8, name, line, "invalid UTF-8");
            }
            t->nbad++;
            if (warn && warned != line) {
                nlp_error w;
                nlp_error_set(&w, NLP_EUTF8, name, line, "invalid UTF-8");
                warn(ctx, &w);
            }
            warned = line;
            *out++ = NLP_UTF8_REPLACEMENT;
            i += (size_t)-k;
        } else {
            *out++ = cp;
            i += (size_t)k;
        }
    }
    t->n = (size_t)(out - t->cp);
    return NLP_OK;
}

int nlp_codepoints_read(nlp_codepoints *t, FILE *f, const char *name, int strict,
                        nlp_codepoints_warn_fn warn, void *ctx, nlp_error *e)
{
    /* Whole file in memory: a sequence split across reads needs no care,
    ** and the code points take four times as much anyway. */
    size_t cap = 1 << 16, len = 0;
    char *buf = nlp_malloc(cap);
    if (!buf)
        return nlp_error_set(e, NLP_ENOMEM, name, 0, NULL);
    errno = 0;
    for (;;) {
        if (len == cap) {
            char *p = cap <= SIZE_MAX / 2 ? nlp_realloc(buf, cap * 2) : NULL;
            if (!p) {
                nlp_free(buf);
                return nlp_error_set(e, NLP_ENOMEM, name, 0, NULL);
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        int err = errno;
        nlp_free(buf);
        return nlp_error_set(e, NLP_EIO, name, 0, "%s", err ? strerror(err) : "read error");
    }
    int rc = nlp_codepoints_append(t, buf, len, name, strict, warn, ctx, e);
    nlp_free(buf);
    return rc;
}

int nlp_codepoints_read_files(nlp_codepoints *t, const char *const *paths, size_t npaths,
                              const char *stdin_name, int strict,
                              nlp_codepoints_warn_fn warn, nlp_codepoints_input_fn input,
                              void *ctx, nlp_error *e)
{
    static const char *const dash[] = {"-"};
    if (npaths == 0) {
        paths = dash;
        npaths = 1;
    }
    if (!stdin_name)
        stdin_name = "-";
    for (size_t i = 0; i < npaths; i++) {
        const int is_stdin = strcmp(paths[i], "-") == 0;
        const char *name = is_stdin ? stdin_name : paths[i];
        FILE *f = is_stdin ? stdin : fopen(paths[i], "rb");
        if (!f)
            return nlp_error_set(e, NLP_EIO, name, 0, "%s", strerror(errno));
        if (input)
            input(ctx, name, 0);
        int rc = nlp_codepoints_read(t, f, name, strict, warn, ctx, e);
        if (!is_stdin)
            fclose(f);
        if (rc != NLP_OK)
            return rc;
        if (input)
            input(ctx, name, 1);
    }
    return NLP_OK;
}
