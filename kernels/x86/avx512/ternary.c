/*
 * AVX-512 VNNI integer kernels. One zmm holds the 32-byte blocks of two
 * rows of a group (the packed layout puts the group's rows next to each
 * other), the 32 activations of a field are broadcast to both halves, and
 * vpdpbusd (u8 codes c = t + 1 times s8 activations, int32 lanes, no
 * saturation) accumulates; sum t*q = sum c*q - sum q.
 */
#include "x86/tdriver.h"

static inline __m128i group_dot(const uint8_t *p, const int8_t *q, int32_t nb)
{
    const __m512i mask = _mm512_set1_epi8(3);
    __m512i a01 = _mm512_setzero_si512(), b01 = a01, a23 = a01, b23 = a01;
    for (int32_t b = 0; b < nb; b++, p += 128, q += 128) {
        const __m512i w01 = _mm512_loadu_si512((const void *)p);
        const __m512i w23 = _mm512_loadu_si512((const void *)(p + 64));
        const __m512i q0 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)q));
        const __m512i q1 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q + 32)));
        const __m512i q2 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q + 64)));
        const __m512i q3 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q + 96)));
        a01 = _mm512_dpbusd_epi32(a01, _mm512_and_si512(_mm512_srli_epi16(w01, 6), mask), q0);
        a23 = _mm512_dpbusd_epi32(a23, _mm512_and_si512(_mm512_srli_epi16(w23, 6), mask), q0);
        b01 = _mm512_dpbusd_epi32(b01, _mm512_and_si512(_mm512_srli_epi16(w01, 4), mask), q1);
        b23 = _mm512_dpbusd_epi32(b23, _mm512_and_si512(_mm512_srli_epi16(w23, 4), mask), q1);
        a01 = _mm512_dpbusd_epi32(a01, _mm512_and_si512(_mm512_srli_epi16(w01, 2), mask), q2);
        a23 = _mm512_dpbusd_epi32(a23, _mm512_and_si512(_mm512_srli_epi16(w23, 2), mask), q2);
        b01 = _mm512_dpbusd_epi32(b01, _mm512_and_si512(w01, mask), q3);
        b23 = _mm512_dpbusd_epi32(b23, _mm512_and_si512(w23, mask), q3);
    }
    const __m512i s01 = _mm512_add_epi32(a01, b01), s23 = _mm512_add_epi32(a23, b23);
    /* low 256 bits: row 0 (resp. 2), high: row 1 (resp. 3) */
    return bitnet__x86_reduce4(_mm512_castsi512_si256(s01), _mm512_extracti64x4_epi64(s01, 1),
                               _mm512_castsi512_si256(s23), _mm512_extracti64x4_epi64(s23, 1));
}

BITNET_X86_TDRIVERS(avx512)

/* int8 x int8 head with vpdpbusd: (w + 128) is a u8, so
 * sum w*q = sum (w ^ 0x80) * q - 128 * sum q, exact in int32. */
void bitnet__head_i8_avx512(const int8_t *w, size_t ldw, const float *ws,
                            int32_t r0, int32_t r1, const int8_t *q, float xs,
                            int32_t k, float *y)
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
