/*
 * Internal helpers shared by every file of the library: error reporting,
 * logging, allocation, params-struct handling and checked arithmetic.
 * Nothing here is exported; internal extern names use the bitnet__ prefix.
 */
#ifndef BITNET_INTERNAL_H
#define BITNET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#include "bitnet.h"

#if defined(__GNUC__)
# define BN_PRINTF(a, b) __attribute__((format(printf, a, b)))
# define BN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
# define BN_PRINTF(a, b)
# define BN_UNLIKELY(x) (x)
#endif

/* ---- errors ---------------------------------------------------------- */

/* Record a formatted message as this thread's last error and return code.
 * Use as: return bitnet__error(BITNET_E_FORMAT, "tensor '%s': ...", name); */
int bitnet__error(int code, const char *fmt, ...) BN_PRINTF(2, 3);
/* Clear this thread's last error (called at the start of public entry points
 * that can fail). */
void bitnet__clear_error(void);

/* ---- logging --------------------------------------------------------- */

typedef struct bitnet_logger {
    bitnet_log_fn fn;
    void *user;
    int32_t level;
} bitnet_logger;

void bitnet__log(const bitnet_logger *lg, int32_t level, const char *fmt, ...)
    BN_PRINTF(3, 4);

/* ---- memory ---------------------------------------------------------- */

/* Every allocation of the library goes through these (malloc, calloc and
 * realloc are redirected to them below), so a test can make any one of
 * them fail: bitnet__alloc_fail_at(n) makes the n-th allocation from now
 * return NULL (once; 0 turns it off) and bitnet__alloc_fail_pending()
 * says how many allocations are still to go before it (0 when it has
 * happened or is off). Off, the cost is one relaxed atomic load. */
void *bitnet__malloc(size_t size);
void *bitnet__calloc(size_t n, size_t size);
void *bitnet__realloc(void *p, size_t size);
void bitnet__alloc_fail_at(long n);
long bitnet__alloc_fail_pending(void);

#ifndef BITNET_ALLOC_IMPL
# include <stdlib.h>     /* declared before the names are redirected */
# define malloc(n) bitnet__malloc(n)
# define calloc(n, s) bitnet__calloc((n), (s))
# define realloc(p, n) bitnet__realloc((p), (n))
#endif

/* Aligned allocation (alignment a power of two >= sizeof(void*)); returns NULL
 * on failure or size 0. Free with bitnet__afree. From BITNET_HUGE_MIN bytes
 * up the block is aligned to BITNET_HUGE_ALIGN and advised for huge pages. */
#define BITNET_HUGE_MIN ((size_t)4 << 20)
#define BITNET_HUGE_ALIGN ((size_t)2 << 20)
void *bitnet__aalloc(size_t size, size_t alignment);
void bitnet__afree(void *p);

/* ---- params structs -------------------------------------------------- */

/* Merge a caller's params struct into `dst`, which already holds the
 * defaults and is `dst_size` bytes (the library's sizeof). Only the first
 * min(src->struct_size, dst_size) bytes are copied. A src larger than
 * dst_size is accepted only when the extra bytes are zero
 * (else BITNET_E_UNSUPPORTED). struct_size < 4 or above
 * BITNET__PARAMS_MAX_SIZE gives BITNET_E_INVALID_ARG.
 * dst->struct_size is set to dst_size afterwards. */
#define BITNET__PARAMS_MAX_SIZE 4096u
int bitnet__params_merge(void *dst, size_t dst_size, const void *src,
                         const char *what);

/* Check the values of merged model params that every loader honours:
 * unknown flags bits, pre_tokenizer out of range (BITNET_E_INVALID_ARG). */
int bitnet__model_params_check(const bitnet_model_params *p);

/* ---- checked arithmetic ---------------------------------------------- */

static inline int bitnet__mul_ovf(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 1;
    *out = a * b;
    return 0;
}
static inline int bitnet__add_ovf(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a) return 1;
    *out = a + b;
    return 0;
}

/* ---- platform (base/platform.c) ----------------------------------- */

/* A read-only view of a file: memory-mapped, or read into memory. */
typedef struct bitnet_file_view {
    const uint8_t *data;
    size_t size;
    void *map_base;      /* non-NULL when mapped */
    size_t map_size;
    void *heap;          /* non-NULL when read into memory */
} bitnet_file_view;

/* Open `path` and map it (or read it when no_mmap). BITNET_E_IO with a
 * message naming the path on failure. */
int bitnet__file_open(bitnet_file_view *v, const char *path, int no_mmap);
void bitnet__file_close(bitnet_file_view *v);

/* Anonymous read-write pages, populated up front where the system can
 * (NULL when it cannot: fall back to bitnet__aalloc). */
void *bitnet__pages_map(size_t size);
void bitnet__pages_unmap(void *p, size_t size);
/* Read-fault [p, p+size) of a file mapping in one go, before a scan reads
 * it all (a hint; no effect where unsupported or not mapped). */
void bitnet__pages_prefault(const void *p, size_t size);
/* 0 when the environment variable BITNET_HUGE_PAGES is "0" (read once):
 * then no huge-page advice is given anywhere. */
int bitnet__huge_pages(void);
/* Ask for huge pages on [p, p+size) (a hint; no effect where unsupported
 * or when bitnet__huge_pages() is 0). */
void bitnet__pages_advise_huge(void *p, size_t size);
/* Ask for small pages on the whole pages inside [p, p+size) (memory whose
 * first touches come a row at a time: the KV cache's first chunk). */
void bitnet__pages_advise_small(void *p, size_t size);
/* Turn the pages that hold [p, p+size) into huge pages now, keeping their
 * contents: huge-page advice, then a synchronous collapse (MADV_COLLAPSE,
 * Linux 6.1; a hint: nothing happens where unsupported, when memory is
 * short, or when bitnet__huge_pages() is 0). */
void bitnet__pages_collapse(void *p, size_t size);
/* Fault in, writable, the pages that hold [p, p+size) (a hint: contents
 * stay, new pages are zero; nothing happens where unsupported). */
void bitnet__pages_populate(void *p, size_t size);
/* The whole pages inside [p, p + size) of a read-only file mapping are
 * dropped from this process (MADV_DONTNEED); reading them again brings them
 * back from the file. Only for memory mapped from a file: anonymous memory
 * would read back as zeros. A no-op where unsupported. */
void bitnet__pages_drop(const void *p, size_t size);

/* Number of online CPUs (>= 1). */
int bitnet__ncpu(void);
/* Monotonic time in seconds. */
double bitnet__now(void);

/* String helper: strdup that returns NULL on failure. */
char *bitnet__strdup(const char *s);
char *bitnet__strndup(const char *s, size_t n);

/* Defined in model/load.c, declared here for the stages that see a model
 * only through the public API (sample/: the grammar's token tables).
 * The model's attachment: the first call builds it with build(m, &obj)
 * under the model's lock (its status is returned and nothing is kept on
 * failure), later calls return the same object; free_fn frees it with the
 * model. One kind of attachment per model (a second kind is refused with
 * BITNET_E_INVALID_ARG). Thread-safe. */
int bitnet__model_attachment(const bitnet_model *m,
                             int (*build)(const bitnet_model *m, void **obj),
                             void (*free_fn)(void *obj), void **out);

#endif /* BITNET_INTERNAL_H */
