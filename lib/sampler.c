/* Placeholder: replaced by the module implementation. */
#include "internal.h"

int bitnet_sampler_create(bitnet_sampler **out, const bitnet_model *model, const bitnet_sampler_params *params)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_sampler_create: not available yet");
}

void bitnet_sampler_free(bitnet_sampler *s)
{
}

void bitnet_sampler_reset(bitnet_sampler *s)
{
}

int bitnet_sampler_sample(bitnet_sampler *s, const bitnet_context *ctx, int32_t i, int32_t *out_token)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_sampler_sample: not available yet");
}

int bitnet_sampler_sample_logits(bitnet_sampler *s, const float *logits, size_t n_logits, int32_t *out_token)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_sampler_sample_logits: not available yet");
}

int bitnet_sampler_accept(bitnet_sampler *s, int32_t token)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_sampler_accept: not available yet");
}
