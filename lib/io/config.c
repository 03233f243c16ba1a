/*
 * config.c -- the tf_config handle: load, parse and free, dotted look-ups,
 * typed getters, and the optional-key helpers the model and optimizer key
 * readers share.
 *
 * See tokenformer.h ("Configurations") for the API and io/config.h for the
 * typing rules.  Nothing here prints, aborts or keeps global mutable state.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/config.h"
#include "io/config_tree.h"
#include "io/file.h"

static tf_status config_from_text(const char *name, const unsigned char *text, size_t len,
                                  tf_config **out)
{
    tfc_node *root = NULL;
    tf_status st = tfc_build_tree(name, text, len, &root);
    if (st != TF_OK)
        return st;
    tf_config *cfg = calloc(1, sizeof *cfg);
    if (cfg) {
        cfg->root = root;
        cfg->name = strdup(name);
    }
    if (!cfg || !cfg->name || tfc_update_ignored(cfg) != TF_OK) {
        if (cfg)
            tf_config_free(cfg);
        else
            tfc_node_free(root);
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", name);
    }
    *out = cfg;
    return TF_OK;
}

/* ---- public: load, parse, free ----------------------------------------- */

static void errno_text(int err, char *buf, size_t size)
{
    /* XSI strerror_r (thread-safe); _GNU_SOURCE is not defined here. */
    if (strerror_r(err, buf, size) != 0)
        snprintf(buf, size, "error %d", err);
}

TF_API tf_status tf_config_load(const char *path, tf_config **out)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_config_load: %s is NULL",
                        !path ? "path" : "out");
    FILE *f;
    int64_t size;
    tf_status st = tfi_fopen_regular(path, &f, &size, NULL);
    if (st != TF_OK)
        return st;
    if ((uint64_t)size > TFC_MAX_FILE_BYTES) {
        fclose(f);
        return tfi_fail(NULL, TF_ERR_CONFIG, "%s: larger than %zu MiB; not a configuration",
                        path, TFC_MAX_FILE_BYTES >> 20);
    }
    unsigned char *buf = malloc((size_t)size + 1);
    size_t len = 0;
    if (!buf) {
        fclose(f);
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", path);
    }
    len = fread(buf, 1, (size_t)size, f);
    if (ferror(f)) {
        char ebuf[128];
        errno_text(errno, ebuf, sizeof ebuf);
        st = tfi_fail(NULL, TF_ERR_IO, "%s: read error: %s", path, ebuf);
    }
    fclose(f);
    if (st == TF_OK)
        st = config_from_text(path, buf, len, out);
    free(buf);
    return st;
}

TF_API tf_status tf_config_parse(const char *text, size_t len, tf_config **out)
{
    if (out)
        *out = NULL;
    if (!text || !out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_config_parse: %s is NULL",
                        !text ? "text" : "out");
    return config_from_text("<string>", (const unsigned char *)text, len, out);
}

TF_API void tf_config_free(tf_config *cfg)
{
    if (!cfg)
        return;
    tfc_node_free(cfg->root);
    free(cfg->ignored);
    for (int i = 0; i < cfg->num_declared; i++)
        free(cfg->declared[i]);
    free(cfg->declared);
    free(cfg->name);
    free(cfg);
}

TF_API const char *tf_config_errmsg(const tf_config *cfg)
{
    return cfg ? cfg->err.msg : "";
}

/* ---- look-ups ----------------------------------------------------------- */

/* Resolves a dotted path: mapping keys (which may themselves contain dots:
 * the whole remaining path is tried first) and decimal sequence indices. */
static const tfc_node *find_path(const tfc_node *n, const char *path, size_t len)
{
    if (n->kind == TFC_MAP) {
        const tfc_entry *e = tfc_map_find(n, path, len);
        if (e)
            return e->value;
        for (size_t i = 0; i < n->count; i++) {
            const char *key = n->entries[i].key;
            size_t klen = strlen(key);
            if (klen < len && path[klen] == '.' && tfc_key_eq_n(key, path, klen)) {
                const tfc_node *r = find_path(n->entries[i].value, path + klen + 1,
                                              len - klen - 1);
                if (r)
                    return r;
            }
        }
    } else if (n->kind == TFC_SEQ) {
        size_t i = 0, idx = 0;
        while (i < len && path[i] >= '0' && path[i] <= '9') {
            if (idx > (SIZE_MAX - 9) / 10)
                return NULL;
            idx = idx * 10 + (size_t)(path[i] - '0');
            i++;
        }
        if (i == 0 || idx >= n->count)
            return NULL;
        if (i == len)
            return n->items[idx];
        if (path[i] != '.')
            return NULL;
        return find_path(n->items[idx], path + i + 1, len - i - 1);
    }
    return NULL;
}

static const tfc_node *lookup(const tf_config *cfg, const char *key)
{
    return find_path(cfg->root, key, strlen(key));
}

/* The handle's message buffer.  Look-ups take a const tf_config (they do
 * not change the configuration) but record their failure on it, like
 * errno; every tf_config is allocated non-const by this file, so writing
 * through the cast is well defined. */
tfi_errbuf *tfi_config_eb(const tf_config *cfg)
{
    return (tfi_errbuf *)&cfg->err;
}

tf_status tfi_config_fail(const tf_config *cfg, tf_status st, int line, const char *fmt, ...)
{
    char msg[TFI_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        return tfi_fail(tfi_config_eb(cfg), st, "%s:%d: %s", cfg->name, line, msg);
    return tfi_fail(tfi_config_eb(cfg), st, "%s: %s", cfg->name, msg);
}

static int is_null(const tfc_node *n)
{
    if (n->kind != TFC_SCALAR || n->quoted)
        return 0;
    const char *s = n->text;
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* 0: ok; 1: not an integer; 2: out of range. */
static int parse_int(const char *s, int64_t *out)
{
    if (!(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
        return 1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return 1;
    if (errno == ERANGE)
        return 2;
    *out = (int64_t)v;
    return 0;
}

/* 0: ok; 1: not a number; 2: out of range.  Decimal only ("1.0e-8",
 * "0.0006", "12"), plus YAML's .inf, -.inf and .nan; no hex, no "nan". */
static int parse_double(const char *s, double *out)
{
    const char *t = (s[0] == '-' || s[0] == '+') ? s + 1 : s;
    if (strcasecmp(t, ".inf") == 0) {
        *out = s[0] == '-' ? -INFINITY : INFINITY;
        return 0;
    }
    if (t == s && strcasecmp(t, ".nan") == 0) {
        *out = NAN;
        return 0;
    }
    if (s[0] == '\0' || strspn(s, "0123456789+-.eE") != strlen(s) ||
        strpbrk(s, "0123456789") == NULL)
        return 1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return 1;
    if (errno == ERANGE && isinf(v))
        return 2;
    *out = v;
    return 0;
}

/* 0: ok; 1: not a bool. */
static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return 1;
}

/* What a node is, with its article, for messages. */
static const char *what_is(const tfc_node *n)
{
    int64_t i;
    double d;
    int b;
    if (n->kind == TFC_MAP)
        return "a mapping";
    if (n->kind == TFC_SEQ)
        return "a sequence";
    if (n->quoted)
        return "a quoted string";
    if (is_null(n))
        return "null";
    if (parse_int(n->text, &i) == 0)
        return "an integer";
    if (parse_double(n->text, &d) == 0)
        return "a float";
    if (parse_bool(n->text, &b) == 0)
        return "a boolean";
    return "a string";
}

/* "'key' (value) is a float, not an integer"; quoted strings are shown in
 * double quotes, so that "12" and 12 read differently. */
static tf_status type_error(const tf_config *cfg, const char *key, const tfc_node *n,
                            const char *wanted)
{
    if (n->kind != TFC_SCALAR || is_null(n))
        return tfi_config_fail(cfg, TF_ERR_CONFIG, n->line, "'%s' is %s, not %s", key, what_is(n),
                        wanted);
    return tfi_config_fail(cfg, TF_ERR_CONFIG, n->line, "'%s' (%s%.64s%s) is %s, not %s", key,
                    n->quoted ? "\"" : "", n->text, n->quoted ? "\"" : "", what_is(n),
                    wanted);
}

static tf_status conv_int(const tf_config *cfg, const char *key, const tfc_node *n,
                          int64_t *out)
{
    if (n->kind != TFC_SCALAR || n->quoted || is_null(n))
        return type_error(cfg, key, n, "an integer");
    int r = parse_int(n->text, out);
    if (r == 2)
        return tfi_config_fail(cfg, TF_ERR_CONFIG, n->line,
                        "'%s' (%.64s) is out of range for a 64-bit integer", key, n->text);
    if (r != 0)
        return type_error(cfg, key, n, "an integer");
    return TF_OK;
}

static tf_status conv_double(const tf_config *cfg, const char *key, const tfc_node *n,
                             double *out)
{
    if (n->kind != TFC_SCALAR || n->quoted || is_null(n))
        return type_error(cfg, key, n, "a number");
    int r = parse_double(n->text, out);
    if (r == 2)
        return tfi_config_fail(cfg, TF_ERR_CONFIG, n->line,
                        "'%s' (%.64s) is out of range for a double", key, n->text);
    if (r != 0)
        return type_error(cfg, key, n, "a number");
    return TF_OK;
}

static tf_status conv_bool(const tf_config *cfg, const char *key, const tfc_node *n,
                           int *out)
{
    if (n->kind != TFC_SCALAR || n->quoted || is_null(n) || parse_bool(n->text, out) != 0)
        return type_error(cfg, key, n, "a boolean (true/false)");
    return TF_OK;
}

static tf_status conv_string(const tf_config *cfg, const char *key, const tfc_node *n,
                             const char **out)
{
    if (n->kind != TFC_SCALAR || is_null(n))
        return type_error(cfg, key, n, "a string");
    *out = n->text;
    return TF_OK;
}

static tf_status get_node(const tf_config *cfg, const char *key, const void *out,
                          const char *fn, const tfc_node **node)
{
    if (!cfg)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: cfg is NULL", fn);
    if (!key || !out)
        return tfi_fail(tfi_config_eb(cfg), TF_ERR_ARGUMENT, "%s: %s is NULL", fn,
                        !key ? "key" : "out");
    *node = lookup(cfg, key);
    if (!*node)
        return tfi_fail(tfi_config_eb(cfg), TF_ERR_NOT_FOUND, "%s: no key '%s'", cfg->name, key);
    return TF_OK;
}

TF_API int tf_config_has(const tf_config *cfg, const char *key)
{
    return cfg && key && lookup(cfg, key) != NULL;
}

TF_API tf_status tf_config_get_int(const tf_config *cfg, const char *key, int64_t *out)
{
    const tfc_node *n;
    tf_status st = get_node(cfg, key, out, "tf_config_get_int", &n);
    int64_t v = 0;
    if (st == TF_OK && (st = conv_int(cfg, key, n, &v)) == TF_OK)
        *out = v;
    return st;
}

TF_API tf_status tf_config_get_double(const tf_config *cfg, const char *key, double *out)
{
    const tfc_node *n;
    tf_status st = get_node(cfg, key, out, "tf_config_get_double", &n);
    double v = 0;
    if (st == TF_OK && (st = conv_double(cfg, key, n, &v)) == TF_OK)
        *out = v;
    return st;
}

TF_API tf_status tf_config_get_bool(const tf_config *cfg, const char *key, int *out)
{
    const tfc_node *n;
    tf_status st = get_node(cfg, key, out, "tf_config_get_bool", &n);
    int v = 0;
    if (st == TF_OK && (st = conv_bool(cfg, key, n, &v)) == TF_OK)
        *out = v;
    return st;
}

TF_API tf_status tf_config_get_string(const tf_config *cfg, const char *key,
                                      const char **out)
{
    const tfc_node *n;
    tf_status st = get_node(cfg, key, out, "tf_config_get_string", &n);
    const char *v = NULL;
    if (st == TF_OK && (st = conv_string(cfg, key, n, &v)) == TF_OK)
        *out = v;
    return st;
}

/* ---- internal helpers (io/config.h) ------------------------------------ */

const char *tfi_config_name(const tf_config *cfg)
{
    return cfg ? cfg->name : "<config>";
}

int tfi_config_line(const tf_config *cfg, const char *key)
{
    const tfc_node *n = cfg && key ? lookup(cfg, key) : NULL;
    return n ? n->line : 0;
}

int tfi_config_is_null(const tf_config *cfg, const char *key)
{
    const tfc_node *n = cfg && key ? lookup(cfg, key) : NULL;
    return n && is_null(n);
}

/* ---- optional keys (io/config.h) --------------------------------------- */

/* A key that is present and not null (GPT-NeoX reads null as "the
 * default"). */
static int present(const tf_config *cfg, const char *key)
{
    const tfc_node *n = lookup(cfg, key);
    return n && !is_null(n);
}

tf_status tfi_config_opt_int(const tf_config *cfg, const char *key, int64_t *val, int *found)
{
    *found = present(cfg, key);
    return *found ? tf_config_get_int(cfg, key, val) : TF_OK;
}

tf_status tfi_config_opt_double(const tf_config *cfg, const char *key, double *val, int *found)
{
    *found = present(cfg, key);
    if (!*found)
        return TF_OK;
    double v = 0;
    tf_status st = tf_config_get_double(cfg, key, &v);
    if (st != TF_OK)
        return st;
    if (!isfinite(v))
        return tfi_config_fail(cfg, TF_ERR_CONFIG, tfi_config_line(cfg, key),
                               "'%s' (%g) must be finite", key, v);
    *val = v;
    return TF_OK;
}

tf_status tfi_config_opt_string(const tf_config *cfg, const char *key, const char **val,
                                int *found)
{
    *found = present(cfg, key);
    if (!*found) {
        *val = NULL;
        return TF_OK;
    }
    return tf_config_get_string(cfg, key, val);
}
