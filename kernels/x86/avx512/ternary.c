/*
 * AVX-512 VNNI integer kernels. One zmm holds the 32-byte blocks of two
 * rows of a group (the packed layout puts the group's rows next to each
 * other), the 32 activations of a field are broadcast to both halves, and
 * vpdpbusd (u8 codes c = t + 1 times s8 activations, int32 lanes, no
 * saturation) accumulates; sum t*q = sum c*q - sum q. Integer sums are
 * exact, so any order of accumulation gives the reference's integers.
 */
#include "x86/tdriver.h"

/* GEMV prefetch distance (bytes ahead in the group stream). */
#ifndef GEMV_PREFETCH
#define GEMV_PREFETCH 4096
#endif

static inline __m128i group_dot(const uint8_t *p, const int8_t *q, int32_t nb)
{
    const __m512i mask = _mm512_set1_epi8(3);
    __m512i a01 = _mm512_setzero_si512(), b01 = a01, a23 = a01, b23 = a01;
    for (int32_t b = 0; b < nb; b++, p += 128, q += 128) {
        /* one forward stream: ask for it early (a prefetch never faults;
         * the address is computed as an integer, it may be past the end) */
        _mm_prefetch((const char *)((uintptr_t)p + GEMV_PREFETCH), _MM_HINT_T0);
        _mm_prefetch((const char *)((uintptr_t)p + GEMV_PREFETCH + 64), _MM_HINT_T0);
        const __m512i w01 = _mm512_loadu_si512((const void *)p);
        const __m512i w23 = _mm512_loadu_si512((const void *)(p + 64));
        const __m512i q0 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)q));
        const __m512i q1 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q + 32)));
        const __m512i q2 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q + 64)));
        const __m512i q3 = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(q + 96)));
        a01 = _mm512_dpbusd_epi32(a01, _mm512_and_si512(_mm512_srli_epi16(w01, 6), mask), q0);
        a23 = _mm512_dpbusd_epi32(a23, _mm512_and_si512(_mm512_srli_epi16(w23, 6), mask), q0);
        b01 = _mm512_dpbusd_epi32(b01, _mm512_and_si512(_mm512_srli_epi16(w01, 4), mask), q1);
        b23 = _mm512_dpbusd_epi32(b23, _mm512_and_si512(_mm512_srli_epi16(w23, 4), mask), q1);
        a01 = _mm512_dpbusd_epi32(a01, _mm512_and_si512(_mm512_srli_epi16(w01, 2), mask), q2);
        a23 = _mm512_dpbusd_epi32(a23, _mm512_and_si512(_mm512_srli_epi16(w23, 2), mask), q2);
        b01 = _mm512_dpbusd_epi32(b01, _mm512_and_si512(w01, mask), q3);
        b23 = _mm512_dpbusd_epi32(b23, _mm512_and_si512(w23, mask), q3);
    }
    const __m512i s01 = _mm512_add_epi32(a01, b01), s23 = _mm512_add_epi32(a23, b23);
    /* low 256 bits: row 0 (resp. 2), high: row 1 (resp. 3) */
    return bitnet__x86_reduce4(_mm512_castsi512_si256(s01), _mm512_extracti64x4_epi64(s01, 1),
                               _mm512_castsi512_si256(s23), _mm512_extracti64x4_epi64(s23, 1));
}

BITNET_X86_TDRIVER_GEMV(avx512)

/*
 * GEMM: register tiles of one row group (4 rows) x up to TOK tokens. A
 * 128-column block of the group is loaded and unpacked once (two loads,
 * six shifts, eight ands: eight zmm of codes) and used by every token of
 * the tile: per token four 32-byte broadcasts and eight vpdpbusd. With
 * more than 4 tokens there are two accumulators per token (rows 0-1 and
 * 2-3: 16 accumulators + 8 code registers at 8 tokens); with 4 or fewer
 * four (even and odd fields apart), so that short tiles still have enough
 * independent vpdpbusd chains to hide their latency.
 *
 * Cache tiling: rows in blocks of RBLK groups (64 rows; at K = 6912 that is
 * 108 KiB of weights, kept in L2) and, for each block, the tokens in tiles
 * of at most TOK, near-equal in size (13 -> 7 + 6). Each token tile walks
 * the block's groups over the full K: its activations (TOK x K bytes:
 * 20 KiB at K = 2560) stay in L1/L2 across the groups, the block's weights
 * come from L2 for every tile after the first. Tokens are taken in
 * super-tiles of SUPER, whose per-token sums of q are computed once.
 */
#define TOK 8
#define RBLK 16
#ifndef GEMM_PREFETCH
#define GEMM_PREFETCH 2048
#endif
#define SUPER 256

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE void gemm_tile(const uint8_t *p, const int8_t *const *qp,
                                    int32_t nb, __m128i *out, const int nt)
{
    const int na = nt <= 4 ? 4 : 2;       /* accumulators per token */
    const __m512i mask = _mm512_set1_epi8(3);
    __m512i acc[4 * TOK];
    for (int i = 0; i < na * nt; i++)
        acc[i] = _mm512_setzero_si512();
    for (int32_t b = 0; b < nb; b++, p += 128) {
        /* the first token tile of a row block reads the group from DRAM:
         * with few tokens there is too little work per byte to hide that
         * (later tiles find it in L2, where this costs two issue slots) */
        _mm_prefetch((const char *)((uintptr_t)p + GEMM_PREFETCH), _MM_HINT_T0);
        _mm_prefetch((const char *)((uintptr_t)p + GEMM_PREFETCH + 64), _MM_HINT_T0);
        const __m512i w01 = _mm512_loadu_si512((const void *)p);
        const __m512i w23 = _mm512_loadu_si512((const void *)(p + 64));
        __m512i c01[4], c23[4];
        c01[0] = _mm512_and_si512(_mm512_srli_epi16(w01, 6), mask);
        c23[0] = _mm512_and_si512(_mm512_srli_epi16(w23, 6), mask);
        c01[1] = _mm512_and_si512(_mm512_srli_epi16(w01, 4), mask);
        c23[1] = _mm512_and_si512(_mm512_srli_epi16(w23, 4), mask);
        c01[2] = _mm512_and_si512(_mm512_srli_epi16(w01, 2), mask);
        c23[2] = _mm512_and_si512(_mm512_srli_epi16(w23, 2), mask);
        c01[3] = _mm512_and_si512(w01, mask);
        c23[3] = _mm512_and_si512(w23, mask);
        for (int f = 0; f < 4; f++) {
            const int o = na == 4 ? 2 * (f & 1) : 0;
            for (int t = 0; t < nt; t++) {
                const __m512i qf = _mm512_broadcast_i64x4(
                    _mm256_loadu_si256((const __m256i *)(qp[t] + (size_t)b * 128 + 32 * f)));
                acc[na * t + o] = _mm512_dpbusd_epi32(acc[na * t + o], c01[f], qf);
                acc[na * t + o + 1] = _mm512_dpbusd_epi32(acc[na * t + o + 1], c23[f], qf);
            }
        }
    }
    for (int t = 0; t < nt; t++) {
        __m512i s01 = acc[na * t], s23 = acc[na * t + 1];
        if (na == 4) {
            s01 = _mm512_add_epi32(s01, acc[na * t + 2]);
            s23 = _mm512_add_epi32(s23, acc[na * t + 3]);
        }
        out[t] = bitnet__x86_reduce4(_mm512_castsi512_si256(s01), _mm512_extracti64x4_epi64(s01, 1),
                                     _mm512_castsi512_si256(s23), _mm512_extracti64x4_epi64(s23, 1));
    }
}

/* One token tile against one row group: integer sums for each token. */
static void tile_dispatch(const uint8_t *p, const int8_t *const *qp, int32_t nb,
                          __m128i *out, int nt)
{
    switch (nt) {
    case 1: gemm_tile(p, qp, nb, out, 1); break;
    case 2: gemm_tile(p, qp, nb, out, 2); break;
    case 3: gemm_tile(p, qp, nb, out, 3); break;
    case 4: gemm_tile(p, qp, nb, out, 4); break;
    case 5: gemm_tile(p, qp, nb, out, 5); break;
    case 6: gemm_tile(p, qp, nb, out, 6); break;
    case 7: gemm_tile(p, qp, nb, out, 7); break;
    default: gemm_tile(p, qp, nb, out, 8); break;
    }
}

void bitnet__tgemm_avx512(const bitnet_tmat *w, int32_t r0, int32_t r1,
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
                /* near-equal tiles: tile ti covers [ns*ti/ntiles, ns*(ti+1)/ntiles) */
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
                    __m128i out[TOK];
                    tile_dispatch(bitnet__tmat_group(w, g), qp, nb, out, nt);
                    for (int t = 0; t < nt; t++) {
                        const int32_t i = s0 + t0 + t;
                        bitnet__x86_store_group(out[t], sums[t0 + t], act_scale[i], w->scale,
                            y + (size_t)i * (size_t)ldy + (base + lo - r0), lo, hi);
                    }
                }
            }
        }
    }
}
