/*
 * fewrows.c -- the products of a Pattention (and of the output head) when
 * they have fewer than TFI_FEW_ROWS rows:
 *   abt: C [m, n] = A [m, k] B^T, B [n, k] row-major (scores X K^T, logits)
 *   ab:  C [m, n] = beta C + A [m, k] B, B [k, n] row-major (S V)
 *
 * Why not BLIS here.  A decoder's step multiplies one row per sequence where
 * the forward of the same tokens multiplies all of them, and BLIS sums an
 * output in an order that follows the product's shape (its kernel family,
 * edge kernels, where it splits k): the same row would come out of the two
 * differently.  Here every output has one order, fixed by k alone:
 *   abt: the 16-lane dot product of vecmath.h (element j into lane j % 16,
 *        the lanes combined in a fixed tree);
 *   ab:  one fused multiply-add chain over k in order, then beta C added.
 * And such products read all of B from memory for little arithmetic, so
 * what counts is reading B fast: these kernels take it in the order memory
 * serves best (row after row of B for up to four rows of A) and in AVX-512
 * where the CPU has it, and read it faster than BLIS's small-matrix kernels
 * (AVX2, and for A B in panels of 16 columns).  From TFI_FEW_ROWS rows on a
 * product is bound by arithmetic and goes to BLIS.
 *
 * The plain versions are the definitions.  The fast ones keep a block of
 * outputs in vector registers (GCC vector extensions: 16 floats, one
 * AVX-512 register or two AVX2 ones, whichever clone runs) and do each
 * output's operations in the same order, so the two agree bit for bit (the
 * tests hold them to it).  A parallel loop splits B's rows (abt) or
 * columns (ab), never a sum.
 */
#include <string.h>

#include "internal.h"
#include "kernels/vecmath.h"

/* ---- plain: the definitions -------------------------------------------- */

TF_CLONES void tfi_few_rows_abt_plain(int64_t m, int64_t n, int64_t k, const float *A,
                                      int64_t lda, const float *B, int64_t ldb, float *C,
                                      int64_t ldc)
{
    for (int64_t r = 0; r < m; r++)
        for (int64_t j = 0; j < n; j++)
            C[r * ldc + j] = lanes_dot(A + r * lda, B + j * ldb, k);
}

TF_CLONES void tfi_few_rows_ab_plain(int64_t m, int64_t n, int64_t k, const float *A,
                                     int64_t lda, const float *B, int64_t ldb, float beta,
                                     float *C, int64_t ldc)
{
    for (int64_t r = 0; r < m; r++)
        for (int64_t c = 0; c < n; c++) {
            float acc = 0.0f;
            for (int64_t j = 0; j < k; j++)
                acc += A[r * lda + j] * B[j * ldb + c];
            C[r * ldc + c] = beta == 0.0f ? acc : beta * C[r * ldc + c] + acc;
        }
}

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12) /* __builtin_shufflevector */

/* 16 floats; loads and stores through it need only float alignment */
typedef float v16 __attribute__((vector_size(64), aligned(4)));
#define VL 16
/* the block loops are unrolled so that the accumulators live in registers */
#define UNROLL _Pragma("GCC unroll 4")

/* ---- abt: rb rows of A against jb rows of B ---------------------------- */

/* lanes_tree_sum (vecmath.h) on a vector: the same additions, in registers */
typedef float v16r __attribute__((vector_size(64)));
static inline __attribute__((always_inline)) float tree_sum(const v16 *acc)
{
    v16r a = *acc;
    a += __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
    a += __builtin_shufflevector(a, a, 4, 5, 6, 7, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    a += __builtin_shufflevector(a, a, 2, 3, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    a += __builtin_shufflevector(a, a, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return a[0];
}

/* C[0:rb, 0:jb] for rb, jb <= 4 (the compiler specialises each call):
 * rb * jb dot products, each in its own vector of lanes. */
static inline __attribute__((always_inline)) void abt_block(int rb, int jb, int64_t k,
                                                            const float *A, int64_t lda,
                                                            const float *B, int64_t ldb,
                                                            float *C, int64_t ldc)
{
    v16 acc[4][4] = {{{0}}};
    int64_t c = 0;
    for (; c + VL <= k; c += VL) {
        v16 b[4];
        UNROLL for (int j = 0; j < jb; j++)
            b[j] = *(const v16 *)(B + j * ldb + c);
        UNROLL for (int r = 0; r < rb; r++) {
            v16 a = *(const v16 *)(A + r * lda + c);
            UNROLL for (int j = 0; j < jb; j++)
                acc[r][j] += a * b[j];
        }
    }
    UNROLL for (int r = 0; r < rb; r++)
        UNROLL for (int j = 0; j < jb; j++) {
            if (c == k) {
                C[r * ldc + j] = tree_sum(&acc[r][j]);
                continue;
            }
            float lane[VL]; /* the last k % 16 elements, as lanes_add_products */
            memcpy(lane, &acc[r][j], sizeof lane);
            for (int l = 0; c + l < k; l++)
                lane[l] += A[r * lda + c + l] * B[j * ldb + c + l];
            C[r * ldc + j] = lanes_tree_sum(lane);
        }
}

/* C[:, j0:j1] for all m rows.  Up to four rows read B one row at a time
 * (the order memory serves best); more take B four rows at a time, two
 * rows of A against them. */
TF_CLONES static void abt_columns(int64_t m, int64_t j0, int64_t j1, int64_t k, const float *A,
                                  int64_t lda, const float *B, int64_t ldb, float *C,
                                  int64_t ldc)
{
    if (m <= 4) {
        for (int64_t j = j0; j < j1; j++) {
            const float *b = B + j * ldb;
            switch (m) {
            case 4: abt_block(4, 1, k, A, lda, b, ldb, C + j, ldc); break;
            case 3: abt_block(3, 1, k, A, lda, b, ldb, C + j, ldc); break;
            case 2: abt_block(2, 1, k, A, lda, b, ldb, C + j, ldc); break;
            default: abt_block(1, 1, k, A, lda, b, ldb, C + j, ldc); break;
            }
        }
        return;
    }
    int64_t j = j0;
    for (; j + 4 <= j1; j += 4) {
        int64_t r = 0;
        for (; r + 2 <= m; r += 2)
            abt_block(2, 4, k, A + r * lda, lda, B + j * ldb, ldb, C + r * ldc + j, ldc);
        if (r < m)
            abt_block(1, 4, k, A + r * lda, lda, B + j * ldb, ldb, C + r * ldc + j, ldc);
    }
    for (; j < j1; j++)
        for (int64_t r = 0; r < m; r++)
            abt_block(1, 1, k, A + r * lda, lda, B + j * ldb, ldb, C + r * ldc + j, ldc);
}

/* ---- ab: rb rows of A against 64 columns of B -------------------------- */

/* C[0:rb, 0:16*q] for rb <= 4 and q <= 4 vectors of columns. */
static inline __attribute__((always_inline)) void ab_block(int rb, int q, int64_t k,
                                                           const float *A, int64_t lda,
                                                           const float *B, int64_t ldb,
                                                           float beta, float *C, int64_t ldc)
{
    v16 acc[4][4] = {{{0}}};
    for (int64_t j = 0; j < k; j++) {
        v16 b[4];
        UNROLL for (int v = 0; v < q; v++)
            b[v] = *(const v16 *)(B + j * ldb + v * VL);
        UNROLL for (int r = 0; r < rb; r++) {
            const float a = A[r * lda + j];
            UNROLL for (int v = 0; v < q; v++)
                acc[r][v] += a * b[v];
        }
    }
    for (int r = 0; r < rb; r++)
        for (int v = 0; v < q; v++) {
            v16 *y = (v16 *)(C + r * ldc + v * VL);
            *y = beta == 0.0f ? acc[r][v] : beta * *y + acc[r][v];
        }
}

/* ab_block for a q known only at run time: a specialised block each. */
static inline __attribute__((always_inline)) void ab_rows(int rb, int q, int64_t k,
                                                          const float *A, int64_t lda,
                                                          const float *B, int64_t ldb,
                                                          float beta, float *C, int64_t ldc)
{
    switch (q) {
    case 4: ab_block(rb, 4, k, A, lda, B, ldb, beta, C, ldc); break;
    case 3: ab_block(rb, 3, k, A, lda, B, ldb, beta, C, ldc); break;
    case 2: ab_block(rb, 2, k, A, lda, B, ldb, beta, C, ldc); break;
    default: ab_block(rb, 1, k, A, lda, B, ldb, beta, C, ldc); break;
    }
}

/* C[:, c0:c1] for all m rows; c0 a multiple of 64. */
TF_CLONES static void ab_columns(int64_t m, int64_t c0, int64_t c1, int64_t k, const float *A,
                                 int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                                 int64_t ldc)
{
    int64_t c = c0;
    for (int q; c + VL <= c1; c += q * VL) {
        q = (int)((c1 - c) / VL < 4 ? (c1 - c) / VL : 4);
        int64_t r = 0;
        for (; r + 4 <= m; r += 4)
            ab_rows(4, q, k, A + r * lda, lda, B + c, ldb, beta, C + r * ldc + c, ldc);
        switch (m - r) {
        case 3: ab_rows(3, q, k, A + r * lda, lda, B + c, ldb, beta, C + r * ldc + c, ldc); break;
        case 2: ab_rows(2, q, k, A + r * lda, lda, B + c, ldb, beta, C + r * ldc + c, ldc); break;
        case 1: ab_rows(1, q, k, A + r * lda, lda, B + c, ldb, beta, C + r * ldc + c, ldc); break;
        default: break;
        }
    }
    if (c < c1) /* the last columns, fewer than 16 */
        tfi_few_rows_ab_plain(m, c1 - c, k, A, lda, B + c, ldb, beta, C + c, ldc);
}

#else /* no vector extensions: the plain loops */

static void abt_columns(int64_t m, int64_t j0, int64_t j1, int64_t k, const float *A, int64_t lda,
                        const float *B, int64_t ldb, float *C, int64_t ldc)
{
    tfi_few_rows_abt_plain(m, j1 - j0, k, A, lda, B + j0 * ldb, ldb, C + j0, ldc);
}

static void ab_columns(int64_t m, int64_t c0, int64_t c1, int64_t k, const float *A, int64_t lda,
                       const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    tfi_few_rows_ab_plain(m, c1 - c0, k, A, lda, B + c0, ldb, beta, C + c0, ldc);
}

#endif

/* ---- drivers: a parallel loop over B's rows or columns ------------------ */

/* Tasks of a threaded product: up to FR_TASKS, so that a thread the system
 * deschedules holds back little of the product. */
#define FR_TASKS 16

typedef struct fr_loop {
    int64_t m, n, k, lda, ldb, ldc, step;
    const float *A, *B;
    float beta, *C;
} fr_loop;

/* The task's columns [*lo, *hi). */
static void task_columns(const fr_loop *a, int64_t t, int64_t *lo, int64_t *hi)
{
    *lo = t * a->step;
    *hi = *lo + a->step < a->n ? *lo + a->step : a->n;
}

/* A loop over n columns in tasks of whole units: fills a->step, returns
 * the task count. */
static int64_t plan_tasks(fr_loop *a, int64_t unit)
{
    int64_t per = (a->n + FR_TASKS - 1) / FR_TASKS;
    a->step = (per + unit - 1) / unit * unit;
    return (a->n + a->step - 1) / a->step;
}

static void abt_task(void *arg, int64_t t, int worker)
{
    const fr_loop *a = arg;
    int64_t j0, j1;
    task_columns(a, t, &j0, &j1);
    abt_columns(a->m, j0, j1, a->k, a->A, a->lda, a->B, a->ldb, a->C, a->ldc);
}

void tfi_few_rows_abt(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                      const float *B, int64_t ldb, float *C, int64_t ldc)
{
    const int nthreads = tfi_gemm_threads(m, n, k);
    if (nthreads == 1 || n < 64) {
        abt_columns(m, 0, n, k, A, lda, B, ldb, C, ldc);
        return;
    }
    /* contiguous rows of B, in blocks of 4: each task streams its part */
    fr_loop a = {.m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc, .A = A, .B = B,
                 .C = C};
    tfi_parallel_for(plan_tasks(&a, 4), nthreads, abt_task, &a);
}

static void ab_task(void *arg, int64_t t, int worker)
{
    const fr_loop *a = arg;
    int64_t c0, c1;
    task_columns(a, t, &c0, &c1);
    ab_columns(a->m, c0, c1, a->k, a->A, a->lda, a->B, a->ldb, a->beta, a->C, a->ldc);
}

void tfi_few_rows_ab(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda,
                     const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    const int nthreads = tfi_gemm_threads(m, n, k);
    if (nthreads == 1 || n < 128) {
        ab_columns(m, 0, n, k, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* blocks of 64 columns: no two threads write the same cache line of C */
    fr_loop a = {.m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc, .A = A, .B = B,
                 .beta = beta, .C = C};
    tfi_parallel_for(plan_tasks(&a, 64), nthreads, ab_task, &a);
}
