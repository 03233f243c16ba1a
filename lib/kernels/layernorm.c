/*
 * layernorm.c -- LayerNorm over the rows of x [N, d], forward and backward.
 *
 *   mean = sum(x) / d,  var = sum((x - mean)^2) / d   (biased, two passes)
 *   xhat = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps)
 *   y    = xhat * w + b   (affine only when w is given)
 *
 * Statistics are accumulated in double and in two passes (mean first, then
 * the centred sum of squares): the one-pass E[x^2] - E[x]^2 form cancels
 * catastrophically when |mean| >> std, which the residual stream can reach.
 */
#include <math.h>

#include "internal.h"
#include "kernels/ops.h"
#include "kernels/vecmath.h"

/* Columns per block in the dw/db reduction: small enough for a stack
 * accumulator, large enough for contiguous row reads. */
#define LN_COL_BLOCK 64

/* The operands of the row and column loops. */
typedef struct ln_loop {
    float *y, *mean_out, *rstd_out, *dx, *dw, *db;
    const float *x, *dy, *w, *b, *mean, *rstd;
    int64_t N, d;
    float eps;
} ln_loop;

static void forward_rows(void *arg, int64_t r0, int64_t r1)
{
    const ln_loop *a = arg;
    const int64_t d = a->d;
    for (int64_t i = r0; i < r1; i++)
        tfi_row_layernorm(a->y + i * d, a->mean_out + i, a->rstd_out + i, a->x + i * d, a->w,
                          a->b, d, a->eps);
}

void tfi_layernorm_forward(float *y, float *mean, float *rstd, const float *x,
                           const float *w, const float *b, int64_t N, int64_t d,
                           float eps)
{
    ln_loop a = {.y = y, .mean_out = mean, .rstd_out = rstd, .x = x, .w = w, .b = b,
                 .N = N, .d = d, .eps = eps};
    tfi_parallel_rows(N, tfi_threads_for(N * d), forward_rows, &a);
}

/*
 * With g = dy * w (or dy without affine), the gradient of xhat's
 * normalisation is the projection that removes g's mean and its component
 * along xhat:
 *   dx += rstd * (g - mean(g) - xhat * mean(g * xhat))
 *   dw += sum over rows of dy * xhat,   db += sum over rows of dy
 * xhat is recomputed from the saved mean and rstd rather than stored.  The
 * saved mean is float (ops.h), so xhat here is off from the forward's by up
 * to 6e-8 * |mean| * rstd: negligible unless |mean| / std nears 1e3 (the
 * forward itself stays exact there, it uses the double mean).
 */
/* dx: rows are independent. */
static void dx_rows(void *arg, int64_t r0, int64_t r1)
{
    const ln_loop *a = arg;
    const float *x = a->x, *dy = a->dy, *w = a->w, *mean = a->mean, *rstd = a->rstd;
    float *dx = a->dx;
    const int64_t d = a->d;
    for (int64_t i = r0; i < r1; i++) {
        const float *xi = x + i * d, *dyi = dy + i * d;
        float *dxi = dx + i * d;
        float mu = mean[i], rs = rstd[i];

        double sum_g = 0.0, sum_gx = 0.0;
        for (int64_t j = 0; j < d; j++) {
            float xhat = (xi[j] - mu) * rs;
            float g = w ? dyi[j] * w[j] : dyi[j];
            sum_g += g;
            sum_gx += (double)g * xhat;
        }
        float mean_g = (float)(sum_g / (double)d);
        float mean_gx = (float)(sum_gx / (double)d);

        for (int64_t j = 0; j < d; j++) {
            float xhat = (xi[j] - mu) * rs;
            float g = w ? dyi[j] * w[j] : dyi[j];
            dxi[j] += rs * (g - mean_g - xhat * mean_gx);
        }
    }
}

/* dw, db: sums over rows.  Threads own disjoint column blocks, so there is
 * no race and no scratch buffer; each block walks the rows in order
 * (contiguous reads within a row) and accumulates in double. */
static void dwdb_blocks(void *arg, int64_t blk0, int64_t blk1)
{
    const ln_loop *a = arg;
    const float *x = a->x, *dy = a->dy, *mean = a->mean, *rstd = a->rstd;
    float *dw = a->dw, *db = a->db;
    const int64_t N = a->N, d = a->d;
    for (int64_t blk = blk0; blk < blk1; blk++) {
        int64_t j0 = blk * LN_COL_BLOCK;
        int64_t j1 = j0 + LN_COL_BLOCK < d ? j0 + LN_COL_BLOCK : d;
        double acc_w[LN_COL_BLOCK] = {0}, acc_b[LN_COL_BLOCK] = {0};

        for (int64_t i = 0; i < N; i++) {
            const float *xi = x + i * d, *dyi = dy + i * d;
            float mu = mean[i], rs = rstd[i];
            for (int64_t j = j0; j < j1; j++) {
                float xhat = (xi[j] - mu) * rs;
                acc_w[j - j0] += (double)dyi[j] * xhat;
                acc_b[j - j0] += dyi[j];
            }
        }
        for (int64_t j = j0; j < j1; j++) {
            if (dw)
                dw[j] += (float)acc_w[j - j0];
            if (db)
                db[j] += (float)acc_b[j - j0];
        }
    }
}

void tfi_layernorm_backward(float *dx, float *dw, float *db, const float *dy,
                            const float *x, const float *mean, const float *rstd,
                            const float *w, int64_t N, int64_t d)
{
    ln_loop a = {.dx = dx, .dw = dw, .db = db, .x = x, .dy = dy, .w = w, .mean = mean,
                 .rstd = rstd, .N = N, .d = d};
    const int nt = tfi_threads_for(N * d);
    tfi_parallel_rows(N, nt, dx_rows, &a);
    if (dw || db)
        tfi_parallel_rows((d + LN_COL_BLOCK - 1) / LN_COL_BLOCK, nt, dwdb_blocks, &a);
}
