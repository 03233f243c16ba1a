/*
 * pattention.h -- the Pattention parameter-set object, as the rest of the
 * library sees it (internal).  The model owns sets of its own and drives
 * them through the beta-taking variants below, which let a forward add into
 * the residual stream and a backward add into an input gradient that
 * several sets share, without extra buffers.
 */
#ifndef TF_PATTENTION_H
#define TF_PATTENTION_H

#include "internal.h"

struct tf_pattention {
    tfi_errbuf err;
    int64_t n, d_in, d_out;
    tf_norm_type norm;
    tf_scale_policy scale_policy;
    double tau;
    double key_std, value_std;
    float *keys, *values;         /* [n, d_in], [n, d_out] */
    float *key_grad, *value_grad; /* same shapes, accumulated */
    /* Workspace from the last forward (grow-only, see tfi_reserve). */
    float *ws_a, *ws_s, *ws_g, *ws_r;
    float *ws_t; /* keys or values transposed, for the GEMMs (transpose.c) */
    size_t cap_a, cap_s, cap_g, cap_r, cap_t;
    int64_t fwd_rows; /* N of the last forward (0: none since growth) */
};

/* Default tau for a norm and n: sqrt(n), or n for softmax. */
double tfi_default_tau(tf_norm_type norm, int64_t n);

/* Validates params and initialises *set in place (the model embeds sets
 * through pointers but creates them here). */
tf_status tfi_pattention_init(tf_pattention *set, const tf_pattention_params *p,
                              tfi_errbuf *eb);
void tfi_pattention_release(tf_pattention *set);

/* Y [N, d_out] = beta * Y + Pattention(X [N, d_in]); X rows have stride ldx.
 * Keeps what the backward needs in the set's workspaces. */
tf_status tfi_pattention_forward(tf_pattention *set, int64_t N, const float *X,
                                 int64_t ldx, float *Y, int64_t ldy, float beta);

/* Where a forward puts its intermediates: the scores a and Theta's output
 * s [N, n], the row scales r [N], and t [n, d_in] for the keys transposed
 * (used from TFI_FEW_ROWS rows on). */
typedef struct tfi_pattention_scratch {
    float *a, *s, *r, *t;
} tfi_pattention_scratch;

/* The same forward into the caller's scratch, sized for N rows of this
 * set: it allocates nothing, cannot fail, and leaves the set's workspaces
 * (and so a pending backward) alone.  The arithmetic is the same call for
 * call as tfi_pattention_forward's.  Below TFI_FEW_ROWS rows both products
 * go through kernels/fewrows.c, so that a row's output does not depend on
 * how many rows the call has. */
void tfi_pattention_forward_into(const tf_pattention *set, int64_t N, const float *X,
                                 int64_t ldx, float *Y, int64_t ldy, float beta,
                                 const tfi_pattention_scratch *ws);
/* dX = beta_dx * dX + dL/dX (skipped if dX NULL); dK, dV accumulated. */
tf_status tfi_pattention_backward(tf_pattention *set, int64_t N, const float *X,
                                  int64_t ldx, const float *dY, int64_t ldy,
                                  float *dX, int64_t lddx, float beta_dx);

/* Growth in two phases, so that a model can grow many sets atomically:
 * prepare allocates and initialises the grown tensors (the set unchanged),
 * commit swaps them in and cannot fail; discard drops a prepared plan. */
typedef struct tfi_grow_plan {
    int64_t new_n;
    tf_scale_policy policy;
    float *keys, *values, *key_grad, *value_grad;
} tfi_grow_plan;

tf_status tfi_grow_params_copy(tf_grow_params *dst, const tf_grow_params *src, tfi_errbuf *eb);
tf_status tfi_pattention_grow_prepare(const tf_pattention *set, int64_t new_n,
                                      const tf_grow_params *g, tfi_grow_plan *plan,
                                      tfi_errbuf *eb);
void tfi_pattention_grow_commit(tf_pattention *set, tfi_grow_plan *plan);
void tfi_grow_plan_discard(tfi_grow_plan *plan);

#endif /* TF_PATTENTION_H */
