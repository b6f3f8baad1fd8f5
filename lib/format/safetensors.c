/*
 * safetensors reader: see safetensors.h. Every number in a header is checked
 * against the file before it is used; tensors are served from read-only
 * mappings of the files.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "format/json.h"
#include "format/safetensors.h"

static const struct { const char *name; size_t size; } dtypes[ST_DTYPE_COUNT] = {
    [ST_BOOL] = { "BOOL", 1 }, [ST_U8] = { "U8", 1 }, [ST_I8] = { "I8", 1 },
    [ST_I16] = { "I16", 2 }, [ST_U16] = { "U16", 2 }, [ST_I32] = { "I32", 4 },
    [ST_U32] = { "U32", 4 }, [ST_I64] = { "I64", 8 }, [ST_U64] = { "U64", 8 },
    [ST_F16] = { "F16", 2 }, [ST_BF16] = { "BF16", 2 }, [ST_F32] = { "F32", 4 },
    [ST_F64] = { "F64", 8 }, [ST_F8_E4M3] = { "F8_E4M3", 1 },
    [ST_F8_E5M2] = { "F8_E5M2", 1 },
};

const char *bitnet__st_dtype_name(int dtype)
{
    return dtype >= 0 && dtype < ST_DTYPE_COUNT ? dtypes[dtype].name : "?";
}

size_t bitnet__st_dtype_size(int dtype)
{
    return dtype >= 0 && dtype < ST_DTYPE_COUNT ? dtypes[dtype].size : 0;
}

void bitnet__st_tensors_free(bitnet_st_tensor *t, size_t n)
{
    if (!t) return;
    for (size_t i = 0; i < n; i++)
        free(t[i].name);
    free(t);
}

static int cmp_begin(const void *a, const void *b)
{
    const bitnet_st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

#if BITNET_HAVE_JSON

static int parse_entry(bitnet_st_tensor *t, const char *name, json_t *e,
                       const char *what, uint64_t data_size)
{
    if (!json_is_object(e))
        return bitnet__error(BITNET_E_FORMAT, "%s: tensor '%.96s': entry is "
                             "not an object", what, name);
    const char *dt = NULL;
    if (bitnet__json_str(e, "dtype", &dt, what) != BITNET_OK)
        return bitnet__error(BITNET_E_FORMAT, "%s: tensor '%.96s': no string "
                             "'dtype'", what, name);
    t->dtype = -1;
    for (int k = 0; k < ST_DTYPE_COUNT; k++)
        if (!strcmp(dt, dtypes[k].name)) t->dtype = k;
    if (t->dtype < 0)
        return bitnet__error(BITNET_E_UNSUPPORTED, "%s: tensor '%.96s': dtype "
                             "'%.32s' is not known", what, name, dt);
    json_t *sh = json_object_get(e, "shape");
    if (!json_is_array(sh) || json_array_size(sh) > BITNET_ST_MAX_DIMS)
        return bitnet__error(BITNET_E_FORMAT, "%s: tensor '%.96s': 'shape' is "
                             "not an array of at most %d sizes", what, name,
                             BITNET_ST_MAX_DIMS);
    t->n_dims = (int)json_array_size(sh);
    uint64_t count = 1;
    int ovf = 0;
    for (int d = 0; d < t->n_dims; d++) {
        json_t *x = json_array_get(sh, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return bitnet__error(BITNET_E_FORMAT, "%s: tensor '%.96s': shape "
                                 "entry %d is not a non-negative integer", what,
                                 name, d);
        t->shape[d] = (uint64_t)json_integer_value(x);
        if (t->shape[d] && count > UINT64_MAX / t->shape[d]) ovf = 1;
        else count *= t->shape[d];
    }
    json_t *off = json_object_get(e, "data_offsets");
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        !json_is_integer(json_array_get(off, 0)) ||
        !json_is_integer(json_array_get(off, 1)) ||
        json_integer_value(json_array_get(off, 0)) < 0 ||
        json_integer_value(json_array_get(off, 1)) < 0)
        return bitnet__error(BITNET_E_FORMAT, "%s: tensor '%.96s': "
                             "'data_offsets' is not a pair of non-negative "
                             "integers", what, name);
    t->begin = (uint64_t)json_integer_value(json_array_get(off, 0));
    t->end = (uint64_t)json_integer_value(json_array_get(off, 1));
    if (t->begin > t->end || t->end > data_size)
        return bitnet__error(BITNET_E_FORMAT, "%s: tensor '%.96s': data "
                             "offsets [%" PRIu64 ", %" PRIu64 ") are outside "
                             "the data section (%" PRIu64 " bytes)", what, name,
                             t->begin, t->end, data_size);
    uint64_t es = dtypes[t->dtype].size;
    if (ovf || count > UINT64_MAX / es || count * es != t->end - t->begin)
        return bitnet__error(BITNET_E_FORMAT, "%s: tensor '%.96s': %" PRIu64
                             " bytes of data do not hold its shape of dtype %s",
                             what, name, t->end - t->begin, dtypes[t->dtype].name);
    return BITNET_OK;
}

int bitnet__st_parse(const uint8_t *buf, size_t size, const char *what,
                     bitnet_st_tensor **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (size < 8)
        return bitnet__error(BITNET_E_FORMAT, "%s: too short for a safetensors "
                             "file (%zu bytes)", what, size);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | buf[i];
    if (hl > size - 8)
        return bitnet__error(BITNET_E_FORMAT, "%s: header length %" PRIu64
                             " runs past the end of the file (%zu bytes)", what,
                             hl, size);
    if (hl > BITNET_ST_MAX_HEADER)
        return bitnet__error(BITNET_E_FORMAT, "%s: header length %" PRIu64
                             " exceeds the limit", what, hl);
    json_t *root;
    int rc = bitnet__json_parse(&root, (const char *)buf + 8, (size_t)hl,
                                (size_t)BITNET_ST_MAX_HEADER, what);
    if (rc) return rc;
    if (!json_is_object(root)) {
        json_decref(root);
        return bitnet__error(BITNET_E_FORMAT, "%s: header is not a JSON object",
                             what);
    }
    const uint64_t data_size = size - 8 - hl;
    const uint8_t *data = buf + 8 + hl;
    size_t cap = json_object_size(root);
    bitnet_st_tensor *ts = calloc(cap ? cap : 1, sizeof(*ts));
    if (!ts) {
        json_decref(root);
        return bitnet__error(BITNET_E_NOMEM, "%s: out of memory", what);
    }
    size_t cnt = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(val)) {
                rc = bitnet__error(BITNET_E_FORMAT, "%s: __metadata__ is not "
                                   "an object", what);
                break;
            }
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    rc = bitnet__error(BITNET_E_FORMAT, "%s: __metadata__ "
                                       "value '%.64s' is not a string", what, mk);
                    break;
                }
            }
            if (rc) break;
            continue;
        }
        bitnet_st_tensor *t = &ts[cnt];
        rc = parse_entry(t, key, val, what, data_size);
        if (rc) break;
        t->name = bitnet__strdup(key);
        if (!t->name) {
            rc = bitnet__error(BITNET_E_NOMEM, "%s: out of memory", what);
            break;
        }
        t->data = data + t->begin;
        cnt++;
    }
    json_decref(root);
    if (!rc && cnt > 1) {
        /* no two tensors may share bytes (empty tensors share nothing) */
        bitnet_st_tensor *s = malloc(cnt * sizeof(*s));
        if (!s) {
            rc = bitnet__error(BITNET_E_NOMEM, "%s: out of memory", what);
        } else {
            memcpy(s, ts, cnt * sizeof(*s));
            qsort(s, cnt, sizeof(*s), cmp_begin);
            uint64_t hi = 0;
            const char *hi_name = NULL;
            for (size_t i = 0; i < cnt && !rc; i++) {
                if (s[i].begin == s[i].end) continue;
                if (hi_name && s[i].begin < hi)
                    rc = bitnet__error(BITNET_E_FORMAT, "%s: tensors '%.96s' "
                                       "and '%.96s' overlap", what, hi_name,
                                       s[i].name);
                hi = s[i].end;
                hi_name = s[i].name;
            }
            free(s);
        }
    }
    if (rc) {
        bitnet__st_tensors_free(ts, cnt);
        return rc;
    }
    *out = ts;
    *n = cnt;
    return BITNET_OK;
}

#else

int bitnet__st_parse(const uint8_t *buf, size_t size, const char *what,
                     bitnet_st_tensor **out, size_t *n)
{
    (void)buf; (void)size; (void)cmp_begin;
    *out = NULL;
    *n = 0;
    return bitnet__error(BITNET_E_UNSUPPORTED, "%s: reading safetensors needs "
                         "JSON support, and this libbitnet was built without "
                         "it (Meson feature 'json', jansson)", what);
}

#endif

/* ---- sets of files ---------------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const bitnet_st_tensor *)a)->name,
                  ((const bitnet_st_tensor *)b)->name);
}

void bitnet__st_close(bitnet_st_set *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_files; i++) {
        bitnet__file_close(&s->files[i]);
        free(s->paths[i]);
    }
    free(s->files);
    free(s->paths);
    bitnet__st_tensors_free(s->tensors, s->n_tensors);
    free(s);
}

const bitnet_st_tensor *bitnet__st_find(const bitnet_st_set *s, const char *name)
{
    bitnet_st_tensor key;
    key.name = (char *)name;
    return bsearch(&key, s->tensors, s->n_tensors, sizeof(key), cmp_name);
}

void bitnet__st_release(const bitnet_st_set *s, const bitnet_st_tensor *t)
{
    bitnet__st_release_range(s, t, 0, (size_t)(t->end - t->begin));
}

void bitnet__st_release_range(const bitnet_st_set *s, const bitnet_st_tensor *t,
                              size_t off, size_t n)
{
    const bitnet_file_view *v = &s->files[t->file];
    if (!v->map_base || n == 0 || off > (size_t)(t->end - t->begin) ||
        n > (size_t)(t->end - t->begin) - off) return;
    bitnet__pages_drop(t->data + off, n);
}

/* Add one file to the set; its tensors are appended. */
static int add_file(bitnet_st_set *s, const char *path, int no_mmap)
{
    bitnet_file_view *nf = realloc(s->files, (s->n_files + 1) * sizeof(*nf));
    if (!nf) return bitnet__error(BITNET_E_NOMEM, "out of memory");
    s->files = nf;
    char **np = realloc(s->paths, (s->n_files + 1) * sizeof(*np));
    if (!np) return bitnet__error(BITNET_E_NOMEM, "out of memory");
    s->paths = np;
    s->paths[s->n_files] = bitnet__strdup(path);
    if (!s->paths[s->n_files]) return bitnet__error(BITNET_E_NOMEM, "out of memory");
    int rc = bitnet__file_open(&s->files[s->n_files], path, no_mmap);
    if (rc) {
        free(s->paths[s->n_files]);
        return rc;
    }
    size_t fi = s->n_files++;
    bitnet_st_tensor *t;
    size_t n;
    rc = bitnet__st_parse(s->files[fi].data, s->files[fi].size, path, &t, &n);
    if (rc) return rc;
    bitnet_st_tensor *all = realloc(s->tensors, (s->n_tensors + n + 1) * sizeof(*all));
    if (!all) {
        bitnet__st_tensors_free(t, n);
        return bitnet__error(BITNET_E_NOMEM, "out of memory");
    }
    s->tensors = all;
    for (size_t i = 0; i < n; i++) {
        t[i].file = (int)fi;
        s->tensors[s->n_tensors++] = t[i];
    }
    free(t);
    return BITNET_OK;
}

static int finish(bitnet_st_set *s)
{
    qsort(s->tensors, s->n_tensors, sizeof(*s->tensors), cmp_name);
    for (size_t i = 1; i < s->n_tensors; i++)
        if (!strcmp(s->tensors[i - 1].name, s->tensors[i].name))
            return bitnet__error(BITNET_E_FORMAT, "tensor '%.96s' is in both "
                                 "'%s' and '%s'", s->tensors[i].name,
                                 s->paths[s->tensors[i - 1].file],
                                 s->paths[s->tensors[i].file]);
    return BITNET_OK;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

#if BITNET_HAVE_JSON
static int open_index(bitnet_st_set *s, const char *path, int no_mmap)
{
    json_t *root;
    int rc = bitnet__json_load_file(&root, path, (size_t)64 << 20);
    if (rc) return rc;
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm)) {
        json_decref(root);
        return bitnet__error(BITNET_E_FORMAT, "%s: no object 'weight_map'", path);
    }
    size_t dl = strlen(path);
    while (dl > 0 && path[dl - 1] != '/') dl--;
    const char *key;
    json_t *val;
    /* open each distinct shard once, in order of first mention */
    json_object_foreach(wm, key, val) {
        const char *f = json_string_value(val);
        if (!f) {
            rc = bitnet__error(BITNET_E_FORMAT, "%s: weight_map['%.96s'] is "
                               "not a string", path, key);
            break;
        }
        if (!*f || strchr(f, '/') || !strcmp(f, "..") || !strcmp(f, ".")) {
            rc = bitnet__error(BITNET_E_FORMAT, "%s: weight_map['%.96s']: "
                               "'%.96s' is not a file name in the directory",
                               path, key, f);
            break;
        }
        size_t fl = strlen(f);
        char *fp = malloc(dl + fl + 1);
        if (!fp) { rc = bitnet__error(BITNET_E_NOMEM, "out of memory"); break; }
        memcpy(fp, path, dl);
        memcpy(fp + dl, f, fl + 1);
        int seen = 0;
        for (size_t i = 0; i < s->n_files && !seen; i++)
            seen = !strcmp(s->paths[i], fp);
        if (!seen) rc = add_file(s, fp, no_mmap);
        free(fp);
        if (rc) break;
    }
    if (!rc) rc = finish(s);
    /* every tensor named by the index is in the file it names */
    if (!rc) {
        json_object_foreach(wm, key, val) {
            const bitnet_st_tensor *t = bitnet__st_find(s, key);
            const char *f = json_string_value(val);
            const char *tp = t ? s->paths[t->file] + dl : NULL;
            if (!t || strcmp(tp, f)) {
                rc = bitnet__error(BITNET_E_FORMAT, "%s: tensor '%.96s' is "
                                   "not in '%.96s'", path, key, f);
                break;
            }
        }
    }
    json_decref(root);
    return rc;
}
#endif

int bitnet__st_open(bitnet_st_set **out, const char *path, int no_mmap)
{
    *out = NULL;
    bitnet_st_set *s = calloc(1, sizeof(*s));
    if (!s) return bitnet__error(BITNET_E_NOMEM, "out of memory");
    int rc;
    if (ends_with(path, ".json")) {
#if BITNET_HAVE_JSON
        rc = open_index(s, path, no_mmap);
#else
        (void)no_mmap;
        rc = bitnet__error(BITNET_E_UNSUPPORTED, "%s: reading a Hugging Face "
                           "checkpoint needs JSON support, and this libbitnet "
                           "was built without it (Meson feature 'json', "
                           "jansson)", path);
#endif
    } else {
        rc = add_file(s, path, no_mmap);
        if (!rc) rc = finish(s);
    }
    if (rc) {
        bitnet__st_close(s);
        return rc;
    }
    *out = s;
    return BITNET_OK;
}
