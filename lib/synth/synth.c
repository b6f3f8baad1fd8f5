/*
 * Synthetic model writer (bitnet_synth_write): random ternary linear weights
 * with one scale per tensor, random norms and embedding, and a tokenizer
 * copied from another GGUF or generated, in the layout the official engines
 * read (format.md §2-5). Tensors are generated and streamed to the file in
 * chunks of rows, so a 2B4T-sized file never sits in memory.
 *
 * Each tensor has its own random stream seeded from (seed, tensor index),
 * so the same seed gives the same ternary values and scales whatever the
 * storage type: an F16 file and an I2_S file of one seed hold one model.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "base/rng.h"
#include "format/gguf.h"
#include "kernels.h"
#include "synth/encode.h"

/* ---- random numbers (base/rng.h; one stream per tensor) ---------------- */

typedef struct rng { uint64_t s[4]; } rng;

static void rng_seed(rng *r, uint64_t seed, uint64_t stream)
{
    bitnet__rng_seed(r->s, seed ^ (stream * 0xd1342543de82ef95ull));
}

static uint64_t rng_next(rng *r)
{
    return bitnet__rng_next(r->s);
}

static float rng_unif(rng *r)              /* [0, 1) */
{
    return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

static uint32_t rng_below(rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* n values of N(0, sd^2) (Box-Muller, both outputs used) */
static void rng_normals(rng *r, float *out, size_t n, float sd)
{
    for (size_t i = 0; i < n; i += 2) {
        double u1 = ((double)(rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
        double u2 = (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
        double rad = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
        out[i] = sd * (float)(rad * cos(a));
        if (i + 1 < n) out[i + 1] = sd * (float)(rad * sin(a));
    }
}

/* n values uniform in {-1, 0, 1}: four from each 64-bit draw */
static void rng_trits(rng *r, int8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i += 4) {
        uint64_t x = rng_next(r);
        for (size_t k = 0; k < 4 && i + k < n; k++)
            out[i + k] = (int8_t)((int)((((x >> (16 * k)) & 0xffff) * 3) >> 16) - 1);
    }
}

/* ---- params ----------------------------------------------------------- */

void bitnet_synth_params_init_(bitnet_synth_params *p, size_t size)
{
    if (!p || size < sizeof(uint32_t)) return;
    bitnet_synth_params d;
    memset(&d, 0, sizeof(d));
    d.struct_size = (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size); /* the caller's size */
    d.arch = "bitnet-b1.58";
    d.n_embd = 256;
    d.n_layer = 2;
    d.n_ff = 768;
    d.n_head = 4;
    d.n_head_kv = 2;
    d.n_vocab = 512;
    d.n_ctx_train = 4096;
    d.weight_type = BITNET_TYPE_I2_S;
    d.embd_type = BITNET_TYPE_F16;
    d.seed = 1;
    d.vocab_from = NULL;
    d.rope_freq_base = 500000.0f;
    memset(p, 0, size);
    memcpy(p, &d, size < sizeof(d) ? size : sizeof(d));
}

/* ---- row encoders ------------------------------------------------------ */

static void put_f16(uint8_t *p, float f)
{
    uint16_t h = bitnet__fp32_to_fp16(f);
    memcpy(p, &h, 2);
}

/* Encode n floats as `type` (F32, F16, BF16, Q8_0, Q4_0, Q6_K). */
void bitnet__encode_floats(uint32_t type, const float *x, size_t n, uint8_t *o)
{
    switch (type) {
    case GGML_T_F32:
        memcpy(o, x, n * 4);
        break;
    case GGML_T_F16:
        for (size_t i = 0; i < n; i++) put_f16(o + 2 * i, x[i]);
        break;
    case GGML_T_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t b;
            memcpy(&b, &x[i], 4);
            b += 0x7fffu + ((b >> 16) & 1);          /* round to nearest even */
            uint16_t h = (uint16_t)(b >> 16);
            memcpy(o + 2 * i, &h, 2);
        }
        break;
    case GGML_T_Q8_0:
        for (size_t b = 0; b < n / 32; b++) {
            const float *v = x + 32 * b;
            uint8_t *blk = o + 34 * b;
            float amax = 0.0f;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(v[j]));
            float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            put_f16(blk, d);
            for (int j = 0; j < 32; j++)
                blk[2 + j] = (uint8_t)(int8_t)roundf(v[j] * id);
        }
        break;
    case GGML_T_Q4_0:
        for (size_t b = 0; b < n / 32; b++) {
            const float *v = x + 32 * b;
            uint8_t *blk = o + 18 * b;
            float amax = 0.0f, max = 0.0f;
            for (int j = 0; j < 32; j++)
                if (fabsf(v[j]) > amax) { amax = fabsf(v[j]); max = v[j]; }
            float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            put_f16(blk, d);
            for (int j = 0; j < 16; j++) {
                int q0 = (int)(v[j] * id + 8.5f), q1 = (int)(v[j + 16] * id + 8.5f);
                q0 = q0 < 0 ? 0 : q0 > 15 ? 15 : q0;
                q1 = q1 < 0 ? 0 : q1 > 15 ? 15 : q1;
                blk[2 + j] = (uint8_t)(q0 | q1 << 4);
            }
        }
        break;
    case GGML_T_Q6_K:
        /* ql[128] qh[64] scales[16] d: value = d * scale[g] * (q - 32), q in
         * [0, 63], one int8 scale per 16 values */
        for (size_t b = 0; b < n / 256; b++) {
            const float *v = x + 256 * b;
            uint8_t *blk = o + 210 * b;
            float gs[16], smax = 0.0f;
            for (int g = 0; g < 16; g++) {
                float amax = 0.0f;
                for (int j = 0; j < 16; j++) amax = fmaxf(amax, fabsf(v[16 * g + j]));
                gs[g] = amax / 31.0f;
                smax = fmaxf(smax, gs[g]);
            }
            float d = smax / 127.0f;
            uint16_t dh = bitnet__fp32_to_fp16(d);
            float dd = bitnet__fp16_to_fp32(dh);
            int8_t sc[16];
            uint8_t q[256];
            for (int g = 0; g < 16; g++) {
                int s = dd > 0.0f ? (int)nearbyintf(gs[g] / dd) : 0;
                sc[g] = (int8_t)(s > 127 ? 127 : s);
                float step = dd * (float)sc[g];
                for (int j = 0; j < 16; j++) {
                    int qi = step > 0.0f ? (int)nearbyintf(v[16 * g + j] / step) : 0;
                    qi = qi < -32 ? -32 : qi > 31 ? 31 : qi;
                    q[16 * g + j] = (uint8_t)(qi + 32);
                }
            }
            memset(blk, 0, 210);
            for (int h = 0; h < 2; h++) {
                uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
                const uint8_t *qq = q + 128 * h;
                for (int l = 0; l < 32; l++) {
                    ql[l] = (uint8_t)((qq[l] & 0xF) | (qq[l + 64] & 0xF) << 4);
                    ql[l + 32] = (uint8_t)((qq[l + 32] & 0xF) | (qq[l + 96] & 0xF) << 4);
                    qh[l] = (uint8_t)((qq[l] >> 4) | (qq[l + 32] >> 4) << 2 |
                                      (qq[l + 64] >> 4) << 4 | (qq[l + 96] >> 4) << 6);
                }
            }
            memcpy(blk + 192, sc, 16);
            memcpy(blk + 208, &dh, 2);
        }
        break;
    default:
        break;
    }
}

/* Encode rows of ternary t (cols per row) as `type` with tensor scale s.
 * I2_S: rows are independent because cols % 128 == 0 (checked). */
void bitnet__encode_ternary(uint32_t type, const int8_t *t, int32_t rows,
                           int32_t cols, float s, uint8_t *o, float *tmp)
{
    size_t n = (size_t)rows * (size_t)cols;
    switch (type) {
    case GGML_T_I2_S:
        for (size_t b = 0; b < n / 128; b++) {
            const int8_t *v = t + 128 * b;
            for (int j = 0; j < 32; j++)
                o[32 * b + j] = (uint8_t)((v[j] + 1) << 6 | (v[32 + j] + 1) << 4 |
                                          (v[64 + j] + 1) << 2 | (v[96 + j] + 1));
        }
        break;
    case GGML_T_TQ2_0:
        for (size_t b = 0; b < n / 256; b++) {
            const int8_t *v = t + 256 * b;
            uint8_t *blk = o + 66 * b;
            for (int h = 0; h < 2; h++)
                for (int m = 0; m < 32; m++) {
                    uint8_t x = 0;
                    for (int l = 0; l < 4; l++)
                        x |= (uint8_t)((v[128 * h + 32 * l + m] + 1) << (2 * l));
                    blk[32 * h + m] = x;
                }
            put_f16(blk + 64, s);
        }
        break;
    case GGML_T_TQ1_0:
        for (size_t b = 0; b < n / 256; b++) {
            const int8_t *v = t + 256 * b;
            uint8_t *blk = o + 54 * b;
            /* base-3 value Q with the first trit most significant, stored as
             * ceil(Q * 256 / 243) */
            for (int m = 0; m < 32; m++) {
                int q = 0;
                for (int k = 0; k < 5; k++) q = q * 3 + (v[32 * k + m] + 1);
                blk[m] = (uint8_t)((q * 256 + 242) / 243);
            }
            for (int m = 0; m < 16; m++) {
                int q = 0;
                for (int k = 0; k < 5; k++) q = q * 3 + (v[160 + 16 * k + m] + 1);
                blk[32 + m] = (uint8_t)((q * 256 + 242) / 243);
            }
            for (int j = 0; j < 4; j++) {
                int q = 0;
                for (int k = 0; k < 4; k++) q = q * 3 + (v[240 + 4 * k + j] + 1);
                q *= 3;
                blk[48 + j] = (uint8_t)((q * 256 + 242) / 243);
            }
            put_f16(blk + 52, s);
        }
        break;
    default:                        /* F32 / F16: t * s */
        for (size_t i = 0; i < n; i++) tmp[i] = (float)t[i] * s;
        bitnet__encode_floats(type, tmp, n, o);
        break;
    }
}

/* ---- generated byte-level BPE vocabulary -------------------------------- */

typedef struct strset {
    char **s;
    uint32_t *slot;
    uint32_t n, cap, mask;
} strset;

static uint32_t shash(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s) { h ^= (uint8_t)*s++; h *= 16777619u; }
    return h;
}

static int set_has(const strset *S, const char *s)
{
    for (uint32_t h = shash(s) & S->mask;; h = (h + 1) & S->mask) {
        uint32_t e = S->slot[h];
        if (!e) return 0;
        if (!strcmp(S->s[e - 1], s)) return 1;
    }
}

static void set_add(strset *S, char *s)     /* takes s; capacity ensured */
{
    uint32_t h = shash(s) & S->mask;
    while (S->slot[h]) h = (h + 1) & S->mask;
    S->s[S->n++] = s;
    S->slot[h] = S->n;
}

static size_t utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    o[0] = (char)(0xC0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

typedef struct gen_vocab {
    char **tok;        /* n_vocab strings */
    char **merges;     /* n_merges strings "a b" */
    int32_t n_tok, n_merges;
} gen_vocab;

static void gen_vocab_free(gen_vocab *v)
{
    if (v->tok)
        for (int32_t i = 0; i < v->n_tok; i++) free(v->tok[i]);
    if (v->merges)
        for (int32_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->tok);
    free(v->merges);
}

static int gen_vocab_make(gen_vocab *v, int32_t n_vocab, uint64_t seed)
{
    static const char *specials[3] = { "<|begin_of_text|>", "<|end_of_text|>",
                                       "<|eot_id|>" };
    memset(v, 0, sizeof(*v));
    strset S = { 0 };
    S.cap = 16;
    while (S.cap < 2u * (uint32_t)n_vocab) S.cap *= 2;
    S.mask = S.cap - 1;
    S.slot = calloc(S.cap, sizeof(*S.slot));
    S.s = calloc((size_t)n_vocab, sizeof(*S.s));
    v->merges = calloc((size_t)n_vocab, sizeof(*v->merges));
    int rc = BITNET_OK;
    if (!S.slot || !S.s || !v->merges) goto nomem;
    /* GPT-2 byte-to-unicode: printable bytes map to themselves, the others
     * to U+0100 upwards in byte order; tokens follow that order */
    uint32_t cs[256];
    int nb = 0, extra = 0;
    for (uint32_t b = 0; b < 256; b++)
        if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))
            cs[nb++] = b;
    for (uint32_t b = 0; b < 256; b++)
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)))
            cs[nb++] = 256 + (uint32_t)extra++;
    for (int i = 0; i < 256; i++) {
        char buf[4] = { 0 };
        utf8_put(buf, cs[i]);
        char *s = bitnet__strdup(buf);
        if (!s) goto nomem;
        set_add(&S, s);
    }
    /* specials are reserved now so no merge can produce them */
    char *sp[3] = { 0 };
    for (int i = 0; i < 3; i++) {
        sp[i] = bitnet__strdup(specials[i]);
        if (!sp[i]) { free(sp[0]); free(sp[1]); goto nomem; }
    }
    /* merges: random pairs of existing tokens, preferring short ones, that
     * give a new string of at most 16 bytes */
    rng r;
    rng_seed(&r, seed, 0x766f636162ull);
    int32_t want = n_vocab - 3;
    uint32_t tries = 0;
    while ((int32_t)S.n < want) {
        uint32_t lim = S.n < 2048 ? S.n : 2048 + (S.n - 2048) / 4;
        const char *a = S.s[rng_below(&r, lim)], *b = S.s[rng_below(&r, lim)];
        size_t la = strlen(a), lb = strlen(b);
        if (++tries > 64u * (uint32_t)n_vocab + 100000u) {
            for (int i = 0; i < 3; i++) free(sp[i]);
            rc = bitnet__error(BITNET_E_INTERNAL, "synth: cannot generate the "
                               "vocabulary");
            goto fail;
        }
        if (la + lb > 16) continue;
        char *m = malloc(la + lb + 1), *mg = malloc(la + lb + 2);
        if (!m || !mg) {
            free(m); free(mg);
            for (int i = 0; i < 3; i++) free(sp[i]);
            goto nomem;
        }
        memcpy(m, a, la); memcpy(m + la, b, lb); m[la + lb] = '\0';
        if (set_has(&S, m) || !strcmp(m, specials[0]) || !strcmp(m, specials[1]) ||
            !strcmp(m, specials[2])) {
            free(m); free(mg);
            continue;
        }
        memcpy(mg, a, la); mg[la] = ' '; memcpy(mg + la + 1, b, lb); mg[la + lb + 1] = '\0';
        v->merges[v->n_merges++] = mg;
        set_add(&S, m);
    }
    for (int i = 0; i < 3; i++) S.s[S.n++] = sp[i];
    v->tok = S.s;
    v->n_tok = (int32_t)S.n;
    free(S.slot);
    return BITNET_OK;
nomem:
    rc = bitnet__error(BITNET_E_NOMEM, "synth: out of memory");
fail:
    if (S.s)
        for (uint32_t i = 0; i < S.n; i++) free(S.s[i]);
    free(S.s);
    free(S.slot);
    for (int32_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->merges);
    memset(v, 0, sizeof(*v));
    return rc;
}

static int w_str_array(bitnet_gguf_writer *w, const char *key, char **s, int32_t n)
{
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) total += 8 + strlen(s[i]);
    uint8_t *buf = malloc(total ? total : 1), *p = buf;
    if (!buf) return bitnet__error(BITNET_E_NOMEM, "synth: out of memory");
    for (int32_t i = 0; i < n; i++) {
        uint64_t l = strlen(s[i]);
        memcpy(p, &l, 8);
        memcpy(p + 8, s[i], (size_t)l);
        p += 8 + l;
    }
    int rc = bitnet__gguf_w_raw(w, key, GGUF_VT_ARR, GGUF_VT_STR, (uint64_t)n, buf, total);
    free(buf);
    return rc;
}

static int write_gen_vocab(bitnet_gguf_writer *w, const gen_vocab *v)
{
    int rc;
    int32_t *tt = malloc((size_t)v->n_tok * sizeof(int32_t));
    if (!tt) return bitnet__error(BITNET_E_NOMEM, "synth: out of memory");
    for (int32_t i = 0; i < v->n_tok; i++) tt[i] = i >= v->n_tok - 3 ? 3 : 1;
    if ((rc = bitnet__gguf_w_str(w, "tokenizer.ggml.model", "gpt2", 4)) ||
        (rc = bitnet__gguf_w_str(w, "tokenizer.ggml.pre", "llama-bpe", 9)) ||
        (rc = w_str_array(w, "tokenizer.ggml.tokens", v->tok, v->n_tok)) ||
        (rc = bitnet__gguf_w_raw(w, "tokenizer.ggml.token_type", GGUF_VT_ARR,
                                 GGUF_VT_I32, (uint64_t)v->n_tok, tt,
                                 (size_t)v->n_tok * 4)) ||
        (rc = w_str_array(w, "tokenizer.ggml.merges", v->merges, v->n_merges)) ||
        (rc = bitnet__gguf_w_u32(w, "tokenizer.ggml.bos_token_id",
                                 (uint32_t)(v->n_tok - 3))) ||
        (rc = bitnet__gguf_w_u32(w, "tokenizer.ggml.eos_token_id",
                                 (uint32_t)(v->n_tok - 2))) ||
        (rc = bitnet__gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1)) ||
        (rc = bitnet__gguf_w_bool(w, "tokenizer.ggml.add_eos_token", 0))) {
        free(tt);
        return rc;
    }
    free(tt);
    return BITNET_OK;
}

/* ---- the model ---------------------------------------------------------- */

enum tkind { T_EMBD, T_NORM, T_LINEAR };

typedef struct tspec {
    char name[64];
    enum tkind kind;
    uint32_t type;
    int32_t rows, cols;        /* rows = ne1 (1 for norms), cols = ne0 */
} tspec;

static int type_ok_linear(int32_t t)
{
    return t == BITNET_TYPE_I2_S || t == BITNET_TYPE_TQ2_0 ||
           t == BITNET_TYPE_TQ1_0 || t == BITNET_TYPE_F16 || t == BITNET_TYPE_F32;
}

static int type_ok_embd(int32_t t)
{
    return t == BITNET_TYPE_F16 || t == BITNET_TYPE_F32 || t == BITNET_TYPE_BF16 ||
           t == BITNET_TYPE_Q8_0 || t == BITNET_TYPE_Q4_0 || t == BITNET_TYPE_Q6_K;
}

static int32_t blck(int32_t t)
{
    switch (t) {
    case BITNET_TYPE_I2_S: return 128;
    case BITNET_TYPE_TQ1_0: case BITNET_TYPE_TQ2_0: case BITNET_TYPE_Q6_K: return 256;
    case BITNET_TYPE_Q8_0: case BITNET_TYPE_Q4_0: return 32;
    default: return 1;
    }
}

static int write_tensor(bitnet_gguf_writer *w, const tspec *ts, uint64_t seed,
                        uint64_t index)
{
    rng r;
    rng_seed(&r, seed, index + 1);
    const int32_t chunk = 64;
    const size_t cols = (size_t)ts->cols;
    size_t row_bytes = (size_t)bitnet__ggml_nbytes(ts->type, cols, 1);
    if (ts->type == GGML_T_I2_S) row_bytes = cols / 4;
    float *f = malloc((size_t)chunk * cols * sizeof(float));
    int8_t *t = malloc((size_t)chunk * cols);
    uint8_t *o = malloc((size_t)chunk * row_bytes + 32);
    int rc = BITNET_OK;
    if (!f || !t || !o) {
        rc = bitnet__error(BITNET_E_NOMEM, "synth: out of memory");
        goto done;
    }
    if (ts->kind == T_NORM) {
        for (size_t i = 0; i < cols; i++) f[i] = 0.5f + rng_unif(&r);
        rc = bitnet__gguf_w_write(w, f, cols * 4);
        goto done;
    }
    float s = 0.0f;
    if (ts->kind == T_LINEAR)      /* one scale per tensor, an fp16 value */
        s = bitnet__fp16_to_fp32(bitnet__fp32_to_fp16(0.01f + 0.02f * rng_unif(&r)));
    for (int32_t r0 = 0; r0 < ts->rows && rc == BITNET_OK; r0 += chunk) {
        int32_t nr = ts->rows - r0 < chunk ? ts->rows - r0 : chunk;
        size_t n = (size_t)nr * cols;
        if (ts->kind == T_EMBD) {
            rng_normals(&r, f, n, 0.02f);
            bitnet__encode_floats(ts->type, f, n, o);
        } else {
            rng_trits(&r, t, n);
            bitnet__encode_ternary(ts->type, t, nr, ts->cols, s, o, f);
        }
        rc = bitnet__gguf_w_write(w, o, (size_t)nr * row_bytes);
    }
    if (rc == BITNET_OK && ts->type == GGML_T_I2_S) {
        uint8_t tail[32] = { 0 };
        memcpy(tail, &s, 4);
        rc = bitnet__gguf_w_write(w, tail, 32);
    }
done:
    free(f);
    free(t);
    free(o);
    return rc;
}

static uint32_t file_type_of(int32_t wt)
{
    switch (wt) {
    case BITNET_TYPE_F32: return 0;
    case BITNET_TYPE_F16: return 1;
    case BITNET_TYPE_TQ1_0: return 36;
    case BITNET_TYPE_TQ2_0: return 37;
    default: return 40;                      /* LLAMA_FTYPE_MOSTLY_I2_S */
    }
}

int bitnet_synth_write(const char *path, const bitnet_synth_params *params)
{
    bitnet__clear_error();
    if (!path)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_synth_write: path "
                             "must not be NULL");
    bitnet_synth_params p;
    bitnet_synth_params_init(&p);
    if (params) {
        int rc = bitnet__params_merge(&p, sizeof(p), params, "bitnet_synth_params");
        if (rc) return rc;
    }
    const char *arch = p.arch ? p.arch : "bitnet-b1.58";
    int llama = !strcmp(arch, "llama");
    if (strcmp(arch, "bitnet-b1.58") && strcmp(arch, "bitnet-25") &&
        strcmp(arch, "bitnet") && !llama)
        return bitnet__error(BITNET_E_INVALID_ARG, "synth: unknown architecture "
                             "'%s' (bitnet-b1.58, bitnet-25, bitnet, llama)", arch);
    if (p.reserved0 != 0)
        return bitnet__error(BITNET_E_INVALID_ARG, "synth: reserved0 must be 0");
    if (p.n_embd < 1 || p.n_embd > 65536 || p.n_layer < 1 || p.n_layer > 1024 ||
        p.n_ff < 1 || p.n_ff > (1 << 18) || p.n_head < 1 || p.n_head_kv < 1 ||
        p.n_ctx_train < 1)
        return bitnet__error(BITNET_E_INVALID_ARG, "synth: a size is out of "
                             "range (n_embd %d, n_layer %d, n_ff %d, n_head %d, "
                             "n_head_kv %d, n_ctx_train %d)", p.n_embd, p.n_layer,
                             p.n_ff, p.n_head, p.n_head_kv, p.n_ctx_train);
    if (p.n_embd % p.n_head || (p.n_embd / p.n_head) % 2)
        return bitnet__error(BITNET_E_INVALID_ARG, "synth: n_embd %d must be "
                             "n_head %d times an even head size", p.n_embd, p.n_head);
    if (p.n_head % p.n_head_kv)
        return bitnet__error(BITNET_E_INVALID_ARG, "synth: n_head %d is not a "
                             "multiple of n_head_kv %d", p.n_head, p.n_head_kv);
    if (!type_ok_linear(p.weight_type))
        return bitnet__error(BITNET_E_INVALID_ARG, "synth: weight type %d not "
                             "allowed (I2_S, TQ2_0, TQ1_0, F16, F32)", p.weight_type);
    if (!type_ok_embd(p.embd_type))
        return bitnet__error(BITNET_E_INVALID_ARG, "synth: embedding type %d not "
                             "allowed (F16, F32, BF16, Q8_0, Q4_0, Q6_K)", p.embd_type);
    int32_t bw = blck(p.weight_type), be = blck(p.embd_type);
    if (p.n_embd % bw || p.n_ff % bw)
        return bitnet__error(BITNET_E_INVALID_ARG, "synth: weight type %s needs "
                             "n_embd (%d) and n_ff (%d) to be multiples of %d",
                             bitnet__ggml_type_name((uint32_t)p.weight_type),
                             p.n_embd, p.n_ff, bw);
    if (p.n_embd % be)
        return bitnet__error(BITNET_E_INVALID_ARG, "synth: embedding type %s "
                             "needs n_embd (%d) to be a multiple of %d",
                             bitnet__ggml_type_name((uint32_t)p.embd_type),
                             p.n_embd, be);
    if (!(p.rope_freq_base > 0.0f) || !isfinite(p.rope_freq_base))
        return bitnet__error(BITNET_E_INVALID_ARG, "synth: rope_freq_base must "
                             "be positive");
    if (!p.vocab_from && (p.n_vocab < 259 || p.n_vocab > (1 << 21)))
        return bitnet__error(BITNET_E_INVALID_ARG, "synth: n_vocab %d out of "
                             "range [259, 2097152]", p.n_vocab);

    int rc;
    bitnet_gguf_writer *w = NULL;
    bitnet_file_view vf;
    memset(&vf, 0, sizeof(vf));
    bitnet_gguf *vg = NULL;
    gen_vocab gv;
    memset(&gv, 0, sizeof(gv));
    tspec *ts = NULL;
    int32_t n_vocab = p.n_vocab;
    const bitnet_gguf_kv *vtok = NULL;

    if (p.vocab_from) {
        rc = bitnet__file_open(&vf, p.vocab_from, 0);
        if (rc) {
            if (rc == BITNET_E_IO)
                rc = bitnet__error(BITNET_E_FORMAT, "synth: cannot read the "
                                   "vocabulary file '%s'", p.vocab_from);
            return rc;
        }
        rc = bitnet__gguf_parse(&vg, vf.data, vf.size);
        if (rc) goto done;
        vtok = bitnet__gguf_find(vg, "tokenizer.ggml.tokens");
        if (!vtok || vtok->type != GGUF_VT_ARR || vtok->arr_type != GGUF_VT_STR ||
            vtok->arr_n == 0 || vtok->arr_n > (1u << 21)) {
            rc = bitnet__error(BITNET_E_FORMAT, "synth: '%s' has no usable "
                               "'tokenizer.ggml.tokens'", p.vocab_from);
            goto done;
        }
        n_vocab = (int32_t)vtok->arr_n;
    } else {
        rc = gen_vocab_make(&gv, n_vocab, p.seed);
        if (rc) goto done;
    }

    rc = bitnet__gguf_writer_create(&w, 32);
    if (rc) goto done;
    char key[128], name[96];
#define K(s) (snprintf(key, sizeof(key), "%s." s, arch), key)
    snprintf(name, sizeof(name), "synthetic-%s-%dx%d", arch, p.n_embd, p.n_layer);
    const uint32_t head_dim = (uint32_t)(p.n_embd / p.n_head);
    if ((rc = bitnet__gguf_w_str(w, "general.architecture", arch, strlen(arch))) ||
        (rc = bitnet__gguf_w_str(w, "general.name", name, strlen(name))) ||
        (rc = bitnet__gguf_w_u32(w, K("vocab_size"), (uint32_t)n_vocab)) ||
        (rc = bitnet__gguf_w_u32(w, K("context_length"), (uint32_t)p.n_ctx_train)) ||
        (rc = bitnet__gguf_w_u32(w, K("embedding_length"), (uint32_t)p.n_embd)) ||
        (rc = bitnet__gguf_w_u32(w, K("block_count"), (uint32_t)p.n_layer)) ||
        (rc = bitnet__gguf_w_u32(w, K("feed_forward_length"), (uint32_t)p.n_ff)) ||
        (rc = bitnet__gguf_w_u32(w, K("rope.dimension_count"), head_dim)) ||
        (rc = bitnet__gguf_w_u32(w, K("attention.head_count"), (uint32_t)p.n_head)) ||
        (rc = bitnet__gguf_w_u32(w, K("attention.head_count_kv"), (uint32_t)p.n_head_kv)) ||
        (rc = bitnet__gguf_w_f32(w, K("attention.layer_norm_rms_epsilon"), 1e-5f)) ||
        (rc = bitnet__gguf_w_f32(w, K("rope.freq_base"), p.rope_freq_base)) ||
        (rc = bitnet__gguf_w_u32(w, "general.file_type", file_type_of(p.weight_type))))
        goto done;
#undef K
    if (vg) {
        for (uint64_t i = 0; i < vg->n_kv; i++) {
            const bitnet_gguf_kv *kv = &vg->kv[i];
            if (kv->key.len > 10 && !memcmp(kv->key.ptr, "tokenizer.", 10) &&
                (rc = bitnet__gguf_w_copy_kv(w, kv)))
                goto done;
        }
    } else if ((rc = write_gen_vocab(w, &gv))) {
        goto done;
    }
    if (p.weight_type != BITNET_TYPE_F16 && p.weight_type != BITNET_TYPE_F32 &&
        (rc = bitnet__gguf_w_u32(w, "general.quantization_version", 2)))
        goto done;

    /* tensors, in bitnet.cpp's order */
    size_t nt = 3 + 11 * (size_t)p.n_layer, k = 0;
    ts = calloc(nt, sizeof(*ts));
    if (!ts) { rc = bitnet__error(BITNET_E_NOMEM, "synth: out of memory"); goto done; }
    const int32_t E = p.n_embd, F = p.n_ff, KV = p.n_head_kv * (int32_t)head_dim;
#define T(kind_, type_, rows_, cols_, ...) do { \
        snprintf(ts[k].name, sizeof(ts[k].name), __VA_ARGS__); \
        ts[k].kind = kind_; ts[k].type = (uint32_t)(type_); \
        ts[k].rows = rows_; ts[k].cols = cols_; k++; } while (0)
    T(T_EMBD, p.embd_type, n_vocab, E, "token_embd.weight");
    T(T_NORM, GGML_T_F32, 1, E, "output_norm.weight");
    if (llama) T(T_EMBD, p.embd_type, n_vocab, E, "output.weight");
    for (int32_t i = 0; i < p.n_layer; i++) {
        T(T_NORM, GGML_T_F32, 1, E, "blk.%d.attn_norm.weight", (int)i);
        T(T_LINEAR, p.weight_type, E, E, "blk.%d.attn_q.weight", (int)i);
        T(T_LINEAR, p.weight_type, KV, E, "blk.%d.attn_k.weight", (int)i);
        T(T_LINEAR, p.weight_type, KV, E, "blk.%d.attn_v.weight", (int)i);
        T(T_LINEAR, p.weight_type, E, E, "blk.%d.attn_output.weight", (int)i);
        if (!llama) T(T_NORM, GGML_T_F32, 1, E, "blk.%d.attn_sub_norm.weight", (int)i);
        T(T_NORM, GGML_T_F32, 1, E, "blk.%d.ffn_norm.weight", (int)i);
        T(T_LINEAR, p.weight_type, F, E, "blk.%d.ffn_gate.weight", (int)i);
        T(T_LINEAR, p.weight_type, F, E, "blk.%d.ffn_up.weight", (int)i);
        T(T_LINEAR, p.weight_type, E, F, "blk.%d.ffn_down.weight", (int)i);
        if (!llama) T(T_NORM, GGML_T_F32, 1, F, "blk.%d.ffn_sub_norm.weight", (int)i);
    }
#undef T
    nt = k;
    for (size_t i = 0; i < nt; i++) {
        uint64_t ne[2] = { (uint64_t)ts[i].cols, (uint64_t)ts[i].rows };
        rc = bitnet__gguf_w_tensor(w, ts[i].name, ts[i].kind == T_NORM ? 1 : 2,
                                   ne, ts[i].type, NULL, 0);
        if (rc) goto done;
    }
    rc = bitnet__gguf_w_begin(w, path);
    if (rc) goto done;
    for (size_t i = 0; i < nt; i++) {
        /* the stream index is the tensor's role, not its position, so
         * llama's extra output.weight does not shift the other tensors */
        rc = write_tensor(w, &ts[i], p.seed, (uint64_t)shash(ts[i].name));
        if (rc) goto done;
    }
    rc = bitnet__gguf_w_end(w);
done:
    bitnet__gguf_writer_free(w);     /* drops the temporary file of a failed write */
    free(ts);
    gen_vocab_free(&gv);
    bitnet__gguf_free(vg);
    if (p.vocab_from) bitnet__file_close(&vf);
    return rc;
}
