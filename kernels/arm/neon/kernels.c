/*
 * AArch64 Advanced SIMD (baseline) kernels. Ternary products: t = c - 1 as
 * s8 times q with widening multiply-accumulate into int16 (at most 16
 * products of |t*q| <= 256 per lane per block), folded into int32 once per
 * block: exact.
 */
#include <arm_neon.h>
#include <math.h>

#include "arm/tdriver.h"

static inline int32x4_t row_block(const uint8_t *p, const int8_t *q, int32x4_t acc)
{
    const uint8x16_t w0 = vld1q_u8(p), w1 = vld1q_u8(p + 16);
    int16x8_t s = vdupq_n_s16(0);
#define F(f) do { \
        const int8x16_t t0 = BITNET_ARM_FIELD(w0, f), t1 = BITNET_ARM_FIELD(w1, f); \
        const int8x16_t q0 = vld1q_s8(q + 32 * (f)), q1 = vld1q_s8(q + 32 * (f) + 16); \
        s = vmlal_s8(s, vget_low_s8(t0), vget_low_s8(q0)); \
        s = vmlal_high_s8(s, t0, q0); \
        s = vmlal_s8(s, vget_low_s8(t1), vget_low_s8(q1)); \
        s = vmlal_high_s8(s, t1, q1); \
    } while (0)
    F(0); F(1); F(2); F(3);
#undef F
    return vpadalq_s16(acc, s);
}

static inline int32x4_t group_dot(const uint8_t *p, const int8_t *q, int32_t nb)
{
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
    for (int32_t b = 0; b < nb; b++, p += 128, q += 128) {
        a0 = row_block(p, q, a0);
        a1 = row_block(p + 32, q, a1);
        a2 = row_block(p + 64, q, a2);
        a3 = row_block(p + 96, q, a3);
    }
    return vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3));
}

BITNET_ARM_TDRIVERS(neon)

void bitnet__quant_act_neon(const float *x, int32_t k, int32_t kpad, int8_t *q,
                            float *scale, int32_t *sum)
{
    float32x4_t mx = vdupq_n_f32(0.0f);
    int32_t i = 0;
    for (; i + 4 <= k; i += 4)   /* maxNum: a NaN |x| leaves the accumulator */
        mx = vmaxnmq_f32(mx, vabsq_f32(vld1q_f32(x + i)));
    float m = vmaxnmvq_f32(mx);
    for (; i < k; i++) {
        float a = fabsf(x[i]);
        if (a > m) m = a;
    }
    const float s = bitnet__act_scale_from_max((double)m);
    int32_t total = 0;
    for (i = 0; i + 16 <= k; i += 16) {
        int32x4_t v[4];
        for (int j = 0; j < 4; j++)   /* FCVTNS: round to nearest, ties even */
            v[j] = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + i + 4 * j), s));
        int16x8_t h0 = vcombine_s16(vqmovn_s32(v[0]), vqmovn_s32(v[1]));
        int16x8_t h1 = vcombine_s16(vqmovn_s32(v[2]), vqmovn_s32(v[3]));
        int8x16_t b = vcombine_s8(vqmovn_s16(h0), vqmovn_s16(h1));
        vst1q_s8(q + i, b);
        total += vaddlvq_s8(b);
    }
    for (; i < k; i++) {
        int32_t r = bitnet__round_even(x[i] * s);
        r = r < -128 ? -128 : r > 127 ? 127 : r;
        q[i] = (int8_t)r;
        total += r;
    }
    if (kpad > k)
        memset(q + k, 0, (size_t)(kpad - k));
    *scale = s;
    *sum = total;
}

static void i8_rows(const int8_t *w, size_t ldw, const float *ws, int32_t r0,
                    int32_t r1, const int8_t *q, float xs, int32_t k, float *y)
{
    for (int32_t r = r0; r < r1; r++) {
        const int8_t *wr = w + (size_t)r * ldw;
        int32x4_t acc = vdupq_n_s32(0);
        int32_t j = 0;
        for (; j + 16 <= k; j += 16) {
            const int8x16_t a = vld1q_s8(wr + j), b = vld1q_s8(q + j);
            acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
            acc = vpadalq_s16(acc, vmull_high_s8(a, b));
        }
        int32_t t = vaddvq_s32(acc);
        for (; j < k; j++)
            t += wr[j] * q[j];
        float v = (float)t * ws[r];
        y[r - r0] = v / xs;
    }
}

static inline float32x4_t load_h4(const uint16_t *p)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

float bitnet__dot_f16_neon(const uint16_t *a, const uint16_t *b, int32_t n)
{
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0;
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        acc0 = vfmaq_f32(acc0, load_h4(a + i), load_h4(b + i));
        acc1 = vfmaq_f32(acc1, load_h4(a + i + 4), load_h4(b + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++)
        s += bitnet__fp16_to_fp32(a[i]) * bitnet__fp16_to_fp32(b[i]);
    return s;
}

void bitnet__axpy_f16_neon(float *y, const uint16_t *v, float p, int32_t n)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4)   /* multiply, then add: as the reference */
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_n_f32(load_h4(v + i), p)));
    for (; i < n; i++) {
        float t = p * bitnet__fp16_to_fp32(v[i]);
        y[i] = y[i] + t;
    }
}

/* Per row: two accumulators over 8-column steps, then a scalar tail, in
 * the two-row and the one-row loop alike (a row's value does not depend on
 * its neighbours: the multi-token driver relies on it). */
static void f16_rows(const uint8_t *wb, size_t row_bytes, int32_t r0, int32_t r1,
                     const void *xq, int32_t k, float *y)
{
    const uint16_t *w = (const uint16_t *)(const void *)wb;
    const size_t ldw = row_bytes / 2;
    const float *x = xq;
    int32_t r = r0;
    for (; r + 2 <= r1; r += 2) {
        const uint16_t *a = w + (size_t)r * ldw, *b = a + ldw;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, b0 = a0, b1 = a0;
        int32_t j = 0;
        for (; j + 8 <= k; j += 8) {
            const float32x4_t x0 = vld1q_f32(x + j), x1 = vld1q_f32(x + j + 4);
            a0 = vfmaq_f32(a0, load_h4(a + j), x0);
            a1 = vfmaq_f32(a1, load_h4(a + j + 4), x1);
            b0 = vfmaq_f32(b0, load_h4(b + j), x0);
            b1 = vfmaq_f32(b1, load_h4(b + j + 4), x1);
        }
        float sa = vaddvq_f32(vaddq_f32(a0, a1)), sb = vaddvq_f32(vaddq_f32(b0, b1));
        for (; j < k; j++) {
            sa += bitnet__fp16_to_fp32(a[j]) * x[j];
            sb += bitnet__fp16_to_fp32(b[j]) * x[j];
        }
        y[r - r0] = sa;
        y[r + 1 - r0] = sb;
    }
    for (; r < r1; r++) {
        const uint16_t *a = w + (size_t)r * ldw;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
        int32_t j = 0;
        for (; j + 8 <= k; j += 8) {
            a0 = vfmaq_f32(a0, load_h4(a + j), vld1q_f32(x + j));
            a1 = vfmaq_f32(a1, load_h4(a + j + 4), vld1q_f32(x + j + 4));
        }
        float sa = vaddvq_f32(vaddq_f32(a0, a1));
        for (; j < k; j++)
            sa += bitnet__fp16_to_fp32(a[j]) * x[j];
        y[r - r0] = sa;
    }
}

BITNET_HEAD_DRIVER(bitnet__head_f16_neon, f16_rows)
BITNET_HEAD_I8_DRIVER(bitnet__head_i8_neon, i8_rows)
