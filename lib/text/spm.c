/*
 * SentencePiece (model "llama"): adjacent symbols are merged by the score
 * of the merged token (highest first, leftmost on ties); characters that
 * form no token fall back to <0xXX> byte tokens.
 */
#include <stdlib.h>
#include <string.h>

#include "text/unicode.h"
#include "text/vocab_impl.h"

static int spm_less(const bigram *a, const bigram *b)
{
    /* higher score first; ties: leftmost first */
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int spm_add_bigram(const bitnet_vocab *v, scratch *sc, const char *p, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return 0;
    sym *s = sc->s;
    int32_t id = lookup(v, p + s[l].off, s[l].len + s[r].len);
    if (id < 0) return 0;
    bigram b = { v->tok[id].score, 0, l, r, 0, 0, s[l].len + s[r].len };
    return heap_push(sc, &b, spm_less);
}

int bitnet__spm_fragment(const bitnet_vocab *v, scratch *sc, const char *p, size_t n, sink *out)
{
    if (n == 0) return 0;
    if (grow((void **)&sc->s, &sc->s_cap, n, sizeof(sym))) return -1;
    sym *s = sc->s;
    int32_t ns = 0;
    size_t off = 0;
    while (off < n) {
        size_t l = bitnet__utf8_lead_len((unsigned char)p[off]);
        if (l > n - off) l = n - off;
        s[ns].off = (uint32_t)off;
        s[ns].len = (uint32_t)l;
        s[ns].prev = ns - 1;
        off += l;
        s[ns].next = off == n ? -1 : ns + 1;
        s[ns].id = -1;
        ns++;
    }
    sc->h_n = 0;
    for (int32_t i = 1; i < ns; i++)
        if (spm_add_bigram(v, sc, p, i - 1, i)) return -1;
    while (sc->h_n) {
        bigram b = heap_pop(sc, spm_less);
        sym *l = &s[b.left], *r = &s[b.right];
        if (!l->len || !r->len || l->len + r->len != b.size) continue;
        merge_into(s, b.left, b.right, -1);
        if (spm_add_bigram(v, sc, p, s[b.left].prev, b.left) ||
            spm_add_bigram(v, sc, p, b.left, s[b.left].next))
            return -1;
    }
    for (int32_t i = 0; i >= 0; i = s[i].next) {
        int32_t id = lookup(v, p + s[i].off, s[i].len);
        if (id >= 0) { emit(out, id); continue; }
        for (uint32_t k = 0; k < s[i].len; k++) {
            int32_t b = v->byte_tok[(unsigned char)p[s[i].off + k]];
            if (b < 0) b = v->unk;
            if (b >= 0) emit(out, b);   /* neither: the byte is dropped */
        }
    }
    return 0;
}
