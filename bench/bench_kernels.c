/*
 * bench_kernels.c -- the element-wise kernels of every instruction set the
 * CPU runs (kernels/arch.h), side by side in one run: nanoseconds per
 * element, one thread, in thread CPU time (steady on a shared machine).
 *
 *   build/bench/bench_kernels [reps]
 *
 * Rows of 1024 (Theta: a Pattention of n = 1024 parameter tokens; the
 * attention softmax: T = 1024; LayerNorm: d = 1024), 64 rows a call, each
 * figure the median of reps (default 7) timings of 200 calls.  The ratio
 * column is the AVX2 time over the AVX-512 time: what an AVX2-only CPU of
 * the same clock pays more per element.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "internal.h"
#include "kernels/arch.h"
#include "kernels/theta.h"
#include "kernels/vecmath.h"

#define ROWS 64
#define WIDTH 1024
#define CALLS 200
#define MAX_REPS 64

enum { K_GELU, K_EXP, K_THETA_FWD, K_THETA_BWD, K_SOFTMAX, K_LAYERNORM, K_COUNT };
static const char *const kernel_names[K_COUNT] = {
    "gelu (erfc, exp polynomials)", "exp", "Theta forward, l2_norm_gelu",
    "Theta backward, l2_norm_gelu", "attention softmax row", "LayerNorm row"};

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct bufs {
    float *x, *a, *s, *g, *y, *r, *mean, *rstd;
} bufs;

static void run(int kernel, tfi_arch arch, bufs *b)
{
    const int64_t n = (int64_t)ROWS * WIDTH;
    switch (kernel) {
    case K_GELU: tfi_gelu_fast(arch, b->x, b->y, n); break;
    case K_EXP: tfi_exp_fast(arch, b->x, b->y, n); break;
    case K_THETA_FWD:
        memcpy(b->a, b->x, (size_t)n * sizeof(float));
        tfi_theta_forward_arch(arch, TF_NORM_L2_NORM_GELU, 32.0f, ROWS, WIDTH, b->a, b->s, b->r);
        break;
    case K_THETA_BWD:
        memcpy(b->y, b->g, (size_t)n * sizeof(float));
        tfi_theta_backward_arch(arch, TF_NORM_L2_NORM_GELU, 32.0f, ROWS, WIDTH, b->a, b->s,
                                b->r, b->y);
        break;
    case K_SOFTMAX:
        memcpy(b->y, b->x, (size_t)n * sizeof(float));
        for (int i = 0; i < ROWS; i++)
            tfi_row_softmax_masked_arch(arch, b->y + (int64_t)i * WIDTH, WIDTH, WIDTH);
        break;
    case K_LAYERNORM:
        for (int i = 0; i < ROWS; i++)
            tfi_row_layernorm_arch(arch, b->y + (int64_t)i * WIDTH, b->mean + i, b->rstd + i,
                                   b->x + (int64_t)i * WIDTH, NULL, NULL, WIDTH, 1e-5f);
        break;
    }
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    reps = reps < 1 ? 1 : reps > MAX_REPS ? MAX_REPS : reps;
    const size_t n = (size_t)ROWS * WIDTH;
    bufs b;
    float **all[] = {&b.x, &b.a, &b.s, &b.g, &b.y};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!(*all[i] = malloc(n * sizeof(float))))
            return 1;
    b.r = malloc(ROWS * sizeof(float));
    b.mean = malloc(ROWS * sizeof(float));
    b.rstd = malloc(ROWS * sizeof(float));
    if (!b.r || !b.mean || !b.rstd)
        return 1;
    tfi_rng rng;
    tfi_rng_seed(&rng, 7);
    for (size_t i = 0; i < n; i++) {
        b.x[i] = (float)tfi_rng_normal(&rng);
        b.g[i] = (float)tfi_rng_normal(&rng);
    }
    memcpy(b.a, b.x, n * sizeof(float));
    tfi_theta_forward_arch(TFI_ARCH_GENERIC, TF_NORM_L2_NORM_GELU, 32.0f, ROWS, WIDTH, b.a, b.s,
                           b.r);

    tf_info info = {.struct_size = sizeof info};
    tf_get_info(&info);
    printf("libtokenformer %s, kernels chosen by the runtime: %s (%s); ns per element, "
           "1 thread, CPU time, medians of %d\n",
           info.version_string, info.kernel_arch, info.kernel_arch_source, reps);
    printf("| kernel | generic | avx2 | avx512 | avx2 / avx512 |\n|---|---|---|---|---|\n");
    for (int k = 0; k < K_COUNT; k++) {
        double ns[TFI_ARCH_COUNT];
        for (int a = 0; a < TFI_ARCH_COUNT; a++) {
            ns[a] = NAN;
            if (!tfi_arch_supported((tfi_arch)a))
                continue;
            double t[MAX_REPS];
            run(k, (tfi_arch)a, &b); /* warm */
            for (int r = 0; r < reps; r++) {
                double t0 = cpu_now();
                for (int c = 0; c < CALLS; c++)
                    run(k, (tfi_arch)a, &b);
                t[r] = (cpu_now() - t0) / ((double)CALLS * (double)n) * 1e9;
            }
            ns[a] = median(t, reps);
        }
        printf("| %s |", kernel_names[k]);
        for (int a = 0; a < TFI_ARCH_COUNT; a++)
            printf(isnan(ns[a]) ? " - |" : " %.3f |", ns[a]);
        printf(isnan(ns[1] / ns[2]) ? " - |\n" : " %.2f |\n", ns[1] / ns[2]);
    }
    free(b.x), free(b.a), free(b.s), free(b.g), free(b.y), free(b.r), free(b.mean), free(b.rstd);
    return 0;
}
