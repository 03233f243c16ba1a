/*
 * rundir.c -- the run directory: the guard that refuses to train over a
 * run without --resume or --force, --force's clearing, and creating it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train.h"

/* The files of a run.  The first RUN_MARKERS make a directory hold a run;
 * --force removes them all. */
static const char *const RUN_FILES[] = {"checkpoint.safetensors", "log.csv", "growth.csv",
                                        "loss.png"};
#define RUN_MARKERS 3
#define NRUN_FILES (sizeof RUN_FILES / sizeof RUN_FILES[0])

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
int check_run_dir(const char *dir, int resume, int force)
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
int clear_run_dir(const char *dir)
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
int make_dirs(const char *dir)
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
