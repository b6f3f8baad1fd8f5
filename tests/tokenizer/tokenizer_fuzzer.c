/*
 * Tokenizer fuzz target. The first input byte selects what is exercised:
 *   'G'           the rest is a GGUF file: parse, load its vocabulary (any
 *                 pre-tokenizer), tokenize and detokenize a fixed text;
 *   anything else bit 0: SentencePiece (1) or byte-level BPE (0) built-in
 *                 vocabulary; bits 1-2: BPE pre-tokenizer (llama3, default,
 *                 gpt-2); bit 3: parse special tokens; bit 4: add BOS. The
 *                 rest is the text. Checks: byte-level BPE round-trips
 *                 exactly, and streaming detokenization of the input read
 *                 as token ids yields valid UTF-8.
 * Built with -Dfuzzing=true as a libFuzzer binary; otherwise the replay
 * driver runs it over the committed corpus as a test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "format/gguf.h"
#include "model/model.h"
#include "text/vocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                          \
    do {                                                                  \
        if (!(c)) {                                                       \
            fprintf(stderr, "tokenizer fuzz: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                      \
        }                                                                 \
    } while (0)

static void put_str(uint8_t *arr, size_t *o, const char *s, size_t l)
{
    uint64_t ll = l;
    memcpy(arr + *o, &ll, 8);
    memcpy(arr + *o + 8, s, l);
    *o += 8 + l;
}

static size_t put_cp(char *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    o[0] = (char)(0xC0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 63));
    return 2;
}

/* Build a vocabulary from writer keys; NULL on failure. */
static bitnet_vocab *finish(bitnet_gguf_writer *w, int32_t pretok)
{
    uint8_t *buf = NULL;
    size_t size = 0;
    bitnet_gguf *g = NULL;
    bitnet_vocab *v = NULL;
    if (bitnet__gguf_w_buffer(w, &buf, &size) == BITNET_OK && bitnet__gguf_parse(&g, buf, size) == BITNET_OK) {
        bitnet_vocab_desc vd;
        bitnet__gguf_vocab_desc(g, &vd);
        bitnet__vocab_load(&v, &vd, pretok, NULL);
    }
    bitnet__gguf_free(g);
    free(buf);
    bitnet__gguf_writer_free(w);
    return v;
}

static bitnet_vocab *make_bpe(int32_t pretok)
{
    static const char *const extra[] = { "he", "ll", "llo", "hello", "\xc4\xa0" "w", "or", "\xc4\xa0" "wor",
                                         "ld", "\xc4\xa0" "world", "12", "123", "\xc4\xa0\xc4\xa0" };
    static const char *const merges[] = { "h e", "l l", "ll o", "he llo", "\xc4\xa0 w", "o r", "\xc4\xa0w or",
                                          "l d", "\xc4\xa0wor ld", "1 2", "12 3", "\xc4\xa0 \xc4\xa0" };
    static const char *const specials[] = { "<|bos|>", "<|eos|>", "<|eot_id|>", "<|eot|>" };
    size_t ne = sizeof(extra) / sizeof(extra[0]), nm = sizeof(merges) / sizeof(merges[0]);
    size_t n = 256 + ne + 4, o = 0, mo = 0;
    uint8_t arr[8192], marr[1024];
    int32_t types[512];
    size_t k = 0;
    for (unsigned b = 0; b < 256; b++, k++) {
        unsigned cp = b;
        if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
            unsigned c = 0;
            for (unsigned i = 0; i < b; i++)
                if (!((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE)) c++;
            cp = 0x100 + c;
        }
        char s[4];
        put_str(arr, &o, s, put_cp(s, cp));
        types[k] = 1;
    }
    for (size_t i = 0; i < ne; i++, k++) { put_str(arr, &o, extra[i], strlen(extra[i])); types[k] = 1; }
    for (size_t i = 0; i < 4; i++, k++) { put_str(arr, &o, specials[i], strlen(specials[i])); types[k] = 3; }
    for (size_t i = 0; i < nm; i++) put_str(marr, &mo, merges[i], strlen(merges[i]));
    bitnet_gguf_writer *w;
    if (bitnet__gguf_writer_create(&w, 32)) return NULL;
    bitnet__gguf_w_str(w, "tokenizer.ggml.model", "gpt2", 4);
    bitnet__gguf_w_raw(w, "tokenizer.ggml.tokens", GGUF_VT_ARR, GGUF_VT_STR, n, arr, o);
    bitnet__gguf_w_raw(w, "tokenizer.ggml.token_type", GGUF_VT_ARR, GGUF_VT_I32, n, types, n * 4);
    bitnet__gguf_w_raw(w, "tokenizer.ggml.merges", GGUF_VT_ARR, GGUF_VT_STR, nm, marr, mo);
    bitnet__gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(n - 4));
    bitnet__gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(n - 3));
    return finish(w, pretok);
}

static bitnet_vocab *make_spm(void)
{
    static const char *const extra[] = { "\xe2\x96\x81", "\xe2\x96\x81h", "\xe2\x96\x81he", "ll", "llo",
                                         "\xe2\x96\x81hello", "\xe2\x96\x81w", "or", "ld", "\xc3\xa9", "ab" };
    size_t ne = sizeof(extra) / sizeof(extra[0]);
    size_t n = 3 + 256 + ne, o = 0;
    uint8_t arr[8192];
    int32_t types[512];
    float scores[512];
    put_str(arr, &o, "<unk>", 5); types[0] = 2; scores[0] = 0;
    put_str(arr, &o, "<s>", 3); types[1] = 3; scores[1] = 0;
    put_str(arr, &o, "</s>", 4); types[2] = 3; scores[2] = 0;
    for (unsigned b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof(s), "<0x%02X>", b);
        put_str(arr, &o, s, 6);
        types[3 + b] = 6;
        scores[3 + b] = 0;
    }
    for (size_t i = 0; i < ne; i++) {
        put_str(arr, &o, extra[i], strlen(extra[i]));
        types[259 + i] = 1;
        scores[259 + i] = -(float)(i % 5);   /* some ties */
    }
    bitnet_gguf_writer *w;
    if (bitnet__gguf_writer_create(&w, 32)) return NULL;
    bitnet__gguf_w_str(w, "tokenizer.ggml.model", "llama", 5);
    bitnet__gguf_w_raw(w, "tokenizer.ggml.tokens", GGUF_VT_ARR, GGUF_VT_STR, n, arr, o);
    bitnet__gguf_w_raw(w, "tokenizer.ggml.token_type", GGUF_VT_ARR, GGUF_VT_I32, n, types, n * 4);
    bitnet__gguf_w_raw(w, "tokenizer.ggml.scores", GGUF_VT_ARR, GGUF_VT_F32, n, scores, n * 4);
    return finish(w, BITNET_PRETOK_AUTO);
}

static int valid_utf8(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        size_t l = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (!l || i + l > n) return 0;
        for (size_t k = 1; k < l; k++)
            if ((u[i + k] & 0xC0) != 0x80) return 0;
        i += l;
    }
    return 1;
}

/* The streaming detokenizer needs a model; a zeroed one carrying the vocab
 * is enough for the tokenizer entry points. */
static void stream_check(bitnet_vocab *v, const uint8_t *data, size_t size)
{
    struct bitnet_model m;
    memset(&m, 0, sizeof(m));
    m.vocab = v;
    bitnet_detokenizer *d;
    CHECK(bitnet_detokenizer_create(&d, &m, size & 1 ? BITNET_DETOK_SPECIAL : 0) == BITNET_OK);
    char out[512];
    int32_t nt = bitnet__vocab_n_tokens(v);
    for (size_t i = 0; i + 1 < size; i += 2) {
        int32_t t = (int32_t)((data[i] | (unsigned)data[i + 1] << 8) % (unsigned)nt);
        size_t n;
        int rc = bitnet_detokenizer_feed(d, t, out, (size_t)(data[i] & 7), &n);
        if (rc == BITNET_E_BUFFER_TOO_SMALL) {
            CHECK(n > (size_t)(data[i] & 7) && n <= sizeof(out));
            rc = bitnet_detokenizer_feed(d, t, out, sizeof(out), &n);
        }
        CHECK(rc == BITNET_OK);
        CHECK(valid_utf8(out, n));
    }
    size_t n;
    CHECK(bitnet_detokenizer_flush(d, out, sizeof(out), &n) == BITNET_OK);
    CHECK(valid_utf8(out, n));
    bitnet_detokenizer_free(d);
}

static void exercise(bitnet_vocab *v, const char *text, size_t len, uint32_t tflags, int check_roundtrip)
{
    size_t n = 0;
    int rc = bitnet__vocab_tokenize(v, text, len, tflags, NULL, 0, &n);
    CHECK(rc == BITNET_OK || rc == BITNET_E_BUFFER_TOO_SMALL);
    int32_t *ids = malloc((n + 1) * sizeof(*ids));
    if (!ids) return;
    size_t n2 = 0;
    CHECK(bitnet__vocab_tokenize(v, text, len, tflags, ids, n + 1, &n2) == BITNET_OK && n2 == n);
    int32_t nt = bitnet__vocab_n_tokens(v);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < nt);
    if (n > 1) {   /* a small buffer reports the same count */
        CHECK(bitnet__vocab_tokenize(v, text, len, tflags, ids, n / 2, &n2) == BITNET_E_BUFFER_TOO_SMALL);
        CHECK(n2 == n);
        CHECK(bitnet__vocab_tokenize(v, text, len, tflags, ids, n + 1, &n2) == BITNET_OK);
    }
    size_t bl = 0;
    rc = bitnet__vocab_detokenize(v, ids, n, BITNET_DETOK_SPECIAL, NULL, 0, &bl);
    CHECK(rc == BITNET_OK || rc == BITNET_E_BUFFER_TOO_SMALL);
    char *back = malloc(bl + 1);
    if (back) {
        size_t bl2;
        CHECK(bitnet__vocab_detokenize(v, ids, n, BITNET_DETOK_SPECIAL, back, bl, &bl2) == BITNET_OK && bl2 == bl);
        if (check_roundtrip) CHECK(bl == len && memcmp(back, text, len) == 0);
        free(back);
    }
    for (size_t i = 0; i < n && i < 64; i++) {
        char pc[256];
        size_t pl;
        rc = bitnet__vocab_piece(v, ids[i], (uint32_t)i & 1, pc, sizeof(pc), &pl);
        CHECK(rc == BITNET_OK || rc == BITNET_E_BUFFER_TOO_SMALL);
    }
    free(ids);
}

static bitnet_vocab *bpe[3], *spm;

static void cleanup(void)
{
    for (int i = 0; i < 3; i++) bitnet__vocab_free(bpe[i]);
    bitnet__vocab_free(spm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        init = 1;
        bpe[0] = make_bpe(BITNET_PRETOK_LLAMA3);
        bpe[1] = make_bpe(BITNET_PRETOK_DEFAULT);
        bpe[2] = make_bpe(BITNET_PRETOK_GPT2);
        spm = make_spm();
        CHECK(bpe[0] && bpe[1] && bpe[2] && spm);
        atexit(cleanup);
    }
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (mode == 'G') {
        bitnet_gguf *g = NULL;
        if (bitnet__gguf_parse(&g, data, size) == BITNET_OK) {
            bitnet_vocab *v = NULL;
            bitnet_vocab_desc vd;
            bitnet__gguf_vocab_desc(g, &vd);
            if (bitnet__vocab_load(&v, &vd, (int32_t)(size % 4), NULL) == BITNET_OK) {
                static const char txt[] = "Hello, world! <|eot_id|> 123456 \xe6\x9d\xb1\xff it's  \n\n x";
                exercise(v, txt, sizeof(txt) - 1, BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL, 0);
                stream_check(v, (const uint8_t *)txt, sizeof(txt) - 1);
                bitnet__vocab_free(v);
            }
            bitnet__gguf_free(g);
        }
        return 0;
    }
    uint32_t tflags = (mode & 8 ? BITNET_TOKENIZE_PARSE_SPECIAL : 0u) | (mode & 16 ? BITNET_TOKENIZE_ADD_BOS : 0u);
    bitnet_vocab *v = mode & 1 ? spm : bpe[((mode >> 1) & 3) % 3];
    exercise(v, (const char *)data, size, tflags, !(mode & 1) && !(mode & 16));
    stream_check(v, data, size);
    return 0;
}
