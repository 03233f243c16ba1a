/*
 * attention.c -- multi-head softmax attention, forward and backward.
 *
 * Per (batch b, head h), with Q the [T, hd] slice of that head's new rows,
 * K, V the [P, hd] slices of its keys and values (P = pos0 + T) and
 * scale = 1/sqrt(hd):
 *   S = Q K^T * scale,  causal: S[i][j] = -inf for j > pos0 + i
 *   P = softmax over each row of S,   O = P V
 * Backward (whole sequences: pos0 = 0, P = T), given dO:
 *   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dP * P))
 *   dQ = dS K * scale,  dK = dS^T Q * scale
 *
 * A head's slice is addressed in place: Q = q + b*T*D + h*hd with row
 * stride D = H*hd, so no copies.  The (b, h) pairs are the tasks of a
 * parallel loop (tfi_parallel_for) and every GEMM inside is one
 * single-threaded BLIS call.
 *
 * Causality: rows are taken in blocks of ATTN_BLOCK.  Rows [i0, i1) only see
 * columns [0, pos0 + i1), so each GEMM touches the lower block triangle of
 * the T x P matrices and skips the rest (about half the work for long T).
 * Entries above the diagonal inside a diagonal block are computed by the
 * GEMM but then overwritten with exact zeros, so probs and dprobs are
 * always zero at masked places.  Without causality every block sees all P
 * columns.
 *
 * The same code serves a decoder's new rows against its cache: a row's
 * scores, softmax and output are computed by the same calls whatever T
 * and pos0, so decoding repeats the whole-sequence forward's arithmetic.
 */
#include <math.h>

#include "internal.h"
#include "kernels/ops.h"
#include "kernels/vecmath.h"

/* Row blocks: a block only multiplies the columns its last row can see, so
 * smaller blocks skip more of the masked triangle (at T = 128, 64-row
 * blocks compute 3/4 of the full products), while every block costs two
 * more GEMM calls.  64 rows balances the two at the head sizes trained
 * here (T * hd up to a few thousand per head). */
#define ATTN_BLOCK 64

/* Heads whose keys (values, in the backward) fit in this many floats (P *
 * hd) are multiplied through a transposed copy on the stack (64 KB):
 * S = Q K^T and dP = dO V^T then read a plain right-hand operand, which
 * BLIS's AMD kernels take at twice the rate (transpose.c).  Longer heads
 * let BLIS read K and V transposed, which needs no stack. */
#define ATTN_COPY_MAX 16384

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int64_t tfi_attn_probs_width(int64_t P) { return P + (P & 1); }

/* C[rows, cols] = alpha A B^T for the head slices A (row stride D) and B
 * [cols, hd] (row stride D); bt, if not NULL, holds B^T [hd, ldbt] (row
 * stride ldbt) for the first cols columns. */
static void head_times_transposed(int64_t rows, int64_t cols, int64_t hd, float alpha,
                                  const float *A, const float *B, const float *bt, int64_t D,
                                  int64_t ldbt, float *C, int64_t ldc)
{
    if (bt)
        tfi_sgemm(0, 0, rows, cols, hd, alpha, A, D, bt, ldbt, 0.0f, C, ldc, 1);
    else
        tfi_sgemm(0, 1, rows, cols, hd, alpha, A, D, B, D, 0.0f, C, ldc, 1);
}

/* The operands of a loop over (b, h) pairs. */
typedef struct attn_loop {
    float *out, *probs, *dq, *dk, *dv, *dprobs;
    const float *dout, *q, *k, *v, *saved_probs;
    int probs_threads;
    const tfi_attn_shape *s;
} attn_loop;

static void forward_head(void *arg, int64_t bh, int worker)
{
    const attn_loop *a = arg;
    const tfi_attn_shape *s = a->s;
    const float *q = a->q, *k = a->k, *v = a->v;
    float *out = a->out, *probs = a->probs;
    const int64_t T = s->T, H = s->H, hd = s->hd, D = H * hd;
    const int64_t pos0 = s->pos0, P = pos0 + T, ldp = tfi_attn_probs_width(P);
    const float scale = (float)(1.0 / sqrt((double)hd));
    int64_t b = bh / H, h = bh % H;
    const float *qh = q + b * T * D + h * hd;
    const float *kh = k + b * s->kv_rows * D + h * hd, *vh = v + b * s->kv_rows * D + h * hd;
    float *oh = out + b * T * D + h * hd;
    float *Pm = probs + (a->probs_threads > 0 ? (int64_t)worker : bh) * T * ldp;
    /* K^T with a zero column after the last key when P is odd: every
     * block then multiplies an even number of columns.  BLIS's AMD
     * kernels compute the last column of an odd-width product with
     * an edge kernel that sums in another order, so without the pad a
     * key's score would depend on how many columns its block had, and
     * a row would come out differently in a decoder's step (one row,
     * its own position last) than in the whole forward. */
    float kt_buf[ATTN_COPY_MAX], *kt = NULL;
    if (ldp * hd <= ATTN_COPY_MAX) {
        kt = kt_buf;
        tfi_transpose(kt, ldp, kh, D, P, hd);
        for (int64_t c = P; c < ldp; c++)
            for (int64_t r = 0; r < hd; r++)
                kt[r * ldp + c] = 0.0f;
    }

    for (int64_t i0 = 0; i0 < T; i0 += ATTN_BLOCK) {
        int64_t i1 = min64(i0 + ATTN_BLOCK, T), rows = i1 - i0;
        int64_t cols = s->causal ? pos0 + i1 : P;
        /* S[i0:i1, 0:cols] = Q[i0:i1] K[0:cols]^T * scale (one more
         * column from the pad, if any: masked below) */
        head_times_transposed(rows, kt ? tfi_attn_probs_width(cols) : cols, hd, scale,
                              qh + i0 * D, kh, kt, D, ldp, Pm + i0 * ldp, ldp);
        for (int64_t i = i0; i < i1; i++)
            tfi_row_softmax_masked(Pm + i * ldp, s->causal ? pos0 + i + 1 : P, ldp);
        /* O[i0:i1] = P[i0:i1, 0:cols] V[0:cols] */
        tfi_sgemm(0, 0, rows, hd, cols, 1.0f, Pm + i0 * ldp, ldp, vh, D, 0.0f, oh + i0 * D, D,
                  1);
    }
}

void tfi_attention_forward(float *out, float *probs, int probs_threads, const float *q,
                           const float *k, const float *v, const tfi_attn_shape *s)
{
    const int64_t P = s->pos0 + s->T;
    int nt = tfi_threads_for(s->B * s->H * s->T * P * s->hd);
    if (probs_threads > 0 && nt > probs_threads)
        nt = probs_threads;
    attn_loop a = {.out = out, .probs = probs, .q = q, .k = k, .v = v,
                   .probs_threads = probs_threads, .s = s};
    tfi_parallel_for(s->B * s->H, nt, forward_head, &a);
}

static void backward_head(void *arg, int64_t bh, int worker)
{
    const attn_loop *a = arg;
    const tfi_attn_shape *s = a->s;
    const float *q = a->q, *k = a->k, *v = a->v, *dout = a->dout, *probs = a->saved_probs;
    float *dq = a->dq, *dk = a->dk, *dv = a->dv, *dprobs = a->dprobs;
    const int64_t T = s->T, H = s->H, hd = s->hd, D = H * hd;
    const int64_t ldp = tfi_attn_probs_width(T);
    const float scale = (float)(1.0 / sqrt((double)hd));
    int64_t b = bh / H, h = bh % H;
    int64_t off = b * T * D + h * hd;
    const float *qh = q + off, *kh = k + off, *vh = v + off;
    const float *dOh = dout + off;
    float *dqh = dq + off, *dkh = dk + off, *dvh = dv + off;
    const float *P = probs + bh * T * ldp;
    float *dS = dprobs + bh * T * ldp;
    float vt_buf[ATTN_COPY_MAX], *vt = NULL;
    if (T * hd <= ATTN_COPY_MAX) {
        vt = vt_buf;
        tfi_transpose(vt, T, vh, D, T, hd);
    }

    /* Row blocks: dP, then dS in place, then dQ -- all need only the
     * columns the block sees, [0, i1) when causal. */
    for (int64_t i0 = 0; i0 < T; i0 += ATTN_BLOCK) {
        int64_t i1 = min64(i0 + ATTN_BLOCK, T), rows = i1 - i0;
        int64_t cols = s->causal ? i1 : T;
        /* dP[i0:i1, 0:cols] = dO[i0:i1] V[0:cols]^T */
        head_times_transposed(rows, cols, hd, 1.0f, dOh + i0 * D, vh, vt, D, T, dS + i0 * ldp,
                              ldp);
        /* Softmax backward per row: dS = P * (dP - <dP, P>).  Masked
         * entries have P = 0 and get dS = 0. */
        for (int64_t i = i0; i < i1; i++)
            tfi_row_softmax_masked_backward(dS + i * ldp, P + i * ldp, s->causal ? i + 1 : T,
                                            ldp);
        /* dQ[i0:i1] = dS[i0:i1, 0:cols] K[0:cols] * scale */
        tfi_sgemm(0, 0, rows, hd, cols, scale, dS + i0 * ldp, ldp, kh, D,
                  0.0f, dqh + i0 * D, D, 1);
    }

    /* Column blocks: key/value position j is seen by rows i >= j when
     * causal, so dV[j0:j1] and dK[j0:j1] sum over rows [j0, T) only
     * (over all rows otherwise).  This runs after every dS row is
     * final. */
    for (int64_t j0 = 0; j0 < T; j0 += ATTN_BLOCK) {
        int64_t j1 = min64(j0 + ATTN_BLOCK, T), cols = j1 - j0;
        int64_t r0 = s->causal ? j0 : 0;
        const float *Pblk = P + r0 * ldp + j0;    /* P[r0:T, j0:j1] */
        const float *dSblk = dS + r0 * ldp + j0;  /* dS[r0:T, j0:j1] */
        /* dV[j0:j1] = P[r0:T, j0:j1]^T dO[r0:T] */
        tfi_sgemm(1, 0, cols, hd, T - r0, 1.0f, Pblk, ldp, dOh + r0 * D, D,
                  0.0f, dvh + j0 * D, D, 1);
        /* dK[j0:j1] = dS[r0:T, j0:j1]^T Q[r0:T] * scale */
        tfi_sgemm(1, 0, cols, hd, T - r0, scale, dSblk, ldp, qh + r0 * D, D,
                  0.0f, dkh + j0 * D, D, 1);
    }
}

void tfi_attention_backward(float *dq, float *dk, float *dv, float *dprobs,
                            const float *dout, const float *q, const float *k,
                            const float *v, const float *probs, const tfi_attn_shape *s)
{
    attn_loop a = {.saved_probs = probs, .dq = dq, .dk = dk, .dv = dv, .dprobs = dprobs,
                   .dout = dout, .q = q, .k = k, .v = v, .s = s};
    tfi_parallel_for(s->B * s->H, tfi_threads_for(s->B * s->H * s->T * s->T * s->hd),
                     backward_head, &a);
}
