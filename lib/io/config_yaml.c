/*
 * config_yaml.c -- YAML text to the tree a tf_config owns, through the
 * libyaml event stream: mappings, sequences and scalars, each with its
 * line.  One document, no aliases; duplicate keys (also when they differ
 * only in '-' and '_') are refused.  Each mapping keeps a hash index of its
 * keys, so that duplicates are found, and keys looked up, in constant time:
 * a config of many keys parses in time linear in its size.  The size and
 * node-count limits of config_tree.h bound what a hostile file can take.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "io/config_tree.h"

void tfc_node_free(tfc_node *n)
{
    if (!n)
        return;
    free(n->text);
    for (size_t i = 0; n->items && i < n->count; i++)
        tfc_node_free(n->items[i]);
    for (size_t i = 0; n->entries && i < n->count; i++) {
        free(n->entries[i].key);
        tfc_node_free(n->entries[i].value);
    }
    free(n->items);
    free(n->entries);
    free(n->index);
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

/* ---- the key index of a mapping ---------------------------------------- */

static size_t key_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint64_t)tfc_key_char(s[i])) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 32));
}

/* The index slot of key s[0..len): the one holding its entry, or the empty
 * slot where it would go. */
static size_t *index_slot(const tfc_node *map, const char *s, size_t len)
{
    size_t mask = map->index_cap - 1, i = key_hash(s, len) & mask;
    for (;;) {
        size_t *slot = &map->index[i];
        if (*slot == 0 || tfc_key_eq(map->entries[*slot - 1].key, s, len))
            return slot;
        i = (i + 1) & mask;
    }
}

const tfc_entry *tfc_map_find(const tfc_node *map, const char *s, size_t len)
{
    if (map->index_cap == 0)
        return NULL;
    size_t *slot = index_slot(map, s, len);
    return *slot ? &map->entries[*slot - 1] : NULL;
}

/* Makes room in the index for one more entry (load at most 1/2). */
static tf_status index_reserve(tfc_node *map)
{
    if (2 * (map->count + 1) <= map->index_cap)
        return TF_OK;
    size_t cap = map->index_cap ? 2 * map->index_cap : 16;
    size_t *fresh = calloc(cap, sizeof *fresh);
    if (!fresh)
        return TF_ERR_NOMEM;
    size_t *old = map->index;
    map->index = fresh;
    map->index_cap = cap;
    for (size_t e = 0; e < map->count; e++) {
        const char *k = map->entries[e].key;
        *index_slot(map, k, strlen(k)) = e + 1;
    }
    free(old);
    return TF_OK;
}

/* ---- building the tree from libyaml events ----------------------------- */

typedef struct tfc_builder {
    const char *name;
    tfc_node *root;
    tfc_node *stack[TFC_MAX_DEPTH];
    int depth;
    int docs;
    size_t nodes;
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

/* Hands node to its parent (or makes it the root).  Consumes node in every
 * case: on failure it is freed, and a mapping key's scalar node is freed
 * once its text moved to the parent. */
static tf_status attach(tfc_builder *b, tfc_node *node)
{
    if (++b->nodes > TFC_MAX_NODES) {
        int line = node->line;
        tfc_node_free(node);
        return tfi_fail(NULL, TF_ERR_CONFIG, "%s:%d: more than %zu keys and values; not a "
                        "configuration", b->name, line, TFC_MAX_NODES);
    }
    if (b->depth == 0) {
        if (b->root) { /* not reachable with one document; be safe */
            int line = node->line;
            tfc_node_free(node);
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
            tfc_node_free(node);
            return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", b->name);
        }
        parent->items[parent->count++] = node;
        return TF_OK;
    }
    if (!parent->has_pending) { /* node is a key */
        if (node->kind != TFC_SCALAR) {
            int line = node->line;
            const char *k = kind_name(node->kind);
            tfc_node_free(node);
            return tfi_fail(NULL, TF_ERR_CONFIG,
                            "%s:%d: a %s used as a mapping key (keys must be scalars)",
                            b->name, line, k);
        }
        const tfc_entry *e = tfc_map_find(parent, node->text, strlen(node->text));
        if (e) {
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
            tfc_node_free(node);
            return st;
        }
        parent->pending_key = node->text;
        parent->pending_line = node->line;
        parent->has_pending = 1;
        node->text = NULL;
        tfc_node_free(node);
        return TF_OK;
    }
    if (grow_array((void **)&parent->entries, &parent->cap, parent->count,
                   sizeof *parent->entries) != TF_OK ||
        index_reserve(parent) != TF_OK) {
        tfc_node_free(node);
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", b->name);
    }
    tfc_entry *e = &parent->entries[parent->count];
    e->key = parent->pending_key;
    e->line = parent->pending_line;
    e->value = node;
    *index_slot(parent, e->key, strlen(e->key)) = ++parent->count;
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
        tfc_node_free(n);
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

tf_status tfc_build_tree(const char *name, const unsigned char *text, size_t len,
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
        tfc_node_free(b.root);
        return st;
    }
    if (!b.root)
        return tfi_fail(NULL, TF_ERR_CONFIG,
                        "%s: empty configuration (the top level must be a mapping)", name);
    if (b.root->kind != TFC_MAP) {
        int line = b.root->line;
        const char *k = kind_name(b.root->kind);
        tfc_node_free(b.root);
        return tfi_fail(NULL, TF_ERR_CONFIG,
                        "%s:%d: the top level is a %s; a configuration must be a mapping",
                        name, line, k);
    }
    *root = b.root;
    return TF_OK;
}
