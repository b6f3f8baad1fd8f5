/*
 * Hugging Face checkpoint directories (config.json, *.safetensors,
 * tokenizer files) read as a GGUF built in memory: the hyperparameters and
 * vocabulary become the GGUF keys libbitnet reads, the tensors get the
 * canonical GGUF names and are served from the mapped safetensors files,
 * packed ternary weights decoded one tensor at a time. Conventions and
 * their sources: docs/formats.md "Hugging Face checkpoints".
 */
#ifndef BITNET_HF_H
#define BITNET_HF_H

#include <stddef.h>
#include <stdint.h>

#include "base/internal.h"
#include "format/gguf.h"

/* 1 when `path` names a checkpoint: a directory, a *.safetensors file or a
 * *.safetensors.index.json file. */
int bitnet__hf_is_checkpoint(const char *path);

/* Open a checkpoint as a GGUF (see above). The directory's config.json is
 * required; the vocabulary comes from tokenizer.json or tokenizer.model
 * when present. Errors name the file and field: BITNET_E_UNSUPPORTED for an
 * architecture, quantisation method or dtype libbitnet does not know (and
 * for builds without JSON support), BITNET_E_FORMAT for malformed files,
 * BITNET_E_IO, BITNET_E_NOMEM. */
int bitnet__hf_open(bitnet_gguf **out, const char *path, int no_mmap,
                    const bitnet_logger *log);
/* The same as a model source (format/source.h); log may be NULL. */
int bitnet__hf_source(bitnet_source **out, const char *path, int no_mmap,
                      const bitnet_logger *log);

/* ---- config.json (also the fuzz target) ------------------------------- */

enum bitnet_hf_arch { HF_ARCH_B158 = 0, HF_ARCH_BITNET, HF_ARCH_LLAMA };

typedef struct bitnet_hf_config {
    int arch;                   /* enum bitnet_hf_arch */
    int64_t n_vocab, n_embd, n_layer, n_ff, n_head, n_head_kv, n_ctx;
    double norm_eps, rope_theta;
    int tied;                   /* -1: not stated (decided by lm_head.weight) */
    int scale_mul;              /* packed weights: 1 = W = T * weight_scale
                                   (AutoBitLinear), 0 = W = T / weight_scale
                                   (BitLinear) */
    int64_t bos, pad;           /* -1 when absent */
    int64_t eos[8];
    int n_eos;
} bitnet_hf_config;

/* Parse config.json text. `what` names it in messages. */
int bitnet__hf_config_parse(bitnet_hf_config *c, const char *text, size_t len,
                            const char *what);

/* ---- internal to the hf*.c files --------------------------------------- */

/* Read a whole file (NUL-terminated; BITNET_E_IO when it cannot be opened). */
int bitnet__hf_read_text(const char *path, char **out, size_t *len, size_t max);
/* Write the tokenizer.ggml.* keys for the checkpoint in `dir` (tokenizer.json,
 * else tokenizer.model; none: a warning and no keys), vocabulary padded to
 * c->n_vocab entries. */
int bitnet__hf_vocab(bitnet_gguf_writer *w, const char *dir,
                     const bitnet_hf_config *c, const bitnet_logger *log);
/* SentencePiece model file (protobuf) -> pieces, scores, types; the fuzz
 * target uses it too. *n_out pieces; strings point into buf. */
typedef struct bitnet_spm_piece { const char *s; size_t len; float score; int type; } bitnet_spm_piece;
int bitnet__spm_parse(const uint8_t *buf, size_t size, bitnet_spm_piece **out,
                      size_t *n_out, int *add_dummy_prefix, int *model_type);

#endif /* BITNET_HF_H */
