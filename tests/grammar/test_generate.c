/*
 * Generation with the bundled model (models/tinystories-bitnet.gguf) under
 * GBNF grammars and JSON Schemas, at several seeds and temperatures: every
 * output is complete, matches its grammar, and for schemas is parsed by
 * jansson and validated against the schema. Also: end-of-generation only
 * where the grammar may end, accept refusing tokens the grammar does not
 * allow, reset, determinism, and errors at create.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "lib_config.h"
#include "sample/grammar.h"

#if BITNET_HAVE_JSON
#include "schema_check.h"
#endif

#define MODEL MODEL_DIR "/tinystories-bitnet.gguf"
#define MAX_GEN 400

static bitnet_model *model;
static bitnet_context *ctx;

static int setup(void **state)
{
    (void)state;
    if (bitnet_model_load_file(&model, MODEL, NULL) != BITNET_OK) {
        fprintf(stderr, "cannot load %s: %s\n", MODEL, bitnet_last_error());
        return -1;
    }
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_ctx = 512;
    cp.n_threads = 2;
    return bitnet_context_create(&ctx, model, &cp) == BITNET_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bitnet_context_free(ctx);
    bitnet_model_free(model);
    return 0;
}

/* Generate after a prompt until end-of-generation (or MAX_GEN tokens);
 * returns the text (the concatenated pieces) and whether EOG came. */
static int generate(const char *grammar, uint64_t seed, float temp,
                    char *out, size_t cap, size_t *n_out)
{
    bitnet_sampler_params sp;
    bitnet_sampler_params_init(&sp);
    sp.seed = seed;
    sp.temperature = temp;
    sp.grammar = grammar;
    bitnet_sampler *s;
    int rc = bitnet_sampler_create(&s, model, &sp);
    if (rc != BITNET_OK)
        fprintf(stderr, "sampler: %s\n", bitnet_last_error());
    assert_int_equal(rc, BITNET_OK);
    bitnet_context_reset(ctx);
    static const char prompt[] = "Once upon a time, there was a little girl named";
    int32_t toks[64];
    size_t nt;
    assert_int_equal(bitnet_tokenize(model, prompt, sizeof(prompt) - 1,
                                     BITNET_TOKENIZE_ADD_BOS, toks, 64, &nt), BITNET_OK);
    assert_int_equal(bitnet_context_eval(ctx, toks, nt, 0), BITNET_OK);
    size_t n = 0;
    int ended = 0;
    for (int i = 0; i < MAX_GEN; i++) {
        int32_t t;
        rc = bitnet_sampler_sample(s, ctx, -1, &t);
        if (rc != BITNET_OK)
            fprintf(stderr, "sample: %s\n", bitnet_last_error());
        assert_int_equal(rc, BITNET_OK);
        assert_int_equal(bitnet_sampler_accept(s, t), BITNET_OK);
        if (bitnet_token_is_eog(model, t)) {
            ended = 1;
            /* after the end nothing more can be sampled */
            int32_t t2;
            assert_int_equal(bitnet_sampler_sample(s, ctx, -1, &t2), BITNET_E_GRAMMAR);
            break;
        }
        size_t pn;
        assert_int_equal(bitnet_token_to_piece(model, t, 0, out + n, cap - n - 1, &pn),
                         BITNET_OK);
        n += pn;
        if (bitnet_context_pos(ctx) + 1 > bitnet_context_n_ctx(ctx))
            break;
        assert_int_equal(bitnet_context_eval(ctx, &t, 1, 0), BITNET_OK);
    }
    out[n] = '\0';
    *n_out = n;
    bitnet_sampler_free(s);
    return ended;
}

static const float temps[] = { 0.0f, 0.8f, 1.5f };

static void check_grammar_outputs(const char *grammar, int want_end)
{
    bn_grammar *g;
    assert_int_equal(bitnet__grammar_parse(grammar, NULL, &g), BITNET_OK);
    for (uint64_t seed = 1; seed <= 2; seed++)
        for (size_t ti = 0; ti < sizeof(temps) / sizeof(temps[0]); ti++) {
            char out[8192];
            size_t n;
            int ended = generate(grammar, seed, temps[ti], out, sizeof(out), &n);
            if (want_end && !ended)
                fprintf(stderr, "no end after %zu bytes: %s\n", n, out);
            if (want_end)
                assert_true(ended);
            if (ended) {
                if (bitnet__grammar_match(g, out, n) != 1)
                    fprintf(stderr, "output does not match: [%s]\n", out);
                assert_int_equal(bitnet__grammar_match(g, out, n), 1);
            }
        }
    bitnet__grammar_free(g);
}

static void test_gbnf(void **state)
{
    (void)state;
    check_grammar_outputs("root ::= (\"yes\" | \"no\") \".\"", 1);
    check_grammar_outputs(
        "root ::= name \" is \" age \" years old\"\n"
        "name ::= [A-Z] [a-z]{1,10}\n"
        "age ::= [1-9] [0-9]?\n", 1);
    check_grammar_outputs(
        "root ::= item (\", \" item){1,3} \"!\"\n"
        "item ::= \"cat\" | \"dog\" | \"ball\" | \"tree\" | [a-z]{2,5}\n", 1);
    /* free text without a quote or a newline, then a final period */
    check_grammar_outputs("root ::= [^\"\\n.]{1,60} \".\"", 1);
}

#if BITNET_HAVE_JSON
static const char *const schemas[] = {
    ("{\"type\": \"object\", \"properties\": {"
    "\"name\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 12},"
    "\"age\": {\"type\": \"integer\"},"
    "\"happy\": {\"type\": \"boolean\"},"
    "\"pets\": {\"type\": \"array\", \"items\": {\"enum\": [\"cat\", \"dog\", \"fish\"]}, \"maxItems\": 3},"
    "\"friend\": {\"anyOf\": [{\"type\": \"null\"}, {\"type\": \"string\", \"maxLength\": 8}]}},"
    "\"required\": [\"name\", \"age\", \"happy\"], \"additionalProperties\": false}"),

    ("{\"$defs\": {\"when\": {\"type\": \"string\", \"format\": \"date\"}},"
    " \"type\": \"array\", \"minItems\": 1, \"maxItems\": 3,"
    " \"items\": {\"type\": \"object\", \"properties\": {\"day\": {\"$ref\": \"#/$defs/when\"},"
    " \"id\": {\"type\": \"string\", \"format\": \"uuid\"},"
    " \"score\": {\"type\": \"number\"}}, \"required\": [\"day\", \"score\"]}}"),

    ("{\"oneOf\": [{\"const\": \"none\"}, {\"type\": \"array\", \"maxItems\": 4,"
     " \"items\": {\"type\": [\"integer\", \"null\"]}}]}"),
};

static void test_schemas(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++) {
        size_t gn;
        static char grammar[1 << 16];
        assert_int_equal(bitnet_json_schema_to_grammar(schemas[i], grammar,
                                                       sizeof(grammar), &gn), BITNET_OK);
        json_t *schema = json_loads(schemas[i], 0, NULL);
        assert_non_null(schema);
        for (uint64_t seed = 1; seed <= 2; seed++)
            for (size_t ti = 0; ti < sizeof(temps) / sizeof(temps[0]); ti++) {
                char out[8192];
                size_t n;
                int ended = generate(grammar, seed, temps[ti], out, sizeof(out), &n);
                if (!ended)
                    fprintf(stderr, "schema %zu seed %d: no end: %s\n", i, (int)seed, out);
                assert_true(ended);
                json_error_t err;
                json_t *v = json_loads(out, JSON_DECODE_ANY, &err);
                if (!v)
                    fprintf(stderr, "not JSON (%s): %s\n", err.text, out);
                assert_non_null(v);
                if (!sc_valid(v, schema, schema))
                    fprintf(stderr, "invalid (%s): %s\n", sc_why, out);
                assert_int_equal(sc_valid(v, schema, schema), 1);
                json_decref(v);
            }
        json_decref(schema);
    }
}
#endif

/* End of generation only where the grammar may end; tokens outside the
 * grammar refused by accept; reset; determinism. */
static void test_rules(void **state)
{
    (void)state;
    const int32_t nv = bitnet_model_n_vocab(model);
    const int32_t eos = bitnet_token_eos(model);
    assert_true(eos >= 0);
    float *logits = malloc((size_t)nv * sizeof(*logits));
    assert_non_null(logits);
    /* Logits that love EOS: still no EOS before the grammar can end. */
    for (int32_t i = 0; i < nv; i++)
        logits[i] = 0.0f;
    logits[eos] = 100.0f;
    bitnet_sampler_params sp;
    bitnet_sampler_params_init(&sp);
    sp.temperature = 0.0f;
    sp.grammar = "root ::= \"ab\" | \"abcd\"";
    bitnet_sampler *s;
    assert_int_equal(bitnet_sampler_create(&s, model, &sp), BITNET_OK);
    char text[64];
    size_t n = 0;
    for (int step = 0; step < 10; step++) {
        int32_t t;
        assert_int_equal(bitnet_sampler_sample_logits(s, logits, (size_t)nv, &t), BITNET_OK);
        assert_int_equal(bitnet_sampler_accept(s, t), BITNET_OK);
        if (t == eos)
            break;
        size_t pn;
        assert_int_equal(bitnet_token_to_piece(model, t, 0, text + n, sizeof(text) - n, &pn),
                         BITNET_OK);
        n += pn;
    }
    /* greedy with EOS preferred: it ends at the first place it may */
    assert_int_equal(n, 2);
    assert_memory_equal(text, "ab", 2);

    /* accept: a token the grammar does not allow is refused, state kept */
    bitnet_sampler_reset(s);
    int32_t toks[8];
    size_t nt;
    assert_int_equal(bitnet_tokenize(model, "x", 1, 0, toks, 8, &nt), BITNET_OK);
    assert_int_equal(bitnet_sampler_accept(s, toks[nt - 1]), BITNET_E_GRAMMAR);
    assert_non_null(strstr(bitnet_last_error(), "not allowed by the grammar"));
    assert_int_equal(bitnet_sampler_accept(s, eos), BITNET_E_GRAMMAR);
    assert_non_null(strstr(bitnet_last_error(), "cannot end"));
    int32_t bos = bitnet_token_bos(model);
    if (bos >= 0)   /* no text: never part of a grammar's output */
        assert_int_equal(bitnet_sampler_accept(s, bos), BITNET_E_GRAMMAR);
    /* the mask after refusals is still that of the start */
    int32_t t;
    assert_int_equal(bitnet_sampler_sample_logits(s, logits, (size_t)nv, &t), BITNET_OK);
    char piece[16];
    size_t pn;
    assert_int_equal(bitnet_token_to_piece(model, t, 0, piece, sizeof(piece), &pn), BITNET_OK);
    assert_true(pn >= 1 && pn <= 4 && memcmp(piece, "abcd", pn) == 0);
    bitnet_sampler_free(s);

    /* determinism: the same seed gives the same text */
    char a[8192], b[8192];
    size_t na, nb;
    const char *g = "root ::= [a-z ]{5,40} \".\"";
    generate(g, 42, 1.0f, a, sizeof(a), &na);
    generate(g, 42, 1.0f, b, sizeof(b), &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(logits);
}

static void test_create_errors(void **state)
{
    (void)state;
    bitnet_sampler_params sp;
    bitnet_sampler_params_init(&sp);
    bitnet_sampler *s = (bitnet_sampler *)1;
    sp.grammar = "root ::= \"a\"\nbad ::= (\"b\"";
    assert_int_equal(bitnet_sampler_create(&s, model, &sp), BITNET_E_GRAMMAR);
    assert_null(s);
    assert_non_null(strstr(bitnet_last_error(), "line 2, column 9"));
    sp.grammar = "root ::= root \"x\" | \"y\"";
    assert_int_equal(bitnet_sampler_create(&s, model, &sp), BITNET_E_GRAMMAR);
    assert_non_null(strstr(bitnet_last_error(), "left-recursive"));
    sp.grammar = "root ::= \"x\" root";
    assert_int_equal(bitnet_sampler_create(&s, model, &sp), BITNET_E_GRAMMAR);
    assert_non_null(strstr(bitnet_last_error(), "can never match"));
    sp.grammar = "start ::= \"x\"";
    assert_int_equal(bitnet_sampler_create(&s, model, &sp), BITNET_E_GRAMMAR);
    assert_non_null(strstr(bitnet_last_error(), "no rule named 'root'"));
    sp.grammar_root = "start";
    assert_int_equal(bitnet_sampler_create(&s, model, &sp), BITNET_OK);
    bitnet_sampler_free(s);
    assert_string_equal(bitnet_strerror(BITNET_E_GRAMMAR),
                        "grammar error or token not allowed by the grammar");
    /* a params struct from before the grammar fields still works */
    bitnet_sampler_params old;
    memset(&old, 0x5a, sizeof(old));   /* the tail is never read */
    bitnet_sampler_params_init_(&old, offsetof(bitnet_sampler_params, grammar));
    assert_int_equal(old.struct_size, offsetof(bitnet_sampler_params, grammar));
    assert_int_equal(bitnet_sampler_create(&s, model, &old), BITNET_OK);
    bitnet_sampler_free(s);
}

/* The token tables of grammars are built once per model and shared: four
 * threads create grammar samplers on a freshly loaded model at once (one
 * builds the tables, the others wait for them), each constrains sampling
 * over the same logits, and samplers freed early do not take the tables
 * from the others. Under ThreadSanitizer this is the race check. */
typedef struct share_job {
    bitnet_model *m;
    const char *grammar;
    const float *logits;
    bitnet_sampler *s;
    int rc;
    char text[256];
} share_job;

static void *share_create(void *arg)
{
    share_job *j = arg;
    bitnet_sampler_params sp;
    bitnet_sampler_params_init(&sp);
    sp.grammar = j->grammar;
    sp.temperature = 0.0f;
    j->rc = bitnet_sampler_create(&j->s, j->m, &sp);
    return NULL;
}

static void sample_text(share_job *j, int32_t n_vocab)
{
    size_t n = 0;
    for (int i = 0; i < 12; i++) {
        int32_t t;
        if (bitnet_sampler_sample_logits(j->s, j->logits, n_vocab, &t) != BITNET_OK)
            break;
        assert_int_equal(bitnet_sampler_accept(j->s, t), BITNET_OK);
        if (bitnet_token_is_eog(j->m, t))
            break;
        size_t pn;
        assert_int_equal(bitnet_token_to_piece(j->m, t, 0, j->text + n,
                                               sizeof(j->text) - n - 1, &pn), BITNET_OK);
        n += pn;
    }
    j->text[n] = '\0';
}

static void test_shared_tables(void **state)
{
    (void)state;
    bitnet_model *m;
    assert_int_equal(bitnet_model_load_file(&m, MODEL, NULL), BITNET_OK);
    const int32_t nv = bitnet_model_n_vocab(m);
    float *logits = malloc(sizeof(float) * (size_t)nv);
    assert_non_null(logits);
    for (int32_t i = 0; i < nv; i++)
        logits[i] = (float)((i * 7919) % 1000) / 100.0f;
    static const char *const grammars[4] = {
        "root ::= \"yes\" | \"no\"",
        "root ::= [0-9]+ \".\" [0-9]",
        "root ::= \"ab\" [a-z]*",
        "root ::= \"yes\" | \"no\"",
    };
    share_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        memset(&jobs[i], 0, sizeof(jobs[i]));
        jobs[i].m = m;
        jobs[i].grammar = grammars[i];
        jobs[i].logits = logits;
        assert_int_equal(pthread_create(&th[i], NULL, share_create, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(jobs[i].rc, BITNET_OK);
    }
    bitnet_sampler_free(jobs[3].s);          /* its tables stay for the rest */
    jobs[3].s = NULL;
    for (int i = 0; i < 3; i++) {
        sample_text(&jobs[i], nv);
        /* each sampler kept to its own grammar */
        const char *t = jobs[i].text;
        if (i == 0)
            assert_true(strcmp(t, "yes") == 0 || strcmp(t, "no") == 0);
        else if (i == 1)
            assert_true(t[0] >= '0' && t[0] <= '9');
        else
            assert_true(strncmp(t, "ab", 2) == 0 && strspn(t + 2, "abcdefghijklmnopqrstuvwxyz") == strlen(t + 2));
        bitnet_sampler_free(jobs[i].s);
    }
    /* a sampler made after the others were freed sees the same tables */
    share_job late = { m, grammars[0], logits, NULL, 0, "" };
    share_create(&late);
    assert_int_equal(late.rc, BITNET_OK);
    sample_text(&late, nv);
    assert_string_equal(late.text, jobs[0].text);
    bitnet_sampler_free(late.s);
    free(logits);
    bitnet_model_free(m);
}

int main(void)
{
    FILE *f = fopen(MODEL, "rb");
    if (!f) {
        printf("bundled model %s not found: skipped\n", MODEL);
        return 77;
    }
    fclose(f);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gbnf),
#if BITNET_HAVE_JSON
        cmocka_unit_test(test_schemas),
#endif
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_shared_tables),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
