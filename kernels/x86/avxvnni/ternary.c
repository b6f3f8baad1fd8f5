/*
 * AVX-VNNI (256-bit vpdpbusd, VEX encoded) ternary kernels: the codes
 * c = t + 1 (u8) times q (s8), four products per int32 lane, no
 * saturation; sum t*q = sum c*q - sum q.
 */
#include "x86/tdriver.h"

static inline __m128i group_dot(const uint8_t *p, const int8_t *q, int32_t nb)
{
    const __m256i mask = _mm256_set1_epi8(3);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int32_t b = 0; b < nb; b++, p += 128, q += 128) {
        const __m256i q0 = _mm256_loadu_si256((const __m256i *)q);
        const __m256i q1 = _mm256_loadu_si256((const __m256i *)(q + 32));
        const __m256i q2 = _mm256_loadu_si256((const __m256i *)(q + 64));
        const __m256i q3 = _mm256_loadu_si256((const __m256i *)(q + 96));
#define ROW(i, acc) do { \
            const __m256i w = _mm256_loadu_si256((const __m256i *)(p + 32 * (i))); \
            acc = _mm256_dpbusd_avx_epi32(acc, _mm256_and_si256(_mm256_srli_epi16(w, 6), mask), q0); \
            acc = _mm256_dpbusd_avx_epi32(acc, _mm256_and_si256(_mm256_srli_epi16(w, 4), mask), q1); \
            acc = _mm256_dpbusd_avx_epi32(acc, _mm256_and_si256(_mm256_srli_epi16(w, 2), mask), q2); \
            acc = _mm256_dpbusd_avx_epi32(acc, _mm256_and_si256(w, mask), q3); \
        } while (0)
        ROW(0, acc0);
        ROW(1, acc1);
        ROW(2, acc2);
        ROW(3, acc3);
#undef ROW
    }
    return bitnet__x86_reduce4(acc0, acc1, acc2, acc3);
}

BITNET_X86_TDRIVERS(avxvnni)
