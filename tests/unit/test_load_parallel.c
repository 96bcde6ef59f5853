/*
 * Loading side by side (user/kernel/load_parallel.c): every runtime is loaded
 * once and handed to the callback once, on the calling thread, with its own
 * result; one thread takes them in the order asked for. The runtimes here
 * are refused by signal_load() before any object is opened (too many probe
 * points), so no kernel is needed.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "load_parallel.h"

#define N 12

static struct signal_def oversized = { .name = "oversized", .n_points = SIGNAL_MAX_POINTS + 1 };

struct seen {
	pthread_t caller;
	int calls[N];
	int errs[N];
	int sequence[N];
	int n;
};

static void loaded(int i, int err, void *arg)
{
	struct seen *s = arg;

	assert_true(pthread_equal(pthread_self(), s->caller));
	assert_true(i >= 0 && i < N);
	s->calls[i]++;
	s->errs[i] = err;
	s->sequence[s->n++] = i;
}

static void run(int threads, const int *order, struct seen *s, struct signal_runtime *rts)
{
	struct signal_runtime *ptrs[N];
	struct load_options lo = { 0 };
	int i;

	memset(s, 0, sizeof(*s));
	s->caller = pthread_self();
	for (i = 0; i < N; i++) {
		rts[i] = (struct signal_runtime){ .def = &oversized };
		ptrs[i] = &rts[i];
	}
	assert_int_equal(signal_load_many(ptrs, order, N, &lo, threads, loaded, s), 0);
}

static void test_each_once_on_the_caller(void **state)
{
	struct signal_runtime rts[N];
	struct seen s;
	int threads, i;

	for (threads = 1; threads <= 4; threads++) {
		run(threads, NULL, &s, rts);
		assert_int_equal(s.n, N);
		for (i = 0; i < N; i++) {
			assert_int_equal(s.calls[i], 1);
			assert_int_equal(s.errs[i], -E2BIG);
			/* the runtime's own error, written by whichever thread loaded it */
			assert_non_null(strstr(rts[i].error, "oversized declares"));
		}
	}
}

static void test_one_thread_takes_the_order_given(void **state)
{
	static const int order[N] = { 11, 3, 0, 7, 1, 2, 4, 5, 6, 8, 9, 10 };
	struct signal_runtime rts[N];
	struct seen s;

	run(1, order, &s, rts);
	assert_memory_equal(s.sequence, order, sizeof(order));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_once_on_the_caller),
		cmocka_unit_test(test_one_thread_takes_the_order_given),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
