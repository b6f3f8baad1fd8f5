/*
 * AVX-512 attention over the fp16 KV cache: the reference's blocks of
 * BITNET_ATTN_BLOCK keys with an online softmax, up to four query heads of
 * a GQA group at a time so that each K and V row is converted from fp16
 * once for all of them. Within a block: scores by FMA (16 dims per step,
 * reduced per key), a polynomial exp, p_j v_j accumulated by FMA in key
 * order. Each head's arithmetic is the same whatever heads it is grouped
 * with, so results do not depend on how the caller groups heads.
 * Bound against the reference: docs/kernels.md.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels_impl.h"

#define GROUP 4

/* e^x for x <= 0 (inputs below -87 give 0): n = round(x log2 e),
 * r = x - n ln 2 (two-part constant), the Cephes expf polynomial, then 2^n by
 * scalef. About 2 ulp. */
static inline __m512 exp_neg(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-87.0f);
    const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_max_ps(x, lo);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_scalef_ps((__mmask16)~under, y, n);
}

static inline __m512 load_h(const uint16_t *p, __mmask16 m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

/* gh heads (1..GROUP) of q, rows of hd floats; o the matching outputs. */
static void attn_group(const float *q, int32_t gh, const uint16_t *k, const uint16_t *v,
                       int32_t n_kv, int32_t hd, float scale, float *o, float *p)
{
    const int32_t nc = (hd + 15) / 16;
    const __mmask16 last = (__mmask16)(hd % 16 ? (1u << (hd % 16)) - 1 : 0xffffu);
    float m[GROUP], l[GROUP];
    for (int32_t h = 0; h < gh; h++) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
        memset(o + (size_t)h * hd, 0, (size_t)hd * sizeof(float));
    }
    for (int32_t b0 = 0; b0 < n_kv; b0 += BITNET_ATTN_BLOCK) {
        const int32_t nb = n_kv - b0 < BITNET_ATTN_BLOCK ? n_kv - b0 : BITNET_ATTN_BLOCK;
        /* scores: p[h][j] */
        for (int32_t j = 0; j < nb; j++) {
            const uint16_t *kj = k + (size_t)(b0 + j) * (size_t)hd;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int32_t c = 0; c < nc; c++) {
                const __mmask16 mk = c + 1 < nc ? (__mmask16)0xffff : last;
                const __m512 kv = load_h(kj + 16 * c, mk);
                const float *qc = q + 16 * c;
                a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, qc), kv, a0);
                if (gh > 1)
                    a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, qc + hd), kv, a1);
                if (gh > 2)
                    a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, qc + 2 * hd), kv, a2);
                if (gh > 3)
                    a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, qc + 3 * hd), kv, a3);
            }
            p[j] = _mm512_reduce_add_ps(a0) * scale;
            if (gh > 1) p[BITNET_ATTN_BLOCK + j] = _mm512_reduce_add_ps(a1) * scale;
            if (gh > 2) p[2 * BITNET_ATTN_BLOCK + j] = _mm512_reduce_add_ps(a2) * scale;
            if (gh > 3) p[3 * BITNET_ATTN_BLOCK + j] = _mm512_reduce_add_ps(a3) * scale;
        }
        /* online softmax per head */
        float corr[GROUP];
        for (int32_t h = 0; h < gh; h++) {
            float *ph = p + (size_t)h * BITNET_ATTN_BLOCK;
            __m512 mx = _mm512_set1_ps(-INFINITY);
            for (int32_t j = 0; j < nb; j += 16) {
                const __mmask16 mk = nb - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nb - j)) - 1);
                mx = _mm512_mask_max_ps(mx, mk, mx, _mm512_maskz_loadu_ps(mk, ph + j));
            }
            const float mb = _mm512_reduce_max_ps(mx);
            const float mn = m[h] > mb ? m[h] : mb;
            corr[h] = expf(m[h] - mn);
            const __m512 vmn = _mm512_set1_ps(mn);
            __m512 sum = _mm512_setzero_ps();
            for (int32_t j = 0; j < nb; j += 16) {
                const __mmask16 mk = nb - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nb - j)) - 1);
                const __m512 e = _mm512_maskz_mov_ps(mk, exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, ph + j), vmn)));
                _mm512_mask_storeu_ps(ph + j, mk, e);
                sum = _mm512_add_ps(sum, e);
            }
            l[h] = l[h] * corr[h] + _mm512_reduce_add_ps(sum);
            m[h] = mn;
        }
        /* o = o*corr + sum_j p_j v_j, one 16-dim chunk at a time */
        for (int32_t c = 0; c < nc; c++) {
            const __mmask16 mk = c + 1 < nc ? (__mmask16)0xffff : last;
            float *oc = o + 16 * c;
            __m512 o0 = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, oc), _mm512_set1_ps(corr[0]));
            __m512 o1 = o0, o2 = o0, o3 = o0;
            if (gh > 1) o1 = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, oc + hd), _mm512_set1_ps(corr[1]));
            if (gh > 2) o2 = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, oc + 2 * hd), _mm512_set1_ps(corr[2]));
            if (gh > 3) o3 = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, oc + 3 * hd), _mm512_set1_ps(corr[3]));
            const uint16_t *vc = v + (size_t)b0 * (size_t)hd + 16 * c;
            for (int32_t j = 0; j < nb; j++, vc += hd) {
                const __m512 vv = load_h(vc, mk);
                o0 = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), vv, o0);
                if (gh > 1) o1 = _mm512_fmadd_ps(_mm512_set1_ps(p[BITNET_ATTN_BLOCK + j]), vv, o1);
                if (gh > 2) o2 = _mm512_fmadd_ps(_mm512_set1_ps(p[2 * BITNET_ATTN_BLOCK + j]), vv, o2);
                if (gh > 3) o3 = _mm512_fmadd_ps(_mm512_set1_ps(p[3 * BITNET_ATTN_BLOCK + j]), vv, o3);
            }
            _mm512_mask_storeu_ps(oc, mk, o0);
            if (gh > 1) _mm512_mask_storeu_ps(oc + hd, mk, o1);
            if (gh > 2) _mm512_mask_storeu_ps(oc + 2 * hd, mk, o2);
            if (gh > 3) _mm512_mask_storeu_ps(oc + 3 * hd, mk, o3);
        }
    }
    for (int32_t h = 0; h < gh; h++) {
        const __m512 inv = _mm512_set1_ps(1.0f / l[h]);
        float *oh = o + (size_t)h * hd;
        for (int32_t c = 0; c < nc; c++) {
            const __mmask16 mk = c + 1 < nc ? (__mmask16)0xffff : last;
            _mm512_mask_storeu_ps(oh + 16 * c, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, oh + 16 * c), inv));
        }
    }
}

void bitnet__attn_f16_avx512(const float *q, int32_t n_q, const uint16_t *k, const uint16_t *v,
                             int32_t n_kv, int32_t hd, float scale, float *out, float *work)
{
    for (int32_t h = 0; h < n_q; h += GROUP) {
        const int32_t gh = n_q - h < GROUP ? n_q - h : GROUP;
        /* q rounded to fp16 (docs/kernels.md), after the scores' scratch */
        float *qr = work + (size_t)gh * BITNET_ATTN_BLOCK;
        const float *qh = q + (size_t)h * hd;
        for (int32_t i = 0; i < gh * hd; i++)
            qr[i] = bitnet__fp16_to_fp32(bitnet__fp32_to_fp16(qh[i]));
        attn_group(qr, gh, k, v, n_kv, hd, scale, out + (size_t)h * hd, work);
    }
}
