/*
 * model.c -- the TokenFormer language model: construction, and the forward
 * and backward passes: the embedding, the layers (layer.c, shared with the
 * decoder), the output head and the loss.  Its table of named tensors is
 * model_tensors.c, its gradient buffer model_grads.c.
 * Every activation backward needs is kept in one arena, laid out per (B, T)
 * and reallocated only when a larger batch arrives.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels/bf16.h"
#include "kernels/ops.h"
#include "model.h"

static void release(tf_model *m)
{
    if (m->sets)
        for (int i = 0; i < tfi_model_num_sets(m); i++)
            tfi_pattention_release(&m->sets[i]);
    tfi_free(m->sets);
    tfi_free(m->embed);
    tfi_free(m->embed16);
    tfi_free(m->norm_w);
    tfi_free(m->norm_b);
    tfi_model_grads_release(m); /* the gradients, sets' included */
    tfi_free(m->arena);
    tfi_free(m->layers);
    tfi_free(m->rope_cos);
    tfi_free(m->rope_sin);
    tfi_free(m->targets);
    tfi_free(m->tokens);
    tfi_free(m->refs);
    if (m->vis)
        tfi_vision_release(m->vis);
    tfi_free(m->vis);
}

/* Initialises set i of the model (n tokens, d_in -> d_out) with the
 * model's norm, scale policy and init stds and its own seed. */
static tf_status init_set(tf_model *m, int i, int64_t n, int64_t d_in, int64_t d_out,
                          double value_std, tfi_rng *rng, int init)
{
    tf_pattention_params sp = tf_pattention_default_params();
    sp.n = n;
    sp.d_in = d_in;
    sp.d_out = d_out;
    sp.norm = m->p.norm;
    sp.scale_policy = m->p.scale_policy;
    sp.seed = tfi_rng_next(rng);
    sp.key_std = m->p.init_method_std;
    sp.value_std = value_std;
    return tfi_pattention_init(&m->sets[i], &sp, init, NULL);
}

tf_status tfi_model_new(const tf_model_params *params, const int64_t *set_n, int init,
                        tf_model **out)
{
    return tfi_model_new_task(params, NULL, set_n, init, out);
}

tf_status tfi_model_new_task(const tf_model_params *params, const tf_vision_params *vp,
                             const int64_t *set_n, int init, tf_model **out)
{
    *out = NULL;
    tf_model_params p = *params;
    tf_status st = tfi_runtime_ensure();
    if (st != TF_OK)
        return st;
    tf_model *m = tfi_calloc(1, sizeof *m);
    if (!m)
        return tfi_fail(NULL, TF_ERR_NOMEM, "tf_model_create: out of memory");
    m->p = p;
    if (vp && !(m->vis = tfi_calloc(1, sizeof *m->vis))) {
        tfi_free(m);
        return tfi_fail(NULL, TF_ERR_NOMEM, "tf_model_create: out of memory");
    }
    if (vp) {
        m->vis->p = *vp;
        m->vis->P = p.seq_length;
        m->vis->patch_dim = (int64_t)vp->patch_size * vp->patch_size * vp->channels;
    }
    const int L = p.num_layers, d = p.hidden_size;
    m->head_dim = d / p.num_attention_heads;
    m->rotary_dims = tfi_rotary_dims(&p);
    /* the first table entry: [V, d] tokens, or a vision model's [P, d] positions */
    size_t ve = tfi_mul_size((size_t)(vp ? p.seq_length : p.vocab_size), (size_t)d);
    int r2 = m->rotary_dims / 2 > 0 ? m->rotary_dims / 2 : 1;
    /* parameters are drawn below or filled by the loader: no zeroing, so
     * that a model opened to run touches each page once; gradients come
     * with the first backward (tfi_model_ensure_grads) */
    m->embed = tfi_alloc(tfi_mul_size(ve, sizeof(float)));
    m->norm_w = tfi_alloc((size_t)d * sizeof(float));
    m->norm_b = tfi_alloc((size_t)d * sizeof(float));
    m->sets = tfi_calloc((size_t)tfi_model_num_sets(m), sizeof(tf_pattention));
    m->layers = tfi_calloc((size_t)L, sizeof(tfi_layer_acts));
    m->rope_cos = tfi_calloc((size_t)p.seq_length * (size_t)r2, sizeof(float));
    m->rope_sin = tfi_calloc((size_t)p.seq_length * (size_t)r2, sizeof(float));
    if (!m->embed || !m->norm_w || !m->norm_b || !m->sets || !m->layers || !m->rope_cos ||
        !m->rope_sin) {
        release(m);
        tfi_free(m);
        return tfi_fail(NULL, TF_ERR_NOMEM, "tf_model_create: out of memory");
    }
    /* Official init: keys and embedding N(0, std), values N(0, 2/L/sqrt(d))
     * ("wang_init"), final norm weight 1 and bias 0.  Every set draws from
     * its own seed so that the init does not depend on creation order. */
    tfi_rng rng;
    tfi_rng_seed(&rng, p.seed);
    if (init) {
        tfi_rng_fill_normal(&rng, m->embed, ve, p.init_method_std);
        for (int i = 0; i < d; i++) {
            m->norm_w[i] = 1.0f;
            m->norm_b[i] = 0.0f;
        }
    }
    double value_std = 2.0 / L / sqrt((double)d);
    for (int l = 0; l < L; l++)
        for (int s = 0; s < TFI_SETS_PER_LAYER && st == TF_OK; s++) {
            const int i = l * TFI_SETS_PER_LAYER + s;
            st = init_set(m, i, set_n ? set_n[i] : *tfi_slot_field(&p, s), d, d, value_std,
                          &rng, init);
        }
    if (vp && st == TF_OK) {
        const int pi = TFI_VISION_PATCH_SET(m), hi = TFI_VISION_HEAD_SET(m);
        st = init_set(m, pi, set_n ? set_n[pi] : vp->patch_slot_num, m->vis->patch_dim, d,
                      value_std, &rng, init);
        if (st == TF_OK)
            st = init_set(m, hi, set_n ? set_n[hi] : vp->head_slot_num, d, vp->num_classes,
                          value_std, &rng, init);
    }
    if (st != TF_OK) {
        release(m);
        tfi_free(m);
        return st;
    }
    if (m->rotary_dims > 0)
        tfi_rotary_tables(m->rope_cos, m->rope_sin, p.seq_length, m->rotary_dims,
                          p.rotary_emb_base);
    if ((st = tfi_model_build_refs(m)) != TF_OK) {
        release(m);
        tfi_free(m);
        return tfi_fail(NULL, st, "tf_model_create: out of memory");
    }
    *out = m;
    return TF_OK;
}

TF_API tf_status tf_model_create(const tf_model_params *params, tf_model **out)
{
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_model_create: out is NULL");
    *out = NULL;
    tf_model_params p = tf_model_default_params();
    tf_status st = tfi_params_in(&p, sizeof p, params, TFI_MODEL_PARAMS_MIN, "tf_model_create",
                                 "tf_model_params", NULL);
    if (st != TF_OK)
        return st;
    if ((st = tfi_model_params_check(&p, NULL)) != TF_OK)
        return st;
    return tfi_model_new(&p, NULL, 1, out);
}

TF_API void tf_model_free(tf_model *model)
{
    if (!model)
        return;
    release(model);
    tfi_free(model);
}

TF_API const char *tf_model_errmsg(const tf_model *model)
{
    return model ? model->err.msg : "the model is NULL";
}

TF_API tf_status tf_model_get_params(const tf_model *model, tf_model_params *out)
{
    CHECK_MODEL(model, "tf_model_get_params");
    if (!out)
        return tfi_fail((tfi_errbuf *)&model->err, TF_ERR_ARGUMENT,
                        "tf_model_get_params: out is NULL");
    return tfi_params_out(out, &model->p, sizeof model->p, TFI_MODEL_PARAMS_MIN,
                          "tf_model_get_params", "tf_model_params", (tfi_errbuf *)&model->err);
}

TF_API tf_pattention *tf_model_pattention(tf_model *model, int layer, tf_set_kind kind)
{
    if (!model) {
        tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_model_pattention: the model is NULL");
        return NULL;
    }
    if (layer < 0 || layer >= model->p.num_layers || (int)kind < 0 ||
        (int)kind >= TFI_SETS_PER_LAYER) {
        tfi_fail(&model->err, TF_ERR_RANGE,
                 "tf_model_pattention: layer %d / kind %d out of range (%d layers, 5 kinds)",
                 layer, (int)kind, model->p.num_layers);
        return NULL;
    }
    return &model->sets[layer * TFI_SETS_PER_LAYER + (int)kind];
}

/* ---- activations ------------------------------------------------------ */

/* Lays the arena out for (B, T); allocates only when it must grow. */
static tf_status layout_arena(tf_model *m, int B, int T)
{
    const size_t BT = (size_t)B * (size_t)T, d = (size_t)m->p.hidden_size;
    const size_t H = (size_t)m->p.num_attention_heads, V = (size_t)m->p.vocab_size;
    const size_t L = (size_t)m->p.num_layers;
    const size_t row = BT * d, stat = BT;
    const size_t att = (size_t)B * H * (size_t)T * (size_t)tfi_attn_probs_width(T);
    /* 16 floats of padding per buffer keep every buffer 64-byte aligned */
#define PAD(x) (((x) + 15) & ~(size_t)15)
    size_t per_layer = 8 * PAD(row) + 4 * PAD(stat) + PAD(att);
    size_t total = L * per_layer + 2 * PAD(row) + 2 * PAD(stat) + PAD(BT * V) + PAD(stat) +
                   6 * PAD(row) + PAD(att);
    if (total > m->arena_floats) {
        float *fresh = tfi_calloc(total, sizeof(float));
        int32_t *tg = tfi_calloc(BT, sizeof(int32_t));
        int32_t *tk = tfi_calloc(BT, sizeof(int32_t));
        if (!fresh || !tg || !tk) {
            tfi_free(fresh);
            tfi_free(tg);
            tfi_free(tk);
            return tfi_fail(&m->err, TF_ERR_NOMEM,
                            "tf_model_forward: out of memory for activations of B=%d, T=%d "
                            "(%zu MB)", B, T, total * 4 >> 20);
        }
        tfi_free(m->arena);
        tfi_free(m->targets);
        tfi_free(m->tokens);
        m->arena = fresh;
        m->targets = tg;
        m->tokens = tk;
        m->arena_floats = total;
    }
    float *p = m->arena;
#define TAKE(ptr, n) do { (ptr) = p; p += PAD(n); } while (0)
    for (size_t l = 0; l < L; l++) {
        tfi_layer_acts *a = &m->layers[l];
        TAKE(a->x_in, row);
        TAKE(a->ln1, row);
        TAKE(a->q, row);
        TAKE(a->k, row);
        TAKE(a->v, row);
        TAKE(a->attn, row);
        TAKE(a->x_mid, row);
        TAKE(a->ln2, row);
        TAKE(a->ln1_mean, stat);
        TAKE(a->ln1_rstd, stat);
        TAKE(a->ln2_mean, stat);
        TAKE(a->ln2_rstd, stat);
        TAKE(a->probs, att);
    }
    TAKE(m->x_final, row);
    TAKE(m->lnf, row);
    TAKE(m->lnf_mean, stat);
    TAKE(m->lnf_rstd, stat);
    TAKE(m->logits, BT * V);
    TAKE(m->lse, stat);
    TAKE(m->g_x, row);
    TAKE(m->g_tmp, row);
    TAKE(m->g_q, row);
    TAKE(m->g_k, row);
    TAKE(m->g_v, row);
    TAKE(m->g_attn, row);
    TAKE(m->g_probs, att);
#undef TAKE
#undef PAD
    m->act_B = B;
    m->act_T = T;
    return TF_OK;
}

/* ---- forward ---------------------------------------------------------- */

static tf_status check_ids(tf_model *m, const char *what, const int32_t *ids, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (ids[i] < 0 || ids[i] >= m->p.vocab_size)
            return tfi_fail(&m->err, TF_ERR_RANGE,
                            "tf_model_forward: %s[%zu] = %d is outside the vocabulary [0, %lld)",
                            what, i, ids[i], (long long)m->p.vocab_size);
    return TF_OK;
}

tfi_layer_spec tfi_model_layer_spec(const tf_model *m)
{
    tfi_layer_spec sp = {m->p.hidden_size, m->p.num_attention_heads, m->head_dim,
                         m->rotary_dims, m->rope_cos, m->rope_sin,
                         (float)m->p.layernorm_epsilon,
                         m->vis ? 0 : 1}; /* patches attend to every patch */
    return sp;
}

void tfi_model_head(const tf_model *m, int64_t N, const float *x, float *ln, float *mean,
                    float *rstd, float *logits)
{
    const int64_t d = m->p.hidden_size, V = m->p.vocab_size;
    tfi_layernorm_forward(ln, mean, rstd, x, m->norm_w, m->norm_b, N, d,
                          (float)m->p.layernorm_epsilon);
    if (m->embed16) /* any N: a bfloat16 model's head streams the embedding */
        tfi_bf16_abt(N, V, d, ln, d, m->embed16, d, 0.0f, logits, V);
    else if (N < TFI_FEW_ROWS)
        tfi_few_rows_abt(N, V, d, ln, d, m->embed, d, logits, V);
    else
        tfi_sgemm(0, 1, N, V, d, 1.0f, ln, d, m->embed, d, 0.0f, logits, V, 0);
}

/* The Pattention workspaces grow on first use; make sure they can before
 * the pass starts, so a pass never fails half way. */
static tf_status reserve_set_workspaces(tf_model *m, int64_t BT)
{
    for (int i = 0; i < tfi_model_num_sets(m); i++) {
        tf_pattention *s = &m->sets[i];
        size_t need = (size_t)BT * (size_t)s->n;
        if (tfi_reserve(&s->ws_a, &s->cap_a, need) != TF_OK ||
            tfi_reserve(&s->ws_s, &s->cap_s, need) != TF_OK ||
            tfi_reserve(&s->ws_g, &s->cap_g, need) != TF_OK ||
            tfi_reserve(&s->ws_r, &s->cap_r, (size_t)BT) != TF_OK ||
            tfi_reserve(&s->ws_t, &s->cap_t,
                        (size_t)s->n * (size_t)(s->d_in > s->d_out ? s->d_in : s->d_out)) != TF_OK)
            return tfi_fail(&m->err, TF_ERR_NOMEM,
                            "tf_model_forward: out of memory for Pattention workspaces");
    }
    return TF_OK;
}

tf_status tfi_model_prepare_pass(tf_model *m, int B, int T)
{
    tf_status st = layout_arena(m, B, T);
    return st == TF_OK ? reserve_set_workspaces(m, (int64_t)B * T) : st;
}

void tfi_model_layers_forward(tf_model *m, int B, int T)
{
    const tfi_layer_spec spec = tfi_model_layer_spec(m);
    for (int l = 0; l < m->p.num_layers; l++)
        tfi_layer_forward(&m->sets[l * TFI_SETS_PER_LAYER], &spec, B, T, 0, &m->layers[l],
                          l + 1 < m->p.num_layers ? m->layers[l + 1].x_in : m->x_final, NULL,
                          NULL);
}

void tfi_model_layers_backward(tf_model *m, int B, int T)
{
    const tfi_layer_spec spec = tfi_model_layer_spec(m);
    const tfi_layer_grads g = {m->g_x, m->g_tmp, m->g_q, m->g_k, m->g_v, m->g_attn, m->g_probs};
    for (int l = m->p.num_layers - 1; l >= 0; l--) {
        tfi_layer_backward(&m->sets[l * TFI_SETS_PER_LAYER], &spec, B, T, &m->layers[l], &g);
        tfi_model_grads_ready_layer(m, l);
    }
}

tf_status tfi_model_need_language(tf_model *m, const char *fn)
{
    if (m->vis)
        return tfi_fail(&m->err, TF_ERR_STATE,
                        "%s: this is a vision model (tf_model_create_vision): use "
                        "tf_model_forward_images", fn);
    return TF_OK;
}

TF_API tf_status tf_model_forward(tf_model *model, int B, int T, const int32_t *tokens,
                                  const int32_t *targets, float *logits, float *loss)
{
    CHECK_MODEL(model, "tf_model_forward");
    tf_model *m = model;
    tf_status st0 = tfi_model_need_language(m, "tf_model_forward");
    if (st0 != TF_OK)
        return st0;
    if (!tokens)
        return tfi_fail(&m->err, TF_ERR_ARGUMENT, "tf_model_forward: tokens is NULL");
    if (B < 1 || T < 1)
        return tfi_fail(&m->err, TF_ERR_ARGUMENT,
                        "tf_model_forward: B and T must be >= 1 (got B=%d, T=%d)", B, T);
    if (T > m->p.seq_length)
        return tfi_fail(&m->err, TF_ERR_RANGE,
                        "tf_model_forward: T=%d exceeds seq_length=%lld", T,
                        (long long)m->p.seq_length);
    const size_t BT = (size_t)B * (size_t)T;
    tf_status st;
    if ((st = check_ids(m, "tokens", tokens, BT)) != TF_OK)
        return st;
    if (targets && (st = check_ids(m, "targets", targets, BT)) != TF_OK)
        return st;
    if ((st = tfi_model_prepare_pass(m, B, T)) != TF_OK)
        return st;
    m->have_targets = 0;
    const int64_t V = m->p.vocab_size;
    tfi_model_embed_rows(m, tokens, BT, m->layers[0].x_in);
    tfi_model_layers_forward(m, B, T);
    tfi_model_head(m, (int64_t)BT, m->x_final, m->lnf, m->lnf_mean, m->lnf_rstd, m->logits);
    if (logits)
        memcpy(logits, m->logits, BT * (size_t)V * sizeof(float));
    m->fwd_B = B;
    m->fwd_T = T;
    if (targets) {
        double l = tfi_crossentropy_forward(m->logits, targets, (int64_t)BT, V,
                                            m->label_smoothing, m->lse);
        if (loss)
            *loss = (float)l;
        if (!isfinite(l))
            return tfi_fail(&m->err, TF_ERR_NONFINITE,
                            "tf_model_forward: the loss is not finite (%g): the parameters "
                            "have diverged", l);
        memcpy(m->targets, targets, BT * sizeof(int32_t));
        m->fwd_smoothing = m->label_smoothing;
        m->have_targets = 1;
    }
    memcpy(m->tokens, tokens, BT * sizeof(int32_t)); /* for the embedding backward */
    return TF_OK;
}

/* ---- backward --------------------------------------------------------- */

TF_API tf_status tf_model_backward(tf_model *model)
{
    CHECK_MODEL(model, "tf_model_backward");
    tf_model *m = model;
    tf_status st = tfi_model_need_f32(m, "tf_model_backward");
    if (st != TF_OK)
        return st;
    if (m->vis)
        return tfi_vision_backward(m);
    if (!m->have_targets)
        return tfi_fail(&m->err, TF_ERR_STATE,
                        "tf_model_backward: needs a tf_model_forward with targets first "
                        "(each forward allows one backward)");
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++)
        if (m->sets[i].fwd_rows != (int64_t)m->fwd_B * m->fwd_T)
            return tfi_fail(&m->err, TF_ERR_STATE,
                            "tf_model_backward: a Pattention set was grown or used on its own "
                            "since the forward: run the forward again");
    st = tfi_model_ensure_grads(m);
    if (st != TF_OK)
        return st;
    const int B = m->fwd_B, T = m->fwd_T;
    const int64_t BT = (int64_t)B * T, d = m->p.hidden_size, V = m->p.vocab_size;
    m->have_targets = 0;
    /* logits -> dlogits in place; mean over the B*T positions */
    tfi_crossentropy_backward(m->logits, m->logits, m->fwd_smoothing, m->lse, m->targets, BT, V,
                              1.0f / (float)BT);
    tfi_sgemm(1, 0, V, d, BT, 1.0f, m->logits, V, m->lnf, d, 1.0f, m->embed_grad, d, 0);
    tfi_sgemm(0, 0, BT, d, V, 1.0f, m->logits, V, m->embed, d, 0.0f, m->g_tmp, d, 0);
    memset(m->g_x, 0, (size_t)(BT * d) * sizeof(float));
    tfi_layernorm_backward(m->g_x, m->norm_w_grad, m->norm_b_grad, m->g_tmp, m->x_final,
                           m->lnf_mean, m->lnf_rstd, m->norm_w, BT, d);
    tfi_model_grads_ready_head(m);
    tfi_model_layers_backward(m, B, T);
    /* the lookup's gradient: scatter-add rows (serial: tokens repeat) */
    for (int64_t i = 0; i < BT; i++) {
        float *dst = m->embed_grad + (size_t)m->tokens[i] * (size_t)d;
        const float *src = m->g_x + i * d;
        for (int64_t j = 0; j < d; j++)
            dst[j] += src[j];
    }
    tfi_model_grads_ready_embed(m);
    return TF_OK;
}

/* eps is kept as the float the kernels smooth with. */
TF_API tf_status tf_model_set_label_smoothing(tf_model *model, double eps)
{
    CHECK_MODEL(model, "tf_model_set_label_smoothing");
    if (!(eps >= 0.0 && eps < 1.0))
        return tfi_fail(&model->err, TF_ERR_ARGUMENT,
                        "tf_model_set_label_smoothing: eps = %g is outside [0, 1)", eps);
    model->label_smoothing = (float)eps;
    return TF_OK;
}

TF_API double tf_model_get_label_smoothing(const tf_model *model)
{
    return model ? (double)model->label_smoothing : 0.0;
}
