/*
 * AVX2 + FMA + F16C float kernels. Bounds against the reference are in
 * docs/kernels.md: axpy_f16 is bit-exact (multiply, then add, as the
 * reference), the dot products reassociate.
 */
#include <immintrin.h>
#include <math.h>

#include "kernels_impl.h"

static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 load_h8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

void bitnet__rmsnorm_avx2(const float *x, const float *w, float *y, int32_t n,
                          float eps)
{
    __m256d d0 = _mm256_setzero_pd(), d1 = d0;
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 sq = _mm256_mul_ps(v, v);
        d0 = _mm256_add_pd(d0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
        d1 = _mm256_add_pd(d1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(d0, d1));
    double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; i < n; i++) {
        float sq = x[i] * x[i];
        sum += (double)sq;
    }
    const float mean = (float)(sum / (double)n);
    const float s = 1.0f / sqrtf(mean + eps);
    const __m256 vs = _mm256_set1_ps(s);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs),
                                              _mm256_loadu_ps(w + i)));
    for (; i < n; i++) {
        float v = x[i] * s;
        y[i] = v * w[i];
    }
}

float bitnet__dot_f16_avx2(const uint16_t *a, const uint16_t *b, int32_t n)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(load_h8(a + i), load_h8(b + i), acc0);
        acc1 = _mm256_fmadd_ps(load_h8(a + i + 8), load_h8(b + i + 8), acc1);
    }
    float s = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++)
        s += bitnet__fp16_to_fp32(a[i]) * bitnet__fp16_to_fp32(b[i]);
    return s;
}

void bitnet__axpy_f16_avx2(float *y, const uint16_t *v, float p, int32_t n)
{
    const __m256 vp = _mm256_set1_ps(p);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i),
                                              _mm256_mul_ps(vp, load_h8(v + i))));
    for (; i < n; i++) {
        float t = p * bitnet__fp16_to_fp32(v[i]);
        y[i] = y[i] + t;
    }
}

/* Four rows at a time share the x loads (eight independent FMA chains) and
 * keep four row streams in flight, each prefetched HEAD_PREFETCH bytes
 * ahead (past a row's end that is the next rows, which come next); then
 * two rows, then one. Measured on Zen 3 (one thread, 656 MB head,
 * interleaved runs): 11.4-11.9 GB/s with two rows, 14.3-14.9 with four,
 * 15.2-15.7 with four and the prefetch; two rows with four accumulators
 * each were no faster than two. */
#ifndef HEAD_PREFETCH
#define HEAD_PREFETCH 1024
#endif

static void f16_rows(const uint8_t *wb, size_t row_bytes, int32_t r0, int32_t r1,
                     const void *xq, int32_t k, float *y)
{
    const uint16_t *w = (const uint16_t *)(const void *)wb;
    const size_t ldw = row_bytes / 2;
    const float *x = xq;
    int32_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint16_t *a = w + (size_t)r * ldw, *b = a + ldw, *c = b + ldw, *d = c + ldw;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
        __m256 c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        int32_t j = 0;
        for (; j + 16 <= k; j += 16) {
            _mm_prefetch((const char *)((uintptr_t)(a + j) + HEAD_PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *)((uintptr_t)(b + j) + HEAD_PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *)((uintptr_t)(c + j) + HEAD_PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *)((uintptr_t)(d + j) + HEAD_PREFETCH), _MM_HINT_T0);
            const __m256 x0 = _mm256_loadu_ps(x + j), x1 = _mm256_loadu_ps(x + j + 8);
            a0 = _mm256_fmadd_ps(load_h8(a + j), x0, a0);
            a1 = _mm256_fmadd_ps(load_h8(a + j + 8), x1, a1);
            b0 = _mm256_fmadd_ps(load_h8(b + j), x0, b0);
            b1 = _mm256_fmadd_ps(load_h8(b + j + 8), x1, b1);
            c0 = _mm256_fmadd_ps(load_h8(c + j), x0, c0);
            c1 = _mm256_fmadd_ps(load_h8(c + j + 8), x1, c1);
            d0 = _mm256_fmadd_ps(load_h8(d + j), x0, d0);
            d1 = _mm256_fmadd_ps(load_h8(d + j + 8), x1, d1);
        }
        float sa = hsum_ps(_mm256_add_ps(a0, a1)), sb = hsum_ps(_mm256_add_ps(b0, b1));
        float sc = hsum_ps(_mm256_add_ps(c0, c1)), sd = hsum_ps(_mm256_add_ps(d0, d1));
        for (; j < k; j++) {
            const float xj = x[j];
            sa += bitnet__fp16_to_fp32(a[j]) * xj;
            sb += bitnet__fp16_to_fp32(b[j]) * xj;
            sc += bitnet__fp16_to_fp32(c[j]) * xj;
            sd += bitnet__fp16_to_fp32(d[j]) * xj;
        }
        y[r - r0] = sa;
        y[r + 1 - r0] = sb;
        y[r + 2 - r0] = sc;
        y[r + 3 - r0] = sd;
    }
    for (; r + 2 <= r1; r += 2) {
        const uint16_t *a = w + (size_t)r * ldw, *b = a + ldw;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
        int32_t j = 0;
        for (; j + 16 <= k; j += 16) {
            __m256 x0 = _mm256_loadu_ps(x + j), x1 = _mm256_loadu_ps(x + j + 8);
            a0 = _mm256_fmadd_ps(load_h8(a + j), x0, a0);
            a1 = _mm256_fmadd_ps(load_h8(a + j + 8), x1, a1);
            b0 = _mm256_fmadd_ps(load_h8(b + j), x0, b0);
            b1 = _mm256_fmadd_ps(load_h8(b + j + 8), x1, b1);
        }
        float sa = hsum_ps(_mm256_add_ps(a0, a1)), sb = hsum_ps(_mm256_add_ps(b0, b1));
        for (; j < k; j++) {
            sa += bitnet__fp16_to_fp32(a[j]) * x[j];
            sb += bitnet__fp16_to_fp32(b[j]) * x[j];
        }
        y[r - r0] = sa;
        y[r + 1 - r0] = sb;
    }
    for (; r < r1; r++) {
        const uint16_t *a = w + (size_t)r * ldw;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int32_t j = 0;
        for (; j + 16 <= k; j += 16) {
            a0 = _mm256_fmadd_ps(load_h8(a + j), _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(load_h8(a + j + 8), _mm256_loadu_ps(x + j + 8), a1);
        }
        float sa = hsum_ps(_mm256_add_ps(a0, a1));
        for (; j < k; j++)
            sa += bitnet__fp16_to_fp32(a[j]) * x[j];
        y[r - r0] = sa;
    }
}

BITNET_HEAD_DRIVER(bitnet__head_f16_avx2, f16_rows)
