/*
 * file.h -- how the library's formats touch the file system (internal):
 * every writer replaces its file atomically through tfi_atomic_write.
 */
#ifndef TF_IO_FILE_H
#define TF_IO_FILE_H

#include <stdio.h>

#include "internal.h"

/* Writes the bytes of a file: 0, or -1 with errno set. */
typedef int (*tfi_write_fn)(FILE *fp, void *ctx);

/* Replaces path atomically: write(fp, ctx) fills a temporary file
 * path.tmp.XXXXXX in path's directory, which is flushed and fsync'ed,
 * given the mode of the file it replaces (0644 for a new one), renamed over
 * path, and the directory fsync'ed.  TF_ERR_IO naming path, the step and
 * the system's reason if anything fails; then the temporary file is
 * removed and a file already at path is untouched. */
tf_status tfi_atomic_write(const char *path, tfi_write_fn write, void *ctx, tfi_errbuf *eb);

#endif /* TF_IO_FILE_H */
