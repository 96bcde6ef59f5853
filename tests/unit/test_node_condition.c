/*
 * The Node condition PATCH: its body, path, and reading a Node's condition
 * back; then the sender thread against a scripted fake of k8s_client.h
 * (defined below, so no network): nothing before the first state, one
 * PATCH per change, lastTransitionTime only on a flip (and the Node's own
 * kept at start-up), failures retried and counted.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "k8s_client.h"
#include "metrics.h"
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

/* ---- the sender, against a fake k8s_client ---- */

struct k8s_client {
	int unused;
};

#define FAKE_MAX 32

static struct {
	pthread_mutex_t lock;
	char method[FAKE_MAX][8];
	char path[FAKE_MAX][128];
	char content_type[FAKE_MAX][64];
	char *body[FAKE_MAX];
	size_t n;
	long status[FAKE_MAX];     /* answers in order; 0: 200 */
	const char *answer[FAKE_MAX];
	size_t n_script, next;
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct k8s_client *k8s_client_new(const struct k8s_config *cfg, const char *user_agent)
{
	return calloc(1, sizeof(struct k8s_client));
}

void k8s_client_free(struct k8s_client *c)
{
	free(c);
}

void k8s_response_free(struct k8s_response *resp)
{
	strbuf_free(&resp->body);
}

int k8s_request(struct k8s_client *c, const char *method, const char *path, const char *content_type,
		const char *body, size_t max_body, long timeout_ms, struct k8s_response *resp)
{
	long status = 200;
	const char *answer = "{}";

	pthread_mutex_lock(&fake.lock);
	assert_true(fake.n < FAKE_MAX);
	snprintf(fake.method[fake.n], sizeof(fake.method[0]), "%s", method);
	snprintf(fake.path[fake.n], sizeof(fake.path[0]), "%s", path);
	snprintf(fake.content_type[fake.n], sizeof(fake.content_type[0]), "%s", content_type ? content_type : "");
	fake.body[fake.n++] = strdup(body ? body : "");
	if (fake.next < fake.n_script) {
		status = fake.status[fake.next] ? fake.status[fake.next] : 200;
		answer = fake.answer[fake.next] ? fake.answer[fake.next] : "{}";
		fake.next++;
	}
	pthread_mutex_unlock(&fake.lock);
	resp->status = status;
	resp->retry_after_s = -1;
	resp->error[0] = '\0';
	strbuf_puts(&resp->body, answer);
	return 0;
}

static void fake_reset(void)
{
	size_t i;

	pthread_mutex_lock(&fake.lock);
	for (i = 0; i < fake.n; i++)
		free(fake.body[i]);
	fake.n = fake.n_script = fake.next = 0;
	pthread_mutex_unlock(&fake.lock);
}

static void fake_answer(long status, const char *body)
{
	fake.status[fake.n_script] = status;
	fake.answer[fake.n_script++] = body;
}

static size_t fake_count(void)
{
	size_t n;

	pthread_mutex_lock(&fake.lock);
	n = fake.n;
	pthread_mutex_unlock(&fake.lock);
	return n;
}

/* Wait until there are n requests (5 s at most); then no more for a while. */
static void wait_requests(size_t n)
{
	int i;

	for (i = 0; i < 500 && fake_count() < n; i++)
		usleep(10000);
	usleep(100000);
	assert_int_equal(fake_count(), n);
}

/* Field of the condition in PATCH number i. */
static void patch_field(size_t i, const char *key, char *out, size_t len)
{
	json_object *root, *status, *conds, *v;

	assert_string_equal(fake.method[i], "PATCH");
	assert_string_equal(fake.path[i], "/api/v1/nodes/node-1/status");
	assert_string_equal(fake.content_type[i], "application/strategic-merge-patch+json");
	root = json_tokener_parse(fake.body[i]);
	assert_non_null(root);
	assert_true(json_object_object_get_ex(root, "status", &status));
	assert_true(json_object_object_get_ex(status, "conditions", &conds));
	assert_true(json_object_object_get_ex(json_object_array_get_idx(conds, 0), key, &v));
	snprintf(out, len, "%s", json_object_get_string(v));
	json_object_put(root);
}

static bool rendered(struct metrics_registry *reg, const char *line)
{
	struct strbuf sb = STRBUF_INIT;
	bool found;

	assert_int_equal(metrics_render(reg, &sb), 0);
	found = sb.buf && strstr(sb.buf, line);
	strbuf_free(&sb);
	return found;
}

static const char node_with_ours_false[] =
	"{\"kind\":\"Node\",\"status\":{\"conditions\":[{\"type\":\"KsightFilesystemCorruption\","
	"\"status\":\"False\",\"lastTransitionTime\":\"2025-12-01T12:00:00Z\"}]}}";

static void test_sender(void **state)
{
	struct k8s_config cfg = { .server = "https://127.0.0.1:6443" };
	struct metrics_registry *reg = metrics_registry_new(1000);
	struct node_condition_sender *s;
	char v[64], first_true[64];

	fake_reset();
	assert_non_null(reg);
	/* the GET finds our condition False since T0 (an agent restarted) */
	fake_answer(200, node_with_ours_false);
	s = node_condition_start(&cfg, "node-1", NODE_CONDITION_FS_TYPE, reg);
	assert_non_null(s);
	/* nothing is written before the first state */
	wait_requests(1);
	assert_string_equal(fake.method[0], "GET");
	assert_string_equal(fake.path[0], "/api/v1/nodes/node-1/status");

	node_condition_set(s, false, "NoFilesystemCorruption", "none");
	wait_requests(2);
	patch_field(1, "status", v, sizeof(v));
	assert_string_equal(v, "False");
	patch_field(1, "lastTransitionTime", v, sizeof(v));
	assert_string_equal(v, "2025-12-01T12:00:00Z"); /* the Node's own: not a flip */
	patch_field(1, "reason", v, sizeof(v));
	assert_string_equal(v, "NoFilesystemCorruption");

	/* the same state again: nothing to write */
	node_condition_set(s, false, "NoFilesystemCorruption", "none");
	wait_requests(2);

	/* a flip: a new transition time */
	node_condition_set(s, true, "FilesystemCorruptionDetected", "loop3: corruption");
	wait_requests(3);
	patch_field(2, "status", v, sizeof(v));
	assert_string_equal(v, "True");
	patch_field(2, "lastTransitionTime", first_true, sizeof(first_true));
	assert_string_not_equal(first_true, "2025-12-01T12:00:00Z");
	patch_field(2, "message", v, sizeof(v));
	assert_string_equal(v, "loop3: corruption");

	/* still True, another message: written, the transition time stays */
	sleep(1);
	node_condition_set(s, true, "FilesystemShutDown", "loop3: corruption; loop4: shutdown");
	wait_requests(4);
	patch_field(3, "lastTransitionTime", v, sizeof(v));
	assert_string_equal(v, first_true);
	patch_field(3, "reason", v, sizeof(v));
	assert_string_equal(v, "FilesystemShutDown");
	assert_true(rendered(reg, "ksight_k8s_node_condition_updates_total{result=\"success\"} 3"));

	/* a 500, then a 403: both retried with backoff and counted, then written */
	fake_answer(500, "{}");
	fake_answer(403, "{}");
	node_condition_set(s, false, "NoFilesystemCorruption", "none");
	wait_requests(7);
	patch_field(6, "status", v, sizeof(v));
	assert_string_equal(v, "False");
	assert_true(rendered(reg, "ksight_k8s_node_condition_updates_total{result=\"failed\"} 1"));
	assert_true(rendered(reg, "ksight_k8s_node_condition_updates_total{result=\"rejected\"} 1"));
	assert_true(rendered(reg, "ksight_k8s_node_condition_updates_total{result=\"success\"} 4"));

	node_condition_stop(s);
	metrics_registry_free(reg);
	fake_reset();
}

/* the Node has our condition True: starting False is a flip, so the time is now */
static void test_sender_flip_at_start(void **state)
{
	static const char node_true[] =
		"{\"status\":{\"conditions\":[{\"type\":\"KsightFilesystemCorruption\",\"status\":\"True\","
		"\"lastTransitionTime\":\"2025-12-01T12:00:00Z\"}]}}";
	struct k8s_config cfg = { .server = "https://127.0.0.1:6443" };
	struct node_condition_sender *s;
	char v[64];

	fake_reset();
	fake_answer(200, node_true);
	s = node_condition_start(&cfg, "node-1", NODE_CONDITION_FS_TYPE, NULL);
	assert_non_null(s);
	node_condition_set(s, false, "NoFilesystemCorruption", "none");
	wait_requests(2);
	patch_field(1, "lastTransitionTime", v, sizeof(v));
	assert_string_not_equal(v, "2025-12-01T12:00:00Z");
	node_condition_stop(s);
	fake_reset();
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
		cmocka_unit_test(test_sender),
		cmocka_unit_test(test_sender_flip_at_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
