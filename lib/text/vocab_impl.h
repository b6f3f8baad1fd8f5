/*
 * The vocabulary's private layout and the pieces every tokenizer file
 * shares (lookups, the token sink, per-call scratch, the bigram heap).
 * Only lib/text includes this; everyone else uses text/vocab.h.
 *
 * Files: vocab.c (loading), pretok.c (pre-tokenizers), bpe.c, spm.c,
 * tokenize.c (special-token partition and the tokenize entry),
 * detokenize.c (pieces, detokenize, the streaming detokenizer).
 */
#ifndef BITNET_VOCAB_IMPL_H
#define BITNET_VOCAB_IMPL_H

#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/hash.h"
#include "base/internal.h"
#include "text/vocab.h"

enum { VT_BPE = 1, VT_SPM = 2 };

enum {  /* tokenizer.ggml.token_type values */
    TT_UNDEFINED = 0, TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3,
    TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6
};

enum { PT_DEFAULT = 0, PT_LLAMA3 = 1, PT_GPT2 = 2 };

#define NO_KEY UINT32_MAX

typedef struct vtoken {
    uint32_t raw_off, raw_len;      /* text as stored in the file */
    uint32_t key_off, key_len;      /* hash key (BPE: decoded bytes); NO_KEY */
    uint32_t piece_off, piece_len;  /* bytes produced by detokenization */
    float score;
    uint8_t type;
} vtoken;

typedef struct hslot {
    uint32_t id1;                   /* token id + 1, 0 = empty */
    uint32_t h;                     /* hash of the key */
    uint32_t key_off, key_len;      /* copy of the token's key location */
    char pre[8];                    /* the key's first bytes: short keys
                                       compare without touching the blob */
} hslot;

typedef struct merge_ent {
    uint64_t key;                   /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank;
    int32_t result;
} merge_ent;

struct bitnet_vocab {
    int type;                       /* VT_BPE / VT_SPM */
    int pretok;                     /* PT_* */
    int ignore_merges;
    int add_bos, add_eos, add_space_prefix;
    int32_t n_tokens;
    int32_t bos, eos, eot, eom, unk, pad;
    size_t max_piece;

    bitnet_arena arena;             /* one allocation: hash, merges, tok, blob */
    vtoken *tok;
    char *blob;
    size_t blob_len;

    hslot *hash;                    /* open addressing, linear probing */
    uint32_t hash_mask;

    merge_ent *merges;
    uint32_t merge_mask;
    int32_t n_merges;

    int32_t byte_tok[256];          /* token of each single byte (BPE: raw
                                       byte; SPM: <0xXX>), -1 if none */
    int32_t *special;               /* CONTROL/USER_DEFINED/UNKNOWN ids,
                                       longest text first */
    int32_t n_special;
    int hash_dup;                   /* some keys occur more than once */
};

#if defined(__GNUC__)
# define PREFETCH(p) __builtin_prefetch(p)
#else
# define PREFETCH(p) ((void)(p))
#endif

/* ---- lookups ---------------------------------------------------------- */

static inline int same_bytes(const char *a, const char *b, size_t n)
{
    if (n > 8) return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static inline int32_t lookup_h(const bitnet_vocab *v, const void *s, size_t n, uint32_t h)
{
    for (uint32_t i = h & v->hash_mask;; i = (i + 1) & v->hash_mask) {
        const hslot *e = &v->hash[i];
        if (!e->id1) return -1;
        if (e->h == h && e->key_len == n &&
            same_bytes(n <= sizeof(e->pre) ? e->pre : v->blob + e->key_off, s, n))
            return (int32_t)(e->id1 - 1);
    }
}

static inline int32_t lookup(const bitnet_vocab *v, const void *s, size_t n)
{
    return lookup_h(v, s, n, bitnet__hash_bytes(s, n));
}

static inline const merge_ent *merge_find(const bitnet_vocab *v, int32_t a, int32_t b)
{
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    for (uint32_t i = (uint32_t)bitnet__hash64(key) & v->merge_mask;; i = (i + 1) & v->merge_mask) {
        const merge_ent *e = &v->merges[i];
        if (e->key == key) return e;
        if (!e->key) return NULL;
    }
}

/* ---- token output sink ------------------------------------------------ */

typedef struct sink {
    int32_t *out;
    size_t cap, n;
} sink;

static inline void emit(sink *s, int32_t id)
{
    if (s->n < s->cap) s->out[s->n] = id;
    s->n++;
}

/* ---- scratch (per tokenize call) -------------------------------------- */

typedef struct unit {
    uint32_t off;     /* byte offset of the code point in the fragment */
    uint16_t fl;      /* BN_U_* flags */
    uint16_t c;       /* the code point if ASCII, else 0x80 */
} unit;

typedef struct sym {
    int32_t id;       /* token of the symbol's bytes, -1 when none */
    uint32_t off, len;
    int32_t prev, next;
} sym;

typedef struct bigram {
    float score;      /* SPM */
    int32_t rank;     /* BPE */
    int32_t left, right;
    int32_t lid, rid; /* ids at push time (BPE staleness check) */
    uint32_t size;    /* SPM staleness check */
} bigram;

/* Per-call cache of merged pieces (long texts repeat their words): the
 * result of BPE on a piece depends on the piece only. */
enum { PC_BYTES = 22, PC_TOKS = 8 };

typedef struct pcache_ent {
    uint32_t h;
    uint8_t len, ntok;          /* len 0: empty */
    char piece[PC_BYTES];
    int32_t tok[PC_TOKS];
} pcache_ent;

typedef struct scratch {
    unit *u; size_t u_cap;
    uint8_t *cut; size_t cut_cap;
    sym *s; size_t s_cap;
    bigram *h; size_t h_cap, h_n;
    pcache_ent *pc; uint32_t pc_mask;
} scratch;

static inline int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    size_t bytes;
    if (bitnet__mul_ovf(nc, elem, &bytes)) return -1;
    void *np = realloc(*p, bytes);
    if (!np) return -1;
    *p = np;
    *cap = nc;
    return 0;
}

/* ---- the bigram heap (BPE: by rank, SPM: by score) --------------------- */

static inline int heap_push(scratch *sc, const bigram *b, int (*less)(const bigram *, const bigram *))
{
    if (grow((void **)&sc->h, &sc->h_cap, sc->h_n + 1, sizeof(bigram))) return -1;
    size_t i = sc->h_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!less(b, &sc->h[p])) break;
        sc->h[i] = sc->h[p];
        i = p;
    }
    sc->h[i] = *b;
    return 0;
}

static inline bigram heap_pop(scratch *sc, int (*less)(const bigram *, const bigram *))
{
    bigram top = sc->h[0], last = sc->h[--sc->h_n];
    size_t i = 0, n = sc->h_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && less(&sc->h[c + 1], &sc->h[c])) c++;
        if (!less(&sc->h[c], &last)) break;
        sc->h[i] = sc->h[c];
        i = c;
    }
    if (n) sc->h[i] = last;
    return top;
}

static inline void merge_into(sym *s, int32_t l, int32_t r, int32_t id)
{
    s[l].len += s[r].len;
    s[l].id = id;
    s[r].len = 0;
    s[l].next = s[r].next;
    if (s[r].next >= 0) s[s[r].next].prev = l;
}

/* ---- between the files ------------------------------------------------ */

void bitnet__scratch_free(scratch *sc);
/* Decode text into units (sc->u, n + 1 entries) and mark piece starts in
 * sc->cut for pre-tokenizer pt (PT_*). Returns the unit count, or SIZE_MAX
 * when out of memory. */
size_t bitnet__pretok_cut(scratch *sc, int pt, const char *text, size_t len);
int bitnet__bpe_fragment(const bitnet_vocab *v, scratch *sc, const char *text, size_t len,
                         sink *out);
/* p: the fragment with spaces already escaped to U+2581. */
int bitnet__spm_fragment(const bitnet_vocab *v, scratch *sc, const char *p, size_t n,
                         sink *out);
/* Bytes of token tok as detokenization emits them (no range check). */
const char *bitnet__piece_of(const bitnet_vocab *v, int32_t tok, uint32_t flags, size_t *len);

#endif /* BITNET_VOCAB_IMPL_H */
