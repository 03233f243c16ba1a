/*
 * sample.c -- drawing a token from logits (greedy, temperature, top-k,
 * nucleus), and the byte-level tokenizer.
 *
 * The distribution is softmax(logits / temperature), max-shifted and
 * evaluated in double.  Candidates are ordered by logit, descending, ties
 * by lower id.  top_k keeps the first k of that order; top_p the shortest
 * prefix whose probability mass (after top_k, renormalised) reaches top_p.
 *
 * No sorting and no allocation, for any vocabulary size: the boundary of a
 * prefix is found by a radix selection over the order-preserving 32-bit
 * keys of the logits (three passes of 11, 11 and 10 bits with a histogram
 * of 2048 bins on the stack, then one pass over the tokens of the boundary
 * key in id order).  The kept set is then "key above the boundary key, or
 * equal to it with an id not above the boundary id", and the draw scans the
 * vocabulary once in id order.  Cost: a few passes over V, about V exp()
 * calls in the first pass and one per kept token after it.
 *
 * The random stream is SplitMix64 over *rng_state: one 64-bit step per
 * draw, uniform = top 53 bits / 2^53.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

static tf_sampler_params sampler_defaults(void)
{
    tf_sampler_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.temperature = 1.0;
    p.top_k = 0;
    p.top_p = 1.0;
    p.seed = 1;
    return p;
}

TF_API void tf_sampler_params_init(tf_sampler_params *p, size_t size)
{
    tf_sampler_params d = sampler_defaults();
    tfi_params_init(p, size, &d, sizeof d);
}

TF_API tf_status tf_sampler_params_official(tf_sampler_params *p, double temperature,
                                            int32_t top_k, double top_p)
{
    static const char fn[] = "tf_sampler_params_official";
    if (!p)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: p is NULL", fn);
    if (p->struct_size < TFI_PARAMS_MIN(tf_sampler_params, top_p) ||
        p->struct_size > sizeof(tf_sampler_params))
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: tf_sampler_params.struct_size is %zu: obtain "
                        "the struct from tf_sampler_default_params()", fn, p->struct_size);
    if (!(temperature >= 0.0) || !isfinite(temperature))
        return tfi_fail(NULL, TF_ERR_ARGUMENT,
                        "%s: temperature must be a finite number >= 0 (got %g)", fn, temperature);
    if (top_k < 0)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: top_k must be >= 0 (got %d)", fn,
                        (int)top_k);
    if (!(top_p >= 0.0 && top_p <= 1.0))
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: top_p must be in [0, 1] (got %g)", fn, top_p);
    const int greedy = temperature == 0.0 && top_k == 0 && top_p == 0.0;
    p->temperature = greedy ? 0.0 : temperature > 0.0 ? temperature : 1.0;
    p->top_k = top_k;
    p->top_p = top_p > 0.0 ? top_p : 1.0;
    return TF_OK;
}

/* Order-preserving key: a > b  <=>  key(a) > key(b); -0 and +0 are one. */
static inline uint32_t fkey(float f)
{
    uint32_t u;
    if (f == 0.0f)
        f = 0.0f;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* A prefix boundary in the order (key desc, id asc): the kept tokens are
 * those with key > key, or key == key and id <= id. */
typedef struct boundary {
    uint32_t key;
    int64_t id;
} boundary;

static inline int kept(const boundary *b, uint32_t key, int64_t id)
{
    return key > b->key || (key == b->key && id <= b->id);
}

typedef struct dist {
    const float *logits;
    int64_t V;
    double mx, inv_t;
    int mass; /* weights: 1 (count) or exp((l - mx) / temperature) */
} dist;

static inline double weight(const dist *D, float l)
{
    return D->mass ? exp(((double)l - D->mx) * D->inv_t) : 1.0;
}

#define RADIX_BITS 11
#define RADIX_BINS (1 << RADIX_BITS)

/* The shortest prefix of the order whose cumulated weight reaches target
 * (> 0).  If rounding leaves the whole vocabulary short of the target, the
 * prefix ends at the last token of positive weight. */
static boundary select_prefix(const dist *D, double target)
{
    static const int shift[3] = {21, 10, 0}, width[3] = {11, 11, 10};
    double hist[RADIX_BINS];
    uint32_t prefix = 0, pmask = 0;
    double above = 0.0; /* weight of the tokens ordered before the prefix's */
    for (int level = 0; level < 3; level++) {
        const uint32_t bins = 1u << width[level], bmask = bins - 1;
        memset(hist, 0, bins * sizeof hist[0]);
        for (int64_t i = 0; i < D->V; i++) {
            uint32_t k = fkey(D->logits[i]);
            if ((k & pmask) == prefix)
                hist[(k >> shift[level]) & bmask] += weight(D, D->logits[i]);
        }
        uint32_t chosen = bins, last_pos = bins;
        double cum = above;
        for (uint32_t b = bins; b-- > 0;) {
            if (hist[b] > 0.0)
                last_pos = b;
            if (hist[b] > 0.0 && cum + hist[b] >= target) {
                chosen = b;
                break;
            }
            cum += hist[b];
        }
        if (chosen == bins) { /* rounding: take the last bin of positive weight */
            chosen = last_pos == bins ? 0 : last_pos;
            cum = above;
            for (uint32_t b = bins - 1; b > chosen; b--)
                cum += hist[b];
        }
        above = cum;
        prefix |= chosen << shift[level];
        pmask |= bmask << shift[level];
    }
    boundary bd = {prefix, -1};
    double cum = above;
    for (int64_t i = 0; i < D->V; i++) {
        if (fkey(D->logits[i]) != prefix)
            continue;
        double w = weight(D, D->logits[i]);
        if (w > 0.0)
            bd.id = i;
        cum += w;
        if (w > 0.0 && cum >= target)
            break;
    }
    if (bd.id < 0) /* only reachable with no positive weight at all */
        bd.id = D->V - 1;
    return bd;
}

static int32_t argmax(const float *logits, int64_t V)
{
    int64_t best = 0;
    for (int64_t i = 1; i < V; i++)
        if (logits[i] > logits[best])
            best = i;
    return (int32_t)best;
}

TF_API tf_status tf_sample(const float *logits, int64_t V, const tf_sampler_params *params,
                           uint64_t *rng_state, int32_t *out)
{
    static const char fn[] = "tf_sample";
    if (!logits || !rng_state || !out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: logits, rng_state or out is NULL", fn);
    if (V < 1 || V > (int64_t)INT32_MAX + 1)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: V must be in [1, 2^31] (got %lld)", fn,
                        (long long)V);
    tf_sampler_params p = tf_sampler_default_params();
    tf_status st = tfi_params_in(&p, sizeof p, params,
                                 TFI_PARAMS_MIN(tf_sampler_params, temperature), fn,
                                 "tf_sampler_params", NULL);
    if (st != TF_OK)
        return st;
    if (!(p.temperature >= 0.0) || !isfinite(p.temperature))
        return tfi_fail(NULL, TF_ERR_ARGUMENT,
                        "%s: temperature must be a finite number >= 0 (got %g)", fn,
                        p.temperature);
    if (p.top_k < 0)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: top_k must be >= 0 (got %d)", fn,
                        (int)p.top_k);
    if (isnan(p.top_p))
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: top_p is NaN", fn);
    float mx = -INFINITY;
    for (int64_t i = 0; i < V; i++) {
        if (isnan(logits[i]) || logits[i] == INFINITY)
            return tfi_fail(NULL, TF_ERR_NONFINITE, "%s: logits[%lld] is %g", fn,
                            (long long)i, (double)logits[i]);
        mx = logits[i] > mx ? logits[i] : mx;
    }
    if (mx == -INFINITY)
        return tfi_fail(NULL, TF_ERR_NONFINITE, "%s: every logit is -inf", fn);
    if (p.temperature == 0.0 || p.top_p <= 0.0 || !isfinite(1.0 / p.temperature)) {
        *out = argmax(logits, V);
        return TF_OK;
    }

    dist D = {logits, V, mx, 1.0 / p.temperature, 0};
    /* everything kept unless a filter says otherwise */
    boundary keep = {0, V - 1};
    int filtered = 0;
    if (p.top_k > 0 && p.top_k < V) {
        keep = select_prefix(&D, (double)p.top_k);
        filtered = 1;
    }
    D.mass = 1;
    if (p.top_p < 1.0) {
        double mass = 0.0;
        for (int64_t i = 0; i < V; i++)
            if (!filtered || kept(&keep, fkey(logits[i]), i))
                mass += weight(&D, logits[i]);
        boundary bp = select_prefix(&D, p.top_p * mass);
        /* the nucleus is a prefix of the top-k prefix: keep the shorter */
        if (!filtered || bp.key > keep.key || (bp.key == keep.key && bp.id < keep.id))
            keep = bp;
        filtered = 1;
    }
    double total = 0.0;
    for (int64_t i = 0; i < V; i++)
        if (!filtered || kept(&keep, fkey(logits[i]), i))
            total += weight(&D, logits[i]);
    double r = (double)(tfi_splitmix64(rng_state) >> 11) * 0x1.0p-53 * total;
    double cum = 0.0;
    int64_t pick = -1;
    for (int64_t i = 0; i < V; i++) {
        if (filtered && !kept(&keep, fkey(logits[i]), i))
            continue;
        double w = weight(&D, logits[i]);
        if (w <= 0.0)
            continue;
        pick = i; /* the last positive candidate, should rounding leave r >= cum */
        cum += w;
        if (r < cum)
            break;
    }
    *out = (int32_t)(pick >= 0 ? pick : argmax(logits, V));
    return TF_OK;
}

/* ---- byte tokenizer ----------------------------------------------------- */

TF_API tf_status tf_bytes_to_tokens(const char *text, size_t len, int32_t *out, size_t cap,
                                    size_t *count)
{
    if ((len > 0 && (!text || !out)))
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_bytes_to_tokens: text or out is NULL");
    if (cap < len)
        return tfi_fail(NULL, TF_ERR_SHAPE,
                        "tf_bytes_to_tokens: %zu bytes need %zu ids, out holds %zu", len, len,
                        cap);
    for (size_t i = 0; i < len; i++)
        out[i] = (int32_t)(unsigned char)text[i];
    if (count)
        *count = len;
    return TF_OK;
}

TF_API tf_status tf_tokens_to_bytes(const int32_t *ids, size_t count, char *out, size_t cap)
{
    if (count > 0 && (!ids || !out))
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_tokens_to_bytes: ids or out is NULL");
    if (cap < count)
        return tfi_fail(NULL, TF_ERR_SHAPE,
                        "tf_tokens_to_bytes: %zu ids need %zu bytes, out holds %zu", count,
                        count, cap);
    for (size_t i = 0; i < count; i++)
        if (ids[i] < 0 || ids[i] > 255)
            return tfi_fail(NULL, TF_ERR_RANGE,
                            "tf_tokens_to_bytes: ids[%zu] = %d is not a byte (0..255)", i,
                            ids[i]);
    for (size_t i = 0; i < count; i++)
        out[i] = (char)(unsigned char)ids[i];
    if (cap > count)
        out[count] = '\0'; /* room to spare: terminate, for printing */
    return TF_OK;
}
