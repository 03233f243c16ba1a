/*
 * layer.c -- one transformer layer, forward and backward: the kernels
 * wired into LayerNorm, Pattention q/k/v, rotary, attention, the
 * projection and the FFN, each around a residual connection.  Training and
 * decoding both run this forward; they differ only in where keys and
 * values live (this call's rows, or a cache holding earlier positions too)
 * and in where the Pattention intermediates go.
 */
#include <string.h>

#include "layer.h"

/* Y = beta Y + the set applied to X [N, d], into the training workspaces
 * (reserved by the caller) or the decoder's scratch. */
static void pattention(tf_pattention *set, int64_t N, const float *X, float *Y, int64_t d,
                       float beta, const tfi_layer_scratch *scratch)
{
    if (scratch)
        tfi_pattention_forward_into(set, N, X, d, Y, d, beta, &scratch->pattention);
    else
        tfi_pattention_forward(set, N, X, d, Y, d, beta);
}

static void rotate(float *x, const tfi_layer_spec *sp, int64_t B, int64_t T, int64_t pos0,
                   int inverse)
{
    tfi_rotary_apply(x, B, T, sp->H, sp->hd, sp->d, sp->rotary_dims, sp->rope_cos, sp->rope_sin,
                     pos0, inverse);
}

void tfi_layer_forward(tf_pattention *sets, const tfi_layer_spec *sp, int64_t B, int64_t T,
                       int64_t pos0, tfi_layer_acts *a, float *x_out, const tfi_kv_cache *kv,
                       const tfi_layer_scratch *scratch)
{
    const int64_t R = B * T, d = sp->d;
    const size_t row_bytes = (size_t)(R * d) * sizeof(float);
    tfi_layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, a->x_in, NULL, NULL, R, d, sp->eps);
    pattention(&sets[TF_SET_QUERY], R, a->ln1, a->q, d, 0.0f, scratch);
    pattention(&sets[TF_SET_KEY], R, a->ln1, a->k, d, 0.0f, scratch);
    pattention(&sets[TF_SET_VALUE], R, a->ln1, a->v, d, 0.0f, scratch);
    if (sp->rotary_dims > 0) {
        rotate(a->q, sp, B, T, pos0, 0);
        rotate(a->k, sp, B, T, pos0, 0);
    }
    tfi_attn_shape shape = {B, T, sp->H, sp->hd, pos0, T, sp->causal};
    const float *keys = a->k, *values = a->v;
    if (kv) {
        for (int64_t b = 0; b < B; b++) {
            size_t at = (size_t)(b * kv->rows + pos0) * (size_t)d;
            memcpy(kv->k + at, a->k + b * T * d, (size_t)(T * d) * sizeof(float));
            memcpy(kv->v + at, a->v + b * T * d, (size_t)(T * d) * sizeof(float));
        }
        keys = kv->k;
        values = kv->v;
        shape.kv_rows = kv->rows;
    }
    tfi_attention_forward(a->attn, a->probs, scratch ? scratch->probs_threads : 0, a->q, keys,
                          values, &shape);
    if (a->x_mid != a->x_in)
        memcpy(a->x_mid, a->x_in, row_bytes);
    pattention(&sets[TF_SET_PROJ], R, a->attn, a->x_mid, d, 1.0f, scratch);
    tfi_layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->x_mid, NULL, NULL, R, d, sp->eps);
    if (x_out != a->x_mid)
        memcpy(x_out, a->x_mid, row_bytes);
    pattention(&sets[TF_SET_FFN], R, a->ln2, x_out, d, 1.0f, scratch);
}

void tfi_layer_backward(tf_pattention *sets, const tfi_layer_spec *sp, int64_t B, int64_t T,
                        const tfi_layer_acts *a, const tfi_layer_grads *g)
{
    const int64_t R = B * T, d = sp->d;
    /* x_out = x_mid + Pffn(LN(x_mid)) */
    tfi_pattention_backward(&sets[TF_SET_FFN], R, a->ln2, d, g->g_x, d, g->g_tmp, d, 0.0f);
    tfi_layernorm_backward(g->g_x, NULL, NULL, g->g_tmp, a->x_mid, a->ln2_mean, a->ln2_rstd,
                           NULL, R, d);
    /* x_mid = x_in + Pproj(attn) */
    tfi_pattention_backward(&sets[TF_SET_PROJ], R, a->attn, d, g->g_x, d, g->g_attn, d, 0.0f);
    tfi_attn_shape shape = {B, T, sp->H, sp->hd, 0, T, sp->causal};
    tfi_attention_backward(g->g_q, g->g_k, g->g_v, g->g_probs, g->g_attn, a->q, a->k, a->v,
                           a->probs, &shape);
    if (sp->rotary_dims > 0) {
        rotate(g->g_q, sp, B, T, 0, 1);
        rotate(g->g_k, sp, B, T, 0, 1);
    }
    /* q, k, v all read ln1: their input gradients add up in g_tmp */
    tfi_pattention_backward(&sets[TF_SET_QUERY], R, a->ln1, d, g->g_q, d, g->g_tmp, d, 0.0f);
    tfi_pattention_backward(&sets[TF_SET_KEY], R, a->ln1, d, g->g_k, d, g->g_tmp, d, 1.0f);
    tfi_pattention_backward(&sets[TF_SET_VALUE], R, a->ln1, d, g->g_v, d, g->g_tmp, d, 1.0f);
    tfi_layernorm_backward(g->g_x, NULL, NULL, g->g_tmp, a->x_in, a->ln1_mean, a->ln1_rstd, NULL,
                           R, d);
}
