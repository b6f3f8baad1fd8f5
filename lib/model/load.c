/*
 * Model loading from a source (format/source.h): hyperparameters, the
 * vocabulary, linear weights decoded and packed (model/weights.c), norms
 * copied, the embedding/head referenced in place; the model's accessors.
 * Formats: docs/formats.md.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/hash.h"
#include "base/internal.h"
#include "format/hf.h"
#include "model/model.h"
#include "text/vocab.h"

/* ====================================================================== */
/* Loader                                                                 */
/* ====================================================================== */

typedef struct loader {
    bitnet_model *m;
    const bitnet_source *src;
    bitnet_model_params p;
    const char *arch;
    char hp_name[BITNET_HP_COUNT][96];   /* the source's names, for messages */
    bitnet_vocab_desc vd;
    uint64_t total, done;
    int8_t *scratch;
    size_t scratch_cap;
    int n_types[64];
    int dry_run;              /* find_tensor: check only, do not count */
} loader;

/* Integer hyperparameter hp: required, or def when absent; range [lo, hi].
 * A per-layer array is accepted when every element is the same. */
static int get_hp(loader *L, int hp, int64_t *v, int required, int64_t def,
                  int64_t lo, int64_t hi)
{
    char *key = L->hp_name[hp];
    bitnet_value val;
    int rc = bitnet__source_hparam(L->src, hp, &val, key, sizeof(L->hp_name[hp]));
    if (rc == BITNET_OK && val.type == BITNET_VT_ARR) {
        if (val.arr_n == 0)
            return bitnet__error(BITNET_E_FORMAT, "key '%s': empty array", key);
        rc = bitnet__value_arr_i64(&val, key, 0, v);
        for (uint64_t i = 1; rc == BITNET_OK && i < val.arr_n; i++) {
            int64_t x;
            rc = bitnet__value_arr_i64(&val, key, i, &x);
            if (rc == BITNET_OK && x != *v)
                return bitnet__error(BITNET_E_UNSUPPORTED, "key '%s': values "
                                     "that differ per layer are not supported",
                                     key);
        }
    } else if (rc == BITNET_OK) {
        rc = bitnet__value_int(&val, key, v);
    }
    if (rc == BITNET_E_NOT_FOUND) {
        if (required)
            return bitnet__error(BITNET_E_FORMAT, "missing key '%s'", key);
        *v = def;
        return BITNET_OK;
    }
    if (rc) return rc;
    if (*v < lo || *v > hi)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': value %" PRId64
                             " out of range [%" PRId64 ", %" PRId64 "]", key,
                             *v, lo, hi);
    return BITNET_OK;
}

static int get_hp_f(loader *L, int hp, float *v, int required, float def)
{
    char *key = L->hp_name[hp];
    bitnet_value val;
    int rc = bitnet__source_hparam(L->src, hp, &val, key, sizeof(L->hp_name[hp]));
    if (rc == BITNET_OK) rc = bitnet__value_f32(&val, key, v);
    if (rc == BITNET_E_NOT_FOUND) {
        if (required)
            return bitnet__error(BITNET_E_FORMAT, "missing key '%s'", key);
        *v = def;
        return BITNET_OK;
    }
    if (rc) return rc;
    if (!isfinite(*v) || *v < 0.0f)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': value out of range", key);
    return BITNET_OK;
}

static int load_hparams(loader *L)
{
    bitnet_model *m = L->m;
    int64_t v;
    int rc;
#define HP(field, hp, req, def, lo, hi)                               \
    do {                                                                  \
        rc = get_hp(L, hp, &v, req, def, lo, hi);                     \
        if (rc) return rc;                                                \
        m->field = (int32_t)v;                                            \
    } while (0)
    HP(n_ctx_train, BITNET_HP_CONTEXT_LENGTH, 1, 0, 1, INT32_MAX);
    HP(n_embd, BITNET_HP_EMBEDDING_LENGTH, 1, 0, 1, 1 << 20);
    HP(n_layer, BITNET_HP_BLOCK_COUNT, 1, 0, 1, 4096);
    HP(n_ff, BITNET_HP_FEED_FORWARD_LENGTH, 1, 0, 1, 1 << 22);
    HP(n_head, BITNET_HP_HEAD_COUNT, 1, 0, 1, 1 << 16);
    HP(n_head_kv, BITNET_HP_HEAD_COUNT_KV, 0, m->n_head, 1, m->n_head);
#undef HP
    if (m->n_embd % m->n_head != 0)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': %d does not divide "
                             "the embedding length %d",
                             L->hp_name[BITNET_HP_HEAD_COUNT], m->n_head, m->n_embd);
    if (m->n_head % m->n_head_kv != 0)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': %d does not divide "
                             "the head count %d",
                             L->hp_name[BITNET_HP_HEAD_COUNT_KV], m->n_head_kv,
                             m->n_head);
    m->head_dim = m->n_embd / m->n_head;
    rc = get_hp(L, BITNET_HP_ROPE_DIMENSION_COUNT, &v, 0, m->head_dim, 0, m->head_dim);
    if (rc) return rc;
    m->n_rot = (int32_t)v;
    if (m->n_rot % 2 != 0)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': must be even",
                             L->hp_name[BITNET_HP_ROPE_DIMENSION_COUNT]);
    if (m->arch == BITNET_ARCH_B158 && m->n_rot != m->head_dim)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': must equal the head "
                             "dimension %d",
                             L->hp_name[BITNET_HP_ROPE_DIMENSION_COUNT], m->head_dim);
    rc = get_hp_f(L, BITNET_HP_NORM_RMS_EPS, &m->norm_eps, 1, 0.0f);
    if (rc) return rc;
    rc = get_hp_f(L, BITNET_HP_ROPE_FREQ_BASE, &m->rope_base, 0, 10000.0f);
    if (rc) return rc;
    if (m->rope_base <= 0.0f)
        return bitnet__error(BITNET_E_FORMAT, "key '%s': must be positive",
                             L->hp_name[BITNET_HP_ROPE_FREQ_BASE]);
    return BITNET_OK;
}

/* Look tensor `name` up into *t and check its shape; returns t, or NULL
 * when it is absent (*rc set when required) or misshapen (*rc set). */
static const bitnet_tensor_desc *find_tensor(loader *L, const char *name,
                                             int required, int n_dims,
                                             int64_t ne0, int64_t ne1,
                                             bitnet_tensor_desc *t, int *rc)
{
    *rc = BITNET_OK;
    if (bitnet__source_tensor(L->src, name, t) != BITNET_OK) {
        if (required)
            *rc = bitnet__error(BITNET_E_FORMAT, "missing tensor '%s'", name);
        return NULL;
    }
    int ok = (uint64_t)ne0 == t->ne[0] && t->ne[2] == 1 && t->ne[3] == 1 &&
             (n_dims == 1 ? t->ne[1] == 1 : (uint64_t)ne1 == t->ne[1]);
    if (!ok) {
        *rc = bitnet__error(BITNET_E_FORMAT, "tensor '%s': shape [%" PRIu64
                            ", %" PRIu64 ", %" PRIu64 ", %" PRIu64 "], expected "
                            "[%" PRId64 ", %" PRId64 "]", name, t->ne[0],
                            t->ne[1], t->ne[2], t->ne[3], ne0,
                            n_dims == 1 ? (int64_t)1 : ne1);
        return NULL;
    }
    if (!L->dry_run) L->m->n_tensors_used++;
    return t;
}

static int progress(loader *L, uint64_t bytes)
{
    L->done += bytes;
    if (L->p.progress_fn) {
        float f = L->total ? (float)((double)L->done / (double)L->total) : 1.0f;
        if (f > 1.0f) f = 1.0f;
        if (L->p.progress_fn(L->p.progress_user, f))
            return bitnet__error(BITNET_E_ABORTED, "model loading cancelled by "
                                 "the progress callback");
    }
    return BITNET_OK;
}

static int load_norm(loader *L, float **dst, const char *name, int64_t n,
                     int required)
{
    int rc;
    bitnet_tensor_desc td;
    const bitnet_tensor_desc *t = find_tensor(L, name, required, 1, n, 1, &td, &rc);
    if (!t) return rc;
    if (t->type != GGML_T_F32 && t->type != GGML_T_F16 && t->type != GGML_T_BF16)
        return bitnet__error(BITNET_E_UNSUPPORTED, "tensor '%s': type %s is not "
                             "supported for a norm weight (F32, F16, BF16)",
                             name, bitnet__ggml_type_name(t->type));
    bitnet_tensor_desc tv;
    rc = bitnet__source_acquire(L->src, t, &tv);
    size_t bad = rc ? SIZE_MAX : bitnet__first_nonfinite(t->type, tv.data, (size_t)n);
    if (!rc && bad != SIZE_MAX)
        rc = bitnet__error(BITNET_E_FORMAT, "tensor '%s': non-finite value "
                           "at element %zu", name, bad);
    if (!rc) {
        *dst = bitnet__aalloc((size_t)n * sizeof(float), 64);
        if (!*dst)
            rc = bitnet__error(BITNET_E_NOMEM, "tensor '%s': out of memory", name);
        else
            bitnet__to_float(t->type, tv.data, (size_t)n, *dst);
    }
    bitnet__source_release(L->src, t);
    if (rc) return rc;
    return progress(L, t->nbytes);
}

static int load_linear(loader *L, bitnet_tmat *w, const char *name,
                       int64_t rows, int64_t cols)
{
    int rc;
    bitnet_tensor_desc td;
    const bitnet_tensor_desc *t = find_tensor(L, name, 1, 2, cols, rows, &td, &rc);
    if (!t) return rc;
    switch (t->type) {
    case GGML_T_I2_S: case GGML_T_TQ1_0: case GGML_T_TQ2_0:
    case GGML_T_F32: case GGML_T_F16: case GGML_T_BF16:
        break;
    default:
        return bitnet__error(BITNET_E_UNSUPPORTED, "tensor '%s': type %s is not "
                             "supported for linear weights (I2_S, TQ2_0, TQ1_0, "
                             "F32, F16, BF16)", name,
                             bitnet__ggml_type_name(t->type));
    }
    /* a checkpoint's weights may be produced on demand (and master
     * weights' pages dropped after): acquire/release around the use */
    bitnet_tensor_desc tv;
    rc = bitnet__source_acquire(L->src, t, &tv);
    if (!rc) rc = bitnet__tmat_load(L->m, w, &tv, &L->scratch, &L->scratch_cap);
    bitnet__source_release(L->src, t);
    if (rc) return rc;
    L->n_types[t->type & 63]++;
    /* optional per-tensor scale of the "bitnet" architecture:
     * "blk.N.attn_q.weight" -> "blk.N.attn_q.scale" */
    if (L->m->arch == BITNET_ARCH_BITNET) {
        char sname[160];
        size_t len = strlen(name);
        if (len > 7 && len < sizeof(sname) && strcmp(name + len - 7, ".weight") == 0) {
            memcpy(sname, name, len - 7);
            memcpy(sname + len - 7, ".scale", 7);
            bitnet_tensor_desc sd;
            const bitnet_tensor_desc *s = NULL;
            if (bitnet__source_tensor(L->src, sname, &sd) == BITNET_OK) s = &sd;
            if (s) {
                if (s->ne[0] * s->ne[1] * s->ne[2] * s->ne[3] != 1 ||
                    (s->type != GGML_T_F32 && s->type != GGML_T_F16 &&
                     s->type != GGML_T_BF16))
                    return bitnet__error(BITNET_E_FORMAT, "tensor '%s': must be "
                                         "one F32/F16/BF16 value", sname);
                float f;
                bitnet__to_float(s->type, s->data, 1, &f);
                if (!isfinite(f))
                    return bitnet__error(BITNET_E_FORMAT, "tensor '%s': not "
                                         "finite", sname);
                w->scale *= f;
                L->m->n_tensors_used++;
            }
        }
    }
    return progress(L, t->nbytes);
}

static int fmat_load(loader *L, bitnet_fmat *f, uint8_t **owned,
                     const bitnet_tensor_desc *t, const char *name)
{
    switch (t->type) {
    case GGML_T_F32: case GGML_T_F16: case GGML_T_BF16:
    case GGML_T_Q8_0: case GGML_T_Q4_0: case GGML_T_Q6_K:
        break;
    default:
        return bitnet__error(BITNET_E_UNSUPPORTED, "tensor '%s': type %s is not "
                             "supported for the embedding/output (F32, F16, "
                             "BF16, Q8_0, Q4_0, Q6_K)", name,
                             bitnet__ggml_type_name(t->type));
    }
    /* a checkpoint may produce the matrix on demand (an aligned copy); it
     * then stays valid as long as the source */
    bitnet_tensor_desc tv;
    int rc = bitnet__source_acquire(L->src, t, &tv);
    if (rc) {
        bitnet__source_release(L->src, t);
        return rc;
    }
    t = &tv;
    if (t->type == GGML_T_F32 || t->type == GGML_T_F16 || t->type == GGML_T_BF16) {
        /* one Inf or NaN here makes every logit NaN: refuse it now, with
         * its place, rather than produce garbage later */
        size_t n = (size_t)t->ne[0] * (size_t)t->ne[1];
        bitnet__pages_prefault(t->data, (size_t)t->nbytes);
        size_t bad = bitnet__first_nonfinite(t->type, t->data, n);
        if (bad != SIZE_MAX)
            return bitnet__error(BITNET_E_FORMAT, "tensor '%s': non-finite value "
                                 "at row %zu, column %zu", name,
                                 bad / (size_t)t->ne[0], bad % (size_t)t->ne[0]);
    }
    f->type = t->type;
    f->cols = (int32_t)t->ne[0];
    f->rows = (int32_t)t->ne[1];
    f->row_bytes = (size_t)bitnet__ggml_nbytes(t->type, t->ne[0], 1);
    f->data = t->data;
    if (((uintptr_t)t->data & 31) != 0) {
        /* a caller's buffer that is not aligned: keep an aligned copy */
        *owned = bitnet__aalloc((size_t)t->nbytes, 64);
        if (!*owned)
            return bitnet__error(BITNET_E_NOMEM, "tensor '%s': out of memory", name);
        memcpy(*owned, t->data, (size_t)t->nbytes);
        f->data = *owned;
        bitnet__source_release(L->src, t);   /* the mapping is not read again */
    }
    return BITNET_OK;
}

static uint64_t fingerprint(const bitnet_model *m, const bitnet_source *src)
{
    uint64_t h = BITNET_FNV64_INIT;
    h = bitnet__fnv64(h, m->arch_name, strlen(m->arch_name));
    int32_t hp[] = { m->n_vocab, m->n_ctx_train, m->n_embd, m->n_layer, m->n_ff,
                     m->n_head, m->n_head_kv, m->head_dim, m->n_rot,
                     m->rope_neox, m->ffn_act, m->arch };
    h = bitnet__fnv64(h, hp, sizeof(hp));
    h = bitnet__fnv64(h, &m->norm_eps, 4);
    h = bitnet__fnv64(h, &m->rope_base, 4);
    const uint64_t nt = bitnet__source_n_tensors(src);
    for (uint64_t i = 0; i < nt; i++) {
        bitnet_tensor_desc td;
        bitnet__source_tensor_at(src, i, &td);
        const bitnet_tensor_desc *t = &td;
        h = bitnet__fnv64(h, t->name.ptr, t->name.len);
        h = bitnet__fnv64(h, &t->type, 4);
        h = bitnet__fnv64(h, t->ne, sizeof(t->ne));
        if (!t->data) {
            /* produced on demand (a checkpoint's packed weights) */
        } else if (t->nbytes <= 4096) {
            h = bitnet__fnv64(h, t->data, (size_t)t->nbytes);
        } else {
            size_t n = (size_t)t->nbytes;
            h = bitnet__fnv64(h, t->data, 256);
            h = bitnet__fnv64(h, t->data + n / 2, 256);
            h = bitnet__fnv64(h, t->data + n - 256, 256);
            /* a checkpoint's weights were read once and dropped; reading
             * these samples brought pages back (up to a whole large folio
             * each): drop them again unless the model reads the tensor
             * in place (the embedding/head) */
            if (t->data != m->tok_embd.data && t->data != m->output.data)
                bitnet__source_release(src, t);
        }
    }
    return h;
}

/* An F16 head read in place from the file mapping streams from page-cache
 * pages: on Zen 5, 2B4T shape, 2 threads, 12.2-12.4 ms of head per token
 * against 9.5-9.6 from anonymous huge pages (BITNET_PROFILE). So it is
 * copied into a buffer of its own (huge pages), and the file's pages are
 * given back a chunk at a time as they are copied, so that the peak stays
 * near one copy. A file read into memory (BITNET_MODEL_NO_MMAP) or a
 * caller's buffer is left as it is, and so is everything when huge pages
 * are turned off (BITNET_HUGE_PAGES=0). Only the data's place changes: the
 * head computes the same bits. */
static void head_to_own_pages(bitnet_model *m, const bitnet_source *src, const char *name)
{
    bitnet_head *h = &m->head;
    const size_t n = (size_t)h->rows * h->row_bytes;
    bitnet_tensor_desc td;
    if (h->fmt != BITNET_HF_F16 || h->w != m->output.data || m->head_owned || n == 0 ||
        !bitnet__huge_pages() || !bitnet__source_mapped(src, h->w, n) ||
        bitnet__source_tensor(src, name, &td) != BITNET_OK || td.data != h->w)
        return;
    uint8_t *copy = bitnet__aalloc(n, 64);
    if (!copy)
        return;                        /* it is read in place, as before */
    const size_t chunk = (size_t)32 << 20;
    for (size_t off = 0; off < n; off += chunk) {
        const size_t len = n - off < chunk ? n - off : chunk;
        memcpy(copy + off, td.data + off, len);
        bitnet_tensor_desc part = td;
        part.data = td.data + off;
        part.nbytes = len;
        bitnet__source_drop(src, &part);
    }
    m->head_owned = copy;
    h->w = copy;
    /* a tied embedding is the same matrix: its rows are looked up in the
     * copy too, instead of faulting a dropped file page back in for every
     * token (about 50 us per token on the development VM) */
    if (m->tied_head)
        m->tok_embd.data = copy;
}

static int load_weights(loader *L)
{
    bitnet_model *m = L->m;
    int rc;

    /* embedding: its rows give n_vocab */
    bitnet_tensor_desc ted, tod;
    const bitnet_tensor_desc *te = &ted;
    if (bitnet__source_tensor(L->src, "token_embd.weight", &ted) != BITNET_OK)
        return bitnet__error(BITNET_E_FORMAT, "missing tensor 'token_embd.weight'");
    if (te->ne[1] > INT32_MAX || te->ne[2] != 1 || te->ne[3] != 1)
        return bitnet__error(BITNET_E_FORMAT, "tensor 'token_embd.weight': bad "
                             "shape");
    m->n_vocab = (int32_t)te->ne[1];
    const bitnet_vocab_field *tok = &L->vd.f[BITNET_VF_TOKENS];
    if (tok->present && tok->v.type == BITNET_VT_ARR && tok->v.arr_n != (uint64_t)m->n_vocab)
        return bitnet__error(BITNET_E_FORMAT, "tensor 'token_embd.weight': %d "
                             "rows but '%s' has %" PRIu64 " tokens", m->n_vocab,
                             tok->name, tok->v.arr_n);
    if (!find_tensor(L, "token_embd.weight", 1, 2, m->n_embd, m->n_vocab, &ted, &rc))
        return rc;
    rc = fmat_load(L, &m->tok_embd, &m->fmat_owned[0], te, "token_embd.weight");
    if (rc) return rc;
    rc = progress(L, te->nbytes);
    if (rc) return rc;

    const bitnet_tensor_desc *to = find_tensor(L, "output.weight", 0, 2, m->n_embd,
                                               m->n_vocab, &tod, &rc);
    if (rc) return rc;
    if (to) {
        rc = fmat_load(L, &m->output, &m->fmat_owned[1], to, "output.weight");
        if (rc) return rc;
        rc = progress(L, to->nbytes);
        if (rc) return rc;
    } else {
        m->output = m->tok_embd;
        m->tied_head = 1;
    }
    rc = load_norm(L, &m->output_norm, "output_norm.weight", m->n_embd, 1);
    if (rc) return rc;

    m->layers = calloc((size_t)m->n_layer, sizeof(*m->layers));
    if (!m->layers)
        return bitnet__error(BITNET_E_NOMEM, "out of memory");
    const int subn = m->arch != BITNET_ARCH_LLAMA;
    const int64_t E = m->n_embd, F = m->n_ff;
    const int64_t KV = (int64_t)m->n_head_kv * m->head_dim;

    /* one allocation for every packed matrix, populated in one system
     * call where possible (much cheaper than a page fault per 4 KiB page
     * on a large model) */
    size_t per_layer = 2 * bitnet__tmat_reserve((int32_t)E, (int32_t)E) +
                       2 * bitnet__tmat_reserve((int32_t)KV, (int32_t)E) +
                       2 * bitnet__tmat_reserve((int32_t)F, (int32_t)E) +
                       bitnet__tmat_reserve((int32_t)E, (int32_t)F), total;
    if (bitnet__mul_ovf(per_layer, (size_t)m->n_layer, &total))
        return bitnet__error(BITNET_E_NOMEM, "weights too large");
    /* every linear weight must exist with its shape before the arena is
     * sized from the hyperparameters (which a file could inflate) */
    L->dry_run = 1;
    for (int32_t i = 0; i < m->n_layer; i++) {
        static const char *lin[7] = { "attn_q", "attn_k", "attn_v", "attn_output",
                                      "ffn_gate", "ffn_up", "ffn_down" };
        const int64_t rows[7] = { E, KV, KV, E, F, F, E };
        const int64_t cols[7] = { E, E, E, E, E, E, F };
        for (int k = 0; k < 7; k++) {
            char nm[96];
            snprintf(nm, sizeof(nm), "blk.%d.%s.weight", (int)i, lin[k]);
            bitnet_tensor_desc td;
            if (!find_tensor(L, nm, 1, 2, cols[k], rows[k], &td, &rc)) {
                L->dry_run = 0;
                return rc;
            }
        }
    }
    L->dry_run = 0;
    if (bitnet__arena_init(&m->arena, total, 64, BITNET_ARENA_POPULATE))
        return bitnet__error(BITNET_E_NOMEM, "cannot allocate %zu bytes for "
                             "the weights", total);
    for (int32_t i = 0; i < m->n_layer; i++) {
        bitnet_layer *l = &m->layers[i];
        char nm[96];
#define N(s) (snprintf(nm, sizeof(nm), "blk.%d." s ".weight", (int)i), nm)
        if ((rc = load_norm(L, &l->attn_norm, N("attn_norm"), E, 1))) return rc;
        if ((rc = load_linear(L, &l->wq, N("attn_q"), E, E))) return rc;
        if ((rc = load_linear(L, &l->wk, N("attn_k"), KV, E))) return rc;
        if ((rc = load_linear(L, &l->wv, N("attn_v"), KV, E))) return rc;
        if ((rc = load_linear(L, &l->wo, N("attn_output"), E, E))) return rc;
        if (subn && (rc = load_norm(L, &l->attn_sub_norm, N("attn_sub_norm"), E, 1)))
            return rc;
        if ((rc = load_norm(L, &l->ffn_norm, N("ffn_norm"), E, 1))) return rc;
        if ((rc = load_linear(L, &l->wgate, N("ffn_gate"), F, E))) return rc;
        if ((rc = load_linear(L, &l->wup, N("ffn_up"), F, E))) return rc;
        if ((rc = load_linear(L, &l->wdown, N("ffn_down"), E, F))) return rc;
        if (subn && (rc = load_norm(L, &l->ffn_sub_norm, N("ffn_sub_norm"), F, 1)))
            return rc;
#undef N
    }
    const uint64_t nt = bitnet__source_n_tensors(L->src);
    if ((uint64_t)m->n_tensors_used != nt)
        bitnet__log(&m->log, BITNET_LOG_WARN, "%" PRIu64 " tensor(s) of the "
                    "file are not used by the '%s' graph",
                    nt - (uint64_t)m->n_tensors_used, m->arch_name);
    return BITNET_OK;
}

static void free_layers(bitnet_model *m)
{
    if (!m->layers) return;
    for (int32_t i = 0; i < m->n_layer; i++) {
        bitnet_layer *l = &m->layers[i];
        bitnet__afree(l->attn_norm);
        bitnet__afree(l->attn_sub_norm);
        bitnet__afree(l->ffn_norm);
        bitnet__afree(l->ffn_sub_norm);
    }
    free(m->layers);
    m->layers = NULL;
    bitnet__arena_release(&m->arena);
}

void bitnet_model_free(bitnet_model *m)
{
    if (!m) return;
    free_layers(m);
    bitnet__afree(m->output_norm);
    bitnet__afree(m->fmat_owned[0]);
    bitnet__afree(m->fmat_owned[1]);
    bitnet__model_head_free(m);
    bitnet__vocab_free(m->vocab);
    bitnet__source_free(m->src);
    free(m->arch_name);
    if (m->attach && m->attach_free)
        m->attach_free(m->attach);
    pthread_mutex_destroy(&m->attach_lock);
    pthread_mutex_destroy(&m->head_lock);
    free(m);
}

int bitnet__model_attachment(const bitnet_model *m,
                             int (*build)(const bitnet_model *m, void **obj),
                             void (*free_fn)(void *obj), void **out)
{
    bitnet_model *mm = (bitnet_model *)m;    /* the lock and cache are mutable */
    int rc = BITNET_OK;
    pthread_mutex_lock(&mm->attach_lock);
    if (mm->attach && mm->attach_free != free_fn) {
        rc = bitnet__error(BITNET_E_INVALID_ARG, "model attachment of another kind");
    } else if (!mm->attach) {
        void *obj = NULL;
        rc = build(m, &obj);
        if (rc == BITNET_OK) {
            mm->attach = obj;
            mm->attach_free = free_fn;
        }
    }
    *out = rc == BITNET_OK ? mm->attach : NULL;
    pthread_mutex_unlock(&mm->attach_lock);
    return rc;
}

static const char *type_counts(const loader *L, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int t = 0; t < 64; t++) {
        if (!L->n_types[t]) continue;
        int k = snprintf(buf + n, cap - n, "%s%d %s", n ? ", " : "",
                         L->n_types[t], bitnet__ggml_type_name((uint32_t)t));
        if (k < 0 || (size_t)k >= cap - n) break;
        n += (size_t)k;
    }
    return buf;
}

/* Build the model from src (owned from here on: freed on failure) with
 * merged params p. */
static int load(bitnet_model **out, bitnet_source *src, const bitnet_model_params *p,
                double t0)
{
    loader L;
    memset(&L, 0, sizeof(L));
    L.p = *p;
    bitnet_model *m = calloc(1, sizeof(*m));
    if (!m) {
        bitnet__source_free(src);
        return bitnet__error(BITNET_E_NOMEM, "out of memory");
    }
    if (pthread_mutex_init(&m->head_lock, NULL) != 0) {
        free(m);
        bitnet__source_free(src);
        return bitnet__error(BITNET_E_NOMEM, "cannot create a mutex");
    }
    if (pthread_mutex_init(&m->attach_lock, NULL) != 0) {
        pthread_mutex_destroy(&m->head_lock);
        free(m);
        bitnet__source_free(src);
        return bitnet__error(BITNET_E_NOMEM, "cannot create a mutex");
    }
    m->src = src;
    L.src = src;
    m->flags = L.p.flags;
    m->log.fn = L.p.log_fn;
    m->log.user = L.p.log_user;
    m->log.level = L.p.log_level;
    L.m = m;
    const int vocab_only = (L.p.flags & BITNET_MODEL_VOCAB_ONLY) != 0;

    bitnet_str an = { "", 0 };
    bitnet_value av;
    char *akey = L.hp_name[BITNET_HP_ARCH];
    int rc = bitnet__source_hparam(src, BITNET_HP_ARCH, &av, akey,
                                   sizeof(L.hp_name[BITNET_HP_ARCH]));
    if (rc == BITNET_OK) rc = bitnet__value_str(&av, akey, &an);
    if (rc == BITNET_E_NOT_FOUND && !vocab_only) {
        rc = bitnet__error(BITNET_E_FORMAT, "missing key '%s'", akey);
        goto fail;
    }
    if (rc && rc != BITNET_E_NOT_FOUND) goto fail;
    rc = bitnet__source_vocab(src, &L.vd);
    if (rc) goto fail;
    m->arch_name = bitnet__strndup(an.ptr, (size_t)an.len);
    if (!m->arch_name) { rc = bitnet__error(BITNET_E_NOMEM, "out of memory"); goto fail; }
    if (strlen(m->arch_name) != an.len || an.len > 64) {
        rc = bitnet__error(BITNET_E_FORMAT, "key '%s': invalid name", akey);
        if (!vocab_only) goto fail;
        bitnet__clear_error();
        m->arch_name[0] = '\0';
    }
    L.arch = m->arch_name;
    int known = 1;
    if (!strcmp(L.arch, "bitnet-b1.58") || !strcmp(L.arch, "bitnet-25")) {
        m->arch = BITNET_ARCH_B158;
        m->ffn_act = BITNET_FFN_RELU2;
        m->rope_neox = 1;
    } else if (!strcmp(L.arch, "bitnet")) {
        m->arch = BITNET_ARCH_BITNET;
        m->ffn_act = BITNET_FFN_SILU;
        m->rope_neox = 1;
    } else if (!strcmp(L.arch, "llama")) {
        m->arch = BITNET_ARCH_LLAMA;
        m->ffn_act = BITNET_FFN_SILU;
        m->rope_neox = 0;
    } else {
        known = 0;
        if (!vocab_only) {
            rc = bitnet__error(BITNET_E_UNSUPPORTED, "key '%s': unsupported "
                               "architecture '%s' (supported: bitnet-b1.58, "
                               "bitnet-25, bitnet, llama)", akey, L.arch);
            goto fail;
        }
    }

    if (L.vd.f[BITNET_VF_MODEL].present || L.vd.f[BITNET_VF_TOKENS].present) {
        rc = bitnet__vocab_load(&m->vocab, &L.vd, L.p.pre_tokenizer, &m->log);
        if (rc) goto fail;
    }

    if (vocab_only) {
        /* hyperparameters only as far as they are present and valid */
        if (known) {
            if (load_hparams(&L) != BITNET_OK) {
                m->n_ctx_train = m->n_embd = m->n_layer = m->n_ff = 0;
                m->n_head = m->n_head_kv = m->head_dim = m->n_rot = 0;
            }
            bitnet__clear_error();
        }
        const bitnet_vocab_field *tok = &L.vd.f[BITNET_VF_TOKENS];
        int32_t nv = bitnet__vocab_n_tokens(m->vocab);
        if (nv <= 0 && tok->present && tok->v.type == BITNET_VT_ARR &&
            tok->v.arr_n <= INT32_MAX)
            nv = (int32_t)tok->v.arr_n;
        m->n_vocab = nv > 0 ? nv : 0;
        m->fingerprint = fingerprint(m, src);
        bitnet__log(&m->log, BITNET_LOG_INFO, "loaded the vocabulary of a '%s' "
                    "model (%d tokens)", m->arch_name, m->n_vocab);
        *out = m;
        return BITNET_OK;
    }

    rc = load_hparams(&L);
    if (rc) goto fail;
    const uint64_t nt = bitnet__source_n_tensors(src);
    for (uint64_t i = 0; i < nt; i++) {
        bitnet_tensor_desc td;
        bitnet__source_tensor_at(src, i, &td);
        L.total += td.nbytes;
    }
    rc = progress(&L, 0);
    if (rc) goto fail;
    rc = load_weights(&L);
    if (rc) goto fail;
    if (L.p.flags & BITNET_MODEL_INT8_HEAD) {
        const bitnet_head *h;
        rc = bitnet__model_head_i8(m, &h);
        if (rc) goto fail;
    }
    rc = bitnet__model_head_setup(m, L.p.head_type);
    if (rc) goto fail;
    const char *hn = m->tied_head ? "token_embd.weight" : "output.weight";
    head_to_own_pages(m, src, hn);
    if (m->head.w != m->output.data) {
        /* a converted or copied head: the file's matrix was read once, at
         * load; its pages may go (a tied embedding's rows come back as
         * they are looked up) */
        bitnet_tensor_desc td;
        if (bitnet__source_tensor(src, hn, &td) == BITNET_OK && td.data == m->output.data)
            bitnet__source_drop(src, &td);
    }
    m->fingerprint = fingerprint(m, src);
    free(L.scratch);
    {
        char tc[256];
        bitnet__log(&m->log, BITNET_LOG_INFO, "loaded '%s' model: n_embd %d, "
                    "n_layer %d, n_ff %d, n_head %d/%d, n_vocab %d, n_ctx_train "
                    "%d; linear weights: %s; embedding %s%s%s; %.3f s",
                    m->arch_name, m->n_embd, m->n_layer, m->n_ff, m->n_head,
                    m->n_head_kv, m->n_vocab, m->n_ctx_train,
                    type_counts(&L, tc, sizeof(tc)),
                    bitnet__ggml_type_name(m->tok_embd.type),
                    m->tied_head ? " (tied head)" : ", head ",
                    m->tied_head ? "" :
                        bitnet__ggml_type_name(m->output.type),
                    bitnet__now() - t0);
    }
    *out = m;
    return BITNET_OK;
fail:
    free(L.scratch);
    bitnet_model_free(m);
    return rc;
}

static int merge_params(bitnet_model_params *p, const bitnet_model_params *params)
{
    bitnet_model_params_init(p);
    if (!params) return BITNET_OK;
    int rc = bitnet__params_merge(p, sizeof(*p), params, "bitnet_model_params");
    return rc ? rc : bitnet__model_params_check(p);
}

int bitnet_model_load_file(bitnet_model **out, const char *path,
                           const bitnet_model_params *params)
{
    bitnet__clear_error();
    if (out) *out = NULL;
    if (!out || !path)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_model_load_file: "
                             "out and path must not be NULL");
    double t0 = bitnet__now();
    bitnet_model_params p;
    int rc = merge_params(&p, params);
    if (rc) return rc;
    bitnet_source *src;
    const int no_mmap = (p.flags & BITNET_MODEL_NO_MMAP) != 0;
    if (bitnet__hf_is_checkpoint(path)) {
        /* a Hugging Face checkpoint: its warnings go to the caller's log */
        bitnet_logger lg = { p.log_fn, p.log_user, p.log_level };
        rc = bitnet__hf_source(&src, path, no_mmap, &lg);
    } else {
        rc = bitnet__source_open_file(&src, path, no_mmap);
    }
    if (rc) return rc;
    return load(out, src, &p, t0);
}

int bitnet__model_load_source(bitnet_model **out, bitnet_source *src,
                              const bitnet_model_params *params)
{
    bitnet__clear_error();
    if (out) *out = NULL;
    if (!out || !src) {
        bitnet__source_free(src);
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet__model_load_source: "
                             "out and src must not be NULL");
    }
    double t0 = bitnet__now();
    bitnet_model_params p;
    int rc = merge_params(&p, params);
    if (rc) {
        bitnet__source_free(src);
        return rc;
    }
    return load(out, src, &p, t0);
}

int bitnet_model_load_buffer(bitnet_model **out, const void *data, size_t size,
                             const bitnet_model_params *params)
{
    bitnet__clear_error();
    if (out) *out = NULL;
    if (!out || (!data && size))
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_model_load_buffer: "
                             "out and data must not be NULL");
    double t0 = bitnet__now();
    bitnet_model_params p;
    int rc = merge_params(&p, params);
    if (rc) return rc;
    bitnet_source *src;
    rc = bitnet__source_open_buffer(&src, data, size);
    if (rc) return rc;
    return load(out, src, &p, t0);
}

const char *bitnet_model_arch(const bitnet_model *model)
{
    return model ? model->arch_name : NULL;
}

int32_t bitnet_model_n_vocab(const bitnet_model *model)
{
    return model ? model->n_vocab : 0;
}

int32_t bitnet_model_n_ctx_train(const bitnet_model *model)
{
    return model ? model->n_ctx_train : 0;
}

int32_t bitnet_model_n_embd(const bitnet_model *model)
{
    return model ? model->n_embd : 0;
}

int32_t bitnet_model_n_layer(const bitnet_model *model)
{
    return model ? model->n_layer : 0;
}

int bitnet_model_meta(const bitnet_model *model, const char *key, char *buf,
                      size_t cap, size_t *n_out)
{
    bitnet__clear_error();
    if (!model || !key || !n_out || (!buf && cap))
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_model_meta: model, "
                             "key and n_out must not be NULL (buf only when cap "
                             "is 0)");
    *n_out = 0;
    bitnet_value v;
    if (bitnet__source_meta(model->src, key, &v) != BITNET_OK)
        return bitnet__error(BITNET_E_NOT_FOUND, "bitnet_model_meta: no key "
                             "'%s'", key);
    int rc = bitnet__value_render(&v, buf, cap, n_out);
    if (rc == BITNET_E_BUFFER_TOO_SMALL)
        return bitnet__error(rc, "bitnet_model_meta: '%s' needs %zu bytes", key,
                             *n_out + 1);
    return rc;
}

