/*
 * GGUF v2/v3 container: a bounds-checked reader over a byte buffer (mapped
 * file or caller memory) and a writer. No I/O in the reader: it is the fuzz
 * target. See ../shared/docs/format.md §1 and docs/formats.md.
 */
#ifndef BITNET_GGUF_H
#define BITNET_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "base/internal.h"
#include "format/source.h"
#include "format/types.h"

enum bitnet_gguf_vtype {
    GGUF_VT_U8 = 0, GGUF_VT_I8 = 1, GGUF_VT_U16 = 2, GGUF_VT_I16 = 3,
    GGUF_VT_U32 = 4, GGUF_VT_I32 = 5, GGUF_VT_F32 = 6, GGUF_VT_BOOL = 7,
    GGUF_VT_STR = 8, GGUF_VT_ARR = 9, GGUF_VT_U64 = 10, GGUF_VT_I64 = 11,
    GGUF_VT_F64 = 12, GGUF_VT_COUNT
};

typedef struct bitnet_gguf_str {
    const char *ptr;          /* points into the buffer: NOT NUL-terminated */
    uint64_t len;
} bitnet_gguf_str;

typedef struct bitnet_gguf_kv {
    bitnet_gguf_str key;
    uint32_t type;            /* enum bitnet_gguf_vtype */
    uint32_t arr_type;        /* element type when type == GGUF_VT_ARR */
    uint64_t arr_n;           /* element count when type == GGUF_VT_ARR */
    const uint8_t *value;     /* raw little-endian value bytes in the buffer
                                 (for arrays: the first element) */
    uint64_t value_size;      /* bytes of the value (whole array payload) */
} bitnet_gguf_kv;

typedef struct bitnet_gguf_tensor {
    bitnet_gguf_str name;
    uint32_t n_dims;
    uint64_t ne[4];           /* unused dims are 1 */
    uint32_t type;            /* ggml type id */
    uint64_t offset;          /* relative to the data section */
    uint64_t nbytes;          /* computed from type and shape (I2_S: n/4+32) */
    const uint8_t *data;      /* buffer + data_offset + offset */
} bitnet_gguf_tensor;

/* A GGUF built in memory from another format (format/hf.c): some tensors
 * are produced on demand (packed weights decoded, rows reordered), and the
 * files behind the data belong to an owner freed with the gguf. */
typedef struct bitnet_gguf_hooks {
    /* Fill view->data for tensor t (the view is a copy of *t); valid until
     * release(t). */
    int (*acquire)(void *user, const struct bitnet_gguf_tensor *t,
                   struct bitnet_gguf_tensor *view);
    /* t's data (and what acquire made for it) is not needed any more. */
    void (*release)(void *user, const struct bitnet_gguf_tensor *t);
    void (*free)(void *user);
} bitnet_gguf_hooks;

typedef struct bitnet_gguf {
    uint32_t version;
    uint64_t n_kv;
    bitnet_gguf_kv *kv;
    uint64_t n_tensors;
    bitnet_gguf_tensor *tensors;
    uint32_t alignment;
    uint64_t data_offset;     /* start of the data section in the buffer */
    const uint8_t *base;
    size_t size;
    /* open-addressing hash indexes (private to gguf.c) */
    uint32_t *kv_index, *tensor_index;   /* slot -> index + 1, 0 = empty */
    uint32_t kv_mask, tensor_mask;
    const bitnet_gguf_hooks *hooks;    /* NULL for files */
    void *hooks_user;
} bitnet_gguf;

/* Parse a GGUF buffer. Everything is checked against `size` before it is
 * read; no allocation is sized by an unchecked count. The buffer must outlive
 * the returned object. On failure returns BITNET_E_FORMAT or
 * BITNET_E_UNSUPPORTED (or BITNET_E_NOMEM) with a message (bitnet__error)
 * naming the offending key or tensor. */
int bitnet__gguf_parse(bitnet_gguf **out, const uint8_t *buf, size_t size);
void bitnet__gguf_free(bitnet_gguf *g);

/* Build a gguf in memory: the keys come from kvbuf (a tensor-less GGUF
 * image, e.g. from bitnet__gguf_w_buffer), the tensors from `tensors` (n
 * descriptors; names, shapes, types and nbytes set; data may be NULL when
 * hooks->acquire produces it). Takes ownership of `tensors` (free()d) and,
 * on success, of `user` (hooks->free(user) when the gguf is freed; kvbuf
 * must stay valid until then). Duplicate names: BITNET_E_FORMAT. */
int bitnet__gguf_build(bitnet_gguf **out, const uint8_t *kvbuf, size_t kvsize,
                       bitnet_gguf_tensor *tensors, uint64_t n,
                       const bitnet_gguf_hooks *hooks, void *user);
/* A tensor's data for reading: *view = *t with data filled in (by the
 * hooks when the gguf has them). Pair with bitnet__gguf_tensor_release. */
int bitnet__gguf_tensor_acquire(const bitnet_gguf *g, const bitnet_gguf_tensor *t,
                                bitnet_gguf_tensor *view);
void bitnet__gguf_tensor_release(const bitnet_gguf *g, const bitnet_gguf_tensor *t);

/* Lookups (linear or hashed; NULL/-1 when absent). */
const bitnet_gguf_kv *bitnet__gguf_find(const bitnet_gguf *g, const char *key);
const bitnet_gguf_tensor *bitnet__gguf_tensor(const bitnet_gguf *g, const char *name);

/* Typed getters: return BITNET_OK, BITNET_E_NOT_FOUND when absent, or
 * BITNET_E_FORMAT (message names the key) when the type does not fit.
 * get_int accepts any integer or bool type whose value fits in int64. */
int bitnet__gguf_get_int(const bitnet_gguf *g, const char *key, int64_t *v);
int bitnet__gguf_get_f32(const bitnet_gguf *g, const char *key, float *v);   /* F32 or F64 */
int bitnet__gguf_get_bool(const bitnet_gguf *g, const char *key, int *v);
int bitnet__gguf_get_str(const bitnet_gguf *g, const char *key, bitnet_gguf_str *v);
/* Arrays: element i of an array kv. */
int bitnet__gguf_arr_str(const bitnet_gguf_kv *kv, uint64_t i, bitnet_gguf_str *v);
/* Strings of an array of strings are walked sequentially; for random access
 * build an index once with this (returns allocated array of n strings). */
int bitnet__gguf_arr_strs(const bitnet_gguf_kv *kv, bitnet_gguf_str **out);
/* Numeric array element as double / int64 (any numeric element type). */
int bitnet__gguf_arr_f64(const bitnet_gguf_kv *kv, uint64_t i, double *v);
int bitnet__gguf_arr_i64(const bitnet_gguf_kv *kv, uint64_t i, int64_t *v);

/* A kv's value in the neutral form of format/source.h (the encodings are
 * the same: GGUF_VT_* == BITNET_VT_*). */
static inline bitnet_value bitnet__gguf_kv_value(const bitnet_gguf_kv *kv)
{
    bitnet_value v = { kv->type, kv->arr_type, kv->arr_n, kv->value, kv->value_size };
    return v;
}
_Static_assert((int)GGUF_VT_STR == (int)BITNET_VT_STR &&
               (int)GGUF_VT_ARR == (int)BITNET_VT_ARR &&
               (int)GGUF_VT_F64 == (int)BITNET_VT_F64 &&
               (int)GGUF_VT_COUNT == (int)BITNET_VT_COUNT,
               "GGUF value types are the neutral value types");

/* A source over a parsed GGUF buffer (format/gguf_source.c). On success the
 * source owns *view (closed with it; NULL for a caller's buffer, which must
 * outlive the source); on failure *view is closed too. */
int bitnet__gguf_source(bitnet_source **out, const uint8_t *buf, size_t size,
                        bitnet_file_view *view);
/* The parsed file behind a GGUF source, NULL for other sources (tests and
 * tools that want the raw keys). */
const bitnet_gguf *bitnet__gguf_of_source(const bitnet_source *s);
/* A source over a gguf built in memory (bitnet__gguf_build); takes g. */
int bitnet__gguf_source_built(bitnet_source **out, bitnet_gguf *g);
/* The file a GGUF source owns (map_base set when mapped), NULL for others. */
const bitnet_file_view *bitnet__gguf_source_file(const bitnet_source *s);
/* The vocabulary description of a parsed file: the tokenizer.ggml.* keys
 * (what a GGUF source's vocab op gives; for tests and tools). */
void bitnet__gguf_vocab_desc(const bitnet_gguf *g, bitnet_vocab_desc *d);

/* Render a kv's value as text (see bitnet_model_meta in bitnet.h). */
int bitnet__gguf_render(const bitnet_gguf_kv *kv, char *buf, size_t cap, size_t *n_out);

/* ---- writer ---------------------------------------------------------- */

typedef struct bitnet_gguf_writer bitnet_gguf_writer;

/* alignment 0 means 32; any other value is also written as the key
 * general.alignment (first key). */
int bitnet__gguf_writer_create(bitnet_gguf_writer **out, uint32_t alignment);
void bitnet__gguf_writer_free(bitnet_gguf_writer *w);
/* Keys are copied. Values are copied. */
int bitnet__gguf_w_u32(bitnet_gguf_writer *w, const char *key, uint32_t v);
int bitnet__gguf_w_i32(bitnet_gguf_writer *w, const char *key, int32_t v);
int bitnet__gguf_w_f32(bitnet_gguf_writer *w, const char *key, float v);
int bitnet__gguf_w_bool(bitnet_gguf_writer *w, const char *key, int v);
int bitnet__gguf_w_str(bitnet_gguf_writer *w, const char *key, const char *s, size_t len);
/* Copy a kv (any type, arrays included) from a parsed file. */
int bitnet__gguf_w_copy_kv(bitnet_gguf_writer *w, const bitnet_gguf_kv *kv);
/* Raw kv: type, and for arrays element type and count; `value` holds the
 * encoded value bytes exactly as they appear in a file. */
int bitnet__gguf_w_raw(bitnet_gguf_writer *w, const char *key, uint32_t type,
                       uint32_t arr_type, uint64_t arr_n,
                       const void *value, size_t value_size);
/* Tensor data is copied; nbytes must equal bitnet__ggml_nbytes(type,...). */
int bitnet__gguf_w_tensor(bitnet_gguf_writer *w, const char *name,
                          uint32_t n_dims, const uint64_t *ne, uint32_t type,
                          const void *data, size_t nbytes);
/* Serialise (v3) to a file or to a malloc'd buffer. Every tensor must have
 * been given its data. */
int bitnet__gguf_w_file(bitnet_gguf_writer *w, const char *path);
int bitnet__gguf_w_buffer(bitnet_gguf_writer *w, uint8_t **out, size_t *size);

/* Streaming: declare tensors with data == NULL (nbytes ignored), then
 * w_begin writes the header, w_write appends tensor data in declaration
 * order (any chunking; padding between tensors is inserted automatically)
 * and w_end checks that every tensor was written and closes the file. */
int bitnet__gguf_w_begin(bitnet_gguf_writer *w, const char *path);
int bitnet__gguf_w_write(bitnet_gguf_writer *w, const void *data, size_t n);
int bitnet__gguf_w_end(bitnet_gguf_writer *w);

#endif /* BITNET_GGUF_H */
