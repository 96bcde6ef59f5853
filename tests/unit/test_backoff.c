/* Unit tests for user/backoff.c and the jitter source in user/util.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"
#include "util.h"

static const struct backoff_policy policy = { .min_ms = 1000, .max_ms = 60000, .retry_after_max_s = 300 };

static void test_doubling_to_the_cap(void **state)
{
	static const long want[] = { 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000 };
	unsigned int i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(backoff_ms(&policy, i + 1, -1, 0), want[i]);
	assert_int_equal(backoff_ms(&policy, 0, -1, 0), 1000);
	assert_int_equal(backoff_ms(&policy, 64, -1, 0), 60000);
	assert_int_equal(backoff_ms(&policy, UINT32_MAX, -1, 0), 60000);
}

static void test_jitter_only_shortens(void **state)
{
	uint64_t rng = 1;
	unsigned int i;

	/* a quarter at most: 1000 % 251 is the largest cut at 1 s */
	assert_int_equal(backoff_ms(&policy, 1, -1, 250), 750);
	assert_int_equal(backoff_ms(&policy, 1, -1, 251), 1000);
	assert_int_equal(backoff_ms(&policy, 10, -1, 15000), 45000);
	for (i = 0; i < 10000; i++) {
		unsigned int failures = 1 + i % 9;
		long base = backoff_ms(&policy, failures, -1, 0);
		long d = backoff_ms(&policy, failures, -1, jitter_random(&rng));

		assert_true(d <= base && d >= base - base / 4);
	}
}

static void test_retry_after_is_a_bounded_floor(void **state)
{
	assert_int_equal(backoff_ms(&policy, 1, 120, 0), 120000);
	assert_int_equal(backoff_ms(&policy, 1, 300, 0), 300000);
	assert_int_equal(backoff_ms(&policy, 1, 3600, 0), 300000);
	assert_int_equal(backoff_ms(&policy, 1, 1000000000L, 0), 300000);
	assert_int_equal(backoff_ms(&policy, 1, 0, 0), 1000);
	assert_int_equal(backoff_ms(&policy, 7, 1, 0), 60000); /* the backoff is longer */
	assert_int_equal(backoff_ms(&policy, 1, 30, 999), 30000); /* jitter never goes below it */
}

static void test_jitter_random_never_sticks(void **state)
{
	uint64_t zero = 0, s = 42;
	uint32_t a = jitter_random(&s), b = jitter_random(&s);

	assert_int_not_equal(a, b);
	jitter_random(&zero); /* a zero state is replaced, not kept */
	assert_int_not_equal(zero, 0);
}

static void test_hash_fnv1a(void **state)
{
	/* the published FNV-1a 64 test vectors */
	assert_true(hash_fnv1a("", 0) == 0xcbf29ce484222325ULL);
	assert_true(hash_fnv1a("a", 1) == 0xaf63dc4c8601ec8cULL);
	assert_true(hash_fnv1a("foobar", 6) == 0x85944171f73967e8ULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doubling_to_the_cap),
		cmocka_unit_test(test_jitter_only_shortens),
		cmocka_unit_test(test_retry_after_is_a_bounded_floor),
		cmocka_unit_test(test_jitter_random_never_sticks),
		cmocka_unit_test(test_hash_fnv1a),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
