/* scratch.c -- scratch directories for the tests (see scratch.h). */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scratch.h"

static char basedir[64];
char tt_tmpdir[128];

void tt_remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            tt_remove_tree(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

void tt_make_basedir(void)
{
    strcpy(basedir, "/tmp/tf_test_XXXXXX");
    if (!mkdtemp(basedir))
        basedir[0] = '\0';
}

void tt_remove_basedir(void)
{
    if (basedir[0])
        tt_remove_tree(basedir);
}

void tt_make_tmpdir(void)
{
    ck_assert_msg(basedir[0] != '\0', "no scratch directory under /tmp");
    snprintf(tt_tmpdir, sizeof tt_tmpdir, "%s/t_XXXXXX", basedir);
    ck_assert_ptr_nonnull(mkdtemp(tt_tmpdir));
}

void tt_remove_tmpdir(void)
{
    tt_remove_tree(tt_tmpdir);
}

void tt_tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tt_tmpdir, name);
}
