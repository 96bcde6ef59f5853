/*
 * Kubernetes Event correlation: which occurrences become a new Event object,
 * which update an existing one, and which are dropped by the spam filter.
 * Modelled on client-go's core/v1 EventCorrelator (tools/record/events_cache.go)
 * without its message-based aggregation: the caller says what makes two
 * occurrences "the same" with `key` (e.g. the container name).
 *
 * Pure bookkeeping: no I/O, no threads, no clock. Every time is passed in as
 * nanoseconds since the epoch (CLOCK_REALTIME), so tests control it. Not
 * thread-safe: the event recorder's worker is the only user.
 *
 * Two LRU-bounded tables:
 *  - series, keyed by source component+host, involvedObject kind, namespace,
 *    name, uid, apiVersion, fieldPath, type, reason and `key` (not the
 *    message): the Event object name, count, first and last occurrence;
 *  - spam buckets, keyed by source, involvedObject, type and reason (client-go:
 *    source and object only; see build_key() for why): a token bucket of
 *    EC_SPAM_BURST that refills one token per EC_SPAM_PERIOD_NS.
 */
#ifndef KSIGHT_EVENT_CORRELATOR_H
#define KSIGHT_EVENT_CORRELATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EC_LRU_DEFAULT    4096                        /* client-go maxLruCacheEntries */
#define EC_WINDOW_NS      (600LL * 1000000000LL)      /* a series ends 10 min after its last occurrence */
#define EC_SPAM_BURST     25                          /* client-go defaultSpamBurst */
#define EC_SPAM_PERIOD_NS (300LL * 1000000000LL)      /* one token per 300 s (defaultSpamQPS) */
#define EC_NAME_MAX       254                         /* a DNS subdomain (253) and its NUL */
#define EC_RV_MAX         64

struct ec_object {
	const char *kind;        /* "Pod", "Node" */
	const char *namespace_;  /* "" or NULL for cluster-scoped objects */
	const char *name;
	const char *uid;
	const char *api_version; /* "v1" */
	const char *field_path;  /* "spec.containers{app}", or NULL */
};

struct ec_event {
	const char *type;        /* "Warning", "Normal" */
	const char *reason;
	const char *key;         /* caller-chosen discriminator, NULL as "" */
	struct ec_object object;
};

enum ec_action {
	EC_CREATE,     /* POST a new Event object `name` with count, first and last */
	EC_PATCH,      /* PATCH `name` with count and last (and the new message) */
	EC_THROTTLED,  /* spam filter: send nothing; the count is kept for the next one */
};

struct ec_decision {
	enum ec_action action;
	char name[EC_NAME_MAX];  /* the Event object's metadata.name */
	int32_t count;           /* occurrences in this series so far, throttled ones included */
	int64_t first_ns;        /* firstTimestamp */
	int64_t last_ns;         /* lastTimestamp */
};

/* What the correlator holds for one series (tests and diagnostics). */
struct ec_state {
	char name[EC_NAME_MAX];
	char resource_version[EC_RV_MAX];  /* from the last server answer, "" before */
	int32_t count;
	int64_t first_ns, last_ns;
	bool need_create;        /* the server is not known to have the object: the next send POSTs */
};

struct event_correlator;

/* component and host are source.component and source.host (copied); lru_cap 0: EC_LRU_DEFAULT. */
struct event_correlator *event_correlator_new(const char *component, const char *host, size_t lru_cap);
void event_correlator_free(struct event_correlator *ec);

/*
 * One occurrence at `now_ns`. A new series (none yet, or the last occurrence
 * more than EC_WINDOW_NS ago) gets a fresh name and count 1; otherwise the
 * count goes up and last moves to now. Then the object's and reason's spam bucket decides
 * between sending (CREATE when the server does not have the object yet, else
 * PATCH) and THROTTLED. A CREATE is assumed to succeed until
 * event_correlator_send_failed() says otherwise, so occurrences while it is
 * in flight become PATCHes. `out` is filled in for every action.
 * -EINVAL when type, reason, object kind or name is missing; -ENOMEM.
 */
int event_correlator_observe(struct event_correlator *ec, const struct ec_event *ev, int64_t now_ns,
			     struct ec_decision *out);

/*
 * The server holds object `name` (a POST or PATCH succeeded): remember its
 * resourceVersion and count (the local count never goes down). -ENOENT when
 * the series was evicted or has moved on to another name (a stale answer).
 */
int event_correlator_confirmed(struct event_correlator *ec, const struct ec_event *ev, const char *name,
			       const char *resource_version, int32_t server_count);

/*
 * A PATCH of `name` got 404 (the Event expired, TTL 1 h by default, or was
 * deleted): `out` becomes the CREATE that re-creates it with the same name,
 * count and firstTimestamp. -ENOENT for a stale name (`out` untouched).
 */
int event_correlator_not_found(struct event_correlator *ec, const struct ec_event *ev, const char *name,
			       struct ec_decision *out);

/* A POST of `name` was given up or rejected: the next allowed occurrence POSTs again. */
int event_correlator_send_failed(struct event_correlator *ec, const struct ec_event *ev, const char *name);

/*
 * A POST of `name` got 409 AlreadyExists: a fresh name for it in `new_name`
 * (filled in even when stale; `len` >= EC_NAME_MAX, else -ENOSPC; may be
 * the buffer `name` is in), which the series takes over unless it is stale
 * (-ENOENT).
 */
int event_correlator_renamed(struct event_correlator *ec, const struct ec_event *ev, const char *name,
			     int64_t now_ns, char *new_name, size_t len);

/*
 * The state of the series `ev` belongs to, without touching the LRU order
 * (not const: the key is built in the correlator's scratch buffer). -ENOENT if none.
 */
int event_correlator_get(struct event_correlator *ec, const struct ec_event *ev, struct ec_state *out);

/* Series held (at most lru_cap). */
size_t event_correlator_len(const struct event_correlator *ec);

/*
 * client-go's Event name: "<object name>.<16 lowercase hex digits of ns>".
 * The object name is cut so the result stays a DNS subdomain (<= 253); a
 * name that is not one (upper case, '_', ...) is replaced by "event".
 * -ENOSPC when `len` < EC_NAME_MAX.
 */
int ec_event_name(const char *obj_name, int64_t ns, char *buf, size_t len);

#endif
