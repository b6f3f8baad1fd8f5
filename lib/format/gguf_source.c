/*
 * The GGUF implementation of the model source (format/source.h): GGUF keys
 * are mapped to the neutral hyperparameter ids and vocabulary fields here,
 * and nowhere else. Tensor names are already the canonical ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "format/gguf.h"
#include "format/source.h"

typedef struct gguf_src {
    bitnet_gguf *g;
    bitnet_file_view file;    /* empty for a caller's buffer */
} gguf_src;

static const gguf_src *impl_of(const bitnet_source *s)
{
    return (const gguf_src *)s->impl;
}

static void desc_of(const bitnet_gguf_tensor *t, bitnet_tensor_desc *d)
{
    d->name.ptr = t->name.ptr;
    d->name.len = (size_t)t->name.len;
    d->type = t->type;
    d->n_dims = t->n_dims;
    memcpy(d->ne, t->ne, sizeof(d->ne));
    d->nbytes = t->nbytes;
    d->data = t->data;
}

/* Hyperparameter keys: "<architecture>.<suffix>". */
static const char *const hp_suffix[BITNET_HP_COUNT] = {
    [BITNET_HP_ARCH] = NULL,
    [BITNET_HP_CONTEXT_LENGTH] = "context_length",
    [BITNET_HP_EMBEDDING_LENGTH] = "embedding_length",
    [BITNET_HP_BLOCK_COUNT] = "block_count",
    [BITNET_HP_FEED_FORWARD_LENGTH] = "feed_forward_length",
    [BITNET_HP_HEAD_COUNT] = "attention.head_count",
    [BITNET_HP_HEAD_COUNT_KV] = "attention.head_count_kv",
    [BITNET_HP_ROPE_DIMENSION_COUNT] = "rope.dimension_count",
    [BITNET_HP_NORM_RMS_EPS] = "attention.layer_norm_rms_epsilon",
    [BITNET_HP_ROPE_FREQ_BASE] = "rope.freq_base",
};

static int g_hparam(const bitnet_source *s, int hp, bitnet_value *v, char *name,
                    size_t cap)
{
    const bitnet_gguf *g = impl_of(s)->g;
    if (hp < 0 || hp >= BITNET_HP_COUNT) {
        snprintf(name, cap, "?");
        return BITNET_E_NOT_FOUND;
    }
    if (hp == BITNET_HP_ARCH) {
        snprintf(name, cap, "general.architecture");
    } else {
        bitnet_gguf_str arch = { "", 0 };
        const bitnet_gguf_kv *a = bitnet__gguf_find(g, "general.architecture");
        if (a && a->type == GGUF_VT_STR) bitnet__gguf_get_str(g, "general.architecture", &arch);
        snprintf(name, cap, "%.*s.%s", (int)(arch.len > 64 ? 64 : arch.len), arch.ptr,
                 hp_suffix[hp]);
    }
    const bitnet_gguf_kv *kv = bitnet__gguf_find(g, name);
    if (!kv) return BITNET_E_NOT_FOUND;
    *v = bitnet__gguf_kv_value(kv);
    return BITNET_OK;
}

static int g_meta(const bitnet_source *s, const char *key, bitnet_value *v)
{
    const bitnet_gguf_kv *kv = bitnet__gguf_find(impl_of(s)->g, key);
    if (!kv) return BITNET_E_NOT_FOUND;
    *v = bitnet__gguf_kv_value(kv);
    return BITNET_OK;
}

static const char *const vf_key[BITNET_VF_COUNT] = {
    [BITNET_VF_MODEL] = "tokenizer.ggml.model",
    [BITNET_VF_TOKENS] = "tokenizer.ggml.tokens",
    [BITNET_VF_SCORES] = "tokenizer.ggml.scores",
    [BITNET_VF_TOKEN_TYPE] = "tokenizer.ggml.token_type",
    [BITNET_VF_MERGES] = "tokenizer.ggml.merges",
    [BITNET_VF_BOS] = "tokenizer.ggml.bos_token_id",
    [BITNET_VF_EOS] = "tokenizer.ggml.eos_token_id",
    [BITNET_VF_EOT] = "tokenizer.ggml.eot_token_id",
    [BITNET_VF_EOM] = "tokenizer.ggml.eom_token_id",
    [BITNET_VF_UNK] = "tokenizer.ggml.unknown_token_id",
    [BITNET_VF_PAD] = "tokenizer.ggml.padding_token_id",
    [BITNET_VF_ADD_BOS] = "tokenizer.ggml.add_bos_token",
    [BITNET_VF_ADD_EOS] = "tokenizer.ggml.add_eos_token",
    [BITNET_VF_ADD_SPACE_PREFIX] = "tokenizer.ggml.add_space_prefix",
    [BITNET_VF_PRE] = "tokenizer.ggml.pre",
};

void bitnet__gguf_vocab_desc(const bitnet_gguf *g, bitnet_vocab_desc *d)
{
    memset(d, 0, sizeof(*d));
    for (int i = 0; i < BITNET_VF_COUNT; i++) {
        d->f[i].name = vf_key[i];
        const bitnet_gguf_kv *kv = bitnet__gguf_find(g, vf_key[i]);
        if (!kv) continue;
        d->f[i].present = 1;
        d->f[i].v = bitnet__gguf_kv_value(kv);
    }
}

static int g_vocab(const bitnet_source *s, bitnet_vocab_desc *d)
{
    bitnet__gguf_vocab_desc(impl_of(s)->g, d);
    return BITNET_OK;
}

static uint64_t g_n_tensors(const bitnet_source *s)
{
    return impl_of(s)->g->n_tensors;
}

static void g_tensor_at(const bitnet_source *s, uint64_t i, bitnet_tensor_desc *t)
{
    desc_of(&impl_of(s)->g->tensors[i], t);
}

static int g_tensor(const bitnet_source *s, const char *name, bitnet_tensor_desc *t)
{
    const bitnet_gguf_tensor *gt = bitnet__gguf_tensor(impl_of(s)->g, name);
    if (!gt) return BITNET_E_NOT_FOUND;
    desc_of(gt, t);
    return BITNET_OK;
}

static void g_close(void *impl)
{
    gguf_src *gs = impl;
    if (!gs) return;
    bitnet__gguf_free(gs->g);
    bitnet__file_close(&gs->file);
    free(gs);
}

/* A tensor the loader is done with (copied into the kernel layout, or a
 * head that was converted): when the file is mapped, its pages leave this
 * process's resident set; the page cache keeps them, and a later read (the
 * fingerprint's samples, a token's embedding row) faults them back in. */
static int g_mapped(const bitnet_source *s, const void *p, size_t n)
{
    const bitnet_file_view *v = &impl_of(s)->file;
    const uintptr_t a = (uintptr_t)p, b = (uintptr_t)v->map_base;
    return v->map_base && p && a >= b && n <= v->map_size && a - b <= v->map_size - n;
}

static void g_release(const bitnet_source *s, const bitnet_tensor_desc *t)
{
    if (g_mapped(s, t->data, (size_t)t->nbytes))
        bitnet__pages_drop(t->data, (size_t)t->nbytes);
}

static const bitnet_source_ops gguf_ops = {
    "gguf", g_hparam, g_meta, g_vocab, g_n_tensors, g_tensor_at, g_tensor, g_close,
    NULL, g_release, g_release, g_mapped
};

/* A GGUF built in memory by another format's reader (format/hf.c): the
 * same keys and names, tensors produced through the gguf's hooks. */
static const bitnet_gguf_tensor *built_tensor(const bitnet_source *s,
                                              const bitnet_tensor_desc *t)
{
    char name[160];
    snprintf(name, sizeof(name), "%.*s", (int)(t->name.len < 159 ? t->name.len : 159),
             t->name.ptr);
    return bitnet__gguf_tensor(impl_of(s)->g, name);
}

static int b_acquire(const bitnet_source *s, const bitnet_tensor_desc *t,
                     bitnet_tensor_desc *view)
{
    const bitnet_gguf_tensor *gt = built_tensor(s, t);
    if (!gt)
        return bitnet__error(BITNET_E_INTERNAL, "tensor '%.*s' vanished",
                             (int)(t->name.len > 96 ? 96 : t->name.len), t->name.ptr);
    bitnet_gguf_tensor v;
    int rc = bitnet__gguf_tensor_acquire(impl_of(s)->g, gt, &v);
    view->data = rc ? NULL : v.data;
    return rc;
}

static void b_release(const bitnet_source *s, const bitnet_tensor_desc *t)
{
    const bitnet_gguf_tensor *gt = built_tensor(s, t);
    if (gt) bitnet__gguf_tensor_release(impl_of(s)->g, gt);
}

static const bitnet_source_ops built_ops = {
    "safetensors", g_hparam, g_meta, g_vocab, g_n_tensors, g_tensor_at, g_tensor,
    g_close, b_acquire, b_release, NULL, NULL
};

int bitnet__gguf_source_built(bitnet_source **out, bitnet_gguf *g)
{
    *out = NULL;
    gguf_src *gs = calloc(1, sizeof(*gs));
    if (!gs) {
        bitnet__gguf_free(g);
        return bitnet__error(BITNET_E_NOMEM, "out of memory");
    }
    gs->g = g;
    return bitnet__source_create(out, &built_ops, gs);
}

int bitnet__gguf_source(bitnet_source **out, const uint8_t *buf, size_t size,
                        bitnet_file_view *view)
{
    *out = NULL;
    gguf_src *gs = calloc(1, sizeof(*gs));
    if (!gs) {
        if (view) bitnet__file_close(view);
        return bitnet__error(BITNET_E_NOMEM, "out of memory");
    }
    if (view) gs->file = *view;
    int rc = bitnet__gguf_parse(&gs->g, buf, size);
    if (rc) {
        g_close(gs);
        return rc;
    }
    return bitnet__source_create(out, &gguf_ops, gs);
}

const bitnet_gguf *bitnet__gguf_of_source(const bitnet_source *s)
{
    return s && (s->ops == &gguf_ops || s->ops == &built_ops) ? impl_of(s)->g : NULL;
}

const bitnet_file_view *bitnet__gguf_source_file(const bitnet_source *s)
{
    return s && s->ops == &gguf_ops ? &impl_of(s)->file : NULL;
}
