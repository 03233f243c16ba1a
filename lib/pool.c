/*
 * pool.c -- the library's worker threads: one process-wide pool of
 * persistent threads that runs parallel loops (tfi_parallel_for).
 *
 * Why not OpenMP: libgomp's waiting threads spin at every fork and barrier
 * before they sleep, and it reads its wait policy only when it loads.  On a
 * machine whose cores are all busy, the spinning thread takes the core from
 * the very thread it waits for, and two threads ran 3.4x slower than one.
 * Here a waiting thread spins for a few microseconds only (enough to catch
 * the next loop of a busy caller) and then sleeps on a futex, giving its
 * core to whichever thread is late.  libgomp also exits the process when it
 * cannot create a thread; here that is a status.
 *
 * How a loop runs: the caller publishes the loop (function, context, task
 * count) and one 64-bit word, `claim`, holding the number of threads that
 * may take part (high half) and the number of tasks not yet handed out (low
 * half).  Every thread, the caller included, takes tasks one at a time by
 * compare-and-swap on that word, runs them, and counts them done; the
 * caller returns when all are done.  A worker that wakes late finds no task
 * left and goes back to sleep: nobody waits for a thread that has no task.
 * A successful claim proves the loop is still running (its task is not
 * done), so the loop's fields read after it are that loop's.
 *
 * The pool serves one loop at a time.  A loop started while it is busy (by
 * another host thread, or from inside a task) runs on its calling thread
 * alone, which gives the same results: no task depends on which thread
 * runs it, so the thread count never changes a result.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* How long a thread with nothing to do spins before it sleeps.  A training
 * step starts its loops back to back, microseconds apart, and a sleeping
 * worker takes tens of microseconds to wake; longer spinning would take the
 * core from other busy threads for little gain. */
#define SPIN_NS 20000

#define MAX_WORKERS 1023 /* the runtime's hard cap on threads, less the caller */

typedef struct pool {
    /* the loop being run: written by its caller before `claim`, read by a
     * thread after it claimed one of its tasks */
    _Atomic(tfi_task_fn) fn;
    _Atomic(void *) ctx;
    _Atomic int64_t ntasks;
    _Atomic uint64_t claim;    /* (threads allowed << 32) | tasks left */
    _Atomic uint32_t done;     /* tasks finished (a futex word) */
    _Atomic uint32_t waiting;  /* the caller sleeps on `done` */
    _Atomic uint32_t gen;      /* bumped for each loop (a futex word) */
    _Atomic uint32_t sleepers; /* workers asleep on `gen` */
    _Atomic int keep;          /* workers with index > keep end */
    atomic_flag busy;          /* a loop, or a resize, is under way */
    int nworkers;              /* threads made (indices 1..nworkers); under busy */
    int refused;               /* 0, or the size the system refused; under busy */
    _Atomic int available;     /* while refused: the threads it gave (caller included) */
    pthread_t threads[MAX_WORKERS];
} pool;

/* The process's pool: the runtime's threads, like the thread count itself
 * (tf_set_num_threads), are process-wide; the header documents it. */
static pool the_pool = {.busy = ATOMIC_FLAG_INIT};
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void futex_wait(_Atomic uint32_t *word, uint32_t expect)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expect, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int count)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Waits until *word != old: spins SPIN_NS, then sleeps.  *sleepers counts
 * the sleep, so that a writer wakes the word only if someone sleeps. */
static uint32_t wait_change(_Atomic uint32_t *word, uint32_t old, _Atomic uint32_t *sleepers)
{
    uint32_t v;
    int64_t t0 = now_ns();
    for (int i = 1;; i++) {
        if ((v = atomic_load_explicit(word, memory_order_acquire)) != old)
            return v;
        cpu_relax();
        if (i % 64 == 0 && now_ns() - t0 > SPIN_NS)
            break;
    }
    atomic_fetch_add(sleepers, 1);
    while ((v = atomic_load(word)) == old)
        futex_wait(word, old);
    atomic_fetch_sub(sleepers, 1);
    return v;
}

/* Takes and runs tasks of the current loop until none is left; `self` is
 * the thread's index (0 for the caller). */
static void run_tasks(pool *p, int self)
{
    for (;;) {
        uint64_t c = atomic_load_explicit(&p->claim, memory_order_relaxed);
        do {
            if ((uint32_t)c == 0 || (int64_t)(c >> 32) <= self)
                return;
        } while (!atomic_compare_exchange_weak_explicit(&p->claim, &c, c - 1,
                                                        memory_order_acquire,
                                                        memory_order_relaxed));
        const int64_t n = atomic_load_explicit(&p->ntasks, memory_order_relaxed);
        tfi_task_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&p->ctx, memory_order_relaxed);
        fn(ctx, n - (int64_t)(uint32_t)c, self);
        if (atomic_fetch_add(&p->done, 1) + 1 == (uint32_t)n && atomic_load(&p->waiting))
            futex_wake(&p->done, 1);
    }
}

/* A worker's start: its index, and the generation when it was made (a
 * wake-up from before it ran must not be missed). */
static void *worker_arg(int index, uint32_t gen)
{
    return (void *)(uintptr_t)((uint64_t)index << 32 | gen);
}

static void *worker_main(void *arg)
{
    pool *p = &the_pool;
    const int self = (int)((uint64_t)(uintptr_t)arg >> 32);
    uint32_t seen = (uint32_t)(uintptr_t)arg;
    for (;;) {
        seen = wait_change(&p->gen, seen, &p->sleepers);
        if (self > atomic_load(&p->keep))
            return NULL;
        run_tasks(p, self);
    }
}

/* Wakes every worker (a loop was published, or some must end). */
static void wake_all(pool *p)
{
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0)
        futex_wake(&p->gen, INT_MAX);
}

/* Ends workers above index `keep` and joins them.  Under busy. */
static void shrink(pool *p, int keep)
{
    if (keep >= p->nworkers)
        return;
    atomic_store(&p->keep, keep);
    wake_all(p);
    for (int i = keep; i < p->nworkers; i++)
        pthread_join(p->threads[i], NULL);
    p->nworkers = keep;
}

/* Makes workers up to `want`.  Under busy.  Returns 0, or the error of the
 * pthread_create that failed (the workers made until then stay). */
static int grow(pool *p, int want)
{
    if (want > MAX_WORKERS)
        want = MAX_WORKERS;
    if (want <= p->nworkers)
        return 0;
    atomic_store(&p->keep, want);
    /* Workers block every signal: the program's handlers run on its own
     * threads, as they would without the library. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = 0;
    while (p->nworkers < want) {
        err = pthread_create(&p->threads[p->nworkers], NULL, worker_main,
                             worker_arg(p->nworkers + 1, atomic_load(&p->gen)));
        if (err)
            break;
        p->nworkers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    atomic_store(&p->keep, p->nworkers);
    return err;
}

/* In a child of fork() only the forking thread exists: the workers are
 * gone, and a loop or resize under way in another thread never ends. */
static void after_fork_child(void)
{
    pool *p = &the_pool;
    p->nworkers = 0;
    p->refused = 0;
    atomic_store(&p->available, 0);
    atomic_store(&p->keep, 0);
    atomic_store(&p->sleepers, 0);
    atomic_store(&p->waiting, 0);
    atomic_store(&p->claim, 0);
    atomic_flag_clear(&p->busy);
}

static void register_fork(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
}

static void acquire_busy(pool *p)
{
    while (atomic_flag_test_and_set_explicit(&p->busy, memory_order_acquire))
        sched_yield();
}

int tfi_pool_resize(int nthreads, int *err)
{
    pool *p = &the_pool;
    pthread_once(&fork_once, register_fork);
    acquire_busy(p);
    const int before = p->nworkers, want = nthreads - 1;
    int e = grow(p, want);
    if (e) {
        shrink(p, before); /* a failed call changes nothing */
    } else {
        shrink(p, want);
        p->refused = 0;
        atomic_store(&p->available, 0);
    }
    const int now = p->nworkers + 1;
    atomic_flag_clear_explicit(&p->busy, memory_order_release);
    *err = e;
    return now;
}

int tfi_pool_refused(void)
{
    return atomic_load_explicit(&the_pool.available, memory_order_relaxed);
}

void tfi_parallel_for(int64_t ntasks, int nthreads, tfi_task_fn fn, void *ctx)
{
    pool *p = &the_pool;
    if (ntasks <= 0)
        return;
    if (nthreads > ntasks)
        nthreads = (int)ntasks;
    if (nthreads <= 1 || ntasks > UINT32_MAX / 2 ||
        atomic_flag_test_and_set_explicit(&p->busy, memory_order_acquire)) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(ctx, t, 0);
        return;
    }
    /* The count in effect was set by tf_set_num_threads (which made the
     * workers) or by default: then the workers are made here, at the first
     * loop that wants them, and if the system refuses some the loops run
     * with those it gave, from then on. */
    if (p->nworkers < nthreads - 1 && !(p->refused && nthreads > p->refused)) {
        pthread_once(&fork_once, register_fork);
        if (grow(p, nthreads - 1) != 0) {
            p->refused = nthreads;
            atomic_store(&p->available, p->nworkers + 1);
        }
    }
    if (nthreads > p->nworkers + 1)
        nthreads = p->nworkers + 1;

    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&p->ntasks, ntasks, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->claim, ((uint64_t)nthreads << 32) | (uint64_t)ntasks,
                          memory_order_release);
    if (nthreads > 1)
        wake_all(p);
    run_tasks(p, 0);

    /* The caller has no task left: wait for those still running elsewhere
     * (the thread that finishes the last one wakes it if it sleeps). */
    const uint32_t n = (uint32_t)ntasks;
    for (uint32_t d; (d = atomic_load_explicit(&p->done, memory_order_acquire)) != n;)
        wait_change(&p->done, d, &p->waiting);
    atomic_flag_clear_explicit(&p->busy, memory_order_release);
}

typedef struct rows_loop {
    tfi_rows_fn fn;
    void *ctx;
    int64_t N;
} rows_loop;

static void rows_task(void *arg, int64_t task, int worker)
{
    const rows_loop *l = arg;
    int64_t r0 = task * TFI_ROWS_PER_TASK;
    int64_t r1 = r0 + TFI_ROWS_PER_TASK < l->N ? r0 + TFI_ROWS_PER_TASK : l->N;
    l->fn(l->ctx, r0, r1);
}

void tfi_parallel_rows(int64_t N, int nthreads, tfi_rows_fn fn, void *ctx)
{
    if (nthreads <= 1) {
        if (N > 0)
            fn(ctx, 0, N);
        return;
    }
    rows_loop l = {fn, ctx, N};
    tfi_parallel_for((N + TFI_ROWS_PER_TASK - 1) / TFI_ROWS_PER_TASK, nthreads, rows_task, &l);
}
