/*
 * Detokenization: the bytes of each token, whole sequences, and the
 * streaming detokenizer that holds back incomplete UTF-8 between tokens.
 */
#include <stdlib.h>
#include <string.h>

#include "text/unicode.h"
#include "text/vocab_impl.h"

/* ---- pieces and detokenization ---------------------------------------- */

/* Bytes of token tok (no checks); *len set. */
const char *bitnet__piece_of(const bitnet_vocab *v, int32_t tok, uint32_t flags, size_t *len)
{
    const vtoken *t = &v->tok[tok];
    switch (t->type) {
    case TT_NORMAL: case TT_USER_DEFINED: case TT_BYTE:
        break;
    case TT_CONTROL:
        if (!(flags & BITNET_DETOK_SPECIAL)) { *len = 0; return ""; }
        break;
    case TT_UNKNOWN:
        if (v->type == VT_SPM) break;
        /* fall through */
    default:
        *len = 0;
        return "";
    }
    *len = t->piece_len;
    return v->blob + t->piece_off;
}

int bitnet__vocab_piece(const bitnet_vocab *v, int32_t tok, uint32_t flags,
                        char *buf, size_t cap, size_t *n_out)
{
    if (tok < 0 || tok >= v->n_tokens)
        return bitnet__error(BITNET_E_INVALID_ARG, "token %d is out of range (0..%d)", tok, v->n_tokens - 1);
    size_t len;
    const char *p = bitnet__piece_of(v, tok, flags, &len);
    *n_out = len;
    if (len > cap) return bitnet__error(BITNET_E_BUFFER_TOO_SMALL, "token piece needs %zu bytes", len);
    if (len) memcpy(buf, p, len);
    return BITNET_OK;
}

int bitnet__vocab_detokenize(const bitnet_vocab *v, const int32_t *toks, size_t n,
                             uint32_t flags, char *buf, size_t cap, size_t *n_out)
{
    for (size_t i = 0; i < n; i++)
        if (toks[i] < 0 || toks[i] >= v->n_tokens)
            return bitnet__error(BITNET_E_INVALID_ARG, "tokens[%zu] = %d is out of range (0..%d)", i, toks[i],
                                 v->n_tokens - 1);
    size_t o = 0;
    int strip = v->type == VT_SPM && v->add_space_prefix;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *p = bitnet__piece_of(v, toks[i], flags, &len);
        if (!len) continue;
        if (strip) {
            strip = 0;
            if (p[0] == ' ') { p++; len--; }
        }
        if (o < cap) memcpy(buf + o, p, len <= cap - o ? len : cap - o);
        o += len;
    }
    *n_out = o;
    if (o > cap) return bitnet__error(BITNET_E_BUFFER_TOO_SMALL, "detokenize needs %zu bytes", o);
    return BITNET_OK;
}

/* ---- streaming detokenizer -------------------------------------------- */

struct bitnet_detokenizer {
    const bitnet_vocab *v;
    uint32_t flags;
    unsigned char tail[4];   /* an incomplete UTF-8 sequence held back */
    size_t n_tail;
};

int bitnet__detokenizer_new(bitnet_detokenizer **out, const bitnet_vocab *v, uint32_t flags)
{
    bitnet_detokenizer *d = calloc(1, sizeof(*d));
    if (!d) return bitnet__error(BITNET_E_NOMEM, "bitnet_detokenizer_create: out of memory");
    d->v = v;
    d->flags = flags;
    *out = d;
    return BITNET_OK;
}

/* Could s[0..n) (n < needed length) still become a valid sequence? */
static int valid_prefix(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t need;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) need = 3;
    else if (c >= 0xF0 && c <= 0xF4) need = 4;
    else return 0;
    if (n >= need) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (n >= 2) {
        unsigned d = s[1];
        if (c == 0xE0 && d < 0xA0) return 0;
        if (c == 0xED && d > 0x9F) return 0;
        if (c == 0xF0 && d < 0x90) return 0;
        if (c == 0xF4 && d > 0x8F) return 0;
    }
    return 1;
}

/* Convert bytes a[0..na) ++ b[0..nb) into complete UTF-8 (invalid bytes ->
 * U+FFFD), writing to dst when non-NULL (capacity checked by the caller via
 * a dry run). final: also convert an incomplete trailing sequence. Returns
 * the output length; *keep receives the number of trailing bytes held. */
static size_t utf8_sanitize(const unsigned char *a, size_t na, const unsigned char *b, size_t nb,
                            int final, char *dst, size_t *keep)
{
    unsigned char w[8];
    size_t n = na + nb, i = 0, o = 0;
#define AT(k) ((k) < na ? a[k] : b[(k) - na])
    while (i < n) {
        size_t m = n - i < 4 ? n - i : 4;
        for (size_t k = 0; k < m; k++) w[k] = AT(i + k);
        uint32_t cp;
        size_t l = bitnet__utf8_decode(w, m, &cp);
        if (cp != BN_U_INVALID) {
            if (dst) memcpy(dst + o, w, l);
            o += l;
            i += l;
            continue;
        }
        if (!final && valid_prefix(w, m) && m == n - i) {
            *keep = m;
            return o;
        }
        if (dst) memcpy(dst + o, "\xef\xbf\xbd", 3);
        o += 3;
        i += 1;
    }
#undef AT
    *keep = 0;
    return o;
}

int bitnet_detokenizer_feed(bitnet_detokenizer *d, int32_t token, char *buf, size_t cap, size_t *n_out)
{
    bitnet__clear_error();
    if (!n_out) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenizer_feed: n_out is NULL");
    *n_out = 0;
    if (!d) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenizer_feed: d is NULL");
    if (!buf && cap) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenizer_feed: buf is NULL");
    const bitnet_vocab *v = d->v;
    if (token < 0 || token >= v->n_tokens)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenizer_feed: token %d is out of range (0..%d)",
                             token, v->n_tokens - 1);
    size_t len, keep;
    const unsigned char *p = (const unsigned char *)bitnet__piece_of(v, token, d->flags, &len);
    size_t need = utf8_sanitize(d->tail, d->n_tail, p, len, 0, NULL, &keep);
    *n_out = need;
    if (need > cap)
        return bitnet__error(BITNET_E_BUFFER_TOO_SMALL, "bitnet_detokenizer_feed: %zu bytes needed", need);
    utf8_sanitize(d->tail, d->n_tail, p, len, 0, buf, &keep);
    /* The held bytes are the last `keep` of tail ++ piece. */
    unsigned char nt[4];
    size_t tot = d->n_tail + len;
    for (size_t k = 0; k < keep; k++) {
        size_t idx = tot - keep + k;
        nt[k] = idx < d->n_tail ? d->tail[idx] : p[idx - d->n_tail];
    }
    memcpy(d->tail, nt, keep);
    d->n_tail = keep;
    return BITNET_OK;
}

int bitnet_detokenizer_flush(bitnet_detokenizer *d, char *buf, size_t cap, size_t *n_out)
{
    bitnet__clear_error();
    if (!n_out) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenizer_flush: n_out is NULL");
    *n_out = 0;
    if (!d) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenizer_flush: d is NULL");
    if (!buf && cap) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenizer_flush: buf is NULL");
    size_t keep;
    size_t need = utf8_sanitize(d->tail, d->n_tail, NULL, 0, 1, NULL, &keep);
    *n_out = need;
    if (need > cap)
        return bitnet__error(BITNET_E_BUFFER_TOO_SMALL, "bitnet_detokenizer_flush: %zu bytes needed", need);
    utf8_sanitize(d->tail, d->n_tail, NULL, 0, 1, buf, &keep);
    d->n_tail = 0;
    return BITNET_OK;
}

void bitnet_detokenizer_free(bitnet_detokenizer *d)
{
    free(d);
}

