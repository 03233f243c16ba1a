/*
 * cli.h -- what the example programs generate and eval share besides
 * args.h's numbers: a clock, reading a whole stream, and opening a model
 * with an optional YAML configuration.  Public API only.
 */
#ifndef TF_EXAMPLES_CLI_H
#define TF_EXAMPLES_CLI_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tokenformer.h"

static inline double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* All of a stream in a NUL-terminated malloc'ed buffer (*len bytes before
 * the NUL), or NULL on a read error or out of memory. */
static inline char *cli_read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf);
                return NULL;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The model in path, through config (a YAML path, or NULL): needed for a
 * file with the official tensor names only, else checked against the
 * file; with bf16 its weights are narrowed to bfloat16 as they are read
 * (an inference model: tf_model_open_inference).  NULL after printing
 * "prog: ..." to stderr. */
static inline tf_model *cli_open_model(const char *prog, const char *path, const char *config,
                                       int bf16)
{
    tf_inference_params ip = tf_inference_default_params();
    ip.weights = bf16 ? TF_DTYPE_BF16 : TF_DTYPE_F32;
    tf_config *cfg = NULL;
    tf_model *model = NULL;
    if (config && tf_config_load(config, &cfg) != TF_OK) {
        fprintf(stderr, "%s: --config: %s\n", prog, tf_last_error());
        return NULL;
    }
    if (tf_model_open_inference(path, cfg, &ip, &model) != TF_OK)
        fprintf(stderr, "%s: cannot open the model: %s\n", prog, tf_last_error());
    tf_config_free(cfg);
    return model;
}

#endif /* TF_EXAMPLES_CLI_H */
