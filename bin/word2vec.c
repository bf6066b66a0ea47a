/*
** word2vec: train word vectors (skip-gram / CBOW), and use them.
**
**   tokenize --lower < corpus | word2vec > vectors.txt
**   word2vec -train corpus -output vec.bin -cbow 0 -size 200 -binary 1
**   word2vec similar -m vectors.txt king
**   word2vec analogy -m vectors.txt < questions-words.txt
**   word2vec similarity -m vectors.txt < wordsim353.tsv
**
** The original word2vec command line is accepted unchanged (single-dash
** long flags, same defaults except -threads); GNU spellings work too.
*/
#include "config.h"

#include "cli.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nlp/outfile.h"
#include "nlp/vectors.h"
#include "nlp/w2v.h"
#ifdef HAVE_MPI
#include "mpi.h"
#endif

/* word2vec's ReduceVocab threshold: 0.7 * its 30M-entry hash table. */
#define MAX_VOCAB_WORDS 21000000L

/* How messages name standard output (standard input is CLI_STDIN_NAME). */
#define STDOUT_NAME "<stdout>"

/* ---- messages -------------------------------------------------------------- */

/*
** A word from a file or the command line made safe to print: valid UTF-8
** passes unchanged, every byte of an ill-formed sequence and every control
** character becomes \xNN (a backslash too, as \x5c, so the text is
** unambiguous).  Returns a malloc'ed string.
*/
static char *printable(const char *s, size_t n)
{
    char *out = n < SIZE_MAX / 4 ? malloc(4 * n + 1) : NULL;
    if (!out)
        cli_die("out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int k = nlp_utf8_decode(s + i, n - i, &cp);
        if (k > 0 && cp >= 0x20 && cp != 0x7f && cp != '\\' && !(cp >= 0x80 && cp < 0xa0)) {
            memcpy(out + o, s + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
            continue;
        }
        size_t bad = k > 0 ? (size_t)k : (size_t)-k;
        for (size_t j = 0; j < bad; j++)
            o += (size_t)sprintf(out + o, "\\x%02x", (unsigned char)s[i + j]);
        i += bad;
    }
    out[o] = '\0';
    return out;
}

/* Opens path for reading ("-" is standard input); a directory is refused by name. */
static FILE *open_read(const char *path)
{
    FILE *f = cli_open_read(path);
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode))
        cli_die("%s: %s", cli_input_name(path), strerror(EISDIR));
    return f;
}

/* ---- training ------------------------------------------------------------ */

static long default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

static void train_usage(void)
{
    nlp_w2v_config c;
    nlp_w2v_config_default(&c);
    printf("Usage: word2vec [OPTION]...\n"
           "       word2vec similar -m VECTORS WORD...\n"
           "       word2vec analogy -m VECTORS [--restrict N] [FILE]\n"
           "       word2vec similarity -m VECTORS [FILE]\n"
           "Train word vectors on whitespace-separated text (a newline ends a\n"
           "sentence) read from standard input or -train FILE; write them to standard\n"
           "output or -output FILE.\n"
           "The original word2vec flags (-train -output -size ... with one dash) work\n"
           "unchanged, with the original defaults; only -threads defaults to the\n"
           "number of CPUs here (12 in the original).\n\n");
    printf("  -train, --train=FILE        training text, '-' = standard input [-]\n"
           "  -output, -o, --output=FILE  where the vectors go, '-' = standard output [-];\n"
           "                              a file is replaced only once it is complete\n"
           "  -size, --size=N             vector dimensions [%d]\n"
           "  -window, --window=N         maximum context distance [%d]\n"
           "  -sample, --sample=X         subsampling threshold for frequent words, 0 = off [%g]\n"
           "  -hs, --hs=0|1               hierarchical softmax [%d]\n"
           "  -negative, --negative=N     negative samples, 0 = none [%d]\n"
           "  -threads, --threads=N       training threads [number of CPUs, here %ld]\n"
           "  -iter, --iter=N             training epochs [%d]\n"
           "  -min-count, --min-count=N   drop words seen fewer times [5]\n"
           "  -alpha, --alpha=X           starting learning rate [0.05 with CBOW, 0.025 skip-gram]\n"
           "  -classes, --classes=K       write K word classes (k-means over the vectors,\n"
           "                              'WORD CLASS' lines) instead of the vectors, 0 = off [0]\n"
           "  -cbow, --cbow=0|1           1 = continuous bag of words, 0 = skip-gram [%d]\n"
           "  -binary, --binary=0|1       write the binary format [0]\n"
           "  -save-vocab, --save-vocab=FILE  write the vocabulary ('word count' lines)\n"
           "  -read-vocab, --read-vocab=FILE  take the vocabulary and counts from FILE\n"
           "  -debug, --debug=N           0 = quiet, 1 = summary, 2 = progress on a terminal [2]\n"
           "      --seed=N                random seed: with -threads 1 a run is repeatable [%llu]\n"
           "      --shared-negatives=0|1  skip-gram: share negatives across a window (faster) [0]\n"
           "      --verbose               summary and progress lines even when not on a terminal\n"
           "      --sync-words=N          under mpirun: the ranks combine their vectors every\n"
           "                              N words each reads (see word2vec(1)) [%ld]\n"
           "      --sync-average=0|1      under mpirun: 1 = combine by averaging (pWord2Vec),\n"
           "                              0 = add up every rank's updates [%d]\n"
           "  -h, --help                  show this help and exit\n"
           "      --version               show the version and exit\n\n",
           c.size, c.window, c.sample, c.hs, c.negative, default_threads(), c.iter, c.cbow,
           (unsigned long long)c.seed, c.sync_words, c.sync_average);
    printf("Examples:\n"
           "  tokenize --lower < corpus.txt | word2vec -cbow 0 -size 200 > vectors.txt\n"
           "  word2vec -train text8 -output vectors.bin -binary 1 -threads 4\n"
           "  word2vec -train text8 -output classes.txt -classes 500\n"
           "See word2vec(1) for the subcommands.\n");
}

enum {
    OPT_TRAIN = 256, OPT_SIZE, OPT_WINDOW, OPT_SAMPLE, OPT_HS, OPT_NEGATIVE, OPT_THREADS,
    OPT_ITER, OPT_MIN_COUNT, OPT_ALPHA, OPT_CBOW, OPT_BINARY, OPT_SAVE_VOCAB, OPT_READ_VOCAB,
    OPT_DEBUG, OPT_SEED, OPT_SHARED, OPT_VERBOSE, OPT_VERSION, OPT_RESTRICT, OPT_COUNT, OPT_CLASSES,
    OPT_SYNC_WORDS, OPT_SYNC_AVERAGE
};

typedef struct progress_state {
    nlp_progress p;
} progress_state;

static void on_progress(void *arg, double done, double alpha, double wps)
{
    progress_state *s = arg;
    nlp_progress_update(&s->p, "alpha %.6f  progress %5.1f%%  %.1fk words/s", alpha,
                        done * 100, wps / 1000);
}

/*
** Copies the descriptor in (standard input, or a pipe named by -train; name
** is what messages call it) into an unlinked temporary file; returns its fd.
*/
static int spool(int in, const char *name, off_t *size)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    size_t n = strlen(dir) + 32;
    char *path = malloc(n);
    if (!path)
        cli_die("out of memory");
    snprintf(path, n, "%s/word2vec.XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        cli_die("cannot create a temporary file in %s: %s", dir, strerror(errno));
    unlink(path);
    free(path);
    enum { BLOCK = 1 << 20 };
    char *buf = malloc(BLOCK);
    if (!buf)
        cli_die("out of memory");
    off_t total = 0;
    for (;;) {
        ssize_t got = read(in, buf, BLOCK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            cli_die("%s: read error: %s", name, strerror(errno));
        if (got == 0)
            break;
        for (ssize_t off = 0; off < got;) {
            ssize_t w = write(fd, buf + off, (size_t)(got - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                cli_die("cannot spool %s to %s: %s", name, dir, strerror(errno));
            off += w;
        }
        total += got;
    }
    free(buf);
    *size = total;
    return fd;
}

/*
** The training text as a seekable descriptor (threads read their slices
** with pread): a regular file as it is, anything else spooled.
*/
static int open_corpus(const char *train, const char *name, off_t *size)
{
    struct stat st;
    int fd = STDIN_FILENO;
    if (strcmp(train, "-") != 0 && (fd = open(train, O_RDONLY | O_CLOEXEC)) < 0)
        cli_die("%s: %s", name, strerror(errno));
    if (fstat(fd, &st) != 0)
        cli_die("%s: %s", name, strerror(errno));
    if (S_ISDIR(st.st_mode))
        cli_die("%s: %s", name, strerror(EISDIR));
    if (S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) == 0) {
        *size = st.st_size;
        return fd;
    }
    int sp = spool(fd, name, size);
    if (fd != STDIN_FILENO)
        close(fd);
    return sp;
}

/* An output file: atomic for a named regular file, streaming for standard output. */
typedef struct output {
    const char *name;       /* for messages */
    nlp_outfile *out;   /* NULL for standard output */
    FILE *f;
} output;

static void output_open(output *o, const char *path)
{
    nlp_error e;
    nlp_error_clear(&e);
    o->out = NULL;
    if (strcmp(path, "-") == 0) {
        o->name = STDOUT_NAME;
        o->f = stdout;
        return;
    }
    o->name = path;
    if (nlp_outfile_new(&o->out, path, &e) != NLP_OK)
        cli_die_error(&e);
    o->f = nlp_outfile_stream(o->out);
}

/*
** Gives up on o after an error: a named file's temporary is removed (the
** previous file stays); standard output's unwritable buffer is dropped, so
** the check at exit does not report the same error a second time.
*/
static void output_abandon(output *o)
{
    if (o->out) {
        nlp_outfile_free(o->out);
        o->out = NULL;
    } else {
        __fpurge(o->f);
        clearerr(o->f);
    }
}

_Noreturn static void output_die(output *o, const nlp_error *e)
{
    output_abandon(o);
    cli_die_error(e);
}

static void output_commit(output *o)
{
    nlp_error e;
    nlp_error_clear(&e);
    if (o->out) {
        nlp_outfile *out = o->out;
        o->out = NULL;
        if (nlp_outfile_commit(out, &e) != NLP_OK)
            cli_die_error(&e);
    } else if (fflush(o->f) != 0 || ferror(o->f)) {
        nlp_error_set(&e, NLP_EIO, o->name, 0, "write error: %s", strerror(errno));
        output_die(o, &e);
    }
}

/* Fails now, before hours of training, if path cannot be written later. */
static void output_check(const char *path)
{
    nlp_error e;
    nlp_error_clear(&e);
    if (strcmp(path, "-") != 0 && nlp_outfile_check(path, &e) != NLP_OK)
        cli_die_error(&e);
}

/* word2vec's -classes output: one "WORD CLASS" line per word, in vocabulary order. */
static void write_classes(output *o, const nlp_vocab *v, const int32_t *cl, long n)
{
    nlp_error e;
    nlp_error_clear(&e);
    for (long i = 0; i < n; i++) {
        const char *w = nlp_vocab_word(v, i);
        size_t len = nlp_vocab_word_len(v, i);
        for (size_t k = 0; k < len; k++)
            if (isspace((unsigned char)w[k]) || w[k] == '\0') {
                char *p = printable(w, len);
                nlp_error_set(&e, NLP_EFORMAT, o->name, 0,
                              "word %ld ('%.200s') holds whitespace or a NUL byte: not representable", i, p);
                output_die(o, &e);
            }
        if (fwrite(w, 1, len, o->f) != len || fprintf(o->f, " %d\n", (int)cl[i]) < 0) {
            nlp_error_set(&e, NLP_EIO, o->name, 0, "write error: %s", strerror(errno));
            output_die(o, &e);
        }
    }
}

static int train_main(int argc, char **argv)
{
    nlp_w2v_config c;
    nlp_w2v_config_default(&c);
    c.threads = (int)(default_threads() > 1024 ? 1024 : default_threads());
    const char *train = "-", *output_path = "-", *save_vocab = NULL, *read_vocab = NULL;
    long min_count = 5, debug = 2, classes = 0;
    int binary = 0, verbose = 0;
    static const struct option opts[] = {
        {"train", required_argument, NULL, OPT_TRAIN},
        {"output", required_argument, NULL, 'o'},
        {"size", required_argument, NULL, OPT_SIZE},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"sample", required_argument, NULL, OPT_SAMPLE},
        {"hs", required_argument, NULL, OPT_HS},
        {"negative", required_argument, NULL, OPT_NEGATIVE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"iter", required_argument, NULL, OPT_ITER},
        {"min-count", required_argument, NULL, OPT_MIN_COUNT},
        {"alpha", required_argument, NULL, OPT_ALPHA},
        {"classes", required_argument, NULL, OPT_CLASSES},
        {"cbow", required_argument, NULL, OPT_CBOW},
        {"binary", required_argument, NULL, OPT_BINARY},
        {"save-vocab", required_argument, NULL, OPT_SAVE_VOCAB},
        {"read-vocab", required_argument, NULL, OPT_READ_VOCAB},
        {"debug", required_argument, NULL, OPT_DEBUG},
        {"seed", required_argument, NULL, OPT_SEED},
        {"shared-negatives", required_argument, NULL, OPT_SHARED},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"sync-words", required_argument, NULL, OPT_SYNC_WORDS},
        {"sync-average", required_argument, NULL, OPT_SYNC_AVERAGE},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0}
    };
    opterr = 0;
    int ch;
    /* getopt_long_only: "-size 200" is the long option --size, as word2vec spells it. */
    while ((ch = getopt_long_only(argc, argv, ":o:h", opts, NULL)) != -1) {
        const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "option";
        switch (ch) {
        case OPT_TRAIN: train = optarg; break;
        case 'o': output_path = optarg; break;
        case OPT_SIZE: c.size = (int)cli_parse_long("-size", optarg, 1, 100000); break;
        case OPT_WINDOW: c.window = (int)cli_parse_long("-window", optarg, 1, 1000); break;
        case OPT_SAMPLE: c.sample = cli_parse_double("-sample", optarg, 0, 1); break;
        case OPT_HS: c.hs = (int)cli_parse_long("-hs", optarg, 0, 1); break;
        case OPT_NEGATIVE: c.negative = (int)cli_parse_long("-negative", optarg, 0, 1000); break;
        case OPT_THREADS: c.threads = (int)cli_parse_long("-threads", optarg, 1, 1024); break;
        case OPT_ITER: c.iter = (int)cli_parse_long("-iter", optarg, 1, 1000000); break;
        case OPT_MIN_COUNT: min_count = cli_parse_long("-min-count", optarg, 0, LONG_MAX); break;
        case OPT_ALPHA: c.alpha = cli_parse_double("-alpha", optarg, 1e-12, 100); break;
        case OPT_CLASSES: classes = cli_parse_long("-classes", optarg, 0, INT32_MAX); break;
        case OPT_CBOW: c.cbow = (int)cli_parse_long("-cbow", optarg, 0, 1); break;
        case OPT_BINARY: binary = (int)cli_parse_long("-binary", optarg, 0, 1); break;
        case OPT_SAVE_VOCAB: save_vocab = optarg; break;
        case OPT_READ_VOCAB: read_vocab = optarg; break;
        case OPT_DEBUG: debug = cli_parse_long("-debug", optarg, 0, 100); break;
        case OPT_SEED: c.seed = (uint64_t)cli_parse_long("--seed", optarg, 0, LONG_MAX); break;
        case OPT_SHARED: c.shared_negatives = (int)cli_parse_long("--shared-negatives", optarg, 0, 1); break;
        case OPT_VERBOSE: verbose = 1; break;
        case OPT_SYNC_WORDS: c.sync_words = cli_parse_long("--sync-words", optarg, 1, LONG_MAX); break;
        case OPT_SYNC_AVERAGE: c.sync_average = (int)cli_parse_long("--sync-average", optarg, 0, 1); break;
        case 'h': train_usage(); exit(CLI_EXIT_OK);
        case OPT_VERSION: cli_version();
        case ':': cli_usage_error("option '%s' requires an argument", name);
        default: cli_usage_error("unknown option '%s'", name);
        }
    }
    if (optind < argc)
        cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!c.hs && c.negative == 0)
        cli_usage_error("choose hierarchical softmax (-hs 1) or negative sampling (-negative N)");

    /* Under mpirun: every rank trains on its shard of -train FILE; rank 0
    ** alone reports and writes. */
    int root = 1, ranks = 1;
#ifdef HAVE_MPI
    if (cli_mpi_launched_size() > 1 && strcmp(train, "-") == 0)
        cli_usage_error("under mpirun every rank reads the corpus: give -train FILE (standard "
                        "input reaches rank 0 only)");
    ranks = cli_mpi_start();
    root = cli_mpi_rank() == 0;
    c.collective = cli_mpi_collective();
    if (ranks > 1 && strcmp(train, "-") == 0)
        cli_die("under mpirun every rank reads the corpus: give -train FILE");
#endif

    /* Every output is known to be writable before any work starts. */
    if (root)
        output_check(output_path);
    if (root && save_vocab)
        output_check(save_vocab);

    int tty = isatty(STDERR_FILENO);
    progress_state ps;
    nlp_progress_init(&ps.p, root && (verbose || (tty && debug >= 1)) ? stderr : NULL,
                      debug >= 2 ? -1 : 0);
    if (root && debug >= 2 && (tty || verbose)) {
        c.progress = on_progress;
        c.progress_arg = &ps;
    }

    const char *name = cli_input_name(train);
    off_t size;
    int fd = open_corpus(train, name, &size);

    nlp_error e;
    nlp_error_clear(&e);
    nlp_vocab *v;
    int rc = nlp_vocab_new(&v);
    if (rc == NLP_OK)
        rc = nlp_w2v_vocab_init(v);
    if (rc != NLP_OK)
        cli_die("%s", nlp_error_string(rc));
    if (read_vocab) {
        if (nlp_vocab_load_file(v, read_vocab, &e) != NLP_OK)
            cli_die_error(&e);
    } else {
        if (nlp_w2v_count_fd(v, fd, MAX_VOCAB_WORDS, name, &e) != NLP_OK)
            cli_die_error(&e);
        if (nlp_vocab_total(v) == 0)
            cli_die("%s: empty input: no words to train on", name);
    }
    rc = nlp_w2v_vocab_finish(v, min_count, &e);
    if (rc == NLP_EEMPTY)
        cli_die("%s: %s", read_vocab ? read_vocab : name, e.text);
    if (rc != NLP_OK)
        cli_die_error(&e);
    nlp_progress_line(&ps.p, "vocabulary size: %ld", nlp_vocab_size(v));
    nlp_progress_line(&ps.p, "words in training file: %lld", (long long)nlp_vocab_total(v));
    if (root && save_vocab) {
        output vo;
        output_open(&vo, save_vocab);
        if (nlp_vocab_save(v, vo.f, save_vocab, &e) != NLP_OK)
            output_die(&vo, &e);
        output_commit(&vo);
    }

    nlp_w2v *m;
    if (nlp_w2v_new(&m, &c, v, &e) != NLP_OK)
        cli_die_error(&e);
    if (nlp_w2v_train(m, fd, size, name, &e) != NLP_OK) {
        nlp_progress_finish(&ps.p);
        if (e.code == NLP_ERANGE)
            cli_die("%s (see -alpha)", e.text);
        cli_die_error(&e);
    }
    nlp_progress_finish(&ps.p);
    double secs = nlp_progress_elapsed(&ps.p), words = (double)nlp_w2v_words_processed(m);
#ifdef HAVE_MPI
    cli_mpi_sum_doubles(&words, 1); /* every rank's */
#endif
    if (ranks > 1)
        nlp_progress_line(&ps.p, "trained on %.0f words on %d ranks in %.1fs (%.1fk words/s)",
                          words, ranks, secs, secs > 0 ? words / secs / 1000 : 0);
    else
        nlp_progress_line(&ps.p, "trained on %lld words in %.1fs (%.1fk words/s)",
                          (long long)nlp_w2v_words_processed(m), secs,
                          secs > 0 ? (double)nlp_w2v_words_processed(m) / secs / 1000 : 0);

    const float *vec = nlp_w2v_vectors(m);
    if (!vec)
        cli_die("out of memory");
    long n = nlp_vocab_size(v);
    /* Under mpirun every rank holds the same vectors: rank 0 writes them. */
    if (root) {
        output o;
        output_open(&o, output_path);
        if (classes > 0) {
            int32_t *cl = malloc((size_t)n * sizeof *cl);
            if (!cl || nlp_w2v_classes(vec, n, nlp_w2v_dim(m), (int)classes, NLP_W2V_CLASS_ITER, cl) != NLP_OK)
                cli_die("out of memory");
            write_classes(&o, v, cl, n);
            free(cl);
        } else if (nlp_vectors_write(o.f, v, vec, n, nlp_w2v_dim(m), binary, o.name, &e) != NLP_OK) {
            output_die(&o, &e);
        }
        output_commit(&o);
    }
#ifdef HAVE_MPI
    cli_mpi_finish();
#endif
    nlp_w2v_free(m);
    nlp_vocab_free(v);
    if (fd != STDIN_FILENO)
        close(fd);
    return CLI_EXIT_OK;
}

/* ---- using vectors ------------------------------------------------------- */

static nlp_vectors *load_vectors(const char *path, long max_rows)
{
    if (!path)
        cli_usage_error("missing -m VECTORS");
    FILE *f = open_read(path);
    nlp_vectors *v;
    nlp_error e;
    nlp_error_clear(&e);
    if (nlp_vectors_read(f, cli_input_name(path), max_rows, &v, &e) != NLP_OK)
        cli_die_error(&e);
    cli_close_read(f);
    nlp_vectors_normalize(v);
    return v;
}

/* ASCII lower-case copy of n bytes into a growing buffer (UTF-8 passes through). */
static char *fold(const char *s, size_t n, char **buf, size_t *cap)
{
    if (*cap < n + 1) {
        *cap = n + 1;
        *buf = realloc(*buf, *cap);
        if (!*buf)
            cli_die("out of memory");
    }
    for (size_t i = 0; i < n; i++)
        (*buf)[i] = (char)tolower((unsigned char)s[i]);
    (*buf)[n] = '\0';
    return *buf;
}

/*
** Case-insensitive lookup table over the first rows of v, as compute-accuracy
** (which upper-cases both sides): folded word -> first (most frequent) row.
*/
typedef struct folded {
    nlp_vocab *words;  /* folded words */
    long *row;         /* folded id -> row of v */
} folded;

static void folded_init(folded *f, const nlp_vectors *v, long rows)
{
    int rc = nlp_vocab_new(&f->words);
    if (rc != NLP_OK)
        cli_die("%s", nlp_error_string(rc));
    f->row = malloc((size_t)(rows > 0 ? rows : 1) * sizeof *f->row);
    if (!f->row)
        cli_die("out of memory");
    char *buf = NULL;
    size_t cap = 0;
    for (long i = 0; i < rows; i++) {
        size_t n = nlp_vocab_word_len(v->words, i);
        long before = nlp_vocab_size(f->words);
        long id = nlp_vocab_add(f->words, fold(nlp_vocab_word(v->words, i), n, &buf, &cap), n);
        if (id < 0)
            cli_die("out of memory");
        if (id == before)
            f->row[id] = i;
    }
    free(buf);
}

static long folded_find(const folded *f, const char *w, size_t n, char **buf, size_t *cap)
{
    long id = nlp_vocab_find(f->words, fold(w, n, buf, cap), n);
    return id < 0 ? -1 : f->row[id];
}

static void folded_free(folded *f)
{
    nlp_vocab_free(f->words);
    free(f->row);
}

static void sub_usage(const char *cmd)
{
    if (strcmp(cmd, "similar") == 0)
        printf("Usage: word2vec similar -m VECTORS [-n N] WORD...\n"
               "Print the N words nearest to each WORD by cosine similarity, one\n"
               "'WORD<TAB>NEIGHBOUR<TAB>COSINE' line each.\n\n"
               "  -m, --model=FILE    word vectors (word2vec text or binary format)\n"
               "  -n, --count=N       neighbours per word [10]\n"
               "  -h, --help          show this help and exit\n"
               "      --version       show the version and exit\n");
    else if (strcmp(cmd, "analogy") == 0)
        printf("Usage: word2vec analogy -m VECTORS [--restrict N] [FILE]\n"
               "Answer the analogy questions of FILE (or standard input) in the\n"
               "questions-words.txt layout (': section' lines, then 'a b c d' lines), as\n"
               "word2vec's compute-accuracy does: only the N most frequent words (the first\n"
               "N of the file) are candidates; a question with a word outside them is\n"
               "counted and skipped.  Prints the accuracy per section and in total.\n\n"
               "  -m, --model=FILE    word vectors (word2vec text or binary format)\n"
               "  -r, --restrict=N    use the N most frequent words, 0 = all [30000]\n"
               "  -h, --help          show this help and exit\n"
               "      --version       show the version and exit\n");
    else
        printf("Usage: word2vec similarity -m VECTORS [FILE]\n"
               "Spearman rank correlation between the cosine similarity of word pairs\n"
               "and human scores, from FILE (or standard input) in the WordSim-353 layout:\n"
               "'#' comment lines, then 'word1<TAB>word2<TAB>score' lines.  Pairs with an\n"
               "unknown word are skipped and counted.\n\n"
               "  -m, --model=FILE    word vectors (word2vec text or binary format)\n"
               "  -r, --restrict=N    use the N most frequent words, 0 = all [0]\n"
               "  -h, --help          show this help and exit\n"
               "      --version       show the version and exit\n");
}

static int similar_main(int argc, char **argv, const char *model, long count)
{
    if (argc == 0)
        cli_usage_error("similar: give at least one WORD");
    nlp_vectors *v = load_vectors(model, 0);
    folded fw;
    folded_init(&fw, v, v->n);
    long *ids = malloc((size_t)count * sizeof *ids);
    float *sc = malloc((size_t)count * sizeof *sc);
    char *buf = NULL;
    size_t cap = 0;
    int status = CLI_EXIT_OK;
    if (!ids || !sc)
        cli_die("out of memory");
    for (int i = 0; i < argc; i++) {
        long row = nlp_vocab_find_str(v->words, argv[i]);
        if (row < 0)
            row = folded_find(&fw, argv[i], strlen(argv[i]), &buf, &cap);
        if (row < 0) {
            char *p = printable(argv[i], strlen(argv[i]));
            cli_warn("%s: not in the vocabulary", p);
            free(p);
            status = CLI_EXIT_FAILURE;
            continue;
        }
        int k = nlp_vectors_nearest(v, v->data + (size_t)row * v->dim, 0, &row, 1, (int)count, ids, sc);
        for (int j = 0; j < k; j++)
            printf("%s\t%s\t%.6f\n", argv[i], nlp_vocab_word(v->words, ids[j]), sc[j]);
    }
    free(buf);
    free(ids);
    free(sc);
    folded_free(&fw);
    nlp_vectors_free(v);
    return status;
}

/* Splits a line into at most max whitespace-separated fields; returns the count. */
static int split_ws(char *line, char **f, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
        if (n == max)
            return max + 1;
        f[n++] = t;
    }
    return n;
}

typedef struct section {
    char *name;
    long correct, answered, seen;
} section;

/*
** What analogy and similarity both read: the questions (the one FILE
** operand, or standard input) line by line, and the vectors with their
** case-folded index.
*/
typedef struct eval_input {
    FILE *in;
    const char *path;   /* the questions, as named in messages */
    nlp_lines *lr;
    nlp_vectors *v;
    folded fw;
} eval_input;

/* Opens the questions, then the vectors; operand is the usage text. */
static void eval_open(eval_input *ei, int argc, char **argv, const char *operand,
                      const char *model, long restrict_n)
{
    if (argc > 1)
        cli_usage_error("%s", operand);
    ei->in = open_read(argc == 1 ? argv[0] : "-");
    ei->path = cli_input_name(argc == 1 ? argv[0] : "-");
    ei->v = load_vectors(model, restrict_n);
    folded_init(&ei->fw, ei->v, ei->v->n);
    int rc = nlp_lines_new(&ei->lr, ei->in, NLP_LINES_STRIP_CR);
    if (rc != NLP_OK)
        cli_die("%s", nlp_error_string(rc));
}

/* Ends the questions, r being nlp_lines_next's last result. */
static void eval_end_input(eval_input *ei, int r)
{
    if (r < 0)
        cli_die("%s: read error: %s", ei->path, strerror(errno));
    nlp_lines_free(ei->lr);
    cli_close_read(ei->in);
}

static void eval_close(eval_input *ei)
{
    folded_free(&ei->fw);
    nlp_vectors_free(ei->v);
}

static int analogy_main(int argc, char **argv, const char *model, long restrict_n)
{
    eval_input ei;
    eval_open(&ei, argc, argv, "analogy: at most one question FILE", model, restrict_n);
    const char *path = ei.path;
    nlp_lines *lr = ei.lr;
    nlp_vectors *v = ei.v;
    long nq = 0, qcap = 1024;
    long *q = malloc((size_t)qcap * 4 * sizeof *q);   /* a, b, c, expected d */
    int *qsec = malloc((size_t)qcap * sizeof *qsec);
    section *sec = NULL;
    int nsec = 0;
    char *buf = NULL;
    size_t cap = 0;
    char *line;
    size_t len;
    int r;
    if (!q || !qsec)
        cli_die("out of memory");
    while ((r = nlp_lines_next(lr, &line, &len)) == 1) {
        char *f[5];
        if (line[0] == ':') {
            char *name = line + 1;
            while (*name == ' ' || *name == '\t')
                name++;
            sec = realloc(sec, (size_t)(nsec + 1) * sizeof *sec);
            if (!sec || !(sec[nsec].name = strdup(name)))
                cli_die("out of memory");
            sec[nsec].correct = sec[nsec].answered = sec[nsec].seen = 0;
            nsec++;
            continue;
        }
        int nf = split_ws(line, f, 4);
        if (nf == 0)
            continue;
        if (nf != 4)
            cli_die("%s:%ld: expected four words", path, nlp_lines_number(lr));
        if (nsec == 0) {
            sec = malloc(sizeof *sec);
            if (!sec || !(sec[0].name = strdup("questions")))
                cli_die("out of memory");
            sec[0].correct = sec[0].answered = sec[0].seen = 0;
            nsec = 1;
        }
        sec[nsec - 1].seen++;
        long ids[4];
        int known = 1;
        for (int k = 0; k < 4; k++)
            if ((ids[k] = folded_find(&ei.fw, f[k], strlen(f[k]), &buf, &cap)) < 0)
                known = 0;
        if (!known)
            continue;
        if (nq == qcap) {
            qcap *= 2;
            q = realloc(q, (size_t)qcap * 4 * sizeof *q);
            qsec = realloc(qsec, (size_t)qcap * sizeof *qsec);
            if (!q || !qsec)
                cli_die("out of memory");
        }
        memcpy(q + 4 * nq, ids, sizeof ids);
        qsec[nq++] = nsec - 1;
    }
    eval_end_input(&ei, r);
    /* Pack the (a, b, c) triples for the library. */
    long *abc = malloc((size_t)(nq > 0 ? nq : 1) * 3 * sizeof *abc);
    long *ans = malloc((size_t)(nq > 0 ? nq : 1) * sizeof *ans);
    if (!abc || !ans)
        cli_die("out of memory");
    for (long i = 0; i < nq; i++)
        memcpy(abc + 3 * i, q + 4 * i, 3 * sizeof *abc);
    if (nlp_vectors_analogy(v, 0, abc, nq, ans) != NLP_OK)
        cli_die("out of memory");
    for (long i = 0; i < nq; i++) {
        sec[qsec[i]].answered++;
        if (ans[i] == q[4 * i + 3])
            sec[qsec[i]].correct++;
    }
    long tc = 0, ta = 0, ts = 0, sc = 0, sa = 0, yc = 0, ya = 0;
    for (int s = 0; s < nsec; s++) {
        section *x = &sec[s];
        printf("%s: %.2f%% (%ld/%ld)", x->name, x->answered ? 100.0 * x->correct / x->answered : 0.0,
               x->correct, x->answered);
        if (x->seen > x->answered)
            printf(", %ld skipped", x->seen - x->answered);
        putchar('\n');
        tc += x->correct;
        ta += x->answered;
        ts += x->seen;
        /* questions-words.txt: the "gram..." sections are syntactic. */
        if (strncmp(x->name, "gram", 4) == 0) {
            yc += x->correct;
            ya += x->answered;
        } else {
            sc += x->correct;
            sa += x->answered;
        }
        free(x->name);
    }
    printf("semantic accuracy: %.2f%% (%ld/%ld)\n", sa ? 100.0 * sc / sa : 0.0, sc, sa);
    printf("syntactic accuracy: %.2f%% (%ld/%ld)\n", ya ? 100.0 * yc / ya : 0.0, yc, ya);
    printf("total accuracy: %.2f%% (%ld/%ld), %ld questions seen\n", ta ? 100.0 * tc / ta : 0.0,
           tc, ta, ts);
    free(sec);
    free(q);
    free(qsec);
    free(abc);
    free(ans);
    free(buf);
    eval_close(&ei);
    return CLI_EXIT_OK;
}

static int similarity_main(int argc, char **argv, const char *model, long restrict_n)
{
    eval_input ei;
    eval_open(&ei, argc, argv, "similarity: at most one pairs FILE", model, restrict_n);
    const char *path = ei.path;
    nlp_lines *lr = ei.lr;
    nlp_vectors *v = ei.v;
    long n = 0, cap = 0, skipped = 0;
    double *human = NULL, *model_sim = NULL;
    char *buf = NULL;
    size_t bcap = 0;
    char *line;
    size_t len;
    int r;
    while ((r = nlp_lines_next(lr, &line, &len)) == 1) {
        if (line[0] == '#')
            continue;
        char *f[4];
        /* Tab-separated; words never hold tabs. */
        int nf = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, "\t", &save); t && nf < 4; t = strtok_r(NULL, "\t", &save))
            f[nf++] = t;
        if (nf == 0 || (nf == 1 && strspn(f[0], " ") == strlen(f[0])))
            continue;
        if (nf != 3)
            cli_die("%s:%ld: expected 'word1<TAB>word2<TAB>score'", path, nlp_lines_number(lr));
        char *end;
        errno = 0;
        double score = strtod(f[2], &end);
        while (*end == ' ')
            end++;
        if (end == f[2] || *end || errno == ERANGE || !isfinite(score))
            cli_die("%s:%ld: bad score '%s'", path, nlp_lines_number(lr), printable(f[2], strlen(f[2])));
        long a = folded_find(&ei.fw, f[0], strlen(f[0]), &buf, &bcap);
        long b = folded_find(&ei.fw, f[1], strlen(f[1]), &buf, &bcap);
        if (a < 0 || b < 0) {
            skipped++;
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            human = realloc(human, (size_t)cap * sizeof *human);
            model_sim = realloc(model_sim, (size_t)cap * sizeof *model_sim);
            if (!human || !model_sim)
                cli_die("out of memory");
        }
        const float *x = v->data + (size_t)a * v->dim, *y = v->data + (size_t)b * v->dim;
        double s = 0;
        for (int d = 0; d < v->dim; d++)
            s += (double)x[d] * y[d];
        human[n] = score;
        model_sim[n] = s;
        n++;
    }
    eval_end_input(&ei, r);
    double rho = nlp_vectors_spearman(model_sim, human, n);
    printf("pairs used: %ld, skipped (unknown words): %ld\n", n, skipped);
    if (isnan(rho))
        printf("spearman: nan\n");
    else
        printf("spearman: %.4f\n", rho);
    free(human);
    free(model_sim);
    free(buf);
    eval_close(&ei);
    return CLI_EXIT_OK;
}

static int use_main(const char *cmd, int argc, char **argv)
{
    const char *model = NULL;
    long count = 10, restrict_n = strcmp(cmd, "analogy") == 0 ? 30000 : 0;
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"count", required_argument, NULL, 'n'},
        {"restrict", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0}
    };
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":m:n:r:h", opts, NULL)) != -1) {
        const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "option";
        switch (ch) {
        case 'm': model = optarg; break;
        case 'n': count = cli_parse_long("--count", optarg, 1, 1000000); break;
        case 'r': restrict_n = cli_parse_long("--restrict", optarg, 0, LONG_MAX); break;
        case 'h': sub_usage(cmd); exit(CLI_EXIT_OK);
        case OPT_VERSION: cli_version();
        case ':': cli_usage_error("option '%s' requires an argument", name);
        default: cli_usage_error("unknown option '%s'", name);
        }
    }
    argc -= optind;
    argv += optind;
    if (strcmp(cmd, "similar") == 0)
        return similar_main(argc, argv, model, count);
    if (strcmp(cmd, "analogy") == 0)
        return analogy_main(argc, argv, model, restrict_n);
    return similarity_main(argc, argv, model, restrict_n);
}

int main(int argc, char **argv)
{
    cli_init("word2vec");
    if (argc > 1 && (strcmp(argv[1], "similar") == 0 || strcmp(argv[1], "analogy") == 0
                     || strcmp(argv[1], "similarity") == 0))
        return use_main(argv[1], argc - 1, argv + 1);
    return train_main(argc, argv);
}
