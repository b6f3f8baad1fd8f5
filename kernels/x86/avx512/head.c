/*
 * AVX-512 output heads other than F16 (that one is in float.c;
 * docs/kernels.md, "Output heads"): one-token row functions under the
 * multi-token drivers of kernels_impl.h.
 */
#include <immintrin.h>

#include "kernels_impl.h"

/* Rows are forward streams: prefetch this many bytes ahead (past a row's
 * end that is the next rows, which come next). */
#ifndef HEAD_PREFETCH
#define HEAD_PREFETCH 4096
#endif

/* int8 x int8 head with vpdpbusd: (w + 128) is a u8, so
 * sum w*q = sum (w ^ 0x80) * q - 128 * sum q, exact in int32. */
static void i8_rows(const int8_t *w, size_t ldw, const float *ws, int32_t r0,
                    int32_t r1, const int8_t *q, float xs, int32_t k, float *y)
{
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const int32_t kfull = k & ~63;
    const __mmask64 tail = k & 63 ? (~(__mmask64)0) >> (64 - (k & 63)) : 0;
    int32_t sumq = 0;
    for (int32_t j = 0; j < k; j++)
        sumq += q[j];
    const __m512i qt = _mm512_maskz_loadu_epi8(tail, q + kfull);
    for (int32_t r = r0; r < r1; r++) {
        const int8_t *wr = w + (size_t)r * ldw;
        __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0;
        int32_t j = 0;
        for (; j + 128 <= kfull; j += 128) {
            _mm_prefetch((const char *)((uintptr_t)(wr + j) + HEAD_PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *)((uintptr_t)(wr + j) + HEAD_PREFETCH + 64), _MM_HINT_T0);
            acc0 = _mm512_dpbusd_epi32(acc0, _mm512_xor_si512(_mm512_loadu_si512((const void *)(wr + j)), flip),
                                       _mm512_loadu_si512((const void *)(q + j)));
            acc1 = _mm512_dpbusd_epi32(acc1, _mm512_xor_si512(_mm512_loadu_si512((const void *)(wr + j + 64)), flip),
                                       _mm512_loadu_si512((const void *)(q + j + 64)));
        }
        for (; j < kfull; j += 64)
            acc0 = _mm512_dpbusd_epi32(acc0, _mm512_xor_si512(_mm512_loadu_si512((const void *)(wr + j)), flip),
                                       _mm512_loadu_si512((const void *)(q + j)));
        if (tail)  /* masked-off lanes: q = 0, so they add nothing */
            acc1 = _mm512_dpbusd_epi32(acc1, _mm512_xor_si512(_mm512_maskz_loadu_epi8(tail, wr + kfull), flip), qt);
        int32_t t = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1)) - 128 * sumq;
        float v = (float)t * ws[r];
        y[r - r0] = v / xs;
    }
}

BITNET_HEAD_I8_DRIVER(bitnet__head_i8_avx512, i8_rows)

#ifndef BITNET_HEAD_AVX512_I8_ONLY  /* the SIMDe build of the test takes i8 only */

/* The 16 lanes of block products folded in the reference order
 * (bitnet__lanes16_fold): i + 8, then + 4, + 2, + 1. */
static inline float fold16(__m512 acc)
{
    const __m256 h8 = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
    __m128 f = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
    f = _mm_add_ps(f, _mm_movehl_ps(f, f));
    f = _mm_add_ss(f, _mm_movehdup_ps(f));
    return _mm_cvtss_f32(f);
}

/* ---- Q8_0: 16 blocks per step ------------------------------------------ */

/* Two 32-byte blocks at p and p + stride as one zmm. */
static inline __m512i load_pair(const uint8_t *p, size_t stride, int both)
{
    const __m512i lo = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p));
    return both ? _mm512_inserti64x4(lo, _mm256_loadu_si256((const __m256i *)(p + stride)), 1)
                : _mm512_inserti64x4(lo, _mm256_setzero_si256(), 1);
}

/*
 * v[i] holds the 8 int32 partial sums of block 2i (low half) and 2i + 1
 * (high half); returns the 16 block sums in block order: two unpack/add
 * levels give, per 128-bit lane, one dword per vector, then the lanes of
 * each block are added and the result permuted back to block order.
 */
static inline __m512i block_sums16(const __m512i *v)
{
    __m512i t[4], u[2];
    for (int i = 0; i < 4; i++)
        t[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                                _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    for (int j = 0; j < 2; j++)
        u[j] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * j], t[2 * j + 1]),
                                _mm512_unpackhi_epi64(t[2 * j], t[2 * j + 1]));
    /* lane L of u[j], dword m: 128-bit lane L of v[4j + m] */
    const __m512i s = _mm512_add_epi32(_mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                       _mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
    /* dword 4 l + m of s is block (l & 2 ? 8 : 0) + 2 m + (l & 1) */
    const __m512i idx = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
    return _mm512_permutexvar_epi32(idx, s);
}

/* 16 fp16 block scales at p + stride * i (lanes beyond `valid` zero). */
static inline __m512 load_d16(const uint8_t *p, int32_t stride, __mmask16 valid)
{
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                                             11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(stride));
    const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, idx, p, 1);
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
}

/* Q8_0 rows: (w ^ 0x80) is w + 128 as a u8, so per block sum w x =
 * vpdpbusd(w ^ 0x80, x) - 128 sum x, with the activation's block sums and
 * float scales read from after its blocks (bitnet__q8_0_xd_off). */
static void q8_0_rows(const uint8_t *w, size_t row_bytes, int32_t r0, int32_t r1,
                      const void *xq, int32_t k, float *y)
{
    const uint8_t *a = xq;
    const int32_t nb = k / 32;
    const float *xd = (const float *)(const void *)(a + bitnet__q8_0_xd_off(k));
    const int32_t *xsum = (const int32_t *)(const void *)(xd + nb);
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int32_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + (size_t)r * row_bytes;
        __m512 acc = _mm512_setzero_ps();
        for (int32_t b0 = 0; b0 < nb; b0 += 16) {
            const int nv = nb - b0 < 16 ? nb - b0 : 16;
            const __mmask16 valid = (__mmask16)(nv == 16 ? 0xffffu : (1u << nv) - 1);
            __m512i v[8];
            for (int i = 0; i < 8; i++) {
                if (2 * i >= nv) {
                    v[i] = _mm512_setzero_si512();
                    continue;
                }
                const size_t b = (size_t)(b0 + 2 * i);
                const uint8_t *wb = wr + 34 * b;
                _mm_prefetch((const char *)((uintptr_t)wb + HEAD_PREFETCH), _MM_HINT_T0);
                const __m512i wv = load_pair(wb + 2, 34, 2 * i + 1 < nv);
                const __m512i xv = load_pair(a + 34 * b + 2, 34, 2 * i + 1 < nv);
                v[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(wv, flip), xv);
            }
            const __m512i isum = _mm512_sub_epi32(block_sums16(v),
                _mm512_slli_epi32(_mm512_maskz_loadu_epi32(valid, xsum + b0), 7));
            const __m512 d = _mm512_mul_ps(load_d16(wr + 34 * (size_t)b0, 34, valid),
                                           _mm512_maskz_loadu_ps(valid, xd + b0));
            const __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(isum), d);
            /* lanes without a block add nothing (not even 0 * inf) */
            acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(valid, p));
        }
        y[r - r0] = fold16(acc);
    }
}

/* ---- Q6_K: a 128-column half block in two zmm --------------------------- */

/*
 * Half h of a block: ql[64h .. 64h + 64) is one zmm L (l0 | l1), qh[32h ..
 * 32h + 32) broadcast to both halves. Codes c (0..63) of columns 128h +
 * [0, 64): (L & 15) | (qh << 4 | qh << 2 per half) & 0x30; of [64, 128):
 * (L >> 4) & 15 | (qh | qh >> 2 per half) & 0x30. c x pair sums in int16
 * (|.| <= 16128), times the int16 group scales (vpmaddwd); the -32 of each
 * code comes off once per block as 32 sum_g scale_g bsum_g (the activation
 * block's group sums). All exact in int32: the reference's integers.
 */
static inline __m512i q6k_block(const uint8_t *wb, const bitnet_q8k_block *a,
                                const __m512i *gidx, __m512i sh_a, __m512i sh_b)
{
    const __m512i m4 = _mm512_set1_epi8(0xF), m30 = _mm512_set1_epi8(0x30);
    const __m512i sc = _mm512_zextsi256_si512(
        _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wb + 192))));
    const __m512i bs = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)a->bsums));
    __m512i s2[2];
    for (int h = 0; h < 2; h++) {
        const __m512i l = _mm512_loadu_si512((const void *)(wb + 64 * h));
        const __m512i qh = _mm512_broadcast_i64x4(
            _mm256_loadu_si256((const __m256i *)(wb + 128 + 32 * h)));
        const __m512i ca = _mm512_or_si512(_mm512_and_si512(l, m4),
                                           _mm512_and_si512(_mm512_sllv_epi16(qh, sh_a), m30));
        const __m512i cb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                           _mm512_and_si512(_mm512_srlv_epi16(qh, sh_b), m30));
        const __m512i xa = _mm512_loadu_si512((const void *)(a->qs + 128 * h));
        const __m512i xc = _mm512_loadu_si512((const void *)(a->qs + 128 * h + 64));
        s2[h] = _mm512_dpwssd_epi32(_mm512_madd_epi16(_mm512_maddubs_epi16(ca, xa),
                                                      _mm512_permutexvar_epi16(gidx[2 * h], sc)),
                                    _mm512_maddubs_epi16(cb, xc),
                                    _mm512_permutexvar_epi16(gidx[2 * h + 1], sc));
    }
    /* the codes' -32: 32 sum_g scale_g bsum_g off */
    return _mm512_sub_epi32(_mm512_add_epi32(s2[0], s2[1]),
                            _mm512_slli_epi32(_mm512_madd_epi16(sc, bs), 5));
}

/* The lane sums of v[0..n) as lanes 0..n-1 of one vector, in order (the
 * other lanes are not meaningful); pairs past n are not looked at. */
static inline __m512i hsum_blocks(const __m512i *v, int n)
{
    const __m512i z = _mm512_setzero_si512();
    __m512i t[8], u[4];
    for (int i = 0; i < 8; i++)
        t[i] = 2 * i >= n ? z
             : _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                                _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    for (int j = 0; j < 4; j++)   /* 128-bit lane L, dword m: lane L of v[4j + m] */
        u[j] = 4 * j >= n ? z
             : _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * j], t[2 * j + 1]),
                                _mm512_unpackhi_epi64(t[2 * j], t[2 * j + 1]));
    /* c0: lanes (u0 L0+L1, u0 L2+L3, u1 L0+L1, u1 L2+L3), c1 likewise */
    const __m512i c0 = _mm512_add_epi32(_mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                        _mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
    const __m512i c1 = n <= 8 ? c0
        : _mm512_add_epi32(_mm512_shuffle_i32x4(u[2], u[3], _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_shuffle_i32x4(u[2], u[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(c0, c1, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(c0, c1, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Blocks in runs of 16: the 16 integer sums in one vector, then the
 * reference's p = (float)s * (d_w * d_x) per lane and acc[b & 15] += p as
 * one vector add (lanes without a block add nothing). */
static void q6_k_rows(const uint8_t *w, size_t row_bytes, int32_t r0, int32_t r1,
                      const void *xq, int32_t k, float *y)
{
    const bitnet_q8k_block *a = xq;
    const int32_t nb = k / 256;
    /* 16-bit shift counts per half (low 256 bits, high 256 bits) */
    const __m512i sh_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i sh_b = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    __m512i gidx[4];        /* int16 lane i -> group 4 j + i / 8 */
    for (int j = 0; j < 4; j++) {
        int16_t ix[32];
        for (int i = 0; i < 32; i++)
            ix[i] = (int16_t)(4 * j + i / 8);
        gidx[j] = _mm512_loadu_si512((const void *)ix);
    }
    for (int32_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + (size_t)r * row_bytes;
        __m512 acc = _mm512_setzero_ps();
        for (int32_t b0 = 0; b0 < nb; b0 += 16) {
            const int nv = nb - b0 < 16 ? nb - b0 : 16;
            __m512i v[16];
            uint16_t dw[16] = { 0 };
            float dx[16] = { 0 };
            for (int i = 0; i < nv; i++) {
                const uint8_t *wb = wr + 210 * (size_t)(b0 + i);
                _mm_prefetch((const char *)((uintptr_t)wb + HEAD_PREFETCH), _MM_HINT_T0);
                _mm_prefetch((const char *)((uintptr_t)wb + HEAD_PREFETCH + 64), _MM_HINT_T0);
                _mm_prefetch((const char *)((uintptr_t)wb + HEAD_PREFETCH + 128), _MM_HINT_T0);
                _mm_prefetch((const char *)((uintptr_t)wb + HEAD_PREFETCH + 192), _MM_HINT_T0);
                v[i] = q6k_block(wb, a + b0 + i, gidx, sh_a, sh_b);
                memcpy(&dw[i], wb + 208, 2);
                dx[i] = a[b0 + i].d;
            }
            if (nv & 1)                /* the odd one's pair partner */
                v[nv] = _mm512_setzero_si512();
            const __mmask16 valid = (__mmask16)(nv == 16 ? 0xffffu : (1u << nv) - 1);
            /* d = d_w * d_x as the reference (fp16 -> fp32 is exact) */
            const __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)dw)),
                                           _mm512_loadu_ps(dx));
            const __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(hsum_blocks(v, nv)), d);
            acc = _mm512_mask_add_ps(acc, valid, acc, p);
        }
        y[r - r0] = fold16(acc);
    }
}

BITNET_HEAD_DRIVER(bitnet__head_q8_0_avx512, q8_0_rows)
BITNET_HEAD_DRIVER(bitnet__head_q6_k_avx512, q6_k_rows)

#endif
