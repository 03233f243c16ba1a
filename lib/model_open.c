/*
 * model_open.c -- a model made from a checkpoint, to run it:
 * tf_model_open and tf_model_open_config.
 *
 * The configuration is the file's metadata (checked against a tf_config
 * when one is given) or, for a file that has none (the official names
 * only), the tf_config's.  The model is created at the file's sizes without
 * an initialisation and without gradients (training it allocates them),
 * and the file is read once: its header, then every tensor straight into
 * the model's buffer (io/safetensors_f32.c), so that opening costs about
 * the weights' bytes in memory and one pass over the file.
 *
 * Why pread and not mmap: copying out of a mapping makes the touched file
 * pages part of the process's resident set (twice the weights at the
 * peak, unless dropped as it goes), and keeping float32 tensors mapped
 * would make every model tensor's ownership conditional (growth, loading
 * and freeing replace buffers); either way a file truncated while mapped
 * kills the process with SIGBUS, where a short pread is an error the
 * library reports.  From a warm page cache pread costs one copy, about
 * what the page faults of a mapping cost.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "model_io.h"

/* The model keys on which a configuration and a file's metadata must
 * agree, where the configuration sets them (seed and init_method_std only
 * matter to a fresh model). */
typedef enum { KEY_I32, KEY_I64, KEY_F64, KEY_NORM } key_type;

static const struct {
    const char *key;
    size_t offset;
    key_type type;
} agreed[] = {
    {"num_layers", offsetof(tf_model_params, num_layers), KEY_I32},
    {"hidden_size", offsetof(tf_model_params, hidden_size), KEY_I32},
    {"num_attention_heads", offsetof(tf_model_params, num_attention_heads), KEY_I32},
    {"qkv_slot_num", offsetof(tf_model_params, qkv_slot_num), KEY_I64},
    {"proj_slot_num", offsetof(tf_model_params, proj_slot_num), KEY_I64},
    {"ffn_slot_num", offsetof(tf_model_params, ffn_slot_num), KEY_I64},
    {"rotary_pct", offsetof(tf_model_params, rotary_pct), KEY_F64},
    {"rotary_emb_base", offsetof(tf_model_params, rotary_emb_base), KEY_F64},
    {"norm_activation_type", offsetof(tf_model_params, norm), KEY_NORM},
    {"vocab_size", offsetof(tf_model_params, vocab_size), KEY_I64},
    {"seq_length", offsetof(tf_model_params, seq_length), KEY_I64},
    {"layernorm_epsilon", offsetof(tf_model_params, layernorm_epsilon), KEY_F64},
};

/* A key's value in p, as text for messages; equal texts are equal values
 * (%.17g prints every double distinctly). */
static void key_text(const tf_model_params *p, int i, char *out, size_t cap)
{
    const char *field = (const char *)p + agreed[i].offset;
    int32_t i32;
    int64_t i64;
    double f64;
    tf_norm_type norm;
    switch (agreed[i].type) {
    case KEY_I32:
        memcpy(&i32, field, sizeof i32);
        snprintf(out, cap, "%d", (int)i32);
        break;
    case KEY_I64:
        memcpy(&i64, field, sizeof i64);
        snprintf(out, cap, "%lld", (long long)i64);
        break;
    case KEY_F64:
        memcpy(&f64, field, sizeof f64);
        snprintf(out, cap, "%.17g", f64);
        break;
    case KEY_NORM:
        memcpy(&norm, field, sizeof norm);
        snprintf(out, cap, "%s", tf_norm_type_name(norm));
        break;
    }
}

/* Whether the configuration gives key a value (absent or null: the
 * library's default, which says nothing about the file). */
static int config_sets(const tf_config *cfg, const char *key)
{
    return tfi_config_line(cfg, key) != 0 && !tfi_config_is_null(cfg, key);
}

static tf_status check_against(const tf_config *cfg, const tf_model_params *file,
                               const char *path)
{
    tf_model_params want = tf_model_default_params();
    tf_status st = tf_config_model_params(cfg, &want);
    if (st != TF_OK)
        return st;
    for (int i = 0; i < (int)(sizeof agreed / sizeof agreed[0]); i++) {
        char a[64], b[64];
        key_text(&want, i, a, sizeof a);
        key_text(file, i, b, sizeof b);
        if (config_sets(cfg, agreed[i].key) && strcmp(a, b) != 0)
            return tfi_config_fail(cfg, TF_ERR_CONFIG, tfi_config_line(cfg, agreed[i].key),
                                   "'%s' is %s in the configuration but %s in %s",
                                   agreed[i].key, a, b, path);
    }
    return TF_OK;
}

/* Layers in the file: one past the highest layer number of any tensor. */
static int file_layers(const tfi_st_file *f, int official)
{
    int top = -1;
    for (int i = 0; i < f->ntensors; i++) {
        int l, used = 0;
        const char *name = f->tensors[i].name;
        if (official && sscanf(name, "sequential.%d.attention.%n", &l, &used) == 1 && used)
            l -= 2;
        else if (!official && sscanf(name, "layers.%d.%n", &l, &used) == 1 && used)
            ;
        else
            continue;
        top = l > top ? l : top;
    }
    return top + 1;
}

/* The configuration of f: its metadata's (checked against cfg if given),
 * else cfg's, with the vocabulary from the embedding when cfg has none
 * (the official configs do not: the tokenizer sets it). */
static tf_status params_of(const tfi_st_file *f, int official, const tf_config *cfg,
                           tf_model_params *p)
{
    if (tfi_st_meta(f, "num_layers")) {
        tf_status st = tfi_params_from_metadata(f, p);
        return st == TF_OK && cfg ? check_against(cfg, p, f->name) : st;
    }
    if (!cfg)
        return tfi_fail(NULL, TF_ERR_FORMAT,
                        "%s: no configuration in the metadata (a file with the official tensor "
                        "names only?): open it with its YAML configuration "
                        "(tf_model_open_config, generate --config, Model.open(path, config=...))",
                        f->name);
    *p = tf_model_default_params();
    tf_status st = tf_config_model_params(cfg, p);
    if (st != TF_OK)
        return st;
    if (!config_sets(cfg, "vocab_size")) {
        const tfi_st_tensor *e = tfi_file_tensor(f, official, p->num_layers, "embed.weight");
        if (e && e->ndim == 2 && e->shape[0] >= 1 && e->shape[0] <= INT32_MAX)
            p->vocab_size = e->shape[0];
    }
    const int layers = file_layers(f, official);
    if (layers != p->num_layers)
        return tfi_config_fail(cfg, TF_ERR_CONFIG, tfi_config_line(cfg, "num_layers"),
                               "'num_layers' is %d in the configuration but %s has %d layers",
                               (int)p->num_layers, f->name, layers);
    return tfi_model_params_check(p, NULL);
}

/* Each set's size: the file's (a set grown through its own handle may be
 * larger than the slot numbers of the metadata, which are layer 0's) when
 * the configuration is the file's; the configuration's otherwise, so that
 * a file that disagrees with it fails naming the tensor. */
static void set_sizes(const tfi_st_file *f, int official, const tf_model_params *p,
                      int from_file, int64_t *n)
{
    tf_model_params q = *p;
    for (int i = 0; i < p->num_layers * TFI_SETS_PER_LAYER; i++) {
        char prefix[64], name[96];
        tfi_set_prefix(i, prefix, sizeof prefix);
        snprintf(name, sizeof name, "%s.key_param_tokens", prefix);
        const tfi_st_tensor *t =
            from_file ? tfi_file_tensor(f, official, p->num_layers, name) : NULL;
        n[i] = *tfi_slot_field(&q, i % TFI_SETS_PER_LAYER);
        if (t && t->ndim == 2 && t->shape[0] >= 1)
            n[i] = t->shape[0];
    }
}

/* Every tensor the configuration declares must be in the file with its
 * exact shape: embed [V, d] (a vision model's pos_embed, patch and head
 * sets instead, vp not NULL), final_norm [d], set i's keys and values
 * [n[i], d].  Checked before anything is allocated, so that sizes in the
 * metadata or a configuration cannot make the library allocate more than
 * the file holds; a file stopping short of num_layers is refused at its
 * first missing set.  Any disagreement is the file's: TF_ERR_FORMAT. */
static tf_status check_declared(const tfi_st_file *f, int official, const tf_model_params *p,
                                const tf_vision_params *vp, const int64_t *n)
{
    const int L = p->num_layers;
    const int64_t d = p->hidden_size;
    const tfi_st_tensor *t;
    tf_status st;
    if (vp) { /* pos_embed [P, d], patch_embed [n, p*p*C] -> d, head d -> [n, K] */
        const int L5 = L * TFI_SETS_PER_LAYER;
        const int64_t pd = (int64_t)vp->patch_size * vp->patch_size * vp->channels;
        st = tfi_file_expect(f, 0, L, "pos_embed", p->seq_length, d, &t, NULL);
        if (st == TF_OK)
            st = tfi_file_expect(f, 0, L, "patch_embed.key_param_tokens", n[L5], pd, &t, NULL);
        if (st == TF_OK)
            st = tfi_file_expect(f, 0, L, "patch_embed.value_param_tokens", n[L5], d, &t, NULL);
        if (st == TF_OK)
            st = tfi_file_expect(f, 0, L, "head.key_param_tokens", n[L5 + 1], d, &t, NULL);
        if (st == TF_OK)
            st = tfi_file_expect(f, 0, L, "head.value_param_tokens", n[L5 + 1],
                                 vp->num_classes, &t, NULL);
    } else
        st = tfi_file_expect(f, official, L, "embed.weight", p->vocab_size, d, &t, NULL);
    if (st == TF_OK)
        st = tfi_file_expect(f, official, L, "final_norm.weight", d, 0, &t, NULL);
    if (st == TF_OK)
        st = tfi_file_expect(f, official, L, "final_norm.bias", d, 0, &t, NULL);
    for (int i = 0; i < L * TFI_SETS_PER_LAYER && st == TF_OK; i++) {
        char prefix[64], name[96];
        tfi_set_prefix(i, prefix, sizeof prefix);
        snprintf(name, sizeof name, "%s.key_param_tokens", prefix);
        st = tfi_file_expect(f, official, L, name, n[i], d, &t, NULL);
        snprintf(name, sizeof name, "%s.value_param_tokens", prefix);
        if (st == TF_OK)
            st = tfi_file_expect(f, official, L, name, n[i], d, &t, NULL);
    }
    return st == TF_ERR_SHAPE ? tfi_fail(NULL, TF_ERR_FORMAT, "%s", tf_last_error()) : st;
}

/* The formats tf_model_open reads: its own checkpoints and the fixtures
 * (and files without a tag: the official names, other tools). */
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

/* Builds the model of f (header read) per cfg; errors to tf_last_error(). */
static tf_status open_file(const tfi_st_file *f, const tf_config *cfg, tf_model **out)
{
    const int official = tfi_file_official_names(f);
    tf_model_params p;
    tf_status st = check_format(f);
    if (st == TF_OK)
        st = params_of(f, official, cfg, &p);
    if (st != TF_OK)
        return st;
    const int vision = tfi_meta_is_vision(f);
    tf_vision_params vp;
    if (vision && (st = tfi_vision_params_from_metadata(f, &p, &vp)) != TF_OK)
        return st;
    const int L5 = p.num_layers * TFI_SETS_PER_LAYER;
    int64_t *n = calloc((size_t)L5 + 2, sizeof *n);
    if (!n)
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", f->name);
    set_sizes(f, official, &p, tfi_st_meta(f, "num_layers") != NULL, n);
    if (vision) {
        n[L5] = vp.patch_slot_num;
        n[L5 + 1] = vp.head_slot_num;
    }
    tf_model *m = NULL;
    if ((st = check_declared(f, official, &p, vision ? &vp : NULL, n)) == TF_OK &&
        (st = tfi_model_new_task(&p, vision ? &vp : NULL, n, 0, &m)) == TF_OK &&
        (st = tfi_model_load_from(m, NULL, f)) != TF_OK) {
        tfi_fail(NULL, st, "%s", m->err.msg);
        tf_model_free(m);
        m = NULL;
    }
    free(n);
    *out = m;
    return st;
}

TF_API tf_status tf_model_open_config(const char *path, const tf_config *cfg, tf_model **out)
{
    if (!out || !path)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_model_open: path or out is NULL");
    *out = NULL;
    tfi_st_file f;
    tf_status st = tfi_st_open_header(path, &f, NULL);
    if (st == TF_OK) {
        st = open_file(&f, cfg, out);
        tfi_st_close(&f);
    }
    if (st != TF_OK && !strstr(tf_last_error(), path)) {
        char msg[TFI_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", tf_last_error());
        tfi_fail(NULL, st, "tf_model_open: %s: %s", path, msg);
    }
    return st;
}

TF_API tf_status tf_model_open(const char *path, tf_model **out)
{
    return tf_model_open_config(path, NULL, out);
}
