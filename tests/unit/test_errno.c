/*
 * -errno that cannot be 0: a library call (libbpf's among them) may fail and
 * leave errno 0, and a 0 returned for it reads as success. neg_errno() (util.h)
 * is the one helper; kernel_features_open() is checked through it with a
 * btf__parse that fails that way (defined here, so the archive's calls reach it).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <bpf/btf.h>

#include "kernel_features.h"
#include "util.h"

/* libbpf's, interposed: fails and leaves errno 0 */
struct btf *btf__parse(const char *path, struct btf_ext **btf_ext)
{
	errno = 0;
	return NULL;
}

static void test_errno_zero_is_still_an_error(void **state)
{
	errno = 0;
	assert_true(neg_errno() < 0);
	errno = 0;
	assert_int_equal(neg_errno(), -EINVAL);
	errno = 0;
	assert_int_equal(neg_errno_or(ENOMEM), -ENOMEM);
}

static void test_errno_is_passed_on(void **state)
{
	errno = EPERM;
	assert_int_equal(neg_errno(), -EPERM);
	errno = ENOENT;
	assert_int_equal(neg_errno_or(ENOMEM), -ENOENT);
	/* a nonsense fallback still gives an error */
	errno = 0;
	assert_true(neg_errno_or(0) < 0);
}

static void test_kernel_btf_that_fails_with_errno_zero(void **state)
{
	struct kernel_features kf = { 0 };

	/* not mappable (no such file), then btf__parse above fails with errno 0 */
	assert_true(kernel_features_open(&kf, "/nonexistent/ksight-test-btf") < 0);
	assert_null(kf.ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errno_zero_is_still_an_error),
		cmocka_unit_test(test_errno_is_passed_on),
		cmocka_unit_test(test_kernel_btf_that_fails_with_errno_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
