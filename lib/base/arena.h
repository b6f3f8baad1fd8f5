/*
 * Arenas: one allocation carved into pieces that live and die together (the
 * model's packed weights, the vocabulary's tables). Taking a piece is a
 * pointer bump; there is no per-piece free.
 */
#ifndef BITNET_ARENA_H
#define BITNET_ARENA_H

#include <stddef.h>
#include <stdint.h>

enum {
    BITNET_ARENA_POPULATE = 1,   /* large arenas: anonymous pages populated
                                    up front (the caller writes them all) */
    BITNET_ARENA_HUGEPAGES = 2   /* ask for huge pages (tables touched at
                                    random) */
};

typedef struct bitnet_arena {
    uint8_t *base;
    size_t size, used;
    int mapped;                  /* base is a page mapping, not bitnet__aalloc */
} bitnet_arena;

/* Allocate size bytes aligned to align (a power of two >= 64; mappings are
 * page-aligned). Contents are unspecified. BITNET_OK or BITNET_E_NOMEM
 * without a message (the caller knows what it was for). */
int bitnet__arena_init(bitnet_arena *a, size_t size, size_t align, unsigned flags);
/* n bytes at the next multiple of align (a power of two); NULL when the
 * arena is exhausted. */
void *bitnet__arena_take(bitnet_arena *a, size_t n, size_t align);
/* Free everything; the arena is empty afterwards (safe to call twice). */
void bitnet__arena_release(bitnet_arena *a);

#endif /* BITNET_ARENA_H */
