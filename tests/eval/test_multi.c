/*
 * Several sequences in one pass (bitnet_context_eval_multi), prefix reuse
 * (bitnet_context_keep_prefix) and forks (bitnet_context_copy), public API
 * only. The logits of every sequence are compared with memcmp against the
 * same sequence evaluated alone, for 1..16 sequences, 1/2/3 threads and
 * random splits into calls and steps, on synthetic models (F16, Q8_0, Q4_0,
 * Q6_K and int8 heads) and the bundled model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"

#define MAX_SEQ 16
#define MAX_LEN 20

enum { M_F16, M_Q8, M_Q4, M_Q6, M_OTHER, M_BUNDLED, N_MODELS };

static char paths[N_MODELS][256];
static bitnet_model *models[N_MODELS];
static uint64_t rng = 0x1234567ull;

static uint32_t rnd(uint32_t n)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 33) % n;
}

static int synth(int i, int32_t etype, uint64_t seed, int32_t n_embd)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(paths[i], sizeof(paths[i]), "%s/bitnet-multi-%ld-%d.gguf",
             tmp && *tmp ? tmp : "/tmp", (long)getpid(), i);
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.arch = "bitnet-b1.58";
    sp.weight_type = BITNET_TYPE_I2_S;
    sp.embd_type = etype;
    sp.seed = seed;
    sp.n_embd = n_embd;
    sp.n_ff = 256;
    sp.n_layer = 2;
    sp.n_head = 4;
    sp.n_head_kv = 2;
    sp.n_vocab = 300;
    if (bitnet_synth_write(paths[i], &sp) != BITNET_OK ||
        bitnet_model_load_file(&models[i], paths[i], NULL) != BITNET_OK) {
        fprintf(stderr, "synth: %s\n", bitnet_last_error());
        return -1;
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    if (synth(M_F16, BITNET_TYPE_F16, 21, 128) || synth(M_Q8, BITNET_TYPE_Q8_0, 22, 128) ||
        synth(M_Q4, BITNET_TYPE_Q4_0, 24, 128) || synth(M_Q6, BITNET_TYPE_Q6_K, 25, 256) ||
        synth(M_OTHER, BITNET_TYPE_F16, 23, 128))
        return -1;
    paths[M_BUNDLED][0] = 0;
    if (bitnet_model_load_file(&models[M_BUNDLED], MODEL_DIR "/tinystories-bitnet.gguf",
                               NULL) != BITNET_OK) {
        fprintf(stderr, "bundled model: %s\n", bitnet_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < N_MODELS; i++) {
        bitnet_model_free(models[i]);
        if (paths[i][0])
            remove(paths[i]);
    }
    return 0;
}

static bitnet_context *make_ctx(bitnet_model *m, int32_t n_ctx, int32_t n_batch,
                                int32_t n_threads, uint32_t flags)
{
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_threads = n_threads;
    cp.flags = flags;
    bitnet_context *c = NULL;
    assert_int_equal(bitnet_context_create(&c, m, &cp), BITNET_OK);
    return c;
}

/* ---- multi == single ---------------------------------------------------- */

typedef struct seq {
    int32_t tok[MAX_LEN];
    int32_t len;
    float *ref;               /* [len][n_vocab] logits evaluated alone */
} seq;

static void make_seqs(bitnet_model *m, uint32_t ctx_flags, seq *s, int n)
{
    int32_t nv = bitnet_model_n_vocab(m);
    bitnet_context *c = make_ctx(m, 64, 0, 1, ctx_flags);
    for (int i = 0; i < n; i++) {
        s[i].len = 1 + (int32_t)rnd(MAX_LEN);
        for (int32_t j = 0; j < s[i].len; j++)
            s[i].tok[j] = (int32_t)rnd((uint32_t)nv);
        s[i].ref = malloc((size_t)s[i].len * (size_t)nv * sizeof(float));
        assert_non_null(s[i].ref);
        bitnet_context_reset(c);
        assert_int_equal(bitnet_context_eval(c, s[i].tok, (size_t)s[i].len,
                                             BITNET_EVAL_ALL_LOGITS), BITNET_OK);
        for (int32_t j = 0; j < s[i].len; j++) {
            const float *lg;
            assert_int_equal(bitnet_context_logits(c, j, &lg), BITNET_OK);
            memcpy(s[i].ref + (size_t)j * nv, lg, (size_t)nv * sizeof(float));
        }
    }
    bitnet_context_free(c);
}

/* n sequences on contexts of n_threads threads (the first of each call
 * runs the step on its pool); random chunks per call (prompt pieces and single
 * tokens mixed), random subsets, random order, random n_batch. */
static void run_trial(bitnet_model *m, uint32_t ctx_flags, const seq *s, int n, int n_threads)
{
    int32_t nv = bitnet_model_n_vocab(m);
    bitnet_context *ctx[MAX_SEQ];
    int32_t done[MAX_SEQ];
    for (int i = 0; i < n; i++) {
        ctx[i] = make_ctx(m, 24 + (int32_t)rnd(40), 1 + (int32_t)rnd(9),
                          n_threads, ctx_flags);
        done[i] = 0;
    }
    for (;;) {
        bitnet_context *cs[MAX_SEQ];
        const int32_t *tp[MAX_SEQ];
        size_t nt[MAX_SEQ];
        int idx[MAX_SEQ], k = 0;
        for (int i = 0; i < n; i++)
            if (done[i] < s[i].len && (rnd(4) != 0 || k == 0))
                idx[k++] = i;
        if (k == 0) {
            int left = 0;
            for (int i = 0; i < n; i++)
                left |= done[i] < s[i].len;
            if (!left)
                break;
            continue;
        }
        for (int a = k - 1; a > 0; a--) {
            int b = (int)rnd((uint32_t)a + 1), t = idx[a];
            idx[a] = idx[b];
            idx[b] = t;
        }
        for (int a = 0; a < k; a++) {
            int i = idx[a];
            int32_t left = s[i].len - done[i];
            int32_t take = rnd(2) ? 1 : 1 + (int32_t)rnd((uint32_t)left);
            cs[a] = ctx[i];
            tp[a] = s[i].tok + done[i];
            nt[a] = (size_t)take;
        }
        uint32_t fl = rnd(3) == 0 ? BITNET_EVAL_ALL_LOGITS : 0;
        assert_int_equal(bitnet_context_eval_multi(cs, tp, nt, (size_t)k, fl), BITNET_OK);
        for (int a = 0; a < k; a++) {
            int i = idx[a];
            int32_t p0 = done[i];
            done[i] += (int32_t)nt[a];
            assert_int_equal(bitnet_context_pos(ctx[i]), done[i]);
            for (int32_t j = fl ? 0 : (int32_t)nt[a] - 1; j < (int32_t)nt[a]; j++) {
                const float *lg;
                assert_int_equal(bitnet_context_logits(ctx[i], j, &lg), BITNET_OK);
                if (memcmp(lg, s[i].ref + (size_t)(p0 + j) * nv, (size_t)nv * sizeof(float))) {
                    fprintf(stderr, "seq %d of %d, position %d, %d threads: logits differ\n",
                            i, n, (int)(p0 + j), n_threads);
                    fail();
                }
            }
        }
    }
    for (int i = 0; i < n; i++)
        bitnet_context_free(ctx[i]);
}

static void check_model(bitnet_model *m, uint32_t ctx_flags, const int *counts, int n_counts)
{
    seq s[MAX_SEQ];
    make_seqs(m, ctx_flags, s, MAX_SEQ);
    for (int c = 0; c < n_counts; c++)
        for (int nt = 1; nt <= 3; nt++)
            run_trial(m, ctx_flags, s, counts[c], nt);
    for (int i = 0; i < MAX_SEQ; i++)
        free(s[i].ref);
}

static void test_multi_f16_head(void **state)
{
    (void)state;
    int counts[MAX_SEQ];
    for (int i = 0; i < MAX_SEQ; i++)
        counts[i] = i + 1;
    check_model(models[M_F16], 0, counts, MAX_SEQ);
}

static void test_multi_q8_0_head(void **state)
{
    (void)state;
    static const int counts[] = { 1, 2, 5, 16 };
    check_model(models[M_Q8], 0, counts, 4);
}

static void test_multi_q4_0_q6_k_heads(void **state)
{
    (void)state;
    static const int counts[] = { 1, 4, 16 };
    check_model(models[M_Q4], 0, counts, 3);
    check_model(models[M_Q6], 0, counts, 3);
}

static void test_multi_int8_head(void **state)
{
    (void)state;
    static const int counts[] = { 1, 3, 8, 16 };
    check_model(models[M_F16], BITNET_CONTEXT_INT8_HEAD, counts, 4);
}

static void test_multi_bundled(void **state)
{
    (void)state;
    static const int counts[] = { 1, 2, 7, 16 };
    check_model(models[M_BUNDLED], 0, counts, 4);
}

/* ---- errors ------------------------------------------------------------- */

static void test_multi_errors(void **state)
{
    (void)state;
    bitnet_context *a = make_ctx(models[M_F16], 8, 0, 1, 0);
    bitnet_context *b = make_ctx(models[M_F16], 8, 0, 2, 0);
    bitnet_context *o = make_ctx(models[M_OTHER], 8, 0, 1, 0);
    bitnet_context *i8 = make_ctx(models[M_F16], 8, 0, 1, BITNET_CONTEXT_INT8_HEAD);
    int32_t t3[3] = { 1, 2, 3 }, bad[1] = { 300 };
    const int32_t *tp[2] = { t3, t3 };
    size_t nt[2] = { 3, 3 };
    bitnet_context *ab[2] = { a, b };

    assert_int_equal(bitnet_context_eval_multi(NULL, tp, nt, 2, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_eval_multi(ab, NULL, nt, 2, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_eval_multi(ab, tp, NULL, 2, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_eval_multi(ab, tp, nt, 0, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_eval_multi(ab, tp, nt, 2, 0x80), BITNET_E_INVALID_ARG);
    bitnet_context *an[2] = { a, NULL };
    assert_int_equal(bitnet_context_eval_multi(an, tp, nt, 2, 0), BITNET_E_INVALID_ARG);
    bitnet_context *aa[2] = { a, a };
    assert_int_equal(bitnet_context_eval_multi(aa, tp, nt, 2, 0), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "again"));
    bitnet_context *ao[2] = { a, o };
    assert_int_equal(bitnet_context_eval_multi(ao, tp, nt, 2, 0), BITNET_E_INVALID_ARG);
    bitnet_context *ai[2] = { a, i8 };
    assert_int_equal(bitnet_context_eval_multi(ai, tp, nt, 2, 0), BITNET_E_INVALID_ARG);
    const int32_t *tn[2] = { t3, NULL };
    assert_int_equal(bitnet_context_eval_multi(ab, tn, nt, 2, 0), BITNET_E_INVALID_ARG);
    size_t n0[2] = { 3, 0 };
    assert_int_equal(bitnet_context_eval_multi(ab, tp, n0, 2, 0), BITNET_E_INVALID_ARG);
    const int32_t *tb[2] = { t3, bad };
    size_t n1[2] = { 3, 1 };
    assert_int_equal(bitnet_context_eval_multi(ab, tb, n1, 2, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_pos(a), 0);
    assert_int_equal(bitnet_context_pos(b), 0);

    /* full: b has room for 8; after 6 tokens, 3 more do not fit: nothing
     * changes, in a either */
    assert_int_equal(bitnet_context_eval_multi(ab, tp, nt, 2, 0), BITNET_OK);
    assert_int_equal(bitnet_context_eval_multi(ab, tp, nt, 2, 0), BITNET_OK);
    const float *lg;
    assert_int_equal(bitnet_context_logits(a, -1, &lg), BITNET_OK);
    float keep = lg[0];
    assert_int_equal(bitnet_context_eval_multi(ab, tp, nt, 2, 0), BITNET_E_CONTEXT_FULL);
    assert_int_equal(bitnet_context_pos(a), 6);
    assert_int_equal(bitnet_context_pos(b), 6);
    assert_int_equal(bitnet_context_logits(a, -1, &lg), BITNET_OK);
    assert_true(lg[0] == keep);

    bitnet_context_free(a);
    bitnet_context_free(b);
    bitnet_context_free(o);
    bitnet_context_free(i8);
}

/* ---- keep_prefix ---------------------------------------------------------- */

static void expect_same_last(bitnet_context *c, bitnet_model *m, const int32_t *t, size_t n)
{
    bitnet_context *f = make_ctx(m, 32, 0, 1, 0);
    assert_int_equal(bitnet_context_eval(f, t, n, 0), BITNET_OK);
    const float *x, *y;
    assert_int_equal(bitnet_context_logits(c, -1, &x), BITNET_OK);
    assert_int_equal(bitnet_context_logits(f, -1, &y), BITNET_OK);
    assert_memory_equal(x, y, (size_t)bitnet_model_n_vocab(m) * sizeof(float));
    bitnet_context_free(f);
}

static void test_keep_prefix(void **state)
{
    (void)state;
    bitnet_model *m = models[M_F16];
    bitnet_context *c = make_ctx(m, 32, 0, 2, 0);
    int32_t sys[6] = { 5, 6, 7, 8, 9, 10 };
    int32_t p1[8] = { 5, 6, 7, 8, 9, 10, 11, 12 };
    int32_t p2[9] = { 5, 6, 7, 8, 9, 10, 40, 41, 42 };

    assert_int_equal(bitnet_context_keep_prefix(c, p1, 8), 0);
    assert_int_equal(bitnet_context_eval(c, p1, 8, 0), BITNET_OK);
    /* shared system prompt kept, the rest evaluated */
    assert_int_equal(bitnet_context_keep_prefix(c, p2, 9), 6);
    assert_int_equal(bitnet_context_pos(c), 6);
    assert_int_equal(bitnet_context_eval(c, p2 + 6, 3, 0), BITNET_OK);
    expect_same_last(c, m, p2, 9);
    /* the same prompt again: all but the last token kept */
    assert_int_equal(bitnet_context_keep_prefix(c, p2, 9), 8);
    assert_int_equal(bitnet_context_eval(c, p2 + 8, 1, 0), BITNET_OK);
    expect_same_last(c, m, p2, 9);
    /* a shorter prompt inside the cache */
    assert_int_equal(bitnet_context_keep_prefix(c, sys, 6), 5);
    assert_int_equal(bitnet_context_eval(c, sys + 5, 1, 0), BITNET_OK);
    expect_same_last(c, m, sys, 6);
    /* through rewind, a state blob (into another context) and reset */
    assert_int_equal(bitnet_context_rewind(c, 4), BITNET_OK);
    assert_int_equal(bitnet_context_keep_prefix(c, p1, 8), 4);
    size_t need = bitnet_context_state_size(c), got = 0;
    void *blob = malloc(need);
    assert_int_equal(bitnet_context_state_save(c, blob, need, &got), BITNET_OK);
    bitnet_context *d = make_ctx(m, 16, 0, 1, 0);
    assert_int_equal(bitnet_context_state_load(d, blob, got), BITNET_OK);
    free(blob);
    assert_int_equal(bitnet_context_keep_prefix(d, p2, 9), 4);
    assert_int_equal(bitnet_context_eval(d, p2 + 4, 5, 0), BITNET_OK);
    expect_same_last(d, m, p2, 9);
    bitnet_context_reset(c);
    assert_int_equal(bitnet_context_keep_prefix(c, p1, 8), 0);
    /* edge cases */
    assert_int_equal(bitnet_context_eval(c, p1, 8, 0), BITNET_OK);
    assert_int_equal(bitnet_context_keep_prefix(c, p1, 0), 0);
    assert_int_equal(bitnet_context_pos(c), 0);
    assert_int_equal(bitnet_context_keep_prefix(NULL, p1, 8), 0);
    assert_int_equal(bitnet_context_eval(c, p1, 8, 0), BITNET_OK);
    assert_int_equal(bitnet_context_keep_prefix(c, NULL, 3), 0);
    assert_int_equal(bitnet_context_pos(c), 0);
    bitnet_context_free(c);
    bitnet_context_free(d);
}

/* ---- copy ------------------------------------------------------------------ */

static void test_copy(void **state)
{
    (void)state;
    bitnet_model *m = models[M_F16];
    int32_t nv = bitnet_model_n_vocab(m);
    bitnet_context *a = make_ctx(m, 32, 0, 1, 0);
    bitnet_context *b = make_ctx(m, 16, 0, 3, 0);
    bitnet_context *small = make_ctx(m, 4, 0, 1, 0);
    bitnet_context *o = make_ctx(models[M_OTHER], 32, 0, 1, 0);
    int32_t t[10] = { 3, 1, 4, 1, 5, 9, 2, 6, 5, 3 };
    int32_t u[10] = { 3, 1, 4, 1, 5, 9, 7, 7, 8, 8 };

    assert_int_equal(bitnet_context_eval(a, t, 6, BITNET_EVAL_ALL_LOGITS), BITNET_OK);
    assert_int_equal(bitnet_context_copy(b, a), BITNET_OK);
    assert_int_equal(bitnet_context_pos(b), 6);
    const float *x, *y;
    assert_int_equal(bitnet_context_logits(a, -1, &x), BITNET_OK);
    assert_int_equal(bitnet_context_logits(b, -1, &y), BITNET_OK);
    assert_memory_equal(x, y, (size_t)nv * sizeof(float));
    /* the fork and the original go their own ways, together */
    bitnet_context *ab[2] = { b, a };
    const int32_t *tp[2] = { u + 6, t + 6 };
    size_t nt[2] = { 4, 4 };
    assert_int_equal(bitnet_context_eval_multi(ab, tp, nt, 2, 0), BITNET_OK);
    expect_same_last(a, m, t, 10);
    expect_same_last(b, m, u, 10);
    assert_int_equal(bitnet_context_keep_prefix(b, u, 10), 9);

    assert_int_equal(bitnet_context_copy(small, a), BITNET_E_CONTEXT_FULL);
    assert_int_equal(bitnet_context_pos(small), 0);
    assert_int_equal(bitnet_context_copy(o, a), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_copy(a, a), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_copy(NULL, a), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_copy(a, NULL), BITNET_E_INVALID_ARG);
    /* an empty source empties the destination */
    bitnet_context_reset(small);
    assert_int_equal(bitnet_context_copy(a, small), BITNET_OK);
    assert_int_equal(bitnet_context_pos(a), 0);
    assert_int_equal(bitnet_context_logits(a, -1, &x), BITNET_E_STATE);

    bitnet_context_free(a);
    bitnet_context_free(b);
    bitnet_context_free(small);
    bitnet_context_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multi_f16_head),
        cmocka_unit_test(test_multi_q8_0_head),
        cmocka_unit_test(test_multi_q4_0_q6_k_heads),
        cmocka_unit_test(test_multi_int8_head),
        cmocka_unit_test(test_multi_bundled),
        cmocka_unit_test(test_multi_errors),
        cmocka_unit_test(test_keep_prefix),
        cmocka_unit_test(test_copy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
