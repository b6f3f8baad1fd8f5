/*
 * Code point classes for the pre-tokenizers (generated tables in
 * unicode_data.c, made by gen_unicode.py) and UTF-8 decoding.
 */
#ifndef BITNET_UNICODE_H
#define BITNET_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* General category groups (exactly one per code point) and White_Space. */
enum {
    BN_U_UNDEF  = 0x01,   /* Cn: unassigned       */
    BN_U_NUMBER = 0x02,   /* \p{N}                 */
    BN_U_LETTER = 0x04,   /* \p{L}                 */
    BN_U_SEP    = 0x08,   /* \p{Z}                 */
    BN_U_MARK   = 0x10,   /* \p{M}                 */
    BN_U_PUNCT  = 0x20,   /* \p{P}                 */
    BN_U_SYMBOL = 0x40,   /* \p{S}                 */
    BN_U_CTRL   = 0x80,   /* \p{C} except Cn       */
    BN_U_SPACE  = 0x100   /* White_Space property (\s) */
};

extern const uint16_t bitnet__ucp_latin1[256];
extern const uint32_t bitnet__ucp_nranges;
extern const uint32_t bitnet__ucp_ranges[];

/* Flags of a code point; 0x110000 and above get BN_U_UNDEF. */
static inline unsigned bitnet__ucp_flags(uint32_t cp)
{
    if (cp < 256) return bitnet__ucp_latin1[cp];
    if (cp >= 0x110000) return BN_U_UNDEF;
    uint32_t lo = 0, hi = bitnet__ucp_nranges;   /* find last start <= cp */
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if ((bitnet__ucp_ranges[mid] >> 9) <= cp) lo = mid; else hi = mid;
    }
    return bitnet__ucp_ranges[lo] & 0x1ff;
}

/* Decode one UTF-8 sequence from s[0..n) (n >= 1). Returns its length in
 * bytes (1..4) and stores the code point; an invalid or truncated sequence
 * (overlong, surrogate, > U+10FFFF) is reported as length 1 with *cp set to
 * BN_U_INVALID. Never reads past s + n. */
#define BN_U_INVALID 0xFFFFFFFFu
static inline size_t bitnet__utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    size_t len; uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else { *cp = BN_U_INVALID; return 1; }
    if (len > n) { *cp = BN_U_INVALID; return 1; }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) { *cp = BN_U_INVALID; return 1; }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = BN_U_INVALID;
        return 1;
    }
    *cp = v;
    return len;
}

/* Length a lead byte announces, by its high nibble (continuation bytes 1,
 * 0xF8..0xFF 4), as SentencePiece-style splitting in llama.cpp counts it. */
static inline size_t bitnet__utf8_lead_len(unsigned char c)
{
    return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

#endif /* BITNET_UNICODE_H */
