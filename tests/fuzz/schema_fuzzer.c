/*
 * libFuzzer target for the JSON Schema converter: the input is schema text;
 * the conversion must either fail with a status and a message, or give
 * grammar text that compiles. Built with -Dfuzzing=true (clang,
 * -fsanitize=fuzzer); otherwise replay.c runs it over the committed corpus
 * as an ordinary test.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sample/grammar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t n = 0;
    int rc = bitnet_json_schema_to_grammar(text, NULL, 0, &n);
    if (rc == BITNET_E_BUFFER_TOO_SMALL) {
        char *g = malloc(n + 1);
        if (g) {
            size_t n2 = 0;
            if (bitnet_json_schema_to_grammar(text, g, n + 1, &n2) != BITNET_OK ||
                n2 != n || strlen(g) != n)
                abort();
            bn_grammar *gr = NULL;
            if (bitnet__grammar_parse(g, NULL, &gr) != BITNET_OK)
                abort();   /* the converter checks that its output compiles */
            bitnet__grammar_free(gr);
            free(g);
        }
    } else if (rc == BITNET_OK || bitnet_last_error()[0] == '\0') {
        abort();   /* cap 0 cannot succeed; a failure always has a message */
    }
    free(text);
    return 0;
}
