/*
 * JSON helpers over jansson: see json.h. jansson does the parsing; this file
 * adds the limits a loader of untrusted files needs before handing text to
 * it (size, depth: jansson's own depth limit is a compile-time 2048 and the
 * recursion is on the C stack) and typed member access with messages that
 * say which file and key were wrong.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "format/json.h"

int bitnet__utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

int bitnet__json_depth(const char *s, size_t n, int limit)
{
    int depth = 0, max = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') in_str = 1;
        else if (c == '[' || c == '{') {
            if (++depth > max) max = depth;
            if (max > limit) return max;
        } else if (c == ']' || c == '}') {
            if (depth > 0) depth--;
        }
    }
    return max;
}

#if BITNET_HAVE_JSON

int bitnet__json_parse(json_t **out, const char *text, size_t len,
                       size_t max_size, const char *what)
{
    *out = NULL;
    if (len > max_size)
        return bitnet__error(BITNET_E_FORMAT, "%s: %zu bytes of JSON exceed "
                             "the limit of %zu", what, len, max_size);
    if (!bitnet__utf8_valid(text, len))
        return bitnet__error(BITNET_E_FORMAT, "%s: the JSON text is not "
                             "valid UTF-8", what);
    int d = bitnet__json_depth(text, len, BITNET_JSON_MAX_DEPTH);
    if (d > BITNET_JSON_MAX_DEPTH)
        return bitnet__error(BITNET_E_FORMAT, "%s: JSON nested deeper than %d "
                             "levels", what, BITNET_JSON_MAX_DEPTH);
    json_error_t err;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!j && strstr(err.text, "too big integer"))
        /* e.g. model_max_length 1e30 written as an integer: read numbers
         * as reals (whole reals are accepted where integers are expected;
         * safetensors offsets and shapes stay strict) */
        j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY |
                       JSON_DECODE_INT_AS_REAL, &err);
    if (!j)
        return bitnet__error(BITNET_E_FORMAT, "%s: invalid JSON at line %d "
                             "column %d: %.120s", what, err.line, err.column,
                             err.text);
    *out = j;
    return BITNET_OK;
}

int bitnet__json_load_file(json_t **out, const char *path, size_t max_size)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return bitnet__error(BITNET_E_NOT_FOUND, "'%s' does not exist", path);
        return bitnet__error(BITNET_E_IO, "cannot open '%s': %s", path,
                             strerror(errno));
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = BITNET_OK;
    while (buf) {
        if (n == cap) {
            if (cap > max_size) {
                rc = bitnet__error(BITNET_E_FORMAT, "'%s': larger than the "
                                   "limit of %zu bytes for a JSON file", path,
                                   max_size);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (!rc && !buf)
        rc = bitnet__error(BITNET_E_NOMEM, "'%s': out of memory", path);
    if (!rc && ferror(f))
        rc = bitnet__error(BITNET_E_IO, "cannot read '%s'", path);
    fclose(f);
    if (!rc)
        rc = bitnet__json_parse(out, buf, n, max_size, path);
    free(buf);
    return rc;
}

int bitnet__json_int(const json_t *obj, const char *key, int64_t lo, int64_t hi,
                     int64_t *v, const char *what)
{
    const json_t *x = json_object_get(obj, key);
    if (!x || json_is_null(x)) return BITNET_E_NOT_FOUND;
    if (json_is_integer(x)) {
        json_int_t i = json_integer_value(x);
        if ((int64_t)i < lo || (int64_t)i > hi)
            return bitnet__error(BITNET_E_FORMAT, "%s: field '%s': value %" PRId64
                                 " out of range [%" PRId64 ", %" PRId64 "]", what,
                                 key, (int64_t)i, lo, hi);
        *v = (int64_t)i;
        return BITNET_OK;
    }
    if (json_is_real(x)) {
        /* a whole number written as 4096.0 */
        double d = json_real_value(x);
        if (d == floor(d) && d >= (double)lo && d <= (double)hi) {
            *v = (int64_t)d;
            return BITNET_OK;
        }
    }
    return bitnet__error(BITNET_E_FORMAT, "%s: field '%s' is not an integer "
                         "in [%" PRId64 ", %" PRId64 "]", what, key, lo, hi);
}

int bitnet__json_num(const json_t *obj, const char *key, double *v, const char *what)
{
    const json_t *x = json_object_get(obj, key);
    if (!x || json_is_null(x)) return BITNET_E_NOT_FOUND;
    if (!json_is_number(x))
        return bitnet__error(BITNET_E_FORMAT, "%s: field '%s' is not a number",
                             what, key);
    *v = json_number_value(x);
    if (!isfinite(*v))
        return bitnet__error(BITNET_E_FORMAT, "%s: field '%s' is not finite",
                             what, key);
    return BITNET_OK;
}

int bitnet__json_bool(const json_t *obj, const char *key, int *v, const char *what)
{
    const json_t *x = json_object_get(obj, key);
    if (!x || json_is_null(x)) return BITNET_E_NOT_FOUND;
    if (!json_is_boolean(x))
        return bitnet__error(BITNET_E_FORMAT, "%s: field '%s' is not a boolean",
                             what, key);
    *v = json_is_true(x);
    return BITNET_OK;
}

int bitnet__json_str(const json_t *obj, const char *key, const char **v, const char *what)
{
    const json_t *x = json_object_get(obj, key);
    if (!x || json_is_null(x)) return BITNET_E_NOT_FOUND;
    if (!json_is_string(x))
        return bitnet__error(BITNET_E_FORMAT, "%s: field '%s' is not a string",
                             what, key);
    *v = json_string_value(x);
    return BITNET_OK;
}

#endif /* BITNET_HAVE_JSON */
