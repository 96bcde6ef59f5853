/*
 * The agent's use of the Kubernetes API: find the configuration, keep the
 * node's pods cached for names, and turn signal events into core/v1 Events.
 * Without an API (no configuration, --no-k8s, or an API that does not answer)
 * everything here degrades to "no names, no Events"; the signals never wait.
 *
 * Recording: k8s_record_event() posts an Event about any object (a Pod, this
 * Node, a PersistentVolumeClaim, ...); k8s_record_pod_event() about the pod
 * a signal's event happened in, which it finds (or waits for, see below)
 * itself; k8s_record() is the Warning of the latter.
 */
#ifndef KSIGHT_K8S_H
#define KSIGHT_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agent;
struct event_common;

/*
 * Start the pod watcher (and, for `run`, the event recorder). 0 also when
 * there is no configuration at all (or --no-k8s): the agent runs without
 * names and Events. A configuration that is there but does not work (a
 * missing or invalid --kubeconfig, KUBERNETES_SERVICE_HOST set with broken
 * service account files) is -errno, logged in one line: the agent exits 1.
 */
int k8s_start(struct agent *agent);
/* Post the held Events (see k8s_record_pod_event), flush pending ones (bounded wait), stop the threads. */
void k8s_stop(struct agent *agent);

/*
 * The API's configuration, for a signal that makes its own client (fserr
 * GETs PersistentVolumes); NULL when there is no API. Valid until k8s_stop().
 */
struct k8s_config;
const struct k8s_config *k8s_api_config(const struct agent *agent);

/* Fill ev's namespace/pod/container from the pod cache, when it knows them. */
void k8s_resolve(const struct agent *agent, struct event_common *ev);

/* The object an Event is about (apiVersion is always "v1"). */
struct k8s_object_ref {
	const char *kind;        /* "Pod", "Node", "PersistentVolumeClaim", ... */
	const char *namespace_;  /* a namespaced object's; NULL or "" for a cluster-scoped one */
	const char *name;
	const char *uid;         /* metadata.uid: kubectl describe finds the Event by it */
	const char *field_path;  /* optional, e.g. "spec.containers{app}"; NULL for none */
};

/* This Node; as kubelet and node-problem-detector do, its name stands for its UID. */
void k8s_node_ref(const struct agent *agent, struct k8s_object_ref *ref);

/*
 * The Pod of `ev` as k8s_resolve() named it, fieldPath its container
 * (written to field_path[len]). -ENOENT when ev's pod has no name (yet).
 * `ref` points into ev and field_path.
 */
int k8s_pod_ref(const struct event_common *ev, struct k8s_object_ref *ref, char *field_path, size_t len);

/*
 * Post an Event about `ref` now. `type` "Warning" or "Normal", `reason`
 * UpperCamelCase, `message` any bytes (made UTF-8, cut at 1024 bytes), `key`
 * what else tells repeats apart (NULL as ""): repeats of the same object,
 * type, reason and key become one Event with a count. `wall_ns` the
 * occurrence's CLOCK_REALTIME (event_wall_ns()), 0: now. Never blocks.
 */
void k8s_record_event(struct agent *agent, const struct k8s_object_ref *ref, const char *type,
		      const char *reason, const char *message, const char *key, int64_t wall_ns);

/*
 * Post an Event about the workload `ev` happened in: its Pod (fieldPath the
 * container) when the cache knows it. A pod known only by the UID in its
 * cgroup (the first LIST not answered yet, the watch in backoff or behind)
 * is held, at most EVENT_HOLD_MAX_NS and EVENT_HOLD_MAX Events
 * (event_hold.h), and re-resolved when its pod appears; if it does not, the
 * Event goes to the Node with the pod UID in its message. Outside any pod:
 * the Node. `key` NULL means "the container": its name when known, else its
 * ID, decided when the Event is posted. Counted in
 * ksight_k8s_events_held_total{outcome}. Never blocks.
 */
void k8s_record_pod_event(struct agent *agent, const struct event_common *ev, const char *type,
			  const char *reason, const char *message, const char *key);

/* k8s_record_pod_event() of a Warning. */
void k8s_record(struct agent *agent, const struct event_common *ev, const char *reason,
		const char *message, const char *key);

/*
 * --node-conditions: the state this Node's condition `type` should have
 * (NODE_CONDITION_FS_TYPE, the only one), written by its own thread. A
 * no-op without the flag, before k8s_start() and after k8s_stop(). Never
 * blocks on the network.
 */
void k8s_node_condition_set(struct agent *agent, const char *type, bool status, const char *reason,
			    const char *message);

#endif
