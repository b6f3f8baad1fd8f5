/*
 * Test helper: tokenize every file named on the command line with one
 * model (vocabulary only), with and without special-token parsing; one
 * line of ids per file and mode. Loading a 128k vocabulary once instead of
 * once per text keeps the vocabulary comparison of test_hf.py fast.
 *   tokenize_many MODEL FILE...
 */
#include <stdio.h>
#include <stdlib.h>

#include "bitnet.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tokenize_many MODEL FILE...\n");
        return 2;
    }
    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    mp.flags = BITNET_MODEL_VOCAB_ONLY;
    bitnet_model *m;
    if (bitnet_model_load_file(&m, argv[1], &mp) != BITNET_OK) {
        fprintf(stderr, "tokenize_many: %s\n", bitnet_last_error());
        return 1;
    }
    int status = 0;
    for (int i = 2; i < argc && !status; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) { status = 1; break; }
        static char text[1 << 16];
        size_t len = fread(text, 1, sizeof(text), f);
        fclose(f);
        for (int special = 0; special < 2; special++) {
            uint32_t fl = BITNET_TOKENIZE_ADD_BOS | (special ? BITNET_TOKENIZE_PARSE_SPECIAL : 0u);
            static int32_t ids[1 << 16];
            size_t n = 0;
            if (bitnet_tokenize(m, text, len, fl, ids, sizeof(ids) / sizeof(ids[0]), &n)) {
                fprintf(stderr, "tokenize_many: %s\n", bitnet_last_error());
                status = 1;
                break;
            }
            for (size_t k = 0; k < n; k++) printf("%s%d", k ? " " : "", (int)ids[k]);
            printf("\n");
        }
    }
    bitnet_model_free(m);
    return status;
}
