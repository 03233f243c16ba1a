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
 *   init_from         optional: a checkpoint whose parameters start the run
 *                     (a smaller one is grown into the config's model with
 *                     the grow_* init below); step 0, fresh optimizer
 *
 * Growth during training (incremental scaling).  Either one stage,
 *   grow_at_step      grow the model when this many steps are done, to
 *   grow_qkv_slot_num / grow_proj_slot_num / grow_ffn_slot_num
 * or several, as a sequence (slot numbers left out keep their value):
 *   grow_schedule: [ {step: 500, qkv: 64, proj: 64, ffn: 256},
 *                    {step: 1000, qkv: 128, proj: 128, ffn: 512} ]
 * and, for every stage, how: each key sets a field of the library's
 * tf_grow_params, starting from tf_grow_recipe_params(), the recipe that
 * experiments/scaling found best (tokenformer.h has the exact meaning of
 * every field).  The official TokenFormer recipe is grow_scale follow_n,
 * grow_key_init random or zero, grow_value_std 0, grow_reset_optimizer
 * true, grow_lr_schedule restart, grow_lr = lr, grow_min_lr = min_lr,
 * grow_warmup > 0.
 *   grow_key_init     zero | random new keys   (key_init; default zero)
 *   grow_key_std      std of random new keys   (key_std; default 0.02)
 *   grow_value_std    std of the new values; 0: the init's 2 / L / sqrt(d)
 *                     (value_std; default 1/20 of the init's:
 *                     value_std_scale 0.05)
 *   grow_scale        pinned: tau stays (with zero keys the function is
 *                     the same after growth); follow_n: tau = default(new
 *                     n) at once (the official code: outputs jump by
 *                     sqrt(n'/n)); ramp: pinned at growth, then moved
 *                     linearly to default(new n), a step of the way at
 *                     every optimizer step, over grow_tau_ramp steps
 *                     (scale_policy, tau_ramp_steps; default ramp)
 *   grow_tau_ramp     steps of the ramp        (default 300)
 *   grow_reset_optimizer  false: the AdamW moments carry through growth
 *                     (new rows start at zero); true: they restart from
 *                     zero as a fresh optimizer's (reset_optimizer;
 *                     default false).  The step count goes on either way.
 *   grow_lr_schedule  restart: after each growth a new cosine from grow_lr
 *                     (after grow_warmup steps of linear warmup from 0) to
 *                     grow_min_lr, ending grow_decay_steps after the growth;
 *                     continue: the config's schedule goes on over the
 *                     global step count, times grow_lr_factor (and ramped
 *                     up over grow_warmup steps)
 *                     (lr_schedule; default restart)
 *   grow_lr           restart: the peak   (lr; default: the config's lr)
 *   grow_min_lr       restart: the end    (min_lr; default min_lr / 10)
 *   grow_decay_steps  restart: the length (decay_steps; default: to
 *                     train_iters, which the trainer passes as end_step)
 *   grow_warmup       warmup steps after a growth (warmup_steps; default 0)
 *   grow_lr_factor    continue: lr scale after growth (lr_factor; default 1)
 *   grow_eval         validate right before and right after every growth,
 *                     printed and logged to SAVE/growth.csv (default true)
 * Writes SAVE/checkpoint.safetensors (atomically, with optimizer state and
 * the growth state: tau ramps, schedule restart) and SAVE/log.csv (step,
 * loss, lr, tokens/s, val loss, cumulative training FLOPs at the model's
 * size of each step; validation is not counted).
 * Validation is the mean loss over the first eval_iters whole batches of
 * the validation split, the same batches every time.  --resume
 * continues from the checkpoint and reproduces the uninterrupted run
 * exactly: the batch of every step is a pure function of (seed, step);
 * the checkpoint's slot numbers (tf_checkpoint_info) say which growth
 * stages it is past, and the model is built at that size.
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

#include "dist.h"
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

/* One growth stage: when `step` steps are done, grow to these slot numbers. */
typedef struct grow_stage {
    int64_t step, qkv, proj, ffn;
} grow_stage;

#define MAX_STAGES 32

typedef struct trainer {
    const char *data_path, *data_format, *save, *init_from;
    double val_fraction;
    int64_t B, accum, iters, eval_interval, eval_iters, ckpt_every, log_every, seed;
    int nstages;
    grow_stage stages[MAX_STAGES];
    tf_grow_params grow; /* how every stage grows */
    int grow_eval;
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

static int get_bool(const tf_config *c, const char *key, int def, int *out)
{
    *out = def;
    if (!tf_config_has(c, key))
        return 0;
    return tf_config_get_bool(c, key, out) == TF_OK ? 0 : die("config", tf_last_error());
}

/* A slot number of stage i: "grow_schedule.i.qkv_slot_num" or ".qkv". */
static int get_stage_slot(const tf_config *c, int i, const char *kind, int64_t prev, int64_t *out)
{
    char key[96];
    snprintf(key, sizeof key, "grow_schedule.%d.%s_slot_num", i, kind);
    if (!tf_config_has(c, key))
        snprintf(key, sizeof key, "grow_schedule.%d.%s", i, kind);
    return get_int(c, key, prev, out);
}

/* The growth stages: grow_schedule, or the single grow_at_step. */
static int read_stages(const tf_config *c, trainer *t)
{
    int64_t at, q, pr, f;
    if (get_int(c, "grow_at_step", 0, &at) || get_int(c, "grow_qkv_slot_num", 0, &q) ||
        get_int(c, "grow_proj_slot_num", 0, &pr) || get_int(c, "grow_ffn_slot_num", 0, &f))
        return 1;
    t->nstages = 0;
    if (tf_config_has(c, "grow_schedule")) {
        if (at > 0)
            return die("config", "give either 'grow_schedule' or 'grow_at_step', not both");
        if (!tf_config_has(c, "grow_schedule.0"))
            return die("config", "'grow_schedule' must be a non-empty sequence of "
                                 "{step, qkv, proj, ffn} mappings");
        for (int i = 0;; i++) {
            char key[64];
            snprintf(key, sizeof key, "grow_schedule.%d", i);
            if (!tf_config_has(c, key))
                break;
            if (i == MAX_STAGES)
                return die("config", "'grow_schedule' has too many stages");
            grow_stage *s = &t->stages[i], prev = i ? t->stages[i - 1] : (grow_stage){0, 0, 0, 0};
            snprintf(key, sizeof key, "grow_schedule.%d.step", i);
            if (!tf_config_has(c, key)) {
                fprintf(stderr, "train: config: stage %d of 'grow_schedule' has no 'step'\n", i);
                return 1;
            }
            if (get_int(c, key, 0, &s->step) || get_stage_slot(c, i, "qkv", prev.qkv, &s->qkv) ||
                get_stage_slot(c, i, "proj", prev.proj, &s->proj) ||
                get_stage_slot(c, i, "ffn", prev.ffn, &s->ffn))
                return 1;
            t->nstages = i + 1;
        }
    } else if (at > 0) {
        t->stages[0] = (grow_stage){at, q, pr, f};
        t->nstages = 1;
    } else if (q || pr || f) {
        return die("config", "grow_*_slot_num given without 'grow_at_step'");
    }
    return 0;
}

/* Checks the stages against the model's starting size; a 0 slot number
 * means "as before". */
static int check_stages(trainer *t, const tf_model_params *mp)
{
    int64_t q = mp->qkv_slot_num, pr = mp->proj_slot_num, f = mp->ffn_slot_num, last = 0;
    for (int i = 0; i < t->nstages; i++) {
        grow_stage *s = &t->stages[i];
        if (s->qkv == 0)
            s->qkv = q;
        if (s->proj == 0)
            s->proj = pr;
        if (s->ffn == 0)
            s->ffn = f;
        if (s->step <= last) {
            fprintf(stderr, "train: config: growth stage %d is at step %lld: stages must be at "
                            "steps >= 1, in increasing order\n", i, (long long)s->step);
            return 1;
        }
        if (s->qkv < q || s->proj < pr || s->ffn < f ||
            (s->qkv == q && s->proj == pr && s->ffn == f)) {
            fprintf(stderr, "train: config: growth stage %d (qkv %lld, proj %lld, ffn %lld) must "
                            "grow the model (qkv %lld, proj %lld, ffn %lld) and shrink nothing\n",
                    i, (long long)s->qkv, (long long)s->proj, (long long)s->ffn, (long long)q,
                    (long long)pr, (long long)f);
            return 1;
        }
        q = s->qkv, pr = s->proj, f = s->ffn, last = s->step;
    }
    return 0;
}

/* The grow_* keys, over the library's recipe. */
static int read_growth(const tf_config *c, tf_grow_params *g)
{
    *g = tf_grow_recipe_params();
    const char *keys = NULL, *scale = NULL, *sched = NULL;
    int64_t ramp = g->tau_ramp_steps;
    double value_std = -1.0;
    int reset = g->reset_optimizer;
    if (get_string(c, "grow_key_init", NULL, &keys) ||
        get_string(c, "grow_scale", NULL, &scale) ||
        get_string(c, "grow_lr_schedule", NULL, &sched) ||
        get_int(c, "grow_tau_ramp", ramp, &ramp) ||
        get_int(c, "grow_warmup", g->warmup_steps, &g->warmup_steps) ||
        get_int(c, "grow_decay_steps", g->decay_steps, &g->decay_steps) ||
        get_double(c, "grow_lr", g->lr, &g->lr) ||
        get_double(c, "grow_min_lr", g->min_lr, &g->min_lr) ||
        get_double(c, "grow_lr_factor", g->lr_factor, &g->lr_factor) ||
        get_double(c, "grow_key_std", g->key_std, &g->key_std) ||
        get_double(c, "grow_value_std", value_std, &value_std) ||
        get_bool(c, "grow_reset_optimizer", reset, &reset))
        return 1;
    if (keys && strcmp(keys, "zero") && strcmp(keys, "random"))
        return die("config", "'grow_key_init' must be zero or random");
    if (scale && strcmp(scale, "pinned") && strcmp(scale, "follow_n") && strcmp(scale, "ramp"))
        return die("config", "'grow_scale' must be pinned, follow_n or ramp");
    if (ramp < 1)
        return die("config", "'grow_tau_ramp' must be >= 1");
    if (sched && strcmp(sched, "continue") && strcmp(sched, "restart"))
        return die("config", "'grow_lr_schedule' must be continue or restart");
    if (g->warmup_steps < 0 || g->decay_steps < 0 || g->lr < 0 || !(g->lr_factor > 0) ||
        !(g->key_std >= 0) || !(value_std >= 0 || value_std == -1.0))
        return die("config", "grow_warmup, grow_decay_steps, grow_lr, grow_key_std and "
                             "grow_value_std must be >= 0, grow_lr_factor > 0");
    if (keys)
        g->key_init = strcmp(keys, "random") == 0 ? TF_KEYS_RANDOM : TF_KEYS_ZERO;
    if (scale) {
        g->scale_policy = strcmp(scale, "follow_n") == 0 ? TF_SCALE_FOLLOW_N : TF_SCALE_PINNED;
        g->tau_ramp_steps = strcmp(scale, "ramp") == 0 ? ramp : 0;
    } else if (g->tau_ramp_steps > 0) {
        g->tau_ramp_steps = ramp;
    }
    if (value_std >= 0) { /* an explicit std; 0 asks for the init's own */
        g->value_std = value_std;
        g->value_std_scale = 1.0;
    }
    if (sched)
        g->lr_schedule = strcmp(sched, "restart") == 0 ? TF_LR_RESTART : TF_LR_CONTINUE;
    g->reset_optimizer = reset;
    return 0;
}

static int read_trainer(const tf_config *c, trainer *t)
{
    if (get_string(c, "data_path", NULL, &t->data_path) ||
        get_string(c, "data_format", "auto", &t->data_format) ||
        get_string(c, "save", "run", &t->save) ||
        get_string(c, "init_from", NULL, &t->init_from) ||
        get_double(c, "val_fraction", 0.05, &t->val_fraction) ||
        get_int(c, "train_micro_batch_size_per_gpu", 8, &t->B) ||
        get_int(c, "gradient_accumulation_steps", 1, &t->accum) ||
        get_int(c, "train_iters", 0, &t->iters) ||
        get_int(c, "eval_interval", 100, &t->eval_interval) ||
        get_int(c, "eval_iters", 20, &t->eval_iters) ||
        get_int(c, "checkpoint_factor", 500, &t->ckpt_every) ||
        get_int(c, "log_interval", 10, &t->log_every) || get_int(c, "seed", 1, &t->seed) ||
        read_stages(c, t) || read_growth(c, &t->grow) ||
        get_bool(c, "grow_eval", 1, &t->grow_eval))
        return 1;
    if (!t->data_path)
        return die("config", "missing 'data_path' (a token file or a directory of text files)");
    if (t->iters < 1)
        return die("config", "'train_iters' must be given and >= 1");
    if (t->B < 1 || t->accum < 1 || t->eval_interval < 1 || t->eval_iters < 1 ||
        t->ckpt_every < 1 || t->log_every < 1)
        return die("config", "batch size, accumulation, intervals and eval_iters must be >= 1");
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

/* The mean loss of the first `iters` validation batches; with several
 * ranks, each computes every R-th batch and the sums are added. */
static double validate(dist *dd, tf_model *m, const tf_dataset *ds, int B, int T,
                       int64_t iters, int32_t *tok, int32_t *tgt)
{
    int64_t nb = tf_dataset_num_batches(ds, TF_SPLIT_VAL, B, T);
    if (nb > iters)
        nb = iters;
    double sum[2] = {0.0, 0.0}; /* loss, failures */
    for (int64_t i = dist_rank(dd); i < nb; i += dist_size(dd)) {
        float loss;
        if (tf_dataset_batch(ds, TF_SPLIT_VAL, i, B, T, tok, tgt) != TF_OK ||
            tf_model_forward(m, B, T, tok, tgt, NULL, &loss) != TF_OK)
            sum[1] += 1;
        else
            sum[0] += loss;
    }
    dist_sum(dd, sum, 2);
    return nb && sum[1] == 0 ? sum[0] / (double)nb : NAN;
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

/* On resume: keeps the header and the complete rows of a log whose step
 * (first field) is at most max_step, dropping what a crash or an interrupt
 * left after the checkpoint (a resumed run writes those steps again).  The
 * file is replaced atomically. */
static int trim_log(const char *path, int64_t max_step)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? 0 : die(path, strerror(errno));
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *o = fopen(tmp, "wb");
    if (!o) {
        fclose(f);
        return die(tmp, strerror(errno));
    }
    char line[1024];
    int first = 1, ok = 1;
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n')
            break; /* a torn last line */
        char *end;
        long long step = strtoll(line, &end, 10);
        if (first || (end != line && *end == ',' && step <= max_step))
            ok &= fputs(line, o) >= 0;
        first = 0;
    }
    fclose(f);
    if (fclose(o) != 0 || !ok || rename(tmp, path) != 0) {
        remove(tmp);
        return die(path, "cannot rewrite the log");
    }
    return 0;
}

/* ---- growth stages -------------------------------------------------------- */

/* The model's configuration after the first k growth stages. */
static tf_model_params stage_params(const trainer *t, const tf_model_params *base, int k)
{
    tf_model_params p = *base;
    if (k > 0) {
        p.qkv_slot_num = t->stages[k - 1].qkv;
        p.proj_slot_num = t->stages[k - 1].proj;
        p.ffn_slot_num = t->stages[k - 1].ffn;
    }
    return p;
}

/* The number of growth stages after which the model has the slot numbers
 * of p, or -1 if no stage gives them. */
static int stage_of_size(const trainer *t, const tf_model_params *base, const tf_model_params *p)
{
    for (int k = 0; k <= t->nstages; k++) {
        tf_model_params s = stage_params(t, base, k);
        if (s.qkv_slot_num == p->qkv_slot_num && s.proj_slot_num == p->proj_slot_num &&
            s.ffn_slot_num == p->ffn_slot_num)
            return k;
    }
    return -1;
}

/* Training FLOPs of the first `steps` steps, each at the size it ran at. */
static double flops_until(const trainer *t, const tf_model_params *base, int64_t steps,
                          double tokens_per_step)
{
    double f = 0.0;
    int64_t from = 0;
    for (int k = 0; k <= t->nstages && from < steps; k++) {
        int64_t to = k < t->nstages && t->stages[k].step < steps ? t->stages[k].step : steps;
        tf_model_params p = stage_params(t, base, k);
        f += flops_per_token(&p) * tokens_per_step * (double)(to - from);
        from = to;
    }
    return f;
}

/* The seed of the new tokens of growth stage k (init_from grows with stage
 * 0's). */
static uint64_t stage_seed(const trainer *t, int k)
{
    return (uint64_t)t->seed + 7919u * (uint64_t)(k + 1);
}

/* Grows the model, and the optimizer with it, to stage k by the recipe. */
static int grow_to_stage(tf_model *m, tf_optimizer *opt, const trainer *t, int k)
{
    const grow_stage *s = &t->stages[k];
    tf_grow_params g = t->grow;
    g.seed = stage_seed(t, k);
    if (tf_model_grow(m, opt, s->qkv, s->proj, s->ffn, &g) != TF_OK)
        return die("grow", tf_model_errmsg(m));
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
    /* dist: one process per rank under mpirun (dist.h) */
    dist *dd = dist_init(&argc, &argv);
    if (!dd)
        return 1;

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
    if (check_stages(&t, &mp) || dist_configure(dd, cfg) || dist_plan(dd, t.B, t.accum))
        return 1;
    /* a restarted cosine ends where the run's schedule ends; --steps stops
     * early without changing either */
    t.grow.end_step = t.iters;
    if (steps_override > 0)
        t.iters = steps_override;
    if (out_dir)
        t.save = out_dir;
    if (mkdir(t.save, 0755) != 0 && errno != EEXIST)
        return die(t.save, strerror(errno));
    char ckpt[4096], csv_path[4096], grow_path[4096];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", t.save);
    snprintf(csv_path, sizeof csv_path, "%s/log.csv", t.save);
    snprintf(grow_path, sizeof grow_path, "%s/growth.csv", t.save);

    tf_dataset *ds = NULL;
    if (open_data(&t, mp.vocab_size, &ds))
        return 1;
    const int B = (int)t.B, T = (int)mp.seq_length;
    tf_model *m = NULL;
    tf_optimizer *opt = NULL;
    mp.seed = (uint64_t)t.seed;
    const tf_model_params mp0 = mp; /* the size before any growth */
    int64_t step = 0;
    int applied = 0; /* growth stages applied to the model */
    if (resume) {
        /* the checkpoint's slot numbers say which stages it is past */
        tf_model_params have = tf_model_default_params();
        int64_t opt_step = -1;
        if (access(ckpt, R_OK) != 0)
            return die("resume", "no checkpoint to resume from");
        if (tf_checkpoint_info(ckpt, &have, &opt_step) != TF_OK)
            return die("resume", tf_last_error());
        applied = stage_of_size(&t, &mp0, &have);
        if (applied < 0) {
            fprintf(stderr, "train: resume: %s has qkv %lld, proj %lld, ffn %lld slots: neither "
                            "the config's model nor one of its growth stages\n", ckpt,
                    (long long)have.qkv_slot_num, (long long)have.proj_slot_num,
                    (long long)have.ffn_slot_num);
            return 1;
        }
        step = opt_step > 0 ? opt_step : 0;
        if ((applied > 0 && step < t.stages[applied - 1].step) ||
            (applied < t.nstages && step > t.stages[applied].step)) {
            fprintf(stderr, "train: resume: %s is at step %lld with the size of growth stage "
                            "%d, which the config's grow schedule does not give that step\n",
                    ckpt, (long long)step, applied);
            return 1;
        }
        mp = stage_params(&t, &mp0, applied);
    }
    if (tf_model_create(&mp, &m) != TF_OK)
        return die("model", tf_last_error());
    op.grad_accum_steps = (int32_t)dist_total_pieces(dd); /* all ranks' pieces */
    if (tf_optimizer_create(m, &op, &opt) != TF_OK)
        return die("optimizer", tf_last_error());
    if (resume) {
        if (tf_model_load(m, opt, ckpt) != TF_OK)
            return die("resume", tf_model_errmsg(m));
        /* rows a crash left after the checkpoint are written again; a
         * growth at the checkpoint's step happens again */
        if (dist_rank(dd) == 0 && (trim_log(csv_path, step) || trim_log(grow_path, step - 1)))
            return 1;
        printf("resumed from %s at step %lld\n", ckpt, (long long)step);
    } else if (t.init_from) {
        tf_grow_params g = t.grow;
        g.seed = stage_seed(&t, 0);
        if (tf_model_load_grown(m, t.init_from, &g) != TF_OK)
            return die("init_from", tf_model_errmsg(m));
        printf("initialised from %s\n", t.init_from);
    }
    dist_check_same(dd, m, opt, step, 1);
    if (dist_rank(dd) != 0) /* rank 0 writes the logs */
        snprintf(csv_path, sizeof csv_path, "/dev/null"), snprintf(grow_path, sizeof grow_path,
                                                                   "/dev/null");
    FILE *csv = fopen(csv_path, resume ? "a" : "w");
    if (!csv)
        return die(csv_path, strerror(errno));
    if (!resume)
        fprintf(csv, "step,loss,lr,tokens_per_s,val_loss,flops\n");
    FILE *gcsv = NULL;
    if (t.nstages > 0) {
        if (!(gcsv = fopen(grow_path, resume ? "a" : "w")))
            return die(grow_path, strerror(errno));
        if (ftell(gcsv) == 0)
            fprintf(gcsv, "step,flops,params_before,params_after,qkv_slot_num,proj_slot_num,"
                          "ffn_slot_num,val_before,val_after\n");
    }

    int32_t *tok = malloc((size_t)B * T * sizeof *tok), *tgt = malloc((size_t)B * T * sizeof *tgt);
    if (!tok || !tgt)
        return die("train", "out of memory");
    tf_info info = {.struct_size = sizeof info};
    tf_get_info(&info);
    tf_model_get_params(m, &mp);
    printf("model: L=%d d=%d heads=%d slots qkv=%lld proj=%lld ffn=%lld, %lld parameters\n",
           mp.num_layers, mp.hidden_size, mp.num_attention_heads, (long long)mp.qkv_slot_num,
           (long long)mp.proj_slot_num, (long long)mp.ffn_slot_num,
           (long long)tf_model_num_params(m));
    const tf_grow_params *g = &t.grow;
    for (int k = 0; k < t.nstages; k++)
        printf("growth %d: at step %lld to qkv=%lld proj=%lld ffn=%lld (%s keys, %s tau, %s "
               "optimizer, %s lr)\n",
               k + 1, (long long)t.stages[k].step, (long long)t.stages[k].qkv,
               (long long)t.stages[k].proj, (long long)t.stages[k].ffn,
               g->key_init == TF_KEYS_RANDOM ? "random" : "zero",
               g->tau_ramp_steps > 0                   ? "ramped"
               : g->scale_policy == TF_SCALE_FOLLOW_N ? "follow_n"
                                                       : "pinned",
               g->reset_optimizer ? "fresh" : "carried",
               g->lr_schedule == TF_LR_RESTART ? "restarted" : "continued");
    printf("data: %lld train / %lld validation tokens; B=%d T=%d x %lld micro-batches; "
           "BLIS '%s', %d threads\n",
           (long long)tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN),
           (long long)tf_dataset_num_tokens(ds, TF_SPLIT_VAL), B, T, (long long)t.accum,
           info.blis_arch, info.num_threads);
    /* dist: under mpirun, Ctrl-C reaches every rank as SIGTERM (after
     * odls_base_sigkill_timeout seconds, SIGKILL after twice that), and
     * mpirun forwards SIGUSR1 to every rank at once */
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    signal(SIGUSR1, on_sigint);
    int tty = isatty(fileno(stdout));
    const double tokens_per_step = (double)B * T * (double)t.accum;
    double flops = flops_until(&t, &mp0, step, tokens_per_step);
    double t_start = now(), loss_ema = NAN, last_val = NAN, step_seconds = 0.0;
    int64_t first_step = step, last_val_step = -1;
    int rc = 0;
    int stop = 0; /* interrupted on some rank, as the step's sums tell every rank */
    while (step < t.iters && !stop) {
        while (applied < t.nstages && t.stages[applied].step == step) {
            double before = NAN, after = NAN;
            if (t.grow_eval)
                before = last_val_step == step ? last_val
                                               : validate(dd, m, ds, B, T, t.eval_iters, tok, tgt);
            int64_t n_before = tf_model_num_params(m);
            if (grow_to_stage(m, opt, &t, applied)) {
                if (dist_size(dd) > 1)
                    dist_abort(dd, "stopping the job: the growth failed");
                rc = 1;
                break;
            }
            applied++;
            tf_model_get_params(m, &mp);
            if (t.grow_eval)
                after = validate(dd, m, ds, B, T, t.eval_iters, tok, tgt);
            printf("%sstep %lld: grew to qkv %lld, proj %lld, ffn %lld slots: %lld -> %lld "
                   "parameters",
                   tty ? "\n" : "", (long long)step, (long long)mp.qkv_slot_num,
                   (long long)mp.proj_slot_num, (long long)mp.ffn_slot_num, (long long)n_before,
                   (long long)tf_model_num_params(m));
            if (t.grow_eval)
                printf("; validation loss %.4f -> %.4f", before, after);
            printf("\n");
            fprintf(gcsv, "%lld,%.6g,%lld,%lld,%lld,%lld,%lld,%.6f,%.6f\n", (long long)step, flops,
                    (long long)n_before, (long long)tf_model_num_params(m),
                    (long long)mp.qkv_slot_num, (long long)mp.proj_slot_num,
                    (long long)mp.ffn_slot_num, before, after);
            fflush(gcsv);
        }
        if (rc)
            break;
        double t0 = now(), loss_sum = 0.0;
        tf_status st = TF_OK;
        /* dist: this rank's pieces of the step's micro-batches */
        for (int j = 0; j < dist_num_pieces(dd) && st == TF_OK; j++) {
            const dist_piece pc = dist_piece_at(dd, j);
            float loss;
            st = tf_dataset_sample(ds, TF_SPLIT_TRAIN, (uint64_t)t.seed,
                                   step * t.accum + pc.micro, B, T, tok, tgt);
            if (st == TF_OK)
                st = tf_model_forward(m, pc.rows, T, tok + (size_t)pc.row * T,
                                      tgt + (size_t)pc.row * T, NULL, &loss);
            if (st == TF_OK && j == dist_num_pieces(dd) - 1)
                dist_overlap_arm(dd, m);
            if (st == TF_OK)
                st = tf_model_backward(m);
            loss_sum += loss;
        }
        if (st != TF_OK && dist_size(dd) > 1) /* the other ranks wait for its sums */
            dist_abort(dd, "step %lld: %s", (long long)step + 1, tf_last_error());
        /* dist: the gradients summed over the ranks; the loss and the
         * interruption too, so that every rank stops at the same step */
        dist_reduce_grads(dd, m);
        double sums[2] = {loss_sum, interrupted ? 1.0 : 0.0};
        dist_sum(dd, sums, 2);
        loss_sum = sums[0];
        stop = sums[1] > 0;
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
        double dt = now() - t0, loss = loss_sum / (double)dist_total_pieces(dd);
        step_seconds += dt;
        double tps = tokens_per_step / dt;
        flops = flops_until(&t, &mp0, step, tokens_per_step);
        loss_ema = isnan(loss_ema) ? loss : 0.9 * loss_ema + 0.1 * loss;
        double val = NAN;
        if (step % t.eval_interval == 0 || step == t.iters) {
            val = validate(dd, m, ds, B, T, t.eval_iters, tok, tgt);
            last_val = val;
            last_val_step = step;
        }
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
        const int save = step % t.ckpt_every == 0 || step == t.iters || stop;
        dist_check_same(dd, m, opt, step, save); /* rank 0 saves for all */
        if (save) {
            if (dist_rank(dd) == 0 && tf_model_save(m, opt, ckpt) != TF_OK) {
                fprintf(stderr, "train: saving %s: %s\n", ckpt, tf_model_errmsg(m));
                if (dist_size(dd) > 1)
                    dist_abort(dd, "stopping the job: the checkpoint could not be saved");
                rc = 1;
                break;
            }
            fflush(csv);
        }
    }
    if (stop && rc == 0)
        printf("\ninterrupted at step %lld: checkpoint saved to %s\n", (long long)step, ckpt);
    else if (rc == 0)
        printf("%sdone: %lld steps, %.3g training FLOPs, checkpoint %s\n", tty ? "\n" : "",
               (long long)step, flops, ckpt);
    if (dist_size(dd) > 1 && step_seconds > 0)
        printf("data parallel: %d ranks; %.1f%% of the step time in the gradient sums "
               "(%.3f s per step)\n", dist_size(dd), 100.0 * dist_comm_seconds(dd) / step_seconds,
               dist_comm_seconds(dd) / (double)(step - first_step));
    fclose(csv);
    if (gcsv)
        fclose(gcsv);
    free(tok);
    free(tgt);
    tf_optimizer_free(opt);
    tf_model_free(m);
    tf_dataset_free(ds);
    tf_config_free(cfg);
    dist_finalize(dd); /* every rank gets here at the same step */
    return rc;
}
