/*
 * schedule.c -- the learning-rate schedule: linear warmup and a cosine to
 * min_lr (tf_optimizer_lr_at, tf_schedule_lr), and its restart at a growth
 * (TF_LR_RESTART, TF_LR_CONTINUE), resolved from the growth's recipe into
 * the optimizer's params.  The formulas are in tokenformer.h ("Optimizer");
 * the fields are checked with the other hyperparameters in optimizer.c.
 */
#include <math.h>

#include "optimizer.h"

/* ---- schedule ----------------------------------------------------------- */

/* Linear warmup to lr over `warmup` steps, then a cosine to min_lr ending
 * at step `decay` (if decay > warmup), then min_lr; 0 before step 1. */
static double warmup_cosine(double lr, double min_lr, int64_t warmup, int64_t decay, int64_t t)
{
    if (t < 1)
        return 0.0;
    if (warmup > 0 && t <= warmup)
        return lr * (double)t / (double)warmup;
    if (decay > warmup) {
        if (t >= decay)
            return min_lr;
        double progress = (double)(t - warmup) / (double)(decay - warmup);
        return min_lr + (lr - min_lr) * 0.5 * (1.0 + cos(M_PI * progress));
    }
    return lr;
}

/* The schedule with its restart (the formulas are in tokenformer.h). */
double tfi_lr_at(const tf_optimizer_params *p, int64_t t)
{
    if (p->lr_restart == TF_LR_KEEP || t <= p->lr_restart_step)
        return warmup_cosine(p->lr, p->min_lr, p->warmup_steps, p->decay_steps, t);
    const int64_t u = t - p->lr_restart_step, w = p->lr_restart_warmup_steps;
    if (p->lr_restart == TF_LR_RESTART)
        return warmup_cosine(p->lr_restart_lr, p->lr_restart_min_lr, w,
                             p->lr_restart_decay_steps, u);
    double warm = w > 0 && u < w ? (double)u / (double)w : 1.0;
    return warmup_cosine(p->lr, p->min_lr, p->warmup_steps, p->decay_steps, t) *
           p->lr_restart_factor * warm;
}

TF_API double tf_optimizer_lr_at(const tf_optimizer *opt, int64_t t)
{
    return opt ? tfi_lr_at(&opt->p, t) : 0.0;
}

TF_API double tf_schedule_lr(const tf_optimizer_params *params, int64_t t)
{
    if (!params) {
        tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_schedule_lr: params is NULL");
        return NAN;
    }
    /* the schedule's fields end with decay_steps: a struct must hold them */
    tf_optimizer_params p = tf_optimizer_default_params();
    if (tfi_params_in(&p, sizeof p, params, TFI_PARAMS_MIN(tf_optimizer_params, decay_steps),
                      "tf_schedule_lr", "tf_optimizer_params", NULL) != TF_OK)
        return NAN;
    return tfi_lr_at(&p, t);
}

/* ---- restart at a growth ------------------------------------------------ */

void tfi_optimizer_params_no_restart(tf_optimizer_params *p)
{
    const tf_optimizer_params none = tfi_optimizer_defaults();
    p->lr_restart = none.lr_restart;
    p->lr_restart_step = none.lr_restart_step;
    p->lr_restart_lr = none.lr_restart_lr;
    p->lr_restart_min_lr = none.lr_restart_min_lr;
    p->lr_restart_warmup_steps = none.lr_restart_warmup_steps;
    p->lr_restart_decay_steps = none.lr_restart_decay_steps;
    p->lr_restart_factor = none.lr_restart_factor;
}

tf_status tfi_optimizer_restart_prepare(const tf_optimizer *opt, const tf_grow_params *g,
                                        tf_optimizer_params *out, tfi_errbuf *eb)
{
    const tf_optimizer_params *base = &opt->p;
    tf_optimizer_params q = *base;
    if (g->lr_schedule != TF_LR_KEEP)
        tfi_optimizer_params_no_restart(&q);
    if (g->lr_schedule == TF_LR_RESTART) {
        /* the recipe's defaults: the optimizer's peak, a tenth of its end,
         * ending where its own schedule ends */
        double peak = g->lr > 0 ? g->lr : base->lr;
        double end = g->min_lr >= 0 ? g->min_lr : base->min_lr / 10.0;
        int64_t stop = g->end_step > 0 ? g->end_step : base->decay_steps;
        int64_t decay = g->decay_steps > 0 ? g->decay_steps : stop - opt->step;
        q.lr_restart = TF_LR_RESTART;
        q.lr_restart_step = opt->step;
        q.lr_restart_lr = peak;
        q.lr_restart_min_lr = end > peak ? peak : end;
        q.lr_restart_warmup_steps = g->warmup_steps;
        /* a cosine that would end before it starts: the peak throughout */
        q.lr_restart_decay_steps = decay > 0 ? decay : 0;
    } else if (g->lr_schedule == TF_LR_CONTINUE && (g->lr_factor != 1.0 || g->warmup_steps)) {
        /* (factor 1 without warmup is the identity: no restart) */
        q.lr_restart = TF_LR_CONTINUE;
        q.lr_restart_step = opt->step;
        q.lr_restart_warmup_steps = g->warmup_steps;
        q.lr_restart_factor = g->lr_factor;
    }
    tf_status st = tfi_optimizer_params_check(&q, eb, "the schedule restart");
    if (st == TF_OK)
        *out = q;
    return st;
}
