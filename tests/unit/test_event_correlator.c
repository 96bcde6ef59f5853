/*
 * Unit tests for the Kubernetes Event correlator: series (CREATE / PATCH and
 * the sliding 10-minute window), the spam filter (per object and reason), the LRU bounds
 * and the updates from server answers (404, 409, confirmations). Time is
 * passed in, so every boundary is hit exactly.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event_correlator.h"

#define SEC   1000000000LL
#define MIN   (60 * SEC)
#define T0    (1790763302LL * SEC)  /* 2026-09-30T10:15:02Z */

static struct ec_event pod_event(const char *pod, const char *reason, const char *key)
{
	return (struct ec_event){
		.type = "Warning", .reason = reason, .key = key,
		.object = { .kind = "Pod", .namespace_ = "shop", .name = pod,
			    .uid = "a41b2cd5-5451-4bbc-b740-c908d58d652e", .api_version = "v1",
			    .field_path = "spec.containers{app}" },
	};
}

static struct ec_event node_event(const char *reason)
{
	return (struct ec_event){
		.type = "Warning", .reason = reason,
		.object = { .kind = "Node", .name = "node-1", .uid = "66cedd99-0823-46bf-a36d-5db3fa6f28cd",
			    .api_version = "v1" },
	};
}

static struct event_correlator *new_ec(void)
{
	struct event_correlator *ec = event_correlator_new("ksight", "node-1", 0);

	assert_non_null(ec);
	return ec;
}

/* observe() must succeed; returns the decision */
static struct ec_decision observe(struct event_correlator *ec, const struct ec_event *ev, int64_t t)
{
	struct ec_decision d;

	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(event_correlator_observe(ec, ev, t, &d), 0);
	return d;
}

static void expected_name(char *buf, const char *obj, int64_t ns)
{
	snprintf(buf, EC_NAME_MAX, "%s.%016" PRIx64, obj, (uint64_t)ns);
}

static void test_first_event_creates(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event ev = pod_event("checkout-7d9c6b5f4-x2kqp", "ProcessOOMKilled", "app");
	struct ec_decision d = observe(ec, &ev, T0);
	char want[EC_NAME_MAX];
	struct ec_state st;

	assert_int_equal(d.action, EC_CREATE);
	expected_name(want, "checkout-7d9c6b5f4-x2kqp", T0);
	assert_string_equal(d.name, want);
	assert_string_equal(d.name, "checkout-7d9c6b5f4-x2kqp.18da11bc3c83fc00");
	assert_int_equal(d.count, 1);
	assert_true(d.first_ns == T0);
	assert_true(d.last_ns == T0);
	assert_int_equal(event_correlator_len(ec), 1);

	assert_int_equal(event_correlator_get(ec, &ev, &st), 0);
	assert_string_equal(st.name, want);
	assert_string_equal(st.resource_version, "");
	assert_int_equal(st.count, 1);
	assert_false(st.need_create);  /* assumed in flight */
	event_correlator_free(ec);
}

static void test_repeats_patch(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event ev = pod_event("p", "ProcessOOMKilled", "app");
	struct ec_decision d1 = observe(ec, &ev, T0);
	struct ec_decision d2 = observe(ec, &ev, T0 + 2 * MIN);
	struct ec_decision d3 = observe(ec, &ev, T0 + 9 * MIN);

	assert_int_equal(d2.action, EC_PATCH);
	assert_string_equal(d2.name, d1.name);
	assert_int_equal(d2.count, 2);
	assert_true(d2.first_ns == T0);
	assert_true(d2.last_ns == T0 + 2 * MIN);

	assert_int_equal(d3.action, EC_PATCH);
	assert_string_equal(d3.name, d1.name);
	assert_int_equal(d3.count, 3);
	assert_true(d3.first_ns == T0);
	assert_true(d3.last_ns == T0 + 9 * MIN);
	assert_int_equal(event_correlator_len(ec), 1);
	event_correlator_free(ec);
}

/* The window is measured from the last occurrence: 9-minute gaps keep one series for an hour. */
static void test_window_slides(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event ev = pod_event("p", "ProcessOOMKilled", "app");
	struct ec_decision first = observe(ec, &ev, T0), d;
	int i;

	for (i = 1; i <= 7; i++) {
		d = observe(ec, &ev, T0 + i * 9 * MIN);
		assert_int_equal(d.action, EC_PATCH);
		assert_string_equal(d.name, first.name);
		assert_int_equal(d.count, i + 1);
		assert_true(d.first_ns == T0);
	}
	event_correlator_free(ec);
}

static void test_window_boundary(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event ev = pod_event("p", "ProcessOOMKilled", "app");
	struct ec_decision d1 = observe(ec, &ev, T0);
	/* exactly 10 minutes after the last: still the same series */
	struct ec_decision d2 = observe(ec, &ev, T0 + 10 * MIN);
	/* 10 minutes and 1 second after the last: a new Event object */
	struct ec_decision d3 = observe(ec, &ev, T0 + 20 * MIN + SEC);
	struct ec_decision d4 = observe(ec, &ev, T0 + 21 * MIN);
	char want[EC_NAME_MAX];

	assert_int_equal(d2.action, EC_PATCH);
	assert_int_equal(d2.count, 2);

	assert_int_equal(d3.action, EC_CREATE);
	assert_int_equal(d3.count, 1);
	expected_name(want, "p", T0 + 20 * MIN + SEC);
	assert_string_equal(d3.name, want);
	assert_string_not_equal(d3.name, d1.name);
	assert_true(d3.first_ns == T0 + 20 * MIN + SEC);
	assert_true(d3.last_ns == T0 + 20 * MIN + SEC);

	assert_int_equal(d4.action, EC_PATCH);
	assert_string_equal(d4.name, d3.name);
	assert_int_equal(d4.count, 2);
	assert_true(d4.first_ns == T0 + 20 * MIN + SEC);
	assert_int_equal(event_correlator_len(ec), 1);
	event_correlator_free(ec);
}

/* key, reason, fieldPath and type each separate series; the message is not an input at all */
static void test_separate_series(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event a = pod_event("p", "ProcessOOMKilled", "app");
	struct ec_event other_key = pod_event("p", "ProcessOOMKilled", "sidecar");
	struct ec_event other_reason = pod_event("p", "ContainerOOMKilled", "app");
	struct ec_event other_field = a, other_type = a, no_key = a, other_uid = a;
	struct ec_decision da, d;

	other_field.object.field_path = "spec.initContainers{app}";
	other_type.type = "Normal";
	no_key.key = NULL;
	other_uid.object.uid = "0f0ace77-0000-0000-0000-000000000000";

	da = observe(ec, &a, T0);
	assert_int_equal(da.action, EC_CREATE);

	d = observe(ec, &other_key, T0 + SEC);
	assert_int_equal(d.action, EC_CREATE);
	assert_int_equal(d.count, 1);
	assert_string_not_equal(d.name, da.name);

	d = observe(ec, &other_reason, T0 + SEC);
	assert_int_equal(d.action, EC_CREATE);
	assert_int_equal(d.count, 1);

	d = observe(ec, &other_field, T0 + SEC);
	assert_int_equal(d.action, EC_CREATE);
	d = observe(ec, &other_type, T0 + SEC);
	assert_int_equal(d.action, EC_CREATE);
	d = observe(ec, &no_key, T0 + SEC);
	assert_int_equal(d.action, EC_CREATE);
	d = observe(ec, &other_uid, T0 + SEC);  /* a re-created pod with the same name */
	assert_int_equal(d.action, EC_CREATE);

	/* and the first series is untouched by all of them */
	d = observe(ec, &a, T0 + 2 * SEC);
	assert_int_equal(d.action, EC_PATCH);
	assert_string_equal(d.name, da.name);
	assert_int_equal(d.count, 2);
	assert_int_equal(event_correlator_len(ec), 7);
	event_correlator_free(ec);
}

/* Field boundaries are part of the key: "ab"+"c" is not "a"+"bc". */
static void test_key_fields_do_not_run_together(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event a = pod_event("p", "Reason", "xkey");
	struct ec_event b = pod_event("p", "Reasonx", "key");

	assert_int_equal(observe(ec, &a, T0).action, EC_CREATE);
	assert_int_equal(observe(ec, &b, T0).action, EC_CREATE);
	event_correlator_free(ec);
}

/* Two series created at the same instant still get different names. */
static void test_names_unique_at_same_time(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event a = pod_event("p", "A", "app");
	struct ec_event b = pod_event("p", "B", "app");
	struct ec_decision da = observe(ec, &a, T0);
	struct ec_decision db = observe(ec, &b, T0);
	char want[EC_NAME_MAX];

	expected_name(want, "p", T0 + 1);
	assert_string_equal(db.name, want);
	assert_string_not_equal(da.name, db.name);
	event_correlator_free(ec);
}

/* 25 sends, then THROTTLED with the count still going up; one token back after 300 s. */
static void test_spam_filter(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event ev = pod_event("p", "ProcessOOMKilled", "app");
	struct ec_event other_pod = pod_event("q", "ProcessOOMKilled", "app");
	struct ec_decision d, first;
	int i;

	first = observe(ec, &ev, T0);
	assert_int_equal(first.action, EC_CREATE);
	for (i = 2; i <= EC_SPAM_BURST; i++) {
		d = observe(ec, &ev, T0 + i * 1000000LL);
		assert_int_equal(d.action, EC_PATCH);
		assert_int_equal(d.count, i);
	}
	for (i = EC_SPAM_BURST + 1; i <= 30; i++) {
		d = observe(ec, &ev, T0 + i * 1000000LL);
		assert_int_equal(d.action, EC_THROTTLED);
		assert_int_equal(d.count, i);
		assert_string_equal(d.name, first.name);
	}
	/* another object has its own bucket */
	assert_int_equal(observe(ec, &other_pod, T0 + SEC).action, EC_CREATE);

	/* 299 s after the 25th: still no whole token */
	d = observe(ec, &ev, T0 + 25 * 1000000LL + 299 * SEC);
	assert_int_equal(d.action, EC_THROTTLED);
	assert_int_equal(d.count, 31);

	/* 300 s after the 25th: one token, and the PATCH carries every occurrence */
	d = observe(ec, &ev, T0 + 25 * 1000000LL + 300 * SEC);
	assert_int_equal(d.action, EC_PATCH);
	assert_string_equal(d.name, first.name);
	assert_int_equal(d.count, 32);
	assert_true(d.first_ns == T0);
	assert_true(d.last_ns == T0 + 25 * 1000000LL + 300 * SEC);

	d = observe(ec, &ev, T0 + 25 * 1000000LL + 301 * SEC);
	assert_int_equal(d.action, EC_THROTTLED);
	assert_int_equal(d.count, 33);
	event_correlator_free(ec);
}

/* A throttled first occurrence is POSTed later, with its name and count; type is part of the spam key. */
static void test_spam_per_object_and_throttled_create(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event late = pod_event("p", "LateReason", "app");
	struct ec_event normal = pod_event("p", "LateReason", "app");
	struct ec_decision d, throttled;
	char key[32];
	struct ec_state st;
	int i;

	/* 25 series of one reason (different keys) use up that reason's burst on the object */
	for (i = 0; i < EC_SPAM_BURST; i++) {
		struct ec_event ev;

		snprintf(key, sizeof(key), "c%d", i);
		ev = pod_event("p", "LateReason", key);
		assert_int_equal(observe(ec, &ev, T0).action, EC_CREATE);
	}
	throttled = observe(ec, &late, T0 + SEC);
	assert_int_equal(throttled.action, EC_THROTTLED);
	assert_int_equal(throttled.count, 1);
	assert_int_equal(event_correlator_get(ec, &late, &st), 0);
	assert_true(st.need_create);

	/* type is part of the spam key */
	normal.type = "Normal";
	assert_int_equal(observe(ec, &normal, T0 + SEC).action, EC_CREATE);

	d = observe(ec, &late, T0 + 2 * SEC);
	assert_int_equal(d.action, EC_THROTTLED);
	assert_int_equal(d.count, 2);

	/* allowed again: CREATE (the server never saw it) with the name and count kept */
	d = observe(ec, &late, T0 + 301 * SEC);
	assert_int_equal(d.action, EC_CREATE);
	assert_string_equal(d.name, throttled.name);
	assert_int_equal(d.count, 3);
	assert_true(d.first_ns == T0 + SEC);
	assert_true(d.last_ns == T0 + 301 * SEC);
	event_correlator_free(ec);
}

/*
 * The spam bucket is per reason too: a storm of one signal's Events on a
 * Node (25 of reason A) leaves the burst of another reason on the same Node
 * untouched, while A itself stays throttled.
 */
static void test_spam_per_reason(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event a = node_event("ProcessOOMKilled");
	struct ec_event b = node_event("DiskPressure");
	struct ec_event a_other_key = node_event("ProcessOOMKilled");
	int i;

	a_other_key.key = "another container";
	assert_int_equal(observe(ec, &a, T0).action, EC_CREATE);
	for (i = 2; i <= EC_SPAM_BURST; i++)
		assert_int_equal(observe(ec, &a, T0 + i * SEC).action, EC_PATCH);
	assert_int_equal(observe(ec, &a, T0 + 26 * SEC).action, EC_THROTTLED);
	/* another series of reason A shares A's bucket */
	assert_int_equal(observe(ec, &a_other_key, T0 + 27 * SEC).action, EC_THROTTLED);
	/* reason B on the same Node still goes out, and has its own full burst */
	assert_int_equal(observe(ec, &b, T0 + 28 * SEC).action, EC_CREATE);
	for (i = 2; i <= EC_SPAM_BURST; i++)
		assert_int_equal(observe(ec, &b, T0 + (28 + i) * SEC).action, EC_PATCH);
	assert_int_equal(observe(ec, &b, T0 + 60 * SEC).action, EC_THROTTLED);
	event_correlator_free(ec);
}

/* Node events are correlated like any other object (no namespace). */
static void test_node_event(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event ev = node_event("Ext4Error");
	struct ec_decision d = observe(ec, &ev, T0);

	assert_int_equal(d.action, EC_CREATE);
	assert_string_equal(d.name, "node-1.18da11bc3c83fc00");
	d = observe(ec, &ev, T0 + SEC);
	assert_int_equal(d.action, EC_PATCH);
	assert_int_equal(d.count, 2);
	event_correlator_free(ec);
}

/* 4097 objects: the least recently used series and bucket are dropped, 4096 stay. */
static void test_lru_bound(void **state)
{
	struct event_correlator *ec = new_ec();
	char name[32];
	struct ec_event ev;
	struct ec_decision d, first0;
	int i;

	ev = pod_event("pod-0", "ProcessOOMKilled", "app");
	first0 = observe(ec, &ev, T0);
	/* exhaust pod-0's spam bucket */
	for (i = 1; i < EC_SPAM_BURST; i++)
		observe(ec, &ev, T0);
	assert_int_equal(observe(ec, &ev, T0).action, EC_THROTTLED);

	for (i = 1; i <= EC_LRU_DEFAULT; i++) {
		snprintf(name, sizeof(name), "pod-%d", i);
		ev = pod_event(name, "ProcessOOMKilled", "app");
		d = observe(ec, &ev, T0 + SEC);
		assert_int_equal(d.action, EC_CREATE);
		assert_true(event_correlator_len(ec) <= EC_LRU_DEFAULT);
	}
	assert_int_equal(event_correlator_len(ec), EC_LRU_DEFAULT);

	/* pod-0 was evicted from both tables: a new series, and a full bucket again */
	ev = pod_event("pod-0", "ProcessOOMKilled", "app");
	assert_int_equal(event_correlator_get(ec, &ev, &(struct ec_state){ 0 }), -ENOENT);
	d = observe(ec, &ev, T0 + 2 * SEC);
	assert_int_equal(d.action, EC_CREATE);
	assert_int_equal(d.count, 1);
	assert_string_not_equal(d.name, first0.name);
	assert_int_equal(event_correlator_len(ec), EC_LRU_DEFAULT);

	/* which pushed out pod-1, the oldest one left */
	ev = pod_event("pod-1", "ProcessOOMKilled", "app");
	assert_int_equal(event_correlator_get(ec, &ev, &(struct ec_state){ 0 }), -ENOENT);

	/* the newest is still there */
	snprintf(name, sizeof(name), "pod-%d", EC_LRU_DEFAULT);
	ev = pod_event(name, "ProcessOOMKilled", "app");
	d = observe(ec, &ev, T0 + 3 * SEC);
	assert_int_equal(d.action, EC_PATCH);
	assert_int_equal(d.count, 2);
	event_correlator_free(ec);
}

/* A use keeps a series: LRU, not FIFO. */
static void test_lru_is_recency(void **state)
{
	struct event_correlator *ec = event_correlator_new("ksight", "node-1", 3);
	struct ec_event a = pod_event("a", "R", NULL), b = pod_event("b", "R", NULL);
	struct ec_event c = pod_event("c", "R", NULL), e = pod_event("e", "R", NULL);
	struct ec_state st;

	assert_non_null(ec);
	observe(ec, &a, T0);
	observe(ec, &b, T0);
	observe(ec, &c, T0);
	assert_int_equal(observe(ec, &a, T0 + SEC).action, EC_PATCH);  /* a is now the newest */
	observe(ec, &e, T0 + SEC);                                      /* evicts b */
	assert_int_equal(event_correlator_len(ec), 3);
	assert_int_equal(event_correlator_get(ec, &b, &st), -ENOENT);
	assert_int_equal(event_correlator_get(ec, &a, &st), 0);
	assert_int_equal(st.count, 2);
	event_correlator_free(ec);
}

static void test_confirmed(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event ev = pod_event("p", "R", "app");
	struct ec_decision d1 = observe(ec, &ev, T0);
	struct ec_state st;

	assert_int_equal(event_correlator_confirmed(ec, &ev, d1.name, "4711", 1), 0);
	assert_int_equal(event_correlator_get(ec, &ev, &st), 0);
	assert_string_equal(st.resource_version, "4711");
	assert_int_equal(st.count, 1);

	observe(ec, &ev, T0 + SEC);
	observe(ec, &ev, T0 + 2 * SEC);
	/* a late answer with a lower count never lowers the local one */
	assert_int_equal(event_correlator_confirmed(ec, &ev, d1.name, "4712", 2), 0);
	assert_int_equal(event_correlator_get(ec, &ev, &st), 0);
	assert_int_equal(st.count, 3);
	assert_string_equal(st.resource_version, "4712");
	/* a higher server count is taken */
	assert_int_equal(event_correlator_confirmed(ec, &ev, d1.name, "4713", 9), 0);
	assert_int_equal(observe(ec, &ev, T0 + 3 * SEC).count, 10);

	/* stale: another name */
	assert_int_equal(event_correlator_confirmed(ec, &ev, "p.0000000000000001", "1", 1), -ENOENT);
	event_correlator_free(ec);
}

/* 404 on PATCH: re-create with the same name, count and firstTimestamp. */
static void test_not_found_recreates(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event ev = pod_event("p", "ProcessOOMKilled", "app");
	struct ec_decision d1 = observe(ec, &ev, T0), d2, re, d3;
	struct ec_state st;

	assert_int_equal(event_correlator_confirmed(ec, &ev, d1.name, "100", 1), 0);
	d2 = observe(ec, &ev, T0 + 5 * MIN);
	assert_int_equal(d2.action, EC_PATCH);

	memset(&re, 0, sizeof(re));
	assert_int_equal(event_correlator_not_found(ec, &ev, d2.name, &re), 0);
	assert_int_equal(re.action, EC_CREATE);
	assert_string_equal(re.name, d1.name);
	assert_int_equal(re.count, 2);
	assert_true(re.first_ns == T0);
	assert_true(re.last_ns == T0 + 5 * MIN);
	assert_int_equal(event_correlator_get(ec, &ev, &st), 0);
	assert_string_equal(st.resource_version, "");  /* resourceVersion left unset */

	/* the re-create is in flight: the next one PATCHes */
	d3 = observe(ec, &ev, T0 + 6 * MIN);
	assert_int_equal(d3.action, EC_PATCH);
	assert_string_equal(d3.name, d1.name);
	assert_int_equal(d3.count, 3);

	/* stale name: nothing to do */
	assert_int_equal(event_correlator_not_found(ec, &ev, "p.0000000000000001", &re), -ENOENT);
	event_correlator_free(ec);
}

/* The re-create (or any POST) failed for good: the next occurrence POSTs, same name, full count. */
static void test_send_failed_then_create(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event ev = pod_event("p", "ProcessOOMKilled", "app");
	struct ec_decision d1 = observe(ec, &ev, T0), re, d;

	observe(ec, &ev, T0 + MIN);
	assert_int_equal(event_correlator_not_found(ec, &ev, d1.name, &re), 0);
	assert_int_equal(event_correlator_send_failed(ec, &ev, d1.name), 0);

	d = observe(ec, &ev, T0 + 2 * MIN);
	assert_int_equal(d.action, EC_CREATE);
	assert_string_equal(d.name, d1.name);
	assert_int_equal(d.count, 3);
	assert_true(d.first_ns == T0);

	d = observe(ec, &ev, T0 + 3 * MIN);
	assert_int_equal(d.action, EC_PATCH);
	assert_int_equal(d.count, 4);

	assert_int_equal(event_correlator_send_failed(ec, &ev, "p.0000000000000001"), -ENOENT);
	event_correlator_free(ec);
}

/* 409 on POST: a fresh name that the series keeps. */
static void test_renamed(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event ev = pod_event("p", "ProcessOOMKilled", "app");
	struct ec_decision d1 = observe(ec, &ev, T0), d;
	char fresh[EC_NAME_MAX], want[EC_NAME_MAX], stale[EC_NAME_MAX];

	assert_int_equal(event_correlator_renamed(ec, &ev, d1.name, T0 + SEC, fresh, sizeof(fresh)), 0);
	expected_name(want, "p", T0 + SEC);
	assert_string_equal(fresh, want);

	d = observe(ec, &ev, T0 + 2 * SEC);
	assert_int_equal(d.action, EC_PATCH);
	assert_string_equal(d.name, fresh);
	assert_int_equal(d.count, 2);

	/* the same instant as an earlier name still gives a new one */
	assert_int_equal(event_correlator_renamed(ec, &ev, fresh, T0, want, sizeof(want)), 0);
	assert_string_not_equal(want, fresh);

	/* in place, as the recorder does it: the old name's buffer receives the new one */
	memcpy(stale, want, sizeof(stale));
	assert_int_equal(event_correlator_renamed(ec, &ev, stale, T0, stale, sizeof(stale)), 0);
	assert_string_not_equal(stale, want);
	d = observe(ec, &ev, T0 + 3 * SEC);
	assert_int_equal(d.action, EC_PATCH);
	assert_string_equal(d.name, stale);
	memcpy(want, stale, sizeof(want));
	assert_int_equal(event_correlator_renamed(ec, &ev, "p.1", T0, stale, EC_NAME_MAX - 1), -ENOSPC);

	/* stale: a name still comes back, the series keeps its own */
	assert_int_equal(event_correlator_renamed(ec, &ev, d1.name, T0 + 3 * SEC, stale, sizeof(stale)), -ENOENT);
	assert_string_not_equal(stale, want);
	assert_int_equal(observe(ec, &ev, T0 + 4 * SEC).action, EC_PATCH);
	event_correlator_free(ec);
}

/* An occurrence stamped before the last one stays in the series and does not move lastTimestamp back. */
static void test_out_of_order_time(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event ev = pod_event("p", "R", "app");
	struct ec_decision d;

	observe(ec, &ev, T0 + 10 * SEC);
	d = observe(ec, &ev, T0 + 5 * SEC);
	assert_int_equal(d.action, EC_PATCH);
	assert_int_equal(d.count, 2);
	assert_true(d.last_ns == T0 + 10 * SEC);
	assert_true(d.first_ns == T0 + 10 * SEC);
	event_correlator_free(ec);
}

static void test_invalid_input(void **state)
{
	struct event_correlator *ec = new_ec();
	struct ec_event ev = pod_event("p", "R", "app");
	struct ec_decision d;

	ev.reason = NULL;
	assert_int_equal(event_correlator_observe(ec, &ev, T0, &d), -EINVAL);
	ev = pod_event("p", "", "app");
	assert_int_equal(event_correlator_observe(ec, &ev, T0, &d), -EINVAL);
	ev = pod_event("p", "R", "app");
	ev.type = NULL;
	assert_int_equal(event_correlator_observe(ec, &ev, T0, &d), -EINVAL);
	ev = pod_event(NULL, "R", "app");
	assert_int_equal(event_correlator_observe(ec, &ev, T0, &d), -EINVAL);
	ev = pod_event("p", "R", "app");
	ev.object.kind = "";
	assert_int_equal(event_correlator_observe(ec, &ev, T0, &d), -EINVAL);
	assert_int_equal(event_correlator_observe(ec, NULL, T0, &d), -EINVAL);
	assert_int_equal(event_correlator_len(ec), 0);
	event_correlator_free(ec);
}

static void test_event_name(void **state)
{
	char buf[EC_NAME_MAX], obj[300];
	size_t n;

	assert_int_equal(ec_event_name("node-1", 0x18da11bc43dfc600LL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "node-1.18da11bc43dfc600");
	/* always 16 digits */
	assert_int_equal(ec_event_name("a.b", 0x1f, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "a.b.000000000000001f");

	/* a 253-character name is cut so the result is 253, ending alphanumeric */
	memset(obj, 'a', 253);
	obj[253] = '\0';
	assert_int_equal(ec_event_name(obj, 1, buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf), 253);
	assert_string_equal(buf + 236, ".0000000000000001");

	/* a cut that ends on '-' or '.' drops it */
	memset(obj, 'b', 253);
	obj[235] = '-';
	obj[234] = '.';
	obj[253] = '\0';
	assert_int_equal(ec_event_name(obj, 1, buf, sizeof(buf)), 0);
	n = strlen(buf);
	assert_int_equal(n, 234 + 17);
	assert_string_equal(buf + 234, ".0000000000000001");

	/* not a DNS subdomain */
	assert_int_equal(ec_event_name("Bad_Name", 2, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "event.0000000000000002");
	assert_int_equal(ec_event_name("a..b", 2, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "event.0000000000000002");
	assert_int_equal(ec_event_name("-a", 2, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "event.0000000000000002");
	assert_int_equal(ec_event_name("", 2, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "event.0000000000000002");

	assert_int_equal(ec_event_name("p", 2, buf, EC_NAME_MAX - 1), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_event_creates),
		cmocka_unit_test(test_repeats_patch),
		cmocka_unit_test(test_window_slides),
		cmocka_unit_test(test_window_boundary),
		cmocka_unit_test(test_separate_series),
		cmocka_unit_test(test_key_fields_do_not_run_together),
		cmocka_unit_test(test_names_unique_at_same_time),
		cmocka_unit_test(test_spam_filter),
		cmocka_unit_test(test_spam_per_object_and_throttled_create),
		cmocka_unit_test(test_spam_per_reason),
		cmocka_unit_test(test_node_event),
		cmocka_unit_test(test_lru_bound),
		cmocka_unit_test(test_lru_is_recency),
		cmocka_unit_test(test_confirmed),
		cmocka_unit_test(test_not_found_recreates),
		cmocka_unit_test(test_send_failed_then_create),
		cmocka_unit_test(test_renamed),
		cmocka_unit_test(test_out_of_order_time),
		cmocka_unit_test(test_invalid_input),
		cmocka_unit_test(test_event_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
