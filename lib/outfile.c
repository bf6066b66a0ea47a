/*
** outfile: output files that appear whole or not at all (see
** nlp/outfile.h for what happens to which kind of destination).
**
** The stream handed to the caller is a stdio cookie stream over the file
** descriptor rather than fdopen(): its write function keeps the errno of
** the first failed write(2), so commit reports the real reason ("No space
** left on device") however many stdio calls came after it, and it drops
** everything written after a failure or once the file is abandoned.
*/
#include "nlp/outfile.h"
#include "nlp/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_ATTEMPTS 100   /* temporary names N = 0..99 tried (another writer may hold one) */
#define MAX_LINKS 40       /* symbolic links followed, as the kernel's path walk allows */
#define LINK_MAX_LEN 65536 /* longest symbolic link text read */

struct nlp_outfile {
    char *path;     /* the name the caller gave, for messages */
    char *target;   /* what is replaced: path, or the file its symbolic links name */
    char *dir;      /* target's directory ("." when target has no slash) */
    char *tmp;      /* the temporary beside target; NULL when written in place */
    int direct;     /* a device, FIFO or socket: written in place */
    int keep_mode;  /* target exists: give the new file its permission bits */
    mode_t mode;
    int fd;         /* the temporary, or the device; -1 when closed */
    FILE *f;        /* cookie stream over fd */
    int err;        /* errno of the first failed write; ECANCELED once abandoned */
};

/* ==== Destination ======================================================= */

/* The text of symbolic link p (size_hint from lstat; 0 on some file
** systems) in *out: 0, or an errno value. */
static int read_link(const char *p, size_t size_hint, char **out)
{
    size_t n = size_hint < 64 ? 64 : size_hint + 1;
    for (;;) {
        char *b = nlp_malloc(n);
        if (!b)
            return ENOMEM;
        ssize_t k = readlink(p, b, n);
        if (k < 0) {
            int err = errno;
            nlp_free(b);
            return err;
        }
        if ((size_t)k < n) {   /* not cut short: the whole text */
            b[k] = '\0';
            *out = b;
            return 0;
        }
        nlp_free(b);
        if (n >= LINK_MAX_LEN)
            return ENAMETOOLONG;
        n *= 2;
    }
}

/*
** Replaces *target by the name its chain of symbolic links ends at (a
** relative link is read from the link's directory), so the rename replaces
** the file and the link stays.  The last name need not exist (a link to a
** file not yet written).  Directories along the way are left as they are:
** the temporary goes beside the final name either way.  0 or an errno.
*/
static int follow_links(char **target)
{
    for (int hops = 0;; hops++) {
        struct stat st;
        if (lstat(*target, &st) != 0 || !S_ISLNK(st.st_mode))
            return 0;
        if (hops == MAX_LINKS)
            return ELOOP;
        char *link = NULL;
        int err = read_link(*target, (size_t)st.st_size, &link);
        if (err)
            return err;
        const char *slash = strrchr(*target, '/');
        char *next = link;
        if (link[0] != '/' && slash) {
            size_t dn = (size_t)(slash - *target) + 1, ln = strlen(link);
            next = nlp_malloc(dn + ln + 1);
            if (!next) {
                nlp_free(link);
                return ENOMEM;
            }
            memcpy(next, *target, dn);
            memcpy(next + dn, link, ln + 1);
            nlp_free(link);
        }
        nlp_free(*target);
        *target = next;
    }
}

/* Directory part of path ("." when none, "/" at the root), malloc'ed. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return nlp_strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = nlp_malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

/*
** Fills o's path, target, dir, direct, keep_mode and mode for writing to
** path.  NLP_EINVAL for no name; NLP_EIO for a directory, an existing file
** the effective user may not write, or a name that cannot be looked up
** (ENOTDIR, EACCES, ELOOP ...); NLP_ENOMEM.
*/
static int resolve(nlp_outfile *o, const char *path, nlp_error *e)
{
    if (!path || !path[0])
        return nlp_error_set(e, NLP_EINVAL, path, 0, "no output file name");
    struct stat st;
    int exists = 0;
    if (stat(path, &st) == 0) {
        exists = 1;
        if (S_ISDIR(st.st_mode))
            return nlp_error_set(e, NLP_EIO, path, 0, "%s", strerror(EISDIR));
        if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) != 0)
            return nlp_error_set(e, NLP_EIO, path, 0, "%s", strerror(errno));
        o->direct = !S_ISREG(st.st_mode);
        o->mode = st.st_mode & 0777;
    } else if (errno != ENOENT) {
        return nlp_error_set(e, NLP_EIO, path, 0, "%s", strerror(errno));
    }
    if (!(o->path = nlp_strdup(path)) || !(o->target = nlp_strdup(path)))
        return nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
    if (o->direct)
        return NLP_OK;   /* opened by its name: open() follows the links */
    o->keep_mode = exists;
    int err = follow_links(&o->target);
    if (err == ENOMEM)
        return nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
    if (err)
        return nlp_error_set(e, NLP_EIO, path, 0, "%s", strerror(err));
    if (!(o->dir = dir_of(o->target)))
        return nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
    return NLP_OK;
}

/* Creates o->tmp, the temporary TARGET.tmpPID.N beside o->target, and
** opens it in o->fd.  NLP_EIO (or NLP_ENOMEM) naming o->path. */
static int create_tmp(nlp_outfile *o, nlp_error *e)
{
    size_t tn = strlen(o->target) + 64;   /* ".tmp" PID "." N fit in 64 */
    if (!(o->tmp = nlp_malloc(tn)))
        return nlp_error_set(e, NLP_ENOMEM, o->path, 0, NULL);
    for (int n = 0; n < TMP_ATTEMPTS && o->fd < 0; n++) {
        snprintf(o->tmp, tn, "%s.tmp%ld.%d", o->target, (long)getpid(), n);
        o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (o->fd < 0 && errno != EEXIST)
            break;
    }
    if (o->fd < 0) {
        int err = errno;
        nlp_free(o->tmp);
        o->tmp = NULL;   /* not ours: never unlinked */
        return nlp_error_set(e, NLP_EIO, o->path, 0, "cannot create a temporary file: %s",
                             strerror(err));
    }
    return NLP_OK;
}

/* ==== Stale temporaries ================================================= */

/* The PID in name when name is base ".tmp" PID "." N exactly (decimal
** digits, PID at most INT_MAX), else -1. */
static long temporary_pid(const char *name, const char *base, size_t bl)
{
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp", 4) != 0)
        return -1;
    const char *p = name + bl + 4;
    long pid = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        pid = pid * 10 + (*p - '0');
        if (pid > INT_MAX)
            return -1;
    }
    if (*p++ != '.' || *p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9')
        p++;
    return *p ? -1 : pid;
}

/*
** Removes the temporaries of o->target that killed writers left behind:
** regular files of exactly the name TARGET.tmpPID.N whose PID is no live
** process.  A live process's file (its write may be running: kill(PID, 0)
** succeeds or fails with EPERM) and this process's own are kept.  Best
** effort: an error only means a file stays.
*/
static void remove_stale(const nlp_outfile *o)
{
    const char *slash = strrchr(o->target, '/');
    const char *base = slash ? slash + 1 : o->target;
    size_t bl = strlen(base);
    if (bl == 0)
        return;
    int dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    pid_t self = getpid();
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long pid = temporary_pid(de->d_name, base, bl);
        if (pid <= 0 || pid == (long)self)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            (void)unlinkat(dfd, de->d_name, 0);
    }
    closedir(d);
}

/* ==== The stream ======================================================== */

/* stdio's write function: everything or the first error, kept in o->err
** (a short count is how stdio learns of it; errno carries the reason). */
static ssize_t stream_write(void *cookie, const char *buf, size_t n)
{
    nlp_outfile *o = cookie;
    size_t done = 0;
    while (!o->err && done < n) {
        ssize_t k = write(o->fd, buf + done, n - done);
        if (k > 0)
            done += (size_t)k;
        else if (k < 0 && errno == EINTR)
            continue;
        else
            o->err = k < 0 ? errno : EIO;
    }
    if (o->err)
        errno = o->err;
    return (ssize_t)done;
}

/* Frees what o holds: the stream (its buffer dropped), the descriptor, the
** temporary (removed) and the names; not o itself. */
static void release(nlp_outfile *o)
{
    if (o->f) {
        if (!o->err)
            o->err = ECANCELED;   /* the buffered rest is not written */
        fclose(o->f);
    }
    if (o->fd >= 0)
        close(o->fd);
    if (o->tmp)
        unlink(o->tmp);
    nlp_free(o->tmp);
    nlp_free(o->dir);
    nlp_free(o->target);
    nlp_free(o->path);
}

/* ==== Public API ======================================================== */

int nlp_outfile_check(const char *path, nlp_error *e)
{
    nlp_outfile o = { .fd = -1 };
    int rc = resolve(&o, path, e);
    /* The one sure test that the directory takes a new file: make one.
    ** (A device is not opened: a FIFO would wait for its reader.) */
    if (rc == NLP_OK && !o.direct)
        rc = create_tmp(&o, e);
    release(&o);
    return rc;
}

int nlp_outfile_new(nlp_outfile **out, const char *path, nlp_error *e)
{
    *out = NULL;
    nlp_outfile *o = nlp_calloc(1, sizeof *o);
    if (!o)
        return nlp_error_set(e, NLP_ENOMEM, path, 0, NULL);
    o->fd = -1;
    int rc = resolve(o, path, e);
    if (rc == NLP_OK && o->direct) {
        o->fd = open(o->target, O_WRONLY | O_TRUNC | O_NOCTTY | O_CLOEXEC);
        if (o->fd < 0)
            rc = nlp_error_set(e, NLP_EIO, path, 0, "%s", strerror(errno));
    } else if (rc == NLP_OK) {
        remove_stale(o);
        rc = create_tmp(o, e);
    }
    if (rc == NLP_OK) {
        cookie_io_functions_t io = { .write = stream_write };
        if (!(o->f = fopencookie(o, "w", io))) {
            int err = errno;
            rc = nlp_error_set(e, err == ENOMEM ? NLP_ENOMEM : NLP_EIO, path, 0, "%s",
                               strerror(err));
        }
    }
    if (rc != NLP_OK) {
        nlp_outfile_free(o);
        return rc;
    }
    *out = o;
    return NLP_OK;
}

FILE *nlp_outfile_stream(nlp_outfile *o)
{
    return o->f;
}

int nlp_outfile_commit(nlp_outfile *o, nlp_error *e)
{
    const char *what = "write error";
    int err = 0;
    if (fflush(o->f) != 0 || ferror(o->f))
        err = o->err ? o->err : EIO;
    fclose(o->f);   /* nothing left to write: only frees the stream */
    o->f = NULL;
    /* The permissions before the sync, so they are as durable as the data;
    ** the data on disk before the name points at it. */
    if (!err && o->tmp && o->keep_mode && fchmod(o->fd, o->mode) != 0) {
        err = errno;
        what = "cannot keep the permissions";
    }
    if (!err && o->tmp && fsync(o->fd) != 0) {
        err = errno;
        what = "cannot sync";
    }
    int fd = o->fd;
    o->fd = -1;
    /* (Some network file systems report a failed write only here; EINTR
    ** still closes the descriptor on Linux.) */
    if (close(fd) != 0 && !err && errno != EINTR)
        err = errno;
    if (!err && o->tmp && rename(o->tmp, o->target) != 0) {
        err = errno;
        what = "cannot rename the temporary file into place";
    }
    if (err) {
        int rc = nlp_error_set(e, NLP_EIO, o->path, 0, "%s: %s", what, strerror(err));
        nlp_outfile_free(o);
        return rc;
    }
    if (o->tmp) {
        nlp_free(o->tmp);
        o->tmp = NULL;   /* renamed: nothing to remove */
        /* Make the rename durable.  The new file is in place already; a
        ** directory that cannot be synced is not a failed write. */
        int dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    nlp_outfile_free(o);
    return NLP_OK;
}

void nlp_outfile_free(nlp_outfile *o)
{
    if (!o)
        return;
    release(o);
    nlp_free(o);
}
