/*
 * model_meta.c -- a model's configuration in a checkpoint's metadata: the
 * format tag, the official YAML key names, each set's tau and scale policy;
 * written on save, read and validated on load and open (model_io.h).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_io.h"

/* ---- writing ------------------------------------------------------------ */

tf_status tfi_meta_fmt(tfi_st_writer *w, const char *key, const char *fmt, ...)
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

tf_status tfi_model_meta_write(tfi_st_writer *w, const tf_model *m)
{
    const tf_model_params *p = &m->p;
    tf_status st = TF_OK;
    st |= tfi_st_writer_meta(w, "format", TFI_CHECKPOINT_FORMAT);
    st |= tfi_st_writer_meta(w, "library_version", TF_VERSION_STRING);
    st |= tfi_meta_fmt(w, "num_layers", "%d", p->num_layers);
    st |= tfi_meta_fmt(w, "hidden_size", "%d", p->hidden_size);
    st |= tfi_meta_fmt(w, "num_attention_heads", "%d", p->num_attention_heads);
    st |= tfi_meta_fmt(w, "qkv_slot_num", "%lld", (long long)p->qkv_slot_num);
    st |= tfi_meta_fmt(w, "proj_slot_num", "%lld", (long long)p->proj_slot_num);
    st |= tfi_meta_fmt(w, "ffn_slot_num", "%lld", (long long)p->ffn_slot_num);
    st |= tfi_meta_fmt(w, "rotary_pct", "%.17g", p->rotary_pct);
    st |= tfi_meta_fmt(w, "rotary_emb_base", "%.17g", p->rotary_emb_base);
    st |= tfi_st_writer_meta(w, "norm_activation_type", tf_norm_type_name(p->norm));
    st |= tfi_meta_fmt(w, "vocab_size", "%lld", (long long)p->vocab_size);
    st |= tfi_meta_fmt(w, "seq_length", "%lld", (long long)p->seq_length);
    st |= tfi_meta_fmt(w, "layernorm_epsilon", "%.17g", p->layernorm_epsilon);
    st |= tfi_meta_fmt(w, "init_method_std", "%.17g", p->init_method_std);
    st |= tfi_meta_fmt(w, "seed", "%llu", (unsigned long long)p->seed);
    st |= tfi_st_writer_meta(w, "scale_policy", policy_name(p->scale_policy));
    st |= tfi_st_writer_meta(w, "task", m->vis ? "vision" : "language");
    if (m->vis) {
        const tf_vision_params *v = &m->vis->p;
        st |= tfi_meta_fmt(w, "image_size", "%d", v->image_size);
        st |= tfi_meta_fmt(w, "channels", "%d", v->channels);
        st |= tfi_meta_fmt(w, "patch_size", "%d", v->patch_size);
        st |= tfi_meta_fmt(w, "num_classes", "%d", v->num_classes);
        st |= tfi_meta_fmt(w, "patch_slot_num", "%lld", (long long)v->patch_slot_num);
        st |= tfi_meta_fmt(w, "head_slot_num", "%lld", (long long)v->head_slot_num);
    }
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++) {
        char prefix[96], key[128];
        tfi_set_prefix(i, prefix, sizeof prefix);
        snprintf(key, sizeof key, "pattention.%s.tau", prefix);
        st |= tfi_meta_fmt(w, key, "%.17g", m->sets[i].tau);
        snprintf(key, sizeof key, "pattention.%s.scale_policy", prefix);
        st |= tfi_st_writer_meta(w, key, policy_name(m->sets[i].scale_policy));
    }
    return st == TF_OK ? TF_OK : TF_ERR_NOMEM;
}

/* ---- reading ------------------------------------------------------------ */

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

int tfi_parse_i64(const char *s, int64_t *out)
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

/* 0 and *out for "follow_n" or "pinned", else -1. */
static int parse_policy(const char *s, tf_scale_policy *out)
{
    if (strcmp(s, "pinned") == 0)
        *out = TF_SCALE_PINNED;
    else if (strcmp(s, "follow_n") == 0)
        *out = TF_SCALE_FOLLOW_N;
    else
        return -1;
    return 0;
}

tf_status tfi_model_meta_scales(const tf_model *m, const tfi_st_file *f, tfi_set_scale *out,
                                tfi_errbuf *eb)
{
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++) {
        char prefix[96], key[128];
        tfi_set_prefix(i, prefix, sizeof prefix);
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
        out[i].policy = TF_SCALE_FOLLOW_N;
        if (pol && parse_policy(pol, &out[i].policy) != 0)
            return tfi_fail(eb, TF_ERR_FORMAT, "%s: metadata '%s' = '%s' is not follow_n or pinned",
                            f->name, key, pol);
    }
    return TF_OK;
}

tf_status tfi_meta_int(const tfi_st_file *f, const char *key, int required, int64_t *out)
{
    const char *s = tfi_st_meta(f, key);
    if (!s)
        return required ? tfi_fail(NULL, TF_ERR_FORMAT,
                                   "%s: no '%s' in the metadata: not a libtokenformer "
                                   "checkpoint (a file with the official tensor names opens "
                                   "with its YAML configuration: tf_model_open_config)",
                                   f->name, key)
                        : TF_OK;
    if (!tfi_parse_i64(s, out))
        return tfi_fail(NULL, TF_ERR_FORMAT, "%s: metadata '%s' = '%s' is not an integer",
                        f->name, key, s);
    return TF_OK;
}

tf_status tfi_meta_double(const tfi_st_file *f, const char *key, double *out)
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
        tf_status st = tfi_meta_int(f, req[i], 1, &v[i]);
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
    if ((st = tfi_meta_double(f, "rotary_pct", &p->rotary_pct)) ||
        (st = tfi_meta_double(f, "rotary_emb_base", &p->rotary_emb_base)) ||
        (st = tfi_meta_double(f, "layernorm_epsilon", &p->layernorm_epsilon)) ||
        (st = tfi_meta_double(f, "init_method_std", &p->init_method_std)))
        return st;
    int64_t seed = (int64_t)p->seed;
    if ((st = tfi_meta_int(f, "seed", 0, &seed)) != TF_OK)
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
    if (pol && parse_policy(pol, &p->scale_policy) != 0)
        return tfi_fail(NULL, TF_ERR_FORMAT,
                        "%s: metadata scale_policy '%s' is not follow_n or pinned", f->name, pol);
    tfi_errbuf eb;
    if ((st = tfi_model_params_check(p, &eb)) != TF_OK)
        return tfi_fail(NULL, TF_ERR_FORMAT, "%s: metadata: %s", f->name, eb.msg);
    return TF_OK;
}

int tfi_meta_is_vision(const tfi_st_file *f)
{
    const char *task = tfi_st_meta(f, "task");
    return task && strcmp(task, "vision") == 0;
}

tf_status tfi_vision_params_from_metadata(const tfi_st_file *f, const tf_model_params *p,
                                          tf_vision_params *vp)
{
    *vp = tf_vision_default_params();
    const char *keys[6] = {"image_size", "channels", "patch_size", "num_classes",
                           "patch_slot_num", "head_slot_num"};
    int64_t v[6];
    for (int i = 0; i < 6; i++) {
        tf_status st = tfi_meta_int(f, keys[i], 1, &v[i]);
        if (st != TF_OK)
            return st;
        if (v[i] < 1 || v[i] > INT32_MAX)
            return tfi_fail(NULL, TF_ERR_FORMAT, "%s: metadata '%s' = %lld is out of range",
                            f->name, keys[i], (long long)v[i]);
    }
    vp->image_size = (int32_t)v[0];
    vp->channels = (int32_t)v[1];
    vp->patch_size = (int32_t)v[2];
    vp->num_classes = (int32_t)v[3];
    vp->patch_slot_num = v[4];
    vp->head_slot_num = v[5];
    vp->num_layers = p->num_layers;
    vp->hidden_size = p->hidden_size;
    vp->num_attention_heads = p->num_attention_heads;
    vp->qkv_slot_num = p->qkv_slot_num;
    vp->proj_slot_num = p->proj_slot_num;
    vp->ffn_slot_num = p->ffn_slot_num;
    vp->norm = p->norm;
    vp->layernorm_epsilon = p->layernorm_epsilon;
    vp->init_method_std = p->init_method_std;
    vp->seed = p->seed;
    vp->scale_policy = p->scale_policy;
    tfi_errbuf eb;
    tf_status st = tfi_vision_params_check(vp, &eb);
    if (st != TF_OK)
        return tfi_fail(NULL, TF_ERR_FORMAT, "%s: metadata: %s", f->name, eb.msg);
    tf_model_params q = tfi_vision_model_params(vp);
    if (q.seq_length != p->seq_length || q.vocab_size != p->vocab_size)
        return tfi_fail(NULL, TF_ERR_FORMAT,
                        "%s: metadata: seq_length %lld and vocab_size %lld do not match the "
                        "%lld patches and %d classes of the images", f->name,
                        (long long)p->seq_length, (long long)p->vocab_size,
                        (long long)q.seq_length, vp->num_classes);
    return TF_OK;
}
