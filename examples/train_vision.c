/*
 * train_vision.c -- trains the TokenFormer image classifier
 * (tf_model_create_vision) on an IDX image dataset, Fashion-MNIST by
 * default, through the public API only.
 *
 *   train_vision [--config run.yml] [key=value ...] --out DIR [--resume]
 *
 * Keys (a flat YAML file, then key=value arguments, which win):
 *   train_images, train_labels, test_images, test_labels   IDX files (gzip
 *       or plain); default Debian's /usr/share/datasets/fashion-mnist
 *   patch_size 4, hidden_size 64, num_layers 4, num_attention_heads 4,
 *   qkv_slot_num 64, proj_slot_num 64, ffn_slot_num 256, patch_slot_num 64,
 *   head_slot_num 64, norm l2_norm_gelu             the model
 *   batch_size 128, epochs 17 (or train_iters: steps), lr 2e-3, min_lr 1e-5,
 *   warmup_steps 500, weight_decay 0.05, clip_grad 1.0, beta1 0.9,
 *   beta2 0.95                                    AdamW, cosine
 *   label_smoothing 0.1                           of the loss
 *   shift 0, hflip 1, mean 0.2860, std 0.3530     augmentation (seeded) and
 *                                                 normalisation
 *   seed 1 (init and data order), threads 0 (the library's default)
 *   log_interval 50, eval_interval 0 (steps; 0: every epoch),
 *   checkpoint_interval 500 (steps; and at the end and on Ctrl-C)
 *   grow_at 0 (step; 0: never), grow_qkv_slot_num, grow_proj_slot_num,
 *   grow_ffn_slot_num: grow the layers' sets there with the library's
 *   recipe (zero keys, pinned tau, tau ramp), optimizer state carried
 *   stop_at 0 (step; 0: never): stop there with a checkpoint, as Ctrl-C
 *
 * Writes in DIR: checkpoint.safetensors (model and optimizer, saved
 * atomically by tf_model_save) and log.csv (step, loss, lr, test_acc,
 * seconds).  --resume continues from DIR's checkpoint: the batch of step t
 * is a function of (seed, t) alone and the checkpoint holds the optimizer,
 * so a resumed run is bit-identical to an uninterrupted one.  Ctrl-C stops
 * after the current step with a checkpoint.
 */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "tokenformer.h"

#define PROG "train_vision"
#define FMNIST "/usr/share/datasets/fashion-mnist/"

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* The run's settings: every key, its value as text (defaults below). */
typedef struct key {
    const char *name, *value;
} key;

static key keys[] = {
    {"train_images", FMNIST "train-images-idx3-ubyte.gz"},
    {"train_labels", FMNIST "train-labels-idx1-ubyte.gz"},
    {"test_images", FMNIST "t10k-images-idx3-ubyte.gz"},
    {"test_labels", FMNIST "t10k-labels-idx1-ubyte.gz"},
    {"patch_size", "4"}, {"hidden_size", "64"}, {"num_layers", "4"},
    {"num_attention_heads", "4"}, {"qkv_slot_num", "64"}, {"proj_slot_num", "64"},
    {"ffn_slot_num", "256"}, {"patch_slot_num", "64"}, {"head_slot_num", "64"},
    {"norm", "l2_norm_gelu"},
    {"batch_size", "128"}, {"epochs", "17"}, {"train_iters", "0"}, {"lr", "2e-3"},
    {"min_lr", "1e-5"}, {"warmup_steps", "500"}, {"weight_decay", "0.05"},
    {"clip_grad", "1.0"}, {"beta1", "0.9"}, {"beta2", "0.95"}, {"shift", "0"},
    {"hflip", "1"}, {"mean", "0.2860"}, {"std", "0.3530"}, {"seed", "1"}, {"threads", "0"},
    {"log_interval", "50"},
    {"eval_interval", "0"}, {"checkpoint_interval", "500"}, {"grow_at", "0"},
    {"grow_qkv_slot_num", "0"}, {"grow_proj_slot_num", "0"}, {"grow_ffn_slot_num", "0"},
    {"stop_at", "0"}, {"label_smoothing", "0.1"},
};
#define NKEYS ((int)(sizeof keys / sizeof *keys))

static key *find_key(const char *name)
{
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static int64_t geti(const char *name, int64_t lo, int64_t hi, int *bad)
{
    int64_t v = 0;
    if (arg_int(PROG, name, find_key(name)->value, lo, hi, &v) != 0)
        *bad = 1;
    return v;
}

static double getd(const char *name, double lo, double hi, int *bad)
{
    double v = 0;
    if (arg_double(PROG, name, find_key(name)->value, lo, hi, &v) != 0)
        *bad = 1;
    return v;
}

/* Values from a flat YAML file: every scalar as its text.  The strings
 * stay valid while cfg lives. */
static int read_config(const char *path, tf_config **cfg)
{
    if (tf_config_load(path, cfg) != TF_OK) {
        fprintf(stderr, "%s: --config: %s\n", PROG, tf_last_error());
        return -1;
    }
    const char *names[NKEYS];
    for (int i = 0; i < NKEYS; i++)
        names[i] = keys[i].name;
    tf_config_use_keys(*cfg, names, NKEYS);
    if (tf_config_num_ignored(*cfg) > 0) {
        fprintf(stderr, "%s: %s: unknown key '%s'\n", PROG, path, tf_config_ignored_key(*cfg, 0));
        return -1;
    }
    for (int i = 0; i < NKEYS; i++) {
        const char *s;
        if (tf_config_has(*cfg, keys[i].name) &&
            tf_config_get_string(*cfg, keys[i].name, &s) == TF_OK)
            keys[i].value = s;
        else if (tf_config_has(*cfg, keys[i].name)) {
            fprintf(stderr, "%s: %s: %s\n", PROG, path, tf_config_errmsg(*cfg));
            return -1;
        }
    }
    return 0;
}

/* Share of the test set classified right. */
static double test_accuracy(tf_model *m, const tf_image_dataset *test,
                            const tf_image_aug_params *norm, int B, float *px, int32_t *lab,
                            int32_t *cls)
{
    const int64_t N = tf_image_dataset_size(test);
    int64_t right = 0;
    for (int64_t f = 0; f < N; f += B) {
        int n = N - f < B ? (int)(N - f) : B;
        if (tf_image_dataset_eval_batch(test, norm, f, n, px, lab) != TF_OK ||
            tf_model_predict(m, n, px, cls) != TF_OK)
            return -1.0;
        for (int i = 0; i < n; i++)
            right += cls[i] == lab[i];
    }
    return (double)right / (double)N;
}

static int save(tf_model *m, tf_optimizer *opt, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    if (tf_model_save(m, opt, path) != TF_OK) {
        fprintf(stderr, "%s: cannot save %s: %s\n", PROG, path, tf_model_errmsg(m));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *config = NULL;
    int resume = 0;
    tf_config *cfg = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strcmp(argv[i], "--resume") == 0)
            resume = 1;
        else if (strchr(argv[i], '=') && argv[i][0] != '-')
            continue; /* key=value, applied after the config file */
        else {
            fprintf(stderr, "usage: %s [--config run.yml] [key=value ...] --out DIR [--resume]\n"
                            "(the keys are listed at the top of examples/train_vision.c)\n",
                    PROG);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "%s: --out DIR is required\n", PROG);
        return 2;
    }
    if (config && read_config(config, &cfg) != 0)
        return 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 || strcmp(argv[i], "--config") == 0) {
            i++; /* a flag's value, even one with '=' in it */
            continue;
        }
        char *eq = strchr(argv[i], '=');
        if (!eq || argv[i][0] == '-')
            continue;
        *eq = '\0';
        key *k = find_key(argv[i]);
        if (!k) {
            fprintf(stderr, "%s: unknown key '%s'\n", PROG, argv[i]);
            return 2;
        }
        k->value = eq + 1;
    }
    int bad = 0;
    tf_vision_params vp = tf_vision_default_params();
    vp.patch_size = (int32_t)geti("patch_size", 1, 4096, &bad);
    vp.hidden_size = (int32_t)geti("hidden_size", 1, 65536, &bad);
    vp.num_layers = (int32_t)geti("num_layers", 1, 1024, &bad);
    vp.num_attention_heads = (int32_t)geti("num_attention_heads", 1, 4096, &bad);
    vp.qkv_slot_num = geti("qkv_slot_num", 1, 1 << 24, &bad);
    vp.proj_slot_num = geti("proj_slot_num", 1, 1 << 24, &bad);
    vp.ffn_slot_num = geti("ffn_slot_num", 1, 1 << 24, &bad);
    vp.patch_slot_num = geti("patch_slot_num", 1, 1 << 24, &bad);
    vp.head_slot_num = geti("head_slot_num", 1, 1 << 24, &bad);
    const char *norm = find_key("norm")->value;
    vp.norm = strcmp(norm, "softmax") == 0        ? TF_NORM_SOFTMAX
              : strcmp(norm, "gelu_l2_norm") == 0 ? TF_NORM_GELU_L2_NORM
                                                  : TF_NORM_L2_NORM_GELU;
    vp.seed = (uint64_t)geti("seed", 0, INT64_MAX, &bad);
    const int B = (int)geti("batch_size", 1, 1 << 20, &bad);
    const int64_t epochs = geti("epochs", 0, 1 << 20, &bad);
    int64_t steps = geti("train_iters", 0, INT64_MAX, &bad);
    tf_optimizer_params op = tf_optimizer_default_params();
    op.lr = getd("lr", 0, 10, &bad);
    op.min_lr = getd("min_lr", 0, 10, &bad);
    op.warmup_steps = geti("warmup_steps", 0, INT64_MAX, &bad);
    op.weight_decay = getd("weight_decay", 0, 10, &bad);
    op.clip_grad = getd("clip_grad", 0, 1e30, &bad);
    op.beta1 = getd("beta1", 0, 1, &bad);
    op.beta2 = getd("beta2", 0, 1, &bad);
    const double smoothing = getd("label_smoothing", 0, 1, &bad);
    tf_image_aug_params aug = tf_image_aug_default_params();
    aug.shift = (int32_t)geti("shift", 0, TF_IMAGE_MAX_SHIFT, &bad);
    aug.hflip = (int32_t)geti("hflip", 0, 1, &bad);
    aug.mean = getd("mean", -1e6, 1e6, &bad);
    aug.std = getd("std", 1e-9, 1e6, &bad);
    const int threads = (int)geti("threads", 0, 4096, &bad);
    const int64_t log_every = geti("log_interval", 1, INT64_MAX, &bad);
    int64_t eval_every = geti("eval_interval", 0, INT64_MAX, &bad);
    const int64_t ckpt_every = geti("checkpoint_interval", 1, INT64_MAX, &bad);
    const int64_t grow_at = geti("grow_at", 0, INT64_MAX, &bad);
    const int64_t stop_at = geti("stop_at", 0, INT64_MAX, &bad);
    const int64_t grow_n[3] = {geti("grow_qkv_slot_num", 0, 1 << 24, &bad),
                               geti("grow_proj_slot_num", 0, 1 << 24, &bad),
                               geti("grow_ffn_slot_num", 0, 1 << 24, &bad)};
    if (bad)
        return 2;
    if (threads > 0)
        tf_set_num_threads(threads);

    tf_image_dataset *train = NULL, *test = NULL;
    if (tf_image_dataset_open(find_key("train_images")->value, find_key("train_labels")->value,
                              &train) != TF_OK ||
        tf_image_dataset_open(find_key("test_images")->value, find_key("test_labels")->value,
                              &test) != TF_OK) {
        fprintf(stderr, "%s: %s\n", PROG, tf_last_error());
        return 1;
    }
    const int64_t per_epoch = tf_image_dataset_epoch_batches(train, B);
    if (per_epoch < 1 || tf_image_dataset_height(train) != tf_image_dataset_width(train)) {
        fprintf(stderr, "%s: batch_size %d needs square images and at most %lld of them\n", PROG,
                B, (long long)tf_image_dataset_size(train));
        return 2;
    }
    if (!steps)
        steps = epochs * per_epoch;
    if (!eval_every)
        eval_every = per_epoch;
    op.decay_steps = steps;
    vp.image_size = tf_image_dataset_height(train);
    vp.num_classes = tf_image_dataset_num_classes(train);
    if (vp.num_classes < tf_image_dataset_num_classes(test))
        vp.num_classes = tf_image_dataset_num_classes(test);

    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", out);
    tf_model *m = NULL;
    tf_optimizer *opt = NULL;
    if (resume) {
        if (tf_model_open(path, &m) != TF_OK || !tf_model_is_vision(m) ||
            tf_optimizer_create(m, &op, &opt) != TF_OK || tf_model_load(m, opt, path) != TF_OK) {
            fprintf(stderr, "%s: cannot resume from %s: %s\n", PROG, path, tf_last_error());
            return 1;
        }
        printf("resumed from %s at step %lld\n", path, (long long)tf_optimizer_step_count(opt));
    } else {
        if ((mkdir(out, 0777) != 0 && errno != EEXIST) || tf_model_create_vision(&vp, &m) != TF_OK ||
            tf_optimizer_create(m, &op, &opt) != TF_OK) {
            fprintf(stderr, "%s: %s\n", PROG, tf_last_error());
            return 1;
        }
    }
    if (tf_model_set_label_smoothing(m, smoothing) != TF_OK) {
        fprintf(stderr, "%s: %s\n", PROG, tf_last_error());
        return 2;
    }
    snprintf(path, sizeof path, "%s/log.csv", out);
    FILE *log = fopen(path, resume ? "a" : "w");
    if (!log) {
        fprintf(stderr, "%s: cannot write %s\n", PROG, path);
        return 1;
    }
    if (!resume)
        fprintf(log, "step,loss,lr,test_acc,seconds\n");
    printf("%s: %lld parameters, %lld steps of %d images (%lld per epoch)\n", PROG,
           (long long)tf_model_num_params(m), (long long)steps, B, (long long)per_epoch);

    const size_t S = (size_t)vp.image_size;
    float *px = malloc((size_t)B * S * S * sizeof(float));
    int32_t *lab = malloc((size_t)B * sizeof(int32_t)), *cls = malloc((size_t)B * sizeof(int32_t));
    if (!px || !lab || !cls)
        return 1;
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    const uint64_t data_seed = vp.seed;
    const double start = cli_now();
    double t0 = start, loss_sum = 0.0;
    int64_t loss_n = 0;
    int status = 0;
    for (int64_t t = tf_optimizer_step_count(opt); t < steps && !interrupted; t++) {
        if (stop_at && t >= stop_at)
            break; /* as Ctrl-C would: checkpoint, then --resume */
        tf_vision_params cur = tf_vision_default_params();
        tf_model_get_vision_params(m, &cur);
        /* grown once, at grow_at (a resumed run past it is grown already) */
        if (grow_at && t >= grow_at &&
            (grow_n[0] > cur.qkv_slot_num || grow_n[1] > cur.proj_slot_num ||
             grow_n[2] > cur.ffn_slot_num)) {
            tf_grow_params g = tf_grow_recipe_params();
            int64_t q = grow_n[0] ? grow_n[0] : cur.qkv_slot_num;
            int64_t p = grow_n[1] ? grow_n[1] : cur.proj_slot_num;
            int64_t f = grow_n[2] ? grow_n[2] : cur.ffn_slot_num;
            if (tf_model_grow(m, opt, q, p, f, &g) != TF_OK) {
                fprintf(stderr, "%s: growth at step %lld: %s\n", PROG, (long long)t,
                        tf_model_errmsg(m));
                status = 1;
                break;
            }
            printf("step %lld: grown to qkv %lld, proj %lld, ffn %lld: %lld parameters\n",
                   (long long)t, (long long)q, (long long)p, (long long)f,
                   (long long)tf_model_num_params(m));
        }
        float loss;
        if (tf_image_dataset_train_batch(train, &aug, data_seed, t, B, px, lab) != TF_OK ||
            tf_model_forward_images(m, B, px, lab, NULL, &loss) != TF_OK ||
            tf_model_backward(m) != TF_OK || tf_optimizer_step(opt, NULL) != TF_OK) {
            fprintf(stderr, "%s: step %lld: %s\n", PROG, (long long)t + 1, tf_last_error());
            status = 1;
            break;
        }
        const int64_t done = t + 1;
        loss_sum += loss;
        loss_n++;
        const double secs = cli_now() - t0; /* training only, not the evaluation */
        double acc = -1.0;
        if (done % eval_every == 0 || done == steps)
            acc = test_accuracy(m, test, &aug, B, px, lab, cls);
        if (done % log_every == 0 || acc >= 0 || done == steps) {
            printf("step %lld/%lld | epoch %.2f | loss %.4f | lr %.2e | %.0f img/s", (long long)done,
                   (long long)steps, (double)done / (double)per_epoch, loss_sum / (double)loss_n,
                   tf_optimizer_lr_at(opt, done), (double)loss_n * B / (secs > 0 ? secs : 1));
            if (acc >= 0)
                printf(" | test acc %.4f", acc);
            printf("\n");
            fflush(stdout);
            loss_sum = 0.0;
            loss_n = 0;
            t0 = cli_now();
        }
        fprintf(log, "%lld,%.6f,%.6e,", (long long)done, loss, tf_optimizer_lr_at(opt, done));
        if (acc >= 0)
            fprintf(log, "%.4f", acc);
        fprintf(log, ",%.3f\n", cli_now() - start);
        if (done % ckpt_every == 0 && done != steps && save(m, opt, out) != 0) {
            status = 1;
            break;
        }
    }
    if (fclose(log) != 0)
        status = 1;
    if (save(m, opt, out) != 0)
        status = 1;
    if (interrupted)
        printf("interrupted at step %lld: checkpoint saved, continue with --resume\n",
               (long long)tf_optimizer_step_count(opt));
    free(px);
    free(lab);
    free(cls);
    tf_optimizer_free(opt);
    tf_model_free(m);
    tf_image_dataset_free(train);
    tf_image_dataset_free(test);
    tf_config_free(cfg);
    return status ? status : interrupted ? 130 : 0;
}
