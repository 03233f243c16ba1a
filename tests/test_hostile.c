/*
 * test_hostile.c -- untrusted files and careless users: configs of many
 * keys, checkpoints whose metadata lies about sizes, gaps in a safetensors
 * data area, FIFOs where files should be, and what saving leaves on disk.
 * Every crafted file is made here, in the test's scratch directory.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "scratch.h"
#include "tokenformer.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* A small model saved at path. */
static void save_small(const char *path)
{
    tf_model_params p = tf_model_default_params();
    p.num_layers = 2;
    p.hidden_size = 16;
    p.num_attention_heads = 2;
    p.qkv_slot_num = 4;
    p.proj_slot_num = 4;
    p.ffn_slot_num = 8;
    p.vocab_size = 32;
    p.seq_length = 8;
    tf_model *m = NULL;
    ck_assert_int_eq(tf_model_create(&p, &m), TF_OK);
    ck_assert_msg(tf_model_save(m, NULL, path) == TF_OK, "%s", tf_last_error());
    tf_model_free(m);
}

/* Copies checkpoint src to dst with metadata key set to value (if key) and
 * tensor `tensor` (if not NULL) replaced by an F32 of the given shape (zero
 * data), through the library's own writer: a well-formed file that lies. */
static void rewrite(const char *src, const char *dst, const char *key, const char *value,
                    const char *tensor, int ndim, const int64_t *shape)
{
    tfi_st_file f;
    ck_assert_int_eq(tfi_st_open(src, &f, NULL), TF_OK);
    tfi_st_writer *w = tfi_st_writer_new();
    float *zeros = calloc(1 << 16, sizeof(float));
    for (int i = 0; i < f.nmeta; i++)
        ck_assert_int_eq(tfi_st_writer_meta(w, f.meta_keys[i], f.meta_values[i]), TF_OK);
    if (key)
        ck_assert_int_eq(tfi_st_writer_meta(w, key, value), TF_OK);
    for (int i = 0; i < f.ntensors; i++) {
        const tfi_st_tensor *t = &f.tensors[i];
        if (tensor && strcmp(t->name, tensor) == 0)
            ck_assert_int_eq(tfi_st_writer_add(w, t->name, TFI_ST_F32, ndim, shape, zeros),
                             TF_OK);
        else
            ck_assert_int_eq(tfi_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape,
                                               tfi_st_data(&f, t)), TF_OK);
    }
    ck_assert_msg(tfi_st_writer_write(w, dst, NULL) == TF_OK, "%s", tf_last_error());
    tfi_st_writer_free(w);
    free(zeros);
    tfi_st_close(&f);
}

/* tf_model_open refuses path with status, fast, naming the file and word. */
static void expect_open_refused(const char *path, tf_status status, const char *word)
{
    tf_model *m = (tf_model *)1;
    double t0 = now();
    tf_status st = tf_model_open(path, &m);
    double took = now() - t0;
    ck_assert_msg(st == status, "%s: %s (%s)", path, tf_status_name(st), tf_last_error());
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(tf_last_error(), path) != NULL, "does not name the file: %s",
                  tf_last_error());
    ck_assert_msg(strstr(tf_last_error(), word) != NULL, "'%s' not in: %s", word,
                  tf_last_error());
    ck_assert_msg(took < 5.0, "%s: refused only after %.1f s", path, took); /* generous */
}

/* ---- configs ------------------------------------------------------------- */

/* 80k keys (about 1.4 MB), flat and under one parent: duplicate detection
 * used to compare every key with every earlier one (133 s and 70 s). */
START_TEST(test_config_many_keys)
{
    for (int nested = 0; nested < 2; nested++) {
        char path[512];
        tt_tmp_path(path, sizeof path, nested ? "nested.yml" : "flat.yml");
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        if (nested)
            fprintf(f, "parent:\n");
        for (int i = 0; i < 80000; i++)
            fprintf(f, "%skey_%06d: %d\n", nested ? "  " : "", i, i);
        fclose(f);
        tf_config *cfg = NULL;
        double t0 = now();
        ck_assert_msg(tf_config_load(path, &cfg) == TF_OK, "%s", tf_last_error());
        double took = now() - t0;
        ck_assert_msg(took < 10.0, "80k keys took %.1f s", took); /* generous: ~0.15 s */
        ck_assert_int_eq(tf_config_num_ignored(cfg), nested ? 1 : 80000);
        int64_t v = 0;
        ck_assert_int_eq(tf_config_get_int(cfg, nested ? "parent.key_079999" : "key_079999", &v),
                         TF_OK);
        ck_assert_int_eq(v, 79999);
        tf_config_free(cfg);
    }
    /* a duplicate among them is still found, with both lines */
    static const char dup[] = "a: 1\nb-c: 2\nd: 3\nb_c: 4\n";
    tf_config *cfg = NULL;
    ck_assert_int_eq(tf_config_parse(dup, sizeof dup - 1, &cfg), TF_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "<string>:4: duplicate key 'b_c'"));
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "line 2"));
}
END_TEST

/* ---- FIFOs and other non-regular files ----------------------------------- */

START_TEST(test_fifo_refused)
{
    char fifo[512];
    tt_tmp_path(fifo, sizeof fifo, "pipe.safetensors");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    /* before, each of these blocked in open() until a writer came */
    tfi_st_file f;
    ck_assert_int_eq(tfi_st_open(fifo, &f, NULL), TF_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "FIFO"));
    tf_model *m = NULL;
    ck_assert_int_eq(tf_model_open(fifo, &m), TF_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), fifo));
    tf_config *cfg = NULL;
    ck_assert_int_eq(tf_config_load(fifo, &cfg), TF_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "FIFO"));
    tf_dataset *ds = NULL;
    ck_assert_int_eq(tf_dataset_open(fifo, TF_DATA_BYTES, 256, 0.0, &ds), TF_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "FIFO"));
    /* a directory is no file either */
    ck_assert_int_eq(tf_config_load(tt_tmpdir, &cfg), TF_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "directory"));
}
END_TEST

/* ---- checkpoints whose metadata lies -------------------------------------- */

START_TEST(test_checkpoint_hostile_sizes)
{
    char good[512], bad[512];
    tt_tmp_path(good, sizeof good, "good.safetensors");
    tt_tmp_path(bad, sizeof bad, "bad.safetensors");
    save_small(good);
    tf_model *m = NULL;
    ck_assert_int_eq(tf_model_open(good, &m), TF_OK);
    tf_model_free(m);

    /* seq_length 2^27: the rotary tables alone were 2 GB and 42 s */
    rewrite(good, bad, "seq_length", "134217728", NULL, 0, NULL);
    expect_open_refused(bad, TF_ERR_FORMAT, "seq_length");
    /* num_layers 1e5: every layer was allocated before the file was read */
    rewrite(good, bad, "num_layers", "100000", NULL, 0, NULL);
    expect_open_refused(bad, TF_ERR_FORMAT, "layers.2.attention.query.key_param_tokens");
    /* a set of [4000000, 0]: no data, but the set grew to 4M rows */
    const int64_t empty[2] = {4000000, 0};
    rewrite(good, bad, NULL, NULL, "layers.1.mlp.key_param_tokens", 2, empty);
    expect_open_refused(bad, TF_ERR_FORMAT, "[4000000, 0]");
    /* a vocabulary, a width and a set size larger than their tensors */
    rewrite(good, bad, "vocab_size", "1000000", NULL, 0, NULL);
    expect_open_refused(bad, TF_ERR_FORMAT, "embed.weight");
    rewrite(good, bad, "hidden_size", "4096", NULL, 0, NULL);
    expect_open_refused(bad, TF_ERR_FORMAT, "embed.weight");
    const int64_t keys_only[2] = {6, 16};
    rewrite(good, bad, NULL, NULL, "layers.0.attention.key.key_param_tokens", 2, keys_only);
    expect_open_refused(bad, TF_ERR_FORMAT, "layers.0.attention.key.value_param_tokens");
    /* a missing tensor, a bad dtype-free shape */
    const int64_t one_d[1] = {16};
    rewrite(good, bad, NULL, NULL, "embed.weight", 1, one_d);
    expect_open_refused(bad, TF_ERR_FORMAT, "embed.weight");
    /* loading grown reads through tf_model_open, and names the file too */
    tf_model_params p = tf_model_default_params();
    p.num_layers = 2;
    p.hidden_size = 16;
    p.num_attention_heads = 2;
    p.qkv_slot_num = p.proj_slot_num = 4;
    p.ffn_slot_num = 8;
    p.vocab_size = 32;
    p.seq_length = 8;
    ck_assert_int_eq(tf_model_create(&p, &m), TF_OK);
    rewrite(good, bad, "num_layers", "100000", NULL, 0, NULL);
    ck_assert_int_eq(tf_model_load_grown(m, bad, NULL), TF_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), bad));
    tf_model_free(m);
}
END_TEST

START_TEST(test_checkpoint_metadata_tags)
{
    char good[512], bad[512];
    tt_tmp_path(good, sizeof good, "good.safetensors");
    tt_tmp_path(bad, sizeof bad, "bad.safetensors");
    save_small(good);
    /* an unknown scale policy used to become follow_n */
    rewrite(good, bad, "scale_policy", "pinnned", NULL, 0, NULL);
    expect_open_refused(bad, TF_ERR_FORMAT, "pinnned");
    /* the format tag is checked: another tool's file is not ours */
    rewrite(good, bad, "format", "pt", NULL, 0, NULL);
    expect_open_refused(bad, TF_ERR_FORMAT, "format 'pt'");
    rewrite(good, bad, "format", "tokenformer-checkpoint-9", NULL, 0, NULL);
    expect_open_refused(bad, TF_ERR_FORMAT, "tokenformer-checkpoint-9");
    /* an invalid configuration names the file */
    rewrite(good, bad, "num_attention_heads", "3", NULL, 0, NULL);
    expect_open_refused(bad, TF_ERR_FORMAT, "divisible");
    rewrite(good, bad, "rotary_pct", "7", NULL, 0, NULL);
    expect_open_refused(bad, TF_ERR_FORMAT, "rotary_pct");
}
END_TEST

/* ---- gaps in the data area ------------------------------------------------- */

/* The header length lowered into the space padding made every tensor load
 * one byte shifted, with TF_OK. */
START_TEST(test_safetensors_gaps_refused)
{
    char good[512], bad[512];
    tt_tmp_path(good, sizeof good, "good.safetensors");
    tt_tmp_path(bad, sizeof bad, "bad.safetensors");
    save_small(good);
    FILE *f = fopen(good, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    unsigned char *orig = malloc((size_t)size);
    ck_assert_int_eq(fread(orig, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    /* the same file with 8 more bytes of space padding after the JSON */
    uint64_t n;
    memcpy(&n, orig, 8);
    unsigned char *buf = malloc((size_t)size + 16);
    memcpy(buf, orig, 8 + n);
    memset(buf + 8 + n, ' ', 8);
    memcpy(buf + 16 + n, orig + 8 + n, (size_t)size - 8 - n);
    n += 8;
    size += 8;
    memcpy(buf, &n, 8);
    free(orig);
    f = fopen(good, "wb");
    fwrite(buf, 1, (size_t)size, f);
    fclose(f);
    tf_model_params p = tf_model_default_params();
    tf_model *m = NULL;
    ck_assert_msg(tf_model_open(good, &m) == TF_OK, "%s", tf_last_error());
    for (uint64_t k = 1; k <= 5; k++) {
        ck_assert_int_eq(buf[8 + n - k], ' '); /* inside the padding */
        uint64_t lowered = n - k;
        memcpy(buf, &lowered, 8);
        f = fopen(bad, "wb");
        fwrite(buf, 1, (size_t)size, f);
        fclose(f);
        tf_model *o = NULL;
        ck_assert_int_eq(tf_model_open(bad, &o), TF_ERR_FORMAT);
        ck_assert_ptr_nonnull(strstr(tf_last_error(), "belong to no tensor"));
        ck_assert_int_eq(tf_model_load(m, NULL, bad), TF_ERR_FORMAT);
    }
    memcpy(buf, &n, 8);
    /* bytes after the last tensor */
    memcpy(buf + size, "garbage!", 8);
    f = fopen(bad, "wb");
    fwrite(buf, 1, (size_t)size + 8, f);
    fclose(f);
    ck_assert_int_eq(tf_model_load(m, NULL, bad), TF_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "belong to no tensor"));
    /* a header that is not UTF-8 (a name with a lone continuation byte) */
    char *at = NULL;
    for (uint64_t i = 8; i + 12 <= 8 + n && !at; i++)
        if (memcmp(buf + i, "embed.weight", 12) == 0)
            at = (char *)buf + i;
    ck_assert_ptr_nonnull(at);
    at[0] = (char)0x80;
    f = fopen(bad, "wb");
    fwrite(buf, 1, (size_t)size, f);
    fclose(f);
    ck_assert_int_eq(tf_model_load(m, NULL, bad), TF_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "UTF-8"));
    (void)p;
    tf_model_free(m);
    free(buf);
}
END_TEST

/* ---- saving: temporary files, non-regular targets, symlinks -------------- */

START_TEST(test_save_cleans_stale_temps)
{
    char path[512], stale1[600], stale2[600], held[600], other[600], near[600];
    tt_tmp_path(path, sizeof path, "ck.safetensors");
    snprintf(stale1, sizeof stale1, "%s.tmp.Ab12Cd", path);
    snprintf(stale2, sizeof stale2, "%s.tmp.zzzzzz", path);
    snprintf(held, sizeof held, "%s.tmp.HELD00", path);
    snprintf(near, sizeof near, "%s.tmp.toolong", path);
    tt_tmp_path(other, sizeof other, "other.safetensors.tmp.Ab12Cd");
    const char *all[] = {stale1, stale2, held, near, other};
    for (size_t i = 0; i < 5; i++) {
        FILE *f = fopen(all[i], "w");
        fputs("left by a killed save", f);
        fclose(f);
    }
    /* a save in progress in another process holds its temporary file */
    int fd = open(held, O_RDONLY);
    ck_assert_int_eq(flock(fd, LOCK_EX), 0);
    save_small(path);
    ck_assert(!exists(stale1) && !exists(stale2));
    ck_assert(exists(held));  /* live: not ours to remove */
    ck_assert(exists(near));  /* not a temp name of ours */
    ck_assert(exists(other)); /* another target's */
    close(fd);
    save_small(path);
    ck_assert(!exists(held));
    tf_model *m = NULL;
    ck_assert_int_eq(tf_model_open(path, &m), TF_OK);
    tf_model_free(m);
}
END_TEST

START_TEST(test_save_refuses_non_regular)
{
    char fifo[512], dir[512];
    tt_tmp_path(fifo, sizeof fifo, "pipe.safetensors");
    tt_tmp_path(dir, sizeof dir, "dir.safetensors");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    tf_model_params p = tf_model_default_params();
    p.num_layers = 1;
    tf_model *m = NULL;
    ck_assert_int_eq(tf_model_create(&p, &m), TF_OK);
    const char *targets[] = {fifo, dir};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(tf_model_save(m, NULL, targets[i]), TF_ERR_IO);
        ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "not a regular file"));
        struct stat sb;
        ck_assert_int_eq(lstat(targets[i], &sb), 0);
        ck_assert(i == 0 ? S_ISFIFO(sb.st_mode) : S_ISDIR(sb.st_mode));
    }
    tf_model_free(m);
}
END_TEST

/* A symlink is written through: the target is replaced, the link kept. */
START_TEST(test_save_through_symlink)
{
    char sub[512], target[600], link[512], chain[512];
    tt_tmp_path(sub, sizeof sub, "runs");
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    snprintf(target, sizeof target, "%s/real.safetensors", sub);
    tt_tmp_path(link, sizeof link, "latest.safetensors");
    tt_tmp_path(chain, sizeof chain, "chain.safetensors");
    ck_assert_int_eq(symlink("runs/real.safetensors", link), 0); /* relative, dangling */
    ck_assert_int_eq(symlink("latest.safetensors", chain), 0);
    for (int round = 0; round < 2; round++) {
        save_small(round ? chain : link);
        struct stat sb;
        ck_assert_int_eq(lstat(link, &sb), 0);
        ck_assert(S_ISLNK(sb.st_mode));
        ck_assert_int_eq(lstat(chain, &sb), 0);
        ck_assert(S_ISLNK(sb.st_mode));
        ck_assert_int_eq(lstat(target, &sb), 0);
        ck_assert(S_ISREG(sb.st_mode));
        tf_model *m = NULL;
        ck_assert_int_eq(tf_model_open(link, &m), TF_OK);
        tf_model_free(m);
    }
    /* a cycle is an error, not a hang */
    char a[512], b[512];
    tt_tmp_path(a, sizeof a, "a");
    tt_tmp_path(b, sizeof b, "b");
    ck_assert_int_eq(symlink("b", a), 0);
    ck_assert_int_eq(symlink("a", b), 0);
    tf_model_params p = tf_model_default_params();
    p.num_layers = 1;
    tf_model *m = NULL;
    ck_assert_int_eq(tf_model_create(&p, &m), TF_OK);
    ck_assert_int_eq(tf_model_save(m, NULL, a), TF_ERR_IO);
    tf_model_free(m);
}
END_TEST

Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("files");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, tt_make_basedir, tt_remove_basedir);
    tcase_add_checked_fixture(tc, tt_make_tmpdir, tt_remove_tmpdir);
    tcase_add_test(tc, test_config_many_keys);
    tcase_add_test(tc, test_fifo_refused);
    tcase_add_test(tc, test_checkpoint_hostile_sizes);
    tcase_add_test(tc, test_checkpoint_metadata_tags);
    tcase_add_test(tc, test_safetensors_gaps_refused);
    tcase_add_test(tc, test_save_cleans_stale_temps);
    tcase_add_test(tc, test_save_refuses_non_regular);
    tcase_add_test(tc, test_save_through_symlink);
    suite_add_tcase(s, tc);
    return s;
}
