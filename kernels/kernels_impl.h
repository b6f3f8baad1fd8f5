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
    decl_head_fn(bitnet__head_f16_##isa); \
    decl_head_fn(bitnet__head_f32_##isa); \
    decl_head_fn(bitnet__head_bf16_##isa); \
    decl_head_fn(bitnet__head_q8_0_##isa); \
    decl_head_fn(bitnet__head_q4_0_##isa); \
    decl_head_fn(bitnet__head_q6_k_##isa); \
    decl_head_i8_fn(bitnet__head_i8_##isa); \
    decl_quant_head_fn(bitnet__quant_q8_0_##isa); \
    decl_quant_head_fn(bitnet__quant_q8_k_##isa)

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

/* ---- output-head helpers ---------------------------------------------- */

/* A token's Q8_0 activations (heads Q8_0 and Q4_0): k / 32 blocks of 34
 * bytes (fp16 d, 32 int8), then from the next 64-byte boundary the blocks'
 * d as float and their sums of q as int32 (k / 32 of each), for kernels
 * that take a block's scale or sum without a gather. */
static inline size_t bitnet__q8_0_xd_off(int32_t k)
{
    return ((size_t)k / 32 * 34 + 63) / 64 * 64;
}

/* Activation block of the Q6_K head (k / 256 of them per token): bsums[g]
 * is the sum of qs[16 g .. 16 g + 16) (|.| <= 2032), so that a kernel can
 * take sum (c - 32) x as sum c x - 32 bsum per 16-column group. */
typedef struct bitnet_q8k_block {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
} bitnet_q8k_block;

static inline float bitnet__fp16_load(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return bitnet__fp16_to_fp32(h);
}

/* The quantised heads' float order: block products p_b go to lane b % 16
 * in block order, then lanes fold pairwise (i += i + 8, + 4, + 2, + 1). */
static inline float bitnet__lanes16_fold(float *acc)
{
    for (int w = 8; w >= 1; w >>= 1)
        for (int i = 0; i < w; i++)
            acc[i] = acc[i] + acc[i + w];
    return acc[0];
}

/*
 * Multi-token head drivers. An ISA provides a static one-token row
 * function whose per-row value does not depend on the range it is given;
 * the driver walks the rows in blocks of BITNET_HEAD_RBLOCK and runs every
 * token over a block, so that each row comes from memory once and from
 * cache for the other tokens.
 */
#define BITNET_HEAD_RBLOCK 16
#define BITNET_HEAD_DRIVER(name, rows_fn) \
void name(const uint8_t *w, size_t row_bytes, int32_t r0, int32_t r1, \
          const void *xq, size_t ldx, int32_t n, int32_t k, float *y, size_t ldy) \
{ \
    if (n == 1) { \
        rows_fn(w, row_bytes, r0, r1, xq, k, y); \
        return; \
    } \
    for (int32_t b0 = r0; b0 < r1; b0 += BITNET_HEAD_RBLOCK) { \
        const int32_t b1 = r1 - b0 < BITNET_HEAD_RBLOCK ? r1 : b0 + BITNET_HEAD_RBLOCK; \
        for (int32_t t = 0; t < n; t++) \
            rows_fn(w, row_bytes, b0, b1, (const uint8_t *)xq + (size_t)t * ldx, k, \
                    y + (size_t)t * ldy + (size_t)(b0 - r0)); \
    } \
}
#define BITNET_HEAD_I8_DRIVER(name, rows_fn) \
void name(const int8_t *w, size_t ldw, const float *ws, int32_t r0, int32_t r1, \
          const void *xq, size_t ldx, int32_t n, int32_t k, float *y, size_t ldy) \
{ \
    for (int32_t b0 = r0; b0 < r1; b0 += (n == 1 ? r1 - r0 : BITNET_HEAD_RBLOCK)) { \
        const int32_t b1 = n == 1 || r1 - b0 < BITNET_HEAD_RBLOCK ? r1 : b0 + BITNET_HEAD_RBLOCK; \
        for (int32_t t = 0; t < n; t++) { \
            const uint8_t *xt = (const uint8_t *)xq + (size_t)t * ldx; \
            float xs; \
            memcpy(&xs, xt, sizeof(xs)); \
            rows_fn(w, ldw, ws, b0, b1, (const int8_t *)(xt + BITNET_HEAD_I8_QOFF), xs, k, \
                    y + (size_t)t * ldy + (size_t)(b0 - r0)); \
        } \
    } \
}

#endif /* BITNET_KERNELS_IMPL_H */
