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
