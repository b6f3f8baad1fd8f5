/*
 * A small persistent fork/join thread pool, owned by a context.
 *
 * bitnet__threadpool_run() calls fn(arg, ith, nth) once on each of the nth
 * threads (ith 0 is the calling thread) and returns when all have returned.
 * Inside fn, bitnet__threadpool_barrier() synchronises the nth threads, so a
 * whole forward step can run as one region with barriers between stages.
 * Waiting threads spin briefly, then sleep on a futex; no thread
 * is created after bitnet__threadpool_create().
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
/* Wait until all nth threads of the current run reach the barrier. Only
 * valid inside fn. Has acquire/release semantics (memory written before it
 * by any thread is visible after it to all). */
void bitnet__threadpool_barrier(bitnet_threadpool *tp);

#endif /* BITNET_THREADPOOL_H */
