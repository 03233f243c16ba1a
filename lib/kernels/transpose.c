/*
 * transpose.c -- out-of-place matrix transpose, for GEMM operands.
 *
 * BLIS's AMD kernel sets (zen, zen2, zen3: what the library picks on Zen 4
 * and later) take A B^T with B stored [n, k] through dot-product kernels
 * that run at half to four fifths of the rate of their broadcast kernels
 * on a plain [k, n] B, the attention's small heads faring worst.  Callers
 * that multiply many rows by the same B^T therefore transpose B once into
 * a workspace and hand BLIS the plain layout; the copy is n*k floats
 * against m*n*k multiply-adds.
 *
 * The plain loop is the definition; on AVX2 CPUs whole 8x8 tiles go
 * through registers (the classic unpack / shuffle / permute sequence), so
 * that the copy costs little more than reading the operand.  The tests
 * hold the two to exact equality.
 */
#include "internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_TILE8 1
#endif

#define TILE 16

void tfi_transpose_plain(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows,
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

#ifdef HAVE_TILE8
/* dst[0..8)[0..8) = src[0..8)[0..8)^T */
__attribute__((target("avx2"))) static void tile8(float *dst, int64_t ldd, const float *src,
                                                  int64_t lds)
{
    __m256 r0 = _mm256_loadu_ps(src + 0 * lds), r1 = _mm256_loadu_ps(src + 1 * lds);
    __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
    __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
    /* pairs of rows interleaved, then pairs of pairs, then 128-bit halves */
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * ldd, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + 1 * ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
}
#endif

void tfi_transpose(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows,
                   int64_t cols)
{
#ifdef HAVE_TILE8
    if (__builtin_cpu_supports("avx2")) {
        int64_t R = rows - rows % 8, C = cols - cols % 8;
        for (int64_t r = 0; r < R; r += 8)
            for (int64_t c = 0; c < C; c += 8)
                tile8(dst + c * ldd + r, ldd, src + r * lds + c, lds);
        /* the ragged right columns, then the ragged bottom rows */
        tfi_transpose_plain(dst + C * ldd, ldd, src + C, lds, R, cols - C);
        tfi_transpose_plain(dst + R, ldd, src + R * lds, lds, rows - R, cols);
        return;
    }
#endif
    tfi_transpose_plain(dst, ldd, src, lds, rows, cols);
}
