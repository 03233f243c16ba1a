/*
 * bench_model.c -- language-model forward and training-step throughput
 * against the BLIS sgemm rate measured in the same run.
 *
 *   build/bench/bench_model [reps]
 *
 * Config (the model issue's): V=256, d=256, 4 heads, L=4, qkv=proj=256,
 * ffn=1024, T=256, B=8, l2_norm_gelu, rotary_pct 0.25.  FLOPs per token
 * (PaLM convention, as shared/reference/torch_baseline.py counts them):
 *   N = sum over Pattentions of 2*n*d + V*d (tied head once)
 *   train = 6N + 12 L T d,  forward = 2N + 4 L T d
 * A training step is forward + backward + AdamW (clipped).  Prints medians
 * for 1 and 2 threads, the ratio to sgemm 1024^3, and the peak RSS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"
#include "internal.h"

static double sgemm_rate(int reps)
{
    const int64_t n = 1024;
    float *a = tfi_alloc(n * n * 4), *b = tfi_alloc(n * n * 4), *c = tfi_alloc(n * n * 4);
    tfi_rng rng;
    tfi_rng_seed(&rng, 1);
    tfi_rng_fill_normal(&rng, a, (size_t)(n * n), 1);
    tfi_rng_fill_normal(&rng, b, (size_t)(n * n), 1);
    double t[64];
    for (int r = -2; r < reps; r++) {
        double t0 = now();
        tfi_sgemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n, 0);
        if (r >= 0)
            t[r] = now() - t0;
    }
    tfi_free(a);
    tfi_free(b);
    tfi_free(c);
    return 2.0 * n * n * n / median(t, reps) * 1e-9;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    if (reps < 1 || reps > 64)
        reps = 7;
    tf_model_params p = tf_model_default_params();
    p.num_layers = 4;
    p.hidden_size = 256;
    p.num_attention_heads = 4;
    p.qkv_slot_num = 256;
    p.proj_slot_num = 256;
    p.ffn_slot_num = 1024;
    p.vocab_size = 256;
    p.seq_length = 256;
    const int B = 8, T = 256;
    tf_model *m;
    tf_optimizer *opt;
    if (tf_model_create(&p, &m) != TF_OK || tf_optimizer_create(m, NULL, &opt) != TF_OK) {
        fprintf(stderr, "%s\n", tf_last_error());
        return 1;
    }
    double d = p.hidden_size, L = p.num_layers;
    double N = 2.0 * d * (3.0 * p.qkv_slot_num + p.proj_slot_num + p.ffn_slot_num) * L +
               (double)p.vocab_size * d;
    double f_train = 6 * N + 12 * L * T * d, f_fwd = 2 * N + 4 * L * T * d;
    int32_t *tok = malloc(sizeof(int32_t) * B * T), *tgt = malloc(sizeof(int32_t) * B * T);
    tfi_rng rng;
    tfi_rng_seed(&rng, 2);
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)(tfi_rng_next(&rng) % 256);
        tgt[i] = (int32_t)(tfi_rng_next(&rng) % 256);
    }
    tf_info info = {.struct_size = sizeof info};
    tf_get_info(&info);
    printf("libtokenformer %s, BLIS %s kernels '%s' (%s); params in matmuls %.0f; "
           "FLOPs/token train %.2f M, forward %.2f M; medians of %d\n",
           info.version_string, info.blis_version, info.blis_arch, info.blis_arch_source, N,
           f_train / 1e6, f_fwd / 1e6, reps);
    printf("| threads | train step s | train tok/s | train GFLOP/s | fwd s | fwd tok/s | fwd GFLOP/s "
           "| sgemm 1024^3 GFLOP/s | train/sgemm | fwd/sgemm |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (int threads = 1; threads <= 2; threads++) {
        tf_set_num_threads(threads);
        double tt[64], tf[64];
        for (int r = -2; r < reps; r++) {
            float loss;
            double t0 = now();
            tf_model_forward(m, B, T, tok, tgt, NULL, &loss);
            tf_model_backward(m);
            tf_optimizer_step(opt, NULL);
            double t1 = now();
            tf_model_forward(m, B, T, tok, NULL, NULL, NULL);
            double t2 = now();
            if (r >= 0) {
                tt[r] = t1 - t0;
                tf[r] = t2 - t1;
            }
        }
        double g = sgemm_rate(reps);
        double st = median(tt, reps), sf = median(tf, reps), ntok = (double)B * T;
        double gt = f_train * ntok / st * 1e-9, gf = f_fwd * ntok / sf * 1e-9;
        printf("| %d | %.3f | %.0f | %.1f | %.3f | %.0f | %.1f | %.1f | %.0f%% | %.0f%% |\n", threads,
               st, ntok / st, gt, sf, ntok / sf, gf, g, 100 * gt / g, 100 * gf / g);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS %.0f MB\n", ru.ru_maxrss / 1024.0);
    tf_optimizer_free(opt);
    tf_model_free(m);
    free(tok);
    free(tgt);
    return 0;
}
