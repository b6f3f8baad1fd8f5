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
#define HEAD_PREFETCH 1024
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

BITNET_HEAD_DRIVER(bitnet__head_f16_avx512, f16_rows)
