/*
 * The GGUF writer's file handling:
 *  - a new file appears only complete, with no temporary file left over;
 *  - a failed or abandoned write leaves a pre-existing file byte for byte
 *    as it was and removes only the temporary file it made;
 *  - a non-regular target (/dev/full) is written directly and never removed;
 *  - a replaced file keeps its permissions, a symbolic link stays a link;
 *  - bitnet_synth_write follows the same rules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bitnet.h"
#include "format/gguf.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/bitnet-test-gwrite-XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[600];
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    return rmdir(dir);
}

/* entries in the test directory (every test starts with it empty) */
static int n_entries(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void clear_dir(void)
{
    assert_int_equal(teardown(NULL), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
}

static const char *in_dir(const char *name)
{
    static char p[2][600];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
    return p[k];
}

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static int file_is(const char *path, const char *text)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char buf[256];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return n == strlen(text) && memcmp(buf, text, n) == 0;
}

/* a writer with one key and one 64-float tensor, data held in memory or
 * (data == 0) to be streamed */
static bitnet_gguf_writer *small_writer(int data)
{
    static float x[64];
    bitnet_gguf_writer *w;
    assert_int_equal(bitnet__gguf_writer_create(&w, 32), 0);
    assert_int_equal(bitnet__gguf_w_u32(w, "test.key", 7), 0);
    uint64_t ne[1] = { 64 };
    assert_int_equal(bitnet__gguf_w_tensor(w, "x", 1, ne, GGML_T_F32,
                                           data ? x : NULL, data ? sizeof(x) : 0), 0);
    return w;
}

static void check_gguf(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char magic[4];
    assert_int_equal(fread(magic, 1, 4, f), 4);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fclose(f);
    assert_memory_equal(magic, "GGUF", 4);
    assert_true(sz > 256);
}

static void test_new_file(void **state)
{
    (void)state;
    clear_dir();
    const char *p = in_dir("a.gguf");
    bitnet_gguf_writer *w = small_writer(1);
    assert_int_equal(bitnet__gguf_w_file(w, p), 0);
    bitnet__gguf_writer_free(w);
    check_gguf(p);
    assert_int_equal(n_entries(), 1);

    /* streamed, over the file just written */
    w = small_writer(0);
    assert_int_equal(bitnet__gguf_w_begin(w, p), 0);
    float x[64] = { 0 };
    assert_int_equal(bitnet__gguf_w_write(w, x, sizeof(x)), 0);
    assert_int_equal(bitnet__gguf_w_end(w), 0);
    bitnet__gguf_writer_free(w);
    check_gguf(p);
    assert_int_equal(n_entries(), 1);

    /* a new file gets the mode a plain create would (0666 less the umask) */
    mode_t um = umask(022);
    const char *q = in_dir("b.gguf");
    w = small_writer(1);
    assert_int_equal(bitnet__gguf_w_file(w, q), 0);
    bitnet__gguf_writer_free(w);
    umask(um);
    struct stat st;
    assert_int_equal(stat(q, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
}

static void test_failure_keeps_old_file(void **state)
{
    (void)state;
    clear_dir();
    const char *p = in_dir("keep.gguf");
    put_file(p, "precious contents");
    float x[64] = { 0 };

    /* too little data: the stream fails at the end */
    bitnet_gguf_writer *w = small_writer(0);
    assert_int_equal(bitnet__gguf_w_begin(w, p), 0);
    assert_int_equal(bitnet__gguf_w_write(w, x, 100), 0);
    assert_int_not_equal(bitnet__gguf_w_end(w), 0);
    bitnet__gguf_writer_free(w);
    assert_true(file_is(p, "precious contents"));
    assert_int_equal(n_entries(), 1);

    /* too much data */
    w = small_writer(0);
    assert_int_equal(bitnet__gguf_w_begin(w, p), 0);
    float y[65] = { 0 };
    assert_int_not_equal(bitnet__gguf_w_write(w, y, sizeof(y)), 0);
    assert_int_not_equal(bitnet__gguf_w_end(w), 0);
    bitnet__gguf_writer_free(w);
    assert_true(file_is(p, "precious contents"));
    assert_int_equal(n_entries(), 1);

    /* abandoned: the writer is freed in the middle of the stream */
    w = small_writer(0);
    assert_int_equal(bitnet__gguf_w_begin(w, p), 0);
    assert_int_equal(bitnet__gguf_w_write(w, x, 16), 0);
    bitnet__gguf_writer_free(w);
    assert_true(file_is(p, "precious contents"));
    assert_int_equal(n_entries(), 1);

    /* a failure before anything is written: no file appears */
    const char *q = in_dir("never.gguf");
    w = small_writer(0);                  /* streamed tensor, no data */
    assert_int_equal(bitnet__gguf_w_file(w, q), BITNET_E_INVALID_ARG);
    bitnet__gguf_writer_free(w);
    assert_int_equal(n_entries(), 1);

    /* a directory as the target is refused and stays */
    const char *d = in_dir("sub");
    assert_int_equal(mkdir(d, 0700), 0);
    w = small_writer(1);
    assert_int_equal(bitnet__gguf_w_file(w, d), BITNET_E_IO);
    bitnet__gguf_writer_free(w);
    struct stat st;
    assert_int_equal(stat(d, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(rmdir(d), 0);

    /* a missing directory: an I/O error that names the path */
    w = small_writer(1);
    assert_int_equal(bitnet__gguf_w_file(w, in_dir("no/such/dir.gguf")), BITNET_E_IO);
    assert_non_null(strstr(bitnet_last_error(), "no/such/dir.gguf"));
    bitnet__gguf_writer_free(w);
    assert_int_equal(n_entries(), 1);
}

static void test_replace_keeps_mode_and_link(void **state)
{
    (void)state;
    clear_dir();
    const char *p = in_dir("target.gguf");
    put_file(p, "old");
    assert_int_equal(chmod(p, 0640), 0);
    const char *l = in_dir("link.gguf");
    assert_int_equal(symlink("target.gguf", l), 0);

    bitnet_gguf_writer *w = small_writer(1);
    assert_int_equal(bitnet__gguf_w_file(w, l), 0);
    bitnet__gguf_writer_free(w);
    struct stat st;
    assert_int_equal(lstat(l, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    check_gguf(p);
    assert_int_equal(n_entries(), 2);
}

static void test_device_never_removed(void **state)
{
    (void)state;
    struct stat st;
    if (stat("/dev/full", &st) != 0 || !S_ISCHR(st.st_mode)) {
        print_message("skipped: no /dev/full on this system\n");
        skip();
    }
    bitnet_gguf_writer *w = small_writer(1);
    assert_int_equal(bitnet__gguf_w_file(w, "/dev/full"), BITNET_E_IO);
    assert_non_null(strstr(bitnet_last_error(), "/dev/full"));
    bitnet__gguf_writer_free(w);
    struct stat st2;
    assert_int_equal(stat("/dev/full", &st2), 0);
    assert_true(S_ISCHR(st2.st_mode));
    assert_int_equal(st2.st_rdev, st.st_rdev);

    /* streamed, then abandoned */
    w = small_writer(0);
    float x[64] = { 0 };
    if (bitnet__gguf_w_begin(w, "/dev/full") == 0)
        (void)bitnet__gguf_w_write(w, x, sizeof(x));
    bitnet__gguf_writer_free(w);
    assert_int_equal(stat("/dev/full", &st2), 0);
    assert_true(S_ISCHR(st2.st_mode));

    /* streamed to the end: the error shows when the data is flushed */
    w = small_writer(0);
    if (bitnet__gguf_w_begin(w, "/dev/full") == 0) {
        (void)bitnet__gguf_w_write(w, x, sizeof(x));
        assert_int_not_equal(bitnet__gguf_w_end(w), 0);
    }
    bitnet__gguf_writer_free(w);
    assert_int_equal(stat("/dev/full", &st2), 0);
    assert_true(S_ISCHR(st2.st_mode));

    /* /dev/null takes a complete file */
    w = small_writer(1);
    assert_int_equal(bitnet__gguf_w_file(w, "/dev/null"), 0);
    bitnet__gguf_writer_free(w);
    assert_int_equal(stat("/dev/null", &st2), 0);
    assert_true(S_ISCHR(st2.st_mode));
}

static void test_synth(void **state)
{
    (void)state;
    clear_dir();
    const char *p = in_dir("s.gguf");
    put_file(p, "precious contents");
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.n_embd = 128;
    sp.n_head = 2;
    sp.n_head_kv = 2;
    sp.n_ff = 128;
    sp.n_layer = 1;
    sp.n_vocab = 300;
    sp.n_ctx_train = 64;
    /* a failure before the stream starts (bad shape) touches nothing */
    sp.n_head = 3;
    assert_int_not_equal(bitnet_synth_write(p, &sp), 0);
    assert_true(file_is(p, "precious contents"));
    sp.n_head = 2;
    int rc = bitnet_synth_write(p, &sp);
    if (rc) print_message("%s\n", bitnet_last_error());
    assert_int_equal(rc, 0);
    check_gguf(p);
    assert_int_equal(n_entries(), 1);
    struct stat st;
    if (stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode)) {
        assert_int_equal(bitnet_synth_write("/dev/full", &sp), BITNET_E_IO);
        assert_int_equal(stat("/dev/full", &st), 0);
        assert_true(S_ISCHR(st.st_mode));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_file),
        cmocka_unit_test(test_failure_keeps_old_file),
        cmocka_unit_test(test_replace_keeps_mode_and_link),
        cmocka_unit_test(test_device_never_removed),
        cmocka_unit_test(test_synth),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
