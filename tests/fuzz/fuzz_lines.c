/*
** fuzz_lines: the line reader (nlp/lines.h) through a memory stream.
**
** Input layout:
**   byte 0   bit 0: NLP_LINES_STRIP_CR; bits 1-7: how many times the text
**            is repeated (1 + value), so inputs grow past the reader's
**            64 KiB block and lines cross block boundaries
**   byte 1   the calls to make, one bit per call from bit 0 (cycling):
**            1 = nlp_lines_next_block, 0 = nlp_lines_next
**   rest     the text
**
** Checks the reader against the plain definition of lines: what it returns
** (lines with their '\n' put back, blocks as they are) is exactly the input;
** a line holds no '\n', is NUL-terminated at its length and lost only a
** '\r' before its end with NLP_LINES_STRIP_CR; a block ends with '\n'
** (except a final line without one) and has as many lines as it says; line
** numbers count every line.
*/
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = { data, size };
    uint8_t opt = fuzz_byte(&in), calls = fuzz_byte(&in);
    int flags = (opt & 1) ? NLP_LINES_STRIP_CR : 0;
    size_t reps = 1 + (opt >> 1);
    size_t n = in.n * reps;
    char *text = malloc(n ? n : 1);
    FUZZ_CHECK(text != NULL);
    for (size_t r = 0; r < reps; r++)
        if (in.n)
            memcpy(text + r * in.n, in.p, in.n);
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += text[i] == '\n';
    if (n > 0 && text[n - 1] != '\n')
        lines++;

    FILE *f = fuzz_fmemopen(text, n);
    nlp_lines *r;
    FUZZ_CHECK(nlp_lines_new(&r, f, flags) == NLP_OK);
    FUZZ_CHECK(r != NULL);
    FUZZ_CHECK(nlp_lines_number(r) == 0);
    size_t pos = 0;          /* bytes of text accounted for */
    long number = 0;         /* lines returned so far */
    int rc;
    for (unsigned k = 0;; k++) {
        int block = (calls >> (k % 8)) & 1;
        if (block) {
            char *b;
            size_t len;
            long nl;
            rc = nlp_lines_next_block(r, &b, &len, &nl);
            if (rc != 1)
                break;
            FUZZ_CHECK(len > 0 && len <= n - pos);
            FUZZ_CHECK(memcmp(b, text + pos, len) == 0);
            long count = 0;
            for (size_t i = 0; i < len; i++)
                count += b[i] == '\n';
            if (b[len - 1] != '\n') {
                FUZZ_CHECK(pos + len == n);   /* only the final line lacks one */
                count++;
            }
            FUZZ_CHECK(nl == count && nl >= 1);
            pos += len;
            number += nl;
        } else {
            char *line;
            size_t len;
            rc = nlp_lines_next(r, &line, &len);
            if (rc != 1)
                break;
            FUZZ_CHECK(line[len] == '\0');
            FUZZ_CHECK(memchr(line, '\n', len) == NULL);
            FUZZ_CHECK(len <= n - pos);
            FUZZ_CHECK(memcmp(line, text + pos, len) == 0);
            size_t used = len;
            /* What follows: an optional stripped '\r', then '\n' or the end. */
            if ((flags & NLP_LINES_STRIP_CR) && pos + used < n && text[pos + used] == '\r'
                && (pos + used + 1 == n || text[pos + used + 1] == '\n'))
                used++;
            FUZZ_CHECK(pos + used == n || text[pos + used] == '\n');
            FUZZ_CHECK(pos + used < n || used > 0);   /* no empty line after the last */
            pos += used + (pos + used < n);
            number++;
        }
        FUZZ_CHECK(nlp_lines_number(r) == number);
    }
    /* The end: everything was returned, and the reader stays at the end. */
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(pos == n);
    FUZZ_CHECK((size_t)number == lines);
    char *line;
    size_t len;
    FUZZ_CHECK(nlp_lines_next(r, &line, &len) == 0);
    nlp_lines_free(r);
    fclose(f);
    free(text);
    return 0;
}
