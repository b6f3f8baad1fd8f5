/*
 * Chat templates. A fixed set of formats written in C (no Jinja): chosen by
 * name, or by recognising distinctive text in the model's
 * tokenizer.chat_template. A template that matches none of them is refused.
 */
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "sample/chat.h"

enum chat_fmt {
    CHAT_BITNET = 0,
    CHAT_LLAMA3,
    CHAT_FALCON3,
    CHAT_CHATML,
    CHAT_COUNT
};

static const char *const fmt_names[CHAT_COUNT] = {
    "bitnet", "llama3", "falcon3", "chatml"
};

enum role { ROLE_SYSTEM = 0, ROLE_USER, ROLE_ASSISTANT };

static const char *const role_lower[3] = { "system", "user", "assistant" };
static const char *const role_title[3] = { "System", "User", "Assistant" };

/* Output sink that counts every byte and stores what fits. */
typedef struct sink {
    char *buf;
    size_t cap;
    size_t n;
} sink;

static void put(sink *o, const char *s)
{
    size_t len = strlen(s);
    if (o->n < o->cap) {
        size_t room = o->cap - o->n;
        memcpy(o->buf + o->n, s, len < room ? len : room);
    }
    o->n += len;   /* cannot overflow: inputs are NUL-terminated objects */
}

static int parse_role(const char *r)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(r, role_lower[i]) == 0)
            return i;
    return -1;
}

/* Recognise a GGUF chat template by distinctive substrings. Returns a
 * CHAT_* value or -1. Order matters: more specific markers first. */
static int recognise(const char *t)
{
    if (strstr(t, "<|start_header_id|>") && strstr(t, "<|end_header_id|>"))
        return CHAT_LLAMA3;
    if (strstr(t, "<|im_start|>") && !strstr(t, "<|im_sep|>"))
        return CHAT_CHATML;
    /* Falcon3 uses <|user|>/<|assistant|> tags; Phi-3 (<|end|>) and Zephyr
     * (<|endoftext|> after each turn) use the same tags with a different
     * turn terminator, so those are refused rather than mistaken. */
    if (strstr(t, "<|assistant|>") && strstr(t, "<|user|>") &&
        !strstr(t, "<|end|>") && !strstr(t, "<|endoftext|>"))
        return CHAT_FALCON3;
    /* The 2B4T GGUF's converter template ("...BITNETAssistant: ..."), and
     * the training format ('Assistant: ' with <|eot_id|> turn ends). */
    if (strstr(t, "BITNET"))
        return CHAT_BITNET;
    if (strstr(t, "Assistant: ") && strstr(t, "<|eot_id|>"))
        return CHAT_BITNET;
    return -1;
}

static int model_format(const bitnet_model *model)
{
    static const char key[] = "tokenizer.chat_template";
    size_t n = 0;
    char small[1];
    int rc = bitnet_model_meta(model, key, small, sizeof(small), &n);
    if (rc == BITNET_E_NOT_FOUND)
        return bitnet__error(BITNET_E_NOT_FOUND,
                             "bitnet_chat_render: the model has no %s; pass a "
                             "template name (\"bitnet\", \"llama3\", "
                             "\"falcon3\" or \"chatml\")", key);
    if (rc != BITNET_OK && rc != BITNET_E_BUFFER_TOO_SMALL)
        return rc;
    char *t = malloc(n + 1);
    if (!t)
        return bitnet__error(BITNET_E_NOMEM,
                             "bitnet_chat_render: out of memory reading %s", key);
    rc = bitnet_model_meta(model, key, t, n + 1, &n);
    if (rc != BITNET_OK) {
        free(t);
        return rc;
    }
    int f = recognise(t);
    free(t);
    bitnet__clear_error();
    if (f < 0)
        return bitnet__error(BITNET_E_NOT_FOUND,
                             "bitnet_chat_render: the model's %s is not one of "
                             "the known formats (bitnet, llama3, falcon3, "
                             "chatml); pass a template name explicitly", key);
    return f;
}

const char *bitnet__chat_recognise(const char *tmpl)
{
    int f = tmpl ? recognise(tmpl) : -1;
    return f < 0 ? NULL : fmt_names[f];
}

static void render(sink *o, int fmt, const bitnet_chat_message *m, size_t n,
                   int add_assistant)
{
    switch (fmt) {
    case CHAT_BITNET:
        put(o, "<|begin_of_text|>");
        for (size_t i = 0; i < n; i++) {
            put(o, role_title[parse_role(m[i].role)]);
            put(o, ": ");
            put(o, m[i].content);
            put(o, "<|eot_id|>");
        }
        if (add_assistant)
            put(o, "Assistant: ");
        break;
    case CHAT_LLAMA3:
        put(o, "<|begin_of_text|>");
        for (size_t i = 0; i < n; i++) {
            put(o, "<|start_header_id|>");
            put(o, role_lower[parse_role(m[i].role)]);
            put(o, "<|end_header_id|>\n\n");
            put(o, m[i].content);
            put(o, "<|eot_id|>");
        }
        if (add_assistant)
            put(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case CHAT_FALCON3:
        for (size_t i = 0; i < n; i++) {
            put(o, "<|");
            put(o, role_lower[parse_role(m[i].role)]);
            put(o, "|>\n");
            put(o, m[i].content);
            put(o, "\n");
        }
        if (add_assistant)
            put(o, "<|assistant|>\n");
        break;
    case CHAT_CHATML:
        for (size_t i = 0; i < n; i++) {
            put(o, "<|im_start|>");
            put(o, role_lower[parse_role(m[i].role)]);
            put(o, "\n");
            put(o, m[i].content);
            put(o, "<|im_end|>\n");
        }
        if (add_assistant)
            put(o, "<|im_start|>assistant\n");
        break;
    default:
        break;
    }
}

int bitnet_chat_render(const bitnet_model *model, const char *name,
                       const bitnet_chat_message *messages, size_t n_messages,
                       int add_assistant, char *buf, size_t cap, size_t *n_out)
{
    bitnet__clear_error();
    if (!n_out)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_chat_render: n_out is NULL");
    *n_out = 0;
    if (!buf && cap > 0)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_chat_render: buf is NULL but cap is %zu",
                             cap);
    if (!messages && n_messages > 0)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_chat_render: messages is NULL");
    for (size_t i = 0; i < n_messages; i++) {
        if (!messages[i].role || !messages[i].content)
            return bitnet__error(BITNET_E_INVALID_ARG,
                                 "bitnet_chat_render: message %zu has a NULL "
                                 "%s", i, messages[i].role ? "content" : "role");
        if (parse_role(messages[i].role) < 0)
            return bitnet__error(BITNET_E_INVALID_ARG,
                                 "bitnet_chat_render: message %zu has role "
                                 "\"%.32s\" (expected system, user or "
                                 "assistant)", i, messages[i].role);
    }

    int fmt = -1;
    if (name) {
        for (int i = 0; i < CHAT_COUNT; i++)
            if (strcmp(name, fmt_names[i]) == 0)
                fmt = i;
        if (fmt < 0)
            return bitnet__error(BITNET_E_NOT_FOUND,
                                 "bitnet_chat_render: unknown template name "
                                 "\"%.32s\" (known: bitnet, llama3, falcon3, "
                                 "chatml)", name);
    } else {
        if (!model)
            return bitnet__error(BITNET_E_INVALID_ARG,
                                 "bitnet_chat_render: model and name are "
                                 "both NULL");
        fmt = model_format(model);
        if (fmt < 0)
            return fmt;
    }

    sink o = { buf, cap, 0 };
    render(&o, fmt, messages, n_messages, add_assistant);
    *n_out = o.n;
    if (o.n >= cap)
        return bitnet__error(BITNET_E_BUFFER_TOO_SMALL,
                             "bitnet_chat_render: %zu bytes needed (with the "
                             "NUL), buffer has %zu", o.n + 1, cap);
    buf[o.n] = '\0';
    return BITNET_OK;
}
