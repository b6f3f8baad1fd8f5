/*
 * Output heads: sizes, per-token activation preparation, dispatch to the
 * kernel table, and the row conversions used when a head is converted at
 * load (docs/kernels.md, "Output heads"). Baseline code: the arithmetic
 * that matters for speed is in the table's head_* entries.
 */
#include <math.h>
#include <string.h>

#include "kernels_impl.h"

static size_t up64(size_t v) { return (v + 63) / 64 * 64; }

size_t bitnet__head_row_bytes(int fmt, int32_t cols)
{
    if (cols <= 0)
        return 0;
    const size_t c = (size_t)cols;
    switch (fmt) {
    case BITNET_HF_F32: return 4 * c;
    case BITNET_HF_F16:
    case BITNET_HF_BF16: return 2 * c;
    case BITNET_HF_I8: return (c + BITNET_KPAD - 1) / BITNET_KPAD * BITNET_KPAD;
    case BITNET_HF_Q8_0: return c % 32 ? 0 : c / 32 * 34;
    case BITNET_HF_Q4_0: return c % 32 ? 0 : c / 32 * 18;
    case BITNET_HF_Q6_K: return c % 256 ? 0 : c / 256 * 210;
    default: return 0;
    }
}

int bitnet__head_init(bitnet_head *h)
{
    if (h->cols <= 0 || bitnet__head_row_bytes(h->fmt, h->cols) == 0)
        return -1;
    const size_t c = (size_t)h->cols;
    switch (h->fmt) {
    case BITNET_HF_I8: h->xq_size = up64(BITNET_HEAD_I8_QOFF + h->row_bytes); break;
    case BITNET_HF_Q8_0:
    case BITNET_HF_Q4_0: h->xq_size = up64(bitnet__q8_0_xd_off((int32_t)c) + c / 32 * 8); break;
    case BITNET_HF_Q6_K: h->xq_size = up64(c / 256 * sizeof(bitnet_q8k_block)); break;
    default: h->xq_size = up64(c * sizeof(float)); break;
    }
    return 0;
}

void bitnet__head_prepare(const bitnet_kernels *k, const bitnet_head *h,
                          const float *x, void *xq)
{
    switch (h->fmt) {
    case BITNET_HF_I8: {
        float xs;
        int32_t sum;
        k->quant_act(x, h->cols, (int32_t)h->row_bytes,
                     (int8_t *)xq + BITNET_HEAD_I8_QOFF, &xs, &sum);
        memcpy(xq, &xs, sizeof(xs));
        break;
    }
    case BITNET_HF_Q8_0:
    case BITNET_HF_Q4_0: {
        k->quant_q8_0(x, h->cols, xq);
        /* the blocks' d as float and their sums of q, after the blocks */
        const int32_t nb = h->cols / 32;
        uint8_t *o = xq;
        uint8_t *xd = o + bitnet__q8_0_xd_off(h->cols);
        for (int32_t b = 0; b < nb; b++) {
            const uint8_t *blk = o + 34 * (size_t)b;
            const float d = bitnet__fp16_load(blk);
            int32_t sum = 0;
            for (int j = 0; j < 32; j++)
                sum += (int8_t)blk[2 + j];
            memcpy(xd + 4 * (size_t)b, &d, 4);
            memcpy(xd + 4 * (size_t)nb + 4 * (size_t)b, &sum, 4);
        }
        break;
    }
    case BITNET_HF_Q6_K:
        k->quant_q8_k(x, h->cols, xq);
        break;
    default:
        memcpy(xq, x, (size_t)h->cols * sizeof(float));
        break;
    }
}

void bitnet__head_rows(const bitnet_kernels *k, const bitnet_head *h,
                       int32_t r0, int32_t r1, const void *xq, int32_t n,
                       float *y, size_t ldy)
{
    bitnet_head_fn fn;
    switch (h->fmt) {
    case BITNET_HF_I8:
        k->head_i8((const int8_t *)h->w, h->row_bytes, h->scale, r0, r1, xq,
                   h->xq_size, n, (int32_t)h->row_bytes, y, ldy);
        return;
    case BITNET_HF_F32: fn = k->head_f32; break;
    case BITNET_HF_BF16: fn = k->head_bf16; break;
    case BITNET_HF_Q8_0: fn = k->head_q8_0; break;
    case BITNET_HF_Q4_0: fn = k->head_q4_0; break;
    case BITNET_HF_Q6_K: fn = k->head_q6_k; break;
    default: fn = k->head_f16; break;
    }
    fn(h->w, h->row_bytes, r0, r1, xq, h->xq_size, n, h->cols, y, ldy);
}

const char *bitnet__head_kernel_name(const bitnet_kernels *k, int fmt)
{
    switch (fmt) {
    case BITNET_HF_F32: return k->name_head_f32;
    case BITNET_HF_BF16: return k->name_head_bf16;
    case BITNET_HF_I8: return k->name_head_i8;
    case BITNET_HF_Q8_0: return k->name_head_q8_0;
    case BITNET_HF_Q4_0: return k->name_head_q4_0;
    case BITNET_HF_Q6_K: return k->name_head_q6_k;
    default: return k->name_head_f16;
    }
}

/* ---- row conversions -------------------------------------------------- */

void bitnet__head_dequant_row(int fmt, const uint8_t *r, int32_t n, float *out)
{
    switch (fmt) {
    case BITNET_HF_F32:
        memcpy(out, r, (size_t)n * sizeof(float));
        break;
    case BITNET_HF_F16:
        for (int32_t j = 0; j < n; j++)
            out[j] = bitnet__fp16_load(r + 2 * (size_t)j);
        break;
    case BITNET_HF_BF16:
        for (int32_t j = 0; j < n; j++) {
            uint16_t h;
            memcpy(&h, r + 2 * (size_t)j, 2);
            out[j] = bitnet__bf16_to_fp32(h);
        }
        break;
    case BITNET_HF_Q8_0:
        for (int32_t b = 0; b < n / 32; b++) {
            const uint8_t *blk = r + 34 * (size_t)b;
            const float d = bitnet__fp16_load(blk);
            for (int j = 0; j < 32; j++)
                out[32 * b + j] = (float)(int8_t)blk[2 + j] * d;
        }
        break;
    case BITNET_HF_Q4_0:
        for (int32_t b = 0; b < n / 32; b++) {
            const uint8_t *blk = r + 18 * (size_t)b;
            const float d = bitnet__fp16_load(blk);
            for (int j = 0; j < 16; j++) {
                out[32 * b + j] = (float)((blk[2 + j] & 0xF) - 8) * d;
                out[32 * b + j + 16] = (float)((blk[2 + j] >> 4) - 8) * d;
            }
        }
        break;
    case BITNET_HF_Q6_K:
        for (int32_t b = 0; b < n / 256; b++) {
            const uint8_t *blk = r + 210 * (size_t)b, *ql = blk, *qh = blk + 128;
            const float d = bitnet__fp16_load(blk + 208);
            const int8_t *sc = (const int8_t *)(blk + 192);
            float *o = out + 256 * b;
            for (int h = 0; h < 2; h++)
                for (int l = 0; l < 32; l++) {
                    const uint8_t lo = ql[64 * h + l], hi = ql[64 * h + l + 32];
                    const uint8_t qq = qh[32 * h + l];
                    const int e = 128 * h + l;
                    const int v0 = ((lo & 0xF) | ((qq & 3) << 4)) - 32;
                    const int v1 = ((hi & 0xF) | (((qq >> 2) & 3) << 4)) - 32;
                    const int v2 = ((lo >> 4) | (((qq >> 4) & 3) << 4)) - 32;
                    const int v3 = ((hi >> 4) | (((qq >> 6) & 3) << 4)) - 32;
                    o[e] = d * (float)sc[e / 16] * (float)v0;
                    o[e + 32] = d * (float)sc[(e + 32) / 16] * (float)v1;
                    o[e + 64] = d * (float)sc[(e + 64) / 16] * (float)v2;
                    o[e + 96] = d * (float)sc[(e + 96) / 16] * (float)v3;
                }
        }
        break;
    default:
        memset(out, 0, (size_t)n * sizeof(float));
        break;
    }
}

static int32_t clampi(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Squared error of 16 values quantised with step e to [-32, 31]. */
static float q6_err(const float *x, float e)
{
    float err = 0.0f;
    for (int j = 0; j < 16; j++) {
        const float q = (float)clampi((int32_t)nearbyintf(x[j] / e), -32, 31);
        const float d = x[j] - q * e;
        err += d * d;
    }
    return err;
}

/* Q6_K: per group of 16 a signed step that maps the value of largest
 * magnitude near -32 (the asymmetric end of [-32, 31]), the best of a few
 * candidates by squared error; the steps as int8 multiples of the block's
 * d = fp16(max |step| / 127); values round(x / (d sc)) in [-32, 31]. */
static void quant_q6_k_block(const float *x, uint8_t *blk)
{
    static const float cand[] = { 32.0f, 31.5f, 31.0f, 30.5f, 30.0f, 29.0f };
    float gs[16], smax = 0.0f;
    for (int g = 0; g < 16; g++) {
        const float *v = x + 16 * g;
        float amax = 0.0f, mx = 0.0f;
        for (int j = 0; j < 16; j++)
            if (fabsf(v[j]) > amax) { amax = fabsf(v[j]); mx = v[j]; }
        gs[g] = 0.0f;
        if (amax > 0.0f) {
            float best = INFINITY;
            for (size_t c = 0; c < sizeof(cand) / sizeof(cand[0]); c++) {
                const float e = mx / -cand[c];
                const float err = q6_err(v, e);
                if (err < best) { best = err; gs[g] = e; }
            }
        }
        if (fabsf(gs[g]) > smax) smax = fabsf(gs[g]);
    }
    const uint16_t dh = bitnet__fp32_to_fp16(smax / 127.0f);
    const float d = bitnet__fp16_to_fp32(dh);
    int8_t sc[16];
    uint8_t q[256];
    for (int g = 0; g < 16; g++) {
        sc[g] = d > 0.0f ? (int8_t)clampi((int32_t)nearbyintf(gs[g] / d), -127, 127) : 0;
        const float e = d * (float)sc[g];
        for (int j = 0; j < 16; j++) {
            int32_t v = e != 0.0f ? (int32_t)nearbyintf(x[16 * g + j] / e) : 0;
            q[16 * g + j] = (uint8_t)(clampi(v, -32, 31) + 32);
        }
    }
    uint8_t *ql = blk, *qh = blk + 128;
    memset(blk, 0, 210);
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *e = q + 128 * h + l;
            ql[64 * h + l] = (uint8_t)((e[0] & 0xF) | ((e[64] & 0xF) << 4));
            ql[64 * h + l + 32] = (uint8_t)((e[32] & 0xF) | ((e[96] & 0xF) << 4));
            qh[32 * h + l] = (uint8_t)((e[0] >> 4) | ((e[32] >> 4) << 2) |
                                       ((e[64] >> 4) << 4) | ((e[96] >> 4) << 6));
        }
    memcpy(blk + 192, sc, 16);
    memcpy(blk + 208, &dh, 2);
}

void bitnet__head_quant_row(int fmt, const float *x, int32_t cols, uint8_t *out)
{
    switch (fmt) {
    case BITNET_HF_F16:
        for (int32_t j = 0; j < cols; j++) {
            const uint16_t h = bitnet__fp32_to_fp16(x[j]);
            memcpy(out + 2 * (size_t)j, &h, 2);
        }
        break;
    case BITNET_HF_Q8_0:
        bitnet__quant_q8_0_ref(x, cols, out);
        break;
    case BITNET_HF_Q6_K:
        for (int32_t b = 0; b < cols / 256; b++)
            quant_q6_k_block(x + 256 * b, out + 210 * (size_t)b);
        break;
    default:
        break;
    }
}

float bitnet__head_quant_row_i8(const float *x, int32_t cols, int8_t *q)
{
    float amax = 0.0f;
    for (int32_t j = 0; j < cols; j++) {
        float a = fabsf(x[j]);
        if (a > amax) amax = a;
    }
    const float s = amax / 127.0f;
    if (!(s > 0.0f)) {
        memset(q, 0, (size_t)cols);
        return s;
    }
    for (int32_t j = 0; j < cols; j++) {
        /* |x/s| <= 127 (+ rounding): adding and subtracting 1.5 * 2^23
         * rounds half to even in the default rounding mode */
        float v = (x[j] / s + 12582912.0f) - 12582912.0f;
        v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
        q[j] = (int8_t)v;
    }
    return s;
}
