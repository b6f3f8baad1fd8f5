/*
 * Pre-tokenizers: the text is cut into pieces before merging, by
 * hand-written scanners equivalent to the llama3 and gpt-2 regexes and the
 * four-pass "default" split. They work on units (one per code point) with
 * the Unicode class flags of text/unicode.h.
 */
#include <stdlib.h>
#include <string.h>

#include "text/unicode.h"
#include "text/vocab_impl.h"

/* Fill units for text[0..len); returns the unit count or SIZE_MAX on OOM.
 * u[n].off = len. Invalid bytes are single units with the flags of U+FFFD. */
static size_t decode_units(scratch *sc, const char *text, size_t len)
{
    if (grow((void **)&sc->u, &sc->u_cap, len + 1, sizeof(unit))) return SIZE_MAX;
    const unsigned char *s = (const unsigned char *)text;
    unit *u = sc->u;
    size_t i = 0, n = 0;
    unsigned fffd = bitnet__ucp_flags(0xFFFD);
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            u[n].off = (uint32_t)i;
            u[n].fl = bitnet__ucp_latin1[c];
            u[n].c = (uint16_t)c;
            n++;
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = bitnet__utf8_decode(s + i, len - i, &cp);
        u[n].off = (uint32_t)i;
        u[n].fl = (uint16_t)(cp == BN_U_INVALID ? fffd : bitnet__ucp_flags(cp));
        u[n].c = 0x80;
        n++;
        i += l;
    }
    u[n].off = (uint32_t)len;
    u[n].fl = 0;
    u[n].c = 0;
    return n;
}

#define OOR 0xFFFFu
#define F(p) ((p) < end ? u[p].fl : 0u)
#define C(p) ((p) < end ? (unsigned)u[p].c : OOR)
#define IS_L(f) ((f) & BN_U_LETTER)
#define IS_N(f) ((f) & BN_U_NUMBER)
#define IS_WS(f) ((f) & BN_U_SPACE)

static unsigned lower_ascii(unsigned c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Contractions 's 't 're 've 'm 'll 'd at pos; returns the match length. */
static size_t contraction(const unit *u, size_t pos, size_t end, int ci)
{
    if (C(pos) != '\'' || pos + 1 >= end) return 0;
    unsigned a = C(pos + 1);
    if (ci) a = lower_ascii(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 < end) {
        unsigned b = C(pos + 2);
        if (ci) b = lower_ascii(b);
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    return 0;
}

/* GPT-2 pattern on units [beg, end): sets cut[] at piece starts. */
static void split_gpt2(const unit *u, uint8_t *cut, size_t beg, size_t end)
{
    size_t pos = beg;
    while (pos < end) {
        cut[pos] = 1;
        size_t m = contraction(u, pos, end, 0);
        if (m) { pos += m; continue; }
        unsigned c = C(pos), f = F(pos);
        unsigned f2 = c == ' ' ? F(pos + 1) : f;
        if (IS_L(f2)) {
            pos += c == ' ';
            while (IS_L(f2)) { pos++; f2 = F(pos); }
            continue;
        }
        if (IS_N(f2)) {
            pos += c == ' ';
            while (IS_N(f2)) { pos++; f2 = F(pos); }
            continue;
        }
        if (!(f2 & (BN_U_SPACE | BN_U_LETTER | BN_U_NUMBER)) && f2) {
            pos += c == ' ';
            while (!(f2 & (BN_U_SPACE | BN_U_LETTER | BN_U_NUMBER)) && f2) { pos++; f2 = F(pos); }
            continue;
        }
        size_t nws = 0;
        while (IS_WS(F(pos + nws))) nws++;
        if (nws > 1 && pos + nws < end) { pos += nws - 1; continue; }
        if (nws > 0) { pos += nws; continue; }
        pos++;
    }
}

/* Llama-3 pattern on units [beg, end). */
static void split_llama3(const unit *u, uint8_t *cut, size_t beg, size_t end)
{
    size_t pos = beg;
    while (pos < end) {
        cut[pos] = 1;
        size_t m = contraction(u, pos, end, 1);
        if (m) { pos += m; continue; }
        unsigned c = C(pos), f = F(pos);
        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (!(c == '\r' || c == '\n' || IS_N(f))) {
            if (IS_L(f) || IS_L(F(pos + 1))) {
                pos++;
                while (IS_L(F(pos))) pos++;
                continue;
            }
        }
        /* \p{N}{1,3} */
        if (IS_N(f)) {
            size_t ini = pos;
            while (IS_N(F(pos))) {
                if (++pos - ini >= 3) {
                    if (pos < end) cut[pos] = 1;
                    ini = pos;
                }
            }
            continue;
        }
        /* ' '?[^\s\p{L}\p{N}]+[\r\n]* */
        unsigned f2 = c == ' ' ? F(pos + 1) : f;
        if (!(f2 & (BN_U_SPACE | BN_U_LETTER | BN_U_NUMBER)) && f) {
            pos += c == ' ';
            while (!(f2 & (BN_U_SPACE | BN_U_LETTER | BN_U_NUMBER)) && f2) { pos++; f2 = F(pos); }
            unsigned c2 = C(pos);
            while (c2 == '\r' || c2 == '\n') { pos++; c2 = C(pos); }
            continue;
        }
        size_t nws = 0, last_rn = 0;
        while (IS_WS(F(pos + nws))) {
            unsigned c2 = C(pos + nws);
            if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) { pos = last_rn; continue; }                 /* \s*[\r\n]+ */
        if (nws > 1 && pos + nws < end) { pos += nws - 1; continue; }  /* \s+(?!\S) */
        if (nws > 0) { pos += nws; continue; }                         /* \s+ */
        pos++;
    }
}

/* "Default" pass 1: runs of [\p{P}$+<=>^~|] are pieces. */
static int is_punct_ext(const unit *x)
{
    if (x->fl & BN_U_PUNCT) return 1;
    switch (x->c) {
    case '$': case '+': case '<': case '=': case '>': case '^': case '~': case '|': return 1;
    default: return 0;
    }
}

static void split_runs(const unit *u, uint8_t *cut, size_t beg, size_t end, int which)
{
    /* which 0: [\p{P}$+<=>^~|]+   which 1: \p{N}+ */
    size_t pos = beg;
    while (pos < end) {
        int in = which == 0 ? is_punct_ext(&u[pos]) : !!IS_N(u[pos].fl);
        size_t q = pos + 1;
        while (q < end && (which == 0 ? is_punct_ext(&u[q]) : !!IS_N(u[q].fl)) == in) q++;
        cut[pos] = 1;
        pos = q;
    }
}

static void split_digits3(const unit *u, uint8_t *cut, size_t beg, size_t end)
{
    /* [0-9][0-9][0-9]: leftmost non-overlapping matches */
    size_t pos = beg;
    cut[beg] = 1;
    while (pos + 3 <= end) {
        unsigned a = u[pos].c, b = u[pos + 1].c, c = u[pos + 2].c;
        if (a >= '0' && a <= '9' && b >= '0' && b <= '9' && c >= '0' && c <= '9') {
            cut[pos] = 1;
            pos += 3;
            if (pos < end) cut[pos] = 1;
        } else {
            pos++;
        }
    }
}

typedef void (*split_fn)(const unit *, uint8_t *, size_t, size_t);

static void pass(const unit *u, uint8_t *cut, size_t n, int kind)
{
    size_t beg = 0;
    while (beg < n) {
        size_t end = beg + 1;
        while (end < n && !cut[end]) end++;
        switch (kind) {
        case 0: split_runs(u, cut, beg, end, 0); break;
        case 1: split_gpt2(u, cut, beg, end); break;
        case 2: split_runs(u, cut, beg, end, 1); break;
        case 3: split_digits3(u, cut, beg, end); break;
        case 4: split_llama3(u, cut, beg, end); break;
        }
        beg = end;
    }
}

size_t bitnet__pretok_cut(scratch *sc, int pt, const char *text, size_t len)
{
    size_t n = decode_units(sc, text, len);
    if (n == SIZE_MAX || grow((void **)&sc->cut, &sc->cut_cap, n + 1, 1)) return SIZE_MAX;
    uint8_t *cut = sc->cut;
    memset(cut, 0, n + 1);
    cut[0] = 1;
    if (pt == PT_LLAMA3) {
        pass(sc->u, cut, n, 4);
    } else if (pt == PT_GPT2) {
        pass(sc->u, cut, n, 1);
    } else {
        for (int k = 0; k < 4; k++) pass(sc->u, cut, n, k);
    }
    return n;
}

int bitnet__pretok_split(int32_t pretok, const char *text, size_t len, uint32_t *lens, size_t cap,
                         size_t *n_out)
{
    *n_out = 0;
    if (len > UINT32_MAX / 4) return bitnet__error(BITNET_E_INVALID_ARG, "pretok: text too long");
    if (len == 0) return BITNET_OK;
    scratch sc = { 0 };
    int pt = pretok == BITNET_PRETOK_LLAMA3 ? PT_LLAMA3 : pretok == BITNET_PRETOK_GPT2 ? PT_GPT2 : PT_DEFAULT;
    size_t n = bitnet__pretok_cut(&sc, pt, text, len);
    if (n == SIZE_MAX) {
        bitnet__scratch_free(&sc);
        return bitnet__error(BITNET_E_NOMEM, "pretok: out of memory");
    }
    size_t beg = 0, np = 0;
    while (beg < n) {
        size_t end = beg + 1;
        while (end < n && !sc.cut[end]) end++;
        if (np < cap) lens[np] = sc.u[end].off - sc.u[beg].off;
        np++;
        beg = end;
    }
    bitnet__scratch_free(&sc);
    *n_out = np;
    return np > cap ? bitnet__error(BITNET_E_BUFFER_TOO_SMALL, "pretok: %zu pieces", np) : BITNET_OK;
}
