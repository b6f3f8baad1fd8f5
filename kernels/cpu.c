/*
 * CPU feature detection, once per process (docs/kernels.md, "Dispatch").
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "bitnet.h"
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

/* Linux keeps AMX tile data disabled per process until asked for. */
static int amx_permission(void)
{
#if defined(__linux__) && defined(SYS_arch_prctl)
    const long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

static uint32_t detect_hw(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d))
        return 0;
    const unsigned max_leaf = a;
    __cpuid(1, a, b, c, d);
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1;
    const int avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx || max_leaf < 7)
        return 0;
    const uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6)                   /* XMM and YMM state */
        return 0;
    unsigned sub_max;
    __cpuid_count(7, 0, a, b, c, d);
    sub_max = a;
    const int avx2 = (b >> 5) & 1;
    const int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1;
    const int vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
    const int amx_tile = (d >> 24) & 1, amx_int8 = (d >> 25) & 1;
    int avxvnni = 0;
    if (sub_max >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        avxvnni = (a >> 4) & 1;
    }
    uint32_t flags = 0;
    if (!(avx2 && fma && f16c))
        return 0;
    flags |= BITNET_CPU_AVX2;
    if (avxvnni)
        flags |= BITNET_CPU_AVX_VNNI;
    if ((xcr0 & 0xe6) == 0xe6 && f && bw && vl && dq && vnni)
        flags |= BITNET_CPU_AVX512;
    else
        return flags;
    if (amx_tile && amx_int8 && (xcr0 & (3u << 17)) == (3u << 17) && amx_permission())
        flags |= BITNET_CPU_AMX;
    return flags;
}

#elif defined(__aarch64__)
#if defined(__linux__)
#include <sys/auxv.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

static uint32_t detect_hw(void)
{
    uint32_t flags = BITNET_CPU_NEON;
#if defined(__linux__)
    if (getauxval(AT_HWCAP) & (1ul << 20))     /* HWCAP_ASIMDDP */
        flags |= BITNET_CPU_DOTPROD;
#elif defined(__APPLE__)
    int v = 0;
    size_t len = sizeof(v);
    if (!sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) && v)
        flags |= BITNET_CPU_DOTPROD;
#endif
    return flags;
}

#else
static uint32_t detect_hw(void) { return 0; }
#endif

uint32_t bitnet__cpu_apply_mask(uint32_t flags, const char *mask)
{
    if (!mask || !*mask)
        return flags;
    char *end = NULL;
    errno = 0;
    unsigned long m = strtoul(mask, &end, 0);
    if (errno || end == mask || *end != '\0')
        return flags;                          /* unparsable: ignored */
    return flags & (uint32_t)m;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static uint32_t hw_flags, masked_flags;

static void detect_once(void)
{
    hw_flags = detect_hw();
    masked_flags = bitnet__cpu_apply_mask(hw_flags, getenv("BITNET_CPU_MASK"));
}

uint32_t bitnet__cpu_detect_raw(void)
{
    pthread_once(&once, detect_once);
    return hw_flags;
}

uint32_t bitnet__cpu_detect(void)
{
    pthread_once(&once, detect_once);
    return masked_flags;
}
