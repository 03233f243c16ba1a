/* bench_configs.h -- the model shapes the benchmarks share. */
#ifndef TF_BENCH_CONFIGS_H
#define TF_BENCH_CONFIGS_H

#include "tokenformer.h"

/* The model issue's benchmark config: V=256, d=256, 4 heads, L=4,
 * qkv=proj=256, ffn=1024, seq 256 (l2_norm_gelu, rotary_pct 0.25: the
 * defaults). */
static inline tf_model_params bench_config(void)
{
    tf_model_params p = tf_model_default_params();
    p.num_layers = 4;
    p.hidden_size = 256;
    p.num_attention_heads = 4;
    p.qkv_slot_num = 256;
    p.proj_slot_num = 256;
    p.ffn_slot_num = 1024;
    p.vocab_size = 256;
    p.seq_length = 256;
    return p;
}

/* The official 150M: L=12, d=768, 12 heads, qkv=proj=768, ffn=3072,
 * V=50304, with the given longest sequence (the official 2048, or the
 * issue's training benchmark's 1024). */
static inline tf_model_params official_150m(int64_t seq_length)
{
    tf_model_params p = tf_model_default_params();
    p.num_layers = 12;
    p.hidden_size = 768;
    p.num_attention_heads = 12;
    p.qkv_slot_num = 768;
    p.proj_slot_num = 768;
    p.ffn_slot_num = 3072;
    p.vocab_size = 50304;
    p.seq_length = seq_length;
    return p;
}

#endif
