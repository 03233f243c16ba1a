/* test_dataset.c -- datasets: the three file formats and their detection
 * (both llm.c versions and look-alikes), malformed files, id validation,
 * the train/validation split, seeded sampling, sequential batches, sets of
 * shards (streaming, a bounded number held, errors found late, glob and
 * directory), argument checks, and a real text file. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scratch.h"
#include "tokenformer.h"

/* llm.c's two token formats (dev/data/data_common.py) */
#define LLMC_MAGIC_V1 20240520 /* GPT-2: version 1, uint16 ids */
#define LLMC_MAGIC_V7 20240801 /* Llama 3: version 7, uint32 ids */

/* One scratch directory per test case, made and removed in the parent
 * (unchecked fixture), so that a failing test still leaves nothing. */
static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/tf_dataset_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        abort();
    }
}

static void remove_tmpdir(void)
{
    tt_remove_tree(tmpdir);
}

/* Writes n bytes to tmpdir/name; the full path goes to path. */
static void write_file(const char *name, const void *data, size_t n, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "wb");
    ck_assert_msg(fp != NULL, "cannot create %s", path);
    if (n)
        ck_assert_uint_eq(fwrite(data, 1, n, fp), n);
    ck_assert_int_eq(fclose(fp), 0);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

/* An llm.c shard in memory: 1024-byte header, then count ids of the
 * version's width.  header_count is what the header claims.  The caller
 * frees the buffer; *size receives its length. */
static unsigned char *llmc_image(uint32_t magic, int32_t version, int32_t header_count,
                                 const uint32_t *ids, size_t count, size_t *size)
{
    size_t idsize = version == 7 ? 4 : 2;
    *size = 1024 + count * idsize;
    unsigned char *buf = calloc(1, *size);
    ck_assert_ptr_nonnull(buf);
    put_le32(buf, magic);
    put_le32(buf + 4, (uint32_t)version);
    put_le32(buf + 8, (uint32_t)header_count);
    for (size_t i = 0; i < count; i++) {
        if (idsize == 4)
            put_le32(buf + 1024 + 4 * i, ids[i]);
        else
            put_le16(buf + 1024 + 2 * i, (uint16_t)ids[i]);
    }
    return buf;
}

static void write_llmc(const char *name, uint32_t magic, int32_t version, int32_t header_count,
                       const uint32_t *ids, size_t count, char *path, size_t cap)
{
    size_t size;
    unsigned char *buf = llmc_image(magic, version, header_count, ids, count, &size);
    write_file(name, buf, size, path, cap);
    free(buf);
}

/* Reads a whole split back in order: one batch of B = 1, T = n - 1 has the
 * first n - 1 tokens as inputs and the last n - 1 as targets. */
static int32_t *read_split(const tf_dataset *ds, tf_split split, int64_t *n_out)
{
    int64_t n = tf_dataset_num_tokens(ds, split);
    ck_assert_int_ge(n, 2);
    int T = (int)(n - 1);
    int32_t *tok = malloc((size_t)T * sizeof *tok);
    int32_t *tgt = malloc((size_t)T * sizeof *tgt);
    int32_t *all = malloc((size_t)n * sizeof *all);
    ck_assert(tok && tgt && all);
    ck_assert_int_eq(tf_dataset_num_batches(ds, split, 1, T), 1);
    tf_status st = tf_dataset_batch(ds, split, 0, 1, T, tok, tgt);
    ck_assert_msg(st == TF_OK, "%s", tf_last_error());
    for (int t = 0; t < T; t++) {
        all[t] = tok[t];
        if (t > 0)
            ck_assert_int_eq(tgt[t - 1], tok[t]);
    }
    all[T] = tgt[T - 1];
    free(tok);
    free(tgt);
    *n_out = n;
    return all;
}

static tf_dataset *open_ok(const char *path, tf_data_format f, int64_t vocab, double frac)
{
    tf_dataset *ds = NULL;
    tf_status st = tf_dataset_open(path, f, vocab, frac, &ds);
    ck_assert_msg(st == TF_OK, "%s: %s %s", path, tf_status_name(st), tf_last_error());
    ck_assert_ptr_nonnull(ds);
    return ds;
}

/* Opening must fail with want, leave *out NULL and explain itself with
 * every fragment in the NULL-terminated list. */
static void open_fails(const char *path, tf_data_format f, int64_t vocab, double frac,
                       tf_status want, const char *const *fragments)
{
    tf_dataset *ds = (tf_dataset *)(uintptr_t)0x1;
    tf_status st = tf_dataset_open(path, f, vocab, frac, &ds);
    ck_assert_msg(st == want, "%s: got %s, want %s (%s)", path, tf_status_name(st),
                  tf_status_name(want), tf_last_error());
    ck_assert_ptr_null(ds);
    for (int i = 0; fragments && fragments[i]; i++)
        ck_assert_msg(strstr(tf_last_error(), fragments[i]) != NULL,
                      "message '%s' lacks '%s'", tf_last_error(), fragments[i]);
}

static void assert_stream(const tf_dataset *ds, const uint32_t *want, int64_t n)
{
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), n);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_VAL), 0);
    int64_t got_n;
    int32_t *got = read_split(ds, TF_SPLIT_TRAIN, &got_n);
    ck_assert_int_eq(got_n, n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == (int32_t)want[i], "token %lld: %d, want %u", (long long)i,
                      got[i], want[i]);
    free(got);
}

/* A deterministic pseudo-random id stream (LCG), ids in [0, vocab). */
static void fill_ids(uint32_t *ids, size_t n, uint32_t vocab, uint32_t seed)
{
    uint64_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = (uint32_t)((x >> 33) % vocab);
    }
}

/* ---- formats --------------------------------------------------------------- */

START_TEST(test_bytes_round_trip)
{
    enum { N = 3000 };
    unsigned char bytes[N];
    uint32_t want[N];
    for (int i = 0; i < N; i++) {
        bytes[i] = (unsigned char)((i * 131 + i / 7) & 0xff); /* all 256 values */
        want[i] = bytes[i];
    }
    char path[256];
    write_file("text.txt", bytes, N, path, sizeof path);
    tf_dataset *ds = open_ok(path, TF_DATA_BYTES, 256, 0.0);
    assert_stream(ds, want, N);
    tf_dataset_free(ds);
    /* a larger vocabulary (int32 storage) reads the same stream */
    ds = open_ok(path, TF_DATA_BYTES, 100000, 0.0);
    assert_stream(ds, want, N);
    tf_dataset_free(ds);
}
END_TEST

START_TEST(test_u16_bin)
{
    enum { N = 5000 };
    uint32_t ids[N];
    unsigned char buf[2 * N];
    fill_ids(ids, N, 50304, 1);
    ids[0] = 50303; /* the largest valid id, and both byte orders matter */
    ids[1] = 0x0102;
    for (int i = 0; i < N; i++)
        put_le16(buf + 2 * i, (uint16_t)ids[i]);
    char path[256];
    write_file("train.bin", buf, sizeof buf, path, sizeof path);
    tf_dataset *ds = open_ok(path, TF_DATA_U16, 50304, 0.0);
    assert_stream(ds, ids, N);
    tf_dataset_free(ds);
    /* with the full uint16 range valid */
    ds = open_ok(path, TF_DATA_U16, 65536, 0.0);
    assert_stream(ds, ids, N);
    tf_dataset_free(ds);
}
END_TEST

START_TEST(test_llmc_v1)
{
    enum { N = 4000 };
    uint32_t ids[N];
    fill_ids(ids, N, 50257, 2);
    ids[N - 1] = 50256;
    char path[256];
    write_llmc("shard_v1.dat", LLMC_MAGIC_V1, 1, N, ids, N, path, sizeof path);
    tf_dataset *ds = open_ok(path, TF_DATA_LLMC, 50257, 0.0);
    assert_stream(ds, ids, N);
    tf_dataset_free(ds);
}
END_TEST

START_TEST(test_llmc_v7)
{
    enum { N = 4000 };
    uint32_t ids[N];
    fill_ids(ids, N, 200000, 3);
    ids[0] = 199999;
    ids[1] = 65536; /* does not fit 16 bits */
    char path[256];
    write_llmc("shard_v7.dat", LLMC_MAGIC_V7, 7, N, ids, N, path, sizeof path);
    tf_dataset *ds = open_ok(path, TF_DATA_LLMC, 200000, 0.0);
    assert_stream(ds, ids, N);
    tf_dataset_free(ds);

    /* uint32 ids into uint16 storage when the vocabulary allows it */
    fill_ids(ids, N, 1000, 4);
    write_llmc("shard_v7_small.dat", LLMC_MAGIC_V7, 7, N, ids, N, path, sizeof path);
    ds = open_ok(path, TF_DATA_LLMC, 1000, 0.0);
    assert_stream(ds, ids, N);
    tf_dataset_free(ds);
}
END_TEST

/* A stream longer than one 1 MiB read chunk, with a bad id far in. */
START_TEST(test_large_file_chunks)
{
    const size_t n = 1500000; /* 3 MB of uint16 */
    unsigned char *buf = malloc(2 * n);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < n; i++)
        put_le16(buf + 2 * i, (uint16_t)(i % 50000));
    char path[256];
    write_file("big.bin", buf, 2 * n, path, sizeof path);
    tf_dataset *ds = open_ok(path, TF_DATA_AUTO, 50000, 0.0);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), (int64_t)n);
    /* spot-check the end through the last sequential batch */
    int T = 1000;
    int64_t nb = tf_dataset_num_batches(ds, TF_SPLIT_TRAIN, 1, T);
    ck_assert_int_eq(nb, (int64_t)(n - 1) / T);
    int32_t tok[1000], tgt[1000];
    ck_assert_int_eq(tf_dataset_batch(ds, TF_SPLIT_TRAIN, nb - 1, 1, T, tok, tgt), TF_OK);
    for (int t = 0; t < T; t++) {
        int64_t pos = (nb - 1) * T + t;
        ck_assert_int_eq(tok[t], pos % 50000);
        ck_assert_int_eq(tgt[t], (pos + 1) % 50000);
    }
    tf_dataset_free(ds);

    size_t bad = 1234567;
    put_le16(buf + 2 * bad, 50001);
    write_file("big_bad.bin", buf, 2 * n, path, sizeof path);
    char off[32];
    snprintf(off, sizeof off, "byte offset %zu ", 2 * bad);
    const char *frag[] = {"token id 50001", off, "vocab_size 50000", NULL};
    open_fails(path, TF_DATA_U16, 50000, 0.0, TF_ERR_RANGE, frag);
    free(buf);
}
END_TEST

/* ---- detection --------------------------------------------------------------- */

START_TEST(test_auto_detection)
{
    enum { N = 300 };
    uint32_t ids[N];
    fill_ids(ids, N, 50257, 5);
    char path[256];

    /* llm.c v1 named .bin: the magic wins over the extension (as U16 it
     * would be 512 + N tokens) */
    write_llmc("fineweb_train_000001.bin", LLMC_MAGIC_V1, 1, N, ids, N, path, sizeof path);
    tf_dataset *ds = open_ok(path, TF_DATA_AUTO, 50257, 0.0);
    assert_stream(ds, ids, N);
    tf_dataset_free(ds);

    /* llm.c v7 under any name */
    write_llmc("shard.data", LLMC_MAGIC_V7, 7, N, ids, N, path, sizeof path);
    ds = open_ok(path, TF_DATA_AUTO, 50257, 0.0);
    assert_stream(ds, ids, N);
    tf_dataset_free(ds);

    /* bare uint16 named .bin */
    unsigned char buf[2 * N];
    for (int i = 0; i < N; i++)
        put_le16(buf + 2 * i, (uint16_t)ids[i]);
    write_file("val.bin", buf, sizeof buf, path, sizeof path);
    ds = open_ok(path, TF_DATA_AUTO, 50257, 0.0);
    assert_stream(ds, ids, N);
    tf_dataset_free(ds);

    /* the same bytes under another name are BYTES */
    write_file("val.txt", buf, sizeof buf, path, sizeof path);
    ds = open_ok(path, TF_DATA_AUTO, 50257, 0.0);
    uint32_t want[2 * N];
    for (int i = 0; i < 2 * N; i++)
        want[i] = buf[i];
    assert_stream(ds, want, 2 * N);
    tf_dataset_free(ds);

    /* forcing a format overrides detection: the llm.c shard as BYTES */
    write_llmc("forced.bin", LLMC_MAGIC_V1, 1, N, ids, N, path, sizeof path);
    ds = open_ok(path, TF_DATA_BYTES, 256, 0.0);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), 1024 + 2 * N);
    tf_dataset_free(ds);
}
END_TEST

/* ---- malformed files ------------------------------------------------------ */

START_TEST(test_odd_byte_count)
{
    unsigned char buf[7] = {1, 0, 2, 0, 3, 0, 4};
    char path[256];
    write_file("odd.bin", buf, sizeof buf, path, sizeof path);
    const char *frag[] = {"7 bytes", "odd", NULL};
    open_fails(path, TF_DATA_U16, 50304, 0.0, TF_ERR_FORMAT, frag);
    open_fails(path, TF_DATA_AUTO, 50304, 0.0, TF_ERR_FORMAT, frag);
    /* the same file read as BYTES is fine */
    tf_dataset *ds = open_ok(path, TF_DATA_BYTES, 256, 0.0);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), 7);
    tf_dataset_free(ds);
}
END_TEST

START_TEST(test_llmc_bad_headers)
{
    enum { N = 100 };
    uint32_t ids[N];
    fill_ids(ids, N, 1000, 6);
    char path[256];

    write_llmc("magic.dat", 20240521, 1, N, ids, N, path, sizeof path);
    const char *f_magic[] = {"magic 20240521", "20240520", NULL};
    open_fails(path, TF_DATA_LLMC, 1000, 0.0, TF_ERR_FORMAT, f_magic);

    write_llmc("version.dat", LLMC_MAGIC_V1, 3, N, ids, N, path, sizeof path);
    const char *f_version[] = {"version 3", NULL};
    open_fails(path, TF_DATA_LLMC, 1000, 0.0, TF_ERR_FORMAT, f_version);
    open_fails(path, TF_DATA_AUTO, 1000, 0.0, TF_ERR_FORMAT, f_version);

    /* the header claims one token more than the file holds */
    write_llmc("short.dat", LLMC_MAGIC_V1, 1, N + 1, ids, N, path, sizeof path);
    const char *f_short[] = {"expected 1226", "actual 1224", NULL};
    open_fails(path, TF_DATA_LLMC, 1000, 0.0, TF_ERR_FORMAT, f_short);
    /* ... or one fewer (trailing garbage) */
    write_llmc("long.dat", LLMC_MAGIC_V7, 7, N - 1, ids, N, path, sizeof path);
    const char *f_long[] = {"expected 1420", "actual 1424", NULL};
    open_fails(path, TF_DATA_AUTO, 1000, 0.0, TF_ERR_FORMAT, f_long);

    write_llmc("negative.dat", LLMC_MAGIC_V1, 1, -5, ids, N, path, sizeof path);
    open_fails(path, TF_DATA_LLMC, 1000, 0.0, TF_ERR_FORMAT, NULL);

    /* a valid header announcing zero tokens */
    write_llmc("zero.dat", LLMC_MAGIC_V1, 1, 0, ids, 0, path, sizeof path);
    const char *f_zero[] = {"empty", NULL};
    open_fails(path, TF_DATA_LLMC, 1000, 0.0, TF_ERR_FORMAT, f_zero);

    /* truncated header: the magic is there (AUTO still picks LLMC) */
    size_t size;
    unsigned char *img = llmc_image(LLMC_MAGIC_V1, 1, N, ids, N, &size);
    write_file("trunc.dat", img, 500, path, sizeof path);
    const char *f_trunc[] = {"truncated", "500 bytes", NULL};
    open_fails(path, TF_DATA_LLMC, 1000, 0.0, TF_ERR_FORMAT, f_trunc);
    open_fails(path, TF_DATA_AUTO, 1000, 0.0, TF_ERR_FORMAT, f_trunc);
    write_file("tiny.dat", img, 3, path, sizeof path);
    const char *f_tiny[] = {"truncated", "3 bytes", NULL};
    open_fails(path, TF_DATA_LLMC, 1000, 0.0, TF_ERR_FORMAT, f_tiny);
    free(img);
}
END_TEST

START_TEST(test_empty_file)
{
    char path[256];
    write_file("empty.bin", NULL, 0, path, sizeof path);
    const char *frag[] = {"empty", NULL};
    const tf_data_format fmts[] = {TF_DATA_AUTO, TF_DATA_BYTES, TF_DATA_U16, TF_DATA_LLMC};
    for (int i = 0; i < 4; i++)
        open_fails(path, fmts[i], 50304, 0.0, TF_ERR_FORMAT, frag);
}
END_TEST

START_TEST(test_missing_file_and_directory)
{
    char path[256];
    snprintf(path, sizeof path, "%s/does_not_exist.bin", tmpdir);
    const char *frag[] = {"does_not_exist.bin", "No such file", NULL};
    open_fails(path, TF_DATA_AUTO, 50304, 0.0, TF_ERR_IO, frag);
    open_fails(tmpdir, TF_DATA_BYTES, 256, 0.0, TF_ERR_IO, NULL);
}
END_TEST

START_TEST(test_id_out_of_range)
{
    enum { N = 1000 };
    unsigned char buf[2 * N];
    for (int i = 0; i < N; i++)
        put_le16(buf + 2 * i, (uint16_t)(i * 37 % 50304));
    put_le16(buf + 1234, 50400); /* id 617 */
    char path[256];
    write_file("train.bin", buf, sizeof buf, path, sizeof path);
    const char *frag[] = {"train.bin: token id 50400 at byte offset 1234 is >= vocab_size 50304",
                          NULL};
    open_fails(path, TF_DATA_U16, 50304, 0.0, TF_ERR_RANGE, frag);
    open_fails(path, TF_DATA_AUTO, 50304, 0.1, TF_ERR_RANGE, frag);
    /* valid under a larger vocabulary */
    tf_dataset *ds = open_ok(path, TF_DATA_U16, 50401, 0.0);
    tf_dataset_free(ds);

    /* in an llm.c shard the offset counts the header */
    uint32_t ids[N];
    fill_ids(ids, N, 500, 7);
    ids[10] = 700;
    write_llmc("shard.dat", LLMC_MAGIC_V7, 7, N, ids, N, path, sizeof path);
    const char *frag7[] = {"token id 700 at byte offset 1064 ", "vocab_size 500", NULL};
    open_fails(path, TF_DATA_LLMC, 500, 0.0, TF_ERR_RANGE, frag7);
    /* uint32 ids beyond int32 are out of range, not negative */
    ids[10] = 0xFFFFFFFFu;
    write_llmc("shard2.dat", LLMC_MAGIC_V7, 7, N, ids, N, path, sizeof path);
    const char *fragbig[] = {"token id 4294967295 at byte offset 1064 ", NULL};
    open_fails(path, TF_DATA_LLMC, 100000, 0.0, TF_ERR_RANGE, fragbig);
}
END_TEST

START_TEST(test_bytes_needs_vocab_256)
{
    char path[256];
    write_file("text.txt", "hello, world\n", 13, path, sizeof path);
    const char *frag[] = {"256", NULL};
    open_fails(path, TF_DATA_BYTES, 255, 0.0, TF_ERR_ARGUMENT, frag);
    open_fails(path, TF_DATA_AUTO, 100, 0.0, TF_ERR_ARGUMENT, frag);
    tf_dataset *ds = open_ok(path, TF_DATA_BYTES, 256, 0.0);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), 13);
    tf_dataset_free(ds);
}
END_TEST

/* ---- the split ------------------------------------------------------------- */

START_TEST(test_split_sizes)
{
    enum { N = 1000 };
    int32_t toks[N];
    for (int i = 0; i < N; i++)
        toks[i] = i;
    tf_dataset *ds = NULL;
    ck_assert_int_eq(tf_dataset_from_tokens(toks, N, N, 0.05, &ds), TF_OK);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), 950);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_VAL), 50);
    /* validation is the tail, training the head */
    int64_t n;
    int32_t *val = read_split(ds, TF_SPLIT_VAL, &n);
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(val[i], 950 + i);
    free(val);
    int32_t *train = read_split(ds, TF_SPLIT_TRAIN, &n);
    for (int i = 0; i < 950; i++)
        ck_assert_int_eq(train[i], i);
    free(train);
    tf_dataset_free(ds);

    /* floor(count * fraction) */
    ck_assert_int_eq(tf_dataset_from_tokens(toks, 999, N, 0.05, &ds), TF_OK);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_VAL), 49);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), 950);
    tf_dataset_free(ds);
    ck_assert_int_eq(tf_dataset_from_tokens(toks, N, N, 0.0, &ds), TF_OK);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), N);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_VAL), 0);
    tf_dataset_free(ds);
    ck_assert_int_eq(tf_dataset_from_tokens(toks, N, N, 0.999, &ds), TF_OK);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), 1);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_VAL), 999);
    tf_dataset_free(ds);

    /* the same on a file */
    unsigned char bytes[N];
    for (int i = 0; i < N; i++)
        bytes[i] = (unsigned char)i;
    char path[256];
    write_file("split.txt", bytes, N, path, sizeof path);
    ds = open_ok(path, TF_DATA_BYTES, 256, 0.05);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), 950);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_VAL), 50);
    tf_dataset_free(ds);

    /* fractions outside [0, 1) */
    const double bad[] = {-0.01, 1.0, 1.5, NAN, INFINITY};
    for (int i = 0; i < 5; i++) {
        ds = (tf_dataset *)(uintptr_t)0x1;
        ck_assert_int_eq(tf_dataset_from_tokens(toks, N, N, bad[i], &ds), TF_ERR_ARGUMENT);
        ck_assert_ptr_null(ds);
        ck_assert_ptr_nonnull(strstr(tf_last_error(), "val_fraction"));
        open_fails(path, TF_DATA_BYTES, 256, bad[i], TF_ERR_ARGUMENT, NULL);
    }
}
END_TEST

START_TEST(test_from_tokens_validation)
{
    int32_t toks[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    tf_dataset *ds = NULL;
    toks[6] = 10;
    ck_assert_int_eq(tf_dataset_from_tokens(toks, 10, 10, 0.0, &ds), TF_ERR_RANGE);
    ck_assert_ptr_null(ds);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "index 6"));
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "10"));
    toks[6] = -3;
    ck_assert_int_eq(tf_dataset_from_tokens(toks, 10, 10, 0.0, &ds), TF_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "-3"));
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "index 6"));
    toks[6] = 6;
    /* the copy is independent of the caller's array */
    ck_assert_int_eq(tf_dataset_from_tokens(toks, 10, 10, 0.0, &ds), TF_OK);
    toks[0] = 9;
    int32_t tok[9], tgt[9];
    ck_assert_int_eq(tf_dataset_batch(ds, TF_SPLIT_TRAIN, 0, 1, 9, tok, tgt), TF_OK);
    ck_assert_int_eq(tok[0], 0);
    ck_assert_int_eq(tgt[8], 9);
    tf_dataset_free(ds);
    /* vocabularies beyond uint16 keep ids beyond uint16 */
    int32_t big[3] = {70000, 1, 69999};
    ck_assert_int_eq(tf_dataset_from_tokens(big, 3, 70001, 0.0, &ds), TF_OK);
    int64_t n;
    int32_t *all = read_split(ds, TF_SPLIT_TRAIN, &n);
    ck_assert_int_eq(all[0], 70000);
    ck_assert_int_eq(all[2], 69999);
    free(all);
    tf_dataset_free(ds);
}
END_TEST

/* ---- sampling -------------------------------------------------------------- */

/* Tokens equal to their positions (vocab = count), so that a row tells
 * where it was cut from. */
static tf_dataset *identity_dataset(int64_t count, double frac)
{
    int32_t *toks = malloc((size_t)count * sizeof *toks);
    ck_assert_ptr_nonnull(toks);
    for (int64_t i = 0; i < count; i++)
        toks[i] = (int32_t)i;
    tf_dataset *ds = NULL;
    ck_assert_int_eq(tf_dataset_from_tokens(toks, count, count, frac, &ds), TF_OK);
    free(toks);
    return ds;
}

START_TEST(test_sample_determinism)
{
    enum { B = 8, T = 64 };
    /* a realistic (repetitive) stream for the shift check */
    int32_t *stream = malloc(20000 * sizeof *stream);
    ck_assert_ptr_nonnull(stream);
    uint32_t ids[20000];
    fill_ids(ids, 20000, 50257, 9);
    for (int i = 0; i < 20000; i++)
        stream[i] = (int32_t)ids[i];
    tf_dataset *ds = NULL;
    ck_assert_int_eq(tf_dataset_from_tokens(stream, 20000, 50257, 0.1, &ds), TF_OK);

    static int32_t a_tok[B * T], a_tgt[B * T], b_tok[B * T], b_tgt[B * T];
    ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_TRAIN, 42, 7, B, T, a_tok, a_tgt), TF_OK);
    /* other calls in between do not matter: a pure function */
    ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_TRAIN, 42, 3, B, T, b_tok, b_tgt), TF_OK);
    ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_TRAIN, 42, 7, B, T, b_tok, b_tgt), TF_OK);
    ck_assert_mem_eq(a_tok, b_tok, sizeof a_tok);
    ck_assert_mem_eq(a_tgt, b_tgt, sizeof a_tgt);
    /* a second handle over the same data agrees (no hidden state) */
    tf_dataset *ds2 = NULL;
    ck_assert_int_eq(tf_dataset_from_tokens(stream, 20000, 50257, 0.1, &ds2), TF_OK);
    ck_assert_int_eq(tf_dataset_sample(ds2, TF_SPLIT_TRAIN, 42, 7, B, T, b_tok, b_tgt), TF_OK);
    ck_assert_mem_eq(a_tok, b_tok, sizeof a_tok);
    ck_assert_mem_eq(a_tgt, b_tgt, sizeof a_tgt);
    tf_dataset_free(ds2);
    free(stream);
    /* targets are the inputs shifted by one */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T - 1; t++)
            ck_assert_int_eq(a_tgt[b * T + t], a_tok[b * T + t + 1]);

    ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_TRAIN, 42, 8, B, T, b_tok, b_tgt), TF_OK);
    ck_assert_msg(memcmp(a_tok, b_tok, sizeof a_tok) != 0, "index 7 and 8 gave one batch");
    ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_TRAIN, 43, 7, B, T, b_tok, b_tgt), TF_OK);
    ck_assert_msg(memcmp(a_tok, b_tok, sizeof a_tok) != 0, "seed 42 and 43 gave one batch");
    tf_dataset_free(ds);

    /* positions: every row is a contiguous slice of the split */
    ds = identity_dataset(10000, 0.2);
    for (int64_t index = 0; index < 50; index++) {
        ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_VAL, 5, index, B, T, a_tok, a_tgt),
                         TF_OK);
        for (int b = 0; b < B; b++) {
            int32_t start = a_tok[b * T];
            ck_assert_int_ge(start, 8000);
            ck_assert_int_le(start, 10000 - (T + 1));
            for (int t = 0; t < T; t++) {
                ck_assert_int_eq(a_tok[b * T + t], start + t);
                ck_assert_int_eq(a_tgt[b * T + t], start + t + 1);
            }
        }
        ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_TRAIN, 5, index, B, T, a_tok, a_tgt),
                         TF_OK);
        for (int b = 0; b < B; b++) {
            ck_assert_int_ge(a_tok[b * T], 0);
            ck_assert_int_le(a_tok[b * T], 8000 - (T + 1));
            ck_assert_int_eq(a_tgt[b * T + T - 1], a_tok[b * T] + T);
        }
    }
    tf_dataset_free(ds);
}
END_TEST

/* Start offsets cover [0, ntok - (T+1)], both ends included. */
START_TEST(test_sample_covers_range)
{
    enum { T = 16, EXTRA = 3 };
    tf_dataset *ds = identity_dataset(T + 1 + EXTRA, 0.0);
    int seen[EXTRA + 1] = {0};
    int32_t tok[4 * T], tgt[4 * T];
    for (int64_t index = 0; index < 200; index++) {
        ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_TRAIN, 1, index, 4, T, tok, tgt), TF_OK);
        for (int b = 0; b < 4; b++) {
            ck_assert_int_le(tok[b * T], EXTRA);
            seen[tok[b * T]]++;
        }
    }
    for (int s = 0; s <= EXTRA; s++)
        ck_assert_msg(seen[s] > 100, "start %d drawn %d times of 800", s, seen[s]);
    tf_dataset_free(ds);

    /* exactly one segment: always the whole split */
    ds = identity_dataset(T + 1, 0.0);
    ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_TRAIN, 9, 99, 4, T, tok, tgt), TF_OK);
    for (int b = 0; b < 4; b++)
        for (int t = 0; t < T; t++) {
            ck_assert_int_eq(tok[b * T + t], t);
            ck_assert_int_eq(tgt[b * T + t], t + 1);
        }
    tf_dataset_free(ds);
}
END_TEST

START_TEST(test_short_split_refused)
{
    /* 2000 tokens, 5% validation = 100 tokens */
    tf_dataset *ds = identity_dataset(2000, 0.05);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_VAL), 100);
    enum { B = 2, T = 128 };
    static int32_t tok[B * T], tgt[B * T];
    memset(tok, 0x5a, sizeof tok);
    memset(tgt, 0x5a, sizeof tgt);
    ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_VAL, 1, 0, B, T, tok, tgt), TF_ERR_RANGE);
    ck_assert_str_eq(tf_dataset_errmsg(ds), tf_last_error());
    const char *msg = tf_dataset_errmsg(ds);
    ck_assert_msg(strstr(msg, "validation split has 100 tokens") && strstr(msg, "T+1 = 129"),
                  "%s", msg);
    ck_assert_int_eq(tf_dataset_num_batches(ds, TF_SPLIT_VAL, B, T), 0);
    ck_assert_int_eq(tf_dataset_batch(ds, TF_SPLIT_VAL, 0, B, T, tok, tgt), TF_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(tf_dataset_errmsg(ds), "100 tokens"));
    /* nothing was written */
    for (int i = 0; i < B * T; i++)
        ck_assert_int_eq(tok[i], 0x5a5a5a5a);
    /* T = 99 fits exactly; the training split is fine with T = 128 */
    ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_VAL, 1, 0, B, 99, tok, tgt), TF_OK);
    ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_TRAIN, 1, 0, B, T, tok, tgt), TF_OK);
    ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_VAL, 1, 0, B, 100, tok, tgt), TF_ERR_RANGE);
    tf_dataset_free(ds);

    /* no validation split at all */
    ds = identity_dataset(2000, 0.0);
    ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_VAL, 1, 0, 1, 1, tok, tgt), TF_ERR_RANGE);
    ck_assert_int_eq(tf_dataset_num_batches(ds, TF_SPLIT_VAL, 1, 1), 0);
    tf_dataset_free(ds);
}
END_TEST

/* ---- sequential batches ---------------------------------------------------- */

static void check_coverage(int64_t ntok, double frac, tf_split split, int B, int T)
{
    tf_dataset *ds = identity_dataset(ntok, frac);
    int64_t n = tf_dataset_num_tokens(ds, split);
    int64_t base = split == TF_SPLIT_VAL ? ntok - n : 0;
    int64_t nb = tf_dataset_num_batches(ds, split, B, T);
    ck_assert_int_eq(nb, (n - 1) / T / B);
    int *hits = calloc((size_t)n, sizeof *hits);
    int32_t *tok = malloc((size_t)B * T * sizeof *tok);
    int32_t *tgt = malloc((size_t)B * T * sizeof *tgt);
    ck_assert(hits && tok && tgt);
    int64_t prev_end = -1;
    for (int64_t i = 0; i < nb; i++) {
        ck_assert_int_eq(tf_dataset_batch(ds, split, i, B, T, tok, tgt), TF_OK);
        for (int b = 0; b < B; b++) {
            /* segments in order, stride T */
            int64_t start = tok[b * T] - base;
            ck_assert_int_eq(start, (i * B + b) * (int64_t)T);
            if (prev_end >= 0)
                ck_assert_int_eq(start, prev_end);
            prev_end = start + T;
            for (int t = 0; t < T; t++) {
                ck_assert_int_eq(tok[b * T + t], base + start + t);
                ck_assert_int_eq(tgt[b * T + t], tok[b * T + t] + 1);
                hits[tgt[b * T + t] - base]++;
            }
        }
    }
    int64_t covered = nb * B * (int64_t)T;
    ck_assert_int_eq(hits[0], 0);
    for (int64_t p = 1; p < n; p++)
        ck_assert_msg(hits[p] == (p <= covered ? 1 : 0), "position %lld a target %d times",
                      (long long)p, hits[p]);
    if ((n - 1) % ((int64_t)B * T) == 0)
        ck_assert_int_eq(covered, n - 1);
    /* out of range */
    ck_assert_int_eq(tf_dataset_batch(ds, split, nb, B, T, tok, tgt), TF_ERR_RANGE);
    ck_assert_int_eq(tf_dataset_batch(ds, split, -1, B, T, tok, tgt), TF_ERR_RANGE);
    free(hits);
    free(tok);
    free(tgt);
    tf_dataset_free(ds);
}

START_TEST(test_batches_cover_split)
{
    /* divides evenly: 1 + 4 * 8 * 25 tokens in training */
    check_coverage(1 + 4 * 8 * 25, 0.0, TF_SPLIT_TRAIN, 4, 8);
    /* validation tail: 2000 * 0.2 = 400 = 1 + 3 * 7 * 19 */
    check_coverage(2000, 0.2, TF_SPLIT_VAL, 3, 7);
    /* not evenly: the remainder is left out */
    check_coverage(1000, 0.1, TF_SPLIT_TRAIN, 3, 7);
    check_coverage(1000, 0.1, TF_SPLIT_VAL, 1, 1);
}
END_TEST

/* ---- arguments --------------------------------------------------------------- */

START_TEST(test_null_and_arguments)
{
    int32_t tok[16], tgt[16];
    int32_t toks[100];
    for (int i = 0; i < 100; i++)
        toks[i] = i;
    tf_dataset *ds = NULL;

    tf_dataset_free(NULL);
    ck_assert_ptr_nonnull(tf_dataset_errmsg(NULL));
    ck_assert_int_eq(tf_dataset_num_tokens(NULL, TF_SPLIT_TRAIN), 0);
    ck_assert_int_eq(tf_dataset_num_batches(NULL, TF_SPLIT_TRAIN, 1, 1), 0);
    ck_assert_int_eq(tf_dataset_sample(NULL, TF_SPLIT_TRAIN, 0, 0, 1, 4, tok, tgt),
                     TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_batch(NULL, TF_SPLIT_TRAIN, 0, 1, 4, tok, tgt),
                     TF_ERR_ARGUMENT);

    ck_assert_int_eq(tf_dataset_open(NULL, TF_DATA_AUTO, 256, 0.0, &ds), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_open("x.bin", TF_DATA_AUTO, 256, 0.0, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_open("x.bin", (tf_data_format)9, 256, 0.0, &ds),
                     TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_open("x.bin", TF_DATA_AUTO, 0, 0.0, &ds), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_open("x.bin", TF_DATA_AUTO, (int64_t)1 << 40, 0.0, &ds),
                     TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_from_tokens(NULL, 10, 100, 0.0, &ds), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_from_tokens(toks, 0, 100, 0.0, &ds), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_from_tokens(toks, -1, 100, 0.0, &ds), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_from_tokens(toks, 10, -5, 0.0, &ds), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_from_tokens(toks, 10, 100, 0.0, NULL), TF_ERR_ARGUMENT);
    ck_assert_ptr_null(ds);

    ck_assert_int_eq(tf_dataset_from_tokens(toks, 100, 100, 0.0, &ds), TF_OK);
    ck_assert_str_eq(tf_dataset_errmsg(ds), "");
    const tf_split bad_split = (tf_split)2;
    ck_assert_int_eq(tf_dataset_num_tokens(ds, bad_split), 0);
    ck_assert_int_eq(tf_dataset_num_batches(ds, bad_split, 1, 1), 0);
    ck_assert_int_eq(tf_dataset_num_batches(ds, TF_SPLIT_TRAIN, 0, 1), 0);
    ck_assert_int_eq(tf_dataset_num_batches(ds, TF_SPLIT_TRAIN, 1, 0), 0);
    ck_assert_int_eq(tf_dataset_num_batches(ds, TF_SPLIT_TRAIN, 1, 1), 99);
    struct {
        tf_split split;
        int B, T;
        int32_t *tok, *tgt;
    } cases[] = {
        {bad_split, 1, 4, tok, tgt}, {TF_SPLIT_TRAIN, 0, 4, tok, tgt},
        {TF_SPLIT_TRAIN, 1, 0, tok, tgt}, {TF_SPLIT_TRAIN, -1, 4, tok, tgt},
        {TF_SPLIT_TRAIN, 1, 4, NULL, tgt}, {TF_SPLIT_TRAIN, 1, 4, tok, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(tf_dataset_sample(ds, cases[i].split, 1, 0, cases[i].B, cases[i].T,
                                           cases[i].tok, cases[i].tgt),
                         TF_ERR_ARGUMENT);
        ck_assert_str_ne(tf_dataset_errmsg(ds), "");
        ck_assert_int_eq(tf_dataset_batch(ds, cases[i].split, 0, cases[i].B, cases[i].T,
                                          cases[i].tok, cases[i].tgt),
                         TF_ERR_ARGUMENT);
    }
    tf_dataset_free(ds);
}
END_TEST

/* ---- real text ---------------------------------------------------------------- */

START_TEST(test_fortunes_text)
{
    static const char *const candidates[] = {
        "/usr/share/games/fortunes/fortunes", "/usr/share/games/fortunes/literature",
        "/usr/share/games/fortunes/computers", NULL};
    const char *path = NULL;
    struct stat sb;
    for (int i = 0; candidates[i]; i++)
        if (stat(candidates[i], &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 1000) {
            path = candidates[i];
            break;
        }
    if (!path) {
        fprintf(stderr, "test_fortunes_text: no fortunes file, skipped "
                        "(apt-get install fortunes)\n");
        return;
    }
    tf_dataset *ds = open_ok(path, TF_DATA_AUTO, 256, 0.1);
    int64_t n_train = tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN);
    int64_t n_val = tf_dataset_num_tokens(ds, TF_SPLIT_VAL);
    ck_assert_int_eq(n_train + n_val, (int64_t)sb.st_size);
    ck_assert_int_eq(n_val, (int64_t)floor((double)sb.st_size * 0.1));

    /* the bytes come back as they are in the file */
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    unsigned char head[65];
    ck_assert_uint_eq(fread(head, 1, sizeof head, fp), sizeof head);
    fclose(fp);
    int32_t tok[64], tgt[64];
    ck_assert_int_eq(tf_dataset_batch(ds, TF_SPLIT_TRAIN, 0, 1, 64, tok, tgt), TF_OK);
    for (int t = 0; t < 64; t++) {
        ck_assert_int_eq(tok[t], head[t]);
        ck_assert_int_eq(tgt[t], head[t + 1]);
    }
    /* and sampling from text works */
    int32_t s_tok[4 * 64], s_tgt[4 * 64];
    ck_assert_int_eq(tf_dataset_sample(ds, TF_SPLIT_VAL, 3, 0, 4, 64, s_tok, s_tgt), TF_OK);
    for (int i = 0; i < 4 * 64; i++)
        ck_assert(s_tok[i] >= 0 && s_tok[i] < 256);
    tf_dataset_free(ds);
}
END_TEST

/* ---- llm.c's versions and look-alikes ----------------------------------------- */

START_TEST(test_llmc_magic_pairs)
{
    enum { N = 592 };
    uint32_t ids[N];
    fill_ids(ids, N, 128256, 11);
    ids[3] = 128255;
    char path[256];

    /* a Llama 3 shard named .bin at vocab 128256 is N tokens under AUTO, not
     * (1024 + 4N) / 2 uint16 "tokens" */
    write_llmc("edu_fineweb_train_000001.bin", LLMC_MAGIC_V7, 7, N, ids, N, path, sizeof path);
    tf_dataset *ds = open_ok(path, TF_DATA_AUTO, 128256, 0.0);
    assert_stream(ds, ids, N);
    tf_data_source src = {.struct_size = sizeof src};
    ck_assert_int_eq(tf_dataset_num_sources(ds, TF_SPLIT_TRAIN), 1);
    ck_assert_int_eq(tf_dataset_source(ds, TF_SPLIT_TRAIN, 0, &src), TF_OK);
    ck_assert_int_eq(src.format, TF_DATA_LLMC);
    ck_assert_int_eq(src.version, 7);
    ck_assert_int_eq(src.token_bytes, 4);
    ck_assert_int_eq(src.file_tokens, N);
    ck_assert_str_eq(src.path, path);
    tf_dataset_free(ds);

    /* the pairs llm.c never writes are refused, whatever the format says */
    write_llmc("v7_old_magic.bin", LLMC_MAGIC_V1, 7, N, ids, N, path, sizeof path);
    const char *f17[] = {"version 7 for magic 20240520", "20240801", NULL};
    open_fails(path, TF_DATA_LLMC, 128256, 0.0, TF_ERR_FORMAT, f17);
    open_fails(path, TF_DATA_AUTO, 128256, 0.0, TF_ERR_FORMAT, f17);
    write_llmc("v1_new_magic.bin", LLMC_MAGIC_V7, 1, N, ids, N, path, sizeof path);
    const char *f71[] = {"version 1 for magic 20240801", NULL};
    open_fails(path, TF_DATA_AUTO, 128256, 0.0, TF_ERR_FORMAT, f71);

    /* an unknown llm.c-like header is refused under AUTO, never read raw */
    write_llmc("future_train_000001.bin", 20250101, 8, N, ids, N, path, sizeof path);
    const char *fnew[] = {"magic 20250101", "not read as raw", NULL};
    open_fails(path, TF_DATA_AUTO, 128256, 0.0, TF_ERR_FORMAT, fnew);
    write_llmc("future.txt", 20250101, 8, N, ids, N, path, sizeof path);
    open_fails(path, TF_DATA_AUTO, 128256, 0.0, TF_ERR_FORMAT, fnew);
    /* ... unless raw is asked for (llmc_image writes 2-byte ids for it) */
    ds = open_ok(path, TF_DATA_U16, 65536, 0.0);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), (1024 + 2 * N) / 2);
    tf_dataset_free(ds);
    /* llm.c files that are not token shards say what they are */
    write_llmc("hellaswag_val.bin", 20240522, 1, N, ids, N, path, sizeof path);
    const char *feval[] = {"evaluation file", "not a token shard", NULL};
    open_fails(path, TF_DATA_AUTO, 128256, 0.0, TF_ERR_FORMAT, feval);
    /* the token count is still checked against the size */
    write_llmc("short7.bin", LLMC_MAGIC_V7, 7, N + 2, ids, N, path, sizeof path);
    const char *fshort[] = {"expected 3400", "actual 3392", NULL};
    open_fails(path, TF_DATA_AUTO, 128256, 0.0, TF_ERR_FORMAT, fshort);

    /* raw uint16 text whose first words are not date-like stays raw */
    unsigned char raw[2 * 8];
    const uint16_t words[8] = {464, 2068, 7586, 21831, 18045, 625, 262, 16931};
    for (int i = 0; i < 8; i++)
        put_le16(raw + 2 * i, words[i]);
    write_file("raw.bin", raw, sizeof raw, path, sizeof path);
    ds = open_ok(path, TF_DATA_AUTO, 50257, 0.0);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), 8);
    ck_assert_int_eq(tf_dataset_source(ds, TF_SPLIT_TRAIN, 0, &src), TF_OK);
    ck_assert_int_eq(src.format, TF_DATA_U16);
    ck_assert_int_eq(src.version, 0);
    ck_assert_int_eq(src.token_bytes, 2);
    tf_dataset_free(ds);
}
END_TEST

/* ---- sets of shards ------------------------------------------------------------ */

/* Shard f of a test set: n tokens, token j = f * 10000 + j (vocab 100000),
 * so that a row says which file and position it was cut from. */
static void write_shard(const char *name, int version, int f, int n, char *path, size_t cap)
{
    uint32_t *ids = malloc((size_t)n * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (int j = 0; j < n; j++)
        ids[j] = (uint32_t)(f * 10000 + j);
    write_llmc(name, version == 7 ? LLMC_MAGIC_V7 : LLMC_MAGIC_V1, version, n, ids, (size_t)n,
               path, cap);
    free(ids);
}

enum { SET_FILES = 4 };
static const int set_len[SET_FILES] = {900, 300, 1700, 40}; /* the last is shorter than T+1 */
static char set_path[SET_FILES + 1][256];                   /* [SET_FILES]: validation */

static char set_dir[128]; /* tmpdir/set: the set's files and nothing else */

/* Three GPT-2 shards and a Llama 3 one for training, one for validation. */
static void write_set(void)
{
    snprintf(set_dir, sizeof set_dir, "%s/set", tmpdir);
    tt_remove_tree(set_dir);
    ck_assert_int_eq(mkdir(set_dir, 0700), 0);
    char name[64];
    for (int f = 0; f < SET_FILES; f++) {
        snprintf(name, sizeof name, "set/set_train_%06d.bin", f + 1);
        write_shard(name, f == 2 ? 7 : 1, f, set_len[f], set_path[f], sizeof set_path[f]);
    }
    write_shard("set/set_val_000000.bin", 7, 9, 700, set_path[SET_FILES], sizeof set_path[0]);
}

static tf_dataset *open_set(int max_resident)
{
    const char *train[SET_FILES], *val[1] = {set_path[SET_FILES]};
    for (int f = 0; f < SET_FILES; f++)
        train[f] = set_path[f];
    tf_dataset_params p = tf_dataset_default_params();
    p.vocab_size = 100000;
    p.max_resident = max_resident;
    tf_dataset *ds = NULL;
    tf_status st = tf_dataset_open_files(train, SET_FILES, val, 1, &p, &ds);
    ck_assert_msg(st == TF_OK, "%s %s", tf_status_name(st), tf_last_error());
    return ds;
}

/* The file and position a row was cut from, after checking it is one
 * contiguous run of one file. */
static int row_origin(const int32_t *tok, const int32_t *tgt, int T, int *pos)
{
    int f = tok[0] / 10000;
    *pos = tok[0] % 10000;
    for (int t = 0; t < T; t++) {
        ck_assert_int_eq(tok[t], tok[0] + t);
        ck_assert_int_eq(tgt[t], tok[0] + t + 1);
    }
    return f;
}

START_TEST(test_shards_open_and_batches)
{
    write_set();
    tf_dataset *ds = open_set(1);
    int64_t want_train = 0;
    for (int f = 0; f < SET_FILES; f++)
        want_train += set_len[f];
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), want_train);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_VAL), 700);

    /* what was detected, file by file */
    ck_assert_int_eq(tf_dataset_num_sources(ds, TF_SPLIT_TRAIN), SET_FILES);
    ck_assert_int_eq(tf_dataset_num_sources(ds, TF_SPLIT_VAL), 1);
    for (int f = 0; f <= SET_FILES; f++) {
        tf_data_source src = {.struct_size = sizeof src};
        tf_split sp = f < SET_FILES ? TF_SPLIT_TRAIN : TF_SPLIT_VAL;
        ck_assert_int_eq(tf_dataset_source(ds, sp, f < SET_FILES ? f : 0, &src), TF_OK);
        ck_assert_str_eq(src.path, set_path[f]);
        ck_assert_int_eq(src.format, TF_DATA_LLMC);
        int v7 = f == 2 || f == SET_FILES;
        ck_assert_int_eq(src.version, v7 ? 7 : 1);
        ck_assert_int_eq(src.token_bytes, v7 ? 4 : 2);
        ck_assert_int_eq(src.file_tokens, f < SET_FILES ? set_len[f] : 700);
        ck_assert_int_eq(src.num_tokens, src.file_tokens);
    }

    /* sequential batches: file by file, segments never cross files */
    enum { B = 3, T = 50 };
    int64_t segs = 0;
    for (int f = 0; f < SET_FILES; f++)
        segs += (set_len[f] - 1) / T;
    int64_t nb = tf_dataset_num_batches(ds, TF_SPLIT_TRAIN, B, T);
    ck_assert_int_eq(nb, segs / B);
    int32_t tok[B * T], tgt[B * T];
    int f_prev = 0, next_pos = 0;
    for (int64_t i = 0; i < nb; i++) {
        ck_assert_int_eq(tf_dataset_batch(ds, TF_SPLIT_TRAIN, i, B, T, tok, tgt), TF_OK);
        for (int b = 0; b < B; b++) {
            int pos, f = row_origin(tok + b * T, tgt + b * T, T, &pos);
            if (f != f_prev) { /* the next file starts at its beginning */
                ck_assert_int_gt(f, f_prev);
                ck_assert_int_eq(pos, 0);
            } else {
                ck_assert_int_eq(pos, next_pos);
            }
            ck_assert_int_le(pos + T + 1, set_len[f]);
            f_prev = f;
            next_pos = pos + T;
        }
    }
    ck_assert_int_eq(tf_dataset_batch(ds, TF_SPLIT_TRAIN, nb, B, T, tok, tgt), TF_ERR_RANGE);
    ck_assert_int_eq(tf_dataset_num_batches(ds, TF_SPLIT_VAL, 1, T), 699 / T);
    ck_assert_int_eq(tf_dataset_batch(ds, TF_SPLIT_VAL, 2, 1, T, tok, tgt), TF_OK);
    int pos;
    ck_assert_int_eq(row_origin(tok, tgt, T, &pos), 9);
    ck_assert_int_eq(pos, 2 * T);
    tf_dataset_free(ds);
}
END_TEST

/* Batch i is a pure function of (seed, i): whatever the order of the
 * calls and however many files are held in memory. */
START_TEST(test_shards_sample_pure)
{
    write_set();
    enum { B = 4, T = 60, NI = 120 };
    tf_dataset *ds1 = open_set(1), *ds4 = open_set(8);
    static int32_t a[NI][B * T], at[NI][B * T];
    int32_t tok[B * T], tgt[B * T];
    int per_file[SET_FILES] = {0}, switches = 0, prev = -1;
    for (int i = 0; i < NI; i++) {
        ck_assert_int_eq(tf_dataset_sample(ds1, TF_SPLIT_TRAIN, 7, i, B, T, a[i], at[i]), TF_OK);
        int pos, f = row_origin(a[i], at[i], T, &pos);
        ck_assert_int_le(pos + T + 1, set_len[f]);
        for (int b = 1; b < B; b++) /* one file per batch */
            ck_assert_int_eq(row_origin(a[i] + b * T, at[i] + b * T, T, &pos), f);
        per_file[f]++;
        switches += prev >= 0 && f != prev;
        prev = f;
    }
    /* the too-short file is never drawn; the others in proportion to their
     * segment starts (840, 240 and 1640 of 2720: passes of 12 batches of
     * B*T = 240 starts, 3.5, 1 and 6.8 of them each) */
    ck_assert_int_eq(per_file[3], 0);
    ck_assert_int_gt(per_file[0], 20);
    ck_assert_int_gt(per_file[1], 3);
    ck_assert_int_gt(per_file[2], 50);
    ck_assert_int_gt(per_file[2], per_file[0]);
    ck_assert_int_gt(per_file[0], per_file[1]);
    /* consecutive indices stay in a file: per pass of 12, at most 2 switches
     * between its 3 files and 1 into the next pass */
    ck_assert_int_le(switches, 3 * (NI / 12 + 1));

    /* another handle, backwards and with every file resident: same batches */
    for (int i = NI - 1; i >= 0; i--) {
        ck_assert_int_eq(tf_dataset_sample(ds4, TF_SPLIT_TRAIN, 7, i, B, T, tok, tgt), TF_OK);
        ck_assert_mem_eq(tok, a[i], sizeof tok);
        ck_assert_mem_eq(tgt, at[i], sizeof tgt);
    }
    /* interleaved with validation batches on the one-file handle */
    for (int i = 0; i < NI; i += 7) {
        ck_assert_int_eq(tf_dataset_sample(ds1, TF_SPLIT_VAL, 7, i, B, T, tok, tgt), TF_OK);
        ck_assert_int_eq(tf_dataset_sample(ds1, TF_SPLIT_TRAIN, 7, i, B, T, tok, tgt), TF_OK);
        ck_assert_mem_eq(tok, a[i], sizeof tok);
    }
    /* another seed, another stream */
    ck_assert_int_eq(tf_dataset_sample(ds1, TF_SPLIT_TRAIN, 8, 0, B, T, tok, tgt), TF_OK);
    int differs = memcmp(tok, a[0], sizeof tok) != 0;
    for (int i = 1; i < 10 && !differs; i++) {
        ck_assert_int_eq(tf_dataset_sample(ds1, TF_SPLIT_TRAIN, 8, i, B, T, tok, tgt), TF_OK);
        differs = memcmp(tok, a[i], sizeof tok) != 0;
    }
    ck_assert(differs);
    /* T longer than every file */
    static int32_t big[2 * 2000];
    ck_assert_int_eq(tf_dataset_sample(ds1, TF_SPLIT_TRAIN, 7, 0, 1, 1700, big, big + 2000),
                     TF_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(tf_dataset_errmsg(ds1), "longest has 1700"));
    ck_assert_int_eq(tf_dataset_sample(ds1, TF_SPLIT_TRAIN, 7, 0, 1, 1699, big, big + 2000),
                     TF_OK);
    tf_dataset_free(ds1);
    tf_dataset_free(ds4);
}
END_TEST

static void overwrite_shard(const char *path, size_t keep)
{
    ck_assert_int_eq(truncate(path, (off_t)keep), 0);
}

/* Files are read when needed and at most max_resident are held: a file
 * changed on disk is noticed when it is read again, i.e. only after it was
 * dropped; the failing call leaves its output untouched and the others
 * keep working. */
START_TEST(test_shards_streaming_errors)
{
    write_set();
    enum { B = 2, T = 30 };
    int32_t tok[B * T], tgt[B * T], keep[B * T];
    tf_dataset *lazy = open_set(1), *all = open_set(SET_FILES + 1);
    /* find an index drawn from file 1, and one from another file */
    int64_t i1 = -1, i0 = -1;
    for (int64_t i = 0; i < 400 && (i1 < 0 || i0 < 0); i++) {
        ck_assert_int_eq(tf_dataset_sample(lazy, TF_SPLIT_TRAIN, 3, i, B, T, tok, tgt), TF_OK);
        int pos, f = row_origin(tok, tgt, T, &pos);
        if (f == 1 && i1 < 0)
            i1 = i;
        if (f != 1 && i0 < 0)
            i0 = i;
    }
    ck_assert(i1 >= 0 && i0 >= 0);
    ck_assert_int_eq(tf_dataset_sample(lazy, TF_SPLIT_TRAIN, 3, i1, B, T, keep, tgt), TF_OK);

    /* truncate file 1 (keep its header and 10 tokens) */
    overwrite_shard(set_path[1], 1024 + 2 * 10);
    /* the handle that holds every file never rereads it */
    ck_assert_int_eq(tf_dataset_sample(all, TF_SPLIT_TRAIN, 3, i0, B, T, tok, tgt), TF_OK);
    ck_assert_int_eq(tf_dataset_sample(all, TF_SPLIT_TRAIN, 3, i1, B, T, tok, tgt), TF_OK);
    ck_assert_mem_eq(tok, keep, sizeof tok);
    /* file 1 is still resident in the one-file handle ... */
    ck_assert_int_eq(tf_dataset_sample(lazy, TF_SPLIT_TRAIN, 3, i1, B, T, tok, tgt), TF_OK);
    /* ... until another file's batch drops it */
    ck_assert_int_eq(tf_dataset_sample(lazy, TF_SPLIT_TRAIN, 3, i0, B, T, tok, tgt), TF_OK);
    memset(tok, 0x5a, sizeof tok);
    tf_status st = tf_dataset_sample(lazy, TF_SPLIT_TRAIN, 3, i1, B, T, tok, tgt);
    ck_assert_int_eq(st, TF_ERR_FORMAT);
    ck_assert_str_eq(tf_dataset_errmsg(lazy), tf_last_error());
    ck_assert_msg(strstr(tf_last_error(), set_path[1]) && strstr(tf_last_error(), "size"),
                  "%s", tf_last_error());
    for (int k = 0; k < B * T; k++)
        ck_assert_int_eq(tok[k], 0x5a5a5a5a);
    ck_assert_int_eq(tf_dataset_sample(lazy, TF_SPLIT_TRAIN, 3, i0, B, T, tok, tgt), TF_OK);
    /* sequential batches through file 1 fail the same way */
    ck_assert_int_eq(tf_dataset_batch(lazy, TF_SPLIT_TRAIN, 900 / T / B + 1, B, T, tok, tgt),
                     TF_ERR_FORMAT);
    tf_dataset_free(lazy);
    tf_dataset_free(all);

    /* opening checks every header and size: a truncated shard is refused */
    const char *ftrunc[] = {"size mismatch", "set_train_000002.bin", "truncated", NULL};
    const char *train[SET_FILES];
    for (int f = 0; f < SET_FILES; f++)
        train[f] = set_path[f];
    tf_dataset_params p = tf_dataset_default_params();
    p.vocab_size = 100000;
    p.max_resident = 1;
    tf_dataset *ds = (tf_dataset *)(uintptr_t)0x1;
    ck_assert_int_eq(tf_dataset_open_files(train, SET_FILES, NULL, 0, &p, &ds), TF_ERR_FORMAT);
    ck_assert_ptr_null(ds);
    for (int k = 0; ftrunc[k]; k++)
        ck_assert_msg(strstr(tf_last_error(), ftrunc[k]), "%s", tf_last_error());
    /* a bad magic in one shard names that shard */
    char bad[256];
    write_shard("set/set_train_000002.bin", 1, 1, 300, bad, sizeof bad);
    unsigned char magic[4];
    FILE *fp = fopen(set_path[3], "r+b");
    ck_assert_ptr_nonnull(fp);
    put_le32(magic, 20240519);
    ck_assert_int_eq(fwrite(magic, 1, 4, fp), 4);
    ck_assert_int_eq(fclose(fp), 0);
    ck_assert_int_eq(tf_dataset_open_files(train, SET_FILES, NULL, 0, &p, &ds), TF_ERR_FORMAT);
    ck_assert_msg(strstr(tf_last_error(), "set_train_000004.bin") &&
                  strstr(tf_last_error(), "magic 20240519"), "%s", tf_last_error());
}
END_TEST

/* An id out of range in a file read later fails the call that reads it
 * (naming the file and offset); with every file read at opening, the
 * opening fails. */
START_TEST(test_shards_ids_out_of_vocab)
{
    write_set();
    uint32_t ids[400];
    for (int j = 0; j < 400; j++)
        ids[j] = (uint32_t)(50000 + j);
    ids[123] = 100000; /* == vocab_size */
    write_llmc("set/set_train_000002.bin", LLMC_MAGIC_V7, 7, 400, ids, 400, set_path[1],
               sizeof set_path[1]);
    const char *frag[] = {"set_train_000002.bin: token id 100000 at byte offset 1516 ",
                          "vocab_size 100000", NULL};
    const char *train[SET_FILES];
    for (int f = 0; f < SET_FILES; f++)
        train[f] = set_path[f];
    tf_dataset_params p = tf_dataset_default_params();
    p.vocab_size = 100000;
    p.max_resident = SET_FILES;
    tf_dataset *ds = (tf_dataset *)(uintptr_t)0x1;
    ck_assert_int_eq(tf_dataset_open_files(train, SET_FILES, NULL, 0, &p, &ds), TF_ERR_RANGE);
    ck_assert_ptr_null(ds);
    for (int k = 0; frag[k]; k++)
        ck_assert_msg(strstr(tf_last_error(), frag[k]), "%s", tf_last_error());

    p.max_resident = 2;
    ck_assert_int_eq(tf_dataset_open_files(train, SET_FILES, NULL, 0, &p, &ds), TF_OK);
    enum { T = 20 };
    int32_t tok[T], tgt[T];
    /* batch 0 is in file 0; the first batch of file 1 follows file 0's */
    ck_assert_int_eq(tf_dataset_batch(ds, TF_SPLIT_TRAIN, 0, 1, T, tok, tgt), TF_OK);
    ck_assert_int_eq(tf_dataset_batch(ds, TF_SPLIT_TRAIN, 899 / T, 1, T, tok, tgt), TF_ERR_RANGE);
    for (int k = 0; frag[k]; k++)
        ck_assert_msg(strstr(tf_dataset_errmsg(ds), frag[k]), "%s", tf_dataset_errmsg(ds));
    ck_assert_int_eq(tf_dataset_batch(ds, TF_SPLIT_TRAIN, 899 / T + 400 / T, 1, T, tok, tgt),
                     TF_OK);
    int pos;
    ck_assert_int_eq(row_origin(tok, tgt, T, &pos), 2);
    tf_dataset_free(ds);
}
END_TEST

START_TEST(test_shards_glob_and_directory)
{
    write_set();
    char other[256];
    write_file("set/README", "not a shard", 11, other, sizeof other);
    write_file("set/x_train_1.txt", "nor this", 8, other, sizeof other);
    tf_dataset_params p = tf_dataset_default_params();
    p.vocab_size = 100000;
    tf_dataset *ds = NULL;
    /* a directory: its *_train_*.bin and *_val_*.bin, sorted */
    tf_status st = tf_dataset_open_glob(set_dir, set_dir, &p, &ds);
    ck_assert_msg(st == TF_OK, "%s", tf_last_error());
    ck_assert_int_eq(tf_dataset_num_sources(ds, TF_SPLIT_TRAIN), SET_FILES);
    ck_assert_int_eq(tf_dataset_num_sources(ds, TF_SPLIT_VAL), 1);
    for (int f = 0; f < SET_FILES; f++) {
        tf_data_source src = {.struct_size = sizeof src};
        ck_assert_int_eq(tf_dataset_source(ds, TF_SPLIT_TRAIN, f, &src), TF_OK);
        ck_assert_str_eq(src.path, set_path[f]);
    }
    tf_dataset_free(ds);
    /* a pattern; no validation files: the tail of the last files */
    char pattern[300];
    snprintf(pattern, sizeof pattern, "%s/set_train_00000[23].bin", set_dir);
    p.val_fraction = 0.5;
    ck_assert_int_eq(tf_dataset_open_glob(pattern, NULL, &p, &ds), TF_OK);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), 1000);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_VAL), 1000);
    ck_assert_int_eq(tf_dataset_num_sources(ds, TF_SPLIT_TRAIN), 2);
    ck_assert_int_eq(tf_dataset_num_sources(ds, TF_SPLIT_VAL), 1);
    tf_data_source src = {.struct_size = sizeof src};
    ck_assert_int_eq(tf_dataset_source(ds, TF_SPLIT_TRAIN, 1, &src), TF_OK);
    ck_assert_str_eq(src.path, set_path[2]);
    ck_assert_int_eq(src.file_tokens, 1700);
    ck_assert_int_eq(src.num_tokens, 700);
    ck_assert_int_eq(tf_dataset_source(ds, TF_SPLIT_VAL, 0, &src), TF_OK);
    ck_assert_str_eq(src.path, set_path[2]);
    ck_assert_int_eq(src.num_tokens, 1000);
    enum { T = 10 };
    int32_t tok[T], tgt[T];
    ck_assert_int_eq(tf_dataset_batch(ds, TF_SPLIT_VAL, 0, 1, T, tok, tgt), TF_OK);
    ck_assert_int_eq(tok[0], 2 * 10000 + 700);
    ck_assert_int_eq(tf_dataset_source(ds, TF_SPLIT_VAL, 1, &src), TF_ERR_RANGE);
    tf_dataset_free(ds);
    /* a single file */
    p.val_fraction = 0.0;
    ck_assert_int_eq(tf_dataset_open_glob(set_path[0], set_path[SET_FILES], &p, &ds), TF_OK);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), set_len[0]);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_VAL), 700);
    tf_dataset_free(ds);

    /* nothing to open */
    snprintf(pattern, sizeof pattern, "%s/nothing_*.bin", set_dir);
    ds = (tf_dataset *)(uintptr_t)0x1;
    ck_assert_int_eq(tf_dataset_open_glob(pattern, NULL, &p, &ds), TF_ERR_NOT_FOUND);
    ck_assert_ptr_null(ds);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "nothing_*.bin"));
    char sub[300];
    snprintf(sub, sizeof sub, "%s/empty_dir", set_dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_eq(tf_dataset_open_glob(sub, NULL, &p, &ds), TF_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "_train_"));
    ck_assert_int_eq(tf_dataset_open_glob(set_dir, sub, &p, &ds), TF_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "_val_"));
    ck_assert_int_eq(rmdir(sub), 0);
    snprintf(sub, sizeof sub, "%s/missing.bin", set_dir);
    ck_assert_int_eq(tf_dataset_open_glob(sub, NULL, &p, &ds), TF_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "No such file"));
}
END_TEST

START_TEST(test_shards_arguments)
{
    write_set();
    const char *train[2] = {set_path[0], set_path[1]}, *val[1] = {set_path[SET_FILES]};
    const char *holes[2] = {set_path[0], NULL};
    tf_dataset_params p = tf_dataset_default_params();
    ck_assert_uint_eq(p.struct_size, sizeof p);
    ck_assert_int_eq(p.format, TF_DATA_AUTO);
    ck_assert_int_eq(p.max_resident, 2);
    ck_assert(p.val_fraction == 0.0);
    tf_dataset *ds = (tf_dataset *)(uintptr_t)0x1;
    /* vocab_size has no default */
    ck_assert_int_eq(tf_dataset_open_files(train, 2, val, 1, &p, &ds), TF_ERR_ARGUMENT);
    ck_assert_ptr_null(ds);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "vocab_size"));
    p.vocab_size = 100000;
    struct {
        const char *const *train;
        size_t nt;
        const char *const *val;
        size_t nv;
        const char *why;
    } bad[] = {
        {NULL, 1, NULL, 0, "no training files"}, {train, 0, NULL, 0, "no training files"},
        {train, 2, NULL, 1, "val_paths is NULL"}, {holes, 2, NULL, 0, "training path 1"},
        {train, 1, holes + 1, 1, "validation path 0"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ck_assert_int_eq(tf_dataset_open_files(bad[k].train, bad[k].nt, bad[k].val, bad[k].nv,
                                               &p, &ds),
                         TF_ERR_ARGUMENT);
        ck_assert_msg(strstr(tf_last_error(), bad[k].why), "%s", tf_last_error());
    }
    tf_dataset_params q = p;
    q.val_fraction = 0.1; /* and validation files: which one? */
    ck_assert_int_eq(tf_dataset_open_files(train, 2, val, 1, &q, &ds), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "val_fraction"));
    q = p;
    q.max_resident = 0;
    ck_assert_int_eq(tf_dataset_open_files(train, 2, val, 1, &q, &ds), TF_ERR_ARGUMENT);
    q = p;
    q.format = (tf_data_format)7;
    ck_assert_int_eq(tf_dataset_open_files(train, 2, val, 1, &q, &ds), TF_ERR_ARGUMENT);
    q = p;
    q.struct_size = sizeof(size_t);
    ck_assert_int_eq(tf_dataset_open_files(train, 2, val, 1, &q, &ds), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "struct_size"));
    q.struct_size = sizeof q + 8;
    ck_assert_int_eq(tf_dataset_open_files(train, 2, val, 1, &q, &ds), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_open_files(train, 2, val, 1, NULL, &ds), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_open_files(train, 2, val, 1, &p, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_open_glob(NULL, NULL, &p, &ds), TF_ERR_ARGUMENT);
    ck_assert_ptr_null(ds);
    /* a forced format applies to every file */
    q = p;
    q.format = TF_DATA_U16;
    ck_assert_int_eq(tf_dataset_open_files(train, 2, NULL, 0, &q, &ds), TF_OK);
    ck_assert_int_eq(tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN), 512 + 900 + 512 + 300);
    tf_dataset_free(ds);

    /* the getter's arguments */
    ck_assert_int_eq(tf_dataset_open_files(train, 2, val, 1, &p, &ds), TF_OK);
    tf_data_source src = {.struct_size = sizeof src};
    ck_assert_int_eq(tf_dataset_source(NULL, TF_SPLIT_TRAIN, 0, &src), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_source(ds, TF_SPLIT_TRAIN, 0, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_source(ds, (tf_split)2, 0, &src), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_dataset_source(ds, TF_SPLIT_TRAIN, -1, &src), TF_ERR_RANGE);
    ck_assert_int_eq(tf_dataset_source(ds, TF_SPLIT_TRAIN, 2, &src), TF_ERR_RANGE);
    ck_assert_int_eq(tf_dataset_num_sources(NULL, TF_SPLIT_TRAIN), 0);
    ck_assert_int_eq(tf_dataset_num_sources(ds, (tf_split)2), 0);
    /* an older caller's smaller struct: nothing written past its size */
    struct {
        tf_data_source head;
        unsigned char canary[8];
    } small;
    memset(&small, 0xab, sizeof small);
    small.head.struct_size = offsetof(tf_data_source, format);
    ck_assert_int_eq(tf_dataset_source(ds, TF_SPLIT_TRAIN, 1, &small.head), TF_OK);
    ck_assert_str_eq(small.head.path, set_path[1]);
    ck_assert_int_eq(small.head.format, (tf_data_format)0xabababab);
    ck_assert_int_eq(small.canary[0], 0xab);
    small.head.struct_size = sizeof(size_t);
    ck_assert_int_eq(tf_dataset_source(ds, TF_SPLIT_TRAIN, 1, &small.head), TF_ERR_ARGUMENT);
    tf_dataset_free(ds);

    /* tokens from memory: one source without a path */
    int32_t toks[50];
    for (int i = 0; i < 50; i++)
        toks[i] = i;
    ck_assert_int_eq(tf_dataset_from_tokens(toks, 50, 50, 0.2, &ds), TF_OK);
    ck_assert_int_eq(tf_dataset_num_sources(ds, TF_SPLIT_VAL), 1);
    ck_assert_int_eq(tf_dataset_source(ds, TF_SPLIT_VAL, 0, &src), TF_OK);
    ck_assert_ptr_null(src.path);
    ck_assert_int_eq(src.format, TF_DATA_AUTO);
    ck_assert_int_eq(src.num_tokens, 10);
    tf_dataset_free(ds);

    ck_assert_str_eq(tf_data_format_name(TF_DATA_AUTO), "auto");
    ck_assert_str_eq(tf_data_format_name(TF_DATA_BYTES), "bytes");
    ck_assert_str_eq(tf_data_format_name(TF_DATA_U16), "u16");
    ck_assert_str_eq(tf_data_format_name(TF_DATA_LLMC), "llmc");
    ck_assert_ptr_null(tf_data_format_name((tf_data_format)4));
}
END_TEST

/* The single-file call and a one-file set are the same dataset. */
START_TEST(test_shards_single_file_same)
{
    write_set();
    tf_dataset *a = open_ok(set_path[2], TF_DATA_AUTO, 100000, 0.1), *b = NULL;
    tf_dataset_params p = tf_dataset_default_params();
    p.vocab_size = 100000;
    p.val_fraction = 0.1;
    const char *one[1] = {set_path[2]};
    ck_assert_int_eq(tf_dataset_open_files(one, 1, NULL, 0, &p, &b), TF_OK);
    enum { B = 3, T = 40 };
    int32_t t1[B * T], g1[B * T], t2[B * T], g2[B * T];
    for (int sp = 0; sp < 2; sp++)
        for (int64_t i = 0; i < 30; i++) {
            ck_assert_int_eq(tf_dataset_sample(a, sp, 5, i, B, T, t1, g1), TF_OK);
            ck_assert_int_eq(tf_dataset_sample(b, sp, 5, i, B, T, t2, g2), TF_OK);
            ck_assert_mem_eq(t1, t2, sizeof t1);
            ck_assert_mem_eq(g1, g2, sizeof g1);
        }
    ck_assert_int_eq(tf_dataset_num_tokens(a, TF_SPLIT_VAL), 170);
    ck_assert_int_eq(tf_dataset_num_tokens(b, TF_SPLIT_VAL), 170);
    tf_dataset_free(a);
    tf_dataset_free(b);
}
END_TEST

Suite *dataset_suite(void)
{
    Suite *s = suite_create("dataset");

    TCase *files = tcase_create("files");
    tcase_add_unchecked_fixture(files, make_tmpdir, remove_tmpdir);
    tcase_set_timeout(files, 60);
    tcase_add_test(files, test_bytes_round_trip);
    tcase_add_test(files, test_u16_bin);
    tcase_add_test(files, test_llmc_v1);
    tcase_add_test(files, test_llmc_v7);
    tcase_add_test(files, test_large_file_chunks);
    tcase_add_test(files, test_auto_detection);
    tcase_add_test(files, test_odd_byte_count);
    tcase_add_test(files, test_llmc_bad_headers);
    tcase_add_test(files, test_empty_file);
    tcase_add_test(files, test_missing_file_and_directory);
    tcase_add_test(files, test_id_out_of_range);
    tcase_add_test(files, test_bytes_needs_vocab_256);
    tcase_add_test(files, test_split_sizes);
    tcase_add_test(files, test_fortunes_text);
    tcase_add_test(files, test_llmc_magic_pairs);
    tcase_add_test(files, test_shards_open_and_batches);
    tcase_add_test(files, test_shards_sample_pure);
    tcase_add_test(files, test_shards_streaming_errors);
    tcase_add_test(files, test_shards_ids_out_of_vocab);
    tcase_add_test(files, test_shards_glob_and_directory);
    tcase_add_test(files, test_shards_arguments);
    tcase_add_test(files, test_shards_single_file_same);
    suite_add_tcase(s, files);

    TCase *mem = tcase_create("streams");
    tcase_add_test(mem, test_from_tokens_validation);
    tcase_add_test(mem, test_sample_determinism);
    tcase_add_test(mem, test_sample_covers_range);
    tcase_add_test(mem, test_short_split_refused);
    tcase_add_test(mem, test_batches_cover_split);
    tcase_add_test(mem, test_null_and_arguments);
    suite_add_tcase(s, mem);
    return s;
}
