/*
 * Persistent fork/join thread pool (see threadpool.h).
 *
 * A run publishes (fn, arg) and bumps a generation counter; workers that
 * see the new generation run their share and decrement `pending`. Workers
 * spin for a short while after a run (a decode step starts a new run every
 * few milliseconds), then sleep on a condition variable. The sleep protocol:
 * a worker registers in n_sleeping under the mutex and re-checks the
 * generation before waiting; the caller bumps the generation, then
 * broadcasts under the mutex if anyone is registered. With sequentially
 * consistent atomics one of the two always sees the other.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
# include <immintrin.h>
# define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
# define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
# define cpu_relax() ((void)0)
#endif

#include "internal.h"
#include "threadpool.h"

/* Pause iterations before an idle worker goes to sleep, and before a
 * waiter at a barrier starts yielding the CPU. */
#define IDLE_SPINS 20000
#define BARRIER_SPINS 256

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
    atomic_uint gen;
    atomic_int pending;
    atomic_int stop;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    atomic_int n_sleeping;

    /* barrier */
    _Alignas(64) atomic_int bar_count;
    _Alignas(64) atomic_uint bar_phase;
};

static void *worker_main(void *p)
{
    worker *w = p;
    bitnet_threadpool *tp = w->tp;
    unsigned seen = 0;

    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load(&tp->gen)) == seen) {
            if (++spins < IDLE_SPINS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&tp->lock);
            atomic_fetch_add(&tp->n_sleeping, 1);
            while (atomic_load(&tp->gen) == seen)
                pthread_cond_wait(&tp->cond, &tp->lock);
            atomic_fetch_sub(&tp->n_sleeping, 1);
            pthread_mutex_unlock(&tp->lock);
            spins = 0;
        }
        seen = g;
        if (atomic_load(&tp->stop))
            break;
        tp->fn(tp->arg, w->ith, tp->n);
        atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_release);
    }
    return NULL;
}

static void wake_all(bitnet_threadpool *tp)
{
    if (atomic_load(&tp->n_sleeping) > 0) {
        pthread_mutex_lock(&tp->lock);
        pthread_cond_broadcast(&tp->cond);
        pthread_mutex_unlock(&tp->lock);
    }
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
    atomic_init(&tp->gen, 0);
    atomic_init(&tp->pending, 0);
    atomic_init(&tp->stop, 0);
    atomic_init(&tp->n_sleeping, 0);
    atomic_init(&tp->bar_count, 0);
    atomic_init(&tp->bar_phase, 0);
    if (pthread_mutex_init(&tp->lock, NULL) != 0) {
        free(tp);
        return bitnet__error(BITNET_E_NOMEM, "thread pool: cannot create a mutex");
    }
    if (pthread_cond_init(&tp->cond, NULL) != 0) {
        pthread_mutex_destroy(&tp->lock);
        free(tp);
        return bitnet__error(BITNET_E_NOMEM, "thread pool: cannot create a condition variable");
    }
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
        pthread_mutex_lock(&tp->lock);
        pthread_cond_broadcast(&tp->cond);
        pthread_mutex_unlock(&tp->lock);
        for (int i = 0; i < tp->n_started; i++)
            pthread_join(tp->workers[i].thread, NULL);
    }
    free(tp->workers);
    pthread_cond_destroy(&tp->cond);
    pthread_mutex_destroy(&tp->lock);
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
    atomic_store(&tp->pending, tp->n - 1);
    atomic_fetch_add(&tp->gen, 1);          /* publishes fn/arg */
    wake_all(tp);

    fn(arg, 0, tp->n);

    int spins = 0;
    while (atomic_load_explicit(&tp->pending, memory_order_acquire) > 0) {
        if (++spins < BARRIER_SPINS * 64)
            cpu_relax();
        else
            sched_yield();
    }
}

void bitnet__threadpool_barrier(bitnet_threadpool *tp)
{
    if (tp->n == 1)
        return;
    unsigned phase = atomic_load_explicit(&tp->bar_phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&tp->bar_count, 1, memory_order_acq_rel) == tp->n - 1) {
        atomic_store_explicit(&tp->bar_count, 0, memory_order_relaxed);
        atomic_store_explicit(&tp->bar_phase, phase + 1, memory_order_release);
        return;
    }
    int spins = 0;
    while (atomic_load_explicit(&tp->bar_phase, memory_order_acquire) == phase) {
        if (++spins < BARRIER_SPINS)
            cpu_relax();
        else
            sched_yield();
    }
}
