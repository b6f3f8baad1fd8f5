/*
 * Helpers shared by the test programs: reading files, finding the external
 * test material (../shared/data, passed as $BITNET_SHARED_DATA by meson),
 * temporary paths, synthetic models, and skips that meson can count.
 *
 * Sub-tests that need the external material are listed with
 * bt_shared_test() and skip with BT_SKIP(); bt_run() then runs the local
 * ones, the shared ones or both (argument "--local" / "--shared"), prints a
 * summary line when something was skipped, and returns 77 (meson's "skipped")
 * when every sub-test it ran skipped. Each program with shared sub-tests is
 * registered twice in meson.build, so that a build without ../shared shows
 * the unchecked part under "Skipped:".
 *
 * Include after <cmocka.h> for the cmocka parts (bt_run, BT_SKIP).
 */
#ifndef BITNET_TEST_UTIL_H
#define BITNET_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"

/* The whole file, NUL-terminated (the NUL is not counted in *size; size may
 * be NULL); NULL when it cannot be opened or read. Free with free(). */
void *bt_read_file(const char *path, size_t *size);

/* $BITNET_SHARED_DATA, or NULL when it is unset or empty. */
const char *bt_shared_dir(void);

/* "<shared dir>/<rel>" in buf; NULL when the shared directory is not set. */
const char *bt_shared_path(char *buf, size_t cap, const char *rel);

/* A per-process temporary file name, "$TMPDIR/bitnet-<tag>-<pid><suffix>"
 * ($TMPDIR defaults to /tmp), in buf. */
const char *bt_tmp_path(char *buf, size_t cap, const char *tag, const char *suffix);

/* bitnet_synth_write(path, sp) that reports a failure (status and message)
 * on stderr. Returns the status. */
int bt_write_synth(const char *path, const bitnet_synth_params *sp);

/* Writes a synthetic model to path and loads it into *out (path stays; the
 * caller removes it). Returns the status of the failing step. */
int bt_synth_model(bitnet_model **out, const char *path, const bitnet_synth_params *sp);

#ifdef cmocka_unit_test
/* Marks a sub-test as needing the external material (its state pointer is
 * a marker that the test does not read). */
extern int bt_shared_marker;
#define bt_shared_test(f) cmocka_unit_test_prestate(f, &bt_shared_marker)

/* Skip the running sub-test, saying why (printf arguments; the format must
 * be a string literal), and count it. */
extern int bt_n_skipped;
#define BT_SKIP(...)                                                     \
    do {                                                                 \
        printf("SKIP: " __VA_ARGS__);                                    \
        printf("\n");                                                    \
        bt_n_skipped++;                                                  \
        skip();                                                          \
    } while (0)

/* Skip unless $BITNET_SHARED_DATA is set. */
#define BT_NEED_SHARED()                                                 \
    do {                                                                 \
        if (!bt_shared_dir())                                            \
            BT_SKIP("BITNET_SHARED_DATA is not set (external test material)"); \
    } while (0)

/* A synthetic model written to a temporary file (named after tag), loaded
 * and the file removed; fails the running sub-test on any error. */
bitnet_model *bt_synth_load(const bitnet_synth_params *sp, const char *tag);

/* Runs tests[0..n) as one cmocka group, filtered by argv[1]: "--local"
 * (those not marked bt_shared_test), "--shared" (the marked ones), or
 * nothing (all). Returns the number of failures, or 77 when every sub-test
 * that ran was skipped. */
int bt_run(int argc, char **argv, const char *name, const struct CMUnitTest *tests,
           size_t n, CMFixtureFunction setup, CMFixtureFunction teardown);
#define BT_RUN(argc, argv, tests, setup, teardown)                       \
    bt_run(argc, argv, argv[0], tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)
#endif

#endif /* BITNET_TEST_UTIL_H */
