/*
 * AVX2 + F16C per-layer kernels. All bit-exact with the reference
 * (multiplications and additions in the reference's order, no FMA), except
 * that to_f16 may give another NaN payload. attn_f16 is the reference's
 * order of operations with this level's dot_f16 and axpy_f16.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels_impl.h"

void bitnet__rope_norm_avx2(float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                            const float *cos_t, const float *sin_t)
{
    const int32_t half = n_rot / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        int32_t i = 0;
        for (; i + 4 <= half; i += 4) {
            const __m128 c4 = _mm_loadu_ps(cos_t + i), s4 = _mm_loadu_ps(sin_t + i);
            const __m256 c = _mm256_set_m128(_mm_unpackhi_ps(c4, c4), _mm_unpacklo_ps(c4, c4));
            const __m256 s = _mm256_set_m128(_mm_unpackhi_ps(s4, s4), _mm_unpacklo_ps(s4, s4));
            const __m256 xv = _mm256_loadu_ps(v + 2 * i);
            const __m256 xs = _mm256_permute_ps(xv, 0xb1);      /* x1 x0 pairs */
            /* even lanes x0*c - x1*s, odd lanes x1*c + x0*s */
            _mm256_storeu_ps(v + 2 * i, _mm256_addsub_ps(_mm256_mul_ps(xv, c),
                                                         _mm256_mul_ps(xs, s)));
        }
        for (; i < half; i++) {
            const float x0 = v[2 * i], x1 = v[2 * i + 1];
            const float a = x0 * cos_t[i], b = x1 * sin_t[i];
            const float d = x0 * sin_t[i], e = x1 * cos_t[i];
            v[2 * i] = a - b;
            v[2 * i + 1] = d + e;
        }
    }
}

void bitnet__relu2_mul_avx2(float *restrict g, const float *restrict u, int32_t n)
{
    const __m256 zero = _mm256_setzero_ps();
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 r = _mm256_and_ps(_mm256_cmp_ps(x, zero, _CMP_GT_OQ), x);
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_mul_ps(r, r), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) {
        const float r = g[i] > 0.0f ? g[i] : 0.0f;
        const float r2 = r * r;
        g[i] = r2 * u[i];
    }
}

void bitnet__add_avx2(float *restrict x, const float *restrict y, int32_t n)
{
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    for (; i < n; i++)
        x[i] = y[i] + x[i];
}

void bitnet__to_f16_avx2(const float *x, uint16_t *y, int32_t n)
{
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++)
        y[i] = bitnet__fp32_to_fp16(x[i]);
}

void bitnet__attn_f16_avx2(const float *q, int32_t n_q, const uint16_t *k, const uint16_t *v,
                           int32_t n_kv, int32_t hd, float scale, float *out, float *work)
{
    float *sc = work;
    uint16_t *q16 = (uint16_t *)(work + n_kv);
    for (int32_t h = 0; h < n_q; h++) {
        const float *qh = q + (size_t)h * (size_t)hd;
        float *o = out + (size_t)h * (size_t)hd;
        bitnet__to_f16_avx2(qh, q16, hd);
        for (int32_t s = 0; s < n_kv; s++)
            sc[s] = bitnet__dot_f16_avx2(q16, k + (size_t)s * (size_t)hd, hd);
        bitnet__softmax_ref(sc, n_kv, scale);
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int32_t s = 0; s < n_kv; s++)
            bitnet__axpy_f16_avx2(o, v + (size_t)s * (size_t)hd, sc[s], hd);
    }
}
