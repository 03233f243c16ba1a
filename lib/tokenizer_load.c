/*
 * tokenizer_load.c -- a Hugging Face tokenizer.json of the byte-level BPE
 * family (GPT-2, GPT-NeoX-20B) -> struct tf_tokenizer.
 *
 * The file is untrusted: it is read whole (at most TFI_TOK_MAX_FILE bytes),
 * parsed by json-c in strict mode with UTF-8 validation, and every part the
 * tokenizer uses is checked before anything is built: ids in [0, 2^24) and
 * not spread thinner than the table they index, tokens valid UTF-8, merges
 * whose parts and result are all in the vocabulary (what the Rust crate
 * requires), all 256 byte symbols present, and component types this
 * tokenizer implements.  Anything else is TF_ERR_FORMAT naming the place.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>
#include <utf8proc.h>

#include "tokenizer.h"

tf_status tfi_tok_bad(tfi_tok_loader *L, const char *fmt, ...)
{
    char msg[TFI_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tfi_fail(NULL, TF_ERR_FORMAT, "%s: %s", L->name, msg);
}

tf_status tfi_tok_nomem(tfi_tok_loader *L)
{
    return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", L->name);
}

const char *tfi_tok_quote(const char *s, size_t n, char *buf, size_t cap)
{
    size_t k = 0;
    buf[k++] = '\'';
    for (size_t i = 0; i < n && k + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 40) {
            k += (size_t)snprintf(buf + k, cap - k, "...");
            break;
        }
        if (c < 0x20 || c == 0x7f)
            k += (size_t)snprintf(buf + k, cap - k, "\\x%02x", c);
        else
            buf[k++] = (char)c;
    }
    buf[k++] = '\'';
    buf[k] = '\0';
    return buf;
}

tf_status tfi_tok_pool_add(tfi_tok_loader *L, const char *s, size_t n, uint32_t *off)
{
    tf_tokenizer *tok = L->tok;
    if (tok->pool_len + n + 1 > L->pool_cap) {
        size_t cap = L->pool_cap ? L->pool_cap : 65536;
        while (cap < tok->pool_len + n + 1)
            cap *= 2;
        char *p = realloc(tok->pool, cap);
        if (!p)
            return tfi_tok_nomem(L);
        tok->pool = p;
        L->pool_cap = cap;
    }
    *off = (uint32_t)tok->pool_len;
    memcpy(tok->pool + tok->pool_len, s, n);
    tok->pool[tok->pool_len + n] = '\0';
    tok->pool_len += n + 1;
    return TF_OK;
}

/* ---- JSON helpers ----------------------------------------------------------- */

json_object *tfi_json_member(json_object *obj, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

tf_status tfi_tok_opt_bool(tfi_tok_loader *L, json_object *obj, const char *where, const char *key,
                           int dflt, int *out)
{
    json_object *v = tfi_json_member(obj, key);
    if (!v) {
        *out = dflt;
        return TF_OK;
    }
    if (!json_object_is_type(v, json_type_boolean))
        return tfi_tok_bad(L, "%s.%s is not true or false", where, key);
    *out = json_object_get_boolean(v);
    return TF_OK;
}

/* An optional string member that must be absent, null or "". */
static tf_status empty_string(tfi_tok_loader *L, json_object *obj, const char *where,
                              const char *key)
{
    json_object *v = tfi_json_member(obj, key);
    if (!v || (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) == 0))
        return TF_OK;
    return tfi_tok_bad(L, "%s.%s is set; byte-level BPE does not use it (not supported)", where,
                       key);
}

/* The "type" of a component object; NULL (and a message) when it is not an
 * object with a string type. */
static const char *component_type(tfi_tok_loader *L, json_object *c, const char *where,
                                  tf_status *st)
{
    json_object *t;
    if (!json_object_is_type(c, json_type_object) || !(t = tfi_json_member(c, "type")) ||
        !json_object_is_type(t, json_type_string)) {
        *st = tfi_tok_bad(L, "%s is not an object with a \"type\"", where);
        return NULL;
    }
    return json_object_get_string(t);
}

tf_status tfi_tok_id(tfi_tok_loader *L, json_object *v, const char *what, int32_t *id)
{
    if (!json_object_is_type(v, json_type_int))
        return tfi_tok_bad(L, "%s: the id is not an integer", what);
    int64_t x = json_object_get_int64(v);
    if (x < 0 || x >= TFI_TOK_MAX_ID)
        return tfi_tok_bad(L, "%s: id %lld is outside [0, %d)", what, (long long)x, TFI_TOK_MAX_ID);
    *id = (int32_t)x;
    return TF_OK;
}

tf_status tfi_tok_text(tfi_tok_loader *L, const char *s, size_t n, const char *what)
{
    char q[128];
    if (n == 0)
        return tfi_tok_bad(L, "%s: empty token", what);
    if (memchr(s, '\0', n))
        return tfi_tok_bad(L, "%s: token %s has a NUL byte", what,
                           tfi_tok_quote(s, n, q, sizeof q));
    if (n >= UINT32_MAX / 2 || tfi_utf8_valid_prefix((const unsigned char *)s, n) != n)
        return tfi_tok_bad(L, "%s: token %s is not valid UTF-8", what,
                           tfi_tok_quote(s, n, q, sizeof q));
    return TF_OK;
}

/* ---- the model: vocabulary and merges -------------------------------------- */

static tf_status load_vocab(tfi_tok_loader *L, json_object *vocab)
{
    tf_tokenizer *tok = L->tok;
    if (!json_object_is_type(vocab, json_type_object))
        return tfi_tok_bad(L, "model.vocab is not an object");
    size_t n = (size_t)json_object_object_length(vocab);
    if (n > (size_t)TFI_TOK_MAX_ID)
        return tfi_tok_bad(L, "model.vocab has %zu entries, more than %d", n, TFI_TOK_MAX_ID);
    if (tfi_strmap_init(&tok->vocab, n) != TF_OK)
        return tfi_tok_nomem(L);
    L->n_vocab = n;
    json_object_object_foreach(vocab, key, val)
    {
        size_t len = strlen(key);
        int32_t id;
        uint32_t off;
        tf_status st;
        if (tfi_tok_text(L, key, len, "model.vocab") != TF_OK ||
            tfi_tok_id(L, val, "model.vocab", &id) != TF_OK) {
            /* again, with the token in the message (not built for every entry) */
            char what[160], q[128];
            snprintf(what, sizeof what, "model.vocab[%s]", tfi_tok_quote(key, len, q, sizeof q));
            return tfi_tok_text(L, key, len, what) != TF_OK ? TF_ERR_FORMAT
                                                            : tfi_tok_id(L, val, what, &id);
        }
        if ((st = tfi_tok_pool_add(L, key, len, &off)) != TF_OK)
            return st;
        tfi_strmap_put(&tok->vocab, tok->pool, off, (uint32_t)len, id, tfi_hash_bytes(key, len));
        if (id >= tok->n_ids)
            tok->n_ids = id + 1;
    }
    return TF_OK;
}

static int32_t vocab_id(const tf_tokenizer *tok, const char *s, size_t n)
{
    return tfi_strmap_get(&tok->vocab, tok->pool, s, n, tfi_hash_bytes(s, n));
}

/* One merge (a, b) of rank r: a, b and a + b must be in the vocabulary. */
static tf_status add_merge(tfi_tok_loader *L, size_t r, const char *a, size_t na, const char *b,
                           size_t nb, char *cat)
{
    tf_tokenizer *tok = L->tok;
    char q[128];
    int32_t ia = vocab_id(tok, a, na), ib = vocab_id(tok, b, nb);
    memcpy(cat, a, na);
    memcpy(cat + na, b, nb);
    int32_t iab = vocab_id(tok, cat, na + nb);
    if (ia < 0 || ib < 0 || iab < 0) {
        const char *s = ia < 0 ? a : ib < 0 ? b : cat;
        size_t n = ia < 0 ? na : ib < 0 ? nb : na + nb;
        return tfi_tok_bad(L, "model.merges[%zu]: %s is not in the vocabulary", r,
                           tfi_tok_quote(s, n, q, sizeof q));
    }
    tfi_u64map_put(&tok->merges, TFI_PAIR_KEY(ia, ib), (uint64_t)r << 32 | (uint32_t)iab);
    return TF_OK;
}

static tf_status load_merges(tfi_tok_loader *L, json_object *merges)
{
    if (!json_object_is_type(merges, json_type_array))
        return tfi_tok_bad(L, "model.merges is not an array");
    size_t n = json_object_array_length(merges);
    if (n > (size_t)TFI_TOK_MAX_ID)
        return tfi_tok_bad(L, "model.merges has %zu entries, more than %d", n, TFI_TOK_MAX_ID);
    if (tfi_u64map_init(&L->tok->merges, n) != TF_OK)
        return tfi_tok_nomem(L);
    char *cat = NULL;
    size_t cat_cap = 0;
    tf_status st = TF_OK;
    for (size_t r = 0; r < n && st == TF_OK; r++) {
        json_object *m = json_object_array_get_idx(merges, r);
        const char *a, *b;
        size_t na, nb;
        if (json_object_is_type(m, json_type_string)) {
            /* "a b": exactly one space (the Rust crate's rule) */
            a = json_object_get_string(m);
            size_t len = (size_t)json_object_get_string_len(m);
            const char *sp = memchr(a, ' ', len);
            if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp - a) - 1)) {
                st =
                    tfi_tok_bad(L, "model.merges[%zu] is not two tokens separated by one space", r);
                break;
            }
            na = (size_t)(sp - a);
            b = sp + 1;
            nb = len - na - 1;
        } else if (json_object_is_type(m, json_type_array) && json_object_array_length(m) == 2 &&
                   json_object_is_type(json_object_array_get_idx(m, 0), json_type_string) &&
                   json_object_is_type(json_object_array_get_idx(m, 1), json_type_string)) {
            json_object *ma = json_object_array_get_idx(m, 0),
                        *mb = json_object_array_get_idx(m, 1);
            a = json_object_get_string(ma);
            na = (size_t)json_object_get_string_len(ma);
            b = json_object_get_string(mb);
            nb = (size_t)json_object_get_string_len(mb);
        } else {
            st = tfi_tok_bad(L, "model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", r);
            break;
        }
        if (na + nb > cat_cap) {
            free(cat);
            cat_cap = na + nb;
            if (!(cat = malloc(cat_cap))) {
                st = tfi_tok_nomem(L);
                break;
            }
        }
        st = add_merge(L, r, a, na, b, nb, cat);
    }
    free(cat);
    return st;
}

static tf_status load_model(tfi_tok_loader *L, json_object *root)
{
    tf_tokenizer *tok = L->tok;
    json_object *model = tfi_json_member(root, "model"), *t;
    if (!model || !json_object_is_type(model, json_type_object))
        return tfi_tok_bad(L, "no \"model\" object");
    json_object *vocab = tfi_json_member(model, "vocab"),
                *merges = tfi_json_member(model, "merges");
    if ((t = tfi_json_member(model, "type")) != NULL) {
        if (!json_object_is_type(t, json_type_string) || strcmp(json_object_get_string(t), "BPE"))
            return tfi_tok_bad(L, "model.type is %s; only \"BPE\" is supported",
                               json_object_to_json_string(t));
    }
    if (!vocab || !merges)
        return tfi_tok_bad(L, "model has no %s", !vocab ? "vocab" : "merges");
    tf_status st;
    int flag;
    if ((st = load_vocab(L, vocab)) != TF_OK || (st = load_merges(L, merges)) != TF_OK ||
        (st = empty_string(L, model, "model", "continuing_subword_prefix")) != TF_OK ||
        (st = empty_string(L, model, "model", "end_of_word_suffix")) != TF_OK)
        return st;
    static const char *const off_flags[] = {"byte_fallback", "fuse_unk", "ignore_merges"};
    for (size_t i = 0; i < sizeof off_flags / sizeof *off_flags; i++) {
        if ((st = tfi_tok_opt_bool(L, model, "model", off_flags[i], 0, &flag)) != TF_OK)
            return st;
        if (flag)
            return tfi_tok_bad(L, "model.%s is true; not supported for byte-level BPE",
                               off_flags[i]);
    }
    /* unk_token: never produced when every byte has a symbol, but it must
     * name a token if given.  dropout is ignored, as by the reference. */
    json_object *unk = tfi_json_member(model, "unk_token");
    if (unk &&
        (!json_object_is_type(unk, json_type_string) ||
         vocab_id(tok, json_object_get_string(unk), (size_t)json_object_get_string_len(unk)) < 0))
        return tfi_tok_bad(L, "model.unk_token %s is not a token of the vocabulary",
                           json_object_to_json_string(unk));
    for (unsigned b = 0; b < 256; b++) {
        char u[4];
        size_t n = (size_t)utf8proc_encode_char((utf8proc_int32_t)tfi_byte_to_unicode(b),
                                                (utf8proc_uint8_t *)u);
        if ((tok->byte_sym[b] = vocab_id(tok, u, n)) < 0)
            return tfi_tok_bad(L,
                               "the vocabulary has no symbol for byte 0x%02x (U+%04X): not a "
                               "byte-level BPE vocabulary",
                               b, (unsigned)tfi_byte_to_unicode(b));
    }
    return TF_OK;
}

/* ---- components: normaliser, pre-tokenizer, post-processor, decoder -------- */

static tf_status add_normalizer(tfi_tok_loader *L, json_object *c, const char *where, int depth)
{
    tf_tokenizer *tok = L->tok;
    tf_status st = TF_OK;
    const char *type = component_type(L, c, where, &st);
    if (!type)
        return st;
    static const struct {
        const char *name;
        int opts;
    } forms[] = {
        {"NFC", UTF8PROC_STABLE | UTF8PROC_COMPOSE},
        {"NFD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE},
        {"NFKC", UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT},
        {"NFKD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT},
    };
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        if (strcmp(type, forms[i].name) == 0) {
            if (tok->n_norm == TFI_TOK_MAX_NORMALIZERS)
                return tfi_tok_bad(L, "%s: more than %d normalisers", where,
                                   TFI_TOK_MAX_NORMALIZERS);
            tok->norm_opts[tok->n_norm++] = forms[i].opts;
            return TF_OK;
        }
    }
    if (strcmp(type, "Sequence") == 0 && depth < 4) {
        json_object *list = tfi_json_member(c, "normalizers");
        if (!list || !json_object_is_type(list, json_type_array))
            return tfi_tok_bad(L, "%s.normalizers is not an array", where);
        for (size_t i = 0; i < json_object_array_length(list) && st == TF_OK; i++) {
            char w[96];
            snprintf(w, sizeof w, "%s.normalizers[%zu]", where, i);
            st = add_normalizer(L, json_object_array_get_idx(list, i), w, depth + 1);
        }
        return st;
    }
    return tfi_tok_bad(
        L, "%s type \"%s\" is not supported (NFC, NFD, NFKC, NFKD or a Sequence of them)", where,
        type);
}

/* The pre-tokenizer's regex: GPT-2's pattern, with \s spelled out as the
 * JavaScript reference's white space (PCRE2's \s differs at U+0085, U+180E
 * and U+FEFF):
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static tf_status compile_regex(tfi_tok_loader *L)
{
    tf_tokenizer *tok = L->tok;
    char ws[512];
    size_t k = 0;
    for (size_t i = 0; i < tfi_js_space_count; i++) {
        const tfi_range *r = &tfi_js_space[i];
        k += (size_t)(r->lo == r->hi ? snprintf(ws + k, sizeof ws - k, "\\x{%x}", (unsigned)r->lo)
                                     : snprintf(ws + k, sizeof ws - k, "\\x{%x}-\\x{%x}",
                                                (unsigned)r->lo, (unsigned)r->hi));
    }
    char pat[2600];
    snprintf(
        pat, sizeof pat,
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^%s\\p{L}\\p{N}]+|[%s]+(?![^%s])|[%s]+", ws,
        ws, ws, ws);
    int err;
    PCRE2_SIZE at;
    tok->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err,
                            &at, NULL);
    if (!tok->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return tfi_fail(NULL, TF_ERR_STATE, "%s: the pre-tokenizer regex does not compile: %s",
                        L->name, (const char *)msg);
    }
    /* without JIT the interpreter runs it, only slower */
    tok->re_jit = pcre2_jit_compile(tok->re, PCRE2_JIT_COMPLETE) == 0;
    if (!(tok->md = pcre2_match_data_create_from_pattern(tok->re, NULL)))
        return tfi_tok_nomem(L);
    return TF_OK;
}

/* ByteLevel, or absent where the reference accepts that too (post-processor
 * and decoder do nothing to ids of one text). */
static tf_status byte_level(tfi_tok_loader *L, json_object *root, const char *key, int required)
{
    json_object *c = tfi_json_member(root, key);
    if (!c && !required)
        return TF_OK;
    if (!c)
        return tfi_tok_bad(L, "no \"%s\"; byte-level BPE needs the ByteLevel one", key);
    tf_status st = TF_OK;
    const char *type = component_type(L, c, key, &st);
    if (!type)
        return st;
    if (strcmp(type, "ByteLevel") != 0)
        return tfi_tok_bad(L, "%s type \"%s\" is not supported (only ByteLevel)", key, type);
    return TF_OK;
}

static tf_status load_components(tfi_tok_loader *L, json_object *root)
{
    tf_tokenizer *tok = L->tok;
    json_object *norm = tfi_json_member(root, "normalizer"),
                *pre = tfi_json_member(root, "pre_tokenizer");
    tf_status st;
    if ((norm && (st = add_normalizer(L, norm, "normalizer", 0)) != TF_OK) ||
        (st = byte_level(L, root, "pre_tokenizer", 1)) != TF_OK ||
        (st = byte_level(L, root, "post_processor", 0)) != TF_OK ||
        (st = byte_level(L, root, "decoder", 0)) != TF_OK)
        return st;
    int trim;
    if ((st = tfi_tok_opt_bool(L, pre, "pre_tokenizer", "add_prefix_space", 0,
                               &tok->add_prefix_space)) != TF_OK ||
        (st = tfi_tok_opt_bool(L, pre, "pre_tokenizer", "use_regex", 1, &tok->use_regex)) !=
            TF_OK ||
        (st = tfi_tok_opt_bool(L, pre, "pre_tokenizer", "trim_offsets", 0, &trim)) != TF_OK)
        return st;
    return tok->use_regex ? compile_regex(L) : TF_OK;
}

/* ---- id tables ------------------------------------------------------------------ */

/* A vocabulary token's bytes: each character stands for one byte.  A token
 * with a character outside the alphabet decodes to its own UTF-8, as the
 * Rust crate's ByteLevel decoder does. */
static size_t byte_decode(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        int b = l > 0 ? tfi_unicode_to_byte((uint32_t)cp) : -1;
        if (b < 0) {
            memcpy(out, s, n);
            return n;
        }
        out[k++] = (char)b;
        i += (size_t)l;
    }
    return k;
}

static tf_status build_ids(tfi_tok_loader *L)
{
    tf_tokenizer *tok = L->tok;
    size_t n = (size_t)tok->n_ids;
    /* A table indexed by id: refuse ids spread far beyond the entries that
     * fill them, so that a small file cannot ask for a huge table. */
    if (n > 8 * (L->n_vocab + (size_t)tok->n_added) + 1024)
        return tfi_tok_bad(L, "ids go up to %zu for %zu tokens: too sparse", n - 1,
                           L->n_vocab + (size_t)tok->n_added);
    tok->tok_off = malloc(n * sizeof *tok->tok_off);
    tok->tok_len = malloc(n * sizeof *tok->tok_len);
    tok->dec_off = malloc(n * sizeof *tok->dec_off);
    tok->dec_len = calloc(n, sizeof *tok->dec_len);
    tok->special = calloc(n, 1);
    tok->dec_pool = malloc(tok->pool_len + 1);
    if (!tok->tok_off || !tok->tok_len || !tok->dec_off || !tok->dec_len || !tok->special ||
        !tok->dec_pool)
        return tfi_tok_nomem(L);
    for (size_t i = 0; i < n; i++)
        tok->tok_off[i] = UINT32_MAX;
    for (size_t i = 0; i <= tok->vocab.mask; i++) {
        const tfi_strslot *s = &tok->vocab.slots[i];
        if (s->off == UINT32_MAX)
            continue;
        char q[128];
        if (tok->tok_off[s->val] != UINT32_MAX)
            return tfi_tok_bad(L, "model.vocab: id %d is given to %s and another token", s->val,
                               tfi_tok_quote(tok->pool + s->off, s->len, q, sizeof q));
        tok->tok_off[s->val] = s->off;
        tok->tok_len[s->val] = s->len;
    }
    for (int32_t i = 0; i < tok->n_added; i++) {
        const tfi_added *t = &tok->added[i];
        tok->tok_off[t->id] = t->content_off;
        tok->tok_len[t->id] = t->content_len;
        tok->special[t->id] = t->special;
    }
    /* Decoded bytes: an added token's content as it is, any other token
     * byte-decoded.  The decoded form is never longer than the text. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (tok->tok_off[i] == UINT32_MAX)
            continue;
        const char *s = tok->pool + tok->tok_off[i];
        size_t len = tok->tok_len[i];
        int32_t a = tfi_strmap_get(&tok->added_map, tok->pool, s, len, tfi_hash_bytes(s, len));
        int raw = a >= 0 && tok->added[a].content_len == len &&
                  memcmp(tok->pool + tok->added[a].content_off, s, len) == 0;
        tok->dec_off[i] = (uint32_t)k;
        if (raw) {
            memcpy(tok->dec_pool + k, s, len);
            tok->dec_len[i] = (uint32_t)len;
        } else {
            tok->dec_len[i] = (uint32_t)byte_decode(s, len, tok->dec_pool + k);
        }
        k += tok->dec_len[i];
    }
    /* Output remap: a vocabulary text that is also an added token's key
     * comes out with the added token's id. */
    for (size_t i = 0; i <= tok->added_map.mask; i++) {
        const tfi_strslot *s = &tok->added_map.slots[i];
        if (s->off == UINT32_MAX)
            continue;
        int32_t m = vocab_id(tok, tok->pool + s->off, s->len), to = tok->added[s->val].id;
        if (m < 0 || m == to)
            continue;
        if (!tok->remap) {
            if (!(tok->remap = malloc(n * sizeof *tok->remap)))
                return tfi_tok_nomem(L);
            for (size_t j = 0; j < n; j++)
                tok->remap[j] = (int32_t)j;
        }
        tok->remap[m] = to;
    }
    return TF_OK;
}

/* ---- entry points ---------------------------------------------------------------- */

static tf_status parse_json(tfi_tok_loader *L, const char *text, size_t len, json_object **root)
{
    if (len > TFI_TOK_MAX_FILE)
        return tfi_tok_bad(L, "%zu bytes, more than the %zu MiB a tokenizer.json may have", len,
                           TFI_TOK_MAX_FILE >> 20);
    json_tokener *jt = json_tokener_new();
    if (!jt)
        return tfi_tok_nomem(L);
    json_tokener_set_flags(jt, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *obj = json_tokener_parse_ex(jt, text, (int)len);
    enum json_tokener_error err = json_tokener_get_error(jt);
    size_t end = json_tokener_get_parse_end(jt);
    json_tokener_free(jt);
    if (err == json_tokener_continue)
        err = json_tokener_error_parse_eof;
    if (!obj || err != json_tokener_success) {
        json_object_put(obj);
        return tfi_tok_bad(L, "not valid JSON: %s at byte %zu", json_tokener_error_desc(err), end);
    }
    for (size_t i = end; i < len; i++) {
        if (!strchr(" \t\r\n", text[i]) || text[i] == '\0') {
            json_object_put(obj);
            return tfi_tok_bad(L, "not valid JSON: text after the top-level value at byte %zu", i);
        }
    }
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return tfi_tok_bad(L, "the top level is not a JSON object");
    }
    *root = obj;
    return TF_OK;
}

static tf_status build(const char *name, const char *text, size_t len, tf_tokenizer **out)
{
    tfi_tok_loader L = {name, NULL, 0, 0};
    json_object *root = NULL;
    tf_status st = parse_json(&L, text, len, &root);
    if (st != TF_OK)
        return st;
    if (!(L.tok = calloc(1, sizeof *L.tok))) {
        json_object_put(root);
        return tfi_tok_nomem(&L);
    }
    if ((st = load_model(&L, root)) == TF_OK && (st = load_components(&L, root)) == TF_OK &&
        (st = tfi_added_load(&L, root)) == TF_OK && (st = build_ids(&L)) == TF_OK &&
        tfi_word_cache_init(&L.tok->cache, (size_t)1 << 16) != TF_OK)
        st = tfi_tok_nomem(&L);
    json_object_put(root);
    if (st != TF_OK) {
        tfi_tokenizer_destroy(L.tok);
        return st;
    }
    *out = L.tok;
    return TF_OK;
}

TF_API tf_status tf_tokenizer_parse(const char *json, size_t len, tf_tokenizer **out)
{
    if (out)
        *out = NULL;
    if (!out || (!json && len > 0))
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_tokenizer_parse: %s is NULL",
                        !out ? "out" : "json");
    return build("tokenizer JSON", json ? json : "", len, out);
}

TF_API tf_status tf_tokenizer_load(const char *path, tf_tokenizer **out)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_tokenizer_load: %s is NULL",
                        !path ? "path" : "out");
    FILE *f = fopen(path, "rb");
    if (!f)
        return tfi_fail(NULL, TF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return tfi_fail(NULL, TF_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > TFI_TOK_MAX_FILE) {
        fclose(f);
        return tfi_fail(NULL, TF_ERR_FORMAT,
                        "%s: %lld bytes, more than the %zu MiB a "
                        "tokenizer.json may have",
                        path, (long long)sb.st_size, TFI_TOK_MAX_FILE >> 20);
    }
    size_t size = (size_t)sb.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        fclose(f);
        return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, size, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || got != size) {
        free(buf);
        return tfi_fail(NULL, TF_ERR_IO, "%s: read error (%zu of %zu bytes)", path, got, size);
    }
    tf_status st = build(path, buf, size, out);
    free(buf);
    return st;
}
