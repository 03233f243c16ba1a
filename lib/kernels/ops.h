/*
 * ops.h -- the language model's non-Pattention kernels, forward and
 * backward side by side (internal).  Plain C with OpenMP; GEMMs through
 * tfi_sgemm.  No kernel allocates: callers pass every buffer.
 *
 * Layout: activations are rows of width d, one row per token, tokens
 * ordered [B, T].  A row of q/k/v holds the H heads one after the other
 * (head h is columns [h*hd, (h+1)*hd)), as q.view(B, T, H, hd) in PyTorch.
 */
#ifndef TF_KERNELS_OPS_H
#define TF_KERNELS_OPS_H

#include <stdint.h>

/* LayerNorm over rows of x [N, d], biased variance:
 *   y = (x - mean) * rstd            with rstd = 1/sqrt(var + eps)
 *   y = y * w + b                     if w (and b) are not NULL
 * mean, rstd [N] are kept for backward. y may not alias x. */
void tfi_layernorm_forward(float *y, float *mean, float *rstd, const float *x,
                           const float *w, const float *b, int64_t N, int64_t d,
                           float eps);
/* ACCUMULATES dx += dL/dx, and dw += , db += if not NULL (w NULL: no affine). */
void tfi_layernorm_backward(float *dx, float *dw, float *db, const float *dy,
                            const float *x, const float *mean, const float *rstd,
                            const float *w, int64_t N, int64_t d);

/* Rotary tables for positions 0..T-1 and r rotary dims (r even):
 * cos, sin [T, r/2], angle[t][j] = t * base^(-2j/r). Computed in double. */
void tfi_rotary_tables(float *cos_t, float *sin_t, int64_t T, int r, double base);

/* In place on x [B, T, H*hd] (row stride ld floats): for every head, dims
 * [0, r) as halves (x1, x2) of r/2 -> (x1 c - x2 s, x2 c + x1 s) with the
 * angle of position pos0 + t.  inverse != 0 applies the transpose (the
 * backward: rotation by -angle).  Tables must cover pos0 + T positions. */
void tfi_rotary_apply(float *x, int64_t B, int64_t T, int64_t H, int64_t hd,
                      int64_t ld, int r, const float *cos_t, const float *sin_t,
                      int64_t pos0, int inverse);

/* Causal multi-head attention, scale 1/sqrt(hd):
 *   q, k, v, out [B, T, H*hd];  probs [B, H, T, T] (softmax rows; entries
 *   above the diagonal are 0), kept for backward. */
void tfi_attention_forward(float *out, float *probs, const float *q,
                           const float *k, const float *v, int64_t B, int64_t T,
                           int64_t H, int64_t hd);
/* Overwrites dq, dk, dv [B, T, H*hd]; dprobs is scratch [B, H, T, T]. */
void tfi_attention_backward(float *dq, float *dk, float *dv, float *dprobs,
                            const float *dout, const float *q, const float *k,
                            const float *v, const float *probs, int64_t B,
                            int64_t T, int64_t H, int64_t hd);

/* Mean cross-entropy of logits [N, V] against targets [N] (0 <= t < V,
 * checked by the caller).  lse [N] receives each row's log-sum-exp.
 * Accumulated in double. */
double tfi_crossentropy_forward(const float *logits, const int32_t *targets,
                                int64_t N, int64_t V, float *lse);
/* dlogits = (softmax(logits) - onehot(targets)) * scale; dlogits may alias
 * logits (in place). */
void tfi_crossentropy_backward(float *dlogits, const float *logits,
                               const float *lse, const int32_t *targets,
                               int64_t N, int64_t V, float scale);

#endif /* TF_KERNELS_OPS_H */
