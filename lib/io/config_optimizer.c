/*
 * config_optimizer.c -- the optimizer and schedule keys of the official
 * (GPT-NeoX) configs: tf_config_optimizer_params().
 *
 * Only the public look-ups (tf_config_get_*) and the line helpers of
 * io/config.h are used: the tree stays private to the config files.  GPT-NeoX
 * semantics:
 *   optimizer.type          "Adam" (its Adam is AdamW) or "AdamW"
 *   optimizer.params.lr, .betas [b1, b2], .eps
 *   weight_decay, gradient_clipping, min_lr, gradient_accumulation_steps
 *   lr_decay_style          "cosine" (default) or "constant"
 *   lr_decay_iters          length of the schedule; default train_iters
 *   warmup                  a fraction of the schedule length (GPT-NeoX:
 *                           warmup_iter = warmup * num_iters, where
 *                           num_iters = lr_decay_iters or else train_iters);
 *                           floored to whole steps
 *   warmup_steps            whole steps; wins over warmup (not official)
 * A null value means "the default", as in GPT-NeoX.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "io/config.h"

/* The top-level keys read here (config_keys.c: the library's used keys).
 * train_iters is the default schedule length (lr_decay_iters), so it is
 * the library's key too, although a trainer reads it as well. */
const char *const tfi_config_optimizer_keys[] = {
    "optimizer", "min_lr", "weight_decay", "gradient_clipping",
    "gradient_accumulation_steps", "train_iters", "lr_decay_iters", "lr_decay_style",
    "warmup", "warmup_steps", NULL,
};

/* "file:line: message" (or "file: message" when the key is absent). */
#define cfg_error(cfg, key, ...) \
    tfi_config_fail(cfg, TF_ERR_CONFIG, tfi_config_line(cfg, key), __VA_ARGS__)

static int present(const tf_config *cfg, const char *key)
{
    return tf_config_has(cfg, key) && !tfi_config_is_null(cfg, key);
}

/* An optional integer in [lo, hi]. */
static tf_status opt_int(const tf_config *cfg, const char *key, int64_t lo, int64_t hi,
                         int64_t *val, int *found)
{
    int64_t v = 0;
    tf_status st = tfi_config_opt_int(cfg, key, &v, found);
    if (st != TF_OK || !*found)
        return st;
    if (v < lo || v > hi)
        return cfg_error(cfg, key, "'%s' (%lld) must be in [%lld, %lld]", key, (long long)v,
                         (long long)lo, (long long)hi);
    *val = v;
    return TF_OK;
}

static tf_status opt_string(const tf_config *cfg, const char *key, const char **val)
{
    int found;
    return tfi_config_opt_string(cfg, key, val, &found);
}

TF_API tf_status tf_config_optimizer_params(const tf_config *cfg, tf_optimizer_params *out)
{
    if (!cfg || !out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_config_optimizer_params: %s is NULL",
                        !cfg ? "cfg" : "out");
    tf_optimizer_params p = tf_optimizer_default_params();
    tf_status st;
    int found;
    const char *s;

    /* The optimizer block. */
    if (present(cfg, "optimizer") && !tf_config_has(cfg, "optimizer.type") &&
        !tf_config_has(cfg, "optimizer.params") &&
        tf_config_get_string(cfg, "optimizer", &s) == TF_OK)
        return cfg_error(cfg, "optimizer",
                         "'optimizer' must be a mapping {\"type\": \"Adam\", \"params\": "
                         "{...}}, not a scalar");
    if ((st = opt_string(cfg, "optimizer.type", &s)) != TF_OK)
        return st;
    if (s && strcasecmp(s, "adam") != 0 && strcasecmp(s, "adamw") != 0)
        return cfg_error(cfg, "optimizer.type",
                         "'type' is '%.64s', but libtokenformer implements only AdamW "
                         "(\"Adam\" or \"AdamW\")", s);

    const char *lr_key = "optimizer.params.lr";
    if ((st = tfi_config_opt_double(cfg, lr_key, &p.lr, &found)) != TF_OK)
        return st;

    const char *betas = "optimizer.params.betas";
    if (present(cfg, betas)) {
        if (!tf_config_has(cfg, "optimizer.params.betas.0") ||
            !tf_config_has(cfg, "optimizer.params.betas.1") ||
            tf_config_has(cfg, "optimizer.params.betas.2"))
            return cfg_error(cfg, betas,
                             "'betas' must be a sequence of two numbers [beta1, beta2]");
        if ((st = tfi_config_opt_double(cfg, "optimizer.params.betas.0", &p.beta1, &found)) != TF_OK ||
            (st = tfi_config_opt_double(cfg, "optimizer.params.betas.1", &p.beta2, &found)) != TF_OK)
            return st;
    }

    const char *eps_key = "optimizer.params.eps";
    if ((st = tfi_config_opt_double(cfg, eps_key, &p.eps, &found)) != TF_OK)
        return st;

    /* Top-level optimizer keys. */
    if ((st = tfi_config_opt_double(cfg, "weight_decay", &p.weight_decay, &found)) != TF_OK)
        return st;
    if ((st = tfi_config_opt_double(cfg, "gradient_clipping", &p.clip_grad, &found)) != TF_OK)
        return st;
    int have_min_lr;
    if ((st = tfi_config_opt_double(cfg, "min_lr", &p.min_lr, &have_min_lr)) != TF_OK)
        return st;
    if (!have_min_lr && p.min_lr > p.lr)
        p.min_lr = p.lr; /* the default min_lr, below a small lr: no decay */
    int64_t accum = p.grad_accum_steps;
    if ((st = opt_int(cfg, "gradient_accumulation_steps", 1, INT32_MAX, &accum, &found)) != TF_OK)
        return st;
    p.grad_accum_steps = (int32_t)accum;

    /* The schedule. */
    int64_t train_iters = 0, decay_iters = 0;
    int have_train, have_decay;
    if ((st = opt_int(cfg, "train_iters", 0, INT64_MAX, &train_iters, &have_train)) != TF_OK ||
        (st = opt_int(cfg, "lr_decay_iters", 0, INT64_MAX, &decay_iters, &have_decay)) != TF_OK)
        return st;
    const int64_t num_iters = have_decay ? decay_iters : train_iters;
    const char *num_key = have_decay ? "lr_decay_iters" : "train_iters";
    const int have_num = have_decay || have_train;

    if ((st = opt_string(cfg, "lr_decay_style", &s)) != TF_OK)
        return st;
    int constant = 0;
    if (s) {
        if (strcmp(s, "constant") == 0)
            constant = 1;
        else if (strcmp(s, "linear") == 0 || strcmp(s, "exponential") == 0)
            return cfg_error(cfg, "lr_decay_style",
                             "'lr_decay_style' is '%.64s', which libtokenformer does not "
                             "support (only 'cosine' or 'constant')", s);
        else if (strcmp(s, "cosine") != 0)
            return cfg_error(cfg, "lr_decay_style",
                             "'lr_decay_style' has unknown value '%.64s' (expected 'cosine' "
                             "or 'constant')", s);
    }
    p.decay_steps = constant ? 0 : num_iters;

    int64_t warmup_steps = 0;
    int have_steps;
    if ((st = opt_int(cfg, "warmup_steps", 0, INT64_MAX, &warmup_steps, &have_steps)) != TF_OK)
        return st;
    if (have_steps) {
        p.warmup_steps = warmup_steps;
    } else {
        double warmup = 0;
        if ((st = tfi_config_opt_double(cfg, "warmup", &warmup, &found)) != TF_OK)
            return st;
        if (!(warmup >= 0 && warmup <= 1))
            return cfg_error(cfg, "warmup",
                             "'warmup' (%g) must be in [0, 1]: a fraction of %s", warmup,
                             have_num ? num_key : "train_iters");
        if (warmup > 0 && !have_num)
            return cfg_error(cfg, "warmup",
                             "'warmup' (%g) is a fraction of train_iters (or lr_decay_iters), "
                             "but neither is given", warmup);
        /* A tiny relative nudge keeps 0.01 * 143000 at 1430 despite the
         * binary representation of 0.01. */
        double w = floor(warmup * (double)num_iters * (1.0 + 1e-12));
        p.warmup_steps = w <= 0 ? 0 : w >= (double)num_iters ? num_iters : (int64_t)w;
    }

    /* The ranges themselves have one home, shared with tf_optimizer_create;
     * here the failing field is named by its key in the file. */
    char msg[TFI_ERRMSG_MAX / 2];
    const char *field = tfi_optimizer_params_invalid(&p, msg, sizeof msg);
    if (field) {
        const char *key = strcmp(field, "lr") == 0                 ? lr_key
                          : strncmp(field, "beta", 4) == 0         ? betas
                          : strcmp(field, "eps") == 0              ? eps_key
                          : strcmp(field, "weight_decay") == 0     ? "weight_decay"
                          : strcmp(field, "clip_grad") == 0        ? "gradient_clipping"
                          : strcmp(field, "min_lr") == 0           ? (have_min_lr ? "min_lr" : lr_key)
                          : strcmp(field, "warmup_steps") == 0     ? (have_steps ? "warmup_steps" : "warmup")
                          : strcmp(field, "decay_steps") == 0      ? num_key
                                                                   : "gradient_accumulation_steps";
        return cfg_error(cfg, key, "'%s': %s", key, msg);
    }
    return tfi_params_out(out, &p, sizeof p, TFI_PARAMS_MIN(tf_optimizer_params, lr),
                          "tf_config_optimizer_params", "tf_optimizer_params", tfi_config_eb(cfg));
}
