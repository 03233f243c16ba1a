/*
 * bf16.c -- bfloat16 weights: conversion, and float32 rows times a
 * bfloat16 matrix transposed (bf16.h), plain and per instruction set.
 *
 * Every version walks B one row at a time, in order, and meets each row
 * with every row of A, RB rows at a time, so B streams from memory once
 * per call and strictly sequentially: at one row (a decoding step) the
 * product is a pass over the weights, which is the point of halving them.
 * (Several rows of B at once, interleaved, ran at a third of the memory
 * rate on Zen 5: the prefetchers follow one stream best.)  A block keeps
 * two accumulators of float32 lanes per row of A; its dot products are
 * reduced at the end and the last elements added one by one.
 */
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include "internal.h"
#include "kernels/arch.h"
#include "kernels/bf16.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TFI_BF16_X86 1
#endif

#define RB 4 /* rows of A per block */

/* ---- which version ----------------------------------------------------- */

/* The CPU checks are the runtime's (tfi_arch_supported): AVX2 and AVX-512
 * here need no more than x86-64-v3 and -v4; only vdpbf16ps has its own. */
int tfi_bf16_isa_supported(tfi_bf16_isa isa)
{
    switch (isa) {
    case TFI_BF16_PLAIN: return 1;
#ifdef TFI_BF16_X86
    case TFI_BF16_AVX2: return tfi_arch_supported(TFI_ARCH_AVX2);
    case TFI_BF16_AVX512: return tfi_arch_supported(TFI_ARCH_AVX512);
    case TFI_BF16_AVX512BF16:
        __builtin_cpu_init();
        return tfi_arch_supported(TFI_ARCH_AVX512) && __builtin_cpu_supports("avx512bf16");
#endif
    default: return 0;
    }
}

/* By default the fastest of plain, AVX2 and AVX-512 that the element-wise
 * kernels' instruction set allows (tfi_arch_active: TF_ARCH caps both).
 * Not vdpbf16ps: a decoding step is bound by memory, where the widening
 * AVX-512 version ran as fast (5.6-6.0 ms against 6.5-6.8 ms for the
 * embedding product of the 150M config, one row, Zen 5) and keeps A in
 * float32; it is there for TF_BF16_KERNEL=avx512_bf16.  TF_BF16_KERNEL
 * names the version to use (tfi_bf16_isa_name), or a cap: a version the
 * CPU lacks gives the next slower one it has.  Chosen once, like TF_ARCH:
 * a product must not call getenv, which races with a host's setenv. */
static pthread_once_t best_once = PTHREAD_ONCE_INIT;
static tfi_bf16_isa best_isa; /* written once, under best_once */

static void choose_best(void)
{
    static const int cap[TFI_ARCH_COUNT] = {
        [TFI_ARCH_GENERIC] = TFI_BF16_PLAIN, [TFI_ARCH_AVX2] = TFI_BF16_AVX2,
        [TFI_ARCH_AVX512] = TFI_BF16_AVX512};
    int want = cap[tfi_arch_active()];
    const char *env = getenv("TF_BF16_KERNEL");
    for (int isa = 0; env && isa < TFI_BF16_ISAS; isa++)
        if (strcmp(env, tfi_bf16_isa_name((tfi_bf16_isa)isa)) == 0)
            want = isa;
    best_isa = TFI_BF16_PLAIN;
    for (int isa = want; isa > TFI_BF16_PLAIN; isa--)
        if (tfi_bf16_isa_supported((tfi_bf16_isa)isa)) {
            best_isa = (tfi_bf16_isa)isa;
            break;
        }
}

tfi_bf16_isa tfi_bf16_isa_best(void)
{
    pthread_once(&best_once, choose_best);
    return best_isa;
}

const char *tfi_bf16_isa_name(tfi_bf16_isa isa)
{
    static const char *const names[TFI_BF16_ISAS] = {"plain", "avx2", "avx512", "avx512_bf16"};
    return (unsigned)isa < TFI_BF16_ISAS ? names[isa] : "unknown";
}

/* ---- conversion -------------------------------------------------------- */

void tfi_bf16_narrow(uint16_t *dst, const float *src, size_t count)
{
    /* NARROW_BLOCK elements at a time, read whole before any is written:
     * in place, block i's writes end where its reads began, so nothing is
     * written over before it is read; and the blocks' loops vectorise.
     * Through bytes: dst may be src's own storage, seen as another type. */
    enum { NARROW_BLOCK = 64 };
    const unsigned char *s = (const unsigned char *)src;
    unsigned char *d = (unsigned char *)dst;
    for (size_t i = 0; i < count; i += NARROW_BLOCK) {
        const size_t n = count - i < NARROW_BLOCK ? count - i : NARROW_BLOCK;
        float f[NARROW_BLOCK];
        uint16_t h[NARROW_BLOCK];
        memcpy(f, s + i * sizeof *f, n * sizeof *f);
        for (size_t j = 0; j < n; j++)
            h[j] = tfi_bf16_round(f[j]);
        memcpy(d + i * sizeof *h, h, n * sizeof *h);
    }
}

/* Square tiles of the transposes: both sides stay in cache. */
#define TILE 32

void tfi_bf16_narrow_transpose(uint16_t *dst, const float *src, int64_t rows, int64_t cols)
{
    for (int64_t r0 = 0; r0 < rows; r0 += TILE)
        for (int64_t c0 = 0; c0 < cols; c0 += TILE)
            for (int64_t r = r0; r < rows && r < r0 + TILE; r++)
                for (int64_t c = c0; c < cols && c < c0 + TILE; c++)
                    dst[c * rows + r] = tfi_bf16_round(src[r * cols + c]);
}

void tfi_bf16_widen(float *dst, const uint16_t *src, size_t count)
{
    for (size_t i = 0; i < count; i++)
        dst[i] = tfi_bf16_value(src[i]);
}

void tfi_bf16_widen_transpose(float *dst, int64_t ldd, const uint16_t *src, int64_t lds,
                              int64_t rows, int64_t cols)
{
    for (int64_t r0 = 0; r0 < rows; r0 += TILE)
        for (int64_t c0 = 0; c0 < cols; c0 += TILE)
            for (int64_t r = r0; r < rows && r < r0 + TILE; r++)
                for (int64_t c = c0; c < cols && c < c0 + TILE; c++)
                    dst[c * ldd + r] = tfi_bf16_value(src[r * lds + c]);
}

/* ---- the product: plain ------------------------------------------------ */

/* What every version ends an output with: the elements from c on one by
 * one after the vector lanes' sum, then beta. */
static inline void finish(float sum, int64_t c, int64_t k, const float *a, const uint16_t *b,
                          float beta, float *out)
{
    for (; c < k; c++)
        sum += a[c] * tfi_bf16_value(b[c]);
    *out = beta == 0.0f ? sum : beta * *out + sum;
}

static void columns_plain(int64_t m, int64_t j0, int64_t j1, int64_t k, const float *A,
                          int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C,
                          int64_t ldc)
{
    for (int64_t j = j0; j < j1; j++)
        for (int64_t r = 0; r < m; r++)
            finish(0.0f, 0, k, A + r * lda, B + j * ldb, beta, C + r * ldc + j);
}

#ifdef TFI_BF16_X86

/* Calls BLOCK(rb, ...) with a constant rb <= RB for each row of B in
 * [j0, j1) and all m rows of A, so that each block is specialised. */
#define BLOCKED_COLUMNS(BLOCK)                                                         \
    for (int64_t j = j0; j < j1; j++)                                                  \
        for (int64_t r = 0; r < m; r += RB) {                                          \
            const float *a_ = A + r * lda;                                             \
            const uint16_t *b_ = B + j * ldb;                                          \
            float *c_ = C + r * ldc + j;                                               \
            switch (m - r < RB ? m - r : RB) {                                         \
            case 4: BLOCK(4, k, a_, lda, b_, beta, c_, ldc); break;                    \
            case 3: BLOCK(3, k, a_, lda, b_, beta, c_, ldc); break;                    \
            case 2: BLOCK(2, k, a_, lda, b_, beta, c_, ldc); break;                    \
            default: BLOCK(1, k, a_, lda, b_, beta, c_, ldc); break;                   \
            }                                                                          \
        }
/* The same with two rows of B per block where A has several rows (A's
 * loads then feed twice the FMAs: short prefills), BLOCK2(rb, ...) taking
 * rows j and j+1; one row of A keeps to one stream of B. */
#define BLOCKED_COLUMNS2(BLOCK, BLOCK2)                                                \
    if (m == 1) {                                                                      \
        BLOCKED_COLUMNS(BLOCK)                                                         \
        return;                                                                        \
    }                                                                                  \
    for (int64_t j = j0; j < j1; j += 2)                                               \
        for (int64_t r = 0; r < m; r += RB) {                                          \
            const float *a_ = A + r * lda;                                             \
            const uint16_t *b_ = B + j * ldb;                                          \
            float *c_ = C + r * ldc + j;                                               \
            const int rb_ = (int)(m - r < RB ? m - r : RB);                            \
            if (j + 1 == j1) {                                                         \
                switch (rb_) {                                                         \
                case 4: BLOCK(4, k, a_, lda, b_, beta, c_, ldc); break;                \
                case 3: BLOCK(3, k, a_, lda, b_, beta, c_, ldc); break;                \
                case 2: BLOCK(2, k, a_, lda, b_, beta, c_, ldc); break;                \
                default: BLOCK(1, k, a_, lda, b_, beta, c_, ldc); break;               \
                }                                                                      \
                continue;                                                              \
            }                                                                          \
            switch (rb_) {                                                             \
            case 4: BLOCK2(4, k, a_, lda, b_, ldb, beta, c_, ldc); break;              \
            case 3: BLOCK2(3, k, a_, lda, b_, ldb, beta, c_, ldc); break;              \
            case 2: BLOCK2(2, k, a_, lda, b_, ldb, beta, c_, ldc); break;              \
            default: BLOCK2(1, k, a_, lda, b_, ldb, beta, c_, ldc); break;             \
            }                                                                          \
        }
#define INLINE static inline __attribute__((always_inline))
/* bfloat16 elements ahead that the loops prefetch */
#define PREFETCH 1024

/* ---- AVX2 + FMA: 8 lanes ----------------------------------------------- */

#define T_AVX2 __attribute__((target("avx2,fma")))

T_AVX2 INLINE __m256 widen8(const uint16_t *p)
{
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

T_AVX2 INLINE float sum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* rb rows of A against one row b of B; two accumulators a row, for
 * independent chains of FMAs. */
T_AVX2 INLINE void block_avx2(int rb, int64_t k, const float *A, int64_t lda,
                              const uint16_t *b, float beta, float *C, int64_t ldc)
{
    __m256 acc[RB][2];
    for (int r = 0; r < rb; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= k; c += 16) {
        _mm_prefetch((const char *)(b + c + PREFETCH), _MM_HINT_T0);
        const __m256 b0 = widen8(b + c), b1 = widen8(b + c + 8);
        for (int r = 0; r < rb; r++) {
            acc[r][0] = _mm256_fmadd_ps(_mm256_loadu_ps(A + r * lda + c), b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(_mm256_loadu_ps(A + r * lda + c + 8), b1, acc[r][1]);
        }
    }
    for (; c + 8 <= k; c += 8) {
        const __m256 b0 = widen8(b + c);
        for (int r = 0; r < rb; r++)
            acc[r][0] = _mm256_fmadd_ps(_mm256_loadu_ps(A + r * lda + c), b0, acc[r][0]);
    }
    for (int r = 0; r < rb; r++)
        finish(sum8(_mm256_add_ps(acc[r][0], acc[r][1])), c, k, A + r * lda, b, beta,
               C + r * ldc);
}

T_AVX2 static void columns_avx2(int64_t m, int64_t j0, int64_t j1, int64_t k, const float *A,
                                int64_t lda, const uint16_t *B, int64_t ldb, float beta,
                                float *C, int64_t ldc)
{
    BLOCKED_COLUMNS(block_avx2)
}

/* ---- AVX-512: 16 lanes ------------------------------------------------- */

#define T_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

T_AVX512 INLINE __m512 widen16(const uint16_t *p)
{
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

T_AVX512 INLINE void block_avx512(int rb, int64_t k, const float *A, int64_t lda,
                                  const uint16_t *b, float beta, float *C, int64_t ldc)
{
    __m512 acc[RB][2];
    for (int r = 0; r < rb; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= k; c += 32) {
        _mm_prefetch((const char *)(b + c + PREFETCH), _MM_HINT_T0);
        const __m512 b0 = widen16(b + c), b1 = widen16(b + c + 16);
        for (int r = 0; r < rb; r++) {
            acc[r][0] = _mm512_fmadd_ps(_mm512_loadu_ps(A + r * lda + c), b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(_mm512_loadu_ps(A + r * lda + c + 16), b1, acc[r][1]);
        }
    }
    for (; c + 16 <= k; c += 16) {
        const __m512 b0 = widen16(b + c);
        for (int r = 0; r < rb; r++)
            acc[r][0] = _mm512_fmadd_ps(_mm512_loadu_ps(A + r * lda + c), b0, acc[r][0]);
    }
    for (int r = 0; r < rb; r++)
        finish(_mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1])), c, k, A + r * lda, b,
               beta, C + r * ldc);
}

/* block_avx512 for rows b and b + ldb of B at once: each output's sums
 * are block_avx512's, in its order, so that a row's outputs do not depend
 * on the blocking. */
T_AVX512 INLINE void block2_avx512(int rb, int64_t k, const float *A, int64_t lda,
                                   const uint16_t *b, int64_t ldb, float beta, float *C,
                                   int64_t ldc)
{
    __m512 acc[RB][2][2];
    for (int r = 0; r < rb; r++)
        for (int j = 0; j < 2; j++)
            acc[r][j][0] = acc[r][j][1] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= k; c += 32) {
        _mm_prefetch((const char *)(b + c + PREFETCH), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + ldb + c + PREFETCH), _MM_HINT_T0);
        const __m512 b00 = widen16(b + c), b01 = widen16(b + c + 16);
        const __m512 b10 = widen16(b + ldb + c), b11 = widen16(b + ldb + c + 16);
        for (int r = 0; r < rb; r++) {
            const __m512 a0 = _mm512_loadu_ps(A + r * lda + c);
            const __m512 a1 = _mm512_loadu_ps(A + r * lda + c + 16);
            acc[r][0][0] = _mm512_fmadd_ps(a0, b00, acc[r][0][0]);
            acc[r][0][1] = _mm512_fmadd_ps(a1, b01, acc[r][0][1]);
            acc[r][1][0] = _mm512_fmadd_ps(a0, b10, acc[r][1][0]);
            acc[r][1][1] = _mm512_fmadd_ps(a1, b11, acc[r][1][1]);
        }
    }
    for (; c + 16 <= k; c += 16) {
        const __m512 b00 = widen16(b + c), b10 = widen16(b + ldb + c);
        for (int r = 0; r < rb; r++) {
            const __m512 a0 = _mm512_loadu_ps(A + r * lda + c);
            acc[r][0][0] = _mm512_fmadd_ps(a0, b00, acc[r][0][0]);
            acc[r][1][0] = _mm512_fmadd_ps(a0, b10, acc[r][1][0]);
        }
    }
    for (int r = 0; r < rb; r++)
        for (int j = 0; j < 2; j++)
            finish(_mm512_reduce_add_ps(_mm512_add_ps(acc[r][j][0], acc[r][j][1])), c, k,
                   A + r * lda, b + j * ldb, beta, C + r * ldc + j);
}

T_AVX512 static void columns_avx512(int64_t m, int64_t j0, int64_t j1, int64_t k,
                                    const float *A, int64_t lda, const uint16_t *B, int64_t ldb,
                                    float beta, float *C, int64_t ldc)
{
    BLOCKED_COLUMNS2(block_avx512, block2_avx512)
}

/* ---- AVX512_BF16: vdpbf16ps, 32 products a step ------------------------ */

#define T_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

/* 16 floats rounded to the nearest bfloat16, ties to even, as floats:
 * integer operations within lanes (A holds no NaN worth keeping). */
T_BF16 INLINE __m512 round16(__m512 a)
{
    const __m512i x = _mm512_castps_si512(a);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7fff)), odd);
    return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32((int)0xffff0000u)));
}

/* 32 floats of A as two bfloat16 vectors, hi + lo: hi the floats rounded,
 * lo the rest rounded, so that hi + lo is a to 2^-17 of |a|: the products
 * of both with the weights keep A at nearly float32's precision, where hi
 * alone would round it to 2^-9.  The second operand of vcvtne2ps2bf16
 * fills the low half, so the elements stay in order. */
T_BF16 INLINE void split32(const float *a, __m512bh *hi, __m512bh *lo)
{
    const __m512 a0 = _mm512_loadu_ps(a), a1 = _mm512_loadu_ps(a + 16);
    const __m512 h0 = round16(a0), h1 = round16(a1);
    *hi = _mm512_cvtne2ps_pbh(h1, h0);
    *lo = _mm512_cvtne2ps_pbh(_mm512_sub_ps(a1, h1), _mm512_sub_ps(a0, h0));
}

T_BF16 INLINE void block_bf16(int rb, int64_t k, const float *A, int64_t lda, const uint16_t *b,
                              float beta, float *C, int64_t ldc)
{
    __m512 acc[RB][2];
    for (int r = 0; r < rb; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= k; c += 32) {
        _mm_prefetch((const char *)(b + c + PREFETCH), _MM_HINT_T0);
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)(b + c));
        for (int r = 0; r < rb; r++) {
            __m512bh hi, lo;
            split32(A + r * lda + c, &hi, &lo);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], hi, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], lo, b0);
        }
    }
    for (int r = 0; r < rb; r++)
        finish(_mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1])), c, k, A + r * lda, b,
               beta, C + r * ldc);
}

T_BF16 static void columns_bf16(int64_t m, int64_t j0, int64_t j1, int64_t k, const float *A,
                                int64_t lda, const uint16_t *B, int64_t ldb, float beta,
                                float *C, int64_t ldc)
{
    BLOCKED_COLUMNS(block_bf16)
}

#endif /* TFI_BF16_X86 */

/* ---- drivers ----------------------------------------------------------- */

static void columns(tfi_bf16_isa isa, int64_t m, int64_t j0, int64_t j1, int64_t k,
                    const float *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta,
                    float *C, int64_t ldc)
{
    switch (isa) {
#ifdef TFI_BF16_X86
    case TFI_BF16_AVX512BF16:
        columns_bf16(m, j0, j1, k, A, lda, B, ldb, beta, C, ldc);
        return;
    case TFI_BF16_AVX512:
        columns_avx512(m, j0, j1, k, A, lda, B, ldb, beta, C, ldc);
        return;
    case TFI_BF16_AVX2:
        columns_avx2(m, j0, j1, k, A, lda, B, ldb, beta, C, ldc);
        return;
#endif
    default:
        columns_plain(m, j0, j1, k, A, lda, B, ldb, beta, C, ldc);
        return;
    }
}

void tfi_bf16_abt_with(tfi_bf16_isa isa, int64_t m, int64_t n, int64_t k, const float *A,
                       int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C,
                       int64_t ldc)
{
    if (!tfi_bf16_isa_supported(isa))
        isa = TFI_BF16_PLAIN;
    columns(isa, m, 0, n, k, A, lda, B, ldb, beta, C, ldc);
}

/* B's rows per task: 16 outputs of a row of C fill a cache line, so no two
 * threads write the same one; each output is computed the same way in
 * any task, so the split cannot change a bit. */
#define SPLIT 16

typedef struct bf16_loop {
    tfi_bf16_isa isa;
    int64_t m, n, k, lda, ldb, ldc;
    const float *A;
    const uint16_t *B;
    float beta;
    float *C;
} bf16_loop;

static void split_task(void *arg, int64_t u, int worker)
{
    const bf16_loop *a = arg;
    const int64_t j0 = u * SPLIT, j1 = j0 + SPLIT < a->n ? j0 + SPLIT : a->n;
    columns(a->isa, a->m, j0, j1, a->k, a->A, a->lda, a->B, a->ldb, a->beta, a->C, a->ldc);
}

void tfi_bf16_abt(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                  const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    const tfi_bf16_isa isa = tfi_bf16_isa_best();
    const int nthreads = tfi_gemm_threads(m, n, k);
    const int64_t units = (n + SPLIT - 1) / SPLIT;
    if (nthreads == 1 || units < 2 * nthreads) {
        columns(isa, m, 0, n, k, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* runs of B's rows handed out one at a time: each task streams its part */
    bf16_loop a = {.isa = isa, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc,
                   .A = A, .B = B, .beta = beta, .C = C};
    tfi_parallel_for(units, nthreads, split_task, &a);
}
