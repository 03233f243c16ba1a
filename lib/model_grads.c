/*
 * model_grads.c -- the model's gradients as one buffer, for hosts that sum
 * them across processes (data-parallel training): the buffer itself,
 * allocated when gradients are first needed (a model that only runs has
 * none), its move to a new layout when the model grows, and the
 * notifications that a part of it is final during backward, so that a host
 * can start reducing that part while the rest is computed.
 *
 * The buffer follows the table of named tensors (model_tensors.c), so the
 * parts backward finishes first -- the final norm, then the last layer --
 * are at its end, and the finished part is always a suffix until the
 * embedding, the first entry, completes it.
 */
#include <string.h>

#include "model.h"

tf_status tfi_model_ensure_grads(tf_model *m)
{
    if (m->grad_arena)
        return TF_OK;
    size_t *off = tfi_calloc((size_t)m->nrefs, sizeof *off);
    size_t count = off ? tfi_model_grad_layout(m, NULL, off) : 0;
    float *arena = count ? tfi_calloc(count, sizeof(float)) : NULL;
    if (!arena) {
        tfi_free(off);
        return tfi_fail(&m->err, TF_ERR_NOMEM, "out of memory for the gradients "
                        "(%lld parameters)", (long long)tf_model_num_params(m));
    }
    tfi_model_grads_adopt(m, arena, count, off);
    tfi_free(off);
    return TF_OK;
}

void tfi_model_grads_release(tf_model *m)
{
    tfi_free(m->grad_arena);
    m->grad_arena = NULL;
    m->grad_count = 0;
}

void tfi_model_grads_adopt(tf_model *m, float *arena, size_t count, const size_t *off)
{
    for (int t = 0; t < m->nrefs; t++) {
        const tfi_tensor_ref *r = &m->refs[t];
        if (r->grad && r->grad != arena + off[t]) /* a grown set's rows are there already */
            memcpy(arena + off[t], r->grad, tfi_ref_size(r) * sizeof(float));
    }
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++) {
        tf_pattention *set = &m->sets[i];
        if (!set->grads_borrowed) { /* allocated by a backward through its own handle */
            tfi_free(set->key_grad);
            tfi_free(set->value_grad);
        }
    }
    tfi_model_point_grads(m, arena, off);
    tfi_free(m->grad_arena);
    m->grad_arena = arena;
    m->grad_count = count;
}

/* Tensors [first, first + n) of the table are final. */
static void notify(tf_model *m, int first, int n)
{
    if (!m->grad_ready || m->vis) /* a vision backward reports once, at its end */
        return;
    const tfi_tensor_ref *a = &m->refs[first], *b = &m->refs[first + n - 1];
    size_t offset = (size_t)(a->grad - m->grad_arena);
    size_t end = (size_t)(b->grad - m->grad_arena) + tfi_ref_size(b);
    m->grad_ready(m->grad_ready_user, m->grad_arena, offset, end - offset);
}

void tfi_model_grads_ready_head(tf_model *m)
{
    notify(m, m->nrefs - 2, 2);
}

void tfi_model_grads_ready_layer(tf_model *m, int l)
{
    const int first = (int)(tfi_model_set_ref(m, l * TFI_SETS_PER_LAYER) - m->refs);
    notify(m, first, 2 * TFI_SETS_PER_LAYER);
}

void tfi_model_grads_ready_embed(tf_model *m)
{
    notify(m, 0, 1);
}

void tfi_model_grads_ready_all(tf_model *m)
{
    if (m->grad_ready)
        m->grad_ready(m->grad_ready_user, m->grad_arena, 0, m->grad_count);
}

/* ---- public calls ------------------------------------------------------ */

TF_API tf_status tf_model_grad_buffer(tf_model *model, float **data, size_t *count)
{
    CHECK_MODEL(model, "tf_model_grad_buffer");
    if (!data || !count)
        return tfi_fail(&model->err, TF_ERR_ARGUMENT, "tf_model_grad_buffer: %s is NULL",
                        !data ? "data" : "count");
    tf_status st = tfi_model_ensure_grads(model);
    if (st != TF_OK)
        return tfi_fail(&model->err, st, "tf_model_grad_buffer: %s", model->err.msg);
    *data = model->grad_arena;
    *count = model->grad_count;
    return TF_OK;
}

TF_API tf_status tf_model_set_grad_ready_callback(tf_model *model, tf_grad_ready_callback fn,
                                                  void *user)
{
    CHECK_MODEL(model, "tf_model_set_grad_ready_callback");
    model->grad_ready = fn;
    model->grad_ready_user = fn ? user : NULL;
    return TF_OK;
}
