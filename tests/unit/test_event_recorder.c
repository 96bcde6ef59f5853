/*
 * Unit tests for the Kubernetes Event recorder's worker (event_recorder.h)
 * against a scripted fake of k8s_client.h (defined below, so this test does
 * not depend on k8s_client.c or a network): create, patch, 404 re-create,
 * 409 rename, rejection, a retry, the spam filter (per object and reason),
 * any involved object kind, the queue bound and shutdown.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "event_correlator.h"
#include "k8s_client.h"
#include "event_recorder.h"
#include "metrics.h"
#include "strbuf.h"

#include "k8s_event_fixtures.h"

/* ---- fake k8s_client ---- */

struct k8s_client {
	int unused;
};

struct fake_req {
	char method[8];
	char path[512];
	char content_type[64];
	char *body;
};

struct fake_resp {
	int rc;
	long status;
	long retry_after_s;
	const char *body;
};

#define FAKE_MAX 64

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fake_req reqs[FAKE_MAX];
	size_t n_reqs;
	struct fake_resp script[FAKE_MAX];
	size_t n_script, next;
	bool gate_closed;       /* requests wait until it opens */
	bool client_new_fails;
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

struct k8s_client *k8s_client_new(const struct k8s_config *cfg, const char *user_agent)
{
	if (fake.client_new_fails)
		return NULL;
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

/* Records the request; answers from the script, else 201 (POST) / 200 (PATCH). */
int k8s_request(struct k8s_client *c, const char *method, const char *path, const char *content_type,
		const char *body, size_t max_body, long timeout_ms, struct k8s_response *resp)
{
	struct fake_resp a = { .rc = 0, .status = strcmp(method, "POST") ? 200 : 201, .retry_after_s = -1,
			       .body = "{\"metadata\":{\"resourceVersion\":\"77\"},\"count\":1}" };
	struct fake_req *r;

	pthread_mutex_lock(&fake.lock);
	while (fake.gate_closed)
		pthread_cond_wait(&fake.cond, &fake.lock);
	assert_true(fake.n_reqs < FAKE_MAX);
	r = &fake.reqs[fake.n_reqs++];
	snprintf(r->method, sizeof(r->method), "%s", method);
	snprintf(r->path, sizeof(r->path), "%s", path);
	snprintf(r->content_type, sizeof(r->content_type), "%s", content_type ? content_type : "");
	r->body = strdup(body ? body : "");
	if (fake.next < fake.n_script)
		a = fake.script[fake.next++];
	pthread_cond_broadcast(&fake.cond);
	pthread_mutex_unlock(&fake.lock);

	resp->status = a.rc < 0 ? 0 : a.status;
	resp->retry_after_s = a.retry_after_s;
	resp->truncated = 0;
	snprintf(resp->error, sizeof(resp->error), "%s", a.rc < 0 ? strerror(-a.rc) : "");
	if (a.body && a.rc == 0)
		strbuf_puts(&resp->body, a.body);
	return a.rc;
}

static void fake_reset(void)
{
	size_t i;

	pthread_mutex_lock(&fake.lock);
	for (i = 0; i < fake.n_reqs; i++)
		free(fake.reqs[i].body);
	memset(fake.reqs, 0, sizeof(fake.reqs));
	fake.n_reqs = fake.n_script = fake.next = 0;
	fake.gate_closed = false;
	fake.client_new_fails = false;
	pthread_mutex_unlock(&fake.lock);
}

static void fake_answer(int rc, long status, long retry_after_s, const char *body)
{
	assert_true(fake.n_script < FAKE_MAX);
	fake.script[fake.n_script++] = (struct fake_resp){ rc, status, retry_after_s, body };
}

static void fake_gate(bool closed)
{
	pthread_mutex_lock(&fake.lock);
	fake.gate_closed = closed;
	pthread_cond_broadcast(&fake.cond);
	pthread_mutex_unlock(&fake.lock);
}

static size_t fake_count(void)
{
	size_t n;

	pthread_mutex_lock(&fake.lock);
	n = fake.n_reqs;
	pthread_mutex_unlock(&fake.lock);
	return n;
}

/* Wait (up to 5 s) until `n` requests were made. */
static void fake_wait_requests(size_t n)
{
	int i;

	for (i = 0; i < 500 && fake_count() < n; i++)
		usleep(10000);
	assert_true(fake_count() >= n);
}

/* ---- the recorder against the fake ---- */

static struct k8s_config cfg = { .server = "https://10.96.0.1:443" };

struct rec_fixture {
	struct metrics_registry *reg;
	struct metric_family *fam;
	struct event_recorder *r;
};

static struct rec_fixture rec_start(size_t cap)
{
	static const char *const labels[] = { "result" };
	struct rec_fixture f;

	fake_reset();
	f.reg = metrics_registry_new(0);
	assert_non_null(f.reg);
	f.r = event_recorder_start(&cfg, "ksight", "node-1", f.reg, cap);
	assert_non_null(f.r);
	f.fam = metrics_family(f.reg, "ksight_k8s_events_total", "", METRIC_COUNTER, labels, 1, NULL, 0);
	assert_non_null(f.fam);
	return f;
}

static void rec_end(struct rec_fixture *f)
{
	event_recorder_stop(f->r);
	metrics_registry_free(f->reg);
	fake_reset();
}

static double result(struct rec_fixture *f, const char *res)
{
	return metrics_value(f->fam, &res);
}

/* results in rec_results order: created patched recreated throttled queue_full retried failed rejected */
static void assert_results(struct rec_fixture *f, int created, int patched, int recreated, int throttled,
			   int queue_full, int retried, int failed, int rejected)
{
	assert_int_equal((int)result(f, "created"), created);
	assert_int_equal((int)result(f, "patched"), patched);
	assert_int_equal((int)result(f, "recreated"), recreated);
	assert_int_equal((int)result(f, "throttled"), throttled);
	assert_int_equal((int)result(f, "queue_full"), queue_full);
	assert_int_equal((int)result(f, "retried"), retried);
	assert_int_equal((int)result(f, "failed"), failed);
	assert_int_equal((int)result(f, "rejected"), rejected);
}

static void record_flush(struct rec_fixture *f, const struct k8s_event *ev)
{
	event_recorder_record(f->r, ev);
	assert_int_equal(event_recorder_flush(f->r, 5000), 0);
}

static void test_recorder_create_then_patch(void **state)
{
	struct rec_fixture f = rec_start(0);
	struct k8s_event ev = pod_ev("first");
	char name[EC_NAME_MAX], path[512];

	assert_results(&f, 0, 0, 0, 0, 0, 0, 0, 0);  /* every series exists from the start */
	record_flush(&f, &ev);
	assert_int_equal(fake.n_reqs, 1);
	assert_string_equal(fake.reqs[0].method, "POST");
	assert_string_equal(fake.reqs[0].path, "/api/v1/namespaces/shop/events");
	assert_string_equal(fake.reqs[0].content_type, "application/json");
	snprintf(name, sizeof(name), "%s", jp(fake.reqs[0].body, "/metadata/name"));
	assert_string_equal(name, POD ".18da11bc3c83fc00");
	assert_string_equal(jp(fake.reqs[0].body, "/count"), "1");
	assert_string_equal(jp(fake.reqs[0].body, "/message"), "first");
	assert_string_equal(jp(fake.reqs[0].body, "/involvedObject/fieldPath"), "spec.containers{app}");

	/* the caller's strings are not kept */
	{
		char msg[16] = "second";

		ev = pod_ev(msg);
		ev.time_ns = T0 + 60 * SEC;
		event_recorder_record(f.r, &ev);
		memset(msg, 'Z', sizeof(msg) - 1);
		assert_int_equal(event_recorder_flush(f.r, 5000), 0);
	}
	assert_int_equal(fake.n_reqs, 2);
	assert_string_equal(fake.reqs[1].method, "PATCH");
	snprintf(path, sizeof(path), "/api/v1/namespaces/shop/events/%s", name);
	assert_string_equal(fake.reqs[1].path, path);
	assert_string_equal(fake.reqs[1].content_type, "application/strategic-merge-patch+json");
	assert_json_equal(fake.reqs[1].body, "{\"count\":2,\"lastTimestamp\":\"2026-09-30T10:16:02Z\","
					     "\"message\":\"second\"}");

	/* a Node event goes to "default" */
	ev = node_ev("fs");
	record_flush(&f, &ev);
	assert_int_equal(fake.n_reqs, 3);
	assert_string_equal(fake.reqs[2].path, "/api/v1/namespaces/default/events");
	assert_string_equal(jp(fake.reqs[2].body, "/metadata/namespace"), "default");
	assert_false(jhas(fake.reqs[2].body, "/involvedObject/namespace"));

	assert_results(&f, 2, 1, 0, 0, 0, 0, 0, 0);
	rec_end(&f);
}

/* PATCH 404 (expired): POST again with the cached name, count and firstTimestamp. */
static void test_recorder_recreate_after_404(void **state)
{
	struct rec_fixture f = rec_start(0);
	struct k8s_event ev = pod_ev("one");
	const char *b;

	record_flush(&f, &ev);
	fake_answer(0, 404, -1, "{\"kind\":\"Status\",\"reason\":\"NotFound\"}");
	ev = pod_ev("two");
	ev.time_ns = T0 + 120 * SEC;
	record_flush(&f, &ev);

	assert_int_equal(fake.n_reqs, 3);
	assert_string_equal(fake.reqs[1].method, "PATCH");
	assert_string_equal(fake.reqs[2].method, "POST");
	b = fake.reqs[2].body;
	assert_string_equal(jp(b, "/metadata/name"), POD ".18da11bc3c83fc00");
	assert_string_equal(jp(b, "/count"), "2");
	assert_string_equal(jp(b, "/firstTimestamp"), "2026-09-30T10:15:02Z");
	assert_string_equal(jp(b, "/lastTimestamp"), "2026-09-30T10:17:02Z");
	assert_string_equal(jp(b, "/message"), "two");
	assert_false(jhas(b, "/metadata/resourceVersion"));

	/* and it is PATCHed again afterwards */
	ev.time_ns = T0 + 180 * SEC;
	record_flush(&f, &ev);
	assert_string_equal(fake.reqs[3].method, "PATCH");
	assert_string_equal(jp(fake.reqs[3].body, "/count"), "3");
	assert_results(&f, 1, 1, 1, 0, 0, 0, 0, 0);
	rec_end(&f);
}

/* POST 409: a new name and one more try; the series keeps the new name. */
static void test_recorder_rename_after_409(void **state)
{
	struct rec_fixture f = rec_start(0);
	struct k8s_event ev = pod_ev("one");
	char second[EC_NAME_MAX], path[512];

	fake_answer(0, 409, -1, "{\"kind\":\"Status\",\"reason\":\"AlreadyExists\"}");
	record_flush(&f, &ev);
	assert_int_equal(fake.n_reqs, 2);
	assert_string_equal(fake.reqs[1].method, "POST");
	snprintf(second, sizeof(second), "%s", jp(fake.reqs[1].body, "/metadata/name"));
	assert_string_not_equal(second, jp(fake.reqs[0].body, "/metadata/name"));
	assert_int_equal(strncmp(second, POD ".", strlen(POD) + 1), 0);
	assert_int_equal(strlen(second), strlen(POD) + 17);

	ev.time_ns = T0 + SEC;
	record_flush(&f, &ev);
	snprintf(path, sizeof(path), "/api/v1/namespaces/shop/events/%s", second);
	assert_string_equal(fake.reqs[2].method, "PATCH");
	assert_string_equal(fake.reqs[2].path, path);
	assert_results(&f, 1, 1, 0, 0, 0, 1, 0, 0);
	rec_end(&f);
}

/* A second 409 is a rejection; the next occurrence POSTs again with the full count. */
static void test_recorder_409_twice(void **state)
{
	struct rec_fixture f = rec_start(0);
	struct k8s_event ev = pod_ev("one");

	fake_answer(0, 409, -1, NULL);
	fake_answer(0, 409, -1, NULL);
	record_flush(&f, &ev);
	assert_int_equal(fake.n_reqs, 2);
	assert_results(&f, 0, 0, 0, 0, 0, 1, 0, 1);

	ev.time_ns = T0 + SEC;
	record_flush(&f, &ev);
	assert_int_equal(fake.n_reqs, 3);
	assert_string_equal(fake.reqs[2].method, "POST");
	assert_string_equal(jp(fake.reqs[2].body, "/count"), "2");
	assert_results(&f, 1, 0, 0, 0, 0, 1, 0, 1);
	rec_end(&f);
}

/* 403 (RBAC): dropped after one request, not retried. */
static void test_recorder_rejected(void **state)
{
	struct rec_fixture f = rec_start(0);
	struct k8s_event ev = pod_ev("one");

	fake_answer(0, 403, -1, "{\"kind\":\"Status\",\"message\":\"events is forbidden: User "
				"\\\"system:serviceaccount:kube-system:ksight\\\" cannot create resource\"}");
	fake_answer(0, 403, -1, "{}");
	record_flush(&f, &ev);
	assert_int_equal(fake.n_reqs, 1);
	assert_results(&f, 0, 0, 0, 0, 0, 0, 0, 1);
	/* logged once only; still counted */
	ev.reason = "Other";
	record_flush(&f, &ev);
	assert_int_equal(fake.n_reqs, 2);
	assert_results(&f, 0, 0, 0, 0, 0, 0, 0, 2);
	rec_end(&f);
}

/* 503: retried after about a second (jitter: 0.75-1 s), then created. */
static void test_recorder_retry(void **state)
{
	struct rec_fixture f = rec_start(0);
	struct k8s_event ev = pod_ev("one");
	struct k8s_event other = node_ev("other");
	struct timespec a, b;
	double dt;

	fake_answer(0, 503, -1, NULL);
	clock_gettime(CLOCK_MONOTONIC, &a);
	event_recorder_record(f.r, &ev);
	fake_wait_requests(1);
	/* the waiting one does not hold up another */
	event_recorder_record(f.r, &other);
	fake_wait_requests(2);
	assert_string_equal(fake.reqs[1].path, "/api/v1/namespaces/default/events");
	assert_int_equal(event_recorder_flush(f.r, 5000), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	dt = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	assert_true(dt >= 0.7);
	assert_true(dt < 3.0);
	assert_int_equal(fake.n_reqs, 3);
	assert_string_equal(fake.reqs[2].path, "/api/v1/namespaces/shop/events");
	assert_string_equal(fake.reqs[2].body, fake.reqs[0].body);
	assert_results(&f, 2, 0, 0, 0, 0, 1, 0, 0);
	rec_end(&f);
}

/* Occurrences while the POST waits for its retry fold into it: one request, the latest count. */
static void test_recorder_folds_into_waiting_item(void **state)
{
	struct rec_fixture f = rec_start(0);
	struct k8s_event ev = pod_ev("one");

	fake_answer(-ECONNREFUSED, 0, -1, NULL);
	event_recorder_record(f.r, &ev);
	fake_wait_requests(1);
	ev = pod_ev("three");
	ev.time_ns = T0 + 2 * SEC;
	event_recorder_record(f.r, &ev);
	event_recorder_record(f.r, &ev);
	assert_int_equal(event_recorder_flush(f.r, 5000), 0);
	assert_int_equal(fake.n_reqs, 2);
	assert_string_equal(fake.reqs[1].method, "POST");
	assert_string_equal(jp(fake.reqs[1].body, "/count"), "3");
	assert_string_equal(jp(fake.reqs[1].body, "/message"), "three");
	assert_string_equal(jp(fake.reqs[1].body, "/firstTimestamp"), "2026-09-30T10:15:02Z");
	assert_string_equal(jp(fake.reqs[1].body, "/lastTimestamp"), "2026-09-30T10:15:04Z");
	assert_results(&f, 1, 0, 0, 0, 0, 1, 0, 0);
	rec_end(&f);
}

/* The spam filter: the 26th occurrence of one object in a burst is throttled. */
static void test_recorder_throttled(void **state)
{
	struct rec_fixture f = rec_start(0);
	struct k8s_event ev = pod_ev("m");
	int i;

	for (i = 0; i < 26; i++) {
		ev.time_ns = T0 + i * 1000000LL;
		event_recorder_record(f.r, &ev);
	}
	assert_int_equal(event_recorder_flush(f.r, 5000), 0);
	assert_int_equal((int)result(&f, "throttled"), 1);
	assert_int_equal((int)result(&f, "created"), 1);
	assert_true(fake.n_reqs >= 1 && fake.n_reqs <= 25);
	assert_int_equal((int)(result(&f, "created") + result(&f, "patched")), (int)fake.n_reqs);
	/* the last request carries the last allowed count */
	assert_string_equal(jp(fake.reqs[fake.n_reqs - 1].body, "/count"), "25");
	rec_end(&f);
}

/*
 * A storm of one reason on the Node uses up that reason's burst only: the
 * 26th ProcessOOMKilled is throttled, a DiskErrors Event on the same Node
 * right after still goes out (POST), as does a Normal one.
 */
static void test_recorder_throttled_per_reason(void **state)
{
	struct rec_fixture f = rec_start(0);
	struct k8s_event storm = node_ev("oom"), other = node_ev("disk"), normal = node_ev("fine");
	size_t i;

	storm.reason = "ProcessOOMKilled";
	for (i = 0; i < 26; i++) {
		storm.time_ns = T0 + (int64_t)i * 1000000LL;
		event_recorder_record(f.r, &storm);
	}
	other.reason = "DiskErrors";
	other.time_ns = T0 + SEC;
	event_recorder_record(f.r, &other);
	normal.type = "Normal";
	normal.time_ns = T0 + SEC;
	event_recorder_record(f.r, &normal);
	assert_int_equal(event_recorder_flush(f.r, 5000), 0);
	assert_int_equal((int)result(&f, "throttled"), 1);
	assert_int_equal((int)result(&f, "created"), 3);
	for (i = 0; i < fake.n_reqs; i++)
		if (!strcmp(jp(fake.reqs[i].body, "/reason"), "DiskErrors"))
			break;
	assert_true(i < fake.n_reqs);
	assert_string_equal(fake.reqs[i].method, "POST");
	assert_string_equal(jp(fake.reqs[i].body, "/involvedObject/kind"), "Node");
	rec_end(&f);
}

/* Any kind of involved object: a namespaced PersistentVolumeClaim, no fieldPath. */
static void test_recorder_pvc(void **state)
{
	struct rec_fixture f = rec_start(0);
	struct k8s_event ev = {
		.type = "Warning", .reason = "VolumeIOErrors", .message = "I/O errors",
		.object = { .kind = "PersistentVolumeClaim", .namespace_ = "data", .name = "pg-data-0", .uid = UID },
		.time_ns = T0,
	};

	record_flush(&f, &ev);
	assert_int_equal(fake.n_reqs, 1);
	assert_string_equal(fake.reqs[0].path, "/api/v1/namespaces/data/events");
	assert_string_equal(jp(fake.reqs[0].body, "/involvedObject/kind"), "PersistentVolumeClaim");
	assert_string_equal(jp(fake.reqs[0].body, "/involvedObject/namespace"), "data");
	assert_string_equal(jp(fake.reqs[0].body, "/metadata/name"), "pg-data-0.18da11bc3c83fc00");
	assert_false(jhas(fake.reqs[0].body, "/involvedObject/fieldPath"));
	assert_results(&f, 1, 0, 0, 0, 0, 0, 0, 0);
	rec_end(&f);
}

/* The queue bound counts occurrences waiting and Event objects not yet delivered. */
static void test_recorder_queue_full(void **state)
{
	struct rec_fixture f = rec_start(2);
	struct k8s_event a = pod_ev("a"), b = node_ev("b"), c = pod_ev("c");

	c.reason = "Other";
	fake_gate(true);
	event_recorder_record(f.r, &a);
	event_recorder_record(f.r, &b);
	event_recorder_record(f.r, &c);
	assert_int_equal((int)result(&f, "queue_full"), 1);
	assert_int_equal(event_recorder_flush(f.r, 50), -ETIMEDOUT);
	fake_gate(false);
	assert_int_equal(event_recorder_flush(f.r, 5000), 0);
	assert_results(&f, 2, 0, 0, 0, 1, 0, 0, 0);
	rec_end(&f);
}

static void test_recorder_invalid_and_null(void **state)
{
	struct rec_fixture f = rec_start(0);
	struct k8s_event ev = pod_ev("m");

	ev.reason = NULL;
	event_recorder_record(f.r, &ev);
	ev = pod_ev("m");
	ev.object.namespace_ = "../x";
	event_recorder_record(f.r, &ev);
	event_recorder_record(f.r, NULL);
	assert_int_equal(event_recorder_flush(f.r, 5000), 0);
	assert_int_equal(fake.n_reqs, 0);
	assert_results(&f, 0, 0, 0, 0, 0, 0, 0, 2);
	rec_end(&f);

	/* not in a cluster: a NULL recorder takes everything quietly */
	ev = pod_ev("m");
	event_recorder_record(NULL, &ev);
	assert_int_equal(event_recorder_flush(NULL, 10), 0);
	event_recorder_stop(NULL);

	/* the client cannot be made: no recorder */
	fake.client_new_fails = true;
	assert_null(event_recorder_start(&cfg, "ksight", "node-1", NULL, 0));
	fake_reset();
}

/* Stop does not wait out a backoff; what is left is counted as failed. */
static void test_recorder_stop_while_waiting(void **state)
{
	struct rec_fixture f = rec_start(0);
	struct k8s_event ev = pod_ev("m");
	struct timespec a, b;

	fake_answer(0, 429, 120, NULL);  /* Retry-After 120 s */
	event_recorder_record(f.r, &ev);
	fake_wait_requests(1);
	assert_int_equal(event_recorder_flush(f.r, 100), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &a);
	event_recorder_stop(f.r);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec < 2);
	assert_int_equal(fake.n_reqs, 1);
	assert_int_equal((int)result(&f, "retried"), 1);
	assert_int_equal((int)result(&f, "failed"), 1);
	metrics_registry_free(f.reg);
	fake_reset();
}

/* Without a registry the recorder still works. */
static void test_recorder_no_metrics(void **state)
{
	struct event_recorder *r;
	struct k8s_event ev = pod_ev("m");

	fake_reset();
	r = event_recorder_start(&cfg, "ksight", "node-1", NULL, 0);
	assert_non_null(r);
	event_recorder_record(r, &ev);
	assert_int_equal(event_recorder_flush(r, 5000), 0);
	assert_int_equal(fake.n_reqs, 1);
	event_recorder_stop(r);
	fake_reset();
}
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recorder_create_then_patch),
		cmocka_unit_test(test_recorder_recreate_after_404),
		cmocka_unit_test(test_recorder_rename_after_409),
		cmocka_unit_test(test_recorder_409_twice),
		cmocka_unit_test(test_recorder_rejected),
		cmocka_unit_test(test_recorder_retry),
		cmocka_unit_test(test_recorder_folds_into_waiting_item),
		cmocka_unit_test(test_recorder_throttled),
		cmocka_unit_test(test_recorder_throttled_per_reason),
		cmocka_unit_test(test_recorder_pvc),
		cmocka_unit_test(test_recorder_queue_full),
		cmocka_unit_test(test_recorder_invalid_and_null),
		cmocka_unit_test(test_recorder_stop_while_waiting),
		cmocka_unit_test(test_recorder_no_metrics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
