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

/* A tau ramp after a growth (tf_grow_params.tau_ramp_steps): after
 * optimizer step count c, tau = from + (to - from) * (c - start) / steps,
 * and `to` from c = start + steps on, when the ramp ends.  steps == 0:
 * no ramp. */
typedef struct tfi_tau_ramp {
    double from, to;
    int64_t start, steps;
} tfi_tau_ramp;

struct tf_pattention {
    tfi_errbuf err;
    int64_t n, d_in, d_out;
    tf_norm_type norm;
    tf_scale_policy scale_policy;
    double tau;
    tfi_tau_ramp ramp;
    double key_std, value_std;
    float *keys, *values;         /* [n, d_in], [n, d_out]; NULL in bfloat16 */
    /* An inference set in bfloat16 (model_bf16.c) holds its keys [n, d_in]
     * and its values transposed, [d_out, n], so that both products of a
     * forward are float32 rows times a bfloat16 matrix transposed
     * (kernels/bf16.h); keys and values are NULL then.  Both NULL: float32. */
    uint16_t *keys16, *values16t;
    float *key_grad, *value_grad; /* same shapes, accumulated; NULL until the
                                     first backward (tfi_pattention_ensure_grads) */
    int grads_borrowed;           /* the gradients live in the owner's storage
                                     (a model's gradient buffer): never freed
                                     here */
    /* Workspace from the last forward (grow-only, see tfi_reserve). */
    float *ws_a, *ws_s, *ws_g, *ws_r;
    float *ws_t; /* keys or values transposed, for the GEMMs (transpose.c) */
    size_t cap_a, cap_s, cap_g, cap_r, cap_t;
    int64_t fwd_rows; /* N of the last forward (0: none since growth) */
    /* A set owned by a model (or other object) tells its owner whenever its
     * tensors move, so that the owner's tables never go stale: resized(owner,
     * index) runs after every growth and when the gradients are allocated,
     * cannot fail and allocates nothing.
     * NULL for a set created on its own. */
    void (*resized)(void *owner, int index);
    /* A set whose owner lays out its gradients (a model's) grows through the
     * owner, which moves them: tf_pattention_grow calls grow(owner, index,
     * new_n, g) with validated g instead of growing on its own. */
    tf_status (*grow)(void *owner, int index, int64_t new_n, const tf_grow_params *g);
    void *owner;
    int owner_index;
};

/* Default tau for a norm and n: sqrt(n), or n for softmax. */
double tfi_default_tau(tf_norm_type norm, int64_t n);

/* Validates params and initialises *set in place (the model embeds sets
 * through pointers but creates them here).  With init the keys and values
 * are drawn per p; without, they are allocated and left for the caller to
 * fill (a loader that writes every element).  Gradients are not allocated
 * (key_grad and value_grad NULL: nothing accumulated, read as zeros) until
 * tfi_pattention_ensure_grads. */
tf_status tfi_pattention_init(tf_pattention *set, const tf_pattention_params *p, int init,
                              tfi_errbuf *eb);
/* Allocates the set's gradients (zero) if they are not yet, and tells the
 * owner through the resize hook; TF_ERR_NOMEM changes nothing.  Backward
 * calls it; an inference-only set never has gradients. */
tf_status tfi_pattention_ensure_grads(tf_pattention *set, tfi_errbuf *eb);
void tfi_pattention_release(tf_pattention *set);
/* TF_ERR_STATE (message "fn: ...") if set holds bfloat16 weights, which
 * only run forwards: fn changes weights or needs gradients. */
tf_status tfi_pattention_need_f32(const tf_pattention *set, const char *fn);

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
 * prepare allocates and initialises the grown tensors (the set unchanged);
 * swap exchanges the set's tensors, size and scale with the plan's and
 * cannot fail, so that afterwards the plan holds the set as it was: discard
 * it to finish the growth, or swap again to undo it. */
typedef struct tfi_grow_plan {
    int64_t n;
    tf_scale_policy policy;
    double tau;
    float *keys, *values, *key_grad, *value_grad;
    int grads_borrowed; /* key_grad/value_grad are someone else's (not freed) */
} tfi_grow_plan;

/* Copy-in and validation of grow params (NULL: the defaults); TF_ERR_ARGUMENT
 * with a message starting "fn: " on a bad struct_size or value. */
tf_status tfi_grow_params_copy(tf_grow_params *dst, const tf_grow_params *src, const char *fn,
                               tfi_errbuf *eb);
/* Whether g asks for anything only an optimizer can do (a tau ramp, a
 * reset of the moments, a schedule restart). */
int tfi_grow_params_train(const tf_grow_params *g);
/* key_grad_dst and value_grad_dst (both or neither): zeroed storage of the
 * grown sizes, the caller's, that receives the old gradient rows (a model's
 * new gradient buffer); NULL: the plan allocates its own if the set has
 * gradients. */
tf_status tfi_pattention_grow_prepare(const tf_pattention *set, int64_t new_n,
                                      const tf_grow_params *g, float *key_grad_dst,
                                      float *value_grad_dst, tfi_grow_plan *plan,
                                      tfi_errbuf *eb);
void tfi_pattention_grow_swap(tf_pattention *set, tfi_grow_plan *plan);
void tfi_grow_plan_discard(tfi_grow_plan *plan);

/* Starts a tau ramp of `steps` optimizer steps from the set's tau to the
 * default of its size, counted from step count `start` (steps 0: ends any
 * ramp).  Growth calls it for every set it grew. */
void tfi_pattention_ramp_begin(tf_pattention *set, int64_t steps, int64_t start);
/* Sets tau for optimizer step count `step` if the set is ramping. */
void tfi_pattention_ramp_advance(tf_pattention *set, int64_t step);
/* Whether r is a valid ramp (or none); checkpoints validate what they read. */
int tfi_tau_ramp_valid(const tfi_tau_ramp *r);

#endif /* TF_PATTENTION_H */
