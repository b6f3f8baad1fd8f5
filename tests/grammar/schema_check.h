/*
 * A small JSON Schema validator for the tests, independent of the
 * converter: checks an instance (parsed by jansson) against the keywords
 * the library supports. Returns 1 when valid; otherwise 0 and a reason in
 * why[].
 */
#ifndef SCHEMA_CHECK_H
#define SCHEMA_CHECK_H

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static char sc_why[256];

static int sc_fail(const char *what, const char *key)
{
    snprintf(sc_why, sizeof(sc_why), "%s%s%s", what, key ? ": " : "", key ? key : "");
    return 0;
}

static size_t sc_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int sc_digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int sc_date(const char *s)
{
    if (strlen(s) < 10 || !sc_digits(s, 4) || s[4] != '-' || !sc_digits(s + 5, 2) ||
        s[7] != '-' || !sc_digits(s + 8, 2))
        return 0;
    int mo = (s[5] - '0') * 10 + s[6] - '0', d = (s[8] - '0') * 10 + s[9] - '0';
    return mo >= 1 && mo <= 12 && d >= 1 && d <= 31;
}

/* hh:mm:ss[.frac](Z|+hh:mm|-hh:mm), whole string */
static int sc_time(const char *s)
{
    if (strlen(s) < 9 || !sc_digits(s, 2) || s[2] != ':' || !sc_digits(s + 3, 2) ||
        s[5] != ':' || !sc_digits(s + 6, 2))
        return 0;
    int h = (s[0] - '0') * 10 + s[1] - '0', mi = (s[3] - '0') * 10 + s[4] - '0';
    int se = (s[6] - '0') * 10 + s[7] - '0';
    if (h > 23 || mi > 59 || se > 59)
        return 0;
    s += 8;
    if (*s == '.') {
        s++;
        int n = 0;
        while (*s >= '0' && *s <= '9') { s++; n++; }
        if (n == 0)
            return 0;
    }
    if (strcmp(s, "Z") == 0)
        return 1;
    return (s[0] == '+' || s[0] == '-') && strlen(s) == 6 && sc_digits(s + 1, 2) &&
           s[3] == ':' && sc_digits(s + 4, 2);
}

static int sc_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

static int sc_type_is(const char *t, const json_t *v)
{
    if (!strcmp(t, "string")) return json_is_string(v);
    if (!strcmp(t, "number")) return json_is_number(v);
    if (!strcmp(t, "integer")) return json_is_integer(v);
    if (!strcmp(t, "boolean")) return json_is_boolean(v);
    if (!strcmp(t, "null")) return json_is_null(v);
    if (!strcmp(t, "object")) return json_is_object(v);
    if (!strcmp(t, "array")) return json_is_array(v);
    return 0;
}

static const json_t *sc_resolve(const json_t *root, const char *ref)
{
    const json_t *cur = root;
    const char *p = ref + 1;
    while (*p == '/') {
        p++;
        char tok[128];
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof(tok))
            tok[n++] = *p++;
        tok[n] = 0;
        cur = json_object_get(cur, tok);
        if (!cur)
            return NULL;
    }
    return cur;
}

static int sc_valid(const json_t *v, const json_t *s, const json_t *root)
{
    if (json_is_true(s))
        return 1;
    const json_t *x;
    if ((x = json_object_get(s, "$ref"))) {
        const json_t *t = sc_resolve(root, json_string_value(x));
        return t ? sc_valid(v, t, root) : sc_fail("bad $ref", NULL);
    }
    if ((x = json_object_get(s, "type"))) {
        int ok = 0;
        if (json_is_string(x))
            ok = sc_type_is(json_string_value(x), v);
        for (size_t i = 0; json_is_array(x) && i < json_array_size(x); i++)
            ok |= sc_type_is(json_string_value(json_array_get(x, i)), v);
        if (!ok)
            return sc_fail("wrong type", NULL);
    }
    if ((x = json_object_get(s, "const")) && !json_equal((json_t *)x, (json_t *)v))
        return sc_fail("not the const", NULL);
    if ((x = json_object_get(s, "enum"))) {
        int ok = 0;
        for (size_t i = 0; i < json_array_size(x); i++)
            ok |= json_equal(json_array_get(x, i), (json_t *)v);
        if (!ok)
            return sc_fail("not in the enum", NULL);
    }
    if ((x = json_object_get(s, "anyOf"))) {
        int ok = 0;
        for (size_t i = 0; i < json_array_size(x); i++)
            ok |= sc_valid(v, json_array_get(x, i), root);
        if (!ok)
            return sc_fail("no anyOf branch", NULL);
    }
    if ((x = json_object_get(s, "oneOf"))) {
        int n = 0;
        for (size_t i = 0; i < json_array_size(x); i++)
            n += sc_valid(v, json_array_get(x, i), root);
        if (n != 1)
            return sc_fail("not exactly one oneOf branch", NULL);
    }
    if (json_is_string(v)) {
        size_t n = sc_utf8_len(json_string_value(v));
        if ((x = json_object_get(s, "minLength")) && n < (size_t)json_integer_value(x))
            return sc_fail("too short", NULL);
        if ((x = json_object_get(s, "maxLength")) && n > (size_t)json_integer_value(x))
            return sc_fail("too long", NULL);
        if ((x = json_object_get(s, "format"))) {
            const char *f = json_string_value(x), *t = json_string_value(v);
            int ok = !strcmp(f, "date") ? sc_date(t) && strlen(t) == 10 :
                     !strcmp(f, "time") ? sc_time(t) :
                     !strcmp(f, "date-time") ? sc_date(t) && t[10] == 'T' && sc_time(t + 11) :
                     !strcmp(f, "uuid") ? sc_uuid(t) : 0;
            if (!ok)
                return sc_fail("bad format", f);
        }
    }
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if ((x = json_object_get(s, "minItems")) && n < (size_t)json_integer_value(x))
            return sc_fail("too few items", NULL);
        if ((x = json_object_get(s, "maxItems")) && n > (size_t)json_integer_value(x))
            return sc_fail("too many items", NULL);
        if ((x = json_object_get(s, "items")))
            for (size_t i = 0; i < n; i++)
                if (!sc_valid(json_array_get(v, i), x, root))
                    return 0;
    }
    if (json_is_object(v)) {
        const json_t *props = json_object_get(s, "properties");
        const json_t *addl = json_object_get(s, "additionalProperties");
        const json_t *req = json_object_get(s, "required");
        for (size_t i = 0; req && i < json_array_size(req); i++)
            if (!json_object_get(v, json_string_value(json_array_get(req, i))))
                return sc_fail("missing required", json_string_value(json_array_get(req, i)));
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m) {
            const json_t *ps = props ? json_object_get(props, k) : NULL;
            if (ps) {
                if (!sc_valid(m, ps, root))
                    return 0;
            } else if (addl) {
                if (json_is_false(addl))
                    return sc_fail("additional property", k);
                if (!sc_valid(m, addl, root))
                    return 0;
            }
        }
    }
    return 1;
}

#endif /* SCHEMA_CHECK_H */
