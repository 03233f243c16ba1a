/*
 * idx.c -- IDX files (LeCun's MNIST container, also Fashion-MNIST's), plain
 * or gzip-compressed, read through zlib.
 *
 * Layout: two zero bytes, a data type code, the number of dimensions n,
 * then n big-endian uint32 sizes, then the data in row-major order.  Only
 * type 0x08 (unsigned byte) is read: it is what image and label files use.
 *
 * zlib's gz* interface reads a plain file transparently, so one path serves
 * both.  The file is treated as hostile: the header's sizes are multiplied
 * with overflow checks, a plain file must be exactly as long as its header
 * says, a gzip file must be able to hold the declared bytes at all (deflate
 * expands at most 1032:1) before anything is allocated, and the buffer then
 * grows only as bytes actually arrive, so a lying header costs at most
 * twice what the file really holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/idx.h"

#define IDX_UBYTE 0x08
/* The most output one byte of deflate data can produce (RFC 1951: a
 * 258-byte match per ~2 bits gives 1032:1), plus room for gzip's own
 * header: a bound on what a gzip file of a given size can decompress to. */
#define DEFLATE_MAX_RATIO 1032
#define GZIP_SLACK 1024
#define FIRST_CHUNK ((size_t)1 << 20)
#define MAX_GZREAD ((size_t)1 << 30) /* gzread takes an unsigned, returns an int */

static const char *dtype_name(int code)
{
    switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    }
    return "unknown";
}

/* "[60000, 28, 28]" */
static void format_dims(char *buf, size_t cap, const int64_t *dims, int ndim)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && used < cap; i++) {
        int n = snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "[", (long long)dims[i]);
        if (n < 0)
            return;
        used += (size_t)n;
    }
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

/* Opens path for reading, refusing anything but a regular file.  The stat
 * comes before the open: opening a FIFO without a writer would block.  The
 * open is non-blocking anyway (the path may be swapped in between), and
 * the descriptor must then be the very file that was checked. */
static tf_status open_regular(const char *path, int *fd_out, int64_t *size_out)
{
    struct stat before, sb;
    if (stat(path, &before) != 0)
        return tfi_fail(NULL, TF_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(before.st_mode))
        return tfi_fail(NULL, TF_ERR_IO, "%s: %s", path,
                        S_ISDIR(before.st_mode) ? strerror(EISDIR) : "not a regular file");
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return tfi_fail(NULL, TF_ERR_IO, "%s: %s", path, strerror(errno));
    int flags = fcntl(fd, F_GETFL);
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_ino != before.st_ino ||
        sb.st_dev != before.st_dev || flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        close(fd);
        return tfi_fail(NULL, TF_ERR_IO, "%s: the file changed while it was being opened",
                        path);
    }
    *fd_out = fd;
    *size_out = (int64_t)sb.st_size;
    return TF_OK;
}

/* The failure zlib recorded on gz, as a status and message. */
static tf_status gz_failure(gzFile gz, const char *path, const char *what)
{
    int errnum = Z_OK;
    const char *msg = gzerror(gz, &errnum);
    if (errnum == Z_ERRNO)
        return tfi_fail(NULL, TF_ERR_IO, "%s: read error in %s: %s", path, what,
                        strerror(errno));
    if (errnum == Z_MEM_ERROR)
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory while decompressing", path);
    /* zlib prefixes its message with the name given to gzdopen ("<fd:3>") */
    const char *sep = msg ? strstr(msg, ": ") : NULL;
    if (msg && msg[0] == '<' && sep)
        msg = sep + 2;
    return tfi_fail(NULL, TF_ERR_FORMAT, "%s: corrupt gzip data in %s: %s", path, what,
                    msg && *msg ? msg : "unknown zlib error");
}

/* Reads exactly n bytes into dst: bytes [base, base + n) of a part of the
 * file that is `total` bytes long (`what` names it, for messages). */
static tf_status read_exact(gzFile gz, const char *path, const char *what, uint8_t *dst,
                            size_t n, size_t base, size_t total)
{
    size_t done = 0;
    while (done < n) {
        size_t want = n - done < MAX_GZREAD ? n - done : MAX_GZREAD;
        int got = gzread(gz, dst + done, (unsigned)want);
        if (got < 0)
            return gz_failure(gz, path, what);
        if (got == 0) {
            int errnum = Z_OK;
            gzerror(gz, &errnum);
            if (errnum != Z_OK && errnum != Z_BUF_ERROR) /* BUF: a gzip stream cut short */
                return gz_failure(gz, path, what);
            return tfi_fail(NULL, TF_ERR_FORMAT,
                            "%s: truncated: the %s ends after %zu of its %zu bytes", path, what,
                            base + done, total);
        }
        done += (size_t)got;
    }
    return TF_OK;
}

/* Parses the header and checks the sizes it declares; leaves out->data
 * NULL.  file_size is the size on disk, direct whether it is uncompressed. */
static tf_status read_header(gzFile gz, const char *path, int64_t file_size, int direct,
                             tfi_idx *out)
{
    uint8_t head[4];
    tf_status st = read_exact(gz, path, "IDX header", head, sizeof head, 0, sizeof head);
    if (st != TF_OK)
        return st;
    if (head[0] != 0 || head[1] != 0)
        return tfi_fail(NULL, TF_ERR_FORMAT,
                        "%s: not an IDX file: it starts with bytes %02x %02x, an IDX file with "
                        "00 00%s", path, head[0], head[1],
                        direct ? "" : " (after decompression)");
    if (head[2] != IDX_UBYTE)
        return tfi_fail(NULL, TF_ERR_FORMAT,
                        "%s: IDX data type 0x%02x (%s) is not supported: only 0x08 (unsigned "
                        "byte)", path, head[2], dtype_name(head[2]));
    int ndim = head[3];
    if (ndim < 1 || ndim > TFI_IDX_MAX_DIMS)
        return tfi_fail(NULL, TF_ERR_FORMAT,
                        "%s: the IDX header declares %d dimensions; 1 to %d are supported",
                        path, ndim, TFI_IDX_MAX_DIMS);
    uint8_t sizes[4 * TFI_IDX_MAX_DIMS];
    st = read_exact(gz, path, "IDX header", sizes, 4 * (size_t)ndim, sizeof head,
                    sizeof head + 4 * (size_t)ndim);
    if (st != TF_OK)
        return st;

    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        const uint8_t *p = sizes + 4 * i;
        uint32_t d = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (d == 0)
            return tfi_fail(NULL, TF_ERR_FORMAT,
                            "%s: IDX dimension %d is 0: the file holds no data", path, i);
        out->dims[i] = d;
        count = count > (uint64_t)INT64_MAX / d ? (uint64_t)INT64_MAX : count * d;
    }
    out->ndim = ndim;
    char dims[128];
    format_dims(dims, sizeof dims, out->dims, ndim);

    /* Every size is checked against the bytes on disk before allocating. */
    uint64_t header = 4 + 4 * (uint64_t)ndim;
    uint64_t size = (uint64_t)file_size;
    if (direct) {
        uint64_t body = size > header ? size - header : 0;
        if (count > body)
            return tfi_fail(NULL, TF_ERR_FORMAT,
                            "%s: truncated: the IDX header declares %s = %llu bytes of data, "
                            "the file holds %llu after its %llu-byte header", path, dims,
                            (unsigned long long)count, (unsigned long long)body,
                            (unsigned long long)header);
        if (count < body)
            return tfi_fail(NULL, TF_ERR_FORMAT,
                            "%s: %llu bytes after the %llu bytes of data that the IDX header "
                            "declares (%s)", path, (unsigned long long)(body - count),
                            (unsigned long long)count, dims);
    } else {
        uint64_t most = size > (UINT64_MAX - GZIP_SLACK) / DEFLATE_MAX_RATIO
                            ? UINT64_MAX
                            : size * DEFLATE_MAX_RATIO + GZIP_SLACK;
        if (count > most - header)
            return tfi_fail(NULL, TF_ERR_FORMAT,
                            "%s: the IDX header declares %s = %llu bytes of data, more than a "
                            "%llu-byte gzip file can hold", path, dims,
                            (unsigned long long)count, (unsigned long long)size);
    }
    if (count > SIZE_MAX)
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: %llu bytes of data do not fit in memory here",
                        path, (unsigned long long)count);
    out->count = (size_t)count;
    return TF_OK;
}

/* Reads the data into a buffer that grows (doubling) with the bytes that
 * actually arrive, then makes sure nothing follows it. */
static tf_status read_data(gzFile gz, const char *path, tfi_idx *out)
{
    size_t cap = 0, have = 0;
    uint8_t *buf = NULL;
    while (have < out->count) {
        size_t next = cap ? (cap > out->count / 2 ? out->count : cap * 2)
                          : (out->count < FIRST_CHUNK ? out->count : FIRST_CHUNK);
        uint8_t *grown = realloc(buf, next);
        if (!grown) {
            free(buf);
            return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory for %zu bytes", path, next);
        }
        buf = grown;
        cap = next;
        tf_status st = read_exact(gz, path, "IDX data", buf + have, cap - have, have,
                                  out->count);
        if (st != TF_OK) {
            free(buf);
            return st;
        }
        have = cap;
    }
    /* One more read: finds trailing bytes, and makes zlib check the gzip
     * trailer (CRC-32 and length) of the last member. */
    uint8_t extra;
    int got = gzread(gz, &extra, 1);
    int errnum = Z_OK;
    gzerror(gz, &errnum);
    tf_status st = TF_OK;
    if (got < 0 || errnum != Z_OK)
        st = gz_failure(gz, path, "the end of the file");
    else if (got > 0)
        st = tfi_fail(NULL, TF_ERR_FORMAT,
                      "%s: bytes follow the %zu bytes of data that the IDX header declares",
                      path, out->count);
    if (st != TF_OK) {
        free(buf);
        return st;
    }
    out->data = buf;
    return TF_OK;
}

tf_status tfi_idx_read(const char *path, tfi_idx *out)
{
    memset(out, 0, sizeof *out);
    int fd = -1;
    int64_t size = 0;
    tf_status st = open_regular(path, &fd, &size);
    if (st != TF_OK)
        return st;
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory opening the file", path);
    }
    gzbuffer(gz, 128 * 1024);
    int direct = gzdirect(gz); /* looks at the first bytes: gzip magic or not */
    tfi_idx idx;
    memset(&idx, 0, sizeof idx);
    st = read_header(gz, path, size, direct, &idx);
    if (st == TF_OK)
        st = read_data(gz, path, &idx);
    gzclose_r(gz); /* read-only: a close error cannot lose data */
    if (st != TF_OK)
        return st;
    *out = idx;
    return TF_OK;
}

void tfi_idx_release(tfi_idx *idx)
{
    if (!idx)
        return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}
