/*
 * Model loading: GGUF metadata -> hyperparameters, linear weights decoded
 * to ternary values and packed into the kernel layout, norms copied, the
 * embedding/head referenced in place. Also the embedding row lookup and the
 * quantised output heads. Formats: docs/formats.md.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>

#include "base/internal.h"
#include "model/model.h"
#include "text/vocab.h"

#define NAME_FMT "%.*s"
#define NAME_ARG(s) (int)((s).len > 96 ? 96 : (s).len), (s).ptr

/* ====================================================================== */
/* Ternary decoding                                                       */
/* ====================================================================== */

/* fp16 -> fp32 for all 65536 values (256 KiB), built once */
static float fp16_table[65536];
static pthread_once_t fp16_once = PTHREAD_ONCE_INIT;

static void fp16_table_init(void)
{
    for (uint32_t i = 0; i < 65536; i++)
        fp16_table[i] = bitnet__fp16_to_fp32((uint16_t)i);
}

/* Elements of a 1-D view of a float tensor as float. */
static void to_float(uint32_t type, const uint8_t *src, size_t n, float *dst)
{
    if (type == GGML_T_F32) {
        memcpy(dst, src, n * 4);
    } else if (type == GGML_T_F16) {
        pthread_once(&fp16_once, fp16_table_init);
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = fp16_table[h];
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = bitnet__bf16_to_fp32(h);
        }
    }
}

/* The ternarisation rule for float weights: values already {-c, 0, +c} are
 * kept exactly (scale c); otherwise BitNet's absmean rule. */
static int ternarise(const float *w, size_t n, int8_t *t, float *scale,
                     const bitnet_str name)
{
    float c = 0.0f;
    int exact = 1;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(w[i]);
        if (!isfinite(a))
            return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': "
                                 "non-finite weight at element %zu",
                                 NAME_ARG(name), i);
        if (a == 0.0f) continue;
        if (c == 0.0f) c = a;
        else if (a != c) exact = 0;
    }
    if (exact && c > 0.0f) {
        for (size_t i = 0; i < n; i++)
            t[i] = (int8_t)(w[i] > 0.0f ? 1 : w[i] < 0.0f ? -1 : 0);
        *scale = c;
        return BITNET_OK;
    }
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += fabs((double)w[i]);
    double mean = n ? sum / (double)n : 0.0;
    if (mean < 1e-5) mean = 1e-5;
    float s = (float)mean;
    for (size_t i = 0; i < n; i++) {
        float v = nearbyintf(w[i] / s);
        t[i] = (int8_t)(v > 1.0f ? 1 : v < -1.0f ? -1 : (int)v);
    }
    *scale = s;
    return BITNET_OK;
}

/* I2_S: 128-element blocks over the flattened tensor, element j of a block
 * in byte j % 32 at bits 7-2(j/32)..6-2(j/32), code c = t + 1. */
static int decode_i2s(const bitnet_tensor_desc *t, size_t n, int8_t *out,
                      float *scale)
{
    const uint8_t *d = t->data;
    for (size_t b = 0; b < n / 128; b++) {
        const uint8_t *blk = d + 32 * b;
        int8_t *o = out + 128 * b;
        for (int k = 0; k < 32; k++) {
            uint8_t x = blk[k];
            if (x & (x >> 1) & 0x55)
                return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': "
                                     "invalid I2_S code 3 in block %zu",
                                     NAME_ARG(t->name), b);
            o[k] = (int8_t)((x >> 6) - 1);
            o[32 + k] = (int8_t)(((x >> 4) & 3) - 1);
            o[64 + k] = (int8_t)(((x >> 2) & 3) - 1);
            o[96 + k] = (int8_t)((x & 3) - 1);
        }
    }
    float s;
    memcpy(&s, d + n / 4, 4);
    if (!isfinite(s))
        return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': I2_S "
                             "scale is not finite", NAME_ARG(t->name));
    *scale = s;
    return BITNET_OK;
}

static void tq2_block(const uint8_t *b, int8_t *o, int *bad)
{
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 4; l++)
            for (int m = 0; m < 32; m++) {
                int c = (b[32 * h + m] >> (2 * l)) & 3;
                *bad |= c == 3;
                o[128 * h + 32 * l + m] = (int8_t)(c - 1);
            }
}

static int trit(uint8_t byte, int n)
{
    static const uint8_t pow3[5] = { 1, 3, 9, 27, 81 };
    uint8_t q = (uint8_t)(byte * pow3[n]);
    return ((uint16_t)q * 3) >> 8;
}

static void tq1_block(const uint8_t *b, int8_t *o)
{
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 32; m++)
            o[32 * n + m] = (int8_t)(trit(b[m], n) - 1);
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 16; m++)
            o[160 + 16 * n + m] = (int8_t)(trit(b[32 + m], n) - 1);
    for (int n = 0; n < 4; n++)
        for (int j = 0; j < 4; j++)
            o[240 + 4 * n + j] = (int8_t)(trit(b[48 + j], n) - 1);
}

static int decode_tq(const bitnet_tensor_desc *t, size_t n, int8_t *out,
                     float *scale)
{
    const size_t bs = t->type == GGML_T_TQ2_0 ? 66 : 54;
    const size_t nb = n / 256;
    uint16_t d0 = 0;
    int same = 1, any = 0, bad = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = t->data + bs * b;
        uint16_t d;
        memcpy(&d, blk + bs - 2, 2);
        if (t->type == GGML_T_TQ2_0) tq2_block(blk, out + 256 * b, &bad);
        else tq1_block(blk, out + 256 * b);
        float df = bitnet__fp16_to_fp32(d);
        if (!isfinite(df))
            return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': "
                                 "non-finite scale in block %zu",
                                 NAME_ARG(t->name), b);
        if (df == 0.0f) {
            memset(out + 256 * b, 0, 256);
            continue;
        }
        if (!any) { d0 = d; any = 1; }
        else if (d != d0) same = 0;
    }
    if (bad)
        return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': invalid "
                             "TQ2_0 code 3", NAME_ARG(t->name));
    if (same) {
        *scale = any ? bitnet__fp16_to_fp32(d0) : 1e-5f;
        return BITNET_OK;
    }
    /* block scales differ: dequantise and apply the absmean rule */
    float *w = malloc(n * sizeof(float));
    if (!w)
        return bitnet__error(BITNET_E_NOMEM, "tensor '" NAME_FMT "': out of "
                             "memory", NAME_ARG(t->name));
    for (size_t b = 0; b < nb; b++) {
        uint16_t d;
        memcpy(&d, t->data + bs * b + bs - 2, 2);
        float df = bitnet__fp16_to_fp32(d);
        for (size_t i = 0; i < 256; i++)
            w[256 * b + i] = (float)out[256 * b + i] * df;
    }
    int rc = ternarise(w, n, out, scale, t->name);
    free(w);
    return rc;
}

int bitnet__ternary_decode(const bitnet_tensor_desc *t, int8_t *out, float *scale)
{
    size_t n = (size_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    switch (t->type) {
    case GGML_T_I2_S:
        return decode_i2s(t, n, out, scale);
    case GGML_T_TQ1_0:
    case GGML_T_TQ2_0:
        return decode_tq(t, n, out, scale);
    case GGML_T_F32:
    case GGML_T_F16:
    case GGML_T_BF16: {
        float *w = malloc(n * sizeof(float));
        if (!w)
            return bitnet__error(BITNET_E_NOMEM, "tensor '" NAME_FMT "': out "
                                 "of memory", NAME_ARG(t->name));
        to_float(t->type, t->data, n, w);
        int rc = ternarise(w, n, out, scale, t->name);
        free(w);
        return rc;
    }
    default:
        return bitnet__error(BITNET_E_UNSUPPORTED, "tensor '" NAME_FMT "': "
                             "type %s is not supported for linear weights",
                             NAME_ARG(t->name), bitnet__ggml_type_name(t->type));
    }
}

/* ====================================================================== */
/* Packing into the kernel layout                                         */
/* ====================================================================== */

/* kernels.h: rows padded to BITNET_TMAT_GROUP, stored group by group; in a
 * group, for each 128-column block, the 32-byte I2_S blocks of the group's
 * rows in order. A row's 32-byte blocks are therefore placed by this. */
static uint8_t *block_dst(uint8_t *dst, int32_t nb, int32_t row, int32_t b)
{
    size_t g = (size_t)(row / BITNET_TMAT_GROUP), i = (size_t)(row % BITNET_TMAT_GROUP);
    return dst + ((g * (size_t)nb + (size_t)b) * BITNET_TMAT_GROUP + i) * 32;
}

/* Encode one row of t (cols values) as I2_S blocks, padded with code 1. */
static void encode_row(const int8_t *t, int32_t cols, int32_t nb, uint8_t *dst,
                       int32_t row)
{
    for (int32_t b = 0; b < nb; b++) {
        uint8_t blk[32];
        int8_t v[128];
        int32_t c0 = b * 128, k = cols - c0 < 128 ? cols - c0 : 128;
        memcpy(v, t + c0, (size_t)k);
        memset(v + k, 0, (size_t)(128 - k));
        for (int j = 0; j < 32; j++)
            blk[j] = (uint8_t)((v[j] + 1) << 6 | (v[32 + j] + 1) << 4 |
                               (v[64 + j] + 1) << 2 | (v[96 + j] + 1));
        memcpy(block_dst(dst, nb, row, b), blk, 32);
    }
}

static size_t tmat_reserve(int32_t rows, int32_t cols)
{
    return (bitnet__tmat_packed_size(rows, cols) + 63) & ~(size_t)63;
}

/* Take w's packed storage from the model's arena. Every byte is written by
 * the caller except the padding rows of the last group, set here. */
static int tmat_alloc(bitnet_model *m, bitnet_tmat *w, int32_t rows,
                      int32_t cols, const bitnet_str name)
{
    w->rows = rows;
    w->cols = cols;
    w->cols_padded = (cols + BITNET_KPAD - 1) / BITNET_KPAD * BITNET_KPAD;
    w->size = bitnet__tmat_packed_size(rows, cols);
    size_t need = tmat_reserve(rows, cols);
    if (!m->arena || m->arena_size - m->arena_used < need)
        return bitnet__error(BITNET_E_INTERNAL, "tensor '" NAME_FMT "': weight "
                             "arena exhausted", NAME_ARG(name));
    w->data = m->arena + m->arena_used;
    m->arena_used += need;
    size_t group = (size_t)(w->cols_padded / 128) * BITNET_TMAT_GROUP * 32;
    size_t full = (size_t)(rows / BITNET_TMAT_GROUP) * group;
    memset(w->data + full, 0x55, w->size - full);   /* code 1 = zero weight */
    return BITNET_OK;
}

/* Load tensor t (already shape-checked) into w. */
static int tmat_load(bitnet_model *m, bitnet_tmat *w, const bitnet_tensor_desc *t,
                     int8_t **scratch, size_t *scratch_cap)
{
    int32_t cols = (int32_t)t->ne[0], rows = (int32_t)t->ne[1];
    int rc = tmat_alloc(m, w, rows, cols, t->name);
    if (rc) return rc;
    const int32_t nb = w->cols_padded / 128;
    if (t->type == GGML_T_I2_S && cols % 128 == 0) {
        /* the file's blocks are the kernel's blocks: copy them, checking
         * for the invalid code 3 on the way */
        const uint8_t *src = t->data;
        uint64_t bad = 0;
        for (int32_t r = 0; r < rows; r++)
            for (int32_t b = 0; b < nb; b++) {
                const uint8_t *s = src + ((size_t)r * (size_t)nb + (size_t)b) * 32;
                uint64_t x[4];
                memcpy(x, s, 32);
                for (int k = 0; k < 4; k++)
                    bad |= x[k] & (x[k] >> 1) & 0x5555555555555555ull;
                memcpy(block_dst(w->data, nb, r, b), s, 32);
            }
        if (bad)
            return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': "
                                 "invalid I2_S code 3", NAME_ARG(t->name));
        size_t n = (size_t)rows * (size_t)cols;
        memcpy(&w->scale, src + n / 4, 4);
        if (!isfinite(w->scale))
            return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': I2_S "
                                 "scale is not finite", NAME_ARG(t->name));
        return BITNET_OK;
    }
    size_t n = (size_t)rows * (size_t)cols;
    if (*scratch_cap < n) {
        free(*scratch);
        *scratch = malloc(n);
        *scratch_cap = *scratch ? n : 0;
        if (!*scratch)
            return bitnet__error(BITNET_E_NOMEM, "tensor '" NAME_FMT "': out "
                                 "of memory", NAME_ARG(t->name));
    }
    rc = bitnet__ternary_decode(t, *scratch, &w->scale);
    if (rc) return rc;
    for (int32_t r = 0; r < rows; r++)
        encode_row(*scratch + (size_t)r * (size_t)cols, cols, nb, w->data, r);
    return BITNET_OK;
}

/* ====================================================================== */
/* Embedding / head matrices                                              */
/* ====================================================================== */

typedef struct q8k_block {      /* the quantised hidden state for Q6_K */
    float d;
    int8_t qs[256];
    int16_t bsums[16];
} q8k_block;

static void q6k_ints(const uint8_t *blk, int8_t *q)
{
    const uint8_t *ql = blk, *qh = blk + 128;
    for (int h = 0; h < 2; h++) {
        const uint8_t *l8 = ql + 64 * h, *h8 = qh + 32 * h;
        int8_t *o = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            o[l] = (int8_t)(((l8[l] & 0xF) | ((h8[l] & 3) << 4)) - 32);
            o[l + 32] = (int8_t)(((l8[l + 32] & 0xF) | (((h8[l] >> 2) & 3) << 4)) - 32);
            o[l + 64] = (int8_t)(((l8[l] >> 4) | (((h8[l] >> 4) & 3) << 4)) - 32);
            o[l + 96] = (int8_t)(((l8[l + 32] >> 4) | (((h8[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

static float fp16_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return bitnet__fp16_to_fp32(h);
}

void bitnet__fmat_row(const bitnet_fmat *m, int32_t row, float *out)
{
    const uint8_t *r = m->data + (size_t)row * m->row_bytes;
    const int32_t n = m->cols;
    switch (m->type) {
    case GGML_T_F32:
    case GGML_T_F16:
    case GGML_T_BF16:
        to_float(m->type, r, (size_t)n, out);
        break;
    case GGML_T_Q8_0:
        for (int32_t b = 0; b < n / 32; b++) {
            const uint8_t *blk = r + 34 * b;
            float d = fp16_at(blk);
            for (int j = 0; j < 32; j++)
                out[32 * b + j] = (float)(int8_t)blk[2 + j] * d;
        }
        break;
    case GGML_T_Q4_0:
        for (int32_t b = 0; b < n / 32; b++) {
            const uint8_t *blk = r + 18 * b;
            float d = fp16_at(blk);
            for (int j = 0; j < 16; j++) {
                out[32 * b + j] = (float)((blk[2 + j] & 0xF) - 8) * d;
                out[32 * b + j + 16] = (float)((blk[2 + j] >> 4) - 8) * d;
            }
        }
        break;
    case GGML_T_Q6_K:
        for (int32_t b = 0; b < n / 256; b++) {
            const uint8_t *blk = r + 210 * b;
            int8_t q[256];
            q6k_ints(blk, q);
            float d = fp16_at(blk + 208);
            const int8_t *sc = (const int8_t *)(blk + 192);
            for (int j = 0; j < 256; j++)
                out[256 * b + j] = d * (float)sc[j / 16] * (float)q[j];
        }
        break;
    default:
        memset(out, 0, (size_t)n * sizeof(float));
        break;
    }
}

size_t bitnet__fmat_xq_size(const bitnet_fmat *m)
{
    switch (m->type) {
    case GGML_T_Q8_0:
    case GGML_T_Q4_0: return (size_t)(m->cols / 32) * 34;
    case GGML_T_Q6_K: return (size_t)(m->cols / 256) * sizeof(q8k_block);
    default: return (size_t)m->cols * sizeof(float);
    }
}

void bitnet__fmat_quantize_x(const bitnet_fmat *m, const float *x, void *xq)
{
    uint8_t *o = xq;
    const int32_t n = m->cols;
    if (m->type == GGML_T_Q8_0 || m->type == GGML_T_Q4_0) {
        for (int32_t b = 0; b < n / 32; b++) {
            const float *v = x + 32 * b;
            float amax = 0.0f;
            for (int j = 0; j < 32; j++) {
                float a = fabsf(v[j]);
                if (a > amax) amax = a;
            }
            float id = amax != 0.0f ? 127.0f / amax : 0.0f;
            uint16_t d = bitnet__fp32_to_fp16(amax / 127.0f);
            uint8_t *blk = o + 34 * b;
            memcpy(blk, &d, 2);
            for (int j = 0; j < 32; j++)
                blk[2 + j] = (uint8_t)(int8_t)nearbyintf(v[j] * id);
        }
    } else if (m->type == GGML_T_Q6_K) {
        for (int32_t b = 0; b < n / 256; b++) {
            const float *v = x + 256 * b;
            q8k_block blk;
            float amax = 0.0f, max = 0.0f;
            for (int j = 0; j < 256; j++) {
                float a = fabsf(v[j]);
                if (a > amax) { amax = a; max = v[j]; }
            }
            memset(&blk, 0, sizeof(blk));
            if (amax != 0.0f) {
                float iscale = -127.0f / max;
                for (int j = 0; j < 256; j++) {
                    int q = (int)nearbyintf(iscale * v[j]);
                    blk.qs[j] = (int8_t)(q > 127 ? 127 : q);
                }
                for (int g = 0; g < 16; g++) {
                    int s = 0;
                    for (int j = 0; j < 16; j++) s += blk.qs[16 * g + j];
                    blk.bsums[g] = (int16_t)s;
                }
                blk.d = 1.0f / iscale;
            }
            memcpy(o + b * sizeof(q8k_block), &blk, sizeof(blk));
        }
    } else {
        memcpy(o, x, (size_t)n * sizeof(float));
    }
}

void bitnet__fmat_dot_rows(const bitnet_fmat *m, int32_t r0, int32_t r1,
                           const void *xq, float *y)
{
    const uint8_t *a = xq;
    const int32_t n = m->cols;
    for (int32_t r = r0; r < r1; r++) {
        const uint8_t *w = m->data + (size_t)r * m->row_bytes;
        float sum = 0.0f;
        switch (m->type) {
        case GGML_T_Q8_0:
            for (int32_t b = 0; b < n / 32; b++) {
                const uint8_t *wb = w + 34 * b, *ab = a + 34 * b;
                int32_t s = 0;
                for (int j = 0; j < 32; j++)
                    s += (int8_t)wb[2 + j] * (int8_t)ab[2 + j];
                sum += (float)s * (fp16_at(wb) * fp16_at(ab));
            }
            break;
        case GGML_T_Q4_0:
            for (int32_t b = 0; b < n / 32; b++) {
                const uint8_t *wb = w + 18 * b, *ab = a + 34 * b;
                int32_t s = 0;
                for (int j = 0; j < 16; j++) {
                    s += ((wb[2 + j] & 0xF) - 8) * (int8_t)ab[2 + j];
                    s += ((wb[2 + j] >> 4) - 8) * (int8_t)ab[2 + 16 + j];
                }
                sum += (float)s * (fp16_at(wb) * fp16_at(ab));
            }
            break;
        case GGML_T_Q6_K:
            for (int32_t b = 0; b < n / 256; b++) {
                const uint8_t *wb = w + 210 * b;
                q8k_block ab;
                memcpy(&ab, a + b * sizeof(q8k_block), sizeof(ab));
                int8_t q[256];
                q6k_ints(wb, q);
                const int8_t *sc = (const int8_t *)(wb + 192);
                int32_t s = 0;
                for (int g = 0; g < 16; g++) {
                    int32_t gs = 0;
                    for (int j = 0; j < 16; j++)
                        gs += q[16 * g + j] * ab.qs[16 * g + j];
                    s += gs * sc[g];
                }
                sum += (fp16_at(wb + 208) * ab.d) * (float)s;
            }
            break;
        default: {
            float xs[256];
            for (int32_t c0 = 0; c0 < n; c0 += 256) {
                int32_t k = n - c0 < 256 ? n - c0 : 256;
                to_float(m->type, w + (size_t)c0 * (m->type == GGML_T_F32 ? 4 : 2),
                         (size_t)k, xs);
                for (int32_t j = 0; j < k; j++) {
                    float xv;
                    memcpy(&xv, a + 4 * (size_t)(c0 + j), 4);
                    sum += xs[j] * xv;
                }
            }
            break;
        }
        }
        y[r - r0] = sum;
    }
}

static int build_head_i8(const bitnet_model *m, bitnet_head_i8 **out)
{
    const bitnet_fmat *h = &m->output;
    size_t ldw = (size_t)((h->cols + BITNET_KPAD - 1) / BITNET_KPAD * BITNET_KPAD);
    bitnet_head_i8 *hi = calloc(1, sizeof(*hi));
    float *row = malloc((size_t)h->cols * sizeof(float));
    if (hi) {
        hi->ldw = ldw;
        hi->w = bitnet__aalloc((size_t)h->rows * ldw, 64);
        hi->scale = bitnet__aalloc((size_t)h->rows * sizeof(float), 64);
    }
    if (!hi || !row || !hi->w || !hi->scale) {
        if (hi) {
            bitnet__afree(hi->w);
            bitnet__afree(hi->scale);
        }
        free(hi);
        free(row);
        return bitnet__error(BITNET_E_NOMEM, "cannot allocate the int8 head");
    }
    for (int32_t r = 0; r < h->rows; r++) {
        bitnet__fmat_row(h, r, row);
        float amax = 0.0f;
        for (int32_t j = 0; j < h->cols; j++) {
            float a = fabsf(row[j]);
            if (a > amax) amax = a;
        }
        float s = amax / 127.0f;
        int8_t *q = hi->w + (size_t)r * ldw;
        if (s > 0.0f) {
            for (int32_t j = 0; j < h->cols; j++) {
                /* |row/s| <= 127 (+ rounding): adding and subtracting 1.5 *
                 * 2^23 rounds half to even in the default rounding mode */
                float v = (row[j] / s + 12582912.0f) - 12582912.0f;
                v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
                q[j] = (int8_t)v;
            }
        } else {
            memset(q, 0, (size_t)h->cols);
        }
        memset(q + h->cols, 0, ldw - (size_t)h->cols);
        hi->scale[r] = s;
    }
    free(row);
    *out = hi;
    return BITNET_OK;
}

int bitnet__model_head_i8(const struct bitnet_model *m, const bitnet_head_i8 **out)
{
    bitnet_model *mm = (bitnet_model *)m;    /* the lock and cache are mutable */
    int rc = BITNET_OK;
    pthread_mutex_lock(&mm->head_lock);
    if (!mm->head_i8)
        rc = build_head_i8(m, &mm->head_i8);
    *out = mm->head_i8;
    pthread_mutex_unlock(&mm->head_lock);
    return rc;
}

/* ====================================================================== */
/* Loader                                                                 */
/* ====================================================================== */

typedef struct loader {
    bitnet_model *m;
    const bitnet_source *src;
    bitnet_model_params p;
    const char *arch;
    char hp_name[BITNET_HP_COUNT][96];   /* the source's names, for messages */
    bitnet_vocab_desc vd;
    uint64_t total, done;
    int8_t *scratch;
    size_t scratch_cap;
    int n_types[64];
    int dry_run;              /* find_tensor: check only, do not count */
} loader;

/* Integer hyperparameter hp: required, or def when absent; range [lo, hi].
 * A per-layer array is accepted when every element is the same. */
static int get_hp(loader *L, int hp, int64_t *v, int required, int64_t def,
                  int64_t lo, int64_t hi)
{
    char *key = L->hp_name[hp];
    bitnet_value val;
    int rc = bitnet__source_hparam(L->src, hp, &val, key, sizeof(L->hp_name[hp]));
    if (rc == BITNET_OK && val.type == BITNET_VT_ARR) {
        if (val.arr_n == 0)
            return bitnet__error(BITNET_E_FORMAT, "key '%s': empty array", key);
        rc = bitnet__value_arr_i64(&val, key, 0, v);
        for (uint64_t i = 1; rc == BITNET_OK && i < val.arr_n; i++) {
            int64_t x;
            rc = bitnet__value_arr_i64(&val, key, i, &x);
            if (rc == BITNET_OK && x != *v)
                return bitnet__error(BITNET_E_UNSUPPORTED, "key '%s': values "
                                     "that differ per layer are not supported",
                                     key);
        }
    } else if (rc == BITNET_OK) {
        rc = bitnet__value_int(&val, key, v);
    }
    if (rc == BITNET_E_NOT_FOUND) {
        if (required)
            return bitnet__error(BITNET_E_FORMAT, "missing key '%s'", key);
        *v = def;
        return BITNET_OK;
    }
    if (rc) return rc;
    if (*v < lo || *v > hi)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': value %" PRId64
                             " out of range [%" PRId64 ", %" PRId64 "]", key,
                             *v, lo, hi);
    return BITNET_OK;
}

static int get_hp_f(loader *L, int hp, float *v, int required, float def)
{
    char *key = L->hp_name[hp];
    bitnet_value val;
    int rc = bitnet__source_hparam(L->src, hp, &val, key, sizeof(L->hp_name[hp]));
    if (rc == BITNET_OK) rc = bitnet__value_f32(&val, key, v);
    if (rc == BITNET_E_NOT_FOUND) {
        if (required)
            return bitnet__error(BITNET_E_FORMAT, "missing key '%s'", key);
        *v = def;
        return BITNET_OK;
    }
    if (rc) return rc;
    if (!isfinite(*v) || *v < 0.0f)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': value out of range", key);
    return BITNET_OK;
}

static int load_hparams(loader *L)
{
    bitnet_model *m = L->m;
    int64_t v;
    int rc;
#define HP(field, hp, req, def, lo, hi)                               \
    do {                                                                  \
        rc = get_hp(L, hp, &v, req, def, lo, hi);                     \
        if (rc) return rc;                                                \
        m->field = (int32_t)v;                                            \
    } while (0)
    HP(n_ctx_train, BITNET_HP_CONTEXT_LENGTH, 1, 0, 1, INT32_MAX);
    HP(n_embd, BITNET_HP_EMBEDDING_LENGTH, 1, 0, 1, 1 << 20);
    HP(n_layer, BITNET_HP_BLOCK_COUNT, 1, 0, 1, 4096);
    HP(n_ff, BITNET_HP_FEED_FORWARD_LENGTH, 1, 0, 1, 1 << 22);
    HP(n_head, BITNET_HP_HEAD_COUNT, 1, 0, 1, 1 << 16);
    HP(n_head_kv, BITNET_HP_HEAD_COUNT_KV, 0, m->n_head, 1, m->n_head);
#undef HP
    if (m->n_embd % m->n_head != 0)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': %d does not divide "
                             "the embedding length %d",
                             L->hp_name[BITNET_HP_HEAD_COUNT], m->n_head, m->n_embd);
    if (m->n_head % m->n_head_kv != 0)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': %d does not divide "
                             "the head count %d",
                             L->hp_name[BITNET_HP_HEAD_COUNT_KV], m->n_head_kv,
                             m->n_head);
    m->head_dim = m->n_embd / m->n_head;
    rc = get_hp(L, BITNET_HP_ROPE_DIMENSION_COUNT, &v, 0, m->head_dim, 0, m->head_dim);
    if (rc) return rc;
    m->n_rot = (int32_t)v;
    if (m->n_rot % 2 != 0)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': must be even",
                             L->hp_name[BITNET_HP_ROPE_DIMENSION_COUNT]);
    if (m->arch == BITNET_ARCH_B158 && m->n_rot != m->head_dim)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': must equal the head "
                             "dimension %d",
                             L->hp_name[BITNET_HP_ROPE_DIMENSION_COUNT], m->head_dim);
    rc = get_hp_f(L, BITNET_HP_NORM_RMS_EPS, &m->norm_eps, 1, 0.0f);
    if (rc) return rc;
    rc = get_hp_f(L, BITNET_HP_ROPE_FREQ_BASE, &m->rope_base, 0, 10000.0f);
    if (rc) return rc;
    if (m->rope_base <= 0.0f)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': must be positive",
                             L->hp_name[BITNET_HP_ROPE_FREQ_BASE]);
    return BITNET_OK;
}

/* Look tensor `name` up into *t and check its shape; returns t, or NULL
 * when it is absent (*rc set when required) or misshapen (*rc set). */
static const bitnet_tensor_desc *find_tensor(loader *L, const char *name,
                                             int required, int n_dims,
                                             int64_t ne0, int64_t ne1,
                                             bitnet_tensor_desc *t, int *rc)
{
    *rc = BITNET_OK;
    if (bitnet__source_tensor(L->src, name, t) != BITNET_OK) {
        if (required)
            *rc = bitnet__error(BITNET_E_FORMAT, "missing tensor '%s'", name);
        return NULL;
    }
    int ok = (uint64_t)ne0 == t->ne[0] && t->ne[2] == 1 && t->ne[3] == 1 &&
             (n_dims == 1 ? t->ne[1] == 1 : (uint64_t)ne1 == t->ne[1]);
    if (!ok) {
        *rc = bitnet__error(BITNET_E_FORMAT, "tensor '%s': shape [%" PRIu64
                            ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 "], expected "
                            "[%" PRId64 ", %" PRId64 "]", name, t->ne[0],
                            t->ne[1], t->ne[2], t->ne[3], ne0,
                            n_dims == 1 ? (int64_t)1 : ne1);
        return NULL;
    }
    if (!L->dry_run) L->m->n_tensors_used++;
    return t;
}

static int progress(loader *L, uint64_t bytes)
{
    L->done += bytes;
    if (L->p.progress_fn) {
        float f = L->total ? (float)((double)L->done / (double)L->total) : 1.0f;
        if (f > 1.0f) f = 1.0f;
        if (L->p.progress_fn(L->p.progress_user, f))
            return bitnet__error(BITNET_E_ABORTED, "model loading cancelled by "
                                 "the progress callback");
    }
    return BITNET_OK;
}

static int load_norm(loader *L, float **dst, const char *name, int64_t n,
                     int required)
{
    int rc;
    bitnet_tensor_desc td;
    const bitnet_tensor_desc *t = find_tensor(L, name, required, 1, n, 1, &td, &rc);
    if (!t) return rc;
    if (t->type != GGML_T_F32 && t->type != GGML_T_F16 && t->type != GGML_T_BF16)
        return bitnet__error(BITNET_E_UNSUPPORTED, "tensor '%s': type %s is not "
                             "supported for a norm weight (F32, F16, BF16)",
                             name, bitnet__ggml_type_name(t->type));
    *dst = bitnet__aalloc((size_t)n * sizeof(float), 64);
    if (!*dst)
        return bitnet__error(BITNET_E_NOMEM, "tensor '%s': out of memory", name);
    bitnet_tensor_desc tv;
    rc = bitnet__source_acquire(L->src, t, &tv);
    if (!rc) to_float(t->type, tv.data, (size_t)n, *dst);
    bitnet__source_release(L->src, t);
    if (rc) return rc;
    return progress(L, t->nbytes);
}

static int load_linear(loader *L, bitnet_tmat *w, const char *name,
                       int64_t rows, int64_t cols)
{
    int rc;
    bitnet_tensor_desc td;
    const bitnet_tensor_desc *t = find_tensor(L, name, 1, 2, cols, rows, &td, &rc);
    if (!t) return rc;
    switch (t->type) {
    case GGML_T_I2_S: case GGML_T_TQ1_0: case GGML_T_TQ2_0:
    case GGML_T_F32: case GGML_T_F16: case GGML_T_BF16:
        break;
    default:
        return bitnet__error(BITNET_E_UNSUPPORTED, "tensor '%s': type %s is not "
                             "supported for linear weights (I2_S, TQ2_0, TQ1_0, "
                             "F32, F16, BF16)", name,
                             bitnet__ggml_type_name(t->type));
    }
    /* a checkpoint's weights may be produced on demand (and master
     * weights' pages dropped after): acquire/release around the use */
    bitnet_tensor_desc tv;
    rc = bitnet__source_acquire(L->src, t, &tv);
    if (!rc) rc = tmat_load(L->m, w, &tv, &L->scratch, &L->scratch_cap);
    bitnet__source_release(L->src, t);
    if (rc) return rc;
    L->n_types[t->type & 63]++;
    /* optional per-tensor scale of the "bitnet" architecture:
     * "blk.N.attn_q.weight" -> "blk.N.attn_q.scale" */
    if (L->m->arch == BITNET_ARCH_BITNET) {
        char sname[160];
        size_t len = strlen(name);
        if (len > 7 && len < sizeof(sname) && strcmp(name + len - 7, ".weight") == 0) {
            memcpy(sname, name, len - 7);
            memcpy(sname + len - 7, ".scale", 7);
            bitnet_tensor_desc sd;
            const bitnet_tensor_desc *s = NULL;
            if (bitnet__source_tensor(L->src, sname, &sd) == BITNET_OK) s = &sd;
            if (s) {
                if (s->ne[0] * s->ne[1] * s->ne[2] * s->ne[3] != 1 ||
                    (s->type != GGML_T_F32 && s->type != GGML_T_F16 &&
                     s->type != GGML_T_BF16))
                    return bitnet__error(BITNET_E_FORMAT, "tensor '%s': must be "
                                         "one F32/F16/BF16 value", sname);
                float f;
                to_float(s->type, s->data, 1, &f);
                if (!isfinite(f))
                    return bitnet__error(BITNET_E_FORMAT, "tensor '%s': not "
                                         "finite", sname);
                w->scale *= f;
                L->m->n_tensors_used++;
            }
        }
    }
    return progress(L, t->nbytes);
}

static int fmat_load(loader *L, bitnet_fmat *f, uint8_t **owned,
                     const bitnet_tensor_desc *t, const char *name)
{
    switch (t->type) {
    case GGML_T_F32: case GGML_T_F16: case GGML_T_BF16:
    case GGML_T_Q8_0: case GGML_T_Q4_0: case GGML_T_Q6_K:
        break;
    default:
        return bitnet__error(BITNET_E_UNSUPPORTED, "tensor '%s': type %s is not "
                             "supported for the embedding/output (F32, F16, "
                             "BF16, Q8_0, Q4_0, Q6_K)", name,
                             bitnet__ggml_type_name(t->type));
    }
    f->type = t->type;
    f->cols = (int32_t)t->ne[0];
    f->rows = (int32_t)t->ne[1];
    f->row_bytes = (size_t)bitnet__ggml_nbytes(t->type, t->ne[0], 1);
    f->data = t->data;
    if (((uintptr_t)t->data & 31) != 0) {
        /* a caller's buffer that is not aligned: keep an aligned copy */
        *owned = bitnet__aalloc((size_t)t->nbytes, 64);
        if (!*owned)
            return bitnet__error(BITNET_E_NOMEM, "tensor '%s': out of memory", name);
        memcpy(*owned, t->data, (size_t)t->nbytes);
        f->data = *owned;
        bitnet__source_release(L->src, t);   /* the mapping is not read again */
    }
    (void)L;
    return BITNET_OK;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t fingerprint(const bitnet_model *m, const bitnet_source *src)
{
    uint64_t h = 14695981039346656037ull;
    h = fnv(h, m->arch_name, strlen(m->arch_name));
    int32_t hp[] = { m->n_vocab, m->n_ctx_train, m->n_embd, m->n_layer, m->n_ff,
                     m->n_head, m->n_head_kv, m->head_dim, m->n_rot,
                     m->rope_neox, m->ffn_act, m->arch };
    h = fnv(h, hp, sizeof(hp));
    h = fnv(h, &m->norm_eps, 4);
    h = fnv(h, &m->rope_base, 4);
    const uint64_t nt = bitnet__source_n_tensors(src);
    for (uint64_t i = 0; i < nt; i++) {
        bitnet_tensor_desc td;
        bitnet__source_tensor_at(src, i, &td);
        const bitnet_tensor_desc *t = &td;
        h = fnv(h, t->name.ptr, t->name.len);
        h = fnv(h, &t->type, 4);
        h = fnv(h, t->ne, sizeof(t->ne));
        if (!t->data) {
            /* produced on demand (a checkpoint's packed weights) */
        } else if (t->nbytes <= 4096) {
            h = fnv(h, t->data, (size_t)t->nbytes);
        } else {
            size_t n = (size_t)t->nbytes;
            h = fnv(h, t->data, 256);
            h = fnv(h, t->data + n / 2, 256);
            h = fnv(h, t->data + n - 256, 256);
        }
    }
    return h;
}

static int arena_alloc(bitnet_model *m, size_t total);

static int load_weights(loader *L)
{
    bitnet_model *m = L->m;
    int rc;

    /* embedding: its rows give n_vocab */
    bitnet_tensor_desc ted, tod;
    const bitnet_tensor_desc *te = &ted;
    if (bitnet__source_tensor(L->src, "token_embd.weight", &ted) != BITNET_OK)
        return bitnet__error(BITNET_E_FORMAT, "missing tensor 'token_embd.weight'");
    if (te->ne[1] > INT32_MAX || te->ne[2] != 1 || te->ne[3] != 1)
        return bitnet__error(BITNET_E_FORMAT, "tensor 'token_embd.weight': bad "
                             "shape");
    m->n_vocab = (int32_t)te->ne[1];
    const bitnet_vocab_field *tok = &L->vd.f[BITNET_VF_TOKENS];
    if (tok->present && tok->v.type == BITNET_VT_ARR && tok->v.arr_n != (uint64_t)m->n_vocab)
        return bitnet__error(BITNET_E_FORMAT, "tensor 'token_embd.weight': %d "
                             "rows but '%s' has %" PRIu64 " tokens", m->n_vocab,
                             tok->name, tok->v.arr_n);
    if (!find_tensor(L, "token_embd.weight", 1, 2, m->n_embd, m->n_vocab, &ted, &rc))
        return rc;
    rc = fmat_load(L, &m->tok_embd, &m->fmat_owned[0], te, "token_embd.weight");
    if (rc) return rc;
    rc = progress(L, te->nbytes);
    if (rc) return rc;

    const bitnet_tensor_desc *to = find_tensor(L, "output.weight", 0, 2, m->n_embd,
                                               m->n_vocab, &tod, &rc);
    if (rc) return rc;
    if (to) {
        rc = fmat_load(L, &m->output, &m->fmat_owned[1], to, "output.weight");
        if (rc) return rc;
        rc = progress(L, to->nbytes);
        if (rc) return rc;
    } else {
        m->output = m->tok_embd;
    }
    rc = load_norm(L, &m->output_norm, "output_norm.weight", m->n_embd, 1);
    if (rc) return rc;

    m->layers = calloc((size_t)m->n_layer, sizeof(*m->layers));
    if (!m->layers)
        return bitnet__error(BITNET_E_NOMEM, "out of memory");
    const int subn = m->arch != BITNET_ARCH_LLAMA;
    const int64_t E = m->n_embd, F = m->n_ff;
    const int64_t KV = (int64_t)m->n_head_kv * m->head_dim;

    /* one allocation for every packed matrix, populated in one system
     * call where possible (much cheaper than a page fault per 4 KiB page
     * on a large model) */
    size_t per_layer = 2 * tmat_reserve((int32_t)E, (int32_t)E) +
                       2 * tmat_reserve((int32_t)KV, (int32_t)E) +
                       2 * tmat_reserve((int32_t)F, (int32_t)E) +
                       tmat_reserve((int32_t)E, (int32_t)F), total;
    if (bitnet__mul_ovf(per_layer, (size_t)m->n_layer, &total))
        return bitnet__error(BITNET_E_NOMEM, "weights too large");
    /* every linear weight must exist with its shape before the arena is
     * sized from the hyperparameters (which a file could inflate) */
    L->dry_run = 1;
    for (int32_t i = 0; i < m->n_layer; i++) {
        static const char *lin[7] = { "attn_q", "attn_k", "attn_v", "attn_output",
                                      "ffn_gate", "ffn_up", "ffn_down" };
        const int64_t rows[7] = { E, KV, KV, E, F, F, E };
        const int64_t cols[7] = { E, E, E, E, E, E, F };
        for (int k = 0; k < 7; k++) {
            char nm[96];
            snprintf(nm, sizeof(nm), "blk.%d.%s.weight", (int)i, lin[k]);
            bitnet_tensor_desc td;
            if (!find_tensor(L, nm, 1, 2, cols[k], rows[k], &td, &rc)) {
                L->dry_run = 0;
                return rc;
            }
        }
    }
    L->dry_run = 0;
    rc = arena_alloc(m, total);
    if (rc) return rc;
    for (int32_t i = 0; i < m->n_layer; i++) {
        bitnet_layer *l = &m->layers[i];
        char nm[96];
#define N(s) (snprintf(nm, sizeof(nm), "blk.%d." s ".weight", (int)i), nm)
        if ((rc = load_norm(L, &l->attn_norm, N("attn_norm"), E, 1))) return rc;
        if ((rc = load_linear(L, &l->wq, N("attn_q"), E, E))) return rc;
        if ((rc = load_linear(L, &l->wk, N("attn_k"), KV, E))) return rc;
        if ((rc = load_linear(L, &l->wv, N("attn_v"), KV, E))) return rc;
        if ((rc = load_linear(L, &l->wo, N("attn_output"), E, E))) return rc;
        if (subn && (rc = load_norm(L, &l->attn_sub_norm, N("attn_sub_norm"), E, 1)))
            return rc;
        if ((rc = load_norm(L, &l->ffn_norm, N("ffn_norm"), E, 1))) return rc;
        if ((rc = load_linear(L, &l->wgate, N("ffn_gate"), F, E))) return rc;
        if ((rc = load_linear(L, &l->wup, N("ffn_up"), F, E))) return rc;
        if ((rc = load_linear(L, &l->wdown, N("ffn_down"), E, F))) return rc;
        if (subn && (rc = load_norm(L, &l->ffn_sub_norm, N("ffn_sub_norm"), F, 1)))
            return rc;
#undef N
    }
    const uint64_t nt = bitnet__source_n_tensors(L->src);
    if ((uint64_t)m->n_tensors_used != nt)
        bitnet__log(&m->log, BITNET_LOG_WARN, "%" PRIu64 " tensor(s) of the "
                    "file are not used by the '%s' graph",
                    nt - (uint64_t)m->n_tensors_used, m->arch_name);
    return BITNET_OK;
}

#if defined(MAP_ANONYMOUS) && defined(MAP_POPULATE)
# define ARENA_MMAP 1
#else
# define ARENA_MMAP 0
#endif

static int arena_alloc(bitnet_model *m, size_t total)
{
#if ARENA_MMAP
    if (total >= ((size_t)1 << 20)) {
        void *p = mmap(NULL, total, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (p != MAP_FAILED) {
            m->arena = p;
            m->arena_size = total;
            m->arena_mapped = 1;
            return BITNET_OK;
        }
    }
#endif
    m->arena = bitnet__aalloc(total, 64);
    if (!m->arena)
        return bitnet__error(BITNET_E_NOMEM, "cannot allocate %zu bytes for "
                             "the weights", total);
    m->arena_size = total;
    return BITNET_OK;
}

static void arena_free(bitnet_model *m)
{
#if ARENA_MMAP
    if (m->arena_mapped) {
        munmap(m->arena, m->arena_size);
        m->arena = NULL;
        return;
    }
#endif
    bitnet__afree(m->arena);
    m->arena = NULL;
}

static void free_layers(bitnet_model *m)
{
    if (!m->layers) return;
    for (int32_t i = 0; i < m->n_layer; i++) {
        bitnet_layer *l = &m->layers[i];
        bitnet__afree(l->attn_norm);
        bitnet__afree(l->attn_sub_norm);
        bitnet__afree(l->ffn_norm);
        bitnet__afree(l->ffn_sub_norm);
    }
    free(m->layers);
    m->layers = NULL;
    arena_free(m);
}

void bitnet_model_free(bitnet_model *m)
{
    if (!m) return;
    free_layers(m);
    bitnet__afree(m->output_norm);
    bitnet__afree(m->fmat_owned[0]);
    bitnet__afree(m->fmat_owned[1]);
    if (m->head_i8) {
        bitnet__afree(m->head_i8->w);
        bitnet__afree(m->head_i8->scale);
        free(m->head_i8);
    }
    bitnet__vocab_free(m->vocab);
    bitnet__source_free(m->src);
    free(m->arch_name);
    pthread_mutex_destroy(&m->head_lock);
    free(m);
}

static const char *type_counts(const loader *L, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int t = 0; t < 64; t++) {
        if (!L->n_types[t]) continue;
        int k = snprintf(buf + n, cap - n, "%s%d %s", n ? ", " : "",
                         L->n_types[t], bitnet__ggml_type_name((uint32_t)t));
        if (k < 0 || (size_t)k >= cap - n) break;
        n += (size_t)k;
    }
    return buf;
}

/* Build the model from src (owned from here on: freed on failure) with
 * merged params p. */
static int load(bitnet_model **out, bitnet_source *src, const bitnet_model_params *p,
                double t0)
{
    loader L;
    memset(&L, 0, sizeof(L));
    L.p = *p;
    bitnet_model *m = calloc(1, sizeof(*m));
    if (!m) {
        bitnet__source_free(src);
        return bitnet__error(BITNET_E_NOMEM, "out of memory");
    }
    if (pthread_mutex_init(&m->head_lock, NULL) != 0) {
        free(m);
        bitnet__source_free(src);
        return bitnet__error(BITNET_E_NOMEM, "cannot create a mutex");
    }
    m->src = src;
    L.src = src;
    m->flags = L.p.flags;
    m->log.fn = L.p.log_fn;
    m->log.user = L.p.log_user;
    m->log.level = L.p.log_level;
    L.m = m;
    const int vocab_only = (L.p.flags & BITNET_MODEL_VOCAB_ONLY) != 0;

    bitnet_str an = { "", 0 };
    bitnet_value av;
    char *akey = L.hp_name[BITNET_HP_ARCH];
    int rc = bitnet__source_hparam(src, BITNET_HP_ARCH, &av, akey,
                                   sizeof(L.hp_name[BITNET_HP_ARCH]));
    if (rc == BITNET_OK) rc = bitnet__value_str(&av, akey, &an);
    if (rc == BITNET_E_NOT_FOUND && !vocab_only) {
        rc = bitnet__error(BITNET_E_FORMAT, "missing key '%s'", akey);
        goto fail;
    }
    if (rc && rc != BITNET_E_NOT_FOUND) goto fail;
    rc = bitnet__source_vocab(src, &L.vd);
    if (rc) goto fail;
    m->arch_name = bitnet__strndup(an.ptr, (size_t)an.len);
    if (!m->arch_name) { rc = bitnet__error(BITNET_E_NOMEM, "out of memory"); goto fail; }
    if (strlen(m->arch_name) != an.len || an.len > 64) {
        rc = bitnet__error(BITNET_E_FORMAT, "key '%s': invalid name", akey);
        if (!vocab_only) goto fail;
        bitnet__clear_error();
        m->arch_name[0] = '\0';
    }
    L.arch = m->arch_name;
    int known = 1;
    if (!strcmp(L.arch, "bitnet-b1.58") || !strcmp(L.arch, "bitnet-25")) {
        m->arch = BITNET_ARCH_B158;
        m->ffn_act = BITNET_FFN_RELU2;
        m->rope_neox = 1;
    } else if (!strcmp(L.arch, "bitnet")) {
        m->arch = BITNET_ARCH_BITNET;
        m->ffn_act = BITNET_FFN_SILU;
        m->rope_neox = 1;
    } else if (!strcmp(L.arch, "llama")) {
        m->arch = BITNET_ARCH_LLAMA;
        m->ffn_act = BITNET_FFN_SILU;
        m->rope_neox = 0;
    } else {
        known = 0;
        if (!vocab_only) {
            rc = bitnet__error(BITNET_E_UNSUPPORTED, "key '%s': unsupported "
                               "architecture '%s' (supported: bitnet-b1.58, "
                               "bitnet-25, bitnet, llama)", akey, L.arch);
            goto fail;
        }
    }

    if (L.vd.f[BITNET_VF_MODEL].present || L.vd.f[BITNET_VF_TOKENS].present) {
        rc = bitnet__vocab_load(&m->vocab, &L.vd, L.p.pre_tokenizer, &m->log);
        if (rc) goto fail;
    }

    if (vocab_only) {
        /* hyperparameters only as far as they are present and valid */
        if (known) {
            if (load_hparams(&L) != BITNET_OK) {
                m->n_ctx_train = m->n_embd = m->n_layer = m->n_ff = 0;
                m->n_head = m->n_head_kv = m->head_dim = m->n_rot = 0;
            }
            bitnet__clear_error();
        }
        const bitnet_vocab_field *tok = &L.vd.f[BITNET_VF_TOKENS];
        int32_t nv = bitnet__vocab_n_tokens(m->vocab);
        if (nv <= 0 && tok->present && tok->v.type == BITNET_VT_ARR &&
            tok->v.arr_n <= INT32_MAX)
            nv = (int32_t)tok->v.arr_n;
        m->n_vocab = nv > 0 ? nv : 0;
        m->fingerprint = fingerprint(m, src);
        bitnet__log(&m->log, BITNET_LOG_INFO, "loaded the vocabulary of a '%s' "
                    "model (%d tokens)", m->arch_name, m->n_vocab);
        *out = m;
        return BITNET_OK;
    }

    rc = load_hparams(&L);
    if (rc) goto fail;
    const uint64_t nt = bitnet__source_n_tensors(src);
    for (uint64_t i = 0; i < nt; i++) {
        bitnet_tensor_desc td;
        bitnet__source_tensor_at(src, i, &td);
        L.total += td.nbytes;
    }
    rc = progress(&L, 0);
    if (rc) goto fail;
    rc = load_weights(&L);
    if (rc) goto fail;
    if (L.p.flags & BITNET_MODEL_INT8_HEAD) {
        const bitnet_head_i8 *h;
        rc = bitnet__model_head_i8(m, &h);
        if (rc) goto fail;
    }
    m->fingerprint = fingerprint(m, src);
    free(L.scratch);
    {
        char tc[256];
        bitnet__log(&m->log, BITNET_LOG_INFO, "loaded '%s' model: n_embd %d, "
                    "n_layer %d, n_ff %d, n_head %d/%d, n_vocab %d, n_ctx_train "
                    "%d; linear weights: %s; embedding %s%s%s; %.3f s",
                    m->arch_name, m->n_embd, m->n_layer, m->n_ff, m->n_head,
                    m->n_head_kv, m->n_vocab, m->n_ctx_train,
                    type_counts(&L, tc, sizeof(tc)),
                    bitnet__ggml_type_name(m->tok_embd.type),
                    m->output.data == m->tok_embd.data ? " (tied head)" : ", head ",
                    m->output.data == m->tok_embd.data ? "" :
                        bitnet__ggml_type_name(m->output.type),
                    bitnet__now() - t0);
    }
    *out = m;
    return BITNET_OK;
fail:
    free(L.scratch);
    bitnet_model_free(m);
    return rc;
}

static int merge_params(bitnet_model_params *p, const bitnet_model_params *params)
{
    bitnet_model_params_init(p);
    if (!params) return BITNET_OK;
    return bitnet__params_merge(p, sizeof(*p), params, "bitnet_model_params");
}

int bitnet_model_load_file(bitnet_model **out, const char *path,
                           const bitnet_model_params *params)
{
    bitnet__clear_error();
    if (out) *out = NULL;
    if (!out || !path)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_model_load_file: "
                             "out and path must not be NULL");
    double t0 = bitnet__now();
    bitnet_model_params p;
    int rc = merge_params(&p, params);
    if (rc) return rc;
    bitnet_source *src;
    rc = bitnet__source_open_file(&src, path, (p.flags & BITNET_MODEL_NO_MMAP) != 0);
    if (rc) return rc;
    return load(out, src, &p, t0);
}

int bitnet_model_load_buffer(bitnet_model **out, const void *data, size_t size,
                             const bitnet_model_params *params)
{
    bitnet__clear_error();
    if (out) *out = NULL;
    if (!out || (!data && size))
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_model_load_buffer: "
                             "out and data must not be NULL");
    double t0 = bitnet__now();
    bitnet_model_params p;
    int rc = merge_params(&p, params);
    if (rc) return rc;
    bitnet_source *src;
    rc = bitnet__source_open_buffer(&src, data, size);
    if (rc) return rc;
    return load(out, src, &p, t0);
}

const char *bitnet_model_arch(const bitnet_model *model)
{
    return model ? model->arch_name : NULL;
}

int32_t bitnet_model_n_vocab(const bitnet_model *model)
{
    return model ? model->n_vocab : 0;
}

int32_t bitnet_model_n_ctx_train(const bitnet_model *model)
{
    return model ? model->n_ctx_train : 0;
}

int32_t bitnet_model_n_embd(const bitnet_model *model)
{
    return model ? model->n_embd : 0;
}

int32_t bitnet_model_n_layer(const bitnet_model *model)
{
    return model ? model->n_layer : 0;
}

int bitnet_model_meta(const bitnet_model *model, const char *key, char *buf,
                      size_t cap, size_t *n_out)
{
    bitnet__clear_error();
    if (!model || !key || !n_out || (!buf && cap))
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_model_meta: model, "
                             "key and n_out must not be NULL (buf only when cap "
                             "is 0)");
    *n_out = 0;
    bitnet_value v;
    if (bitnet__source_meta(model->src, key, &v) != BITNET_OK)
        return bitnet__error(BITNET_E_NOT_FOUND, "bitnet_model_meta: no key "
                             "'%s'", key);
    int rc = bitnet__value_render(&v, buf, cap, n_out);
    if (rc == BITNET_E_BUFFER_TOO_SMALL)
        return bitnet__error(rc, "bitnet_model_meta: '%s' needs %zu bytes", key,
                             *n_out + 1);
    return rc;
}
