/*
 * model_io.c -- a model (and optionally its optimizer) to and from a
 * checkpoint: tf_model_save, tf_model_load, tf_model_open.  The layout is
 * in model_io.h; the metadata is model_meta.c's, the optimizer's tensors
 * optimizer_io.c's.
 *
 * Loading validates the whole file against the model before it copies a
 * single value, so a failed load leaves model and optimizer unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_io.h"

/* ---- saving ------------------------------------------------------------- */

TF_API tf_status tf_model_save(tf_model *model, const tf_optimizer *opt, const char *path)
{
    if (!model)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_model_save: the model is NULL");
    if (!path)
        return tfi_fail(&model->err, TF_ERR_ARGUMENT, "tf_model_save: path is NULL");
    if (opt && opt->model != model)
        return tfi_fail(&model->err, TF_ERR_ARGUMENT,
                        "tf_model_save: the optimizer belongs to another model");
    if (opt && opt->nslots != model->nrefs)
        return tfi_fail(&model->err, TF_ERR_STATE,
                        "tf_model_save: the optimizer does not match the model's tensors");
    tfi_st_writer *w = tfi_st_writer_new();
    if (!w)
        return tfi_fail(&model->err, TF_ERR_NOMEM, "tf_model_save: out of memory");
    tf_status st = tfi_model_meta_write(w, model);
    if (st == TF_OK)
        st = tfi_growth_meta_write(w, model, opt);
    for (int i = 0; i < model->nrefs && st == TF_OK; i++) {
        const tfi_tensor_ref *r = &model->refs[i];
        int64_t shape[2] = {r->rows, r->cols};
        st = tfi_st_writer_add(w, r->name, TFI_ST_F32, r->cols ? 2 : 1, shape, r->data);
    }
    if (opt && st == TF_OK)
        st = tfi_optimizer_write(w, opt);
    if (st != TF_OK) {
        tfi_st_writer_free(w);
        return tfi_fail(&model->err, st, "tf_model_save: %s", tf_last_error());
    }
    st = tfi_st_writer_write(w, path, &model->err);
    tfi_st_writer_free(w);
    return st;
}

/* ---- loading ------------------------------------------------------------ */

/* The official GPT-NeoX name of a SPEC tensor name (sequential.N...) in a
 * model of num_layers layers. */
static void official_name(int num_layers, const char *name, char *out, size_t len)
{
    int layer;
    int consumed = 0;
    if (strcmp(name, "embed.weight") == 0)
        snprintf(out, len, "sequential.0.word_embeddings.weight");
    else if (strncmp(name, "final_norm.", 11) == 0)
        snprintf(out, len, "sequential.%d.norm.%s", num_layers + 3, name + 11);
    else if (sscanf(name, "layers.%d.%n", &layer, &consumed) == 1 && consumed > 0)
        snprintf(out, len, "sequential.%d.%s", layer + 2, name + consumed);
    else
        snprintf(out, len, "%s", name);
}

/* A model tensor in the file under its SPEC or its official name, F32 of
 * the tensor's shape; *found NULL if absent (then an error). */
static tf_status find_tensor(const tf_model *m, const tfi_st_file *f, const tfi_tensor_ref *r,
                             const tfi_st_tensor **found, tfi_errbuf *eb)
{
    tf_status st = tfi_st_find_f32(f, r->name, r->rows, r->cols, found, eb);
    if (st == TF_OK && !*found) {
        char off[160];
        official_name(m->p.num_layers, r->name, off, sizeof off);
        st = tfi_st_find_f32(f, off, r->rows, r->cols, found, eb);
    }
    if (st == TF_OK && !*found)
        st = tfi_fail(eb, TF_ERR_FORMAT, "%s: the checkpoint has no tensor '%s'", f->name,
                      r->name);
    return st;
}

static tf_status load_into(tf_model *m, tf_optimizer *opt, const tfi_st_file *f)
{
    tfi_errbuf *eb = &m->err;
    const int n = m->nrefs, nsets = m->p.num_layers * TFI_SETS_PER_LAYER;
    const tfi_st_tensor **src = calloc((size_t)n, sizeof *src);
    const tfi_st_tensor **moments = opt ? calloc((size_t)opt->nslots * 2, sizeof *moments) : NULL;
    tfi_set_scale *scales = calloc((size_t)nsets, sizeof *scales);
    tfi_tau_ramp *ramps = calloc((size_t)nsets, sizeof *ramps);
    tf_status st = TF_OK;
    if (!src || !scales || !ramps || (opt && !moments)) {
        st = tfi_fail(eb, TF_ERR_NOMEM, "tf_model_load: out of memory");
        goto done;
    }
    /* 1. validate everything */
    for (int i = 0; i < n && st == TF_OK; i++)
        st = find_tensor(m, f, &m->refs[i], &src[i], eb);
    int64_t step = 0, moments_origin = 0;
    int with_opt = 0;
    tf_optimizer_params opt_params;
    if (st == TF_OK && opt)
        st = tfi_optimizer_state_check(opt, f, moments, &step, &with_opt, eb);
    if (st == TF_OK && with_opt)
        st = tfi_growth_meta_restart(f, opt, step, &opt_params, &moments_origin, eb);
    if (st == TF_OK)
        st = tfi_model_meta_scales(m, f, scales, eb);
    if (st == TF_OK)
        st = tfi_growth_meta_ramps(m, f, ramps, eb);
    if (st != TF_OK)
        goto done;
    /* 2. copy; the activations of the last forward no longer match */
    m->have_targets = 0;
    for (int i = 0; i < n; i++)
        memcpy(m->refs[i].data, tfi_st_data(f, src[i]), (size_t)src[i]->numel * sizeof(float));
    if (with_opt) {
        tfi_optimizer_state_read(opt, f, moments, step);
        opt->moments_origin = moments_origin;
        opt->p = opt_params;
    }
    for (int i = 0; i < nsets; i++)
        if (scales[i].present) {
            m->sets[i].tau = scales[i].tau;
            m->sets[i].scale_policy = scales[i].policy;
            m->sets[i].ramp = ramps[i];
        }
done:
    free(src);
    free(ramps);
    free(moments);
    free(scales);
    return st;
}

TF_API tf_status tf_model_load(tf_model *model, tf_optimizer *opt, const char *path)
{
    if (!model)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_model_load: the model is NULL");
    if (!path)
        return tfi_fail(&model->err, TF_ERR_ARGUMENT, "tf_model_load: path is NULL");
    if (opt && opt->model != model)
        return tfi_fail(&model->err, TF_ERR_ARGUMENT,
                        "tf_model_load: the optimizer belongs to another model");
    if (opt && opt->nslots != model->nrefs)
        return tfi_fail(&model->err, TF_ERR_STATE,
                        "tf_model_load: the optimizer does not match the model's tensors");
    tfi_st_file f;
    tf_status st = tfi_st_open(path, &f, &model->err);
    if (st != TF_OK)
        return st;
    st = load_into(model, opt, &f);
    tfi_st_close(&f);
    return st;
}

/* ---- a model from a checkpoint's own configuration ---------------------- */

/* A tensor under its SPEC name or, failing that, its official one. */
static const tfi_st_tensor *find_either(const tfi_st_file *f, int num_layers, const char *name)
{
    const tfi_st_tensor *t = tfi_st_find(f, name);
    if (!t) {
        char off[160];
        official_name(num_layers, name, off, sizeof off);
        t = tfi_st_find(f, off);
    }
    return t;
}

/* An F32 tensor of shape [rows, cols] ([rows] for cols == 0; rows < 0: any
 * rows >= 1) under its SPEC or official name; *t the tensor. */
static tf_status expect_tensor(const tfi_st_file *f, int num_layers, const char *name,
                               int64_t rows, int64_t cols, const tfi_st_tensor **t)
{
    *t = find_either(f, num_layers, name);
    if (!*t)
        return tfi_fail(NULL, TF_ERR_FORMAT, "%s: the checkpoint has no tensor '%s'", f->name,
                        name);
    const int nd = cols ? 2 : 1;
    int ok = (*t)->dtype == TFI_ST_F32 && (*t)->ndim == nd &&
             (rows < 0 ? (*t)->shape[0] >= 1 : (*t)->shape[0] == rows) &&
             (nd == 1 || (*t)->shape[1] == cols);
    if (!ok) {
        char have[64], want[64];
        tfi_st_format_shape(have, sizeof have, (*t)->shape, (*t)->ndim);
        const int64_t shape[2] = {rows, cols};
        if (rows < 0)
            snprintf(want, sizeof want, "[n >= 1, %lld]", (long long)cols);
        else
            tfi_st_format_shape(want, sizeof want, shape, nd);
        return tfi_fail(NULL, TF_ERR_FORMAT,
                        "%s: tensor '%s' is %s %s, but the metadata declares F32 %s", f->name,
                        (*t)->name, tfi_st_dtype_name((*t)->dtype), have, want);
    }
    return TF_OK;
}

/* Every tensor the metadata's configuration declares must be in the file,
 * F32, of its exact shape: embed [V, d], final_norm [d], each set's keys
 * and values [n, d] with the same n >= 1.  Checked before anything is
 * allocated, so that sizes in the metadata cannot make the library
 * allocate more than the file holds; a file stopping short of num_layers is
 * refused at its first missing set.  Sets grown one by one through their
 * handles may differ from the slot numbers of the metadata (those of layer
 * 0): p's slot numbers become the smallest size of each kind, the size the
 * model is created with; fit_sets then grows the larger sets. */
static tf_status check_declared(const tfi_st_file *f, tf_model_params *p)
{
    const int L = p->num_layers;
    const int64_t d = p->hidden_size;
    const tfi_st_tensor *t, *v;
    tf_status st;
    if ((st = expect_tensor(f, L, "embed.weight", p->vocab_size, d, &t)) != TF_OK ||
        (st = expect_tensor(f, L, "final_norm.weight", d, 0, &t)) != TF_OK ||
        (st = expect_tensor(f, L, "final_norm.bias", d, 0, &t)) != TF_OK)
        return st;
    int64_t smallest[3] = {INT64_MAX, INT64_MAX, INT64_MAX};
    for (int64_t i = 0; i < (int64_t)L * TFI_SETS_PER_LAYER; i++) {
        char prefix[64], name[96];
        tfi_set_prefix((int)i, prefix, sizeof prefix);
        snprintf(name, sizeof name, "%s.key_param_tokens", prefix);
        if ((st = expect_tensor(f, L, name, -1, d, &t)) != TF_OK)
            return st;
        snprintf(name, sizeof name, "%s.value_param_tokens", prefix);
        if ((st = expect_tensor(f, L, name, t->shape[0], d, &v)) != TF_OK)
            return st;
        int c = tfi_slot_class((int)(i % TFI_SETS_PER_LAYER));
        if (t->shape[0] < smallest[c])
            smallest[c] = t->shape[0];
    }
    for (int kind = TF_SET_QUERY; kind <= TF_SET_FFN; kind++)
        *tfi_slot_field(p, kind) = smallest[tfi_slot_class(kind)];
    return TF_OK;
}

/* Grows each set smaller than its tensors in the file (check_declared has
 * vouched for the shapes) to the file's size; load_into then copies, and
 * the recorded tau and policy replace the ones set here. */
static tf_status fit_sets(tf_model *m, const tfi_st_file *f)
{
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++) {
        const tfi_st_tensor *t = find_either(f, m->p.num_layers, tfi_model_set_ref(m, i)->name);
        tf_pattention *set = &m->sets[i];
        if (t->shape[0] <= set->n)
            continue;
        tf_grow_params g = tf_grow_default_params();
        g.scale_policy = TF_SCALE_FOLLOW_N; /* as if created at that size */
        tf_status st = tfi_model_grow_one_set(m, i, t->shape[0], &g);
        if (st != TF_OK)
            return st;
        set->scale_policy = m->p.scale_policy;
    }
    return TF_OK;
}

/* The formats tf_model_open reads: its own checkpoints and the fixtures. */
static tf_status check_format(const tfi_st_file *f)
{
    const char *tag = tfi_st_meta(f, "format");
    if (!tag || strcmp(tag, TFI_CHECKPOINT_FORMAT) == 0 ||
        strcmp(tag, "tokenformer-fixture-1") == 0)
        return TF_OK;
    return tfi_fail(NULL, TF_ERR_FORMAT,
                    "%s: metadata format '%.64s' is not a libtokenformer checkpoint ('%s'): "
                    "create the model from its config and use tf_model_load", f->name, tag,
                    TFI_CHECKPOINT_FORMAT);
}

TF_API tf_status tf_model_open(const char *path, tf_model **out)
{
    if (!out || !path)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_model_open: path or out is NULL");
    *out = NULL;
    tfi_st_file f;
    tf_status st = tfi_st_open(path, &f, NULL);
    if (st != TF_OK)
        return st;
    tf_model_params p;
    tf_model *m = NULL;
    if ((st = check_format(&f)) == TF_OK && (st = tfi_params_from_metadata(&f, &p)) == TF_OK &&
        (st = check_declared(&f, &p)) == TF_OK && (st = tf_model_create(&p, &m)) == TF_OK) {
        st = fit_sets(m, &f);
        if (st == TF_OK)
            st = load_into(m, NULL, &f);
        if (st != TF_OK) {
            tfi_fail(NULL, st, "%s", m->err.msg);
            tf_model_free(m);
            m = NULL;
        }
    }
    tfi_st_close(&f);
    if (st != TF_OK && !strstr(tf_last_error(), path)) {
        char msg[TFI_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", tf_last_error());
        tfi_fail(NULL, st, "tf_model_open: %s: %s", path, msg);
    }
    *out = m;
    return st;
}

/* ---- what a checkpoint holds, without a model ---------------------------- */

TF_API tf_status tf_checkpoint_info(const char *path, tf_model_params *params,
                                    int64_t *optimizer_step)
{
    if (!path)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_checkpoint_info: path is NULL");
    tfi_st_file f;
    tf_status st = tfi_st_open(path, &f, NULL);
    if (st != TF_OK)
        return st;
    tf_model_params p;
    int64_t step = -1;
    st = tfi_params_from_metadata(&f, &p);
    if (st == TF_OK)
        st = tfi_optimizer_meta_step(&f, &step, NULL);
    tfi_st_close(&f);
    if (st == TF_OK && params)
        st = tfi_params_out(params, &p, sizeof p, TFI_MODEL_PARAMS_MIN, "tf_checkpoint_info",
                            "tf_model_params", NULL);
    if (st == TF_OK && optimizer_step)
        *optimizer_step = step;
    return st;
}
