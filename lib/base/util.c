/*
 * Errors, logging, memory and params structs. System calls live in
 * base/platform.c.
 */
#define BITNET_ALLOC_IMPL 1     /* the real allocator is used here */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"

/* ---- errors ---------------------------------------------------------- */

static _Thread_local char last_error[512];

int bitnet__error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    return code;
}

void bitnet__clear_error(void)
{
    last_error[0] = '\0';
}

const char *bitnet_last_error(void)
{
    return last_error;
}

/* ---- logging --------------------------------------------------------- */

void bitnet__log(const bitnet_logger *lg, int32_t level, const char *fmt, ...)
{
    if (!lg || !lg->fn || level > lg->level)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    lg->fn(lg->user, level, buf);
}

/* ---- memory ---------------------------------------------------------- */

/* > 0: allocations left until the one that fails */
static atomic_long fail_countdown;

static int fail_now(void)
{
    if (BN_UNLIKELY(atomic_load_explicit(&fail_countdown, memory_order_relaxed) > 0))
        return atomic_fetch_sub(&fail_countdown, 1) == 1;
    return 0;
}

void bitnet__alloc_fail_at(long n)
{
    atomic_store(&fail_countdown, n > 0 ? n : 0);
}

long bitnet__alloc_fail_pending(void)
{
    long v = atomic_load(&fail_countdown);
    return v > 0 ? v : 0;
}

void *bitnet__malloc(size_t size)
{
    return fail_now() ? NULL : malloc(size);
}

void *bitnet__calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : calloc(n, size);
}

void *bitnet__realloc(void *p, size_t size)
{
    return fail_now() ? NULL : realloc(p, size);
}

void *bitnet__aalloc(size_t size, size_t alignment)
{
    if (size == 0 || fail_now())
        return NULL;
    if (alignment < sizeof(void *))
        alignment = sizeof(void *);
    /* Large buffers (converted heads, context buffers, the KV cache) start
     * on a 2 MiB boundary and ask for huge pages before they are first
     * touched: streaming a gigabyte of weights through 4 KiB pages costs a
     * TLB miss every 4 KiB. On the 2B4T shape, Zen 5, 2 threads: pp128
     * +20-30 %, tg64 +7-14 % (docs/performance.md). The hint is ignored
     * where unsupported. The KV cache is laid out so that it is touched
     * chunk by chunk (lib/eval/context.h), not a row here and there. */
    const int huge = size >= BITNET_HUGE_MIN;
    if (huge && alignment < BITNET_HUGE_ALIGN)
        alignment = BITNET_HUGE_ALIGN;
    /* round the size up so aligned_alloc's contract holds */
    size_t rounded;
    if (bitnet__add_ovf(size, alignment - 1, &rounded))
        return NULL;
    rounded &= ~(alignment - 1);
    void *p = NULL;
    if (posix_memalign(&p, alignment, rounded) != 0)
        return NULL;
    if (huge)
        bitnet__pages_advise_huge(p, rounded);
    return p;
}

void bitnet__afree(void *p)
{
    free(p);
}

char *bitnet__strndup(const char *s, size_t n)
{
    char *d = bitnet__malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *bitnet__strdup(const char *s)
{
    return bitnet__strndup(s, strlen(s));
}

/* ---- params structs -------------------------------------------------- */

int bitnet__params_merge(void *dst, size_t dst_size, const void *src,
                         const char *what)
{
    uint32_t src_size;
    memcpy(&src_size, src, sizeof(src_size));
    if (src_size < sizeof(uint32_t))
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "%s: struct_size %u is too small (use the "
                             "*_params_init macro)", what, (unsigned)src_size);
    /* No version of any params struct comes near this size; a larger value
     * is an uninitialised struct, and honouring it would read past the
     * caller's object. */
    if (src_size > BITNET__PARAMS_MAX_SIZE)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "%s: struct_size %u is larger than any version of "
                             "the struct (at most %u; use the *_params_init "
                             "macro)", what, (unsigned)src_size,
                             (unsigned)BITNET__PARAMS_MAX_SIZE);
    if (src_size > dst_size) {
        const unsigned char *tail = (const unsigned char *)src + dst_size;
        for (size_t i = 0; i < src_size - dst_size; i++)
            if (tail[i] != 0)
                return bitnet__error(BITNET_E_UNSUPPORTED,
                                     "%s: struct_size %u is larger than this "
                                     "library's %zu and field bytes at offset "
                                     "%zu are set: the caller uses a newer "
                                     "libbitnet header", what,
                                     (unsigned)src_size, dst_size, dst_size + i);
    }
    size_t n = src_size < dst_size ? src_size : dst_size;
    memcpy(dst, src, n);
    uint32_t sz = (uint32_t)dst_size;
    memcpy(dst, &sz, sizeof(sz));
    return BITNET_OK;
}
