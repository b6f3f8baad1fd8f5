/*
 * Tokenize: special tokens are cut out of the text first (longest first,
 * as llama.cpp does), the raw parts go to BPE (bpe.c, after the
 * pre-tokenizer) or SentencePiece (spm.c, spaces escaped to U+2581 and a
 * space prefixed).
 */
#include <stdlib.h>
#include <string.h>

#include "text/vocab_impl.h"

void bitnet__scratch_free(scratch *sc)
{
    free(sc->u);
    free(sc->cut);
    free(sc->s);
    free(sc->h);
    free(sc->pc);
}

/* ---- special-token partition ------------------------------------------ */

typedef struct span { size_t beg, end; int32_t id; } span;   /* id -1: text */

/* Partition text into special tokens and raw text, as llama.cpp does: each
 * special token, longest first, is searched left to right in the raw parts
 * left by the ones before. Returns a malloc'd sorted span list. */
static int partition(const bitnet_vocab *v, const char *text, size_t len, int parse_special,
                     span **out, size_t *n_out)
{
    /* Occurrences: for each position, each special token starting there. */
    span *occ = NULL;
    size_t n_occ = 0, occ_cap = 0;
    uint8_t *taken = NULL;
    *out = NULL;
    *n_out = 0;
    int have = 0;
    for (int32_t k = 0; k < v->n_special; k++) {
        int t = v->tok[v->special[k]].type;
        if (parse_special || t == TT_USER_DEFINED) { have = 1; break; }
    }
    if (have && len) {
        /* first-byte filter */
        uint8_t first[256] = { 0 };
        for (int32_t k = 0; k < v->n_special; k++)
            first[(unsigned char)v->blob[v->tok[v->special[k]].raw_off]] = 1;
        for (size_t i = 0; i < len; i++) {
            if (!first[(unsigned char)text[i]]) continue;
            for (int32_t k = 0; k < v->n_special; k++) {
                const vtoken *t = &v->tok[v->special[k]];
                if (!parse_special && t->type != TT_USER_DEFINED) continue;
                if (t->raw_len > len - i || memcmp(text + i, v->blob + t->raw_off, t->raw_len)) continue;
                if (grow((void **)&occ, &occ_cap, n_occ + 1, sizeof(span))) goto oom;
                /* id field holds the priority index k */
                occ[n_occ].beg = i;
                occ[n_occ].end = i + t->raw_len;
                occ[n_occ].id = k;
                n_occ++;
            }
        }
    }
    size_t n_sp = 0;
    if (n_occ) {
        /* Order by priority (k), then position: stable by construction when
         * bucketed by k. */
        int32_t *cnt = calloc((size_t)v->n_special + 1, sizeof(*cnt));
        span *sorted = malloc(n_occ * sizeof(*sorted));
        taken = calloc(len, 1);
        if (!cnt || !sorted || !taken) { free(cnt); free(sorted); goto oom; }
        for (size_t i = 0; i < n_occ; i++) cnt[occ[i].id + 1]++;
        for (int32_t k = 0; k < v->n_special; k++) cnt[k + 1] += cnt[k];
        for (size_t i = 0; i < n_occ; i++) sorted[cnt[occ[i].id]++] = occ[i];
        free(cnt);
        for (size_t i = 0; i < n_occ; i++) {
            span *o = &sorted[i];
            int ok = 1;
            for (size_t b = o->beg; b < o->end; b++)
                if (taken[b]) { ok = 0; break; }
            if (!ok) continue;
            memset(taken + o->beg, 1, o->end - o->beg);
            occ[n_sp] = *o;
            occ[n_sp].id = v->special[o->id];
            n_sp++;
        }
        free(sorted);
        free(taken);
        taken = NULL;
        /* sort chosen by position (insertion sort on typically few items) */
        for (size_t i = 1; i < n_sp; i++) {
            span x = occ[i];
            size_t j = i;
            while (j > 0 && occ[j - 1].beg > x.beg) { occ[j] = occ[j - 1]; j--; }
            occ[j] = x;
        }
    }
    /* Interleave raw text spans. */
    span *res = malloc((2 * n_sp + 1) * sizeof(*res));
    if (!res) goto oom;
    size_t nr = 0, pos = 0;
    for (size_t i = 0; i < n_sp; i++) {
        if (occ[i].beg > pos) res[nr++] = (span){ pos, occ[i].beg, -1 };
        res[nr++] = occ[i];
        pos = occ[i].end;
    }
    if (pos < len) res[nr++] = (span){ pos, len, -1 };
    free(occ);
    *out = res;
    *n_out = nr;
    return 0;
oom:
    free(occ);
    free(taken);
    return bitnet__error(BITNET_E_NOMEM, "tokenize: out of memory");
}

/* ---- tokenize --------------------------------------------------------- */

int bitnet__vocab_tokenize(const bitnet_vocab *v, const char *text, size_t len,
                           uint32_t flags, int32_t *out, size_t cap, size_t *n_out)
{
    if (len > UINT32_MAX / 4)   /* offsets are 32-bit (SPM escaping triples spaces) */
        return bitnet__error(BITNET_E_INVALID_ARG, "tokenize: text of %zu bytes is too long (max %u)", len,
                             (unsigned)(UINT32_MAX / 4));
    sink sk = { out, cap, 0 };
    scratch sc = { 0 };
    span *sp = NULL;
    size_t nsp = 0;
    int rc = partition(v, text, len, !!(flags & BITNET_TOKENIZE_PARSE_SPECIAL), &sp, &nsp);
    if (rc) return rc;
    int add = !!(flags & BITNET_TOKENIZE_ADD_BOS);
    if (add && v->add_bos) emit(&sk, v->bos);
    char *esc = NULL;
    if (v->type == VT_BPE) {
        for (size_t i = 0; i < nsp && !rc; i++) {
            if (sp[i].id >= 0) emit(&sk, sp[i].id);
            else rc = bitnet__bpe_fragment(v, &sc, text + sp[i].beg, sp[i].end - sp[i].beg, &sk);
        }
    } else {
        int prev_special = 1;
        for (size_t i = 0; i < nsp && !rc; i++) {
            if (sp[i].id >= 0) {
                emit(&sk, sp[i].id);
                prev_special = 1;
                continue;
            }
            size_t fl = sp[i].end - sp[i].beg, need;
            /* each byte may become 3 (space -> U+2581), plus the prefix */
            if (bitnet__mul_ovf(fl + 1, 3, &need)) { rc = bitnet__error(BITNET_E_NOMEM, "tokenize: too long"); break; }
            char *ne = realloc(esc, need);
            if (!ne) { rc = bitnet__error(BITNET_E_NOMEM, "tokenize: out of memory"); break; }
            esc = ne;
            size_t o = 0;
            if (v->add_space_prefix && prev_special) {
                memcpy(esc, "\xe2\x96\x81", 3);
                o = 3;
            }
            for (size_t k = sp[i].beg; k < sp[i].end; k++) {
                if (text[k] == ' ') { memcpy(esc + o, "\xe2\x96\x81", 3); o += 3; }
                else esc[o++] = text[k];
            }
            if (bitnet__spm_fragment(v, &sc, esc, o, &sk)) rc = bitnet__error(BITNET_E_NOMEM, "tokenize: out of memory");
            prev_special = 0;
        }
    }
    if (!rc && add && v->add_eos) emit(&sk, v->eos);
    free(esc);
    free(sp);
    bitnet__scratch_free(&sc);
    if (rc) return rc;
    *n_out = sk.n;
    if (sk.n > cap)
        return bitnet__error(BITNET_E_BUFFER_TOO_SMALL, "tokenize: %zu tokens do not fit in %zu", sk.n, cap);
    return BITNET_OK;
}
