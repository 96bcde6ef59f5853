/*
 * Unit tests for user/k8s/event_log.c: the --events-log JSON line, its
 * escaping, the file; and the lines the Event recorder writes for each
 * outcome, against a scripted fake of k8s_client.h (defined below).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include <pthread.h>

#include "event_log.h"
#include "event_recorder.h"
#include "k8s_client.h"
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

/* ---- the recorder's lines, against a fake API client ---- */

struct k8s_client {
	int unused;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool gate_closed;       /* requests wait until it opens */
	long post_status;       /* the answer to every POST; 0: 201 */
	char last_post[4096];
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

struct k8s_client *k8s_client_new(const struct k8s_config *cfg, const char *user_agent)
{
	(void)cfg;
	(void)user_agent;
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
	bool post = !strcmp(method, "POST");

	(void)c;
	(void)path;
	(void)content_type;
	(void)max_body;
	(void)timeout_ms;
	pthread_mutex_lock(&fake.lock);
	while (fake.gate_closed)
		pthread_cond_wait(&fake.cond, &fake.lock);
	if (post)
		snprintf(fake.last_post, sizeof(fake.last_post), "%s", body ? body : "");
	resp->status = post ? (fake.post_status ? fake.post_status : 201) : 200;
	pthread_mutex_unlock(&fake.lock);
	resp->retry_after_s = -1;
	resp->truncated = 0;
	resp->error[0] = '\0';
	strbuf_puts(&resp->body, "{\"metadata\":{\"resourceVersion\":\"7\"}}");
	return 0;
}

static void fake_gate(bool closed)
{
	pthread_mutex_lock(&fake.lock);
	fake.gate_closed = closed;
	pthread_cond_broadcast(&fake.cond);
	pthread_mutex_unlock(&fake.lock);
}

static const struct k8s_config fake_cfg = { .server = "https://10.96.0.1:443" };

struct rec_log {
	char path[64];
	struct event_log *log;
	struct event_recorder *r;
};

static void rec_log_start(struct rec_log *f, size_t cap)
{
	int fd;

	snprintf(f->path, sizeof(f->path), "/tmp/ksight-event-log-rec-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(event_log_open(f->path, &f->log), 0);
	f->r = event_recorder_start(&fake_cfg, "ksight", "node-1", NULL, cap);
	assert_non_null(f->r);
	event_recorder_set_log(f->r, f->log);
}

/* Stop everything; the lines' "outcome/count" joined by spaces into buf. */
static void rec_log_end(struct rec_log *f, char *buf, size_t len, char *event_names, size_t names_len)
{
	struct json_object *o, *v, *e;
	char line[8192];
	FILE *in;

	event_recorder_stop(f->r);
	event_log_close(f->log);
	buf[0] = '\0';
	if (event_names)
		event_names[0] = '\0';
	in = fopen(f->path, "r");
	assert_non_null(in);
	while (fgets(line, sizeof(line), in)) {
		o = json_tokener_parse(line);
		assert_non_null(o);
		assert_true(json_object_object_get_ex(o, "outcome", &v));
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? " " : "", json_object_get_string(v));
		assert_true(json_object_object_get_ex(o, "count", &v));
		snprintf(buf + strlen(buf), len - strlen(buf), "/%d", json_object_get_int(v));
		assert_true(json_object_object_get_ex(o, "node", &v));
		assert_string_equal(json_object_get_string(v), "node-1");
		if (event_names) {
			const char *name = "-";

			if (json_object_object_get_ex(o, "event", &e) && json_object_object_get_ex(e, "name", &v))
				name = json_object_get_string(v);
			snprintf(event_names + strlen(event_names), names_len - strlen(event_names), "%s%s",
				 event_names[0] ? " " : "", name);
		}
		json_object_put(o);
	}
	fclose(in);
	unlink(f->path);
	fake.post_status = 0;
}

/* POSTed, then PATCHed: the Event object's name and count; its name is the one POSTed */
static void test_recorder_created_patched(void **state)
{
	struct k8s_event ev = oom_ev;
	char got[512], names[512], want[512];
	struct json_object *post, *meta, *name;
	struct rec_log f;

	(void)state;
	rec_log_start(&f, 0);
	event_recorder_record(f.r, &ev);
	assert_int_equal(event_recorder_flush(f.r, 5000), 0);
	post = json_tokener_parse(fake.last_post);
	assert_non_null(post);
	assert_true(json_object_object_get_ex(post, "metadata", &meta));
	assert_true(json_object_object_get_ex(meta, "name", &name));
	snprintf(want, sizeof(want), "%s %s", json_object_get_string(name), json_object_get_string(name));
	json_object_put(post);
	ev.time_ns += 1000000000LL;
	event_recorder_record(f.r, &ev);
	assert_int_equal(event_recorder_flush(f.r, 5000), 0);
	rec_log_end(&f, got, sizeof(got), names, sizeof(names));
	assert_string_equal(got, "created/1 patched/2");
	assert_string_equal(names, want);
}

/* 403 on POST: rejected; an event without a reason: rejected before it is queued */
static void test_recorder_rejected(void **state)
{
	struct k8s_event ev = oom_ev, bad = oom_ev;
	char got[512], names[512];
	struct rec_log f;

	(void)state;
	rec_log_start(&f, 0);
	fake.post_status = 403;
	event_recorder_record(f.r, &ev);
	assert_int_equal(event_recorder_flush(f.r, 5000), 0);
	bad.reason = NULL;
	event_recorder_record(f.r, &bad);
	rec_log_end(&f, got, sizeof(got), names, sizeof(names));
	assert_string_equal(got, "rejected/1 rejected/1");
	(void)names;
}

/* The spam filter's 26th occurrence: one throttled line; the rest reach the API */
static void test_recorder_throttled(void **state)
{
	struct k8s_event ev = oom_ev;
	char got[4096];
	struct rec_log f;
	int i;

	(void)state;
	rec_log_start(&f, 0);
	for (i = 0; i < 26; i++) {
		ev.time_ns = T_NS + i * 1000000LL;
		event_recorder_record(f.r, &ev);
	}
	assert_int_equal(event_recorder_flush(f.r, 5000), 0);
	rec_log_end(&f, got, sizeof(got), NULL, 0);
	/*
	 * How many occurrences fold into one request depends on how fast the
	 * worker runs: one throttled line, the others created then patched with
	 * growing counts, the last one 25.
	 */
	{
		char *tok, *save = NULL, outcome[32];
		int n_throttled = 0, n_delivered = 0, last = 0, count;

		for (tok = strtok_r(got, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			assert_int_equal(sscanf(tok, "%31[a-z_]/%d", outcome, &count), 2);
			if (!strcmp(outcome, "throttled")) {
				assert_int_equal(count, 1);
				n_throttled++;
				continue;
			}
			assert_string_equal(outcome, n_delivered ? "patched" : "created");
			assert_true(count > last);
			last = count;
			n_delivered++;
		}
		assert_int_equal(n_throttled, 1);
		assert_int_equal(last, 25);
	}
}

/* The queue bound: the occurrence that does not fit is a queue_full line */
static void test_recorder_queue_full(void **state)
{
	struct k8s_event a = oom_ev, b = oom_ev, c = oom_ev;
	char got[512];
	struct rec_log f;

	(void)state;
	b.reason = "Other";
	c.reason = "Third";
	rec_log_start(&f, 2);
	fake_gate(true);
	event_recorder_record(f.r, &a);
	event_recorder_record(f.r, &b);
	event_recorder_record(f.r, &c);
	fake_gate(false);
	assert_int_equal(event_recorder_flush(f.r, 5000), 0);
	rec_log_end(&f, got, sizeof(got), NULL, 0);
	assert_string_equal(got, "queue_full/1 created/1 created/1");
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
		cmocka_unit_test(test_recorder_created_patched),
		cmocka_unit_test(test_recorder_rejected),
		cmocka_unit_test(test_recorder_throttled),
		cmocka_unit_test(test_recorder_queue_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
