/*
 * dataset.c -- the dataset handle: token streams for training from one
 * file, a set of files or the caller's tokens, in a training and a
 * validation split; its parameters, opening, splits and resident sources.
 * Reading a token file is token_files.c's job, expanding a pattern into
 * files dataset_paths.c's, and the batches dataset_batch.c's.
 *
 * Sources and pieces: a dataset is a list of sources (files, or tokens the
 * caller had in memory), and each split is a list of pieces, runs of tokens
 * of one source.  Given validation files, the training split is the
 * training files whole and the validation split the validation files;
 * otherwise the last val_fraction of the training tokens (in file order) is
 * the validation split, as it always was for a single file.
 *
 * Storage and streaming: ids are kept as uint16 when vocab_size <= 65536
 * (every valid id fits), else as int32.  Opening reads every file's header
 * and checks its size; a source's ids are read whole when a batch first
 * needs them.  At most max_resident sources are held at once (the least
 * recently used goes first), so memory is bounded by the largest files
 * whatever the number of shards.  A dataset of at most max_resident files
 * reads them all when it is opened, so that their errors show there.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "io/dataset_internal.h"

/* ids are int32: a larger vocabulary could not be represented. */
#define MAX_VOCAB ((int64_t)INT32_MAX + 1)

/* ---- parameters and names ------------------------------------------------- */

tf_dataset_params tfi_dataset_defaults(void)
{
    tf_dataset_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.format = TF_DATA_AUTO;
    p.vocab_size = 0; /* no default: the model's vocabulary must be given */
    p.val_fraction = 0.0;
    p.max_resident = 2;
    return p;
}

TF_API void tf_dataset_params_init(tf_dataset_params *p, size_t size)
{
    tf_dataset_params d = tfi_dataset_defaults();
    tfi_params_init(p, size, &d, sizeof d);
}

/* The caller's params over the defaults: fields beyond its struct_size (an
 * older caller) keep their defaults. */
tf_status tfi_dataset_params_in(const char *fn, const tf_dataset_params *src,
                                tf_dataset_params *dst)
{
    *dst = tfi_dataset_defaults();
    if (!src)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: params is NULL", fn);
    return tfi_params_in(dst, sizeof *dst, src, TFI_PARAMS_MIN(tf_dataset_params, max_resident),
                         fn, "tf_dataset_params", NULL);
}

TF_API const char *tf_data_format_name(tf_data_format format)
{
    switch (format) {
    case TF_DATA_AUTO: return "auto";
    case TF_DATA_BYTES: return "bytes";
    case TF_DATA_U16: return "u16";
    case TF_DATA_LLMC: return "llmc";
    }
    return NULL;
}

static tf_status check_common(const char *fn, tf_data_format format, int64_t vocab_size,
                              double val_fraction)
{
    if (!tf_data_format_name(format))
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: unknown format %d", fn, (int)format);
    if (vocab_size < 1 || vocab_size > MAX_VOCAB)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: vocab_size %lld is outside [1, %lld]", fn,
                        (long long)vocab_size, (long long)MAX_VOCAB);
    if (!(val_fraction >= 0.0 && val_fraction < 1.0)) /* also refuses NaN */
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: val_fraction %g is outside [0, 1)", fn,
                        val_fraction);
    return TF_OK;
}

/* ---- the handle ------------------------------------------------------------- */

static tf_dataset *dataset_alloc(const char *fn, int64_t nsrc, int64_t vocab_size,
                                 int max_resident)
{
    tf_dataset *ds = calloc(1, sizeof *ds);
    source *src = calloc((size_t)nsrc, sizeof *src);
    if (!ds || !src || pthread_mutex_init(&ds->lock, NULL) != 0) {
        free(ds);
        free(src);
        tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    ds->src = src;
    ds->nsrc = nsrc;
    ds->vocab_size = vocab_size;
    ds->wide = vocab_size > 65536;
    ds->max_resident = max_resident;
    return ds;
}

TF_API void tf_dataset_free(tf_dataset *ds)
{
    if (!ds)
        return;
    for (int64_t i = 0; i < ds->nsrc; i++) {
        free(ds->src[i].path);
        free(ds->src[i].ids);
    }
    for (int k = 0; k < 2; k++) {
        free(ds->split[k].pieces);
        free(ds->split[k].order);
    }
    free(ds->src);
    pthread_mutex_destroy(&ds->lock);
    free(ds);
}

TF_API const char *tf_dataset_errmsg(const tf_dataset *ds)
{
    return ds ? ds->err.msg : "the dataset is NULL";
}

/* Allocates the (uninitialised) id array of a source. */
tf_status tfi_dataset_ids_alloc(const tf_dataset *ds, const source *s, void **out,
                                tfi_errbuf *eb)
{
    size_t idsize = ds->wide ? sizeof(int32_t) : sizeof(uint16_t);
    size_t bytes = (uint64_t)s->count > SIZE_MAX / idsize ? 0 : (size_t)s->count * idsize;
    *out = bytes ? malloc(bytes) : NULL;
    if (!*out)
        return tfi_fail(eb, TF_ERR_NOMEM, "%s: out of memory for %lld tokens (%lld bytes)",
                        s->path ? s->path : "tokens", (long long)s->count,
                        (long long)s->count * (long long)idsize);
    return TF_OK;
}

/* ---- the splits ---------------------------------------------------------- */

static tf_status split_add(split_set *sp, int64_t src, int64_t begin, int64_t count)
{
    if (count <= 0)
        return TF_OK;
    piece *p = realloc(sp->pieces, (size_t)(sp->npieces + 1) * sizeof *p);
    if (!p)
        return TF_ERR_NOMEM;
    sp->pieces = p;
    p[sp->npieces++] = (piece){src, begin, count};
    sp->ntok += count;
    return TF_OK;
}

/* Training files [0, n_train); validation files after them, or else the
 * tail of the training tokens. */
static tf_status build_splits(const char *fn, tf_dataset *ds, int64_t n_train, double val_fraction)
{
    split_set *train = &ds->split[TF_SPLIT_TRAIN], *val = &ds->split[TF_SPLIT_VAL];
    tf_status st = TF_OK;
    if (n_train < ds->nsrc) {
        for (int64_t i = 0; i < ds->nsrc && st == TF_OK; i++)
            st = split_add(i < n_train ? train : val, i, 0, ds->src[i].count);
    } else {
        int64_t total = 0;
        for (int64_t i = 0; i < ds->nsrc; i++)
            total += ds->src[i].count;
        int64_t n_val = (int64_t)floor((double)total * val_fraction);
        if (n_val < 0)
            n_val = 0;
        if (n_val > total - 1) /* val_fraction < 1: rounding must not empty train */
            n_val = total - 1;
        int64_t train_left = total - n_val;
        for (int64_t i = 0; i < ds->nsrc && st == TF_OK; i++) {
            int64_t c = ds->src[i].count;
            int64_t head = c < train_left ? c : train_left;
            train_left -= head;
            st = split_add(train, i, 0, head);
            if (st == TF_OK)
                st = split_add(val, i, head, c - head);
        }
    }
    for (int k = 0; k < 2 && st == TF_OK; k++) {
        split_set *sp = &ds->split[k];
        if (sp->npieces && !(sp->order = malloc((size_t)sp->npieces * sizeof *sp->order)))
            st = TF_ERR_NOMEM;
    }
    return st == TF_OK ? TF_OK : tfi_fail(NULL, st, "%s: out of memory", fn);
}

/* ---- opening ---------------------------------------------------------------- */

/* Sources [0, n_train) are the training files, the n_val after them the
 * validation files.  Every file is opened and inspected here; when all of
 * them fit in max_resident their ids are read too. */
tf_status tfi_dataset_open_paths(const char *fn, const char *const *train, size_t n_train,
                                 const char *const *val, size_t n_val,
                                 const tf_dataset_params *p, tf_dataset **out)
{
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!train || n_train == 0)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: no training files", fn);
    if (n_val > 0 && !val)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: val_paths is NULL", fn);
    if (n_train > (size_t)INT32_MAX || n_val > (size_t)INT32_MAX)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: too many files", fn);
    for (size_t i = 0; i < n_train + n_val; i++)
        if (!(i < n_train ? train[i] : val[i - n_train]))
            return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: %s path %zu is NULL", fn,
                            i < n_train ? "training" : "validation",
                            i < n_train ? i : i - n_train);
    tf_status st = check_common(fn, p->format, p->vocab_size, p->val_fraction);
    if (st != TF_OK)
        return st;
    if (n_val > 0 && p->val_fraction != 0.0)
        return tfi_fail(NULL, TF_ERR_ARGUMENT,
                        "%s: val_fraction is %g but validation files are given: one or the "
                        "other", fn, p->val_fraction);
    if (p->max_resident < 1)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: max_resident is %d, must be >= 1", fn,
                        p->max_resident);

    const int64_t nsrc = (int64_t)(n_train + n_val);
    tf_dataset *ds = dataset_alloc(fn, nsrc, p->vocab_size, p->max_resident);
    if (!ds)
        return TF_ERR_NOMEM;
    const int eager = nsrc <= p->max_resident;
    for (int64_t i = 0; i < nsrc && st == TF_OK; i++) {
        const char *path = i < (int64_t)n_train ? train[i] : val[i - (int64_t)n_train];
        source *s = &ds->src[i];
        if (!(s->path = strdup(path))) {
            st = tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", fn);
            break;
        }
        FILE *fp;
        int64_t size;
        st = tfi_token_file_open(path, &fp, &size, NULL);
        if (st != TF_OK)
            break;
        st = tfi_token_file_inspect(fp, fn, path, p->format, p->vocab_size, size, s,
                                    NULL);
        if (st == TF_OK && eager) {
            st = tfi_token_file_read(ds, fp, s, &s->ids, NULL);
            ds->resident += st == TF_OK;
        }
        fclose(fp); /* read-only: a close error cannot lose data */
    }
    if (st == TF_OK)
        st = build_splits(fn, ds, (int64_t)n_train, p->val_fraction);
    if (st != TF_OK) {
        tf_dataset_free(ds);
        return st;
    }
    *out = ds;
    return TF_OK;
}

TF_API tf_status tf_dataset_open(const char *path, tf_data_format format, int64_t vocab_size,
                                 double val_fraction, tf_dataset **out)
{
    static const char fn[] = "tf_dataset_open";
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!path)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: path is NULL", fn);
    tf_dataset_params p = tfi_dataset_defaults();
    p.format = format;
    p.vocab_size = vocab_size;
    p.val_fraction = val_fraction;
    return tfi_dataset_open_paths(fn, &path, 1, NULL, 0, &p, out);
}

TF_API tf_status tf_dataset_open_files(const char *const *train_paths, size_t num_train,
                                       const char *const *val_paths, size_t num_val,
                                       const tf_dataset_params *params, tf_dataset **out)
{
    static const char fn[] = "tf_dataset_open_files";
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    tf_dataset_params p;
    tf_status st = tfi_dataset_params_in(fn, params, &p);
    if (st != TF_OK)
        return st;
    return tfi_dataset_open_paths(fn, train_paths, num_train, val_paths, num_val, &p, out);
}

TF_API tf_status tf_dataset_from_tokens(const int32_t *tokens, int64_t count,
                                        int64_t vocab_size, double val_fraction,
                                        tf_dataset **out)
{
    static const char fn[] = "tf_dataset_from_tokens";
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!tokens)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: tokens is NULL", fn);
    if (count < 1)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: count is %lld, must be >= 1", fn,
                        (long long)count);
    tf_status st = check_common(fn, TF_DATA_AUTO, vocab_size, val_fraction);
    if (st != TF_OK)
        return st;
    for (int64_t i = 0; i < count; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab_size)
            return tfi_fail(NULL, TF_ERR_RANGE,
                            "%s: token id %ld at index %lld is outside [0, vocab_size %lld)", fn,
                            (long)tokens[i], (long long)i, (long long)vocab_size);
    tf_dataset *ds = dataset_alloc(fn, 1, vocab_size, 1);
    if (!ds)
        return TF_ERR_NOMEM;
    source *s = &ds->src[0];
    s->count = count;
    s->idsize = 4;
    s->format = TF_DATA_AUTO; /* not a file */
    st = tfi_dataset_ids_alloc(ds, s, &s->ids, NULL);
    if (st == TF_OK) {
        if (ds->wide) {
            memcpy(s->ids, tokens, (size_t)count * sizeof *tokens);
        } else {
            uint16_t *u16 = s->ids;
            for (int64_t i = 0; i < count; i++)
                u16[i] = (uint16_t)tokens[i];
        }
        st = build_splits(fn, ds, 1, val_fraction);
    }
    if (st != TF_OK) {
        tf_dataset_free(ds);
        return st;
    }
    *out = ds;
    return TF_OK;
}

/* ---- what was opened ------------------------------------------------------- */

const split_set *tfi_dataset_split(const tf_dataset *ds, tf_split split)
{
    return split == TF_SPLIT_TRAIN || split == TF_SPLIT_VAL ? &ds->split[split] : NULL;
}

TF_API int64_t tf_dataset_num_tokens(const tf_dataset *ds, tf_split split)
{
    const split_set *sp = ds ? tfi_dataset_split(ds, split) : NULL;
    return sp ? sp->ntok : 0;
}

TF_API int64_t tf_dataset_num_sources(const tf_dataset *ds, tf_split split)
{
    const split_set *sp = ds ? tfi_dataset_split(ds, split) : NULL;
    return sp ? sp->npieces : 0;
}

TF_API tf_status tf_dataset_source(const tf_dataset *ds, tf_split split, int64_t i,
                                   tf_data_source *out)
{
    static const char fn[] = "tf_dataset_source";
    if (!ds)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: the dataset is NULL", fn);
    tfi_errbuf *eb = (tfi_errbuf *)&ds->err;
    if (!out)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    const split_set *sp = tfi_dataset_split(ds, split);
    if (!sp)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: unknown split %d", fn, (int)split);
    if (i < 0 || i >= sp->npieces)
        return tfi_fail(eb, TF_ERR_RANGE, "%s: source %lld is out of range: the split has %lld",
                        fn, (long long)i, (long long)sp->npieces);
    const piece *pc = &sp->pieces[i];
    const source *s = &ds->src[pc->src];
    tf_data_source full;
    memset(&full, 0, sizeof full);
    full.path = s->path;
    full.format = s->format;
    full.version = s->version;
    full.token_bytes = s->idsize;
    full.file_tokens = s->count;
    full.num_tokens = pc->count;
    return tfi_params_out(out, &full, sizeof full, TFI_PARAMS_MIN(tf_data_source, path), fn,
                          "tf_data_source", eb);
}

/* ---- resident sources ------------------------------------------------------ */

/* Reads a source that is not resident, after checking that the file is
 * still the one inspected when the dataset was opened. */
static tf_status load_source(tf_dataset *ds, source *s)
{
    tfi_errbuf *eb = &ds->err;
    FILE *fp;
    int64_t size;
    tf_status st = tfi_token_file_open(s->path, &fp, &size, eb);
    if (st != TF_OK)
        return st;
    source now = *s;
    st = tfi_token_file_inspect(fp, "tf_dataset", s->path, s->format, ds->vocab_size, size,
                                &now, eb);
    if (st == TF_OK && (size != s->file_size || now.count != s->count || now.idsize != s->idsize))
        st = tfi_fail(eb, TF_ERR_FORMAT,
                      "%s: the file changed since the dataset was opened (%lld bytes, was %lld)",
                      s->path, (long long)size, (long long)s->file_size);
    if (st == TF_OK)
        st = tfi_token_file_read(ds, fp, s, &s->ids, eb);
    fclose(fp); /* read-only: a close error cannot lose data */
    if (st == TF_OK)
        ds->resident++;
    return st;
}

/* Drops least recently used file sources until at most keep are resident,
 * sparing those that the current call (stamp) uses. */
void tfi_dataset_evict_to(tf_dataset *ds, int keep, uint64_t spare)
{
    while (ds->resident > keep) {
        source *lru = NULL;
        for (int64_t i = 0; i < ds->nsrc; i++) {
            source *s = &ds->src[i];
            if (s->path && s->ids && s->last_use != spare && (!lru || s->last_use < lru->last_use))
                lru = s;
        }
        if (!lru)
            return;
        free(lru->ids);
        lru->ids = NULL;
        ds->resident--;
    }
}

/* Makes source i's ids resident for the current call (stamp). */
tf_status tfi_dataset_acquire(tf_dataset *ds, int64_t i, uint64_t stamp)
{
    source *s = &ds->src[i];
    s->last_use = stamp;
    if (s->ids)
        return TF_OK;
    tfi_dataset_evict_to(ds, ds->max_resident - 1, stamp);
    return load_source(ds, s);
}
