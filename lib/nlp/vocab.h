/*
** vocab: a vocabulary, i.e. a string <-> id table with counts.
**
** Words are arbitrary byte strings (normally UTF-8) of any length; they may
** contain spaces or NUL bytes.  A word is kept whole however long it is: the
** vocabulary never truncates (only a word of 4 GiB or more is refused, with
** NLP_ERANGE).  Ids are dense, 0 .. size-1, in order of first insertion until
** nlp_vocab_sort() or nlp_vocab_prune() renumbers them.
**
** Special symbols ("</s>", "<unk>", "<pad>", ...) are supported by pinning:
** the caller adds them first, then calls nlp_vocab_pin(); pinned words keep
** ids 0 .. pinned-1 through every sort and prune, whatever their counts.
**
** Storage is an open-addressing hash table (linear probing, power-of-two
** size, at most half full, grows by doubling) over an array of entries whose
** bytes live in one growing pool; a lookup costs one hash and usually one
** comparison.
**
** Files: nlp_vocab_save()/nlp_vocab_load() use the format of word2vec's
** -save-vocab/-read-vocab: one "WORD COUNT" line per word.  Memory blobs
** (nlp_vocab_to_blob()/nlp_vocab_from_blob()) are an exact, length-prefixed
** little-endian image, used by the model-file module.
**
** Counts: every count, and their sum (nlp_vocab_total), stays within
** INT64_MAX.  An addition that would go beyond it is refused with
** NLP_ERANGE and leaves v unchanged; counts never wrap and never saturate,
** so the total is always the exact sum of the counts.
**
** Not thread-safe for writing; concurrent readers (find/word/count) are fine.
*/
#ifndef NLP_VOCAB_H
#define NLP_VOCAB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <nlp/error.h>

typedef struct nlp_vocab nlp_vocab;

/* Longest word accepted (bytes): the blob format stores lengths as uint32. */
#define NLP_VOCAB_MAX_WORD ((size_t)UINT32_MAX - 1)

/*
** Sets *out to a new, empty vocabulary and returns NLP_OK; the caller owns
** it and frees it with nlp_vocab_free().  Returns NLP_ENOMEM (and sets *out
** to NULL) when out of memory.
*/
int nlp_vocab_new(nlp_vocab **out);

/* Frees v and every string it holds.  NULL is a no-op. */
void nlp_vocab_free(nlp_vocab *v);

/*
** Adds count occurrences of the len bytes at s (count may be 0, e.g. for a
** special symbol, but not negative).  A new word gets id size(); an existing
** word keeps its id and its count grows.  Returns the id (>= 0), or
** NLP_ENOMEM, NLP_ERANGE (len > NLP_VOCAB_MAX_WORD, or the total of all
** counts would exceed INT64_MAX) or NLP_EINVAL (count < 0).
** v is unchanged on error.  The bytes are copied.
*/
long nlp_vocab_add_count(nlp_vocab *v, const char *s, size_t len, int64_t count);

/* nlp_vocab_add_count(v, s, len, 1): counts one occurrence. */
long nlp_vocab_add(nlp_vocab *v, const char *s, size_t len);

/* The id of the len bytes at s, or -1 when the word is absent. */
long nlp_vocab_find(const nlp_vocab *v, const char *s, size_t len);

/* nlp_vocab_find for a NUL-terminated string. */
long nlp_vocab_find_str(const nlp_vocab *v, const char *s);

/* Number of words. */
long nlp_vocab_size(const nlp_vocab *v);

/* Sum of all counts. */
int64_t nlp_vocab_total(const nlp_vocab *v);

/*
** The bytes of word id, NUL-terminated (a word holding NUL bytes needs
** nlp_vocab_word_len).  Owned by v; valid until v is changed.  id must be
** in 0 .. size-1 (checked by assert only).
*/
const char *nlp_vocab_word(const nlp_vocab *v, long id);

/* Length in bytes of word id. */
size_t nlp_vocab_word_len(const nlp_vocab *v, long id);

/* Count of word id. */
int64_t nlp_vocab_count(const nlp_vocab *v, long id);

/*
** Replaces the count of word id.  Returns NLP_OK, NLP_EINVAL (count < 0)
** or NLP_ERANGE (the total of all counts would exceed INT64_MAX); v is
** unchanged on error.  id must be in 0 .. size-1 (checked by assert only).
*/
int nlp_vocab_set_count(nlp_vocab *v, long id, int64_t count);

/*
** Pins every word added so far: they keep their ids (0 .. pinned-1) through
** sort and prune.  Calling it again later pins the words added since, too.
*/
void nlp_vocab_pin(nlp_vocab *v);

/* Number of pinned words. */
long nlp_vocab_pinned(const nlp_vocab *v);

/*
** Renumbers the unpinned words by count, highest first.  The sort is
** stable: words of equal count keep their order of first insertion (their
** current id order), as in word2vec's SortVocab (glibc's qsort is a merge
** sort), so a vocabulary counted from a text lists words exactly as the
** original word2vec does.  Deterministic: it never depends on hash layout.
** Pinned words stay first, in their order.
** Returns NLP_OK or NLP_ENOMEM (v unchanged).
*/
int nlp_vocab_sort(nlp_vocab *v);

/*
** Removes every unpinned word whose count is below min_count; the remaining
** words keep their relative order and are renumbered densely.  Returns the
** number of words removed (>= 0) or NLP_ENOMEM (v unchanged).
*/
long nlp_vocab_prune(nlp_vocab *v, int64_t min_count);

/*
** Keeps only the first n words (ids 0 .. n-1); pinned words are always
** kept.  Use after nlp_vocab_sort to keep the n most frequent words.
** Returns the number of words removed or NLP_ENOMEM (v unchanged).
*/
long nlp_vocab_truncate(nlp_vocab *v, long n);

/*
** Writes one "WORD COUNT\n" line per word, in id order (word2vec's
** -save-vocab format).  A word holding a newline, or a NUL byte, cannot be
** written in this format: NLP_EFORMAT naming the id (nothing more is
** written).  Write failures give NLP_EIO.  path only names the file in e.
*/
int nlp_vocab_save(const nlp_vocab *v, FILE *f, const char *path, nlp_error *e);

/*
** Reads "WORD COUNT" lines (word2vec's -save-vocab format) from f and adds
** each word with its count to v (which may already hold pinned symbols:
** a listed symbol gets the listed count).  The word is everything before
** the last space or tab of the line, so words with inner spaces round-trip;
** a trailing "\r" is ignored; empty lines are skipped.  Errors, with path
** and the 1-based line number in e: NLP_EFORMAT for a line without a
** separator, an empty word, a count that is not a non-negative integer or a
** word listed twice; NLP_ERANGE for a count that takes the total of all
** counts beyond INT64_MAX; NLP_EIO for a read error; NLP_ENOMEM.  On error the
** words read before the bad line stay in v.
*/
int nlp_vocab_load(nlp_vocab *v, FILE *f, const char *path, nlp_error *e);

/* nlp_vocab_save / nlp_vocab_load on a named file (opened and closed here). */
int nlp_vocab_save_file(const nlp_vocab *v, const char *path, nlp_error *e);
int nlp_vocab_load_file(nlp_vocab *v, const char *path, nlp_error *e);

/*
** Serialises v into a new malloc'd buffer *out of *n bytes (the caller
** frees it).  Layout, all integers little-endian: "NLPV", u32 version (1),
** u64 size, u64 pinned, then per word u32 length, i64 count, the bytes.
** Returns NLP_OK or NLP_ENOMEM.
*/
int nlp_vocab_to_blob(const nlp_vocab *v, unsigned char **out, size_t *n);

/*
** Rebuilds a vocabulary from a blob made by nlp_vocab_to_blob.  On success
** *out is a new vocabulary owned by the caller.  A bad magic, unknown
** version, a blob too short, duplicate words or trailing bytes give
** NLP_EFORMAT/NLP_EVERSION/NLP_ETRUNCATED, counts whose sum exceeds
** INT64_MAX NLP_ERANGE, with a message in e; *out is NULL.
*/
int nlp_vocab_from_blob(const void *blob, size_t n, nlp_vocab **out, nlp_error *e);

struct nlp_model;

/*
** The vocabulary a model file keeps as blob name (nlp_vocab_to_blob, then
** nlp_model_add_blob), as nlp_vocab_from_blob makes it: *out a new
** vocabulary owned by the caller.  Errors name path (the file f was read
** from) in e: NLP_EFORMAT for a missing or bad blob (with the reason),
** NLP_ENOMEM; *out is then unchanged (no blob) or NULL.
*/
int nlp_vocab_from_model(nlp_vocab **out, const struct nlp_model *f, const char *name,
                         const char *path, nlp_error *e);

#endif
