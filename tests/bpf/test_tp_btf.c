/*
 * tp_btf programs loaded against the kernel BTF the agent parsed once
 * (root, the real kernel): libbpf reads no kernel BTF of its own for them,
 * they attach, and with a BTF file given (--btf) the load still works.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/libbpf.h>

#include "kernel_features.h"
#include "loader.h"

extern const struct signal_def oom_signal;

static int kernel_btf_reads;

/* libbpf says "loading kernel BTF '...'" each time it parses one */
static int count_reads(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (strstr(fmt, "loading kernel BTF"))
		kernel_btf_reads++;
	return 0;
}

static void load_and_attach(const char *btf_path, int expect_reads)
{
	struct kernel_features kf;
	struct signal_runtime rt = { .def = &oom_signal };
	struct load_options lo = { .kf = &kf, .btf_path = btf_path, .preferred_only = true };
	const struct signal_def *defs[1] = { &oom_signal };
	char core[64];
	int fd;

	assert_int_equal(kernel_features_open(&kf, btf_path), 0);
	if (!kf.has_btf_tracepoint(kf.ctx, "mark_victim")) {
		kernel_features_close(&kf);
		skip();
	}
	/* CO-RE against the small copy, as the agent does: the whole BTF would be read for that */
	fd = signal_core_btf(defs, 1, kernel_features_btf(&kf), core, sizeof(core));
	assert_true(fd >= 0);
	lo.core_btf_path = core;
	kernel_btf_reads = 0;
	assert_int_equal(signal_load(&rt, &lo), 0);
	assert_int_equal(kernel_btf_reads, expect_reads);
	assert_int_equal(signal_attach(&rt, false), 1);
	assert_string_equal(oom_signal.points[0].variants[rt.status[0].attached].name, "tp_btf");
	signal_unload(&rt);
	close(fd);
	kernel_features_close(&kf);
}

static void test_tp_btf_loads_without_reading_the_kernel_btf_again(void **state)
{
	load_and_attach(NULL, 0);
}

/* another BTF file describes the types; the attach target is the running kernel's, read by the load */
static void test_tp_btf_with_a_btf_file(void **state)
{
	load_and_attach("/sys/kernel/btf/vmlinux", 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tp_btf_loads_without_reading_the_kernel_btf_again),
		cmocka_unit_test(test_tp_btf_with_a_btf_file),
	};

	if (geteuid() != 0) {
		printf("# skip: needs root\n");
		return 0;
	}
	libbpf_set_print(count_reads);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
