/*
 * libFuzzer target for the GGUF reader and the model loader: every input is
 * loaded from memory twice, as a full model and vocabulary-only. Built with
 * -Dfuzzing=true (clang, -fsanitize=fuzzer); otherwise replay.c runs it
 * over the committed corpus as an ordinary test.
 */
#include <stddef.h>
#include <stdint.h>

#include <bitnet.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t flags[2] = { 0, BITNET_MODEL_VOCAB_ONLY };
    for (int i = 0; i < 2; i++) {
        bitnet_model_params p;
        bitnet_model_params_init(&p);
        p.flags = flags[i];
        bitnet_model *m = NULL;
        if (bitnet_model_load_buffer(&m, data, size, &p) == BITNET_OK) {
            /* touch what a caller would read first */
            char buf[64];
            size_t n;
            (void)bitnet_model_n_vocab(m);
            (void)bitnet_model_meta(m, "general.architecture", buf, sizeof(buf), &n);
            (void)bitnet_model_meta(m, "tokenizer.ggml.tokens", buf, sizeof(buf), &n);
            bitnet_model_free(m);
        } else if (m != NULL) {
            __builtin_trap();            /* out must be NULL on failure */
        }
    }
    return 0;
}
