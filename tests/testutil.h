/* testutil.h -- small helpers shared by the unit tests. */
#ifndef TF_TESTUTIL_H
#define TF_TESTUTIL_H

#include <math.h>
#include <stddef.h>

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

#endif
