/*
 * libbitnet - run ternary BitNet b1.58 language models on CPUs.
 *
 * This is the only installed header. Everything here is part of the stable
 * ABI described in docs/abi.md: functions are only ever added, enum values
 * are pinned, and params structs only grow at their end.
 *
 * Conventions used throughout
 * ---------------------------
 *  - Fallible functions return int: BITNET_OK (0) on success, a negative
 *    bitnet_status on failure. Positive values are never errors.
 *  - Constructors take an out-pointer, set it to NULL on failure, and return
 *    a status. Destructors (bitnet_*_free) return void and accept NULL.
 *  - Text is UTF-8 with an explicit byte length; it need not be
 *    NUL-terminated unless a parameter says so.
 *  - Variable-sized output goes into caller buffers. When the buffer is too
 *    small, the function returns BITNET_E_BUFFER_TOO_SMALL and stores the
 *    required count in *n_out; nothing useful is written in that case.
 *  - Params structs start with struct_size. Fill them with the matching
 *    *_params_init() macro, then change the fields you need. The library
 *    reads only the fields inside struct_size and uses defaults for the rest;
 *    a struct larger than the library knows is accepted only when the
 *    unknown tail is all zero (otherwise BITNET_E_UNSUPPORTED).
 *  - Every error is also described in a message: see bitnet_last_error().
 *
 * Threading
 * ---------
 *  - Free functions (version, strerror, system info, cpu features,
 *    chat rendering, tokenization) are thread-safe.
 *  - A bitnet_model is immutable once loaded and may be shared by any number
 *    of contexts, samplers and threads. It must outlive all of them.
 *  - A bitnet_context, bitnet_sampler or bitnet_detokenizer is used by one
 *    thread at a time; it may move between threads if the caller
 *    synchronises. A context owns its worker threads; bitnet_context_free
 *    joins them.
 *
 * Numerics
 * --------
 *  Results never depend on the thread count, on how a sequence of tokens
 *  is split into eval calls, or on the other sequences evaluated with it by
 *  bitnet_context_eval_multi(): same tokens in, same logits out, bit for bit.
 */
#ifndef BITNET_H
#define BITNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef BITNET_API
# if defined(_WIN32) && defined(BITNET_BUILDING_DLL)
#  define BITNET_API __declspec(dllexport)
# elif defined(__GNUC__) && __GNUC__ >= 4
#  define BITNET_API __attribute__((visibility("default")))
# else
#  define BITNET_API
# endif
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                 */
/* ------------------------------------------------------------------------ */

#define BITNET_VERSION_MAJOR 0
#define BITNET_VERSION_MINOR 2
#define BITNET_VERSION_PATCH 0
/** Release version as (major << 16) | (minor << 8) | patch. */
#define BITNET_VERSION \
    ((BITNET_VERSION_MAJOR << 16) | (BITNET_VERSION_MINOR << 8) | BITNET_VERSION_PATCH)
/** ABI version: the soname is libbitnet.so.BITNET_ABI_VERSION. It changes
 *  only when a binary built against an older header could break. */
#define BITNET_ABI_VERSION 1

/** Version of the library actually loaded, encoded like BITNET_VERSION.
 *  (bitnet_version() >> 16) == BITNET_VERSION_MAJOR checks header/library
 *  agreement. Thread-safe. */
BITNET_API uint32_t bitnet_version(void);
/** Version string of the loaded library, e.g. "0.1.0". Static, never NULL. */
BITNET_API const char *bitnet_version_string(void);
/** ABI version of the loaded library (equals BITNET_ABI_VERSION it was built
 *  with). */
BITNET_API int32_t bitnet_abi_version(void);

/* ------------------------------------------------------------------------ */
/* Status codes                                                             */
/* ------------------------------------------------------------------------ */

/** Status codes. Values are pinned forever: new codes are appended with new
 *  values, none is renumbered or reused. */
typedef enum bitnet_status {
    BITNET_OK                  =   0,
    BITNET_E_INVALID_ARG       =  -1, /**< NULL or out-of-range argument      */
    BITNET_E_NOMEM             =  -2, /**< an allocation failed               */
    BITNET_E_IO                =  -3, /**< a file could not be opened/read    */
    BITNET_E_FORMAT            =  -4, /**< malformed or inconsistent input    */
    BITNET_E_UNSUPPORTED       =  -5, /**< valid but not supported            */
    BITNET_E_BUFFER_TOO_SMALL  =  -6, /**< caller buffer too small, see n_out */
    BITNET_E_CONTEXT_FULL      =  -7, /**< the context has no room left       */
    BITNET_E_ABORTED           =  -8, /**< the abort callback asked to stop   */
    BITNET_E_INTERNAL          =  -9, /**< a bug in libbitnet                 */
    BITNET_E_NOT_FOUND         = -10, /**< no such key, template or entry     */
    BITNET_E_STATE             = -11, /**< a call out of order (e.g. no logits
                                            yet), or a state blob that does not
                                            fit this model/version          */
    BITNET_E_GRAMMAR           = -12  /**< a grammar that does not parse or can
                                            never match, or a token the
                                            grammar does not allow           */
} bitnet_status;

/** A static English description of a status code. Unknown codes give
 *  "unknown error". Never NULL. Thread-safe. */
BITNET_API const char *bitnet_strerror(int status);

/** The message describing the last failure of a libbitnet call on the calling
 *  thread (thread-local, like dlerror). Returns "" when the last call on this
 *  thread succeeded or none failed yet. The string stays valid until the next
 *  libbitnet call on the same thread. Never NULL. */
BITNET_API const char *bitnet_last_error(void);

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

enum {
    BITNET_LOG_ERROR = 0,
    BITNET_LOG_WARN  = 1,
    BITNET_LOG_INFO  = 2,
    BITNET_LOG_DEBUG = 3
};

/** Receives one pre-formatted message (UTF-8, no trailing newline) with its
 *  level. It may be called from any thread that calls into the object the
 *  callback was given to; it must not call back into that object. */
typedef void (*bitnet_log_fn)(void *user, int32_t level, const char *msg);

/** Called during model loading with progress in [0, 1]. Return non-zero to
 *  cancel the load (it then fails with BITNET_E_ABORTED). */
typedef int (*bitnet_progress_fn)(void *user, float progress);

/** Polled between layers during eval. Return non-zero to stop; eval then
 *  returns BITNET_E_ABORTED and the context is left as before the call. */
typedef int (*bitnet_abort_fn)(void *user);

/* ------------------------------------------------------------------------ */
/* CPU features and system information                                      */
/* ------------------------------------------------------------------------ */

/** CPU feature bits, for bitnet_cpu_features() and the context cpu_mask. */
enum {
    BITNET_CPU_AVX2       = 1u << 0, /**< x86: AVX2 + FMA + F16C            */
    BITNET_CPU_AVX_VNNI   = 1u << 1, /**< x86: 256-bit VNNI (AVX-VNNI)      */
    BITNET_CPU_AVX512     = 1u << 2, /**< x86: AVX-512 F/BW/VL/VNNI         */
    BITNET_CPU_AMX        = 1u << 3, /**< x86: AMX-TILE + AMX-INT8 usable   */
    BITNET_CPU_NEON       = 1u << 8, /**< AArch64: Advanced SIMD            */
    BITNET_CPU_DOTPROD    = 1u << 9  /**< AArch64: SDOT/UDOT                */
};
/** Every feature (the default cpu_mask). */
#define BITNET_CPU_ALL 0xffffffffu

/** Features detected on this CPU and usable under this OS, restricted by
 *  the BITNET_CPU_MASK environment variable (a number, e.g. 0 for the plain C
 *  reference or 0x1 for AVX2 only) when it is set. Thread-safe. */
BITNET_API uint32_t bitnet_cpu_features(void);

/** A static, human-readable description: version, detected CPU features
 *  and the kernel chosen for each operation with all features enabled.
 *  Never NULL. Thread-safe. */
BITNET_API const char *bitnet_system_info(void);

/* ------------------------------------------------------------------------ */
/* Opaque objects                                                           */
/* ------------------------------------------------------------------------ */

/** Weights, hyperparameters and vocabulary. Immutable after load. */
typedef struct bitnet_model bitnet_model;
/** A session: KV cache, scratch buffers, kernel table and worker threads. */
typedef struct bitnet_context bitnet_context;
/** Turns logits into a token; holds its RNG and penalty history. */
typedef struct bitnet_sampler bitnet_sampler;
/** Turns a stream of tokens into complete UTF-8 text. */
typedef struct bitnet_detokenizer bitnet_detokenizer;

/* ------------------------------------------------------------------------ */
/* Model                                                                    */
/* ------------------------------------------------------------------------ */

enum {
    /** Read the file with read() into memory instead of mapping it.
     *  Without it the file is mapped: a mapped file truncated by another
     *  process while the model is loaded kills the process with SIGBUS at
     *  the next eval (replacing the file by rename is harmless). Use this
     *  flag when the file may be rewritten in place. */
    BITNET_MODEL_NO_MMAP    = 1u << 0,
    /** Load hyperparameters and the vocabulary only: tokenizer and metadata
     *  calls work, contexts cannot be created (BITNET_E_UNSUPPORTED). */
    BITNET_MODEL_VOCAB_ONLY = 1u << 1,
    /** Also build the int8 (per-row scaled) copy of the output head at load,
     *  so contexts using BITNET_CONTEXT_INT8_HEAD start immediately. */
    BITNET_MODEL_INT8_HEAD  = 1u << 2
};

/** Pre-tokenizer choices for bitnet_model_params.pre_tokenizer. */
enum {
    BITNET_PRETOK_AUTO    = 0, /**< the file's tokenizer.ggml.pre; when it is
                                    missing on the Llama-3 vocabulary, llama-bpe */
    BITNET_PRETOK_DEFAULT = 1, /**< llama.cpp's "default" sequence: what
                                    bitnet.cpp uses on the official 2B4T file */
    BITNET_PRETOK_LLAMA3  = 2, /**< the Llama-3 regex (llama-bpe)          */
    BITNET_PRETOK_GPT2    = 3  /**< the GPT-2 regex                          */
};

/** Output head formats for bitnet_model_params.head_type. The head (n_vocab
 *  x n_embd) is the largest single read per generated token; a smaller
 *  format reads fewer bytes and costs a little accuracy (docs/kernels.md
 *  lists the perplexity cost of each on the bundled model). */
enum bitnet_head_type {
    BITNET_HEAD_AUTO = 0,  /**< the file's head as it is (F16, F32, BF16,
                                Q8_0, Q4_0 or Q6_K): the default          */
    BITNET_HEAD_F16  = 1,  /**< F16 (converted at load if the file's differs) */
    BITNET_HEAD_INT8 = 2,  /**< int8 with one scale per row, converted at
                                load (as BITNET_CONTEXT_INT8_HEAD)        */
    BITNET_HEAD_Q8_0 = 3,  /**< Q8_0 (file's, or converted at load; n_embd
                                a multiple of 32)                         */
    BITNET_HEAD_Q6_K = 4   /**< Q6_K (file's, or converted at load; n_embd
                                a multiple of 256)                        */
};

typedef struct bitnet_model_params {
    uint32_t struct_size;      /**< set by bitnet_model_params_init          */
    uint32_t flags;            /**< BITNET_MODEL_*; default 0                */
    bitnet_log_fn log_fn;      /**< NULL: silent; default NULL               */
    void *log_user;            /**< passed to log_fn                         */
    int32_t log_level;         /**< most verbose level passed; default WARN  */
    int32_t pre_tokenizer;     /**< BITNET_PRETOK_*; default AUTO            */
    bitnet_progress_fn progress_fn; /**< NULL: none                          */
    void *progress_user;       /**< passed to progress_fn                    */
    int32_t head_type;         /**< BITNET_HEAD_*; default AUTO. Other values:
                                    BITNET_E_INVALID_ARG from the load; a
                                    format n_embd does not fit:
                                    BITNET_E_UNSUPPORTED                   */
} bitnet_model_params;

/** Fill the first `size` bytes of *p with defaults and set struct_size.
 *  Use the macro. Does nothing when p is NULL or size < 4. */
BITNET_API void bitnet_model_params_init_(bitnet_model_params *p, size_t size);
#define bitnet_model_params_init(p) bitnet_model_params_init_((p), sizeof(*(p)))

/**
 * Load a model: a GGUF file, or a Hugging Face checkpoint (a directory with
 * config.json and model.safetensors or model.safetensors.index.json, or
 * either of those two files). A checkpoint's tensors are read through
 * memory maps, packed ternary weights decoded and full-precision master
 * weights ternarised one tensor at a time; its vocabulary comes from
 * tokenizer.json or tokenizer.model (docs/formats.md lists the conventions
 * understood). Loading a checkpoint needs a library built with JSON support
 * (else BITNET_E_UNSUPPORTED).
 *
 * @param out    receives the model; set to NULL on failure
 * @param path   NUL-terminated file path
 * @param params NULL for defaults
 * @return BITNET_OK;
 *         BITNET_E_INVALID_ARG (out or path NULL; bad params: struct_size
 *           below 4 or above 4096 (an uninitialised struct), unknown flags
 *           bits, pre_tokenizer not a BITNET_PRETOK_* value);
 *         BITNET_E_IO (cannot open or read);
 *         BITNET_E_FORMAT (malformed or inconsistent file);
 *         BITNET_E_UNSUPPORTED (unknown architecture, quantisation method or
 *           tensor type, or a params struct from a newer header with
 *           non-zero unknown fields);
 *         BITNET_E_NOMEM; BITNET_E_ABORTED (progress callback cancelled).
 * The message (bitnet_last_error) names the file, key or field at fault.
 * The model is immutable and thread-safe once returned. Free it with
 * bitnet_model_free() after every context, sampler and detokenizer made
 * from it has been freed.
 */
BITNET_API int bitnet_model_load_file(bitnet_model **out, const char *path,
                                      const bitnet_model_params *params);

/**
 * Load a GGUF model from memory. The buffer is borrowed: it must stay valid
 * and unchanged until bitnet_model_free(). Return codes as for
 * bitnet_model_load_file() (never BITNET_E_IO).
 */
BITNET_API int bitnet_model_load_buffer(bitnet_model **out, const void *data,
                                        size_t size,
                                        const bitnet_model_params *params);

/** Free a model. NULL is ignored. */
BITNET_API void bitnet_model_free(bitnet_model *model);

/** Architecture name from the file, e.g. "bitnet-b1.58". NULL if model is
 *  NULL. The string lives as long as the model. */
BITNET_API const char *bitnet_model_arch(const bitnet_model *model);
/** Vocabulary size; 0 if model is NULL. */
BITNET_API int32_t bitnet_model_n_vocab(const bitnet_model *model);
/** Training context length; 0 if model is NULL. */
BITNET_API int32_t bitnet_model_n_ctx_train(const bitnet_model *model);
/** Embedding (hidden) size; 0 if model is NULL. */
BITNET_API int32_t bitnet_model_n_embd(const bitnet_model *model);
/** Number of transformer layers; 0 if model is NULL. */
BITNET_API int32_t bitnet_model_n_layer(const bitnet_model *model);

/**
 * A metadata value rendered as text: numbers in decimal, booleans as
 * "true"/"false", strings as they are, arrays as "[a, b, ...]" (at most the
 * first 64 elements, then "...").
 *
 * @param buf   receives the NUL-terminated text; may be NULL when cap is 0
 * @param n_out receives the length without the NUL
 * @return BITNET_OK; BITNET_E_INVALID_ARG; BITNET_E_NOT_FOUND (no such key);
 *         BITNET_E_BUFFER_TOO_SMALL (*n_out + 1 bytes are needed).
 */
BITNET_API int bitnet_model_meta(const bitnet_model *model, const char *key,
                                 char *buf, size_t cap, size_t *n_out);

/* ------------------------------------------------------------------------ */
/* Tokenizer                                                                */
/* ------------------------------------------------------------------------ */

enum {
    /** Prepend BOS when the vocabulary asks for it (tokenizer.ggml.add_bos_token,
     *  true when absent for BPE/SPM vocabularies that have a BOS); also append
     *  EOS when tokenizer.ggml.add_eos_token is true. */
    BITNET_TOKENIZE_ADD_BOS       = 1u << 0,
    /** Turn special-token text (e.g. "<|eot_id|>") into the special token,
     *  longest match first. Without it such text is tokenized as plain text
     *  (user-defined tokens, token type 4, are matched either way, as in
     *  llama.cpp). Never use it on untrusted text; chat prompts:
     *  bitnet_chat_tokenize(). */
    BITNET_TOKENIZE_PARSE_SPECIAL = 1u << 1
};

/**
 * Tokenize UTF-8 text. Invalid UTF-8 is accepted and tokenized byte-wise
 * (never read out of bounds).
 *
 * @param text  may be NULL when len is 0
 * @param out   receives up to cap ids; may be NULL when cap is 0
 * @param n_out receives the number of ids (needed count when too small)
 * @return BITNET_OK; BITNET_E_INVALID_ARG; BITNET_E_BUFFER_TOO_SMALL; BITNET_E_NOMEM;
 *         BITNET_E_UNSUPPORTED (the model has no vocabulary: its file says
 *         tokenizer.ggml.model "none" or has no tokenizer keys).
 * Thread-safe.
 */
BITNET_API int bitnet_tokenize(const bitnet_model *model, const char *text,
                               size_t len, uint32_t flags, int32_t *out,
                               size_t cap, size_t *n_out);

enum {
    /** Render control tokens (BOS, EOS, <|eot_id|>...) as their text;
     *  without it they produce no bytes. */
    BITNET_DETOK_SPECIAL = 1u << 0
};

/**
 * The bytes of one token. The piece may be an incomplete UTF-8 sequence;
 * use a bitnet_detokenizer to stream text safely.
 *
 * @param buf   receives the bytes (not NUL-terminated); NULL allowed if cap 0
 * @return BITNET_OK; BITNET_E_INVALID_ARG (bad id); BITNET_E_BUFFER_TOO_SMALL;
 *         BITNET_E_UNSUPPORTED (the model has no vocabulary).
 * Thread-safe.
 */
BITNET_API int bitnet_token_to_piece(const bitnet_model *model, int32_t token,
                                     uint32_t flags, char *buf, size_t cap,
                                     size_t *n_out);

/**
 * Concatenate the bytes of many tokens (SentencePiece vocabularies drop the
 * leading space of the first piece). Invalid byte sequences are passed
 * through unchanged. Return codes as bitnet_token_to_piece(). Thread-safe.
 */
BITNET_API int bitnet_detokenize(const bitnet_model *model,
                                 const int32_t *tokens, size_t n_tokens,
                                 uint32_t flags, char *buf, size_t cap,
                                 size_t *n_out);

/** Special ids; -1 when the vocabulary has none. */
BITNET_API int32_t bitnet_token_bos(const bitnet_model *model);
BITNET_API int32_t bitnet_token_eos(const bitnet_model *model);
BITNET_API int32_t bitnet_token_eot(const bitnet_model *model);
/** 1 if the token ends generation (EOS, EOT, EOM), else 0. */
BITNET_API int bitnet_token_is_eog(const bitnet_model *model, int32_t token);

/**
 * Streaming detokenizer: feed tokens one at a time and receive only complete
 * UTF-8 characters; bytes of a character split across tokens are held back
 * until it completes. Invalid sequences are emitted as U+FFFD.
 * @return BITNET_OK; BITNET_E_INVALID_ARG; BITNET_E_NOMEM;
 *         BITNET_E_UNSUPPORTED (the model has no vocabulary).
 */
BITNET_API int bitnet_detokenizer_create(bitnet_detokenizer **out,
                                         const bitnet_model *model,
                                         uint32_t flags);
/** Feed one token. *n_out bytes of complete text are written to buf.
 *  BITNET_E_BUFFER_TOO_SMALL leaves the detokenizer unchanged and sets
 *  *n_out to the size needed; 64 bytes plus 3 times the longest token piece
 *  always suffice (each invalid byte becomes the 3-byte U+FFFD). */
BITNET_API int bitnet_detokenizer_feed(bitnet_detokenizer *d, int32_t token,
                                       char *buf, size_t cap, size_t *n_out);
/** Emit what is held back (as U+FFFD if incomplete) and reset. */
BITNET_API int bitnet_detokenizer_flush(bitnet_detokenizer *d, char *buf,
                                        size_t cap, size_t *n_out);
/** Free. NULL is ignored. */
BITNET_API void bitnet_detokenizer_free(bitnet_detokenizer *d);

/* ------------------------------------------------------------------------ */
/* Context (session)                                                        */
/* ------------------------------------------------------------------------ */

enum {
    /** Use the int8 per-row-scaled copy of the output head (about half the
     *  bytes per token of F16; logits differ slightly from the exact head). */
    BITNET_CONTEXT_INT8_HEAD = 1u << 0
};

typedef struct bitnet_context_params {
    uint32_t struct_size;   /**< set by bitnet_context_params_init            */
    int32_t n_ctx;          /**< KV cache length in tokens; 0: the model's
                                 training context capped at 4096; default 0   */
    int32_t n_threads;      /**< worker threads incl. the caller; 0: number of
                                 online CPUs; default 0; at most 256. A step
                                 with little work uses fewer (results do not
                                 depend on the count)                         */
    int32_t n_batch;        /**< largest number of tokens processed together
                                 in one internal step; default 512            */
    uint32_t cpu_mask;      /**< allowed BITNET_CPU_* bits; default ALL       */
    uint32_t flags;         /**< BITNET_CONTEXT_*; default 0                  */
    bitnet_log_fn log_fn;   /**< NULL: silent                                 */
    void *log_user;
    int32_t log_level;      /**< default WARN                                 */
    bitnet_abort_fn abort_fn; /**< NULL: never abort                          */
    void *abort_user;
} bitnet_context_params;

BITNET_API void bitnet_context_params_init_(bitnet_context_params *p, size_t size);
#define bitnet_context_params_init(p) bitnet_context_params_init_((p), sizeof(*(p)))

/**
 * Create a context on a model.
 * @return BITNET_OK; BITNET_E_INVALID_ARG (NULLs, n_ctx < 0, n_threads < 0
 *         or > 256, n_batch < 0, unknown flags); BITNET_E_UNSUPPORTED (vocab-only model, or
 *         params from a newer header with unknown non-zero fields);
 *         BITNET_E_NOMEM.
 * The model must outlive the context.
 */
BITNET_API int bitnet_context_create(bitnet_context **out,
                                     const bitnet_model *model,
                                     const bitnet_context_params *params);
/** Free a context and join its threads. NULL is ignored. */
BITNET_API void bitnet_context_free(bitnet_context *ctx);

enum {
    /** Keep the logits of every token of this eval call, not only the last. */
    BITNET_EVAL_ALL_LOGITS = 1u << 0
};

/**
 * Evaluate tokens at the current position and advance it by n_tokens.
 *
 * @return BITNET_OK; BITNET_E_INVALID_ARG (NULL, n_tokens 0, a token id
 *         outside the vocabulary, unknown flags); BITNET_E_CONTEXT_FULL (position +
 *         n_tokens > n_ctx; nothing is evaluated and the context is
 *         unchanged); BITNET_E_ABORTED (context unchanged); BITNET_E_NOMEM.
 */
BITNET_API int bitnet_context_eval(bitnet_context *ctx, const int32_t *tokens,
                                   size_t n_tokens, uint32_t flags);

/**
 * Logits (n_vocab floats) of a token of the last successful eval call.
 * @param i  index in that call's tokens; -1 means the last one. Other
 *           indices need BITNET_EVAL_ALL_LOGITS.
 * @param out receives a pointer valid until the next eval/rewind/reset/free
 * @return BITNET_OK; BITNET_E_INVALID_ARG (bad i or NULL);
 *         BITNET_E_STATE (no eval yet, or logits of i were not kept).
 */
BITNET_API int bitnet_context_logits(const bitnet_context *ctx, int32_t i,
                                     const float **out);

/** Number of tokens in the KV cache (the next token's position). */
BITNET_API int32_t bitnet_context_pos(const bitnet_context *ctx);
/** KV cache length in tokens. */
BITNET_API int32_t bitnet_context_n_ctx(const bitnet_context *ctx);
/** The model this context was created on. */
BITNET_API const bitnet_model *bitnet_context_model(const bitnet_context *ctx);

/** Forget every token at position >= pos; when pos is before the current
 *  position the last eval's logits are dropped too. @return BITNET_OK;
 *  BITNET_E_INVALID_ARG (pos < 0 or pos > current position). */
BITNET_API int bitnet_context_rewind(bitnet_context *ctx, int32_t pos);
/** Forget everything (position 0). NULL is ignored. */
BITNET_API void bitnet_context_reset(bitnet_context *ctx);

/**
 * Evaluate several sequences in one pass over the weights: ctxs[i] (each
 * with its own KV cache and position) gets tokens[i][0 .. n_tokens[i]).
 * The tokens of all sequences go through each weight matrix together, so
 * N sequences that each decode one token cost little more than one.
 * Prompt tokens of some sequences and single tokens of others may be mixed.
 * Each context ends exactly (bit for bit) as if bitnet_context_eval(ctxs[i],
 * tokens[i], n_tokens[i], flags) had been called alone, whatever the other
 * sequences, their number, the thread count and n_batch.
 *
 * The work runs on ctxs[0]'s threads and scratch (in steps of at most its
 * n_batch tokens). All contexts must be on one model and created with the
 * same cpu_mask and head flags (BITNET_CONTEXT_INT8_HEAD); n_ctx, n_batch
 * and n_threads may differ. Each context's abort callback is polled; if one
 * asks to stop, no context changes.
 *
 * Thread safety: no context may appear twice in a call, and no other call
 * may use any of the contexts while this one runs; other contexts of the
 * same model may be used from other threads at the same time.
 *
 * @return BITNET_OK; BITNET_E_INVALID_ARG (NULL arrays or entries, n_seq 0,
 *         a context twice, contexts on different models or with different
 *         cpu_mask/head flags, an n_tokens[i] of 0, a token id outside the
 *         vocabulary, unknown flags); BITNET_E_CONTEXT_FULL (some sequence
 *         would pass its n_ctx); BITNET_E_ABORTED; BITNET_E_NOMEM. On any
 *         failure no context is changed (nothing is evaluated).
 */
BITNET_API int bitnet_context_eval_multi(bitnet_context *const *ctxs,
                                         const int32_t *const *tokens,
                                         const size_t *n_tokens, size_t n_seq,
                                         uint32_t flags);

/**
 * Prefix reuse: rewind ctx to the longest common prefix of the tokens in
 * its cache and tokens[0 .. n_tokens), but at most n_tokens - 1 tokens, so
 * that evaluating tokens[kept ..] (at least one token) yields the logits of
 * the whole prompt. A context tracks the token ids of its cache through
 * eval, eval_multi, rewind, copy and state blobs (a version 1 blob's ids are
 * unknown and never match).
 * @return the number of tokens kept (the new position); 0 when ctx is NULL
 *         (error set) or when tokens is NULL (error set, ctx rewound to 0).
 *         Same thread-safety as bitnet_context_rewind().
 */
BITNET_API size_t bitnet_context_keep_prefix(bitnet_context *ctx, const int32_t *tokens,
                                             size_t n_tokens);

/**
 * Fork a sequence: dst gets src's KV cache, position, token ids and the
 * logits of src's last token (as after a state save/load). dst must be on
 * the same model with n_ctx >= src's position; other parameters may differ.
 * src is not changed. Neither context may be in use by another thread.
 * @return BITNET_OK; BITNET_E_INVALID_ARG (NULL, dst == src, different
 *         models); BITNET_E_CONTEXT_FULL (src's position > dst's n_ctx).
 *         On failure dst is unchanged.
 */
BITNET_API int bitnet_context_copy(bitnet_context *dst, const bitnet_context *src);

/** Bytes needed by bitnet_context_state_save() now; 0 if ctx is NULL. */
BITNET_API size_t bitnet_context_state_size(const bitnet_context *ctx);
/** Save the position, KV cache and last logits into a versioned blob.
 *  @return BITNET_OK; BITNET_E_INVALID_ARG; BITNET_E_BUFFER_TOO_SMALL. */
BITNET_API int bitnet_context_state_save(const bitnet_context *ctx, void *buf,
                                         size_t cap, size_t *n_out);
/** Restore a blob saved from a context on the same model.
 *  @return BITNET_OK; BITNET_E_INVALID_ARG; BITNET_E_STATE (other model,
 *          other version, or larger than this context's n_ctx);
 *          BITNET_E_FORMAT (truncated or corrupt). On failure the context is
 *          unchanged. */
BITNET_API int bitnet_context_state_load(bitnet_context *ctx, const void *buf,
                                         size_t size);

/* ------------------------------------------------------------------------ */
/* Sampler                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct bitnet_logit_bias {
    int32_t token;
    float bias;              /**< added to the logit; finite, or -INFINITY
                                  to ban the token                          */
} bitnet_logit_bias;

/**
 * Sampling parameters. The chain is applied in this order: logit bias,
 * repetition/frequency/presence penalties over the last penalty_last_n
 * accepted tokens, the grammar mask (when a grammar is given), top-k,
 * top-p, min-p, temperature, seeded draw.
 * temperature <= 0 is greedy (argmax after bias and penalties, ties to the
 * lowest id). Penalties, for each token seen c > 0 times in the window:
 * a logit l > 0 becomes l / repeat_penalty, otherwise l * repeat_penalty;
 * then c * frequency_penalty + presence_penalty is subtracted. top-p and
 * min-p use probabilities at temperature 1 over the tokens still in the set.
 * Same seed and same logits give the same token on every platform.
 * See docs/sampling.md.
 */
typedef struct bitnet_sampler_params {
    uint32_t struct_size;
    uint32_t reserved0;      /**< must be 0                                   */
    uint64_t seed;           /**< PRNG seed; default 0                         */
    float temperature;       /**< finite; default 0.8; <= 0 = greedy           */
    int32_t top_k;           /**< >= 0; 0 = off; default 40                    */
    float top_p;             /**< (0, 1]; 1 = off; default 0.95                */
    float min_p;             /**< [0, 1]; 0 = off; default 0.05                */
    float repeat_penalty;    /**< > 0, finite; 1 = off; default 1.0            */
    float frequency_penalty; /**< finite; 0 = off; default 0                   */
    float presence_penalty;  /**< finite; 0 = off; default 0                   */
    int32_t penalty_last_n;  /**< [0, 16777216] tokens of history; 0 = off;
                                  default 64                                   */
    const bitnet_logit_bias *logit_bias; /**< copied at create; may be NULL    */
    size_t n_logit_bias;
    /** GBNF grammar text (NUL-terminated UTF-8) constraining the output, or
     *  NULL for none (default). Compiled at create (the text is not kept):
     *  only tokens whose bytes keep the text inside the grammar can be
     *  sampled, and end-of-generation tokens only where the grammar may
     *  end. See docs/sampling.md. */
    const char *grammar;
    /** Name of the start rule; NULL (default) means "root". */
    const char *grammar_root;
} bitnet_sampler_params;

BITNET_API void bitnet_sampler_params_init_(bitnet_sampler_params *p, size_t size);
#define bitnet_sampler_params_init(p) bitnet_sampler_params_init_((p), sizeof(*(p)))

/** Create a sampler for a model's vocabulary. @return BITNET_OK;
 *  BITNET_E_INVALID_ARG (NULLs or a parameter out of range, a bias token
 *  outside the vocabulary); BITNET_E_GRAMMAR (the grammar does not parse, or
 *  refers to an undefined rule, has no start rule, is left-recursive or has
 *  a rule that can never match: the message gives line and column);
 *  BITNET_E_UNSUPPORTED; BITNET_E_NOMEM. */
BITNET_API int bitnet_sampler_create(bitnet_sampler **out,
                                     const bitnet_model *model,
                                     const bitnet_sampler_params *params);
/** Free. NULL is ignored. */
BITNET_API void bitnet_sampler_free(bitnet_sampler *s);
/** Clear the penalty history, re-seed the PRNG with the original seed and
 *  put the grammar (if any) back at its start. */
BITNET_API void bitnet_sampler_reset(bitnet_sampler *s);

/** Sample from the logits of token i (-1: last) of ctx's last eval.
 *  Does not accept the token. @return as bitnet_context_logits(), and
 *  BITNET_E_INVALID_ARG when ctx's model has another vocabulary size, a
 *  logit is NaN or +inf, or every token is banned (-inf);
 *  BITNET_E_GRAMMAR when the grammar allows no token (for example after an
 *  end-of-generation token was accepted). */
BITNET_API int bitnet_sampler_sample(bitnet_sampler *s,
                                     const bitnet_context *ctx, int32_t i,
                                     int32_t *out_token);
/** Sample from caller logits (n_logits must equal the vocabulary size;
 *  values finite or -inf). Each non-greedy call uses one PRNG draw.
 *  @return BITNET_OK; BITNET_E_INVALID_ARG (NULLs, wrong n_logits, NaN or
 *  +inf logits, every token -inf); BITNET_E_GRAMMAR (the grammar allows no
 *  token). *out_token is -1 on failure. */
BITNET_API int bitnet_sampler_sample_logits(bitnet_sampler *s,
                                            const float *logits,
                                            size_t n_logits,
                                            int32_t *out_token);
/** Record a token in the penalty history and advance the grammar (if any)
 *  over its bytes. With a grammar, accept only the generated tokens, not
 *  the prompt. @return BITNET_OK; BITNET_E_INVALID_ARG (id outside the
 *  vocabulary); BITNET_E_GRAMMAR (the grammar does not allow the token
 *  here; nothing is recorded); BITNET_E_NOMEM. */
BITNET_API int bitnet_sampler_accept(bitnet_sampler *s, int32_t token);

/**
 * Convert a JSON Schema into GBNF grammar text for
 * bitnet_sampler_params.grammar (start rule "root"), so the output is JSON
 * that validates against the schema. Supported: type (object, array,
 * string, number, integer, boolean, null, or a list of them), properties,
 * required, additionalProperties, items, minItems, maxItems, enum, const,
 * anyOf, oneOf, local $ref with $defs/definitions, minLength, maxLength and
 * format date, time, date-time, uuid; annotations (title, description, ...)
 * are ignored. The schema {} (or true) gives a grammar for any JSON value,
 * {"type": "object"} one for any JSON object. See docs/sampling.md for what
 * the grammar allows exactly.
 *
 * @param schema NUL-terminated JSON text
 * @param buf    receives the NUL-terminated grammar; may be NULL if cap is 0
 * @param n_out  receives the grammar's length without the NUL
 * @return BITNET_OK; BITNET_E_INVALID_ARG (NULLs); BITNET_E_FORMAT (not
 *         JSON, or a malformed schema); BITNET_E_UNSUPPORTED (a keyword or
 *         value not supported, named in the message; or a library built
 *         without JSON support); BITNET_E_GRAMMAR (the schema gives a grammar
 *         that cannot be used, e.g. one that only refers to itself);
 *         BITNET_E_BUFFER_TOO_SMALL (*n_out + 1 bytes are needed);
 *         BITNET_E_NOMEM.
 * Thread-safe.
 */
BITNET_API int bitnet_json_schema_to_grammar(const char *schema, char *buf,
                                             size_t cap, size_t *n_out);

/* ------------------------------------------------------------------------ */
/* Chat templates                                                           */
/* ------------------------------------------------------------------------ */

typedef struct bitnet_chat_message {
    const char *role;        /**< "system", "user" or "assistant" (NUL-terminated) */
    const char *content;     /**< NUL-terminated UTF-8                        */
} bitnet_chat_message;

/**
 * Render a conversation as prompt text (the text carries BOS for the
 * formats that use one, "bitnet" and "llama3"). Message content is inserted
 * as given (not trimmed), so special-token text in it is indistinguishable
 * from the template's: to evaluate a conversation use bitnet_chat_tokenize(),
 * which keeps content plain. Tokenizing this text with
 * BITNET_TOKENIZE_PARSE_SPECIAL (without ADD_BOS) gives the same ids only
 * when every message is trusted.
 *
 *  - "bitnet" (2B4T training format): <|begin_of_text|>, then
 *    "Role: content<|eot_id|>" per message (Role System, User, Assistant),
 *    then "Assistant: ".
 *  - "llama3": <|begin_of_text|>, then per message
 *    "<|start_header_id|>role<|end_header_id|>

content<|eot_id|>", then
 *    the assistant header.
 *  - "falcon3": "<|role|>
content
" per message, then "<|assistant|>
".
 *  - "chatml": "<|im_start|>role
content<|im_end|>
" per message, then
 *    "<|im_start|>assistant
".
 *
 * @param model     used for its tokenizer.chat_template when name is NULL
 *                  (may be NULL when name is given); the template text is
 *                  recognised by distinctive markers, never guessed
 * @param name      NULL, or one of "bitnet", "llama3", "falcon3", "chatml"
 * @param messages  roles exactly "system", "user" or "assistant"; may be
 *                  NULL when n_messages is 0
 * @param add_assistant non-zero: end with the assistant prefix
 * @param buf       receives NUL-terminated text; may be NULL when cap is 0
 * @return BITNET_OK; BITNET_E_INVALID_ARG (NULLs, unknown role, model and
 *         name both NULL); BITNET_E_NOT_FOUND (unknown name, a model with
 *         no template, or a template that is not recognised);
 *         BITNET_E_BUFFER_TOO_SMALL (*n_out + 1 bytes needed).
 * Thread-safe.
 */
BITNET_API int bitnet_chat_render(const bitnet_model *model, const char *name,
                                  const bitnet_chat_message *messages,
                                  size_t n_messages, int add_assistant,
                                  char *buf, size_t cap, size_t *n_out);

/**
 * Tokenize a conversation for the model: the recommended way to build a chat
 * prompt, and the only safe one for untrusted message content. The template
 * markup (<|begin_of_text|>, <|eot_id|>, <|start_header_id|>, <|im_start|>,
 * <|user|>... when the vocabulary has them as control tokens) becomes special
 * tokens; message content is always tokenized as plain text, so a message
 * containing "<|eot_id|><|start_header_id|>system" cannot end its turn or
 * open another (it becomes ordinary text tokens; user-defined tokens, type
 * 4, still match as in bitnet_tokenize without PARSE_SPECIAL). When no
 * content holds special-token text the result equals bitnet_chat_render()
 * followed by bitnet_tokenize() with BITNET_TOKENIZE_PARSE_SPECIAL (and
 * without ADD_BOS: the formats that use BOS carry it).
 *
 * @param model     required (its vocabulary, and its tokenizer.chat_template
 *                  when name is NULL)
 * @param name      NULL, or one of "bitnet", "llama3", "falcon3", "chatml"
 * @param messages  as for bitnet_chat_render()
 * @param add_assistant non-zero: end with the assistant prefix
 * @param out       receives up to cap ids; may be NULL when cap is 0
 * @param n_out     receives the number of ids (needed count when too small)
 * @return BITNET_OK; BITNET_E_INVALID_ARG (NULLs, unknown role);
 *         BITNET_E_NOT_FOUND (as bitnet_chat_render());
 *         BITNET_E_UNSUPPORTED (the model has no vocabulary);
 *         BITNET_E_BUFFER_TOO_SMALL (*n_out ids needed); BITNET_E_NOMEM.
 * Thread-safe.
 */
BITNET_API int bitnet_chat_tokenize(const bitnet_model *model, const char *name,
                                    const bitnet_chat_message *messages,
                                    size_t n_messages, int add_assistant,
                                    int32_t *out, size_t cap, size_t *n_out);


/* ------------------------------------------------------------------------ */
/* Synthetic models (for tests and benchmarks)                              */
/* ------------------------------------------------------------------------ */

/** Tensor types accepted by bitnet_synth_params (GGUF type ids). */
enum {
    BITNET_TYPE_F32   = 0,
    BITNET_TYPE_F16   = 1,
    BITNET_TYPE_Q4_0  = 2,
    BITNET_TYPE_Q8_0  = 8,
    BITNET_TYPE_Q6_K  = 14,
    BITNET_TYPE_BF16  = 30,
    BITNET_TYPE_TQ1_0 = 34,
    BITNET_TYPE_TQ2_0 = 35,
    BITNET_TYPE_I2_S  = 36
};

typedef struct bitnet_synth_params {
    uint32_t struct_size;
    uint32_t reserved0;       /**< must be 0                                  */
    const char *arch;         /**< "bitnet-b1.58" (default), "bitnet-25",
                                   "bitnet" or "llama"                         */
    int32_t n_embd;           /**< default 256                                */
    int32_t n_layer;          /**< default 2                                  */
    int32_t n_ff;             /**< default 768                                */
    int32_t n_head;           /**< default 4                                  */
    int32_t n_head_kv;        /**< default 2                                  */
    int32_t n_vocab;          /**< generated byte-level vocabulary size when
                                   vocab_from is NULL; >= 259; default 512     */
    int32_t n_ctx_train;      /**< default 4096                               */
    int32_t weight_type;      /**< linear weights: I2_S (default), TQ2_0,
                                   TQ1_0, F16 or F32                           */
    int32_t embd_type;        /**< token embedding: F16 (default), F32, BF16,
                                   Q8_0, Q4_0 or Q6_K                           */
    uint64_t seed;            /**< default 1                                  */
    const char *vocab_from;   /**< copy tokenizer.* keys from this GGUF file;
                                   n_vocab then comes from it. NULL: generate   */
    float rope_freq_base;     /**< default 500000                             */
} bitnet_synth_params;

BITNET_API void bitnet_synth_params_init_(bitnet_synth_params *p, size_t size);
#define bitnet_synth_params_init(p) bitnet_synth_params_init_((p), sizeof(*(p)))

/**
 * Write a GGUF model with random ternary linear weights (seeded; one scale
 * per tensor), random norm weights and a random embedding, in the layout the
 * official engines use (same keys, tensor names and 32-byte alignment).
 * A regular file (or a new path) is written to a temporary file in the same
 * directory that replaces `path` only once complete: on failure an existing
 * file is left as it was and only the temporary file is removed. A path that
 * is not a regular file (a device, a pipe) is written directly and is never
 * removed.
 * @return BITNET_OK; BITNET_E_INVALID_ARG (inconsistent shape: n_embd not a
 *         multiple of n_head, n_head not a multiple of n_head_kv, a type not
 *         allowed for its tensor, a block type whose block size does not
 *         divide the row length); BITNET_E_IO; BITNET_E_FORMAT (vocab_from
 *         unreadable); BITNET_E_NOMEM.
 */
BITNET_API int bitnet_synth_write(const char *path, const bitnet_synth_params *params);

/* ------------------------------------------------------------------------ */
/* Conversion                                                               */
/* ------------------------------------------------------------------------ */

typedef struct bitnet_convert_params {
    uint32_t struct_size;     /**< set by bitnet_convert_params_init         */
    int32_t weight_type;      /**< linear weights: BITNET_TYPE_I2_S (default,
                                   bitnet.cpp), TQ2_0, TQ1_0 (llama.cpp) or
                                   F16                                        */
    int32_t embd_type;        /**< token embedding and output head:
                                   BITNET_TYPE_F16 (default), Q8_0, Q6_K or
                                   Q4_0                                       */
    uint32_t reserved0;       /**< must be 0                                  */
    bitnet_log_fn log_fn;     /**< NULL: silent                               */
    void *log_user;           /**< passed to log_fn                           */
    int32_t log_level;        /**< default WARN                               */
    bitnet_progress_fn progress_fn; /**< NULL: none; non-zero return cancels */
    void *progress_user;      /**< passed to progress_fn                      */
} bitnet_convert_params;

BITNET_API void bitnet_convert_params_init_(bitnet_convert_params *p, size_t size);
#define bitnet_convert_params_init(p) bitnet_convert_params_init_((p), sizeof(*(p)))

/**
 * Convert a model (anything bitnet_model_load_file() reads: a Hugging Face
 * checkpoint or a GGUF file) to a GGUF file: linear weights ternarised (as
 * the loader does) and stored as weight_type, embedding and output head as
 * embd_type, norms as F32, every metadata key copied (general.file_type
 * set to match). The tensors are streamed: memory stays near one tensor.
 * I2_S output is what bitnet.cpp loads, TQ1_0/TQ2_0 what llama.cpp loads.
 * @param input  path of the model to read
 * @param output path of the GGUF file to write (replaced)
 * @param params NULL for defaults
 * @return BITNET_OK; BITNET_E_INVALID_ARG (NULL path, a type not allowed
 *         for its tensor, or a row length the type's block does not divide:
 *         the message names the tensor); the load errors of
 *         bitnet_model_load_file() for the input; BITNET_E_IO (output);
 *         BITNET_E_NOMEM; BITNET_E_ABORTED. A failure after writing began
 *         removes the partial output. Thread-safe (no shared state).
 */
BITNET_API int bitnet_convert(const char *input, const char *output,
                              const bitnet_convert_params *params);

#ifdef __cplusplus
}
#endif

#endif /* BITNET_H */
