/*
 * file_open.c -- opening a file to read it: regular files only.  The open
 * itself must not block, so it is O_NONBLOCK (opening a FIFO for reading
 * otherwise waits for a writer forever); once fstat says the file is
 * regular the flag is cleared again and reading is ordinary.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/file.h"

static const char *kind_of(mode_t mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a regular file";
}

tf_status tfi_fopen_regular(const char *path, FILE **fp, int64_t *size, tfi_errbuf *eb)
{
    *fp = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return tfi_fail(eb, TF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return tfi_fail(eb, TF_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return tfi_fail(eb, TF_ERR_IO, "%s: is %s, not a regular file", path,
                        kind_of(sb.st_mode));
    }
    int flags = fcntl(fd, F_GETFL);
    FILE *f = NULL;
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 || !(f = fdopen(fd, "rb"))) {
        int e = errno;
        close(fd);
        return tfi_fail(eb, TF_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    *fp = f;
    *size = (int64_t)sb.st_size;
    return TF_OK;
}
