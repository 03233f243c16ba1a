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
 */
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

static void run(const char *label, const tf_model_params *p, double bw, double rbw, int reps,
                int new_tokens)
{
    tf_model *m;
    if (tf_model_create(p, &m) != TF_OK)
        die("tf_model_create");
    /* parameters read per token: everything but the final norm */
    double bytes = 4.0 * (double)(tf_model_num_params(m) - 2 * (int64_t)p->hidden_size);
    double bound = bw / bytes;
    tf_decoder *dec;
    if (tf_decoder_create(m, 1, &dec) != TF_OK)
        die("tf_decoder_create");
    int32_t prompt[16];
    for (int i = 0; i < 16; i++)
        prompt[i] = (int32_t)((i * 7919 + 13) % p->vocab_size);
    int32_t *out = malloc((size_t)new_tokens * sizeof(int32_t));
    tf_sampler_params sp = tf_sampler_default_params();
    sp.temperature = 0.0;
    for (int threads = 1; threads <= 2; threads++) {
        tf_set_num_threads(threads);
        double rate[64], pre[64];
        for (int r = -1; r < reps; r++) {
            tf_decoder_reset(dec);
            double t0 = now();
            if (tf_decoder_prefill(dec, 16, prompt, NULL) != TF_OK)
                die("prefill");
            double t1 = now();
            int produced = 0;
            if (tf_decoder_generate(dec, new_tokens, &sp, NULL, 0, out, &produced, NULL, NULL) !=
                TF_OK)
                die("generate");
            double t2 = now();
            if (r >= 0) {
                rate[r] = produced / (t2 - t1);
                pre[r] = 16.0 / (t1 - t0);
            }
        }
        double tps = median(rate, reps);
        printf("| %s | %d | %.1f | %.1f | %.1f | %.0f%% | %.0f%% | %.0f |\n", label, threads,
               bytes / 1e6, tps, bound, 100.0 * tps / bound, 100.0 * tps / (rbw / bytes),
               median(pre, reps));
        fflush(stdout);
    }
    free(out);
    tf_decoder_free(dec);
    tf_model_free(m);
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
           "reps, %d new tokens after a 16-token prompt\n\n",
           info.version_string, info.blis_version, info.blis_arch, bw * 1e-9, rbw * 1e-9, reps,
           new_tokens);

    printf("| model | threads | MB read/token | tokens/s | bound tokens/s (copy bw) "
           "| of bound | of read-only bound | prefill tokens/s |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    tf_model_params a = bench_config();
    run("(a) d=256 L=4 V=256", &a, bw, rbw, reps, new_tokens);
    tf_model_params b = official_150m(2048);
    run("(b) 150M", &b, bw, rbw, reps, new_tokens);
    return 0;
}
