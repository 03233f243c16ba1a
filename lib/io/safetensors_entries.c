/*
 * safetensors_entries.c -- the safetensors header's entries, validated
 * field by field: each tensor's dtype, shape and data offsets (which must
 * agree), the tensors' ranges tiling the data area exactly, and the
 * __metadata__ strings.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors_parse.h"

/* ---- dtypes ------------------------------------------------------------ */

static const struct {
    const char *name;
    size_t size;
} dtype_table[] = {
    [TFI_ST_F32] = {"F32", 4},  [TFI_ST_I32] = {"I32", 4},   [TFI_ST_F64] = {"F64", 8},
    [TFI_ST_I64] = {"I64", 8},  [TFI_ST_U16] = {"U16", 2},   [TFI_ST_U8] = {"U8", 1},
    [TFI_ST_F16] = {"F16", 2},  [TFI_ST_BF16] = {"BF16", 2}, [TFI_ST_I8] = {"I8", 1},
    [TFI_ST_I16] = {"I16", 2},  [TFI_ST_U32] = {"U32", 4},   [TFI_ST_U64] = {"U64", 8},
    [TFI_ST_BOOL] = {"BOOL", 1},
};
#define DTYPE_COUNT ((int)(sizeof dtype_table / sizeof dtype_table[0]))

static int dtype_is_valid(tfi_st_dtype d)
{
    return (int)d >= 0 && (int)d < DTYPE_COUNT;
}

const char *tfi_st_dtype_name(tfi_st_dtype d)
{
    return dtype_is_valid(d) ? dtype_table[d].name : "?";
}

size_t tfi_st_dtype_size(tfi_st_dtype d)
{
    return dtype_is_valid(d) ? dtype_table[d].size : 0;
}

static int dtype_from_name(const char *name, tfi_st_dtype *out)
{
    for (int i = 0; i < DTYPE_COUNT; i++) {
        if (strcmp(dtype_table[i].name, name) == 0) {
            *out = (tfi_st_dtype)i;
            return 1;
        }
    }
    return 0;
}

/* a * b, or 0 with *overflow set when it does not fit in 64 bits. */
static uint64_t mul_u64(uint64_t a, uint64_t b, int *overflow)
{
    if (a != 0 && b > UINT64_MAX / a) {
        *overflow = 1;
        return 0;
    }
    return a * b;
}

/* A JSON value shortened for messages: `"abc"`, `1.5`, `{"a":1}`. */
static const char *json_excerpt(json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    return s ? s : "?";
}

/* A JSON integer in [0, INT64_MAX).  json-c saturates integers that do not
 * fit at INT64_MAX / UINT64_MAX, so INT64_MAX itself is refused as "too
 * large" rather than trusted. */
typedef enum { INT_OK, INT_NOT_INTEGER, INT_NEGATIVE, INT_TOO_LARGE } int_check;

static int_check get_nonneg_int(json_object *o, int64_t *out)
{
    if (!json_object_is_type(o, json_type_int))
        return INT_NOT_INTEGER;
    int64_t v = json_object_get_int64(o);
    if (v < 0)
        return INT_NEGATIVE;
    if (v == INT64_MAX)
        return INT_TOO_LARGE;
    *out = v;
    return INT_OK;
}

static tf_status check_entry_fields(tfi_st_parse *p, const char *tname, json_object *entry)
{
    struct json_object_iterator it = json_object_iter_begin(entry);
    struct json_object_iterator end = json_object_iter_end(entry);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *field = json_object_iter_peek_name(&it);
        if (strcmp(field, "dtype") != 0 && strcmp(field, "shape") != 0 &&
            strcmp(field, "data_offsets") != 0)
            return tfi_st_fail_tensor(p, tname, "unexpected field '%s' (allowed: dtype, shape, "
                                         "data_offsets)", field);
    }
    static const char *const required[] = {"dtype", "shape", "data_offsets"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!json_object_object_get_ex(entry, required[i], NULL))
            return tfi_st_fail_tensor(p, tname, "missing field '%s'", required[i]);
    }
    return TF_OK;
}

static tf_status parse_dtype(tfi_st_parse *p, const char *tname, json_object *o, tfi_st_tensor *t)
{
    if (!json_object_is_type(o, json_type_string))
        return tfi_st_fail_tensor(p, tname, "dtype must be a string, got %.40s", json_excerpt(o));
    const char *name = json_object_get_string(o);
    if (!dtype_from_name(name, &t->dtype))
        return tfi_st_fail_tensor(p, tname, "unknown dtype '%.40s'", name);
    return TF_OK;
}

static tf_status parse_shape(tfi_st_parse *p, const char *tname, json_object *o, tfi_st_tensor *t)
{
    if (!json_object_is_type(o, json_type_array))
        return tfi_st_fail_tensor(p, tname, "shape must be an array of non-negative integers, "
                                     "got %.40s", json_excerpt(o));
    size_t ndim = json_object_array_length(o);
    if (ndim > TFI_ST_MAX_DIMS)
        return tfi_st_fail_tensor(p, tname, "shape has %zu dims, more than the %d supported", ndim,
                           TFI_ST_MAX_DIMS);
    t->ndim = (int)ndim;
    for (size_t i = 0; i < ndim; i++) {
        json_object *d = json_object_array_get_idx(o, i);
        switch (get_nonneg_int(d, &t->shape[i])) {
        case INT_OK: break;
        case INT_NEGATIVE:
            return tfi_st_fail_tensor(p, tname, "shape[%zu] = %.40s is negative", i, json_excerpt(d));
        case INT_TOO_LARGE:
            /* json-c clamped the value: printing it would mislead */
            return tfi_st_fail_tensor(p, tname, "shape[%zu] is too large (2^63 - 1 or more)", i);
        case INT_NOT_INTEGER:
            return tfi_st_fail_tensor(p, tname, "shape[%zu] = %.40s is not a non-negative integer", i,
                               json_excerpt(d));
        }
    }
    return TF_OK;
}

static tf_status parse_offsets(tfi_st_parse *p, const char *tname, json_object *o, tfi_st_tensor *t)
{
    int64_t v[2];
    int ok = json_object_is_type(o, json_type_array) && json_object_array_length(o) == 2;
    for (size_t i = 0; ok && i < 2; i++)
        ok = get_nonneg_int(json_object_array_get_idx(o, i), &v[i]) == INT_OK;
    if (!ok)
        return tfi_st_fail_tensor(p, tname, "data_offsets must be two non-negative integers "
                                     "[begin, end], got %.60s", json_excerpt(o));
    if (v[0] > v[1])
        return tfi_st_fail_tensor(p, tname, "data_offsets [%lld, %lld]: begin is after end",
                           (long long)v[0], (long long)v[1]);
    t->begin = (uint64_t)v[0];
    t->end = (uint64_t)v[1];
    return TF_OK;
}

/* numel * dtype size must be exactly end - begin, and end within the data. */
static tf_status check_tensor_extent(tfi_st_parse *p, const char *tname, tfi_st_tensor *t)
{
    char shape[256];
    tfi_st_format_shape(shape, sizeof shape, t->shape, t->ndim);
    int overflow = 0;
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++)
        numel = mul_u64(numel, (uint64_t)t->shape[i], &overflow);
    uint64_t bytes = mul_u64(numel, tfi_st_dtype_size(t->dtype), &overflow);
    if (overflow)
        return tfi_st_fail_tensor(p, tname, "shape %s of %s is too large (byte count overflows)",
                           shape, tfi_st_dtype_name(t->dtype));
    if (t->end - t->begin != bytes)
        return tfi_st_fail_tensor(p, tname, "data_offsets [%llu, %llu] do not match shape %s of %s "
                                     "(%llu bytes)",
                           (unsigned long long)t->begin, (unsigned long long)t->end, shape,
                           tfi_st_dtype_name(t->dtype), (unsigned long long)bytes);
    if (t->end > (uint64_t)p->data_size)
        return tfi_st_fail_tensor(p, tname, "data_offsets [%llu, %llu] reach beyond the %zu-byte "
                                     "data area (file truncated?)",
                           (unsigned long long)t->begin, (unsigned long long)t->end,
                           p->data_size);
    t->numel = (int64_t)numel; /* <= bytes <= data_size: fits */
    return TF_OK;
}

static tf_status parse_entry(tfi_st_parse *p, const char *tname, json_object *entry,
                             tfi_st_tensor *t)
{
    if (!json_object_is_type(entry, json_type_object))
        return tfi_st_fail_tensor(p, tname, "entry must be an object, got %.40s", json_excerpt(entry));
    tf_status st = check_entry_fields(p, tname, entry);
    json_object *dtype = NULL, *shape = NULL, *offsets = NULL;
    json_object_object_get_ex(entry, "dtype", &dtype);
    json_object_object_get_ex(entry, "shape", &shape);
    json_object_object_get_ex(entry, "data_offsets", &offsets);
    if (st == TF_OK)
        st = parse_dtype(p, tname, dtype, t);
    if (st == TF_OK)
        st = parse_shape(p, tname, shape, t);
    if (st == TF_OK)
        st = parse_offsets(p, tname, offsets, t);
    if (st == TF_OK)
        st = check_tensor_extent(p, tname, t);
    if (st == TF_OK && !(t->name = strdup(tname)))
        st = tfi_st_fail_nomem(p);
    return st;
}

static tf_status parse_metadata(tfi_st_parse *p, json_object *meta)
{
    tfi_st_file *f = p->f;
    if (!json_object_is_type(meta, json_type_object))
        return tfi_st_fail_file(p, "%s must be an object of strings, got %.40s", TFI_ST_METADATA_KEY,
                         json_excerpt(meta));
    size_t n = (size_t)json_object_object_length(meta);
    f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
    f->meta_values = calloc(n ? n : 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values)
        return tfi_st_fail_nomem(p);
    struct json_object_iterator it = json_object_iter_begin(meta);
    struct json_object_iterator end = json_object_iter_end(meta);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *key = json_object_iter_peek_name(&it);
        json_object *v = json_object_iter_peek_value(&it);
        if (!json_object_is_type(v, json_type_string))
            return tfi_st_fail_file(p, "%s value of '%s' must be a string, got %.40s", TFI_ST_METADATA_KEY,
                             key, json_excerpt(v));
        const char *text = json_object_get_string(v);
        if (strlen(text) != (size_t)json_object_get_string_len(v))
            return tfi_st_fail_file(p, "%s value of '%s' contains a NUL character", TFI_ST_METADATA_KEY, key);
        char *k = strdup(key), *val = strdup(text);
        if (!k || !val) {
            free(k);
            free(val);
            return tfi_st_fail_nomem(p);
        }
        f->meta_keys[f->nmeta] = k;
        f->meta_values[f->nmeta] = val;
        f->nmeta++;
    }
    return TF_OK;
}

/* Walks the root object in header order: tensors and __metadata__. */
static tf_status parse_entries(tfi_st_parse *p, json_object *root)
{
    tfi_st_file *f = p->f;
    size_t n = (size_t)json_object_object_length(root);
    if (n > (size_t)INT32_MAX)
        return tfi_st_fail_file(p, "too many tensors (%zu)", n);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors)
        return tfi_st_fail_nomem(p);
    struct json_object_iterator it = json_object_iter_begin(root);
    struct json_object_iterator end = json_object_iter_end(root);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *key = json_object_iter_peek_name(&it);
        json_object *v = json_object_iter_peek_value(&it);
        tf_status st;
        if (strcmp(key, TFI_ST_METADATA_KEY) == 0) {
            st = parse_metadata(p, v);
        } else {
            st = parse_entry(p, key, v, &f->tensors[f->ntensors]);
            if (st == TF_OK)
                f->ntensors++;
        }
        if (st != TF_OK)
            return st;
    }
    return TF_OK;
}

static int compare_tensor_range(const void *a, const void *b)
{
    const tfi_st_tensor *x = *(const tfi_st_tensor *const *)a;
    const tfi_st_tensor *y = *(const tfi_st_tensor *const *)b;
    if (x->begin != y->begin)
        return (x->begin > y->begin) - (x->begin < y->begin);
    return (x->end > y->end) - (x->end < y->end);
}

/* The tensors' byte ranges must tile the data area exactly, as the format
 * requires: sorted by (begin, end), each starts where the previous one
 * ended (an empty tensor too), the first at 0, and the last ends at the end
 * of the file.  A gap means a wrong header length or offset: every tensor
 * would be read shifted, silently (NaN weights). */
static tf_status check_tiling(tfi_st_parse *p)
{
    tfi_st_file *f = p->f;
    const tfi_st_tensor **order = malloc((size_t)(f->ntensors ? f->ntensors : 1) * sizeof *order);
    if (!order)
        return tfi_st_fail_nomem(p);
    for (int i = 0; i < f->ntensors; i++)
        order[i] = &f->tensors[i];
    qsort(order, (size_t)f->ntensors, sizeof *order, compare_tensor_range);
    tf_status st = TF_OK;
    uint64_t at = 0;
    const tfi_st_tensor *prev = NULL;
    for (int i = 0; i < f->ntensors && st == TF_OK; i++) {
        const tfi_st_tensor *t = order[i];
        if (t->begin < at)
            st = tfi_st_fail_file(p, "tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap",
                                  prev->name, (unsigned long long)prev->begin,
                                  (unsigned long long)prev->end, t->name,
                                  (unsigned long long)t->begin, (unsigned long long)t->end);
        else if (t->begin > at)
            st = tfi_st_fail_file(p, "gap in the data area: bytes [%llu, %llu) before tensor "
                                  "'%s' belong to no tensor (wrong header length or offsets?)",
                                  (unsigned long long)at, (unsigned long long)t->begin, t->name);
        at = t->end;
        prev = t;
    }
    if (st == TF_OK && at != (uint64_t)p->data_size)
        st = tfi_st_fail_file(p, "the data area has %zu bytes but the tensors end at byte %llu: "
                              "bytes [%llu, %zu) belong to no tensor (wrong header length?)",
                              p->data_size, (unsigned long long)at, (unsigned long long)at,
                              p->data_size);
    free(order);
    return st;
}

tf_status tfi_st_parse_entries(tfi_st_parse *p, json_object *root)
{
    tf_status st = parse_entries(p, root);
    return st == TF_OK ? check_tiling(p) : st;
}
