/*
 * The runtime's life on the real kernel (root): a signal whose object the
 * kernel refuses leaves nothing behind for the scrape-time collectors, the
 * collectors read only published runtimes, the event loop runs without a
 * ring buffer, and the BPF map helpers read what the kernel holds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "bpf_maps.h"
#include "kernel_features.h"
#include "loader.h"
#include "metrics.h"
#include "strbuf.h"

extern const struct signal_def oom_signal;

/* An array of no entries: the kernel refuses to create the map, so every load fails. */
static int refuse_ringbuf(struct signal_runtime *rt)
{
	struct bpf_map *stats = bpf_object__find_map_by_name(rt->obj, "ksight_ringbuf_stats");

	return stats ? bpf_map__set_max_entries(stats, 0) : -ENOENT;
}

static struct signal_def refused_oom;

static int count_collect;

static void counting_collect(struct signal_runtime *rt, struct metrics_registry *reg)
{
	count_collect++;
}

static struct signal_def collecting_oom;

static int no_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

static void test_failed_load_leaves_nothing(void **state)
{
	struct kernel_features kf;
	struct signal_runtime rt = { .def = &refused_oom };
	struct load_options lo = { .kf = &kf };
	size_t v;

	assert_int_equal(kernel_features_open(&kf, NULL), 0);
	assert_true(signal_load(&rt, &lo) < 0);
	/* the object was freed: nothing may point at it */
	assert_null(rt.obj);
	assert_null(rt.skel);
	assert_false(rt.running);
	assert_true(strstr(rt.error, "oom") != NULL);
	for (v = 0; v < oom_signal.points[0].n_variants; v++) {
		enum variant_state st = rt.status[0].variants[v].state;

		assert_true(st == VARIANT_LOAD_FAILED || st == VARIANT_UNSUPPORTED);
	}
	signal_unload(&rt); /* twice is harmless */
	kernel_features_close(&kf);
}

/* A table that declares more than the runtime can hold is refused before anything is opened. */
static void test_oversized_tables_are_refused(void **state)
{
	struct probe_point points[SIGNAL_MAX_POINTS + 1];
	struct probe_variant variants[PROBE_MAX_VARIANTS + 1];
	struct signal_def def = oom_signal;
	struct signal_runtime rt = { .def = &def };
	struct kernel_features kf;
	struct load_options lo = { .kf = &kf };
	size_t i;

	assert_int_equal(kernel_features_open(&kf, NULL), 0);
	for (i = 0; i < SIGNAL_MAX_POINTS + 1; i++)
		points[i] = oom_signal.points[0];
	def.points = points;
	def.n_points = SIGNAL_MAX_POINTS + 1;
	assert_int_equal(signal_load(&rt, &lo), -E2BIG);
	assert_non_null(strstr(rt.error, "probe points"));
	assert_null(rt.obj);

	for (i = 0; i < PROBE_MAX_VARIANTS + 1; i++)
		variants[i] = oom_signal.points[0].variants[0];
	points[0].variants = variants;
	points[0].n_variants = PROBE_MAX_VARIANTS + 1;
	def.n_points = 1;
	assert_int_equal(signal_load(&rt, &lo), -E2BIG);
	assert_non_null(strstr(rt.error, "variants"));
	assert_null(rt.obj);
	kernel_features_close(&kf);
}

static struct agent *test_agent(void)
{
	static const char *const signal_label[] = { "signal" };
	static const char *const probe_labels[] = { "signal", "probe", "variant", "state" };
	struct agent *a = calloc(1, sizeof(*a));

	assert_non_null(a);
	pthread_mutex_init(&a->runtimes_lock, NULL);
	a->metrics = metrics_registry_new(0);
	a->probe_info = metrics_family(a->metrics, "ksight_probe_info", "h", METRIC_GAUGE, probe_labels, 4, NULL, 0);
	a->ringbuf_lost = metrics_family(a->metrics, "ksight_ringbuf_lost_total", "h", METRIC_COUNTER,
					 signal_label, 1, NULL, 0);
	a->ringbuf_records = metrics_family(a->metrics, "ksight_ringbuf_records_total", "h", METRIC_COUNTER,
					    signal_label, 1, NULL, 0);
	metrics_add_collector(a->metrics, agent_collect_signals, a);
	return a;
}

static void free_agent(struct agent *a)
{
	int i;

	for (i = 0; i < a->n_runtimes; i++)
		signal_unload(&a->runtimes[i]);
	metrics_registry_free(a->metrics);
	pthread_mutex_destroy(&a->runtimes_lock);
	free(a);
}

static char *render(struct agent *a)
{
	struct strbuf out = { 0 };

	assert_int_equal(metrics_render(a->metrics, &out), 0);
	return out.buf;
}

static void test_collectors_read_only_published_runtimes(void **state)
{
	struct agent *a = test_agent();
	struct kernel_features kf;
	struct load_options lo = { .kf = &kf };
	struct signal_runtime *bad = &a->runtimes[0], *good = &a->runtimes[1];
	char *text;

	assert_int_equal(kernel_features_open(&kf, NULL), 0);
	a->n_runtimes = 2;
	*bad = (struct signal_runtime){ .def = &refused_oom, .agent = a };
	*good = (struct signal_runtime){ .def = &collecting_oom, .agent = a };
	assert_true(signal_load(bad, &lo) < 0);
	assert_int_equal(signal_load(good, &lo), 0);
	signal_attach(good, false);
	assert_true(good->running);

	/* nothing published yet: nothing of either is read */
	count_collect = 0;
	text = render(a);
	assert_null(strstr(text, "signal=\"oom\""));
	assert_int_equal(count_collect, 0);
	free(text);

	agent_publish(a, bad, true);
	agent_publish(a, good, true);
	text = render(a);
	/* the failed one shows its variants' states; only the running one is collected */
	assert_non_null(strstr(text, "state=\"load_failed\""));
	assert_non_null(strstr(text, "state=\"attached\""));
	assert_non_null(strstr(text, "ksight_ringbuf_lost_total{signal=\"oom\"} 0"));
	assert_int_equal(count_collect, 1);
	free(text);

	agent_publish(a, good, false);
	signal_unload(good);
	text = render(a);
	assert_int_equal(count_collect, 1);
	free(text);
	free_agent(a);
	kernel_features_close(&kf);
}

static void *send_stop(void *arg)
{
	usleep(100 * 1000);
	kill(getpid(), SIGUSR1);
	return NULL;
}

static void test_loop_without_a_ring(void **state)
{
	struct agent a = { 0 };
	sigset_t stop;
	pthread_t t;

	sigemptyset(&stop);
	sigaddset(&stop, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	pthread_create(&t, NULL, send_stop, NULL);
	assert_int_equal(agent_loop(&a, &stop), 0);
	pthread_join(t, NULL);
}

struct walk_total {
	struct bpf_map_shape shape;
	int entries;
	uint64_t sum[2];
};

static int add_entry(const void *key, const void *value, void *ctx)
{
	struct walk_total *w = ctx;
	uint64_t sums[2];

	bpf_percpu_sum_u64(&w->shape, value, 2, sums);
	w->entries++;
	w->sum[0] += sums[0];
	w->sum[1] += sums[1];
	return 0;
}

static int stop_at_three(const void *key, const void *value, void *ctx)
{
	return ++*(int *)ctx == 3 ? 42 : 0;
}

/* A map of `type` holding keys 0..n-1, each CPU's value {k, 1}; walked and summed. */
static void check_walk(enum bpf_map_type type, uint32_t n)
{
	struct walk_total w = { 0 };
	int ncpu = libbpf_num_possible_cpus(), fd, cpu, stopped = 0;
	int percpu = type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
		     type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
	uint64_t *value = calloc((size_t)ncpu, 2 * sizeof(uint64_t)), sums[2];
	uint32_t k;

	/* an LRU map evicts before it is full: room to spare, so every key stays */
	fd = bpf_map_create(type, "ksight_test", sizeof(uint32_t), 2 * sizeof(uint64_t),
			    type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY ? n : 4 * n, NULL);
	assert_true(fd >= 0);
	for (k = 0; k < n; k++) {
		for (cpu = 0; cpu < (percpu ? ncpu : 1); cpu++) {
			value[2 * cpu] = k;
			value[2 * cpu + 1] = 1;
		}
		assert_int_equal(bpf_map_update_elem(fd, &k, value, BPF_ANY), 0);
	}
	assert_int_equal(bpf_map_shape_of(fd, &w.shape), 0);
	assert_int_equal(w.shape.ncpu, percpu ? ncpu : 1);
	assert_int_equal(bpf_map_walk(fd, add_entry, &w), 0);
	assert_int_equal(w.entries, n);
	assert_true(w.sum[0] == (uint64_t)(percpu ? ncpu : 1) * n * (n - 1) / 2);
	assert_true(w.sum[1] == (uint64_t)(percpu ? ncpu : 1) * n);
	/* a visitor's non-zero answer stops the walk and is returned */
	assert_int_equal(bpf_map_walk(fd, stop_at_three, &stopped), n >= 3 ? 42 : 0);
	assert_int_equal(stopped, n >= 3 ? 3 : (int)n);
	k = n / 2;
	assert_int_equal(bpf_map_sum_u64(fd, &k, 2, sums), 0);
	assert_true(sums[0] == (uint64_t)(percpu ? ncpu : 1) * k);
	if (type != BPF_MAP_TYPE_ARRAY && type != BPF_MAP_TYPE_PERCPU_ARRAY) {
		k = n + 5;
		assert_int_equal(bpf_map_sum_u64(fd, &k, 2, sums), -ENOENT);
	}
	close(fd);
	free(value);
}

static void test_map_walks(void **state)
{
	/* more than one batch (256) and one less, for each shape of map */
	check_walk(BPF_MAP_TYPE_HASH, 1000);
	check_walk(BPF_MAP_TYPE_PERCPU_HASH, 1000);
	check_walk(BPF_MAP_TYPE_LRU_PERCPU_HASH, 255);
	check_walk(BPF_MAP_TYPE_PERCPU_ARRAY, 600);
	check_walk(BPF_MAP_TYPE_ARRAY, 1);
}

static void test_empty_map_walk(void **state)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "ksight_test", 4, 8, 16, NULL), n = 0;

	assert_true(fd >= 0);
	assert_int_equal(bpf_map_walk(fd, stop_at_three, &n), 0);
	assert_int_equal(n, 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_load_leaves_nothing),
		cmocka_unit_test(test_oversized_tables_are_refused),
		cmocka_unit_test(test_collectors_read_only_published_runtimes),
		cmocka_unit_test(test_loop_without_a_ring),
		cmocka_unit_test(test_map_walks),
		cmocka_unit_test(test_empty_map_walk),
	};

	libbpf_set_print(no_print);
	refused_oom = oom_signal;
	refused_oom.configure = refuse_ringbuf;
	collecting_oom = oom_signal;
	collecting_oom.collect = counting_collect;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
