/*
 * The agent's use of the Kubernetes API: find the configuration, keep the
 * node's pods cached for names, and turn signal events into core/v1 Events.
 * Without an API (no configuration, --no-k8s, or an API that does not answer)
 * everything here degrades to "no names, no Events"; the signals never wait.
 */
#ifndef KSIGHT_K8S_H
#define KSIGHT_K8S_H

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
/* Flush pending Events (bounded wait), stop the threads. */
void k8s_stop(struct agent *agent);

/* Fill ev's namespace/pod/container from the pod cache, when it knows them. */
void k8s_resolve(const struct agent *agent, struct event_common *ev);

/*
 * Post a Warning Event about ev: on its Pod (with the container's fieldPath)
 * when the pod is known, else on the Node. `key` separates aggregations
 * (e.g. the container); repeated events with the same object, reason and key
 * become one Event with a count. Never blocks.
 */
void k8s_record(struct agent *agent, const struct event_common *ev, const char *reason,
		const char *message, const char *key);

#endif
