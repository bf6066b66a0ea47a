/*
** fuzz_classify: the labelled-text reader of the sentiment tool
** (nlp_classify_data_read, nlp/classify.h) through a memory stream.
**
** Input layout:
**   byte 0   the format: 0 auto, 1 tsv, 2 fastText (value % 3)
**   rest     the labelled text
**
** Checks what the header promises: on success every example's tokens and
** label are ids inside the data's own tables, examples are in line order
** within the lines read, the format is never AUTO and the counts of the
** tables add up to the tokens and examples; on failure a proper error.
*/
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = { data, size };
    nlp_classify_format fmt = (nlp_classify_format)(fuzz_byte(&in) % 3);
    FILE *f = fuzz_fmemopen(in.p, in.n);
    nlp_classify_data *d = NULL;
    nlp_error e;
    nlp_error_clear(&e);
    int rc = nlp_classify_data_read(&d, f, "fuzz", fmt, &e);
    fclose(f);
    if (rc != NLP_OK) {
        FUZZ_CHECK(d == NULL);
        fuzz_check_error(rc, &e);
        return 0;
    }
    FUZZ_CHECK(d != NULL && d->n >= 0 && d->format != NLP_CLASSIFY_AUTO);
    long nw = nlp_vocab_size(d->words), nl = nlp_vocab_size(d->labels);
    FUZZ_CHECK(d->start[0] == 0);
    int64_t label_total = 0, word_total = 0;
    for (long l = 0; l < nl; l++)
        label_total += nlp_vocab_count(d->labels, l);
    for (long w = 0; w < nw; w++)
        word_total += nlp_vocab_count(d->words, w);
    FUZZ_CHECK(label_total == d->n);
    FUZZ_CHECK(word_total == (int64_t)d->start[d->n]);
    for (long i = 0; i < d->n; i++) {
        FUZZ_CHECK(d->start[i] <= d->start[i + 1]);
        FUZZ_CHECK(d->label[i] >= 0 && d->label[i] < nl);
        FUZZ_CHECK(d->line[i] >= 1 && d->line[i] <= d->lines);
        FUZZ_CHECK(i == 0 || d->line[i] > d->line[i - 1]);
        for (size_t k = d->start[i]; k < d->start[i + 1]; k++)
            FUZZ_CHECK(d->tok[k] >= 0 && d->tok[k] < nw);
    }
    nlp_classify_data_free(d);
    return 0;
}
