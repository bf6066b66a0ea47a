/*
** model: the libnlp model file (see nlp/model.h for the layout and the
** order of the checks).
**
** Writing streams the file through stdio with a running CRC; the sizes are
** computed first so the header can hold the total.  Reading takes the
** whole file into memory (its real size, from fstat, never a declared
** length), checks the header, the declared size and the CRC, then parses
** with a bounds-checked cursor.  Floats are converted from little-endian
** byte by byte, so the format is the same on every host.
*/
#include "nlp/model.h"
#include "nlp/alloc.h"
#include "nlp/crc32.h"
#include "nlp/outfile.h"
#include "nlp.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEADER_SIZE 24   /* magic 8, version 4, flags 4, total size 8 */
#define CRC_SIZE 4
#define MAGIC_SIZE 8

typedef struct meta_entry {
    char *key;
    char *value;
} meta_entry;

typedef struct tensor_entry {
    char *name;
    int ndim;
    size_t shape[NLP_MODEL_MAX_DIMS];
    size_t count;        /* product of shape */
    const float *data;   /* the caller's (added) or owned (loaded) */
    float *owned;        /* loaded data, freed with the model */
} tensor_entry;

typedef struct blob_entry {
    char *name;
    const void *data;    /* the caller's, or inside m->file */
    size_t n;
} blob_entry;

/* The name index below reads an entry's name as the char * it starts with. */
_Static_assert(offsetof(meta_entry, key) == 0, "name first");
_Static_assert(offsetof(tensor_entry, name) == 0, "name first");
_Static_assert(offsetof(blob_entry, name) == 0, "name first");

/* An open-addressing hash index over the names of one entry array, so
** that finding a name, and so refusing a duplicate while loading, is O(1):
** a file of n entries loads in O(n), not O(n^2). */
typedef struct name_index {
    size_t *slot;        /* entry number + 1; 0 = empty */
    size_t cap;          /* 0, or a power of two >= 2 * entries */
} name_index;

struct nlp_model {
    char *kind;
    char *path;          /* file name for messages; "" when built */
    meta_entry *meta;
    size_t nmeta, capmeta;
    tensor_entry *tensors;
    size_t ntensors, captensors;
    blob_entry *blobs;
    size_t nblobs, capblobs;
    name_index meta_ix, tensor_ix, blob_ix;
    uint64_t seed;       /* of the name hash, random per model (a crafted
                            file cannot aim its names at one slot) */
    unsigned char *file; /* loaded file bytes (blob data points here) */
};

/* ---- little-endian encoding ---------------------------------------- */

static void put_u32(unsigned char *p, uint32_t x)
{
    p[0] = (unsigned char)x;
    p[1] = (unsigned char)(x >> 8);
    p[2] = (unsigned char)(x >> 16);
    p[3] = (unsigned char)(x >> 24);
}

static void put_u64(unsigned char *p, uint64_t x)
{
    put_u32(p, (uint32_t)x);
    put_u32(p + 4, (uint32_t)(x >> 32));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- name index ------------------------------------------------------ */

static uint64_t new_seed(const void *salt)
{
    uint64_t s;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s)
        s = (uint64_t)(uintptr_t)salt ^ (uint64_t)time(NULL) * 0x9E3779B97F4A7C15u;
    return s;
}

/* FNV-1a from a seeded basis, then MurmurHash3's fmix64 finaliser so every
** bit of the name reaches the low bits that pick the slot. */
static uint64_t name_hash(uint64_t seed, const char *s)
{
    uint64_t h = 0xCBF29CE484222325u ^ seed;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001B3u;
    }
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDu;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53u;
    h ^= h >> 33;
    return h;
}

/* Name of entry i of an array of elements of size sz (see the asserts). */
static const char *entry_name(const void *base, size_t sz, size_t i)
{
    const char *const *p = (const void *)((const char *)base + i * sz);
    return *p;
}

/* Entry number of name in the array base (sz per element) that ix
** indexes, or SIZE_MAX when absent. */
static size_t index_find(const nlp_model *m, const name_index *ix, const void *base,
                         size_t sz, const char *name)
{
    if (ix->cap == 0)
        return SIZE_MAX;
    size_t mask = ix->cap - 1;
    for (size_t j = (size_t)name_hash(m->seed, name) & mask;; j = (j + 1) & mask) {
        size_t k = ix->slot[j];
        if (k == 0)
            return SIZE_MAX;
        if (strcmp(entry_name(base, sz, k - 1), name) == 0)
            return k - 1;
    }
}

static void index_put(const nlp_model *m, size_t *slot, size_t cap, const void *base,
                      size_t sz, size_t i)
{
    size_t mask = cap - 1;
    size_t j = (size_t)name_hash(m->seed, entry_name(base, sz, i)) & mask;
    while (slot[j])
        j = (j + 1) & mask;
    slot[j] = i + 1;
}

/* Makes room in ix for need entries (at most half full), re-indexing the
** n entries already in base.  Returns NLP_OK or NLP_ENOMEM (ix unchanged). */
static int index_reserve(const nlp_model *m, name_index *ix, const void *base, size_t sz,
                         size_t n, size_t need)
{
    if (need <= ix->cap / 2)
        return NLP_OK;
    size_t cap = ix->cap ? ix->cap : 16;
    while (cap / 2 < need) {
        if (cap > SIZE_MAX / 2 / sizeof(size_t))
            return NLP_ENOMEM;
        cap *= 2;
    }
    size_t *slot = nlp_calloc(cap, sizeof *slot);
    if (!slot)
        return NLP_ENOMEM;
    for (size_t i = 0; i < n; i++)
        index_put(m, slot, cap, base, sz, i);
    nlp_free(ix->slot);
    ix->slot = slot;
    ix->cap = cap;
    return NLP_OK;
}

/* Indexes entry i (its name not in ix yet; room reserved). */
static void index_add(const nlp_model *m, name_index *ix, const void *base, size_t sz, size_t i)
{
    index_put(m, ix->slot, ix->cap, base, sz, i);
}

/* ---- building -------------------------------------------------------- */

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = nlp_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int nlp_model_new(nlp_model **out, const char *kind)
{
    *out = NULL;
    if (!kind || !kind[0])
        return NLP_EINVAL;
    nlp_model *m = nlp_calloc(1, sizeof *m);
    if (!m)
        return NLP_ENOMEM;
    m->seed = new_seed(m);
    m->kind = dupstr(kind);
    m->path = dupstr("");
    if (!m->kind || !m->path) {
        nlp_model_free(m);
        return NLP_ENOMEM;
    }
    *out = m;
    return NLP_OK;
}

void nlp_model_free(nlp_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nmeta; i++) {
        nlp_free(m->meta[i].key);
        nlp_free(m->meta[i].value);
    }
    for (size_t i = 0; i < m->ntensors; i++) {
        nlp_free(m->tensors[i].name);
        nlp_free(m->tensors[i].owned);
    }
    for (size_t i = 0; i < m->nblobs; i++)
        nlp_free(m->blobs[i].name);
    nlp_free(m->meta);
    nlp_free(m->tensors);
    nlp_free(m->blobs);
    nlp_free(m->meta_ix.slot);
    nlp_free(m->tensor_ix.slot);
    nlp_free(m->blob_ix.slot);
    nlp_free(m->file);
    nlp_free(m->kind);
    nlp_free(m->path);
    nlp_free(m);
}

static meta_entry *find_meta(const nlp_model *m, const char *key)
{
    size_t i = index_find(m, &m->meta_ix, m->meta, sizeof *m->meta, key);
    return i == SIZE_MAX ? NULL : &m->meta[i];
}

static tensor_entry *find_tensor(const nlp_model *m, const char *name)
{
    size_t i = index_find(m, &m->tensor_ix, m->tensors, sizeof *m->tensors, name);
    return i == SIZE_MAX ? NULL : &m->tensors[i];
}

static blob_entry *find_blob(const nlp_model *m, const char *name)
{
    size_t i = index_find(m, &m->blob_ix, m->blobs, sizeof *m->blobs, name);
    return i == SIZE_MAX ? NULL : &m->blobs[i];
}

int nlp_model_set_meta(nlp_model *m, const char *key, const char *value)
{
    if (!m || !key || !key[0] || !value)
        return NLP_EINVAL;
    char *v = dupstr(value);
    if (!v)
        return NLP_ENOMEM;
    meta_entry *e = find_meta(m, key);
    if (e) {
        nlp_free(e->value);
        e->value = v;
        return NLP_OK;
    }
    char *k = dupstr(key);
    if (!k || nlp_grow((void **)&m->meta, &m->capmeta, m->nmeta + 1, sizeof *m->meta, 8) != NLP_OK ||
        index_reserve(m, &m->meta_ix, m->meta, sizeof *m->meta, m->nmeta, m->nmeta + 1)) {
        nlp_free(k);
        nlp_free(v);
        return NLP_ENOMEM;
    }
    m->meta[m->nmeta].key = k;
    m->meta[m->nmeta].value = v;
    index_add(m, &m->meta_ix, m->meta, sizeof *m->meta, m->nmeta);
    m->nmeta++;
    return NLP_OK;
}

int nlp_model_set_meta_long(nlp_model *m, const char *key, long value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", value);
    return nlp_model_set_meta(m, key, buf);
}

int nlp_model_set_meta_u64(nlp_model *m, const char *key, uint64_t value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, value);
    return nlp_model_set_meta(m, key, buf);
}

int nlp_model_set_meta_double(nlp_model *m, const char *key, double value)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", value);
    return nlp_model_set_meta(m, key, buf);
}

int nlp_model_set_meta_pairs(nlp_model *m, const char *const *pairs)
{
    int rc = NLP_OK;
    for (size_t i = 0; pairs && pairs[i] && rc == NLP_OK; i += 2)
        rc = nlp_model_set_meta(m, pairs[i], pairs[i + 1] ? pairs[i + 1] : "");
    return rc;
}

/* Product of shape with overflow check (count * 4 must fit too). */
static int shape_count(int ndim, const size_t *shape, size_t *count)
{
    size_t c = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0 || c > (SIZE_MAX / sizeof(float)) / shape[i])
            return NLP_EINVAL;
        c *= shape[i];
    }
    *count = c;
    return NLP_OK;
}

int nlp_model_add_tensor(nlp_model *m, const char *name, const float *data,
                         int ndim, const size_t *shape)
{
    size_t count;
    if (!m || !name || !name[0] || !data || ndim < 1 || ndim > NLP_MODEL_MAX_DIMS || !shape)
        return NLP_EINVAL;
    if (shape_count(ndim, shape, &count) != NLP_OK || find_tensor(m, name))
        return NLP_EINVAL;
    char *nm = dupstr(name);
    if (!nm || nlp_grow((void **)&m->tensors, &m->captensors, m->ntensors + 1, sizeof *m->tensors, 8) != NLP_OK ||
        index_reserve(m, &m->tensor_ix, m->tensors, sizeof *m->tensors, m->ntensors,
                      m->ntensors + 1)) {
        nlp_free(nm);
        return NLP_ENOMEM;
    }
    tensor_entry *t = &m->tensors[m->ntensors];
    memset(t, 0, sizeof *t);
    t->name = nm;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->count = count;
    t->data = data;
    index_add(m, &m->tensor_ix, m->tensors, sizeof *m->tensors, m->ntensors);
    m->ntensors++;
    return NLP_OK;
}

int nlp_model_add_blob(nlp_model *m, const char *name, const void *data, size_t n)
{
    if (!m || !name || !name[0] || (!data && n > 0) || find_blob(m, name))
        return NLP_EINVAL;
    char *nm = dupstr(name);
    if (!nm || nlp_grow((void **)&m->blobs, &m->capblobs, m->nblobs + 1, sizeof *m->blobs, 8) != NLP_OK ||
        index_reserve(m, &m->blob_ix, m->blobs, sizeof *m->blobs, m->nblobs, m->nblobs + 1)) {
        nlp_free(nm);
        return NLP_ENOMEM;
    }
    blob_entry *b = &m->blobs[m->nblobs];
    b->name = nm;
    b->data = data ? data : "";
    b->n = n;
    index_add(m, &m->blob_ix, m->blobs, sizeof *m->blobs, m->nblobs);
    m->nblobs++;
    return NLP_OK;
}

int nlp_model_add_params(nlp_model *m, const nlp_params *p)
{
    if (!m || !p || !p->data)
        return NLP_EINVAL;
    for (int i = 0; i < p->nviews; i++) {
        const nlp_params_view *v = &p->views[i];
        size_t shape[NLP_MODEL_MAX_DIMS];
        for (int d = 0; d < v->ndim; d++)
            shape[d] = (size_t)v->shape[d];
        int rc = nlp_model_add_tensor(m, v->name, p->data + v->offset, v->ndim, shape);
        if (rc != NLP_OK)
            return rc;
    }
    return NLP_OK;
}

int nlp_model_add_optim(nlp_model *m, const nlp_optim *o)
{
    if (!m || !o)
        return NLP_EINVAL;
    int rc;
    const size_t n = nlp_optim_size(o);
    size_t shape[1] = { n };
    float *om = nlp_optim_m(o), *ov = nlp_optim_v(o);
    const char *kind = nlp_optim_kind_name(nlp_optim_get_config(o)->kind);
    if ((rc = nlp_model_set_meta(m, "optim.kind", kind)) != NLP_OK ||
        (rc = nlp_model_set_meta_long(m, "optim.step", nlp_optim_steps(o))) != NLP_OK ||
        (rc = nlp_model_set_meta_long(m, "optim.n", (long)n)) != NLP_OK)
        return rc;
    if (om && (rc = nlp_model_add_tensor(m, "optim.m", om, 1, shape)) != NLP_OK)
        return rc;
    if (ov && (rc = nlp_model_add_tensor(m, "optim.v", ov, 1, shape)) != NLP_OK)
        return rc;
    return NLP_OK;
}

/* ---- serialising --------------------------------------------------- */

/* A byte sink: a FILE (saving) or a memory buffer (nlp_model_to_buffer),
** with the running CRC of everything written. */
typedef struct sink {
    FILE *f;
    unsigned char *buf;  /* memory sink: room for the whole model */
    size_t len;
    uint32_t crc;
    int failed;          /* a write failed (the stream knows why): stop writing */
} sink;

static void sink_write(sink *s, const void *p, size_t n)
{
    if (s->failed || n == 0)
        return;
    s->crc = nlp_crc32(s->crc, p, n);
    if (s->buf) {
        memcpy(s->buf + s->len, p, n);
        s->len += n;
    } else if (fwrite(p, 1, n, s->f) != n) {
        s->failed = 1;
    }
}

static void sink_u32(sink *s, uint32_t x)
{
    unsigned char b[4];
    put_u32(b, x);
    sink_write(s, b, 4);
}

static void sink_u64(sink *s, uint64_t x)
{
    unsigned char b[8];
    put_u64(b, x);
    sink_write(s, b, 8);
}

static void sink_str(sink *s, const char *str)
{
    size_t n = strlen(str);
    sink_u32(s, (uint32_t)n);
    sink_write(s, str, n);
}

static void sink_floats(sink *s, const float *x, size_t n)
{
    unsigned char b[4096];
    while (n > 0) {
        size_t k = n < sizeof b / 4 ? n : sizeof b / 4;
        for (size_t i = 0; i < k; i++)
            put_u32(b + 4 * i, float_bits(x[i]));
        sink_write(s, b, 4 * k);
        x += k;
        n -= k;
    }
}

/* Adds a to *total, failing on overflow. */
static int add_size(uint64_t *total, uint64_t a)
{
    if (*total > UINT64_MAX - a)
        return NLP_ERANGE;
    *total += a;
    return NLP_OK;
}

/* Size of the serialised model; NLP_EINVAL when a string is too long for
** its u32 length field, NLP_ERANGE on overflow. */
static int model_size(const nlp_model *m, uint64_t *size)
{
    uint64_t t = HEADER_SIZE + CRC_SIZE;
    size_t kl = strlen(m->kind);
    if (kl > UINT32_MAX)
        return NLP_EINVAL;
    int rc = add_size(&t, 4 + (uint64_t)kl);
    rc |= add_size(&t, 12);  /* the three counts */
    for (size_t i = 0; i < m->nmeta; i++) {
        size_t a = strlen(m->meta[i].key), b = strlen(m->meta[i].value);
        if (a > UINT32_MAX || b > UINT32_MAX)
            return NLP_EINVAL;
        rc |= add_size(&t, 8 + (uint64_t)a + b);
    }
    for (size_t i = 0; i < m->ntensors; i++) {
        const tensor_entry *e = &m->tensors[i];
        size_t a = strlen(e->name);
        if (a > UINT32_MAX)
            return NLP_EINVAL;
        rc |= add_size(&t, 4 + (uint64_t)a + 4 + 8 * (uint64_t)e->ndim);
        rc |= add_size(&t, 4 * (uint64_t)e->count);
    }
    for (size_t i = 0; i < m->nblobs; i++) {
        size_t a = strlen(m->blobs[i].name);
        if (a > UINT32_MAX)
            return NLP_EINVAL;
        rc |= add_size(&t, 4 + (uint64_t)a + 8);
        rc |= add_size(&t, (uint64_t)m->blobs[i].n);
    }
    if (m->nmeta > UINT32_MAX || m->ntensors > UINT32_MAX || m->nblobs > UINT32_MAX)
        return NLP_EINVAL;
    *size = t;
    return rc ? NLP_ERANGE : NLP_OK;
}

static void serialise(const nlp_model *m, sink *s, uint64_t total)
{
    unsigned char hdr[HEADER_SIZE];
    memcpy(hdr, NLP_MODEL_MAGIC, MAGIC_SIZE);
    put_u32(hdr + 8, NLP_MODEL_FORMAT_VERSION);
    put_u32(hdr + 12, 0);
    put_u64(hdr + 16, total);
    sink_write(s, hdr, sizeof hdr);
    sink_str(s, m->kind);
    sink_u32(s, (uint32_t)m->nmeta);
    for (size_t i = 0; i < m->nmeta; i++) {
        sink_str(s, m->meta[i].key);
        sink_str(s, m->meta[i].value);
    }
    sink_u32(s, (uint32_t)m->ntensors);
    for (size_t i = 0; i < m->ntensors; i++) {
        const tensor_entry *e = &m->tensors[i];
        sink_str(s, e->name);
        sink_u32(s, (uint32_t)e->ndim);
        for (int d = 0; d < e->ndim; d++)
            sink_u64(s, e->shape[d]);
        sink_floats(s, e->data, e->count);
    }
    sink_u32(s, (uint32_t)m->nblobs);
    for (size_t i = 0; i < m->nblobs; i++) {
        sink_str(s, m->blobs[i].name);
        sink_u64(s, m->blobs[i].n);
        sink_write(s, m->blobs[i].data, m->blobs[i].n);
    }
    /* The CRC covers everything before it; write it without updating it. */
    unsigned char c[4];
    put_u32(c, s->crc);
    uint32_t keep = s->crc;
    sink_write(s, c, 4);
    s->crc = keep;
}

/* Records the library version unless the caller set it. */
static int stamp_version(nlp_model *m)
{
    if (find_meta(m, NLP_MODEL_META_LIBVERSION))
        return NLP_OK;
    return nlp_model_set_meta(m, NLP_MODEL_META_LIBVERSION, nlp_version());
}

int nlp_model_to_buffer(nlp_model *m, unsigned char **buf, size_t *n)
{
    uint64_t total;
    int rc;
    *buf = NULL;
    *n = 0;
    if ((rc = stamp_version(m)) != NLP_OK)
        return rc;
    if ((rc = model_size(m, &total)) != NLP_OK)
        return rc;
    if (total > SIZE_MAX)
        return NLP_ENOMEM;
    sink s = {0};
    s.buf = nlp_malloc((size_t)total);
    if (!s.buf)
        return NLP_ENOMEM;
    serialise(m, &s, total);
    *buf = s.buf;
    *n = s.len;
    return NLP_OK;
}

int nlp_model_save(nlp_model *m, const char *path, nlp_error *e)
{
    uint64_t total;
    int rc;
    if (!m || !path || !path[0])
        return nlp_error_set(e, NLP_EINVAL, path, 0, "no model file name");
    if ((rc = stamp_version(m)) != NLP_OK)
        return nlp_error_set(e, rc, path, 0, NULL);
    if ((rc = model_size(m, &total)) != NLP_OK)
        return nlp_error_set(e, rc, path, 0, "model too large to save");
    nlp_outfile *o;
    if ((rc = nlp_outfile_new(&o, path, e)) != NLP_OK)
        return rc;
    sink s = {0};
    s.f = nlp_outfile_stream(o);
    serialise(m, &s, total);
    /* A failed write stopped the sink; commit reports it and removes the
    ** temporary. */
    return nlp_outfile_commit(o, e);
}

int nlp_model_finish_save(nlp_model *m, int rc, const char *const *meta,
                          const nlp_params *params, const char *path, nlp_error *e)
{
    if (rc == NLP_OK)
        rc = nlp_model_set_meta_pairs(m, meta);
    if (rc == NLP_OK && params)
        rc = nlp_model_add_params(m, params);
    if (rc == NLP_OK)
        rc = nlp_model_save(m, path, e);
    else
        nlp_error_set(e, rc, path, 0, NULL);
    nlp_model_free(m);
    return rc;
}

/* ---- loading --------------------------------------------------------- */

/* A bounds-checked cursor over the body of a loaded file. */
typedef struct reader {
    const unsigned char *p;
    size_t n;     /* end of the readable part */
    size_t off;
    const char *name;
    nlp_error *e;
} reader;

static int bad(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(reader *r, const char *fmt, ...)
{
    char text[NLP_ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return nlp_error_set(r->e, NLP_EFORMAT, r->name, 0, "malformed model file: %s (at byte %zu)",
                         text, r->off);
}

static size_t left(const reader *r)
{
    return r->n - r->off;
}

static int rd_u32(reader *r, uint32_t *x, const char *what)
{
    if (left(r) < 4)
        return bad(r, "%s runs past the end", what);
    *x = get_u32(r->p + r->off);
    r->off += 4;
    return NLP_OK;
}

static int rd_u64(reader *r, uint64_t *x, const char *what)
{
    if (left(r) < 8)
        return bad(r, "%s runs past the end", what);
    *x = get_u64(r->p + r->off);
    r->off += 8;
    return NLP_OK;
}

/* A length-prefixed string, copied into a new NUL-terminated string. */
static int rd_str(reader *r, char **out, const char *what, int nonempty)
{
    uint32_t len;
    int rc = rd_u32(r, &len, what);
    if (rc)
        return rc;
    if (len > left(r))
        return bad(r, "%s of %lu bytes runs past the end", what, (unsigned long)len);
    if (nonempty && len == 0)
        return bad(r, "empty %s", what);
    if (memchr(r->p + r->off, '\0', len))
        return bad(r, "%s contains a NUL byte", what);
    char *s = nlp_malloc((size_t)len + 1);
    if (!s)
        return nlp_error_set(r->e, NLP_ENOMEM, r->name, 0, NULL);
    memcpy(s, r->p + r->off, len);
    s[len] = '\0';
    r->off += len;
    *out = s;
    return NLP_OK;
}

static int parse_body(nlp_model *m, reader *r)
{
    int rc;
    uint32_t n;
    if ((rc = rd_str(r, &m->kind, "model kind", 1)))
        return rc;

    /* Each entry needs at least its length fields, so a count larger than
    ** the bytes left allow is corrupt: checked before anything is allocated. */
    if ((rc = rd_u32(r, &n, "metadata count")))
        return rc;
    if (n > left(r) / 8)
        return bad(r, "metadata count %lu too large for the file", (unsigned long)n);
    if (n && (!(m->meta = nlp_calloc(n, sizeof *m->meta)) ||
              index_reserve(m, &m->meta_ix, m->meta, sizeof *m->meta, 0, n)))
        return nlp_error_set(r->e, NLP_ENOMEM, r->name, 0, NULL);
    m->capmeta = n;
    for (uint32_t i = 0; i < n; i++) {
        meta_entry *me = &m->meta[m->nmeta];
        if ((rc = rd_str(r, &me->key, "metadata key", 1)))
            return rc;
        if ((rc = rd_str(r, &me->value, "metadata value", 0))) {
            nlp_free(me->key);
            return rc;
        }
        m->nmeta++;  /* from here on, freed with the model */
        if (find_meta(m, me->key))
            return bad(r, "duplicate metadata key '%s'", me->key);
        index_add(m, &m->meta_ix, m->meta, sizeof *m->meta, m->nmeta - 1);
    }

    if ((rc = rd_u32(r, &n, "tensor count")))
        return rc;
    if (n > left(r) / 20)  /* name length, ndim, one dim, one float */
        return bad(r, "tensor count %lu too large for the file", (unsigned long)n);
    if (n && (!(m->tensors = nlp_calloc(n, sizeof *m->tensors)) ||
              index_reserve(m, &m->tensor_ix, m->tensors, sizeof *m->tensors, 0, n)))
        return nlp_error_set(r->e, NLP_ENOMEM, r->name, 0, NULL);
    m->captensors = n;
    for (uint32_t i = 0; i < n; i++) {
        tensor_entry *t = &m->tensors[m->ntensors];
        if ((rc = rd_str(r, &t->name, "tensor name", 1)))
            return rc;
        m->ntensors++;  /* from here on, freed with the model */
        if (find_tensor(m, t->name))
            return bad(r, "duplicate tensor '%s'", t->name);
        index_add(m, &m->tensor_ix, m->tensors, sizeof *m->tensors, m->ntensors - 1);
        uint32_t ndim;
        if ((rc = rd_u32(r, &ndim, "tensor rank")))
            return rc;
        if (ndim < 1 || ndim > NLP_MODEL_MAX_DIMS)
            return bad(r, "tensor '%s' has %lu dimensions", t->name, (unsigned long)ndim);
        t->ndim = (int)ndim;
        uint64_t count = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            uint64_t dim = 0;
            if ((rc = rd_u64(r, &dim, "tensor dimension")))
                return rc;
            /* Every dimension is bounded by the floats the file can hold. */
            if (dim == 0 || dim > left(r) / 4 || count > (left(r) / 4) / dim)
                return bad(r, "tensor '%s' dimension %llu does not fit the file", t->name,
                           (unsigned long long)dim);
            count *= dim;
            t->shape[d] = (size_t)dim;
        }
        if (count > left(r) / 4)
            return bad(r, "tensor '%s' data runs past the end", t->name);
        t->count = (size_t)count;
        if (!(t->owned = nlp_malloc(t->count * sizeof(float))))
            return nlp_error_set(r->e, NLP_ENOMEM, r->name, 0, NULL);
        const unsigned char *src = r->p + r->off;
        for (size_t k = 0; k < t->count; k++) {
            float x = bits_float(get_u32(src + 4 * k));
            /* A NaN or infinite weight (a diverged run saved as is) would
            ** only show up later as a NaN score: refuse the file now. */
            if (!isfinite(x))
                return nlp_error_set(r->e, NLP_EFORMAT, r->name, 0,
                                     "tensor '%s' holds a non-finite value (%s at element "
                                     "%zu of %zu): the model is unusable",
                                     t->name, isnan(x) ? "nan" : x > 0 ? "inf" : "-inf",
                                     k, t->count);
            t->owned[k] = x;
        }
        t->data = t->owned;
        r->off += 4 * t->count;
    }

    if ((rc = rd_u32(r, &n, "blob count")))
        return rc;
    if (n > left(r) / 12)
        return bad(r, "blob count %lu too large for the file", (unsigned long)n);
    if (n && (!(m->blobs = nlp_calloc(n, sizeof *m->blobs)) ||
              index_reserve(m, &m->blob_ix, m->blobs, sizeof *m->blobs, 0, n)))
        return nlp_error_set(r->e, NLP_ENOMEM, r->name, 0, NULL);
    m->capblobs = n;
    for (uint32_t i = 0; i < n; i++) {
        blob_entry *b = &m->blobs[m->nblobs];
        if ((rc = rd_str(r, &b->name, "blob name", 1)))
            return rc;
        m->nblobs++;
        if (find_blob(m, b->name))
            return bad(r, "duplicate blob '%s'", b->name);
        index_add(m, &m->blob_ix, m->blobs, sizeof *m->blobs, m->nblobs - 1);
        uint64_t size = 0;
        if ((rc = rd_u64(r, &size, "blob size")))
            return rc;
        if (size > left(r))
            return bad(r, "blob '%s' of %llu bytes runs past the end", b->name,
                       (unsigned long long)size);
        b->data = r->p + r->off;
        b->n = (size_t)size;
        r->off += (size_t)size;
    }
    if (left(r) != 0)
        return bad(r, "%zu unexpected bytes before the checksum", left(r));
    return NLP_OK;
}

/* Loads from buf, which the new model takes over (freed on failure too). */
static int load_owned(nlp_model **out, unsigned char *buf, size_t n,
                      const char *name, const char *kind, nlp_error *e)
{
    const char *nm = name ? name : "";
    *out = NULL;
    if (n < MAGIC_SIZE) {
        int prefix = memcmp(buf, NLP_MODEL_MAGIC, n) == 0;
        nlp_free(buf);
        if (prefix)
            return nlp_error_set(e, NLP_ETRUNCATED, nm, 0,
                                 "model file is truncated (%zu bytes)", n);
        return nlp_error_set(e, NLP_EFORMAT, nm, 0, "not a libnlp model file");
    }
    if (memcmp(buf, NLP_MODEL_MAGIC, MAGIC_SIZE) != 0) {
        nlp_free(buf);
        return nlp_error_set(e, NLP_EFORMAT, nm, 0, "not a libnlp model file");
    }
    if (n < HEADER_SIZE + CRC_SIZE) {
        nlp_free(buf);
        return nlp_error_set(e, NLP_ETRUNCATED, nm, 0, "model file is truncated (%zu bytes)", n);
    }
    uint32_t version = get_u32(buf + 8);
    if (version == 0) {
        nlp_free(buf);
        return nlp_error_set(e, NLP_EFORMAT, nm, 0, "model format version 0 is invalid");
    }
    if (version > NLP_MODEL_FORMAT_VERSION) {
        nlp_free(buf);
        return nlp_error_set(e, NLP_EVERSION, nm, 0,
                             "model format version %lu is newer than this libnlp "
                             "(%s) reads (up to %u); upgrade libnlp",
                             (unsigned long)version, nlp_version(), NLP_MODEL_FORMAT_VERSION);
    }
    uint64_t total = get_u64(buf + 16);
    if (total > n) {
        nlp_free(buf);
        return nlp_error_set(e, NLP_ETRUNCATED, nm, 0,
                             "model file is truncated (%zu of %llu bytes)", n,
                             (unsigned long long)total);
    }
    if (total < n) {
        nlp_free(buf);
        return nlp_error_set(e, NLP_EFORMAT, nm, 0,
                             "malformed model file: %zu bytes after its end (byte %llu)",
                             n - (size_t)total, (unsigned long long)total);
    }
    uint32_t stored = get_u32(buf + n - CRC_SIZE);
    uint32_t actual = nlp_crc32(0, buf, n - CRC_SIZE);
    if (stored != actual) {
        nlp_free(buf);
        return nlp_error_set(e, NLP_ECHECKSUM, nm, 0,
                             "model file is corrupt: checksum %08lx, expected %08lx",
                             (unsigned long)actual, (unsigned long)stored);
    }
    if (get_u32(buf + 12) != 0) {
        nlp_free(buf);
        return nlp_error_set(e, NLP_EFORMAT, nm, 0, "malformed model file: unknown flags");
    }

    nlp_model *m = nlp_calloc(1, sizeof *m);
    if (!m || !(m->path = dupstr(nm))) {
        nlp_free(m);
        nlp_free(buf);
        return nlp_error_set(e, NLP_ENOMEM, nm, 0, NULL);
    }
    m->seed = new_seed(m);
    m->file = buf;
    reader r = { buf, n - CRC_SIZE, HEADER_SIZE, nm, e };
    int rc = parse_body(m, &r);
    if (rc != NLP_OK) {
        nlp_model_free(m);
        return rc;
    }
    if (kind && strcmp(kind, m->kind) != 0) {
        rc = nlp_error_set(e, NLP_EKIND, nm, 0, "this is a '%s' model, not a '%s' model",
                           m->kind, kind);
        nlp_model_free(m);
        return rc;
    }
    *out = m;
    return NLP_OK;
}

int nlp_model_load_buffer(nlp_model **out, const void *buf, size_t n,
                          const char *name, const char *kind, nlp_error *e)
{
    *out = NULL;
    unsigned char *copy = nlp_malloc(n ? n : 1);
    if (!copy)
        return nlp_error_set(e, NLP_ENOMEM, name, 0, NULL);
    if (n)
        memcpy(copy, buf, n);
    return load_owned(out, copy, n, name, kind, e);
}

int nlp_model_load(nlp_model **out, const char *path, const char *kind, nlp_error *e)
{
    *out = NULL;
    if (!path)
        return nlp_error_set(e, NLP_EINVAL, NULL, 0, "no model file name");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nlp_error_set(e, NLP_EIO, path, 0, "%s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return nlp_error_set(e, NLP_EIO, path, 0, "%s", strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return nlp_error_set(e, NLP_EIO, path, 0, "not a regular file");
    }
    if ((uintmax_t)st.st_size > SIZE_MAX - 1) {
        close(fd);
        return nlp_error_set(e, NLP_ENOMEM, path, 0, "model file too large");
    }
    size_t size = (size_t)st.st_size;
    unsigned char *buf = nlp_malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return nlp_error_set(e, NLP_ENOMEM, path, 0, "model file too large for memory");
    }
    /* Read what is there; a file that shrinks meanwhile is judged by the
    ** bytes actually read. */
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int err = errno;
            nlp_free(buf);
            close(fd);
            return nlp_error_set(e, NLP_EIO, path, 0, "%s", strerror(err));
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    return load_owned(out, buf, got, path, kind, e);
}

/* ---- reading ------------------------------------------------------- */

const char *nlp_model_kind(const nlp_model *m)
{
    return m->kind;
}

const char *nlp_model_meta(const nlp_model *m, const char *key)
{
    const meta_entry *me = key ? find_meta(m, key) : NULL;
    return me ? me->value : NULL;
}

int nlp_model_meta_long(const nlp_model *m, const char *key, long *value, nlp_error *e)
{
    const char *s = nlp_model_meta(m, key);
    if (!s)
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0, "model has no '%s' setting", key);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno)
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0,
                             "model setting '%s' is '%s', not an integer", key, s);
    *value = v;
    return NLP_OK;
}

int nlp_model_meta_double(const nlp_model *m, const char *key, double *value, nlp_error *e)
{
    const char *s = nlp_model_meta(m, key);
    if (!s)
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0, "model has no '%s' setting", key);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v))
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0,
                             "model setting '%s' is '%s', not a number", key, s);
    *value = v;
    return NLP_OK;
}

int nlp_model_meta_range(const nlp_model *m, const char *key, long lo, long hi, long *value,
                         nlp_error *e)
{
    long v;
    int rc = nlp_model_meta_long(m, key, &v, e);
    if (rc != NLP_OK)
        return rc;
    if (v < lo || v > hi)
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0,
                             "model setting '%s' is %ld, expected an integer in [%ld, %ld]", key,
                             v, lo, hi);
    *value = v;
    return NLP_OK;
}

int nlp_model_meta_u64(const nlp_model *m, const char *key, uint64_t max, uint64_t *value,
                       nlp_error *e)
{
    const char *s = nlp_model_meta(m, key);
    if (!s)
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0, "model has no '%s' setting", key);
    uint64_t x = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - d) / 10)
            break;
        x = x * 10 + d;
    }
    if (p == s || *p != '\0' || x > max)
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0,
                             "model setting '%s' is '%.40s', expected a whole number up to %"
                             PRIu64, key, s, max);
    *value = x;
    return NLP_OK;
}

size_t nlp_model_meta_count(const nlp_model *m)
{
    return m->nmeta;
}

int nlp_model_meta_at(const nlp_model *m, size_t i, const char **key, const char **value)
{
    if (i >= m->nmeta)
        return NLP_EINVAL;
    if (key)
        *key = m->meta[i].key;
    if (value)
        *value = m->meta[i].value;
    return NLP_OK;
}

/* "[2,3]" into buf. */
static void format_shape(char *buf, size_t n, int ndim, const size_t *shape)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ",%zu" : "%zu", shape[d]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* The tensor name when it has exactly ndim dimensions shape[]; else NULL
** with the reason in e. */
static const tensor_entry *checked_tensor(const nlp_model *m, const char *name, int ndim,
                                          const size_t *shape, nlp_error *e)
{
    const tensor_entry *t = name ? find_tensor(m, name) : NULL;
    if (!t) {
        nlp_error_set(e, NLP_EFORMAT, m->path, 0, "model has no tensor '%s'",
                      name ? name : "(null)");
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->shape[d] == shape[d];
    if (!same) {
        char have[160], want[160];
        format_shape(have, sizeof have, t->ndim, t->shape);
        if (ndim >= 1 && ndim <= NLP_MODEL_MAX_DIMS && shape)
            format_shape(want, sizeof want, ndim, shape);
        else
            snprintf(want, sizeof want, "%d dimensions", ndim);
        nlp_error_set(e, NLP_EFORMAT, m->path, 0, "tensor '%s' has shape %s, expected %s",
                      name, have, want);
        return NULL;
    }
    return t;
}

int nlp_model_check_tensor(const nlp_model *m, const char *name, int ndim,
                           const size_t *shape, nlp_error *e)
{
    return checked_tensor(m, name, ndim, shape, e) ? NLP_OK : NLP_EFORMAT;
}

int nlp_model_read_tensor(const nlp_model *m, const char *name, float *dst,
                          int ndim, const size_t *shape, nlp_error *e)
{
    const tensor_entry *t = checked_tensor(m, name, ndim, shape, e);
    if (!t)
        return NLP_EFORMAT;
    memcpy(dst, t->data, t->count * sizeof(float));
    return NLP_OK;
}

const float *nlp_model_tensor(const nlp_model *m, const char *name,
                              int *ndim, const size_t **shape)
{
    const tensor_entry *t = find_tensor(m, name);
    if (!t)
        return NULL;
    if (ndim)
        *ndim = t->ndim;
    if (shape)
        *shape = t->shape;
    return t->data;
}

size_t nlp_model_tensor_count(const nlp_model *m)
{
    return m->ntensors;
}

const char *nlp_model_tensor_name(const nlp_model *m, size_t i)
{
    return i < m->ntensors ? m->tensors[i].name : NULL;
}

const void *nlp_model_blob(const nlp_model *m, const char *name, size_t *n)
{
    const blob_entry *b = find_blob(m, name);
    if (!b)
        return NULL;
    if (n)
        *n = b->n;
    return b->data;
}

/* A view's shape as the model's size_t dims. */
static void view_shape(const nlp_params_view *v, size_t shape[NLP_MODEL_MAX_DIMS])
{
    for (int d = 0; d < v->ndim && d < NLP_MODEL_MAX_DIMS; d++)
        shape[d] = (size_t)v->shape[d];
}

int nlp_model_check_params(const nlp_model *m, const nlp_params *p, nlp_error *e)
{
    if (!p)
        return nlp_error_set(e, NLP_EINVAL, m->path, 0, "no parameters");
    for (int i = 0; i < p->nviews; i++) {
        const nlp_params_view *v = &p->views[i];
        size_t shape[NLP_MODEL_MAX_DIMS];
        view_shape(v, shape);
        if (!checked_tensor(m, v->name, v->ndim, shape, e))
            return NLP_EFORMAT;
    }
    return NLP_OK;
}

int nlp_model_read_params(const nlp_model *m, nlp_params *p, nlp_error *e)
{
    if (!p || !p->data)
        return nlp_error_set(e, NLP_EINVAL, m->path, 0, "parameters not allocated");
    /* All or nothing: p is left as it was when any view does not match. */
    int rc = nlp_model_check_params(m, p, e);
    if (rc != NLP_OK)
        return rc;
    for (int i = 0; i < p->nviews; i++) {
        const nlp_params_view *v = &p->views[i];
        const tensor_entry *t = find_tensor(m, v->name);
        memcpy(p->data + v->offset, t->data, t->count * sizeof(float));
    }
    return NLP_OK;
}

int nlp_model_read_optim(const nlp_model *m, nlp_optim *o, nlp_error *e)
{
    const char *kind = nlp_model_meta(m, "optim.kind");
    long step, n;
    int rc;
    if (!kind)
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0, "model holds no optimiser state");
    const char *have = nlp_optim_kind_name(nlp_optim_get_config(o)->kind);
    if (strcmp(kind, have) != 0)
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0,
                             "optimiser state is for %s, not %s", kind, have);
    if ((rc = nlp_model_meta_long(m, "optim.step", &step, e)) != NLP_OK ||
        (rc = nlp_model_meta_long(m, "optim.n", &n, e)) != NLP_OK)
        return rc;
    const size_t on = nlp_optim_size(o);
    if (step < 0 || n < 0 || (size_t)n != on)
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0,
                             "optimiser state is for %ld parameters, not %zu", n, on);
    size_t shape[1] = { on };
    float *om = nlp_optim_m(o), *ov = nlp_optim_v(o);
    if (om && (rc = nlp_model_read_tensor(m, "optim.m", om, 1, shape, e)) != NLP_OK)
        return rc;
    if (ov && (rc = nlp_model_read_tensor(m, "optim.v", ov, 1, shape, e)) != NLP_OK)
        return rc;
    return nlp_optim_set_steps(o, step);
}
