/*
 * The kernel table. Kernels see pointers, sizes and strides only: nothing
 * here knows about models, files or tokens. Every entry has a plain C
 * reference (kernels/ref/); SIMD variants override entries at context
 * creation when the CPU (and the caller's mask) allow. See docs/kernels.md.
 */
#ifndef BITNET_KERNELS_H
#define BITNET_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- fp16 / bf16 helpers (static inline: safe to use from any ISA file) */

static inline float bitnet__fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {                       /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Round to nearest even, with overflow to inf and NaN kept quiet. */
static inline uint16_t bitnet__fp32_to_fp16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u)                       /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
    if (ax >= 0x477ff000u)                       /* rounds to >= 65520: inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) {                      /* result subnormal or 0 */
        if (ax < 0x33000000u) return (uint16_t)sign;   /* < 2^-25: 0 */
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;                /* 14..24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ax - 0x38000000u;               /* rebias 127 -> 15 */
    uint32_t lsb = (r >> 13) & 1;
    r += 0xfffu + lsb;
    return (uint16_t)(sign | (r >> 13));
}

static inline float bitnet__bf16_to_fp32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* ---- CPU features (bits are the public BITNET_CPU_* values) ----------- */

/* Detected once (thread-safe), already restricted by BITNET_CPU_MASK. */
uint32_t bitnet__cpu_detect(void);

/* ---- ternary weight matrices in kernel layout ------------------------- */

/* A ternary matrix W (rows = outputs, cols = inputs), values t in {-1,0,1}
 * times one float scale, repacked at load into the layout the kernels
 * stream (docs/kernels.md). Immutable after bitnet__tmat_pack. */
typedef struct bitnet_tmat {
    int32_t rows;             /* N: output features */
    int32_t cols;             /* K: input features */
    int32_t cols_padded;      /* K rounded up to BITNET_KPAD */
    float scale;              /* weight scale (dequantised w = scale * t) */
    uint8_t *data;            /* packed codes, 64-byte aligned, owned */
    size_t size;              /* bytes of data */
} bitnet_tmat;

/* Activation rows are padded with zeros to a multiple of this. */
#define BITNET_KPAD 128

/* Packed layout (docs/kernels.md): rows are padded to a multiple of
 * BITNET_TMAT_GROUP and stored group by group; inside a group, for each
 * 128-column block b, the 32-byte I2_S blocks (format.md §4.2: column
 * 128b + 32f + j is byte j, bits 7-2f..6-2f, code c = t + 1) of the group's
 * rows follow each other. So a group is one contiguous stream of
 * (cols_padded / 128) * BITNET_TMAT_GROUP * 32 bytes. Padding rows and
 * columns hold code 1 (t = 0). */
#define BITNET_TMAT_GROUP 4
/* Most efficient row granularity for splitting a GEMV/GEMM across threads
 * (any [r0, r1) works; ranges that are not multiples of this compute a
 * partial group at each end). */
#define BITNET_TMAT_ROW_CHUNK 16

/* Size of the packed data for a rows x cols matrix. */
size_t bitnet__tmat_packed_size(int32_t rows, int32_t cols);
/* Pack row-major ternary values t[rows*cols] in {-1,0,1} into dst (of
 * bitnet__tmat_packed_size bytes). Padding columns are zero weights. */
void bitnet__tmat_pack(uint8_t *dst, const int8_t *t, int32_t rows, int32_t cols);
/* Read back one weight (tests and slow paths). */
int bitnet__tmat_get(const bitnet_tmat *w, int32_t row, int32_t col);

/* Apply a BITNET_CPU_MASK-style string (strtoul base 0; NULL or empty =
 * no restriction; unparsable = ignored) to feature bits. */
uint32_t bitnet__cpu_apply_mask(uint32_t flags, const char *mask);
/* Features of this CPU/OS without the environment mask (detected once). */
uint32_t bitnet__cpu_detect_raw(void);

/* ---- kernel signatures ------------------------------------------------ */

#include "layer.h"

/* Per-token int8 activation quantisation (format.md §4.4): x[0..k) ->
 * q[0..kpad) (zero padded up to kpad), *scale = fp32(127/max(|x|max,1e-5)),
 * *sum = sum of q. Bit-exact across variants. */
#define decl_quant_act_fn(name) void (name)(const float *x, int32_t k, \
    int32_t kpad, int8_t *q, float *scale, int32_t *sum)

/* Ternary GEMV for one token, output rows [r0, r1):
 * y[r - r0] = (float)(sum_j t[r][j] * q[j]) / act_scale * w->scale
 * (integers exact; that float order exactly). q has w->cols_padded bytes. */
#define decl_tgemv_fn(name) void (name)(const bitnet_tmat *w, int32_t r0, \
    int32_t r1, const int8_t *q, float act_scale, float *y)

/* Ternary GEMM for n tokens: token i's activations at q + i*w->cols_padded,
 * its scale act_scale[i]; output y[i*ldy + (r - r0)] for r in [r0, r1).
 * Exactly equal to calling tgemv per token. */
#define decl_tgemm_fn(name) void (name)(const bitnet_tmat *w, int32_t r0, \
    int32_t r1, const int8_t *q, const float *act_scale, int32_t n, \
    float *y, int32_t ldy)

/* RMSNorm: sum of squares in double, mean = (float)(sum/n),
 * s = 1.0f/sqrtf(mean + eps), y[i] = (x[i]*s)*w[i]. y may alias x. */
#define decl_rmsnorm_fn(name) void (name)(const float *x, const float *w, \
    float *y, int32_t n, float eps)

/* NEOX RoPE on n_heads heads of head_dim floats each (contiguous), rotating
 * the first n_rot dims of each head: pair (i, i + n_rot/2) for i < n_rot/2,
 * with cos/sin tables of n_rot/2 entries. */
#define decl_rope_fn(name) void (name)(float *x, int32_t n_heads, \
    int32_t head_dim, int32_t n_rot, const float *cos_t, const float *sin_t)

/* In-place softmax over n values scaled first: x = softmax(x * scale);
 * max subtracted, exp, sum in double, multiply by (float)(1/sum). */
#define decl_softmax_fn(name) void (name)(float *x, int32_t n, float scale)

/* Dot products for attention. */
#define decl_dot_f16_fn(name) float (name)(const uint16_t *a, \
    const uint16_t *b, int32_t n)
/* y[0..n) += p * v[0..n), v fp16 */
#define decl_axpy_f16_fn(name) void (name)(float *y, const uint16_t *v, \
    float p, int32_t n)

/* Output heads (docs/kernels.md, "Output heads"): rows [r0, r1) of the
 * head matrix times n tokens' activations. Token i's activations are at
 * xq + i*ldx bytes, in the form bitnet__head_prepare writes for the format;
 * its logits go to y[i*ldy + (r - r0)]. The value of (row, token) depends
 * on neither n nor [r0, r1): a GEMM row equals the GEMV row, bit for bit.
 * Weights are rows of row_bytes bytes (k columns) in the file format:
 *   head_f16/f32/bf16: float activations, sum in double (reference) or
 *     reassociated within the documented bound (SIMD);
 *   head_q8_0/q4_0 (Q8_0 activation blocks), head_q6_k (Q8_K-like
 *     activation blocks): exact integer block sums, block products in float
 *     summed in 16 lanes, equal to the reference bit for bit. */
#define decl_head_fn(name) void (name)(const uint8_t *w, size_t row_bytes, \
    int32_t r0, int32_t r1, const void *xq, size_t ldx, int32_t n, \
    int32_t k, float *y, size_t ldy)

/* Int8 output head: W int8 row-major (stride ldw), per-row scales ws;
 * each token's xq holds its quant_act scale xs (a float at offset 0) and
 * its int8 activations at offset BITNET_HEAD_I8_QOFF;
 * y = (float)(sum_j W[r][j]*q[j]) * ws[r] / xs. Integers exact. */
#define decl_head_i8_fn(name) void (name)(const int8_t *w, size_t ldw, \
    const float *ws, int32_t r0, int32_t r1, const void *xq, size_t ldx, \
    int32_t n, int32_t k, float *y, size_t ldy)
#define BITNET_HEAD_I8_QOFF 64

/* Activation quantisers of the quantised heads, once per token (k a
 * multiple of 32, resp. 256). Bit-exact, reference only. */
#define decl_quant_head_fn(name) void (name)(const float *x, int32_t k, void *xq)

typedef decl_quant_act_fn(*bitnet_quant_act_fn);
typedef decl_tgemv_fn(*bitnet_tgemv_fn);
typedef decl_tgemm_fn(*bitnet_tgemm_fn);
typedef decl_rmsnorm_fn(*bitnet_rmsnorm_fn);
typedef decl_rope_fn(*bitnet_rope_fn);
typedef decl_softmax_fn(*bitnet_softmax_fn);
typedef decl_dot_f16_fn(*bitnet_dot_f16_fn);
typedef decl_axpy_f16_fn(*bitnet_axpy_f16_fn);
typedef decl_head_fn(*bitnet_head_fn);
typedef decl_head_i8_fn(*bitnet_head_i8_fn);
typedef decl_quant_head_fn(*bitnet_quant_head_fn);

typedef struct bitnet_kernels {
    bitnet_quant_act_fn quant_act;
    bitnet_tgemv_fn tgemv;
    bitnet_tgemm_fn tgemm;
    bitnet_rmsnorm_fn rmsnorm;
    bitnet_rope_fn rope;
    bitnet_softmax_fn softmax;
    bitnet_dot_f16_fn dot_f16;
    bitnet_axpy_f16_fn axpy_f16;
    /* output heads (owner of this block: the matrix kernels) */
    bitnet_head_fn head_f16, head_f32, head_bf16, head_q8_0, head_q4_0, head_q6_k;
    bitnet_head_i8_fn head_i8;
    bitnet_quant_head_fn quant_q8_0, quant_q8_k;
    /* names of the chosen variant per entry, for bitnet_system_info */
    const char *name_quant_act, *name_tgemv, *name_tgemm, *name_rmsnorm,
               *name_rope, *name_softmax, *name_dot_f16, *name_axpy_f16;
    const char *name_head_f16, *name_head_f32, *name_head_bf16, *name_head_q8_0,
               *name_head_q4_0, *name_head_q6_k, *name_head_i8, *name_quant_q8_0,
               *name_quant_q8_k;
    /* the per-layer entries (kernels/layer.h) */
    bitnet_layer_kernels layer;
} bitnet_kernels;

/* Fill the table: every _ref first, then better ISAs allowed by `flags`
 * (BITNET_CPU_* bits; pass bitnet__cpu_detect() & mask). */
void bitnet__kernels_init(bitnet_kernels *k, uint32_t flags);

/* ---- output heads: formats, descriptors, dispatch (kernels/head.c) ---- */

/* Formats of an output head in memory. The file formats keep their GGUF
 * block layouts (format.md); I8 is the per-row scaled int8 copy. */
enum bitnet_head_fmt {
    BITNET_HF_F32 = 0, BITNET_HF_F16, BITNET_HF_BF16, BITNET_HF_I8,
    BITNET_HF_Q8_0, BITNET_HF_Q4_0, BITNET_HF_Q6_K
};

/* An output head ready for the kernels: pointers and sizes only. */
typedef struct bitnet_head {
    int fmt;                  /* enum bitnet_head_fmt */
    int32_t rows, cols;       /* n_vocab x n_embd */
    const uint8_t *w;         /* row r at w + r * row_bytes */
    size_t row_bytes;         /* I8: ldw (cols padded to BITNET_KPAD) */
    const float *scale;       /* I8: per-row scales; else NULL */
    size_t xq_size;           /* bytes of one token's prepared activations
                                 (a multiple of 64) */
} bitnet_head;

/* Fill h->xq_size for h's format and size. 0, or -1 when cols does not fit
 * the format (Q8_0/Q4_0: multiple of 32, Q6_K: of 256). */
int bitnet__head_init(bitnet_head *h);
/* Once per token: x[cols] -> xq (h->xq_size bytes, 64-byte aligned). */
void bitnet__head_prepare(const bitnet_kernels *k, const bitnet_head *h,
                          const float *x, void *xq);
/* Rows [r0, r1) for n tokens (token i at xq + i * h->xq_size), logits at
 * y[i * ldy + (r - r0)]. */
void bitnet__head_rows(const bitnet_kernels *k, const bitnet_head *h,
                       int32_t r0, int32_t r1, const void *xq, int32_t n,
                       float *y, size_t ldy);

/* The variant name of the kernel a head of format fmt runs on, for logs. */
const char *bitnet__head_kernel_name(const bitnet_kernels *k, int fmt);
/* Row bytes of a cols-wide row in a file format (0 if cols does not fit). */
size_t bitnet__head_row_bytes(int fmt, int32_t cols);
/* Dequantise one row of any head/embedding format except I8 to floats. */
void bitnet__head_dequant_row(int fmt, const uint8_t *row, int32_t cols, float *out);
/* Quantise one float row into a weight format (F16, Q8_0, Q6_K; cols
 * fitting the format) for heads converted at load. */
void bitnet__head_quant_row(int fmt, const float *x, int32_t cols, uint8_t *out);
/* Int8 row with per-row scale: q[0..cols) and the scale (amax / 127). */
float bitnet__head_quant_row_i8(const float *x, int32_t cols, int8_t *q);

#endif /* BITNET_KERNELS_H */
