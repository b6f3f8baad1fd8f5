/*
 * Shared row-group drivers for the x86 ternary kernels (AVX2 and up). Each
 * ISA file defines a static inline group_dot() returning the four int32
 * sums c*q of one row group, then instantiates BITNET_X86_TDRIVERS(isa).
 * Everything here is static inline (compiled into each ISA's object with
 * that ISA's flags).
 */
#ifndef BITNET_X86_TDRIVER_H
#define BITNET_X86_TDRIVER_H

#include <immintrin.h>

#include "kernels_impl.h"

/* prefetcht0 of the line at address a, as an asm statement: GCC deletes a
 * loop whose only work is _mm_prefetch (the builtin has no side effect),
 * and a loop over the lines of a range is such a loop. The address is an
 * integer: it may lie past the end of the data (a prefetch never faults). */
static inline void bitnet__x86_prefetch(uintptr_t a)
{
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)a));
}

/* prefetcht0 of every line of [a, a + n) (a hint: the range may lie past
 * the end of the data) */
static inline void bitnet__x86_prefetch_range(uintptr_t a, size_t n)
{
    for (size_t off = 0; off < n; off += 64)
        bitnet__x86_prefetch(a + (uintptr_t)off);
}

static inline int32_t bitnet__x86_hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* sum of n int8 (n multiple of 32), exact */
static inline int32_t bitnet__x86_sum_i8(const int8_t *q, int32_t n)
{
    const __m256i ones = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    __m256i acc = _mm256_setzero_si256();
    for (int32_t j = 0; j < n; j += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(q + j));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(ones, v), ones16));
    }
    return bitnet__x86_hsum_epi32(acc);
}

/* Reduce four 8-lane accumulators (rows 0..3) to one int32 per row. */
static inline __m128i bitnet__x86_reduce4(__m256i a0, __m256i a1, __m256i a2, __m256i a3)
{
    __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
}

/* Epilogue for rows [lo, hi) of a group (relative to the group); y points
 * at the output of row lo. Same operations, same order as the reference. */
static inline void bitnet__x86_store_group(__m128i t, int32_t sumq, float act_scale,
                                           float wscale, float *y, int lo, int hi)
{
    __m128 f = _mm_cvtepi32_ps(_mm_sub_epi32(t, _mm_set1_epi32(sumq)));
    f = _mm_div_ps(f, _mm_set1_ps(act_scale));
    f = _mm_mul_ps(f, _mm_set1_ps(wscale));
    if (lo == 0 && hi == 4) {
        _mm_storeu_ps(y, f);
    } else {
        float tmp[4];
        _mm_storeu_ps(tmp, f);
        for (int i = lo; i < hi; i++)
            y[i - lo] = tmp[i];
    }
}

#define BITNET_X86_GEMM_TILE 64

/* tgemv: one pass over the row groups touching [r0, r1).
 * tgemm: tokens in tiles; each row group's weights stay in L1 across the
 * tile's tokens, so the matrix is streamed from memory once per tile. */
#define BITNET_X86_TDRIVER_GEMV(isa) \
void bitnet__tgemv_##isa(const bitnet_tmat *w, int32_t r0, int32_t r1, \
                         const int8_t *q, float act_scale, float *y) \
{ \
    if (r1 <= r0) \
        return; \
    const int32_t nb = w->cols_padded / 128; \
    const int32_t sumq = bitnet__x86_sum_i8(q, w->cols_padded); \
    for (int32_t g = r0 / 4; g * 4 < r1; g++) { \
        const int32_t base = g * 4; \
        const int lo = base < r0 ? r0 - base : 0; \
        const int hi = base + 4 > r1 ? r1 - base : 4; \
        __m128i t = group_dot(bitnet__tmat_group(w, g), q, nb); \
        bitnet__x86_store_group(t, sumq, act_scale, w->scale, y + (base + lo - r0), lo, hi); \
    } \
}
#define BITNET_X86_TDRIVER_GEMM(isa) \
void bitnet__tgemm_##isa(const bitnet_tmat *w, int32_t r0, int32_t r1, \
                         const int8_t *q, const float *act_scale, int32_t n, \
                         float *y, int32_t ldy) \
{ \
    if (r1 <= r0) \
        return; \
    const int32_t nb = w->cols_padded / 128; \
    const size_t kp = (size_t)w->cols_padded; \
    int32_t sums[BITNET_X86_GEMM_TILE]; \
    for (int32_t i0 = 0; i0 < n; i0 += BITNET_X86_GEMM_TILE) { \
        const int32_t nt = n - i0 < BITNET_X86_GEMM_TILE ? n - i0 : BITNET_X86_GEMM_TILE; \
        for (int32_t i = 0; i < nt; i++) \
            sums[i] = bitnet__x86_sum_i8(q + (size_t)(i0 + i) * kp, w->cols_padded); \
        for (int32_t g = r0 / 4; g * 4 < r1; g++) { \
            const int32_t base = g * 4; \
            const int lo = base < r0 ? r0 - base : 0; \
            const int hi = base + 4 > r1 ? r1 - base : 4; \
            const uint8_t *p = bitnet__tmat_group(w, g); \
            for (int32_t i = 0; i < nt; i++) { \
                __m128i t = group_dot(p, q + (size_t)(i0 + i) * kp, nb); \
                bitnet__x86_store_group(t, sums[i], act_scale[i0 + i], w->scale, \
                    y + (size_t)(i0 + i) * (size_t)ldy + (base + lo - r0), lo, hi); \
            } \
        } \
    } \
}

#define BITNET_X86_TDRIVERS(isa) BITNET_X86_TDRIVER_GEMV(isa) BITNET_X86_TDRIVER_GEMM(isa)

#endif /* BITNET_X86_TDRIVER_H */
