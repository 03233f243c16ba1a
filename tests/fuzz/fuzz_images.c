/*
 * fuzz_images.c -- libFuzzer target: IDX image and label files (plain or
 * gzip) from untrusted bytes.  The first two input bytes give the length
 * of the label file, which follows; the rest is the image file.  Whatever
 * opens is batched, for training (augmented) and for evaluation.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"

/* A second scratch file for the labels (fuzz_util.h has one). */
static const char *labels_file(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/tf-fuzz-labels-%ld", dir && *dir ? dir : "/tmp",
                 (long)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    int ok = fwrite(data, 1, size, f) == size;
    ok &= fclose(f) == 0;
    return ok ? path : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t nlab = (size_t)data[0] | (size_t)data[1] << 8;
    if (nlab > size - 2)
        nlab = size - 2;
    const char *labels = labels_file(data + 2, nlab);
    const char *images = fuzz_input_file(data + 2 + nlab, size - 2 - nlab);
    if (!labels || !images)
        return 0;
    tf_image_dataset *ds = NULL;
    if (tf_image_dataset_open(images, labels, &ds) != TF_OK)
        return 0;
    int64_t hw = (int64_t)tf_image_dataset_height(ds) * tf_image_dataset_width(ds);
    if (hw > 0 && hw <= 4096) {
        float px[2 * 4096];
        int32_t lab[2];
        tf_image_aug_params p = tf_image_aug_default_params();
        tf_image_dataset_train_batch(ds, &p, 5, 3, 2, px, lab);
        tf_image_dataset_eval_batch(ds, &p, 0, 1, px, lab);
    }
    tf_image_dataset_free(ds);
    return 0;
}
