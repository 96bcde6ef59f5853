/*
 * Pod names for this node, from the Kubernetes API.
 *
 * The kernel gives us a cgroup path, cgroup_identity.h turns it into a pod
 * UID and a container ID; this module turns those into namespace, pod and
 * container names. A watcher thread lists and watches the pods bound to this
 * node (fieldSelector=spec.nodeName) and keeps a pod_cache, which the event
 * path reads under a read lock.
 *
 * Deleted pods stay in the cache as tombstones for a while: the event about
 * an OOM-killed container often reaches us after its pod is gone. Container
 * IDs come from every status list, including lastState.terminated (where a
 * restarted container's previous, e.g. OOM-killed, instance is recorded).
 *
 * Static pods: the UID kubelet uses (and puts in the cgroup path) is the
 * manifest hash, not the mirror pod's API UID; the hash is in the mirror
 * pod's "kubernetes.io/config.hash" annotation and works as an alias.
 */
#ifndef KSIGHT_K8S_PODS_H
#define KSIGHT_K8S_PODS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "strbuf.h"

struct k8s_config;
struct metrics_registry;

/* ---- cache ---- */

/* Pods (live and tombstones) the cache holds at most. */
#define POD_CACHE_MAX_PODS	10000
/* Container IDs remembered per pod, current and previous instances. */
#define POD_CACHE_MAX_CONTAINERS 256

struct pod_names {
	char namespace_[64];	/* DNS label: at most 63 */
	char pod[254];		/* DNS subdomain: at most 253 */
	char container[64];	/* "" when the container ID is unknown or not given */
	char uid[65];		/* metadata.uid (a static pod's differs from its cgroup's) */
};

struct pod_cache_stats {
	size_t live;		/* pods not deleted */
	size_t deleted;		/* tombstones */
	uint64_t malformed;	/* pods skipped: uid/name/namespace missing, not strings or too long */
	uint64_t refused;	/* new pods refused: the cache was full of live pods */
	uint64_t evicted;	/* tombstones dropped early to make room for a live pod */
};

struct pod_cache;

struct pod_cache *pod_cache_new(void);
void pod_cache_free(struct pod_cache *cache);	/* NULL-safe */

/*
 * Apply one watch event's Pod. `type` is "ADDED", "MODIFIED" or "DELETED";
 * a DELETED pod becomes a tombstone deleted at `now` (its final status still
 * adds container IDs). `now` is any clock in seconds, used consistently with
 * pod_cache_expire() (the watcher uses CLOCK_MONOTONIC). Returns 0, -EBADMSG
 * for a malformed pod (skipped and counted), -ENOSPC when a new pod does not
 * fit (refused and counted), -EINVAL for a bad `type` or NULL arguments,
 * -ENOMEM.
 */
int pod_cache_apply(struct pod_cache *cache, const char *type, json_object *pod, time_t now);

/*
 * A re-list: `items` (a PodList's "items" array; NULL or not an array is an
 * empty list) becomes the set of live pods. Pods present are added or
 * updated, live pods absent become tombstones deleted at `now`, tombstones
 * stay as they are. Malformed items are skipped and counted.
 */
void pod_cache_replace_all(struct pod_cache *cache, json_object *items, time_t now);

/*
 * Names for a pod UID (the API UID or a static pod's config hash; case, '-'
 * and '_' do not matter) and an optional container ID (64 hex, a
 * "containerd://" style prefix allowed; NULL or "" for none). True when the
 * pod is known, live or tombstone; container is then "" unless the ID is one
 * of the pod's. *out is zeroed on a miss.
 */
bool pod_cache_lookup(struct pod_cache *cache, const char *pod_uid, const char *container_id,
		      struct pod_names *out);

/*
 * Forget tombstones deleted at least keep_deleted_s ago, and container IDs
 * that left a live pod's status at least keep_deleted_s ago.
 */
void pod_cache_expire(struct pod_cache *cache, time_t now, int keep_deleted_s);

void pod_cache_get_stats(struct pod_cache *cache, struct pod_cache_stats *out);

/* ---- watch stream decoder ---- */

/* Longest watch event line we accept; a Pod is far smaller. */
#define WATCH_MAX_LINE		(8u << 20)

/*
 * Splits a watch response body, one JSON object per '\n'-terminated line,
 * into parsed objects. Pure: no I/O, no locks. Zero-initialise, or use
 * watch_decoder_init() for another bound.
 */
struct watch_decoder {
	size_t max_line;	/* 0: WATCH_MAX_LINE */
	struct strbuf partial;	/* the unfinished line so far */
	bool skipping;		/* the current line is over max_line: drop up to '\n' */
	struct json_tokener *tok;
	uint64_t lines;		/* objects handed to the callback */
	uint64_t too_long;	/* lines dropped: over max_line (or out of memory) */
	uint64_t malformed;	/* lines dropped: not one JSON object */
};

/*
 * Called once per complete line with its object, which the decoder releases
 * afterwards (json_object_get() to keep it). Non-zero stops the feed.
 */
typedef int (*watch_line_fn)(void *ctx, json_object *obj);

void watch_decoder_init(struct watch_decoder *dec, size_t max_line);

/*
 * Feed any chunk of the stream. Returns 0, or the callback's non-zero value
 * (the rest of the chunk is then not looked at: reset before feeding again).
 * Blank lines are skipped; a '\r' before the '\n' is fine.
 */
int watch_decoder_feed(struct watch_decoder *dec, const char *data, size_t len,
		       watch_line_fn cb, void *ctx);

/* The stream ended: drop any partial line (not counted), keep the counters. */
void watch_decoder_reset(struct watch_decoder *dec);

void watch_decoder_free(struct watch_decoder *dec);	/* frees buffers, not dec */

/* ---- watcher thread ---- */

#define POD_WATCH_BACKOFF_MIN_MS	1000L
#define POD_WATCH_BACKOFF_MAX_MS	60000L
/* A Retry-After beyond this is taken as this: a typo must not stall us for a day. */
#define POD_WATCH_RETRY_AFTER_MAX_S	600L
#define POD_WATCH_KEEP_DELETED_S	600

struct pod_watcher;

/*
 * Start a thread that lists and watches the pods of `node` into `cache` and
 * expires its tombstones. `cfg` and `cache` must outlive the watcher; `reg`
 * (may be NULL) gets ksight_k8s_* metrics. Returns 0 and *out, -EINVAL for a
 * missing or invalid argument (node must be 1..253 bytes), -ENOMEM, or the
 * error from pthread_create().
 */
int pod_watcher_start(const struct k8s_config *cfg, const char *node, struct pod_cache *cache,
		      struct metrics_registry *reg, struct pod_watcher **out);

/* Stop within about a second, join and free. NULL-safe. */
void pod_watcher_stop(struct pod_watcher *w);

/* The first list is in the cache: a miss now means "not a pod of this node". */
bool pod_watcher_synced(struct pod_watcher *w);

#endif
