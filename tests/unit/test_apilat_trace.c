/*
 * apilat's trace, the pure parts: durations as --slow takes them, and a
 * kernel record turned into the JSON fields and the text column.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "apilat_trace.h"

static void test_durations(void **state)
{
	uint64_t ns = 7;

	(void)state;
	assert_int_equal(apilat_parse_duration("250ms", &ns), 0);
	assert_int_equal(ns, 250000000ULL);
	assert_int_equal(apilat_parse_duration("1s", &ns), 0);
	assert_int_equal(ns, 1000000000ULL);
	assert_int_equal(apilat_parse_duration("500us", &ns), 0);
	assert_int_equal(ns, 500000ULL);
	assert_int_equal(apilat_parse_duration("1.5s", &ns), 0);
	assert_int_equal(ns, 1500000000ULL);
	assert_int_equal(apilat_parse_duration("0.25ms", &ns), 0);
	assert_int_equal(ns, 250000ULL);
	assert_int_equal(apilat_parse_duration("2m", &ns), 0);
	assert_int_equal(ns, 120000000000ULL);
	assert_int_equal(apilat_parse_duration("1h", &ns), 0);
	assert_int_equal(ns, 3600000000000ULL);
	assert_int_equal(apilat_parse_duration("800ns", &ns), 0);
	assert_int_equal(ns, 800ULL);
	assert_int_equal(apilat_parse_duration("0", &ns), 0);
	assert_int_equal(ns, 0);

	assert_int_equal(apilat_parse_duration("", &ns), -EINVAL);
	assert_int_equal(apilat_parse_duration("100", &ns), -EINVAL);
	assert_int_equal(apilat_parse_duration("ms", &ns), -EINVAL);
	assert_int_equal(apilat_parse_duration("-1s", &ns), -EINVAL);
	assert_int_equal(apilat_parse_duration("1 s", &ns), -EINVAL);
	assert_int_equal(apilat_parse_duration("1sec", &ns), -EINVAL);
	assert_int_equal(apilat_parse_duration("1.s", &ns), -EINVAL);
	assert_int_equal(apilat_parse_duration(".5s", &ns), -EINVAL);
	assert_int_equal(apilat_parse_duration("99999999999h", &ns), -ERANGE);
	assert_int_equal(apilat_parse_duration(NULL, &ns), -EINVAL);
}

static struct apilat_trace_event record(uint8_t phase, uint8_t family)
{
	struct apilat_trace_event e = {
		.client = { .cgroup_id = 42, .comm = "kubectl" },
		.boot_ns = 1000,
		.duration_ns = 212345678,
		.sent_bytes = 517,
		.received_bytes = 70000,
		.sport = 40000,
		.dport = 6443,
		.pid = 4242,
		.phase = phase,
		.family = family,
	};

	if (family == 4) {
		memcpy(e.saddr, (uint8_t[]){ 10, 0, 0, 7 }, 4);
		memcpy(e.daddr, (uint8_t[]){ 10, 96, 0, 1 }, 4);
	} else {
		e.saddr[0] = 0xfd;
		e.saddr[15] = 7;
		e.daddr[0] = 0xfd;
		e.daddr[15] = 1;
	}
	return e;
}

static const char *field(json_object *obj, const char *key)
{
	json_object *v;

	assert_true(json_object_object_get_ex(obj, key, &v));
	return v ? json_object_get_string(v) : "null";
}

static void test_describe_response(void **state)
{
	struct apilat_trace_event e = record(APILAT_TRACE_RESPONSE, 4);
	json_object *obj = json_object_new_object();
	char details[256];

	(void)state;
	assert_int_equal(apilat_trace_describe(&e, obj, details, sizeof(details)), 0);
	assert_string_equal(field(obj, "phase"), "response");
	assert_string_equal(field(obj, "local"), "10.0.0.7:40000");
	assert_string_equal(field(obj, "remote"), "10.96.0.1:6443");
	assert_string_equal(field(obj, "duration_ns"), "212345678");
	assert_string_equal(field(obj, "sent_bytes"), "517");
	assert_string_equal(field(obj, "received_bytes"), "70000");
	assert_string_equal(field(obj, "cause"), "null");
	assert_string_equal(details, "response 212.346ms 10.0.0.7:40000 > 10.96.0.1:6443 sent=517 received=70000");
	json_object_put(obj);
}

static void test_describe_ipv6_connect_failure(void **state)
{
	struct apilat_trace_event e = record(APILAT_TRACE_CONNECT, 6);
	json_object *obj = json_object_new_object();
	char details[256];

	(void)state;
	e.duration_ns = 150000;
	assert_int_equal(apilat_trace_describe(&e, obj, details, sizeof(details)), 0);
	assert_string_equal(field(obj, "phase"), "connect");
	assert_string_equal(field(obj, "local"), "[fd00::7]:40000");
	assert_string_equal(field(obj, "remote"), "[fd00::1]:6443");
	assert_string_equal(details, "connect 0.150ms [fd00::7]:40000 > [fd00::1]:6443");
	json_object_put(obj);

	e = record(APILAT_TRACE_FAILURE, 4);
	e.cause = APILAT_FAIL_REFUSED;
	e.sport = 0; /* a connect refused before a port was bound shows none */
	e.duration_ns = 3000000000ULL;
	obj = json_object_new_object();
	assert_int_equal(apilat_trace_describe(&e, obj, details, sizeof(details)), 0);
	assert_string_equal(field(obj, "phase"), "failure");
	assert_string_equal(field(obj, "cause"), "refused");
	assert_string_equal(details, "failure 3000.000ms 10.0.0.7:0 > 10.96.0.1:6443 cause=refused");
	json_object_put(obj);
}

static void test_describe_bad(void **state)
{
	struct apilat_trace_event e = record(APILAT_TRACE_NR, 4);
	json_object *obj = json_object_new_object();
	char details[256];

	(void)state;
	assert_int_equal(apilat_trace_describe(&e, obj, details, sizeof(details)), -EINVAL);
	e = record(APILAT_TRACE_FAILURE, 4);
	e.cause = APILAT_FAIL_NR;
	assert_int_equal(apilat_trace_describe(&e, obj, details, sizeof(details)), -EINVAL);
	e = record(APILAT_TRACE_RESPONSE, 5);
	assert_int_equal(apilat_trace_describe(&e, obj, details, sizeof(details)), -EINVAL);
	json_object_put(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_describe_response),
		cmocka_unit_test(test_describe_ipv6_connect_failure),
		cmocka_unit_test(test_describe_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
