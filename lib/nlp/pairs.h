/*
** pairs: a parallel corpus for sequence-to-sequence training.
**
** Input, one sentence pair a line, tokens separated by spaces:
**   tsv        SOURCE<TAB>TARGET    (exactly one TAB)
**   two files  line i of the source file with line i of the target file
**              (the usual layout of parallel corpora)
** Tokens are split on ASCII white space (space, \v, \f, \r; and \t in a
** file of one side).  A line that is blank (white space only; on both
** sides, for two files) holds no pair and is skipped.  Each of these is an
** error naming the file and the 1-based line (in e): a tsv line without a
** TAB, or with more than one; a side without tokens; invalid UTF-8 (the
** bytes are never repaired: a training pair must be what it says); a NUL
** byte; two files of different line counts (naming the shorter file at the
** line after its last); an input with no pair at all (NLP_EEMPTY).
**
** A corpus as read keeps each side's own word table (every distinct token
** with its count, in order of first appearance) and the pairs as ids into
** it.  A model's vocabularies are made from those counts
** (nlp_pairs_vocab_build: the four specials, then the words of
** --min-count, most frequent first, at most --max-vocab), and the corpus is
** then encoded into the model's ids (nlp_pairs_encode) for batching.
**
** Batches (nlp_pairs_batcher): length-bucketed, as RNN translators train.
** At the start of every epoch the pairs are shuffled by the batcher's rng,
** cut into pools of cfg.pool pairs, each pool sorted by source then
** target length (stable), each pool cut into batches of cfg.batch pairs
** (or, with cfg.batch_tokens, as many as fit in that many padded tokens),
** and the order of all the epoch's batches is shuffled again.  So a batch
** holds sentences of about one length (little padding) and the epochs
** differ.  The whole order follows from the rng state at the start of the
** epoch, which with the position in the epoch is all a checkpoint needs
** (nlp_pairs_batcher_save/_load): a resumed run sees the same batches.
**
** A batch is time-major like nlp/rnn.h: src (S,B) with src_len (B),
** tgt_in (T,B) = <s> y1 .. yn and tgt_out (T,B) = y1 .. yn </s> with
** tgt_len (B) = n + 1; every position past a length holds NLP_PAIRS_PAD.
*/
#ifndef NLP_PAIRS_H
#define NLP_PAIRS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <nlp/error.h>
#include <nlp/model.h>
#include <nlp/rng.h>
#include <nlp/vocab.h>

/* The specials, first in every vocabulary nlp_pairs_vocab_build makes, with
** these ids (as the PyTorch reference has them). */
#define NLP_PAIRS_PAD 0
#define NLP_PAIRS_BOS 1
#define NLP_PAIRS_EOS 2
#define NLP_PAIRS_UNK 3
#define NLP_PAIRS_NSPECIAL 4
#define NLP_PAIRS_PAD_WORD "<pad>"
#define NLP_PAIRS_BOS_WORD "<s>"
#define NLP_PAIRS_EOS_WORD "</s>"
#define NLP_PAIRS_UNK_WORD "<unk>"

/* Tokens of one sentence at most (so that a target with </s> fits an int
** and T*B products stay small). */
#define NLP_PAIRS_MAX_TOKENS 100000

/* ==== Reading ============================================================ */

typedef struct nlp_pairs {
    long n;                 /* pairs */
    size_t *src_start;      /* (n+1): pair i's source is src[src_start[i] .. src_start[i+1]) */
    int *src;               /* source ids */
    size_t *tgt_start;      /* (n+1), the same for the target */
    int *tgt;               /* target ids */
    long *line;             /* (n) 1-based line of each pair */
    nlp_vocab *src_words;   /* the table src ids index: every distinct source
                               token with its count; NULL in an encoded set */
    nlp_vocab *tgt_words;   /* the same for the target */
    int max_src, max_tgt;   /* longest source / target, in tokens */
    long lines;             /* lines read, blank ones included */
} nlp_pairs;

/*
** Reads SOURCE<TAB>TARGET lines from f (path names it in messages).  On
** success *out is a new corpus holding at least one pair (free with
** nlp_pairs_free).  Errors, with path and line in e (see the top of this
** file): NLP_EFORMAT (no TAB, extra TABs, an empty side, a NUL byte),
** NLP_EUTF8, NLP_EEMPTY (no pair), NLP_ERANGE (a side of more than
** NLP_PAIRS_MAX_TOKENS tokens, or more than INT_MAX distinct tokens),
** NLP_EIO, NLP_ENOMEM; *out is NULL then.
*/
int nlp_pairs_read(nlp_pairs **out, FILE *f, const char *path, nlp_error *e);

/*
** As nlp_pairs_read for two line-aligned files: line i of src (named
** src_path) is the source of the pair whose target is line i of tgt.
** Different line counts are NLP_EFORMAT naming the file that ends first,
** at the line after its last ("PATH:N: ends here, but OTHER has more
** lines").  A TAB in either file is white space.
*/
int nlp_pairs_read_files(nlp_pairs **out, FILE *src, const char *src_path, FILE *tgt,
                         const char *tgt_path, nlp_error *e);

/* Frees p.  NULL is a no-op. */
void nlp_pairs_free(nlp_pairs *p);

/* Source / target length of pair i (tokens; the target without </s>). */
int nlp_pairs_src_len(const nlp_pairs *p, long i);
int nlp_pairs_tgt_len(const nlp_pairs *p, long i);

/* ==== Vocabularies and encoding ========================================== */

/*
** The vocabulary of one side of a new model: the specials <pad> <s> </s>
** <unk> (ids 0..3, pinned), then every word of counts (a corpus side's
** table) seen at least min_count times, most frequent first (ties in order
** of first appearance), cut to max_vocab entries in all, specials included
** (0: no limit; else at least NLP_PAIRS_NSPECIAL).  A corpus token spelled
** like a special is not a word of its own (it is encoded as <unk>).  On
** success *out is a new vocabulary (counts copied) owned by the caller.
** NLP_OK, NLP_EINVAL (min_count < 1, max_vocab in 1..3), NLP_ENOMEM.
*/
int nlp_pairs_vocab_build(nlp_vocab **out, const nlp_vocab *counts, long min_count,
                          long max_vocab);

/*
** Checks that v has the specials at their ids (a vocabulary read from a
** model file): NLP_OK or NLP_EFORMAT with a message in e naming what.
*/
int nlp_pairs_vocab_check(const nlp_vocab *v, nlp_error *e);

/*
** The id of the len bytes at s in v: its id when v knows it and it is not
** <pad>, <s> or </s> (which input can never mean), else NLP_PAIRS_UNK.
*/
int nlp_pairs_word_id(const nlp_vocab *v, const char *s, size_t len);

/*
** A new corpus *out holding the pairs of in with the ids of the model's
** vocabularies src and tgt (nlp_pairs_word_id of each token); its word
** tables are NULL.  *src_unk and *tgt_unk (either may be NULL) receive the
** tokens that became <unk>.  NLP_OK or NLP_ENOMEM (*out NULL); in must be a
** corpus as read (with word tables): NLP_EINVAL otherwise.
*/
int nlp_pairs_encode(nlp_pairs **out, const nlp_pairs *in, const nlp_vocab *src,
                     const nlp_vocab *tgt, size_t *src_unk, size_t *tgt_unk);

/*
** CRC-32 of an encoded corpus (every id and length, in order): a resumed
** run checks with it that it trains on the same data.
*/
uint32_t nlp_pairs_crc(const nlp_pairs *p);

/*
** One line of text split into tokens and looked up (nlp_pairs_tokens), for
** a tool that translates line by line.  Buffers grow as needed and are
** reused; start zeroed ({0}) and release with nlp_pairs_tokens_free.
*/
typedef struct nlp_pairs_tokens {
    int n;          /* tokens */
    int *id;        /* (n) ids in the vocabulary given */
    size_t *off;    /* (n) byte offset of each token in the line */
    size_t *len;    /* (n) its length in bytes */
    int cap;        /* capacity of the arrays */
} nlp_pairs_tokens;

/*
** Splits the len bytes of text on white space (as the reader does, TAB
** included) into t, each token's id nlp_pairs_word_id(v, ...).  Adds the
** tokens that became <unk> to *nunk (may be NULL).  NLP_OK, NLP_ERANGE
** (more than NLP_PAIRS_MAX_TOKENS tokens: t then holds the first ones) or
** NLP_ENOMEM.  The text is not checked for UTF-8 (see nlp/utf8.h).
*/
int nlp_pairs_tokenize(const nlp_vocab *v, const char *text, size_t len,
                       nlp_pairs_tokens *t, size_t *nunk);

/* Frees t's buffers and zeroes it. */
void nlp_pairs_tokens_free(nlp_pairs_tokens *t);

/* ==== Batches ============================================================ */

typedef struct nlp_pairs_batch_config {
    int batch;          /* pairs per batch; 64 */
    long batch_tokens;  /* > 0: instead, as many pairs as keep B * max(S, T)
                           within this many tokens (at least one); 0 */
    long pool;          /* pairs sorted together by length; 0 = all; 6400 */
    int shuffle;        /* 1: a new order every epoch (rng); 0: the corpus
                           order, each pool sorted (validation); 1 */
} nlp_pairs_batch_config;

/* Fills c with the defaults written next to each field. */
void nlp_pairs_batch_config_default(nlp_pairs_batch_config *c);

/* A padded batch (see the top of this file).  Read-only for callers. */
typedef struct nlp_pairs_batch {
    int B, S, T;        /* pairs, padded source and target lengths */
    int *src;           /* (S,B) */
    int *src_len;       /* (B) */
    int *tgt_in;        /* (T,B) */
    int *tgt_out;       /* (T,B) */
    int *tgt_len;       /* (B) target tokens + 1 (</s>) */
    long *index;        /* (B) each row's pair in the corpus */
    long tokens;        /* sum of tgt_len: the target tokens the loss covers */
    int cap_B, cap_S, cap_T; /* capacities */
} nlp_pairs_batch;

typedef struct nlp_pairs_batcher nlp_pairs_batcher; /* opaque */

/*
** A batcher over the encoded corpus p (borrowed: it must outlive the
** batcher and not change), positioned at the start of epoch 0 with its rng
** seeded by seed.  NLP_OK with *out set, NLP_EINVAL (c out of range: batch
** < 1, batch_tokens < 0, pool < 0; or p empty), NLP_ENOMEM, with e filled.
*/
int nlp_pairs_batcher_new(nlp_pairs_batcher **out, const nlp_pairs *p,
                          const nlp_pairs_batch_config *c, uint64_t seed, nlp_error *e);

/* Frees b.  NULL is a no-op. */
void nlp_pairs_batcher_free(nlp_pairs_batcher *b);

/* Batches per epoch, the current batch's index in its epoch, and the
** number of epochs begun before the current one. */
long nlp_pairs_batcher_batches(const nlp_pairs_batcher *b);
long nlp_pairs_batcher_position(const nlp_pairs_batcher *b);
long nlp_pairs_batcher_epoch(const nlp_pairs_batcher *b);

/* Pairs and target tokens (with </s>) of the current batch. */
int nlp_pairs_batcher_rows(const nlp_pairs_batcher *b);
long nlp_pairs_batcher_tokens(const nlp_pairs_batcher *b);

/* The largest B, S and T any batch of b can have (to size a model's
** workspace and nlp_pairs_batch_new once). */
void nlp_pairs_batcher_max(const nlp_pairs_batcher *b, int *B, int *S, int *T);

/*
** Sets *out to a new batch with room for max_B pairs of max_S source and
** max_T target positions (max_T counts </s>).  NLP_OK, NLP_EINVAL (a size
** < 1 or a product beyond INT_MAX), NLP_ENOMEM.  Free with
** nlp_pairs_batch_free (NULL is a no-op).
*/
int nlp_pairs_batch_new(nlp_pairs_batch **out, int max_B, int max_S, int max_T);
void nlp_pairs_batch_free(nlp_pairs_batch *t);

/*
** Fills out with rows lo .. hi-1 of the current batch (0 <= lo < hi <=
** rows), padded to their own longest source and target: a worker's share.
** Does not move.  NLP_OK, or NLP_EINVAL when the rows are out of range or
** do not fit out's capacities.
*/
int nlp_pairs_batcher_fill(const nlp_pairs_batcher *b, int lo, int hi, nlp_pairs_batch *out);

/*
** Moves to the next batch.  Returns 1 when the batch left was the last of
** its epoch (b then starts the next epoch, in a new order), else 0.
*/
int nlp_pairs_batcher_advance(nlp_pairs_batcher *b);

/* Back to the start of the current epoch's order (same batches again). */
void nlp_pairs_batcher_rewind(nlp_pairs_batcher *b);

/*
** The position in a checkpoint: metadata PREFIX.epoch, PREFIX.position,
** PREFIX.rng (the rng at the start of the epoch), PREFIX.batches,
** PREFIX.pairs and PREFIX.crc (of the corpus).  _load checks every number
** (a corpus of another size or CRC, a position beyond the epoch, a
** malformed rng: NLP_EFORMAT naming the key) and moves b there; b is
** unchanged on failure.  save: NLP_OK, NLP_ENOMEM.
*/
int nlp_pairs_batcher_save(const nlp_pairs_batcher *b, nlp_model *file, const char *prefix,
                           nlp_error *e);
int nlp_pairs_batcher_load(nlp_pairs_batcher *b, const nlp_model *file, const char *prefix,
                           nlp_error *e);

#endif
