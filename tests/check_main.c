/* The unit-test runner: every suite listed in suites.def, one summary. */
#include <check.h>
#include <stdlib.h>

#define TF_SUITE(name) Suite *name##_suite(void);
#include "suites.def"
#undef TF_SUITE

int main(void)
{
    SRunner *sr = srunner_create(NULL);
#define TF_SUITE(name) srunner_add_suite(sr, name##_suite());
#include "suites.def"
#undef TF_SUITE
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
