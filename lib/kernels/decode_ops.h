/*
 * decode_ops.h -- kernels of incremental decoding (internal): attention of
 * new query rows against a key/value cache, and the "skinny" products that
 * Pattention and the tied output head reduce to when only a few rows (one
 * token per sequence) are processed.  No kernel allocates.
 *
 * Layouts follow ops.h: a row of q/k/v holds the H heads one after the
 * other (head h is columns [h*hd, (h+1)*hd)).  A cache for one layer is
 * [B, S, D] (D = H*hd, S = positions it can hold): position j of sequence
 * b is row b*S + j.
 */
#ifndef TF_KERNELS_DECODE_OPS_H
#define TF_KERNELS_DECODE_OPS_H

#include <stdint.h>

/* Rows up to which the skinny kernels beat a BLIS GEMM (which packs the
 * whole weight matrix for every call: an extra read and write of it). */
#define TFI_SKINNY_ROWS 8

/* A [N, n] = X [N, d] (row stride ldx) W^T, W [n, d] row-major: one dot
 * product per (row, weight row).  Each weight row is read once for all N
 * rows; OpenMP over weight rows (nthreads). */
void tfi_skinny_xwt(int64_t N, int64_t n, int64_t d, const float *X, int64_t ldx,
                    const float *W, float *A, int nthreads);

/* Y [N, d_out] (row stride ldy) = beta * Y + S [N, n] V [n, d_out].  acc is
 * scratch [N, d_out].  Every output is summed over j = 0..n-1 in order, so
 * rows of S that are zero at the end (zero keys after growth) leave Y bit
 * for bit unchanged.  OpenMP over column blocks of V (nthreads). */
void tfi_skinny_sv(int64_t N, int64_t n, int64_t d_out, const float *S, const float *V,
                   float *Y, int64_t ldy, float beta, float *acc, int nthreads);

/* Causal attention of new rows against a cache, scale 1/sqrt(hd):
 *   q, out  [B, T, D] (row stride D): the T new rows of each sequence, whose
 *           absolute positions are pos0 .. pos0+T-1 (already rotated);
 *   kc, vc  [B, S, D] the cache of this layer, holding positions
 *           [0, pos0+T) of every sequence (the new rows included).
 * Row t of sequence b attends to cache positions [0, pos0+t].  scratch
 * holds nthreads * T * S floats.  OpenMP over (b, h) pairs; small T runs
 * plain loops, larger T two single-threaded GEMMs per pair. */
void tfi_attention_cached(float *out, const float *q, const float *kc, const float *vc,
                          int64_t B, int64_t T, int64_t H, int64_t hd, int64_t S,
                          int64_t pos0, float *scratch, int nthreads);

#endif /* TF_KERNELS_DECODE_OPS_H */
