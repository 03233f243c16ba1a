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

/* The shape of one attention call.  Query rows are [B, T, H*hd] (row
 * stride H*hd); sequence b's T rows sit at absolute positions
 * pos0 .. pos0+T-1, and its keys and values are the rows 0 .. pos0+T-1 of
 * k and v from row b*kv_rows on (row stride H*hd too).  A whole-sequence
 * forward has pos0 = 0 and kv_rows = T; a decoder reads its cache with
 * pos0 = positions already cached and kv_rows = the cache's length. */
typedef struct tfi_attn_shape {
    int64_t B, T, H, hd;
    int64_t pos0, kv_rows;
    int causal; /* query row t sees keys [0, pos0 + t]; else all pos0 + T */
} tfi_attn_shape;

/* Multi-head attention, scale 1/sqrt(hd): out [B, T, H*hd] = softmax(q k^T
 * scale, masked when causal) v.  The softmax rows, W =
 * tfi_attn_probs_width(pos0 + T) floats apart, zeros at masked places and
 * after the keys, go to probs:
 *   probs_threads == 0: probs keeps them all, [B, H, T, W], for backward;
 *   probs_threads  > 0: probs is scratch for that many threads, T * W
 *     floats each, and the call uses no more threads than that.
 * A row is computed by the same calls whatever T and pos0 are, so a
 * decoder's rows repeat a whole-sequence forward's arithmetic wherever
 * BLIS sums the two calls' products in the same order (decode.c). */
void tfi_attention_forward(float *out, float *probs, int probs_threads, const float *q,
                           const float *k, const float *v, const tfi_attn_shape *s);
/* Floats between softmax rows for P keys: P rounded up to even. */
int64_t tfi_attn_probs_width(int64_t P);
/* The backward of a whole-sequence forward (s->pos0 = 0, s->kv_rows = T):
 * overwrites dq, dk, dv [B, T, H*hd]; dprobs is scratch of probs' shape,
 * [B, H, T, tfi_attn_probs_width(T)]. */
void tfi_attention_backward(float *dq, float *dk, float *dv, float *dprobs,
                            const float *dout, const float *q, const float *k,
                            const float *v, const float *probs, const tfi_attn_shape *s);

/* Mean cross-entropy of logits [N, V] against targets [N] (0 <= t < V,
 * checked by the caller), with label smoothing eps in [0, 1) (0: plain):
 * against (1 - eps) onehot(target) + eps / V.  lse [N] receives each row's
 * log-sum-exp.  Accumulated in double. */
double tfi_crossentropy_forward(const float *logits, const int32_t *targets,
                                int64_t N, int64_t V, float eps, float *lse);
/* dlogits = (softmax(logits) - onehot(targets) + eps (onehot(targets) -
 * 1/V)) * scale; dlogits may alias logits (in place). */
void tfi_crossentropy_backward(float *dlogits, const float *logits, float eps,
                               const float *lse, const int32_t *targets,
                               int64_t N, int64_t V, float scale);

#endif /* TF_KERNELS_OPS_H */
