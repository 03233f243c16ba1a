/*
 * idx.h -- reading IDX files (the MNIST family's format), plain or gzip
 * (internal).  Only the container: what the arrays mean is the caller's.
 */
#ifndef TF_IO_IDX_H
#define TF_IO_IDX_H

#include "internal.h"

/* [N, H, W, C] is the most any image format here needs. */
#define TFI_IDX_MAX_DIMS 4

/* An IDX array of unsigned bytes (dtype 0x08), read whole. */
typedef struct tfi_idx {
    int ndim;
    int64_t dims[TFI_IDX_MAX_DIMS]; /* each >= 1 */
    size_t count;                   /* the product of the dims */
    uint8_t *data;                  /* count bytes, row-major; free with tfi_idx_release */
} tfi_idx;

/* Reads path, gzip-compressed or not (detected from the content).  The
 * file is untrusted: non-regular files are refused without being opened
 * for reading (a FIFO would block), the declared size is checked against
 * what the file can hold before anything is allocated, and memory grows
 * only with bytes actually read.  On failure *out is zeroed and the
 * message (naming path) is in tf_last_error(). */
tf_status tfi_idx_read(const char *path, tfi_idx *out);
void tfi_idx_release(tfi_idx *idx);

#endif /* TF_IO_IDX_H */
