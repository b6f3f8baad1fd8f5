/*
 * AVX-512 F16 output head: F16C conversions of 16 weights at a time, FMA
 * into fp32 accumulators, masked loads for the tail (no scalar tail).
 * Bound against the reference: docs/kernels.md.
 */
#include <immintrin.h>

#include "kernels_impl.h"

/* Rows are forward streams: prefetch this many bytes ahead (past a row's
 * end that is the next rows, which come next). */
#ifndef HEAD_PREFETCH
#define HEAD_PREFETCH 4096
#endif

/*
 * F16: per row two fp32 accumulators (even and odd 16-column chunks, the
 * masked tail chunk to its parity's), folded by _mm512_reduce_add_ps. One
 * row at a time: a single forward stream per thread. Four rows sharing the
 * x loads were faster from cache (106 against 80 GB/s per core on Zen 5)
 * but their four streams reached only 67-81 % of the read bandwidth, one
 * stream 91-112 % (docs/performance.md).
 */
#define F16_STEP(acc, row, j, xv) \
    acc = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((row) + (j)))), xv, acc)

static void f16_rows(const uint8_t *wb, size_t row_bytes, int32_t r0, int32_t r1,
                     const void *xq, int32_t k, float *y)
{
    const uint16_t *w = (const uint16_t *)(const void *)wb;
    const size_t ldw = row_bytes / 2;
    const float *x = xq;
    const int32_t kfull = k & ~15;
    const int tpar = (kfull / 16) & 1;    /* accumulator of the tail chunk */
    const __mmask16 tail = (__mmask16)((1u << (k & 15)) - 1);
    const __m512 xt = _mm512_maskz_loadu_ps(tail, x + kfull);
    for (int32_t r = r0; r < r1; r++) {
        const uint16_t *a = w + (size_t)r * ldw;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        int32_t j = 0;
        for (; j + 32 <= kfull; j += 32) {
            _mm_prefetch((const char *)((uintptr_t)(a + j) + HEAD_PREFETCH), _MM_HINT_T0);
            const __m512 x0 = _mm512_loadu_ps(x + j), x1 = _mm512_loadu_ps(x + j + 16);
            F16_STEP(a0, a, j, x0); F16_STEP(a1, a, j + 16, x1);
        }
        if (j < kfull)            /* one more full chunk: even index */
            F16_STEP(a0, a, j, _mm512_loadu_ps(x + j));
        if (tail) {
            const __m512 v = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail, a + kfull));
            if (tpar) a1 = _mm512_fmadd_ps(v, xt, a1); else a0 = _mm512_fmadd_ps(v, xt, a0);
        }
        y[r - r0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

/*
 * Several tokens: nr (1-2) rows times nt (1-4) tokens per pass, each 16
 * weights converted once for all nt tokens (the conversion, not the FMA,
 * bounds the one-token loop when rows come from cache). Every (row, token)
 * has f16_rows' two accumulators, FMAs and order, so each token gets its
 * one-token result bit for bit (check_heads).
 */
static inline __attribute__((always_inline)) void
f16_block(const uint16_t *w, size_t ldw, const int nr, const float *const *x,
          const int nt, int32_t k, float *const *y)
{
    const int32_t kfull = k & ~15;
    const int tpar = (kfull / 16) & 1;
    const __mmask16 tail = (__mmask16)((1u << (k & 15)) - 1);
    __m512 acc[2][4][2];
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++)
            acc[r][t][0] = acc[r][t][1] = _mm512_setzero_ps();
    int32_t j = 0;
    for (; j + 32 <= kfull; j += 32) {
        __m512 w0[2], w1[2];
        for (int r = 0; r < nr; r++) {
            const uint16_t *row = w + (size_t)r * ldw;
            _mm_prefetch((const char *)((uintptr_t)(row + j) + HEAD_PREFETCH), _MM_HINT_T0);
            w0[r] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + j)));
            w1[r] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + j + 16)));
        }
        for (int t = 0; t < nt; t++) {
            const __m512 x0 = _mm512_loadu_ps(x[t] + j), x1 = _mm512_loadu_ps(x[t] + j + 16);
            for (int r = 0; r < nr; r++) {
                acc[r][t][0] = _mm512_fmadd_ps(w0[r], x0, acc[r][t][0]);
                acc[r][t][1] = _mm512_fmadd_ps(w1[r], x1, acc[r][t][1]);
            }
        }
    }
    if (j < kfull) {              /* one more full chunk: even index */
        for (int r = 0; r < nr; r++) {
            const __m512 v = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + (size_t)r * ldw + j)));
            for (int t = 0; t < nt; t++)
                acc[r][t][0] = _mm512_fmadd_ps(v, _mm512_loadu_ps(x[t] + j), acc[r][t][0]);
        }
    }
    if (tail) {
        for (int r = 0; r < nr; r++) {
            const __m512 v = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail, w + (size_t)r * ldw + kfull));
            for (int t = 0; t < nt; t++) {
                const __m512 xt = _mm512_maskz_loadu_ps(tail, x[t] + kfull);
                acc[r][t][tpar] = _mm512_fmadd_ps(v, xt, acc[r][t][tpar]);
            }
        }
    }
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++)
            y[t][r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][t][0], acc[r][t][1]));
}

#define F16_BLOCK_NT(nr, nt) \
    f16_block(w + (size_t)r * ldw, ldw, nr, xp, nt, k, yp)

void bitnet__head_f16_avx512(const uint8_t *wb, size_t row_bytes, int32_t r0, int32_t r1,
                             const void *xq, size_t ldx, int32_t n, int32_t k, float *y,
                             size_t ldy)
{
    if (n == 1) {
        f16_rows(wb, row_bytes, r0, r1, xq, k, y);
        return;
    }
    const uint16_t *w = (const uint16_t *)(const void *)wb;
    const size_t ldw = row_bytes / 2;
    for (int32_t b0 = r0; b0 < r1; b0 += BITNET_HEAD_RBLOCK) {
        const int32_t b1 = r1 - b0 < BITNET_HEAD_RBLOCK ? r1 : b0 + BITNET_HEAD_RBLOCK;
        for (int32_t t0 = 0; t0 < n; t0 += 4) {
            const int nt = n - t0 < 4 ? (int)(n - t0) : 4;
            const float *xp[4];
            float *yp[4];
            for (int t = 0; t < nt; t++)
                xp[t] = (const float *)(const void *)((const uint8_t *)xq + (size_t)(t0 + t) * ldx);
            for (int32_t r = b0; r < b1; ) {
                const int nr = b1 - r >= 2 ? 2 : 1;
                for (int t = 0; t < nt; t++)
                    yp[t] = y + (size_t)(t0 + t) * ldy + (size_t)(r - r0);
                if (nr == 2) {
                    switch (nt) {
                    case 4: F16_BLOCK_NT(2, 4); break;
                    case 3: F16_BLOCK_NT(2, 3); break;
                    case 2: F16_BLOCK_NT(2, 2); break;
                    default: F16_BLOCK_NT(2, 1); break;
                    }
                } else {
                    switch (nt) {
                    case 4: F16_BLOCK_NT(1, 4); break;
                    case 3: F16_BLOCK_NT(1, 3); break;
                    case 2: F16_BLOCK_NT(1, 2); break;
                    default: F16_BLOCK_NT(1, 1); break;
                    }
                }
                r += nr;
            }
        }
    }
}
#undef F16_BLOCK_NT
