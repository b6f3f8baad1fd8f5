/*
 * AVX2 + F16C per-layer kernels. All bit-exact with the reference
 * (multiplications and additions in the reference's order, no FMA), except
 * that to_f16 may give another NaN payload. attn_f16 keeps the reference's
 * blocks and block steps, within the bound of docs/kernels.md.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "x86/tdriver.h"

void bitnet__rope_norm_avx2(float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                            const float *cos_t, const float *sin_t)
{
    const int32_t half = n_rot / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        int32_t i = 0;
        for (; i + 4 <= half; i += 4) {
            const __m128 c4 = _mm_loadu_ps(cos_t + i), s4 = _mm_loadu_ps(sin_t + i);
            const __m256 c = _mm256_set_m128(_mm_unpackhi_ps(c4, c4), _mm_unpacklo_ps(c4, c4));
            const __m256 s = _mm256_set_m128(_mm_unpackhi_ps(s4, s4), _mm_unpacklo_ps(s4, s4));
            const __m256 xv = _mm256_loadu_ps(v + 2 * i);
            const __m256 xs = _mm256_permute_ps(xv, 0xb1);      /* x1 x0 pairs */
            /* even lanes x0*c - x1*s, odd lanes x1*c + x0*s */
            _mm256_storeu_ps(v + 2 * i, _mm256_addsub_ps(_mm256_mul_ps(xv, c),
                                                         _mm256_mul_ps(xs, s)));
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

/* NEOX RoPE (the main table's rope; BitNet b1.58 2B4T uses it): pairs
 * (i, i + n_rot/2), the halves contiguous, so 8 pairs per step with the
 * reference's products and sums (no FMA): bit-exact. */
void bitnet__rope_avx2(float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                       const float *cos_t, const float *sin_t)
{
    const int32_t half = n_rot / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *p = x + (size_t)h * (size_t)head_dim;
        int32_t i = 0;
        for (; i + 8 <= half; i += 8) {
            const __m256 x0 = _mm256_loadu_ps(p + i), x1 = _mm256_loadu_ps(p + i + half);
            const __m256 c = _mm256_loadu_ps(cos_t + i), s = _mm256_loadu_ps(sin_t + i);
            _mm256_storeu_ps(p + i, _mm256_sub_ps(_mm256_mul_ps(x0, c), _mm256_mul_ps(x1, s)));
            _mm256_storeu_ps(p + i + half, _mm256_add_ps(_mm256_mul_ps(x0, s), _mm256_mul_ps(x1, c)));
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

void bitnet__relu2_mul_avx2(float *restrict g, const float *restrict u, int32_t n)
{
    const __m256 zero = _mm256_setzero_ps();
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 r = _mm256_and_ps(_mm256_cmp_ps(x, zero, _CMP_GT_OQ), x);
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_mul_ps(r, r), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) {
        const float r = g[i] > 0.0f ? g[i] : 0.0f;
        const float r2 = r * r;
        g[i] = r2 * u[i];
    }
}

void bitnet__add_avx2(float *restrict x, const float *restrict y, int32_t n)
{
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++)
        x[i] = y[i] + x[i];
}

void bitnet__to_f16_avx2(const float *x, uint16_t *y, int32_t n)
{
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++)
        y[i] = bitnet__fp32_to_fp16(x[i]);
}

/* e^x for x <= 0 (below -87: 0), as the AVX-512 exp_neg: Cephes expf
 * polynomial, 2^n put into the exponent bits. */
static inline __m256 exp_neg(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.0f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* n in [-126, 0]: 2^n = (n + 127) << 23 */
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n),
                                                         _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 fp16 values, or the first `n` (< 8) of them and zeros */
static inline __m256 load_h8(const uint16_t *p, int32_t n)
{
    if (n >= 8)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    uint16_t t[8] = { 0 };
    memcpy(t, p, (size_t)n * sizeof(uint16_t));
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)t));
}

static inline __m256i tail_mask(int32_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define GROUP 4                /* query heads per pass */
#ifndef KEYS
#define KEYS 3                 /* keys per score step */
#endif
#ifndef DCH
#define DCH 3                  /* 8-dim chunks per V step */
#endif
#ifndef ATTN_PREFETCH
#define ATTN_PREFETCH BITNET_ATTN_BLOCK   /* rows ahead: the next block */
#endif

/* The sums of four vectors of 8 as one vector of 4 (lane h: the sum of
 * a_h, depending on a_h alone). */
static inline __m128 reduce4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* The rows of the next block, asked for while this block is computed (as
 * the AVX-512 variant): K row j + ATTN_PREFETCH while the scores take key
 * j, V row j + ATTN_PREFETCH during the first chunk pass of the V sums. A
 * hint, never a fault: addresses are integers, past the end of the cache
 * for the last block. */
static inline void prefetch_row(const uint16_t *row, int32_t hd)
{
    bitnet__x86_prefetch_range((uintptr_t)row + (uintptr_t)ATTN_PREFETCH * 2u * (uintptr_t)hd,
                               2 * (size_t)hd);
}

/* Scores of nk (1 or 2) keys for the gh heads: per (head, key) one 8-lane
 * accumulator over the dims in order, reduced by reduce4; the second key
 * shares the q loads of the first. A (head, key) score is the same
 * whatever nk and gh are. */
static inline __attribute__((always_inline))
void attn_scores(const float *q, int32_t ldq, const int gh, const uint16_t *kj, const int nk,
                 int32_t hd, float scale, float *p, int32_t j, const int full)
{
    const int32_t nc = (hd + 7) / 8;
    __m256 a[KEYS][GROUP];
    for (int t = 0; t < KEYS; t++)
        for (int h = 0; h < GROUP; h++)
            a[t][h] = _mm256_setzero_ps();
    for (int32_t c = 0; c < nc; c++) {
        __m256 kv[KEYS];
        for (int t = 0; t < nk; t++)
            kv[t] = full ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kj + (size_t)t * (size_t)hd + 8 * c)))
                         : load_h8(kj + (size_t)t * (size_t)hd + 8 * c, hd - 8 * c);
        const float *qc = q + 8 * c;
        for (int h = 0; h < gh; h++) {
            const __m256 qv = _mm256_loadu_ps(qc + (size_t)h * (size_t)ldq);
            for (int t = 0; t < nk; t++)
                a[t][h] = _mm256_fmadd_ps(qv, kv[t], a[t][h]);
        }
    }
    for (int t = 0; t < nk; t++) {
        float sj[4];
        _mm_storeu_ps(sj, _mm_mul_ps(reduce4(a[t][0], a[t][1], a[t][2], a[t][3]), _mm_set1_ps(scale)));
        for (int h = 0; h < gh; h++)
            p[h * BITNET_ATTN_BLOCK + j + t] = sj[h];
    }
}

/* o[h] += p[h][j] v_j over the nb keys of a block, in key order, for the
 * nd (1 or 2) 8-dim chunks at c: each chunk's accumulators stay in
 * registers for the whole block and share the broadcasts of p. */
static inline __attribute__((always_inline))
void attn_pv(float *o, int32_t hd, const int gh, const uint16_t *vb, int32_t nb, const float *p,
             const float *corr, int32_t c, const int nd, __m256i lastm, int last, const int full)
{
    __m256 acc[DCH][GROUP];
    __m256i mk[DCH];
    for (int d = 0; d < nd; d++) {
        mk[d] = !full && last && d == nd - 1 ? lastm : _mm256_set1_epi32(-1);
        for (int h = 0; h < gh; h++)
            acc[d][h] = _mm256_mul_ps(_mm256_maskload_ps(o + (size_t)h * hd + 8 * (c + d), mk[d]),
                                      _mm256_set1_ps(corr[h]));
    }
    const uint16_t *vc = vb + 8 * c;
    for (int32_t j = 0; j < nb; j++, vc += hd) {
        if (c == 0)
            prefetch_row(vb + (size_t)j * (size_t)hd, hd);
        __m256 vv[DCH];
        for (int d = 0; d < nd; d++)
            vv[d] = full ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vc + 8 * d)))
                         : load_h8(vc + 8 * d, hd - 8 * (c + d));
        for (int h = 0; h < gh; h++) {
            const __m256 pb = _mm256_set1_ps(p[h * BITNET_ATTN_BLOCK + j]);
            for (int d = 0; d < nd; d++)
                acc[d][h] = _mm256_fmadd_ps(pb, vv[d], acc[d][h]);
        }
    }
    for (int d = 0; d < nd; d++)
        for (int h = 0; h < gh; h++)
            _mm256_maskstore_ps(o + (size_t)h * hd + 8 * (c + d), mk[d], acc[d][h]);
}

/* The blocked online-softmax attention of the reference (docs/kernels.md),
 * up to four heads of a group per pass over K and V (gh is a constant after
 * inlining), 8 dims per step, keys two at a time for the scores and dims
 * sixteen at a time for the V sums. Each head's arithmetic does not depend
 * on its group or on the pairing: its lanes of reduce4, its softmax and its
 * V sums are its own and in the same order. */
static inline __attribute__((always_inline))
void attn_group(const float *q, int32_t ldq, const int gh, const uint16_t *k,
                const uint16_t *v, int32_t n_kv, int32_t hd, float scale, float *o, float *p,
                float *ml, const int full)
{
    const int32_t nc = (hd + 7) / 8;
    const __m256i lastm = tail_mask(hd - 8 * (nc - 1));
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
        for (; j + KEYS <= nb; j += KEYS) {
            for (int t = 0; t < KEYS; t++)
                prefetch_row(kb + (size_t)(j + t) * hd, hd);
            attn_scores(q, ldq, gh, kb + (size_t)j * hd, KEYS, hd, scale, p, j, full);
        }
        for (int32_t t = j; t < nb; t++)
            prefetch_row(kb + (size_t)t * hd, hd);
        for (; j < nb; j++)
            attn_scores(q, ldq, gh, kb + (size_t)j * hd, 1, hd, scale, p, j, full);
        float corr[GROUP];
        for (int32_t h = 0; h < gh; h++) {
            float *ph = p + (size_t)h * BITNET_ATTN_BLOCK;
            /* the block maximum: exact in any order; max_ps returns its
             * second operand for a NaN, so a NaN score is skipped as the
             * reference's comparison skips it */
            const __m256 ninf = _mm256_set1_ps(-INFINITY);
            __m256 mv = ninf;
            for (int32_t i = 0; i < nb; i += 8) {
                const __m256i mk = tail_mask(nb - i);
                mv = _mm256_max_ps(_mm256_blendv_ps(ninf, _mm256_maskload_ps(ph + i, mk),
                                                    _mm256_castsi256_ps(mk)), mv);
            }
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            const float mb = _mm_cvtss_f32(m4);
            const float mn = m[h] > mb ? m[h] : mb;
            corr[h] = expf(m[h] - mn);
            const __m256 vmn = _mm256_set1_ps(mn);
            __m256 sum = _mm256_setzero_ps();
            for (int32_t i = 0; i < nb; i += 8) {
                const __m256i mk = tail_mask(nb - i);
                const __m256 e = _mm256_and_ps(_mm256_castsi256_ps(mk),
                    exp_neg(_mm256_sub_ps(_mm256_maskload_ps(ph + i, mk), vmn)));
                _mm256_maskstore_ps(ph + i, mk, e);
                sum = _mm256_add_ps(sum, e);
            }
            const float lc = l[h] * corr[h];
            l[h] = lc + hsum8(sum);
            m[h] = mn;
        }
        int32_t c = 0;
        for (; c + DCH <= nc; c += DCH)
            attn_pv(o, hd, gh, vb, nb, p, corr, c, DCH, lastm, c + DCH == nc, full);
        for (; c < nc; c++)
            attn_pv(o, hd, gh, vb, nb, p, corr, c, 1, lastm, c + 1 == nc, full);
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
        for (int32_t d = 0; d < hd; d++)
            oh[d] *= inv;
    }
}

void bitnet__attn_f16_avx2(const float *q, int32_t n_q, const uint16_t *k, const uint16_t *v,
                           int32_t n_kv, int32_t hd, float scale, float *out, float *ml,
                           float *work)
{
    for (int32_t h = 0; h < n_q; h += GROUP) {
        const int32_t gh = n_q - h < GROUP ? n_q - h : GROUP;
        /* q rounded to fp16 (docs/kernels.md), after the scores' scratch,
         * rows padded with zeros to a multiple of 8 */
        const int32_t ldq = (hd + 7) / 8 * 8;
        float *qr = work + (size_t)gh * BITNET_ATTN_BLOCK;
        for (int32_t r = 0; r < gh; r++) {
            const float *qh = q + (size_t)(h + r) * hd;
            for (int32_t i = 0; i < ldq; i += 8) {   /* RNE, as bitnet__fp32_to_fp16 */
                const __m256 x = _mm256_maskload_ps(qh + i, tail_mask(hd - i));
                _mm256_storeu_ps(qr + (size_t)r * ldq + i,
                                 _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
            }
        }
        float *oh = out + (size_t)h * hd, *mlh = ml ? ml + 2 * (size_t)h : NULL;
        if (hd % 8 == 0) {    /* every model's head size: no partial chunk */
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
