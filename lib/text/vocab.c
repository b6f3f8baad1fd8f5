/*
 * Vocabulary loading from a source's vocabulary description
 * (format/source.h): token records and their text in one arena, the token
 * hash, the merge table (BPE), special ids and the pre-tokenizer choice.
 *
 * Byte-level BPE: tokens are stored and hashed by their raw bytes (decoded
 * from the GPT-2 byte-to-unicode form once at load), merges are a hash from
 * (left id, right id) to (rank, result id).
 */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "text/unicode.h"
#include "text/vocab_impl.h"

/* ---- building the token hash ------------------------------------------ */

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

/* ---- loading ---------------------------------------------------------- */

void bitnet__vocab_free(bitnet_vocab *v)
{
    if (!v) return;
    bitnet__arena_release(&v->arena);
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
            if (bitnet__value_next_str(&p, &left, &s, &sl)) {
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
            m->ha = bitnet__hash_bytes(buf + m->off, da);
            m->hb = bitnet__hash_bytes(buf + m->off + da, db);
            m->hab = bitnet__hash_bytes(buf + m->off, da + db);
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
            m->kh = bitnet__hash64(m->key);
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
    /* (huge pages: fewer page faults, the tables are touched at random
     * while loading) */
    if (bitnet__arena_init(&v->arena, total, (size_t)1 << 21, BITNET_ARENA_HUGEPAGES)) {
        rc = bitnet__error(BITNET_E_NOMEM, "vocab: out of memory (%d tokens, %llu merges)", n, (unsigned long long)nm);
        goto fail;
    }
    memset(v->arena.base, 0, zeroed);
    v->hash = bitnet__arena_take(&v->arena, sz_hash, 8);
    v->hash_mask = hcap - 1;
    v->merges = bitnet__arena_take(&v->arena, sz_merge, 8);
    if (!mcap) v->merges = NULL;
    v->merge_mask = mcap ? mcap - 1 : 0;
    v->tok = bitnet__arena_take(&v->arena, sz_tok, 8);
    v->blob = bitnet__arena_take(&v->arena, sz_blob, 8);

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
        if (bitnet__value_next_str(&p, &left, &s, &sl)) {
            rc = bitnet__error(BITNET_E_FORMAT, "vocab: %s[%d] runs past the array", f_tok->name, i);
            goto fail;
        }
        vtoken *t = &v->tok[i];
        t->raw_off = (uint32_t)bo;
        t->raw_len = (uint32_t)sl;
        memcpy(v->blob + bo, s, sl);
        bo += sl;
        double sc = scores ? bitnet__value_num_at(scores + (size_t)i * bitnet__vtype_size(scores_t), scores_t) : 0.0;
        /* clamp before narrowing: an out-of-range conversion is undefined */
        t->score = sc != sc ? 0.0f : sc > FLT_MAX ? FLT_MAX : sc < -FLT_MAX ? -FLT_MAX : (float)sc;
        double ty = types ? bitnet__value_num_at(types + (size_t)i * bitnet__vtype_size(types_t), types_t) : TT_NORMAL;
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
            hs[k] = bitnet__hash_bytes(v->blob + t->key_off, t->key_len);
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
