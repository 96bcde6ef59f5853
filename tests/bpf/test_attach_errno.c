/*
 * An attach that fails and leaves errno 0 (libbpf's bpf_program__attach,
 * interposed here through dlsym(RTLD_NEXT) so the real one is used otherwise)
 * is a failure: the variant is attach_failed with a reason, never "attached"
 * with no link (root: loads the oom object on the real kernel).
 */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <bpf/libbpf.h>

#include "kernel_features.h"
#include "loader.h"

extern const struct signal_def oom_signal;

static bool fail_attach;

struct bpf_link *bpf_program__attach(const struct bpf_program *prog)
{
	static struct bpf_link *(*real)(const struct bpf_program *);

	if (fail_attach) {
		errno = 0;
		return NULL;
	}
	if (!real)
		real = (struct bpf_link * (*)(const struct bpf_program *))dlsym(RTLD_NEXT, "bpf_program__attach");
	return real(prog);
}

static int no_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

static void test_attach_failing_with_errno_zero(void **state)
{
	struct kernel_features kf;
	struct signal_runtime rt = { .def = &oom_signal };
	struct load_options lo = { .kf = &kf };
	size_t v;
	int failed = 0;

	assert_int_equal(kernel_features_open(&kf, NULL), 0);
	assert_int_equal(signal_load(&rt, &lo), 0);
	fail_attach = true;
	assert_int_equal(signal_attach(&rt, false), 0);
	fail_attach = false;
	assert_false(rt.running);
	assert_int_equal(rt.status[0].attached, -1);
	for (v = 0; v < oom_signal.points[0].n_variants; v++) {
		const struct variant_status *vs = &rt.status[0].variants[v];

		assert_int_not_equal(vs->state, VARIANT_ATTACHED);
		if (vs->state != VARIANT_ATTACH_FAILED)
			continue;
		failed++;
		assert_non_null(strstr(vs->reason, "cannot attach"));
		assert_null(strstr(vs->reason, "Success"));
	}
	assert_true(failed > 0);
	assert_non_null(strstr(rt.error, "no probe could be attached"));
	signal_unload(&rt);

	/* the same object attaches once libbpf does */
	assert_int_equal(signal_load(&rt, &lo), 0);
	assert_int_equal(signal_attach(&rt, false), 1);
	assert_true(rt.running);
	signal_unload(&rt);
	kernel_features_close(&kf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attach_failing_with_errno_zero),
	};

	libbpf_set_print(no_print);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
