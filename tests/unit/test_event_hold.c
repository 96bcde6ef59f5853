/*
 * Unit tests for the hold queue of Events whose pod the cache does not know
 * yet (event_hold.h): nothing leaves while the pod is unknown and the time is
 * not up, a pod that becomes known releases its Events in order, the time
 * bound releases them as timeouts exactly at max_ns, the count bound refuses
 * the one over cap, and stopping releases everything.
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

#include <cmocka.h>

#include "event_hold.h"

#define SEC   1000000000LL
#define UID_A "7a1c2d3e-4b5a-4c6d-8e7f-0123456789ab"
#define UID_B "8b2d3e4f-5c6b-4d7e-9f80-123456789abc"

/* the pods the fake cache knows, by UID */
struct known_set {
	const char *uids[4];
	int calls;
};

static bool known(void *ctx, const char *pod_uid)
{
	struct known_set *k = ctx;
	size_t i;

	k->calls++;
	for (i = 0; i < 4 && k->uids[i]; i++)
		if (!strcmp(k->uids[i], pod_uid))
			return true;
	return false;
}

static void hold(struct event_hold *h, const char *uid, const char *message, int64_t now)
{
	struct held_event ev = { .type = "Warning", .reason = "ProcessOOMKilled", .message = message,
				 .wall_ns = 1790763302LL * SEC };

	snprintf(ev.pod_uid, sizeof(ev.pod_uid), "%s", uid);
	snprintf(ev.container_id, sizeof(ev.container_id), "%s", "b16b00b5");
	assert_int_equal(event_hold_add(h, &ev, now), 0);
}

/* take one and check it; returns nothing (frees it) */
static void expect_take(struct event_hold *h, int64_t now, bool stopping, struct known_set *k,
			const char *message, enum event_hold_outcome want)
{
	enum event_hold_outcome outcome = (enum event_hold_outcome)-1;
	struct held_event *e = event_hold_take(h, now, stopping, known, k, &outcome);

	assert_non_null(e);
	assert_string_equal(e->message, message);
	assert_int_equal(outcome, want);
	free(e);
}

static void expect_none(struct event_hold *h, int64_t now, struct known_set *k)
{
	enum event_hold_outcome outcome;

	assert_null(event_hold_take(h, now, false, known, k, &outcome));
}

/* An unknown pod's Event stays until the time is up; the copy owns its strings. */
static void test_held_until_known(void **state)
{
	struct event_hold *h = event_hold_new(0, 0);
	struct known_set k = { .calls = 0 };
	char message[32] = "first";
	enum event_hold_outcome outcome;
	struct held_event *e;

	assert_non_null(h);
	hold(h, UID_A, message, 100 * SEC);
	strcpy(message, "changed");  /* the caller's buffer may change */
	assert_int_equal(event_hold_len(h), 1);
	assert_true(event_hold_has_pod(h, UID_A));
	assert_false(event_hold_has_pod(h, UID_B));
	expect_none(h, 100 * SEC, &k);
	expect_none(h, 109 * SEC, &k);
	assert_true(k.calls >= 2);

	k.uids[0] = UID_A;
	e = event_hold_take(h, 101 * SEC, false, known, &k, &outcome);
	assert_non_null(e);
	assert_int_equal(outcome, EVENT_HOLD_RESOLVED);
	assert_string_equal(e->message, "first");
	assert_string_equal(e->type, "Warning");
	assert_string_equal(e->reason, "ProcessOOMKilled");
	assert_null(e->key);
	assert_string_equal(e->pod_uid, UID_A);
	assert_string_equal(e->container_id, "b16b00b5");
	assert_true(e->wall_ns == 1790763302LL * SEC);
	assert_true(e->held_ns == 100 * SEC);
	free(e);
	assert_int_equal(event_hold_len(h), 0);
	assert_false(event_hold_has_pod(h, UID_A));
	assert_true(event_hold_deadline(h) == INT64_MAX);
	event_hold_free(h);
}

/* max_ns after it was held, not a nanosecond before: a timeout. */
static void test_timeout_boundary(void **state)
{
	struct event_hold *h = event_hold_new(0, 0);
	struct known_set k = { .calls = 0 };

	hold(h, UID_A, "a1", 100 * SEC);
	hold(h, UID_A, "a2", 103 * SEC);
	assert_true(event_hold_deadline(h) == 100 * SEC + EVENT_HOLD_MAX_NS);
	expect_none(h, 100 * SEC + EVENT_HOLD_MAX_NS - 1, &k);
	expect_take(h, 100 * SEC + EVENT_HOLD_MAX_NS, false, &k, "a1", EVENT_HOLD_TIMEOUT);
	/* the second one has 3 s to go */
	assert_true(event_hold_deadline(h) == 103 * SEC + EVENT_HOLD_MAX_NS);
	expect_none(h, 100 * SEC + EVENT_HOLD_MAX_NS, &k);
	expect_take(h, 103 * SEC + EVENT_HOLD_MAX_NS, false, &k, "a2", EVENT_HOLD_TIMEOUT);
	event_hold_free(h);
}

/* Known pods leave in the order they came; an unknown pod's Event does not hold them up. */
static void test_order_and_independence(void **state)
{
	struct event_hold *h = event_hold_new(0, 0);
	struct known_set k = { .calls = 0 };

	hold(h, UID_A, "a1", 100 * SEC);
	hold(h, UID_B, "b1", 101 * SEC);
	hold(h, UID_A, "a2", 102 * SEC);
	hold(h, UID_B, "b2", 103 * SEC);
	k.uids[0] = UID_B;
	expect_take(h, 104 * SEC, false, &k, "b1", EVENT_HOLD_RESOLVED);
	expect_take(h, 104 * SEC, false, &k, "b2", EVENT_HOLD_RESOLVED);
	expect_none(h, 104 * SEC, &k);
	assert_int_equal(event_hold_len(h), 2);
	assert_true(event_hold_has_pod(h, UID_A));
	assert_false(event_hold_has_pod(h, UID_B));
	/* a known pod at its timeout is still resolved */
	k.uids[1] = UID_A;
	expect_take(h, 200 * SEC, false, &k, "a1", EVENT_HOLD_RESOLVED);
	expect_take(h, 200 * SEC, false, &k, "a2", EVENT_HOLD_RESOLVED);
	assert_int_equal(event_hold_len(h), 0);
	event_hold_free(h);
}

/* the cache learns the pod in the middle of a pass: false for the first question, true after */
static bool learns_late(void *ctx, const char *pod_uid)
{
	int *calls = ctx;

	return (*calls)++ > 0;
}

/* A pod learnt between the answers for its two Events: the older one still goes first. */
static void test_no_overtaking(void **state)
{
	struct event_hold *h = event_hold_new(0, 0);
	enum event_hold_outcome outcome;
	struct held_event *e;
	int calls = 0;

	hold(h, UID_A, "a1", 100 * SEC);
	hold(h, UID_A, "a2", 101 * SEC);
	e = event_hold_take(h, 102 * SEC, false, learns_late, &calls, &outcome);
	assert_non_null(e);
	assert_int_equal(calls, 2);
	assert_string_equal(e->message, "a1");
	assert_int_equal(outcome, EVENT_HOLD_RESOLVED);
	free(e);
	e = event_hold_take(h, 102 * SEC, false, learns_late, &calls, &outcome);
	assert_non_null(e);
	assert_string_equal(e->message, "a2");
	free(e);
	event_hold_free(h);
}

/* cap Events are held; the next is refused (-ENOSPC) and nothing else changes. */
static void test_cap(void **state)
{
	struct event_hold *h = event_hold_new(0, 0);
	struct held_event ev = { .type = "Warning", .reason = "R", .message = "over", .key = "k" };
	struct known_set k = { .calls = 0 };
	char msg[16];
	int i;

	for (i = 0; i < EVENT_HOLD_MAX; i++) {
		snprintf(msg, sizeof(msg), "m%d", i);
		hold(h, UID_A, msg, 100 * SEC + i);
	}
	snprintf(ev.pod_uid, sizeof(ev.pod_uid), "%s", UID_B);
	assert_int_equal(event_hold_add(h, &ev, 200 * SEC), -ENOSPC);
	assert_int_equal(event_hold_len(h), EVENT_HOLD_MAX);
	assert_false(event_hold_has_pod(h, UID_B));
	/* one leaves: room for one */
	expect_take(h, 100 * SEC + EVENT_HOLD_MAX_NS, false, &k, "m0", EVENT_HOLD_TIMEOUT);
	assert_int_equal(event_hold_add(h, &ev, 200 * SEC), 0);
	assert_int_equal(event_hold_add(h, &ev, 200 * SEC), -ENOSPC);
	event_hold_free(h);  /* frees the 256 still held (ASan checks) */

	h = event_hold_new(2, 5 * SEC);
	hold(h, UID_A, "x", 0);
	hold(h, UID_A, "y", 0);
	assert_int_equal(event_hold_add(h, &ev, 0), -ENOSPC);
	expect_take(h, 5 * SEC, false, &k, "x", EVENT_HOLD_TIMEOUT);
	event_hold_free(h);
}

/* Stopping: everything leaves at once, known pods as resolved, the rest as shutdown. */
static void test_stopping(void **state)
{
	struct event_hold *h = event_hold_new(0, 0);
	struct known_set k = { .uids = { UID_B }, .calls = 0 };
	enum event_hold_outcome outcome;

	hold(h, UID_A, "a1", 100 * SEC);
	hold(h, UID_B, "b1", 100 * SEC);
	expect_take(h, 100 * SEC, true, &k, "a1", EVENT_HOLD_SHUTDOWN);
	expect_take(h, 100 * SEC, true, &k, "b1", EVENT_HOLD_RESOLVED);
	assert_null(event_hold_take(h, 100 * SEC, true, known, &k, &outcome));
	event_hold_free(h);
}

static void test_invalid(void **state)
{
	struct event_hold *h = event_hold_new(0, 0);
	struct held_event ev = { .type = "Warning", .reason = "R", .message = NULL };

	/* no pod UID: nothing to wait for */
	assert_int_equal(event_hold_add(h, &ev, 0), -EINVAL);
	snprintf(ev.pod_uid, sizeof(ev.pod_uid), "%s", UID_A);
	ev.reason = NULL;
	assert_int_equal(event_hold_add(h, &ev, 0), -EINVAL);
	ev.reason = "R";
	/* a NULL message is held as "" */
	assert_int_equal(event_hold_add(h, &ev, 0), 0);
	assert_int_equal(event_hold_len(h), 1);
	event_hold_free(NULL);
	event_hold_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_held_until_known),
		cmocka_unit_test(test_timeout_boundary),
		cmocka_unit_test(test_order_and_independence),
		cmocka_unit_test(test_no_overtaking),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_stopping),
		cmocka_unit_test(test_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
