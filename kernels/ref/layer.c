/*
 * Reference (plain C) per-layer kernels (kernels/layer.h). As in float.c,
 * expressions are split into statements so that no compiler contracts them
 * into FMAs: the reference is the same on every target.
 */
#include <math.h>
#include <string.h>

#include "kernels_impl.h"

void bitnet__rope_table_ref(float pos, float theta_scale, int32_t n, float *cos_t,
                            float *sin_t)
{
    float theta = pos;
    for (int32_t i = 0; i < n; i++) {
        cos_t[i] = cosf(theta);
        sin_t[i] = sinf(theta);
        theta *= theta_scale;
    }
}

void bitnet__rope_norm_ref(float *x, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                           const float *cos_t, const float *sin_t)
{
    for (int32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * (size_t)head_dim;
        for (int32_t i = 0; i < n_rot / 2; i++) {
            const float x0 = v[2 * i], x1 = v[2 * i + 1];
            const float a = x0 * cos_t[i], b = x1 * sin_t[i];
            const float d = x0 * sin_t[i], e = x1 * cos_t[i];
            v[2 * i] = a - b;
            v[2 * i + 1] = d + e;
        }
    }
}

void bitnet__relu2_mul_ref(float *restrict g, const float *restrict u, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        const float r = g[i] > 0.0f ? g[i] : 0.0f;
        const float r2 = r * r;
        g[i] = r2 * u[i];
    }
}

void bitnet__silu_mul_ref(float *restrict g, const float *restrict u, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        const float d = 1.0f + expf(-g[i]);
        const float s = g[i] / d;
        g[i] = s * u[i];
    }
}

void bitnet__add_ref(float *restrict x, const float *restrict y, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        x[i] = y[i] + x[i];
}

void bitnet__to_f16_ref(const float *x, uint16_t *y, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        y[i] = bitnet__fp32_to_fp16(x[i]);
}

/* The query rounded to fp16, one dot product per key (dot_f16), softmax
 * of the scaled scores (softmax), then out = sum_s p_s v_s in key order
 * (axpy_f16 from zero). The SIMD variants keep this order with their own
 * dot_f16/axpy_f16 (docs/kernels.md). */
void bitnet__attn_f16_ref(const float *q, int32_t n_q, const uint16_t *k, const uint16_t *v,
                          int32_t n_kv, int32_t hd, float scale, float *out, float *work)
{
    float *sc = work;
    uint16_t *q16 = (uint16_t *)(work + n_kv);
    for (int32_t h = 0; h < n_q; h++) {
        const float *qh = q + (size_t)h * (size_t)hd;
        float *o = out + (size_t)h * (size_t)hd;
        bitnet__to_f16_ref(qh, q16, hd);
        for (int32_t s = 0; s < n_kv; s++)
            sc[s] = bitnet__dot_f16_ref(q16, k + (size_t)s * (size_t)hd, hd);
        bitnet__softmax_ref(sc, n_kv, scale);
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int32_t s = 0; s < n_kv; s++)
            bitnet__axpy_f16_ref(o, v + (size_t)s * (size_t)hd, sc[s], hd);
    }
}
