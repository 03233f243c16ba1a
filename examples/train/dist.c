/*
 * dist.c -- the trainer's data parallelism over MPI (see dist.h): the share
 * of the batch, the gradient sums (whole, or in buckets during backward),
 * the agreement of the ranks and the checks that they hold one model.
 * Without TF_WITH_MPI it is the one-rank case and needs no MPI at all.
 */
#include "dist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef TF_WITH_MPI
#include <mpi.h>
#endif

struct dist {
    int rank, size;
    char who[64];
    int64_t B, run, c; /* a step: this rank's run of sequences, in pieces of c */
    int npieces;
    int64_t total_pieces;
    double comm_seconds;
    int64_t check_every; /* replica_check_interval */
    /* overlap: the buffer being reduced and the part of it reported final
     * but not yet handed to MPI ([lo, hi): reports come from the end) */
    size_t bucket;
    float *grads;
    size_t lo, hi;
#ifdef TF_WITH_MPI
    MPI_Request *requests;
    int nrequests, cap_requests;
#endif
};

static void vsay(const dist *d, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: ", d ? d->who : "train");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

#ifdef TF_WITH_MPI

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int finalized = 1; /* no MPI yet, or ended properly */

/* Whether an MPI launcher started this process: Open MPI's mpirun, a PMIx
 * launcher (srun --mpi=pmix, prterun) or a PMI one (MPICH's hydra, srun
 * --mpi=pmi2).  Started on its own, the trainer runs as one process and
 * leaves MPI alone: Open MPI's singleton mode would start a daemon (orted,
 * found on PATH) for a job of one. */
static int launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

/* A rank leaving main (or calling exit) without dist_finalize: its partners
 * may be waiting in a collective for it, so the whole job ends here. */
static void abort_unless_finalized(void)
{
    if (!finalized) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

/* MPI counts are int: large buffers go in slices of at most this many. */
#define SLICE (1 << 30)

static void allreduce_floats(float *x, size_t n)
{
    for (size_t off = 0; off < n; off += SLICE) {
        int c = (int)(n - off < SLICE ? n - off : SLICE);
        MPI_Allreduce(MPI_IN_PLACE, x + off, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
}

static void start_bucket(dist *d, size_t lo, size_t hi)
{
    for (size_t off = lo; off < hi; off += SLICE) {
        if (d->nrequests == d->cap_requests) {
            int cap = d->cap_requests ? 2 * d->cap_requests : 64;
            MPI_Request *r = realloc(d->requests, (size_t)cap * sizeof *r);
            if (!r)
                dist_abort(d, "out of memory for MPI requests");
            d->requests = r;
            d->cap_requests = cap;
        }
        int c = (int)(hi - off < SLICE ? hi - off : SLICE);
        MPI_Iallreduce(MPI_IN_PLACE, d->grads + off, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                       &d->requests[d->nrequests++]);
    }
}

/* The readiness callback: [offset, offset + count) is final. */
static void on_ready(void *user, float *grads, size_t offset, size_t count)
{
    dist *d = user;
    (void)count;
    d->grads = grads;
    d->lo = offset;
    if (d->hi - d->lo >= d->bucket || offset == 0) {
        start_bucket(d, d->lo, d->hi);
        d->hi = d->lo;
    }
    /* Open MPI advances non-blocking collectives only inside MPI calls */
    int done;
    MPI_Testall(d->nrequests, d->requests, &done, MPI_STATUSES_IGNORE);
}

#endif /* TF_WITH_MPI */

dist *dist_init(int *argc, char ***argv)
{
    dist *d = calloc(1, sizeof *d);
    if (!d) {
        fprintf(stderr, "train: out of memory\n");
        return NULL;
    }
    d->size = 1;
    snprintf(d->who, sizeof d->who, "train");
#ifdef TF_WITH_MPI
    if (!launched_by_mpi())
        return d;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "train: MPI_Init_thread failed\n");
        free(d);
        return NULL;
    }
    finalized = 0;
    atexit(abort_unless_finalized);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    if (d->size > 1)
        snprintf(d->who, sizeof d->who, "train (rank %d of %d)", d->rank, d->size);
    if (d->rank != 0 && !freopen("/dev/null", "w", stdout))
        dist_abort(d, "cannot silence stdout");
#else
    (void)argc;
    (void)argv;
#endif
    return d;
}

void dist_finalize(dist *d)
{
    if (!d)
        return;
#ifdef TF_WITH_MPI
    fflush(stdout);
    if (!finalized) {
        MPI_Finalize();
        finalized = 1;
    }
    free(d->requests);
#endif
    free(d);
}

int dist_rank(const dist *d) { return d->rank; }
int dist_size(const dist *d) { return d->size; }
const char *dist_who(const dist *d) { return d->who; }

int dist_plan(dist *d, int64_t B, int64_t accum)
{
    const int64_t total = B * accum;
    if (total % d->size != 0) {
        if (d->rank == 0)
            fprintf(stderr, "train: the global batch (%lld micro-batches of %lld sequences = "
                    "%lld) does not split evenly over %d ranks: make the rank count divide "
                    "it\n", (long long)accum, (long long)B, (long long)total, d->size);
        return 1;
    }
    const int64_t run = total / d->size, c = gcd64(run, B);
    if (total / c > INT32_MAX) { /* the optimizer's grad_accum_steps */
        if (d->rank == 0)
            fprintf(stderr, "train: %lld pieces a step (of %lld sequences each) are too many\n",
                    (long long)(total / c), (long long)c);
        return 1;
    }
    d->B = B;
    d->run = run;
    d->c = c;
    d->npieces = (int)(run / c);
    d->total_pieces = total / c;
    return 0;
}

void dist_set_options(dist *d, double bucket_mb, int64_t check_interval)
{
    d->bucket = (size_t)(bucket_mb * (1 << 20) / sizeof(float));
    if (bucket_mb > 0.0 && d->bucket == 0)
        d->bucket = 1;
    d->check_every = check_interval;
}

int dist_agree(dist *d, int status)
{
#ifdef TF_WITH_MPI
    if (d->size > 1)
        MPI_Allreduce(MPI_IN_PLACE, &status, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
#else
    (void)d;
#endif
    return status;
}

int dist_num_pieces(const dist *d) { return d->npieces; }
dist_piece dist_piece_at(const dist *d, int j)
{
    int64_t s = d->rank * d->run + j * d->c; /* the piece's first sequence of the step */
    return (dist_piece){s / d->B, (int)(s % d->B), (int)d->c};
}
int64_t dist_total_pieces(const dist *d) { return d->total_pieces; }

void dist_overlap_arm(dist *d, tf_model *m)
{
#ifdef TF_WITH_MPI
    if (d->size == 1 || d->bucket == 0)
        return;
    size_t count;
    if (tf_model_grad_buffer(m, &d->grads, &count) != TF_OK ||
        tf_model_set_grad_ready_callback(m, on_ready, d) != TF_OK)
        dist_abort(d, "%s", tf_last_error());
    d->lo = d->hi = count;
    d->nrequests = 0;
#else
    (void)d;
    (void)m;
#endif
}

void dist_reduce_grads(dist *d, tf_model *m)
{
#ifdef TF_WITH_MPI
    if (d->size == 1)
        return;
    double t0 = now();
    if (d->bucket) {
        if (d->hi != 0) /* no backward since dist_overlap_arm reported everything */
            dist_abort(d, "the gradients were not all reported final before the sum");
        MPI_Waitall(d->nrequests, d->requests, MPI_STATUSES_IGNORE);
        d->nrequests = 0;
        tf_model_set_grad_ready_callback(m, NULL, NULL);
    } else {
        float *g;
        size_t n;
        if (tf_model_grad_buffer(m, &g, &n) != TF_OK)
            dist_abort(d, "%s", tf_last_error());
        allreduce_floats(g, n);
    }
    d->comm_seconds += now() - t0;
#else
    (void)d;
    (void)m;
#endif
}

void dist_sum(dist *d, double *v, int n)
{
#ifdef TF_WITH_MPI
    if (d->size == 1)
        return;
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#else
    (void)d;
    (void)v;
    (void)n;
#endif
}

void dist_check_same(dist *d, const tf_model *m, const tf_optimizer *opt, int64_t step,
                     int force)
{
#ifdef TF_WITH_MPI
    if (d->size == 1 || !(force || (d->check_every > 0 && step % d->check_every == 0)))
        return;
    uint64_t mine;
    if (tf_model_checksum(m, opt, &mine) != TF_OK)
        dist_abort(d, "%s", tf_last_error());
    uint64_t *all = malloc((size_t)d->size * sizeof *all);
    if (!all)
        dist_abort(d, "out of memory");
    MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    int differ = 0;
    for (int r = 1; r < d->size; r++)
        differ |= all[r] != all[0];
    if (differ && d->rank == 0) {
        fprintf(stderr, "train: after step %lld the ranks hold different models "
                "(tf_model_checksum):", (long long)step);
        for (int r = 0; r < d->size; r++)
            fprintf(stderr, " rank %d %016llx", r, (unsigned long long)all[r]);
        fprintf(stderr, "\n");
    }
    free(all);
    if (differ) {
        MPI_Barrier(MPI_COMM_WORLD); /* rank 0's message first */
        dist_abort(d, "the ranks diverged; stopping the job");
    }
#else
    (void)d;
    (void)m;
    (void)opt;
    (void)step;
    (void)force;
#endif
}

void dist_abort(dist *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(d, fmt, ap);
    va_end(ap);
    fflush(stdout);
#ifdef TF_WITH_MPI
    if (!finalized)
        MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    exit(1);
}

double dist_comm_seconds(const dist *d)
{
    return d->comm_seconds;
}
