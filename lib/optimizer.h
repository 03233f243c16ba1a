/*
 * optimizer.h -- AdamW state as the rest of the library sees it (internal):
 * checkpoints save and restore it, growth resizes it, the schedule
 * (schedule.c) reads its params.
 */
#ifndef TF_OPTIMIZER_H
#define TF_OPTIMIZER_H

#include "model.h"

/* Moments of one model tensor; same name, shape and order as the model's
 * tensor table (tf_model_tensor_name). */
typedef struct tfi_opt_slot {
    char name[96];
    float *m, *v;
    int64_t rows, cols; /* as the tensor: cols == 0 for 1-D */
} tfi_opt_slot;

struct tf_optimizer {
    tfi_errbuf err;
    tf_model *model; /* bound model (borrowed) */
    tf_optimizer_params p;
    int64_t step;    /* completed steps */
    int64_t moments_origin; /* the step count when the moments were last
                               reset (0: never): bias correction counts
                               from there */
    tfi_opt_slot *slots;
    int nslots;
};

/* Brings the moments in line with the model's tensors after the model grew:
 * old rows keep their moments, new rows start at zero, the step count is
 * kept.  All allocation happens before anything is replaced, so a failure
 * (TF_ERR_NOMEM) leaves the optimizer as it was. */
tf_status tfi_optimizer_follow_model(tf_optimizer *opt);

/* The params' defaults (tf_optimizer_params_init's). */
tf_optimizer_params tfi_optimizer_defaults(void);

/* The learning rate at step t under p's schedule and its restart
 * (schedule.c; the formulas are in tokenformer.h). */
double tfi_lr_at(const tf_optimizer_params *p, int64_t t);

/* Checks a params struct (the restart fields included). */
tf_status tfi_optimizer_params_check(const tf_optimizer_params *p, tfi_errbuf *eb,
                                     const char *fn);

/* Sets p's restart fields to "no restart" (TF_LR_KEEP and the defaults);
 * schedule.c. */
void tfi_optimizer_params_no_restart(tf_optimizer_params *p);

/* The params the optimizer will have after a growth per g at its current
 * step count (the schedule restart resolved against its hyperparameters),
 * checked; the optimizer is unchanged (schedule.c).  Then tfi_optimizer_restart_commit
 * installs them and resets the moments if g asks: it cannot fail, so a
 * growth can call it after its own last fallible step. */
tf_status tfi_optimizer_restart_prepare(const tf_optimizer *opt, const tf_grow_params *g,
                                        tf_optimizer_params *out, tfi_errbuf *eb);
void tfi_optimizer_restart_commit(tf_optimizer *opt, const tf_optimizer_params *p, int reset);

/* The slot of a tensor name, or NULL. */
tfi_opt_slot *tfi_optimizer_find(const tf_optimizer *opt, const char *name);

#endif /* TF_OPTIMIZER_H */
