/*
 * The library's random numbers: xoshiro256** seeded through splitmix64
 * (the sampler's draws, the synthetic model's weights). Same sequence on
 * every platform for a seed; not cryptographic.
 */
#ifndef BITNET_RNG_H
#define BITNET_RNG_H

#include <stdint.h>

static inline uint64_t bitnet__splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* State s[4] from a 64-bit seed. */
static inline void bitnet__rng_seed(uint64_t s[4], uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        s[i] = bitnet__splitmix64(&x);
}

static inline uint64_t bitnet__rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* The next 64 random bits (xoshiro256**). */
static inline uint64_t bitnet__rng_next(uint64_t s[4])
{
    uint64_t r = bitnet__rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = bitnet__rotl64(s[3], 45);
    return r;
}

#endif /* BITNET_RNG_H */
