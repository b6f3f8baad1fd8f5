/*
 * GGUF v3 writer: keys and tensor infos are collected in memory, then the
 * file is written in one pass (or streamed tensor by tensor for files too
 * large to hold, see bitnet__gguf_w_begin).
 */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/internal.h"
#include "format/gguf.h"

typedef struct wkv {
    char *key;
    uint32_t type, arr_type;
    uint64_t arr_n;
    uint8_t *value;
    size_t value_size;
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t n_dims, type;
    uint64_t ne[4];
    uint64_t offset, nbytes;
    uint8_t *data;           /* NULL: streamed */
} wtensor;

struct bitnet_gguf_writer {
    uint32_t alignment;
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    uint64_t data_size;
    /* streaming state */
    FILE *f;
    char *path;
    char *tmp;               /* temporary file renamed over final at the end */
    char *final;             /* the file path names (a link followed) */
    size_t cur;              /* tensor being streamed */
    uint64_t cur_written;
    int failed;
};

/* ---- output files -------------------------------------------------------
 *
 * A regular file (or a path that does not exist yet) is written through a
 * temporary file in the same directory that is renamed over the target only
 * once every byte is out, so a failed write leaves whatever was at the path
 * untouched and removes only the temporary file this call created. Anything
 * else (a device such as /dev/full or /dev/stdout, a pipe) cannot be replaced
 * by a rename: it is written directly and never removed. */

static int sink_open(const char *path, FILE **fp, char **tmpp, char **finalp)
{
    *fp = NULL;
    *tmpp = NULL;
    *finalp = NULL;
    struct stat st;
    int exists = stat(path, &st) == 0;
    if (exists && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode))
            return bitnet__error(BITNET_E_IO, "cannot create '%s': it is a "
                                 "directory", path);
        FILE *f = fopen(path, "wb");
        if (!f)
            return bitnet__error(BITNET_E_IO, "cannot open '%s': %s", path,
                                 strerror(errno));
        *fp = f;
        return BITNET_OK;
    }
    /* The temporary file goes next to the file the path finally names (a
     * symbolic link is followed, so the link stays a link). */
    char *target = NULL;
    if (exists) {
        target = realpath(path, NULL);
        if (!target)
            return bitnet__error(BITNET_E_IO, "cannot resolve '%s': %s", path,
                                 strerror(errno));
    } else {
        target = bitnet__strdup(path);
        if (!target)
            return bitnet__error(BITNET_E_NOMEM, "GGUF writer: out of memory");
    }
    const char *slash = strrchr(target, '/');
    size_t dlen = slash ? (size_t)(slash - target) + 1 : 0;
    const char *base = slash ? slash + 1 : target;
    size_t n = dlen + strlen(base) + 16;
    char *tmp = malloc(n);
    if (!tmp) {
        free(target);
        return bitnet__error(BITNET_E_NOMEM, "GGUF writer: out of memory");
    }
    /* O_EXCL with a fresh name per attempt (rather than mkstemp, whose 0600
     * would need the process umask to fix up, and reading the umask is not
     * thread-safe): the kernel applies the umask to 0666 as for a plain
     * create. */
    static _Atomic unsigned counter;
    int fd = -1, e = 0;
    for (int attempt = 0; attempt < 64 && fd < 0; attempt++) {
        unsigned salt = counter++ * 2654435761u ^ (unsigned)getpid() * 40503u ^
                        (unsigned)(bitnet__now() * 1e6);
        snprintf(tmp, n, "%.*s.%s.%06x", (int)dlen, target, base,
                 salt & 0xffffffu);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        e = errno;
        if (fd < 0 && e != EEXIST)
            break;
    }
    if (fd < 0) {
        free(tmp);
        free(target);
        return bitnet__error(BITNET_E_IO, "cannot create a temporary file "
                             "next to '%s': %s", path, strerror(e));
    }
    if (exists)         /* the replacement keeps the permissions it replaces */
        (void)fchmod(fd, st.st_mode & 07777);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        e = errno;
        close(fd);
        unlink(tmp);
        free(tmp);
        free(target);
        return bitnet__error(BITNET_E_IO, "cannot open '%s': %s", path,
                             strerror(e));
    }
    *fp = f;
    *tmpp = tmp;
    *finalp = target;
    return BITNET_OK;
}

/* Finish a file opened by sink_open. ok: put it in place (rename the
 * temporary file over the file the path names); !ok: drop the temporary
 * file. Returns BITNET_E_IO when the file could not be completed, and frees
 * *tmpp and *finalp. */
static int sink_close(FILE *f, char **tmpp, char **finalp, const char *path,
                      int ok)
{
    char *tmp = *tmpp, *final = *finalp;
    *tmpp = NULL;
    *finalp = NULL;
    int e = 0;
    if (fflush(f) != 0) e = errno ? errno : EIO;
    if (!e && ok && tmp && fsync(fileno(f)) != 0) e = errno;
    if (fclose(f) != 0 && !e) e = errno ? errno : EIO;
    if (ok && !e && tmp && rename(tmp, final) != 0) e = errno;
    if (tmp && (!ok || e)) unlink(tmp);
    free(tmp);
    free(final);
    if (ok && e)
        return bitnet__error(BITNET_E_IO, "cannot write '%s': %s", path,
                             strerror(e));
    return BITNET_OK;
}

int bitnet__gguf_writer_create(bitnet_gguf_writer **out, uint32_t alignment)
{
    *out = NULL;
    if (alignment == 0) alignment = 32;
    if ((alignment & (alignment - 1)) != 0)
        return bitnet__error(BITNET_E_INVALID_ARG, "GGUF writer: alignment %u "
                             "is not a power of two", alignment);
    bitnet_gguf_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return bitnet__error(BITNET_E_NOMEM, "GGUF writer: out of memory");
    w->alignment = alignment;
    if (alignment != 32) {          /* readers assume 32 unless told */
        int rc = bitnet__gguf_w_u32(w, "general.alignment", alignment);
        if (rc) {
            free(w);
            return rc;
        }
    }
    *out = w;
    return BITNET_OK;
}

void bitnet__gguf_writer_free(bitnet_gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].value);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    if (w->f)                       /* abandoned stream: drop what we made */
        sink_close(w->f, &w->tmp, &w->final, w->path, 0);
    free(w->tmp);
    free(w->final);
    free(w->path);
    free(w);
}

static int has_key(const bitnet_gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) return 1;
    return 0;
}

int bitnet__gguf_w_raw(bitnet_gguf_writer *w, const char *key, uint32_t type,
                       uint32_t arr_type, uint64_t arr_n,
                       const void *value, size_t value_size)
{
    if (!key || !*key)
        return bitnet__error(BITNET_E_INVALID_ARG, "GGUF writer: empty key");
    if (has_key(w, key))
        return bitnet__error(BITNET_E_INVALID_ARG, "GGUF writer: duplicate key "
                             "'%s'", key);
    if (w->n_kv == w->cap_kv) {
        size_t nc = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *n = realloc(w->kv, nc * sizeof(*n));
        if (!n) return bitnet__error(BITNET_E_NOMEM, "GGUF writer: out of memory");
        w->kv = n;
        w->cap_kv = nc;
    }
    wkv *kv = &w->kv[w->n_kv];
    kv->key = bitnet__strdup(key);
    kv->value = malloc(value_size ? value_size : 1);
    if (!kv->key || !kv->value) {
        free(kv->key);
        free(kv->value);
        return bitnet__error(BITNET_E_NOMEM, "GGUF writer: out of memory");
    }
    if (value_size) memcpy(kv->value, value, value_size);
    kv->type = type;
    kv->arr_type = arr_type;
    kv->arr_n = arr_n;
    kv->value_size = value_size;
    w->n_kv++;
    return BITNET_OK;
}

int bitnet__gguf_w_u32(bitnet_gguf_writer *w, const char *key, uint32_t v)
{
    return bitnet__gguf_w_raw(w, key, GGUF_VT_U32, 0, 0, &v, 4);
}

int bitnet__gguf_w_i32(bitnet_gguf_writer *w, const char *key, int32_t v)
{
    return bitnet__gguf_w_raw(w, key, GGUF_VT_I32, 0, 0, &v, 4);
}

int bitnet__gguf_w_f32(bitnet_gguf_writer *w, const char *key, float v)
{
    return bitnet__gguf_w_raw(w, key, GGUF_VT_F32, 0, 0, &v, 4);
}

int bitnet__gguf_w_bool(bitnet_gguf_writer *w, const char *key, int v)
{
    uint8_t b = v ? 1 : 0;
    return bitnet__gguf_w_raw(w, key, GGUF_VT_BOOL, 0, 0, &b, 1);
}

int bitnet__gguf_w_str(bitnet_gguf_writer *w, const char *key, const char *s, size_t len)
{
    uint8_t *buf = malloc(8 + len);
    if (!buf) return bitnet__error(BITNET_E_NOMEM, "GGUF writer: out of memory");
    uint64_t l = len;
    memcpy(buf, &l, 8);
    if (len) memcpy(buf + 8, s, len);
    int rc = bitnet__gguf_w_raw(w, key, GGUF_VT_STR, 0, 0, buf, 8 + len);
    free(buf);
    return rc;
}

int bitnet__gguf_w_copy_kv(bitnet_gguf_writer *w, const bitnet_gguf_kv *kv)
{
    char *key = bitnet__strndup(kv->key.ptr, (size_t)kv->key.len);
    if (!key) return bitnet__error(BITNET_E_NOMEM, "GGUF writer: out of memory");
    int rc = bitnet__gguf_w_raw(w, key, kv->type, kv->arr_type, kv->arr_n,
                                kv->value, (size_t)kv->value_size);
    free(key);
    return rc;
}

int bitnet__gguf_w_tensor(bitnet_gguf_writer *w, const char *name,
                          uint32_t n_dims, const uint64_t *ne, uint32_t type,
                          const void *data, size_t nbytes)
{
    if (!name || n_dims == 0 || n_dims > 4)
        return bitnet__error(BITNET_E_INVALID_ARG, "GGUF writer: bad tensor "
                             "'%s'", name ? name : "(null)");
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return bitnet__error(BITNET_E_INVALID_ARG, "GGUF writer: duplicate "
                                 "tensor '%s'", name);
    uint64_t rows = 1;
    for (uint32_t i = 1; i < n_dims; i++) rows *= ne[i];
    uint64_t nb = bitnet__ggml_nbytes(type, ne[0], rows);
    if (nb == 0 || (data && nb != nbytes))
        return bitnet__error(BITNET_E_INVALID_ARG, "GGUF writer: tensor '%s': "
                             "size does not match its type and shape", name);
    if (w->n_t == w->cap_t) {
        size_t nc = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *n = realloc(w->t, nc * sizeof(*n));
        if (!n) return bitnet__error(BITNET_E_NOMEM, "GGUF writer: out of memory");
        w->t = n;
        w->cap_t = nc;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof(*t));
    t->name = bitnet__strdup(name);
    if (!t->name) return bitnet__error(BITNET_E_NOMEM, "GGUF writer: out of memory");
    if (data) {
        t->data = malloc((size_t)nb);
        if (!t->data) {
            free(t->name);
            return bitnet__error(BITNET_E_NOMEM, "GGUF writer: out of memory");
        }
        memcpy(t->data, data, (size_t)nb);
    }
    t->n_dims = n_dims;
    for (uint32_t i = 0; i < 4; i++) t->ne[i] = i < n_dims ? ne[i] : 1;
    t->type = type;
    t->nbytes = nb;
    t->offset = w->data_size;
    uint64_t padded = (nb + w->alignment - 1) / w->alignment * w->alignment;
    w->data_size += padded;
    w->n_t++;
    return BITNET_OK;
}

/* ---- serialisation ---------------------------------------------------- */

typedef struct out {
    FILE *f;            /* or */
    uint8_t *buf;
    size_t n;
    int err;
} out;

static void put(out *o, const void *p, size_t n)
{
    if (o->err || n == 0) return;
    if (o->f) {
        if (fwrite(p, 1, n, o->f) != n) o->err = 1;
    } else {
        memcpy(o->buf + o->n, p, n);
    }
    o->n += n;
}

static void put_u32(out *o, uint32_t v) { put(o, &v, 4); }
static void put_u64(out *o, uint64_t v) { put(o, &v, 8); }
static void put_zeros(out *o, size_t n)
{
    static const uint8_t z[64];
    while (n) {
        size_t k = n < sizeof(z) ? n : sizeof(z);
        put(o, z, k);
        n -= k;
    }
}

static size_t header_size(const bitnet_gguf_writer *w)
{
    size_t n = 4 + 4 + 8 + 8;
    for (size_t i = 0; i < w->n_kv; i++) {
        n += 8 + strlen(w->kv[i].key) + 4;
        if (w->kv[i].type == GGUF_VT_ARR) n += 4 + 8;
        n += w->kv[i].value_size;
    }
    for (size_t i = 0; i < w->n_t; i++)
        n += 8 + strlen(w->t[i].name) + 4 + 8 * (size_t)w->t[i].n_dims + 4 + 8;
    return n;
}

static size_t write_header(const bitnet_gguf_writer *w, out *o)
{
    put(o, "GGUF", 4);
    put_u32(o, 3);
    put_u64(o, w->n_t);
    put_u64(o, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kv[i];
        size_t kl = strlen(kv->key);
        put_u64(o, kl);
        put(o, kv->key, kl);
        put_u32(o, kv->type);
        if (kv->type == GGUF_VT_ARR) {
            put_u32(o, kv->arr_type);
            put_u64(o, kv->arr_n);
        }
        put(o, kv->value, kv->value_size);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        size_t nl = strlen(t->name);
        put_u64(o, nl);
        put(o, t->name, nl);
        put_u32(o, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) put_u64(o, t->ne[d]);
        put_u32(o, t->type);
        put_u64(o, t->offset);
    }
    size_t h = header_size(w);
    size_t pad = (w->alignment - h % w->alignment) % w->alignment;
    put_zeros(o, pad);
    return h + pad;
}

static void write_data(const bitnet_gguf_writer *w, out *o)
{
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put(o, t->data, (size_t)t->nbytes);
        size_t pad = (size_t)((w->alignment - t->nbytes % w->alignment) % w->alignment);
        put_zeros(o, pad);
    }
}

static int all_data(const bitnet_gguf_writer *w)
{
    for (size_t i = 0; i < w->n_t; i++)
        if (!w->t[i].data)
            return bitnet__error(BITNET_E_INVALID_ARG, "GGUF writer: tensor "
                                 "'%s' has no data (use the streaming calls)",
                                 w->t[i].name);
    return BITNET_OK;
}

int bitnet__gguf_w_buffer(bitnet_gguf_writer *w, uint8_t **outp, size_t *size)
{
    *outp = NULL;
    *size = 0;
    int rc = all_data(w);
    if (rc) return rc;
    size_t h = header_size(w);
    size_t total = h + (w->alignment - h % w->alignment) % w->alignment +
                   (size_t)w->data_size;
    out o = { NULL, malloc(total ? total : 1), 0, 0 };
    if (!o.buf) return bitnet__error(BITNET_E_NOMEM, "GGUF writer: out of memory");
    write_header(w, &o);
    write_data(w, &o);
    *outp = o.buf;
    *size = o.n;
    return BITNET_OK;
}

int bitnet__gguf_w_file(bitnet_gguf_writer *w, const char *path)
{
    int rc = all_data(w);
    if (rc) return rc;
    FILE *f;
    char *tmp, *final;
    rc = sink_open(path, &f, &tmp, &final);
    if (rc) return rc;
    out o = { f, NULL, 0, 0 };
    errno = 0;
    write_header(w, &o);
    write_data(w, &o);
    if (o.err) {
        int e = errno;
        sink_close(f, &tmp, &final, path, 0);
        return bitnet__error(BITNET_E_IO, "cannot write '%s': %s", path,
                             e ? strerror(e) : "write error");
    }
    return sink_close(f, &tmp, &final, path, 1);
}

/* ---- streaming --------------------------------------------------------- */

int bitnet__gguf_w_begin(bitnet_gguf_writer *w, const char *path)
{
    if (w->f)
        return bitnet__error(BITNET_E_INVALID_ARG, "GGUF writer: already "
                             "streaming");
    w->path = bitnet__strdup(path);
    if (!w->path) return bitnet__error(BITNET_E_NOMEM, "GGUF writer: out of memory");
    int rc = sink_open(path, &w->f, &w->tmp, &w->final);
    if (rc) {
        free(w->path);
        w->path = NULL;
        return rc;
    }
    out o = { w->f, NULL, 0, 0 };
    errno = 0;
    write_header(w, &o);
    w->cur = 0;
    w->cur_written = 0;
    w->failed = o.err;
    if (o.err)
        return bitnet__error(BITNET_E_IO, "cannot write '%s': %s", path,
                             errno ? strerror(errno) : "write error");
    return BITNET_OK;
}

int bitnet__gguf_w_write(bitnet_gguf_writer *w, const void *data, size_t n)
{
    if (!w->f || w->failed)
        return bitnet__error(BITNET_E_INVALID_ARG, "GGUF writer: not streaming");
    const uint8_t *p = data;
    out o = { w->f, NULL, 0, 0 };
    while (n > 0) {
        if (w->cur >= w->n_t) {
            w->failed = 1;
            return bitnet__error(BITNET_E_INVALID_ARG, "GGUF writer: more data "
                                 "than tensors");
        }
        const wtensor *t = &w->t[w->cur];
        uint64_t left = t->nbytes - w->cur_written;
        size_t k = n < left ? n : (size_t)left;
        put(&o, p, k);
        p += k;
        n -= k;
        w->cur_written += k;
        if (w->cur_written == t->nbytes) {
            put_zeros(&o, (size_t)((w->alignment - t->nbytes % w->alignment) %
                                   w->alignment));
            w->cur++;
            w->cur_written = 0;
        }
    }
    if (o.err) {
        w->failed = 1;
        return bitnet__error(BITNET_E_IO, "cannot write '%s': %s", w->path,
                             strerror(errno));
    }
    return BITNET_OK;
}

int bitnet__gguf_w_end(bitnet_gguf_writer *w)
{
    if (!w->f)
        return bitnet__error(BITNET_E_INVALID_ARG, "GGUF writer: not streaming");
    int bad = w->failed || w->cur != w->n_t;
    FILE *f = w->f;
    w->f = NULL;
    int rc = sink_close(f, &w->tmp, &w->final, w->path, !bad);
    if (bad)
        return bitnet__error(BITNET_E_INVALID_ARG, "GGUF writer: '%s': not "
                             "every tensor was written", w->path);
    return rc;
}
