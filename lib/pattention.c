/*
 * pattention.c -- the Pattention parameter set: keys, values, their
 * gradients, forward/backward through BLIS, and growth.
 */
#include <math.h>
#include <string.h>

#include "kernels/theta.h"
#include "pattention.h"

#define CHECK_SET(set, fn)                                                    \
    do {                                                                      \
        if (!(set))                                                           \
            return tfi_fail(NULL, TF_ERR_ARGUMENT, fn ": the set is NULL");  \
    } while (0)

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
    if (!p || size < sizeof(size_t))
        return;
    tf_pattention_params d = pattention_defaults();
    size_t n = size < sizeof d ? size : sizeof d;
    memcpy(p, &d, n);
    p->struct_size = n;
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
    return g;
}

TF_API void tf_grow_params_init(tf_grow_params *p, size_t size)
{
    if (!p || size < sizeof(size_t))
        return;
    tf_grow_params d = grow_defaults();
    size_t n = size < sizeof d ? size : sizeof d;
    memcpy(p, &d, n);
    p->struct_size = n;
}

/* Copies a caller's params struct, tolerating older (shorter) layouts. */
static tf_status copy_params(tf_pattention_params *dst, const tf_pattention_params *src)
{
    *dst = tf_pattention_default_params();
    if (!src)
        return TF_OK;
    if (src->struct_size < offsetof(tf_pattention_params, n) + sizeof(int64_t) ||
        src->struct_size > sizeof *dst)
        return tfi_fail(NULL, TF_ERR_ARGUMENT,
                        "tf_pattention_params.struct_size is %zu: obtain the struct "
                        "from tf_pattention_default_params()", src->struct_size);
    memcpy(dst, src, src->struct_size);
    dst->struct_size = sizeof *dst;
    return TF_OK;
}

static int valid_norm(tf_norm_type t)
{
    return t == TF_NORM_L2_NORM_GELU || t == TF_NORM_GELU_L2_NORM || t == TF_NORM_SOFTMAX;
}

static int valid_policy(tf_scale_policy p)
{
    return p == TF_SCALE_FOLLOW_N || p == TF_SCALE_PINNED;
}

tf_status tfi_pattention_init(tf_pattention *set, const tf_pattention_params *p,
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
    set->keys = tfi_calloc(nk, sizeof(float));
    set->values = tfi_calloc(nv, sizeof(float));
    set->key_grad = tfi_calloc(nk, sizeof(float));
    set->value_grad = tfi_calloc(nv, sizeof(float));
    if (!set->keys || !set->values || !set->key_grad || !set->value_grad) {
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
    tfi_rng rng;
    tfi_rng_seed(&rng, p->seed);
    tfi_rng_fill_normal(&rng, set->keys, nk, p->key_std);
    tfi_rng_fill_normal(&rng, set->values, nv, p->value_std);
    return TF_OK;
}

void tfi_pattention_release(tf_pattention *set)
{
    tfi_free(set->keys);
    tfi_free(set->values);
    tfi_free(set->key_grad);
    tfi_free(set->value_grad);
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
    tf_pattention_params p;
    tf_status st = copy_params(&p, params);
    if (st != TF_OK)
        return st;
    tf_pattention *set = tfi_alloc(sizeof *set);
    if (!set)
        return tfi_fail(NULL, TF_ERR_NOMEM, "tf_pattention_create: out of memory");
    st = tfi_pattention_init(set, &p, NULL);
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
    set->scale_policy = TF_SCALE_PINNED;
    return TF_OK;
}

/* Shared body of the eight copy-in/copy-out calls. */
static tf_status copy_tensor(const tf_pattention *set, const char *fn, float *dst,
                             const float *src, size_t count, size_t expected)
{
    tfi_errbuf *eb = (tfi_errbuf *)&set->err;
    if (!dst || !src)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: the array is NULL", fn);
    if (count != expected)
        return tfi_fail(eb, TF_ERR_SHAPE, "%s: count %zu does not match the tensor's %zu elements",
                        fn, count, expected);
    memcpy(dst, src, expected * sizeof(float));
    return TF_OK;
}

#define KSIZE(s) ((size_t)(s)->n * (size_t)(s)->d_in)
#define VSIZE(s) ((size_t)(s)->n * (size_t)(s)->d_out)

TF_API tf_status tf_pattention_get_keys(const tf_pattention *set, float *dst, size_t count)
{
    CHECK_SET(set, "tf_pattention_get_keys");
    return copy_tensor(set, "tf_pattention_get_keys", dst, set->keys, count, KSIZE(set));
}

TF_API tf_status tf_pattention_set_keys(tf_pattention *set, const float *src, size_t count)
{
    CHECK_SET(set, "tf_pattention_set_keys");
    return copy_tensor(set, "tf_pattention_set_keys", set->keys, src, count, KSIZE(set));
}

TF_API tf_status tf_pattention_get_values(const tf_pattention *set, float *dst, size_t count)
{
    CHECK_SET(set, "tf_pattention_get_values");
    return copy_tensor(set, "tf_pattention_get_values", dst, set->values, count, VSIZE(set));
}

TF_API tf_status tf_pattention_set_values(tf_pattention *set, const float *src, size_t count)
{
    CHECK_SET(set, "tf_pattention_set_values");
    return copy_tensor(set, "tf_pattention_set_values", set->values, src, count, VSIZE(set));
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
    memset(set->key_grad, 0, KSIZE(set) * sizeof(float));
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

void tfi_pattention_forward_into(const tf_pattention *set, int64_t N, const float *X,
                                 int64_t ldx, float *Y, int64_t ldy, float beta,
                                 const tfi_pattention_scratch *ws)
{
    const int64_t n = set->n, din = set->d_in, dout = set->d_out;
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
        tfi_reserve(&set->ws_t, &set->cap_t, (size_t)(n * set->d_in)) != TF_OK)
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
    if (!X || !dY)
        return tfi_fail(&set->err, TF_ERR_ARGUMENT, "tf_pattention_backward: X or dY is NULL");
    if (N < 1)
        return tfi_fail(&set->err, TF_ERR_ARGUMENT,
                        "tf_pattention_backward: N must be >= 1 (got %lld)", (long long)N);
    return tfi_pattention_backward(set, N, X, set->d_in, dY, set->d_out, dX, set->d_in, 0.0f);
}

/* ---- growth ----------------------------------------------------------- */

/* Copies the old rows of a [n, width] tensor into a fresh [new_n, width]. */
static float *grown_copy(const float *old, int64_t n, int64_t new_n, int64_t width)
{
    float *fresh = tfi_calloc((size_t)new_n * (size_t)width, sizeof(float));
    if (fresh)
        memcpy(fresh, old, (size_t)n * (size_t)width * sizeof(float));
    return fresh;
}

tf_status tfi_grow_params_copy(tf_grow_params *dst, const tf_grow_params *src, tfi_errbuf *eb)
{
    *dst = tf_grow_default_params();
    if (src) {
        if (src->struct_size < sizeof(size_t) + sizeof(int) || src->struct_size > sizeof *dst)
            return tfi_fail(eb, TF_ERR_ARGUMENT,
                            "bad tf_grow_params.struct_size %zu: obtain the params from "
                            "tf_grow_default_params()", src->struct_size);
        memcpy(dst, src, src->struct_size);
        dst->struct_size = sizeof *dst;
    }
    if (dst->key_init != TF_KEYS_ZERO && dst->key_init != TF_KEYS_RANDOM)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "unknown key_init %d", (int)dst->key_init);
    if (!valid_policy(dst->scale_policy))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "unknown scale policy %d", (int)dst->scale_policy);
    if (!(dst->key_std >= 0.0) || !isfinite(dst->key_std) || !isfinite(dst->value_std))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "key_std must be >= 0 and value_std finite");
    return TF_OK;
}

void tfi_grow_plan_discard(tfi_grow_plan *plan)
{
    tfi_free(plan->keys);
    tfi_free(plan->values);
    tfi_free(plan->key_grad);
    tfi_free(plan->value_grad);
    memset(plan, 0, sizeof *plan);
}

tf_status tfi_pattention_grow_prepare(const tf_pattention *set, int64_t new_n,
                                      const tf_grow_params *g, tfi_grow_plan *plan,
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
    plan->key_grad = grown_copy(set->key_grad, set->n, new_n, set->d_in);
    plan->value_grad = grown_copy(set->value_grad, set->n, new_n, set->d_out);
    if (!plan->keys || !plan->values || !plan->key_grad || !plan->value_grad) {
        tfi_grow_plan_discard(plan);
        return tfi_fail(eb, TF_ERR_NOMEM, "out of memory growing n=%lld to %lld",
                        (long long)set->n, (long long)new_n);
    }
    plan->new_n = new_n;
    int64_t extra = new_n - set->n;
    tfi_rng rng;
    tfi_rng_seed(&rng, g->seed);
    if (g->key_init == TF_KEYS_RANDOM)
        tfi_rng_fill_normal(&rng, plan->keys + set->n * set->d_in, (size_t)(extra * set->d_in),
                            g->key_std);
    double vstd = g->value_std > 0.0 ? g->value_std : set->value_std;
    tfi_rng_fill_normal(&rng, plan->values + set->n * set->d_out, (size_t)(extra * set->d_out),
                        vstd);
    plan->policy = g->scale_policy;
    return TF_OK;
}

void tfi_pattention_grow_commit(tf_pattention *set, tfi_grow_plan *plan)
{
    tfi_free(set->keys);
    tfi_free(set->values);
    tfi_free(set->key_grad);
    tfi_free(set->value_grad);
    set->keys = plan->keys;
    set->values = plan->values;
    set->key_grad = plan->key_grad;
    set->value_grad = plan->value_grad;
    set->n = plan->new_n;
    set->scale_policy = plan->policy;
    if (plan->policy == TF_SCALE_FOLLOW_N)
        set->tau = tfi_default_tau(set->norm, set->n);
    set->fwd_rows = 0; /* the cached forward belongs to the old size */
    memset(plan, 0, sizeof *plan);
}

TF_API tf_status tf_pattention_grow(tf_pattention *set, int64_t new_n, const tf_grow_params *params)
{
    CHECK_SET(set, "tf_pattention_grow");
    tf_grow_params g;
    tfi_grow_plan plan;
    tf_status st = tfi_grow_params_copy(&g, params, &set->err);
    if (st == TF_OK)
        st = tfi_pattention_grow_prepare(set, new_n, &g, &plan, &set->err);
    if (st != TF_OK)
        return tfi_fail(&set->err, st, "tf_pattention_grow: %s", tf_last_error());
    tfi_pattention_grow_commit(set, &plan);
    return TF_OK;
}
