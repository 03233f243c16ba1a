/* test_safetensors.c -- the safetensors reader (strict validation) and the
 * atomic writer.  Corrupt files are written byte by byte with write_raw(). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"

#define FIXTURE "tests/data/pattention_softmax.safetensors"

/* ---- scratch directory ---------------------------------------------------- */

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/tf_st_test_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(tmpdir);
}

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static int count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ---- raw files ---------------------------------------------------------------- */

static void write_bytes_to(const char *path, const void *bytes, size_t n)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(bytes, 1, n, fp), n);
    ck_assert_int_eq(fclose(fp), 0);
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    ck_assert_int_ge(n, 0);
    rewind(fp);
    unsigned char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *size = (size_t)n;
    return buf;
}

/* u64 little-endian declared_len, then the header text, then data. */
static void write_raw_len(const char *path, uint64_t declared_len, const char *header,
                          const void *data, size_t ndata)
{
    size_t nh = strlen(header);
    unsigned char *buf = malloc(8 + nh + ndata + 1);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(declared_len >> (8 * i));
    memcpy(buf + 8, header, nh);
    if (ndata)
        memcpy(buf + 8 + nh, data, ndata);
    write_bytes_to(path, buf, 8 + nh + ndata);
    free(buf);
}

static void write_raw(const char *path, const char *header, const void *data, size_t ndata)
{
    write_raw_len(path, strlen(header), header, data, ndata);
}

static const unsigned char zeros[4096];

/* Opens path, expects status and a message naming the file and containing
 * word (and word2 if not NULL), and *f left empty. */
static void expect_refused_at(const char *path, tf_status status, const char *word,
                              const char *word2, int line)
{
    tfi_st_file f;
    memset(&f, 0xAB, sizeof f); /* the reader must zero it */
    tfi_errbuf eb = {{0}};
    tf_status st = tfi_st_open(path, &f, &eb);
    ck_assert_msg(st == status, "line %d: status %d, expected %d (%s)", line, (int)st,
                  (int)status, eb.msg);
    ck_assert_msg(strstr(eb.msg, path) != NULL, "line %d: message does not name the file: %s",
                  line, eb.msg);
    ck_assert_msg(strstr(eb.msg, word) != NULL, "line %d: '%s' not in message: %s", line,
                  word, eb.msg);
    ck_assert_msg(!word2 || strstr(eb.msg, word2) != NULL, "line %d: '%s' not in message: %s",
                  line, word2, eb.msg);
    ck_assert_str_eq(tf_last_error(), eb.msg);
    ck_assert_ptr_null(f.buf);
    ck_assert_ptr_null(f.tensors);
    ck_assert_ptr_null(f.meta_keys);
    ck_assert_ptr_null(f.name);
    ck_assert_int_eq(f.ntensors, 0);
    ck_assert_int_eq(f.nmeta, 0);
    tfi_st_close(&f); /* harmless on an empty file */
}
#define expect_refused(path, status, word, word2) \
    expect_refused_at(path, status, word, word2, __LINE__)

/* Writes header/data to a scratch file and expects TF_ERR_FORMAT. */
static void expect_header_refused_at(const char *header, size_t ndata, const char *word,
                                     const char *word2, int line)
{
    char path[512];
    tmp_path(path, sizeof path, "bad.safetensors");
    write_raw(path, header, zeros, ndata);
    expect_refused_at(path, TF_ERR_FORMAT, word, word2, line);
}
#define expect_header_refused(header, ndata, word, word2) \
    expect_header_refused_at(header, ndata, word, word2, __LINE__)

static void expect_header_accepted_at(const char *header, size_t ndata, int ntensors, int line)
{
    char path[512];
    tmp_path(path, sizeof path, "good.safetensors");
    write_raw(path, header, zeros, ndata);
    tfi_st_file f;
    tfi_errbuf eb = {{0}};
    tf_status st = tfi_st_open(path, &f, &eb);
    ck_assert_msg(st == TF_OK, "line %d: refused: %s", line, eb.msg);
    ck_assert_int_eq(f.ntensors, ntensors);
    tfi_st_close(&f);
}
#define expect_header_accepted(header, ndata, ntensors) \
    expect_header_accepted_at(header, ndata, ntensors, __LINE__)

/* ---- a small model written by the writer -------------------------------------- */

/* Bit patterns that a conversion would disturb: -0, denormal, inf, NaN
 * with payload, extremes. */
static const uint32_t f32_bits[15] = {
    0x00000000u, 0x80000000u, 0x00000001u, 0x007fffffu, 0x7f800000u,
    0xff800000u, 0x7fc12345u, 0xffbfffffu, 0x3f800000u, 0xbf800000u,
    0x7f7fffffu, 0x00800000u, 0x3eaaaaabu, 0x40490fdbu, 0xc2f6e979u,
};
static const int32_t i32_vals[5] = {0, -1, INT32_MIN, INT32_MAX, 123456789};
static const char *const tricky_value = "quote \" backslash \\ newline \n tab \t \x01 \xc3\xa9";

/* Writes weight [3,5] F32, ids [5] I32, scalar [] F32, empty [0,3] F32 and
 * two metadata entries to path. */
static void write_sample(const char *path)
{
    static const int64_t shape_w[2] = {3, 5}, shape_ids[1] = {5}, shape_empty[2] = {0, 3};
    static float scalar = 2.5f;
    tfi_st_writer *w = tfi_st_writer_new();
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(tfi_st_writer_add(w, "weight", TFI_ST_F32, 2, shape_w, f32_bits), TF_OK);
    ck_assert_int_eq(tfi_st_writer_add(w, "ids", TFI_ST_I32, 1, shape_ids, i32_vals), TF_OK);
    ck_assert_int_eq(tfi_st_writer_add(w, "scalar", TFI_ST_F32, 0, NULL, &scalar), TF_OK);
    ck_assert_int_eq(tfi_st_writer_add(w, "empty", TFI_ST_F32, 2, shape_empty, NULL), TF_OK);
    ck_assert_int_eq(tfi_st_writer_meta(w, "kind", "test"), TF_OK);
    ck_assert_int_eq(tfi_st_writer_meta(w, "tricky", "to be replaced"), TF_OK);
    ck_assert_int_eq(tfi_st_writer_meta(w, "tricky", tricky_value), TF_OK);
    tfi_errbuf eb = {{0}};
    tf_status st = tfi_st_writer_write(w, path, &eb);
    ck_assert_msg(st == TF_OK, "write failed: %s", eb.msg);
    tfi_st_writer_free(w);
}

static uint64_t header_len_of(const unsigned char *buf)
{
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | buf[i];
    return n;
}

/* ---- round trip --------------------------------------------------------------- */

START_TEST(test_roundtrip_f32_i32_with_metadata)
{
    char path[512];
    tmp_path(path, sizeof path, "sample.safetensors");
    write_sample(path);

    tfi_st_file f;
    tfi_errbuf eb = {{0}};
    ck_assert_msg(tfi_st_open(path, &f, &eb) == TF_OK, "%s", eb.msg);
    ck_assert_int_eq(f.ntensors, 4);
    static const char *const names[4] = {"weight", "ids", "scalar", "empty"};
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(f.tensors[i].name, names[i]); /* order added */

    const tfi_st_tensor *w = tfi_st_find(&f, "weight");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->dtype, TFI_ST_F32);
    ck_assert_int_eq(w->ndim, 2);
    ck_assert_int_eq(w->shape[0], 3);
    ck_assert_int_eq(w->shape[1], 5);
    ck_assert_int_eq(w->numel, 15);
    ck_assert_int_eq(memcmp(tfi_st_data(&f, w), f32_bits, sizeof f32_bits), 0);
    float got[15];
    ck_assert_int_eq(tfi_st_read_f32(&f, "weight", got, 15, &eb), TF_OK);
    ck_assert_int_eq(memcmp(got, f32_bits, sizeof got), 0); /* bit-exact, NaNs too */

    const tfi_st_tensor *ids = tfi_st_find(&f, "ids");
    ck_assert_ptr_nonnull(ids);
    ck_assert_int_eq(ids->dtype, TFI_ST_I32);
    ck_assert_int_eq(ids->numel, 5);
    ck_assert_int_eq(memcmp(tfi_st_data(&f, ids), i32_vals, sizeof i32_vals), 0);

    const tfi_st_tensor *s = tfi_st_find(&f, "scalar");
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_int_eq(s->numel, 1);
    float scalar;
    ck_assert_int_eq(tfi_st_read_f32(&f, "scalar", &scalar, 1, &eb), TF_OK);
    ck_assert(scalar == 2.5f);

    const tfi_st_tensor *e = tfi_st_find(&f, "empty");
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->numel, 0);
    ck_assert_uint_eq(e->begin, e->end);

    ck_assert_int_eq(f.nmeta, 2);
    ck_assert_str_eq(tfi_st_meta(&f, "kind"), "test");
    ck_assert_str_eq(tfi_st_meta(&f, "tricky"), tricky_value); /* escaping survived */
    ck_assert_ptr_null(tfi_st_meta(&f, "absent"));
    ck_assert_ptr_null(tfi_st_find(&f, "absent"));
    tfi_st_close(&f);
    ck_assert_ptr_null(f.buf);
}
END_TEST

START_TEST(test_writer_layout)
{
    char path[512];
    tmp_path(path, sizeof path, "sample.safetensors");
    write_sample(path);
    size_t size;
    unsigned char *buf = read_all(path, &size);
    uint64_t n = header_len_of(buf);
    ck_assert_uint_eq((8 + n) % 8, 0);
    ck_assert_uint_le(8 + n, size);
    const char *prefix = "{\"__metadata__\":";
    ck_assert_int_eq(memcmp(buf + 8, prefix, strlen(prefix)), 0); /* metadata first */
    /* Padding after the closing brace is spaces only. */
    size_t close = 8 + n - 1;
    while (buf[close] == ' ')
        close--;
    ck_assert_int_eq(buf[close], '}');
    ck_assert_uint_lt(8 + n - 1 - close, 8);

    tfi_st_file f;
    tfi_errbuf eb = {{0}};
    ck_assert_int_eq(tfi_st_open(path, &f, &eb), TF_OK);
    ck_assert_uint_eq(f.data_start, 8 + n);
    ck_assert_uint_eq(f.tensors[0].begin, 0);
    for (int i = 1; i < f.ntensors; i++)
        ck_assert_uint_eq(f.tensors[i].begin, f.tensors[i - 1].end); /* back to back */
    ck_assert_uint_eq(f.tensors[f.ntensors - 1].end, size - f.data_start);
    tfi_st_close(&f);
    free(buf);
}
END_TEST

START_TEST(test_empty_writer_writes_valid_file)
{
    char path[512];
    tmp_path(path, sizeof path, "empty.safetensors");
    tfi_st_writer *w = tfi_st_writer_new();
    tfi_errbuf eb = {{0}};
    ck_assert_int_eq(tfi_st_writer_write(w, path, &eb), TF_OK);
    tfi_st_writer_free(w);
    tfi_st_file f;
    ck_assert_int_eq(tfi_st_open(path, &f, &eb), TF_OK);
    ck_assert_int_eq(f.ntensors, 0);
    ck_assert_int_eq(f.nmeta, 0);
    tfi_st_close(&f);
}
END_TEST

START_TEST(test_read_f32_checks_dtype_and_count)
{
    char path[512];
    tmp_path(path, sizeof path, "sample.safetensors");
    write_sample(path);
    tfi_st_file f;
    tfi_errbuf eb = {{0}};
    ck_assert_int_eq(tfi_st_open(path, &f, &eb), TF_OK);
    float dst[16];
    ck_assert_int_eq(tfi_st_read_f32(&f, "ids", dst, 5, &eb), TF_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(eb.msg, "'ids'"));
    ck_assert_ptr_nonnull(strstr(eb.msg, "I32"));
    ck_assert_int_eq(tfi_st_read_f32(&f, "weight", dst, 16, &eb), TF_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(eb.msg, "'weight'"));
    ck_assert_ptr_nonnull(strstr(eb.msg, "15"));
    ck_assert_int_eq(tfi_st_read_f32(&f, "nope", dst, 1, &eb), TF_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(eb.msg, "'nope'"));
    ck_assert_ptr_nonnull(strstr(eb.msg, path));
    tfi_st_close(&f);
}
END_TEST

/* ---- the real fixture ------------------------------------------------------------ */

START_TEST(test_fixture_pattention_softmax)
{
    tfi_st_file f;
    tfi_errbuf eb = {{0}};
    ck_assert_msg(tfi_st_open(FIXTURE, &f, &eb) == TF_OK, "%s", eb.msg);
    static const struct {
        const char *name;
        int64_t rows, cols;
    } want[8] = {
        {"input", 7, 24},          {"key_param_tokens", 13, 24},
        {"value_param_tokens", 13, 20}, {"output", 7, 20},
        {"grad_output", 7, 20},    {"grad_input", 7, 24},
        {"grad_key_param_tokens", 13, 24}, {"grad_value_param_tokens", 13, 20},
    };
    ck_assert_int_eq(f.ntensors, 8);
    for (int i = 0; i < 8; i++) {
        const tfi_st_tensor *t = &f.tensors[i];
        ck_assert_str_eq(t->name, want[i].name);
        ck_assert_int_eq(t->dtype, TFI_ST_F32);
        ck_assert_int_eq(t->ndim, 2);
        ck_assert_int_eq(t->shape[0], want[i].rows);
        ck_assert_int_eq(t->shape[1], want[i].cols);
    }
    ck_assert_str_eq(tfi_st_meta(&f, "kind"), "pattention");
    ck_assert_str_eq(tfi_st_meta(&f, "format"), "tokenformer-fixture-1");
    ck_assert_str_eq(tfi_st_meta(&f, "norm_activation_type"), "softmax");
    float input[7 * 24];
    ck_assert_int_eq(tfi_st_read_f32(&f, "input", input, 7 * 24, &eb), TF_OK);
    for (int i = 0; i < 7 * 24; i++)
        ck_assert(input[i] == input[i] && input[i] > -1e6f && input[i] < 1e6f);
    tfi_st_close(&f);
}
END_TEST

START_TEST(test_open_memory_matches_file)
{
    size_t size;
    unsigned char *buf = read_all(FIXTURE, &size);
    tfi_st_file f;
    tfi_errbuf eb = {{0}};
    ck_assert_int_eq(tfi_st_open_memory(buf, size, "mem", &f, &eb), TF_OK);
    memset(buf, 0, size); /* the reader keeps its own copy */
    ck_assert_int_eq(f.ntensors, 8);
    ck_assert_str_eq(tfi_st_meta(&f, "kind"), "pattention");
    tfi_st_close(&f);

    /* Messages use the given name. */
    ck_assert_int_eq(tfi_st_open_memory(buf, 5, "in-memory blob", &f, &eb), TF_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(eb.msg, "in-memory blob"));
    ck_assert_ptr_null(f.buf);
    free(buf);
}
END_TEST

/* ---- refusals ------------------------------------------------------------------------ */

START_TEST(test_missing_file_is_io_error)
{
    char path[512];
    tmp_path(path, sizeof path, "does-not-exist.safetensors");
    expect_refused(path, TF_ERR_IO, "No such file", NULL);
}
END_TEST

START_TEST(test_truncated_files_refused)
{
    char src[512], cut[512];
    tmp_path(src, sizeof src, "sample.safetensors");
    tmp_path(cut, sizeof cut, "cut.safetensors");
    write_sample(src);
    size_t size;
    unsigned char *buf = read_all(src, &size);
    size_t data_start = 8 + header_len_of(buf);
    const size_t cuts[] = {0, 1, 7, 8, 9, 20, data_start - 1, data_start, data_start + 1,
                           data_start + 30, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        ck_assert_uint_lt(cuts[i], size);
        write_bytes_to(cut, buf, cuts[i]);
        expect_refused(cut, TF_ERR_FORMAT, "truncated", NULL);
    }
    free(buf);
}
END_TEST

START_TEST(test_overlapping_offsets_refused)
{
    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                          24, "overlap", "'a'");
    /* Contained inside a larger earlier tensor, listed first. */
    expect_header_refused("{\"small\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[20,22]},"
                          "\"big\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]},"
                          "\"c\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[32,33]}}",
                          33, "overlap", "'small'");
    /* An empty tensor inside another is refused, as the reference does:
     * every tensor starts where the previous one ends. */
    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                          "\"e\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[8,8]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}",
                          32, "overlap", "'e'");
    /* Touching ranges, and an empty tensor between two, are fine. */
    expect_header_accepted("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                           "\"e\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[16,16]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}",
                           32, 3);
}
END_TEST

START_TEST(test_end_offset_beyond_data_refused)
{
    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
                          "beyond", "'a'");
    expect_header_refused("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],"
                          "\"data_offsets\":[100,100]}}",
                          8, "beyond", NULL);
}
END_TEST

START_TEST(test_offsets_not_matching_shape_refused)
{
    char path[512];
    tmp_path(path, sizeof path, "model.safetensors");
    write_raw(path, "{\"embed.weight\":{\"dtype\":\"F32\",\"shape\":[10,4],"
                    "\"data_offsets\":[0,100]}}",
              zeros, 160);
    char want[640];
    snprintf(want, sizeof want,
             "%s: tensor 'embed.weight': data_offsets [0, 100] do not match shape [10, 4] "
             "of F32 (160 bytes)",
             path);
    tfi_st_file f;
    tfi_errbuf eb = {{0}};
    ck_assert_int_eq(tfi_st_open(path, &f, &eb), TF_ERR_FORMAT);
    ck_assert_str_eq(eb.msg, want);
    /* Element size counts: 4 I64 elements are 32 bytes, not 16. */
    expect_header_refused("{\"a\":{\"dtype\":\"I64\",\"shape\":[4],\"data_offsets\":[0,16]}}", 32,
                          "do not match", "32 bytes");
}
END_TEST

START_TEST(test_bad_json_refused)
{
    static const struct {
        const char *header;
        const char *word;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",", "JSON"},
        {"{\"a\" {}}", "JSON"},
        {"not json at all", "JSON"},
        {"", "JSON"},
        {"[1, 2]", "JSON object"},
        {"\"just a string\"", "JSON object"},
        {" {}", "JSON object"}, /* must start with '{' */
        {"{} x", "trailing"},
        {"{}{}", "trailing"},
        {"{}\t", "trailing"},
        {"{}\n", "trailing"},
        {"{'a':{}}", "single-quoted"},
        {"{\"a\":{},}", "JSON"},
        {"{/* c */}", "JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_header_refused(cases[i].header, 0, cases[i].word, NULL);
    expect_header_accepted("{}      ", 0, 0); /* space padding is fine */
}
END_TEST

START_TEST(test_header_json_nul_refused)
{
    char path[512];
    tmp_path(path, sizeof path, "nul.safetensors");
    static const char bytes[] = "\x08\0\0\0\0\0\0\0{}\0     ";
    write_bytes_to(path, bytes, 16);
    expect_refused(path, TF_ERR_FORMAT, "trailing", NULL);
}
END_TEST

START_TEST(test_unknown_dtype_refused)
{
    expect_header_refused("{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                          "dtype", "F33");
    expect_header_refused("{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                          "dtype", "'a'");
}
END_TEST

START_TEST(test_header_length_beyond_file_refused)
{
    char path[512];
    tmp_path(path, sizeof path, "long.safetensors");
    write_raw_len(path, 1000, "{}", NULL, 0);
    expect_refused(path, TF_ERR_FORMAT, "truncated", "1000");
    write_raw_len(path, UINT64_MAX, "{}", NULL, 0);
    expect_refused(path, TF_ERR_FORMAT, "header length", NULL);
    write_raw_len(path, (uint64_t)1 << 63, "{}", NULL, 0);
    expect_refused(path, TF_ERR_FORMAT, "header length", NULL);
}
END_TEST

START_TEST(test_duplicate_names_refused)
{
    const char *entry = "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}";
    char header[512];
    snprintf(header, sizeof header, "{\"a\":%s,\"a\":%s}", entry, entry);
    expect_header_refused(header, 1, "duplicate", "'a'");
    /* The same name spelled with an escape is the same name. */
    snprintf(header, sizeof header, "{\"ab\":%s,\"\\u0061b\":%s}", entry, entry);
    expect_header_refused(header, 1, "duplicate", "'ab'");
    /* Duplicates json-c would hide inside an entry or the metadata. */
    expect_header_refused("{\"a\":{\"dtype\":\"F64\",\"dtype\":\"U8\",\"shape\":[1],"
                          "\"data_offsets\":[0,1]}}",
                          1, "duplicate field 'dtype'", "'a'");
    expect_header_refused("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "duplicate",
                          "'k'");
    expect_header_refused("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate",
                          "__metadata__");
    /* The same field name in two different entries is not a duplicate. */
    expect_header_accepted("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                           "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
                           "\"__metadata__\":{\"dtype\":\"x\"}}",
                           2, 2);
    /* Keys that only look alike inside string values do not count. */
    expect_header_accepted("{\"__metadata__\":{\"k\":\"\\\"k\\\":\",\"j\":\"{\\\"k\\\":1}\"}}",
                           0, 0);
}
END_TEST

START_TEST(test_metadata_must_be_strings)
{
    expect_header_refused("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__", "'k'");
    expect_header_refused("{\"__metadata__\":{\"k\":null}}", 0, "must be a string", NULL);
    expect_header_refused("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, "must be a string",
                          NULL);
    expect_header_refused("{\"__metadata__\":[\"k\"]}", 0, "__metadata__", "object");
    expect_header_refused("{\"__metadata__\":\"k\"}", 0, "__metadata__", "object");
    expect_header_refused("{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", 0, "NUL", NULL);
}
END_TEST

START_TEST(test_negative_shape_dim_refused)
{
    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,0]}}",
                          0, "negative", "shape[1]");
}
END_TEST

START_TEST(test_entry_schema_refused)
{
    static const struct {
        const char *header;
        size_t ndata;
        const char *word;
    } cases[] = {
        {"{\"a\":[1,2]}", 0, "must be an object"},
        {"{\"a\":\"F32\"}", 0, "must be an object"},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing field 'dtype'"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing field 'shape'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing field 'data_offsets'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
         "unexpected field 'x'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         "9 dims"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,4]}}",
         4, "too large"},
        /* json-c clamps this to INT64_MAX; times 0 it would pass unnoticed */
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[9223372036854775808,0],"
         "\"data_offsets\":[0,0]}}",
         0, "too large"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}",
         4, "overflow"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,0],"
         "\"data_offsets\":[0,0]}}",
         0, "overflow"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0,4\"}}", 4, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, "begin is after end"},
        {"{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "NUL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_header_refused(cases[i].header, cases[i].ndata, cases[i].word, NULL);
}
END_TEST

START_TEST(test_valid_edge_headers_accepted)
{
    expect_header_accepted("{}", 0, 0);
    expect_header_accepted("{\"__metadata__\":{}}", 0, 0);
    /* Scalars, empty tensors, a tensor at the very end, data area slack. */
    expect_header_accepted("{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
                           "\"z\":{\"dtype\":\"BF16\",\"shape\":[3,0],\"data_offsets\":[8,8]},"
                           "\"b\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[8,10]}}",
                           10, 3);
    /* Whitespace inside the JSON is fine. */
    expect_header_accepted("{ \"a\" :\n {\"dtype\" : \"I16\", \"shape\" : [ 2 ] ,"
                           "\t\"data_offsets\":[0,4]} }   ",
                           4, 1);
}
END_TEST

/* ---- writer ----------------------------------------------------------------------- */

START_TEST(test_write_into_missing_directory_is_io_error)
{
    char path[512];
    tmp_path(path, sizeof path, "no/such/dir/model.safetensors");
    tfi_st_writer *w = tfi_st_writer_new();
    static const float x[2] = {1.0f, 2.0f};
    static const int64_t shape[1] = {2};
    ck_assert_int_eq(tfi_st_writer_add(w, "x", TFI_ST_F32, 1, shape, x), TF_OK);
    tfi_errbuf eb = {{0}};
    ck_assert_int_eq(tfi_st_writer_write(w, path, &eb), TF_ERR_IO);
    ck_assert_ptr_nonnull(strstr(eb.msg, path));
    ck_assert_ptr_nonnull(strstr(eb.msg, strerror(ENOENT)));
    tfi_st_writer_free(w);
}
END_TEST

/* A write that fails half-way (file size limit: works even as root) must
 * leave the previous file byte-identical and no temporary file behind. */
START_TEST(test_failed_write_keeps_old_file)
{
    char path[512];
    tmp_path(path, sizeof path, "model.safetensors");
    write_sample(path);
    size_t old_size;
    unsigned char *old = read_all(path, &old_size);

    enum { BIG = 1 << 16 };
    float *big = calloc(BIG, sizeof(float));
    ck_assert_ptr_nonnull(big);
    const int64_t shape[1] = {BIG};
    tfi_st_writer *w = tfi_st_writer_new();
    ck_assert_int_eq(tfi_st_writer_add(w, "big", TFI_ST_F32, 1, shape, big), TF_OK);

    struct rlimit saved, low;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    low = saved;
    low.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &low), 0);
    tfi_errbuf eb = {{0}};
    tf_status st = tfi_st_writer_write(w, path, &eb);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);

    ck_assert_msg(st == TF_ERR_IO, "status %d: %s", (int)st, eb.msg);
    ck_assert_ptr_nonnull(strstr(eb.msg, path));
    ck_assert_ptr_nonnull(strstr(eb.msg, strerror(EFBIG)));
    size_t now_size;
    unsigned char *now = read_all(path, &now_size);
    ck_assert_uint_eq(now_size, old_size);
    ck_assert_int_eq(memcmp(now, old, old_size), 0);
    ck_assert_int_eq(count_dir_entries(tmpdir), 1); /* temp file removed */
    free(now);
    free(old);
    free(big);
    tfi_st_writer_free(w);
}
END_TEST

START_TEST(test_write_replaces_existing_file)
{
    char path[512];
    tmp_path(path, sizeof path, "model.safetensors");
    write_bytes_to(path, "old contents", 12);
    chmod(path, 0640);
    write_sample(path);
    tfi_st_file f;
    tfi_errbuf eb = {{0}};
    ck_assert_int_eq(tfi_st_open(path, &f, &eb), TF_OK);
    ck_assert_int_eq(f.ntensors, 4);
    tfi_st_close(&f);
    ck_assert_int_eq(count_dir_entries(tmpdir), 1);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0640); /* mode of the file it replaced */
}
END_TEST

START_TEST(test_writer_rejects_bad_arguments)
{
    tfi_st_writer *w = tfi_st_writer_new();
    static const float x[4] = {0};
    const int64_t ok[1] = {4}, neg[2] = {2, -2};
    const int64_t many[TFI_ST_MAX_DIMS + 1] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    ck_assert_int_eq(tfi_st_writer_add(w, "x", TFI_ST_F32, 1, ok, x), TF_OK);
    ck_assert_int_eq(tfi_st_writer_add(w, "x", TFI_ST_F32, 1, ok, x), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "'x'"));
    ck_assert_int_eq(tfi_st_writer_add(w, "__metadata__", TFI_ST_F32, 1, ok, x),
                     TF_ERR_ARGUMENT);
    ck_assert_int_eq(tfi_st_writer_add(w, "n", TFI_ST_F32, 2, neg, x), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "negative"));
    ck_assert_int_eq(tfi_st_writer_add(w, "m", TFI_ST_F32, TFI_ST_MAX_DIMS + 1, many, x),
                     TF_ERR_ARGUMENT);
    ck_assert_int_eq(tfi_st_writer_add(w, "d", (tfi_st_dtype)99, 1, ok, x), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tfi_st_writer_add(w, "p", TFI_ST_F32, 1, ok, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tfi_st_writer_add(w, NULL, TFI_ST_F32, 1, ok, x), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tfi_st_writer_meta(w, "k", NULL), TF_ERR_ARGUMENT);
    tfi_st_writer_free(w);
    tfi_st_writer_free(NULL);
}
END_TEST

START_TEST(test_dtype_table)
{
    ck_assert_str_eq(tfi_st_dtype_name(TFI_ST_F32), "F32");
    ck_assert_str_eq(tfi_st_dtype_name(TFI_ST_BF16), "BF16");
    ck_assert_str_eq(tfi_st_dtype_name(TFI_ST_BOOL), "BOOL");
    ck_assert_uint_eq(tfi_st_dtype_size(TFI_ST_F32), 4);
    ck_assert_uint_eq(tfi_st_dtype_size(TFI_ST_I64), 8);
    ck_assert_uint_eq(tfi_st_dtype_size(TFI_ST_F16), 2);
    ck_assert_uint_eq(tfi_st_dtype_size(TFI_ST_U8), 1);
    ck_assert_uint_eq(tfi_st_dtype_size((tfi_st_dtype)99), 0);
    ck_assert_ptr_nonnull(tfi_st_dtype_name((tfi_st_dtype)99));
}
END_TEST

Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");

    TCase *rw = tcase_create("read_write");
    tcase_add_checked_fixture(rw, make_tmpdir, remove_tmpdir);
    tcase_add_test(rw, test_roundtrip_f32_i32_with_metadata);
    tcase_add_test(rw, test_writer_layout);
    tcase_add_test(rw, test_empty_writer_writes_valid_file);
    tcase_add_test(rw, test_read_f32_checks_dtype_and_count);
    tcase_add_test(rw, test_fixture_pattention_softmax);
    tcase_add_test(rw, test_open_memory_matches_file);
    tcase_add_test(rw, test_dtype_table);
    suite_add_tcase(s, rw);

    TCase *bad = tcase_create("refusals");
    tcase_add_checked_fixture(bad, make_tmpdir, remove_tmpdir);
    tcase_add_test(bad, test_missing_file_is_io_error);
    tcase_add_test(bad, test_truncated_files_refused);
    tcase_add_test(bad, test_overlapping_offsets_refused);
    tcase_add_test(bad, test_end_offset_beyond_data_refused);
    tcase_add_test(bad, test_offsets_not_matching_shape_refused);
    tcase_add_test(bad, test_bad_json_refused);
    tcase_add_test(bad, test_header_json_nul_refused);
    tcase_add_test(bad, test_unknown_dtype_refused);
    tcase_add_test(bad, test_header_length_beyond_file_refused);
    tcase_add_test(bad, test_duplicate_names_refused);
    tcase_add_test(bad, test_metadata_must_be_strings);
    tcase_add_test(bad, test_negative_shape_dim_refused);
    tcase_add_test(bad, test_entry_schema_refused);
    tcase_add_test(bad, test_valid_edge_headers_accepted);
    suite_add_tcase(s, bad);

    TCase *wr = tcase_create("writer");
    tcase_add_checked_fixture(wr, make_tmpdir, remove_tmpdir);
    tcase_add_test(wr, test_write_into_missing_directory_is_io_error);
    tcase_add_test(wr, test_failed_write_keeps_old_file);
    tcase_add_test(wr, test_write_replaces_existing_file);
    tcase_add_test(wr, test_writer_rejects_bad_arguments);
    suite_add_tcase(s, wr);
    return s;
}
