/*
 * The vocabulary of a Hugging Face checkpoint as tokenizer.ggml.* keys, so
 * the one tokenizer implementation (lib/text) serves GGUF and checkpoints
 * alike: tokenizer.json (byte-level BPE: vocab, merges, added tokens,
 * pre-tokenizer regex) or, when that is absent or not byte-level, a
 * SentencePiece tokenizer.model (protobuf: pieces, scores, types).
 * Special tokens come from tokenizer_config.json, generation_config.json
 * and config.json. Conventions: docs/formats.md.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/hf.h"
#include "format/json.h"

/* token types as in GGUF's tokenizer.ggml.token_type (and SentencePiece) */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4,
       TT_UNUSED = 5, TT_BYTE = 6 };

/* ---- SentencePiece protobuf -------------------------------------------- */

typedef struct pb { const uint8_t *p; size_t n, i; } pb;

static int pb_varint(pb *b, uint64_t *v)
{
    uint64_t r = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        if (b->i >= b->n) return -1;
        uint8_t c = b->p[b->i++];
        r |= (uint64_t)(c & 0x7F) << sh;
        if (!(c & 0x80)) { *v = r; return 0; }
    }
    return -1;
}

/* Next field: number, wire type, and for LEN fields the payload. */
static int pb_next(pb *b, uint32_t *field, uint32_t *wt, uint64_t *val, pb *sub)
{
    uint64_t key;
    if (pb_varint(b, &key)) return -1;
    *field = (uint32_t)(key >> 3);
    *wt = (uint32_t)(key & 7);
    switch (*wt) {
    case 0: return pb_varint(b, val);
    case 1: if (b->n - b->i < 8) return -1; memcpy(val, b->p + b->i, 8); b->i += 8; return 0;
    case 5: {
        if (b->n - b->i < 4) return -1;
        uint32_t x;
        memcpy(&x, b->p + b->i, 4);
        *val = x;
        b->i += 4;
        return 0;
    }
    case 2: {
        uint64_t l;
        if (pb_varint(b, &l) || l > b->n - b->i) return -1;
        sub->p = b->p + b->i;
        sub->n = (size_t)l;
        sub->i = 0;
        b->i += (size_t)l;
        return 0;
    }
    default: return -1;
    }
}

int bitnet__spm_parse(const uint8_t *buf, size_t size, bitnet_spm_piece **out,
                      size_t *n_out, int *add_dummy_prefix, int *model_type)
{
    *out = NULL;
    *n_out = 0;
    *add_dummy_prefix = 1;
    *model_type = 1;                 /* UNIGRAM is the protobuf default */
    pb b = { buf, size, 0 }, sub;
    size_t n = 0, cap = 0;
    bitnet_spm_piece *v = NULL;
    uint32_t f, wt;
    uint64_t val;
    while (b.i < b.n) {
        if (pb_next(&b, &f, &wt, &val, &sub)) goto bad;
        if (f == 1 && wt == 2) {
            bitnet_spm_piece pc = { NULL, 0, 0.0f, TT_NORMAL };
            int have = 0;
            pb e = sub, s2;
            while (e.i < e.n) {
                if (pb_next(&e, &f, &wt, &val, &s2)) goto bad;
                if (f == 1 && wt == 2) {
                    pc.s = (const char *)s2.p;
                    pc.len = s2.n;
                    have = 1;
                } else if (f == 2 && wt == 5) {
                    uint32_t x = (uint32_t)val;
                    memcpy(&pc.score, &x, 4);
                } else if (f == 3 && wt == 0) {
                    pc.type = val >= 1 && val <= 6 ? (int)val : TT_NORMAL;
                }
            }
            if (!have) goto bad;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 256;
                if (nc > size) nc = size + 1;   /* a piece takes >= 2 bytes */
                bitnet_spm_piece *nv = realloc(v, nc * sizeof(*nv));
                if (!nv) { free(v); return bitnet__error(BITNET_E_NOMEM, "tokenizer.model: out of memory"); }
                v = nv;
                cap = nc;
            }
            v[n++] = pc;
        } else if (f == 2 && wt == 2) {         /* trainer_spec */
            pb e = sub, s2;
            while (e.i < e.n) {
                if (pb_next(&e, &f, &wt, &val, &s2)) goto bad;
                if (f == 3 && wt == 0) *model_type = (int)(val > 16 ? 0 : val);
            }
        } else if (f == 3 && wt == 2) {         /* normalizer_spec */
            pb e = sub, s2;
            while (e.i < e.n) {
                if (pb_next(&e, &f, &wt, &val, &s2)) goto bad;
                if (f == 3 && wt == 0) *add_dummy_prefix = val != 0;
            }
        }
    }
    if (!n) {
        free(v);
        return bitnet__error(BITNET_E_FORMAT, "tokenizer.model: no pieces");
    }
    *out = v;
    *n_out = n;
    return BITNET_OK;
bad:
    free(v);
    return bitnet__error(BITNET_E_FORMAT, "tokenizer.model: malformed protobuf "
                         "at byte %zu", b.i);
}

/* ---- the vocabulary being built ---------------------------------------- */

typedef struct vocab_out {
    int32_t n;
    char **tok;          /* owned copies */
    float *score;
    int32_t *type;
    char **merges;       /* BPE */
    size_t n_merges;
    const char *model;   /* "llama" or "gpt2" */
    const char *pre;     /* tokenizer.ggml.pre or NULL */
    int add_space_prefix;
} vocab_out;

static void vo_free(vocab_out *v)
{
    if (v->tok)
        for (int32_t i = 0; i < v->n; i++) free(v->tok[i]);
    free(v->tok);
    free(v->score);
    free(v->type);
    if (v->merges)
        for (size_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->merges);
}

static int vo_init(vocab_out *v, int32_t n)
{
    memset(v, 0, sizeof(*v));
    v->n = n;
    v->tok = calloc((size_t)n, sizeof(*v->tok));
    v->score = calloc((size_t)n, sizeof(*v->score));
    v->type = calloc((size_t)n, sizeof(*v->type));
    if (!v->tok || !v->score || !v->type)
        return bitnet__error(BITNET_E_NOMEM, "vocabulary: out of memory");
    return BITNET_OK;
}

static int vo_set(vocab_out *v, int64_t id, const char *s, size_t len,
                  float score, int type)
{
    if (id < 0 || id >= v->n)
        return BITNET_OK;    /* beyond the embedding: not addressable */
    char *c = bitnet__strndup(s, len);
    if (!c) return bitnet__error(BITNET_E_NOMEM, "vocabulary: out of memory");
    free(v->tok[id]);
    v->tok[id] = c;
    v->score[id] = score;
    v->type[id] = type;
    return BITNET_OK;
}

/* ids without a token: "[PAD<id>]", unused (as the reference converters) */
static int vo_pad(vocab_out *v)
{
    for (int32_t i = 0; i < v->n; i++) {
        if (v->tok[i]) continue;
        char b[32];
        int l = snprintf(b, sizeof(b), "[PAD%d]", (int)i);
        int rc = vo_set(v, i, b, (size_t)l, -10000.0f, TT_UNUSED);
        if (rc) return rc;
    }
    return BITNET_OK;
}

static int32_t vo_find(const vocab_out *v, const char *s)
{
    for (int32_t i = 0; i < v->n; i++)
        if (v->tok[i] && !strcmp(v->tok[i], s)) return i;
    return -1;
}

/* GGUF string array image: u64 length + bytes per element */
static int w_strs(bitnet_gguf_writer *w, const char *key, char **s, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += 8 + strlen(s[i]);
    uint8_t *buf = malloc(total ? total : 1), *o = buf;
    if (!buf) return bitnet__error(BITNET_E_NOMEM, "vocabulary: out of memory");
    for (size_t i = 0; i < n; i++) {
        uint64_t l = strlen(s[i]);
        memcpy(o, &l, 8);
        memcpy(o + 8, s[i], (size_t)l);
        o += 8 + l;
    }
    int rc = bitnet__gguf_w_raw(w, key, GGUF_VT_ARR, GGUF_VT_STR, n, buf, total);
    free(buf);
    return rc;
}

#if BITNET_HAVE_JSON

/* ---- tokenizer.json ---------------------------------------------------- */

static int add_added_tokens(vocab_out *v, const json_t *tj, const char *what)
{
    const json_t *at = json_object_get(tj, "added_tokens");
    if (!at || json_is_null(at)) return BITNET_OK;
    if (!json_is_array(at))
        return bitnet__error(BITNET_E_FORMAT, "%s: 'added_tokens' is not a list", what);
    size_t i;
    json_t *e;
    json_array_foreach(at, i, e) {
        int64_t id;
        const char *content;
        int special = 0;
        if (bitnet__json_int(e, "id", 0, INT32_MAX, &id, what) ||
            bitnet__json_str(e, "content", &content, what))
            return bitnet__error(BITNET_E_FORMAT, "%s: added_tokens[%zu] has no "
                                 "id or content", what, i);
        int rc = bitnet__json_bool(e, "special", &special, what);
        if (rc && rc != BITNET_E_NOT_FOUND) return rc;
        bitnet__clear_error();
        rc = vo_set(v, id, content, strlen(content), 0.0f, special ? TT_CONTROL : TT_USER);
        if (rc) return rc;
    }
    return BITNET_OK;
}

/* The pre-tokenizer: a Split with one of the known regexes plus ByteLevel,
 * or ByteLevel with its own (GPT-2) regex. Returns the tokenizer.ggml.pre
 * name, "" for byte-level with an unknown regex, NULL when not byte-level. */
static const char *pretok_name(const json_t *pt, int depth)
{
    if (!pt || depth > 4) return NULL;
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (!type) return NULL;
    if (!strcmp(type, "Sequence")) {
        const json_t *l = json_object_get(pt, "pretokenizers");
        const char *found = NULL;
        int bytelevel = 0;
        size_t i;
        json_t *e;
        json_array_foreach(l, i, e) {
            const char *ty = json_string_value(json_object_get(e, "type"));
            if (ty && !strcmp(ty, "ByteLevel")) bytelevel = 1;
            const char *r = pretok_name(e, depth + 1);
            if (r && *r && !found) found = r;
        }
        if (!bytelevel) return NULL;
        return found ? found : "";
    }
    if (!strcmp(type, "Split")) {
        const char *re = json_string_value(json_object_get(json_object_get(pt, "pattern"), "Regex"));
        if (!re) return "";
        /* Llama-3: case-insensitive contractions, digits in groups of 3 */
        if (strstr(re, "(?i:'s|'t|'re|'ve|'m|'ll|'d)") && strstr(re, "\\p{N}{1,3}"))
            return "llama-bpe";
        if (strstr(re, "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+"))
            return "gpt-2";
        return "";
    }
    if (!strcmp(type, "ByteLevel")) {
        const json_t *ur = json_object_get(pt, "use_regex");
        return (!ur || json_is_true(ur)) ? "gpt-2" : "";
    }
    return "";
}

static int from_tokenizer_json(vocab_out *v, const json_t *tj, const char *what,
                               const bitnet_logger *log, int *usable)
{
    *usable = 0;
    const json_t *model = json_object_get(tj, "model");
    const char *mt = json_string_value(json_object_get(model, "type"));
    const char *pre = pretok_name(json_object_get(tj, "pre_tokenizer"), 0);
    if (!mt || strcmp(mt, "BPE") || !pre)
        return BITNET_OK;            /* not byte-level BPE: caller decides */
    const json_t *voc = json_object_get(model, "vocab");
    if (!json_is_object(voc))
        return bitnet__error(BITNET_E_FORMAT, "%s: model.vocab is not an object", what);
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)voc, k, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0)
            return bitnet__error(BITNET_E_FORMAT, "%s: model.vocab['%.64s'] is "
                                 "not a token id", what, k);
        int64_t id = json_integer_value(val);
        if (id < v->n && v->tok[id])
            return bitnet__error(BITNET_E_FORMAT, "%s: token id %" PRId64 " is "
                                 "used twice in model.vocab", what, id);
        int rc = vo_set(v, id, k, strlen(k), 0.0f, TT_NORMAL);
        if (rc) return rc;
    }
    int rc = add_added_tokens(v, tj, what);
    if (rc) return rc;
    const json_t *mg = json_object_get(model, "merges");
    if (mg && !json_is_array(mg))
        return bitnet__error(BITNET_E_FORMAT, "%s: model.merges is not a list", what);
    size_t nm = json_array_size(mg);
    v->merges = calloc(nm ? nm : 1, sizeof(*v->merges));
    if (!v->merges) return bitnet__error(BITNET_E_NOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < nm; i++) {
        const json_t *e = json_array_get(mg, i);
        char *m = NULL;
        if (json_is_string(e)) {
            m = bitnet__strdup(json_string_value(e));
        } else if (json_is_array(e) && json_array_size(e) == 2 &&
                   json_is_string(json_array_get(e, 0)) &&
                   json_is_string(json_array_get(e, 1))) {
            const char *a = json_string_value(json_array_get(e, 0));
            const char *b = json_string_value(json_array_get(e, 1));
            size_t la = strlen(a), lb = strlen(b);
            m = malloc(la + lb + 2);
            if (m) {
                memcpy(m, a, la);
                m[la] = ' ';
                memcpy(m + la + 1, b, lb + 1);
            }
        } else {
            return bitnet__error(BITNET_E_FORMAT, "%s: model.merges[%zu] is "
                                 "neither \"a b\" nor [\"a\", \"b\"]", what, i);
        }
        if (!m) return bitnet__error(BITNET_E_NOMEM, "%s: out of memory", what);
        v->merges[v->n_merges++] = m;
    }
    v->model = "gpt2";
    if (*pre) {
        v->pre = pre;
    } else {
        v->pre = "default";
        bitnet__log(log, BITNET_LOG_WARN, "%s: the pre-tokenizer regex is not "
                    "one libbitnet knows (Llama-3, GPT-2): using 'default'", what);
    }
    v->add_space_prefix = 0;
    *usable = 1;
    return BITNET_OK;
}

/* ---- tokenizer.model ---------------------------------------------------- */

static int from_spm(vocab_out *v, const char *path)
{
    char *text;
    size_t len;
    int rc = bitnet__hf_read_text(path, &text, &len, (size_t)64 << 20);
    if (rc) return rc;
    bitnet_spm_piece *pcs;
    size_t n;
    int adp, mt;
    rc = bitnet__spm_parse((const uint8_t *)text, len, &pcs, &n, &adp, &mt);
    if (!rc && mt != 2) {
        rc = bitnet__error(BITNET_E_UNSUPPORTED, "%s: SentencePiece model_type "
                           "%d is not supported (2, BPE)", path, mt);
    }
    for (size_t i = 0; !rc && i < n; i++)
        rc = vo_set(v, (int64_t)i, pcs[i].s, pcs[i].len, pcs[i].score, pcs[i].type);
    free(pcs);
    free(text);
    v->model = "llama";
    v->add_space_prefix = adp;
    return rc;
}

/* ---- special tokens ----------------------------------------------------- */

/* tokenizer_config.json's "bos_token"/"eos_token": a string or {content} */
static int32_t named_token(const vocab_out *v, const json_t *tc, const char *key)
{
    const json_t *x = json_object_get(tc, key);
    const char *s = json_string_value(x);
    if (!s && json_is_object(x)) s = json_string_value(json_object_get(x, "content"));
    return s ? vo_find(v, s) : -1;
}

static int ids_of(const json_t *o, const char *key, int64_t *ids, int cap)
{
    const json_t *x = json_object_get(o, key);
    int n = 0;
    if (json_is_integer(x)) {
        ids[n++] = json_integer_value(x);
    } else if (json_is_array(x)) {
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e)
            if (json_is_integer(e) && n < cap) ids[n++] = json_integer_value(e);
    }
    return n;
}

static json_t *load_opt(const char *dir, const char *file, int *rc)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    json_t *j = NULL;
    *rc = bitnet__json_load_file(&j, p, (size_t)64 << 20);
    if (*rc == BITNET_E_NOT_FOUND) {
        *rc = BITNET_OK;
        bitnet__clear_error();
    }
    return j;
}

/* Known chat templates (the markers lib/sample/chat.c recognises). */
static int template_known(const char *t)
{
    return (strstr(t, "<|start_header_id|>") && strstr(t, "<|end_header_id|>")) ||
           strstr(t, "<|im_start|>") || strstr(t, "<|user|>") ||
           strstr(t, "BITNET") || (strstr(t, "Assistant: ") && strstr(t, "<|eot_id|>"));
}

static int write_specials(bitnet_gguf_writer *w, vocab_out *v, const char *dir,
                          const bitnet_hf_config *c, const bitnet_logger *log)
{
    int rc;
    json_t *tc = load_opt(dir, "tokenizer_config.json", &rc);
    if (rc) return rc;
    json_t *gc = load_opt(dir, "generation_config.json", &rc);
    if (rc) { json_decref(tc); return rc; }
    int64_t bos = named_token(v, tc, "bos_token"), eos = named_token(v, tc, "eos_token");
    int64_t gb[1], ge[8];
    int ngb = ids_of(gc, "bos_token_id", gb, 1);
    int nge = ids_of(gc, "eos_token_id", ge, 8);
    if (bos < 0) bos = ngb ? gb[0] : c->bos;
    /* several EOS ids (generation_config.json): the first is the EOS,
     * the next two become EOT and EOM, which also end generation */
    int64_t eos_list[10];
    int ne = 0;
    if (eos >= 0) eos_list[ne++] = eos;
    for (int i = 0; i < nge; i++) eos_list[ne++] = ge[i];
    if (!nge)
        for (int i = 0; i < c->n_eos && ne < 10; i++) eos_list[ne++] = c->eos[i];
    int64_t uniq[10];
    int nu = 0;
    for (int i = 0; i < ne; i++) {
        int dup = 0;
        for (int j = 0; j < nu; j++) dup |= uniq[j] == eos_list[i];
        if (!dup && eos_list[i] >= 0 && eos_list[i] < v->n) uniq[nu++] = eos_list[i];
    }
    static const char *const eos_keys[3] = {
        "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id" };
    rc = BITNET_OK;
    if (bos >= 0 && bos < v->n)
        rc = bitnet__gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    for (int i = 0; i < nu && i < 3 && !rc; i++)
        rc = bitnet__gguf_w_u32(w, eos_keys[i], (uint32_t)uniq[i]);
    if (nu > 3)
        bitnet__log(log, BITNET_LOG_WARN, "%d end-of-sequence ids: only the "
                    "first three end generation", nu);
    int32_t unk = named_token(v, tc, "unk_token"), pad = named_token(v, tc, "pad_token");
    if (pad < 0 && c->pad >= 0 && c->pad < v->n) pad = (int32_t)c->pad;
    if (!rc && unk >= 0) rc = bitnet__gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk);
    if (!rc && pad >= 0) rc = bitnet__gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)pad);
    int b;
    if (!rc && bitnet__json_bool(tc, "add_bos_token", &b, "tokenizer_config.json") == BITNET_OK)
        rc = bitnet__gguf_w_bool(w, "tokenizer.ggml.add_bos_token", b);
    if (!rc && bitnet__json_bool(tc, "add_eos_token", &b, "tokenizer_config.json") == BITNET_OK)
        rc = bitnet__gguf_w_bool(w, "tokenizer.ggml.add_eos_token", b);
    bitnet__clear_error();
    /* chat template: a string, or a list of {name, template} */
    const json_t *ct = json_object_get(tc, "chat_template");
    const char *tmpl = json_string_value(ct);
    if (!tmpl && json_is_array(ct)) {
        size_t i;
        json_t *e;
        json_array_foreach(ct, i, e) {
            const char *nm = json_string_value(json_object_get(e, "name"));
            if (nm && !strcmp(nm, "default"))
                tmpl = json_string_value(json_object_get(e, "template"));
        }
    }
    if (!rc && tmpl) {
        rc = bitnet__gguf_w_str(w, "tokenizer.chat_template", tmpl, strlen(tmpl));
        if (!template_known(tmpl))
            bitnet__log(log, BITNET_LOG_WARN, "tokenizer_config.json: the chat "
                        "template is not one of the built-in formats: chat "
                        "calls need a template name (\"bitnet\", \"llama3\", "
                        "\"chatml\", ...)");
    }
    json_decref(tc);
    json_decref(gc);
    return rc;
}

int bitnet__hf_vocab(bitnet_gguf_writer *w, const char *dir,
                     const bitnet_hf_config *c, const bitnet_logger *log)
{
    vocab_out v;
    int rc = vo_init(&v, (int32_t)c->n_vocab);
    if (rc) { vo_free(&v); return rc; }
    char tj_path[4096], sp_path[4096];
    snprintf(tj_path, sizeof(tj_path), "%s/tokenizer.json", dir);
    snprintf(sp_path, sizeof(sp_path), "%s/tokenizer.model", dir);
    int usable = 0;
    json_t *tj = load_opt(dir, "tokenizer.json", &rc);
    if (!rc && tj) rc = from_tokenizer_json(&v, tj, tj_path, log, &usable);
    json_decref(tj);
    if (!rc && !usable) {
        FILE *f = fopen(sp_path, "rb");
        if (f) {
            fclose(f);
            vo_free(&v);
            rc = vo_init(&v, (int32_t)c->n_vocab);
            if (!rc) rc = from_spm(&v, sp_path);
            if (!rc) {
                /* added tokens of tokenizer.json / tokenizer_config.json */
                int r2;
                json_t *tc = load_opt(dir, "tokenizer_config.json", &r2);
                const json_t *atd = json_object_get(tc, "added_tokens_decoder");
                const char *k;
                json_t *e;
                json_object_foreach((json_t *)atd, k, e) {
                    char *end;
                    long id = strtol(k, &end, 10);
                    const char *content = json_string_value(json_object_get(e, "content"));
                    if (*end || id < 0 || !content || rc) continue;
                    if (id < v.n && v.tok[id] && v.type[id] != TT_UNUSED) continue;
                    rc = vo_set(&v, id, content, strlen(content), -1000.0f,
                                json_is_true(json_object_get(e, "special")) ? TT_CONTROL : TT_USER);
                }
                json_decref(tc);
                if (!rc) rc = r2;
            }
            usable = !rc;
        } else if (tj) {
            rc = bitnet__error(BITNET_E_UNSUPPORTED, "%s: only byte-level BPE "
                               "tokenizers are supported, and there is no "
                               "tokenizer.model", tj_path);
        }
    }
    if (!rc && !usable) {
        bitnet__log(log, BITNET_LOG_WARN, "%s: no tokenizer.json or "
                    "tokenizer.model: the model has no vocabulary", dir);
        vo_free(&v);
        return BITNET_OK;
    }
    if (!rc) rc = vo_pad(&v);
    if (!rc) rc = bitnet__gguf_w_str(w, "tokenizer.ggml.model", v.model, strlen(v.model));
    if (!rc && v.pre) rc = bitnet__gguf_w_str(w, "tokenizer.ggml.pre", v.pre, strlen(v.pre));
    if (!rc) rc = w_strs(w, "tokenizer.ggml.tokens", v.tok, (size_t)v.n);
    if (!rc) rc = bitnet__gguf_w_raw(w, "tokenizer.ggml.scores", GGUF_VT_ARR, GGUF_VT_F32,
                                     (uint64_t)v.n, v.score, (size_t)v.n * 4);
    if (!rc) rc = bitnet__gguf_w_raw(w, "tokenizer.ggml.token_type", GGUF_VT_ARR, GGUF_VT_I32,
                                     (uint64_t)v.n, v.type, (size_t)v.n * 4);
    if (!rc && v.merges) rc = w_strs(w, "tokenizer.ggml.merges", v.merges, v.n_merges);
    if (!rc && !strcmp(v.model, "llama"))
        rc = bitnet__gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", v.add_space_prefix);
    if (!rc) rc = write_specials(w, &v, dir, c, log);
    vo_free(&v);
    return rc;
}

#else

int bitnet__hf_vocab(bitnet_gguf_writer *w, const char *dir,
                     const bitnet_hf_config *c, const bitnet_logger *log)
{
    (void)w; (void)c; (void)log; (void)vo_init; (void)vo_free; (void)vo_pad;
    (void)vo_find; (void)w_strs; (void)vo_set;
    return bitnet__error(BITNET_E_UNSUPPORTED, "%s: needs JSON support", dir);
}

#endif
