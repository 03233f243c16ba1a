/*
 * dataset_internal.h -- what the dataset's files share (internal): the
 * handle's layout (sources, pieces, splits) and the calls that cross from
 * one file to another.  dataset.c owns the handle, token_files.c reads a
 * token file, dataset_paths.c expands file sets, dataset_batch.c samples.
 */
#ifndef TF_IO_DATASET_INTERNAL_H
#define TF_IO_DATASET_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "internal.h"

typedef struct source {
    char *path;            /* NULL: the caller's tokens, always resident */
    tf_data_format format; /* as read: BYTES, U16 or LLMC */
    int version;           /* the llm.c header's version, else 0 */
    int idsize;            /* bytes per id in the file: 1, 2 or 4 */
    int64_t data_offset;   /* byte offset of the first id */
    int64_t count;         /* ids in the file */
    int64_t file_size;     /* bytes, to notice a file changed since opening */
    void *ids;             /* count ids (uint16 or int32), NULL when not resident */
    uint64_t last_use;     /* the call that last needed it (LRU) */
} source;

typedef struct piece {
    int64_t src;   /* index into tf_dataset.src */
    int64_t begin; /* first token of the run in the source */
    int64_t count; /* tokens */
} piece;

typedef struct split_set {
    piece *pieces;
    int64_t npieces;
    int64_t ntok;
    int64_t *order; /* scratch of npieces entries for sampling's shuffle */
} split_set;

struct tf_dataset {
    tfi_errbuf err;
    int64_t vocab_size;
    int wide; /* ids stored as int32 (vocab_size > 65536), else uint16 */
    source *src;
    int64_t nsrc;
    split_set split[2]; /* TF_SPLIT_TRAIN, TF_SPLIT_VAL */
    int max_resident;
    int resident;  /* sources with ids loaded from a file */
    uint64_t tick; /* counts calls that read ids */
    /* Batches load and evict sources behind a const handle: the calls on
     * one dataset serialise on this lock. */
    pthread_mutex_t lock;
};

/* ---- dataset.c ---------------------------------------------------------------- */

/* The params' defaults (no vocab_size: the model's must be given). */
tf_dataset_params tfi_dataset_defaults(void);

/* The caller's params over the defaults: fields beyond its struct_size (an
 * older caller) keep their defaults. */
tf_status tfi_dataset_params_in(const char *fn, const tf_dataset_params *src,
                                tf_dataset_params *dst);

/* Opens the training files train and the validation files val as one
 * dataset (see tf_dataset_open_files). */
tf_status tfi_dataset_open_paths(const char *fn, const char *const *train, size_t n_train,
                                 const char *const *val, size_t n_val,
                                 const tf_dataset_params *p, tf_dataset **out);

/* Allocates the (uninitialised) id array of a source. */
tf_status tfi_dataset_ids_alloc(const tf_dataset *ds, const source *s, void **out,
                                tfi_errbuf *eb);

/* The split's pieces, NULL for an unknown split. */
const split_set *tfi_dataset_split(const tf_dataset *ds, tf_split split);

/* Drops least recently used file sources until at most keep are resident,
 * sparing those that the current call (stamp) uses. */
void tfi_dataset_evict_to(tf_dataset *ds, int keep, uint64_t spare);

/* Makes source i's ids resident for the current call (stamp). */
tf_status tfi_dataset_acquire(tf_dataset *ds, int64_t i, uint64_t stamp);

/* ---- token_files.c ------------------------------------------------------------ */

/* Opens path for reading if it is a non-empty regular file; *size is its
 * size in bytes. */
tf_status tfi_token_file_open(const char *path, FILE **out, int64_t *out_size, tfi_errbuf *eb);

/* Chooses the format of a file (fp at offset 0, size > 0 bytes) and checks
 * its size against it: fills s's format, version, idsize, data_offset,
 * count and file_size.  Reads at most the header. */
tf_status tfi_token_file_inspect(FILE *fp, const char *fn, const char *path, tf_data_format format,
                                 int64_t vocab_size, int64_t size, source *s, tfi_errbuf *eb);

/* Reads source s's ids from fp (anywhere) into a new array, *out, stored as
 * the dataset stores them and validated against its vocabulary. */
tf_status tfi_token_file_read(const tf_dataset *ds, FILE *fp, const source *s, void **out,
                              tfi_errbuf *eb);

#endif
