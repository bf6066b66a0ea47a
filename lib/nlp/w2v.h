/*
** w2v: word2vec training (Mikolov et al. 2013): skip-gram and CBOW, with
** negative sampling and/or hierarchical softmax, frequent-word subsampling,
** linear learning-rate decay and lock-free ("Hogwild") threads.
**
** The corpus is a file of whitespace-separated words (space, tab, CR, VT,
** FF, NUL, newline); a newline ends a sentence and counts as the word "</s>",
** which is id 0 of the vocabulary, as in the original word2vec.  Training
** reads the file through a descriptor with pread(), each thread its own
** byte slice, once per epoch: memory holds the vocabulary, the weight
** matrices and small per-thread buffers, never the corpus.  A word belongs
** to the slice where it starts; words are never truncated.
**
** Every random choice comes from per-thread nlp_rng streams split from
** config.seed, so with one thread a run is exactly repeatable.  With more
** threads updates race by design (Hogwild) and runs differ slightly.
**
** Nothing here prints: progress is reported through an optional callback.
*/
#ifndef NLP_W2V_H
#define NLP_W2V_H

#include <stdint.h>
#include <sys/types.h>

#include <nlp/error.h>
#include <nlp/train.h>
#include <nlp/vocab.h>

/* The sentence delimiter, id 0 in a word2vec vocabulary. */
#define NLP_W2V_EOS "</s>"

/* Sentences longer than this are cut into pieces (word2vec's MAX_SENTENCE_LENGTH). */
#define NLP_W2V_MAX_SENTENCE 1000

/*
** Called from the first thread about every 10000 words it reads: done is
** the fraction of all epochs' words processed (0..1), alpha the current
** learning rate, words_per_sec the rate over all threads so far.
*/
typedef void (*nlp_w2v_progress_fn)(void *arg, double done, double alpha, double words_per_sec);

typedef struct nlp_w2v_config {
    int size;                 /* vector dimensions [100] */
    int window;               /* max context distance [5] */
    double sample;            /* subsampling threshold, 0 = off [1e-3] */
    int hs;                   /* hierarchical softmax on/off [0] */
    int negative;             /* negative samples per target, 0 = off [5] */
    int threads;              /* worker threads [1] */
    int iter;                 /* epochs [5] */
    double alpha;             /* start learning rate; <= 0: 0.05 for CBOW, 0.025 skip-gram [0] */
    int cbow;                 /* 1 = CBOW, 0 = skip-gram [1] */
    int shared_negatives;     /* skip-gram + negative sampling: draw one set of
                                 negatives per centre word, shared by its whole
                                 context window, and update as small matrix
                                 products (faster, same quality) [0] */
    uint64_t seed;            /* random seed [1] */
    nlp_w2v_progress_fn progress;  /* optional progress callback [NULL] */
    void *progress_arg;       /* passed to progress */
    /* Several processes (MPI ranks; see nlp_w2v_train): the sums over them
    ** (only rank, size, sum_float and sum_double are used); NULL: this
    ** process alone [NULL]. */
    const nlp_train_collective *collective;
    long sync_words;          /* with a collective: the processes combine
                                 their weights every this many words each
                                 process reads [NLP_W2V_SYNC_WORDS] */
    int sync_average;         /* 1: combine by averaging (pWord2Vec); 0: the
                                 weights of the last sync plus every
                                 process's updates since [0] */
} nlp_w2v_config;

/* Default of sync_words.  On gutenberg (7.1M words), CBOW, 5 epochs, 2
** processes of 1 thread: analogy 19.9% at 20000, 19.6% at 50000, 18.8% at
** 250000, against 20.3% and 21.0% for two runs of one process with 2
** threads. */
#define NLP_W2V_SYNC_WORDS 20000L

/* Fills c with the defaults shown above (the original word2vec's, except threads). */
void nlp_w2v_config_default(nlp_w2v_config *c);

/*
** Prepares an empty word2vec vocabulary: adds NLP_W2V_EOS with count 0 and
** pins it as id 0.  Returns NLP_OK or NLP_ENOMEM.
*/
int nlp_w2v_vocab_init(nlp_vocab *v);

/*
** Counts the words of the file behind fd (read from offset 0 to the end with
** pread; the file offset is not used) into v, which nlp_w2v_vocab_init
** prepared: each word adds 1 to its count, each newline 1 to "</s>".  When
** the vocabulary exceeds max_words distinct words (<= 0: no limit), words
** of count 1, then 2, ... are dropped, as word2vec's ReduceVocab does, so
** memory stays bounded.  Returns NLP_OK, NLP_EIO (e names path) or NLP_ENOMEM.
*/
int nlp_w2v_count_fd(nlp_vocab *v, int fd, long max_words, const char *path, nlp_error *e);

/*
** Sorts v by count (nlp_vocab_sort) and removes the words below min_count,
** keeping "</s>" at id 0.  NLP_EEMPTY (message in e) when no word is left
** besides "</s>".  Returns NLP_OK, NLP_EEMPTY or NLP_ENOMEM.
*/
int nlp_w2v_vocab_finish(nlp_vocab *v, int64_t min_count, nlp_error *e);

typedef struct nlp_w2v nlp_w2v;

/*
** A new model for vocabulary v (prepared as above; v must outlive the model
** and stay unchanged): input vectors initialised uniformly in
** [-0.5/size, 0.5/size) from config->seed, output weights zero.  Checks the
** configuration: NLP_EINVAL with a message in e for size/window/iter/threads
** < 1, negative < 0, neither hs nor negative, sample < 0 or not finite,
** alpha not finite; NLP_ERANGE when the vocabulary's counts (which may come
** from a file) are negative or sum beyond 2^63.  *out is NULL on error.
** Free with nlp_w2v_free.
*/
int nlp_w2v_new(nlp_w2v **out, const nlp_w2v_config *config, const nlp_vocab *v, nlp_error *e);

/* Frees m.  NULL is a no-op. */
void nlp_w2v_free(nlp_w2v *m);

/*
** Trains config.iter epochs over the file behind fd (size bytes, read with
** pread from offset 0) with config.threads threads.  Words absent from the
** vocabulary are skipped.  Returns NLP_OK, NLP_EIO (read error, e names
** path and the reading thread's own errno text), NLP_ENOMEM, NLP_EINVAL
** (thread creation failed) or NLP_ERANGE when training diverged (a learning
** rate too high for the data makes the vectors overflow to Inf/NaN): the
** threads stop as soon as one sees a NaN, and the vectors are checked to be
** finite at the end; after NLP_ERANGE the vectors are garbage.  May be
** called again to train more (the learning rate restarts).
**
** Several processes (config.collective of size R > 1), as pWord2Vec: every
** process runs this on the same file and vocabulary, and process r's
** threads take the byte slices r*T .. r*T+T-1 of R*T, so each trains on its
** own shard.  Every config.sync_words words the process reads, its threads
** pause, and the calling thread sums syn0 and the output weights over the
** processes (sum_float, one call per matrix); then, by default, the
** weights become those of the last sync plus the updates of every
** process since (the sum minus R - 1 times the last sync's weights, kept
** in a copy of each matrix: twice the memory), or with sync_average the
** sum divided by R (pWord2Vec's averaging, which scales each process's
** updates by 1/R and learns slower): every process continues from the same
** weights.  The learning rate decays with the
** words of all processes (summed at each sync, extrapolated in
** between).  A process whose shard is done keeps taking part in the
** syncs until every one is done; the last sync leaves the same
** vectors on every process.  A thread that fails, or diverges, on any
** process stops all of them at the next sync (its own error on the
** failing process, NLP_EIO "training failed on another process" on the
** others; NLP_ERANGE on all after a divergence).  A sum that fails is
** returned as it is (the caller should end the job: the others wait for
** it).  nlp_w2v_new refuses (NLP_EINVAL) sync_words < 1 and a collective
** without its sums.
*/
int nlp_w2v_train(nlp_w2v *m, int fd, off_t size, const char *path, nlp_error *e);

/* Words processed by the last nlp_w2v_train (all threads, all epochs). */
int64_t nlp_w2v_words_processed(const nlp_w2v *m);

/*
** Words of the last nlp_w2v_train that subsampling kept, i.e. that were
** trained on (all threads, all epochs; "</s>" and unknown words excluded).
** With sample = 0 every known word except "</s>" is kept.
*/
int64_t nlp_w2v_words_trained(const nlp_w2v *m);

/* The input vectors: size(vocab) rows of config.size floats, row-major.  Owned by m. */
const float *nlp_w2v_vectors(const nlp_w2v *m);

/* Vector dimensions. */
int nlp_w2v_dim(const nlp_w2v *m);

/* Iterations of k-means in word2vec's -classes. */
#define NLP_W2V_CLASS_ITER 10

/*
** Word classes by k-means, as word2vec's -classes: word i of the n vectors
** (row-major, dim floats each; e.g. nlp_w2v_vectors) starts in class i mod
** k; each of iter rounds (word2vec: NLP_W2V_CLASS_ITER) sets every class
** centroid to the sum of its members over (members + 1), scaled to unit
** length, then moves every word to the class whose centroid has the largest
** dot product with it (the lowest class id on a tie; an empty class, whose
** centroid is zero, is never chosen).  Fills classes[0..n-1] with ids in
** 0..k-1.  Unlike word2vec, a word whose dot products are all below -10 still
** joins its best class (word2vec leaves it in class 0).  Returns NLP_OK,
** NLP_EINVAL (n < 0, dim < 1, k < 1, iter < 0) or NLP_ENOMEM.
*/
int nlp_w2v_classes(const float *vectors, long n, int dim, int k, int iter, int32_t *classes);

/* ---- internals exposed for tests --------------------------------------- */

/*
** Huffman coding of n counts (any order): for word i, codes[i] holds its
** code length L (<= n-1), code[i][0..L-1] the bits (root first) and
** point[i][0..L-1] the inner-node indices (0..n-2, root = n-2) on the path,
** as word2vec's CreateBinaryTree.  Storage is flat: bits and points of word
** i start at offset[i].
** nlp_w2v_huffman_new sets *out to the coding of counts[0..n-1] and returns
** NLP_OK; the caller owns it and frees it with nlp_w2v_huffman_free.
** Returns NLP_EINVAL when n < 0 or n > INT32_MAX, NLP_ENOMEM when out of
** memory; *out is NULL on failure.
*/
typedef struct nlp_w2v_huffman {
    long n;            /* leaves */
    int64_t *offset;   /* n + 1 offsets into bits/points */
    uint8_t *bits;     /* code bits, 0 or 1 */
    int32_t *points;   /* inner-node ids */
} nlp_w2v_huffman;

int nlp_w2v_huffman_new(nlp_w2v_huffman **out, const int64_t *counts, long n);
void nlp_w2v_huffman_free(nlp_w2v_huffman *h);

/*
** Negative-sampling distribution: P(i) proportional to counts[i]^power
** (0.75 in word2vec), except that ids below skip (e.g. 1: "</s>") are never
** drawn.  Sampling is O(1) with Walker's alias method, exact, and takes
** O(n) memory instead of word2vec's 1e8-entry table.
** nlp_w2v_unigram_new sets *out and returns NLP_OK; the caller owns it and
** frees it with nlp_w2v_unigram_free.  Returns NLP_EINVAL when n is not in
** 1..INT32_MAX or every weight is zero, NLP_ENOMEM when out of memory; *out
** is NULL on failure.
*/
typedef struct nlp_w2v_unigram nlp_w2v_unigram;

int nlp_w2v_unigram_new(nlp_w2v_unigram **out, const int64_t *counts, long n, double power,
                        long skip);
void nlp_w2v_unigram_free(nlp_w2v_unigram *u);

/* Draws an id from u with 64 random bits (one nlp_rng_u64 output). */
long nlp_w2v_unigram_draw(const nlp_w2v_unigram *u, uint64_t bits);

#endif
