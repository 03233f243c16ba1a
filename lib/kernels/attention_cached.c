/*
 * attention_cached.c -- the kernels of incremental decoding: attention of
 * new positions against a key/value cache, and the skinny (few-row)
 * products that decoding one token per sequence reduces Pattention and the
 * output head to.
 *
 * Why skinny kernels: with one row, X K^T and S V are matrix-vector
 * products bound by memory bandwidth (every weight is read once per token).
 * A BLIS GEMM packs the whole weight matrix first -- a read and a write of
 * it -- so it moves about three times the bytes.  These loops read each
 * weight once, for all the rows at once, and vectorise (target_clones picks
 * AVX-512, AVX2 or the baseline at load time).
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "internal.h"
#include "kernels/decode_ops.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TF_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TF_CLONES
#endif

/* Work (floats of weights or cache read) below which a kernel stays on one
 * thread.  A parallel region costs microseconds on an idle machine, and on
 * a loaded one a whole scheduler time slice whenever one of its threads is
 * preempted; a 2 MB matrix-vector product takes ~100 us on one core. */
#define SERIAL_WORK (1 << 19)

/* Dot product with 64 independent partial sums (four AVX-512 registers), so
 * that the loop is not bound by the latency of one accumulator. */
#define LANES 64
static inline float dot_lanes(const float *a, const float *b, int64_t n)
{
    float lane[LANES] = {0};
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++)
            lane[l] += a[j + l] * b[j + l];
    float tail = 0.0f;
    for (; j < n; j++)
        tail += a[j] * b[j];
    for (int w = LANES / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++)
            lane[l] += lane[l + w];
    return lane[0] + tail;
}

TF_CLONES static void xwt_rows(int64_t N, int64_t j0, int64_t j1, int64_t n, int64_t d,
                               const float *X, int64_t ldx, const float *W, float *A)
{
    for (int64_t j = j0; j < j1; j++) {
        const float *w = W + j * d;
        for (int64_t r = 0; r < N; r++)
            A[r * n + j] = dot_lanes(X + r * ldx, w, d);
    }
}

void tfi_skinny_xwt(int64_t N, int64_t n, int64_t d, const float *X, int64_t ldx,
                    const float *W, float *A, int nthreads)
{
    if (nthreads < 1 || n * d < SERIAL_WORK)
        nthreads = 1;
    if (nthreads == 1) {
        xwt_rows(N, 0, n, n, d, X, ldx, W, A);
        return;
    }
#pragma omp parallel num_threads(nthreads)
    {
        /* contiguous slices of W: each thread streams its own part */
        int nt = omp_get_num_threads(), tid = omp_get_thread_num();
        int64_t per = (n + nt - 1) / nt;
        int64_t j0 = tid * per, j1 = j0 + per < n ? j0 + per : n;
        if (j0 < j1)
            xwt_rows(N, j0, j1, n, d, X, ldx, W, A);
    }
}

/* acc[:, c0:c1] = S V[:, c0:c1], then Y[:, c0:c1] = beta Y + acc. */
TF_CLONES static void sv_cols(int64_t N, int64_t n, int64_t d_out, int64_t c0, int64_t c1,
                              const float *S, const float *V, float *Y, int64_t ldy,
                              float beta, float *acc)
{
    const int64_t w = c1 - c0;
    for (int64_t r = 0; r < N; r++)
        memset(acc + r * d_out + c0, 0, (size_t)w * sizeof(float));
    for (int64_t j = 0; j < n; j++) {
        const float *v = V + j * d_out + c0;
        for (int64_t r = 0; r < N; r++) {
            const float s = S[r * n + j];
            float *a = acc + r * d_out + c0;
#pragma omp simd
            for (int64_t c = 0; c < w; c++)
                a[c] += s * v[c];
        }
    }
    for (int64_t r = 0; r < N; r++) {
        float *y = Y + r * ldy + c0;
        const float *a = acc + r * d_out + c0;
        if (beta == 0.0f) {
            memcpy(y, a, (size_t)w * sizeof(float));
        } else {
#pragma omp simd
            for (int64_t c = 0; c < w; c++)
                y[c] = beta * y[c] + a[c];
        }
    }
}

void tfi_skinny_sv(int64_t N, int64_t n, int64_t d_out, const float *S, const float *V,
                   float *Y, int64_t ldy, float beta, float *acc, int nthreads)
{
    if (nthreads < 1 || n * d_out < SERIAL_WORK || d_out < 32)
        nthreads = 1;
    if (nthreads == 1) {
        sv_cols(N, n, d_out, 0, d_out, S, V, Y, ldy, beta, acc);
        return;
    }
#pragma omp parallel num_threads(nthreads)
    {
        /* column blocks in whole cache lines (16 floats), so that no two
         * threads write the same line of acc or Y */
        int nt = omp_get_num_threads(), tid = omp_get_thread_num();
        int64_t lines = (d_out + 15) / 16, per = (lines + nt - 1) / nt;
        int64_t c0 = tid * per * 16, c1 = c0 + per * 16;
        if (c1 > d_out)
            c1 = d_out;
        if (c0 < c1)
            sv_cols(N, n, d_out, c0, c1, S, V, Y, ldy, beta, acc);
    }
}

/* ---- attention against the cache -------------------------------------- */

/* Softmax of row[0..valid) in place (max-shifted, sum in double) and zeros
 * in row[valid..len): the same arithmetic as the full forward's rows. */
static void softmax_prefix(float *row, int64_t valid, int64_t len)
{
    float mx = row[0];
    for (int64_t j = 1; j < valid; j++)
        mx = row[j] > mx ? row[j] : mx;
    double sum = 0.0;
    for (int64_t j = 0; j < valid; j++) {
        row[j] = expf(row[j] - mx);
        sum += row[j];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < valid; j++)
        row[j] *= inv;
    for (int64_t j = valid; j < len; j++)
        row[j] = 0.0f;
}

/* One query row against positions [0, P) of a head: plain loops. */
TF_CLONES static void attend_row(float *o, const float *qv, const float *kh, const float *vh,
                                 int64_t D, int64_t hd, int64_t P, float scale, float *sc)
{
    for (int64_t j = 0; j < P; j++)
        sc[j] = dot_lanes(qv, kh + j * D, hd) * scale;
    softmax_prefix(sc, P, P);
    memset(o, 0, (size_t)hd * sizeof(float));
    for (int64_t j = 0; j < P; j++) {
        const float p = sc[j];
        const float *v = vh + j * D;
#pragma omp simd
        for (int64_t c = 0; c < hd; c++)
            o[c] += p * v[c];
    }
}

/* Rows per (b, h) from which two GEMMs beat the loops. */
#define GEMM_ROWS 8

void tfi_attention_cached(float *out, const float *q, const float *kc, const float *vc,
                          int64_t B, int64_t T, int64_t H, int64_t hd, int64_t S,
                          int64_t pos0, float *scratch, int nthreads)
{
    const int64_t D = H * hd, P = pos0 + T;
    const float scale = (float)(1.0 / sqrt((double)hd));
    if (nthreads < 1 || B * H * T * P * hd < SERIAL_WORK)
        nthreads = 1;

#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t bh = 0; bh < B * H; bh++) {
        const int64_t b = bh / H, h = bh % H;
        float *sc = scratch + (int64_t)omp_get_thread_num() * T * S;
        const float *qh = q + b * T * D + h * hd;
        const float *kh = kc + b * S * D + h * hd, *vh = vc + b * S * D + h * hd;
        float *oh = out + b * T * D + h * hd;
        if (T < GEMM_ROWS) {
            for (int64_t t = 0; t < T; t++)
                attend_row(oh + t * D, qh + t * D, kh, vh, D, hd, pos0 + t + 1, scale, sc);
            continue;
        }
        /* Sc[T, P] = Q K^T * scale; row t keeps columns [0, pos0+t] */
        tfi_sgemm(0, 1, T, P, hd, scale, qh, D, kh, D, 0.0f, sc, P, 1);
        for (int64_t t = 0; t < T; t++)
            softmax_prefix(sc + t * P, pos0 + t + 1, P);
        tfi_sgemm(0, 0, T, hd, P, 1.0f, sc, P, vh, D, 0.0f, oh, D, 1);
    }
}
