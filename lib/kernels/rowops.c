/*
 * rowops.c -- row kernels of the attention softmax and LayerNorm, compiled
 * per instruction set (arch.h) so that they vectorise wherever they run.
 * Sums go through 16 fixed lanes: vectorisable, and in an order that does
 * not depend on the vector width picked at load time.
 */
#include <math.h>

#include "kernels/arch.h"
#include "kernels/vecmath.h"

#define LANES TF_LANES

static inline double lanes_to_double(const float *lane)
{
    double s = 0.0;
    for (int l = 0; l < LANES; l++)
        s += lane[l];
    return s;
}

static inline TFI_BODY void softmax_masked_body(float *row, int64_t len, int64_t width)
{
    float mx = row[0];
    for (int64_t j = 1; j < len; j++)
        mx = row[j] > mx ? row[j] : mx;
    /* every exponent is <= 0: no overflow */
#pragma omp simd
    for (int64_t j = 0; j < len; j++)
        row[j] = exp_poly(row[j] - mx);
    float lane[LANES] = {0};
    int64_t j = 0;
    for (; j + LANES <= len; j += LANES)
        for (int l = 0; l < LANES; l++)
            lane[l] += row[j + l];
    for (int l = 0; j + l < len; l++)
        lane[l] += row[j + l];
    float inv = (float)(1.0 / lanes_to_double(lane));
#pragma omp simd
    for (int64_t k = 0; k < len; k++)
        row[k] *= inv;
    for (int64_t k = len; k < width; k++)
        row[k] = 0.0f;
}

/* The row is shifted by its first element before the sums: for rows whose
 * mean is large against their spread (|mean| / std ~ 1e4), x - x[0] is
 * exact and the small shifted mean keeps float accuracy. */
static inline TFI_BODY void layernorm_body(float *y, float *mean, float *rstd, const float *x,
                                           const float *w, const float *b, int64_t d,
                                           float eps)
{
    const float pivot = x[0];
    float lane[LANES] = {0};
    int64_t j = 0;
    for (; j + LANES <= d; j += LANES)
        for (int l = 0; l < LANES; l++)
            lane[l] += x[j + l] - pivot;
    for (int l = 0; j + l < d; l++)
        lane[l] += x[j + l] - pivot;
    const double mu_shift = lanes_to_double(lane) / (double)d;
    const float mu = (float)mu_shift;
    float sq[LANES] = {0};
    for (j = 0; j + LANES <= d; j += LANES)
        for (int l = 0; l < LANES; l++) {
            float c = (x[j + l] - pivot) - mu;
            sq[l] += c * c;
        }
    for (int l = 0; j + l < d; l++) {
        float c = (x[j + l] - pivot) - mu;
        sq[l] += c * c;
    }
    const float rs = (float)(1.0 / sqrt(lanes_to_double(sq) / (double)d + (double)eps));
    *mean = (float)((double)pivot + mu_shift);
    *rstd = rs;
    if (w) {
#pragma omp simd
        for (int64_t k = 0; k < d; k++)
            y[k] = ((x[k] - pivot) - mu) * rs * w[k] + b[k];
    } else {
#pragma omp simd
        for (int64_t k = 0; k < d; k++)
            y[k] = ((x[k] - pivot) - mu) * rs;
    }
}

static inline TFI_BODY void softmax_masked_backward_body(float *ds, const float *p,
                                                        int64_t len, int64_t width)
{
    float lane[LANES] = {0};
    lanes_add_products(lane, ds, p, len);
    const float dot = (float)lanes_to_double(lane);
#pragma omp simd
    for (int64_t k = 0; k < len; k++)
        ds[k] = p[k] * (ds[k] - dot);
    for (int64_t k = len; k < width; k++)
        ds[k] = 0.0f;
}

TFI_ARCH_VARIANTS(softmax_masked, (float *row, int64_t len, int64_t width), (row, len, width));
TFI_ARCH_VARIANTS(layernorm,
                  (float *y, float *mean, float *rstd, const float *x, const float *w,
                   const float *b, int64_t d, float eps),
                  (y, mean, rstd, x, w, b, d, eps));
TFI_ARCH_VARIANTS(softmax_masked_backward, (float *ds, const float *p, int64_t len, int64_t width),
                  (ds, p, len, width));

void tfi_row_softmax_masked_arch(tfi_arch arch, float *row, int64_t len, int64_t width)
{
    softmax_masked_variants[arch](row, len, width);
}

void tfi_row_softmax_masked(float *row, int64_t len, int64_t width)
{
    softmax_masked_variants[tfi_arch_active()](row, len, width);
}

void tfi_row_layernorm_arch(tfi_arch arch, float *y, float *mean, float *rstd, const float *x,
                            const float *w, const float *b, int64_t d, float eps)
{
    layernorm_variants[arch](y, mean, rstd, x, w, b, d, eps);
}

void tfi_row_layernorm(float *y, float *mean, float *rstd, const float *x, const float *w,
                       const float *b, int64_t d, float eps)
{
    layernorm_variants[tfi_arch_active()](y, mean, rstd, x, w, b, d, eps);
}

void tfi_row_softmax_masked_backward_arch(tfi_arch arch, float *ds, const float *p, int64_t len,
                                          int64_t width)
{
    softmax_masked_backward_variants[arch](ds, p, len, width);
}

void tfi_row_softmax_masked_backward(float *ds, const float *p, int64_t len, int64_t width)
{
    softmax_masked_backward_variants[tfi_arch_active()](ds, p, len, width);
}
