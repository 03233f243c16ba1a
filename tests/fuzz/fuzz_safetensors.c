/*
 * fuzz_safetensors.c -- libFuzzer target: the safetensors reader itself on
 * untrusted bytes, through both of its ways in (the whole file in memory,
 * and header-only with tensors read on demand), reading every float tensor
 * (F32, F16, BF16) as float32 and every metadata value.  The checkpoint
 * target reaches the reader only through what a model asks of it.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "io/safetensors.h"

static void read_all(const tfi_st_file *f)
{
    for (int i = 0; i < f->ntensors; i++) {
        const tfi_st_tensor *t = &f->tensors[i];
        if (tfi_st_find(f, t->name) == NULL)
            abort(); /* a listed tensor must be found by its name */
        if (!tfi_st_dtype_is_float(t->dtype) || t->numel > (1 << 20))
            continue;
        float *dst = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
        if (dst) {
            tfi_st_copy_f32(f, t, dst, NULL);
            free(dst);
        }
    }
    for (int i = 0; i < f->nmeta; i++)
        if (tfi_st_meta(f, f->meta_keys[i]) == NULL)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tfi_st_file f;
    if (tfi_st_open_memory(data, size, "input", &f, NULL) == TF_OK) {
        read_all(&f);
        tfi_st_close(&f);
    }
    const char *path = fuzz_input_file(data, size);
    if (path && tfi_st_open_header(path, &f, NULL) == TF_OK) {
        read_all(&f);
        tfi_st_close(&f);
    }
    return 0;
}
