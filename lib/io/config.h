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
 * The top-level keys that the library and its trainer use are listed in ONE
 * table, tfc_used_keys in config.c; every other top-level key is reported
 * by tf_config_ignored_key().  Extend that table when a new key is read.
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

#endif /* TF_IO_CONFIG_H */
