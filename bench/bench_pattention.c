/*
 * bench_pattention.c -- Pattention forward and forward+backward against the
 * same GEMMs run bare (BLIS sgemm of the same shapes), in the same process.
 *
 *   build/bench/bench_pattention [reps]
 *
 * Prints medians: milliseconds, GFLOP/s (2*N*n*(d_in+d_out) per forward,
 * 5 GEMMs of 2*N*n*d per forward+backward) and the ratio to the GEMM-only
 * rate, for 1 and 2 threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"
#include "internal.h"
#include "pattention.h"

static float *filled(size_t count, float scale, tfi_rng *rng)
{
    float *p = tfi_alloc(count * sizeof(float));
    tfi_rng_fill_normal(rng, p, count, scale);
    return p;
}

static void run(int64_t N, int64_t d, int64_t n, int threads, int reps)
{
    tf_set_num_threads(threads);
    tf_pattention_params p = tf_pattention_default_params();
    p.n = n;
    p.d_in = d;
    p.d_out = d;
    tf_pattention *set;
    if (tf_pattention_create(&p, &set) != TF_OK) {
        fprintf(stderr, "create: %s\n", tf_last_error());
        exit(1);
    }
    tfi_rng rng;
    tfi_rng_seed(&rng, 5);
    float *X = filled((size_t)(N * d), 1.0f, &rng), *Y = filled((size_t)(N * d), 0, &rng);
    float *dY = filled((size_t)(N * d), 1.0f, &rng), *dX = filled((size_t)(N * d), 0, &rng);
    float *A = filled((size_t)(N * n), 0.1f, &rng), *G = filled((size_t)(N * n), 0.1f, &rng);
    float *K = filled((size_t)(n * d), 0.02f, &rng), *dK = filled((size_t)(n * d), 0, &rng);
    double tf_fwd[64], tf_all[64], g_fwd[64], g_all[64];
    for (int r = -2; r < reps; r++) {
        double t0 = now();
        tf_pattention_forward(set, N, X, Y);
        double t1 = now();
        tf_pattention_backward(set, N, X, dY, dX);
        double t2 = now();
        /* the same five GEMMs, nothing else */
        tfi_sgemm(0, 1, N, n, d, 1, X, d, K, d, 0, A, n, 0);
        tfi_sgemm(0, 0, N, d, n, 1, A, n, K, d, 0, Y, d, 0);
        double t3 = now();
        tfi_sgemm(1, 0, n, d, N, 1, A, n, dY, d, 1, dK, d, 0);
        tfi_sgemm(0, 1, N, n, d, 1, dY, d, K, d, 0, G, n, 0);
        tfi_sgemm(0, 0, N, d, n, 1, G, n, K, d, 0, dX, d, 0);
        tfi_sgemm(1, 0, n, d, N, 1, G, n, X, d, 1, dK, d, 0);
        double t4 = now();
        if (r >= 0) {
            tf_fwd[r] = t1 - t0;
            tf_all[r] = t2 - t0;
            g_fwd[r] = t3 - t2;
            g_all[r] = t4 - t2;
        }
    }
    double f1 = 2.0 * N * n * (2.0 * d), f5 = 5 * 2.0 * N * n * d;
    double mf = median(tf_fwd, reps), ma = median(tf_all, reps);
    double gf = median(g_fwd, reps), ga = median(g_all, reps);
    printf("| %lld | %lld | %lld | %d | %.2f | %.1f | %.1f | %.0f%% | %.2f | %.1f | %.1f | %.0f%% |\n",
           (long long)N, (long long)d, (long long)n, threads, mf * 1e3, f1 / mf * 1e-9,
           f1 / gf * 1e-9, 100.0 * gf / mf, ma * 1e3, f5 / ma * 1e-9, f5 / ga * 1e-9,
           100.0 * ga / ma);
    tf_pattention_free(set);
    tfi_free(X); tfi_free(Y); tfi_free(dY); tfi_free(dX); tfi_free(A); tfi_free(G);
    tfi_free(K); tfi_free(dK);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    if (reps < 1 || reps > 64)
        reps = 7;
    tf_info info = {.struct_size = sizeof info};
    tf_get_info(&info);
    printf("libtokenformer %s, BLIS %s, kernels '%s' (%s), medians of %d reps\n",
           info.version_string, info.blis_version, info.blis_arch, info.blis_arch_source, reps);
    printf("| N | d | n | threads | fwd ms | fwd GFLOP/s | GEMM-only GFLOP/s | fwd/GEMM "
           "| fwd+bwd ms | fwd+bwd GFLOP/s | GEMM-only GFLOP/s | fwd+bwd/GEMM |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int threads = 1; threads <= 2; threads++) {
        run(2048, 1024, 1024, threads, reps);
        run(2048, 1024, 4096, threads, reps);
    }
    return 0;
}
