/*
** progress: live status lines.  See nlp/progress.h.
*/
#include "nlp/progress.h"

#include <stdarg.h>
#include <time.h>
#include <unistd.h>

double nlp_progress_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void nlp_progress_init(nlp_progress *p, FILE *out, int live)
{
    p->out = out;
    p->live = live < 0 ? (out && isatty(fileno(out))) : live;
    p->dirty = 0;
    p->start = nlp_progress_now();
    p->last = 0.0;
    p->interval = 0.2;
}

double nlp_progress_elapsed(const nlp_progress *p)
{
    return nlp_progress_now() - p->start;
}

int nlp_progress_update(nlp_progress *p, const char *fmt, ...)
{
    if (!p->out || !p->live)
        return 0;
    double now = nlp_progress_now();
    if (p->dirty && now - p->last < p->interval)
        return 0;
    p->last = now;
    va_list ap;
    va_start(ap, fmt);
    fputs("\r\033[K", p->out); /* carriage return, then erase to end of line */
    vfprintf(p->out, fmt, ap);
    va_end(ap);
    fflush(p->out);
    p->dirty = 1;
    return 1;
}

void nlp_progress_finish(nlp_progress *p)
{
    if (p->out && p->dirty) {
        fputs("\r\033[K", p->out);
        fflush(p->out);
    }
    p->dirty = 0;
}

void nlp_progress_line(nlp_progress *p, const char *fmt, ...)
{
    if (!p->out)
        return;
    nlp_progress_finish(p);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->out, fmt, ap);
    va_end(ap);
    fputc('\n', p->out);
    fflush(p->out);
}

char *nlp_progress_duration(double seconds, char *buf, size_t n)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds < 60) {
        snprintf(buf, n, "%.1fs", seconds);
    } else {
        long s = (long)(seconds + 0.5);
        if (s >= 3600)
            snprintf(buf, n, "%ldh%02ldm%02lds", s / 3600, s / 60 % 60, s % 60);
        else
            snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
    }
    return buf;
}
