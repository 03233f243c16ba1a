/*
 * bench_model.c -- language-model forward and training-step throughput
 * against the BLIS sgemm rate measured in the same run.
 *
 *   build/bench/bench_model [reps] [bench|150m|all] [threads]
 *
 * Configs:
 *   bench  (the model issue's): V=256, d=256, 4 heads, L=4, qkv=proj=256,
 *          ffn=1024, T=256, B=8, l2_norm_gelu, rotary_pct 0.25.
 *   150m   the official 150M: V=50304, d=768, 12 heads, L=12,
 *          qkv=proj=768, ffn=3072, T=1024, B=1 and B=2.
 * Default: bench, medians of 7.  threads: 1 or 2 runs only that count;
 * 0 (default) runs 1 and 2, interleaved rep by rep (A B A B), so that load
 * from other processes falls on both alike.
 *
 * FLOPs per token (PaLM convention, as shared/reference/torch_baseline.py
 * counts them):
 *   N = sum over Pattentions of 2*n*d + V*d (tied head once)
 *   train = 6N + 12 L T d,  forward = 2N + 4 L T d
 * A training step is forward + backward + AdamW (clipped).  Prints, per
 * config and thread count, medians of the wall time and of the process's
 * CPU time (user + system, all threads) per step, the ratio to sgemm
 * 1024^3, and the peak RSS of the config (reset between configs through
 * /proc/self/clear_refs; model, gradients, AdamW state and activations).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_configs.h"
#include "bench_util.h"
#include "internal.h"

#define MAX_REPS 64

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

/* VmHWM of this process in MB, after resetting it when reset is set. */
static double peak_rss_mb(int reset)
{
    if (reset) {
        FILE *f = fopen("/proc/self/clear_refs", "w");
        if (f) {
            fputs("5", f);
            fclose(f);
        }
        return 0;
    }
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    if (kb < 0) { /* no procfs: the process-lifetime peak */
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = ru.ru_maxrss;
    }
    return kb / 1024.0;
}

static double sgemm_rate(int reps)
{
    const int64_t n = 1024;
    float *a = tfi_alloc(n * n * 4), *b = tfi_alloc(n * n * 4), *c = tfi_alloc(n * n * 4);
    tfi_rng rng;
    tfi_rng_seed(&rng, 1);
    tfi_rng_fill_normal(&rng, a, (size_t)(n * n), 1);
    tfi_rng_fill_normal(&rng, b, (size_t)(n * n), 1);
    double t[MAX_REPS];
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

/* Times forward + backward + step, then a forward alone, rep by rep for each
 * thread count in turn; prints one row per thread count. */
static int run(const char *name, const tf_model_params *p, int B, int T, int reps, int only_threads)
{
    peak_rss_mb(1);
    tf_model *m;
    tf_optimizer *opt;
    if (tf_model_create(p, &m) != TF_OK) {
        fprintf(stderr, "%s\n", tf_last_error());
        return 1;
    }
    if (tf_optimizer_create(m, NULL, &opt) != TF_OK) {
        fprintf(stderr, "%s\n", tf_last_error());
        tf_model_free(m);
        return 1;
    }
    double d = (double)p->hidden_size, L = (double)p->num_layers;
    double N = 2.0 * d * (3.0 * p->qkv_slot_num + p->proj_slot_num + p->ffn_slot_num) * L +
               (double)p->vocab_size * d;
    double f_train = 6 * N + 12 * L * T * d, f_fwd = 2 * N + 4 * L * T * d;
    int32_t *tok = malloc(sizeof(int32_t) * B * T), *tgt = malloc(sizeof(int32_t) * B * T);
    tfi_rng rng;
    tfi_rng_seed(&rng, 2);
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)(tfi_rng_next(&rng) % (uint64_t)p->vocab_size);
        tgt[i] = (int32_t)(tfi_rng_next(&rng) % (uint64_t)p->vocab_size);
    }
    int lo = only_threads ? only_threads : 1, hi = only_threads ? only_threads : 2;
    double tt[2][MAX_REPS], tf[2][MAX_REPS], ct[2][MAX_REPS], cf[2][MAX_REPS];
    for (int r = -1; r < reps; r++)
        for (int threads = lo; threads <= hi; threads++) {
            tf_set_num_threads(threads);
            float loss;
            double c0 = cpu_now(), t0 = now();
            if (tf_model_forward(m, B, T, tok, tgt, NULL, &loss) != TF_OK ||
                tf_model_backward(m) != TF_OK || tf_optimizer_step(opt, NULL) != TF_OK) {
                fprintf(stderr, "%s\n", tf_last_error());
                return 1;
            }
            double t1 = now(), c1 = cpu_now();
            tf_model_forward(m, B, T, tok, NULL, NULL, NULL);
            double t2 = now(), c2 = cpu_now();
            if (r >= 0) {
                tt[threads - 1][r] = t1 - t0;
                tf[threads - 1][r] = t2 - t1;
                ct[threads - 1][r] = c1 - c0;
                cf[threads - 1][r] = c2 - c1;
            }
        }
    double rss = peak_rss_mb(0);
    for (int threads = lo; threads <= hi; threads++) {
        tf_set_num_threads(threads);
        double g = sgemm_rate(reps < 5 ? 5 : reps);
        double st = median(tt[threads - 1], reps), sf = median(tf[threads - 1], reps);
        double ntok = (double)B * T;
        double gt = f_train * ntok / st * 1e-9, gf = f_fwd * ntok / sf * 1e-9;
        printf("| %s B=%d T=%d | %d | %.3f | %.3f | %.0f | %.1f | %.3f | %.3f | %.0f | %.1f | %.1f "
               "| %.0f%% | %.0f%% | %.0f |\n",
               name, B, T, threads, st, median(ct[threads - 1], reps), ntok / st, gt, sf,
               median(cf[threads - 1], reps), ntok / sf, gf, g, 100 * gt / g, 100 * gf / g, rss);
    }
    fflush(stdout);
    tf_optimizer_free(opt);
    tf_model_free(m);
    free(tok);
    free(tgt);
    return 0;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    if (reps < 1 || reps > MAX_REPS)
        reps = 7;
    const char *which = argc > 2 ? argv[2] : "bench";
    int only = argc > 3 ? atoi(argv[3]) : 0;
    if (only < 0 || only > 2 ||
        (strcmp(which, "bench") && strcmp(which, "150m") && strcmp(which, "all"))) {
        fprintf(stderr, "usage: bench_model [reps] [bench|150m|all] [threads: 0, 1 or 2]\n");
        return 2;
    }
    tf_info info = {.struct_size = sizeof info};
    tf_get_info(&info);
    printf("libtokenformer %s, BLIS %s kernels '%s' (%s); medians of %d; CPU s = user + system "
           "time of all threads per step\n",
           info.version_string, info.blis_version, info.blis_arch, info.blis_arch_source, reps);
    printf("| config | threads | train step s | train CPU s | train tok/s | train GFLOP/s | fwd s "
           "| fwd CPU s | fwd tok/s | fwd GFLOP/s | sgemm 1024^3 GFLOP/s | train/sgemm | fwd/sgemm "
           "| peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    int rc = 0;
    if (!strcmp(which, "bench") || !strcmp(which, "all")) {
        tf_model_params p = bench_config();
        rc |= run("bench", &p, 8, 256, reps, only);
    }
    if (!strcmp(which, "150m") || !strcmp(which, "all")) {
        tf_model_params p = official_150m(1024);
        rc |= run("150M", &p, 1, 1024, reps, only);
        rc |= run("150M", &p, 2, 1024, reps, only);
    }
    return rc;
}
