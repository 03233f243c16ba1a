/*
 * train -- trains a TokenFormer from a YAML config (public API only).
 *
 *   train CONFIG.yml [--resume | --force] [--steps N] [--threads N] [--out DIR]
 *   train --help
 *
 * The config holds the official GPT-NeoX/TokenFormer keys of the model and
 * the optimizer (read by the library: tf_config_model_params,
 * tf_config_optimizer_params) and the trainer's own keys, which `train
 * --help` lists with their defaults and meanings: the KEYS table below is
 * the one place they are written, and the list the trainer declares to the
 * library (tf_config_use_keys).  Every other key is warned about, with a
 * "did you mean" (tf_config_suggest_key), except the keys of the official
 * configs that mean nothing to this trainer (NEOX_IGNORED), so that an
 * official config trains without noise and a misspelling still shows.
 *
 * A run lives in one directory (the config's `save`, or --out):
 *   checkpoint.safetensors  saved atomically every checkpoint_factor steps
 *                           and at the last, with the optimizer state and
 *                           the growth state (tau ramps, schedule restart)
 *   log.csv                 step, loss, lr, tokens/s, validation loss,
 *                           cumulative training FLOPs at each step's size
 *                           (validation not counted)
 *   growth.csv              with growth stages: the validation loss right
 *                           before and right after each
 *   loss.png                train and validation loss against step, the
 *                           growths marked; drawn by gnuplot at every
 *                           validation and at the end, written under a
 *                           temporary name and renamed; never fatal
 * A directory that holds a run (a checkpoint, log.csv or growth.csv) is
 * refused unless --resume continues it or --force starts over, which
 * removes those files and loss.png first (and says so).
 *
 * --steps N stops early, after step N of the configured run: train_iters
 * still sets the learning-rate schedule and the growth stages, step N is
 * validated and checkpointed, and a later --resume continues the same run
 * (tests and experiments/scaling rely on this).  --resume reproduces the
 * uninterrupted run exactly: the batch of every step is a pure function of
 * (seed, step), and the checkpoint's slot numbers (tf_checkpoint_info) say
 * which growth stages it is past.
 *
 * Faults: Ctrl-C saves the state of the last completed step and exits.  A
 * step whose loss or update is not finite changes no weight (the library
 * refuses such an update with TF_ERR_NONFINITE); it is skipped with a
 * warning and retried on other batches, drawn with the seed moved by the
 * retry's number, so a resumed run retries the same way.
 * max_nonfinite_steps such steps in a row, or a validation loss that is
 * not finite, stop the run without saving: the checkpoint on disk, whose
 * step the message names, is the last good one.  Any other error (a shard
 * that cannot be read, a full disk) stops the run with its message.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "tokenformer.h"

extern char **environ;

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

static void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("train: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- the config keys ---------------------------------------------------- */

/* Every key the trainer reads, in the order of `train --help`.  `shown` is
 * the default as --help prints it where the value the code reads the key
 * with says nothing by itself (a required key, no value); NULL: that value,
 * recorded by reading an empty config (so the default printed is the one
 * used).  A NULL key starts a group titled `help`. */
typedef struct key_doc {
    const char *key, *shown, *help;
} key_doc;

static const key_doc KEYS[] = {
    {NULL, NULL, "data"},
    {"data_path", "required",
     "the training tokens: a token file, a list of files, a glob pattern, or a directory: its "
     "llm.c shards (*_train_*.bin), else its extension-less files as text (one byte a token, "
     "concatenated in name order)"},
    {"val_path", "none",
     "the validation tokens, in the same forms (a directory: its *_val_*.bin shards); "
     "without it, the last val_fraction of the training tokens"},
    {"data_format", NULL,
     "auto | bytes | u16 | llmc, for every file.  auto decides per file: an llm.c header "
     "(magic 20240520 v1, uint16 ids; 20240801 v7, uint32 ids), else u16 for *.bin, else "
     "bytes"},
    {"val_fraction", NULL,
     "without val_path: the held-out tail of the training tokens, in [0, 1)"},
    {NULL, NULL, "steps and batches"},
    {"train_iters", "required",
     "optimizer steps of the run, where the learning-rate schedule ends (the library reads "
     "it too)"},
    {"train_micro_batch_size_per_gpu", NULL, "B: sequences of seq_length tokens a micro-batch"},
    {"gradient_accumulation_steps", NULL,
     "micro-batches an optimizer step (the library reads it too)"},
    {"seed", NULL, "the data order and the initialisation"},
    {"max_nonfinite_steps", NULL,
     "steps in a row whose loss or update is not finite before the run stops without "
     "saving; each is skipped (no weight changes) and retried on other batches"},
    {NULL, NULL, "validation, logs and checkpoints"},
    {"eval_interval", NULL, "steps between validations (and loss.png redraws)"},
    {"eval_iters", NULL,
     "validation batches: the first eval_iters whole batches of the validation split, the "
     "same every time"},
    {"log_interval", NULL, "steps between progress lines when stdout is not a terminal"},
    {"save", NULL,
     "the run directory, for checkpoint.safetensors, log.csv, growth.csv and loss.png "
     "(--out overrides it)"},
    {"checkpoint_factor", NULL, "save a checkpoint every this many steps, and at the last"},
    {"init_from", "none",
     "a checkpoint whose parameters start the run (a smaller one is grown into the config's "
     "model by the grow_* keys); step 0, a fresh optimizer"},
    {NULL, NULL,
     "growth during training: one stage (grow_at_step) or several (grow_schedule); how, by "
     "the grow_* keys, over the library's recipe (tf_grow_recipe_params, what "
     "experiments/scaling found best; tokenformer.h has each field's exact meaning)"},
    {"grow_at_step", NULL, "grow when this many steps are done (0: never), to the slots below"},
    {"grow_qkv_slot_num", NULL, "query/key/value slots after the growth (0: as before)"},
    {"grow_proj_slot_num", NULL, "output projection slots after the growth (0: as before)"},
    {"grow_ffn_slot_num", NULL, "feed-forward slots after the growth (0: as before)"},
    {"grow_schedule", "none",
     "several stages instead: a sequence of {step, qkv, proj, ffn} (or qkv_slot_num, ...); "
     "a slot number left out keeps its value"},
    {"grow_key_init", NULL, "zero | random: the new keys"},
    {"grow_key_std", NULL, "the std of random new keys"},
    {"grow_value_std", NULL,
     "the std of the new values; 0: the init's own (2 / L / sqrt(d)); -1: the recipe's, "
     "1/20 of the init's"},
    {"grow_scale", NULL,
     "pinned: tau stays (with zero keys the function is unchanged); follow_n: tau becomes "
     "the new size's default at once (the official code; outputs jump by sqrt(n'/n)); ramp: "
     "pinned, then moved linearly to the new size's default over grow_tau_ramp steps"},
    {"grow_tau_ramp", NULL, "steps of the ramp"},
    {"grow_reset_optimizer", NULL,
     "true: the AdamW moments restart from zero as a fresh optimizer's; false: they carry "
     "through growth (new rows at zero).  The step count goes on either way"},
    {"grow_lr_schedule", NULL,
     "restart: after each growth a new cosine from grow_lr (after grow_warmup steps of "
     "linear warmup) to grow_min_lr, ending grow_decay_steps later; continue: the config's "
     "schedule goes on over the global step count, times grow_lr_factor"},
    {"grow_lr", NULL, "restart: the peak; 0: the config's lr"},
    {"grow_min_lr", NULL, "restart: the end; < 0: the config's min_lr / 10"},
    {"grow_decay_steps", NULL, "restart: the length; 0: to train_iters"},
    {"grow_warmup", NULL, "steps of linear warmup after a growth"},
    {"grow_lr_factor", NULL, "continue: the factor of the lr after a growth"},
    {"grow_eval", NULL,
     "validate right before and right after every growth (printed, and logged to "
     "growth.csv)"},
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

/* Keys of the official GPT-NeoX/TokenFormer configs that mean nothing to
 * this trainer (model parallelism, kernel fusion, fp16, DeepSpeed, logging
 * services, tokenizer files, GPT-NeoX's own checkpoint loading): declared,
 * so that an official config gives no warning for them. */
static const char *const NEOX_IGNORED[] = {
    "pipe_parallel_size", "model_parallel_size", "max_position_embeddings", "gpt_j_residual",
    "output_layer_parallelism", "use_bias_in_attn_linear", "attention_config",
    "scaled_upper_triang_masked_softmax_fusion", "bias_gelu_fusion", "rope_fusion",
    "layernorm_fusion", "init_method", "output_layer_init_method", "zero_optimization",
    "data_impl", "num_workers", "checkpoint_activations", "checkpoint_num_layers",
    "partition_activations", "synchronize_each_layer", "fp16", "distributed_backend",
    "extra_save_iters", "steps_per_print", "wall_clock_breakdown", "keep_last_n_checkpoints",
    "load", "log_dir", "eval_ckpt", "checkpoint_validation_with_forward_pass",
    "adlr_autoresume", "tokenizer_type", "vocab_file", "launcher", "deepspeed_slurm",
    "no_ssh_check", "tensorboard_dir", "use_wandb", "wandb_host", "wandb_project",
};
#define NNEOX (sizeof NEOX_IGNORED / sizeof NEOX_IGNORED[0])

/* GPT-NeoX keys with a counterpart here under another name: warned about,
 * naming it (silently ignoring them would train something else). */
static const struct {
    const char *neox, *ours;
} NEOX_RENAMED[] = {
    {"pretrain_partial_init", "init_from"},
    {"train_data_paths", "data_path"},
    {"valid_data_paths", "val_path"},
};

/* One growth stage: when `step` steps are done, grow to these slot numbers. */
typedef struct grow_stage {
    int64_t step, qkv, proj, ffn;
} grow_stage;

#define MAX_STAGES 32

/* data_path or val_path: one path (a file, a glob, a directory) or a list of
 * files; the strings are borrowed from the config. */
typedef struct path_list {
    const char **v;
    size_t n;
    int list; /* written as a YAML sequence */
} path_list;

typedef struct trainer {
    path_list data, val;
    const char *data_format, *save, *init_from;
    tf_data_format format;
    double val_fraction;
    int64_t B, accum, train_iters, eval_interval, eval_iters, ckpt_every, log_every, seed,
        max_nonfinite;
    int64_t stop; /* the last step of this invocation: train_iters, or --steps */
    int nstages;
    grow_stage stages[MAX_STAGES];
    tf_grow_params grow; /* how every stage grows */
    int grow_eval;
} trainer;

/* Reads keys from a config; with `shown`, also records the default each key
 * is read with, as text, for --help. */
typedef struct reader {
    const tf_config *c;
    char (*shown)[32]; /* [NKEYS] or NULL */
} reader;

/* The KEYS entry of a key or of the top of a dotted path ("grow_schedule.0"). */
static size_t key_index(const char *key)
{
    size_t len = strcspn(key, ".");
    for (size_t i = 0; i < NKEYS; i++)
        if (KEYS[i].key && strlen(KEYS[i].key) == len && strncmp(KEYS[i].key, key, len) == 0)
            return i;
    fprintf(stderr, "train: internal error: the key '%s' is read but not in KEYS\n", key);
    abort();
}

/* Whether the config has key; records its default for --help. */
static int lookup(const reader *r, const char *key, const char *def)
{
    size_t i = key_index(key);
    if (r->shown && !strchr(key, '.'))
        snprintf(r->shown[i], sizeof r->shown[i], "%s", def ? def : "none");
    return tf_config_has(r->c, key);
}

static int get_int(const reader *r, const char *key, int64_t def, int64_t *out)
{
    char d[32];
    snprintf(d, sizeof d, "%lld", (long long)def);
    *out = def;
    if (!lookup(r, key, d))
        return 0;
    return tf_config_get_int(r->c, key, out) == TF_OK ? 0 : die("config", tf_last_error());
}

static int get_double(const reader *r, const char *key, double def, double *out)
{
    char d[32];
    snprintf(d, sizeof d, "%g", def);
    *out = def;
    if (!lookup(r, key, d))
        return 0;
    return tf_config_get_double(r->c, key, out) == TF_OK ? 0 : die("config", tf_last_error());
}

static int get_string(const reader *r, const char *key, const char *def, const char **out)
{
    *out = def;
    if (!lookup(r, key, def))
        return 0;
    return tf_config_get_string(r->c, key, out) == TF_OK ? 0 : die("config", tf_last_error());
}

static int get_bool(const reader *r, const char *key, int def, int *out)
{
    *out = def;
    if (!lookup(r, key, def ? "true" : "false"))
        return 0;
    return tf_config_get_bool(r->c, key, out) == TF_OK ? 0 : die("config", tf_last_error());
}

/* A path or a non-empty sequence of paths. */
static int get_paths(const reader *r, const char *key, path_list *out)
{
    char k[64];
    memset(out, 0, sizeof *out);
    if (!lookup(r, key, NULL))
        return 0;
    size_t n = 0;
    for (;; n++) {
        snprintf(k, sizeof k, "%s.%zu", key, n);
        if (!tf_config_has(r->c, k))
            break;
    }
    out->list = n > 0;
    out->v = calloc(n ? n : 1, sizeof *out->v);
    if (!out->v)
        return die(key, "out of memory");
    out->n = n ? n : 1;
    for (size_t i = 0; i < out->n; i++) {
        snprintf(k, sizeof k, "%s.%zu", key, i);
        if (tf_config_get_string(r->c, out->list ? k : key, &out->v[i]) != TF_OK) {
            fprintf(stderr, "train: config: %s ('%s' takes a path or a non-empty list of "
                            "paths)\n", tf_last_error(), key);
            return 1;
        }
        if (!out->v[i][0]) {
            fprintf(stderr, "train: config: '%s' holds an empty path\n", key);
            return 1;
        }
    }
    return 0;
}

/* A slot number of stage i: "grow_schedule.i.qkv_slot_num" or ".qkv". */
static int get_stage_slot(const reader *r, int i, const char *kind, int64_t prev, int64_t *out)
{
    char key[96];
    snprintf(key, sizeof key, "grow_schedule.%d.%s_slot_num", i, kind);
    if (!tf_config_has(r->c, key))
        snprintf(key, sizeof key, "grow_schedule.%d.%s", i, kind);
    return get_int(r, key, prev, out);
}

/* The growth stages: grow_schedule, or the single grow_at_step. */
static int read_stages(const reader *r, trainer *t)
{
    const tf_config *c = r->c;
    int64_t at, q, pr, f;
    if (get_int(r, "grow_at_step", 0, &at) || get_int(r, "grow_qkv_slot_num", 0, &q) ||
        get_int(r, "grow_proj_slot_num", 0, &pr) || get_int(r, "grow_ffn_slot_num", 0, &f))
        return 1;
    t->nstages = 0;
    if (lookup(r, "grow_schedule", NULL)) {
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
            if (get_int(r, key, 0, &s->step) || get_stage_slot(r, i, "qkv", prev.qkv, &s->qkv) ||
                get_stage_slot(r, i, "proj", prev.proj, &s->proj) ||
                get_stage_slot(r, i, "ffn", prev.ffn, &s->ffn))
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
static int read_growth(const reader *r, tf_grow_params *g)
{
    *g = tf_grow_recipe_params();
    const char *keys, *scale, *sched;
    int64_t ramp = g->tau_ramp_steps;
    double value_std = -1.0;
    int reset = g->reset_optimizer;
    if (get_string(r, "grow_key_init", g->key_init == TF_KEYS_RANDOM ? "random" : "zero",
                   &keys) ||
        get_string(r, "grow_scale",
                   g->tau_ramp_steps > 0                   ? "ramp"
                   : g->scale_policy == TF_SCALE_FOLLOW_N ? "follow_n"
                                                           : "pinned",
                   &scale) ||
        get_string(r, "grow_lr_schedule", g->lr_schedule == TF_LR_RESTART ? "restart" : "continue",
                   &sched) ||
        get_int(r, "grow_tau_ramp", ramp, &ramp) ||
        get_int(r, "grow_warmup", g->warmup_steps, &g->warmup_steps) ||
        get_int(r, "grow_decay_steps", g->decay_steps, &g->decay_steps) ||
        get_double(r, "grow_lr", g->lr, &g->lr) ||
        get_double(r, "grow_min_lr", g->min_lr, &g->min_lr) ||
        get_double(r, "grow_lr_factor", g->lr_factor, &g->lr_factor) ||
        get_double(r, "grow_key_std", g->key_std, &g->key_std) ||
        get_double(r, "grow_value_std", value_std, &value_std) ||
        get_bool(r, "grow_reset_optimizer", reset, &reset))
        return 1;
    if (strcmp(keys, "zero") && strcmp(keys, "random"))
        return die("config", "'grow_key_init' must be zero or random");
    if (strcmp(scale, "pinned") && strcmp(scale, "follow_n") && strcmp(scale, "ramp"))
        return die("config", "'grow_scale' must be pinned, follow_n or ramp");
    if (strcmp(scale, "ramp") == 0 && ramp < 1)
        return die("config", "'grow_tau_ramp' must be >= 1");
    if (strcmp(sched, "continue") && strcmp(sched, "restart"))
        return die("config", "'grow_lr_schedule' must be continue or restart");
    if (g->warmup_steps < 0 || g->decay_steps < 0 || g->lr < 0 || !(g->lr_factor > 0) ||
        !(g->key_std >= 0) || !(value_std >= 0 || value_std == -1.0))
        return die("config", "grow_warmup, grow_decay_steps, grow_lr, grow_key_std and "
                             "grow_value_std must be >= 0 (grow_value_std may be -1), "
                             "grow_lr_factor > 0");
    g->key_init = strcmp(keys, "random") == 0 ? TF_KEYS_RANDOM : TF_KEYS_ZERO;
    g->scale_policy = strcmp(scale, "follow_n") == 0 ? TF_SCALE_FOLLOW_N : TF_SCALE_PINNED;
    g->tau_ramp_steps = strcmp(scale, "ramp") == 0 ? ramp : 0;
    if (value_std >= 0) { /* an explicit std; 0 asks for the init's own */
        g->value_std = value_std;
        g->value_std_scale = 1.0;
    }
    g->lr_schedule = strcmp(sched, "restart") == 0 ? TF_LR_RESTART : TF_LR_CONTINUE;
    g->reset_optimizer = reset;
    return 0;
}

/* Every trainer key (the checks that need no other key included). */
static int read_keys(const reader *r, trainer *t)
{
    return get_paths(r, "data_path", &t->data) || get_paths(r, "val_path", &t->val) ||
           get_string(r, "data_format", "auto", &t->data_format) ||
           get_double(r, "val_fraction", 0.05, &t->val_fraction) ||
           get_int(r, "train_iters", 0, &t->train_iters) ||
           get_int(r, "train_micro_batch_size_per_gpu", 8, &t->B) ||
           get_int(r, "gradient_accumulation_steps", 1, &t->accum) ||
           get_int(r, "seed", 1, &t->seed) ||
           get_int(r, "max_nonfinite_steps", 5, &t->max_nonfinite) ||
           get_int(r, "eval_interval", 100, &t->eval_interval) ||
           get_int(r, "eval_iters", 20, &t->eval_iters) ||
           get_int(r, "log_interval", 10, &t->log_every) ||
           get_string(r, "save", "run", &t->save) ||
           get_int(r, "checkpoint_factor", 500, &t->ckpt_every) ||
           get_string(r, "init_from", NULL, &t->init_from) || read_stages(r, t) ||
           read_growth(r, &t->grow) || get_bool(r, "grow_eval", 1, &t->grow_eval);
}

/* What holds only for a real config: required keys, ranges, key pairs. */
static int check_keys(const tf_config *c, trainer *t)
{
    if (!t->data.n)
        return die("config", "missing 'data_path' (a token file, a list of files, a glob or a "
                             "directory; see train --help)");
    if (t->train_iters < 1)
        return die("config", "'train_iters' must be given and >= 1");
    if (t->B < 1 || t->accum < 1 || t->eval_interval < 1 || t->eval_iters < 1 ||
        t->ckpt_every < 1 || t->log_every < 1 || t->max_nonfinite < 1)
        return die("config", "train_micro_batch_size_per_gpu, gradient_accumulation_steps, "
                             "eval_interval, eval_iters, checkpoint_factor, log_interval and "
                             "max_nonfinite_steps must be >= 1");
    if (t->B > INT32_MAX || t->accum > INT32_MAX)
        return die("config", "train_micro_batch_size_per_gpu and gradient_accumulation_steps "
                             "must fit in 32 bits");
    int known = 0;
    for (tf_data_format f = TF_DATA_AUTO; f <= TF_DATA_LLMC; f++)
        if (strcmp(t->data_format, tf_data_format_name(f)) == 0)
            t->format = f, known = 1;
    if (!known)
        return die("config", "'data_format' must be auto, bytes, u16 or llmc");
    if (!(t->val_fraction >= 0 && t->val_fraction < 1))
        return die("config", "'val_fraction' must be in [0, 1)");
    if (t->val.n && tf_config_has(c, "val_fraction"))
        return die("config", "give 'val_path' (validation files) or 'val_fraction' (the tail "
                             "of the training tokens), not both");
    if (t->val.n)
        t->val_fraction = 0.0;
    return 0;
}

/* Declares the keys the trainer reads and the official ones it ignores,
 * then warns about every other key, with a suggestion where one is close. */
static int declare_and_warn(tf_config *c)
{
    const char *keys[NKEYS];
    int n = 0;
    for (size_t i = 0; i < NKEYS; i++)
        if (KEYS[i].key)
            keys[n++] = KEYS[i].key;
    if (tf_config_use_keys(c, keys, n) != TF_OK ||
        tf_config_use_keys(c, NEOX_IGNORED, (int)NNEOX) != TF_OK)
        return die("config", tf_last_error());
    for (int i = 0; i < tf_config_num_ignored(c); i++) {
        const char *key = tf_config_ignored_key(c, i), *hint = NULL;
        for (size_t j = 0; j < sizeof NEOX_RENAMED / sizeof NEOX_RENAMED[0]; j++)
            if (strcmp(key, NEOX_RENAMED[j].neox) == 0)
                hint = NEOX_RENAMED[j].ours;
        const char *near = tf_config_suggest_key(c, key);
        if (hint)
            warn("config key '%s' is GPT-NeoX's and not read here: this trainer's is '%s'", key,
                 hint);
        else if (near)
            warn("config key '%s' is not used (did you mean '%s'?)", key, near);
        else
            warn("config key '%s' is not used by the trainer or the library (train --help "
                 "lists the keys)", key);
    }
    return 0;
}

/* Prints text from column `indent`, wrapped at 79 columns. */
static void print_wrapped(FILE *f, const char *text, int indent)
{
    int col = indent;
    fprintf(f, "%*s", indent, "");
    while (*text) {
        size_t word = strcspn(text, " ");
        if (col > indent && col + 1 + (int)word > 79) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", (int)word, text);
        col += (int)word;
        text += word;
        while (*text == ' ')
            text++;
    }
    fputc('\n', f);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: train CONFIG.yml [--resume | --force] [--steps N] [--threads N] "
               "[--out DIR]\n       train --help\n");
}

static const struct {
    const char *flag, *help;
} OPTIONS[] = {
    {"--resume", "continue the run in the run directory from its checkpoint; it ends "
                 "bit-identical to an uninterrupted run"},
    {"--force", "start over in a run directory that holds a run: its checkpoint.safetensors, "
                "log.csv, growth.csv and loss.png are removed first"},
    {"--steps N", "stop early, after step N (1 <= N <= train_iters) of the configured run: "
                  "train_iters still sets the learning-rate schedule and the growth stages, "
                  "step N is validated and checkpointed, and a later --resume continues the "
                  "same run"},
    {"--threads N", "threads (default: TF_NUM_THREADS, else the online CPUs)"},
    {"--out DIR", "the run directory, instead of the config's 'save'"},
    {"-h, --help", "this text"},
};

static int help(void)
{
    char shown[NKEYS][32];
    memset(shown, 0, sizeof shown);
    tf_config *empty = NULL;
    trainer t;
    memset(&t, 0, sizeof t);
    if (tf_config_parse("{}", 2, &empty) != TF_OK)
        return die("help", tf_last_error());
    reader r = {empty, shown};
    int bad = read_keys(&r, &t);
    free(t.data.v);
    free(t.val.v);
    tf_config_free(empty);
    if (bad)
        return 1;
    usage(stdout);
    printf("\n");
    print_wrapped(stdout,
                  "Trains a TokenFormer from a YAML config: the official GPT-NeoX/TokenFormer "
                  "keys of the model and the optimizer, which the library reads "
                  "(tf_config_model_params, tf_config_optimizer_params in tokenformer.h), and "
                  "the trainer's own keys below.  The run directory gets "
                  "checkpoint.safetensors, log.csv, growth.csv (with growth) and loss.png.  A "
                  "directory that holds a run is refused without --resume or --force.",
                  0);
    printf("\noptions:\n");
    for (size_t i = 0; i < sizeof OPTIONS / sizeof OPTIONS[0]; i++) {
        printf("  %s\n", OPTIONS[i].flag);
        print_wrapped(stdout, OPTIONS[i].help, 6);
    }
    printf("\nthe trainer's config keys [default]:\n");
    for (size_t i = 0; i < NKEYS; i++) {
        if (!KEYS[i].key) {
            printf("\n");
            print_wrapped(stdout, KEYS[i].help, 0);
            continue;
        }
        printf("  %s [%s]\n", KEYS[i].key, KEYS[i].shown ? KEYS[i].shown : shown[i]);
        print_wrapped(stdout, KEYS[i].help, 6);
    }
    printf("\n");
    print_wrapped(stdout,
                  "The official TokenFormer growth recipe: grow_scale follow_n, grow_key_init "
                  "random or zero, grow_value_std 0, grow_reset_optimizer true, "
                  "grow_lr_schedule restart, grow_lr = lr, grow_min_lr = min_lr, grow_warmup "
                  "> 0.",
                  0);
    printf("\n");
    char list[2048] = "Keys of the official configs that mean nothing here are accepted "
                      "without a warning:";
    for (size_t i = 0; i < NNEOX; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s %s", i ? "," : "", NEOX_IGNORED[i]);
    }
    print_wrapped(stdout, list, 0);
    print_wrapped(stdout, "Any other key is warned about, with a \"did you mean\".", 0);
    return 0;
}

/* ---- the run directory ---------------------------------------------------- */

/* The files of a run.  The first RUN_MARKERS make a directory hold a run;
 * --force removes them all. */
static const char *const RUN_FILES[] = {"checkpoint.safetensors", "log.csv", "growth.csv",
                                        "loss.png"};
#define RUN_MARKERS 3
#define NRUN_FILES (sizeof RUN_FILES / sizeof RUN_FILES[0])

/* dir/name into buf; -1 (with a message) if it does not fit. */
static int join(char *buf, size_t size, const char *dir, const char *name)
{
    if ((size_t)snprintf(buf, size, "%s/%s", dir, name) < size)
        return 0;
    fprintf(stderr, "train: %s/%s: path too long\n", dir, name);
    return -1;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* " at step N" for a checkpoint that says its step, else "". */
static void ckpt_step_note(const char *path, char *buf, size_t size)
{
    tf_model_params p = tf_model_default_params();
    int64_t step = -1;
    buf[0] = '\0';
    if (tf_checkpoint_info(path, &p, &step) == TF_OK && step >= 0)
        snprintf(buf, size, " at step %lld", (long long)step);
}

/* Refuses a directory that holds a run, unless it is resumed or forced. */
static int check_run_dir(const char *dir, int resume, int force)
{
    char found[256] = "", path[4096], note[64];
    for (size_t i = 0; i < RUN_MARKERS; i++) {
        if (join(path, sizeof path, dir, RUN_FILES[i]))
            return 1;
        if (!exists(path))
            continue;
        if (i == 0)
            ckpt_step_note(path, note, sizeof note);
        size_t len = strlen(found);
        snprintf(found + len, sizeof found - len, "%s%s%s", len ? ", " : "", RUN_FILES[i],
                 i == 0 ? note : "");
    }
    if (!found[0] || resume || force)
        return 0;
    fprintf(stderr,
            "train: %s already holds a run (%s).  Give --resume to continue it, --force to "
            "start over (removes its checkpoint.safetensors, log.csv, growth.csv and "
            "loss.png), or --out DIR for a new run elsewhere.\n",
            dir, found);
    return 1;
}

/* --force: removes the run files of dir, saying which. */
static int clear_run_dir(const char *dir)
{
    char removed[512] = "", path[4096], note[64];
    for (size_t i = 0; i < NRUN_FILES; i++) {
        if (join(path, sizeof path, dir, RUN_FILES[i]))
            return 1;
        if (i == 0)
            ckpt_step_note(path, note, sizeof note);
        if (unlink(path) != 0) {
            if (errno == ENOENT)
                continue;
            return die(path, strerror(errno));
        }
        size_t len = strlen(removed);
        snprintf(removed + len, sizeof removed - len, "%s%s%s", len ? ", " : "", RUN_FILES[i],
                 i == 0 ? note : "");
    }
    if (removed[0])
        printf("--force: removed %s from %s\n", removed, dir);
    return 0;
}

/* mkdir -p. */
static int make_dirs(const char *dir)
{
    char p[4096];
    if ((size_t)snprintf(p, sizeof p, "%s", dir) >= sizeof p)
        return die(dir, "path too long");
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        struct stat st;
        if (mkdir(p, 0755) != 0 && (errno != EEXIST || stat(p, &st) != 0 || !S_ISDIR(st.st_mode)))
            return die(p, errno == EEXIST ? "not a directory" : strerror(errno));
        *s = c;
        if (!c)
            return 0;
    }
}

/* ---- data ------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory of text: its extension-less regular files in name order,
 * concatenated, one byte a token; the last val fraction is the validation
 * split.  *nfiles receives the number of files. */
static int open_text_directory(const char *dir, int64_t vocab, double val, tf_dataset **out,
                               int64_t *nfiles)
{
    DIR *d = opendir(dir);
    if (!d)
        return die(dir, strerror(errno));
    char **names = NULL, path[4096];
    size_t count = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        struct stat st;
        if (strchr(e->d_name, '.') || join(path, sizeof path, dir, e->d_name) ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (count == cap) {
            size_t grown_cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, grown_cap * sizeof *grown);
            if (!grown) {
                rc = die(dir, "out of memory");
                break;
            }
            names = grown, cap = grown_cap;
        }
        if (!(names[count] = strdup(e->d_name)))
            rc = die(dir, "out of memory");
        else
            count++;
    }
    closedir(d);
    if (count)
        qsort(names, count, sizeof *names, by_name);
    int32_t *tokens = NULL;
    size_t ntok = 0, cap_tok = 0;
    unsigned char buf[1 << 16];
    for (size_t i = 0; i < count && !rc; i++) {
        if (join(path, sizeof path, dir, names[i])) {
            rc = 1;
            break;
        }
        FILE *f = fopen(path, "rb");
        if (!f) {
            rc = die(path, strerror(errno));
            break;
        }
        for (size_t got; !rc && (got = fread(buf, 1, sizeof buf, f)) > 0;) {
            if (ntok + got > cap_tok) {
                size_t grown_cap = cap_tok ? 2 * cap_tok : 1 << 20;
                while (grown_cap < ntok + got)
                    grown_cap *= 2;
                int32_t *grown = realloc(tokens, grown_cap * sizeof *grown);
                if (!grown) {
                    rc = die(dir, "out of memory");
                    break;
                }
                tokens = grown, cap_tok = grown_cap;
            }
            for (size_t k = 0; k < got; k++)
                tokens[ntok++] = buf[k];
        }
        if (!rc && ferror(f))
            rc = die(path, "read error");
        fclose(f);
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    if (!rc && ntok == 0)
        rc = die(dir, "no llm.c shards (*_train_*.bin) and no extension-less text files with "
                      "data in this directory");
    if (!rc && tf_dataset_from_tokens(tokens, (int64_t)ntok, vocab, val, out) != TF_OK)
        rc = die(dir, tf_last_error());
    free(tokens);
    *nfiles = rc ? 0 : (int64_t)count;
    return rc;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Opens data_path and val_path (see KEYS).  *text_files: the number of text
 * files read from a directory of text, else 0. */
static int open_data(const trainer *t, int64_t vocab, tf_dataset **out, int64_t *text_files)
{
    tf_dataset_params p = tf_dataset_default_params();
    p.format = t->format;
    p.vocab_size = vocab;
    p.val_fraction = t->val_fraction;
    *text_files = 0;
    if (t->data.list || t->val.list) {
        /* lists hold files; a directory or a pattern is expanded only as the
         * single value of data_path/val_path */
        const path_list *l[2] = {&t->data, &t->val};
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < l[k]->n; i++)
                if (is_dir(l[k]->v[i]) || (strpbrk(l[k]->v[i], "*?[") && !exists(l[k]->v[i]))) {
                    fprintf(stderr, "train: config: '%s' in %s is a directory or a pattern: "
                                    "with a list of files in data_path or val_path, every "
                                    "path is one file\n",
                            l[k]->v[i], k ? "val_path" : "data_path");
                    return 1;
                }
        if (tf_dataset_open_files(t->data.v, t->data.n, t->val.v, t->val.n, &p, out) != TF_OK)
            return die("data", tf_last_error());
        return 0;
    }
    const char *train = t->data.v[0], *val = t->val.n ? t->val.v[0] : NULL;
    tf_status st = tf_dataset_open_glob(train, val, &p, out);
    if (st == TF_ERR_NOT_FOUND && is_dir(train) && !val &&
        (t->format == TF_DATA_AUTO || t->format == TF_DATA_BYTES))
        return open_text_directory(train, vocab, t->val_fraction, out, text_files);
    if (st != TF_OK) {
        fprintf(stderr, "train: data: %s%s\n", tf_last_error(),
                st == TF_ERR_NOT_FOUND && is_dir(train) && val
                    ? " (a directory of text files is read only without val_path: its tail "
                      "is the validation split)"
                    : "");
        return 1;
    }
    return 0;
}

/* 8055, 12.3K, 15.0M, 2.10G */
static void fmt_count(int64_t n, char *buf, size_t size)
{
    if (n < 10000)
        snprintf(buf, size, "%lld", (long long)n);
    else if (n < 1000000)
        snprintf(buf, size, "%.1fK", (double)n / 1e3);
    else if (n < 1000000000)
        snprintf(buf, size, "%.1fM", (double)n / 1e6);
    else
        snprintf(buf, size, "%.2fG", (double)n / 1e9);
}

/* "3 files (llmc v7, uint32 ids) 15.0M tokens": what was read for a split,
 * from tf_dataset_source, the formats grouped. */
static void describe_split(const tf_dataset *ds, tf_split split, int64_t text_files, char *buf,
                           size_t size)
{
    typedef struct kind_count {
        tf_data_format format;
        int version, bytes;
        int64_t files;
    } kind_count;
    kind_count kind[8];
    int nkind = 0;
    int64_t nsrc = tf_dataset_num_sources(ds, split);
    for (int64_t i = 0; i < nsrc; i++) {
        tf_data_source s = {.struct_size = sizeof s};
        if (tf_dataset_source(ds, split, i, &s) != TF_OK)
            continue;
        int k = 0;
        while (k < nkind && !(kind[k].format == s.format && kind[k].version == s.version &&
                              kind[k].bytes == s.token_bytes))
            k++;
        if (k == nkind && nkind < 8)
            kind[nkind++] = (kind_count){s.format, s.version, s.token_bytes, 0};
        if (k < nkind)
            kind[k].files++;
    }
    char count[32];
    fmt_count(tf_dataset_num_tokens(ds, split), count, sizeof count);
    size_t len = 0;
    if (text_files > 0)
        len = (size_t)snprintf(buf, size, "%lld text file%s (bytes", (long long)text_files,
                               text_files == 1 ? "" : "s");
    else
        len = (size_t)snprintf(buf, size, "%lld file%s (", (long long)nsrc, nsrc == 1 ? "" : "s");
    for (int k = 0; k < nkind && !text_files && len < size; k++) {
        char name[64];
        if (kind[k].format == TF_DATA_LLMC)
            snprintf(name, sizeof name, "llmc v%d, uint%d ids", kind[k].version,
                     8 * kind[k].bytes);
        else
            snprintf(name, sizeof name, "%s", tf_data_format_name(kind[k].format));
        if (nkind == 1)
            len += (size_t)snprintf(buf + len, size - len, "%s", name);
        else
            len += (size_t)snprintf(buf + len, size - len, "%s%lld %s", k ? "; " : "",
                                    (long long)kind[k].files, name);
    }
    if (len < size)
        snprintf(buf + len, size - len, ") %s tokens", count);
}

/* ---- the run ------------------------------------------------------------ */

typedef struct run {
    const trainer *t;
    tf_model_params base; /* the model's size before any growth */
    tf_model *m;
    tf_optimizer *opt;
    tf_dataset *ds;
    int64_t text_files;
    int B, T;
    int32_t *tok, *tgt;
    int64_t val_batches;        /* validation batches (eval_iters or fewer) */
    int64_t step;               /* optimizer steps done */
    int applied;                /* growth stages applied to the model */
    int64_t saved_step;         /* the checkpoint on disk; -1: none */
    int64_t plotted_step;       /* the step loss.png shows; -1: none */
    double flops;               /* training FLOPs so far */
    double last_val;            /* the validation loss at last_val_step */
    int64_t last_val_step;
    int val_logged;             /* log.csv holds a validation loss */
    int plot_ok;                /* gnuplot has not failed yet */
    int tty;
    FILE *csv, *gcsv;
    const char *dir;
    char ckpt[4096], csv_path[4096], grow_path[4096], png_path[4096], png_tmp[4096];
} run;

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

static double tokens_per_step(const run *r)
{
    return (double)r->B * r->T * (double)r->t->accum;
}

/* The seed of the new tokens of growth stage k (init_from grows with stage
 * 0's). */
static uint64_t stage_seed(const trainer *t, int k)
{
    return (uint64_t)t->seed + 7919u * (uint64_t)(k + 1);
}

/* ---- model and optimizer: new, resumed or initialised from a checkpoint ---- */

/* Creates the model and the optimizer at the size the run is at: a resumed
 * checkpoint's slot numbers say which growth stages it is past. */
static int setup_model(run *r, tf_model_params mp, const tf_optimizer_params *op, int resume)
{
    const trainer *t = r->t;
    r->step = 0;
    r->applied = 0;
    r->saved_step = -1;
    if (resume) {
        tf_model_params have = tf_model_default_params();
        int64_t opt_step = -1;
        if (!exists(r->ckpt)) {
            fprintf(stderr, "train: resume: %s has no checkpoint.safetensors to resume from%s\n",
                    r->dir, exists(r->csv_path) ? " (--force starts the run over)" : "");
            return 1;
        }
        if (tf_checkpoint_info(r->ckpt, &have, &opt_step) != TF_OK)
            return die("resume", tf_last_error());
        r->applied = stage_of_size(t, &r->base, &have);
        if (r->applied < 0) {
            fprintf(stderr, "train: resume: %s has qkv %lld, proj %lld, ffn %lld slots: neither "
                            "the config's model nor one of its growth stages\n", r->ckpt,
                    (long long)have.qkv_slot_num, (long long)have.proj_slot_num,
                    (long long)have.ffn_slot_num);
            return 1;
        }
        r->step = opt_step > 0 ? opt_step : 0;
        if ((r->applied > 0 && r->step < t->stages[r->applied - 1].step) ||
            (r->applied < t->nstages && r->step > t->stages[r->applied].step)) {
            fprintf(stderr, "train: resume: %s is at step %lld with the size of growth stage "
                            "%d, which the config's grow schedule does not give that step\n",
                    r->ckpt, (long long)r->step, r->applied);
            return 1;
        }
        mp = stage_params(t, &r->base, r->applied);
    }
    if (tf_model_create(&mp, &r->m) != TF_OK)
        return die("model", tf_last_error());
    if (tf_optimizer_create(r->m, op, &r->opt) != TF_OK)
        return die("optimizer", tf_last_error());
    if (resume) {
        if (tf_model_load(r->m, r->opt, r->ckpt) != TF_OK)
            return die("resume", tf_model_errmsg(r->m));
        r->saved_step = r->step;
    } else if (t->init_from) {
        tf_grow_params g = t->grow;
        g.seed = stage_seed(t, 0);
        if (tf_model_load_grown(r->m, t->init_from, &g) != TF_OK)
            return die("init_from", tf_model_errmsg(r->m));
    }
    return 0;
}

/* ---- logs ----------------------------------------------------------------- */

/* On resume: keeps the header and the complete rows of a log whose step
 * (first field) is at most max_step, dropping what a crash or an interrupt
 * left after the checkpoint (a resumed run writes those steps again).  The
 * file is replaced atomically.  *has_val (if not NULL): whether a kept row
 * has a validation loss (log.csv's fifth field). */
static int trim_log(const char *path, int64_t max_step, int *has_val)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? 0 : die(path, strerror(errno));
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        fclose(f);
        return die(path, "path too long");
    }
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
        if (first || (end != line && *end == ',' && step <= max_step)) {
            ok &= fputs(line, o) >= 0;
            const char *field = line;
            for (int k = 0; k < 4 && field; k++)
                if ((field = strchr(field, ',')))
                    field++;
            if (!first && has_val && field && *field != ',' && *field != '\n')
                *has_val = 1;
        }
        first = 0;
    }
    ok &= !ferror(f);
    fclose(f);
    if (fclose(o) != 0 || !ok || rename(tmp, path) != 0) {
        remove(tmp);
        return die(path, "cannot rewrite the log");
    }
    return 0;
}

/* Opens log.csv (and growth.csv with growth stages): new, or appended to
 * after the rows past the checkpoint are dropped. */
static int open_logs(run *r, int resume)
{
    if (resume && (trim_log(r->csv_path, r->step, &r->val_logged) ||
                   trim_log(r->grow_path, r->step - 1, NULL)))
        return 1;
    if (!(r->csv = fopen(r->csv_path, resume ? "a" : "w")))
        return die(r->csv_path, strerror(errno));
    if (ftell(r->csv) == 0)
        fprintf(r->csv, "step,loss,lr,tokens_per_s,val_loss,flops\n");
    if (r->t->nstages > 0) {
        if (!(r->gcsv = fopen(r->grow_path, resume ? "a" : "w")))
            return die(r->grow_path, strerror(errno));
        if (ftell(r->gcsv) == 0)
            fprintf(r->gcsv, "step,flops,params_before,params_after,qkv_slot_num,proj_slot_num,"
                             "ffn_slot_num,val_before,val_after\n");
    }
    return 0;
}

/* Flushes the logs; a write error (a full disk) is an error. */
static int flush_logs(run *r)
{
    if (fflush(r->csv) != 0 || ferror(r->csv))
        return die(r->csv_path, "cannot write");
    if (r->gcsv && (fflush(r->gcsv) != 0 || ferror(r->gcsv)))
        return die(r->grow_path, "cannot write");
    return 0;
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

/* One row of log.csv and the progress line. */
static void log_step(run *r, double loss, double loss_ema, double tps, double val, double eta_s)
{
    const trainer *t = r->t;
    double lr = tf_optimizer_lr_at(r->opt, r->step);
    char val_field[32] = "", eta[32];
    if (!isnan(val))
        snprintf(val_field, sizeof val_field, "%.6f", val);
    fprintf(r->csv, "%lld,%.6f,%.6g,%.1f,%s,%.6g\n", (long long)r->step, loss, lr, tps, val_field,
            r->flops);
    fmt_eta(eta_s, eta, sizeof eta);
    if (r->tty)
        printf("\rstep %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s | ETA %s   ",
               (long long)r->step, (long long)t->stop, loss_ema, lr, tps, eta);
    else if (r->step % t->log_every == 0 || r->step == t->stop)
        printf("step %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s | ETA %s\n", (long long)r->step,
               (long long)t->stop, loss_ema, lr, tps, eta);
    if (!isnan(val))
        printf("%sstep %lld: validation loss %.4f (%.3f bits/token)\n", r->tty ? "\n" : "",
               (long long)r->step, val, val / log(2.0));
    fflush(stdout);
}

/* ---- the loss plot ------------------------------------------------------ */

/* Appends s to a gnuplot script as a single-quoted string ('' is a quote). */
static void gp_quote(char *buf, size_t size, const char *s)
{
    size_t len = strlen(buf);
    if (len + 1 < size)
        buf[len++] = '\'';
    for (; *s && len + 3 < size; s++) {
        if (*s == '\'')
            buf[len++] = '\'';
        buf[len++] = *s;
    }
    if (len + 1 < size)
        buf[len++] = '\'';
    buf[len < size ? len : size - 1] = '\0';
}

static void gp_add(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    if (len < size)
        vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

/* Runs `gnuplot -e script` with its stdout discarded.  0 if it exited with
 * status 0; else -1 and the reason in why: its last line on stderr (which
 * is kept from the terminal: a font cache warning at every validation
 * would bury the progress), or ENOENT's "not installed". */
static int run_gnuplot(char *script, char *why, size_t size)
{
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(why, size, "pipe: %s", strerror(errno));
        return -1;
    }
    char *argv[] = {"gnuplot", "-e", script, NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int err = posix_spawn_file_actions_init(&fa);
    if (!err)
        err = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    if (!err)
        err = posix_spawn_file_actions_adddup2(&fa, fd[1], STDERR_FILENO);
    if (!err)
        err = posix_spawn_file_actions_addclose(&fa, fd[0]);
    if (!err)
        err = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    char tail[256] = ""; /* the last bytes gnuplot wrote to stderr */
    size_t kept = 0;
    for (ssize_t got; !err;) {
        char buf[256];
        if ((got = read(fd[0], buf, sizeof buf)) == 0 || (got < 0 && errno != EINTR))
            break;
        for (ssize_t i = 0; i < got; i++) {
            if (kept == sizeof tail - 1) {
                memmove(tail, tail + 1, kept - 1);
                kept--;
            }
            tail[kept++] = buf[i];
        }
    }
    tail[kept] = '\0';
    close(fd[0]);
    int status = 0;
    while (!err && waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            err = errno;
    if (err == ENOENT) {
        snprintf(why, size, "gnuplot is not installed (Debian: gnuplot-nox)");
        return -1;
    }
    if (err) {
        snprintf(why, size, "cannot run gnuplot: %s", strerror(err));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    while (kept > 0 && (tail[kept - 1] == '\n' || tail[kept - 1] == ' '))
        tail[--kept] = '\0';
    const char *line = strrchr(tail, '\n') ? strrchr(tail, '\n') + 1 : tail;
    line += strspn(line, " ");
    snprintf(why, size, "gnuplot failed (%s %d)%s%s", WIFEXITED(status) ? "exit status" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), *line ? ": " : "", line);
    return -1;
}

/* Draws loss.png from log.csv: the training loss of every step, the
 * validation loss where measured, a dashed line at each growth so far.
 * gnuplot writes a temporary file that is then renamed over loss.png, so a
 * viewer never sees half a picture.  Never fatal: a failure (no gnuplot,
 * say) warns once and stops the plotting for this run. */
static void plot_losses(run *r)
{
    if (!r->plot_ok || r->step == 0 || r->plotted_step == r->step || flush_logs(r))
        return;
    char script[16384] = "";
    gp_add(script, sizeof script,
           "set terminal pngcairo size 960,540 noenhanced font ',10'; set output ");
    gp_quote(script, sizeof script, r->png_tmp);
    gp_add(script, sizeof script,
           "; set datafile separator ','; set grid; set key top right; set xlabel 'step'; "
           "set ylabel 'loss (nats/token)'; set xrange [0:%lld]; set title ",
           (long long)r->t->train_iters);
    char title[4200];
    snprintf(title, sizeof title, "%s: step %lld of %lld", r->dir, (long long)r->step,
             (long long)r->t->train_iters);
    gp_quote(script, sizeof script, title);
    for (int k = 0; k < r->applied; k++)
        gp_add(script, sizeof script,
               "; set arrow %d from %lld, graph 0 to %lld, graph 1 nohead dt 2 lc rgb 'gray40'"
               "; set label %d 'growth %d' at %lld, graph 0.97 offset 0.5, 0",
               k + 1, (long long)r->t->stages[k].step, (long long)r->t->stages[k].step, k + 1,
               k + 1, (long long)r->t->stages[k].step);
    gp_add(script, sizeof script, "; plot ");
    gp_quote(script, sizeof script, r->csv_path);
    gp_add(script, sizeof script, " using 1:2 every ::1 with lines lc rgb '#1f77b4' title 'train'");
    if (r->val_logged)
        gp_add(script, sizeof script, ", '' using 1:5 every ::1 with linespoints pt 7 ps 0.6 "
                                      "lw 2 lc rgb '#d62728' title 'validation'");
    char why[512];
    if (run_gnuplot(script, why, sizeof why) == 0) {
        if (rename(r->png_tmp, r->png_path) == 0) {
            r->plotted_step = r->step;
            return;
        }
        snprintf(why, sizeof why, "%s", strerror(errno));
    }
    warn("no %s: %s", r->png_path, why);
    unlink(r->png_tmp);
    r->plot_ok = 0;
}

/* ---- validation and checkpoints ---------------------------------------- */

/* The validation loss: the mean over the first val_batches whole batches of
 * the validation split, the same batches every time (NaN without any). */
static tf_status validate(run *r, double *val)
{
    double sum = 0.0;
    *val = NAN;
    for (int64_t i = 0; i < r->val_batches; i++) {
        float loss;
        tf_status st = tf_dataset_batch(r->ds, TF_SPLIT_VAL, i, r->B, r->T, r->tok, r->tgt);
        if (st == TF_OK)
            st = tf_model_forward(r->m, r->B, r->T, r->tok, r->tgt, NULL, &loss);
        if (st != TF_OK)
            return st;
        sum += loss;
    }
    if (r->val_batches)
        *val = sum / (double)r->val_batches;
    return TF_OK;
}

/* Where the last good state is, for messages. */
static void last_good(const run *r, char *buf, size_t size)
{
    if (r->saved_step >= 0)
        snprintf(buf, size, "the last good checkpoint is %s (step %lld)", r->ckpt,
                 (long long)r->saved_step);
    else
        snprintf(buf, size, "this run saved no checkpoint");
}

/* Reports a failed validation and stops the run: nothing is saved after a
 * loss that is not finite. */
static int validation_failed(run *r, tf_status st)
{
    char good[4400];
    last_good(r, good, sizeof good);
    fprintf(stderr, "%strain: step %lld: validation: %s\n", r->tty ? "\n" : "",
            (long long)r->step, tf_last_error());
    fprintf(stderr, "train: stopped%s; %s\n",
            st == TF_ERR_NONFINITE ? " without saving (the validation loss is not finite)" : "",
            good);
    return 1;
}

static int save_checkpoint(run *r)
{
    if (tf_model_save(r->m, r->opt, r->ckpt) != TF_OK) {
        fprintf(stderr, "%strain: saving %s: %s\n", r->tty ? "\n" : "", r->ckpt,
                tf_model_errmsg(r->m));
        return 1;
    }
    r->saved_step = r->step;
    return flush_logs(r);
}

/* ---- training ------------------------------------------------------------- */

/* Grows the model through every stage due at this step (by the recipe in
 * t->grow), validating right before and after (grow_eval), into growth.csv. */
static int grow_due_stages(run *r)
{
    const trainer *t = r->t;
    while (r->applied < t->nstages && t->stages[r->applied].step == r->step) {
        const grow_stage *s = &t->stages[r->applied];
        double before = NAN, after = NAN;
        tf_status st;
        if (t->grow_eval) {
            if (r->last_val_step == r->step)
                before = r->last_val;
            else if ((st = validate(r, &before)) != TF_OK)
                return validation_failed(r, st);
        }
        int64_t n_before = tf_model_num_params(r->m);
        tf_grow_params g = t->grow;
        g.seed = stage_seed(t, r->applied);
        if (tf_model_grow(r->m, r->opt, s->qkv, s->proj, s->ffn, &g) != TF_OK)
            return die("grow", tf_model_errmsg(r->m));
        r->applied++;
        if (t->grow_eval && (st = validate(r, &after)) != TF_OK)
            return validation_failed(r, st);
        printf("%sstep %lld: grew to qkv %lld, proj %lld, ffn %lld slots: %lld -> %lld "
               "parameters",
               r->tty ? "\n" : "", (long long)r->step, (long long)s->qkv, (long long)s->proj,
               (long long)s->ffn, (long long)n_before, (long long)tf_model_num_params(r->m));
        if (t->grow_eval)
            printf("; validation loss %.4f -> %.4f", before, after);
        printf("\n");
        fprintf(r->gcsv, "%lld,%.6g,%lld,%lld,%lld,%lld,%lld,%.6f,%.6f\n", (long long)r->step,
                r->flops, (long long)n_before, (long long)tf_model_num_params(r->m),
                (long long)s->qkv, (long long)s->proj, (long long)s->ffn, before, after);
        if (flush_logs(r))
            return 1;
    }
    return 0;
}

/* The seed of attempt a at a step: a retry after a non-finite step draws
 * other batches, still a pure function of (seed, step, attempt). */
static uint64_t attempt_seed(const trainer *t, int64_t attempt)
{
    return (uint64_t)t->seed + (uint64_t)attempt * 0x9E3779B97F4A7C15ull;
}

/* One attempt at the next step: gradient_accumulation_steps micro-batches
 * of forward and backward, then the update.  On failure the message is in
 * tf_last_error() and the model's weights are as before. */
static tf_status step_once(run *r, int64_t attempt, double *loss)
{
    const trainer *t = r->t;
    double sum = 0.0;
    for (int64_t k = 0; k < t->accum; k++) {
        float l;
        tf_status st = tf_dataset_sample(r->ds, TF_SPLIT_TRAIN, attempt_seed(t, attempt),
                                         r->step * t->accum + k, r->B, r->T, r->tok, r->tgt);
        if (st == TF_OK)
            st = tf_model_forward(r->m, r->B, r->T, r->tok, r->tgt, NULL, &l);
        if (st == TF_OK)
            st = tf_model_backward(r->m);
        if (st != TF_OK)
            return st;
        sum += l;
    }
    tf_status st = tf_optimizer_step(r->opt, NULL);
    if (st == TF_OK)
        *loss = sum / (double)t->accum;
    return st;
}

enum { STEP_DONE, STEP_FAILED, STEP_INTERRUPTED };

/* The next step, retried on other batches while its loss or update is not
 * finite, up to max_nonfinite_steps attempts in a row. */
static int train_step(run *r, double *loss, double *seconds)
{
    const trainer *t = r->t;
    char why[512], good[4400];
    for (int64_t attempt = 0;; attempt++) {
        double t0 = now();
        tf_status st = step_once(r, attempt, loss);
        if (st == TF_OK) {
            *seconds = now() - t0;
            return STEP_DONE;
        }
        snprintf(why, sizeof why, "%s", tf_last_error());
        last_good(r, good, sizeof good);
        if (st != TF_ERR_NONFINITE) {
            fprintf(stderr, "%strain: step %lld: %s\ntrain: stopped; %s\n", r->tty ? "\n" : "",
                    (long long)r->step + 1, why, good);
            return STEP_FAILED;
        }
        /* the gradients of the refused attempt must not reach the next one */
        if (tf_model_zero_grad(r->m) != TF_OK) {
            die("zero_grad", tf_model_errmsg(r->m));
            return STEP_FAILED;
        }
        if (attempt + 1 >= t->max_nonfinite) {
            fprintf(stderr, "%strain: step %lld: %s\ntrain: stopped without saving after %lld "
                            "non-finite attempt%s in a row (max_nonfinite_steps); %s\n",
                    r->tty ? "\n" : "", (long long)r->step + 1, why, (long long)attempt + 1,
                    attempt ? "s" : "", good);
            return STEP_FAILED;
        }
        fprintf(stderr, "%strain: warning: step %lld skipped (%s); retrying on other batches "
                        "(%lld of %lld in a row)\n",
                r->tty ? "\n" : "", (long long)r->step + 1, why, (long long)attempt + 1,
                (long long)t->max_nonfinite);
        if (interrupted)
            return STEP_INTERRUPTED;
    }
}

/* Steps until t->stop or Ctrl-C: growth when due, the step, validation,
 * the log, checkpoints and the plot. */
static int train_loop(run *r)
{
    const trainer *t = r->t;
    const double tokens = tokens_per_step(r);
    double t_start = now(), loss_ema = NAN;
    int64_t first_step = r->step;
    r->flops = flops_until(t, &r->base, r->step, tokens);
    while (r->step < t->stop && !interrupted) {
        if (grow_due_stages(r))
            return 1;
        double loss = NAN, seconds = 0.0;
        int s = train_step(r, &loss, &seconds);
        if (s == STEP_FAILED)
            return 1;
        if (s == STEP_INTERRUPTED)
            break;
        r->step++;
        r->flops = flops_until(t, &r->base, r->step, tokens);
        loss_ema = isnan(loss_ema) ? loss : 0.9 * loss_ema + 0.1 * loss;
        double val = NAN;
        tf_status vst = TF_OK;
        int validating = r->val_batches && (r->step % t->eval_interval == 0 || r->step == t->stop);
        if (validating && (vst = validate(r, &val)) == TF_OK) {
            r->last_val = val;
            r->last_val_step = r->step;
            r->val_logged = 1;
        }
        double elapsed = now() - t_start;
        log_step(r, loss, loss_ema, tokens / seconds, val,
                 elapsed / (double)(r->step - first_step) * (double)(t->stop - r->step));
        if (vst != TF_OK)
            return validation_failed(r, vst);
        if ((r->step % t->ckpt_every == 0 || r->step == t->stop || interrupted) &&
            save_checkpoint(r))
            return 1;
        if (validating)
            plot_losses(r);
    }
    if (interrupted && r->step > 0 && r->saved_step != r->step)
        return save_checkpoint(r);
    return 0;
}

/* ---- main ----------------------------------------------------------------- */

typedef struct options {
    const char *config, *out;
    int resume, force;
    int64_t steps, threads;
} options;

/* 0: go on; 1: exit 0 (--help); 2: a usage error. */
static int parse_options(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return help() ? 2 : 1;
        else if (strcmp(a, "--resume") == 0)
            o->resume = 1;
        else if (strcmp(a, "--force") == 0)
            o->force = 1;
        else if (strcmp(a, "--steps") == 0 && has_val) {
            if (arg_int("train", a, argv[++i], 1, INT64_MAX, &o->steps))
                return 2;
        } else if (strcmp(a, "--threads") == 0 && has_val) {
            if (arg_int("train", a, argv[++i], 1, INT32_MAX, &o->threads))
                return 2;
        } else if (strcmp(a, "--out") == 0 && has_val)
            o->out = argv[++i];
        else if (a[0] != '-' && !o->config)
            o->config = a;
        else {
            int valued = !strcmp(a, "--steps") || !strcmp(a, "--threads") || !strcmp(a, "--out");
            if (valued)
                fprintf(stderr, "train: %s needs a value\n", a);
            else
                fprintf(stderr, "train: %s '%s'\n",
                        a[0] == '-' ? "unknown option" : "unexpected argument", a);
            usage(stderr);
            return 2;
        }
    }
    if (!o->config) {
        usage(stderr);
        return 2;
    }
    if (o->resume && o->force) {
        fprintf(stderr, "train: give --resume (continue the run) or --force (start over), not "
                        "both\n");
        return 2;
    }
    return 0;
}

/* Prints what is about to be trained. */
static void print_banner(const run *r)
{
    const trainer *t = r->t;
    tf_model_params mp = tf_model_default_params();
    tf_info info = {.struct_size = sizeof info};
    tf_get_info(&info);
    tf_model_get_params(r->m, &mp);
    printf("model: L=%d d=%d heads=%d slots qkv=%lld proj=%lld ffn=%lld, %lld parameters\n",
           mp.num_layers, mp.hidden_size, mp.num_attention_heads, (long long)mp.qkv_slot_num,
           (long long)mp.proj_slot_num, (long long)mp.ffn_slot_num,
           (long long)tf_model_num_params(r->m));
    const tf_grow_params *g = &t->grow;
    for (int k = 0; k < t->nstages; k++)
        printf("growth %d: at step %lld to qkv=%lld proj=%lld ffn=%lld (%s keys, %s tau, %s "
               "optimizer, %s lr)\n",
               k + 1, (long long)t->stages[k].step, (long long)t->stages[k].qkv,
               (long long)t->stages[k].proj, (long long)t->stages[k].ffn,
               g->key_init == TF_KEYS_RANDOM ? "random" : "zero",
               g->tau_ramp_steps > 0                   ? "ramped"
               : g->scale_policy == TF_SCALE_FOLLOW_N ? "follow_n"
                                                       : "pinned",
               g->reset_optimizer ? "fresh" : "carried",
               g->lr_schedule == TF_LR_RESTART ? "restarted" : "continued");
    char train[256], val[256], tail[64] = "";
    describe_split(r->ds, TF_SPLIT_TRAIN, r->text_files, train, sizeof train);
    describe_split(r->ds, TF_SPLIT_VAL, 0, val, sizeof val);
    if (!t->val.n)
        snprintf(tail, sizeof tail, " (the last %g%%)", 100.0 * t->val_fraction);
    if (tf_dataset_num_tokens(r->ds, TF_SPLIT_VAL) == 0)
        snprintf(val, sizeof val, "none");
    else if (r->text_files > 0) { /* text read into memory: the tail is no file of its own */
        char count[32];
        fmt_count(tf_dataset_num_tokens(r->ds, TF_SPLIT_VAL), count, sizeof count);
        snprintf(val, sizeof val, "%s tokens", count);
    }
    printf("data: train %s; val%s %s\n", train, tail, val);
    printf("batches: B=%d T=%d x %lld micro-batches (%.0f tokens a step); BLIS '%s', %d "
           "threads\n",
           r->B, r->T, (long long)t->accum, tokens_per_step(r), info.blis_arch, info.num_threads);
    fflush(stdout);
}

/* Opens everything a run needs (after the config is read). */
static int start_run(run *r, const options *o, tf_model_params mp, tf_optimizer_params op)
{
    const trainer *t = r->t;
    if (join(r->ckpt, sizeof r->ckpt, r->dir, "checkpoint.safetensors") ||
        join(r->csv_path, sizeof r->csv_path, r->dir, "log.csv") ||
        join(r->grow_path, sizeof r->grow_path, r->dir, "growth.csv") ||
        join(r->png_path, sizeof r->png_path, r->dir, "loss.png") ||
        join(r->png_tmp, sizeof r->png_tmp, r->dir, "loss.png.tmp"))
        return 1;
    if (check_run_dir(r->dir, o->resume, o->force))
        return 1;
    if (t->B > INT32_MAX / mp.seq_length)
        return die("config", "train_micro_batch_size_per_gpu x seq_length must fit in 32 bits");
    r->B = (int)t->B;
    r->T = (int)mp.seq_length;
    if (open_data(t, mp.vocab_size, &r->ds, &r->text_files))
        return 1;
    int64_t nb = tf_dataset_num_batches(r->ds, TF_SPLIT_VAL, r->B, r->T);
    r->val_batches = nb < 0 ? 0 : nb < t->eval_iters ? nb : t->eval_iters;
    if (r->val_batches == 0)
        warn("the validation split (%lld tokens) holds no whole batch of %d x %d tokens: no "
             "validation",
             (long long)tf_dataset_num_tokens(r->ds, TF_SPLIT_VAL), r->B, r->T + 1);
    mp.seed = (uint64_t)t->seed;
    r->base = mp;
    op.grad_accum_steps = (int32_t)t->accum;
    if (setup_model(r, mp, &op, o->resume))
        return 1;
    /* everything is ready: only now does --force remove the old run */
    if ((o->force && clear_run_dir(r->dir)) || make_dirs(r->dir) || open_logs(r, o->resume))
        return 1;
    size_t n = (size_t)r->B * (size_t)r->T;
    if (!(r->tok = malloc(n * sizeof *r->tok)) || !(r->tgt = malloc(n * sizeof *r->tgt)))
        return die("buffers", "out of memory");
    if (o->resume)
        printf("resumed from %s at step %lld\n", r->ckpt, (long long)r->step);
    else if (t->init_from)
        printf("initialised from %s\n", t->init_from);
    print_banner(r);
    return 0;
}

static int end_run(run *r, int rc)
{
    if (r->csv)
        plot_losses(r);
    if (r->csv && fclose(r->csv) != 0 && rc == 0)
        rc = die(r->csv_path, "cannot write");
    if (r->gcsv && fclose(r->gcsv) != 0 && rc == 0)
        rc = die(r->grow_path, "cannot write");
    free(r->tok);
    free(r->tgt);
    tf_optimizer_free(r->opt);
    tf_model_free(r->m);
    tf_dataset_free(r->ds);
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    int pr = parse_options(argc, argv, &o);
    if (pr)
        return pr == 1 ? 0 : 2;
    if (o.threads > 0 && tf_set_num_threads((int)o.threads) != TF_OK)
        return die("threads", tf_last_error());

    tf_config *cfg = NULL;
    if (tf_config_load(o.config, &cfg) != TF_OK)
        return die("config", tf_last_error());
    trainer t;
    memset(&t, 0, sizeof t);
    tf_model_params mp = tf_model_default_params();
    tf_optimizer_params op = tf_optimizer_default_params();
    reader rd = {cfg, NULL};
    int rc = read_keys(&rd, &t) || check_keys(cfg, &t) || declare_and_warn(cfg);
    if (!rc && (tf_config_model_params(cfg, &mp) != TF_OK ||
                tf_config_optimizer_params(cfg, &op) != TF_OK))
        rc = die("config", tf_last_error());
    if (!rc)
        rc = check_stages(&t, &mp);
    if (!rc && o.steps > t.train_iters) {
        fprintf(stderr, "train: --steps %lld is past train_iters (%lld): --steps stops early "
                        "inside the configured run; raise train_iters to train longer\n",
                (long long)o.steps, (long long)t.train_iters);
        rc = 1;
    }
    run r;
    memset(&r, 0, sizeof r);
    if (!rc) {
        /* a restarted cosine ends where the run's schedule ends; --steps stops
         * early without changing either */
        t.grow.end_step = t.train_iters;
        t.stop = o.steps > 0 ? o.steps : t.train_iters;
        r.t = &t;
        r.dir = o.out ? o.out : t.save;
        r.plot_ok = 1;
        r.plotted_step = -1;
        r.last_val_step = -1;
        r.tty = isatty(fileno(stdout));
        rc = start_run(&r, &o, mp, op);
    }
    if (!rc) {
        signal(SIGINT, on_sigint);
        rc = train_loop(&r);
        if (rc == 0 && interrupted)
            printf("\ninterrupted at step %lld: checkpoint saved to %s\n", (long long)r.step,
                   r.ckpt);
        else if (rc == 0)
            printf("%sdone: %lld steps, %.3g training FLOPs, checkpoint %s\n", r.tty ? "\n" : "",
                   (long long)r.step, r.flops, r.ckpt);
    }
    rc = end_run(&r, rc);
    if (r.plotted_step > 0 && r.plotted_step == r.step)
        printf("loss plot: %s\n", r.png_path);
    free(t.data.v);
    free(t.val.v);
    tf_config_free(cfg);
    return rc;
}
