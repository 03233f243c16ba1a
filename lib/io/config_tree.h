/*
 * config_tree.h -- the tree a tf_config owns, as the config files share it
 * (internal): config_yaml.c builds it from YAML, config.c looks things up
 * in it, config_keys.c sorts its top-level keys into used and ignored.
 */
#ifndef TF_IO_CONFIG_TREE_H
#define TF_IO_CONFIG_TREE_H

#include <stddef.h>
#include <string.h>

#include "internal.h"

/* A config file larger than this is not a config (the official ones are a
 * few KB). */
#define TFC_MAX_FILE_BYTES ((size_t)64 << 20)
/* Nodes (keys, values, items) in one config: bounds the memory a hostile
 * file can make the parser take (about 100 bytes a node). */
#define TFC_MAX_NODES ((size_t)1 << 21)
/* Deeper nesting is refused (it keeps the recursive walks bounded). */
#define TFC_MAX_DEPTH 64

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
    /* mapping: open-addressing index of the entries by key (entry + 1, 0
     * empty; '-' and '_' hash alike), a power of two over twice count */
    size_t *index;
    size_t index_cap;
    /* mapping under construction: a key waiting for its value */
    char *pending_key;
    int pending_line;
    int has_pending;
};

struct tf_config {
    tfi_errbuf err;       /* last failed look-up on this config */
    char *name;           /* path, or "<string>" */
    tfc_node *root;       /* a mapping */
    const char **ignored; /* borrowed from the root's keys, file order */
    int num_ignored;
    char **declared;      /* top-level keys a program declared (owned copies) */
    int num_declared;
};

/* Parses YAML text into a tree whose root is a mapping.  TF_ERR_CONFIG
 * "name:line: ..." for bad YAML, duplicate keys, aliases, more than one
 * document, nesting or size beyond the limits above; TF_ERR_NOMEM. */
tf_status tfc_build_tree(const char *name, const unsigned char *text, size_t len,
                         tfc_node **root);
void tfc_node_free(tfc_node *n);

/* The entry of a mapping whose key equals s[0..len) ('-' == '_'), or NULL. */
const tfc_entry *tfc_map_find(const tfc_node *map, const char *s, size_t len);

/* GPT-NeoX treats '-' and '_' in keys as the same character. */
static inline int tfc_key_char(char c)
{
    return c == '-' ? '_' : (unsigned char)c;
}

static inline int tfc_key_eq_n(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tfc_key_char(a[i]) != tfc_key_char(b[i]))
            return 0;
    return 1;
}

static inline int tfc_key_eq(const char *key, const char *s, size_t slen)
{
    return strlen(key) == slen && tfc_key_eq_n(key, s, slen);
}

/* Recomputes cfg->ignored from the root's keys, the library's and the
 * declared ones (config_keys.c).  TF_ERR_NOMEM leaves cfg as it was. */
tf_status tfc_update_ignored(tf_config *cfg);

#endif /* TF_IO_CONFIG_TREE_H */
