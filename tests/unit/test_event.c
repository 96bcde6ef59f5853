/* The shared event fields: cgroup path assembly, timestamps, sizes, the common JSON keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <linux/types.h>

#include "agent.h"
#include "common.h"
#include "event.h"
#include "util.h"
#include "utf8.h"

static void set_names(struct ksight_cgroup *cg, const char *const *leaf_first, int n)
{
	int i;

	memset(cg, 0, sizeof(*cg));
	for (i = 0; i < n; i++)
		snprintf(cg->names[i], KSIGHT_CGROUP_NAME_LEN, "%s", leaf_first[i]);
	cg->depth = (__u32)n;
}

static void test_cgroup_path(void **state)
{
	static const char *const names[] = { "cid", "pod1", "burstable", "kubepods" };
	struct ksight_cgroup cg;
	char path[1024];

	set_names(&cg, names, 4);
	cgroup_path_from_kernel(&cg, path, sizeof(path));
	assert_string_equal(path, "/kubepods/burstable/pod1/cid");

	set_names(&cg, names, 0);
	cgroup_path_from_kernel(&cg, path, sizeof(path));
	assert_string_equal(path, "/");

	set_names(&cg, names, 2);
	cg.truncated = 1;
	cgroup_path_from_kernel(&cg, path, sizeof(path));
	assert_string_equal(path, "/.../pod1/cid");

	/* a name without NUL (kernel filled all 96 bytes) stays bounded */
	set_names(&cg, names, 1);
	memset(cg.names[0], 'x', KSIGHT_CGROUP_NAME_LEN);
	cgroup_path_from_kernel(&cg, path, sizeof(path));
	assert_int_equal(strlen(path), KSIGHT_CGROUP_NAME_LEN + 1);

	/* a small buffer truncates, never overflows */
	set_names(&cg, names, 4);
	cgroup_path_from_kernel(&cg, path, 10);
	assert_int_equal(strlen(path), 9);
}

static void test_rfc3339(void **state)
{
	char out[48];

	format_rfc3339_ns(0, out, sizeof(out));
	assert_string_equal(out, "1970-01-01T00:00:00.000000000Z");
	format_rfc3339_ns(1700000000123456789LL, out, sizeof(out));
	assert_string_equal(out, "2023-11-14T22:13:20.123456789Z");
	format_rfc3339_ns(1700000000000000001LL, out, sizeof(out));
	assert_string_equal(out, "2023-11-14T22:13:20.000000001Z");
}

static void test_bytes(void **state)
{
	char out[32];

	format_bytes(0, out, sizeof(out));
	assert_string_equal(out, "0B");
	format_bytes(1023, out, sizeof(out));
	assert_string_equal(out, "1023B");
	format_bytes(1024, out, sizeof(out));
	assert_string_equal(out, "1.0KiB");
	format_bytes(32 << 20, out, sizeof(out));
	assert_string_equal(out, "32.0MiB");
	format_bytes(3ULL << 40, out, sizeof(out));
	assert_string_equal(out, "3.0TiB");
}

static int64_t one_second(void)
{
	return 1000000000;
}

/* no fixed offset: the clocks are read at each event, so a clock step is followed */
static void test_wall_time_read_per_event(void **state)
{
	struct agent agent = { 0 };
	int64_t want = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME);
	int64_t got = event_wall_ns(&agent, 0);

	assert_true(got - want < 10 * NSEC_PER_MSEC && want - got < 10 * NSEC_PER_MSEC);
	assert_true(event_wall_ns(&agent, 5) - event_wall_ns(&agent, 0) < 10 * NSEC_PER_MSEC);
}

static void test_common_json(void **state)
{
	struct agent_config cfg = { .mode = MODE_TRACE, .format = OUTPUT_JSON };
	struct agent agent = { .cfg = &cfg, .node = "n1", .boot_to_wall_ns = one_second };
	struct event_common ev = { .signal = "oom", .boot_ns = 5, .pid = 7, .comm = "a\"b",
				   .namespace_ = "ns", .pod = "p", .container = "c" };
	static const char *const keys[] = { "time", "signal", "node", "pid", "comm", "namespace", "pod",
					    "container", "pod_uid", "container_id", "cgroup" };
	json_object *obj, *v;
	size_t i;

	event_set_cgroup(&ev, "/kubepods/besteffort/pod6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab");
	obj = event_json(&agent, &ev);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_true(json_object_object_get_ex(obj, keys[i], &v));
	json_object_object_get_ex(obj, "time", &v);
	assert_string_equal(json_object_get_string(v), "1970-01-01T00:00:01.000000005Z");
	json_object_object_get_ex(obj, "pod_uid", &v);
	assert_string_equal(json_object_get_string(v), "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab");
	json_object_object_get_ex(obj, "container_id", &v);
	assert_string_equal(json_object_get_string(v), "");
	json_object_object_get_ex(obj, "comm", &v);
	assert_string_equal(json_object_get_string(v), "a\"b");
	assert_non_null(strstr(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN), "\"a\\\"b\""));
	json_object_put(obj);

	/* kernel bytes that are not UTF-8 become U+FFFD: every line stays valid JSON */
	ev.comm = "bad\xff\xfe";
	obj = event_json(&agent, &ev);
	json_object_object_get_ex(obj, "comm", &v);
	assert_string_equal(json_object_get_string(v), "bad\xef\xbf\xbd\xef\xbf\xbd");
	json_object_put(obj);

	/* outside pods the identity is empty */
	event_set_cgroup(&ev, "/system.slice/sshd.service");
	assert_string_equal(ev.id.pod_uid, "");
	assert_string_equal(ev.cgroup, "/system.slice/sshd.service");
}

static void test_utf8_sanitize(void **state)
{
	char out[16];

	utf8_sanitize("ok \xc3\xbc", out, sizeof(out));
	assert_string_equal(out, "ok \xc3\xbc");
	utf8_sanitize("\x80x", out, sizeof(out));
	assert_string_equal(out, "\xef\xbf\xbdx");
	/* truncation never splits a character */
	utf8_sanitize("abcdefghijklm\xc3\xbc", out, sizeof(out)); /* 15 bytes + NUL fit */
	assert_string_equal(out, "abcdefghijklm\xc3\xbc");
	utf8_sanitize("abcdefghijklmn\xc3\xbc", out, sizeof(out)); /* the 2-byte one does not */
	assert_string_equal(out, "abcdefghijklmn");
	utf8_sanitize("", out, sizeof(out));
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroup_path),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_common_json),
		cmocka_unit_test(test_wall_time_read_per_event),
		cmocka_unit_test(test_utf8_sanitize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
