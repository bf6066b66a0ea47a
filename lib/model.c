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
#include "nlp.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_SIZE 24   /* magic 8, version 4, flags 4, total size 8 */
#define CRC_SIZE 4
#define MAGIC_SIZE 8
#define TMP_ATTEMPTS 100 /* temporary names tried before giving up */

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

struct nlp_model {
    char *kind;
    char *path;          /* file name for messages; "" when built */
    meta_entry *meta;
    size_t nmeta, capmeta;
    tensor_entry *tensors;
    size_t ntensors, captensors;
    blob_entry *blobs;
    size_t nblobs, capblobs;
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

/* ---- building -------------------------------------------------------- */

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = nlp_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Makes room for one more element of size sz in *arr (count n, capacity *cap). */
static int grow(void **arr, size_t n, size_t *cap, size_t sz)
{
    if (n < *cap)
        return NLP_OK;
    size_t nc = *cap ? *cap * 2 : 8;
    void *p = nlp_realloc(*arr, nc * sz);
    if (!p)
        return NLP_ENOMEM;
    *arr = p;
    *cap = nc;
    return NLP_OK;
}

nlp_model *nlp_model_new(const char *kind)
{
    if (!kind || !kind[0])
        return NULL;
    nlp_model *m = nlp_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->kind = dupstr(kind);
    m->path = dupstr("");
    if (!m->kind || !m->path) {
        nlp_model_free(m);
        return NULL;
    }
    return m;
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
    nlp_free(m->file);
    nlp_free(m->kind);
    nlp_free(m->path);
    nlp_free(m);
}

static meta_entry *find_meta(const nlp_model *m, const char *key)
{
    for (size_t i = 0; i < m->nmeta; i++)
        if (strcmp(m->meta[i].key, key) == 0)
            return &m->meta[i];
    return NULL;
}

static tensor_entry *find_tensor(const nlp_model *m, const char *name)
{
    for (size_t i = 0; i < m->ntensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0)
            return &m->tensors[i];
    return NULL;
}

static blob_entry *find_blob(const nlp_model *m, const char *name)
{
    for (size_t i = 0; i < m->nblobs; i++)
        if (strcmp(m->blobs[i].name, name) == 0)
            return &m->blobs[i];
    return NULL;
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
    if (!k || grow((void **)&m->meta, m->nmeta, &m->capmeta, sizeof *m->meta) != NLP_OK) {
        nlp_free(k);
        nlp_free(v);
        return NLP_ENOMEM;
    }
    m->meta[m->nmeta].key = k;
    m->meta[m->nmeta].value = v;
    m->nmeta++;
    return NLP_OK;
}

int nlp_model_set_meta_long(nlp_model *m, const char *key, long value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", value);
    return nlp_model_set_meta(m, key, buf);
}

int nlp_model_set_meta_double(nlp_model *m, const char *key, double value)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", value);
    return nlp_model_set_meta(m, key, buf);
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
    if (!nm || grow((void **)&m->tensors, m->ntensors, &m->captensors, sizeof *m->tensors) != NLP_OK) {
        nlp_free(nm);
        return NLP_ENOMEM;
    }
    tensor_entry *t = &m->tensors[m->ntensors++];
    memset(t, 0, sizeof *t);
    t->name = nm;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->count = count;
    t->data = data;
    return NLP_OK;
}

int nlp_model_add_blob(nlp_model *m, const char *name, const void *data, size_t n)
{
    if (!m || !name || !name[0] || (!data && n > 0) || find_blob(m, name))
        return NLP_EINVAL;
    char *nm = dupstr(name);
    if (!nm || grow((void **)&m->blobs, m->nblobs, &m->capblobs, sizeof *m->blobs) != NLP_OK) {
        nlp_free(nm);
        return NLP_ENOMEM;
    }
    blob_entry *b = &m->blobs[m->nblobs++];
    b->name = nm;
    b->data = data ? data : "";
    b->n = n;
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
    size_t shape[1] = { o->n };
    if ((rc = nlp_model_set_meta(m, "optim.kind", nlp_optim_kind_name(o->cfg.kind))) != NLP_OK ||
        (rc = nlp_model_set_meta_long(m, "optim.step", o->step)) != NLP_OK ||
        (rc = nlp_model_set_meta_long(m, "optim.n", (long)o->n)) != NLP_OK)
        return rc;
    if (o->m && (rc = nlp_model_add_tensor(m, "optim.m", o->m, 1, shape)) != NLP_OK)
        return rc;
    if (o->v && (rc = nlp_model_add_tensor(m, "optim.v", o->v, 1, shape)) != NLP_OK)
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
    int failed;          /* a write failed; errno kept in err */
    int err;
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
        s->err = errno ? errno : EIO;
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

/* Directory part of path ("." when none), in a malloc'ed string. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return dupstr(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = nlp_malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
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

    /* A temporary name in the same directory (so rename() is atomic),
    ** created exclusively with the usual 0666 & ~umask permissions. */
    size_t tn = strlen(path) + 64;
    char *tmp = nlp_malloc(tn);
    if (!tmp)
        return nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
    int fd = -1;
    for (int attempt = 0; attempt < TMP_ATTEMPTS && fd < 0; attempt++) {
        snprintf(tmp, tn, "%s.tmp%ld.%d", path, (long)getpid(), attempt);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        int err = errno;
        nlp_free(tmp);
        return nlp_error_set(e, NLP_EIO, path, 0, "cannot create a temporary file: %s",
                             strerror(err));
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int err = errno;
        close(fd);
        unlink(tmp);
        nlp_free(tmp);
        return nlp_error_set(e, NLP_EIO, path, 0, "%s", strerror(err));
    }
    sink s = {0};
    s.f = f;
    errno = 0;
    serialise(m, &s, total);
    const char *what = "cannot write";
    int err = s.err;
    if (!s.failed && fflush(f) != 0) {
        s.failed = 1;
        err = errno;
    }
    if (!s.failed && fsync(fileno(f)) != 0) {
        s.failed = 1;
        err = errno;
        what = "cannot sync";
    }
    if (fclose(f) != 0 && !s.failed) {
        s.failed = 1;
        err = errno;
    }
    if (!s.failed && rename(tmp, path) != 0) {
        s.failed = 1;
        err = errno;
        what = "cannot rename the temporary file into place";
    }
    if (s.failed) {
        unlink(tmp);
        nlp_free(tmp);
        return nlp_error_set(e, NLP_EIO, path, 0, "%s: %s", what, strerror(err ? err : EIO));
    }
    nlp_free(tmp);
    /* Make the rename itself durable.  The new file is already in place;
    ** a directory that cannot be synced (some file systems refuse) is not
    ** a reason to report the save as failed. */
    char *dir = dir_of(path);
    if (dir) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        nlp_free(dir);
    }
    return NLP_OK;
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
    if (n && !(m->meta = nlp_calloc(n, sizeof *m->meta)))
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
        m->nmeta++;
        for (size_t j = 0; j + 1 < m->nmeta; j++)
            if (strcmp(m->meta[j].key, me->key) == 0)
                return bad(r, "duplicate metadata key '%s'", me->key);
    }

    if ((rc = rd_u32(r, &n, "tensor count")))
        return rc;
    if (n > left(r) / 20)  /* name length, ndim, one dim, one float */
        return bad(r, "tensor count %lu too large for the file", (unsigned long)n);
    if (n && !(m->tensors = nlp_calloc(n, sizeof *m->tensors)))
        return nlp_error_set(r->e, NLP_ENOMEM, r->name, 0, NULL);
    m->captensors = n;
    for (uint32_t i = 0; i < n; i++) {
        tensor_entry *t = &m->tensors[m->ntensors];
        if ((rc = rd_str(r, &t->name, "tensor name", 1)))
            return rc;
        m->ntensors++;  /* from here on, freed with the model */
        for (size_t j = 0; j + 1 < m->ntensors; j++)
            if (strcmp(m->tensors[j].name, t->name) == 0)
                return bad(r, "duplicate tensor '%s'", t->name);
        uint32_t ndim;
        if ((rc = rd_u32(r, &ndim, "tensor rank")))
            return rc;
        if (ndim < 1 || ndim > NLP_MODEL_MAX_DIMS)
            return bad(r, "tensor '%s' has %lu dimensions", t->name, (unsigned long)ndim);
        t->ndim = (int)ndim;
        uint64_t count = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            uint64_t dim;
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
        for (size_t k = 0; k < t->count; k++)
            t->owned[k] = bits_float(get_u32(src + 4 * k));
        t->data = t->owned;
        r->off += 4 * t->count;
    }

    if ((rc = rd_u32(r, &n, "blob count")))
        return rc;
    if (n > left(r) / 12)
        return bad(r, "blob count %lu too large for the file", (unsigned long)n);
    if (n && !(m->blobs = nlp_calloc(n, sizeof *m->blobs)))
        return nlp_error_set(r->e, NLP_ENOMEM, r->name, 0, NULL);
    m->capblobs = n;
    for (uint32_t i = 0; i < n; i++) {
        blob_entry *b = &m->blobs[m->nblobs];
        if ((rc = rd_str(r, &b->name, "blob name", 1)))
            return rc;
        m->nblobs++;
        for (size_t j = 0; j + 1 < m->nblobs; j++)
            if (strcmp(m->blobs[j].name, b->name) == 0)
                return bad(r, "duplicate blob '%s'", b->name);
        uint64_t size;
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

int nlp_model_read_tensor(const nlp_model *m, const char *name, float *dst,
                          int ndim, const size_t *shape, nlp_error *e)
{
    const tensor_entry *t = find_tensor(m, name);
    if (!t)
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0, "model has no tensor '%s'", name);
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->shape[d] == shape[d];
    if (!same) {
        char have[160], want[160];
        format_shape(have, sizeof have, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0, "tensor '%s' has shape %s, expected %s",
                             name, have, want);
    }
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

int nlp_model_read_params(const nlp_model *m, nlp_params *p, nlp_error *e)
{
    if (!p || !p->data)
        return nlp_error_set(e, NLP_EINVAL, m->path, 0, "parameters not allocated");
    for (int i = 0; i < p->nviews; i++) {
        const nlp_params_view *v = &p->views[i];
        size_t shape[NLP_MODEL_MAX_DIMS];
        for (int d = 0; d < v->ndim; d++)
            shape[d] = (size_t)v->shape[d];
        int rc = nlp_model_read_tensor(m, v->name, p->data + v->offset, v->ndim, shape, e);
        if (rc != NLP_OK)
            return rc;
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
    if (strcmp(kind, nlp_optim_kind_name(o->cfg.kind)) != 0)
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0,
                             "optimiser state is for %s, not %s", kind,
                             nlp_optim_kind_name(o->cfg.kind));
    if ((rc = nlp_model_meta_long(m, "optim.step", &step, e)) != NLP_OK ||
        (rc = nlp_model_meta_long(m, "optim.n", &n, e)) != NLP_OK)
        return rc;
    if (step < 0 || n < 0 || (size_t)n != o->n)
        return nlp_error_set(e, NLP_EFORMAT, m->path, 0,
                             "optimiser state is for %ld parameters, not %zu", n, o->n);
    size_t shape[1] = { o->n };
    if (o->m && (rc = nlp_model_read_tensor(m, "optim.m", o->m, 1, shape, e)) != NLP_OK)
        return rc;
    if (o->v && (rc = nlp_model_read_tensor(m, "optim.v", o->v, 1, shape, e)) != NLP_OK)
        return rc;
    o->step = step;
    return NLP_OK;
}
