/*
 * Hostile Hugging Face checkpoints get a status code and a message naming
 * what is wrong, never a crash (this runs under ASan/UBSan in CI):
 *  - safetensors headers: length past the file, offsets outside the data,
 *    overlapping tensors, unknown dtype, byte size that does not hold the
 *    shape, non-UTF-8 or deeply nested JSON, bad __metadata__;
 *  - checkpoint directories: unknown architecture / quantisation method /
 *    activation, a tensor of the wrong dtype or shape, packed weights
 *    without weight_scale, an index naming a missing shard, a tensor in the
 *    wrong shard;
 *  - SentencePiece protobuf: truncated and malformed messages;
 *  - loading options on a small checkpoint written here: the progress
 *    callback (monotonic, ends at 1, cancels), BITNET_MODEL_NO_MMAP and the
 *    model.safetensors path give the same logits; bitnet_convert arguments.
 * Plus a well-formed file read back exactly.
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

#include <sys/stat.h>

#include "format/hf.h"
#include "format/json.h"
#include "format/safetensors.h"
#include "lib_config.h"

/* A safetensors image: 8-byte length, header text, `data` bytes of data
 * (values i & 0xff). hl_override != 0 replaces the length field. */
static uint8_t *image(const char *hdr, size_t data, uint64_t hl_override, size_t *size)
{
    size_t hl = strlen(hdr);
    *size = 8 + hl + data;
    uint8_t *b = malloc(*size);
    uint64_t l = hl_override ? hl_override : hl;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(l >> (8 * i));
    memcpy(b + 8, hdr, hl);
    for (size_t i = 0; i < data; i++) b[8 + hl + i] = (uint8_t)i;
    return b;
}

#if BITNET_HAVE_JSON
/* Parse and expect status `want` with `needle` in the message. */
static void expect(const char *hdr, size_t data, uint64_t hl, int want, const char *needle)
{
    size_t size, n = 0;
    uint8_t *b = image(hdr, data, hl, &size);
    bitnet_st_tensor *t = NULL;
    int rc = bitnet__st_parse(b, size, "x.safetensors", &t, &n);
    if (rc != want || (needle && !strstr(bitnet_last_error(), needle)))
        print_error("header %.80s: rc %d (want %d), message '%s' (want '%s')\n", hdr, rc,
                    want, bitnet_last_error(), needle ? needle : "");
    assert_int_equal(rc, want);
    if (needle) assert_non_null(strstr(bitnet_last_error(), needle));
    if (rc == BITNET_OK) bitnet__st_tensors_free(t, n);
    else assert_null(t);
    free(b);
}
#endif

static void test_valid(void **state)
{
    (void)state;
#if BITNET_HAVE_JSON
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                    "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[12,16]},"
                    "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]}}";
    size_t size, n;
    uint8_t *b = image(h, 16, 0, &size);
    bitnet_st_tensor *t;
    assert_int_equal(bitnet__st_parse(b, size, "ok", &t, &n), BITNET_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(t[i].name, "a")) {
            assert_int_equal(t[i].dtype, ST_F16);
            assert_int_equal(t[i].n_dims, 2);
            assert_int_equal(t[i].shape[1], 3);
            assert_ptr_equal(t[i].data, b + 8 + strlen(h));
        } else if (!strcmp(t[i].name, "b")) {
            assert_int_equal(t[i].data[0], 12);
        }
    }
    bitnet__st_tensors_free(t, n);
    free(b);
#else
    skip();
#endif
}

static void test_hostile_headers(void **state)
{
    (void)state;
#if BITNET_HAVE_JSON
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect(ok, 8, 1u << 20, BITNET_E_FORMAT, "runs past the end");
    expect(ok, 8, UINT64_MAX, BITNET_E_FORMAT, "runs past the end");
    expect(ok, 4, 0, BITNET_E_FORMAT, "outside the data section");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, 0,
           BITNET_E_FORMAT, "outside the data section");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, 0,
           BITNET_E_FORMAT, "data_offsets");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0,
           BITNET_E_FORMAT, "overlap");
    expect("{\"a\":{\"dtype\":\"Q4_K\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0,
           BITNET_E_UNSUPPORTED, "dtype 'Q4_K'");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0,
           BITNET_E_FORMAT, "do not hold its shape");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
           "\"data_offsets\":[0,8]}}", 8, 0, BITNET_E_FORMAT, "do not hold its shape");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
           4, 0, BITNET_E_FORMAT, "shape");
    expect("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, BITNET_E_FORMAT, "dtype");
    expect("{\"a\":[1,2]}", 8, 0, BITNET_E_FORMAT, "not an object");
    expect("[1,2]", 0, 0, BITNET_E_FORMAT, "not a JSON object");
    expect("{\"__metadata__\":{\"k\":1}}", 0, 0, BITNET_E_FORMAT, "__metadata__");
    expect("{\"__metadata__\":[]}", 0, 0, BITNET_E_FORMAT, "__metadata__");
    expect("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0,
           BITNET_E_FORMAT, "UTF-8");
    expect("{\"\xc0\xaf\":1}", 0, 0, BITNET_E_FORMAT, "UTF-8");      /* overlong */
    expect("{\"\xed\xa0\x80\":1}", 0, 0, BITNET_E_FORMAT, "UTF-8");  /* surrogate */
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0,
           BITNET_E_FORMAT, "invalid JSON");
    expect("{\"a\":", 0, 0, BITNET_E_FORMAT, "invalid JSON");
    /* deep nesting: refused before jansson recurses */
    char deep[4096];
    size_t k = 0;
    deep[k++] = '{';
    deep[k++] = '"'; deep[k++] = 'a'; deep[k++] = '"'; deep[k++] = ':';
    for (int i = 0; i < 1500; i++) deep[k++] = '[';
    deep[k] = '\0';
    expect(deep, 0, 0, BITNET_E_FORMAT, "nested deeper");
    /* too short */
    bitnet_st_tensor *t;
    size_t n;
    assert_int_equal(bitnet__st_parse((const uint8_t *)"abc", 3, "short", &t, &n),
                     BITNET_E_FORMAT);
    assert_non_null(strstr(bitnet_last_error(), "too short"));
#else
    skip();
#endif
}

/* ---- checkpoint directories ------------------------------------------- */

static char tmpdir[256];

static void put(const char *name, const void *data, size_t n)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void put_text(const char *name, const char *s)
{
    put(name, s, strlen(s));
}

static void put_st(const char *name, const char *hdr, size_t data)
{
    size_t size;
    uint8_t *b = image(hdr, data, 0, &size);
    put(name, b, size);
    free(b);
}

/* config for a tiny model: n_embd 8, 2 heads, n_ff 16, vocab 4, 1 layer */
static void put_config(const char *arch, const char *extra)
{
    char c[2048];
    snprintf(c, sizeof(c), "{\"architectures\":[\"%s\"],\"hidden_size\":8,"
             "\"num_hidden_layers\":1,\"intermediate_size\":16,"
             "\"num_attention_heads\":2,\"vocab_size\":4,"
             "\"max_position_embeddings\":64,\"rms_norm_eps\":1e-5%s}", arch, extra);
    put_text("config.json", c);
}

static int load_dir(const char *needle, int want)
{
    bitnet_model *m = NULL;
    int rc = bitnet_model_load_file(&m, tmpdir, NULL);
    if (rc != want || (needle && !strstr(bitnet_last_error(), needle)))
        print_error("rc %d (want %d): '%s' (want '%s')\n", rc, want, bitnet_last_error(),
                    needle ? needle : "");
    assert_int_equal(rc, want);
    if (needle) assert_non_null(strstr(bitnet_last_error(), needle));
    bitnet_model_free(m);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/bitnet-hf-test-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const files[] = { "config.json", "model.safetensors",
        "model.safetensors.index.json", "a.safetensors", "b.safetensors",
        "tokenizer.model" };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", tmpdir, files[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    return 0;
}

static const char *const one_embd =
    "{\"model.embed_tokens.weight\":{\"dtype\":\"F16\",\"shape\":[4,8],"
    "\"data_offsets\":[0,64]}}";

static void test_hostile_dirs(void **state)
{
    (void)state;
#if BITNET_HAVE_JSON
    put_st("model.safetensors", one_embd, 64);
    put_config("GPT2LMHeadModel", "");
    load_dir("'architectures': 'GPT2LMHeadModel'", BITNET_E_UNSUPPORTED);
    put_config("LlamaForCausalLM", "");
    load_dir("quant_method", BITNET_E_UNSUPPORTED);
    put_config("LlamaForCausalLM", ",\"quantization_config\":{\"quant_method\":\"gptq\"}");
    load_dir("'quantization_config.quant_method': 'gptq'", BITNET_E_UNSUPPORTED);
    put_config("BitNetForCausalLM", ",\"quantization_config\":{\"quant_method\":"
               "\"bitnet\",\"linear_class\":\"fancylinear\"}");
    load_dir("'fancylinear'", BITNET_E_UNSUPPORTED);
    put_config("BitNetForCausalLM", ",\"hidden_act\":\"gelu\"");
    load_dir("'hidden_act': 'gelu'", BITNET_E_UNSUPPORTED);
    put_config("BitnetForCausalLM", ",\"rope_scaling\":{\"rope_type\":\"yarn\"}");
    load_dir("rope_scaling", BITNET_E_UNSUPPORTED);
    put_config("BitnetForCausalLM", ",\"num_key_value_heads\":3");
    load_dir("num_key_value_heads", BITNET_E_FORMAT);
    put_text("config.json", "{\"architectures\":[\"BitnetForCausalLM\"]}");
    load_dir("missing field", BITNET_E_FORMAT);
    put_text("config.json", "{\"architectures\":[\"BitnetForCausalLM\"],\"vocab_size\":4,"
             "\"hidden_size\":\"8\"}");
    load_dir("hidden_size", BITNET_E_FORMAT);
    put_text("config.json", "not json");
    load_dir("invalid JSON", BITNET_E_FORMAT);

    /* tensors that do not fit the config */
    put_config("BitnetForCausalLM", "");
    put_st("model.safetensors",
           "{\"model.embed_tokens.weight\":{\"dtype\":\"F16\",\"shape\":[4,9],"
           "\"data_offsets\":[0,72]}}", 72);
    load_dir("shape does not match", BITNET_E_FORMAT);
    put_st("model.safetensors",
           "{\"model.layers.0.self_attn.q_proj.weight\":{\"dtype\":\"I32\","
           "\"shape\":[8,8],\"data_offsets\":[0,256]}}", 256);
    load_dir("dtype I32", BITNET_E_UNSUPPORTED);
    put_st("model.safetensors",
           "{\"model.layers.0.self_attn.q_proj.weight\":{\"dtype\":\"U8\","
           "\"shape\":[2,8],\"data_offsets\":[0,16]}}", 16);
    load_dir("weight_scale", BITNET_E_FORMAT);
    put_st("model.safetensors",
           "{\"model.layers.0.self_attn.q_proj.weight\":{\"dtype\":\"U8\","
           "\"shape\":[3,8],\"data_offsets\":[0,24]}}", 24);
    load_dir("packed shape", BITNET_E_FORMAT);
    /* a complete-looking file whose other tensors are missing */
    put_st("model.safetensors", one_embd, 64);
    load_dir("missing tensor", BITNET_E_FORMAT);

    /* sharded: a missing shard, a tensor in the wrong shard */
    char p[512];
    snprintf(p, sizeof(p), "%s/model.safetensors", tmpdir);
    unlink(p);
    put_text("model.safetensors.index.json",
             "{\"weight_map\":{\"model.embed_tokens.weight\":\"nothere.safetensors\"}}");
    load_dir("nothere.safetensors", BITNET_E_IO);
    put_text("model.safetensors.index.json",
             "{\"weight_map\":{\"model.embed_tokens.weight\":\"../etc/passwd\"}}");
    load_dir("not a file name", BITNET_E_FORMAT);
    put_st("a.safetensors", one_embd, 64);
    put_st("b.safetensors", "{}", 0);
    put_text("model.safetensors.index.json",
             "{\"weight_map\":{\"model.embed_tokens.weight\":\"b.safetensors\","
             "\"model.norm.weight\":\"a.safetensors\"}}");
    load_dir("is not in 'b.safetensors'", BITNET_E_FORMAT);
    put_text("model.safetensors.index.json",
             "{\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"a.safetensors\"}}");
    load_dir("'x' is not in", BITNET_E_FORMAT);
    snprintf(p, sizeof(p), "%s/model.safetensors.index.json", tmpdir);
    unlink(p);
    load_dir("no model.safetensors", BITNET_E_IO);
#else
    put_config("BitnetForCausalLM", "");
    put_st("model.safetensors", one_embd, 64);
    load_dir("JSON support", BITNET_E_UNSUPPORTED);
#endif
}

static void test_spm_protobuf(void **state)
{
    (void)state;
    bitnet_spm_piece *p;
    size_t n;
    int adp, mt;
    /* one piece "ab", score 1.5, type 3; trainer_spec model_type 2 */
    const uint8_t ok[] = { 0x0A, 0x0B, 0x0A, 0x02, 'a', 'b', 0x15, 0x00, 0x00, 0xC0, 0x3F,
                           0x18, 0x03, 0x12, 0x02, 0x18, 0x02, 0x1A, 0x02, 0x18, 0x00 };
    assert_int_equal(bitnet__spm_parse(ok, sizeof(ok), &p, &n, &adp, &mt), BITNET_OK);
    assert_int_equal(n, 1);
    assert_int_equal(p[0].len, 2);
    assert_memory_equal(p[0].s, "ab", 2);
    assert_true(p[0].score == 1.5f);
    assert_int_equal(p[0].type, 3);
    assert_int_equal(mt, 2);
    assert_int_equal(adp, 0);
    free(p);
    /* every truncation is refused or parsed, never read past the end */
    for (size_t k = 0; k < sizeof(ok); k++) {
        uint8_t *c = malloc(k ? k : 1);
        memcpy(c, ok, k);
        int rc = bitnet__spm_parse(c, k, &p, &n, &adp, &mt);
        if (rc == BITNET_OK) free(p);
        else assert_int_equal(rc, BITNET_E_FORMAT);
        free(c);
    }
    const uint8_t bad_len[] = { 0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00 };
    assert_int_equal(bitnet__spm_parse(bad_len, sizeof(bad_len), &p, &n, &adp, &mt),
                     BITNET_E_FORMAT);
    const uint8_t bad_wire[] = { 0x0F, 0x00 };
    assert_int_equal(bitnet__spm_parse(bad_wire, sizeof(bad_wire), &p, &n, &adp, &mt),
                     BITNET_E_FORMAT);
    const uint8_t nameless[] = { 0x0A, 0x02, 0x18, 0x01 };
    assert_int_equal(bitnet__spm_parse(nameless, sizeof(nameless), &p, &n, &adp, &mt),
                     BITNET_E_FORMAT);
}

/* A small valid 1bitLLM-style checkpoint (F32 masters), written here so
 * the loading options can be checked without Python: n_embd 32, 2 heads,
 * n_ff 64, vocabulary 8, one layer. */
static void put_small_checkpoint(void)
{
    static const struct { const char *name; int rows, cols; } t[] = {
        { "model.embed_tokens.weight", 8, 32 }, { "model.norm.weight", 0, 32 },
        { "model.layers.0.input_layernorm.weight", 0, 32 },
        { "model.layers.0.self_attn.q_proj.weight", 32, 32 },
        { "model.layers.0.self_attn.k_proj.weight", 32, 32 },
        { "model.layers.0.self_attn.v_proj.weight", 32, 32 },
        { "model.layers.0.self_attn.o_proj.weight", 32, 32 },
        { "model.layers.0.self_attn.inner_attn_ln.weight", 0, 32 },
        { "model.layers.0.post_attention_layernorm.weight", 0, 32 },
        { "model.layers.0.mlp.gate_proj.weight", 64, 32 },
        { "model.layers.0.mlp.up_proj.weight", 64, 32 },
        { "model.layers.0.mlp.down_proj.weight", 32, 64 },
        { "model.layers.0.mlp.ffn_layernorm.weight", 0, 64 },
    };
    char hdr[4096];
    size_t hl = 0, off = 0;
    hl += (size_t)snprintf(hdr + hl, sizeof(hdr) - hl, "{");
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n = (size_t)(t[i].rows ? t[i].rows : 1) * (size_t)t[i].cols * 4;
        if (t[i].rows)
            hl += (size_t)snprintf(hdr + hl, sizeof(hdr) - hl, "%s\"%s\":{\"dtype\":\"F32\","
                                   "\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                                   i ? "," : "", t[i].name, t[i].rows, t[i].cols, off, off + n);
        else
            hl += (size_t)snprintf(hdr + hl, sizeof(hdr) - hl, "%s\"%s\":{\"dtype\":\"F32\","
                                   "\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                                   i ? "," : "", t[i].name, t[i].cols, off, off + n);
        off += n;
    }
    hl += (size_t)snprintf(hdr + hl, sizeof(hdr) - hl, "}");
    size_t size = 8 + hl + off;
    uint8_t *b = calloc(1, size);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, hdr, hl);
    for (size_t i = 0; i < off / 4; i++) {
        /* deterministic values in [-1, 1]; norms near 1 */
        float v = (float)((int)((i * 2654435761u) % 2001u) - 1000) / 1000.0f;
        memcpy(b + 8 + hl + 4 * i, &v, 4);
    }
    put("model.safetensors", b, size);
    free(b);
    char p[512];
    snprintf(p, sizeof(p), "%s/config.json", tmpdir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "{\"architectures\":[\"BitnetForCausalLM\"],\"hidden_size\":32,"
            "\"num_hidden_layers\":1,\"intermediate_size\":64,\"num_attention_heads\":2,"
            "\"vocab_size\":8,\"max_position_embeddings\":64,\"rms_norm_eps\":1e-5}");
    fclose(f);
}

static int progress_calls;
static float progress_last;
static int on_progress(void *user, float p)
{
    int cancel_at = *(int *)user;
    if (p < progress_last) progress_last = 2.0f;    /* not monotonic: fails below */
    else progress_last = p;
    return ++progress_calls == cancel_at;
}

static void logits_of(const bitnet_model *m, float *out)
{
    bitnet_context *c;
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_threads = 1;
    assert_int_equal(bitnet_context_create(&c, m, &cp), BITNET_OK);
    const int32_t toks[4] = { 1, 5, 2, 7 };
    assert_int_equal(bitnet_context_eval(c, toks, 4, 0), BITNET_OK);
    const float *l;
    assert_int_equal(bitnet_context_logits(c, -1, &l), BITNET_OK);
    memcpy(out, l, 8 * sizeof(float));
    bitnet_context_free(c);
}

static void test_load_options(void **state)
{
    (void)state;
#if BITNET_HAVE_JSON
    put_small_checkpoint();
    bitnet_model_params p;
    bitnet_model_params_init(&p);
    int cancel_at = 0;
    p.progress_fn = on_progress;
    p.progress_user = &cancel_at;
    bitnet_model *m = NULL;
    progress_calls = 0;
    progress_last = 0.0f;
    assert_int_equal(bitnet_model_load_file(&m, tmpdir, &p), BITNET_OK);
    assert_true(progress_calls > 10);
    assert_true(progress_last == 1.0f);
    assert_string_equal(bitnet_model_arch(m), "bitnet");
    assert_int_equal(bitnet_model_n_vocab(m), 8);
    float a[8], b[8];
    logits_of(m, a);
    bitnet_model_free(m);
    /* cancelled by the callback */
    cancel_at = 3;
    progress_calls = 0;
    progress_last = 0.0f;
    assert_int_equal(bitnet_model_load_file(&m, tmpdir, &p), BITNET_E_ABORTED);
    assert_null(m);
    /* read into memory instead of mapped; the file path form */
    bitnet_model_params_init(&p);
    p.flags = BITNET_MODEL_NO_MMAP;
    char path[512];
    snprintf(path, sizeof(path), "%s/model.safetensors", tmpdir);
    assert_int_equal(bitnet_model_load_file(&m, path, &p), BITNET_OK);
    logits_of(m, b);
    assert_memory_equal(a, b, sizeof(a));
    char buf[64];
    size_t n;
    assert_int_equal(bitnet_model_meta(m, "bitnet.embedding_length", buf, sizeof(buf), &n),
                     BITNET_OK);
    assert_string_equal(buf, "32");
    bitnet_model_free(m);
#else
    skip();
#endif
}

static void test_convert_args(void **state)
{
    (void)state;
    bitnet_convert_params p;
    bitnet_convert_params_init(&p);
    assert_int_equal(p.weight_type, BITNET_TYPE_I2_S);
    assert_int_equal(p.embd_type, BITNET_TYPE_F16);
    assert_int_equal(bitnet_convert(NULL, "/tmp/x.gguf", NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_convert("/tmp/x", NULL, NULL), BITNET_E_INVALID_ARG);
    p.weight_type = BITNET_TYPE_Q8_0;
    assert_int_equal(bitnet_convert("/tmp/x", "/tmp/y.gguf", &p), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "weight_type"));
    bitnet_convert_params_init(&p);
    p.embd_type = BITNET_TYPE_TQ2_0;
    assert_int_equal(bitnet_convert("/tmp/x", "/tmp/y.gguf", &p), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "embd_type"));
    /* an input that does not exist, and a model converted to a path that
     * cannot be written */
    assert_int_equal(bitnet_convert("/nonexistent/model.gguf", "/tmp/y.gguf", NULL),
                     BITNET_E_IO);
    char in[] = "/tmp/bitnet-convert-in-XXXXXX";
    int fd = mkstemp(in);
    assert_true(fd >= 0);
    close(fd);
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    assert_int_equal(bitnet_synth_write(in, &sp), BITNET_OK);
    assert_int_equal(bitnet_convert(in, "/nonexistent/dir/out.gguf", NULL), BITNET_E_IO);
    /* a row length TQ2_0 blocks do not divide: the tensor is named */
    sp.n_embd = 128;
    sp.n_ff = 384;
    sp.n_head = 2;
    sp.n_head_kv = 1;
    assert_int_equal(bitnet_synth_write(in, &sp), BITNET_OK);
    bitnet_convert_params_init(&p);
    p.weight_type = BITNET_TYPE_TQ2_0;
    char out[] = "/tmp/bitnet-convert-out-XXXXXX";
    fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(bitnet_convert(in, out, &p), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "blk.0.attn_q.weight"));
    p.weight_type = BITNET_TYPE_I2_S;
    assert_int_equal(bitnet_convert(in, out, &p), BITNET_OK);
    bitnet_model *m;
    assert_int_equal(bitnet_model_load_file(&m, out, NULL), BITNET_OK);
    assert_int_equal(bitnet_model_n_embd(m), 128);
    bitnet_model_free(m);
    unlink(in);
    unlink(out);
}

static void test_utf8_and_depth(void **state)
{
    (void)state;
    assert_true(bitnet__utf8_valid("h\xc3\xa9llo \xf0\x9f\xa6\x99", 11));
    assert_false(bitnet__utf8_valid("\xf0\x9f\xa6", 3));           /* truncated */
    assert_false(bitnet__utf8_valid("\xf4\x90\x80\x80", 4));       /* > U+10FFFF */
    assert_false(bitnet__utf8_valid("\x80", 1));
    assert_int_equal(bitnet__json_depth("{\"[[[\":[1,{}]}", 14, 32), 3);
    assert_int_equal(bitnet__json_depth("\"\\\"[\"", 5, 32), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test_setup_teardown(test_hostile_dirs, setup, teardown),
        cmocka_unit_test(test_spm_protobuf),
        cmocka_unit_test(test_convert_args),
        cmocka_unit_test_setup_teardown(test_load_options, setup, teardown),
        cmocka_unit_test(test_utf8_and_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
