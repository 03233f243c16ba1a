/*
 * tokenizer.c -- the BPE tokenizer's API: encoding, decoding and look-ups
 * (tokenizer_load.c reads the file).
 *
 * Encoding follows the JavaScript reference (Hugging Face's tokenizers.js,
 * Tokenizer.encode) step by step, so that the ids are the same:
 *   1. bytes that are not valid UTF-8 become U+FFFD, one per maximal
 *      invalid subsequence (the WHATWG decoder a JavaScript host reads
 *      bytes with);
 *   2. the text is split at added tokens matched as they are written
 *      (normalized = false), longest match first, left to right;
 *   3. a token with lstrip / rstrip trims the white space of the piece
 *      before / after it;
 *   4. each other piece is normalised (NFC, ... through utf8proc), split
 *      again at the added tokens matched after normalisation, and trimmed
 *      around them likewise;
 *   5. each remaining piece gets a leading space if add_prefix_space says
 *      so and it has none, is cut into pre-tokens by GPT-2's regex (PCRE2),
 *      and each pre-token's bytes go through the merge loop
 *      (tokenizer_bpe.c).
 * "White space" in 3 and in the regex is JavaScript's (tfi_js_space).
 */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "tokenizer.h"

/* JavaScript's WhiteSpace and LineTerminator: its \s, and what trim() removes. */
const tfi_range tfi_js_space[] = {
    {0x09, 0x0D},     {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
    {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF},
};
const size_t tfi_js_space_count = sizeof tfi_js_space / sizeof *tfi_js_space;

/* ---- UTF-8 ---------------------------------------------------------------------- */

/* The length of the valid sequence at s[0..n) (n >= 1), or 0 with *bad set
 * to the length of its maximal invalid subpart: the lead byte and the
 * continuation bytes that were still acceptable (Unicode's "maximal
 * subpart" rule, which the WHATWG decoder follows). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlongs */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        lo = c == 0xF0 ? 0x90 : 0x80; /* no overlongs */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t k = 1; k <= need; k++) {
        if (k >= n || s[k] < lo || s[k] > hi) {
            *bad = k;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

static int all_ascii(const unsigned char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull)
            return 0;
    }
    for (; i < n; i++)
        if (s[i] & 0x80)
            return 0;
    return 1;
}

size_t tfi_utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n && all_ascii(s + i, 8)) {
            i += 8;
            continue;
        }
        size_t bad, l = utf8_seq(s + i, n - i, &bad);
        if (!l)
            return i;
        i += l;
    }
    return n;
}

/* text with each maximal invalid subpart replaced by U+FFFD, into
 * tok->text_buf (at most 3 bytes out per byte in). */
static tf_status repair_utf8(tf_tokenizer *tok, const unsigned char *s, size_t n, size_t *out_n)
{
    if (n > SIZE_MAX / 3)
        return TF_ERR_NOMEM;
    if (tok->text_cap < 3 * n) {
        char *p = realloc(tok->text_buf, 3 * n);
        if (!p)
            return TF_ERR_NOMEM;
        tok->text_buf = p;
        tok->text_cap = 3 * n;
    }
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t bad, l = utf8_seq(s + i, n - i, &bad);
        if (l) {
            memcpy(tok->text_buf + k, s + i, l);
            k += l;
            i += l;
        } else {
            memcpy(tok->text_buf + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i += bad;
        }
    }
    *out_n = k;
    return TF_OK;
}

static int is_js_space(uint32_t cp)
{
    for (size_t i = 0; i < tfi_js_space_count; i++)
        if (cp >= tfi_js_space[i].lo && cp <= tfi_js_space[i].hi)
            return 1;
    return 0;
}

size_t tfi_js_space_at_start(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    utf8proc_int32_t cp;
    utf8proc_ssize_t l = utf8proc_iterate(s, (utf8proc_ssize_t)n, &cp);
    return l > 0 && is_js_space((uint32_t)cp) ? (size_t)l : 0;
}

size_t tfi_js_space_at_end(const unsigned char *s, size_t n)
{
    size_t start = n;
    while (start > 0 && n - start < 4 && (s[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0)
        return 0;
    start--;
    return tfi_js_space_at_start(s + start, n - start) == n - start ? n - start : 0;
}

static tf_status emit(tf_tokenizer *tok, int32_t id)
{
    if (tfi_ivec_reserve(&tok->out, 1) != TF_OK)
        return TF_ERR_NOMEM;
    tok->out.v[tok->out.len++] = id;
    return TF_OK;
}

/* ---- pre-tokenizer and model -------------------------------------------------- */

static tf_status pre_tokenize(tf_tokenizer *tok, const char *s, size_t n)
{
    if (tok->add_prefix_space && s[0] != ' ') {
        if (tok->prefix_cap < n + 1) {
            char *p = realloc(tok->prefix_buf, n + 1);
            if (!p)
                return TF_ERR_NOMEM;
            tok->prefix_buf = p;
            tok->prefix_cap = n + 1;
        }
        tok->prefix_buf[0] = ' ';
        memcpy(tok->prefix_buf + 1, s, n);
        s = tok->prefix_buf;
        n++;
    }
    const unsigned char *u = (const unsigned char *)s;
    if (!tok->use_regex)
        return tfi_bpe_word(tok, u, n);
    int jit = tok->re_jit;
    for (size_t at = 0; at < n;) {
        /* pcre2_jit_match skips pcre2_match's checks of its arguments,
         * which cost as much as a short match */
        int rc = jit ? pcre2_jit_match(tok->re, u, n, at, 0, tok->md, NULL)
                     : pcre2_match(tok->re, u, n, at, PCRE2_NO_UTF_CHECK, tok->md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && jit) {
            jit = 0; /* the interpreter keeps its backtracking on the heap */
            continue;
        }
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return tfi_fail(&tok->err, rc == PCRE2_ERROR_NOMEMORY ? TF_ERR_NOMEM : TF_ERR_RANGE,
                            "tf_tokenizer_encode: the pre-tokenizer's regex failed at byte %zu "
                            "of a piece of %zu bytes: %s",
                            at, n, (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(tok->md);
        if (ov[1] == ov[0]) { /* an empty match: step over one character */
            at = ov[1] + 1;
            while (at < n && (u[at] & 0xC0) == 0x80)
                at++;
            continue;
        }
        if (tfi_bpe_word(tok, u + ov[0], ov[1] - ov[0]) != TF_OK)
            return TF_ERR_NOMEM;
        at = ov[1];
    }
    return TF_OK;
}

tf_status tfi_normalize(const tf_tokenizer *tok, const char *s, size_t n, char **out, size_t *out_n)
{
    *out = (char *)s;
    *out_n = n;
    if (tok->n_norm == 0 || all_ascii((const unsigned char *)s, n))
        return TF_OK;
    char *cur = NULL;
    for (int i = 0; i < tok->n_norm; i++) {
        utf8proc_uint8_t *dst = NULL;
        utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)(cur ? cur : s),
                                          (utf8proc_ssize_t)(cur ? *out_n : n), &dst,
                                          (utf8proc_option_t)tok->norm_opts[i]);
        free(cur);
        if (r < 0)
            return r == UTF8PROC_ERROR_NOMEM ? TF_ERR_NOMEM : TF_ERR_RANGE;
        cur = (char *)dst;
        *out_n = (size_t)r;
    }
    *out = cur;
    return TF_OK;
}

/* Steps 4 and 5 for one piece that is not an added token. */
static tf_status encode_piece(tf_tokenizer *tok, const char *s, size_t n)
{
    char *ns;
    size_t nn;
    tf_status st = tfi_normalize(tok, s, n, &ns, &nn);
    if (st != TF_OK)
        return tfi_fail(&tok->err, st, "tf_tokenizer_encode: %s while normalising",
                        st == TF_ERR_NOMEM ? "out of memory" : "utf8proc failed");
    tfi_spans *sub = &tok->subsections;
    if (nn > 0)
        st = tfi_added_split(&tok->norm, ns, nn, sub);
    if (nn > 0 && st == TF_OK) {
        tfi_added_strip(tok, ns, sub);
        for (size_t j = 0; j < sub->len && st == TF_OK; j++) {
            const char *p = ns + sub->v[j].off;
            size_t len = sub->v[j].len;
            if (len == 0)
                continue;
            int32_t a = tfi_added_lookup(tok, p, len);
            st = a >= 0 ? emit(tok, tok->added[a].id) : pre_tokenize(tok, p, len);
        }
    }
    if (ns != s)
        free(ns);
    return st;
}

static tf_status encode_text(tf_tokenizer *tok, const char *s, size_t n)
{
    tfi_spans *sec = &tok->sections;
    tf_status st = tfi_added_split(&tok->raw, s, n, sec);
    if (st != TF_OK)
        return st;
    tfi_added_strip(tok, s, sec);
    for (size_t i = 0; i < sec->len && st == TF_OK; i++) {
        const char *p = s + sec->v[i].off;
        size_t len = sec->v[i].len;
        if (len == 0)
            continue;
        int32_t a = tfi_added_lookup(tok, p, len);
        st = a >= 0 ? emit(tok, tok->added[a].id) : encode_piece(tok, p, len);
    }
    return st;
}

/* ---- API ------------------------------------------------------------------------ */

TF_API tf_status tf_tokenizer_encode(tf_tokenizer *tok, const char *text, size_t len, int32_t *ids,
                                     size_t cap, size_t *count)
{
    if (!tok || (!text && len > 0) || (!ids && cap > 0) || !count)
        return tfi_fail(tok ? &tok->err : NULL, TF_ERR_ARGUMENT, "tf_tokenizer_encode: %s is NULL",
                        !tok     ? "tok"
                        : !count ? "count"
                        : !ids   ? "ids (with cap > 0)"
                                 : "text");
    const unsigned char *u = (const unsigned char *)text;
    const char *s = text ? text : "";
    size_t n = len;
    tf_status st = TF_OK;
    if (tfi_utf8_valid_prefix(u, len) < len) {
        st = repair_utf8(tok, u, len, &n);
        s = tok->text_buf;
    }
    tok->out.len = 0;
    if (st == TF_OK)
        st = encode_text(tok, s, n);
    if (st == TF_ERR_NOMEM)
        return tfi_fail(&tok->err, st, "tf_tokenizer_encode: out of memory (%zu bytes of text)",
                        len);
    if (st != TF_OK)
        return st;
    size_t k = tok->out.len;
    *count = k;
    if (!ids)
        return TF_OK;
    if (cap < k)
        return tfi_fail(&tok->err, TF_ERR_SHAPE,
                        "tf_tokenizer_encode: the text encodes to %zu ids, ids holds %zu", k, cap);
    if (k) /* out.v may be NULL when nothing was ever encoded */
        memcpy(ids, tok->out.v, k * sizeof *ids);
    return TF_OK;
}

static int id_ok(const tf_tokenizer *tok, int32_t id)
{
    return id >= 0 && id < tok->n_ids && tok->tok_off[id] != UINT32_MAX;
}

TF_API tf_status tf_tokenizer_decode(tf_tokenizer *tok, const int32_t *ids, size_t count, char *out,
                                     size_t cap, size_t *len)
{
    if (!tok || (!ids && count > 0) || (!out && cap > 0) || !len)
        return tfi_fail(tok ? &tok->err : NULL, TF_ERR_ARGUMENT, "tf_tokenizer_decode: %s is NULL",
                        !tok   ? "tok"
                        : !len ? "len"
                        : !ids ? "ids"
                               : "out (with cap > 0)");
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        if (!id_ok(tok, ids[i]))
            return tfi_fail(&tok->err, TF_ERR_RANGE,
                            "tf_tokenizer_decode: ids[%zu] = %d is not a token id (0..%d)", i,
                            ids[i], tok->n_ids - 1);
        total += tok->dec_len[ids[i]];
    }
    *len = total;
    if (!out)
        return TF_OK;
    if (cap < total)
        return tfi_fail(&tok->err, TF_ERR_SHAPE,
                        "tf_tokenizer_decode: the ids decode to %zu bytes, out holds %zu", total,
                        cap);
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        memcpy(out + k, tok->dec_pool + tok->dec_off[ids[i]], tok->dec_len[ids[i]]);
        k += tok->dec_len[ids[i]];
    }
    if (cap > total)
        out[total] = '\0';
    return TF_OK;
}

TF_API int64_t tf_tokenizer_vocab_size(const tf_tokenizer *tok)
{
    return tok ? tok->n_ids : 0;
}

TF_API tf_status tf_tokenizer_token_to_id(const tf_tokenizer *tok, const char *token, int32_t *id)
{
    if (!tok || !token || !id)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_tokenizer_token_to_id: %s is NULL",
                        !tok     ? "tok"
                        : !token ? "token"
                                 : "id");
    size_t n = strlen(token);
    int32_t a = tfi_added_lookup(tok, token, n);
    if (a >= 0 && tok->added[a].content_len == n &&
        memcmp(tok->pool + tok->added[a].content_off, token, n) == 0) {
        *id = tok->added[a].id;
        return TF_OK;
    }
    int32_t v = tfi_strmap_get(&tok->vocab, tok->pool, token, n, tfi_hash_bytes(token, n));
    if (v < 0)
        return tfi_fail(NULL, TF_ERR_NOT_FOUND, "tf_tokenizer_token_to_id: no token \"%.80s\"",
                        token);
    *id = v;
    return TF_OK;
}

TF_API const char *tf_tokenizer_id_to_token(const tf_tokenizer *tok, int32_t id)
{
    if (!tok || !id_ok(tok, id)) {
        tfi_fail(NULL, tok ? TF_ERR_RANGE : TF_ERR_ARGUMENT, "tf_tokenizer_id_to_token: %s",
                 tok ? "not a token id" : "tok is NULL");
        return NULL;
    }
    return tok->pool + tok->tok_off[id];
}

TF_API int tf_tokenizer_is_special(const tf_tokenizer *tok, int32_t id)
{
    return tok && id_ok(tok, id) && tok->special[id];
}

TF_API int32_t tf_tokenizer_num_added(const tf_tokenizer *tok)
{
    return tok ? tok->n_added : 0;
}

TF_API int32_t tf_tokenizer_added_id(const tf_tokenizer *tok, int32_t i)
{
    return tok && i >= 0 && i < tok->n_added ? tok->added[i].id : -1;
}

TF_API const char *tf_tokenizer_errmsg(const tf_tokenizer *tok)
{
    return tok ? tok->err.msg : "";
}

void tfi_tokenizer_destroy(tf_tokenizer *tok)
{
    if (!tok)
        return;
    free(tok->pool);
    free(tok->tok_off);
    free(tok->tok_len);
    free(tok->dec_off);
    free(tok->dec_len);
    free(tok->dec_pool);
    free(tok->special);
    free(tok->remap);
    free(tok->added);
    tfi_strmap_free(&tok->vocab);
    tfi_u64map_free(&tok->merges);
    tfi_strmap_free(&tok->added_map);
    tfi_trie_free(&tok->raw);
    tfi_trie_free(&tok->norm);
    pcre2_match_data_free(tok->md);
    pcre2_code_free(tok->re);
    free(tok->out.v);
    tfi_bpe_work_free(&tok->bpe);
    tfi_word_cache_free(&tok->cache);
    free(tok->sections.v);
    free(tok->subsections.v);
    free(tok->text_buf);
    free(tok->prefix_buf);
    free(tok);
}

TF_API void tf_tokenizer_free(tf_tokenizer *tok)
{
    tfi_tokenizer_destroy(tok);
}
