/*
 * layer.h -- one transformer layer, forward and backward (internal).  The
 * forward is the one routine that training (model.c) and decoding
 * (decode.c) both run, so that the two compute every row alike.
 */
#ifndef TF_LAYER_H
#define TF_LAYER_H

#include "kernels/ops.h"
#include "pattention.h"

/* What every layer of a model shares. */
typedef struct tfi_layer_spec {
    int64_t d, H, hd;                 /* width, heads, head width (d = H * hd) */
    int rotary_dims;                  /* leading dims of each head rotated (0: none) */
    const float *rope_cos, *rope_sin; /* [positions, rotary_dims / 2] */
    float eps;                        /* LayerNorm epsilon */
    int causal;                       /* a position attends to earlier ones only */
} tfi_layer_spec;

/* Activations of one layer (all [B*T, d], rows sequence-major, unless
 * said).  Training keeps one set per layer for the backward; a decoder
 * points several at the same buffer (x_in = x_mid, ln1 = ln2). */
typedef struct tfi_layer_acts {
    float *x_in;        /* residual input of the layer */
    float *ln1, *ln1_mean, *ln1_rstd;
    float *q, *k, *v;   /* after rotary */
    float *probs;       /* softmax rows: [B, H, T, T rounded up to even] for training */
    float *attn;        /* attention output, input of proj */
    float *x_mid;       /* x + proj(attn) */
    float *ln2, *ln2_mean, *ln2_rstd;
} tfi_layer_acts;

/* A decoder's key/value cache of one layer: [B][rows][d] each, rotated
 * keys; the call's new rows are stored at positions pos0 .. pos0+T-1. */
typedef struct tfi_kv_cache {
    float *k, *v;
    int64_t rows;
} tfi_kv_cache;

/* A decoder's scratch in place of the training state: Pattention
 * intermediates sized for B*T rows of the layer's largest set, and
 * acts->probs holding probs_threads * T * tfi_attn_probs_width(pos0 + T)
 * floats. */
typedef struct tfi_layer_scratch {
    tfi_pattention_scratch pattention;
    int probs_threads;
} tfi_layer_scratch;

/* x_out = the layer applied to a->x_in, B sequences of T new positions
 * each, the first at absolute position pos0 (rotary angles and the causal
 * mask follow it):
 *   ln1 = LN(x_in); q, k, v = Pq, Pk, Pv(ln1); rotary(q, k)
 *   attn = attention(q; keys and values at positions [0, pos0 + T))
 *   x_mid = x_in + Pproj(attn);  x_out = x_mid + Pffn(LN(x_mid))
 * sets: the layer's five, indexed by tf_set_kind.
 * Training: kv and scratch NULL, pos0 = 0; attention reads this call's k,
 *   v; the sets' workspaces (reserved by the caller for B*T rows) and
 *   a->probs keep what the backward needs.
 * Decoding: the new k, v rows also go into kv, attention reads kv, and the
 *   Pattention intermediates go to scratch (the sets are only read).
 * Buffers must be sized; the call allocates nothing and cannot fail.
 * x_in may equal x_mid and x_mid x_out (in place). */
void tfi_layer_forward(tf_pattention *sets, const tfi_layer_spec *spec, int64_t B, int64_t T,
                       int64_t pos0, tfi_layer_acts *a, float *x_out, const tfi_kv_cache *kv,
                       const tfi_layer_scratch *scratch);

/* Backward scratch of a training pass, [B*T, d] each but g_probs of the
 * shape of probs. */
typedef struct tfi_layer_grads {
    float *g_x, *g_tmp, *g_q, *g_k, *g_v, *g_attn, *g_probs;
} tfi_layer_grads;

/* The backward of a training forward (same sets, spec, B, T and a): g->g_x
 * holds dL/d(x_out) on entry and dL/d(x_in) on exit; the sets' gradients
 * are accumulated.  The other buffers of g are scratch. */
void tfi_layer_backward(tf_pattention *sets, const tfi_layer_spec *spec, int64_t B, int64_t T,
                        const tfi_layer_acts *a, const tfi_layer_grads *g);

#endif /* TF_LAYER_H */
