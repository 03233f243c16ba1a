/*
 * optimizer.h -- AdamW state as the rest of the library sees it (internal):
 * checkpoints save and restore it, growth resizes it.
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
    tfi_opt_slot *slots;
    int nslots;
};

/* Brings the moments in line with the model's tensors after the model grew:
 * old rows keep their moments, new rows start at zero, the step count is
 * kept.  All allocation happens before anything is replaced, so a failure
 * (TF_ERR_NOMEM) leaves the optimizer as it was. */
tf_status tfi_optimizer_follow_model(tf_optimizer *opt);

/* The slot of a tensor name, or NULL. */
tfi_opt_slot *tfi_optimizer_find(const tf_optimizer *opt, const char *name);

#endif /* TF_OPTIMIZER_H */
