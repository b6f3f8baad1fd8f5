/*
 * AVX-512 F16 output head: F16C conversions of 16 weights at a time, FMA
 * into fp32 accumulators, masked loads for the tail (no scalar tail).
 * Bound against the reference: docs/kernels.md.
 */
#include <immintrin.h>

#include "kernels_impl.h"

void bitnet__head_f16_avx512(const uint16_t *w, size_t ldw, int32_t r0,
                             int32_t r1, const float *x, int32_t k, float *y)
{
    const int32_t kfull = k & ~15;
    const __mmask16 tail = (__mmask16)((1u << (k & 15)) - 1);
    const __m512 xt = _mm512_maskz_loadu_ps(tail, x + kfull);
    int32_t r = r0;
    for (; r + 2 <= r1; r += 2) {
        const uint16_t *a = w + (size_t)r * ldw, *b = a + ldw;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
        int32_t j = 0;
        for (; j + 32 <= kfull; j += 32) {
            const __m512 x0 = _mm512_loadu_ps(x + j), x1 = _mm512_loadu_ps(x + j + 16);
            a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a + j))), x0, a0);
            a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a + j + 16))), x1, a1);
            b0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + j))), x0, b0);
            b1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + j + 16))), x1, b1);
        }
        for (; j < kfull; j += 16) {
            const __m512 x0 = _mm512_loadu_ps(x + j);
            a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a + j))), x0, a0);
            b0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + j))), x0, b0);
        }
        if (tail) {
            a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail, a + kfull)), xt, a1);
            b1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail, b + kfull)), xt, b1);
        }
        y[r - r0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        y[r + 1 - r0] = _mm512_reduce_add_ps(_mm512_add_ps(b0, b1));
    }
    for (; r < r1; r++) {
        const uint16_t *a = w + (size_t)r * ldw;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        int32_t j = 0;
        for (; j < kfull; j += 16)
            a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a + j))),
                                 _mm512_loadu_ps(x + j), a0);
        if (tail)
            a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail, a + kfull)), xt, a1);
        y[r - r0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}
