/*
 * train -- trains a TokenFormer from a YAML config (public API only).
 *
 *   train CONFIG.yml [--resume] [--steps N] [--threads N] [--out DIR]
 *
 * The config is an official-style TokenFormer YAML (model keys, optimizer
 * block, train_iters, ...) plus the trainer's own keys:
 *   data_path         a token file, or a directory whose extension-less
 *                     regular files are concatenated in name order (bytes)
 *   data_format       auto | bytes | u16 | llmc          (default auto)
 *   val_fraction      held-out tail of the data          (default 0.05)
 *   train_micro_batch_size_per_gpu  B                     (default 8)
 *   gradient_accumulation_steps     micro-batches a step  (default 1)
 *   train_iters       steps                              (required)
 *   eval_interval     steps between validations          (default 100)
 *   eval_iters        validation batches                 (default 20)
 *   save              checkpoint directory               (default ./run)
 *   checkpoint_factor save every K steps                 (default 500)
 *   log_interval      log lines when stdout is no terminal (default 10)
 *   seed              data order and init                (default 1)
 *   grow_at_step      optional: grow the model at this step to
 *   grow_qkv_slot_num / grow_proj_slot_num / grow_ffn_slot_num
 *   grow_key_init     zero | random (default zero)
 *   grow_scale        pinned | follow_n (default pinned)
 *   grow_lr           optional new peak lr after growth; grow_warmup and
 *                     grow_decay_steps optional new schedule lengths
 * Writes SAVE/checkpoint.safetensors (atomically, with optimizer state) and
 * SAVE/log.csv (step, loss, lr, tokens/s, val loss, FLOPs).  --resume
 * continues from the checkpoint and reproduces the uninterrupted run
 * exactly: the batch of every step is a pure function of (seed, step).
 * Ctrl-C saves a checkpoint and exits; a non-finite loss stops without
 * overwriting the last good checkpoint.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tokenformer.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int die(const char *what, const char *msg)
{
    fprintf(stderr, "train: %s: %s\n", what, msg);
    return 1;
}

/* ---- config ----------------------------------------------------------- */

typedef struct trainer {
    const char *data_path, *data_format, *save;
    double val_fraction;
    int64_t B, accum, iters, eval_interval, eval_iters, ckpt_every, log_every, seed;
    int64_t grow_at, grow_qkv, grow_proj, grow_ffn, grow_warmup, grow_decay;
    double grow_lr;
    tf_key_init grow_keys;
    tf_scale_policy grow_scale;
} trainer;

static int get_int(const tf_config *c, const char *key, int64_t def, int64_t *out)
{
    *out = def;
    if (!tf_config_has(c, key))
        return 0;
    return tf_config_get_int(c, key, out) == TF_OK ? 0 : die("config", tf_last_error());
}

static int get_double(const tf_config *c, const char *key, double def, double *out)
{
    *out = def;
    if (!tf_config_has(c, key))
        return 0;
    return tf_config_get_double(c, key, out) == TF_OK ? 0 : die("config", tf_last_error());
}

static int get_string(const tf_config *c, const char *key, const char *def, const char **out)
{
    *out = def;
    if (!tf_config_has(c, key))
        return 0;
    return tf_config_get_string(c, key, out) == TF_OK ? 0 : die("config", tf_last_error());
}

static int read_trainer(const tf_config *c, trainer *t)
{
    const char *keys = "zero", *scale = "pinned";
    if (get_string(c, "data_path", NULL, &t->data_path) ||
        get_string(c, "data_format", "auto", &t->data_format) ||
        get_string(c, "save", "run", &t->save) ||
        get_double(c, "val_fraction", 0.05, &t->val_fraction) ||
        get_int(c, "train_micro_batch_size_per_gpu", 8, &t->B) ||
        get_int(c, "gradient_accumulation_steps", 1, &t->accum) ||
        get_int(c, "train_iters", 0, &t->iters) ||
        get_int(c, "eval_interval", 100, &t->eval_interval) ||
        get_int(c, "eval_iters", 20, &t->eval_iters) ||
        get_int(c, "checkpoint_factor", 500, &t->ckpt_every) ||
        get_int(c, "log_interval", 10, &t->log_every) || get_int(c, "seed", 1, &t->seed) ||
        get_int(c, "grow_at_step", 0, &t->grow_at) ||
        get_int(c, "grow_qkv_slot_num", 0, &t->grow_qkv) ||
        get_int(c, "grow_proj_slot_num", 0, &t->grow_proj) ||
        get_int(c, "grow_ffn_slot_num", 0, &t->grow_ffn) ||
        get_int(c, "grow_warmup", -1, &t->grow_warmup) ||
        get_int(c, "grow_decay_steps", -1, &t->grow_decay) ||
        get_double(c, "grow_lr", 0.0, &t->grow_lr) || get_string(c, "grow_key_init", "zero", &keys) ||
        get_string(c, "grow_scale", "pinned", &scale))
        return 1;
    if (!t->data_path)
        return die("config", "missing 'data_path' (a token file or a directory of text files)");
    if (t->iters < 1)
        return die("config", "'train_iters' must be given and >= 1");
    if (t->B < 1 || t->accum < 1 || t->eval_interval < 1 || t->eval_iters < 1 ||
        t->ckpt_every < 1 || t->log_every < 1)
        return die("config", "batch size, accumulation, intervals and eval_iters must be >= 1");
    if (strcmp(keys, "zero") && strcmp(keys, "random"))
        return die("config", "'grow_key_init' must be zero or random");
    if (strcmp(scale, "pinned") && strcmp(scale, "follow_n"))
        return die("config", "'grow_scale' must be pinned or follow_n");
    t->grow_keys = strcmp(keys, "random") == 0 ? TF_KEYS_RANDOM : TF_KEYS_ZERO;
    t->grow_scale = strcmp(scale, "follow_n") == 0 ? TF_SCALE_FOLLOW_N : TF_SCALE_PINNED;
    return 0;
}

/* ---- data ------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory: its extension-less regular files, in name order, as bytes. */
static int open_directory(const char *dir, int64_t vocab, double val, tf_dataset **out)
{
    DIR *d = opendir(dir);
    if (!d)
        return die(dir, strerror(errno));
    char **names = NULL;
    size_t count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (strchr(e->d_name, '.') || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        names = realloc(names, (count + 1) * sizeof *names);
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, by_name);
    int32_t *tokens = NULL;
    size_t ntok = 0, cap = 0;
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        free(names[i]);
        if (!f)
            continue;
        int ch;
        while ((ch = fgetc(f)) != EOF) {
            if (ntok == cap) {
                cap = cap ? 2 * cap : 1 << 20;
                tokens = realloc(tokens, cap * sizeof *tokens);
            }
            tokens[ntok++] = ch;
        }
        fclose(f);
    }
    free(names);
    if (ntok == 0) {
        free(tokens);
        return die(dir, "no extension-less regular files with data in this directory");
    }
    tf_status st = tf_dataset_from_tokens(tokens, (int64_t)ntok, vocab, val, out);
    free(tokens);
    return st == TF_OK ? 0 : die(dir, tf_last_error());
}

static int open_data(const trainer *t, int64_t vocab, tf_dataset **out)
{
    struct stat st;
    if (stat(t->data_path, &st) == 0 && S_ISDIR(st.st_mode))
        return open_directory(t->data_path, vocab, t->val_fraction, out);
    tf_data_format fmt = TF_DATA_AUTO;
    if (strcmp(t->data_format, "bytes") == 0)
        fmt = TF_DATA_BYTES;
    else if (strcmp(t->data_format, "u16") == 0)
        fmt = TF_DATA_U16;
    else if (strcmp(t->data_format, "llmc") == 0)
        fmt = TF_DATA_LLMC;
    else if (strcmp(t->data_format, "auto") != 0)
        return die("config", "'data_format' must be auto, bytes, u16 or llmc");
    if (tf_dataset_open(t->data_path, fmt, vocab, t->val_fraction, out) != TF_OK)
        return die("data", tf_last_error());
    return 0;
}

/* ---- training --------------------------------------------------------- */

/* FLOPs per token (PaLM convention): 6 N + 12 L T d, N = weights that enter
 * a matmul, the tied output head counted once. */
static double flops_per_token(const tf_model_params *p)
{
    double n = 2.0 * p->hidden_size *
                   (double)(3 * p->qkv_slot_num + p->proj_slot_num + p->ffn_slot_num) *
                   p->num_layers +
               (double)p->vocab_size * p->hidden_size;
    return 6.0 * n + 12.0 * p->num_layers * (double)p->seq_length * p->hidden_size;
}

static double validate(tf_model *m, const tf_dataset *ds, int B, int T, int64_t iters,
                       int32_t *tok, int32_t *tgt)
{
    int64_t nb = tf_dataset_num_batches(ds, TF_SPLIT_VAL, B, T);
    if (nb > iters)
        nb = iters;
    double sum = 0.0;
    for (int64_t i = 0; i < nb; i++) {
        float loss;
        if (tf_dataset_batch(ds, TF_SPLIT_VAL, i, B, T, tok, tgt) != TF_OK ||
            tf_model_forward(m, B, T, tok, tgt, NULL, &loss) != TF_OK)
            return NAN;
        sum += loss;
    }
    return nb ? sum / (double)nb : NAN;
}

static void fmt_eta(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e7)
        snprintf(buf, len, "--");
    else if (s >= 3600)
        snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static int grow_now(tf_model *m, tf_optimizer *opt, const trainer *t)
{
    tf_model_params p = tf_model_default_params();
    tf_model_get_params(m, &p);
    tf_grow_params g = tf_grow_default_params();
    g.key_init = t->grow_keys;
    g.scale_policy = t->grow_scale;
    g.seed = (uint64_t)t->seed + 7919;
    int64_t q = t->grow_qkv ? t->grow_qkv : p.qkv_slot_num;
    int64_t pr = t->grow_proj ? t->grow_proj : p.proj_slot_num;
    int64_t f = t->grow_ffn ? t->grow_ffn : p.ffn_slot_num;
    if (tf_model_grow(m, opt, q, pr, f, &g) != TF_OK)
        return die("grow", tf_model_errmsg(m));
    tf_optimizer_params op = tf_optimizer_default_params();
    tf_optimizer_get_params(opt, &op);
    if (t->grow_lr > 0) {
        op.min_lr = op.min_lr * t->grow_lr / op.lr;
        op.lr = t->grow_lr;
    }
    if (t->grow_warmup >= 0)
        op.warmup_steps = tf_optimizer_step_count(opt) + t->grow_warmup;
    if (t->grow_decay >= 0)
        op.decay_steps = t->grow_decay;
    if (tf_optimizer_set_params(opt, &op) != TF_OK)
        return die("grow", tf_optimizer_errmsg(opt));
    printf("grew the model to qkv %lld, proj %lld, ffn %lld slots: %lld parameters\n",
           (long long)q, (long long)pr, (long long)f, (long long)tf_model_num_params(m));
    return 0;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *out_dir = NULL;
    int resume = 0, threads = 0;
    int64_t steps_override = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--resume") == 0)
            resume = 1;
        else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
            steps_override = atoll(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out_dir = argv[++i];
        else if (argv[i][0] != '-' && !config_path)
            config_path = argv[i];
        else {
            fprintf(stderr, "usage: train CONFIG.yml [--resume] [--steps N] [--threads N] "
                            "[--out DIR]\n");
            return 2;
        }
    }
    if (!config_path) {
        fprintf(stderr, "usage: train CONFIG.yml [--resume] [--steps N] [--threads N] [--out DIR]\n");
        return 2;
    }
    if (threads > 0 && tf_set_num_threads(threads) != TF_OK)
        return die("threads", tf_last_error());

    tf_config *cfg = NULL;
    if (tf_config_load(config_path, &cfg) != TF_OK)
        return die("config", tf_last_error());
    trainer t;
    tf_model_params mp = tf_model_default_params();
    tf_optimizer_params op = tf_optimizer_default_params();
    if (read_trainer(cfg, &t))
        return 1;
    if (tf_config_model_params(cfg, &mp) != TF_OK || tf_config_optimizer_params(cfg, &op) != TF_OK)
        return die("config", tf_last_error());
    if (steps_override > 0)
        t.iters = steps_override;
    if (out_dir)
        t.save = out_dir;
    if (mkdir(t.save, 0755) != 0 && errno != EEXIST)
        return die(t.save, strerror(errno));
    char ckpt[4096], csv_path[4096];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", t.save);
    snprintf(csv_path, sizeof csv_path, "%s/log.csv", t.save);

    tf_dataset *ds = NULL;
    if (open_data(&t, mp.vocab_size, &ds))
        return 1;
    const int B = (int)t.B, T = (int)mp.seq_length;
    tf_model *m = NULL;
    tf_optimizer *opt = NULL;
    mp.seed = (uint64_t)t.seed;
    if (tf_model_create(&mp, &m) != TF_OK)
        return die("model", tf_last_error());
    op.grad_accum_steps = (int32_t)t.accum;
    if (tf_optimizer_create(m, &op, &opt) != TF_OK)
        return die("optimizer", tf_last_error());
    int64_t step = 0;
    if (resume) {
        if (access(ckpt, R_OK) != 0)
            return die("resume", "no checkpoint to resume from");
        /* a checkpoint from after a configured growth has the grown shape */
        tf_status st = tf_model_load(m, opt, ckpt);
        if (st == TF_ERR_SHAPE && t.grow_at > 0) {
            if (grow_now(m, opt, &t))
                return 1;
            st = tf_model_load(m, opt, ckpt);
        }
        if (st != TF_OK)
            return die("resume", tf_model_errmsg(m));
        step = tf_optimizer_step_count(opt);
        printf("resumed from %s at step %lld\n", ckpt, (long long)step);
    }
    FILE *csv = fopen(csv_path, resume ? "a" : "w");
    if (!csv)
        return die(csv_path, strerror(errno));
    if (!resume)
        fprintf(csv, "step,loss,lr,tokens_per_s,val_loss,flops\n");

    int32_t *tok = malloc((size_t)B * T * sizeof *tok), *tgt = malloc((size_t)B * T * sizeof *tgt);
    tf_info info = {.struct_size = sizeof info};
    tf_get_info(&info);
    tf_model_get_params(m, &mp);
    printf("model: L=%d d=%d heads=%d slots qkv=%lld proj=%lld ffn=%lld, %lld parameters\n",
           mp.num_layers, mp.hidden_size, mp.num_attention_heads, (long long)mp.qkv_slot_num,
           (long long)mp.proj_slot_num, (long long)mp.ffn_slot_num,
           (long long)tf_model_num_params(m));
    printf("data: %lld train / %lld validation tokens; B=%d T=%d x %lld micro-batches; "
           "BLIS '%s', %d threads\n",
           (long long)tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN),
           (long long)tf_dataset_num_tokens(ds, TF_SPLIT_VAL), B, T, (long long)t.accum,
           info.blis_arch, info.num_threads);
    signal(SIGINT, on_sigint);
    int tty = isatty(fileno(stdout));
    /* a resumed run counts the steps before it at the current size */
    double flops = flops_per_token(&mp) * (double)B * T * (double)t.accum * (double)step;
    double t_start = now(), loss_ema = NAN;
    int64_t first_step = step;
    int rc = 0;
    while (step < t.iters && !interrupted) {
        if (t.grow_at > 0 && step == t.grow_at) {
            if (grow_now(m, opt, &t)) {
                rc = 1;
                break;
            }
            tf_model_get_params(m, &mp);
        }
        double t0 = now(), loss_sum = 0.0;
        tf_status st = TF_OK;
        for (int64_t k = 0; k < t.accum && st == TF_OK; k++) {
            float loss;
            st = tf_dataset_sample(ds, TF_SPLIT_TRAIN, (uint64_t)t.seed, step * t.accum + k, B, T,
                                   tok, tgt);
            if (st == TF_OK)
                st = tf_model_forward(m, B, T, tok, tgt, NULL, &loss);
            if (st == TF_OK)
                st = tf_model_backward(m);
            loss_sum += loss;
        }
        float gnorm = 0.0f;
        if (st == TF_OK)
            st = tf_optimizer_step(opt, &gnorm);
        if (st != TF_OK) {
            fprintf(stderr, "\ntrain: step %lld: %s\n", (long long)step + 1, tf_last_error());
            if (st == TF_ERR_NONFINITE)
                fprintf(stderr, "train: stopped; the last good checkpoint is %s\n", ckpt);
            rc = 1;
            break;
        }
        step++;
        double dt = now() - t0, loss = loss_sum / (double)t.accum;
        double tps = (double)B * T * (double)t.accum / dt;
        flops += flops_per_token(&mp) * (double)B * T * (double)t.accum;
        loss_ema = isnan(loss_ema) ? loss : 0.9 * loss_ema + 0.1 * loss;
        double val = NAN;
        if (step % t.eval_interval == 0 || step == t.iters)
            val = validate(m, ds, B, T, t.eval_iters, tok, tgt);
        double lr = tf_optimizer_lr_at(opt, step);
        char val_field[32] = "";
        if (!isnan(val))
            snprintf(val_field, sizeof val_field, "%.6f", val);
        fprintf(csv, "%lld,%.6f,%.6g,%.1f,%s,%.6g\n", (long long)step, loss, lr, tps, val_field,
                flops);
        char eta[32];
        double elapsed = now() - t_start;
        fmt_eta(elapsed / (double)(step - first_step) * (double)(t.iters - step), eta, sizeof eta);
        if (tty)
            printf("\rstep %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s | ETA %s   ",
                   (long long)step, (long long)t.iters, loss_ema, lr, tps, eta);
        else if (step % t.log_every == 0 || step == t.iters)
            printf("step %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s | ETA %s\n", (long long)step,
                   (long long)t.iters, loss_ema, lr, tps, eta);
        if (!isnan(val))
            printf("%sstep %lld: validation loss %.4f (%.3f bits/token)\n", tty ? "\n" : "",
                   (long long)step, val, val / log(2.0));
        fflush(stdout);
        if (step % t.ckpt_every == 0 || step == t.iters || interrupted) {
            if (tf_model_save(m, opt, ckpt) != TF_OK) {
                fprintf(stderr, "train: saving %s: %s\n", ckpt, tf_model_errmsg(m));
                rc = 1;
                break;
            }
            fflush(csv);
        }
    }
    if (interrupted && rc == 0)
        printf("\ninterrupted at step %lld: checkpoint saved to %s\n", (long long)step, ckpt);
    else if (rc == 0)
        printf("%sdone: %lld steps, %.3g training FLOPs, checkpoint %s\n", tty ? "\n" : "",
               (long long)step, flops, ckpt);
    fclose(csv);
    free(tok);
    free(tgt);
    tf_optimizer_free(opt);
    tf_model_free(m);
    tf_dataset_free(ds);
    tf_config_free(cfg);
    return rc;
}
