/*
 * grow -- grows a TokenFormer checkpoint offline (public API only).
 *
 *   grow IN.safetensors OUT.safetensors (--config NEW.yml | --qkv N --proj N --ffn N)
 *        [--key-init zero|random] [--scale pinned|follow_n] [--key-std S]
 *        [--value-std S] [--seed S] [--drop-optimizer]
 *
 * Appends parameter tokens to every Pattention set: query/key/value sets to
 * --qkv tokens, the output projections to --proj and the feed-forward sets
 * to --ffn (a kind left out keeps its size), or to the slot numbers of a new
 * config (whose other model keys must match the checkpoint's, or be ones a
 * checkpoint may change: seq_length, rotary base, ...).
 *
 * The defaults are the library's growth recipe (tf_grow_recipe_params, the
 * recipe of experiments/scaling) as far as it applies offline: zero keys and
 * pinned tau (the grown model computes exactly the function of before), new
 * values drawn at 1/20 of the init's std (2 / L / sqrt(d); --value-std 0
 * gives the init's own), and the checkpoint's AdamW state carried through
 * growth (the moments of the new rows start at zero, the step count is
 * kept), so that `train --resume` on the grown checkpoint continues the run
 * with the config's schedule.  The recipe's tau ramp and learning-rate
 * restart belong to a growth during training (the trainer's grow_* keys);
 * offline, --scale follow_n sets the new size's tau at once.
 * --drop-optimizer writes the parameters only (a fresh optimizer, as the
 * official recipe).
 *
 * OUT is written atomically (a temporary file, fsync, rename); IN == OUT is
 * allowed.  Exit status 0 on success, 1 on an error, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "tokenformer.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: grow IN.safetensors OUT.safetensors (--config NEW.yml | --qkv N --proj N "
            "--ffn N)\n"
            "            [--key-init zero|random] [--scale pinned|follow_n] [--key-std S]\n"
            "            [--value-std S] [--seed S] [--drop-optimizer]\n"
            "  Appends Pattention parameter tokens to a checkpoint.  Defaults: zero new keys,\n"
            "  pinned tau (the function is unchanged), new values N(0, init std / 20), the\n"
            "  optimizer state carried over.\n");
}

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "grow: %s: %s\n", what, msg);
    return 1;
}

static void print_sizes(const char *label, const tf_model *m)
{
    tf_model_params p = tf_model_default_params();
    tf_model_get_params(m, &p);
    printf("%-4s qkv %5lld  proj %5lld  ffn %5lld slots  %10lld parameters\n", label,
           (long long)p.qkv_slot_num, (long long)p.proj_slot_num, (long long)p.ffn_slot_num,
           (long long)tf_model_num_params(m));
}

/* Model keys a new config must share with the checkpoint. */
static int same_shape(const tf_model_params *a, const tf_model_params *b, const char *cfg)
{
    if (a->num_layers == b->num_layers && a->hidden_size == b->hidden_size &&
        a->num_attention_heads == b->num_attention_heads && a->vocab_size == b->vocab_size &&
        a->norm == b->norm)
        return 1;
    fprintf(stderr,
            "grow: %s has num_layers %d, hidden_size %d, num_attention_heads %d, vocab_size "
            "%lld, norm %s; the checkpoint %d, %d, %d, %lld, %s: only slot numbers can grow\n",
            cfg, b->num_layers, b->hidden_size, b->num_attention_heads, (long long)b->vocab_size,
            tf_norm_type_name(b->norm), a->num_layers, a->hidden_size, a->num_attention_heads,
            (long long)a->vocab_size, tf_norm_type_name(a->norm));
    return 0;
}

/* Whether the model keys that are neither shape nor slot numbers agree. */
static int same_rest(const tf_model_params *a, const tf_model_params *b)
{
    return a->seq_length == b->seq_length && a->rotary_pct == b->rotary_pct &&
           a->rotary_emb_base == b->rotary_emb_base &&
           a->layernorm_epsilon == b->layernorm_epsilon;
}

int main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *config = NULL;
    int64_t qkv = 0, proj = 0, ffn = 0;
    int drop_opt = 0;
    /* the recipe without what only training does */
    tf_grow_params g = tf_grow_recipe_params();
    g.tau_ramp_steps = 0;
    g.lr_schedule = TF_LR_KEEP;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--config") == 0 && has_val) {
            config = argv[++i];
        } else if ((strcmp(a, "--qkv") == 0 || strcmp(a, "--proj") == 0 ||
                    strcmp(a, "--ffn") == 0) && has_val) {
            int64_t v;
            if (arg_int("grow", a, argv[++i], 1, INT64_MAX, &v))
                return 2;
            *(a[2] == 'q' ? &qkv : a[2] == 'p' ? &proj : &ffn) = v;
        } else if (strcmp(a, "--key-init") == 0 && has_val) {
            const char *v = argv[++i];
            if (strcmp(v, "zero") && strcmp(v, "random")) {
                fprintf(stderr, "grow: --key-init must be zero or random, not '%s'\n", v);
                return 2;
            }
            g.key_init = strcmp(v, "random") == 0 ? TF_KEYS_RANDOM : TF_KEYS_ZERO;
        } else if (strcmp(a, "--scale") == 0 && has_val) {
            const char *v = argv[++i];
            if (strcmp(v, "pinned") && strcmp(v, "follow_n")) {
                fprintf(stderr, "grow: --scale must be pinned or follow_n, not '%s'\n", v);
                return 2;
            }
            g.scale_policy = strcmp(v, "follow_n") == 0 ? TF_SCALE_FOLLOW_N : TF_SCALE_PINNED;
        } else if (strcmp(a, "--key-std") == 0 && has_val) {
            if (arg_double("grow", a, argv[++i], 0.0, DBL_MAX, &g.key_std))
                return 2;
        } else if (strcmp(a, "--value-std") == 0 && has_val) {
            if (arg_double("grow", a, argv[++i], 0.0, DBL_MAX, &g.value_std))
                return 2;
            g.value_std_scale = 1.0; /* an explicit std; 0 asks for the init's own */
        } else if (strcmp(a, "--seed") == 0 && has_val) {
            if (arg_u64("grow", a, argv[++i], &g.seed))
                return 2;
        } else if (strcmp(a, "--drop-optimizer") == 0) {
            drop_opt = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "grow: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            fprintf(stderr, "grow: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!in || !out) {
        usage(stderr);
        return 2;
    }
    if (config && (qkv || proj || ffn)) {
        fprintf(stderr, "grow: give either --config or --qkv/--proj/--ffn, not both\n");
        return 2;
    }
    if (!config && !qkv && !proj && !ffn) {
        fprintf(stderr, "grow: nothing to grow: give --config NEW.yml or --qkv/--proj/--ffn\n");
        usage(stderr);
        return 2;
    }

    tf_model *m = NULL, *target = NULL;
    tf_optimizer *opt = NULL;
    tf_config *cfg = NULL;
    int rc = 1;
    if (tf_model_open(in, &m) != TF_OK) {
        fprintf(stderr, "grow: %s\n", tf_last_error());
        goto done;
    }
    tf_model_params old = tf_model_default_params(), want;
    tf_model_get_params(m, &old);
    want = old;
    if (config) {
        if (tf_config_load(config, &cfg) != TF_OK ||
            tf_config_model_params(cfg, &want) != TF_OK) {
            fail("config", tf_last_error());
            goto done;
        }
        if (!same_shape(&old, &want, config))
            goto done;
    } else {
        if (qkv)
            want.qkv_slot_num = qkv;
        if (proj)
            want.proj_slot_num = proj;
        if (ffn)
            want.ffn_slot_num = ffn;
    }
    const int64_t have[3] = {old.qkv_slot_num, old.proj_slot_num, old.ffn_slot_num};
    const int64_t to[3] = {want.qkv_slot_num, want.proj_slot_num, want.ffn_slot_num};
    static const char *const kinds[3] = {"qkv", "proj", "ffn"};
    int grows = 0;
    for (int k = 0; k < 3; k++) {
        if (to[k] < have[k]) {
            fprintf(stderr, "grow: %s slots %lld -> %lld: a model only grows\n", kinds[k],
                    (long long)have[k], (long long)to[k]);
            goto done;
        }
        grows |= to[k] > have[k];
    }
    if (!grows) {
        fprintf(stderr, "grow: %s already has qkv %lld, proj %lld, ffn %lld slots: nothing to "
                        "grow\n", in, (long long)have[0], (long long)have[1], (long long)have[2]);
        goto done;
    }

    int64_t step = -1;
    if (tf_checkpoint_info(in, NULL, &step) != TF_OK) {
        fprintf(stderr, "grow: %s\n", tf_last_error());
        goto done;
    }
    if (!drop_opt && step >= 0) {
        /* the optimizer's hyperparameters are not in the file (the trainer
         * sets them from its config); the moments and step count are */
        tf_optimizer_params op = tf_optimizer_default_params();
        if (tf_optimizer_create(m, &op, &opt) != TF_OK || tf_model_load(m, opt, in) != TF_OK) {
            fprintf(stderr, "grow: %s\n", tf_last_error());
            goto done;
        }
    }
    print_sizes("old", m);
    const char *how;
    if (config && !same_rest(&old, &want)) {
        /* the new config changes more than slot numbers: build its model
         * and load the checkpoint into it (growth-aware load); the
         * optimizer state cannot follow a change of the model's keys */
        tf_status st = tf_model_create(&want, &target);
        if (st == TF_OK)
            st = tf_model_load_grown(target, in, &g);
        if (st != TF_OK) {
            fail("grow", target ? tf_model_errmsg(target) : tf_last_error());
            goto done;
        }
        if (opt)
            printf("note: %s changes seq_length, rotary or layernorm keys too: the optimizer "
                   "state (step %lld) is not carried\n", config, (long long)step);
        tf_optimizer_free(opt);
        opt = NULL;
        tf_model_free(m);
        m = target;
        target = NULL;
        how = "loaded into the new config's model";
    } else {
        if (tf_model_grow(m, opt, to[0], to[1], to[2], &g) != TF_OK) {
            fail("grow", tf_model_errmsg(m));
            goto done;
        }
        how = "grown in place";
    }
    print_sizes("new", m);
    if (tf_model_save(m, opt, out) != TF_OK) {
        fail(out, tf_model_errmsg(m));
        goto done;
    }
    char values[64];
    if (g.value_std > 0)
        snprintf(values, sizeof values, "N(0, %.4g)", g.value_std);
    else
        snprintf(values, sizeof values, "N(0, %.4g x the init's std)", g.value_std_scale);
    printf("%s (%s keys, %s tau, new values %s, seed %llu); %s; wrote %s\n", how,
           g.key_init == TF_KEYS_RANDOM ? "random" : "zero",
           g.scale_policy == TF_SCALE_FOLLOW_N ? "follow_n" : "pinned", values,
           (unsigned long long)g.seed,
           opt ? "optimizer state carried (step kept, new rows zero)" : "no optimizer state",
           out);
    if (opt)
        printf("optimizer step %lld\n", (long long)step);
    rc = 0;
done:
    tf_optimizer_free(opt);
    tf_model_free(m);
    tf_model_free(target);
    tf_config_free(cfg);
    return rc;
}
