/*
 * Persistent fork/join thread pool (see threadpool.h).
 *
 * A run publishes (fn, arg) and bumps a generation word that also carries
 * the run's thread count; each worker that sees the new generation and is
 * among the run's threads runs its share and then meets the caller at a
 * final barrier, so when run() returns every participant is done with fn.
 * Workers outside a run's count just wait for the next generation.
 *
 * Waiting (for a new generation, or at a barrier) spins for a bounded
 * time (a partner on another core arrives within microseconds), then
 * sleeps on a futex (Linux; elsewhere it yields). Spinning longer only
 * steals time from the partner when the machine has fewer free cores than
 * threads.
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

/* How long a waiter spins before it sleeps: long enough to cover the usual
 * imbalance between threads at a barrier of a decode step (between runs:
 * the sampling of a token), short enough not to burn a core that a
 * descheduled partner could use. No sched_yield phase: on a machine whose
 * cores are taken by other processes a yield hands the core to them for a
 * whole time slice, and measured, even two yields before sleeping made
 * 2B4T decode on two threads slower (docs/performance.md), while a thread
 * woken from a futex is scheduled promptly. */
#define IDLE_SPIN_NS 1000000
#define BARRIER_SPIN_NS 100000

/* The generation word: run counter above GEN_SHIFT bits, the run's thread
 * count below (at most 256 threads). */
#define GEN_SHIFT 9
#define GEN_NTH_MASK ((1u << GEN_SHIFT) - 1)

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

    _Alignas(64) atomic_uint gen;   /* counter << GEN_SHIFT | threads */
    atomic_int gen_sleepers;
    atomic_int run_nth;             /* threads of the current run */

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
static void wait_change(atomic_uint *word, unsigned old, atomic_int *sleepers,
                        int64_t spin_ns)
{
    int64_t start = 0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) != old)
            return;
        cpu_relax();
        if ((i & 63) == 0) {
            int64_t t = now_ns();
            if (start == 0)
                start = t;
            else if (t - start > spin_ns)
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
    int was_in = 1;          /* took part in the last run it saw */

    for (;;) {
        /* a worker left out of the last run is likely left out of the next
         * one too (same size of work): it goes straight to sleep */
        wait_change(&tp->gen, seen, &tp->gen_sleepers, was_in ? IDLE_SPIN_NS : 0);
        seen = atomic_load(&tp->gen);
        if (atomic_load(&tp->stop))
            break;
        /* The count comes with the generation, so it is this run's even if
         * the worker woke late. fn and arg are read only by a participant,
         * and the caller cannot start another run before every participant
         * has reached the final barrier. */
        int nth = (int)(seen & GEN_NTH_MASK);
        was_in = w->ith < nth;
        if (!was_in)
            continue;
        tp->fn(tp->arg, w->ith, nth);
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
    atomic_init(&tp->run_nth, 1);
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
        atomic_fetch_add(&tp->gen, 1u << GEN_SHIFT);
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

void bitnet__threadpool_run_n(bitnet_threadpool *tp, bitnet_task_fn fn, void *arg,
                              int nth)
{
    if (nth > tp->n)
        nth = tp->n;
    if (nth < 1)
        nth = 1;
    /* Every participant of the previous run has passed its final barrier,
     * and workers outside a run never read run_nth: no reader can see this
     * store in the middle of a run. */
    atomic_store_explicit(&tp->run_nth, nth, memory_order_relaxed);
    if (nth == 1) {
        fn(arg, 0, 1);                      /* the workers stay asleep */
        return;
    }
    tp->fn = fn;
    tp->arg = arg;
    unsigned g = atomic_load_explicit(&tp->gen, memory_order_relaxed);
    unsigned next = ((g >> GEN_SHIFT) + 1) << GEN_SHIFT | (unsigned)nth;
    atomic_store(&tp->gen, next);           /* publishes fn/arg/run_nth */
    wake_changed(&tp->gen, &tp->gen_sleepers);
    fn(arg, 0, nth);
    bitnet__threadpool_barrier(tp);         /* every participant is done */
}

void bitnet__threadpool_run(bitnet_threadpool *tp, bitnet_task_fn fn, void *arg)
{
    bitnet__threadpool_run_n(tp, fn, arg, tp->n);
}

void bitnet__threadpool_barrier(bitnet_threadpool *tp)
{
    /* read before arriving: once every thread has arrived the caller may
     * start the next run and store a new count */
    const int nth = atomic_load_explicit(&tp->run_nth, memory_order_relaxed);
    if (nth == 1)
        return;
    unsigned phase = atomic_load_explicit(&tp->bar_phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&tp->bar_count, 1, memory_order_acq_rel) == nth - 1) {
        atomic_store_explicit(&tp->bar_count, 0, memory_order_relaxed);
        atomic_store(&tp->bar_phase, phase + 1);
        wake_changed(&tp->bar_phase, &tp->bar_sleepers);
        return;
    }
    wait_change(&tp->bar_phase, phase, &tp->bar_sleepers, BARRIER_SPIN_NS);
}

/* ---- how many threads a region should use ------------------------------ */

/* BITNET_WORK_PER_THREAD in the environment replaces the default unit (a
 * number >= 0; 0 uses every thread for any work, which the tests of
 * bit-exactness across thread counts rely on). */
static double work_unit = BITNET__WORK_PER_THREAD;
static pthread_once_t work_unit_once = PTHREAD_ONCE_INIT;

static void read_work_unit(void)
{
    const char *e = getenv("BITNET_WORK_PER_THREAD");
    if (!e || !*e)
        return;
    char *end = NULL;
    double v = strtod(e, &end);
    if (end && *end == '\0' && v >= 0 && v < 1e15)
        work_unit = v;
}

int bitnet__threads_for_work(int max_threads, double work_per_stage)
{
    pthread_once(&work_unit_once, read_work_unit);
    if (max_threads <= 1)
        return 1;
    if (work_unit == 0)
        return max_threads;
    if (!(work_per_stage > 0))
        return 1;
    double k = work_per_stage / work_unit;
    if (k < 1.0)
        return 1;
    return k >= (double)max_threads ? max_threads : (int)k;
}

/* ---- many threads or one, from measurements ----------------------------- */

#define TUNER_FIRST 8u
#define TUNER_MAX 512u
#define TUNER_MARGIN 0.9

void bitnet__tuner_init(bitnet_thread_tuner *t)
{
    t->cost[0] = t->cost[1] = 0;
    t->since = 0;
    t->interval = TUNER_FIRST;
    t->trying = 0;
    t->use_one = 0;
}

int bitnet__tuner_choose(bitnet_thread_tuner *t, int n_wanted)
{
    pthread_once(&work_unit_once, read_work_unit);
    t->trying = 0;
    if (t->interval == 0)                  /* zero-initialised */
        t->interval = TUNER_FIRST;
    if (n_wanted <= 1 || work_unit == 0)   /* 0: every thread, always */
        return n_wanted < 1 ? 1 : n_wanted;
    if (t->cost[0] == 0)
        return n_wanted;                   /* measure the default first */
    if (t->cost[1] == 0 || ++t->since >= t->interval) {
        t->trying = 1;                     /* try the other choice */
        return t->use_one ? n_wanted : 1;
    }
    return t->use_one ? 1 : n_wanted;
}

void bitnet__tuner_record(bitnet_thread_tuner *t, int n_used, double seconds,
                          double work)
{
    if (!(work > 0) || !(seconds >= 0))
        return;
    int k = n_used <= 1;
    double c = seconds / work;
    if (c <= 0)
        c = 1e-300;                        /* "measured, and very fast" */
    if (t->trying) {
        /* A try replaces the old figure, which may be from another load.
         * It takes over only when clearly faster: one step's time is noisy
         * on a busy machine, and flapping costs the slower choice's time. */
        t->cost[k] = c;
        t->since = 0;
        if (t->cost[k] < TUNER_MARGIN * t->cost[!k]) {
            t->use_one = k;                /* it won: it is used from now on */
            t->interval = TUNER_FIRST;
        } else if (t->interval < TUNER_MAX)
            t->interval *= 2;
        t->trying = 0;
        return;
    }
    t->cost[k] = t->cost[k] > 0 ? 0.75 * t->cost[k] + 0.25 * c : c;
}
