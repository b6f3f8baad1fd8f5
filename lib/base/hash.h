/*
 * The library's hashes, in one place: bytes -> 32 bits for hash tables
 * (GGUF key/tensor indexes, the vocabulary), a 64-bit integer mixer (merge
 * tables) and the 64-bit FNV-1a that model fingerprints (and so state
 * blobs) are made of. Not cryptographic.
 */
#ifndef BITNET_HASH_H
#define BITNET_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a over the bytes, finished with the murmur3 mixer (FNV's low bits
 * mix poorly, and tables index by the low bits). */
static inline uint32_t bitnet__hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* murmur3's 64-bit finaliser. */
static inline uint64_t bitnet__hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* 64-bit FNV-1a, continued from h (start with BITNET_FNV64_INIT). Model
 * fingerprints are stored in state blobs: never change this function. */
#define BITNET_FNV64_INIT 14695981039346656037ull
static inline uint64_t bitnet__fnv64(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

#endif /* BITNET_HASH_H */
