/*
 * file.h -- how the library's formats touch the file system (internal):
 * every reader opens its file through tfi_fopen_regular, every writer
 * replaces its file atomically through tfi_atomic_write.
 */
#ifndef TF_IO_FILE_H
#define TF_IO_FILE_H

#include <stdint.h>
#include <stdio.h>

#include "internal.h"

/* Opens path for reading ("rb") if it is a regular file, without blocking
 * on a FIFO or device; *size is its size in bytes.  TF_ERR_IO naming path
 * and the reason ("is a FIFO, not a regular file") otherwise. */
tf_status tfi_fopen_regular(const char *path, FILE **fp, int64_t *size, tfi_errbuf *eb);

/* Writes the bytes of a file: 0, or -1 with errno set. */
typedef int (*tfi_write_fn)(FILE *fp, void *ctx);

/* Replaces path atomically: write(fp, ctx) fills a temporary file
 * path.tmp.XXXXXX in path's directory, which is flushed and fsync'ed,
 * given the mode of the file it replaces (0644 for a new one), renamed over
 * path, and the directory fsync'ed.  A symlink at path is written through
 * (its final target is replaced, the link kept); an existing path that is
 * not a regular file is refused; stale path.tmp.XXXXXX files that no live
 * writer holds are removed first.  TF_ERR_IO naming path, the step and
 * the system's reason if anything fails; then the temporary file is
 * removed and a file already at path is untouched. */
tf_status tfi_atomic_write(const char *path, tfi_write_fn write, void *ctx, tfi_errbuf *eb);

#endif /* TF_IO_FILE_H */
