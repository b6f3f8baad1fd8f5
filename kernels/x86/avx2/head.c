/*
 * AVX2 output heads other than F16 (that one is in float.c; docs/kernels.md,
 * "Output heads"): one-token row functions under the multi-token drivers
 * of kernels_impl.h. The int8 and quantised heads give the reference's
 * integers and floats exactly.
 */
#include <immintrin.h>

#include "x86/tdriver.h"

static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* int8 x int8 head: both sign-extended to int16 and vpmaddwd (exact for
 * every int8 input, including -128). */
static void i8_rows(const int8_t *w, size_t ldw, const float *ws, int32_t r0,
                    int32_t r1, const int8_t *q, float xs, int32_t k, float *y)
{
    for (int32_t r = r0; r < r1; r++) {
        const int8_t *wr = w + (size_t)r * ldw;
        __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
        int32_t j = 0;
        for (; j + 32 <= k; j += 32) {
            __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wr + j)));
            __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wr + j + 16)));
            __m256i x0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + j)));
            __m256i x1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + j + 16)));
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(w0, x0));
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(w1, x1));
        }
        int32_t t = bitnet__x86_hsum_epi32(_mm256_add_epi32(acc0, acc1));
        for (; j < k; j++)
            t += wr[j] * q[j];
        float v = (float)t * ws[r];
        y[r - r0] = v / xs;
    }
}

/* ---- quantised heads ---------------------------------------------------- */

/* Eight vectors of eight int32 -> one vector of their eight sums. */
static inline __m256i hsum8x8(const __m256i *v)
{
    const __m256i t0 = _mm256_hadd_epi32(v[0], v[1]), t1 = _mm256_hadd_epi32(v[2], v[3]);
    const __m256i t2 = _mm256_hadd_epi32(v[4], v[5]), t3 = _mm256_hadd_epi32(v[6], v[7]);
    const __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);
    return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20),
                            _mm256_permute2x128_si256(u0, u1, 0x31));
}

/* The 16 float lanes (lo: blocks b % 16 < 8, hi: the others) folded in the
 * reference order: i + 8, then + 4, + 2, + 1. */
static inline float fold16(__m256 lo, __m256 hi)
{
    return hsum_ps(_mm256_add_ps(lo, hi));
}

/* int32 sum of one Q8_0 block pair product, as 8 lanes: |w| x sign(x, w)
 * (x is never -128: Q8_0 activations are in [-127, 127]). */
static inline __m256i q8_block(const uint8_t *wq, const uint8_t *xq)
{
    const __m256i w = _mm256_loadu_si256((const __m256i *)wq);
    const __m256i x = _mm256_loadu_si256((const __m256i *)xq);
    const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static inline __m256i q4_block(const uint8_t *wq, const uint8_t *xq)
{
    const __m128i b = _mm_loadu_si128((const __m128i *)wq);
    const __m128i m = _mm_set1_epi8(0xF);
    const __m256i w = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
    const __m256i x = _mm256_loadu_si256((const __m256i *)xq);
    /* (w - 8) x = w x - 8 x, pair sums within int16 */
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(w, x),
                                       _mm256_slli_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), x), 3));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* Q8_0 (wbs = 34) and Q4_0 (wbs = 18) rows against Q8_0 activations. */
#define QROWS(name, wbs, block) \
static void name(const uint8_t *w, size_t row_bytes, int32_t r0, int32_t r1, \
                 const void *xq, int32_t k, float *y) \
{ \
    const uint8_t *a = xq; \
    const int32_t nb = k / 32; \
    const float *xd = (const float *)(const void *)(a + bitnet__q8_0_xd_off(k)); \
    for (int32_t r = r0; r < r1; r++) { \
        const uint8_t *wr = w + (size_t)r * row_bytes; \
        __m256 lo = _mm256_setzero_ps(), hi = lo; \
        for (int32_t b0 = 0; b0 < nb; b0 += 8) { \
            const int nv = nb - b0 < 8 ? nb - b0 : 8; \
            __m256i s[8]; \
            uint16_t dw[8] = { 0 }; \
            const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(nv), \
                                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); \
            for (int i = 0; i < 8; i++) { \
                if (i < nv) { \
                    const uint8_t *wb = wr + (size_t)(b0 + i) * (wbs), *ab = a + (size_t)(b0 + i) * 34; \
                    _mm_prefetch((const char *)((uintptr_t)wb + 1024), _MM_HINT_T0); \
                    s[i] = block(wb + 2, ab + 2); \
                    memcpy(&dw[i], wb, 2); \
                } else { \
                    s[i] = _mm256_setzero_si256(); \
                } \
            } \
            const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_setr_epi16((short)dw[0], (short)dw[1], \
                (short)dw[2], (short)dw[3], (short)dw[4], (short)dw[5], (short)dw[6], (short)dw[7])), \
                                           _mm256_maskload_ps(xd + b0, live)); \
            __m256 p = _mm256_mul_ps(_mm256_cvtepi32_ps(hsum8x8(s)), d); \
            if (nv < 8) /* lanes without a block add nothing (not even 0 * inf) */ \
                p = _mm256_and_ps(p, _mm256_castsi256_ps(live)); \
            if ((b0 / 8) & 1) \
                hi = _mm256_add_ps(hi, p); \
            else \
                lo = _mm256_add_ps(lo, p); \
        } \
        y[r - r0] = fold16(lo, hi); \
    } \
}
QROWS(q8_0_rows, 34, q8_block)
QROWS(q4_0_rows, 18, q4_block)

/* Q6_K: the 6-bit codes (0..63) of a 32-column slice times x as int16 pair
 * sums (|.| <= 16128), times the two 16-column group scales (lanes 0-7,
 * 8-15, picked by a byte shuffle from the block's 16 scales) with
 * vpmaddwd; the codes' -32 comes off once per block as 32 sum_g scale_g
 * bsum_g. Exact int32: the reference's integers. */
static inline __m256i q6k_block(const uint8_t *wb, const bitnet_q8k_block *a)
{
    const __m256i m4 = _mm256_set1_epi8(0xF), m30 = _mm256_set1_epi8(0x30);
    const __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wb + 192)));
    __m256i s = _mm256_slli_epi32(_mm256_madd_epi16(sc, _mm256_loadu_si256((const __m256i *)a->bsums)), 5);
    s = _mm256_sub_epi32(_mm256_setzero_si256(), s);
    for (int h = 0; h < 2; h++) {
        /* both 128-bit lanes: the int16 scales of groups 8h .. 8h + 8 */
        const __m256i t = h ? _mm256_permute2x128_si256(sc, sc, 0x11)
                            : _mm256_permute2x128_si256(sc, sc, 0x00);
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(wb + 64 * h));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(wb + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(wb + 128 + 32 * h));
        __m256i c[4];
        c[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
        c[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
        c[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30));
        c[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
        for (int f = 0; f < 4; f++) {
            /* int16 word 2f of t in the low lane, 2f + 1 in the high one */
            const char lo = (char)(4 * f), hi = (char)(4 * f + 2);
            const __m256i ctl = _mm256_setr_epi8(lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1,
                                                 lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1,
                                                 hi, hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1,
                                                 hi, hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1);
            const __m256i x = _mm256_loadu_si256((const __m256i *)(a->qs + 128 * h + 32 * f));
            s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(c[f], x),
                                                      _mm256_shuffle_epi8(t, ctl)));
        }
    }
    return s;
}

/* Blocks in runs of 8 (lanes b % 16 < 8 in lo, the others in hi): the
 * integer sums in one vector, then the reference's (float)s * (d_w d_x). */
static void q6_k_rows(const uint8_t *w, size_t row_bytes, int32_t r0, int32_t r1,
                      const void *xq, int32_t k, float *y)
{
    const bitnet_q8k_block *a = xq;
    const int32_t nb = k / 256;
    for (int32_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + (size_t)r * row_bytes;
        __m256 lo = _mm256_setzero_ps(), hi = lo;
        for (int32_t b0 = 0; b0 < nb; b0 += 8) {
            const int nv = nb - b0 < 8 ? nb - b0 : 8;
            __m256i s[8];
            float d[8];
            for (int i = 0; i < 8; i++) {
                if (i < nv) {
                    const uint8_t *wb = wr + 210 * (size_t)(b0 + i);
                    _mm_prefetch((const char *)((uintptr_t)wb + 1024), _MM_HINT_T0);
                    _mm_prefetch((const char *)((uintptr_t)wb + 1024 + 64), _MM_HINT_T0);
                    _mm_prefetch((const char *)((uintptr_t)wb + 1024 + 128), _MM_HINT_T0);
                    _mm_prefetch((const char *)((uintptr_t)wb + 1024 + 192), _MM_HINT_T0);
                    s[i] = q6k_block(wb, a + b0 + i);
                    uint16_t hw;
                    memcpy(&hw, wb + 208, 2);
                    d[i] = _cvtsh_ss(hw) * a[b0 + i].d;
                } else {
                    s[i] = _mm256_setzero_si256();
                    d[i] = 0.0f;
                }
            }
            __m256 p = _mm256_mul_ps(_mm256_cvtepi32_ps(hsum8x8(s)),
                                     _mm256_setr_ps(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]));
            if (nv < 8) /* lanes without a block add nothing (not even 0 * inf) */
                p = _mm256_and_ps(p, _mm256_castsi256_ps(_mm256_cmpgt_epi32(
                        _mm256_set1_epi32(nv), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))));
            if ((b0 / 8) & 1)
                hi = _mm256_add_ps(hi, p);
            else
                lo = _mm256_add_ps(lo, p);
        }
        y[r - r0] = fold16(lo, hi);
    }
}

BITNET_HEAD_DRIVER(bitnet__head_q8_0_avx2, q8_0_rows)
BITNET_HEAD_DRIVER(bitnet__head_q4_0_avx2, q4_0_rows)
BITNET_HEAD_DRIVER(bitnet__head_q6_k_avx2, q6_k_rows)
BITNET_HEAD_I8_DRIVER(bitnet__head_i8_avx2, i8_rows)
