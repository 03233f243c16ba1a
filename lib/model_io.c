/*
 * model_io.c -- a model (and optionally its optimizer) to and from a
 * checkpoint: tf_model_save, tf_model_export, tf_model_load.  The layout is
 * in model_io.h; the metadata is model_meta.c's, the optimizer's tensors
 * optimizer_io.c's.
 *
 * Loading validates the whole file against the model before it copies a
 * single value, so a failed load leaves model and optimizer unchanged.
 * Opening a model to run it is model_open.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_io.h"

/* ---- saving ------------------------------------------------------------- */

/* Writes model (and opt's state) to path with the parameters in dtype:
 * F32 as they are, BF16 narrowed into copies that live until written. */
static tf_status save(tf_model *model, const tf_optimizer *opt, const char *path,
                      tfi_st_dtype dtype, const char *fn)
{
    tfi_st_writer *w = tfi_st_writer_new();
    uint16_t **narrow = tfi_calloc((size_t)model->nrefs, sizeof *narrow);
    if (!w || !narrow) {
        tfi_st_writer_free(w);
        tfi_free(narrow);
        return tfi_fail(&model->err, TF_ERR_NOMEM, "%s: out of memory", fn);
    }
    tf_status st = tfi_model_meta_write(w, model);
    if (st == TF_OK)
        st = tfi_growth_meta_write(w, model, opt);
    for (int i = 0; i < model->nrefs && st == TF_OK; i++) {
        const tfi_tensor_ref *r = &model->refs[i];
        int64_t shape[2] = {r->rows, r->cols};
        const void *data = r->data;
        if (dtype == TFI_ST_BF16) {
            const size_t n = tfi_ref_size(r);
            if (!(narrow[i] = tfi_alloc(n * sizeof(uint16_t)))) {
                st = tfi_fail(NULL, TF_ERR_NOMEM, "out of memory for the bfloat16 copies");
                break;
            }
            for (size_t j = 0; j < n; j++)
                narrow[i][j] = tfi_f32_to_bf16(r->data[j]);
            data = narrow[i];
        }
        st = tfi_st_writer_add(w, r->name, dtype, r->cols ? 2 : 1, shape, data);
    }
    if (opt && st == TF_OK)
        st = tfi_optimizer_write(w, opt);
    if (st != TF_OK)
        tfi_fail(&model->err, st, "%s: %s", fn, tf_last_error());
    else
        st = tfi_st_writer_write(w, path, &model->err);
    tfi_st_writer_free(w);
    for (int i = 0; i < model->nrefs; i++)
        tfi_free(narrow[i]);
    tfi_free(narrow);
    return st;
}

/* The arguments of save, export and load: a model, a path, and an
 * optimizer (or NULL) bound to the model as it is. */
static tf_status check_args(tf_model *model, const tf_optimizer *opt, const char *path,
                            const char *fn)
{
    if (!model)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: the model is NULL", fn);
    if (!path)
        return tfi_fail(&model->err, TF_ERR_ARGUMENT, "%s: path is NULL", fn);
    if (opt && opt->model != model)
        return tfi_fail(&model->err, TF_ERR_ARGUMENT,
                        "%s: the optimizer belongs to another model", fn);
    if (opt && opt->nslots != model->nrefs)
        return tfi_fail(&model->err, TF_ERR_STATE,
                        "%s: the optimizer does not match the model's tensors", fn);
    return TF_OK;
}

TF_API tf_status tf_model_save(tf_model *model, const tf_optimizer *opt, const char *path)
{
    tf_status st = check_args(model, opt, path, "tf_model_save");
    return st == TF_OK ? save(model, opt, path, TFI_ST_F32, "tf_model_save") : st;
}

TF_API tf_status tf_model_export(tf_model *model, const char *path, tf_dtype dtype)
{
    tf_status st = check_args(model, NULL, path, "tf_model_export");
    if (st != TF_OK)
        return st;
    if (dtype != TF_DTYPE_F32 && dtype != TF_DTYPE_BF16)
        return tfi_fail(&model->err, TF_ERR_ARGUMENT,
                        "tf_model_export: unknown dtype %d (TF_DTYPE_F32 or TF_DTYPE_BF16)",
                        (int)dtype);
    return save(model, NULL, path, dtype == TF_DTYPE_BF16 ? TFI_ST_BF16 : TFI_ST_F32,
                "tf_model_export");
}

/* ---- loading ------------------------------------------------------------ */

void tfi_official_name(int num_layers, const char *name, char *out, size_t len)
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

int tfi_file_official_names(const tfi_st_file *f)
{
    for (int i = 0; i < f->ntensors; i++)
        if (strncmp(f->tensors[i].name, "sequential.", 11) == 0)
            return 1;
    return 0;
}

const tfi_st_tensor *tfi_file_tensor(const tfi_st_file *f, int official, int num_layers,
                                     const char *name)
{
    char off[160];
    tfi_official_name(num_layers, name, off, sizeof off);
    const tfi_st_tensor *t = tfi_st_find(f, official ? off : name);
    return t ? t : tfi_st_find(f, official ? name : off);
}

tf_status tfi_file_expect(const tfi_st_file *f, int official, int num_layers, const char *name,
                          int64_t rows, int64_t cols, const tfi_st_tensor **found,
                          tfi_errbuf *eb)
{
    const tfi_st_tensor *t = tfi_file_tensor(f, official, num_layers, name);
    *found = NULL;
    if (t)
        return tfi_st_find_f32(f, t->name, rows, cols, found, eb);
    char off[160];
    tfi_official_name(num_layers, name, off, sizeof off);
    if (official)
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: the checkpoint has no tensor '%s' (%s)",
                        f->name, off, name);
    return tfi_fail(eb, TF_ERR_FORMAT, "%s: the checkpoint has no tensor '%s'", f->name, name);
}

tf_status tfi_model_load_from(tf_model *m, tf_optimizer *opt, const tfi_st_file *f)
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
    if (tfi_meta_is_vision(f) != (m->vis != NULL)) {
        st = tfi_fail(eb, TF_ERR_STATE, "tf_model_load: %s holds a %s model, this is a %s model",
                      f->name, m->vis ? "language" : "vision", m->vis ? "vision" : "language");
        goto done;
    }
    const int official = tfi_file_official_names(f);
    for (int i = 0; i < n && st == TF_OK; i++)
        st = tfi_file_expect(f, official, m->p.num_layers, m->refs[i].name, m->refs[i].rows,
                             m->refs[i].cols, &src[i], eb);
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
    /* 2. copy (from memory this cannot fail; from a header-only file a read
     * error leaves a partly filled model, which tf_model_open discards);
     * the activations of the last forward no longer match */
    m->have_targets = 0;
    for (int i = 0; i < n && st == TF_OK; i++)
        st = tfi_st_copy_f32(f, src[i], m->refs[i].data, eb);
    if (st != TF_OK)
        goto done;
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
    tf_status st = check_args(model, opt, path, "tf_model_load");
    if (st != TF_OK)
        return st;
    /* the whole file in memory: everything is checked before anything of
     * the model changes, and the copy cannot fail half way */
    tfi_st_file f;
    if ((st = tfi_st_open(path, &f, &model->err)) != TF_OK)
        return st;
    st = tfi_model_load_from(model, opt, &f);
    tfi_st_close(&f);
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
