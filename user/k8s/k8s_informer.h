/*
 * A watched resource's current objects, and subscriptions to their changes:
 * list + watch (k8s_watch.h) into a store, keyed by namespace/name.
 *
 * A subscriber first gets every object the store holds as ADDED (the
 * replay), then each change as it happens: ADDED, MODIFIED, DELETED (with
 * the object's last state). A re-list that no longer has an object gives
 * DELETED; one that has it unchanged (same resourceVersion) gives nothing.
 * Replay and changes are serialised, so a subscriber never misses or
 * doubles an object whenever it subscribes.
 *
 * For small sets (the EndpointSlices of one Service, tens to hundreds of
 * objects; at most K8S_INFORMER_MAX_OBJECTS): the store holds whole objects
 * and is searched linearly. A node's pods go through pod_cache.h instead.
 *
 * Thread-safety: every function may be called from any thread, but not
 * k8s_informer_stop() concurrently with the others. Callbacks run on the
 * watch thread (or, for the replay, on the subscribing thread) with the
 * informer's lock held: they must be quick and must not call into the
 * informer (subscribe, unsubscribe and stop would deadlock). The object is
 * borrowed for the call: json_object_get() it to keep it.
 *
 * Example, apilat's view of the API server's endpoints:
 *	struct k8s_watch_spec spec = {
 *		.resource = "endpointslices",
 *		.path = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
 *		.label_selector = "kubernetes.io/service-name=kubernetes",
 *	};
 */
#ifndef KSIGHT_K8S_INFORMER_H
#define KSIGHT_K8S_INFORMER_H

#include <stdbool.h>
#include <stddef.h>

#include "k8s_watch.h"

#define K8S_INFORMER_MAX_OBJECTS	4096

struct k8s_informer;
struct k8s_subscription;

typedef void (*k8s_informer_fn)(void *ctx, enum k8s_watch_event type, json_object *obj);

/* Start watching; arguments as k8s_watch_start(). */
int k8s_informer_start(const struct k8s_config *cfg, const struct k8s_watch_spec *spec,
		       struct metrics_registry *reg, struct k8s_informer **out);

/*
 * Subscribe `fn`: the replay runs before this returns. Returns 0 and *out
 * (for unsubscribing), -EINVAL, -ENOMEM.
 */
int k8s_informer_subscribe(struct k8s_informer *inf, k8s_informer_fn fn, void *ctx,
			   struct k8s_subscription **out);

/* No callback of `sub` runs after this returns. NULL-safe. */
void k8s_informer_unsubscribe(struct k8s_informer *inf, struct k8s_subscription *sub);

/* Stop the watch and free the store and every subscription. NULL-safe. */
void k8s_informer_stop(struct k8s_informer *inf);

/* A complete LIST is in the store: a replay now is the whole current set. */
bool k8s_informer_synced(struct k8s_informer *inf);

/* Objects in the store now. */
size_t k8s_informer_size(struct k8s_informer *inf);

#endif
