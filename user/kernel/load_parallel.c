#include "load_parallel.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define LOAD_MAX_THREADS 8

struct load_queue {
	struct signal_runtime *const *rts;
	int *errs;
	int n;
	int next; /* the next runtime to take; under lock */
	pthread_mutex_t lock;
	const struct load_options *opts;
};

static int take(struct load_queue *q)
{
	int i;

	pthread_mutex_lock(&q->lock);
	i = q->next < q->n ? q->next++ : -1;
	pthread_mutex_unlock(&q->lock);
	return i;
}

/* Each runtime is touched by one thread only; the options and the kernel facts are read-only. */
static void *worker(void *arg)
{
	struct load_queue *q = arg;
	int i;

	while ((i = take(q)) >= 0)
		q->errs[i] = signal_load(q->rts[i], q->opts);
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

int signal_load_many(struct signal_runtime *const *rts, int *errs, int n, const struct load_options *opts,
		     int threads)
{
	struct load_queue q = { .rts = rts, .errs = errs, .n = n, .opts = opts };
	pthread_t tids[LOAD_MAX_THREADS];
	int started = 0, i;

	if (threads > LOAD_MAX_THREADS)
		threads = LOAD_MAX_THREADS;
	if (threads > n)
		threads = n;
	pthread_mutex_init(&q.lock, NULL);
	/* this thread is one of the loaders: threads - 1 more */
	for (i = 1; i < threads; i++)
		if (pthread_create(&tids[started], NULL, worker, &q) == 0)
			started++;
	worker(&q);
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	pthread_mutex_destroy(&q.lock);
	return 0;
}
