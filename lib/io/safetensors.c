/*
 * safetensors.c -- strict safetensors reader and atomic writer.
 *
 * Reading: the whole file is read into memory, the JSON header is parsed by
 * json-c and then validated field by field (see safetensors.h for the list
 * of checks).  Nothing is handed out until every check passed; on failure
 * the tfi_st_file is emptied again.
 *
 * json-c silently keeps the last of two equal keys, so duplicates are found
 * by a small scanner over the raw header text that lists the keys of the
 * top-level object and of the objects directly inside it; each key is
 * decoded by json-c (so "a" and "\u0061" are the same key) and the decoded
 * names are compared.
 */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static const char *const METADATA_KEY = "__metadata__";

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

/* ---- small helpers ----------------------------------------------------- */

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
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

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* "[10, 4]" (always NUL-terminated, truncated if cap is too small). */
static void format_shape(char *out, size_t cap, const int64_t *shape, int ndim)
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

static void store_u64_le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- reader: parse context and messages -------------------------------- */

typedef struct st_parse {
    tfi_st_file *f;
    tfi_errbuf *eb;
    const char *header; /* not NUL-terminated */
    size_t header_len;
    size_t data_size;   /* bytes after the header */
} st_parse;

/* "<file>: <detail>" as TF_ERR_FORMAT. */
__attribute__((format(printf, 2, 3)))
static tf_status fail_file(st_parse *p, const char *fmt, ...)
{
    char detail[TFI_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return tfi_fail(p->eb, TF_ERR_FORMAT, "%s: %s", p->f->name, detail);
}

/* "<file>: tensor '<name>': <detail>" as TF_ERR_FORMAT. */
__attribute__((format(printf, 3, 4)))
static tf_status fail_tensor(st_parse *p, const char *tensor, const char *fmt, ...)
{
    char detail[TFI_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return tfi_fail(p->eb, TF_ERR_FORMAT, "%s: tensor '%s': %s", p->f->name, tensor, detail);
}

static tf_status fail_nomem(st_parse *p)
{
    return tfi_fail(p->eb, TF_ERR_NOMEM, "%s: out of memory while reading the header",
                    p->f->name);
}

/* A JSON value shortened for messages: `"abc"`, `1.5`, `{"a":1}`. */
static const char *json_excerpt(json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    return s ? s : "?";
}

/* ---- reader: header length and JSON ------------------------------------ */

static tf_status check_header_length(st_parse *p)
{
    tfi_st_file *f = p->f;
    if (f->size < 8)
        return fail_file(p, "file is truncated: %zu bytes, less than the 8-byte header length",
                         f->size);
    uint64_t n = load_u64_le(f->buf);
    if (n > f->size - 8)
        return fail_file(p, "file is truncated or corrupt: header length %llu exceeds the "
                            "%zu bytes that follow it",
                         (unsigned long long)n, f->size - 8);
    if (n > ST_MAX_HEADER_BYTES)
        return fail_file(p, "header length %llu is absurdly large (limit %llu bytes)",
                         (unsigned long long)n, (unsigned long long)ST_MAX_HEADER_BYTES);
    p->header = (const char *)f->buf + 8;
    p->header_len = (size_t)n;
    p->data_size = f->size - 8 - (size_t)n;
    f->data_start = 8 + (size_t)n;
    return TF_OK;
}

/* Parses the header (which the format says must start with '{') with json-c
 * in strict mode.  Trailing bytes are allowed here and checked later. */
static tf_status parse_header_json(st_parse *p, json_object **root)
{
    if (p->header_len == 0 || p->header[0] != '{')
        return fail_file(p, "header is not a JSON object (it must start with '{')");
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return fail_nomem(p);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
    json_object *obj = json_tokener_parse_ex(tok, p->header, (int)p->header_len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t where = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (err == json_tokener_continue) {
        json_object_put(obj);
        return fail_file(p, "header JSON is incomplete (ends inside the object)");
    }
    if (!obj || err != json_tokener_success) {
        json_object_put(obj);
        return fail_file(p, "header is not valid JSON: %s at byte %zu of the header",
                         json_tokener_error_desc(err), where);
    }
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return fail_file(p, "header is not a JSON object");
    }
    *root = obj;
    return TF_OK;
}

/* ---- reader: raw key scan (duplicates) and trailing bytes --------------- */

typedef struct raw_key {
    size_t start, len; /* the quoted key token within the header */
    int depth;         /* 1: top-level key; 2: key of an object directly inside */
} raw_key;

typedef struct raw_keys {
    raw_key *v;
    size_t n, cap;
} raw_keys;

static int raw_keys_push(raw_keys *k, raw_key key)
{
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 64;
        raw_key *v = realloc(k->v, cap * sizeof *v);
        if (!v)
            return 0;
        k->v = v;
        k->cap = cap;
    }
    k->v[k->n++] = key;
    return 1;
}

static size_t skip_json_space(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* Walks the header that json-c accepted, recording keys at depth 1 and 2 in
 * document order, and where the top-level object ends (*json_end).  Only
 * strings and brackets matter: a string followed by ':' is a key.  json-c's
 * strict mode still accepts single-quoted strings, which are not JSON (and
 * would confuse this scan), so they are refused here. */
static tf_status scan_header_keys(st_parse *p, raw_keys *keys, size_t *json_end)
{
    const char *h = p->header;
    size_t n = p->header_len;
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c == '"') {
            size_t start = i++;
            while (i < n && h[i] != '"')
                i += (h[i] == '\\') ? 2 : 1;
            if (i >= n)
                return fail_file(p, "header JSON has an unterminated string");
            size_t after = skip_json_space(h, i + 1, n);
            if (after < n && h[after] == ':' && depth <= 2) {
                raw_key key = {start, i - start + 1, depth};
                if (!raw_keys_push(keys, key))
                    return fail_nomem(p);
            }
        } else if (c == '\'') {
            return fail_file(p, "header JSON uses a single-quoted string at byte %zu "
                                "(not valid JSON)", i);
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0) {
                *json_end = i + 1;
                return TF_OK;
            }
        }
    }
    return fail_file(p, "header JSON object is not closed");
}

/* The format allows padding with spaces (0x20) after the JSON, nothing else. */
static tf_status check_trailing_bytes(st_parse *p, size_t json_end)
{
    for (size_t i = json_end; i < p->header_len; i++) {
        if (p->header[i] != ' ')
            return fail_file(p, "trailing garbage after the header JSON at byte %zu "
                                "(only space padding is allowed)", i);
    }
    return TF_OK;
}

/* Decodes a quoted JSON string token with json-c into a new C string.
 * Returns TF_OK, TF_ERR_NOMEM, or TF_ERR_FORMAT for a NUL inside. */
static tf_status decode_key(json_tokener *tok, const char *token, size_t len, char **out)
{
    json_tokener_reset(tok);
    json_object *s = json_tokener_parse_ex(tok, token, (int)len);
    if (!s || !json_object_is_type(s, json_type_string)) {
        json_object_put(s);
        return TF_ERR_FORMAT;
    }
    const char *text = json_object_get_string(s);
    size_t text_len = (size_t)json_object_get_string_len(s);
    tf_status st = TF_OK;
    if (strlen(text) != text_len)
        st = TF_ERR_FORMAT; /* "\u0000" inside a key */
    else if (!(*out = dup_string(text)))
        st = TF_ERR_NOMEM;
    json_object_put(s);
    return st;
}

static int compare_string_ptrs(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first name that occurs twice among names[0..n), or NULL.  Sorts a
 * copy; *nomem is set if that copy cannot be made. */
static const char *find_duplicate(char **names, size_t n, int *nomem)
{
    if (n < 2)
        return NULL;
    char **sorted = malloc(n * sizeof *sorted);
    if (!sorted) {
        *nomem = 1;
        return NULL;
    }
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, compare_string_ptrs);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++) {
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            dup = sorted[i];
    }
    free(sorted);
    return dup;
}

/* Checks the fields of one top-level entry (names[from..to)) for repeats. */
static tf_status check_duplicate_fields(st_parse *p, const char *owner, char **names,
                                        size_t from, size_t to)
{
    int nomem = 0;
    const char *dup = find_duplicate(names + from, to - from, &nomem);
    if (nomem)
        return fail_nomem(p);
    if (!dup)
        return TF_OK;
    if (strcmp(owner, METADATA_KEY) == 0)
        return fail_file(p, "%s: duplicate key '%s'", METADATA_KEY, dup);
    return fail_tensor(p, owner, "duplicate field '%s'", dup);
}

/* Refuses repeated tensor names (json-c would keep only the last one) and
 * repeated fields inside an entry or in __metadata__. */
static tf_status check_duplicate_keys(st_parse *p, const raw_keys *keys)
{
    tf_status st = TF_OK;
    char **names = calloc(keys->n ? keys->n : 1, sizeof *names);
    char **top = calloc(keys->n ? keys->n : 1, sizeof *top);
    json_tokener *tok = json_tokener_new();
    if (!names || !top || !tok) {
        st = fail_nomem(p);
        goto done;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);

    size_t ntop = 0;
    for (size_t i = 0; i < keys->n; i++) {
        const raw_key *k = &keys->v[i];
        st = decode_key(tok, p->header + k->start, k->len, &names[i]);
        if (st == TF_ERR_NOMEM) {
            st = fail_nomem(p);
            goto done;
        }
        if (st != TF_OK) {
            st = fail_file(p, "header key %.*s at byte %zu contains a NUL character",
                           (int)(k->len > 80 ? 80 : k->len), p->header + k->start, k->start);
            goto done;
        }
        if (k->depth == 1)
            top[ntop++] = names[i];
    }

    int nomem = 0;
    const char *dup = find_duplicate(top, ntop, &nomem);
    if (nomem) {
        st = fail_nomem(p);
        goto done;
    }
    if (dup) {
        st = strcmp(dup, METADATA_KEY) == 0
                 ? fail_file(p, "duplicate '%s' entry", METADATA_KEY)
                 : fail_file(p, "duplicate tensor name '%s'", dup);
        goto done;
    }

    /* Depth-2 keys follow the depth-1 key whose object holds them. */
    for (size_t i = 0; i < keys->n && st == TF_OK; i++) {
        if (keys->v[i].depth != 1)
            continue;
        size_t j = i + 1;
        while (j < keys->n && keys->v[j].depth == 2)
            j++;
        st = check_duplicate_fields(p, names[i], names, i + 1, j);
    }

done:
    if (names) {
        for (size_t i = 0; i < keys->n; i++)
            free(names[i]);
    }
    free(names);
    free(top);
    if (tok)
        json_tokener_free(tok);
    return st;
}

/* ---- reader: entries ----------------------------------------------------- */

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

static tf_status check_entry_fields(st_parse *p, const char *tname, json_object *entry)
{
    struct json_object_iterator it = json_object_iter_begin(entry);
    struct json_object_iterator end = json_object_iter_end(entry);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *field = json_object_iter_peek_name(&it);
        if (strcmp(field, "dtype") != 0 && strcmp(field, "shape") != 0 &&
            strcmp(field, "data_offsets") != 0)
            return fail_tensor(p, tname, "unexpected field '%s' (allowed: dtype, shape, "
                                         "data_offsets)", field);
    }
    static const char *const required[] = {"dtype", "shape", "data_offsets"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!json_object_object_get_ex(entry, required[i], NULL))
            return fail_tensor(p, tname, "missing field '%s'", required[i]);
    }
    return TF_OK;
}

static tf_status parse_dtype(st_parse *p, const char *tname, json_object *o, tfi_st_tensor *t)
{
    if (!json_object_is_type(o, json_type_string))
        return fail_tensor(p, tname, "dtype must be a string, got %.40s", json_excerpt(o));
    const char *name = json_object_get_string(o);
    if (!dtype_from_name(name, &t->dtype))
        return fail_tensor(p, tname, "unknown dtype '%.40s'", name);
    return TF_OK;
}

static tf_status parse_shape(st_parse *p, const char *tname, json_object *o, tfi_st_tensor *t)
{
    if (!json_object_is_type(o, json_type_array))
        return fail_tensor(p, tname, "shape must be an array of non-negative integers, "
                                     "got %.40s", json_excerpt(o));
    size_t ndim = json_object_array_length(o);
    if (ndim > TFI_ST_MAX_DIMS)
        return fail_tensor(p, tname, "shape has %zu dims, more than the %d supported", ndim,
                           TFI_ST_MAX_DIMS);
    t->ndim = (int)ndim;
    for (size_t i = 0; i < ndim; i++) {
        json_object *d = json_object_array_get_idx(o, i);
        switch (get_nonneg_int(d, &t->shape[i])) {
        case INT_OK: break;
        case INT_NEGATIVE:
            return fail_tensor(p, tname, "shape[%zu] = %.40s is negative", i, json_excerpt(d));
        case INT_TOO_LARGE:
            /* json-c clamped the value: printing it would mislead */
            return fail_tensor(p, tname, "shape[%zu] is too large (2^63 - 1 or more)", i);
        case INT_NOT_INTEGER:
            return fail_tensor(p, tname, "shape[%zu] = %.40s is not a non-negative integer", i,
                               json_excerpt(d));
        }
    }
    return TF_OK;
}

static tf_status parse_offsets(st_parse *p, const char *tname, json_object *o, tfi_st_tensor *t)
{
    int64_t v[2];
    int ok = json_object_is_type(o, json_type_array) && json_object_array_length(o) == 2;
    for (size_t i = 0; ok && i < 2; i++)
        ok = get_nonneg_int(json_object_array_get_idx(o, i), &v[i]) == INT_OK;
    if (!ok)
        return fail_tensor(p, tname, "data_offsets must be two non-negative integers "
                                     "[begin, end], got %.60s", json_excerpt(o));
    if (v[0] > v[1])
        return fail_tensor(p, tname, "data_offsets [%lld, %lld]: begin is after end",
                           (long long)v[0], (long long)v[1]);
    t->begin = (uint64_t)v[0];
    t->end = (uint64_t)v[1];
    return TF_OK;
}

/* numel * dtype size must be exactly end - begin, and end within the data. */
static tf_status check_tensor_extent(st_parse *p, const char *tname, tfi_st_tensor *t)
{
    char shape[256];
    format_shape(shape, sizeof shape, t->shape, t->ndim);
    int overflow = 0;
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++)
        numel = mul_u64(numel, (uint64_t)t->shape[i], &overflow);
    uint64_t bytes = mul_u64(numel, tfi_st_dtype_size(t->dtype), &overflow);
    if (overflow)
        return fail_tensor(p, tname, "shape %s of %s is too large (byte count overflows)",
                           shape, tfi_st_dtype_name(t->dtype));
    if (t->end - t->begin != bytes)
        return fail_tensor(p, tname, "data_offsets [%llu, %llu] do not match shape %s of %s "
                                     "(%llu bytes)",
                           (unsigned long long)t->begin, (unsigned long long)t->end, shape,
                           tfi_st_dtype_name(t->dtype), (unsigned long long)bytes);
    if (t->end > (uint64_t)p->data_size)
        return fail_tensor(p, tname, "data_offsets [%llu, %llu] reach beyond the %zu-byte "
                                     "data area (file truncated?)",
                           (unsigned long long)t->begin, (unsigned long long)t->end,
                           p->data_size);
    t->numel = (int64_t)numel; /* <= bytes <= data_size: fits */
    return TF_OK;
}

static tf_status parse_entry(st_parse *p, const char *tname, json_object *entry,
                             tfi_st_tensor *t)
{
    if (!json_object_is_type(entry, json_type_object))
        return fail_tensor(p, tname, "entry must be an object, got %.40s", json_excerpt(entry));
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
    if (st == TF_OK && !(t->name = dup_string(tname)))
        st = fail_nomem(p);
    return st;
}

static tf_status parse_metadata(st_parse *p, json_object *meta)
{
    tfi_st_file *f = p->f;
    if (!json_object_is_type(meta, json_type_object))
        return fail_file(p, "%s must be an object of strings, got %.40s", METADATA_KEY,
                         json_excerpt(meta));
    size_t n = (size_t)json_object_object_length(meta);
    f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
    f->meta_values = calloc(n ? n : 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values)
        return fail_nomem(p);
    struct json_object_iterator it = json_object_iter_begin(meta);
    struct json_object_iterator end = json_object_iter_end(meta);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *key = json_object_iter_peek_name(&it);
        json_object *v = json_object_iter_peek_value(&it);
        if (!json_object_is_type(v, json_type_string))
            return fail_file(p, "%s value of '%s' must be a string, got %.40s", METADATA_KEY,
                             key, json_excerpt(v));
        const char *text = json_object_get_string(v);
        if (strlen(text) != (size_t)json_object_get_string_len(v))
            return fail_file(p, "%s value of '%s' contains a NUL character", METADATA_KEY, key);
        char *k = dup_string(key), *val = dup_string(text);
        if (!k || !val) {
            free(k);
            free(val);
            return fail_nomem(p);
        }
        f->meta_keys[f->nmeta] = k;
        f->meta_values[f->nmeta] = val;
        f->nmeta++;
    }
    return TF_OK;
}

/* Walks the root object in header order: tensors and __metadata__. */
static tf_status parse_entries(st_parse *p, json_object *root)
{
    tfi_st_file *f = p->f;
    size_t n = (size_t)json_object_object_length(root);
    if (n > (size_t)INT32_MAX)
        return fail_file(p, "too many tensors (%zu)", n);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors)
        return fail_nomem(p);
    struct json_object_iterator it = json_object_iter_begin(root);
    struct json_object_iterator end = json_object_iter_end(root);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *key = json_object_iter_peek_name(&it);
        json_object *v = json_object_iter_peek_value(&it);
        tf_status st;
        if (strcmp(key, METADATA_KEY) == 0) {
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

static int compare_tensor_begin(const void *a, const void *b)
{
    const tfi_st_tensor *x = *(const tfi_st_tensor *const *)a;
    const tfi_st_tensor *y = *(const tfi_st_tensor *const *)b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* Sorted by begin, ranges that do not overlap so far are disjoint, so a
 * tensor overlaps an earlier one iff it starts before the previous one
 * ends.  Empty tensors own no bytes and are skipped. */
static tf_status check_overlaps(st_parse *p)
{
    tfi_st_file *f = p->f;
    if (f->ntensors < 2)
        return TF_OK;
    const tfi_st_tensor **order = malloc((size_t)f->ntensors * sizeof *order);
    if (!order)
        return fail_nomem(p);
    int n = 0;
    for (int i = 0; i < f->ntensors; i++) {
        if (f->tensors[i].end > f->tensors[i].begin)
            order[n++] = &f->tensors[i];
    }
    qsort(order, (size_t)n, sizeof *order, compare_tensor_begin);
    tf_status st = TF_OK;
    for (int i = 1; i < n && st == TF_OK; i++) {
        const tfi_st_tensor *prev = order[i - 1], *t = order[i];
        if (t->begin < prev->end)
            st = fail_file(p, "tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap",
                           prev->name, (unsigned long long)prev->begin,
                           (unsigned long long)prev->end, t->name,
                           (unsigned long long)t->begin, (unsigned long long)t->end);
    }
    free(order);
    return st;
}

/* Validates f->buf (f->size bytes, f->name set) and fills the tensor and
 * metadata tables.  On failure the caller empties f. */
static tf_status parse_buffer(tfi_st_file *f, tfi_errbuf *eb)
{
    st_parse p = {.f = f, .eb = eb};
    if (!host_is_little_endian())
        return fail_file(&p, "big-endian hosts are not supported (safetensors data is "
                             "little-endian)");
    tf_status st = check_header_length(&p);
    if (st != TF_OK)
        return st;

    json_object *root = NULL;
    raw_keys keys = {0};
    size_t json_end = 0;
    st = parse_header_json(&p, &root);
    if (st == TF_OK)
        st = scan_header_keys(&p, &keys, &json_end);
    if (st == TF_OK)
        st = check_trailing_bytes(&p, json_end);
    if (st == TF_OK)
        st = check_duplicate_keys(&p, &keys);
    if (st == TF_OK)
        st = parse_entries(&p, root);
    if (st == TF_OK)
        st = check_overlaps(&p);
    free(keys.v);
    json_object_put(root);
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
    free(f->meta_keys);
    free(f->meta_values);
    free(f->buf);
    free(f->name);
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
    f->name = dup_string(name);
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

tf_status tfi_st_open(const char *path, tfi_st_file *f, tfi_errbuf *eb)
{
    if (!f)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "tfi_st_open: NULL file");
    memset(f, 0, sizeof *f);
    if (!path)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "tfi_st_open: NULL path");
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return tfi_fail(eb, TF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0) {
        int e = errno;
        fclose(fp);
        return tfi_fail(eb, TF_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        fclose(fp);
        return tfi_fail(eb, TF_ERR_IO, "%s: not a regular file", path);
    }
    if ((uintmax_t)sb.st_size > SIZE_MAX) {
        fclose(fp);
        return tfi_fail(eb, TF_ERR_IO, "%s: too large to read into memory", path);
    }
    tf_status st = start_open(f, path, (size_t)sb.st_size, eb);
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
                        path, got, (size_t)sb.st_size);
    }
    return finish_open(f, eb);
}

const tfi_st_tensor *tfi_st_find(const tfi_st_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    for (int i = 0; i < f->ntensors; i++) {
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    }
    return NULL;
}

const void *tfi_st_data(const tfi_st_file *f, const tfi_st_tensor *t)
{
    return f->buf + f->data_start + t->begin;
}

const char *tfi_st_meta(const tfi_st_file *f, const char *key)
{
    if (!f || !key)
        return NULL;
    for (int i = 0; i < f->nmeta; i++) {
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_values[i];
    }
    return NULL;
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
    format_shape(shape, sizeof shape, t->shape, t->ndim);
    if (t->dtype != TFI_ST_F32)
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: tensor '%s': dtype is %s, expected F32",
                        f->name, name, tfi_st_dtype_name(t->dtype));
    if ((uint64_t)t->numel != (uint64_t)count)
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: tensor '%s': shape %s has %lld elements, "
                                           "expected %zu",
                        f->name, name, shape, (long long)t->numel, count);
    if (count)
        memcpy(dst, tfi_st_data(f, t), count * sizeof(float));
    return TF_OK;
}

/* ---- writer -------------------------------------------------------------- */

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
        n = mul_u64(n, (uint64_t)shape[i], &overflow);
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
    if (!dtype_is_valid(dtype))
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "safetensors writer: tensor '%s': bad dtype %d",
                        name, (int)dtype);
    if (ndim < 0 || ndim > TFI_ST_MAX_DIMS || (ndim > 0 && !shape))
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "safetensors writer: tensor '%s': bad ndim %d "
                                               "(0..%d, shape needed)",
                        name, ndim, TFI_ST_MAX_DIMS);
    if (strcmp(name, METADATA_KEY) == 0 || writer_has_tensor(w, name))
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "safetensors writer: tensor name '%s' is %s",
                        name, strcmp(name, METADATA_KEY) == 0 ? "reserved" : "already used");
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
    if (!(t->name = dup_string(name)))
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
    char *v = dup_string(value);
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
    char *k = dup_string(key);
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
        if (!json_add(root, METADATA_KEY, meta))
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

/* The directory holding path ("." for a bare name), newly allocated. */
static char *directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return dup_string(".");
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

/* Everything up to and including fclose of the temp file.  Returns 0, or
 * -1 with errno set and *what naming the step that failed; fp is always
 * closed. */
static int write_temp_file(FILE *fp, const tfi_st_writer *w, const unsigned char *prefix,
                           size_t prefix_len, const char **what)
{
    int fail = 0;
    *what = "write";
    if (write_bytes(fp, prefix, prefix_len) != 0)
        fail = 1;
    for (int i = 0; !fail && i < w->ntensors; i++) {
        if (write_bytes(fp, w->tensors[i].data, (size_t)w->tensors[i].bytes) != 0)
            fail = 1;
    }
    if (!fail && fflush(fp) != 0) {
        *what = "write";
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

tf_status tfi_st_writer_write(tfi_st_writer *w, const char *path, tfi_errbuf *eb)
{
    if (!w || !path)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "tfi_st_writer_write: NULL argument");
    if (!host_is_little_endian())
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: big-endian hosts are not supported", path);

    size_t prefix_len = 0;
    unsigned char *prefix = serialize_prefix(w, &prefix_len);
    size_t path_len = strlen(path);
    char *tmp = malloc(path_len + sizeof ".tmp.XXXXXX");
    if (!prefix || !tmp) {
        free(prefix);
        free(tmp);
        return tfi_fail(eb, TF_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    memcpy(tmp, path, path_len);
    memcpy(tmp + path_len, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");

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
    if (write_temp_file(fp, w, prefix, prefix_len, &what) != 0) {
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
    if (fsync_directory(path) != 0) {
        st = tfi_fail(eb, TF_ERR_IO, "%s: written, but fsync of its directory failed: %s",
                      path, strerror(errno));
    }
done:
    free(prefix);
    free(tmp);
    return st;
}
