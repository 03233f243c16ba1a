/*
 * instr_step.c -- one training step or one decode step of a small model,
 * for counting instructions under callgrind (bench/callgrind.sh).  Time is
 * noise on a shared machine; the number of instructions executed is not,
 * so a change that adds work shows up as a count.
 *
 *   build/bench/instr_step train|decode|info    (info: the BLIS kernel set)
 *
 * Shape: V=256, d=64, 4 heads, L=2, qkv=proj=64, ffn=256, T=64, B=2.  One
 * thread.  The script counts only inside the calls named below (callgrind's
 * --toggle-collect), so set-up and BLIS's initialisation do not count.
 *   train:  tf_model_forward, tf_model_backward, tf_optimizer_step, for two
 *           steps (the first also sizes the workspaces: that is work too)
 *   decode: tf_decoder_step, for two tokens after a 16-token prefill
 */
#include <stdio.h>
#include <string.h>

#include "tokenformer.h"

static int fail(const char *what)
{
    fprintf(stderr, "instr_step: %s: %s\n", what, tf_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "train") != 0 && strcmp(argv[1], "decode") != 0 &&
                      strcmp(argv[1], "info") != 0)) {
        fprintf(stderr, "usage: instr_step train|decode|info\n");
        return 2;
    }
    if (strcmp(argv[1], "info") == 0) {
        tf_info info;
        info.struct_size = sizeof info;
        if (tf_get_info(&info) != TF_OK)
            return fail("info");
        printf("%s%s\n", info.blis_arch, info.cpu_avx512 ? "-avx512" : "");
        return 0;
    }
    if (tf_set_num_threads(1) != TF_OK)
        return fail("threads");
    tf_model_params p = tf_model_default_params();
    p.num_layers = 2;
    p.hidden_size = 64;
    p.num_attention_heads = 4;
    p.qkv_slot_num = 64;
    p.proj_slot_num = 64;
    p.ffn_slot_num = 256;
    p.vocab_size = 256;
    p.seq_length = 64;
    tf_model *m = NULL;
    if (tf_model_create(&p, &m) != TF_OK)
        return fail("model");
    enum { B = 2, T = 64 };
    int32_t tok[B * T], tgt[B * T];
    for (int i = 0; i < B * T; i++) {
        tok[i] = (i * 37 + 11) % 256;
        tgt[i] = (i * 53 + 5) % 256;
    }
    if (strcmp(argv[1], "train") == 0) {
        tf_optimizer *opt = NULL;
        if (tf_optimizer_create(m, NULL, &opt) != TF_OK)
            return fail("optimizer");
        for (int step = 0; step < 2; step++) {
            float loss;
            if (tf_model_forward(m, B, T, tok, tgt, NULL, &loss) != TF_OK ||
                tf_model_backward(m) != TF_OK || tf_optimizer_step(opt, NULL) != TF_OK)
                return fail("step");
        }
        tf_optimizer_free(opt);
    } else {
        tf_decoder *dec = NULL;
        if (tf_decoder_create(m, 1, &dec) != TF_OK || tf_decoder_prefill(dec, 16, tok, NULL) != TF_OK)
            return fail("decoder");
        for (int k = 0; k < 2; k++)
            if (tf_decoder_step(dec, &tok[16 + k], NULL) != TF_OK)
                return fail("decode step");
        tf_decoder_free(dec);
    }
    tf_model_free(m);
    return 0;
}
