/* test_open.c -- opening a checkpoint to run it: float16 and bfloat16
 * tensors (exact widening), PyTorch files refused with the way out, files
 * under the official names opened with a configuration (tf_model_open_config)
 * and their errors in the file's names, the model opened without gradients
 * that still trains like a loaded one, and the header-only reader. */
#include <check.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "model.h"
#include "model_io.h"
#include "scratch.h"

/* ---- the widenings, against arithmetic on the fields -------------------- */

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* The value of a binary format with `mbits` mantissa bits and exponent
 * bias `bias`, computed from its fields in double (no bit tricks). */
static double field_value(uint32_t sign, uint32_t exp, uint32_t mant, int mbits, int bias)
{
    double v = exp == 0 ? ldexp((double)mant, 1 - bias - mbits)
                        : ldexp((double)(mant + (1u << mbits)), (int)exp - bias - mbits);
    return sign ? -v : v;
}

START_TEST(test_f16_every_value)
{
    for (uint32_t h = 0; h < 65536; h++) {
        const uint32_t sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
        const float got = tfi_f16_to_f32((uint16_t)h);
        if (exp == 31 && mant != 0) { /* NaN: quiet bit and payload move up */
            ck_assert_msg(isnan(got), "0x%04x", h);
            ck_assert_uint_eq(bits_of(got), (sign << 31) | 0x7f800000u | (mant << 13));
        } else if (exp == 31) {
            ck_assert(isinf(got) && (signbit(got) != 0) == (sign != 0));
        } else {
            const double want = field_value(sign, exp, mant, 10, 15);
            ck_assert_msg((double)got == want && (signbit(got) != 0) == (sign != 0),
                          "0x%04x: %.9g, want %.9g", h, (double)got, want);
        }
    }
    /* the extremes by name */
    ck_assert(tfi_f16_to_f32(0x0001) == 0x1p-24f);  /* smallest subnormal */
    ck_assert(tfi_f16_to_f32(0x03ff) == 0x1.ff8p-15f); /* largest subnormal */
    ck_assert(tfi_f16_to_f32(0x7bff) == 65504.0f);
}
END_TEST

START_TEST(test_bf16_every_value)
{
    for (uint32_t b = 0; b < 65536; b++) {
        const uint32_t sign = b >> 15, exp = (b >> 7) & 255, mant = b & 127;
        const float got = tfi_bf16_to_f32((uint16_t)b);
        if (exp == 255) {
            ck_assert(mant ? isnan(got) : isinf(got));
            ck_assert_uint_eq(bits_of(got), b << 16);
        } else {
            const double want = field_value(sign, exp, mant, 7, 127);
            ck_assert_msg((double)got == want && (signbit(got) != 0) == (sign != 0),
                          "0x%04x: %.9g, want %.9g", b, (double)got, want);
        }
        /* narrowing what was widened gives it back (NaNs stay NaN) */
        const uint16_t back = tfi_f32_to_bf16(got);
        if (isnan(got))
            ck_assert(isnan(tfi_bf16_to_f32(back)));
        else
            ck_assert_uint_eq(back, b);
    }
    /* ties to even, and overflow to infinity */
    ck_assert_uint_eq(tfi_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);       /* tie, down to even */
    ck_assert_uint_eq(tfi_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);   /* tie, up to even */
    ck_assert_uint_eq(tfi_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81); /* above the tie */
    ck_assert_uint_eq(tfi_f32_to_bf16(FLT_MAX), 0x7f80);
    ck_assert_uint_eq(tfi_f32_to_bf16(-FLT_MAX), 0xff80);
}
END_TEST

/* ---- models and files ------------------------------------------------------ */

static tf_model_params tiny_params(void)
{
    tf_model_params p = tf_model_default_params();
    p.num_layers = 2;
    p.hidden_size = 16;
    p.num_attention_heads = 2;
    p.qkv_slot_num = 12;
    p.proj_slot_num = 10;
    p.ffn_slot_num = 24;
    p.vocab_size = 40;
    p.seq_length = 8;
    p.seed = 5;
    return p;
}

/* The YAML of tiny_params, official style, one key a line (key k on line
 * k + 2), with the text `from` replaced by `to` (from NULL: as it is). */
static tf_config *tiny_config(const char *from, const char *to)
{
    static const char base[] = "{\n"
                               "\"num_layers\": 2,\n"
                               "\"hidden_size\": 16,\n"
                               "\"num_attention_heads\": 2,\n"
                               "\"qkv_slot_num\": 12,\n"
                               "\"proj_slot_num\": 10,\n"
                               "\"ffn_slot_num\": 24,\n"
                               "\"seq_length\": 8,\n"
                               "\"rotary_pct\": 0.25,\n"
                               "\"norm_activation_type\": \"l2_norm_gelu\",\n"
                               "\"vocab_size\": 40,\n"
                               "}\n";
    char text[1024];
    const char *at = from ? strstr(base, from) : NULL;
    ck_assert(!from || at);
    if (at)
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    else
        snprintf(text, sizeof text, "%s", base);
    tf_config *cfg = NULL;
    ck_assert_msg(tf_config_parse(text, strlen(text), &cfg) == TF_OK, "%s", tf_last_error());
    return cfg;
}

#define NO_VOCAB "\"vocab_size\": 40,\n", ""

static float *tensor_copy(const tf_model *m, const char *name, size_t *count)
{
    int64_t shape[2];
    int nd;
    ck_assert_int_eq(tf_model_tensor_shape(m, name, shape, &nd), TF_OK);
    *count = (size_t)shape[0] * (size_t)(nd == 2 ? shape[1] : 1);
    float *buf = malloc(*count * sizeof(float));
    ck_assert_int_eq(tf_model_get_tensor(m, name, buf, *count), TF_OK);
    return buf;
}

/* Every tensor of a and b the same to the bit. */
static void expect_same_tensors(const tf_model *a, const tf_model *b)
{
    ck_assert_int_eq(tf_model_num_tensors(a), tf_model_num_tensors(b));
    for (int i = 0; i < tf_model_num_tensors(a); i++) {
        const char *name = tf_model_tensor_name(a, i);
        size_t na, nb;
        float *x = tensor_copy(a, name, &na), *y = tensor_copy(b, name, &nb);
        ck_assert_uint_eq(na, nb);
        ck_assert_msg(memcmp(x, y, na * sizeof(float)) == 0, "%s differs", name);
        free(x);
        free(y);
    }
}

/* How write_model stores the tensors. */
typedef enum { AS_F32, AS_F16_BITS, AS_BF16 } storage;

/* Writes m's tensors to path: under the official names (and without
 * metadata) if `official`, else with tf_model_save's metadata; F32, or
 * BF16 (rounded), or F16 where the model's values are f16 bit patterns
 * (make_f16_model).  `drop` (may be NULL) is left out. */
static void write_model(tf_model *m, const char *path, int official, storage as,
                        const char *drop)
{
    tfi_st_writer *w = tfi_st_writer_new();
    ck_assert_ptr_nonnull(w);
    if (!official)
        ck_assert_int_eq(tfi_model_meta_write(w, m), TF_OK);
    const int nt = tf_model_num_tensors(m);
    void **bufs = calloc((size_t)nt, sizeof *bufs);
    for (int i = 0; i < nt; i++) {
        const char *name = tf_model_tensor_name(m, i);
        char off[160];
        tfi_official_name(m->p.num_layers, name, off, sizeof off);
        if (drop && strcmp(drop, official ? off : name) == 0)
            continue;
        int64_t shape[2];
        int nd;
        size_t n;
        ck_assert_int_eq(tf_model_tensor_shape(m, name, shape, &nd), TF_OK);
        float *x = tensor_copy(m, name, &n);
        tfi_st_dtype dt = TFI_ST_F32;
        bufs[i] = x;
        if (as != AS_F32) {
            uint16_t *h = malloc(n * sizeof *h);
            for (size_t j = 0; j < n; j++)
                h[j] = as == AS_BF16 ? tfi_f32_to_bf16(x[j]) : (uint16_t)x[j];
            free(x);
            bufs[i] = h;
            dt = as == AS_BF16 ? TFI_ST_BF16 : TFI_ST_F16;
        }
        ck_assert_int_eq(tfi_st_writer_add(w, official ? off : name, dt, nd, shape, bufs[i]),
                         TF_OK);
    }
    ck_assert_int_eq(tfi_st_writer_write(w, path, NULL), TF_OK);
    tfi_st_writer_free(w);
    for (int i = 0; i < nt; i++)
        free(bufs[i]);
    free(bufs);
}

static tf_model *created(void)
{
    tf_model_params p = tiny_params();
    tf_model *m = NULL;
    ck_assert_msg(tf_model_create(&p, &m) == TF_OK, "%s", tf_last_error());
    return m;
}

/* created(), saved by tf_model_save to path (cap bytes) = the scratch
 * directory's `name`. */
static tf_model *created_saved(const char *name, char *path, size_t cap)
{
    tf_model *m = created();
    tt_tmp_path(path, cap, name);
    ck_assert_msg(tf_model_save(m, NULL, path) == TF_OK, "%s", tf_last_error());
    return m;
}

static tf_model *opened(const char *path, const tf_config *cfg)
{
    tf_model *m = NULL;
    ck_assert_msg(tf_model_open_config(path, cfg, &m) == TF_OK, "%s", tf_last_error());
    return m;
}

/* Expects a refusal with status st whose message contains every string of
 * the NULL-terminated list. */
static void expect_open_fails(const char *path, const tf_config *cfg, tf_status st, ...)
{
    tf_model *m = (tf_model *)1;
    ck_assert_int_eq(tf_model_open_config(path, cfg, &m), st);
    ck_assert_ptr_null(m);
    va_list ap;
    va_start(ap, st);
    for (const char *s; (s = va_arg(ap, const char *));)
        ck_assert_msg(strstr(tf_last_error(), s), "'%s' not in: %s", s, tf_last_error());
    va_end(ap);
}

/* ---- F16 and BF16 files ------------------------------------------------------ */

START_TEST(test_bf16_file_loads)
{
    tf_model *a = created();
    char path[512];
    tt_tmp_path(path, sizeof path, "bf16.safetensors");
    write_model(a, path, 0, AS_BF16, NULL);
    tf_model *b = opened(path, NULL);
    tf_model *c = created();
    ck_assert_msg(tf_model_load(c, NULL, path) == TF_OK, "%s", tf_model_errmsg(c));
    for (int i = 0; i < tf_model_num_tensors(a); i++) {
        const char *name = tf_model_tensor_name(a, i);
        size_t n;
        float *x = tensor_copy(a, name, &n), *y = tensor_copy(b, name, &n);
        for (size_t j = 0; j < n; j++)
            ck_assert_msg(bits_of(y[j]) == bits_of(tfi_bf16_to_f32(tfi_f32_to_bf16(x[j]))),
                          "%s[%zu]", name, j);
        free(x);
        free(y);
    }
    expect_same_tensors(b, c); /* open and load read the same */
    tf_model_free(a);
    tf_model_free(b);
    tf_model_free(c);
}
END_TEST

/* A model whose every value is an f16 bit pattern (as a float) cycling
 * through finite values of all magnitudes, with the specials in the
 * embedding's first row: what write_model(AS_F16_BITS) stores. */
static tf_model *make_f16_model(void)
{
    static const uint16_t specials[] = {0x0000, 0x8000, 0x0001, 0x83ff, 0x7bff, 0x7c00,
                                        0xfc00, 0x7e00, 0x7d23, 0xfe01, 0x3c00};
    tf_model *m = created();
    uint32_t next = 0;
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        const char *name = tf_model_tensor_name(m, i);
        size_t n;
        float *x = tensor_copy(m, name, &n);
        for (size_t j = 0; j < n; j++) {
            next = (next + 40503u) & 0xffffu;
            uint16_t h = (uint16_t)((next & 0x7c00u) == 0x7c00u ? next ^ 0x4000u : next);
            if (i == 0 && j < sizeof specials / sizeof specials[0])
                h = specials[j];
            x[j] = (float)h;
        }
        ck_assert_int_eq(tf_model_set_tensor(m, name, x, n), TF_OK);
        free(x);
    }
    return m;
}

START_TEST(test_f16_file_loads_exactly)
{
    tf_model *bits = make_f16_model();
    char path[512];
    tt_tmp_path(path, sizeof path, "f16.safetensors");
    write_model(bits, path, 0, AS_F16_BITS, NULL);
    tf_model *b = opened(path, NULL);
    for (int i = 0; i < tf_model_num_tensors(b); i++) {
        const char *name = tf_model_tensor_name(b, i);
        size_t n;
        float *h = tensor_copy(bits, name, &n), *y = tensor_copy(b, name, &n);
        for (size_t j = 0; j < n; j++)
            ck_assert_msg(bits_of(y[j]) == bits_of(tfi_f16_to_f32((uint16_t)h[j])),
                          "%s[%zu] = %a for f16 0x%04x", name, j, (double)y[j],
                          (unsigned)h[j]);
        free(h);
        free(y);
    }
    float e[11];
    size_t n;
    float *emb = tensor_copy(b, "embed.weight", &n);
    memcpy(e, emb, sizeof e);
    free(emb);
    ck_assert(e[0] == 0.0f && !signbit(e[0]) && e[1] == 0.0f && signbit(e[1]));
    ck_assert(e[2] == 0x1p-24f && e[3] == -0x1.ff8p-15f && e[4] == 65504.0f);
    ck_assert(isinf(e[5]) && e[5] > 0 && isinf(e[6]) && e[6] < 0);
    ck_assert(isnan(e[7]) && isnan(e[8]) && isnan(e[9]) && e[10] == 1.0f);
    ck_assert_uint_eq(bits_of(e[8]), 0x7fa46000u); /* 0x7d23: signalling payload kept */
    /* the in-memory reader gives the same */
    tf_model *c = created();
    ck_assert_msg(tf_model_load(c, NULL, path) == TF_OK, "%s", tf_model_errmsg(c));
    expect_same_tensors(b, c);
    tf_model_free(bits);
    tf_model_free(b);
    tf_model_free(c);
}
END_TEST

START_TEST(test_other_dtypes_refused)
{
    tf_model *a = created();
    char path[512];
    tt_tmp_path(path, sizeof path, "i32.safetensors");
    tfi_st_writer *w = tfi_st_writer_new();
    ck_assert_int_eq(tfi_model_meta_write(w, a), TF_OK);
    size_t n;
    float *e = tensor_copy(a, "embed.weight", &n);
    const int64_t shape[2] = {40, 16};
    ck_assert_int_eq(tfi_st_writer_add(w, "embed.weight", TFI_ST_I32, 2, shape, e), TF_OK);
    ck_assert_int_eq(tfi_st_writer_write(w, path, NULL), TF_OK);
    tfi_st_writer_free(w);
    expect_open_fails(path, NULL, TF_ERR_FORMAT, "embed.weight", "I32", "F16 or BF16", NULL);
    free(e);
    tf_model_free(a);
}
END_TEST

START_TEST(test_export_bf16)
{
    tf_model *a = created();
    ck_assert_int_eq(tf_pattention_set_tau(tf_model_pattention(a, 1, TF_SET_FFN), 3.25), TF_OK);
    char f32[512], bf16[512];
    tt_tmp_path(f32, sizeof f32, "f32.safetensors");
    tt_tmp_path(bf16, sizeof bf16, "bf16.safetensors");
    ck_assert_int_eq(tf_model_export(a, f32, TF_DTYPE_F32), TF_OK);
    ck_assert_int_eq(tf_model_export(a, bf16, TF_DTYPE_BF16), TF_OK);
    tfi_st_file f;
    ck_assert_int_eq(tfi_st_open(bf16, &f, NULL), TF_OK);
    for (int i = 0; i < f.ntensors; i++)
        ck_assert_int_eq(f.tensors[i].dtype, TFI_ST_BF16);
    const size_t half = f.size;
    tfi_st_close(&f);
    ck_assert_int_eq(tfi_st_open(f32, &f, NULL), TF_OK);
    ck_assert_uint_lt(half - (f.size - f.data_start) / 2, f.data_start + 64);
    tfi_st_close(&f);
    tf_model *x = opened(f32, NULL), *y = opened(bf16, NULL);
    expect_same_tensors(a, x);
    for (int i = 0; i < tf_model_num_tensors(a); i++) {
        const char *name = tf_model_tensor_name(a, i);
        size_t n;
        float *want = tensor_copy(a, name, &n), *got = tensor_copy(y, name, &n);
        for (size_t j = 0; j < n; j++)
            ck_assert_uint_eq(bits_of(got[j]), bits_of(tfi_bf16_to_f32(tfi_f32_to_bf16(want[j]))));
        free(want);
        free(got);
    }
    ck_assert(tf_pattention_tau(tf_model_pattention(y, 1, TF_SET_FFN)) == 3.25);
    ck_assert_int_eq(tf_pattention_scale_policy(tf_model_pattention(y, 1, TF_SET_FFN)),
                     TF_SCALE_PINNED);
    /* refused: another dtype, and nothing written */
    char bad[512];
    tt_tmp_path(bad, sizeof bad, "bad.safetensors");
    ck_assert_int_eq(tf_model_export(a, bad, (tf_dtype)7), TF_ERR_ARGUMENT);
    ck_assert_int_eq(access(bad, F_OK), -1);
    ck_assert_int_eq(tf_model_export(NULL, bad, TF_DTYPE_F32), TF_ERR_ARGUMENT);
    tf_model_free(a);
    tf_model_free(x);
    tf_model_free(y);
}
END_TEST

/* ---- PyTorch files -------------------------------------------------------------- */

START_TEST(test_pytorch_files_refused)
{
    static const unsigned char legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                           0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
    static const unsigned char pickle[] = {0x80, 0x04, 0x95, 0x10, 0, 0, 0, 0, 0, 0, 0, '}', '.'};
    char zip[512], old[512], pkl[512];
    tt_tmp_path(zip, sizeof zip, "pytorch_model.bin");
    tt_tmp_path(old, sizeof old, "legacy.pt");
    tt_tmp_path(pkl, sizeof pkl, "other.pkl");
    FILE *f = fopen(zip, "wb");
    static const char zipped[] = "PK\003\004\024\000\000\000\000\000archive/data.pkl";
    fwrite(zipped, 1, sizeof zipped - 1, f);
    fclose(f);
    f = fopen(old, "wb");
    fwrite(legacy, 1, sizeof legacy, f);
    fclose(f);
    f = fopen(pkl, "wb");
    fwrite(pickle, 1, sizeof pickle, f);
    fclose(f);
    const char *paths[] = {zip, old, pkl, "tests/data/torch/tiny_fp32.pt",
                           "tests/data/torch/tiny_legacy_fp32.pt"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        expect_open_fails(paths[i], NULL, TF_ERR_FORMAT, paths[i], "not safetensors",
                          "convert it with tools/convert_checkpoint.py", "tf-convert", NULL);
        ck_assert_ptr_nonnull(strstr(tf_last_error(), i == 2 ? "pickle" : "PyTorch"));
        tf_model *m = created();
        ck_assert_int_eq(tf_model_load(m, NULL, paths[i]), TF_ERR_FORMAT);
        ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "tools/convert_checkpoint.py"));
        tf_model_free(m);
        tf_model_params p = tf_model_default_params();
        ck_assert_int_eq(tf_checkpoint_info(paths[i], &p, NULL), TF_ERR_FORMAT);
        ck_assert_ptr_nonnull(strstr(tf_last_error(), "tools/convert_checkpoint.py"));
    }
    /* a damaged safetensors file is not called a PyTorch file */
    tt_tmp_path(pkl, sizeof pkl, "damaged.safetensors");
    f = fopen(pkl, "wb");
    static const char damaged[] = "\200\002\000\000\000\000\000\000{\"a\": 1}";
    fwrite(damaged, 1, sizeof damaged - 1, f);
    fclose(f);
    expect_open_fails(pkl, NULL, TF_ERR_FORMAT, "exceeds", NULL);
    ck_assert_ptr_null(strstr(tf_last_error(), "PyTorch"));
}
END_TEST

/* ---- official names and configurations -------------------------------------------- */

START_TEST(test_open_official_names_with_config)
{
    tf_model *a = created();
    char path[512];
    tt_tmp_path(path, sizeof path, "official.safetensors");
    write_model(a, path, 1, AS_F32, NULL);
    /* without a configuration: refused, saying what to do */
    expect_open_fails(path, NULL, TF_ERR_FORMAT, "no configuration in the metadata",
                      "tf_model_open_config", NULL);
    /* with one, the same model; vocab_size from the embedding if the
     * config has none (the official configs do not) */
    for (int with_vocab = 0; with_vocab < 2; with_vocab++) {
        tf_config *cfg = with_vocab ? tiny_config(NULL, NULL) : tiny_config(NO_VOCAB);
        tf_model *b = opened(path, cfg);
        tf_model_params pa = tf_model_default_params(), pb = tf_model_default_params();
        tf_model_get_params(a, &pa);
        tf_model_get_params(b, &pb);
        ck_assert_int_eq(pb.vocab_size, 40);
        ck_assert_int_eq(pb.ffn_slot_num, pa.ffn_slot_num);
        expect_same_tensors(a, b);
        const int32_t tokens[5] = {3, 39, 0, 17, 8};
        float la[5 * 40], lb[5 * 40];
        ck_assert_int_eq(tf_model_forward(a, 1, 5, tokens, NULL, la, NULL), TF_OK);
        ck_assert_int_eq(tf_model_forward(b, 1, 5, tokens, NULL, lb, NULL), TF_OK);
        ck_assert(memcmp(la, lb, sizeof la) == 0);
        tf_model_free(b);
        tf_config_free(cfg);
    }
    /* a configuration that disagrees with the file: the file's names */
    tf_config *wide = tiny_config("16", "32");
    expect_open_fails(path, wide, TF_ERR_FORMAT, "sequential.0.word_embeddings.weight",
                      "[40, 16]", "[40, 32]", NULL);
    tf_config_free(wide);
    tf_config *more = tiny_config("24", "30");
    expect_open_fails(path, more, TF_ERR_FORMAT, "sequential.2.mlp.key_param_tokens", NULL);
    tf_config_free(more);
    tf_config *deep = tiny_config("2,", "3,");
    expect_open_fails(path, deep, TF_ERR_CONFIG, "'num_layers' is 3", "has 2 layers", NULL);
    tf_config_free(deep);
    /* a missing tensor is named as the file would call it */
    char holed[512];
    tt_tmp_path(holed, sizeof holed, "holed.safetensors");
    write_model(a, holed, 1, AS_F32, "sequential.5.norm.bias");
    tf_config *cfg = tiny_config(NULL, NULL);
    expect_open_fails(holed, cfg, TF_ERR_FORMAT, "no tensor 'sequential.5.norm.bias' "
                      "(final_norm.bias)", NULL);
    write_model(a, holed, 1, AS_F32, "sequential.3.attention.value.value_param_tokens");
    expect_open_fails(holed, cfg, TF_ERR_FORMAT,
                      "'sequential.3.attention.value.value_param_tokens'", NULL);
    /* tf_model_load names them so too */
    tf_model *c = created();
    ck_assert_int_eq(tf_model_load(c, NULL, holed), TF_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(c), "sequential.3.attention.value"));
    tf_model_free(c);
    tf_config_free(cfg);
    tf_model_free(a);
}
END_TEST

START_TEST(test_config_checked_against_metadata)
{
    char path[512];
    tf_model *a = created_saved("lib.safetensors", path, sizeof path);
    tf_config *same = tiny_config(NULL, NULL);
    tf_model *b = opened(path, same);
    expect_same_tensors(a, b);
    tf_model_free(b);
    tf_config_free(same);
    /* an official config without vocab_size: the file's 40 is not judged */
    tf_config *novocab = tiny_config(NO_VOCAB);
    b = opened(path, novocab);
    tf_model_free(b);
    tf_config_free(novocab);
    static const char *const differ[][4] = {
        {"16", "32", "<string>:3: 'hidden_size' is 32 in the configuration but 16 in"},
        {"40", "41", "<string>:11: 'vocab_size' is 41 in the configuration but 40 in"},
        {"0.25", "0.5", "<string>:9: 'rotary_pct' is 0.5 in the configuration but 0.25 in"},
        {"l2_norm_gelu", "softmax", "<string>:10: 'norm_activation_type' is softmax in the "
                                    "configuration but l2_norm_gelu in"},
        {"\"seq_length\": 8", "\"seq_length\": 2048", "<string>:8: 'seq_length' is 2048"},
        {"12", "16", "<string>:5: 'qkv_slot_num' is 16"},
    };
    for (size_t i = 0; i < sizeof differ / sizeof differ[0]; i++) {
        tf_config *cfg = tiny_config(differ[i][0], differ[i][1]);
        expect_open_fails(path, cfg, TF_ERR_CONFIG, differ[i][2], path, NULL);
        tf_config_free(cfg);
    }
    /* the official 150M configuration is not this model */
    tf_config *official = NULL;
    ck_assert_int_eq(tf_config_load("tests/data/configs/150M_eval.yml", &official), TF_OK);
    expect_open_fails(path, official, TF_ERR_CONFIG, "150M_eval.yml:", "'num_layers' is 12 in "
                      "the configuration but 2 in", NULL);
    tf_config_free(official);
    tf_model_free(a);
}
END_TEST

/* ---- inference mode ------------------------------------------------------------------ */

static void step_once(tf_model *m, tf_optimizer *opt, float *loss)
{
    const int32_t tokens[2 * 6] = {1, 5, 9, 2, 39, 0, 7, 7, 3, 12, 30, 4};
    const int32_t targets[2 * 6] = {5, 9, 2, 39, 0, 11, 7, 3, 12, 30, 4, 1};
    ck_assert_int_eq(tf_model_forward(m, 2, 6, tokens, targets, NULL, loss), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
}

START_TEST(test_opened_model_has_no_gradients_and_trains)
{
    char path[512];
    tf_model *a = created_saved("ckpt.safetensors", path, sizeof path);
    tf_model *b = opened(path, NULL);
    ck_assert_ptr_null(b->embed_grad);
    for (int i = 0; i < b->nrefs; i++)
        ck_assert_msg(b->refs[i].grad == NULL, "%s has a gradient", b->refs[i].name);
    for (int i = 0; i < b->p.num_layers * TFI_SETS_PER_LAYER; i++)
        ck_assert(b->sets[i].key_grad == NULL && b->sets[i].value_grad == NULL);
    /* running it allocates none either */
    tf_decoder *dec = NULL;
    ck_assert_int_eq(tf_decoder_create(b, 1, &dec), TF_OK);
    const int32_t prompt[3] = {4, 8, 15};
    ck_assert_int_eq(tf_decoder_prefill(dec, 3, prompt, NULL), TF_OK);
    tf_decoder_free(dec);
    ck_assert_int_eq(tf_model_zero_grad(b), TF_OK);
    ck_assert_ptr_null(b->refs[0].grad);
    /* nothing accumulated reads as zeros */
    size_t n;
    float *g = tensor_copy(b, "layers.1.mlp.key_param_tokens", &n);
    ck_assert_int_eq(tf_model_get_grad(b, "layers.1.mlp.key_param_tokens", g, n), TF_OK);
    for (size_t j = 0; j < n; j++)
        ck_assert(g[j] == 0.0f);
    tf_pattention *set = tf_model_pattention(b, 1, TF_SET_FFN);
    ck_assert_int_eq(tf_pattention_get_key_grad(set, g, n), TF_OK);
    ck_assert(g[0] == 0.0f);
    free(g);
    /* training it: the same steps as the model it was saved from */
    tf_optimizer_params op = tf_optimizer_default_params();
    op.lr = 1e-2;
    tf_optimizer *oa = NULL, *ob = NULL;
    ck_assert_int_eq(tf_optimizer_create(a, &op, &oa), TF_OK);
    ck_assert_int_eq(tf_optimizer_create(b, &op, &ob), TF_OK);
    ck_assert_ptr_nonnull(b->refs[0].grad);
    ck_assert_ptr_eq(b->refs[1].grad, b->sets[0].key_grad);
    float la[3], lb[3];
    for (int s = 0; s < 3; s++) {
        step_once(a, oa, &la[s]);
        step_once(b, ob, &lb[s]);
        ck_assert(la[s] == lb[s]);
    }
    ck_assert(lb[2] < lb[0]);
    expect_same_tensors(a, b);
    tf_optimizer_free(oa);
    tf_optimizer_free(ob);
    tf_model_free(b);
    /* a backward without an optimizer allocates them too, and growth keeps
     * a model without them so */
    b = opened(path, NULL);
    ck_assert_int_eq(tf_model_grow(b, NULL, 16, 10, 24, NULL), TF_OK);
    ck_assert_ptr_null(b->sets[0].key_grad);
    const int32_t t6[6] = {1, 2, 3, 4, 5, 6};
    ck_assert_int_eq(tf_model_forward(b, 1, 6, t6, t6, NULL, NULL), TF_OK);
    ck_assert_int_eq(tf_model_backward(b), TF_OK);
    ck_assert_ptr_nonnull(b->sets[0].key_grad);
    ck_assert_ptr_eq(b->refs[1].grad, b->sets[0].key_grad);
    tf_model_free(b);
    tf_model_free(a);
}
END_TEST

START_TEST(test_open_sizes_from_file)
{
    /* a set grown through its own handle: the file has it larger than the
     * metadata's slot numbers (layer 0's) */
    tf_model *a = created();
    ck_assert_int_eq(tf_pattention_grow(tf_model_pattention(a, 1, TF_SET_PROJ), 14, NULL), TF_OK);
    char path[512];
    tt_tmp_path(path, sizeof path, "grown.safetensors");
    ck_assert_int_eq(tf_model_save(a, NULL, path), TF_OK);
    tf_model *b = opened(path, NULL);
    ck_assert_int_eq(tf_pattention_n(tf_model_pattention(b, 1, TF_SET_PROJ)), 14);
    ck_assert_int_eq(tf_pattention_n(tf_model_pattention(b, 0, TF_SET_PROJ)), 10);
    ck_assert(tf_pattention_tau(tf_model_pattention(b, 1, TF_SET_PROJ)) ==
              tf_pattention_tau(tf_model_pattention(a, 1, TF_SET_PROJ)));
    expect_same_tensors(a, b);
    tf_model_free(a);
    tf_model_free(b);
}
END_TEST

/* ---- the header-only reader ------------------------------------------------------------ */

START_TEST(test_header_only_reader)
{
    char path[512];
    tf_model *a = created_saved("h.safetensors", path, sizeof path);
    tfi_st_file f;
    ck_assert_int_eq(tfi_st_open_header(path, &f, NULL), TF_OK);
    ck_assert(f.header_only && f.data_start < f.size);
    const tfi_st_tensor *t = tfi_st_find(&f, "embed.weight");
    ck_assert_ptr_nonnull(t);
    size_t n;
    float *want = tensor_copy(a, "embed.weight", &n), *got = malloc(n * sizeof(float));
    ck_assert_int_eq(tfi_st_copy_f32(&f, t, got, NULL), TF_OK);
    ck_assert(memcmp(want, got, n * sizeof(float)) == 0);
    /* the file shrinks under the reader: an error, not a crash */
    const tfi_st_tensor *last = &f.tensors[0];
    for (int i = 1; i < f.ntensors; i++)
        last = f.tensors[i].end > last->end ? &f.tensors[i] : last;
    ck_assert_int_eq(truncate(path, (off_t)(f.data_start + last->begin)), 0);
    float *tail = malloc((size_t)last->numel * sizeof(float));
    ck_assert_int_eq(tfi_st_copy_f32(&f, last, tail, NULL), TF_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "shrank"));
    tfi_st_close(&f);
    /* and a truncated file is refused from its header, as in memory */
    ck_assert_int_eq(tfi_st_open_header(path, &f, NULL), TF_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "beyond"));
    free(tail);
    free(want);
    free(got);
    tf_model_free(a);
}
END_TEST

Suite *open_suite(void)
{
    Suite *s = suite_create("open");
    TCase *tc = tcase_create("dtypes");
    tcase_add_test(tc, test_f16_every_value);
    tcase_add_test(tc, test_bf16_every_value);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, tt_make_basedir, tt_remove_basedir);
    tcase_add_checked_fixture(tc, tt_make_tmpdir, tt_remove_tmpdir);
    tcase_add_test(tc, test_bf16_file_loads);
    tcase_add_test(tc, test_f16_file_loads_exactly);
    tcase_add_test(tc, test_other_dtypes_refused);
    tcase_add_test(tc, test_export_bf16);
    tcase_add_test(tc, test_pytorch_files_refused);
    tcase_add_test(tc, test_open_official_names_with_config);
    tcase_add_test(tc, test_config_checked_against_metadata);
    tcase_add_test(tc, test_opened_model_has_no_gradients_and_trains);
    tcase_add_test(tc, test_open_sizes_from_file);
    tcase_add_test(tc, test_header_only_reader);
    suite_add_tcase(s, tc);
    return s;
}
