/*
 * safetensors_keys.c -- the safetensors header's raw text, scanned for what
 * json-c hides: json-c silently keeps the last of two equal keys, so
 * duplicates are found by a small scanner over the raw header text that
 * lists the keys of the top-level object and of the objects directly inside
 * it; each key is decoded by json-c (so "a" and "\u0061" are the same key)
 * and the decoded names are compared.  The bytes after the JSON must be
 * space padding, and the whole header valid UTF-8.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors_parse.h"

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
static tf_status scan_header_keys(tfi_st_parse *p, raw_keys *keys, size_t *json_end)
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
                return tfi_st_fail_file(p, "header JSON has an unterminated string");
            size_t after = skip_json_space(h, i + 1, n);
            if (after < n && h[after] == ':' && depth <= 2) {
                raw_key key = {start, i - start + 1, depth};
                if (!raw_keys_push(keys, key))
                    return tfi_st_fail_nomem(p);
            }
        } else if (c == '\'') {
            return tfi_st_fail_file(p, "header JSON uses a single-quoted string at byte %zu "
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
    return tfi_st_fail_file(p, "header JSON object is not closed");
}

/* The format allows padding with spaces (0x20) after the JSON, nothing else. */
static tf_status check_trailing_bytes(tfi_st_parse *p, size_t json_end)
{
    for (size_t i = json_end; i < p->header_len; i++) {
        if (p->header[i] != ' ')
            return tfi_st_fail_file(p, "trailing garbage after the header JSON at byte %zu "
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
    else if (!(*out = strdup(text)))
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
static tf_status check_duplicate_fields(tfi_st_parse *p, const char *owner, char **names,
                                        size_t from, size_t to)
{
    int nomem = 0;
    const char *dup = find_duplicate(names + from, to - from, &nomem);
    if (nomem)
        return tfi_st_fail_nomem(p);
    if (!dup)
        return TF_OK;
    if (strcmp(owner, TFI_ST_METADATA_KEY) == 0)
        return tfi_st_fail_file(p, "%s: duplicate key '%s'", TFI_ST_METADATA_KEY, dup);
    return tfi_st_fail_tensor(p, owner, "duplicate field '%s'", dup);
}

/* Refuses repeated tensor names (json-c would keep only the last one) and
 * repeated fields inside an entry or in __metadata__. */
static tf_status check_duplicate_keys(tfi_st_parse *p, const raw_keys *keys)
{
    tf_status st = TF_OK;
    char **names = calloc(keys->n ? keys->n : 1, sizeof *names);
    char **top = calloc(keys->n ? keys->n : 1, sizeof *top);
    json_tokener *tok = json_tokener_new();
    if (!names || !top || !tok) {
        st = tfi_st_fail_nomem(p);
        goto done;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);

    size_t ntop = 0;
    for (size_t i = 0; i < keys->n; i++) {
        const raw_key *k = &keys->v[i];
        st = decode_key(tok, p->header + k->start, k->len, &names[i]);
        if (st == TF_ERR_NOMEM) {
            st = tfi_st_fail_nomem(p);
            goto done;
        }
        if (st != TF_OK) {
            st = tfi_st_fail_file(p, "header key %.*s at byte %zu contains a NUL character",
                           (int)(k->len > 80 ? 80 : k->len), p->header + k->start, k->start);
            goto done;
        }
        if (k->depth == 1)
            top[ntop++] = names[i];
    }

    int nomem = 0;
    const char *dup = find_duplicate(top, ntop, &nomem);
    if (nomem) {
        st = tfi_st_fail_nomem(p);
        goto done;
    }
    if (dup) {
        st = strcmp(dup, TFI_ST_METADATA_KEY) == 0
                 ? tfi_st_fail_file(p, "duplicate '%s' entry", TFI_ST_METADATA_KEY)
                 : tfi_st_fail_file(p, "duplicate tensor name '%s'", dup);
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

/* Length of the valid UTF-8 sequence at s[0..n), or 0: no overlong forms,
 * no surrogates, nothing above U+10FFFF (RFC 3629). */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

/* The format says the header is UTF-8 JSON; json-c passes some invalid
 * bytes through into names. */
static tf_status check_utf8(tfi_st_parse *p)
{
    const unsigned char *h = (const unsigned char *)p->header;
    for (size_t i = 0; i < p->header_len;) {
        size_t len = utf8_char(h + i, p->header_len - i);
        if (len == 0)
            return tfi_st_fail_file(p, "header is not valid UTF-8 (byte 0x%02x at byte %zu of "
                                    "the header)", h[i], i);
        i += len;
    }
    return TF_OK;
}

tf_status tfi_st_check_raw_header(tfi_st_parse *p)
{
    tf_status utf = check_utf8(p);
    if (utf != TF_OK)
        return utf;
    raw_keys keys = {0};
    size_t json_end = 0;
    tf_status st = scan_header_keys(p, &keys, &json_end);
    if (st == TF_OK)
        st = check_trailing_bytes(p, json_end);
    if (st == TF_OK)
        st = check_duplicate_keys(p, &keys);
    free(keys.v);
    return st;
}
