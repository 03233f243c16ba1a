/*
 * vision.c -- the image classifier: what a vision model adds around the
 * language model's layers (model.c, layer.c): cutting images into patches,
 * their Pattention tokenisation plus the position embedding, mean pooling
 * after the final LayerNorm, the Pattention classification head, and the
 * backward of each, side by side.  The layers themselves, the tensor
 * table, the gradient buffer, the optimizer and growth are the language
 * model's, unchanged.
 */
#include <math.h>
#include <string.h>

#include "kernels/ops.h"
#include "model.h"

static tf_vision_params vision_defaults(void)
{
    tf_model_params lm = tf_model_default_params();
    tf_vision_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.image_size = 28;
    p.channels = 1;
    p.patch_size = 4;
    p.num_classes = 10;
    p.patch_slot_num = 64;
    p.head_slot_num = 64;
    p.num_layers = lm.num_layers;
    p.hidden_size = lm.hidden_size;
    p.num_attention_heads = lm.num_attention_heads;
    p.qkv_slot_num = lm.qkv_slot_num;
    p.proj_slot_num = lm.proj_slot_num;
    p.ffn_slot_num = lm.ffn_slot_num;
    p.norm = lm.norm;
    p.layernorm_epsilon = lm.layernorm_epsilon;
    p.init_method_std = lm.init_method_std;
    p.seed = lm.seed;
    p.scale_policy = lm.scale_policy;
    return p;
}

/* The oldest layout a caller may pass: through num_classes. */
#define TFI_VISION_PARAMS_MIN TFI_PARAMS_MIN(tf_vision_params, num_classes)

TF_API void tf_vision_params_init(tf_vision_params *p, size_t size)
{
    tf_vision_params d = vision_defaults();
    tfi_params_init(p, size, &d, sizeof d);
}

tf_model_params tfi_vision_model_params(const tf_vision_params *vp)
{
    tf_model_params p = tf_model_default_params();
    p.num_layers = vp->num_layers;
    p.hidden_size = vp->hidden_size;
    p.num_attention_heads = vp->num_attention_heads;
    p.qkv_slot_num = vp->qkv_slot_num;
    p.proj_slot_num = vp->proj_slot_num;
    p.ffn_slot_num = vp->ffn_slot_num;
    p.rotary_pct = 0.0; /* positions come from pos_embed */
    p.norm = vp->norm;
    p.vocab_size = vp->num_classes;
    if (vp->patch_size > 0) {
        int64_t g = vp->image_size / vp->patch_size;
        p.seq_length = g * g;
    }
    p.layernorm_epsilon = vp->layernorm_epsilon;
    p.init_method_std = vp->init_method_std;
    p.seed = vp->seed;
    p.scale_policy = vp->scale_policy;
    return p;
}

tf_status tfi_vision_params_check(const tf_vision_params *vp, tfi_errbuf *eb)
{
    if (vp->image_size < 1 || vp->image_size > 65536 || vp->channels < 1 ||
        vp->channels > 4096)
        return tfi_fail(eb, TF_ERR_CONFIG,
                        "image_size must be in [1, 65536] and channels in [1, 4096] "
                        "(got %d, %d)", vp->image_size, vp->channels);
    if (vp->patch_size < 1 || vp->image_size % vp->patch_size != 0)
        return tfi_fail(eb, TF_ERR_CONFIG, "patch_size (%d) must divide image_size (%d)",
                        vp->patch_size, vp->image_size);
    if (vp->num_classes < 2)
        return tfi_fail(eb, TF_ERR_CONFIG, "num_classes must be >= 2 (got %d)",
                        vp->num_classes);
    if (vp->patch_slot_num < 1 || vp->head_slot_num < 1)
        return tfi_fail(eb, TF_ERR_CONFIG,
                        "patch_slot_num and head_slot_num must be >= 1 (got %lld, %lld)",
                        (long long)vp->patch_slot_num, (long long)vp->head_slot_num);
    tf_model_params p = tfi_vision_model_params(vp);
    return tfi_model_params_check(&p, eb);
}

void tfi_vision_release(tfi_vision *v)
{
    tfi_free(v->buf);
    tfi_free(v->labels);
}

TF_API tf_status tf_model_create_vision(const tf_vision_params *params, tf_model **out)
{
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_model_create_vision: out is NULL");
    *out = NULL;
    tf_vision_params vp = vision_defaults();
    tf_status st = tfi_params_in(&vp, sizeof vp, params, TFI_VISION_PARAMS_MIN,
                                 "tf_model_create_vision", "tf_vision_params", NULL);
    if (st != TF_OK)
        return st;
    if ((st = tfi_vision_params_check(&vp, NULL)) != TF_OK)
        return tfi_fail(NULL, st, "tf_model_create_vision: %s", tf_last_error());
    tf_model_params p = tfi_vision_model_params(&vp);
    return tfi_model_new_task(&p, &vp, NULL, 1, out);
}

TF_API int tf_model_is_vision(const tf_model *model)
{
    return model && model->vis ? 1 : 0;
}

/* TF_ERR_STATE unless m is a vision model. */
static tf_status need_vision(tf_model *m, const char *fn)
{
    if (!m->vis)
        return tfi_fail(&m->err, TF_ERR_STATE,
                        "%s: this is a language model: images need a model from "
                        "tf_model_create_vision", fn);
    return TF_OK;
}

TF_API tf_status tf_model_get_vision_params(const tf_model *model, tf_vision_params *out)
{
    CHECK_MODEL(model, "tf_model_get_vision_params");
    tf_model *m = (tf_model *)model; /* only the message buffer changes */
    tf_status st = need_vision(m, "tf_model_get_vision_params");
    if (st != TF_OK)
        return st;
    if (!out)
        return tfi_fail(&m->err, TF_ERR_ARGUMENT, "tf_model_get_vision_params: out is NULL");
    tf_vision_params vp = m->vis->p;
    vp.qkv_slot_num = m->p.qkv_slot_num; /* the current sizes, after growth */
    vp.proj_slot_num = m->p.proj_slot_num;
    vp.ffn_slot_num = m->p.ffn_slot_num;
    return tfi_params_out(out, &vp, sizeof vp, TFI_VISION_PARAMS_MIN,
                          "tf_model_get_vision_params", "tf_vision_params", &m->err);
}

/* ---- buffers ---------------------------------------------------------- */

/* The vision buffers for B images (reallocated only to grow) and the
 * layers' for B sequences of P rows. */
static tf_status prepare(tf_model *m, int B)
{
    tfi_vision *v = m->vis;
    const size_t d = (size_t)m->p.hidden_size, K = (size_t)v->p.num_classes;
    const size_t rows = (size_t)B * (size_t)v->P;
    tf_status st = tfi_model_prepare_pass(m, B, (int)v->P);
    if (st != TF_OK)
        return st;
    if (B > v->act_B) {
        size_t patch = tfi_mul_size(rows, (size_t)v->patch_dim);
        size_t total = patch + 2 * (size_t)B * d + (size_t)B * K + (size_t)B;
        float *buf = patch ? tfi_calloc(total, sizeof(float)) : NULL;
        int32_t *labels = tfi_calloc((size_t)B, sizeof(int32_t));
        if (!buf || !labels) {
            tfi_free(buf);
            tfi_free(labels);
            return tfi_fail(&m->err, TF_ERR_NOMEM,
                            "tf_model_forward_images: out of memory for B=%d images", B);
        }
        tfi_vision_release(v);
        v->buf = buf;
        v->labels = labels;
        v->act_B = B;
    }
    v->patches = v->buf;
    v->pooled = v->patches + rows * (size_t)v->patch_dim;
    v->g_pooled = v->pooled + (size_t)B * d;
    v->logits = v->g_pooled + (size_t)B * d;
    v->lse = v->logits + (size_t)B * K;
    return TF_OK;
}

/* ---- forward ---------------------------------------------------------- */

/* Patch (gy, gx) of image b, flattened (row, column, channel), into row
 * b * P + gy * G + gx of patches. */
static void cut_patches(const tfi_vision *v, int B, const float *pixels, float *patches)
{
    const int64_t S = v->p.image_size, C = v->p.channels, p = v->p.patch_size, G = S / p;
    for (int64_t b = 0; b < B; b++)
        for (int64_t gy = 0; gy < G; gy++)
            for (int64_t gx = 0; gx < G; gx++) {
                float *dst = patches + ((b * G + gy) * G + gx) * v->patch_dim;
                for (int64_t y = 0; y < p; y++) {
                    const float *src = pixels + ((b * S + gy * p + y) * S + gx * p) * C;
                    memcpy(dst + y * p * C, src, (size_t)(p * C) * sizeof(float));
                }
            }
}

/* Runs the model on B images; labels (may be NULL) are checked. */
static tf_status forward(tf_model *m, const char *fn, int B, const float *pixels,
                         const int32_t *labels)
{
    tfi_vision *v = m->vis;
    if (!pixels)
        return tfi_fail(&m->err, TF_ERR_ARGUMENT, "%s: pixels is NULL", fn);
    if (B < 1)
        return tfi_fail(&m->err, TF_ERR_ARGUMENT, "%s: B must be >= 1 (got %d)", fn, B);
    if ((int64_t)B * v->P > INT32_MAX)
        return tfi_fail(&m->err, TF_ERR_RANGE, "%s: B=%d images are too many patches", fn, B);
    for (int i = 0; labels && i < B; i++)
        if (labels[i] < 0 || labels[i] >= v->p.num_classes)
            return tfi_fail(&m->err, TF_ERR_RANGE,
                            "%s: labels[%d] = %d is outside the classes [0, %d)", fn, i,
                            labels[i], v->p.num_classes);
    tf_status st = prepare(m, B);
    if (st != TF_OK)
        return st;
    m->have_targets = 0;
    const int64_t P = v->P, d = m->p.hidden_size, N = (int64_t)B * P;
    tf_pattention *patch = &m->sets[TFI_VISION_PATCH_SET(m)];
    tf_pattention *head = &m->sets[TFI_VISION_HEAD_SET(m)];
    /* x = Ppatch(patches) + pos_embed */
    cut_patches(v, B, pixels, v->patches);
    float *x = m->layers[0].x_in;
    for (int64_t b = 0; b < B; b++)
        memcpy(x + b * P * d, m->embed, (size_t)(P * d) * sizeof(float));
    tfi_pattention_forward(patch, N, v->patches, v->patch_dim, x, d, 1.0f);
    tfi_model_layers_forward(m, B, (int)P);
    tfi_layernorm_forward(m->lnf, m->lnf_mean, m->lnf_rstd, m->x_final, m->norm_w, m->norm_b, N,
                          d, (float)m->p.layernorm_epsilon);
    /* pooled = the mean of each image's rows, summed in double */
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < d; j++) {
            double s = 0.0;
            for (int64_t i = 0; i < P; i++)
                s += m->lnf[(b * P + i) * d + j];
            v->pooled[b * d + j] = (float)(s / (double)P);
        }
    tfi_pattention_forward(head, B, v->pooled, d, v->logits, v->p.num_classes, 0.0f);
    m->fwd_B = B;
    m->fwd_T = (int)P;
    return TF_OK;
}

TF_API tf_status tf_model_forward_images(tf_model *model, int B, const float *pixels,
                                         const int32_t *labels, float *logits, float *loss)
{
    CHECK_MODEL(model, "tf_model_forward_images");
    tf_model *m = model;
    const char *fn = "tf_model_forward_images";
    tf_status st = need_vision(m, fn);
    if (st != TF_OK || (st = forward(m, fn, B, pixels, labels)) != TF_OK)
        return st;
    tfi_vision *v = m->vis;
    const int64_t K = v->p.num_classes;
    if (logits)
        memcpy(logits, v->logits, (size_t)(B * K) * sizeof(float));
    if (labels) {
        double l = tfi_crossentropy_forward(v->logits, labels, B, K, m->label_smoothing, v->lse);
        if (loss)
            *loss = (float)l;
        if (!isfinite(l))
            return tfi_fail(&m->err, TF_ERR_NONFINITE,
                            "%s: the loss is not finite (%g): the parameters have diverged", fn,
                            l);
        memcpy(v->labels, labels, (size_t)B * sizeof(int32_t));
        m->fwd_smoothing = m->label_smoothing;
        m->have_targets = 1;
    }
    return TF_OK;
}

TF_API tf_status tf_model_predict(tf_model *model, int B, const float *pixels, int32_t *classes)
{
    CHECK_MODEL(model, "tf_model_predict");
    tf_model *m = model;
    tf_status st = need_vision(m, "tf_model_predict");
    if (st != TF_OK)
        return st;
    if (!classes)
        return tfi_fail(&m->err, TF_ERR_ARGUMENT, "tf_model_predict: classes is NULL");
    if ((st = forward(m, "tf_model_predict", B, pixels, NULL)) != TF_OK)
        return st;
    const int64_t K = m->vis->p.num_classes;
    for (int64_t b = 0; b < B; b++) {
        const float *row = m->vis->logits + b * K;
        int32_t best = 0;
        for (int32_t k = 1; k < K; k++)
            if (row[k] > row[best])
                best = k;
        classes[b] = best;
    }
    return TF_OK;
}

/* ---- backward --------------------------------------------------------- */

tf_status tfi_vision_backward(tf_model *m)
{
    tfi_vision *v = m->vis;
    if (!m->have_targets)
        return tfi_fail(&m->err, TF_ERR_STATE,
                        "tf_model_backward: needs a tf_model_forward_images with labels first "
                        "(each forward allows one backward)");
    const int B = m->fwd_B;
    const int64_t P = v->P, d = m->p.hidden_size, K = v->p.num_classes, N = (int64_t)B * P;
    tf_pattention *patch = &m->sets[TFI_VISION_PATCH_SET(m)];
    tf_pattention *head = &m->sets[TFI_VISION_HEAD_SET(m)];
    for (int i = 0; i < tfi_model_num_sets(m); i++)
        if (m->sets[i].fwd_rows != (&m->sets[i] == head ? (int64_t)B : N))
            return tfi_fail(&m->err, TF_ERR_STATE,
                            "tf_model_backward: a Pattention set was grown or used on its own "
                            "since the forward: run the forward again");
    tf_status st = tfi_model_ensure_grads(m);
    if (st != TF_OK)
        return st;
    m->have_targets = 0;
    /* logits -> dlogits in place; the mean over the B images */
    tfi_crossentropy_backward(v->logits, v->logits, m->fwd_smoothing, v->lse, v->labels, B, K,
                              1.0f / (float)B);
    tfi_pattention_backward(head, B, v->pooled, d, v->logits, K, v->g_pooled, d, 0.0f);
    /* the mean's backward: every row of an image gets 1/P of its gradient */
    const float inv_p = 1.0f / (float)P;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < P; i++)
            for (int64_t j = 0; j < d; j++)
                m->g_tmp[(b * P + i) * d + j] = v->g_pooled[b * d + j] * inv_p;
    memset(m->g_x, 0, (size_t)(N * d) * sizeof(float));
    tfi_layernorm_backward(m->g_x, m->norm_w_grad, m->norm_b_grad, m->g_tmp, m->x_final,
                           m->lnf_mean, m->lnf_rstd, m->norm_w, N, d);
    tfi_model_layers_backward(m, B, (int)P);
    /* x = Ppatch(patches) + pos_embed: pos_embed's gradient sums the images */
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < P * d; i++)
            m->embed_grad[i] += m->g_x[b * P * d + i];
    tfi_pattention_backward(patch, N, v->patches, v->patch_dim, m->g_x, d, NULL, 0, 0.0f);
    tfi_model_grads_ready_all(m);
    return TF_OK;
}
