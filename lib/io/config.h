/*
 * config.h -- YAML configurations (internal helpers; the API is in
 * tokenformer.h, section "Configurations").
 *
 * A tf_config owns a small tree built from the libyaml event stream:
 * mappings, sequences and scalars, each with its 1-based line.  Look-ups
 * take dotted paths ("optimizer.params.betas.1": mapping keys and sequence
 * indices) and treat '-' and '_' in keys as the same character, as GPT-NeoX
 * does ("tokenizer-type" == "tokenizer_type").
 *
 * Typing: a plain (unquoted, untagged) scalar is an integer if strtoll
 * accepts all of it, a number if strtod does (or it is .inf/.nan), a bool
 * if it is true/false/yes/no/on/off in any case, null if it is empty, "~"
 * or null/Null/NULL.  A quoted scalar (or one tagged !!str) is always a
 * string, never a number or bool.  Any non-null scalar can be read as a
 * string (its text as written).
 *
 * The top-level keys the library reads are listed next to their readers
 * (tfi_config_model_keys in config_model.c, tfi_config_optimizer_keys in
 * config_optimizer.c); a program declares its own with tf_config_use_keys;
 * every other top-level key is reported by tf_config_ignored_key()
 * (config_keys.c).  Extend a reader's table when it reads a new key.
 */
#ifndef TF_IO_CONFIG_H
#define TF_IO_CONFIG_H

#include "internal.h"

/* The name used in messages: the file path given to tf_config_load, or
 * "<string>" for tf_config_parse.  Never NULL for a valid cfg. */
const char *tfi_config_name(const tf_config *cfg);

/* 1-based line of the value at a (dotted) key, or 0 if the key is absent.
 * Records no error: meant for messages such as
 *   tfi_fail(eb, TF_ERR_CONFIG, "%s:%d: 'lr' must be > 0",
 *            tfi_config_name(cfg), tfi_config_line(cfg, "optimizer.params.lr"));
 */
int tfi_config_line(const tf_config *cfg, const char *key);

/* 1 if the key is present and its value is null (empty, "~", "null");
 * GPT-NeoX reads such a key as "use the default". */
int tfi_config_is_null(const tf_config *cfg, const char *key);

/* The config's message buffer.  Look-ups take a const tf_config (they do
 * not change the configuration) but record their failure on it, like
 * errno; every tf_config is allocated non-const, so writing through the
 * cast is well defined. */
tfi_errbuf *tfi_config_eb(const tf_config *cfg);

/* Fails with "name:line: message" (or "name: message" for line 0), on the
 * config's message buffer and tf_last_error(). */
tf_status tfi_config_fail(const tf_config *cfg, tf_status st, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An optional key: absent or null sets *found = 0 (*val untouched, NULL
 * for a string); otherwise *found = 1 and the getter's conversion, whose
 * wrong-type error names file, line and key.  A number must be finite. */
tf_status tfi_config_opt_int(const tf_config *cfg, const char *key, int64_t *val, int *found);
tf_status tfi_config_opt_double(const tf_config *cfg, const char *key, double *val, int *found);
tf_status tfi_config_opt_string(const tf_config *cfg, const char *key, const char **val,
                                int *found);

/* The top-level keys the library's readers use (NULL-terminated). */
extern const char *const tfi_config_model_keys[];
extern const char *const tfi_config_optimizer_keys[];

#endif /* TF_IO_CONFIG_H */
