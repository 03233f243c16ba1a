/* testutil.h -- small helpers shared by the unit tests. */
#ifndef TF_TESTUTIL_H
#define TF_TESTUTIL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* The fixtures' metric: max|a - b| / (max|b| + 1e-6). */
static inline double tt_rel_err(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > num || isnan(d))
            num = isnan(d) ? INFINITY : d;
        if (fabs((double)b[i]) > den)
            den = fabs((double)b[i]);
    }
    return num / (den + 1e-6);
}

/* Mean cross-entropy of logits [N, V] against (1 - eps) onehot(targets) +
 * eps / V, in double: what label smoothing must give. */
static inline double tt_smoothed_ce(const float *logits, const int32_t *targets, int N, int V,
                                    double eps)
{
    double loss = 0.0;
    for (int i = 0; i < N; i++) {
        const float *row = logits + (size_t)i * (size_t)V;
        double mx = row[0], sum = 0.0;
        for (int v = 1; v < V; v++)
            mx = fmax(mx, row[v]);
        for (int v = 0; v < V; v++)
            sum += exp(row[v] - mx);
        for (int v = 0; v < V; v++)
            loss -= (eps / V + (v == targets[i] ? 1.0 - eps : 0.0)) * (row[v] - mx - log(sum));
    }
    return loss / N;
}

#endif
