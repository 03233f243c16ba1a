/*
 * model_io.h -- checkpoints, as the files that write and read them share
 * them (internal): model_io.c drives saving and loading, model_open.c
 * opening a model to run it; model_meta.c knows the configuration in the
 * metadata; optimizer_io.c the optimizer's step and moments.  The bytes
 * are io/safetensors' business.
 *
 * Layout of a checkpoint:
 *   tensors   every model tensor under its SPEC name (F32; F16 and BF16
 *             load too, and files with the official names);
 *             optimizer.exp_avg.<name>, optimizer.exp_avg_sq.<name> when
 *             an optimizer is saved with the model
 *   metadata  format = tokenformer-checkpoint-1, the configuration under
 *             the official YAML key names, each set's tau and scale policy
 *             (pattention.<prefix>.tau / .scale_policy), optimizer.step;
 *             the state a growth left running, where there is some
 *             (growth_io.c)
 */
#ifndef TF_MODEL_IO_H
#define TF_MODEL_IO_H

#include "io/safetensors.h"
#include "optimizer.h"

#define TFI_CHECKPOINT_FORMAT "tokenformer-checkpoint-1"

/* ---- model_io.c ---- */

/* Loads f into m (and opt's state, if opt is not NULL and f has it): every
 * tensor and the metadata checked first (message on m), then copied.  For
 * a file in memory (tfi_st_open) the copy cannot fail, so an error leaves
 * m and opt unchanged; from a header-only file (tfi_st_open_header) a
 * read error can leave m partly filled, to be discarded. */
tf_status tfi_model_load_from(tf_model *m, tf_optimizer *opt, const tfi_st_file *f);

/* The official GPT-NeoX name of a SPEC tensor name in a model of num_layers
 * layers: embed.weight is sequential.0.word_embeddings.weight, layers.{i}.*
 * sequential.{i+2}.*, final_norm.* sequential.{L+3}.norm.*. */
void tfi_official_name(int num_layers, const char *name, char *out, size_t len);
/* Whether f names its tensors the official way (any sequential.*). */
int tfi_file_official_names(const tfi_st_file *f);
/* The tensor of SPEC name `name` (a model of num_layers layers) in f, under
 * the naming f uses (official: tfi_file_official_names(f)), else under the
 * other one; NULL if absent. */
const tfi_st_tensor *tfi_file_tensor(const tfi_st_file *f, int official, int num_layers,
                                     const char *name);
/* The same tensor, which must be there as F32, F16 or BF16 of shape
 * [rows, cols] ([rows] for cols == 0): TF_ERR_FORMAT naming it as the file
 * would (and its SPEC name) if absent, tfi_st_find_f32's errors (in the
 * file's name) otherwise. */
tf_status tfi_file_expect(const tfi_st_file *f, int official, int num_layers, const char *name,
                          int64_t rows, int64_t cols, const tfi_st_tensor **found,
                          tfi_errbuf *eb);

/* ---- model_meta.c ---- */

/* Adds the format tag, the configuration and every set's scale to w.
 * TF_ERR_NOMEM. */
tf_status tfi_model_meta_write(tfi_st_writer *w, const tf_model *m);

/* Model configuration from a file's metadata (checkpoints and the
 * fixtures use the official YAML key names).  TF_ERR_FORMAT naming the file
 * and the key if one is missing or malformed. */
tf_status tfi_params_from_metadata(const tfi_st_file *f, tf_model_params *p);
/* Whether f holds a vision model (metadata task "vision"; a file without a
 * task holds a language model). */
int tfi_meta_is_vision(const tfi_st_file *f);
/* A vision file's configuration: *vp from the metadata, checked, with the
 * layer fields of p (tfi_params_from_metadata's).  TF_ERR_FORMAT naming
 * the key. */
tf_status tfi_vision_params_from_metadata(const tfi_st_file *f, const tf_model_params *p,
                                          tf_vision_params *vp);

/* A set's tau and scale policy as recorded in a file (absent in fixtures
 * and official files: then the model's own stay). */
typedef struct tfi_set_scale {
    int present;
    double tau;
    tf_scale_policy policy;
} tfi_set_scale;

/* out[i] for each of the model's sets; TF_ERR_FORMAT naming the key. */
tf_status tfi_model_meta_scales(const tf_model *m, const tfi_st_file *f, tfi_set_scale *out,
                                tfi_errbuf *eb);

/* A whole decimal int64 (1) or not (0). */
int tfi_parse_i64(const char *s, int64_t *out);

/* Metadata values: a formatted one added to w (TF_ERR_NOMEM); an integer
 * or a number read from f, absent leaving *out as it is (unless required:
 * then TF_ERR_FORMAT saying the file is no checkpoint).  The readers
 * report to the thread's last error only. */
tf_status tfi_meta_fmt(tfi_st_writer *w, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
tf_status tfi_meta_int(const tfi_st_file *f, const char *key, int required, int64_t *out);
tf_status tfi_meta_double(const tfi_st_file *f, const char *key, double *out);

/* ---- growth_io.c ---- */

/* Adds the tau ramps of m's sets and opt's schedule restart and moments
 * origin (opt may be NULL) to w, only where there are some. */
tf_status tfi_growth_meta_write(tfi_st_writer *w, const tf_model *m, const tf_optimizer *opt);

/* out[i], the tau ramp recorded for each of m's sets (none where the file
 * records none).  TF_ERR_FORMAT naming the set. */
tf_status tfi_growth_meta_ramps(const tf_model *m, const tfi_st_file *f, tfi_tau_ramp *out,
                                tfi_errbuf *eb);

/* opt's params with the file's schedule restart (none if it records none)
 * into *p, and in *moments_origin the step count of the last reset of the
 * moments, checked against the file's step count `step`. */
tf_status tfi_growth_meta_restart(const tfi_st_file *f, const tf_optimizer *opt, int64_t step,
                                  tf_optimizer_params *p, int64_t *moments_origin,
                                  tfi_errbuf *eb);

/* ---- optimizer_io.c ---- */

/* Adds opt's step and moments to w (they must stay valid until written). */
tf_status tfi_optimizer_write(tfi_st_writer *w, const tf_optimizer *opt);

/* The file's optimizer.step in *step, -1 if it has none; TF_ERR_FORMAT if
 * it is not a step count in [0, TFI_MAX_STEPS]. */
tf_status tfi_optimizer_meta_step(const tfi_st_file *f, int64_t *step, tfi_errbuf *eb);

/* Finds opt's state in f and checks it, changing nothing: *found = 0 if
 * the file has none (no optimizer.step); else src[2i], src[2i + 1] (the
 * caller's array of 2 * opt->nslots) are slot i's moments and *step the
 * step count.  TF_ERR_FORMAT / TF_ERR_SHAPE naming the file and tensor. */
tf_status tfi_optimizer_state_check(const tf_optimizer *opt, const tfi_st_file *f,
                                    const tfi_st_tensor **src, int64_t *step, int *found,
                                    tfi_errbuf *eb);
/* Copies a checked state into opt; f must be held in memory (tfi_st_open):
 * then it cannot fail. */
void tfi_optimizer_state_read(tf_optimizer *opt, const tfi_st_file *f,
                              const tfi_st_tensor *const *src, int64_t step);

#endif /* TF_MODEL_IO_H */
