/*
 * dataset_paths.c -- the sets of files a dataset is opened from by pattern
 * (tf_dataset_open_glob): a directory's llm.c-style shards, the files a
 * glob(3) pattern matches, or a single path, each set sorted by name.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "io/dataset_internal.h"

typedef struct path_list {
    char **v;
    size_t n;
} path_list;

static void path_list_free(path_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int path_add(path_list *l, const char *dir, const char *name)
{
    size_t len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return -1;
    l->v = v;
    if (!(v[l->n] = malloc(len)))
        return -1;
    if (dir)
        snprintf(v[l->n], len, "%s/%s", dir, name);
    else
        snprintf(v[l->n], len, "%s", name);
    l->n++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files that spec names for a split, sorted by name: a directory's
 * llm.c-style shards (*_train_*.bin or *_val_*.bin), the files a glob(3)
 * pattern matches, or else spec itself. */
static tf_status expand_spec(const char *fn, const char *spec, tf_split split, path_list *out)
{
    struct stat sb;
    if (stat(spec, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        const char *pattern = split == TF_SPLIT_VAL ? "*_val_*.bin" : "*_train_*.bin";
        DIR *d = opendir(spec);
        if (!d)
            return tfi_fail(NULL, TF_ERR_IO, "%s: %s", spec, strerror(errno));
        int oom = 0;
        for (struct dirent *e; !oom && (e = readdir(d)) != NULL;)
            if (fnmatch(pattern, e->d_name, FNM_PERIOD) == 0)
                oom = path_add(out, spec, e->d_name) != 0;
        closedir(d);
        if (oom)
            return tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", fn);
        if (out->n == 0)
            return tfi_fail(NULL, TF_ERR_NOT_FOUND, "%s: no %s shards (%s) in this directory",
                            spec, split == TF_SPLIT_VAL ? "validation" : "training", pattern);
        qsort(out->v, out->n, sizeof *out->v, by_name);
        return TF_OK;
    }
    if (!strpbrk(spec, "*?[") || stat(spec, &sb) == 0)
        return path_add(out, NULL, spec) == 0 ? TF_OK
                                                : tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory",
                                                           fn);
    glob_t g;
    int rc = glob(spec, 0, NULL, &g);
    if (rc == GLOB_NOMATCH)
        return tfi_fail(NULL, TF_ERR_NOT_FOUND, "%s: no file matches this pattern", spec);
    if (rc != 0) {
        if (rc != GLOB_NOSPACE)
            globfree(&g);
        return tfi_fail(NULL, rc == GLOB_NOSPACE ? TF_ERR_NOMEM : TF_ERR_IO,
                        "%s: %s", spec, rc == GLOB_NOSPACE ? "out of memory" : "cannot read");
    }
    int oom = 0;
    for (size_t i = 0; i < g.gl_pathc && !oom; i++) /* glob sorts */
        oom = path_add(out, NULL, g.gl_pathv[i]) != 0;
    globfree(&g);
    return oom ? tfi_fail(NULL, TF_ERR_NOMEM, "%s: out of memory", fn) : TF_OK;
}

TF_API tf_status tf_dataset_open_glob(const char *train, const char *val,
                                      const tf_dataset_params *params, tf_dataset **out)
{
    static const char fn[] = "tf_dataset_open_glob";
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    *out = NULL;
    if (!train)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: train is NULL", fn);
    tf_dataset_params p;
    tf_status st = tfi_dataset_params_in(fn, params, &p);
    if (st != TF_OK)
        return st;
    path_list tl = {NULL, 0}, vl = {NULL, 0};
    st = expand_spec(fn, train, TF_SPLIT_TRAIN, &tl);
    if (st == TF_OK && val)
        st = expand_spec(fn, val, TF_SPLIT_VAL, &vl);
    if (st == TF_OK)
        st = tfi_dataset_open_paths(fn, (const char *const *)tl.v, tl.n,
                                    (const char *const *)vl.v, vl.n, &p, out);
    path_list_free(&tl);
    path_list_free(&vl);
    return st;
}
