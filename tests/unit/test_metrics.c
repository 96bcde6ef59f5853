/*
 * Unit tests for the metrics registry and its Prometheus text exposition,
 * and for the process_* collector. Expected output is compared whole.
 */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "metrics.h"
#include "process_metrics.h"

#define DROPPED_HEAD								\
	"# HELP ksight_series_dropped_total Label sets folded into an "	\
	"\"other\" series because a family reached its series cap.\n"		\
	"# TYPE ksight_series_dropped_total counter\n"
#define DROPPED(n) DROPPED_HEAD "ksight_series_dropped_total " #n "\n"

static const char *const L_A[] = { "a" };

/* Render `reg` into a fresh string the caller frees. */
static char *render(struct metrics_registry *reg)
{
	struct strbuf sb = STRBUF_INIT;

	assert_int_equal(metrics_render(reg, &sb), 0);
	assert_non_null(sb.buf);
	return sb.buf;
}

static void assert_render(struct metrics_registry *reg, const char *want)
{
	char *got = render(reg);

	assert_string_equal(got, want);
	free(got);
}

/* The value text of the first sample line starting with `prefix` (static buffer). */
static const char *sample_value(const char *text, const char *prefix)
{
	static char val[64];
	size_t plen = strlen(prefix);
	const char *line = text;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		if (len > plen && !strncmp(line, prefix, plen) && line[plen] == ' ') {
			size_t vlen = len - plen - 1;

			assert_true(vlen < sizeof(val));
			memcpy(val, line + plen + 1, vlen);
			val[vlen] = '\0';
			return val;
		}
		line = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_help_escaping(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);

	assert_non_null(metrics_family(reg, "m", "back\\slash\nnew \"quoted\" \xc3\xbc\xe2\x9c\x93",
				       METRIC_GAUGE, NULL, 0, NULL, 0));
	assert_render(reg,
		      "# HELP m back\\\\slash\\nnew \"quoted\" \xc3\xbc\xe2\x9c\x93\n"
		      "# TYPE m gauge\n"
		      DROPPED(0));
	metrics_registry_free(reg);
}

static void test_label_escaping(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	const char *const names[] = { "path", "utf8" };
	const char *const v1[] = { "a\\b\"c\nd", "\xc3\xbc\xe2\x9c\x93" };
	struct metric_family *f;

	f = metrics_family(reg, "m_total", "h", METRIC_COUNTER, names, 2, NULL, 0);
	assert_non_null(f);
	assert_int_equal(metrics_counter_add(f, v1, 2), 0);
	assert_render(reg,
		      "# HELP m_total h\n"
		      "# TYPE m_total counter\n"
		      "m_total{path=\"a\\\\b\\\"c\\nd\",utf8=\"\xc3\xbc\xe2\x9c\x93\"} 2\n"
		      DROPPED(0));
	metrics_registry_free(reg);
}

/* Label values are kernel bytes (cgroup names, comm): invalid UTF-8 must not reach the output. */
static void test_label_invalid_utf8(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	const char *const names[] = { "v" };
	/* a stray byte, a truncated sequence, an overlong '/', a surrogate, 4-byte emoji kept */
	const char *const v1[] = { "a\xff" "b\xc3" "|\xc0\xaf|\xed\xa0\x80|\xf0\x9f\x98\x80" };
	struct metric_family *f;

	f = metrics_family(reg, "m_total", "h", METRIC_COUNTER, names, 1, NULL, 0);
	assert_non_null(f);
	assert_int_equal(metrics_counter_add(f, v1, 1), 0);
	assert_render(reg,
		      "# HELP m_total h\n"
		      "# TYPE m_total counter\n"
		      "m_total{v=\"a\xef\xbf\xbd" "b\xef\xbf\xbd" "|\xef\xbf\xbd\xef\xbf\xbd|"
		      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xf0\x9f\x98\x80\"} 1\n"
		      DROPPED(0));
	metrics_registry_free(reg);

	/* values that differ only in invalid bytes are one series, never two identical lines */
	reg = metrics_registry_new(0);
	f = metrics_family(reg, "m_total", "h", METRIC_COUNTER, names, 1, NULL, 0);
	assert_int_equal(metrics_counter_add(f, (const char *const[]){ "caf\xe9" }, 1), 0);
	assert_int_equal(metrics_counter_add(f, (const char *const[]){ "caf\xe8" }, 1), 0);
	assert_render(reg,
		      "# HELP m_total h\n"
		      "# TYPE m_total counter\n"
		      "m_total{v=\"caf\xef\xbf\xbd\"} 2\n"
		      DROPPED(0));
	metrics_registry_free(reg);
}

static void test_counter_gauge_render(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	const char *const names[] = { "pod", "container" };
	const char *const a[] = { "web", "nginx" };
	const char *const b[] = { "db", NULL };
	struct metric_family *c, *g;

	c = metrics_family(reg, "ksight_events_total", "Events seen.", METRIC_COUNTER,
			   names, 2, NULL, 0);
	g = metrics_family(reg, "ksight_temperature", "A gauge.", METRIC_GAUGE, NULL, 0, NULL, 0);
	assert_non_null(c);
	assert_non_null(g);
	assert_int_equal(metrics_counter_add(c, a, 1), 0);
	assert_int_equal(metrics_counter_add(c, a, 2), 0);
	assert_int_equal(metrics_counter_add(c, b, 0.25), 0);
	assert_int_equal(metrics_gauge_set(g, NULL, 5), 0);
	assert_int_equal(metrics_gauge_set(g, NULL, -1.5), 0);
	assert_render(reg,
		      "# HELP ksight_events_total Events seen.\n"
		      "# TYPE ksight_events_total counter\n"
		      "ksight_events_total{pod=\"db\",container=\"\"} 0.25\n"
		      "ksight_events_total{pod=\"web\",container=\"nginx\"} 3\n"
		      "# HELP ksight_temperature A gauge.\n"
		      "# TYPE ksight_temperature gauge\n"
		      "ksight_temperature -1.5\n"
		      DROPPED(0));
	metrics_registry_free(reg);
}

static void test_sample_ordering(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	const char *const names[] = { "x", "y" };
	const char *const vals[][2] = {
		{ "b", "a" }, { "ab", "a" }, { "a", "z" }, { "a", "b" },
		{ "", "q" }, { "B", "a" }, { "a", "" },
	};
	struct metric_family *f;
	size_t i;

	f = metrics_family(reg, "m", "h", METRIC_GAUGE, names, 2, NULL, 0);
	assert_non_null(f);
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		assert_int_equal(metrics_gauge_set(f, vals[i], (double)i), 0);
	/* lexicographic on the tuple, bytewise: "a" < "ab", "B" < "a" */
	assert_render(reg,
		      "# HELP m h\n"
		      "# TYPE m gauge\n"
		      "m{x=\"\",y=\"q\"} 4\n"
		      "m{x=\"B\",y=\"a\"} 5\n"
		      "m{x=\"a\",y=\"\"} 6\n"
		      "m{x=\"a\",y=\"b\"} 3\n"
		      "m{x=\"a\",y=\"z\"} 2\n"
		      "m{x=\"ab\",y=\"a\"} 1\n"
		      "m{x=\"b\",y=\"a\"} 0\n"
		      DROPPED(0));
	/* a later insertion re-sorts */
	assert_int_equal(metrics_gauge_set(f, (const char *const[]){ "aa", "a" }, 7), 0);
	{
		char *out = render(reg);

		assert_non_null(strstr(out, "m{x=\"a\",y=\"z\"} 2\nm{x=\"aa\",y=\"a\"} 7\n"
					    "m{x=\"ab\",y=\"a\"} 1\n"));
		free(out);
	}
	metrics_registry_free(reg);
}

static void test_empty_families(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	const double b[] = { 1 };

	assert_non_null(metrics_family(reg, "c_total", "C.", METRIC_COUNTER, L_A, 1, NULL, 0));
	assert_non_null(metrics_family(reg, "g", "", METRIC_GAUGE, NULL, 0, NULL, 0));
	assert_non_null(metrics_family(reg, "h", "H.", METRIC_HISTOGRAM, L_A, 1, b, 1));
	assert_render(reg,
		      "# HELP c_total C.\n# TYPE c_total counter\n"
		      "# HELP g \n# TYPE g gauge\n"
		      "# HELP h H.\n# TYPE h histogram\n"
		      DROPPED(0));
	metrics_registry_free(reg);

	reg = metrics_registry_new(0);
	assert_render(reg, DROPPED(0));
	metrics_registry_free(reg);
}

static void test_histogram_render(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	const double bounds[] = { 0.005, 1, 2.5 };
	const char *const names[] = { "op" };
	const char *const rd[] = { "read" };
	struct metric_family *h, *n;

	h = metrics_family(reg, "lat_seconds", "Latency.", METRIC_HISTOGRAM, names, 1, bounds, 3);
	n = metrics_family(reg, "bare", "No labels, no buckets.", METRIC_HISTOGRAM,
			   NULL, 0, NULL, 0);
	assert_non_null(h);
	assert_non_null(n);
	assert_int_equal(metrics_histogram_observe(h, rd, 0.001), 0);
	assert_int_equal(metrics_histogram_observe(h, rd, 2), 0);
	assert_int_equal(metrics_histogram_observe(h, rd, 100), 0);
	assert_int_equal(metrics_histogram_observe(n, NULL, 3), 0);
	assert_render(reg,
		      "# HELP lat_seconds Latency.\n"
		      "# TYPE lat_seconds histogram\n"
		      "lat_seconds_bucket{op=\"read\",le=\"0.005\"} 1\n"
		      "lat_seconds_bucket{op=\"read\",le=\"1\"} 1\n"
		      "lat_seconds_bucket{op=\"read\",le=\"2.5\"} 2\n"
		      "lat_seconds_bucket{op=\"read\",le=\"+Inf\"} 3\n"
		      "lat_seconds_sum{op=\"read\"} 102.001\n"
		      "lat_seconds_count{op=\"read\"} 3\n"
		      "# HELP bare No labels, no buckets.\n"
		      "# TYPE bare histogram\n"
		      "bare_bucket{le=\"+Inf\"} 1\n"
		      "bare_sum 3\n"
		      "bare_count 1\n"
		      DROPPED(0));
	metrics_registry_free(reg);
}

static void test_histogram_seams(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	const double bounds[] = { 1, 2, 4, 8 };
	const double vals[] = { 1, 2, 3, 4, 7, 8, 9 };
	struct metric_family *h;
	size_t i;

	h = metrics_family(reg, "h", "h", METRIC_HISTOGRAM, NULL, 0, bounds, 4);
	assert_non_null(h);
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		assert_int_equal(metrics_histogram_observe(h, NULL, vals[i]), 0);
	assert_render(reg,
		      "# HELP h h\n# TYPE h histogram\n"
		      "h_bucket{le=\"1\"} 1\n"
		      "h_bucket{le=\"2\"} 2\n"
		      "h_bucket{le=\"4\"} 4\n"
		      "h_bucket{le=\"8\"} 6\n"
		      "h_bucket{le=\"+Inf\"} 7\n"
		      "h_sum 34\n"
		      "h_count 7\n"
		      DROPPED(0));
	metrics_registry_free(reg);

	/* just above a bound (the next double up) goes to the next bucket */
	reg = metrics_registry_new(0);
	h = metrics_family(reg, "h", "h", METRIC_HISTOGRAM, NULL, 0, bounds, 4);
	assert_int_equal(metrics_histogram_observe(h, NULL, 1.0000000000000002), 0);
	assert_int_equal(metrics_histogram_observe(h, NULL, 8.000000000000002), 0);
	assert_int_equal(metrics_histogram_observe(h, NULL, -5), 0);
	assert_render(reg,
		      "# HELP h h\n# TYPE h histogram\n"
		      "h_bucket{le=\"1\"} 1\n"
		      "h_bucket{le=\"2\"} 2\n"
		      "h_bucket{le=\"4\"} 2\n"
		      "h_bucket{le=\"8\"} 2\n"
		      "h_bucket{le=\"+Inf\"} 3\n"
		      "h_sum 4.000000000000002\n"
		      "h_count 3\n"
		      DROPPED(0));
	metrics_registry_free(reg);
}

static void test_histogram_set(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	const double bounds[] = { 1, 2, 4, 8 };
	const uint64_t counts[] = { 1, 0, 2, 0, 3 };
	const uint64_t again[] = { 0, 0, 0, 0, 0 };
	const uint64_t big[] = { 1ULL << 60, 0, 0, 0, 1 };
	struct metric_family *h;

	h = metrics_family(reg, "h", "h", METRIC_HISTOGRAM, L_A, 1, bounds, 4);
	assert_non_null(h);
	assert_int_equal(metrics_histogram_set(h, L_A, counts, 12.5), 0);
	assert_render(reg,
		      "# HELP h h\n# TYPE h histogram\n"
		      "h_bucket{a=\"a\",le=\"1\"} 1\n"
		      "h_bucket{a=\"a\",le=\"2\"} 1\n"
		      "h_bucket{a=\"a\",le=\"4\"} 3\n"
		      "h_bucket{a=\"a\",le=\"8\"} 3\n"
		      "h_bucket{a=\"a\",le=\"+Inf\"} 6\n"
		      "h_sum{a=\"a\"} 12.5\n"
		      "h_count{a=\"a\"} 6\n"
		      DROPPED(0));
	/* wholesale: replaces, does not add; observe then adds on top */
	assert_int_equal(metrics_histogram_set(h, L_A, again, 0), 0);
	assert_int_equal(metrics_histogram_observe(h, L_A, 3), 0);
	assert_render(reg,
		      "# HELP h h\n# TYPE h histogram\n"
		      "h_bucket{a=\"a\",le=\"1\"} 0\n"
		      "h_bucket{a=\"a\",le=\"2\"} 0\n"
		      "h_bucket{a=\"a\",le=\"4\"} 1\n"
		      "h_bucket{a=\"a\",le=\"8\"} 1\n"
		      "h_bucket{a=\"a\",le=\"+Inf\"} 1\n"
		      "h_sum{a=\"a\"} 3\n"
		      "h_count{a=\"a\"} 1\n"
		      DROPPED(0));
	/* bucket counts are exact 64-bit integers, not rounded through a double */
	assert_int_equal(metrics_histogram_set(h, L_A, big, 1), 0);
	{
		char *out = render(reg);

		assert_string_equal(sample_value(out, "h_bucket{a=\"a\",le=\"+Inf\"}"),
				    "1152921504606846977");
		free(out);
	}
	assert_int_equal(metrics_histogram_set(h, L_A, NULL, 0), -EINVAL);
	metrics_registry_free(reg);
}

/* Render one gauge holding v and return its value text (static buffer). */
static const char *fmt_via_gauge(double v)
{
	static char val[64];
	struct metrics_registry *reg = metrics_registry_new(0);
	struct metric_family *g = metrics_family(reg, "g", "h", METRIC_GAUGE, NULL, 0, NULL, 0);
	char *out;

	assert_int_equal(metrics_gauge_set(g, NULL, v), 0);
	out = render(reg);
	snprintf(val, sizeof(val), "%s", sample_value(out, "g"));
	free(out);
	metrics_registry_free(reg);
	return val;
}

static void test_number_formatting(void **state)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
		{ 0, "0" },
		{ -0.0, "0" },
		{ 3, "3" },
		{ -3, "-3" },
		{ 1048576, "1048576" },
		{ 1e15, "1000000000000000" },
		{ 9007199254740992.0, "9007199254740992" },
		{ 18446744073709551616.0, "18446744073709551616" },
		{ 1e20, "100000000000000000000" },
		{ 1e21, "1e+21" },
		{ -1e21, "-1e+21" },
		{ 1.5e300, "1.5e+300" },
		{ 0.5, "0.5" },
		{ -2.5, "-2.5" },
		{ 0.1, "0.1" },
		{ 1e-9, "1e-09" },
		{ 0.1 + 0.2, "0.30000000000000004" },
		{ 1.0 / 3, "0.3333333333333333" },
		{ 5e-324, "4.94065645841247e-324" },
		{ 2.2250738585072014e-308, "2.2250738585072014e-308" },
		{ INFINITY, "+Inf" },
		{ -INFINITY, "-Inf" },
		{ NAN, "NaN" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = fmt_via_gauge(cases[i].v);

		if (strcmp(got, cases[i].want))
			fail_msg("format of case %zu: got \"%s\", want \"%s\"",
				 i, got, cases[i].want);
		/* and it round-trips */
		if (!isnan(cases[i].v) && !isinf(cases[i].v))
			assert_true(strtod(got, NULL) == cases[i].v);
	}
}

static void test_le_formatting(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	const double b[] = { 1e-9, 0.005, 1, 2.5, 1048576, 1e21 };
	struct metric_family *h;

	h = metrics_family(reg, "h", "h", METRIC_HISTOGRAM, NULL, 0, b, 6);
	assert_non_null(h);
	assert_int_equal(metrics_histogram_observe(h, NULL, 0.5), 0);
	assert_render(reg,
		      "# HELP h h\n# TYPE h histogram\n"
		      "h_bucket{le=\"1e-09\"} 0\n"
		      "h_bucket{le=\"0.005\"} 0\n"
		      "h_bucket{le=\"1\"} 1\n"
		      "h_bucket{le=\"2.5\"} 1\n"
		      "h_bucket{le=\"1048576\"} 1\n"
		      "h_bucket{le=\"1e+21\"} 1\n"
		      "h_bucket{le=\"+Inf\"} 1\n"
		      "h_sum 0.5\n"
		      "h_count 1\n"
		      DROPPED(0));
	metrics_registry_free(reg);
}

static void test_series_cap(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(2);
	const char *const names[] = { "pod", "ns" };
	const double b[] = { 1 };
	struct metric_family *c, *h;

	c = metrics_family(reg, "c_total", "h", METRIC_COUNTER, names, 2, NULL, 0);
	h = metrics_family(reg, "h", "h", METRIC_HISTOGRAM, L_A, 1, b, 1);
	assert_non_null(c);
	assert_non_null(h);
	assert_int_equal(metrics_counter_add(c, (const char *const[]){ "p1", "n" }, 1), 0);
	assert_int_equal(metrics_counter_add(c, (const char *const[]){ "p2", "n" }, 2), 0);
	assert_int_equal(metrics_counter_add(c, (const char *const[]){ "p3", "n" }, 4), 1);
	assert_int_equal(metrics_counter_add(c, (const char *const[]){ "p4", "n" }, 8), 1);
	/* existing series still update normally */
	assert_int_equal(metrics_counter_add(c, (const char *const[]){ "p1", "n" }, 16), 0);
	assert_true(metrics_value(c, (const char *const[]){ "other", "other" }) == 12);
	assert_true(isnan(metrics_value(c, (const char *const[]){ "p3", "n" })));

	assert_int_equal(metrics_histogram_observe(h, (const char *const[]){ "x" }, 0.5), 0);
	assert_int_equal(metrics_histogram_observe(h, (const char *const[]){ "y" }, 0.5), 0);
	assert_int_equal(metrics_histogram_observe(h, (const char *const[]){ "z" }, 5), 1);
	/* a rejected update is not counted as dropped */
	assert_int_equal(metrics_counter_add(c, (const char *const[]){ "p5", "n" }, -1), -EINVAL);

	assert_render(reg,
		      "# HELP c_total h\n# TYPE c_total counter\n"
		      "c_total{pod=\"other\",ns=\"other\"} 12\n"
		      "c_total{pod=\"p1\",ns=\"n\"} 17\n"
		      "c_total{pod=\"p2\",ns=\"n\"} 2\n"
		      "# HELP h h\n# TYPE h histogram\n"
		      "h_bucket{a=\"other\",le=\"1\"} 0\n"
		      "h_bucket{a=\"other\",le=\"+Inf\"} 1\n"
		      "h_sum{a=\"other\"} 5\n"
		      "h_count{a=\"other\"} 1\n"
		      "h_bucket{a=\"x\",le=\"1\"} 1\n"
		      "h_bucket{a=\"x\",le=\"+Inf\"} 1\n"
		      "h_sum{a=\"x\"} 0.5\n"
		      "h_count{a=\"x\"} 1\n"
		      "h_bucket{a=\"y\",le=\"1\"} 1\n"
		      "h_bucket{a=\"y\",le=\"+Inf\"} 1\n"
		      "h_sum{a=\"y\"} 0.5\n"
		      "h_count{a=\"y\"} 1\n"
		      DROPPED(3));

	/* clearing frees room under the cap again; the dropped counter stays */
	metrics_family_clear(c);
	assert_int_equal(metrics_counter_add(c, (const char *const[]){ "p9", "n" }, 1), 0);
	assert_true(isnan(metrics_value(c, (const char *const[]){ "other", "other" })));
	{
		char *out = render(reg);

		assert_string_equal(sample_value(out, "ksight_series_dropped_total"), "3");
		free(out);
	}
	metrics_registry_free(reg);
}

static void test_invalid_names(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	const double ok_b[] = { 1, 2 };
	const double bad_order[] = { 2, 1 };
	const double dup_b[] = { 1, 1 };
	const double nan_b[] = { 1, NAN };
	const double inf_b[] = { 1, INFINITY };
	static const char *const bad_metric[] = {
		"", "1abc", "a-b", "a b", "a.b", "\xc3\xbc", "ksight_series_dropped_total",
	};
	static const char *const bad_label[] = {
		"", "1x", "a:b", "__name__", "__x", "a-b", "a b",
	};
	size_t i;

	for (i = 0; i < sizeof(bad_metric) / sizeof(bad_metric[0]); i++)
		assert_null(metrics_family(reg, bad_metric[i], "h", METRIC_GAUGE, NULL, 0, NULL, 0));
	assert_null(metrics_family(reg, NULL, "h", METRIC_GAUGE, NULL, 0, NULL, 0));
	for (i = 0; i < sizeof(bad_label) / sizeof(bad_label[0]); i++)
		assert_null(metrics_family(reg, "m", "h", METRIC_GAUGE, &bad_label[i], 1, NULL, 0));
	assert_null(metrics_family(reg, "m", "h", METRIC_GAUGE,
				   (const char *const[]){ "a", "a" }, 2, NULL, 0));
	assert_null(metrics_family(reg, "m", "h", METRIC_GAUGE, NULL, 1, NULL, 0));
	assert_null(metrics_family(reg, "h", "h", METRIC_HISTOGRAM,
				   (const char *const[]){ "le" }, 1, ok_b, 2));
	assert_null(metrics_family(reg, "h", "h", METRIC_HISTOGRAM, NULL, 0, bad_order, 2));
	assert_null(metrics_family(reg, "h", "h", METRIC_HISTOGRAM, NULL, 0, dup_b, 2));
	assert_null(metrics_family(reg, "h", "h", METRIC_HISTOGRAM, NULL, 0, nan_b, 2));
	assert_null(metrics_family(reg, "h", "h", METRIC_HISTOGRAM, NULL, 0, inf_b, 2));
	assert_null(metrics_family(reg, "h", "h", METRIC_HISTOGRAM, NULL, 2, NULL, 0));
	assert_null(metrics_family(reg, "c_total", "h", METRIC_COUNTER, NULL, 0, ok_b, 2));
	assert_null(metrics_family(reg, "m", "h", (enum metric_type)42, NULL, 0, NULL, 0));
	assert_null(metrics_family(NULL, "m", "h", METRIC_GAUGE, NULL, 0, NULL, 0));

	/* the edges of what is valid */
	assert_non_null(metrics_family(reg, "a:b_c9", "h", METRIC_GAUGE, NULL, 0, NULL, 0));
	assert_non_null(metrics_family(reg, ":x", "h", METRIC_GAUGE, NULL, 0, NULL, 0));
	assert_non_null(metrics_family(reg, "_x", "h", METRIC_GAUGE,
				       (const char *const[]){ "_y", "Z9", "le" }, 3, NULL, 0));
	assert_non_null(metrics_family(reg, "h_ok", "h", METRIC_HISTOGRAM,
				       (const char *const[]){ "lee" }, 1, ok_b, 2));
	metrics_registry_free(reg);
}

static void test_counter_rules(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	const double b[] = { 1 };
	struct metric_family *c, *g, *h;

	c = metrics_family(reg, "c_total", "h", METRIC_COUNTER, L_A, 1, NULL, 0);
	g = metrics_family(reg, "g", "h", METRIC_GAUGE, NULL, 0, NULL, 0);
	h = metrics_family(reg, "h", "h", METRIC_HISTOGRAM, NULL, 0, b, 1);
	assert_int_equal(metrics_counter_add(c, L_A, 1), 0);
	assert_int_equal(metrics_counter_add(c, L_A, -1), -EINVAL);
	assert_int_equal(metrics_counter_add(c, L_A, -INFINITY), -EINVAL);
	assert_int_equal(metrics_counter_add(c, L_A, NAN), -EINVAL);
	assert_int_equal(metrics_counter_add(c, L_A, 0), 0);
	assert_true(metrics_value(c, L_A) == 1);
	/* a rejected add on a new label set creates no series */
	assert_int_equal(metrics_counter_add(c, (const char *const[]){ "b" }, -1), -EINVAL);
	assert_true(isnan(metrics_value(c, (const char *const[]){ "b" })));

	/* operations of the wrong type, and missing label values */
	assert_int_equal(metrics_gauge_set(c, L_A, 1), -EINVAL);
	assert_int_equal(metrics_counter_add(g, NULL, 1), -EINVAL);
	assert_int_equal(metrics_histogram_observe(g, NULL, 1), -EINVAL);
	assert_int_equal(metrics_histogram_set(c, L_A, (const uint64_t[]){ 0, 0 }, 0), -EINVAL);
	assert_int_equal(metrics_counter_add(h, NULL, 1), -EINVAL);
	assert_int_equal(metrics_counter_add(c, NULL, 1), -EINVAL);
	assert_int_equal(metrics_counter_add(NULL, NULL, 1), -EINVAL);
	/* gauges take anything, NaN included */
	assert_int_equal(metrics_gauge_set(g, NULL, -7), 0);
	assert_int_equal(metrics_gauge_set(g, NULL, NAN), 0);
	metrics_registry_free(reg);
}

static void test_redeclaration(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	const char *const ab[] = { "a", "b" };
	const char *const ba[] = { "b", "a" };
	const double b1[] = { 1, 2 };
	const double b2[] = { 1, 3 };
	struct metric_family *f, *h;

	f = metrics_family(reg, "m", "help", METRIC_GAUGE, ab, 2, NULL, 0);
	h = metrics_family(reg, "h", "help", METRIC_HISTOGRAM, NULL, 0, b1, 2);
	assert_non_null(f);
	assert_non_null(h);
	/* same type and labels: the same family (help text is not compared) */
	assert_ptr_equal(metrics_family(reg, "m", "other help", METRIC_GAUGE, ab, 2, NULL, 0), f);
	assert_ptr_equal(metrics_family(reg, "h", "help", METRIC_HISTOGRAM, NULL, 0, b1, 2), h);
	assert_null(metrics_family(reg, "m", "help", METRIC_COUNTER, ab, 2, NULL, 0));
	assert_null(metrics_family(reg, "m", "help", METRIC_GAUGE, ba, 2, NULL, 0));
	assert_null(metrics_family(reg, "m", "help", METRIC_GAUGE, ab, 1, NULL, 0));
	assert_null(metrics_family(reg, "m", "help", METRIC_GAUGE, NULL, 0, NULL, 0));
	assert_null(metrics_family(reg, "h", "help", METRIC_HISTOGRAM, NULL, 0, b2, 2));
	assert_null(metrics_family(reg, "h", "help", METRIC_HISTOGRAM, NULL, 0, b1, 1));
	/* declared once, rendered once, with the first help */
	assert_render(reg,
		      "# HELP m help\n# TYPE m gauge\n"
		      "# HELP h help\n# TYPE h histogram\n"
		      DROPPED(0));
	metrics_registry_free(reg);
}

static void test_metrics_value(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	const char *const names[] = { "x", "y" };
	const double b[] = { 1 };
	struct metric_family *c, *g, *h;

	c = metrics_family(reg, "c_total", "h", METRIC_COUNTER, names, 2, NULL, 0);
	g = metrics_family(reg, "g", "h", METRIC_GAUGE, NULL, 0, NULL, 0);
	h = metrics_family(reg, "h", "h", METRIC_HISTOGRAM, NULL, 0, b, 1);
	assert_true(isnan(metrics_value(c, (const char *const[]){ "a", "b" })));
	assert_true(isnan(metrics_value(g, NULL)));
	assert_int_equal(metrics_counter_add(c, (const char *const[]){ "a", "b" }, 1.5), 0);
	assert_int_equal(metrics_counter_add(c, (const char *const[]){ "a", "b" }, 2), 0);
	assert_true(metrics_value(c, (const char *const[]){ "a", "b" }) == 3.5);
	/* the value boundary is kept: ("a","b") is not ("ab","") */
	assert_true(isnan(metrics_value(c, (const char *const[]){ "ab", "" })));
	/* NULL reads as "" */
	assert_int_equal(metrics_counter_add(c, (const char *const[]){ "a", NULL }, 4), 0);
	assert_true(metrics_value(c, (const char *const[]){ "a", "" }) == 4);
	assert_int_equal(metrics_gauge_set(g, NULL, -2), 0);
	assert_true(metrics_value(g, NULL) == -2);
	assert_int_equal(metrics_histogram_observe(h, NULL, 1), 0);
	assert_true(isnan(metrics_value(h, NULL)));
	assert_true(isnan(metrics_value(NULL, NULL)));
	metrics_registry_free(reg);
}

struct collector_log {
	struct metric_family *g;
	int calls[2];
	int seq;
};

static void collector_a(struct metrics_registry *reg, void *arg)
{
	struct collector_log *log = arg;

	log->calls[0] = ++log->seq;
	/* updating from a collector must not deadlock: the lock is not held */
	assert_int_equal(metrics_gauge_set(log->g, NULL, log->seq), 0);
}

static void collector_b(struct metrics_registry *reg, void *arg)
{
	struct collector_log *log = arg;

	log->calls[1] = ++log->seq;
	/* declaring from a collector works too (it takes the lock) */
	assert_non_null(metrics_family(reg, "late", "h", METRIC_GAUGE, NULL, 0, NULL, 0));
}

static void test_collectors(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	struct collector_log log = { 0 };

	log.g = metrics_family(reg, "g", "h", METRIC_GAUGE, NULL, 0, NULL, 0);
	assert_int_equal(metrics_add_collector(reg, collector_a, &log), 0);
	assert_int_equal(metrics_add_collector(reg, collector_b, &log), 0);
	assert_int_equal(metrics_add_collector(reg, NULL, NULL), -EINVAL);
	assert_render(reg,
		      "# HELP g h\n# TYPE g gauge\ng 1\n"
		      "# HELP late h\n# TYPE late gauge\n"
		      DROPPED(0));
	assert_int_equal(log.calls[0], 1);
	assert_int_equal(log.calls[1], 2);
	assert_render(reg,
		      "# HELP g h\n# TYPE g gauge\ng 3\n"
		      "# HELP late h\n# TYPE late gauge\n"
		      DROPPED(0));
	metrics_registry_free(reg);
}

static void test_family_clear(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	struct metric_family *g;
	char v[16];
	int i;

	g = metrics_family(reg, "g", "h", METRIC_GAUGE, L_A, 1, NULL, 0);
	for (i = 0; i < 100; i++) {
		snprintf(v, sizeof(v), "%d", i);
		assert_int_equal(metrics_gauge_set(g, (const char *const[]){ v }, i), 0);
	}
	metrics_family_clear(g);
	assert_render(reg, "# HELP g h\n# TYPE g gauge\n" DROPPED(0));
	assert_int_equal(metrics_gauge_set(g, (const char *const[]){ "7" }, 1), 0);
	assert_render(reg, "# HELP g h\n# TYPE g gauge\ng{a=\"7\"} 1\n" DROPPED(0));
	metrics_family_clear(NULL);
	metrics_registry_free(reg);
}

/* A value parsed from a rendered sample, which must be present. */
static double sample_double(const char *text, const char *name)
{
	const char *v = sample_value(text, name);

	if (!v)
		fail_msg("no sample %s", name);
	return strtod(v, NULL);
}

static void test_process_metrics(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	double cpu1, cpu2, start;
	volatile double spin = 0;
	char *out;
	int i;

	assert_int_equal(process_metrics_register(reg), 0);
	out = render(reg);
	assert_non_null(strstr(out, "# HELP process_cpu_seconds_total Total user and system "
				    "CPU time spent in seconds.\n"
				    "# TYPE process_cpu_seconds_total counter\n"));
	assert_non_null(strstr(out, "# TYPE process_resident_memory_bytes gauge\n"));
	assert_non_null(strstr(out, "# TYPE process_virtual_memory_bytes gauge\n"));
	assert_non_null(strstr(out, "# HELP process_start_time_seconds Start time of the "
				    "process since unix epoch in seconds.\n"));
	assert_non_null(strstr(out, "# HELP process_open_fds Number of open file descriptors.\n"));
	assert_non_null(strstr(out, "# HELP process_max_fds Maximum number of open file "
				    "descriptors.\n"));
	cpu1 = sample_double(out, "process_cpu_seconds_total");
	assert_true(cpu1 >= 0);
	assert_true(sample_double(out, "process_resident_memory_bytes") > 0);
	assert_true(sample_double(out, "process_virtual_memory_bytes") >=
		    sample_double(out, "process_resident_memory_bytes"));
	start = sample_double(out, "process_start_time_seconds");
	assert_true(start > 1e9);
	assert_true(start <= (double)time(NULL) + 1);
	assert_true(sample_double(out, "process_open_fds") >= 3);
	assert_true(sample_double(out, "process_max_fds") >=
		    sample_double(out, "process_open_fds"));
	free(out);

	/* burn some CPU: the counter must follow, never go back */
	for (i = 0; i < 30000000; i++)
		spin += i;
	out = render(reg);
	cpu2 = sample_double(out, "process_cpu_seconds_total");
	assert_true(cpu2 >= cpu1);
	assert_true(sample_double(out, "process_start_time_seconds") == start);
	free(out);

	/* registering on a second registry is independent */
	metrics_registry_free(reg);
	reg = metrics_registry_new(0);
	assert_int_equal(process_metrics_register(reg), 0);
	out = render(reg);
	assert_true(sample_double(out, "process_cpu_seconds_total") >= cpu2);
	free(out);
	metrics_registry_free(reg);
}

static void test_many_series(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(20000);
	const char *const names[] = { "pod", "container" };
	struct metric_family *c;
	const char *line, *prev = NULL;
	size_t prev_len = 0;
	char pod[32], ctr[32];
	char *out;
	int i, n = 0;

	c = metrics_family(reg, "ksight_big_total", "Big.", METRIC_COUNTER, names, 2, NULL, 0);
	assert_non_null(c);
	/* a permutation of 0..9999, so insertion is far from sorted */
	for (i = 0; i < 10000; i++) {
		int k = (int)(((long)i * 7919) % 10000);

		snprintf(pod, sizeof(pod), "pod-%d", k);
		snprintf(ctr, sizeof(ctr), "c%d", k % 3);
		assert_int_equal(metrics_counter_add(c, (const char *const[]){ pod, ctr }, k), 0);
	}
	/* updating existing series again does not add any */
	for (i = 0; i < 10000; i += 7) {
		snprintf(pod, sizeof(pod), "pod-%d", i);
		snprintf(ctr, sizeof(ctr), "c%d", i % 3);
		assert_int_equal(metrics_counter_add(c, (const char *const[]){ pod, ctr }, 1), 0);
	}
	out = render(reg);
	assert_int_equal(count_lines(out), 2 + 10000 + 3);
	/* every sample line well-formed and in strictly increasing order */
	for (line = out; *line; line = strchr(line, '\n') + 1) {
		size_t len = (size_t)(strchr(line, '\n') - line);

		if (line[0] == '#' || !strncmp(line, "ksight_series_dropped_total", 27))
			continue;
		assert_true(!strncmp(line, "ksight_big_total{pod=\"pod-", 26));
		assert_non_null(memchr(line, '}', len));
		if (prev)
			assert_true(memcmp(prev, line, prev_len < len ? prev_len : len) < 0);
		prev = line;
		prev_len = len;
		n++;
	}
	assert_int_equal(n, 10000);
	assert_string_equal(sample_value(out, "ksight_big_total{pod=\"pod-14\",container=\"c2\"}"),
			    "15");
	assert_string_equal(sample_value(out, "ksight_series_dropped_total"), "0");
	free(out);
	metrics_registry_free(reg);
}

/* ---- Folding beyond the cap, and retiring series ---------------------- */

static const char *const POD_NS[] = { "pod", "ns" };
static const char *const OTHER2[] = { "other", "other" };
#define P(x) ((const char *const[]){ (x), "n" })

static void test_fold_counter_set(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(2);
	struct metric_family *c;

	c = metrics_family(reg, "c_total", "h", METRIC_COUNTER, POD_NS, 2, NULL, 0);
	assert_non_null(c);
	assert_int_equal(metrics_counter_set(c, P("p1"), 1), 0);
	assert_int_equal(metrics_counter_set(c, P("p2"), 2), 0);
	/* two totals beyond the cap: other is their sum, not the last one set */
	assert_int_equal(metrics_counter_set(c, P("p3"), 10), 1);
	assert_int_equal(metrics_counter_set(c, P("p4"), 5), 1);
	assert_true(metrics_value(c, OTHER2) == 15);
	/* the next scrape sets the same totals, one grown: other grows by as much */
	assert_int_equal(metrics_counter_set(c, P("p3"), 12), 1);
	assert_int_equal(metrics_counter_set(c, P("p4"), 5), 1);
	assert_true(metrics_value(c, OTHER2) == 17);
	/* a total that went back (its source was recreated) is a reset: the new value adds */
	assert_int_equal(metrics_counter_set(c, P("p3"), 3), 1);
	assert_true(metrics_value(c, OTHER2) == 20);
	/* adds and sets of one folded label set agree on its total */
	assert_int_equal(metrics_counter_add(c, P("p4"), 1), 1);
	assert_true(metrics_value(c, OTHER2) == 21);
	assert_int_equal(metrics_counter_set(c, P("p4"), 7), 1);
	assert_true(metrics_value(c, OTHER2) == 22);
	/* real series are untouched; the folded ones have none */
	assert_true(metrics_value(c, P("p1")) == 1);
	assert_true(isnan(metrics_value(c, P("p3"))));
	/* a total of +Inf set again has not grown: other stays +Inf, not Inf - Inf */
	assert_int_equal(metrics_counter_set(c, P("p5"), INFINITY), 1);
	assert_int_equal(metrics_counter_set(c, P("p5"), INFINITY), 1);
	assert_true(metrics_value(c, OTHER2) == INFINITY);
	metrics_registry_free(reg);
}

struct scrape_src {
	struct metric_family *c;
	int scrape;
};

/* A scrape-time collector: five totals from "a BPF map", each grown since the last scrape. */
static void set_totals(struct metrics_registry *reg, void *arg)
{
	struct scrape_src *src = arg;
	char pod[16];
	int i;

	src->scrape++;
	for (i = 1; i <= 5; i++) {
		snprintf(pod, sizeof(pod), "p%d", i);
		metrics_counter_set(src->c, P(pod), i * src->scrape);
	}
}

static void test_fold_dropped_once(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(2);
	struct scrape_src src = { 0 };
	char want[16];
	int k;

	src.c = metrics_family(reg, "c_total", "h", METRIC_COUNTER, POD_NS, 2, NULL, 0);
	assert_non_null(src.c);
	assert_int_equal(metrics_add_collector(reg, set_totals, &src), 0);
	for (k = 1; k <= 3; k++) {
		char *out = render(reg);

		/* p3, p4 and p5 folded: other is their sum, 3 label sets dropped, every scrape */
		snprintf(want, sizeof(want), "%d", 12 * k);
		assert_string_equal(sample_value(out, "c_total{pod=\"other\",ns=\"other\"}"), want);
		snprintf(want, sizeof(want), "%d", k);
		assert_string_equal(sample_value(out, "c_total{pod=\"p1\",ns=\"n\"}"), want);
		assert_string_equal(sample_value(out, "ksight_series_dropped_total"), "3");
		free(out);
	}
	metrics_registry_free(reg);
}

static void test_fold_gauge_sum(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(1);
	struct metric_family *g;

	g = metrics_family(reg, "g", "h", METRIC_GAUGE, L_A, 1, NULL, 0);
	assert_non_null(g);
	assert_int_equal(metrics_gauge_set(g, (const char *const[]){ "x" }, 1), 0);
	assert_int_equal(metrics_gauge_set(g, (const char *const[]){ "y" }, 2), 1);
	assert_int_equal(metrics_gauge_set(g, (const char *const[]){ "z" }, 3), 1);
	/* other is the sum of the latest value of each folded label set */
	assert_true(metrics_value(g, (const char *const[]){ "other" }) == 5);
	assert_int_equal(metrics_gauge_set(g, (const char *const[]){ "y" }, 10), 1);
	assert_true(metrics_value(g, (const char *const[]){ "other" }) == 13);
	assert_int_equal(metrics_gauge_set(g, (const char *const[]){ "y" }, -4), 1);
	assert_true(metrics_value(g, (const char *const[]){ "other" }) == -1);
	/* a NaN counts while it is the latest value, and no longer */
	assert_int_equal(metrics_gauge_set(g, (const char *const[]){ "z" }, NAN), 1);
	assert_true(isnan(metrics_value(g, (const char *const[]){ "other" })));
	assert_int_equal(metrics_gauge_set(g, (const char *const[]){ "z" }, 0.5), 1);
	assert_true(metrics_value(g, (const char *const[]){ "other" }) == -3.5);
	assert_render(reg,
		      "# HELP g h\n# TYPE g gauge\n"
		      "g{a=\"other\"} -3.5\n"
		      "g{a=\"x\"} 1\n"
		      DROPPED(2));
	metrics_registry_free(reg);
}

static void test_fold_histogram_set(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(1);
	const double b[] = { 1 };
	struct metric_family *h;
	const char *const x[] = { "x" }, *const y[] = { "y" }, *const z[] = { "z" };

	h = metrics_family(reg, "h", "h", METRIC_HISTOGRAM, L_A, 1, b, 1);
	assert_non_null(h);
	assert_int_equal(metrics_histogram_set(h, x, (const uint64_t[]){ 9, 9 }, 9), 0);
	assert_int_equal(metrics_histogram_set(h, y, (const uint64_t[]){ 1, 2 }, 3), 1);
	assert_int_equal(metrics_histogram_set(h, z, (const uint64_t[]){ 4, 0 }, 1), 1);
	/* a later scrape: y grew, z's source was recreated (a reset) */
	assert_int_equal(metrics_histogram_set(h, y, (const uint64_t[]){ 2, 2 }, 4), 1);
	assert_int_equal(metrics_histogram_set(h, z, (const uint64_t[]){ 1, 0 }, 0.5), 1);
	/* observations into a folded label set add to it and to other */
	assert_int_equal(metrics_histogram_observe(h, y, 5), 1);
	assert_int_equal(metrics_histogram_set(h, y, (const uint64_t[]){ 2, 3 }, 9), 1);
	assert_render(reg,
		      "# HELP h h\n# TYPE h histogram\n"
		      "h_bucket{a=\"other\",le=\"1\"} 7\n"
		      "h_bucket{a=\"other\",le=\"+Inf\"} 10\n"
		      "h_sum{a=\"other\"} 10.5\n"
		      "h_count{a=\"other\"} 10\n"
		      "h_bucket{a=\"x\",le=\"1\"} 9\n"
		      "h_bucket{a=\"x\",le=\"+Inf\"} 18\n"
		      "h_sum{a=\"x\"} 9\n"
		      "h_count{a=\"x\"} 18\n"
		      DROPPED(2));
	metrics_registry_free(reg);
}

struct rebuild_src {
	struct metric_family *g;
	int scrape;
};

/* A collector that rebuilds a gauge family each scrape, more label sets than the cap. */
static void rebuild_gauge(struct metrics_registry *reg, void *arg)
{
	struct rebuild_src *src = arg;

	src->scrape++;
	metrics_family_clear(src->g);
	metrics_gauge_set(src->g, (const char *const[]){ "x" }, 1);
	metrics_gauge_set(src->g, (const char *const[]){ "y" }, src->scrape);
	metrics_gauge_set(src->g, (const char *const[]){ "z" }, 10);
}

static void test_fold_after_clear(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(1);
	struct rebuild_src src = { 0 };
	char want[16];
	int k;

	src.g = metrics_family(reg, "g", "h", METRIC_GAUGE, L_A, 1, NULL, 0);
	assert_int_equal(metrics_add_collector(reg, rebuild_gauge, &src), 0);
	for (k = 1; k <= 3; k++) {
		char *out = render(reg);

		/* y and z fold every scrape: other is this scrape's sum, dropped counts them once */
		snprintf(want, sizeof(want), "%d", k + 10);
		assert_string_equal(sample_value(out, "g{a=\"other\"}"), want);
		assert_string_equal(sample_value(out, "g{a=\"x\"}"), "1");
		assert_string_equal(sample_value(out, "ksight_series_dropped_total"), "2");
		free(out);
	}
	metrics_registry_free(reg);

	/* a label set folded before the clear gets a series if there is room after it */
	reg = metrics_registry_new(1);
	src.g = metrics_family(reg, "g", "h", METRIC_GAUGE, L_A, 1, NULL, 0);
	assert_int_equal(metrics_gauge_set(src.g, (const char *const[]){ "x" }, 1), 0);
	assert_int_equal(metrics_gauge_set(src.g, (const char *const[]){ "z" }, 2), 1);
	metrics_family_clear(src.g);
	assert_int_equal(metrics_gauge_set(src.g, (const char *const[]){ "z" }, 3), 0);
	assert_int_equal(metrics_gauge_set(src.g, (const char *const[]){ "x" }, 4), 1);
	assert_render(reg,
		      "# HELP g h\n# TYPE g gauge\n"
		      "g{a=\"other\"} 4\n"
		      "g{a=\"z\"} 3\n"
		      DROPPED(2));
	metrics_registry_free(reg);
}

/* The label set whose values are all "other" is the fold target itself: never a second line. */
static void test_fold_other_label_set(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(2);
	struct metric_family *c;

	c = metrics_family(reg, "c_total", "h", METRIC_COUNTER, POD_NS, 2, NULL, 0);
	assert_int_equal(metrics_counter_add(c, OTHER2, 1), 0);
	assert_int_equal(metrics_counter_add(c, P("p1"), 1), 0);
	assert_int_equal(metrics_counter_add(c, P("p2"), 1), 0);
	assert_int_equal(metrics_counter_add(c, P("p3"), 5), 1);
	assert_int_equal(metrics_counter_set(c, OTHER2, 3), 0);
	assert_render(reg,
		      "# HELP c_total h\n# TYPE c_total counter\n"
		      "c_total{pod=\"other\",ns=\"other\"} 8\n"
		      "c_total{pod=\"p1\",ns=\"n\"} 1\n"
		      "c_total{pod=\"p2\",ns=\"n\"} 1\n"
		      DROPPED(1));
	metrics_registry_free(reg);
}

/*
 * Folded label sets are tracked in a table of max(cap, 64) entries: with more
 * distinct ones the memory stays put, and entries not updated for two
 * scrapes make room for new ones.
 */
static void test_fold_tracking_bounded(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(2);
	struct metric_family *c;
	struct mallinfo2 before, after;
	char pod[32], *out;
	int i;

	c = metrics_family(reg, "c_total", "h", METRIC_COUNTER, POD_NS, 2, NULL, 0);
	assert_int_equal(metrics_counter_set(c, P("p0"), 1), 0);
	assert_int_equal(metrics_counter_set(c, P("p1"), 1), 0);
	for (i = 0; i < 64; i++) {
		snprintf(pod, sizeof(pod), "q%d", i);
		assert_int_equal(metrics_counter_set(c, P(pod), 1), 1);
	}
	assert_true(metrics_value(c, OTHER2) == 64);
	/* the table is full of label sets updated in this scrape: q64 is not tracked */
	assert_int_equal(metrics_counter_set(c, P("q64"), 100), 1);
	assert_int_equal(metrics_counter_set(c, P("q64"), 100), 1);
	assert_true(metrics_value(c, OTHER2) == 64);
	out = render(reg);
	assert_string_equal(sample_value(out, "ksight_series_dropped_total"), "66");
	free(out);
	free(render(reg));
	/* two scrapes later the q entries are stale: q64 takes one, counted once */
	assert_int_equal(metrics_counter_set(c, P("q64"), 100), 1);
	assert_int_equal(metrics_counter_set(c, P("q64"), 100), 1);
	assert_true(metrics_value(c, OTHER2) == 164);
	out = render(reg);
	assert_string_equal(sample_value(out, "ksight_series_dropped_total"), "67");
	free(out);

	/* 100k more folded label sets, two scrapes apart: memory does not follow */
	before = mallinfo2();
	for (i = 0; i < 100000; i++) {
		snprintf(pod, sizeof(pod), "r%d", i);
		assert_int_equal(metrics_counter_set(c, P(pod), 1), 1);
		if (i % 1000 == 999) {
			free(render(reg));
			free(render(reg));
		}
	}
	after = mallinfo2();
	assert_true(after.uordblks < before.uordblks + 256 * 1024);
	/* other never went down and holds at most what was folded */
	assert_true(metrics_value(c, OTHER2) >= 164);
	assert_true(metrics_value(c, OTHER2) <= 164 + 100000);
	metrics_registry_free(reg);
}

static const char *const KILL_LABELS[] = { "namespace", "pod", "container" };
#define K(ns, pod, ctr) ((const char *const[]){ (ns), (pod), (ctr) })
static const char *const NS_POD[] = { "namespace", "pod" };

static void test_forget(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(4);
	const char *const pod_only[] = { "pod" };
	const char *const pod_ns[] = { "pod", "namespace" };
	struct metric_family *c, *g, *r;
	char *out;

	c = metrics_family(reg, "kills_total", "h", METRIC_COUNTER, KILL_LABELS, 3, NULL, 0);
	g = metrics_family(reg, "g", "h", METRIC_GAUGE, pod_only, 1, NULL, 0);
	r = metrics_family(reg, "r", "h", METRIC_GAUGE, pod_ns, 2, NULL, 0);
	assert_non_null(c);
	assert_non_null(g);
	assert_non_null(r);
	assert_int_equal(metrics_counter_add(c, K("n", "a", "c1"), 1), 0);
	assert_int_equal(metrics_counter_add(c, K("n", "a", "c2"), 1), 0);
	assert_int_equal(metrics_counter_add(c, K("n", "b", "c1"), 1), 0);
	assert_int_equal(metrics_counter_add(c, K("m", "a", "c1"), 1), 0);
	assert_int_equal(metrics_counter_add(c, K("n", "d", "c1"), 7), 1);
	assert_int_equal(metrics_gauge_set(g, (const char *const[]){ "a" }, 1), 0);
	assert_int_equal(metrics_gauge_set(r, (const char *const[]){ "a", "n" }, 1), 0);
	assert_int_equal(metrics_gauge_set(r, (const char *const[]){ "a", "m" }, 1), 0);

	/* pod n/a is deleted: its series go, in every family with both labels, by name */
	assert_int_equal(metrics_forget(reg, NS_POD, (const char *const[]){ "n", "a" }, 2), 3);
	assert_true(isnan(metrics_value(c, K("n", "a", "c1"))));
	assert_true(isnan(metrics_value(c, K("n", "a", "c2"))));
	assert_true(isnan(metrics_value(r, (const char *const[]){ "a", "n" })));
	/* m/a is another pod; g has no namespace label and is left alone */
	assert_true(metrics_value(c, K("m", "a", "c1")) == 1);
	assert_true(metrics_value(r, (const char *const[]){ "a", "m" }) == 1);
	assert_true(metrics_value(g, (const char *const[]){ "a" }) == 1);
	/* nothing more to forget; the "other" series stays */
	assert_int_equal(metrics_forget(reg, NS_POD, (const char *const[]){ "n", "a" }, 2), 0);
	assert_int_equal(metrics_forget(reg, NS_POD, (const char *const[]){ "other", "other" }, 2), 0);
	assert_true(metrics_value(c, (const char *const[]){ "other", "other", "other" }) == 7);

	/* the freed room goes to new pods; d, folded before, stays folded */
	assert_int_equal(metrics_counter_add(c, K("n", "d", "c1"), 1), 1);
	assert_int_equal(metrics_counter_add(c, K("n", "e", "c1"), 1), 0);
	assert_int_equal(metrics_counter_add(c, K("n", "f", "c1"), 1), 0);
	assert_int_equal(metrics_counter_add(c, K("n", "g", "c1"), 1), 1);
	out = render(reg);
	assert_non_null(strstr(out,
			       "# TYPE kills_total counter\n"
			       "kills_total{namespace=\"m\",pod=\"a\",container=\"c1\"} 1\n"
			       "kills_total{namespace=\"n\",pod=\"b\",container=\"c1\"} 1\n"
			       "kills_total{namespace=\"n\",pod=\"e\",container=\"c1\"} 1\n"
			       "kills_total{namespace=\"n\",pod=\"f\",container=\"c1\"} 1\n"
			       "kills_total{namespace=\"other\",pod=\"other\",container=\"other\"} 9\n"
			       "# HELP g h\n"));
	assert_string_equal(sample_value(out, "ksight_series_dropped_total"), "2");
	free(out);

	/* one series by its label values */
	assert_int_equal(metrics_family_remove_series(c, K("n", "b", "c1")), 0);
	assert_int_equal(metrics_family_remove_series(c, K("n", "b", "c1")), -ENOENT);
	assert_int_equal(metrics_family_remove_series(c, K("other", "other", "other")), -EBUSY);
	assert_true(isnan(metrics_value(c, K("n", "b", "c1"))));
	assert_int_equal(metrics_counter_add(c, K("n", "h", "c1"), 1), 0);

	/* values match as the series were keyed: bytes that are not UTF-8 as U+FFFD */
	assert_int_equal(metrics_gauge_set(g, (const char *const[]){ "caf\xe9" }, 1), 0);
	assert_int_equal(metrics_forget(reg, pod_only, (const char *const[]){ "caf\xe8" }, 1), 1);

	/* bad arguments */
	assert_int_equal(metrics_forget(reg, NS_POD, (const char *const[]){ "n", "a" }, 0), -EINVAL);
	assert_int_equal(metrics_forget(NULL, NS_POD, (const char *const[]){ "n", "a" }, 2), -EINVAL);
	assert_int_equal(metrics_forget(reg, NULL, NULL, 1), -EINVAL);
	assert_int_equal(metrics_family_remove_series(NULL, NULL), -EINVAL);
	metrics_registry_free(reg);
}

/* The lookup table grows (rehashes) after "other" exists: other must stay out of it. */
static void test_fold_other_after_rehash(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(100);
	struct metric_family *c;
	char pod[16];
	int i;

	c = metrics_family(reg, "c_total", "h", METRIC_COUNTER, POD_NS, 2, NULL, 0);
	/* the all-"other" label set makes the "other" series under the cap */
	assert_int_equal(metrics_counter_set(c, OTHER2, 5), 0);
	/* then enough series for the table to grow a few times */
	for (i = 0; i < 100; i++) {
		snprintf(pod, sizeof(pod), "p%d", i);
		assert_int_equal(metrics_counter_set(c, P(pod), 1), 0);
	}
	/* still the fold target: a total that went back is a reset, never an overwrite */
	assert_int_equal(metrics_counter_set(c, OTHER2, 1), 0);
	assert_true(metrics_value(c, OTHER2) == 6);
	assert_int_equal(metrics_family_remove_series(c, OTHER2), -EBUSY);
	assert_int_equal(metrics_counter_set(c, P("p100"), 1), 1);
	assert_true(metrics_value(c, OTHER2) == 7);
	metrics_registry_free(reg);
}

/* Retiring many series keeps the table and the render order sound. */
static void test_forget_many(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(1000);
	struct metric_family *c;
	char pod[96], *out;
	int i, n = 0;

	c = metrics_family(reg, "kills_total", "h", METRIC_COUNTER, KILL_LABELS, 3, NULL, 0);
	/* the cap is full of pods */
	for (i = 0; i < 1000; i++) {
		snprintf(pod, sizeof(pod), "pod-%d", (i * 7919) % 1000);
		assert_int_equal(metrics_counter_add(c, K("ns", pod, ""), i), 0);
	}
	assert_int_equal(metrics_counter_add(c, K("ns", "late", ""), 1), 1);
	/* every odd pod deleted */
	for (i = 1; i < 1000; i += 2) {
		snprintf(pod, sizeof(pod), "pod-%d", i);
		assert_int_equal(metrics_forget(reg, NS_POD, (const char *const[]){ "ns", pod }, 2), 1);
	}
	/* the even ones are all still found */
	for (i = 0; i < 1000; i += 2) {
		snprintf(pod, sizeof(pod), "pod-%d", i);
		assert_false(isnan(metrics_value(c, K("ns", pod, ""))));
	}
	/* 500 new pods get real series, the 501st folds */
	for (i = 0; i < 500; i++) {
		snprintf(pod, sizeof(pod), "new-%d", i);
		assert_int_equal(metrics_counter_add(c, K("ns", pod, ""), 1), 0);
	}
	assert_int_equal(metrics_counter_add(c, K("ns", "new-500", ""), 1), 1);
	out = render(reg);
	for (i = 0; i < 1000; i += 2) {
		snprintf(pod, sizeof(pod), "kills_total{namespace=\"ns\",pod=\"pod-%d\",container=\"\"}", i);
		assert_non_null(sample_value(out, pod));
		snprintf(pod, sizeof(pod), "kills_total{namespace=\"ns\",pod=\"pod-%d\",container=\"\"}", i + 1);
		assert_null(sample_value(out, pod));
	}
	/* HELP, TYPE, 1000 series and other; the dropped counter's three lines */
	assert_int_equal(count_lines(out), 2 + 1001 + 3);
	{
		const char *line, *prev = NULL;
		size_t prev_len = 0;

		for (line = out; *line; line = strchr(line, '\n') + 1) {
			size_t len = (size_t)(strchr(line, '\n') - line);

			if (strncmp(line, "kills_total{", 12))
				continue;
			if (prev)
				assert_true(memcmp(prev, line, prev_len < len ? prev_len : len) < 0);
			prev = line;
			prev_len = len;
			n++;
		}
	}
	assert_int_equal(n, 1001);
	free(out);
	metrics_registry_free(reg);
}

struct thread_arg {
	struct metric_family *c;
	int id;
	int failures;	/* cmocka asserts only work on the main thread */
};

static void *hammer(void *p)
{
	struct thread_arg *a = p;
	char v[16];
	int i;

	for (i = 0; i < 20000; i++) {
		snprintf(v, sizeof(v), "%d", (i + a->id) % 50);
		if (metrics_counter_add(a->c, (const char *const[]){ v }, 1))
			a->failures++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct metrics_registry *reg = metrics_registry_new(0);
	struct thread_arg args[4];
	pthread_t th[4];
	double total = 0;
	char v[16];
	int i;

	struct metric_family *c = metrics_family(reg, "c_total", "h", METRIC_COUNTER,
						 L_A, 1, NULL, 0);
	for (i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ c, i, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
	}
	/* render concurrently with the updates */
	for (i = 0; i < 20; i++) {
		char *out = render(reg);

		free(out);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	for (i = 0; i < 50; i++) {
		snprintf(v, sizeof(v), "%d", i);
		total += metrics_value(c, (const char *const[]){ v });
	}
	assert_true(total == 4 * 20000);
	metrics_registry_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_help_escaping),
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_label_invalid_utf8),
		cmocka_unit_test(test_counter_gauge_render),
		cmocka_unit_test(test_sample_ordering),
		cmocka_unit_test(test_empty_families),
		cmocka_unit_test(test_histogram_render),
		cmocka_unit_test(test_histogram_seams),
		cmocka_unit_test(test_histogram_set),
		cmocka_unit_test(test_number_formatting),
		cmocka_unit_test(test_le_formatting),
		cmocka_unit_test(test_series_cap),
		cmocka_unit_test(test_invalid_names),
		cmocka_unit_test(test_counter_rules),
		cmocka_unit_test(test_redeclaration),
		cmocka_unit_test(test_metrics_value),
		cmocka_unit_test(test_collectors),
		cmocka_unit_test(test_family_clear),
		cmocka_unit_test(test_process_metrics),
		cmocka_unit_test(test_many_series),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_fold_counter_set),
		cmocka_unit_test(test_fold_dropped_once),
		cmocka_unit_test(test_fold_gauge_sum),
		cmocka_unit_test(test_fold_histogram_set),
		cmocka_unit_test(test_fold_other_label_set),
		cmocka_unit_test(test_fold_tracking_bounded),
		cmocka_unit_test(test_forget),
		cmocka_unit_test(test_forget_many),
		cmocka_unit_test(test_fold_other_after_rehash),
		cmocka_unit_test(test_fold_after_clear),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
