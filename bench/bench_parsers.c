/*
 * bench_parsers.c -- how long the parsers take to accept or refuse hostile
 * input: a YAML config of 80k keys (flat, and under one parent), and a
 * small checkpoint whose metadata claims seq_length 2^27, num_layers 1e5,
 * or a set of shape [4000000, 0].  Each should take well under a second.
 *
 *   build/bench/bench_parsers
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "io/safetensors.h"
#include "tokenformer.h"

static char dir[64];

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void bench_config(const char *name, int nested)
{
    char path[256];
    path_in(path, sizeof path, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    if (nested)
        fprintf(f, "parent:\n");
    for (int i = 0; i < 80000; i++)
        fprintf(f, "%skey_%06d: %d\n", nested ? "  " : "", i, i);
    fclose(f);
    tf_config *cfg = NULL;
    double t0 = now();
    tf_status st = tf_config_load(path, &cfg);
    double took = now() - t0;
    printf("config  %-34s %7.2f MB  %-14s %8.3f s\n", nested ? "80k keys under one parent"
                                                             : "80k keys, flat",
           file_size(path) / 1e6, tf_status_name(st), took);
    tf_config_free(cfg);
    unlink(path);
}

/* Copies src with one metadata value or one tensor's shape replaced. */
static int rewrite(const char *src, const char *dst, const char *key, const char *value,
                   const char *tensor, const int64_t *shape)
{
    tfi_st_file f;
    if (tfi_st_open(src, &f, NULL) != TF_OK)
        return -1;
    tfi_st_writer *w = tfi_st_writer_new();
    int ok = w != NULL;
    for (int i = 0; ok && i < f.nmeta; i++)
        ok = tfi_st_writer_meta(w, f.meta_keys[i],
                                key && strcmp(f.meta_keys[i], key) == 0 ? value
                                                                        : f.meta_values[i]) == TF_OK;
    for (int i = 0; ok && i < f.ntensors; i++) {
        const tfi_st_tensor *t = &f.tensors[i];
        int mine = tensor && strcmp(t->name, tensor) == 0;
        ok = tfi_st_writer_add(w, t->name, t->dtype, mine ? 2 : t->ndim, mine ? shape : t->shape,
                               tfi_st_data(&f, t)) == TF_OK;
    }
    ok = ok && tfi_st_writer_write(w, dst, NULL) == TF_OK;
    tfi_st_writer_free(w);
    tfi_st_close(&f);
    return ok ? 0 : -1;
}

static void bench_open(const char *what, const char *path)
{
    tf_model *m = NULL;
    double t0 = now();
    tf_status st = tf_model_open(path, &m);
    double took = now() - t0;
    printf("open    %-34s %7.2f MB  %-14s %8.3f s\n", what, file_size(path) / 1e6,
           tf_status_name(st), took);
    tf_model_free(m);
}

int main(void)
{
    strcpy(dir, "/tmp/tf_bench_parsers_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    bench_config("flat.yml", 0);
    bench_config("nested.yml", 1);

    /* a checkpoint of about 256 KB */
    tf_model_params p = tf_model_default_params();
    p.num_layers = 1;
    p.ffn_slot_num = 160;
    tf_model *m = NULL;
    char good[256], bad[256];
    path_in(good, sizeof good, "good.safetensors");
    path_in(bad, sizeof bad, "bad.safetensors");
    if (tf_model_create(&p, &m) != TF_OK || tf_model_save(m, NULL, good) != TF_OK) {
        fprintf(stderr, "bench_parsers: %s\n", tf_last_error());
        return 1;
    }
    tf_model_free(m);
    bench_open("the checkpoint itself", good);
    const int64_t empty[2] = {4000000, 0};
    if (rewrite(good, bad, "seq_length", "134217728", NULL, NULL) == 0)
        bench_open("metadata seq_length 2^27", bad);
    if (rewrite(good, bad, "num_layers", "100000", NULL, NULL) == 0)
        bench_open("metadata num_layers 1e5", bad);
    if (rewrite(good, bad, NULL, NULL, "layers.0.mlp.key_param_tokens", empty) == 0)
        bench_open("a set of shape [4000000, 0]", bad);
    unlink(good);
    unlink(bad);
    rmdir(dir);
    return 0;
}
