/*
 * Shared row-group drivers for the AArch64 ternary kernels. Each ISA file
 * defines a static inline group_dot() returning the four int32 sums t*q of
 * one row group (t = c - 1 is a signed byte here, so no sum(q) correction),
 * then instantiates BITNET_ARM_TDRIVERS(isa). Static inline only.
 */
#ifndef BITNET_ARM_TDRIVER_H
#define BITNET_ARM_TDRIVER_H

#include <arm_neon.h>

#include "kernels_impl.h"

/* t = code - 1 for field f (0..3) of 16 packed bytes */
#define BITNET_ARM_FIELD(w, f) \
    vsubq_s8(vreinterpretq_s8_u8(vandq_u8((f) == 3 ? (w) : vshrq_n_u8((w), (f) == 3 ? 1 : 6 - 2 * (f)), \
                                          vdupq_n_u8(3))), vdupq_n_s8(1))

static inline void bitnet__arm_store_group(int32x4_t t, float act_scale, float wscale,
                                           float *y, int lo, int hi)
{
    int32_t v[4];
    vst1q_s32(v, t);
    for (int i = lo; i < hi; i++)
        y[i - lo] = bitnet__tepilogue(v[i], act_scale, wscale);
}

#define BITNET_ARM_TDRIVERS(isa) \
void bitnet__tgemv_##isa(const bitnet_tmat *w, int32_t r0, int32_t r1, \
                         const int8_t *q, float act_scale, float *y) \
{ \
    const int32_t nb = w->cols_padded / 128; \
    for (int32_t g = r0 / 4; g * 4 < r1; g++) { \
        const int32_t base = g * 4; \
        const int lo = base < r0 ? r0 - base : 0; \
        const int hi = base + 4 > r1 ? r1 - base : 4; \
        int32x4_t t = group_dot(bitnet__tmat_group(w, g), q, nb); \
        bitnet__arm_store_group(t, act_scale, w->scale, y + (base + lo - r0), lo, hi); \
    } \
} \
void bitnet__tgemm_##isa(const bitnet_tmat *w, int32_t r0, int32_t r1, \
                         const int8_t *q, const float *act_scale, int32_t n, \
                         float *y, int32_t ldy) \
{ \
    const int32_t nb = w->cols_padded / 128; \
    const size_t kp = (size_t)w->cols_padded; \
    for (int32_t i0 = 0; i0 < n; i0 += 64) { \
        const int32_t nt = n - i0 < 64 ? n - i0 : 64; \
        for (int32_t g = r0 / 4; g * 4 < r1; g++) { \
            const int32_t base = g * 4; \
            const int lo = base < r0 ? r0 - base : 0; \
            const int hi = base + 4 > r1 ? r1 - base : 4; \
            const uint8_t *p = bitnet__tmat_group(w, g); \
            for (int32_t i = 0; i < nt; i++) { \
                int32x4_t t = group_dot(p, q + (size_t)(i0 + i) * kp, nb); \
                bitnet__arm_store_group(t, act_scale[i0 + i], w->scale, \
                    y + (size_t)(i0 + i) * (size_t)ldy + (base + lo - r0), lo, hi); \
            } \
        } \
    } \
}

#endif /* BITNET_ARM_TDRIVER_H */
