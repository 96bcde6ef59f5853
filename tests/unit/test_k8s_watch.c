/*
 * The informer (user/k8s/k8s_informer.c over k8s_watch.c) against a scripted
 * API server: EndpointSlices of default/kubernetes listed and watched, early
 * and late subscribers, a 410 re-list that drops and changes objects,
 * unsubscribing. k8s_stream() below stands in for the API client.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "k8s_client.h"
#include "k8s_informer.h"
#include "k8s_json.h"
#include "metrics.h"
#include "strbuf.h"

/* ---- a scripted API server ---- */

struct fake_step {
	long status;
	const char *body;
	size_t chunk;		/* feed the body in pieces this big; 0: whole */
	int gate;		/* 1..31: wait until the test opens this gate */
	bool block;		/* then hang until stopped */
};

#define FAKE_MAX_CALLS 16

static struct {
	pthread_mutex_t lock;
	const struct fake_step *steps;
	size_t n_steps;
	size_t calls;
	unsigned int gates;
	char paths[FAKE_MAX_CALLS][512];
	int clients;
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void fake_script(const struct fake_step *steps, size_t n)
{
	pthread_mutex_lock(&fake.lock);
	fake.steps = steps;
	fake.n_steps = n;
	fake.calls = 0;
	fake.gates = 0;
	memset(fake.paths, 0, sizeof(fake.paths));
	pthread_mutex_unlock(&fake.lock);
}

static void fake_open(int gate)
{
	__atomic_or_fetch(&fake.gates, 1u << gate, __ATOMIC_RELEASE);
}

static size_t fake_calls(void)
{
	size_t n;

	pthread_mutex_lock(&fake.lock);
	n = fake.calls;
	pthread_mutex_unlock(&fake.lock);
	return n;
}

struct k8s_client *k8s_client_new(const struct k8s_config *cfg, const char *user_agent)
{
	pthread_mutex_lock(&fake.lock);
	fake.clients++;
	pthread_mutex_unlock(&fake.lock);
	return malloc(1);
}

void k8s_client_free(struct k8s_client *c)
{
	pthread_mutex_lock(&fake.lock);
	fake.clients--;
	pthread_mutex_unlock(&fake.lock);
	free(c);
}

void k8s_response_free(struct k8s_response *resp)
{
	strbuf_free(&resp->body);
}

int k8s_request(struct k8s_client *c, const char *method, const char *path, const char *content_type,
		const char *body, size_t max_body, long timeout_ms, struct k8s_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	return -ENOSYS;
}

static bool stopped(volatile int *stop)
{
	return __atomic_load_n(stop, __ATOMIC_ACQUIRE) != 0;
}

/* Runs on the watch thread: no cmocka asserts here. */
int k8s_stream(struct k8s_client *c, const char *path, k8s_stream_fn on_data, void *ctx,
	       long idle_timeout_s, volatile int *stop, struct k8s_response *resp)
{
	const struct fake_step *step = NULL;
	size_t idx, off, len;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after_s = -1;
	pthread_mutex_lock(&fake.lock);
	idx = fake.calls++;
	if (idx < FAKE_MAX_CALLS)
		snprintf(fake.paths[idx], sizeof(fake.paths[idx]), "%s", path);
	if (idx < fake.n_steps)
		step = &fake.steps[idx];
	pthread_mutex_unlock(&fake.lock);

	while (step && step->gate && !stopped(stop) &&
	       !(__atomic_load_n(&fake.gates, __ATOMIC_ACQUIRE) & (1u << step->gate)))
		usleep(2000);
	if (!step || stopped(stop)) {
		while (!stopped(stop))
			usleep(2000);
		snprintf(resp->error, sizeof(resp->error), "stopped");
		return -ECANCELED;
	}
	resp->status = step->status;
	len = step->body ? strlen(step->body) : 0;
	for (off = 0; off < len && !stopped(stop);) {
		size_t n = step->chunk && step->chunk < len - off ? step->chunk : len - off;

		if (on_data(ctx, step->body + off, n))
			return 0;
		off += n;
	}
	while (step->block && !stopped(stop))
		usleep(2000);
	return 0;
}

/* ---- helpers ---- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define WAIT_FOR(cond)								\
	do {									\
		int64_t deadline_ = now_ms() + 10000;				\
		while (!(cond)) {						\
			assert_true(now_ms() < deadline_);			\
			usleep(2000);						\
		}								\
	} while (0)

/* What one subscriber heard: "TYPE ns/name@rv" lines. */
struct heard {
	pthread_mutex_t lock;
	int n;
	char lines[32][96];
};

static void on_change(void *ctx, enum k8s_watch_event type, json_object *obj)
{
	struct heard *h = ctx;
	json_object *meta = k8s_json_member(obj, "metadata", json_type_object);
	size_t l1 = 0, l2 = 0, l3 = 0;
	const char *ns = k8s_json_string(meta, "namespace", &l1);
	const char *name = k8s_json_string(meta, "name", &l2);
	const char *rv = k8s_json_resource_version(obj, &l3);

	pthread_mutex_lock(&h->lock);
	if (h->n < 32)
		snprintf(h->lines[h->n], sizeof(h->lines[0]), "%s %s/%s@%s", k8s_watch_event_name(type),
			 ns ? ns : "", name ? name : "", rv ? rv : "");
	h->n++;
	pthread_mutex_unlock(&h->lock);
}

static int heard_count(struct heard *h)
{
	int n;

	pthread_mutex_lock(&h->lock);
	n = h->n;
	pthread_mutex_unlock(&h->lock);
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

#define SLICE(name, rv, ip)								\
	"{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\",\"metadata\":{"	\
	"\"name\":\"" name "\",\"namespace\":\"default\",\"resourceVersion\":\"" rv "\","	\
	"\"labels\":{\"kubernetes.io/service-name\":\"kubernetes\"}},\"addressType\":\"IPv4\","	\
	"\"endpoints\":[{\"addresses\":[\"" ip "\"]}],\"ports\":[{\"name\":\"https\",\"port\":6443}]}"

#define EV(type, obj) "{\"type\":\"" type "\",\"object\":" obj "}\n"

#define SLICES_PATH "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
#define SELECTOR "labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes"

static const struct k8s_watch_spec slices_spec = {
	.resource = "endpointslices",
	.path = SLICES_PATH,
	.label_selector = "kubernetes.io/service-name=kubernetes",
	.what = "the kubernetes Service's EndpointSlices",
};

static void test_informer_replay_and_changes(void **state)
{
	static const struct fake_step steps[] = {
		{ .status = 200, .gate = 1, .chunk = 9, .body =
		  "{\"kind\":\"EndpointSliceList\",\"metadata\":{\"resourceVersion\":\"1\"},\"items\":["
		  SLICE("s1", "1", "10.0.0.1") "," SLICE("s2", "1", "10.0.0.2") "]}" },
		{ .status = 200, .chunk = 13, .body =
		  EV("MODIFIED", SLICE("s1", "2", "10.0.0.11"))
		  EV("ADDED", SLICE("s3", "3", "10.0.0.3"))
		  EV("ADDED", SLICE("s3", "3", "10.0.0.3"))	/* a repeat: nothing new */
		  EV("DELETED", SLICE("s2", "4", "10.0.0.2"))
		  EV("BOOKMARK", "{\"kind\":\"EndpointSlice\",\"metadata\":{\"resourceVersion\":\"4\"}}")
		  "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}}\n" },
		/* the re-list: s1 is gone, s3 changed, s4 is new */
		{ .status = 200, .body =
		  "{\"kind\":\"EndpointSliceList\",\"metadata\":{\"resourceVersion\":\"5\"},\"items\":["
		  SLICE("s3", "5", "10.0.0.33") "," SLICE("s4", "5", "10.0.0.4") "]}" },
		{ .status = 200, .gate = 2, .block = true, .body = EV("MODIFIED", SLICE("s4", "6", "10.0.0.44")) },
	};
	static const char *const early_want[] = {
		"ADDED default/s1@1", "ADDED default/s2@1",
		"MODIFIED default/s1@2", "ADDED default/s3@3", "DELETED default/s2@4",
		"MODIFIED default/s3@5", "ADDED default/s4@5", "DELETED default/s1@2",
	};
	struct heard early = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct heard late = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct k8s_subscription *sub_early, *sub_late;
	struct metrics_registry *reg = metrics_registry_new(0);
	struct k8s_config cfg = { .source = "test" };
	struct k8s_informer *inf;
	const char *values[1] = { "expired" };
	const char *names[1] = { "reason" };
	size_t i;

	fake_script(steps, 4);
	assert_int_equal(k8s_informer_start(&cfg, &slices_spec, reg, &inf), 0);
	/* subscribed before anything is listed: the replay is empty */
	assert_int_equal(k8s_informer_subscribe(inf, on_change, &early, &sub_early), 0);
	assert_int_equal(heard_count(&early), 0);
	assert_false(k8s_informer_synced(inf));
	fake_open(1);

	WAIT_FOR(fake_calls() >= 4 && heard_count(&early) >= 8);
	assert_true(k8s_informer_synced(inf));
	assert_int_equal(heard_count(&early), 8);
	for (i = 0; i < 8; i++)
		assert_string_equal(early.lines[i], early_want[i]);
	assert_string_equal(fake.paths[0], SLICES_PATH "?" SELECTOR "&resourceVersion=0");
	assert_non_null(strstr(fake.paths[1], SLICES_PATH "?" SELECTOR "&watch=1&allowWatchBookmarks=true&resourceVersion=1&"));
	/* after the 410, a consistent list, then a watch from its version */
	assert_string_equal(fake.paths[2], SLICES_PATH "?" SELECTOR);
	assert_non_null(strstr(fake.paths[3], "&resourceVersion=5&"));
	assert_int_equal(k8s_informer_size(inf), 2);

	/* a late subscriber: every current object, as ADDED, before subscribe returns */
	assert_int_equal(k8s_informer_subscribe(inf, on_change, &late, &sub_late), 0);
	assert_int_equal(late.n, 2);
	qsort(late.lines, 2, sizeof(late.lines[0]), cmp_str);
	assert_string_equal(late.lines[0], "ADDED default/s3@5");
	assert_string_equal(late.lines[1], "ADDED default/s4@5");

	/* unsubscribed: hears nothing more; the other one does */
	k8s_informer_unsubscribe(inf, sub_early);
	fake_open(2);
	WAIT_FOR(heard_count(&late) == 3);
	assert_string_equal(late.lines[2], "MODIFIED default/s4@6");
	assert_int_equal(heard_count(&early), 8);

	{
		struct metric_family *fam = metrics_family(reg, "ksight_k8s_watch_restarts_total", "",
							   METRIC_COUNTER, names, 1, NULL, 0);

		assert_true(metrics_value(fam, values) == 1);
	}
	k8s_informer_unsubscribe(inf, sub_late);
	k8s_informer_unsubscribe(inf, NULL);
	k8s_informer_stop(inf);
	assert_int_equal(fake.clients, 0);
	metrics_registry_free(reg);
}

/* Stopped with subscribers and objects in the store: all freed (ASan checks), promptly. */
static void test_informer_stop_and_args(void **state)
{
	static const struct fake_step steps[] = {
		{ .status = 200, .body = "{\"metadata\":{\"resourceVersion\":\"9\"},\"items\":["
		  SLICE("s1", "9", "10.0.0.1") ",{\"metadata\":{\"namespace\":\"default\"}}]}" },
	};
	struct heard h = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct k8s_config cfg = { .source = "test" };
	struct k8s_watch_spec bad = slices_spec;
	struct k8s_informer *inf = (void *)1;
	int64_t t0;

	assert_int_equal(k8s_informer_start(&cfg, NULL, NULL, &inf), -EINVAL);
	assert_null(inf);
	bad.path = SLICES_PATH "?labelSelector=x";	/* selectors go in the spec */
	assert_int_equal(k8s_informer_start(&cfg, &bad, NULL, &inf), -EINVAL);
	bad.path = "apis/x";
	assert_int_equal(k8s_informer_start(&cfg, &bad, NULL, &inf), -EINVAL);
	assert_int_equal(k8s_informer_start(NULL, &slices_spec, NULL, &inf), -EINVAL);
	assert_int_equal(k8s_informer_subscribe(NULL, on_change, &h, NULL), -EINVAL);
	assert_int_equal(fake.clients, 0);

	fake_script(steps, 1);
	assert_int_equal(k8s_informer_start(&cfg, &slices_spec, NULL, &inf), 0);
	assert_int_equal(k8s_informer_subscribe(inf, NULL, &h, NULL), -EINVAL);
	WAIT_FOR(k8s_informer_synced(inf));
	/* the nameless item is not stored */
	assert_int_equal(k8s_informer_size(inf), 1);
	assert_int_equal(k8s_informer_subscribe(inf, on_change, &h, NULL), 0);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.lines[0], "ADDED default/s1@9");
	WAIT_FOR(fake_calls() >= 2);	/* the watch hangs */
	t0 = now_ms();
	k8s_informer_stop(inf);
	assert_true(now_ms() - t0 < 1500);
	assert_int_equal(fake.clients, 0);
	k8s_informer_stop(NULL);
	assert_false(k8s_informer_synced(NULL));
	assert_int_equal(k8s_informer_size(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_informer_replay_and_changes),
		cmocka_unit_test(test_informer_stop_and_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
