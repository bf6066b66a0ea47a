/*
** vocab: string <-> id table with counts.  See nlp/vocab.h.
**
** Layout: entries[id] = {offset into pool, length, count, hash}; the pool
** holds every word's bytes followed by a NUL; slots[] is the hash table,
** each slot an id or -1 (empty).  Linear probing keeps the table at most
** half full, so an absent word usually costs one or two probes.
*/
#include "nlp/vocab.h"
#include "nlp/alloc.h"
#include "nlp/model.h"
#include "sort.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    size_t off;      /* first byte in pool */
    uint32_t len;    /* bytes, without the NUL */
    int64_t count;   /* occurrences */
    uint64_t hash;   /* cached hash of the bytes */
} entry;

struct nlp_vocab {
    entry *e;        /* entries, by id */
    long n;          /* words */
    long cap;        /* entries allocated */
    long pinned;     /* ids 0 .. pinned-1 never move */
    char *pool;      /* word bytes, each followed by '\0' */
    size_t pool_len; /* bytes used in pool */
    size_t pool_cap; /* bytes allocated */
    long *slots;     /* hash table of ids, -1 = empty */
    size_t mask;     /* table size - 1 (a power of two) */
    int64_t total;   /* sum of counts */
};

#define INITIAL_SLOTS 1024
#define INITIAL_POOL 8192

/* ---- hashing ---------------------------------------------------------- */

/*
** A multiply-xorshift hash over 8-byte blocks (the mixing constants are
** splitmix64's / MurmurHash3's fmix64).  Words are short; this is a few
** multiplications per word and distributes well for linear probing.
*/
static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0xff51afd7ed558ccdULL);
    const unsigned char *p = (const unsigned char *)s;
    while (len >= 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        h = (h ^ k) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t k = 0;
        memcpy(&k, p, len);
        h = (h ^ k) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
    }
    h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;
    h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

/* ---- construction ----------------------------------------------------- */

int nlp_vocab_new(nlp_vocab **out)
{
    *out = NULL;
    nlp_vocab *v = nlp_calloc(1, sizeof *v);
    if (!v)
        return NLP_ENOMEM;
    v->slots = nlp_malloc(INITIAL_SLOTS * sizeof *v->slots);
    v->pool = nlp_malloc(INITIAL_POOL);
    if (!v->slots || !v->pool) {
        nlp_vocab_free(v);
        return NLP_ENOMEM;
    }
    memset(v->slots, 0xff, INITIAL_SLOTS * sizeof *v->slots);
    v->mask = INITIAL_SLOTS - 1;
    v->pool_cap = INITIAL_POOL;
    *out = v;
    return NLP_OK;
}

void nlp_vocab_free(nlp_vocab *v)
{
    if (!v)
        return;
    nlp_free(v->e);
    nlp_free(v->pool);
    nlp_free(v->slots);
    nlp_free(v);
}

/* Fills a fresh slots[] of nslots (a power of two) from the entries. */
static int rehash(nlp_vocab *v, size_t nslots)
{
    long *slots = nlp_malloc(nslots * sizeof *slots);
    if (!slots)
        return NLP_ENOMEM;
    memset(slots, 0xff, nslots * sizeof *slots);
    size_t mask = nslots - 1;
    for (long id = 0; id < v->n; id++) {
        size_t i = v->e[id].hash & mask;
        while (slots[i] >= 0)
            i = (i + 1) & mask;
        slots[i] = id;
    }
    nlp_free(v->slots);
    v->slots = slots;
    v->mask = mask;
    return NLP_OK;
}

/* The slot holding the word, or the empty slot where it would go. */
static size_t probe(const nlp_vocab *v, const char *s, size_t len, uint64_t h)
{
    size_t i = h & v->mask;
    for (;;) {
        long id = v->slots[i];
        if (id < 0)
            return i;
        const entry *en = &v->e[id];
        if (en->hash == h && en->len == len && memcmp(v->pool + en->off, s, len) == 0)
            return i;
        i = (i + 1) & v->mask;
    }
}

long nlp_vocab_find(const nlp_vocab *v, const char *s, size_t len)
{
    if (len > NLP_VOCAB_MAX_WORD)
        return -1;
    return v->slots[probe(v, s, len, hash_bytes(s, len))];
}

long nlp_vocab_find_str(const nlp_vocab *v, const char *s)
{
    return nlp_vocab_find(v, s, strlen(s));
}

long nlp_vocab_add_count(nlp_vocab *v, const char *s, size_t len, int64_t count)
{
    if (count < 0)
        return NLP_EINVAL;
    if (len > NLP_VOCAB_MAX_WORD)
        return NLP_ERANGE;
    /* total >= every count, so a total that fits means the word's count fits too */
    if (count > INT64_MAX - v->total)
        return NLP_ERANGE;
    uint64_t h = hash_bytes(s, len);
    size_t slot = probe(v, s, len, h);
    long id = v->slots[slot];
    if (id >= 0) {
        v->e[id].count += count;
        v->total += count;
        return id;
    }
    /* A new word: make room in entries, pool and table first. */
    if (v->n == v->cap) {
        long cap = v->cap ? v->cap * 2 : 256;
        entry *e = nlp_realloc(v->e, (size_t)cap * sizeof *e);
        if (!e)
            return NLP_ENOMEM;
        v->e = e;
        v->cap = cap;
    }
    if (v->pool_cap - v->pool_len < len + 1) {
        size_t cap = v->pool_cap * 2;
        while (cap - v->pool_len < len + 1)
            cap *= 2;
        char *p = nlp_realloc(v->pool, cap);
        if (!p)
            return NLP_ENOMEM;
        v->pool = p;
        v->pool_cap = cap;
    }
    if ((size_t)(v->n + 1) * 2 > v->mask + 1) {
        if (rehash(v, (v->mask + 1) * 2) != NLP_OK)
            return NLP_ENOMEM;
        slot = probe(v, s, len, h);
    }
    id = v->n++;
    entry *en = &v->e[id];
    en->off = v->pool_len;
    en->len = (uint32_t)len;
    en->count = count;
    en->hash = h;
    if (len)
        memcpy(v->pool + v->pool_len, s, len);
    v->pool[v->pool_len + len] = '\0';
    v->pool_len += len + 1;
    v->slots[slot] = id;
    v->total += count;
    return id;
}

long nlp_vocab_add(nlp_vocab *v, const char *s, size_t len)
{
    return nlp_vocab_add_count(v, s, len, 1);
}

/* ---- accessors -------------------------------------------------------- */

long nlp_vocab_size(const nlp_vocab *v)
{
    return v->n;
}

int64_t nlp_vocab_total(const nlp_vocab *v)
{
    return v->total;
}

const char *nlp_vocab_word(const nlp_vocab *v, long id)
{
    assert(id >= 0 && id < v->n);
    return v->pool + v->e[id].off;
}

size_t nlp_vocab_word_len(const nlp_vocab *v, long id)
{
    assert(id >= 0 && id < v->n);
    return v->e[id].len;
}

int64_t nlp_vocab_count(const nlp_vocab *v, long id)
{
    assert(id >= 0 && id < v->n);
    return v->e[id].count;
}

int nlp_vocab_set_count(nlp_vocab *v, long id, int64_t count)
{
    assert(id >= 0 && id < v->n);
    if (count < 0)
        return NLP_EINVAL;
    int64_t rest = v->total - v->e[id].count;   /* >= 0: total sums the counts */
    if (count > INT64_MAX - rest)
        return NLP_ERANGE;
    v->total = rest + count;
    v->e[id].count = count;
    return NLP_OK;
}

void nlp_vocab_pin(nlp_vocab *v)
{
    v->pinned = v->n;
}

long nlp_vocab_pinned(const nlp_vocab *v)
{
    return v->pinned;
}

/* ---- renumbering ------------------------------------------------------ */

/*
** Replaces the entries by keep[0..m-1] (old ids, in their new order),
** compacting the pool and rebuilding the table.  Allocates everything
** before changing v, so v is untouched on NLP_ENOMEM.
*/
static int renumber(nlp_vocab *v, const long *keep, long m)
{
    size_t bytes = 0;
    for (long i = 0; i < m; i++)
        bytes += (size_t)v->e[keep[i]].len + 1;
    size_t pool_cap = bytes > INITIAL_POOL ? bytes : INITIAL_POOL;
    size_t nslots = INITIAL_SLOTS;
    while ((size_t)m * 2 > nslots)
        nslots *= 2;
    entry *e = nlp_malloc((size_t)(m > 0 ? m : 1) * sizeof *e);
    char *pool = nlp_malloc(pool_cap);
    long *slots = nlp_malloc(nslots * sizeof *slots);
    if (!e || !pool || !slots) {
        nlp_free(e);
        nlp_free(pool);
        nlp_free(slots);
        return NLP_ENOMEM;
    }
    size_t off = 0;
    int64_t total = 0;   /* a subset of the counts: cannot exceed v->total */
    for (long i = 0; i < m; i++) {
        e[i] = v->e[keep[i]];
        memcpy(pool + off, v->pool + e[i].off, (size_t)e[i].len + 1);
        e[i].off = off;
        off += (size_t)e[i].len + 1;
        total += e[i].count;
    }
    nlp_free(v->e);
    nlp_free(v->pool);
    nlp_free(v->slots);
    v->e = e;
    v->n = m;
    v->cap = m > 0 ? m : 1;
    v->pool = pool;
    v->pool_len = off;
    v->pool_cap = pool_cap;
    v->slots = slots;
    v->mask = nslots - 1;
    memset(slots, 0xff, nslots * sizeof *slots);
    for (long id = 0; id < m; id++) {
        size_t i = e[id].hash & v->mask;
        while (slots[i] >= 0)
            i = (i + 1) & v->mask;
        slots[i] = id;
    }
    v->total = total;
    return NLP_OK;
}

/* Count descending; ties keep id order (the sort is stable). */
static int more_frequent(const void *ctx, long a, long b)
{
    const nlp_vocab *v = ctx;
    return v->e[a].count > v->e[b].count;
}

int nlp_vocab_sort(nlp_vocab *v)
{
    long n = v->n;
    long *ids = nlp_malloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
    long *tmp = nlp_malloc((size_t)(n > 0 ? n : 1) * sizeof *tmp);
    if (!ids || !tmp) {
        nlp_free(ids);
        nlp_free(tmp);
        return NLP_ENOMEM;
    }
    for (long i = 0; i < n; i++)
        ids[i] = i;
    nlp_sort_stable(ids + v->pinned, tmp, n - v->pinned, more_frequent, v);
    nlp_free(tmp);
    int rc = renumber(v, ids, n);
    nlp_free(ids);
    return rc;
}

long nlp_vocab_prune(nlp_vocab *v, int64_t min_count)
{
    long *ids = nlp_malloc((size_t)(v->n > 0 ? v->n : 1) * sizeof *ids);
    if (!ids)
        return NLP_ENOMEM;
    long m = 0;
    for (long i = 0; i < v->n; i++)
        if (i < v->pinned || v->e[i].count >= min_count)
            ids[m++] = i;
    long removed = v->n - m;
    int rc = removed ? renumber(v, ids, m) : NLP_OK;
    nlp_free(ids);
    return rc == NLP_OK ? removed : rc;
}

long nlp_vocab_truncate(nlp_vocab *v, long n)
{
    if (n < v->pinned)
        n = v->pinned;
    if (n >= v->n)
        return 0;
    long *ids = nlp_malloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
    if (!ids)
        return NLP_ENOMEM;
    for (long i = 0; i < n; i++)
        ids[i] = i;
    long removed = v->n - n;
    int rc = renumber(v, ids, n);
    nlp_free(ids);
    return rc == NLP_OK ? removed : rc;
}

/* ---- text files ------------------------------------------------------- */

int nlp_vocab_save(const nlp_vocab *v, FILE *f, const char *path, nlp_error *e)
{
    for (long id = 0; id < v->n; id++) {
        const entry *en = &v->e[id];
        const char *w = v->pool + en->off;
        if (memchr(w, '\n', en->len) || memchr(w, '\0', en->len))
            return nlp_error_set(e, NLP_EFORMAT, path, 0,
                                 "word %ld holds a newline or NUL byte and cannot be saved", id);
        if (fwrite(w, 1, en->len, f) != en->len
            || fprintf(f, " %lld\n", (long long)en->count) < 0)
            return nlp_error_set(e, NLP_EIO, path, 0, "write error: %s", strerror(errno));
    }
    if (fflush(f) != 0 || ferror(f))
        return nlp_error_set(e, NLP_EIO, path, 0, "write error: %s", strerror(errno));
    return NLP_OK;
}

/* Parses a whole non-negative decimal count; 0 on success. */
static int parse_count(const char *s, size_t n, int64_t *out)
{
    if (n == 0)
        return -1;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        int d = s[i] - '0';
        if (x > (INT64_MAX - d) / 10)   /* exact: INT64_MAX itself is read */
            return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

int nlp_vocab_load(nlp_vocab *v, FILE *f, const char *path, nlp_error *e)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = NLP_OK;
    /* Words listed so far, to refuse duplicates (pinned symbols may be listed once). */
    long first_new = v->n;
    unsigned char *seen_pinned = nlp_calloc((size_t)(v->n > 0 ? v->n : 1), 1);
    if (!seen_pinned)
        return nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
    errno = 0;
    while ((got = getline(&line, &cap, f)) != -1) {
        lineno++;
        size_t n = (size_t)got;
        if (n && line[n - 1] == '\n')
            n--;
        if (n && line[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        size_t sep = n;
        while (sep > 0 && line[sep - 1] != ' ' && line[sep - 1] != '\t')
            sep--;
        if (sep == 0) {
            rc = nlp_error_set(e, NLP_EFORMAT, path, lineno, "expected 'WORD COUNT'");
            break;
        }
        int64_t count;
        if (parse_count(line + sep, n - sep, &count) != 0) {
            rc = nlp_error_set(e, NLP_EFORMAT, path, lineno,
                               "bad count '%.*s' (expected a non-negative integer)",
                               (int)(n - sep > 40 ? 40 : n - sep), line + sep);
            break;
        }
        size_t wlen = sep - 1;
        if (wlen == 0) {
            rc = nlp_error_set(e, NLP_EFORMAT, path, lineno, "empty word");
            break;
        }
        long id = nlp_vocab_find(v, line, wlen);
        if (id >= 0 && (id >= first_new || seen_pinned[id])) {
            rc = nlp_error_set(e, NLP_EFORMAT, path, lineno, "word '%.*s' listed twice",
                               (int)(wlen > 60 ? 60 : wlen), line);
            break;
        }
        if (id >= 0) {
            if (nlp_vocab_set_count(v, id, count) != NLP_OK) {
                rc = nlp_error_set(e, NLP_ERANGE, path, lineno,
                                   "count %lld takes the total beyond %lld", (long long)count,
                                   (long long)INT64_MAX);
                break;
            }
            seen_pinned[id] = 1;
            continue;
        }
        id = nlp_vocab_add_count(v, line, wlen, count);
        if (id == NLP_ERANGE && wlen <= NLP_VOCAB_MAX_WORD) {
            rc = nlp_error_set(e, NLP_ERANGE, path, lineno,
                               "count %lld takes the total beyond %lld", (long long)count,
                               (long long)INT64_MAX);
            break;
        }
        if (id < 0) {
            rc = nlp_error_set(e, (int)id, path, lineno, NULL);
            break;
        }
    }
    if (rc == NLP_OK && ferror(f))
        rc = nlp_error_set(e, NLP_EIO, path, 0, "read error: %s", strerror(errno));
    free(line); /* getline allocates with malloc */
    nlp_free(seen_pinned);
    return rc;
}

int nlp_vocab_save_file(const nlp_vocab *v, const char *path, nlp_error *e)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return nlp_error_set(e, NLP_EIO, path, 0, "%s", strerror(errno));
    int rc = nlp_vocab_save(v, f, path, e);
    if (fclose(f) != 0 && rc == NLP_OK)
        rc = nlp_error_set(e, NLP_EIO, path, 0, "write error: %s", strerror(errno));
    return rc;
}

int nlp_vocab_load_file(nlp_vocab *v, const char *path, nlp_error *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return nlp_error_set(e, NLP_EIO, path, 0, "%s", strerror(errno));
    int rc = nlp_vocab_load(v, f, path, e);
    fclose(f);
    return rc;
}

/* ---- memory blobs ----------------------------------------------------- */

#define BLOB_MAGIC "NLPV"
#define BLOB_VERSION 1u
#define BLOB_HEADER (4 + 4 + 8 + 8)

static void put_u32(unsigned char *p, uint32_t x)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(x >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(x >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t x = 0;
    for (int i = 3; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

int nlp_vocab_to_blob(const nlp_vocab *v, unsigned char **out, size_t *n)
{
    size_t size = BLOB_HEADER;
    for (long id = 0; id < v->n; id++)
        size += 4 + 8 + v->e[id].len;
    unsigned char *b = nlp_malloc(size);
    if (!b)
        return NLP_ENOMEM;
    memcpy(b, BLOB_MAGIC, 4);
    put_u32(b + 4, BLOB_VERSION);
    put_u64(b + 8, (uint64_t)v->n);
    put_u64(b + 16, (uint64_t)v->pinned);
    unsigned char *p = b + BLOB_HEADER;
    for (long id = 0; id < v->n; id++) {
        const entry *en = &v->e[id];
        put_u32(p, en->len);
        put_u64(p + 4, (uint64_t)en->count);
        memcpy(p + 12, v->pool + en->off, en->len);
        p += 12 + en->len;
    }
    *out = b;
    *n = size;
    return NLP_OK;
}

int nlp_vocab_from_blob(const void *blob, size_t n, nlp_vocab **out, nlp_error *e)
{
    const unsigned char *b = blob;
    *out = NULL;
    if (n < BLOB_HEADER)
        return nlp_error_set(e, NLP_ETRUNCATED, NULL, 0, "vocabulary blob truncated");
    if (memcmp(b, BLOB_MAGIC, 4) != 0)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "not a vocabulary blob (bad magic)");
    if (get_u32(b + 4) != BLOB_VERSION)
        return nlp_error_set(e, NLP_EVERSION, NULL, 0, "vocabulary blob version %u not supported",
                             (unsigned)get_u32(b + 4));
    uint64_t size = get_u64(b + 8), pinned = get_u64(b + 16);
    /* Each word takes at least 12 bytes: a larger size is a lie. */
    if (size > (n - BLOB_HEADER) / 12 || pinned > size)
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "vocabulary blob has a bad word count");
    nlp_vocab *v;
    int rc = nlp_vocab_new(&v);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc, NULL, 0, NULL);
    size_t pos = BLOB_HEADER;
    for (uint64_t i = 0; i < size; i++) {
        if (n - pos < 12) {
            nlp_vocab_free(v);
            return nlp_error_set(e, NLP_ETRUNCATED, NULL, 0, "vocabulary blob truncated at word %llu",
                                 (unsigned long long)i);
        }
        uint32_t len = get_u32(b + pos);
        uint64_t count = get_u64(b + pos + 4);
        pos += 12;
        if (n - pos < len) {
            nlp_vocab_free(v);
            return nlp_error_set(e, NLP_ETRUNCATED, NULL, 0, "vocabulary blob truncated at word %llu",
                                 (unsigned long long)i);
        }
        if (count > INT64_MAX) {
            nlp_vocab_free(v);
            return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "vocabulary blob: bad count for word %llu",
                                 (unsigned long long)i);
        }
        /* A duplicate is refused before its count is added to anything. */
        if (nlp_vocab_find(v, (const char *)b + pos, len) >= 0) {
            nlp_vocab_free(v);
            return nlp_error_set(e, NLP_EFORMAT, NULL, 0,
                                 "vocabulary blob: duplicate word at word %llu",
                                 (unsigned long long)i);
        }
        long id = nlp_vocab_add_count(v, (const char *)b + pos, len, (int64_t)count);
        if (id < 0) {
            nlp_vocab_free(v);
            if (id == NLP_ERANGE && len <= NLP_VOCAB_MAX_WORD)
                return nlp_error_set(e, NLP_ERANGE, NULL, 0,
                                     "vocabulary blob: counts sum beyond %lld at word %llu",
                                     (long long)INT64_MAX, (unsigned long long)i);
            return nlp_error_set(e, (int)id, NULL, 0, "vocabulary blob: %s at word %llu",
                                 nlp_error_string((int)id), (unsigned long long)i);
        }
        pos += len;
    }
    if (pos != n) {
        nlp_vocab_free(v);
        return nlp_error_set(e, NLP_EFORMAT, NULL, 0, "vocabulary blob has %zu trailing bytes", n - pos);
    }
    v->pinned = (long)pinned;
    *out = v;
    return NLP_OK;
}

int nlp_vocab_from_model(nlp_vocab **out, const nlp_model *f, const char *name,
                         const char *path, nlp_error *e)
{
    size_t n;
    const void *blob = nlp_model_blob(f, name, &n);
    if (!blob)
        return nlp_error_set(e, NLP_EFORMAT, path, 0, "no '%s' blob", name);
    nlp_error ve;
    nlp_error_clear(&ve);
    int rc = nlp_vocab_from_blob(blob, n, out, &ve);
    if (rc != NLP_OK)
        return nlp_error_set(e, rc == NLP_ENOMEM ? rc : NLP_EFORMAT, path, 0, "bad '%s': %s",
                             name, ve.text);
    return NLP_OK;
}
