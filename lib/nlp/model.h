/*
** model: the one binary model file format of every libnlp tool.
**
** A model file is self-describing: it names the tool that wrote it (its
** "kind", e.g. "charlm"), carries key/value metadata (hyperparameters, the
** command line, the library version), named float32 tensors with their
** shapes, and optional raw blobs (e.g. a serialised vocabulary).  Every
** field is fixed-width little-endian regardless of the host, so a model
** moves between machines; a CRC-32 over the whole file catches corruption.
**
** Layout of format version 1 (all integers little-endian):
**
**   offset  size  field
**   0       8     magic "NLPMODEL"
**   8       4     u32 format version (NLP_MODEL_FORMAT_VERSION)
**   12      4     u32 flags, 0
**   16      8     u64 total file size in bytes, CRC included
**   24            str kind                 (str = u32 length + bytes, no NUL)
**                 u32 nmeta,    nmeta    x { str key, str value }
**                 u32 ntensors, ntensors x { str name, u32 ndim (1..8),
**                                           u64 dim[ndim], f32 data[prod] }
**                 u32 nblobs,   nblobs   x { str name, u64 size, bytes }
**   size-4  4     u32 CRC-32 (IEEE, as zlib's crc32()) of bytes [0, size-4)
**
** Loading checks, in this order: magic (NLP_EFORMAT "not a libnlp model
** file"; a file that is a proper prefix of the magic, e.g. empty, is
** NLP_ETRUNCATED), format version (NLP_EVERSION when newer than this
** library), declared size against the real size (NLP_ETRUNCATED when
** shorter, NLP_EFORMAT when longer), CRC (NLP_ECHECKSUM), structure
** (NLP_EFORMAT: also a duplicate name, and a NaN or infinite tensor
** element, which no usable model holds), then kind (NLP_EKIND).  Lengths
** and counts are checked against the bytes that remain before anything is
** allocated, so a corrupt field can neither make the loader allocate
** absurd amounts nor read out of bounds.  Loading takes time linear in the
** file size (names are found through a hash index).  Every error message
** names the file.
**
** A loader that sizes its parameters from metadata (hidden=4096) checks
** the shapes it is about to allocate against the tensors the file holds
** first -- nlp_model_check_params() on an nlp_params still in its layout
** phase, or nlp_model_check_tensor() per tensor -- so a small file that
** claims a huge model is refused before the allocation, not after.
**
** Saving is atomic, as every file libnlp writes by name (nlp/outfile.h):
** the file is written to a temporary file in the same directory
** ("PATH.tmpPID.N"), flushed and fsync()ed, renamed over the target, and
** the directory is fsync()ed.  On any failure the temporary file is
** removed and an existing model at that path is left untouched.  A
** symbolic link is followed (the file it names is replaced), an existing
** file keeps its permissions, and /dev/null is written in place.  A
** process killed during a save cannot remove its temporary file, so each
** save first removes the "PATH.tmpPID.N" files whose process PID no
** longer exists (kill(PID, 0) fails with ESRCH).  (Only processes of this
** machine and PID namespace are seen: do not let savers on two machines
** share one directory through a network file system.)
**
** Writing:
**     rc = nlp_model_new(&m, "charlm");
**     nlp_model_set_meta(m, "hidden", "256");
**     nlp_model_add_tensor(m, "params", p->w, 1, (size_t[]){p->n});
**     nlp_model_add_blob(m, "vocab", buf, len);
**     rc = nlp_model_save(m, "dante.model", &err);
**     nlp_model_free(m);
** Reading:
**     rc = nlp_model_load(&m, "dante.model", "charlm", &err);
**     rc = nlp_model_meta_long(m, "hidden", &hidden, &err);
**     rc = nlp_model_check_tensor(m, "params", 1, (size_t[]){n}, &err);
**     ... only now allocate p->w of n floats ...
**     rc = nlp_model_read_tensor(m, "params", p->w, 1, (size_t[]){n}, &err);
**     blob = nlp_model_blob(m, "vocab", &len);
*/
#ifndef NLP_MODEL_H
#define NLP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <nlp/error.h>
#include <nlp/optim.h>
#include <nlp/params.h>

#define NLP_MODEL_MAGIC "NLPMODEL"
#define NLP_MODEL_FORMAT_VERSION 1u
#define NLP_MODEL_MAX_DIMS 8

/* Key under which nlp_model_save() records nlp_version() unless set. */
#define NLP_MODEL_META_LIBVERSION "libnlp.version"

typedef struct nlp_model nlp_model;

/* ---- building and saving ---- */

/*
** Sets *out to an empty model of the given kind (copied; non-empty) and
** returns NLP_OK; the caller owns it and frees it with nlp_model_free().
** Returns NLP_EINVAL when kind is NULL or empty, NLP_ENOMEM when out of
** memory; *out is NULL on failure.
*/
int nlp_model_new(nlp_model **out, const char *kind);

/* Frees m and everything it owns (not the data added by pointer); NULL is a
** no-op. */
void nlp_model_free(nlp_model *m);

/*
** Sets metadata key to value (both copied; a key set twice keeps the last
** value).  Keys are non-empty.  Returns NLP_OK, NLP_ENOMEM or NLP_EINVAL.
*/
int nlp_model_set_meta(nlp_model *m, const char *key, const char *value);

/* nlp_model_set_meta with value printed as "%ld" / "%.17g" (round-trips). */
int nlp_model_set_meta_long(nlp_model *m, const char *key, long value);
/* As nlp_model_set_meta_long for an unsigned 64-bit value (seeds, sizes). */
int nlp_model_set_meta_u64(nlp_model *m, const char *key, uint64_t value);
int nlp_model_set_meta_double(nlp_model *m, const char *key, double value);

/*
** Sets the key/value pairs of pairs (key, value, key, value, ..., NULL),
** a NULL value as "" (the extra metadata the savers take from a tool);
** NULL pairs set nothing.  Stops at the first error: NLP_ENOMEM or
** NLP_EINVAL (an empty key), as nlp_model_set_meta.
*/
int nlp_model_set_meta_pairs(nlp_model *m, const char *const *pairs);

/*
** Adds a tensor named name (copied) of ndim (1..NLP_MODEL_MAX_DIMS)
** dimensions shape[] (copied; every dim > 0) whose data is NOT copied: data
** (prod(shape) floats) must stay valid and unchanged until nlp_model_save()
** or nlp_model_free().  Returns NLP_OK, NLP_ENOMEM, or NLP_EINVAL (bad
** shape, or a tensor of that name already exists).
*/
int nlp_model_add_tensor(nlp_model *m, const char *name, const float *data,
                         int ndim, const size_t *shape);

/*
** Adds a blob of n bytes named name (copied); data is NOT copied and must
** stay valid until nlp_model_save() or nlp_model_free() (n may be 0).
** Returns NLP_OK, NLP_ENOMEM, or NLP_EINVAL (duplicate name).
*/
int nlp_model_add_blob(nlp_model *m, const char *name, const void *data, size_t n);

/*
** Stores an optimiser's state for resuming training: metadata "optim.kind",
** "optim.step", "optim.n" and tensors "optim.m" / "optim.v" (those that
** exist), added by pointer (o must outlive the save).  Returns NLP_OK,
** NLP_ENOMEM or NLP_EINVAL.
*/
int nlp_model_add_optim(nlp_model *m, const nlp_optim *o);

/*
** Adds every view of p (allocated) as a tensor of the same name and shape,
** by pointer into p->data (p must outlive the save).  Returns NLP_OK,
** NLP_ENOMEM, or NLP_EINVAL (p not allocated, or a name already used).
*/
int nlp_model_add_params(nlp_model *m, const nlp_params *p);

/*
** Writes m atomically to path (see the top of this file).  Adds the
** metadata NLP_MODEL_META_LIBVERSION = nlp_version() unless already set.
** Returns NLP_OK, or NLP_EINVAL (no path), NLP_EIO (with the system's
** reason and path in e: a directory, a read-only file, a failed write,
** sync or rename, as nlp_outfile_commit says) or NLP_ENOMEM; on failure no
** temporary file is left behind and a previous file at path is unchanged.  Also removes stale temporary files of
** earlier saves to path by processes that no longer exist (see the top of
** this file; best effort: what cannot be removed is left).  A loaded
** model can be saved again.
*/
int nlp_model_save(nlp_model *m, const char *path, nlp_error *e);

/*
** The end every model's saver shares, after nlp_model_new(&m, KIND) and
** the model's own metadata, tensors and blobs, whose status is rc: when
** rc is NLP_OK, sets the tool's extra metadata pairs (as
** nlp_model_set_meta_pairs; NULL: none), adds the views of params (NULL:
** none) and writes m to path as nlp_model_save; otherwise records rc in e
** for path.  Always frees m (NULL, after a failed nlp_model_new, is
** allowed).  Returns NLP_OK or the first error (rc itself when it is not
** NLP_OK); on failure no file is written and a previous one is unchanged.
*/
int nlp_model_finish_save(nlp_model *m, int rc, const char *const *meta,
                          const nlp_params *params, const char *path, nlp_error *e);

/*
** The serialised bytes of m (what nlp_model_save writes) in a malloc'ed
** buffer the caller frees; *n gets its size.  Returns NLP_OK or NLP_ENOMEM.
*/
int nlp_model_to_buffer(nlp_model *m, unsigned char **buf, size_t *n);

/* ---- loading and reading ---- */

/*
** Loads the model file path into *out (a new model; free with
** nlp_model_free).  kind: the kind the caller expects, or NULL to accept
** any.  Returns NLP_OK, or NLP_EIO, NLP_ENOMEM, NLP_EFORMAT,
** NLP_ETRUNCATED, NLP_ECHECKSUM, NLP_EVERSION or NLP_EKIND with the message
** and path in e; *out is NULL on failure.  A tensor holding a NaN or an
** infinity is NLP_EFORMAT "FILE: tensor 'x' holds a non-finite value (nan
** at element 17 of 96): the model is unusable", so every tensor of a
** loaded model is finite.
*/
int nlp_model_load(nlp_model **out, const char *path, const char *kind, nlp_error *e);

/*
** As nlp_model_load, from the n bytes at buf (not kept); name is used in
** error messages as the file name (may be NULL).
*/
int nlp_model_load_buffer(nlp_model **out, const void *buf, size_t n,
                          const char *name, const char *kind, nlp_error *e);

/* The model's kind. */
const char *nlp_model_kind(const nlp_model *m);

/* The value of metadata key, or NULL when absent.  Owned by m. */
const char *nlp_model_meta(const nlp_model *m, const char *key);

/*
** Metadata key parsed as a whole integer / finite real into *value.
** Returns NLP_OK, or NLP_EFORMAT (absent, or not a number) with a message
** naming the file and key in e.
*/
int nlp_model_meta_long(const nlp_model *m, const char *key, long *value, nlp_error *e);
int nlp_model_meta_double(const nlp_model *m, const char *key, double *value, nlp_error *e);

/*
** The range-checked readers every loader uses for a number that sizes or
** indexes anything: metadata key as a whole number in [lo, hi] (long) or
** [0, max] (unsigned 64-bit, plain decimal digits only, no sign), into
** *value.  Returns NLP_OK, or NLP_EFORMAT (absent, not a number, out of
** range) with a message naming the file, key, value and range; *value is
** then unchanged.
*/
int nlp_model_meta_range(const nlp_model *m, const char *key, long lo, long hi, long *value,
                         nlp_error *e);
int nlp_model_meta_u64(const nlp_model *m, const char *key, uint64_t max, uint64_t *value,
                       nlp_error *e);

/* Number of metadata entries, and entry i (0-based, in insertion/file
** order) for listing; returns NLP_EINVAL when i is out of range. */
size_t nlp_model_meta_count(const nlp_model *m);
int nlp_model_meta_at(const nlp_model *m, size_t i, const char **key, const char **value);

/*
** Copies tensor name into dst (prod(shape) floats) after checking that it
** exists and has exactly ndim dimensions equal to shape[].  Returns NLP_OK,
** or NLP_EFORMAT with "FILE: tensor 'x' has shape [2,3], expected [3,3]"
** (or "... has no tensor 'x'") in e.
*/
int nlp_model_read_tensor(const nlp_model *m, const char *name, float *dst,
                          int ndim, const size_t *shape, nlp_error *e);

/*
** Checks, without copying or allocating anything, that tensor name exists
** and has exactly ndim dimensions equal to shape[] -- what a loader calls
** BEFORE it allocates memory sized from the model's metadata.  Returns
** NLP_OK, or NLP_EFORMAT with the same message as nlp_model_read_tensor.
*/
int nlp_model_check_tensor(const nlp_model *m, const char *name, int ndim,
                           const size_t *shape, nlp_error *e);

/*
** Read-only access to tensor name without copying: returns its data (owned
** by m) and sets *ndim and *shape (owned by m; either pointer may be NULL),
** or returns NULL when absent.
*/
const float *nlp_model_tensor(const nlp_model *m, const char *name,
                              int *ndim, const size_t **shape);

/* Number of tensors and the name of tensor i (NULL when out of range). */
size_t nlp_model_tensor_count(const nlp_model *m);
const char *nlp_model_tensor_name(const nlp_model *m, size_t i);

/* Blob name (owned by m) and its size in *n (n may be NULL); NULL when
** absent.  An empty blob gives a non-NULL pointer and *n == 0. */
const void *nlp_model_blob(const nlp_model *m, const char *name, size_t *n);

/*
** Checks that every view p declares has a tensor of the same name and
** shape in m (nlp_model_check_tensor), allocating nothing.  p may be in
** its layout phase: this is the check to make between declaring a model's
** layers and nlp_params_alloc(), so the allocation is only made for
** shapes the file really holds (and so is bounded by the file's size).
** Tensors in m that p does not declare are ignored.  Returns NLP_OK,
** NLP_EINVAL (p NULL) or NLP_EFORMAT naming the first missing or
** misshapen tensor in e.
*/
int nlp_model_check_params(const nlp_model *m, const nlp_params *p, nlp_error *e);

/*
** Fills every view of p (allocated) from the tensor of the same name,
** after checking all of them (nlp_model_check_params): on failure p's
** data is unchanged.  Tensors in m that p does not declare are ignored.
** Returns NLP_OK, NLP_EINVAL (p not allocated) or NLP_EFORMAT naming the
** first missing or misshapen tensor in e.
*/
int nlp_model_read_params(const nlp_model *m, nlp_params *p, nlp_error *e);

/*
** Restores an optimiser's state saved with nlp_model_add_optim into o,
** which must have been created with the same kind and parameter count.
** Returns NLP_OK, or NLP_EFORMAT with a message (state absent or not
** matching o) in e.
*/
int nlp_model_read_optim(const nlp_model *m, nlp_optim *o, nlp_error *e);

#endif
