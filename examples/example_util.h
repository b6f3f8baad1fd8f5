/*
 * Small helpers shared by the example programs (file reading, number
 * parsing, a clock, error messages, the default model). Header-only, static
 * functions: each example stays a single program that uses nothing of
 * libbitnet but <bitnet.h>.
 *
 * Conventions every program follows: messages on stderr start with
 * "PROGRAM: "; exit status 0 on success, 1 on any error (usage or run
 * time); -t 0 means one thread per online CPU; without -m the bundled model
 * is used (ex_default_model).
 */
#ifndef BITNET_EXAMPLE_UTIL_H
#define BITNET_EXAMPLE_UTIL_H

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Where the bundled model is: BITNET_MODEL_INSTALLED is the installed copy
 * (<datadir>/bitnet/models), BITNET_MODEL_BUILDTREE the source tree's and
 * BITNET_EXAMPLES_BUILDDIR the directory the uninstalled programs run from;
 * meson defines all three. */
#ifndef BITNET_MODEL_INSTALLED
# define BITNET_MODEL_INSTALLED "/usr/local/share/bitnet/models/tinystories-bitnet.gguf"
#endif
#ifndef BITNET_MODEL_BUILDTREE
# define BITNET_MODEL_BUILDTREE "models/tinystories-bitnet.gguf"
#endif

/* The whole file, NUL-terminated (the NUL is not counted in *len); NULL
 * when it cannot be opened or read, or memory runs out. */
static inline char *ex_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0 || n + 1 < cap)
            break;
        char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* A whole decimal number in [lo, hi]: 0, else -1. */
static inline int ex_parse_long(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "PROG: message\n" on stderr; returns 1 (the exit status of an error). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static inline int ex_fail(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* An option's whole decimal value in [lo, hi]; on failure prints the
 * allowed range and returns -1. */
static inline int ex_opt_long(const char *prog, const char *opt, const char *v,
                              long lo, long hi, long *out)
{
    if (ex_parse_long(v, lo, hi, out) == 0)
        return 0;
    ex_fail(prog, "invalid value '%s' for %s (an integer from %ld to %ld)", v ? v : "",
            opt, lo, hi);
    return -1;
}

/* Threads for "-t N": N, or one per online CPU when N is 0. */
static inline int ex_threads(long n)
{
    if (n > 0)
        return (int)n;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    return nc >= 1 && nc <= 256 ? (int)nc : 1;
}

/* The model to use without -m: $BITNET_DEFAULT_MODEL, else the bundled
 * model — the build tree's copy for a program run from the build directory,
 * the installed copy otherwise. */
static inline const char *ex_default_model(void)
{
    const char *env = getenv("BITNET_DEFAULT_MODEL");
    if (env && *env)
        return env;
#ifdef BITNET_EXAMPLES_BUILDDIR
    char exe[PATH_MAX], dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0 && realpath(BITNET_EXAMPLES_BUILDDIR, dir)) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            if (strcmp(exe, dir) == 0)
                return BITNET_MODEL_BUILDTREE;
        }
    } else if (n <= 0 && access(BITNET_MODEL_INSTALLED, R_OK) != 0) {
        return BITNET_MODEL_BUILDTREE;  /* no /proc: whichever exists */
    }
#endif
    return BITNET_MODEL_INSTALLED;
}

/* Warn (once per program run) when a context longer than the model's
 * training context is asked for. */
static inline void ex_warn_ctx(const char *prog, long n_ctx, int32_t n_ctx_train)
{
    if (n_ctx_train > 0 && n_ctx > n_ctx_train)
        fprintf(stderr, "%s: warning: -c %ld is above the model's training context "
                "(%d tokens); output quality may degrade\n", prog, n_ctx, (int)n_ctx_train);
}

/* Monotonic time in seconds. */
static inline double ex_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif /* BITNET_EXAMPLE_UTIL_H */
