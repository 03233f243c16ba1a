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

/* Threads used by GEMMs (BLIS) and by the element-wise kernels (OpenMP).
 * Process-wide.  Default: TF_NUM_THREADS if set, else the number of online
 * CPUs.  n must be >= 1. */
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
/* Sets tau explicitly and pins it (TF_SCALE_PINNED).  tau must be > 0. */
TF_API tf_status tf_pattention_set_tau(tf_pattention *set, double tau);

/* Copy keys [n, d_in] / values [n, d_out] out or in; count must equal the
 * tensor's size.  get_*_grad copy the accumulated gradients. */
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

typedef struct tf_grow_params {
    size_t struct_size;
    tf_key_init key_init;         /* default TF_KEYS_ZERO */
    tf_scale_policy scale_policy; /* default TF_SCALE_PINNED */
    double key_std;               /* for TF_KEYS_RANDOM (default 0.02) */
    double value_std;             /* new values ~ N(0, value_std); <= 0:
                                     the set's own value_std */
    uint64_t seed;                /* default 1 */
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

/* Appends new_n - n parameter tokens (new_n > n), initialised per params
 * (NULL: defaults), and applies the scale policy.  Old rows and their
 * gradients are kept; new gradient rows are zero.  On failure the set is
 * unchanged. */
TF_API tf_status tf_pattention_grow(tf_pattention *set, int64_t new_n,
                                    const tf_grow_params *params);

/* ------------------------------------------------------------------------
 * Configurations (YAML, through libyaml)
 *
 * Reads the official TokenFormer configs as they are (JSON-style YAML with
 * '#' comments, quoted keys, Python-style True/False).  Keys the model or
 * optimizer use are validated; any other key is kept and reported by
 * tf_config_ignored_key().  Official configs carry no vocab_size: it
 * defaults to 50304 (the GPT-NeoX-20B tokenizer padded to 128).
 * ---------------------------------------------------------------------- */
typedef struct tf_config tf_config;

/* Parses path.  On failure *out is NULL and tf_last_error() names the key
 * and line.  The caller owns *out. */
TF_API tf_status tf_config_load(const char *path, tf_config **out);
/* The same, from a string in memory (len bytes). */
TF_API tf_status tf_config_parse(const char *text, size_t len, tf_config **out);
TF_API void tf_config_free(tf_config *cfg);
TF_API const char *tf_config_errmsg(const tf_config *cfg);

/* Top-level keys the model and optimizer did not use, in file order. */
TF_API int tf_config_num_ignored(const tf_config *cfg);
TF_API const char *tf_config_ignored_key(const tf_config *cfg, int i); /* borrowed */

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
    int64_t seq_length;          /* longest T (default 128) */
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

/* Creates a model with freshly initialised parameters (official init). */
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
 * or kind, with the reason in tf_last_error()).  The model's forward/backward use it; a host may inspect it or
 * grow it on its own (the model's slot numbers then follow). */
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
 * elsewhere, to drive tf_optimizer_step). */
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
 * Needs a forward with targets since the last backward. */
TF_API tf_status tf_model_backward(tf_model *model);
TF_API tf_status tf_model_zero_grad(tf_model *model);

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
 * count kept), so training continues.  All or nothing: on failure model
 * and optimizer are unchanged.  With zero keys and pinned tau the GELU
 * norms compute exactly the function of before. */
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
 *   p = p - lr_t / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * Schedule: lr_t = lr * t / warmup_steps for t <= warmup_steps; then, if
 * decay_steps > warmup_steps, cosine from lr to min_lr over steps
 * (warmup_steps, decay_steps] and min_lr after; otherwise lr.
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
 * them.  *grad_norm (if not NULL) receives the global norm before clipping.
 * A non-finite gradient norm is TF_ERR_NONFINITE and changes nothing (the
 * gradients are kept for inspection).  TF_ERR_STATE if a set was grown
 * through its own handle since: grow through tf_model_grow(model, opt, ...)
 * so that the moments follow. */
TF_API tf_status tf_optimizer_step(tf_optimizer *opt, float *grad_norm);

/* The learning rate the schedule gives step t (t >= 1). */
TF_API double tf_optimizer_lr_at(const tf_optimizer *opt, int64_t t);
/* The same schedule for any params (lr, min_lr, warmup_steps, decay_steps),
 * without an optimizer: for hosts that drive schedules of their own, e.g. a
 * new warmup + cosine after a growth, fed to tf_optimizer_set_params.  0
 * for t < 1; NaN (and tf_last_error()) for NULL or a struct without those
 * fields. */
TF_API double tf_schedule_lr(const tf_optimizer_params *params, int64_t t);
/* Steps taken so far (restored by tf_model_load). */
TF_API int64_t tf_optimizer_step_count(const tf_optimizer *opt);
TF_API tf_status tf_optimizer_get_params(const tf_optimizer *opt, tf_optimizer_params *out);
/* Replaces the hyperparameters (e.g. a new schedule after growth); the
 * moments and step count are kept. */
TF_API tf_status tf_optimizer_set_params(tf_optimizer *opt, const tf_optimizer_params *params);
/* Copies a tensor's first (which = 0) or second (which = 1) moment. */
TF_API tf_status tf_optimizer_get_moment(const tf_optimizer *opt, const char *name, int which,
                                         float *dst, size_t count);

/* ------------------------------------------------------------------------
 * Datasets: token streams for training, with a held-out validation tail.
 *
 * Formats: TF_DATA_BYTES, raw bytes as tokens (vocab 256); TF_DATA_U16, a
 * bare array of little-endian uint16 ids (nanoGPT's train.bin); TF_DATA_LLMC,
 * llm.c shards (256 int32 header: magic 20240520, version 1 = uint16 ids or
 * 7 = uint32 ids, token count; then the ids); TF_DATA_AUTO picks LLMC when
 * the magic is there, else U16 for files ending in ".bin", else BYTES.
 * The last val_fraction of the tokens is the validation split.
 * ---------------------------------------------------------------------- */
typedef struct tf_dataset tf_dataset;

typedef enum tf_data_format {
    TF_DATA_AUTO = 0,
    TF_DATA_BYTES = 1,
    TF_DATA_U16 = 2,
    TF_DATA_LLMC = 3
} tf_data_format;

typedef enum tf_split { TF_SPLIT_TRAIN = 0, TF_SPLIT_VAL = 1 } tf_split;

/* Reads path (all of it; ids are validated against vocab_size, an id out of
 * range is TF_ERR_RANGE naming its offset).  val_fraction in [0, 1).  The
 * caller owns *out. */
TF_API tf_status tf_dataset_open(const char *path, tf_data_format format, int64_t vocab_size,
                                 double val_fraction, tf_dataset **out);
/* The same over tokens already in memory (copied). */
TF_API tf_status tf_dataset_from_tokens(const int32_t *tokens, int64_t count,
                                        int64_t vocab_size, double val_fraction,
                                        tf_dataset **out);
TF_API void tf_dataset_free(tf_dataset *ds);
TF_API const char *tf_dataset_errmsg(const tf_dataset *ds);
TF_API int64_t tf_dataset_num_tokens(const tf_dataset *ds, tf_split split);

/* Batch number `index` of a seeded stream of random segments of T+1 tokens
 * from the split: tokens [B, T] and targets [B, T] (the next tokens).  A
 * pure function of (seed, index), so a resumed run sees the same data. */
TF_API tf_status tf_dataset_sample(const tf_dataset *ds, tf_split split, uint64_t seed,
                                   int64_t index, int B, int T, int32_t *tokens,
                                   int32_t *targets);
/* Number of whole non-overlapping [B, T+1] batches in the split, and
 * batch i of them in order (for a deterministic validation pass). */
TF_API int64_t tf_dataset_num_batches(const tf_dataset *ds, tf_split split, int B, int T);
TF_API tf_status tf_dataset_batch(const tf_dataset *ds, tf_split split, int64_t i, int B, int T,
                                  int32_t *tokens, int32_t *targets);

/* ------------------------------------------------------------------------
 * Checkpoints (safetensors): every parameter under its SPEC name, and the
 * configuration in __metadata__.  Saving is atomic: a temporary file in the
 * same directory is written, flushed, fsync'ed and renamed over path; a
 * crash mid-save leaves the old file intact.  Loading validates everything
 * before changing anything: on error the model is unchanged.  Files with
 * the official GPT-NeoX names (sequential.N....) load too.
 * ---------------------------------------------------------------------- */
/* Saves model (and, if opt is not NULL, the optimizer's step and moments). */
TF_API tf_status tf_model_save(tf_model *model, const tf_optimizer *opt,
                               const char *path);
/* Loads parameters of the same shape into model (and opt's state if opt is
 * not NULL and the file has it).  A shape mismatch names the tensor and
 * both shapes. */
TF_API tf_status tf_model_load(tf_model *model, tf_optimizer *opt,
                               const char *path);
/* Creates a model from a checkpoint's own configuration and parameters. */
TF_API tf_status tf_model_open(const char *path, tf_model **out);

/* Growth-aware loading (the official "partial init"): loads a checkpoint
 * whose slot numbers are at most the model's.  The checkpoint's tokens
 * fill each set's first rows; the remaining rows are initialised per params
 * as tf_model_grow would (NULL: its defaults).  The scale of each set
 * follows params->scale_policy from the checkpoint's recorded tau, so
 * loading a checkpoint into a model of its own size is tf_model_load. */
TF_API tf_status tf_model_load_grown(tf_model *model, const char *path,
                                     const tf_grow_params *params);

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

#ifdef __cplusplus
}
#endif
#endif /* TOKENFORMER_H */
