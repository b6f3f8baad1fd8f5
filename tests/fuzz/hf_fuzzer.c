/*
 * libFuzzer target for the Hugging Face checkpoint parsers: every input is
 * read as a safetensors file (header validation), as config.json and as a
 * SentencePiece tokenizer.model. Built with -Dfuzzing=true (clang,
 * -fsanitize=fuzzer); otherwise replay.c runs it over the committed corpus
 * (corpus/hf) as an ordinary test.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "format/hf.h"
#include "format/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bitnet_st_tensor *t = NULL;
    size_t n = 0;
    if (bitnet__st_parse(data, size, "fuzz.safetensors", &t, &n) == BITNET_OK) {
        /* every accepted tensor lies inside the buffer */
        for (size_t i = 0; i < n; i++)
            if (t[i].data < data || t[i].data + (t[i].end - t[i].begin) > data + size)
                __builtin_trap();
        bitnet__st_tensors_free(t, n);
    } else if (t) {
        __builtin_trap();
    }
    bitnet_hf_config c;
    (void)bitnet__hf_config_parse(&c, (const char *)data, size, "fuzz/config.json");
    bitnet_spm_piece *p = NULL;
    int adp, mt;
    if (bitnet__spm_parse(data, size, &p, &n, &adp, &mt) == BITNET_OK) {
        for (size_t i = 0; i < n; i++)
            if ((const uint8_t *)p[i].s < data ||
                (const uint8_t *)p[i].s + p[i].len > data + size)
                __builtin_trap();
        free(p);
    }
    return 0;
}
