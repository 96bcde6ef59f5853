/*
 * Pod names for this node, from the Kubernetes API.
 *
 * The kernel gives us a cgroup path, cgroup_identity.h turns it into a pod
 * UID and a container ID; this cache turns those into namespace, pod and
 * container names. pod_watcher.h keeps it up to date; the event path reads
 * it under a read lock (every function is thread-safe).
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
#ifndef KSIGHT_POD_CACHE_H
#define KSIGHT_POD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>


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
 * A re-list as the LIST streams in: pod_cache_relist_begin(), then each item
 * through pod_cache_relist_add(), then pod_cache_relist_end() once the list
 * is complete (live pods absent from it become tombstones deleted at `now`)
 * or pod_cache_relist_abort() when it broke off (nothing is tombstoned; the
 * known pods it updated stay updated). Known pods are updated at once; new
 * pods wait in `relist` as decoded entries (not JSON) until the end, so a
 * full cache can make room from the fresh tombstones. One re-list at a time
 * per cache. relist_add returns like pod_cache_apply(); -EINVAL when no
 * re-list is going on. After an -ENOMEM on the way, end tombstones nothing.
 */
struct pod_entry;
struct pod_relist {
	struct pod_entry **fresh;	/* new pods, inserted at the end */
	size_t n, cap;
	unsigned int gen;
	bool active;
	bool incomplete;		/* an item was lost to -ENOMEM */
};

void pod_cache_relist_begin(struct pod_cache *cache, struct pod_relist *relist);
int pod_cache_relist_add(struct pod_cache *cache, struct pod_relist *relist, json_object *pod,
			 time_t now);
void pod_cache_relist_end(struct pod_cache *cache, struct pod_relist *relist, time_t now);
void pod_cache_relist_abort(struct pod_cache *cache, struct pod_relist *relist);

/*
 * A whole re-list at once (the relist functions over an array): `items` (a
 * PodList's "items" array; NULL or not an array is an empty list) becomes
 * the set of live pods. Pods present are added or
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

/* The pod is known, live or tombstone: pod_cache_lookup() without the names. */
bool pod_cache_has(struct pod_cache *cache, const char *pod_uid);

/*
 * Forget tombstones deleted at least keep_deleted_s ago, and container IDs
 * that left a live pod's status at least keep_deleted_s ago.
 */
void pod_cache_expire(struct pod_cache *cache, time_t now, int keep_deleted_s);

/*
 * Called, outside the cache's lock, for each pod whose tombstone
 * pod_cache_expire() removed, unless a live pod of the same namespace and
 * name exists (a StatefulSet pod recreated): the pod's names are gone for
 * good, so whatever is kept under them (metric series) can go too.
 */
typedef void (*pod_retired_fn)(void *arg, const char *namespace_, const char *name);
void pod_cache_on_retire(struct pod_cache *cache, pod_retired_fn fn, void *arg);

/* A pod_retired_fn for a struct metrics_registry: forget every series labelled with that pod. */
void pod_cache_forget_metrics(void *registry, const char *namespace_, const char *name);

void pod_cache_get_stats(struct pod_cache *cache, struct pod_cache_stats *out);

#endif
