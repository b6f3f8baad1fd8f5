/*
 * Every system call of the library (POSIX): file views, anonymous page
 * mappings, page advice, CPU count and the clock. Other files call these
 * instead of including system headers, so a port touches this file only.
 * (Threads: base/threadpool.c; CPU features: kernels/cpu.c.)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/internal.h"

/* ---- files ----------------------------------------------------------- */

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
    /* a large file's copy on huge pages like the other large buffers (the
     * F16 head is read in place from it at every token) */
    uint8_t *buf = bitnet__aalloc(size, 64);
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
            bitnet__afree(buf);
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
    bitnet__afree(v->heap);
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

/* ---- anonymous pages ------------------------------------------------- */

/* Huge-page advice on the weights and large buffers, unless the environment
 * variable BITNET_HUGE_PAGES is "0" (where a kernel's direct compaction on
 * fragmented memory makes the first touch of advised memory stall). */
static int huge_pages = 1;
static pthread_once_t huge_once = PTHREAD_ONCE_INIT;

static void read_huge_pages(void)
{
    const char *e = getenv("BITNET_HUGE_PAGES");
    if (e && strcmp(e, "0") == 0)
        huge_pages = 0;
}

int bitnet__huge_pages(void)
{
    pthread_once(&huge_once, read_huge_pages);
    return huge_pages;
}

#if defined(MAP_ANONYMOUS) && defined(MAP_POPULATE)
# define HAVE_POPULATE 1
#else
# define HAVE_POPULATE 0
#endif

void *bitnet__pages_map(size_t size)
{
#if HAVE_POPULATE
    /* A 2 MiB-aligned mapping, advised for huge pages before anything is
     * touched (the weights are streamed once per token: with 4 KiB pages
     * that is a TLB miss every 4 KiB), then populated in one system call:
     * much cheaper than a fault per page when the whole region is written
     * next. Where MADV_POPULATE_WRITE is missing the pages fault in as they
     * are written. */
    const size_t huge = (size_t)2 << 20;
    size_t len;
    if (size == 0 || bitnet__add_ovf(size, huge, &len))
        return NULL;
    uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    long pg = sysconf(_SC_PAGESIZE);
    const size_t u = pg > 0 ? (size_t)pg : 4096;
    uint8_t *p = (uint8_t *)(((uintptr_t)m + huge - 1) & ~(uintptr_t)(huge - 1));
    const size_t body = (size + u - 1) / u * u;
    if (p > m)
        munmap(m, (size_t)(p - m));
    if (m + len > p + body)
        munmap(p + body, (size_t)(m + len - (p + body)));
# ifdef MADV_HUGEPAGE
    if (bitnet__huge_pages())
        madvise(p, body, MADV_HUGEPAGE);
# endif
# ifdef MADV_POPULATE_WRITE
    madvise(p, body, MADV_POPULATE_WRITE);
# endif
    return p;
#else
    (void)size;
    return NULL;
#endif
}

void bitnet__pages_unmap(void *p, size_t size)
{
    if (p) munmap(p, size);
}

/* madvise(advice) on the pages that hold [p, p + size) (outward) or on
 * the whole pages inside it (inward: a neighbour's bytes on a page shared
 * at either end are left alone); a hint, errors ignored. */
static void pages_advise(const void *p, size_t size, int advice, int inward)
{
#if defined(__linux__) || defined(MADV_DONTNEED)
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || size == 0) return;
    const uintptr_t u = (uintptr_t)pg, a = (uintptr_t)p, z = a + size;
    const uintptr_t b = inward ? (a + u - 1) / u * u : a / u * u;
    const uintptr_t e = inward ? z / u * u : (z + u - 1) / u * u;
    if (e > b) madvise((void *)b, (size_t)(e - b), advice);
#else
    (void)p;
    (void)size;
    (void)advice;
    (void)inward;
#endif
}

void bitnet__pages_prefault(const void *p, size_t size)
{
    /* one system call instead of a fault per page (older kernels refuse
     * it, and then the pages fault in as they are read) */
#if defined(__linux__) && defined(MADV_POPULATE_READ)
    pages_advise(p, size, MADV_POPULATE_READ, 0);
#else
    (void)p;
    (void)size;
#endif
}

void bitnet__pages_populate(void *p, size_t size)
{
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    pages_advise(p, size, MADV_POPULATE_WRITE, 0);
#else
    (void)p;
    (void)size;
#endif
}

void bitnet__pages_advise_small(void *p, size_t size)
{
#if defined(__linux__) && defined(MADV_NOHUGEPAGE)
    pages_advise(p, size, MADV_NOHUGEPAGE, 1);
#else
    (void)p;
    (void)size;
#endif
}

/* MADV_COLLAPSE (Linux 6.1) by number where the C library predates it */
#if defined(__linux__) && !defined(MADV_COLLAPSE)
# define MADV_COLLAPSE 25
#endif

void bitnet__pages_collapse(void *p, size_t size)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (!bitnet__huge_pages())
        return;
    pages_advise(p, size, MADV_HUGEPAGE, 0);
    pages_advise(p, size, MADV_COLLAPSE, 0);
#else
    (void)p;
    (void)size;
#endif
}

void bitnet__pages_advise_huge(void *p, size_t size)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bitnet__huge_pages())
        madvise(p, size, MADV_HUGEPAGE);
#else
    (void)p;
    (void)size;
#endif
}

void bitnet__pages_drop(const void *p, size_t size)
{
#if defined(MADV_DONTNEED)
    pages_advise(p, size, MADV_DONTNEED, 1);
#else
    (void)p;
    (void)size;
#endif
}
