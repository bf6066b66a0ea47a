/*
** progress: a live status line for long work.
**
** On a terminal the line is redrawn in place ("\r") at most a few times a
** second; elsewhere (a pipe, a log file) live updates are dropped and only
** full lines written with nlp_progress_line() appear, so logs stay readable.
** The caller chooses the stream (normally stderr); libnlp never picks one.
*/
#ifndef NLP_PROGRESS_H
#define NLP_PROGRESS_H

#include <stdio.h>

typedef struct nlp_progress {
    FILE *out;        /* where lines go; NULL silences everything */
    int live;         /* redraw in place: out is a terminal (or forced) */
    int dirty;        /* a live line is on screen and must be cleared */
    double start;     /* nlp_progress_now() at init */
    double last;      /* time of the last live redraw */
    double interval;  /* minimum seconds between live redraws */
} nlp_progress;

/* Monotonic wall-clock seconds. */
double nlp_progress_now(void);

/*
** Prepares p to write to out.  live < 0 asks isatty(out); 0 or 1 forces it.
*/
void nlp_progress_init(nlp_progress *p, FILE *out, int live);

/* Seconds since nlp_progress_init. */
double nlp_progress_elapsed(const nlp_progress *p);

/*
** Redraws the live line with a printf-style message (no newline) if live and
** the redraw interval has passed; returns 1 when it drew, 0 otherwise.
*/
int nlp_progress_update(nlp_progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes a permanent line (a newline is added), clearing any live line. */
void nlp_progress_line(nlp_progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears a live line left on screen. */
void nlp_progress_finish(nlp_progress *p);

/* Formats seconds as "1h02m03s" / "2m03s" / "3.4s" into buf; returns buf. */
char *nlp_progress_duration(double seconds, char *buf, size_t n);

#endif
