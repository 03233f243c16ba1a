/*
 * safetensors_parse.h -- what the files of the safetensors reader share
 * (internal): the parse context, its messages, the raw key scan of
 * safetensors_keys.c and the entries of safetensors_entries.c.
 */
#ifndef TF_IO_SAFETENSORS_PARSE_H
#define TF_IO_SAFETENSORS_PARSE_H

#include <json-c/json.h>

#include "io/safetensors.h"

typedef struct tfi_st_parse {
    tfi_st_file *f;
    tfi_errbuf *eb;
    const char *header; /* not NUL-terminated */
    size_t header_len;
    size_t data_size;   /* bytes after the header */
} tfi_st_parse;

/* "<file>: <detail>" as TF_ERR_FORMAT. */
tf_status tfi_st_fail_file(tfi_st_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "<file>: tensor '<name>': <detail>" as TF_ERR_FORMAT. */
tf_status tfi_st_fail_tensor(tfi_st_parse *p, const char *tensor, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "<file>: out of memory while reading the header" as TF_ERR_NOMEM. */
tf_status tfi_st_fail_nomem(tfi_st_parse *p);

/* The header's raw text, which json-c already accepted, scanned for what
 * json-c hides: bytes that are not UTF-8, repeated keys (it keeps the
 * last), and bytes after the JSON other than space padding.
 * TF_ERR_FORMAT naming the key or byte. */
tf_status tfi_st_check_raw_header(tfi_st_parse *p);

/* The entries of the root object json-c parsed, into p->f's tensor and
 * metadata tables, validated (safetensors_entries.c). */
tf_status tfi_st_parse_entries(tfi_st_parse *p, json_object *root);

#endif /* TF_IO_SAFETENSORS_PARSE_H */
