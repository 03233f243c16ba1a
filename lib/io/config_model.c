/*
 * config_model.c -- the model keys of the official (GPT-NeoX) configs:
 * tf_config_model_params().  Only the config look-ups of io/config.h are
 * used: the tree stays private to the config files.
 */
#include <stdint.h>
#include <string.h>

#include "io/config.h"

/* Official configs take the vocabulary from the GPT-NeoX-20B tokenizer:
 * 50277 tokens padded to a multiple of 128. */
#define TFC_DEFAULT_VOCAB 50304

/* The top-level keys read here (config_keys.c: the library's used keys). */
const char *const tfi_config_model_keys[] = {
    "num_layers", "hidden_size", "num_attention_heads",
    "qkv_slot_num", "proj_slot_num", "ffn_slot_num",
    "rotary_pct", "rotary_emb_base", "norm_activation_type",
    "seq_length", "layernorm_epsilon", "vocab_size", "init_method_std",
    "seed",
    /* GPT-NeoX settings this implementation fixes; checked when present */
    "pos_emb", "norm", "final_norm", "no_weight_tying",
    "hidden_dropout", "attention_dropout",
    NULL,
};

/* An optional or required integer model key in [lo, hi].  Absent or null
 * (GPT-NeoX: "use the default") leaves *val alone and sets *line = 0. */
static tf_status model_int(const tf_config *cfg, const char *key, int required,
                           int64_t lo, int64_t hi, int64_t *val, int *line)
{
    int64_t v = 0;
    int found;
    *line = 0;
    tf_status st = tfi_config_opt_int(cfg, key, &v, &found);
    if (st != TF_OK)
        return st;
    if (!found) {
        if (!required)
            return TF_OK;
        if (tf_config_has(cfg, key))
            return tfi_config_fail(cfg, TF_ERR_CONFIG, tfi_config_line(cfg, key),
                                   "required key '%s' is null", key);
        return tfi_config_fail(cfg, TF_ERR_CONFIG, 0, "missing required key '%s'", key);
    }
    int at = tfi_config_line(cfg, key);
    if (v < lo)
        return tfi_config_fail(cfg, TF_ERR_CONFIG, at, "'%s' (%lld) must be at least %lld",
                               key, (long long)v, (long long)lo);
    if (v > hi)
        return tfi_config_fail(cfg, TF_ERR_CONFIG, at, "'%s' (%lld) is too large (at most %lld)",
                               key, (long long)v, (long long)hi);
    *val = v;
    *line = at;
    return TF_OK;
}

/* An optional finite number; absent or null leaves *val alone. */
static tf_status model_double(const tf_config *cfg, const char *key, double *val, int *line)
{
    int found;
    tf_status st = tfi_config_opt_double(cfg, key, val, &found);
    *line = st == TF_OK && found ? tfi_config_line(cfg, key) : 0;
    return st;
}

/* An optional string; absent or null gives *val = NULL. */
static tf_status model_string(const tf_config *cfg, const char *key, const char **val,
                              int *line)
{
    int found;
    tf_status st = tfi_config_opt_string(cfg, key, val, &found);
    *line = found ? tfi_config_line(cfg, key) : 0;
    return st;
}

/* A GPT-NeoX setting that this implementation supports with one value only. */
static tf_status model_fixed_string(const tf_config *cfg, const char *key,
                                    const char *only, const char *what)
{
    const char *s;
    int line;
    tf_status st = model_string(cfg, key, &s, &line);
    if (st != TF_OK)
        return st;
    if (s && strcmp(s, only) != 0)
        return tfi_config_fail(cfg, TF_ERR_CONFIG, line,
                               "'%s' is '%.64s', but libtokenformer supports only '%s' (%s)",
                               key, s, only, what);
    return TF_OK;
}

static tf_status model_no_dropout(const tf_config *cfg, const char *key)
{
    double p = 0;
    int line;
    tf_status st = model_double(cfg, key, &p, &line);
    if (st != TF_OK)
        return st;
    if (p != 0)
        return tfi_config_fail(cfg, TF_ERR_CONFIG, line,
                               "'%s' is %g, but libtokenformer does not support dropout (it "
                               "must be 0, as in every official config)", key, p);
    return TF_OK;
}

TF_API tf_status tf_config_model_params(const tf_config *cfg, tf_model_params *out)
{
    if (!cfg)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_config_model_params: cfg is NULL");
    if (!out)
        return tfi_config_fail(cfg, TF_ERR_ARGUMENT, 0, "tf_config_model_params: out is NULL");

    tf_model_params p = tf_model_default_params();
    p.struct_size = sizeof p;
    tf_status st;
    int64_t v;
    int line_d, line_h, line;

    /* Integers: required structure first, in the order of the configs. */
    v = p.num_layers;
    if ((st = model_int(cfg, "num_layers", 1, 1, INT32_MAX, &v, &line)) != TF_OK)
        return st;
    p.num_layers = (int32_t)v;
    v = p.hidden_size;
    if ((st = model_int(cfg, "hidden_size", 1, 1, INT32_MAX, &v, &line_d)) != TF_OK)
        return st;
    p.hidden_size = (int32_t)v;
    v = p.num_attention_heads;
    if ((st = model_int(cfg, "num_attention_heads", 1, 1, INT32_MAX, &v, &line_h)) != TF_OK)
        return st;
    p.num_attention_heads = (int32_t)v;
    if ((st = model_int(cfg, "qkv_slot_num", 1, 1, INT64_MAX, &p.qkv_slot_num, &line)) != TF_OK ||
        (st = model_int(cfg, "proj_slot_num", 1, 1, INT64_MAX, &p.proj_slot_num, &line)) != TF_OK ||
        (st = model_int(cfg, "ffn_slot_num", 1, 1, INT64_MAX, &p.ffn_slot_num, &line)) != TF_OK ||
        (st = model_int(cfg, "seq_length", 1, 1, INT64_MAX, &p.seq_length, &line)) != TF_OK)
        return st;
    p.vocab_size = TFC_DEFAULT_VOCAB;
    if ((st = model_int(cfg, "vocab_size", 0, 1, INT64_MAX, &p.vocab_size, &line)) != TF_OK)
        return st;
    v = 0;
    if ((st = model_int(cfg, "seed", 0, 0, INT64_MAX, &v, &line)) != TF_OK)
        return st;
    if (line)
        p.seed = (uint64_t)v;

    /* Numbers. */
    int line_pct;
    if ((st = model_double(cfg, "rotary_pct", &p.rotary_pct, &line_pct)) != TF_OK)
        return st;
    if (!(p.rotary_pct >= 0 && p.rotary_pct <= 1))
        return tfi_config_fail(cfg, TF_ERR_CONFIG, line_pct, "'rotary_pct' (%g) must be in [0, 1]",
                        p.rotary_pct);
    if ((st = model_double(cfg, "rotary_emb_base", &p.rotary_emb_base, &line)) != TF_OK)
        return st;
    if (!(p.rotary_emb_base > 0))
        return tfi_config_fail(cfg, TF_ERR_CONFIG, line, "'rotary_emb_base' (%g) must be > 0",
                        p.rotary_emb_base);
    if ((st = model_double(cfg, "layernorm_epsilon", &p.layernorm_epsilon, &line)) != TF_OK)
        return st;
    if (!(p.layernorm_epsilon > 0))
        return tfi_config_fail(cfg, TF_ERR_CONFIG, line, "'layernorm_epsilon' (%g) must be > 0",
                        p.layernorm_epsilon);
    if ((st = model_double(cfg, "init_method_std", &p.init_method_std, &line)) != TF_OK)
        return st;
    if (!(p.init_method_std > 0))
        return tfi_config_fail(cfg, TF_ERR_CONFIG, line, "'init_method_std' (%g) must be > 0",
                        p.init_method_std);

    /* The Pattention normalisation. */
    const char *s;
    if ((st = model_string(cfg, "norm_activation_type", &s, &line)) != TF_OK)
        return st;
    if (s) {
        if (strcmp(s, "l2_norm_gelu") == 0)
            p.norm = TF_NORM_L2_NORM_GELU;
        else if (strcmp(s, "gelu_l2_norm") == 0)
            p.norm = TF_NORM_GELU_L2_NORM;
        else if (strcmp(s, "softmax") == 0)
            p.norm = TF_NORM_SOFTMAX;
        else
            return tfi_config_fail(cfg, TF_ERR_CONFIG, line,
                            "'norm_activation_type' has unknown value '%.64s' (expected "
                            "'l2_norm_gelu', 'gelu_l2_norm' or 'softmax')",
                            s);
    }

    /* GPT-NeoX settings that this implementation fixes. */
    if ((st = model_fixed_string(cfg, "pos_emb", "rotary", "rotary position embeddings")) != TF_OK ||
        (st = model_fixed_string(cfg, "norm", "layernorm_nonparam",
                                 "LayerNorm without weight and bias in the layers")) != TF_OK ||
        (st = model_fixed_string(cfg, "final_norm", "layernorm",
                                 "a LayerNorm with weight and bias before the output")) != TF_OK)
        return st;
    if (tf_config_has(cfg, "no_weight_tying") && !tfi_config_is_null(cfg, "no_weight_tying")) {
        int untied = 0;
        if ((st = tf_config_get_bool(cfg, "no_weight_tying", &untied)) != TF_OK)
            return st;
        if (untied)
            return tfi_config_fail(cfg, TF_ERR_CONFIG, tfi_config_line(cfg, "no_weight_tying"),
                            "'no_weight_tying' is true, but libtokenformer supports only a "
                            "tied output layer (the embedding): it must be false");
    }
    if ((st = model_no_dropout(cfg, "hidden_dropout")) != TF_OK ||
        (st = model_no_dropout(cfg, "attention_dropout")) != TF_OK)
        return st;

    /* Consistency. */
    if (p.hidden_size % p.num_attention_heads != 0)
        return tfi_config_fail(cfg, TF_ERR_CONFIG, line_d,
                        "'hidden_size' (%d) is not divisible by 'num_attention_heads' (%d)",
                        (int)p.hidden_size, (int)p.num_attention_heads);
    int64_t head_dim = p.hidden_size / p.num_attention_heads;
    int64_t rot = p.rotary_pct == 1.0 ? head_dim : (int64_t)((double)head_dim * p.rotary_pct);
    if (rot % 2 != 0)
        return tfi_config_fail(cfg, TF_ERR_CONFIG, line_pct ? line_pct : line_h,
                        "'rotary_pct' (%g%s) gives %lld rotary dimensions per head "
                        "(head_dim %lld = %d / %d), but rotary needs an even number",
                        p.rotary_pct, line_pct ? "" : ", the default", (long long)rot,
                        (long long)head_dim, (int)p.hidden_size, (int)p.num_attention_heads);

    /* write only what the caller's struct holds (an older, shorter layout) */
    return tfi_params_out(out, &p, sizeof p, TFI_PARAMS_MIN(tf_model_params, num_layers),
                          "tf_config_model_params", "tf_model_params",
                          tfi_config_eb(cfg));
}

