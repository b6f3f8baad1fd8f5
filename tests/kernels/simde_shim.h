/*
 * Run the AVX-512 VNNI and AVX-VNNI kernel sources on an AVX2 machine:
 * SIMDe (Debian libsimde-dev) implements the 512-bit intrinsics with AVX2,
 * and the few that SIMDe 0.7 lacks are written out below in plain C. The
 * kernel sources are compiled unchanged (the wrappers #include them) with
 * their public names renamed to *_emu, so the kernel test can compare them
 * against the reference. This checks our use of the intrinsics (lanes,
 * shifts, masks, reductions, the u8 x s8 sum correction), not the
 * hardware; the real variants are checked by the same test on CPUs that
 * have the features.
 */
#ifndef BITNET_SIMDE_SHIM_H
#define BITNET_SIMDE_SHIM_H

#include <stdint.h>
#include <string.h>
#include <immintrin.h>
#include <simde/x86/avx512.h>

#include "kernels.h"

static inline simde__m512i shim_maskz_loadu_epi8(uint64_t k, const void *p)
{
    int8_t b[64];
    for (int i = 0; i < 64; i++)            /* never reads a masked-off byte */
        b[i] = (k >> i) & 1 ? ((const int8_t *)p)[i] : 0;
    return simde_mm512_loadu_si512(b);
}

static inline simde__m256i shim_maskz_loadu_epi16(uint16_t k, const void *p)
{
    uint16_t b[16];
    for (int i = 0; i < 16; i++)
        b[i] = (k >> i) & 1 ? ((const uint16_t *)p)[i] : 0;
    return simde_mm256_loadu_si256(b);
}

static inline simde__m512 shim_maskz_loadu_ps(uint16_t k, const float *p)
{
    float b[16];
    for (int i = 0; i < 16; i++)
        b[i] = (k >> i) & 1 ? p[i] : 0.0f;
    return simde_mm512_loadu_ps(b);
}

static inline int32_t shim_reduce_add_epi32(simde__m512i v)
{
    int32_t a[16], s = 0;
    simde_mm512_storeu_si512(a, v);
    for (int i = 0; i < 16; i++)
        s += a[i];
    return s;
}

static inline float shim_reduce_add_ps(simde__m512 v)
{
    float a[16];
    simde_mm512_storeu_ps(a, v);
    for (int w = 8; w >= 1; w /= 2)         /* pairwise, like the hardware sequence */
        for (int i = 0; i < w; i++)
            a[i] += a[i + w];
    return a[0];
}

static inline simde__m512 shim_cvtph_ps(simde__m256i h)
{
    uint16_t a[16];
    float f[16];
    simde_mm256_storeu_si256(a, h);
    for (int i = 0; i < 16; i++)
        f[i] = bitnet__fp16_to_fp32(a[i]);
    return simde_mm512_loadu_ps(f);
}

#undef __m512i
#define __m512i simde__m512i
#undef __m512
#define __m512 simde__m512
#undef _mm512_set1_epi8
#define _mm512_set1_epi8 simde_mm512_set1_epi8
#undef _mm512_setzero_si512
#define _mm512_setzero_si512 simde_mm512_setzero_si512
#undef _mm512_setzero_ps
#define _mm512_setzero_ps simde_mm512_setzero_ps
#undef _mm512_loadu_si512
#define _mm512_loadu_si512 simde_mm512_loadu_si512
#undef _mm512_loadu_ps
#define _mm512_loadu_ps simde_mm512_loadu_ps
#undef _mm512_broadcast_i64x4
#define _mm512_broadcast_i64x4 simde_mm512_broadcast_i64x4
#undef _mm512_dpbusd_epi32
#define _mm512_dpbusd_epi32 simde_mm512_dpbusd_epi32
#undef _mm512_and_si512
#define _mm512_and_si512 simde_mm512_and_si512
#undef _mm512_xor_si512
#define _mm512_xor_si512 simde_mm512_xor_si512
#undef _mm512_srli_epi16
#define _mm512_srli_epi16 simde_mm512_srli_epi16
#undef _mm512_add_epi32
#define _mm512_add_epi32 simde_mm512_add_epi32
#undef _mm512_add_ps
#define _mm512_add_ps simde_mm512_add_ps
#undef _mm512_fmadd_ps
#define _mm512_fmadd_ps simde_mm512_fmadd_ps
#undef _mm512_castsi512_si256
#define _mm512_castsi512_si256 simde_mm512_castsi512_si256
#undef _mm512_extracti64x4_epi64
#define _mm512_extracti64x4_epi64 simde_mm512_extracti64x4_epi64
#undef _mm512_maskz_loadu_epi8
#define _mm512_maskz_loadu_epi8 shim_maskz_loadu_epi8
#undef _mm256_maskz_loadu_epi16
#define _mm256_maskz_loadu_epi16 shim_maskz_loadu_epi16
#undef _mm512_maskz_loadu_ps
#define _mm512_maskz_loadu_ps shim_maskz_loadu_ps
#undef _mm512_reduce_add_epi32
#define _mm512_reduce_add_epi32 shim_reduce_add_epi32
#undef _mm512_reduce_add_ps
#define _mm512_reduce_add_ps shim_reduce_add_ps
#undef _mm512_cvtph_ps
#define _mm512_cvtph_ps shim_cvtph_ps
#undef _mm256_dpbusd_avx_epi32
#define _mm256_dpbusd_avx_epi32 simde_mm256_dpbusd_epi32

/* the emulated copies get their own names */
#undef bitnet__tgemv_avx512
#define bitnet__tgemv_avx512 bitnet__tgemv_avx512_emu
#undef bitnet__tgemm_avx512
#define bitnet__tgemm_avx512 bitnet__tgemm_avx512_emu
#undef bitnet__head_i8_avx512
#define bitnet__head_i8_avx512 bitnet__head_i8_avx512_emu
#undef bitnet__head_f16_avx512
#define bitnet__head_f16_avx512 bitnet__head_f16_avx512_emu
#undef bitnet__tgemv_avxvnni
#define bitnet__tgemv_avxvnni bitnet__tgemv_avxvnni_emu
#undef bitnet__tgemm_avxvnni
#define bitnet__tgemm_avxvnni bitnet__tgemm_avxvnni_emu

#endif
