/* Placeholder: replaced by the module implementation. */
#include "internal.h"

int bitnet_model_load_file(bitnet_model **out, const char *path, const bitnet_model_params *params)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_model_load_file: not available yet");
}

int bitnet_model_load_buffer(bitnet_model **out, const void *data, size_t size, const bitnet_model_params *params)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_model_load_buffer: not available yet");
}

void bitnet_model_free(bitnet_model *model)
{
}

const char *bitnet_model_arch(const bitnet_model *model)
{
    return NULL;
}

int32_t bitnet_model_n_vocab(const bitnet_model *model)
{
    return 0;
}

int32_t bitnet_model_n_ctx_train(const bitnet_model *model)
{
    return 0;
}

int32_t bitnet_model_n_embd(const bitnet_model *model)
{
    return 0;
}

int32_t bitnet_model_n_layer(const bitnet_model *model)
{
    return 0;
}

int bitnet_model_meta(const bitnet_model *model, const char *key, char *buf, size_t cap, size_t *n_out)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_model_meta: not available yet");
}
