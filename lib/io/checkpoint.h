/* checkpoint.h -- what other library files need from checkpoint.c. */
#ifndef TF_IO_CHECKPOINT_H
#define TF_IO_CHECKPOINT_H

#include "io/safetensors.h"

/* Model configuration from a file's __metadata__ (checkpoints and the
 * fixtures use the official YAML key names).  TF_ERR_FORMAT naming the key
 * if one is missing or malformed. */
tf_status tfi_params_from_metadata(const tfi_st_file *f, tf_model_params *p);

#endif
