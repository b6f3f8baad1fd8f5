/*
 * AArch64 dotprod (SDOT) kernels: t = c - 1 and q are both s8, four
 * products per int32 lane: exact.
 */
#include <arm_neon.h>

#include "arm/tdriver.h"

static inline int32x4_t row_block(const uint8_t *p, const int8_t *q, int32x4_t acc)
{
    const uint8x16_t w0 = vld1q_u8(p), w1 = vld1q_u8(p + 16);
#define F(f) do { \
        acc = vdotq_s32(acc, BITNET_ARM_FIELD(w0, f), vld1q_s8(q + 32 * (f))); \
        acc = vdotq_s32(acc, BITNET_ARM_FIELD(w1, f), vld1q_s8(q + 32 * (f) + 16)); \
    } while (0)
    F(0); F(1); F(2); F(3);
#undef F
    return acc;
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

BITNET_ARM_TDRIVERS(dotprod)

static void i8_rows(const int8_t *w, size_t ldw, const float *ws, int32_t r0,
                    int32_t r1, const int8_t *q, float xs, int32_t k, float *y)
{
    for (int32_t r = r0; r < r1; r++) {
        const int8_t *wr = w + (size_t)r * ldw;
        int32x4_t acc0 = vdupq_n_s32(0), acc1 = acc0;
        int32_t j = 0;
        for (; j + 32 <= k; j += 32) {
            acc0 = vdotq_s32(acc0, vld1q_s8(wr + j), vld1q_s8(q + j));
            acc1 = vdotq_s32(acc1, vld1q_s8(wr + j + 16), vld1q_s8(q + j + 16));
        }
        int32_t t = vaddvq_s32(vaddq_s32(acc0, acc1));
        for (; j < k; j++)
            t += wr[j] * q[j];
        float v = (float)t * ws[r];
        y[r - r0] = v / xs;
    }
}

BITNET_HEAD_I8_DRIVER(bitnet__head_i8_dotprod, i8_rows)
