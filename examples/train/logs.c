/*
 * logs.c -- the run's logs: log.csv (a row a step), growth.csv (the
 * validation loss around each growth), trimmed on resume to the
 * checkpoint's step, and the progress line on stdout.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"

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
int open_logs(run *r, int resume)
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
int flush_logs(run *r)
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
void log_step(run *r, double loss, double loss_ema, double tps, double val, double eta_s)
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
