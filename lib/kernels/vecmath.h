/*
 * vecmath.h -- float exp and erfc as plain polynomials that compilers
 * vectorise (no libm calls inside loops), shared by the kernels.  Accuracy:
 * exp's polynomial is good to ~1e-9 relative (Taylor degree 8 after range
 * reduction), erfc's fit to 1.2e-7 relative; evaluated in float, exp is
 * within 9.3e-8 relative of float64's and gelu built on erfc within 7.2e-8
 * (1 + |gelu|) over the whole float range (measured for every instruction
 * set; test_ops.c's test_vecmath_whole_range holds them to a little more).
 * In erfc's far tail the float rounding of -z^2, the argument of exp, adds
 * a relative error that grows with z^2: 1.7e-5 at z = 8.1, where erfc is
 * below 1e-29.
 */
#ifndef TF_KERNELS_VECMATH_H
#define TF_KERNELS_VECMATH_H

#include <math.h>
#include <stdint.h>

#include "kernels/arch.h"

/* The few-row products (fewrows.c) are compiled for AVX-512, AVX2 and a
 * baseline, picked at load time (GCC's target_clones, through an ifunc);
 * the element-wise kernels use arch.h's variants instead. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TF_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TF_CLONES
#endif

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

/* e^x for x in float range: x = k ln2 + r, |r| <= ln2/2, e^r by its Taylor
 * polynomial of degree 8 (relative error ~1e-9), 2^k built in the exponent
 * bits.  Inputs are clamped to [-87, 88] (results below ~1.6e-38 are not
 * needed here).
 *
 * 2^k comes from the bits of t = x log2(e) + 1.5 * 2^23, whose low mantissa
 * bits hold k (rounded) in two's complement, rather than from a float-to-int
 * cast: unsigned arithmetic on those bits is defined for every input, where
 * (int32_t)k of a NaN and the shift of its negative result were undefined
 * behaviour.  So -inf gives e^-87, +inf e^88 and NaN gives NaN (NaN passes
 * the clamps, whose comparisons are false for it, and p is NaN whatever
 * 2^k is), at no extra cost in the vector loops. */
static inline float exp_poly(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adds and rounds */
    const uint32_t round_magic_bits = 0x4B400000u;
    union { float f; uint32_t u; } t, two_k;
    t.f = x * 1.44269504088896341f + round_magic; /* bits: round_magic_bits + k */
    float k = t.f - round_magic;
    float r = x - k * 0.693145751953125f;  /* ln2 high part, exact in k*hi */
    r = r - k * 1.428606765330187e-06f;    /* ln2 low part */
    float p = 1.0f / 40320.0f;
    p = p * r + 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    two_k.u = (t.u - round_magic_bits + 127u) << 23; /* k in [-126, 127]: a normal 2^k */
    return p * two_k.f;
}

/* erfc(z) for z >= 0, Chebyshev fit with fractional error < 1.2e-7
 * everywhere (Numerical Recipes' erfcc). */
static inline float erfc_poly(float z)
{
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    return t * exp_poly(-z * z + p);
}

/* Phi(x), computed from the tail on each side so that neither side loses
 * precision to cancellation. */
static inline float cdf_poly(float x)
{
    float tail = 0.5f * erfc_poly(fabsf(x) * INV_SQRT2);
    return x >= 0.0f ? 1.0f - tail : tail;
}

/* The row kernels' sums go through 16 fixed lanes: element j always into
 * lane j % 16.  That vectorises, and the order does not depend on the
 * vector width of the clone that runs (nor, for theta.c, on zeros appended
 * to a row).  Callers combine the lanes as they need. */
#define TF_LANES 16

/* lane[j % 16] += a[j] * b[j] for j in [0, n). */
static inline void lanes_add_products(float *lane, const float *a, const float *b, int64_t n)
{
    int64_t j = 0;
    for (; j + TF_LANES <= n; j += TF_LANES)
        for (int l = 0; l < TF_LANES; l++)
            lane[l] += a[j + l] * b[j + l];
    for (int l = 0; j + l < n; l++)
        lane[l] += a[j + l] * b[j + l];
}

/* The lanes combined in a fixed tree (halves added pairwise), in float. */
static inline float lanes_tree_sum(float *lane)
{
    for (int w = TF_LANES / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++)
            lane[l] += lane[l + w];
    return lane[0];
}

/* The dot product of a and b [n] in that order: 16 lanes, then the tree. */
static inline float lanes_dot(const float *a, const float *b, int64_t n)
{
    float lane[TF_LANES] = {0};
    lanes_add_products(lane, a, b, n);
    return lanes_tree_sum(lane);
}

/* Row kernels shared by the model's kernels (rowops.c), run with the
 * runtime's instruction set; the *_arch forms take the set (tests). */

/* In place: row[0..len) = softmax(row[0..len)), row[len..width) = 0 (the
 * masked places of a causal row; len = width for none).  Max-shifted; the
 * sum's order is fixed (16 lanes). */
void tfi_row_softmax_masked(float *row, int64_t len, int64_t width);
void tfi_row_softmax_masked_arch(tfi_arch arch, float *row, int64_t len, int64_t width);

/* In place, softmax's backward on such a row: ds[0..len) = p * (ds -
 * <ds, p>) with ds holding dL/dp on entry, ds[len..width) = 0. */
void tfi_row_softmax_masked_backward(float *ds, const float *p, int64_t len, int64_t width);
void tfi_row_softmax_masked_backward_arch(tfi_arch arch, float *ds, const float *p, int64_t len,
                                          int64_t width);

/* One LayerNorm row: y = (x - mean) * rstd (* w + b if w), biased variance;
 * *mean and *rstd are kept for backward.  Two passes (mean, then centred
 * squares), 16 float lanes combined in double. */
void tfi_row_layernorm(float *y, float *mean, float *rstd, const float *x, const float *w,
                       const float *b, int64_t d, float eps);
void tfi_row_layernorm_arch(tfi_arch arch, float *y, float *mean, float *rstd, const float *x,
                            const float *w, const float *b, int64_t d, float eps);

#endif /* TF_KERNELS_VECMATH_H */
