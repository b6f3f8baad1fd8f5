/*
 * AVX-VNNI (256-bit vpdpbusd, VEX encoded) ternary kernels: the codes
 * c = t + 1 (u8) times q (s8), four products per int32 lane, no
 * saturation; sum t*q = sum c*q - sum q.
 */
#include "x86/tdriver.h"

/* GEMV prefetch distance (bytes ahead in the group stream), as AVX-512 */
#ifndef GEMV_PREFETCH
#define GEMV_PREFETCH 4096
#endif

static inline __m128i group_dot(const uint8_t *p, const int8_t *q, int32_t nb)
{
    const __m256i mask = _mm256_set1_epi8(3);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int32_t b = 0; b < nb; b++, p += 128, q += 128) {
        /* one forward stream: ask for it early (a prefetch never faults;
         * the address is computed as an integer, it may be past the end) */
        _mm_prefetch((const char *)((uintptr_t)p + GEMV_PREFETCH), _MM_HINT_T0);
        _mm_prefetch((const char *)((uintptr_t)p + GEMV_PREFETCH + 64), _MM_HINT_T0);
        const __m256i q0 = _mm256_loadu_si256((const __m256i *)q);
        const __m256i q1 = _mm256_loadu_si256((const __m256i *)(q + 32));
        const __m256i q2 = _mm256_loadu_si256((const __m256i *)(q + 64));
        const __m256i q3 = _mm256_loadu_si256((const __m256i *)(q + 96));
#define ROW(i, acc) do { \
            const __m256i w = _mm256_loadu_si256((const __m256i *)(p + 32 * (i))); \
            acc = _mm256_dpbusd_avx_epi32(acc, _mm256_and_si256(_mm256_srli_epi16(w, 6), mask), q0); \
            acc = _mm256_dpbusd_avx_epi32(acc, _mm256_and_si256(_mm256_srli_epi16(w, 4), mask), q1); \
            acc = _mm256_dpbusd_avx_epi32(acc, _mm256_and_si256(_mm256_srli_epi16(w, 2), mask), q2); \
            acc = _mm256_dpbusd_avx_epi32(acc, _mm256_and_si256(w, mask), q3); \
        } while (0)
        ROW(0, acc0);
        ROW(1, acc1);
        ROW(2, acc2);
        ROW(3, acc3);
#undef ROW
    }
    return bitnet__x86_reduce4(acc0, acc1, acc2, acc3);
}

BITNET_X86_TDRIVER_GEMV(avxvnni)

/*
 * GEMM: one row at a time against a tile of up to TOK tokens. A row's
 * 32-byte block (128 columns) is loaded and unpacked once (three shifts,
 * four ands: four ymm of codes) and used by every token of the tile: per
 * token four 32-byte activation loads and four vpdpbusd into that token's
 * accumulator (4 codes + 8 accumulators + 1 load register: 13 of 16 ymm).
 * The four rows of a group run one after the other over the same tile, so
 * the tile's activations (TOK x K bytes) are read from L1. Rows in blocks
 * of RBLK groups (kept in L2), tokens in near-equal tiles, per-token sums of
 * q once per super-tile, as the AVX-512 GEMM.
 */
#define TOK 8
#define RBLK 16
#define SUPER 256

#define ALWAYS_INLINE inline __attribute__((always_inline))

#ifndef GEMM_PREFETCH
#define GEMM_PREFETCH 2048
#endif

/* pf: this row's pass also prefetches the group stream ahead (the first
 * row of a group: with few tokens there is little work per weight byte to
 * hide DRAM latency behind) */
static ALWAYS_INLINE void row_tile(const uint8_t *p, const int8_t *const *qp, int32_t nb,
                                   int32_t *out, const int nt, const int pf)
{
    const __m256i mask = _mm256_set1_epi8(3);
    __m256i acc[TOK];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_si256();
    for (int32_t b = 0; b < nb; b++, p += BITNET_TMAT_GROUP * 32) {
        if (pf) {
            _mm_prefetch((const char *)((uintptr_t)p + GEMM_PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *)((uintptr_t)p + GEMM_PREFETCH + 64), _MM_HINT_T0);
        }
        const __m256i w = _mm256_loadu_si256((const __m256i *)p);
        __m256i c[4];
        c[0] = _mm256_and_si256(_mm256_srli_epi16(w, 6), mask);
        c[1] = _mm256_and_si256(_mm256_srli_epi16(w, 4), mask);
        c[2] = _mm256_and_si256(_mm256_srli_epi16(w, 2), mask);
        c[3] = _mm256_and_si256(w, mask);
        for (int t = 0; t < nt; t++) {
            const int8_t *qb = qp[t] + (size_t)b * 128;
            for (int f = 0; f < 4; f++)
                acc[t] = _mm256_dpbusd_avx_epi32(acc[t], c[f],
                             _mm256_loadu_si256((const __m256i *)(qb + 32 * f)));
        }
    }
    for (int t = 0; t < nt; t++)
        out[4 * t] = bitnet__x86_hsum_epi32(acc[t]);
}

/* The four rows of a group against one token tile: sums[t][row]. */
static void group_tile(const uint8_t *p, const int8_t *const *qp, int32_t nb,
                       int32_t *sums, int nt)
{
    if (nt <= 2) {
        /* too few independent vpdpbusd chains in row_tile: the GEMV's
         * four-row dot (same integers) is faster for one or two tokens */
        for (int t = 0; t < nt; t++)
            _mm_storeu_si128((__m128i *)(sums + 4 * t), group_dot(p, qp[t], nb));
        return;
    }
    for (int r = 0; r < 4; r++) {
        switch (nt) {
        case 1: row_tile(p + 32 * r, qp, nb, sums + r, 1, r == 0); break;
        case 2: row_tile(p + 32 * r, qp, nb, sums + r, 2, r == 0); break;
        case 3: row_tile(p + 32 * r, qp, nb, sums + r, 3, r == 0); break;
        case 4: row_tile(p + 32 * r, qp, nb, sums + r, 4, r == 0); break;
        case 5: row_tile(p + 32 * r, qp, nb, sums + r, 5, r == 0); break;
        case 6: row_tile(p + 32 * r, qp, nb, sums + r, 6, r == 0); break;
        case 7: row_tile(p + 32 * r, qp, nb, sums + r, 7, r == 0); break;
        default: row_tile(p + 32 * r, qp, nb, sums + r, 8, r == 0); break;
        }
    }
}

void bitnet__tgemm_avxvnni(const bitnet_tmat *w, int32_t r0, int32_t r1,
                           const int8_t *q, const float *act_scale, int32_t n,
                           float *y, int32_t ldy)
{
    if (r1 <= r0 || n <= 0)
        return;
    const int32_t nb = w->cols_padded / 128;
    const size_t kp = (size_t)w->cols_padded;
    const int32_t g0 = r0 / 4, g1 = (r1 + 3) / 4;
    int32_t sums[SUPER];
    for (int32_t s0 = 0; s0 < n; s0 += SUPER) {
        const int32_t ns = n - s0 < SUPER ? n - s0 : SUPER;
        for (int32_t i = 0; i < ns; i++)
            sums[i] = bitnet__x86_sum_i8(q + (size_t)(s0 + i) * kp, w->cols_padded);
        const int32_t ntiles = (ns + TOK - 1) / TOK;
        for (int32_t gb = g0; gb < g1; gb += RBLK) {
            const int32_t gbe = gb + RBLK < g1 ? gb + RBLK : g1;
            for (int32_t ti = 0; ti < ntiles; ti++) {
                const int32_t t0 = (int32_t)((int64_t)ns * ti / ntiles);
                const int32_t t1 = (int32_t)((int64_t)ns * (ti + 1) / ntiles);
                const int nt = (int)(t1 - t0);
                const int8_t *qp[TOK];
                for (int t = 0; t < nt; t++)
                    qp[t] = q + (size_t)(s0 + t0 + t) * kp;
                for (int32_t g = gb; g < gbe; g++) {
                    const int32_t base = g * 4;
                    const int lo = base < r0 ? r0 - base : 0;
                    const int hi = base + 4 > r1 ? r1 - base : 4;
                    int32_t gs[4 * TOK];
                    group_tile(bitnet__tmat_group(w, g), qp, nb, gs, nt);
                    for (int t = 0; t < nt; t++) {
                        const int32_t i = s0 + t0 + t;
                        bitnet__x86_store_group(_mm_loadu_si128((const __m128i *)(gs + 4 * t)),
                            sums[t0 + t], act_scale[i], w->scale,
                            y + (size_t)i * (size_t)ldy + (base + lo - r0), lo, hi);
                    }
                }
            }
        }
    }
}
