/*
** mpi: the trainers under mpirun (Open MPI), built only when configure found
** MPI (HAVE_MPI in config.h).  lib/ knows no MPI: this file gives the
** harness and word2vec their nlp_train_collective (nlp/train.h), over
** MPI_COMM_WORLD.
**
**   mpirun -np 8 --hostfile hosts charlm-train corpus.txt
**
** A tool calls cli_mpi_start() once, after its options: when it was started
** by mpirun (Open MPI's or a PMIx launcher's environment) MPI is
** initialised (MPI_THREAD_FUNNELED: only the calling thread talks MPI, the
** training threads never do); otherwise nothing happens and the tool is one
** process as without MPI.  Before it returns or exits normally the tool
** calls cli_mpi_finish().  Any other exit (cli_die, a usage error, exit())
** while MPI is running is a failure of this rank: an exit handler says so,
** naming the rank, and calls MPI_Abort, so that the other ranks, which
** would wait forever in the next collective, stop too and mpirun exits
** non-zero.  A rank killed outright is noticed by mpirun, which stops the
** job and names the rank.  Every failed MPI call is reported the same way
** ("rank R of N: MPI_Allreduce: <MPI's message>").
*/
#ifndef NLP_CLI_MPI_H
#define NLP_CLI_MPI_H

#include <stddef.h>

#include "nlp/train.h"

/* MPI initialised when started by mpirun; returns the number of ranks (1
** when not under mpirun, or run with -np 1). */
int cli_mpi_start(void);

/* The number of ranks mpirun started, from its environment before
** cli_mpi_start (for usage errors, which should exit 2 before MPI runs: a
** failure once it runs aborts the job with 1); 1 when not under mpirun or
** unknown. */
int cli_mpi_launched_size(void);

/* This process's rank, 0 when alone. */
int cli_mpi_rank(void);

/* Processes in the job, 1 when alone. */
int cli_mpi_size(void);

/* The harness's collective over MPI_COMM_WORLD (MPI_Allreduce with MPI_SUM,
** MPI_Bcast from rank 0); NULL when alone.  Valid until cli_mpi_finish. */
const nlp_train_collective *cli_mpi_collective(void);

/* buf[0..n) summed over the ranks in place (MPI_Allreduce, in slices of at
** most 2^30 elements as MPI counts are ints); dies (aborting the job) when
** MPI fails.  A no-op when alone. */
void cli_mpi_sum_doubles(double *buf, size_t n);

/* MPI_Finalize (after a barrier, so that no rank leaves while another
** still works); a no-op when alone.  Call it before a normal exit, also one
** with a non-zero status every rank agrees on (128 + a signal). */
void cli_mpi_finish(void);

#endif
