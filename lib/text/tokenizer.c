/*
 * Vocabulary loading (tokenizer.ggml.* keys), the tokenizers and the public
 * tokenizer entry points.
 *
 * Byte-level BPE: tokens are stored and hashed by their raw bytes (decoded
 * from the GPT-2 byte-to-unicode form once at load), merges are a hash from
 * (left id, right id) to (rank, result id). Text is split by a hand-written
 * pre-tokenizer scanner (llama3, gpt-2 or the four-pass "default"), each
 * piece is merged by rank, leftmost first on ties, exactly as llama.cpp does.
 *
 * SentencePiece (model "llama"): spaces become U+2581, a space is prefixed,
 * adjacent symbols are merged by the score of the merged token (highest
 * first, leftmost on ties); characters that form no token fall back to
 * <0xXX> byte tokens.
 */
#include <stdlib.h>
#include <float.h>
#include <string.h>
#if defined(__linux__)
# include <sys/mman.h>
#endif

#include "base/internal.h"
#include "model/model.h"
#include "text/unicode.h"
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

    void *arena;                    /* one allocation: hash, merges, tok, blob */
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

/* ---- small helpers ---------------------------------------------------- */

static uint32_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 16777619u;
    }
    /* FNV's low bits mix poorly: finish with the murmur3 mixer */
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static uint64_t hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

#if defined(__GNUC__)
# define PREFETCH(p) __builtin_prefetch(p)
#else
# define PREFETCH(p) ((void)(p))
#endif

static int same_bytes(const char *a, const char *b, size_t n)
{
    if (n > 8) return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static int32_t lookup_h(const bitnet_vocab *v, const void *s, size_t n, uint32_t h)
{
    for (uint32_t i = h & v->hash_mask;; i = (i + 1) & v->hash_mask) {
        const hslot *e = &v->hash[i];
        if (!e->id1) return -1;
        if (e->h == h && e->key_len == n &&
            same_bytes(n <= sizeof(e->pre) ? e->pre : v->blob + e->key_off, s, n))
            return (int32_t)(e->id1 - 1);
    }
}

static int32_t lookup(const bitnet_vocab *v, const void *s, size_t n)
{
    return lookup_h(v, s, n, hash_bytes(s, n));
}

/* Insert token id under its key; a later id with the same key replaces the
 * earlier one (as a map assignment would). */
static void hash_insert(bitnet_vocab *v, int32_t id, uint32_t h)
{
    const vtoken *t = &v->tok[id];
    const char *s = v->blob + t->key_off;
    for (uint32_t i = h & v->hash_mask;; i = (i + 1) & v->hash_mask) {
        hslot *e = &v->hash[i];
        if (!e->id1) {
            e->id1 = (uint32_t)id + 1;
            e->h = h;
            e->key_off = t->key_off;
            e->key_len = t->key_len;
            memcpy(e->pre, s, t->key_len < sizeof(e->pre) ? t->key_len : sizeof(e->pre));
            return;
        }
        if (e->h == h && e->key_len == t->key_len && memcmp(v->blob + e->key_off, s, t->key_len) == 0) {
            e->id1 = (uint32_t)id + 1;
            v->hash_dup = 1;
            return;
        }
    }
}

static const merge_ent *merge_find(const bitnet_vocab *v, int32_t a, int32_t b)
{
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    for (uint32_t i = (uint32_t)hash64(key) & v->merge_mask;; i = (i + 1) & v->merge_mask) {
        const merge_ent *e = &v->merges[i];
        if (e->key == key) return e;
        if (!e->key) return NULL;
    }
}

/* GPT-2 byte-to-unicode map: printable bytes (0x21-0x7E, 0xA1-0xAC,
 * 0xAE-0xFF) stand for themselves; the other 68 bytes, in order (0x00-0x20,
 * 0x7F-0xA0, 0xAD), are U+0100..U+0143. Returns the byte of a code point,
 * or -1 when the code point is not in the map. */
static int cp_to_byte(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp < 0x100 || cp > 0x143) return -1;
    uint32_t k = cp - 0x100;
    if (k < 33) return (int)k;
    if (k < 67) return (int)(0x7F + k - 33);
    return 0xAD;
}

/* Decode GPT-2 byte-level text into raw bytes; dst has room for n bytes.
 * Returns the length, or SIZE_MAX when a character is outside the map. */
static size_t bytelevel_decode(const char *src, size_t n, char *dst)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, o = 0;
    while (i < n) {
        if (s[i] >= 0x21 && s[i] <= 0x7E) {   /* printable ASCII is itself */
            dst[o++] = (char)s[i++];
            continue;
        }
        uint32_t cp;
        size_t l = bitnet__utf8_decode(s + i, n - i, &cp);
        int b = cp_to_byte(cp);
        if (b < 0) return SIZE_MAX;
        dst[o++] = (char)b;
        i += l;
    }
    return o;
}

/* ---- reading the vocabulary description ----------------------------- */

/* Integer/bool field: 0 ok, 1 absent, -1 wrong type (u64 beyond int64
 * saturates). */
static int field_int(const bitnet_vocab_field *f, int64_t *out)
{
    if (!f->present) return 1;
    const bitnet_value *v = &f->v;
    size_t sz = bitnet__vtype_size(v->type);
    if (!sz || v->type == BITNET_VT_F32 || v->type == BITNET_VT_F64 || v->size < sz)
        return -1;
    if (v->type == BITNET_VT_U64) {
        uint64_t x;
        memcpy(&x, v->data, 8);
        *out = x > INT64_MAX ? INT64_MAX : (int64_t)x;
    } else if (v->type == BITNET_VT_I64) {
        memcpy(out, v->data, 8);
    } else {
        *out = (int64_t)bitnet__value_num_at(v->data, v->type);
    }
    return 0;
}

static int field_str(const bitnet_vocab_field *f, const char **s, uint64_t *n)
{
    if (f->v.type != BITNET_VT_STR) return -1;
    const uint8_t *p = f->v.data;
    uint64_t left = f->v.size;
    return bitnet__value_next_str(&p, &left, s, n);
}

/* Numeric array field with exactly n elements: pointer to the first, or
 * NULL. */
static const uint8_t *field_num_arr(const bitnet_vocab_field *f, uint64_t n, uint32_t *et)
{
    const bitnet_value *v = &f->v;
    if (v->type != BITNET_VT_ARR || v->arr_n != n) return NULL;
    size_t sz = bitnet__vtype_size(v->arr_type);
    if (!sz || n > v->size / sz) return NULL;
    *et = v->arr_type;
    return v->data;
}

#define num_at bitnet__value_num_at
#define vt_size bitnet__vtype_size
#define next_str bitnet__value_next_str

/* ---- loading ---------------------------------------------------------- */

void bitnet__vocab_free(bitnet_vocab *v)
{
    if (!v) return;
    bitnet__afree(v->arena);
    free(v->special);
    free(v);
}

static int cmp_special(const void *a, const void *b, void *ctx);

/* Order special tokens longest text first, ties by id (merge sort). */
static void sort_special(bitnet_vocab *v)
{
    int32_t n = v->n_special;
    int32_t *tmp = v->special;
    int32_t *buf = malloc((size_t)(n ? n : 1) * sizeof(*buf));
    if (!buf) {   /* fall back to insertion sort */
        for (int32_t i = 1; i < n; i++) {
            int32_t x = tmp[i], j = i - 1;
            while (j >= 0 && cmp_special(&tmp[j], &x, v) > 0) { tmp[j + 1] = tmp[j]; j--; }
            tmp[j + 1] = x;
        }
        return;
    }
    for (int32_t w = 1; w < n; w *= 2) {
        for (int32_t lo = 0; lo < n; lo += 2 * w) {
            int32_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int32_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                buf[k++] = cmp_special(&tmp[j], &tmp[i], v) < 0 ? tmp[j++] : tmp[i++];
            while (i < mid) buf[k++] = tmp[i++];
            while (j < hi) buf[k++] = tmp[j++];
        }
        memcpy(tmp, buf, (size_t)n * sizeof(*tmp));
    }
    free(buf);
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
    const bitnet_vocab *v = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = v->tok[x].raw_len, ly = v->tok[y].raw_len;
    if (lx != ly) return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int parse_byte_token(const char *s, size_t n)
{
    /* "<0xXX>" */
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        int c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

static int str_is(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(s, lit, l) == 0;
}

static int32_t find_text(const bitnet_vocab *v, const char *lit)
{
    size_t l = strlen(lit);
    int32_t found = -1;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (v->tok[i].raw_len == l && memcmp(v->blob + v->tok[i].raw_off, lit, l) == 0)
            found = i;   /* the last one, as a text -> id map would give */
    return found;
}

static int special_id(const bitnet_vocab_field *f, int32_t n, int32_t *id)
{
    int64_t x;
    int r = field_int(f, &x);
    if (r < 0) return bitnet__error(BITNET_E_FORMAT, "vocab: key '%s' is not an integer", f->name);
    if (r > 0) return BITNET_OK;
    if (x < 0 || x >= n) {
        /* An out-of-range id is ignored (treated as absent), as llama.cpp does. */
        *id = -1;
        return BITNET_OK;
    }
    *id = (int32_t)x;
    return BITNET_OK;
}

/* Build the merge table from tokenizer.ggml.merges ("A B" strings in rank
 * order). Random access into the hashes dominates, so merges are handled in
 * batches: decode and hash a batch and prefetch, then look the parts up and
 * prefetch the merge slots, then insert in rank order (first rank wins). */
static int grow(void **p, size_t *cap, size_t need, size_t elem);

enum { MBATCH = 32 };

typedef struct mpend {
    size_t off;          /* decoded A then B in the batch buffer */
    uint32_t la, lb;
    uint32_t ha, hb, hab;
    int32_t a, b, r;
    uint64_t key, kh;
    int ok;
} mpend;

static int load_merges(bitnet_vocab *v, const bitnet_vocab_field *f, uint64_t nm)
{
    const uint8_t *p = f->v.data;
    uint64_t left = f->v.size;
    char *buf = NULL;
    size_t buf_cap = 0;
    mpend pd[MBATCH];
    int32_t guess = -1;
    size_t mx = 0;
    for (uint64_t i0 = 0; i0 < nm; i0 += MBATCH) {
        uint32_t cnt = nm - i0 < MBATCH ? (uint32_t)(nm - i0) : MBATCH;
        size_t used = 0;
        for (uint32_t k = 0; k < cnt; k++) {
            mpend *m = &pd[k];
            const char *s; uint64_t sl;
            m->ok = 0;
            if (next_str(&p, &left, &s, &sl)) {
                free(buf);
                return bitnet__error(BITNET_E_FORMAT, "vocab: %s[%llu] runs past the array",
                                     f->name, (unsigned long long)(i0 + k));
            }
            /* split at the first space after the first character */
            const char *sp = sl > 1 ? memchr(s + 1, ' ', (size_t)sl - 1) : NULL;
            if (!sp) continue;
            if (grow((void **)&buf, &buf_cap, used + (size_t)sl, 1)) {
                free(buf);
                return bitnet__error(BITNET_E_NOMEM, "vocab: out of memory");
            }
            size_t la = (size_t)(sp - s), lb = (size_t)sl - la - 1;
            size_t da = bytelevel_decode(s, la, buf + used);
            if (da == SIZE_MAX) continue;
            size_t db = bytelevel_decode(sp + 1, lb, buf + used + da);
            if (db == SIZE_MAX) continue;
            m->off = used;
            m->la = (uint32_t)da;
            m->lb = (uint32_t)db;
            used += da + db;
            m->ha = hash_bytes(buf + m->off, da);
            m->hb = hash_bytes(buf + m->off + da, db);
            m->hab = hash_bytes(buf + m->off, da + db);
            PREFETCH(&v->hash[m->ha & v->hash_mask]);
            PREFETCH(&v->hash[m->hb & v->hash_mask]);
            m->ok = 1;
        }
        for (uint32_t k = 0; k < cnt; k++) {
            mpend *m = &pd[k];
            if (!m->ok) continue;
            const char *t = buf + m->off;
            m->a = lookup_h(v, t, m->la, m->ha);
            m->b = lookup_h(v, t + m->la, m->lb, m->hb);
            if (m->a < 0 || m->b < 0) { m->ok = 0; continue; }
            m->key = (((uint64_t)(uint32_t)m->a << 32) | (uint32_t)m->b) + 1;
            m->kh = hash64(m->key);
            PREFETCH(&v->merges[m->kh & v->merge_mask]);
            /* Merge i usually makes the token after merge i-1's (ids in
             * rank order): try that one before hashing. */
            size_t lab = (size_t)m->la + m->lb;
            if (guess >= 0 && guess < v->n_tokens && !v->hash_dup && v->tok[guess].key_len == lab &&
                memcmp(v->blob + v->tok[guess].key_off, t, lab) == 0)
                m->r = guess;
            else
                m->r = lookup_h(v, t, lab, m->hab);
            if (m->r >= 0) guess = m->r + 1;
        }
        for (uint32_t k = 0; k < cnt; k++) {
            mpend *m = &pd[k];
            if (!m->ok) continue;
            for (uint32_t j = (uint32_t)m->kh & v->merge_mask;; j = (j + 1) & v->merge_mask) {
                merge_ent *e = &v->merges[j];
                if (e->key == m->key) break;   /* the first (lowest) rank wins */
                if (!e->key) {
                    e->key = m->key;
                    e->rank = (int32_t)(i0 + k);
                    e->result = m->r;
                    mx++;
                    break;
                }
            }
        }
    }
    free(buf);
    v->n_merges = (int32_t)mx;
    return BITNET_OK;
}

int bitnet__vocab_load(bitnet_vocab **out, const bitnet_vocab_desc *d, int32_t pretok,
                       const bitnet_logger *log)
{
    if (!out || !d) return bitnet__error(BITNET_E_INVALID_ARG, "vocab: NULL argument");
    *out = NULL;
    const bitnet_vocab_field *F = d->f;

    const bitnet_vocab_field *f_model = &F[BITNET_VF_MODEL];
    if (!f_model->present) return bitnet__error(BITNET_E_FORMAT, "vocab: no %s key", f_model->name);
    const char *ms; uint64_t mn;
    if (field_str(f_model, &ms, &mn))
        return bitnet__error(BITNET_E_FORMAT, "vocab: %s is not a string", f_model->name);
    int type;
    if (str_is(ms, mn, "none") || str_is(ms, mn, "no_vocab")) {
        bitnet__log(log, BITNET_LOG_INFO, "%s is '%.*s': no vocabulary", f_model->name, (int)mn, ms);
        return BITNET_OK;   /* *out stays NULL: tokenizer calls report UNSUPPORTED */
    }
    if (str_is(ms, mn, "gpt2")) type = VT_BPE;
    else if (str_is(ms, mn, "llama")) type = VT_SPM;
    else return bitnet__error(BITNET_E_UNSUPPORTED, "vocab: %s '%.*s' is not supported (gpt2, llama)",
                              f_model->name, (int)(mn > 64 ? 64 : mn), ms);

    const bitnet_vocab_field *f_tok = &F[BITNET_VF_TOKENS];
    const bitnet_value *kv_tok = &f_tok->v;
    if (!f_tok->present) return bitnet__error(BITNET_E_FORMAT, "vocab: no %s key", f_tok->name);
    if (kv_tok->type != BITNET_VT_ARR || kv_tok->arr_type != BITNET_VT_STR)
        return bitnet__error(BITNET_E_FORMAT, "vocab: %s is not an array of strings", f_tok->name);
    uint64_t n64 = kv_tok->arr_n;
    if (n64 == 0 || n64 > INT32_MAX / 2 || n64 > kv_tok->size / 8)
        return bitnet__error(BITNET_E_FORMAT, "vocab: %s has a bad count (%llu)", f_tok->name,
                             (unsigned long long)n64);
    int32_t n = (int32_t)n64;
    if (kv_tok->size > UINT32_MAX / 3)
        return bitnet__error(BITNET_E_UNSUPPORTED, "vocab: %s is too large", f_tok->name);

    bitnet_vocab *v = calloc(1, sizeof(*v));
    if (!v) return bitnet__error(BITNET_E_NOMEM, "vocab: out of memory");
    v->type = type;
    v->n_tokens = n;
    v->bos = v->eos = v->eot = v->eom = v->unk = v->pad = -1;
    int rc = BITNET_E_NOMEM;

    /* Merges kv (BPE), checked here so the arena can be sized at once. */
    const bitnet_vocab_field *f_merges = &F[BITNET_VF_MERGES];
    const bitnet_value *kv_merges = type == VT_BPE && f_merges->present ? &f_merges->v : NULL;
    uint64_t nm = 0;
    if (kv_merges) {
        if (kv_merges->type != BITNET_VT_ARR || kv_merges->arr_type != BITNET_VT_STR ||
            kv_merges->arr_n > kv_merges->size / 8 || kv_merges->arr_n > INT32_MAX / 4) {
            rc = bitnet__error(BITNET_E_FORMAT, "vocab: %s is not an array of strings", f_merges->name);
            goto fail;
        }
        nm = kv_merges->arr_n;
    }

    /* One arena: token hash, merge hash, token records, then the text blob
     * (raw text + decoded key/piece copies, each at most the raw size). */
    size_t text_total = (size_t)kv_tok->size;
    uint32_t hcap = 1;
    while (hcap < (uint32_t)n * 2u) hcap <<= 1;
    uint32_t mcap = 0;
    if (type == VT_BPE) {
        mcap = 16;
        while (mcap < nm + nm / 2 + 16) mcap <<= 1;
    }
    size_t sz_hash = (size_t)hcap * sizeof(hslot), sz_merge = (size_t)mcap * sizeof(merge_ent);
    size_t sz_tok = (size_t)n * sizeof(vtoken), sz_blob = text_total * 2 + 16;
    size_t zeroed = sz_hash + sz_merge + sz_tok, total;
    if (bitnet__add_ovf(zeroed, sz_blob, &total)) {
        rc = bitnet__error(BITNET_E_NOMEM, "vocab: too large");
        goto fail;
    }
    v->arena = bitnet__aalloc(total, (size_t)1 << 21);
    if (!v->arena) {
        rc = bitnet__error(BITNET_E_NOMEM, "vocab: out of memory (%d tokens, %llu merges)", n, (unsigned long long)nm);
        goto fail;
    }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    /* Fewer page faults: the tables are touched at random while loading. */
    if (total >= ((size_t)1 << 21)) madvise(v->arena, total, MADV_HUGEPAGE);
#endif
    memset(v->arena, 0, zeroed);
    v->hash = (hslot *)v->arena;
    v->hash_mask = hcap - 1;
    v->merges = mcap ? (merge_ent *)((char *)v->arena + sz_hash) : NULL;
    v->merge_mask = mcap ? mcap - 1 : 0;
    v->tok = (vtoken *)((char *)v->arena + sz_hash + sz_merge);
    v->blob = (char *)v->arena + zeroed;

    /* Scores and types (optional). */
    const uint8_t *scores = NULL, *types = NULL;
    uint32_t scores_t = 0, types_t = 0;
    const bitnet_vocab_field *f = &F[BITNET_VF_SCORES];
    if (f->present && !(scores = field_num_arr(f, n64, &scores_t))) {
        rc = bitnet__error(BITNET_E_FORMAT, "vocab: %s does not hold %d numbers", f->name, n);
        goto fail;
    }
    f = &F[BITNET_VF_TOKEN_TYPE];
    if (f->present && !(types = field_num_arr(f, n64, &types_t))) {
        rc = bitnet__error(BITNET_E_FORMAT, "vocab: %s does not hold %d numbers", f->name, n);
        goto fail;
    }

    /* Tokens. */
    const uint8_t *p = kv_tok->data;
    uint64_t left = kv_tok->size;
    size_t bo = 0;
    for (int32_t i = 0; i < n; i++) {
        const char *s; uint64_t sl;
        if (next_str(&p, &left, &s, &sl)) {
            rc = bitnet__error(BITNET_E_FORMAT, "vocab: %s[%d] runs past the array", f_tok->name, i);
            goto fail;
        }
        vtoken *t = &v->tok[i];
        t->raw_off = (uint32_t)bo;
        t->raw_len = (uint32_t)sl;
        memcpy(v->blob + bo, s, sl);
        bo += sl;
        double sc = scores ? num_at(scores + (size_t)i * vt_size(scores_t), scores_t) : 0.0;
        /* clamp before narrowing: an out-of-range conversion is undefined */
        t->score = sc != sc ? 0.0f : sc > FLT_MAX ? FLT_MAX : sc < -FLT_MAX ? -FLT_MAX : (float)sc;
        double ty = types ? num_at(types + (size_t)i * vt_size(types_t), types_t) : TT_NORMAL;
        t->type = (uint8_t)(ty >= 0 && ty <= TT_BYTE ? (int)ty : TT_UNDEFINED);

        if (type == VT_BPE) {
            size_t dl = bytelevel_decode(s, sl, v->blob + bo);
            if (dl == SIZE_MAX) {
                t->key_off = 0;
                t->key_len = NO_KEY;
            } else {
                t->key_off = (uint32_t)bo;
                t->key_len = (uint32_t)dl;
                bo += dl;
            }
            if (t->type == TT_NORMAL && t->key_len != NO_KEY) {
                t->piece_off = t->key_off;
                t->piece_len = t->key_len;
            } else {
                t->piece_off = t->raw_off;
                t->piece_len = t->raw_len;
            }
        } else {
            t->key_off = t->raw_off;
            t->key_len = t->raw_len;
            t->piece_off = t->raw_off;
            t->piece_len = t->raw_len;
            if (t->type == TT_NORMAL) {
                /* U+2581 -> ' ' */
                size_t o = bo;
                for (size_t k = 0; k < sl; k++) {
                    if (k + 2 < sl && (unsigned char)s[k] == 0xE2 && (unsigned char)s[k + 1] == 0x96 &&
                        (unsigned char)s[k + 2] == 0x81) {
                        v->blob[o++] = ' ';
                        k += 2;
                    } else {
                        v->blob[o++] = s[k];
                    }
                }
                t->piece_off = (uint32_t)bo;
                t->piece_len = (uint32_t)(o - bo);
                bo = o;
            } else if (t->type == TT_BYTE) {
                int b = parse_byte_token(s, sl);
                if (b >= 0) {
                    v->blob[bo] = (char)b;
                    t->piece_off = (uint32_t)bo;
                    t->piece_len = 1;
                    bo += 1;
                }
            } else if (t->type == TT_UNKNOWN) {
                memcpy(v->blob + bo, "\xe2\x96\x85", 3);
                t->piece_off = (uint32_t)bo;
                t->piece_len = 3;
                bo += 3;
            }
        }
        if (t->piece_len > v->max_piece) v->max_piece = t->piece_len;
    }
    v->blob_len = bo;
    /* Hash inserts in batches: hash and prefetch ahead, insert in order. */
    for (int32_t i0 = 0; i0 < n; i0 += 32) {
        uint32_t hs[32];
        int32_t cnt = n - i0 < 32 ? n - i0 : 32;
        for (int32_t k = 0; k < cnt; k++) {
            const vtoken *t = &v->tok[i0 + k];
            if (t->key_len == NO_KEY) continue;
            hs[k] = hash_bytes(v->blob + t->key_off, t->key_len);
            PREFETCH(&v->hash[hs[k] & v->hash_mask]);
        }
        for (int32_t k = 0; k < cnt; k++)
            if (v->tok[i0 + k].key_len != NO_KEY) hash_insert(v, i0 + k, hs[k]);
    }

    /* Single-byte tokens. */
    for (int b = 0; b < 256; b++) {
        v->byte_tok[b] = -1;
        if (type == VT_BPE) {
            char c = (char)b;
            v->byte_tok[b] = lookup(v, &c, 1);
        } else {
            char hex[8];
            static const char digits[] = "0123456789ABCDEF";
            hex[0] = '<'; hex[1] = '0'; hex[2] = 'x';
            hex[3] = digits[b >> 4]; hex[4] = digits[b & 15]; hex[5] = '>';
            v->byte_tok[b] = lookup(v, hex, 6);
        }
    }

    /* Merges (BPE). */
    if (type == VT_BPE && nm && (rc = load_merges(v, f_merges, nm)))
        goto fail;

    /* Special ids. */
    if (type == VT_SPM) {
        v->bos = n > 1 ? 1 : -1;
        v->eos = n > 2 ? 2 : -1;
        v->unk = 0;
    }
    if ((rc = special_id(&F[BITNET_VF_BOS], n, &v->bos)) ||
        (rc = special_id(&F[BITNET_VF_EOS], n, &v->eos)) ||
        (rc = special_id(&F[BITNET_VF_EOT], n, &v->eot)) ||
        (rc = special_id(&F[BITNET_VF_EOM], n, &v->eom)) ||
        (rc = special_id(&F[BITNET_VF_UNK], n, &v->unk)) ||
        (rc = special_id(&F[BITNET_VF_PAD], n, &v->pad)))
        goto fail;
    int64_t x;
    int r = field_int(&F[BITNET_VF_ADD_BOS], &x);
    v->add_bos = r == 0 ? x != 0 : v->bos >= 0;
    r = field_int(&F[BITNET_VF_ADD_EOS], &x);
    v->add_eos = r == 0 ? x != 0 : 0;
    r = field_int(&F[BITNET_VF_ADD_SPACE_PREFIX], &x);
    v->add_space_prefix = r == 0 ? x != 0 : type == VT_SPM;
    if (v->add_bos && v->bos < 0) v->add_bos = 0;
    if (v->add_eos && v->eos < 0) v->add_eos = 0;

    if (v->eot < 0) {
        static const char *const eot_names[] = {
            "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
            "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>"
        };
        for (size_t k = 0; k < sizeof(eot_names) / sizeof(eot_names[0]) && v->eot < 0; k++)
            v->eot = find_text(v, eot_names[k]);
        if (v->eot >= 0 && v->tok[v->eot].type != TT_CONTROL && v->tok[v->eot].type != TT_USER_DEFINED)
            v->tok[v->eot].type = TT_CONTROL;
    }
    if (v->eom < 0) {
        v->eom = find_text(v, "<|eom_id|>");
        if (v->eom >= 0 && v->tok[v->eom].type != TT_CONTROL && v->tok[v->eom].type != TT_USER_DEFINED)
            v->tok[v->eom].type = TT_CONTROL;
    }

    /* Special tokens for partitioning. */
    int32_t ns = 0;
    for (int32_t i = 0; i < n; i++) {
        int t = v->tok[i].type;
        if ((t == TT_CONTROL || t == TT_USER_DEFINED || t == TT_UNKNOWN) && v->tok[i].raw_len) ns++;
    }
    v->special = malloc((size_t)(ns ? ns : 1) * sizeof(*v->special));
    if (!v->special) { rc = bitnet__error(BITNET_E_NOMEM, "vocab: out of memory"); goto fail; }
    ns = 0;
    for (int32_t i = 0; i < n; i++) {
        int t = v->tok[i].type;
        if ((t == TT_CONTROL || t == TT_USER_DEFINED || t == TT_UNKNOWN) && v->tok[i].raw_len)
            v->special[ns++] = i;
    }
    v->n_special = ns;
    sort_special(v);

    /* Pre-tokenizer. */
    v->pretok = PT_DEFAULT;
    if (type == VT_BPE) {
        const char *ps = NULL; uint64_t pn = 0;
        int no_ignore = 0;
        f = &F[BITNET_VF_PRE];
        if (f->present && field_str(f, &ps, &pn)) {
            rc = bitnet__error(BITNET_E_FORMAT, "vocab: %s is not a string", f->name);
            goto fail;
        }
        if (pretok == BITNET_PRETOK_DEFAULT) v->pretok = PT_DEFAULT;
        else if (pretok == BITNET_PRETOK_LLAMA3) v->pretok = PT_LLAMA3;
        else if (pretok == BITNET_PRETOK_GPT2) v->pretok = PT_GPT2;
        else if (!f->present) {
            if (n == 128256 || find_text(v, "<|begin_of_text|>") >= 0) {
                v->pretok = PT_LLAMA3;
                bitnet__log(log, BITNET_LOG_INFO,
                            "%s is missing on a Llama-3 vocabulary: using the llama-bpe "
                            "pre-tokenizer (the model's training tokenizer); BITNET_PRETOK_DEFAULT gives "
                            "bitnet.cpp's behaviour", f->name);
            } else {
                v->pretok = PT_DEFAULT;
            }
        } else if (str_is(ps, pn, "llama-bpe") || str_is(ps, pn, "llama3") || str_is(ps, pn, "llama-v3") ||
                   str_is(ps, pn, "falcon3") || str_is(ps, pn, "falcon_e") || str_is(ps, pn, "falcon-h1") ||
                   str_is(ps, pn, "pixtral")) {
            v->pretok = PT_LLAMA3;
        } else if (str_is(ps, pn, "smaug-bpe") || str_is(ps, pn, "dbrx")) {
            v->pretok = PT_LLAMA3;   /* the Llama-3 regex, but merging every piece */
            no_ignore = 1;
        } else if (str_is(ps, pn, "gpt-2") || str_is(ps, pn, "gpt2") || str_is(ps, pn, "phi-2") ||
                   str_is(ps, pn, "jina-es") || str_is(ps, pn, "jina-de") || str_is(ps, pn, "gigachat") ||
                   str_is(ps, pn, "jina-v1-en") || str_is(ps, pn, "jina-v2-es") || str_is(ps, pn, "jina-v2-de") ||
                   str_is(ps, pn, "jina-v2-code") || str_is(ps, pn, "roberta-bpe")) {
            v->pretok = PT_GPT2;
        } else if (str_is(ps, pn, "default")) {
            v->pretok = PT_DEFAULT;
        } else {
            v->pretok = PT_DEFAULT;
            bitnet__log(log, BITNET_LOG_WARN, "%s '%.*s' is not known: using 'default'",
                        f->name, (int)(pn > 64 ? 64 : pn), ps);
        }
        v->ignore_merges = v->pretok == PT_LLAMA3 && !no_ignore;
    }

    *out = v;
    return BITNET_OK;

fail:
    bitnet__vocab_free(v);
    return rc;
}

int32_t bitnet__vocab_n_tokens(const bitnet_vocab *v) { return v ? v->n_tokens : 0; }
int32_t bitnet__vocab_bos(const bitnet_vocab *v) { return v ? v->bos : -1; }
int32_t bitnet__vocab_eos(const bitnet_vocab *v) { return v ? v->eos : -1; }
int32_t bitnet__vocab_eot(const bitnet_vocab *v) { return v ? v->eot : -1; }
int bitnet__vocab_is_eog(const bitnet_vocab *v, int32_t tok)
{
    return v && tok >= 0 && (tok == v->eos || tok == v->eot || tok == v->eom);
}

/* ---- token output sink ------------------------------------------------ */

typedef struct sink {
    int32_t *out;
    size_t cap, n;
} sink;

static void emit(sink *s, int32_t id)
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

static int grow(void **p, size_t *cap, size_t need, size_t elem)
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

static void scratch_free(scratch *sc)
{
    free(sc->u);
    free(sc->cut);
    free(sc->s);
    free(sc->h);
    free(sc->pc);
}

/* ---- pre-tokenizers --------------------------------------------------- */

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

/* ---- BPE -------------------------------------------------------------- */

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

static int heap_push(scratch *sc, const bigram *b, int (*less)(const bigram *, const bigram *))
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

static bigram heap_pop(scratch *sc, int (*less)(const bigram *, const bigram *))
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

static int bpe_add_bigram(const bitnet_vocab *v, scratch *sc, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return 0;
    int32_t res;
    int rank = rank_of(v, sc->s, l, r, &res);
    if (rank < 0) return 0;
    bigram b = { 0.0f, rank, l, r, sc->s[l].id, sc->s[r].id, 0 };
    return heap_push(sc, &b, heap_less);
}

static void merge_into(sym *s, int32_t l, int32_t r, int32_t id)
{
    s[l].len += s[r].len;
    s[l].id = id;
    s[r].len = 0;
    s[l].next = s[r].next;
    if (s[r].next >= 0) s[s[r].next].prev = l;
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
        ph = hash_bytes(p, n);
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
            int32_t res;
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

static int bpe_fragment(const bitnet_vocab *v, scratch *sc, const char *text, size_t len, sink *out)
{
    if (len == 0) return 0;
    if (len > UINT32_MAX - 1) return bitnet__error(BITNET_E_INVALID_ARG, "tokenize: text too long");
    size_t n = decode_units(sc, text, len);
    if (n == SIZE_MAX || grow((void **)&sc->cut, &sc->cut_cap, n + 1, 1))
        return bitnet__error(BITNET_E_NOMEM, "tokenize: out of memory");
    uint8_t *cut = sc->cut;
    memset(cut, 0, n + 1);
    cut[0] = 1;
    const unit *u = sc->u;
    if (!sc->pc && len >= bitnet__bpe_cache_min) {   /* worth a piece cache (failure: none) */
        uint32_t ents = 1024;
        while (ents < 16384 && ents < len / 32) ents <<= 1;
        sc->pc = calloc(ents, sizeof(pcache_ent));
        sc->pc_mask = ents - 1;
    }
    if (v->pretok == PT_LLAMA3) {
        pass(u, cut, n, 4);
    } else if (v->pretok == PT_GPT2) {
        pass(u, cut, n, 1);
    } else {
        for (int k = 0; k < 4; k++) pass(u, cut, n, k);
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

int bitnet__pretok_split(int32_t pretok, const char *text, size_t len, uint32_t *lens, size_t cap,
                         size_t *n_out)
{
    *n_out = 0;
    if (len > UINT32_MAX / 4) return bitnet__error(BITNET_E_INVALID_ARG, "pretok: text too long");
    if (len == 0) return BITNET_OK;
    scratch sc = { 0 };
    size_t n = decode_units(&sc, text, len);
    if (n == SIZE_MAX || grow((void **)&sc.cut, &sc.cut_cap, n + 1, 1)) {
        scratch_free(&sc);
        return bitnet__error(BITNET_E_NOMEM, "pretok: out of memory");
    }
    memset(sc.cut, 0, n + 1);
    sc.cut[0] = 1;
    if (pretok == BITNET_PRETOK_LLAMA3) pass(sc.u, sc.cut, n, 4);
    else if (pretok == BITNET_PRETOK_GPT2) pass(sc.u, sc.cut, n, 1);
    else for (int k = 0; k < 4; k++) pass(sc.u, sc.cut, n, k);
    size_t beg = 0, np = 0;
    while (beg < n) {
        size_t end = beg + 1;
        while (end < n && !sc.cut[end]) end++;
        if (np < cap) lens[np] = sc.u[end].off - sc.u[beg].off;
        np++;
        beg = end;
    }
    scratch_free(&sc);
    *n_out = np;
    return np > cap ? bitnet__error(BITNET_E_BUFFER_TOO_SMALL, "pretok: %zu pieces", np) : BITNET_OK;
}

/* ---- SentencePiece ---------------------------------------------------- */

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

/* text: the fragment with spaces already escaped to U+2581. */
static int spm_fragment(const bitnet_vocab *v, scratch *sc, const char *p, size_t n, sink *out)
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
            else rc = bpe_fragment(v, &sc, text + sp[i].beg, sp[i].end - sp[i].beg, &sk);
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
            if (spm_fragment(v, &sc, esc, o, &sk)) rc = bitnet__error(BITNET_E_NOMEM, "tokenize: out of memory");
            prev_special = 0;
        }
    }
    if (!rc && add && v->add_eos) emit(&sk, v->eos);
    free(esc);
    free(sp);
    scratch_free(&sc);
    if (rc) return rc;
    *n_out = sk.n;
    if (sk.n > cap)
        return bitnet__error(BITNET_E_BUFFER_TOO_SMALL, "tokenize: %zu tokens do not fit in %zu", sk.n, cap);
    return BITNET_OK;
}

/* ---- pieces and detokenization ---------------------------------------- */

/* Bytes of token tok (no checks); *len set. */
static const char *piece_of(const bitnet_vocab *v, int32_t tok, uint32_t flags, size_t *len)
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
    const char *p = piece_of(v, tok, flags, &len);
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
        const char *p = piece_of(v, toks[i], flags, &len);
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

/* ---- public API ------------------------------------------------------- */

static int get_vocab(const bitnet_model *m, const bitnet_vocab **v, const char *fn)
{
    if (!m) return bitnet__error(BITNET_E_INVALID_ARG, "%s: model is NULL", fn);
    if (!m->vocab) return bitnet__error(BITNET_E_UNSUPPORTED, "%s: the model has no tokenizer", fn);
    *v = m->vocab;
    return BITNET_OK;
}

int bitnet_tokenize(const bitnet_model *model, const char *text, size_t len, uint32_t flags,
                    int32_t *out, size_t cap, size_t *n_out)
{
    bitnet__clear_error();
    const bitnet_vocab *v = NULL;
    if (!n_out) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_tokenize: n_out is NULL");
    *n_out = 0;
    if (!text && len) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_tokenize: text is NULL");
    if (!out && cap) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_tokenize: out is NULL");
    if (flags & ~(uint32_t)(BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL))
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_tokenize: unknown flags 0x%x", (unsigned)flags);
    int rc = get_vocab(model, &v, "bitnet_tokenize");
    if (rc) return rc;
    return bitnet__vocab_tokenize(v, text ? text : "", len, flags, out, cap, n_out);
}

int bitnet_token_to_piece(const bitnet_model *model, int32_t token, uint32_t flags,
                          char *buf, size_t cap, size_t *n_out)
{
    bitnet__clear_error();
    const bitnet_vocab *v = NULL;
    if (!n_out) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_token_to_piece: n_out is NULL");
    *n_out = 0;
    if (!buf && cap) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_token_to_piece: buf is NULL");
    if (flags & ~(uint32_t)BITNET_DETOK_SPECIAL)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_token_to_piece: unknown flags 0x%x", (unsigned)flags);
    int rc = get_vocab(model, &v, "bitnet_token_to_piece");
    if (rc) return rc;
    return bitnet__vocab_piece(v, token, flags, buf, cap, n_out);
}

int bitnet_detokenize(const bitnet_model *model, const int32_t *tokens, size_t n_tokens,
                      uint32_t flags, char *buf, size_t cap, size_t *n_out)
{
    bitnet__clear_error();
    const bitnet_vocab *v = NULL;
    if (!n_out) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenize: n_out is NULL");
    *n_out = 0;
    if (!tokens && n_tokens) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenize: tokens is NULL");
    if (!buf && cap) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenize: buf is NULL");
    if (flags & ~(uint32_t)BITNET_DETOK_SPECIAL)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenize: unknown flags 0x%x", (unsigned)flags);
    int rc = get_vocab(model, &v, "bitnet_detokenize");
    if (rc) return rc;
    return bitnet__vocab_detokenize(v, tokens, n_tokens, flags, buf, cap, n_out);
}

int32_t bitnet_token_bos(const bitnet_model *model)
{
    return model ? bitnet__vocab_bos(model->vocab) : -1;
}

int32_t bitnet_token_eos(const bitnet_model *model)
{
    return model ? bitnet__vocab_eos(model->vocab) : -1;
}

int32_t bitnet_token_eot(const bitnet_model *model)
{
    return model ? bitnet__vocab_eot(model->vocab) : -1;
}

int bitnet_token_is_eog(const bitnet_model *model, int32_t token)
{
    return model ? bitnet__vocab_is_eog(model->vocab, token) : 0;
}

/* ---- streaming detokenizer -------------------------------------------- */

struct bitnet_detokenizer {
    const bitnet_vocab *v;
    uint32_t flags;
    unsigned char tail[4];   /* an incomplete UTF-8 sequence held back */
    size_t n_tail;
};

int bitnet_detokenizer_create(bitnet_detokenizer **out, const bitnet_model *model, uint32_t flags)
{
    bitnet__clear_error();
    if (!out) return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenizer_create: out is NULL");
    *out = NULL;
    if (flags & ~(uint32_t)BITNET_DETOK_SPECIAL)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_detokenizer_create: unknown flags 0x%x", (unsigned)flags);
    const bitnet_vocab *v = NULL;
    int rc = get_vocab(model, &v, "bitnet_detokenizer_create");
    if (rc) return rc;
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
    const unsigned char *p = (const unsigned char *)piece_of(v, token, d->flags, &len);
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
