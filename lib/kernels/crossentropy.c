/*
 * crossentropy.c -- mean cross-entropy over rows of logits [N, V].
 *
 *   lse_i  = log sum_j exp(logit[i][j])       (max-shifted)
 *   loss   = mean_i (lse_i - logit[i][target_i])
 *   dlogit = (softmax - onehot(target)) * scale,  softmax = exp(logit - lse)
 *
 * With label smoothing eps the target distribution is (1 - eps) onehot +
 * eps / V (PyTorch's CrossEntropyLoss(label_smoothing=eps)):
 *   loss   = mean_i (lse_i - (1 - eps) logit[i][target_i]
 *                          - eps mean_j logit[i][j])
 *   dlogit = (softmax - onehot(target) + eps (onehot(target) - 1/V)) * scale
 * the plain gradient plus the smoothing's correction, so eps = 0 is the
 * plain loss bit for bit.
 *
 * The max shift keeps every exponent <= 0, so logits in the thousands do not
 * overflow.  Row sums and the loss are accumulated in double.
 */
#include <math.h>

#include "internal.h"
#include "kernels/ops.h"

/* The loss sums the rows in at most CE_PARTS parts of consecutive rows,
 * cut by N alone, then the parts in order: the same bits for every thread
 * count. */
#define CE_PARTS 64

typedef struct ce_loop {
    const float *logits;
    float *dlogits, *lse_out;
    const float *lse;
    const int32_t *targets;
    int64_t N, V, rows_per_part;
    float scale, eps;
    double part[CE_PARTS];
} ce_loop;

static void forward_part(void *arg, int64_t t, int worker)
{
    ce_loop *a = arg;
    const float *logits = a->logits;
    const int32_t *targets = a->targets;
    float *lse = a->lse_out;
    const int64_t V = a->V, r0 = t * a->rows_per_part;
    const int64_t r1 = r0 + a->rows_per_part < a->N ? r0 + a->rows_per_part : a->N;
    double total = 0.0;
    for (int64_t i = r0; i < r1; i++) {
        const float *row = logits + i * V;
        float mx = row[0];
        for (int64_t j = 1; j < V; j++)
            mx = row[j] > mx ? row[j] : mx;
        double sum = 0.0;
        for (int64_t j = 0; j < V; j++)
            sum += expf(row[j] - mx);
        double lse_i = (double)mx + log(sum);
        lse[i] = (float)lse_i;
        if (a->eps == 0.0f) {
            total += lse_i - (double)row[targets[i]];
            continue;
        }
        double row_sum = 0.0;
        for (int64_t j = 0; j < V; j++)
            row_sum += row[j];
        const double eps = a->eps;
        total += lse_i - (1.0 - eps) * row[targets[i]] - eps * row_sum / (double)V;
    }
    a->part[t] = total;
}

double tfi_crossentropy_forward(const float *logits, const int32_t *targets,
                                int64_t N, int64_t V, float eps, float *lse)
{
    if (N <= 0)
        return 0.0;
    ce_loop a = {.logits = logits, .lse_out = lse, .targets = targets, .N = N, .V = V,
                 .eps = eps, .rows_per_part = (N + CE_PARTS - 1) / CE_PARTS};
    const int64_t parts = (N + a.rows_per_part - 1) / a.rows_per_part;
    tfi_parallel_for(parts, tfi_threads_for(N * V), forward_part, &a);
    double total = 0.0;
    for (int64_t t = 0; t < parts; t++)
        total += a.part[t];
    return total / (double)N;
}

static void backward_rows(void *arg, int64_t r0, int64_t r1)
{
    const ce_loop *a = arg;
    const float *logits = a->logits, *lse = a->lse;
    const int32_t *targets = a->targets;
    float *dlogits = a->dlogits;
    const int64_t V = a->V;
    const float scale = a->scale;
    const float smooth = a->eps * scale, per_class = smooth / (float)V;
    for (int64_t i = r0; i < r1; i++) {
        const float *row = logits + i * V;
        float *drow = dlogits + i * V;
        float l = lse[i];
        /* Each element is read before it is written, so drow may be row. */
        for (int64_t j = 0; j < V; j++)
            drow[j] = expf(row[j] - l) * scale;
        drow[targets[i]] -= scale;
        if (smooth == 0.0f)
            continue;
        for (int64_t j = 0; j < V; j++)
            drow[j] -= per_class;
        drow[targets[i]] += smooth;
    }
}

void tfi_crossentropy_backward(float *dlogits, const float *logits, float eps,
                               const float *lse, const int32_t *targets,
                               int64_t N, int64_t V, float scale)
{
    ce_loop a = {.logits = logits, .dlogits = dlogits, .lse = lse, .targets = targets,
                 .N = N, .V = V, .scale = scale, .eps = eps};
    tfi_parallel_rows(N, tfi_threads_for(N * V), backward_rows, &a);
}
