/*
** Unit tests for outfile, the one way libnlp writes a file by name.  The
** focus of this file is what each kind of destination and each failure
** leaves behind: a new file, a replaced file (permissions kept, untouched
** until commit), symbolic links (followed, also dangling ones and chains;
** a loop refused), devices and FIFOs (written in place, never replaced),
** the checks before long work, giving up, a full disk, a failing fsync,
** fchmod or rename (this program defines its own, which the library's
** calls resolve to), a writer killed half way, the temporaries of dead
** writers (removed by the exact rules, nothing else touched), and every
** allocation failing in turn.  After any failure the previous file is byte
** for byte what it was and no temporary is left.
** (The vectors-specific regression issue11-8 is in test_w2v.c; model
** saves, which use this module, are tested in test_model.c/test_faults.c.)
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include "nlp.h"
#include "nlp/alloc.h"
#include "nlp/outfile.h"

/* ---- the I/O shim: fsync, fchmod and rename that fail on demand ---------- */

static long fsync_calls, fail_fsync_at;   /* the fail_fsync_at-th call fails (0: none) */
static int fail_fsync_errno = EIO, fail_rename, fail_fchmod;   /* errno to fail with */

int fsync(int fd);
int fchmod(int fd, mode_t mode);
int rename(const char *from, const char *to);

int fsync(int fd)
{
    if (++fsync_calls == fail_fsync_at) {
        errno = fail_fsync_errno;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

int fchmod(int fd, mode_t mode)
{
    if (fail_fchmod) {
        errno = fail_fchmod;
        return -1;
    }
    return (int)syscall(SYS_fchmod, fd, mode);
}

int rename(const char *from, const char *to)
{
    if (fail_rename) {
        errno = fail_rename;
        return -1;
    }
    return renameat(AT_FDCWD, from, AT_FDCWD, to);
}

/* ---- helpers ------------------------------------------------------------- */

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_outfile.XXXXXX", base && *base ? base : "/tmp");
    umask(022);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char p[700];
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
                if (unlink(p) != 0) {
                    chmod(p, 0700);
                    remove_tree(p);
                }
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

/* The file's contents (NUL-terminated, malloc'ed) or NULL when it cannot be read. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Fails unless path holds exactly text. */
static void assert_file_is(const char *path, const char *text)
{
    char *got = slurp(path);
    if (!got)
        fail_msg("%s: cannot read", path);
    if (strcmp(got, text) != 0)
        fail_msg("%s holds '%s', want '%s'", path, got, text);
    free(got);
}

/* Entries of dir other than . and .. */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* Writes text to path through an outfile and commits: the commit's code. */
static int write_file(const char *path, const char *text, nlp_error *e)
{
    nlp_outfile *o;
    int rc = nlp_outfile_new(&o, path, e);
    if (rc != NLP_OK)
        return rc;
    fputs(text, nlp_outfile_stream(o));
    return nlp_outfile_commit(o, e);
}

/* A process id that does not exist: a child that has exited and been
** reaped (its id is not reused within the test's few milliseconds; checked). */
static pid_t dead_pid(void)
{
    for (int tries = 0; tries < 10; tries++) {
        pid_t c = fork();
        assert_true(c >= 0);
        if (c == 0)
            _exit(0);
        assert_int_equal(waitpid(c, NULL, 0), c);
        if (kill(c, 0) == -1 && errno == ESRCH)
            return c;
    }
    fail_msg("no dead process id found");
    return -1;
}

/* ---- new files and replacements ------------------------------------------ */

static void test_new_and_replace(void **state)
{
    (void)state;
    char path[512], tmp[600];
    path_in(path, sizeof path, "vec.txt");
    nlp_error e;
    nlp_outfile *o;

    /* A new file gets 0666 & ~umask, like any file a tool creates. */
    assert_int_equal(write_file(path, "first\n", &e), NLP_OK);
    assert_file_is(path, "first\n");
    assert_int_equal(mode_of(path), 0644);
    assert_int_equal(entries(tmpdir), 1);

    /* A replacement: written to PATH.tmpPID.0, the old file untouched until
    ** commit, then its permissions (not the umask's) on the new file. */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(nlp_outfile_new(&o, path, &e), NLP_OK);
    fputs("second\n", nlp_outfile_stream(o));
    fflush(nlp_outfile_stream(o));
    snprintf(tmp, sizeof tmp, "%s.tmp%ld.0", path, (long)getpid());
    assert_file_is(tmp, "second\n");
    assert_file_is(path, "first\n");
    assert_int_equal(entries(tmpdir), 2);
    assert_int_equal(fileno(nlp_outfile_stream(o)), -1);   /* no descriptor to fclose by mistake */
    assert_int_equal(nlp_outfile_commit(o, &e), NLP_OK);
    assert_file_is(path, "second\n");
    assert_int_equal(mode_of(path), 0640);
    assert_false(exists(tmp));
    assert_int_equal(entries(tmpdir), 1);

    /* Two writers of one path in one process take N = 0 and 1; the last
    ** commit wins and neither leaves a temporary. */
    nlp_outfile *o2;
    assert_int_equal(nlp_outfile_new(&o, path, &e), NLP_OK);
    assert_int_equal(nlp_outfile_new(&o2, path, &e), NLP_OK);
    snprintf(tmp, sizeof tmp, "%s.tmp%ld.1", path, (long)getpid());
    assert_true(exists(tmp));
    fputs("from o\n", nlp_outfile_stream(o));
    fputs("from o2\n", nlp_outfile_stream(o2));
    assert_int_equal(nlp_outfile_commit(o, &e), NLP_OK);
    assert_file_is(path, "from o\n");
    assert_int_equal(nlp_outfile_commit(o2, &e), NLP_OK);
    assert_file_is(path, "from o2\n");
    assert_int_equal(entries(tmpdir), 1);

    /* A big file through the stream's buffer, byte for byte. */
    assert_int_equal(nlp_outfile_new(&o, path, &e), NLP_OK);
    for (int i = 0; i < 20000; i++)
        fprintf(nlp_outfile_stream(o), "%d ", i);
    assert_int_equal(nlp_outfile_commit(o, &e), NLP_OK);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    for (int i = 0; i < 20000; i++) {
        int v = -1;
        assert_int_equal(fscanf(f, "%d", &v), 1);
        assert_int_equal(v, i);
    }
    fclose(f);
    unlink(path);
}

/* ---- checks before long work --------------------------------------------- */

static void test_check(void **state)
{
    (void)state;
    char path[512], sub[512], below[600], msg[1024];
    path_in(path, sizeof path, "out.txt");
    path_in(sub, sizeof sub, "no/such/dir/out.txt");
    snprintf(below, sizeof below, "%s/x", path);
    nlp_error e;
    nlp_outfile *o = (nlp_outfile *)1;

    assert_int_equal(nlp_outfile_check(path, &e), NLP_OK);
    assert_int_equal(entries(tmpdir), 0);   /* the probe is removed at once */
    assert_int_equal(nlp_outfile_check(NULL, &e), NLP_EINVAL);
    assert_int_equal(nlp_outfile_check("", &e), NLP_EINVAL);
    assert_int_equal(nlp_outfile_new(&o, "", &e), NLP_EINVAL);
    assert_null(o);

    /* A directory, in check and in new. */
    assert_int_equal(nlp_outfile_check(tmpdir, &e), NLP_EIO);
    assert_string_equal(e.file, tmpdir);
    assert_string_equal(e.text, "Is a directory");
    o = (nlp_outfile *)1;
    assert_int_equal(nlp_outfile_new(&o, tmpdir, &e), NLP_EIO);
    assert_null(o);
    assert_string_equal(e.text, "Is a directory");

    /* A missing directory; a name below a file. */
    assert_int_equal(nlp_outfile_check(sub, &e), NLP_EIO);
    nlp_error_format(&e, msg, sizeof msg);
    char want[1200];
    snprintf(want, sizeof want, "%s: cannot create a temporary file: No such file or directory", sub);
    assert_string_equal(msg, want);
    assert_int_equal(nlp_outfile_new(&o, sub, &e), NLP_EIO);
    assert_null(o);
    spit(path, "old\n");
    assert_int_equal(nlp_outfile_check(below, &e), NLP_EIO);
    assert_string_equal(e.file, below);
    assert_string_equal(e.text, "Not a directory");

    /* Permissions do not bind root; these run for other users only. */
    if (geteuid() != 0) {
        assert_int_equal(chmod(path, 0444), 0);
        assert_int_equal(nlp_outfile_check(path, &e), NLP_EIO);
        assert_string_equal(e.text, "Permission denied");
        assert_int_equal(nlp_outfile_new(&o, path, &e), NLP_EIO);
        assert_null(o);
        assert_int_equal(chmod(path, 0644), 0);

        char ro[512], inro[600];
        path_in(ro, sizeof ro, "ro");
        snprintf(inro, sizeof inro, "%s/out.txt", ro);
        assert_int_equal(mkdir(ro, 0555), 0);
        assert_int_equal(nlp_outfile_check(inro, &e), NLP_EIO);
        assert_non_null(strstr(e.text, "Permission denied"));
        assert_int_equal(nlp_outfile_new(&o, inro, &e), NLP_EIO);
        assert_non_null(strstr(e.text, "Permission denied"));
        assert_int_equal(rmdir(ro), 0);
    }
    assert_file_is(path, "old\n");
    assert_int_equal(entries(tmpdir), 1);
    unlink(path);
}

/* ---- giving up and failing ------------------------------------------------ */

static void test_abandon(void **state)
{
    (void)state;
    char path[512];
    path_in(path, sizeof path, "kept.txt");
    nlp_error e;
    nlp_outfile *o;
    spit(path, "previous\n");

    assert_int_equal(nlp_outfile_new(&o, path, &e), NLP_OK);
    for (int i = 0; i < 10000; i++)   /* more than the stream buffers */
        fputs("half a file ", nlp_outfile_stream(o));
    assert_int_equal(entries(tmpdir), 2);
    nlp_outfile_free(o);
    assert_file_is(path, "previous\n");
    assert_int_equal(entries(tmpdir), 1);

    /* Abandoning a new name leaves nothing at all. */
    char fresh[512];
    path_in(fresh, sizeof fresh, "never.txt");
    assert_int_equal(nlp_outfile_new(&o, fresh, &e), NLP_OK);
    fputs("x", nlp_outfile_stream(o));
    nlp_outfile_free(o);
    assert_false(exists(fresh));
    assert_int_equal(entries(tmpdir), 1);
    nlp_outfile_free(NULL);
    unlink(path);
}

/* Commits "new\n" to path with the shim set up by the caller; the old file
** "old\n" must survive any failure and no temporary stay. */
static void failing_commit(const char *path, const char *want_text)
{
    nlp_error e;
    char msg[1024], want[1200];
    spit(path, "old\n");
    assert_int_equal(write_file(path, "new\n", &e), NLP_EIO);
    nlp_error_format(&e, msg, sizeof msg);
    snprintf(want, sizeof want, "%s: %s", path, want_text);
    assert_string_equal(msg, want);
    assert_file_is(path, "old\n");
    assert_int_equal(entries(tmpdir), 1);
}

static void test_failures_keep_old(void **state)
{
    (void)state;
    char path[512];
    path_in(path, sizeof path, "model");
    nlp_error e;

    /* The disk fills half way (a file size limit makes write(2) fail with
    ** EFBIG as a full disk does with ENOSPC): the first failure's reason,
    ** although many writes and a flush came after it. */
    struct rlimit saved, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    spit(path, "old\n");
    lim = saved;
    lim.rlim_cur = 1000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    nlp_outfile *o;
    assert_int_equal(nlp_outfile_new(&o, path, &e), NLP_OK);
    FILE *f = nlp_outfile_stream(o);
    int failed_at = -1;
    for (int i = 0; i < 5000; i++)
        if (fputs("0.123456 ", f) < 0 && failed_at < 0) {
            failed_at = i;
            assert_int_equal(errno, EFBIG);   /* the stream says why, too */
        }
    assert_true(failed_at > 0);
    assert_true(ferror(f));
    /* A later write that reaches the file says why as well (a writer
    ** checking ferror() and errno at its end reports the real reason). */
    static char block[3 * BUFSIZ];
    memset(block, 'x', sizeof block);
    errno = 0;
    assert_true(fwrite(block, 1, sizeof block, f) < sizeof block);
    assert_int_equal(errno, EFBIG);
    int rc = nlp_outfile_commit(o, &e);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, oldsig);
    assert_int_equal(rc, NLP_EIO);
    assert_string_equal(e.file, path);
    assert_string_equal(e.text, "write error: File too large");
    assert_file_is(path, "old\n");
    assert_int_equal(entries(tmpdir), 1);

    /* fsync of the file fails (as on NFS or a full thin-provisioned disk). */
    fsync_calls = 0;
    fail_fsync_at = 1;
    failing_commit(path, "cannot sync: Input/output error");
    assert_int_equal(fsync_calls, 1);
    fail_fsync_at = 0;

    /* The old file's permissions cannot be given to the new one. */
    fail_fchmod = EPERM;
    failing_commit(path, "cannot keep the permissions: Operation not permitted");
    fail_fchmod = 0;

    /* rename fails (e.g. a quota on a copy-on-write file system). */
    fail_rename = ENOSPC;
    failing_commit(path, "cannot rename the temporary file into place: No space left on device");
    fail_rename = 0;

    /* The directory's fsync, after the rename, may fail: the file is in
    ** place, which is what the caller needs to know. */
    fsync_calls = 0;
    fail_fsync_at = 2;
    assert_int_equal(write_file(path, "new\n", &e), NLP_OK);
    assert_int_equal(fsync_calls, 2);
    fail_fsync_at = 0;
    assert_file_is(path, "new\n");
    assert_int_equal(entries(tmpdir), 1);

    /* A writer killed half way: the previous file is intact, its temporary
    ** stays (nothing can remove it then) until the next writer's new. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        nlp_outfile *k;
        if (nlp_outfile_new(&k, path, NULL) != NLP_OK)
            _exit(1);
        for (int i = 0; i < 100000; i++)
            fputs("0.123456 ", nlp_outfile_stream(k));
        raise(SIGKILL);
        _exit(1);
    }
    int wst;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL);
    assert_file_is(path, "new\n");
    assert_int_equal(entries(tmpdir), 2);
    assert_int_equal(write_file(path, "after\n", &e), NLP_OK);
    assert_file_is(path, "after\n");
    assert_int_equal(entries(tmpdir), 1);
    unlink(path);
}

/* ---- stale temporaries ------------------------------------------------------ */

/*
** The temporaries of killed writers are removed by the next new() of the
** same target, and only those: regular files named exactly
** TARGET.tmpPID.N whose process is gone.  A live process's (its write may
** be running), this process's own, another target's, a name that does not
** have the exact pattern, a directory or a symbolic link of such a name
** stay.
*/
static void test_stale_temporaries(void **state)
{
    (void)state;
    char path[512], other[512];
    path_in(path, sizeof path, "x.model");
    path_in(other, sizeof other, "x.model2");
    pid_t dead = dead_pid(), dead2 = dead_pid();
    pid_t live = fork();
    assert_true(live >= 0);
    if (live == 0) {
        /* Off the test's output (a pipe may wait for it), and gone on its
        ** own should a failed assertion skip the kill below. */
        close(STDOUT_FILENO);
        close(STDERR_FILENO);
        alarm(60);
        pause();
        _exit(0);
    }
    enum { DEAD, LIVE, SELF, DEAD2, HUGE };
    static const struct { int who; const char *fmt; int removed; } cases[] = {
        { DEAD, "%s.tmp%ld.0", 1 },       /* dead: removed */
        { DEAD, "%s.tmp%ld.17", 1 },
        { DEAD2, "%s.tmp%ld.0", 1 },      /* another dead process */
        { LIVE, "%s.tmp%ld.0", 0 },       /* live child: kept */
        { SELF, "%s.tmp%ld.5", 0 },       /* this process: kept */
        { DEAD, "%s.tmp%ld.0x", 0 },      /* not the pattern */
        { DEAD, "%s.tmp%ld", 0 },
        { DEAD, "%s.tmp%ld.", 0 },
        { DEAD, "%s.tmp-%ld.0", 0 },
        { DEAD, "%s.tmp+%ld.0", 0 },
        { DEAD, "%s.bak%ld.0", 0 },
        { DEAD, "%s.tmp%ld.0.1", 0 },
        { HUGE, "%s.tmp%ld.0", 0 },       /* no PID is that large */
        { DEAD, "%s2.tmp%ld.0", 0 },      /* dead, but another target's */
    };
    enum { NC = sizeof cases / sizeof cases[0] };
    char names[NC][600];
    for (int c = 0; c < NC; c++) {
        long pid = cases[c].who == LIVE ? (long)live : cases[c].who == SELF ? (long)getpid() :
                   cases[c].who == DEAD2 ? (long)dead2 : cases[c].who == HUGE ? (long)INT_MAX + 1 :
                   (long)dead;
        snprintf(names[c], sizeof names[c], cases[c].fmt, path, pid);
        spit(names[c], "half a file");
    }
    /* A directory and a symbolic link of a dead process's name stay too. */
    char dirname[600], linkname[600];
    snprintf(dirname, sizeof dirname, "%s.tmp%ld.3", path, (long)dead);
    snprintf(linkname, sizeof linkname, "%s.tmp%ld.4", path, (long)dead);
    assert_int_equal(mkdir(dirname, 0700), 0);
    assert_int_equal(symlink(other, linkname), 0);
    spit(other, "the link's target\n");

    nlp_error e;
    assert_int_equal(nlp_outfile_check(path, &e), NLP_OK);   /* check removes nothing */
    for (int c = 0; c < NC; c++)
        assert_true(exists(names[c]));
    nlp_outfile *o;
    assert_int_equal(nlp_outfile_new(&o, path, &e), NLP_OK);
    for (int c = 0; c < NC; c++)
        if (exists(names[c]) == cases[c].removed)
            fail_msg("%s: %s", names[c], cases[c].removed ? "not removed" : "removed");
    assert_true(exists(dirname));
    assert_true(exists(linkname));
    assert_file_is(other, "the link's target\n");
    nlp_outfile_free(o);

    /* Once the live process has gone, the next writer removes its file. */
    kill(live, SIGKILL);
    assert_int_equal(waitpid(live, NULL, 0), live);
    assert_int_equal(write_file(path, "whole\n", &e), NLP_OK);
    assert_false(exists(names[3]));
    assert_true(exists(names[4]));

    /* Through a symbolic link, the rules apply to the file it names. */
    char link[512], viaold[600];
    path_in(link, sizeof link, "link.model");
    assert_int_equal(symlink("x.model", link), 0);
    snprintf(viaold, sizeof viaold, "%s.tmp%ld.0", path, (long)dead);
    spit(viaold, "half a file");
    assert_int_equal(write_file(link, "via the link\n", &e), NLP_OK);
    assert_false(exists(viaold));
    assert_file_is(path, "via the link\n");

    for (int c = 0; c < NC; c++)
        unlink(names[c]);
    rmdir(dirname);
    unlink(linkname);
    unlink(link);
    unlink(other);
    unlink(path);
    assert_int_equal(entries(tmpdir), 0);
}

/* ---- symbolic links ------------------------------------------------------------ */

static void test_symlinks(void **state)
{
    (void)state;
    char path[512], link[512], link2[512], abs_link[512], sub[512], deep[600], dangling[512],
        loop[512];
    path_in(path, sizeof path, "real.txt");
    path_in(link, sizeof link, "link.txt");
    path_in(link2, sizeof link2, "link2.txt");
    path_in(abs_link, sizeof abs_link, "abs.txt");
    path_in(sub, sizeof sub, "sub");
    snprintf(deep, sizeof deep, "%s/deep.txt", sub);
    path_in(dangling, sizeof dangling, "dangling.txt");
    path_in(loop, sizeof loop, "loop.txt");
    nlp_error e;
    struct stat st;

    /* A relative link: the file it names is replaced (keeping its
    ** permissions), the link stays a link. */
    spit(path, "old\n");
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(symlink("real.txt", link), 0);
    assert_int_equal(nlp_outfile_check(link, &e), NLP_OK);
    assert_int_equal(write_file(link, "through the link\n", &e), NLP_OK);
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_file_is(path, "through the link\n");
    assert_int_equal(mode_of(path), 0600);
    assert_int_equal(entries(tmpdir), 2);

    /* A chain of links, and an absolute one. */
    assert_int_equal(symlink("link.txt", link2), 0);
    assert_int_equal(write_file(link2, "through two\n", &e), NLP_OK);
    assert_file_is(path, "through two\n");
    assert_int_equal(symlink(path, abs_link), 0);
    assert_int_equal(write_file(abs_link, "absolute\n", &e), NLP_OK);
    assert_file_is(path, "absolute\n");
    assert_int_equal(entries(tmpdir), 4);

    /* A relative link in another directory is read from that directory;
    ** the temporary goes beside the target, so the rename stays in one
    ** directory. */
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(symlink("../real.txt", deep), 0);
    assert_int_equal(write_file(deep, "from below\n", &e), NLP_OK);
    assert_file_is(path, "from below\n");
    assert_int_equal(entries(sub), 1);
    unlink(deep);
    rmdir(sub);

    /* A link to a file not written yet: the file is created, as the shell's
    ** > does; a link to a missing directory fails naming the link. */
    assert_int_equal(symlink("created.txt", dangling), 0);
    assert_int_equal(nlp_outfile_check(dangling, &e), NLP_OK);
    assert_int_equal(write_file(dangling, "created\n", &e), NLP_OK);
    assert_int_equal(lstat(dangling, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_file_is(dangling, "created\n");
    char created[512];
    path_in(created, sizeof created, "created.txt");
    unlink(created);
    unlink(dangling);
    assert_int_equal(symlink("no/such/dir/x", dangling), 0);
    assert_int_equal(write_file(dangling, "x", &e), NLP_EIO);
    assert_string_equal(e.file, dangling);
    assert_non_null(strstr(e.text, "No such file or directory"));
    unlink(dangling);

    /* A loop is refused. */
    assert_int_equal(symlink("loop.txt", loop), 0);
    assert_int_equal(nlp_outfile_check(loop, &e), NLP_EIO);
    assert_string_equal(e.text, strerror(ELOOP));
    assert_int_equal(write_file(loop, "x", &e), NLP_EIO);
    unlink(loop);

    assert_file_is(path, "from below\n");
    unlink(abs_link);
    unlink(link2);
    unlink(link);
    unlink(path);
    assert_int_equal(entries(tmpdir), 0);
}

/* ---- devices and FIFOs ------------------------------------------------------------ */

static void test_devices(void **state)
{
    (void)state;
    nlp_error e;
    struct stat st;
    char msg[1024];

    /* /dev/null is written in place and stays a device. */
    assert_int_equal(nlp_outfile_check("/dev/null", &e), NLP_OK);
    assert_int_equal(write_file("/dev/null", "x\n", &e), NLP_OK);
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));

    /* /dev/full: the write fails on commit, with the reason. */
    if (access("/dev/full", W_OK) == 0) {
        assert_int_equal(write_file("/dev/full", "x\n", &e), NLP_EIO);
        nlp_error_format(&e, msg, sizeof msg);
        assert_string_equal(msg, "/dev/full: write error: No space left on device");
    }

    /* A FIFO: check does not open it (that would wait for a reader); new
    ** writes into it in place, and it is still a FIFO afterwards. */
    char fifo[512];
    path_in(fifo, sizeof fifo, "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(20);   /* a bug here would block, not fail */
    assert_int_equal(nlp_outfile_check(fifo, &e), NLP_OK);
    pid_t reader = fork();
    assert_true(reader >= 0);
    if (reader == 0) {
        int fd = open(fifo, O_RDONLY);
        char buf[64];
        size_t n = 0;
        ssize_t k;
        while (fd >= 0 && n < sizeof buf && (k = read(fd, buf + n, sizeof buf - n)) > 0)
            n += (size_t)k;
        _exit(n == 17 && memcmp(buf, "through the pipe\n", 17) == 0 ? 0 : 1);
    }
    assert_int_equal(write_file(fifo, "through the pipe\n", &e), NLP_OK);
    int wst;
    assert_int_equal(waitpid(reader, &wst, 0), reader);
    alarm(0);
    assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));

    /* Giving up on a FIFO: what was flushed has gone, the buffered rest
    ** is dropped, not written by the close. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    reader = fork();
    assert_true(reader >= 0);
    if (reader == 0) {
        close(p[0]);
        int fd = open(fifo, O_RDONLY);
        char buf[64];
        ssize_t k, n = 0;
        while (fd >= 0 && n < (ssize_t)sizeof buf && (k = read(fd, buf + n, sizeof buf - (size_t)n)) > 0)
            n += k;
        _exit(write(p[1], buf, (size_t)n) == n ? 0 : 1);
    }
    close(p[1]);
    nlp_outfile *o;
    assert_int_equal(nlp_outfile_new(&o, fifo, &e), NLP_OK);
    fputs("flushed\n", nlp_outfile_stream(o));
    fflush(nlp_outfile_stream(o));
    fputs("buffered\n", nlp_outfile_stream(o));
    nlp_outfile_free(o);
    char got[64];
    ssize_t n = 0, k;
    while ((k = read(p[0], got + n, sizeof got - 1 - (size_t)n)) > 0)
        n += k;
    close(p[0]);
    got[n] = '\0';
    assert_int_equal(waitpid(reader, &wst, 0), reader);
    alarm(0);
    assert_string_equal(got, "flushed\n");
    assert_int_equal(entries(tmpdir), 1);
    unlink(fifo);
}

/* ---- another user's view ------------------------------------------------------------ */

/*
** Permissions, and the processes of other users.  Root is not bound by
** permissions, so when the tests run as root these run in a child that
** has become nobody; otherwise test_check covers the permissions as the
** user, and the other user's process is PID 1 when it is not ours.  Each
** failure in the child is its own exit code.
*/
static int as_other_user(const char *dir)
{
    char file[600], rodir[600], inro[700], stale[700];
    nlp_error e;
    nlp_outfile *o;
    snprintf(file, sizeof file, "%s/mine.txt", dir);
    snprintf(rodir, sizeof rodir, "%s/ro", dir);
    snprintf(inro, sizeof inro, "%s/out.txt", rodir);
    /* A read-only file of one's own, in a writable directory. */
    if (nlp_outfile_check(file, &e) != NLP_EIO || strcmp(e.text, "Permission denied") != 0)
        return 10;
    if (nlp_outfile_new(&o, file, &e) != NLP_EIO || o)
        return 11;
    /* A directory one may not write. */
    if (nlp_outfile_check(inro, &e) != NLP_EIO ||
        strcmp(e.text, "cannot create a temporary file: Permission denied") != 0)
        return 12;
    if (write_file(inro, "x", &e) != NLP_EIO)
        return 13;
    /* The temporary of a live process of another user: kill(PID, 0) says
    ** EPERM, which is not "gone". */
    snprintf(file, sizeof file, "%s/new.txt", dir);
    snprintf(stale, sizeof stale, "%s.tmp%ld.0", file, (long)getppid());
    int fd = open(stale, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return 14;
    close(fd);
    if (kill(getppid(), 0) != -1 || errno != EPERM)
        return 15;
    if (write_file(file, "new\n", &e) != NLP_OK)
        return 16;
    if (!exists(stale))
        return 17;
    unlink(stale);
    unlink(file);
    return 0;
}

static void test_other_user(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        /* PID 1 belongs to another user (root) unless this is a container
        ** of our own. */
        if (kill(1, 0) == 0 || errno != EPERM)
            return;
        char path[512], stale[600];
        nlp_error e;
        path_in(path, sizeof path, "p1.txt");
        snprintf(stale, sizeof stale, "%s.tmp1.0", path);
        spit(stale, "half a file");
        assert_int_equal(write_file(path, "new\n", &e), NLP_OK);
        assert_true(exists(stale));
        unlink(stale);
        unlink(path);
        return;
    }
    const uid_t nobody = 65534;
    char dir[512], file[600], rodir[600];
    path_in(dir, sizeof dir, "nobody");
    snprintf(file, sizeof file, "%s/mine.txt", dir);
    snprintf(rodir, sizeof rodir, "%s/ro", dir);
    assert_int_equal(chmod(tmpdir, 0755), 0);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chown(dir, nobody, nobody), 0);
    spit(file, "read-only\n");
    assert_int_equal(chown(file, nobody, nobody), 0);
    assert_int_equal(chmod(file, 0444), 0);
    assert_int_equal(mkdir(rodir, 0555), 0);
    assert_int_equal(chown(rodir, nobody, nobody), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        if (setgroups(0, NULL) != 0 || setgid(nobody) != 0 || setuid(nobody) != 0)
            _exit(2);
        _exit(as_other_user(dir));
    }
    int wst;
    assert_int_equal(waitpid(c, &wst, 0), c);
    assert_true(WIFEXITED(wst));
    if (WEXITSTATUS(wst) != 0)
        fail_msg("as nobody: check %d failed", WEXITSTATUS(wst));
    assert_file_is(file, "read-only\n");
    assert_int_equal(entries(dir), 2);
    assert_int_equal(entries(rodir), 0);
    assert_int_equal(chmod(tmpdir, 0700), 0);
    rmdir(rodir);
    unlink(file);
    rmdir(dir);
    assert_int_equal(entries(tmpdir), 0);
}

/* ---- allocation failures ------------------------------------------------------------ */

/* Writes "new\n" to path through the outfile API; the first failing code. */
static int op_write(const char *path, nlp_error *e)
{
    int rc = nlp_outfile_check(path, e);
    if (rc != NLP_OK)
        return rc;
    return write_file(path, "new\n", e);
}

/*
** Every allocation of check + new + commit fails in turn, alone and with
** every later one failing too: each gives a clean NLP_ENOMEM naming the
** file, the previous file is intact, no temporary stays (and ASan sees no
** leak).  Through a chain of two links, so that following them is covered.
*/
static void test_alloc_faults(void **state)
{
    (void)state;
    char path[512], link[512], link2[512];
    path_in(path, sizeof path, "target.txt");
    path_in(link, sizeof link, "l1");
    path_in(link2, sizeof link2, "l2");
    assert_int_equal(symlink("target.txt", link), 0);
    assert_int_equal(symlink("l1", link2), 0);
    nlp_error e;
    long points = 0;
    for (int sticky = 0; sticky <= 1; sticky++) {
        for (long n = 1;; n++) {
            spit(path, "old\n");
            nlp_alloc_fail_at(n, sticky);
            int rc = op_write(link2, &e);
            nlp_alloc_fail_at(0, 0);
            if (rc == NLP_OK) {
                assert_file_is(path, "new\n");
                break;
            }
            if (rc != NLP_ENOMEM)
                fail_msg("allocation %ld%s: got %d (%s), want NLP_ENOMEM", n,
                         sticky ? " on" : "", rc, e.text);
            assert_string_equal(e.file, link2);
            assert_file_is(path, "old\n");
            assert_int_equal(entries(tmpdir), 3);
            points++;
        }
    }
    assert_true(points >= 2 * 8);   /* the struct, names, links, directory, temporary */

    /* And nlp_outfile_new alone leaves *out NULL. */
    nlp_outfile *o = (nlp_outfile *)1;
    nlp_alloc_fail_at(1, 0);
    assert_int_equal(nlp_outfile_new(&o, path, &e), NLP_ENOMEM);
    nlp_alloc_fail_at(0, 0);
    assert_null(o);
    unlink(link2);
    unlink(link);
    unlink(path);
    assert_int_equal(entries(tmpdir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_and_replace),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_abandon),
        cmocka_unit_test(test_failures_keep_old),
        cmocka_unit_test(test_stale_temporaries),
        cmocka_unit_test(test_symlinks),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_other_user),
        cmocka_unit_test(test_alloc_faults),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
