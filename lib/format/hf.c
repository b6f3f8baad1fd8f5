/*
 * A Hugging Face checkpoint directory read as a GGUF built in memory (see
 * hf.h): config.json -> GGUF hyperparameter keys, tokenizer files -> the
 * tokenizer.ggml.* keys (hf_vocab.c), safetensors tensors -> canonical GGUF
 * tensor names. Float tensors are served straight from the mappings (the
 * model loader ternarises linear masters one tensor at a time and then
 * drops their pages); packed ternary weights are decoded to I2_S, and Llama
 * q/k rows reordered, into a buffer that lives only while the tensor is
 * being loaded.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "format/hf.h"
#include "kernels.h"
#include "format/json.h"
#include "format/safetensors.h"

int bitnet__hf_is_checkpoint(const char *path)
{
    struct stat st;
    if (!path) return 0;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 1;
    size_t n = strlen(path);
    static const char *const suf[] = { ".safetensors", ".safetensors.index.json" };
    for (int k = 0; k < 2; k++) {
        size_t m = strlen(suf[k]);
        if (n >= m && !strcmp(path + n - m, suf[k])) return 1;
    }
    return 0;
}

int bitnet__hf_read_text(const char *path, char **out, size_t *len, size_t max)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return bitnet__error(BITNET_E_IO, "cannot open '%s'", path);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (n == cap) {
            if (cap > max) {
                fclose(f);
                free(buf);
                return bitnet__error(BITNET_E_FORMAT, "'%s' is larger than %zu "
                                     "bytes", path, max);
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf) return bitnet__error(BITNET_E_NOMEM, "'%s': out of memory", path);
    if (err) {
        free(buf);
        return bitnet__error(BITNET_E_IO, "cannot read '%s'", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return BITNET_OK;
}

#if BITNET_HAVE_JSON

/* K_ALIGN: a float matrix used in place by the model (embedding, head)
 * whose data in the file is not 32-byte aligned: acquire makes an aligned
 * copy that lives as long as the source, dropping the mapped pages chunk by
 * chunk, so the matrix is never resident twice. */
enum { K_DIRECT = 0, K_PACKED, K_PERMUTE, K_ALIGN };

typedef struct hf_tensor {
    const bitnet_st_tensor *src;
    const bitnet_st_tensor *scale;  /* K_PACKED: weight_scale */
    int kind;
    int perm_heads;                 /* > 0: Llama q/k row order, this many heads */
    uint8_t *buf;                   /* while acquired */
    size_t name_off;                /* canonical name in hf_source.names */
} hf_tensor;

typedef struct hf_source {
    bitnet_st_set *st;
    bitnet_hf_config cfg;
    hf_tensor *map;
    size_t n_map;
    char *names;                    /* canonical names, NUL-separated */
    uint8_t *kvbuf;
    size_t kvsize;
} hf_source;

static void source_free(void *user)
{
    hf_source *s = user;
    if (!s) return;
    for (size_t i = 0; i < s->n_map; i++) {
        if (s->map[i].kind == K_ALIGN) bitnet__afree(s->map[i].buf);
        else free(s->map[i].buf);
    }
    free(s->map);
    free(s->names);
    free(s->kvbuf);
    bitnet__st_close(s->st);
    free(s);
}

static double scalar_f64(const bitnet_st_tensor *t)
{
    uint16_t h;
    float f;
    double d;
    switch (t->dtype) {
    case ST_F64: memcpy(&d, t->data, 8); return d;
    case ST_F32: memcpy(&f, t->data, 4); return f;
    case ST_F16: memcpy(&h, t->data, 2); return bitnet__fp16_to_fp32(h);
    default: memcpy(&h, t->data, 2); return bitnet__bf16_to_fp32(h);
    }
}

/* GGUF row g of a Llama q/k projection comes from Hugging Face row src_row:
 * the converters reorder each head's rows from "rotate half" pairs (i,
 * i + hd/2) to interleaved pairs (2i, 2i + 1) (docs/formats.md). */
static int64_t src_row(int64_t g, int64_t rows, int heads)
{
    if (heads <= 0) return g;
    int64_t hd = rows / heads, h = g / hd, r = g % hd;
    return h * hd + (r % 2) * (hd / 2) + r / 2;
}

/* Decode a packed [rows/4, cols] uint8 tensor: bit pair i (bits 2i, 2i+1)
 * of packed row r holds output row i*(rows/4) + r, value = code - 1
 * (docs/formats.md). Written as I2_S (128-element blocks over the
 * flattened tensor, element j of a block in byte j % 32 at bits
 * 7-2(j/32)..6-2(j/32), code = value + 1, then the f32 scale), or as F32
 * values +-scale when rows*cols is not a multiple of 128. */
static int decode_packed(const hf_source *s, const hf_tensor *h,
                         const bitnet_gguf_tensor *t, uint8_t *out)
{
    const int64_t cols = (int64_t)t->ne[0], rows = (int64_t)t->ne[1];
    const int64_t P = rows / 4;
    const uint8_t *p = h->src->data;
    double ws = scalar_f64(h->scale);
    /* AutoBitLinear multiplies the output by weight_scale, BitLinear
     * divides by it (in double: one rounding to float) */
    float scale = (float)(s->cfg.scale_mul ? ws : 1.0 / ws);
    if (!isfinite(ws) || ws == 0.0 || !isfinite(scale) || scale == 0.0f)
        return bitnet__error(BITNET_E_FORMAT, "tensor '%.96s': weight_scale "
                             "%g is not a usable scale", h->scale->name, ws);
    const int i2s = t->type == GGML_T_I2_S;
    if (i2s) memset(out, 0, (size_t)t->nbytes);
    float *f = (float *)(void *)out;
    for (int64_t g = 0; g < rows; g++) {
        int64_t o = src_row(g, rows, h->perm_heads);
        int64_t r = o % P, sh = 2 * (o / P);
        const uint8_t *row = p + (size_t)r * (size_t)cols;
        for (int64_t c = 0; c < cols; c++) {
            unsigned code = (row[c] >> sh) & 3u;
            if (code == 3)
                return bitnet__error(BITNET_E_FORMAT, "tensor '%.96s': invalid "
                                     "packed code 3 (row %" PRId64 ", column %"
                                     PRId64 ")", h->src->name, o, c);
            size_t j = (size_t)g * (size_t)cols + (size_t)c;
            if (i2s) {
                size_t b = j / 128, k = j % 128;
                out[32 * b + k % 32] |= (uint8_t)(code << (6 - 2 * (k / 32)));
            } else {
                f[j] = code == 1 ? 0.0f : code == 2 ? scale : -scale;
            }
        }
    }
    if (i2s) memcpy(out + (size_t)(rows * cols / 4), &scale, 4);
    return BITNET_OK;
}

static int acquire(void *user, const bitnet_gguf_tensor *t, bitnet_gguf_tensor *view)
{
    hf_source *s = user;
    hf_tensor *h = &s->map[t->offset];
    if (h->kind == K_DIRECT) {
        view->data = h->src->data;
        return BITNET_OK;
    }
    if (h->kind == K_ALIGN) {
        if (!h->buf) {
            const size_t n = (size_t)t->nbytes, chunk = (size_t)16 << 20;
            h->buf = bitnet__aalloc(n, 64);
            if (!h->buf)
                return bitnet__error(BITNET_E_NOMEM, "tensor '%.96s': out of "
                                     "memory", h->src->name);
            for (size_t o = 0; o < n; o += chunk) {
                size_t k = n - o < chunk ? n - o : chunk;
                memcpy(h->buf + o, h->src->data + o, k);
                bitnet__st_release_range(s->st, h->src, o, k);
            }
        }
        view->data = h->buf;
        return BITNET_OK;
    }
    free(h->buf);
    h->buf = malloc((size_t)t->nbytes);
    if (!h->buf)
        return bitnet__error(BITNET_E_NOMEM, "tensor '%.96s': out of memory",
                             h->src->name);
    int rc = BITNET_OK;
    if (h->kind == K_PACKED) {
        rc = decode_packed(s, h, t, h->buf);
    } else {
        /* float rows in GGUF order */
        size_t rb = (size_t)t->nbytes / (size_t)t->ne[1];
        for (int64_t g = 0; g < (int64_t)t->ne[1]; g++)
            memcpy(h->buf + (size_t)g * rb,
                   h->src->data + (size_t)src_row(g, (int64_t)t->ne[1], h->perm_heads) * rb, rb);
    }
    view->data = h->buf;
    bitnet__st_release(s->st, h->src);
    return rc;
}

static void release(void *user, const bitnet_gguf_tensor *t)
{
    hf_source *s = user;
    hf_tensor *h = &s->map[t->offset];
    if (h->kind == K_ALIGN) {
        bitnet__afree(h->buf);
    } else {
        free(h->buf);
        bitnet__st_release(s->st, h->src);
    }
    h->buf = NULL;
}

static const bitnet_gguf_hooks hooks = { acquire, release, source_free };

/* ---- tensor names ------------------------------------------------------ */

enum { R_NORM = 0, R_LINEAR, R_EMBD };
typedef struct name_map { const char *hf, *gguf; int role; } name_map;

static const name_map layer_names[] = {
    { "input_layernorm.weight", "attn_norm", R_NORM },
    { "self_attn.q_proj.weight", "attn_q", R_LINEAR },
    { "self_attn.k_proj.weight", "attn_k", R_LINEAR },
    { "self_attn.v_proj.weight", "attn_v", R_LINEAR },
    { "self_attn.o_proj.weight", "attn_output", R_LINEAR },
    { "self_attn.attn_sub_norm.weight", "attn_sub_norm", R_NORM },    /* 2B4T */
    { "self_attn.inner_attn_ln.weight", "attn_sub_norm", R_NORM },    /* 1bitLLM */
    { "post_attention_layernorm.weight", "ffn_norm", R_NORM },
    { "mlp.gate_proj.weight", "ffn_gate", R_LINEAR },
    { "mlp.up_proj.weight", "ffn_up", R_LINEAR },
    { "mlp.down_proj.weight", "ffn_down", R_LINEAR },
    { "mlp.ffn_sub_norm.weight", "ffn_sub_norm", R_NORM },            /* 2B4T */
    { "mlp.ffn_layernorm.weight", "ffn_sub_norm", R_NORM },           /* 1bitLLM */
};

static uint32_t ggml_of(int dtype)
{
    return dtype == ST_F32 ? GGML_T_F32 : dtype == ST_F16 ? GGML_T_F16 :
           dtype == ST_BF16 ? GGML_T_BF16 : UINT32_MAX;
}

/* Expected [rows, cols] of a canonical tensor (short name) from the config. */
static void expect_shape(const bitnet_hf_config *c, const char *g, int64_t *rows,
                         int64_t *cols)
{
    const int64_t E = c->n_embd, F = c->n_ff, KV = c->n_head_kv * (E / c->n_head);
    *rows = 1;
    *cols = E;
    if (!strcmp(g, "attn_q") || !strcmp(g, "attn_output")) *rows = E;
    else if (!strcmp(g, "attn_k") || !strcmp(g, "attn_v")) *rows = KV;
    else if (!strcmp(g, "ffn_gate") || !strcmp(g, "ffn_up")) *rows = F;
    else if (!strcmp(g, "ffn_down")) { *rows = E; *cols = F; }
    else if (!strcmp(g, "ffn_sub_norm")) *cols = F;
    else if (!strcmp(g, "token_embd") || !strcmp(g, "output")) *rows = c->n_vocab;
}

typedef struct builder {
    hf_source *s;
    bitnet_gguf_tensor *gt;
    size_t n, cap;
    size_t names_len, names_cap;
} builder;

static int add_tensor(builder *B, const bitnet_st_tensor *src, const char *gname,
                      const char *shortname, int role, int perm_heads)
{
    hf_source *s = B->s;
    int64_t rows, cols;
    expect_shape(&s->cfg, shortname, &rows, &cols);
    hf_tensor h;
    memset(&h, 0, sizeof(h));
    h.src = src;
    bitnet_gguf_tensor t;
    memset(&t, 0, sizeof(t));
    t.ne[0] = (uint64_t)cols;
    t.ne[1] = (uint64_t)rows;
    t.ne[2] = t.ne[3] = 1;
    t.n_dims = role == R_NORM ? 1 : 2;
    if (role == R_LINEAR && src->dtype == ST_U8) {
        /* packed ternary weights and their weight_scale */
        if (src->n_dims != 2 || rows % 4 || src->shape[0] * 4 != (uint64_t)rows ||
            src->shape[1] != (uint64_t)cols)
            return bitnet__error(BITNET_E_FORMAT, "tensor '%.96s': packed shape "
                                 "is not [%" PRId64 ", %" PRId64 "]", src->name,
                                 rows / 4, cols);
        char sn[192];
        size_t l = strlen(src->name);
        snprintf(sn, sizeof(sn), "%.*s.weight_scale", (int)(l > 7 ? l - 7 : l),
                 src->name);
        h.scale = bitnet__st_find(s->st, sn);
        if (!h.scale)
            return bitnet__error(BITNET_E_FORMAT, "tensor '%.96s': packed "
                                 "weights without '%.100s'", src->name, sn);
        uint64_t cnt = 1;
        for (int d = 0; d < h.scale->n_dims; d++) cnt *= h.scale->shape[d];
        if (cnt != 1 || (ggml_of(h.scale->dtype) == UINT32_MAX &&
                         h.scale->dtype != ST_F64))
            return bitnet__error(BITNET_E_FORMAT, "tensor '%.100s': must be one "
                                 "F64/F32/F16/BF16 value", sn);
        h.kind = K_PACKED;
        h.perm_heads = perm_heads;
        t.type = ((uint64_t)rows * (uint64_t)cols) % 128 == 0 ? GGML_T_I2_S
                                                              : GGML_T_F32;
    } else {
        uint32_t ty = ggml_of(src->dtype);
        if (ty == UINT32_MAX)
            return bitnet__error(BITNET_E_UNSUPPORTED, "tensor '%.96s': dtype "
                                 "%s is not supported here (F32, F16, BF16%s)",
                                 src->name, bitnet__st_dtype_name(src->dtype),
                                 role == R_LINEAR ? ", packed U8" : "");
        int ok = role == R_NORM ?
            (src->n_dims == 1 && src->shape[0] == (uint64_t)cols) :
            (src->n_dims == 2 && src->shape[0] == (uint64_t)rows &&
             src->shape[1] == (uint64_t)cols);
        if (!ok) {
            if (role == R_NORM)
                return bitnet__error(BITNET_E_FORMAT, "tensor '%.96s': shape "
                                     "does not match config.json (expected [%"
                                     PRId64 "])", src->name, cols);
            return bitnet__error(BITNET_E_FORMAT, "tensor '%.96s': shape does "
                                 "not match config.json (expected [%" PRId64
                                 ", %" PRId64 "])", src->name, rows, cols);
        }
        t.type = ty;
        h.kind = perm_heads > 0 ? K_PERMUTE :
                 role == R_EMBD && ((uintptr_t)src->data & 31) ? K_ALIGN : K_DIRECT;
        h.perm_heads = perm_heads;
    }
    t.nbytes = bitnet__ggml_nbytes(t.type, t.ne[0], t.ne[1]);
    if (!t.nbytes)
        return bitnet__error(BITNET_E_FORMAT, "tensor '%.96s': bad shape", src->name);
    t.data = h.kind == K_DIRECT ? src->data : NULL;
    t.offset = B->n;                /* index into the map (see acquire) */
    /* names are stored as offsets until the storage is final */
    size_t gl = strlen(gname);
    if (B->names_len + gl + 1 > B->names_cap) {
        size_t nc = (B->names_cap + gl + 1) * 2;
        char *nn = realloc(s->names, nc);
        if (!nn) return bitnet__error(BITNET_E_NOMEM, "out of memory");
        s->names = nn;
        B->names_cap = nc;
    }
    memcpy(s->names + B->names_len, gname, gl + 1);
    t.name.ptr = NULL;              /* set once the storage is final */
    t.name.len = gl;
    h.name_off = B->names_len;
    B->names_len += gl + 1;
    if (B->n == B->cap) {
        size_t nc = B->cap ? B->cap * 2 : 64;
        bitnet_gguf_tensor *ng = realloc(B->gt, nc * sizeof(*ng));
        if (!ng) return bitnet__error(BITNET_E_NOMEM, "out of memory");
        B->gt = ng;
        hf_tensor *nm = realloc(s->map, nc * sizeof(*nm));
        if (!nm) return bitnet__error(BITNET_E_NOMEM, "out of memory");
        s->map = nm;
        B->cap = nc;
    }
    B->gt[B->n] = t;
    s->map[B->n] = h;
    s->n_map = ++B->n;
    return BITNET_OK;
}

static int map_tensors(builder *B, const bitnet_logger *log)
{
    hf_source *s = B->s;
    const bitnet_hf_config *c = &s->cfg;
    size_t unused = 0;
    const char *first_unused = NULL;
    int have_head = 0;
    int rc = BITNET_OK;
    for (size_t i = 0; i < s->st->n_tensors && !rc; i++) {
        const bitnet_st_tensor *t = &s->st->tensors[i];
        const char *n = t->name;
        size_t nl = strlen(n);
        if (nl > 13 && !strcmp(n + nl - 13, ".weight_scale"))
            continue;                   /* taken with its packed weight */
        if (strstr(n, "rotary_emb.inv_freq"))
            continue;                   /* recomputed from rope_theta */
        if (!strcmp(n, "model.embed_tokens.weight")) {
            rc = add_tensor(B, t, "token_embd.weight", "token_embd", R_EMBD, 0);
            continue;
        }
        if (!strcmp(n, "model.norm.weight")) {
            rc = add_tensor(B, t, "output_norm.weight", "output_norm", R_NORM, 0);
            continue;
        }
        if (!strcmp(n, "lm_head.weight")) {
            if (c->tied == 1) { unused++; first_unused = n; continue; }
            have_head = 1;
            rc = add_tensor(B, t, "output.weight", "output", R_EMBD, 0);
            continue;
        }
        unsigned layer;
        int off = 0;
        if (sscanf(n, "model.layers.%u.%n", &layer, &off) == 1 && off > 0 &&
            layer < (unsigned)c->n_layer) {
            const char *rest = n + off;
            size_t k;
            for (k = 0; k < sizeof(layer_names) / sizeof(layer_names[0]); k++)
                if (!strcmp(rest, layer_names[k].hf)) break;
            if (k < sizeof(layer_names) / sizeof(layer_names[0])) {
                const name_map *m = &layer_names[k];
                int perm = 0;
                if (c->arch == HF_ARCH_LLAMA && !strcmp(m->gguf, "attn_q"))
                    perm = (int)c->n_head;
                if (c->arch == HF_ARCH_LLAMA && !strcmp(m->gguf, "attn_k"))
                    perm = (int)c->n_head_kv;
                if (c->arch == HF_ARCH_LLAMA &&
                    (!strcmp(m->gguf, "attn_sub_norm") || !strcmp(m->gguf, "ffn_sub_norm"))) {
                    unused++;
                    first_unused = n;
                    continue;
                }
                char g[96];
                snprintf(g, sizeof(g), "blk.%u.%s.weight", layer, m->gguf);
                rc = add_tensor(B, t, g, m->gguf, m->role, perm);
                continue;
            }
        }
        unused++;
        if (!first_unused) first_unused = n;
    }
    if (rc) return rc;
    if (c->tied == 0 && !have_head)
        return bitnet__error(BITNET_E_FORMAT, "tie_word_embeddings is false but "
                             "there is no tensor 'lm_head.weight'");
    if (unused)
        bitnet__log(log, BITNET_LOG_WARN, "%zu tensor(s) of the checkpoint are "
                    "not used (first: '%.96s')", unused, first_unused);
    /* the names are final: point at them */
    for (size_t i = 0; i < B->n; i++)
        B->gt[i].name.ptr = s->names + s->map[i].name_off;
    return BITNET_OK;
}

/* ---- keys -------------------------------------------------------------- */

static const char *arch_name(int arch)
{
    return arch == HF_ARCH_B158 ? "bitnet-b1.58" : arch == HF_ARCH_BITNET ? "bitnet"
                                                                          : "llama";
}

static int write_keys(bitnet_gguf_writer *w, const bitnet_hf_config *c,
                      const char *name)
{
    const char *a = arch_name(c->arch);
    char k[128];
    int rc = bitnet__gguf_w_str(w, "general.architecture", a, strlen(a));
    if (!rc) rc = bitnet__gguf_w_str(w, "general.name", name, strlen(name));
#define U32(suffix, v)                                                    \
    do {                                                                  \
        snprintf(k, sizeof(k), "%s." suffix, a);                          \
        if (!rc) rc = bitnet__gguf_w_u32(w, k, (uint32_t)(v));            \
    } while (0)
    U32("vocab_size", c->n_vocab);
    U32("context_length", c->n_ctx);
    U32("embedding_length", c->n_embd);
    U32("block_count", c->n_layer);
    U32("feed_forward_length", c->n_ff);
    U32("attention.head_count", c->n_head);
    U32("attention.head_count_kv", c->n_head_kv);
    U32("rope.dimension_count", c->n_embd / c->n_head);
#undef U32
    snprintf(k, sizeof(k), "%s.attention.layer_norm_rms_epsilon", a);
    if (!rc) rc = bitnet__gguf_w_f32(w, k, (float)c->norm_eps);
    snprintf(k, sizeof(k), "%s.rope.freq_base", a);
    if (!rc) rc = bitnet__gguf_w_f32(w, k, (float)c->rope_theta);
    return rc;
}

/* ---- opening ----------------------------------------------------------- */

static char *path_join(const char *dir, const char *file)
{
    size_t a = strlen(dir), b = strlen(file);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t o = a;
    if (a && dir[a - 1] != '/') p[o++] = '/';
    memcpy(p + o, file, b + 1);
    return p;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int bitnet__hf_source(bitnet_source **out, const char *path, int no_mmap,
                      const bitnet_logger *log)
{
    bitnet_logger quiet = { NULL, NULL, 0 };
    bitnet_gguf *g;
    *out = NULL;
    int rc = bitnet__hf_open(&g, path, no_mmap, log ? log : &quiet);
    if (rc) return rc;
    return bitnet__gguf_source_built(out, g);
}

int bitnet__hf_open(bitnet_gguf **out, const char *path, int no_mmap,
                    const bitnet_logger *log)
{
    *out = NULL;
    struct stat st;
    char *dir = NULL, *weights = NULL;
    int rc = BITNET_OK;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        dir = bitnet__strdup(path);
        weights = path_join(path, "model.safetensors.index.json");
        if (weights && !file_exists(weights)) {
            free(weights);
            weights = path_join(path, "model.safetensors");
            if (weights && !file_exists(weights)) {
                rc = bitnet__error(BITNET_E_IO, "'%s': no model.safetensors or "
                                   "model.safetensors.index.json", path);
            }
        }
    } else {
        size_t l = strlen(path);
        while (l > 0 && path[l - 1] != '/') l--;
        dir = l ? bitnet__strndup(path, l) : bitnet__strdup(".");
        weights = bitnet__strdup(path);
    }
    if (!rc && (!dir || !weights))
        rc = bitnet__error(BITNET_E_NOMEM, "out of memory");
    hf_source *s = NULL;
    builder B;
    memset(&B, 0, sizeof(B));
    char *cfg_text = NULL, *cfg_path = NULL;
    size_t cfg_len = 0;
    bitnet_gguf_writer *w = NULL;
    if (!rc) {
        s = calloc(1, sizeof(*s));
        cfg_path = path_join(dir, "config.json");
        if (!s || !cfg_path) rc = bitnet__error(BITNET_E_NOMEM, "out of memory");
    }
    if (!rc) rc = bitnet__hf_read_text(cfg_path, &cfg_text, &cfg_len, (size_t)16 << 20);
    if (!rc) rc = bitnet__hf_config_parse(&s->cfg, cfg_text, cfg_len, cfg_path);
    if (!rc) rc = bitnet__st_open(&s->st, weights, no_mmap);
    if (!rc) {
        B.s = s;
        rc = map_tensors(&B, log);
    }
    if (!rc && s->cfg.tied == -1)
        s->cfg.tied = bitnet__st_find(s->st, "lm_head.weight") == NULL;
    if (!rc) rc = bitnet__gguf_writer_create(&w, 0);
    if (!rc) {
        const char *base = dir + strlen(dir);
        while (base > dir && base[-1] == '/') base--;
        const char *b0 = base;
        while (b0 > dir && b0[-1] != '/') b0--;
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(base - b0), b0);
        rc = write_keys(w, &s->cfg, name[0] ? name : "model");
    }
    if (!rc) rc = bitnet__hf_vocab(w, dir, &s->cfg, log);
    if (!rc) rc = bitnet__gguf_w_buffer(w, &s->kvbuf, &s->kvsize);
    bitnet__gguf_writer_free(w);
    free(cfg_text);
    free(cfg_path);
    free(dir);
    free(weights);
    if (!rc) {
        rc = bitnet__gguf_build(out, s->kvbuf, s->kvsize, B.gt, B.n, &hooks, s);
        B.gt = NULL;
    }
    if (rc) {
        free(B.gt);
        source_free(s);
        return rc;
    }
    return BITNET_OK;
}

#else /* !BITNET_HAVE_JSON */

int bitnet__hf_source(bitnet_source **out, const char *path, int no_mmap,
                      const bitnet_logger *log)
{
    bitnet_gguf *g;
    *out = NULL;
    return bitnet__hf_open(&g, path, no_mmap, log);
}

int bitnet__hf_open(bitnet_gguf **out, const char *path, int no_mmap,
                    const bitnet_logger *log)
{
    (void)no_mmap; (void)log;
    *out = NULL;
    return bitnet__error(BITNET_E_UNSUPPORTED, "'%s': loading a Hugging Face "
                         "checkpoint needs JSON support, and this libbitnet was "
                         "built without it (Meson feature 'json', jansson)", path);
}

#endif
