/*
 * tokenformer.h -- the public API of libtokenformer, and its manual.
 *
 * libtokenformer implements TokenFormer (ICLR 2025): a Transformer in which
 * every linear projection is a *Pattention* layer, attention from input
 * tokens to learnable key/value parameter tokens.  Because parameters are
 * tokens, a trained model grows by appending parameter tokens.
 *
 * Everything that is not declared in this header is not API.
 *
 * Conventions (they hold for every function below unless it says otherwise)
 * -------------------------------------------------------------------------
 * - Fallible calls return a tf_status.  TF_OK is 0; every other value is an
 *   error, and the call changed nothing observable (no partial updates).
 * - The detail of the last error is kept on the handle the call was made on
 *   (tf_model_errmsg(), tf_pattention_errmsg(), ...) and, for every call, in
 *   a thread-local buffer read with tf_last_error().  The library never
 *   prints, never aborts and never exits.
 * - Handles are opaque.  Every *_create/_open/_load that returns a handle
 *   through an out-pointer gives the caller ownership: free it with the
 *   matching *_free.  *_free(NULL) is a no-op.  Handles documented as
 *   "borrowed" are owned by another handle and must not be freed.
 * - Arrays are float32, row-major, contiguous.  Sizes are element counts.
 *   Copy-in/copy-out calls take the destination's capacity in elements and
 *   fail with TF_ERR_SHAPE if it does not equal the tensor's size.
 * - A handle is not safe to use from two threads at once.  Distinct handles
 *   may be used from distinct threads.
 * - Parameter structs start with a struct_size field; obtain them from the
 *   matching *_default_params() (inline, over the exported *_params_init())
 *   and change only the fields you need.  New fields are only ever
 *   appended, so a program compiled against an older header keeps working.
 *   Calls that fill a struct (tf_config_model_params, tf_model_get_params,
 *   ...) write only the first out->struct_size bytes: initialise it first.
 *   A struct_size smaller than the oldest layout of the struct (which ends
 *   with the first field after struct_size) or larger than this library's
 *   sizeof is TF_ERR_ARGUMENT, on the way in and on the way out; nothing is
 *   read or written past a caller's struct_size.
 *
 * Process-wide state (documented, and the only global mutable state)
 * -------------------------------------------------------------------
 * - The runtime (BLIS initialisation, kernel-set choice, thread count) is
 *   set up once, on the first call that needs it, or by tf_init().
 * - Environment switches read at that moment:
 *     TF_BLIS_ARCH     kernel set for BLIS: "auto" (default), "blis" (leave
 *                      the choice to BLIS), or a BLIS configuration name
 *                      such as "skx", "zen3", "haswell", "generic".
 *     TF_NUM_THREADS   threads for GEMMs and element-wise kernels.
 *     TF_ARCH          instruction set of the library's own element-wise
 *                      kernels (Theta, attention softmax, LayerNorm):
 *                      "auto" (default: the best
 *                      the CPU runs), "avx512" (x86-64-v4), "avx2"
 *                      (x86-64-v3: AVX2 + FMA) or "generic" (the
 *                      baseline).  A set the CPU lacks is lowered to the
 *                      best it has; any other value is ignored.  Results
 *                      of different sets agree within the kernels' stated
 *                      bounds, not bit for bit.  BLIS's kernels are chosen
 *                      apart (TF_BLIS_ARCH): to run a whole AVX2 machine's
 *                      code on an AVX-512 one, set both (avx2, haswell).
 *   A BLIS_ARCH_TYPE already present in the environment is respected and
 *   wins over "auto".  To apply its choice the library sets BLIS_ARCH_TYPE
 *   in the process environment before BLIS initialises (BLIS reads it only
 *   then).  If BLIS was initialised by someone else first, the choice cannot
 *   take effect; tf_get_info() always reports the kernel set that runs.
 */
#ifndef TOKENFORMER_H
#define TOKENFORMER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Versions.  The SONAME is libtokenformer.so.TF_VERSION_MAJOR.  Until 1.0 a
 * minor release may change the API (recorded in CHANGELOG.md); from 1.0 on,
 * the ABI only grows within a major version.
 * ---------------------------------------------------------------------- */
#define TF_VERSION_MAJOR 0
#define TF_VERSION_MINOR 1
#define TF_VERSION_PATCH 0
#define TF_VERSION_NUMBER \
    (TF_VERSION_MAJOR * 1000000 + TF_VERSION_MINOR * 1000 + TF_VERSION_PATCH)
#define TF_VERSION_STRING "0.1.0"

#if defined(TF_BUILDING_LIBRARY) && defined(__GNUC__)
#define TF_API __attribute__((visibility("default")))
#else
#define TF_API
#endif

/* The library's version, to compare with TF_VERSION_NUMBER of the header a
 * program was compiled with. */
TF_API int tf_version_number(void);
TF_API const char *tf_version_string(void);

/* ------------------------------------------------------------------------
 * Status codes and errors
 * ---------------------------------------------------------------------- */
typedef enum tf_status {
    TF_OK = 0,
    TF_ERR_ARGUMENT = 1,  /* NULL handle/pointer, zero size, bad enum value */
    TF_ERR_SHAPE = 2,     /* sizes or shapes disagree */
    TF_ERR_NOMEM = 3,     /* allocation failed; nothing was changed */
    TF_ERR_IO = 4,        /* open/read/write/fsync/rename failed */
    TF_ERR_FORMAT = 5,    /* corrupt, truncated or unsupported file content */
    TF_ERR_CONFIG = 6,    /* a configuration value is missing or invalid */
    TF_ERR_NONFINITE = 7, /* NaN or infinity in a loss or gradient */
    TF_ERR_STATE = 8,     /* call out of order (e.g. backward before forward) */
    TF_ERR_RANGE = 9,     /* token id, position or index out of range */
    TF_ERR_NOT_FOUND = 10 /* no tensor, key or set by that name */
} tf_status;

/* A short constant name for a status ("TF_ERR_SHAPE"); never NULL. */
TF_API const char *tf_status_name(tf_status status);

/* The message of the most recent failed call made by this thread, or "" if
 * none failed yet.  Valid until the next failing call in this thread. */
TF_API const char *tf_last_error(void);

/* ------------------------------------------------------------------------
 * Runtime: BLIS kernel set, threads, information
 * ---------------------------------------------------------------------- */

/* Optional explicit initialisation, before any other call.  blis_arch has the
 * meaning of TF_BLIS_ARCH (NULL: read TF_BLIS_ARCH, default "auto").  After
 * the runtime is up, a second call with a different choice fails with
 * TF_ERR_STATE (BLIS cannot switch kernels once initialised). */
TF_API tf_status tf_init(const char *blis_arch);

/* Threads used by GEMMs and by the element-wise kernels.  Process-wide.
 * Default: TF_NUM_THREADS if set, else the number of online CPUs.  n must
 * be >= 1 (else TF_ERR_ARGUMENT); a larger n than 4 per online CPU, or
 * than 1024, is lowered to that bound, and tf_get_num_threads() returns
 * the count in effect (TF_NUM_THREADS is bounded the same way).
 *
 * The threads: the library keeps one pool of n - 1 worker threads for the
 * process, which run its parallel loops together with the calling thread.
 * tf_set_num_threads(n) makes (or ends) the workers before it returns; if
 * the system refuses a thread (a process or cgroup limit such as ulimit -u
 * or pids.max, or no memory for its stack) it returns TF_ERR_NOMEM, ends
 * the workers it made, and the count stays as it was.  With the default
 * count the workers are made by the first call that has work for them; if
 * the system refuses some there, the library runs with those it got (down
 * to the calling thread alone) and tf_get_num_threads() says how many.  The
 * workers block all signals, live until the process ends, and are gone in
 * a child of fork() (the child makes new ones when it needs them).  The
 * library does not use OpenMP; BLIS, if it is linked as its OpenMP build,
 * runs single-threaded.
 *
 * Several host threads (distinct handles, see the top of this header):
 * the pool runs one parallel loop at a time.  A call that finds it busy
 * with another host thread's loop runs its own loop on its calling thread
 * alone, with the same results, and never waits for the other's loop;
 * tf_set_num_threads waits for a loop under way.
 *
 * Sharing the CPUs with other work.  A thread the system deschedules must
 * not hold the others back:
 * - GEMMs do not use BLIS's own threads (whose barriers busy-wait without
 *   ever yielding); each large one is cut along the longer side of its
 *   result into a few blocks per thread, each block one single-threaded
 *   BLIS call, and the blocks are handed out one at a time.  Row loops of
 *   the element-wise kernels likewise hand out a few rows at a time.
 * - A thread with nothing left to do spins for about 20 microseconds (the
 *   gap between a step's back-to-back loops), then sleeps until there is,
 *   so it gives its CPU to the thread that is late.  On a machine whose
 *   CPUs are all busy, 2 threads are then faster than 1, and on a quiet
 *   machine as fast as before (bench/shared_cores.sh measures both).
 *   The library does not read OMP_WAIT_POLICY.
 * - Results are the same bits for every thread count: every block, row and
 *   partial sum is computed the same way whichever thread takes it, large
 *   GEMMs take BLIS's packing path whose every element is the same sum
 *   however the product is cut, and sums across rows are taken in fixed
 *   parts.
 */
TF_API tf_status tf_set_num_threads(int n);
TF_API int tf_get_num_threads(void);

typedef struct tf_info {
    size_t struct_size;         /* set by the caller: sizeof(tf_info) */
    int version_number;         /* tf_version_number() */
    const char *version_string; /* static string */
    const char *blis_version;   /* BLIS's own version string */
    const char *blis_arch;      /* the BLIS kernel set that runs, e.g. "skx" */
    const char *blis_arch_source; /* why: "auto", "TF_BLIS_ARCH",
                                   "tf_init", "BLIS_ARCH_TYPE", "blis" */
    int cpu_avx512;             /* 1 if the CPU has AVX-512 F/CD/BW/DQ/VL */
    int cpu_avx2;               /* 1 if the CPU has AVX2 and FMA */
    int blis_arch_generic;      /* 1 if BLIS runs its slow generic kernels */
    int num_threads;            /* tf_get_num_threads() */
    const char *kernel_arch;    /* the instruction set of the library's own
                                   element-wise kernels: "avx512", "avx2"
                                   or "generic" (see TF_ARCH) */
    const char *kernel_arch_source; /* why: "auto", "TF_ARCH", or "auto
                                   (TF_ARCH ignored: ...)", "TF_ARCH (...
                                   lowered to ...)" */
    const char *bf16_kernel;    /* the product bfloat16 weights run through
                                   (tf_model_make_inference): "avx512",
                                   "avx2" (widening the weights, float32
                                   FMAs), "plain", or "avx512_bf16"
                                   (vdpbf16ps, if TF_BF16_KERNEL asks) */
} tf_info;

/* Initialises the runtime if needed and fills *info (up to
 * info->struct_size bytes).  The strings are static. */
TF_API tf_status tf_get_info(tf_info *info);

/* ------------------------------------------------------------------------
 * Pattention parameter sets
 *
 * A set holds n parameter tokens: keys K [n, d_in] and values V [n, d_out].
 * For input rows X [N, d_in]:
 *
 *     A = X K^T            [N, n]     (no 1/sqrt(d) factor)
 *     S = Theta(A)         [N, n]     row-wise
 *     Y = S V              [N, d_out]
 *
 *   TF_NORM_L2_NORM_GELU  Theta(a) = gelu(a / ||a||_2 * tau)   tau = sqrt(n)
 *   TF_NORM_GELU_L2_NORM  g = gelu(a); Theta(a) = g / ||g||_2 * tau  sqrt(n)
 *   TF_NORM_SOFTMAX       Theta(a) = softmax(a) * tau          tau = n
 *
 * gelu is the exact erf form.  Softmax is computed max-shifted, so large
 * scores do not overflow.  Zero-norm guard: a row whose L2 norm is exactly
 * zero (an all-zero score row, or all-zero gelu outputs) has Theta = 0 and
 * a zero gradient, where the official code would produce NaN.
 *
 * Scale policy: TF_SCALE_FOLLOW_N recomputes tau from n whenever the set
 * grows (what the official code does: old outputs are rescaled by
 * sqrt(n'/n)); TF_SCALE_PINNED keeps tau at its value when the set was
 * created (or at the explicit params.tau).  With zero new keys and a pinned
 * tau the GELU norms compute exactly the same function after growth.  Under
 * softmax a zero key still receives weight exp(0), so NO growth preserves
 * the function there.
 * ---------------------------------------------------------------------- */
typedef struct tf_pattention tf_pattention;

typedef enum tf_norm_type {
    TF_NORM_L2_NORM_GELU = 0, /* "l2_norm_gelu": the paper's default */
    TF_NORM_GELU_L2_NORM = 1, /* "gelu_l2_norm" */
    TF_NORM_SOFTMAX = 2       /* "softmax" */
} tf_norm_type;

typedef enum tf_scale_policy {
    TF_SCALE_FOLLOW_N = 0, /* tau = default(n) at every size (official) */
    TF_SCALE_PINNED = 1    /* tau fixed */
} tf_scale_policy;

typedef enum tf_key_init {
    TF_KEYS_ZERO = 0,  /* new keys zero (the paper) */
    TF_KEYS_RANDOM = 1 /* new keys N(0, key_std) (the official release) */
} tf_key_init;

/* "l2_norm_gelu" -> TF_NORM_L2_NORM_GELU, ...; NULL for a bad value. */
TF_API const char *tf_norm_type_name(tf_norm_type norm);

typedef struct tf_pattention_params {
    size_t struct_size;
    int64_t n;       /* parameter tokens (default 64) */
    int64_t d_in;    /* input width (default 64) */
    int64_t d_out;   /* output width (default 64) */
    tf_norm_type norm;             /* default TF_NORM_L2_NORM_GELU */
    tf_scale_policy scale_policy;  /* default TF_SCALE_FOLLOW_N */
    double tau;      /* 0: default from n; > 0: this value (then pinned) */
    uint64_t seed;   /* initialisation seed (default 1) */
    double key_std;  /* keys ~ N(0, key_std) (default 0.02) */
    double value_std;/* values ~ N(0, value_std) (default 0.02) */
} tf_pattention_params;

/* Fills *p with the defaults: the first `size` bytes (pass sizeof *p), at
 * most this library's size, which it stores in p->struct_size. */
TF_API void tf_pattention_params_init(tf_pattention_params *p, size_t size);
/* The defaults as a value.  Inline, so that the struct is the caller's own
 * size: a program built against an older header stays safe with a newer
 * library (which only ever appends fields). */
static inline tf_pattention_params tf_pattention_default_params(void)
{
    tf_pattention_params p;
    tf_pattention_params_init(&p, sizeof p);
    return p;
}

/* Creates a set; the caller owns *out. */
TF_API tf_status tf_pattention_create(const tf_pattention_params *params,
                                      tf_pattention **out);
TF_API void tf_pattention_free(tf_pattention *set);
/* Message of the last error on this set ("" if none).  Never NULL. */
TF_API const char *tf_pattention_errmsg(const tf_pattention *set);

TF_API int64_t tf_pattention_n(const tf_pattention *set);     /* 0 if NULL */
TF_API int64_t tf_pattention_d_in(const tf_pattention *set);
TF_API int64_t tf_pattention_d_out(const tf_pattention *set);
TF_API tf_norm_type tf_pattention_norm(const tf_pattention *set);
TF_API double tf_pattention_tau(const tf_pattention *set);    /* 0 if NULL */
TF_API tf_scale_policy tf_pattention_scale_policy(const tf_pattention *set);
/* Sets tau explicitly and pins it (TF_SCALE_PINNED), ending any tau ramp
 * of the set (tf_grow_params.tau_ramp_steps).  tau must be > 0. */
TF_API tf_status tf_pattention_set_tau(tf_pattention *set, double tau);

/* Copy keys [n, d_in] / values [n, d_out] out or in; count must equal the
 * tensor's size.  get_*_grad copy the accumulated gradients: zeros before
 * the set's first backward, which allocates them (a set that only runs
 * forward never holds gradient buffers). */
TF_API tf_status tf_pattention_get_keys(const tf_pattention *set, float *dst, size_t count);
TF_API tf_status tf_pattention_set_keys(tf_pattention *set, const float *src, size_t count);
TF_API tf_status tf_pattention_get_values(const tf_pattention *set, float *dst, size_t count);
TF_API tf_status tf_pattention_set_values(tf_pattention *set, const float *src, size_t count);
TF_API tf_status tf_pattention_get_key_grad(const tf_pattention *set, float *dst, size_t count);
TF_API tf_status tf_pattention_get_value_grad(const tf_pattention *set, float *dst, size_t count);

/* Y [N, d_out] = Pattention(X [N, d_in]).  Keeps what backward needs in the
 * set's workspace (sized for the largest N seen; reused, never shrunk). */
TF_API tf_status tf_pattention_forward(tf_pattention *set, int64_t N,
                                       const float *X, float *Y);

/* Backward of the most recent forward, which must have had the same N and
 * the same X (X is read again, not kept).  Writes dX [N, d_in] (dX may be
 * NULL to skip it) and ACCUMULATES dK, dV into the set's gradient buffers. */
TF_API tf_status tf_pattention_backward(tf_pattention *set, int64_t N,
                                        const float *X, const float *dY,
                                        float *dX);
TF_API tf_status tf_pattention_zero_grad(tf_pattention *set);

/* How growth treats the learning-rate schedule (tf_grow_params.lr_schedule)
 * and which restart an optimizer's schedule is in (tf_optimizer_params.
 * lr_restart; see "Optimizer" for the formulas). */
typedef enum tf_lr_restart {
    TF_LR_KEEP = 0,    /* no restart: the schedule goes on as it is */
    TF_LR_RESTART = 1, /* a new warmup + cosine, counted from the restart */
    TF_LR_CONTINUE = 2 /* the optimizer's own schedule goes on over the step
                          count, times a factor, warmed up again */
} tf_lr_restart;

/* How to grow: the initialisation of the new parameter tokens and the
 * scale, and (from reset_optimizer on) what the growth does to training.
 * The defaults grow and change nothing else; tf_grow_recipe_params() gives
 * the recipe of experiments/scaling.  The training fields (tau_ramp_steps
 * > 0, reset_optimizer, lr_schedule other than TF_LR_KEEP) need an
 * optimizer: tf_model_grow with opt applies them, tf_model_grow without
 * one and tf_pattention_grow refuse them (TF_ERR_ARGUMENT), and
 * tf_model_load_grown ignores them (a loaded model starts a new run). */
typedef struct tf_grow_params {
    size_t struct_size;
    tf_key_init key_init;         /* default TF_KEYS_ZERO */
    tf_scale_policy scale_policy; /* default TF_SCALE_PINNED */
    double key_std;               /* for TF_KEYS_RANDOM (default 0.02) */
    double value_std;             /* > 0: new values ~ N(0, value_std);
                                     <= 0 (default): N(0, value_std_scale x
                                     the set's own init std, value_std of
                                     tf_pattention_params; a model's sets
                                     have 2 / L / sqrt(d)) */
    uint64_t seed;                /* default 1 */
    /* -- appended in 0.2 -- */
    double value_std_scale;       /* see value_std; >= 0 (default 1) */
    int64_t tau_ramp_steps;       /* > 0, with TF_SCALE_PINNED: tau stays at
                                     the growth (the function is kept), then
                                     every tf_optimizer_step moves it by
                                     1/tau_ramp_steps of the way to the
                                     default tau of the new size, which it
                                     holds after tau_ramp_steps steps (the
                                     set stays pinned).  Only grown sets
                                     ramp.  0 (default): no ramp */
    int32_t reset_optimizer;      /* 1: the AdamW moments restart from zero,
                                     bias correction included, as a new
                                     optimizer's would; the step count and
                                     the hyperparameters go on.  0 (default):
                                     the moments are carried (new rows 0) */
    tf_lr_restart lr_schedule;    /* default TF_LR_KEEP */
    double lr;                    /* TF_LR_RESTART: the peak; <= 0 (default):
                                     the optimizer's lr */
    double min_lr;                /* TF_LR_RESTART: the end of the cosine,
                                     at most the peak (larger: the peak);
                                     < 0 (default -1): the optimizer's
                                     min_lr / 10 */
    int64_t warmup_steps;         /* TF_LR_RESTART and TF_LR_CONTINUE: linear
                                     warmup from 0 over this many steps
                                     after the growth (default 0) */
    int64_t decay_steps;          /* TF_LR_RESTART: the cosine ends this many
                                     steps after the growth; 0 (default): at
                                     end_step */
    int64_t end_step;             /* TF_LR_RESTART with decay_steps 0: the
                                     step count where the cosine ends; 0
                                     (default): the optimizer's decay_steps
                                     (the end of its own schedule) */
    double lr_factor;             /* TF_LR_CONTINUE: multiplies the
                                     schedule, > 0 (default 1) */
} tf_grow_params;

/* Fills *p with the defaults: the first `size` bytes (pass sizeof *p), at
 * most this library's size, which it stores in p->struct_size. */
TF_API void tf_grow_params_init(tf_grow_params *p, size_t size);
/* The defaults as a value.  Inline, so that the struct is the caller's own
 * size: a program built against an older header stays safe with a newer
 * library (which only ever appends fields). */
static inline tf_grow_params tf_grow_default_params(void)
{
    tf_grow_params p;
    tf_grow_params_init(&p, sizeof p);
    return p;
}

/* The same with the growth recipe of experiments/scaling, which the
 * example programs start from: zero new keys, values N(0, init std / 20)
 * (value_std_scale 0.05), tau pinned at the growth and ramped to the new
 * size's default over 300 optimizer steps, the AdamW moments carried, and
 * the learning rate restarted at the optimizer's peak without warmup, in a
 * cosine to a tenth of its min_lr that ends where its schedule ends
 * (TF_LR_RESTART). */
TF_API void tf_grow_recipe_init(tf_grow_params *p, size_t size);
static inline tf_grow_params tf_grow_recipe_params(void)
{
    tf_grow_params p;
    tf_grow_recipe_init(&p, sizeof p);
    return p;
}

/* Appends new_n - n parameter tokens (new_n > n), initialised per params
 * (NULL: defaults), and applies the scale policy.  Old rows and their
 * gradients are kept; new gradient rows are zero.  The training fields of
 * params are refused (a set has no optimizer: grow through tf_model_grow).
 * On failure the set is unchanged. */
TF_API tf_status tf_pattention_grow(tf_pattention *set, int64_t new_n,
                                    const tf_grow_params *params);

/* ------------------------------------------------------------------------
 * Configurations (YAML, through libyaml)
 *
 * Reads the official TokenFormer configs as they are (JSON-style YAML with
 * '#' comments, quoted keys, Python-style True/False).  Keys the model or
 * optimizer use are validated; any other key is kept, and reported by
 * tf_config_ignored_key() unless the program declared it with
 * tf_config_use_keys().  Official configs carry no vocab_size: it
 * defaults to 50304 (the GPT-NeoX-20B tokenizer padded to 128).
 * ---------------------------------------------------------------------- */
typedef struct tf_config tf_config;

/* Parses path.  On failure *out is NULL and tf_last_error() names the key
 * and line.  The caller owns *out.  Limits, so that a hostile file is
 * refused in time linear in its size: a regular file (a FIFO or device is
 * TF_ERR_IO at once, never waited on) of at most 64 MiB, at most 2^21
 * nodes (keys, values and sequence items), nesting at most 64 deep
 * (TF_ERR_CONFIG beyond).  Duplicate keys are found in constant time each:
 * 80k keys parse in about 0.1 s (bench/bench_parsers). */
TF_API tf_status tf_config_load(const char *path, tf_config **out);
/* The same, from a string in memory (len bytes). */
TF_API tf_status tf_config_parse(const char *text, size_t len, tf_config **out);
TF_API void tf_config_free(tf_config *cfg);
TF_API const char *tf_config_errmsg(const tf_config *cfg);

/* Declares the top-level keys a program reads itself (a trainer's data
 * path, batch size, ...), so that they are not reported as ignored.  The
 * library's own keys (the model keys of tf_config_model_params, the
 * optimizer keys of tf_config_optimizer_params, train_iters among them) need
 * no declaring.  keys[0..count) are copied; '-' and '_' match each other;
 * calls add up.  TF_ERR_ARGUMENT for a NULL cfg, count < 0, or a NULL or
 * empty key; TF_ERR_NOMEM.  Either way nothing changed. */
TF_API tf_status tf_config_use_keys(tf_config *cfg, const char *const *keys, int count);

/* Top-level keys that neither the library nor the program (through
 * tf_config_use_keys) uses, in file order: misspellings, or settings of
 * other tools.  Borrowed from cfg. */
TF_API int tf_config_num_ignored(const tf_config *cfg);
TF_API const char *tf_config_ignored_key(const tf_config *cfg, int i); /* borrowed */

/* "Did you mean": the used key (the library's or a declared one) closest
 * to key, counting edits (a character inserted, deleted, replaced, or two
 * neighbours swapped; case and '-'/'_' do not count), if it is within 1
 * edit for keys of up to 4 characters, 2 up to 10, else 3; ties go to the
 * library's keys, then the declared ones in order.  NULL if none is that
 * close, if key itself is used, or for NULL arguments.  For messages such
 * as "unknown key 'train_iter' (did you mean 'train_iters'?)"; the string
 * is static or borrowed from cfg. */
TF_API const char *tf_config_suggest_key(const tf_config *cfg, const char *key);

/* Scalar look-ups, for programs with keys of their own (a trainer's data
 * path, say).  key is a top-level key or a dotted path into nested mappings
 * and sequences ("optimizer.params.betas.1"); '-' and '_' in keys match
 * each other, as in GPT-NeoX.  TF_ERR_NOT_FOUND if absent, TF_ERR_CONFIG
 * (naming key and line) if it is not of the requested type; a quoted
 * scalar is a string, never a number.  Strings are borrowed from cfg. */
TF_API int tf_config_has(const tf_config *cfg, const char *key);
TF_API tf_status tf_config_get_int(const tf_config *cfg, const char *key, int64_t *out);
TF_API tf_status tf_config_get_double(const tf_config *cfg, const char *key, double *out);
TF_API tf_status tf_config_get_bool(const tf_config *cfg, const char *key, int *out);
TF_API tf_status tf_config_get_string(const tf_config *cfg, const char *key, const char **out);

/* ------------------------------------------------------------------------
 * The language model
 *
 *   x = embed[tokens]
 *   per layer:  u = LN(x)                       (no weight, no bias)
 *               q,k,v = Pq(u), Pk(u), Pv(u)     (qkv_slot_num tokens each)
 *               rotary (GPT-NeoX rotate_half) on the first
 *                 r = int(head_dim * rotary_pct) dims of each head of q, k
 *                 (r = head_dim when rotary_pct == 1)
 *               o = causal softmax(q k^T / sqrt(head_dim)) v, per head
 *               x = x + Pproj(o)                (proj_slot_num)
 *               x = x + Pffn(LN(x))             (ffn_slot_num)
 *   logits = LayerNorm(x; final_norm.weight, final_norm.bias) embed^T
 *   loss   = mean cross-entropy over the B*T positions
 *
 * Tensor names: embed.weight [V, d]; layers.{i}.attention.{query,key,value,
 * proj}.{key,value}_param_tokens [n, d]; layers.{i}.mlp.{key,value}_param_
 * tokens [ffn_slot_num, d]; final_norm.weight, final_norm.bias [d].
 * ---------------------------------------------------------------------- */
typedef struct tf_model tf_model;
typedef struct tf_optimizer tf_optimizer; /* see Optimizer below */

typedef struct tf_model_params {
    size_t struct_size;
    int32_t num_layers;          /* L (default 2) */
    int32_t hidden_size;         /* d (default 64) */
    int32_t num_attention_heads; /* h, must divide d (default 4) */
    int64_t qkv_slot_num;        /* default 64 */
    int64_t proj_slot_num;       /* default 64 */
    int64_t ffn_slot_num;        /* default 256 */
    double rotary_pct;           /* default 0.25 */
    double rotary_emb_base;      /* default 10000 */
    tf_norm_type norm;           /* norm_activation_type, default l2_norm_gelu */
    int64_t vocab_size;          /* default 256 (bytes) */
    int64_t seq_length;          /* longest T (default 128); below 2^31, and
                                    seq_length x rotary dims per head at most
                                    2^24: the rotary tables (cos and sin for
                                    every position) are built at creation and
                                    stay under 64 MB */
    double layernorm_epsilon;    /* default 1e-5 */
    double init_method_std;      /* keys and embedding N(0, std), default 0.02;
                                    values use wang_init 2/L/sqrt(d) */
    uint64_t seed;               /* initialisation seed (default 1) */
    tf_scale_policy scale_policy;/* default TF_SCALE_FOLLOW_N */
} tf_model_params;

/* Fills *p with the defaults: the first `size` bytes (pass sizeof *p), at
 * most this library's size, which it stores in p->struct_size. */
TF_API void tf_model_params_init(tf_model_params *p, size_t size);
/* The defaults as a value.  Inline, so that the struct is the caller's own
 * size: a program built against an older header stays safe with a newer
 * library (which only ever appends fields). */
static inline tf_model_params tf_model_default_params(void)
{
    tf_model_params p;
    tf_model_params_init(&p, sizeof p);
    return p;
}

/* Fills *out (up to out->struct_size: initialise it with
 * tf_model_default_params() first) from a parsed config: the model keys of the official configs
 * (num_layers, hidden_size, num_attention_heads, {qkv,proj,ffn}_slot_num,
 * rotary_pct, rotary_emb_base, norm_activation_type, seq_length,
 * layernorm_epsilon, vocab_size, init_method_std, seed).  Missing required
 * keys, wrong types and inconsistent values are TF_ERR_CONFIG naming the
 * key and its line. */
TF_API tf_status tf_config_model_params(const tf_config *cfg, tf_model_params *out);

/* Creates a model with freshly initialised parameters (official init).
 * The gradient buffer (as many floats again) is allocated by the first
 * tf_model_backward, tf_model_set_grad, tf_model_grad_buffer or
 * tf_optimizer_create (which can then fail with TF_ERR_NOMEM, changing
 * nothing); until then
 * tf_model_get_grad reads zeros and tf_model_zero_grad does nothing. */
TF_API tf_status tf_model_create(const tf_model_params *params, tf_model **out);
TF_API void tf_model_free(tf_model *model);
TF_API const char *tf_model_errmsg(const tf_model *model);

/* The model's configuration (current slot numbers, after any growth). */
TF_API tf_status tf_model_get_params(const tf_model *model, tf_model_params *out);
/* Number of trainable scalars (0 if NULL). */
TF_API int64_t tf_model_num_params(const tf_model *model);

typedef enum tf_set_kind {
    TF_SET_QUERY = 0,
    TF_SET_KEY = 1,
    TF_SET_VALUE = 2,
    TF_SET_PROJ = 3,
    TF_SET_FFN = 4
} tf_set_kind;

/* A layer's Pattention set, borrowed from the model (NULL for a bad layer
 * or kind, with the reason in tf_last_error()).  The model's
 * forward/backward use it; a host may inspect it or grow it on its own (the
 * model's slot numbers and gradient buffer then follow). */
TF_API tf_pattention *tf_model_pattention(tf_model *model, int layer, tf_set_kind kind);

/* Named tensors (SPEC names), in canonical order. */
TF_API int tf_model_num_tensors(const tf_model *model);
TF_API const char *tf_model_tensor_name(const tf_model *model, int i); /* borrowed */
/* shape[0..1] and *ndim (1 or 2) of a named tensor. */
TF_API tf_status tf_model_tensor_shape(const tf_model *model, const char *name,
                                       int64_t shape[2], int *ndim);
TF_API tf_status tf_model_get_tensor(const tf_model *model, const char *name,
                                     float *dst, size_t count);
TF_API tf_status tf_model_set_tensor(tf_model *model, const char *name,
                                     const float *src, size_t count);
TF_API tf_status tf_model_get_grad(const tf_model *model, const char *name,
                                   float *dst, size_t count);
/* Replaces a tensor's accumulated gradient (e.g. gradients computed
 * elsewhere, to drive tf_optimizer_step); allocates the gradients if the
 * model has none yet. */
TF_API tf_status tf_model_set_grad(tf_model *model, const char *name, const float *src,
                                   size_t count);

/* Forward pass on tokens [B, T] (int32 ids < vocab_size, 1 <= T <=
 * seq_length).  logits [B, T, V] is written if not NULL.  If targets
 * [B, T] is not NULL the mean cross-entropy is written to *loss (if not
 * NULL) and the pass can be followed by tf_model_backward().  Activation
 * buffers are sized once per (B, T) and reused. */
TF_API tf_status tf_model_forward(tf_model *model, int B, int T,
                                  const int32_t *tokens, const int32_t *targets,
                                  float *logits, float *loss);

/* Gradients of the last forward's loss, ACCUMULATED into the model's
 * gradient buffers (the tied embedding gets both its contributions).
 * Needs a forward with targets since the last backward (for a vision
 * model, a tf_model_forward_images with labels). */
TF_API tf_status tf_model_backward(tf_model *model);
TF_API tf_status tf_model_zero_grad(tf_model *model);

/* Label smoothing of the training loss, for both tasks.  With eps > 0 a
 * forward with targets (tf_model_forward, tf_model_forward_images) takes
 * the cross-entropy against (1 - eps) onehot(target) + eps / V (V the
 * vocabulary or the classes), PyTorch's CrossEntropyLoss(label_smoothing):
 *   loss_i = lse_i - (1 - eps) logit_i[target_i] - eps mean_j logit_i[j]
 * and tf_model_backward its gradient (a backward uses its forward's eps).
 * eps = 0 (the default) is the plain loss, bit for bit.  A trainer's
 * setting of the handle, like the thread count: checkpoints do not keep
 * it; tf_decoder_score never smooths.  eps outside [0, 1) or not a number
 * is TF_ERR_ARGUMENT and leaves the setting as it was. */
TF_API tf_status tf_model_set_label_smoothing(tf_model *model, double eps);
/* The model's eps, as the float it is kept in (0 for NULL). */
TF_API double tf_model_get_label_smoothing(const tf_model *model);

/* ------------------------------------------------------------------------
 * Vision: a ViT-style image classifier built from the same layers
 *
 * A model created by tf_model_create_vision classifies images.  With
 * images H = W = image_size, C = channels, patches p = patch_size (p
 * divides H), P = (H / p)^2 patches and K = num_classes:
 *   patches  [B*P, p*p*C]: patch (i, j) of each image, row-major over the
 *            patch grid, each flattened in (row, column, channel) order
 *   x        = Ppatch(patches) + pos_embed          (patch_slot_num tokens;
 *                                                    pos_embed [P, d])
 *   x        = the language model's pre-norm layers (same Pattention
 *              sets, norms and scale policy), with bidirectional attention
 *              (every patch attends to every patch) and no rotary
 *   pooled   = mean over the P rows of each image of
 *              LayerNorm(x; final_norm.weight, final_norm.bias)   [B, d]
 *   logits   = Phead(pooled)                   [B, K] (head_slot_num tokens)
 *   loss     = mean cross-entropy over the B images
 * Every projection is a Pattention set, the patch tokenisation and the
 * classifier included, so growth can reach all of them.
 * Why a learned position embedding and not 2-D rotary: the grid is fixed
 * (P positions, 49 for 28 x 28 images in 4 x 4 patches), so a table of P
 * rows costs P*d parameters and lets the model learn whatever 2-D
 * structure helps; it is what ViT does, and what the paper's vision model
 * inherits.  Why mean pooling and not a class token: it needs no extra
 * position and no tensor that only one row of the batch trains, and small
 * ViTs classify at least as well with it (global average pooling).
 * Initialisation follows the language model: keys and pos_embed
 * N(0, init_method_std), values N(0, 2/L/sqrt(d)), final norm 1 and 0;
 * every set draws from its own seed.
 *
 * Tensor names (table order): pos_embed [P, d]; the layers' sets as in the
 * language model; patch_embed.key_param_tokens [patch_slot_num, p*p*C],
 * patch_embed.value_param_tokens [patch_slot_num, d];
 * head.key_param_tokens [head_slot_num, d], head.value_param_tokens
 * [head_slot_num, K]; final_norm.weight, final_norm.bias [d].  The
 * optimizer, gradient buffer, tensor calls and tf_model_grow work on a
 * vision model as on a language model: tf_model_grow grows the layers'
 * sets (function-preserving as there); the patch and head sets keep their
 * size (the trunk is what scaling grows; their sizes are fixed by
 * patch_slot_num and head_slot_num).  During a vision backward the
 * gradient-ready callback reports the whole buffer once, at the end.
 * Checkpoints: tf_model_save writes the task in the metadata ("task":
 * "vision" or "language", and for vision image_size, channels,
 * patch_size, num_classes, patch_slot_num, head_slot_num), tf_model_open
 * builds the kind the file holds, and tf_model_load of a file of the
 * other kind is TF_ERR_STATE; optimizer state and resume work as for a
 * language model.  The language-model calls (tf_model_forward,
 * tf_decoder_create, tf_model_load_grown) on a vision model, and the
 * image calls on a language model, are TF_ERR_STATE.
 * ---------------------------------------------------------------------- */
typedef struct tf_vision_params {
    size_t struct_size;
    int32_t image_size;          /* H = W (default 28) */
    int32_t channels;            /* C (default 1) */
    int32_t patch_size;          /* p, divides image_size (default 4) */
    int32_t num_classes;         /* K >= 2 (default 10) */
    int64_t patch_slot_num;      /* tokens of the patch set (default 64) */
    int64_t head_slot_num;       /* tokens of the head set (default 64) */
    /* the layers, as in tf_model_params (same defaults) */
    int32_t num_layers;
    int32_t hidden_size;
    int32_t num_attention_heads;
    int64_t qkv_slot_num;
    int64_t proj_slot_num;
    int64_t ffn_slot_num;
    tf_norm_type norm;
    double layernorm_epsilon;
    double init_method_std;
    uint64_t seed;
    tf_scale_policy scale_policy;
} tf_vision_params;

/* Fills *p with the defaults (first `size` bytes, pass sizeof *p). */
TF_API void tf_vision_params_init(tf_vision_params *p, size_t size);
static inline tf_vision_params tf_vision_default_params(void)
{
    tf_vision_params p;
    tf_vision_params_init(&p, sizeof p);
    return p;
}

/* Creates an image classifier with freshly initialised parameters.  Bad
 * params are TF_ERR_CONFIG naming the field (tf_last_error()).  Free with
 * tf_model_free. */
TF_API tf_status tf_model_create_vision(const tf_vision_params *params, tf_model **out);
/* 1 for a vision model, 0 for a language model (or NULL). */
TF_API int tf_model_is_vision(const tf_model *model);
/* The vision model's configuration (current slot numbers, after any
 * growth); TF_ERR_STATE on a language model.  tf_model_get_params gives
 * its layer fields too (seq_length = P, vocab_size = K, rotary_pct 0). */
TF_API tf_status tf_model_get_vision_params(const tf_model *model, tf_vision_params *out);

/* Forward pass on B images: pixels [B, H, W, C] (row-major; for C = 1
 * [B, H, W], as tf_image_dataset_train_batch writes them).  logits [B, K]
 * is written if not NULL.  If labels [B] (each in [0, K)) is not NULL the
 * mean cross-entropy goes to *loss (if not NULL) and tf_model_backward()
 * may follow.  Activations are sized once per B and reused.  Errors:
 * TF_ERR_ARGUMENT (NULL pixels, B < 1), TF_ERR_RANGE (a label),
 * TF_ERR_STATE (a language model), TF_ERR_NONFINITE (loss), TF_ERR_NOMEM. */
TF_API tf_status tf_model_forward_images(tf_model *model, int B, const float *pixels,
                                         const int32_t *labels, float *logits, float *loss);
/* The predicted class of each of B images: classes [B] = argmax of the
 * logits (the lowest class on ties).  A forward without labels: it ends
 * any pending backward. */
TF_API tf_status tf_model_predict(tf_model *model, int B, const float *pixels,
                                  int32_t *classes);

/* ------------------------------------------------------------------------
 * Data-parallel training: what a host that runs one model per process and
 * sums the gradients across processes (MPI_Allreduce, say) needs.  The
 * library itself knows nothing of MPI.
 *
 * The gradient buffer.  Every gradient of a model lives in one contiguous
 * float array that the model owns, in table order (tf_model_tensor_name's:
 * embed.weight; then per layer 0, 1, ... the keys and values of its query,
 * key, value, proj and mlp sets; then final_norm.weight and final_norm.bias),
 * each tensor row-major right after the one before.  Layout and size are a
 * function of the configuration (slot numbers included), so every process
 * of a run has the same layout, and one collective call -- or a few, over
 * buckets the host chooses -- sums the buffer in place with no copies.  (A
 * list of per-tensor buffers would need 10 L + 3 calls or a copy into a
 * staging buffer.)
 *
 * A data-parallel step: every process runs forward/backward on its share
 * of the batch, the host sums the buffers in place across processes, and
 * every process runs tf_optimizer_step (with grad_accum_steps counting the
 * micro-batches of all processes together, so that the sum becomes the
 * mean).  Processes that start from the same parameters then stay bit
 * identical, as long as the sum gives every process the same bits (MPI's
 * usual allreduce algorithms do); tf_model_checksum checks it.
 * ---------------------------------------------------------------------- */

/* The gradient buffer: *data (borrowed, owned by the model) and *count
 * elements (tf_model_num_params).  It holds the gradients accumulated by
 * tf_model_backward; a host may read it and write it in place (the sum over
 * processes, say), which is what tf_model_get_grad / tf_model_set_grad and
 * tf_optimizer_step see (the step reads it, then zeroes it).  The pointer
 * stays valid until the model grows (tf_model_grow, or tf_pattention_grow
 * on one of its sets: growth lays the buffer out anew, keeping the
 * gradients, all or nothing) or is freed; call again after a growth.  A
 * model without gradients yet (one that has only run forward) gets them
 * here, zero: TF_ERR_NOMEM then changes nothing.  TF_ERR_ARGUMENT for a
 * NULL argument. */
TF_API tf_status tf_model_grad_buffer(tf_model *model, float **data, size_t *count);

/* Called during tf_model_backward whenever a range of the gradient buffer
 * is final for that backward: [offset, offset + count) of grads (the
 * buffer's start, as tf_model_grad_buffer gives it; elements) is not
 * written again by that call.  Ranges come in the order backward finishes
 * them: final_norm.weight and .bias, then every tensor of layer L-1, of
 * layer L-2, ..., of layer 0, and last embed.weight (the tied embedding
 * receives its second contribution at the very end).  So they are
 * disjoint, together cover the whole buffer exactly once per backward, and
 * each ends where the one before begins.  The callback runs on the thread
 * that called tf_model_backward, between kernels; it may read and write
 * its range (start summing it across processes: the rest of the backward
 * overlaps the communication) but must not call the model or touch ranges
 * not yet reported.  A backward reports every range even if gradients are
 * being accumulated over micro-batches: a host that reduces once per
 * optimizer step acts on the reports of the step's last backward only. */
typedef void (*tf_grad_ready_callback)(void *user, float *grads, size_t offset, size_t count);
/* Installs fn (NULL: none, the default) with its user pointer; replaces any
 * earlier one. */
TF_API tf_status tf_model_set_grad_ready_callback(tf_model *model, tf_grad_ready_callback fn,
                                                  void *user);

/* A 64-bit hash of the model's state, for checking that the processes of a
 * data-parallel run hold the same model: every tensor in table order (its
 * name, its shape and the bytes of its parameters), each Pattention set's
 * tau, scale policy and tau ramp, and, if opt is not NULL (it must be bound
 * to model, else TF_ERR_ARGUMENT), the optimizer's step count, moment reset
 * and schedule restart and both moments of every tensor.  Gradients and
 * the other hyperparameters are not included.  Equal states give equal
 * values; states that differ in one 8-byte word always give different
 * values, and in general different states collide with a chance of about
 * 2^-64 (not a cryptographic hash).  The value depends on the host's byte
 * order and may change between library versions: compare values computed
 * by one library version on machines of one byte order.  Reads every
 * parameter (and moment) once: about as long as a copy of them. */
TF_API tf_status tf_model_checksum(const tf_model *model, const tf_optimizer *opt,
                                   uint64_t *out);

/* ------------------------------------------------------------------------
 * Growth (incremental scaling) of a whole model
 * ---------------------------------------------------------------------- */

/* Grows every layer's query/key/value sets to qkv_slot_num tokens, proj to
 * proj_slot_num and mlp to ffn_slot_num (a number equal to the current one
 * leaves that kind as it is; smaller is an error, and so is growing
 * nothing).  New tokens per params (NULL: defaults -- zero keys, values
 * N(0, the model's value std), pinned tau); each set draws from its own
 * seed derived from params->seed.  If opt is not NULL it must be bound to
 * this model: its moments grow with the tensors (new rows zero, the step
 * count kept), so training continues; then the training fields of params
 * apply as of the optimizer's current step count: the tau ramp of the
 * grown sets (advanced by every later tf_optimizer_step), the reset of the
 * moments, and the schedule restart, resolved against the optimizer's
 * hyperparameters into its lr_restart fields (tf_optimizer_get_params
 * shows them).  A program grows with the recipe by calling this with
 * tf_grow_recipe_params(), between two optimizer steps.  All or nothing:
 * on failure model and optimizer are unchanged.  With zero keys and pinned
 * tau the GELU norms compute exactly the function of before. */
TF_API tf_status tf_model_grow(tf_model *model, tf_optimizer *opt, int64_t qkv_slot_num,
                               int64_t proj_slot_num, int64_t ffn_slot_num,
                               const tf_grow_params *params);

/* ------------------------------------------------------------------------
 * Optimizer: AdamW (torch.optim.AdamW semantics) with global-norm gradient
 * clipping, linear warmup then cosine decay, and gradient accumulation.
 *
 * One step, at step number t = 1, 2, ... with lr_t from the schedule:
 *   g = grad / grad_accum_steps        (the mean over the micro-batches)
 *   c = min(1, clip_grad / (||g||_2 + 1e-6)) over all tensors together
 *   m = beta1 m + (1 - beta1) c g;   v = beta2 v + (1 - beta2) (c g)^2
 *   p = p (1 - lr_t weight_decay)    (embedding and parameter tokens only,
 *                                     never final_norm.weight / .bias)
 *   p = p - lr_t / (1 - beta1^k) * m / (sqrt(v) / sqrt(1 - beta2^k) + eps)
 * where k = t, or t - r if the moments were reset (growth with
 * reset_optimizer) when r steps were done.
 * Schedule: S(t) = lr * t / warmup_steps for t <= warmup_steps; then, if
 * decay_steps > warmup_steps, cosine from lr to min_lr over steps
 * (warmup_steps, decay_steps] and min_lr after; otherwise lr.
 * A restart at step count g (lr_restart_step; growth sets it) changes the
 * steps t > g, with u = t - g:
 *   TF_LR_RESTART   lr_t = the same formula with lr_restart_lr,
 *                   lr_restart_min_lr, lr_restart_warmup_steps and
 *                   lr_restart_decay_steps, at step u
 *   TF_LR_CONTINUE  lr_t = S(t) * lr_restart_factor * w, where w =
 *                   u / lr_restart_warmup_steps while u is smaller, else 1
 * ---------------------------------------------------------------------- */
typedef struct tf_optimizer_params {
    size_t struct_size;
    double lr;               /* peak learning rate (default 6e-4) */
    double min_lr;           /* end of the cosine (default 6e-5) */
    double beta1, beta2;     /* default 0.9, 0.95 */
    double eps;              /* default 1e-8 */
    double weight_decay;     /* decoupled, default 0.1 */
    double clip_grad;        /* global L2 norm bound; 0 disables (default 1.0) */
    int64_t warmup_steps;    /* default 0 */
    int64_t decay_steps;     /* lr_decay_iters; 0: no decay (default 0) */
    int32_t grad_accum_steps;/* micro-batches per step (default 1) */
    /* -- appended in 0.2: the schedule's restart (see above) -- */
    tf_lr_restart lr_restart;       /* TF_LR_KEEP (default): none */
    int64_t lr_restart_step;        /* g: steps done at the restart (>= 0) */
    double lr_restart_lr;           /* TF_LR_RESTART: the peak, > 0 */
    double lr_restart_min_lr;       /* TF_LR_RESTART: the end, in [0, peak] */
    int64_t lr_restart_warmup_steps;/* >= 0 */
    int64_t lr_restart_decay_steps; /* TF_LR_RESTART: >= 0 */
    double lr_restart_factor;       /* TF_LR_CONTINUE: > 0 (default 1) */
} tf_optimizer_params;

/* Fills *p with the defaults: the first `size` bytes (pass sizeof *p), at
 * most this library's size, which it stores in p->struct_size. */
TF_API void tf_optimizer_params_init(tf_optimizer_params *p, size_t size);
/* The defaults as a value.  Inline, so that the struct is the caller's own
 * size: a program built against an older header stays safe with a newer
 * library (which only ever appends fields). */
static inline tf_optimizer_params tf_optimizer_default_params(void)
{
    tf_optimizer_params p;
    tf_optimizer_params_init(&p, sizeof p);
    return p;
}

/* Fills *out from a config: optimizer.params.{lr, betas, eps}, weight_decay,
 * gradient_clipping, min_lr, gradient_accumulation_steps, lr_decay_iters
 * (default train_iters), warmup (a fraction, as in GPT-NeoX: of
 * lr_decay_iters when given, else of train_iters; or warmup_steps if
 * given), lr_decay_style ("cosine" or "constant").
 * Absent keys keep the defaults; bad values are TF_ERR_CONFIG naming key
 * and line. */
TF_API tf_status tf_config_optimizer_params(const tf_config *cfg, tf_optimizer_params *out);

/* Creates optimizer state (zero moments, step 0) bound to model.  The model
 * must outlive the optimizer.  The caller owns *out. */
TF_API tf_status tf_optimizer_create(tf_model *model, const tf_optimizer_params *params,
                                     tf_optimizer **out);
TF_API void tf_optimizer_free(tf_optimizer *opt);
TF_API const char *tf_optimizer_errmsg(const tf_optimizer *opt);

/* Applies one step with the model's accumulated gradients, then zeroes
 * them, and advances the tau ramps of the model's sets (tf_grow_params.
 * tau_ramp_steps).  *grad_norm (if not NULL) receives the global norm
 * before clipping.  A non-finite gradient norm is TF_ERR_NONFINITE and
 * changes nothing (the gradients are kept for inspection).  TF_ERR_STATE
 * if a set was grown through its own handle since: grow through
 * tf_model_grow(model, opt, ...) so that the moments follow. */
TF_API tf_status tf_optimizer_step(tf_optimizer *opt, float *grad_norm);

/* The learning rate the schedule, restart included, gives step t (0 for
 * t < 1). */
TF_API double tf_optimizer_lr_at(const tf_optimizer *opt, int64_t t);
/* The same schedule for any params, without an optimizer.  0 for t < 1;
 * NaN (and tf_last_error()) for NULL or a struct without the fields up to
 * decay_steps (an older struct has no restart). */
TF_API double tf_schedule_lr(const tf_optimizer_params *params, int64_t t);
/* Steps taken so far (restored by tf_model_load; a reset of the moments at
 * a growth does not restart it). */
TF_API int64_t tf_optimizer_step_count(const tf_optimizer *opt);
TF_API tf_status tf_optimizer_get_params(const tf_optimizer *opt, tf_optimizer_params *out);
/* Replaces the hyperparameters, the restart fields included; the moments
 * and the step count are kept. */
TF_API tf_status tf_optimizer_set_params(tf_optimizer *opt, const tf_optimizer_params *params);
/* Copies a tensor's first (which = 0) or second (which = 1) moment. */
TF_API tf_status tf_optimizer_get_moment(const tf_optimizer *opt, const char *name, int which,
                                         float *dst, size_t count);

/* ------------------------------------------------------------------------
 * Datasets: token streams for training, from one file or a set of files
 * (shards), with a validation split.
 *
 * Formats:
 *   TF_DATA_BYTES  raw bytes as tokens (needs vocab_size >= 256).
 *   TF_DATA_U16    a bare array of little-endian uint16 ids (nanoGPT's
 *                  train.bin).
 *   TF_DATA_LLMC   llm.c token shards: a header of 256 little-endian int32
 *                  (magic, version, token count, then zeros), then the ids:
 *                  magic 20240520 with version 1 has uint16 ids (GPT-2),
 *                  magic 20240801 with version 7 has uint32 ids (Llama 3).
 *                  Other magic/version pairs are refused (TF_ERR_FORMAT),
 *                  as is a file whose size disagrees with its token count.
 *   TF_DATA_AUTO   per file: LLMC if it starts like an llm.c header (one of
 *                  the two magics, or any yyyymmdd-like magic followed by a
 *                  version in 1..255: then refused unless it is a shard this
 *                  library reads, never read as raw data); else U16 for
 *                  files ending in ".bin", else BYTES.
 * Ids are validated against vocab_size when a file is read: an id out of
 * range is TF_ERR_RANGE naming the file and the id's byte offset.
 *
 * Splits: with validation files, TF_SPLIT_VAL is those files and
 * TF_SPLIT_TRAIN the training files; without, the last val_fraction of the
 * training tokens (in file order) is the validation split.  Segments never
 * cross from one file into the next.
 *
 * Memory: opening reads each file's header only; a file's ids are read
 * (whole) when a batch first needs them, and at most max_resident files are
 * held at once, the least recently used being dropped.  A dataset of at
 * most max_resident files reads them all when it is opened (so their
 * errors show there); otherwise a file that is unreadable, has changed
 * since opening or holds an id out of range fails the tf_dataset_sample or
 * tf_dataset_batch call that needs it, with that error, leaving its output
 * untouched.  Calls on one dataset serialise on an internal lock, so a
 * dataset may be shared by threads.
 * ---------------------------------------------------------------------- */
typedef struct tf_dataset tf_dataset;

typedef enum tf_data_format {
    TF_DATA_AUTO = 0,
    TF_DATA_BYTES = 1,
    TF_DATA_U16 = 2,
    TF_DATA_LLMC = 3
} tf_data_format;

/* "auto", "bytes", "u16", "llmc"; NULL for a bad value. */
TF_API const char *tf_data_format_name(tf_data_format format);

typedef enum tf_split { TF_SPLIT_TRAIN = 0, TF_SPLIT_VAL = 1 } tf_split;

/* Reads path (all of it) as one file: the single-file form of
 * tf_dataset_open_files.  val_fraction in [0, 1).  The caller owns *out. */
TF_API tf_status tf_dataset_open(const char *path, tf_data_format format, int64_t vocab_size,
                                 double val_fraction, tf_dataset **out);
/* The same over tokens already in memory (copied). */
TF_API tf_status tf_dataset_from_tokens(const int32_t *tokens, int64_t count,
                                        int64_t vocab_size, double val_fraction,
                                        tf_dataset **out);

typedef struct tf_dataset_params {
    size_t struct_size;
    tf_data_format format; /* every file's format (default TF_DATA_AUTO) */
    int64_t vocab_size;    /* required: ids must be < vocab_size (default 0:
                              refused) */
    double val_fraction;   /* the validation tail when no validation files
                              are given, in [0, 1); must be 0 with them
                              (default 0) */
    int max_resident;      /* files held in memory at once, >= 1 (default 2:
                              a training and a validation file) */
} tf_dataset_params;

/* Fills *p with the defaults: the first `size` bytes (pass sizeof *p), at
 * most this library's size, which it stores in p->struct_size. */
TF_API void tf_dataset_params_init(tf_dataset_params *p, size_t size);
static inline tf_dataset_params tf_dataset_default_params(void)
{
    tf_dataset_params p;
    tf_dataset_params_init(&p, sizeof p);
    return p;
}

/* Opens num_train >= 1 training files, in the order given, and num_val >= 0
 * validation files (val_paths may be NULL when num_val is 0).  Every file is
 * opened and its header and size checked; paths are copied.  The caller
 * owns *out.  TF_ERR_ARGUMENT for a NULL path or bad params, and the
 * errors of the formats above, naming the file. */
TF_API tf_status tf_dataset_open_files(const char *const *train_paths, size_t num_train,
                                       const char *const *val_paths, size_t num_val,
                                       const tf_dataset_params *params, tf_dataset **out);
/* tf_dataset_open_files over the files that train and val (NULL: none)
 * name, each sorted by name: a directory stands for its llm.c-style shards,
 * "*_train_*.bin" for train and "*_val_*.bin" for val; a path with *, ? or
 * [ that is not itself a file is a glob(3) pattern; anything else is one
 * file.  A directory without such shards, or a pattern that matches
 * nothing, is TF_ERR_NOT_FOUND. */
TF_API tf_status tf_dataset_open_glob(const char *train, const char *val,
                                      const tf_dataset_params *params, tf_dataset **out);

TF_API void tf_dataset_free(tf_dataset *ds);
TF_API const char *tf_dataset_errmsg(const tf_dataset *ds);
TF_API int64_t tf_dataset_num_tokens(const tf_dataset *ds, tf_split split);

/* What was detected: the sources (files) of a split, in order.  A file cut
 * by the validation tail appears in both splits. */
typedef struct tf_data_source {
    size_t struct_size;    /* set by the caller: sizeof(tf_data_source) */
    const char *path;      /* borrowed, valid until tf_dataset_free; NULL for
                              tokens from memory */
    tf_data_format format; /* as read: BYTES, U16 or LLMC (AUTO for tokens
                              from memory) */
    int version;           /* the llm.c header's version (1 or 7), else 0 */
    int token_bytes;       /* bytes per id in the file: 1, 2 or 4 */
    int64_t file_tokens;   /* ids in the whole file */
    int64_t num_tokens;    /* of them, in this split */
} tf_data_source;

/* Sources of a split (0 for a NULL dataset or a bad split). */
TF_API int64_t tf_dataset_num_sources(const tf_dataset *ds, tf_split split);
/* Fills *out (up to out->struct_size bytes) for source i of a split:
 * TF_ERR_RANGE for i out of range, TF_ERR_ARGUMENT for a bad split, a NULL
 * out or out->struct_size too small to hold path. */
TF_API tf_status tf_dataset_source(const tf_dataset *ds, tf_split split, int64_t i,
                                   tf_data_source *out);

/* Batch number `index` of a seeded stream of random segments of T+1 tokens
 * from the split: tokens [B, T] and targets [B, T] (the next tokens).  A
 * pure function of (seed, index, B, T) over the whole set of files, so a
 * resumed run sees the same data.  The B segments of a batch come from one
 * file; files are laid end to end in an order shuffled once per pass (every
 * ceil(S / (B*T)) indices, S = the segment starts of all files), and batch
 * r of a pass comes from the file that covers offset r*B*T, so consecutive
 * indices read one file at a time and each file is drawn in proportion to
 * its size.  With one file, segments start uniformly anywhere in the split.
 * TF_ERR_RANGE if no file of the split holds T+1 tokens. */
TF_API tf_status tf_dataset_sample(const tf_dataset *ds, tf_split split, uint64_t seed,
                                   int64_t index, int B, int T, int32_t *tokens,
                                   int32_t *targets);
/* Number of whole non-overlapping [B, T+1] batches in the split (segments
 * with stride T, file by file), and batch i of them in order (for a
 * deterministic validation pass). */
TF_API int64_t tf_dataset_num_batches(const tf_dataset *ds, tf_split split, int B, int T);
TF_API tf_status tf_dataset_batch(const tf_dataset *ds, tf_split split, int64_t i, int B, int T,
                                  int32_t *tokens, int32_t *targets);

/* ------------------------------------------------------------------------
 * Checkpoints (safetensors): every parameter under its SPEC name, and the
 * configuration in __metadata__.  Saving is atomic: a temporary file
 * path.tmp.XXXXXX in the same directory is written, flushed, fsync'ed and
 * renamed over path; a crash mid-save leaves the old file intact, and the
 * temporary files such crashes leave are removed by the next save to the
 * same path (only those no running save holds).  A symlink at path is
 * written through: its target is replaced atomically, in the target's
 * directory, and the link stays.  A path that exists and is not a regular
 * file (a device, a FIFO, a directory) is never replaced: TF_ERR_IO.
 *
 * Loading validates everything before changing anything: on error the
 * model is unchanged.  Files are read strictly as the safetensors format
 * says: the header valid UTF-8 JSON starting with '{', every tensor's shape
 * matching its byte range, and the byte ranges tiling the data area from 0
 * to the end of the file with no gap and no overlap (a header length off by
 * a byte is TF_ERR_FORMAT, never weights read shifted).  Only regular files
 * are opened (a FIFO is TF_ERR_IO at once).  Files with the official
 * GPT-NeoX names (sequential.N....) load too.
 * ---------------------------------------------------------------------- */
/* Saves model, with each set's tau and tau ramp, and, if opt is not NULL,
 * the optimizer's state: step count, moments and schedule restart (its
 * other hyperparameters are the program's and are not saved). */
TF_API tf_status tf_model_save(tf_model *model, const tf_optimizer *opt,
                               const char *path);
/* The number formats tf_model_export writes parameters in. */
typedef enum tf_dtype {
    TF_DTYPE_F32 = 0, /* float32: what tf_model_save writes */
    TF_DTYPE_BF16 = 1 /* bfloat16: half the bytes, 8 significant bits */
} tf_dtype;

/* Saves model to run it elsewhere: what tf_model_save writes without an
 * optimizer (configuration, taus), with every parameter in dtype; bfloat16
 * values are rounded to nearest, ties to even (NaN stays NaN, a value
 * beyond bfloat16's range becomes infinity), and load back as exactly
 * those values (tf_model_open, tf_model_load widen them).  Training state
 * is not exported: resume from tf_model_save's float32 files.  Atomic as
 * tf_model_save; the bfloat16 copies (half the parameters' bytes) live
 * until the file is written.  TF_ERR_ARGUMENT for another dtype. */
TF_API tf_status tf_model_export(tf_model *model, const char *path, tf_dtype dtype);
/* Loads parameters of the same shape into model, with the recorded taus
 * and tau ramps, and opt's state if opt is not NULL and the file has it
 * (the restart fields of its params come from the file too; a file
 * without a restart clears them).  A shape mismatch names the tensor and
 * both shapes: read a checkpoint's sizes first with tf_checkpoint_info(). */
TF_API tf_status tf_model_load(tf_model *model, tf_optimizer *opt,
                               const char *path);
/* Creates a model from a checkpoint's own configuration and parameters,
 * to run it: tf_model_open_config(path, NULL, out). */
TF_API tf_status tf_model_open(const char *path, tf_model **out);

/* Creates a model from a checkpoint, to run it (or to train on; see
 * Memory).  The configuration is the one in the file's metadata; if cfg
 * is not NULL, every model key cfg sets (num_layers, hidden_size,
 * num_attention_heads, the three slot numbers, rotary_pct,
 * rotary_emb_base, norm_activation_type, vocab_size, seq_length,
 * layernorm_epsilon) must have the file's value, else TF_ERR_CONFIG naming
 * the key, its line and both values.  A file without a configuration in
 * its metadata (tensors under the official GPT-NeoX names, written by
 * another tool) takes cfg's (an official YAML such as 150M_eval.yml),
 * with vocab_size from the embedding's rows when cfg has none, and
 * num_layers checked against the layers in the file; without cfg such a
 * file is TF_ERR_FORMAT.  The metadata's format tag, if present, must be
 * tokenformer-checkpoint-1 (or the fixtures' tokenformer-fixture-1), its
 * scale policies follow_n or pinned.  Every tensor the configuration
 * declares must be in the file with its exact shape before anything is
 * allocated, so sizes in the metadata cannot make the library allocate
 * more than the file holds (TF_ERR_FORMAT otherwise, also for a tensor
 * whose shape disagrees with cfg's).  Tensors may be F32, F16 or
 * BF16 (converted to float32 exactly).  Every error message names the
 * file, and a tensor as the file calls it ("sequential.15.norm.bias").  A
 * PyTorch file (pytorch_model.bin, *.pt) is TF_ERR_FORMAT saying to
 * convert it with tools/convert_checkpoint.py (tf-convert).
 *
 * Memory: the model is created at the file's sizes without drawing an
 * initialisation and without gradients; the file is read once, its header
 * and then each tensor straight into the model's own buffer (no mapping,
 * no copy of the file), so the process grows by about the weights in
 * float32.  Gradients are allocated by the first tf_model_backward,
 * tf_model_set_grad, tf_model_grad_buffer or tf_optimizer_create, so an
 * opened model trains like a created one.  The caller owns *out; cfg is only read. */
TF_API tf_status tf_model_open_config(const char *path, const tf_config *cfg, tf_model **out);

/* Inference models with bfloat16 weights.
 *
 * Decoding reads every weight once per token, so at batch 1 it runs at the
 * speed of memory; weights in bfloat16 halve the bytes.  Such a model
 * holds the token embedding (the output head too) and every Pattention
 * set's keys and values in bfloat16, rounded to nearest even from float32
 * (the final LayerNorm stays float32), and computes in float32: the
 * products widen the weights as they read them (AVX-512, AVX2 or plain C)
 * and sum in float32; tf_info.bf16_kernel says which runs (by default
 * the widest that TF_ARCH's instruction set allows).  The environment's
 * TF_BF16_KERNEL, read once when the first product runs, chooses another:
 * "avx512_bf16" (vdpbf16ps, the activations split into two bfloat16
 * parts; not faster where decoding is bound by memory), "avx512", "avx2"
 * or "plain" (a version the CPU lacks falls back to the next slower).
 * Each weight's rounding is 2^-9 relative: the fixtures' logits differ
 * from float32's by 2e-3 to 8e-3 of the largest (the metric of
 * tests/data/README.md), and greedy decoding follows float32's but near
 * ties.  From 64 rows on (a long prefill) the sets' products widen each
 * set's weights into the decoder's scratch and run BLIS's float32 GEMM.
 *
 * It runs: tf_model_forward (logits, loss), decoders (prefill, step,
 * score, generate), tf_model_get_tensor and tf_pattention_get_keys /
 * _values (widened, exactly the bfloat16 values), every query of sizes and
 * names.  Every call that trains, grows, saves or changes weights --
 * tf_model_backward, tf_optimizer_create, tf_optimizer_step, tf_model_grow,
 * tf_model_save, tf_model_export, tf_model_load, tf_model_load_grown,
 * tf_model_set_tensor, tf_model_set_grad, tf_model_grad_buffer,
 * tf_model_checksum, and on its sets tf_pattention_set_keys / _values,
 * tf_pattention_backward, tf_pattention_grow -- fails with TF_ERR_STATE
 * saying so, and changes nothing.  There is no way back to float32: open
 * the float32 checkpoint again.  Language models only (a vision model is
 * TF_ERR_STATE). */
typedef struct tf_inference_params {
    size_t struct_size;
    tf_dtype weights; /* TF_DTYPE_F32 (default): the model as it is, it
                         trains; TF_DTYPE_BF16: inference only, half the
                         weights' memory */
} tf_inference_params;

/* Fills *p with the defaults: the first `size` bytes (pass sizeof *p), at
 * most this library's size, which it stores in p->struct_size. */
TF_API void tf_inference_params_init(tf_inference_params *p, size_t size);
/* The defaults as a value (inline: the struct is the caller's own size). */
static inline tf_inference_params tf_inference_default_params(void)
{
    tf_inference_params p;
    tf_inference_params_init(&p, sizeof p);
    return p;
}

/* Makes model an inference model with params->weights (NULL: the
 * defaults, which change nothing).  TF_DTYPE_BF16 narrows every tensor in
 * place, in its own buffer, and gives the other half of each buffer back
 * to the system, so the process never needs more memory than the float32
 * model had, and afterwards about half the weights' bytes (the
 * gradients, if any, are freed as well).  The only allocation, checked
 * before anything changes, is one set's values (TF_ERR_NOMEM).  An
 * optimizer created on the model can no longer step (TF_ERR_STATE); free
 * it.  Converting a bfloat16 model to bfloat16 again is TF_OK; to float32,
 * TF_ERR_STATE.  Decoders created before keep working. */
TF_API tf_status tf_model_make_inference(tf_model *model, const tf_inference_params *params);
/* tf_model_open_config, then tf_model_make_inference with params, but
 * each tensor is narrowed as soon as it is read: the process grows by
 * about half the float32 weights' bytes plus one tensor's float32 (the
 * largest, usually the embedding), never by the whole float32 model.
 * params NULL: tf_model_open_config.  Errors as tf_model_open_config's,
 * and TF_ERR_STATE for a vision checkpoint with TF_DTYPE_BF16. */
TF_API tf_status tf_model_open_inference(const char *path, const tf_config *cfg,
                                         const tf_inference_params *params, tf_model **out);
/* TF_DTYPE_BF16 for an inference model in bfloat16, else TF_DTYPE_F32
 * (also for NULL). */
TF_API tf_dtype tf_model_weights_dtype(const tf_model *model);

/* Growth-aware loading (the official "partial init"): loads a checkpoint
 * whose slot numbers are at most the model's.  The checkpoint's tokens
 * fill each set's first rows; the remaining rows are initialised per params
 * as tf_model_grow would (NULL: its defaults).  The scale of each set
 * follows params->scale_policy from the checkpoint's recorded tau, so
 * loading a checkpoint into a model of its own size is tf_model_load. */
TF_API tf_status tf_model_load_grown(tf_model *model, const char *path,
                                     const tf_grow_params *params);

/* What a checkpoint holds, from its metadata, without building a model:
 * its configuration (slot numbers included) into *params, filled up to
 * params->struct_size (initialise it with tf_model_default_params()), and
 * the optimizer's step count into *optimizer_step, or -1 if the file has
 * no optimizer state.  Either pointer may be NULL.  A file that is not a
 * valid libtokenformer checkpoint is TF_ERR_FORMAT (TF_ERR_IO if it cannot
 * be read); on failure *params and *optimizer_step are unchanged.  The file
 * is read and validated whole, as tf_model_load would. */
TF_API tf_status tf_checkpoint_info(const char *path, tf_model_params *params,
                                    int64_t *optimizer_step);

/* ------------------------------------------------------------------------
 * Inference: incremental decoding with a key/value cache, and sampling
 *
 * A decoder holds the attention keys/values of `batch` sequences for up to
 * seq_length positions.  Prefill a prompt, then feed one token per sequence
 * per step; rotary positions continue across steps.  Nothing is allocated
 * per token.  The decoder borrows the model (which must outlive it) and
 * reads its current parameters at every step, so a model grown in place
 * (pinned tau, zero keys) keeps serving the same continuation.
 *
 * Decoding runs the code of tf_model_forward.  When the forward of the same
 * tokens has fewer than 64 rows (batch * positions), the logits agree bit
 * for bit; on longer inputs the forward's matrix products go to BLIS, which
 * sums in another order, and they agree to about 1e-6 of the largest logit
 * -- about as closely as the forward agrees with itself on another batch.
 * ---------------------------------------------------------------------- */
typedef struct tf_decoder tf_decoder;

/* A decoder for `batch` parallel sequences (1 <= batch <= 4096). */
TF_API tf_status tf_decoder_create(tf_model *model, int batch, tf_decoder **out);
TF_API void tf_decoder_free(tf_decoder *dec);
TF_API const char *tf_decoder_errmsg(const tf_decoder *dec);
/* Forgets every cached position. */
TF_API tf_status tf_decoder_reset(tf_decoder *dec);
/* Positions cached so far (the same for every sequence of the batch). */
TF_API int64_t tf_decoder_position(const tf_decoder *dec);

/* Appends T >= 1 tokens per sequence (tokens [batch, T]) to the cache.
 * logits [batch, V] (if not NULL) receives the logits of the last position.
 * Past seq_length is TF_ERR_RANGE, out-of-vocabulary ids too; on error the
 * cache is unchanged. */
TF_API tf_status tf_decoder_prefill(tf_decoder *dec, int T, const int32_t *tokens,
                                    float *logits);
/* Appends T >= 1 tokens per sequence (tokens [batch, T]) as
 * tf_decoder_prefill does, and scores them: *nll (if not NULL) receives
 * the sum over the batch * T positions of the cross-entropy
 * -log softmax(logits)[target] against targets [batch, T] (the next
 * tokens), in nats.  From an empty cache, nll / (batch * T) is the mean
 * loss tf_model_forward gives on the same tokens (float32 rounding apart),
 * but memory stays bounded whatever T: positions run in chunks, and the
 * logits of at most 64 rows exist at once (13 MB for V = 50304; allocated
 * by the first call), where tf_model_forward keeps every activation of
 * [B, T] for a backward.  This is how a model is evaluated (examples/eval:
 * reset, then one window of seq_length tokens per call).  Errors as
 * tf_decoder_prefill's; targets outside the vocabulary are TF_ERR_RANGE;
 * on error the cache is unchanged.  Afterwards the last position's logits
 * are tf_decoder_logits(), as after a prefill. */
TF_API tf_status tf_decoder_score(tf_decoder *dec, int T, const int32_t *tokens,
                                  const int32_t *targets, double *nll);
/* One token per sequence (tokens [batch]); the same as prefill with T = 1. */
TF_API tf_status tf_decoder_step(tf_decoder *dec, const int32_t *tokens, float *logits);
/* The logits [batch, V] of the last position, borrowed; valid until the
 * next call on dec.  NULL before the first prefill. */
TF_API const float *tf_decoder_logits(const tf_decoder *dec);

typedef struct tf_sampler_params {
    size_t struct_size;
    double temperature; /* 0: greedy (argmax); default 1.0 */
    int32_t top_k;      /* keep the k most likely; 0: off (default) */
    double top_p;       /* nucleus: smallest set with mass >= top_p; 1: off */
    uint64_t seed;      /* default 1 */
} tf_sampler_params;

/* Fills *p with the defaults: the first `size` bytes (pass sizeof *p), at
 * most this library's size, which it stores in p->struct_size. */
TF_API void tf_sampler_params_init(tf_sampler_params *p, size_t size);
/* The defaults as a value.  Inline, so that the struct is the caller's own
 * size: a program built against an older header stays safe with a newer
 * library (which only ever appends fields). */
static inline tf_sampler_params tf_sampler_default_params(void)
{
    tf_sampler_params p;
    tf_sampler_params_init(&p, sizeof p);
    return p;
}

/* Sets p's temperature, top_k and top_p (the seed is left as it is) to
 * sample as GPT-NeoX's text generation does with these values (the
 * official text_generation.yml; 0 means off for each): greedy (the
 * argmax) when all three are 0; otherwise softmax(logits / temperature)
 * (no division when temperature is 0), restricted to the top_k most likely
 * ids (0: all) and then to the nucleus of mass top_p (0: all).  GPT-NeoX's
 * nucleus also keeps the next id when the mass reaches top_p exactly: a
 * difference of one id, on exact ties only.  temperature must be finite
 * and >= 0, top_k >= 0, top_p in [0, 1]; else TF_ERR_ARGUMENT and *p is
 * unchanged.  p->struct_size must reach top_p. */
TF_API tf_status tf_sampler_params_official(tf_sampler_params *p, double temperature,
                                            int32_t top_k, double top_p);

/* Draws one id from logits [V] per params.  *rng_state (seed it with
 * params->seed or any value) advances, so successive calls continue one
 * reproducible stream.  Ties in greedy go to the lowest id. */
TF_API tf_status tf_sample(const float *logits, int64_t V, const tf_sampler_params *params,
                           uint64_t *rng_state, int32_t *out);

/* Generates up to max_new tokens per sequence after the cached positions:
 * samples from the current logits, feeds the sample back, repeats.  A
 * sequence stops at any of the n_stop stop ids (the stop id is emitted) or
 * at seq_length.  out [batch, max_new] receives the ids, -1 after a
 * sequence stopped; *produced (if not NULL) the number of steps run.  If
 * on_token is not NULL it is called after every step with the new ids
 * [batch] (streaming); a non-zero return stops generation. */
typedef int (*tf_token_callback)(void *user, const int32_t *ids, int batch);
TF_API tf_status tf_decoder_generate(tf_decoder *dec, int max_new, const tf_sampler_params *params,
                                     const int32_t *stop_ids, int n_stop, int32_t *out,
                                     int *produced, tf_token_callback on_token, void *user);

/* Byte-level tokenizer (vocab 256): each byte of text is one id. */
TF_API tf_status tf_bytes_to_tokens(const char *text, size_t len, int32_t *out, size_t cap,
                                    size_t *count);
/* ids -> bytes; ids outside [0, 256) are TF_ERR_RANGE. */
TF_API tf_status tf_tokens_to_bytes(const int32_t *ids, size_t count, char *out, size_t cap);

/* ------------------------------------------------------------------------
 * BPE tokenizer: a Hugging Face tokenizer.json of the byte-level BPE family
 * (GPT-2, GPT-NeoX-20B and the TokenFormer releases, which use NeoX's).
 *
 * Encoding gives the ids of Hugging Face's JavaScript tokenizers
 * (@huggingface/tokenizers 0.2.0, the code @huggingface/transformers 4.3.2
 * bundles; Tokenizer.encode): the tests compare every string of a corpus
 * with it.  In order:
 *   1. Bytes that are not valid UTF-8 are replaced by U+FFFD, one for each
 *      maximal invalid subsequence: what a JavaScript host (TextDecoder,
 *      Buffer.toString) does when it turns the bytes into a string.  Such a
 *      text does not decode back to its bytes, only to the replaced text.
 *   2. Added tokens ("added_tokens", e.g. <|endoftext|>) are found in the
 *      text wherever they occur, longest first, left to right: those with
 *      "normalized": false as written, the others after normalisation.  A
 *      token with "lstrip" ("rstrip") removes the white space before
 *      (after) it.  "single_word" is ignored, as by the reference.  Text
 *      from users can therefore produce special ids; filter it first if
 *      that matters.
 *   3. The rest is normalised as "normalizer" says: NFC (NeoX), NFD, NFKC,
 *      NFKD or a Sequence of them, through utf8proc; or not at all (GPT-2).
 *   4. The ByteLevel pre-tokenizer: with "add_prefix_space" a piece that
 *      does not start with a space gets one; with "use_regex" (default) it
 *      is cut by GPT-2's pattern 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
 *      ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ (PCRE2, Unicode properties), where
 *      \s is JavaScript's white space (it includes U+FEFF and excludes
 *      U+0085, unlike the Rust crate's).  "trim_offsets" changes offsets
 *      only, which this API does not return.
 *   5. Each piece's UTF-8 bytes are merged by the BPE merge ranks ("model":
 *      vocab and merges; the lowest rank first, the leftmost of equals).
 *      "dropout" is ignored, as by the reference.
 * No special tokens are added around the text (the ByteLevel
 * post-processor adds none).  Unicode tables are the libraries' (PCRE2
 * 10.42: Unicode 14; utf8proc 2.8: Unicode 15; the reference's node 20:
 * Unicode 17): characters assigned since Unicode 14 may split or normalise
 * differently from the reference.
 *
 * Decoding concatenates the tokens' bytes: an added token's content as it
 * is, any other token through the byte-level alphabet (a token with a
 * character outside it gives its own UTF-8, as the Rust crate does).  The
 * result is raw bytes, not necessarily whole UTF-8 characters (decode a
 * stream as a whole, or buffer incomplete characters); no spaces are
 * removed or "cleaned up".  For valid UTF-8, decode(encode(text)) is the
 * text itself: normalised if the file has a normaliser, and with the space
 * add_prefix_space put in front.
 *
 * Loading treats the file as untrusted: malformed JSON, missing or
 * mistyped fields, ids outside [0, 2^24) or too sparse for their count,
 * merges naming tokens not in the vocabulary, a vocabulary without all 256
 * byte symbols, files over 256 MiB and component types other than the
 * above (e.g. WordPiece, Metaspace, byte_fallback, TemplateProcessing) are
 * TF_ERR_FORMAT with a message naming the place.
 * ---------------------------------------------------------------------- */
typedef struct tf_tokenizer tf_tokenizer;

/* Reads a tokenizer.json.  The caller owns *out (NULL on failure, with the
 * reason in tf_last_error()). */
TF_API tf_status tf_tokenizer_load(const char *path, tf_tokenizer **out);
/* The same from the JSON text in memory (len bytes; not kept). */
TF_API tf_status tf_tokenizer_parse(const char *json, size_t len, tf_tokenizer **out);
TF_API void tf_tokenizer_free(tf_tokenizer *tok);
/* Message of the last error on this tokenizer ("" if none).  Never NULL. */
TF_API const char *tf_tokenizer_errmsg(const tf_tokenizer *tok);

/* The size of the id space: the largest id (vocabulary or added token) + 1,
 * e.g. 50257 for GPT-2 (a model's vocab_size may be padded beyond it, as
 * NeoX's 50277 is to 50304).  0 if NULL. */
TF_API int64_t tf_tokenizer_vocab_size(const tf_tokenizer *tok);

/* Encodes len bytes of text (not NUL-terminated; any bytes) to ids.
 * Size query / two-call pattern: *count always receives the number of ids
 * the text encodes to (on TF_OK and on TF_ERR_SHAPE).  With ids NULL and
 * cap 0 nothing else is written (a query).  Otherwise cap is the capacity
 * of ids: if it is at least *count the ids are written, else the call is
 * TF_ERR_SHAPE and ids is untouched; call again with a larger buffer.
 * (Valid UTF-8 needs at most len ids when the file has no normaliser and
 * no add_prefix_space, as GPT-2's; a query is always exact.)
 * The handle keeps its workspaces (and a cache of encoded words) between
 * calls: use one tokenizer per thread. */
TF_API tf_status tf_tokenizer_encode(tf_tokenizer *tok, const char *text, size_t len,
                                     int32_t *ids, size_t cap, size_t *count);

/* Decodes count ids to bytes.  The same pattern: *len receives the number
 * of bytes (on TF_OK and TF_ERR_SHAPE); out may be NULL with cap 0 (a
 * query); else cap >= *len is needed, and a NUL is appended when cap >
 * *len.  An id that is not a token is TF_ERR_RANGE naming it (nothing
 * written). */
TF_API tf_status tf_tokenizer_decode(tf_tokenizer *tok, const int32_t *ids, size_t count,
                                     char *out, size_t cap, size_t *len);

/* The id of a token given as it is written in the file (vocabulary entries
 * in the byte-level alphabet: " the" is "Ġthe"; added tokens as they are:
 * "<|endoftext|>").  TF_ERR_NOT_FOUND if there is none. */
TF_API tf_status tf_tokenizer_token_to_id(const tf_tokenizer *tok, const char *token,
                                          int32_t *id);
/* The token of an id as written in the file (borrowed, NUL-terminated,
 * valid while tok lives), or NULL for an id that is not a token. */
TF_API const char *tf_tokenizer_id_to_token(const tf_tokenizer *tok, int32_t id);
/* 1 if id is an added token marked "special" (<|endoftext|>), else 0. */
TF_API int tf_tokenizer_is_special(const tf_tokenizer *tok, int32_t id);
/* The added tokens, in file order: their number, and the id of the i-th
 * (-1 if i is out of range); their text is tf_tokenizer_id_to_token(). */
TF_API int32_t tf_tokenizer_num_added(const tf_tokenizer *tok);
TF_API int32_t tf_tokenizer_added_id(const tf_tokenizer *tok, int32_t i);

/* ------------------------------------------------------------------------
 * Image datasets: labelled grayscale images for classification
 *
 * A dataset holds N images of H x W unsigned-byte pixels and N integer
 * labels, all in memory (Fashion-MNIST's 60,000 training images take 47 MB).
 * It is read from a pair of IDX files (the MNIST family's format: images
 * [N, H, W] and labels [N], data type 0x08 unsigned byte), each plain or
 * gzip-compressed (detected from the content; Debian's dataset-fashion-mnist
 * ships /usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,
 * labels-idx1}-ubyte.gz), or copied from arrays in memory.
 *
 * Batches are float32 pixels [B, H, W] and int32 labels [B], written into
 * the caller's buffers.  A pixel byte v becomes
 *
 *     x = (v / 255 - mean) / std                (mean, std from the params)
 *
 * so the defaults (mean 0, std 1) give raw [0, 1].  Fashion-MNIST's
 * training set has mean 0.2860 and standard deviation 0.3530 in [0, 1]
 * units (tests/test_images.c checks these figures on the real files).
 *
 * Training batches come from a seeded stream of epochs.  Epoch e is a
 * pseudo-random permutation of the N images (a keyed Feistel network over
 * the indices, a new key every epoch); it is cut into floor(N / B) batches
 * of B, and the N mod B images left over are skipped in that epoch (other
 * ones in the next).  Batch i belongs to epoch i / floor(N / B).  A batch is
 * a pure function of (dataset, params, seed, i, B): a run resumed at batch
 * i sees exactly the data it would have seen, augmentation included.
 *
 * Augmentation (training batches only), per image, with draws from a
 * generator seeded from (seed, i): a shift (dy, dx), uniform in [-k, k]^2
 * with k = params.shift, then, when params.hflip is 1, a horizontal flip
 * with probability 1/2 (f = 1 flipped, else 0):
 *
 *     out[y][x] = v[y + dy][x' + dx]     x' = f ? W - 1 - x : x
 *
 * or the padding byte 0 where that lies outside the image.  The shift is
 * zero-padding by k pixels on every side and cropping H x W back at a
 * random offset (torchvision's RandomCrop(size, padding=k)); k = 0 is off.
 * Flips suit clothes (Fashion-MNIST), not digits or text.
 * Evaluation batches are the images in file order, normalised the same
 * way and never augmented.
 * ---------------------------------------------------------------------- */
typedef struct tf_image_dataset tf_image_dataset;

#define TF_IMAGE_MAX_SHIFT 4096

typedef struct tf_image_aug_params {
    size_t struct_size;
    int32_t shift;   /* k in [0, TF_IMAGE_MAX_SHIFT]: random shifts by up to
                        k pixels (pad + crop; a k near H or W mostly pads).
                        Default 2 */
    int32_t hflip;   /* 1: random horizontal flips, 0: none.  Default 1 */
    double mean;     /* normalisation, see above.  Default 0 */
    double std;      /* > 0.  Default 1 */
} tf_image_aug_params;

/* Fills *p with the defaults: the first `size` bytes (pass sizeof *p), at
 * most this library's size, which it stores in p->struct_size. */
TF_API void tf_image_aug_params_init(tf_image_aug_params *p, size_t size);
/* The defaults as a value.  Inline, so that the struct is the caller's own
 * size: a program built against an older header stays safe with a newer
 * library (which only ever appends fields). */
static inline tf_image_aug_params tf_image_aug_default_params(void)
{
    tf_image_aug_params p;
    tf_image_aug_params_init(&p, sizeof p);
    return p;
}

/* Reads an IDX image file [N, H, W] and an IDX label file [N] (each plain
 * or gzip).  The files are validated whole before *out is set: a non-regular
 * file (directory, FIFO, device) is TF_ERR_IO without being read; a bad
 * magic, a data type other than unsigned byte, a wrong number of
 * dimensions, a size the file cannot hold (checked before any allocation),
 * truncated, trailing or corrupt data, and image and label counts that
 * differ are TF_ERR_FORMAT naming the file.  The caller owns *out. */
TF_API tf_status tf_image_dataset_open(const char *images_path, const char *labels_path,
                                       tf_image_dataset **out);
/* The same from memory (copied): pixels [n, height, width] and labels [n],
 * each label >= 0 (TF_ERR_RANGE naming the first bad one). */
TF_API tf_status tf_image_dataset_from_memory(const uint8_t *pixels, const int32_t *labels,
                                              int64_t n, int32_t height, int32_t width,
                                              tf_image_dataset **out);
TF_API void tf_image_dataset_free(tf_image_dataset *ds);
TF_API const char *tf_image_dataset_errmsg(const tf_image_dataset *ds);

/* N, H, W (0 if ds is NULL). */
TF_API int64_t tf_image_dataset_size(const tf_image_dataset *ds);
TF_API int32_t tf_image_dataset_height(const tf_image_dataset *ds);
TF_API int32_t tf_image_dataset_width(const tf_image_dataset *ds);
/* 1 + the largest label: labels are in [0, num_classes). */
TF_API int32_t tf_image_dataset_num_classes(const tf_image_dataset *ds);
/* Training batches per epoch, floor(N / B) (0 if B < 1 or B > N). */
TF_API int64_t tf_image_dataset_epoch_batches(const tf_image_dataset *ds, int B);

/* Training batch i >= 0 of the seeded epoch stream (see above), augmented
 * and normalised per params (NULL: defaults): pixels [B, H, W], labels [B].
 * B must be in [1, N] (TF_ERR_RANGE otherwise). */
TF_API tf_status tf_image_dataset_train_batch(const tf_image_dataset *ds,
                                              const tf_image_aug_params *params, uint64_t seed,
                                              int64_t i, int B, float *pixels, int32_t *labels);

/* Images [first, first + count) in file order, normalised per params (NULL:
 * defaults; shift and hflip are ignored): pixels [count, H, W], labels
 * [count].  The range must lie inside [0, N).  An evaluation pass:
 *     for (int64_t f = 0; f < N; f += B)
 *         tf_image_dataset_eval_batch(ds, &p, f, N - f < B ? N - f : B, px, lab);
 */
TF_API tf_status tf_image_dataset_eval_batch(const tf_image_dataset *ds,
                                             const tf_image_aug_params *params, int64_t first,
                                             int count, float *pixels, int32_t *labels);

#ifdef __cplusplus
}
#endif
#endif /* TOKENFORMER_H */
