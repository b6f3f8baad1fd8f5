/*
 * Context behaviour on small synthetic models (bitnet_synth_write):
 * bit-exact independence of thread count and batch split, rewind, state
 * blobs, context full, invalid arguments, abort, many contexts on one model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"
#include "test_util.h"

#define N_TOK 24

enum { M_B158, M_BITNET_TQ2, M_LLAMA, M_B158_Q8HEAD, M_OTHER, N_MODELS };

static char paths[N_MODELS][256];
static bitnet_model *models[N_MODELS];
static int32_t toks[N_TOK];

static int write_model(int i, const char *arch, int32_t wtype, int32_t etype, uint64_t seed,
                       int32_t n_embd, int32_t n_ff)
{
    char suffix[16];
    snprintf(suffix, sizeof(suffix), "-%d.gguf", i);
    bt_tmp_path(paths[i], sizeof(paths[i]), "eval", suffix);
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.arch = arch;
    sp.weight_type = wtype;
    sp.embd_type = etype;
    sp.seed = seed;
    sp.n_embd = n_embd;
    sp.n_ff = n_ff;
    sp.n_layer = 2;
    sp.n_head = 4;
    sp.n_head_kv = 2;
    sp.n_vocab = 300;
    return bt_synth_model(&models[i], paths[i], &sp) == BITNET_OK ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    if (write_model(M_B158, "bitnet-b1.58", BITNET_TYPE_I2_S, BITNET_TYPE_F16, 11, 256, 384) ||
        write_model(M_BITNET_TQ2, "bitnet", BITNET_TYPE_TQ2_0, BITNET_TYPE_F16, 12, 256, 512) ||
        write_model(M_LLAMA, "llama", BITNET_TYPE_I2_S, BITNET_TYPE_F16, 13, 128, 256) ||
        write_model(M_B158_Q8HEAD, "bitnet-b1.58", BITNET_TYPE_I2_S, BITNET_TYPE_Q8_0, 14, 128, 256) ||
        write_model(M_OTHER, "bitnet-b1.58", BITNET_TYPE_I2_S, BITNET_TYPE_F16, 99, 256, 384))
        return -1;
    uint32_t r = 12345;
    for (int i = 0; i < N_TOK; i++) {
        r = r * 1103515245u + 12345u;
        toks[i] = (int32_t)((r >> 8) % 300);
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

static bitnet_context *make_ctx(int mi, int threads, int n_ctx, int n_batch, uint32_t flags)
{
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_threads = threads;
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.flags = flags;
    bitnet_context *c = NULL;
    int rc = bitnet_context_create(&c, models[mi], &cp);
    if (rc != BITNET_OK)
        fail_msg("context: %s", bitnet_last_error());
    return c;
}

/* All positions' logits of toks[0..n) evaluated in one call. */
static float *logits_all(bitnet_context *c, int n)
{
    int32_t nv = bitnet_model_n_vocab(bitnet_context_model(c));
    assert_int_equal(bitnet_context_eval(c, toks, (size_t)n, BITNET_EVAL_ALL_LOGITS), BITNET_OK);
    float *out = malloc((size_t)n * (size_t)nv * sizeof(float));
    assert_non_null(out);
    for (int i = 0; i < n; i++) {
        const float *lg;
        assert_int_equal(bitnet_context_logits(c, i, &lg), BITNET_OK);
        memcpy(out + (size_t)i * nv, lg, (size_t)nv * sizeof(float));
    }
    return out;
}

static float *straight(int mi, uint32_t flags)
{
    bitnet_context *c = make_ctx(mi, 1, 64, 512, flags);
    float *r = logits_all(c, N_TOK);
    bitnet_context_free(c);
    /* sanity: finite, not constant, different at every position */
    int32_t nv = bitnet_model_n_vocab(models[mi]);
    for (int i = 0; i < N_TOK; i++) {
        const float *row = r + (size_t)i * nv;
        int varied = 0;
        for (int32_t j = 0; j < nv; j++) {
            assert_true(isfinite(row[j]));
            varied |= row[j] != row[0];
        }
        assert_true(varied);
        if (i > 0)
            assert_memory_not_equal(row, row - nv, (size_t)nv * sizeof(float));
    }
    return r;
}

static size_t row_bytes(int mi)
{
    return (size_t)bitnet_model_n_vocab(models[mi]) * sizeof(float);
}

static void test_threads_bitexact(void **state)
{
    (void)state;
    for (int mi = 0; mi < M_OTHER; mi++) {
        for (int fl = 0; fl < 2; fl++) {
            uint32_t flags = fl ? BITNET_CONTEXT_INT8_HEAD : 0;
            float *ref = straight(mi, flags);
            for (int t = 2; t <= 3; t++) {
                bitnet_context *c = make_ctx(mi, t, 64, 512, flags);
                float *l = logits_all(c, N_TOK);
                assert_memory_equal(ref, l, N_TOK * row_bytes(mi));
                free(l);
                bitnet_context_free(c);
            }
            free(ref);
        }
    }
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long pages_total = 0, pages_res = -1;
    if (fscanf(f, "%ld %ld", &pages_total, &pages_res) != 2) pages_res = -1;
    fclose(f);
    return pages_res < 0 ? -1 : pages_res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The KV cache is allocated untouched and on small pages: a context for
 * 65536 positions (64 MiB of K and V here) that has seen two tokens holds
 * only the pages of the rows written, not huge pages around them. */
static void test_kv_cache_lazy(void **state)
{
    (void)state;
    /* glibc's MALLOC_PERTURB_ (meson test sets it) fills every allocation,
     * which faults the whole cache in; the eval-context-kv-lazy test runs
     * this without it */
    const char *perturb = getenv("MALLOC_PERTURB_");
    if (perturb && *perturb && strcmp(perturb, "0") != 0) {
        print_message("MALLOC_PERTURB_=%s touches all allocated memory: checked by "
                      "eval-context-kv-lazy\n", perturb);
        skip();
    }
    const long before = rss_kb();
    if (before < 0)
        skip();
    bitnet_context *c = make_ctx(M_B158, 1, 65536, 64, 0);
    assert_int_equal(bitnet_context_eval(c, toks, 2, 0), BITNET_OK);
    const long after = rss_kb();
    print_message("resident after a 65536-position context and 2 tokens: +%ld kB\n",
                  after - before);
    if (!(after - before < 8 * 1024))
        fail_msg("context for 65536 positions holds %ld kB after 2 tokens", after - before);
    bitnet_context_free(c);
}

/* The KV cache is kept in chunks of 1024 positions (fewer when n_ctx is
 * smaller): copies and state blobs between contexts whose chunks differ,
 * and past a chunk boundary, continue exactly as the original. Every case
 * passes position 256, from where the first chunk is moved to huge pages
 * (bitnet__kv_promote: per token in the source, all at once in the copy
 * and the loaded context), which must change no value. */
static void kv_chunks_case(int32_t n_src, int32_t pos, int32_t n_copy, int32_t n_load)
{
    enum { MORE = 3 };
    const size_t rb = row_bytes(M_B158);
    int32_t *lt = malloc(sizeof(int32_t) * (size_t)(pos + MORE));
    assert_non_null(lt);
    uint32_t r = 4242u + (uint32_t)pos;
    for (int32_t i = 0; i < pos + MORE; i++) {
        r = r * 1103515245u + 12345u;
        lt[i] = (int32_t)((r >> 8) % 300);
    }
    bitnet_context *a = make_ctx(M_B158, 2, n_src, 512, 0);
    bitnet_context *b = make_ctx(M_B158, 1, n_copy, 512, 0);
    bitnet_context *c = make_ctx(M_B158, 2, n_load, 256, 0);
    assert_int_equal(bitnet_context_eval(a, lt, (size_t)pos, 0), BITNET_OK);
    assert_int_equal(bitnet_context_copy(b, a), BITNET_OK);
    size_t need = bitnet_context_state_size(a), n = 0;
    unsigned char *blob = malloc(need);
    assert_non_null(blob);
    assert_int_equal(bitnet_context_state_save(a, blob, need, &n), BITNET_OK);
    assert_int_equal(bitnet_context_state_load(c, blob, n), BITNET_OK);
    /* the blob of the copy is the blob of the original, byte for byte */
    unsigned char *blob2 = malloc(need);
    assert_non_null(blob2);
    assert_int_equal(bitnet_context_state_size(b), need);
    assert_int_equal(bitnet_context_state_save(b, blob2, need, &n), BITNET_OK);
    assert_memory_equal(blob, blob2, need);
    for (int32_t i = 0; i < MORE; i++) {
        const float *la, *lb, *lc;
        assert_int_equal(bitnet_context_eval(a, &lt[pos + i], 1, 0), BITNET_OK);
        assert_int_equal(bitnet_context_eval(b, &lt[pos + i], 1, 0), BITNET_OK);
        assert_int_equal(bitnet_context_eval(c, &lt[pos + i], 1, 0), BITNET_OK);
        assert_int_equal(bitnet_context_logits(a, -1, &la), BITNET_OK);
        assert_int_equal(bitnet_context_logits(b, -1, &lb), BITNET_OK);
        assert_int_equal(bitnet_context_logits(c, -1, &lc), BITNET_OK);
        assert_memory_equal(la, lb, rb);
        assert_memory_equal(la, lc, rb);
    }
    free(blob);
    free(blob2);
    free(lt);
    bitnet_context_free(a);
    bitnet_context_free(b);
    bitnet_context_free(c);
}

static void test_kv_chunks_copy_state(void **state)
{
    (void)state;
    kv_chunks_case(3000, 1100, 1200, 1105);   /* across the first chunk boundary */
    kv_chunks_case(3000, 600, 700, 650);      /* into contexts of one smaller chunk */
    kv_chunks_case(640, 600, 3000, 2048);     /* from one smaller chunk */
}

/* Past 1024 positions (BITNET_ATTN_SEG, kernels/layer.h) attention is cut
 * into segments folded in order, and a decode token's segments are shared
 * out among the threads (whichever thread is free takes the next): the
 * logits stay bit-exact for 1, 2 and 3 threads, at prompt positions past
 * one and two segments and at decode steps there. */
static void test_long_context_threads(void **state)
{
    (void)state;
    enum { SEG = 1024, N_PRE = 2 * SEG + 40, N_DEC = 3 };
    const size_t rb = row_bytes(M_B158), rows = N_PRE + N_DEC;
    int32_t *lt = malloc(sizeof(int32_t) * rows);
    assert_non_null(lt);
    uint32_t r = 777;
    for (size_t i = 0; i < rows; i++) {
        r = r * 1103515245u + 12345u;
        lt[i] = (int32_t)((r >> 8) % 300);
    }
    char *ref = NULL;
    for (int th = 1; th <= 3; th++) {
        bitnet_context *c = make_ctx(M_B158, th, N_PRE + N_DEC + 5, 512, 0);
        char *got = malloc(rb * rows);
        assert_non_null(got);
        assert_int_equal(bitnet_context_eval(c, lt, N_PRE, BITNET_EVAL_ALL_LOGITS), BITNET_OK);
        for (int i = 0; i < N_PRE; i++) {
            const float *lg;
            assert_int_equal(bitnet_context_logits(c, i, &lg), BITNET_OK);
            memcpy(got + (size_t)i * rb, lg, rb);
        }
        for (int i = 0; i < N_DEC; i++) {
            const float *lg;
            assert_int_equal(bitnet_context_eval(c, &lt[N_PRE + i], 1, 0), BITNET_OK);
            assert_int_equal(bitnet_context_logits(c, -1, &lg), BITNET_OK);
            for (size_t j = 0; j < rb / sizeof(float); j++)
                assert_true(isfinite(lg[j]));
            memcpy(got + (size_t)(N_PRE + i) * rb, lg, rb);
        }
        bitnet_context_free(c);
        if (!ref) {
            ref = got;
            continue;
        }
        for (size_t i = 0; i < rows; i++)
            if (memcmp(ref + i * rb, got + i * rb, rb) != 0)
                fail_msg("%d threads: logits of position %zu differ from 1 thread", th, i);
        free(got);
    }
    free(ref);
    free(lt);
}

static void test_batch_split_bitexact(void **state)
{
    (void)state;
    for (int mi = 0; mi < M_OTHER; mi++) {
        float *ref = straight(mi, 0);
        size_t rb = row_bytes(mi);
        /* token by token, 2 threads */
        bitnet_context *c = make_ctx(mi, 2, 64, 512, 0);
        for (int i = 0; i < N_TOK; i++) {
            const float *lg;
            assert_int_equal(bitnet_context_eval(c, &toks[i], 1, 0), BITNET_OK);
            assert_int_equal(bitnet_context_logits(c, -1, &lg), BITNET_OK);
            assert_memory_equal(lg, (const char *)ref + i * rb, rb);
        }
        assert_int_equal(bitnet_context_pos(c), N_TOK);
        bitnet_context_free(c);
        /* uneven chunks, and n_batch 5 cutting calls into internal steps */
        static const int chunks[] = { 3, 1, 7, 2, 11 };
        c = make_ctx(mi, 3, 64, 5, 0);
        int p = 0;
        for (int k = 0; k < 5; k++) {
            assert_int_equal(bitnet_context_eval(c, &toks[p], (size_t)chunks[k],
                                                 BITNET_EVAL_ALL_LOGITS), BITNET_OK);
            for (int i = 0; i < chunks[k]; i++) {
                const float *lg;
                assert_int_equal(bitnet_context_logits(c, i, &lg), BITNET_OK);
                assert_memory_equal(lg, (const char *)ref + (size_t)(p + i) * rb, rb);
            }
            p += chunks[k];
        }
        assert_int_equal(p, N_TOK);
        bitnet_context_free(c);
        /* one call, last logits only, n_batch 4 */
        c = make_ctx(mi, 2, 64, 4, 0);
        const float *lg;
        assert_int_equal(bitnet_context_eval(c, toks, N_TOK, 0), BITNET_OK);
        assert_int_equal(bitnet_context_logits(c, -1, &lg), BITNET_OK);
        assert_memory_equal(lg, (const char *)ref + (size_t)(N_TOK - 1) * rb, rb);
        assert_int_equal(bitnet_context_logits(c, N_TOK - 1, &lg), BITNET_OK);
        assert_int_equal(bitnet_context_logits(c, 0, &lg), BITNET_E_STATE);
        assert_int_equal(bitnet_context_logits(c, N_TOK, &lg), BITNET_E_INVALID_ARG);
        assert_int_equal(bitnet_context_logits(c, -2, &lg), BITNET_E_INVALID_ARG);
        bitnet_context_free(c);
        free(ref);
    }
}

static void test_rewind(void **state)
{
    (void)state;
    int mi = M_B158;
    size_t rb = row_bytes(mi);
    float *ref = straight(mi, 0);
    bitnet_context *c = make_ctx(mi, 2, 64, 512, 0);
    /* a different continuation first, then rewind and redo */
    int32_t other[6] = { 1, 2, 3, 4, 5, 6 };
    assert_int_equal(bitnet_context_eval(c, toks, 10, 0), BITNET_OK);
    assert_int_equal(bitnet_context_eval(c, other, 6, 0), BITNET_OK);
    assert_int_equal(bitnet_context_rewind(c, 17), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_rewind(c, -1), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_pos(c), 16);
    assert_int_equal(bitnet_context_rewind(c, 7), BITNET_OK);
    assert_int_equal(bitnet_context_pos(c), 7);
    const float *lg;
    assert_int_equal(bitnet_context_logits(c, -1, &lg), BITNET_E_STATE);
    assert_int_equal(bitnet_context_eval(c, toks + 7, N_TOK - 7, BITNET_EVAL_ALL_LOGITS),
                     BITNET_OK);
    for (int i = 7; i < N_TOK; i++) {
        assert_int_equal(bitnet_context_logits(c, i - 7, &lg), BITNET_OK);
        assert_memory_equal(lg, (const char *)ref + (size_t)i * rb, rb);
    }
    /* reset then full re-eval */
    bitnet_context_reset(c);
    assert_int_equal(bitnet_context_pos(c), 0);
    float *again = logits_all(c, N_TOK);
    assert_memory_equal(again, ref, N_TOK * rb);
    free(again);
    bitnet_context_free(c);
    bitnet_context_reset(NULL);
    assert_int_equal(bitnet_context_rewind(NULL, 0), BITNET_E_INVALID_ARG);
    free(ref);
}

static void test_state_roundtrip(void **state)
{
    (void)state;
    int mi = M_B158;
    size_t rb = row_bytes(mi);
    float *ref = straight(mi, 0);
    bitnet_context *a = make_ctx(mi, 2, 64, 512, 0);
    assert_int_equal(bitnet_context_eval(a, toks, 10, 0), BITNET_OK);
    size_t need = bitnet_context_state_size(a), n = 0;
    assert_true(need > 0);
    char small[8];
    assert_int_equal(bitnet_context_state_save(a, small, sizeof(small), &n),
                     BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, need);
    unsigned char *blob = malloc(need);
    assert_non_null(blob);
    assert_int_equal(bitnet_context_state_save(a, blob, need, &n), BITNET_OK);
    assert_int_equal(n, need);

    /* load into a context with another n_ctx and thread count */
    bitnet_context *b = make_ctx(mi, 1, 40, 512, 0);
    assert_int_equal(bitnet_context_state_load(b, blob, need), BITNET_OK);
    assert_int_equal(bitnet_context_pos(b), 10);
    const float *lg;
    assert_int_equal(bitnet_context_logits(b, -1, &lg), BITNET_OK);
    assert_memory_equal(lg, (const char *)ref + 9 * rb, rb);
    assert_int_equal(bitnet_context_eval(b, toks + 10, N_TOK - 10, BITNET_EVAL_ALL_LOGITS),
                     BITNET_OK);
    for (int i = 10; i < N_TOK; i++) {
        assert_int_equal(bitnet_context_logits(b, i - 10, &lg), BITNET_OK);
        assert_memory_equal(lg, (const char *)ref + (size_t)i * rb, rb);
    }

    /* refusals leave the context unchanged */
    int32_t pos_b = bitnet_context_pos(b);
    assert_int_equal(bitnet_context_state_load(b, blob, need - 1), BITNET_E_FORMAT);
    assert_int_equal(bitnet_context_state_load(b, blob, 20), BITNET_E_FORMAT);
    blob[need / 2] ^= 0x40;
    assert_int_equal(bitnet_context_state_load(b, blob, need), BITNET_E_FORMAT);
    blob[need / 2] ^= 0x40;
    bitnet_context *small_ctx = make_ctx(mi, 1, 8, 512, 0);
    assert_int_equal(bitnet_context_state_load(small_ctx, blob, need), BITNET_E_STATE);
    assert_int_equal(bitnet_context_pos(small_ctx), 0);
    bitnet_context_free(small_ctx);
    bitnet_context *o = make_ctx(M_OTHER, 1, 64, 512, 0);
    assert_int_equal(bitnet_context_state_load(o, blob, need), BITNET_E_STATE);
    assert_int_equal(bitnet_context_pos(o), 0);
    bitnet_context_free(o);
    assert_int_equal(bitnet_context_pos(b), pos_b);
    assert_int_equal(bitnet_context_logits(b, N_TOK - 11, &lg), BITNET_OK);
    assert_memory_equal(lg, (const char *)ref + (size_t)(N_TOK - 1) * rb, rb);

    /* an empty context round-trips too */
    bitnet_context_reset(a);
    need = bitnet_context_state_size(a);
    assert_int_equal(bitnet_context_state_save(a, blob, need, &n), BITNET_OK);
    assert_int_equal(bitnet_context_state_load(b, blob, n), BITNET_OK);
    assert_int_equal(bitnet_context_pos(b), 0);
    assert_int_equal(bitnet_context_logits(b, -1, &lg), BITNET_E_STATE);

    assert_int_equal(bitnet_context_state_load(b, NULL, 10), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_state_save(NULL, blob, need, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_state_size(NULL), 0);
    free(blob);
    bitnet_context_free(a);
    bitnet_context_free(b);
    free(ref);
}

static void test_context_full_and_args(void **state)
{
    (void)state;
    int mi = M_B158;
    size_t rb = row_bytes(mi);
    bitnet_context *c = make_ctx(mi, 2, 8, 512, 0);
    assert_int_equal(bitnet_context_n_ctx(c), 8);
    assert_int_equal(bitnet_context_eval(c, toks, 6, 0), BITNET_OK);
    const float *lg;
    assert_int_equal(bitnet_context_logits(c, -1, &lg), BITNET_OK);
    float *keep = malloc(rb);
    memcpy(keep, lg, rb);
    assert_int_equal(bitnet_context_eval(c, toks + 6, 3, 0), BITNET_E_CONTEXT_FULL);
    assert_int_equal(bitnet_context_pos(c), 6);
    assert_int_equal(bitnet_context_logits(c, -1, &lg), BITNET_OK);
    assert_memory_equal(lg, keep, rb);
    int32_t bad[2] = { 1, 300 };
    assert_int_equal(bitnet_context_eval(c, bad, 2, 0), BITNET_E_INVALID_ARG);
    bad[1] = -1;
    assert_int_equal(bitnet_context_eval(c, bad, 2, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_eval(c, NULL, 2, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_eval(c, toks, 0, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_eval(NULL, toks, 1, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_eval(c, toks, 1, 0x80), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_pos(c), 6);
    assert_int_equal(bitnet_context_logits(c, -1, &lg), BITNET_OK);
    assert_memory_equal(lg, keep, rb);
    /* the remaining room still works and matches a straight run */
    assert_int_equal(bitnet_context_eval(c, toks + 6, 2, 0), BITNET_OK);
    assert_int_equal(bitnet_context_pos(c), 8);
    float *ref = straight(mi, 0);
    assert_int_equal(bitnet_context_logits(c, -1, &lg), BITNET_OK);
    assert_memory_equal(lg, (const char *)ref + 7 * rb, rb);
    assert_int_equal(bitnet_context_eval(c, toks, 1, 0), BITNET_E_CONTEXT_FULL);
    bitnet_context_free(c);
    free(ref);
    free(keep);

    /* creation arguments */
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    bitnet_context *x = (bitnet_context *)&cp;
    assert_int_equal(bitnet_context_create(&x, NULL, &cp), BITNET_E_INVALID_ARG);
    assert_null(x);
    assert_int_equal(bitnet_context_create(NULL, models[mi], &cp), BITNET_E_INVALID_ARG);
    cp.n_threads = 257;
    assert_int_equal(bitnet_context_create(&x, models[mi], &cp), BITNET_E_INVALID_ARG);
    cp.n_threads = 1;
    cp.n_ctx = -1;
    assert_int_equal(bitnet_context_create(&x, models[mi], &cp), BITNET_E_INVALID_ARG);
    cp.n_ctx = 0;
    cp.n_batch = -3;
    assert_int_equal(bitnet_context_create(&x, models[mi], &cp), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_context_create(&x, models[mi], NULL), BITNET_OK);
    assert_true(bitnet_context_n_ctx(x) > 0);
    assert_ptr_equal(bitnet_context_model(x), models[mi]);
    bitnet_context_free(x);
    bitnet_context_free(NULL);
    assert_int_equal(bitnet_context_pos(NULL), 0);
    assert_int_equal(bitnet_context_n_ctx(NULL), 0);
    assert_null(bitnet_context_model(NULL));

    /* a vocabulary-only model cannot run */
    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    mp.flags = BITNET_MODEL_VOCAB_ONLY;
    bitnet_model *vm = NULL;
    assert_int_equal(bitnet_model_load_file(&vm, paths[mi], &mp), BITNET_OK);
    assert_int_equal(bitnet_context_create(&x, vm, NULL), BITNET_E_UNSUPPORTED);
    assert_null(x);
    bitnet_model_free(vm);
}

static int abort_after(void *user)
{
    int *n = user;
    if (*n < 0)
        return 0;
    return (*n)-- == 0;
}

static void test_abort(void **state)
{
    (void)state;
    int mi = M_B158;
    size_t rb = row_bytes(mi);
    float *ref = straight(mi, 0);
    int countdown = -1;
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_threads = 2;
    cp.n_ctx = 64;
    cp.n_batch = 4;
    cp.abort_fn = abort_after;
    cp.abort_user = &countdown;
    bitnet_context *c = NULL;
    assert_int_equal(bitnet_context_create(&c, models[mi], &cp), BITNET_OK);
    assert_int_equal(bitnet_context_eval(c, toks, 5, 0), BITNET_OK);
    const float *lg;
    /* stop after 3 layers (in the second internal step of this call) */
    countdown = 3;
    assert_int_equal(bitnet_context_eval(c, toks + 5, 10, BITNET_EVAL_ALL_LOGITS),
                     BITNET_E_ABORTED);
    assert_int_equal(bitnet_context_pos(c), 5);
    assert_int_equal(bitnet_context_logits(c, -1, &lg), BITNET_OK);
    assert_memory_equal(lg, (const char *)ref + 4 * rb, rb);
    countdown = -1;
    assert_int_equal(bitnet_context_eval(c, toks + 5, N_TOK - 5, BITNET_EVAL_ALL_LOGITS),
                     BITNET_OK);
    for (int i = 5; i < N_TOK; i++) {
        assert_int_equal(bitnet_context_logits(c, i - 5, &lg), BITNET_OK);
        assert_memory_equal(lg, (const char *)ref + (size_t)i * rb, rb);
    }
    bitnet_context_free(c);
    free(ref);
}

typedef struct worker_arg {
    int mi;
    const bitnet_model *model;  /* overrides models[mi] when set */
    uint32_t flags;
    float *out;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_threads = 1;
    cp.n_ctx = 64;
    cp.flags = w->flags;
    bitnet_context *c = NULL;
    if (bitnet_context_create(&c, w->model ? w->model : models[w->mi], &cp) != BITNET_OK)
        return NULL;
    size_t rb = row_bytes(w->mi);
    w->out = malloc(N_TOK * rb);
    for (int i = 0; w->out && i < N_TOK; i++) {
        const float *lg;
        if (bitnet_context_eval(c, &toks[i], 1, 0) != BITNET_OK ||
            bitnet_context_logits(c, -1, &lg) != BITNET_OK) {
            free(w->out);
            w->out = NULL;
            break;
        }
        memcpy((char *)w->out + (size_t)i * rb, lg, rb);
    }
    bitnet_context_free(c);
    return NULL;
}

static void test_many_contexts(void **state)
{
    (void)state;
    pthread_t th[4];
    worker_arg wa[4];
    for (int i = 0; i < 4; i++) {
        wa[i].mi = i % 2 ? M_B158_Q8HEAD : M_B158;
        wa[i].model = NULL;
        wa[i].flags = 0;
        wa[i].out = NULL;
        assert_int_equal(pthread_create(&th[i], NULL, worker, &wa[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    float *ref0 = straight(M_B158, 0), *ref1 = straight(M_B158_Q8HEAD, 0);
    for (int i = 0; i < 4; i++) {
        assert_non_null(wa[i].out);
        assert_memory_equal(wa[i].out, i % 2 ? ref1 : ref0, N_TOK * row_bytes(wa[i].mi));
        free(wa[i].out);
    }
    free(ref0);
    free(ref1);

    /* the int8 head of a fresh model, built lazily by whichever context
     * comes first while the others wait for it */
    bitnet_model *fresh = NULL;
    assert_int_equal(bitnet_model_load_file(&fresh, paths[M_B158], NULL), BITNET_OK);
    for (int i = 0; i < 4; i++) {
        wa[i].mi = M_B158;
        wa[i].model = fresh;
        wa[i].flags = BITNET_CONTEXT_INT8_HEAD;
        wa[i].out = NULL;
        assert_int_equal(pthread_create(&th[i], NULL, worker, &wa[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    float *ref8 = straight(M_B158, BITNET_CONTEXT_INT8_HEAD);
    for (int i = 0; i < 4; i++) {
        assert_non_null(wa[i].out);
        assert_memory_equal(wa[i].out, ref8, N_TOK * row_bytes(M_B158));
        free(wa[i].out);
    }
    free(ref8);
    bitnet_model_free(fresh);
}

/* The int8 head approximates the exact head closely. */
static void test_int8_head_close(void **state)
{
    (void)state;
    int mi = M_B158;
    int32_t nv = bitnet_model_n_vocab(models[mi]);
    float *a = straight(mi, 0), *b = straight(mi, BITNET_CONTEXT_INT8_HEAD);
    for (int i = 0; i < N_TOK; i++) {
        double dot = 0, na = 0, nb = 0;
        for (int32_t j = 0; j < nv; j++) {
            double x = a[(size_t)i * nv + j], y = b[(size_t)i * nv + j];
            dot += x * y;
            na += x * x;
            nb += y * y;
        }
        assert_true(dot / sqrt(na * nb) > 0.999);
    }
    free(a);
    free(b);
}

/* The same ternary weights stored as I2_S, TQ2_0, TQ1_0 or F16 give the
 * same logits, bit for bit. */
static void test_formats_identical(void **state)
{
    (void)state;
    static const int32_t types[] = { BITNET_TYPE_I2_S, BITNET_TYPE_TQ2_0,
                                     BITNET_TYPE_TQ1_0, BITNET_TYPE_F16 };
    float *ref = NULL;
    size_t rb = 0;
    for (int i = 0; i < 4; i++) {
        char path[256];
        char suffix[16];
        snprintf(suffix, sizeof(suffix), "-%d.gguf", i);
        bt_tmp_path(path, sizeof(path), "eval-fmt", suffix);
        bitnet_synth_params sp;
        bitnet_synth_params_init(&sp);
        sp.arch = "bitnet";
        sp.weight_type = types[i];
        sp.seed = 21;
        sp.n_embd = 256;
        sp.n_ff = 256;
        sp.n_vocab = 300;
        assert_int_equal(bitnet_synth_write(path, &sp), BITNET_OK);
        bitnet_model *m = NULL;
        assert_int_equal(bitnet_model_load_file(&m, path, NULL), BITNET_OK);
        remove(path);
        bitnet_context_params cp;
        bitnet_context_params_init(&cp);
        cp.n_threads = 2;
        cp.n_ctx = 32;
        bitnet_context *c = NULL;
        assert_int_equal(bitnet_context_create(&c, m, &cp), BITNET_OK);
        float *l = logits_all(c, N_TOK);
        rb = (size_t)bitnet_model_n_vocab(m) * sizeof(float);
        if (ref) {
            assert_memory_equal(l, ref, N_TOK * rb);
            free(l);
        } else {
            ref = l;
        }
        bitnet_context_free(c);
        bitnet_model_free(m);
    }
    free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_bitexact),
        cmocka_unit_test(test_batch_split_bitexact),
        cmocka_unit_test(test_long_context_threads),
        cmocka_unit_test(test_kv_cache_lazy),
        cmocka_unit_test(test_kv_chunks_copy_state),
        cmocka_unit_test(test_rewind),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_context_full_and_args),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_many_contexts),
        cmocka_unit_test(test_int8_head_close),
        cmocka_unit_test(test_formats_identical),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
