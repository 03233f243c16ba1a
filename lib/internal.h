/*
 * internal.h -- what every library file shares and no user sees: error
 * reporting, the runtime (threads, BLIS), and small helpers.
 *
 * Internal symbols use the tfi_ prefix; they are hidden from the shared
 * library (-fvisibility=hidden) but visible in libtokenformer.a, which the
 * unit tests link so that they can test internals directly.
 */
#ifndef TF_INTERNAL_H
#define TF_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenformer.h"

#define TFI_ERRMSG_MAX 512

/* Error message storage embedded in every handle. */
typedef struct tfi_errbuf {
    char msg[TFI_ERRMSG_MAX];
} tfi_errbuf;

/* Records a failure: formats the message into eb (if not NULL) and into the
 * thread-local last-error buffer, and returns status, so that a failing
 * path reads `return tfi_fail(&h->err, TF_ERR_SHAPE, "...", ...);`. */
tf_status tfi_fail(tfi_errbuf *eb, tf_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
tf_status tfi_vfail(tfi_errbuf *eb, tf_status status, const char *fmt, va_list ap);

/* Clears a handle's message (a successful call leaves the previous error
 * readable on purpose, like errno; this is for create paths). */
void tfi_errbuf_clear(tfi_errbuf *eb);

/* ---- runtime ---------------------------------------------------------- */

/* Initialises BLIS once (kernel choice first).  Safe to call from any
 * thread, any number of times.  Returns TF_OK or the init failure. */
tf_status tfi_runtime_ensure(void);

/* Threads for GEMMs and parallel loops (>= 1): the count in effect. */
int tfi_num_threads(void);

/* Threads worth using for `work` elements (or multiply-adds): 1 below
 * TFI_PARALLEL_MIN_WORK, where waking the pool costs more than it saves. */
#define TFI_PARALLEL_MIN_WORK 65536
/* Row loops of the element-wise kernels hand out this many rows at a time:
 * a thread the system deschedules holds back at most one such task while
 * the others take the rest.  The rows are independent, so which thread
 * computes a row changes nothing in the result. */
#define TFI_ROWS_PER_TASK 8
int tfi_threads_for(int64_t work);

/* ---- parallel loops (pool.c) ------------------------------------------ */

/* A loop's body: runs task `task`.  `worker` (0 for the calling thread,
 * below the loop's nthreads) names the thread that runs it, for per-thread
 * scratch space only: a task's result must not depend on it. */
typedef void (*tfi_task_fn)(void *ctx, int64_t task, int worker);

/* Runs fn(ctx, t, w) for every t in [0, ntasks) on up to nthreads threads
 * (the caller and the runtime's workers), tasks handed out one at a time,
 * and returns when all have run.  Runs on the caller alone when nthreads
 * <= 1 or the pool serves another loop (another host thread's, or the
 * enclosing one when called from a task).  Workers missing for nthreads
 * are created here; if the system refuses, the loop runs with fewer. */
void tfi_parallel_for(int64_t ntasks, int nthreads, tfi_task_fn fn, void *ctx);

/* The loop over rows [0, N) in tasks of TFI_ROWS_PER_TASK rows: calls
 * fn(ctx, r0, r1) for each task's rows [r0, r1). */
typedef void (*tfi_rows_fn)(void *ctx, int64_t r0, int64_t r1);
void tfi_parallel_rows(int64_t N, int nthreads, tfi_rows_fn fn, void *ctx);

/* Makes (or ends) workers so that loops can run on nthreads threads.
 * Returns the threads available afterwards; *err is 0, or the error of the
 * thread creation the system refused, and then the pool is as before. */
int tfi_pool_resize(int nthreads, int *err);
/* 0, or the threads available since the system refused a thread to a loop
 * (tfi_parallel_for) asking for more. */
int tfi_pool_refused(void);
/* Threads worth using for a product C[m, n] = A[m, k] B[k, n]: 1 when it
 * is small both in multiply-adds and in the floats of B it reads. */
int tfi_gemm_threads(int64_t m, int64_t n, int64_t k);

/* Row-major single-precision GEMM through BLIS:
 *   C[m, n] = alpha * op(A) op(B) + beta * C
 * op(A) is [m, k]: A is [m, k] with leading dimension lda, or, if ta, A is
 * [k, m] (lda) and used transposed.  Likewise op(B) [k, n].  ldc is C's row
 * stride.  nthreads <= 0: the count in effect for a large product (the
 * same bits for every count), one thread for a small one; 1: one BLIS call
 * (inside a task of a parallel loop); more: that many threads.  The
 * runtime must be up. */
void tfi_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb,
               float beta, float *C, int64_t ldc, int nthreads);

/* Products of fewer than TFI_FEW_ROWS rows, with each output summed in
 * one order whatever m (kernels/fewrows.c: why), B read once:
 *   abt: C [m, n] = A [m, k] B^T, B [n, k]; an output is the 16-lane dot
 *        product of vecmath.h;
 *   ab:  C [m, n] = beta C + A [m, k] B, B [k, n]; an output is one fused
 *        multiply-add chain over k, then beta C is added.
 * lda, ldb, ldc are row strides.  The _plain versions are the definitions
 * (the tests' reference); they give the same bits. */
#define TFI_FEW_ROWS 64
void tfi_few_rows_abt(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                      const float *B, int64_t ldb, float *C, int64_t ldc);
void tfi_few_rows_ab(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                     const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void tfi_few_rows_abt_plain(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                            const float *B, int64_t ldb, float *C, int64_t ldc);
void tfi_few_rows_ab_plain(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                           const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* dst [cols, rows] (row stride ldd) = src [rows, cols] (row stride lds)
 * transposed (kernels/transpose.c: why GEMM callers copy B^T first). */
void tfi_transpose(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows,
                   int64_t cols);
/* The same with the plain loops only (the tests' reference). */
void tfi_transpose_plain(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows,
                         int64_t cols);

/* ---- memory ----------------------------------------------------------- */

/* 64-byte aligned allocation (NULL on failure or bytes == 0 overflow). */
void *tfi_alloc(size_t bytes);
void *tfi_calloc(size_t count, size_t size); /* zeroed, aligned, overflow-checked */
void tfi_free(void *p);

/* Gives the whole pages of [p + keep, p + bytes) back to the system, for
 * an allocation p of `bytes` whose tail is no longer used (a tensor
 * narrowed in place): they cost no memory until written again, and then
 * read as zeros.  The allocation stays one block for tfi_free. */
void tfi_release_tail(void *p, size_t keep, size_t bytes);

/* Grow-only workspace: ensures *buf holds at least count floats, keeping
 * the old buffer when large enough.  Returns TF_OK or TF_ERR_NOMEM (then
 * *buf and *cap are unchanged). */
tf_status tfi_reserve(float **buf, size_t *cap, size_t count);

/* ---- random numbers --------------------------------------------------- */

/* A small deterministic generator (SplitMix64 seeding xoshiro256**). */
typedef struct tfi_rng {
    uint64_t s[4];
    int has_spare;
    double spare;
} tfi_rng;

/* One SplitMix64 step: advances *state, returns the next output. */
uint64_t tfi_splitmix64(uint64_t *state);
void tfi_rng_seed(tfi_rng *r, uint64_t seed);
uint64_t tfi_rng_next(tfi_rng *r);
double tfi_rng_uniform(tfi_rng *r);         /* [0, 1) */
double tfi_rng_normal(tfi_rng *r);          /* N(0, 1), Box-Muller */
void tfi_rng_fill_normal(tfi_rng *r, float *dst, size_t count, double std);

/* ---- parameter structs (params.c) -------------------------------------- */

/* The smallest struct_size a library accepts for a params struct: through
 * the first field after struct_size. */
#define TFI_PARAMS_MIN(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* The body of every *_params_init(p, size): the first min(size, dsize)
 * bytes of defaults, with that size stored in p->struct_size; nothing for
 * p NULL or size < sizeof(size_t). */
void tfi_params_init(void *p, size_t size, const void *defaults, size_t dsize);

/* Copy-in of a caller's params struct: dst (this library's struct, dsize
 * bytes) holds the defaults; src (NULL: keep them) must have a struct_size
 * in [min_size, dsize], and its first struct_size bytes replace the
 * defaults (fields an older caller lacks keep them); dst->struct_size
 * becomes dsize.  Otherwise TF_ERR_ARGUMENT "fn: type.struct_size ..." in
 * eb and tf_last_error(), and dst is unchanged. */
tf_status tfi_params_in(void *dst, size_t dsize, const void *src, size_t min_size,
                        const char *fn, const char *type, tfi_errbuf *eb);

/* Copy-out into a caller's struct dst, whose struct_size must be in
 * [min_size, ssize] (ssize: this library's sizeof): exactly that many bytes
 * of src are written, dst->struct_size keeps its value.  Otherwise
 * TF_ERR_ARGUMENT as above and nothing is written. */
tf_status tfi_params_out(void *dst, const void *src, size_t ssize, size_t min_size,
                         const char *fn, const char *type, tfi_errbuf *eb);

/* ---- misc ------------------------------------------------------------- */

/* Safe size product a*b*c with overflow check (returns 0 on overflow). */
size_t tfi_mul_size(size_t a, size_t b);

/* ---- optimizer hyperparameters (optimizer.c; the config reader uses them) */

/* Bounds: a step count beyond TFI_MAX_STEPS (2^53, where double stops
 * counting exactly) is refused by the step and by loading; a peak learning
 * rate above TFI_MAX_LR is refused as absurd for AdamW. */
#define TFI_MAX_STEPS (INT64_C(1) << 53)
#define TFI_MAX_LR 1.0

/* NULL if every hyperparameter of p is in its meaningful range; otherwise
 * the offending field's name ("lr", "beta1", ...) with the reason in msg.
 * The one home of those ranges (tf_optimizer_create, set_params and the
 * config reader). */
const char *tfi_optimizer_params_invalid(const tf_optimizer_params *p, char *msg, size_t cap);

#endif /* TF_INTERNAL_H */
