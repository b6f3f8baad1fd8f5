/* Placeholder: replaced by the module implementation. */
#include "internal.h"

int bitnet_context_create(bitnet_context **out, const bitnet_model *model, const bitnet_context_params *params)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_context_create: not available yet");
}

void bitnet_context_free(bitnet_context *ctx)
{
}

int bitnet_context_eval(bitnet_context *ctx, const int32_t *tokens, size_t n_tokens, uint32_t flags)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_context_eval: not available yet");
}

int bitnet_context_logits(const bitnet_context *ctx, int32_t i, const float **out)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_context_logits: not available yet");
}

int32_t bitnet_context_pos(const bitnet_context *ctx)
{
    return 0;
}

int32_t bitnet_context_n_ctx(const bitnet_context *ctx)
{
    return 0;
}

const bitnet_model *bitnet_context_model(const bitnet_context *ctx)
{
    return NULL;
}

int bitnet_context_rewind(bitnet_context *ctx, int32_t pos)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_context_rewind: not available yet");
}

void bitnet_context_reset(bitnet_context *ctx)
{
}

size_t bitnet_context_state_size(const bitnet_context *ctx)
{
    return 0;
}

int bitnet_context_state_save(const bitnet_context *ctx, void *buf, size_t cap, size_t *n_out)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_context_state_save: not available yet");
}

int bitnet_context_state_load(bitnet_context *ctx, const void *buf, size_t size)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_context_state_load: not available yet");
}
