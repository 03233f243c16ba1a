/*
 * theta.c -- Pattention's row-wise normalisation, forward and backward.
 *
 * Math per row a (length n), tau the scale:
 *   l2_norm_gelu  z = a * tau/||a||,  s = gelu(z)
 *                 da = tau/||a|| * (dz - z (z.dz) / tau^2),  dz = ds gelu'(z)
 *   gelu_l2_norm  g = gelu(a), s = g * tau/||g||
 *                 dg = tau/||g|| * (ds - s (s.ds) / tau^2),  da = dg gelu'(a)
 *   softmax       s = tau * exp(a - max) / sum
 *                 da = s * (ds - (s.ds) / tau)
 * with gelu(x) = x Phi(x), gelu'(x) = Phi(x) + x phi(x).
 *
 * Zero-norm guard: if ||a|| (or ||g||) is 0 the row scale is 0, so the
 * row's output and gradient are 0 instead of the reference's NaN.
 *
 * The fast path evaluates erfc and exp with polynomials that vectorise
 * (no libm calls in the loops) and is compiled for AVX-512, AVX2 and a
 * baseline (arch.h), the runtime's choice picked per call.
 */
#include <math.h>

#include "internal.h"
#include "kernels/arch.h"
#include "kernels/theta.h"
#include "kernels/vecmath.h"


/* ---- plain: the math as written, in double ---------------------------- */

static double phi_cdf(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }
static double phi_pdf(double x) { return exp(-0.5 * x * x) * 0.39894228040143267794; }

static void plain_row_forward(tf_norm_type norm, double tau, int64_t n, float *a,
                              float *s, float *r)
{
    if (norm == TF_NORM_SOFTMAX) {
        double mx = a[0], sum = 0.0;
        for (int64_t j = 1; j < n; j++)
            mx = a[j] > mx ? a[j] : mx;
        for (int64_t j = 0; j < n; j++)
            sum += exp(a[j] - mx);
        for (int64_t j = 0; j < n; j++)
            s[j] = (float)(tau * exp(a[j] - mx) / sum);
        return;
    }
    if (norm == TF_NORM_L2_NORM_GELU) {
        double ss = 0.0;
        for (int64_t j = 0; j < n; j++)
            ss += (double)a[j] * a[j];
        double scale = ss > 0.0 ? tau / sqrt(ss) : 0.0;
        for (int64_t j = 0; j < n; j++) {
            double z = a[j] * scale;
            a[j] = (float)z;
            s[j] = (float)(z * phi_cdf(z));
        }
        *r = (float)scale;
        return;
    }
    /* gelu_l2_norm */
    double ss = 0.0;
    for (int64_t j = 0; j < n; j++) {
        double g = a[j] * phi_cdf(a[j]);
        ss += g * g;
    }
    double scale = ss > 0.0 ? tau / sqrt(ss) : 0.0;
    for (int64_t j = 0; j < n; j++)
        s[j] = (float)(a[j] * phi_cdf(a[j]) * scale);
    *r = (float)scale;
}

static void plain_row_backward(tf_norm_type norm, double tau, int64_t n, const float *a,
                               const float *s, float r, float *g)
{
    double dot = 0.0;
    if (norm == TF_NORM_SOFTMAX) {
        for (int64_t j = 0; j < n; j++)
            dot += (double)s[j] * g[j];
        for (int64_t j = 0; j < n; j++)
            g[j] = (float)(s[j] * (g[j] - dot / tau));
        return;
    }
    if (norm == TF_NORM_L2_NORM_GELU) {
        for (int64_t j = 0; j < n; j++) {
            double z = a[j];
            double dz = g[j] * (phi_cdf(z) + z * phi_pdf(z));
            g[j] = (float)dz;
            dot += z * dz;
        }
        for (int64_t j = 0; j < n; j++)
            g[j] = (float)(r * (g[j] - (double)a[j] * dot / (tau * tau)));
        return;
    }
    for (int64_t j = 0; j < n; j++)
        dot += (double)s[j] * g[j];
    for (int64_t j = 0; j < n; j++) {
        double x = a[j];
        double dg = r * (g[j] - s[j] * dot / (tau * tau));
        g[j] = (float)(dg * (phi_cdf(x) + x * phi_pdf(x)));
    }
}

void tfi_theta_forward_plain(tf_norm_type norm, float tau, int64_t N, int64_t n,
                             float *A, float *S, float *R)
{
    for (int64_t i = 0; i < N; i++)
        plain_row_forward(norm, tau, n, A + i * n, S + i * n, R + i);
}

void tfi_theta_backward_plain(tf_norm_type norm, float tau, int64_t N, int64_t n,
                              const float *A, const float *S, const float *R, float *G)
{
    for (int64_t i = 0; i < N; i++)
        plain_row_backward(norm, tau, n, A + i * n, S + i * n, R[i], G + i * n);
}

/* ---- fast: vectorisable polynomial exp and erfc ----------------------- */

static inline float gelu_poly(float x) { return x * cdf_poly(x); }

/* x phi(x) is below 1e-37 from |x| = 13.2 on, where exp_poly's clamp (no
 * result below e^-87) would leave x e^-87 * phi(0): 2.2 at x = 3e38.  So x
 * is clamped to [-13.2, 13.2] in that term (NaN passes the comparisons). */
static inline float gelu_grad_poly(float x)
{
    float xc = x < -13.2f ? -13.2f : x > 13.2f ? 13.2f : x;
    return cdf_poly(x) + xc * exp_poly(-0.5f * xc * xc) * INV_SQRT_2PI;
}

/* gelu'(z) given the forward's s = gelu(z) = z Phi(z): Phi(z) = s / z
 * spares the backward a second erfc, its costliest part.  Near 0, where the
 * quotient loses precision, Phi(z) = 1/2 + z phi(0) to O(z^3) (~1e-12 below
 * 2^-12). */
static inline float gelu_grad_from_output(float z, float s)
{
    float cdf = fabsf(z) > 0x1p-12f ? s / z : 0.5f + z * INV_SQRT_2PI;
    return cdf + z * exp_poly(-0.5f * z * z) * INV_SQRT_2PI;
}

/* Sums over a row go through the 16 lanes of vecmath.h.  Besides
 * vectorising, this makes the sum independent of zeros appended to the
 * row: growth with zero keys and a pinned tau then reproduces the old
 * outputs bit for bit, whatever n. */
static inline float dot(const float *a, const float *b, int64_t n) { return lanes_dot(a, b, n); }

static inline float sum_squares(const float *a, int64_t n) { return dot(a, a, n); }


static inline TFI_BODY void gelu_body(const float *x, float *y, int64_t count)
{
#pragma omp simd
    for (int64_t j = 0; j < count; j++)
        y[j] = gelu_poly(x[j]);
}

static inline TFI_BODY void gelu_grad_body(const float *x, float *dy, int64_t count)
{
#pragma omp simd
    for (int64_t j = 0; j < count; j++)
        dy[j] = gelu_grad_poly(x[j]);
}

static inline TFI_BODY void exp_body(const float *x, float *y, int64_t count)
{
#pragma omp simd
    for (int64_t j = 0; j < count; j++)
        y[j] = exp_poly(x[j]);
}

TFI_ARCH_VARIANTS(gelu, (const float *x, float *y, int64_t count), (x, y, count));
TFI_ARCH_VARIANTS(gelu_grad, (const float *x, float *dy, int64_t count), (x, dy, count));
TFI_ARCH_VARIANTS(exp, (const float *x, float *y, int64_t count), (x, y, count));

void tfi_gelu_fast(tfi_arch arch, const float *x, float *y, int64_t count)
{
    gelu_variants[arch](x, y, count);
}

void tfi_gelu_grad_fast(tfi_arch arch, const float *x, float *dy, int64_t count)
{
    gelu_grad_variants[arch](x, dy, count);
}

void tfi_exp_fast(tfi_arch arch, const float *x, float *y, int64_t count)
{
    exp_variants[arch](x, y, count);
}

static inline TFI_BODY void row_forward_body(tf_norm_type norm, float tau, int64_t n,
                                             float *a, float *s, float *r)
{
    if (norm == TF_NORM_SOFTMAX) {
        float mx = a[0], sum = 0.0f;
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < n; j++)
            mx = a[j] > mx ? a[j] : mx;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < n; j++) {
            s[j] = exp_poly(a[j] - mx);
            sum += s[j];
        }
        float scale = tau / sum;
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            s[j] *= scale;
        return;
    }
    if (norm == TF_NORM_L2_NORM_GELU) {
        float ss = sum_squares(a, n);
        float scale = ss > 0.0f ? tau / sqrtf(ss) : 0.0f;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            float z = a[j] * scale;
            a[j] = z;
            s[j] = gelu_poly(z);
        }
        *r = scale;
        return;
    }
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        s[j] = gelu_poly(a[j]);
    float ss = sum_squares(s, n);
    float scale = ss > 0.0f ? tau / sqrtf(ss) : 0.0f;
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        s[j] *= scale;
    *r = scale;
}

static inline TFI_BODY void row_backward_body(tf_norm_type norm, float tau, int64_t n,
                                              const float *a, const float *s, float r,
                                              float *g)
{
    if (norm == TF_NORM_SOFTMAX) {
        float c = dot(s, g, n) / tau;
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            g[j] = s[j] * (g[j] - c);
        return;
    }
    float inv_tau2 = 1.0f / (tau * tau);
    if (norm == TF_NORM_L2_NORM_GELU) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            g[j] *= gelu_grad_from_output(a[j], s[j]);
        float c = dot(a, g, n) * inv_tau2;
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            g[j] = r * (g[j] - a[j] * c);
        return;
    }
    float c = dot(s, g, n) * inv_tau2;
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        g[j] = r * (g[j] - s[j] * c) * gelu_grad_poly(a[j]);
}

TFI_ARCH_VARIANTS(row_forward,
                  (tf_norm_type norm, float tau, int64_t n, float *a, float *s, float *r),
                  (norm, tau, n, a, s, r));
TFI_ARCH_VARIANTS(row_backward,
                  (tf_norm_type norm, float tau, int64_t n, const float *a, const float *s,
                   float r, float *g),
                  (norm, tau, n, a, s, r, g));

typedef struct theta_loop {
    tf_norm_type norm;
    float tau;
    int64_t n;
    float *A, *S, *R, *G;
    const float *cA, *cS, *cR;
    tfi_arch arch; /* read once per call, not per task */
} theta_loop;

/* Rows worth a parallel loop: waking the pool costs more below. */
static int theta_threads(int64_t N, int64_t n)
{
    return N * n > 32768 ? tfi_num_threads() : 1;
}

static void forward_rows(void *arg, int64_t r0, int64_t r1)
{
    const theta_loop *a = arg;
    const int64_t n = a->n;
    void (*const row)(tf_norm_type, float, int64_t, float *, float *, float *) =
        row_forward_variants[a->arch];
    for (int64_t i = r0; i < r1; i++)
        row(a->norm, a->tau, n, a->A + i * n, a->S + i * n, a->R + i);
}

void tfi_theta_forward(tf_norm_type norm, float tau, int64_t N, int64_t n, float *A,
                       float *S, float *R)
{
    theta_loop a = {.norm = norm, .tau = tau, .n = n, .A = A, .S = S, .R = R,
                    .arch = tfi_arch_active()};
    tfi_parallel_rows(N, theta_threads(N, n), forward_rows, &a);
}

static void backward_rows(void *arg, int64_t r0, int64_t r1)
{
    const theta_loop *a = arg;
    const int64_t n = a->n;
    void (*const row)(tf_norm_type, float, int64_t, const float *, const float *, float,
                      float *) = row_backward_variants[a->arch];
    for (int64_t i = r0; i < r1; i++)
        row(a->norm, a->tau, n, a->cA + i * n, a->cS + i * n, a->cR[i], a->G + i * n);
}

void tfi_theta_backward(tf_norm_type norm, float tau, int64_t N, int64_t n,
                        const float *A, const float *S, const float *R, float *G)
{
    theta_loop a = {.norm = norm, .tau = tau, .n = n, .cA = A, .cS = S, .cR = R, .G = G,
                    .arch = tfi_arch_active()};
    tfi_parallel_rows(N, theta_threads(N, n), backward_rows, &a);
}

void tfi_theta_forward_arch(tfi_arch arch, tf_norm_type norm, float tau, int64_t N,
                            int64_t n, float *A, float *S, float *R)
{
    for (int64_t i = 0; i < N; i++)
        row_forward_variants[arch](norm, tau, n, A + i * n, S + i * n, R + i);
}

void tfi_theta_backward_arch(tfi_arch arch, tf_norm_type norm, float tau, int64_t N,
                             int64_t n, const float *A, const float *S, const float *R,
                             float *G)
{
    for (int64_t i = 0; i < N; i++)
        row_backward_variants[arch](norm, tau, n, A + i * n, S + i * n, R[i], G + i * n);
}
