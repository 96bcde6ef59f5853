/*
 * The agent's glue to the Kubernetes API (see k8s.h). In order: start and
 * stop, names for an event, the objects an Event can be about, recording,
 * and the hold for Events whose pod the cache does not know yet (its queue
 * is event_hold.c; here are the thread that releases it and what a release
 * posts).
 */
#include "k8s.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "event.h"
#include "event_hold.h"
#include "event_log.h"
#include "event_recorder.h"
#include "k8s_client.h"
#include "k8s_pods.h"
#include "log.h"
#include "metrics.h"
#include "node_condition.h"
#include "utf8.h"
#include "util.h"

/* How often held Events look for their pod: the cache says nothing when it learns one. */
#define HOLD_POLL_NS (100 * NSEC_PER_MSEC)
/* A message with the pod UID in front, and room to make it UTF-8 (each bad byte becomes 3). */
#define MESSAGE_MAX  (K8S_EVENT_MESSAGE_MAX + 128)

/* The configuration both API threads copy from; lives as long as the agent. */
static struct k8s_config k8s_cfg;

/* The hold; one agent per process, as k8s_cfg. */
static struct {
	struct event_hold *q;         /* NULL: nothing is held (no recorder, or no pod watcher) */
	struct metric_family *outcomes;
	pthread_mutex_t lock;         /* q, stop */
	pthread_cond_t wake;          /* CLOCK_MONOTONIC */
	pthread_t thread;
	bool stop;
	bool timeout_logged;          /* the hold thread's */
} hold;

/* --node-conditions: the sender; `lock` keeps k8s_node_condition_set() off one being stopped. */
static struct {
	pthread_mutex_t lock;
	struct node_condition_sender *fs;
} conditions = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int hold_start(struct agent *agent);
static void hold_stop(void);
static bool hold_add(const struct event_common *ev, const char *type, const char *reason, const char *message,
		     const char *key, int64_t wall_ns, bool resolved);
static void post_unresolved(struct agent *agent, const char *pod_uid, const char *type, const char *reason,
			    const char *message, const char *key, int64_t wall_ns);

/* ---- start and stop ---- */

/* -ENOENT only when there is no configuration at all. */
static int load_config(const struct agent_config *cfg, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	int ret;

	if (cfg->kubeconfig)
		return k8s_config_from_kubeconfig(&k8s_cfg, cfg->kubeconfig, err, errlen);
	ret = k8s_config_in_cluster(&k8s_cfg, NULL, err, errlen);
	/* half of the platform's pair is a broken configuration, not none */
	if (ret == -ENOENT && host && host[0]) {
		set_error_text(err, errlen, "KUBERNETES_SERVICE_HOST is set (\"%s\") but KUBERNETES_SERVICE_PORT is not",
			       host);
		return -EINVAL;
	}
	return ret;
}

int k8s_start(struct agent *agent)
{
	const struct agent_config *cfg = agent->cfg;
	char err[512] = "";
	int ret;

	if (cfg->events_log) {
		ret = event_log_open(cfg->events_log, &agent->event_log);
		if (ret) {
			log_error("cannot open the events log %s: %s", cfg->events_log, strerror(-ret));
			return ret;
		}
	}
	if (cfg->no_k8s) {
		log_info("not using the Kubernetes API (--no-k8s): no pod names, no Events");
		return 0;
	}
	ret = load_config(cfg, err, sizeof(err));
	/* asked for explicitly: a condition nobody writes would read as a healthy node */
	if (ret == -ENOENT && !cfg->kubeconfig && cfg->node_conditions) {
		log_error("--node-conditions needs the Kubernetes API: not in a cluster and no --kubeconfig");
		goto fail;
	}
	if (ret == -ENOENT && !cfg->kubeconfig) {
		log_info("no Kubernetes API: not in a cluster and no --kubeconfig; running without pod names and Events");
		return 0;
	}
	/*
	 * A configuration that is there (--kubeconfig, or the platform's
	 * KUBERNETES_SERVICE_HOST) but does not work is a mistake to fix, not
	 * a reason to run on without names and Events where nobody notices.
	 */
	if (ret) {
		log_error("cannot use the Kubernetes API: %s (--no-k8s runs without it)", err);
		goto fail;
	}
	agent->pods = pod_cache_new();
	if (!agent->pods) {
		log_error("cannot use the Kubernetes API: out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	/* a pod gone for longer than its tombstone takes its series along: room for new pods */
	pod_cache_on_retire(agent->pods, pod_cache_forget_metrics, agent->metrics);
	ret = pod_watcher_start(&k8s_cfg, agent->node, agent->pods, agent->metrics, &agent->pod_watcher);
	if (ret)
		log_error("cannot watch pods: %s; pod names stay unknown", strerror(-ret));
	if (cfg->mode == MODE_RUN) {
		agent->recorder = event_recorder_start(&k8s_cfg, "ksight", agent->node, agent->metrics, 1000);
		if (!agent->recorder)
			log_error("cannot start the Event recorder: out of memory; no Events will be posted");
	}
	if (agent->recorder && agent->pod_watcher && hold_start(agent))
		log_warn("cannot hold Events for pods not listed yet (out of memory): they go to the Node");
	if (cfg->mode == MODE_RUN && cfg->node_conditions) {
		struct node_condition_sender *s = node_condition_start(&k8s_cfg, agent->node, NODE_CONDITION_FS_TYPE,
									 agent->metrics);

		if (!s) {
			log_error("cannot write the Node condition: out of memory");
			ret = -ENOMEM;
			goto fail;
		}
		pthread_mutex_lock(&conditions.lock);
		conditions.fs = s;
		pthread_mutex_unlock(&conditions.lock);
	}
	event_recorder_set_log(agent->recorder, agent->event_log);
	log_info("Kubernetes API: %s (%s), node %s", k8s_cfg.server, k8s_cfg.source, agent->node);
	return 0;
fail:
	event_log_close(agent->event_log);
	agent->event_log = NULL;
	return ret;
}

const struct k8s_config *k8s_api_config(const struct agent *agent)
{
	/* the pod cache exists exactly when k8s_start() found a working configuration */
	return agent->pods ? &k8s_cfg : NULL;
}

void k8s_stop(struct agent *agent)
{
	struct node_condition_sender *s;

	pthread_mutex_lock(&conditions.lock);
	s = conditions.fs;
	conditions.fs = NULL;
	pthread_mutex_unlock(&conditions.lock);
	node_condition_stop(s);
	/* first: what it held goes to the recorder, which still runs */
	hold_stop();
	if (agent->recorder) {
		/* what was recorded before SIGTERM should still reach the API */
		event_recorder_flush(agent->recorder, 5000);
		event_recorder_stop(agent->recorder);
		agent->recorder = NULL;
	}
	if (agent->pod_watcher) {
		pod_watcher_stop(agent->pod_watcher);
		agent->pod_watcher = NULL;
	}
	if (agent->pods) {
		pod_cache_free(agent->pods);
		agent->pods = NULL;
	}
	k8s_config_free(&k8s_cfg);
	event_log_close(agent->event_log);
	agent->event_log = NULL;
}

/* ---- names ---- */

void k8s_resolve(const struct agent *agent, struct event_common *ev)
{
	struct pod_names names;

	if (!agent->pods || !ev->id.pod_uid[0])
		return;
	if (!pod_cache_lookup(agent->pods, ev->id.pod_uid, ev->id.container_id, &names))
		return;
	snprintf(ev->names[0], sizeof(ev->names[0]), "%s", names.namespace_);
	snprintf(ev->names[1], sizeof(ev->names[1]), "%s", names.pod);
	snprintf(ev->names[2], sizeof(ev->names[2]), "%s", names.container);
	snprintf(ev->names[3], sizeof(ev->names[3]), "%s", names.uid);
	ev->pod_api_uid = ev->names[3];
	ev->namespace_ = ev->names[0];
	ev->pod = ev->names[1];
	ev->container = ev->names[2];
}

/* ---- objects ---- */

void k8s_node_ref(const struct agent *agent, struct k8s_object_ref *ref)
{
	*ref = (struct k8s_object_ref){ .kind = "Node", .namespace_ = "", .name = agent->node, .uid = agent->node };
}

/* A Pod by its names; the container's fieldPath goes to field_path[len]. */
static void pod_ref(struct k8s_object_ref *ref, const char *namespace_, const char *pod, const char *uid,
		    const char *container, char *field_path, size_t len)
{
	*ref = (struct k8s_object_ref){ .kind = "Pod", .namespace_ = namespace_, .name = pod, .uid = uid };
	if (container && container[0]) {
		snprintf(field_path, len, "spec.containers{%s}", container);
		ref->field_path = field_path;
	}
}

int k8s_pod_ref(const struct event_common *ev, struct k8s_object_ref *ref, char *field_path, size_t len)
{
	if (!ev->pod || !ev->pod[0])
		return -ENOENT;
	pod_ref(ref, ev->namespace_, ev->pod, ev->pod_api_uid && ev->pod_api_uid[0] ? ev->pod_api_uid : ev->id.pod_uid,
		ev->container, field_path, len);
	return 0;
}

/* ---- recording ---- */

void k8s_record_event(struct agent *agent, const struct k8s_object_ref *ref, const char *type,
		      const char *reason, const char *message, const char *key, int64_t wall_ns)
{
	/* the API rejects a body that is not UTF-8; messages quote comm and cgroup names */
	char clean[3 * MESSAGE_MAX + 1];
	struct k8s_event kev = {
		.type = type,
		.reason = reason,
		.message = clean,
		.key = key,
		.object = { .kind = ref->kind, .namespace_ = ref->namespace_, .name = ref->name, .uid = ref->uid,
			    .field_path = ref->field_path },
		.time_ns = wall_ns,
	};

	if (!agent->recorder && !agent->event_log)
		return;
	utf8_sanitize(message ? message : "", clean, sizeof(clean));
	if (!agent->recorder) {
		/* without the API: what would have been posted, for --events-log */
		event_log_write(agent->event_log, &(struct event_log_entry){
			.ev = &kev, .time_ns = wall_ns ? wall_ns : clock_ns(CLOCK_REALTIME), .count = 1,
			.node = agent->node, .outcome = "not_posted" });
		return;
	}
	event_recorder_record(agent->recorder, &kev);
}

/* The key NULL stands for: the container's name once known, else its ID. */
static const char *container_key(const char *key, const char *container, const char *container_id)
{
	if (key)
		return key;
	return container && container[0] ? container : container_id;
}

void k8s_record_pod_event(struct agent *agent, const struct event_common *ev, const char *type,
			  const char *reason, const char *message, const char *key)
{
	int64_t wall_ns = event_wall_ns(agent, ev->boot_ns);
	struct k8s_object_ref ref;
	char field_path[300];
	bool resolved;

	if (!agent->recorder && !agent->event_log)
		return;
	resolved = !k8s_pod_ref(ev, &ref, field_path, sizeof(field_path));
	if (!ev->id.pod_uid[0]) {
		k8s_node_ref(agent, &ref);
		k8s_record_event(agent, &ref, type, reason, message, key, wall_ns);
		return;
	}
	if (hold_add(ev, type, reason, message, key, wall_ns, resolved))
		return;
	if (resolved)
		k8s_record_event(agent, &ref, type, reason, message,
				 container_key(key, ev->container, ev->id.container_id), wall_ns);
	else
		post_unresolved(agent, ev->id.pod_uid, type, reason, message,
				container_key(key, NULL, ev->id.container_id), wall_ns);
}

void k8s_record(struct agent *agent, const struct event_common *ev, const char *reason,
		const char *message, const char *key)
{
	k8s_record_pod_event(agent, ev, "Warning", reason, message, key);
}

void k8s_node_condition_set(struct agent *agent, const char *type, bool status, const char *reason,
			    const char *message)
{
	pthread_mutex_lock(&conditions.lock);
	if (conditions.fs && !strcmp(type, NODE_CONDITION_FS_TYPE))
		node_condition_set(conditions.fs, status, reason, message);
	pthread_mutex_unlock(&conditions.lock);
}

/* On the Node, with the pod UID the cgroup named, as the API never listed that pod. */
static void post_unresolved(struct agent *agent, const char *pod_uid, const char *type, const char *reason,
			    const char *message, const char *key, int64_t wall_ns)
{
	struct k8s_object_ref ref;
	char text[MESSAGE_MAX];

	/* without the API (only --events-log sees it) nothing was listed at all */
	snprintf(text, sizeof(text), agent->recorder ? "In pod UID %s (not listed by the API for this node): %s" :
		 "In pod UID %s: %s", pod_uid, message ? message : "");
	k8s_node_ref(agent, &ref);
	k8s_record_event(agent, &ref, type, reason, text, key, wall_ns);
}

/* ---- the hold ---- */

static const char *const hold_outcomes[] = { "resolved", "timeout", "full", "shutdown" };

static void hold_count(const char *outcome)
{
	if (hold.outcomes)
		metrics_counter_add(hold.outcomes, &outcome, 1);
}

/*
 * Hold this Event when its pod is not known yet, or when Events of its pod
 * are held already (it must not overtake them). True when held. Called on
 * the event loop: a mutex and a copy, never I/O.
 */
static bool hold_add(const struct event_common *ev, const char *type, const char *reason, const char *message,
		     const char *key, int64_t wall_ns, bool resolved)
{
	struct held_event he = { .type = type, .reason = reason, .message = message, .key = key, .wall_ns = wall_ns };
	int err = 1;

	if (!hold.q)
		return false;
	snprintf(he.pod_uid, sizeof(he.pod_uid), "%s", ev->id.pod_uid);
	snprintf(he.container_id, sizeof(he.container_id), "%s", ev->id.container_id);
	pthread_mutex_lock(&hold.lock);
	if (!resolved || event_hold_has_pod(hold.q, he.pod_uid)) {
		err = event_hold_add(hold.q, &he, clock_ns(CLOCK_MONOTONIC));
		if (!err)
			pthread_cond_signal(&hold.wake);
	}
	pthread_mutex_unlock(&hold.lock);
	if (err == -ENOSPC)
		hold_count("full");
	return !err;
}

static bool hold_known(void *ctx, const char *pod_uid)
{
	struct agent *agent = ctx;
	struct pod_names names;

	return pod_cache_lookup(agent->pods, pod_uid, NULL, &names);
}

/* Post a held Event: on its Pod, named now, or on the Node. */
static void hold_release(struct agent *agent, const struct held_event *e, enum event_hold_outcome outcome)
{
	struct pod_names names;
	struct k8s_object_ref ref;
	char field_path[300];

	/* looked up again, with the container: the pod may also have appeared since the last poll */
	if (pod_cache_lookup(agent->pods, e->pod_uid, e->container_id, &names)) {
		hold_count("resolved");
		pod_ref(&ref, names.namespace_, names.pod, names.uid, names.container, field_path, sizeof(field_path));
		k8s_record_event(agent, &ref, e->type, e->reason, e->message,
				 container_key(e->key, names.container, e->container_id), e->wall_ns);
		return;
	}
	hold_count(outcome == EVENT_HOLD_SHUTDOWN ? "shutdown" : "timeout");
	if (outcome == EVENT_HOLD_TIMEOUT && !hold.timeout_logged) {
		log_info("an Event for pod UID %s went to the Node: the API did not list that pod for this node "
			 "within %lld s (further ones are counted in ksight_k8s_events_held_total{outcome=\"timeout\"})",
			 e->pod_uid, EVENT_HOLD_MAX_NS / NSEC_PER_SEC);
		hold.timeout_logged = true;
	}
	post_unresolved(agent, e->pod_uid, e->type, e->reason, e->message,
			container_key(e->key, NULL, e->container_id), e->wall_ns);
}

/*
 * Polls the held Events every HOLD_POLL_NS (sooner at the oldest one's
 * deadline) and posts those that may go. Its pass holds the hold lock
 * while it asks the pod cache about at most EVENT_HOLD_MAX pods (each a
 * hash look-up under the cache's read lock), so the event loop's
 * hold_add() waits at most that long, never for I/O; posting happens
 * with the lock dropped. Lock order: hold, then the cache.
 */
static void *hold_worker(void *arg)
{
	struct agent *agent = arg;
	enum event_hold_outcome outcome;
	struct held_event *e;
	bool stop;

	pthread_mutex_lock(&hold.lock);
	for (;;) {
		int64_t now = clock_ns(CLOCK_MONOTONIC), until;
		struct timespec ts;

		stop = hold.stop;
		while ((e = event_hold_take(hold.q, now, stop, hold_known, agent, &outcome))) {
			/* the recorder copies it; the event loop may hold more meanwhile */
			pthread_mutex_unlock(&hold.lock);
			hold_release(agent, e, outcome);
			free(e);
			pthread_mutex_lock(&hold.lock);
		}
		if (stop)
			break;
		if (!event_hold_len(hold.q)) {
			pthread_cond_wait(&hold.wake, &hold.lock);
			continue;
		}
		until = event_hold_deadline(hold.q);
		if (until > now + HOLD_POLL_NS)
			until = now + HOLD_POLL_NS;
		ts = (struct timespec){ .tv_sec = until / NSEC_PER_SEC, .tv_nsec = until % NSEC_PER_SEC };
		pthread_cond_timedwait(&hold.wake, &hold.lock, &ts);
	}
	pthread_mutex_unlock(&hold.lock);
	return NULL;
}

static int hold_start(struct agent *agent)
{
	static const char *const labels[] = { "outcome" };
	pthread_condattr_t attr;
	size_t i;
	int err;

	hold.outcomes = metrics_family(agent->metrics, "ksight_k8s_events_held_total",
				       "Kubernetes Events held for a pod the cache did not know yet, by how the hold "
				       "ended: resolved (posted on the Pod), timeout (on the Node, with the pod UID), "
				       "full (256 held already: on the Node at once), shutdown (the agent stopped first).",
				       METRIC_COUNTER, labels, 1, NULL, 0);
	for (i = 0; hold.outcomes && i < sizeof(hold_outcomes) / sizeof(hold_outcomes[0]); i++)
		metrics_counter_add(hold.outcomes, &hold_outcomes[i], 0);
	hold.q = event_hold_new(EVENT_HOLD_MAX, EVENT_HOLD_MAX_NS);
	if (!hold.q)
		return -ENOMEM;
	err = pthread_condattr_init(&attr);
	if (!err) {
		err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		if (!err)
			err = pthread_cond_init(&hold.wake, &attr);
		pthread_condattr_destroy(&attr);
	}
	if (!err) {
		err = pthread_mutex_init(&hold.lock, NULL);
		if (err)
			pthread_cond_destroy(&hold.wake);
	}
	if (!err) {
		err = pthread_create(&hold.thread, NULL, hold_worker, agent);
		if (err) {
			pthread_mutex_destroy(&hold.lock);
			pthread_cond_destroy(&hold.wake);
		}
	}
	if (err) {
		event_hold_free(hold.q);
		hold.q = NULL;
		return -err;
	}
	return 0;
}

static void hold_stop(void)
{
	if (!hold.q)
		return;
	pthread_mutex_lock(&hold.lock);
	hold.stop = true;
	pthread_cond_signal(&hold.wake);
	pthread_mutex_unlock(&hold.lock);
	/* the worker posts everything still held before it returns */
	pthread_join(hold.thread, NULL);
	pthread_mutex_destroy(&hold.lock);
	pthread_cond_destroy(&hold.wake);
	event_hold_free(hold.q);
	hold.q = NULL;
}
