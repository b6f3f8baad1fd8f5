/*
 * GGUF reader/writer and model loading:
 *  - writer round trip (every key and tensor identical, buffer = file =
 *    streamed bytes);
 *  - every error class from small crafted files, with the status code and
 *    a message that names the key or tensor;
 *  - (the synthetic model writer has its own suite, tests/synth);
 *  - the decoding rules (ternary, absmean, TQ block scales, bitnet *.scale);
 *  - quantised heads against their dequantised rows;
 *  - the external files of ../shared/data/models (skipped when absent).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/gguf.h"
#include "model/model.h"
#include "text/vocab.h"
#include "test_util.h"
#include "model_check.h"

/* ---------------------------------------------------------------------- */
/* helpers                                                                */

static char tmp_path[256];

static const char *tmpfile_name(const char *tag)
{
    char t[64];
    snprintf(t, sizeof(t), "-%s.gguf", tag);
    return bt_tmp_path(tmp_path, sizeof(tmp_path), "test-gguf", t);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    uint8_t *b = bt_read_file(path, n);
    assert_non_null(b);
    return b;
}

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

#define assert_msg_has(needle) do {                                       \
        const char *m_ = bitnet_last_error();                             \
        if (!contains(m_, needle))                                        \
            fail_msg("message '%s' does not name '%s'", m_, needle);      \
    } while (0)

static int load_buf(const uint8_t *b, size_t n, uint32_t flags, bitnet_model **m)
{
    bitnet_model_params p;
    bitnet_model_params_init(&p);
    p.flags = flags;
    return bitnet_model_load_buffer(m, b, n, &p);
}

/* ---------------------------------------------------------------------- */
/* A tiny model built with the writer, with knobs to break it             */

typedef struct mk {
    const char *arch;
    const char *skip_tensor;       /* leave this tensor out */
    const char *bad_shape;         /* give this tensor a wrong shape */
    const char *type_tensor;       /* give this tensor type `type` */
    uint32_t type;
    const char *skip_key;          /* suffix after "<arch>." */
    int with_scale;                /* "bitnet": blk.0.attn_q.scale = 2 */
    int dup_key;
    int i2s_code3;                 /* put code 3 into blk.0.attn_q */
} mk;

enum { ME = 128, MF = 256, MV = 40, MH = 2, MHKV = 1 };

static void add_i2s(bitnet_gguf_writer *w, const char *name, int rows, int cols,
                    uint32_t seed, int code3)
{
    size_t n = (size_t)rows * cols, nb = n / 4 + 32;
    uint8_t *d = calloc(1, nb);
    assert_non_null(d);
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n / 4; i++) {
        uint8_t b = 0;
        for (int k = 0; k < 4; k++) {
            s = s * 1103515245u + 12345u;
            b = (uint8_t)(b << 2 | ((s >> 16) % 3));
        }
        d[i] = b;
    }
    if (code3) d[5] |= 0xC0;
    float sc = 0.5f;
    memcpy(d + n / 4, &sc, 4);
    uint64_t ne[2] = { (uint64_t)cols, (uint64_t)rows };
    assert_int_equal(bitnet__gguf_w_tensor(w, name, 2, ne, GGML_T_I2_S, d, nb), 0);
    free(d);
}

static void add_f32(bitnet_gguf_writer *w, const char *name, int rows, int cols,
                    float v)
{
    size_t n = (size_t)rows * cols;
    float *d = malloc(n * 4);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) d[i] = v + 0.001f * (float)(i % 7);
    uint64_t ne[2] = { (uint64_t)cols, (uint64_t)rows };
    assert_int_equal(bitnet__gguf_w_tensor(w, name, rows == 1 ? 1 : 2, ne,
                                           GGML_T_F32, d, n * 4), 0);
    free(d);
}

static uint8_t *mk_model(const mk *o, size_t *size)
{
    bitnet_gguf_writer *w;
    assert_int_equal(bitnet__gguf_writer_create(&w, 32), 0);
    const char *arch = o->arch ? o->arch : "bitnet-b1.58";
    char k[128];
    assert_int_equal(bitnet__gguf_w_str(w, "general.architecture", arch, strlen(arch)), 0);
    struct { const char *s; uint32_t v; } hp[] = {
        { "context_length", 512 }, { "embedding_length", ME },
        { "block_count", 1 }, { "feed_forward_length", MF },
        { "attention.head_count", MH }, { "attention.head_count_kv", MHKV },
    };
    for (size_t i = 0; i < sizeof(hp) / sizeof(hp[0]); i++) {
        if (o->skip_key && !strcmp(o->skip_key, hp[i].s)) continue;
        snprintf(k, sizeof(k), "%s.%s", arch, hp[i].s);
        assert_int_equal(bitnet__gguf_w_u32(w, k, hp[i].v), 0);
    }
    if (!o->skip_key || strcmp(o->skip_key, "attention.layer_norm_rms_epsilon")) {
        snprintf(k, sizeof(k), "%s.attention.layer_norm_rms_epsilon", arch);
        assert_int_equal(bitnet__gguf_w_f32(w, k, 1e-5f), 0);
    }
    if (o->dup_key)       /* the writer refuses duplicates: patched later */
        assert_int_equal(bitnet__gguf_w_u32(w, "general.dupkeyA", 1), 0);
    if (o->dup_key)
        assert_int_equal(bitnet__gguf_w_u32(w, "general.dupkeyB", 2), 0);

    static const char *names[] = {
        "token_embd.weight", "output_norm.weight", "blk.0.attn_norm.weight",
        "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight",
        "blk.0.attn_output.weight", "blk.0.attn_sub_norm.weight",
        "blk.0.ffn_norm.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight",
        "blk.0.ffn_down.weight", "blk.0.ffn_sub_norm.weight",
    };
    const int kvd = ME / MH * MHKV;
    const int shape[][2] = {   /* rows, cols */
        { MV, ME }, { 1, ME }, { 1, ME }, { ME, ME }, { kvd, ME }, { kvd, ME },
        { ME, ME }, { 1, ME }, { 1, ME }, { MF, ME }, { MF, ME }, { ME, MF },
        { 1, MF },
    };
    int patch = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *nm = names[i];
        if (o->skip_tensor && !strcmp(o->skip_tensor, nm)) continue;
        int rows = shape[i][0], cols = shape[i][1];
        if (o->bad_shape && !strcmp(o->bad_shape, nm)) {
            if (rows == 1) cols += 128; else rows += 4;
        }
        if (o->type_tensor && !strcmp(o->type_tensor, nm)) {
            /* a raw tensor of `type` of the right byte size (the type's
             * size rule may be unknown: then 4 bytes per element) */
            uint64_t ne[2] = { (uint64_t)cols, (uint64_t)rows };
            size_t nb = (size_t)bitnet__ggml_nbytes(o->type, (uint64_t)cols, (uint64_t)rows);
            if (!nb) nb = (size_t)rows * cols * 4;
            uint8_t *d = calloc(1, nb);
            assert_non_null(d);
            /* the writer only accepts known types: write as F32 and patch */
            patch = !bitnet__ggml_nbytes(o->type, (uint64_t)cols, (uint64_t)rows);
            if (!patch) {
                assert_int_equal(bitnet__gguf_w_tensor(w, nm, rows == 1 ? 1 : 2, ne,
                                                       o->type, d, nb), 0);
            } else {
                assert_int_equal(bitnet__gguf_w_tensor(w, nm, rows == 1 ? 1 : 2, ne,
                                                       GGML_T_F32, d, nb), 0);
            }
            free(d);
            continue;
        }
        if (i == 0) {
            uint64_t ne[2] = { (uint64_t)cols, (uint64_t)rows };
            size_t nb = (size_t)rows * cols * 2;
            uint16_t *d = malloc(nb);
            assert_non_null(d);
            for (size_t j = 0; j < (size_t)rows * cols; j++)
                d[j] = bitnet__fp32_to_fp16(0.01f * (float)((int)(j % 11) - 5));
            assert_int_equal(bitnet__gguf_w_tensor(w, nm, 2, ne, GGML_T_F16, d, nb), 0);
            free(d);
        } else if (rows == 1) {
            add_f32(w, nm, 1, cols, 1.0f);
        } else {
            add_i2s(w, nm, rows, cols, (uint32_t)i, o->i2s_code3 && i == 3);
        }
    }
    if (o->with_scale) {
        float two = 2.0f;
        uint64_t ne[1] = { 1 };
        assert_int_equal(bitnet__gguf_w_tensor(w, "blk.0.attn_q.scale", 1, ne,
                                               GGML_T_F32, &two, 4), 0);
    }
    uint8_t *buf;
    assert_int_equal(bitnet__gguf_w_buffer(w, &buf, size), 0);
    bitnet__gguf_writer_free(w);
    if (patch) {
        /* patch the type id of the tensor info in place */
        bitnet_gguf *g;
        assert_int_equal(bitnet__gguf_parse(&g, buf, *size), 0);
        const bitnet_gguf_tensor *t = bitnet__gguf_tensor(g, o->type_tensor);
        assert_non_null(t);
        uint8_t *p = (uint8_t *)t->name.ptr + t->name.len + 4 + 8 * t->n_dims;
        memcpy(p, &o->type, 4);
        bitnet__gguf_free(g);
    }
    if (o->dup_key) {
        uint8_t *p = memmem(buf, *size, "general.dupkeyB", 15);
        assert_non_null(p);
        p[14] = 'A';
    }
    return buf;
}

/* ---------------------------------------------------------------------- */
/* writer round trip                                                       */

static void test_roundtrip(void **state)
{
    (void)state;
    bitnet_gguf_writer *w;
    assert_int_equal(bitnet__gguf_writer_create(&w, 64), 0);
    uint8_t u8 = 200; int8_t i8 = -5; uint16_t u16 = 60000; int16_t i16 = -30000;
    uint64_t u64 = 0xfedcba9876543210ull; int64_t i64 = -1234567890123ll;
    double f64 = 3.25;
    assert_int_equal(bitnet__gguf_w_raw(w, "t.u8", GGUF_VT_U8, 0, 0, &u8, 1), 0);
    assert_int_equal(bitnet__gguf_w_raw(w, "t.i8", GGUF_VT_I8, 0, 0, &i8, 1), 0);
    assert_int_equal(bitnet__gguf_w_raw(w, "t.u16", GGUF_VT_U16, 0, 0, &u16, 2), 0);
    assert_int_equal(bitnet__gguf_w_raw(w, "t.i16", GGUF_VT_I16, 0, 0, &i16, 2), 0);
    assert_int_equal(bitnet__gguf_w_u32(w, "t.u32", 4000000000u), 0);
    assert_int_equal(bitnet__gguf_w_i32(w, "t.i32", -7), 0);
    assert_int_equal(bitnet__gguf_w_f32(w, "t.f32", 0.5f), 0);
    assert_int_equal(bitnet__gguf_w_bool(w, "t.bool", 1), 0);
    assert_int_equal(bitnet__gguf_w_str(w, "t.str", "h\xc3\xa9llo", 6), 0);
    assert_int_equal(bitnet__gguf_w_raw(w, "t.u64", GGUF_VT_U64, 0, 0, &u64, 8), 0);
    assert_int_equal(bitnet__gguf_w_raw(w, "t.i64", GGUF_VT_I64, 0, 0, &i64, 8), 0);
    assert_int_equal(bitnet__gguf_w_raw(w, "t.f64", GGUF_VT_F64, 0, 0, &f64, 8), 0);
    int32_t ai[70];
    for (int i = 0; i < 70; i++) ai[i] = i * i - 3;
    assert_int_equal(bitnet__gguf_w_raw(w, "t.arr_i32", GGUF_VT_ARR, GGUF_VT_I32,
                                        70, ai, sizeof(ai)), 0);
    uint8_t sa[8 + 1 + 8 + 0 + 8 + 3];
    uint64_t l;
    l = 1; memcpy(sa, &l, 8); sa[8] = 'a';
    l = 0; memcpy(sa + 9, &l, 8);
    l = 3; memcpy(sa + 17, &l, 8); memcpy(sa + 25, "xyz", 3);
    assert_int_equal(bitnet__gguf_w_raw(w, "t.arr_str", GGUF_VT_ARR, GGUF_VT_STR,
                                        3, sa, sizeof(sa)), 0);
    /* duplicate key refused */
    assert_int_equal(bitnet__gguf_w_u32(w, "t.u32", 1), BITNET_E_INVALID_ARG);

    float f[3 * 5];
    for (int i = 0; i < 15; i++) f[i] = (float)i - 7.5f;
    uint64_t ne2[2] = { 5, 3 }, ne3[3] = { 32, 2, 2 }, ne1[1] = { 256 };
    assert_int_equal(bitnet__gguf_w_tensor(w, "a", 2, ne2, GGML_T_F32, f, sizeof(f)), 0);
    uint8_t q8[4 * 34];
    for (size_t i = 0; i < sizeof(q8); i++) q8[i] = (uint8_t)(i * 7);
    assert_int_equal(bitnet__gguf_w_tensor(w, "b.q8", 3, ne3, GGML_T_Q8_0, q8, sizeof(q8)), 0);
    uint8_t i2[256 / 4 + 32];
    for (size_t i = 0; i < sizeof(i2); i++) i2[i] = (uint8_t)(i * 13 & 0x55);
    assert_int_equal(bitnet__gguf_w_tensor(w, "c.i2s", 1, ne1, GGML_T_I2_S, i2, sizeof(i2)), 0);
    /* wrong size and duplicate name refused */
    assert_int_equal(bitnet__gguf_w_tensor(w, "d", 2, ne2, GGML_T_F32, f, 8), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet__gguf_w_tensor(w, "a", 2, ne2, GGML_T_F32, f, sizeof(f)), BITNET_E_INVALID_ARG);

    uint8_t *buf;
    size_t size;
    assert_int_equal(bitnet__gguf_w_buffer(w, &buf, &size), 0);
    const char *path = tmpfile_name("rt");
    assert_int_equal(bitnet__gguf_w_file(w, path), 0);
    size_t fsize;
    uint8_t *fbuf = read_file(path, &fsize);
    assert_int_equal(fsize, size);
    assert_memory_equal(fbuf, buf, size);
    free(fbuf);

    bitnet_gguf *g;
    assert_int_equal(bitnet__gguf_parse(&g, buf, size), 0);
    assert_int_equal(g->version, 3);
    assert_int_equal(g->alignment, 64);
    assert_int_equal(g->n_kv, 15);        /* 14 + general.alignment */
    int64_t iv;
    assert_int_equal(bitnet__gguf_get_int(g, "general.alignment", &iv), 0);
    assert_int_equal(iv, 64);
    struct { const char *k; int64_t v; } ints[] = {
        { "t.u8", 200 }, { "t.i8", -5 }, { "t.u16", 60000 }, { "t.i16", -30000 },
        { "t.u32", 4000000000ll }, { "t.i32", -7 }, { "t.bool", 1 },
        { "t.i64", -1234567890123ll },
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        assert_int_equal(bitnet__gguf_get_int(g, ints[i].k, &iv), 0);
        assert_int_equal(iv, ints[i].v);
    }
    assert_int_equal(bitnet__gguf_get_int(g, "t.u64", &iv), BITNET_E_FORMAT);
    const bitnet_gguf_kv *kv = bitnet__gguf_find(g, "t.u64");
    assert_memory_equal(kv->value, &u64, 8);
    float fv;
    assert_int_equal(bitnet__gguf_get_f32(g, "t.f32", &fv), 0);
    assert_true(fv == 0.5f);
    assert_int_equal(bitnet__gguf_get_f32(g, "t.f64", &fv), 0);
    assert_true(fv == 3.25f);
    bitnet_gguf_str sv;
    assert_int_equal(bitnet__gguf_get_str(g, "t.str", &sv), 0);
    assert_int_equal(sv.len, 6);
    assert_memory_equal(sv.ptr, "h\xc3\xa9llo", 6);
    kv = bitnet__gguf_find(g, "t.arr_i32");
    assert_int_equal(kv->arr_type, GGUF_VT_I32);
    assert_int_equal(kv->arr_n, 70);
    assert_memory_equal(kv->value, ai, sizeof(ai));
    kv = bitnet__gguf_find(g, "t.arr_str");
    assert_int_equal(kv->arr_n, 3);
    assert_memory_equal(kv->value, sa, sizeof(sa));
    assert_int_equal(bitnet__gguf_arr_str(kv, 1, &sv), 0);
    assert_int_equal(sv.len, 0);
    assert_int_equal(bitnet__gguf_arr_str(kv, 2, &sv), 0);
    assert_memory_equal(sv.ptr, "xyz", 3);
    assert_int_equal(g->n_tensors, 3);
    const bitnet_gguf_tensor *ta = bitnet__gguf_tensor(g, "a");
    assert_int_equal(ta->n_dims, 2);
    assert_int_equal(ta->ne[0], 5);
    assert_int_equal(ta->ne[1], 3);
    assert_memory_equal(ta->data, f, sizeof(f));
    const bitnet_gguf_tensor *tb = bitnet__gguf_tensor(g, "b.q8");
    assert_int_equal(tb->n_dims, 3);
    assert_int_equal(tb->type, GGML_T_Q8_0);
    assert_int_equal(tb->ne[2], 2);
    assert_memory_equal(tb->data, q8, sizeof(q8));
    const bitnet_gguf_tensor *tc = bitnet__gguf_tensor(g, "c.i2s");
    assert_int_equal(tc->nbytes, sizeof(i2));
    assert_memory_equal(tc->data, i2, sizeof(i2));
    for (uint64_t i = 0; i < g->n_tensors; i++)
        assert_int_equal((g->tensors[i].data - buf) % 64, 0);
    bitnet__gguf_free(g);
    bitnet__gguf_writer_free(w);
    free(buf);
    unlink(path);
}

/* The same content, compared key by key and tensor by tensor after a copy
 * through w_copy_kv and a streamed write. */
static void test_roundtrip_copy_stream(void **state)
{
    (void)state;
    mk o = { 0 };
    size_t size;
    uint8_t *buf = mk_model(&o, &size);
    bitnet_gguf *g;
    assert_int_equal(bitnet__gguf_parse(&g, buf, size), 0);

    bitnet_gguf_writer *w;
    assert_int_equal(bitnet__gguf_writer_create(&w, 32), 0);
    for (uint64_t i = 0; i < g->n_kv; i++)
        assert_int_equal(bitnet__gguf_w_copy_kv(w, &g->kv[i]), 0);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bitnet_gguf_tensor *t = &g->tensors[i];
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)t->name.len, t->name.ptr);
        assert_int_equal(bitnet__gguf_w_tensor(w, name, t->n_dims, t->ne, t->type,
                                               NULL, 0), 0);
    }
    const char *path = tmpfile_name("stream");
    assert_int_equal(bitnet__gguf_w_begin(w, path), 0);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bitnet_gguf_tensor *t = &g->tensors[i];
        /* odd chunking */
        for (uint64_t off = 0; off < t->nbytes; off += 1000) {
            size_t k = t->nbytes - off < 1000 ? (size_t)(t->nbytes - off) : 1000;
            assert_int_equal(bitnet__gguf_w_write(w, t->data + off, k), 0);
        }
    }
    assert_int_equal(bitnet__gguf_w_end(w), 0);
    bitnet__gguf_writer_free(w);

    size_t s2;
    uint8_t *b2 = read_file(path, &s2);
    unlink(path);
    assert_int_equal(s2, size);
    assert_memory_equal(b2, buf, size);
    bitnet_gguf *g2;
    assert_int_equal(bitnet__gguf_parse(&g2, b2, s2), 0);
    assert_int_equal(g2->n_kv, g->n_kv);
    assert_int_equal(g2->n_tensors, g->n_tensors);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const bitnet_gguf_kv *a = &g->kv[i], *b = &g2->kv[i];
        assert_int_equal(a->key.len, b->key.len);
        assert_memory_equal(a->key.ptr, b->key.ptr, a->key.len);
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->value_size, b->value_size);
        assert_memory_equal(a->value, b->value, a->value_size);
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bitnet_gguf_tensor *a = &g->tensors[i], *b = &g2->tensors[i];
        assert_memory_equal(a->name.ptr, b->name.ptr, a->name.len);
        assert_int_equal(a->type, b->type);
        assert_memory_equal(a->ne, b->ne, sizeof(a->ne));
        assert_int_equal(a->nbytes, b->nbytes);
        assert_memory_equal(a->data, b->data, a->nbytes);
    }
    /* streaming: too little data is an error and leaves no file */
    assert_int_equal(bitnet__gguf_writer_create(&w, 32), 0);
    uint64_t ne[1] = { 64 };
    assert_int_equal(bitnet__gguf_w_tensor(w, "x", 1, ne, GGML_T_F32, NULL, 0), 0);
    assert_int_equal(bitnet__gguf_w_begin(w, path), 0);
    assert_int_equal(bitnet__gguf_w_write(w, buf, 100), 0);
    assert_int_not_equal(bitnet__gguf_w_end(w), 0);
    assert_int_not_equal(access(path, F_OK), 0);
    bitnet__gguf_writer_free(w);

    bitnet__gguf_free(g);
    bitnet__gguf_free(g2);
    free(buf);
    free(b2);
}

static void test_getters_render(void **state)
{
    (void)state;
    bitnet_gguf_writer *w;
    assert_int_equal(bitnet__gguf_writer_create(&w, 32), 0);
    assert_int_equal(bitnet__gguf_w_u32(w, "a.n", 7), 0);
    assert_int_equal(bitnet__gguf_w_f32(w, "a.f", 1e-5f), 0);
    assert_int_equal(bitnet__gguf_w_bool(w, "a.b", 0), 0);
    assert_int_equal(bitnet__gguf_w_str(w, "a.s", "text", 4), 0);
    int32_t arr[100];
    for (int i = 0; i < 100; i++) arr[i] = i;
    assert_int_equal(bitnet__gguf_w_raw(w, "a.arr", GGUF_VT_ARR, GGUF_VT_I32, 100,
                                        arr, sizeof(arr)), 0);
    uint8_t *buf;
    size_t size;
    assert_int_equal(bitnet__gguf_w_buffer(w, &buf, &size), 0);
    bitnet__gguf_writer_free(w);
    bitnet_gguf *g;
    assert_int_equal(bitnet__gguf_parse(&g, buf, size), 0);
    int64_t v;
    float f;
    int b;
    bitnet_gguf_str s;
    assert_int_equal(bitnet__gguf_get_int(g, "a.n", &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(bitnet__gguf_get_int(g, "a.missing", &v), BITNET_E_NOT_FOUND);
    assert_int_equal(bitnet__gguf_get_int(g, "a.s", &v), BITNET_E_FORMAT);
    assert_msg_has("a.s");
    assert_int_equal(bitnet__gguf_get_f32(g, "a.f", &f), 0);
    assert_true(f == 1e-5f);
    assert_int_equal(bitnet__gguf_get_bool(g, "a.b", &b), 0);
    assert_int_equal(b, 0);
    assert_int_equal(bitnet__gguf_get_str(g, "a.s", &s), 0);
    assert_int_equal(s.len, 4);
    assert_memory_equal(s.ptr, "text", 4);
    const bitnet_gguf_kv *kv = bitnet__gguf_find(g, "a.arr");
    assert_non_null(kv);
    assert_int_equal(bitnet__gguf_arr_i64(kv, 99, &v), 0);
    assert_int_equal(v, 99);
    assert_int_equal(bitnet__gguf_arr_i64(kv, 100, &v), BITNET_E_INVALID_ARG);
    char out[1024];
    size_t n;
    assert_int_equal(bitnet__gguf_render(kv, out, sizeof(out), &n), 0);
    assert_int_equal(strlen(out), n);
    assert_true(!strncmp(out, "[0, 1, 2, ", 10));
    assert_true(contains(out, ", 63, ...]"));
    assert_false(contains(out, "64"));
    assert_int_equal(bitnet__gguf_render(kv, out, 5, &n), BITNET_E_BUFFER_TOO_SMALL);
    assert_true(n > 5);
    bitnet__gguf_free(g);
    free(buf);
}

/* ---------------------------------------------------------------------- */
/* error classes                                                          */

static void test_err_header(void **state)
{
    (void)state;
    mk o = { 0 };
    size_t size;
    uint8_t *buf = mk_model(&o, &size);
    bitnet_model *m = (bitnet_model *)1;

    buf[3] = 'X';
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_FORMAT);
    assert_null(m);
    assert_msg_has("magic");
    buf[3] = 'F';

    uint32_t v = 1;
    memcpy(buf + 4, &v, 4);
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_UNSUPPORTED);
    assert_msg_has("version 1");
    v = 4;
    memcpy(buf + 4, &v, 4);
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_UNSUPPORTED);
    assert_msg_has("version 4");
    v = 2;                              /* v2 has the same layout: accepted */
    memcpy(buf + 4, &v, 4);
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_OK);
    bitnet_model_free(m);
    v = 3;
    memcpy(buf + 4, &v, 4);

    uint64_t c, save;
    memcpy(&save, buf + 8, 8);
    c = 1ull << 40;
    memcpy(buf + 8, &c, 8);             /* n_tensors */
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_FORMAT);
    assert_msg_has("tensors");
    memcpy(buf + 8, &save, 8);
    memcpy(&save, buf + 16, 8);
    c = UINT64_MAX;
    memcpy(buf + 16, &c, 8);            /* n_kv */
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_FORMAT);
    assert_msg_has("keys");
    memcpy(buf + 16, &save, 8);

    /* truncated at every point of the metadata and at a stride after */
    for (size_t k = 0; k < size; k += k < 2048 ? 1 : 61) {
        m = (bitnet_model *)1;
        int rc = load_buf(buf, k, 0, &m);
        if (rc != BITNET_E_FORMAT)
            fail_msg("prefix %zu: rc %d (%s)", k, rc, bitnet_last_error());
        assert_null(m);
        assert_true(bitnet_last_error()[0] != '\0');
    }
    free(buf);
}

static void test_err_lengths(void **state)
{
    (void)state;
    mk o = { 0 };
    size_t size;
    uint8_t *buf = mk_model(&o, &size);
    bitnet_gguf *g;
    assert_int_equal(bitnet__gguf_parse(&g, buf, size), 0);
    bitnet_model *m;
    uint64_t big = 1ull << 50, save;

    /* a key's length beyond the file */
    uint8_t *kl = (uint8_t *)g->kv[1].key.ptr - 8;
    memcpy(&save, kl, 8);
    memcpy(kl, &big, 8);
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_FORMAT);
    assert_msg_has("key 1");
    memcpy(kl, &save, 8);

    /* a string value's length beyond the file */
    uint8_t *sl = (uint8_t *)g->kv[0].value;
    memcpy(&save, sl, 8);
    memcpy(sl, &big, 8);
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_FORMAT);
    assert_msg_has("general.architecture");
    memcpy(sl, &save, 8);

    /* a tensor name's length beyond the file */
    uint8_t *tl = (uint8_t *)g->tensors[2].name.ptr - 8;
    memcpy(&save, tl, 8);
    memcpy(tl, &big, 8);
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_FORMAT);
    assert_msg_has("tensor 2");
    memcpy(tl, &save, 8);

    /* dimension overflow: ne0 * ne1 beyond int64 */
    const bitnet_gguf_tensor *t = bitnet__gguf_tensor(g, "blk.0.attn_q.weight");
    uint8_t *ne = (uint8_t *)t->name.ptr + t->name.len + 4;
    uint8_t saved[16];
    memcpy(saved, ne, 16);
    uint64_t huge = 1ull << 40;
    memcpy(ne, &huge, 8);
    memcpy(ne + 8, &huge, 8);
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_FORMAT);
    assert_msg_has("blk.0.attn_q.weight");
    assert_msg_has("overflow");
    /* a size that overflows nothing but is far beyond the file */
    uint64_t mid = 1ull << 24;
    memcpy(ne, &mid, 8);
    memcpy(ne + 8, &mid, 8);
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_FORMAT);
    assert_msg_has("blk.0.attn_q.weight");
    memcpy(ne, saved, 16);

    /* too many dimensions */
    uint32_t nd = 5, snd;
    uint8_t *ndp = (uint8_t *)t->name.ptr + t->name.len;
    memcpy(&snd, ndp, 4);
    memcpy(ndp, &nd, 4);
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_FORMAT);
    assert_msg_has("blk.0.attn_q.weight");
    memcpy(ndp, &snd, 4);

    /* offsets: outside the data section, misaligned, overlapping */
    uint8_t *offp = ne + 8 * t->n_dims + 4;
    uint64_t off, soff;
    memcpy(&soff, offp, 8);
    off = (uint64_t)size;
    memcpy(offp, &off, 8);
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_FORMAT);
    assert_msg_has("blk.0.attn_q.weight");
    assert_msg_has("outside");
    off = soff + 4;
    memcpy(offp, &off, 8);
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_FORMAT);
    assert_msg_has("blk.0.attn_q.weight");
    assert_msg_has("alignment");
    const bitnet_gguf_tensor *t2 = bitnet__gguf_tensor(g, "blk.0.attn_k.weight");
    off = t2->offset;
    memcpy(offp, &off, 8);
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_FORMAT);
    assert_msg_has("overlap");
    assert_msg_has("blk.0.attn_q.weight");
    memcpy(offp, &soff, 8);

    /* duplicate tensor names */
    uint8_t *nm = (uint8_t *)t2->name.ptr;
    nm[t2->name.len - 8] = 'q';       /* attn_k -> attn_q */
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_E_FORMAT);
    assert_msg_has("duplicate tensor name 'blk.0.attn_q.weight'");
    nm[t2->name.len - 8] = 'k';

    /* a bad general.alignment and a nested array are refused */
    assert_int_equal(load_buf(buf, size, 0, &m), BITNET_OK);
    bitnet_model_free(m);
    bitnet__gguf_free(g);
    free(buf);

    bitnet_gguf_writer *w;
    assert_int_equal(bitnet__gguf_writer_create(&w, 32), 0);
    assert_int_equal(bitnet__gguf_w_u32(w, "general.alignment", 48), 0);
    uint8_t *b2;
    size_t s2;
    assert_int_equal(bitnet__gguf_w_buffer(w, &b2, &s2), 0);
    assert_int_equal(load_buf(b2, s2, BITNET_MODEL_VOCAB_ONLY, &m), BITNET_E_FORMAT);
    assert_msg_has("general.alignment");
    free(b2);
    bitnet__gguf_writer_free(w);

    assert_int_equal(bitnet__gguf_writer_create(&w, 32), 0);
    uint8_t inner[4 + 8] = { GGUF_VT_U8, 0, 0, 0, 0 };
    assert_int_equal(bitnet__gguf_w_raw(w, "x.nested", GGUF_VT_ARR, GGUF_VT_ARR, 1,
                                        inner, sizeof(inner)), 0);
    assert_int_equal(bitnet__gguf_w_buffer(w, &b2, &s2), 0);
    assert_int_equal(load_buf(b2, s2, BITNET_MODEL_VOCAB_ONLY, &m), BITNET_E_FORMAT);
    assert_msg_has("x.nested");
    assert_msg_has("nested");
    free(b2);
    bitnet__gguf_writer_free(w);

    /* an array count beyond the file */
    assert_int_equal(bitnet__gguf_writer_create(&w, 32), 0);
    int32_t one = 1;
    assert_int_equal(bitnet__gguf_w_raw(w, "x.arr", GGUF_VT_ARR, GGUF_VT_I32, 1,
                                        &one, 4), 0);
    assert_int_equal(bitnet__gguf_w_buffer(w, &b2, &s2), 0);
    uint8_t *p = memmem(b2, s2, "x.arr", 5);
    assert_non_null(p);
    memcpy(p + 5 + 4 + 4, &big, 8);
    assert_int_equal(load_buf(b2, s2, BITNET_MODEL_VOCAB_ONLY, &m), BITNET_E_FORMAT);
    assert_msg_has("x.arr");
    free(b2);
    bitnet__gguf_writer_free(w);
}

static void expect_fail(const mk *o, int code, const char *n1, const char *n2)
{
    size_t size;
    uint8_t *buf = mk_model(o, &size);
    bitnet_model *m = (bitnet_model *)1;
    int rc = load_buf(buf, size, 0, &m);
    if (rc != code)
        fail_msg("rc %d, expected %d (%s)", rc, code, bitnet_last_error());
    assert_null(m);
    if (n1) assert_msg_has(n1);
    if (n2) assert_msg_has(n2);
    free(buf);
}

static void test_err_model(void **state)
{
    (void)state;
    mk o;
    memset(&o, 0, sizeof(o));
    o.skip_tensor = "blk.0.ffn_up.weight";
    expect_fail(&o, BITNET_E_FORMAT, "missing tensor 'blk.0.ffn_up.weight'", NULL);
    memset(&o, 0, sizeof(o));
    o.skip_tensor = "blk.0.ffn_sub_norm.weight";
    expect_fail(&o, BITNET_E_FORMAT, "blk.0.ffn_sub_norm.weight", NULL);
    memset(&o, 0, sizeof(o));
    o.bad_shape = "blk.0.attn_k.weight";
    expect_fail(&o, BITNET_E_FORMAT, "blk.0.attn_k.weight", "shape");
    memset(&o, 0, sizeof(o));
    o.bad_shape = "output_norm.weight";
    expect_fail(&o, BITNET_E_FORMAT, "output_norm.weight", "shape");
    memset(&o, 0, sizeof(o));
    o.arch = "gpt-neox";
    expect_fail(&o, BITNET_E_UNSUPPORTED, "general.architecture", "gpt-neox");
    memset(&o, 0, sizeof(o));
    o.type_tensor = "blk.0.attn_v.weight";
    o.type = 99;
    expect_fail(&o, BITNET_E_UNSUPPORTED, "blk.0.attn_v.weight", "99");
    o.type = 39;
    expect_fail(&o, BITNET_E_UNSUPPORTED, "blk.0.attn_v.weight", "ambiguous");
    o.type = GGML_T_Q8_0;          /* a known type that is not allowed here */
    expect_fail(&o, BITNET_E_UNSUPPORTED, "blk.0.attn_v.weight", "q8_0");
    o.type = GGML_T_Q4_K;          /* known, but 128 columns do not fit it */
    expect_fail(&o, BITNET_E_FORMAT, "blk.0.attn_v.weight", "q4_k");
    o.type_tensor = "token_embd.weight";
    o.type = GGML_T_I2_S;
    expect_fail(&o, BITNET_E_UNSUPPORTED, "token_embd.weight", "i2_s");
    memset(&o, 0, sizeof(o));
    o.skip_key = "attention.layer_norm_rms_epsilon";
    expect_fail(&o, BITNET_E_FORMAT, "bitnet-b1.58.attention.layer_norm_rms_epsilon", NULL);
    memset(&o, 0, sizeof(o));
    o.skip_key = "block_count";
    expect_fail(&o, BITNET_E_FORMAT, "bitnet-b1.58.block_count", NULL);
    memset(&o, 0, sizeof(o));
    o.dup_key = 1;
    expect_fail(&o, BITNET_E_FORMAT, "duplicate key 'general.dupkeyA'", NULL);
    memset(&o, 0, sizeof(o));
    o.i2s_code3 = 1;
    expect_fail(&o, BITNET_E_FORMAT, "blk.0.attn_q.weight", "code 3");
    /* and the unbroken model loads, with every field as written */
    memset(&o, 0, sizeof(o));
    size_t size;
    uint8_t *buf = mk_model(&o, &size);
    bitnet_model *m;
    assert_int_equal(load_buf(buf, size, 0, &m), 0);
    assert_int_equal(m->n_embd, ME);
    assert_int_equal(m->n_ff, MF);
    assert_int_equal(m->n_vocab, MV);
    assert_int_equal(m->n_head, MH);
    assert_int_equal(m->n_head_kv, MHKV);
    assert_int_equal(m->n_rot, ME / MH);
    assert_true(m->rope_base == 10000.0f);     /* default */
    assert_null(m->vocab);                     /* no tokenizer keys */
    assert_true(m->layers[0].wq.scale == 0.5f);
    bitnet_model_free(m);
    free(buf);
}

static void test_args(void **state)
{
    (void)state;
    bitnet_model *m;
    assert_int_equal(bitnet_model_load_file(NULL, "x", NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_model_load_file(&m, NULL, NULL), BITNET_E_INVALID_ARG);
    assert_null(m);
    assert_int_equal(bitnet_model_load_buffer(&m, NULL, 10, NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_model_load_file(&m, "/nonexistent/x.gguf", NULL), BITNET_E_IO);
    assert_msg_has("/nonexistent/x.gguf");
    bitnet_model_params p;
    bitnet_model_params_init(&p);
    p.struct_size = 2;
    assert_int_equal(bitnet_model_load_buffer(&m, "GGUF", 4, &p), BITNET_E_INVALID_ARG);
    assert_null(bitnet_model_arch(NULL));
    assert_int_equal(bitnet_model_n_vocab(NULL), 0);
    assert_int_equal(bitnet_model_n_embd(NULL), 0);
    assert_int_equal(bitnet_model_n_layer(NULL), 0);
    assert_int_equal(bitnet_model_n_ctx_train(NULL), 0);
    bitnet_model_free(NULL);

    mk o = { 0 };
    size_t size;
    uint8_t *buf = mk_model(&o, &size);
    assert_int_equal(load_buf(buf, size, 0, &m), 0);
    char out[64];
    size_t n;
    assert_int_equal(bitnet_model_meta(m, "general.architecture", out, sizeof(out), &n), 0);
    assert_string_equal(out, "bitnet-b1.58");
    assert_int_equal(n, 12);
    assert_int_equal(bitnet_model_meta(m, "general.architecture", out, 5, &n),
                     BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, 12);
    assert_int_equal(bitnet_model_meta(m, "general.architecture", NULL, 0, &n),
                     BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(bitnet_model_meta(m, "bitnet-b1.58.block_count", out, sizeof(out), &n), 0);
    assert_string_equal(out, "1");
    assert_int_equal(bitnet_model_meta(m, "no.such.key", out, sizeof(out), &n),
                     BITNET_E_NOT_FOUND);
    assert_int_equal(bitnet_model_meta(m, NULL, out, sizeof(out), &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_model_meta(NULL, "x", out, sizeof(out), &n), BITNET_E_INVALID_ARG);
    bitnet_model_free(m);
    free(buf);
}

static int n_progress;
static float last_progress;
static int progress_cb(void *user, float p)
{
    int stop_after = *(int *)user;
    if (p < last_progress) fail_msg("progress went back from %f to %f",
                                    (double)last_progress, (double)p);
    last_progress = p;
    return ++n_progress > stop_after;
}

static void test_progress(void **state)
{
    (void)state;
    mk o = { 0 };
    size_t size;
    uint8_t *buf = mk_model(&o, &size);
    bitnet_model_params p;
    bitnet_model_params_init(&p);
    int stop = 1000;
    p.progress_fn = progress_cb;
    p.progress_user = &stop;
    bitnet_model *m;
    n_progress = 0;
    last_progress = 0.0f;
    assert_int_equal(bitnet_model_load_buffer(&m, buf, size, &p), 0);
    assert_true(n_progress > 5);
    assert_true(last_progress == 1.0f);
    bitnet_model_free(m);
    stop = 3;
    n_progress = 0;
    last_progress = 0.0f;
    assert_int_equal(bitnet_model_load_buffer(&m, buf, size, &p), BITNET_E_ABORTED);
    assert_null(m);
    free(buf);
}

/* ---------------------------------------------------------------------- */
/* decoding rules                                                         */

static void test_scale_tensor(void **state)
{
    (void)state;
    mk o = { 0 };
    o.arch = "bitnet";
    o.with_scale = 1;
    size_t size;
    uint8_t *buf = mk_model(&o, &size);
    bitnet_model *m;
    assert_int_equal(load_buf(buf, size, 0, &m), 0);
    assert_int_equal(m->arch, BITNET_ARCH_BITNET);
    assert_int_equal(m->ffn_act, BITNET_FFN_SILU);
    assert_true(m->layers[0].wq.scale == 1.0f);    /* 0.5 * 2 */
    assert_true(m->layers[0].wk.scale == 0.5f);
    bitnet_model_free(m);
    free(buf);
}

static bitnet_tensor_desc fake_tensor(uint32_t type, const void *data,
                                      uint64_t ne0, uint64_t ne1)
{
    bitnet_tensor_desc t;
    memset(&t, 0, sizeof(t));
    t.name.ptr = "test.weight";
    t.name.len = 11;
    t.n_dims = 2;
    t.ne[0] = ne0; t.ne[1] = ne1; t.ne[2] = t.ne[3] = 1;
    t.type = type;
    t.data = data;
    t.nbytes = bitnet__ggml_nbytes(type, ne0, ne1);
    return t;
}

static void test_absmean(void **state)
{
    (void)state;
    enum { N = 512 };
    float w[N];
    int8_t t[N];
    float s;
    /* exactly {-c, 0, c}: kept */
    for (int i = 0; i < N; i++) w[i] = (float)(i % 3 - 1) * 0.0371f;
    bitnet_tensor_desc ft = fake_tensor(GGML_T_F32, w, 256, 2);
    assert_int_equal(bitnet__ternary_decode(&ft, t, &s), 0);
    assert_true(s == 0.0371f);
    for (int i = 0; i < N; i++) assert_int_equal(t[i], i % 3 - 1);
    /* general values: absmean rule, computed here independently */
    double sum = 0;
    for (int i = 0; i < N; i++) {
        w[i] = sinf((float)i * 0.37f) * 0.05f;
        sum += fabs((double)w[i]);
    }
    float mean = (float)(sum / N);
    assert_int_equal(bitnet__ternary_decode(&ft, t, &s), 0);
    assert_true(s == mean);
    for (int i = 0; i < N; i++) {
        float q = w[i] / mean;
        int e = q >= 0.5f ? 1 : q <= -0.5f ? -1 : 0;
        if (fabsf(q) == 0.5f) e = 0;                  /* half to even */
        assert_int_equal(t[i], e);
    }
    /* all zero: scale clamps to 1e-5 */
    memset(w, 0, sizeof(w));
    assert_int_equal(bitnet__ternary_decode(&ft, t, &s), 0);
    assert_true(s == 1e-5f);
    /* non-finite: refused naming the tensor */
    w[7] = INFINITY;
    assert_int_equal(bitnet__ternary_decode(&ft, t, &s), BITNET_E_FORMAT);
    assert_msg_has("test.weight");
    /* F16 and BF16 of ternary values keep them too */
    uint16_t h[N];
    for (int i = 0; i < N; i++) h[i] = bitnet__fp32_to_fp16((float)(i % 3 - 1) * 0.25f);
    ft = fake_tensor(GGML_T_F16, h, 256, 2);
    assert_int_equal(bitnet__ternary_decode(&ft, t, &s), 0);
    assert_true(s == 0.25f);
    for (int i = 0; i < N; i++) assert_int_equal(t[i], i % 3 - 1);
    for (int i = 0; i < N; i++) h[i] = (uint16_t)(i % 3 == 0 ? 0xbe80 : i % 3 == 1 ? 0 : 0x3e80);
    ft = fake_tensor(GGML_T_BF16, h, 256, 2);
    assert_int_equal(bitnet__ternary_decode(&ft, t, &s), 0);
    assert_true(s == 0.25f);
    for (int i = 0; i < N; i++) assert_int_equal(t[i], i % 3 - 1);
}

/* A tensor large enough to be cut among threads (3 Mi BF16 values): the
 * same scale as the rule of docs/formats.md computed here (chunk sums of
 * 16384 elements in double, added in order), the same values, and a
 * non-finite value far in refused with its index. */
static void test_absmean_large(void **state)
{
    (void)state;
    enum { N = 3 << 20, CH = 16384 };
    uint16_t *h = malloc(2 * (size_t)N);
    int8_t *t = malloc(N);
    assert_non_null(h);
    assert_non_null(t);
    uint64_t x = 88172645463325252ull;
    double sum = 0, part = 0;
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        float f = ((float)(x >> 40) / 16777216.0f - 0.5f) * 0.1f;
        uint32_t u;
        memcpy(&u, &f, 4);
        h[i] = (uint16_t)(u >> 16);                    /* truncated to BF16 */
        u = (uint32_t)h[i] << 16;
        memcpy(&f, &u, 4);
        part += fabs((double)f);
        if ((i + 1) % CH == 0 || i + 1 == N) {
            sum += part;
            part = 0;
        }
    }
    const float mean = (float)(sum / N);
    bitnet_tensor_desc ft = fake_tensor(GGML_T_BF16, h, 3072, 1024);
    float s;
    assert_int_equal(bitnet__ternary_decode(&ft, t, &s), 0);
    assert_true(s == mean);
    for (size_t i = 0; i < N; i++) {
        uint32_t u = (uint32_t)h[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        float q = f / mean;
        int e = q > 0.5f ? 1 : q < -0.5f ? -1 : 0;
        if (t[i] != e) fail_msg("element %zu: %d, want %d", i, t[i], e);
    }
    h[2500001] = 0x7fc0;                                /* a BF16 NaN */
    assert_int_equal(bitnet__ternary_decode(&ft, t, &s), BITNET_E_FORMAT);
    assert_msg_has("element 2500001");
    free(h);
    free(t);
}

static void test_tq_scales(void **state)
{
    (void)state;
    /* two TQ2_0 blocks: codes cycle 0,1,2; equal d -> that d */
    uint8_t b[2 * 66];
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < 64; j++) b[66 * k + j] = (uint8_t)(0x24 + j % 2);  /* 0,1,2,0 / 1,1,2,0 */
        uint16_t d = bitnet__fp32_to_fp16(0.125f);
        memcpy(b + 66 * k + 64, &d, 2);
    }
    int8_t t[512];
    float s;
    bitnet_tensor_desc ft = fake_tensor(GGML_T_TQ2_0, b, 256, 2);
    assert_int_equal(bitnet__ternary_decode(&ft, t, &s), 0);
    assert_true(s == 0.125f);
    /* element 128h + 32l + m is bits 2l of byte 32h + m */
    for (int i = 0; i < 512; i++) {
        int blk = i / 256, e = i % 256, h = e / 128, l = (e % 128) / 32, m = e % 32;
        int code = (b[66 * blk + 32 * h + m] >> (2 * l)) & 3;
        assert_int_equal(t[i], code - 1);
    }
    /* different d per block: dequantised, absmean */
    uint16_t d2 = bitnet__fp32_to_fp16(0.5f);
    memcpy(b + 66 + 64, &d2, 2);
    assert_int_equal(bitnet__ternary_decode(&ft, t, &s), 0);
    double sum = 0;
    int8_t t0[512];
    float s0;
    uint16_t d1 = bitnet__fp32_to_fp16(0.125f);
    memcpy(b + 66 + 64, &d1, 2);
    assert_int_equal(bitnet__ternary_decode(&ft, t0, &s0), 0);
    for (int i = 0; i < 512; i++) sum += fabs(t0[i] * (i < 256 ? 0.125 : 0.5));
    float mean = (float)(sum / 512);
    assert_true(s == mean);
    for (int i = 0; i < 512; i++) {
        float w = (float)t0[i] * (i < 256 ? 0.125f : 0.5f);
        float q = nearbyintf(w / mean);
        assert_int_equal(t[i], q > 1 ? 1 : q < -1 ? -1 : (int)q);
    }
    /* code 3 is refused */
    b[3] = 0xff;
    assert_int_equal(bitnet__ternary_decode(&ft, t, &s), BITNET_E_FORMAT);
    assert_msg_has("test.weight");
}

/* ---------------------------------------------------------------------- */
/* quantised heads of synthetic files                                     */

/* The model's head (as the file has it, or converted at load by
 * head_type) against float dot products of the file's rows, through the
 * reference kernels. The kernels themselves are tested in tests/kernels. */
static double head_max_err(const bitnet_model *m, const bitnet_head *h, double *mag)
{
    bitnet_kernels ref;
    bitnet__kernels_init(&ref, 0);
    const bitnet_fmat *o = &m->output;
    float *row = malloc(sizeof(float) * (size_t)o->cols);
    float *x = malloc(sizeof(float) * (size_t)o->cols);
    float *y = malloc(sizeof(float) * (size_t)o->rows);
    void *xq = bitnet__aalloc(h->xq_size, 64);
    for (int32_t j = 0; j < o->cols; j++) x[j] = sinf((float)j * 0.7f + 0.3f);
    bitnet__head_prepare(&ref, h, x, xq);
    bitnet__head_rows(&ref, h, 3, o->rows, xq, 1, y, 0);
    double err = 0, rms = 0;
    *mag = 0;
    for (int32_t r = 3; r < o->rows; r++) {
        bitnet__fmat_row(o, r, row);
        double e = 0;
        for (int32_t j = 0; j < o->cols; j++) {
            e += (double)row[j] * x[j];
            rms += (double)row[j] * row[j];
        }
        err = fmax(err, fabs(e - y[r - 3]));
        *mag = fmax(*mag, fabs(e));
    }
    /* the embedding is N(0, 0.02^2): rows are not all zero */
    assert_true(sqrt(rms / ((double)(o->rows - 3) * o->cols)) > 0.01);
    free(row); free(x); free(y); bitnet__afree(xq);
    return err;
}

/* A head in the file's own format from a mapped file: an F16 head is
 * copied into a buffer of its own (lib/model/load.c, head_to_own_pages)
 * unless huge pages are off; every other format is read in place. Either
 * way the bytes are the file's. */
static void check_head_place(const bitnet_model *m)
{
    assert_memory_equal(m->head.w, m->output.data, (size_t)m->head.rows * m->head.row_bytes);
    if (m->head.fmt == BITNET_HF_F16 && bitnet__huge_pages()) {
        assert_true(m->head.w != m->output.data);
        assert_ptr_equal(m->head.w, m->head_owned);
    } else {
        assert_ptr_equal(m->head.w, m->output.data);
    }
}

static void test_synth_embd(void **state)
{
    (void)state;
    static const int32_t types[] = { BITNET_TYPE_F16, BITNET_TYPE_F32,
        BITNET_TYPE_BF16, BITNET_TYPE_Q8_0, BITNET_TYPE_Q4_0, BITNET_TYPE_Q6_K };
    for (size_t i = 0; i < 6; i++) {
        bitnet_synth_params sp;
        bitnet_synth_params_init(&sp);
        sp.n_layer = 1;
        sp.n_vocab = 270;
        sp.embd_type = types[i];
        bitnet_model *m = bt_synth_load(&sp, "embd");
        assert_int_equal((int)m->tok_embd.type, types[i]);
        assert_int_equal(m->tok_embd.rows, 270);
        /* the default head is the file's */
        assert_int_equal(m->head.fmt, bitnet__head_fmt_of_type((uint32_t)types[i]));
        check_head_place(m);
        double mag, err = head_max_err(m, &m->head, &mag);
        /* float heads are exact up to float rounding; quantised x costs
         * well under 2 % of the largest logit */
        double tol = (types[i] == BITNET_TYPE_Q8_0 || types[i] == BITNET_TYPE_Q4_0 ||
                      types[i] == BITNET_TYPE_Q6_K) ? 0.02 * mag : 1e-4 * mag;
        if (err > tol) fail_msg("type %d: max err %g (max |y| %g)", types[i], err, mag);
        /* int8 head: per-row scale, close to the rows */
        const bitnet_head *hi;
        float *row = malloc(sizeof(float) * (size_t)m->output.cols);
        assert_int_equal(bitnet__model_head_i8(m, &hi), 0);
        assert_int_equal(hi->fmt, BITNET_HF_I8);
        assert_int_equal(hi->row_bytes % BITNET_KPAD, 0);
        bitnet__fmat_row(&m->output, 5, row);
        const int8_t *w5 = (const int8_t *)hi->w + 5 * hi->row_bytes;
        for (int32_t j = 0; j < m->output.cols; j++)
            assert_true(fabsf((float)w5[j] * hi->scale[5] - row[j]) <= 0.5001f * hi->scale[5]);
        err = head_max_err(m, hi, &mag);
        if (err > 0.02 * mag) fail_msg("type %d, int8 head: max err %g (max |y| %g)", types[i], err, mag);
        free(row);
        bitnet_model_free(m);
    }
}

/* bitnet_model_params.head_type: each choice from an F16 file, and from a
 * Q6_K file (taken as it is, or converted); bad values refused. */
static void test_head_type(void **state)
{
    (void)state;
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.n_layer = 1;
    sp.n_vocab = 300;
    sp.n_embd = 256;
    sp.n_ff = 256;
    static const int32_t ftypes[] = { BITNET_TYPE_F16, BITNET_TYPE_Q6_K };
    for (int f = 0; f < 2; f++) {
        sp.embd_type = ftypes[f];
        char path[256];
        snprintf(path, sizeof(path), "%s", tmpfile_name("headtype"));
        assert_int_equal(bitnet_synth_write(path, &sp), 0);
        static const int32_t ht[] = { BITNET_HEAD_AUTO, BITNET_HEAD_F16, BITNET_HEAD_INT8,
                                      BITNET_HEAD_Q8_0, BITNET_HEAD_Q6_K };
        static const int fmts[] = { -1, BITNET_HF_F16, BITNET_HF_I8, BITNET_HF_Q8_0, BITNET_HF_Q6_K };
        for (int i = 0; i < 5; i++) {
            bitnet_model_params p;
            bitnet_model_params_init(&p);
            p.head_type = ht[i];
            bitnet_model *m;
            assert_int_equal(bitnet_model_load_file(&m, path, &p), 0);
            const int want = i == 0 ? bitnet__head_fmt_of_type((uint32_t)ftypes[f]) : fmts[i];
            assert_int_equal(m->head.fmt, want);
            /* the file's own format: in place, or the F16 head's copy */
            if (want == bitnet__head_fmt_of_type((uint32_t)ftypes[f]))
                check_head_place(m);
            double mag, err = head_max_err(m, &m->head, &mag);
            const double tol = want == BITNET_HF_F16 ? 2e-3 : 0.03;
            if (err > tol * mag)
                fail_msg("file %d head_type %d: max err %g (max |y| %g)", ftypes[f], ht[i], err, mag);
            bitnet_model_free(m);
        }
        bitnet_model_params p;
        bitnet_model_params_init(&p);
        bitnet_model *m = (bitnet_model *)1;
        p.head_type = 5;
        assert_int_equal(bitnet_model_load_file(&m, path, &p), BITNET_E_INVALID_ARG);
        assert_null(m);
        assert_non_null(strstr(bitnet_last_error(), "head_type"));
        p.head_type = -1;
        assert_int_equal(bitnet_model_load_file(&m, path, &p), BITNET_E_INVALID_ARG);
        unlink(path);
    }
    /* n_embd not a multiple of 256: Q6_K refused with a message, Q8_0 fine */
    sp.embd_type = BITNET_TYPE_F16;
    sp.n_embd = 384;
    sp.n_head = 6; sp.n_head_kv = 3;
    char path[256];
    snprintf(path, sizeof(path), "%s", tmpfile_name("headtype2"));
    assert_int_equal(bitnet_synth_write(path, &sp), 0);
    bitnet_model_params p;
    bitnet_model_params_init(&p);
    bitnet_model *m;
    p.head_type = BITNET_HEAD_Q6_K;
    assert_int_equal(bitnet_model_load_file(&m, path, &p), BITNET_E_UNSUPPORTED);
    assert_non_null(strstr(bitnet_last_error(), "Q6_K"));
    p.head_type = BITNET_HEAD_Q8_0;
    assert_int_equal(bitnet_model_load_file(&m, path, &p), 0);
    assert_int_equal(m->head.fmt, BITNET_HF_Q8_0);
    bitnet_model_free(m);
    unlink(path);
}

/* A synthetic model of the given shape (the synth defaults otherwise)
 * written to a temporary file named after tag; path receives its name. */
static void write_shape(char *path, size_t path_size, const char *tag, int32_t n_layer,
                        int32_t n_vocab, int32_t n_embd, int32_t n_ff)
{
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.n_layer = n_layer;
    sp.n_vocab = n_vocab;
    sp.n_embd = n_embd;
    sp.n_ff = n_ff;
    sp.embd_type = BITNET_TYPE_F16;
    snprintf(path, path_size, "%s", tmpfile_name(tag));
    assert_int_equal(bitnet_synth_write(path, &sp), 0);
}

/* A head converted at load with enough rows to be cut among threads: every
 * row equals the row quantised on its own (so the thread count cannot
 * matter). */
static void test_head_convert_rows(void **state)
{
    (void)state;
    char path[256];
    write_shape(path, sizeof(path), "headrows", 1, 4500, 256, 256);
    static const int32_t ht[] = { BITNET_HEAD_INT8, BITNET_HEAD_Q8_0, BITNET_HEAD_Q6_K };
    float row[256];
    uint8_t want[512];
    for (int i = 0; i < 3; i++) {
        bitnet_model_params p;
        bitnet_model_params_init(&p);
        p.head_type = ht[i];
        bitnet_model *m;
        assert_int_equal(bitnet_model_load_file(&m, path, &p), 0);
        const bitnet_head *h = &m->head;
        assert_int_equal(h->rows, 4500);
        for (int32_t r = 0; r < h->rows; r++) {
            bitnet__fmat_row(&m->output, r, row);
            const uint8_t *got = h->w + (size_t)r * h->row_bytes;
            if (h->fmt == BITNET_HF_I8) {
                const float sc = bitnet__head_quant_row_i8(row, 256, (int8_t *)want);
                assert_memory_equal(&sc, &h->scale[r], sizeof(float));
                assert_memory_equal(want, got, 256);
            } else {
                bitnet__head_quant_row(h->fmt, row, 256, want);
                assert_memory_equal(want, got, h->row_bytes);
            }
        }
        bitnet_model_free(m);
    }
    unlink(path);
}

/* The resident size (kB) of the mapping that holds p, from
 * /proc/self/smaps; -1 where there is no such file (not Linux). */
/* a field of the /proc/self/smaps entry of the mapping holding p (kB),
 * -1 where there is no such file or entry */
static long mapping_field_kb(const void *p, const char *field)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int inside = 0;
    long rss = -1;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        } else if (inside && strncmp(line, field, strlen(field)) == 0) {
            rss = strtol(line + strlen(field), NULL, 10);
            break;
        }
    }
    fclose(f);
    return rss;
}

static long mapping_rss_kb(const void *p)
{
    return mapping_field_kb(p, "Rss:");
}

/* The packed weights live in a 2 MiB-aligned mapping advised for huge pages
 * before it is written, and large aligned buffers (converted heads, context
 * buffers; not the KV cache, tests/eval) start on a 2 MiB boundary too. Whether the kernel gives huge pages is its
 * choice (transparent_hugepage may be "never"), so that part is reported,
 * not asserted. */
static void test_weights_huge_aligned(void **state)
{
    (void)state;
    char path[256];
    write_shape(path, sizeof(path), "huge", 4, 4000, 1024, 2816);
    bitnet_model_params p;
    bitnet_model_params_init(&p);
    bitnet_model *m;
    assert_int_equal(bitnet_model_load_file(&m, path, &p), 0);
    assert_true(m->arena.size > BITNET_HUGE_ALIGN);
    if (m->arena.mapped)
        assert_int_equal((uintptr_t)m->arena.base % BITNET_HUGE_ALIGN, 0);
    const long huge_kb = mapping_field_kb(m->arena.base, "AnonHugePages:");
    print_message("weights: %zu kB, on huge pages: %ld kB\n", m->arena.size / 1024, huge_kb);
    /* BITNET_HUGE_PAGES=0 (the gguf-no-huge-pages test): no advice, so with
     * the kernel in "madvise" mode none of the weights is on huge pages */
    const char *env = getenv("BITNET_HUGE_PAGES");
    char mode[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
        if (!fgets(mode, sizeof(mode), f)) mode[0] = '\0';
        fclose(f);
    }
    if (env && strcmp(env, "0") == 0 && strstr(mode, "[madvise]") && huge_kb >= 0)
        assert_int_equal(huge_kb, 0);
    bitnet_model_free(m);
    unlink(path);

    uint8_t *a = bitnet__aalloc(BITNET_HUGE_MIN + 123, 64);
    assert_non_null(a);
    assert_int_equal((uintptr_t)a % BITNET_HUGE_ALIGN, 0);
    memset(a, 0x5a, BITNET_HUGE_MIN + 123);
    assert_int_equal(a[BITNET_HUGE_MIN + 122], 0x5a);
    bitnet__afree(a);
    uint8_t *b = bitnet__aalloc(1000, 64);
    assert_non_null(b);
    assert_int_equal((uintptr_t)b % 64, 0);
    bitnet__afree(b);
}

/* A mapped file's pages leave the process once the loader is done with
 * them: the ternary weights after their copy into the kernel layout, the
 * F16 head after its conversion (the data stays readable: rows fault back
 * in). Read in place, the F16 head stays resident. */
static void test_mapped_pages_dropped(void **state)
{
    (void)state;
    char path[256];
    write_shape(path, sizeof(path), "drop", 2, 8000, 256, 512);
    bitnet_model_params p;
    bitnet_model_params_init(&p);
    bitnet_model *m;
    assert_int_equal(bitnet_model_load_file(&m, path, &p), 0);
    const long f16_kb = (long)((size_t)m->output.rows * m->output.row_bytes / 1024);
    const long in_place = mapping_rss_kb(m->output.data);
    if (in_place < 0) {
        bitnet_model_free(m);
        unlink(path);
        skip();
    }
    if (bitnet__huge_pages()) {
        /* the F16 head was copied into its own pages, the file's went */
        if (!(in_place < f16_kb / 4))
            fail_msg("mapping resident %ld kB after the head's copy (F16 head %ld kB)",
                     in_place, f16_kb);
        assert_true(m->head.w != m->output.data);
        /* the file has no output.weight: the embedding is the head's
         * matrix, and its rows are looked up in the copy (no page of the
         * file comes back per token) */
        bitnet_tensor_desc td;
        assert_true(m->tied_head);
        assert_int_not_equal(bitnet__source_tensor(m->src, "output.weight", &td), BITNET_OK);
        assert_ptr_equal(m->tok_embd.data, m->head.w);
        float row[256];
        assert_int_equal(m->tok_embd.cols, 256);
        bitnet__fmat_row(&m->tok_embd, 4321, row);
        assert_int_equal(mapping_rss_kb(m->output.data), in_place);
        assert_memory_equal(m->tok_embd.data, m->output.data,
                            (size_t)m->output.rows * m->output.row_bytes);
    } else {
        assert_true(in_place >= f16_kb);                /* the head reads it */
    }
    float want[256], got[256];
    bitnet__fmat_row(&m->tok_embd, 4321, want);
    bitnet_model_free(m);

    p.head_type = BITNET_HEAD_INT8;
    assert_int_equal(bitnet_model_load_file(&m, path, &p), 0);
    const long dropped = mapping_rss_kb(m->output.data);
    /* what is left: the header and vocabulary, the fingerprint's samples */
    if (!(dropped < f16_kb / 4))
        fail_msg("mapping resident %ld kB after the conversion (F16 head %ld kB)",
                 dropped, f16_kb);
    bitnet__fmat_row(&m->tok_embd, 4321, got);          /* faults back in */
    assert_memory_equal(want, got, sizeof(want));
    bitnet_model_free(m);
    unlink(path);
}

/* ---------------------------------------------------------------------- */
/* the external files                                                     */

static bitnet_model *load_shared(const char *name, uint32_t flags)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", bt_shared_dir(), name);
    bitnet_model_params p;
    bitnet_model_params_init(&p);
    p.flags = flags;
    bitnet_model *m;
    int rc = bitnet_model_load_file(&m, path, &p);
    if (rc) fail_msg("%s: %s", path, bitnet_last_error());
    return m;
}

static void check_hp(const bitnet_model *m, const char *arch, int embd, int layers,
                     int ff, int vocab, uint32_t embd_type)
{
    assert_string_equal(bitnet_model_arch(m), arch);
    assert_int_equal(m->n_embd, embd);
    assert_int_equal(m->n_layer, layers);
    assert_int_equal(m->n_ff, ff);
    assert_int_equal(m->n_head, 4);
    assert_int_equal(m->n_head_kv, 2);
    assert_int_equal(m->n_rot, embd / 4);
    assert_int_equal(m->n_vocab, vocab);
    assert_int_equal(m->n_ctx_train, 4096);
    assert_true(m->norm_eps == 1e-5f);
    assert_true(m->rope_base == 500000.0f);
    assert_int_equal(m->rope_neox, 1);
    assert_int_equal(m->tok_embd.type, embd_type);
    assert_true(m->tied_head);
    assert_memory_equal(m->output.data, m->tok_embd.data,
                        (size_t)m->output.rows * m->output.row_bytes);
    assert_non_null(m->layers[0].attn_sub_norm);
}

static void test_shared_models(void **state)
{
    (void)state;
    if (!bt_shared_dir())
        BT_SKIP("BITNET_SHARED_DATA not set: skipping the external model files");
    bitnet_model *f16 = load_shared("models/b158-f16.gguf", 0);
    bitnet_model *i2s = load_shared("models/b158-i2s.gguf", 0);
    check_hp(f16, "bitnet-b1.58", 256, 4, 768, 2003, GGML_T_F16);
    check_hp(i2s, "bitnet-b1.58", 256, 4, 768, 2003, GGML_T_F16);
    assert_int_equal(f16->ffn_act, BITNET_FFN_RELU2);
    bt_assert_same_weights(f16, i2s);
    /* and through the decoder, tensor by tensor */
    for (int l = 0; l < 4; l++) {
        static const char *nm[] = { "attn_q", "attn_k", "attn_v", "attn_output",
                                    "ffn_gate", "ffn_up", "ffn_down" };
        for (int k = 0; k < 7; k++) {
            char name[64];
            snprintf(name, sizeof(name), "blk.%d.%s.weight", l, nm[k]);
            bitnet_tensor_desc ad, bd;
            assert_int_equal(bitnet__source_tensor(f16->src, name, &ad), 0);
            assert_int_equal(bitnet__source_tensor(i2s->src, name, &bd), 0);
            const bitnet_tensor_desc *a = &ad, *b = &bd;
            assert_int_equal(a->type, GGML_T_F16);
            assert_int_equal(b->type, GGML_T_I2_S);
            size_t n = (size_t)(a->ne[0] * a->ne[1]);
            int8_t *ta = malloc(n), *tb = malloc(n);
            float sa, sb;
            assert_int_equal(bitnet__ternary_decode(a, ta, &sa), 0);
            assert_int_equal(bitnet__ternary_decode(b, tb, &sb), 0);
            assert_true(sa == sb);
            assert_memory_equal(ta, tb, n);
            /* the F16 values are exactly t * scale */
            for (size_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy(&h, a->data + 2 * i, 2);
                assert_true(bitnet__fp16_to_fp32(h) == (float)ta[i] * sa);
            }
            free(ta);
            free(tb);
        }
    }
    bitnet_model_free(f16);
    bitnet_model_free(i2s);

    bitnet_model *tq1 = load_shared("models/bitnet-tq1_0.gguf", 0);
    bitnet_model *tq2 = load_shared("models/bitnet-tq2_0.gguf", 0);
    check_hp(tq1, "bitnet", 256, 4, 768, 2003, GGML_T_F16);
    check_hp(tq2, "bitnet", 256, 4, 768, 2003, GGML_T_F16);
    assert_int_equal(tq1->ffn_act, BITNET_FFN_SILU);
    bt_assert_same_weights(tq1, tq2);
    bitnet_model_free(tq1);
    bitnet_model_free(tq2);

    bitnet_model *l3 = load_shared("models/b158-llama3vocab-i2s.gguf", 0);
    check_hp(l3, "bitnet-b1.58", 128, 2, 256, 128256, GGML_T_Q4_0);
    bitnet_model_free(l3);

    bitnet_model *v = load_shared("vocab/ggml-vocab-llama-bpe.gguf",
                                  BITNET_MODEL_VOCAB_ONLY);
    assert_null(v->layers);
    assert_int_equal(bitnet_model_n_vocab(v), 128256);
    bitnet_model_free(v);
    v = load_shared("vocab/ggml-vocab-llama-spm.gguf", BITNET_MODEL_VOCAB_ONLY);
    assert_null(v->layers);
    bitnet_model_free(v);
    char path[1024];
    snprintf(path, sizeof(path), "%s/vocab/ggml-vocab-gpt-2.gguf", bt_shared_dir());
    bitnet_model *m;
    assert_int_equal(bitnet_model_load_file(&m, path, NULL), BITNET_E_UNSUPPORTED);
    assert_msg_has("general.architecture");
}

static void test_load_modes(void **state)
{
    (void)state;
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.n_layer = 1;
    sp.n_embd = 128; sp.n_ff = 256;
    sp.embd_type = BITNET_TYPE_F16;
    char path[256];
    snprintf(path, sizeof(path), "%s", tmpfile_name("modes"));
    assert_int_equal(bitnet_synth_write(path, &sp), 0);
    bitnet_model_params p;
    bitnet_model_params_init(&p);
    bitnet_model *a, *b, *c, *d;
    assert_int_equal(bitnet_model_load_file(&a, path, &p), 0);
    assert_non_null(bitnet__gguf_source_file(a->src)->map_base);
    assert_null(a->head_i8);
    p.flags = BITNET_MODEL_NO_MMAP | BITNET_MODEL_INT8_HEAD;
    assert_int_equal(bitnet_model_load_file(&b, path, &p), 0);
    assert_null(bitnet__gguf_source_file(b->src)->map_base);
    assert_non_null(b->head_i8);                 /* built at load */
    assert_true(a->fingerprint == b->fingerprint);
    bt_assert_same_weights(a, b);
    /* a caller buffer that is not aligned: the embedding is copied */
    size_t size;
    uint8_t *raw = read_file(path, &size);
    uint8_t *mis = malloc(size + 1);
    memcpy(mis + 1, raw, size);
    assert_int_equal(load_buf(mis + 1, size, 0, &c), 0);
    assert_true(c->tok_embd.data < mis || c->tok_embd.data >= mis + 1 + size);
    assert_int_equal((uintptr_t)c->tok_embd.data % 32, 0);
    float r1[128], r2[128];
    bitnet__fmat_row(&a->tok_embd, 7, r1);
    bitnet__fmat_row(&c->tok_embd, 7, r2);
    assert_memory_equal(r1, r2, sizeof(r1));
    assert_true(c->fingerprint == a->fingerprint);
    /* another seed is another model */
    sp.seed = 2;
    assert_int_equal(bitnet_synth_write(path, &sp), 0);
    assert_int_equal(bitnet_model_load_file(&d, path, NULL), 0);
    assert_true(d->fingerprint != a->fingerprint);
    bitnet_model_free(a);
    bitnet_model_free(b);
    bitnet_model_free(c);
    bitnet_model_free(d);
    free(raw);
    free(mis);
    unlink(path);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_roundtrip_copy_stream),
        cmocka_unit_test(test_getters_render),
        cmocka_unit_test(test_err_header),
        cmocka_unit_test(test_err_lengths),
        cmocka_unit_test(test_err_model),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_scale_tensor),
        cmocka_unit_test(test_absmean),
        cmocka_unit_test(test_absmean_large),
        cmocka_unit_test(test_tq_scales),
        cmocka_unit_test(test_synth_embd),
        cmocka_unit_test(test_head_type),
        cmocka_unit_test(test_head_convert_rows),
        cmocka_unit_test(test_mapped_pages_dropped),
        cmocka_unit_test(test_weights_huge_aligned),
        cmocka_unit_test(test_load_modes),
        bt_shared_test(test_shared_models),
    };
    return BT_RUN(argc, argv, tests, NULL, NULL);
}
