/*
 * GGUF v2/v3 reader. Works on a byte buffer only (no I/O), so it is the
 * fuzz target. Every length, count, offset and size is checked against the
 * bytes that are actually present before it is used, and no allocation is
 * sized by a count that was not first bounded by the remaining bytes.
 *
 * Layout facts: ../shared/docs/format.md §1. Multi-byte values are read
 * with memcpy (the buffer may be unaligned); the host is little-endian.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/internal.h"
#include "format/gguf.h"

#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_DIMS 4u

/* How much of a name goes into a message. */
#define NAME_FMT "%.*s"
#define NAME_ARG(s) (int)((s).len > 96 ? 96 : (s).len), (s).ptr

/* ---- cursor ---------------------------------------------------------- */

typedef struct cursor {
    const uint8_t *p;
    size_t size, off;
} cursor;

static size_t cur_left(const cursor *c)
{
    return c->size - c->off;
}

static int rd_u32(cursor *c, uint32_t *v)
{
    if (cur_left(c) < 4) return -1;
    memcpy(v, c->p + c->off, 4);
    c->off += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v)
{
    if (cur_left(c) < 8) return -1;
    memcpy(v, c->p + c->off, 8);
    c->off += 8;
    return 0;
}

static int rd_str(cursor *c, bitnet_gguf_str *s)
{
    uint64_t len;
    if (rd_u64(c, &len)) return -1;
    if (len > cur_left(c)) return -2;
    s->ptr = (const char *)(c->p + c->off);
    s->len = len;
    c->off += (size_t)len;
    return 0;
}

static int str_eq(bitnet_gguf_str a, const char *p, size_t n)
{
    return a.len == n && (n == 0 || memcmp(a.ptr, p, n) == 0);
}

/* Build an index of n names. Returns 0, -1 on NOMEM, or the 1-based index
 * of the first duplicate name found. */
static int64_t build_index(uint32_t **out, uint32_t *mask_out,
                           const void *items, size_t stride, size_t name_off,
                           uint64_t n)
{
    uint64_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    uint32_t *slots = calloc((size_t)cap, sizeof(*slots));
    if (!slots) return -1;
    uint32_t mask = (uint32_t)(cap - 1);
    for (uint64_t i = 0; i < n; i++) {
        const bitnet_gguf_str *s = (const bitnet_gguf_str *)
            ((const uint8_t *)items + i * stride + name_off);
        uint32_t h = bitnet__hash_bytes(s->ptr, (size_t)s->len) & mask;
        for (;;) {
            uint32_t e = slots[h];
            if (!e) {
                slots[h] = (uint32_t)(i + 1);
                break;
            }
            const bitnet_gguf_str *o = (const bitnet_gguf_str *)
                ((const uint8_t *)items + (e - 1) * stride + name_off);
            if (str_eq(*o, s->ptr, (size_t)s->len)) {
                free(slots);
                return (int64_t)(i + 1);
            }
            h = (h + 1) & mask;
        }
    }
    *out = slots;
    *mask_out = mask;
    return 0;
}

static int64_t index_find(const uint32_t *slots, uint32_t mask,
                          const void *items, size_t stride, size_t name_off,
                          const char *name)
{
    if (!slots || !name) return -1;
    size_t n = strlen(name);
    uint32_t h = bitnet__hash_bytes(name, n) & mask;
    for (;;) {
        uint32_t e = slots[h];
        if (!e) return -1;
        const bitnet_gguf_str *o = (const bitnet_gguf_str *)
            ((const uint8_t *)items + (e - 1) * stride + name_off);
        if (str_eq(*o, name, n)) return (int64_t)e - 1;
        h = (h + 1) & mask;
    }
}

/* ---- parser ---------------------------------------------------------- */

void bitnet__gguf_free(bitnet_gguf *g)
{
    if (!g) return;
    free(g->kv);
    free(g->tensors);
    free(g->kv_index);
    free(g->tensor_index);
    if (g->hooks && g->hooks->free)
        g->hooks->free(g->hooks_user);
    free(g);
}

int bitnet__gguf_build(bitnet_gguf **out, const uint8_t *kvbuf, size_t kvsize,
                       bitnet_gguf_tensor *tensors, uint64_t n,
                       const bitnet_gguf_hooks *hooks, void *user)
{
    bitnet_gguf *g;
    *out = NULL;
    int rc = bitnet__gguf_parse(&g, kvbuf, kvsize);
    if (rc) {
        free(tensors);
        return rc;
    }
    if (g->n_tensors) {
        bitnet__gguf_free(g);
        free(tensors);
        return bitnet__error(BITNET_E_INTERNAL, "GGUF build: the key image "
                             "has tensors");
    }
    free(g->tensors);
    free(g->tensor_index);          /* the empty index of the key image */
    g->tensor_index = NULL;
    g->tensors = tensors;
    g->n_tensors = n;
    int64_t dup = build_index(&g->tensor_index, &g->tensor_mask, g->tensors,
                              sizeof(*g->tensors),
                              offsetof(bitnet_gguf_tensor, name), n);
    if (dup != 0) {
        rc = dup < 0 ? bitnet__error(BITNET_E_NOMEM, "GGUF: out of memory")
                     : bitnet__error(BITNET_E_FORMAT, "duplicate tensor name '"
                                     NAME_FMT "'", NAME_ARG(tensors[dup - 1].name));
        bitnet__gguf_free(g);
        return rc;
    }
    g->hooks = hooks;
    g->hooks_user = user;
    *out = g;
    return BITNET_OK;
}

int bitnet__gguf_tensor_acquire(const bitnet_gguf *g, const bitnet_gguf_tensor *t,
                                bitnet_gguf_tensor *view)
{
    *view = *t;
    if (g->hooks && g->hooks->acquire)
        return g->hooks->acquire(g->hooks_user, t, view);
    return BITNET_OK;
}

void bitnet__gguf_tensor_release(const bitnet_gguf *g, const bitnet_gguf_tensor *t)
{
    if (g->hooks && g->hooks->release)
        g->hooks->release(g->hooks_user, t);
}

static int fail_trunc(const char *what, size_t off)
{
    return bitnet__error(BITNET_E_FORMAT, "GGUF truncated: %s at byte %zu "
                         "goes past the end of the data", what, off);
}

static int parse_kv(cursor *c, bitnet_gguf_kv *kv, uint64_t idx)
{
    size_t start = c->off;
    int r = rd_str(c, &kv->key);
    if (r == -1) return fail_trunc("key length", start);
    if (r == -2)
        return bitnet__error(BITNET_E_FORMAT, "GGUF key %" PRIu64 ": length "
                             "at byte %zu exceeds the file", idx, start);
    if (kv->key.len == 0)
        return bitnet__error(BITNET_E_FORMAT, "GGUF key %" PRIu64 " at byte "
                             "%zu has an empty name", idx, start);
    if (rd_u32(c, &kv->type))
        return bitnet__error(BITNET_E_FORMAT, "GGUF truncated: type of key '"
                             NAME_FMT "'", NAME_ARG(kv->key));
    kv->arr_type = 0;
    kv->arr_n = 0;
    size_t vstart = c->off;
    if (kv->type == GGUF_VT_STR) {
        bitnet_gguf_str s;
        if (rd_str(c, &s))
            return bitnet__error(BITNET_E_FORMAT, "key '" NAME_FMT "': string "
                                 "value exceeds the file", NAME_ARG(kv->key));
    } else if (kv->type == GGUF_VT_ARR) {
        uint32_t et;
        uint64_t n;
        if (rd_u32(c, &et) || rd_u64(c, &n))
            return bitnet__error(BITNET_E_FORMAT, "GGUF truncated: array "
                                 "header of key '" NAME_FMT "'",
                                 NAME_ARG(kv->key));
        if (et == GGUF_VT_ARR)
            return bitnet__error(BITNET_E_FORMAT, "key '" NAME_FMT "': nested "
                                 "arrays are not allowed", NAME_ARG(kv->key));
        kv->arr_type = et;
        kv->arr_n = n;
        vstart = c->off;
        if (et == GGUF_VT_STR) {
            if (n > cur_left(c) / 8)
                return bitnet__error(BITNET_E_FORMAT, "key '" NAME_FMT "': "
                                     "array of %" PRIu64 " strings exceeds the "
                                     "file", NAME_ARG(kv->key), n);
            for (uint64_t i = 0; i < n; i++) {
                bitnet_gguf_str s;
                if (rd_str(c, &s))
                    return bitnet__error(BITNET_E_FORMAT, "key '" NAME_FMT
                                         "': string %" PRIu64 " exceeds the "
                                         "file", NAME_ARG(kv->key), i);
            }
        } else {
            size_t es = bitnet__vtype_size(et);
            if (!es)
                return bitnet__error(BITNET_E_FORMAT, "key '" NAME_FMT "': "
                                     "unknown array element type %u",
                                     NAME_ARG(kv->key), et);
            if (n > cur_left(c) / es)
                return bitnet__error(BITNET_E_FORMAT, "key '" NAME_FMT "': "
                                     "array of %" PRIu64 " elements exceeds the "
                                     "file", NAME_ARG(kv->key), n);
            c->off += (size_t)n * es;
        }
    } else {
        size_t es = bitnet__vtype_size(kv->type);
        if (!es)
            return bitnet__error(BITNET_E_FORMAT, "key '" NAME_FMT "': unknown "
                                 "value type %u", NAME_ARG(kv->key), kv->type);
        if (cur_left(c) < es)
            return bitnet__error(BITNET_E_FORMAT, "GGUF truncated: value of "
                                 "key '" NAME_FMT "'", NAME_ARG(kv->key));
        c->off += es;
    }
    kv->value = c->p + vstart;
    kv->value_size = c->off - vstart;
    return BITNET_OK;
}

static int parse_tensor(cursor *c, bitnet_gguf_tensor *t, uint64_t idx)
{
    size_t start = c->off;
    int r = rd_str(c, &t->name);
    if (r == -1) return fail_trunc("tensor name length", start);
    if (r == -2)
        return bitnet__error(BITNET_E_FORMAT, "tensor %" PRIu64 ": name "
                             "length at byte %zu exceeds the file", idx, start);
    if (rd_u32(c, &t->n_dims))
        return bitnet__error(BITNET_E_FORMAT, "GGUF truncated: tensor '"
                             NAME_FMT "'", NAME_ARG(t->name));
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': %u "
                             "dimensions (1 to 4 allowed)", NAME_ARG(t->name),
                             t->n_dims);
    uint64_t n = 1;
    for (uint32_t i = 0; i < GGUF_MAX_DIMS; i++) {
        t->ne[i] = 1;
        if (i >= t->n_dims) continue;
        if (rd_u64(c, &t->ne[i]))
            return bitnet__error(BITNET_E_FORMAT, "GGUF truncated: shape of "
                                 "tensor '" NAME_FMT "'", NAME_ARG(t->name));
        if (t->ne[i] == 0 || t->ne[i] > (uint64_t)INT64_MAX)
            return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': "
                                 "dimension %u is %" PRIu64, NAME_ARG(t->name),
                                 i, t->ne[i]);
        if (n > (uint64_t)INT64_MAX / t->ne[i])
            return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': "
                                 "element count overflows", NAME_ARG(t->name));
        n *= t->ne[i];
    }
    if (rd_u32(c, &t->type) || rd_u64(c, &t->offset))
        return bitnet__error(BITNET_E_FORMAT, "GGUF truncated: tensor '"
                             NAME_FMT "'", NAME_ARG(t->name));
    if (t->type == 39)
        return bitnet__error(BITNET_E_UNSUPPORTED, "tensor '" NAME_FMT "': "
                             "type 39 is ambiguous (TL2 in bitnet.cpp files, "
                             "MXFP4 in llama.cpp files) and neither is "
                             "supported", NAME_ARG(t->name));
    if (!bitnet__ggml_type_known(t->type))
        return bitnet__error(BITNET_E_UNSUPPORTED, "tensor '" NAME_FMT "': "
                             "unsupported tensor type %u", NAME_ARG(t->name),
                             t->type);
    uint64_t rows = n / t->ne[0];
    t->nbytes = bitnet__ggml_nbytes(t->type, t->ne[0], rows);
    if (t->nbytes == 0)
        return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': shape "
                             "[%" PRIu64 ", %" PRIu64 "] does not fit type %s "
                             "(block size) or its size overflows",
                             NAME_ARG(t->name), t->ne[0], rows,
                             bitnet__ggml_type_name(t->type));
    return BITNET_OK;
}

static int cmp_tensor_off(const void *a, const void *b)
{
    const bitnet_gguf_tensor *x = *(const bitnet_gguf_tensor *const *)a;
    const bitnet_gguf_tensor *y = *(const bitnet_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int check_layout(bitnet_gguf *g)
{
    uint64_t data_size = g->size - g->data_offset;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bitnet_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment != 0)
            return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': "
                                 "offset %" PRIu64 " is not a multiple of the "
                                 "alignment %u", NAME_ARG(t->name), t->offset,
                                 g->alignment);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': data "
                                 "[%" PRIu64 ", +%" PRIu64 ") lies outside the "
                                 "data section (%" PRIu64 " bytes)",
                                 NAME_ARG(t->name), t->offset, t->nbytes,
                                 data_size);
    }
    if (g->n_tensors < 2)
        return BITNET_OK;
    const bitnet_gguf_tensor **order = malloc((size_t)g->n_tensors * sizeof(*order));
    if (!order)
        return bitnet__error(BITNET_E_NOMEM, "GGUF: out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++)
        order[i] = &g->tensors[i];
    qsort(order, (size_t)g->n_tensors, sizeof(*order), cmp_tensor_off);
    int rc = BITNET_OK;
    for (uint64_t i = 1; i < g->n_tensors; i++) {
        const bitnet_gguf_tensor *a = order[i - 1], *b = order[i];
        if (a->offset + a->nbytes > b->offset) {
            rc = bitnet__error(BITNET_E_FORMAT, "tensors '" NAME_FMT "' and '"
                               NAME_FMT "' overlap", NAME_ARG(a->name),
                               NAME_ARG(b->name));
            break;
        }
    }
    free(order);
    return rc;
}

int bitnet__gguf_parse(bitnet_gguf **out, const uint8_t *buf, size_t size)
{
    *out = NULL;
    if (!buf || size < 4 || memcmp(buf, "GGUF", 4) != 0)
        return bitnet__error(BITNET_E_FORMAT, "not a GGUF file (bad magic)");
    cursor c = { buf, size, 4 };
    uint32_t version;
    uint64_t n_tensors, n_kv;
    if (rd_u32(&c, &version))
        return fail_trunc("version", c.off);
    if (version == 1)
        return bitnet__error(BITNET_E_UNSUPPORTED, "GGUF version 1 is not "
                             "supported (only 2 and 3)");
    if (version != 2 && version != 3)
        return bitnet__error(BITNET_E_UNSUPPORTED, "GGUF version %u is not "
                             "supported (only 2 and 3)", version);
    if (rd_u64(&c, &n_tensors) || rd_u64(&c, &n_kv))
        return fail_trunc("header counts", c.off);
    /* A kv takes at least 8 (key length) + 1 (key) + 4 (type) + 1 bytes, a
     * tensor info at least 8 + 4 + 8 + 4 + 8. Bound both counts by the
     * bytes left before allocating anything. */
    if (n_kv > cur_left(&c) / 14)
        return bitnet__error(BITNET_E_FORMAT, "GGUF header: %" PRIu64 " keys "
                             "cannot fit in the %zu bytes left", n_kv,
                             cur_left(&c));
    if (n_tensors > cur_left(&c) / 32)
        return bitnet__error(BITNET_E_FORMAT, "GGUF header: %" PRIu64 " "
                             "tensors cannot fit in the %zu bytes left",
                             n_tensors, cur_left(&c));
    if (n_kv >= UINT32_MAX / 4 || n_tensors >= UINT32_MAX / 4)
        return bitnet__error(BITNET_E_FORMAT, "GGUF header: too many entries");

    bitnet_gguf *g = calloc(1, sizeof(*g));
    if (!g)
        return bitnet__error(BITNET_E_NOMEM, "GGUF: out of memory");
    g->version = version;
    g->base = buf;
    g->size = size;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int rc;
    if (n_kv) {
        g->kv = calloc((size_t)n_kv, sizeof(*g->kv));
        if (!g->kv) { rc = bitnet__error(BITNET_E_NOMEM, "GGUF: out of memory"); goto fail; }
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        rc = parse_kv(&c, &g->kv[i], i);
        if (rc) goto fail;
        g->n_kv = i + 1;
    }
    int64_t dup = build_index(&g->kv_index, &g->kv_mask, g->kv, sizeof(*g->kv),
                              offsetof(bitnet_gguf_kv, key), g->n_kv);
    if (dup < 0) { rc = bitnet__error(BITNET_E_NOMEM, "GGUF: out of memory"); goto fail; }
    if (dup > 0) {
        rc = bitnet__error(BITNET_E_FORMAT, "duplicate key '" NAME_FMT "'",
                           NAME_ARG(g->kv[dup - 1].key));
        goto fail;
    }
    const bitnet_gguf_kv *al = bitnet__gguf_find(g, "general.alignment");
    if (al) {
        int64_t a;
        if (bitnet__gguf_get_int(g, "general.alignment", &a) != BITNET_OK ||
            a <= 0 || a > (1 << 30) || (a & (a - 1)) != 0) {
            rc = bitnet__error(BITNET_E_FORMAT, "key 'general.alignment': must "
                               "be a power-of-two integer");
            goto fail;
        }
        g->alignment = (uint32_t)a;
    }
    if (n_tensors > cur_left(&c) / 32) {
        rc = bitnet__error(BITNET_E_FORMAT, "GGUF header: %" PRIu64 " tensors "
                           "cannot fit in the %zu bytes left", n_tensors,
                           cur_left(&c));
        goto fail;
    }
    if (n_tensors) {
        g->tensors = calloc((size_t)n_tensors, sizeof(*g->tensors));
        if (!g->tensors) { rc = bitnet__error(BITNET_E_NOMEM, "GGUF: out of memory"); goto fail; }
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        rc = parse_tensor(&c, &g->tensors[i], i);
        if (rc) goto fail;
        g->n_tensors = i + 1;
    }
    dup = build_index(&g->tensor_index, &g->tensor_mask, g->tensors,
                      sizeof(*g->tensors), offsetof(bitnet_gguf_tensor, name),
                      g->n_tensors);
    if (dup < 0) { rc = bitnet__error(BITNET_E_NOMEM, "GGUF: out of memory"); goto fail; }
    if (dup > 0) {
        rc = bitnet__error(BITNET_E_FORMAT, "duplicate tensor name '" NAME_FMT
                           "'", NAME_ARG(g->tensors[dup - 1].name));
        goto fail;
    }
    /* the data section starts at the next multiple of the alignment */
    uint64_t pad = (g->alignment - c.off % g->alignment) % g->alignment;
    g->data_offset = (uint64_t)c.off + pad;
    if (g->data_offset > size) {
        if (g->n_tensors > 0) {
            rc = bitnet__error(BITNET_E_FORMAT, "GGUF truncated: the data "
                               "section (at byte %" PRIu64 ") is past the end "
                               "of the file (%zu bytes)", g->data_offset, size);
            goto fail;
        }
        g->data_offset = size;
    }
    rc = check_layout(g);
    if (rc) goto fail;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        g->tensors[i].data = buf + g->data_offset + g->tensors[i].offset;
    *out = g;
    return BITNET_OK;
fail:
    bitnet__gguf_free(g);
    return rc;
}

/* ---- lookups and getters --------------------------------------------- */

const bitnet_gguf_kv *bitnet__gguf_find(const bitnet_gguf *g, const char *key)
{
    if (!g) return NULL;
    int64_t i = index_find(g->kv_index, g->kv_mask, g->kv, sizeof(*g->kv),
                           offsetof(bitnet_gguf_kv, key), key);
    return i < 0 ? NULL : &g->kv[i];
}

const bitnet_gguf_tensor *bitnet__gguf_tensor(const bitnet_gguf *g, const char *name)
{
    if (!g) return NULL;
    int64_t i = index_find(g->tensor_index, g->tensor_mask, g->tensors,
                           sizeof(*g->tensors),
                           offsetof(bitnet_gguf_tensor, name), name);
    return i < 0 ? NULL : &g->tensors[i];
}

static int scalar_f64(uint32_t t, const uint8_t *p, double *v)
{
    if (t == GGUF_VT_F32) { float f; memcpy(&f, p, 4); *v = f; return 0; }
    if (t == GGUF_VT_F64) { double d; memcpy(&d, p, 8); *v = d; return 0; }
    int64_t i;
    if (bitnet__value_scalar_i64(t, p, &i)) return -1;
    *v = (double)i;
    return 0;
}

/* The typed getters read the kv's value as a neutral value (format/value.c
 * has the conversions and the messages). */
int bitnet__gguf_get_int(const bitnet_gguf *g, const char *key, int64_t *v)
{
    const bitnet_gguf_kv *kv = bitnet__gguf_find(g, key);
    if (!kv) return BITNET_E_NOT_FOUND;
    bitnet_value val = bitnet__gguf_kv_value(kv);
    return bitnet__value_int(&val, key, v);
}

int bitnet__gguf_get_f32(const bitnet_gguf *g, const char *key, float *v)
{
    const bitnet_gguf_kv *kv = bitnet__gguf_find(g, key);
    if (!kv) return BITNET_E_NOT_FOUND;
    bitnet_value val = bitnet__gguf_kv_value(kv);
    return bitnet__value_f32(&val, key, v);
}

int bitnet__gguf_get_bool(const bitnet_gguf *g, const char *key, int *v)
{
    const bitnet_gguf_kv *kv = bitnet__gguf_find(g, key);
    if (!kv) return BITNET_E_NOT_FOUND;
    int64_t i;
    if (bitnet__value_scalar_i64(kv->type, kv->value, &i) != 0)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': expected a bool, "
                             "found %s", key, bitnet__vtype_name(kv->type));
    *v = i != 0;
    return BITNET_OK;
}

int bitnet__gguf_get_str(const bitnet_gguf *g, const char *key, bitnet_gguf_str *v)
{
    const bitnet_gguf_kv *kv = bitnet__gguf_find(g, key);
    if (!kv) return BITNET_E_NOT_FOUND;
    bitnet_value val = bitnet__gguf_kv_value(kv);
    bitnet_str s;
    int rc = bitnet__value_str(&val, key, &s);
    if (rc) return rc;
    v->ptr = s.ptr;
    v->len = s.len;
    return BITNET_OK;
}

static int arr_check(const bitnet_gguf_kv *kv, uint64_t i)
{
    if (!kv || kv->type != GGUF_VT_ARR)
        return bitnet__error(BITNET_E_FORMAT, "key '" NAME_FMT "': not an array",
                             kv ? (int)(kv->key.len > 96 ? 96 : kv->key.len) : 1,
                             kv ? kv->key.ptr : "?");
    if (i >= kv->arr_n)
        return bitnet__error(BITNET_E_INVALID_ARG, "key '" NAME_FMT "': index "
                             "%" PRIu64 " out of range", NAME_ARG(kv->key), i);
    return BITNET_OK;
}

int bitnet__gguf_arr_str(const bitnet_gguf_kv *kv, uint64_t i, bitnet_gguf_str *v)
{
    int rc = arr_check(kv, i);
    if (rc) return rc;
    if (kv->arr_type != GGUF_VT_STR)
        return bitnet__error(BITNET_E_FORMAT, "key '" NAME_FMT "': not an "
                             "array of strings", NAME_ARG(kv->key));
    /* already validated by the parser: walk without re-checking bounds */
    const uint8_t *p = kv->value;
    for (uint64_t k = 0;; k++) {
        uint64_t len;
        memcpy(&len, p, 8);
        if (k == i) {
            v->ptr = (const char *)p + 8;
            v->len = len;
            return BITNET_OK;
        }
        p += 8 + len;
    }
}

int bitnet__gguf_arr_strs(const bitnet_gguf_kv *kv, bitnet_gguf_str **out)
{
    *out = NULL;
    if (!kv || kv->type != GGUF_VT_ARR || kv->arr_type != GGUF_VT_STR)
        return bitnet__error(BITNET_E_FORMAT, "key '" NAME_FMT "': not an "
                             "array of strings",
                             kv ? (int)(kv->key.len > 96 ? 96 : kv->key.len) : 1,
                             kv ? kv->key.ptr : "?");
    bitnet_gguf_str *s = malloc((size_t)(kv->arr_n ? kv->arr_n : 1) * sizeof(*s));
    if (!s)
        return bitnet__error(BITNET_E_NOMEM, "key '" NAME_FMT "': out of memory",
                             NAME_ARG(kv->key));
    const uint8_t *p = kv->value;
    for (uint64_t k = 0; k < kv->arr_n; k++) {
        uint64_t len;
        memcpy(&len, p, 8);
        s[k].ptr = (const char *)p + 8;
        s[k].len = len;
        p += 8 + len;
    }
    *out = s;
    return BITNET_OK;
}

int bitnet__gguf_arr_f64(const bitnet_gguf_kv *kv, uint64_t i, double *v)
{
    int rc = arr_check(kv, i);
    if (rc) return rc;
    size_t es = bitnet__vtype_size(kv->arr_type);
    if (!es || scalar_f64(kv->arr_type, kv->value + i * es, v) != 0)
        return bitnet__error(BITNET_E_FORMAT, "key '" NAME_FMT "': not a "
                             "numeric array", NAME_ARG(kv->key));
    return BITNET_OK;
}

int bitnet__gguf_arr_i64(const bitnet_gguf_kv *kv, uint64_t i, int64_t *v)
{
    int rc = arr_check(kv, i);
    if (rc) return rc;
    size_t es = bitnet__vtype_size(kv->arr_type);
    int r = es ? bitnet__value_scalar_i64(kv->arr_type, kv->value + i * es, v) : -1;
    if (r == -1)
        return bitnet__error(BITNET_E_FORMAT, "key '" NAME_FMT "': not an "
                             "integer array", NAME_ARG(kv->key));
    if (r == -2)
        return bitnet__error(BITNET_E_FORMAT, "key '" NAME_FMT "': element %"
                             PRIu64 " out of range", NAME_ARG(kv->key), i);
    return BITNET_OK;
}

/* ---- rendering ------------------------------------------------------- */

int bitnet__gguf_render(const bitnet_gguf_kv *kv, char *buf, size_t cap, size_t *n_out)
{
    bitnet_value v = bitnet__gguf_kv_value(kv);
    return bitnet__value_render(&v, buf, cap, n_out);
}
