/*
 * safetensors_read.c -- the strict safetensors reader.
 *
 * The whole file is read into memory, the JSON header is parsed by json-c
 * and then validated field by field (see safetensors.h for the list of
 * checks; safetensors_keys.c scans the raw header for repeated keys).
 * Nothing is handed out until every check passed; on failure the
 * tfi_st_file is emptied again.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/file.h"
#include "io/safetensors_parse.h"

/* Tensor data is used in place (memcpy), so the host must be little-endian
 * like the format.  Compilers that say which order they target stop here;
 * others get the runtime check in host_is_little_endian(). */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "libtokenformer supports little-endian hosts only "
               "(safetensors data is little-endian and is used in place)");
#endif

/* The same limit as the reference implementation (100 MB): a larger header
 * is corruption, and json-c takes the length as an int. */
#define ST_MAX_HEADER_BYTES ((uint64_t)100 * 1000 * 1000)

/* ---- small helpers ----------------------------------------------------- */

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

void tfi_st_format_shape(char *out, size_t cap, const int64_t *shape, int ndim)
{
    size_t used = 0;
    int n = snprintf(out, cap, "[");
    for (int i = 0; i < ndim && n >= 0; i++) {
        used += (size_t)n;
        if (used >= cap)
            return;
        n = snprintf(out + used, cap - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (n >= 0 && used + (size_t)n < cap)
        snprintf(out + used + (size_t)n, cap - used - (size_t)n, "]");
}

static uint64_t load_u64_le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- messages ------------------------------------------------------------ */

tf_status tfi_st_fail_file(tfi_st_parse *p, const char *fmt, ...)
{
    char detail[TFI_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return tfi_fail(p->eb, TF_ERR_FORMAT, "%s: %s", p->f->name, detail);
}

tf_status tfi_st_fail_tensor(tfi_st_parse *p, const char *tensor, const char *fmt, ...)
{
    char detail[TFI_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return tfi_fail(p->eb, TF_ERR_FORMAT, "%s: tensor '%s': %s", p->f->name, tensor, detail);
}

tf_status tfi_st_fail_nomem(tfi_st_parse *p)
{
    return tfi_fail(p->eb, TF_ERR_NOMEM, "%s: out of memory while reading the header",
                    p->f->name);
}

/* ---- reader: header length and JSON ------------------------------------ */

static tf_status check_header_length(tfi_st_parse *p)
{
    tfi_st_file *f = p->f;
    if (f->size < 8)
        return tfi_st_fail_file(p, "file is truncated: %zu bytes, less than the 8-byte header length",
                         f->size);
    uint64_t n = load_u64_le(f->buf);
    if (n > f->size - 8)
        return tfi_st_fail_file(p, "file is truncated or corrupt: header length %llu exceeds the "
                            "%zu bytes that follow it",
                         (unsigned long long)n, f->size - 8);
    if (n > ST_MAX_HEADER_BYTES)
        return tfi_st_fail_file(p, "header length %llu is absurdly large (limit %llu bytes)",
                         (unsigned long long)n, (unsigned long long)ST_MAX_HEADER_BYTES);
    p->header = (const char *)f->buf + 8;
    p->header_len = (size_t)n;
    p->data_size = f->size - 8 - (size_t)n;
    f->data_start = 8 + (size_t)n;
    return TF_OK;
}

/* Parses the header (which the format says must start with '{') with json-c
 * in strict mode.  Trailing bytes are allowed here and checked later. */
static tf_status parse_header_json(tfi_st_parse *p, json_object **root)
{
    if (p->header_len == 0 || p->header[0] != '{')
        return tfi_st_fail_file(p, "header is not a JSON object (it must start with '{')");
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return tfi_st_fail_nomem(p);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
    json_object *obj = json_tokener_parse_ex(tok, p->header, (int)p->header_len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t where = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (err == json_tokener_continue) {
        json_object_put(obj);
        return tfi_st_fail_file(p, "header JSON is incomplete (ends inside the object)");
    }
    if (!obj || err != json_tokener_success) {
        json_object_put(obj);
        return tfi_st_fail_file(p, "header is not valid JSON: %s at byte %zu of the header",
                         json_tokener_error_desc(err), where);
    }
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return tfi_st_fail_file(p, "header is not a JSON object");
    }
    *root = obj;
    return TF_OK;
}

/* What a file that is no safetensors file is, if it is a PyTorch
 * checkpoint (official releases ship those): torch.save writes a zip
 * archive, or before PyTorch 1.6 a pickle whose first value is its magic
 * number.  Asked only of files whose first bytes cannot start a
 * safetensors header, so a valid file is never misjudged.  `have` bytes
 * of the file are at buf. */
static const char *torch_kind(const unsigned char *buf, size_t have)
{
    static const unsigned char zip[4] = {'P', 'K', 3, 4};
    /* protocol 2, LONG1 of 10 bytes: 0x1950a86a20f9469cfc6c */
    static const unsigned char legacy[14] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                             0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    if (have >= 4 && memcmp(buf, zip, 4) == 0)
        return "a PyTorch checkpoint (a zip archive written by torch.save)";
    if (have >= sizeof legacy && memcmp(buf, legacy, sizeof legacy) == 0)
        return "a PyTorch checkpoint (the pre-1.6 format of torch.save)";
    /* PROTO 2..5 and an opcode (no opcode is 0, a short header length's
     * third byte is) */
    if (have >= 3 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5 && buf[2] != 0)
        return "a Python pickle (a PyTorch checkpoint?)";
    return NULL;
}

/* ---- look-ups by name -------------------------------------------------- */

/* Names are unique (safetensors_keys.c), so an index sorted by name lets
 * tfi_st_find and tfi_st_meta bisect: a model of many layers looks up
 * thousands of names. */
static int compare_named(const void *a, const void *b)
{
    return strcmp(((const tfi_st_named *)a)->name, ((const tfi_st_named *)b)->name);
}

static tfi_st_named *name_index(int n, const char *(*name_at)(const tfi_st_file *, int),
                                const tfi_st_file *f)
{
    tfi_st_named *index = malloc((size_t)(n ? n : 1) * sizeof *index);
    if (!index)
        return NULL;
    for (int i = 0; i < n; i++)
        index[i] = (tfi_st_named){name_at(f, i), i};
    qsort(index, (size_t)n, sizeof *index, compare_named);
    return index;
}

static const char *tensor_name_at(const tfi_st_file *f, int i)
{
    return f->tensors[i].name;
}

static const char *meta_key_at(const tfi_st_file *f, int i)
{
    return f->meta_keys[i];
}

static tf_status build_indexes(tfi_st_parse *p)
{
    tfi_st_file *f = p->f;
    f->tensor_index = name_index(f->ntensors, tensor_name_at, f);
    f->meta_index = name_index(f->nmeta, meta_key_at, f);
    return f->tensor_index && f->meta_index ? TF_OK : tfi_st_fail_nomem(p);
}

/* The position of name in the file's order, or -1. */
static int bisect(const tfi_st_named *index, int n, const char *name)
{
    tfi_st_named key = {name, 0};
    const tfi_st_named *hit = index ? bsearch(&key, index, (size_t)n, sizeof key, compare_named)
                                    : NULL;
    return hit ? hit->index : -1;
}

static tf_status parse_buffer(tfi_st_file *f, tfi_errbuf *eb)
{
    tfi_st_parse p = {.f = f, .eb = eb};
    if (!host_is_little_endian())
        return tfi_st_fail_file(&p, "big-endian hosts are not supported (safetensors data is "
                             "little-endian)");
    const size_t have = f->header_only ? f->data_start : f->size;
    const uint64_t n = have >= 8 ? load_u64_le(f->buf) : 0;
    const char *kind = torch_kind(f->buf, have);
    if (kind && (have < 9 || n > f->size - 8 || n > ST_MAX_HEADER_BYTES || f->buf[8] != '{'))
        return tfi_st_fail_file(&p, "this is %s, not safetensors: convert it with "
                                "tools/convert_checkpoint.py (installed as tf-convert)", kind);
    tf_status st = check_header_length(&p);
    if (st != TF_OK)
        return st;

    json_object *root = NULL;
    st = parse_header_json(&p, &root);
    if (st == TF_OK)
        st = tfi_st_check_raw_header(&p);
    if (st == TF_OK)
        st = tfi_st_parse_entries(&p, root);
    json_object_put(root);
    if (st == TF_OK)
        st = build_indexes(&p);
    return st;
}

/* ---- reader: API --------------------------------------------------------- */

void tfi_st_close(tfi_st_file *f)
{
    if (!f)
        return;
    if (f->tensors) {
        for (int i = 0; i < f->ntensors; i++)
            free(f->tensors[i].name);
    }
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->tensor_index);
    free(f->meta_index);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->buf);
    free(f->name);
    if (f->header_only && f->fp)
        fclose(f->fp);
    memset(f, 0, sizeof *f);
}

/* Takes f->buf (already filled) through validation; empties f on failure. */
static tf_status finish_open(tfi_st_file *f, tfi_errbuf *eb)
{
    tf_status st = parse_buffer(f, eb);
    if (st != TF_OK)
        tfi_st_close(f);
    return st;
}

static tf_status start_open(tfi_st_file *f, const char *name, size_t size, tfi_errbuf *eb)
{
    memset(f, 0, sizeof *f);
    f->name = strdup(name);
    f->buf = malloc(size ? size : 1);
    f->size = size;
    if (!f->name || !f->buf) {
        tfi_st_close(f);
        return tfi_fail(eb, TF_ERR_NOMEM, "%s: out of memory for %zu bytes", name, size);
    }
    return TF_OK;
}

tf_status tfi_st_open_memory(const void *data, size_t size, const char *name,
                             tfi_st_file *f, tfi_errbuf *eb)
{
    if (!f)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "tfi_st_open_memory: NULL file");
    memset(f, 0, sizeof *f);
    if (!data && size > 0)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "tfi_st_open_memory: NULL data");
    if (!name)
        name = "<memory>";
    tf_status st = start_open(f, name, size, eb);
    if (st != TF_OK)
        return st;
    if (size)
        memcpy(f->buf, data, size);
    return finish_open(f, eb);
}

/* What both readers start with: f emptied, path opened as a regular file
 * (*fp) whose size (*fsize) memory can address. */
static tf_status open_regular(const char *path, tfi_st_file *f, const char *fn, FILE **fp,
                              size_t *fsize, tfi_errbuf *eb)
{
    if (!f)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: NULL file", fn);
    memset(f, 0, sizeof *f);
    if (!path)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: NULL path", fn);
    int64_t size;
    tf_status st = tfi_fopen_regular(path, fp, &size, eb);
    if (st != TF_OK)
        return st;
    if ((uint64_t)size > SIZE_MAX) {
        fclose(*fp);
        return tfi_fail(eb, TF_ERR_IO, "%s: too large to read into memory", path);
    }
    *fsize = (size_t)size;
    return TF_OK;
}

tf_status tfi_st_open(const char *path, tfi_st_file *f, tfi_errbuf *eb)
{
    FILE *fp;
    size_t fsize;
    tf_status st = open_regular(path, f, "tfi_st_open", &fp, &fsize, eb);
    if (st != TF_OK)
        return st;
    st = start_open(f, path, fsize, eb);
    if (st != TF_OK) {
        fclose(fp);
        return st;
    }
    errno = 0;
    size_t got = f->size ? fread(f->buf, 1, f->size, fp) : 0;
    int e = errno;
    int read_error = ferror(fp);
    fclose(fp);
    if (got != f->size) {
        tfi_st_close(f);
        if (read_error)
            return tfi_fail(eb, TF_ERR_IO, "%s: read failed: %s", path,
                            strerror(e ? e : EIO));
        return tfi_fail(eb, TF_ERR_IO, "%s: file shrank while reading (%zu of %zu bytes)",
                        path, got, (size_t)fsize);
    }
    return finish_open(f, eb);
}

/* Reads exactly `bytes` bytes at the current position of fp into buf. */
static tf_status read_exact(FILE *fp, const char *path, void *buf, size_t bytes, tfi_errbuf *eb)
{
    errno = 0;
    size_t got = bytes ? fread(buf, 1, bytes, fp) : 0;
    if (got == bytes)
        return TF_OK;
    if (ferror(fp))
        return tfi_fail(eb, TF_ERR_IO, "%s: read failed: %s", path, strerror(errno ? errno : EIO));
    return tfi_fail(eb, TF_ERR_IO, "%s: file shrank while reading", path);
}

tf_status tfi_st_open_header(const char *path, tfi_st_file *f, tfi_errbuf *eb)
{
    FILE *fp;
    size_t fsize;
    tf_status st = open_regular(path, f, "tfi_st_open_header", &fp, &fsize, eb);
    if (st != TF_OK)
        return st;
    /* the length, then the header if the length is plausible (else the
     * parse refuses the file from its first bytes) */
    unsigned char len[8];
    size_t have = fsize < 8 ? (size_t)fsize : 8, want = have;
    st = read_exact(fp, path, len, have, eb);
    if (st == TF_OK && have == 8) {
        uint64_t n = load_u64_le(len);
        if (n <= (uint64_t)fsize - 8 && n <= ST_MAX_HEADER_BYTES)
            want = 8 + (size_t)n;
    }
    if (st == TF_OK && (st = start_open(f, path, want, eb)) == TF_OK) {
        f->size = fsize;
        f->header_only = 1;
        f->fp = fp;
        f->data_start = want;
        memcpy(f->buf, len, have);
        st = read_exact(fp, path, f->buf + have, want - have, eb);
        if (st == TF_OK)
            return finish_open(f, eb);
        tfi_st_close(f); /* closes fp */
        return st;
    }
    fclose(fp);
    return st;
}

const tfi_st_tensor *tfi_st_find(const tfi_st_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    int i = bisect(f->tensor_index, f->ntensors, name);
    return i < 0 ? NULL : &f->tensors[i];
}

const void *tfi_st_data(const tfi_st_file *f, const tfi_st_tensor *t)
{
    return f->buf + f->data_start + t->begin;
}

const char *tfi_st_meta(const tfi_st_file *f, const char *key)
{
    if (!f || !key)
        return NULL;
    int i = bisect(f->meta_index, f->nmeta, key);
    return i < 0 ? NULL : f->meta_values[i];
}

tf_status tfi_st_read_f32(const tfi_st_file *f, const char *name, float *dst,
                          size_t count, tfi_errbuf *eb)
{
    if (!f || !name || (!dst && count > 0))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "tfi_st_read_f32: NULL argument");
    const tfi_st_tensor *t = tfi_st_find(f, name);
    if (!t)
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: no tensor '%s'", f->name, name);
    char shape[256];
    tfi_st_format_shape(shape, sizeof shape, t->shape, t->ndim);
    if (!tfi_st_dtype_is_float(t->dtype))
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: tensor '%s': dtype is %s, expected F32, F16 "
                        "or BF16", f->name, name, tfi_st_dtype_name(t->dtype));
    if ((uint64_t)t->numel != (uint64_t)count)
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: tensor '%s': shape %s has %lld elements, "
                                           "expected %zu",
                        f->name, name, shape, (long long)t->numel, count);
    return tfi_st_copy_f32(f, t, dst, eb);
}

tf_status tfi_st_find_f32(const tfi_st_file *f, const char *name, int64_t rows, int64_t cols,
                          const tfi_st_tensor **found, tfi_errbuf *eb)
{
    const tfi_st_tensor *t = tfi_st_find(f, name);
    *found = NULL;
    if (!t)
        return TF_OK;
    if (!tfi_st_dtype_is_float(t->dtype))
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected F32, F16 or "
                        "BF16", f->name, t->name, tfi_st_dtype_name(t->dtype));
    const int64_t want[2] = {rows, cols};
    const int want_nd = cols ? 2 : 1;
    int same = t->ndim == want_nd;
    for (int i = 0; same && i < want_nd; i++)
        same = t->shape[i] == want[i];
    if (!same) {
        char a[64], b[64];
        tfi_st_format_shape(a, sizeof a, t->shape, t->ndim);
        tfi_st_format_shape(b, sizeof b, want, want_nd);
        return tfi_fail(eb, TF_ERR_SHAPE, "%s: tensor '%s' has shape %s in the file, expected %s",
                        f->name, t->name, a, b);
    }
    *found = t;
    return TF_OK;
}

