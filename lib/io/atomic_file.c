/*
 * atomic_file.c -- replacing a file so that a crash at any moment leaves
 * either the old file or the new one: write a temporary file in the same
 * directory, fsync it, rename it over the target, fsync the directory.
 *
 * Around that:
 * - a symlink is written through: its final target is replaced (in the
 *   target's directory, so that the rename stays atomic) and the link is
 *   kept, as an editor saving through a link would;
 * - an existing target that is not a regular file (a device, a FIFO, a
 *   directory) is refused, never replaced;
 * - temporary files of the same target that a killed process left behind
 *   (target.tmp.XXXXXX) are removed.  A writer holds an exclusive flock on
 *   its temporary file while it writes, and only files nobody holds are
 *   removed, so a concurrent save of the same target is never disturbed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

#define TMP_SUFFIX ".tmp."
#define TMP_RANDOM 6 /* mkstemp's XXXXXX */
#define MAX_LINKS 40 /* as the kernel's ELOOP limit */

/* path with a symlink chain followed to its end (the end need not exist):
 * a new string, or NULL with errno set (ELOOP for a cycle). */
static char *final_target(const char *path)
{
    char *cur = strdup(path);
    for (int hops = 0; cur; hops++) {
        struct stat sb;
        if (lstat(cur, &sb) != 0 || !S_ISLNK(sb.st_mode))
            return cur; /* absent or not a link: the end of the chain */
        if (hops == MAX_LINKS) {
            free(cur);
            errno = ELOOP;
            return NULL;
        }
        char link[PATH_MAX];
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0) {
            int e = errno;
            free(cur);
            errno = e;
            return NULL;
        }
        link[n] = '\0';
        char *next;
        if (link[0] == '/') {
            next = strdup(link);
        } else { /* relative to the link's own directory */
            char *dir = directory_of(cur);
            next = dir ? malloc(strlen(dir) + 1 + strlen(link) + 1) : NULL;
            if (next)
                strcat(strcat(strcpy(next, dir), "/"), link);
            free(dir);
        }
        free(cur);
        cur = next;
    }
    errno = ENOMEM;
    return NULL;
}

static int is_tmp_name(const char *name, const char *base, size_t base_len)
{
    const size_t suffix = sizeof TMP_SUFFIX - 1;
    return strncmp(name, base, base_len) == 0 &&
           strncmp(name + base_len, TMP_SUFFIX, suffix) == 0 &&
           strlen(name + base_len + suffix) == TMP_RANDOM;
}

/* Removes target.tmp.XXXXXX files in target's directory that no writer
 * holds.  Best effort: what cannot be removed stays, and is no error. */
static void remove_stale_temps(const char *target)
{
    char *dir = directory_of(target);
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    const size_t base_len = strlen(base);
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        free(dir);
        return;
    }
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_tmp_name(e->d_name, base, base_len))
            continue;
        int fd = openat(dfd, e->d_name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat sb;
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0)
            unlinkat(dfd, e->d_name, 0);
        close(fd); /* releases the lock */
    }
    closedir(d);
    free(dir);
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
    char *target = final_target(path);
    if (!target)
        return tfi_fail(eb, errno == ENOMEM ? TF_ERR_NOMEM : TF_ERR_IO,
                        "%s: cannot follow the symlink: %s", path, strerror(errno));
    struct stat sb;
    if (stat(target, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        tf_status st = tfi_fail(eb, TF_ERR_IO, "%s%s%s: is not a regular file: refusing to "
                                "replace it", path, strcmp(path, target) ? " -> " : "",
                                strcmp(path, target) ? target : "");
        free(target);
        return st;
    }
    remove_stale_temps(target);

    size_t target_len = strlen(target);
    char *tmp = malloc(target_len + sizeof TMP_SUFFIX + TMP_RANDOM);
    if (!tmp) {
        free(target);
        return tfi_fail(eb, TF_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, target, target_len);
    memcpy(tmp + target_len, TMP_SUFFIX "XXXXXX", sizeof TMP_SUFFIX + TMP_RANDOM);

    tf_status st = TF_OK;
    const char *what = NULL;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = tfi_fail(eb, TF_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp,
                      strerror(errno));
        goto done;
    }
    FILE *fp = NULL;
    /* the lock tells remove_stale_temps of other saves that this one is live */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || set_final_mode(fd, target) != 0 ||
        !(fp = fdopen(fd, "wb"))) {
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
    if (rename(tmp, target) != 0) {
        int e = errno;
        unlink(tmp);
        st = tfi_fail(eb, TF_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp,
                      strerror(e));
        goto done;
    }
    if (fsync_directory(target) != 0)
        st = tfi_fail(eb, TF_ERR_IO, "%s: written, but fsync of its directory failed: %s",
                      path, strerror(errno));
done:
    free(tmp);
    free(target);
    return st;
}
