/* bpf_prog_info's recursion_misses, whatever length of it the kernel filled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <linux/bpf.h>

#include "prog_misses.h"

#define END_OF_MISSES (offsetof(struct bpf_prog_info, recursion_misses) + sizeof(__u64))

static void test_full_info(void **state)
{
	struct bpf_prog_info info;

	memset(&info, 0, sizeof(info));
	info.recursion_misses = 42;
	assert_int_equal(prog_info_misses(&info, sizeof(info)), 42);
	assert_int_equal(prog_info_misses(&info, END_OF_MISSES), 42);
}

/* A kernel before 5.12 fills less: what lies beyond is not its answer (here: garbage), so 0. */
static void test_older_kernel(void **state)
{
	struct bpf_prog_info info;

	memset(&info, 0, sizeof(info));
	info.recursion_misses = 7;
	assert_int_equal(prog_info_misses(&info, END_OF_MISSES - 1), 0);
	assert_int_equal(prog_info_misses(&info, offsetof(struct bpf_prog_info, recursion_misses)), 0);
	assert_int_equal(prog_info_misses(&info, 0), 0);
}

static void test_bad_fd(void **state)
{
	uint64_t m = 99;

	assert_true(prog_misses(-1, &m) < 0);
	assert_int_equal(m, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_info),
		cmocka_unit_test(test_older_kernel),
		cmocka_unit_test(test_bad_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
