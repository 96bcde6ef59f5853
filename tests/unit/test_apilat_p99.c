/*
 * apilat's slow-response verdict: histogram_quantile over apilat's buckets
 * (interpolation, the first and +Inf buckets, accuracy), the sliding
 * window made of cumulative snapshots, the minimum of responses, once per
 * window, a histogram that shrank, and clients that go away.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apilat_p99.h"

#define LO APILAT_DEFAULT_LO_EXP
#define HI APILAT_DEFAULT_HI_EXP
#define NS_PER_MS 1000000ULL
#define NS_PER_S  1000000000ULL

/* no libm in the unit tests' link */
static double fabsd(double x)
{
	return x < 0 ? -x : x;
}

/* ---- histogram_quantile ---- */

static void test_quantile_small_layout(void **state)
{
	/* lo 3, hi 5: bounds 9..16 (step 1), then 18..32 (step 2); counts[16] is +Inf */
	uint64_t c[17] = { 0 };
	double q;

	(void)state;
	assert_int_equal(apilat_quantile_ns(c, 16, 3, 0.5, &q), -ENODATA);
	c[0] = 10;
	assert_int_equal(apilat_quantile_ns(c, 16, 3, 0.5, &q), 0);
	assert_true(fabsd(q - 4.5) < 1e-9); /* from 0 to the first bound, 9 */
	c[0] = 0;
	c[8] = 10; /* (16, 18] */
	assert_int_equal(apilat_quantile_ns(c, 16, 3, 0.5, &q), 0);
	assert_true(fabsd(q - 17.0) < 1e-9);
	assert_int_equal(apilat_quantile_ns(c, 16, 3, 1.0, &q), 0);
	assert_true(fabsd(q - 18.0) < 1e-9);
	/* 10 in (16, 18], 10 in (30, 32]: the median is the first bucket's top, p99 near 32 */
	c[15] = 10;
	assert_int_equal(apilat_quantile_ns(c, 16, 3, 0.5, &q), 0);
	assert_true(fabsd(q - 18.0) < 1e-9);
	assert_int_equal(apilat_quantile_ns(c, 16, 3, 0.99, &q), 0);
	assert_true(fabsd(q - (30.0 + 2.0 * 9.8 / 10.0)) < 1e-9);
	/* only +Inf: the highest finite bound, as Prometheus answers */
	memset(c, 0, sizeof(c));
	c[16] = 3;
	assert_int_equal(apilat_quantile_ns(c, 16, 3, 0.99, &q), 0);
	assert_true(fabsd(q - 32.0) < 1e-9);
	assert_int_equal(apilat_quantile_ns(c, 16, 3, 1.5, &q), -EINVAL);
	assert_int_equal(apilat_quantile_ns(c, 16, 3, -0.1, &q), -EINVAL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_quantile_accuracy(void **state)
{
	static uint64_t c[APILAT_MAX_BUCKETS], v[5000];
	size_t n_finite = apilat_n_finite(LO, HI), i, d;
	double got, want;

	(void)state;
	for (d = 0; d < 3; d++) {
		memset(c, 0, sizeof(c));
		srand(7 + (unsigned)d);
		for (i = 0; i < 5000; i++) {
			double u = (rand() + 1.0) / ((double)RAND_MAX + 2.0);

			/* uniform 1..300 ms, skewed (1 ms + u^3 x 500 ms), bimodal 2 ms / 200 ms */
			v[i] = d == 0 ? (uint64_t)(1e6 + u * 299e6) :
			       d == 1 ? (uint64_t)(1e6 + u * u * u * 500e6) :
			       (i % 50 ? 2 * NS_PER_MS : 200 * NS_PER_MS) + (uint64_t)(u * 1e5);
			c[apilat_bucket(v[i], LO, HI)]++;
		}
		qsort(v, 5000, sizeof(v[0]), cmp_u64);
		want = (double)v[(size_t)(0.99 * 5000) - 1];
		assert_int_equal(apilat_quantile_ns(c, n_finite, LO, 0.99, &got), 0);
		assert_true(fabsd(got - want) / want <= 0.15);
	}
}

/* ---- the window ---- */

struct client {
	uint64_t cum[APILAT_MAX_BUCKETS];
};

static void add(struct client *c, uint64_t ns, uint64_t count)
{
	c->cum[apilat_bucket(ns, LO, HI)] += count;
}

static struct apilat_p99 *tracker(uint64_t window_s, uint64_t min)
{
	struct apilat_p99_config cfg = { .threshold_ns = 100 * NS_PER_MS, .window_ns = window_s * NS_PER_S,
					 .min_responses = min, .lo_exp = LO, .hi_exp = HI };
	struct apilat_p99 *t = apilat_p99_new(&cfg);

	assert_non_null(t);
	return t;
}

static void test_window_fires_once_per_window(void **state)
{
	struct apilat_p99 *t = tracker(6, 0);
	struct apilat_p99_verdict v;
	struct client c = { 0 };
	uint64_t tick, now;
	int fired = 0;

	(void)state;
	assert_int_equal(apilat_p99_tick_ns(t), NS_PER_S);
	/* six seconds of fast responses: the window fills, nothing to say */
	for (tick = 0; tick <= 6; tick++) {
		add(&c, 2 * NS_PER_MS, 10);
		assert_int_equal(apilat_p99_observe(t, "shop/cart-1/cart", c.cum, tick * NS_PER_S, &v), 0);
	}
	assert_int_equal(v.responses, 60);
	assert_true(v.p99_ns < 3.0 * NS_PER_MS);
	/* then a tenth of them take 200 ms: 1 of the window's 60, rank 59.4 falls in its bucket */
	add(&c, 2 * NS_PER_MS, 9);
	add(&c, 200 * NS_PER_MS, 1);
	assert_int_equal(apilat_p99_observe(t, "shop/cart-1/cart", c.cum, 7 * NS_PER_S, &v), 1);
	assert_int_equal(v.responses, 60);
	assert_true(v.p99_ns > 175.0 * NS_PER_MS && v.p99_ns <= 200.0 * NS_PER_MS);
	/* it stays so: once per window, not at every tick */
	for (tick = 8; tick <= 20; tick++) {
		add(&c, 2 * NS_PER_MS, 9);
		add(&c, 200 * NS_PER_MS, 1);
		now = tick * NS_PER_S;
		if (apilat_p99_observe(t, "shop/cart-1/cart", c.cum, now, &v) == 1) {
			fired++;
			assert_true(tick == 13 || tick == 19);
		}
	}
	assert_int_equal(fired, 2);
	/* the slow ones stop: once they are out of the window, nothing more */
	for (tick = 21; tick <= 40; tick++) {
		add(&c, 2 * NS_PER_MS, 10);
		if (apilat_p99_observe(t, "shop/cart-1/cart", c.cum, tick * NS_PER_S, &v) == 1)
			assert_true(tick < 27);
	}
	assert_true(v.p99_ns < 3.0 * NS_PER_MS);
	apilat_p99_free(t);
}

static void test_window_needs_a_full_window(void **state)
{
	struct apilat_p99 *t = tracker(6, 0);
	struct apilat_p99_verdict v;
	struct client c = { 0 };
	uint64_t tick;

	(void)state;
	/* slow from the start: silent until a whole window has been seen */
	for (tick = 0; tick < 6; tick++) {
		add(&c, 500 * NS_PER_MS, 10);
		assert_int_equal(apilat_p99_observe(t, "kubelet", c.cum, tick * NS_PER_S, &v), 0);
		assert_int_equal(v.responses, 0);
	}
	add(&c, 500 * NS_PER_MS, 10);
	assert_int_equal(apilat_p99_observe(t, "kubelet", c.cum, 6 * NS_PER_S, &v), 1);
	/* inside the bucket of 500 ms, (469.8, 503.3] ms */
	assert_true(v.p99_ns > 469.0 * NS_PER_MS && v.p99_ns <= 503.4 * NS_PER_MS);
	apilat_p99_free(t);
}

static void test_window_min_responses(void **state)
{
	struct apilat_p99 *t = tracker(6, 0);
	struct apilat_p99_verdict v;
	struct client c = { 0 };
	uint64_t tick;

	(void)state;
	/* 3 slow responses a window: "p99" would be the slowest of three */
	for (tick = 0; tick <= 30; tick++) {
		if (tick % 2 == 0)
			add(&c, 900 * NS_PER_MS, 1);
		assert_int_equal(apilat_p99_observe(t, "kube-proxy", c.cum, tick * NS_PER_S, &v), 0);
	}
	assert_true(v.responses >= 3 && v.responses <= 4);
	assert_true(v.p99_ns > 100.0 * NS_PER_MS);
	apilat_p99_free(t);
	/* the same with a minimum of 3: it fires */
	t = tracker(6, 3);
	memset(&c, 0, sizeof(c));
	for (tick = 0; tick <= 7; tick++) {
		add(&c, 900 * NS_PER_MS, 1);
		if (apilat_p99_observe(t, "kube-proxy", c.cum, tick * NS_PER_S, &v) == 1)
			break;
	}
	assert_int_equal(tick, 6);
	apilat_p99_free(t);
}

static void test_window_shrunk_and_gone(void **state)
{
	struct apilat_p99 *t = tracker(6, 0);
	struct apilat_p99_verdict v;
	struct client a = { 0 }, b = { 0 };
	uint64_t tick;

	(void)state;
	for (tick = 0; tick <= 5; tick++) {
		add(&a, 300 * NS_PER_MS, 10);
		add(&b, 1 * NS_PER_MS, 10);
		assert_int_equal(apilat_p99_observe(t, "a", a.cum, tick * NS_PER_S, &v), 0);
		assert_int_equal(apilat_p99_observe(t, "b", b.cum, tick * NS_PER_S, &v), 0);
		apilat_p99_sweep(t, tick * NS_PER_S);
	}
	assert_int_equal(apilat_p99_clients(t), 2);
	/* a's histogram was made again from zero: its window starts over */
	memset(&a, 0, sizeof(a));
	add(&a, 300 * NS_PER_MS, 10);
	assert_int_equal(apilat_p99_observe(t, "a", a.cum, 6 * NS_PER_S, &v), 0);
	assert_int_equal(v.responses, 0);
	/* b is not seen at this tick: forgotten */
	apilat_p99_sweep(t, 6 * NS_PER_S);
	assert_int_equal(apilat_p99_clients(t), 1);
	for (tick = 7; tick <= 11; tick++) {
		add(&a, 300 * NS_PER_MS, 10);
		assert_int_equal(apilat_p99_observe(t, "a", a.cum, tick * NS_PER_S, &v), 0);
	}
	add(&a, 300 * NS_PER_MS, 10);
	assert_int_equal(apilat_p99_observe(t, "a", a.cum, 12 * NS_PER_S, &v), 1);
	assert_int_equal(v.responses, 60);
	apilat_p99_free(t);
}

static void test_config(void **state)
{
	struct apilat_p99_config cfg = { .threshold_ns = 0, .window_ns = NS_PER_S, .lo_exp = LO, .hi_exp = HI };

	(void)state;
	assert_null(apilat_p99_new(&cfg));
	cfg.threshold_ns = 1;
	cfg.window_ns = 2;
	assert_null(apilat_p99_new(&cfg));
	cfg.window_ns = NS_PER_S;
	cfg.hi_exp = LO;
	assert_null(apilat_p99_new(&cfg));
	apilat_p99_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quantile_small_layout),
		cmocka_unit_test(test_quantile_accuracy),
		cmocka_unit_test(test_window_fires_once_per_window),
		cmocka_unit_test(test_window_needs_a_full_window),
		cmocka_unit_test(test_window_min_responses),
		cmocka_unit_test(test_window_shrunk_and_gone),
		cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
