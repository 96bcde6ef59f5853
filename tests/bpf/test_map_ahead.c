/*
 * Maps made ahead of a load (root, the real kernel): the load takes the ones
 * that match its definition, libbpf makes the one a configure resized, and
 * what no load took is closed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kernel_features.h"
#include "loader.h"
#include "map_ahead.h"

extern const struct signal_def oom_signal;
extern const struct signal_def fserr_signal;

static int no_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

static struct bpf_map_info info_of(const struct signal_runtime *rt, const char *map)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	struct bpf_map *m = bpf_object__find_map_by_name(rt->obj, map);

	assert_non_null(m);
	assert_int_equal(bpf_obj_get_info_by_fd(bpf_map__fd(m), &info, &len), 0);
	return info;
}

/* How many BPF maps this process holds open (fdinfo says map_type). */
static int maps_open(void)
{
	char path[64], line[128];
	int fd, n = 0;

	for (fd = 0; fd < 1024; fd++) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "map_type:", 9))
				n++;
		fclose(f);
	}
	return n;
}

static void test_a_load_takes_the_maps_made_ahead(void **state)
{
	const struct signal_def *defs[2] = { &oom_signal, &fserr_signal };
	struct kernel_features kf;
	struct signal_runtime rt = { .def = &oom_signal };
	struct load_options lo = { .kf = &kf, .preferred_only = true };
	struct bpf_map_info pending, stats;
	int before = maps_open();

	assert_int_equal(kernel_features_open(&kf, NULL), 0);
	assert_int_equal(maps_ahead_start(defs, 2, NULL), 0);
	assert_int_equal(signal_load(&rt, &lo), 0);
	/* made ahead: without BTF; libbpf's own carry the object's */
	pending = info_of(&rt, "oom_pending");
	assert_int_equal(pending.btf_id, 0);
	stats = info_of(&rt, "ksight_ringbuf_stats");
	assert_int_equal(stats.btf_id, 0);
	assert_int_equal(signal_attach(&rt, false), 1);
	/* fserr's were never taken: closed, nothing left but oom's object */
	maps_ahead_finish();
	signal_unload(&rt);
	assert_int_equal(maps_open(), before);
	kernel_features_close(&kf);
}

/* oom's configure resizes oom_pending: the one made ahead does not fit, libbpf makes it */
static void test_a_resized_map_is_made_by_libbpf(void **state)
{
	const struct signal_def *defs[1] = { &oom_signal };
	struct kernel_features kf;
	struct signal_runtime rt = { .def = &oom_signal };
	struct load_options lo = { .kf = &kf, .preferred_only = true };
	struct bpf_map_info pending, stats;

	assert_int_equal(kernel_features_open(&kf, NULL), 0);
	assert_int_equal(maps_ahead_start(defs, 1, NULL), 0);
	setenv("KSIGHT_TEST_OOM_PENDING_MAX", "77", 1);
	assert_int_equal(signal_load(&rt, &lo), 0);
	unsetenv("KSIGHT_TEST_OOM_PENDING_MAX");
	pending = info_of(&rt, "oom_pending");
	assert_int_equal(pending.max_entries, 77);
	assert_int_not_equal(pending.btf_id, 0);
	stats = info_of(&rt, "ksight_ringbuf_stats");
	assert_int_equal(stats.btf_id, 0);
	maps_ahead_finish();
	signal_unload(&rt);
	kernel_features_close(&kf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_load_takes_the_maps_made_ahead),
		cmocka_unit_test(test_a_resized_map_is_made_by_libbpf),
	};

	if (geteuid() != 0) {
		printf("# skip: needs root\n");
		return 0;
	}
	libbpf_set_print(no_print);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
