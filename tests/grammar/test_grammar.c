/*
 * GBNF parser and matcher: grammars that parse and grammars that are
 * refused (with the line and column of the message), whole strings accepted
 * or rejected by grammars of every construct, byte-wise feeding across
 * UTF-8 characters, and the trie mask against a brute-force check.
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
#include "sample/grammar.h"

static bn_grammar *compile(const char *text)
{
    bn_grammar *g = NULL;
    int rc = bitnet__grammar_parse(text, NULL, &g);
    if (rc != BITNET_OK)
        fprintf(stderr, "grammar did not parse: %s\n%s\n", bitnet_last_error(), text);
    assert_int_equal(rc, BITNET_OK);
    assert_non_null(g);
    return g;
}

/* ---- valid grammars ----------------------------------------------------- */

static void test_valid(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "root ::= \"a\"",
        "root ::=",                               /* matches "" */
        "root ::= \"\"",
        "root::=\"a\"|\"b\"",
        "# leading comment\nroot ::= x # trailing\nx ::= [a-z]\n",
        "root ::= a b\na ::= \"1\"\nb ::= \"2\"",
        "root ::= ( \"a\" | ( \"b\" ( \"c\" )* ) )+",
        "root ::= [^\\n]{3,}",
        "root ::= \"x\"{,4}",
        "root ::= \"é\" [α-ω]? \"\\u00e9\\U0001F600\\x41\"",
        "root ::= [\\]\\[\\-\\^] [-a] [a-]",
        "root ::=\n  \"a\"\n  | \"b\"\n",
        "root ::= unused-rule? \"a\"\nunused-rule ::= \"z\"",
        "root ::= . .",
        "root ::= (\"ab\"){2} \"ab\"{1,2}",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        bitnet__grammar_free(compile(ok[i]));
    /* another start rule */
    bn_grammar *g = NULL;
    assert_int_equal(bitnet__grammar_parse("a ::= \"x\"\nb ::= \"y\"", "b", &g),
                     BITNET_OK);
    assert_int_equal(bitnet__grammar_match(g, "y", 1), 1);
    assert_int_equal(bitnet__grammar_match(g, "x", 1), 0);
    bitnet__grammar_free(g);
}

/* ---- refused grammars --------------------------------------------------- */

typedef struct bad_case {
    const char *text;
    int line, col;          /* 0: message has no position */
    const char *what;       /* substring of the message */
} bad_case;

static void test_invalid(void **state)
{
    (void)state;
    static const bad_case bad[] = {
        { "", 0, 0, "no rule named 'root'" },
        { "foo ::= \"a\"", 0, 0, "no rule named 'root'" },
        { "root ::= \"a", 1, 10, "unterminated string" },
        { "root ::= \"a\nb\"", 1, 10, "unterminated string" },
        { "root ::= [abc", 1, 10, "unterminated character class" },
        { "root ::= []", 1, 10, "empty character class" },
        { "root ::= [z-a]", 1, 11, "reversed" },
        { "root ::= ( \"a\"", 1, 10, "unclosed '('" },
        { "root ::= \"a\" )", 1, 14, "unmatched ')'" },
        { "root ::= \"\\q\"", 1, 11, "unknown escape" },
        { "root ::= \"\\xZ1\"", 1, 13, "hexadecimal" },
        { "root ::= \"\\uD800\"", 1, 11, "not a Unicode scalar" },
        { "root ::= \"\\U00110000\"", 1, 11, "not a Unicode scalar" },
        { "root ::= \"a\"{3,2}", 1, 13, "n < m" },
        { "root ::= \"a\"{2", 1, 13, "expected '}'" },
        { "root ::= \"a\"{20000}", 1, 14, "above 10000" },
        { "root ::= \"a\" @", 1, 14, "unexpected character '@'" },
        { "root ::= b\n\n  b ::= c", 3, 9, "undefined rule 'c'" },
        { "root ::= undefined-thing", 1, 10, "undefined rule 'undefined-thing'" },
        { "root ::= \"a\"\nroot ::= \"b\"", 2, 1, "defined twice" },
        { "root \"a\"", 1, 6, "expected '::='" },
        { "::= \"a\"", 1, 1, "expected a rule name" },
        { "root ::= \"\xff\"", 1, 11, "invalid UTF-8" },
        /* left recursion, direct, indirect, through nullable prefixes */
        { "root ::= root \"a\" | \"b\"", 1, 1, "left-recursive" },
        { "root ::= x\nx ::= y \"a\" | \"c\"\ny ::= x \"b\"", 2, 1, "left-recursive" },
        { "root ::= e root \"a\" | \"b\"\ne ::= \"x\"?", 1, 1, "left-recursive" },
        { "root ::= (\"a\"?)*", 1, 10, "left-recursive" },
        { "root ::= ( \"x\" | )+", 1, 10, "left-recursive" },
        /* rules that can never match */
        { "root ::= \"a\" root", 1, 1, "can never match" },
        { "root ::= \"a\" | x\nx ::= \"(\" x \")\"", 2, 1, "can never match" },
        { "root ::= [^\\x00-\\U0010FFFF]", 1, 1, "can never match" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bn_grammar *g = (bn_grammar *)1;
        int rc = bitnet__grammar_parse(bad[i].text, NULL, &g);
        const char *msg = bitnet_last_error();
        if (rc != BITNET_E_GRAMMAR || !strstr(msg, bad[i].what))
            fprintf(stderr, "case %zu: rc %d, message '%s'\n", i, rc, msg ? msg : "(null)");
        assert_int_equal(rc, BITNET_E_GRAMMAR);
        assert_null(g);
        assert_non_null(strstr(msg, bad[i].what));
        if (bad[i].line) {
            char where[64];
            snprintf(where, sizeof(where), "line %d, column %d:", bad[i].line,
                     bad[i].col);
            if (!strstr(msg, where))
                fprintf(stderr, "case %zu: expected '%s' in '%s'\n", i, where,
                        msg ? msg : "(null)");
            assert_non_null(strstr(msg, where));
        }
    }
    assert_int_equal(bitnet__grammar_parse(NULL, NULL, &(bn_grammar *){ NULL }),
                     BITNET_E_INVALID_ARG);
}

/* ---- accept / reject ---------------------------------------------------- */

typedef struct match_case {
    const char *grammar;
    const char *yes[6];
    const char *no[6];
} match_case;

static void test_match(void **state)
{
    (void)state;
    static const match_case cases[] = {
        { "root ::= \"abc\"", { "abc" }, { "", "ab", "abcd", "abd", "ABC" } },
        { "root ::=", { "" }, { "a", " " } },
        { "root ::= \"a\" | \"bc\" | \"\"", { "a", "bc", "" }, { "b", "abc" } },
        { "root ::= [a-c]", { "a", "b", "c" }, { "", "d", "ab", "`" } },
        { "root ::= [^a-c]", { "d", "\n", "é", "\xf0\x9f\x98\x80" }, { "a", "c", "", "dd" } },
        { "root ::= [a-cx-z0]+", { "a", "zx0", "cab0y" }, { "", "d", "a d" } },
        { "root ::= \"a\"*", { "", "a", "aaaaaaa" }, { "b", "aab" } },
        { "root ::= \"ab\"+", { "ab", "abab" }, { "", "a", "aba" } },
        { "root ::= \"x\"? \"y\"", { "y", "xy" }, { "x", "xxy", "" } },
        { "root ::= \"a\"{3}", { "aaa" }, { "aa", "aaaa", "" } },
        { "root ::= \"a\"{2,}", { "aa", "aaa", "aaaaaaaaaa" }, { "a", "" } },
        { "root ::= \"a\"{1,3}", { "a", "aa", "aaa" }, { "", "aaaa" } },
        { "root ::= \"a\"{,2} \"b\"", { "b", "ab", "aab" }, { "aaab", "a" } },
        { "root ::= (\"ab\" | \"c\")* \"d\"", { "d", "abcd", "ccabd" }, { "abc", "ad", "" } },
        { "root ::= (\"a\" (\"b\" | \"c\")){2}", { "abac", "acab" }, { "ab", "abacab", "aa" } },
        { "root ::= x x\nx ::= [0-9] | \"(\" x \")\"", { "12", "(1)2", "((3))(4)" }, { "1", "(12)", "((1)2" } },
        { "root ::= \"é\" [α-ω]", { "éβ", "éω" }, { "eβ", "éA", "é" } },
        { "root ::= \"\\x41\\u00e9\\U0001F600\\n\\t\\\\\\\"\"", { "Aé\xf0\x9f\x98\x80\n\t\\\"" }, { "A" } },
        { "root ::= . \"!\"", { "a!", "\xe2\x82\xac!", "\n!" }, { "!", "ab!" } },
        { "root ::= [\\]\\-] [-a]", { "]-", "-a", "]a" }, { "a-", "--x" } },
        { "# comment\nroot ::= \"x\" # c\n  | \"y\" # c\n", { "x", "y" }, { "# comment", "" } },
        /* ambiguous: both alternatives share a prefix */
        { "root ::= \"ab\" \"c\" | \"a\" \"bd\" | [a] [b] \"e\"", { "abc", "abd", "abe" }, { "ab", "abf" } },
        /* a rule used at many depths */
        { "root ::= list\nlist ::= \"[\" (item (\",\" item)*)? \"]\"\nitem ::= [0-9]+ | list",
          { "[]", "[1,2]", "[[],[3,[4]]]" }, { "[", "[1,]", "[,]", "[[]" } },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bn_grammar *g = compile(cases[i].grammar);
        for (int k = 0; k < 6 && cases[i].yes[k]; k++) {
            int r = bitnet__grammar_match(g, cases[i].yes[k], strlen(cases[i].yes[k]));
            if (r != 1)
                fprintf(stderr, "case %zu: '%s' should match\n", i, cases[i].yes[k]);
            assert_int_equal(r, 1);
        }
        /* "" sits in yes[] lists explicitly; a NULL ends both lists */
        for (int k = 0; k < 6 && cases[i].no[k]; k++) {
            int r = bitnet__grammar_match(g, cases[i].no[k], strlen(cases[i].no[k]));
            if (r != 0)
                fprintf(stderr, "case %zu: '%s' should not match\n", i, cases[i].no[k]);
            assert_int_equal(r, 0);
        }
        bitnet__grammar_free(g);
    }
}

/* Feeding a string in pieces, including pieces that split a character,
 * gives the same result as feeding it whole; invalid UTF-8 is refused. */
static void test_utf8_pieces(void **state)
{
    (void)state;
    bn_grammar *g = compile("root ::= [a-zé€😀]+ \"!\"");
    const char *s = "aé€😀b!";
    size_t n = strlen(s);
    for (size_t cut = 0; cut <= n; cut++) {
        bn_gmatch *m;
        assert_int_equal(bitnet__gmatch_create(&m, g), BITNET_OK);
        assert_int_equal(bitnet__gmatch_feed(m, s, cut), 1);
        assert_int_equal(bitnet__gmatch_can_end(m), cut == n);
        assert_int_equal(bitnet__gmatch_feed(m, s + cut, n - cut), 1);
        assert_true(bitnet__gmatch_can_end(m));
        bitnet__gmatch_free(m);
    }
    bn_gmatch *m;
    assert_int_equal(bitnet__gmatch_create(&m, g), BITNET_OK);
    /* a lead byte alone: valid prefix, but the text cannot end there */
    assert_int_equal(bitnet__gmatch_feed(m, "\xc3", 1), 1);
    assert_false(bitnet__gmatch_can_end(m));
    /* continuing with an ASCII byte is invalid UTF-8; the state stays */
    assert_int_equal(bitnet__gmatch_feed(m, "a", 1), 0);
    assert_int_equal(bitnet__gmatch_feed(m, "\xa9", 1), 1);   /* é */
    /* é is allowed, but è (c3 a8) is not: refused at its second byte */
    assert_int_equal(bitnet__gmatch_feed(m, "\xc3\xa8", 2), 0);
    /* overlong, surrogate, stray continuation, beyond U+10FFFF */
    assert_int_equal(bitnet__gmatch_feed(m, "\xc1\xa1", 2), 0);
    assert_int_equal(bitnet__gmatch_feed(m, "\xed\xa0\x80", 3), 0);
    assert_int_equal(bitnet__gmatch_feed(m, "\x80", 1), 0);
    assert_int_equal(bitnet__gmatch_feed(m, "\xf4\x90\x80\x80", 4), 0);
    assert_int_equal(bitnet__gmatch_feed(m, "!", 1), 1);
    assert_true(bitnet__gmatch_can_end(m));
    assert_false(bitnet__gmatch_can_continue(m));
    bitnet__gmatch_reset(m);
    assert_false(bitnet__gmatch_can_end(m));
    assert_true(bitnet__gmatch_can_continue(m));
    bitnet__gmatch_free(m);
    bitnet__grammar_free(g);
}

/* ---- the mask ----------------------------------------------------------- */

/* Whether prefix + piece can still be completed: brute force. */
static int viable(const bn_grammar *g, const char *prefix, size_t np,
                  const char *piece, size_t n)
{
    bn_gmatch *m;
    assert_int_equal(bitnet__gmatch_create(&m, g), BITNET_OK);
    int ok = bitnet__gmatch_feed(m, prefix, np) == 1 &&
             bitnet__gmatch_feed(m, piece, n) == 1;
    bitnet__gmatch_free(m);
    return ok;
}

static void test_mask(void **state)
{
    (void)state;
    /* A small vocabulary with shared prefixes, multi-byte characters split
     * across pieces, duplicates and an empty piece. */
    static const char *const vocab[] = {
        "{", "}", "\"", "\"a", "\"ab", "a", "ab", "abc", "b", ",", ":", " ",
        " \"", "1", "12", "123", "-", ".", "e", "\xc3", "\xa9", "\xc3\xa9",
        "\xe2\x82", "\xac", "\xe2\x82\xac", "\xf0\x9f", "\x98\x80", "\\",
        "\\n", "\"}", "\":", "a\"", "ab\"", "true", "tr", "ue", "null", "[",
        "]", "],", "\n", "", "a", "x\"y", "\xff", "\x80",
    };
    const int32_t nv = (int32_t)(sizeof(vocab) / sizeof(vocab[0]));
    uint32_t len[64];
    for (int32_t i = 0; i < nv; i++)
        len[i] = (uint32_t)strlen(vocab[i]);
    bn_vtrie *t;
    assert_int_equal(bitnet__vtrie_build(&t, vocab, len, nv), BITNET_OK);
    bn_grammar *g = compile(
        "root ::= value\n"
        "value ::= object | array | string | number | \"true\" | \"null\"\n"
        "object ::= \"{\" ws ( string ws \":\" ws value ws ( \",\" ws string ws \":\" ws value ws )* )? \"}\"\n"
        "array ::= \"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\"\n"
        "string ::= \"\\\"\" ( [^\"\\\\] | \"\\\\\" [n\"] )* \"\\\"\"\n"
        "number ::= \"-\"? [0-9]+ ( \".\" [0-9]+ )? ( \"e\" [0-9]+ )?\n"
        "ws ::= [ \\n]?\n");
    bn_gmatch *m;
    assert_int_equal(bitnet__gmatch_create(&m, g), BITNET_OK);
    uint64_t allowed[1];
    char text[512];
    size_t tn = 0;
    uint32_t x = 99;
    int steps = 0, checked = 0;
    /* A random walk through allowed tokens; at each step the mask must
     * equal the brute-force answer for every token. Restart when done. */
    for (int it = 0; it < 400; it++) {
        assert_int_equal(bitnet__gmatch_mask(m, t, allowed, nv), BITNET_OK);
        int n_ok = 0;
        int32_t ok[64];
        for (int32_t i = 0; i < nv; i++) {
            int bit = (int)((allowed[0] >> i) & 1);
            int want = len[i] > 0 && viable(g, text, tn, vocab[i], len[i]);
            if (bit != want)
                fprintf(stderr, "after '%.*s': token %d '%s' mask %d, brute %d\n",
                        (int)tn, text, (int)i, vocab[i], bit, want);
            assert_int_equal(bit, want);
            checked++;
            if (bit)
                ok[n_ok++] = i;
        }
        x = x * 1664525u + 1013904223u;
        if (n_ok == 0 || tn > 400 || (bitnet__gmatch_can_end(m) && (x >> 28) < 4)) {
            assert_true(n_ok > 0 || bitnet__gmatch_can_end(m));
            bitnet__gmatch_reset(m);
            tn = 0;
            continue;
        }
        int32_t pick = ok[(x >> 8) % (uint32_t)n_ok];
        assert_int_equal(bitnet__gmatch_feed(m, vocab[pick], len[pick]), 1);
        memcpy(text + tn, vocab[pick], len[pick]);
        tn += len[pick];
        steps++;
    }
    assert_true(steps > 100);
    assert_true(checked > 10000);
    bitnet__gmatch_free(m);
    bitnet__grammar_free(g);
    bitnet__vtrie_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_utf8_pieces),
        cmocka_unit_test(test_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
