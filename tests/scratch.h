/* scratch.h -- a scratch directory under /tmp for tests that write files:
 * one base directory per test case (an unchecked fixture, so it is removed
 * even when a test fails) and a fresh subdirectory per test (a checked
 * fixture):
 *     tcase_add_unchecked_fixture(tc, tt_make_basedir, tt_remove_basedir);
 *     tcase_add_checked_fixture(tc, tt_make_tmpdir, tt_remove_tmpdir);
 */
#ifndef TF_TESTS_SCRATCH_H
#define TF_TESTS_SCRATCH_H

#include <stddef.h>

extern char tt_tmpdir[128]; /* the current test's directory */

void tt_make_basedir(void);
void tt_remove_basedir(void);
void tt_make_tmpdir(void);
void tt_remove_tmpdir(void);
/* out = tt_tmpdir/name */
void tt_tmp_path(char *out, size_t cap, const char *name);
/* rm -r dir (no error if absent) */
void tt_remove_tree(const char *dir);

#endif
