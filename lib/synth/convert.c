/*
 * bitnet_convert: any model the loader reads (GGUF, Hugging Face
 * checkpoint) -> a GGUF file for bitnet.cpp (I2_S) or llama.cpp (TQ1_0,
 * TQ2_0). Linear weights go through the loader's own ternary decoding
 * (bitnet__ternary_decode: packed codes, absmean of masters), so a
 * converted file and the checkpoint it came from give the same model; the
 * tensors are streamed one at a time to the writer.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "format/gguf.h"
#include "format/hf.h"
#include "format/source.h"
#include "model/model.h"
#include "synth/encode.h"

void bitnet_convert_params_init_(bitnet_convert_params *p, size_t size)
{
    if (!p || size < sizeof(uint32_t)) return;
    bitnet_convert_params d;
    memset(&d, 0, sizeof(d));
    d.struct_size = (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size);
    d.weight_type = BITNET_TYPE_I2_S;
    d.embd_type = BITNET_TYPE_F16;
    d.log_level = BITNET_LOG_WARN;
    memset(p, 0, size);
    memcpy(p, &d, size < sizeof(d) ? size : sizeof(d));
}

enum { C_COPY = 0, C_LINEAR, C_EMBD, C_NORM, C_SKIP };

static int is_linear(const char *n)
{
    static const char *const lin[] = { "attn_q", "attn_k", "attn_v", "attn_output",
                                       "ffn_gate", "ffn_up", "ffn_down" };
    unsigned layer;
    int off = 0;
    if (sscanf(n, "blk.%u.%n", &layer, &off) != 1 || off <= 0) return 0;
    for (size_t k = 0; k < sizeof(lin) / sizeof(lin[0]); k++) {
        size_t l = strlen(lin[k]);
        if (!strncmp(n + off, lin[k], l) && !strcmp(n + off + l, ".weight")) return 1;
    }
    return 0;
}

/* "blk.N.attn_q.scale" of the bitnet architecture: folded into the scale */
static int is_scale_of_linear(const char *n)
{
    size_t l = strlen(n);
    if (l < 7 || strcmp(n + l - 6, ".scale")) return 0;
    char w[192];
    snprintf(w, sizeof(w), "%.*s.weight", (int)(l - 6), n);
    return is_linear(w);
}

static uint32_t ftype_of(int32_t wt)
{
    switch (wt) {
    case BITNET_TYPE_F16: return 1;
    case BITNET_TYPE_TQ1_0: return 36;      /* LLAMA_FTYPE_MOSTLY_TQ1_0 */
    case BITNET_TYPE_TQ2_0: return 37;      /* LLAMA_FTYPE_MOSTLY_TQ2_0 */
    default: return 40;                     /* LLAMA_FTYPE_MOSTLY_I2_S (bitnet.cpp) */
    }
}

typedef struct conv {
    const bitnet_source *src;
    bitnet_gguf_writer *w;
    bitnet_convert_params p;
    uint64_t total, done;
} conv;

static int progress(conv *C, uint64_t bytes)
{
    C->done += bytes;
    if (C->p.progress_fn &&
        C->p.progress_fn(C->p.progress_user,
                         C->total ? (float)((double)C->done / (double)C->total) : 1.0f))
        return bitnet__error(BITNET_E_ABORTED, "conversion cancelled by the "
                             "progress callback");
    return BITNET_OK;
}

static int write_linear(conv *C, const bitnet_tensor_desc *t, const char *name,
                        uint32_t type)
{
    const int32_t cols = (int32_t)t->ne[0], rows = (int32_t)t->ne[1];
    const size_t n = (size_t)rows * (size_t)cols;
    int8_t *tv = malloc(n);
    float *tmp = type == GGML_T_F16 ? malloc(n * sizeof(float)) : NULL;
    size_t ob = (size_t)bitnet__ggml_nbytes(type, (uint64_t)cols, (uint64_t)rows);
    uint8_t *o = malloc(ob);
    int rc = BITNET_OK;
    if (!tv || !o || (type == GGML_T_F16 && !tmp)) {
        rc = bitnet__error(BITNET_E_NOMEM, "convert: tensor '%s': out of memory", name);
        goto done;
    }
    float scale = 1.0f;
    bitnet_tensor_desc view;
    rc = bitnet__source_acquire(C->src, t, &view);
    if (!rc) rc = bitnet__ternary_decode(&view, tv, &scale);
    bitnet__source_release(C->src, t);
    if (rc) goto done;
    /* a "bitnet" architecture per-tensor .scale multiplies the weights */
    char sn[192];
    size_t l = strlen(name);
    snprintf(sn, sizeof(sn), "%.*s.scale", (int)(l - 7), name);
    bitnet_tensor_desc sd;
    if (bitnet__source_tensor(C->src, sn, &sd) == BITNET_OK &&
        sd.ne[0] * sd.ne[1] * sd.ne[2] * sd.ne[3] == 1 && sd.data) {
        bitnet_fmat one = { sd.type, 1, 1, (size_t)sd.nbytes, sd.data };
        float f;
        if (sd.type == GGML_T_F32 || sd.type == GGML_T_F16 || sd.type == GGML_T_BF16) {
            bitnet__fmat_row(&one, 0, &f);
            scale *= f;
        }
    }
    bitnet__encode_ternary(type, tv, rows, cols, scale, o, tmp);
    if (type == GGML_T_I2_S) {
        memset(o + n / 4, 0, 32);
        memcpy(o + n / 4, &scale, 4);
    }
    rc = bitnet__gguf_w_write(C->w, o, ob);
done:
    free(tv);
    free(tmp);
    free(o);
    return rc;
}

/* Float-valued tensors (embedding, head, norms): row by row through floats */
static int write_floats(conv *C, const bitnet_tensor_desc *t, const char *name,
                        uint32_t type)
{
    const int32_t cols = (int32_t)t->ne[0];
    const int64_t rows = (int64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    switch (t->type) {
    case GGML_T_F32: case GGML_T_F16: case GGML_T_BF16:
    case GGML_T_Q8_0: case GGML_T_Q4_0: case GGML_T_Q6_K:
        break;
    default:
        return bitnet__error(BITNET_E_UNSUPPORTED, "convert: tensor '%s': type "
                             "%s cannot be converted", name,
                             bitnet__ggml_type_name(t->type));
    }
    bitnet_tensor_desc view;
    int rc = bitnet__source_acquire(C->src, t, &view);
    const int32_t chunk = 64;
    float *f = malloc((size_t)chunk * (size_t)cols * sizeof(float));
    size_t rb = (size_t)bitnet__ggml_nbytes(type, (uint64_t)cols, 1);
    uint8_t *o = malloc((size_t)chunk * rb);
    if (!rc && (!f || !o))
        rc = bitnet__error(BITNET_E_NOMEM, "convert: tensor '%s': out of memory", name);
    bitnet_fmat m = { t->type, (int32_t)rows, cols,
                      (size_t)bitnet__ggml_nbytes(t->type, (uint64_t)cols, 1), view.data };
    for (int64_t r0 = 0; !rc && r0 < rows; r0 += chunk) {
        int32_t nr = (int32_t)(rows - r0 < chunk ? rows - r0 : chunk);
        for (int32_t k = 0; k < nr; k++)
            bitnet__fmat_row(&m, (int32_t)(r0 + k), f + (size_t)k * (size_t)cols);
        bitnet__encode_floats(type, f, (size_t)nr * (size_t)cols, o);
        rc = bitnet__gguf_w_write(C->w, o, (size_t)nr * rb);
    }
    bitnet__source_release(C->src, t);
    free(f);
    free(o);
    return rc;
}

static int blck_of(uint32_t type)
{
    return type == GGML_T_Q8_0 || type == GGML_T_Q4_0 ? 32 :
           type == GGML_T_Q6_K || type == GGML_T_TQ1_0 || type == GGML_T_TQ2_0 ? 256 :
           type == GGML_T_I2_S ? 1 : 1;
}

static int convert(conv *C, const char *output)
{
    const bitnet_gguf *g = bitnet__gguf_of_source(C->src);
    if (!g)
        return bitnet__error(BITNET_E_UNSUPPORTED, "convert: unsupported input");
    bitnet_gguf_writer *w;
    int rc = bitnet__gguf_writer_create(&w, 0);
    if (rc) return rc;
    C->w = w;
    for (uint64_t i = 0; i < g->n_kv && !rc; i++) {
        const bitnet_gguf_kv *kv = &g->kv[i];
        char k[128];
        snprintf(k, sizeof(k), "%.*s", (int)(kv->key.len < 127 ? kv->key.len : 127),
                 kv->key.ptr);
        if (!strcmp(k, "general.file_type") || !strcmp(k, "general.alignment") ||
            !strcmp(k, "general.quantization_version"))
            continue;
        rc = bitnet__gguf_w_copy_kv(w, kv);
    }
    if (!rc) rc = bitnet__gguf_w_u32(w, "general.file_type", ftype_of(C->p.weight_type));
    if (!rc) rc = bitnet__gguf_w_u32(w, "general.quantization_version", 2);

    const uint64_t nt = bitnet__source_n_tensors(C->src);
    uint8_t *kind = calloc(nt ? nt : 1, 1);
    uint32_t *otype = calloc(nt ? nt : 1, sizeof(*otype));
    if (!rc && (!kind || !otype)) rc = bitnet__error(BITNET_E_NOMEM, "convert: out of memory");
    for (uint64_t i = 0; i < nt && !rc; i++) {
        bitnet_tensor_desc t;
        bitnet__source_tensor_at(C->src, i, &t);
        char name[160];
        snprintf(name, sizeof(name), "%.*s", (int)(t.name.len < 159 ? t.name.len : 159),
                 t.name.ptr);
        uint32_t ty = t.type;
        if (is_linear(name)) {
            kind[i] = C_LINEAR;
            ty = (uint32_t)C->p.weight_type;
        } else if (is_scale_of_linear(name)) {
            kind[i] = C_SKIP;
            continue;
        } else if (!strcmp(name, "token_embd.weight") || !strcmp(name, "output.weight")) {
            kind[i] = C_EMBD;
            ty = (uint32_t)C->p.embd_type;
        } else if (t.type == GGML_T_F16 || t.type == GGML_T_BF16 || t.type == GGML_T_F32) {
            kind[i] = C_NORM;
            ty = GGML_T_F32;
        } else {
            kind[i] = C_COPY;
        }
        int b = blck_of(ty);
        uint64_t nb = bitnet__ggml_nbytes(ty, t.ne[0], t.ne[1] * t.ne[2] * t.ne[3]);
        if (t.ne[0] % (uint64_t)b || !nb) {
            rc = bitnet__error(BITNET_E_INVALID_ARG, "convert: tensor '%s': type "
                               "%s does not fit its shape [%" PRIu64 ", %" PRIu64
                               "] (block size)", name, bitnet__ggml_type_name(ty),
                               t.ne[0], t.ne[1]);
            break;
        }
        otype[i] = ty;
        C->total += t.nbytes;
        rc = bitnet__gguf_w_tensor(w, name, t.n_dims ? t.n_dims : 1, t.ne, ty, NULL, 0);
    }
    if (!rc) rc = bitnet__gguf_w_begin(w, output);
    int begun = !rc;
    for (uint64_t i = 0; i < nt && !rc; i++) {
        if (kind[i] == C_SKIP) continue;
        bitnet_tensor_desc t;
        bitnet__source_tensor_at(C->src, i, &t);
        char name[160];
        snprintf(name, sizeof(name), "%.*s", (int)(t.name.len < 159 ? t.name.len : 159),
                 t.name.ptr);
        if (kind[i] == C_LINEAR) {
            rc = write_linear(C, &t, name, otype[i]);
        } else if (kind[i] == C_COPY) {
            bitnet_tensor_desc v;
            rc = bitnet__source_acquire(C->src, &t, &v);
            if (!rc) rc = bitnet__gguf_w_write(w, v.data, (size_t)t.nbytes);
            bitnet__source_release(C->src, &t);
        } else {
            rc = write_floats(C, &t, name, otype[i]);
        }
        if (!rc) rc = progress(C, t.nbytes);
    }
    if (begun) {
        if (rc) {
            /* keep the first error's message: end (which removes the
             * partial file) would replace it */
            char msg[512];
            snprintf(msg, sizeof(msg), "%s", bitnet_last_error());
            bitnet__gguf_w_end(w);
            bitnet__error(rc, "%s", msg);
        } else {
            rc = bitnet__gguf_w_end(w);
        }
    }
    free(kind);
    free(otype);
    bitnet__gguf_writer_free(w);
    return rc;
}

int bitnet_convert(const char *input, const char *output,
                   const bitnet_convert_params *params)
{
    bitnet__clear_error();
    if (!input || !output)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_convert: input and "
                             "output must not be NULL");
    conv C;
    memset(&C, 0, sizeof(C));
    bitnet_convert_params_init(&C.p);
    if (params) {
        int rc = bitnet__params_merge(&C.p, sizeof(C.p), params, "bitnet_convert_params");
        if (rc) return rc;
    }
    switch (C.p.weight_type) {
    case BITNET_TYPE_I2_S: case BITNET_TYPE_TQ2_0: case BITNET_TYPE_TQ1_0:
    case BITNET_TYPE_F16:
        break;
    default:
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_convert: weight_type "
                             "%d is not I2_S, TQ2_0, TQ1_0 or F16", (int)C.p.weight_type);
    }
    switch (C.p.embd_type) {
    case BITNET_TYPE_F16: case BITNET_TYPE_Q8_0: case BITNET_TYPE_Q6_K:
    case BITNET_TYPE_Q4_0:
        break;
    default:
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_convert: embd_type "
                             "%d is not F16, Q8_0, Q6_K or Q4_0", (int)C.p.embd_type);
    }
    if (C.p.reserved0)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_convert: reserved0 "
                             "must be 0");
    bitnet_logger lg = { C.p.log_fn, C.p.log_user, C.p.log_level };
    bitnet_source *src;
    int rc = bitnet__hf_is_checkpoint(input) ? bitnet__hf_source(&src, input, 0, &lg)
                                             : bitnet__source_open_file(&src, input, 0);
    if (rc) return rc;
    C.src = src;
    rc = convert(&C, output);
    bitnet__source_free(src);
    if (!rc)
        bitnet__log(&lg, BITNET_LOG_INFO, "converted '%s' to '%s'", input, output);
    return rc;
}
