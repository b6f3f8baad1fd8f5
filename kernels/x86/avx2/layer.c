/*
 * AVX2 + F16C per-layer kernels. All bit-exact with the reference
 * (multiplications and additions in the reference's order, no FMA), except
 * that to_f16 may give another NaN payload. attn_f16 keeps the reference's
 * blocks and block steps, within the bound of docs/kernels.md.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels_impl.h"

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

#define GROUP 4
#ifndef ATTN_PREFETCH
#define ATTN_PREFETCH 16       /* key rows ahead */
#endif

/* The sums of four vectors of 8 as one vector of 4 (lane h: the sum of
 * a_h, depending on a_h alone). */
static inline __m128 reduce4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* The blocked online-softmax attention of the reference (docs/kernels.md),
 * up to four heads of a group per pass over K and V (gh is a constant after
 * inlining), 8 dims per step. Each head's arithmetic does not depend on its
 * group: its lanes of reduce4 and its softmax and V sums are its own. */
static inline __attribute__((always_inline))
void attn_group(const float *q, int32_t ldq, const int32_t gh, const uint16_t *k,
                const uint16_t *v, int32_t n_kv, int32_t hd, float scale, float *o, float *p)
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
        for (int32_t j = 0; j < nb; j++) {
            const uint16_t *kj = k + (size_t)(b0 + j) * (size_t)hd;
            /* the cache streams from DRAM: ask for the key ATTN_PREFETCH
             * rows ahead and for this key's V row (needed after the
             * scores) while the FMAs run; a hint, never a fault */
            for (int32_t off = 0; off < 2 * hd; off += 64) {
                _mm_prefetch((const char *)((uintptr_t)kj + (uintptr_t)ATTN_PREFETCH * 2u * (uintptr_t)hd + (uintptr_t)off), _MM_HINT_T0);
                _mm_prefetch((const char *)((uintptr_t)(v + (size_t)(b0 + j) * (size_t)hd) + (uintptr_t)off), _MM_HINT_T0);
            }
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int32_t c = 0; c < nc; c++) {
                const __m256 kv = load_h8(kj + 8 * c, hd - 8 * c);
                const float *qc = q + 8 * c;
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qc), kv, a0);
                if (gh > 1) a1 = _mm256_fmadd_ps(_mm256_loadu_ps(qc + ldq), kv, a1);
                if (gh > 2) a2 = _mm256_fmadd_ps(_mm256_loadu_ps(qc + 2 * ldq), kv, a2);
                if (gh > 3) a3 = _mm256_fmadd_ps(_mm256_loadu_ps(qc + 3 * ldq), kv, a3);
            }
            float sj[4];
            _mm_storeu_ps(sj, _mm_mul_ps(reduce4(a0, a1, a2, a3), _mm_set1_ps(scale)));
            p[j] = sj[0];
            if (gh > 1) p[BITNET_ATTN_BLOCK + j] = sj[1];
            if (gh > 2) p[2 * BITNET_ATTN_BLOCK + j] = sj[2];
            if (gh > 3) p[3 * BITNET_ATTN_BLOCK + j] = sj[3];
        }
        float corr[GROUP];
        for (int32_t h = 0; h < gh; h++) {
            float *ph = p + (size_t)h * BITNET_ATTN_BLOCK;
            float mb = -INFINITY;
            for (int32_t j = 0; j < nb; j++)
                mb = ph[j] > mb ? ph[j] : mb;
            const float mn = m[h] > mb ? m[h] : mb;
            corr[h] = expf(m[h] - mn);
            const __m256 vmn = _mm256_set1_ps(mn);
            __m256 sum = _mm256_setzero_ps();
            for (int32_t j = 0; j < nb; j += 8) {
                const __m256i mk = tail_mask(nb - j);
                const __m256 e = _mm256_and_ps(_mm256_castsi256_ps(mk),
                    exp_neg(_mm256_sub_ps(_mm256_maskload_ps(ph + j, mk), vmn)));
                _mm256_maskstore_ps(ph + j, mk, e);
                sum = _mm256_add_ps(sum, e);
            }
            const float lc = l[h] * corr[h];
            l[h] = lc + hsum8(sum);
            m[h] = mn;
        }
        for (int32_t c = 0; c < nc; c++) {
            const __m256i mk = c + 1 < nc ? _mm256_set1_epi32(-1) : lastm;
            const int32_t left = hd - 8 * c;
            float *oc = o + 8 * c;
            __m256 o0 = _mm256_mul_ps(_mm256_maskload_ps(oc, mk), _mm256_set1_ps(corr[0]));
            __m256 o1 = o0, o2 = o0, o3 = o0;
            if (gh > 1) o1 = _mm256_mul_ps(_mm256_maskload_ps(oc + hd, mk), _mm256_set1_ps(corr[1]));
            if (gh > 2) o2 = _mm256_mul_ps(_mm256_maskload_ps(oc + 2 * hd, mk), _mm256_set1_ps(corr[2]));
            if (gh > 3) o3 = _mm256_mul_ps(_mm256_maskload_ps(oc + 3 * hd, mk), _mm256_set1_ps(corr[3]));
            const uint16_t *vc = v + (size_t)b0 * (size_t)hd + 8 * c;
            for (int32_t j = 0; j < nb; j++, vc += hd) {
                const __m256 vv = load_h8(vc, left);
                o0 = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), vv, o0);
                if (gh > 1) o1 = _mm256_fmadd_ps(_mm256_set1_ps(p[BITNET_ATTN_BLOCK + j]), vv, o1);
                if (gh > 2) o2 = _mm256_fmadd_ps(_mm256_set1_ps(p[2 * BITNET_ATTN_BLOCK + j]), vv, o2);
                if (gh > 3) o3 = _mm256_fmadd_ps(_mm256_set1_ps(p[3 * BITNET_ATTN_BLOCK + j]), vv, o3);
            }
            _mm256_maskstore_ps(oc, mk, o0);
            if (gh > 1) _mm256_maskstore_ps(oc + hd, mk, o1);
            if (gh > 2) _mm256_maskstore_ps(oc + 2 * hd, mk, o2);
            if (gh > 3) _mm256_maskstore_ps(oc + 3 * hd, mk, o3);
        }
    }
    for (int32_t h = 0; h < gh; h++) {
        const float inv = 1.0f / l[h];
        float *oh = o + (size_t)h * hd;
        for (int32_t d = 0; d < hd; d++)
            oh[d] *= inv;
    }
}

void bitnet__attn_f16_avx2(const float *q, int32_t n_q, const uint16_t *k, const uint16_t *v,
                           int32_t n_kv, int32_t hd, float scale, float *out, float *work)
{
    for (int32_t h = 0; h < n_q; h += GROUP) {
        const int32_t gh = n_q - h < GROUP ? n_q - h : GROUP;
        /* q rounded to fp16 (docs/kernels.md), after the scores' scratch,
         * rows padded with zeros to a multiple of 8 */
        const int32_t ldq = (hd + 7) / 8 * 8;
        float *qr = work + (size_t)gh * BITNET_ATTN_BLOCK;
        for (int32_t r = 0; r < gh; r++) {
            const float *qh = q + (size_t)(h + r) * hd;
            for (int32_t i = 0; i < ldq; i++)
                qr[(size_t)r * ldq + i] =
                    i < hd ? bitnet__fp16_to_fp32(bitnet__fp32_to_fp16(qh[i])) : 0.0f;
        }
        float *oh = out + (size_t)h * hd;
        switch (gh) {
        case 4: attn_group(qr, ldq, 4, k, v, n_kv, hd, scale, oh, work); break;
        case 3: attn_group(qr, ldq, 3, k, v, n_kv, hd, scale, oh, work); break;
        case 2: attn_group(qr, ldq, 2, k, v, n_kv, hd, scale, oh, work); break;
        default: attn_group(qr, ldq, 1, k, v, n_kv, hd, scale, oh, work); break;
        }
    }
}
