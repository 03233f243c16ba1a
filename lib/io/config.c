/*
 * config.c -- YAML configurations through libyaml: a small owned tree,
 * dotted look-ups, and the model parameters of the official configs.
 *
 * See tokenformer.h ("Configurations") for the API and io/config.h for the
 * typing rules.  Nothing here prints, aborts or keeps global mutable state.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "internal.h"
#include "io/config.h"

/* ------------------------------------------------------------------------
 * The keys this library (model) and its trainer (optimizer, schedule) read.
 * Every other top-level key is reported by tf_config_ignored_key().  This is
 * the ONE place to extend when a new top-level key gets used.  Spell keys
 * with '_'; '-' in a config matches too.
 * ---------------------------------------------------------------------- */
static const char *const tfc_used_keys[] = {
    /* the model: tf_config_model_params() */
    "num_layers", "hidden_size", "num_attention_heads",
    "qkv_slot_num", "proj_slot_num", "ffn_slot_num",
    "rotary_pct", "rotary_emb_base", "norm_activation_type",
    "seq_length", "layernorm_epsilon", "vocab_size", "init_method_std",
    "seed",
    /* model settings this implementation fixes; checked when present */
    "pos_emb", "norm", "final_norm", "no_weight_tying",
    "hidden_dropout", "attention_dropout", "max_position_embeddings",
    /* optimizer and trainer */
    "optimizer", "min_lr", "weight_decay", "gradient_clipping",
    "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
    "train_iters", "lr_decay_iters", "lr_decay_style", "warmup", "warmup_steps",
};

/* Official configs take the vocabulary from the GPT-NeoX-20B tokenizer:
 * 50277 tokens padded to a multiple of 128. */
#define TFC_DEFAULT_VOCAB 50304

/* Deeper nesting is refused (it keeps the recursive walks bounded). */
#define TFC_MAX_DEPTH 64

/* A config file larger than this is not a config. */
#define TFC_MAX_FILE_BYTES ((size_t)64 << 20)

/* ---- the tree ---------------------------------------------------------- */

typedef enum tfc_kind { TFC_SCALAR, TFC_SEQ, TFC_MAP } tfc_kind;

typedef struct tfc_node tfc_node;

typedef struct tfc_entry {
    char *key;       /* as written in the file */
    int line;        /* line of the key */
    tfc_node *value;
} tfc_entry;

struct tfc_node {
    tfc_kind kind;
    int line, col;       /* 1-based, where the node starts */
    /* scalar */
    char *text;          /* NUL-terminated copy of the value */
    int quoted;          /* quoted or tagged !!str: a string, never a number */
    /* sequence (items) or mapping (entries) */
    tfc_node **items;
    tfc_entry *entries;
    size_t count, cap;
    /* mapping under construction: a key waiting for its value */
    char *pending_key;
    int pending_line;
    int has_pending;
};

struct tf_config {
    tfi_errbuf err;     /* last failed look-up on this config */
    char *name;         /* path, or "<string>" */
    tfc_node *root;     /* a mapping */
    const char **ignored; /* borrowed from the root's keys, file order */
    int num_ignored;
};

static void node_free(tfc_node *n)
{
    if (!n)
        return;
    free(n->text);
    for (size_t i = 0; n->items && i < n->count; i++)
        node_free(n->items[i]);
    for (size_t i = 0; n->entries && i < n->count; i++) {
        free(n->entries[i].key);
        node_free(n->entries[i].value);
    }
    free(n->items);
    free(n->entries);
    free(n->pending_key);
    free(n);
}

static const char *kind_name(tfc_kind k)
{
    switch (k) {
    case TFC_SCALAR: return "scalar";
    case TFC_SEQ: return "sequence";
    case TFC_MAP: return "mapping";
    }
    return "node";
}

static int mark_line(yaml_mark_t m)
{
    return m.line < (size_t)INT_MAX - 1 ? (int)m.line + 1 : INT_MAX;
}

static int mark_col(yaml_mark_t m)
{
    return m.column < (size_t)INT_MAX - 1 ? (int)m.column + 1 : INT_MAX;
}

/* GPT-NeoX treats '-' and '_' in keys as the same character. */
static int key_char(char c)
{
    return c == '-' ? '_' : (unsigned char)c;
}

static int key_eq_n(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (key_char(a[i]) != key_char(b[i]))
            return 0;
    return 1;
}

static int key_eq(const char *key, const char *s, size_t slen)
{
    return strlen(key) == slen && key_eq_n(key, s, slen);
}

/* ---- building the tree from libyaml events ----------------------------- */

typedef struct tfc_builder {
    const char *name;
    tfc_node *root;
    tfc_node *stack[TFC_MAX_DEPTH];
    int depth;
    int docs;
} tfc_builder;

static tf_status grow_array(void **arr, size_t *cap, size_t count, size_t elem)
{
    if (count < *cap)
        return TF_OK;
    size_t ncap = *cap ? *cap * 2 : 8;
    if (ncap > SIZE_MAX / elem)
        return TF_ERR_NOMEM;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return TF_ERR_NOMEM;
    *arr = p;
    *cap = ncap;
    return TF_OK;
}

/* Hands node to its parent (or makes it the root).  Consumes node in every
 * case: on failure it is freed, and a mapping key's scalar node is freed
 * once its text moved to the parent. */
static tf_status attach(tfc_builder *b, tfc_node *node)
{
    if (b->depth == 0) {
        if (b->root) { /* not reachable with one document; be safe */
            int line = node->line;
            node_free(node);
            return tfi_fail(NULL, TF_ERR_CONFIG, "%s:%d: more than one top-level node",
                            b->name, line);
        }
        b->root = node;
        return TF_OK;
    }
    tfc_node *parent = b->stack[b->depth - 1];
    if (parent->kind == TFC_SEQ) {
        if (grow_array((void **)&parent->items, &parent->cap, parent->count,
                       sizeof *parent->items) != TF_OK) {
            node_free(node);
            return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", b->name);
        }
        parent->items[parent->count++] = node;
        return TF_OK;
    }
    if (!parent->has_pending) { /* node is a key */
        if (node->kind != TFC_SCALAR) {
            int line = node->line;
            const char *k = kind_name(node->kind);
            node_free(node);
            return tfi_fail(NULL, TF_ERR_CONFIG,
                            "%s:%d: a %s used as a mapping key (keys must be scalars)",
                            b->name, line, k);
        }
        size_t klen = strlen(node->text);
        for (size_t i = 0; i < parent->count; i++) {
            const tfc_entry *e = &parent->entries[i];
            if (!key_eq(e->key, node->text, klen))
                continue;
            tf_status st;
            if (strcmp(e->key, node->text) == 0)
                st = tfi_fail(NULL, TF_ERR_CONFIG,
                              "%s:%d: duplicate key '%s' (first at line %d)",
                              b->name, node->line, node->text, e->line);
            else
                st = tfi_fail(NULL, TF_ERR_CONFIG,
                              "%s:%d: duplicate key '%s' (same as '%s' at line %d: "
                              "'-' and '_' are the same in keys)",
                              b->name, node->line, node->text, e->key, e->line);
            node_free(node);
            return st;
        }
        parent->pending_key = node->text;
        parent->pending_line = node->line;
        parent->has_pending = 1;
        node->text = NULL;
        node_free(node);
        return TF_OK;
    }
    if (grow_array((void **)&parent->entries, &parent->cap, parent->count,
                   sizeof *parent->entries) != TF_OK) {
        node_free(node);
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", b->name);
    }
    tfc_entry *e = &parent->entries[parent->count++];
    e->key = parent->pending_key;
    e->line = parent->pending_line;
    e->value = node;
    parent->pending_key = NULL;
    parent->has_pending = 0;
    return TF_OK;
}

static tfc_node *node_new(tfc_kind kind, yaml_mark_t mark)
{
    tfc_node *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->line = mark_line(mark);
        n->col = mark_col(mark);
    }
    return n;
}

static tf_status on_scalar(tfc_builder *b, const yaml_event_t *ev)
{
    tfc_node *n = node_new(TFC_SCALAR, ev->start_mark);
    size_t len = ev->data.scalar.length;
    if (n && len < SIZE_MAX)
        n->text = malloc(len + 1);
    if (!n || !n->text) {
        node_free(n);
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", b->name);
    }
    memcpy(n->text, ev->data.scalar.value, len);
    n->text[len] = '\0';
    const char *tag = (const char *)ev->data.scalar.tag;
    n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
                (tag && strcmp(tag, YAML_STR_TAG) == 0);
    return attach(b, n);
}

static tf_status on_container_start(tfc_builder *b, tfc_kind kind, yaml_mark_t mark)
{
    if (b->depth >= TFC_MAX_DEPTH)
        return tfi_fail(NULL, TF_ERR_CONFIG, "%s:%d: nested deeper than %d levels",
                        b->name, mark_line(mark), TFC_MAX_DEPTH);
    tfc_node *n = node_new(kind, mark);
    if (!n)
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", b->name);
    tf_status st = attach(b, n);
    if (st != TF_OK)
        return st;
    b->stack[b->depth++] = n;
    return TF_OK;
}

/* 1-based line of byte offset off in text. */
static int offset_line(const unsigned char *text, size_t len, size_t off)
{
    int line = 1;
    for (size_t i = 0; i < off && i < len; i++)
        if (text[i] == '\n' && line < INT_MAX)
            line++;
    return line;
}

static tf_status syntax_error(const char *name, const yaml_parser_t *p,
                              const unsigned char *text, size_t len)
{
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_MEMORY_ERROR)
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory while parsing YAML", name);
    if (p->error == YAML_READER_ERROR) /* bad encoding, control characters */
        return tfi_fail(NULL, TF_ERR_CONFIG, "%s:%d: invalid YAML input at byte %zu: %s",
                        name, offset_line(text, len, p->problem_offset),
                        p->problem_offset, problem);
    if (p->context)
        return tfi_fail(NULL, TF_ERR_CONFIG,
                        "%s:%d:%d: YAML syntax error: %s (%s at line %d)", name,
                        mark_line(p->problem_mark), mark_col(p->problem_mark), problem,
                        p->context, mark_line(p->context_mark));
    return tfi_fail(NULL, TF_ERR_CONFIG, "%s:%d:%d: YAML syntax error: %s", name,
                    mark_line(p->problem_mark), mark_col(p->problem_mark), problem);
}

static tf_status build_tree(const char *name, const unsigned char *text, size_t len,
                            tfc_node **root)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: cannot initialise the YAML parser", name);
    yaml_parser_set_input_string(&parser, text, len);

    tfc_builder b;
    memset(&b, 0, sizeof b);
    b.name = name;
    tf_status st = TF_OK;
    int done = 0;
    while (!done && st == TF_OK) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            st = syntax_error(name, &parser, text, len);
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++b.docs > 1)
                st = tfi_fail(NULL, TF_ERR_CONFIG,
                              "%s:%d: a second YAML document (a config is one document)",
                              name, mark_line(ev.start_mark));
            break;
        case YAML_ALIAS_EVENT:
            st = tfi_fail(NULL, TF_ERR_CONFIG,
                          "%s:%d: YAML aliases (*%s) are not supported in configs", name,
                          mark_line(ev.start_mark), (const char *)ev.data.alias.anchor);
            break;
        case YAML_SCALAR_EVENT:
            st = on_scalar(&b, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            st = on_container_start(&b, TFC_SEQ, ev.start_mark);
            break;
        case YAML_MAPPING_START_EVENT:
            st = on_container_start(&b, TFC_MAP, ev.start_mark);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (b.depth > 0)
                b.depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (st != TF_OK) {
        node_free(b.root);
        return st;
    }
    if (!b.root)
        return tfi_fail(NULL, TF_ERR_CONFIG,
                        "%s: empty configuration (the top level must be a mapping)", name);
    if (b.root->kind != TFC_MAP) {
        int line = b.root->line;
        const char *k = kind_name(b.root->kind);
        node_free(b.root);
        return tfi_fail(NULL, TF_ERR_CONFIG,
                        "%s:%d: the top level is a %s; a configuration must be a mapping",
                        name, line, k);
    }
    *root = b.root;
    return TF_OK;
}

static int is_used_key(const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < sizeof tfc_used_keys / sizeof tfc_used_keys[0]; i++)
        if (key_eq(tfc_used_keys[i], key, len))
            return 1;
    return 0;
}

static tf_status config_from_text(const char *name, const unsigned char *text, size_t len,
                                  tf_config **out)
{
    tfc_node *root = NULL;
    tf_status st = build_tree(name, text, len, &root);
    if (st != TF_OK)
        return st;
    tf_config *cfg = calloc(1, sizeof *cfg);
    if (cfg) {
        cfg->root = root;
        cfg->name = strdup(name);
        if (root->count)
            cfg->ignored = malloc(root->count * sizeof *cfg->ignored);
    }
    if (!cfg || !cfg->name || (root->count && !cfg->ignored)) {
        if (cfg)
            tf_config_free(cfg);
        else
            node_free(root);
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", name);
    }
    for (size_t i = 0; i < root->count && cfg->num_ignored < INT_MAX; i++)
        if (!is_used_key(root->entries[i].key))
            cfg->ignored[cfg->num_ignored++] = root->entries[i].key;
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
    char ebuf[128];
    FILE *f = fopen(path, "rb");
    if (!f) {
        errno_text(errno, ebuf, sizeof ebuf);
        return tfi_fail(NULL, TF_ERR_IO, "%s: cannot open: %s", path, ebuf);
    }
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    tf_status st = TF_OK;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16384;
            unsigned char *p = ncap <= TFC_MAX_FILE_BYTES ? realloc(buf, ncap) : NULL;
            if (!p) {
                st = ncap > TFC_MAX_FILE_BYTES
                         ? tfi_fail(NULL, TF_ERR_CONFIG,
                                    "%s: larger than %zu MiB; not a configuration", path,
                                    TFC_MAX_FILE_BYTES >> 20)
                         : tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = p;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0 || len < cap) {
            if (ferror(f)) {
                errno_text(errno, ebuf, sizeof ebuf);
                st = tfi_fail(NULL, TF_ERR_IO, "%s: read error: %s", path, ebuf);
            }
            if (st != TF_OK || feof(f))
                break;
        }
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
    node_free(cfg->root);
    free(cfg->ignored);
    free(cfg->name);
    free(cfg);
}

TF_API const char *tf_config_errmsg(const tf_config *cfg)
{
    return cfg ? cfg->err.msg : "";
}

TF_API int tf_config_num_ignored(const tf_config *cfg)
{
    return cfg ? cfg->num_ignored : 0;
}

TF_API const char *tf_config_ignored_key(const tf_config *cfg, int i)
{
    if (!cfg || i < 0 || i >= cfg->num_ignored)
        return NULL;
    return cfg->ignored[i];
}

/* ---- look-ups ----------------------------------------------------------- */

/* Resolves a dotted path: mapping keys (which may themselves contain dots:
 * the whole remaining path is tried first) and decimal sequence indices. */
static const tfc_node *find_path(const tfc_node *n, const char *path, size_t len)
{
    if (n->kind == TFC_MAP) {
        for (size_t i = 0; i < n->count; i++)
            if (key_eq(n->entries[i].key, path, len))
                return n->entries[i].value;
        for (size_t i = 0; i < n->count; i++) {
            const char *key = n->entries[i].key;
            size_t klen = strlen(key);
            if (klen < len && path[klen] == '.' && key_eq_n(key, path, klen)) {
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
static tfi_errbuf *cfg_eb(const tf_config *cfg)
{
    return (tfi_errbuf *)&cfg->err;
}

/* Fails with "name:line: message" (or "name: message" for line 0). */
__attribute__((format(printf, 4, 5)))
static tf_status cfg_fail(const tf_config *cfg, tf_status st, int line, const char *fmt, ...)
{
    char msg[TFI_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        return tfi_fail(cfg_eb(cfg), st, "%s:%d: %s", cfg->name, line, msg);
    return tfi_fail(cfg_eb(cfg), st, "%s: %s", cfg->name, msg);
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
        return cfg_fail(cfg, TF_ERR_CONFIG, n->line, "'%s' is %s, not %s", key, what_is(n),
                        wanted);
    return cfg_fail(cfg, TF_ERR_CONFIG, n->line, "'%s' (%s%.64s%s) is %s, not %s", key,
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
        return cfg_fail(cfg, TF_ERR_CONFIG, n->line,
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
        return cfg_fail(cfg, TF_ERR_CONFIG, n->line,
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
        return tfi_fail(cfg_eb(cfg), TF_ERR_ARGUMENT, "%s: %s is NULL", fn,
                        !key ? "key" : "out");
    *node = lookup(cfg, key);
    if (!*node)
        return tfi_fail(cfg_eb(cfg), TF_ERR_NOT_FOUND, "%s: no key '%s'", cfg->name, key);
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

/* ---- model parameters --------------------------------------------------- */

/* An optional or required integer model key in [lo, hi].  Absent or null
 * (GPT-NeoX: "use the default") leaves *val alone and sets *line = 0. */
static tf_status model_int(const tf_config *cfg, const char *key, int required,
                           int64_t lo, int64_t hi, int64_t *val, int *line)
{
    const tfc_node *n = lookup(cfg, key);
    *line = 0;
    if (!n || is_null(n)) {
        if (!required)
            return TF_OK;
        if (n)
            return cfg_fail(cfg, TF_ERR_CONFIG, n->line, "required key '%s' is null", key);
        return cfg_fail(cfg, TF_ERR_CONFIG, 0, "missing required key '%s'", key);
    }
    int64_t v = 0;
    tf_status st = conv_int(cfg, key, n, &v);
    if (st != TF_OK)
        return st;
    if (v < lo)
        return cfg_fail(cfg, TF_ERR_CONFIG, n->line, "'%s' (%lld) must be at least %lld",
                        key, (long long)v, (long long)lo);
    if (v > hi)
        return cfg_fail(cfg, TF_ERR_CONFIG, n->line, "'%s' (%lld) is too large (at most %lld)",
                        key, (long long)v, (long long)hi);
    *val = v;
    *line = n->line;
    return TF_OK;
}

/* An optional finite number; absent or null leaves *val alone. */
static tf_status model_double(const tf_config *cfg, const char *key, double *val, int *line)
{
    const tfc_node *n = lookup(cfg, key);
    *line = 0;
    if (!n || is_null(n))
        return TF_OK;
    double v = 0;
    tf_status st = conv_double(cfg, key, n, &v);
    if (st != TF_OK)
        return st;
    if (!isfinite(v))
        return cfg_fail(cfg, TF_ERR_CONFIG, n->line, "'%s' (%.64s) must be finite", key,
                        n->text);
    *val = v;
    *line = n->line;
    return TF_OK;
}

/* An optional string; absent or null gives *val = NULL. */
static tf_status model_string(const tf_config *cfg, const char *key, const char **val,
                              int *line)
{
    const tfc_node *n = lookup(cfg, key);
    *val = NULL;
    *line = 0;
    if (!n || is_null(n))
        return TF_OK;
    *line = n->line;
    return conv_string(cfg, key, n, val);
}

/* A GPT-NeoX setting that this implementation supports with one value only. */
static tf_status model_fixed_string(const tf_config *cfg, const char *key,
                                    const char *only, const char *what)
{
    const char *s;
    int line;
    tf_status st = model_string(cfg, key, &s, &line);
    if (st != TF_OK)
        return st;
    if (s && strcmp(s, only) != 0)
        return cfg_fail(cfg, TF_ERR_CONFIG, line,
                        "'%s' is '%.64s', but libtokenformer supports only '%s' (%s)", key, s,
                        only, what);
    return TF_OK;
}

static tf_status model_no_dropout(const tf_config *cfg, const char *key)
{
    double p = 0;
    int line;
    tf_status st = model_double(cfg, key, &p, &line);
    if (st != TF_OK)
        return st;
    if (p != 0)
        return cfg_fail(cfg, TF_ERR_CONFIG, line,
                        "'%s' is %g, but libtokenformer does not support dropout (it must "
                        "be 0, as in every official config)",
                        key, p);
    return TF_OK;
}

TF_API tf_status tf_config_model_params(const tf_config *cfg, tf_model_params *out)
{
    if (!cfg)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_config_model_params: cfg is NULL");
    if (!out)
        return tfi_fail(cfg_eb(cfg), TF_ERR_ARGUMENT, "tf_config_model_params: out is NULL");

    tf_model_params p = tf_model_default_params();
    p.struct_size = sizeof p;
    tf_status st;
    int64_t v;
    int line_d, line_h, line;

    /* Integers: required structure first, in the order of the configs. */
    v = p.num_layers;
    if ((st = model_int(cfg, "num_layers", 1, 1, INT32_MAX, &v, &line)) != TF_OK)
        return st;
    p.num_layers = (int32_t)v;
    v = p.hidden_size;
    if ((st = model_int(cfg, "hidden_size", 1, 1, INT32_MAX, &v, &line_d)) != TF_OK)
        return st;
    p.hidden_size = (int32_t)v;
    v = p.num_attention_heads;
    if ((st = model_int(cfg, "num_attention_heads", 1, 1, INT32_MAX, &v, &line_h)) != TF_OK)
        return st;
    p.num_attention_heads = (int32_t)v;
    if ((st = model_int(cfg, "qkv_slot_num", 1, 1, INT64_MAX, &p.qkv_slot_num, &line)) != TF_OK ||
        (st = model_int(cfg, "proj_slot_num", 1, 1, INT64_MAX, &p.proj_slot_num, &line)) != TF_OK ||
        (st = model_int(cfg, "ffn_slot_num", 1, 1, INT64_MAX, &p.ffn_slot_num, &line)) != TF_OK ||
        (st = model_int(cfg, "seq_length", 1, 1, INT64_MAX, &p.seq_length, &line)) != TF_OK)
        return st;
    p.vocab_size = TFC_DEFAULT_VOCAB;
    if ((st = model_int(cfg, "vocab_size", 0, 1, INT64_MAX, &p.vocab_size, &line)) != TF_OK)
        return st;
    v = 0;
    if ((st = model_int(cfg, "seed", 0, 0, INT64_MAX, &v, &line)) != TF_OK)
        return st;
    if (line)
        p.seed = (uint64_t)v;

    /* Numbers. */
    int line_pct;
    if ((st = model_double(cfg, "rotary_pct", &p.rotary_pct, &line_pct)) != TF_OK)
        return st;
    if (!(p.rotary_pct >= 0 && p.rotary_pct <= 1))
        return cfg_fail(cfg, TF_ERR_CONFIG, line_pct, "'rotary_pct' (%g) must be in [0, 1]",
                        p.rotary_pct);
    if ((st = model_double(cfg, "rotary_emb_base", &p.rotary_emb_base, &line)) != TF_OK)
        return st;
    if (!(p.rotary_emb_base > 0))
        return cfg_fail(cfg, TF_ERR_CONFIG, line, "'rotary_emb_base' (%g) must be > 0",
                        p.rotary_emb_base);
    if ((st = model_double(cfg, "layernorm_epsilon", &p.layernorm_epsilon, &line)) != TF_OK)
        return st;
    if (!(p.layernorm_epsilon > 0))
        return cfg_fail(cfg, TF_ERR_CONFIG, line, "'layernorm_epsilon' (%g) must be > 0",
                        p.layernorm_epsilon);
    if ((st = model_double(cfg, "init_method_std", &p.init_method_std, &line)) != TF_OK)
        return st;
    if (!(p.init_method_std > 0))
        return cfg_fail(cfg, TF_ERR_CONFIG, line, "'init_method_std' (%g) must be > 0",
                        p.init_method_std);

    /* The Pattention normalisation. */
    const char *s;
    if ((st = model_string(cfg, "norm_activation_type", &s, &line)) != TF_OK)
        return st;
    if (s) {
        if (strcmp(s, "l2_norm_gelu") == 0)
            p.norm = TF_NORM_L2_NORM_GELU;
        else if (strcmp(s, "gelu_l2_norm") == 0)
            p.norm = TF_NORM_GELU_L2_NORM;
        else if (strcmp(s, "softmax") == 0)
            p.norm = TF_NORM_SOFTMAX;
        else
            return cfg_fail(cfg, TF_ERR_CONFIG, line,
                            "'norm_activation_type' has unknown value '%.64s' (expected "
                            "'l2_norm_gelu', 'gelu_l2_norm' or 'softmax')",
                            s);
    }

    /* GPT-NeoX settings that this implementation fixes. */
    if ((st = model_fixed_string(cfg, "pos_emb", "rotary", "rotary position embeddings")) != TF_OK ||
        (st = model_fixed_string(cfg, "norm", "layernorm_nonparam",
                                 "LayerNorm without weight and bias in the layers")) != TF_OK ||
        (st = model_fixed_string(cfg, "final_norm", "layernorm",
                                 "a LayerNorm with weight and bias before the output")) != TF_OK)
        return st;
    const tfc_node *n = lookup(cfg, "no_weight_tying");
    if (n && !is_null(n)) {
        int untied = 0;
        if ((st = conv_bool(cfg, "no_weight_tying", n, &untied)) != TF_OK)
            return st;
        if (untied)
            return cfg_fail(cfg, TF_ERR_CONFIG, n->line,
                            "'no_weight_tying' is true, but libtokenformer supports only a "
                            "tied output layer (the embedding): it must be false");
    }
    if ((st = model_no_dropout(cfg, "hidden_dropout")) != TF_OK ||
        (st = model_no_dropout(cfg, "attention_dropout")) != TF_OK)
        return st;

    /* Consistency. */
    if (p.hidden_size % p.num_attention_heads != 0)
        return cfg_fail(cfg, TF_ERR_CONFIG, line_d,
                        "'hidden_size' (%d) is not divisible by 'num_attention_heads' (%d)",
                        (int)p.hidden_size, (int)p.num_attention_heads);
    int64_t head_dim = p.hidden_size / p.num_attention_heads;
    int64_t rot = p.rotary_pct == 1.0 ? head_dim : (int64_t)((double)head_dim * p.rotary_pct);
    if (rot % 2 != 0)
        return cfg_fail(cfg, TF_ERR_CONFIG, line_pct ? line_pct : line_h,
                        "'rotary_pct' (%g%s) gives %lld rotary dimensions per head "
                        "(head_dim %lld = %d / %d), but rotary needs an even number",
                        p.rotary_pct, line_pct ? "" : ", the default", (long long)rot,
                        (long long)head_dim, (int)p.hidden_size, (int)p.num_attention_heads);

    /* write only what the caller's struct holds (an older, shorter layout) */
    return tfi_params_out(out, &p, sizeof p, TFI_PARAMS_MIN(tf_model_params, num_layers),
                          "tf_config_model_params", "tf_model_params", cfg_eb(cfg));
}
