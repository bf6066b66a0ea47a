/*
** err: status codes and error context.  See nlp/error.h.
*/
#include "nlp/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *nlp_error_string(int code)
{
    switch (code) {
    case NLP_OK: return "success";
    case NLP_ENOMEM: return "out of memory";
    case NLP_EIO: return "input/output error";
    case NLP_EINVAL: return "invalid argument";
    case NLP_EUTF8: return "invalid UTF-8";
    case NLP_EFORMAT: return "malformed input";
    case NLP_ETRUNCATED: return "file is truncated";
    case NLP_ECHECKSUM: return "checksum mismatch";
    case NLP_EVERSION: return "unsupported format version";
    case NLP_EKIND: return "wrong kind of model";
    case NLP_EEMPTY: return "empty input";
    case NLP_EICU: return "ICU error";
    case NLP_ERANGE: return "value out of range";
    default: return "unknown error";
    }
}

void nlp_error_clear(nlp_error *e)
{
    if (!e)
        return;
    memset(e, 0, sizeof *e);
}

int nlp_error_set(nlp_error *e, int code, const char *file, long line,
                  const char *fmt, ...)
{
    if (!e)
        return code;
    e->code = code;
    e->line = line;
    e->column = 0;
    snprintf(e->file, sizeof e->file, "%s", file ? file : "");
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, sizeof e->text, fmt, ap);
        va_end(ap);
    } else {
        snprintf(e->text, sizeof e->text, "%s", nlp_error_string(code));
    }
    return code;
}

char *nlp_error_format(const nlp_error *e, char *buf, size_t n)
{
    if (n == 0)
        return buf;
    if (!e) {
        snprintf(buf, n, "%s", nlp_error_string(NLP_OK));
        return buf;
    }
    const char *text = e->text[0] ? e->text : nlp_error_string(e->code);
    if (e->file[0] && e->line > 0 && e->column > 0)
        snprintf(buf, n, "%s:%ld:%ld: %s", e->file, e->line, e->column, text);
    else if (e->file[0] && e->line > 0)
        snprintf(buf, n, "%s:%ld: %s", e->file, e->line, text);
    else if (e->file[0])
        snprintf(buf, n, "%s: %s", e->file, text);
    else
        snprintf(buf, n, "%s", text);
    return buf;
}
