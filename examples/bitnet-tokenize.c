/*
 * bitnet-tokenize: print the token ids of a text.
 *
 *   bitnet-tokenize [-m MODEL] (-p TEXT | -f FILE) [--no-bos] [--special]
 *
 * The ids are printed on one line, separated by single spaces. BOS is added
 * when the vocabulary asks for it unless --no-bos; --special turns
 * special-token text such as "<|eot_id|>" into the special token.
 * Only the model's vocabulary is loaded (BITNET_MODEL_VOCAB_ONLY).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bitnet.h>
#include "example_util.h"

static const char *prog = "bitnet-tokenize";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bitnet-tokenize [-m MODEL] (-p TEXT | -f FILE) [--no-bos] [--special]\n"
            "  -m, --model MODEL   GGUF model or vocabulary file (default: the bundled\n"
            "                      model)\n"
            "  -p, --prompt TEXT   text to tokenize\n"
            "  -f, --file FILE     read the text from FILE (all bytes, as is)\n"
            "      --no-bos        do not add the BOS token\n"
            "      --special       parse special-token text (e.g. <|eot_id|>)\n"
            "  -h, --help          show this help\n"
            "Prints the token ids on one line separated by spaces.\n");
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL, *file = NULL;
    int no_bos = 0, special = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-p") || !strcmp(a, "--prompt") ||
                   !strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (i + 1 >= argc)
                return ex_fail(prog, "option %s needs a value (see --help)", a);
            const char *val = argv[++i];
            if (a[1] == 'm' || !strcmp(a, "--model")) model_path = val;
            else if (a[1] == 'p' || !strcmp(a, "--prompt")) prompt = val;
            else file = val;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = 1;
        } else if (!strcmp(a, "--special")) {
            special = 1;
        } else {
            return ex_fail(prog, "unknown option '%s' (see --help)", a);
        }
    }
    if ((!prompt && !file) || (prompt && file))
        return ex_fail(prog, "need exactly one of -p TEXT or -f FILE (see --help)");
    if (!model_path)
        model_path = ex_default_model();

    char *owned = NULL;
    const char *text = prompt;
    size_t len = prompt ? strlen(prompt) : 0;
    if (file) {
        owned = ex_read_file(file, &len);
        if (!owned)
            return ex_fail(prog, "cannot read '%s': %s", file, strerror(errno));
        text = owned;
    }

    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    mp.flags = BITNET_MODEL_VOCAB_ONLY;
    bitnet_model *model = NULL;
    int rc = bitnet_model_load_file(&model, model_path, &mp);
    if (rc != BITNET_OK) {
        ex_fail(prog, "cannot load '%s': %s", model_path, bitnet_last_error());
        free(owned);
        return 1;
    }

    uint32_t flags = (no_bos ? 0u : BITNET_TOKENIZE_ADD_BOS) | (special ? BITNET_TOKENIZE_PARSE_SPECIAL : 0u);
    size_t n = 0;
    rc = bitnet_tokenize(model, text, len, flags, NULL, 0, &n);
    int32_t *ids = NULL;
    if (rc == BITNET_OK || rc == BITNET_E_BUFFER_TOO_SMALL) {
        ids = malloc((n ? n : 1) * sizeof(*ids));
        rc = ids ? bitnet_tokenize(model, text, len, flags, ids, n, &n) : BITNET_E_NOMEM;
    }
    if (rc != BITNET_OK) {
        ex_fail(prog, "tokenize: %s", bitnet_last_error());
        free(ids);
        free(owned);
        bitnet_model_free(model);
        return 1;
    }
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
    printf("\n");
    free(ids);
    free(owned);
    bitnet_model_free(model);
    return fflush(stdout) == 0 ? 0 : 1;
}
