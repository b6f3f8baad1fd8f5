/*
 * AVX-512 attention over the fp16 KV cache (kernels/layer.h attn_f16): the
 * blocked online softmax of the reference (docs/kernels.md, "Attention"),
 * 16 dims per step. Zen 4 runs a 512-bit FMA in two halves, so the gain
 * over the AVX2 loop is not in the width but in the 32 registers: the
 * scores take four keys at a time (16 accumulators, each q chunk loaded
 * once for four keys) and the V sums four 16-dim chunks at a time (16
 * accumulators, each p broadcast once for 64 dims), so the FMAs are no
 * longer waiting on loads and on their own latency.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "x86/tdriver.h"

#define GROUP 4                /* query heads per pass */
#define KEYS 4                 /* keys per score step */
#define DCH 4                  /* 16-dim chunks per V step */
#ifndef ATTN_PREFETCH
#define ATTN_PREFETCH BITNET_ATTN_BLOCK   /* rows ahead: the next block */
#endif

/* e^x for x <= 0 (below -87: 0): the Cephes expf polynomial of the AVX2
 * variant, 2^n put into the exponent bits. */
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
    /* n in [-126, 0]: 2^n = (n + 127) << 23 */
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n),
                                                         _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps((__mmask16)~under, y, _mm512_castsi512_ps(e));
}

/* The sums of 16 accumulators as one vector: lane i is the sum of v[i] by
 * the same tree for every i, whatever the others hold (in each 128-bit lane
 * (e0 + e2) + (e1 + e3), then lanes (L0 + L1) + (L2 + L3)). */
static inline __m512 reduce16(const __m512 *v)
{
    __m512 t[8], u[4];
    for (int i = 0; i < 8; i++)
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                             _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int j = 0; j < 4; j++) {
        const __m512d a = _mm512_castps_pd(t[2 * j]), b = _mm512_castps_pd(t[2 * j + 1]);
        u[j] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    const __m512 c0 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512 c1 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(c0, c1, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(c0, c1, _MM_SHUFFLE(3, 1, 3, 1)));
}

static inline __mmask16 mask16(int32_t n)
{
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

/* 16 fp16 values (the first `left` of them when left < 16, zeros after) */
static inline __m512 load_h16(const uint16_t *p, int32_t left, const int full)
{
    if (full)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask16(left), p));
}

/* The rows of the next block, asked for while this block is computed: the
 * scores ask for K row j + ATTN_PREFETCH while they take key j, the V sums
 * (first chunk pass) for V row j + ATTN_PREFETCH, so that each phase's
 * FMAs cover the fetch of what the same phase needs next (at depth 4096,
 * 1 thread, 25-27 -> 33 GB/s against K 16 rows ahead and V for the current
 * block asked for during the scores, which left the memory idle during the
 * V sums). A hint, never a fault: addresses are integers, past the end of
 * the cache for the last block. */
static inline void prefetch_row(const uint16_t *row, int32_t hd)
{
    bitnet__x86_prefetch_range((uintptr_t)row + (uintptr_t)ATTN_PREFETCH * 2u * (uintptr_t)hd,
                               2 * (size_t)hd);
}

/* Scores of nk (1-4) keys from kj for gh heads into p[h][j .. j+nk): per
 * (head, key) one accumulator over the dims in order, reduced by reduce16,
 * times scale. A (head, key) score does not depend on nk or gh. */
static inline __attribute__((always_inline))
void attn_scores(const float *q, int32_t ldq, const int gh, const uint16_t *kj, const int nk,
                 int32_t hd, float scale, float *p, int32_t j, const int full)
{
    const int32_t nc = (hd + 15) / 16;
    __m512 a[GROUP][KEYS];
    for (int h = 0; h < GROUP; h++)
        for (int t = 0; t < KEYS; t++)
            a[h][t] = _mm512_setzero_ps();
    for (int32_t c = 0; c < nc; c++) {
        __m512 kv[KEYS];
        for (int t = 0; t < nk; t++)
            kv[t] = load_h16(kj + (size_t)t * (size_t)hd + 16 * c, hd - 16 * c, full);
        for (int h = 0; h < gh; h++) {
            const __m512 qv = _mm512_loadu_ps(q + (size_t)h * (size_t)ldq + 16 * c);
            for (int t = 0; t < nk; t++)
                a[h][t] = _mm512_fmadd_ps(qv, kv[t], a[h][t]);
        }
    }
    /* lane 4h + t: the score of head h, key t */
    const __m512 s = _mm512_mul_ps(reduce16(&a[0][0]), _mm512_set1_ps(scale));
    const __mmask8 mk = (__mmask8)((1u << nk) - 1);
    _mm_mask_storeu_ps(p + j, mk, _mm512_castps512_ps128(s));
    if (gh > 1) _mm_mask_storeu_ps(p + BITNET_ATTN_BLOCK + j, mk, _mm512_extractf32x4_ps(s, 1));
    if (gh > 2) _mm_mask_storeu_ps(p + 2 * BITNET_ATTN_BLOCK + j, mk, _mm512_extractf32x4_ps(s, 2));
    if (gh > 3) _mm_mask_storeu_ps(p + 3 * BITNET_ATTN_BLOCK + j, mk, _mm512_extractf32x4_ps(s, 3));
}

/* o[h] = o[h] * corr[h] + sum_j p[h][j] v_j over the nb keys of a block, in
 * key order, for the nd (1-4) 16-dim chunks from chunk c: the chunks'
 * accumulators stay in registers for the whole block. */
static inline __attribute__((always_inline))
void attn_pv(float *o, int32_t hd, const int gh, const uint16_t *vb, int32_t nb, const float *p,
             const float *corr, int32_t c, const int nd, const int full)
{
    __m512 acc[DCH][GROUP];
    __mmask16 mk[DCH];
    for (int d = 0; d < nd; d++) {
        mk[d] = full ? (__mmask16)0xffff : mask16(hd - 16 * (c + d));
        for (int h = 0; h < gh; h++)
            acc[d][h] = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk[d], o + (size_t)h * hd + 16 * (c + d)),
                                      _mm512_set1_ps(corr[h]));
    }
    const uint16_t *vc = vb + 16 * c;
    for (int32_t j = 0; j < nb; j++, vc += hd) {
        if (c == 0)
            prefetch_row(vb + (size_t)j * (size_t)hd, hd);
        __m512 vv[DCH];
        for (int d = 0; d < nd; d++)
            vv[d] = load_h16(vc + 16 * d, hd - 16 * (c + d), full);
        for (int h = 0; h < gh; h++) {
            const __m512 pb = _mm512_set1_ps(p[h * BITNET_ATTN_BLOCK + j]);
            for (int d = 0; d < nd; d++)
                acc[d][h] = _mm512_fmadd_ps(pb, vv[d], acc[d][h]);
        }
    }
    for (int d = 0; d < nd; d++)
        for (int h = 0; h < gh; h++)
            _mm512_mask_storeu_ps(o + (size_t)h * hd + 16 * (c + d), mk[d], acc[d][h]);
}

/* Up to four heads of a group per pass over K and V (gh constant after
 * inlining). Each head's arithmetic is its own and in the same order
 * whatever its group: its reduce16 lanes, its softmax, its V sums. */
static inline __attribute__((always_inline))
void attn_group(const float *q, int32_t ldq, const int gh, const uint16_t *k,
                const uint16_t *v, int32_t n_kv, int32_t hd, float scale, float *o, float *p,
                float *ml, const int full)
{
    const int32_t nc = (hd + 15) / 16;
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
        switch (nb - j) {
        case 3: attn_scores(q, ldq, gh, kb + (size_t)j * hd, 3, hd, scale, p, j, full); break;
        case 2: attn_scores(q, ldq, gh, kb + (size_t)j * hd, 2, hd, scale, p, j, full); break;
        case 1: attn_scores(q, ldq, gh, kb + (size_t)j * hd, 1, hd, scale, p, j, full); break;
        default: break;
        }
        float corr[GROUP];
        for (int32_t h = 0; h < gh; h++) {
            float *ph = p + (size_t)h * BITNET_ATTN_BLOCK;
            /* the block maximum (exact in any order; a NaN score is
             * skipped as the reference's comparison skips it) */
            __m512 mv = _mm512_set1_ps(-INFINITY);
            for (int32_t i = 0; i < nb; i += 16)
                mv = _mm512_max_ps(_mm512_mask_loadu_ps(mv, mask16(nb - i), ph + i), mv);
            const float mb = _mm512_reduce_max_ps(mv);
            const float mn = m[h] > mb ? m[h] : mb;
            corr[h] = expf(m[h] - mn);
            const __m512 vmn = _mm512_set1_ps(mn);
            __m512 sum = _mm512_setzero_ps();
            for (int32_t i = 0; i < nb; i += 16) {
                const __mmask16 mk = mask16(nb - i);
                const __m512 e = _mm512_maskz_mov_ps(mk,
                    exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, ph + i), vmn)));
                _mm512_mask_storeu_ps(ph + i, mk, e);
                sum = _mm512_add_ps(sum, e);
            }
            const float lc = l[h] * corr[h];
            l[h] = lc + _mm512_reduce_add_ps(sum);
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
        for (int32_t d = 0; d < hd; d++)
            oh[d] *= inv;
    }
}

void bitnet__attn_f16_avx512(const float *q, int32_t n_q, const uint16_t *k, const uint16_t *v,
                             int32_t n_kv, int32_t hd, float scale, float *out, float *ml,
                             float *work)
{
    const int32_t ldq = (hd + 15) / 16 * 16;
    for (int32_t h = 0; h < n_q; h += GROUP) {
        const int32_t gh = n_q - h < GROUP ? n_q - h : GROUP;
        /* q rounded to fp16 (docs/kernels.md; round to nearest even as
         * bitnet__fp32_to_fp16), after the scores' scratch, rows padded
         * with zeros to a multiple of 16 */
        float *qr = work + (size_t)gh * BITNET_ATTN_BLOCK;
        for (int32_t r = 0; r < gh; r++) {
            const float *qh = q + (size_t)(h + r) * hd;
            for (int32_t i = 0; i < ldq; i += 16) {
                const __mmask16 mk = mask16(hd - i);
                const __m256i hv = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(mk, qh + i),
                                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                _mm512_storeu_ps(qr + (size_t)r * ldq + i, _mm512_cvtph_ps(hv));
            }
        }
        float *oh = out + (size_t)h * hd, *mlh = ml ? ml + 2 * (size_t)h : NULL;
        if (hd % 16 == 0) {
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
