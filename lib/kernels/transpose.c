/*
 * transpose.c -- out-of-place matrix transpose, for GEMM operands.
 *
 * BLIS's AMD kernel sets (zen, zen2, zen3: what the library picks on Zen 4)
 * read a transposed right-hand operand markedly slower than a plain one:
 * A B^T with B [n, k] runs at 82 GFLOP/s against 102 for the same product
 * from a copy of B^T at m=2048, n=k=128, and at 46 against 92 for the
 * attention's 128x128x32 (measured, one core).  Callers that multiply many
 * rows by the same B^T therefore transpose B once into a workspace; the
 * copy is n*k floats against m*n*k multiply-adds.
 */
#include "internal.h"

#define TILE 16

/* dst [cols, rows] (row stride ldd) = src [rows, cols] (row stride lds)^T.
 * 16x16 tiles keep the strided side within a few cache lines. */
void tfi_transpose(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows,
                   int64_t cols)
{
    for (int64_t r0 = 0; r0 < rows; r0 += TILE) {
        int64_t r1 = r0 + TILE < rows ? r0 + TILE : rows;
        for (int64_t c0 = 0; c0 < cols; c0 += TILE) {
            int64_t c1 = c0 + TILE < cols ? c0 + TILE : cols;
            for (int64_t c = c0; c < c1; c++)
                for (int64_t r = r0; r < r1; r++)
                    dst[c * ldd + r] = src[r * lds + c];
        }
    }
}
