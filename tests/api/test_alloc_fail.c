/*
 * Allocation failure at every point: for each phase (model load from a
 * buffer and from a file, context creation, eval, sampling, state save and
 * load, tokenization, chat tokenization, the synthetic writer) the phase is
 * run once to count its allocations, then once per allocation N with the
 * N-th one failing. Each run must end with BITNET_OK (the failure was
 * absorbed by a fallback) or BITNET_E_NOMEM with a message, leave no
 * half-made object behind, and leave objects it was given usable. Leaks are
 * caught by LeakSanitizer in the sanitizer build (CI: -Db_sanitize=address).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/internal.h"

#define COUNTING (LONG_MAX / 2)

static char model_path[256];
static unsigned char *model_bytes;
static size_t model_size;

static int setup(void **state)
{
    (void)state;
    snprintf(model_path, sizeof(model_path), "/tmp/bitnet-test-allocfail-%ld.gguf",
             (long)getpid());
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.n_embd = 128;
    sp.n_layer = 2;
    sp.n_ff = 256;
    sp.n_head = 4;
    sp.n_head_kv = 2;
    sp.n_vocab = 300;
    sp.seed = 11;
    if (bitnet_synth_write(model_path, &sp) != BITNET_OK)
        return -1;
    FILE *f = fopen(model_path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    model_size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    model_bytes = malloc(model_size);
    int ok = model_bytes && fread(model_bytes, 1, model_size, f) == model_size;
    fclose(f);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unlink(model_path);
    free(model_bytes);
    return 0;
}

/* A phase: run() does the work and returns a status; undo() releases what a
 * successful (or absorbed-failure) run made, so the next run starts alike. */
typedef struct phase {
    const char *name;
    int (*run)(void *arg);
    void (*undo)(void *arg);
    void *arg;
} phase;

static void sweep(const phase *p)
{
    bitnet__alloc_fail_at(COUNTING);
    int rc = p->run(p->arg);
    long n = COUNTING - bitnet__alloc_fail_pending();
    bitnet__alloc_fail_at(0);
    if (rc != BITNET_OK)
        fprintf(stderr, "%s: %s\n", p->name, bitnet_last_error());
    assert_int_equal(rc, BITNET_OK);
    if (p->undo) p->undo(p->arg);
    long absorbed = 0;
    for (long k = 1; k <= n; k++) {
        bitnet__alloc_fail_at(k);
        rc = p->run(p->arg);
        long left = bitnet__alloc_fail_pending();
        bitnet__alloc_fail_at(0);
        /* the phase is deterministic: the k-th allocation did happen */
        assert_int_equal(left, 0);
        if (rc == BITNET_OK) {
            if (getenv("BITNET_TEST_VERBOSE"))
                print_message("%s: allocation %ld absorbed\n", p->name, k);
            absorbed++;
        } else {
            if (rc != BITNET_E_NOMEM)
                fprintf(stderr, "%s: allocation %ld of %ld: %s: %s\n", p->name, k, n,
                        bitnet_strerror(rc), bitnet_last_error());
            assert_int_equal(rc, BITNET_E_NOMEM);
            assert_true(bitnet_last_error()[0] != '\0');
        }
        if (p->undo) p->undo(p->arg);
    }
    print_message("%-22s %5ld allocations, each failed once: %ld absorbed, "
                  "%ld reported BITNET_E_NOMEM\n", p->name, n, absorbed, n - absorbed);
}

/* ---- phases ----------------------------------------------------------- */

typedef struct fixture {
    bitnet_model *model;      /* made by a phase, or given to it */
    bitnet_context *ctx, *ctx2;
    bitnet_sampler *smp;
    int32_t tok;
    unsigned char *state;
    size_t state_size;
} fixture;

static void free_model(void *arg)
{
    fixture *f = arg;
    bitnet_model_free(f->model);
    f->model = NULL;
}

static int load_buffer(void *arg)
{
    fixture *f = arg;
    f->model = (bitnet_model *)f;       /* must be reset on failure */
    int rc = bitnet_model_load_buffer(&f->model, model_bytes, model_size, NULL);
    if (rc) assert_null(f->model);
    return rc;
}

static int load_file_read(void *arg)
{
    fixture *f = arg;
    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    mp.flags = BITNET_MODEL_NO_MMAP | BITNET_MODEL_INT8_HEAD;
    int rc = bitnet_model_load_file(&f->model, model_path, &mp);
    if (rc) assert_null(f->model);
    return rc;
}

static bitnet_context *new_ctx(const bitnet_model *m, int *rc, int threads)
{
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_ctx = 64;
    cp.n_threads = threads;
    cp.n_batch = 8;
    bitnet_context *c = NULL;
    *rc = bitnet_context_create(&c, m, &cp);
    if (*rc) assert_null(c);
    return c;
}

static int ctx_create(void *arg)
{
    fixture *f = arg;
    int rc;
    f->ctx = new_ctx(f->model, &rc, 2);
    return rc;
}

static void free_ctx(void *arg)
{
    fixture *f = arg;
    bitnet_context_free(f->ctx);
    f->ctx = NULL;
}

static const int32_t prompt[12] = { 1, 5, 9, 33, 2, 7, 100, 250, 3, 4, 8, 16 };

static int eval(void *arg)
{
    fixture *f = arg;
    int32_t pos = bitnet_context_pos(f->ctx);
    int rc = bitnet_context_eval(f->ctx, prompt, 12, 0);
    if (rc) {
        /* a failed eval leaves the context as it was */
        assert_int_equal(bitnet_context_pos(f->ctx), pos);
    }
    return rc;
}

static void reset_ctx(void *arg)
{
    fixture *f = arg;
    bitnet_context_reset(f->ctx);
}

static int sample(void *arg)
{
    fixture *f = arg;
    bitnet_sampler_params sp;
    bitnet_sampler_params_init(&sp);
    sp.seed = 3;
    sp.penalty_last_n = 16;
    sp.repeat_penalty = 1.1f;
    bitnet_logit_bias bias[2] = { { 5, -1.0f }, { 9, 2.0f } };
    sp.logit_bias = bias;
    sp.n_logit_bias = 2;
    f->smp = (bitnet_sampler *)f;
    int rc = bitnet_sampler_create(&f->smp, f->model, &sp);
    if (rc) {
        assert_null(f->smp);
        return rc;
    }
    for (int i = 0; i < 4 && !rc; i++) {
        rc = bitnet_sampler_sample(f->smp, f->ctx, -1, &f->tok);
        if (!rc) rc = bitnet_sampler_accept(f->smp, f->tok);
    }
    return rc;
}

static void free_smp(void *arg)
{
    fixture *f = arg;
    bitnet_sampler_free(f->smp);
    f->smp = NULL;
}

static int state_save_load(void *arg)
{
    fixture *f = arg;
    size_t n = 0;
    int rc = bitnet_context_state_save(f->ctx, f->state, f->state_size, &n);
    if (rc) return rc;
    rc = bitnet_context_state_load(f->ctx2, f->state, n);
    if (rc) return rc;
    assert_int_equal(bitnet_context_pos(f->ctx2), bitnet_context_pos(f->ctx));
    return BITNET_OK;
}

static int text(void *arg)
{
    fixture *f = arg;
    static const char s[] = "Hello, world! <|eot_id|> 12345 caf\xc3\xa9 \xe2\x82\xac";
    int32_t ids[512];
    size_t n = 0;
    int rc = bitnet_tokenize(f->model, s, sizeof(s) - 1,
                             BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL,
                             ids, 512, &n);
    if (rc) return rc;
    char buf[512];
    size_t nb = 0;
    rc = bitnet_detokenize(f->model, ids, n, BITNET_DETOK_SPECIAL, buf, sizeof(buf), &nb);
    if (rc) return rc;
    bitnet_detokenizer *d = NULL;
    rc = bitnet_detokenizer_create(&d, f->model, 0);
    if (rc) {
        assert_null(d);
        return rc;
    }
    for (size_t i = 0; i < n && !rc; i++)
        rc = bitnet_detokenizer_feed(d, ids[i], buf, sizeof(buf), &nb);
    if (!rc) rc = bitnet_detokenizer_flush(d, buf, sizeof(buf), &nb);
    bitnet_detokenizer_free(d);
    if (rc) return rc;
    const bitnet_chat_message msgs[2] = {
        { "system", "be brief" }, { "user", "hi <|eot_id|> there" } };
    rc = bitnet_chat_tokenize(f->model, "llama3", msgs, 2, 1, ids, 512, &n);
    if (rc) return rc;
    char out[512];
    return bitnet_chat_render(f->model, "bitnet", msgs, 2, 1, out, sizeof(out), &nb);
}

static int synth(void *arg)
{
    (void)arg;
    char path[300];
    snprintf(path, sizeof(path), "%s.synth", model_path);
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.n_embd = 128;
    sp.n_layer = 1;
    sp.n_ff = 256;
    sp.n_head = 2;
    sp.n_head_kv = 1;
    sp.n_vocab = 260;
    int rc = bitnet_synth_write(path, &sp);
    /* a failed write leaves nothing behind */
    if (rc) assert_int_not_equal(access(path, F_OK), 0);
    unlink(path);
    return rc;
}

/* ---- tests ------------------------------------------------------------ */

static void test_load(void **state)
{
    (void)state;
    fixture f = { 0 };
    phase a = { "load (buffer)", load_buffer, free_model, &f };
    sweep(&a);
    phase b = { "load (read, int8 head)", load_file_read, free_model, &f };
    sweep(&b);
}

static void test_context_eval_sample_state(void **state)
{
    (void)state;
    fixture f = { 0 };
    assert_int_equal(bitnet_model_load_buffer(&f.model, model_bytes, model_size, NULL),
                     BITNET_OK);
    phase c = { "context create", ctx_create, free_ctx, &f };
    sweep(&c);

    int rc;
    f.ctx = new_ctx(f.model, &rc, 2);
    assert_int_equal(rc, BITNET_OK);
    phase e = { "eval", eval, reset_ctx, &f };
    sweep(&e);
    /* the context still evaluates after all that, with the same logits */
    assert_int_equal(eval(&f), BITNET_OK);
    int32_t n_vocab = bitnet_model_n_vocab(f.model);
    const float *l1 = NULL;
    assert_int_equal(bitnet_context_logits(f.ctx, -1, &l1), BITNET_OK);
    float *copy = malloc((size_t)n_vocab * sizeof(float));
    assert_non_null(copy);
    memcpy(copy, l1, (size_t)n_vocab * sizeof(float));
    bitnet_context *fresh = new_ctx(f.model, &rc, 1);
    assert_int_equal(bitnet_context_eval(fresh, prompt, 12, 0), BITNET_OK);
    const float *l2 = NULL;
    assert_int_equal(bitnet_context_logits(fresh, -1, &l2), BITNET_OK);
    assert_memory_equal(copy, l2, (size_t)n_vocab * sizeof(float));
    bitnet_context_free(fresh);
    free(copy);

    phase s = { "sampler", sample, free_smp, &f };
    sweep(&s);

    f.ctx2 = new_ctx(f.model, &rc, 1);
    assert_int_equal(rc, BITNET_OK);
    f.state_size = bitnet_context_state_size(f.ctx);
    f.state = malloc(f.state_size);
    assert_non_null(f.state);
    phase st = { "state save/load", state_save_load, NULL, &f };
    sweep(&st);
    free(f.state);
    bitnet_context_free(f.ctx2);
    bitnet_context_free(f.ctx);
    bitnet_model_free(f.model);
}

static void test_text_and_synth(void **state)
{
    (void)state;
    fixture f = { 0 };
    assert_int_equal(bitnet_model_load_buffer(&f.model, model_bytes, model_size, NULL),
                     BITNET_OK);
    phase t = { "tokenizer and chat", text, NULL, &f };
    sweep(&t);
    bitnet_model_free(f.model);
    phase s = { "synth write", synth, NULL, NULL };
    sweep(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_context_eval_sample_state),
        cmocka_unit_test(test_text_and_synth),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
