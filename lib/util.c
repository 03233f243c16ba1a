/* util.c -- aligned memory, grow-only workspaces, deterministic RNG. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

size_t tfi_mul_size(size_t a, size_t b)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    return a * b;
}

void *tfi_alloc(size_t bytes)
{
    if (bytes == 0)
        return NULL;
    /* 64-byte alignment: whole cache lines and AVX-512 vectors. */
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes)
        return NULL;
    return aligned_alloc(64, rounded);
}

void *tfi_calloc(size_t count, size_t size)
{
    size_t bytes = tfi_mul_size(count, size);
    if (bytes == 0)
        return NULL;
    void *p = tfi_alloc(bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void tfi_free(void *p)
{
    free(p);
}

void tfi_release_tail(void *p, size_t keep, size_t bytes)
{
    const long page = sysconf(_SC_PAGESIZE);
    if (!p || keep >= bytes || page <= 0)
        return;
    const uintptr_t pg = (uintptr_t)page, start = ((uintptr_t)p + keep + pg - 1) & ~(pg - 1),
                    end = ((uintptr_t)p + bytes) & ~(pg - 1);
    /* a refusal only leaves the pages resident: nothing to report */
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_DONTNEED);
}

tf_status tfi_reserve(float **buf, size_t *cap, size_t count)
{
    if (*buf && *cap >= count)
        return TF_OK;
    float *fresh = tfi_calloc(count ? count : 1, sizeof(float));
    if (!fresh)
        return TF_ERR_NOMEM;
    tfi_free(*buf);
    *buf = fresh;
    *cap = count;
    return TF_OK;
}

/* SplitMix64 expands the seed; xoshiro256** generates.  Both are public
 * domain algorithms by Vigna; small, fast and reproducible everywhere. */
uint64_t tfi_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void tfi_rng_seed(tfi_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = tfi_splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0.0;
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t tfi_rng_next(tfi_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tfi_rng_uniform(tfi_rng *r)
{
    return (double)(tfi_rng_next(r) >> 11) * 0x1.0p-53;
}

double tfi_rng_normal(tfi_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1, u2;
    do
        u1 = tfi_rng_uniform(r);
    while (u1 <= 0.0);
    u2 = tfi_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1));
    double ang = 2.0 * M_PI * u2;
    r->spare = rad * sin(ang);
    r->has_spare = 1;
    return rad * cos(ang);
}

void tfi_rng_fill_normal(tfi_rng *r, float *dst, size_t count, double std)
{
    for (size_t i = 0; i < count; i++)
        dst[i] = (float)(std * tfi_rng_normal(r));
}
