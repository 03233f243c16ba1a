/*
 * rotary.c -- rotary position embedding, GPT-NeoX "rotate_half" layout.
 *
 * The first r dims of every head are two halves x1 = x[0, r/2) and
 * x2 = x[r/2, r); pair (x1[j], x2[j]) is rotated by the angle
 *   pos * inv_freq[j],   inv_freq[j] = base^(-2j/r),  j < r/2:
 *   x1' = x1 c - x2 s,   x2' = x2 c + x1 s.
 * Dims [r, hd) pass through.  A rotation is orthogonal, so the backward is
 * the transpose: the same formula with s -> -s.
 */
#include <math.h>

#include "internal.h"
#include "kernels/ops.h"

void tfi_rotary_tables(float *cos_t, float *sin_t, int64_t T, int r, double base)
{
    int half = r / 2;
    /* In double, then rounded once: angles reach T (thousands of radians),
     * where a float angle would already be off by ~1e-4 rad. */
    for (int j = 0; j < half; j++) {
        double inv_freq = pow(base, -2.0 * j / (double)r); /* once per pair, not per position */
        for (int64_t t = 0; t < T; t++) {
            double angle = (double)t * inv_freq;
            cos_t[t * half + j] = (float)cos(angle);
            sin_t[t * half + j] = (float)sin(angle);
        }
    }
}

typedef struct rotary_loop {
    float *x;
    int64_t T, H, hd, ld, pos0;
    int half;
    float sign;
    const float *cos_t, *sin_t;
} rotary_loop;

static void rotate_rows(void *arg, int64_t r0, int64_t r1)
{
    const rotary_loop *a = arg;
    float *x = a->x;
    const int64_t T = a->T, H = a->H, hd = a->hd, ld = a->ld, pos0 = a->pos0;
    const int half = a->half;
    const float sign = a->sign;
    for (int64_t row = r0; row < r1; row++) {
        int64_t t = row % T;
        const float *c = a->cos_t + (pos0 + t) * half;
        const float *s = a->sin_t + (pos0 + t) * half;
        for (int64_t h = 0; h < H; h++) {
            float *xh = x + row * ld + h * hd;
            for (int j = 0; j < half; j++) {
                float x1 = xh[j], x2 = xh[j + half];
                float sj = sign * s[j];
                xh[j] = x1 * c[j] - x2 * sj;
                xh[j + half] = x2 * c[j] + x1 * sj;
            }
        }
    }
}

void tfi_rotary_apply(float *x, int64_t B, int64_t T, int64_t H, int64_t hd,
                      int64_t ld, int r, const float *cos_t, const float *sin_t,
                      int64_t pos0, int inverse)
{
    /* The inverse rotates by -angle: cos is even, sin is odd. */
    rotary_loop a = {x, T, H, hd, ld, pos0, r / 2, inverse ? -1.0f : 1.0f, cos_t, sin_t};
    tfi_parallel_rows(B * T, tfi_threads_for(B * T * H * r), rotate_rows, &a);
}
