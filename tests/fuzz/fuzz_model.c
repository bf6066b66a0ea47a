/*
** fuzz_model: the model file loader (nlp/model.h), then each kind's own
** interpretation of a loaded file (today "charlm": nlp_charlm_load and the
** checkpoint readers).
**
** Input layout:
**   byte 0   bit 0: before loading, rewrite the declared size and the CRC
**            to match the bytes (else almost every mutation would stop at
**            the checksum); bit 1: expect kind "charlm" in
**            nlp_model_load_buffer (else any); bit 2: also load the bytes
**            through a path with nlp_model_load, which must agree
**   byte 1   workspace of the kind loaders: bits 0-2 max_T - 1, bits 3-4
**            max_B - 1
**   rest     the model file
**
** Checks: a failure is a documented code with a message naming the file; a
** loaded model answers every accessor consistently (metadata, tensors and
** shapes, blobs), saves to bytes that load again to the same contents; a
** "vocab" blob parses or fails cleanly; a loaded charlm model scores and
** steps; a charlm checkpoint restores into a trainer and trains a step.
*/
#include "fuzz.h"

#include <math.h>

#define MODEL_NAME "fuzz.model"

/* The longest training text a checkpoint may name for the harness to
** rebuild it (see charlm_checkpoint). */
#define MAX_TRAIN_IDS 4096

typedef struct kind_loader {
    const char *kind;
    void (*load)(const uint8_t *buf, size_t n, int max_T, int max_B);
} kind_loader;

static void charlm(const uint8_t *buf, size_t n, int max_T, int max_B);

/* Every kind of model file a tool writes, with its loader. */
static const kind_loader kinds[] = {
    { NLP_CHARLM_KIND, charlm },
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static void put_le(uint8_t *p, uint64_t x, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

/* ---- the generic model file ---------------------------------------------- */

/* Reads every part of m through the accessors and checks they agree. */
static void walk(const nlp_model *m)
{
    nlp_error e;
    const char *kind = nlp_model_kind(m);
    FUZZ_CHECK(kind != NULL && kind[0] != '\0');

    size_t nmeta = nlp_model_meta_count(m);
    for (size_t i = 0; i < nmeta; i++) {
        const char *key = NULL, *value = NULL;
        FUZZ_CHECK(nlp_model_meta_at(m, i, &key, &value) == NLP_OK);
        FUZZ_CHECK(key != NULL && value != NULL && key[0] != '\0');
        /* Keys are unique, so a lookup finds this entry. */
        FUZZ_CHECK(nlp_model_meta(m, key) == value);
        long l;
        double d;
        int rc = nlp_model_meta_long(m, key, &l, &e);
        FUZZ_CHECK(rc == NLP_OK || rc == NLP_EFORMAT);
        rc = nlp_model_meta_double(m, key, &d, &e);
        FUZZ_CHECK(rc == NLP_OK || rc == NLP_EFORMAT);
        FUZZ_CHECK(rc != NLP_OK || isfinite(d));
    }
    const char *key, *value;
    FUZZ_CHECK(nlp_model_meta_at(m, nmeta, &key, &value) == NLP_EINVAL);

    size_t nt = nlp_model_tensor_count(m);
    for (size_t i = 0; i < nt; i++) {
        const char *name = nlp_model_tensor_name(m, i);
        FUZZ_CHECK(name != NULL);
        int ndim = 0;
        const size_t *shape = NULL;
        const float *x = nlp_model_tensor(m, name, &ndim, &shape);
        FUZZ_CHECK(x != NULL && shape != NULL);
        FUZZ_CHECK(ndim >= 1 && ndim <= NLP_MODEL_MAX_DIMS);
        size_t count = 1;
        for (int k = 0; k < ndim; k++) {
            FUZZ_CHECK(shape[k] > 0);
            FUZZ_CHECK(count <= SIZE_MAX / sizeof(float) / shape[k]);
            count *= shape[k];
        }
        float *copy = malloc(count * sizeof(float));
        FUZZ_CHECK(copy != NULL);
        FUZZ_CHECK(nlp_model_read_tensor(m, name, copy, ndim, shape, &e) == NLP_OK);
        FUZZ_CHECK(memcmp(copy, x, count * sizeof(float)) == 0);
        /* One more dimension never matches. */
        if (ndim < NLP_MODEL_MAX_DIMS) {
            size_t wrong[NLP_MODEL_MAX_DIMS];
            memcpy(wrong, shape, (size_t)ndim * sizeof *wrong);
            wrong[ndim] = 1;
            int rc = nlp_model_read_tensor(m, name, copy, ndim + 1, wrong, &e);
            FUZZ_CHECK(rc == NLP_EFORMAT);
            fuzz_check_error(rc, &e);
        }
        free(copy);
    }
    FUZZ_CHECK(nlp_model_tensor_name(m, nt) == NULL);

    size_t nblob;
    const void *blob = nlp_model_blob(m, "vocab", &nblob);
    if (blob) {
        nlp_vocab *v = NULL;
        int rc = nlp_vocab_from_blob(blob, nblob, &v, &e);
        if (rc == NLP_OK) {
            long size = nlp_vocab_size(v);
            for (long i = 0; i < size; i++)
                FUZZ_CHECK(nlp_vocab_find(v, nlp_vocab_word(v, i), nlp_vocab_word_len(v, i)) == i);
            nlp_vocab_free(v);
        } else {
            FUZZ_CHECK(v == NULL);
            fuzz_check_error(rc, &e);
        }
    }
}

/* Saves m to bytes and loads them again: the same contents come back. */
static void round_trip(nlp_model *m)
{
    unsigned char *buf = NULL;
    size_t n = 0;
    FUZZ_CHECK(nlp_model_to_buffer(m, &buf, &n) == NLP_OK);
    nlp_model *r = NULL;
    nlp_error e;
    int rc = nlp_model_load_buffer(&r, buf, n, MODEL_NAME, NULL, &e);
    FUZZ_CHECK(rc == NLP_OK);
    FUZZ_CHECK(strcmp(nlp_model_kind(r), nlp_model_kind(m)) == 0);
    FUZZ_CHECK(nlp_model_meta_count(r) == nlp_model_meta_count(m));
    for (size_t i = 0; i < nlp_model_meta_count(m); i++) {
        const char *k1, *v1, *k2, *v2;
        nlp_model_meta_at(m, i, &k1, &v1);
        nlp_model_meta_at(r, i, &k2, &v2);
        FUZZ_CHECK(strcmp(k1, k2) == 0 && strcmp(v1, v2) == 0);
    }
    FUZZ_CHECK(nlp_model_tensor_count(r) == nlp_model_tensor_count(m));
    for (size_t i = 0; i < nlp_model_tensor_count(m); i++) {
        const char *name = nlp_model_tensor_name(m, i);
        FUZZ_CHECK(strcmp(name, nlp_model_tensor_name(r, i)) == 0);
        int nd1, nd2;
        const size_t *s1, *s2;
        const float *x1 = nlp_model_tensor(m, name, &nd1, &s1);
        const float *x2 = nlp_model_tensor(r, name, &nd2, &s2);
        FUZZ_CHECK(nd1 == nd2 && memcmp(s1, s2, (size_t)nd1 * sizeof *s1) == 0);
        size_t count = 1;
        for (int k = 0; k < nd1; k++)
            count *= s1[k];
        FUZZ_CHECK(memcmp(x1, x2, count * sizeof(float)) == 0);
    }
    size_t n1, n2;
    const void *b1 = nlp_model_blob(m, "vocab", &n1), *b2 = nlp_model_blob(r, "vocab", &n2);
    FUZZ_CHECK((b1 == NULL) == (b2 == NULL));
    FUZZ_CHECK(!b1 || (n1 == n2 && memcmp(b1, b2, n1) == 0));
    nlp_model_free(r);
    free(buf);
}

/* ---- kind "charlm" ---------------------------------------------------------- */

/* The training text of the charlm checkpoints in the seed corpus:
** tests/fuzz/make-seeds.c trains them on ids[i] = i % V. */
static int32_t *train_ids(size_t n, int V)
{
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    FUZZ_CHECK(ids != NULL);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)(i % (size_t)V);
    return ids;
}

/* A checkpoint: reads its training configuration, rebuilds the training
** text it names (when short), restores a trainer through its harness task
** and runs one step. */
static void charlm_checkpoint(nlp_charlm *m, const nlp_model *file)
{
    nlp_error e;
    nlp_charlm_train_config c;
    nlp_charlm_train_config_default(&c);
    int rc = nlp_charlm_train_config_read(&c, file, &e);
    if (rc != NLP_OK) {
        fuzz_check_error(rc, &e);
        return;
    }
    const char *s = nlp_model_meta(file, "charlm.data_n");
    char *end;
    unsigned long long n = s ? strtoull(s, &end, 10) : 0;
    if (!s || *end != '\0' || n > MAX_TRAIN_IDS)
        n = MAX_TRAIN_IDS;
    if ((size_t)c.batch * ((size_t)c.seq_len + 1) > n)
        return;
    int32_t *ids = train_ids((size_t)n, m->V);
    nlp_charlm_trainer *t = NULL;
    rc = nlp_charlm_trainer_new(&t, m, &c, ids, (size_t)n, NULL, 0, &e);
    if (rc == NLP_OK) {
        const nlp_train_task *task = nlp_charlm_trainer_task(t);
        rc = task->load_state(task->ctx, file, &e);
        if (rc == NLP_OK) {
            double loss, count;
            nlp_params_zero_grad(m->params);
            rc = task->step(task->ctx, &loss, &count, &e);
            FUZZ_CHECK(rc == 0 || rc == 1 || rc == NLP_ERANGE);
        } else {
            FUZZ_CHECK(rc == NLP_EFORMAT);
            fuzz_check_error(rc, &e);
        }
        nlp_charlm_trainer_free(t);
    } else {
        FUZZ_CHECK(t == NULL);
        fuzz_check_error(rc, &e);
    }
    free(ids);
}

static void charlm(const uint8_t *buf, size_t n, int max_T, int max_B)
{
    const char *path = fuzz_path(buf, n);
    nlp_charlm *m = NULL;
    nlp_model *file = NULL;
    nlp_error e;
    nlp_error_clear(&e);
    int rc = nlp_charlm_load(&m, path, max_T, max_B, &file, &e);
    if (rc != NLP_OK) {
        FUZZ_CHECK(m == NULL && file == NULL);
        fuzz_check_error(rc, &e);
        FUZZ_CHECK(strcmp(e.file, path) == 0);
        return;
    }
    FUZZ_CHECK(m->V >= 2 && m->V == nlp_vocab_size(m->vocab));
    FUZZ_CHECK(nlp_charlm_param_count(m) > 0);
    for (int id = 0; id < m->V; id++) {
        size_t len;
        const char *s = nlp_charlm_utf8(m, id, &len);
        FUZZ_CHECK(s != NULL && (id == NLP_CHARLM_UNK_ID ? len == 0 : len > 0));
    }

    /* Score a short text of every id, batched, and step through it. */
    size_t nids = (size_t)m->V + 3;
    int32_t *ids = train_ids(nids, m->V);
    nlp_charlm_score sc;
    FUZZ_CHECK(nlp_charlm_eval(m, ids, nids, &sc) == NLP_OK);
    FUZZ_CHECK(sc.count == nids - 1);
    nlp_charlm_state st;
    FUZZ_CHECK(nlp_charlm_state_init(&st, m) == NLP_OK);
    for (size_t i = 0; i < nids; i++)
        FUZZ_CHECK(nlp_charlm_step(m, &st, ids[i]) == NLP_OK);
    FUZZ_CHECK(nlp_charlm_step(m, &st, m->V) == NLP_ERANGE);
    FUZZ_CHECK(nlp_charlm_step(m, &st, -1) == NLP_ERANGE);
    nlp_charlm_state_free(&st);
    free(ids);

    charlm_checkpoint(m, file);
    nlp_model_free(file);
    nlp_charlm_free(m);
}

/* ---- the target ----------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = { data, size };
    uint8_t flags = fuzz_byte(&in), work = fuzz_byte(&in);
    int max_T = 1 + (work & 7), max_B = 1 + ((work >> 3) & 3);
    uint8_t *buf = (uint8_t *)fuzz_dup(in.p, in.n);
    size_t n = in.n;
    if ((flags & 1) && n >= 28) {
        put_le(buf + 16, n, 8);
        put_le(buf + n - 4, nlp_crc32(0, buf, n - 4), 4);
    }
    const char *want = (flags & 2) ? NLP_CHARLM_KIND : NULL;

    nlp_model *m = NULL;
    nlp_error e;
    nlp_error_clear(&e);
    int rc = nlp_model_load_buffer(&m, buf, n, MODEL_NAME, want, &e);
    if (rc != NLP_OK) {
        FUZZ_CHECK(m == NULL);
        fuzz_check_error(rc, &e);
        FUZZ_CHECK(strcmp(e.file, MODEL_NAME) == 0);
    } else {
        FUZZ_CHECK(m != NULL);
        FUZZ_CHECK(!want || strcmp(nlp_model_kind(m), want) == 0);
        walk(m);
        round_trip(m);
    }
    if (flags & 4) {
        nlp_model *p = NULL;
        nlp_error pe;
        int prc = nlp_model_load(&p, fuzz_path(buf, n), want, &pe);
        FUZZ_CHECK(prc == rc);
        FUZZ_CHECK((p == NULL) == (m == NULL));
        nlp_model_free(p);
    }
    /* Each kind's loader on a file of its kind, which it must take or
    ** refuse cleanly. */
    if (m) {
        for (size_t k = 0; k < NKINDS; k++)
            if (strcmp(nlp_model_kind(m), kinds[k].kind) == 0)
                kinds[k].load(buf, n, max_T, max_B);
    }
    nlp_model_free(m);
    free(buf);
    return 0;
}
