/*
 * State blobs: a context's position, KV cache and last logits, saved and
 * restored (format below).
 */
#include <string.h>

#include "eval/context.h"

/* ---- state blobs ------------------------------------------------------
 *
 * Little-endian header (STATE_HEADER bytes):
 *   0 magic "BNST", 4 u32 version, 8 u64 model fingerprint,
 *   16 u32 n_layer, 20 u32 n_head_kv, 24 u32 head_dim, 28 u32 n_vocab,
 *   32 u32 position, 36 u32 number of logits rows (0 or 1)
 * then for each layer and KV head: K rows [pos][head_dim] fp16, then V rows;
 * then (version 2) the token ids of the positions, pos x u32; then the
 * logits row (float32); then a u64 checksum of everything before. Version
 * 1 blobs (no token ids) still load, with the token ids unknown (nothing of
 * their cache is reused by bitnet_context_keep_prefix). 
 * The blob does not depend on n_ctx: it loads into any context on the same
 * model whose n_ctx is at least the position. */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* 64-bit multiply-xor hash over 8-byte words (not cryptographic: it
 * catches truncation and corruption). */
static uint64_t blob_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    for (; i < n; i++) {
        h = (h ^ p[i]) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 31;
    }
    return h ^ (h >> 33);
}

static size_t state_bytes(const bitnet_context *c, uint32_t version, int32_t pos,
                          int32_t n_logits)
{
    return STATE_HEADER
         + (version >= 2 ? (size_t)pos * sizeof(uint32_t) : 0)
         + (size_t)c->n_layer * (size_t)c->nkv * 2 * (size_t)pos * (size_t)c->hd * sizeof(uint16_t)
         + (size_t)n_logits * (size_t)c->n_vocab * sizeof(float) + 8;
}

size_t bitnet_context_state_size(const bitnet_context *c)
{
    if (!c)
        return 0;
    return state_bytes(c, STATE_VERSION, c->pos, c->n_logits > 0 ? 1 : 0);
}

int bitnet_context_state_save(const bitnet_context *c, void *buf, size_t cap, size_t *n_out)
{
    bitnet__clear_error();
    if (!c)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_state_save: ctx is NULL");
    if (!n_out)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_state_save: n_out is NULL");
    int32_t nl = c->n_logits > 0 ? 1 : 0;
    size_t need = state_bytes(c, STATE_VERSION, c->pos, nl);
    *n_out = need;
    if (cap < need)
        return bitnet__error(BITNET_E_BUFFER_TOO_SMALL,
                             "bitnet_context_state_save: %zu bytes needed, %zu given", need, cap);
    if (!buf)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_state_save: buf is NULL");
    uint8_t *b = buf;
    put32(b + 0, STATE_MAGIC);
    put32(b + 4, STATE_VERSION);
    put64(b + 8, c->model->fingerprint);
    put32(b + 16, (uint32_t)c->n_layer);
    put32(b + 20, (uint32_t)c->nkv);
    put32(b + 24, (uint32_t)c->hd);
    put32(b + 28, (uint32_t)c->n_vocab);
    put32(b + 32, (uint32_t)c->pos);
    put32(b + 36, (uint32_t)nl);
    uint8_t *p = b + STATE_HEADER;
    /* per (layer, KV head): its K rows 0..pos-1, then its V rows (the
     * cache's chunks do not show in the blob) */
    const size_t rowbytes = (size_t)c->hd * sizeof(uint16_t);
    for (int32_t l = 0; l < c->n_layer; l++) {
        for (int32_t j = 0; j < c->nkv; j++) {
            for (int v = 0; v < 2; v++) {
                const uint16_t *cache = v ? c->vcache : c->kcache;
                for (size_t r = 0, n; r < (size_t)c->pos; r += n) {
                    n = bitnet__kv_run(c, r, (size_t)c->pos - r);
                    memcpy(p, cache + bitnet__kv_off(c, l, j, r), n * rowbytes);
                    p += n * rowbytes;
                }
            }
        }
    }
    for (int32_t i = 0; i < c->pos; i++, p += 4)
        put32(p, (uint32_t)c->toks[i]);
    if (nl) {
        const float *lg;
        bitnet_context_logits(c, -1, &lg);
        memcpy(p, lg, (size_t)c->n_vocab * sizeof(float));
        p += (size_t)c->n_vocab * sizeof(float);
    }
    put64(p, blob_hash(b, (size_t)(p - b)));
    return BITNET_OK;
}

int bitnet_context_state_load(bitnet_context *c, const void *buf, size_t size)
{
    bitnet__clear_error();
    if (!c)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_state_load: ctx is NULL");
    if (!buf)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_state_load: buf is NULL");
    const uint8_t *b = buf;
    if (size < STATE_HEADER + 8 || get32(b) != STATE_MAGIC)
        return bitnet__error(BITNET_E_FORMAT,
                             "bitnet_context_state_load: not a libbitnet state blob (%zu bytes)", size);
    uint32_t version = get32(b + 4);
    if (version != 1 && version != STATE_VERSION)
        return bitnet__error(BITNET_E_STATE,
                             "bitnet_context_state_load: blob version %u, this library reads 1 to %u",
                             (unsigned)version, (unsigned)STATE_VERSION);
    if (get64(b + 8) != c->model->fingerprint ||
        get32(b + 16) != (uint32_t)c->n_layer || get32(b + 20) != (uint32_t)c->nkv ||
        get32(b + 24) != (uint32_t)c->hd || get32(b + 28) != (uint32_t)c->n_vocab)
        return bitnet__error(BITNET_E_STATE,
                             "bitnet_context_state_load: the blob was saved from another model");
    uint32_t pos = get32(b + 32), nl = get32(b + 36);
    if (nl > 1)
        return bitnet__error(BITNET_E_FORMAT, "bitnet_context_state_load: corrupt header");
    if (pos > (uint32_t)c->n_ctx)
        return bitnet__error(BITNET_E_STATE,
                             "bitnet_context_state_load: the blob holds %u positions, "
                             "this context only %d", (unsigned)pos, (int)c->n_ctx);
    size_t need = state_bytes(c, version, (int32_t)pos, (int32_t)nl);
    if (size != need)
        return bitnet__error(BITNET_E_FORMAT,
                             "bitnet_context_state_load: %zu bytes, expected %zu (truncated?)",
                             size, need);
    if (get64(b + need - 8) != blob_hash(b, need - 8))
        return bitnet__error(BITNET_E_FORMAT, "bitnet_context_state_load: checksum mismatch");

    const uint8_t *p = b + STATE_HEADER;
    const size_t rowbytes = (size_t)c->hd * sizeof(uint16_t);
    for (int32_t l = 0; l < c->n_layer; l++) {
        for (int32_t j = 0; j < c->nkv; j++) {
            for (int v = 0; v < 2; v++) {
                uint16_t *cache = v ? c->vcache : c->kcache;
                for (size_t r = 0, n; r < (size_t)pos; r += n) {
                    n = bitnet__kv_run(c, r, (size_t)pos - r);
                    memcpy(cache + bitnet__kv_off(c, l, j, r), p, n * rowbytes);
                    p += n * rowbytes;
                }
            }
        }
    }
    for (uint32_t i = 0; i < pos; i++) {
        if (version >= 2) {
            uint32_t t = get32(p);
            p += 4;
            c->toks[i] = t < (uint32_t)c->n_vocab ? (int32_t)t : -1;
        } else {
            c->toks[i] = -1;
        }
    }
    c->pos = (int32_t)pos;
    bitnet__kv_promote(c, 0, pos);
    if (nl) {
        memcpy(c->logits[c->cur], p, (size_t)c->n_vocab * sizeof(float));
        c->n_logits = 1;
        c->n_call = 1;
    } else {
        c->n_logits = 0;
        c->n_call = 0;
    }
    c->logits_all = 0;
    return BITNET_OK;
}
