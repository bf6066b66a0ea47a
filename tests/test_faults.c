/*
** Fault injection (issue 11, "Fault injection, kept").  The focus of this
** file is what libnlp does when an allocation or a write fails.
**
** Allocation faults: every allocation in lib/ goes through nlp_malloc &
** co., whose test schedule (nlp_alloc_fail_at) makes the n-th call fail.
** For each operation below the test first runs it with the schedule
** disarmed to count its allocations, then for every n in 1..count runs it
** again with the n-th allocation failing, once alone and once with every
** later one failing too (sticky), and requires each time:
**   - a clean NLP_ENOMEM (NULL from a constructor returning a pointer),
**   - nothing leaked: the bytes the heap holds are the same before and
**     after the run (ASan's counter in the sanitizer build, this
**     program's malloc wrappers otherwise; ASan's leak checker also runs
**     at exit),
**   - no crash, and the operation's own promises on failure (a failed
**     save leaves the previous file byte for byte and no temporary file).
** A warm-up run first fills the caches that ICU and stdio keep for the
** life of the process, so they are not taken for leaks.  (The heap is
** measured with ASan's counter in the sanitizer build, and otherwise by
** the malloc wrappers of tests/heapcheck.h.)
**
** I/O faults: nlp_model_save into a directory that does not exist, onto a
** directory, into a read-only directory (when not root), under a file
** size limit (the write fails half way, as on a full disk), and with
** fsync() and rename() failing (this program defines its own fsync and
** rename, which the library's calls resolve to: an LD_PRELOAD in-process);
** nlp_vocab_save to /dev/full.  Each must give NLP_EIO with the file named
** and leave the previous file intact and no temporary behind.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nlp.h"
#include "nlp/alloc.h"
#include "nlp/attn.h"
#include "nlp/charlm.h"
#include "nlp/lines.h"
#include "nlp/model.h"
#include "nlp/optim.h"
#include "nlp/params.h"
#include "nlp/rnn.h"
#include "nlp/tokenize.h"
#include "nlp/vocab.h"
#include "nlp/w2v.h"

#include "heapcheck.h"

/* ---- the I/O shim: fsync and rename that fail on demand ---------------- */

static int fail_fsync, fail_rename;   /* errno to fail with, 0 = work */
static long fsync_calls, rename_calls;

int fsync(int fd);
int rename(const char *from, const char *to);

int fsync(int fd)
{
    fsync_calls++;
    if (fail_fsync) {
        errno = fail_fsync;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

int rename(const char *from, const char *to)
{
    rename_calls++;
    if (fail_rename) {
        errno = fail_rename;
        return -1;
    }
    return renameat(AT_FDCWD, from, AT_FDCWD, to);
}

/* ---- helpers ------------------------------------------------------------ */

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_faults.XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char p[600];
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
                if (unlink(p) != 0)
                    remove_tree(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

static int teardown_dir(void **state)
{
    (void)state;
    remove_tree(tmpdir);
    return 0;
}

static void path_in(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* Entries of dir other than . and .. */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int k = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            k++;
    closedir(d);
    return k;
}

/* The whole file in a malloc'd buffer (NULL when it cannot be read). */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    unsigned char *b = malloc(cap);
    size_t k;
    while (b && (k = fread(b + len, 1, cap - len, f)) > 0) {
        len += k;
        if (len == cap) {
            unsigned char *nb = realloc(b, cap *= 2);
            if (!nb)
                free(b);
            b = nb;
        }
    }
    fclose(f);
    *n = len;
    return b;
}

/* 1 when the file at path holds exactly the n bytes of want. */
static int file_is(const char *path, const unsigned char *want, size_t n)
{
    size_t got;
    unsigned char *b = slurp(path, &got);
    int same = b && got == n && memcmp(b, want, n) == 0;
    free(b);
    return same;
}

/* Every operation returns NLP_OK or its first error (in rc, then out:). */
#define TRY_RC(expr)               \
    do {                           \
        if ((rc = (expr)) != NLP_OK) \
            goto out;              \
    } while (0)

static long points_total;

/* ---- model save and load ---------------------------------------------- */

typedef struct model_fx {
    char dir[512];         /* a directory of its own: nothing else in it */
    char path[600];
    int fresh;             /* save: no file at path before (removed first) */
    unsigned char *saved;  /* the file as a successful save writes it */
    size_t nsaved;
    float a[2 * 3], b[5];
    nlp_params *p;         /* allocated, two views */
    nlp_optim *o;          /* Adam over p->n */
    unsigned char blob[300];
} model_fx;

/* Builds the test model: metadata (many keys, so the index grows),
** tensors, params, optimiser state, blobs.  NULL model and NLP_ENOMEM
** come back unchanged. */
static int build_model(model_fx *f, nlp_model **out)
{
    int rc;
    char key[32];
    *out = NULL;
    nlp_model *m;
    rc = nlp_model_new(&m, "faults");
    if (rc != NLP_OK) {
        CHECK(m == NULL);
        return rc;
    }
    TRY_RC(nlp_model_set_meta(m, "hidden", "8"));
    TRY_RC(nlp_model_set_meta(m, "hidden", "9"));   /* replaces */
    TRY_RC(nlp_model_set_meta_long(m, "layers", 2));
    TRY_RC(nlp_model_set_meta_double(m, "lr", 0.002));
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "extra.%d", i);
        TRY_RC(nlp_model_set_meta(m, key, key));
    }
    TRY_RC(nlp_model_add_tensor(m, "a", f->a, 2, (size_t[]){ 2, 3 }));
    TRY_RC(nlp_model_add_tensor(m, "b", f->b, 1, (size_t[]){ 5 }));
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "t.%d", i);
        TRY_RC(nlp_model_add_tensor(m, key, f->b, 1, (size_t[]){ 5 }));
    }
    TRY_RC(nlp_model_add_params(m, f->p));
    TRY_RC(nlp_model_add_optim(m, f->o));
    TRY_RC(nlp_model_add_blob(m, "vocab", f->blob, sizeof f->blob));
    TRY_RC(nlp_model_add_blob(m, "empty", NULL, 0));
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "blob.%d", i);
        TRY_RC(nlp_model_add_blob(m, key, f->blob, (size_t)i));
    }
    *out = m;
    return NLP_OK;
out:
    nlp_model_free(m);
    return rc;
}

static int op_model_save(void *arg)
{
    model_fx *f = arg;
    nlp_model *m;
    if (f->fresh)
        unlink(f->path);
    int rc = build_model(f, &m);
    if (rc != NLP_OK)
        return rc;
    nlp_error e;
    rc = nlp_model_save(m, f->path, &e);
    nlp_model_free(m);
    if (rc != NLP_OK) {
        CHECK(strcmp(e.file, f->path) == 0);
        if (f->fresh) {
            CHECK(dir_entries(f->dir) == 0);                 /* nothing at all */
        } else {
            CHECK(file_is(f->path, f->saved, f->nsaved));   /* the old file, intact */
            CHECK(dir_entries(f->dir) == 1);                 /* no temporary left */
        }
    } else {
        CHECK(!f->saved || file_is(f->path, f->saved, f->nsaved));
    }
    return rc;
}

static int op_model_to_buffer(void *arg)
{
    model_fx *f = arg;
    nlp_model *m;
    int rc = build_model(f, &m);
    if (rc != NLP_OK)
        return rc;
    unsigned char *buf = (unsigned char *)1;
    size_t n = 1;
    rc = nlp_model_to_buffer(m, &buf, &n);
    if (rc != NLP_OK)
        CHECK(buf == NULL && n == 0);
    else
        CHECK(n == f->nsaved && memcmp(buf, f->saved, n) == 0);
    nlp_free(buf);
    nlp_model_free(m);
    return rc;
}

/* Loads the file and reads everything back the way the tools do. */
static int read_back(model_fx *f, nlp_model *m)
{
    nlp_error e;
    long hidden;
    float a[6];
    int rc;
    TRY_RC(nlp_model_meta_long(m, "hidden", &hidden, &e));
    CHECK(hidden == 9);
    TRY_RC(nlp_model_read_tensor(m, "a", a, 2, (size_t[]){ 2, 3 }, &e));
    CHECK(memcmp(a, f->a, sizeof a) == 0);
    nlp_params *q;
    if ((rc = nlp_params_new(&q)) != NLP_OK) {
        CHECK(q == NULL);
        return rc;
    }
    for (int i = 0; i < f->p->nviews; i++) {
        const nlp_params_view *v = &f->p->views[i];
        int id = nlp_params_add(q, v->name, v->ndim, v->shape);
        if (id < 0) {
            nlp_params_free(q);
            return id;
        }
    }
    rc = nlp_model_check_params(m, q, &e);
    if (rc == NLP_OK)
        rc = nlp_params_alloc(q);
    if (rc == NLP_OK)
        rc = nlp_model_read_params(m, q, &e);
    nlp_params_free(q);
    if (rc != NLP_OK)
        return rc;
    nlp_optim_config c;
    nlp_optim_config_default(&c, NLP_OPTIM_ADAM);
    nlp_optim *o;
    if ((rc = nlp_optim_new(&o, f->p->n, &c)) != NLP_OK) {
        CHECK(o == NULL);
        return rc;
    }
    rc = nlp_model_read_optim(m, o, &e);
    nlp_optim_free(o);
    if (rc != NLP_OK)
        return rc;
    size_t bn;
    CHECK(nlp_model_blob(m, "vocab", &bn) != NULL && bn == sizeof f->blob);
out:
    return rc;
}

static int op_model_load(void *arg)
{
    model_fx *f = arg;
    nlp_model *m = (nlp_model *)1;
    nlp_error e;
    int rc = nlp_model_load(&m, f->path, "faults", &e);
    if (rc != NLP_OK) {
        CHECK(m == NULL);
        CHECK(strcmp(e.file, f->path) == 0);
        return rc;
    }
    rc = read_back(f, m);
    nlp_model_free(m);
    return rc;
}

static int op_model_load_buffer(void *arg)
{
    model_fx *f = arg;
    nlp_model *m = (nlp_model *)1;
    nlp_error e;
    int rc = nlp_model_load_buffer(&m, f->saved, f->nsaved, "buf.model", NULL, &e);
    if (rc != NLP_OK) {
        CHECK(m == NULL);
        return rc;
    }
    /* A loaded model is saved again (to memory) and edited. */
    unsigned char *buf;
    size_t n;
    rc = nlp_model_to_buffer(m, &buf, &n);
    if (rc == NLP_OK) {
        CHECK(n == f->nsaved && memcmp(buf, f->saved, n) == 0);
        nlp_free(buf);
        rc = nlp_model_set_meta(m, "new.key", "v");
    }
    if (rc == NLP_OK)
        rc = nlp_model_add_blob(m, "new.blob", "x", 1);
    if (rc == NLP_OK)
        rc = read_back(f, m);
    nlp_model_free(m);
    return rc;
}

static void model_fx_init(model_fx *f, const char *dir)
{
    memset(f, 0, sizeof *f);
    path_in(f->dir, sizeof f->dir, dir);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    snprintf(f->path, sizeof f->path, "%s/faults.model", f->dir);
    for (int i = 0; i < 6; i++)
        f->a[i] = (float)i * 0.5f - 1.0f;
    for (int i = 0; i < 5; i++)
        f->b[i] = (float)i;
    for (size_t i = 0; i < sizeof f->blob; i++)
        f->blob[i] = (unsigned char)(i * 7);
    assert_int_equal(nlp_params_new(&f->p), NLP_OK);
    assert_true(nlp_params_add(f->p, "embed.weight", 2, (int[]){ 4, 3 }) >= 0);
    assert_true(nlp_params_add(f->p, "out.bias", 1, (int[]){ 4 }) >= 0);
    assert_int_equal(nlp_params_alloc(f->p), NLP_OK);
    for (size_t i = 0; i < f->p->n; i++)
        f->p->data[i] = (float)i / 8.0f;
    nlp_optim_config c;
    nlp_optim_config_default(&c, NLP_OPTIM_ADAM);
    assert_int_equal(nlp_optim_new(&f->o, f->p->n, &c), NLP_OK);
    nlp_optim_step(f->o, f->p->data, f->p->data);
}

static void model_fx_free(model_fx *f)
{
    nlp_params_free(f->p);
    nlp_optim_free(f->o);
    free(f->saved);
    unlink(f->path);
    assert_int_equal(rmdir(f->dir), 0);   /* nothing else was left in it */
}

static void test_model_faults(void **state)
{
    (void)state;
    model_fx f;
    model_fx_init(&f, "model");
    /* The first save has no previous file to keep. */
    f.fresh = 1;
    points_total += fault_loop("nlp_model_save (new file)", op_model_save, &f);
    f.fresh = 0;
    assert_int_equal(op_model_save(&f), NLP_OK);
    f.saved = slurp(f.path, &f.nsaved);
    assert_non_null(f.saved);
    points_total += fault_loop("nlp_model_save (replacing)", op_model_save, &f);
    points_total += fault_loop("nlp_model_to_buffer", op_model_to_buffer, &f);
    points_total += fault_loop("nlp_model_load + reads", op_model_load, &f);
    points_total += fault_loop("nlp_model_load_buffer + reads", op_model_load_buffer, &f);
    model_fx_free(&f);
}

/* ---- vocabulary --------------------------------------------------------- */

typedef struct vocab_fx {
    char path[512];
} vocab_fx;

/* Builds a vocabulary of 3000 words (so the table, entries and pool all
** grow), pins, sorts, prunes, truncates, and round-trips it through a blob
** and a file. */
static int op_vocab(void *arg)
{
    vocab_fx *f = arg;
    nlp_error e;
    nlp_vocab *v, *w = NULL, *b = NULL;
    unsigned char *blob = NULL;
    int rc = nlp_vocab_new(&v);
    if (rc != NLP_OK) {
        CHECK(v == NULL);
        return rc;
    }
    char word[64];
    if (nlp_vocab_add_count(v, "</s>", 4, 0) < 0 || nlp_vocab_add_count(v, "<unk>", 5, 0) < 0) {
        rc = NLP_ENOMEM;
        goto out;
    }
    nlp_vocab_pin(v);
    for (int i = 0; i < 3000; i++) {
        int j = i % 2500;   /* 2500 words, 500 of them twice */
        int len = snprintf(word, sizeof word, "word-%d-%s", j, j % 3 ? "x" : "a longer tail");
        long id = nlp_vocab_add(v, word, (size_t)len);
        if (id < 0) {
            rc = (int)id;
            goto out;
        }
    }
    CHECK(nlp_vocab_size(v) == 2502);
    TRY_RC(nlp_vocab_sort(v));
    long k = nlp_vocab_prune(v, 2);
    if (k < 0) {
        rc = (int)k;
        goto out;
    }
    k = nlp_vocab_truncate(v, 400);
    if (k < 0) {
        rc = (int)k;
        goto out;
    }
    size_t n;
    TRY_RC(nlp_vocab_to_blob(v, &blob, &n));
    b = (nlp_vocab *)1;
    rc = nlp_vocab_from_blob(blob, n, &b, &e);
    if (rc != NLP_OK) {
        CHECK(b == NULL);
        goto out;
    }
    CHECK(nlp_vocab_size(b) == nlp_vocab_size(v));
    TRY_RC(nlp_vocab_save_file(v, f->path, &e));
    TRY_RC(nlp_vocab_new(&w));
    TRY_RC(nlp_vocab_load_file(w, f->path, &e));
    CHECK(nlp_vocab_size(w) == nlp_vocab_size(v));
out:
    nlp_free(blob);
    nlp_vocab_free(v);
    nlp_vocab_free(w);
    nlp_vocab_free(b);
    return rc;
}

static void test_vocab_faults(void **state)
{
    (void)state;
    vocab_fx f;
    path_in(f.path, sizeof f.path, "faults.vocab");
    points_total += fault_loop("nlp_vocab build/sort/prune/blob/save/load", op_vocab, &f);
    unlink(f.path);
}

/* ---- tokenizer (and utf8 underneath) ----------------------------------- */

typedef struct tok_fx {
    nlp_tokenize_config cfg;
    char *text;
    size_t len;
} tok_fx;

static int count_token(const char *tok, size_t len, int flags, void *arg)
{
    (void)tok, (void)len, (void)flags;
    ++*(long *)arg;
    return 0;
}

static int op_tokenize(void *arg)
{
    tok_fx *f = arg;
    nlp_tokenizer *t = (nlp_tokenizer *)1;
    nlp_error e;
    int rc = nlp_tokenize_new(&t, &f->cfg, &e);
    if (rc != NLP_OK) {
        CHECK(t == NULL);
        return rc;
    }
    long n = 0;
    rc = nlp_tokenize_each(t, f->text, f->len, count_token, &n, &e);
    /* The tokenizer stays usable after a failure: a second text works
    ** once memory is back (the schedule is not sticky) or fails cleanly. */
    if (rc == NLP_OK) {
        CHECK(n > 1000);
        nlp_tokens b;
        rc = nlp_tokenize_begin(t, "It's e-mail.", 12, &e);
        while (rc == NLP_OK && (rc = nlp_tokenize_next(t, &b)) == 1)
            rc = NLP_OK;
    }
    nlp_tokenize_free(t);
    return rc;
}

static void test_tokenize_faults(void **state)
{
    (void)state;
    /* Text that takes every path that allocates: invalid UTF-8 (repair),
    ** decomposed accents (normalisation), capitals and non-ASCII (case
    ** folding), URLs and e-mail addresses (spans), clitics and elisions
    ** (splits), and more than a thousand tokens (the buffers grow). */
    static const char piece[] =
        "Dr. Smith's e-mail: a.b@c.org, see http://x.org/y_(z) and www.ex.com. "
        "Cafe\xCC\x81 \xC3\x89T\xC3\x89 l'amor dell\xE2\x80\x99" "anima don't \xFF bad \xC3 "
        "\xEF\xBC\xA1 ... :-) 12:30 303-832-8160 U.S. etc.\n";
    tok_fx f;
    size_t pl = sizeof piece - 1;
    f.len = pl * 40;
    f.text = malloc(f.len);
    assert_non_null(f.text);
    for (int i = 0; i < 40; i++)
        memcpy(f.text + (size_t)i * pl, piece, pl);
    static const struct { int unit, norm, lower; const char *lang; } cfgs[] = {
        { NLP_TOKENIZE_WORD, NLP_TOKENIZE_NFC, 1, "en" },
        { NLP_TOKENIZE_SENTENCE, NLP_TOKENIZE_NFKC, 0, "it" },
        { NLP_TOKENIZE_CHAR, NLP_TOKENIZE_NFC, 1, NULL },
    };
    for (size_t c = 0; c < sizeof cfgs / sizeof *cfgs; c++) {
        nlp_tokenize_config_default(&f.cfg);
        f.cfg.unit = cfgs[c].unit;
        f.cfg.normalize = cfgs[c].norm;
        f.cfg.lower = cfgs[c].lower;
        f.cfg.lang = cfgs[c].lang;
        char name[64];
        snprintf(name, sizeof name, "nlp_tokenize (config %zu)", c);
        points_total += fault_loop(name, op_tokenize, &f);
    }
    free(f.text);
}

/* ---- layers: params, rnn, attention, optimisers ------------------------ */

static int op_params(void *arg)
{
    (void)arg;
    nlp_params *p;
    int rc = nlp_params_new(&p);
    if (rc != NLP_OK) {
        CHECK(p == NULL);
        return rc;
    }
    char name[32];
    for (int i = 0; i < 40 && rc == NLP_OK; i++) {   /* past the first view table */
        snprintf(name, sizeof name, "layer%d.weight", i);
        int id = nlp_params_add(p, name, 2, (int[]){ 3, i + 1 });
        if (id < 0)
            rc = id;
    }
    if (rc == NLP_OK)
        rc = nlp_params_alloc(p);
    if (rc == NLP_OK)
        CHECK(p->data && p->grad);
    else
        CHECK(p->data == NULL);
    nlp_params_free(p);
    return rc;
}

typedef struct rnn_fx {
    nlp_rnn_cell cell;
    int bidirectional;
} rnn_fx;

static int op_rnn(void *arg)
{
    rnn_fx *f = arg;
    nlp_params *p;
    int rc = nlp_params_new(&p);
    if (rc != NLP_OK) {
        CHECK(p == NULL);
        return rc;
    }
    nlp_rnn_config c;
    nlp_rnn_config_default(&c);
    c.cell = f->cell;
    c.input = 3;
    c.hidden = 4;
    c.layers = 2;
    c.bidirectional = f->bidirectional;
    c.dropout = 0.25f;
    c.max_T = 5;
    c.max_B = 2;
    nlp_rnn *r = (nlp_rnn *)1;
    rc = nlp_rnn_new(&r, &c, p, "rnn");
    if (rc != NLP_OK)
        CHECK(r == NULL);
    if (rc == NLP_OK)
        rc = nlp_params_alloc(p);
    if (rc == NLP_OK)
        rc = nlp_rnn_resize(r, 7, 3);
    if (rc == NLP_OK) {
        nlp_rng g;
        nlp_rng_seed(&g, 1);
        nlp_rnn_reset(r, &g);
    }
    nlp_rnn_free(r);
    nlp_params_free(p);
    return rc;
}

typedef struct attn_fx {
    nlp_attn_kind kind;
} attn_fx;

static int op_attn(void *arg)
{
    attn_fx *f = arg;
    nlp_params *p;
    int rc = nlp_params_new(&p);
    if (rc != NLP_OK) {
        CHECK(p == NULL);
        return rc;
    }
    int hk = f->kind == NLP_ATTN_DOT ? 4 : 5;
    nlp_attn *a = (nlp_attn *)1;
    rc = nlp_attn_new(&a, f->kind, 4, hk, 6, 7, 3, p, "attn");
    if (rc != NLP_OK)
        CHECK(a == NULL);
    /* dot attention has no parameters: nothing to allocate for p */
    if (rc == NLP_OK && p->nviews > 0)
        rc = nlp_params_alloc(p);
    if (rc == NLP_OK && p->data) {
        nlp_rng g;
        nlp_rng_seed(&g, 1);
        nlp_attn_reset(a, &g);
    }
    nlp_attn_free(a);
    nlp_params_free(p);
    return rc;
}

typedef struct optim_fx {
    nlp_optim_kind kind;
    double momentum;
} optim_fx;

static int op_optim(void *arg)
{
    optim_fx *f = arg;
    nlp_optim_config c;
    nlp_optim_config_default(&c, f->kind);
    c.momentum = f->momentum;
    nlp_optim *o;
    int rc = nlp_optim_new(&o, 100, &c);
    if (rc != NLP_OK)
        CHECK(o == NULL);
    nlp_optim_free(o);
    return rc;
}

static void test_layer_faults(void **state)
{
    (void)state;
    char name[96];
    points_total += fault_loop("nlp_params_add/alloc", op_params, NULL);
    static const nlp_rnn_cell cells[] = { NLP_RNN_TANH, NLP_RNN_LSTM, NLP_RNN_GRU };
    for (int c = 0; c < 3; c++)
        for (int bi = 0; bi <= 1; bi++) {
            rnn_fx f = { cells[c], bi };
            snprintf(name, sizeof name, "nlp_rnn_new (%s, %s)", nlp_rnn_cell_name(cells[c]),
                     bi ? "bidirectional" : "one direction");
            points_total += fault_loop(name, op_rnn, &f);
        }
    static const nlp_attn_kind kinds[] = { NLP_ATTN_DOT, NLP_ATTN_GENERAL, NLP_ATTN_ADDITIVE };
    for (int k = 0; k < 3; k++) {
        attn_fx f = { kinds[k] };
        snprintf(name, sizeof name, "nlp_attn_new (%s)", nlp_attn_kind_name(kinds[k]));
        points_total += fault_loop(name, op_attn, &f);
    }
    static const optim_fx optims[] = {
        { NLP_OPTIM_SGD, 0.9 }, { NLP_OPTIM_ADAM, 0 }, { NLP_OPTIM_RMSPROP, 0.5 },
    };
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "nlp_optim_new (%s)", nlp_optim_kind_name(optims[k].kind));
        points_total += fault_loop(name, op_optim, (void *)&optims[k]);
    }
}

/* ---- line reader ------------------------------------------------------- */

typedef struct lines_fx {
    char path[512];
} lines_fx;

static int op_lines(void *arg)
{
    lines_fx *f = arg;
    FILE *in = fopen(f->path, "rb");
    assert_non_null(in);
    int rc = NLP_OK;
    nlp_lines *r;
    if ((rc = nlp_lines_new(&r, in, NLP_LINES_STRIP_CR)) != NLP_OK) {
        CHECK(r == NULL);
        fclose(in);
        return rc;
    }
    char *line;
    size_t len;
    long lines = 0;
    while ((rc = nlp_lines_next(r, &line, &len)) == 1)
        lines++;
    if (rc == 0) {
        CHECK(lines == 6);
        /* Again in blocks. */
        nlp_lines_free(r);
        rewind(in);
        if ((rc = nlp_lines_new(&r, in, 0)) != NLP_OK) {
            CHECK(r == NULL);
            fclose(in);
            return rc;
        }
        long nl, total = 0;
        while ((rc = nlp_lines_next_block(r, &line, &len, &nl)) == 1)
            total += nl;
        if (rc == 0)
            CHECK(total == 6);
    }
    nlp_lines_free(r);
    fclose(in);
    return rc;
}

static void test_lines_faults(void **state)
{
    (void)state;
    lines_fx f;
    path_in(f.path, sizeof f.path, "faults.txt");
    /* Short lines and two long ones (the buffer grows twice). */
    FILE *out = fopen(f.path, "wb");
    assert_non_null(out);
    fputs("one\r\ntwo\n", out);
    for (int i = 0; i < 200000; i++)
        fputc('a' + i % 26, out);
    fputs("\nthree\n", out);
    for (int i = 0; i < 700000; i++)
        fputc('b', out);
    fputs("\nlast without newline", out);
    assert_int_equal(fclose(out), 0);
    points_total += fault_loop("nlp_lines_next/next_block", op_lines, &f);
    unlink(f.path);
}

/* ---- whole models: charlm, word2vec ----------------------------------- */

static int op_charlm_new(void *arg)
{
    (void)arg;
    static const int32_t text[] = { 'a', 'b', 'c', 'a', 'b', 0xE9, 'd', 'a', '\n', 0x4E2D };
    nlp_vocab *v = (nlp_vocab *)1;
    int rc = nlp_charlm_vocab_build(&v, text, sizeof text / sizeof *text, 1);
    if (rc != NLP_OK) {
        CHECK(v == NULL);
        return rc;
    }
    nlp_charlm_config c;
    nlp_charlm_config_default(&c);
    c.layers = 2;
    c.hidden = 8;
    c.embed = 4;
    nlp_charlm *m = (nlp_charlm *)1;
    rc = nlp_charlm_new(&m, &c, v, 6, 2, 1);   /* takes v over, even on failure */
    if (rc != NLP_OK) {
        CHECK(m == NULL);
        return rc;
    }
    nlp_charlm_free(m);
    return NLP_OK;
}

static char w2v_corpus[600];   /* a small corpus file for nlp_w2v_count_fd */

/* A word2vec vocabulary counted from w2v_corpus ("</s>" pinned, 20
** words); NLP_ENOMEM or NLP_OK. */
static int w2v_vocab(nlp_vocab **out)
{
    nlp_error e;
    *out = NULL;
    int fd = open(w2v_corpus, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    nlp_vocab *v;
    int rc = nlp_vocab_new(&v);
    if (rc != NLP_OK) {
        CHECK(v == NULL);
        close(fd);
        return rc;
    }
    rc = nlp_w2v_vocab_init(v);
    if (rc == NLP_OK)
        rc = nlp_w2v_count_fd(v, fd, 0, w2v_corpus, &e);
    close(fd);
    if (rc == NLP_OK)
        rc = nlp_w2v_vocab_finish(v, 1, &e);
    if (rc != NLP_OK) {
        nlp_vocab_free(v);
        return rc;
    }
    *out = v;
    return NLP_OK;
}

static int op_w2v_vocab(void *arg)
{
    (void)arg;
    nlp_vocab *v;
    int rc = w2v_vocab(&v);
    if (rc == NLP_OK)
        CHECK(nlp_vocab_size(v) == 21);
    nlp_vocab_free(v);
    return rc;
}

typedef struct w2v_fx {
    nlp_vocab *v;
    int hs;
} w2v_fx;

static int op_w2v_new(void *arg)
{
    w2v_fx *f = arg;
    nlp_error e;
    nlp_w2v_config c;
    nlp_w2v_config_default(&c);
    c.size = 8;
    c.hs = f->hs;
    c.negative = f->hs ? 0 : 3;
    nlp_w2v *m = (nlp_w2v *)1;
    int rc = nlp_w2v_new(&m, &c, f->v, &e);
    if (rc != NLP_OK)
        CHECK(m == NULL);
    else
        nlp_w2v_free(m);
    return rc;
}

static void test_model_constructors_faults(void **state)
{
    (void)state;
    points_total += fault_loop("nlp_charlm_vocab_build + nlp_charlm_new", op_charlm_new, NULL);
    path_in(w2v_corpus, sizeof w2v_corpus, "w2v.txt");
    FILE *c = fopen(w2v_corpus, "w");
    assert_non_null(c);
    for (int i = 0; i < 3000; i++)   /* 20 words, more than one read block */
        fprintf(c, "w%d%c", i % 20, i % 13 == 12 ? '\n' : ' ');
    assert_int_equal(fclose(c), 0);
    points_total += fault_loop("nlp_w2v_vocab_init/count_fd/finish", op_w2v_vocab, NULL);
    w2v_fx f = { NULL, 1 };
    assert_int_equal(w2v_vocab(&f.v), NLP_OK);
    points_total += fault_loop("nlp_w2v_new (hierarchical softmax)", op_w2v_new, &f);
    f.hs = 0;
    points_total += fault_loop_modes("nlp_w2v_new (negative sampling)", op_w2v_new, &f,
                                     FAIL_BOTH);
    nlp_vocab_free(f.v);
    unlink(w2v_corpus);
}

/* ---- I/O faults --------------------------------------------------------- */

/* Saves f's model to path and returns the code, with e filled. */
static int save_fx(model_fx *f, const char *path, nlp_error *e)
{
    nlp_model *m;
    assert_int_equal(build_model(f, &m), NLP_OK);
    int rc = nlp_model_save(m, path, e);
    nlp_model_free(m);
    return rc;
}

static void test_io_faults(void **state)
{
    (void)state;
    model_fx f;
    model_fx_init(&f, "io");
    nlp_error e;
    char path[700];

    /* The previous model every failed save must leave as it is. */
    const unsigned char old[] = "the previous model, whatever it holds";
    FILE *o = fopen(f.path, "wb");
    assert_non_null(o);
    assert_int_equal(fwrite(old, 1, sizeof old, o), sizeof old);
    assert_int_equal(fclose(o), 0);

    /* fsync fails (as NFS and full thin-provisioned disks can). */
    fsync_calls = 0;
    fail_fsync = EIO;
    assert_int_equal(save_fx(&f, f.path, &e), NLP_EIO);
    fail_fsync = 0;
    assert_true(fsync_calls > 0);   /* the shim is what the library called */
    assert_string_equal(e.file, f.path);
    assert_non_null(strstr(e.text, "cannot sync"));
    assert_true(file_is(f.path, old, sizeof old));
    assert_int_equal(dir_entries(f.dir), 1);

    /* rename fails (e.g. the quota is exhausted on a copy-on-write fs). */
    rename_calls = 0;
    fail_rename = ENOSPC;
    assert_int_equal(save_fx(&f, f.path, &e), NLP_EIO);
    fail_rename = 0;
    assert_true(rename_calls > 0);
    assert_non_null(strstr(e.text, "No space left on device"));
    assert_true(file_is(f.path, old, sizeof old));
    assert_int_equal(dir_entries(f.dir), 1);

    /* The disk fills half way through the write (a file size limit makes
    ** write(2) fail like ENOSPC does, without needing a full disk). */
    struct rlimit saved, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = saved;
    lim.rlim_cur = 512;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = save_fx(&f, f.path, &e);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, oldsig);
    assert_int_equal(rc, NLP_EIO);
    assert_non_null(strstr(e.text, "write error: File too large"));
    assert_true(file_is(f.path, old, sizeof old));
    assert_int_equal(dir_entries(f.dir), 1);

    /* No such directory; a directory in the way (rename onto it fails
    ** even for root); a read-only directory (binds only non-root). */
    snprintf(path, sizeof path, "%s/no/such/dir/x.model", tmpdir);
    assert_int_equal(save_fx(&f, path, &e), NLP_EIO);
    assert_string_equal(e.file, path);
    char sub[620];
    snprintf(sub, sizeof sub, "%s/sub", f.dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/inside", sub);
    o = fopen(path, "wb");
    assert_non_null(o);
    fclose(o);
    assert_int_equal(save_fx(&f, sub, &e), NLP_EIO);
    assert_int_equal(dir_entries(sub), 1);
    assert_int_equal(dir_entries(f.dir), 2);
    unlink(path);
    if (geteuid() != 0) {
        assert_int_equal(chmod(sub, 0500), 0);
        snprintf(path, sizeof path, "%s/x.model", sub);
        assert_int_equal(save_fx(&f, path, &e), NLP_EIO);
        assert_non_null(strstr(e.text, "Permission denied"));
        assert_int_equal(chmod(sub, 0700), 0);
    }
    assert_int_equal(dir_entries(sub), 0);
    rmdir(sub);

    /* After all that, a save works and replaces the old file. */
    assert_int_equal(save_fx(&f, f.path, &e), NLP_OK);
    nlp_model *l;
    assert_int_equal(nlp_model_load(&l, f.path, "faults", &e), NLP_OK);
    nlp_model_free(l);
    assert_int_equal(dir_entries(f.dir), 1);
    model_fx_free(&f);

    /* A vocabulary written to /dev/full: the write error is reported. */
    nlp_vocab *v;
    assert_int_equal(nlp_vocab_new(&v), NLP_OK);
    char word[32];
    for (int i = 0; i < 5000; i++)   /* more than one stdio buffer */
        assert_true(nlp_vocab_add(v, word, (size_t)snprintf(word, sizeof word, "w%d", i)) >= 0);
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        assert_int_equal(nlp_vocab_save(v, full, "/dev/full", &e), NLP_EIO);
        assert_string_equal(e.file, "/dev/full");
        fclose(full);
        assert_int_equal(nlp_vocab_save_file(v, "/dev/full", &e), NLP_EIO);
        assert_string_equal(e.file, "/dev/full");
    }
    nlp_vocab_free(v);
}

static void test_report(void **state)
{
    (void)state;
    /* The figure for the closing note. */
    fprintf(stderr, "test_faults: %ld allocation failure points covered\n", points_total);
    assert_true(points_total > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_faults),
        cmocka_unit_test(test_vocab_faults),
        cmocka_unit_test(test_tokenize_faults),
        cmocka_unit_test(test_layer_faults),
        cmocka_unit_test(test_lines_faults),
        cmocka_unit_test(test_model_constructors_faults),
        cmocka_unit_test(test_io_faults),
        cmocka_unit_test(test_report),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
