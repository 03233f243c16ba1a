/*
 * fuzz_tokenizer.c -- libFuzzer target: the BPE tokenizer on untrusted
 * bytes.  Odd first byte: the rest is a tokenizer.json, loaded and used on
 * a fixed text; even: the rest is text, encoded by a fixed small tokenizer
 * (the NeoX-style test file: NFC, added tokens) and decoded again.
 */
#include <string.h>

#include "fuzz_util.h"

static const char sample[] = "Hello  world<|endoftext|> caf\xc3\xa9 \xe2\x80\x94 123 \xf0\x9f\x98\x80\n";

static void encode_decode(tf_tokenizer *tok, const char *text, size_t len)
{
    size_t n = 0;
    if (tf_tokenizer_encode(tok, text, len, NULL, 0, &n) != TF_OK || n > (1u << 20))
        return;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids)
        return;
    if (tf_tokenizer_encode(tok, text, len, ids, n, &n) == TF_OK) {
        size_t blen = 0;
        if (tf_tokenizer_decode(tok, ids, n, NULL, 0, &blen) == TF_OK) {
            char *buf = malloc(blen + 1);
            if (buf && tf_tokenizer_decode(tok, ids, n, buf, blen + 1, &blen) != TF_OK)
                abort(); /* the size query said it fits */
            free(buf);
        }
    }
    free(ids);
}

static tf_tokenizer *fixed_tokenizer(void)
{
    static tf_tokenizer *tok;
    if (!tok && tf_tokenizer_load(TF_FUZZ_ROOT "/tests/data/tokenizer/neox_style.json", &tok) !=
                    TF_OK)
        abort();
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1) {
        tf_tokenizer *tok = NULL;
        if (tf_tokenizer_parse((const char *)data + 1, size - 1, &tok) == TF_OK) {
            encode_decode(tok, sample, sizeof sample - 1);
            tf_tokenizer_free(tok);
        }
    } else {
        encode_decode(fixed_tokenizer(), (const char *)data + 1, size - 1);
    }
    return 0;
}
