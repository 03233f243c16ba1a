/*
 * model_grow.c -- growing a whole model (every set of a kind at once) and
 * loading a smaller checkpoint into a larger model.  All or nothing: every
 * grown tensor is allocated before any is swapped in, and if the optimizer
 * cannot follow, the sets are put back as they were.
 */
#include <string.h>

#include "io/checkpoint.h"
#include "optimizer.h"

/* What a set was before growth, to undo it. */
typedef struct set_undo {
    int grew;
    int64_t n;
    tf_scale_policy policy;
    double tau;
    float *keys, *values, *key_grad, *value_grad;
} set_undo;

static int64_t target_n(int kind, int64_t qkv, int64_t proj, int64_t ffn)
{
    return kind == TF_SET_FFN ? ffn : kind == TF_SET_PROJ ? proj : qkv;
}

static void swap_in(tf_pattention *set, tfi_grow_plan *plan, set_undo *undo)
{
    *undo = (set_undo){1, set->n, set->scale_policy, set->tau, set->keys, set->values,
                       set->key_grad, set->value_grad};
    set->keys = plan->keys;
    set->values = plan->values;
    set->key_grad = plan->key_grad;
    set->value_grad = plan->value_grad;
    set->n = plan->new_n;
    set->scale_policy = plan->policy;
    if (plan->policy == TF_SCALE_FOLLOW_N)
        set->tau = tfi_default_tau(set->norm, set->n);
    set->fwd_rows = 0;
    memset(plan, 0, sizeof *plan);
}

static void swap_back(tf_pattention *set, set_undo *undo)
{
    tfi_free(set->keys);
    tfi_free(set->values);
    tfi_free(set->key_grad);
    tfi_free(set->value_grad);
    set->keys = undo->keys;
    set->values = undo->values;
    set->key_grad = undo->key_grad;
    set->value_grad = undo->value_grad;
    set->n = undo->n;
    set->scale_policy = undo->policy;
    set->tau = undo->tau;
    set->fwd_rows = 0;
}

static void free_undo(set_undo *undo)
{
    tfi_free(undo->keys);
    tfi_free(undo->values);
    tfi_free(undo->key_grad);
    tfi_free(undo->value_grad);
}

/* Grows model (and opt) to the given slot numbers with validated g; per_set
 * (if not NULL) gives each set's size instead, layer-major.  Every grown
 * set starts g's tau ramp (none if g has none), counted from opt's step
 * count. */
static tf_status grow_model(tf_model *m, tf_optimizer *opt, int64_t qkv, int64_t proj,
                            int64_t ffn, const int64_t *per_set, const tf_grow_params *g)
{
    const int nsets = m->p.num_layers * TFI_SETS_PER_LAYER;
    tfi_grow_plan *plans = tfi_calloc((size_t)nsets, sizeof *plans);
    set_undo *undo = tfi_calloc((size_t)nsets, sizeof *undo);
    if (!plans || !undo) {
        tfi_free(plans);
        tfi_free(undo);
        return tfi_fail(&m->err, TF_ERR_NOMEM, "tf_model_grow: out of memory");
    }
    tf_status st = TF_OK;
    tfi_rng seeds;
    tfi_rng_seed(&seeds, g->seed);
    for (int i = 0; i < nsets && st == TF_OK; i++) {
        tf_grow_params gi = *g;
        gi.seed = tfi_rng_next(&seeds); /* every set its own stream */
        int64_t want = per_set ? per_set[i] : target_n(i % TFI_SETS_PER_LAYER, qkv, proj, ffn);
        if (want != m->sets[i].n)
            st = tfi_pattention_grow_prepare(&m->sets[i], want, &gi, &plans[i], &m->err);
    }
    if (st == TF_OK) {
        for (int i = 0; i < nsets; i++)
            if (plans[i].keys)
                swap_in(&m->sets[i], &plans[i], &undo[i]);
        st = tfi_model_build_refs(m);
        if (st == TF_OK && opt)
            st = tfi_optimizer_follow_model(opt);
        for (int i = 0; i < nsets; i++) {
            if (!undo[i].grew)
                continue;
            if (st == TF_OK) {
                free_undo(&undo[i]);
                tfi_pattention_ramp_begin(&m->sets[i], opt ? g->tau_ramp_steps : 0,
                                          opt ? opt->step : 0);
            } else {
                swap_back(&m->sets[i], &undo[i]);
            }
        }
        if (st != TF_OK)
            tfi_model_build_refs(m); /* the old table fits in the old allocation */
    }
    for (int i = 0; i < nsets; i++)
        tfi_grow_plan_discard(&plans[i]);
    tfi_free(plans);
    tfi_free(undo);
    return st;
}

TF_API tf_status tf_model_grow(tf_model *model, tf_optimizer *opt, int64_t qkv_slot_num,
                               int64_t proj_slot_num, int64_t ffn_slot_num,
                               const tf_grow_params *params)
{
    if (!model)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_model_grow: the model is NULL");
    tf_model *m = model;
    tf_model_num_params(m); /* refresh after any growth through set handles */
    if (opt && opt->model != m)
        return tfi_fail(&m->err, TF_ERR_ARGUMENT,
                        "tf_model_grow: the optimizer belongs to another model");
    tf_grow_params g;
    tf_status st = tfi_grow_params_copy(&g, params, &m->err);
    if (st != TF_OK)
        return tfi_fail(&m->err, st, "tf_model_grow: %s", m->err.msg);
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
        int64_t w = target_n(i % TFI_SETS_PER_LAYER, want[0], want[1], want[2]);
        if (w < m->sets[i].n)
            return tfi_fail(&m->err, TF_ERR_ARGUMENT,
                            "tf_model_grow: set %s has %lld tokens, more than the %lld asked",
                            m->refs[1 + 2 * i].name, (long long)m->sets[i].n, (long long)w);
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
    if ((st = grow_model(m, opt, want[0], want[1], want[2], NULL, &g)) != TF_OK)
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
    tf_model_num_params(m);
    tf_grow_params g;
    tf_status st = tfi_grow_params_copy(&g, params, &m->err);
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
                          "size)", path, m->refs[1 + 2 * i].name, (long long)small->sets[i].n,
                          (long long)want[i]);
            tfi_free(want);
            tf_model_free(small);
            return st;
        }
        differ |= want[i] != small->sets[i].n;
    }
    if (differ)
        st = grow_model(small, NULL, 0, 0, 0, want, &g);
    tfi_free(want);
    if (st != TF_OK) {
        tfi_fail(&m->err, st, "tf_model_load_grown: %s", small->err.msg);
        tf_model_free(small);
        return st;
    }
    tf_model_num_params(small);
    for (int i = 0; i < m->nrefs; i++) {
        const tfi_tensor_ref *src = tfi_model_find(small, m->refs[i].name);
        size_t count = (size_t)m->refs[i].rows * (size_t)(m->refs[i].cols ? m->refs[i].cols : 1);
        memcpy(m->refs[i].data, src->data, count * sizeof(float));
    }
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++) {
        m->sets[i].tau = small->sets[i].tau;
        m->sets[i].scale_policy = small->sets[i].scale_policy;
        tfi_pattention_ramp_begin(&m->sets[i], 0, 0);
    }
    tf_model_free(small);
    return TF_OK;
}
