/*
 * libFuzzer target for the GBNF parser and the matcher: the input is grammar
 * text; when it compiles, the matcher is created, fed the input's own bytes
 * and a few fixed strings one byte at a time, and masks are computed over a
 * small fixed vocabulary at each step. Built with -Dfuzzing=true (clang,
 * -fsanitize=fuzzer); otherwise replay.c runs it over the committed corpus
 * as an ordinary test.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sample/grammar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const vocab[] = {
    "a", "b", "ab", "{", "}", "[", "]", "\"", ",", ":", " ", "\n", "0", "12",
    "-", ".", "true", "null", "\xc3", "\xa9", "\xc3\xa9", "\xe2\x82\xac",
    "\xf0\x9f\x98\x80", "x\"y", "\\", "\xff",
};
#define N_VOCAB ((int32_t)(sizeof(vocab) / sizeof(vocab[0])))

static void feed_and_mask(bn_gmatch *m, const bn_vtrie *t, const uint8_t *s,
                          size_t n)
{
    uint64_t allowed[1];
    for (size_t i = 0; i < n; i++) {
        if (bitnet__gmatch_mask(m, t, allowed, N_VOCAB) != BITNET_OK)
            return;
        /* prefer an allowed token now and then, so the walk goes deep */
        for (int32_t k = 0; k < N_VOCAB; k++)
            if (((allowed[0] >> k) & 1) && (s[i] & 7) == 0) {
                (void)bitnet__gmatch_feed(m, vocab[k], strlen(vocab[k]));
                break;
            }
        (void)bitnet__gmatch_feed(m, s + i, 1);
        (void)bitnet__gmatch_can_end(m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    static bn_vtrie *trie;
    if (!trie) {
        uint32_t len[64];
        for (int32_t i = 0; i < N_VOCAB; i++)
            len[i] = (uint32_t)strlen(vocab[i]);
        if (bitnet__vtrie_build(&trie, vocab, len, N_VOCAB) != BITNET_OK)
            abort();
    }
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    bn_grammar *g = NULL;
    if (bitnet__grammar_parse(text, NULL, &g) == BITNET_OK) {
        bn_gmatch *m = NULL;
        if (bitnet__gmatch_create(&m, g) == BITNET_OK) {
            feed_and_mask(m, trie, data, size < 256 ? size : 256);
            bitnet__gmatch_reset(m);
            static const char probe[] = "{\"a\": [1, 2.5e3, \"\xc3\xa9\"]} ab";
            feed_and_mask(m, trie, (const uint8_t *)probe, sizeof(probe) - 1);
            bitnet__gmatch_free(m);
        }
        (void)bitnet__grammar_match(g, text, size);
        bitnet__grammar_free(g);
    } else if (g != NULL) {
        abort();   /* failure must leave the output NULL */
    }
    free(text);
    return 0;
}
