/*
 * Reference (plain C) float kernels. Expressions are split into separate
 * statements so that no compiler contracts them into FMAs: the reference is
 * the same on every target.
 */
#include <math.h>

#include "kernels_impl.h"

void bitnet__rmsnorm_ref(const float *x, const float *w, float *y, int32_t n,
                         float eps)
{
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        float sq = x[i] * x[i];
        sum += (double)sq;
    }
    const float mean = (float)(sum / (double)n);
    const float s = 1.0f / sqrtf(mean + eps);
    for (int32_t i = 0; i < n; i++) {
        float v = x[i] * s;
        y[i] = v * w[i];
    }
}

void bitnet__rope_ref(float *x, int32_t n_heads, int32_t head_dim,
                      int32_t n_rot, const float *cos_t, const float *sin_t)
{
    const int32_t half = n_rot / 2;
    for (int32_t h = 0; h < n_heads; h++) {
        float *p = x + (size_t)h * (size_t)head_dim;
        for (int32_t i = 0; i < half; i++) {
            const float x0 = p[i], x1 = p[i + half];
            const float c = cos_t[i], s = sin_t[i];
            const float a = x0 * c, b = x1 * s;
            const float d = x0 * s, e = x1 * c;
            p[i] = a - b;
            p[i + half] = d + e;
        }
    }
}

void bitnet__softmax_ref(float *x, int32_t n, float scale)
{
    float mx = -INFINITY;
    for (int32_t i = 0; i < n; i++) {
        x[i] *= scale;
        if (x[i] > mx)
            mx = x[i];
    }
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        float e = expf(x[i] - mx);
        x[i] = e;
        sum += (double)e;
    }
    const float inv = (float)(1.0 / sum);
    for (int32_t i = 0; i < n; i++)
        x[i] *= inv;
}

/* The reference float dot products accumulate exact products in double and
 * round once: variants are compared against this within
 * n * 2^-24 * sum|a_i b_i| (docs/kernels.md). */
float bitnet__dot_f16_ref(const uint16_t *a, const uint16_t *b, int32_t n)
{
    double acc = 0.0;
    for (int32_t i = 0; i < n; i++)
        acc += (double)bitnet__fp16_to_fp32(a[i]) * (double)bitnet__fp16_to_fp32(b[i]);
    return (float)acc;
}

void bitnet__axpy_f16_ref(float *y, const uint16_t *v, float p, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        float t = p * bitnet__fp16_to_fp32(v[i]);
        y[i] = y[i] + t;
    }
}
