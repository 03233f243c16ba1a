/*
 * keys.c -- the trainer's config keys: the KEYS table (the one place they
 * are written), reading and checking them, declaring them to the library
 * with warnings about every other key, and `train --help`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"

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
int check_stages(trainer *t, const tf_model_params *mp)
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

/* The whole of reading a config for main (see train.h). */
int read_config(tf_config *cfg, trainer *t)
{
    reader rd = {cfg, NULL};
    return read_keys(&rd, t) || check_keys(cfg, t) || declare_and_warn(cfg);
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

void usage(FILE *f)
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

int help(void)
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
