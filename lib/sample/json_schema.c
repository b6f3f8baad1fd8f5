/*
 * JSON Schema -> GBNF (bitnet_json_schema_to_grammar).
 *
 * The grammar describes a subset of the instances the schema accepts, so
 * everything it generates validates: objects list their properties in the
 * schema's order, and carry no extra keys unless additionalProperties asks
 * for them; numbers have at most 16 digits before and after the point;
 * strings use no \u escapes. Keywords that would constrain the value in a
 * way the grammar cannot express are refused with BITNET_E_UNSUPPORTED and
 * a message naming the keyword, never ignored. Annotation keywords (title,
 * description, ...) are accepted because they constrain nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib_config.h"
#include "sample/grammar.h"

#if BITNET_HAVE_JSON
#include <jansson.h>

#define MAX_DEPTH 64
#define MAX_COUNT 10000

/* Shared rules, emitted once each when used (bit i = prims[i]). */
enum {
    P_VALUE, P_OBJECT, P_ARRAY, P_STRING, P_NUMBER, P_INTEGER, P_BOOLEAN,
    P_NULL, P_WS, P_CHAR, P_DATE, P_TIME, P_DATETIME, P_UUID, P_COUNT
};
static const char *const prim_name[P_COUNT] = {
    "value", "object", "array", "string", "number", "integer", "boolean",
    "null", "ws", "char", "date", "time", "date-time", "uuid"
};
static const char *const prim_body[P_COUNT] = {
    "object | array | string | number | boolean | null",
    "\"{\" ws ( string ws \":\" ws value ws ( \",\" ws string ws \":\" ws "
        "value ws )* )? \"}\"",
    "\"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\"",
    "\"\\\"\" char* \"\\\"\"",
    "\"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? "
        "( [eE] [-+]? [0-9]{1,3} )?",
    "\"-\"? ( \"0\" | [1-9] [0-9]{0,15} )",
    "\"true\" | \"false\"",
    "\"null\"",
    "( \" \" | \"\\n\" [ ]{0,16} )?",
    "[^\"\\\\\\x00-\\x1F] | \"\\\\\" [\"\\\\/bfnrt]",
    "[0-9]{4} \"-\" ( \"0\" [1-9] | \"1\" [0-2] ) \"-\" "
        "( \"0\" [1-9] | [12] [0-9] | \"3\" [01] )",
    "( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] "
        "( \".\" [0-9]{1,6} )? ( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) "
        "\":\" [0-5] [0-9] )",
    "date \"T\" time",
    "[0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} "
        "\"-\" [0-9a-f]{12}"
};
/* What each shared rule refers to. */
static const unsigned prim_deps[P_COUNT] = {
    [P_VALUE] = 1u << P_OBJECT | 1u << P_ARRAY | 1u << P_STRING |
                1u << P_NUMBER | 1u << P_BOOLEAN | 1u << P_NULL,
    [P_OBJECT] = 1u << P_WS | 1u << P_STRING | 1u << P_VALUE,
    [P_ARRAY] = 1u << P_WS | 1u << P_VALUE,
    [P_STRING] = 1u << P_CHAR,
    [P_DATETIME] = 1u << P_DATE | 1u << P_TIME,
};

static const char *const annotations[] = {
    "$schema", "$id", "$comment", "title", "description", "default",
    "examples", "deprecated", "readOnly", "writeOnly", "$defs",
    "definitions", NULL
};
static const char *const supported[] = {
    "type", "properties", "required", "additionalProperties", "items",
    "minItems", "maxItems", "enum", "const", "anyOf", "oneOf", "$ref",
    "minLength", "maxLength", "format", NULL
};

typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

typedef struct conv {
    json_t *root;
    sbuf rules;               /* every rule but root, in creation order */
    char **names;             /* rule names taken */
    size_t n_names, cap_names;
    char **ref_key, **ref_name;
    size_t n_refs, cap_refs;
    unsigned prims;
    int failed;
} conv;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* A heap string (NULL on failure). */
static char *fmt(const char *f, ...) BN_PRINTF(1, 2);
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

static char *fail(conv *c, int code, const char *f, ...) BN_PRINTF(3, 4);
static char *fail(conv *c, int code, const char *f, ...)
{
    if (c->failed)
        return NULL;
    char msg[512];
    va_list ap;
    va_start(ap, f);
    vsnprintf(msg, sizeof(msg), f, ap);
    va_end(ap);
    c->failed = code;
    bitnet__error(code, "bitnet_json_schema_to_grammar: %s", msg);
    return NULL;
}

static char *oom(conv *c)
{
    return fail(c, BITNET_E_NOMEM, "out of memory");
}

static int name_taken(const conv *c, const char *n)
{
    for (int i = 0; i < P_COUNT; i++)
        if (strcmp(prim_name[i], n) == 0)
            return 1;
    if (strcmp(n, "root") == 0)
        return 1;
    for (size_t i = 0; i < c->n_names; i++)
        if (strcmp(c->names[i], n) == 0)
            return 1;
    return 0;
}

/* A fresh rule name made from hint (characters outside [A-Za-z0-9-]
 * become '-'). */
static char *new_name(conv *c, const char *hint)
{
    size_t n = strlen(hint);
    if (n > 60)
        n = 60;
    char base[64];
    for (size_t i = 0; i < n; i++) {
        char ch = hint[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '-';
        base[i] = ok ? ch : '-';
    }
    base[n] = '\0';
    if (n == 0)
        strcpy(base, "r");
    char *name = NULL;
    for (unsigned k = 1;; k++) {
        free(name);
        name = k == 1 ? fmt("%s", base) : fmt("%s-%u", base, k);
        if (!name)
            return oom(c);
        if (!name_taken(c, name))
            break;
    }
    if (c->n_names == c->cap_names) {
        size_t nc = c->cap_names ? c->cap_names * 2 : 32;
        char **nn = realloc(c->names, nc * sizeof(*nn));
        if (!nn) {
            free(name);
            return oom(c);
        }
        c->names = nn;
        c->cap_names = nc;
    }
    c->names[c->n_names++] = name;
    char *ret = fmt("%s", name);
    return ret ? ret : oom(c);
}

static void add_rule(conv *c, const char *name, const char *body)
{
    sb_str(&c->rules, name);
    sb_str(&c->rules, " ::= ");
    sb_str(&c->rules, body);
    sb_str(&c->rules, "\n");
}

static char *use_prim(conv *c, int p)
{
    c->prims |= 1u << p;
    char *s = fmt("%s", prim_name[p]);
    return s ? s : oom(c);
}

/* A GBNF literal for the bytes of s. */
static char *gbnf_literal(conv *c, const char *s)
{
    sbuf b = { NULL, 0, 0, 0 };
    sb_str(&b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[8];
        if (*p == '"' || *p == '\\') {
            e[0] = '\\'; e[1] = (char)*p; e[2] = 0;
        } else if (*p == '\n') {
            strcpy(e, "\\n");
        } else if (*p < 0x20 || *p == 0x7F) {
            snprintf(e, sizeof(e), "\\x%02X", *p);
        } else {
            e[0] = (char)*p; e[1] = 0;
        }
        sb_str(&b, e);
    }
    sb_str(&b, "\"");
    if (b.oom) {
        free(b.s);
        return oom(c);
    }
    return b.s;
}

/* The compact JSON text of v as a GBNF literal. */
static char *json_literal(conv *c, const json_t *v)
{
    char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!txt)
        return oom(c);
    char *lit = gbnf_literal(c, txt);
    free(txt);
    return lit;
}

/* Wrap expr into a named rule unless it is already a single name. */
static char *as_rule(conv *c, const char *hint, char *expr)
{
    if (!expr)
        return NULL;
    int plain = 1;
    for (const char *p = expr; *p && plain; p++)
        plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                (*p >= '0' && *p <= '9') || *p == '-';
    if (plain)
        return expr;
    char *name = new_name(c, hint);
    if (name)
        add_rule(c, name, expr);
    free(expr);
    return name;
}

static char *gen(conv *c, const json_t *s, const char *hint, int depth);

static int in_list(const char *k, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(k, list[i]) == 0)
            return 1;
    return 0;
}

/* Non-negative integer keyword, or -1 when absent; -2 after an error. */
static long get_count(conv *c, const json_t *s, const char *key)
{
    const json_t *v = json_object_get(s, key);
    if (!v)
        return -1;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        fail(c, BITNET_E_FORMAT, "'%s' must be a non-negative integer", key);
        return -2;
    }
    if (json_integer_value(v) > MAX_COUNT) {
        fail(c, BITNET_E_UNSUPPORTED, "'%s' above %d is not supported", key,
             MAX_COUNT);
        return -2;
    }
    return (long)json_integer_value(v);
}

/* "{m,n}" / "{m,}" / "*" etc. for a repetition of min..max (max -1 =
 * unbounded). */
static char *rep_op(conv *c, long min, long max)
{
    char *s;
    if (max < 0)
        s = min == 0 ? fmt("*") : fmt("{%ld,}", min);
    else
        s = fmt("{%ld,%ld}", min, max);
    return s ? s : oom(c);
}

static char *gen_string(conv *c, const json_t *s, const char *hint)
{
    long mn = get_count(c, s, "minLength"), mx = get_count(c, s, "maxLength");
    if (mn == -2 || mx == -2)
        return NULL;
    const json_t *f = json_object_get(s, "format");
    if (f) {
        if (!json_is_string(f))
            return fail(c, BITNET_E_FORMAT, "'format' must be a string");
        if (mn >= 0 || mx >= 0)
            return fail(c, BITNET_E_UNSUPPORTED, "'format' together with "
                        "'minLength'/'maxLength' is not supported");
        const char *fs = json_string_value(f);
        int p = strcmp(fs, "date") == 0 ? P_DATE :
                strcmp(fs, "time") == 0 ? P_TIME :
                strcmp(fs, "date-time") == 0 ? P_DATETIME :
                strcmp(fs, "uuid") == 0 ? P_UUID : -1;
        if (p < 0)
            return fail(c, BITNET_E_UNSUPPORTED, "'format' '%s' is not "
                        "supported (date, time, date-time, uuid are)", fs);
        c->prims |= 1u << p;
        char *e = fmt("\"\\\"\" %s \"\\\"\"", prim_name[p]);
        return e ? e : oom(c);
    }
    if (mn < 0 && mx < 0)
        return use_prim(c, P_STRING);
    if (mn < 0)
        mn = 0;
    if (mx >= 0 && mx < mn)
        return fail(c, BITNET_E_FORMAT, "'maxLength' is below 'minLength'");
    c->prims |= 1u << P_CHAR;
    char *op = rep_op(c, mn, mx);
    if (!op)
        return NULL;
    char *e = fmt("\"\\\"\" char%s \"\\\"\"", op);
    free(op);
    return as_rule(c, hint, e ? e : oom(c));
}

static char *gen_array(conv *c, const json_t *s, const char *hint, int depth)
{
    long mn = get_count(c, s, "minItems"), mx = get_count(c, s, "maxItems");
    if (mn == -2 || mx == -2)
        return NULL;
    if (mn < 0)
        mn = 0;
    if (mx >= 0 && mx < mn)
        return fail(c, BITNET_E_FORMAT, "'maxItems' is below 'minItems'");
    const json_t *items = json_object_get(s, "items");
    if (!items && mn == 0 && mx < 0)
        return use_prim(c, P_ARRAY);
    c->prims |= 1u << P_WS;
    if (mx == 0) {
        char *e = fmt("\"[\" ws \"]\"");
        return as_rule(c, hint, e ? e : oom(c));
    }
    char *item;
    if (items) {
        if (json_is_array(items))
            return fail(c, BITNET_E_UNSUPPORTED, "'items' as an array (tuple "
                        "form) is not supported");
        char *h = fmt("%s-item", hint);
        if (!h)
            return oom(c);
        item = gen(c, items, h, depth + 1);
        free(h);
        item = as_rule(c, hint, item);
    } else {
        item = use_prim(c, P_VALUE);
    }
    if (!item)
        return NULL;
    char *op = rep_op(c, mn > 0 ? mn - 1 : 0, mx < 0 ? -1 : mx - 1);
    char *e = NULL;
    if (op) {
        if (mn == 0)
            e = fmt("\"[\" ws ( %s ws ( \",\" ws %s ws )%s )? \"]\"", item,
                    item, op);
        else
            e = fmt("\"[\" ws %s ws ( \",\" ws %s ws )%s \"]\"", item, item,
                    op);
        if (!e)
            oom(c);
    }
    free(op);
    free(item);
    return e ? as_rule(c, hint, e) : NULL;
}

typedef struct prop {
    const char *key;
    const json_t *schema;   /* NULL: any value */
    int required;
    char *kv;               /* GBNF for  "key" ws ":" ws value */
} prop;

static char *gen_object(conv *c, const json_t *s, const char *hint, int depth)
{
    const json_t *props = json_object_get(s, "properties");
    const json_t *req = json_object_get(s, "required");
    const json_t *addl = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props))
        return fail(c, BITNET_E_FORMAT, "'properties' must be an object");
    if (req && !json_is_array(req))
        return fail(c, BITNET_E_FORMAT, "'required' must be an array");
    if (addl && !json_is_object(addl) && !json_is_boolean(addl))
        return fail(c, BITNET_E_FORMAT, "'additionalProperties' must be a "
                    "schema or a boolean");
    if (!props && !req && (!addl || json_is_true(addl)))
        return use_prim(c, P_OBJECT);
    size_t n = (props ? json_object_size(props) : 0) + (req ? json_array_size(req) : 0);
    prop *ps = calloc(n ? n : 1, sizeof(*ps));
    char **tn = calloc(2 * (n + 1), sizeof(*tn));   /* T(i, first) names */
    char *extra = NULL, *result = NULL;
    size_t np = 0;
    if (!ps || !tn) {
        oom(c);
        goto out;
    }
    if (props) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)props, k, v) {
            ps[np].key = k;
            ps[np].schema = v;
            np++;
        }
    }
    for (size_t i = 0; req && i < json_array_size(req); i++) {
        const json_t *r = json_array_get(req, i);
        if (!json_is_string(r)) {
            fail(c, BITNET_E_FORMAT, "'required' must list strings");
            goto out;
        }
        size_t j = 0;
        while (j < np && strcmp(ps[j].key, json_string_value(r)) != 0)
            j++;
        if (j == np) {   /* required but not described: any value */
            ps[np].key = json_string_value(r);
            ps[np].schema = NULL;
            np++;
        }
        ps[j].required = 1;
    }
    c->prims |= 1u << P_WS;
    for (size_t i = 0; i < np; i++) {
        char *h = fmt("%s-%s", hint, ps[i].key);
        if (!h) {
            oom(c);
            goto out;
        }
        char *val = ps[i].schema ? gen(c, ps[i].schema, h, depth + 1)
                                 : use_prim(c, P_VALUE);
        val = as_rule(c, h, val);
        free(h);
        json_t *ks = json_string(ps[i].key);
        char *klit = ks ? json_literal(c, ks) : oom(c);
        json_decref(ks);
        if (val && klit)
            ps[i].kv = fmt("%s ws \":\" ws %s", klit, val);
        free(val);
        free(klit);
        if (!ps[i].kv) {
            oom(c);
            goto out;
        }
    }
    /* Extra members after the listed ones (additionalProperties). */
    if (addl && !json_is_false(addl)) {
        char *h = fmt("%s-additional", hint);
        if (!h) {
            oom(c);
            goto out;
        }
        char *val = json_is_true(addl) ? use_prim(c, P_VALUE)
                                       : gen(c, addl, h, depth + 1);
        val = as_rule(c, h, val);
        free(h);
        if (!val)
            goto out;
        c->prims |= 1u << P_STRING;
        extra = fmt("string ws \":\" ws %s ws", val);
        free(val);
        if (!extra) {
            oom(c);
            goto out;
        }
    } else if (!props && !addl) {
        /* only 'required' given: other members are allowed too */
        c->prims |= 1u << P_STRING | 1u << P_VALUE;
        extra = fmt("string ws \":\" ws value ws");
        if (!extra) {
            oom(c);
            goto out;
        }
    }
    /* T(i, first): members i.. in order; first = nothing written yet (no
     * comma before the next). Built from the end. */
    for (size_t ii = np + 1; ii-- > 0;) {
        for (int first = 0; first < 2; first++) {
            char *body;
            const char *sep = first ? "" : "\",\" ws ";
            if (ii == np) {
                if (!extra)
                    body = fmt("%s", "");
                else if (first)
                    body = fmt("( %s ( \",\" ws %s )* )?", extra, extra);
                else
                    body = fmt("( \",\" ws %s )*", extra);
            } else if (ps[ii].required) {
                body = fmt("%s%s ws %s", sep, ps[ii].kv, tn[2 * (ii + 1)]);
            } else {
                body = fmt("%s%s ws %s | %s", sep, ps[ii].kv,
                           tn[2 * (ii + 1)], tn[2 * (ii + 1) + first]);
            }
            if (!body) {
                oom(c);
                goto out;
            }
            char *h = fmt("%s-%zu%s", hint, ii, first ? "-first" : "");
            char *name = h ? new_name(c, h) : oom(c);
            free(h);
            if (!name) {
                free(body);
                goto out;
            }
            add_rule(c, name, body);
            free(body);
            tn[2 * ii + first] = name;
        }
    }
    result = fmt("\"{\" ws %s \"}\"", tn[1]);
    if (!result)
        oom(c);
    else
        result = as_rule(c, hint, result);
out:
    for (size_t i = 0; ps && i < np; i++)
        free(ps[i].kv);
    for (size_t i = 0; tn && i < 2 * (n + 1); i++)
        free(tn[i]);
    free(ps);
    free(tn);
    free(extra);
    return result;
}

static int type_ok(const char *t, const json_t *v)
{
    if (strcmp(t, "string") == 0) return json_is_string(v);
    if (strcmp(t, "number") == 0) return json_is_number(v);
    if (strcmp(t, "integer") == 0) return json_is_integer(v);
    if (strcmp(t, "boolean") == 0) return json_is_boolean(v);
    if (strcmp(t, "null") == 0) return json_is_null(v);
    if (strcmp(t, "object") == 0) return json_is_object(v);
    if (strcmp(t, "array") == 0) return json_is_array(v);
    return 0;
}

static int types_ok(const json_t *type, const json_t *v)
{
    if (!type)
        return 1;
    if (json_is_string(type))
        return type_ok(json_string_value(type), v);
    for (size_t i = 0; i < json_array_size(type); i++) {
        const json_t *t = json_array_get(type, i);
        if (json_is_string(t) && type_ok(json_string_value(t), v))
            return 1;
    }
    return 0;
}

/* Resolve a local reference "#", "#/a/b" (JSON pointer). */
static const json_t *resolve(conv *c, const char *ref)
{
    if (ref[0] != '#') {
        fail(c, BITNET_E_UNSUPPORTED, "only local '$ref' ('#/...') is "
             "supported, not '%s'", ref);
        return NULL;
    }
    const json_t *cur = c->root;
    const char *p = ref + 1;
    while (*p) {
        if (*p != '/') {
            fail(c, BITNET_E_FORMAT, "'$ref' '%s' is not a JSON pointer", ref);
            return NULL;
        }
        p++;
        char tok[256];
        size_t n = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~' && (*p == '0' || *p == '1'))
                ch = *p++ == '0' ? '~' : '/';
            if (n + 1 < sizeof(tok))
                tok[n++] = ch;
        }
        tok[n] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            char *end;
            long i = strtol(tok, &end, 10);
            cur = *end || i < 0 ? NULL : json_array_get(cur, (size_t)i);
        } else {
            cur = NULL;
        }
        if (!cur) {
            fail(c, BITNET_E_FORMAT, "'$ref' '%s' does not resolve", ref);
            return NULL;
        }
    }
    return cur;
}

static char *gen_ref(conv *c, const char *ref, int depth)
{
    for (size_t i = 0; i < c->n_refs; i++)
        if (strcmp(c->ref_key[i], ref) == 0) {
            char *s = fmt("%s", c->ref_name[i]);
            return s ? s : oom(c);
        }
    const json_t *target = resolve(c, ref);
    if (!target)
        return NULL;
    const char *last = strrchr(ref, '/');
    char *name = new_name(c, last && last[1] ? last + 1 : "ref");
    if (!name)
        return NULL;
    if (c->n_refs == c->cap_refs) {
        size_t nc = c->cap_refs ? c->cap_refs * 2 : 8;
        char **nk = realloc(c->ref_key, nc * sizeof(*nk));
        if (nk) c->ref_key = nk;
        char **nn = realloc(c->ref_name, nc * sizeof(*nn));
        if (nn) c->ref_name = nn;
        if (!nk || !nn) {
            free(name);
            return oom(c);
        }
        c->cap_refs = nc;
    }
    c->ref_key[c->n_refs] = fmt("%s", ref);
    c->ref_name[c->n_refs] = name;
    if (!c->ref_key[c->n_refs]) {
        free(name);
        return oom(c);
    }
    c->n_refs++;
    /* Registered before generating, so a recursive reference finds it. */
    char *body = gen(c, target, name, depth + 1);
    if (!body)
        return NULL;
    add_rule(c, name, body);
    free(body);
    char *s = fmt("%s", name);
    return s ? s : oom(c);
}

/* "a | b | c" of the parts, as a group. */
static char *join_alts(conv *c, char **parts, size_t n)
{
    sbuf b = { NULL, 0, 0, 0 };
    sb_str(&b, "( ");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_str(&b, " | ");
        sb_str(&b, parts[i]);
    }
    sb_str(&b, " )");
    if (b.oom) {
        free(b.s);
        return oom(c);
    }
    return b.s;
}

static char *gen_type(conv *c, const json_t *s, const char *t,
                      const char *hint, int depth)
{
    if (strcmp(t, "string") == 0) return gen_string(c, s, hint);
    if (strcmp(t, "number") == 0) return use_prim(c, P_NUMBER);
    if (strcmp(t, "integer") == 0) return use_prim(c, P_INTEGER);
    if (strcmp(t, "boolean") == 0) return use_prim(c, P_BOOLEAN);
    if (strcmp(t, "null") == 0) return use_prim(c, P_NULL);
    if (strcmp(t, "object") == 0) return gen_object(c, s, hint, depth);
    if (strcmp(t, "array") == 0) return gen_array(c, s, hint, depth);
    return fail(c, BITNET_E_FORMAT, "unknown type '%s'", t);
}

static char *gen(conv *c, const json_t *s, const char *hint, int depth)
{
    if (c->failed)
        return NULL;
    if (depth > MAX_DEPTH)
        return fail(c, BITNET_E_UNSUPPORTED, "schema nested deeper than %d",
                    MAX_DEPTH);
    if (json_is_true(s))
        return use_prim(c, P_VALUE);
    if (json_is_false(s))
        return fail(c, BITNET_E_UNSUPPORTED, "the schema 'false' matches "
                    "nothing");
    if (!json_is_object(s))
        return fail(c, BITNET_E_FORMAT, "a schema must be an object or a "
                    "boolean");
    const char *k;
    json_t *v;
    int n_constraints = 0;
    json_object_foreach((json_t *)s, k, v) {
        if (in_list(k, annotations))
            continue;
        if (!in_list(k, supported))
            return fail(c, BITNET_E_UNSUPPORTED, "JSON Schema keyword '%s' "
                        "is not supported", k);
        n_constraints++;
    }
    const json_t *ref = json_object_get(s, "$ref");
    if (ref) {
        if (!json_is_string(ref))
            return fail(c, BITNET_E_FORMAT, "'$ref' must be a string");
        if (n_constraints > 1)
            return fail(c, BITNET_E_UNSUPPORTED, "'$ref' next to other "
                        "constraint keywords is not supported");
        return gen_ref(c, json_string_value(ref), depth);
    }
    const json_t *type = json_object_get(s, "type");
    if (type && !json_is_string(type) && !json_is_array(type))
        return fail(c, BITNET_E_FORMAT, "'type' must be a string or an array");
    const json_t *cst = json_object_get(s, "const");
    const json_t *en = json_object_get(s, "enum");
    if (cst || en) {
        if (en && !json_is_array(en))
            return fail(c, BITNET_E_FORMAT, "'enum' must be an array");
        if (n_constraints - (type != NULL) > 1)
            return fail(c, BITNET_E_UNSUPPORTED, "'%s' next to constraint "
                        "keywords other than 'type' is not supported",
                        cst ? "const" : "enum");
        size_t n = cst ? 1 : json_array_size(en);
        char **parts = calloc(n ? n : 1, sizeof(*parts));
        if (!parts)
            return oom(c);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            const json_t *x = cst ? cst : json_array_get(en, i);
            if (!types_ok(type, x))
                continue;   /* a value of another type can never validate */
            if (!(parts[m++] = json_literal(c, x)))
                break;
        }
        char *e = NULL;
        if (!c->failed) {
            if (m == 0)
                fail(c, BITNET_E_UNSUPPORTED, "'%s' leaves no value (of the "
                     "given type) to generate", cst ? "const" : "enum");
            else
                e = join_alts(c, parts, m);
        }
        for (size_t i = 0; i < m; i++)
            free(parts[i]);
        free(parts);
        return e;
    }
    const json_t *any = json_object_get(s, "anyOf");
    const char *any_kw = "anyOf";
    if (!any) {
        any = json_object_get(s, "oneOf");
        any_kw = "oneOf";
    }
    if (any) {
        if (!json_is_array(any) || json_array_size(any) == 0)
            return fail(c, BITNET_E_FORMAT, "'%s' must be a non-empty array",
                        any_kw);
        if (n_constraints > 1)
            return fail(c, BITNET_E_UNSUPPORTED, "'%s' next to other "
                        "constraint keywords is not supported", any_kw);
        size_t n = json_array_size(any);
        char **parts = calloc(n, sizeof(*parts));
        if (!parts)
            return oom(c);
        size_t m = 0;
        for (size_t i = 0; i < n && !c->failed; i++) {
            char *h = fmt("%s-%zu", hint, i);
            parts[m] = h ? gen(c, json_array_get(any, i), h, depth + 1) : oom(c);
            free(h);
            if (parts[m])
                m++;
        }
        char *e = c->failed ? NULL : join_alts(c, parts, m);
        for (size_t i = 0; i < m; i++)
            free(parts[i]);
        free(parts);
        return e;
    }
    /* The type: given, or implied by the keywords present. */
    const char *implied = NULL;
    if (!type) {
        if (json_object_get(s, "properties") || json_object_get(s, "required") ||
            json_object_get(s, "additionalProperties"))
            implied = "object";
        else if (json_object_get(s, "items") || json_object_get(s, "minItems") ||
                 json_object_get(s, "maxItems"))
            implied = "array";
        else if (json_object_get(s, "minLength") ||
                 json_object_get(s, "maxLength") || json_object_get(s, "format"))
            implied = "string";
        else
            return use_prim(c, P_VALUE);
        return gen_type(c, s, implied, hint, depth);
    }
    if (json_is_string(type))
        return gen_type(c, s, json_string_value(type), hint, depth);
    size_t n = json_array_size(type);
    if (n == 0)
        return fail(c, BITNET_E_FORMAT, "'type' is an empty array");
    char **parts = calloc(n, sizeof(*parts));
    if (!parts)
        return oom(c);
    size_t m = 0;
    for (size_t i = 0; i < n && !c->failed; i++) {
        const json_t *t = json_array_get(type, i);
        if (!json_is_string(t)) {
            fail(c, BITNET_E_FORMAT, "'type' must list strings");
            break;
        }
        char *h = fmt("%s-%s", hint, json_string_value(t));
        parts[m] = h ? gen_type(c, s, json_string_value(t), h, depth) : oom(c);
        free(h);
        if (parts[m])
            m++;
    }
    char *e = c->failed ? NULL : join_alts(c, parts, m);
    for (size_t i = 0; i < m; i++)
        free(parts[i]);
    free(parts);
    return e;
}

int bitnet_json_schema_to_grammar(const char *schema, char *buf, size_t cap,
                                  size_t *n_out)
{
    bitnet__clear_error();
    if (!schema || !n_out || (!buf && cap > 0))
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_json_schema_to_"
                             "grammar: schema, n_out or buf is NULL");
    *n_out = 0;
    json_error_t jerr;
    json_t *root = json_loads(schema, JSON_DECODE_ANY, &jerr);
    if (!root)
        return bitnet__error(BITNET_E_FORMAT, "bitnet_json_schema_to_grammar: "
                             "schema is not JSON: line %d, column %d: %s",
                             jerr.line, jerr.column, jerr.text);
    conv c;
    memset(&c, 0, sizeof(c));
    c.root = root;
    char *expr = gen(&c, root, "root", 0);
    sbuf out = { NULL, 0, 0, 0 };
    int rc = BITNET_OK;
    if (!expr) {
        rc = c.failed ? c.failed : BITNET_E_INTERNAL;
    } else {
        sb_str(&out, "root ::= ");
        sb_str(&out, expr);
        sb_str(&out, "\n");
        if (c.rules.s)
            sb_str(&out, c.rules.s);
        unsigned used = c.prims, prev = 0;
        while (used != prev) {   /* close over dependencies */
            prev = used;
            for (int i = 0; i < P_COUNT; i++)
                if (used & (1u << i))
                    used |= prim_deps[i];
        }
        for (int i = 0; i < P_COUNT; i++)
            if (used & (1u << i)) {
                sb_str(&out, prim_name[i]);
                sb_str(&out, " ::= ");
                sb_str(&out, prim_body[i]);
                sb_str(&out, "\n");
            }
        if (out.oom || c.rules.oom) {
            rc = bitnet__error(BITNET_E_NOMEM,
                               "bitnet_json_schema_to_grammar: out of memory");
        } else {
            /* The text must compile (a schema that only refers to itself,
             * for one, gives a left-recursive grammar). */
            bn_grammar *g = NULL;
            rc = bitnet__grammar_parse(out.s, "root", &g);
            bitnet__grammar_free(g);
        }
    }
    if (rc == BITNET_OK) {
        *n_out = out.n;
        if (cap < out.n + 1)
            rc = bitnet__error(BITNET_E_BUFFER_TOO_SMALL,
                               "bitnet_json_schema_to_grammar: %zu bytes "
                               "needed", out.n + 1);
        else
            memcpy(buf, out.s, out.n + 1);
    }
    free(expr);
    free(out.s);
    free(c.rules.s);
    for (size_t i = 0; i < c.n_names; i++)
        free(c.names[i]);
    free(c.names);
    for (size_t i = 0; i < c.n_refs; i++) {
        free(c.ref_key[i]);
        free(c.ref_name[i]);
    }
    free(c.ref_key);
    free(c.ref_name);
    json_decref(root);
    return rc;
}

#else /* !BITNET_HAVE_JSON */

int bitnet_json_schema_to_grammar(const char *schema, char *buf, size_t cap,
                                  size_t *n_out)
{
    (void)schema; (void)buf; (void)cap;
    bitnet__clear_error();
    if (n_out)
        *n_out = 0;
    return bitnet__error(BITNET_E_UNSUPPORTED, "bitnet_json_schema_to_grammar: "
                         "this libbitnet was built without JSON support "
                         "(jansson; meson option -Djson=enabled)");
}

#endif
