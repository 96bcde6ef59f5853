/*
 * apilat's bucket math (headers/apilat.h, shared with the kernel) and its
 * user-side parsing: seams on both sides of every bound, the x1.15 ratio,
 * and quantiles computed as Prometheus' histogram_quantile does them within
 * 15% of the exact ones for several distributions.
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

#include "apilat_signal.h"

#define LO APILAT_DEFAULT_LO_EXP
#define HI APILAT_DEFAULT_HI_EXP

/* ---- seams ---- */

static void check_seams(uint32_t lo, uint32_t hi)
{
	uint32_t n = apilat_n_finite(lo, hi), j;

	assert_int_equal(apilat_bucket(1, lo, hi), 0);
	assert_int_equal(apilat_bucket(0, lo, hi), 0);
	assert_int_equal(apilat_bucket(1ULL << lo, lo, hi), 0);
	for (j = 0; j < n; j++) {
		uint64_t up = apilat_bucket_upper_ns(j, lo);

		/* value <= upper edge: that bucket; one more: the next (the +Inf one after the last) */
		assert_int_equal(apilat_bucket(up, lo, hi), j);
		assert_int_equal(apilat_bucket(up + 1, lo, hi), j + 1);
		if (j > 0) {
			uint64_t prev = apilat_bucket_upper_ns(j - 1, lo);

			assert_true(up > prev);
			/* consecutive bounds at most x1.15 apart (x1.125 by construction) */
			assert_true((double)up / (double)prev <= 1.125 + 1e-12);
			assert_int_equal(apilat_bucket(prev + 1, lo, hi), j);
			assert_int_equal(apilat_bucket(prev + (up - prev + 1) / 2, lo, hi), j); /* mid-bucket */
		}
	}
	assert_int_equal(apilat_bucket_upper_ns(n - 1, lo), 1ULL << hi);
	assert_int_equal(apilat_bucket(1ULL << hi, lo, hi), n - 1);
	assert_int_equal(apilat_bucket((1ULL << hi) + 1, lo, hi), n);
	assert_int_equal(apilat_bucket(UINT64_MAX, lo, hi), n);
}

static void test_seams_default(void **state)
{
	check_seams(LO, HI);
	assert_int_equal(apilat_n_finite(LO, HI), 176);
	/* 2^13 ns * 9/8: the first bound is 9.216 us */
	assert_int_equal(apilat_bucket_upper_ns(0, LO), 9216);
}

static void test_seams_other_ranges(void **state)
{
	check_seams(APILAT_MIN_EXP, APILAT_MIN_EXP + 10);
	check_seams(10, 10 + APILAT_MAX_OCTAVES);
	check_seams(20, 21);
	check_seams(16, 40);
}

static void test_fls64(void **state)
{
	int i;

	for (i = 0; i < 64; i++) {
		assert_int_equal(apilat_fls64(1ULL << i), i);
		if (i > 1)
			assert_int_equal(apilat_fls64((1ULL << i) - 1), i - 1);
	}
	assert_int_equal(apilat_fls64(UINT64_MAX), 63);
	/* every value's highest bit, against the compiler's, over a spread of patterns */
	for (i = 0; i < 64; i++) {
		uint64_t top = 1ULL << i, x;

		for (x = 0; x < 64; x++) {
			uint64_t v = top | ((x * 0x9e3779b97f4a7c15ULL) & (top - 1));

			assert_int_equal(apilat_fls64(v), 63 - __builtin_clzll(v));
		}
	}
}

static void test_bounds_seconds(void **state)
{
	double b[APILAT_MAX_BUCKETS];
	size_t n = apilat_bounds_seconds(LO, HI, b, APILAT_MAX_BUCKETS), j;

	assert_int_equal(n, 176);
	assert_true(b[0] > 9.2159e-6 && b[0] < 9.2161e-6);
	assert_true(b[n - 1] > 34.359 && b[n - 1] < 34.360); /* 2^35 ns */
	for (j = 1; j < n; j++)
		assert_true(b[j] > b[j - 1]);
	assert_int_equal(apilat_bounds_seconds(LO, HI, b, 10), 10);
}

/* ---- histogram_quantile as Prometheus computes it ---- */

/*
 * counts: per bucket, n_finite + 1 (+Inf last); bounds: finite upper bounds.
 * The rank q*total falls in the first bucket whose cumulative count reaches
 * it; the answer is interpolated linearly between that bucket's lower bound
 * (the previous bound; 0 for the first bucket) and its upper one; in +Inf
 * it is the last finite bound.
 */
static double histogram_quantile(double q, const uint64_t *counts, const double *bounds, size_t n_finite)
{
	double total = 0, cum = 0, rank, lower;
	size_t b;

	for (b = 0; b <= n_finite; b++)
		total += (double)counts[b];
	if (total == 0)
		return -1;
	rank = q * total;
	for (b = 0; b <= n_finite; b++) {
		if (cum + (double)counts[b] >= rank)
			break;
		cum += (double)counts[b];
	}
	if (b >= n_finite)
		return bounds[n_finite - 1];
	lower = b ? bounds[b - 1] : 0;
	return lower + (bounds[b] - lower) * ((rank - cum) / (double)counts[b]);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static double uniform(void) /* (0, 1] */
{
	return ((double)(rng() >> 11) + 1) / 9007199254740992.0;
}

enum dist { UNIFORM_2MS, NARROW_20MS, LOGNORMAL, HEAVY_TAIL, BIMODAL, POINT_AT_SEAM, SWEEP, DIST_NR };

static uint64_t sample(enum dist d, size_t i)
{
	double x = 1, f;
	int k;

	switch (d) {
	case UNIFORM_2MS:
		return 1000000 + (uint64_t)(uniform() * 2e6);
	case NARROW_20MS: /* a fixed server delay with a little jitter */
		return 20000000 + (uint64_t)(uniform() * 300e3);
	case LOGNORMAL: /* a product of factors: normal in log space, no libm needed */
		for (k = 0; k < 12; k++)
			x *= 0.5 + 1.5 * uniform();
		return (uint64_t)(5e6 * x);
	case HEAVY_TAIL: /* Pareto-like: 1/u */
		f = 1 / uniform();
		if (f > 1e4)
			f = 1e4;
		return (uint64_t)(200e3 * f);
	case BIMODAL: /* cache hits and LISTs */
		return (i % 10) < 9 ? 2000000 + (uint64_t)(uniform() * 1e5) : 200000000 + (uint64_t)(uniform() * 5e6);
	case POINT_AT_SEAM: /* every value exactly on a bound: the worst place for interpolation */
		return apilat_bucket_upper_ns(80, LO);
	case SWEEP: /* geometric over five decades */
		x = 20e3;
		for (k = 0; k < (int)(i % 100); k++)
			x *= 1.122;
		return (uint64_t)x;
	default:
		return 0;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_quantiles_within_15_percent(void **state)
{
	static const double qs[] = { 0.5, 0.9, 0.99, 0.999 };
	enum { N_SAMPLES = 20000 };
	static uint64_t values[N_SAMPLES];
	double bounds[APILAT_MAX_BUCKETS];
	size_t n_finite = apilat_bounds_seconds(LO, HI, bounds, APILAT_MAX_BUCKETS);
	int d;

	for (d = 0; d < DIST_NR; d++) {
		uint64_t counts[APILAT_MAX_BUCKETS] = { 0 };
		size_t i, q;

		for (i = 0; i < N_SAMPLES; i++) {
			values[i] = sample((enum dist)d, i);
			counts[apilat_bucket(values[i], LO, HI)]++;
		}
		qsort(values, N_SAMPLES, sizeof(values[0]), cmp_u64);
		for (q = 0; q < sizeof(qs) / sizeof(qs[0]); q++) {
			size_t rank = (size_t)(qs[q] * N_SAMPLES + 0.999999);
			double truth = (double)values[rank ? rank - 1 : 0] / 1e9;
			double est = histogram_quantile(qs[q], counts, bounds, n_finite);
			double err = est > truth ? (est - truth) / truth : (truth - est) / truth;

			if (err > 0.15)
				fail_msg("distribution %d q=%g: histogram_quantile %.9f s, exact %.9f s: error %.1f%%", d,
					 qs[q], est, truth, err * 100);
		}
	}
}

/* The check can fail: ×2 buckets (a log2 histogram) are off by much more than 15%. */
static void test_quantile_check_catches_coarse_buckets(void **state)
{
	double bounds[40];
	uint64_t counts[41] = { 0 };
	size_t i;
	double est;

	for (i = 0; i < 40; i++)
		bounds[i] = (double)(1ULL << i) / 1e9;
	/* 1000 samples at 1.1 ms: a log2 histogram puts them in (1.048576, 2.097152] ms */
	counts[21] = 1000;
	est = histogram_quantile(0.5, counts, bounds, 40);
	assert_true((est - 1.1e-3) / 1.1e-3 > 0.15);
}

/* ---- endpoints ---- */

static void test_parse_endpoint(void **state)
{
	struct apilat_endpoint ep;
	static const uint8_t v4[16] = { [10] = 0xff, [11] = 0xff, [12] = 10, [13] = 96, [14] = 0, [15] = 1 };
	static const uint8_t v6[16] = { [15] = 1 };

	assert_int_equal(apilat_parse_endpoint("10.96.0.1:443", &ep), 0);
	assert_memory_equal(ep.addr, v4, 16);
	assert_int_equal(ep.port, 443);
	assert_int_equal(ep.pad, 0);
	assert_int_equal(apilat_parse_endpoint("[::1]:6443", &ep), 0);
	assert_memory_equal(ep.addr, v6, 16);
	assert_int_equal(ep.port, 6443);
	assert_int_equal(apilat_parse_endpoint("[fd00::10:96:0:1]:443", &ep), 0);
	assert_int_equal(ep.addr[0], 0xfd);

	assert_int_equal(apilat_parse_endpoint("::1:443", &ep), -EINVAL);       /* v6 needs brackets */
	assert_int_equal(apilat_parse_endpoint("[10.0.0.1]:443", &ep), -EINVAL); /* brackets: v6 only */
	assert_int_equal(apilat_parse_endpoint("10.0.0.1", &ep), -EINVAL);
	assert_int_equal(apilat_parse_endpoint("10.0.0.1:", &ep), -EINVAL);
	assert_int_equal(apilat_parse_endpoint("10.0.0.1:0", &ep), -EINVAL);
	assert_int_equal(apilat_parse_endpoint("10.0.0.1:65536", &ep), -EINVAL);
	assert_int_equal(apilat_parse_endpoint("10.0.0.1:-1", &ep), -EINVAL);
	assert_int_equal(apilat_parse_endpoint("10.0.0.1:44x", &ep), -EINVAL);
	assert_int_equal(apilat_parse_endpoint("kubernetes:443", &ep), -EINVAL);
	assert_int_equal(apilat_parse_endpoint(":443", &ep), -EINVAL);
	assert_int_equal(apilat_parse_endpoint("[::1]443", &ep), -EINVAL);
	assert_int_equal(apilat_parse_endpoint("[::1:443", &ep), -EINVAL);
	assert_int_equal(apilat_parse_endpoint(NULL, &ep), -EINVAL);
}

static void test_endpoint_from_env_form(void **state)
{
	struct apilat_endpoint a, b;

	/* KUBERNETES_SERVICE_HOST holds an IPv6 address without brackets */
	assert_int_equal(apilat_endpoint_from("fd00::1", "443", &a), 0);
	assert_int_equal(apilat_parse_endpoint("[fd00::1]:443", &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(apilat_endpoint_from("10.96.0.1", "443", &a), 0);
	assert_int_equal(apilat_parse_endpoint("10.96.0.1:443", &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(apilat_endpoint_from("10.96.0.1", "https", &a), -EINVAL);
	assert_int_equal(apilat_endpoint_from(NULL, "443", &a), -EINVAL);
}

static void test_parse_range(void **state)
{
	uint32_t lo = 0, hi = 0;

	assert_int_equal(apilat_parse_range("10:30", &lo, &hi), 0);
	assert_int_equal(lo, 10);
	assert_int_equal(hi, 30);
	assert_int_equal(apilat_parse_range("2:20", &lo, &hi), -EINVAL);  /* below APILAT_MIN_EXP */
	assert_int_equal(apilat_parse_range("10:10", &lo, &hi), -EINVAL);
	assert_int_equal(apilat_parse_range("10:35", &lo, &hi), -EINVAL); /* 25 octaves */
	assert_int_equal(apilat_parse_range("20:41", &lo, &hi), -EINVAL);
	assert_int_equal(apilat_parse_range("10-30", &lo, &hi), -EINVAL);
	assert_int_equal(apilat_parse_range("10:", &lo, &hi), -EINVAL);
	assert_int_equal(apilat_parse_range("", &lo, &hi), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fls64),
		cmocka_unit_test(test_seams_default),
		cmocka_unit_test(test_seams_other_ranges),
		cmocka_unit_test(test_bounds_seconds),
		cmocka_unit_test(test_quantiles_within_15_percent),
		cmocka_unit_test(test_quantile_check_catches_coarse_buckets),
		cmocka_unit_test(test_parse_endpoint),
		cmocka_unit_test(test_endpoint_from_env_form),
		cmocka_unit_test(test_parse_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
