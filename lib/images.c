/*
 * images.c -- the image dataset object: labelled grayscale images in
 * memory, the seeded epoch stream of augmented training batches and the
 * in-order evaluation batches (the header states the exact rules).
 *
 * The epoch order is a keyed permutation computed index by index (a
 * Feistel network on the bits of the index, with cycle walking down to
 * [0, N)), not a shuffled array: a batch then costs O(B) whatever its
 * number, needs no per-epoch state, and the handle stays read-only, so a
 * batch is a pure function of its arguments by construction.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "io/idx.h"

#define FEISTEL_ROUNDS 6

struct tf_image_dataset {
    tfi_errbuf err;
    int64_t n;
    int32_t height, width;
    int32_t num_classes;
    uint8_t *pixels; /* [n, height, width] */
    int32_t *labels; /* [n] */
};

/* ---- parameters ---------------------------------------------------------- */

static tf_image_aug_params aug_defaults(void)
{
    tf_image_aug_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.shift = 2;
    p.hflip = 1;
    p.mean = 0.0;
    p.std = 1.0;
    return p;
}

TF_API void tf_image_aug_params_init(tf_image_aug_params *p, size_t size)
{
    tf_image_aug_params d = aug_defaults();
    tfi_params_init(p, size, &d, sizeof d);
}

/* Copies and validates a caller's params (NULL: defaults) for ds. */
static tf_status aug_params_copy(const tf_image_dataset *ds, const char *fn,
                                 const tf_image_aug_params *src, tf_image_aug_params *dst)
{
    tfi_errbuf *eb = (tfi_errbuf *)&ds->err;
    *dst = aug_defaults();
    /* every field of the first version is required; later ones append */
    tf_status st = tfi_params_in(dst, sizeof *dst, src, TFI_PARAMS_MIN(tf_image_aug_params, std),
                                 fn, "tf_image_aug_params", eb);
    if (st != TF_OK)
        return st;
    if (dst->shift < 0 || dst->shift > TF_IMAGE_MAX_SHIFT)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: shift %d is outside [0, %d]", fn,
                        (int)dst->shift, TF_IMAGE_MAX_SHIFT);
    if (dst->hflip != 0 && dst->hflip != 1)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: hflip is %d, must be 0 or 1", fn,
                        (int)dst->hflip);
    if (!isfinite(dst->mean) || !isfinite(dst->std) || !(dst->std > 0.0))
        return tfi_fail(eb, TF_ERR_ARGUMENT,
                        "%s: mean %g and std %g must be finite, and std > 0", fn, dst->mean,
                        dst->std);
    return TF_OK;
}

/* ---- creation -------------------------------------------------------------- */

/* Takes ownership of pixels and labels (freed on failure too). */
static tf_status dataset_new(const char *fn, uint8_t *pixels, int32_t *labels, int64_t n,
                             int32_t height, int32_t width, tf_image_dataset **out)
{
    tf_image_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) {
        free(pixels);
        free(labels);
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", fn);
    }
    ds->n = n;
    ds->height = height;
    ds->width = width;
    ds->pixels = pixels;
    ds->labels = labels;
    int32_t top = 0;
    for (int64_t i = 0; i < n; i++)
        if (labels[i] > top)
            top = labels[i];
    ds->num_classes = top + 1;
    *out = ds;
    return TF_OK;
}

TF_API tf_status tf_image_dataset_open(const char *images_path, const char *labels_path,
                                       tf_image_dataset **out)
{
    static const char fn[] = "tf_image_dataset_open";
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!images_path || !labels_path)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: %s is NULL", fn,
                        !images_path ? "images_path" : "labels_path");

    tfi_idx img, lab;
    tf_status st = tfi_idx_read(images_path, &img);
    if (st != TF_OK)
        return st;
    st = tfi_idx_read(labels_path, &lab);
    if (st != TF_OK) {
        tfi_idx_release(&img);
        return st;
    }
    const char *swapped = img.ndim == 1 && lab.ndim == 3 ? " (are the two paths swapped?)" : "";
    if (img.ndim != 3)
        st = tfi_fail(NULL, TF_ERR_FORMAT,
                      "%s: images must have 3 dimensions [N, H, W], this file has %d%s",
                      images_path, img.ndim, swapped);
    else if (lab.ndim != 1)
        st = tfi_fail(NULL, TF_ERR_FORMAT,
                      "%s: labels must have 1 dimension [N], this file has %d", labels_path,
                      lab.ndim);
    else if (img.dims[0] != lab.dims[0])
        st = tfi_fail(NULL, TF_ERR_FORMAT, "%s holds %lld images but %s holds %lld labels",
                      images_path, (long long)img.dims[0], labels_path, (long long)lab.dims[0]);
    else if (img.dims[1] > INT32_MAX || img.dims[2] > INT32_MAX)
        st = tfi_fail(NULL, TF_ERR_FORMAT, "%s: images of %lld x %lld pixels are too large",
                      images_path, (long long)img.dims[1], (long long)img.dims[2]);
    int32_t *labels = NULL;
    if (st == TF_OK) {
        labels = malloc(lab.count * sizeof *labels);
        if (!labels)
            st = tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", fn);
    }
    if (st != TF_OK) {
        tfi_idx_release(&img);
        tfi_idx_release(&lab);
        return st;
    }
    for (size_t i = 0; i < lab.count; i++)
        labels[i] = lab.data[i];
    tfi_idx_release(&lab);
    /* the pixel buffer changes hands: img.data is not released */
    return dataset_new(fn, img.data, labels, img.dims[0], (int32_t)img.dims[1],
                       (int32_t)img.dims[2], out);
}

TF_API tf_status tf_image_dataset_from_memory(const uint8_t *pixels, const int32_t *labels,
                                              int64_t n, int32_t height, int32_t width,
                                              tf_image_dataset **out)
{
    static const char fn[] = "tf_image_dataset_from_memory";
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!pixels || !labels)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: %s is NULL", fn,
                        !pixels ? "pixels" : "labels");
    if (n < 1 || height < 1 || width < 1)
        return tfi_fail(NULL, TF_ERR_ARGUMENT,
                        "%s: n = %lld, height = %d and width = %d must all be >= 1", fn,
                        (long long)n, (int)height, (int)width);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] == INT32_MAX) /* num_classes must fit an int32 */
            return tfi_fail(NULL, TF_ERR_RANGE, "%s: label %ld of image %lld is outside "
                            "[0, %ld)", fn, (long)labels[i], (long long)i, (long)INT32_MAX);
    size_t count = tfi_mul_size(tfi_mul_size((size_t)n, (size_t)height), (size_t)width);
    size_t label_bytes = tfi_mul_size((size_t)n, sizeof *labels);
    uint8_t *px = count ? malloc(count) : NULL;
    int32_t *lab = label_bytes ? malloc(label_bytes) : NULL;
    if (!px || !lab) {
        free(px);
        free(lab);
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory for %lld images of %d x %d", fn,
                        (long long)n, (int)height, (int)width);
    }
    memcpy(px, pixels, count);
    memcpy(lab, labels, label_bytes);
    return dataset_new(fn, px, lab, n, height, width, out);
}

TF_API void tf_image_dataset_free(tf_image_dataset *ds)
{
    if (!ds)
        return;
    free(ds->pixels);
    free(ds->labels);
    free(ds);
}

TF_API const char *tf_image_dataset_errmsg(const tf_image_dataset *ds)
{
    return ds ? ds->err.msg : "the image dataset is NULL";
}

TF_API int64_t tf_image_dataset_size(const tf_image_dataset *ds)
{
    return ds ? ds->n : 0;
}

TF_API int32_t tf_image_dataset_height(const tf_image_dataset *ds)
{
    return ds ? ds->height : 0;
}

TF_API int32_t tf_image_dataset_width(const tf_image_dataset *ds)
{
    return ds ? ds->width : 0;
}

TF_API int32_t tf_image_dataset_num_classes(const tf_image_dataset *ds)
{
    return ds ? ds->num_classes : 0;
}

TF_API int64_t tf_image_dataset_epoch_batches(const tf_image_dataset *ds, int B)
{
    if (!ds || B < 1 || B > ds->n)
        return 0;
    return ds->n / B;
}

/* ---- the epoch permutation ------------------------------------------------- */

/* A 64-bit mixing function: the generator's first output for seed x (its
 * seeding runs SplitMix64), so the mixing constants keep one home. */
static uint64_t hash64(uint64_t x)
{
    tfi_rng r;
    tfi_rng_seed(&r, x);
    return tfi_rng_next(&r);
}

/* A bijection on [0, n): a balanced Feistel network on 2 * half bits
 * (2^(2 half) >= n, so < 4n), walked until it lands inside [0, n). */
typedef struct feistel {
    uint64_t n, mask;
    int half;
    uint64_t keys[FEISTEL_ROUNDS];
} feistel;

static void feistel_init(feistel *f, uint64_t n, uint64_t key)
{
    int bits = 1;
    while (bits < 64 && ((uint64_t)1 << bits) < n)
        bits++;
    f->n = n;
    f->half = (bits + 1) / 2;
    f->mask = ((uint64_t)1 << f->half) - 1;
    for (int r = 0; r < FEISTEL_ROUNDS; r++)
        f->keys[r] = hash64(key + (uint64_t)r);
}

static uint64_t feistel_apply(const feistel *f, uint64_t x)
{
    do {
        uint64_t left = x >> f->half, right = x & f->mask;
        for (int r = 0; r < FEISTEL_ROUNDS; r++) {
            uint64_t t = left ^ (hash64(right ^ f->keys[r]) & f->mask);
            left = right;
            right = t;
        }
        x = left << f->half | right;
    } while (x >= f->n);
    return x;
}

/* ---- batches --------------------------------------------------------------- */

/* lut[v] = (v / 255 - mean) / std */
static void make_lut(const tf_image_aug_params *p, float lut[256])
{
    for (int v = 0; v < 256; v++)
        lut[v] = (float)(((double)v / 255.0 - p->mean) / p->std);
}

/* One image, shifted by (dy, dx) with zero padding, then mirrored if flip,
 * then normalised through lut: the header's rule, the only copy of it. */
static void render(const uint8_t *src, int32_t H, int32_t W, int dy, int dx, int flip,
                   const float *lut, float *dst)
{
    for (int32_t y = 0; y < H; y++) {
        float *row = dst + (size_t)y * (size_t)W;
        int64_t sy = (int64_t)y + dy;
        if (sy < 0 || sy >= H) {
            for (int32_t x = 0; x < W; x++)
                row[x] = lut[0];
            continue;
        }
        const uint8_t *s = src + (size_t)sy * (size_t)W;
        for (int32_t x = 0; x < W; x++) {
            int64_t sx = (int64_t)(flip ? W - 1 - x : x) + dx;
            row[x] = sx >= 0 && sx < W ? lut[s[sx]] : lut[0];
        }
    }
}

/* Uniform integer in [0, m) for small m (the 53-bit draw's bias is nil). */
static int draw_below(tfi_rng *r, int m)
{
    return (int)(tfi_rng_uniform(r) * (double)m);
}

static tf_status check_buffers(const tf_image_dataset *ds, const char *fn, const float *pixels,
                               const int32_t *labels)
{
    if (!ds)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: the image dataset is NULL", fn);
    if (!pixels || !labels)
        return tfi_fail((tfi_errbuf *)&ds->err, TF_ERR_ARGUMENT, "%s: %s is NULL", fn,
                        !pixels ? "pixels" : "labels");
    return TF_OK;
}

TF_API tf_status tf_image_dataset_train_batch(const tf_image_dataset *ds,
                                              const tf_image_aug_params *params, uint64_t seed,
                                              int64_t i, int B, float *pixels, int32_t *labels)
{
    static const char fn[] = "tf_image_dataset_train_batch";
    tf_status st = check_buffers(ds, fn, pixels, labels);
    if (st != TF_OK)
        return st;
    tfi_errbuf *eb = (tfi_errbuf *)&ds->err;
    tf_image_aug_params p;
    st = aug_params_copy(ds, fn, params, &p);
    if (st != TF_OK)
        return st;
    if (B < 1 || B > ds->n)
        return tfi_fail(eb, TF_ERR_RANGE, "%s: B = %d is outside [1, N = %lld]", fn, B,
                        (long long)ds->n);
    if (i < 0)
        return tfi_fail(eb, TF_ERR_RANGE, "%s: batch number %lld is negative", fn,
                        (long long)i);

    /* Two independent streams from the seed: epoch orders and augmentation. */
    tfi_rng base;
    tfi_rng_seed(&base, seed);
    uint64_t order_key = tfi_rng_next(&base);
    uint64_t aug_key = tfi_rng_next(&base);
    int64_t per_epoch = ds->n / B;
    int64_t epoch = i / per_epoch, slot = i % per_epoch;
    feistel order;
    feistel_init(&order, (uint64_t)ds->n, hash64(order_key + (uint64_t)epoch));
    tfi_rng rng;
    tfi_rng_seed(&rng, hash64(aug_key + (uint64_t)i));

    float lut[256];
    make_lut(&p, lut);
    const size_t hw = (size_t)ds->height * (size_t)ds->width;
    const int k = p.shift;
    for (int b = 0; b < B; b++) {
        uint64_t img = feistel_apply(&order, (uint64_t)(slot * B + b));
        /* three draws per image whatever is enabled, so that switching one
         * augmentation off leaves the others' draws as they were */
        int dy = draw_below(&rng, 2 * k + 1) - k;
        int dx = draw_below(&rng, 2 * k + 1) - k;
        int flip = draw_below(&rng, 2) & p.hflip;
        render(ds->pixels + img * hw, ds->height, ds->width, dy, dx, flip, lut,
               pixels + (size_t)b * hw);
        labels[b] = ds->labels[img];
    }
    return TF_OK;
}

TF_API tf_status tf_image_dataset_eval_batch(const tf_image_dataset *ds,
                                             const tf_image_aug_params *params, int64_t first,
                                             int count, float *pixels, int32_t *labels)
{
    static const char fn[] = "tf_image_dataset_eval_batch";
    tf_status st = check_buffers(ds, fn, pixels, labels);
    if (st != TF_OK)
        return st;
    tf_image_aug_params p;
    st = aug_params_copy(ds, fn, params, &p);
    if (st != TF_OK)
        return st;
    if (count < 1 || first < 0 || first > ds->n - count)
        return tfi_fail((tfi_errbuf *)&ds->err, TF_ERR_RANGE,
                        "%s: images [%lld, %lld + %d) are not a non-empty range inside "
                        "[0, N = %lld)", fn, (long long)first, (long long)first, count,
                        (long long)ds->n);
    float lut[256];
    make_lut(&p, lut);
    const size_t hw = (size_t)ds->height * (size_t)ds->width;
    for (int b = 0; b < count; b++) {
        int64_t img = first + b;
        render(ds->pixels + (size_t)img * hw, ds->height, ds->width, 0, 0, 0, lut,
               pixels + (size_t)b * hw);
        labels[b] = ds->labels[img];
    }
    return TF_OK;
}
