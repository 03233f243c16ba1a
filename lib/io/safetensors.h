/*
 * safetensors.h -- reading and writing safetensors files (internal).
 *
 * Format: u64 little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 *    "__metadata__": {"key": "string", ...}}
 * then the raw little-endian row-major data; offsets are relative to the
 * byte after the header.
 *
 * The reader validates strictly before it hands anything out: header length
 * within the file, the header valid UTF-8 JSON (json-c) starting with '{',
 * every entry an object with exactly dtype/shape/data_offsets of the right
 * JSON types, a known dtype, non-negative shape dims whose product times
 * the dtype size equals end - begin without overflow, begin <= end, end
 * within the data area, the tensors' ranges tiling the data area exactly
 * (sorted, each starts where the previous ended, from 0 to the end of the
 * file: no gap, no overlap), no duplicate names, metadata values strings.
 * Every refusal is TF_ERR_FORMAT (or TF_ERR_IO for open/read errors) with a
 * message naming the file, and the tensor or field at fault.
 */
#ifndef TF_IO_SAFETENSORS_H
#define TF_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "internal.h"

#define TFI_ST_MAX_DIMS 8
#define TFI_ST_METADATA_KEY "__metadata__"

typedef enum tfi_st_dtype {
    TFI_ST_F32 = 0,
    TFI_ST_I32,
    TFI_ST_F64,
    TFI_ST_I64,
    TFI_ST_U16,
    TFI_ST_U8,
    TFI_ST_F16,
    TFI_ST_BF16,
    TFI_ST_I8,
    TFI_ST_I16,
    TFI_ST_U32,
    TFI_ST_U64,
    TFI_ST_BOOL
} tfi_st_dtype;

typedef struct tfi_st_tensor {
    char *name;
    tfi_st_dtype dtype;
    int ndim;
    int64_t shape[TFI_ST_MAX_DIMS];
    uint64_t begin, end; /* relative to the data area */
    int64_t numel;
} tfi_st_tensor;

typedef struct tfi_st_named {
    const char *name;
    int index;
} tfi_st_named;

typedef struct tfi_st_file {
    unsigned char *buf; /* whole file contents, or with header_only the
                           first data_start bytes (owned) */
    size_t size;        /* file size */
    int header_only;    /* opened by tfi_st_open_header: data read from fp */
    FILE *fp;           /* with header_only: the open file (owned) */
    size_t data_start;  /* 8 + header length */
    tfi_st_tensor *tensors;
    int ntensors;       /* in header order */
    char **meta_keys;
    char **meta_values;
    int nmeta;          /* in header order */
    struct tfi_st_named *tensor_index, *meta_index; /* by name, for look-ups */
    char *name;         /* path or name given at open, used in messages (owned) */
} tfi_st_file;

/* Reads and validates path into *f (zeroed first).  On error *f is left
 * empty (nothing to close) and the message is in eb / tf_last_error(). */
tf_status tfi_st_open(const char *path, tfi_st_file *f, tfi_errbuf *eb);
/* The same, from memory (copied). name is used in messages. */
tf_status tfi_st_open_memory(const void *data, size_t size, const char *name,
                             tfi_st_file *f, tfi_errbuf *eb);
/* The same, reading and validating only the header (against the file's
 * size) and keeping the file open: tensor data is then read on demand with
 * tfi_st_copy_f32, straight into its destination, so opening a large
 * checkpoint costs no copy of it in memory.  tfi_st_data must not be used
 * on such a file. */
tf_status tfi_st_open_header(const char *path, tfi_st_file *f, tfi_errbuf *eb);
void tfi_st_close(tfi_st_file *f);

const tfi_st_tensor *tfi_st_find(const tfi_st_file *f, const char *name);
/* Pointer to a tensor's bytes (unaligned in general: copy with memcpy). */
const void *tfi_st_data(const tfi_st_file *f, const tfi_st_tensor *t);
/* Metadata value or NULL. */
const char *tfi_st_meta(const tfi_st_file *f, const char *key);
const char *tfi_st_dtype_name(tfi_st_dtype d);
size_t tfi_st_dtype_size(tfi_st_dtype d);

/* The floating-point tensor (F32, F16 or BF16: see tfi_st_copy_f32)
 * `name` of exactly shape [rows, cols] ([rows] for cols == 0): *found is
 * NULL (TF_OK) if there is none; another dtype is TF_ERR_FORMAT, another
 * shape TF_ERR_SHAPE, naming file, tensor and both shapes. */
tf_status tfi_st_find_f32(const tfi_st_file *f, const char *name, int64_t rows, int64_t cols,
                          const tfi_st_tensor **found, tfi_errbuf *eb);
/* "[10, 4]" (always NUL-terminated, truncated if cap is too small). */
void tfi_st_format_shape(char *out, size_t cap, const int64_t *shape, int ndim);

/* Copies a tensor that must be F32, F16 or BF16 with exactly count
 * elements into dst as float32; TF_ERR_FORMAT naming the tensor otherwise. */
tf_status tfi_st_read_f32(const tfi_st_file *f, const char *name, float *dst,
                          size_t count, tfi_errbuf *eb);

/* ---- float32 views (safetensors_f32.c) ---- */

/* Exact widenings (every value, subnormals, infinities and NaN payloads
 * included) and float32 -> bfloat16 rounded to nearest even (NaN stays a
 * quiet NaN, overflow becomes infinity). */
float tfi_f16_to_f32(uint16_t h);
float tfi_bf16_to_f32(uint16_t b);
uint16_t tfi_f32_to_bf16(float f);
/* F32, F16 or BF16: the dtypes that load as float32. */
int tfi_st_dtype_is_float(tfi_st_dtype d);
/* t's t->numel values as float32 into dst: from memory, or read from the
 * file of a header-only open (TF_ERR_IO if that read fails).  Another
 * dtype is TF_ERR_FORMAT naming the tensor. */
tf_status tfi_st_copy_f32(const tfi_st_file *f, const tfi_st_tensor *t, float *dst,
                          tfi_errbuf *eb);

/* ---- writer ----------------------------------------------------------- */

/* Collects tensors (by reference: data must stay valid until write) and
 * metadata, then writes the file atomically: path.tmp.XXXXXX in the same
 * directory, fflush + fsync, rename over path, fsync of the directory. */
typedef struct tfi_st_writer tfi_st_writer;

tfi_st_writer *tfi_st_writer_new(void);
void tfi_st_writer_free(tfi_st_writer *w);
tf_status tfi_st_writer_add(tfi_st_writer *w, const char *name, tfi_st_dtype dtype,
                            int ndim, const int64_t *shape, const void *data);
/* add and meta copy name/key/value; they fail with TF_ERR_ARGUMENT (bad
 * dtype, ndim, negative dim, NULL data for a non-empty tensor, a duplicate
 * or reserved "__metadata__" name) or TF_ERR_NOMEM, message in
 * tf_last_error().  Setting a metadata key again replaces its value. */
tf_status tfi_st_writer_meta(tfi_st_writer *w, const char *key, const char *value);
/* TF_ERR_IO naming path and the system error if anything fails; then the
 * temporary file is removed and a file already at path is left untouched. */
tf_status tfi_st_writer_write(tfi_st_writer *w, const char *path, tfi_errbuf *eb);

#endif /* TF_IO_SAFETENSORS_H */
