/*
 * growth_io.c -- the state a growth leaves running, in a checkpoint's
 * metadata, so that a resumed run continues it exactly (model_io.h).
 * Written only where there is some, so a checkpoint without growth state
 * is the file it was before:
 *   pattention.<prefix>.tau_ramp_{from,to,start,steps}   a set's tau ramp
 *   optimizer.moments_origin     step count of the last reset of the moments
 *   optimizer.lr_restart         restart | continue, with
 *   optimizer.lr_restart_{step,lr,min_lr,warmup_steps,decay_steps,factor}
 */
#include <stdio.h>
#include <string.h>

#include "model_io.h"

static const char *restart_name(tf_lr_restart r)
{
    return r == TF_LR_RESTART ? "restart" : r == TF_LR_CONTINUE ? "continue" : "keep";
}

tf_status tfi_growth_meta_write(tfi_st_writer *w, const tf_model *m, const tf_optimizer *opt)
{
    tf_status st = TF_OK;
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++) {
        const tfi_tau_ramp *r = &m->sets[i].ramp;
        if (r->steps == 0)
            continue;
        char prefix[96], key[160];
        tfi_set_prefix(i, prefix, sizeof prefix);
        snprintf(key, sizeof key, "pattention.%s.tau_ramp_from", prefix);
        st |= tfi_meta_fmt(w, key, "%.17g", r->from);
        snprintf(key, sizeof key, "pattention.%s.tau_ramp_to", prefix);
        st |= tfi_meta_fmt(w, key, "%.17g", r->to);
        snprintf(key, sizeof key, "pattention.%s.tau_ramp_start", prefix);
        st |= tfi_meta_fmt(w, key, "%lld", (long long)r->start);
        snprintf(key, sizeof key, "pattention.%s.tau_ramp_steps", prefix);
        st |= tfi_meta_fmt(w, key, "%lld", (long long)r->steps);
    }
    if (opt && opt->moments_origin != 0)
        st |= tfi_meta_fmt(w, "optimizer.moments_origin", "%lld", (long long)opt->moments_origin);
    if (opt && opt->p.lr_restart != TF_LR_KEEP) {
        const tf_optimizer_params *p = &opt->p;
        st |= tfi_st_writer_meta(w, "optimizer.lr_restart", restart_name(p->lr_restart));
        st |= tfi_meta_fmt(w, "optimizer.lr_restart_step", "%lld", (long long)p->lr_restart_step);
        st |= tfi_meta_fmt(w, "optimizer.lr_restart_lr", "%.17g", p->lr_restart_lr);
        st |= tfi_meta_fmt(w, "optimizer.lr_restart_min_lr", "%.17g", p->lr_restart_min_lr);
        st |= tfi_meta_fmt(w, "optimizer.lr_restart_warmup_steps", "%lld",
                           (long long)p->lr_restart_warmup_steps);
        st |= tfi_meta_fmt(w, "optimizer.lr_restart_decay_steps", "%lld",
                           (long long)p->lr_restart_decay_steps);
        st |= tfi_meta_fmt(w, "optimizer.lr_restart_factor", "%.17g", p->lr_restart_factor);
    }
    return st == TF_OK ? TF_OK : TF_ERR_NOMEM;
}

/* The tau ramp of the set `prefix` if the file records one (else none). */
static tf_status read_ramp(const tfi_st_file *f, const char *prefix, tfi_tau_ramp *out,
                           tfi_errbuf *eb)
{
    char key[160];
    tfi_tau_ramp r = {0};
    *out = r;
    snprintf(key, sizeof key, "pattention.%s.tau_ramp_steps", prefix);
    if (!tfi_st_meta(f, key))
        return TF_OK;
    tf_status st = tfi_meta_int(f, key, 0, &r.steps);
    snprintf(key, sizeof key, "pattention.%s.tau_ramp_start", prefix);
    if (st == TF_OK)
        st = tfi_meta_int(f, key, 0, &r.start);
    snprintf(key, sizeof key, "pattention.%s.tau_ramp_from", prefix);
    if (st == TF_OK)
        st = tfi_meta_double(f, key, &r.from);
    snprintf(key, sizeof key, "pattention.%s.tau_ramp_to", prefix);
    if (st == TF_OK)
        st = tfi_meta_double(f, key, &r.to);
    if (st != TF_OK)
        return tfi_fail(eb, st, "%s", tf_last_error());
    if (r.steps == 0 || !tfi_tau_ramp_valid(&r))
        return tfi_fail(eb, TF_ERR_FORMAT,
                        "%s: the tau ramp of '%s' (from %g to %g over %lld steps from step "
                        "%lld) is incomplete or invalid", f->name, prefix, r.from, r.to,
                        (long long)r.steps, (long long)r.start);
    *out = r;
    return TF_OK;
}

tf_status tfi_growth_meta_ramps(const tf_model *m, const tfi_st_file *f, tfi_tau_ramp *out,
                                tfi_errbuf *eb)
{
    for (int i = 0; i < m->p.num_layers * TFI_SETS_PER_LAYER; i++) {
        char prefix[96];
        tfi_set_prefix(i, prefix, sizeof prefix);
        tf_status st = read_ramp(f, prefix, &out[i], eb);
        if (st != TF_OK)
            return st;
    }
    return TF_OK;
}

tf_status tfi_growth_meta_restart(const tfi_st_file *f, const tf_optimizer *opt, int64_t step,
                                  tf_optimizer_params *p, int64_t *moments_origin,
                                  tfi_errbuf *eb)
{
    *p = opt->p;
    tfi_optimizer_params_no_restart(p);
    *moments_origin = 0;
    tf_status st = tfi_meta_int(f, "optimizer.moments_origin", 0, moments_origin);
    if (st != TF_OK)
        return tfi_fail(eb, st, "%s", tf_last_error());
    if (*moments_origin < 0 || *moments_origin > step)
        return tfi_fail(eb, TF_ERR_FORMAT,
                        "%s: metadata optimizer.moments_origin (%lld) is not in [0, "
                        "optimizer.step = %lld]", f->name, (long long)*moments_origin,
                        (long long)step);
    const char *kind = tfi_st_meta(f, "optimizer.lr_restart");
    if (!kind)
        return TF_OK;
    if (strcmp(kind, "restart") == 0)
        p->lr_restart = TF_LR_RESTART;
    else if (strcmp(kind, "continue") == 0)
        p->lr_restart = TF_LR_CONTINUE;
    else
        return tfi_fail(eb, TF_ERR_FORMAT,
                        "%s: metadata optimizer.lr_restart = '%.32s' is not restart or continue",
                        f->name, kind);
    if ((st = tfi_meta_int(f, "optimizer.lr_restart_step", 0, &p->lr_restart_step)) ||
        (st = tfi_meta_double(f, "optimizer.lr_restart_lr", &p->lr_restart_lr)) ||
        (st = tfi_meta_double(f, "optimizer.lr_restart_min_lr", &p->lr_restart_min_lr)) ||
        (st = tfi_meta_int(f, "optimizer.lr_restart_warmup_steps", 0,
                           &p->lr_restart_warmup_steps)) ||
        (st = tfi_meta_int(f, "optimizer.lr_restart_decay_steps", 0,
                           &p->lr_restart_decay_steps)) ||
        (st = tfi_meta_double(f, "optimizer.lr_restart_factor", &p->lr_restart_factor)))
        return tfi_fail(eb, st, "%s", tf_last_error());
    if (tfi_optimizer_params_check(p, eb, "the checkpoint's schedule restart") != TF_OK)
        return tfi_fail(eb, TF_ERR_FORMAT, "%s: %s", f->name, eb ? eb->msg : tf_last_error());
    return TF_OK;
}
