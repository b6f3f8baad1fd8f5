/*
 * Tokenizer: vocabulary loading and the public tokenizer entry points.
 * (Interim: compiling vocabulary API; the real implementation follows.)
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "model.h"
#include "vocab.h"

struct bitnet_vocab {
    int32_t n_tokens;
    int32_t bos, eos, eot, eom;
};

int bitnet__vocab_load(bitnet_vocab **out, const bitnet_gguf *g, int32_t pretok,
                       const bitnet_logger *log)
{
    (void)g; (void)pretok; (void)log;
    bitnet_vocab *v = calloc(1, sizeof(*v));
    if (!v) return bitnet__error(BITNET_E_NOMEM, "vocab: out of memory");
    v->bos = v->eos = v->eot = v->eom = -1;
    *out = v;
    return BITNET_OK;
}

void bitnet__vocab_free(bitnet_vocab *v) { free(v); }
int32_t bitnet__vocab_n_tokens(const bitnet_vocab *v) { return v ? v->n_tokens : 0; }
int32_t bitnet__vocab_bos(const bitnet_vocab *v) { return v ? v->bos : -1; }
int32_t bitnet__vocab_eos(const bitnet_vocab *v) { return v ? v->eos : -1; }
int32_t bitnet__vocab_eot(const bitnet_vocab *v) { return v ? v->eot : -1; }
int bitnet__vocab_is_eog(const bitnet_vocab *v, int32_t tok)
{
    return v && tok >= 0 && (tok == v->eos || tok == v->eot || tok == v->eom);
}

int bitnet__vocab_tokenize(const bitnet_vocab *v, const char *text, size_t len,
                           uint32_t flags, int32_t *out, size_t cap, size_t *n_out)
{
    (void)v; (void)text; (void)len; (void)flags; (void)out; (void)cap; (void)n_out;
    return bitnet__error(BITNET_E_UNSUPPORTED, "tokenizer: not implemented yet");
}

int bitnet__vocab_piece(const bitnet_vocab *v, int32_t tok, uint32_t flags,
                        char *buf, size_t cap, size_t *n_out)
{
    (void)v; (void)tok; (void)flags; (void)buf; (void)cap; (void)n_out;
    return bitnet__error(BITNET_E_UNSUPPORTED, "tokenizer: not implemented yet");
}

int bitnet__vocab_detokenize(const bitnet_vocab *v, const int32_t *toks, size_t n,
                             uint32_t flags, char *buf, size_t cap, size_t *n_out)
{
    (void)v; (void)toks; (void)n; (void)flags; (void)buf; (void)cap; (void)n_out;
    return bitnet__error(BITNET_E_UNSUPPORTED, "tokenizer: not implemented yet");
}

int bitnet_tokenize(const bitnet_model *model, const char *text, size_t len, uint32_t flags, int32_t *out, size_t cap, size_t *n_out)
{
    (void)model; (void)text; (void)len; (void)flags; (void)out; (void)cap; (void)n_out;
    bitnet__clear_error();
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_tokenize: not available yet");
}

int bitnet_token_to_piece(const bitnet_model *model, int32_t token, uint32_t flags, char *buf, size_t cap, size_t *n_out)
{
    (void)model; (void)token; (void)flags; (void)buf; (void)cap; (void)n_out;
    bitnet__clear_error();
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_token_to_piece: not available yet");
}

int bitnet_detokenize(const bitnet_model *model, const int32_t *tokens, size_t n_tokens, uint32_t flags, char *buf, size_t cap, size_t *n_out)
{
    (void)model; (void)tokens; (void)n_tokens; (void)flags; (void)buf; (void)cap; (void)n_out;
    bitnet__clear_error();
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_detokenize: not available yet");
}

int32_t bitnet_token_bos(const bitnet_model *model) { return model ? bitnet__vocab_bos(model->vocab) : -1; }
int32_t bitnet_token_eos(const bitnet_model *model) { return model ? bitnet__vocab_eos(model->vocab) : -1; }
int32_t bitnet_token_eot(const bitnet_model *model) { return model ? bitnet__vocab_eot(model->vocab) : -1; }
int bitnet_token_is_eog(const bitnet_model *model, int32_t token)
{
    return model ? bitnet__vocab_is_eog(model->vocab, token) : 0;
}

int bitnet_detokenizer_create(bitnet_detokenizer **out, const bitnet_model *model, uint32_t flags)
{
    (void)out; (void)model; (void)flags;
    bitnet__clear_error();
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_detokenizer_create: not available yet");
}

int bitnet_detokenizer_feed(bitnet_detokenizer *d, int32_t token, char *buf, size_t cap, size_t *n_out)
{
    (void)d; (void)token; (void)buf; (void)cap; (void)n_out;
    bitnet__clear_error();
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_detokenizer_feed: not available yet");
}

int bitnet_detokenizer_flush(bitnet_detokenizer *d, char *buf, size_t cap, size_t *n_out)
{
    (void)d; (void)buf; (void)cap; (void)n_out;
    bitnet__clear_error();
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_detokenizer_flush: not available yet");
}

void bitnet_detokenizer_free(bitnet_detokenizer *d) { (void)d; }
