/*
 * dataset.c -- token streams for training: raw bytes, nanoGPT .bin (bare
 * little-endian uint16) and llm.c shards (GPT-2's uint16 and Llama 3's
 * uint32 versions), from one file or a set of files, in a training and a
 * validation split.
 *
 * Sources and pieces: a dataset is a list of sources (files, or tokens the
 * caller had in memory), and each split is a list of pieces, runs of tokens
 * of one source.  Given validation files, the training split is the
 * training files whole and the validation split the validation files;
 * otherwise the last val_fraction of the training tokens (in file order) is
 * the validation split, as it always was for a single file.
 *
 * Storage and streaming: ids are kept as uint16 when vocab_size <= 65536
 * (every valid id fits), else as int32.  Opening reads every file's header
 * and checks its size; a source's ids are read whole, through a fixed-size
 * chunk buffer and validated while they are converted, when a batch first
 * needs them.  At most max_resident sources are held at once (the least
 * recently used goes first), so memory is bounded by the largest files
 * whatever the number of shards.  A dataset of at most max_resident files
 * reads them all when it is opened, so that their errors show there.
 *
 * Sampling: batch `index` of a seed's stream takes its B segments of T+1
 * tokens from one piece.  The pieces are laid end to end in an order
 * shuffled per epoch, each as wide as its number of segment starts (its
 * length - T); an epoch is ceil(starts / (B*T)) batches, and batch r of it
 * comes from the piece that covers offset r*B*T.  So consecutive indices
 * stay in one file (one file is read at a time), files are visited in
 * proportion to their size, and every random draw is seeded from (seed,
 * index): a batch is a pure function of its arguments, and a resumed run
 * sees exactly the batches it would have seen.  With one piece this is B
 * uniform starts in the split, the stream of earlier versions.
 *
 * Sequential batches: segment s of a piece covers its tokens [s*T, s*T + T]
 * (stride T, so consecutive segments share one token and every token except
 * the first is a target exactly once); a piece has (length - 1) / T
 * segments, the split's segments are the pieces' in order, and batch i
 * holds segments [i*B, (i+1)*B).
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
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

/* llm.c's token shards (dev/data/data_common.py): a header of 256 int32
 * (magic, version, token count, zeros), then the ids. */
#define LLMC_MAGIC_GPT2 20240520   /* version 1: uint16 ids */
#define LLMC_MAGIC_LLAMA3 20240801 /* version 7: uint32 ids */
#define LLMC_HEADER_INTS 256
#define LLMC_HEADER_BYTES (LLMC_HEADER_INTS * 4)
#define CHUNK_BYTES ((size_t)1 << 20) /* a multiple of 4 */

/* ids are int32: a larger vocabulary could not be represented. */
#define MAX_VOCAB ((int64_t)INT32_MAX + 1)

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

/* ---- parameters and names ------------------------------------------------- */

static tf_dataset_params dataset_defaults(void)
{
    tf_dataset_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.format = TF_DATA_AUTO;
    p.vocab_size = 0; /* no default: the model's vocabulary must be given */
    p.val_fraction = 0.0;
    p.max_resident = 2;
    return p;
}

TF_API void tf_dataset_params_init(tf_dataset_params *p, size_t size)
{
    tf_dataset_params d = dataset_defaults();
    tfi_params_init(p, size, &d, sizeof d);
}

/* The caller's params over the defaults: fields beyond its struct_size (an
 * older caller) keep their defaults. */
static tf_status params_in(const char *fn, const tf_dataset_params *src, tf_dataset_params *dst)
{
    *dst = dataset_defaults();
    if (!src)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: params is NULL", fn);
    return tfi_params_in(dst, sizeof *dst, src, TFI_PARAMS_MIN(tf_dataset_params, max_resident),
                         fn, "tf_dataset_params", NULL);
}

TF_API const char *tf_data_format_name(tf_data_format format)
{
    switch (format) {
    case TF_DATA_AUTO: return "auto";
    case TF_DATA_BYTES: return "bytes";
    case TF_DATA_U16: return "u16";
    case TF_DATA_LLMC: return "llmc";
    }
    return NULL;
}

static tf_status check_common(const char *fn, tf_data_format format, int64_t vocab_size,
                              double val_fraction)
{
    if (!tf_data_format_name(format))
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: unknown format %d", fn, (int)format);
    if (vocab_size < 1 || vocab_size > MAX_VOCAB)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: vocab_size %lld is outside [1, %lld]", fn,
                        (long long)vocab_size, (long long)MAX_VOCAB);
    if (!(val_fraction >= 0.0 && val_fraction < 1.0)) /* also refuses NaN */
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: val_fraction %g is outside [0, 1)", fn,
                        val_fraction);
    return TF_OK;
}

/* ---- the handle ------------------------------------------------------------- */

static tf_dataset *dataset_alloc(const char *fn, int64_t nsrc, int64_t vocab_size,
                                 int max_resident)
{
    tf_dataset *ds = calloc(1, sizeof *ds);
    source *src = calloc((size_t)nsrc, sizeof *src);
    if (!ds || !src || pthread_mutex_init(&ds->lock, NULL) != 0) {
        free(ds);
        free(src);
        tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    ds->src = src;
    ds->nsrc = nsrc;
    ds->vocab_size = vocab_size;
    ds->wide = vocab_size > 65536;
    ds->max_resident = max_resident;
    return ds;
}

TF_API void tf_dataset_free(tf_dataset *ds)
{
    if (!ds)
        return;
    for (int64_t i = 0; i < ds->nsrc; i++) {
        free(ds->src[i].path);
        free(ds->src[i].ids);
    }
    for (int k = 0; k < 2; k++) {
        free(ds->split[k].pieces);
        free(ds->split[k].order);
    }
    free(ds->src);
    pthread_mutex_destroy(&ds->lock);
    free(ds);
}

TF_API const char *tf_dataset_errmsg(const tf_dataset *ds)
{
    return ds ? ds->err.msg : "the dataset is NULL";
}

/* Allocates the (uninitialised) id array of a source. */
static tf_status ids_alloc(const tf_dataset *ds, const source *s, void **out, tfi_errbuf *eb)
{
    size_t idsize = ds->wide ? sizeof(int32_t) : sizeof(uint16_t);
    size_t bytes = (uint64_t)s->count > SIZE_MAX / idsize ? 0 : (size_t)s->count * idsize;
    *out = bytes ? malloc(bytes) : NULL;
    if (!*out)
        return tfi_fail(eb, TF_ERR_NOMEM, "%s: out of memory for %lld tokens (%lld bytes)",
                        s->path ? s->path : "tokens", (long long)s->count,
                        (long long)s->count * (long long)idsize);
    return TF_OK;
}

/* ---- the splits ---------------------------------------------------------- */

static tf_status split_add(split_set *sp, int64_t src, int64_t begin, int64_t count)
{
    if (count <= 0)
        return TF_OK;
    piece *p = realloc(sp->pieces, (size_t)(sp->npieces + 1) * sizeof *p);
    if (!p)
        return TF_ERR_NOMEM;
    sp->pieces = p;
    p[sp->npieces++] = (piece){src, begin, count};
    sp->ntok += count;
    return TF_OK;
}

/* Training files [0, n_train); validation files after them, or else the
 * tail of the training tokens. */
static tf_status build_splits(const char *fn, tf_dataset *ds, int64_t n_train, double val_fraction)
{
    split_set *train = &ds->split[TF_SPLIT_TRAIN], *val = &ds->split[TF_SPLIT_VAL];
    tf_status st = TF_OK;
    if (n_train < ds->nsrc) {
        for (int64_t i = 0; i < ds->nsrc && st == TF_OK; i++)
            st = split_add(i < n_train ? train : val, i, 0, ds->src[i].count);
    } else {
        int64_t total = 0;
        for (int64_t i = 0; i < ds->nsrc; i++)
            total += ds->src[i].count;
        int64_t n_val = (int64_t)floor((double)total * val_fraction);
        if (n_val < 0)
            n_val = 0;
        if (n_val > total - 1) /* val_fraction < 1: rounding must not empty train */
            n_val = total - 1;
        int64_t train_left = total - n_val;
        for (int64_t i = 0; i < ds->nsrc && st == TF_OK; i++) {
            int64_t c = ds->src[i].count;
            int64_t head = c < train_left ? c : train_left;
            train_left -= head;
            st = split_add(train, i, 0, head);
            if (st == TF_OK)
                st = split_add(val, i, head, c - head);
        }
    }
    for (int k = 0; k < 2 && st == TF_OK; k++) {
        split_set *sp = &ds->split[k];
        if (sp->npieces && !(sp->order = malloc((size_t)sp->npieces * sizeof *sp->order)))
            st = TF_ERR_NOMEM;
    }
    return st == TF_OK ? TF_OK : tfi_fail(NULL, st, "%s: out of memory", fn);
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
static tf_status open_regular(const char *path, FILE **out, int64_t *out_size, tfi_errbuf *eb)
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
static tf_status inspect(FILE *fp, const char *fn, const char *path, tf_data_format format,
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
static tf_status read_source(const tf_dataset *ds, FILE *fp, const source *s, void **out,
                             tfi_errbuf *eb)
{
    void *ids;
    tf_status st = ids_alloc(ds, s, &ids, eb);
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

/* Reads a source that is not resident, after checking that the file is
 * still the one inspected when the dataset was opened. */
static tf_status load_source(tf_dataset *ds, source *s)
{
    tfi_errbuf *eb = &ds->err;
    FILE *fp;
    int64_t size;
    tf_status st = open_regular(s->path, &fp, &size, eb);
    if (st != TF_OK)
        return st;
    source now = *s;
    st = inspect(fp, "tf_dataset", s->path, s->format, ds->vocab_size, size, &now, eb);
    if (st == TF_OK && (size != s->file_size || now.count != s->count || now.idsize != s->idsize))
        st = tfi_fail(eb, TF_ERR_FORMAT,
                      "%s: the file changed since the dataset was opened (%lld bytes, was %lld)",
                      s->path, (long long)size, (long long)s->file_size);
    if (st == TF_OK)
        st = read_source(ds, fp, s, &s->ids, eb);
    fclose(fp); /* read-only: a close error cannot lose data */
    if (st == TF_OK)
        ds->resident++;
    return st;
}

/* ---- opening ---------------------------------------------------------------- */

/* Sources [0, n_train) are the training files, the n_val after them the
 * validation files.  Every file is opened and inspected here; when all of
 * them fit in max_resident their ids are read too. */
static tf_status open_paths(const char *fn, const char *const *train, size_t n_train,
                            const char *const *val, size_t n_val, const tf_dataset_params *p,
                            tf_dataset **out)
{
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!train || n_train == 0)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: no training files", fn);
    if (n_val > 0 && !val)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: val_paths is NULL", fn);
    if (n_train > (size_t)INT32_MAX || n_val > (size_t)INT32_MAX)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: too many files", fn);
    for (size_t i = 0; i < n_train + n_val; i++)
        if (!(i < n_train ? train[i] : val[i - n_train]))
            return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: %s path %zu is NULL", fn,
                            i < n_train ? "training" : "validation",
                            i < n_train ? i : i - n_train);
    tf_status st = check_common(fn, p->format, p->vocab_size, p->val_fraction);
    if (st != TF_OK)
        return st;
    if (n_val > 0 && p->val_fraction != 0.0)
        return tfi_fail(NULL, TF_ERR_ARGUMENT,
                        "%s: val_fraction is %g but validation files are given: one or the "
                        "other", fn, p->val_fraction);
    if (p->max_resident < 1)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: max_resident is %d, must be >= 1", fn,
                        p->max_resident);

    const int64_t nsrc = (int64_t)(n_train + n_val);
    tf_dataset *ds = dataset_alloc(fn, nsrc, p->vocab_size, p->max_resident);
    if (!ds)
        return TF_ERR_NOMEM;
    const int eager = nsrc <= p->max_resident;
    for (int64_t i = 0; i < nsrc && st == TF_OK; i++) {
        const char *path = i < (int64_t)n_train ? train[i] : val[i - (int64_t)n_train];
        source *s = &ds->src[i];
        if (!(s->path = strdup(path))) {
            st = tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", fn);
            break;
        }
        FILE *fp;
        int64_t size;
        st = open_regular(path, &fp, &size, NULL);
        if (st != TF_OK)
            break;
        st = inspect(fp, fn, path, p->format, p->vocab_size, size, s, NULL);
        if (st == TF_OK && eager) {
            st = read_source(ds, fp, s, &s->ids, NULL);
            ds->resident += st == TF_OK;
        }
        fclose(fp); /* read-only: a close error cannot lose data */
    }
    if (st == TF_OK)
        st = build_splits(fn, ds, (int64_t)n_train, p->val_fraction);
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
    tf_dataset_params p = dataset_defaults();
    p.format = format;
    p.vocab_size = vocab_size;
    p.val_fraction = val_fraction;
    return open_paths(fn, &path, 1, NULL, 0, &p, out);
}

TF_API tf_status tf_dataset_open_files(const char *const *train_paths, size_t num_train,
                                       const char *const *val_paths, size_t num_val,
                                       const tf_dataset_params *params, tf_dataset **out)
{
    static const char fn[] = "tf_dataset_open_files";
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    tf_dataset_params p;
    tf_status st = params_in(fn, params, &p);
    if (st != TF_OK)
        return st;
    return open_paths(fn, train_paths, num_train, val_paths, num_val, &p, out);
}

/* ---- sets of files by pattern ------------------------------------------------ */

typedef struct path_list {
    char **v;
    size_t n;
} path_list;

static void path_list_free(path_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int path_add(path_list *l, const char *dir, const char *name)
{
    size_t len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return -1;
    l->v = v;
    if (!(v[l->n] = malloc(len)))
        return -1;
    if (dir)
        snprintf(v[l->n], len, "%s/%s", dir, name);
    else
        snprintf(v[l->n], len, "%s", name);
    l->n++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files that spec names for a split, sorted by name: a directory's
 * llm.c-style shards (*_train_*.bin or *_val_*.bin), the files a glob(3)
 * pattern matches, or else spec itself. */
static tf_status expand_spec(const char *fn, const char *spec, tf_split split, path_list *out)
{
    struct stat sb;
    if (stat(spec, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        const char *pattern = split == TF_SPLIT_VAL ? "*_val_*.bin" : "*_train_*.bin";
        DIR *d = opendir(spec);
        if (!d)
            return tfi_fail(NULL, TF_ERR_IO, "%s: %s", spec, strerror(errno));
        int oom = 0;
        for (struct dirent *e; !oom && (e = readdir(d)) != NULL;)
            if (fnmatch(pattern, e->d_name, FNM_PERIOD) == 0)
                oom = path_add(out, spec, e->d_name) != 0;
        closedir(d);
        if (oom)
            return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", fn);
        if (out->n == 0)
            return tfi_fail(NULL, TF_ERR_NOT_FOUND, "%s: no %s shards (%s) in this directory",
                            spec, split == TF_SPLIT_VAL ? "validation" : "training", pattern);
        qsort(out->v, out->n, sizeof *out->v, by_name);
        return TF_OK;
    }
    if (!strpbrk(spec, "*?[") || stat(spec, &sb) == 0)
        return path_add(out, NULL, spec) == 0 ? TF_OK
                                                : tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory",
                                                           fn);
    glob_t g;
    int rc = glob(spec, 0, NULL, &g);
    if (rc == GLOB_NOMATCH)
        return tfi_fail(NULL, TF_ERR_NOT_FOUND, "%s: no file matches this pattern", spec);
    if (rc != 0) {
        if (rc != GLOB_NOSPACE)
            globfree(&g);
        return tfi_fail(NULL, rc == GLOB_NOSPACE ? TF_ERR_NOMEM : TF_ERR_IO,
                        "%s: %s", spec, rc == GLOB_NOSPACE ? "out of memory" : "cannot read");
    }
    int oom = 0;
    for (size_t i = 0; i < g.gl_pathc && !oom; i++) /* glob sorts */
        oom = path_add(out, NULL, g.gl_pathv[i]) != 0;
    globfree(&g);
    return oom ? tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", fn) : TF_OK;
}

TF_API tf_status tf_dataset_open_glob(const char *train, const char *val,
                                      const tf_dataset_params *params, tf_dataset **out)
{
    static const char fn[] = "tf_dataset_open_glob";
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!train)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: train is NULL", fn);
    tf_dataset_params p;
    tf_status st = params_in(fn, params, &p);
    if (st != TF_OK)
        return st;
    path_list tl = {NULL, 0}, vl = {NULL, 0};
    st = expand_spec(fn, train, TF_SPLIT_TRAIN, &tl);
    if (st == TF_OK && val)
        st = expand_spec(fn, val, TF_SPLIT_VAL, &vl);
    if (st == TF_OK)
        st = open_paths(fn, (const char *const *)tl.v, tl.n, (const char *const *)vl.v, vl.n,
                        &p, out);
    path_list_free(&tl);
    path_list_free(&vl);
    return st;
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
    tf_status st = check_common(fn, TF_DATA_AUTO, vocab_size, val_fraction);
    if (st != TF_OK)
        return st;
    for (int64_t i = 0; i < count; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab_size)
            return tfi_fail(NULL, TF_ERR_RANGE,
                            "%s: token id %ld at index %lld is outside [0, vocab_size %lld)", fn,
                            (long)tokens[i], (long long)i, (long long)vocab_size);
    tf_dataset *ds = dataset_alloc(fn, 1, vocab_size, 1);
    if (!ds)
        return TF_ERR_NOMEM;
    source *s = &ds->src[0];
    s->count = count;
    s->idsize = 4;
    s->format = TF_DATA_AUTO; /* not a file */
    st = ids_alloc(ds, s, &s->ids, NULL);
    if (st == TF_OK) {
        if (ds->wide) {
            memcpy(s->ids, tokens, (size_t)count * sizeof *tokens);
        } else {
            uint16_t *u16 = s->ids;
            for (int64_t i = 0; i < count; i++)
                u16[i] = (uint16_t)tokens[i];
        }
        st = build_splits(fn, ds, 1, val_fraction);
    }
    if (st != TF_OK) {
        tf_dataset_free(ds);
        return st;
    }
    *out = ds;
    return TF_OK;
}

/* ---- what was opened ------------------------------------------------------- */

static const split_set *split_of(const tf_dataset *ds, tf_split split)
{
    return split == TF_SPLIT_TRAIN || split == TF_SPLIT_VAL ? &ds->split[split] : NULL;
}

TF_API int64_t tf_dataset_num_tokens(const tf_dataset *ds, tf_split split)
{
    const split_set *sp = ds ? split_of(ds, split) : NULL;
    return sp ? sp->ntok : 0;
}

TF_API int64_t tf_dataset_num_sources(const tf_dataset *ds, tf_split split)
{
    const split_set *sp = ds ? split_of(ds, split) : NULL;
    return sp ? sp->npieces : 0;
}

TF_API tf_status tf_dataset_source(const tf_dataset *ds, tf_split split, int64_t i,
                                   tf_data_source *out)
{
    static const char fn[] = "tf_dataset_source";
    if (!ds)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: the dataset is NULL", fn);
    tfi_errbuf *eb = (tfi_errbuf *)&ds->err;
    if (!out)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    const split_set *sp = split_of(ds, split);
    if (!sp)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: unknown split %d", fn, (int)split);
    if (i < 0 || i >= sp->npieces)
        return tfi_fail(eb, TF_ERR_RANGE, "%s: source %lld is out of range: the split has %lld",
                        fn, (long long)i, (long long)sp->npieces);
    const piece *pc = &sp->pieces[i];
    const source *s = &ds->src[pc->src];
    tf_data_source full;
    memset(&full, 0, sizeof full);
    full.path = s->path;
    full.format = s->format;
    full.version = s->version;
    full.token_bytes = s->idsize;
    full.file_tokens = s->count;
    full.num_tokens = pc->count;
    return tfi_params_out(out, &full, sizeof full, TFI_PARAMS_MIN(tf_data_source, path), fn,
                          "tf_data_source", eb);
}

/* ---- resident sources ------------------------------------------------------ */

/* Drops least recently used file sources until at most keep are resident,
 * sparing those that the current call (stamp) uses. */
static void evict_to(tf_dataset *ds, int keep, uint64_t spare)
{
    while (ds->resident > keep) {
        source *lru = NULL;
        for (int64_t i = 0; i < ds->nsrc; i++) {
            source *s = &ds->src[i];
            if (s->path && s->ids && s->last_use != spare && (!lru || s->last_use < lru->last_use))
                lru = s;
        }
        if (!lru)
            return;
        free(lru->ids);
        lru->ids = NULL;
        ds->resident--;
    }
}

/* Makes source i's ids resident for the current call (stamp). */
static tf_status acquire(tf_dataset *ds, int64_t i, uint64_t stamp)
{
    source *s = &ds->src[i];
    s->last_use = stamp;
    if (s->ids)
        return TF_OK;
    evict_to(ds, ds->max_resident - 1, stamp);
    return load_source(ds, s);
}

/* Copies tokens [pos, pos + T] of a resident source as one row of tokens
 * and targets. */
static void copy_segment(const tf_dataset *ds, const source *s, int64_t pos, int T, int32_t *tok,
                         int32_t *tgt)
{
    if (!ds->wide) {
        const uint16_t *p = (const uint16_t *)s->ids + pos;
        for (int t = 0; t < T; t++) {
            tok[t] = p[t];
            tgt[t] = p[t + 1];
        }
    } else {
        const int32_t *p = (const int32_t *)s->ids + pos;
        memcpy(tok, p, (size_t)T * sizeof *tok);
        memcpy(tgt, p + 1, (size_t)T * sizeof *tgt);
    }
}

/* ---- batches ------------------------------------------------------------- */

static const char *split_name(tf_split split)
{
    return split == TF_SPLIT_VAL ? "validation" : "training";
}

/* Checks the arguments shared by sample and batch and finds the split. */
static tf_status check_batch_args(const tf_dataset *ds, const char *fn, tf_split split, int B,
                                  int T, const int32_t *tokens, const int32_t *targets,
                                  const split_set **sp)
{
    if (!ds)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: the dataset is NULL", fn);
    tfi_errbuf *eb = (tfi_errbuf *)&ds->err;
    if (!(*sp = split_of(ds, split)))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: unknown split %d", fn, (int)split);
    if (B < 1 || T < 1)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: B = %d and T = %d must both be >= 1", fn, B,
                        T);
    if (!tokens || !targets)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: %s is NULL", fn,
                        !tokens ? "tokens" : "targets");
    return TF_OK;
}

/* The error for a split without a single segment of T+1 tokens. */
static tf_status too_short(tf_dataset *ds, const char *fn, tf_split split, const split_set *sp,
                           int T)
{
    if (sp->npieces <= 1)
        return tfi_fail(&ds->err, TF_ERR_RANGE,
                        "%s: %s split has %lld tokens, shorter than one segment of T+1 = %lld",
                        fn, split_name(split), (long long)sp->ntok, (long long)T + 1);
    int64_t longest = 0;
    for (int64_t k = 0; k < sp->npieces; k++)
        longest = sp->pieces[k].count > longest ? sp->pieces[k].count : longest;
    return tfi_fail(&ds->err, TF_ERR_RANGE,
                    "%s: no file of the %s split holds one segment of T+1 = %lld tokens (the "
                    "longest has %lld)", fn, split_name(split), (long long)T + 1,
                    (long long)longest);
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

/* Segment starts of a piece for segments of T+1 tokens. */
static uint64_t piece_starts(const piece *pc, int T)
{
    return pc->count > (int64_t)T ? (uint64_t)(pc->count - T) : 0;
}

/* The piece that sampling's batch `index` draws from (see the top of the
 * file), given starts = the split's total of piece_starts() > 0. */
static const piece *sample_piece(const split_set *sp, uint64_t seed, int64_t index, int B, int T,
                                 uint64_t starts)
{
    if (sp->npieces == 1)
        return &sp->pieces[0];
    const uint64_t bt = (uint64_t)B * (uint64_t)T;
    const uint64_t per_epoch = starts / bt + (starts % bt != 0);
    const uint64_t epoch = (uint64_t)index / per_epoch, r = (uint64_t)index % per_epoch;
    int64_t *order = sp->order;
    for (int64_t k = 0; k < sp->npieces; k++)
        order[k] = k;
    tfi_rng rng; /* Fisher-Yates, seeded by (seed, epoch) */
    tfi_rng_seed(&rng, mix64(seed ^ 0x5851f42d4c957f2dULL) ^ mix64(epoch));
    for (int64_t k = sp->npieces - 1; k > 0; k--) {
        int64_t j = (int64_t)uniform_below(&rng, (uint64_t)k + 1);
        int64_t t = order[k];
        order[k] = order[j];
        order[j] = t;
    }
    const uint64_t pos = r * bt; /* < starts */
    uint64_t end = 0;
    for (int64_t k = 0; k < sp->npieces; k++) {
        end += piece_starts(&sp->pieces[order[k]], T);
        if (pos < end)
            return &sp->pieces[order[k]];
    }
    return &sp->pieces[order[sp->npieces - 1]]; /* not reached */
}

TF_API tf_status tf_dataset_sample(const tf_dataset *cds, tf_split split, uint64_t seed,
                                   int64_t index, int B, int T, int32_t *tokens,
                                   int32_t *targets)
{
    static const char fn[] = "tf_dataset_sample";
    const split_set *sp;
    tf_status st = check_batch_args(cds, fn, split, B, T, tokens, targets, &sp);
    if (st != TF_OK)
        return st;
    tf_dataset *ds = (tf_dataset *)cds;
    pthread_mutex_lock(&ds->lock);
    uint64_t starts = 0;
    for (int64_t k = 0; k < sp->npieces; k++)
        starts += piece_starts(&sp->pieces[k], T);
    if (starts == 0) {
        st = too_short(ds, fn, split, sp, T);
    } else {
        const piece *pc = sample_piece(sp, seed, index, B, T, starts);
        uint64_t stamp = ++ds->tick;
        st = acquire(ds, pc->src, stamp);
        if (st == TF_OK) {
            tfi_rng rng;
            tfi_rng_seed(&rng, mix64(seed) ^ mix64(~(uint64_t)index));
            const uint64_t n_starts = piece_starts(pc, T); /* 0 .. count - (T+1) */
            for (int b = 0; b < B; b++) {
                int64_t start = (int64_t)uniform_below(&rng, n_starts);
                copy_segment(ds, &ds->src[pc->src], pc->begin + start, T,
                             tokens + (size_t)b * (size_t)T, targets + (size_t)b * (size_t)T);
            }
        }
    }
    pthread_mutex_unlock(&ds->lock);
    return st;
}

static int64_t piece_segments(const piece *pc, int T)
{
    return (pc->count - 1) / T;
}

TF_API int64_t tf_dataset_num_batches(const tf_dataset *ds, tf_split split, int B, int T)
{
    const split_set *sp = ds ? split_of(ds, split) : NULL;
    if (!sp || B < 1 || T < 1)
        return 0;
    int64_t segs = 0;
    for (int64_t k = 0; k < sp->npieces; k++)
        segs += piece_segments(&sp->pieces[k], T);
    return segs / B;
}

TF_API tf_status tf_dataset_batch(const tf_dataset *cds, tf_split split, int64_t i, int B, int T,
                                  int32_t *tokens, int32_t *targets)
{
    static const char fn[] = "tf_dataset_batch";
    const split_set *sp;
    tf_status st = check_batch_args(cds, fn, split, B, T, tokens, targets, &sp);
    if (st != TF_OK)
        return st;
    tf_dataset *ds = (tf_dataset *)cds;
    int64_t nb = tf_dataset_num_batches(ds, split, B, T);
    pthread_mutex_lock(&ds->lock);
    if (i < 0 || i >= nb) {
        if (nb == 0 && tf_dataset_num_batches(ds, split, 1, T) == 0)
            st = too_short(ds, fn, split, sp, T);
        else
            st = tfi_fail(&ds->err, TF_ERR_RANGE,
                          "%s: batch %lld is out of range: the %s split has %lld batches of "
                          "B = %d, T = %d", fn, (long long)i, split_name(split), (long long)nb,
                          B, T);
        pthread_mutex_unlock(&ds->lock);
        return st;
    }
    /* the pieces of segments [i*B, i*B + B): all resident before any row is
     * written, so that a failed read leaves the output untouched */
    const int64_t first = i * B;
    int64_t k = 0, seg0 = 0; /* piece k holds segments [seg0, seg0 + its count) */
    while (seg0 + piece_segments(&sp->pieces[k], T) <= first)
        seg0 += piece_segments(&sp->pieces[k++], T);
    const int64_t k_first = k, seg0_first = seg0;
    uint64_t stamp = ++ds->tick;
    for (int64_t g = first; g < first + B && st == TF_OK; g++) {
        while (seg0 + piece_segments(&sp->pieces[k], T) <= g)
            seg0 += piece_segments(&sp->pieces[k++], T);
        st = acquire(ds, sp->pieces[k].src, stamp);
    }
    k = k_first;
    seg0 = seg0_first;
    for (int64_t g = first; g < first + B && st == TF_OK; g++) {
        while (seg0 + piece_segments(&sp->pieces[k], T) <= g)
            seg0 += piece_segments(&sp->pieces[k++], T);
        const piece *pc = &sp->pieces[k];
        int b = (int)(g - first);
        copy_segment(ds, &ds->src[pc->src], pc->begin + (g - seg0) * T, T,
                     tokens + (size_t)b * (size_t)T, targets + (size_t)b * (size_t)T);
    }
    evict_to(ds, ds->max_resident, UINT64_MAX);
    pthread_mutex_unlock(&ds->lock);
    return st;
}
