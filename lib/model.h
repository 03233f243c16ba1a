/*
 * model.h -- the language-model object as the library sees it (internal):
 * parameters (in Pattention sets and two plain tensors), gradients, and the
 * activations forward keeps for backward.
 */
#ifndef TF_MODEL_H
#define TF_MODEL_H

#include "internal.h"
#include "layer.h"
#include "pattention.h"

#define TFI_SETS_PER_LAYER 5

/* A named parameter tensor: where its data and gradient live. */
typedef struct tfi_tensor_ref {
    char name[96];
    float *data, *grad;
    int64_t rows, cols; /* cols == 0: 1-D of length rows */
    int decay;          /* AdamW weight decay applies */
} tfi_tensor_ref;

struct tf_model {
    tfi_errbuf err;
    tf_model_params p;
    int head_dim, rotary_dims;
    float *embed, *embed_grad;          /* [V, d] */
    float *norm_w, *norm_b, *norm_w_grad, *norm_b_grad;  /* [d] */
    tf_pattention *sets;                /* [L * 5], layer-major */
    /* Activation arena, sized for (act_B, act_T); reallocated only when a
     * larger batch arrives. */
    int act_B, act_T;
    float *arena;
    size_t arena_floats;
    tfi_layer_acts *layers;
    float *x_final, *lnf, *lnf_mean, *lnf_rstd, *logits, *lse;
    float *rope_cos, *rope_sin;         /* [seq_length, r/2] */
    float *g_x, *g_tmp, *g_q, *g_k, *g_v, *g_attn, *g_probs; /* backward scratch */
    int32_t *tokens, *targets;          /* copies from the last forward */
    int fwd_B, fwd_T, have_targets;     /* what the last forward computed */
    tfi_tensor_ref *refs;               /* named tensors, canonical order */
    int nrefs;
};

int tfi_rotary_dims(const tf_model_params *p);
tf_status tfi_model_params_check(const tf_model_params *p, tfi_errbuf *eb);
/* Copies a caller's params struct, tolerating older (shorter) layouts. */
tf_status tfi_model_params_copy(tf_model_params *dst, const tf_model_params *src);

/* The shapes and tables every layer of the model shares. */
tfi_layer_spec tfi_model_layer_spec(const tf_model *m);
/* The output head on N rows x [N, d]: ln = LN(x; final norm) (mean, rstd
 * [N] kept), logits [N, V] = ln embed^T (the tied embedding). */
void tfi_model_head(const tf_model *m, int64_t N, const float *x, float *ln, float *mean,
                    float *rstd, float *logits);

/* Rebuilds the table of named tensors (after creation or growth). */
tf_status tfi_model_build_refs(tf_model *m);
const tfi_tensor_ref *tfi_model_find(const tf_model *m, const char *name);

#endif /* TF_MODEL_H */
