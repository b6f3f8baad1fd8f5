/*
 * Vocabulary and tokenizers (byte-level BPE with the llama-bpe, gpt-2 and
 * default pre-tokenizers; SentencePiece with byte fallback).
 */
#ifndef BITNET_VOCAB_H
#define BITNET_VOCAB_H

#include "base/internal.h"
#include "format/source.h"

typedef struct bitnet_vocab bitnet_vocab;

/* Load from a source's vocabulary description (format/source.h). `pretok`
 * is a BITNET_PRETOK_* value. The description (and the source) need to live
 * only during this call: everything needed later is copied. Errors name the
 * field as the source calls it (BITNET_E_FORMAT, BITNET_E_UNSUPPORTED for
 * other tokenizer models, BITNET_E_NOMEM). Model "none"/"no_vocab" gives
 * BITNET_OK with *out NULL. All functions below accept a NULL vocab only where noted:
 * n_tokens (0), bos/eos/eot (-1), is_eog (0). */
int bitnet__vocab_load(bitnet_vocab **out, const bitnet_vocab_desc *d, int32_t pretok,
                       const bitnet_logger *log);
void bitnet__vocab_free(bitnet_vocab *v);

int32_t bitnet__vocab_n_tokens(const bitnet_vocab *v);
int32_t bitnet__vocab_bos(const bitnet_vocab *v);
int32_t bitnet__vocab_eos(const bitnet_vocab *v);
int32_t bitnet__vocab_eot(const bitnet_vocab *v);
int bitnet__vocab_is_eog(const bitnet_vocab *v, int32_t tok);

/* Semantics as the public functions of the same name in bitnet.h. */
int bitnet__vocab_tokenize(const bitnet_vocab *v, const char *text, size_t len,
                           uint32_t flags, int32_t *out, size_t cap, size_t *n_out);
int bitnet__vocab_piece(const bitnet_vocab *v, int32_t tok, uint32_t flags,
                        char *buf, size_t cap, size_t *n_out);
int bitnet__vocab_detokenize(const bitnet_vocab *v, const int32_t *toks, size_t n,
                             uint32_t flags, char *buf, size_t cap, size_t *n_out);
/* A streaming detokenizer over v (flags already checked); the public
 * bitnet_detokenizer_create finds v in the model. */
int bitnet__detokenizer_new(bitnet_detokenizer **out, const bitnet_vocab *v, uint32_t flags);

/* Pieces up to this many bytes are merged by scanning, longer ones with a
 * heap (same result; tests set it to compare the two). Default 48, max 64. */
extern size_t bitnet__bpe_scan_max;
/* Fragments of at least this many bytes use a per-call cache of merged
 * pieces (same result; tests set it to compare). Default 4096. */
extern size_t bitnet__bpe_cache_min;

/* The byte-level pre-tokenizer alone (for tests): byte lengths of the
 * pieces of text under BITNET_PRETOK_LLAMA3, _GPT2 or _DEFAULT (AUTO and
 * others: DEFAULT). Buffer contract as bitnet_tokenize. */
int bitnet__pretok_split(int32_t pretok, const char *text, size_t len, uint32_t *lens, size_t cap,
                         size_t *n_out);

#endif /* BITNET_VOCAB_H */
