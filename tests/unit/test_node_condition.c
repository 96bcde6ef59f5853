/* The Node condition PATCH: its body, path, and reading a Node's condition back. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "node_condition.h"
#include "strbuf.h"

#define T0 1764590400LL /* 2025-12-01T12:00:00Z */
#define NS 1000000000LL

static json_object *parse_body(const struct node_condition *c)
{
	struct strbuf sb = STRBUF_INIT;
	json_object *root;

	assert_int_equal(node_condition_patch_body(c, &sb), 0);
	root = json_tokener_parse(sb.buf);
	assert_non_null(root);
	strbuf_free(&sb);
	return root;
}

static const char *field(json_object *o, const char *key)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_string(v);
}

static void test_body_is_one_condition_under_status(void **state)
{
	struct node_condition c = { .type = NODE_CONDITION_FS_TYPE, .status = true,
				    .reason = "FilesystemCorruptionDetected", .message = "loop3 (ext4 at /mnt/a): corruption",
				    .heartbeat_ns = (T0 + 30) * NS + 999, .transition_ns = T0 * NS };
	json_object *root = parse_body(&c), *status, *conds, *cond;

	/* nothing but status.conditions: a strategic merge then touches only this type's entry */
	assert_int_equal(json_object_object_length(root), 1);
	assert_true(json_object_object_get_ex(root, "status", &status));
	assert_int_equal(json_object_object_length(status), 1);
	assert_true(json_object_object_get_ex(status, "conditions", &conds));
	assert_int_equal(json_object_array_length(conds), 1);
	cond = json_object_array_get_idx(conds, 0);
	assert_int_equal(json_object_object_length(cond), 6);
	assert_string_equal(field(cond, "type"), "KsightFilesystemCorruption");
	assert_string_equal(field(cond, "status"), "True");
	assert_string_equal(field(cond, "reason"), "FilesystemCorruptionDetected");
	assert_string_equal(field(cond, "message"), "loop3 (ext4 at /mnt/a): corruption");
	assert_string_equal(field(cond, "lastHeartbeatTime"), "2025-12-01T12:00:30Z");
	assert_string_equal(field(cond, "lastTransitionTime"), "2025-12-01T12:00:00Z");
	json_object_put(root);

	c.status = false;
	root = parse_body(&c);
	json_object_object_get_ex(root, "status", &status);
	json_object_object_get_ex(status, "conditions", &conds);
	assert_string_equal(field(json_object_array_get_idx(conds, 0), "status"), "False");
	json_object_put(root);
}

/* mount points are bytes: the body is valid UTF-8, the message bounded, quotes escaped */
static void test_body_message_made_safe(void **state)
{
	char long_msg[4096];
	struct node_condition c = { .type = "T", .status = true, .reason = "R", .message = "at /mnt/\xff\"x\"",
				    .heartbeat_ns = T0 * NS, .transition_ns = T0 * NS };
	json_object *root = parse_body(&c), *status, *conds;
	const char *m;

	json_object_object_get_ex(root, "status", &status);
	json_object_object_get_ex(status, "conditions", &conds);
	m = field(json_object_array_get_idx(conds, 0), "message");
	assert_string_equal(m, "at /mnt/\xef\xbf\xbd\"x\"");
	json_object_put(root);

	memset(long_msg, 'a', sizeof(long_msg) - 1);
	long_msg[sizeof(long_msg) - 1] = '\0';
	c.message = long_msg;
	root = parse_body(&c);
	json_object_object_get_ex(root, "status", &status);
	json_object_object_get_ex(status, "conditions", &conds);
	assert_int_equal(strlen(field(json_object_array_get_idx(conds, 0), "message")), NODE_CONDITION_MESSAGE_MAX);
	json_object_put(root);
}

static void test_body_needs_type_and_reason(void **state)
{
	struct node_condition c = { .type = "", .status = true, .reason = "R", .message = "" };
	struct strbuf sb = STRBUF_INIT;

	assert_int_equal(node_condition_patch_body(&c, &sb), -EINVAL);
	c.type = "T";
	c.reason = NULL;
	assert_int_equal(node_condition_patch_body(&c, &sb), -EINVAL);
	strbuf_free(&sb);
}

static void test_path(void **state)
{
	char path[300];

	assert_int_equal(node_condition_path("node-1", path, sizeof(path)), 0);
	assert_string_equal(path, "/api/v1/nodes/node-1/status");
	assert_int_equal(node_condition_path("ip-10-0-0-1.ec2.internal", path, sizeof(path)), 0);
	assert_string_equal(path, "/api/v1/nodes/ip-10-0-0-1.ec2.internal/status");
	assert_int_equal(node_condition_path("", path, sizeof(path)), -EINVAL);
	assert_int_equal(node_condition_path("a/b", path, sizeof(path)), -EINVAL);
	assert_int_equal(node_condition_path("a?b", path, sizeof(path)), -EINVAL);
	assert_int_equal(node_condition_path("node-1", path, 10), -ENAMETOOLONG);
}

static const char node_json[] =
	"{\"kind\":\"Node\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"n\"},\"status\":{\"conditions\":["
	"{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"2025-01-01T00:00:00Z\"},"
	"{\"type\":\"KsightFilesystemCorruption\",\"status\":\"False\",\"reason\":\"NoFilesystemCorruption\","
	"\"lastHeartbeatTime\":\"2025-12-01T12:05:00Z\",\"lastTransitionTime\":\"2025-12-01T12:00:00Z\"}]}}";

static void test_find(void **state)
{
	bool status = true;
	int64_t t = -1;

	assert_int_equal(node_condition_find(node_json, strlen(node_json), NODE_CONDITION_FS_TYPE, &status, &t), 0);
	assert_false(status);
	assert_int_equal(t, T0 * NS);
	assert_int_equal(node_condition_find(node_json, strlen(node_json), "Ready", &status, &t), 0);
	assert_true(status);
	assert_int_equal(node_condition_find(node_json, strlen(node_json), "DiskPressure", &status, &t), -ENOENT);
	assert_int_equal(node_condition_find("{\"kind\":\"Node\"}", 15, "Ready", &status, &t), -ENOENT);
	assert_int_equal(node_condition_find("[1,2]", 5, "Ready", &status, &t), -EINVAL);
	assert_int_equal(node_condition_find("{\"status\":", 10, "Ready", &status, &t), -EINVAL);
}

/* a time that is not RFC 3339: the condition is found, its time unknown */
static void test_find_bad_time(void **state)
{
	static const char j[] = "{\"status\":{\"conditions\":[{\"type\":\"X\",\"status\":\"True\","
				"\"lastTransitionTime\":\"yesterday\"}]}}";
	bool status = false;
	int64_t t = -1;

	assert_int_equal(node_condition_find(j, strlen(j), "X", &status, &t), 0);
	assert_true(status);
	assert_int_equal(t, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_is_one_condition_under_status),
		cmocka_unit_test(test_body_message_made_safe),
		cmocka_unit_test(test_body_needs_type_and_reason),
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_find_bad_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
