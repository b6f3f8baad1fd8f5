/*
 * Helper for pretok_check.py: reads lines "K HEX" (K: 0 default, 1 llama3,
 * 2 gpt-2; HEX: the UTF-8 text) and prints the byte lengths of the pieces
 * the pre-tokenizer makes, one line per input line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "text/vocab.h"

int main(void)
{
    static char line[1 << 17], text[1 << 16];
    static uint32_t lens[1 << 16];
    while (fgets(line, sizeof(line), stdin)) {
        int32_t pt = line[0] == '1' ? BITNET_PRETOK_LLAMA3 : line[0] == '2' ? BITNET_PRETOK_GPT2
                                                                                : BITNET_PRETOK_DEFAULT;
        size_t len = 0;
        for (const char *h = line + 2; h[0] && h[1] && h[0] != '\n' && len < sizeof(text); h += 2) {
            char hx[3] = { h[0], h[1], 0 };
            text[len++] = (char)strtoul(hx, NULL, 16);
        }
        size_t n;
        if (bitnet__pretok_split(pt, text, len, lens, sizeof(lens) / sizeof(lens[0]), &n) != BITNET_OK) {
            fprintf(stderr, "pretok_split: %s\n", bitnet_last_error());
            return 1;
        }
        for (size_t i = 0; i < n; i++) printf(i ? " %u" : "%u", lens[i]);
        printf("\n");
    }
    return 0;
}
