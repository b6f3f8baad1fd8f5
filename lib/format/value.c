/*
 * Typed reads of source values (format/source.h): one encoding for every
 * source, little-endian bytes read with memcpy (values may be unaligned).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"
#include "format/source.h"

size_t bitnet__vtype_size(uint32_t t)
{
    switch (t) {
    case BITNET_VT_U8: case BITNET_VT_I8: case BITNET_VT_BOOL: return 1;
    case BITNET_VT_U16: case BITNET_VT_I16: return 2;
    case BITNET_VT_U32: case BITNET_VT_I32: case BITNET_VT_F32: return 4;
    case BITNET_VT_U64: case BITNET_VT_I64: case BITNET_VT_F64: return 8;
    default: return 0;
    }
}

const char *bitnet__vtype_name(uint32_t t)
{
    static const char *names[] = { "u8", "i8", "u16", "i16", "u32", "i32",
        "f32", "bool", "string", "array", "u64", "i64", "f64" };
    return t < BITNET_VT_COUNT ? names[t] : "unknown";
}

int bitnet__value_scalar_i64(uint32_t t, const uint8_t *p, int64_t *v)
{
    switch (t) {
    case BITNET_VT_U8: case BITNET_VT_BOOL: *v = p[0]; return 0;
    case BITNET_VT_I8: *v = (int8_t)p[0]; return 0;
    case BITNET_VT_U16: { uint16_t x; memcpy(&x, p, 2); *v = x; return 0; }
    case BITNET_VT_I16: { int16_t x; memcpy(&x, p, 2); *v = x; return 0; }
    case BITNET_VT_U32: { uint32_t x; memcpy(&x, p, 4); *v = x; return 0; }
    case BITNET_VT_I32: { int32_t x; memcpy(&x, p, 4); *v = x; return 0; }
    case BITNET_VT_I64: { int64_t x; memcpy(&x, p, 8); *v = x; return 0; }
    case BITNET_VT_U64: {
        uint64_t x;
        memcpy(&x, p, 8);
        if (x > (uint64_t)INT64_MAX) return -2;
        *v = (int64_t)x;
        return 0;
    }
    default: return -1;
    }
}

int bitnet__value_int(const bitnet_value *v, const char *what, int64_t *out)
{
    size_t sz = bitnet__vtype_size(v->type);
    int r = sz && v->size >= sz ? bitnet__value_scalar_i64(v->type, v->data, out) : -1;
    if (r == -1)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': expected an integer, "
                             "found %s", what, bitnet__vtype_name(v->type));
    if (r == -2)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': value out of range", what);
    return BITNET_OK;
}

int bitnet__value_f32(const bitnet_value *v, const char *what, float *out)
{
    if (v->type == BITNET_VT_F32 && v->size >= 4) {
        memcpy(out, v->data, 4);
        return BITNET_OK;
    }
    if (v->type == BITNET_VT_F64 && v->size >= 8) {
        double d;
        memcpy(&d, v->data, 8);
        *out = (float)d;
        return BITNET_OK;
    }
    return bitnet__error(BITNET_E_FORMAT, "key '%s': expected a float, found %s",
                         what, bitnet__vtype_name(v->type));
}

int bitnet__value_str(const bitnet_value *v, const char *what, bitnet_str *out)
{
    const uint8_t *p = v->data;
    uint64_t left = v->size, n;
    const char *s;
    if (v->type != BITNET_VT_STR || bitnet__value_next_str(&p, &left, &s, &n))
        return bitnet__error(BITNET_E_FORMAT, "key '%s': expected a string, "
                             "found %s", what, bitnet__vtype_name(v->type));
    out->ptr = s;
    out->len = (size_t)n;
    return BITNET_OK;
}

int bitnet__value_arr_i64(const bitnet_value *v, const char *what, uint64_t i,
                          int64_t *out)
{
    if (v->type != BITNET_VT_ARR)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': not an array", what);
    if (i >= v->arr_n)
        return bitnet__error(BITNET_E_INVALID_ARG, "key '%s': index %" PRIu64
                             " out of range", what, i);
    size_t es = bitnet__vtype_size(v->arr_type);
    int r = es && v->size / es > i ?
        bitnet__value_scalar_i64(v->arr_type, v->data + i * es, out) : -1;
    if (r == -1)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': not an integer array",
                             what);
    if (r == -2)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': element %" PRIu64
                             " out of range", what, i);
    return BITNET_OK;
}

/* ---- rendering ------------------------------------------------------- */

typedef struct sbuf {
    char *buf;
    size_t cap, n;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->n < b->cap) {
        size_t room = b->cap - b->n;
        memcpy(b->buf + b->n, s, n < room ? n : room);
    }
    b->n += n;
}

static void sb_scalar(sbuf *b, uint32_t t, const uint8_t *p)
{
    char tmp[64];
    int n = 0;
    if (t == BITNET_VT_BOOL) {
        n = snprintf(tmp, sizeof(tmp), "%s", p[0] ? "true" : "false");
    } else if (t == BITNET_VT_F32) {
        float f;
        memcpy(&f, p, 4);
        n = snprintf(tmp, sizeof(tmp), "%g", (double)f);
    } else if (t == BITNET_VT_F64) {
        double d;
        memcpy(&d, p, 8);
        n = snprintf(tmp, sizeof(tmp), "%.17g", d);
    } else if (t == BITNET_VT_U64) {
        uint64_t u;
        memcpy(&u, p, 8);
        n = snprintf(tmp, sizeof(tmp), "%" PRIu64, u);
    } else {
        int64_t i = 0;
        bitnet__value_scalar_i64(t, p, &i);
        n = snprintf(tmp, sizeof(tmp), "%" PRId64, i);
    }
    if (n > 0) sb_put(b, tmp, (size_t)n);
}

/* Strings and arrays of a value have been bounds-checked by the source
 * that made it (the GGUF parser does so for every kv). */
int bitnet__value_render(const bitnet_value *v, char *buf, size_t cap, size_t *n_out)
{
    sbuf b = { buf, cap ? cap - 1 : 0, 0 };
    if (v->type == BITNET_VT_STR) {
        uint64_t len;
        memcpy(&len, v->data, 8);
        sb_put(&b, (const char *)v->data + 8, (size_t)len);
    } else if (v->type == BITNET_VT_ARR) {
        sb_put(&b, "[", 1);
        const uint8_t *p = v->data;
        size_t es = bitnet__vtype_size(v->arr_type);
        uint64_t shown = v->arr_n < 64 ? v->arr_n : 64;
        for (uint64_t i = 0; i < shown; i++) {
            if (i) sb_put(&b, ", ", 2);
            if (v->arr_type == BITNET_VT_STR) {
                uint64_t len;
                memcpy(&len, p, 8);
                sb_put(&b, (const char *)p + 8, (size_t)len);
                p += 8 + len;
            } else {
                sb_scalar(&b, v->arr_type, p);
                p += es;
            }
        }
        if (v->arr_n > shown) sb_put(&b, ", ...", 5);
        sb_put(&b, "]", 1);
    } else {
        sb_scalar(&b, v->type, v->data);
    }
    if (n_out) *n_out = b.n;
    if (b.n + 1 > cap)
        return BITNET_E_BUFFER_TOO_SMALL;
    buf[b.n] = '\0';
    return BITNET_OK;
}
