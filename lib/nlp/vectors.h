/*
** vectors: word vectors in word2vec's file formats, and the standard ways
** to use them (nearest neighbours, analogies, rank correlation).
**
** Text format: a header line "ROWS DIM", then per row the word, a space and
** DIM numbers separated by spaces.  Binary format: the same header line,
** then per row the word, a space, DIM little-endian IEEE floats and a
** newline.  The writer produces exactly what the original word2vec writes
** ("%lf " per number in text), so gensim's load_word2vec_format and other
** tools read it.  The reader accepts both formats (detected from the first
** row), with or without the newline after binary rows and with or without a
** trailing space in text rows (gensim writes none).
*/
#ifndef NLP_VECTORS_H
#define NLP_VECTORS_H

#include <stdint.h>
#include <stdio.h>

#include <nlp/error.h>
#include <nlp/vocab.h>

/* Most dimensions a vectors file may declare. */
#define NLP_VECTORS_MAX_DIM 1000000

typedef struct nlp_vectors {
    long n;           /* rows */
    int dim;          /* floats per row */
    nlp_vocab *words; /* row i is word id i (counts are 0) */
    float *data;      /* (n, dim) row-major */
} nlp_vectors;

/*
** Writes n rows of dim floats (data, row-major) labelled by the first n
** words of words, in text (binary == 0) or binary format.  A word holding
** whitespace or a NUL byte cannot be written in this format: NLP_EFORMAT.
** Write errors give NLP_EIO.  path only names the file in e.
*/
int nlp_vectors_write(FILE *f, const nlp_vocab *words, const float *data, long n, int dim,
                      int binary, const char *path, nlp_error *e);

/*
** Reads a vectors file in either format.  max_rows > 0 keeps only the first
** max_rows rows (the rest of the file is not read).  On success *out is a
** new nlp_vectors (free with nlp_vectors_free).
**
** Nothing in the file is trusted: the header's numbers are range-checked
** (ROWS 0..LONG_MAX, DIM 1..NLP_VECTORS_MAX_DIM) before they size anything,
** and memory grows with the rows actually read (for a regular file the
** first allocation is bounded by what its size can hold), so a header
** claiming billions of rows costs nothing.  Every number must be finite;
** every text row must hold exactly DIM numbers and end with a newline (a
** file cut inside its last number is truncated, not a row with a wrong
** value); when the whole file is read, nothing but blank space may follow
** the announced rows.  A word is at most 64 MiB.
**
** Errors, with path and the line (the header is line 1, row i is line i+2)
** in e: NLP_EFORMAT for a bad header, a bad or non-finite number, a row
** with too few or too many numbers, a word listed twice or data after the
** rows; NLP_ETRUNCATED when the file ends before the rows the header
** announces or inside a row; NLP_ERANGE for a word too long; NLP_EIO with
** the reason (e.g. "read error: Is a directory"); NLP_ENOMEM.  *out is NULL
** on error.
*/
int nlp_vectors_read(FILE *f, const char *path, long max_rows, nlp_vectors **out, nlp_error *e);

/* Frees v.  NULL is a no-op. */
void nlp_vectors_free(nlp_vectors *v);

/*
** An output file that appears whole or not at all, for vectors and any other
** file a tool writes after long work (word2vec's -output, -save-vocab).  For
** a regular file or a new name, the data goes to a temporary file beside it
** (PATH.tmpPID.N, same directory, so the rename is atomic), which commit
** flushes, fsyncs and renames over PATH, then fsyncs the directory: a full
** disk, a kill or a crash at any moment leaves the previous file intact.  A
** symbolic link is followed (the file it names is replaced, the link stays);
** an existing file's permissions are kept.  A device, FIFO or socket (e.g.
** /dev/null) is written in place.
*/
typedef struct nlp_vectors_out nlp_vectors_out;

/*
** Checks, before any long work, that nlp_vectors_out_new(path) can succeed:
** path is not a directory, an existing file is writable, and its directory
** takes a new file (one is created and removed at once).  Returns NLP_OK, or
** NLP_EIO / NLP_EINVAL / NLP_ENOMEM with path and the reason (strerror text,
** e.g. "Is a directory") in e.
*/
int nlp_vectors_out_check(const char *path, nlp_error *e);

/*
** Opens path for writing as above: *out is a new nlp_vectors_out, or NULL on
** error (as nlp_vectors_out_check).  Write to nlp_vectors_out_file(*out),
** then nlp_vectors_out_commit, or nlp_vectors_out_free to give up.
*/
int nlp_vectors_out_new(nlp_vectors_out **out, const char *path, nlp_error *e);

/* The stream to write to; owned by o (do not fclose it). */
FILE *nlp_vectors_out_file(nlp_vectors_out *o);

/*
** Finishes the file and puts it in place; frees o in every case.  NLP_OK, or
** NLP_EIO with path and the reason ("write error: No space left on
** device", "cannot sync: ...", "cannot rename ...") in e, the temporary
** then removed and the previous file untouched.
*/
int nlp_vectors_out_commit(nlp_vectors_out *o, nlp_error *e);

/* Gives up: closes and removes the temporary file, frees o.  NULL is a no-op. */
void nlp_vectors_out_free(nlp_vectors_out *o);

/* Scales every row to unit Euclidean length (all-zero rows stay zero). */
void nlp_vectors_normalize(nlp_vectors *v);

/*
** The k rows among the first limit (<= 0: all) with the largest dot product
** with q (cosine when rows and q are unit length), best first, skipping the
** nex row ids in exclude.  Fills ids[] and scores[] (room for k each) and
** returns how many were found (< k when there are too few rows).
*/
int nlp_vectors_nearest(const nlp_vectors *v, const float *q, long limit, const long *exclude,
                        int nex, int k, long *ids, float *scores);

/*
** Answers n analogy questions a:b :: c:? over the first limit rows (<= 0:
** all): for question i (rows q[3i], q[3i+1], q[3i+2]) answer[i] is the row
** maximising (b - a + c) . x among rows other than a, b and c, as word2vec's
** compute-accuracy does (rows should be unit length).  Uses BLAS in
** batches.  Returns NLP_OK or NLP_ENOMEM.
*/
int nlp_vectors_analogy(const nlp_vectors *v, long limit, const long *q, long n, long *answer);

/*
** Spearman's rank correlation of x and y (n pairs), ties given the average
** of their ranks (so it equals Pearson's correlation of the ranks).  NaN when
** n < 2 or either side is constant.
*/
double nlp_vectors_spearman(const double *x, const double *y, long n);

#endif
