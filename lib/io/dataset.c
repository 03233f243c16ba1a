/*
 * dataset.c -- token streams for training: raw bytes, nanoGPT .bin (bare
 * little-endian uint16) and llm.c shards, split into a training head and a
 * validation tail.
 *
 * Storage: ids are kept as uint16 when vocab_size <= 65536 (every valid id
 * fits), else as int32, so a GPT-2-sized corpus costs 2 bytes a token.
 * Reading streams the file through a fixed-size chunk buffer straight into
 * that array: memory is the token array plus one chunk, never a second full
 * copy of the file.  Every id is validated while it is converted.
 *
 * Sampling: batch `index` of a seed's stream seeds its own generator from a
 * mix of (seed, index), so a batch is a pure function of its arguments and a
 * resumed run sees exactly the batches it would have seen.
 *
 * Sequential batches: segment s of a split covers tokens [s*T, s*T + T]
 * (stride T, so consecutive segments share one token and every token except
 * the first is a target exactly once); there are (ntok - 1) / T segments,
 * and batch i holds segments [i*B, (i+1)*B).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "io/file.h"

/* The formats are little-endian and ids are copied in place from the chunk
 * buffer with memcpy, so the host must be little-endian too. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "libtokenformer supports little-endian hosts only");
#endif

#define LLMC_MAGIC 20240520
#define LLMC_HEADER_INTS 256
#define LLMC_HEADER_BYTES (LLMC_HEADER_INTS * 4)
#define CHUNK_BYTES ((size_t)1 << 20) /* a multiple of 4 */

/* ids are int32: a larger vocabulary could not be represented. */
#define MAX_VOCAB ((int64_t)INT32_MAX + 1)

struct tf_dataset {
    tfi_errbuf err;
    int64_t vocab_size;
    int64_t count;   /* all tokens */
    int64_t n_train; /* tokens [0, n_train) */
    int64_t n_val;   /* tokens [n_train, count) */
    uint16_t *u16;   /* storage when vocab_size <= 65536 ... */
    int32_t *i32;    /* ... else this */
};

/* ---- common checks ------------------------------------------------------ */

static tf_status check_vocab_fraction(const char *fn, int64_t vocab_size, double val_fraction)
{
    if (vocab_size < 1 || vocab_size > MAX_VOCAB)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: vocab_size %lld is outside [1, %lld]", fn,
                        (long long)vocab_size, (long long)MAX_VOCAB);
    if (!(val_fraction >= 0.0 && val_fraction < 1.0)) /* also refuses NaN */
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: val_fraction %g is outside [0, 1)", fn,
                        val_fraction);
    return TF_OK;
}

/* Allocates the (uninitialised) token array for count ids. */
static tf_status dataset_new(const char *fn, int64_t count, int64_t vocab_size, tf_dataset **out)
{
    tf_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", fn);
    ds->vocab_size = vocab_size;
    ds->count = count;
    size_t idsize = vocab_size <= 65536 ? sizeof(uint16_t) : sizeof(int32_t);
    size_t bytes = (uint64_t)count > SIZE_MAX / idsize ? 0 : (size_t)count * idsize;
    void *p = bytes ? malloc(bytes) : NULL;
    if (!p) {
        free(ds);
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory for %lld tokens (%lld bytes)", fn,
                        (long long)count, (long long)count * (long long)idsize);
    }
    if (idsize == sizeof(uint16_t))
        ds->u16 = p;
    else
        ds->i32 = p;
    *out = ds;
    return TF_OK;
}

static void dataset_split(tf_dataset *ds, double val_fraction)
{
    int64_t n_val = (int64_t)floor((double)ds->count * val_fraction);
    if (n_val < 0)
        n_val = 0;
    if (n_val > ds->count - 1) /* val_fraction < 1: rounding must not empty train */
        n_val = ds->count - 1;
    ds->n_val = n_val;
    ds->n_train = ds->count - n_val;
}

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
static tf_status read_exact(FILE *fp, const char *path, void *dst, size_t n, int64_t offset)
{
    size_t got = fread(dst, 1, n, fp);
    if (got == n)
        return TF_OK;
    if (ferror(fp))
        return tfi_fail(NULL, TF_ERR_IO, "%s: read error at byte offset %lld: %s", path,
                        (long long)(offset + (int64_t)got), strerror(errno));
    return tfi_fail(NULL, TF_ERR_FORMAT, "%s: file ended at byte offset %lld (changed while "
                    "being read?)", path, (long long)(offset + (int64_t)got));
}

/* Streams count ids of idsize bytes (1, 2 or 4) starting at byte offset
 * data_offset (the current position of fp) into ds, validating each. */
static tf_status read_ids(FILE *fp, const char *path, tf_dataset *ds, int idsize,
                          int64_t data_offset)
{
    unsigned char *buf = malloc(CHUNK_BYTES);
    if (!buf)
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", path);
    const int64_t per_chunk = (int64_t)(CHUNK_BYTES / (size_t)idsize);
    const int64_t vocab = ds->vocab_size;
    tf_status st = TF_OK;
    for (int64_t done = 0; done < ds->count && st == TF_OK;) {
        int64_t n = ds->count - done < per_chunk ? ds->count - done : per_chunk;
        int64_t offset = data_offset + done * idsize;
        st = read_exact(fp, path, buf, (size_t)n * (size_t)idsize, offset);
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
                st = tfi_fail(NULL, TF_ERR_RANGE,
                              "%s: token id %lu at byte offset %lld is >= vocab_size %lld", path,
                              (unsigned long)id, (long long)(offset + j * idsize),
                              (long long)vocab);
                break;
            }
            if (ds->u16)
                ds->u16[done + j] = (uint16_t)id;
            else
                ds->i32[done + j] = (int32_t)id;
        }
        done += n;
    }
    free(buf);
    return st;
}

/* Chooses the format, checks the size against it and reads the ids.  fp is
 * at offset 0; size is the file's size in bytes (> 0). */
static tf_status open_stream(FILE *fp, const char *path, tf_data_format format,
                             int64_t vocab_size, int64_t size, tf_dataset **out)
{
    static const char fn[] = "tf_dataset_open";
    unsigned char header[LLMC_HEADER_BYTES];
    size_t head = size < LLMC_HEADER_BYTES ? (size_t)size : LLMC_HEADER_BYTES;
    tf_status st = read_exact(fp, path, header, head, 0);
    if (st != TF_OK)
        return st;
    int has_magic = head >= 4 && load_le32(header) == LLMC_MAGIC;

    tf_data_format f = format;
    if (f == TF_DATA_AUTO)
        f = has_magic ? TF_DATA_LLMC : ends_with(path, ".bin") ? TF_DATA_U16 : TF_DATA_BYTES;

    int idsize;
    int64_t count, data_offset;
    switch (f) {
    case TF_DATA_BYTES:
        if (vocab_size < 256)
            return tfi_fail(NULL, TF_ERR_ARGUMENT,
                            "%s: %s is read as BYTES%s, which needs vocab_size >= 256, not %lld",
                            fn, path, format == TF_DATA_AUTO ? " (detected)" : "",
                            (long long)vocab_size);
        idsize = 1;
        count = size;
        data_offset = 0;
        break;
    case TF_DATA_U16:
        if (size % 2 != 0)
            return tfi_fail(NULL, TF_ERR_FORMAT,
                            "%s: %lld bytes is an odd size for an array of uint16 token ids",
                            path, (long long)size);
        idsize = 2;
        count = size / 2;
        data_offset = 0;
        break;
    case TF_DATA_LLMC: {
        if (size < LLMC_HEADER_BYTES)
            return tfi_fail(NULL, TF_ERR_FORMAT,
                            "%s: truncated llm.c header: the file has %lld bytes, the header "
                            "alone needs %d", path, (long long)size, LLMC_HEADER_BYTES);
        uint32_t magic = load_le32(header);
        if (magic != LLMC_MAGIC)
            return tfi_fail(NULL, TF_ERR_FORMAT,
                            "%s: not an llm.c shard: magic %lu, expected %d", path,
                            (unsigned long)magic, LLMC_MAGIC);
        int32_t version = (int32_t)load_le32(header + 4);
        if (version == 1)
            idsize = 2;
        else if (version == 7)
            idsize = 4;
        else
            return tfi_fail(NULL, TF_ERR_FORMAT,
                            "%s: unsupported llm.c shard version %ld (1: uint16 ids, "
                            "7: uint32 ids)", path, (long)version);
        int32_t ntok = (int32_t)load_le32(header + 8);
        if (ntok < 0)
            return tfi_fail(NULL, TF_ERR_FORMAT, "%s: negative token count %ld in llm.c header",
                            path, (long)ntok);
        count = ntok;
        data_offset = LLMC_HEADER_BYTES;
        int64_t expected = LLMC_HEADER_BYTES + count * idsize;
        if (size != expected)
            return tfi_fail(NULL, TF_ERR_FORMAT,
                            "%s: size mismatch: the llm.c header says %lld tokens of %d bytes, "
                            "so expected %lld bytes, actual %lld", path, (long long)count,
                            idsize, (long long)expected, (long long)size);
        if (count == 0)
            return tfi_fail(NULL, TF_ERR_FORMAT, "%s: empty: the llm.c shard holds no tokens",
                            path);
        break;
    }
    default:
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: unknown format %d", fn, (int)format);
    }

    tf_dataset *ds = NULL;
    st = dataset_new(fn, count, vocab_size, &ds);
    if (st != TF_OK)
        return st;
    /* The ids that are already in the header buffer are re-read from the
     * file: seek back to the data (at most one 1 KiB re-read). */
    if (fseek(fp, (long)data_offset, SEEK_SET) != 0) {
        tf_dataset_free(ds);
        return tfi_fail(NULL, TF_ERR_IO, "%s: seek failed: %s", path, strerror(errno));
    }
    st = read_ids(fp, path, ds, idsize, data_offset);
    if (st != TF_OK) {
        tf_dataset_free(ds);
        return st;
    }
    *out = ds;
    return TF_OK;
}

TF_API tf_status tf_dataset_open(const char *path, tf_data_format format, int64_t vocab_size,
                                 double val_fraction, tf_dataset **out)
{
    static const char fn[] = "tf_dataset_open";
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!path)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: path is NULL", fn);
    if (format != TF_DATA_AUTO && format != TF_DATA_BYTES && format != TF_DATA_U16 &&
        format != TF_DATA_LLMC)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: unknown format %d", fn, (int)format);
    tf_status st = check_vocab_fraction(fn, vocab_size, val_fraction);
    if (st != TF_OK)
        return st;

    FILE *fp;
    int64_t size;
    if ((st = tfi_fopen_regular(path, &fp, &size, NULL)) != TF_OK)
        return st;
    if (size == 0) {
        fclose(fp);
        return tfi_fail(NULL, TF_ERR_FORMAT, "%s: the file is empty", path);
    }
    if (size > LONG_MAX) { /* fseek takes a long (only a 32-bit concern) */
        fclose(fp);
        return tfi_fail(NULL, TF_ERR_IO, "%s: %lld bytes is too large to read here", path,
                        (long long)size);
    }

    tf_dataset *ds = NULL;
    st = open_stream(fp, path, format, vocab_size, size, &ds);
    fclose(fp); /* read-only: a close error cannot lose data */
    if (st != TF_OK)
        return st;
    dataset_split(ds, val_fraction);
    *out = ds;
    return TF_OK;
}

TF_API tf_status tf_dataset_from_tokens(const int32_t *tokens, int64_t count,
                                        int64_t vocab_size, double val_fraction,
                                        tf_dataset **out)
{
    static const char fn[] = "tf_dataset_from_tokens";
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!tokens)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: tokens is NULL", fn);
    if (count < 1)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: count is %lld, must be >= 1", fn,
                        (long long)count);
    tf_status st = check_vocab_fraction(fn, vocab_size, val_fraction);
    if (st != TF_OK)
        return st;
    for (int64_t i = 0; i < count; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab_size)
            return tfi_fail(NULL, TF_ERR_RANGE,
                            "%s: token id %ld at index %lld is outside [0, vocab_size %lld)", fn,
                            (long)tokens[i], (long long)i, (long long)vocab_size);
    tf_dataset *ds = NULL;
    st = dataset_new(fn, count, vocab_size, &ds);
    if (st != TF_OK)
        return st;
    if (ds->u16)
        for (int64_t i = 0; i < count; i++)
            ds->u16[i] = (uint16_t)tokens[i];
    else
        memcpy(ds->i32, tokens, (size_t)count * sizeof *tokens);
    dataset_split(ds, val_fraction);
    *out = ds;
    return TF_OK;
}

TF_API void tf_dataset_free(tf_dataset *ds)
{
    if (!ds)
        return;
    free(ds->u16);
    free(ds->i32);
    free(ds);
}

TF_API const char *tf_dataset_errmsg(const tf_dataset *ds)
{
    return ds ? ds->err.msg : "the dataset is NULL";
}

/* First token and length of a split; 0 if the split is not valid. */
static int split_range(const tf_dataset *ds, tf_split split, int64_t *begin, int64_t *n)
{
    if (split == TF_SPLIT_TRAIN) {
        *begin = 0;
        *n = ds->n_train;
        return 1;
    }
    if (split == TF_SPLIT_VAL) {
        *begin = ds->n_train;
        *n = ds->n_val;
        return 1;
    }
    return 0;
}

TF_API int64_t tf_dataset_num_tokens(const tf_dataset *ds, tf_split split)
{
    int64_t begin, n;
    if (!ds || !split_range(ds, split, &begin, &n))
        return 0;
    return n;
}

/* ---- batches ------------------------------------------------------------- */

static const char *split_name(tf_split split)
{
    return split == TF_SPLIT_VAL ? "validation" : "training";
}

/* Checks the arguments shared by sample and batch and finds the split. */
static tf_status check_batch_args(const tf_dataset *ds, const char *fn, tf_split split, int B,
                                  int T, const int32_t *tokens, const int32_t *targets,
                                  int64_t *begin, int64_t *n)
{
    if (!ds)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: the dataset is NULL", fn);
    tfi_errbuf *eb = (tfi_errbuf *)&ds->err;
    if (!split_range(ds, split, begin, n))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: unknown split %d", fn, (int)split);
    if (B < 1 || T < 1)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: B = %d and T = %d must both be >= 1", fn, B,
                        T);
    if (!tokens || !targets)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: %s is NULL", fn,
                        !tokens ? "tokens" : "targets");
    return TF_OK;
}

/* Copies tokens [pos, pos + T] as one row of tokens and targets. */
static void copy_segment(const tf_dataset *ds, int64_t pos, int T, int32_t *tok, int32_t *tgt)
{
    if (ds->u16) {
        const uint16_t *p = ds->u16 + pos;
        for (int t = 0; t < T; t++) {
            tok[t] = p[t];
            tgt[t] = p[t + 1];
        }
    } else {
        const int32_t *p = ds->i32 + pos;
        memcpy(tok, p, (size_t)T * sizeof *tok);
        memcpy(tgt, p + 1, (size_t)T * sizeof *tgt);
    }
}

/* The SplitMix64 finaliser: a bijection on 64-bit words. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform integer in [0, range) without modulo bias (range >= 1). */
static uint64_t uniform_below(tfi_rng *r, uint64_t range)
{
    uint64_t threshold = (0 - range) % range; /* 2^64 mod range */
    for (;;) {
        uint64_t x = tfi_rng_next(r);
        if (x >= threshold)
            return x % range;
    }
}

TF_API tf_status tf_dataset_sample(const tf_dataset *ds, tf_split split, uint64_t seed,
                                   int64_t index, int B, int T, int32_t *tokens,
                                   int32_t *targets)
{
    static const char fn[] = "tf_dataset_sample";
    int64_t begin, n;
    tf_status st = check_batch_args(ds, fn, split, B, T, tokens, targets, &begin, &n);
    if (st != TF_OK)
        return st;
    if (n < (int64_t)T + 1)
        return tfi_fail((tfi_errbuf *)&ds->err, TF_ERR_RANGE,
                        "%s: %s split has %lld tokens, shorter than one segment of T+1 = %lld",
                        fn, split_name(split), (long long)n, (long long)T + 1);
    tfi_rng rng;
    tfi_rng_seed(&rng, mix64(seed) ^ mix64(~(uint64_t)index));
    uint64_t starts = (uint64_t)(n - T); /* start offsets 0 .. n - (T+1) */
    for (int b = 0; b < B; b++) {
        int64_t start = (int64_t)uniform_below(&rng, starts);
        copy_segment(ds, begin + start, T, tokens + (size_t)b * (size_t)T,
                     targets + (size_t)b * (size_t)T);
    }
    return TF_OK;
}

TF_API int64_t tf_dataset_num_batches(const tf_dataset *ds, tf_split split, int B, int T)
{
    int64_t begin, n;
    if (!ds || !split_range(ds, split, &begin, &n) || B < 1 || T < 1 || n < 1)
        return 0;
    return (n - 1) / T / B;
}

TF_API tf_status tf_dataset_batch(const tf_dataset *ds, tf_split split, int64_t i, int B, int T,
                                  int32_t *tokens, int32_t *targets)
{
    static const char fn[] = "tf_dataset_batch";
    int64_t begin, n;
    tf_status st = check_batch_args(ds, fn, split, B, T, tokens, targets, &begin, &n);
    if (st != TF_OK)
        return st;
    int64_t nb = tf_dataset_num_batches(ds, split, B, T);
    if (i < 0 || i >= nb) {
        if (n < (int64_t)T + 1)
            return tfi_fail((tfi_errbuf *)&ds->err, TF_ERR_RANGE,
                            "%s: %s split has %lld tokens, shorter than one segment of T+1 = "
                            "%lld", fn, split_name(split), (long long)n, (long long)T + 1);
        return tfi_fail((tfi_errbuf *)&ds->err, TF_ERR_RANGE,
                        "%s: batch %lld is out of range: the %s split has %lld batches of "
                        "B = %d, T = %d", fn, (long long)i, split_name(split), (long long)nb, B,
                        T);
    }
    for (int b = 0; b < B; b++) {
        int64_t seg = i * B + b;
        copy_segment(ds, begin + seg * T, T, tokens + (size_t)b * (size_t)T,
                     targets + (size_t)b * (size_t)T);
    }
    return TF_OK;
}
