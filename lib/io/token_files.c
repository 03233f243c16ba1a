/*
 * token_files.c -- recognising and reading one token file: raw bytes,
 * nanoGPT .bin (bare little-endian uint16) and llm.c shards (GPT-2's uint16
 * and Llama 3's uint32 versions).  A file's header is read and its size
 * checked when the dataset is opened; its ids are read whole, through a
 * fixed-size chunk buffer and validated while they are converted, when a
 * batch first needs them.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "io/dataset_internal.h"
#include "io/file.h"

/* The formats are little-endian and ids are copied in place from the chunk
 * buffer with memcpy, so the host must be little-endian too. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "libtokenformer supports little-endian hosts only");
#endif

/* llm.c's token shards (dev/data/data_common.py): a header of 256 int32
 * (magic, version, token count, zeros), then the ids. */
#define LLMC_MAGIC_GPT2 20240520   /* version 1: uint16 ids */
#define LLMC_MAGIC_LLAMA3 20240801 /* version 7: uint32 ids */
#define LLMC_HEADER_INTS 256
#define LLMC_HEADER_BYTES (LLMC_HEADER_INTS * 4)
#define CHUNK_BYTES ((size_t)1 << 20) /* a multiple of 4 */

/* ---- reading files ------------------------------------------------------ */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads exactly n bytes or fails (TF_ERR_IO for a read error, TF_ERR_FORMAT
 * if the file ended early, i.e. it shrank after it was measured). */
static tf_status read_exact(FILE *fp, const char *path, void *dst, size_t n, int64_t offset,
                            tfi_errbuf *eb)
{
    size_t got = fread(dst, 1, n, fp);
    if (got == n)
        return TF_OK;
    if (ferror(fp))
        return tfi_fail(eb, TF_ERR_IO, "%s: read error at byte offset %lld: %s", path,
                        (long long)(offset + (int64_t)got), strerror(errno));
    return tfi_fail(eb, TF_ERR_FORMAT, "%s: file ended at byte offset %lld (changed while "
                    "being read?)", path, (long long)(offset + (int64_t)got));
}

/* Opens path for reading if it is a non-empty regular file; *size is its
 * size in bytes. */
tf_status tfi_token_file_open(const char *path, FILE **out, int64_t *out_size, tfi_errbuf *eb)
{
    FILE *fp;
    int64_t size;
    tf_status st = tfi_fopen_regular(path, &fp, &size, eb);
    if (st != TF_OK)
        return st;
    if (size == 0) {
        fclose(fp);
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: the file is empty", path);
    }
    if (size > LONG_MAX) { /* fseek takes a long (only a 32-bit concern) */
        fclose(fp);
        return tfi_fail(eb, TF_ERR_IO, "%s: %lld bytes is too large to read here", path,
                        (long long)size);
    }
    *out = fp;
    *out_size = size;
    return TF_OK;
}

/* llm.c's files start with a 256-int32 header whose first word is a magic
 * number written as a date (yyyymmdd) and whose second is a small version.
 * Such a file is never raw data: raw uint16 text would need a token in
 * 305..320 followed by a small one and token 0, and a text file a 0x01
 * byte, in those first 8 bytes. */
static int llmc_like(const unsigned char *h, size_t n)
{
    if (n < 8)
        return 0;
    uint32_t magic = load_le32(h), version = load_le32(h + 4);
    return magic >= 20000101 && magic <= 20991231 && version >= 1 && version <= 255;
}

/* What llm.c writes under a magic that is not a token shard. */
static const char *llmc_other_kind(uint32_t magic)
{
    switch (magic) {
    case 20240326: return "an llm.c GPT-2 model checkpoint";
    case 20240327: return "an llm.c debug state file";
    case 20240328: return "an llm.c tokenizer";
    case 20240522: return "an llm.c evaluation file (HellaSwag/MMLU)";
    case 20240527: return "an llm.c training state";
    case 20240803: return "an llm.c Llama 3 model checkpoint";
    }
    return NULL;
}

/* The llm.c header in h (LLMC_HEADER_BYTES, the file being size bytes).
 * hint ends the messages about the magic and version. */
static tf_status parse_llmc(const unsigned char *h, const char *path, int64_t size, source *s,
                            const char *hint, tfi_errbuf *eb)
{
    uint32_t magic = load_le32(h), version = load_le32(h + 4);
    const char *other = llmc_other_kind(magic);
    if (other)
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: magic %lu: this is %s, not a token shard%s",
                        path, (unsigned long)magic, other, hint);
    if (magic != LLMC_MAGIC_GPT2 && magic != LLMC_MAGIC_LLAMA3)
        return tfi_fail(eb, TF_ERR_FORMAT,
                        "%s: not an llm.c token shard this library reads: magic %lu, expected "
                        "%d (version 1, uint16 ids) or %d (version 7, uint32 ids)%s",
                        path, (unsigned long)magic, LLMC_MAGIC_GPT2, LLMC_MAGIC_LLAMA3, hint);
    uint32_t want = magic == LLMC_MAGIC_GPT2 ? 1 : 7;
    if (version != want)
        return tfi_fail(eb, TF_ERR_FORMAT,
                        "%s: unsupported llm.c shard version %lu for magic %lu (magic %d is "
                        "version 1, uint16 ids; magic %d is version 7, uint32 ids)%s",
                        path, (unsigned long)version, (unsigned long)magic, LLMC_MAGIC_GPT2,
                        LLMC_MAGIC_LLAMA3, hint);
    int32_t ntok = (int32_t)load_le32(h + 8);
    if (ntok < 0)
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: negative token count %ld in llm.c header",
                        path, (long)ntok);
    s->format = TF_DATA_LLMC;
    s->version = (int)version;
    s->idsize = version == 1 ? 2 : 4;
    s->count = ntok;
    s->data_offset = LLMC_HEADER_BYTES;
    int64_t expected = LLMC_HEADER_BYTES + s->count * s->idsize;
    if (size != expected)
        return tfi_fail(eb, TF_ERR_FORMAT,
                        "%s: size mismatch: the llm.c header says %lld tokens of %d bytes, so "
                        "expected %lld bytes, actual %lld (a truncated or appended shard?)",
                        path, (long long)s->count, s->idsize, (long long)expected,
                        (long long)size);
    if (s->count == 0)
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: empty: the llm.c shard holds no tokens", path);
    return TF_OK;
}

/* Chooses the format of a file (fp at offset 0, size > 0 bytes) and checks
 * its size against it: fills s's format, version, idsize, data_offset,
 * count and file_size.  Reads at most the header. */
tf_status tfi_token_file_inspect(FILE *fp, const char *fn, const char *path, tf_data_format format,
                                 int64_t vocab_size, int64_t size, source *s, tfi_errbuf *eb)
{
    unsigned char header[LLMC_HEADER_BYTES];
    size_t head = size < LLMC_HEADER_BYTES ? (size_t)size : LLMC_HEADER_BYTES;
    tf_status st = read_exact(fp, path, header, head, 0, eb);
    if (st != TF_OK)
        return st;
    s->file_size = size;
    s->version = 0;
    s->data_offset = 0;

    tf_data_format f = format;
    if (f == TF_DATA_AUTO) {
        uint32_t magic = head >= 4 ? load_le32(header) : 0;
        if (magic == LLMC_MAGIC_GPT2 || magic == LLMC_MAGIC_LLAMA3 || llmc_like(header, head))
            f = TF_DATA_LLMC; /* refused below if it is not a shard we read */
        else
            f = ends_with(path, ".bin") ? TF_DATA_U16 : TF_DATA_BYTES;
    }
    switch (f) {
    case TF_DATA_BYTES:
        if (vocab_size < 256)
            return tfi_fail(eb, TF_ERR_ARGUMENT,
                            "%s: %s is read as BYTES%s, which needs vocab_size >= 256, not %lld",
                            fn, path, format == TF_DATA_AUTO ? " (detected)" : "",
                            (long long)vocab_size);
        s->format = TF_DATA_BYTES;
        s->idsize = 1;
        s->count = size;
        return TF_OK;
    case TF_DATA_U16:
        if (size % 2 != 0)
            return tfi_fail(eb, TF_ERR_FORMAT,
                            "%s: %lld bytes is an odd size for an array of uint16 token ids",
                            path, (long long)size);
        s->format = TF_DATA_U16;
        s->idsize = 2;
        s->count = size / 2;
        return TF_OK;
    case TF_DATA_LLMC:
        if (size < LLMC_HEADER_BYTES)
            return tfi_fail(eb, TF_ERR_FORMAT,
                            "%s: truncated llm.c header: the file has %lld bytes, the header "
                            "alone needs %d", path, (long long)size, LLMC_HEADER_BYTES);
        return parse_llmc(header, path, size, s,
                          format == TF_DATA_AUTO ? "; a file that starts like an llm.c header is "
                                                   "not read as raw tokens unless the format is "
                                                   "given" : "", eb);
    default:
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: unknown format %d", fn, (int)format);
    }
}

/* Streams the source's ids from fp (at its data offset) into dst, stored
 * as the dataset stores them, validating each. */
static tf_status read_ids(const tf_dataset *ds, FILE *fp, const source *s, void *dst,
                          tfi_errbuf *eb)
{
    unsigned char *buf = malloc(CHUNK_BYTES);
    if (!buf)
        return tfi_fail(eb, TF_ERR_NOMEM, "%s: out of memory", s->path);
    const int idsize = s->idsize;
    const int64_t per_chunk = (int64_t)(CHUNK_BYTES / (size_t)idsize);
    const int64_t vocab = ds->vocab_size;
    uint16_t *u16 = ds->wide ? NULL : dst;
    int32_t *i32 = ds->wide ? dst : NULL;
    tf_status st = TF_OK;
    for (int64_t done = 0; done < s->count && st == TF_OK;) {
        int64_t n = s->count - done < per_chunk ? s->count - done : per_chunk;
        int64_t offset = s->data_offset + done * idsize;
        st = read_exact(fp, s->path, buf, (size_t)n * (size_t)idsize, offset, eb);
        if (st != TF_OK)
            break;
        for (int64_t j = 0; j < n; j++) {
            uint32_t id;
            if (idsize == 1) {
                id = buf[j];
            } else if (idsize == 2) {
                uint16_t v;
                memcpy(&v, buf + 2 * j, 2);
                id = v;
            } else {
                memcpy(&id, buf + 4 * j, 4);
            }
            if ((int64_t)id >= vocab) {
                st = tfi_fail(eb, TF_ERR_RANGE,
                              "%s: token id %lu at byte offset %lld is >= vocab_size %lld",
                              s->path, (unsigned long)id, (long long)(offset + j * idsize),
                              (long long)vocab);
                break;
            }
            if (u16)
                u16[done + j] = (uint16_t)id;
            else
                i32[done + j] = (int32_t)id;
        }
        done += n;
    }
    free(buf);
    return st;
}

/* Reads source s's ids from fp (anywhere) into a new array, *out. */
tf_status tfi_token_file_read(const tf_dataset *ds, FILE *fp, const source *s, void **out,
                              tfi_errbuf *eb)
{
    void *ids;
    tf_status st = tfi_dataset_ids_alloc(ds, s, &ids, eb);
    if (st != TF_OK)
        return st;
    if (fseek(fp, (long)s->data_offset, SEEK_SET) != 0)
        st = tfi_fail(eb, TF_ERR_IO, "%s: seek failed: %s", s->path, strerror(errno));
    else
        st = read_ids(ds, fp, s, ids, eb);
    if (st != TF_OK) {
        free(ids);
        return st;
    }
    *out = ids;
    return TF_OK;
}
