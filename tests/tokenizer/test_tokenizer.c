/*
 * Tokenizer tests: upstream vectors, the documented examples, round trips,
 * streaming detokenization, invalid input and argument checking.
 * Tests that need ../shared/data skip when BITNET_SHARED_DATA is unset; an
 * in-memory vocabulary (written with the GGUF writer) covers the rest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "format/gguf.h"
#include "text/vocab.h"
#include "test_util.h"

/* ---- helpers ----------------------------------------------------------- */

static bitnet_model *load_vocab(const char *rel, int32_t pretok)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", bt_shared_dir(), rel);
    bitnet_model_params p;
    bitnet_model_params_init(&p);
    p.flags = BITNET_MODEL_VOCAB_ONLY;
    p.pre_tokenizer = pretok;
    bitnet_model *m = NULL;
    int rc = bitnet_model_load_file(&m, path, &p);
    if (rc) printf("load %s: %s\n", path, bitnet_last_error());
    assert_int_equal(rc, BITNET_OK);
    return m;
}

static size_t tok(const bitnet_model *m, const char *s, size_t len, uint32_t fl, int32_t **ids)
{
    size_t n = 0;
    int rc = bitnet_tokenize(m, s, len, fl, NULL, 0, &n);
    assert_true(rc == BITNET_OK || rc == BITNET_E_BUFFER_TOO_SMALL);
    *ids = malloc((n + 1) * sizeof(int32_t));
    assert_non_null(*ids);
    size_t n2 = 0;
    assert_int_equal(bitnet_tokenize(m, s, len, fl, *ids, n + 1, &n2), BITNET_OK);
    assert_int_equal(n, n2);
    return n;
}

static char *detok(const bitnet_model *m, const int32_t *ids, size_t n, uint32_t fl, size_t *len)
{
    size_t need = 0;
    int rc = bitnet_detokenize(m, ids, n, fl, NULL, 0, &need);
    assert_true(rc == BITNET_OK || rc == BITNET_E_BUFFER_TOO_SMALL);
    char *b = malloc(need + 1);
    assert_non_null(b);
    assert_int_equal(bitnet_detokenize(m, ids, n, fl, b, need, len), BITNET_OK);
    assert_int_equal(*len, need);
    b[need] = 0;
    return b;
}

/* Compare tokenize(text) with space-separated expected ids. */
static int check_ids(const bitnet_model *m, const char *text, size_t len, uint32_t fl, const char *expect,
                     const char *what)
{
    int32_t *ids;
    size_t n = tok(m, text, len, fl, &ids);
    int32_t exp[4096];
    size_t ne = 0;
    const char *p = expect;
    char *e;
    for (;;) {
        long x = strtol(p, &e, 10);
        if (e == p) break;
        assert_true(ne < 4096);
        exp[ne++] = (int32_t)x;
        p = e;
    }
    int ok = n == ne && (n == 0 || memcmp(ids, exp, n * sizeof(int32_t)) == 0);
    if (!ok) {
        printf("MISMATCH %s: \"%.*s\"\n  got:", what, (int)(len > 200 ? 200 : len), text);
        for (size_t i = 0; i < n; i++) printf(" %d", ids[i]);
        printf("\n  exp: %s\n", expect);
    }
    free(ids);
    return ok;
}

/* ---- upstream vectors --------------------------------------------------- */

static void run_vectors(const char *name)
{
    char rel[256], path[4096];
    snprintf(rel, sizeof(rel), "vocab/%s.gguf", name);
    bitnet_model *m = load_vocab(rel, BITNET_PRETOK_AUTO);
    size_t il, ol;
    snprintf(path, sizeof(path), "%s/vocab/%s.gguf.inp", bt_shared_dir(), name);
    char *inp = bt_read_file(path, &il);
    snprintf(path, sizeof(path), "%s/vocab/%s.gguf.out", bt_shared_dir(), name);
    char *out = bt_read_file(path, &ol);
    assert_non_null(inp);
    assert_non_null(out);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *p = inp, *q = out;
    int n = 0, bad = 0;
    for (;;) {
        char *s = strstr(p, sep);
        if (!s) break;
        char *nl = strchr(q, '\n');
        assert_non_null(nl);
        *nl = 0;
        if (!check_ids(m, p, (size_t)(s - p), 0, q, name)) bad++;
        n++;
        p = s + sizeof(sep) - 1;
        q = nl + 1;
    }
    printf("%s: %d cases, %d mismatches\n", name, n, bad);
    assert_true(n > 10);
    assert_int_equal(bad, 0);
    free(inp);
    free(out);
    bitnet_model_free(m);
}

static void test_vectors_llama_bpe(void **st) { (void)st; BT_NEED_SHARED(); run_vectors("ggml-vocab-llama-bpe"); }
static void test_vectors_gpt2(void **st) { (void)st; BT_NEED_SHARED(); run_vectors("ggml-vocab-gpt-2"); }
static void test_vectors_llama_spm(void **st) { (void)st; BT_NEED_SHARED(); run_vectors("ggml-vocab-llama-spm"); }

/* ---- documented examples ------------------------------------------------ */

static void test_chat_example(void **st)
{
    (void)st;
    BT_NEED_SHARED();
    bitnet_model *m = load_vocab("vocab/ggml-vocab-llama-bpe.gguf", BITNET_PRETOK_AUTO);
    const char *s = "User: hi<|eot_id|>Assistant: ";
    assert_true(check_ids(m, s, strlen(s), BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL,
                          "128000 1502 25 15960 128009 72803 25 220", "chat"));
    /* without parse-special the text is plain text */
    int32_t *ids;
    size_t n = tok(m, s, strlen(s), BITNET_TOKENIZE_ADD_BOS, &ids);
    for (size_t i = 0; i < n; i++) assert_true(ids[i] != 128009);
    free(ids);
    assert_int_equal(bitnet_token_bos(m), 128000);
    assert_int_equal(bitnet_token_eos(m), 128001);
    assert_int_equal(bitnet_token_eot(m), 128009);
    assert_int_equal(bitnet_token_is_eog(m, 128009), 1);
    assert_int_equal(bitnet_token_is_eog(m, 128001), 1);
    assert_int_equal(bitnet_token_is_eog(m, 128000), 0);
    assert_int_equal(bitnet_token_is_eog(m, 15960), 0);
    bitnet_model_free(m);
}

static void test_model_prompt(void **st)
{
    (void)st;
    BT_NEED_SHARED();
    char path[4096];
    size_t pl, tl;
    snprintf(path, sizeof(path), "%s/models/b158-llama3vocab-i2s.prompt.txt", bt_shared_dir());
    char *prompt = bt_read_file(path, &pl);
    snprintf(path, sizeof(path), "%s/models/b158-llama3vocab-i2s.tokens.txt", bt_shared_dir());
    char *toks = bt_read_file(path, &tl);
    assert_non_null(prompt);
    assert_non_null(toks);
    while (pl && (prompt[pl - 1] == '\n' || prompt[pl - 1] == '\r')) pl--;   /* file's final newline */
    bitnet_model *m = load_vocab("models/b158-llama3vocab-i2s.gguf", BITNET_PRETOK_AUTO);
    assert_true(check_ids(m, prompt, pl, BITNET_TOKENIZE_ADD_BOS, toks, "prompt"));
    bitnet_model_free(m);
    free(prompt);
    free(toks);
}

static void test_reduced_vocab(void **st)
{
    (void)st;
    BT_NEED_SHARED();
    static const char *const cases[][2] = {
        { "The quick brown fox jumps over the lazy dog.",
          "2000 791 934 875 293 654 77 282 78 87 503 1538 82 927 279 1208 89 88 294 540 13" },
        { "Hello, world! It's 42 degrees outside, isn't it?",
          "2000 39 301 385 11 1917 0 1102 596 220 19 17 409 70 265 288 704 82 579 11 374 77 956 433 30" },
        { "Once upon a time, there was a little girl named Lily. She loved to play outside.",
          "2000 1966 346 709 263 264 892 11 1070 574 264 326 1468 273 342 404 75 308 309 291 445 1570 13 328 383 "
          "781 85 291 311 1514 704 82 579 13" },
        { "  multiple   spaces and\nnewlines\ttabs",
          "2000 220 296 495 575 273 256 993 582 288 323 198 943 75 1572 197 83 370 82" },
        { "\xc3\x9cn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 \xe2\x80\x94 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x99\x82",
          "2000 127 250 77 127 107 66 127 114 67 978 639 242 220 162 251 109 160 118 105 220 172 253 247 224" },
    };
    bitnet_model *m = load_vocab("models/b158-i2s.gguf", BITNET_PRETOK_AUTO);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_true(check_ids(m, cases[i][0], strlen(cases[i][0]), BITNET_TOKENIZE_ADD_BOS, cases[i][1], "reduced"));
    assert_int_equal(bitnet_token_bos(m), 2000);
    assert_int_equal(bitnet_token_eos(m), 2001);
    assert_int_equal(bitnet_token_eot(m), 2002);
    assert_int_equal(bitnet_token_is_eog(m, 2001), 1);
    assert_int_equal(bitnet_token_is_eog(m, 2002), 1);
    bitnet_model_free(m);
}

/* The "default" pre-tokenizer (bitnet.cpp on the official file) on the
 * example of format.md §7.1: "read_file" is split at the underscore. */
static void test_default_pretok(void **st)
{
    (void)st;
    BT_NEED_SHARED();
    bitnet_model *d = load_vocab("vocab/ggml-vocab-llama-bpe.gguf", BITNET_PRETOK_DEFAULT);
    bitnet_model *l = load_vocab("vocab/ggml-vocab-llama-bpe.gguf", BITNET_PRETOK_LLAMA3);
    assert_true(check_ids(d, "read_file", 9, 0, "888 62 1213", "default"));
    assert_true(check_ids(l, "read_file", 9, 0, "888 2517", "llama3"));
    /* digits: default keeps runs split in threes from the left, like llama3 */
    int32_t *a, *b;
    const char *s = "x 1234567 y";
    size_t na = tok(d, s, strlen(s), 0, &a), nb = tok(l, s, strlen(s), 0, &b);
    size_t len;
    char *t = detok(d, a, na, 0, &len);
    assert_string_equal(t, s);
    free(t);
    (void)nb;
    free(a);
    free(b);
    bitnet_model_free(d);
    bitnet_model_free(l);
}

/* The official 2B4T file has no tokenizer.ggml.pre: AUTO then picks llama3
 * (and says so at INFO); BITNET_PRETOK_DEFAULT gives bitnet.cpp's split. */
static int saw_llama_bpe;
static void log_cb(void *user, int32_t level, const char *msg)
{
    (void)user;
    if (level == BITNET_LOG_INFO && strstr(msg, "llama-bpe") && strstr(msg, "BITNET_PRETOK_DEFAULT"))
        saw_llama_bpe = 1;
}

static void test_missing_pre(void **st)
{
    (void)st;
    BT_NEED_SHARED();
    char path[4096];
    size_t fl;
    snprintf(path, sizeof(path), "%s/vocab/ggml-vocab-llama-bpe.gguf", bt_shared_dir());
    char *file = bt_read_file(path, &fl);
    assert_non_null(file);
    bitnet_gguf *g;
    assert_int_equal(bitnet__gguf_parse(&g, (const uint8_t *)file, fl), BITNET_OK);
    bitnet_gguf_writer *w;
    assert_int_equal(bitnet__gguf_writer_create(&w, 32), BITNET_OK);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const bitnet_gguf_kv *kv = &g->kv[i];
        if (kv->key.len == 18 && !memcmp(kv->key.ptr, "tokenizer.ggml.pre", 18)) continue;
        assert_int_equal(bitnet__gguf_w_copy_kv(w, kv), BITNET_OK);
    }
    uint8_t *buf;
    size_t size;
    assert_int_equal(bitnet__gguf_w_buffer(w, &buf, &size), BITNET_OK);
    bitnet__gguf_writer_free(w);
    bitnet__gguf_free(g);
    free(file);

    static const struct { int32_t pt; const char *ids; } cases[] = {
        { BITNET_PRETOK_AUTO, "888 2517" }, { BITNET_PRETOK_LLAMA3, "888 2517" },
        { BITNET_PRETOK_DEFAULT, "888 62 1213" },
    };
    for (size_t k = 0; k < 3; k++) {
        bitnet_model_params p;
        bitnet_model_params_init(&p);
        p.flags = BITNET_MODEL_VOCAB_ONLY;
        p.pre_tokenizer = cases[k].pt;
        p.log_fn = log_cb;
        p.log_level = BITNET_LOG_INFO;
        saw_llama_bpe = 0;
        bitnet_model *m = NULL;
        assert_int_equal(bitnet_model_load_buffer(&m, buf, size, &p), BITNET_OK);
        assert_true(check_ids(m, "read_file", 9, 0, cases[k].ids, "missing pre"));
        assert_int_equal(saw_llama_bpe, cases[k].pt == BITNET_PRETOK_AUTO);
        /* the chat example does not depend on the choice */
        const char *s = "User: hi<|eot_id|>Assistant: ";
        assert_true(check_ids(m, s, strlen(s), BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL,
                              "128000 1502 25 15960 128009 72803 25 220", "missing pre chat"));
        bitnet_model_free(m);
    }
    free(buf);
}

/* ---- round trip property ------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static size_t put_cp(char *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 63)); o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

static size_t random_text(char *o, size_t max_cps)
{
    static const uint32_t pool[] = {
        ' ', ' ', ' ', '\n', '\t', '\r', '\'', '.', ',', '_', '-', '!', '$', '<', '|', '>', '0', '7',
        0xA0, 0x2009, 0x3000, 0x0660, 0x00B2, 0x0301, 0x00E9, 0x00DF, 0x0416, 0x05D0, 0x0627, 0x0915,
        0x4E2D, 0x6587, 0x3042, 0xAC00, 0x1F600, 0x1F44D, 0x1F3FD, 0x200D, 0x2764, 0xFE0F, 0x2014, 0x00AB,
    };
    size_t n = rnd() % max_cps, o_len = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = rnd() % 10;
        uint32_t cp;
        if (r < 4) cp = 'a' + rnd() % 26;
        else if (r < 5) cp = 'A' + rnd() % 26;
        else if (r < 6) cp = '0' + rnd() % 10;
        else cp = pool[rnd() % (sizeof(pool) / sizeof(pool[0]))];
        o_len += put_cp(o + o_len, cp);
    }
    return o_len;
}

static void roundtrip(const bitnet_model *m, int iters)
{
    char buf[1024];
    for (int it = 0; it < iters; it++) {
        size_t n = random_text(buf, 200);
        int32_t *ids;
        size_t nt = tok(m, buf, n, 0, &ids);
        size_t len;
        char *t = detok(m, ids, nt, 0, &len);
        if (len != n || memcmp(t, buf, n)) printf("round trip failed: \"%.*s\"\n", (int)n, buf);
        assert_int_equal(len, n);
        assert_memory_equal(t, buf, n);
        /* the heap merge path gives the same ids */
        size_t save = bitnet__bpe_scan_max;
        bitnet__bpe_scan_max = 0;
        int32_t *ids2;
        size_t nt2 = tok(m, buf, n, 0, &ids2);
        bitnet__bpe_scan_max = save;
        assert_int_equal(nt, nt2);
        if (nt) assert_memory_equal(ids, ids2, nt * sizeof(int32_t));
        free(ids2);
        free(ids);
        free(t);
    }
}

/* Long texts (piece cache on) give the same ids as with the cache off. */
static void test_piece_cache(void **st)
{
    (void)st;
    BT_NEED_SHARED();
    char path[4096];
    size_t tl;
    snprintf(path, sizeof(path), "%s/text/tinystories-subset-lowercase.txt", bt_shared_dir());
    char *text = bt_read_file(path, &tl);
    assert_non_null(text);
    if (tl > 200000) tl = 200000;
    /* mix in other scripts so that long and multi-token pieces occur */
    char mix[20000];
    size_t ml = 0;
    while (ml < sizeof(mix) - 1000) ml += random_text(mix + ml, 200);
    static const int32_t pts[] = { BITNET_PRETOK_LLAMA3, BITNET_PRETOK_DEFAULT, BITNET_PRETOK_GPT2 };
    for (size_t k = 0; k < 3; k++) {
        bitnet_model *m = load_vocab("vocab/ggml-vocab-llama-bpe.gguf", pts[k]);
        for (int which = 0; which < 2; which++) {
            const char *t = which ? mix : text;
            size_t len = which ? ml : tl;
            int32_t *a, *b;
            size_t na = tok(m, t, len, 0, &a);
            size_t save = bitnet__bpe_cache_min;
            bitnet__bpe_cache_min = SIZE_MAX;
            size_t nb = tok(m, t, len, 0, &b);
            bitnet__bpe_cache_min = save;
            assert_int_equal(na, nb);
            assert_memory_equal(a, b, na * sizeof(int32_t));
            free(a);
            free(b);
        }
        bitnet_model_free(m);
    }
    free(text);
}

static void test_roundtrip(void **st)
{
    (void)st;
    BT_NEED_SHARED();
    static const int32_t pts[] = { BITNET_PRETOK_LLAMA3, BITNET_PRETOK_DEFAULT, BITNET_PRETOK_GPT2 };
    for (size_t k = 0; k < 3; k++) {
        bitnet_model *m = load_vocab("vocab/ggml-vocab-llama-bpe.gguf", pts[k]);
        roundtrip(m, 300);
        bitnet_model_free(m);
    }
    bitnet_model *m = load_vocab("vocab/ggml-vocab-gpt-2.gguf", BITNET_PRETOK_AUTO);
    roundtrip(m, 300);
    bitnet_model_free(m);
    /* SentencePiece: the prefixed space is dropped again */
    m = load_vocab("vocab/ggml-vocab-llama-spm.gguf", BITNET_PRETOK_AUTO);
    roundtrip(m, 300);
    bitnet_model_free(m);
}

/* ---- in-memory vocabulary (no external data) --------------------------- */

/* Byte-level BPE vocabulary: the 256 byte tokens (GPT-2 byte-to-unicode
 * form), a few merges, and three control tokens. */
static bitnet_model *mem_model(uint8_t **bufp)
{
    static const char *const extra[] = { "he", "ll", "llo", "hello", "\xc4\xa0" "w", "or", "\xc4\xa0" "wor",
                                         "ld", "\xc4\xa0" "world" };
    static const char *const merges[] = { "h e", "l l", "ll o", "he llo", "\xc4\xa0 w", "o r", "\xc4\xa0w or",
                                          "l d", "\xc4\xa0wor ld" };
    static const char *const specials[] = { "<|bos|>", "<|eos|>", "<|eot_id|>" };
    size_t n = 256 + sizeof(extra) / sizeof(extra[0]) + 3;
    /* token strings array encoding: u64 len + bytes each */
    size_t cap = 64 * n, o = 0;
    uint8_t *arr = malloc(cap);
    int32_t *types = malloc(n * sizeof(int32_t));
    assert_non_null(arr);
    assert_non_null(types);
    size_t k = 0;
    for (unsigned b = 0; b < 256; b++, k++) {
        /* GPT-2 byte-to-unicode */
        unsigned cp = b;
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
            unsigned c = 0;
            for (unsigned i = 0; i < b; i++)
                if (!((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE)) c++;
            cp = 0x100 + c;
        }
        char s[4];
        size_t l = put_cp(s, cp);
        uint64_t ll = l;
        memcpy(arr + o, &ll, 8);
        memcpy(arr + o + 8, s, l);
        o += 8 + l;
        types[k] = 1;
    }
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++, k++) {
        uint64_t ll = strlen(extra[i]);
        memcpy(arr + o, &ll, 8);
        memcpy(arr + o + 8, extra[i], ll);
        o += 8 + ll;
        types[k] = 1;
    }
    for (size_t i = 0; i < 3; i++, k++) {
        uint64_t ll = strlen(specials[i]);
        memcpy(arr + o, &ll, 8);
        memcpy(arr + o + 8, specials[i], ll);
        o += 8 + ll;
        types[k] = 3;
    }
    uint8_t marr[1024];
    size_t mo = 0;
    for (size_t i = 0; i < sizeof(merges) / sizeof(merges[0]); i++) {
        uint64_t ll = strlen(merges[i]);
        memcpy(marr + mo, &ll, 8);
        memcpy(marr + mo + 8, merges[i], ll);
        mo += 8 + ll;
    }
    bitnet_gguf_writer *w;
    assert_int_equal(bitnet__gguf_writer_create(&w, 32), BITNET_OK);
    assert_int_equal(bitnet__gguf_w_str(w, "general.architecture", "gpt2", 4), BITNET_OK);
    assert_int_equal(bitnet__gguf_w_str(w, "tokenizer.ggml.model", "gpt2", 4), BITNET_OK);
    assert_int_equal(bitnet__gguf_w_str(w, "tokenizer.ggml.pre", "llama-bpe", 9), BITNET_OK);
    assert_int_equal(bitnet__gguf_w_raw(w, "tokenizer.ggml.tokens", GGUF_VT_ARR, GGUF_VT_STR, n, arr, o), BITNET_OK);
    assert_int_equal(bitnet__gguf_w_raw(w, "tokenizer.ggml.token_type", GGUF_VT_ARR, GGUF_VT_I32, n, types,
                                        n * sizeof(int32_t)), BITNET_OK);
    assert_int_equal(bitnet__gguf_w_raw(w, "tokenizer.ggml.merges", GGUF_VT_ARR, GGUF_VT_STR,
                                        sizeof(merges) / sizeof(merges[0]), marr, mo), BITNET_OK);
    assert_int_equal(bitnet__gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(n - 3)), BITNET_OK);
    assert_int_equal(bitnet__gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(n - 2)), BITNET_OK);
    assert_int_equal(bitnet__gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1), BITNET_OK);
    size_t size;
    assert_int_equal(bitnet__gguf_w_buffer(w, bufp, &size), BITNET_OK);
    bitnet__gguf_writer_free(w);
    free(arr);
    free(types);
    bitnet_model_params p;
    bitnet_model_params_init(&p);
    p.flags = BITNET_MODEL_VOCAB_ONLY;
    bitnet_model *m = NULL;
    int rc = bitnet_model_load_buffer(&m, *bufp, size, &p);
    if (rc) printf("mem model: %s\n", bitnet_last_error());
    assert_int_equal(rc, BITNET_OK);
    return m;
}

#define MEM_BOS 265
#define MEM_EOS 266
#define MEM_EOT 267

static void test_mem_basic(void **st)
{
    (void)st;
    uint8_t *buf;
    bitnet_model *m = mem_model(&buf);
    /* "hello world": whole-word tokens via ignore_merges / merges */
    assert_true(check_ids(m, "hello world", 11, 0, "259 264", "mem"));
    assert_true(check_ids(m, "hello world", 11, BITNET_TOKENIZE_ADD_BOS, "265 259 264", "mem bos"));
    /* "hellos": not a whole token, merged: hello + s */
    assert_true(check_ids(m, "hellos", 6, 0, "259 115", "mem merge"));
    /* special text */
    assert_true(check_ids(m, "he<|eot_id|>", 12, BITNET_TOKENIZE_PARSE_SPECIAL, "256 267", "mem special"));
    int32_t *ids;
    size_t n = tok(m, "he<|eot_id|>", 12, 0, &ids);
    assert_true(n > 2);
    for (size_t i = 0; i < n; i++) assert_true(ids[i] < 256 + 9);
    free(ids);
    assert_int_equal(bitnet_token_eot(m), MEM_EOT);
    assert_int_equal(bitnet_token_is_eog(m, MEM_EOT), 1);
    assert_int_equal(bitnet_token_is_eog(m, MEM_EOS), 1);
    assert_int_equal(bitnet_token_is_eog(m, MEM_BOS), 0);

    /* pieces: control tokens only with DETOK_SPECIAL */
    char pb[64];
    size_t pl;
    assert_int_equal(bitnet_token_to_piece(m, MEM_EOT, 0, pb, sizeof(pb), &pl), BITNET_OK);
    assert_int_equal(pl, 0);
    assert_int_equal(bitnet_token_to_piece(m, MEM_EOT, BITNET_DETOK_SPECIAL, pb, sizeof(pb), &pl), BITNET_OK);
    assert_int_equal(pl, 10);
    assert_memory_equal(pb, "<|eot_id|>", 10);
    assert_int_equal(bitnet_token_to_piece(m, 264, 0, pb, sizeof(pb), &pl), BITNET_OK);
    assert_int_equal(pl, 6);
    assert_memory_equal(pb, " world", 6);
    bitnet_model_free(m);
    free(buf);
}

static void test_mem_roundtrip(void **st)
{
    (void)st;
    uint8_t *buf;
    bitnet_model *m = mem_model(&buf);
    roundtrip(m, 200);
    /* a long text: piece cache on and off agree, and it round-trips */
    static char big[30000];
    size_t bl = 0;
    while (bl < sizeof(big) - 1000) {
        bl += random_text(big + bl, 200);
        memcpy(big + bl, " hello world", 12);
        bl += 12;
    }
    int32_t *a, *b;
    size_t na = tok(m, big, bl, 0, &a);
    size_t save = bitnet__bpe_cache_min;
    bitnet__bpe_cache_min = SIZE_MAX;
    size_t nb = tok(m, big, bl, 0, &b);
    bitnet__bpe_cache_min = save;
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(int32_t));
    size_t len;
    char *t = detok(m, a, na, 0, &len);
    assert_int_equal(len, bl);
    assert_memory_equal(t, big, bl);
    free(t);
    free(a);
    free(b);
    bitnet_model_free(m);
    free(buf);
}

static void test_invalid_utf8(void **st)
{
    (void)st;
    uint8_t *buf;
    bitnet_model *m = mem_model(&buf);
    static const char *const bad[] = {
        "\xff", "\xc3", "a\xe2\x82", "\xed\xa0\x80", "\xc0\x80", "\xf4\x90\x80\x80", "\x80\x80 x",
        "he\xf0\x9f\x99", "'\xff", " \xfe ", "12\xe6\x9d\x33",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = strlen(bad[i]);
        int32_t *ids;
        size_t nt = tok(m, bad[i], n, 0, &ids);
        size_t len;
        char *t = detok(m, ids, nt, 0, &len);
        /* invalid bytes map to their raw byte tokens: exact round trip */
        assert_int_equal(len, n);
        assert_memory_equal(t, bad[i], n);
        free(t);
        free(ids);
    }
    /* random bytes */
    char r[300];
    for (int it = 0; it < 300; it++) {
        size_t n = rnd() % sizeof(r);
        for (size_t i = 0; i < n; i++) r[i] = (char)rnd();
        int32_t *ids;
        size_t nt = tok(m, r, n, BITNET_TOKENIZE_PARSE_SPECIAL, &ids);
        size_t len;
        char *t = detok(m, ids, nt, 0, &len);
        assert_int_equal(len, n);
        assert_memory_equal(t, r, n);
        free(t);
        free(ids);
    }
    bitnet_model_free(m);
    free(buf);
}

static void test_streaming(void **st)
{
    (void)st;
    uint8_t *buf;
    bitnet_model *m = mem_model(&buf);
    bitnet_detokenizer *d;
    assert_int_equal(bitnet_detokenizer_create(&d, m, 0), BITNET_OK);
    /* "é" = C3 A9 and "🙂" = F0 9F 99 82 fed as single-byte tokens */
    static const unsigned char bytes[] = { 'a', 0xC3, 0xA9, 0xF0, 0x9F, 0x99, 0x82, 'b' };
    int32_t btok[256];
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        int32_t *ids;
        size_t nt = tok(m, &c, 1, 0, &ids);
        assert_int_equal(nt, 1);
        btok[b] = ids[0];
        free(ids);
    }
    char out[256];
    size_t n, total = 0;
    char acc[64];
    static const size_t expect_n[] = { 1, 0, 2, 0, 0, 0, 4, 1 };
    for (size_t i = 0; i < sizeof(bytes); i++) {
        assert_int_equal(bitnet_detokenizer_feed(d, btok[bytes[i]], out, sizeof(out), &n), BITNET_OK);
        assert_int_equal(n, expect_n[i]);
        memcpy(acc + total, out, n);
        total += n;
    }
    assert_int_equal(bitnet_detokenizer_flush(d, out, sizeof(out), &n), BITNET_OK);
    assert_int_equal(n, 0);
    assert_int_equal(total, sizeof(bytes));
    assert_memory_equal(acc, bytes, sizeof(bytes));

    /* an incomplete sequence then flush -> U+FFFD */
    assert_int_equal(bitnet_detokenizer_feed(d, btok[0xE6], out, sizeof(out), &n), BITNET_OK);
    assert_int_equal(n, 0);
    /* BUFFER_TOO_SMALL leaves the state unchanged */
    assert_int_equal(bitnet_detokenizer_flush(d, out, 2, &n), BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, 3);
    assert_int_equal(bitnet_detokenizer_flush(d, out, sizeof(out), &n), BITNET_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "\xef\xbf\xbd", 3);

    /* an interrupted sequence: lead byte then ASCII */
    assert_int_equal(bitnet_detokenizer_feed(d, btok[0xE6], out, sizeof(out), &n), BITNET_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bitnet_detokenizer_feed(d, btok['x'], out, 1, &n), BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, 4);
    assert_int_equal(bitnet_detokenizer_feed(d, btok['x'], out, sizeof(out), &n), BITNET_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "\xef\xbf\xbdx", 4);
    /* a stray continuation byte */
    assert_int_equal(bitnet_detokenizer_feed(d, btok[0x99], out, sizeof(out), &n), BITNET_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "\xef\xbf\xbd", 3);

    /* control tokens: nothing unless DETOK_SPECIAL */
    assert_int_equal(bitnet_detokenizer_feed(d, MEM_EOT, out, sizeof(out), &n), BITNET_OK);
    assert_int_equal(n, 0);
    bitnet_detokenizer_free(d);
    assert_int_equal(bitnet_detokenizer_create(&d, m, BITNET_DETOK_SPECIAL), BITNET_OK);
    assert_int_equal(bitnet_detokenizer_feed(d, MEM_EOT, out, sizeof(out), &n), BITNET_OK);
    assert_int_equal(n, 10);
    bitnet_detokenizer_free(d);

    /* random token streams: output is always valid UTF-8 */
    assert_int_equal(bitnet_detokenizer_create(&d, m, 0), BITNET_OK);
    for (int it = 0; it < 2000; it++) {
        int32_t t = (int32_t)(rnd() % 268);
        assert_int_equal(bitnet_detokenizer_feed(d, t, out, sizeof(out), &n), BITNET_OK);
        size_t i = 0;
        while (i < n) {
            uint32_t cp;
            const unsigned char *u = (const unsigned char *)out + i;
            unsigned c = u[0];
            size_t l = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            assert_true(c < 0x80 || (c >= 0xC2 && c <= 0xF4));
            assert_true(i + l <= n);
            for (size_t k = 1; k < l; k++) assert_int_equal(u[k] & 0xC0, 0x80);
            (void)cp;
            i += l;
        }
    }
    bitnet_detokenizer_free(d);
    bitnet_model_free(m);
    free(buf);
}

static void test_buffers_and_args(void **st)
{
    (void)st;
    uint8_t *buf;
    bitnet_model *m = mem_model(&buf);
    int32_t ids[8];
    size_t n = 99;
    /* BUFFER_TOO_SMALL reports the needed count and fills what fits */
    assert_int_equal(bitnet_tokenize(m, "hello world", 11, BITNET_TOKENIZE_ADD_BOS, ids, 2, &n),
                     BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], MEM_BOS);
    assert_int_equal(ids[1], 259);
    assert_int_equal(bitnet_tokenize(m, "hello world", 11, 0, NULL, 0, &n), BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, 2);
    assert_int_equal(bitnet_tokenize(m, "", 0, 0, NULL, 0, &n), BITNET_OK);
    assert_int_equal(n, 0);
    assert_int_equal(bitnet_tokenize(m, NULL, 0, BITNET_TOKENIZE_ADD_BOS, ids, 8, &n), BITNET_OK);
    assert_int_equal(n, 1);
    char cb[4];
    int32_t two[2] = { 259, 264 };
    assert_int_equal(bitnet_detokenize(m, two, 2, 0, cb, 4, &n), BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, 11);
    assert_int_equal(bitnet_token_to_piece(m, 264, 0, cb, 4, &n), BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(n, 6);

    /* invalid arguments */
    assert_int_equal(bitnet_tokenize(NULL, "a", 1, 0, ids, 8, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_tokenize(m, NULL, 1, 0, ids, 8, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_tokenize(m, "a", 1, 0, NULL, 8, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_tokenize(m, "a", 1, 0, ids, 8, NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_tokenize(m, "a", 1, 0x100, ids, 8, &n), BITNET_E_INVALID_ARG);
    assert_true(strlen(bitnet_last_error()) > 0);
    assert_int_equal(bitnet_token_to_piece(m, -1, 0, cb, 4, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_token_to_piece(m, 268, 0, cb, 4, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_token_to_piece(NULL, 0, 0, cb, 4, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_token_to_piece(m, 0, 0, NULL, 4, &n), BITNET_E_INVALID_ARG);
    int32_t badt[2] = { 1, 100000 };
    assert_int_equal(bitnet_detokenize(m, badt, 2, 0, cb, 4, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_detokenize(m, NULL, 2, 0, cb, 4, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_detokenize(NULL, badt, 1, 0, cb, 4, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_token_bos(NULL), -1);
    assert_int_equal(bitnet_token_eos(NULL), -1);
    assert_int_equal(bitnet_token_eot(NULL), -1);
    assert_int_equal(bitnet_token_is_eog(NULL, 1), 0);
    assert_int_equal(bitnet_token_is_eog(m, -5), 0);
    bitnet_detokenizer *d = (bitnet_detokenizer *)1;
    assert_int_equal(bitnet_detokenizer_create(&d, NULL, 0), BITNET_E_INVALID_ARG);
    assert_null(d);
    assert_int_equal(bitnet_detokenizer_create(NULL, m, 0), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_detokenizer_create(&d, m, 0x80), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_detokenizer_create(&d, m, 0), BITNET_OK);
    assert_int_equal(bitnet_detokenizer_feed(d, -1, cb, 4, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_detokenizer_feed(d, 268, cb, 4, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_detokenizer_feed(NULL, 1, cb, 4, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_detokenizer_feed(d, 1, NULL, 4, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_detokenizer_feed(d, 1, cb, 4, NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_detokenizer_flush(NULL, cb, 4, &n), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_detokenizer_flush(d, cb, 4, NULL), BITNET_E_INVALID_ARG);
    bitnet_detokenizer_free(d);
    bitnet_detokenizer_free(NULL);
    bitnet_model_free(m);
    free(buf);
}

/* A model without tokenizer keys: tokenizer calls report UNSUPPORTED. */
static void test_no_vocab(void **st)
{
    (void)st;
    bitnet_gguf_writer *w;
    assert_int_equal(bitnet__gguf_writer_create(&w, 32), BITNET_OK);
    assert_int_equal(bitnet__gguf_w_str(w, "general.architecture", "gpt2", 4), BITNET_OK);
    uint8_t *buf;
    size_t size;
    assert_int_equal(bitnet__gguf_w_buffer(w, &buf, &size), BITNET_OK);
    bitnet__gguf_writer_free(w);
    bitnet_model_params p;
    bitnet_model_params_init(&p);
    p.flags = BITNET_MODEL_VOCAB_ONLY;
    bitnet_model *m = NULL;
    int rc = bitnet_model_load_buffer(&m, buf, size, &p);
    if (rc == BITNET_OK) {
        size_t n;
        int32_t ids[4];
        assert_int_equal(bitnet_tokenize(m, "a", 1, 0, ids, 4, &n), BITNET_E_UNSUPPORTED);
        bitnet_detokenizer *d;
        assert_int_equal(bitnet_detokenizer_create(&d, m, 0), BITNET_E_UNSUPPORTED);
        assert_int_equal(bitnet_token_bos(m), -1);
        bitnet_model_free(m);
    } else {
        printf("note: a file without tokenizer keys does not load (%s)\n", bitnet_last_error());
    }
    free(buf);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mem_basic),
        cmocka_unit_test(test_mem_roundtrip),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_buffers_and_args),
        cmocka_unit_test(test_no_vocab),
        bt_shared_test(test_vectors_llama_bpe),
        bt_shared_test(test_vectors_gpt2),
        bt_shared_test(test_vectors_llama_spm),
        bt_shared_test(test_chat_example),
        bt_shared_test(test_model_prompt),
        bt_shared_test(test_reduced_vocab),
        bt_shared_test(test_default_pretok),
        bt_shared_test(test_missing_pre),
        bt_shared_test(test_roundtrip),
        bt_shared_test(test_piece_cache),
    };
    return BT_RUN(argc, argv, tests, NULL, NULL);
}
