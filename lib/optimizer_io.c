/*
 * optimizer_io.c -- an optimizer's state in a checkpoint: the step count
 * (metadata optimizer.step) and the moments of every tensor
 * (optimizer.exp_avg.<name>, optimizer.exp_avg_sq.<name>), added on save,
 * checked and then copied on load (model_io.h).
 */
#include <stdio.h>
#include <string.h>

#include "model_io.h"

static const char *const moment_names[2] = {"exp_avg", "exp_avg_sq"};

tf_status tfi_optimizer_write(tfi_st_writer *w, const tf_optimizer *opt)
{
    char buf[160];
    snprintf(buf, sizeof buf, "%lld", (long long)opt->step);
    tf_status st = tfi_st_writer_meta(w, "optimizer.step", buf);
    for (int i = 0; i < opt->nslots && st == TF_OK; i++) {
        const tfi_opt_slot *s = &opt->slots[i];
        int64_t shape[2] = {s->rows, s->cols};
        for (int which = 0; which < 2 && st == TF_OK; which++) {
            snprintf(buf, sizeof buf, "optimizer.%s.%s", moment_names[which], s->name);
            st = tfi_st_writer_add(w, buf, TFI_ST_F32, s->cols ? 2 : 1, shape,
                                   which ? s->v : s->m);
        }
    }
    return st;
}

tf_status tfi_optimizer_meta_step(const tfi_st_file *f, int64_t *step, tfi_errbuf *eb)
{
    const char *text = tfi_st_meta(f, "optimizer.step");
    *step = -1;
    if (!text)
        return TF_OK;
    if (!tfi_parse_i64(text, step) || *step < 0 || *step > TFI_MAX_STEPS) {
        *step = -1;
        return tfi_fail(eb, TF_ERR_FORMAT,
                        "%s: metadata optimizer.step ('%.32s') is not a step count in [0, %lld]",
                        f->name, text, (long long)TFI_MAX_STEPS);
    }
    return TF_OK;
}

tf_status tfi_optimizer_state_check(const tf_optimizer *opt, const tfi_st_file *f,
                                    const tfi_st_tensor **src, int64_t *step, int *found,
                                    tfi_errbuf *eb)
{
    tf_status st = tfi_optimizer_meta_step(f, step, eb);
    *found = *step >= 0;
    if (st != TF_OK || !*found)
        return st;
    for (int i = 0; i < opt->nslots; i++) {
        const tfi_opt_slot *s = &opt->slots[i];
        for (int which = 0; which < 2; which++) {
            char name[160];
            snprintf(name, sizeof name, "optimizer.%s.%s", moment_names[which], s->name);
            const tfi_st_tensor **t = &src[2 * i + which];
            st = tfi_st_find_f32(f, name, s->rows, s->cols, t, eb);
            if (st != TF_OK)
                return st;
            if (!*t)
                return tfi_fail(eb, TF_ERR_FORMAT, "%s: optimizer state lacks '%s'", f->name,
                                name);
        }
    }
    return TF_OK;
}

void tfi_optimizer_state_read(tf_optimizer *opt, const tfi_st_file *f,
                              const tfi_st_tensor *const *src, int64_t step)
{
    /* f is held in memory (tf_model_load): the copies cannot fail */
    for (int i = 0; i < opt->nslots; i++) {
        (void)tfi_st_copy_f32(f, src[2 * i], opt->slots[i].m, NULL);
        (void)tfi_st_copy_f32(f, src[2 * i + 1], opt->slots[i].v, NULL);
    }
    opt->step = step;
}
