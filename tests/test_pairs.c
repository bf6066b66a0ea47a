/*
** Unit tests for pairs, the parallel corpus of seq2seq.
**
** The focus of this file is: both input layouts (tsv and two line-aligned
** files) and every error they report, with its file and line; the
** vocabularies (specials, --min-count, --max-vocab, special-looking
** tokens); the length-bucketed batches (each pair once an epoch, padding
** and the <s>/</s> layout, the size limits, sorting within pools, new
** orders per epoch); reproducibility and the checkpointed position (a
** batcher restored mid-epoch continues with the same batches; a position
** from other data or other batch settings is refused); allocation
** failures at every point of the reader, the vocabulary, the encoding and
** the batcher (clean NLP_ENOMEM; the sanitizer build's leak checker runs at
** exit).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlp/alloc.h"
#include "nlp/model.h"
#include "nlp/pairs.h"

#include "heapcheck.h"

/* ---- helpers ---- */

static FILE *mem(const char *text)
{
    /* fmemopen of zero bytes fails on some libcs: use a temporary file. */
    FILE *f = tmpfile();
    assert_non_null(f);
    fputs(text, f);
    rewind(f);
    return f;
}

static nlp_pairs *read_tsv(const char *text, int expect_rc, nlp_error *e)
{
    FILE *f = mem(text);
    nlp_pairs *p = (nlp_pairs *)1;
    nlp_error_clear(e);
    int rc = nlp_pairs_read(&p, f, "mem.tsv", e);
    fclose(f);
    assert_int_equal(rc, expect_rc);
    if (rc != NLP_OK)
        assert_null(p);
    return p;
}

static nlp_pairs *read_two(const char *src, const char *tgt, int expect_rc, nlp_error *e)
{
    FILE *fs = mem(src), *ft = mem(tgt);
    nlp_pairs *p = (nlp_pairs *)1;
    nlp_error_clear(e);
    int rc = nlp_pairs_read_files(&p, fs, "a.src", ft, "a.tgt", e);
    fclose(fs);
    fclose(ft);
    assert_int_equal(rc, expect_rc);
    if (rc != NLP_OK)
        assert_null(p);
    return p;
}

/* The error e must name file at line and say something containing what. */
static void expect_error(const nlp_error *e, const char *file, long line, const char *what)
{
    if (strcmp(e->file, file) != 0 || e->line != line || !strstr(e->text, what))
        fail_msg("got '%s:%ld: %s', want '%s:%ld: ...%s...'", e->file, e->line, e->text, file,
                 line, what);
}

/* Token i of pair k's source (side 0) or target (side 1), as text. */
static const char *tok(const nlp_pairs *p, int side, long k, int i)
{
    if (side == 0)
        return nlp_vocab_word(p->src_words, p->src[p->src_start[k] + (size_t)i]);
    return nlp_vocab_word(p->tgt_words, p->tgt[p->tgt_start[k] + (size_t)i]);
}

/* ---- reading ---- */

static void test_read_tsv(void **state)
{
    (void)state;
    nlp_error e;
    nlp_pairs *p = read_tsv("a b c\tx y\n\n   \r\nb  a\tz\r\nc\tx x x\n", NLP_OK, &e);
    assert_int_equal(p->n, 3);
    assert_int_equal(p->lines, 5);
    assert_int_equal(nlp_pairs_src_len(p, 0), 3);
    assert_int_equal(nlp_pairs_tgt_len(p, 0), 2);
    assert_int_equal(nlp_pairs_src_len(p, 1), 2);
    assert_int_equal(nlp_pairs_tgt_len(p, 1), 1);
    assert_int_equal(nlp_pairs_tgt_len(p, 2), 3);
    assert_int_equal(p->line[0], 1);
    assert_int_equal(p->line[1], 4);
    assert_int_equal(p->line[2], 5);
    assert_string_equal(tok(p, 0, 1, 0), "b");
    assert_string_equal(tok(p, 0, 1, 1), "a");
    assert_string_equal(tok(p, 1, 1, 0), "z"); /* the CR of CRLF is not a token */
    assert_int_equal(nlp_vocab_size(p->src_words), 3);
    assert_int_equal(nlp_vocab_count(p->tgt_words, nlp_vocab_find_str(p->tgt_words, "x")), 4);
    assert_int_equal(p->max_src, 3);
    assert_int_equal(p->max_tgt, 3);
    nlp_pairs_free(p);
    /* No final newline; UTF-8 words. */
    p = read_tsv("schöne Grüße\tkind regards", NLP_OK, &e);
    assert_int_equal(p->n, 1);
    assert_string_equal(tok(p, 0, 0, 1), "Grüße");
    nlp_pairs_free(p);
}

static void test_read_tsv_errors(void **state)
{
    (void)state;
    nlp_error e;
    read_tsv("a\tb\nno tab here\n", NLP_EFORMAT, &e);
    expect_error(&e, "mem.tsv", 2, "no TAB");
    read_tsv("a\tb\n  \tb\n", NLP_EFORMAT, &e);
    expect_error(&e, "mem.tsv", 2, "empty source side");
    read_tsv("a\tb\nc\td\ne\t \n", NLP_EFORMAT, &e);
    expect_error(&e, "mem.tsv", 3, "empty target side");
    read_tsv("a\tb\tc\n", NLP_EFORMAT, &e);
    expect_error(&e, "mem.tsv", 1, "2 TABs");
    read_tsv("a\tb\nc\xff\td\n", NLP_EUTF8, &e);
    expect_error(&e, "mem.tsv", 2, "invalid UTF-8");
    assert_int_equal(e.code, NLP_EUTF8);
    read_tsv("a\tb\n\xc3\tc\n", NLP_EUTF8, &e); /* a truncated sequence before the TAB */
    expect_error(&e, "mem.tsv", 2, "invalid UTF-8 at byte 1");
    {
        const char nul[] = "a\tb\nc\0d\te\n";
        FILE *f = tmpfile();
        fwrite(nul, 1, sizeof nul - 1, f);
        rewind(f);
        nlp_pairs *p;
        assert_int_equal(nlp_pairs_read(&p, f, "mem.tsv", &e), NLP_EFORMAT);
        fclose(f);
        expect_error(&e, "mem.tsv", 2, "NUL");
    }
    read_tsv("", NLP_EEMPTY, &e);
    expect_error(&e, "mem.tsv", 0, "no sentence pair");
    {
        /* A read error (a directory opens, but does not read). */
        FILE *f = fopen(".", "r");
        if (f) {
            nlp_pairs *p;
            assert_int_equal(nlp_pairs_read(&p, f, "dir", &e), NLP_EIO);
            assert_null(p);
            expect_error(&e, "dir", 1, "read error");
            fclose(f);
        }
    }
    read_tsv("\n \n\r\n", NLP_EEMPTY, &e);
    /* A side too long for the model. */
    {
        size_t n = (size_t)NLP_PAIRS_MAX_TOKENS + 1;
        char *s = malloc(2 * n + 8);
        assert_non_null(s);
        for (size_t i = 0; i < n; i++)
            s[2 * i] = 'a', s[2 * i + 1] = ' ';
        memcpy(s + 2 * n, "\tb\n", 4);
        read_tsv(s, NLP_ERANGE, &e);
        expect_error(&e, "mem.tsv", 1, "source side has more than");
        free(s);
    }
}

static void test_read_files(void **state)
{
    (void)state;
    nlp_error e;
    nlp_pairs *p = read_two("a b\n\nc\td\n", "x\n\ny z\n", NLP_OK, &e);
    assert_int_equal(p->n, 2);
    assert_int_equal(p->line[1], 3);
    assert_int_equal(nlp_pairs_src_len(p, 1), 2); /* a TAB is white space here */
    assert_string_equal(tok(p, 0, 1, 1), "d");
    assert_string_equal(tok(p, 1, 1, 1), "z");
    nlp_pairs_free(p);
    /* Different line counts, either way: the file that ends first is named
    ** at the line after its last. */
    read_two("a\nb\nc\n", "x\ny\n", NLP_EFORMAT, &e);
    expect_error(&e, "a.tgt", 3, "a.src has more lines");
    read_two("a\n", "x\ny\n", NLP_EFORMAT, &e);
    expect_error(&e, "a.src", 2, "a.tgt has more lines");
    read_two("a\n\n", "x\ny\n", NLP_EFORMAT, &e);
    expect_error(&e, "a.src", 2, "empty source side");
    read_two("a\nb\n", "x\n \n", NLP_EFORMAT, &e);
    expect_error(&e, "a.tgt", 2, "empty target side");
    read_two("a\nb\n", "x\n\xed\xa0\x80\n", NLP_EUTF8, &e); /* a surrogate */
    expect_error(&e, "a.tgt", 2, "invalid UTF-8");
    read_two("a\n\xc0\xaf\n", "x\ny\n", NLP_EUTF8, &e); /* an overlong '/' */
    expect_error(&e, "a.src", 2, "invalid UTF-8");
    read_two("", "", NLP_EEMPTY, &e);
    expect_error(&e, "a.src", 0, "no sentence pair");
    read_two("\n\n", "\n\n", NLP_EEMPTY, &e);
}

/* ---- vocabularies and encoding ---- */

static void test_vocab(void **state)
{
    (void)state;
    nlp_error e;
    nlp_pairs *p = read_tsv("b a a <s>\tx\nc b a </s>\tx\nd <pad> <unk>\tx\n", NLP_OK, &e);
    nlp_vocab *v;
    assert_int_equal(nlp_pairs_vocab_build(&v, p->src_words, 1, 0), NLP_OK);
    assert_int_equal(nlp_pairs_vocab_check(v, &e), NLP_OK);
    assert_string_equal(nlp_vocab_word(v, NLP_PAIRS_PAD), "<pad>");
    assert_string_equal(nlp_vocab_word(v, NLP_PAIRS_BOS), "<s>");
    assert_string_equal(nlp_vocab_word(v, NLP_PAIRS_EOS), "</s>");
    assert_string_equal(nlp_vocab_word(v, NLP_PAIRS_UNK), "<unk>");
    /* a:3, b:2, then c and d (1 each, in order of appearance). */
    assert_int_equal(nlp_vocab_size(v), 8);
    assert_string_equal(nlp_vocab_word(v, 4), "a");
    assert_string_equal(nlp_vocab_word(v, 5), "b");
    assert_string_equal(nlp_vocab_word(v, 6), "c");
    assert_string_equal(nlp_vocab_word(v, 7), "d");
    assert_int_equal(nlp_vocab_count(v, NLP_PAIRS_BOS), 0);
    /* Input spelled like a special is never that special. */
    assert_int_equal(nlp_pairs_word_id(v, "<s>", 3), NLP_PAIRS_UNK);
    assert_int_equal(nlp_pairs_word_id(v, "</s>", 4), NLP_PAIRS_UNK);
    assert_int_equal(nlp_pairs_word_id(v, "<pad>", 5), NLP_PAIRS_UNK);
    assert_int_equal(nlp_pairs_word_id(v, "zzz", 3), NLP_PAIRS_UNK);
    assert_int_equal(nlp_pairs_word_id(v, "b", 1), 5);
    nlp_vocab_free(v);
    assert_int_equal(nlp_pairs_vocab_build(&v, p->src_words, 2, 0), NLP_OK);
    assert_int_equal(nlp_vocab_size(v), 6);
    nlp_vocab_free(v);
    assert_int_equal(nlp_pairs_vocab_build(&v, p->src_words, 1, 5), NLP_OK);
    assert_int_equal(nlp_vocab_size(v), 5);
    assert_string_equal(nlp_vocab_word(v, 4), "a");
    nlp_vocab_free(v);
    assert_int_equal(nlp_pairs_vocab_build(&v, p->src_words, 1, 3), NLP_EINVAL);
    assert_null(v);
    assert_int_equal(nlp_pairs_vocab_build(&v, p->src_words, 0, 0), NLP_EINVAL);
    /* Encoding into the model's ids. */
    nlp_vocab *sv, *tv;
    assert_int_equal(nlp_pairs_vocab_build(&sv, p->src_words, 2, 0), NLP_OK);
    assert_int_equal(nlp_pairs_vocab_build(&tv, p->tgt_words, 1, 0), NLP_OK);
    nlp_pairs *q;
    size_t su, tu;
    assert_int_equal(nlp_pairs_encode(&q, p, sv, tv, &su, &tu), NLP_OK);
    assert_null(q->src_words);
    assert_int_equal(q->n, 3);
    assert_int_equal(su, 6); /* <s> c </s> d <pad> <unk> */
    assert_int_equal(tu, 0);
    int want[] = {5, 4, 4, 3, 3, 5, 4, 3, 3, 3, 3};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        assert_int_equal(q->src[i], want[i]);
    assert_int_equal(q->tgt[0], 4);
    /* An encoded corpus cannot be encoded again. */
    nlp_pairs *r;
    assert_int_equal(nlp_pairs_encode(&r, q, sv, tv, NULL, NULL), NLP_EINVAL);
    /* The CRC follows the ids. */
    uint32_t c1 = nlp_pairs_crc(q);
    q->tgt[0] = 5;
    assert_int_not_equal(nlp_pairs_crc(q), c1);
    nlp_pairs_free(q);
    /* A vocabulary without the specials where they belong. */
    nlp_vocab *bad;
    assert_int_equal(nlp_vocab_new(&bad), NLP_OK);
    nlp_vocab_add(bad, "<pad>", 5);
    nlp_vocab_add(bad, "<unk>", 5);
    nlp_vocab_add(bad, "<s>", 3);
    nlp_vocab_add(bad, "</s>", 4);
    assert_int_equal(nlp_pairs_vocab_check(bad, &e), NLP_EFORMAT);
    assert_non_null(strstr(e.text, "<s> at id 1"));
    nlp_vocab_free(bad);
    nlp_vocab_free(sv);
    nlp_vocab_free(tv);
    nlp_pairs_free(p);
}

static void test_tokenize(void **state)
{
    (void)state;
    nlp_error e;
    nlp_pairs *p = read_tsv("a b\tx\n", NLP_OK, &e);
    nlp_vocab *v;
    assert_int_equal(nlp_pairs_vocab_build(&v, p->src_words, 1, 0), NLP_OK);
    nlp_pairs_tokens t = {0};
    size_t unk = 0;
    const char *line = "  b\tq  a <s>";
    assert_int_equal(nlp_pairs_tokenize(v, line, strlen(line), &t, &unk), NLP_OK);
    assert_int_equal(t.n, 4);
    assert_int_equal(t.id[0], 5);
    assert_int_equal(t.id[1], NLP_PAIRS_UNK);
    assert_int_equal(t.id[2], 4);
    assert_int_equal(t.id[3], NLP_PAIRS_UNK);
    assert_int_equal(unk, 2);
    assert_int_equal(t.off[1], 4);
    assert_int_equal(t.len[3], 3);
    assert_int_equal(nlp_pairs_tokenize(v, "", 0, &t, NULL), NLP_OK);
    assert_int_equal(t.n, 0);
    nlp_pairs_tokens_free(&t);
    assert_null(t.id);
    nlp_vocab_free(v);
    nlp_pairs_free(p);
}

/* ---- batches ---- */

/* n random pairs with sources of 1..maxlen tokens over a few words, as an
** encoded corpus. */
static nlp_pairs *random_corpus(long n, int maxlen, uint64_t seed)
{
    nlp_rng r;
    nlp_rng_seed(&r, seed);
    size_t cap = (size_t)n * (size_t)(maxlen + 2) * 4 + 1, k = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (long i = 0; i < n; i++) {
        int ls = 1 + (int)nlp_rng_below(&r, (uint64_t)maxlen);
        int lt = 1 + (int)nlp_rng_below(&r, (uint64_t)maxlen);
        for (int j = 0; j < ls; j++)
            k += (size_t)snprintf(text + k, cap - k, "%c%s", 'a' + (int)nlp_rng_below(&r, 8),
                                 j + 1 < ls ? " " : "\t");
        for (int j = 0; j < lt; j++)
            k += (size_t)snprintf(text + k, cap - k, "%c%s", 'a' + (int)nlp_rng_below(&r, 8),
                                 j + 1 < lt ? " " : "\n");
    }
    nlp_error e;
    nlp_pairs *p = read_tsv(text, NLP_OK, &e);
    free(text);
    nlp_vocab *sv, *tv;
    assert_int_equal(nlp_pairs_vocab_build(&sv, p->src_words, 1, 0), NLP_OK);
    assert_int_equal(nlp_pairs_vocab_build(&tv, p->tgt_words, 1, 0), NLP_OK);
    nlp_pairs *q;
    assert_int_equal(nlp_pairs_encode(&q, p, sv, tv, NULL, NULL), NLP_OK);
    nlp_vocab_free(sv);
    nlp_vocab_free(tv);
    nlp_pairs_free(p);
    return q;
}

static nlp_pairs_batch *batch_for(const nlp_pairs_batcher *b)
{
    int B, S, T;
    nlp_pairs_batcher_max(b, &B, &S, &T);
    nlp_pairs_batch *t;
    assert_int_equal(nlp_pairs_batch_new(&t, B, S, T), NLP_OK);
    return t;
}

/* Checks one filled batch against the corpus: layout, padding, sizes. */
static void check_batch(const nlp_pairs *p, const nlp_pairs_batch *t)
{
    long tokens = 0;
    int S = 0, T = 0;
    for (int r = 0; r < t->B; r++) {
        long id = t->index[r];
        assert_true(id >= 0 && id < p->n);
        int s = nlp_pairs_src_len(p, id), n = nlp_pairs_tgt_len(p, id);
        assert_int_equal(t->src_len[r], s);
        assert_int_equal(t->tgt_len[r], n + 1);
        S = s > S ? s : S;
        T = n + 1 > T ? n + 1 : T;
        tokens += n + 1;
        for (int i = 0; i < t->S; i++)
            assert_int_equal(t->src[i * t->B + r],
                             i < s ? p->src[p->src_start[id] + (size_t)i] : NLP_PAIRS_PAD);
        assert_int_equal(t->tgt_in[r], NLP_PAIRS_BOS);
        for (int i = 0; i < t->T; i++) {
            int in = t->tgt_in[i * t->B + r], out = t->tgt_out[i * t->B + r];
            if (i < n)
                assert_int_equal(out, p->tgt[p->tgt_start[id] + (size_t)i]);
            else if (i == n)
                assert_int_equal(out, NLP_PAIRS_EOS);
            else
                assert_int_equal(out, NLP_PAIRS_PAD);
            if (i >= 1 && i <= n)
                assert_int_equal(in, p->tgt[p->tgt_start[id] + (size_t)i - 1]);
            else if (i > n)
                assert_int_equal(in, NLP_PAIRS_PAD);
        }
    }
    assert_int_equal(t->S, S);
    assert_int_equal(t->T, T);
    assert_int_equal(t->tokens, tokens);
}

/* Runs one epoch of b, checking every batch; returns the epoch's pair
** order as a hash and fills seen[] with the times each pair came. */
static uint64_t run_epoch(nlp_pairs_batcher *b, const nlp_pairs *p, nlp_pairs_batch *t,
                          const nlp_pairs_batch_config *c, long *seen)
{
    uint64_t h = 1469598103934665603u;
    long nb = nlp_pairs_batcher_batches(b);
    for (long k = 0; k < nb; k++) {
        assert_int_equal(nlp_pairs_batcher_position(b), k);
        int rows = nlp_pairs_batcher_rows(b);
        assert_int_equal(nlp_pairs_batcher_fill(b, 0, rows, t), NLP_OK);
        check_batch(p, t);
        assert_int_equal(nlp_pairs_batcher_tokens(b), t->tokens);
        if (c->batch_tokens > 0) {
            int m = t->S > t->T ? t->S : t->T;
            assert_true(t->B == 1 || (long)t->B * m <= c->batch_tokens);
        } else {
            assert_true(t->B <= c->batch);
        }
        for (int r = 0; r < t->B; r++) {
            seen[t->index[r]]++;
            h = (h ^ (uint64_t)t->index[r]) * 1099511628211u;
            /* Sorted within the batch: a pool is sorted by source length. */
            if (r > 0)
                assert_true(t->src_len[r] >= t->src_len[r - 1]);
        }
        assert_int_equal(nlp_pairs_batcher_advance(b), k + 1 == nb);
    }
    return h;
}

/* One epoch of a new batcher over p (seed 42) holds every pair once. */
static void one_epoch_each_once(const nlp_pairs *p, const nlp_pairs_batch_config *c, long *seen)
{
    nlp_error e;
    nlp_pairs_batcher *b;
    memset(seen, 0, (size_t)p->n * sizeof *seen);
    assert_int_equal(nlp_pairs_batcher_new(&b, p, c, 42, &e), NLP_OK);
    nlp_pairs_batch *t = batch_for(b);
    run_epoch(b, p, t, c, seen);
    for (long i = 0; i < p->n; i++)
        assert_int_equal(seen[i], 1);
    nlp_pairs_batch_free(t);
    nlp_pairs_batcher_free(b);
}

static void test_batches(void **state)
{
    (void)state;
    nlp_pairs *p = random_corpus(500, 12, 7);
    nlp_pairs_batch_config c;
    nlp_pairs_batch_config_default(&c);
    c.batch = 16;
    c.pool = 128;
    long *seen = calloc((size_t)p->n, sizeof *seen);
    nlp_error e;
    nlp_pairs_batcher *b;
    assert_int_equal(nlp_pairs_batcher_new(&b, p, &c, 42, &e), NLP_OK);
    nlp_pairs_batch *t = batch_for(b);
    uint64_t h0 = run_epoch(b, p, t, &c, seen);
    assert_int_equal(nlp_pairs_batcher_epoch(b), 1);
    uint64_t h1 = run_epoch(b, p, t, &c, seen);
    assert_true(h0 != h1); /* a new order every epoch */
    for (long i = 0; i < p->n; i++)
        assert_int_equal(seen[i], 2);
    /* Little padding: within a pool sources of one batch are close. */
    nlp_pairs_batch_free(t);
    nlp_pairs_batcher_free(b);

    /* By tokens. */
    c.batch_tokens = 60;
    one_epoch_each_once(p, &c, seen);

    /* A budget below one pair's length still gives batches of one. */
    c.batch_tokens = 3;
    one_epoch_each_once(p, &c, seen);

    /* Validation: no shuffle, one pool: the same sorted order every time,
    ** longest source last. */
    c.batch_tokens = 0;
    c.shuffle = 0;
    c.pool = 0;
    memset(seen, 0, (size_t)p->n * sizeof *seen);
    assert_int_equal(nlp_pairs_batcher_new(&b, p, &c, 1, &e), NLP_OK);
    t = batch_for(b);
    h0 = run_epoch(b, p, t, &c, seen);
    h1 = run_epoch(b, p, t, &c, seen);
    assert_true(h0 == h1);
    long nb = nlp_pairs_batcher_batches(b);
    for (long k = 0; k + 1 < nb; k++)
        assert_int_equal(nlp_pairs_batcher_advance(b), 0);
    assert_int_equal(nlp_pairs_batcher_fill(b, 0, nlp_pairs_batcher_rows(b), t), NLP_OK);
    assert_int_equal(t->src_len[t->B - 1], p->max_src);
    nlp_pairs_batcher_rewind(b);
    assert_int_equal(nlp_pairs_batcher_position(b), 0);

    /* Shares: rows lo..hi padded to their own lengths; bad ranges refused. */
    int rows = nlp_pairs_batcher_rows(b);
    assert_true(rows >= 2);
    assert_int_equal(nlp_pairs_batcher_fill(b, 1, rows, t), NLP_OK);
    assert_int_equal(t->B, rows - 1);
    check_batch(p, t);
    assert_int_equal(nlp_pairs_batcher_fill(b, 0, rows + 1, t), NLP_EINVAL);
    assert_int_equal(nlp_pairs_batcher_fill(b, 1, 1, t), NLP_EINVAL);
    assert_int_equal(nlp_pairs_batcher_fill(b, -1, 1, t), NLP_EINVAL);
    nlp_pairs_batch *small;
    assert_int_equal(nlp_pairs_batch_new(&small, 1, 1, 1), NLP_OK);
    assert_int_equal(nlp_pairs_batcher_fill(b, 0, 2, small), NLP_EINVAL);
    nlp_pairs_batch_free(small);
    assert_int_equal(nlp_pairs_batch_new(&small, 0, 1, 1), NLP_EINVAL);
    assert_int_equal(nlp_pairs_batch_new(&small, 65536, 65536, 1), NLP_EINVAL);
    nlp_pairs_batch_free(t);
    nlp_pairs_batcher_free(b);

    /* Bad configurations. */
    c.batch = 0;
    assert_int_equal(nlp_pairs_batcher_new(&b, p, &c, 1, &e), NLP_EINVAL);
    assert_null(b);
    c.batch = 4;
    c.pool = -1;
    assert_int_equal(nlp_pairs_batcher_new(&b, p, &c, 1, &e), NLP_EINVAL);
    free(seen);
    nlp_pairs_free(p);
}

/* The sequence of pair indices of the next n batches. */
static void next_batches(nlp_pairs_batcher *b, nlp_pairs_batch *t, long n, long *out, long *k)
{
    for (long j = 0; j < n; j++) {
        assert_int_equal(nlp_pairs_batcher_fill(b, 0, nlp_pairs_batcher_rows(b), t), NLP_OK);
        for (int r = 0; r < t->B; r++)
            out[(*k)++] = t->index[r];
        nlp_pairs_batcher_advance(b);
    }
}

static void test_reproducible_and_resume(void **state)
{
    (void)state;
    nlp_pairs *p = random_corpus(300, 9, 3);
    nlp_pairs_batch_config c;
    nlp_pairs_batch_config_default(&c);
    c.batch = 8;
    c.pool = 64;
    nlp_error e;
    nlp_pairs_batcher *a, *b;
    assert_int_equal(nlp_pairs_batcher_new(&a, p, &c, 5, &e), NLP_OK);
    assert_int_equal(nlp_pairs_batcher_new(&b, p, &c, 5, &e), NLP_OK);
    nlp_pairs_batch *t = batch_for(a);
    const long nb = nlp_pairs_batcher_batches(a), steps = 3 * nb;
    long *x = malloc((size_t)(steps * c.batch) * sizeof *x);
    long *y = malloc((size_t)(steps * c.batch) * sizeof *y);
    long kx = 0, ky = 0;
    next_batches(a, t, steps, x, &kx);
    next_batches(b, t, steps, y, &ky);
    assert_int_equal(kx, ky);
    assert_memory_equal(x, y, (size_t)kx * sizeof *x);
    nlp_pairs_batcher_free(b);
    /* Another seed, another order. */
    assert_int_equal(nlp_pairs_batcher_new(&b, p, &c, 6, &e), NLP_OK);
    ky = 0;
    next_batches(b, t, steps, y, &ky);
    assert_true(memcmp(x, y, (size_t)kx * sizeof *x) != 0);
    nlp_pairs_batcher_free(b);
    nlp_pairs_batcher_free(a);

    /* Stopped at every position of the first two epochs (and its end),
    ** saved, loaded into a fresh batcher: the rest is the same. */
    for (long stop = 0; stop <= 2 * nb; stop += 7) {
        assert_int_equal(nlp_pairs_batcher_new(&a, p, &c, 5, &e), NLP_OK);
        kx = 0;
        next_batches(a, t, stop, x, &kx);
        nlp_model *m;
        assert_int_equal(nlp_model_new(&m, "test"), NLP_OK);
        assert_int_equal(nlp_pairs_batcher_save(a, m, "data", &e), NLP_OK);
        unsigned char *buf;
        size_t n;
        assert_int_equal(nlp_model_to_buffer(m, &buf, &n), NLP_OK);
        nlp_model_free(m);
        assert_int_equal(nlp_model_load_buffer(&m, buf, n, "mem", "test", &e), NLP_OK);
        free(buf);
        assert_int_equal(nlp_pairs_batcher_new(&b, p, &c, 999, &e), NLP_OK);
        assert_int_equal(nlp_pairs_batcher_load(b, m, "data", &e), NLP_OK);
        assert_int_equal(nlp_pairs_batcher_epoch(b), nlp_pairs_batcher_epoch(a));
        assert_int_equal(nlp_pairs_batcher_position(b), nlp_pairs_batcher_position(a));
        long ka = 0, kb = 0;
        next_batches(a, t, nb + 3, x, &ka);
        next_batches(b, t, nb + 3, y, &kb);
        assert_int_equal(ka, kb);
        assert_memory_equal(x, y, (size_t)ka * sizeof *x);
        nlp_model_free(m);
        nlp_pairs_batcher_free(a);
        nlp_pairs_batcher_free(b);
    }

    /* Refusals: other data, other batch settings, values out of range. */
    assert_int_equal(nlp_pairs_batcher_new(&a, p, &c, 5, &e), NLP_OK);
    kx = 0;
    next_batches(a, t, 5, x, &kx);
    nlp_model *m;
    assert_int_equal(nlp_model_new(&m, "test"), NLP_OK);
    assert_int_equal(nlp_pairs_batcher_save(a, m, "data", &e), NLP_OK);
    nlp_pairs *q = random_corpus(300, 9, 4);
    assert_int_equal(nlp_pairs_batcher_new(&b, q, &c, 5, &e), NLP_OK);
    assert_int_equal(nlp_pairs_batcher_load(b, m, "data", &e), NLP_EFORMAT);
    assert_non_null(strstr(e.text, "other data"));
    nlp_pairs_batcher_free(b);
    nlp_pairs_free(q);
    q = random_corpus(301, 9, 3);
    assert_int_equal(nlp_pairs_batcher_new(&b, q, &c, 5, &e), NLP_OK);
    assert_int_equal(nlp_pairs_batcher_load(b, m, "data", &e), NLP_EFORMAT);
    assert_non_null(strstr(e.text, "300 pairs"));
    nlp_pairs_batcher_free(b);
    nlp_pairs_free(q);
    nlp_pairs_batch_config c2 = c;
    c2.batch = 9;
    assert_int_equal(nlp_pairs_batcher_new(&b, p, &c2, 5, &e), NLP_OK);
    long before = nlp_pairs_batcher_position(b);
    assert_int_equal(nlp_pairs_batcher_load(b, m, "data", &e), NLP_EFORMAT);
    assert_non_null(strstr(e.text, "batches an epoch"));
    assert_int_equal(nlp_pairs_batcher_position(b), before);
    nlp_pairs_batcher_free(b);
    const char *bad[][2] = {
        {"data.position", "-1"}, {"data.position", "1000000"}, {"data.epoch", "-3"},
        {"data.epoch", "x"}, {"data.batches", "0"}, {"data.rng", "00"},
        {"data.crc", "99999999999"}, {"data.pairs", "0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        nlp_model *m2;
        assert_int_equal(nlp_model_new(&m2, "test"), NLP_OK);
        assert_int_equal(nlp_pairs_batcher_save(a, m2, "data", &e), NLP_OK);
        assert_int_equal(nlp_model_set_meta(m2, bad[i][0], bad[i][1]), NLP_OK);
        assert_int_equal(nlp_pairs_batcher_new(&b, p, &c, 5, &e), NLP_OK);
        if (nlp_pairs_batcher_load(b, m2, "data", &e) != NLP_EFORMAT)
            fail_msg("%s=%s accepted", bad[i][0], bad[i][1]);
        assert_int_equal(nlp_pairs_batcher_position(b), 0);
        nlp_pairs_batcher_free(b);
        nlp_model_free(m2);
    }
    nlp_model_free(m);
    nlp_pairs_batcher_free(a);
    nlp_pairs_batch_free(t);
    free(x);
    free(y);
    nlp_pairs_free(p);
}

/* ---- allocation faults ---- */

static const char *fault_text = "a b c\tx y\nb a\tz z z\n\nc c\tx\n";

static int op_read(void *arg)
{
    (void)arg;
    FILE *f = mem(fault_text);
    nlp_pairs *p;
    nlp_error e;
    int rc = nlp_pairs_read(&p, f, "m", &e);
    fclose(f);
    if (rc == NLP_OK)
        nlp_pairs_free(p);
    else if (p != NULL || e.code != rc)
        return NLP_EINVAL;
    return rc;
}

static int op_read_files(void *arg)
{
    (void)arg;
    FILE *a = mem("a b c\nb a\n\nc c\n"), *b = mem("x y\nz z z\n\nx\n");
    nlp_pairs *p;
    nlp_error e;
    int rc = nlp_pairs_read_files(&p, a, "a", b, "b", &e);
    fclose(a);
    fclose(b);
    if (rc == NLP_OK)
        nlp_pairs_free(p);
    else if (p != NULL)
        return NLP_EINVAL;
    return rc;
}

static nlp_pairs *fault_corpus;

/* Vocabularies, encoding, a batcher, a batch, tokens and a checkpointed
** position over fault_corpus. */
static int op_rest(void *arg)
{
    (void)arg;
    nlp_vocab *sv = NULL, *tv = NULL;
    nlp_pairs *q = NULL;
    nlp_pairs_batcher *b = NULL;
    nlp_pairs_batch *t = NULL;
    nlp_model *m = NULL;
    nlp_pairs_tokens tk = {0};
    nlp_error e;
    nlp_pairs_batch_config c;
    nlp_pairs_batch_config_default(&c);
    c.batch = 2;
    int rc = nlp_pairs_vocab_build(&sv, fault_corpus->src_words, 1, 0);
    if (rc == NLP_OK)
        rc = nlp_pairs_vocab_build(&tv, fault_corpus->tgt_words, 1, 0);
    if (rc == NLP_OK)
        rc = nlp_pairs_encode(&q, fault_corpus, sv, tv, NULL, NULL);
    if (rc == NLP_OK)
        rc = nlp_pairs_batcher_new(&b, q, &c, 1, &e);
    if (rc == NLP_OK) {
        int B, S, T;
        nlp_pairs_batcher_max(b, &B, &S, &T);
        rc = nlp_pairs_batch_new(&t, B, S, T);
    }
    if (rc == NLP_OK)
        rc = nlp_pairs_tokenize(sv, "a b c d", 7, &tk, NULL);
    if (rc == NLP_OK)
        rc = nlp_model_new(&m, "test");
    if (rc == NLP_OK)
        rc = nlp_pairs_batcher_save(b, m, "data", &e);
    if (rc == NLP_OK)
        rc = nlp_pairs_batcher_load(b, m, "data", &e);
    nlp_pairs_tokens_free(&tk);
    nlp_model_free(m);
    nlp_pairs_batch_free(t);
    nlp_pairs_batcher_free(b);
    nlp_pairs_free(q);
    nlp_vocab_free(sv);
    nlp_vocab_free(tv);
    return rc;
}

static void test_faults(void **state)
{
    (void)state;
    fault_loop("nlp_pairs_read", op_read, NULL);
    fault_loop("nlp_pairs_read_files", op_read_files, NULL);
    FILE *f = mem(fault_text);
    nlp_error e;
    assert_int_equal(nlp_pairs_read(&fault_corpus, f, "m", &e), NLP_OK);
    fclose(f);
    fault_loop("vocab, encode, batcher, checkpoint", op_rest, NULL);
    nlp_pairs_free(fault_corpus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_tsv),
        cmocka_unit_test(test_read_tsv_errors),
        cmocka_unit_test(test_read_files),
        cmocka_unit_test(test_vocab),
        cmocka_unit_test(test_tokenize),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_reproducible_and_resume),
        cmocka_unit_test(test_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
