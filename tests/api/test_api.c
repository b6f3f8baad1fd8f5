/*
 * API-level tests: versions, status strings, params structs of older and
 * newer callers, and argument validation of every entry point.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"

static char model_path[256];

static int make_model(void **state)
{
    (void)state;
    snprintf(model_path, sizeof(model_path), "/tmp/bitnet-test-api-%ld.gguf",
             (long)getpid());
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.n_embd = 128;
    sp.n_layer = 1;
    sp.n_ff = 256;
    sp.n_head = 4;
    sp.n_head_kv = 2;
    sp.n_vocab = 300;
    sp.seed = 7;
    int rc = bitnet_synth_write(model_path, &sp);
    if (rc != BITNET_OK)
        fprintf(stderr, "synth: %s: %s\n", bitnet_strerror(rc), bitnet_last_error());
    return rc == BITNET_OK ? 0 : -1;
}

static int remove_model(void **state)
{
    (void)state;
    unlink(model_path);
    return 0;
}

static bitnet_model *load(void)
{
    bitnet_model *m = NULL;
    int rc = bitnet_model_load_file(&m, model_path, NULL);
    if (rc != BITNET_OK)
        fprintf(stderr, "load: %s: %s\n", bitnet_strerror(rc), bitnet_last_error());
    assert_int_equal(rc, BITNET_OK);
    assert_non_null(m);
    return m;
}

/* ---- versions and status codes -------------------------------------- */

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(bitnet_version(), BITNET_VERSION);
    assert_int_equal(bitnet_version() >> 16, BITNET_VERSION_MAJOR);
    assert_int_equal(bitnet_abi_version(), BITNET_ABI_VERSION);
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", BITNET_VERSION_MAJOR,
             BITNET_VERSION_MINOR, BITNET_VERSION_PATCH);
    assert_string_equal(bitnet_version_string(), want);
}

static void test_strerror(void **state)
{
    (void)state;
    static const int codes[] = {
        BITNET_OK, BITNET_E_INVALID_ARG, BITNET_E_NOMEM, BITNET_E_IO,
        BITNET_E_FORMAT, BITNET_E_UNSUPPORTED, BITNET_E_BUFFER_TOO_SMALL,
        BITNET_E_CONTEXT_FULL, BITNET_E_ABORTED, BITNET_E_INTERNAL,
        BITNET_E_NOT_FOUND, BITNET_E_STATE, BITNET_E_GRAMMAR,
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        /* pinned values: 0, -1, -2, ... */
        assert_int_equal(codes[i], -(int)i);
        const char *s = bitnet_strerror(codes[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, bitnet_strerror(codes[j]));
    }
    int unknown[] = { 1, 5, -13, -100, 1000, INT32_MIN, INT32_MAX };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        assert_string_equal(bitnet_strerror(unknown[i]), "unknown error");
    assert_non_null(bitnet_last_error());
}

static void test_system_info(void **state)
{
    (void)state;
    const char *s = bitnet_system_info();
    assert_non_null(s);
    assert_non_null(strstr(s, "libbitnet"));
    assert_non_null(strstr(s, "tgemv"));
    assert_ptr_equal(s, bitnet_system_info());
}

/* ---- params structs --------------------------------------------------- */

static void test_params_init(void **state)
{
    (void)state;
    bitnet_context_params cp;
    memset(&cp, 0xab, sizeof(cp));
    bitnet_context_params_init(&cp);
    assert_int_equal(cp.struct_size, sizeof(cp));
    assert_int_equal(cp.n_batch, 512);
    assert_int_equal(cp.cpu_mask, BITNET_CPU_ALL);
    assert_null(cp.log_fn);

    /* an older caller's struct: only the first fields exist */
    unsigned char raw[sizeof(bitnet_context_params) + 16];
    memset(raw, 0xcd, sizeof(raw));
    size_t old = offsetof(bitnet_context_params, n_batch);
    bitnet_context_params_init_((bitnet_context_params *)raw, old);
    assert_int_equal(((bitnet_context_params *)raw)->struct_size, old);
    for (size_t i = old; i < sizeof(raw); i++)
        assert_int_equal(raw[i], 0xcd); /* nothing written past size */

    bitnet_sampler_params sp;
    bitnet_sampler_params_init(&sp);
    assert_true(fabsf(sp.temperature - 0.8f) < 1e-6f);
    assert_int_equal(sp.top_k, 40);
    assert_true(fabsf(sp.top_p - 0.95f) < 1e-6f);
    assert_true(fabsf(sp.min_p - 0.05f) < 1e-6f);
    assert_true(fabsf(sp.repeat_penalty - 1.0f) < 1e-6f);

    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    assert_int_equal(mp.struct_size, sizeof(mp));
    assert_int_equal(mp.flags, 0);

    /* NULL and tiny sizes are ignored, not crashes */
    bitnet_model_params_init_(NULL, sizeof(mp));
    bitnet_context_params_init_(NULL, sizeof(cp));
    bitnet_sampler_params_init_(NULL, sizeof(sp));
    bitnet_synth_params_init_(NULL, 64);
    bitnet_model_params_init_(&mp, 2);
}

static void test_params_older_caller(void **state)
{
    (void)state;
    bitnet_model *m = load();

    /* a caller that only knows n_ctx: the rest gets defaults */
    struct old_ctx_params { uint32_t struct_size; int32_t n_ctx; } old;
    old.struct_size = sizeof(old);
    old.n_ctx = 64;
    bitnet_context *ctx = NULL;
    int rc = bitnet_context_create(&ctx, m, (const bitnet_context_params *)&old);
    assert_int_equal(rc, BITNET_OK);
    assert_int_equal(bitnet_context_n_ctx(ctx), 64);
    int32_t tok = 1;
    assert_int_equal(bitnet_context_eval(ctx, &tok, 1, 0), BITNET_OK);
    bitnet_context_free(ctx);

    /* the same for model params: only struct_size and flags */
    struct old_model_params { uint32_t struct_size; uint32_t flags; } om = { sizeof(om), 0 };
    bitnet_model *m2 = NULL;
    rc = bitnet_model_load_file(&m2, model_path, (const bitnet_model_params *)&om);
    assert_int_equal(rc, BITNET_OK);
    bitnet_model_free(m2);
    bitnet_model_free(m);
}

static void test_params_newer_caller(void **state)
{
    (void)state;
    bitnet_model *m = load();
    /* a newer caller: a bigger struct. Zero tail is fine, non-zero is not. */
    struct newer {
        bitnet_context_params p;
        uint64_t future_field;
    } nw;
    memset(&nw, 0xee, sizeof(nw));
    /* what a newer header's init macro does: pass the newer, larger size */
    bitnet_context_params_init_(&nw.p, sizeof(nw));
    assert_int_equal(nw.p.struct_size, sizeof(nw));  /* the caller's size */
    assert_int_equal(nw.future_field, 0);            /* unknown fields zeroed */
    nw.p.n_ctx = 32;
    bitnet_context *ctx = NULL;
    assert_int_equal(bitnet_context_create(&ctx, m, &nw.p), BITNET_OK);
    bitnet_context_free(ctx);

    nw.future_field = 1;
    ctx = (bitnet_context *)&nw;   /* must be reset to NULL on failure */
    assert_int_equal(bitnet_context_create(&ctx, m, &nw.p), BITNET_E_UNSUPPORTED);
    assert_null(ctx);
    assert_non_null(strstr(bitnet_last_error(), "newer"));

    struct newer_m {
        bitnet_model_params p;
        uint32_t future[4];
    } nm;
    memset(&nm, 0, sizeof(nm));
    bitnet_model_params_init(&nm.p);
    nm.p.struct_size = sizeof(nm);
    nm.future[3] = 9;
    bitnet_model *m2 = (bitnet_model *)&nm;
    assert_int_equal(bitnet_model_load_file(&m2, model_path, &nm.p), BITNET_E_UNSUPPORTED);
    assert_null(m2);

    /* struct_size too small to hold even itself */
    bitnet_context_params bad;
    bitnet_context_params_init(&bad);
    bad.struct_size = 2;
    assert_int_equal(bitnet_context_create(&ctx, m, &bad), BITNET_E_INVALID_ARG);
    bitnet_model_free(m);
}

#define EXPECT_INVALID_P(call) assert_int_equal((call), BITNET_E_INVALID_ARG)

/* ---- params values and sizes ------------------------------------------ */

static void test_params_validation(void **state)
{
    (void)state;
    bitnet_model *m = (bitnet_model *)&m;
    bitnet_model_params mp;

    /* unknown flag bits */
    bitnet_model_params_init(&mp);
    mp.flags = 1u << 20;
    EXPECT_INVALID_P(bitnet_model_load_file(&m, model_path, &mp));
    assert_null(m);
    assert_non_null(strstr(bitnet_last_error(), "flags"));
    mp.flags = BITNET_MODEL_NO_MMAP | (1u << 3);
    EXPECT_INVALID_P(bitnet_model_load_buffer(&m, "GGUF", 4, &mp));
    assert_null(m);

    /* pre_tokenizer outside the BITNET_PRETOK_* values */
    const int32_t bad_pretok[] = { -1, BITNET_PRETOK_GPT2 + 1, 1000, INT32_MIN };
    for (size_t i = 0; i < sizeof(bad_pretok) / sizeof(bad_pretok[0]); i++) {
        bitnet_model_params_init(&mp);
        mp.pre_tokenizer = bad_pretok[i];
        EXPECT_INVALID_P(bitnet_model_load_file(&m, model_path, &mp));
        assert_null(m);
        assert_non_null(strstr(bitnet_last_error(), "pre_tokenizer"));
    }
    /* every valid value still loads */
    for (int32_t v = BITNET_PRETOK_AUTO; v <= BITNET_PRETOK_GPT2; v++) {
        bitnet_model_params_init(&mp);
        mp.pre_tokenizer = v;
        mp.flags = BITNET_MODEL_NO_MMAP | BITNET_MODEL_VOCAB_ONLY;
        assert_int_equal(bitnet_model_load_file(&m, model_path, &mp), BITNET_OK);
        bitnet_model_free(m);
    }

    /* An uninitialised struct: struct_size far larger than any version.
     * Refused from the first four bytes (ASan would catch a read past the
     * object, which is only sizeof(params) long). */
    const uint32_t huge[] = { 4097, 65536, 0xdeadbeefu, UINT32_MAX };
    bitnet_model *lm = load();
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        bitnet_model_params_init(&mp);
        mp.struct_size = huge[i];
        EXPECT_INVALID_P(bitnet_model_load_file(&m, model_path, &mp));
        assert_null(m);
        assert_non_null(strstr(bitnet_last_error(), "struct_size"));

        bitnet_context_params cp;
        bitnet_context_params_init(&cp);
        cp.struct_size = huge[i];
        bitnet_context *ctx = (bitnet_context *)&cp;
        EXPECT_INVALID_P(bitnet_context_create(&ctx, lm, &cp));
        assert_null(ctx);

        bitnet_sampler_params sp;
        bitnet_sampler_params_init(&sp);
        sp.struct_size = huge[i];
        bitnet_sampler *smp = (bitnet_sampler *)&sp;
        EXPECT_INVALID_P(bitnet_sampler_create(&smp, lm, &sp));
        assert_null(smp);

        bitnet_synth_params yp;
        bitnet_synth_params_init(&yp);
        yp.struct_size = huge[i];
        EXPECT_INVALID_P(bitnet_synth_write("/nonexistent-dir/x.gguf", &yp));
    }
    /* the cap itself is allowed (a zero tail) */
    struct big { bitnet_context_params p; unsigned char pad[4096]; } *bg;
    bg = calloc(1, sizeof(*bg));
    assert_non_null(bg);
    bitnet_context_params_init(&bg->p);
    bg->p.struct_size = 4096;
    bg->p.n_ctx = 16;
    bitnet_context *ctx = NULL;
    assert_int_equal(bitnet_context_create(&ctx, lm, &bg->p), BITNET_OK);
    bitnet_context_free(ctx);
    free(bg);
    bitnet_model_free(lm);
}

/* A model whose file says tokenizer.ggml.model "none": it loads, and every
 * tokenizer call reports BITNET_E_UNSUPPORTED, as the header lists. */
static void test_no_vocabulary(void **state)
{
    (void)state;
    FILE *f = fopen(model_path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, n, f), n);
    fclose(f);
    /* the value "gpt2" follows the key, its type (string) and its length */
    static const char key[] = "tokenizer.ggml.model";
    unsigned char *k = NULL;
    for (size_t i = 0; i + sizeof(key) + 16 < n && !k; i++)
        if (!memcmp(buf + i, key, sizeof(key) - 1)) k = buf + i;
    assert_non_null(k);
    unsigned char *val = k + (sizeof(key) - 1) + 4 + 8;
    assert_memory_equal(val, "gpt2", 4);
    memcpy(val, "none", 4);

    bitnet_model *m = NULL;
    assert_int_equal(bitnet_model_load_buffer(&m, buf, n, NULL), BITNET_OK);
    int32_t toks[8];
    size_t nt = 0;
    char text[16];
    assert_int_equal(bitnet_tokenize(m, "hi", 2, 0, toks, 8, &nt), BITNET_E_UNSUPPORTED);
    assert_non_null(strstr(bitnet_last_error(), "no tokenizer"));
    toks[0] = 1;
    assert_int_equal(bitnet_detokenize(m, toks, 1, 0, text, sizeof(text), &nt),
                     BITNET_E_UNSUPPORTED);
    assert_int_equal(bitnet_token_to_piece(m, 1, 0, text, sizeof(text), &nt),
                     BITNET_E_UNSUPPORTED);
    bitnet_detokenizer *d = NULL;
    assert_int_equal(bitnet_detokenizer_create(&d, m, 0), BITNET_E_UNSUPPORTED);
    assert_null(d);
    assert_int_equal(bitnet_token_bos(m), -1);
    assert_int_equal(bitnet_token_eos(m), -1);
    bitnet_model_free(m);
    free(buf);
}

/* ---- argument validation of every entry point ------------------------- */

#define EXPECT_INVALID(call) assert_int_equal((call), BITNET_E_INVALID_ARG)

static void test_null_args_model(void **state)
{
    (void)state;
    bitnet_model *m = NULL;
    EXPECT_INVALID(bitnet_model_load_file(NULL, model_path, NULL));
    EXPECT_INVALID(bitnet_model_load_file(&m, NULL, NULL));
    assert_null(m);
    EXPECT_INVALID(bitnet_model_load_buffer(NULL, "GGUF", 4, NULL));
    EXPECT_INVALID(bitnet_model_load_buffer(&m, NULL, 10, NULL));
    assert_null(m);
    bitnet_model_free(NULL);
    assert_null(bitnet_model_arch(NULL));
    assert_int_equal(bitnet_model_n_vocab(NULL), 0);
    assert_int_equal(bitnet_model_n_ctx_train(NULL), 0);
    assert_int_equal(bitnet_model_n_embd(NULL), 0);
    assert_int_equal(bitnet_model_n_layer(NULL), 0);
    size_t n = 0;
    char buf[64];
    EXPECT_INVALID(bitnet_model_meta(NULL, "general.architecture", buf, sizeof(buf), &n));

    m = load();
    EXPECT_INVALID(bitnet_model_meta(m, NULL, buf, sizeof(buf), &n));
    EXPECT_INVALID(bitnet_model_meta(m, "general.architecture", buf, sizeof(buf), NULL));
    EXPECT_INVALID(bitnet_model_meta(m, "general.architecture", NULL, 10, &n));
    assert_int_equal(bitnet_model_meta(m, "no.such.key", buf, sizeof(buf), &n),
                     BITNET_E_NOT_FOUND);
    assert_int_equal(bitnet_model_meta(m, "general.architecture", buf, 3, &n),
                     BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, strlen("bitnet-b1.58"));
    assert_int_equal(bitnet_model_meta(m, "general.architecture", buf, sizeof(buf), &n),
                     BITNET_OK);
    assert_string_equal(buf, "bitnet-b1.58");
    assert_string_equal(bitnet_model_arch(m), "bitnet-b1.58");
    assert_int_equal(bitnet_model_n_embd(m), 128);
    assert_int_equal(bitnet_model_n_layer(m), 1);
    assert_int_equal(bitnet_model_n_vocab(m), 300);
    bitnet_model_free(m);
}

static void test_null_args_tokenizer(void **state)
{
    (void)state;
    bitnet_model *m = load();
    int32_t toks[8];
    size_t n = 0;
    char buf[64];
    EXPECT_INVALID(bitnet_tokenize(NULL, "a", 1, 0, toks, 8, &n));
    EXPECT_INVALID(bitnet_tokenize(m, NULL, 1, 0, toks, 8, &n));
    EXPECT_INVALID(bitnet_tokenize(m, "a", 1, 0, NULL, 8, &n));
    EXPECT_INVALID(bitnet_tokenize(m, "a", 1, 0, toks, 8, NULL));
    EXPECT_INVALID(bitnet_tokenize(m, "a", 1, 0x80000000u, toks, 8, &n));
    assert_int_equal(bitnet_tokenize(m, NULL, 0, 0, NULL, 0, &n), BITNET_OK);
    assert_int_equal(n, 0);
    EXPECT_INVALID(bitnet_token_to_piece(NULL, 1, 0, buf, sizeof(buf), &n));
    EXPECT_INVALID(bitnet_token_to_piece(m, -1, 0, buf, sizeof(buf), &n));
    EXPECT_INVALID(bitnet_token_to_piece(m, 300, 0, buf, sizeof(buf), &n));
    EXPECT_INVALID(bitnet_token_to_piece(m, 1, 0, buf, sizeof(buf), NULL));
    EXPECT_INVALID(bitnet_token_to_piece(m, 1, 0, NULL, 4, &n));
    EXPECT_INVALID(bitnet_detokenize(NULL, toks, 1, 0, buf, sizeof(buf), &n));
    EXPECT_INVALID(bitnet_detokenize(m, NULL, 1, 0, buf, sizeof(buf), &n));
    toks[0] = 100000;
    EXPECT_INVALID(bitnet_detokenize(m, toks, 1, 0, buf, sizeof(buf), &n));
    toks[0] = 1;
    EXPECT_INVALID(bitnet_detokenize(m, toks, 1, 0, buf, sizeof(buf), NULL));
    assert_int_equal(bitnet_token_bos(NULL), -1);
    assert_int_equal(bitnet_token_eos(NULL), -1);
    assert_int_equal(bitnet_token_eot(NULL), -1);
    assert_int_equal(bitnet_token_is_eog(NULL, 0), 0);
    assert_int_equal(bitnet_token_is_eog(m, -5), 0);
    assert_int_equal(bitnet_token_is_eog(m, 1 << 30), 0);

    bitnet_detokenizer *d = NULL;
    EXPECT_INVALID(bitnet_detokenizer_create(NULL, m, 0));
    EXPECT_INVALID(bitnet_detokenizer_create(&d, NULL, 0));
    assert_null(d);
    assert_int_equal(bitnet_detokenizer_create(&d, m, 0), BITNET_OK);
    EXPECT_INVALID(bitnet_detokenizer_feed(NULL, 1, buf, sizeof(buf), &n));
    EXPECT_INVALID(bitnet_detokenizer_feed(d, -3, buf, sizeof(buf), &n));
    EXPECT_INVALID(bitnet_detokenizer_feed(d, 1, buf, sizeof(buf), NULL));
    EXPECT_INVALID(bitnet_detokenizer_flush(NULL, buf, sizeof(buf), &n));
    EXPECT_INVALID(bitnet_detokenizer_flush(d, buf, sizeof(buf), NULL));
    bitnet_detokenizer_free(d);
    bitnet_detokenizer_free(NULL);
    bitnet_model_free(m);
}

static void test_null_args_context(void **state)
{
    (void)state;
    bitnet_model *m = load();
    bitnet_context *ctx = NULL;
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    EXPECT_INVALID(bitnet_context_create(NULL, m, &cp));
    EXPECT_INVALID(bitnet_context_create(&ctx, NULL, &cp));
    cp.n_ctx = -1;
    EXPECT_INVALID(bitnet_context_create(&ctx, m, &cp));
    cp.n_ctx = 16;
    cp.n_threads = -2;
    EXPECT_INVALID(bitnet_context_create(&ctx, m, &cp));
    cp.n_threads = 100000;
    EXPECT_INVALID(bitnet_context_create(&ctx, m, &cp));
    cp.n_threads = 1;
    cp.n_batch = -1;
    EXPECT_INVALID(bitnet_context_create(&ctx, m, &cp));
    assert_null(ctx);
    cp.n_batch = 4;
    assert_int_equal(bitnet_context_create(&ctx, m, &cp), BITNET_OK);

    int32_t toks[4] = { 1, 2, 3, 4 };
    const float *lg = NULL;
    EXPECT_INVALID(bitnet_context_eval(NULL, toks, 1, 0));
    EXPECT_INVALID(bitnet_context_eval(ctx, NULL, 1, 0));
    EXPECT_INVALID(bitnet_context_eval(ctx, toks, 0, 0));
    int32_t bad = 300;
    EXPECT_INVALID(bitnet_context_eval(ctx, &bad, 1, 0));
    bad = -1;
    EXPECT_INVALID(bitnet_context_eval(ctx, &bad, 1, 0));
    assert_int_equal(bitnet_context_pos(ctx), 0);
    assert_int_equal(bitnet_context_logits(ctx, -1, &lg), BITNET_E_STATE);
    EXPECT_INVALID(bitnet_context_logits(NULL, -1, &lg));
    EXPECT_INVALID(bitnet_context_logits(ctx, -1, NULL));
    assert_int_equal(bitnet_context_eval(ctx, toks, 4, 0), BITNET_OK);
    EXPECT_INVALID(bitnet_context_logits(ctx, 4, &lg));
    EXPECT_INVALID(bitnet_context_logits(ctx, -2, &lg));
    assert_int_equal(bitnet_context_logits(ctx, 0, &lg), BITNET_E_STATE);
    assert_int_equal(bitnet_context_logits(ctx, 3, &lg), BITNET_OK);
    assert_int_equal(bitnet_context_logits(ctx, -1, &lg), BITNET_OK);
    for (int i = 0; i < 300; i++)
        assert_true(isfinite(lg[i]));

    assert_int_equal(bitnet_context_pos(NULL), 0);
    assert_int_equal(bitnet_context_n_ctx(NULL), 0);
    assert_null(bitnet_context_model(NULL));
    assert_ptr_equal(bitnet_context_model(ctx), m);
    EXPECT_INVALID(bitnet_context_rewind(NULL, 0));
    EXPECT_INVALID(bitnet_context_rewind(ctx, -1));
    EXPECT_INVALID(bitnet_context_rewind(ctx, 5));
    bitnet_context_reset(NULL);

    assert_int_equal(bitnet_context_state_size(NULL), 0);
    size_t n = 0;
    char small[8];
    EXPECT_INVALID(bitnet_context_state_save(NULL, small, sizeof(small), &n));
    EXPECT_INVALID(bitnet_context_state_save(ctx, small, sizeof(small), NULL));
    assert_int_equal(bitnet_context_state_save(ctx, small, sizeof(small), &n),
                     BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, bitnet_context_state_size(ctx));
    EXPECT_INVALID(bitnet_context_state_load(NULL, small, sizeof(small)));
    EXPECT_INVALID(bitnet_context_state_load(ctx, NULL, 10));
    assert_int_equal(bitnet_context_pos(ctx), 4);

    /* the context is full: nothing changes */
    int32_t many[16] = { 0 };
    assert_int_equal(bitnet_context_eval(ctx, many, 13, 0), BITNET_E_CONTEXT_FULL);
    assert_int_equal(bitnet_context_pos(ctx), 4);
    bitnet_context_free(ctx);
    bitnet_context_free(NULL);
    bitnet_model_free(m);
}

static void test_null_args_sampler_chat(void **state)
{
    (void)state;
    bitnet_model *m = load();
    bitnet_sampler *s = NULL;
    bitnet_sampler_params sp;
    bitnet_sampler_params_init(&sp);
    EXPECT_INVALID(bitnet_sampler_create(NULL, m, &sp));
    EXPECT_INVALID(bitnet_sampler_create(&s, NULL, &sp));
    sp.temperature = NAN;   /* negative is greedy; NaN is invalid */
    EXPECT_INVALID(bitnet_sampler_create(&s, m, &sp));
    sp.temperature = 0.8f;
    sp.top_k = -1;
    EXPECT_INVALID(bitnet_sampler_create(&s, m, &sp));
    sp.top_k = 40;
    sp.top_p = 1.5f;
    EXPECT_INVALID(bitnet_sampler_create(&s, m, &sp));
    sp.top_p = 0.95f;
    sp.min_p = -0.1f;
    EXPECT_INVALID(bitnet_sampler_create(&s, m, &sp));
    sp.min_p = 0.05f;
    sp.penalty_last_n = -1;
    EXPECT_INVALID(bitnet_sampler_create(&s, m, &sp));
    sp.penalty_last_n = 64;
    bitnet_logit_bias lb = { 300, 1.0f };
    sp.logit_bias = &lb;
    sp.n_logit_bias = 1;
    EXPECT_INVALID(bitnet_sampler_create(&s, m, &sp));
    sp.logit_bias = NULL;
    sp.n_logit_bias = 1;
    EXPECT_INVALID(bitnet_sampler_create(&s, m, &sp));
    sp.n_logit_bias = 0;
    assert_null(s);
    assert_int_equal(bitnet_sampler_create(&s, m, &sp), BITNET_OK);

    float logits[300];
    for (int i = 0; i < 300; i++)
        logits[i] = (float)i / 300.0f;
    int32_t tok = -1;
    EXPECT_INVALID(bitnet_sampler_sample_logits(NULL, logits, 300, &tok));
    EXPECT_INVALID(bitnet_sampler_sample_logits(s, NULL, 300, &tok));
    EXPECT_INVALID(bitnet_sampler_sample_logits(s, logits, 299, &tok));
    EXPECT_INVALID(bitnet_sampler_sample_logits(s, logits, 300, NULL));
    EXPECT_INVALID(bitnet_sampler_sample(NULL, NULL, -1, &tok));
    EXPECT_INVALID(bitnet_sampler_sample(s, NULL, -1, &tok));
    EXPECT_INVALID(bitnet_sampler_accept(NULL, 1));
    EXPECT_INVALID(bitnet_sampler_accept(s, 300));
    EXPECT_INVALID(bitnet_sampler_accept(s, -1));
    assert_int_equal(bitnet_sampler_accept(s, 5), BITNET_OK);
    assert_int_equal(bitnet_sampler_sample_logits(s, logits, 300, &tok), BITNET_OK);
    assert_true(tok >= 0 && tok < 300);
    bitnet_sampler_reset(NULL);
    bitnet_sampler_free(s);
    bitnet_sampler_free(NULL);

    bitnet_chat_message msg = { "user", "hi" };
    char buf[256];
    size_t n = 0;
    EXPECT_INVALID(bitnet_chat_render(NULL, NULL, &msg, 1, 1, buf, sizeof(buf), &n));
    EXPECT_INVALID(bitnet_chat_render(NULL, "bitnet", NULL, 1, 1, buf, sizeof(buf), &n));
    EXPECT_INVALID(bitnet_chat_render(NULL, "bitnet", &msg, 1, 1, buf, sizeof(buf), NULL));
    EXPECT_INVALID(bitnet_chat_render(NULL, "bitnet", &msg, 1, 1, NULL, 10, &n));
    bitnet_chat_message bad = { NULL, "hi" };
    EXPECT_INVALID(bitnet_chat_render(NULL, "bitnet", &bad, 1, 1, buf, sizeof(buf), &n));
    assert_int_equal(bitnet_chat_render(NULL, "no-such-template", &msg, 1, 1, buf,
                                        sizeof(buf), &n), BITNET_E_NOT_FOUND);
    assert_int_equal(bitnet_chat_render(NULL, "bitnet", &msg, 1, 1, buf, sizeof(buf), &n),
                     BITNET_OK);
    assert_int_equal(strlen(buf), n);
    bitnet_model_free(m);
}

static void test_null_args_synth(void **state)
{
    (void)state;
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    EXPECT_INVALID(bitnet_synth_write(NULL, &sp));
    sp.n_embd = 130;   /* not a multiple of n_head */
    sp.n_head = 4;
    EXPECT_INVALID(bitnet_synth_write("/tmp/bitnet-never-written.gguf", &sp));
    bitnet_synth_params_init(&sp);
    sp.n_layer = -1;
    EXPECT_INVALID(bitnet_synth_write("/tmp/bitnet-never-written.gguf", &sp));
    assert_int_equal(access("/tmp/bitnet-never-written.gguf", F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_system_info),
        cmocka_unit_test(test_params_init),
        cmocka_unit_test(test_params_older_caller),
        cmocka_unit_test(test_params_newer_caller),
        cmocka_unit_test(test_params_validation),
        cmocka_unit_test(test_no_vocabulary),
        cmocka_unit_test(test_null_args_model),
        cmocka_unit_test(test_null_args_tokenizer),
        cmocka_unit_test(test_null_args_context),
        cmocka_unit_test(test_null_args_sampler_chat),
        cmocka_unit_test(test_null_args_synth),
    };
    return cmocka_run_group_tests(tests, make_model, remove_model);
}
