/*
 * The pods bound to this node (fieldSelector=spec.nodeName), listed and
 * watched (k8s_watch.h) into a pod_cache, whose tombstones it also expires.
 */
#ifndef KSIGHT_POD_WATCHER_H
#define KSIGHT_POD_WATCHER_H

#include <stdbool.h>

#include "k8s_watch.h"
#include "pod_cache.h"

#define POD_WATCH_BACKOFF_MIN_MS	K8S_WATCH_BACKOFF_MIN_MS
#define POD_WATCH_BACKOFF_MAX_MS	K8S_WATCH_BACKOFF_MAX_MS
#define POD_WATCH_RETRY_AFTER_MAX_S	K8S_WATCH_RETRY_AFTER_MAX_S
#define POD_WATCH_KEEP_DELETED_S	600

struct k8s_config;
struct metrics_registry;
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
