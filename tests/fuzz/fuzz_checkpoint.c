/*
 * fuzz_checkpoint.c -- libFuzzer target: a checkpoint file (safetensors
 * with the model's configuration in its metadata) from untrusted bytes.
 * Opens it as a model, loads it into a fixed small model with and without
 * growth, and runs a short forward pass on whatever opened: every outcome
 * must be a status, never a crash, a hang or a sanitizer finding.
 */
#include "fuzz_util.h"

static tf_model *fixed_model(void)
{
    static tf_model *m;
    if (!m) {
        tf_model_params p = tf_model_default_params();
        p.num_layers = 1;
        p.hidden_size = 8;
        p.num_attention_heads = 2;
        p.qkv_slot_num = 4;
        p.proj_slot_num = 4;
        p.ffn_slot_num = 8;
        p.vocab_size = 16;
        p.seq_length = 8;
        p.rotary_pct = 0.5;
        if (tf_model_create(&p, &m) != TF_OK)
            abort();
    }
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_input_file(data, size);
    if (!path)
        return 0;
    tf_model *m = NULL;
    if (tf_model_open(path, &m) == TF_OK) {
        tf_model_params p = tf_model_default_params();
        if (tf_model_get_params(m, &p) != TF_OK)
            abort();
        int32_t tokens[2] = {0, 1}, targets[2] = {1, 0};
        float loss;
        int T = p.seq_length >= 2 && p.vocab_size >= 2 ? 2 : 0;
        if (T && tf_model_forward(m, 1, T, tokens, targets, NULL, &loss) == TF_OK)
            tf_model_backward(m);
        tf_model_free(m);
    }
    tf_model *fixed = fixed_model();
    tf_model_load(fixed, NULL, path);
    tf_grow_params g = tf_grow_default_params();
    tf_model_load_grown(fixed, path, &g);
    return 0;
}
