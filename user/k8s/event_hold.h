/*
 * Events held for a pod the cache does not know yet.
 *
 * The cgroup names a pod's UID at once, but the pod cache learns the pod
 * only from the API: not before the first LIST completes, not while the
 * watch is in backoff, not before a new pod's watch event arrives. An Event
 * recorded in that gap would land on the Node. Instead it waits here until
 * its pod is known (then it goes to the Pod, re-resolved) or until it has
 * waited EVENT_HOLD_MAX_NS (then it goes to the Node, with the pod UID in
 * its message). At most EVENT_HOLD_MAX Events wait; one more is not held.
 *
 * Pure bookkeeping: no locks, no clock, no pod cache. Whether a pod is
 * known is the caller's callback, every time is passed in (CLOCK_MONOTONIC
 * ns), so tests control both. Entries leave in the order they came, so the
 * Events of one pod keep their order.
 */
#ifndef KSIGHT_EVENT_HOLD_H
#define KSIGHT_EVENT_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Long enough for a first LIST of a busy node and a watch backoff or two; short enough to stay news. */
#define EVENT_HOLD_MAX_NS (10LL * 1000000000LL)
/* A storm in an unknown pod must not grow without bound: the rest go to the Node at once. */
#define EVENT_HOLD_MAX    256

/* One held Event: everything needed to post it later (the strings are copies). */
struct held_event {
	struct held_event *next;
	const char *type, *reason, *message;
	const char *key;          /* NULL: the container, derived when released */
	char pod_uid[37];         /* from the cgroup */
	char container_id[65];    /* from the cgroup, "" if none */
	int64_t wall_ns;          /* the occurrence (CLOCK_REALTIME) */
	int64_t held_ns;          /* when it was held (CLOCK_MONOTONIC) */
	char data[];
};

enum event_hold_outcome {
	EVENT_HOLD_RESOLVED,  /* its pod is known now: post on the Pod */
	EVENT_HOLD_TIMEOUT,   /* held EVENT_HOLD_MAX_NS (max_ns): post on the Node */
	EVENT_HOLD_SHUTDOWN,  /* the agent stops: post where it can */
};

struct event_hold;

/* cap 0: EVENT_HOLD_MAX; max_ns 0: EVENT_HOLD_MAX_NS. NULL on ENOMEM. */
struct event_hold *event_hold_new(size_t cap, int64_t max_ns);
/* Frees the entries still held too. NULL-safe. */
void event_hold_free(struct event_hold *h);

/*
 * Hold a copy of `ev` (next, data and held_ns ignored; held_ns becomes
 * now_ns). -ENOSPC when cap Events are held (nothing is copied: post it
 * now), -EINVAL without type, reason or pod UID, -ENOMEM.
 */
int event_hold_add(struct event_hold *h, const struct held_event *ev, int64_t now_ns);

/* Some Event of this pod is held: a new one must queue behind it to keep their order. */
bool event_hold_has_pod(const struct event_hold *h, const char *pod_uid);

size_t event_hold_len(const struct event_hold *h);

/* When the oldest entry times out (CLOCK_MONOTONIC ns); INT64_MAX when empty. */
int64_t event_hold_deadline(const struct event_hold *h);

typedef bool (*event_hold_known_fn)(void *ctx, const char *pod_uid);

/*
 * The oldest entry that may leave at now_ns: its pod is known (`known`),
 * it was held max_ns or more, or (`stopping`) any. The caller owns it (free
 * it with free()); *outcome says why. NULL when none may leave yet.
 */
struct held_event *event_hold_take(struct event_hold *h, int64_t now_ns, bool stopping,
				   event_hold_known_fn known, void *ctx, enum event_hold_outcome *outcome);

#endif
