/*
 * Reference output heads and their activation quantisers (docs/kernels.md,
 * "Output heads"). One-token row functions plus the multi-token driver of
 * kernels_impl.h, like every SIMD variant, so that the per-(row, token)
 * arithmetic is the same whatever the token count.
 */
#include <math.h>
#include <string.h>

#include "kernels_impl.h"

/* ---- float heads: exact products summed in double, rounded once ------- */

static void f16_rows(const uint8_t *w, size_t row_bytes, int32_t r0, int32_t r1,
                     const void *xq, int32_t k, float *y)
{
    const float *x = xq;
    for (int32_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + (size_t)r * row_bytes;
        double acc = 0.0;
        for (int32_t j = 0; j < k; j++)
            acc += (double)bitnet__fp16_load(wr + 2 * (size_t)j) * (double)x[j];
        y[r - r0] = (float)acc;
    }
}

static void f32_rows(const uint8_t *w, size_t row_bytes, int32_t r0, int32_t r1,
                     const void *xq, int32_t k, float *y)
{
    const float *x = xq;
    for (int32_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + (size_t)r * row_bytes;
        double acc = 0.0;
        for (int32_t j = 0; j < k; j++) {
            float v;
            memcpy(&v, wr + 4 * (size_t)j, 4);
            acc += (double)v * (double)x[j];
        }
        y[r - r0] = (float)acc;
    }
}

static void bf16_rows(const uint8_t *w, size_t row_bytes, int32_t r0, int32_t r1,
                      const void *xq, int32_t k, float *y)
{
    const float *x = xq;
    for (int32_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + (size_t)r * row_bytes;
        double acc = 0.0;
        for (int32_t j = 0; j < k; j++) {
            uint16_t h;
            memcpy(&h, wr + 2 * (size_t)j, 2);
            acc += (double)bitnet__bf16_to_fp32(h) * (double)x[j];
        }
        y[r - r0] = (float)acc;
    }
}

/* ---- quantised heads: exact block sums, float lanes ------------------- */

static void q8_0_rows(const uint8_t *w, size_t row_bytes, int32_t r0, int32_t r1,
                      const void *xq, int32_t k, float *y)
{
    const uint8_t *a = xq;
    for (int32_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + (size_t)r * row_bytes;
        float acc[16] = { 0 };
        for (int32_t b = 0; b < k / 32; b++) {
            const uint8_t *wb = wr + 34 * (size_t)b, *ab = a + 34 * (size_t)b;
            int32_t s = 0;
            for (int j = 0; j < 32; j++)
                s += (int8_t)wb[2 + j] * (int8_t)ab[2 + j];
            const float d = bitnet__fp16_load(wb) * bitnet__fp16_load(ab);
            const float p = (float)s * d;
            acc[b & 15] = acc[b & 15] + p;
        }
        y[r - r0] = bitnet__lanes16_fold(acc);
    }
}

static void q4_0_rows(const uint8_t *w, size_t row_bytes, int32_t r0, int32_t r1,
                      const void *xq, int32_t k, float *y)
{
    const uint8_t *a = xq;
    for (int32_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + (size_t)r * row_bytes;
        float acc[16] = { 0 };
        for (int32_t b = 0; b < k / 32; b++) {
            const uint8_t *wb = wr + 18 * (size_t)b, *ab = a + 34 * (size_t)b;
            int32_t s = 0;
            for (int j = 0; j < 16; j++) {
                s += ((wb[2 + j] & 0xF) - 8) * (int8_t)ab[2 + j];
                s += ((wb[2 + j] >> 4) - 8) * (int8_t)ab[2 + 16 + j];
            }
            const float d = bitnet__fp16_load(wb) * bitnet__fp16_load(ab);
            const float p = (float)s * d;
            acc[b & 15] = acc[b & 15] + p;
        }
        y[r - r0] = bitnet__lanes16_fold(acc);
    }
}

/* Q6_K block (210 bytes): ql[128], qh[64], int8 scales[16], fp16 d; the
 * 256 values q - 32 in natural order. */
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

static void q6_k_rows(const uint8_t *w, size_t row_bytes, int32_t r0, int32_t r1,
                      const void *xq, int32_t k, float *y)
{
    const bitnet_q8k_block *a = xq;
    for (int32_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + (size_t)r * row_bytes;
        float acc[16] = { 0 };
        for (int32_t b = 0; b < k / 256; b++) {
            const uint8_t *wb = wr + 210 * (size_t)b;
            int8_t q[256];
            q6k_ints(wb, q);
            const int8_t *sc = (const int8_t *)(wb + 192);
            int32_t s = 0;
            for (int g = 0; g < 16; g++) {
                int32_t gs = 0;
                for (int j = 0; j < 16; j++)
                    gs += q[16 * g + j] * a[b].qs[16 * g + j];
                s += gs * sc[g];
            }
            const float d = bitnet__fp16_load(wb + 208) * a[b].d;
            const float p = (float)s * d;
            acc[b & 15] = acc[b & 15] + p;
        }
        y[r - r0] = bitnet__lanes16_fold(acc);
    }
}

/* ---- int8 head -------------------------------------------------------- */

static void i8_rows(const int8_t *w, size_t ldw, const float *ws, int32_t r0,
                    int32_t r1, const int8_t *q, float xs, int32_t k, float *y)
{
    for (int32_t r = r0; r < r1; r++) {
        const int8_t *wr = w + (size_t)r * ldw;
        int32_t t = 0;
        for (int32_t j = 0; j < k; j++)
            t += wr[j] * q[j];
        float v = (float)t * ws[r];
        y[r - r0] = v / xs;
    }
}

BITNET_HEAD_DRIVER(bitnet__head_f16_ref, f16_rows)
BITNET_HEAD_DRIVER(bitnet__head_f32_ref, f32_rows)
BITNET_HEAD_DRIVER(bitnet__head_bf16_ref, bf16_rows)
BITNET_HEAD_DRIVER(bitnet__head_q8_0_ref, q8_0_rows)
BITNET_HEAD_DRIVER(bitnet__head_q4_0_ref, q4_0_rows)
BITNET_HEAD_DRIVER(bitnet__head_q6_k_ref, q6_k_rows)
BITNET_HEAD_I8_DRIVER(bitnet__head_i8_ref, i8_rows)

/* ---- activation quantisers -------------------------------------------- */

/* Q8_0 blocks: d = fp16(amax / 127), q = round(x * 127 / amax). */
void bitnet__quant_q8_0_ref(const float *x, int32_t k, void *xq)
{
    uint8_t *o = xq;
    for (int32_t b = 0; b < k / 32; b++) {
        const float *v = x + 32 * b;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            float a = fabsf(v[j]);
            if (a > amax) amax = a;
        }
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const uint16_t d = bitnet__fp32_to_fp16(amax / 127.0f);
        uint8_t *blk = o + 34 * (size_t)b;
        memcpy(blk, &d, 2);
        for (int j = 0; j < 32; j++)
            blk[2 + j] = (uint8_t)(int8_t)nearbyintf(v[j] * id);
    }
}

/* Q8_K-like blocks of 256: the signed value of largest magnitude maps to
 * -127; d = 1 / scale. */
void bitnet__quant_q8_k_ref(const float *x, int32_t k, void *xq)
{
    for (int32_t b = 0; b < k / 256; b++) {
        const float *v = x + 256 * b;
        bitnet_q8k_block blk;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 256; j++) {
            float a = fabsf(v[j]);
            if (a > amax) { amax = a; max = v[j]; }
        }
        memset(&blk, 0, sizeof(blk));
        if (amax != 0.0f) {
            const float iscale = -127.0f / max;
            for (int j = 0; j < 256; j++) {
                int q = (int)nearbyintf(iscale * v[j]);
                blk.qs[j] = (int8_t)(q > 127 ? 127 : q);
            }
            blk.d = 1.0f / iscale;
        }
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++)
                s += blk.qs[16 * g + j];
            blk.bsums[g] = (int16_t)s;
        }
        memcpy((uint8_t *)xq + (size_t)b * sizeof(blk), &blk, sizeof(blk));
    }
}
