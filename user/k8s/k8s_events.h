/*
 * Kubernetes Events (core/v1, legacy fields as client-go's record package
 * writes them) for what ksight sees: an OOM kill on the victim's Pod, node
 * problems on the Node.
 *
 * event_recorder_record() never blocks on the network: it copies the event
 * into a bounded queue and returns. One worker thread with its own
 * k8s_client correlates occurrences (event_correlator.h: a repeat of the same
 * object + reason + key within 10 minutes PATCHes count, lastTimestamp and
 * message; a per-object spam filter), POSTs and PATCHes, and retries with
 * backoff. Every outcome is counted in ksight_k8s_events_total{result}.
 *
 * Body builders, the backoff and the status handling are pure functions,
 * declared below for the unit tests.
 */
#ifndef KSIGHT_K8S_EVENTS_H
#define KSIGHT_K8S_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "k8s_client.h"
#include "metrics.h"
#include "strbuf.h"

#define K8S_EVENT_QUEUE_CAP         1000   /* client-go maxQueuedEvents */
#define K8S_EVENT_MESSAGE_MAX       1024   /* bytes; the events.k8s.io limit, cut on a UTF-8 boundary */
#define K8S_EVENT_INSTANCE_MAX      128    /* reportingInstance limit when eventTime is set */
#define K8S_EVENT_MAX_TRIES         12     /* client-go maxTriesPerEvent */
#define K8S_EVENT_BACKOFF_MIN_MS    1000
#define K8S_EVENT_BACKOFF_MAX_MS    60000
#define K8S_EVENT_RETRY_AFTER_MAX_S 300
#define K8S_EVENT_TIMEOUT_MS        10000  /* one request */

/* One occurrence. The recorder copies what it needs: no pointer is kept. */
struct k8s_event {
	const char *type;        /* "Warning" or "Normal" */
	const char *reason;      /* UpperCamelCase, e.g. "ProcessOOMKilled" */
	const char *message;     /* human-readable; cut to K8S_EVENT_MESSAGE_MAX bytes */
	const char *key;         /* what else makes repeats "the same" (e.g. the container); NULL as "" */
	struct {
		const char *kind;        /* "Pod" or "Node" (apiVersion is always "v1") */
		const char *namespace_;  /* the Pod's; "" or NULL for a Node: the Event goes to "default" */
		const char *name;
		const char *uid;         /* without it, kubectl describe misses the Event */
		const char *field_path;  /* "spec.containers{<name>}", or NULL */
	} object;
	int64_t time_ns;         /* CLOCK_REALTIME ns of the occurrence; 0: now */
};

struct event_recorder;

/*
 * Start the worker. `component` is source.component and reportingComponent
 * ("ksight"), `host` source.host and reportingInstance (the node name).
 * `reg` may be NULL (no metrics); queue_cap 0 means K8S_EVENT_QUEUE_CAP.
 * NULL on failure (logged).
 */
struct event_recorder *event_recorder_start(const struct k8s_config *cfg, const char *component,
					    const char *host, struct metrics_registry *reg, size_t queue_cap);

/*
 * Queue one occurrence; never blocks on I/O. When the queue (events waiting
 * plus Event objects not yet delivered) holds queue_cap, the occurrence is
 * dropped and counted as queue_full. An event without type, reason, object
 * kind or name, or with an invalid namespace, is counted as rejected.
 * A NULL recorder (not in a cluster) ignores everything.
 */
void event_recorder_record(struct event_recorder *r, const struct k8s_event *ev);

/*
 * Wait until everything queued was delivered or given up (events waiting
 * for a retry count as queued). 0, or -ETIMEDOUT; timeout_ms < 0 waits
 * for ever.
 */
int event_recorder_flush(struct event_recorder *r, int timeout_ms);

/*
 * Stop the worker (after the request in flight, at most
 * K8S_EVENT_TIMEOUT_MS) and free everything. What is still queued is
 * counted as failed: flush first to deliver it.
 */
void event_recorder_stop(struct event_recorder *r);

/* ---- pure helpers (unit-tested) ---- */

/* An Event object to POST. */
struct k8s_event_object {
	const struct k8s_event *ev;  /* type, reason, message, object (time_ns unused) */
	const char *name;            /* metadata.name */
	const char *component;       /* source.component, reportingComponent */
	const char *host;            /* source.host, reportingInstance */
	int32_t count;
	int64_t first_ns, last_ns;   /* firstTimestamp, lastTimestamp */
};

/* The namespace the Event lives in: the object's, or "default" for cluster-scoped ones. */
const char *k8s_event_namespace(const struct k8s_event *ev);

/* 0 if `ev` can be recorded, -EINVAL if a required field is missing or the namespace is not a DNS label. */
int k8s_event_check(const struct k8s_event *ev);

/* metav1.Time: RFC 3339 to the second, UTC, "2026-09-30T10:15:02Z". -ENOSPC if len < 21, -EINVAL. */
int k8s_event_time(int64_t ns, char *buf, size_t len);

/* The longest prefix of s[0..len) of at most `max` bytes that does not split a UTF-8 sequence. */
size_t k8s_utf8_prefix(const char *s, size_t len, size_t max);

/* POST body (full Event, eventTime unset so only legacy validation runs), appended to `out`. 0 or -ENOMEM. */
int k8s_event_post_body(const struct k8s_event_object *o, struct strbuf *out);

/* Strategic-merge PATCH body {"count":N,"lastTimestamp":"...","message":"..."}. 0 or -ENOMEM. */
int k8s_event_patch_body(int32_t count, int64_t last_ns, const char *message, struct strbuf *out);

/* "/api/v1/namespaces/<ns>/events[/<name>]" (name NULL: the collection). -EINVAL for unsafe names, -ENOSPC. */
int k8s_event_path(const char *ns, const char *name, char *buf, size_t len);

enum k8s_event_verdict {
	KEV_DONE,      /* 2xx */
	KEV_RETRY,     /* transport error, 401 after the client's token re-read, 408, 429, 5xx */
	KEV_RECREATE,  /* 404 on PATCH: POST it again */
	KEV_RENAME,    /* 409 on POST: a new name, once */
	KEV_REJECT,    /* any other status: log once, drop */
};

/* What to do after a request: `rc` and `status` as k8s_request() returns them. */
enum k8s_event_verdict k8s_event_verdict(int is_patch, int rc, long status);

#endif
