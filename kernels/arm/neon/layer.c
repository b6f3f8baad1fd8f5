/*
 * AArch64 Advanced SIMD (baseline) per-layer kernels (kernels/layer.h).
 * rope_norm, relu2_mul and add are bit-exact with the reference
 * (multiplications and additions in the reference's order, never fused:
 * vmulq + vaddq/vsubq, and the file is compiled with -ffp-contract=off);
 * to_f16 is FCVTN, which rounds to nearest even as the reference and may
 * give another NaN payload. attn_f16 is the AVX2 loop on 4 lanes, blocked
 * as the 32 vector registers allow (4 keys x 4 heads for the scores, 4
 * chunks x 4 heads for the V sums, as the AVX-512 variant): the
 * reference's blocks and block steps, within the bound of docs/kernels.md.
 */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "kernels_impl.h"

/* NEOX RoPE (the main table's rope; BitNet b1.58 2B4T uses it): pairs
 * (i, i + n_rot/2), the halves contiguous, so 4 pairs per step with the
 * reference's products and sums (no FMA): bit-exact. */
void bitnet__rope_neon(float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                       const float *cos_t, const float *sin_t)
{
    const int32_t half = n_rot / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *p = x + (size_t)h * (size_t)head_dim;
        int32_t i = 0;
        for (; i + 4 <= half; i += 4) {
            const float32x4_t x0 = vld1q_f32(p + i), x1 = vld1q_f32(p + i + half);
            const float32x4_t c = vld1q_f32(cos_t + i), s = vld1q_f32(sin_t + i);
            vst1q_f32(p + i, vsubq_f32(vmulq_f32(x0, c), vmulq_f32(x1, s)));
            vst1q_f32(p + i + half, vaddq_f32(vmulq_f32(x0, s), vmulq_f32(x1, c)));
        }
        for (; i < half; i++) {
            const float x0 = p[i], x1 = p[i + half];
            const float a = x0 * cos_t[i], b = x1 * sin_t[i];
            const float d = x0 * sin_t[i], e = x1 * cos_t[i];
            p[i] = a - b;
            p[i + half] = d + e;
        }
    }
}

void bitnet__rope_norm_neon(float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                            const float *cos_t, const float *sin_t)
{
    const int32_t half = n_rot / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        int32_t i = 0;
        for (; i + 4 <= half; i += 4) {
            /* LD2 splits four pairs into x0 and x1 lanes, so the tables
             * need no shuffle and ST2 interleaves the results back */
            const float32x4x2_t xv = vld2q_f32(v + 2 * i);
            const float32x4_t c = vld1q_f32(cos_t + i), s = vld1q_f32(sin_t + i);
            const float32x4_t a = vmulq_f32(xv.val[0], c), b = vmulq_f32(xv.val[1], s);
            const float32x4_t d = vmulq_f32(xv.val[0], s), e = vmulq_f32(xv.val[1], c);
            float32x4x2_t r;
            r.val[0] = vsubq_f32(a, b);
            r.val[1] = vaddq_f32(d, e);
            vst2q_f32(v + 2 * i, r);
        }
        for (; i < half; i++) {
            const float x0 = v[2 * i], x1 = v[2 * i + 1];
            const float a = x0 * cos_t[i], b = x1 * sin_t[i];
            const float d = x0 * sin_t[i], e = x1 * cos_t[i];
            v[2 * i] = a - b;
            v[2 * i + 1] = d + e;
        }
    }
}

void bitnet__relu2_mul_neon(float *restrict g, const float *restrict u, int32_t n)
{
    const float32x4_t zero = vdupq_n_f32(0.0f);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        /* g > 0 as a mask, not FMAX: -0 and NaN must give +0, as the
         * reference's comparison does (FMAX would keep a NaN) */
        const float32x4_t x = vld1q_f32(g + i);
        const float32x4_t r = vreinterpretq_f32_u32(vandq_u32(vcgtq_f32(x, zero),
                                                              vreinterpretq_u32_f32(x)));
        vst1q_f32(g + i, vmulq_f32(vmulq_f32(r, r), vld1q_f32(u + i)));
    }
    for (; i < n; i++) {
        const float r = g[i] > 0.0f ? g[i] : 0.0f;
        const float r2 = r * r;
        g[i] = r2 * u[i];
    }
}

void bitnet__add_neon(float *restrict x, const float *restrict y, int32_t n)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4)   /* y + x, the reference's operand order */
        vst1q_f32(x + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
    for (; i < n; i++)
        x[i] = y[i] + x[i];
}

void bitnet__to_f16_neon(const float *x, uint16_t *y, int32_t n)
{
    /* FCVTN in the default FPCR mode (round to nearest even, no flushing,
     * IEEE half): the reference's rounding for ties, subnormals and
     * overflow to inf */
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t h = vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(x + i)),
                                                vld1q_f32(x + i + 4));
        vst1q_u16(y + i, vreinterpretq_u16_f16(h));
    }
    for (; i < n; i++)
        y[i] = bitnet__fp32_to_fp16(x[i]);
}

/* e^x for x <= 0 (below -87: 0): the Cephes expf polynomial of the AVX2
 * variant, 2^n put into the exponent bits. A NaN stays a NaN (FMAX
 * propagates it), as the reference's expf. */
static inline float32x4_t exp_neg(float32x4_t x)
{
    const float32x4_t lo = vdupq_n_f32(-87.0f);
    const uint32x4_t under = vcltq_f32(x, lo);
    x = vmaxq_f32(x, lo);
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t y = vdupq_n_f32(1.9875691500e-4f);
    y = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), y, r);
    y = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), y, r);
    y = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), y, r);
    y = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), y, r);
    y = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), y, r);
    y = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), y, vmulq_f32(r, r));
    /* n in [-126, 0]: 2^n = (n + 127) << 23 */
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
    const float32x4_t p = vmulq_f32(y, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(p), under));
}

/* 4 fp16 values widened to fp32 */
static inline float32x4_t load_h4(const uint16_t *p)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

/* 8 fp16 values widened to two fp32 vectors: one 16-byte load for two
 * chunks (FCVTL and FCVTL2) */
static inline void load_h8(const uint16_t *p, float32x4_t *lo, float32x4_t *hi)
{
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p));
    *lo = vcvt_f32_f16(vget_low_f16(h));
    *hi = vcvt_high_f32_f16(h);
}

/* 4 fp16 values, or the first `left` (< 4) of them and zeros: a partial
 * chunk goes through a stack copy so that no load passes the row's end */
static inline float32x4_t load_h4_part(const uint16_t *p, int32_t left)
{
    if (left >= 4)
        return load_h4(p);
    uint16_t t[4] = { 0 };
    for (int32_t i = 0; i < left; i++)
        t[i] = p[i];
    return load_h4(t);
}

/* lanes i < n set (n may be <= 0 or >= 4) */
static inline uint32x4_t lane_mask(int32_t n)
{
    static const uint32_t iota[4] = { 0, 1, 2, 3 };
    return vcltq_s32(vreinterpretq_s32_u32(vld1q_u32(iota)), vdupq_n_s32(n));
}

#define GROUP 4                /* query heads per pass */
#define KEYS 4                 /* keys per score step */
#define DCH 4                  /* 4-dim chunks per V step */

/* The scores step stores KEYS lanes per head at p[h][j] with j a multiple
 * of KEYS, so a row of BITNET_ATTN_BLOCK floats must hold whole steps. */
_Static_assert(BITNET_ATTN_BLOCK % KEYS == 0, "score steps must tile a block");

/* Scores of nk (1-4) keys from kj for gh heads into p[h][j .. j+4): per
 * (head, key) one accumulator a_t over the dims in order (16 accumulators
 * for 4 x 4; each q chunk loaded once for all keys, each K chunk widened
 * once for all heads; when hd % 4 == 0, 8 dims per step from one 16-byte
 * load per key), reduced by two pairwise adds: lane t of the result is
 * (a_t[0] + a_t[1]) + (a_t[2] + a_t[3]) whatever the other keys hold, so a
 * (head, key) score does not depend on nk or gh. Lanes t >= nk get
 * 0 * scale; they stay inside the head's row and are masked by the
 * caller. */
static inline __attribute__((always_inline))
void attn_scores(const float *q, int32_t ldq, const int gh, const uint16_t *kj, const int nk,
                 int32_t hd, float scale, float *p, int32_t j, const int full)
{
    const int32_t nc = (hd + 3) / 4;
    float32x4_t a[GROUP][KEYS];
    for (int h = 0; h < GROUP; h++)
        for (int t = 0; t < KEYS; t++)
            a[h][t] = vdupq_n_f32(0.0f);
    int32_t c = 0;
    if (full)   /* two chunks per step, in order into the same a_t */
        for (; c + 2 <= nc; c += 2) {
            float32x4_t k0[KEYS], k1[KEYS];
            for (int t = 0; t < nk; t++)
                load_h8(kj + (size_t)t * (size_t)hd + 4 * c, &k0[t], &k1[t]);
            for (int h = 0; h < gh; h++) {
                const float *qh = q + (size_t)h * (size_t)ldq + 4 * c;
                const float32x4_t q0 = vld1q_f32(qh), q1 = vld1q_f32(qh + 4);
                for (int t = 0; t < nk; t++) {
                    a[h][t] = vfmaq_f32(a[h][t], q0, k0[t]);
                    a[h][t] = vfmaq_f32(a[h][t], q1, k1[t]);
                }
            }
        }
    for (; c < nc; c++) {
        float32x4_t kv[KEYS];
        for (int t = 0; t < nk; t++)
            kv[t] = full ? load_h4(kj + (size_t)t * (size_t)hd + 4 * c)
                         : load_h4_part(kj + (size_t)t * (size_t)hd + 4 * c, hd - 4 * c);
        for (int h = 0; h < gh; h++) {
            const float32x4_t qv = vld1q_f32(q + (size_t)h * (size_t)ldq + 4 * c);
            for (int t = 0; t < nk; t++)
                a[h][t] = vfmaq_f32(a[h][t], qv, kv[t]);
        }
    }
    const float32x4_t sc = vdupq_n_f32(scale);
    for (int h = 0; h < gh; h++) {
        const float32x4_t s = vpaddq_f32(vpaddq_f32(a[h][0], a[h][1]),
                                         vpaddq_f32(a[h][2], a[h][3]));
        vst1q_f32(p + h * BITNET_ATTN_BLOCK + j, vmulq_f32(s, sc));
    }
}

/* nd (1-4) chunks of a V row from vc, `left` dims of the row from vc on:
 * whole rows by 16-byte loads, else chunk by chunk (the last may be
 * partial) */
static inline __attribute__((always_inline))
void load_v(float32x4_t *vv, const uint16_t *vc, const int nd, int32_t left, const int full)
{
    int d = 0;
    if (full)
        for (; d + 2 <= nd; d += 2)
            load_h8(vc + 4 * d, &vv[d], &vv[d + 1]);
    for (; d < nd; d++)
        vv[d] = full ? load_h4(vc + 4 * d) : load_h4_part(vc + 4 * d, left - 4 * d);
}

/* o[h] = o[h] * corr[h] + sum_j p[h][j] v_j over the nb keys of a block, in
 * key order, for the nd (1-4) 4-dim chunks from chunk c: the 16
 * accumulators of 4 chunks x 4 heads stay in registers for the whole block.
 * Keys go four at a time with one load of p per head (FMLA by element);
 * that FMA equals the one-key tail's, so the order and the result are the
 * same whatever nb is. Only the row's last chunk can be partial (!full). */
static inline __attribute__((always_inline))
void attn_pv(float *o, int32_t hd, const int gh, const uint16_t *vb, int32_t nb, const float *p,
             const float *corr, int32_t c, const int nd, const int full)
{
    const int32_t nc = (hd + 3) / 4;
    const int part = !full && c + nd == nc && hd % 4 != 0;   /* last chunk partial */
    float32x4_t acc[DCH][GROUP];
    for (int d = 0; d < nd; d++)
        for (int h = 0; h < gh; h++) {
            const float *od = o + (size_t)h * hd + 4 * (c + d);
            float32x4_t ov;
            if (part && d == nd - 1) {
                float t[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
                memcpy(t, od, (size_t)(hd % 4) * sizeof(float));
                ov = vld1q_f32(t);
            } else {
                ov = vld1q_f32(od);
            }
            acc[d][h] = vmulq_f32(ov, vdupq_n_f32(corr[h]));
        }
    const uint16_t *vc = vb + 4 * c;
    int32_t j = 0;
    for (; j + 4 <= nb; j += 4) {
        float32x4_t pv[GROUP];
        for (int h = 0; h < gh; h++)
            pv[h] = vld1q_f32(p + h * BITNET_ATTN_BLOCK + j);
        /* one key: lane t of pv (a macro, the lane must be a literal) */
#define PV_KEY(t) do { \
            float32x4_t vv[DCH]; \
            load_v(vv, vc, nd, hd - 4 * c, full); \
            for (int h = 0; h < gh; h++) \
                for (int d = 0; d < nd; d++) \
                    acc[d][h] = vfmaq_laneq_f32(acc[d][h], vv[d], pv[h], t); \
            vc += hd; \
        } while (0)
        PV_KEY(0); PV_KEY(1); PV_KEY(2); PV_KEY(3);
#undef PV_KEY
    }
    for (; j < nb; j++, vc += hd) {
        float32x4_t vv[DCH];
        load_v(vv, vc, nd, hd - 4 * c, full);
        for (int h = 0; h < gh; h++) {
            const float pj = p[h * BITNET_ATTN_BLOCK + j];
            for (int d = 0; d < nd; d++)
                acc[d][h] = vfmaq_n_f32(acc[d][h], vv[d], pj);
        }
    }
    for (int d = 0; d < nd; d++)
        for (int h = 0; h < gh; h++) {
            float *od = o + (size_t)h * hd + 4 * (c + d);
            if (part && d == nd - 1) {
                float t[4];
                vst1q_f32(t, acc[d][h]);
                memcpy(od, t, (size_t)(hd % 4) * sizeof(float));
            } else {
                vst1q_f32(od, acc[d][h]);
            }
        }
}

/* The blocked online-softmax attention of the reference (docs/kernels.md),
 * up to four heads of a group per pass over K and V (gh is a constant after
 * inlining), in 4-dim chunks: four keys at a time for the scores and four
 * chunks (16 dims) at a time for the V sums, K and V rows read 8 fp16
 * values per load when hd % 4 == 0 (`full`). Each head's arithmetic does
 * not depend on its group: its score lanes, its softmax and its V sums are
 * its own and in the same order. */
static inline __attribute__((always_inline))
void attn_group(const float *q, int32_t ldq, const int gh, const uint16_t *k,
                const uint16_t *v, int32_t n_kv, int32_t hd, float scale, float *o, float *p,
                float *ml, const int full)
{
    const int32_t nc = (hd + 3) / 4;
    float m[GROUP], l[GROUP];
    for (int32_t h = 0; h < gh; h++) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
        memset(o + (size_t)h * hd, 0, (size_t)hd * sizeof(float));
    }
    for (int32_t b0 = 0; b0 < n_kv; b0 += BITNET_ATTN_BLOCK) {
        const int32_t nb = n_kv - b0 < BITNET_ATTN_BLOCK ? n_kv - b0 : BITNET_ATTN_BLOCK;
        const uint16_t *kb = k + (size_t)b0 * (size_t)hd, *vb = v + (size_t)b0 * (size_t)hd;
        int32_t j = 0;
        for (; j + KEYS <= nb; j += KEYS)
            attn_scores(q, ldq, gh, kb + (size_t)j * hd, KEYS, hd, scale, p, j, full);
        switch (nb - j) {
        case 3: attn_scores(q, ldq, gh, kb + (size_t)j * hd, 3, hd, scale, p, j, full); break;
        case 2: attn_scores(q, ldq, gh, kb + (size_t)j * hd, 2, hd, scale, p, j, full); break;
        case 1: attn_scores(q, ldq, gh, kb + (size_t)j * hd, 1, hd, scale, p, j, full); break;
        default: break;
        }
        /* p[h][0 .. nb rounded up to 4) is written now; lanes >= nb are
         * masked below */
        float corr[GROUP];
        for (int32_t h = 0; h < gh; h++) {
            float *ph = p + (size_t)h * BITNET_ATTN_BLOCK;
            /* the block maximum: exact in any order; FMAXNM returns the
             * other operand for a NaN, so a NaN score is skipped as the
             * reference's comparison skips it */
            const float32x4_t ninf = vdupq_n_f32(-INFINITY);
            float32x4_t mv = ninf;
            for (int32_t i = 0; i < nb; i += 4)
                mv = vmaxnmq_f32(vbslq_f32(lane_mask(nb - i), vld1q_f32(ph + i), ninf), mv);
            const float mb = vmaxnmvq_f32(mv);
            const float mn = m[h] > mb ? m[h] : mb;
            corr[h] = expf(m[h] - mn);
            const float32x4_t vmn = vdupq_n_f32(mn);
            float32x4_t sum = vdupq_n_f32(0.0f);
            for (int32_t i = 0; i < nb; i += 4) {
                const uint32x4_t mk = lane_mask(nb - i);
                const float32x4_t e = vreinterpretq_f32_u32(vandq_u32(mk,
                    vreinterpretq_u32_f32(exp_neg(vsubq_f32(vld1q_f32(ph + i), vmn)))));
                vst1q_f32(ph + i, e);
                sum = vaddq_f32(sum, e);
            }
            const float lc = l[h] * corr[h];
            l[h] = lc + vaddvq_f32(sum);
            m[h] = mn;
        }
        int32_t c = 0;
        for (; c + DCH <= nc; c += DCH)
            attn_pv(o, hd, gh, vb, nb, p, corr, c, DCH, full);
        switch (nc - c) {
        case 3: attn_pv(o, hd, gh, vb, nb, p, corr, c, 3, full); break;
        case 2: attn_pv(o, hd, gh, vb, nb, p, corr, c, 2, full); break;
        case 1: attn_pv(o, hd, gh, vb, nb, p, corr, c, 1, full); break;
        default: break;
        }
    }
    if (ml) {                 /* a segment: its state, o left unscaled */
        for (int32_t h = 0; h < gh; h++) {
            ml[2 * h] = m[h];
            ml[2 * h + 1] = l[h];
        }
        return;
    }
    for (int32_t h = 0; h < gh; h++) {
        const float inv = 1.0f / l[h];
        float *oh = o + (size_t)h * hd;
        int32_t d = 0;
        for (; d + 4 <= hd; d += 4)
            vst1q_f32(oh + d, vmulq_n_f32(vld1q_f32(oh + d), inv));
        for (; d < hd; d++)
            oh[d] *= inv;
    }
}

void bitnet__attn_f16_neon(const float *q, int32_t n_q, const uint16_t *k, const uint16_t *v,
                           int32_t n_kv, int32_t hd, float scale, float *out, float *ml,
                           float *work)
{
    /* rows of q padded with zeros to a multiple of 4: the scores load
     * whole chunks of q (zero times the zero-padded K tail adds 0) */
    const int32_t ldq = (hd + 3) / 4 * 4;
    for (int32_t h = 0; h < n_q; h += GROUP) {
        const int32_t gh = n_q - h < GROUP ? n_q - h : GROUP;
        /* q rounded to fp16 (docs/kernels.md) by FCVTN, round to nearest
         * even as bitnet__fp32_to_fp16, after the scores' scratch */
        float *qr = work + (size_t)gh * BITNET_ATTN_BLOCK;
        for (int32_t r = 0; r < gh; r++) {
            const float *qh = q + (size_t)(h + r) * hd;
            for (int32_t i = 0; i < ldq; i += 4) {
                float32x4_t x;
                if (i + 4 <= hd) {
                    x = vld1q_f32(qh + i);
                } else {
                    float t[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
                    memcpy(t, qh + i, (size_t)(hd - i) * sizeof(float));
                    x = vld1q_f32(t);
                }
                vst1q_f32(qr + (size_t)r * ldq + i, vcvt_f32_f16(vcvt_f16_f32(x)));
            }
        }
        float *oh = out + (size_t)h * hd, *mlh = ml ? ml + 2 * (size_t)h : NULL;
        if (hd % 4 == 0) {    /* every model's head size: no partial chunk */
            switch (gh) {
            case 4: attn_group(qr, ldq, 4, k, v, n_kv, hd, scale, oh, work, mlh, 1); break;
            case 3: attn_group(qr, ldq, 3, k, v, n_kv, hd, scale, oh, work, mlh, 1); break;
            case 2: attn_group(qr, ldq, 2, k, v, n_kv, hd, scale, oh, work, mlh, 1); break;
            default: attn_group(qr, ldq, 1, k, v, n_kv, hd, scale, oh, work, mlh, 1); break;
            }
        } else {
            switch (gh) {
            case 4: attn_group(qr, ldq, 4, k, v, n_kv, hd, scale, oh, work, mlh, 0); break;
            case 3: attn_group(qr, ldq, 3, k, v, n_kv, hd, scale, oh, work, mlh, 0); break;
            case 2: attn_group(qr, ldq, 2, k, v, n_kv, hd, scale, oh, work, mlh, 0); break;
            default: attn_group(qr, ldq, 1, k, v, n_kv, hd, scale, oh, work, mlh, 0); break;
            }
        }
    }
}
