/*
 * Loading refuses values that would poison every logit (issue 17): Inf/NaN
 * in F32, F16 and BF16 norm and embedding/output tensors, and an I2_S
 * scale that is zero, negative or not finite. Each case writes a synthetic
 * model with one value changed and checks the status and that the message
 * names the tensor; the unchanged file, and a changed but finite value,
 * load.
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

/* ---- a synthetic model in memory ------------------------------------- */

static uint8_t *synth(int32_t embd_type, size_t *size)
{
    char path[256];
    const char *d = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/bitnet-test-model-load-%ld.gguf",
             d && *d ? d : "/tmp", (long)getpid());
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.n_layer = 1;
    sp.n_embd = 128;
    sp.n_ff = 256;
    sp.n_vocab = 300;
    sp.embd_type = embd_type;
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

/* How to change one tensor: its new type (same shape) and the bytes; the
 * change function edits a copy of the data already converted to `type`. */
typedef struct change {
    const char *tensor;
    uint32_t type;               /* 0 = keep (GGML_T_F32 is 0: use keep_type) */
    int keep_type;
    void (*edit)(uint8_t *data, uint64_t ne0, uint64_t ne1, const struct change *c);
    uint64_t index;              /* element to change */
    float value;                 /* as F32; for I2_S: the scale */
} change;

/* Float tensor -> type (F32, F16, BF16) */
static void convert(const bitnet_gguf_tensor *t, uint32_t type, uint8_t *out)
{
    size_t n = (size_t)(t->ne[0] * t->ne[1]);
    for (size_t i = 0; i < n; i++) {
        float f;
        if (t->type == GGML_T_F32) memcpy(&f, t->data + 4 * i, 4);
        else {
            uint16_t h;
            memcpy(&h, t->data + 2 * i, 2);
            f = t->type == GGML_T_F16 ? bitnet__fp16_to_fp32(h) : bitnet__bf16_to_fp32(h);
        }
        if (type == GGML_T_F32) memcpy(out + 4 * i, &f, 4);
        else {
            uint32_t u;
            memcpy(&u, &f, 4);
            uint16_t h = type == GGML_T_F16 ? bitnet__fp32_to_fp16(f) : (uint16_t)(u >> 16);
            memcpy(out + 2 * i, &h, 2);
        }
    }
}

/* Put c->value at element c->index of a float tensor of type `type`. */
static void set_value(uint8_t *data, uint32_t type, uint64_t i, float v)
{
    if (type == GGML_T_F32) {
        memcpy(data + 4 * i, &v, 4);
    } else if (type == GGML_T_F16) {
        uint16_t h = bitnet__fp32_to_fp16(v);
        memcpy(data + 2 * i, &h, 2);
    } else {
        uint32_t u;
        memcpy(&u, &v, 4);
        uint16_t h = (uint16_t)(u >> 16);
        memcpy(data + 2 * i, &h, 2);
    }
}

/* Rewrite buf with change c applied (NULL: a plain copy). */
static uint8_t *rewrite(const uint8_t *buf, size_t size, const change *c, size_t *out_size)
{
    bitnet_gguf *g;
    assert_int_equal(bitnet__gguf_parse(&g, buf, size), BITNET_OK);
    bitnet_gguf_writer *w;
    assert_int_equal(bitnet__gguf_writer_create(&w, 0), BITNET_OK);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const bitnet_gguf_kv *kv = &g->kv[i];
        if (kv->key.len == 17 && memcmp(kv->key.ptr, "general.alignment", 17) == 0)
            continue;
        assert_int_equal(bitnet__gguf_w_copy_kv(w, kv), BITNET_OK);
    }
    int found = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bitnet_gguf_tensor *t = &g->tensors[i];
        char name[128];
        assert_true(t->name.len < sizeof(name));
        memcpy(name, t->name.ptr, t->name.len);
        name[t->name.len] = '\0';
        if (!c || strcmp(name, c->tensor) != 0) {
            assert_int_equal(bitnet__gguf_w_tensor(w, name, t->n_dims, t->ne, t->type,
                                                   t->data, t->nbytes), BITNET_OK);
            continue;
        }
        found = 1;
        uint32_t type = c->keep_type ? t->type : c->type;
        uint64_t nb = bitnet__ggml_nbytes(type, t->ne[0], t->ne[1] * t->ne[2] * t->ne[3]);
        uint8_t *d = malloc(nb);
        assert_non_null(d);
        if (type == t->type) memcpy(d, t->data, nb);
        else convert(t, type, d);
        if (type == GGML_T_I2_S) {
            /* the scale follows the 2-bit codes */
            size_t n = (size_t)(t->ne[0] * t->ne[1]);
            memcpy(d + n / 4, &c->value, 4);
        } else {
            set_value(d, type, c->index, c->value);
        }
        assert_int_equal(bitnet__gguf_w_tensor(w, name, t->n_dims, t->ne, type, d, nb),
                         BITNET_OK);
        free(d);
    }
    if (c) assert_true(found);
    uint8_t *out;
    assert_int_equal(bitnet__gguf_w_buffer(w, &out, out_size), BITNET_OK);
    bitnet__gguf_writer_free(w);
    bitnet__gguf_free(g);
    return out;
}

static void expect_load(const uint8_t *buf, size_t size, const change *c, int code,
                        const char *n1, const char *n2)
{
    size_t ns;
    uint8_t *b = rewrite(buf, size, c, &ns);
    bitnet_model *m = (bitnet_model *)1;
    int rc = bitnet_model_load_buffer(&m, b, ns, NULL);
    if (rc != code)
        fail_msg("%s: rc %d, expected %d (%s)", c ? c->tensor : "copy", rc, code,
                 bitnet_last_error());
    if (code == BITNET_OK) {
        assert_non_null(m);
        bitnet_model_free(m);
    } else {
        assert_null(m);
        const char *msg = bitnet_last_error();
        if (n1 && !strstr(msg, n1)) fail_msg("message '%s' does not name '%s'", msg, n1);
        if (n2 && !strstr(msg, n2)) fail_msg("message '%s' does not say '%s'", msg, n2);
    }
    free(b);
}

/* ---- tests -------------------------------------------------------------- */

static void test_norms(void **state)
{
    (void)state;
    size_t size;
    uint8_t *buf = synth(GGML_T_F16, &size);
    expect_load(buf, size, NULL, BITNET_OK, NULL, NULL);

    static const uint32_t types[3] = { GGML_T_F32, GGML_T_F16, GGML_T_BF16 };
    static const char *const names[3] = { "blk.0.attn_norm.weight", "blk.0.ffn_sub_norm.weight",
                                          "output_norm.weight" };
    for (int k = 0; k < 3; k++) {
        for (int j = 0; j < 3; j++) {
            change c = { names[j], types[k], 0, NULL, (uint64_t)(7 + 13 * j), INFINITY };
            expect_load(buf, size, &c, BITNET_E_FORMAT, names[j], "non-finite");
            c.value = -INFINITY;
            expect_load(buf, size, &c, BITNET_E_FORMAT, names[j], "non-finite");
            c.value = NAN;
            expect_load(buf, size, &c, BITNET_E_FORMAT, names[j], "non-finite");
            /* the element is named */
            char at[32];
            snprintf(at, sizeof(at), "element %d", 7 + 13 * j);
            expect_load(buf, size, &c, BITNET_E_FORMAT, names[j], at);
            /* a large but finite value loads */
            c.value = 60000.0f;
            expect_load(buf, size, &c, BITNET_OK, NULL, NULL);
        }
    }
    free(buf);
}

static void test_embedding(void **state)
{
    (void)state;
    static const int32_t types[3] = { GGML_T_F16, GGML_T_F32, GGML_T_BF16 };
    for (int k = 0; k < 3; k++) {
        size_t size;
        uint8_t *buf = synth(types[k], &size);
        /* row 5, column 7 (128 columns) */
        change c = { "token_embd.weight", 0, 1, NULL, 5 * 128 + 7, NAN };
        expect_load(buf, size, &c, BITNET_E_FORMAT, "token_embd.weight", "row 5, column 7");
        c.index = 299 * 128 + 127;       /* the very last value */
        c.value = INFINITY;
        expect_load(buf, size, &c, BITNET_E_FORMAT, "token_embd.weight", "row 299, column 127");
        c.value = -1.5f;
        expect_load(buf, size, &c, BITNET_OK, NULL, NULL);
        free(buf);
    }
}

static void test_output_head(void **state)
{
    (void)state;
    /* A separate output.weight: add one (a copy of the embedding) with a NaN. */
    size_t size;
    uint8_t *buf = synth(GGML_T_F16, &size);
    bitnet_gguf *g;
    assert_int_equal(bitnet__gguf_parse(&g, buf, size), BITNET_OK);
    const bitnet_gguf_tensor *te = bitnet__gguf_tensor(g, "token_embd.weight");
    assert_non_null(te);
    for (int bad = 0; bad < 2; bad++) {
        bitnet_gguf_writer *w;
        assert_int_equal(bitnet__gguf_writer_create(&w, 0), BITNET_OK);
        for (uint64_t i = 0; i < g->n_kv; i++) {
            const bitnet_gguf_kv *kv = &g->kv[i];
            if (kv->key.len == 17 && memcmp(kv->key.ptr, "general.alignment", 17) == 0)
                continue;
            assert_int_equal(bitnet__gguf_w_copy_kv(w, kv), BITNET_OK);
        }
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const bitnet_gguf_tensor *t = &g->tensors[i];
            char name[128];
            memcpy(name, t->name.ptr, t->name.len);
            name[t->name.len] = '\0';
            assert_int_equal(bitnet__gguf_w_tensor(w, name, t->n_dims, t->ne, t->type,
                                                   t->data, t->nbytes), BITNET_OK);
        }
        uint8_t *d = malloc(te->nbytes);
        assert_non_null(d);
        memcpy(d, te->data, te->nbytes);
        if (bad) set_value(d, GGML_T_F16, 3 * 128 + 1, NAN);
        assert_int_equal(bitnet__gguf_w_tensor(w, "output.weight", te->n_dims, te->ne, te->type,
                                               d, te->nbytes), BITNET_OK);
        free(d);
        uint8_t *out;
        size_t ns;
        assert_int_equal(bitnet__gguf_w_buffer(w, &out, &ns), BITNET_OK);
        bitnet__gguf_writer_free(w);
        bitnet_model *m = NULL;
        int rc = bitnet_model_load_buffer(&m, out, ns, NULL);
        if (bad) {
            assert_int_equal(rc, BITNET_E_FORMAT);
            assert_null(m);
            assert_non_null(strstr(bitnet_last_error(), "output.weight"));
            assert_non_null(strstr(bitnet_last_error(), "row 3, column 1"));
        } else {
            if (rc) fail_msg("%s", bitnet_last_error());
            assert_true(m->output.data != m->tok_embd.data);   /* not tied */
            assert_false(m->tied_head);
            bitnet_model_free(m);
        }
        free(out);
    }
    bitnet__gguf_free(g);
    free(buf);
}

static void test_i2s_scale(void **state)
{
    (void)state;
    size_t size;
    uint8_t *buf = synth(GGML_T_F16, &size);
    static const char *const names[2] = { "blk.0.attn_q.weight", "blk.0.ffn_down.weight" };
    for (int j = 0; j < 2; j++) {
        change c = { names[j], 0, 1, NULL, 0, 0.0f };
        expect_load(buf, size, &c, BITNET_E_FORMAT, names[j], "not positive");
        c.value = -0.25f;
        expect_load(buf, size, &c, BITNET_E_FORMAT, names[j], "not positive");
        c.value = -0.0f;
        expect_load(buf, size, &c, BITNET_E_FORMAT, names[j], "not positive");
        c.value = NAN;
        expect_load(buf, size, &c, BITNET_E_FORMAT, names[j], "not finite");
        c.value = INFINITY;
        expect_load(buf, size, &c, BITNET_E_FORMAT, names[j], "not finite");
        c.value = 0.75f;
        expect_load(buf, size, &c, BITNET_OK, NULL, NULL);
    }
    free(buf);

    /* The decoding path (rows not a multiple of the kernel's 128-column
     * blocks; also what the tests and tools call) refuses the same. */
    enum { R = 2, C = 128 };
    uint8_t t[R * C / 4 + 32];
    memset(t, 0x55, sizeof(t));     /* code 1: zero weights */
    bitnet_tensor_desc d;
    memset(&d, 0, sizeof(d));
    d.name.ptr = "x.weight";
    d.name.len = 8;
    d.type = GGML_T_I2_S;
    d.n_dims = 2;
    d.ne[0] = C; d.ne[1] = R; d.ne[2] = d.ne[3] = 1;
    d.nbytes = sizeof(t);
    d.data = t;
    int8_t out[R * C];
    float s;
    static const float bad[4] = { 0.0f, -1.0f, INFINITY, NAN };
    for (int k = 0; k < 4; k++) {
        memcpy(t + R * C / 4, &bad[k], 4);
        assert_int_equal(bitnet__ternary_decode(&d, out, &s), BITNET_E_FORMAT);
        assert_non_null(strstr(bitnet_last_error(), "x.weight"));
    }
    float good = 0.5f;
    memcpy(t + R * C / 4, &good, 4);
    assert_int_equal(bitnet__ternary_decode(&d, out, &s), BITNET_OK);
    assert_true(s == 0.5f);
}

/* The finiteness scan itself, against isfinite() on every position of a
 * chunk boundary and every special value. */
static void test_scan(void **state)
{
    (void)state;
    enum { N = 4096 * 2 + 37 };
    float *f = malloc(N * 4);
    uint16_t *h = malloc(N * 2), *b = malloc(N * 2);
    assert_true(f && h && b);
    for (int i = 0; i < N; i++) {
        f[i] = (float)(i % 97) - 48.0f;
        h[i] = bitnet__fp32_to_fp16(f[i]);
        uint32_t u;
        memcpy(&u, &f[i], 4);
        b[i] = (uint16_t)(u >> 16);
    }
    assert_int_equal(bitnet__first_nonfinite(GGML_T_F32, (const uint8_t *)f, N), SIZE_MAX);
    assert_int_equal(bitnet__first_nonfinite(GGML_T_F16, (const uint8_t *)h, N), SIZE_MAX);
    assert_int_equal(bitnet__first_nonfinite(GGML_T_BF16, (const uint8_t *)b, N), SIZE_MAX);
    static const size_t at[] = { 0, 1, 4095, 4096, 4097, 8191, 8192, N - 1 };
    static const float sp[3] = { INFINITY, -INFINITY, NAN };
    for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++)
        for (int j = 0; j < 3; j++) {
            float f0 = f[at[k]];
            uint16_t h0 = h[at[k]], b0 = b[at[k]];
            f[at[k]] = sp[j];
            h[at[k]] = bitnet__fp32_to_fp16(sp[j]);
            uint32_t u;
            memcpy(&u, &sp[j], 4);
            b[at[k]] = (uint16_t)(u >> 16);
            assert_int_equal(bitnet__first_nonfinite(GGML_T_F32, (const uint8_t *)f, N), at[k]);
            assert_int_equal(bitnet__first_nonfinite(GGML_T_F16, (const uint8_t *)h, N), at[k]);
            assert_int_equal(bitnet__first_nonfinite(GGML_T_BF16, (const uint8_t *)b, N), at[k]);
            f[at[k]] = f0;
            h[at[k]] = h0;
            b[at[k]] = b0;
        }
    /* the largest finite values are finite */
    f[5] = 3.4028235e38f;
    h[5] = 0x7BFF;
    b[5] = 0x7F7F;
    assert_int_equal(bitnet__first_nonfinite(GGML_T_F32, (const uint8_t *)f, N), SIZE_MAX);
    assert_int_equal(bitnet__first_nonfinite(GGML_T_F16, (const uint8_t *)h, N), SIZE_MAX);
    assert_int_equal(bitnet__first_nonfinite(GGML_T_BF16, (const uint8_t *)b, N), SIZE_MAX);
    free(f);
    free(h);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_norms),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_output_head),
        cmocka_unit_test(test_i2s_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
