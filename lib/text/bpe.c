/*
 * Byte-level BPE: each pre-tokenized piece is merged by rank, leftmost
 * first on ties, exactly as llama.cpp does. Short pieces are merged by
 * scanning, long ones with a heap; a per-call cache keeps the result of
 * pieces that repeat (both choices give the same tokens).
 */
#include <stdlib.h>
#include <string.h>

#include "text/vocab_impl.h"

/* Above this many bytes a piece is merged with a heap; below by scanning.
 * Both give the same result (tests compare them); internal for tests. */
size_t bitnet__bpe_scan_max = 48;
size_t bitnet__bpe_cache_min = 4096;

static int rank_of(const bitnet_vocab *v, const sym *s, int32_t l, int32_t r, int32_t *res)
{
    if (s[l].id < 0 || s[r].id < 0) return -1;
    const merge_ent *e = merge_find(v, s[l].id, s[r].id);
    if (!e) return -1;
    *res = e->result;
    return e->rank;
}

static int heap_less(const bigram *a, const bigram *b)
{
    /* lower rank first; ties: leftmost first */
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static int bpe_add_bigram(const bitnet_vocab *v, scratch *sc, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return 0;
    int32_t res;
    int rank = rank_of(v, sc->s, l, r, &res);
    if (rank < 0) return 0;
    bigram b = { 0.0f, rank, l, r, sc->s[l].id, sc->s[r].id, 0 };
    return heap_push(sc, &b, heap_less);
}

static void emit_symbol_bpe(const bitnet_vocab *v, const char *p, const sym *s, sink *out)
{
    if (s->id >= 0) { emit(out, s->id); return; }
    /* (never the case with a consistent vocabulary) */
    /* Not a token: single characters of its byte-level form that are
     * tokens by themselves (printable ASCII), as llama.cpp does. */
    for (uint32_t k = 0; k < s->len; k++) {
        unsigned b = (unsigned char)p[s->off + k];
        if (b >= 0x21 && b <= 0x7E && v->byte_tok[b] >= 0) emit(out, v->byte_tok[b]);
    }
}

static int bpe_piece(const bitnet_vocab *v, scratch *sc, const char *p, size_t n, sink *out)
{
    if (n == 0) return 0;
    if (v->ignore_merges || n == 1) {
        int32_t id = lookup(v, p, n);
        if (id >= 0) { emit(out, id); return 0; }
    }
    pcache_ent *pe = NULL;
    uint32_t ph = 0;
    if (sc->pc && n <= PC_BYTES) {
        ph = bitnet__hash_bytes(p, n);
        for (uint32_t k = 0; k < 4; k++) {
            pcache_ent *e = &sc->pc[(ph + k) & sc->pc_mask];
            if (!e->len) { pe = e; break; }
            if (e->h == ph && e->len == n && memcmp(e->piece, p, n) == 0) {
                for (uint32_t t = 0; t < e->ntok; t++) emit(out, e->tok[t]);
                return 0;
            }
        }
    }
    if (grow((void **)&sc->s, &sc->s_cap, n, sizeof(sym))) return -1;
    sym *s = sc->s;
    for (size_t i = 0; i < n; i++) {
        s[i].id = v->byte_tok[(unsigned char)p[i]];
        s[i].off = (uint32_t)i;
        s[i].len = 1;
        s[i].prev = (int32_t)i - 1;
        s[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    if (n <= bitnet__bpe_scan_max && n <= 64) {
        /* Scan: cache the rank of each live pair (i, next(i)). */
        int32_t rk[64], rs[64];
        int32_t nn = (int32_t)n;
        for (int32_t i = 0; i + 1 < nn; i++) rk[i] = rank_of(v, s, i, i + 1, &rs[i]);
        if (nn > 0) rk[nn - 1] = -1;
        for (;;) {
            int32_t best = -1;
            for (int32_t i = 0; i >= 0; i = s[i].next)
                if (rk[i] >= 0 && (best < 0 || rk[i] < rk[best])) best = i;
            if (best < 0) break;
            int32_t r = s[best].next;
            merge_into(s, best, r, rs[best]);
            int32_t nx = s[best].next;
            rk[best] = nx >= 0 ? rank_of(v, s, best, nx, &rs[best]) : -1;
            int32_t pv = s[best].prev;
            if (pv >= 0) rk[pv] = rank_of(v, s, pv, best, &rs[pv]);
        }
    } else {
        sc->h_n = 0;
        for (size_t i = 1; i < n; i++)
            if (bpe_add_bigram(v, sc, (int32_t)i - 1, (int32_t)i)) return -1;
        while (sc->h_n) {
            bigram b = heap_pop(sc, heap_less);
            sym *l = &s[b.left], *r = &s[b.right];
            if (!l->len || !r->len || l->id != b.lid || r->id != b.rid || l->next != b.right) continue;
            int32_t res = -1;
            rank_of(v, s, b.left, b.right, &res);
            merge_into(s, b.left, b.right, res);
            if (bpe_add_bigram(v, sc, s[b.left].prev, b.left) ||
                bpe_add_bigram(v, sc, b.left, s[b.left].next))
                return -1;
        }
    }
    size_t first = out->n;
    for (int32_t i = 0; i >= 0; i = s[i].next) emit_symbol_bpe(v, p, &s[i], out);
    size_t cnt = out->n - first;
    if (pe && cnt <= PC_TOKS && out->n <= out->cap) {
        pe->h = ph;
        pe->len = (uint8_t)n;
        pe->ntok = (uint8_t)cnt;
        memcpy(pe->piece, p, n);
        memcpy(pe->tok, out->out + first, cnt * sizeof(int32_t));
    }
    return 0;
}

int bitnet__bpe_fragment(const bitnet_vocab *v, scratch *sc, const char *text, size_t len, sink *out)
{
    if (len == 0) return 0;
    if (len > UINT32_MAX - 1) return bitnet__error(BITNET_E_INVALID_ARG, "tokenize: text too long");
    size_t n = bitnet__pretok_cut(sc, v->pretok, text, len);
    if (n == SIZE_MAX)
        return bitnet__error(BITNET_E_NOMEM, "tokenize: out of memory");
    const uint8_t *cut = sc->cut;
    const unit *u = sc->u;
    if (!sc->pc && len >= bitnet__bpe_cache_min) {   /* worth a piece cache (failure: none) */
        uint32_t ents = 1024;
        while (ents < 16384 && ents < len / 32) ents <<= 1;
        sc->pc = calloc(ents, sizeof(pcache_ent));
        sc->pc_mask = ents - 1;
    }
    size_t beg = 0;
    while (beg < n) {
        size_t end = beg + 1;
        while (end < n && !cut[end]) end++;
        if (bpe_piece(v, sc, text + u[beg].off, u[end].off - u[beg].off, out))
            return bitnet__error(BITNET_E_NOMEM, "tokenize: out of memory");
        beg = end;
    }
    return 0;
}
