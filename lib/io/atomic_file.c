/*
 * atomic_file.c -- replacing a file so that a crash at any moment leaves
 * either the old file or the new one: write a temporary file in the same
 * directory, fsync it, rename it over the target, fsync the directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/file.h"

/* The directory holding path ("." for a bare name), newly allocated. */
static char *directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(len + 1);
    if (dir) {
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    return dir;
}

/* Makes the rename durable.  Filesystems that cannot sync a directory say
 * EINVAL (or ENOTSUP); that is not a failure of ours. */
static int fsync_directory(const char *path)
{
    char *dir = directory_of(path);
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && (e == EINVAL || e == ENOTSUP))
        rc = 0;
    errno = e;
    return rc;
}

/* mkstemp creates 0600 files; give the result the mode a file already at
 * path has, or 0644 for a new one. */
static int set_final_mode(int fd, const char *path)
{
    struct stat sb;
    mode_t mode = 0644;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
        mode = sb.st_mode & 07777;
    return fchmod(fd, mode);
}

/* The caller's bytes, then fflush, fsync and fclose.  Returns 0, or -1
 * with errno set and *what naming the step that failed; fp is always
 * closed. */
static int write_temp_file(FILE *fp, tfi_write_fn write, void *ctx, const char **what)
{
    int fail = 0;
    *what = "write";
    errno = 0;
    if (write(fp, ctx) != 0 || fflush(fp) != 0) {
        if (errno == 0)
            errno = EIO;
        fail = 1;
    }
    if (!fail && fsync(fileno(fp)) != 0) {
        *what = "fsync";
        fail = 1;
    }
    int e = errno;
    if (fclose(fp) != 0 && !fail) {
        *what = "close";
        return -1;
    }
    errno = e;
    return fail ? -1 : 0;
}

tf_status tfi_atomic_write(const char *path, tfi_write_fn write, void *ctx, tfi_errbuf *eb)
{
    static const char suffix[] = ".tmp.XXXXXX";
    size_t path_len = strlen(path);
    char *tmp = malloc(path_len + sizeof suffix);
    if (!tmp)
        return tfi_fail(eb, TF_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, path_len);
    memcpy(tmp + path_len, suffix, sizeof suffix);

    tf_status st = TF_OK;
    const char *what = NULL;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = tfi_fail(eb, TF_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp,
                      strerror(errno));
        goto done;
    }
    FILE *fp = NULL;
    if (set_final_mode(fd, path) != 0 || !(fp = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        unlink(tmp);
        st = tfi_fail(eb, TF_ERR_IO, "%s: cannot prepare temporary file %s: %s", path, tmp,
                      strerror(e));
        goto done;
    }
    if (write_temp_file(fp, write, ctx, &what) != 0) {
        int e = errno;
        unlink(tmp);
        st = tfi_fail(eb, TF_ERR_IO, "%s: %s of temporary file %s failed: %s", path, what,
                      tmp, strerror(e));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        st = tfi_fail(eb, TF_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp,
                      strerror(e));
        goto done;
    }
    if (fsync_directory(path) != 0)
        st = tfi_fail(eb, TF_ERR_IO, "%s: written, but fsync of its directory failed: %s",
                      path, strerror(errno));
done:
    free(tmp);
    return st;
}
