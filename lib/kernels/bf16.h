/*
 * bf16.h -- bfloat16 weights (internal): conversion to and from float32,
 * and the one product an inference model with bfloat16 weights needs,
 * float32 rows times a bfloat16 matrix transposed, summed in float32.
 *
 * A bfloat16 is the upper 16 bits of a float32, so widening is a shift and
 * exact; narrowing rounds to nearest, ties to even (tfi_bf16_round).
 * The product has one plain definition and fast versions per instruction
 * set; the tests hold each fast one to the plain one within a bound.
 */
#ifndef TF_KERNELS_BF16_H
#define TF_KERNELS_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The float32 value of a bfloat16 (its upper 16 bits): exact. */
static inline float tfi_bf16_value(uint16_t h)
{
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* f rounded to bfloat16: to nearest, ties to even; NaN stays NaN (quiet,
 * sign and top payload kept), a value beyond bfloat16's range becomes
 * infinity. */
static inline uint16_t tfi_bf16_round(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((bits >> 16) | 0x0040u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

/* The versions of the product, slowest first. */
typedef enum tfi_bf16_isa {
    TFI_BF16_PLAIN = 0,  /* C loops */
    TFI_BF16_AVX2 = 1,   /* AVX2 + FMA: widen 8 weights by a shift, FMA */
    TFI_BF16_AVX512 = 2, /* AVX-512: the same with 16 */
    /* AVX512_BF16: vdpbf16ps, 32 products a step, A split into two
     * bfloat16 parts (hi + lo, 2^-17 of |a|); the instruction flushes
     * denormals and rounds its sums its own way, so its results differ
     * from the others' by a few float32 roundings more (the tests bound
     * them) */
    TFI_BF16_AVX512BF16 = 3,
    TFI_BF16_ISAS = 4
} tfi_bf16_isa;

/* Whether this CPU (and OS) runs a version. */
int tfi_bf16_isa_supported(tfi_bf16_isa isa);
/* The version tfi_bf16_abt uses: the fastest this CPU runs, or the one
 * the environment's TF_BF16_KERNEL names (bf16.c says why vdpbf16ps is
 * not the default). */
tfi_bf16_isa tfi_bf16_isa_best(void);
/* "plain", "avx2", "avx512", "avx512_bf16" (static strings). */
const char *tfi_bf16_isa_name(tfi_bf16_isa isa);

/* dst[i] = src[i] rounded to bfloat16, i < count.  dst may be src's own
 * storage (narrowing in place into its first half). */
void tfi_bf16_narrow(uint16_t *dst, const float *src, size_t count);
/* dst [cols, rows] = src [rows, cols] rounded to bfloat16 and transposed;
 * dst and src do not overlap. */
void tfi_bf16_narrow_transpose(uint16_t *dst, const float *src, int64_t rows, int64_t cols);
/* dst[i] = src[i] widened (exact). */
void tfi_bf16_widen(float *dst, const uint16_t *src, size_t count);
/* dst [cols, rows] (row stride ldd) = src [rows, cols] (row stride lds)
 * widened and transposed: a bfloat16 matrix made a GEMM operand. */
void tfi_bf16_widen_transpose(float *dst, int64_t ldd, const uint16_t *src, int64_t lds,
                              int64_t rows, int64_t cols);

/* C [m, n] = beta C + A [m, k] B^T, with B [n, k] in bfloat16; lda, ldb,
 * ldc are row strides; beta 0 ignores C's old contents.  Each output is
 * one dot product summed in float32.  B is read once whatever m (a block
 * of B's rows meets every row of A), so a decoding step streams the
 * weights at memory speed.
 *   tfi_bf16_abt: the fastest version, threads over B's rows;
 *   tfi_bf16_abt_with: the given (supported) version, one thread. */
void tfi_bf16_abt(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                  const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc);
void tfi_bf16_abt_with(tfi_bf16_isa isa, int64_t m, int64_t n, int64_t k, const float *A,
                       int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C,
                       int64_t ldc);

#endif /* TF_KERNELS_BF16_H */
