/*
 * List + watch of one Kubernetes resource, on a thread of its own.
 *
 * LIST (served from the API server's watch cache with resourceVersion=0, so
 * a DaemonSet rollout does not send every node's list to etcd; after a 410
 * the list is a consistent read, since a cache that lagged once may lag
 * again), streamed and decoded item by item, then WATCH from the list's
 * resourceVersion with bookmarks, and again when the watch ends; a 410 or an
 * event we could not read lists again. Failures back off (backoff.h), honour
 * Retry-After, and are logged once per distinct cause.
 *
 * The handler's callbacks run on the watch thread, one at a time, in stream
 * order; the object they get is borrowed (json_object_get() to keep it).
 * k8s_informer.h adds a store and subscriptions on top.
 */
#ifndef KSIGHT_K8S_WATCH_H
#define KSIGHT_K8S_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

struct k8s_config;
struct metrics_registry;

#define K8S_WATCH_BACKOFF_MIN_MS	1000L
#define K8S_WATCH_BACKOFF_MAX_MS	60000L
/* A Retry-After beyond this is taken as this: a typo must not stall us for a day. */
#define K8S_WATCH_RETRY_AFTER_MAX_S	600L
/* A LIST body beyond this is refused: memory is bounded anyway, time is not. */
#define K8S_WATCH_LIST_MAX_BODY		((size_t)1 << 30)

enum k8s_watch_event {
	K8S_WATCH_ADDED,
	K8S_WATCH_MODIFIED,
	K8S_WATCH_DELETED,
	K8S_WATCH_BOOKMARK,	/* only metadata.resourceVersion is meaningful */
};

/* "ADDED", "MODIFIED", "DELETED", "BOOKMARK". */
const char *k8s_watch_event_name(enum k8s_watch_event type);

struct k8s_watch_spec {
	/* "pods": in log lines ("pods list forbidden: ...") and the RBAC hint */
	const char *resource;
	/* the collection, "/api/v1/pods" or "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices" */
	const char *path;
	const char *field_selector;	/* NULL or "spec.nodeName=node-1" (not URL-encoded) */
	const char *label_selector;	/* NULL or "kubernetes.io/service-name=kubernetes" */
	/* what is watched, for "... works again" lines: "pods of node node-1" */
	const char *what;
};

struct k8s_watch_handler {
	/* A LIST starts: the objects until list_end are the whole current set. */
	void (*list_begin)(void *ctx);
	/* One object: each item of a LIST as ADDED (listing true), or a watch event. */
	void (*object)(void *ctx, enum k8s_watch_event type, json_object *obj, bool listing);
	/*
	 * The LIST that list_begin started ended: complete (every item was
	 * given; objects not among them are gone) or not (it broke off; the
	 * next one starts over). `items` counts the objects given. The first
	 * complete one is "synced" (k8s_watch_synced() is true once it
	 * returns); later ones are re-lists (after a 410 or a lost event).
	 */
	void (*list_end)(void *ctx, bool complete, size_t items);
	/* Periodic, on the watch thread: after each chunk and sleep slice, forced after a list and a failure. */
	void (*tick)(void *ctx, bool force);
};

struct k8s_watch;

/*
 * Start the thread. `spec`'s strings are copied; `cfg` must outlive the
 * watch; `handler` is copied, `ctx` is passed to it; any callback may be
 * NULL. `reg` (may be NULL) gets ksight_k8s_watch_restarts_total,
 * ksight_k8s_api_errors_total and ksight_k8s_watch_lines_dropped_total
 * (shared by every watch on the registry). Returns 0 and *out, -EINVAL,
 * -ENOMEM, or the error from pthread_create().
 */
int k8s_watch_start(const struct k8s_config *cfg, const struct k8s_watch_spec *spec,
		    const struct k8s_watch_handler *handler, void *ctx,
		    struct metrics_registry *reg, struct k8s_watch **out);

/* Stop within about a second, join and free. NULL-safe. No callback runs after it returns. */
void k8s_watch_stop(struct k8s_watch *w);

/* A LIST has completed once: the handler has seen the whole set. Any thread. */
bool k8s_watch_synced(struct k8s_watch *w);

/* Encode `s` as a URL query value (unreserved characters kept). */
struct strbuf;
void k8s_url_encode(struct strbuf *sb, const char *s);

#endif
