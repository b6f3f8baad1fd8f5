/*
 * Chat templates. A fixed set of formats written in C (no Jinja): chosen by
 * name, or by recognising distinctive text in the model's
 * tokenizer.chat_template. A template that matches none of them is refused.
 *
 * A template is rendered as a sequence of pieces of three kinds: markers
 * (text that is a special token in the vocabularies the format is for, such
 * as <|eot_id|>), the template's own plain text ("User: ", "\n") and the
 * callers' message content. bitnet_chat_render concatenates them;
 * bitnet_chat_tokenize tokenizes them so that only markers can become
 * special tokens, which keeps a user from forging turns by typing markup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "model/model.h"
#include "sample/chat.h"
#include "text/vocab.h"

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

enum piece { P_MARK, P_TEXT, P_CONTENT };

typedef struct tok_builder tok_builder;
static void tb_put(tok_builder *tb, int kind, const char *s);

/* Output sink. Text: counts every byte and stores what fits. Tokens (tb set):
 * hands each piece to the token builder. */
typedef struct sink {
    char *buf;
    size_t cap;
    size_t n;
    tok_builder *tb;
} sink;

static void put_kind(sink *o, int kind, const char *s)
{
    if (o->tb) {
        tb_put(o->tb, kind, s);
        return;
    }
    size_t len = strlen(s);
    if (o->n < o->cap) {
        size_t room = o->cap - o->n;
        memcpy(o->buf + o->n, s, len < room ? len : room);
    }
    o->n += len;   /* cannot overflow: inputs are NUL-terminated objects */
}

static void mark(sink *o, const char *s) { put_kind(o, P_MARK, s); }
static void put(sink *o, const char *s) { put_kind(o, P_TEXT, s); }
static void content(sink *o, const char *s) { put_kind(o, P_CONTENT, s); }

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

static int model_format(const bitnet_model *model, const char *fn)
{
    static const char key[] = "tokenizer.chat_template";
    size_t n = 0;
    char small[1];
    int rc = bitnet_model_meta(model, key, small, sizeof(small), &n);
    if (rc == BITNET_E_NOT_FOUND)
        return bitnet__error(BITNET_E_NOT_FOUND,
                             "%s: the model has no %s; pass a "
                             "template name (\"bitnet\", \"llama3\", "
                             "\"falcon3\" or \"chatml\")", fn, key);
    if (rc != BITNET_OK && rc != BITNET_E_BUFFER_TOO_SMALL)
        return rc;
    char *t = malloc(n + 1);
    if (!t)
        return bitnet__error(BITNET_E_NOMEM,
                             "%s: out of memory reading %s", fn, key);
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
                             "%s: the model's %s is not one of "
                             "the known formats (bitnet, llama3, falcon3, "
                             "chatml); pass a template name explicitly", fn, key);
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
    char tag[16];
    switch (fmt) {
    case CHAT_BITNET:
        mark(o, "<|begin_of_text|>");
        for (size_t i = 0; i < n; i++) {
            put(o, role_title[parse_role(m[i].role)]);
            put(o, ": ");
            content(o, m[i].content);
            mark(o, "<|eot_id|>");
        }
        if (add_assistant)
            put(o, "Assistant: ");
        break;
    case CHAT_LLAMA3:
        mark(o, "<|begin_of_text|>");
        for (size_t i = 0; i < n; i++) {
            mark(o, "<|start_header_id|>");
            put(o, role_lower[parse_role(m[i].role)]);
            mark(o, "<|end_header_id|>");
            put(o, "\n\n");
            content(o, m[i].content);
            mark(o, "<|eot_id|>");
        }
        if (add_assistant) {
            mark(o, "<|start_header_id|>");
            put(o, "assistant");
            mark(o, "<|end_header_id|>");
            put(o, "\n\n");
        }
        break;
    case CHAT_FALCON3:
        for (size_t i = 0; i < n; i++) {
            snprintf(tag, sizeof(tag), "<|%s|>", role_lower[parse_role(m[i].role)]);
            mark(o, tag);
            put(o, "\n");
            content(o, m[i].content);
            put(o, "\n");
        }
        if (add_assistant) {
            mark(o, "<|assistant|>");
            put(o, "\n");
        }
        break;
    case CHAT_CHATML:
        for (size_t i = 0; i < n; i++) {
            mark(o, "<|im_start|>");
            put(o, role_lower[parse_role(m[i].role)]);
            put(o, "\n");
            content(o, m[i].content);
            mark(o, "<|im_end|>");
            put(o, "\n");
        }
        if (add_assistant) {
            mark(o, "<|im_start|>");
            put(o, "assistant\n");
        }
        break;
    default:
        break;
    }
}

/* Checks shared by render and tokenize; returns the CHAT_* format or a
 * negative status. */
static int prepare(const bitnet_model *model, const char *name,
                   const bitnet_chat_message *messages, size_t n_messages,
                   const char *fn)
{
    if (!messages && n_messages > 0)
        return bitnet__error(BITNET_E_INVALID_ARG, "%s: messages is NULL", fn);
    for (size_t i = 0; i < n_messages; i++) {
        if (!messages[i].role || !messages[i].content)
            return bitnet__error(BITNET_E_INVALID_ARG,
                                 "%s: message %zu has a NULL %s", fn, i,
                                 messages[i].role ? "content" : "role");
        if (parse_role(messages[i].role) < 0)
            return bitnet__error(BITNET_E_INVALID_ARG,
                                 "%s: message %zu has role \"%.32s\" "
                                 "(expected system, user or assistant)", fn,
                                 i, messages[i].role);
    }
    if (name) {
        for (int i = 0; i < CHAT_COUNT; i++)
            if (strcmp(name, fmt_names[i]) == 0)
                return i;
        return bitnet__error(BITNET_E_NOT_FOUND,
                             "%s: unknown template name \"%.32s\" (known: "
                             "bitnet, llama3, falcon3, chatml)", fn, name);
    }
    if (!model)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "%s: model and name are both NULL", fn);
    return model_format(model, fn);
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
    int fmt = prepare(model, name, messages, n_messages, "bitnet_chat_render");
    if (fmt < 0)
        return fmt;

    sink o = { buf, cap, 0, NULL };
    render(&o, fmt, messages, n_messages, add_assistant);
    *n_out = o.n;
    if (o.n >= cap)
        return bitnet__error(BITNET_E_BUFFER_TOO_SMALL,
                             "bitnet_chat_render: %zu bytes needed (with the "
                             "NUL), buffer has %zu", o.n + 1, cap);
    buf[o.n] = '\0';
    return BITNET_OK;
}

/* ---- tokens ------------------------------------------------------------ */

/* Plain text (template text and content) is collected in `run` and
 * tokenized without special-token parsing whenever a marker that is a
 * special token of the vocabulary ends it, so the tokens equal those of the
 * rendered text tokenized with BITNET_TOKENIZE_PARSE_SPECIAL as long as the
 * content holds no special-token text; when it does, that text stays plain. */
struct tok_builder {
    const bitnet_vocab *v;
    char *run;
    size_t run_n, run_cap;
    int32_t *out;
    size_t cap, n;
    int rc;
    struct { char s[24]; int32_t id; } memo[8];
    size_t n_memo;
};

/* The id a marker becomes, or -1 when the vocabulary has no control token
 * with that text (then the marker is plain text, as it would be in the
 * rendered prompt). A marker that tokenizes to the same single token with
 * and without special parsing is an ordinary (or user-defined) token:
 * plain text too, so it merges with its neighbours exactly as it would. */
static int32_t marker_id(tok_builder *tb, const char *s)
{
    for (size_t i = 0; i < tb->n_memo; i++)
        if (strcmp(tb->memo[i].s, s) == 0)
            return tb->memo[i].id;
    int32_t a[2], b[2];
    size_t na = 0, nb = 0;
    int32_t id = -1;
    size_t len = strlen(s);
    int rc = bitnet__vocab_tokenize(tb->v, s, len, BITNET_TOKENIZE_PARSE_SPECIAL,
                                    a, 2, &na);
    if (rc == BITNET_OK && na == 1) {
        rc = bitnet__vocab_tokenize(tb->v, s, len, 0, b, 2, &nb);
        if (rc == BITNET_OK || rc == BITNET_E_BUFFER_TOO_SMALL) {
            rc = BITNET_OK;
            if (!(nb == 1 && b[0] == a[0]))
                id = a[0];
        }
    }
    if (rc == BITNET_E_BUFFER_TOO_SMALL)
        rc = BITNET_OK;                /* more than one token: not special */
    if (rc) {
        tb->rc = rc;
        return -1;
    }
    bitnet__clear_error();
    /* a format has a handful of distinct markers */
    if (tb->n_memo < sizeof(tb->memo) / sizeof(tb->memo[0]) &&
        len < sizeof(tb->memo[0].s)) {
        memcpy(tb->memo[tb->n_memo].s, s, len + 1);
        tb->memo[tb->n_memo].id = id;
        tb->n_memo++;
    }
    return id;
}

static void tb_emit(tok_builder *tb, int32_t id)
{
    if (tb->n < tb->cap)
        tb->out[tb->n] = id;
    tb->n++;
}

static void tb_flush(tok_builder *tb)
{
    if (tb->rc || tb->run_n == 0)
        return;
    size_t room = tb->n < tb->cap ? tb->cap - tb->n : 0;
    size_t k = 0;
    int rc = bitnet__vocab_tokenize(tb->v, tb->run, tb->run_n, 0,
                                    room ? tb->out + tb->n : NULL, room, &k);
    if (rc == BITNET_E_BUFFER_TOO_SMALL)
        rc = BITNET_OK;               /* k is the count needed */
    if (rc) {
        tb->rc = rc;
        return;
    }
    tb->n += k;
    tb->run_n = 0;
}

static void tb_text(tok_builder *tb, const char *s)
{
    size_t len = strlen(s), need;
    if (tb->rc || len == 0)
        return;
    if (bitnet__add_ovf(tb->run_n, len, &need)) {
        tb->rc = bitnet__error(BITNET_E_NOMEM, "bitnet_chat_tokenize: "
                               "conversation too long");
        return;
    }
    if (need > tb->run_cap) {
        size_t nc = tb->run_cap ? tb->run_cap : 256;
        while (nc < need)
            nc = nc > SIZE_MAX / 2 ? need : nc * 2;
        char *r = realloc(tb->run, nc);
        if (!r) {
            tb->rc = bitnet__error(BITNET_E_NOMEM, "bitnet_chat_tokenize: "
                                   "out of memory");
            return;
        }
        tb->run = r;
        tb->run_cap = nc;
    }
    memcpy(tb->run + tb->run_n, s, len);
    tb->run_n = need;
}

static void tb_put(tok_builder *tb, int kind, const char *s)
{
    if (tb->rc)
        return;
    if (kind == P_MARK) {
        int32_t id = marker_id(tb, s);
        if (tb->rc)
            return;
        if (id >= 0) {
            tb_flush(tb);
            if (!tb->rc)
                tb_emit(tb, id);
            return;
        }
    }
    tb_text(tb, s);
}

int bitnet_chat_tokenize(const bitnet_model *model, const char *name,
                         const bitnet_chat_message *messages, size_t n_messages,
                         int add_assistant, int32_t *out, size_t cap,
                         size_t *n_out)
{
    bitnet__clear_error();
    if (!n_out)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_chat_tokenize: n_out is NULL");
    *n_out = 0;
    if (!out && cap > 0)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_chat_tokenize: out is NULL but cap is %zu",
                             cap);
    if (!model)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_chat_tokenize: model is NULL (its "
                             "vocabulary is needed)");
    int fmt = prepare(model, name, messages, n_messages, "bitnet_chat_tokenize");
    if (fmt < 0)
        return fmt;
    if (!model->vocab)
        return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_chat_tokenize: the "
                             "model has no tokenizer");

    tok_builder tb;
    memset(&tb, 0, sizeof(tb));
    tb.v = model->vocab;
    tb.out = out;
    tb.cap = cap;
    sink o = { NULL, 0, 0, &tb };
    render(&o, fmt, messages, n_messages, add_assistant);
    tb_flush(&tb);
    free(tb.run);
    if (tb.rc)
        return tb.rc;
    *n_out = tb.n;
    if (tb.n > cap)
        return bitnet__error(BITNET_E_BUFFER_TOO_SMALL,
                             "bitnet_chat_tokenize: %zu tokens needed, buffer "
                             "has %zu", tb.n, cap);
    return BITNET_OK;
}
