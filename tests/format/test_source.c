/*
 * The format-neutral model source (lib/format/source.h): the GGUF
 * implementation's answers (names, values, tensors, vocabulary, metadata),
 * the value reads, and a second implementation written here (GGUF tensors,
 * but hyperparameters from its own table under its own names, as a
 * config.json source would give them) loading to the same model with
 * bit-identical logits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/gguf.h"
#include "format/source.h"
#include "model/model.h"

static uint8_t *synth(size_t *size)
{
    char path[256];
    const char *d = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/bitnet-test-source-%ld.gguf", d && *d ? d : "/tmp",
             (long)getpid());
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.n_layer = 2;
    sp.n_embd = 128;
    sp.n_ff = 256;
    sp.n_head = 4;
    sp.n_head_kv = 2;
    sp.n_vocab = 400;
    assert_int_equal(bitnet_synth_write(path, &sp), BITNET_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    unlink(path);
    *size = (size_t)n;
    return b;
}

static void test_gguf_source(void **state)
{
    (void)state;
    size_t size;
    uint8_t *buf = synth(&size);
    bitnet_source *s;
    assert_int_equal(bitnet__source_open_buffer(&s, buf, size), BITNET_OK);
    assert_string_equal(s->ops->format, "gguf");
    assert_non_null(bitnet__gguf_of_source(s));

    /* hyperparameters: neutral ids, the GGUF names */
    char name[128];
    bitnet_value v;
    bitnet_str str;
    int64_t i;
    float f;
    assert_int_equal(bitnet__source_hparam(s, BITNET_HP_ARCH, &v, name, sizeof(name)), BITNET_OK);
    assert_string_equal(name, "general.architecture");
    assert_int_equal(bitnet__value_str(&v, name, &str), BITNET_OK);
    assert_int_equal(str.len, 12);
    assert_memory_equal(str.ptr, "bitnet-b1.58", 12);
    static const struct { int hp; const char *key; int64_t val; } ints[] = {
        { BITNET_HP_EMBEDDING_LENGTH, "bitnet-b1.58.embedding_length", 128 },
        { BITNET_HP_BLOCK_COUNT, "bitnet-b1.58.block_count", 2 },
        { BITNET_HP_FEED_FORWARD_LENGTH, "bitnet-b1.58.feed_forward_length", 256 },
        { BITNET_HP_HEAD_COUNT, "bitnet-b1.58.attention.head_count", 4 },
        { BITNET_HP_HEAD_COUNT_KV, "bitnet-b1.58.attention.head_count_kv", 2 },
        { BITNET_HP_ROPE_DIMENSION_COUNT, "bitnet-b1.58.rope.dimension_count", 32 },
        { BITNET_HP_CONTEXT_LENGTH, "bitnet-b1.58.context_length", 4096 },
    };
    for (size_t k = 0; k < sizeof(ints) / sizeof(ints[0]); k++) {
        assert_int_equal(bitnet__source_hparam(s, ints[k].hp, &v, name, sizeof(name)), BITNET_OK);
        assert_string_equal(name, ints[k].key);
        assert_int_equal(bitnet__value_int(&v, name, &i), BITNET_OK);
        assert_int_equal(i, ints[k].val);
    }
    assert_int_equal(bitnet__source_hparam(s, BITNET_HP_NORM_RMS_EPS, &v, name, sizeof(name)),
                     BITNET_OK);
    assert_string_equal(name, "bitnet-b1.58.attention.layer_norm_rms_epsilon");
    assert_int_equal(bitnet__value_f32(&v, name, &f), BITNET_OK);
    assert_true(f == 1e-5f);
    /* a float is not an integer, and the message names the key */
    assert_int_equal(bitnet__value_int(&v, name, &i), BITNET_E_FORMAT);
    assert_non_null(strstr(bitnet_last_error(), name));
    assert_int_equal(bitnet__value_str(&v, "k", &str), BITNET_E_FORMAT);
    /* an id out of range is absent (with a name) */
    assert_int_equal(bitnet__source_hparam(s, BITNET_HP_COUNT, &v, name, sizeof(name)),
                     BITNET_E_NOT_FOUND);

    /* metadata by key */
    char out[64];
    size_t n;
    assert_int_equal(bitnet__source_meta(s, "bitnet-b1.58.block_count", &v), BITNET_OK);
    assert_int_equal(bitnet__value_render(&v, out, sizeof(out), &n), BITNET_OK);
    assert_string_equal(out, "2");
    assert_int_equal(bitnet__source_meta(s, "no.such.key", &v), BITNET_E_NOT_FOUND);

    /* the vocabulary description */
    bitnet_vocab_desc vd;
    assert_int_equal(bitnet__source_vocab(s, &vd), BITNET_OK);
    assert_true(vd.f[BITNET_VF_MODEL].present);
    assert_string_equal(vd.f[BITNET_VF_MODEL].name, "tokenizer.ggml.model");
    assert_int_equal(bitnet__value_str(&vd.f[BITNET_VF_MODEL].v, "m", &str), BITNET_OK);
    assert_int_equal(str.len, 4);
    assert_memory_equal(str.ptr, "gpt2", 4);
    assert_true(vd.f[BITNET_VF_TOKENS].present);
    assert_int_equal(vd.f[BITNET_VF_TOKENS].v.type, BITNET_VT_ARR);
    assert_int_equal(vd.f[BITNET_VF_TOKENS].v.arr_type, BITNET_VT_STR);
    assert_int_equal(vd.f[BITNET_VF_TOKENS].v.arr_n, 400);
    assert_true(vd.f[BITNET_VF_MERGES].present);
    assert_false(vd.f[BITNET_VF_PAD].present);
    assert_string_equal(vd.f[BITNET_VF_PAD].name, "tokenizer.ggml.padding_token_id");
    assert_int_equal(bitnet__value_int(&vd.f[BITNET_VF_BOS].v, "bos", &i), BITNET_OK);
    assert_int_equal(i, 397);

    /* tensors: by name and by index agree, data lies in the buffer */
    uint64_t nt = bitnet__source_n_tensors(s);
    assert_int_equal(nt, 2 + 2 * 11);
    for (uint64_t k = 0; k < nt; k++) {
        bitnet_tensor_desc a, b;
        bitnet__source_tensor_at(s, k, &a);
        char nm[128];
        assert_true(a.name.len < sizeof(nm));
        memcpy(nm, a.name.ptr, a.name.len);
        nm[a.name.len] = '\0';
        assert_int_equal(bitnet__source_tensor(s, nm, &b), BITNET_OK);
        assert_memory_equal(&a, &b, sizeof(a));
        assert_true(a.data >= buf && a.data + a.nbytes <= buf + size);
        assert_int_equal(a.nbytes, bitnet__ggml_nbytes(a.type, a.ne[0], a.ne[1] * a.ne[2] * a.ne[3]));
    }
    bitnet_tensor_desc t;
    assert_int_equal(bitnet__source_tensor(s, "blk.1.attn_k.weight", &t), BITNET_OK);
    assert_int_equal(t.type, GGML_T_I2_S);
    assert_int_equal(t.ne[0], 128);
    assert_int_equal(t.ne[1], 64);
    assert_int_equal(bitnet__source_tensor(s, "blk.2.attn_k.weight", &t), BITNET_E_NOT_FOUND);
    bitnet__source_free(s);

    /* openers: errors name the path; a broken buffer is refused */
    assert_int_equal(bitnet__source_open_file(&s, "/nonexistent/m.gguf", 0), BITNET_E_IO);
    assert_null(s);
    assert_non_null(strstr(bitnet_last_error(), "/nonexistent/m.gguf"));
    assert_int_equal(bitnet__source_open_buffer(&s, buf, 16), BITNET_E_FORMAT);
    assert_null(s);
    free(buf);
}

/* ---- a second implementation ------------------------------------------ */

/* Tensors and vocabulary from an inner GGUF source; hyperparameters from a
 * table under names of its own (as a config.json source would). */
typedef struct proxy {
    bitnet_source *inner;
    int32_t ints[BITNET_HP_COUNT];
    float floats[BITNET_HP_COUNT];
    uint8_t arch[8 + 12];
    int closed;
} proxy;

static int *closed_flag;

static int p_hparam(const bitnet_source *s, int hp, bitnet_value *v, char *name, size_t cap)
{
    proxy *p = s->impl;
    snprintf(name, cap, "config.hp%d", hp);
    memset(v, 0, sizeof(*v));
    if (hp == BITNET_HP_ARCH) {
        v->type = BITNET_VT_STR;
        v->data = p->arch;
        v->size = sizeof(p->arch);
    } else if (hp == BITNET_HP_NORM_RMS_EPS || hp == BITNET_HP_ROPE_FREQ_BASE) {
        v->type = BITNET_VT_F32;
        v->data = (const uint8_t *)&p->floats[hp];
        v->size = 4;
    } else if (hp > 0 && hp < BITNET_HP_COUNT && p->ints[hp] > 0) {
        v->type = BITNET_VT_I32;
        v->data = (const uint8_t *)&p->ints[hp];
        v->size = 4;
    } else {
        return BITNET_E_NOT_FOUND;
    }
    return BITNET_OK;
}

static int p_meta(const bitnet_source *s, const char *key, bitnet_value *v)
{
    return bitnet__source_meta(((proxy *)s->impl)->inner, key, v);
}

static int p_vocab(const bitnet_source *s, bitnet_vocab_desc *d)
{
    return bitnet__source_vocab(((proxy *)s->impl)->inner, d);
}

static uint64_t p_n_tensors(const bitnet_source *s)
{
    return bitnet__source_n_tensors(((proxy *)s->impl)->inner);
}

static void p_tensor_at(const bitnet_source *s, uint64_t i, bitnet_tensor_desc *t)
{
    bitnet__source_tensor_at(((proxy *)s->impl)->inner, i, t);
}

static int p_tensor(const bitnet_source *s, const char *name, bitnet_tensor_desc *t)
{
    return bitnet__source_tensor(((proxy *)s->impl)->inner, name, t);
}

static void p_close(void *impl)
{
    proxy *p = impl;
    bitnet__source_free(p->inner);
    if (closed_flag) (*closed_flag)++;
    free(p);
}

static const bitnet_source_ops proxy_ops = {
    "proxy", p_hparam, p_meta, p_vocab, p_n_tensors, p_tensor_at, p_tensor, p_close,
    NULL, NULL, NULL, NULL
};

static bitnet_source *make_proxy(const uint8_t *buf, size_t size, int32_t n_ff)
{
    proxy *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    assert_int_equal(bitnet__source_open_buffer(&p->inner, buf, size), BITNET_OK);
    uint64_t len = 12;
    memcpy(p->arch, &len, 8);
    memcpy(p->arch + 8, "bitnet-b1.58", 12);
    p->ints[BITNET_HP_CONTEXT_LENGTH] = 4096;
    p->ints[BITNET_HP_EMBEDDING_LENGTH] = 128;
    p->ints[BITNET_HP_BLOCK_COUNT] = 2;
    p->ints[BITNET_HP_FEED_FORWARD_LENGTH] = n_ff;
    p->ints[BITNET_HP_HEAD_COUNT] = 4;
    p->ints[BITNET_HP_HEAD_COUNT_KV] = 2;
    p->floats[BITNET_HP_NORM_RMS_EPS] = 1e-5f;
    p->floats[BITNET_HP_ROPE_FREQ_BASE] = 500000.0f;
    bitnet_source *s;
    assert_int_equal(bitnet__source_create(&s, &proxy_ops, p), BITNET_OK);
    return s;
}

static void logits_of(const bitnet_model *m, float *out, int32_t nv)
{
    bitnet_context *c;
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_ctx = 16;
    cp.n_threads = 1;
    assert_int_equal(bitnet_context_create(&c, m, &cp), BITNET_OK);
    const int32_t toks[5] = { 1, 17, 250, 3, 399 };
    assert_int_equal(bitnet_context_eval(c, toks, 5, 0), BITNET_OK);
    const float *l;
    assert_int_equal(bitnet_context_logits(c, -1, &l), BITNET_OK);
    memcpy(out, l, (size_t)nv * sizeof(float));
    bitnet_context_free(c);
}

static void test_second_source(void **state)
{
    (void)state;
    size_t size;
    uint8_t *buf = synth(&size);
    bitnet_model *a, *b;
    assert_int_equal(bitnet_model_load_buffer(&a, buf, size, NULL), BITNET_OK);
    int closed = 0;
    closed_flag = &closed;
    assert_int_equal(bitnet__model_load_source(&b, make_proxy(buf, size, 256), NULL), BITNET_OK);
    assert_int_equal(a->n_embd, b->n_embd);
    assert_int_equal(a->n_ff, b->n_ff);
    assert_int_equal(a->n_head_kv, b->n_head_kv);
    assert_int_equal(a->n_rot, b->n_rot);
    assert_true(a->rope_base == b->rope_base);
    assert_int_equal(a->fingerprint, b->fingerprint);
    char m1[64], m2[64];
    size_t n1, n2;
    assert_int_equal(bitnet_model_meta(a, "general.name", m1, sizeof(m1), &n1), BITNET_OK);
    assert_int_equal(bitnet_model_meta(b, "general.name", m2, sizeof(m2), &n2), BITNET_OK);
    assert_string_equal(m1, m2);
    int32_t toks[8];
    size_t nt1, nt2;
    int32_t toks2[8];
    assert_int_equal(bitnet_tokenize(a, "hello", 5, 0, toks, 8, &nt1), BITNET_OK);
    assert_int_equal(bitnet_tokenize(b, "hello", 5, 0, toks2, 8, &nt2), BITNET_OK);
    assert_int_equal(nt1, nt2);
    assert_memory_equal(toks, toks2, nt1 * sizeof(int32_t));
    float *la = malloc(400 * sizeof(float)), *lb = malloc(400 * sizeof(float));
    assert_true(la && lb);
    logits_of(a, la, 400);
    logits_of(b, lb, 400);
    assert_memory_equal(la, lb, 400 * sizeof(float));
    free(la);
    free(lb);
    bitnet_model_free(b);
    assert_int_equal(closed, 1);             /* the model owned the source */

    /* its own names reach the messages; a failed load frees the source */
    closed = 0;
    b = (bitnet_model *)1;
    assert_int_equal(bitnet__model_load_source(&b, make_proxy(buf, size, 512), NULL),
                     BITNET_E_FORMAT);
    assert_null(b);
    assert_int_equal(closed, 1);
    assert_non_null(strstr(bitnet_last_error(), "blk.0.ffn_gate.weight"));
    bitnet_source *p = make_proxy(buf, size, 256);
    ((proxy *)p->impl)->ints[BITNET_HP_HEAD_COUNT] = 3;
    closed = 0;
    assert_int_equal(bitnet__model_load_source(&b, p, NULL), BITNET_E_FORMAT);
    assert_int_equal(closed, 1);
    char want[32];
    snprintf(want, sizeof(want), "config.hp%d", BITNET_HP_HEAD_COUNT);
    assert_non_null(strstr(bitnet_last_error(), want));
    closed_flag = NULL;
    bitnet_model_free(a);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_source),
        cmocka_unit_test(test_second_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
