/*
 * crossentropy.c -- mean cross-entropy over rows of logits [N, V].
 *
 *   lse_i  = log sum_j exp(logit[i][j])       (max-shifted)
 *   loss   = mean_i (lse_i - logit[i][target_i])
 *   dlogit = (softmax - onehot(target)) * scale,  softmax = exp(logit - lse)
 *
 * The max shift keeps every exponent <= 0, so logits in the thousands do not
 * overflow.  Row sums and the loss are accumulated in double.
 */
#include <math.h>

#include "internal.h"
#include "kernels/ops.h"

double tfi_crossentropy_forward(const float *logits, const int32_t *targets,
                                int64_t N, int64_t V, float *lse)
{
    double total = 0.0;

#pragma omp parallel for num_threads(tfi_threads_for(N * V)) schedule(static) \
    reduction(+ : total)
    for (int64_t i = 0; i < N; i++) {
        const float *row = logits + i * V;
        float mx = row[0];
        for (int64_t j = 1; j < V; j++)
            mx = row[j] > mx ? row[j] : mx;
        double sum = 0.0;
        for (int64_t j = 0; j < V; j++)
            sum += expf(row[j] - mx);
        double lse_i = (double)mx + log(sum);
        lse[i] = (float)lse_i;
        total += lse_i - (double)row[targets[i]];
    }
    return N > 0 ? total / (double)N : 0.0;
}

void tfi_crossentropy_backward(float *dlogits, const float *logits,
                               const float *lse, const int32_t *targets,
                               int64_t N, int64_t V, float scale)
{
#pragma omp parallel for num_threads(tfi_threads_for(N * V)) schedule(dynamic, TFI_ROWS_PER_TASK)
    for (int64_t i = 0; i < N; i++) {
        const float *row = logits + i * V;
        float *drow = dlogits + i * V;
        float l = lse[i];
        /* Each element is read before it is written, so drow may be row. */
        for (int64_t j = 0; j < V; j++)
            drow[j] = expf(row[j] - l) * scale;
        drow[targets[i]] -= scale;
    }
}
