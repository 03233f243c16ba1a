/*
 * tokenizer_bpe.c -- byte-level BPE: GPT-2's byte-to-unicode table, the
 * merge loop, and the cache of words already encoded.
 *
 * The merge loop: a word's bytes start as one symbol each (the vocabulary
 * id of the byte's symbol); then, repeatedly, the adjacent pair with the
 * lowest merge rank -- the leftmost of equal ranks -- is replaced by its
 * merge, until no adjacent pair has one.  This is what the reference does
 * (its priority is rank + position / length).  Candidates wait in a binary
 * min-heap keyed by (rank, position of the left symbol); a merge only
 * changes the pairs on either side of it, which are pushed anew, and a
 * popped candidate whose two symbols are no longer what it was made from
 * is stale and skipped.  A symbol only ever grows, so its id never returns
 * to an earlier value and the check is exact.  O(n log n) for n bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

/* ---- the byte-level alphabet ---------------------------------------------- */

/* Printable Latin-1 bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for
 * themselves; the 68 others, in byte order, for U+0100 upwards: 0x00..0x20
 * (33 bytes), 0x7F..0xA0 (34) and 0xAD. */
uint32_t tfi_byte_to_unicode(unsigned b)
{
    if (b <= 0x20)
        return 0x100 + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x100 + 33 + (b - 0x7F);
    if (b == 0xAD)
        return 0x100 + 67;
    return b;
}

int tfi_unicode_to_byte(uint32_t cp)
{
    if (cp < 0x100)
        return cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD ? -1 : (int)cp;
    uint32_t n = cp - 0x100;
    if (n < 33)
        return (int)n;
    if (n < 67)
        return (int)(0x7F + n - 33);
    return n == 67 ? 0xAD : -1;
}

/* ---- growable buffers --------------------------------------------------------- */

tf_status tfi_ivec_reserve(tfi_ivec *a, size_t extra)
{
    if (a->cap - a->len >= extra)
        return TF_OK;
    size_t need = a->len + extra;
    if (need < a->len)
        return TF_ERR_NOMEM;
    size_t cap = a->cap ? a->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    int32_t *v = realloc(a->v, tfi_mul_size(cap, sizeof *v));
    if (!v)
        return TF_ERR_NOMEM;
    a->v = v;
    a->cap = cap;
    return TF_OK;
}

/* ---- word cache ------------------------------------------------------------------ */

#define CACHE_MAX_KEY_BYTES ((size_t)4 << 20)
#define CACHE_MAX_IDS ((size_t)1 << 20)

tf_status tfi_word_cache_init(tfi_word_cache *c, size_t max_entries)
{
    memset(c, 0, sizeof *c);
    c->max_entries = max_entries;
    c->first = malloc(tfi_mul_size(max_entries, sizeof *c->first));
    c->count = malloc(tfi_mul_size(max_entries, sizeof *c->count));
    if (!c->first || !c->count || tfi_strmap_init(&c->map, max_entries) != TF_OK) {
        tfi_word_cache_free(c);
        return TF_ERR_NOMEM;
    }
    return TF_OK;
}

void tfi_word_cache_free(tfi_word_cache *c)
{
    tfi_strmap_free(&c->map);
    free(c->keys);
    free(c->ids);
    free(c->first);
    free(c->count);
    memset(c, 0, sizeof *c);
}

static void cache_clear(tfi_word_cache *c)
{
    tfi_strmap_clear(&c->map);
    c->keys_len = c->ids_len = c->entries = 0;
}

static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (*cap >= need)
        return 1;
    size_t ncap = *cap ? *cap : 4096;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*buf, tfi_mul_size(ncap, elem));
    if (!p)
        return 0;
    *buf = p;
    *cap = ncap;
    return 1;
}

/* Remembers word -> ids.  Failing to (no memory) only costs speed. */
static void cache_put(tfi_word_cache *c, const unsigned char *w, size_t n, const int32_t *ids,
                      size_t k, uint64_t hash)
{
    if (!c->first)
        return;
    if (c->entries == c->max_entries || c->keys_len + n > CACHE_MAX_KEY_BYTES ||
        c->ids_len + k > CACHE_MAX_IDS)
        cache_clear(c);
    if (!grow((void **)&c->keys, &c->keys_cap, c->keys_len + n, 1) ||
        !grow((void **)&c->ids, &c->ids_cap, c->ids_len + k, sizeof *c->ids))
        return;
    memcpy(c->keys + c->keys_len, w, n);
    memcpy(c->ids + c->ids_len, ids, k * sizeof *ids);
    size_t e = c->entries++;
    c->first[e] = (uint32_t)c->ids_len;
    c->count[e] = (uint32_t)k;
    tfi_strmap_put(&c->map, c->keys, (uint32_t)c->keys_len, (uint32_t)n, (int32_t)e, hash);
    c->keys_len += n;
    c->ids_len += k;
}

/* ---- the merge loop ---------------------------------------------------------------- */

typedef struct tfi_bpe_cand {
    uint32_t rank;
    uint32_t pos;        /* index of the left symbol */
    int32_t left, right; /* the ids it was made from */
    int32_t result;
} tfi_bpe_cand;

void tfi_bpe_work_free(tfi_bpe_work *w)
{
    free(w->id);
    free(w->next);
    free(w->prev);
    free(w->heap);
    memset(w, 0, sizeof *w);
}

static tf_status work_reserve(tfi_bpe_work *w, size_t n)
{
    if (n <= w->cap)
        return TF_OK;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n)
        cap *= 2;
    int32_t *id = realloc(w->id, cap * sizeof *id);
    if (id)
        w->id = id;
    int32_t *next = realloc(w->next, cap * sizeof *next);
    if (next)
        w->next = next;
    int32_t *prev = realloc(w->prev, cap * sizeof *prev);
    if (prev)
        w->prev = prev;
    tfi_bpe_cand *heap = realloc(w->heap, tfi_mul_size(cap * 3, sizeof *heap));
    if (heap)
        w->heap = heap;
    if (!id || !next || !prev || !heap)
        return TF_ERR_NOMEM;
    w->cap = cap;
    w->heap_cap = cap * 3;
    return TF_OK;
}

static int cand_less(const tfi_bpe_cand *a, const tfi_bpe_cand *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(tfi_bpe_cand *h, size_t *n, tfi_bpe_cand c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_less(&c, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = c;
}

static tfi_bpe_cand heap_pop(tfi_bpe_cand *h, size_t *n)
{
    tfi_bpe_cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && cand_less(&h[c + 1], &h[c]))
            c++;
        if (!cand_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

/* Pushes the merge of symbol i with its right neighbour, if there is one. */
static void push_pair(const tf_tokenizer *tok, tfi_bpe_work *w, size_t *nheap, int32_t i)
{
    int32_t j = w->next[i];
    uint64_t m;
    if (j < 0 || !tfi_u64map_get(&tok->merges, TFI_PAIR_KEY(w->id[i], w->id[j]), &m))
        return;
    tfi_bpe_cand c = {(uint32_t)(m >> 32), (uint32_t)i, w->id[i], w->id[j], (int32_t)(uint32_t)m};
    heap_push(w->heap, nheap, c);
}

tf_status tfi_bpe_word(tf_tokenizer *tok, const unsigned char *w, size_t n)
{
    if (n == 0)
        return TF_OK;
    if (tfi_ivec_reserve(&tok->out, n) != TF_OK)
        return TF_ERR_NOMEM;
    int32_t *dst = tok->out.v + tok->out.len;
    if (n == 1) {
        int32_t id = tok->byte_sym[w[0]];
        dst[0] = tok->remap ? tok->remap[id] : id;
        tok->out.len++;
        return TF_OK;
    }
    uint64_t hash = 0;
    if (n <= TFI_TOK_CACHE_MAX_WORD) {
        hash = tfi_hash_bytes(w, n);
        int32_t e = tfi_strmap_get(&tok->cache.map, tok->cache.keys, (const char *)w, n, hash);
        if (e >= 0) {
            size_t k = tok->cache.count[e];
            memcpy(dst, tok->cache.ids + tok->cache.first[e], k * sizeof *dst);
            tok->out.len += k;
            return TF_OK;
        }
    }
    if (n > INT32_MAX / 4)
        return TF_ERR_NOMEM;
    tfi_bpe_work *bw = &tok->bpe;
    if (work_reserve(bw, n) != TF_OK)
        return TF_ERR_NOMEM;
    int32_t len = (int32_t)n;
    for (int32_t i = 0; i < len; i++) {
        bw->id[i] = tok->byte_sym[w[i]];
        bw->prev[i] = i - 1;
        bw->next[i] = i + 1 < len ? i + 1 : -1;
    }
    size_t nheap = 0;
    for (int32_t i = 0; i + 1 < len; i++)
        push_pair(tok, bw, &nheap, i);
    while (nheap > 0) {
        tfi_bpe_cand c = heap_pop(bw->heap, &nheap);
        int32_t i = (int32_t)c.pos, j = bw->next[i];
        if (bw->id[i] != c.left || j < 0 || bw->id[j] != c.right)
            continue; /* stale: one of its symbols has merged since */
        bw->id[i] = c.result;
        bw->id[j] = -1;
        bw->next[i] = bw->next[j];
        if (bw->next[j] >= 0)
            bw->prev[bw->next[j]] = i;
        if (bw->prev[i] >= 0)
            push_pair(tok, bw, &nheap, bw->prev[i]);
        push_pair(tok, bw, &nheap, i);
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = bw->next[i])
        dst[k++] = tok->remap ? tok->remap[bw->id[i]] : bw->id[i];
    tok->out.len += k;
    if (n <= TFI_TOK_CACHE_MAX_WORD)
        cache_put(&tok->cache, w, n, dst, k, hash);
    return TF_OK;
}
