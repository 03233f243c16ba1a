/* tokenizer_map.c -- the tokenizer's look-up structures: hash maps of byte
 * strings -> int32 (vocabulary, added tokens, word cache) and uint64 ->
 * uint64 (merges), with open addressing, linear probing and a fixed
 * power-of-two capacity; and the byte trie that finds added tokens in a
 * text (longest match), its edges in a uint64 map. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

uint64_t tfi_hash_bytes(const void *p, size_t n)
{
    /* Eight bytes per multiply; a final avalanche so that the low bits (the
     * slot index) depend on every byte. */
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static size_t capacity_for(size_t entries)
{
    size_t cap = 16;
    while (cap < entries * 2)
        cap *= 2;
    return cap;
}

/* ---- strings -> int32 ----------------------------------------------------- */

tf_status tfi_strmap_init(tfi_strmap *m, size_t entries)
{
    size_t cap = capacity_for(entries);
    tfi_strslot *s = malloc(tfi_mul_size(cap, sizeof *s));
    if (!s)
        return TF_ERR_NOMEM;
    m->slots = s;
    m->mask = cap - 1;
    tfi_strmap_clear(m);
    return TF_OK;
}

void tfi_strmap_free(tfi_strmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->mask = 0;
    m->count = 0;
}

void tfi_strmap_clear(tfi_strmap *m)
{
    for (size_t i = 0; i <= m->mask; i++)
        m->slots[i].off = UINT32_MAX;
    m->count = 0;
}

int32_t tfi_strmap_get(const tfi_strmap *m, const char *arena, const char *key, size_t len,
                       uint64_t hash)
{
    if (!m->slots)
        return -1;
    uint32_t h32 = (uint32_t)hash;
    for (size_t i = hash & m->mask;; i = (i + 1) & m->mask) {
        const tfi_strslot *s = &m->slots[i];
        if (s->off == UINT32_MAX)
            return -1;
        if (s->hash == h32 && s->len == len && memcmp(arena + s->off, key, len) == 0)
            return s->val;
    }
}

void tfi_strmap_put(tfi_strmap *m, const char *arena, uint32_t off, uint32_t len, int32_t val,
                    uint64_t hash)
{
    uint32_t h32 = (uint32_t)hash;
    for (size_t i = hash & m->mask;; i = (i + 1) & m->mask) {
        tfi_strslot *s = &m->slots[i];
        if (s->off == UINT32_MAX) {
            s->hash = h32;
            s->off = off;
            s->len = len;
            s->val = val;
            m->count++;
            return;
        }
        if (s->hash == h32 && s->len == len && memcmp(arena + s->off, arena + off, len) == 0) {
            s->val = val;
            return;
        }
    }
}

/* ---- uint64 -> uint64 ------------------------------------------------------- */

static size_t mix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k;
}

tf_status tfi_u64map_init(tfi_u64map *m, size_t entries)
{
    size_t cap = capacity_for(entries);
    tfi_u64slot *s = malloc(tfi_mul_size(cap, sizeof *s));
    if (!s)
        return TF_ERR_NOMEM;
    for (size_t i = 0; i < cap; i++)
        s[i].key = UINT64_MAX;
    m->slots = s;
    m->mask = cap - 1;
    m->count = 0;
    return TF_OK;
}

void tfi_u64map_free(tfi_u64map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->mask = 0;
    m->count = 0;
}

int tfi_u64map_get(const tfi_u64map *m, uint64_t key, uint64_t *val)
{
    if (!m->slots)
        return 0;
    for (size_t i = mix64(key) & m->mask;; i = (i + 1) & m->mask) {
        const tfi_u64slot *s = &m->slots[i];
        if (s->key == key) {
            *val = s->val;
            return 1;
        }
        if (s->key == UINT64_MAX)
            return 0;
    }
}

void tfi_u64map_put(tfi_u64map *m, uint64_t key, uint64_t val)
{
    for (size_t i = mix64(key) & m->mask;; i = (i + 1) & m->mask) {
        tfi_u64slot *s = &m->slots[i];
        if (s->key == key) {
            s->val = val;
            return;
        }
        if (s->key == UINT64_MAX) {
            s->key = key;
            s->val = val;
            m->count++;
            return;
        }
    }
}

/* ---- byte trie ----------------------------------------------------------------- */

tf_status tfi_trie_init(tfi_trie *t, size_t bytes)
{
    memset(t, 0, sizeof *t);
    if (bytes >= UINT32_MAX / 2)
        return TF_ERR_NOMEM;
    t->cap = (uint32_t)bytes + 1;
    t->term = calloc(t->cap, 1);
    if (!t->term || tfi_u64map_init(&t->edges, bytes) != TF_OK) {
        tfi_trie_free(t);
        return TF_ERR_NOMEM;
    }
    t->nodes = 1;
    return TF_OK;
}

void tfi_trie_free(tfi_trie *t)
{
    tfi_u64map_free(&t->edges);
    free(t->term);
    memset(t, 0, sizeof *t);
}

void tfi_trie_insert(tfi_trie *t, const unsigned char *s, size_t n)
{
    uint64_t node = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t child;
        if (!tfi_u64map_get(&t->edges, node << 8 | s[i], &child)) {
            child = t->nodes++;
            tfi_u64map_put(&t->edges, node << 8 | s[i], child);
        }
        node = child;
    }
    t->term[node] = 1;
    if (!t->first[s[0]]) {
        t->first[s[0]] = 1;
        t->n_first++;
        t->one_first = s[0];
    }
}

size_t tfi_trie_match(const tfi_trie *t, const unsigned char *s, size_t n)
{
    if (n == 0 || !t->first[s[0]])
        return 0;
    uint64_t node = 0;
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        if (!tfi_u64map_get(&t->edges, node << 8 | s[i], &node))
            break;
        if (t->term[node])
            best = i + 1;
    }
    return best;
}
