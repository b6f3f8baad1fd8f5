/*
 * Arenas (base/arena.h).
 */
#include <string.h>

#include "base/arena.h"
#include "base/internal.h"

int bitnet__arena_init(bitnet_arena *a, size_t size, size_t align, unsigned flags)
{
    memset(a, 0, sizeof(*a));
    if ((flags & BITNET_ARENA_POPULATE) && size >= ((size_t)1 << 20)) {
        void *p = bitnet__pages_map(size);
        if (p) {
            a->base = p;
            a->size = size;
            a->mapped = 1;
            return BITNET_OK;
        }
    }
    a->base = bitnet__aalloc(size, align);
    if (!a->base) return BITNET_E_NOMEM;
    a->size = size;
    if ((flags & BITNET_ARENA_HUGEPAGES) && size >= ((size_t)1 << 21))
        bitnet__pages_advise_huge(a->base, size);
    return BITNET_OK;
}

void *bitnet__arena_take(bitnet_arena *a, size_t n, size_t align)
{
    if (!a->base) return NULL;
    size_t off = (a->used + align - 1) & ~(align - 1);
    if (off < a->used || off > a->size || a->size - off < n) return NULL;
    a->used = off + n;
    return a->base + off;
}

void bitnet__arena_release(bitnet_arena *a)
{
    if (a->mapped) bitnet__pages_unmap(a->base, a->size);
    else bitnet__afree(a->base);
    memset(a, 0, sizeof(*a));
}
