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
#define HEAD_PREFETCH 2048
#endif

/*
 * F16: per row two fp32 accumulators (even and odd 16-column chunks, the
 * masked tail chunk to its parity's), folded by _mm512_reduce_add_ps. Four
 * rows at a time share the x loads; leftover rows run alone with the same
 * per-row operations, so a row's value never depends on its neighbours.
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
    int32_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint16_t *a = w + (size_t)r * ldw, *b = a + ldw, *c = b + ldw, *d = c + ldw;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
        __m512 c0 = a0, c1 = a0, d0 = a0, d1 = a0;
        int32_t j = 0;
        for (; j + 32 <= kfull; j += 32) {
            _mm_prefetch((const char *)((uintptr_t)(a + j) + HEAD_PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *)((uintptr_t)(b + j) + HEAD_PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *)((uintptr_t)(c + j) + HEAD_PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *)((uintptr_t)(d + j) + HEAD_PREFETCH), _MM_HINT_T0);
            const __m512 x0 = _mm512_loadu_ps(x + j), x1 = _mm512_loadu_ps(x + j + 16);
            F16_STEP(a0, a, j, x0); F16_STEP(a1, a, j + 16, x1);
            F16_STEP(b0, b, j, x0); F16_STEP(b1, b, j + 16, x1);
            F16_STEP(c0, c, j, x0); F16_STEP(c1, c, j + 16, x1);
            F16_STEP(d0, d, j, x0); F16_STEP(d1, d, j + 16, x1);
        }
        if (j < kfull) {          /* one more full chunk: even index */
            const __m512 x0 = _mm512_loadu_ps(x + j);
            F16_STEP(a0, a, j, x0); F16_STEP(b0, b, j, x0);
            F16_STEP(c0, c, j, x0); F16_STEP(d0, d, j, x0);
        }
        if (tail) {
#define F16_TAIL(e, o, row) do { \
            const __m512 v = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail, (row) + kfull)); \
            if (tpar) o = _mm512_fmadd_ps(v, xt, o); else e = _mm512_fmadd_ps(v, xt, e); \
        } while (0)
            F16_TAIL(a0, a1, a); F16_TAIL(b0, b1, b); F16_TAIL(c0, c1, c); F16_TAIL(d0, d1, d);
        }
        y[r - r0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        y[r + 1 - r0] = _mm512_reduce_add_ps(_mm512_add_ps(b0, b1));
        y[r + 2 - r0] = _mm512_reduce_add_ps(_mm512_add_ps(c0, c1));
        y[r + 3 - r0] = _mm512_reduce_add_ps(_mm512_add_ps(d0, d1));
    }
    for (; r < r1; r++) {
        const uint16_t *a = w + (size_t)r * ldw;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        int32_t j = 0;
        for (; j + 32 <= kfull; j += 32) {
            _mm_prefetch((const char *)((uintptr_t)(a + j) + HEAD_PREFETCH), _MM_HINT_T0);
            const __m512 x0 = _mm512_loadu_ps(x + j), x1 = _mm512_loadu_ps(x + j + 16);
            F16_STEP(a0, a, j, x0); F16_STEP(a1, a, j + 16, x1);
        }
        if (j < kfull)
            F16_STEP(a0, a, j, _mm512_loadu_ps(x + j));
        if (tail)
            F16_TAIL(a0, a1, a);
#undef F16_TAIL
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
