/*
 * model_bf16.c -- inference models with bfloat16 weights: the conversion
 * of a float32 language model, in place and tensor by tensor, the open
 * that converts each tensor as it is read, and the refusal of every call
 * that would train, grow, save or change such a model.
 *
 * A decoding step reads every weight once, so at batch 1 it runs at the
 * speed of memory: half the bytes, about twice the tokens per second.  The
 * embedding (also the output head) and every set's keys and values are
 * narrowed, rounded to nearest even; LayerNorm weights stay float32 (d
 * numbers each).  A set's values are stored transposed (pattention.h), so
 * that both of its products are kernels/bf16.c's.
 *
 * Each tensor is narrowed into the first half of its own buffer and the
 * second half's pages go back to the system (tfi_release_tail): the
 * conversion allocates nothing but one set's transposed values, so it
 * cannot fail half way, and memory never exceeds the float32 model's.
 * Gradients, which such a model never uses, are freed.
 */
#include <string.h>

#include "kernels/bf16.h"
#include "model.h"

static tf_inference_params inference_defaults(void)
{
    tf_inference_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.weights = TF_DTYPE_F32;
    return p;
}

TF_API void tf_inference_params_init(tf_inference_params *p, size_t size)
{
    tf_inference_params d = inference_defaults();
    tfi_params_init(p, size, &d, sizeof d);
}

tf_status tfi_model_need_f32(const tf_model *m, const char *fn)
{
    if (!m->embed16)
        return TF_OK;
    return tfi_fail((tfi_errbuf *)&m->err, TF_ERR_STATE,
                    "%s: the model holds bfloat16 weights for inference only "
                    "(tf_model_make_inference): it runs forwards and decoders; to train, "
                    "grow, save or change it, open its float32 checkpoint", fn);
}

TF_API tf_dtype tf_model_weights_dtype(const tf_model *model)
{
    return model && model->embed16 ? TF_DTYPE_BF16 : TF_DTYPE_F32;
}

void tfi_model_embed_rows(const tf_model *m, const int32_t *tokens, size_t count, float *x)
{
    const size_t d = (size_t)m->p.hidden_size;
    for (size_t i = 0; i < count; i++) {
        if (m->embed16)
            tfi_bf16_widen(x + i * d, m->embed16 + (size_t)tokens[i] * d, d);
        else
            memcpy(x + i * d, m->embed + (size_t)tokens[i] * d, d * sizeof(float));
    }
}

tf_status tfi_model_widen_tensor(const tf_model *m, int t, float *dst, size_t count)
{
    if (t == 0) {
        tfi_bf16_widen(dst, m->embed16, count);
        return TF_OK;
    }
    const tf_pattention *s = &m->sets[(t - 1) / 2];
    return (t - 1) % 2 == 0 ? tf_pattention_get_keys(s, dst, count)
                            : tf_pattention_get_values(s, dst, count);
}

/* ---- narrowing --------------------------------------------------------- */

/* The count floats of buf as bfloat16 in its first half, the rest given
 * back. */
static uint16_t *narrow_in_place(float *buf, size_t count)
{
    uint16_t *h = (uint16_t *)(void *)buf;
    tfi_bf16_narrow(h, buf, count);
    tfi_release_tail(buf, count * sizeof *h, count * sizeof *buf);
    return h;
}

tf_status tfi_model_narrow_begin(const tf_model *m, uint16_t **scratch)
{
    size_t most = 1;
    for (int i = 0; i < tfi_model_num_sets(m); i++) {
        const size_t v = (size_t)m->sets[i].n * (size_t)m->sets[i].d_out;
        most = v > most ? v : most;
    }
    *scratch = tfi_alloc(tfi_mul_size(most, sizeof **scratch));
    if (!*scratch)
        return tfi_fail((tfi_errbuf *)&m->err, TF_ERR_NOMEM,
                        "out of memory for the transposed values of one set (%zu MB)",
                        most * sizeof **scratch >> 20);
    return TF_OK;
}

void tfi_model_narrow_tensor(tf_model *m, int t, uint16_t *scratch)
{
    if (t == 0 && m->embed) {
        m->embed16 = narrow_in_place(m->embed, tfi_ref_size(&m->refs[0]));
        m->embed = NULL;
        m->refs[0].data = NULL;
        return;
    }
    const int i = (t - 1) / 2;
    if (t < 1 || i >= tfi_model_num_sets(m))
        return; /* the final norm stays float32 */
    tf_pattention *s = &m->sets[i];
    const size_t nk = (size_t)s->n * (size_t)s->d_in, nv = (size_t)s->n * (size_t)s->d_out;
    if ((t - 1) % 2 == 0 && s->keys) {
        s->keys16 = narrow_in_place(s->keys, nk);
        s->keys = NULL;
    } else if ((t - 1) % 2 == 1 && s->values) {
        tfi_bf16_narrow_transpose(scratch, s->values, s->n, s->d_out);
        s->values16t = (uint16_t *)(void *)s->values;
        memcpy(s->values16t, scratch, nv * sizeof *scratch);
        tfi_release_tail(s->values, nv * sizeof *scratch, nv * sizeof(float));
        s->values = NULL;
    }
    if (s->resized) /* the table's entries follow (data NULL) */
        s->resized(s->owner, s->owner_index);
}

/* Frees every gradient and points nothing at them any more. */
static void drop_grads(tf_model *m)
{
    for (int i = 0; i < tfi_model_num_sets(m); i++) {
        tf_pattention *s = &m->sets[i];
        if (!s->grads_borrowed) {
            tfi_free(s->key_grad);
            tfi_free(s->value_grad);
        }
        s->key_grad = s->value_grad = NULL;
        s->grads_borrowed = 0;
        tfi_free(s->ws_g); /* the backward's */
        s->ws_g = NULL;
        s->cap_g = 0;
        s->fwd_rows = 0;
    }
    for (int t = 0; t < m->nrefs; t++)
        m->refs[t].grad = NULL;
    m->embed_grad = m->norm_w_grad = m->norm_b_grad = NULL;
    tfi_model_grads_release(m);
    m->have_targets = 0;
}

void tfi_model_narrow_finish(tf_model *m)
{
    drop_grads(m);
}

/* Copy-in and validation of inference params (NULL: the defaults). */
static tf_status inference_params_in(tf_inference_params *p, const tf_inference_params *in,
                                     const char *fn, tfi_errbuf *eb)
{
    *p = inference_defaults();
    tf_status st = tfi_params_in(p, sizeof *p, in, TFI_PARAMS_MIN(tf_inference_params, weights),
                                 fn, "tf_inference_params", eb);
    if (st == TF_OK && p->weights != TF_DTYPE_F32 && p->weights != TF_DTYPE_BF16)
        st = tfi_fail(eb, TF_ERR_ARGUMENT, "%s: unknown weights dtype %d", fn, (int)p->weights);
    return st;
}

tf_status tfi_inference_params_in(tf_inference_params *p, const tf_inference_params *in,
                                  const char *fn)
{
    return inference_params_in(p, in, fn, NULL);
}

TF_API tf_status tf_model_make_inference(tf_model *model, const tf_inference_params *params)
{
    CHECK_MODEL(model, "tf_model_make_inference");
    tf_model *m = model;
    tf_inference_params p;
    tf_status st = inference_params_in(&p, params, "tf_model_make_inference", &m->err);
    if (st != TF_OK)
        return st;
    if (p.weights == TF_DTYPE_F32)
        return m->embed16 ? tfi_fail(&m->err, TF_ERR_STATE,
                                     "tf_model_make_inference: the weights are bfloat16 "
                                     "already; their float32 values are gone (open the "
                                     "checkpoint again)")
                          : TF_OK;
    if (m->embed16)
        return TF_OK;
    if (m->vis)
        return tfi_fail(&m->err, TF_ERR_STATE,
                        "tf_model_make_inference: bfloat16 weights are for language models "
                        "(decoding); this is a vision model");
    uint16_t *scratch;
    if ((st = tfi_model_narrow_begin(m, &scratch)) != TF_OK)
        return tfi_fail(&m->err, st, "tf_model_make_inference: %s", m->err.msg);
    for (int t = 0; t < m->nrefs; t++)
        tfi_model_narrow_tensor(m, t, scratch);
    tfi_free(scratch);
    tfi_model_narrow_finish(m);
    return TF_OK;
}
