/*
 * checkpoint.c -- models (and optimizer state) to and from safetensors.
 *
 * Layout of a checkpoint:
 *   tensors   every model tensor under its SPEC name (F32);
 *             optimizer.exp_avg.<name>, optimizer.exp_avg_sq.<name> when
 *             an optimizer is saved with the model
 *   metadata  format = tokenformer-checkpoint-1, the configuration under
 *             the official YAML key names, each set's tau and scale policy
 *             (pattention.<prefix>.tau / .scale_policy), optimizer.step;
 *             growth state where there is some (see "growth state" below)
 *
 * Loading validates the whole file against the model before it copies a
 * single value, so a failed load leaves model and optimizer unchanged.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "optimizer.h"

#define FORMAT_TAG "tokenformer-checkpoint-1"

/* ---- names ------------------------------------------------------------ */

/* The official GPT-NeoX name of a SPEC tensor name (sequential.N...). */
static void official_name(const tf_model *m, const char *name, char *out, size_t len)
{
    int layer;
    int consumed = 0;
    if (strcmp(name, "embed.weight") == 0)
        snprintf(out, len, "sequential.0.word_embeddings.weight");
    else if (strncmp(name, "final_norm.", 11) == 0)
        snprintf(out, len, "sequential.%d.norm.%s", m->p.num_layers + 3, name + 11);
    else if (sscanf(name, "layers.%d.%n", &layer, &consumed) == 1 && consumed > 0)
        snprintf(out, len, "sequential.%d.%s", layer + 2, name + consumed);
    else
        snprintf(out, len, "%s", name);
}

/* The prefix of a set, e.g. "layers.0.attention.query", from its key name. */
static void set_prefix(const char *key_name, char *out, size_t len)
{
    snprintf(out, len, "%s", key_name);
    char *dot = strstr(out, ".key_param_tokens");
    if (dot)
        *dot = '\0';
}

/* ---- saving ----------------------------------------------------------- */

static tf_status meta_fmt(tfi_st_writer *w, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static tf_status meta_fmt(tfi_st_writer *w, const char *key, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return tfi_st_writer_meta(w, key, buf);
}

static const char *policy_name(tf_scale_policy p)
{
    return p == TF_SCALE_PINNED ? "pinned" : "follow_n";
}

static tf_status add_config(tfi_st_writer *w, const tf_model *m)
{
    const tf_model_params *p = &m->p;
    tf_status st = TF_OK;
    st |= tfi_st_writer_meta(w, "format", FORMAT_TAG);
    st |= tfi_st_writer_meta(w, "library_version", TF_VERSION_STRING);
    st |= meta_fmt(w, "num_layers", "%d", p->num_layers);
    st |= meta_fmt(w, "hidden_size", "%d", p->hidden_size);
    st |= meta_fmt(w, "num_attention_heads", "%d", p->num_attention_heads);
    st |= meta_fmt(w, "qkv_slot_num", "%lld", (long long)p->qkv_slot_num);
    st |= meta_fmt(w, "proj_slot_num", "%lld", (long long)p->proj_slot_num);
    st |= meta_fmt(w, "ffn_slot_num", "%lld", (long long)p->ffn_slot_num);
    st |= meta_fmt(w, "rotary_pct", "%.17g", p->rotary_pct);
    st |= meta_fmt(w, "rotary_emb_base", "%.17g", p->rotary_emb_base);
    st |= tfi_st_writer_meta(w, "norm_activation_type", tf_norm_type_name(p->norm));
    st |= meta_fmt(w, "vocab_size", "%lld", (long long)p->vocab_size);
    st |= meta_fmt(w, "seq_length", "%lld", (long long)p->seq_length);
    st |= meta_fmt(w, "layernorm_epsilon", "%.17g", p->layernorm_epsilon);
    st |= meta_fmt(w, "init_method_std", "%.17g", p->init_method_std);
    st |= meta_fmt(w, "seed", "%llu", (unsigned long long)p->seed);
    st |= tfi_st_writer_meta(w, "scale_policy", policy_name(p->scale_policy));
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++) {
        char prefix[96], key[128];
        set_prefix(m->refs[1 + 2 * i].name, prefix, sizeof prefix);
        snprintf(key, sizeof key, "pattention.%s.tau", prefix);
        st |= meta_fmt(w, key, "%.17g", m->sets[i].tau);
        snprintf(key, sizeof key, "pattention.%s.scale_policy", prefix);
        st |= tfi_st_writer_meta(w, key, policy_name(m->sets[i].scale_policy));
    }
    return st == TF_OK ? TF_OK : TF_ERR_NOMEM;
}

/* ---- growth state ------------------------------------------------------
 * What a growth leaves running, so that a resumed run continues it exactly.
 * Written only where there is some (a checkpoint without growth state is
 * the file it was before):
 *   pattention.<prefix>.tau_ramp_{from,to,start,steps}   a set's tau ramp
 *   optimizer.moments_origin     step count of the last reset of the moments
 *   optimizer.lr_restart         restart | continue, with
 *   optimizer.lr_restart_{step,lr,min_lr,warmup_steps,decay_steps,factor}
 */

static const char *restart_name(tf_lr_restart r)
{
    return r == TF_LR_RESTART ? "restart" : r == TF_LR_CONTINUE ? "continue" : "keep";
}

static tf_status add_growth_state(tfi_st_writer *w, const tf_model *m, const tf_optimizer *opt)
{
    tf_status st = TF_OK;
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++) {
        const tfi_tau_ramp *r = &m->sets[i].ramp;
        if (r->steps == 0)
            continue;
        char prefix[96], key[160];
        set_prefix(m->refs[1 + 2 * i].name, prefix, sizeof prefix);
        snprintf(key, sizeof key, "pattention.%s.tau_ramp_from", prefix);
        st |= meta_fmt(w, key, "%.17g", r->from);
        snprintf(key, sizeof key, "pattention.%s.tau_ramp_to", prefix);
        st |= meta_fmt(w, key, "%.17g", r->to);
        snprintf(key, sizeof key, "pattention.%s.tau_ramp_start", prefix);
        st |= meta_fmt(w, key, "%lld", (long long)r->start);
        snprintf(key, sizeof key, "pattention.%s.tau_ramp_steps", prefix);
        st |= meta_fmt(w, key, "%lld", (long long)r->steps);
    }
    if (opt && opt->moments_origin != 0)
        st |= meta_fmt(w, "optimizer.moments_origin", "%lld", (long long)opt->moments_origin);
    if (opt && opt->p.lr_restart != TF_LR_KEEP) {
        const tf_optimizer_params *p = &opt->p;
        st |= tfi_st_writer_meta(w, "optimizer.lr_restart", restart_name(p->lr_restart));
        st |= meta_fmt(w, "optimizer.lr_restart_step", "%lld", (long long)p->lr_restart_step);
        st |= meta_fmt(w, "optimizer.lr_restart_lr", "%.17g", p->lr_restart_lr);
        st |= meta_fmt(w, "optimizer.lr_restart_min_lr", "%.17g", p->lr_restart_min_lr);
        st |= meta_fmt(w, "optimizer.lr_restart_warmup_steps", "%lld",
                       (long long)p->lr_restart_warmup_steps);
        st |= meta_fmt(w, "optimizer.lr_restart_decay_steps", "%lld",
                       (long long)p->lr_restart_decay_steps);
        st |= meta_fmt(w, "optimizer.lr_restart_factor", "%.17g", p->lr_restart_factor);
    }
    return st == TF_OK ? TF_OK : TF_ERR_NOMEM;
}

static int64_t shape_of(const tfi_tensor_ref *r, int64_t shape[2])
{
    shape[0] = r->rows;
    shape[1] = r->cols;
    return r->cols ? 2 : 1;
}

TF_API tf_status tf_model_save(tf_model *model, const tf_optimizer *opt, const char *path)
{
    if (!model)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_model_save: the model is NULL");
    if (!path)
        return tfi_fail(&model->err, TF_ERR_ARGUMENT, "tf_model_save: path is NULL");
    tf_model_num_params(model); /* refreshes the tensor table after any growth */
    if (opt && opt->model != model)
        return tfi_fail(&model->err, TF_ERR_ARGUMENT,
                        "tf_model_save: the optimizer belongs to another model");
    if (opt && opt->nslots != model->nrefs)
        return tfi_fail(&model->err, TF_ERR_STATE,
                        "tf_model_save: the optimizer does not match the model's tensors");
    tfi_st_writer *w = tfi_st_writer_new();
    if (!w)
        return tfi_fail(&model->err, TF_ERR_NOMEM, "tf_model_save: out of memory");
    tf_status st = add_config(w, model);
    if (st == TF_OK)
        st = add_growth_state(w, model, opt);
    char name[160];
    for (int i = 0; i < model->nrefs && st == TF_OK; i++) {
        int64_t shape[2];
        int nd = (int)shape_of(&model->refs[i], shape);
        st = tfi_st_writer_add(w, model->refs[i].name, TFI_ST_F32, nd, shape, model->refs[i].data);
    }
    if (opt && st == TF_OK) {
        st = meta_fmt(w, "optimizer.step", "%lld", (long long)opt->step);
        for (int i = 0; i < opt->nslots && st == TF_OK; i++) {
            const tfi_opt_slot *s = &opt->slots[i];
            int64_t shape[2] = {s->rows, s->cols};
            int nd = s->cols ? 2 : 1;
            snprintf(name, sizeof name, "optimizer.exp_avg.%s", s->name);
            st = tfi_st_writer_add(w, name, TFI_ST_F32, nd, shape, s->m);
            snprintf(name, sizeof name, "optimizer.exp_avg_sq.%s", s->name);
            if (st == TF_OK)
                st = tfi_st_writer_add(w, name, TFI_ST_F32, nd, shape, s->v);
        }
    }
    if (st != TF_OK) {
        tfi_st_writer_free(w);
        return tfi_fail(&model->err, st, "tf_model_save: %s", tf_last_error());
    }
    st = tfi_st_writer_write(w, path, &model->err);
    tfi_st_writer_free(w);
    return st;
}

/* ---- loading ---------------------------------------------------------- */

static void shape_str(const int64_t *shape, int nd, char *out, size_t len)
{
    size_t used = (size_t)snprintf(out, len, "[");
    for (int i = 0; i < nd && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%lld", i ? ", " : "",
                                 (long long)shape[i]);
    if (used < len)
        snprintf(out + used, len - used, "]");
}

/* Finds a model tensor in the file under its SPEC or its official name and
 * checks dtype and shape.  *found is NULL if absent (an error unless the
 * caller allows it). */
static tf_status find_checked(const tf_model *m, const tfi_st_file *f, const char *name,
                              int64_t rows, int64_t cols, const tfi_st_tensor **found,
                              tfi_errbuf *eb)
{
    const tfi_st_tensor *t = tfi_st_find(f, name);
    if (!t) {
        char off[160];
        official_name(m, name, off, sizeof off);
        t = tfi_st_find(f, off);
    }
    *found = t;
    if (!t)
        return TF_OK;
    int64_t want[2] = {rows, cols};
    int want_nd = cols ? 2 : 1;
    int same = t->ndim == want_nd;
    for (int i = 0; same && i < want_nd; i++)
        same = t->shape[i] == want[i];
    if (t->dtype != TFI_ST_F32)
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected F32", f->name,
                        t->name, tfi_st_dtype_name(t->dtype));
    if (!same) {
        char a[64], b[64];
        shape_str(t->shape, t->ndim, a, sizeof a);
        shape_str(want, want_nd, b, sizeof b);
        return tfi_fail(eb, TF_ERR_SHAPE,
                        "%s: tensor '%s' has shape %s in the file, the model expects %s",
                        f->name, t->name, a, b);
    }
    return TF_OK;
}

static int parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

static int parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno)
        return 0;
    *out = v;
    return 1;
}

/* ---- growth state: reading (the keys are listed above add_growth_state) */

/* Optional metadata numbers (below, with the configuration's keys); they
 * report to the thread's last error only. */
static tf_status meta_int(const tfi_st_file *f, const char *key, int required, int64_t *out);
static tf_status meta_double(const tfi_st_file *f, const char *key, double *out);

/* The tau ramp of the set `prefix` if the file records one (else none). */
static tf_status read_ramp(const tfi_st_file *f, const char *prefix, tfi_tau_ramp *out,
                           tfi_errbuf *eb)
{
    char key[160];
    tfi_tau_ramp r = {0};
    *out = r;
    snprintf(key, sizeof key, "pattention.%s.tau_ramp_steps", prefix);
    if (!tfi_st_meta(f, key))
        return TF_OK;
    tf_status st = meta_int(f, key, 0, &r.steps);
    snprintf(key, sizeof key, "pattention.%s.tau_ramp_start", prefix);
    if (st == TF_OK)
        st = meta_int(f, key, 0, &r.start);
    snprintf(key, sizeof key, "pattention.%s.tau_ramp_from", prefix);
    if (st == TF_OK)
        st = meta_double(f, key, &r.from);
    snprintf(key, sizeof key, "pattention.%s.tau_ramp_to", prefix);
    if (st == TF_OK)
        st = meta_double(f, key, &r.to);
    if (st != TF_OK)
        return tfi_fail(eb, st, "%s", tf_last_error());
    if (r.steps == 0 || !tfi_tau_ramp_valid(&r))
        return tfi_fail(eb, TF_ERR_FORMAT,
                        "%s: the tau ramp of '%s' (from %g to %g over %lld steps from step "
                        "%lld) is incomplete or invalid", f->name, prefix, r.from, r.to,
                        (long long)r.steps, (long long)r.start);
    *out = r;
    return TF_OK;
}

/* Per-set tau, policy and tau ramp recorded in the file (absent in fixtures
 * and official files: then the model's own values stay). */
typedef struct set_scale {
    int present;
    double tau;
    tf_scale_policy policy;
    tfi_tau_ramp ramp; /* none unless the file records one */
} set_scale;

static tf_status read_scales(const tf_model *m, const tfi_st_file *f, set_scale *out,
                             tfi_errbuf *eb)
{
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++) {
        char prefix[96], key[128];
        set_prefix(m->refs[1 + 2 * i].name, prefix, sizeof prefix);
        snprintf(key, sizeof key, "pattention.%s.tau", prefix);
        const char *tau = tfi_st_meta(f, key);
        out[i].present = tau != NULL;
        if (!tau)
            continue;
        if (!parse_double(tau, &out[i].tau) || !(out[i].tau > 0.0))
            return tfi_fail(eb, TF_ERR_FORMAT, "%s: metadata '%s' = '%s' is not a positive number",
                            f->name, key, tau);
        snprintf(key, sizeof key, "pattention.%s.scale_policy", prefix);
        const char *pol = tfi_st_meta(f, key);
        if (pol && strcmp(pol, "pinned") == 0)
            out[i].policy = TF_SCALE_PINNED;
        else if (!pol || strcmp(pol, "follow_n") == 0)
            out[i].policy = TF_SCALE_FOLLOW_N;
        else
            return tfi_fail(eb, TF_ERR_FORMAT, "%s: metadata '%s' = '%s' is not follow_n or pinned",
                            f->name, key, pol);
        tf_status st = read_ramp(f, prefix, &out[i].ramp, eb);
        if (st != TF_OK)
            return st;
    }
    return TF_OK;
}

/* opt's params with the file's schedule restart (none if it records none)
 * into *p, and the step count of the last reset of the moments. */
static tf_status read_restart(const tfi_st_file *f, const tf_optimizer *opt, int64_t step,
                              tf_optimizer_params *p, int64_t *moments_origin, tfi_errbuf *eb)
{
    *p = opt->p;
    tfi_optimizer_params_no_restart(p);
    *moments_origin = 0;
    tf_status st = meta_int(f, "optimizer.moments_origin", 0, moments_origin);
    if (st != TF_OK)
        return tfi_fail(eb, st, "%s", tf_last_error());
    if (*moments_origin < 0 || *moments_origin > step)
        st = tfi_fail(eb, TF_ERR_FORMAT, "%s: metadata optimizer.moments_origin (%lld) is not "
                      "in [0, optimizer.step = %lld]", f->name, (long long)*moments_origin,
                      (long long)step);
    const char *kind = tfi_st_meta(f, "optimizer.lr_restart");
    if (st != TF_OK || !kind)
        return st;
    if (strcmp(kind, "restart") == 0)
        p->lr_restart = TF_LR_RESTART;
    else if (strcmp(kind, "continue") == 0)
        p->lr_restart = TF_LR_CONTINUE;
    else
        return tfi_fail(eb, TF_ERR_FORMAT,
                        "%s: metadata optimizer.lr_restart = '%s' is not restart or continue",
                        f->name, kind);
    if ((st = meta_int(f, "optimizer.lr_restart_step", 0, &p->lr_restart_step)) ||
        (st = meta_double(f, "optimizer.lr_restart_lr", &p->lr_restart_lr)) ||
        (st = meta_double(f, "optimizer.lr_restart_min_lr", &p->lr_restart_min_lr)) ||
        (st = meta_int(f, "optimizer.lr_restart_warmup_steps", 0,
                       &p->lr_restart_warmup_steps)) ||
        (st = meta_int(f, "optimizer.lr_restart_decay_steps", 0, &p->lr_restart_decay_steps)) ||
        (st = meta_double(f, "optimizer.lr_restart_factor", &p->lr_restart_factor)))
        return tfi_fail(eb, st, "%s", tf_last_error());
    if ((st = tfi_optimizer_params_check(p, eb, "the checkpoint's schedule restart")) != TF_OK)
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: %s", f->name, eb ? eb->msg : tf_last_error());
    return TF_OK;
}

/* optimizer.step: the optimizer's step count, or -1 if the file has no
 * optimizer state. */
static tf_status meta_optimizer_step(const tfi_st_file *f, int64_t *step, tfi_errbuf *eb)
{
    const char *v = tfi_st_meta(f, "optimizer.step");
    *step = -1;
    if (v && (!parse_i64(v, step) || *step < 0))
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: metadata optimizer.step is not a step count",
                        f->name);
    return TF_OK;
}

static tf_status load_into(tf_model *m, tf_optimizer *opt, const tfi_st_file *f)
{
    tfi_errbuf *eb = &m->err;
    const int n = m->nrefs;
    const tfi_st_tensor **src = calloc((size_t)n * 3, sizeof *src);
    set_scale *scales = calloc((size_t)m->p.num_layers * TFI_SETS_PER_LAYER, sizeof *scales);
    tf_status st = TF_OK;
    if (!src || !scales) {
        st = tfi_fail(eb, TF_ERR_NOMEM, "tf_model_load: out of memory");
        goto done;
    }
    /* 1. validate everything */
    for (int i = 0; i < n && st == TF_OK; i++) {
        const tfi_tensor_ref *r = &m->refs[i];
        st = find_checked(m, f, r->name, r->rows, r->cols, &src[i], eb);
        if (st == TF_OK && !src[i])
            st = tfi_fail(eb, TF_ERR_FORMAT, "%s: the checkpoint has no tensor '%s'", f->name,
                          r->name);
    }
    int64_t step = 0, moments_origin = 0;
    tf_optimizer_params opt_params;
    int with_opt = opt && tfi_st_meta(f, "optimizer.step") != NULL;
    if (st == TF_OK && with_opt) {
        st = meta_optimizer_step(f, &step, eb);
        if (st == TF_OK)
            st = read_restart(f, opt, step, &opt_params, &moments_origin, eb);
        for (int i = 0; i < n && st == TF_OK; i++) {
            const tfi_tensor_ref *r = &m->refs[i];
            char name[160];
            for (int which = 0; which < 2 && st == TF_OK; which++) {
                snprintf(name, sizeof name, "optimizer.%s.%s", which ? "exp_avg_sq" : "exp_avg",
                         r->name);
                st = find_checked(m, f, name, r->rows, r->cols, &src[n + 2 * i + which], eb);
                if (st == TF_OK && !src[n + 2 * i + which])
                    st = tfi_fail(eb, TF_ERR_FORMAT, "%s: optimizer state lacks '%s'", f->name,
                                  name);
            }
        }
    }
    if (st == TF_OK)
        st = read_scales(m, f, scales, eb);
    if (st != TF_OK)
        goto done;
    /* 2. copy; the activations of the last forward no longer match */
    m->have_targets = 0;
    for (int i = 0; i < n; i++)
        memcpy(m->refs[i].data, tfi_st_data(f, src[i]), (size_t)src[i]->numel * sizeof(float));
    if (with_opt) {
        for (int i = 0; i < n; i++) {
            memcpy(opt->slots[i].m, tfi_st_data(f, src[n + 2 * i]),
                   (size_t)src[n + 2 * i]->numel * sizeof(float));
            memcpy(opt->slots[i].v, tfi_st_data(f, src[n + 2 * i + 1]),
                   (size_t)src[n + 2 * i + 1]->numel * sizeof(float));
        }
        opt->step = step;
        opt->moments_origin = moments_origin;
        opt->p = opt_params;
    }
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++)
        if (scales[i].present) {
            m->sets[i].tau = scales[i].tau;
            m->sets[i].scale_policy = scales[i].policy;
            m->sets[i].ramp = scales[i].ramp;
        }
done:
    free(src);
    free(scales);
    return st;
}

TF_API tf_status tf_model_load(tf_model *model, tf_optimizer *opt, const char *path)
{
    if (!model)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_model_load: the model is NULL");
    if (!path)
        return tfi_fail(&model->err, TF_ERR_ARGUMENT, "tf_model_load: path is NULL");
    tf_model_num_params(model);
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

/* ---- a model from a checkpoint's own configuration --------------------- */

static tf_status meta_int(const tfi_st_file *f, const char *key, int required, int64_t *out)
{
    const char *s = tfi_st_meta(f, key);
    if (!s)
        return required ? tfi_fail(NULL, TF_ERR_FORMAT,
                                   "%s: no '%s' in the metadata: not a libtokenformer "
                                   "checkpoint (create the model from its config and use "
                                   "tf_model_load)", f->name, key)
                        : TF_OK;
    if (!parse_i64(s, out))
        return tfi_fail(NULL, TF_ERR_FORMAT, "%s: metadata '%s' = '%s' is not an integer",
                        f->name, key, s);
    return TF_OK;
}

static tf_status meta_double(const tfi_st_file *f, const char *key, double *out)
{
    const char *s = tfi_st_meta(f, key);
    if (s && !parse_double(s, out))
        return tfi_fail(NULL, TF_ERR_FORMAT, "%s: metadata '%s' = '%s' is not a number", f->name,
                        key, s);
    return TF_OK;
}

tf_status tfi_params_from_metadata(const tfi_st_file *f, tf_model_params *p)
{
    *p = tf_model_default_params();
    int64_t v[8] = {0};
    const char *req[] = {"num_layers", "hidden_size", "num_attention_heads", "qkv_slot_num",
                         "proj_slot_num", "ffn_slot_num", "vocab_size", "seq_length"};
    for (int i = 0; i < 8; i++) {
        tf_status st = meta_int(f, req[i], 1, &v[i]);
        if (st != TF_OK)
            return st;
        if (v[i] < 1 || v[i] > INT32_MAX)
            return tfi_fail(NULL, TF_ERR_FORMAT, "%s: metadata '%s' = %lld is out of range",
                            f->name, req[i], (long long)v[i]);
    }
    p->num_layers = (int32_t)v[0];
    p->hidden_size = (int32_t)v[1];
    p->num_attention_heads = (int32_t)v[2];
    p->qkv_slot_num = v[3];
    p->proj_slot_num = v[4];
    p->ffn_slot_num = v[5];
    p->vocab_size = v[6];
    p->seq_length = v[7];
    tf_status st;
    if ((st = meta_double(f, "rotary_pct", &p->rotary_pct)) ||
        (st = meta_double(f, "rotary_emb_base", &p->rotary_emb_base)) ||
        (st = meta_double(f, "layernorm_epsilon", &p->layernorm_epsilon)) ||
        (st = meta_double(f, "init_method_std", &p->init_method_std)))
        return st;
    int64_t seed = (int64_t)p->seed;
    if ((st = meta_int(f, "seed", 0, &seed)) != TF_OK)
        return st;
    p->seed = (uint64_t)seed;
    const char *norm = tfi_st_meta(f, "norm_activation_type");
    if (norm) {
        int found = 0;
        for (int t = 0; t < 3; t++)
            if (strcmp(norm, tf_norm_type_name((tf_norm_type)t)) == 0) {
                p->norm = (tf_norm_type)t;
                found = 1;
            }
        if (!found)
            return tfi_fail(NULL, TF_ERR_FORMAT,
                            "%s: metadata norm_activation_type '%s' is not l2_norm_gelu, "
                            "gelu_l2_norm or softmax", f->name, norm);
    }
    const char *pol = tfi_st_meta(f, "scale_policy");
    if (pol)
        p->scale_policy = strcmp(pol, "pinned") == 0 ? TF_SCALE_PINNED : TF_SCALE_FOLLOW_N;
    return tfi_model_params_check(p, NULL);
}

/* Sets grown one by one through their handles may differ from the slot
 * numbers in the metadata (those of layer 0).  The model is created with
 * the smallest size of each kind in the file (min_slots), then each larger
 * set grows to the file's size (fit_sets); load_into checks every shape, and
 * the recorded tau and policy replace the ones set here. */
static void min_slots(const tfi_st_file *f, tf_model_params *p)
{
    static const char *const kinds[TFI_SETS_PER_LAYER] = {
        "attention.query", "attention.key", "attention.value", "attention.proj", "mlp"};
    for (int l = 0; l < p->num_layers; l++)
        for (int s = 0; s < TFI_SETS_PER_LAYER; s++) {
            char name[96];
            snprintf(name, sizeof name, "layers.%d.%s.key_param_tokens", l, kinds[s]);
            const tfi_st_tensor *t = tfi_st_find(f, name);
            int64_t *slot = s == TF_SET_FFN    ? &p->ffn_slot_num
                            : s == TF_SET_PROJ ? &p->proj_slot_num
                                               : &p->qkv_slot_num;
            if (t && t->ndim == 2 && t->shape[0] >= 1 && t->shape[0] < *slot)
                *slot = t->shape[0];
        }
}

static tf_status fit_sets(tf_model *m, const tfi_st_file *f)
{
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++) {
        const tfi_st_tensor *t = tfi_st_find(f, m->refs[1 + 2 * i].name);
        tf_pattention *set = &m->sets[i];
        if (!t || t->ndim != 2 || t->shape[0] <= set->n)
            continue; /* absent or not larger: load_into judges it */
        tf_grow_params g = tf_grow_default_params();
        g.scale_policy = TF_SCALE_FOLLOW_N; /* as if created at that size */
        tfi_grow_plan plan;
        tf_status st = tfi_pattention_grow_prepare(set, t->shape[0], &g, &plan, &m->err);
        if (st != TF_OK)
            return st;
        tfi_pattention_grow_commit(set, &plan);
        set->scale_policy = m->p.scale_policy;
    }
    tf_model_num_params(m); /* refreshes the tensor table */
    return TF_OK;
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
    if ((st = tfi_params_from_metadata(&f, &p)) == TF_OK)
        min_slots(&f, &p);
    if (st == TF_OK && (st = tf_model_create(&p, &m)) == TF_OK) {
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
    *out = m;
    return st;
}

/* ---- what a checkpoint holds, without a model ---------------------------- */

TF_API tf_status tf_checkpoint_info(const char *path, tf_model_params *params,
                                    int64_t *optimizer_step)
{
    if (!path)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_checkpoint_info: path is NULL");
    if (params && (params->struct_size < sizeof(size_t) || params->struct_size > sizeof *params))
        return tfi_fail(NULL, TF_ERR_ARGUMENT,
                        "tf_checkpoint_info: params->struct_size is %zu: initialise the struct "
                        "with tf_model_default_params()", params->struct_size);
    tfi_st_file f;
    tf_status st = tfi_st_open(path, &f, NULL);
    if (st != TF_OK)
        return st;
    tf_model_params p;
    int64_t step = -1;
    st = tfi_params_from_metadata(&f, &p);
    if (st == TF_OK)
        st = meta_optimizer_step(&f, &step, NULL);
    tfi_st_close(&f);
    if (st != TF_OK)
        return st;
    if (params) {
        size_t size = params->struct_size;
        memcpy(params, &p, size);
        params->struct_size = size;
    }
    if (optimizer_step)
        *optimizer_step = step;
    return TF_OK;
}
