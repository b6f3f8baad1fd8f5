/*
 * JSON Schema -> GBNF: each supported keyword (texts the grammar must accept
 * and reject), random texts drawn from every grammar parsed by jansson and
 * validated against the schema, refusal of unsupported keywords (named in
 * the message), malformed schemas, and the buffer contract.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "lib_config.h"
#include "sample/grammar.h"

#if BITNET_HAVE_JSON
#include "schema_check.h"

static char *convert(const char *schema)
{
    size_t n = 0;
    int rc = bitnet_json_schema_to_grammar(schema, NULL, 0, &n);
    if (rc != BITNET_E_BUFFER_TOO_SMALL)
        fprintf(stderr, "schema %s: %s\n", schema, bitnet_last_error());
    assert_int_equal(rc, BITNET_E_BUFFER_TOO_SMALL);
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    size_t n2 = 0;
    assert_int_equal(bitnet_json_schema_to_grammar(schema, buf, n + 1, &n2), BITNET_OK);
    assert_int_equal(n, n2);
    assert_int_equal(strlen(buf), n);
    return buf;
}

typedef struct schema_case {
    const char *schema;
    const char *yes[6];
    const char *no[7];
} schema_case;

static const schema_case cases[] = {
    { "{}", { "1", "\"x\"", "{\"a\": [1, {}]}", "null", "[true, false]" },
      { "", "nul", "{a:1}", "[1,]", "'x'", "01" } },
    { "true", { "{}", "-2.5e3" }, { "x" } },
    { "{\"type\": \"string\"}", { "\"\"", "\"abc\"", "\"é\\n\\\"\"" },
      { "1", "\"a", "\"\x01\"", "abc" } },
    { "{\"type\": \"number\"}", { "0", "-1.5", "3e10", "12.25E-3" },
      { "01", "1.", ".5", "+1", "\"1\"", "1e" } },
    { "{\"type\": \"integer\"}", { "0", "-7", "123456" }, { "1.0", "-", "00", "1e3" } },
    { "{\"type\": \"boolean\"}", { "true", "false" }, { "True", "1", "null" } },
    { "{\"type\": \"null\"}", { "null" }, { "nil", "0" } },
    { "{\"type\": [\"integer\", \"null\"]}", { "1", "null" }, { "1.5", "\"1\"" } },
    { "{\"type\": \"object\"}", { "{}", "{\"a\": 1, \"b\": [null]}" }, { "[]", "{1: 2}" } },
    { "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}, \"b\": {\"type\": \"string\"}}}",
      { "{}", "{\"a\": 1}", "{\"b\": \"x\"}", "{\"a\": 1, \"b\": \"x\"}" },
      { "{\"b\": \"x\", \"a\": 1}", "{\"a\": \"1\"}", "{\"c\": 1}", "{\"a\": 1,}" } },
    { "{\"properties\": {\"a\": {\"type\": \"integer\"}, \"b\": {\"type\": \"boolean\"}}, \"required\": [\"b\"]}",
      { "{\"b\": true}", "{\"a\": 2, \"b\": false}" },
      { "{}", "{\"a\": 2}", "{\"b\": true, \"a\": 2}" } },
    { "{\"type\": \"object\", \"required\": [\"id\"]}",
      { "{\"id\": 3}", "{\"id\": [], \"x\": 1}" }, { "{}", "{\"x\": 1}" } },
    { "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"null\"}}, \"additionalProperties\": false}",
      { "{}", "{\"a\": null}" }, { "{\"b\": 1}", "{\"a\": null, \"b\": 1}" } },
    { "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"null\"}}, \"additionalProperties\": {\"type\": \"integer\"}}",
      { "{}", "{\"a\": null, \"x\": 1, \"y\": 2}", "{\"x\": 1}" }, { "{\"x\": \"s\"}", "{\"x\": 1, \"a\": null}" } },
    { "{\"type\": \"object\", \"additionalProperties\": {\"type\": \"string\"}}",
      { "{}", "{\"k\": \"v\", \"k2\": \"v\"}" }, { "{\"k\": 1}" } },
    { "{\"type\": \"array\"}", { "[]", "[1, \"a\", {}]" }, { "{}", "[1 2]" } },
    { "{\"type\": \"array\", \"items\": {\"type\": \"integer\"}}", { "[]", "[1]", "[1, 2, 3]" },
      { "[1.5]", "[\"a\"]", "[1,]" } },
    { "{\"type\": \"array\", \"items\": {\"type\": \"boolean\"}, \"minItems\": 2, \"maxItems\": 3}",
      { "[true, false]", "[true, true, true]" }, { "[]", "[true]", "[true, true, true, true]" } },
    { "{\"type\": \"array\", \"minItems\": 1}", { "[0]", "[1, 2, 3, 4]" }, { "[]" } },
    { "{\"type\": \"array\", \"maxItems\": 0}", { "[]" }, { "[1]" } },
    { "{\"enum\": [\"red\", 2, null, [1], {\"a\": true}]}",
      { "\"red\"", "2", "null", "[1]", "{\"a\":true}" }, { "\"blue\"", "3", "[2]" } },
    { "{\"type\": \"string\", \"enum\": [\"a\", 1]}", { "\"a\"" }, { "1" } },
    { "{\"const\": \"only\"}", { "\"only\"" }, { "\"other\"", "only" } },
    { "{\"anyOf\": [{\"type\": \"integer\"}, {\"type\": \"string\", \"maxLength\": 2}]}",
      { "1", "\"ab\"" }, { "\"abc\"", "true" } },
    { "{\"oneOf\": [{\"type\": \"boolean\"}, {\"type\": \"null\"}]}", { "true", "null" }, { "0" } },
    { "{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 3}",
      { "\"ab\"", "\"abc\"", "\"éé\"", "\"\\n\\t\"" }, { "\"a\"", "\"abcd\"", "\"\"" } },
    { "{\"type\": \"string\", \"minLength\": 1}", { "\"a\"", "\"aaaaaaaaaaaa\"" }, { "\"\"" } },
    { "{\"type\": \"string\", \"format\": \"date\"}", { "\"2024-02-29\"", "\"1999-12-31\"" },
      { "\"2024-13-01\"", "\"2024-1-01\"", "\"2024-01-32\"", "\"2024-01-00\"" } },
    { "{\"type\": \"string\", \"format\": \"time\"}",
      { "\"23:59:59Z\"", "\"00:00:00.123+05:30\"" }, { "\"24:00:00Z\"", "\"12:00:00\"", "\"12:60:00Z\"" } },
    { "{\"type\": \"string\", \"format\": \"date-time\"}", { "\"2020-01-02T03:04:05Z\"" },
      { "\"2020-01-02 03:04:05Z\"", "\"2020-01-02\"" } },
    { "{\"type\": \"string\", \"format\": \"uuid\"}", { "\"123e4567-e89b-12d3-a456-426614174000\"" },
      { "\"123e4567e89b12d3a456426614174000\"", "\"123E4567-E89B-12D3-A456-426614174000\"" } },
    { "{\"$defs\": {\"pos\": {\"type\": \"integer\"}}, \"type\": \"array\", \"items\": {\"$ref\": \"#/$defs/pos\"}}",
      { "[1, 2]" }, { "[\"x\"]" } },
    { "{\"definitions\": {\"node\": {\"type\": \"object\", \"properties\": {\"v\": {\"type\": \"integer\"}, "
      "\"next\": {\"anyOf\": [{\"$ref\": \"#/definitions/node\"}, {\"type\": \"null\"}]}}, "
      "\"required\": [\"v\", \"next\"]}}, \"$ref\": \"#/definitions/node\"}",
      { "{\"v\": 1, \"next\": null}", "{\"v\": 1, \"next\": {\"v\": 2, \"next\": null}}" },
      { "{\"v\": 1}", "{\"v\": 1, \"next\": {\"v\": 2}}" } },
    { "{\"title\": \"t\", \"description\": \"d\", \"$schema\": \"x\", \"type\": \"boolean\", \"default\": true}",
      { "true" }, { "1" } },
};

static void test_keywords(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = convert(cases[i].schema);
        bn_grammar *g = NULL;
        assert_int_equal(bitnet__grammar_parse(text, NULL, &g), BITNET_OK);
        json_t *schema = json_loads(cases[i].schema, JSON_DECODE_ANY, NULL);
        assert_non_null(schema);
        for (int k = 0; k < 6 && cases[i].yes[k]; k++) {
            const char *s = cases[i].yes[k];
            int r = bitnet__grammar_match(g, s, strlen(s));
            if (r != 1)
                fprintf(stderr, "schema %s: grammar rejects %s\n%s", cases[i].schema, s, text);
            assert_int_equal(r, 1);
            /* and the test's own validator agrees */
            json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
            assert_non_null(v);
            assert_int_equal(sc_valid(v, schema, schema), 1);
            json_decref(v);
        }
        for (int k = 0; k < 7 && cases[i].no[k]; k++) {
            const char *s = cases[i].no[k];
            int r = bitnet__grammar_match(g, s, strlen(s));
            if (r != 0)
                fprintf(stderr, "schema %s: grammar accepts %s\n%s", cases[i].schema, s, text);
            assert_int_equal(r, 0);
        }
        json_decref(schema);
        bitnet__grammar_free(g);
        free(text);
    }
}

/* Random texts from each grammar (a walk over single-byte tokens, so UTF-8
 * characters are built byte by byte) are JSON that validates. */
static void test_random_texts(void **state)
{
    (void)state;
    const char *pieces[256];
    uint32_t len[256];
    char bytes[256];
    for (int i = 0; i < 256; i++) {
        bytes[i] = (char)i;
        pieces[i] = &bytes[i];
        len[i] = 1;
    }
    bn_vtrie *t;
    assert_int_equal(bitnet__vtrie_build(&t, pieces, len, 256), BITNET_OK);
    uint32_t x = 2024;
    int made = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = convert(cases[i].schema);
        bn_grammar *g;
        bn_gmatch *m;
        assert_int_equal(bitnet__grammar_parse(text, NULL, &g), BITNET_OK);
        assert_int_equal(bitnet__gmatch_create(&m, g), BITNET_OK);
        json_t *schema = json_loads(cases[i].schema, JSON_DECODE_ANY, NULL);
        for (int rep = 0; rep < 20; rep++) {
            char out[4096];
            size_t n = 0;
            bitnet__gmatch_reset(m);
            for (;;) {
                uint64_t allowed[4];
                assert_int_equal(bitnet__gmatch_mask(m, t, allowed, 256), BITNET_OK);
                int ok[256], n_ok = 0, closers = 0, cl[8];
                for (int b = 0; b < 256; b++)
                    if ((allowed[b >> 6] >> (b & 63)) & 1) {
                        ok[n_ok++] = b;
                        if (b == '"' || b == ']' || b == '}')
                            cl[closers++] = b;
                    }
                x = x * 1664525u + 1013904223u;
                int can_end = bitnet__gmatch_can_end(m);
                if (n_ok == 0 || (can_end && (x >> 29) < 3))
                    break;
                assert_true(n < sizeof(out) - 1);
                int b;
                if (closers && ((x >> 24) % 10 < 3 || n > 200))
                    b = cl[(x >> 8) % (uint32_t)closers];
                else
                    b = ok[(x >> 8) % (uint32_t)n_ok];
                assert_int_equal(bitnet__gmatch_feed(m, &bytes[b], 1), 1);
                out[n++] = (char)b;
            }
            assert_true(bitnet__gmatch_can_end(m));
            out[n] = 0;
            json_error_t err;
            json_t *v = json_loads(out, JSON_DECODE_ANY, &err);
            if (!v)
                fprintf(stderr, "schema %s: not JSON (%s): %s\n", cases[i].schema, err.text, out);
            assert_non_null(v);
            if (!sc_valid(v, schema, schema))
                fprintf(stderr, "schema %s: invalid (%s): %s\n", cases[i].schema, sc_why, out);
            assert_int_equal(sc_valid(v, schema, schema), 1);
            json_decref(v);
            made++;
        }
        json_decref(schema);
        bitnet__gmatch_free(m);
        bitnet__grammar_free(g);
        free(text);
    }
    assert_true(made >= 20 * (int)(sizeof(cases) / sizeof(cases[0])));
    bitnet__vtrie_free(t);
}

static void test_refused(void **state)
{
    (void)state;
    static const struct { const char *schema; int rc; const char *what; } bad[] = {
        { "{\"type\": \"string\", \"pattern\": \"^a\"}", BITNET_E_UNSUPPORTED, "'pattern'" },
        { "{\"type\": \"integer\", \"minimum\": 3}", BITNET_E_UNSUPPORTED, "'minimum'" },
        { "{\"type\": \"number\", \"maximum\": 3}", BITNET_E_UNSUPPORTED, "'maximum'" },
        { "{\"type\": \"number\", \"multipleOf\": 2}", BITNET_E_UNSUPPORTED, "'multipleOf'" },
        { "{\"allOf\": [{}]}", BITNET_E_UNSUPPORTED, "'allOf'" },
        { "{\"not\": {}}", BITNET_E_UNSUPPORTED, "'not'" },
        { "{\"if\": {}, \"then\": {}}", BITNET_E_UNSUPPORTED, "'if'" },
        { "{\"type\": \"array\", \"uniqueItems\": true}", BITNET_E_UNSUPPORTED, "'uniqueItems'" },
        { "{\"type\": \"array\", \"prefixItems\": []}", BITNET_E_UNSUPPORTED, "'prefixItems'" },
        { "{\"type\": \"array\", \"items\": [{}]}", BITNET_E_UNSUPPORTED, "'items' as an array" },
        { "{\"type\": \"object\", \"minProperties\": 1}", BITNET_E_UNSUPPORTED, "'minProperties'" },
        { "{\"type\": \"object\", \"patternProperties\": {}}", BITNET_E_UNSUPPORTED, "'patternProperties'" },
        { "{\"properties\": {\"a\": {\"type\": \"string\", \"format\": \"email\"}}}", BITNET_E_UNSUPPORTED, "'email'" },
        { "{\"type\": \"string\", \"format\": \"date\", \"maxLength\": 3}", BITNET_E_UNSUPPORTED, "'format' together" },
        { "{\"$ref\": \"http://example.com/s.json\"}", BITNET_E_UNSUPPORTED, "only local '$ref'" },
        { "{\"$ref\": \"#/$defs/a\", \"type\": \"string\"}", BITNET_E_UNSUPPORTED, "'$ref' next to" },
        { "{\"type\": \"array\", \"maxItems\": 100000}", BITNET_E_UNSUPPORTED, "'maxItems' above" },
        { "false", BITNET_E_UNSUPPORTED, "matches nothing" },
        { "{\"type\": \"integer\", \"enum\": [\"a\"]}", BITNET_E_UNSUPPORTED, "no value" },
        { "{\"$ref\": \"#\"}", BITNET_E_GRAMMAR, "can never match" },
        { "{\"type\": \"strin\"}", BITNET_E_FORMAT, "unknown type 'strin'" },
        { "{\"type\": 5}", BITNET_E_FORMAT, "'type'" },
        { "{\"$ref\": \"#/$defs/missing\"}", BITNET_E_FORMAT, "does not resolve" },
        { "{\"type\": \"array\", \"minItems\": -1}", BITNET_E_FORMAT, "'minItems'" },
        { "{\"type\": \"string\", \"minLength\": 3, \"maxLength\": 2}", BITNET_E_FORMAT, "below" },
        { "{\"required\": \"a\"}", BITNET_E_FORMAT, "'required'" },
        { "{\"type\": \"object\",\n \"properties\": }", BITNET_E_FORMAT, "line 2" },
        { "", BITNET_E_FORMAT, "not JSON" },
        { "42", BITNET_E_FORMAT, "object or a boolean" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char buf[4096];
        size_t n = 77;
        int rc = bitnet_json_schema_to_grammar(bad[i].schema, buf, sizeof(buf), &n);
        const char *msg = bitnet_last_error();
        if (rc != bad[i].rc || !strstr(msg, bad[i].what))
            fprintf(stderr, "schema %s: rc %d, message '%s'\n", bad[i].schema, rc, msg);
        assert_int_equal(rc, bad[i].rc);
        assert_non_null(strstr(msg, bad[i].what));
        assert_int_equal(n, 0);
    }
}

static void test_buffer_contract(void **state)
{
    (void)state;
    size_t n = 0, n2 = 0;
    assert_int_equal(bitnet_json_schema_to_grammar("{}", NULL, 0, &n),
                     BITNET_E_BUFFER_TOO_SMALL);
    assert_true(n > 20);
    char *buf = malloc(n + 1);
    assert_int_equal(bitnet_json_schema_to_grammar("{}", buf, n, &n2),
                     BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(n2, n);
    assert_int_equal(bitnet_json_schema_to_grammar("{}", buf, n + 1, &n2), BITNET_OK);
    assert_int_equal(strlen(buf), n);
    assert_string_equal(bitnet_last_error(), "");
    assert_true(strncmp(buf, "root ::= ", 9) == 0);
    free(buf);
    assert_int_equal(bitnet_json_schema_to_grammar(NULL, NULL, 0, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_json_schema_to_grammar("{}", NULL, 0, NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_json_schema_to_grammar("{}", NULL, 5, &n), BITNET_E_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keywords),
        cmocka_unit_test(test_random_texts),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_buffer_contract),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* !BITNET_HAVE_JSON */

static void test_no_json(void **state)
{
    (void)state;
    size_t n = 5;
    assert_int_equal(bitnet_json_schema_to_grammar("{}", NULL, 0, &n),
                     BITNET_E_UNSUPPORTED);
    assert_int_equal(n, 0);
    assert_non_null(strstr(bitnet_last_error(), "without JSON support"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
