/*
 * AMX-INT8 ternary GEMM for prompt processing (many tokens at once).
 *
 * tdpbusd computes C[m][n] += sum_k A[m][k] * B[k][n] with A unsigned and
 * B signed bytes. A = weight codes c = t + 1 (u8, 16 rows x 64 columns per
 * tile), B = int8 activations of 16 tokens in the VNNI layout (row k/4
 * holds, per token n, the 4 activations 4(k/4)..4(k/4)+3), C = 16 rows x
 * 16 tokens of int32. sum t*q = C - sum q (exact integers, as the
 * reference). Weights are unpacked to bytes once per 32-row block and
 * reused for every token; activations are repacked once per call.
 *
 * Work buffers are allocated per call; if that fails the AVX-512 kernel
 * computes the (identical) result instead.
 *
 * Built normally with -mamx-tile -mamx-int8 (+ AVX-512 flags), and by the
 * kernel test with -DBITNET_AMX_EMULATE, where the tile operations are plain
 * C on emulated tile registers, so that the blocking and index arithmetic
 * are tested on machines without AMX (with BITNET_AMX_EMULATE_SIMD the
 * AVX-512 weight unpacking is kept, run over SIMDe: tests/kernels).
 */
#include <stdlib.h>
#include <string.h>

#include "kernels_impl.h"

#define KT 64          /* bytes of K per tile row */
#define MT 16          /* rows per tile */
#define NT 16          /* tokens per tile */
#define RB 32          /* rows per block (two A tiles) */
#define TB 32          /* tokens per block (two B tiles) */
#define TCHUNK 128     /* tokens whose activations are repacked together */

#ifdef BITNET_AMX_EMULATE
/* Plain C tile registers for the test build. */
static uint8_t emu_tile[8][MT][64];

#define TILE_CONFIG() ((void)0)
#define TILE_RELEASE() ((void)0)
#define TILE_ZERO(t) memset(emu_tile[t], 0, sizeof(emu_tile[t]))
#define TILE_LOAD(t, p, stride) emu_load(t, (const uint8_t *)(p), stride)
#define TILE_STORE(t, p, stride) emu_store(t, (uint8_t *)(p), stride)
#define TILE_DPBUSD(c, a, b) emu_dpbusd(c, a, b)

static void emu_load(int t, const uint8_t *p, size_t stride)
{
    for (int r = 0; r < MT; r++)
        memcpy(emu_tile[t][r], p + (size_t)r * stride, 64);
}

static void emu_store(int t, uint8_t *p, size_t stride)
{
    for (int r = 0; r < MT; r++)
        memcpy(p + (size_t)r * stride, emu_tile[t][r], 64);
}

static void emu_dpbusd(int c, int a, int b)
{
    for (int m = 0; m < MT; m++)
        for (int n = 0; n < NT; n++) {
            int32_t acc;
            memcpy(&acc, &emu_tile[c][m][4 * n], 4);
            for (int k4 = 0; k4 < 16; k4++)
                for (int j = 0; j < 4; j++)
                    acc += (int32_t)emu_tile[a][m][4 * k4 + j] *
                           (int32_t)(int8_t)emu_tile[b][k4][4 * n + j];
            memcpy(&emu_tile[c][m][4 * n], &acc, 4);
        }
}
#define FALLBACK bitnet__tgemm_ref
#ifndef TGEMM_AMX
#define TGEMM_AMX bitnet__tgemm_amxemu
#endif
decl_tgemm_fn(TGEMM_AMX);
#else
#include <immintrin.h>

typedef struct {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

static void tile_config_all(void)
{
    tile_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {   /* every tile: 16 rows x 64 bytes */
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);
}
#define TILE_CONFIG() tile_config_all()
#define TILE_RELEASE() _tile_release()
#define TILE_ZERO(t) _tile_zero(t)
#define TILE_LOAD(t, p, stride) _tile_loadd(t, p, (long)(stride))
#define TILE_STORE(t, p, stride) _tile_stored(t, p, (long)(stride))
#define TILE_DPBUSD(c, a, b) _tile_dpbusd(c, a, b)
#define FALLBACK bitnet__tgemm_avx512
#define TGEMM_AMX bitnet__tgemm_amx
#endif

/* Codes of the RB rows starting at group g0 -> a[RB][kp] (rows past the
 * matrix are zeros; they are computed and never stored). */
static void unpack_rows(const bitnet_tmat *w, int32_t g0, uint8_t *a, size_t kp)
{
    const int32_t nb = w->cols_padded / 128;
    const int32_t ngroups = (w->rows + BITNET_TMAT_GROUP - 1) / BITNET_TMAT_GROUP;
    for (int32_t gi = 0; gi < RB / BITNET_TMAT_GROUP; gi++) {
        const int32_t g = g0 + gi;
        uint8_t *dst = a + (size_t)gi * BITNET_TMAT_GROUP * kp;
        if (g >= ngroups) {
            memset(dst, 0, BITNET_TMAT_GROUP * kp);
            continue;
        }
        const uint8_t *p = bitnet__tmat_group(w, g);
#if !defined(BITNET_AMX_EMULATE) || defined(BITNET_AMX_EMULATE_SIMD)
        const __m512i mask = _mm512_set1_epi8(3);
        for (int32_t b = 0; b < nb; b++)
            for (int i = 0; i < BITNET_TMAT_GROUP; i += 2) {   /* rows i, i + 1 */
                const __m512i v = _mm512_loadu_si512((const void *)(p + ((size_t)b * BITNET_TMAT_GROUP + (size_t)i) * 32));
                uint8_t *d0 = dst + (size_t)i * kp + (size_t)b * 128, *d1 = d0 + kp;
#define FIELD(f, sh) do { \
                    const __m512i c = _mm512_and_si512(_mm512_srli_epi16(v, sh), mask); \
                    _mm256_storeu_si256((__m256i *)(d0 + 32 * (f)), _mm512_castsi512_si256(c)); \
                    _mm256_storeu_si256((__m256i *)(d1 + 32 * (f)), _mm512_extracti64x4_epi64(c, 1)); \
                } while (0)
                FIELD(0, 6);
                FIELD(1, 4);
                FIELD(2, 2);
                FIELD(3, 0);
#undef FIELD
            }
#else
        for (int32_t b = 0; b < nb; b++)
            for (int i = 0; i < BITNET_TMAT_GROUP; i++) {
                const uint8_t *src = p + ((size_t)b * BITNET_TMAT_GROUP + (size_t)i) * 32;
                uint8_t *d = dst + (size_t)i * kp + (size_t)b * 128;
                for (int j = 0; j < 32; j++) {
                    const uint8_t c = src[j];
                    d[j] = c >> 6;
                    d[32 + j] = (c >> 4) & 3;
                    d[64 + j] = (c >> 2) & 3;
                    d[96 + j] = c & 3;
                }
            }
#endif
    }
}

/* Activations of tokens [0, nt) -> VNNI tiles b[nt16][kp/4][64], padding
 * tokens zero; sums[i] = sum of token i's activations. */
static void pack_acts(const int8_t *q, size_t kp, int32_t nt, uint8_t *b, int32_t *sums)
{
    const int32_t nt16 = (nt + NT - 1) / NT;
    memset(b, 0, (size_t)nt16 * NT * kp);
    for (int32_t i = 0; i < nt; i++) {
        const int8_t *qi = q + (size_t)i * kp;
        uint8_t *dst = b + (size_t)(i / NT) * NT * kp + (size_t)(i % NT) * 4;
        int32_t s = 0;
        for (size_t k = 0; k < kp; k++)
            s += qi[k];
        for (size_t k4 = 0; k4 < kp / 4; k4++)     /* 4 bytes at a time */
            memcpy(dst + k4 * 64, qi + 4 * k4, 4);
        sums[i] = s;
    }
}

void TGEMM_AMX(const bitnet_tmat *w, int32_t r0, int32_t r1, const int8_t *q,
               const float *act_scale, int32_t n, float *y, int32_t ldy)
{
    if (r1 <= r0 || n <= 0)
        return;
    const size_t kp = (size_t)w->cols_padded;
    const int32_t tchunk = n < TCHUNK ? n : TCHUNK;
    const size_t nt16max = (size_t)(tchunk + NT - 1) / NT;
    const size_t abytes = RB * kp, bbytes = nt16max * NT * kp;
    uint8_t *buf = aligned_alloc(64, abytes + bbytes + 64);
    if (!buf) {
        FALLBACK(w, r0, r1, q, act_scale, n, y, ldy);
        return;
    }
    uint8_t *abuf = buf, *bbuf = buf + abytes;
    int32_t sums[TCHUNK];
    int32_t c[MT][NT], ct[NT][MT];
    TILE_CONFIG();
    for (int32_t i0 = 0; i0 < n; i0 += TCHUNK) {
        const int32_t nt = n - i0 < TCHUNK ? n - i0 : TCHUNK;
        const int32_t nt16 = (nt + NT - 1) / NT;
        pack_acts(q + (size_t)i0 * kp, kp, nt, bbuf, sums);
        for (int32_t g0 = r0 / BITNET_TMAT_GROUP; g0 * BITNET_TMAT_GROUP < r1;
             g0 += RB / BITNET_TMAT_GROUP) {
            const int32_t row0 = g0 * BITNET_TMAT_GROUP;
            unpack_rows(w, g0, abuf, kp);
            for (int32_t t0 = 0; t0 < nt16; t0 += TB / NT) {
                const int two = t0 + 1 < nt16;       /* second token tile? */
                const uint8_t *b0 = bbuf + (size_t)t0 * NT * kp;
                const uint8_t *b1 = b0 + NT * kp;
                TILE_ZERO(0);
                TILE_ZERO(1);
                TILE_ZERO(2);
                TILE_ZERO(3);
                for (size_t k = 0; k < kp; k += KT) {
                    TILE_LOAD(4, abuf + k, kp);
                    TILE_LOAD(5, abuf + MT * kp + k, kp);
                    TILE_LOAD(6, b0 + k * 16, 64);   /* 16 rows of K/4 */
                    TILE_DPBUSD(0, 4, 6);
                    TILE_DPBUSD(1, 5, 6);
                    if (two) {
                        TILE_LOAD(7, b1 + k * 16, 64);
                        TILE_DPBUSD(2, 4, 7);
                        TILE_DPBUSD(3, 5, 7);
                    }
                }
                for (int tile = 0; tile < (two ? 4 : 2); tile++) {
                    switch (tile) {                  /* tile ids are immediates */
                    case 0: TILE_STORE(0, c, NT * 4); break;
                    case 1: TILE_STORE(1, c, NT * 4); break;
                    case 2: TILE_STORE(2, c, NT * 4); break;
                    default: TILE_STORE(3, c, NT * 4); break;
                    }
                    const int32_t rt = row0 + (tile & 1) * MT;      /* first row */
                    const int32_t tt = (t0 + (tile >> 1)) * NT;     /* first token */
                    const int mlo = rt < r0 ? (int)(r0 - rt) : 0;
                    const int mhi = rt + MT > r1 ? (int)(r1 - rt) : MT;
                    if (mlo >= mhi)
                        continue;
                    /* transpose so that the epilogue runs along y's rows
                     * (contiguous, vectorised by the compiler) */
                    for (int m = 0; m < MT; m++)
                        for (int j = 0; j < NT; j++)
                            ct[j][m] = c[m][j];
                    for (int j = 0; j < NT && tt + j < nt; j++) {
                        const int32_t tok = i0 + tt + j;
                        const int32_t sq = sums[tt + j];
                        const float as = act_scale[tok], ws = w->scale;
                        float *yt = y + (size_t)tok * (size_t)ldy + (size_t)(rt + mlo - r0);
                        for (int m = mlo; m < mhi; m++)
                            yt[m - mlo] = bitnet__tepilogue(ct[j][m] - sq, as, ws);
                    }
                }
            }
        }
    }
    TILE_RELEASE();
    free(buf);
}
