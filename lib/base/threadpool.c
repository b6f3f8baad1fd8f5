/*
 * Persistent fork/join thread pool (see threadpool.h).
 *
 * A run publishes (fn, arg) and bumps a generation counter; each worker that
 * sees the new generation runs its share and then meets the caller at a
 * final barrier, so when run() returns every thread is done with fn.
 *
 * Waiting (for a new generation, or at a barrier) spins for a short while
 * and then sleeps on a futex (Linux; elsewhere it yields). Sleeping matters
 * when the machine has fewer free cores than threads: a thread spinning for
 * a partner that is not scheduled would only steal the partner's core.
 * The sleep protocol: a waiter registers in a sleeper count and re-checks
 * the word before sleeping (the futex re-checks it atomically too); the
 * waker changes the word, then wakes if anyone is registered. With
 * sequentially consistent atomics one of the two always sees the other.
 */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#if defined(__linux__)
# include <linux/futex.h>
# include <sys/syscall.h>
# include <unistd.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
# include <immintrin.h>
# define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
# define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
# define cpu_relax() ((void)0)
#endif

#include "base/internal.h"
#include "base/threadpool.h"

/* How long a waiter spins before it sleeps: long enough to cover the
 * imbalance between threads at a barrier of a decode step, short enough not
 * to burn a core that a descheduled partner thread could use. */
#define IDLE_SPIN_NS 1000000
#define BARRIER_SPIN_NS 100000

typedef struct worker {
    bitnet_threadpool *tp;
    pthread_t thread;
    int ith;
} worker;

struct bitnet_threadpool {
    int n;                          /* threads including the caller */
    worker *workers;                /* [n - 1] */
    int n_started;

    bitnet_task_fn fn;              /* current run, published by gen */
    void *arg;
    atomic_int stop;

    _Alignas(64) atomic_uint gen;
    atomic_int gen_sleepers;

    /* barrier */
    _Alignas(64) atomic_int bar_count;
    _Alignas(64) atomic_uint bar_phase;
    atomic_int bar_sleepers;
};

static void wait_word(atomic_uint *word, unsigned old)
{
#if defined(__linux__)
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_PRIVATE, old, NULL, NULL, 0);
#else
    (void)word;
    (void)old;
    sched_yield();
#endif
}

static void wake_word(atomic_uint *word)
{
#if defined(__linux__)
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)word;
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait until *word != old: spin for up to spin_ns, then sleep. */
static void wait_change(atomic_uint *word, unsigned old, atomic_int *sleepers, int64_t spin_ns)
{
    int64_t deadline = 0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) != old)
            return;
        cpu_relax();
        if ((i & 63) == 0) {
            int64_t t = now_ns();
            if (deadline == 0)
                deadline = t + spin_ns;
            else if (t > deadline)
                break;
        }
    }
    atomic_fetch_add(sleepers, 1);
    while (atomic_load(word) == old)
        wait_word(word, old);
    atomic_fetch_sub(sleepers, 1);
}

/* Change *word (already done by the caller), then wake its sleepers. */
static void wake_changed(atomic_uint *word, atomic_int *sleepers)
{
    if (atomic_load(sleepers) > 0)
        wake_word(word);
}

static void *worker_main(void *p)
{
    worker *w = p;
    bitnet_threadpool *tp = w->tp;
    unsigned seen = 0;

    for (;;) {
        wait_change(&tp->gen, seen, &tp->gen_sleepers, IDLE_SPIN_NS);
        seen = atomic_load(&tp->gen);
        if (atomic_load(&tp->stop))
            break;
        tp->fn(tp->arg, w->ith, tp->n);
        bitnet__threadpool_barrier(tp);
    }
    return NULL;
}

int bitnet__threadpool_create(bitnet_threadpool **out, int n_threads)
{
    *out = NULL;
    if (n_threads < 1)
        n_threads = 1;
    bitnet_threadpool *tp = calloc(1, sizeof(*tp));
    if (!tp)
        return bitnet__error(BITNET_E_NOMEM, "thread pool: out of memory");
    tp->n = n_threads;
    atomic_init(&tp->stop, 0);
    atomic_init(&tp->gen, 0);
    atomic_init(&tp->gen_sleepers, 0);
    atomic_init(&tp->bar_count, 0);
    atomic_init(&tp->bar_phase, 0);
    atomic_init(&tp->bar_sleepers, 0);
    if (n_threads > 1) {
        tp->workers = calloc((size_t)n_threads - 1, sizeof(*tp->workers));
        if (!tp->workers) {
            bitnet__threadpool_free(tp);
            return bitnet__error(BITNET_E_NOMEM, "thread pool: out of memory");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            worker *w = &tp->workers[i];
            w->tp = tp;
            w->ith = i + 1;
            if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
                bitnet__threadpool_free(tp);
                return bitnet__error(BITNET_E_NOMEM,
                                     "thread pool: cannot start worker thread %d of %d",
                                     i + 1, n_threads - 1);
            }
            tp->n_started++;
        }
    }
    *out = tp;
    return BITNET_OK;
}

void bitnet__threadpool_free(bitnet_threadpool *tp)
{
    if (!tp)
        return;
    if (tp->n_started > 0) {
        atomic_store(&tp->stop, 1);
        atomic_fetch_add(&tp->gen, 1);
        wake_word(&tp->gen);
        for (int i = 0; i < tp->n_started; i++)
            pthread_join(tp->workers[i].thread, NULL);
    }
    free(tp->workers);
    free(tp);
}

int bitnet__threadpool_n(const bitnet_threadpool *tp)
{
    return tp->n;
}

void bitnet__threadpool_run(bitnet_threadpool *tp, bitnet_task_fn fn, void *arg)
{
    if (tp->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->arg = arg;
    atomic_fetch_add(&tp->gen, 1);          /* publishes fn/arg */
    wake_changed(&tp->gen, &tp->gen_sleepers);
    fn(arg, 0, tp->n);
    bitnet__threadpool_barrier(tp);         /* every worker is done with fn */
}

void bitnet__threadpool_barrier(bitnet_threadpool *tp)
{
    if (tp->n == 1)
        return;
    unsigned phase = atomic_load_explicit(&tp->bar_phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&tp->bar_count, 1, memory_order_acq_rel) == tp->n - 1) {
        atomic_store_explicit(&tp->bar_count, 0, memory_order_relaxed);
        atomic_store(&tp->bar_phase, phase + 1);
        wake_changed(&tp->bar_phase, &tp->bar_sleepers);
        return;
    }
    wait_change(&tp->bar_phase, phase, &tp->bar_sleepers, BARRIER_SPIN_NS);
}
