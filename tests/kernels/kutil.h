/*
 * Helpers shared by the kernel test (test_kernels.c) and the kernel
 * benchmark (bench_kernels.c): random numbers, aligned buffers, random
 * ternary matrices, the cumulative ISA levels.
 */
#ifndef BITNET_TESTS_KUTIL_H
#define BITNET_TESTS_KUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
# include <sys/mman.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
# include <immintrin.h>
#endif

#include "bitnet.h"
#include "kernels_impl.h"

#if defined(__GNUC__)
# define KUTIL_UNUSED __attribute__((unused))
#else
# define KUTIL_UNUSED
#endif

static int kutil_tmat_failures;   /* tmat pack/get round trips that failed */

/* ---- random numbers -------------------------------------------------- */

static uint64_t rng_state;

KUTIL_UNUSED static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

KUTIL_UNUSED static int32_t rnd_int(int32_t lo, int32_t hi) /* inclusive */
{
    return lo + (int32_t)(rnd() % (uint64_t)(hi - lo + 1));
}

KUTIL_UNUSED static float rnd_float(float amp)
{
    return (float)((double)(rnd() >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0) * amp;
}

/* 64-byte aligned; from 4 MiB up 2 MiB-aligned and advised for huge pages
 * before the first touch, as the library's weights and heads are (so that
 * the benchmarks stream memory the way the eval does). */
KUTIL_UNUSED static void *xaligned(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    const size_t align = bytes >= 2 * huge ? huge : 64;
    void *p = aligned_alloc(align, (bytes + align - 1) / align * align);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
#if defined(MADV_HUGEPAGE)
    if (align == huge)
        madvise(p, (bytes + align - 1) / align * align, MADV_HUGEPAGE);
#endif
    return p;
}

KUTIL_UNUSED static bitnet_tmat make_tmat(int32_t rows, int32_t cols, float zero_frac)
{
    int8_t *t = malloc((size_t)rows * (size_t)cols);
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++) {
        float u = (float)(rnd() % 10000) / 10000.0f;
        t[i] = u < zero_frac ? 0 : (rnd() & 1) ? 1 : -1;
    }
    bitnet_tmat w;
    w.rows = rows;
    w.cols = cols;
    w.cols_padded = (cols + BITNET_KPAD - 1) / BITNET_KPAD * BITNET_KPAD;
    w.scale = 0.25f + rnd_float(0.2f);
    w.size = bitnet__tmat_packed_size(rows, cols);
    w.data = xaligned(w.size);
    bitnet__tmat_pack(w.data, t, rows, cols);
    int ok = 1;
    for (int32_t r = 0; r < rows && ok; r++)
        for (int32_t c = 0; c < cols; c++)
            if (bitnet__tmat_get(&w, r, c) != t[(size_t)r * (size_t)cols + (size_t)c]) {
                ok = 0;
                break;
            }
    free(t);
    if (!ok) {
        printf("FAIL  tmat_pack/tmat_get round trip (%dx%d)\n", rows, cols);
        kutil_tmat_failures++;
    }
    return w;
}

/* The streaming read: four lines per step, one accumulator per line, with
 * the widest loads the CPU has (on Zen 5 the 8-byte C loop read 10-15 %
 * slower than 64-byte loads at two threads, which flattered every %read). */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f")))
KUTIL_UNUSED static uint64_t kutil_read_avx512(const uint8_t *b, size_t lo, size_t hi)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = lo; i < hi; i++) {
        const __m512i *p = (const __m512i *)(const void *)(b + 256 * i);
        s0 = _mm512_add_epi64(s0, _mm512_load_si512(p));
        s1 = _mm512_add_epi64(s1, _mm512_load_si512(p + 1));
        s2 = _mm512_add_epi64(s2, _mm512_load_si512(p + 2));
        s3 = _mm512_add_epi64(s3, _mm512_load_si512(p + 3));
    }
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(s0, s1),
                                                              _mm512_add_epi64(s2, s3)));
}
__attribute__((target("avx2")))
KUTIL_UNUSED static uint64_t kutil_read_avx2(const uint8_t *b, size_t lo, size_t hi)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = lo; i < hi; i++) {
        const __m256i *p = (const __m256i *)(const void *)(b + 256 * i);
        s0 = _mm256_add_epi64(s0, _mm256_add_epi64(_mm256_load_si256(p), _mm256_load_si256(p + 1)));
        s1 = _mm256_add_epi64(s1, _mm256_add_epi64(_mm256_load_si256(p + 2), _mm256_load_si256(p + 3)));
        s2 = _mm256_add_epi64(s2, _mm256_add_epi64(_mm256_load_si256(p + 4), _mm256_load_si256(p + 5)));
        s3 = _mm256_add_epi64(s3, _mm256_add_epi64(_mm256_load_si256(p + 6), _mm256_load_si256(p + 7)));
    }
    uint64_t t[4];
    _mm256_storeu_si256((__m256i *)(void *)t,
                        _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3)));
    return t[0] + t[1] + t[2] + t[3];
}
#endif
KUTIL_UNUSED static uint64_t kutil_read_c(const uint8_t *b, size_t lo, size_t hi)
{
    const uint64_t *p = (const uint64_t *)(const void *)b;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 32 * lo; i < 32 * hi; i += 4) {
        s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3];
    }
    return s0 + s1 + s2 + s3;
}

/* Sum of the 256-byte steps [lo, hi) of b (64-byte aligned), read with the
 * widest loads the CPU has: the reference "streaming read" of the benches. */
KUTIL_UNUSED static uint64_t kutil_read(const uint8_t *b, size_t lo, size_t hi)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f"))
        return kutil_read_avx512(b, lo, hi);
    if (__builtin_cpu_supports("avx2"))
        return kutil_read_avx2(b, lo, hi);
#endif
    return kutil_read_c(b, lo, hi);
}

/* ---- cumulative ISA levels -------------------------------------------------------------- */

static const struct { uint32_t flag; const char *name; } isa_order[] = {
#if defined(__x86_64__) || defined(_M_X64)
    { BITNET_CPU_AVX2, "avx2" }, { BITNET_CPU_AVX_VNNI, "avxvnni" },
    { BITNET_CPU_AVX512, "avx512" }, { BITNET_CPU_AMX, "amx" },
#elif defined(__aarch64__)
    { BITNET_CPU_NEON, "neon" }, { BITNET_CPU_DOTPROD, "dotprod" },
#endif
    { 0, NULL }
};

#endif /* BITNET_TESTS_KUTIL_H */
