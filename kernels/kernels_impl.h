/*
 * Declarations of every kernel variant (internal to kernels/), and helpers
 * shared by the variants. Everything defined here is static inline: ISA
 * files include it, and an extern helper compiled with ISA flags could be
 * picked by the linker for a baseline caller.
 */
#ifndef BITNET_KERNELS_IMPL_H
#define BITNET_KERNELS_IMPL_H

#include "kernels.h"

#define BITNET_DECL_KERNELS(isa) \
    decl_quant_act_fn(bitnet__quant_act_##isa); \
    decl_tgemv_fn(bitnet__tgemv_##isa); \
    decl_tgemm_fn(bitnet__tgemm_##isa); \
    decl_rmsnorm_fn(bitnet__rmsnorm_##isa); \
    decl_rope_fn(bitnet__rope_##isa); \
    decl_softmax_fn(bitnet__softmax_##isa); \
    decl_dot_f16_fn(bitnet__dot_f16_##isa); \
    decl_axpy_f16_fn(bitnet__axpy_f16_##isa); \
    decl_head_f16_fn(bitnet__head_f16_##isa); \
    decl_head_i8_fn(bitnet__head_i8_##isa)

/* Not every ISA implements every entry; undefined ones are never referenced. */
BITNET_DECL_KERNELS(ref);
BITNET_DECL_KERNELS(avx2);
BITNET_DECL_KERNELS(avxvnni);
BITNET_DECL_KERNELS(avx512);
BITNET_DECL_KERNELS(amx);
BITNET_DECL_KERNELS(neon);
BITNET_DECL_KERNELS(dotprod);

/* Start of row group g in the packed data. */
static inline const uint8_t *bitnet__tmat_group(const bitnet_tmat *w, int32_t g)
{
    return w->data + (size_t)g * (size_t)(w->cols_padded / 128) *
                     (BITNET_TMAT_GROUP * 32);
}

/* The epilogue, in the documented order. */
static inline float bitnet__tepilogue(int32_t t, float act_scale, float wscale)
{
    float y = (float)t / act_scale;
    return y * wscale;
}

/* Round half to even with the 1.5*2^23 trick (exact for |v| < 2^22). */
static inline int32_t bitnet__round_even(float v)
{
    float f = v + 12582912.0f;
    uint32_t bits;
    memcpy(&bits, &f, 4);
    return (int32_t)(bits & 0x7fffffu) - 0x400000;
}

/* max(1e-5, max|x|) -> s, in double then rounded to float (format.md §4.4). */
static inline float bitnet__act_scale_from_max(double amax)
{
    double m = amax > 0.00001 ? amax : 0.00001;
    return (float)(127.0 / m);
}

#endif /* BITNET_KERNELS_IMPL_H */
