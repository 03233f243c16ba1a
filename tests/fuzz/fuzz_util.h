/*
 * fuzz_util.h -- what the libFuzzer targets share: the input as a file.
 * The library's readers take paths (they must refuse FIFOs and other
 * non-regular files), so each input is written to one per-process file.
 */
#ifndef TF_FUZZ_UTIL_H
#define TF_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tokenformer.h"

/* Writes data to this process's scratch file and returns its path, or NULL
 * if the file system failed (then the input is skipped). */
static inline const char *fuzz_input_file(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/tf-fuzz-%ld", dir && *dir ? dir : "/tmp", (long)getpid());
        tf_set_num_threads(1); /* deterministic and cheap: one input at a time */
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    int ok = fwrite(data, 1, size, f) == size;
    ok &= fclose(f) == 0;
    return ok ? path : NULL;
}

#endif
