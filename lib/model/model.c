/*
 * The embedding row lookup and the output heads (F16 goes through the
 * kernel table; Q8_0, Q4_0, Q6_K and the int8 copy are here). Loading is in
 * model/load.c, the linear weights in model/weights.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "model/model.h"

static inline void to_float(uint32_t type, const uint8_t *src, size_t n, float *dst)
{
    bitnet__to_float(type, src, n, dst);
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

