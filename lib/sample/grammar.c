/*
 * Grammar matcher and the token mask.
 *
 * A parse position is a stack of frames; a frame is the index of the next
 * element to match in one alternative, the top frame being the innermost.
 * Stacks are kept "expanded": the top frame always points at a CHAR element
 * (rule references are replaced by the first element of each alternative,
 * finished alternatives are popped), or the stack is empty, which means the
 * text so far is a complete sentence. A matcher state is the sorted set of
 * such stacks plus the bytes of a UTF-8 character not yet complete, so a
 * token may end in the middle of a character.
 *
 * The mask must be cheap on a 128k vocabulary. States are interned and the
 * transition on each byte is computed once and cached (a lazily built DFA),
 * so walking the trie of token pieces costs one table lookup per trie node
 * whose prefix the grammar allows; the subtrees it forbids are never
 * entered. The cache is cleared between steps when it grows large.
 */
#include <stdlib.h>
#include <string.h>

#include "sample/grammar.h"

#define BN_GM_MAX_STACK  512     /* frames in one parse stack */
#define BN_GM_MAX_DEPTH  256     /* nested branchings while expanding */
#define BN_GM_MAX_STACKS 4096    /* parse stacks alive in one state */
#define BN_GM_MAX_WORK   200000  /* expansion steps for one character */
#define BN_GM_SOFT_STATES 8192   /* cache cleared between steps above this */

#define T_UNKNOWN (-2)
#define T_DEAD    (-1)
#define T_NOMEM   (-3)

#define F_CAN_END  1u
#define F_CAN_MORE 2u

typedef struct walk_item {
    uint32_t node;
    int32_t st;
} walk_item;

struct bn_gmatch {
    const bn_grammar *g;
    /* interned states: words data[off[i] .. off[i] + len[i]) laid out as
     * [hdr, n_stacks, (len, frame...)...], stacks sorted; hdr holds the
     * pending UTF-8 bytes: need | utf8 length << 4 | value so far << 8 */
    uint32_t *data;
    size_t n_data, cap_data;
    size_t *off;
    uint32_t *len;
    uint8_t *flags;
    int32_t *trans;              /* 256 per state */
    size_t n_states, cap_states;
    int32_t *htab;               /* state ids; -1 = empty */
    size_t hcap;
    int32_t start, cur;
    uint32_t *cur_copy;          /* cur's words, to re-intern after a clear */
    size_t cur_len, cur_cap;
    /* scratch for computing a transition */
    uint32_t *out;               /* emitted stacks: (len, frame...)* */
    size_t n_out, cap_out;
    size_t *recs;                /* where each emitted stack starts */
    size_t n_recs, cap_recs;
    uint32_t *cand;              /* the canonical new state */
    size_t cap_cand;
    uint32_t *bufs[BN_GM_MAX_DEPTH];
    size_t work;
    int overflow;
    walk_item *walk;
    size_t cap_walk;
};

struct bn_vtrie {
    uint32_t n_nodes;
    uint8_t *byte;               /* byte on the edge into the node */
    uint32_t *end;               /* one past the node's subtree (preorder) */
    uint32_t *tok_first;         /* n_nodes + 1 */
    int32_t *toks;               /* tokens whose piece ends at the node */
};

/* ---- growth helpers ---------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

/* ---- expansion --------------------------------------------------------- */

static int emit(bn_gmatch *m, const uint32_t *stk, uint32_t len)
{
    if (m->n_recs >= BN_GM_MAX_STACKS) {
        m->overflow = 1;
        return 0;
    }
    if (grow((void **)&m->out, &m->cap_out, m->n_out + len + 1, sizeof(uint32_t)) ||
        grow((void **)&m->recs, &m->cap_recs, m->n_recs + 1, sizeof(size_t)))
        return -1;
    m->recs[m->n_recs++] = m->n_out;
    m->out[m->n_out++] = len;
    memcpy(m->out + m->n_out, stk, len * sizeof(*stk));
    m->n_out += len;
    return 0;
}

static uint32_t *scratch(bn_gmatch *m, int depth)
{
    if (!m->bufs[depth])
        m->bufs[depth] = malloc(BN_GM_MAX_STACK * sizeof(uint32_t));
    return m->bufs[depth];
}

/* Expand buf[0..len) (top last) until its top is a CHAR or it is empty,
 * emitting every result. buf is modified. Returns -1 on NOMEM only; too
 * much work or depth sets m->overflow. */
static int expand(bn_gmatch *m, uint32_t *buf, uint32_t len, int depth)
{
    const bn_grammar *g = m->g;
    for (;;) {
        if (m->overflow)
            return 0;
        if (++m->work > BN_GM_MAX_WORK) {
            m->overflow = 1;
            return 0;
        }
        if (len == 0)
            return emit(m, buf, 0);
        uint32_t p = buf[len - 1];
        const bn_gelem *e = &g->elem[p];
        if (e->type == BN_GE_END) {
            len--;
            continue;
        }
        if (e->type == BN_GE_CHAR)
            return emit(m, buf, len);
        /* A reference: the frame moves past it (and is dropped when that
         * ends its alternative, so right recursion does not grow the
         * stack), then each alternative of the rule is pushed. */
        buf[len - 1] = p + 1;
        if (g->elem[p + 1].type == BN_GE_END)
            len--;
        if (len + 1 > BN_GM_MAX_STACK) {
            m->overflow = 1;
            return 0;
        }
        uint32_t a0 = g->alt_first[e->a], a1 = g->alt_first[e->a + 1];
        for (uint32_t a = a0; a + 1 < a1; a++) {
            if (depth + 1 >= BN_GM_MAX_DEPTH) {
                m->overflow = 1;
                return 0;
            }
            uint32_t *nb = scratch(m, depth + 1);
            if (!nb)
                return -1;
            memcpy(nb, buf, len * sizeof(*buf));
            nb[len] = g->alts[a];
            if (expand(m, nb, len + 1, depth + 1))
                return -1;
        }
        buf[len++] = g->alts[a1 - 1];
    }
}

/* ---- interning --------------------------------------------------------- */

static uint64_t hash_words(const uint32_t *w, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h ^= w[i];
        h *= 0x100000001B3ull;
        h ^= h >> 29;
    }
    return h;
}

static int rehash(bn_gmatch *m, size_t cap)
{
    int32_t *t = malloc(cap * sizeof(*t));
    if (!t)
        return -1;
    memset(t, 0xff, cap * sizeof(*t));
    for (size_t i = 0; i < m->n_states; i++) {
        size_t h = (size_t)hash_words(m->data + m->off[i], m->len[i]) & (cap - 1);
        while (t[h] >= 0)
            h = (h + 1) & (cap - 1);
        t[h] = (int32_t)i;
    }
    free(m->htab);
    m->htab = t;
    m->hcap = cap;
    return 0;
}

static int32_t intern(bn_gmatch *m, const uint32_t *w, size_t n)
{
    if (m->n_states * 2 >= m->hcap &&
        rehash(m, m->hcap ? m->hcap * 2 : 1024))
        return T_NOMEM;
    size_t h = (size_t)hash_words(w, n) & (m->hcap - 1);
    for (; m->htab[h] >= 0; h = (h + 1) & (m->hcap - 1)) {
        int32_t id = m->htab[h];
        if (m->len[id] == n && memcmp(m->data + m->off[id], w, n * sizeof(*w)) == 0)
            return id;
    }
    if (m->n_states >= (size_t)INT32_MAX / 256)
        return T_NOMEM;
    size_t cap = m->cap_states;
    if (grow((void **)&m->data, &m->cap_data, m->n_data + n, sizeof(uint32_t)))
        return T_NOMEM;
    if (m->n_states == cap) {
        size_t nc = cap ? cap * 2 : 256;
        size_t *no = realloc(m->off, nc * sizeof(*no));
        if (no) m->off = no;
        uint32_t *nl = realloc(m->len, nc * sizeof(*nl));
        if (nl) m->len = nl;
        uint8_t *nf = realloc(m->flags, nc);
        if (nf) m->flags = nf;
        int32_t *nt = realloc(m->trans, nc * 256 * sizeof(*nt));
        if (nt) m->trans = nt;
        if (!no || !nl || !nf || !nt)
            return T_NOMEM;
        m->cap_states = nc;
    }
    int32_t id = (int32_t)m->n_states++;
    m->off[id] = m->n_data;
    m->len[id] = (uint32_t)n;
    memcpy(m->data + m->n_data, w, n * sizeof(*w));
    m->n_data += n;
    uint8_t f = 0;
    size_t pos = 2;
    for (uint32_t k = 0; k < w[1]; k++) {
        if (w[pos] == 0)
            f |= (w[0] & 15) == 0 ? F_CAN_END : 0;
        else
            f |= F_CAN_MORE;
        pos += w[pos] + 1;
    }
    m->flags[id] = f;
    for (int b = 0; b < 256; b++)
        m->trans[(size_t)id * 256 + (size_t)b] = T_UNKNOWN;
    m->htab[h] = id;
    return id;
}

static int stack_cmp(const uint32_t *a, const uint32_t *b)
{
    if (a[0] != b[0])
        return a[0] < b[0] ? -1 : 1;
    for (uint32_t i = 1; i <= a[0]; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

/* Sort and de-duplicate the emitted stacks, build the state words with
 * header hdr and intern them. */
static int32_t build_state(bn_gmatch *m, uint32_t hdr)
{
    size_t n = m->n_recs;
    size_t *r = m->recs;
    const uint32_t *o = m->out;
    /* shell sort (the comparison needs m->out, so no qsort) */
    static const size_t gaps[] = { 701, 301, 132, 57, 23, 10, 4, 1 };
    for (size_t gi = 0; gi < sizeof(gaps) / sizeof(gaps[0]); gi++) {
        size_t gap = gaps[gi];
        for (size_t i = gap; i < n; i++) {
            size_t t = r[i], j = i;
            while (j >= gap && stack_cmp(o + r[j - gap], o + t) > 0) {
                r[j] = r[j - gap];
                j -= gap;
            }
            r[j] = t;
        }
    }
    if (grow((void **)&m->cand, &m->cap_cand, m->n_out + 2, sizeof(uint32_t)))
        return T_NOMEM;
    size_t w = 2, count = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && stack_cmp(o + r[i - 1], o + r[i]) == 0)
            continue;
        uint32_t len = o[r[i]];
        memcpy(m->cand + w, o + r[i], (len + 1) * sizeof(uint32_t));
        w += len + 1;
        count++;
    }
    m->cand[0] = hdr;
    m->cand[1] = (uint32_t)count;
    return intern(m, m->cand, w);
}

static int32_t compute_start(bn_gmatch *m)
{
    const bn_grammar *g = m->g;
    m->n_out = m->n_recs = m->work = 0;
    m->overflow = 0;
    uint32_t *buf = scratch(m, 0);
    if (!buf)
        return T_NOMEM;
    for (uint32_t a = g->alt_first[g->root]; a < g->alt_first[g->root + 1]; a++) {
        buf[0] = g->alts[a];
        if (expand(m, buf, 1, 0))
            return T_NOMEM;
    }
    if (m->overflow)
        return T_DEAD;
    return build_state(m, 0);
}

/* Whether some code point in [lo, hi] is in the ranges of e. */
static int class_meets(const bn_grammar *g, const bn_gelem *e, uint32_t lo,
                       uint32_t hi)
{
    const bn_range *r = g->range + e->a;
    for (uint32_t i = 0; i < e->n; i++)
        if (r[i].hi >= lo)
            return r[i].lo <= hi;
    return 0;
}

/* The state reached from st on byte b (T_DEAD, T_NOMEM). */
static int32_t step(bn_gmatch *m, int32_t st, unsigned b)
{
    const bn_grammar *g = m->g;
    static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    uint32_t hdr = m->data[m->off[st]];
    uint32_t need = hdr & 15, ulen = (hdr >> 4) & 15, acc = hdr >> 8;
    if (need) {
        if ((b & 0xC0) != 0x80)
            return T_DEAD;
        acc = (acc << 6) | (b & 0x3F);
        need--;
    } else if (b < 0x80) {
        acc = b; ulen = 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
        acc = b & 0x1F; need = 1; ulen = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        acc = b & 0x0F; need = 2; ulen = 3;
    } else if (b >= 0xF0 && b <= 0xF4) {
        acc = b & 0x07; need = 3; ulen = 4;
    } else {
        return T_DEAD;
    }
    if (need) {
        /* Incomplete character: keep the stacks if one of them can take
         * some code point that starts with these bytes. */
        uint32_t lo = acc << (6 * need);
        uint32_t hi = lo | ((1u << (6 * need)) - 1);
        if (lo < min_cp[ulen]) lo = min_cp[ulen];
        if (hi > 0x10FFFF) hi = 0x10FFFF;
        if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF))
            return T_DEAD;
        size_t n = m->len[st];
        if (grow((void **)&m->cand, &m->cap_cand, n, sizeof(uint32_t)))
            return T_NOMEM;
        const uint32_t *w = m->data + m->off[st];
        int any = 0;
        size_t pos = 2;
        for (uint32_t k = 0; k < w[1] && !any; k++) {
            uint32_t len = w[pos];
            if (len > 0) {
                const bn_gelem *e = &g->elem[w[pos + len]];
                any = class_meets(g, e, lo, hi);
            }
            pos += len + 1;
        }
        if (!any)
            return T_DEAD;
        memcpy(m->cand, w, n * sizeof(uint32_t));
        m->cand[0] = need | (ulen << 4) | (acc << 8);
        return intern(m, m->cand, n);
    }
    uint32_t cp = acc;
    if (cp < min_cp[ulen] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return T_DEAD;
    m->n_out = m->n_recs = m->work = 0;
    m->overflow = 0;
    uint32_t *buf = scratch(m, 0);
    if (!buf)
        return T_NOMEM;
    size_t pos = 2;
    uint32_t n_stacks = m->data[m->off[st] + 1];
    for (uint32_t k = 0; k < n_stacks; k++) {
        const uint32_t *w = m->data + m->off[st];   /* data does not move here */
        uint32_t len = w[pos];
        if (len > 0) {
            uint32_t top = w[pos + len];
            if (bitnet__gelem_match(g, &g->elem[top], cp)) {
                memcpy(buf, w + pos + 1, len * sizeof(uint32_t));
                buf[len - 1] = top + 1;
                if (expand(m, buf, len, 0))
                    return T_NOMEM;
            }
        }
        pos += len + 1;
    }
    if (m->overflow || m->n_recs == 0)
        return T_DEAD;
    return build_state(m, 0);
}

static inline int32_t next_state(bn_gmatch *m, int32_t st, unsigned b)
{
    int32_t t = m->trans[(size_t)st * 256 + b];
    if (t == T_UNKNOWN) {
        t = step(m, st, b);
        if (t == T_NOMEM)
            return t;
        m->trans[(size_t)st * 256 + b] = t;
    }
    return t;
}

/* ---- lifecycle --------------------------------------------------------- */

static int save_cur(bn_gmatch *m)
{
    size_t n = m->len[m->cur];
    if (grow((void **)&m->cur_copy, &m->cur_cap, n, sizeof(uint32_t)))
        return -1;
    memcpy(m->cur_copy, m->data + m->off[m->cur], n * sizeof(uint32_t));
    m->cur_len = n;
    return 0;
}

/* Forget every cached state except the start and the current one. */
static int clear_cache(bn_gmatch *m)
{
    m->n_states = 0;
    m->n_data = 0;
    if (m->htab)
        memset(m->htab, 0xff, m->hcap * sizeof(*m->htab));
    m->start = compute_start(m);
    if (m->start < 0)
        return m->start == T_NOMEM ? BITNET_E_NOMEM : BITNET_E_GRAMMAR;
    m->cur = intern(m, m->cur_copy, m->cur_len);
    return m->cur < 0 ? BITNET_E_NOMEM : BITNET_OK;
}

int bitnet__gmatch_create(bn_gmatch **out, const bn_grammar *g)
{
    *out = NULL;
    bn_gmatch *m = calloc(1, sizeof(*m));
    if (!m)
        return bitnet__error(BITNET_E_NOMEM, "grammar: out of memory");
    m->g = g;
    m->start = compute_start(m);
    if (m->start < 0) {
        int dead = m->start == T_DEAD;
        bitnet__gmatch_free(m);
        if (dead)
            return bitnet__error(BITNET_E_GRAMMAR, "grammar: the start rule "
                                 "expands to too many alternatives at once "
                                 "(more than %d parse stacks, or nesting "
                                 "deeper than %d)", BN_GM_MAX_STACKS,
                                 BN_GM_MAX_DEPTH);
        return bitnet__error(BITNET_E_NOMEM, "grammar: out of memory");
    }
    m->cur = m->start;
    if (save_cur(m)) {
        bitnet__gmatch_free(m);
        return bitnet__error(BITNET_E_NOMEM, "grammar: out of memory");
    }
    *out = m;
    return BITNET_OK;
}

void bitnet__gmatch_free(bn_gmatch *m)
{
    if (!m)
        return;
    free(m->data);
    free(m->off);
    free(m->len);
    free(m->flags);
    free(m->trans);
    free(m->htab);
    free(m->cur_copy);
    free(m->out);
    free(m->recs);
    free(m->cand);
    for (int i = 0; i < BN_GM_MAX_DEPTH; i++)
        free(m->bufs[i]);
    free(m->walk);
    free(m);
}

void bitnet__gmatch_reset(bn_gmatch *m)
{
    m->cur = m->start;
    (void)save_cur(m);   /* start fits: cur_copy held it at creation */
}

static int maybe_clear(bn_gmatch *m)
{
    if (m->n_states <= BN_GM_SOFT_STATES)
        return BITNET_OK;
    return clear_cache(m);
}

int bitnet__gmatch_feed(bn_gmatch *m, const void *bytes, size_t n)
{
    if (maybe_clear(m) != BITNET_OK)
        return BITNET_E_NOMEM;
    const unsigned char *s = bytes;
    int32_t st = m->cur;
    for (size_t i = 0; i < n; i++) {
        st = next_state(m, st, s[i]);
        if (st == T_NOMEM)
            return BITNET_E_NOMEM;
        if (st < 0)
            return 0;
    }
    m->cur = st;
    if (save_cur(m))
        return BITNET_E_NOMEM;
    return 1;
}

int bitnet__gmatch_can_end(const bn_gmatch *m)
{
    return (m->flags[m->cur] & F_CAN_END) != 0;
}

int bitnet__gmatch_can_continue(const bn_gmatch *m)
{
    return (m->flags[m->cur] & F_CAN_MORE) != 0;
}

int bitnet__grammar_match(const bn_grammar *g, const char *s, size_t n)
{
    bn_gmatch *m;
    if (bitnet__gmatch_create(&m, g) != BITNET_OK)
        return -1;
    int rc = bitnet__gmatch_feed(m, s, n);
    if (rc == 1)
        rc = bitnet__gmatch_can_end(m);
    bitnet__gmatch_free(m);
    return rc;
}

/* ---- the trie of token pieces ------------------------------------------ */

typedef struct piece_ref {
    const unsigned char *s;
    uint32_t len;
    int32_t id;
} piece_ref;

static int piece_cmp(const void *pa, const void *pb)
{
    const piece_ref *a = pa, *b = pb;
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    if (c != 0)
        return c;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

void bitnet__vtrie_free(bn_vtrie *t)
{
    if (!t)
        return;
    free(t->byte);
    free(t->end);
    free(t->tok_first);
    free(t->toks);
    free(t);
}

int bitnet__vtrie_build(bn_vtrie **out, const char *const *pieces,
                        const uint32_t *len, int32_t n)
{
    *out = NULL;
    size_t n_p = 0, total = 1;
    uint32_t max_len = 0;
    for (int32_t i = 0; i < n; i++)
        if (len[i] > 0) {
            n_p++;
            total += len[i];
            if (len[i] > max_len)
                max_len = len[i];
        }
    bn_vtrie *t = calloc(1, sizeof(*t));
    piece_ref *refs = malloc((n_p ? n_p : 1) * sizeof(*refs));
    uint32_t *path = malloc(((size_t)max_len + 1) * sizeof(*path));
    uint32_t *tok_node = malloc((n_p ? n_p : 1) * sizeof(*tok_node));
    if (!t || !refs || !path || !tok_node)
        goto nomem;
    t->byte = malloc(total);
    t->end = malloc(total * sizeof(*t->end));
    t->tok_first = calloc(total + 1, sizeof(*t->tok_first));
    t->toks = malloc((n_p ? n_p : 1) * sizeof(*t->toks));
    if (!t->byte || !t->end || !t->tok_first || !t->toks)
        goto nomem;
    size_t k = 0;
    for (int32_t i = 0; i < n; i++)
        if (len[i] > 0) {
            refs[k].s = (const unsigned char *)pieces[i];
            refs[k].len = len[i];
            refs[k].id = i;
            k++;
        }
    qsort(refs, n_p, sizeof(*refs), piece_cmp);
    /* Pieces in sorted order create the nodes in preorder: the path to the
     * previous piece stays open up to the common prefix. */
    uint32_t nn = 1, depth = 0;
    path[0] = 0;
    t->byte[0] = 0;
    for (size_t i = 0; i < n_p; i++) {
        uint32_t lcp = 0;
        if (i > 0) {
            uint32_t lim = refs[i - 1].len < refs[i].len ? refs[i - 1].len : refs[i].len;
            while (lcp < lim && refs[i - 1].s[lcp] == refs[i].s[lcp])
                lcp++;
        }
        for (uint32_t d = depth; d > lcp; d--)
            t->end[path[d]] = nn;
        for (uint32_t d = lcp + 1; d <= refs[i].len; d++) {
            t->byte[nn] = refs[i].s[d - 1];
            path[d] = nn++;
        }
        depth = refs[i].len;
        tok_node[i] = path[depth];
    }
    for (uint32_t d = depth; d > 0; d--)
        t->end[path[d]] = nn;
    t->end[0] = nn;
    t->n_nodes = nn;
    for (size_t i = 0; i < n_p; i++)
        t->tok_first[tok_node[i] + 1]++;
    for (uint32_t i = 0; i < nn; i++)
        t->tok_first[i + 1] += t->tok_first[i];
    for (size_t i = 0; i < n_p; i++)   /* tok_node is non-decreasing */
        t->toks[i] = refs[i].id;
    free(refs);
    free(path);
    free(tok_node);
    *out = t;
    return BITNET_OK;
nomem:
    free(refs);
    free(path);
    free(tok_node);
    bitnet__vtrie_free(t);
    return bitnet__error(BITNET_E_NOMEM, "grammar: out of memory (token trie)");
}

int bitnet__gmatch_mask(bn_gmatch *m, const bn_vtrie *t, uint64_t *allowed,
                        int32_t n_vocab)
{
    if (maybe_clear(m) != BITNET_OK)
        return bitnet__error(BITNET_E_NOMEM, "grammar: out of memory");
    memset(allowed, 0, (((size_t)n_vocab + 63) / 64) * sizeof(*allowed));
    size_t sp = 0;
    if (grow((void **)&m->walk, &m->cap_walk, 1, sizeof(walk_item)))
        goto nomem;
    m->walk[sp].node = 0;
    m->walk[sp].st = m->cur;
    sp++;
    const uint8_t *byte = t->byte;
    const uint32_t *end = t->end, *tf = t->tok_first;
    while (sp > 0) {
        walk_item it = m->walk[--sp];
        for (uint32_t c = it.node + 1; c < end[it.node]; c = end[c]) {
            int32_t ns = next_state(m, it.st, byte[c]);
            if (ns < 0) {
                if (ns == T_NOMEM)
                    goto nomem;
                continue;
            }
            for (uint32_t k = tf[c]; k < tf[c + 1]; k++) {
                uint32_t id = (uint32_t)t->toks[k];
                allowed[id >> 6] |= 1ull << (id & 63);
            }
            if (end[c] > c + 1) {
                if (grow((void **)&m->walk, &m->cap_walk, sp + 1, sizeof(walk_item)))
                    goto nomem;
                m->walk[sp].node = c;
                m->walk[sp].st = ns;
                sp++;
            }
        }
    }
    return BITNET_OK;
nomem:
    return bitnet__error(BITNET_E_NOMEM, "grammar: out of memory");
}
