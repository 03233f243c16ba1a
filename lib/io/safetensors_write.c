/*
 * safetensors_write.c -- the safetensors writer: tensors (by reference) and
 * metadata are collected, then the header is built with json-c and the
 * file written atomically (io/file.h).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/file.h"
#include "io/safetensors.h"

static void store_u64_le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

typedef struct st_wtensor {
    char *name;
    tfi_st_dtype dtype;
    int ndim;
    int64_t shape[TFI_ST_MAX_DIMS];
    const void *data;
    uint64_t bytes;
} st_wtensor;

struct tfi_st_writer {
    st_wtensor *tensors;
    int ntensors, cap;
    char **meta_keys;
    char **meta_values;
    int nmeta, meta_cap;
};

tfi_st_writer *tfi_st_writer_new(void)
{
    return calloc(1, sizeof(tfi_st_writer));
}

void tfi_st_writer_free(tfi_st_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->ntensors; i++)
        free(w->tensors[i].name);
    for (int i = 0; i < w->nmeta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->tensors);
    free(w->meta_keys);
    free(w->meta_values);
    free(w);
}

static int writer_has_tensor(const tfi_st_writer *w, const char *name)
{
    for (int i = 0; i < w->ntensors; i++) {
        if (strcmp(w->tensors[i].name, name) == 0)
            return 1;
    }
    return 0;
}

/* Byte count of a tensor being added, or TF_ERR_ARGUMENT on a bad shape. */
static tf_status writer_tensor_bytes(const char *name, tfi_st_dtype dtype, int ndim,
                                     const int64_t *shape, uint64_t *bytes)
{
    int overflow = 0;
    uint64_t n = tfi_st_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return tfi_fail(NULL, TF_ERR_ARGUMENT, "safetensors writer: tensor '%s': "
                                                   "shape[%d] = %lld is negative",
                            name, i, (long long)shape[i]);
        overflow |= __builtin_mul_overflow(n, (uint64_t)shape[i], &n);
    }
    if (overflow || n > (uint64_t)INT64_MAX)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "safetensors writer: tensor '%s' is too large",
                        name);
    *bytes = n;
    return TF_OK;
}

tf_status tfi_st_writer_add(tfi_st_writer *w, const char *name, tfi_st_dtype dtype,
                            int ndim, const int64_t *shape, const void *data)
{
    if (!w || !name)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tfi_st_writer_add: NULL argument");
    if (tfi_st_dtype_size(dtype) == 0)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "safetensors writer: tensor '%s': bad dtype %d",
                        name, (int)dtype);
    if (ndim < 0 || ndim > TFI_ST_MAX_DIMS || (ndim > 0 && !shape))
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "safetensors writer: tensor '%s': bad ndim %d "
                                               "(0..%d, shape needed)",
                        name, ndim, TFI_ST_MAX_DIMS);
    if (strcmp(name, TFI_ST_METADATA_KEY) == 0 || writer_has_tensor(w, name))
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "safetensors writer: tensor name '%s' is %s",
                        name, strcmp(name, TFI_ST_METADATA_KEY) == 0 ? "reserved" : "already used");
    uint64_t bytes = 0;
    tf_status st = writer_tensor_bytes(name, dtype, ndim, shape, &bytes);
    if (st != TF_OK)
        return st;
    if (bytes > 0 && !data)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "safetensors writer: tensor '%s': NULL data",
                        name);
    if (w->ntensors == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_wtensor *grown = realloc(w->tensors, (size_t)cap * sizeof *grown);
        if (!grown)
            return tfi_fail(NULL, TF_ERR_NOMEM, "safetensors writer: out of memory");
        w->tensors = grown;
        w->cap = cap;
    }
    st_wtensor *t = &w->tensors[w->ntensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name)))
        return tfi_fail(NULL, TF_ERR_NOMEM, "safetensors writer: out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->data = data;
    t->bytes = bytes;
    w->ntensors++;
    return TF_OK;
}

tf_status tfi_st_writer_meta(tfi_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tfi_st_writer_meta: NULL argument");
    char *v = strdup(value);
    if (!v)
        return tfi_fail(NULL, TF_ERR_NOMEM, "safetensors writer: out of memory");
    for (int i = 0; i < w->nmeta; i++) {
        if (strcmp(w->meta_keys[i], key) == 0) {
            free(w->meta_values[i]);
            w->meta_values[i] = v;
            return TF_OK;
        }
    }
    if (w->nmeta == w->meta_cap) {
        int cap = w->meta_cap ? 2 * w->meta_cap : 8;
        char **k = realloc(w->meta_keys, (size_t)cap * sizeof *k);
        if (k)
            w->meta_keys = k;
        char **vals = k ? realloc(w->meta_values, (size_t)cap * sizeof *vals) : NULL;
        if (vals)
            w->meta_values = vals;
        if (!k || !vals) {
            free(v);
            return tfi_fail(NULL, TF_ERR_NOMEM, "safetensors writer: out of memory");
        }
        w->meta_cap = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return tfi_fail(NULL, TF_ERR_NOMEM, "safetensors writer: out of memory");
    }
    w->meta_keys[w->nmeta] = k;
    w->meta_values[w->nmeta] = v;
    w->nmeta++;
    return TF_OK;
}

/* Adds key: value to obj, consuming value (also on failure). */
static int json_add(json_object *obj, const char *key, json_object *value)
{
    if (!value)
        return 0;
    if (json_object_object_add(obj, key, value) != 0) {
        json_object_put(value);
        return 0;
    }
    return 1;
}

static json_object *json_int_array(const int64_t *v, int n)
{
    json_object *a = json_object_new_array();
    for (int i = 0; a && i < n; i++) {
        json_object *x = json_object_new_int64(v[i]);
        if (!x || json_object_array_add(a, x) != 0) {
            json_object_put(x);
            json_object_put(a);
            return NULL;
        }
    }
    return a;
}

static json_object *build_tensor_entry(const st_wtensor *t, uint64_t begin)
{
    json_object *e = json_object_new_object();
    int64_t offsets[2] = {(int64_t)begin, (int64_t)(begin + t->bytes)};
    if (e && json_add(e, "dtype", json_object_new_string(tfi_st_dtype_name(t->dtype))) &&
        json_add(e, "shape", json_int_array(t->shape, t->ndim)) &&
        json_add(e, "data_offsets", json_int_array(offsets, 2)))
        return e;
    json_object_put(e);
    return NULL;
}

/* The header object: "__metadata__" first, then the tensors in the order
 * added with offsets back to back.  NULL on allocation failure or when the
 * total size does not fit in a signed 64-bit offset. */
static json_object *build_header(const tfi_st_writer *w)
{
    json_object *root = json_object_new_object();
    if (!root)
        return NULL;
    if (w->nmeta > 0) {
        json_object *meta = json_object_new_object();
        for (int i = 0; meta && i < w->nmeta; i++) {
            if (!json_add(meta, w->meta_keys[i], json_object_new_string(w->meta_values[i]))) {
                json_object_put(meta);
                meta = NULL;
            }
        }
        if (!json_add(root, TFI_ST_METADATA_KEY, meta))
            goto fail;
    }
    uint64_t offset = 0;
    for (int i = 0; i < w->ntensors; i++) {
        const st_wtensor *t = &w->tensors[i];
        if (t->bytes > (uint64_t)INT64_MAX - offset)
            goto fail;
        if (!json_add(root, t->name, build_tensor_entry(t, offset)))
            goto fail;
        offset += t->bytes;
    }
    return root;
fail:
    json_object_put(root);
    return NULL;
}

/* 8-byte little-endian length, the JSON, then spaces so that the data
 * starts at a multiple of 8 bytes (as the reference writer does). */
static unsigned char *serialize_prefix(const tfi_st_writer *w, size_t *out_len)
{
    json_object *root = build_header(w);
    if (!root)
        return NULL;
    size_t json_len = 0;
    const char *json = json_object_to_json_string_length(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &json_len);
    unsigned char *buf = NULL;
    if (json) {
        size_t header_len = (json_len + 7) & ~(size_t)7;
        buf = malloc(8 + header_len);
        if (buf) {
            store_u64_le(buf, header_len);
            memcpy(buf + 8, json, json_len);
            memset(buf + 8 + json_len, ' ', header_len - json_len);
            *out_len = 8 + header_len;
        }
    }
    json_object_put(root);
    return buf;
}

/* Writes n bytes; returns 0, or -1 with errno set. */
static int write_bytes(FILE *fp, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    errno = 0;
    if (fwrite(p, 1, n, fp) != n) {
        if (errno == 0)
            errno = EIO;
        return -1;
    }
    return 0;
}

typedef struct write_job {
    const tfi_st_writer *w;
    const unsigned char *prefix;
    size_t prefix_len;
} write_job;

static int write_contents(FILE *fp, void *ctx)
{
    const write_job *job = ctx;
    if (write_bytes(fp, job->prefix, job->prefix_len) != 0)
        return -1;
    for (int i = 0; i < job->w->ntensors; i++)
        if (write_bytes(fp, job->w->tensors[i].data, (size_t)job->w->tensors[i].bytes) != 0)
            return -1;
    return 0;
}

tf_status tfi_st_writer_write(tfi_st_writer *w, const char *path, tfi_errbuf *eb)
{
    if (!w || !path)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "tfi_st_writer_write: NULL argument");
    write_job job = {w, NULL, 0};
    unsigned char *prefix = serialize_prefix(w, &job.prefix_len);
    if (!prefix)
        return tfi_fail(eb, TF_ERR_NOMEM, "%s: out of memory building the header", path);
    job.prefix = prefix;
    tf_status st = tfi_atomic_write(path, write_contents, &job, eb);
    free(prefix);
    return st;
}
