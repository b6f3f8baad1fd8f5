/* Placeholder: replaced by the module implementation. */
#include "internal.h"

int bitnet_tokenize(const bitnet_model *model, const char *text, size_t len, uint32_t flags, int32_t *out, size_t cap, size_t *n_out)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_tokenize: not available yet");
}

int bitnet_token_to_piece(const bitnet_model *model, int32_t token, uint32_t flags, char *buf, size_t cap, size_t *n_out)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_token_to_piece: not available yet");
}

int bitnet_detokenize(const bitnet_model *model, const int32_t *tokens, size_t n_tokens, uint32_t flags, char *buf, size_t cap, size_t *n_out)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_detokenize: not available yet");
}

int32_t bitnet_token_bos(const bitnet_model *model)
{
    return 0;
}

int32_t bitnet_token_eos(const bitnet_model *model)
{
    return 0;
}

int32_t bitnet_token_eot(const bitnet_model *model)
{
    return 0;
}

int bitnet_token_is_eog(const bitnet_model *model, int32_t token)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_token_is_eog: not available yet");
}

int bitnet_detokenizer_create(bitnet_detokenizer **out, const bitnet_model *model, uint32_t flags)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_detokenizer_create: not available yet");
}

int bitnet_detokenizer_feed(bitnet_detokenizer *d, int32_t token, char *buf, size_t cap, size_t *n_out)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_detokenizer_feed: not available yet");
}

int bitnet_detokenizer_flush(bitnet_detokenizer *d, char *buf, size_t cap, size_t *n_out)
{
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_detokenizer_flush: not available yet");
}

void bitnet_detokenizer_free(bitnet_detokenizer *d)
{
}
