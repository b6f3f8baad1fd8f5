/*
 * Errors, logging, memory, params structs and the small platform layer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/internal.h"

/* ---- errors ---------------------------------------------------------- */

static _Thread_local char last_error[512];

int bitnet__error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    return code;
}

void bitnet__clear_error(void)
{
    last_error[0] = '\0';
}

const char *bitnet_last_error(void)
{
    return last_error;
}

/* ---- logging --------------------------------------------------------- */

void bitnet__log(const bitnet_logger *lg, int32_t level, const char *fmt, ...)
{
    if (!lg || !lg->fn || level > lg->level)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    lg->fn(lg->user, level, buf);
}

/* ---- memory ---------------------------------------------------------- */

void *bitnet__aalloc(size_t size, size_t alignment)
{
    if (size == 0)
        return NULL;
    if (alignment < sizeof(void *))
        alignment = sizeof(void *);
    /* round the size up so aligned_alloc's contract holds */
    size_t rounded;
    if (bitnet__add_ovf(size, alignment - 1, &rounded))
        return NULL;
    rounded &= ~(alignment - 1);
    void *p = NULL;
    if (posix_memalign(&p, alignment, rounded) != 0)
        return NULL;
    return p;
}

void bitnet__afree(void *p)
{
    free(p);
}

char *bitnet__strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *bitnet__strdup(const char *s)
{
    return bitnet__strndup(s, strlen(s));
}

/* ---- params structs -------------------------------------------------- */

int bitnet__params_merge(void *dst, size_t dst_size, const void *src,
                         const char *what)
{
    uint32_t src_size;
    memcpy(&src_size, src, sizeof(src_size));
    if (src_size < sizeof(uint32_t))
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "%s: struct_size %u is too small (use the "
                             "*_params_init macro)", what, (unsigned)src_size);
    /* No version of any params struct comes near this size; a larger value
     * is an uninitialised struct, and honouring it would read past the
     * caller's object. */
    if (src_size > BITNET__PARAMS_MAX_SIZE)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "%s: struct_size %u is larger than any version of "
                             "the struct (at most %u; use the *_params_init "
                             "macro)", what, (unsigned)src_size,
                             (unsigned)BITNET__PARAMS_MAX_SIZE);
    if (src_size > dst_size) {
        const unsigned char *tail = (const unsigned char *)src + dst_size;
        for (size_t i = 0; i < src_size - dst_size; i++)
            if (tail[i] != 0)
                return bitnet__error(BITNET_E_UNSUPPORTED,
                                     "%s: struct_size %u is larger than this "
                                     "library's %zu and field bytes at offset "
                                     "%zu are set: the caller uses a newer "
                                     "libbitnet header", what,
                                     (unsigned)src_size, dst_size, dst_size + i);
    }
    size_t n = src_size < dst_size ? src_size : dst_size;
    memcpy(dst, src, n);
    uint32_t sz = (uint32_t)dst_size;
    memcpy(dst, &sz, sizeof(sz));
    return BITNET_OK;
}

/* ---- platform -------------------------------------------------------- */

int bitnet__file_open(bitnet_file_view *v, const char *path, int no_mmap)
{
    memset(v, 0, sizeof(*v));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bitnet__error(BITNET_E_IO, "cannot open '%s': %s", path,
                             strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return bitnet__error(BITNET_E_IO, "cannot stat '%s': %s", path,
                             strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return bitnet__error(BITNET_E_IO, "'%s' is not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        return bitnet__error(BITNET_E_FORMAT, "'%s' is empty", path);
    }
    if (!no_mmap) {
        void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            v->map_base = p;
            v->map_size = size;
            v->data = p;
            v->size = size;
            return BITNET_OK;
        }
        /* fall back to reading */
    }
    uint8_t *buf = malloc(size);
    if (!buf) {
        close(fd);
        return bitnet__error(BITNET_E_NOMEM, "cannot allocate %zu bytes to "
                             "read '%s'", size, path);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = errno;
            free(buf);
            close(fd);
            return bitnet__error(BITNET_E_IO, "cannot read '%s': %s", path,
                                 r == 0 ? "unexpected end of file" : strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    v->heap = buf;
    v->data = buf;
    v->size = size;
    return BITNET_OK;
}

void bitnet__file_close(bitnet_file_view *v)
{
    if (!v)
        return;
    if (v->map_base)
        munmap(v->map_base, v->map_size);
    free(v->heap);
    memset(v, 0, sizeof(*v));
}

int bitnet__ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 256 ? 256 : (int)n);
}

double bitnet__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
