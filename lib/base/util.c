/*
 * Errors, logging, memory and params structs. System calls live in
 * base/platform.c.
 */
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

void *bitnet__aalloc(size_t size, size_t alignment)
{
    if (size == 0)
        return NULL;
    if (alignment < sizeof(void *))
        alignment = sizeof(void *);
    /* round the size up so aligned_alloc's contract holds */
    size_t rounded;
    if (bitnet__add_ovf(size, alignment - 1, &rounded))
        return NULL;
    rounded &= ~(alignment - 1);
    void *p = NULL;
    if (posix_memalign(&p, alignment, rounded) != 0)
        return NULL;
    return p;
}

void bitnet__afree(void *p)
{
    free(p);
}

char *bitnet__strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
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
