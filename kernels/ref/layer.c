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

/* Blocked attention with an online softmax (docs/kernels.md, "Attention"),
 * per head: q rounded to fp16 (as ggml's F16 K.Q does), then for each block
 * of BITNET_ATTN_BLOCK keys the scores s_j = (float)(q . k_j in double) *
 * scale, the block maximum, the running
 * maximum m', corr = expf(m - m'), p_j = expf(s_j - m'), l = l*corr + sum p
 * (in key order), o = o*corr, then o += p_j v_j in key order; at the end
 * out = o * (1/l). The SIMD variants keep the blocks and the order of the
 * block steps; inside a block they reassociate and use their own exp. */
void bitnet__attn_f16_ref(const float *q, int32_t n_q, const uint16_t *k, const uint16_t *v,
                          int32_t n_kv, int32_t hd, float scale, float *out, float *ml,
                          float *work)
{
    float *p = work, *qh = work + BITNET_ATTN_BLOCK;
    for (int32_t h = 0; h < n_q; h++) {
        float *o = out + (size_t)h * (size_t)hd;
        float m = -INFINITY, l = 0.0f;
        for (int32_t d = 0; d < hd; d++)
            qh[d] = bitnet__fp16_to_fp32(bitnet__fp32_to_fp16(q[(size_t)h * (size_t)hd + d]));
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int32_t b0 = 0; b0 < n_kv; b0 += BITNET_ATTN_BLOCK) {
            const int32_t nb = n_kv - b0 < BITNET_ATTN_BLOCK ? n_kv - b0 : BITNET_ATTN_BLOCK;
            float mb = -INFINITY;
            for (int32_t j = 0; j < nb; j++) {
                const uint16_t *kj = k + (size_t)(b0 + j) * (size_t)hd;
                double acc = 0.0;
                for (int32_t d = 0; d < hd; d++)
                    acc += (double)qh[d] * (double)bitnet__fp16_to_fp32(kj[d]);
                const float s = (float)acc * scale;
                p[j] = s;
                mb = s > mb ? s : mb;
            }
            const float mn = m > mb ? m : mb;
            const float corr = expf(m - mn);
            float ls = 0.0f;
            for (int32_t j = 0; j < nb; j++) {
                p[j] = expf(p[j] - mn);
                ls += p[j];
            }
            const float lc = l * corr;
            l = lc + ls;
            for (int32_t d = 0; d < hd; d++)
                o[d] *= corr;
            for (int32_t j = 0; j < nb; j++) {
                const uint16_t *vj = v + (size_t)(b0 + j) * (size_t)hd;
                for (int32_t d = 0; d < hd; d++) {
                    const float t = p[j] * bitnet__fp16_to_fp32(vj[d]);
                    o[d] = o[d] + t;
                }
            }
            m = mn;
        }
        if (ml) {                 /* a segment: its state, o left unscaled */
            ml[2 * h] = m;
            ml[2 * h + 1] = l;
            continue;
        }
        const float inv = 1.0f / l;
        for (int32_t d = 0; d < hd; d++)
            o[d] *= inv;
    }
}

void bitnet__attn_fold(float *acc, float *acc_ml, const float *seg, const float *seg_ml,
                       int32_t n_q, int32_t hd, int last)
{
    for (int32_t h = 0; h < n_q; h++) {
        float *o = acc + (size_t)h * (size_t)hd;
        const float *os = seg + (size_t)h * (size_t)hd;
        const float m = acc_ml[2 * h], ms = seg_ml[2 * h];
        const float mn = m > ms ? m : ms;
        const float a = expf(m - mn), b = expf(ms - mn);
        const float la = acc_ml[2 * h + 1] * a, lb = seg_ml[2 * h + 1] * b;
        const float l = la + lb;
        for (int32_t d = 0; d < hd; d++) {
            const float x = o[d] * a, y = os[d] * b;
            o[d] = x + y;
        }
        acc_ml[2 * h] = mn;
        acc_ml[2 * h + 1] = l;
        if (last) {
            const float inv = 1.0f / l;
            for (int32_t d = 0; d < hd; d++)
                o[d] *= inv;
        }
    }
}
