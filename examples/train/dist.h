/*
 * dist.h -- the trainer's data parallelism (dist.c): one model per MPI process
 * (rank), each computing its share of every step's global batch, the
 * gradients summed across ranks with MPI_Allreduce, the same optimizer step
 * everywhere.  Built with mpicc and TF_WITH_MPI; without it every call is
 * the single-process case (one rank, whose share is the whole batch), so
 * the trainer reads the same either way.
 *
 * The share: a step is accum micro-batches of B sequences (micro-batch i of
 * the run is batch i of the data set's seeded stream, a pure function of
 * the seed and i).  Its accum x B sequences, in order, are cut into R equal
 * runs, one per rank, and each run into pieces of c = gcd(run, B) rows
 * (a piece never crosses a micro-batch).  Every piece's loss is a mean over
 * c x T tokens, so the sum over all pieces of all ranks, divided by their
 * number (the optimizer's grad_accum_steps), is the global batch's mean:
 * R ranks train on exactly the tokens one process trains on, and one rank
 * computes exactly what the trainer always did (its pieces are the
 * micro-batches).
 */
#ifndef TF_EXAMPLES_DIST_H
#define TF_EXAMPLES_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "tokenformer.h"

typedef struct dist dist;

/* One piece of a rank's share: rows [row, row + rows) of micro-batch
 * `micro` of the step (0 <= micro < accum). */
typedef struct dist_piece {
    int64_t micro;
    int row, rows;
} dist_piece;

/* Starts MPI (MPI_Init_thread, funneled: only the main thread calls MPI).
 * On ranks other than 0, stdout goes to /dev/null (rank 0 speaks for the
 * job; errors still reach stderr).  From here on, an exit other than
 * through dist_finalize aborts the whole job (MPI_Abort from an atexit
 * handler), so that a rank that gives up never leaves the others waiting in
 * a collective.  Returns NULL after printing why on failure. */
dist *dist_init(int *argc, char ***argv);
/* Ends MPI; every rank must call it, at the same point of the run. */
void dist_finalize(dist *d);

int dist_rank(const dist *d);
int dist_size(const dist *d);
/* "train" on one rank, "train (rank r of R)" on several: for messages. */
const char *dist_who(const dist *d);

/* The trainer's keys of data parallelism (keys.c documents them):
 * bucket_mb 0 sums the gradients with one MPI_Allreduce after backward,
 * > 0 during backward, an MPI_Iallreduce per bucket of that many MB as
 * soon as backward reports it final; the ranks' checksums are compared
 * every check_interval steps (0: at checkpoints only). */
void dist_set_options(dist *d, double bucket_mb, int64_t check_interval);

/* Whether any rank's status is non-zero (every rank must call it, at the
 * same point): the largest status of all ranks. */
int dist_agree(dist *d, int status);

/* Plans the share of every step for micro-batches of B sequences and accum
 * of them.  Non-zero (after a message on rank 0) if the accum x B
 * sequences do not split evenly over the ranks. */
int dist_plan(dist *d, int64_t B, int64_t accum);
int dist_num_pieces(const dist *d);
dist_piece dist_piece_at(const dist *d, int j);
/* Pieces of all ranks together: the optimizer's grad_accum_steps. */
int64_t dist_total_pieces(const dist *d);

/* With allreduce_bucket_mb > 0, call before the backward of the step's
 * last piece: installs a readiness callback that starts an MPI_Iallreduce
 * for every bucket that backward reports final; dist_reduce_grads then only
 * waits.  Otherwise nothing. */
void dist_overlap_arm(dist *d, tf_model *m);
/* Sums the model's gradient buffer across ranks in place (after the step's
 * last backward).  Time spent here counts as communication. */
void dist_reduce_grads(dist *d, tf_model *m);

/* Sums v[0..n) across ranks in place (losses, flags). */
void dist_sum(dist *d, double *v, int n);

/* Compares every rank's tf_model_checksum (with opt) when `force` or when
 * step is a multiple of replica_check_interval: if they differ, rank 0
 * names the ranks and the job is aborted. */
void dist_check_same(dist *d, const tf_model *m, const tf_optimizer *opt, int64_t step,
                     int force);

/* For a failure of this rank alone: prints "train (rank r of R): msg" to
 * stderr and ends the whole job (MPI_Abort; exit(1) on one rank). */
void dist_abort(dist *d, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* Seconds spent in dist_reduce_grads: the gradient sums not hidden behind
 * backward, waiting for slower ranks included. */
double dist_comm_seconds(const dist *d);

#endif
