#include "load_parallel.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "startup_trace.h"

#define LOAD_MAX_THREADS 8
#define LOAD_MAX 64

struct load_queue {
	struct signal_runtime *const *rts;
	const int *order;
	int n;
	const struct load_options *opts;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	/* under lock: */
	int next;            /* the next of order[] to take */
	int err[LOAD_MAX];
	bool done[LOAD_MAX]; /* loaded, err[] set */
	bool told[LOAD_MAX]; /* passed to loaded() */
	int finished[LOAD_MAX]; /* in the order their loads ended */
	int n_finished;
};

static int at(const struct load_queue *q, int k)
{
	return q->order ? q->order[k] : k;
}

/* Load one runtime if any is left (the lock held on entry and exit); false when none is. */
static bool load_one(struct load_queue *q)
{
	int i, err;

	if (q->next >= q->n)
		return false;
	i = at(q, q->next++);
	pthread_mutex_unlock(&q->lock);
	/* each runtime is touched by one thread only; the options and the kernel facts are read-only */
	err = signal_load(q->rts[i], q->opts);
	pthread_mutex_lock(&q->lock);
	q->err[i] = err;
	q->done[i] = true;
	q->finished[q->n_finished++] = i;
	pthread_cond_broadcast(&q->changed);
	return true;
}

static void *worker(void *arg)
{
	struct load_queue *q = arg;

	startup_trace_thread();
	pthread_mutex_lock(&q->lock);
	while (load_one(q))
		;
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int signal_load_threads(void)
{
	const char *env = getenv("KSIGHT_LOAD_THREADS");
	long cpus;

	if (env && *env) {
		char *end;
		long n = strtol(env, &end, 10);

		if (!*end && n >= 1 && n <= LOAD_MAX_THREADS)
			return (int)n;
	}
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus < 1)
		return 1;
	return cpus > 4 ? 4 : (int)cpus;
}

/* The loaded runtime that has waited longest for loaded(), or -1 (lock held). */
static int ready_one(const struct load_queue *q)
{
	int k;

	for (k = 0; k < q->n_finished; k++)
		if (!q->told[q->finished[k]])
			return q->finished[k];
	return -1;
}

int signal_load_many(struct signal_runtime *const *rts, const int *order, int n, const struct load_options *opts,
		     int threads, signal_loaded_fn loaded, void *ctx)
{
	struct load_queue *q = calloc(1, sizeof(*q));
	pthread_t tids[LOAD_MAX_THREADS];
	int started = 0, told = 0, i;

	if (!q || n > LOAD_MAX) {
		free(q);
		return -ENOMEM;
	}
	*q = (struct load_queue){ .rts = rts, .order = order, .n = n, .opts = opts };
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->changed, NULL);
	if (threads > LOAD_MAX_THREADS)
		threads = LOAD_MAX_THREADS;
	/*
	 * `threads` loaders, and this thread starts what they loaded. When this
	 * one loaded too, the others ran out of loads while it still started
	 * its own, and at the end one CPU attached alone while the other idled.
	 */
	for (i = 0; i < threads && i < n; i++)
		if (pthread_create(&tids[started], NULL, worker, q) == 0)
			started++;
	pthread_mutex_lock(&q->lock);
	while (told < n) {
		i = ready_one(q);
		if (i >= 0) {
			q->told[i] = true;
			told++;
			pthread_mutex_unlock(&q->lock);
			if (loaded)
				loaded(i, q->err[i], ctx);
			pthread_mutex_lock(&q->lock);
		} else if (started || !load_one(q)) { /* this thread loads only when no loader started */
			pthread_cond_wait(&q->changed, &q->lock);
		}
	}
	pthread_mutex_unlock(&q->lock);
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	pthread_cond_destroy(&q->changed);
	pthread_mutex_destroy(&q->lock);
	free(q);
	return 0;
}
