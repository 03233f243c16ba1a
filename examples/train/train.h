/*
 * train.h -- what the trainer's files share: its configuration (trainer),
 * the state of a run (run), and the functions each file offers the others.
 * The trainer is examples/train/: main.c (the run: growth stages, model and
 * optimizer, validation, checkpoints, the training loop, main), keys.c (the
 * config keys and --help), rundir.c (the run directory), data.c (the
 * datasets), logs.c (log.csv, growth.csv, the progress line), plot.c
 * (loss.png) and util.c (messages, paths, the clock).
 */
#ifndef TF_EXAMPLES_TRAIN_H
#define TF_EXAMPLES_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tokenformer.h"

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

/* The trainer's configuration: its keys (keys.c), read once and then fixed. */
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

/* The state of a run: the model, the optimizer, the data, the step, the
 * logs and the paths of the run directory's files. */
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

/* ---- util.c ---------------------------------------------------------------- */

/* Seconds on a monotonic clock. */
double now(void);
/* Prints "train: what: msg" on stderr; returns 1 (an exit status). */
int die(const char *what, const char *msg);
/* Prints "train: warning: ..." on stderr. */
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* dir/name into buf; -1 (with a message) if it does not fit. */
int join(char *buf, size_t size, const char *dir, const char *name);
/* Whether path exists (a dangling symlink does). */
int exists(const char *path);
/* 8055, 12.3K, 15.0M, 2.10G */
void fmt_count(int64_t n, char *buf, size_t size);

/* ---- keys.c: the config keys --------------------------------------------- */

/* Reads the trainer's keys from cfg into t and checks them, then declares
 * them (and the official keys the trainer ignores) to the library and warns
 * about every other key.  0, else 1 with a message. */
int read_config(tf_config *cfg, trainer *t);
/* Checks the growth stages against the model's starting size, filling in
 * the slot numbers a stage leaves at 0 ("as before"). */
int check_stages(trainer *t, const tf_model_params *mp);
/* The usage line. */
void usage(FILE *f);
/* Prints --help: the options and every key with its default; 0, else 1. */
int help(void);

/* ---- rundir.c: the run directory ------------------------------------------- */

/* Refuses a directory that holds a run, unless it is resumed or forced. */
int check_run_dir(const char *dir, int resume, int force);
/* --force: removes the run files of dir, saying which. */
int clear_run_dir(const char *dir);
/* mkdir -p. */
int make_dirs(const char *dir);

/* ---- data.c: the datasets ------------------------------------------------ */

/* Opens data_path and val_path.  *text_files: the number of text files read
 * from a directory of text, else 0. */
int open_data(const trainer *t, int64_t vocab, tf_dataset **out, int64_t *text_files);
/* "3 files (llmc v7, uint32 ids) 15.0M tokens": what was read for a split. */
void describe_split(const tf_dataset *ds, tf_split split, int64_t text_files, char *buf,
                    size_t size);

/* ---- logs.c: log.csv, growth.csv and the progress line ----------------------- */

/* Opens log.csv (and growth.csv with growth stages): new, or appended to
 * after the rows past the checkpoint are dropped. */
int open_logs(run *r, int resume);
/* Flushes the logs; a write error (a full disk) is an error. */
int flush_logs(run *r);
/* One row of log.csv and the progress line (val: NaN when not validated). */
void log_step(run *r, double loss, double loss_ema, double tps, double val, double eta_s);

/* ---- plot.c: loss.png ------------------------------------------------------ */

/* Redraws loss.png from log.csv; never fatal (a failure warns once and
 * stops the plotting for this run). */
void plot_losses(run *r);

#endif
