/*
 * Kubernetes Events (core/v1, the legacy fields as client-go's record
 * package writes them), as pure functions: what an occurrence is
 * (struct k8s_event), whether it can be recorded, the POST and PATCH bodies,
 * the request path, and what an answer means (k8s_event_verdict). No I/O,
 * no state: unit-tested and fuzzed (tests/fuzz/fuzz_event_bodies.c).
 * event_recorder.h sends them.
 */
#ifndef KSIGHT_K8S_EVENT_BODY_H
#define KSIGHT_K8S_EVENT_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define K8S_EVENT_MESSAGE_MAX  1024  /* bytes; the events.k8s.io limit, cut on a UTF-8 boundary */
#define K8S_EVENT_INSTANCE_MAX 128   /* reportingInstance limit when eventTime is set */

/* One occurrence. The recorder copies what it needs: no pointer is kept. */
struct k8s_event {
	const char *type;        /* "Warning" or "Normal" */
	const char *reason;      /* UpperCamelCase, e.g. "ProcessOOMKilled" */
	const char *message;     /* human-readable; cut to K8S_EVENT_MESSAGE_MAX bytes */
	const char *key;         /* what else makes repeats "the same" (e.g. the container); NULL as "" */
	struct {
		const char *kind;        /* any core/v1 kind: "Pod", "Node", "PersistentVolumeClaim" */
		const char *namespace_;  /* a namespaced object's; "" or NULL for a cluster-scoped one:
					    the Event then goes to "default" */
		const char *name;
		const char *uid;         /* without it, kubectl describe misses the Event */
		const char *field_path;  /* optional, e.g. "spec.containers{<name>}" */
	} object;
	int64_t time_ns;         /* CLOCK_REALTIME ns of the occurrence; 0: now */
};

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
