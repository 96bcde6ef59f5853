/* Unit tests for user/k8s/event_log.c: the --events-log JSON line, its escaping, the file. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "event_log.h"
#include "strbuf.h"

/* 2026-09-30T10:15:02.345Z */
#define T_NS (1790763302LL * 1000000000LL + 345678901LL)

static const struct k8s_event oom_ev = {
	.type = "Warning",
	.reason = "ProcessOOMKilled",
	.message = "Memory cgroup out of memory: killed process 4242 (memhog)",
	.object = { .kind = "Pod", .namespace_ = "shop", .name = "cart-1", .uid = "7a1c2d3e",
		    .field_path = "spec.containers{cart}" },
	.time_ns = T_NS,
};

static char *line_of(const struct event_log_entry *e)
{
	struct strbuf sb = STRBUF_INIT;

	assert_int_equal(event_log_line(e, &sb), 0);
	return sb.buf;
}

static void test_line_fields(void **state)
{
	struct event_log_entry e = { .ev = &oom_ev, .time_ns = T_NS, .count = 3, .node = "node-a",
				     .outcome = "patched", .event_name = "cart-1.18a2b3c4d5e6f7a8" };
	char *s = line_of(&e);

	(void)state;
	assert_string_equal(s,
		"{\"timestamp\":\"2026-09-30T10:15:02.345Z\",\"type\":\"Warning\",\"reason\":\"ProcessOOMKilled\","
		"\"message\":\"Memory cgroup out of memory: killed process 4242 (memhog)\","
		"\"involvedObject\":{\"kind\":\"Pod\",\"namespace\":\"shop\",\"name\":\"cart-1\",\"uid\":\"7a1c2d3e\","
		"\"fieldPath\":\"spec.containers{cart}\"},\"count\":3,\"node\":\"node-a\",\"outcome\":\"patched\","
		"\"event\":{\"namespace\":\"shop\",\"name\":\"cart-1.18a2b3c4d5e6f7a8\"}}\n");
	free(s);
}

/* A cluster-scoped object: no namespace, no fieldPath; an occurrence with no Event object */
static void test_line_node_no_event(void **state)
{
	struct k8s_event ev = { .type = "Warning", .reason = "FilesystemShutDown", .message = "m",
				.object = { .kind = "Node", .name = "node-a", .uid = "node-a" } };
	struct event_log_entry e = { .ev = &ev, .time_ns = 0, .count = 1, .node = "node-a",
				     .outcome = "not_posted" };
	char *s = line_of(&e);

	(void)state;
	assert_string_equal(s,
		"{\"timestamp\":\"1970-01-01T00:00:00.000Z\",\"type\":\"Warning\",\"reason\":\"FilesystemShutDown\","
		"\"message\":\"m\",\"involvedObject\":{\"kind\":\"Node\",\"name\":\"node-a\",\"uid\":\"node-a\"},"
		"\"count\":1,\"node\":\"node-a\",\"outcome\":\"not_posted\"}\n");
	free(s);
}

/* Quotes, backslashes, control bytes, DEL, multi-byte UTF-8 kept, invalid bytes -> U+FFFD */
static void test_line_escaping(void **state)
{
	struct k8s_event ev = oom_ev;
	struct event_log_entry e = { .ev = &ev, .time_ns = T_NS, .count = 1, .node = "n\"1", .outcome = "created" };
	const char msg[] = "a\"b\\c\n\t\r\x01\x1f\x7f caf\xc3\xa9 \xe2\x82\xac bad\xff\xc3 end";
	struct json_object *root, *v;
	char *s;

	(void)state;
	ev.message = msg;
	ev.object.name = "cart/\"1\"";
	s = line_of(&e);
	assert_non_null(strstr(s, "\"message\":\"a\\\"b\\\\c\\n\\t\\r\\u0001\\u001f\\u007f caf\xc3\xa9 \xe2\x82\xac "
				  "bad\\ufffd\\ufffd end\""));
	assert_non_null(strstr(s, "\"node\":\"n\\\"1\""));
	/* a JSON parser reads back what went in */
	root = json_tokener_parse(s);
	assert_non_null(root);
	assert_true(json_object_object_get_ex(root, "involvedObject", &v));
	assert_true(json_object_object_get_ex(v, "name", &v));
	assert_string_equal(json_object_get_string(v), "cart/\"1\"");
	assert_true(json_object_object_get_ex(root, "node", &v));
	assert_string_equal(json_object_get_string(v), "n\"1");
	json_object_put(root);
	/* one line: the only newline is the last byte */
	assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1);
	free(s);
}

/* NULL strings are empty, a missing object or outcome is refused */
static void test_line_missing(void **state)
{
	struct k8s_event ev = { .object = { .kind = "Pod", .name = "p" } };
	struct event_log_entry e = { .ev = &ev, .count = 1, .outcome = "created" };
	struct strbuf sb = STRBUF_INIT;
	char *s;

	(void)state;
	s = line_of(&e);
	assert_non_null(strstr(s, "\"type\":\"\",\"reason\":\"\",\"message\":\"\""));
	assert_non_null(strstr(s, "\"node\":\"\""));
	free(s);
	e.outcome = NULL;
	assert_int_equal(event_log_line(&e, &sb), -EINVAL);
	e.outcome = "created";
	e.ev = NULL;
	assert_int_equal(event_log_line(&e, &sb), -EINVAL);
	strbuf_free(&sb);
}

/* A negative time is refused; the largest one is still a date */
static void test_line_time_bounds(void **state)
{
	struct event_log_entry e = { .ev = &oom_ev, .count = 1, .node = "n", .outcome = "created" };
	struct strbuf sb = STRBUF_INIT;

	(void)state;
	e.time_ns = -1;
	assert_int_equal(event_log_line(&e, &sb), -EINVAL);
	e.time_ns = INT64_MAX;
	assert_int_equal(event_log_line(&e, &sb), 0);
	assert_non_null(strstr(sb.buf, "\"timestamp\":\"2262-04-11T23:47:16.854Z\""));
	strbuf_free(&sb);
}

/* The file: appended, one line per entry, "-" is stdout */
static void test_file(void **state)
{
	char path[] = "/tmp/ksight-event-log-XXXXXX";
	struct event_log_entry e = { .ev = &oom_ev, .time_ns = T_NS, .count = 1, .node = "n", .outcome = "created" };
	struct event_log *log;
	char buf[4096];
	FILE *f;
	int fd, n = 0;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "old\n", 4), 4);
	close(fd);
	assert_int_equal(event_log_open(path, &log), 0);
	event_log_write(log, &e);
	e.outcome = "patched";
	event_log_write(log, &e);
	event_log_close(log);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(buf, sizeof(buf), f)) {
		if (n == 0)
			assert_string_equal(buf, "old\n");
		else
			assert_non_null(strstr(buf, n == 1 ? "\"outcome\":\"created\"}" : "\"outcome\":\"patched\"}"));
		n++;
	}
	fclose(f);
	unlink(path);
	assert_int_equal(n, 3);

	assert_int_equal(event_log_open("/nonexistent-dir/x.log", &log), -ENOENT);
	assert_int_equal(event_log_open("-", &log), 0);
	event_log_close(log); /* stdout stays open */
	assert_true(fcntl(STDOUT_FILENO, F_GETFD) != -1);
	event_log_close(NULL);
	event_log_write(NULL, &e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_fields),
		cmocka_unit_test(test_line_node_no_event),
		cmocka_unit_test(test_line_escaping),
		cmocka_unit_test(test_line_missing),
		cmocka_unit_test(test_line_time_bounds),
		cmocka_unit_test(test_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
