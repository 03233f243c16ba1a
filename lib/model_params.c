/* model_params.c -- the model's configuration struct: defaults and the
 * checks every constructor applies. */
#include <string.h>

#include "model.h"

static tf_model_params model_defaults(void)
{
    tf_model_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.num_layers = 2;
    p.hidden_size = 64;
    p.num_attention_heads = 4;
    p.qkv_slot_num = 64;
    p.proj_slot_num = 64;
    p.ffn_slot_num = 256;
    p.rotary_pct = 0.25;
    p.rotary_emb_base = 10000.0;
    p.norm = TF_NORM_L2_NORM_GELU;
    p.vocab_size = 256;
    p.seq_length = 128;
    p.layernorm_epsilon = 1e-5;
    p.init_method_std = 0.02;
    p.seed = 1;
    p.scale_policy = TF_SCALE_FOLLOW_N;
    return p;
}

TF_API void tf_model_params_init(tf_model_params *p, size_t size)
{
    tf_model_params d = model_defaults();
    tfi_params_init(p, size, &d, sizeof d);
}

int tfi_slot_class(int kind)
{
    return kind == TF_SET_FFN ? 2 : kind == TF_SET_PROJ ? 1 : 0;
}

int64_t *tfi_slot_field(tf_model_params *p, int kind)
{
    int64_t *const fields[3] = {&p->qkv_slot_num, &p->proj_slot_num, &p->ffn_slot_num};
    return fields[tfi_slot_class(kind)];
}

int tfi_rotary_dims(const tf_model_params *p)
{
    int head_dim = p->hidden_size / p->num_attention_heads;
    /* the official rule: rotary_pct == 1 rotates the whole head */
    return p->rotary_pct == 1.0 ? head_dim : (int)(head_dim * p->rotary_pct);
}

tf_status tfi_model_params_check(const tf_model_params *p, tfi_errbuf *eb)
{
    if (p->num_layers < 1 || p->hidden_size < 1 || p->num_attention_heads < 1)
        return tfi_fail(eb, TF_ERR_CONFIG,
                        "num_layers, hidden_size and num_attention_heads must be >= 1 "
                        "(got %d, %d, %d)", p->num_layers, p->hidden_size,
                        p->num_attention_heads);
    if (p->hidden_size % p->num_attention_heads != 0)
        return tfi_fail(eb, TF_ERR_CONFIG,
                        "hidden_size (%d) is not divisible by num_attention_heads (%d)",
                        p->hidden_size, p->num_attention_heads);
    if (p->qkv_slot_num < 1 || p->proj_slot_num < 1 || p->ffn_slot_num < 1)
        return tfi_fail(eb, TF_ERR_CONFIG,
                        "slot numbers must be >= 1 (qkv %lld, proj %lld, ffn %lld)",
                        (long long)p->qkv_slot_num, (long long)p->proj_slot_num,
                        (long long)p->ffn_slot_num);
    if (!(p->rotary_pct >= 0.0 && p->rotary_pct <= 1.0))
        return tfi_fail(eb, TF_ERR_CONFIG, "rotary_pct must be in [0, 1] (got %g)", p->rotary_pct);
    if (tfi_rotary_dims(p) % 2 != 0)
        return tfi_fail(eb, TF_ERR_CONFIG,
                        "rotary dims int(head_dim * rotary_pct) = %d must be even",
                        tfi_rotary_dims(p));
    if (!(p->rotary_emb_base > 0.0))
        return tfi_fail(eb, TF_ERR_CONFIG, "rotary_emb_base must be > 0");
    if (p->norm != TF_NORM_L2_NORM_GELU && p->norm != TF_NORM_GELU_L2_NORM &&
        p->norm != TF_NORM_SOFTMAX)
        return tfi_fail(eb, TF_ERR_CONFIG, "unknown norm_activation_type %d", (int)p->norm);
    if (p->vocab_size < 1 || p->vocab_size > INT32_MAX)
        return tfi_fail(eb, TF_ERR_CONFIG, "vocab_size must be in [1, 2^31) (got %lld)",
                        (long long)p->vocab_size);
    if (p->seq_length < 1 || p->seq_length > INT32_MAX)
        return tfi_fail(eb, TF_ERR_CONFIG, "seq_length must be in [1, 2^31) (got %lld)",
                        (long long)p->seq_length);
    /* the rotary tables are built for every position at creation */
    if (p->seq_length > TFI_MAX_ROTARY_ENTRIES / (tfi_rotary_dims(p) ? tfi_rotary_dims(p) : 1))
        return tfi_fail(eb, TF_ERR_CONFIG,
                        "seq_length (%lld) times the rotary dims per head (%d) exceeds %lld: "
                        "the rotary tables would take more than %lld MB",
                        (long long)p->seq_length, tfi_rotary_dims(p),
                        (long long)TFI_MAX_ROTARY_ENTRIES,
                        (long long)(TFI_MAX_ROTARY_ENTRIES * 4 >> 20));
    if (!(p->layernorm_epsilon > 0.0))
        return tfi_fail(eb, TF_ERR_CONFIG, "layernorm_epsilon must be > 0");
    if (!(p->init_method_std >= 0.0))
        return tfi_fail(eb, TF_ERR_CONFIG, "init_method_std must be >= 0");
    if (p->scale_policy != TF_SCALE_FOLLOW_N && p->scale_policy != TF_SCALE_PINNED)
        return tfi_fail(eb, TF_ERR_CONFIG, "unknown scale policy %d", (int)p->scale_policy);
    return TF_OK;
}
