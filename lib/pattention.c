/*
 * pattention.c -- the Pattention parameter set: keys, values, their
 * gradients, forward/backward through BLIS, and growth.
 */
#include <math.h>
#include <string.h>

#include "kernels/bf16.h"
#include "kernels/theta.h"
#include "pattention.h"

#define CHECK_SET(set, fn)                                                    \
    do {                                                                      \
        if (!(set))                                                           \
            return tfi_fail(NULL, TF_ERR_ARGUMENT, fn ": the set is NULL");  \
    } while (0)

#define KSIZE(s) ((size_t)(s)->n * (size_t)(s)->d_in)
#define VSIZE(s) ((size_t)(s)->n * (size_t)(s)->d_out)

double tfi_default_tau(tf_norm_type norm, int64_t n)
{
    return norm == TF_NORM_SOFTMAX ? (double)n : sqrt((double)n);
}

TF_API const char *tf_norm_type_name(tf_norm_type norm)
{
    switch (norm) {
    case TF_NORM_L2_NORM_GELU: return "l2_norm_gelu";
    case TF_NORM_GELU_L2_NORM: return "gelu_l2_norm";
    case TF_NORM_SOFTMAX: return "softmax";
    }
    return NULL;
}

static tf_pattention_params pattention_defaults(void)
{
    tf_pattention_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.n = 64;
    p.d_in = 64;
    p.d_out = 64;
    p.norm = TF_NORM_L2_NORM_GELU;
    p.scale_policy = TF_SCALE_FOLLOW_N;
    p.tau = 0.0;
    p.seed = 1;
    p.key_std = 0.02;
    p.value_std = 0.02;
    return p;
}

TF_API void tf_pattention_params_init(tf_pattention_params *p, size_t size)
{
    tf_pattention_params d = pattention_defaults();
    tfi_params_init(p, size, &d, sizeof d);
}

static tf_grow_params grow_defaults(void)
{
    tf_grow_params g;
    memset(&g, 0, sizeof g);
    g.struct_size = sizeof g;
    g.key_init = TF_KEYS_ZERO;
    g.scale_policy = TF_SCALE_PINNED;
    g.key_std = 0.02;
    g.value_std = 0.0;
    g.seed = 1;
    g.value_std_scale = 1.0;
    g.tau_ramp_steps = 0;
    g.reset_optimizer = 0;
    g.lr_schedule = TF_LR_KEEP;
    g.lr = 0.0;
    g.min_lr = -1.0;
    g.warmup_steps = 0;
    g.decay_steps = 0;
    g.end_step = 0;
    g.lr_factor = 1.0;
    return g;
}

/* The recipe experiments/scaling found best: new tokens add little noise
 * (1/20 of the init's value std), the function is kept at the growth and
 * the scale then eased to the new size's (a jump of tau costs more loss
 * than it recovers), and the learning rate goes back to the peak so that
 * the new tokens train, without the warmup a fresh optimizer would need
 * (the moments are carried). */
static tf_grow_params grow_recipe(void)
{
    tf_grow_params g = grow_defaults();
    g.value_std_scale = 0.05;
    g.tau_ramp_steps = 300;
    g.lr_schedule = TF_LR_RESTART;
    return g;
}

TF_API void tf_grow_params_init(tf_grow_params *p, size_t size)
{
    tf_grow_params d = grow_defaults();
    tfi_params_init(p, size, &d, sizeof d);
}

TF_API void tf_grow_recipe_init(tf_grow_params *p, size_t size)
{
    tf_grow_params d = grow_recipe();
    tfi_params_init(p, size, &d, sizeof d);
}

static int valid_norm(tf_norm_type t)
{
    return t == TF_NORM_L2_NORM_GELU || t == TF_NORM_GELU_L2_NORM || t == TF_NORM_SOFTMAX;
}

static int valid_policy(tf_scale_policy p)
{
    return p == TF_SCALE_FOLLOW_N || p == TF_SCALE_PINNED;
}

tf_status tfi_pattention_init(tf_pattention *set, const tf_pattention_params *p, int init,
                              tfi_errbuf *eb)
{
    memset(set, 0, sizeof *set);
    if (p->n < 1 || p->d_in < 1 || p->d_out < 1)
        return tfi_fail(eb, TF_ERR_ARGUMENT,
                        "Pattention sizes must be >= 1 (n=%lld, d_in=%lld, d_out=%lld)",
                        (long long)p->n, (long long)p->d_in, (long long)p->d_out);
    if (!valid_norm(p->norm))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "unknown Pattention norm type %d", (int)p->norm);
    if (!valid_policy(p->scale_policy))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "unknown scale policy %d", (int)p->scale_policy);
    if (!(p->tau >= 0.0) || !isfinite(p->tau))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "tau must be 0 (default) or a positive number");
    if (!(p->key_std >= 0.0) || !(p->value_std >= 0.0))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "key_std and value_std must be >= 0");
    size_t nk = tfi_mul_size((size_t)p->n, (size_t)p->d_in);
    size_t nv = tfi_mul_size((size_t)p->n, (size_t)p->d_out);
    if (nk == 0 || nv == 0)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "Pattention size overflows");
    tf_status st = tfi_runtime_ensure();
    if (st != TF_OK)
        return st;
    /* every element is drawn below or filled by the caller: no zeroing */
    set->keys = tfi_alloc(nk * sizeof(float));
    set->values = tfi_alloc(nv * sizeof(float));
    if (!set->keys || !set->values) {
        tfi_pattention_release(set);
        return tfi_fail(eb, TF_ERR_NOMEM, "out of memory for a Pattention set of n=%lld",
                        (long long)p->n);
    }
    set->n = p->n;
    set->d_in = p->d_in;
    set->d_out = p->d_out;
    set->norm = p->norm;
    set->key_std = p->key_std;
    set->value_std = p->value_std;
    if (p->tau > 0.0) {
        set->tau = p->tau;
        set->scale_policy = TF_SCALE_PINNED;
    } else {
        set->tau = tfi_default_tau(p->norm, p->n);
        set->scale_policy = p->scale_policy;
    }
    if (init) {
        tfi_rng rng;
        tfi_rng_seed(&rng, p->seed);
        tfi_rng_fill_normal(&rng, set->keys, nk, p->key_std);
        tfi_rng_fill_normal(&rng, set->values, nv, p->value_std);
    }
    return TF_OK;
}

tf_status tfi_pattention_ensure_grads(tf_pattention *set, tfi_errbuf *eb)
{
    if (set->key_grad && set->value_grad)
        return TF_OK;
    float *kg = set->key_grad ? set->key_grad : tfi_calloc(KSIZE(set), sizeof(float));
    float *vg = set->value_grad ? set->value_grad : tfi_calloc(VSIZE(set), sizeof(float));
    if (!kg || !vg) {
        if (kg != set->key_grad)
            tfi_free(kg);
        if (vg != set->value_grad)
            tfi_free(vg);
        return tfi_fail(eb, TF_ERR_NOMEM, "out of memory for the gradients of a Pattention "
                        "set of n=%lld", (long long)set->n);
    }
    set->key_grad = kg;
    set->value_grad = vg;
    if (set->resized) /* the owner's table points at the gradients too */
        set->resized(set->owner, set->owner_index);
    return TF_OK;
}

tf_status tfi_pattention_need_f32(const tf_pattention *set, const char *fn)
{
    if (!set->keys16)
        return TF_OK;
    return tfi_fail((tfi_errbuf *)&set->err, TF_ERR_STATE,
                    "%s: the set holds bfloat16 weights for inference only "
                    "(tf_model_make_inference): open the float32 checkpoint to train, grow "
                    "or change it", fn);
}

void tfi_pattention_release(tf_pattention *set)
{
    tfi_free(set->keys);
    tfi_free(set->values);
    tfi_free(set->keys16);
    tfi_free(set->values16t);
    if (!set->grads_borrowed) {
        tfi_free(set->key_grad);
        tfi_free(set->value_grad);
    }
    tfi_free(set->ws_a);
    tfi_free(set->ws_s);
    tfi_free(set->ws_g);
    tfi_free(set->ws_t);
    tfi_free(set->ws_r);
    memset(set, 0, sizeof *set);
}

TF_API tf_status tf_pattention_create(const tf_pattention_params *params, tf_pattention **out)
{
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_pattention_create: out is NULL");
    *out = NULL;
    tf_pattention_params p = tf_pattention_default_params();
    tf_status st = tfi_params_in(&p, sizeof p, params, TFI_PARAMS_MIN(tf_pattention_params, n),
                                 "tf_pattention_create", "tf_pattention_params", NULL);
    if (st != TF_OK)
        return st;
    tf_pattention *set = tfi_alloc(sizeof *set);
    if (!set)
        return tfi_fail(NULL, TF_ERR_NOMEM, "tf_pattention_create: out of memory");
    st = tfi_pattention_init(set, &p, 1, NULL);
    if (st != TF_OK) {
        tfi_free(set);
        return st;
    }
    *out = set;
    return TF_OK;
}

TF_API void tf_pattention_free(tf_pattention *set)
{
    if (!set)
        return;
    tfi_pattention_release(set);
    tfi_free(set);
}

TF_API const char *tf_pattention_errmsg(const tf_pattention *set)
{
    return set ? set->err.msg : "the set is NULL";
}

TF_API int64_t tf_pattention_n(const tf_pattention *set) { return set ? set->n : 0; }
TF_API int64_t tf_pattention_d_in(const tf_pattention *set) { return set ? set->d_in : 0; }
TF_API int64_t tf_pattention_d_out(const tf_pattention *set) { return set ? set->d_out : 0; }
TF_API tf_norm_type tf_pattention_norm(const tf_pattention *set)
{
    return set ? set->norm : TF_NORM_L2_NORM_GELU;
}
TF_API double tf_pattention_tau(const tf_pattention *set) { return set ? set->tau : 0.0; }
TF_API tf_scale_policy tf_pattention_scale_policy(const tf_pattention *set)
{
    return set ? set->scale_policy : TF_SCALE_FOLLOW_N;
}

TF_API tf_status tf_pattention_set_tau(tf_pattention *set, double tau)
{
    CHECK_SET(set, "tf_pattention_set_tau");
    if (!(tau > 0.0) || !isfinite(tau))
        return tfi_fail(&set->err, TF_ERR_ARGUMENT,
                        "tf_pattention_set_tau: tau must be a positive finite number");
    set->tau = tau;
    set->ramp = (tfi_tau_ramp){0};
    set->scale_policy = TF_SCALE_PINNED;
    return TF_OK;
}

/* Shared body of the copy-in/copy-out calls.  A NULL src is a gradient
 * not allocated yet (nothing accumulated): zeros. */
static tf_status copy_tensor(const tf_pattention *set, const char *fn, float *dst,
                             const float *src, size_t count, size_t expected)
{
    tfi_errbuf *eb = (tfi_errbuf *)&set->err;
    if (!dst)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: the array is NULL", fn);
    if (count != expected)
        return tfi_fail(eb, TF_ERR_SHAPE, "%s: count %zu does not match the tensor's %zu elements",
                        fn, count, expected);
    if (src)
        memcpy(dst, src, expected * sizeof(float));
    else
        memset(dst, 0, expected * sizeof(float));
    return TF_OK;
}

static tf_status copy_in(tf_pattention *set, const char *fn, float *dst, const float *src,
                         size_t count, size_t expected)
{
    if (!src)
        return tfi_fail(&set->err, TF_ERR_ARGUMENT, "%s: the array is NULL", fn);
    return copy_tensor(set, fn, dst, src, count, expected);
}

/* A bfloat16 set's keys (values 0) or values (values 1) widened into dst. */
static tf_status copy_bf16(const tf_pattention *set, const char *fn, float *dst, size_t count,
                           int values)
{
    tf_status st = copy_tensor(set, fn, dst, NULL, count, values ? VSIZE(set) : KSIZE(set));
    if (st != TF_OK)
        return st;
    if (values)
        tfi_bf16_widen_transpose(dst, set->d_out, set->values16t, set->n, set->d_out, set->n);
    else
        tfi_bf16_widen(dst, set->keys16, KSIZE(set));
    return TF_OK;
}

TF_API tf_status tf_pattention_get_keys(const tf_pattention *set, float *dst, size_t count)
{
    CHECK_SET(set, "tf_pattention_get_keys");
    if (set->keys16)
        return copy_bf16(set, "tf_pattention_get_keys", dst, count, 0);
    return copy_tensor(set, "tf_pattention_get_keys", dst, set->keys, count, KSIZE(set));
}

TF_API tf_status tf_pattention_set_keys(tf_pattention *set, const float *src, size_t count)
{
    CHECK_SET(set, "tf_pattention_set_keys");
    tf_status st = tfi_pattention_need_f32(set, "tf_pattention_set_keys");
    if (st != TF_OK)
        return st;
    return copy_in(set, "tf_pattention_set_keys", set->keys, src, count, KSIZE(set));
}

TF_API tf_status tf_pattention_get_values(const tf_pattention *set, float *dst, size_t count)
{
    CHECK_SET(set, "tf_pattention_get_values");
    if (set->keys16)
        return copy_bf16(set, "tf_pattention_get_values", dst, count, 1);
    return copy_tensor(set, "tf_pattention_get_values", dst, set->values, count, VSIZE(set));
}

TF_API tf_status tf_pattention_set_values(tf_pattention *set, const float *src, size_t count)
{
    CHECK_SET(set, "tf_pattention_set_values");
    tf_status st = tfi_pattention_need_f32(set, "tf_pattention_set_values");
    if (st != TF_OK)
        return st;
    return copy_in(set, "tf_pattention_set_values", set->values, src, count, VSIZE(set));
}

TF_API tf_status tf_pattention_get_key_grad(const tf_pattention *set, float *dst, size_t count)
{
    CHECK_SET(set, "tf_pattention_get_key_grad");
    return copy_tensor(set, "tf_pattention_get_key_grad", dst, set->key_grad, count, KSIZE(set));
}

TF_API tf_status tf_pattention_get_value_grad(const tf_pattention *set, float *dst, size_t count)
{
    CHECK_SET(set, "tf_pattention_get_value_grad");
    return copy_tensor(set, "tf_pattention_get_value_grad", dst, set->value_grad, count,
                       VSIZE(set));
}

TF_API tf_status tf_pattention_zero_grad(tf_pattention *set)
{
    CHECK_SET(set, "tf_pattention_zero_grad");
    if (set->key_grad)
        memset(set->key_grad, 0, KSIZE(set) * sizeof(float));
    if (set->value_grad)
        memset(set->value_grad, 0, VSIZE(set) * sizeof(float));
    return TF_OK;
}

/* ---- forward / backward ----------------------------------------------- */

/* C [N, n] = A [N, w] W^T with W [n, w] (a set's keys or values), for
 * TFI_FEW_ROWS rows or more: from a transposed copy of W in wt (transpose.c
 * says why; wt must hold n*w). */
static void times_transposed(int64_t N, int64_t n, int64_t w, const float *A, int64_t lda,
                             const float *W, float *wt, float *C)
{
    tfi_transpose(wt, n, W, w, n, w);
    tfi_sgemm(0, 0, N, n, w, 1.0f, A, lda, wt, n, 0.0f, C, n, 0);
}

/* The forward of a bfloat16 set.  Few rows stream the weights through
 * kernels/bf16.c's products; from TFI_FEW_ROWS rows on (a prefill) each
 * matrix is widened into the scratch t, transposed as the GEMM wants it,
 * and multiplied by BLIS: widening n x d weights costs one pass over them,
 * about what reading them costs the product anyway, against 2 * rows
 * flops per weight that BLIS does at its full rate. */
static void forward_bf16(const tf_pattention *set, int64_t N, const float *X, int64_t ldx,
                         float *Y, int64_t ldy, float beta, const tfi_pattention_scratch *ws)
{
    const int64_t n = set->n, din = set->d_in, dout = set->d_out;
    if (N < TFI_FEW_ROWS)
        tfi_bf16_abt(N, n, din, X, ldx, set->keys16, din, 0.0f, ws->a, n);
    else {
        tfi_bf16_widen_transpose(ws->t, n, set->keys16, din, n, din);
        tfi_sgemm(0, 0, N, n, din, 1.0f, X, ldx, ws->t, n, 0.0f, ws->a, n, 0);
    }
    tfi_theta_forward(set->norm, (float)set->tau, N, n, ws->a, ws->s, ws->r);
    if (N < TFI_FEW_ROWS)
        tfi_bf16_abt(N, dout, n, ws->s, n, set->values16t, n, beta, Y, ldy);
    else {
        tfi_bf16_widen_transpose(ws->t, dout, set->values16t, n, dout, n);
        tfi_sgemm(0, 0, N, dout, n, 1.0f, ws->s, n, ws->t, dout, beta, Y, ldy, 0);
    }
}

void tfi_pattention_forward_into(const tf_pattention *set, int64_t N, const float *X,
                                 int64_t ldx, float *Y, int64_t ldy, float beta,
                                 const tfi_pattention_scratch *ws)
{
    const int64_t n = set->n, din = set->d_in, dout = set->d_out;
    if (set->keys16) {
        forward_bf16(set, N, X, ldx, Y, ldy, beta, ws);
        return;
    }
    /* A = X K^T, then S = Theta(A), then Y = beta Y + S V. */
    if (N < TFI_FEW_ROWS)
        tfi_few_rows_abt(N, n, din, X, ldx, set->keys, din, ws->a, n);
    else
        times_transposed(N, n, din, X, ldx, set->keys, ws->t, ws->a);
    tfi_theta_forward(set->norm, (float)set->tau, N, n, ws->a, ws->s, ws->r);
    if (N < TFI_FEW_ROWS)
        tfi_few_rows_ab(N, dout, n, ws->s, n, set->values, dout, beta, Y, ldy);
    else
        tfi_sgemm(0, 0, N, dout, n, 1.0f, ws->s, n, set->values, dout, beta, Y, ldy, 0);
}

tf_status tfi_pattention_forward(tf_pattention *set, int64_t N, const float *X,
                                 int64_t ldx, float *Y, int64_t ldy, float beta)
{
    const int64_t n = set->n;
    size_t rows_n = tfi_mul_size((size_t)N, (size_t)n);
    if (rows_n == 0)
        return tfi_fail(&set->err, TF_ERR_ARGUMENT, "Pattention forward: N*n overflows");
    if (tfi_reserve(&set->ws_a, &set->cap_a, rows_n) != TF_OK ||
        tfi_reserve(&set->ws_s, &set->cap_s, rows_n) != TF_OK ||
        tfi_reserve(&set->ws_r, &set->cap_r, (size_t)N) != TF_OK ||
        tfi_reserve(&set->ws_t, &set->cap_t,
                    (size_t)n * (size_t)(set->d_in > set->d_out ? set->d_in : set->d_out)) !=
            TF_OK)
        return tfi_fail(&set->err, TF_ERR_NOMEM,
                        "Pattention forward: out of memory for the workspace of N=%lld",
                        (long long)N);
    tfi_pattention_scratch ws = {set->ws_a, set->ws_s, set->ws_r, set->ws_t};
    tfi_pattention_forward_into(set, N, X, ldx, Y, ldy, beta, &ws);
    set->fwd_rows = N;
    return TF_OK;
}

tf_status tfi_pattention_backward(tf_pattention *set, int64_t N, const float *X,
                                  int64_t ldx, const float *dY, int64_t ldy,
                                  float *dX, int64_t lddx, float beta_dx)
{
    const int64_t n = set->n;
    if (set->fwd_rows != N)
        return tfi_fail(&set->err, TF_ERR_STATE,
                        "Pattention backward: needs a forward of the same N first "
                        "(last forward N=%lld, backward N=%lld)",
                        (long long)set->fwd_rows, (long long)N);
    tf_status st = tfi_pattention_ensure_grads(set, &set->err);
    if (st != TF_OK)
        return st;
    if (tfi_reserve(&set->ws_g, &set->cap_g, (size_t)N * (size_t)n) != TF_OK ||
        tfi_reserve(&set->ws_t, &set->cap_t, (size_t)(n * set->d_out)) != TF_OK)
        return tfi_fail(&set->err, TF_ERR_NOMEM,
                        "Pattention backward: out of memory for the workspace of N=%lld",
                        (long long)N);
    float *G = set->ws_g;
    /* dV += S^T dY;  dS = dY V^T;  dA = Theta'(dS);  dX = dA K;  dK += dA^T X */
    tfi_sgemm(1, 0, n, set->d_out, N, 1.0f, set->ws_s, n, dY, ldy, 1.0f, set->value_grad,
              set->d_out, 0);
    if (N < TFI_FEW_ROWS) /* too few rows to pay for the copy */
        tfi_sgemm(0, 1, N, n, set->d_out, 1.0f, dY, ldy, set->values, set->d_out, 0.0f, G, n, 0);
    else
        times_transposed(N, n, set->d_out, dY, ldy, set->values, set->ws_t, G);
    tfi_theta_backward(set->norm, (float)set->tau, N, n, set->ws_a, set->ws_s, set->ws_r, G);
    if (dX)
        tfi_sgemm(0, 0, N, set->d_in, n, 1.0f, G, n, set->keys, set->d_in, beta_dx, dX, lddx, 0);
    tfi_sgemm(1, 0, n, set->d_in, N, 1.0f, G, n, X, ldx, 1.0f, set->key_grad, set->d_in, 0);
    return TF_OK;
}

TF_API tf_status tf_pattention_forward(tf_pattention *set, int64_t N, const float *X, float *Y)
{
    CHECK_SET(set, "tf_pattention_forward");
    if (!X || !Y)
        return tfi_fail(&set->err, TF_ERR_ARGUMENT, "tf_pattention_forward: X or Y is NULL");
    if (N < 1)
        return tfi_fail(&set->err, TF_ERR_ARGUMENT,
                        "tf_pattention_forward: N must be >= 1 (got %lld)", (long long)N);
    return tfi_pattention_forward(set, N, X, set->d_in, Y, set->d_out, 0.0f);
}

TF_API tf_status tf_pattention_backward(tf_pattention *set, int64_t N, const float *X,
                                        const float *dY, float *dX)
{
    CHECK_SET(set, "tf_pattention_backward");
    tf_status st = tfi_pattention_need_f32(set, "tf_pattention_backward");
    if (st != TF_OK)
        return st;
    if (!X || !dY)
        return tfi_fail(&set->err, TF_ERR_ARGUMENT, "tf_pattention_backward: X or dY is NULL");
    if (N < 1)
        return tfi_fail(&set->err, TF_ERR_ARGUMENT,
                        "tf_pattention_backward: N must be >= 1 (got %lld)", (long long)N);
    return tfi_pattention_backward(set, N, X, set->d_in, dY, set->d_out, dX, set->d_in, 0.0f);
}

/* ---- growth ----------------------------------------------------------- */

/* Copies the old rows of a [n, width] tensor into a fresh [new_n, width],
 * the new rows zero. */
static float *grown_copy(const float *old, int64_t n, int64_t new_n, int64_t width)
{
    float *fresh = tfi_calloc((size_t)new_n * (size_t)width, sizeof(float));
    if (fresh)
        memcpy(fresh, old, (size_t)n * (size_t)width * sizeof(float));
    return fresh;
}

tf_status tfi_grow_params_copy(tf_grow_params *dst, const tf_grow_params *src, const char *fn,
                               tfi_errbuf *eb)
{
    tf_grow_params g = tf_grow_default_params();
    tf_status st = tfi_params_in(&g, sizeof g, src, TFI_PARAMS_MIN(tf_grow_params, key_init), fn,
                                 "tf_grow_params", eb);
    if (st != TF_OK)
        return st;
    if (g.key_init != TF_KEYS_ZERO && g.key_init != TF_KEYS_RANDOM)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: unknown key_init %d", fn, (int)g.key_init);
    if (!valid_policy(g.scale_policy))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: unknown scale policy %d", fn,
                        (int)g.scale_policy);
    if (!(g.key_std >= 0.0) || !isfinite(g.key_std) || !isfinite(g.value_std))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: key_std must be >= 0 and value_std finite", fn);
    if (!(g.value_std_scale >= 0.0) || !isfinite(g.value_std_scale))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: value_std_scale (%g) must be finite and >= 0",
                        fn, g.value_std_scale);
    if (g.tau_ramp_steps < 0)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: tau_ramp_steps (%lld) must be >= 0", fn,
                        (long long)g.tau_ramp_steps);
    if (g.tau_ramp_steps > 0 && g.scale_policy != TF_SCALE_PINNED)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: a tau ramp (tau_ramp_steps %lld) starts from "
                        "the pinned tau: scale_policy must be TF_SCALE_PINNED", fn,
                        (long long)g.tau_ramp_steps);
    if (g.reset_optimizer != 0 && g.reset_optimizer != 1)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: reset_optimizer must be 0 or 1 (got %d)", fn,
                        (int)g.reset_optimizer);
    if (g.lr_schedule != TF_LR_KEEP && g.lr_schedule != TF_LR_RESTART &&
        g.lr_schedule != TF_LR_CONTINUE)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: unknown lr_schedule %d", fn, (int)g.lr_schedule);
    if (!isfinite(g.lr) || !isfinite(g.min_lr))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: lr and min_lr must be finite", fn);
    if (g.warmup_steps < 0 || g.decay_steps < 0 || g.end_step < 0)
        return tfi_fail(eb, TF_ERR_ARGUMENT,
                        "%s: warmup_steps, decay_steps and end_step must be >= 0 (got %lld, "
                        "%lld, %lld)", fn, (long long)g.warmup_steps, (long long)g.decay_steps,
                        (long long)g.end_step);
    if (!(g.lr_factor > 0.0) || !isfinite(g.lr_factor))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: lr_factor (%g) must be finite and > 0", fn,
                        g.lr_factor);
    *dst = g;
    return TF_OK;
}

int tfi_grow_params_train(const tf_grow_params *g)
{
    return g->tau_ramp_steps > 0 || g->reset_optimizer || g->lr_schedule != TF_LR_KEEP;
}

void tfi_grow_plan_discard(tfi_grow_plan *plan)
{
    tfi_free(plan->keys);
    tfi_free(plan->values);
    if (!plan->grads_borrowed) {
        tfi_free(plan->key_grad);
        tfi_free(plan->value_grad);
    }
    memset(plan, 0, sizeof *plan);
}

tf_status tfi_pattention_grow_prepare(const tf_pattention *set, int64_t new_n,
                                      const tf_grow_params *g, float *key_grad_dst,
                                      float *value_grad_dst, tfi_grow_plan *plan,
                                      tfi_errbuf *eb)
{
    memset(plan, 0, sizeof *plan);
    if (new_n <= set->n)
        return tfi_fail(eb, TF_ERR_ARGUMENT,
                        "new size %lld must exceed the current n=%lld (sets only grow)",
                        (long long)new_n, (long long)set->n);
    int64_t wide = set->d_in > set->d_out ? set->d_in : set->d_out;
    if (tfi_mul_size((size_t)new_n, (size_t)wide) == 0 || new_n > INT64_MAX / 4)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "growing to n=%lld overflows", (long long)new_n);
    plan->keys = grown_copy(set->keys, set->n, new_n, set->d_in);
    plan->values = grown_copy(set->values, set->n, new_n, set->d_out);
    if (key_grad_dst && value_grad_dst) { /* the owner's storage: old rows, zeros */
        if (set->key_grad)
            memcpy(key_grad_dst, set->key_grad, KSIZE(set) * sizeof(float));
        if (set->value_grad)
            memcpy(value_grad_dst, set->value_grad, VSIZE(set) * sizeof(float));
        plan->key_grad = key_grad_dst;
        plan->value_grad = value_grad_dst;
        plan->grads_borrowed = 1;
    } else { /* gradients not allocated yet stay so */
        if (set->key_grad)
            plan->key_grad = grown_copy(set->key_grad, set->n, new_n, set->d_in);
        if (set->value_grad)
            plan->value_grad = grown_copy(set->value_grad, set->n, new_n, set->d_out);
    }
    if (!plan->keys || !plan->values || (set->key_grad && !plan->key_grad) ||
        (set->value_grad && !plan->value_grad)) {
        tfi_grow_plan_discard(plan);
        return tfi_fail(eb, TF_ERR_NOMEM, "out of memory growing n=%lld to %lld",
                        (long long)set->n, (long long)new_n);
    }
    plan->n = new_n;
    plan->policy = g->scale_policy;
    plan->tau = g->scale_policy == TF_SCALE_FOLLOW_N ? tfi_default_tau(set->norm, new_n) : set->tau;
    int64_t extra = new_n - set->n;
    tfi_rng rng;
    tfi_rng_seed(&rng, g->seed);
    if (g->key_init == TF_KEYS_RANDOM)
        tfi_rng_fill_normal(&rng, plan->keys + set->n * set->d_in, (size_t)(extra * set->d_in),
                            g->key_std);
    double vstd = g->value_std > 0.0 ? g->value_std : g->value_std_scale * set->value_std;
    tfi_rng_fill_normal(&rng, plan->values + set->n * set->d_out, (size_t)(extra * set->d_out),
                        vstd);
    return TF_OK;
}

#define SWAP(type, a, b) do { type t_ = (a); (a) = (b); (b) = t_; } while (0)

void tfi_pattention_grow_swap(tf_pattention *set, tfi_grow_plan *plan)
{
    SWAP(float *, set->keys, plan->keys);
    SWAP(float *, set->values, plan->values);
    SWAP(float *, set->key_grad, plan->key_grad);
    SWAP(float *, set->value_grad, plan->value_grad);
    SWAP(int, set->grads_borrowed, plan->grads_borrowed);
    SWAP(int64_t, set->n, plan->n);
    SWAP(tf_scale_policy, set->scale_policy, plan->policy);
    SWAP(double, set->tau, plan->tau);
    set->fwd_rows = 0; /* the cached forward belongs to the other size */
    if (set->resized)
        set->resized(set->owner, set->owner_index);
}

#undef SWAP

TF_API tf_status tf_pattention_grow(tf_pattention *set, int64_t new_n, const tf_grow_params *params)
{
    CHECK_SET(set, "tf_pattention_grow");
    tf_grow_params g;
    tfi_grow_plan plan;
    tf_status st = tfi_pattention_need_f32(set, "tf_pattention_grow");
    if (st == TF_OK)
        st = tfi_grow_params_copy(&g, params, "tf_pattention_grow", &set->err);
    if (st == TF_OK && tfi_grow_params_train(&g))
        st = tfi_fail(&set->err, TF_ERR_ARGUMENT,
                      "tf_pattention_grow: a tau ramp, a reset of the moments or a schedule "
                      "restart needs the optimizer: grow through tf_model_grow(model, opt, ...)");
    if (st != TF_OK)
        return st;
    if (set->grow) { /* its owner lays out its gradients: the owner grows it */
        if ((st = set->grow(set->owner, set->owner_index, new_n, &g)) != TF_OK)
            return tfi_fail(&set->err, st, "tf_pattention_grow: %s", tf_last_error());
        return TF_OK;
    }
    st = tfi_pattention_grow_prepare(set, new_n, &g, NULL, NULL, &plan, &set->err);
    if (st != TF_OK)
        return tfi_fail(&set->err, st, "tf_pattention_grow: %s", tf_last_error());
    tfi_pattention_grow_swap(set, &plan);
    tfi_grow_plan_discard(&plan); /* the old tensors */
    tfi_pattention_ramp_begin(set, 0, 0);
    return TF_OK;
}

/* ---- tau ramp ---------------------------------------------------------- */

void tfi_pattention_ramp_begin(tf_pattention *set, int64_t steps, int64_t start)
{
    set->ramp = (tfi_tau_ramp){0};
    if (steps > 0)
        set->ramp = (tfi_tau_ramp){set->tau, tfi_default_tau(set->norm, set->n), start, steps};
}

void tfi_pattention_ramp_advance(tf_pattention *set, int64_t step)
{
    const tfi_tau_ramp *r = &set->ramp;
    if (r->steps == 0 || step <= r->start)
        return;
    if (step - r->start >= r->steps) {
        set->tau = r->to;
        set->ramp = (tfi_tau_ramp){0};
        return;
    }
    set->tau = r->from + (r->to - r->from) * ((double)(step - r->start) / (double)r->steps);
}

int tfi_tau_ramp_valid(const tfi_tau_ramp *r)
{
    if (r->steps == 0)
        return 1;
    return r->steps > 0 && r->start >= 0 && r->from > 0.0 && isfinite(r->from) &&
           r->to > 0.0 && isfinite(r->to);
}
