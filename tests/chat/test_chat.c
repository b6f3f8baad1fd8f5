/*
 * Chat templates: golden renderings of every format, recognition of GGUF
 * template texts, buffer handling and argument checks, and the token ids of
 * the 2B4T rendering with the Llama-3 vocabulary (format.md 7.2).
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

#include "bitnet.h"
#include "sample/chat.h"
#include "format/gguf.h"
#include "test_util.h"

static const bitnet_chat_message conv[4] = {
    { "system", "You are helpful." },
    { "user", "hi" },
    { "assistant", "Hello!" },
    { "user", "How are you?" },
};

static char *render(const char *name, const bitnet_chat_message *m, size_t n,
                    int add_assistant)
{
    size_t need = 0;
    int rc = bitnet_chat_render(NULL, name, m, n, add_assistant, NULL, 0, &need);
    assert_int_equal(rc, BITNET_E_BUFFER_TOO_SMALL);
    char *buf = malloc(need + 1);
    assert_non_null(buf);
    size_t got = 0;
    rc = bitnet_chat_render(NULL, name, m, n, add_assistant, buf, need + 1, &got);
    assert_int_equal(rc, BITNET_OK);
    assert_int_equal(got, need);
    assert_int_equal(strlen(buf), got);
    /* exactly one byte short fails and reports the same size */
    char *small = malloc(need);
    assert_non_null(small);
    rc = bitnet_chat_render(NULL, name, m, n, add_assistant, small, need, &got);
    assert_int_equal(rc, BITNET_E_BUFFER_TOO_SMALL);
    assert_int_equal(got, need);
    free(small);
    return buf;
}

static void check(const char *name, int add_assistant, const char *want)
{
    char *got = render(name, conv, 4, add_assistant);
    assert_string_equal(got, want);
    free(got);
}

static void test_bitnet(void **state)
{
    (void)state;
    check("bitnet", 1,
          "<|begin_of_text|>System: You are helpful.<|eot_id|>User: hi<|eot_id|>"
          "Assistant: Hello!<|eot_id|>User: How are you?<|eot_id|>Assistant: ");
    check("bitnet", 0,
          "<|begin_of_text|>System: You are helpful.<|eot_id|>User: hi<|eot_id|>"
          "Assistant: Hello!<|eot_id|>User: How are you?<|eot_id|>");
    const bitnet_chat_message one = { "user", "hi" };
    char *s = render("bitnet", &one, 1, 1);
    assert_string_equal(s, "<|begin_of_text|>User: hi<|eot_id|>Assistant: ");
    free(s);
    /* no messages: BOS (and the prefix) only */
    s = render("bitnet", NULL, 0, 1);
    assert_string_equal(s, "<|begin_of_text|>Assistant: ");
    free(s);
}

static void test_llama3(void **state)
{
    (void)state;
    check("llama3", 1,
          "<|begin_of_text|>"
          "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n");
    check("llama3", 0,
          "<|begin_of_text|>"
          "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>");
}

static void test_falcon3(void **state)
{
    (void)state;
    check("falcon3", 1,
          "<|system|>\nYou are helpful.\n<|user|>\nhi\n<|assistant|>\nHello!\n"
          "<|user|>\nHow are you?\n<|assistant|>\n");
    check("falcon3", 0,
          "<|system|>\nYou are helpful.\n<|user|>\nhi\n<|assistant|>\nHello!\n"
          "<|user|>\nHow are you?\n");
}

static void test_chatml(void **state)
{
    (void)state;
    check("chatml", 1,
          "<|im_start|>system\nYou are helpful.<|im_end|>\n"
          "<|im_start|>user\nhi<|im_end|>\n"
          "<|im_start|>assistant\nHello!<|im_end|>\n"
          "<|im_start|>user\nHow are you?<|im_end|>\n"
          "<|im_start|>assistant\n");
    check("chatml", 0,
          "<|im_start|>system\nYou are helpful.<|im_end|>\n"
          "<|im_start|>user\nhi<|im_end|>\n"
          "<|im_start|>assistant\nHello!<|im_end|>\n"
          "<|im_start|>user\nHow are you?<|im_end|>\n");
}

static void test_content_verbatim(void **state)
{
    (void)state;
    /* content is inserted as given: spaces, newlines, UTF-8, special text */
    const bitnet_chat_message m = { "user", "  a\n\xc3\xa9<|eot_id|> " };
    char *s = render("bitnet", &m, 1, 0);
    assert_string_equal(s, "<|begin_of_text|>User:   a\n\xc3\xa9<|eot_id|> <|eot_id|>");
    free(s);
    const bitnet_chat_message e = { "assistant", "" };
    s = render("chatml", &e, 1, 0);
    assert_string_equal(s, "<|im_start|>assistant\n<|im_end|>\n");
    free(s);
}

static void test_recognise(void **state)
{
    (void)state;
    static const struct { const char *tmpl; const char *want; } cases[] = {
        /* the 2B4T GGUF (ms converter) template */
        { "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
          "{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + "
          "'\\n\\nBITNETAssistant: ' + eos_token }}{% elif message['role'] == "
          "'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
          "bitnet" },
        /* the training format */
        { "{% for message in messages %}{{ message['role'] | capitalize + ': ' + "
          "message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}",
          "bitnet" },
        { "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + "
          "message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + "
          "'<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
          "llama3" },
        { "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
          "chatml" },
        { "{% for message in messages %}{% if message['role'] == 'system' %}"
          "{{ '<|system|>\\n' + message['content'] + '\\n' }}{% elif message['role'] "
          "== 'user' %}{{ '<|user|>\\n' + message['content'] + '\\n' }}{% elif "
          "message['role'] == 'assistant' %}{{ '<|assistant|>\\n' + message['content'] "
          "+ eos_token + '\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|assistant|>\\n' }}{% endif %}",
          "falcon3" },
        /* look-alikes that are refused rather than guessed */
        { "{% for message in messages %}{{'<|' + message['role'] + '|>' + '\\n' + "
          "message['content'] + '<|end|>\\n'}}{% endfor %}{{ '<|assistant|>\\n' }}"
          "<|user|>", NULL },                                        /* Phi-3 */
        { "{% for message in messages %}{{ '<|user|>\\n' + message['content'] + "
          "'<|endoftext|>' }}{% endfor %}{{ '<|assistant|>\\n' }}", NULL }, /* Zephyr */
        { "{% for message in messages %}{{'<|im_start|>' + message['role'] + "
          "'<|im_sep|>' + message['content'] + '<|im_end|>'}}{% endfor %}", NULL }, /* Phi-4 */
        { "{{ bos_token }}{% for message in messages %}[INST] {{ message['content'] }} "
          "[/INST]{% endfor %}", NULL },                              /* Mistral */
        { "", NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = bitnet__chat_recognise(cases[i].tmpl);
        if (cases[i].want == NULL) {
            if (got)
                fprintf(stderr, "case %zu recognised as %s\n", i, got);
            assert_null(got);
        } else {
            assert_non_null(got);
            assert_string_equal(got, cases[i].want);
        }
    }
    assert_null(bitnet__chat_recognise(NULL));
}

static void test_invalid(void **state)
{
    (void)state;
    char buf[256];
    size_t n = 99;
    const bitnet_chat_message one = { "user", "hi" };
    assert_int_equal(bitnet_chat_render(NULL, "bitnet", &one, 1, 1, buf,
                                        sizeof(buf), NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_chat_render(NULL, "bitnet", &one, 1, 1, NULL, 10, &n),
                     BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_chat_render(NULL, "bitnet", NULL, 1, 1, buf,
                                        sizeof(buf), &n), BITNET_E_INVALID_ARG);
    /* model and name both NULL */
    assert_int_equal(bitnet_chat_render(NULL, NULL, &one, 1, 1, buf,
                                        sizeof(buf), &n), BITNET_E_INVALID_ARG);
    assert_true(strlen(bitnet_last_error()) > 0);
    /* unknown name */
    assert_int_equal(bitnet_chat_render(NULL, "vicuna", &one, 1, 1, buf,
                                        sizeof(buf), &n), BITNET_E_NOT_FOUND);
    assert_non_null(strstr(bitnet_last_error(), "vicuna"));
    assert_int_equal(bitnet_chat_render(NULL, "", &one, 1, 1, buf,
                                        sizeof(buf), &n), BITNET_E_NOT_FOUND);
    /* bad messages */
    bitnet_chat_message bad[2] = { { "user", "hi" }, { "tool", "x" } };
    assert_int_equal(bitnet_chat_render(NULL, "chatml", bad, 2, 1, buf,
                                        sizeof(buf), &n), BITNET_E_INVALID_ARG);
    assert_non_null(strstr(bitnet_last_error(), "tool"));
    bad[1].role = NULL;
    assert_int_equal(bitnet_chat_render(NULL, "chatml", bad, 2, 1, buf,
                                        sizeof(buf), &n), BITNET_E_INVALID_ARG);
    bad[1].role = "user";
    bad[1].content = NULL;
    assert_int_equal(bitnet_chat_render(NULL, "chatml", bad, 2, 1, buf,
                                        sizeof(buf), &n), BITNET_E_INVALID_ARG);
    /* roles are case-sensitive */
    bad[1].content = "x";
    bad[1].role = "User";
    assert_int_equal(bitnet_chat_render(NULL, "chatml", bad, 2, 1, buf,
                                        sizeof(buf), &n), BITNET_E_INVALID_ARG);
    /* success clears the last error */
    assert_int_equal(bitnet_chat_render(NULL, "chatml", &one, 1, 1, buf,
                                        sizeof(buf), &n), BITNET_OK);
    assert_string_equal(bitnet_last_error(), "");
}


/* ---- templates read from a model ------------------------------------- */

static uint8_t *synth_bytes;
static size_t synth_size;

/* A small synthetic model file, read once into memory. */
static int make_synth(void **state)
{
    (void)state;
    char path[256];
    bt_tmp_path(path, sizeof(path), "test-chat", ".gguf");
    bitnet_synth_params sp;
    bitnet_synth_params_init(&sp);
    sp.n_embd = 128;
    sp.n_layer = 1;
    sp.n_ff = 256;
    sp.n_head = 2;
    sp.n_head_kv = 1;
    sp.n_vocab = 300;
    if (bt_write_synth(path, &sp) != BITNET_OK)
        return -1;
    synth_bytes = bt_read_file(path, &synth_size);
    remove(path);
    return synth_bytes ? 0 : -1;
}

static int free_synth(void **state)
{
    (void)state;
    free(synth_bytes);
    return 0;
}

/* The synthetic model with tokenizer.chat_template set to tmpl (or without
 * one when tmpl is NULL). *buf must be freed after the model. */
static bitnet_model *model_with_template(const char *tmpl, uint8_t **buf)
{
    bitnet_gguf *g = NULL;
    assert_int_equal(bitnet__gguf_parse(&g, synth_bytes, synth_size), BITNET_OK);
    bitnet_gguf_writer *w = NULL;
    assert_int_equal(bitnet__gguf_writer_create(&w, 0), BITNET_OK);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const bitnet_gguf_kv *kv = &g->kv[i];
        if (kv->key.len == 17 && memcmp(kv->key.ptr, "general.alignment", 17) == 0)
            continue;
        assert_int_equal(bitnet__gguf_w_copy_kv(w, kv), BITNET_OK);
    }
    if (tmpl)
        assert_int_equal(bitnet__gguf_w_str(w, "tokenizer.chat_template", tmpl,
                                            strlen(tmpl)), BITNET_OK);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const bitnet_gguf_tensor *t = &g->tensors[i];
        char name[256];
        assert_true(t->name.len < sizeof(name));
        memcpy(name, t->name.ptr, t->name.len);
        name[t->name.len] = '\0';
        assert_int_equal(bitnet__gguf_w_tensor(w, name, t->n_dims, t->ne, t->type,
                                               t->data, t->nbytes), BITNET_OK);
    }
    size_t size = 0;
    assert_int_equal(bitnet__gguf_w_buffer(w, buf, &size), BITNET_OK);
    bitnet__gguf_writer_free(w);
    bitnet__gguf_free(g);
    bitnet_model *m = NULL;
    int rc = bitnet_model_load_buffer(&m, *buf, size, NULL);
    if (rc != BITNET_OK)
        fprintf(stderr, "load: %s\n", bitnet_last_error());
    assert_int_equal(rc, BITNET_OK);
    return m;
}

static void test_model_template(void **state)
{
    (void)state;
    static const struct { const char *tmpl; const char *as; } cases[] = {
        { "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
          "{{ 'Human: ' + message['content'] + '\\n\\nBITNETAssistant: ' + "
          "eos_token }}{% endfor %}", "bitnet" },
        { "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' }}", "llama3" },
        { "{{ '<|im_start|>' + message['role'] }}", "chatml" },
        { "{{ '<|user|>\\n' }}{{ '<|assistant|>\\n' }}", "falcon3" },
    };
    const bitnet_chat_message one = { "user", "hi" };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *buf = NULL;
        bitnet_model *m = model_with_template(cases[i].tmpl, &buf);
        char got[512], want[512];
        size_t n1, n2;
        assert_int_equal(bitnet_chat_render(m, NULL, &one, 1, 1, got, sizeof(got), &n1),
                         BITNET_OK);
        assert_int_equal(bitnet_chat_render(NULL, cases[i].as, &one, 1, 1, want,
                                            sizeof(want), &n2), BITNET_OK);
        assert_string_equal(got, want);
        /* a name overrides the model's template */
        assert_int_equal(bitnet_chat_render(m, "chatml", &one, 1, 1, got, sizeof(got),
                                            &n1), BITNET_OK);
        assert_non_null(strstr(got, "<|im_start|>"));
        bitnet_model_free(m);
        free(buf);
    }
    /* unknown template, and none at all: refused with a message */
    const char *refused[2] = { "{{ '[INST] ' + message['content'] + ' [/INST]' }}", NULL };
    for (int i = 0; i < 2; i++) {
        uint8_t *buf = NULL;
        bitnet_model *m = model_with_template(refused[i], &buf);
        char got[512];
        size_t n;
        assert_int_equal(bitnet_chat_render(m, NULL, &one, 1, 1, got, sizeof(got), &n),
                         BITNET_E_NOT_FOUND);
        assert_non_null(strstr(bitnet_last_error(), "chat_template"));
        assert_int_equal(bitnet_chat_render(m, "bitnet", &one, 1, 1, got, sizeof(got), &n),
                         BITNET_OK);
        bitnet_model_free(m);
        free(buf);
    }
}

static char vocab_path[4096];

static bitnet_model *load_vocab(void)
{
    if (!bt_shared_path(vocab_path, sizeof(vocab_path), "vocab/ggml-vocab-llama-bpe.gguf"))
        BT_SKIP("BITNET_SHARED_DATA is not set: skipping the tokenization check");
    FILE *f = fopen(vocab_path, "rb");
    if (!f)
        BT_SKIP("%s is absent: skipping the tokenization check", vocab_path);
    fclose(f);
    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    mp.flags = BITNET_MODEL_VOCAB_ONLY;
    bitnet_model *m = NULL;
    int rc = bitnet_model_load_file(&m, vocab_path, &mp);
    if (rc != BITNET_OK)
        fprintf(stderr, "load %s: %s\n", vocab_path, bitnet_last_error());
    assert_int_equal(rc, BITNET_OK);
    return m;
}

static void expect_ids(const bitnet_model *m, const char *text,
                       const int32_t *want, size_t n_want)
{
    int32_t ids[256];
    size_t n = 0;
    int rc = bitnet_tokenize(m, text, strlen(text), BITNET_TOKENIZE_PARSE_SPECIAL,
                             ids, 256, &n);
    if (rc != BITNET_OK)
        fprintf(stderr, "tokenize: %s\n", bitnet_last_error());
    assert_int_equal(rc, BITNET_OK);
    if (n != n_want || memcmp(ids, want, n * sizeof(int32_t)) != 0) {
        fprintf(stderr, "got:");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", (int)ids[i]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(n, n_want);
    assert_memory_equal(ids, want, n * sizeof(int32_t));
}

static void test_tokenize_2b4t(void **state)
{
    (void)state;
    bitnet_model *m = load_vocab();
    /* format.md 7.2: "User: hi<|eot_id|>Assistant: " with BOS */
    const bitnet_chat_message one = { "user", "hi" };
    char buf[512];
    size_t n;
    assert_int_equal(bitnet_chat_render(NULL, "bitnet", &one, 1, 1, buf,
                                        sizeof(buf), &n), BITNET_OK);
    static const int32_t want1[] = { 128000, 1502, 25, 15960, 128009, 72803, 25, 220 };
    expect_ids(m, buf, want1, sizeof(want1) / sizeof(want1[0]));

    /* two turns: every role prefix and turn end is the same token sequence
     * as in the one-turn case ("User" 1502, ":" 25, "<|eot_id|>" 128009,
     * "Assistant" 72803) */
    const bitnet_chat_message two[3] = {
        { "user", "hi" }, { "assistant", "hi" }, { "user", "hi" },
    };
    assert_int_equal(bitnet_chat_render(NULL, "bitnet", two, 3, 1, buf,
                                        sizeof(buf), &n), BITNET_OK);
    static const int32_t want2[] = {
        128000, 1502, 25, 15960, 128009, 72803, 25, 15960, 128009,
        1502, 25, 15960, 128009, 72803, 25, 220 };
    expect_ids(m, buf, want2, sizeof(want2) / sizeof(want2[0]));
    bitnet_model_free(m);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitnet),
        cmocka_unit_test(test_llama3),
        cmocka_unit_test(test_falcon3),
        cmocka_unit_test(test_chatml),
        cmocka_unit_test(test_content_verbatim),
        cmocka_unit_test(test_recognise),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_model_template),
        bt_shared_test(test_tokenize_2b4t),
    };
    return BT_RUN(argc, argv, tests, make_synth, free_synth);
}
