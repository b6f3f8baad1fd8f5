/*
 * A small persistent fork/join thread pool, owned by a context.
 *
 * bitnet__threadpool_run() calls fn(arg, ith, nth) once on each of the nth
 * threads (ith 0 is the calling thread) and returns when all have returned.
 * Inside fn, bitnet__threadpool_barrier() synchronises the nth threads, so a
 * whole forward step can run as one region with barriers between stages.
 * Waiting threads spin briefly, then sleep on a futex; no thread
 * is created after bitnet__threadpool_create().
 *
 * A region may use fewer threads than the pool has
 * (bitnet__threadpool_run_n): every barrier costs a few microseconds when
 * all threads are on a core, and up to a scheduler time slice when one of
 * them is not (a machine busy with other processes), so small regions run
 * on fewer threads. bitnet__threads_for_work() is the rule for that choice.
 */
#ifndef BITNET_THREADPOOL_H
#define BITNET_THREADPOOL_H

typedef struct bitnet_threadpool bitnet_threadpool;

typedef void (*bitnet_task_fn)(void *arg, int ith, int nth);

/* n_threads >= 1 includes the caller. BITNET_OK, BITNET_E_NOMEM or
 * BITNET_E_IO (thread creation failed); *out is NULL on failure. */
int bitnet__threadpool_create(bitnet_threadpool **out, int n_threads);
/* Join the workers and free. NULL is ignored. */
void bitnet__threadpool_free(bitnet_threadpool *tp);
int bitnet__threadpool_n(const bitnet_threadpool *tp);
/* Run fn on every thread; not reentrant (one run at a time per pool). */
void bitnet__threadpool_run(bitnet_threadpool *tp, bitnet_task_fn fn, void *arg);
/* Run fn on the first nth threads only (clamped to [1, pool size]): fn sees
 * nth as its thread count and barriers wait for nth threads. nth 1 calls fn
 * on the caller without waking any worker. */
void bitnet__threadpool_run_n(bitnet_threadpool *tp, bitnet_task_fn fn, void *arg,
                              int nth);
/* Wait until all nth threads of the current run reach the barrier. Only
 * valid inside fn. Has acquire/release semantics (memory written before it
 * by any thread is visible after it to all). */
void bitnet__threadpool_barrier(bitnet_threadpool *tp);

/* The number of threads (1..max_threads) worth using for a region whose
 * stages (the work between two barriers) each do about work_per_stage
 * units, a unit being one weight multiply-accumulate (about 0.03 ns of one
 * AVX2 core on ternary weights): one thread per BITNET__WORK_PER_THREAD
 * units, so that each thread's share of a stage takes several times as
 * long as a barrier between running threads. Below that, the parallel
 * gain is smaller than what the barriers cost, and under a busy machine a
 * barrier can cost a whole scheduler time slice. The count never changes
 * results: the kernels are bit-exact for any thread count.
 * The environment variable BITNET_WORK_PER_THREAD, read once, replaces the
 * unit (0: every thread for any work). */
#define BITNET__WORK_PER_THREAD (256.0 * 1024.0)
int bitnet__threads_for_work(int max_threads, double work_per_stage);

/* Many threads or one, from measurements. When other processes hold the
 * cores, a region on several threads can be slower than on one even with
 * plenty of work (every barrier waits for a descheduled thread). A tuner
 * keeps the time per unit of work of both choices for one kind of step:
 * it uses the one whose last try was at least 10 % faster than the other's
 * figure, and tries the other now and then (one thread on the
 * second step, then the other choice after 8 steps, twice as long each
 * time the try loses, up to 512 steps), so it follows the machine's load.
 * The count never changes results. Not thread-safe (one per context and
 * kind of step). A zero-filled tuner is ready to use, as after
 * bitnet__tuner_init. BITNET_WORK_PER_THREAD=0 turns tuning off. */
typedef struct bitnet_thread_tuner {
    double cost[2];          /* s per unit: [0] the wanted count, [1] one */
    unsigned since;          /* steps since the last try */
    unsigned interval;       /* steps between tries */
    int trying;              /* the chosen option is a try */
    int use_one;             /* the choice in use: 1 thread */
} bitnet_thread_tuner;

void bitnet__tuner_init(bitnet_thread_tuner *t);
/* The thread count for a step that warrants n_wanted threads
 * (bitnet__threads_for_work): n_wanted or 1. */
int bitnet__tuner_choose(bitnet_thread_tuner *t, int n_wanted);
/* Report the step run with n_used threads (the value choose returned): it
 * took `seconds` for `work` units. */
void bitnet__tuner_record(bitnet_thread_tuner *t, int n_used, double seconds,
                          double work);

#endif /* BITNET_THREADPOOL_H */
