/* See test_util.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

int bt_shared_marker;
int bt_n_skipped;

void *bt_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *b = malloc(cap + 1);
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = cap > SIZE_MAX / 4 ? NULL : realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    if (b && ferror(f)) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (!b)
        return NULL;
    b[n] = '\0';
    if (size)
        *size = n;
    return b;
}

const char *bt_shared_dir(void)
{
    const char *d = getenv("BITNET_SHARED_DATA");
    return d && *d ? d : NULL;
}

const char *bt_shared_path(char *buf, size_t cap, const char *rel)
{
    const char *d = bt_shared_dir();
    if (!d)
        return NULL;
    snprintf(buf, cap, "%s/%s", d, rel);
    return buf;
}

const char *bt_tmp_path(char *buf, size_t cap, const char *tag, const char *suffix)
{
    const char *d = getenv("TMPDIR");
    snprintf(buf, cap, "%s/bitnet-%s-%ld%s", d && *d ? d : "/tmp", tag,
             (long)getpid(), suffix ? suffix : "");
    return buf;
}

int bt_write_synth(const char *path, const bitnet_synth_params *sp)
{
    int rc = bitnet_synth_write(path, sp);
    if (rc != BITNET_OK)
        fprintf(stderr, "synth %s: %s: %s\n", path, bitnet_strerror(rc),
                bitnet_last_error());
    return rc;
}

int bt_synth_model(bitnet_model **out, const char *path, const bitnet_synth_params *sp)
{
    int rc = bt_write_synth(path, sp);
    if (rc != BITNET_OK)
        return rc;
    rc = bitnet_model_load_file(out, path, NULL);
    if (rc != BITNET_OK)
        fprintf(stderr, "load %s: %s: %s\n", path, bitnet_strerror(rc),
                bitnet_last_error());
    return rc;
}

bitnet_model *bt_synth_load(const bitnet_synth_params *sp, const char *tag)
{
    char path[256], suffix[64];
    snprintf(suffix, sizeof(suffix), "-%s.gguf", tag);
    bt_tmp_path(path, sizeof(path), "test-synth", suffix);
    int rc = bitnet_synth_write(path, sp);
    if (rc) fail_msg("synth %s: %s", tag, bitnet_last_error());
    bitnet_model *m;
    rc = bitnet_model_load_file(&m, path, NULL);
    if (rc) fail_msg("load %s: %s", tag, bitnet_last_error());
    unlink(path);
    return m;
}

int bt_run(int argc, char **argv, const char *name, const struct CMUnitTest *tests,
           size_t n, CMFixtureFunction setup, CMFixtureFunction teardown)
{
    int want = -1;                      /* -1 all, 0 local, 1 shared */
    if (argc > 1 && strcmp(argv[1], "--local") == 0)
        want = 0;
    else if (argc > 1 && strcmp(argv[1], "--shared") == 0)
        want = 1;
    else if (argc > 1) {
        fprintf(stderr, "usage: %s [--local | --shared]\n", argv[0]);
        return 2;
    }
    struct CMUnitTest *sel = malloc((n ? n : 1) * sizeof(*sel));
    if (!sel)
        return 1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int shared = tests[i].initial_state == &bt_shared_marker;
        if (want < 0 || want == shared)
            sel[k++] = tests[i];
    }
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    int failed = k ? _cmocka_run_group_tests(base, sel, k, setup, teardown) : 0;
    free(sel);
    if (bt_n_skipped > 0)
        printf("%s: %d of %zu sub-tests skipped (see SKIP: above)\n", base,
               bt_n_skipped, k);
    if (failed == 0 && (k == 0 || (size_t)bt_n_skipped == k))
        return 77;
    return failed;
}
