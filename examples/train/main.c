/*
 * train (main.c) -- trains a TokenFormer from a YAML config (public API only).
 *
 *   train CONFIG.yml [--resume | --force] [--steps N] [--threads N] [--out DIR]
 *   train --help
 *
 * The config holds the official GPT-NeoX/TokenFormer keys of the model and
 * the optimizer (read by the library: tf_config_model_params,
 * tf_config_optimizer_params) and the trainer's own keys, which `train
 * --help` lists with their defaults and meanings: the KEYS table (keys.c)
 * is the one place they are written, and the list the trainer declares to
 * the library (tf_config_use_keys).  Every other key is warned about, with a
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
 *
 * This file is the run: growth stages, the model and the optimizer,
 * validation and checkpoints, the training loop and main.  train.h lists
 * the other files (the config keys, the run directory, the data, the logs,
 * the loss plot) and what they offer.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "train.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
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
    int rc = read_config(cfg, &t);
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
