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

/* What a vision model (vision.c) adds to the language model's state: its
 * configuration, and buffers for one batch of B images. */
typedef struct tfi_vision {
    tf_vision_params p;
    int64_t P, patch_dim;         /* patches per image, p * p * C */
    int act_B;                    /* the batch the buffers are sized for */
    float *buf;                   /* one allocation holding the five below */
    float *patches;               /* [B*P, patch_dim] */
    float *pooled, *g_pooled;     /* [B, d] */
    float *logits, *lse;          /* [B, K], [B] */
    int32_t *labels;              /* [B], the last forward's */
} tfi_vision;

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
    /* the first table entry: the token embedding [V, d] (language) or
     * the position embedding [P, d] (vision) */
    float *embed, *embed_grad;
    /* an inference model in bfloat16 (model_bf16.c): the embedding here,
     * embed NULL, and every set in bfloat16 too; NULL: float32 */
    uint16_t *embed16;
    float *norm_w, *norm_b, *norm_w_grad, *norm_b_grad;  /* [d] */
    /* the gradients (here, in the sets and in refs) are NULL until
     * tfi_model_ensure_grads: a model that only runs never has them; then
     * they all point into grad_arena */
    tf_pattention *sets;                /* [L * 5], layer-major, then a vision
                                           model's patch and head sets */
    tfi_vision *vis;                    /* NULL: a language model */
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
    float label_smoothing;              /* tf_model_set_label_smoothing */
    float fwd_smoothing;                /* the last forward's, for its backward */
    tfi_tensor_ref *refs;               /* named tensors, canonical order */
    int nrefs;
    /* Every gradient in one buffer, in table order (model_grads.c), once
     * allocated (NULL before): the embedding's, the sets' and the final
     * norm's grad pointers point into it.  Growth lays it out anew. */
    float *grad_arena;
    size_t grad_count;
    tf_grad_ready_callback grad_ready;  /* tf_model_set_grad_ready_callback */
    void *grad_ready_user;
};

/* A model of checked params p, set i holding set_n[i] tokens (layer-major;
 * NULL: p's slot numbers).  With init the parameters get the official
 * initialisation (tf_model_create); without, they are allocated and left
 * for a loader that fills every one of them (tf_model_open).  Either way
 * no gradients: they are allocated by tfi_model_ensure_grads.  Errors go
 * to tf_last_error() only. */
tf_status tfi_model_new(const tf_model_params *p, const int64_t *set_n, int init,
                        tf_model **out);
/* The same for a vision model: vp checked, p its layer fields
 * (tfi_vision_model_params); set_n may also size the patch and head sets
 * (entries L*5 and L*5 + 1). */
tf_status tfi_model_new_task(const tf_model_params *p, const tf_vision_params *vp,
                             const int64_t *set_n, int init, tf_model **out);

/* Every Pattention set of the model: the layers' L*5, and the patch and
 * head sets of a vision model after them. */
static inline int tfi_model_num_sets(const tf_model *m)
{
    return m->p.num_layers * TFI_SETS_PER_LAYER + (m->vis ? 2 : 0);
}
#define TFI_VISION_PATCH_SET(m) ((m)->p.num_layers * TFI_SETS_PER_LAYER)
#define TFI_VISION_HEAD_SET(m) ((m)->p.num_layers * TFI_SETS_PER_LAYER + 1)

/* Activation buffers for B sequences of T rows (reallocated only to grow)
 * and the sets' workspaces for B*T rows, so that a pass cannot fail half
 * way.  TF_ERR_NOMEM (message on m). */
tf_status tfi_model_prepare_pass(tf_model *m, int B, int T);
/* The layers' forward on m->layers[0].x_in (B sequences of T rows) into
 * m->x_final, and their backward from m->g_x, announcing each layer. */
void tfi_model_layers_forward(tf_model *m, int B, int T);
void tfi_model_layers_backward(tf_model *m, int B, int T);

/* ---- vision (vision.c) ---- */

/* The layer fields of vp as language-model params: seq_length = P, vocab
 * K, no rotary. */
tf_model_params tfi_vision_model_params(const tf_vision_params *vp);
tf_status tfi_vision_params_check(const tf_vision_params *vp, tfi_errbuf *eb);
void tfi_vision_release(tfi_vision *v);
/* tf_model_backward of a vision model (checked: a forward with labels). */
tf_status tfi_vision_backward(tf_model *m);
/* TF_ERR_STATE unless m is a language model (fn names the call). */
tf_status tfi_model_need_language(tf_model *m, const char *fn);

int tfi_rotary_dims(const tf_model_params *p);
/* The rotary tables (cos and sin, seq_length x rotary_dims / 2 floats each)
 * are built at creation, for every position a decoder may reach: bounding
 * seq_length x rotary_dims keeps them under 64 MB, whatever a file says. */
#define TFI_MAX_ROTARY_ENTRIES ((int64_t)1 << 24)
tf_status tfi_model_params_check(const tf_model_params *p, tfi_errbuf *eb);
/* The oldest tf_model_params layout ends after num_layers (params.c). */
#define TFI_MODEL_PARAMS_MIN TFI_PARAMS_MIN(tf_model_params, num_layers)

/* Set kinds share three slot numbers: class 0 is qkv_slot_num (query, key,
 * value), 1 proj_slot_num, 2 ffn_slot_num.  tfi_slot_field is the field of
 * p that sizes sets of that kind. */
int tfi_slot_class(int kind);
int64_t *tfi_slot_field(tf_model_params *p, int kind);

/* The shapes and tables every layer of the model shares. */
tfi_layer_spec tfi_model_layer_spec(const tf_model *m);
/* The output head on N rows x [N, d]: ln = LN(x; final norm) (mean, rstd
 * [N] kept), logits [N, V] = ln embed^T (the tied embedding). */
void tfi_model_head(const tf_model *m, int64_t N, const float *x, float *ln, float *mean,
                    float *rstd, float *logits);

/* ---- bfloat16 inference models (model_bf16.c) ---- */

/* TF_ERR_STATE (message on m, starting "fn: ") if m holds bfloat16
 * weights: fn trains, grows, saves or changes weights. */
tf_status tfi_model_need_f32(const tf_model *m, const char *fn);
/* Narrowing a model to bfloat16 tensor by tensor, which tf_model_open_
 * inference does as it reads, so that the float32 model never exists
 * whole: begin allocates the scratch (TF_ERR_NOMEM, message on m, changes
 * nothing); tensor narrows table entry t if it is the embedding or a set's
 * keys or values (the final norm stays float32) and cannot fail; finish,
 * once every entry is narrowed, frees the gradients.  Free the scratch
 * with tfi_free. */
tf_status tfi_model_narrow_begin(const tf_model *m, uint16_t **scratch);
void tfi_model_narrow_tensor(tf_model *m, int t, uint16_t *scratch);
void tfi_model_narrow_finish(tf_model *m);
/* dst = table entry t of a bfloat16 model (data NULL: the embedding or a
 * set's keys or values) widened; count is the entry's size. */
tf_status tfi_model_widen_tensor(const tf_model *m, int t, float *dst, size_t count);
/* Copy-in and validation of inference params (NULL: the defaults);
 * errors to tf_last_error(), starting "fn: ". */
tf_status tfi_inference_params_in(tf_inference_params *p, const tf_inference_params *in,
                                  const char *fn);
/* x [count, d] = the embedding rows of tokens (checked ids), from either
 * precision. */
void tfi_model_embed_rows(const tf_model *m, const int32_t *tokens, size_t count, float *x);

/* ---- the table of named tensors (model_tensors.c) ---- */

/* Builds the table at creation and hooks every set to it, so that it stays
 * right through any growth (tf_model_grow, or tf_pattention_grow on a set
 * borrowed with tf_model_pattention): then the model's slot numbers follow
 * the layer-0 sets.  TF_ERR_NOMEM (message on m). */
tf_status tfi_model_build_refs(tf_model *m);
const tfi_tensor_ref *tfi_model_find(const tf_model *m, const char *name);
/* The table entry of set i's keys; its values are the next entry. */
tfi_tensor_ref *tfi_model_set_ref(const tf_model *m, int set);
/* "layers.{l}.{attention.query|...|mlp}" of set i, layer-major. */
void tfi_set_prefix(int set, char *out, size_t len);
/* Elements of a tensor. */
size_t tfi_ref_size(const tfi_tensor_ref *r);

/* The layout of the gradient buffer: the elements it needs were set i to
 * have set_n[i] tokens (set_n NULL: the sets' current sizes), and in off[t]
 * (m->nrefs entries) the offset of tensor t.  0 if the size overflows. */
size_t tfi_model_grad_layout(const tf_model *m, const int64_t *set_n, size_t *off);
/* Points every tensor's gradient (the table entry and the embedding, final
 * norm or set behind it) at arena + off[t], the sets' as borrowed. */
void tfi_model_point_grads(tf_model *m, float *arena, const size_t *off);

/* ---- the gradient buffer (model_grads.c) ---- */

/* Allocates the gradient buffer (zero) if the model has none yet, with
 * every gradient in it: the first backward, tf_model_set_grad,
 * tf_model_grad_buffer and an optimizer need them, running a model never
 * does.  A set's gradients allocated on their own (tf_pattention_backward
 * on a borrowed set) move into it.  TF_ERR_NOMEM (message on m) leaves the
 * gradients readable as before (zeros where none). */
tf_status tfi_model_ensure_grads(tf_model *m);
void tfi_model_grads_release(tf_model *m);
/* Moves every gradient into arena (count zeroed elements, laid out by off
 * for the current sizes; a tensor already there stays, one without
 * gradients stays zero), frees the old buffer (and any set's own
 * gradients) and installs the new one.  Cannot fail: growth calls it after
 * its last fallible step. */
void tfi_model_grads_adopt(tf_model *m, float *arena, size_t count, const size_t *off);
/* Readiness notifications from tf_model_backward, in its order: the final
 * norm's gradients are final, then layer l's (l = L-1 .. 0), then the
 * embedding's (the last). */
void tfi_model_grads_ready_head(tf_model *m);
void tfi_model_grads_ready_layer(tf_model *m, int l);
void tfi_model_grads_ready_embed(tf_model *m);
/* A vision model's backward: the whole buffer at once (the per-part
 * reports above stay silent for it). */
void tfi_model_grads_ready_all(tf_model *m);

/* ---- growth (model_grow.c) ---- */

/* The grow hook of the model's sets (tf_pattention_grow on a borrowed set):
 * grows set `index` alone to new_n, through the model, so that its
 * gradients stay in the buffer.  g is validated and asks for no training
 * fields; g->seed is the set's own.  All or nothing. */
tf_status tfi_model_grow_one_set(void *model, int index, int64_t new_n, const tf_grow_params *g);

#define CHECK_MODEL(m, fn)                                                     \
    do {                                                                       \
        if (!(m))                                                              \
            return tfi_fail(NULL, TF_ERR_ARGUMENT, fn ": the model is NULL"); \
    } while (0)

#endif /* TF_MODEL_H */
