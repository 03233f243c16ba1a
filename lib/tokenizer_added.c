/*
 * tokenizer_added.c -- added tokens (<|endoftext|>, NeoX's runs of spaces,
 * ...): read from tokenizer.json, and found in a text as the reference
 * finds them.
 *
 * The reference keeps one map from text to token: each token's content,
 * and its normalised content if it is "normalized", token by token (a later
 * token wins a shared key).  Tokens that are not normalized are found in
 * the raw text, the others in each normalised piece, longest match first,
 * scanning left to right (a byte trie each).  A piece that is exactly a
 * key of the map is that token, however it was cut.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "tokenizer.h"

static tf_status read_added(tfi_tok_loader *L, json_object *root)
{
    tf_tokenizer *tok = L->tok;
    json_object *list = tfi_json_member(root, "added_tokens");
    if (list && !json_object_is_type(list, json_type_array))
        return tfi_tok_bad(L, "added_tokens is not an array");
    size_t n = list ? json_object_array_length(list) : 0; /* none: an empty map */
    if (n > (size_t)TFI_TOK_MAX_ID)
        return tfi_tok_bad(L, "added_tokens has %zu entries, more than %d", n, TFI_TOK_MAX_ID);
    if (!(tok->added = calloc(n ? n : 1, sizeof *tok->added)) ||
        tfi_strmap_init(&tok->added_map, 2 * n) != TF_OK)
        return tfi_tok_nomem(L);
    tf_status st;
    for (size_t i = 0; i < n; i++) {
        json_object *a = json_object_array_get_idx(list, i), *content;
        char what[64], q[128];
        snprintf(what, sizeof what, "added_tokens[%zu]", i);
        if (!json_object_is_type(a, json_type_object) ||
            !(content = tfi_json_member(a, "content")) ||
            !json_object_is_type(content, json_type_string))
            return tfi_tok_bad(L, "%s is not an object with a \"content\" string", what);
        const char *s = json_object_get_string(content);
        size_t len = (size_t)json_object_get_string_len(content);
        tfi_added *t = &tok->added[i];
        int special, normalized, lstrip, rstrip, single;
        json_object *id = tfi_json_member(a, "id");
        if ((st = tfi_tok_text(L, s, len, what)) != TF_OK ||
            (st = tfi_tok_id(L, id, what, &t->id)) != TF_OK ||
            (st = tfi_tok_opt_bool(L, a, what, "special", 0, &special)) != TF_OK ||
            (st = tfi_tok_opt_bool(L, a, what, "normalized", !special, &normalized)) != TF_OK ||
            (st = tfi_tok_opt_bool(L, a, what, "lstrip", 0, &lstrip)) != TF_OK ||
            (st = tfi_tok_opt_bool(L, a, what, "rstrip", 0, &rstrip)) != TF_OK ||
            (st = tfi_tok_opt_bool(L, a, what, "single_word", 0, &single)) != TF_OK)
            return st;
        for (size_t j = 0; j < i; j++)
            if (tok->added[j].content_len == len &&
                memcmp(tok->pool + tok->added[j].content_off, s, len) == 0)
                return tfi_tok_bad(L, "%s: content %s repeats added_tokens[%zu]", what,
                                   tfi_tok_quote(s, len, q, sizeof q), j);
        t->special = (unsigned char)special;
        t->normalized = (unsigned char)(normalized && tok->n_norm > 0);
        t->lstrip = (unsigned char)lstrip;
        t->rstrip = (unsigned char)rstrip;
        if ((st = tfi_tok_pool_add(L, s, len, &t->content_off)) != TF_OK)
            return st;
        t->content_len = (uint32_t)len;
        t->normalized_off = t->content_off;
        t->normalized_len = t->content_len;
        if (t->normalized) {
            size_t nn;
            char *ns;
            if (tfi_normalize(tok, s, len, &ns, &nn) != TF_OK)
                return tfi_tok_nomem(L);
            st = nn ? tfi_tok_pool_add(L, ns, nn, &t->normalized_off) : TF_OK;
            if (ns != s)
                free(ns);
            if (!nn)
                return tfi_tok_bad(L, "%s: content %s normalises to nothing", what,
                                   tfi_tok_quote(s, len, q, sizeof q));
            if (st != TF_OK)
                return st;
            t->normalized_len = (uint32_t)nn;
        }
        if (t->id >= tok->n_ids)
            tok->n_ids = t->id + 1;
        tok->n_added = (int32_t)i + 1;
    }
    /* The reference's map: content, then the normalised content, token by
     * token (a later token wins a shared key). */
    for (int32_t i = 0; i < tok->n_added; i++) {
        const tfi_added *t = &tok->added[i];
        const char *c = tok->pool + t->content_off, *nc = tok->pool + t->normalized_off;
        tfi_strmap_put(&tok->added_map, tok->pool, t->content_off, t->content_len, i,
                       tfi_hash_bytes(c, t->content_len));
        tfi_strmap_put(&tok->added_map, tok->pool, t->normalized_off, t->normalized_len, i,
                       tfi_hash_bytes(nc, t->normalized_len));
        size_t m = t->content_len > t->normalized_len ? t->content_len : t->normalized_len;
        if (m > tok->added_max_len)
            tok->added_max_len = m;
    }
    return TF_OK;
}

/* Tries: raw for tokens matched before normalisation, norm for the others. */
static tf_status build_tries(tfi_tok_loader *L)
{
    tf_tokenizer *tok = L->tok;
    size_t raw = 0, norm = 0;
    for (int32_t i = 0; i < tok->n_added; i++) {
        if (tok->added[i].normalized)
            norm += tok->added[i].normalized_len;
        else
            raw += tok->added[i].content_len;
    }
    if (tfi_trie_init(&tok->raw, raw) != TF_OK || tfi_trie_init(&tok->norm, norm) != TF_OK)
        return tfi_tok_nomem(L);
    for (int32_t i = 0; i < tok->n_added; i++) {
        const tfi_added *t = &tok->added[i];
        if (t->normalized)
            tfi_trie_insert(&tok->norm, (const unsigned char *)tok->pool + t->normalized_off,
                            t->normalized_len);
        else
            tfi_trie_insert(&tok->raw, (const unsigned char *)tok->pool + t->content_off,
                            t->content_len);
    }
    return TF_OK;
}

tf_status tfi_added_load(tfi_tok_loader *L, json_object *root)
{
    tf_status st = read_added(L, root);
    return st == TF_OK ? build_tries(L) : st;
}

/* ---- finding them in a text ------------------------------------------------- */

int32_t tfi_added_lookup(const tf_tokenizer *tok, const char *s, size_t n)
{
    if (n == 0 || n > tok->added_max_len)
        return -1;
    return tfi_strmap_get(&tok->added_map, tok->pool, s, n, tfi_hash_bytes(s, n));
}

static tf_status push_span(tfi_spans *sp, size_t off, size_t len)
{
    if (sp->len == sp->cap) {
        size_t cap = sp->cap ? sp->cap * 2 : 64;
        tfi_span *v = realloc(sp->v, tfi_mul_size(cap, sizeof *v));
        if (!v)
            return TF_ERR_NOMEM;
        sp->v = v;
        sp->cap = cap;
    }
    sp->v[sp->len++] = (tfi_span){off, len};
    return TF_OK;
}

/* Splits s[0..n) into the pieces between and at the trie's entries
 * (longest match, scanning left to right). */
tf_status tfi_added_split(const tfi_trie *t, const char *s, size_t n, tfi_spans *out)
{
    const unsigned char *u = (const unsigned char *)s;
    out->len = 0;
    size_t start = 0;
    for (size_t i = 0; i < n && t->n_first > 0;) {
        if (t->n_first == 1) { /* GPT-2: '<' only */
            const unsigned char *q = memchr(u + i, t->one_first, n - i);
            if (!q)
                break;
            i = (size_t)(q - u);
        }
        size_t m = t->first[u[i]] ? tfi_trie_match(t, u + i, n - i) : 0;
        if (!m) {
            i++;
            continue;
        }
        if ((i > start && push_span(out, start, i - start) != TF_OK) ||
            push_span(out, i, m) != TF_OK)
            return TF_ERR_NOMEM;
        i += m;
        start = i;
    }
    return start < n ? push_span(out, start, n - start) : TF_OK;
}

/* lstrip / rstrip: the piece before a token with lstrip loses its trailing
 * white space, the piece after one with rstrip its leading white space. */
void tfi_added_strip(const tf_tokenizer *tok, const char *s, tfi_spans *sp)
{
    for (size_t i = 0; i < sp->len; i++) {
        int32_t a = tfi_added_lookup(tok, s + sp->v[i].off, sp->v[i].len);
        if (a < 0)
            continue;
        if (tok->added[a].lstrip && i > 0) {
            tfi_span *p = &sp->v[i - 1];
            size_t l;
            while ((l = tfi_js_space_at_end((const unsigned char *)s + p->off, p->len)) > 0)
                p->len -= l;
        }
        if (tok->added[a].rstrip && i + 1 < sp->len) {
            tfi_span *p = &sp->v[i + 1];
            size_t l;
            while ((l = tfi_js_space_at_start((const unsigned char *)s + p->off, p->len)) > 0) {
                p->off += l;
                p->len -= l;
            }
        }
    }
}
