/*
 * attention.c -- causal multi-head softmax attention, forward and backward.
 *
 * Per (batch b, head h), with Q, K, V the [T, hd] slices of that head and
 * scale = 1/sqrt(hd):
 *   S = Q K^T * scale,  S[i][j] = -inf for j > i (causal)
 *   P = softmax over each row of S,   O = P V
 * Backward, given dO:
 *   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dP * P))
 *   dQ = dS K * scale,  dK = dS^T Q * scale
 *
 * A head's slice is addressed in place: Q = q + b*T*D + h*hd with row
 * stride D = H*hd, so no copies.  The (b, h) pairs run in parallel under
 * OpenMP and every GEMM inside uses one BLIS thread (BLIS must not nest
 * threads inside an OpenMP team).
 *
 * Causality: rows are taken in blocks of ATTN_BLOCK.  Rows [i0, i1) only see
 * columns [0, i1), so each GEMM touches the lower block triangle of the
 * T x T matrices and skips the rest (about half the work for long T).
 * Entries above the diagonal inside a diagonal block are computed by the
 * GEMM but then overwritten with exact zeros, so probs and dprobs are
 * always zero above the diagonal.
 */
#include <math.h>

#include "internal.h"
#include "kernels/ops.h"
#include "kernels/vecmath.h"

/* 64 rows: at T = 128 that computes 3/4 of the full T x T products.  One
 * 128-row block (fewer, larger GEMMs) was 1.5% faster while BLIS read K
 * transposed; with plain copies (below) the smaller blocks win by 1-3%,
 * and 32 rows lose again to the number of calls. */
#define ATTN_BLOCK 64

/* Heads of at most this many floats (T * hd) are multiplied through a
 * transposed copy on the stack (64 KB): S = Q K^T and dP = dO V^T then read
 * a plain right-hand operand, which BLIS's AMD kernels take at twice the
 * rate (transpose.c).  Longer heads let BLIS read K and V transposed. */
#define ATTN_COPY_MAX 16384

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* C[rows, cols] = alpha A B^T for the head slices A (row stride D) and B
 * [cols, hd] (row stride D); bt, if not NULL, holds B^T [hd, T] (row
 * stride T) for the first cols columns. */
static void head_times_transposed(int64_t rows, int64_t cols, int64_t hd, float alpha,
                                  const float *A, const float *B, const float *bt, int64_t D,
                                  int64_t T, float *C, int64_t ldc)
{
    if (bt)
        tfi_sgemm(0, 0, rows, cols, hd, alpha, A, D, bt, T, 0.0f, C, ldc, 1);
    else
        tfi_sgemm(0, 1, rows, cols, hd, alpha, A, D, B, D, 0.0f, C, ldc, 1);
}

/* Row i of S (columns [0, i] meaningful) -> row i of P, zeros after i. */
void tfi_attention_forward(float *out, float *probs, const float *q,
                           const float *k, const float *v, int64_t B, int64_t T,
                           int64_t H, int64_t hd)
{
    const int64_t D = H * hd;
    const float scale = (float)(1.0 / sqrt((double)hd));

#pragma omp parallel for num_threads(tfi_threads_for(B * H * T * T * hd)) schedule(static)
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H;
        int64_t off = b * T * D + h * hd; /* first row of this head */
        const float *qh = q + off, *kh = k + off, *vh = v + off;
        float *oh = out + off;
        float *P = probs + bh * T * T;
        float kt_buf[ATTN_COPY_MAX], *kt = NULL;
        if (T * hd <= ATTN_COPY_MAX) {
            kt = kt_buf;
            tfi_transpose(kt, T, kh, D, T, hd);
        }

        for (int64_t i0 = 0; i0 < T; i0 += ATTN_BLOCK) {
            int64_t i1 = min64(i0 + ATTN_BLOCK, T), rows = i1 - i0;
            /* S[i0:i1, 0:i1] = Q[i0:i1] K[0:i1]^T * scale */
            head_times_transposed(rows, i1, hd, scale, qh + i0 * D, kh, kt, D, T, P + i0 * T, T);
            for (int64_t i = i0; i < i1; i++)
                tfi_row_softmax_causal(P + i * T, i + 1, T);
            /* O[i0:i1] = P[i0:i1, 0:i1] V[0:i1] */
            tfi_sgemm(0, 0, rows, hd, i1, 1.0f, P + i0 * T, T, vh, D,
                      0.0f, oh + i0 * D, D, 1);
        }
    }
}

void tfi_attention_backward(float *dq, float *dk, float *dv, float *dprobs,
                            const float *dout, const float *q, const float *k,
                            const float *v, const float *probs, int64_t B,
                            int64_t T, int64_t H, int64_t hd)
{
    const int64_t D = H * hd;
    const float scale = (float)(1.0 / sqrt((double)hd));

#pragma omp parallel for num_threads(tfi_threads_for(B * H * T * T * hd)) schedule(static)
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H;
        int64_t off = b * T * D + h * hd;
        const float *qh = q + off, *kh = k + off, *vh = v + off;
        const float *dOh = dout + off;
        float *dqh = dq + off, *dkh = dk + off, *dvh = dv + off;
        const float *P = probs + bh * T * T;
        float *dS = dprobs + bh * T * T;
        float vt_buf[ATTN_COPY_MAX], *vt = NULL;
        if (T * hd <= ATTN_COPY_MAX) {
            vt = vt_buf;
            tfi_transpose(vt, T, vh, D, T, hd);
        }

        /* Row blocks: dP, then dS in place, then dQ -- all need only
         * columns [0, i1). */
        for (int64_t i0 = 0; i0 < T; i0 += ATTN_BLOCK) {
            int64_t i1 = min64(i0 + ATTN_BLOCK, T), rows = i1 - i0;
            /* dP[i0:i1, 0:i1] = dO[i0:i1] V[0:i1]^T */
            head_times_transposed(rows, i1, hd, 1.0f, dOh + i0 * D, vh, vt, D, T, dS + i0 * T, T);
            /* Softmax backward per row: dS = P * (dP - <dP, P>).  Masked
             * entries have P = 0 and get dS = 0. */
            for (int64_t i = i0; i < i1; i++)
                tfi_row_softmax_causal_backward(dS + i * T, P + i * T, i + 1, T);
            /* dQ[i0:i1] = dS[i0:i1, 0:i1] K[0:i1] * scale */
            tfi_sgemm(0, 0, rows, hd, i1, scale, dS + i0 * T, T, kh, D,
                      0.0f, dqh + i0 * D, D, 1);
        }

        /* Column blocks: key/value position j is seen by rows i >= j, so
         * dV[j0:j1] and dK[j0:j1] sum over rows [j0, T) only.  This runs
         * after every dS row is final. */
        for (int64_t j0 = 0; j0 < T; j0 += ATTN_BLOCK) {
            int64_t j1 = min64(j0 + ATTN_BLOCK, T), cols = j1 - j0;
            const float *Pblk = P + j0 * T + j0;    /* P[j0:T, j0:j1] */
            const float *dSblk = dS + j0 * T + j0;  /* dS[j0:T, j0:j1] */
            /* dV[j0:j1] = P[j0:T, j0:j1]^T dO[j0:T] */
            tfi_sgemm(1, 0, cols, hd, T - j0, 1.0f, Pblk, T, dOh + j0 * D, D,
                      0.0f, dvh + j0 * D, D, 1);
            /* dK[j0:j1] = dS[j0:T, j0:j1]^T Q[j0:T] * scale */
            tfi_sgemm(1, 0, cols, hd, T - j0, scale, dSblk, T, qh + j0 * D, D,
                      0.0f, dkh + j0 * D, D, 1);
        }
    }
}
