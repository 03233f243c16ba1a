/*
 * args.h -- numbers from the command line for the example programs: the
 * whole argument must be a number within the flag's range, else a message
 * names the program, the flag, the range and the value (strtoll/strtod
 * with every check, never atoi/atof, which read "1.5x" as 1 and "x" as 0).
 */
#ifndef TF_EXAMPLES_ARGS_H
#define TF_EXAMPLES_ARGS_H

#include <errno.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* An integer in [lo, hi]; 0 on success, else -1 with a message on stderr. */
static inline int arg_int(const char *prog, const char *flag, const char *s, int64_t lo,
                          int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == 0 && end != s && *end == '\0' && v >= lo && v <= hi) {
        *out = (int64_t)v;
        return 0;
    }
    if (hi == INT64_MAX)
        fprintf(stderr, "%s: %s needs an integer >= %lld, not '%s'\n", prog, flag,
                (long long)lo, s);
    else
        fprintf(stderr, "%s: %s needs an integer in [%lld, %lld], not '%s'\n", prog, flag,
                (long long)lo, (long long)hi, s);
    return -1;
}

/* A non-negative integer of 64 bits (a seed); 0 on success, else -1 with a
 * message.  strtoull alone would take "-1" as 2^64 - 1. */
static inline int arg_u64(const char *prog, const char *flag, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == 0 && end != s && *end == '\0' && s[0] >= '0' && s[0] <= '9') {
        *out = (uint64_t)v;
        return 0;
    }
    fprintf(stderr, "%s: %s needs a non-negative integer, not '%s'\n", prog, flag, s);
    return -1;
}

/* A finite number in [lo, hi] (hi = DBL_MAX: no upper bound); NaN and
 * infinities are refused.  0 on success, else -1 with a message. */
static inline int arg_double(const char *prog, const char *flag, const char *s, double lo,
                             double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == 0 && end != s && *end == '\0' && v >= lo && v <= hi) {
        *out = v;
        return 0;
    }
    if (hi == DBL_MAX)
        fprintf(stderr, "%s: %s needs a number >= %g, not '%s'\n", prog, flag, lo, s);
    else
        fprintf(stderr, "%s: %s needs a number in [%g, %g], not '%s'\n", prog, flag, lo, hi, s);
    return -1;
}

#endif
