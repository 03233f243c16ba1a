/*
 * model_tensors.c -- the model's table of named tensors: built once at
 * creation, kept right at the moment a Pattention set grows (by the set's
 * resize hook, which allocates nothing and cannot fail), and the public
 * calls that read and write tensors by name.
 *
 * Table layout (tfi_model_set_ref is the one place that knows it):
 *   [0]                 embed.weight (language) or pos_embed (vision)
 *   [1 + 2i], [2 + 2i]  keys and values of set i (layer-major, 5 per layer;
 *                       then a vision model's patch_embed and head)
 *   [1 + 2S], [2 + 2S]  final_norm.weight, final_norm.bias (S sets)
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

static const char *const kind_names[TFI_SETS_PER_LAYER] = {
    [TF_SET_QUERY] = "attention.query", [TF_SET_KEY] = "attention.key",
    [TF_SET_VALUE] = "attention.value", [TF_SET_PROJ] = "attention.proj",
    [TF_SET_FFN] = "mlp"};

void tfi_set_prefix(int set, char *out, size_t len)
{
    snprintf(out, len, "layers.%d.%s", set / TFI_SETS_PER_LAYER,
             kind_names[set % TFI_SETS_PER_LAYER]);
}

tfi_tensor_ref *tfi_model_set_ref(const tf_model *m, int set)
{
    return &m->refs[1 + 2 * set];
}

/* Points set i's two entries at its current tensors; the slot numbers
 * follow the layer-0 sets (all layers grow together through the model). */
static void sync_set(tf_model *m, int i)
{
    const tf_pattention *set = &m->sets[i];
    tfi_tensor_ref *k = tfi_model_set_ref(m, i), *v = k + 1;
    k->data = set->keys;
    k->grad = set->key_grad;
    k->rows = set->n;
    v->data = set->values;
    v->grad = set->value_grad;
    v->rows = set->n;
    if (i == TF_SET_QUERY || i == TF_SET_PROJ || i == TF_SET_FFN)
        *tfi_slot_field(&m->p, i) = set->n;
}

static void set_resized(void *owner, int index)
{
    sync_set(owner, index);
}

tf_status tfi_model_build_refs(tf_model *m)
{
    const int nsets = tfi_model_num_sets(m), d = m->p.hidden_size;
    const int count = 1 + 2 * nsets + 2;
    tfi_tensor_ref *refs = tfi_calloc((size_t)count, sizeof *refs);
    if (!refs)
        return tfi_fail(&m->err, TF_ERR_NOMEM, "out of memory for the tensor table");
    m->refs = refs;
    m->nrefs = count;
    if (m->vis) /* decays as the token embedding does */
        refs[0] = (tfi_tensor_ref){"pos_embed", m->embed, m->embed_grad, m->vis->P, d, 1};
    else
        refs[0] = (tfi_tensor_ref){"embed.weight", m->embed, m->embed_grad, m->p.vocab_size, d,
                                   1};
    for (int i = 0; i < nsets; i++) {
        tfi_tensor_ref *k = tfi_model_set_ref(m, i), *v = k + 1;
        char prefix[64];
        if (m->vis && i >= TFI_VISION_PATCH_SET(m))
            snprintf(prefix, sizeof prefix, "%s",
                     i == TFI_VISION_PATCH_SET(m) ? "patch_embed" : "head");
        else
            tfi_set_prefix(i, prefix, sizeof prefix);
        snprintf(k->name, sizeof k->name, "%s.key_param_tokens", prefix);
        snprintf(v->name, sizeof v->name, "%s.value_param_tokens", prefix);
        k->cols = m->sets[i].d_in;
        v->cols = m->sets[i].d_out;
        k->decay = v->decay = 1;
    }
    refs[count - 2] = (tfi_tensor_ref){"final_norm.weight", m->norm_w, m->norm_w_grad, d, 0, 0};
    refs[count - 1] = (tfi_tensor_ref){"final_norm.bias", m->norm_b, m->norm_b_grad, d, 0, 0};
    for (int i = 0; i < nsets; i++) {
        sync_set(m, i);
        if (i >= m->p.num_layers * TFI_SETS_PER_LAYER)
            continue; /* a vision model's patch and head sets are never lent out */
        m->sets[i].resized = set_resized;
        m->sets[i].grow = tfi_model_grow_one_set;
        m->sets[i].owner = m;
        m->sets[i].owner_index = i;
    }
    return TF_OK;
}

size_t tfi_model_grad_layout(const tf_model *m, const int64_t *set_n, size_t *off)
{
    const int nsets = m->p.num_layers * TFI_SETS_PER_LAYER;
    size_t total = 0;
    for (int t = 0; t < m->nrefs; t++) {
        const tfi_tensor_ref *r = &m->refs[t];
        int64_t rows = set_n && t >= 1 && t < 1 + 2 * nsets ? set_n[(t - 1) / 2] : r->rows;
        size_t n = tfi_mul_size((size_t)rows, (size_t)(r->cols ? r->cols : 1));
        if (n == 0 || total > SIZE_MAX / sizeof(float) - n)
            return 0;
        off[t] = total;
        total += n;
    }
    return total;
}

void tfi_model_point_grads(tf_model *m, float *arena, const size_t *off)
{
    for (int t = 0; t < m->nrefs; t++)
        m->refs[t].grad = arena + off[t];
    m->embed_grad = m->refs[0].grad;
    m->norm_w_grad = m->refs[m->nrefs - 2].grad;
    m->norm_b_grad = m->refs[m->nrefs - 1].grad;
    for (int i = 0; i < tfi_model_num_sets(m); i++) {
        tf_pattention *set = &m->sets[i];
        const tfi_tensor_ref *k = tfi_model_set_ref(m, i);
        set->key_grad = k[0].grad;
        set->value_grad = k[1].grad;
        set->grads_borrowed = 1;
    }
}

const tfi_tensor_ref *tfi_model_find(const tf_model *m, const char *name)
{
    for (int i = 0; i < m->nrefs; i++)
        if (strcmp(m->refs[i].name, name) == 0)
            return &m->refs[i];
    return NULL;
}

size_t tfi_ref_size(const tfi_tensor_ref *r)
{
    return (size_t)r->rows * (size_t)(r->cols ? r->cols : 1);
}

/* ---- public calls ------------------------------------------------------ */

TF_API int64_t tf_model_num_params(const tf_model *model)
{
    if (!model)
        return 0;
    int64_t total = 0;
    for (int i = 0; i < model->nrefs; i++)
        total += (int64_t)tfi_ref_size(&model->refs[i]);
    return total;
}

TF_API int tf_model_num_tensors(const tf_model *model)
{
    return model ? model->nrefs : 0;
}

TF_API const char *tf_model_tensor_name(const tf_model *model, int i)
{
    if (!model || i < 0 || i >= model->nrefs)
        return NULL;
    return model->refs[i].name;
}

/* Failures of a look-up are recorded on the model, like errno: the message
 * buffer is the one part of a const model a call may change. */
static tfi_errbuf *model_eb(const tf_model *m)
{
    return (tfi_errbuf *)&m->err;
}

static const tfi_tensor_ref *lookup(const tf_model *m, const char *fn, const char *name,
                                    tf_status *st)
{
    *st = TF_OK;
    if (!name) {
        *st = tfi_fail(model_eb(m), TF_ERR_ARGUMENT, "%s: name is NULL", fn);
        return NULL;
    }
    const tfi_tensor_ref *r = tfi_model_find(m, name);
    if (!r)
        *st = tfi_fail(model_eb(m), TF_ERR_NOT_FOUND, "%s: no tensor named '%s'", fn, name);
    return r;
}

TF_API tf_status tf_model_tensor_shape(const tf_model *model, const char *name,
                                       int64_t shape[2], int *ndim)
{
    CHECK_MODEL(model, "tf_model_tensor_shape");
    tf_status st;
    const tfi_tensor_ref *r = lookup(model, "tf_model_tensor_shape", name, &st);
    if (!r)
        return st;
    if (!shape || !ndim)
        return tfi_fail(model_eb(model), TF_ERR_ARGUMENT,
                        "tf_model_tensor_shape: shape or ndim is NULL");
    shape[0] = r->rows;
    shape[1] = r->cols;
    *ndim = r->cols ? 2 : 1;
    return TF_OK;
}

/* The checks shared by the four copy calls: the tensor, the array, the count. */
static const tfi_tensor_ref *checked(const tf_model *m, const char *fn, const char *name,
                                     const void *array, size_t count, tf_status *st)
{
    const tfi_tensor_ref *r = lookup(m, fn, name, st);
    if (!r)
        return NULL;
    if (!array) {
        *st = tfi_fail(model_eb(m), TF_ERR_ARGUMENT, "%s: the array is NULL", fn);
        return NULL;
    }
    if (count != tfi_ref_size(r)) {
        *st = tfi_fail(model_eb(m), TF_ERR_SHAPE, "%s: '%s' has %zu elements, the array %zu",
                       fn, name, tfi_ref_size(r), count);
        return NULL;
    }
    return r;
}

TF_API tf_status tf_model_get_tensor(const tf_model *model, const char *name, float *dst,
                                     size_t count)
{
    CHECK_MODEL(model, "tf_model_get_tensor");
    tf_status st;
    const tfi_tensor_ref *r = checked(model, "tf_model_get_tensor", name, dst, count, &st);
    if (r)
        memcpy(dst, r->data, count * sizeof(float));
    return st;
}

TF_API tf_status tf_model_set_tensor(tf_model *model, const char *name, const float *src,
                                     size_t count)
{
    CHECK_MODEL(model, "tf_model_set_tensor");
    tf_status st;
    const tfi_tensor_ref *r = checked(model, "tf_model_set_tensor", name, src, count, &st);
    if (r) {
        memcpy(r->data, src, count * sizeof(float));
        model->have_targets = 0; /* the kept activations are stale */
    }
    return st;
}

TF_API tf_status tf_model_get_grad(const tf_model *model, const char *name, float *dst,
                                   size_t count)
{
    CHECK_MODEL(model, "tf_model_get_grad");
    tf_status st;
    const tfi_tensor_ref *r = checked(model, "tf_model_get_grad", name, dst, count, &st);
    if (r && r->grad)
        memcpy(dst, r->grad, count * sizeof(float));
    else if (r) /* nothing accumulated yet */
        memset(dst, 0, count * sizeof(float));
    return st;
}

TF_API tf_status tf_model_set_grad(tf_model *model, const char *name, const float *src,
                                   size_t count)
{
    CHECK_MODEL(model, "tf_model_set_grad");
    tf_status st;
    const tfi_tensor_ref *r = checked(model, "tf_model_set_grad", name, src, count, &st);
    if (r && (st = tfi_model_ensure_grads(model)) == TF_OK)
        memcpy(r->grad, src, count * sizeof(float));
    return st;
}

TF_API tf_status tf_model_zero_grad(tf_model *model)
{
    CHECK_MODEL(model, "tf_model_zero_grad");
    for (int i = 0; i < model->nrefs; i++)
        if (model->refs[i].grad)
            memset(model->refs[i].grad, 0, tfi_ref_size(&model->refs[i]) * sizeof(float));
    return TF_OK;
}
