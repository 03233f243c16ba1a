/*
 * tokenizer.h -- the byte-level BPE tokenizer's internals, shared by its
 * files: tokenizer_load.c (tokenizer.json -> struct tf_tokenizer),
 * tokenizer_added.c (added tokens: read, and found in a text), tokenizer.c
 * (the API and the encoding pipeline), tokenizer_bpe.c (the byte-to-unicode
 * table, the merge loop and its word cache) and tokenizer_map.c (the hash
 * maps and the trie they look things up in).
 *
 * Ids: one id space [0, n_ids) for the model's vocabulary and the added
 * tokens.  The merge loop works on the model's ids; an added token whose
 * text equals a vocabulary entry takes that text over in the output
 * (remap), as the reference maps output strings through its added tokens
 * first.
 */
#ifndef TF_TOKENIZER_H
#define TF_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "internal.h"

/* Limits for an untrusted tokenizer.json (TF_ERR_FORMAT beyond them). */
#define TFI_TOK_MAX_FILE ((size_t)256 << 20) /* bytes of JSON */
#define TFI_TOK_MAX_ID ((int32_t)1 << 24)    /* ids are in [0, 2^24) */
#define TFI_TOK_MAX_NORMALIZERS 8            /* steps of a Sequence */
/* Pre-tokens longer than this are not kept in the word cache (the
 * reference's limit for its own cache). */
#define TFI_TOK_CACHE_MAX_WORD 256

/* ---- hash maps (tokenizer_map.c) -----------------------------------------
 * Open addressing with linear probing, power-of-two capacity fixed at init
 * (at least twice the entries the caller will put).  Keys of a string map
 * are (offset, length) into a byte arena the caller passes to every call,
 * so the arena may move. */
uint64_t tfi_hash_bytes(const void *p, size_t n);

typedef struct tfi_strslot {
    uint32_t hash; /* low bits of the key's hash */
    uint32_t off;  /* UINT32_MAX: empty */
    uint32_t len;
    int32_t val;
} tfi_strslot;

typedef struct tfi_strmap {
    tfi_strslot *slots;
    size_t mask; /* capacity - 1 */
    size_t count;
} tfi_strmap;

tf_status tfi_strmap_init(tfi_strmap *m, size_t entries);
void tfi_strmap_free(tfi_strmap *m);
void tfi_strmap_clear(tfi_strmap *m);
/* The value of key (len bytes), or -1. */
int32_t tfi_strmap_get(const tfi_strmap *m, const char *arena, const char *key, size_t len,
                       uint64_t hash);
/* Puts arena[off..off+len) -> val; an existing key gets the new value.
 * The map must have room (count < capacity / 2): the caller sized it. */
void tfi_strmap_put(tfi_strmap *m, const char *arena, uint32_t off, uint32_t len, int32_t val,
                    uint64_t hash);

typedef struct tfi_u64slot {
    uint64_t key; /* UINT64_MAX: empty */
    uint64_t val;
} tfi_u64slot;

typedef struct tfi_u64map {
    tfi_u64slot *slots;
    size_t mask;
    size_t count;
} tfi_u64map;

tf_status tfi_u64map_init(tfi_u64map *m, size_t entries);
void tfi_u64map_free(tfi_u64map *m);
/* 1 and *val if present, else 0. */
int tfi_u64map_get(const tfi_u64map *m, uint64_t key, uint64_t *val);
void tfi_u64map_put(tfi_u64map *m, uint64_t key, uint64_t val);

/* ---- byte-level alphabet and BPE (tokenizer_bpe.c) -------------------- */

/* GPT-2's bytes_to_unicode(): the code point standing for byte b in the
 * vocabulary's strings. */
uint32_t tfi_byte_to_unicode(unsigned b);
/* The byte a code point stands for, or -1 if it is not in the alphabet. */
int tfi_unicode_to_byte(uint32_t cp);

/* A merge: (left id, right id) -> rank and result id. */
#define TFI_PAIR_KEY(a, b) (((uint64_t)(uint32_t)(a) << 32) | (uint32_t)(b))

/* Word cache: pre-token bytes -> the ids they encode to.  Cleared whole
 * when full (its contents never change a result). */
typedef struct tfi_word_cache {
    tfi_strmap map; /* word -> index into entries */
    char *keys;     /* the words' bytes */
    size_t keys_len, keys_cap;
    int32_t *ids; /* the ids of all words */
    size_t ids_len, ids_cap;
    uint32_t *first; /* entry -> offset in ids */
    uint32_t *count; /* entry -> number of ids */
    size_t entries, max_entries;
} tfi_word_cache;

tf_status tfi_word_cache_init(tfi_word_cache *c, size_t max_entries);
void tfi_word_cache_free(tfi_word_cache *c);

/* A growable int32 vector (the encoder's output). */
typedef struct tfi_ivec {
    int32_t *v;
    size_t len, cap;
} tfi_ivec;

tf_status tfi_ivec_reserve(tfi_ivec *a, size_t extra);

/* The merge loop's workspace: symbols of one word and the heap of
 * candidate merges; sized for the longest word seen, reused. */
typedef struct tfi_bpe_work {
    int32_t *id, *next, *prev;
    struct tfi_bpe_cand *heap;
    size_t cap;      /* symbols */
    size_t heap_cap; /* candidates */
} tfi_bpe_work;

void tfi_bpe_work_free(tfi_bpe_work *w);

/* ---- the tokenizer ---------------------------------------------------- */

typedef struct tfi_added {
    int32_t id;
    uint32_t content_off, content_len;       /* in tok->pool */
    uint32_t normalized_off, normalized_len; /* the normalised content */
    unsigned char lstrip, rstrip, normalized, special;
} tfi_added;

/* Longest-match splitting on added tokens: a byte trie.  Edges (node, byte)
 * -> child in one u64 map (node 0 is the root); term[node] is 1 where an
 * entry ends. */
typedef struct tfi_trie {
    tfi_u64map edges;
    unsigned char *term;
    uint32_t nodes, cap;
    unsigned char first[256]; /* 1 for the bytes an entry starts with */
    int n_first;              /* how many bytes that is */
    unsigned char one_first;  /* the byte, when there is one (memchr finds it) */
} tfi_trie;

/* A trie with room for entries of `bytes` bytes in all. */
tf_status tfi_trie_init(tfi_trie *t, size_t bytes);
void tfi_trie_free(tfi_trie *t);
/* Adds s[0..n), n >= 1; the room was reserved by tfi_trie_init. */
void tfi_trie_insert(tfi_trie *t, const unsigned char *s, size_t n);
/* The length of the longest entry that s[0..n) starts with, or 0. */
size_t tfi_trie_match(const tfi_trie *t, const unsigned char *s, size_t n);

/* A piece of the text: bytes [off, off + len) of a buffer. */
typedef struct tfi_span {
    size_t off, len;
} tfi_span;

typedef struct tfi_spans {
    tfi_span *v;
    size_t len, cap;
} tfi_spans;

struct tf_tokenizer {
    tfi_errbuf err;

    /* Strings (tokens, added contents), NUL-terminated, in one arena. */
    char *pool;
    size_t pool_len;

    /* Ids: text and decoded bytes of each id; holes have tok_off ==
     * UINT32_MAX. */
    int32_t n_ids;
    uint32_t *tok_off, *tok_len;
    uint32_t *dec_off, *dec_len; /* in dec_pool */
    char *dec_pool;
    unsigned char *special; /* [n_ids]: 1 for special added tokens */

    /* The BPE model. */
    tfi_strmap vocab;      /* text -> model id */
    tfi_u64map merges;     /* TFI_PAIR_KEY(a, b) -> rank << 32 | result */
    int32_t byte_sym[256]; /* model id of each byte's symbol */
    int32_t *remap;        /* [n_ids] or NULL: model id -> output id */

    /* Added tokens, matched in the raw text (raw) or after normalisation
     * (norm), as the reference does for normalized=false/true. */
    tfi_added *added;
    int32_t n_added;
    tfi_strmap added_map; /* content or normalised content -> index */
    size_t added_max_len;
    tfi_trie raw, norm;

    /* Normaliser: utf8proc option sets applied in order. */
    int n_norm;
    int norm_opts[TFI_TOK_MAX_NORMALIZERS];

    /* ByteLevel pre-tokenizer. */
    int add_prefix_space;
    int use_regex;
    pcre2_code *re;
    int re_jit; /* compiled to machine code: matched by pcre2_jit_match */
    pcre2_match_data *md;

    /* Workspaces, grown as needed and reused. */
    tfi_ivec out;
    tfi_bpe_work bpe;
    tfi_word_cache cache;
    tfi_spans sections, subsections;
    char *text_buf; /* the text with invalid UTF-8 replaced */
    size_t text_cap;
    char *prefix_buf; /* " " + a piece, for add_prefix_space */
    size_t prefix_cap;
};

/* Appends the ids of one pre-token (its UTF-8 bytes) to tok->out. */
tf_status tfi_bpe_word(tf_tokenizer *tok, const unsigned char *w, size_t n);

/* ---- text (tokenizer.c) ------------------------------------------------- */

/* Normalises s[0..n) with tok's normaliser: *out is s itself when there is
 * nothing to do (no normaliser, or ASCII, which every form leaves alone),
 * else a buffer from utf8proc that the caller frees.  TF_ERR_NOMEM. */
tf_status tfi_normalize(const tf_tokenizer *tok, const char *s, size_t n, char **out,
                        size_t *out_n);
/* The byte length of the white-space character (tfi_js_space) at the start
 * / at the end of s[0..n) (valid UTF-8), or 0 if it is something else. */
size_t tfi_js_space_at_start(const unsigned char *s, size_t n);
size_t tfi_js_space_at_end(const unsigned char *s, size_t n);

/* ---- reading tokenizer.json (tokenizer_load.c) -------------------------- */

struct json_object;

typedef struct tfi_tok_loader {
    const char *name; /* the path, or "tokenizer JSON" from memory */
    tf_tokenizer *tok;
    size_t pool_cap;
    size_t n_vocab;
} tfi_tok_loader;

/* TF_ERR_FORMAT with "name: message". */
tf_status tfi_tok_bad(tfi_tok_loader *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
tf_status tfi_tok_nomem(tfi_tok_loader *L);
/* A token for a message: quoted, at most 40 bytes, control bytes escaped. */
const char *tfi_tok_quote(const char *s, size_t n, char *buf, size_t cap);
/* Copies s[0..n) and a NUL into tok->pool; its offset in *off. */
tf_status tfi_tok_pool_add(tfi_tok_loader *L, const char *s, size_t n, uint32_t *off);
/* The member `key` of obj, or NULL when absent or JSON null. */
struct json_object *tfi_json_member(struct json_object *obj, const char *key);
/* An optional boolean member: *out = dflt when absent or null. */
tf_status tfi_tok_opt_bool(tfi_tok_loader *L, struct json_object *obj, const char *where,
                           const char *key, int dflt, int *out);
/* An id: an integer in [0, TFI_TOK_MAX_ID). */
tf_status tfi_tok_id(tfi_tok_loader *L, struct json_object *v, const char *what, int32_t *id);
/* A token's text: not empty, no NUL, valid UTF-8. */
tf_status tfi_tok_text(tfi_tok_loader *L, const char *s, size_t n, const char *what);

/* ---- added tokens (tokenizer_added.c) ----------------------------------- */

/* Reads "added_tokens" (after the normaliser) and builds the tries. */
tf_status tfi_added_load(tfi_tok_loader *L, struct json_object *root);
/* The added token (an index) whose key is exactly s[0..n), or -1. */
int32_t tfi_added_lookup(const tf_tokenizer *tok, const char *s, size_t n);
/* Splits s[0..n) into the pieces between and at the trie's entries. */
tf_status tfi_added_split(const tfi_trie *t, const char *s, size_t n, tfi_spans *out);
/* lstrip / rstrip: trims the pieces next to added tokens that ask for it. */
void tfi_added_strip(const tf_tokenizer *tok, const char *s, tfi_spans *sp);

/* The length of the longest prefix of s[0..n) that is valid UTF-8 (no
 * overlongs, surrogates or code points past U+10FFFF). */
size_t tfi_utf8_valid_prefix(const unsigned char *s, size_t n);

/* Frees everything tok owns (also a half-built one) and tok. */
void tfi_tokenizer_destroy(tf_tokenizer *tok);

/* The JavaScript reference's white space (its \s and String.trim): the
 * code points in [lo, hi] ranges. */
typedef struct tfi_range {
    uint32_t lo, hi;
} tfi_range;
extern const tfi_range tfi_js_space[];
extern const size_t tfi_js_space_count;

#endif /* TF_TOKENIZER_H */
