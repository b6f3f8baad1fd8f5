/*
 * Reference (plain C) integer kernels: activation quantisation, ternary
 * GEMV/GEMM (the output heads are in ref/head.c). These define the
 * numerics; every variant must give exactly the same integers and floats.
 */
#include <math.h>
#include <string.h>

#include "kernels_impl.h"

void bitnet__quant_act_ref(const float *x, int32_t k, int32_t kpad, int8_t *q,
                           float *scale, int32_t *sum)
{
    double amax = 0.0;
    for (int32_t i = 0; i < k; i++) {
        double a = fabs((double)x[i]);
        if (a > amax)
            amax = a;
    }
    const float s = bitnet__act_scale_from_max(amax);
    int32_t acc = 0;
    for (int32_t i = 0; i < k; i++) {
        float v = x[i] * s;
        int32_t r = bitnet__round_even(v);
        r = r < -128 ? -128 : r > 127 ? 127 : r;
        q[i] = (int8_t)r;
        acc += r;
    }
    if (kpad > k)
        memset(q + k, 0, (size_t)(kpad - k));
    *scale = s;
    *sum = acc;
}

/* sum_j t_j q_j for one row of the packed matrix */
static int32_t row_dot(const bitnet_tmat *w, int32_t r, const int8_t *q)
{
    const int32_t nb = w->cols_padded / 128;
    const uint8_t *p = bitnet__tmat_group(w, r / BITNET_TMAT_GROUP) +
                       (r % BITNET_TMAT_GROUP) * 32;
    int32_t t = 0;
    for (int32_t b = 0; b < nb; b++, p += BITNET_TMAT_GROUP * 32, q += 128) {
        for (int j = 0; j < 32; j++) {
            const unsigned c = p[j];
            t += ((int32_t)(c >> 6) - 1) * q[j];
            t += ((int32_t)((c >> 4) & 3) - 1) * q[32 + j];
            t += ((int32_t)((c >> 2) & 3) - 1) * q[64 + j];
            t += ((int32_t)(c & 3) - 1) * q[96 + j];
        }
    }
    return t;
}

void bitnet__tgemv_ref(const bitnet_tmat *w, int32_t r0, int32_t r1,
                       const int8_t *q, float act_scale, float *y)
{
    for (int32_t r = r0; r < r1; r++)
        y[r - r0] = bitnet__tepilogue(row_dot(w, r, q), act_scale, w->scale);
}

void bitnet__tgemm_ref(const bitnet_tmat *w, int32_t r0, int32_t r1,
                       const int8_t *q, const float *act_scale, int32_t n,
                       float *y, int32_t ldy)
{
    for (int32_t i = 0; i < n; i++)
        bitnet__tgemv_ref(w, r0, r1, q + (size_t)i * (size_t)w->cols_padded,
                          act_scale[i], y + (size_t)i * (size_t)ldy);
}
