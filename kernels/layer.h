/*
 * Per-layer kernels (included by kernels.h): everything of the forward pass
 * that is not a matrix product with the weights — RoPE and its tables,
 * the FFN gates, residual adds, the fp16 KV store and attention over the
 * fp16 KV cache. Same rules as the rest of the table: a C reference in
 * kernels/ref/layer.c, SIMD variants chosen at run time
 * (kernels/layer_init.c), each checked against the reference by
 * tests/kernels/test_layer.c. Bit-exactness per entry: docs/kernels.md.
 */
#ifndef BITNET_KERNELS_LAYER_H
#define BITNET_KERNELS_LAYER_H

#include <stddef.h>
#include <stdint.h>

/* RoPE tables for one position: theta_i = pos * theta_scale^i, computed by
 * repeated multiplication in float (theta *= theta_scale), cos_t[i] =
 * cosf(theta_i), sin_t[i] = sinf(theta_i), i < n. */
#define decl_rope_table_fn(name) void (name)(float pos, float theta_scale, \
    int32_t n, float *cos_t, float *sin_t)

/* llama "norm" RoPE (the non-NEOX one): pairs (2i, 2i+1) for i < n_rot/2 in
 * each of n_heads heads of head_dim floats; x0' = x0*c - x1*s,
 * x1' = x0*s + x1*c, products rounded, no FMA. Same signature as rope. */
#define decl_rope_norm_fn(name) void (name)(float *x, int32_t n_heads, \
    int32_t head_dim, int32_t n_rot, const float *cos_t, const float *sin_t)

/* FFN gates, in place on g: relu2: r = g > 0 ? g : 0 (so -0 and NaN give
 * 0), g = (r*r)*u. silu: g = (g / (1 + expf(-g))) * u. */
#define decl_gate_fn(name) void (name)(float *restrict g, \
    const float *restrict u, int32_t n)

/* Residual add: x[i] = y[i] + x[i]. */
#define decl_add_fn(name) void (name)(float *restrict x, \
    const float *restrict y, int32_t n)

/* fp32 -> fp16, round to nearest even (as bitnet__fp32_to_fp16; a NaN stays
 * a NaN, its payload may differ). */
#define decl_to_f16_fn(name) void (name)(const float *x, uint16_t *y, int32_t n)

/* Attention of n_q query heads that share one KV head, over the n_kv cached
 * positions: q is n_q rows of hd floats (contiguous), k and v are n_kv rows
 * of hd fp16 values (row stride hd), out is n_q rows of hd floats; work has
 * BITNET_ATTN_WORK(n_q, n_kv, hd) floats, 64-byte aligned. Each head is
 * computed alone (its result does not depend on n_q). Order of operations:
 * docs/kernels.md, "Attention". With ml == NULL out is the attention
 * output; otherwise the keys are one segment of a longer range: out gets
 * the segment's unscaled sums o and ml[2h], ml[2h + 1] its running maximum
 * m and sum l, for bitnet__attn_fold. */
#define decl_attn_f16_fn(name) void (name)(const float *q, int32_t n_q, \
    const uint16_t *k, const uint16_t *v, int32_t n_kv, int32_t hd, \
    float scale, float *out, float *ml, float *work)
#define BITNET_ATTN_BLOCK 64   /* keys per online-softmax block */
/* Keys per segment: a range of more keys is cut into segments of this many
 * (the last one shorter), computed on their own and folded in order
 * (bitnet__attn_fold), so that the segments of one head can run on several
 * threads; the cut depends on the key count only. */
#define BITNET_ATTN_SEG 1024

/* Segment s of n_q heads into the state of segments 0..s-1 (acc: n_q rows
 * of hd unscaled sums, acc_ml its (m, l) pairs): m' = max(m, m_s),
 * a = expf(m - m'), b = expf(m_s - m'), l = l*a + l_s*b, o = o*a + o_s*b,
 * products rounded, no FMA. With last, acc is then scaled by 1/l into the
 * attention output. One function for every ISA: a few hundred floats per
 * segment and head. */
void bitnet__attn_fold(float *acc, float *acc_ml, const float *seg, const float *seg_ml,
                       int32_t n_q, int32_t hd, int last);
#define BITNET_ATTN_WORK(n_q, n_kv, hd) \
    ((size_t)(n_q) * ((size_t)(n_kv) + (size_t)(hd) + BITNET_ATTN_BLOCK) + 64)

typedef decl_rope_table_fn(*bitnet_rope_table_fn);
typedef decl_rope_norm_fn(*bitnet_rope_norm_fn);
typedef decl_gate_fn(*bitnet_gate_fn);
typedef decl_add_fn(*bitnet_add_fn);
typedef decl_to_f16_fn(*bitnet_to_f16_fn);
typedef decl_attn_f16_fn(*bitnet_attn_f16_fn);

typedef struct bitnet_layer_kernels {
    bitnet_rope_table_fn rope_table;
    bitnet_rope_norm_fn rope_norm;
    bitnet_gate_fn relu2_mul;
    bitnet_gate_fn silu_mul;
    bitnet_add_fn add;
    bitnet_to_f16_fn to_f16;
    bitnet_attn_f16_fn attn_f16;
    const char *name_rope_table, *name_rope_norm, *name_relu2_mul, *name_silu_mul,
               *name_add, *name_to_f16, *name_attn_f16;
} bitnet_layer_kernels;

/* Fill: the references, then what `flags` (BITNET_CPU_* bits) allow. */
void bitnet__layer_kernels_init(bitnet_layer_kernels *k, uint32_t flags);

#define BITNET_DECL_LAYER_KERNELS(isa) \
    decl_rope_table_fn(bitnet__rope_table_##isa); \
    decl_rope_norm_fn(bitnet__rope_norm_##isa); \
    decl_gate_fn(bitnet__relu2_mul_##isa); \
    decl_gate_fn(bitnet__silu_mul_##isa); \
    decl_add_fn(bitnet__add_##isa); \
    decl_to_f16_fn(bitnet__to_f16_##isa); \
    decl_attn_f16_fn(bitnet__attn_f16_##isa)

BITNET_DECL_LAYER_KERNELS(ref);
BITNET_DECL_LAYER_KERNELS(avx2);
BITNET_DECL_LAYER_KERNELS(neon);
decl_attn_f16_fn(bitnet__attn_f16_avx512);   /* the only AVX-512 layer entry */

#endif /* BITNET_KERNELS_LAYER_H */
