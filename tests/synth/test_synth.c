/*
 * The synthetic model writer (bitnet_synth_write, bitnet-synth):
 *  - files of each architecture and weight type load with the right
 *    hyperparameters; one seed gives identical ternary weights in every
 *    storage type;
 *  - the loader's packing of the written weights equals the kernel layout;
 *  - the generated vocabulary is consistent, --vocab-from copies every
 *    tokenizer key, and bad parameters are refused.
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
#include "text/vocab.h"
#include "test_util.h"
#include "model_check.h"

static char tmp_path[256];

static const char *tmpfile_name(const char *tag)
{
    char t[64];
    snprintf(t, sizeof(t), "-%s.gguf", tag);
    return bt_tmp_path(tmp_path, sizeof(tmp_path), "test-synth", t);
}

static int load_buf(const uint8_t *b, size_t n, uint32_t flags, bitnet_model **m)
{
    bitnet_model_params p;
    bitnet_model_params_init(&p);
    p.flags = flags;
    return bitnet_model_load_buffer(m, b, n, &p);
}

static void test_synth_archs(void **state)
{
    (void)state;
    static const char *archs[] = { "bitnet-b1.58", "bitnet-25", "bitnet", "llama" };
    static const int32_t types[] = { BITNET_TYPE_I2_S, BITNET_TYPE_TQ2_0,
                                     BITNET_TYPE_TQ1_0, BITNET_TYPE_F16,
                                     BITNET_TYPE_F32 };
    for (size_t a = 0; a < 4; a++) {
        bitnet_model *ref = NULL;
        for (size_t t = 0; t < 5; t++) {
            bitnet_synth_params sp;
            bitnet_synth_params_init(&sp);
            sp.arch = archs[a];
            sp.n_embd = 256; sp.n_layer = 2; sp.n_ff = 512;
            sp.n_head = 8; sp.n_head_kv = 2; sp.n_vocab = 300;
            sp.n_ctx_train = 1234;
            sp.weight_type = types[t];
            sp.seed = 42;
            sp.rope_freq_base = 10000.0f;
            bitnet_model *m = bt_synth_load(&sp, "arch");
            assert_string_equal(bitnet_model_arch(m), archs[a]);
            assert_int_equal(bitnet_model_n_embd(m), 256);
            assert_int_equal(bitnet_model_n_layer(m), 2);
            assert_int_equal(bitnet_model_n_vocab(m), 300);
            assert_int_equal(bitnet_model_n_ctx_train(m), 1234);
            assert_int_equal(m->n_ff, 512);
            assert_int_equal(m->n_head, 8);
            assert_int_equal(m->n_head_kv, 2);
            assert_int_equal(m->head_dim, 32);
            assert_int_equal(m->n_rot, 32);
            assert_true(m->norm_eps == 1e-5f);
            assert_true(m->rope_base == 10000.0f);
            int llama = a == 3;
            assert_int_equal(m->rope_neox, !llama);
            assert_int_equal(m->ffn_act, a < 2 ? BITNET_FFN_RELU2 : BITNET_FFN_SILU);
            assert_int_equal(m->layers[1].attn_sub_norm == NULL, llama);
            assert_int_equal(m->layers[1].ffn_sub_norm == NULL, llama);
            assert_int_equal(!m->tied_head, llama);
            assert_int_equal(m->layers[1].wk.rows, 64);
            assert_int_equal(m->layers[1].wdown.cols, 512);
            /* one seed, one model, whatever the storage type */
            if (!ref) ref = m;
            else {
                bt_assert_same_weights(ref, m);
                bitnet_model_free(m);
            }
        }
        bitnet_model_free(ref);
    }
}

/* The ternary values via the kernel's accessor equal the file's decoded
 * values (checks the loader's packing against the kernel layout). */
static void test_packing(void **state)
{
    (void)state;
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.n_embd = 384; sp.n_ff = 640; sp.n_head = 6; sp.n_head_kv = 3;
    sp.n_layer = 1; sp.weight_type = BITNET_TYPE_F16;
    /* F16 goes through decode + encode, I2_S through the block copy */
    for (int pass = 0; pass < 2; pass++) {
        const char *path = tmpfile_name("pack");
        assert_int_equal(bitnet_synth_write(path, &sp), 0);
        size_t size;
        uint8_t *buf = bt_read_file(path, &size);
        assert_non_null(buf);
        unlink(path);
        bitnet_model *m;
        assert_int_equal(load_buf(buf, size, 0, &m), 0);
        bitnet_tensor_desc td;
        assert_int_equal(bitnet__source_tensor(m->src, "blk.0.ffn_down.weight", &td), 0);
        const bitnet_tensor_desc *t = &td;
        int8_t *v = malloc(t->ne[0] * t->ne[1]);
        float s;
        assert_int_equal(bitnet__ternary_decode(t, v, &s), 0);
        const bitnet_tmat *w = &m->layers[0].wdown;
        assert_true(s == w->scale);
        assert_int_equal(w->rows, (int)t->ne[1]);
        assert_int_equal(w->cols, (int)t->ne[0]);
        for (int32_t r = 0; r < w->rows; r++)
            for (int32_t c = 0; c < w->cols; c++)
                if (bitnet__tmat_get(w, r, c) != v[(size_t)r * w->cols + c])
                    fail_msg("row %d col %d", r, c);
        /* and the same bytes as the kernel's own packer */
        uint8_t *pk = bitnet__aalloc(w->size, 64);
        bitnet__tmat_pack(pk, v, w->rows, w->cols);
        assert_memory_equal(pk, w->data, w->size);
        bitnet__afree(pk);
        free(v);
        bitnet_model_free(m);
        free(buf);
        sp.weight_type = BITNET_TYPE_I2_S;
    }
}

static void test_synth_vocab(void **state)
{
    (void)state;
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.n_layer = 1;
    sp.n_vocab = 1000;
    const char *p1 = "/tmp/bitnet-test-gguf-voc1.gguf";
    char path1[256];
    snprintf(path1, sizeof(path1), "%s", tmpfile_name("voc1"));
    (void)p1;
    assert_int_equal(bitnet_synth_write(path1, &sp), 0);
    bitnet_model *a;
    assert_int_equal(bitnet_model_load_file(&a, path1, NULL), 0);
    const bitnet_gguf_kv *tok = bitnet__gguf_find(bitnet__gguf_of_source(a->src), "tokenizer.ggml.tokens");
    const bitnet_gguf_kv *mer = bitnet__gguf_find(bitnet__gguf_of_source(a->src), "tokenizer.ggml.merges");
    assert_non_null(tok);
    assert_non_null(mer);
    assert_int_equal(tok->arr_n, 1000);
    assert_int_equal(mer->arr_n, 1000 - 3 - 256);
    bitnet_gguf_str s;
    assert_int_equal(bitnet__gguf_arr_str(tok, 0, &s), 0);
    assert_int_equal(s.len, 1);
    assert_memory_equal(s.ptr, "!", 1);
    assert_int_equal(bitnet__gguf_arr_str(tok, 999, &s), 0);
    assert_int_equal(s.len, 10);
    assert_memory_equal(s.ptr, "<|eot_id|>", 10);
    /* every merge "a b" joins two tokens into a token */
    bitnet_gguf_str *ts;
    assert_int_equal(bitnet__gguf_arr_strs(tok, &ts), 0);
    for (uint64_t i = 0; i < mer->arr_n; i++) {
        bitnet_gguf_str ms;
        assert_int_equal(bitnet__gguf_arr_str(mer, i, &ms), 0);
        const char *sp_ = memchr(ms.ptr, ' ', ms.len);
        assert_non_null(sp_);
        size_t la = (size_t)(sp_ - ms.ptr), lb = ms.len - la - 1;
        int fa = 0, fb = 0, fr = 0;
        for (uint64_t k = 0; k < tok->arr_n; k++) {
            if (ts[k].len == la && !memcmp(ts[k].ptr, ms.ptr, la)) fa = 1;
            if (ts[k].len == lb && !memcmp(ts[k].ptr, sp_ + 1, lb)) fb = 1;
            if (ts[k].len == la + lb && !memcmp(ts[k].ptr, ms.ptr, la) &&
                !memcmp(ts[k].ptr + la, sp_ + 1, lb)) fr = 1;
        }
        if (!fa || !fb || !fr) fail_msg("merge %llu inconsistent", (unsigned long long)i);
    }
    free(ts);
    int64_t v;
    assert_int_equal(bitnet__gguf_get_int(bitnet__gguf_of_source(a->src), "tokenizer.ggml.bos_token_id", &v), 0);
    assert_int_equal(v, 997);
    const bitnet_gguf_kv *tt = bitnet__gguf_find(bitnet__gguf_of_source(a->src), "tokenizer.ggml.token_type");
    assert_int_equal(bitnet__gguf_arr_i64(tt, 997, &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(bitnet__gguf_arr_i64(tt, 500, &v), 0);
    assert_int_equal(v, 1);

    /* --vocab-from copies every tokenizer key */
    sp.vocab_from = path1;
    sp.n_vocab = 0;
    sp.n_embd = 128; sp.n_ff = 256;
    char path2[256];
    snprintf(path2, sizeof(path2), "%s", tmpfile_name("voc2"));
    assert_int_equal(bitnet_synth_write(path2, &sp), 0);
    bitnet_model *b;
    assert_int_equal(bitnet_model_load_file(&b, path2, NULL), 0);
    assert_int_equal(bitnet_model_n_vocab(b), 1000);
    int n_tok_keys = 0;
    for (uint64_t i = 0; i < bitnet__gguf_of_source(a->src)->n_kv; i++) {
        const bitnet_gguf_kv *x = &bitnet__gguf_of_source(a->src)->kv[i];
        if (x->key.len < 10 || memcmp(x->key.ptr, "tokenizer.", 10)) continue;
        char key[128];
        snprintf(key, sizeof(key), "%.*s", (int)x->key.len, x->key.ptr);
        const bitnet_gguf_kv *y = bitnet__gguf_find(bitnet__gguf_of_source(b->src), key);
        assert_non_null(y);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->value_size, y->value_size);
        assert_memory_equal(x->value, y->value, x->value_size);
        n_tok_keys++;
    }
    assert_true(n_tok_keys >= 8);
    bitnet_model_free(b);

    /* vocab-only loads of a full file */
    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    mp.flags = BITNET_MODEL_VOCAB_ONLY;
    assert_int_equal(bitnet_model_load_file(&b, path2, &mp), 0);
    assert_null(b->layers);
    assert_int_equal(bitnet_model_n_vocab(b), 1000);
    assert_int_equal(bitnet_model_n_embd(b), 128);
    bitnet_model_free(b);
    bitnet_model_free(a);

    /* bad parameters */
    sp.vocab_from = "/nonexistent.gguf";
    assert_int_equal(bitnet_synth_write(path2, &sp), BITNET_E_FORMAT);
    sp.vocab_from = NULL;
    sp.n_vocab = 300;
    sp.n_head = 3;
    assert_int_equal(bitnet_synth_write(path2, &sp), BITNET_E_INVALID_ARG);
    sp.n_head = 4;
    sp.n_head_kv = 3;
    assert_int_equal(bitnet_synth_write(path2, &sp), BITNET_E_INVALID_ARG);
    sp.n_head_kv = 2;
    sp.weight_type = BITNET_TYPE_Q8_0;
    assert_int_equal(bitnet_synth_write(path2, &sp), BITNET_E_INVALID_ARG);
    sp.weight_type = BITNET_TYPE_TQ2_0;      /* 128 is not a multiple of 256 */
    assert_int_equal(bitnet_synth_write(path2, &sp), BITNET_E_INVALID_ARG);
    sp.weight_type = BITNET_TYPE_I2_S;
    sp.embd_type = BITNET_TYPE_I2_S;
    assert_int_equal(bitnet_synth_write(path2, &sp), BITNET_E_INVALID_ARG);
    sp.embd_type = BITNET_TYPE_F16;
    sp.arch = "gpt2";
    assert_int_equal(bitnet_synth_write(path2, &sp), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_synth_write(NULL, NULL), BITNET_E_INVALID_ARG);
    unlink(path1);
    unlink(path2);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synth_archs),
        cmocka_unit_test(test_packing),
        cmocka_unit_test(test_synth_vocab),
    };
    return BT_RUN(argc, argv, tests, NULL, NULL);
}
