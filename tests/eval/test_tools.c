/*
 * The command-line interfaces that outside checks depend on:
 * bitnet-logits (raw float32 logits, same numbers as the API) and
 * bitnet-bench --json. argv[1] = bitnet-logits, argv[2] = bitnet-bench.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bitnet.h"
#include "test_util.h"

static const char *logits_exe, *bench_exe;
static char model_path[256], out_path[256], tok_path[256];
static bitnet_model *model;

static int setup(void **state)
{
    (void)state;
    bt_tmp_path(model_path, sizeof(model_path), "tools", ".gguf");
    bt_tmp_path(out_path, sizeof(out_path), "tools", ".f32");
    bt_tmp_path(tok_path, sizeof(tok_path), "tools", ".txt");
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.n_embd = 128;
    sp.n_ff = 256;
    sp.n_vocab = 300;
    sp.seed = 7;
    return bt_synth_model(&model, model_path, &sp) == BITNET_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bitnet_model_free(model);
    remove(model_path);
    remove(out_path);
    remove(tok_path);
    return 0;
}

static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static float *read_floats(const char *path, size_t *n)
{
    size_t sz = 0;
    float *v = bt_read_file(path, &sz);
    assert_non_null(v);
    *n = sz / sizeof(float);
    return v;
}

static void test_logits_tool(void **state)
{
    (void)state;
    static const int32_t ids[] = { 5, 77, 123, 9, 250, 1, 42 };
    const size_t n = sizeof(ids) / sizeof(ids[0]);
    int32_t nv = bitnet_model_n_vocab(model);

    bitnet_context *c = NULL;
    assert_int_equal(bitnet_context_create(&c, model, NULL), BITNET_OK);
    assert_int_equal(bitnet_context_eval(c, ids, n, BITNET_EVAL_ALL_LOGITS), BITNET_OK);

    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' -m '%s' --tokens \"5 77 123 9 250 1 42\" -t 2 --all -o '%s'",
             logits_exe, model_path, out_path);
    assert_int_equal(run(cmd), 0);
    size_t cnt;
    float *v = read_floats(out_path, &cnt);
    assert_int_equal(cnt, n * (size_t)nv);
    for (size_t i = 0; i < n; i++) {
        const float *lg;
        assert_int_equal(bitnet_context_logits(c, (int32_t)i, &lg), BITNET_OK);
        assert_memory_equal(v + i * (size_t)nv, lg, (size_t)nv * sizeof(float));
    }
    free(v);

    /* last position only, ids from a file */
    FILE *f = fopen(tok_path, "w");
    assert_non_null(f);
    fputs("5 77 123\n9 250 1 42\n", f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "'%s' -m '%s' --tokens-file '%s' -t 1 -o '%s'",
             logits_exe, model_path, tok_path, out_path);
    assert_int_equal(run(cmd), 0);
    v = read_floats(out_path, &cnt);
    assert_int_equal(cnt, (size_t)nv);
    const float *last;
    assert_int_equal(bitnet_context_logits(c, -1, &last), BITNET_OK);
    assert_memory_equal(v, last, (size_t)nv * sizeof(float));
    free(v);
    bitnet_context_free(c);

    /* failures: non-zero exit */
    snprintf(cmd, sizeof(cmd), "'%s' --bogus >/dev/null 2>&1", logits_exe);
    assert_int_not_equal(run(cmd), 0);
    snprintf(cmd, sizeof(cmd), "'%s' -m /nonexistent.gguf --tokens 1 -o '%s' 2>/dev/null",
             logits_exe, out_path);
    assert_int_not_equal(run(cmd), 0);
    snprintf(cmd, sizeof(cmd), "'%s' -m '%s' --tokens \"1 x\" -o '%s' 2>/dev/null",
             logits_exe, model_path, out_path);
    assert_int_not_equal(run(cmd), 0);
    snprintf(cmd, sizeof(cmd), "'%s' -m '%s' --tokens \"1 300\" -o '%s' 2>/dev/null",
             logits_exe, model_path, out_path);
    assert_int_not_equal(run(cmd), 0);
    snprintf(cmd, sizeof(cmd), "'%s' --help >/dev/null", logits_exe);
    assert_int_equal(run(cmd), 0);
}

static void test_bench_tool(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' -m '%s' -p 8 -n 4 -t 1,2 -r 1 --json > '%s'",
             bench_exe, model_path, out_path);
    assert_int_equal(run(cmd), 0);
    FILE *f = fopen(out_path, "r");
    assert_non_null(f);
    char buf[8192];
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = 0;
    assert_true(buf[0] == '[');
    assert_non_null(strstr(buf, "{\"test\": \"pp8\", \"threads\": 1, \"tokens_per_s\": "));
    assert_non_null(strstr(buf, "{\"test\": \"tg4\", \"threads\": 1, \"tokens_per_s\": "));
    assert_non_null(strstr(buf, "{\"test\": \"pp8\", \"threads\": 2, \"tokens_per_s\": "));
    assert_non_null(strstr(buf, "{\"test\": \"tg4\", \"threads\": 2, \"tokens_per_s\": "));
    assert_non_null(strstr(buf, "\"samples\": ["));
    assert_non_null(strstr(buf, "]\n"));
    snprintf(cmd, sizeof(cmd), "'%s' -m '%s' -t x >/dev/null 2>&1", bench_exe, model_path);
    assert_int_not_equal(run(cmd), 0);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_tools BITNET-LOGITS BITNET-BENCH\n");
        return 2;
    }
    logits_exe = argv[1];
    bench_exe = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logits_tool),
        cmocka_unit_test(test_bench_tool),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
