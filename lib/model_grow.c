/*
 * model_grow.c -- growing a whole model (every set of a kind at once) and
 * loading a smaller checkpoint into a larger model.  All or nothing: every
 * grown tensor is allocated before any is swapped in, and if the optimizer
 * cannot follow, the sets are put back as they were.
 */
#include <string.h>

#include "optimizer.h"

/* Grows model (and opt) to the given slot numbers (want[class], see
 * tfi_slot_class) with validated g; per_set (if not NULL) gives each set's
 * size instead, layer-major.  A model with gradients gets its gradient
 * buffer laid out anew for the grown sizes first, and every grown set is
 * prepared with its gradient rows copied into it (a model without keeps
 * none); then all are swapped in; if the optimizer cannot follow, swapping
 * again puts the old tensors back.  Only then does the new buffer take the
 * other gradients and replace the old one.  The sets' resize hook keeps
 * the tensor table right.  Every grown set starts g's
 * tau ramp (none if g has none), counted from opt's step count.  Each set
 * draws its new tokens from its own seed, derived from g->seed, unless
 * own_seed (one set grown through its handle: g->seed is its own). */
static tf_status grow_model(tf_model *m, tf_optimizer *opt, const int64_t want[3],
                            const int64_t *per_set, const tf_grow_params *g, int own_seed)
{
    const int nsets = m->p.num_layers * TFI_SETS_PER_LAYER;
    const int lay = m->grad_arena != NULL; /* gradients to lay out anew */
    tfi_grow_plan *plans = tfi_calloc((size_t)nsets, sizeof *plans);
    int64_t *n = tfi_calloc((size_t)nsets, sizeof *n);
    size_t *off = tfi_calloc((size_t)m->nrefs, sizeof *off);
    float *arena = NULL;
    size_t count = 0;
    tf_status st = TF_OK;
    if (!plans || !n || !off)
        st = tfi_fail(&m->err, TF_ERR_NOMEM, "tf_model_grow: out of memory");
    for (int i = 0; st == TF_OK && i < nsets; i++)
        n[i] = per_set ? per_set[i] : want[tfi_slot_class(i % TFI_SETS_PER_LAYER)];
    if (st == TF_OK && lay && (count = tfi_model_grad_layout(m, n, off)) == 0)
        st = tfi_fail(&m->err, TF_ERR_ARGUMENT, "tf_model_grow: the grown model's size overflows");
    if (st == TF_OK && lay && !(arena = tfi_calloc(count, sizeof(float))))
        st = tfi_fail(&m->err, TF_ERR_NOMEM,
                      "tf_model_grow: out of memory for the gradients of the grown model "
                      "(%zu floats)", count);
    tfi_rng seeds;
    tfi_rng_seed(&seeds, g->seed);
    for (int i = 0; i < nsets && st == TF_OK; i++) {
        tf_grow_params gi = *g;
        gi.seed = own_seed ? g->seed : tfi_rng_next(&seeds); /* every set its own stream */
        const tfi_tensor_ref *k = tfi_model_set_ref(m, i);
        const int t = (int)(k - m->refs);
        if (n[i] != m->sets[i].n)
            st = tfi_pattention_grow_prepare(&m->sets[i], n[i], &gi, lay ? arena + off[t] : NULL,
                                             lay ? arena + off[t + 1] : NULL, &plans[i],
                                             &m->err);
    }
    if (st == TF_OK) {
        for (int i = 0; i < nsets; i++)
            if (plans[i].keys)
                tfi_pattention_grow_swap(&m->sets[i], &plans[i]);
        if (opt && (st = tfi_optimizer_follow_model(opt)) != TF_OK)
            for (int i = 0; i < nsets; i++)
                if (plans[i].keys)
                    tfi_pattention_grow_swap(&m->sets[i], &plans[i]);
        if (st == TF_OK && lay) {
            tfi_model_grads_adopt(m, arena, count, off);
            arena = NULL;
        }
        for (int i = 0; st == TF_OK && i < nsets; i++)
            if (plans[i].keys) /* grown: the plan now holds the old tensors */
                tfi_pattention_ramp_begin(&m->sets[i], opt ? g->tau_ramp_steps : 0,
                                          opt ? opt->step : 0);
    }
    for (int i = 0; plans && i < nsets; i++)
        tfi_grow_plan_discard(&plans[i]);
    tfi_free(plans);
    tfi_free(n);
    tfi_free(off);
    tfi_free(arena);
    return st;
}

tf_status tfi_model_grow_one_set(void *model, int index, int64_t new_n, const tf_grow_params *g)
{
    tf_model *m = model;
    const tf_pattention *set = &m->sets[index];
    if (new_n <= set->n)
        return tfi_fail(&m->err, TF_ERR_ARGUMENT,
                        "new size %lld must exceed the current n=%lld (sets only grow)",
                        (long long)new_n, (long long)set->n);
    const int nsets = m->p.num_layers * TFI_SETS_PER_LAYER;
    int64_t *per_set = tfi_calloc((size_t)nsets, sizeof *per_set);
    if (!per_set)
        return tfi_fail(&m->err, TF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < nsets; i++)
        per_set[i] = i == index ? new_n : m->sets[i].n;
    tf_status st = grow_model(m, NULL, NULL, per_set, g, 1);
    tfi_free(per_set);
    return st;
}

TF_API tf_status tf_model_grow(tf_model *model, tf_optimizer *opt, int64_t qkv_slot_num,
                               int64_t proj_slot_num, int64_t ffn_slot_num,
                               const tf_grow_params *params)
{
    if (!model)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_model_grow: the model is NULL");
    tf_model *m = model;
    if (opt && opt->model != m)
        return tfi_fail(&m->err, TF_ERR_ARGUMENT,
                        "tf_model_grow: the optimizer belongs to another model");
    tf_grow_params g;
    tf_status st = tfi_grow_params_copy(&g, params, "tf_model_grow", &m->err);
    if (st != TF_OK)
        return st;
    const int64_t cur[3] = {m->p.qkv_slot_num, m->p.proj_slot_num, m->p.ffn_slot_num};
    const int64_t want[3] = {qkv_slot_num, proj_slot_num, ffn_slot_num};
    const char *names[3] = {"qkv_slot_num", "proj_slot_num", "ffn_slot_num"};
    int grows = 0;
    for (int k = 0; k < 3; k++) {
        if (want[k] < cur[k])
            return tfi_fail(&m->err, TF_ERR_ARGUMENT,
                            "tf_model_grow: %s %lld is smaller than the current %lld "
                            "(models only grow)", names[k], (long long)want[k],
                            (long long)cur[k]);
        grows |= want[k] > cur[k];
    }
    /* sets grown one by one through their handles may differ per layer */
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++) {
        int64_t w = want[tfi_slot_class(i % TFI_SETS_PER_LAYER)];
        if (w < m->sets[i].n)
            return tfi_fail(&m->err, TF_ERR_ARGUMENT,
                            "tf_model_grow: set %s has %lld tokens, more than the %lld asked",
                            tfi_model_set_ref(m, i)->name, (long long)m->sets[i].n, (long long)w);
        grows |= w > m->sets[i].n;
    }
    if (!grows)
        return tfi_fail(&m->err, TF_ERR_ARGUMENT,
                        "tf_model_grow: the slot numbers (%lld, %lld, %lld) grow nothing",
                        (long long)want[0], (long long)want[1], (long long)want[2]);
    if (opt && opt->nslots != m->nrefs)
        return tfi_fail(&m->err, TF_ERR_STATE,
                        "tf_model_grow: the optimizer does not match the model's tensors");
    if (!opt && tfi_grow_params_train(&g))
        return tfi_fail(&m->err, TF_ERR_ARGUMENT,
                        "tf_model_grow: a tau ramp, a reset of the moments or a schedule "
                        "restart needs the optimizer (opt is NULL)");
    tf_optimizer_params after;
    if (opt && (st = tfi_optimizer_restart_prepare(opt, &g, &after, &m->err)) != TF_OK)
        return tfi_fail(&m->err, st, "tf_model_grow: %s", m->err.msg);
    if ((st = grow_model(m, opt, want, NULL, &g, 0)) != TF_OK)
        return st;
    if (opt)
        tfi_optimizer_restart_commit(opt, &after, g.reset_optimizer);
    return TF_OK;
}

/* ---- growth-aware loading --------------------------------------------- */
TF_API tf_status tf_model_load_grown(tf_model *model, const char *path,
                                     const tf_grow_params *params)
{
    if (!model)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_model_load_grown: the model is NULL");
    if (!path)
        return tfi_fail(&model->err, TF_ERR_ARGUMENT, "tf_model_load_grown: path is NULL");
    tf_model *m = model;
    tf_grow_params g;
    tf_status st = tfi_model_need_language(m, "tf_model_load_grown");
    if (st != TF_OK)
        return st;
    st = tfi_grow_params_copy(&g, params, "tf_model_load_grown", &m->err);
    if (st != TF_OK)
        return st;
    /* a loaded model starts a new run: what growth does to training does
     * not apply (grow_model without an optimizer starts no ramp) */
    /* Build the checkpoint's own model, grow it to our sizes, then copy:
     * the same code path as tf_model_grow, so both give the same model. */
    tf_model *small = NULL;
    if ((st = tf_model_open(path, &small)) != TF_OK)
        return tfi_fail(&m->err, st, "tf_model_load_grown: %s", tf_last_error());
    const tf_model_params *a = &small->p, *b = &m->p;
    if (a->num_layers != b->num_layers || a->hidden_size != b->hidden_size ||
        a->num_attention_heads != b->num_attention_heads || a->vocab_size != b->vocab_size ||
        a->norm != b->norm) {
        /* a points into small: format the message before freeing it */
        st = tfi_fail(&m->err, TF_ERR_SHAPE,
                      "tf_model_load_grown: %s has L=%d d=%d heads=%d V=%lld %s, the model "
                      "L=%d d=%d heads=%d V=%lld %s: only slot numbers may differ", path,
                      a->num_layers, a->hidden_size, a->num_attention_heads,
                      (long long)a->vocab_size, tf_norm_type_name(a->norm), b->num_layers,
                      b->hidden_size, b->num_attention_heads, (long long)b->vocab_size,
                      tf_norm_type_name(b->norm));
        tf_model_free(small);
        return st;
    }
    /* Grow every set of the checkpoint's model to the size of the model's
     * set (sets grown through their handles may differ per layer); a
     * checkpoint set larger than the model's is a shape mismatch. */
    const int nsets = m->p.num_layers * TFI_SETS_PER_LAYER;
    int64_t *want = tfi_calloc((size_t)nsets, sizeof *want);
    if (!want) {
        tf_model_free(small);
        return tfi_fail(&m->err, TF_ERR_NOMEM, "tf_model_load_grown: out of memory");
    }
    int differ = 0;
    for (int i = 0; i < nsets; i++) {
        want[i] = m->sets[i].n;
        if (small->sets[i].n > want[i]) {
            st = tfi_fail(&m->err, TF_ERR_SHAPE,
                          "tf_model_load_grown: %s: '%s' has %lld tokens, more than the "
                          "model's %lld (a checkpoint loads only into a model at least its "
                          "size)", path, tfi_model_set_ref(m, i)->name, (long long)small->sets[i].n,
                          (long long)want[i]);
            tfi_free(want);
            tf_model_free(small);
            return st;
        }
        differ |= want[i] != small->sets[i].n;
    }
    if (differ)
        st = grow_model(small, NULL, NULL, want, &g, 0);
    tfi_free(want);
    if (st != TF_OK) {
        tfi_fail(&m->err, st, "tf_model_load_grown: %s", small->err.msg);
        tf_model_free(small);
        return st;
    }
    for (int i = 0; i < m->nrefs; i++) {
        const tfi_tensor_ref *src = tfi_model_find(small, m->refs[i].name);
        memcpy(m->refs[i].data, src->data, tfi_ref_size(&m->refs[i]) * sizeof(float));
    }
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++) {
        m->sets[i].tau = small->sets[i].tau;
        m->sets[i].scale_policy = small->sets[i].scale_policy;
        tfi_pattention_ramp_begin(&m->sets[i], 0, 0);
    }
    tf_model_free(small);
    return TF_OK;
}
