/*
 * The public text entry points that take a model: they find the model's
 * vocabulary and hand over to lib/text (which knows nothing of models).
 */
#include "base/internal.h"
#include "model/model.h"
#include "text/vocab.h"

static int get_vocab(const bitnet_model *m, const bitnet_vocab **v, const char *fn)
{
    if (!m) return bitnet__error(BITNET_E_INVALID_ARG, "%s: model is NULL", fn);
    if (!m->vocab) return bitnet__error(BITNET_E_UNSUPPORTED, "%s: the model has no tokenizer", fn);
    *v = m->vocab;
    return BITNET_OK;
}

int bitnet_tokenize(const bitnet_model *model, const char *text, size_t len, uint32_t flags,
                    int32_t *out, size_t cap, size_t *n_out)
{
    bitnet__clear_error();
    const bitnet_vocab *v = NULL;
    if (!n_out) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_tokenize: n_out is NULL");
    *n_out = 0;
    if (!text && len) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_tokenize: text is NULL");
    if (!out && cap) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_tokenize: out is NULL");
    if (flags & ~(uint32_t)(BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL))
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_tokenize: unknown flags 0x%x", (unsigned)flags);
    int rc = get_vocab(model, &v, "bitnet_tokenize");
    if (rc) return rc;
    return bitnet__vocab_tokenize(v, text ? text : "", len, flags, out, cap, n_out);
}

int bitnet_token_to_piece(const bitnet_model *model, int32_t token, uint32_t flags,
                          char *buf, size_t cap, size_t *n_out)
{
    bitnet__clear_error();
    const bitnet_vocab *v = NULL;
    if (!n_out) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_token_to_piece: n_out is NULL");
    *n_out = 0;
    if (!buf && cap) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_token_to_piece: buf is NULL");
    if (flags & ~(uint32_t)BITNET_DETOK_SPECIAL)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_token_to_piece: unknown flags 0x%x", (unsigned)flags);
    int rc = get_vocab(model, &v, "bitnet_token_to_piece");
    if (rc) return rc;
    return bitnet__vocab_piece(v, token, flags, buf, cap, n_out);
}

int bitnet_detokenize(const bitnet_model *model, const int32_t *tokens, size_t n_tokens,
                      uint32_t flags, char *buf, size_t cap, size_t *n_out)
{
    bitnet__clear_error();
    const bitnet_vocab *v = NULL;
    if (!n_out) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenize: n_out is NULL");
    *n_out = 0;
    if (!tokens && n_tokens) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenize: tokens is NULL");
    if (!buf && cap) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenize: buf is NULL");
    if (flags & ~(uint32_t)BITNET_DETOK_SPECIAL)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenize: unknown flags 0x%x", (unsigned)flags);
    int rc = get_vocab(model, &v, "bitnet_detokenize");
    if (rc) return rc;
    return bitnet__vocab_detokenize(v, tokens, n_tokens, flags, buf, cap, n_out);
}

int32_t bitnet_token_bos(const bitnet_model *model)
{
    return model ? bitnet__vocab_bos(model->vocab) : -1;
}

int32_t bitnet_token_eos(const bitnet_model *model)
{
    return model ? bitnet__vocab_eos(model->vocab) : -1;
}

int32_t bitnet_token_eot(const bitnet_model *model)
{
    return model ? bitnet__vocab_eot(model->vocab) : -1;
}

int bitnet_token_is_eog(const bitnet_model *model, int32_t token)
{
    return model ? bitnet__vocab_is_eog(model->vocab, token) : 0;
}

int bitnet_detokenizer_create(bitnet_detokenizer **out, const bitnet_model *model, uint32_t flags)
{
    bitnet__clear_error();
    if (!out) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenizer_create: out is NULL");
    *out = NULL;
    if (flags & ~(uint32_t)BITNET_DETOK_SPECIAL)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenizer_create: unknown flags 0x%x", (unsigned)flags);
    const bitnet_vocab *v = NULL;
    int rc = get_vocab(model, &v, "bitnet_detokenizer_create");
    if (rc) return rc;
    return bitnet__detokenizer_new(out, v, flags);
}

