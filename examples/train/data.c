/*
 * data.c -- the trainer's data: opening data_path and val_path (token
 * files, lists, globs, directories of shards or of text) and the data line
 * of the banner.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "train.h"

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory of text: its extension-less regular files in name order,
 * concatenated, one byte a token; the last val fraction is the validation
 * split.  *nfiles receives the number of files. */
static int open_text_directory(const char *dir, int64_t vocab, double val, tf_dataset **out,
                               int64_t *nfiles)
{
    DIR *d = opendir(dir);
    if (!d)
        return die(dir, strerror(errno));
    char **names = NULL, path[4096];
    size_t count = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        struct stat st;
        if (strchr(e->d_name, '.') || join(path, sizeof path, dir, e->d_name) ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (count == cap) {
            size_t grown_cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, grown_cap * sizeof *grown);
            if (!grown) {
                rc = die(dir, "out of memory");
                break;
            }
            names = grown, cap = grown_cap;
        }
        if (!(names[count] = strdup(e->d_name)))
            rc = die(dir, "out of memory");
        else
            count++;
    }
    closedir(d);
    if (count)
        qsort(names, count, sizeof *names, by_name);
    int32_t *tokens = NULL;
    size_t ntok = 0, cap_tok = 0;
    unsigned char buf[1 << 16];
    for (size_t i = 0; i < count && !rc; i++) {
        if (join(path, sizeof path, dir, names[i])) {
            rc = 1;
            break;
        }
        FILE *f = fopen(path, "rb");
        if (!f) {
            rc = die(path, strerror(errno));
            break;
        }
        for (size_t got; !rc && (got = fread(buf, 1, sizeof buf, f)) > 0;) {
            if (ntok + got > cap_tok) {
                size_t grown_cap = cap_tok ? 2 * cap_tok : 1 << 20;
                while (grown_cap < ntok + got)
                    grown_cap *= 2;
                int32_t *grown = realloc(tokens, grown_cap * sizeof *grown);
                if (!grown) {
                    rc = die(dir, "out of memory");
                    break;
                }
                tokens = grown, cap_tok = grown_cap;
            }
            for (size_t k = 0; k < got; k++)
                tokens[ntok++] = buf[k];
        }
        if (!rc && ferror(f))
            rc = die(path, "read error");
        fclose(f);
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    if (!rc && ntok == 0)
        rc = die(dir, "no llm.c shards (*_train_*.bin) and no extension-less text files with "
                      "data in this directory");
    if (!rc && tf_dataset_from_tokens(tokens, (int64_t)ntok, vocab, val, out) != TF_OK)
        rc = die(dir, tf_last_error());
    free(tokens);
    *nfiles = rc ? 0 : (int64_t)count;
    return rc;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Opens data_path and val_path (see KEYS).  *text_files: the number of text
 * files read from a directory of text, else 0. */
int open_data(const trainer *t, int64_t vocab, tf_dataset **out, int64_t *text_files)
{
    tf_dataset_params p = tf_dataset_default_params();
    p.format = t->format;
    p.vocab_size = vocab;
    p.val_fraction = t->val_fraction;
    *text_files = 0;
    if (t->data.list || t->val.list) {
        /* lists hold files; a directory or a pattern is expanded only as the
         * single value of data_path/val_path */
        const path_list *l[2] = {&t->data, &t->val};
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < l[k]->n; i++)
                if (is_dir(l[k]->v[i]) || (strpbrk(l[k]->v[i], "*?[") && !exists(l[k]->v[i]))) {
                    fprintf(stderr, "train: config: '%s' in %s is a directory or a pattern: "
                                    "with a list of files in data_path or val_path, every "
                                    "path is one file\n",
                            l[k]->v[i], k ? "val_path" : "data_path");
                    return 1;
                }
        if (tf_dataset_open_files(t->data.v, t->data.n, t->val.v, t->val.n, &p, out) != TF_OK)
            return die("data", tf_last_error());
        return 0;
    }
    const char *train = t->data.v[0], *val = t->val.n ? t->val.v[0] : NULL;
    tf_status st = tf_dataset_open_glob(train, val, &p, out);
    if (st == TF_ERR_NOT_FOUND && is_dir(train) && !val &&
        (t->format == TF_DATA_AUTO || t->format == TF_DATA_BYTES))
        return open_text_directory(train, vocab, t->val_fraction, out, text_files);
    if (st != TF_OK) {
        fprintf(stderr, "train: data: %s%s\n", tf_last_error(),
                st == TF_ERR_NOT_FOUND && is_dir(train) && val
                    ? " (a directory of text files is read only without val_path: its tail "
                      "is the validation split)"
                    : "");
        return 1;
    }
    return 0;
}

/* "3 files (llmc v7, uint32 ids) 15.0M tokens": what was read for a split,
 * from tf_dataset_source, the formats grouped. */
void describe_split(const tf_dataset *ds, tf_split split, int64_t text_files, char *buf,
                    size_t size)
{
    typedef struct kind_count {
        tf_data_format format;
        int version, bytes;
        int64_t files;
    } kind_count;
    kind_count kind[8];
    int nkind = 0;
    int64_t nsrc = tf_dataset_num_sources(ds, split);
    for (int64_t i = 0; i < nsrc; i++) {
        tf_data_source s = {.struct_size = sizeof s};
        if (tf_dataset_source(ds, split, i, &s) != TF_OK)
            continue;
        int k = 0;
        while (k < nkind && !(kind[k].format == s.format && kind[k].version == s.version &&
                              kind[k].bytes == s.token_bytes))
            k++;
        if (k == nkind && nkind < 8)
            kind[nkind++] = (kind_count){s.format, s.version, s.token_bytes, 0};
        if (k < nkind)
            kind[k].files++;
    }
    char count[32];
    fmt_count(tf_dataset_num_tokens(ds, split), count, sizeof count);
    size_t len = 0;
    if (text_files > 0)
        len = (size_t)snprintf(buf, size, "%lld text file%s (bytes", (long long)text_files,
                               text_files == 1 ? "" : "s");
    else
        len = (size_t)snprintf(buf, size, "%lld file%s (", (long long)nsrc, nsrc == 1 ? "" : "s");
    for (int k = 0; k < nkind && !text_files && len < size; k++) {
        char name[64];
        if (kind[k].format == TF_DATA_LLMC)
            snprintf(name, sizeof name, "llmc v%d, uint%d ids", kind[k].version,
                     8 * kind[k].bytes);
        else
            snprintf(name, sizeof name, "%s", tf_data_format_name(kind[k].format));
        if (nkind == 1)
            len += (size_t)snprintf(buf + len, size - len, "%s", name);
        else
            len += (size_t)snprintf(buf + len, size - len, "%s%lld %s", k ? "; " : "",
                                    (long long)kind[k].files, name);
    }
    if (len < size)
        snprintf(buf + len, size - len, ") %s tokens", count);
}
