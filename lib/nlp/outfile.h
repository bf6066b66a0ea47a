/*
** outfile: output files that appear whole or not at all.
**
** Every file libnlp writes by name (model files, word vectors, vocabularies,
** pictures) goes through this module, so there is one way to write a file
** and one naming scheme for the temporaries:
**
**   - A regular file or a new name: the data goes to a temporary file
**     beside the target, TARGET.tmpPID.N (PID this process, N = 0, 1, ...,
**     created exclusively with the usual 0666 & ~umask permissions; same
**     directory, so the rename is atomic).  Commit flushes it, gives it an
**     existing target's permissions, fsync()s it, renames it over the
**     target and fsync()s the directory.  A full disk, a kill or a crash
**     at any moment leaves the previous file as it was.
**   - A symbolic link is followed (also one that names no file yet): the
**     file it names is replaced and the link stays.  Renaming replaces the
**     directory entry, so other hard links keep the old contents.
**   - A device, FIFO or socket (/dev/null, /dev/stdout, a named pipe) is
**     opened and written in place: it cannot be replaced by a rename.
**   - A writer killed before commit cannot remove its temporary, so
**     nlp_outfile_new first removes the temporaries of the target that
**     are regular files named exactly TARGET.tmpPID.N whose process no
**     longer exists (kill(PID, 0) fails with ESRCH; a process of another
**     user gives EPERM and is left alone; this process's own are kept).
**     Only processes of this machine and PID namespace are seen: writers
**     on two machines must not share a directory through a network file
**     system.
**
** Every error names the file as the caller gave it (e->file) and says why
** in e->text, with the system's reason ("Is a directory", "write error: No
** space left on device", "cannot sync: ...", "cannot rename the temporary
** file into place: ...").
**
**     nlp_outfile *o;
**     if ((rc = nlp_outfile_check("vec.txt", &e)) != NLP_OK) ...  (before long work)
**     ...
**     if ((rc = nlp_outfile_new(&o, "vec.txt", &e)) != NLP_OK) ...
**     fprintf(nlp_outfile_stream(o), ...);
**     if (something went wrong) { nlp_outfile_free(o); ... }   (previous file kept)
**     rc = nlp_outfile_commit(o, &e);                           (frees o)
*/
#ifndef NLP_OUTFILE_H
#define NLP_OUTFILE_H

#include <stdio.h>

#include <nlp/error.h>

typedef struct nlp_outfile nlp_outfile;

/*
** Checks, before any long work, that nlp_outfile_new(path) can succeed:
** path is not a directory, an existing file is writable (by the effective
** user), and the directory of a regular or new file takes a new file (one
** is created and removed at once; a device is not opened).  Returns NLP_OK,
** or NLP_EINVAL (NULL or empty path), NLP_EIO with the reason (strerror
** text such as "Is a directory", "Permission denied", "Not a directory",
** or "cannot create a temporary file: No such file or directory") or
** NLP_ENOMEM, path named in e.
*/
int nlp_outfile_check(const char *path, nlp_error *e);

/*
** Opens path for writing as described above: *out is a new nlp_outfile,
** to write through nlp_outfile_stream(*out) and then hand to
** nlp_outfile_commit, or to nlp_outfile_free to give up.  Errors as for
** nlp_outfile_check (and the open of a device), *out then NULL and nothing
** left behind.
*/
int nlp_outfile_new(nlp_outfile **out, const char *path, nlp_error *e);

/*
** The stream to write to; owned by o (do not fclose it).  It has no file
** descriptor (fileno() gives -1) and cannot seek.  A failed write sets its
** error indicator and errno to the system's reason, later writes are
** dropped, and commit reports the first failure.
*/
FILE *nlp_outfile_stream(nlp_outfile *o);

/*
** Finishes the file and puts it in place; frees o in every case.  Returns
** NLP_OK, or NLP_EIO ("write error: ...", "cannot keep the permissions:
** ...", "cannot sync: ...", "cannot rename the temporary file into place:
** ...") with the temporary removed and the previous file untouched.  A
** directory that cannot be synced after the rename is not an error (the
** new file is in place; some file systems refuse).
*/
int nlp_outfile_commit(nlp_outfile *o, nlp_error *e);

/* Gives up: closes and removes the temporary (the previous file stays),
** frees o.  NULL is a no-op. */
void nlp_outfile_free(nlp_outfile *o);

#endif
