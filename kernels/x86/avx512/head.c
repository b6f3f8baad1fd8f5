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
#define HEAD_PREFETCH 1024
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
