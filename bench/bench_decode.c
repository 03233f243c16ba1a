/*
 * bench_decode.c -- decoding speed at batch 1 against the memory-bandwidth
 * bound, in the same process.
 *
 *   build/bench/bench_decode [reps] [new_tokens]
 *
 * Decoding one token reads every parameter once: all keys and values of
 * every Pattention set, and the whole embedding for the tied output head.
 * At batch 1 that traffic dominates, so the bound is
 *     tokens/s <= copy bandwidth / (4 bytes * those parameters)
 * with the copy bandwidth measured here (memcpy of 256 MB, read + write
 * counted: 2 x size per copy, median of several).
 *
 * Shapes: (a) V=256, d=256, 4 heads, L=4, qkv=proj=256, ffn=1024, seq 256;
 * (b) the official 150M (L=12, d=768, 12 heads, qkv=proj=768, ffn=3072,
 * V=50304, seq 2048), random weights.  A 16-token prompt, then greedy
 * generation of new_tokens (default 64); medians of reps (default 5) for 1
 * and 2 threads.
 *
 * Each shape runs twice, with float32 weights and with bfloat16 ones
 * (tf_model_make_inference on a copy: the same weights rounded), the two
 * timed in alternation; the bound of each is the copy bandwidth over its
 * own bytes per token.  Also printed: the largest difference of the
 * prompt's logits relative to the largest float32 logit, and how many of
 * the greedy tokens agree before the first difference (random weights give
 * near-uniform logits, so an early difference says little: see
 * tests/test_bf16.c and bench/bf16_agreement.py for trained weights).
 * Target (issue 15): bf16 / f32 >= 1.8 on the 150M shape.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_configs.h"
#include "bench_util.h"
#include "internal.h"

/* Copy bandwidth in bytes/s (read + write), median of 7 copies of 256 MB;
 * and, for comparison, the read-only rate (an XOR over the same buffer,
 * one thread) in *read_bw. */
static double copy_bandwidth(double *read_bw)
{
    const size_t size = (size_t)256 << 20;
    char *src = tfi_alloc(size), *dst = tfi_alloc(size);
    if (!src || !dst) {
        fprintf(stderr, "bench_decode: no memory for the bandwidth buffers\n");
        exit(1);
    }
    memset(src, 1, size);
    memset(dst, 2, size);
    double t[7];
    for (int r = 0; r < 7; r++) {
        double t0 = now();
        memcpy(dst, src, size);
        t[r] = now() - t0;
        src[r] ^= dst[size - 1 - (size_t)r]; /* keep the copies observable */
    }
    double tr[7];
    volatile uint64_t sink = 0;
    for (int r = 0; r < 7; r++) {
        const uint64_t *w = (const uint64_t *)src;
        uint64_t x0 = 0, x1 = 0, x2 = 0, x3 = 0;
        double t0 = now();
        for (size_t i = 0; i < size / 8; i += 4) {
            x0 ^= w[i];
            x1 ^= w[i + 1];
            x2 ^= w[i + 2];
            x3 ^= w[i + 3];
        }
        tr[r] = now() - t0;
        sink ^= x0 ^ x1 ^ x2 ^ x3;
    }
    (void)sink;
    *read_bw = (double)size / median(tr, 7);
    tfi_free(src);
    tfi_free(dst);
    return 2.0 * (double)size / median(t, 7);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_decode: %s: %s\n", what, tf_last_error());
    exit(1);
}

/* One timed pass of a decoder: prefill the prompt, generate new_tokens
 * greedily; the rates of both into *gen and *pre. */
static void timed(tf_decoder *dec, const int32_t *prompt, int new_tokens, int32_t *out,
                  double *gen, double *pre)
{
    tf_sampler_params sp = tf_sampler_default_params();
    sp.temperature = 0.0;
    tf_decoder_reset(dec);
    double t0 = now();
    if (tf_decoder_prefill(dec, 16, prompt, NULL) != TF_OK)
        die("prefill");
    double t1 = now();
    int produced = 0;
    if (tf_decoder_generate(dec, new_tokens, &sp, NULL, 0, out, &produced, NULL, NULL) != TF_OK)
        die("generate");
    double t2 = now();
    *gen = produced / (t2 - t1);
    *pre = 16.0 / (t1 - t0);
}

/* The same model twice, float32 and bfloat16 (tf_model_make_inference),
 * timed in alternation so that both see the same machine. */
static void run(const char *label, const tf_model_params *p, double bw, double rbw, int reps,
                int new_tokens)
{
    tf_model *m[2];
    tf_inference_params ip = tf_inference_default_params();
    ip.weights = TF_DTYPE_BF16;
    if (tf_model_create(p, &m[0]) != TF_OK || tf_model_create(p, &m[1]) != TF_OK ||
        tf_model_make_inference(m[1], &ip) != TF_OK)
        die("tf_model_create");
    /* parameters read per token: everything but the final norm */
    double params = (double)(tf_model_num_params(m[0]) - 2 * (int64_t)p->hidden_size);
    tf_decoder *dec[2];
    if (tf_decoder_create(m[0], 1, &dec[0]) != TF_OK ||
        tf_decoder_create(m[1], 1, &dec[1]) != TF_OK)
        die("tf_decoder_create");
    int32_t prompt[16];
    for (int i = 0; i < 16; i++)
        prompt[i] = (int32_t)((i * 7919 + 13) % p->vocab_size);
    int32_t *out[2] = {malloc((size_t)new_tokens * sizeof(int32_t)),
                       malloc((size_t)new_tokens * sizeof(int32_t))};
    /* the logits of the prompt's last position: bfloat16's against float32's */
    float *lg[2] = {malloc((size_t)p->vocab_size * sizeof(float)),
                    malloc((size_t)p->vocab_size * sizeof(float))};
    for (int k = 0; k < 2; k++)
        if (tf_decoder_prefill(dec[k], 16, prompt, lg[k]) != TF_OK)
            die("prefill");
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < p->vocab_size; i++) {
        double e = fabs((double)lg[1][i] - lg[0][i]), a = fabs((double)lg[0][i]);
        num = e > num ? e : num;
        den = a > den ? a : den;
    }
    for (int threads = 1; threads <= 2; threads++) {
        tf_set_num_threads(threads);
        double rate[2][64], pre[2][64];
        for (int r = -1; r < reps; r++)
            for (int k = 0; k < 2; k++) {
                double g, q;
                timed(dec[k], prompt, new_tokens, out[k], &g, &q);
                if (r >= 0) {
                    rate[k][r] = g;
                    pre[k][r] = q;
                }
            }
        int same = 0;
        while (same < new_tokens && out[0][same] == out[1][same])
            same++;
        double tps[2], pps[2];
        for (int k = 0; k < 2; k++) {
            tps[k] = median(rate[k], reps);
            pps[k] = median(pre[k], reps);
        }
        printf("| %s | %d | %.1f / %.1f | %.1f | %.1f | **%.2fx** | %.0f%% / %.0f%% | "
               "%.0f / %.0f | %.1e | %d/%d |\n",
               label, threads, 4.0 * params / 1e6, 2.0 * params / 1e6, tps[0], tps[1],
               tps[1] / tps[0], 100.0 * tps[0] / (bw / (4.0 * params)),
               100.0 * tps[1] / (bw / (2.0 * params)), pps[0], pps[1], num / (den + 1e-6),
               same, new_tokens);
        fflush(stdout);
    }
    (void)rbw;
    for (int k = 0; k < 2; k++) {
        free(out[k]);
        free(lg[k]);
        tf_decoder_free(dec[k]);
        tf_model_free(m[k]);
    }
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    int new_tokens = argc > 2 ? atoi(argv[2]) : 64;
    if (reps < 1 || reps > 64)
        reps = 5;
    if (new_tokens < 1 || new_tokens > 1024)
        new_tokens = 64;
    tf_info info = {.struct_size = sizeof info};
    tf_get_info(&info);
    double rbw;
    double bw = copy_bandwidth(&rbw);
    printf("libtokenformer %s, BLIS %s, kernels '%s'; copy bandwidth %.2f GB/s "
           "(memcpy 256 MB, read+write), read-only %.2f GB/s (one thread); medians of %d "
           "reps, %d new tokens after a 16-token prompt; bf16 kernel '%s'\n\n",
           info.version_string, info.blis_version, info.blis_arch, bw * 1e-9, rbw * 1e-9, reps,
           new_tokens, info.bf16_kernel);

    printf("| model | threads | MB read/token f32 / bf16 | f32 tokens/s | bf16 tokens/s "
           "| bf16 / f32 | of copy-bw bound f32 / bf16 | prefill tokens/s f32 / bf16 "
           "| logits rel. err | same greedy tokens |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    tf_model_params a = bench_config();
    run("(a) d=256 L=4 V=256", &a, bw, rbw, reps, new_tokens);
    tf_model_params b = official_150m(2048);
    run("(b) 150M", &b, bw, rbw, reps, new_tokens);
    return 0;
}
