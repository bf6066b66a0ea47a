/*
** mpi: the trainers under mpirun.  See mpi.h.
*/
#include "mpi.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

/* A program may keep its state in statics (cli.c); the library may not. */
static int running;           /* MPI_Init done, MPI_Finalize not yet */
static int rank, size = 1;
static nlp_train_collective coll;

#define SLICE (1 << 30)       /* elements per MPI call: counts are ints */

/* The message of an MPI error code. */
static const char *mpi_text(int code, char *buf)
{
    int len = 0;
    if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS)
        snprintf(buf, MPI_MAX_ERROR_STRING, "MPI error %d", code);
    return buf;
}

/* Another exit than cli_mpi_finish's while MPI runs: this rank failed. */
static void abort_job(void)
{
    if (!running)
        return;
    running = 0;
    fprintf(stderr, "%s: rank %d of %d failed: stopping every rank\n", cli_name(), rank, size);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, CLI_EXIT_FAILURE);
}

static int launched_by_mpirun(void)
{
    /* Open MPI's mpirun, or a PMIx launcher (srun --mpi=pmix, prterun). */
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK");
}

int cli_mpi_launched_size(void)
{
    const char *s = getenv("OMPI_COMM_WORLD_SIZE");
    long n = s ? strtol(s, NULL, 10) : 1;
    return n > 1 && n <= NLP_TRAIN_MAX_PROCESSES ? (int)n : 1;
}

static int allreduce(void *buf, size_t n, MPI_Datatype type, size_t elem, nlp_error *e)
{
    char *p = buf;
    while (n > 0) {
        int k = n > SLICE ? SLICE : (int)n;
        int rc = MPI_Allreduce(MPI_IN_PLACE, p, k, type, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) {
            char text[MPI_MAX_ERROR_STRING];
            return nlp_error_set(e, NLP_EIO, NULL, 0, "rank %d of %d: MPI_Allreduce: %s", rank,
                                 size, mpi_text(rc, text));
        }
        p += (size_t)k * elem;
        n -= (size_t)k;
    }
    return NLP_OK;
}

static int coll_sum_float(void *ctx, float *buf, size_t n, nlp_error *e)
{
    (void)ctx;
    return allreduce(buf, n, MPI_FLOAT, sizeof *buf, e);
}

static int coll_sum_double(void *ctx, double *buf, size_t n, nlp_error *e)
{
    (void)ctx;
    return allreduce(buf, n, MPI_DOUBLE, sizeof *buf, e);
}

static int coll_broadcast(void *ctx, double *buf, size_t n, nlp_error *e)
{
    (void)ctx;
    while (n > 0) {
        int k = n > SLICE ? SLICE : (int)n;
        int rc = MPI_Bcast(buf, k, MPI_DOUBLE, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) {
            char text[MPI_MAX_ERROR_STRING];
            return nlp_error_set(e, NLP_EIO, NULL, 0, "rank %d of %d: MPI_Bcast: %s", rank,
                                 size, mpi_text(rc, text));
        }
        buf += k;
        n -= (size_t)k;
    }
    return NLP_OK;
}

int cli_mpi_start(void)
{
    if (running || !launched_by_mpirun())
        return size;
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        cli_die("MPI_Init_thread failed");
    running = 1;
    atexit(abort_job);
    /* Errors come back to us, to be reported with the rank. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided < MPI_THREAD_FUNNELED)
        cli_die("MPI gives no thread support (MPI_THREAD_FUNNELED needed)");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    coll.rank = rank;
    coll.size = size;
    coll.sum_float = coll_sum_float;
    coll.sum_double = coll_sum_double;
    coll.broadcast = coll_broadcast;
    return size;
}

int cli_mpi_rank(void)
{
    return rank;
}

int cli_mpi_size(void)
{
    return size;
}

const nlp_train_collective *cli_mpi_collective(void)
{
    return running && size > 1 ? &coll : NULL;
}

void cli_mpi_sum_doubles(double *buf, size_t n)
{
    nlp_error e;
    if (running && size > 1 && allreduce(buf, n, MPI_DOUBLE, sizeof *buf, &e) != NLP_OK)
        cli_die_error(&e);
}

void cli_mpi_finish(void)
{
    if (!running)
        return;
    MPI_Barrier(MPI_COMM_WORLD);
    running = 0;
    MPI_Finalize();
}
