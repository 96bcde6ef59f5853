/*
 * What every signal's events share, and their fan-out: the trace printer
 * (aligned columns or JSON lines). Metrics are the signal's own business.
 */
#ifndef KSIGHT_EVENT_H
#define KSIGHT_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "cgroup_identity.h"

struct agent;
struct ksight_cgroup;
struct strbuf;

struct event_common {
	const char *signal;
	uint64_t boot_ns;       /* CLOCK_BOOTTIME of the event */
	uint32_t pid;
	const char *comm;
	const char *cgroup;     /* path, "" if unknown */
	struct cgroup_identity id;
	const char *namespace_; /* names from the Kubernetes API; "" until known */
	const char *pod;
	const char *container;
	const char *pod_api_uid; /* the Pod's metadata.uid when known (static pods: not id.pod_uid) */
	/* storage k8s_resolve() points the names into */
	char names[4][256];
};

/* Build the path "/a/b/c" from kernel-captured names (leaf first). */
void cgroup_path_from_kernel(const struct ksight_cgroup *cg, char *out, size_t outlen);

/* Fill `ev->cgroup`/`ev->id` from a path (path must outlive ev). */
void event_set_cgroup(struct event_common *ev, const char *path);

/*
 * The wall-clock time (ns since the epoch) of a CLOCK_BOOTTIME stamp, with the
 * clocks' offset read now: a clock step after start-up is followed.
 */
int64_t event_wall_ns(const struct agent *agent, uint64_t boot_ns);

/* RFC 3339 UTC with nanoseconds: 2026-11-27T02:40:58.123456789Z */
void format_rfc3339_ns(int64_t wall_ns, char *out, size_t outlen);

/*
 * Add a string field: JSON is UTF-8, kernel strings (comm, cgroup names) are
 * bytes, so invalid bytes become U+FFFD. Signals add their strings this way.
 */
void event_json_add_string(json_object *obj, const char *key, const char *value);

/* A JSON object with the common fields; the signal adds its own. */
json_object *event_json(const struct agent *agent, const struct event_common *ev);

/*
 * Print one event if the agent traces: `obj` as one JSON line, or a row of
 * aligned columns ending in `details`. Consumes `obj`.
 */
void event_emit(struct agent *agent, const struct event_common *ev, json_object *obj,
		const char *details);

/* "63.2MiB" style sizes for humans. */
void format_bytes(uint64_t bytes, char *out, size_t outlen);

#endif
