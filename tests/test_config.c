/* test_config.c -- YAML configurations: the official configs, the fixture
 * configs, look-ups, typing, model-parameter validation and errors. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokenformer.h"

#define CFG_DIR "tests/data/configs/"

static tf_config *load_ok(const char *path)
{
    tf_config *cfg = NULL;
    tf_status st = tf_config_load(path, &cfg);
    ck_assert_msg(st == TF_OK, "%s: %s", path, tf_last_error());
    ck_assert_ptr_nonnull(cfg);
    return cfg;
}

static tf_config *parse_ok(const char *text)
{
    tf_config *cfg = NULL;
    tf_status st = tf_config_parse(text, strlen(text), &cfg);
    ck_assert_msg(st == TF_OK, "%s\n--- in:\n%s", tf_last_error(), text);
    ck_assert_ptr_nonnull(cfg);
    return cfg;
}

static int is_ignored(const tf_config *cfg, const char *key)
{
    for (int i = 0; i < tf_config_num_ignored(cfg); i++)
        if (strcmp(tf_config_ignored_key(cfg, i), key) == 0)
            return 1;
    return 0;
}

/* A tf_model_params filled with a recognisable pattern: a failing call must
 * leave it as it is. */
/* Garbage in every field but struct_size, which says "the whole struct". */
static void sentinel(tf_model_params *p)
{
    memset(p, 0xA5, sizeof *p);
    p->struct_size = sizeof *p;
}

static void assert_sentinel(const tf_model_params *p)
{
    tf_model_params s;
    sentinel(&s);
    ck_assert_msg(memcmp(p, &s, sizeof s) == 0, "params changed by a failing call");
}

/* ---- the official configs ------------------------------------------------ */

static const struct official {
    const char *file;
    int L, d, h;
    int64_t qkv, proj, ffn, seq;
} officials[] = {
    {"150M_eval.yml", 12, 768, 12, 768, 768, 3072, 2048},
    {"150M_train_pile.yml", 12, 768, 12, 768, 768, 3072, 2048},
    {"450M_eval.yml", 24, 1024, 16, 1024, 1024, 4096, 2048},
    {"900M_eval.yml", 32, 1280, 16, 1280, 1280, 5120, 2048},
    {"1-5B_eval.yml", 40, 1536, 16, 1536, 1536, 6144, 2048},
    {"1-5B_train_pile.yml", 40, 1536, 16, 1536, 1536, 6144, 2048},
    {"354M_train_openwebtext2_basemodel.yml", 24, 1024, 16, 768, 768, 3072, 1024},
    {"354M_to_757M_train_openwebtext2_60k.yml", 24, 1024, 16, 1792, 1792, 7168, 1024},
};
#define NUM_OFFICIAL ((int)(sizeof officials / sizeof officials[0]))

START_TEST(test_official_dims)
{
    const struct official *o = &officials[_i];
    char path[256];
    snprintf(path, sizeof path, CFG_DIR "%s", o->file);
    tf_config *cfg = load_ok(path);
    tf_model_params p = tf_model_default_params();
    sentinel(&p);
    tf_status st = tf_config_model_params(cfg, &p);
    ck_assert_msg(st == TF_OK, "%s: %s", path, tf_last_error());
    ck_assert_uint_eq(p.struct_size, sizeof p);
    ck_assert_int_eq(p.num_layers, o->L);
    ck_assert_int_eq(p.hidden_size, o->d);
    ck_assert_int_eq(p.num_attention_heads, o->h);
    ck_assert_int_eq(p.qkv_slot_num, o->qkv);
    ck_assert_int_eq(p.proj_slot_num, o->proj);
    ck_assert_int_eq(p.ffn_slot_num, o->ffn);
    ck_assert_int_eq(p.seq_length, o->seq);
    ck_assert_int_eq(p.vocab_size, 50304); /* no vocab_size in official configs */
    ck_assert_int_eq(p.norm, TF_NORM_L2_NORM_GELU);
    ck_assert_double_eq(p.rotary_pct, 0.25);
    /* Keys the official configs do not carry keep their defaults. */
    tf_model_params def = tf_model_default_params();
    ck_assert_double_eq(p.rotary_emb_base, def.rotary_emb_base);
    ck_assert_double_eq(p.layernorm_epsilon, def.layernorm_epsilon);
    ck_assert_double_eq(p.init_method_std, def.init_method_std);
    ck_assert_uint_eq(p.seed, def.seed);
    ck_assert_int_eq(p.scale_policy, def.scale_policy);

    /* Ignored keys: DeepSpeed, logging, data; never the model's or the
     * optimizer's. */
    ck_assert_int_gt(tf_config_num_ignored(cfg), 30);
    ck_assert(is_ignored(cfg, "zero_optimization"));
    ck_assert(is_ignored(cfg, "fp16"));
    ck_assert(is_ignored(cfg, "launcher"));
    ck_assert(is_ignored(cfg, "tokenizer-type"));
    ck_assert(is_ignored(cfg, "attention_config"));
    static const char *const used[] = {
        "num_layers", "hidden_size", "num_attention_heads", "qkv_slot_num",
        "proj_slot_num", "ffn_slot_num", "seq_length", "rotary_pct",
        "norm_activation_type", "pos_emb", "norm", "final_norm", "no_weight_tying",
        "hidden_dropout", "attention_dropout",
        "optimizer", "min_lr", "weight_decay", "gradient_clipping",
        "gradient_accumulation_steps", "train_iters", "lr_decay_iters", "lr_decay_style",
        "warmup"};
    for (size_t i = 0; i < sizeof used / sizeof used[0]; i++)
        ck_assert_msg(!is_ignored(cfg, used[i]), "%s: '%s' reported as ignored", path,
                      used[i]);
    /* keys the library does not read are ignored until a program declares
     * them (a trainer's batch size) */
    ck_assert(is_ignored(cfg, "train_micro_batch_size_per_gpu"));
    ck_assert(is_ignored(cfg, "max_position_embeddings"));
    const int before = tf_config_num_ignored(cfg);
    static const char *const trainer[] = {"train-micro-batch-size-per-gpu"};
    ck_assert_int_eq(tf_config_use_keys(cfg, trainer, 1), TF_OK);
    ck_assert(!is_ignored(cfg, "train_micro_batch_size_per_gpu"));
    ck_assert_int_eq(tf_config_num_ignored(cfg), before - 1);
    /* File order: the first two keys of every official config. */
    ck_assert_str_eq(tf_config_ignored_key(cfg, 0), "pipe_parallel_size");
    ck_assert_str_eq(tf_config_ignored_key(cfg, 1), "model_parallel_size");
    ck_assert_ptr_null(tf_config_ignored_key(cfg, -1));
    ck_assert_ptr_null(tf_config_ignored_key(cfg, tf_config_num_ignored(cfg)));

    /* The optimizer block, through dotted paths. */
    double x;
    ck_assert_int_eq(tf_config_get_double(cfg, "optimizer.params.betas.0", &x), TF_OK);
    ck_assert_double_eq_tol(x, 0.9, 1e-15);
    ck_assert_int_eq(tf_config_get_double(cfg, "optimizer.params.betas.1", &x), TF_OK);
    ck_assert_double_eq_tol(x, 0.95, 1e-15);
    ck_assert_int_eq(tf_config_get_double(cfg, "optimizer.params.eps", &x), TF_OK);
    ck_assert_double_eq_tol(x, 1e-8, 1e-22);
    const char *s;
    ck_assert_int_eq(tf_config_get_string(cfg, "optimizer.type", &s), TF_OK);
    ck_assert_str_eq(s, "Adam");
    tf_config_free(cfg);
}
END_TEST

START_TEST(test_official_150m_values)
{
    tf_config *cfg = load_ok(CFG_DIR "150M_train_pile.yml");
    double x;
    int64_t i;
    int b;
    const char *s;
    ck_assert_int_eq(tf_config_get_double(cfg, "optimizer.params.lr", &x), TF_OK);
    ck_assert_double_eq_tol(x, 0.0006, 1e-18);
    ck_assert_int_eq(tf_config_get_double(cfg, "min_lr", &x), TF_OK);
    ck_assert_double_eq_tol(x, 0.00006, 1e-18);
    ck_assert_int_eq(tf_config_get_double(cfg, "warmup", &x), TF_OK);
    ck_assert_double_eq_tol(x, 0.01, 1e-18);
    ck_assert_int_eq(tf_config_get_double(cfg, "gradient_clipping", &x), TF_OK);
    ck_assert_double_eq(x, 1.0);
    ck_assert_int_eq(tf_config_get_int(cfg, "train_iters", &i), TF_OK);
    ck_assert_int_eq(i, 143000);
    ck_assert_int_eq(tf_config_get_int(cfg, "zero_optimization.stage", &i), TF_OK);
    ck_assert_int_eq(i, 1);
    ck_assert_int_eq(tf_config_get_int(cfg, "zero_optimization.allgather_bucket_size", &i),
                     TF_OK);
    ck_assert_int_eq(i, 500000000);
    ck_assert_int_eq(tf_config_get_int(cfg, "extra_save_iters.10", &i), TF_OK);
    ck_assert_int_eq(i, 512);
    ck_assert_int_eq(tf_config_get_string(cfg, "lr_decay_style", &s), TF_OK);
    ck_assert_str_eq(s, "cosine");
    /* Python-style booleans, and YAML's. */
    b = -1;
    ck_assert_int_eq(tf_config_get_bool(cfg, "adlr_autoresume", &b), TF_OK);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(tf_config_get_bool(cfg, "checkpoint_validation_with_forward_pass", &b),
                     TF_OK);
    ck_assert_int_eq(b, 0);
    ck_assert_int_eq(tf_config_get_bool(cfg, "use_wandb", &b), TF_OK);
    ck_assert_int_eq(b, 0);
    ck_assert_int_eq(tf_config_get_bool(cfg, "fp16.enabled", &b), TF_OK);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(tf_config_get_bool(cfg, "no_weight_tying", &b), TF_OK);
    ck_assert_int_eq(b, 0);
    /* An integer is a valid double; a double is not an integer. */
    ck_assert_int_eq(tf_config_get_double(cfg, "train_iters", &x), TF_OK);
    ck_assert_double_eq(x, 143000.0);
    i = 77;
    ck_assert_int_eq(tf_config_get_int(cfg, "min_lr", &i), TF_ERR_CONFIG);
    ck_assert_int_eq(i, 77);
    ck_assert_ptr_nonnull(strstr(tf_config_errmsg(cfg), "'min_lr'"));
    ck_assert_ptr_nonnull(strstr(tf_config_errmsg(cfg), CFG_DIR "150M_train_pile.yml:42:"));
    ck_assert_str_eq(tf_config_errmsg(cfg), tf_last_error());
    tf_config_free(cfg);
}
END_TEST

START_TEST(test_hyphen_underscore)
{
    tf_config *cfg = load_ok(CFG_DIR "150M_eval.yml");
    const char *s = NULL;
    ck_assert_int_eq(tf_config_get_string(cfg, "tokenizer_type", &s), TF_OK);
    ck_assert_str_eq(s, "HFTokenizer");
    ck_assert_int_eq(tf_config_get_string(cfg, "tokenizer-type", &s), TF_OK);
    ck_assert_str_eq(s, "HFTokenizer");
    ck_assert_int_eq(tf_config_get_string(cfg, "vocab_file", &s), TF_OK);
    ck_assert_str_eq(s, "./tokenizer.json");
    ck_assert(tf_config_has(cfg, "vocab-file"));
    ck_assert(tf_config_has(cfg, "hidden-size"));
    ck_assert(tf_config_has(cfg, "optimizer.params.betas.1"));
    ck_assert(tf_config_has(cfg, "zero-optimization.allgather-bucket-size"));
    ck_assert(!tf_config_has(cfg, "hidden.size"));
    tf_config_free(cfg);

    /* Model keys written with hyphens. */
    cfg = parse_ok("{'num-layers': 3, 'hidden-size': 32, 'num-attention-heads': 2,\n"
                   " 'qkv-slot-num': 8, 'proj-slot-num': 9, 'ffn-slot-num': 10,\n"
                   " 'seq-length': 12, 'vocab-size': 100, 'layernorm-epsilon': 1e-6}\n");
    tf_model_params p = tf_model_default_params();
    ck_assert_int_eq(tf_config_model_params(cfg, &p), TF_OK);
    ck_assert_int_eq(p.num_layers, 3);
    ck_assert_int_eq(p.hidden_size, 32);
    ck_assert_int_eq(p.num_attention_heads, 2);
    ck_assert_int_eq(p.qkv_slot_num, 8);
    ck_assert_int_eq(p.proj_slot_num, 9);
    ck_assert_int_eq(p.ffn_slot_num, 10);
    ck_assert_int_eq(p.seq_length, 12);
    ck_assert_int_eq(p.vocab_size, 100);
    ck_assert_double_eq(p.layernorm_epsilon, 1e-6);
    ck_assert_int_eq(tf_config_num_ignored(cfg), 0);
    tf_config_free(cfg);
}
END_TEST

START_TEST(test_text_generation)
{
    tf_config *cfg = load_ok(CFG_DIR "text_generation.yml");
    tf_model_params p = tf_model_default_params();
    sentinel(&p);
    ck_assert_int_eq(tf_config_model_params(cfg, &p), TF_ERR_CONFIG);
    assert_sentinel(&p);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "missing required key 'num_layers'"));
    ck_assert_msg(strncmp(tf_last_error(), CFG_DIR "text_generation.yml", 30) == 0, "%s",
                  tf_last_error());
    ck_assert_str_eq(tf_config_errmsg(cfg), tf_last_error());
    /* Its keys are all ignored by the model; the look-ups still work
     * (including the trailing comma before the closing brace). */
    ck_assert_int_eq(tf_config_num_ignored(cfg), 10);
    ck_assert_str_eq(tf_config_ignored_key(cfg, 0), "text_gen_type");
    ck_assert_str_eq(tf_config_ignored_key(cfg, 9), "sample_output_file");
    const char *s;
    ck_assert_int_eq(tf_config_get_string(cfg, "prompt_end", &s), TF_OK);
    ck_assert_str_eq(s, "\n");
    int64_t i;
    ck_assert_int_eq(tf_config_get_int(cfg, "maximum_tokens", &i), TF_OK);
    ck_assert_int_eq(i, 102);
    double x;
    ck_assert_int_eq(tf_config_get_double(cfg, "top_p", &x), TF_OK);
    ck_assert_double_eq(x, 0.0);
    int b = 1;
    ck_assert_int_eq(tf_config_get_bool(cfg, "recompute", &b), TF_OK);
    ck_assert_int_eq(b, 0);
    tf_config_free(cfg);
}
END_TEST

/* ---- the fixture configs ------------------------------------------------- */

START_TEST(test_fixture_configs)
{
    tf_config *cfg = load_ok("tests/data/model_tiny.yml");
    tf_model_params p = tf_model_default_params();
    ck_assert_int_eq(tf_config_model_params(cfg, &p), TF_OK);
    ck_assert_int_eq(p.num_layers, 2);
    ck_assert_int_eq(p.hidden_size, 64);
    ck_assert_int_eq(p.num_attention_heads, 4);
    ck_assert_int_eq(p.qkv_slot_num, 48);
    ck_assert_int_eq(p.proj_slot_num, 40);
    ck_assert_int_eq(p.ffn_slot_num, 96);
    ck_assert_int_eq(p.seq_length, 16);
    ck_assert_int_eq(p.vocab_size, 256);
    ck_assert_double_eq(p.rotary_pct, 0.25);
    ck_assert_double_eq(p.rotary_emb_base, 10000.0);
    ck_assert_double_eq(p.layernorm_epsilon, 1e-5);
    ck_assert_int_eq(p.norm, TF_NORM_L2_NORM_GELU);
    double x;
    ck_assert_int_eq(tf_config_get_double(cfg, "optimizer.params.betas.1", &x), TF_OK);
    ck_assert_double_eq_tol(x, 0.95, 1e-15);
    ck_assert_int_eq(tf_config_get_double(cfg, "optimizer.params.eps", &x), TF_OK);
    ck_assert_double_eq_tol(x, 1e-8, 1e-22);
    int64_t n;
    ck_assert_int_eq(tf_config_get_int(cfg, "attention_config.0.1", &n), TF_OK);
    ck_assert_int_eq(n, 2);
    const char *s;
    ck_assert_int_eq(tf_config_get_string(cfg, "attention_config.0.0.0", &s), TF_OK);
    ck_assert_str_eq(s, "tokenformer");
    ck_assert(is_ignored(cfg, "attention_config"));
    ck_assert(is_ignored(cfg, "init_method"));
    ck_assert(!is_ignored(cfg, "vocab_size"));
    ck_assert(!is_ignored(cfg, "optimizer"));
    tf_config_free(cfg);

    cfg = load_ok("tests/data/model_softmax.yml");
    ck_assert_int_eq(tf_config_model_params(cfg, &p), TF_OK);
    ck_assert_int_eq(p.num_layers, 1);
    ck_assert_int_eq(p.norm, TF_NORM_SOFTMAX);
    ck_assert_double_eq(p.rotary_pct, 1.0);
    ck_assert_int_eq(p.vocab_size, 256);
    tf_config_free(cfg);

    cfg = load_ok("tests/data/grow_tiny.yml");
    ck_assert_int_eq(tf_config_model_params(cfg, &p), TF_OK);
    ck_assert_int_eq(p.qkv_slot_num, 48);
    ck_assert_int_eq(p.proj_slot_num, 40);
    ck_assert_int_eq(p.ffn_slot_num, 96);
    ck_assert_int_eq(tf_config_get_int(cfg, "grown_qkv_slot_num", &n), TF_OK);
    ck_assert_int_eq(n, 64);
    ck_assert_int_eq(tf_config_get_int(cfg, "grown_proj_slot_num", &n), TF_OK);
    ck_assert_int_eq(n, 56);
    ck_assert_int_eq(tf_config_get_int(cfg, "grown-ffn-slot-num", &n), TF_OK);
    ck_assert_int_eq(n, 128);
    ck_assert(is_ignored(cfg, "grown_qkv_slot_num"));
    ck_assert(tf_config_has(cfg, "grown_ffn_slot_num"));
    ck_assert(!tf_config_has(cfg, "optimizer"));
    tf_config_free(cfg);
}
END_TEST

/* ---- typing and look-ups ------------------------------------------------- */

START_TEST(test_typing)
{
    tf_config *cfg = parse_ok("# typing\n"                 /* 1 */
                              "a: 12\n"                     /* 2 */
                              "b: '12'\n"                   /* 3 */
                              "c: 1.0e3\n"                  /* 4 */
                              "d: -7\n"                     /* 5 */
                              "e: 99999999999999999999\n"   /* 6 */
                              "f: True\n"                   /* 7 */
                              "g: NO\n"                     /* 8 */
                              "h: \"true\"\n"               /* 9 */
                              "i: null\n"                   /* 10 */
                              "j: [1, 2.5, x]\n"            /* 11 */
                              "k: {m: {n: 3}}\n"            /* 12 */
                              "l: 0x10\n"                   /* 13 */
                              "m: nan\n"                    /* 14 */
                              "n: .inf\n"                   /* 15 */
                              "o: 1.0e-8\n"                 /* 16 */
                              "p: ~\n"                      /* 17 */
                              "q: !!str 5\n"                /* 18 */
                              "a.b: 4\n");                  /* 19 */
    int64_t i;
    double x;
    int b;
    const char *s;

    ck_assert_int_eq(tf_config_get_int(cfg, "a", &i), TF_OK);
    ck_assert_int_eq(i, 12);
    ck_assert_int_eq(tf_config_get_double(cfg, "a", &x), TF_OK);
    ck_assert_double_eq(x, 12.0);
    ck_assert_int_eq(tf_config_get_string(cfg, "a", &s), TF_OK);
    ck_assert_str_eq(s, "12");
    ck_assert_int_eq(tf_config_get_bool(cfg, "a", &b), TF_ERR_CONFIG);

    /* A quoted scalar is a string, never a number. */
    ck_assert_int_eq(tf_config_get_int(cfg, "b", &i), TF_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(tf_config_errmsg(cfg), "<string>:3: 'b'"));
    ck_assert_ptr_nonnull(strstr(tf_config_errmsg(cfg), "quoted string"));
    ck_assert_int_eq(tf_config_get_double(cfg, "b", &x), TF_ERR_CONFIG);
    ck_assert_int_eq(tf_config_get_string(cfg, "b", &s), TF_OK);
    ck_assert_str_eq(s, "12");
    ck_assert_int_eq(tf_config_get_int(cfg, "q", &i), TF_ERR_CONFIG);
    ck_assert_int_eq(tf_config_get_string(cfg, "q", &s), TF_OK);
    ck_assert_str_eq(s, "5");

    ck_assert_int_eq(tf_config_get_int(cfg, "c", &i), TF_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(tf_config_errmsg(cfg), "<string>:4: 'c' (1.0e3) is a float"));
    ck_assert_int_eq(tf_config_get_double(cfg, "c", &x), TF_OK);
    ck_assert_double_eq(x, 1000.0);
    ck_assert_int_eq(tf_config_get_int(cfg, "d", &i), TF_OK);
    ck_assert_int_eq(i, -7);
    ck_assert_int_eq(tf_config_get_int(cfg, "e", &i), TF_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(tf_config_errmsg(cfg), "out of range"));
    ck_assert_int_eq(tf_config_get_double(cfg, "o", &x), TF_OK);
    ck_assert_double_eq(x, 1e-8);

    ck_assert_int_eq(tf_config_get_bool(cfg, "f", &b), TF_OK);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(tf_config_get_bool(cfg, "g", &b), TF_OK);
    ck_assert_int_eq(b, 0);
    ck_assert_int_eq(tf_config_get_bool(cfg, "h", &b), TF_ERR_CONFIG);
    ck_assert_int_eq(tf_config_get_int(cfg, "f", &i), TF_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(tf_config_errmsg(cfg), "boolean"));

    /* Null: present, but no value of any type. */
    ck_assert(tf_config_has(cfg, "i"));
    ck_assert_int_eq(tf_config_get_int(cfg, "i", &i), TF_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(tf_config_errmsg(cfg), "<string>:10: 'i' is null"));
    ck_assert_int_eq(tf_config_get_string(cfg, "p", &s), TF_ERR_CONFIG);

    /* Sequences and nested mappings. */
    ck_assert_int_eq(tf_config_get_int(cfg, "j.0", &i), TF_OK);
    ck_assert_int_eq(i, 1);
    ck_assert_int_eq(tf_config_get_double(cfg, "j.1", &x), TF_OK);
    ck_assert_double_eq(x, 2.5);
    ck_assert_int_eq(tf_config_get_string(cfg, "j.2", &s), TF_OK);
    ck_assert_str_eq(s, "x");
    ck_assert_int_eq(tf_config_get_int(cfg, "j.3", &i), TF_ERR_NOT_FOUND);
    ck_assert_int_eq(tf_config_get_int(cfg, "j.x", &i), TF_ERR_NOT_FOUND);
    ck_assert_int_eq(tf_config_get_int(cfg, "j.-1", &i), TF_ERR_NOT_FOUND);
    ck_assert_int_eq(tf_config_get_int(cfg, "j", &i), TF_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(tf_config_errmsg(cfg), "<string>:11: 'j' is a sequence"));
    ck_assert_int_eq(tf_config_get_int(cfg, "k.m.n", &i), TF_OK);
    ck_assert_int_eq(i, 3);
    ck_assert_int_eq(tf_config_get_string(cfg, "k.m", &s), TF_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(tf_config_errmsg(cfg), "'k.m' is a mapping"));
    ck_assert_int_eq(tf_config_get_int(cfg, "k.m.n.o", &i), TF_ERR_NOT_FOUND);
    ck_assert_int_eq(tf_config_get_int(cfg, "a.b", &i), TF_OK); /* a key with a dot */
    ck_assert_int_eq(i, 4);

    /* No hex, no bare nan; YAML's .inf is a number. */
    ck_assert_int_eq(tf_config_get_int(cfg, "l", &i), TF_ERR_CONFIG);
    ck_assert_int_eq(tf_config_get_double(cfg, "l", &x), TF_ERR_CONFIG);
    ck_assert_int_eq(tf_config_get_double(cfg, "m", &x), TF_ERR_CONFIG);
    ck_assert_int_eq(tf_config_get_double(cfg, "n", &x), TF_OK);
    ck_assert(isinf(x) && x > 0);

    /* Absent keys; a failed look-up leaves *out alone and is recorded. */
    i = 5;
    ck_assert_int_eq(tf_config_get_int(cfg, "zz", &i), TF_ERR_NOT_FOUND);
    ck_assert_int_eq(i, 5);
    ck_assert_ptr_nonnull(strstr(tf_config_errmsg(cfg), "'zz'"));
    ck_assert_str_eq(tf_config_errmsg(cfg), tf_last_error());
    ck_assert(!tf_config_has(cfg, "zz"));
    ck_assert(!tf_config_has(cfg, ""));

    /* Every top-level key is ignored here (none is a model key). */
    ck_assert_int_eq(tf_config_num_ignored(cfg), 18);
    tf_config_free(cfg);
}
END_TEST

START_TEST(test_null_arguments)
{
    tf_config_free(NULL);
    ck_assert_str_eq(tf_config_errmsg(NULL), "");
    ck_assert_int_eq(tf_config_num_ignored(NULL), 0);
    ck_assert_ptr_null(tf_config_ignored_key(NULL, 0));
    ck_assert_int_eq(tf_config_has(NULL, "a"), 0);
    int64_t i;
    double x;
    int b;
    const char *s;
    tf_model_params p = tf_model_default_params();
    ck_assert_int_eq(tf_config_get_int(NULL, "a", &i), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_config_model_params(NULL, &p), TF_ERR_ARGUMENT);

    tf_config *cfg = (tf_config *)1;
    ck_assert_int_eq(tf_config_load(NULL, &cfg), TF_ERR_ARGUMENT);
    ck_assert_ptr_null(cfg);
    ck_assert_int_eq(tf_config_load("x.yml", NULL), TF_ERR_ARGUMENT);
    cfg = (tf_config *)1;
    ck_assert_int_eq(tf_config_parse(NULL, 0, &cfg), TF_ERR_ARGUMENT);
    ck_assert_ptr_null(cfg);

    cfg = parse_ok("{a: 1}");
    ck_assert_str_eq(tf_config_errmsg(cfg), "");
    ck_assert_int_eq(tf_config_has(cfg, NULL), 0);
    ck_assert_int_eq(tf_config_get_int(cfg, NULL, &i), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_config_get_int(cfg, "a", NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_config_get_double(cfg, "a", NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_config_get_bool(cfg, "a", NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_config_get_string(cfg, "a", NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_config_model_params(cfg, NULL), TF_ERR_ARGUMENT);
    (void)x;
    (void)b;
    (void)s;
    tf_config_free(cfg);
}
END_TEST

/* ---- model parameters: validation ---------------------------------------- */

/* A valid model config, one key per line: key k of base[] is on line k + 2. */
static const char *const base[][2] = {
    {"num_layers", "2"},
    {"hidden_size", "64"},
    {"num_attention_heads", "4"},
    {"qkv_slot_num", "48"},
    {"proj_slot_num", "40"},
    {"ffn_slot_num", "96"},
    {"seq_length", "16"},
    {"rotary_pct", "0.25"},
    {"rotary_emb_base", "500"},
    {"norm_activation_type", "\"gelu_l2_norm\""},
    {"layernorm_epsilon", "1.0e-6"},
    {"vocab_size", "300"},
    {"init_method_std", "0.01"},
    {"seed", "7"},
    {"pos_emb", "\"rotary\""},
    {"norm", "\"layernorm_nonparam\""},
    {"final_norm", "\"layernorm\""},
    {"no_weight_tying", "False"},
    {"hidden_dropout", "0"},
    {"attention_dropout", "0.0"},
    {"max_position_embeddings", "16"},
};
#define NUM_BASE ((int)(sizeof base / sizeof base[0]))

static int base_line(const char *key)
{
    for (int k = 0; k < NUM_BASE; k++)
        if (strcmp(base[k][0], key) == 0)
            return k + 2;
    ck_abort_msg("no base key %s", key);
    return 0;
}

/* The base config with up to two keys replaced (value NULL: key dropped). */
static void make_config(char *buf, size_t cap, const char *k1, const char *v1,
                        const char *k2, const char *v2)
{
    size_t len = (size_t)snprintf(buf, cap, "{\n");
    for (int k = 0; k < NUM_BASE; k++) {
        const char *v = base[k][1];
        int drop = 0;
        if (k1 && strcmp(base[k][0], k1) == 0) {
            v = v1;
            drop = !v1;
        } else if (k2 && strcmp(base[k][0], k2) == 0) {
            v = v2;
            drop = !v2;
        }
        if (drop)
            len += (size_t)snprintf(buf + len, cap - len, "  # dropped\n");
        else
            len += (size_t)snprintf(buf + len, cap - len, "  \"%s\": %s,\n", base[k][0], v);
        ck_assert_uint_lt(len, cap);
    }
    snprintf(buf + len, cap - len, "}\n");
}

START_TEST(test_model_params_base)
{
    char text[4096];
    make_config(text, sizeof text, NULL, NULL, NULL, NULL);
    tf_config *cfg = parse_ok(text);
    tf_model_params p = tf_model_default_params();
    ck_assert_int_eq(tf_config_model_params(cfg, &p), TF_OK);
    ck_assert_int_eq(p.num_layers, 2);
    ck_assert_int_eq(p.hidden_size, 64);
    ck_assert_int_eq(p.num_attention_heads, 4);
    ck_assert_int_eq(p.qkv_slot_num, 48);
    ck_assert_int_eq(p.proj_slot_num, 40);
    ck_assert_int_eq(p.ffn_slot_num, 96);
    ck_assert_int_eq(p.seq_length, 16);
    ck_assert_double_eq(p.rotary_pct, 0.25);
    ck_assert_double_eq(p.rotary_emb_base, 500.0);
    ck_assert_int_eq(p.norm, TF_NORM_GELU_L2_NORM);
    ck_assert_double_eq(p.layernorm_epsilon, 1e-6);
    ck_assert_int_eq(p.vocab_size, 300);
    ck_assert_double_eq(p.init_method_std, 0.01);
    ck_assert_uint_eq(p.seed, 7);
    /* the one key the library does not read */
    ck_assert_int_eq(tf_config_num_ignored(cfg), 1);
    ck_assert_str_eq(tf_config_ignored_key(cfg, 0), "max_position_embeddings");
    tf_config_free(cfg);

    /* Optional keys dropped, or null: the defaults (vocab 50304). */
    const char *optional[] = {"rotary_pct", "rotary_emb_base", "norm_activation_type",
                              "layernorm_epsilon", "vocab_size", "init_method_std",
                              "seed", "pos_emb", "norm", "final_norm",
                              "no_weight_tying", "hidden_dropout", "attention_dropout",
                              "max_position_embeddings"};
    tf_model_params def = tf_model_default_params();
    for (int pass = 0; pass < 2; pass++) {
        char *t = text;
        size_t len = (size_t)snprintf(t, sizeof text, "{\n");
        for (int k = 0; k < NUM_BASE; k++) {
            int opt = 0;
            for (size_t j = 0; j < sizeof optional / sizeof optional[0]; j++)
                opt |= strcmp(base[k][0], optional[j]) == 0;
            if (!opt)
                len += (size_t)snprintf(t + len, sizeof text - len, "\"%s\": %s,\n",
                                        base[k][0], base[k][1]);
            else if (pass == 1)
                len += (size_t)snprintf(t + len, sizeof text - len, "\"%s\": null,\n",
                                        base[k][0]);
        }
        snprintf(t + len, sizeof text - len, "}\n");
        cfg = parse_ok(text);
        ck_assert_msg(tf_config_model_params(cfg, &p) == TF_OK, "%s", tf_last_error());
        ck_assert_int_eq(p.vocab_size, 50304);
        ck_assert_double_eq(p.rotary_pct, def.rotary_pct);
        ck_assert_double_eq(p.rotary_emb_base, def.rotary_emb_base);
        ck_assert_int_eq(p.norm, def.norm);
        ck_assert_double_eq(p.layernorm_epsilon, def.layernorm_epsilon);
        ck_assert_double_eq(p.init_method_std, def.init_method_std);
        ck_assert_uint_eq(p.seed, def.seed);
        tf_config_free(cfg);
    }

    /* rotary_pct 1: every head dimension rotates; 0: none. */
    make_config(text, sizeof text, "rotary_pct", "1", NULL, NULL);
    cfg = parse_ok(text);
    ck_assert_int_eq(tf_config_model_params(cfg, &p), TF_OK);
    ck_assert_double_eq(p.rotary_pct, 1.0);
    tf_config_free(cfg);
    make_config(text, sizeof text, "rotary_pct", "0", NULL, NULL);
    cfg = parse_ok(text);
    ck_assert_int_eq(tf_config_model_params(cfg, &p), TF_OK);
    tf_config_free(cfg);
    make_config(text, sizeof text, "norm_activation_type", "softmax", NULL, NULL);
    cfg = parse_ok(text);
    ck_assert_int_eq(tf_config_model_params(cfg, &p), TF_OK);
    ck_assert_int_eq(p.norm, TF_NORM_SOFTMAX);
    tf_config_free(cfg);
}
END_TEST

static const struct bad_case {
    const char *k1, *v1, *k2, *v2;
    const char *key;  /* the key the message must name, at its line */
    const char *what; /* and this text */
} bad_cases[] = {
    {"hidden_size", "\"64\"", NULL, NULL, "hidden_size", "quoted string"},
    {"num_layers", "abc", NULL, NULL, "num_layers", "string"},
    {"num_layers", "2.5", NULL, NULL, "num_layers", "float"},
    {"num_layers", "2.0", NULL, NULL, "num_layers", "not an integer"},
    {"num_layers", "{\"a\": 1}", NULL, NULL, "num_layers", "mapping"},
    {"num_layers", "null", NULL, NULL, "num_layers", "null"},
    {"vocab_size", "1.0e3", NULL, NULL, "vocab_size", "float"},
    {"seq_length", "true", NULL, NULL, "seq_length", "boolean"},
    {"qkv_slot_num", "0", NULL, NULL, "qkv_slot_num", "at least 1"},
    {"proj_slot_num", "0", NULL, NULL, "proj_slot_num", "at least 1"},
    {"ffn_slot_num", "-1", NULL, NULL, "ffn_slot_num", "at least 1"},
    {"num_layers", "0", NULL, NULL, "num_layers", "at least 1"},
    {"hidden_size", "0", NULL, NULL, "hidden_size", "at least 1"},
    {"hidden_size", "3000000000", NULL, NULL, "hidden_size", "too large"},
    {"num_attention_heads", "0", NULL, NULL, "num_attention_heads", "at least 1"},
    {"hidden_size", "66", NULL, NULL, "hidden_size",
     "'hidden_size' (66) is not divisible by 'num_attention_heads' (4)"},
    {"num_attention_heads", "7", NULL, NULL, "hidden_size",
     "'hidden_size' (64) is not divisible by 'num_attention_heads' (7)"},
    {"rotary_pct", "1.5", NULL, NULL, "rotary_pct", "[0, 1]"},
    {"rotary_pct", "-0.1", NULL, NULL, "rotary_pct", "[0, 1]"},
    {"rotary_pct", ".nan", NULL, NULL, "rotary_pct", "finite"},
    {"rotary_pct", "\"0.25\"", NULL, NULL, "rotary_pct", "quoted string"},
    {"hidden_size", "48", NULL, NULL, "rotary_pct", "3 rotary dimensions"},
    {"hidden_size", "60", "rotary_pct", "1.0", "rotary_pct", "15 rotary dimensions"},
    {"rotary_emb_base", "0", NULL, NULL, "rotary_emb_base", "> 0"},
    {"seq_length", "0", NULL, NULL, "seq_length", "at least 1"},
    {"vocab_size", "0", NULL, NULL, "vocab_size", "at least 1"},
    {"layernorm_epsilon", "0", NULL, NULL, "layernorm_epsilon", "> 0"},
    {"layernorm_epsilon", "-1e-5", NULL, NULL, "layernorm_epsilon", "> 0"},
    {"init_method_std", "0", NULL, NULL, "init_method_std", "> 0"},
    {"seed", "-1", NULL, NULL, "seed", "at least 0"},
    {"norm_activation_type", "\"relu\"", NULL, NULL, "norm_activation_type",
     "unknown value 'relu'"},
    {"norm_activation_type", "[1]", NULL, NULL, "norm_activation_type", "sequence"},
    {"pos_emb", "\"learned\"", NULL, NULL, "pos_emb", "supports only 'rotary'"},
    {"norm", "\"rmsnorm\"", NULL, NULL, "norm", "supports only 'layernorm_nonparam'"},
    {"final_norm", "\"rmsnorm\"", NULL, NULL, "final_norm", "supports only 'layernorm'"},
    {"no_weight_tying", "true", NULL, NULL, "no_weight_tying", "must be false"},
    {"no_weight_tying", "0", NULL, NULL, "no_weight_tying", "not a boolean"},
    {"hidden_dropout", "0.1", NULL, NULL, "hidden_dropout", "does not support dropout"},
    {"attention_dropout", "0.1", NULL, NULL, "attention_dropout",
     "does not support dropout"},
};
#define NUM_BAD ((int)(sizeof bad_cases / sizeof bad_cases[0]))

START_TEST(test_model_params_invalid)
{
    const struct bad_case *c = &bad_cases[_i];
    char text[4096];
    make_config(text, sizeof text, c->k1, c->v1, c->k2, c->v2);
    tf_config *cfg = parse_ok(text);
    tf_model_params p = tf_model_default_params();
    sentinel(&p);
    tf_status st = tf_config_model_params(cfg, &p);
    ck_assert_msg(st == TF_ERR_CONFIG, "case %d (%s: %s): status %s", _i, c->k1, c->v1,
                  tf_status_name(st));
    assert_sentinel(&p);
    char where[128];
    snprintf(where, sizeof where, "<string>:%d: ", base_line(c->key));
    const char *msg = tf_config_errmsg(cfg);
    ck_assert_msg(strncmp(msg, where, strlen(where)) == 0, "case %d: want '%s...', got '%s'",
                  _i, where, msg);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "'%s'", c->key);
    ck_assert_msg(strstr(msg, quoted) != NULL, "case %d: no %s in '%s'", _i, quoted, msg);
    ck_assert_msg(strstr(msg, c->what) != NULL, "case %d: no '%s' in '%s'", _i, c->what, msg);
    ck_assert_str_eq(msg, tf_last_error());
    tf_config_free(cfg);
}
END_TEST

START_TEST(test_model_params_missing)
{
    static const char *const required[] = {"num_layers", "hidden_size",
                                           "num_attention_heads", "qkv_slot_num",
                                           "proj_slot_num", "ffn_slot_num", "seq_length"};
    for (size_t r = 0; r < sizeof required / sizeof required[0]; r++) {
        char text[4096];
        make_config(text, sizeof text, required[r], NULL, NULL, NULL);
        tf_config *cfg = parse_ok(text);
        tf_model_params p = tf_model_default_params();
        sentinel(&p);
        ck_assert_int_eq(tf_config_model_params(cfg, &p), TF_ERR_CONFIG);
        assert_sentinel(&p);
        char want[128];
        snprintf(want, sizeof want, "<string>: missing required key '%s'", required[r]);
        ck_assert_str_eq(tf_config_errmsg(cfg), want);
        tf_config_free(cfg);
    }
}
END_TEST

/* ---- document errors ------------------------------------------------------ */

static void parse_fails(const char *text, tf_status want, const char *prefix,
                        const char *contains)
{
    tf_config *cfg = (tf_config *)1;
    tf_status st = tf_config_parse(text, strlen(text), &cfg);
    ck_assert_msg(st == want, "status %s for:\n%s", tf_status_name(st), text);
    ck_assert_ptr_null(cfg);
    const char *msg = tf_last_error();
    ck_assert_msg(strncmp(msg, prefix, strlen(prefix)) == 0, "want '%s...', got '%s'", prefix,
                  msg);
    if (contains)
        ck_assert_msg(strstr(msg, contains) != NULL, "no '%s' in '%s'", contains, msg);
}

START_TEST(test_syntax_errors)
{
    parse_fails("{\n  \"a\": 1,\n  \"b\" 2\n}\n", TF_ERR_CONFIG, "<string>:3:",
                "did not find expected ',' or '}'");
    parse_fails("{\n  \"a\": [1, 2,\n  \"b\": 2\n", TF_ERR_CONFIG, "<string>:",
                "YAML syntax error");
    parse_fails("a: 1\n\tb: 2\n", TF_ERR_CONFIG, "<string>:2:1: YAML syntax error",
                "tab");
    parse_fails("a: 'unterminated\n", TF_ERR_CONFIG, "<string>:", "quoted scalar");
    /* Control characters are a reader error: the line is still given. */
    parse_fails("a: 1\nb: \x01\n", TF_ERR_CONFIG, "<string>:2:", "control characters");
    /* The top level must be a mapping. */
    parse_fails("[1, 2]\n", TF_ERR_CONFIG, "<string>:1:", "sequence");
    parse_fails("\n\n42\n", TF_ERR_CONFIG, "<string>:3:", "scalar");
    parse_fails("", TF_ERR_CONFIG, "<string>:", "empty");
    parse_fails("# only a comment\n", TF_ERR_CONFIG, "<string>:", "empty");
    /* Duplicates name the key and both lines; '-' equals '_'. */
    parse_fails("{\n\"x\": 1,\n\"y\": 2,\n\"x\": 3}\n", TF_ERR_CONFIG, "<string>:4:",
                "duplicate key 'x' (first at line 2)");
    parse_fails("{\n\"vocab-file\": 1,\n\n\"vocab_file\": 3}\n", TF_ERR_CONFIG,
                "<string>:4:", "'vocab_file' (same as 'vocab-file' at line 2");
    parse_fails("a:\n  b: 1\n  b: 2\n", TF_ERR_CONFIG, "<string>:3:", "duplicate key 'b'");
    /* Unsupported YAML. */
    parse_fails("a: &x 1\nb: *x\n", TF_ERR_CONFIG, "<string>:2:", "aliases");
    parse_fails("a: 1\n---\nb: 2\n", TF_ERR_CONFIG, "<string>:2:", "second YAML document");
    parse_fails("? [1]\n: 2\n", TF_ERR_CONFIG, "<string>:1:", "keys must be scalars");
    char deep[400];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 199);
    deep[399] = '\0';
    char deepmap[420];
    snprintf(deepmap, sizeof deepmap, "a: %s", deep);
    parse_fails(deepmap, TF_ERR_CONFIG, "<string>:1:", "nested deeper");
}
END_TEST

START_TEST(test_load_errors)
{
    tf_config *cfg = (tf_config *)1;
    ck_assert_int_eq(tf_config_load("tests/data/configs/no_such.yml", &cfg), TF_ERR_IO);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strncmp(tf_last_error(), "tests/data/configs/no_such.yml: ", 32) == 0, "%s",
                  tf_last_error());
    ck_assert_ptr_nonnull(strstr(tf_last_error(), strerror(ENOENT)));

    cfg = (tf_config *)1;
    ck_assert_int_eq(tf_config_load("tests/data/configs", &cfg), TF_ERR_IO); /* a directory */
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strncmp(tf_last_error(), "tests/data/configs: ", 20) == 0, "%s",
                  tf_last_error());

    /* Errors in a file start with its path. */
    char path[] = "/tmp/tf_test_config_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "{\n  \"num_layers\": 2,\n  \"hidden_size\" 64\n}\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    cfg = (tf_config *)1;
    ck_assert_int_eq(tf_config_load(path, &cfg), TF_ERR_CONFIG);
    ck_assert_ptr_null(cfg);
    char want[64];
    snprintf(want, sizeof want, "%s:3:", path);
    ck_assert_msg(strncmp(tf_last_error(), want, strlen(want)) == 0, "%s", tf_last_error());

    /* A valid file: model errors also start with the path. */
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\n  \"num_layers\": 2,\n  \"hidden_size\": 64,\n  \"num_attention_heads\": 3,\n"
          "  \"qkv_slot_num\": 4, \"proj_slot_num\": 4, \"ffn_slot_num\": 4,\n"
          "  \"seq_length\": 8\n}\n",
          f);
    fclose(f);
    cfg = load_ok(path);
    tf_model_params p = tf_model_default_params();
    ck_assert_int_eq(tf_config_model_params(cfg, &p), TF_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:3: 'hidden_size' (64)", path);
    ck_assert_msg(strncmp(tf_config_errmsg(cfg), want, strlen(want)) == 0, "%s",
                  tf_config_errmsg(cfg));
    tf_config_free(cfg);
    unlink(path);
}
END_TEST

/* A program declares its own keys; the rest are ignored, with a "did you
 * mean" among the library's and the declared keys. */
START_TEST(test_use_keys_and_suggest)
{
    tf_config *cfg = parse_ok("{train_iter: 5, data_fromat: x, num_layers: 2,\n"
                              " data_path: y, foo: 1, Seq-Lenght: 3}\n");
    ck_assert_int_eq(tf_config_num_ignored(cfg), 5);
    ck_assert(is_ignored(cfg, "data_path"));
    ck_assert_str_eq(tf_config_suggest_key(cfg, "train_iter"), "train_iters");
    ck_assert_str_eq(tf_config_suggest_key(cfg, "Seq-Lenght"), "seq_length");
    ck_assert_ptr_null(tf_config_suggest_key(cfg, "data_fromat"));
    static const char *const mine[] = {"data_format", "data-path"};
    ck_assert_int_eq(tf_config_use_keys(cfg, mine, 2), TF_OK);
    ck_assert_int_eq(tf_config_num_ignored(cfg), 4);
    ck_assert(!is_ignored(cfg, "data_path"));
    ck_assert_str_eq(tf_config_ignored_key(cfg, 0), "train_iter");
    ck_assert_str_eq(tf_config_ignored_key(cfg, 1), "data_fromat");
    ck_assert_str_eq(tf_config_ignored_key(cfg, 2), "foo");
    ck_assert_str_eq(tf_config_suggest_key(cfg, "data_fromat"), "data_format");
    ck_assert_ptr_null(tf_config_suggest_key(cfg, "foo"));
    ck_assert_ptr_null(tf_config_suggest_key(cfg, "num_layers")); /* used */
    ck_assert_ptr_null(tf_config_suggest_key(cfg, "seeds_of_doubt"));
    ck_assert_ptr_null(tf_config_suggest_key(cfg, NULL));
    ck_assert_ptr_null(tf_config_suggest_key(NULL, "foo"));

    /* refusals change nothing */
    static const char *const bad[] = {"foo", NULL};
    static const char *const empty[] = {""};
    ck_assert_int_eq(tf_config_use_keys(NULL, mine, 2), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_config_use_keys(cfg, mine, -1), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_config_use_keys(cfg, NULL, 1), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_config_use_keys(cfg, bad, 2), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_config_use_keys(cfg, empty, 1), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_config_num_ignored(cfg), 4);
    ck_assert(is_ignored(cfg, "foo"));
    ck_assert_int_eq(tf_config_use_keys(cfg, NULL, 0), TF_OK);
    ck_assert_int_eq(tf_config_use_keys(cfg, bad, 1), TF_OK);
    ck_assert_int_eq(tf_config_num_ignored(cfg), 3);
    tf_config_free(cfg);
}
END_TEST

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("official");
    tcase_add_loop_test(tc, test_official_dims, 0, NUM_OFFICIAL);
    tcase_add_test(tc, test_official_150m_values);
    tcase_add_test(tc, test_hyphen_underscore);
    tcase_add_test(tc, test_text_generation);
    tcase_add_test(tc, test_fixture_configs);
    suite_add_tcase(s, tc);

    tc = tcase_create("lookups");
    tcase_add_test(tc, test_typing);
    tcase_add_test(tc, test_null_arguments);
    tcase_add_test(tc, test_use_keys_and_suggest);
    suite_add_tcase(s, tc);

    tc = tcase_create("model_params");
    tcase_add_test(tc, test_model_params_base);
    tcase_add_loop_test(tc, test_model_params_invalid, 0, NUM_BAD);
    tcase_add_test(tc, test_model_params_missing);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_syntax_errors);
    tcase_add_test(tc, test_load_errors);
    suite_add_tcase(s, tc);
    return s;
}
