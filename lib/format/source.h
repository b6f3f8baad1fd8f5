/*
 * A format-neutral model source: what the model (lib/model) and the
 * vocabulary (lib/text) read, whatever the files are. A source answers
 *
 *   - hyperparameters by a neutral id (enum bitnet_hp), each with the name
 *     the source gives it (for messages: a GGUF key, a config.json field);
 *   - tensors by a canonical name (the GGUF names, "blk.3.attn_q.weight",
 *     "token_embd.weight", ...) and by index, as a bitnet_tensor_desc;
 *   - metadata by key (bitnet_model_meta renders it);
 *   - a vocabulary description (bitnet_vocab_desc).
 *
 * Values (bitnet_value) are typed little-endian bytes in one encoding for
 * every source (it happens to be GGUF's, which covers every scalar type):
 * a scalar is its bytes, a string is a u64 byte count then the bytes (not
 * NUL-terminated), an array is its elements back to back. A source that
 * parses text (JSON) encodes what it found this way into memory it owns.
 *
 * An implementation fills a bitnet_source_ops table and opens with
 * bitnet__source_create; the GGUF one is format/gguf_source.c. Every
 * pointer a source hands out (names, values, tensor data) stays valid until
 * bitnet__source_free. Sources are read-only after opening: any number of
 * threads may read one.
 */
#ifndef BITNET_SOURCE_H
#define BITNET_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "format/types.h"

/* ---- values ----------------------------------------------------------- */

enum bitnet_vtype {
    BITNET_VT_U8 = 0, BITNET_VT_I8 = 1, BITNET_VT_U16 = 2, BITNET_VT_I16 = 3,
    BITNET_VT_U32 = 4, BITNET_VT_I32 = 5, BITNET_VT_F32 = 6, BITNET_VT_BOOL = 7,
    BITNET_VT_STR = 8, BITNET_VT_ARR = 9, BITNET_VT_U64 = 10, BITNET_VT_I64 = 11,
    BITNET_VT_F64 = 12, BITNET_VT_COUNT
};

typedef struct bitnet_str {
    const char *ptr;          /* not NUL-terminated */
    size_t len;
} bitnet_str;

typedef struct bitnet_value {
    uint32_t type;            /* enum bitnet_vtype */
    uint32_t arr_type;        /* element type when type == BITNET_VT_ARR */
    uint64_t arr_n;           /* element count when type == BITNET_VT_ARR */
    const uint8_t *data;      /* the encoded value (arrays: first element) */
    uint64_t size;            /* bytes at data (arrays: the whole payload) */
} bitnet_value;

/* Typed reads of a value; `what` names it in messages (a key). Each returns
 * BITNET_OK or BITNET_E_FORMAT with a message naming `what`.
 * int: any integer or bool type whose value fits in int64.
 * f32: F32 or F64. str: a string (points into the value). */
int bitnet__value_int(const bitnet_value *v, const char *what, int64_t *out);
int bitnet__value_f32(const bitnet_value *v, const char *what, float *out);
int bitnet__value_str(const bitnet_value *v, const char *what, bitnet_str *out);
/* Element i of an array (any integer element type; BITNET_E_INVALID_ARG
 * when i is out of range). */
int bitnet__value_arr_i64(const bitnet_value *v, const char *what, uint64_t i,
                          int64_t *out);
/* Bytes of one element of a fixed-size type (0 for strings and arrays),
 * and the type's name ("u32", "string", ...). */
size_t bitnet__vtype_size(uint32_t type);
const char *bitnet__vtype_name(uint32_t type);
/* Scalar of integer or bool type t at p as int64: 0 ok, -1 not an integer
 * type, -2 does not fit. */
int bitnet__value_scalar_i64(uint32_t t, const uint8_t *p, int64_t *v);
/* Numeric element at p (of fixed-size type t) as double; 0 for others.
 * (Inline, as the next one: the vocabulary calls them per token.) */
static inline double bitnet__value_num_at(const uint8_t *p, uint32_t t)
{
    switch (t) {
    case BITNET_VT_U8: case BITNET_VT_BOOL: return p[0];
    case BITNET_VT_I8: return (int8_t)p[0];
    case BITNET_VT_U16: { uint16_t x; memcpy(&x, p, 2); return x; }
    case BITNET_VT_I16: { int16_t x; memcpy(&x, p, 2); return x; }
    case BITNET_VT_U32: { uint32_t x; memcpy(&x, p, 4); return x; }
    case BITNET_VT_I32: { int32_t x; memcpy(&x, p, 4); return x; }
    case BITNET_VT_F32: { float x; memcpy(&x, p, 4); return x; }
    case BITNET_VT_U64: { uint64_t x; memcpy(&x, p, 8); return (double)x; }
    case BITNET_VT_I64: { int64_t x; memcpy(&x, p, 8); return (double)x; }
    case BITNET_VT_F64: { double x; memcpy(&x, p, 8); return x; }
    default: return 0;
    }
}
/* Walk an array of strings: reads the string at *p (with *left bytes
 * remaining), advances both. 0 ok, -1 when it runs past *left. */
static inline int bitnet__value_next_str(const uint8_t **p, uint64_t *left, const char **s,
                                         uint64_t *n)
{
    if (*left < 8) return -1;
    uint64_t len;
    memcpy(&len, *p, 8);
    if (len > *left - 8) return -1;
    *s = (const char *)*p + 8;
    *n = len;
    *p += 8 + len;
    *left -= 8 + len;
    return 0;
}
/* Render as text, as bitnet_model_meta documents; BITNET_OK or
 * BITNET_E_BUFFER_TOO_SMALL (*n_out: length without the NUL). */
int bitnet__value_render(const bitnet_value *v, char *buf, size_t cap,
                         size_t *n_out);

/* ---- hyperparameters -------------------------------------------------- */

enum bitnet_hp {
    BITNET_HP_ARCH = 0,            /* string: "bitnet-b1.58", "bitnet-25",
                                      "bitnet", "llama" */
    BITNET_HP_CONTEXT_LENGTH,      /* integers ... */
    BITNET_HP_EMBEDDING_LENGTH,
    BITNET_HP_BLOCK_COUNT,
    BITNET_HP_FEED_FORWARD_LENGTH, /* an array of equal values is accepted */
    BITNET_HP_HEAD_COUNT,
    BITNET_HP_HEAD_COUNT_KV,
    BITNET_HP_ROPE_DIMENSION_COUNT,
    BITNET_HP_NORM_RMS_EPS,        /* floats ... */
    BITNET_HP_ROPE_FREQ_BASE,
    BITNET_HP_COUNT
};

/* ---- tensors ---------------------------------------------------------- */

typedef struct bitnet_tensor_desc {
    bitnet_str name;          /* canonical (GGUF) name */
    uint32_t type;            /* enum bitnet_ggml_type */
    uint32_t n_dims;
    uint64_t ne[4];           /* ne[0] is the row length; unused dims are 1 */
    uint64_t nbytes;          /* bitnet__ggml_nbytes of type and shape */
    const uint8_t *data;      /* nbytes bytes, checked to lie in the source */
} bitnet_tensor_desc;

/* ---- vocabulary ------------------------------------------------------- */

/* The fields of a vocabulary, with the meaning of llama.cpp's tokenizer
 * metadata (../shared/docs/format.md §3). Absent fields have present = 0. */
enum bitnet_vf {
    BITNET_VF_MODEL = 0,      /* string: "gpt2" (byte-level BPE), "llama"
                                 (SentencePiece), "none"/"no_vocab" */
    BITNET_VF_TOKENS,         /* array of strings, in id order (BPE: GPT-2
                                 byte-level text; SPM: U+2581 for spaces) */
    BITNET_VF_SCORES,         /* numeric array, one per token */
    BITNET_VF_TOKEN_TYPE,     /* numeric array: 1 normal, 2 unknown,
                                 3 control, 4 user-defined, 5 unused, 6 byte */
    BITNET_VF_MERGES,         /* array of "A B" strings in rank order (BPE) */
    BITNET_VF_BOS, BITNET_VF_EOS, BITNET_VF_EOT, BITNET_VF_EOM,
    BITNET_VF_UNK, BITNET_VF_PAD,        /* integers: token ids */
    BITNET_VF_ADD_BOS, BITNET_VF_ADD_EOS,
    BITNET_VF_ADD_SPACE_PREFIX,          /* bools */
    BITNET_VF_PRE,            /* string: pre-tokenizer name ("llama-bpe",
                                 "gpt-2", "default", ...) */
    BITNET_VF_COUNT
};

typedef struct bitnet_vocab_field {
    int present;
    const char *name;         /* what the source calls it (for messages) */
    bitnet_value v;
} bitnet_vocab_field;

typedef struct bitnet_vocab_desc {
    bitnet_vocab_field f[BITNET_VF_COUNT];
} bitnet_vocab_desc;

/* ---- the source ------------------------------------------------------- */

typedef struct bitnet_source bitnet_source;

typedef struct bitnet_source_ops {
    const char *format;       /* "gguf", ... (for messages) */
    /* Hyperparameter `hp`: BITNET_OK with *v set, or BITNET_E_NOT_FOUND.
     * Either way name[0..cap) receives the NUL-terminated name the source
     * gives it. Other codes (with a message) for a malformed source. */
    int (*hparam)(const bitnet_source *s, int hp, bitnet_value *v,
                  char *name, size_t cap);
    /* Metadata by key (bitnet_model_meta): BITNET_OK or BITNET_E_NOT_FOUND. */
    int (*meta)(const bitnet_source *s, const char *key, bitnet_value *v);
    /* The vocabulary description (fields not present when there is none). */
    int (*vocab)(const bitnet_source *s, bitnet_vocab_desc *d);
    uint64_t (*n_tensors)(const bitnet_source *s);
    /* Tensor i in [0, n_tensors) (the order is the source's and stable). */
    void (*tensor_at)(const bitnet_source *s, uint64_t i, bitnet_tensor_desc *t);
    /* Tensor by canonical name: BITNET_OK or BITNET_E_NOT_FOUND. */
    int (*tensor)(const bitnet_source *s, const char *name, bitnet_tensor_desc *t);
    /* Release impl and everything it owns. */
    void (*close)(void *impl);
    /* Optional (NULL: tensor data is always in place). A source whose
     * tensors are produced on demand (a checkpoint's packed weights) gives
     * them data == NULL; acquire fills view (a copy of *t) with data valid
     * until release(t), which also lets the source drop pages it mapped.
     * Loading and converting acquire one tensor at a time from one thread;
     * one tensor must not be acquired twice at once. */
    int (*acquire)(const bitnet_source *s, const bitnet_tensor_desc *t,
                   bitnet_tensor_desc *view);
    void (*release)(const bitnet_source *s, const bitnet_tensor_desc *t);
    /* Optional: a tensor read in place that will seldom be read again (an
     * embedding whose converted head replaced it) may leave memory; its
     * data stays valid, and reads bring its pages back. */
    void (*drop)(const bitnet_source *s, const bitnet_tensor_desc *t);
    /* Optional: non-zero when [p, p + n) lies in a file mapping whose pages
     * drop can give back (NULL: never). */
    int (*mapped)(const bitnet_source *s, const void *p, size_t n);
} bitnet_source_ops;

struct bitnet_source {
    const bitnet_source_ops *ops;
    void *impl;
};

/* Wrap an implementation (ownership of impl passes to the source; on
 * failure ops->close(impl) is called). BITNET_OK or BITNET_E_NOMEM. */
int bitnet__source_create(bitnet_source **out, const bitnet_source_ops *ops,
                          void *impl);
void bitnet__source_free(bitnet_source *s);

/* Open a model file (GGUF today) mapped (or read when no_mmap), or a
 * caller's buffer (borrowed: it must outlive the source). Errors name the
 * path or the offending key/tensor. */
int bitnet__source_open_file(bitnet_source **out, const char *path, int no_mmap);
int bitnet__source_open_buffer(bitnet_source **out, const void *data, size_t size);

static inline int bitnet__source_hparam(const bitnet_source *s, int hp,
                                        bitnet_value *v, char *name, size_t cap)
{
    return s->ops->hparam(s, hp, v, name, cap);
}
static inline int bitnet__source_meta(const bitnet_source *s, const char *key,
                                      bitnet_value *v)
{
    return s->ops->meta(s, key, v);
}
static inline int bitnet__source_vocab(const bitnet_source *s, bitnet_vocab_desc *d)
{
    return s->ops->vocab(s, d);
}
static inline uint64_t bitnet__source_n_tensors(const bitnet_source *s)
{
    return s->ops->n_tensors(s);
}
static inline void bitnet__source_tensor_at(const bitnet_source *s, uint64_t i,
                                            bitnet_tensor_desc *t)
{
    s->ops->tensor_at(s, i, t);
}
static inline int bitnet__source_tensor(const bitnet_source *s, const char *name,
                                        bitnet_tensor_desc *t)
{
    return s->ops->tensor(s, name, t);
}

/* Tensor data for reading: *view = *t with data filled in. Pair every
 * acquire (successful or not) with a release. */
static inline int bitnet__source_acquire(const bitnet_source *s,
                                         const bitnet_tensor_desc *t,
                                         bitnet_tensor_desc *view)
{
    *view = *t;
    return s->ops->acquire ? s->ops->acquire(s, t, view) : 0;
}
static inline void bitnet__source_release(const bitnet_source *s,
                                          const bitnet_tensor_desc *t)
{
    if (s->ops->release) s->ops->release(s, t);
}
static inline void bitnet__source_drop(const bitnet_source *s, const bitnet_tensor_desc *t)
{
    if (s->ops->drop) s->ops->drop(s, t);
}
static inline int bitnet__source_mapped(const bitnet_source *s, const void *p, size_t n)
{
    return s->ops->mapped ? s->ops->mapped(s, p, n) : 0;
}

#endif /* BITNET_SOURCE_H */
