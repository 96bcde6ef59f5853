#include "k8s.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "event.h"
#include "k8s_client.h"
#include "event_recorder.h"
#include "k8s_pods.h"
#include "log.h"
#include "utf8.h"

/* The configuration both API threads copy from; lives as long as the agent. */
static struct k8s_config k8s_cfg;

static int load_config(const struct agent_config *cfg, char *err, size_t errlen)
{
	if (cfg->kubeconfig)
		return k8s_config_from_kubeconfig(&k8s_cfg, cfg->kubeconfig, err, errlen);
	return k8s_config_in_cluster(&k8s_cfg, NULL, err, errlen);
}

int k8s_start(struct agent *agent)
{
	const struct agent_config *cfg = agent->cfg;
	char err[512] = "";
	int ret;

	if (cfg->no_k8s) {
		log_info("not using the Kubernetes API (--no-k8s): no pod names, no Events");
		return 0;
	}
	ret = load_config(cfg, err, sizeof(err));
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
		return ret;
	}
	agent->pods = pod_cache_new();
	if (!agent->pods) {
		log_error("cannot use the Kubernetes API: out of memory");
		return -ENOMEM;
	}
	ret = pod_watcher_start(&k8s_cfg, agent->node, agent->pods, agent->metrics, &agent->pod_watcher);
	if (ret)
		log_error("cannot watch pods: %s; pod names stay unknown", strerror(-ret));
	if (cfg->mode == MODE_RUN) {
		agent->recorder = event_recorder_start(&k8s_cfg, "ksight", agent->node, agent->metrics, 1000);
		if (!agent->recorder)
			log_error("cannot start the Event recorder: out of memory; no Events will be posted");
	}
	log_info("Kubernetes API: %s (%s), node %s", k8s_cfg.server, k8s_cfg.source, agent->node);
	return 0;
}

void k8s_stop(struct agent *agent)
{
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
}

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

void k8s_record(struct agent *agent, const struct event_common *ev, const char *reason,
		const char *message, const char *key)
{
	/* the API rejects a body that is not UTF-8; messages quote comm and cgroup names */
	char clean[3 * 1024 + 1];
	struct k8s_event kev = {
		.type = "Warning",
		.reason = reason,
		.message = clean,
		.key = key,
		.time_ns = event_wall_ns(agent, ev->boot_ns),
	};
	char field_path[300];

	if (!agent->recorder)
		return;
	utf8_sanitize(message, clean, sizeof(clean));
	if (ev->pod && ev->pod[0]) {
		kev.object.kind = "Pod";
		kev.object.namespace_ = ev->namespace_;
		kev.object.name = ev->pod;
		kev.object.uid = ev->pod_api_uid && ev->pod_api_uid[0] ? ev->pod_api_uid : ev->id.pod_uid;
		if (ev->container && ev->container[0]) {
			snprintf(field_path, sizeof(field_path), "spec.containers{%s}", ev->container);
			kev.object.field_path = field_path;
		}
	} else {
		/* as kubelet and node-problem-detector do, the Node's name stands for its UID */
		kev.object.kind = "Node";
		kev.object.namespace_ = "";
		kev.object.name = agent->node;
		kev.object.uid = agent->node;
	}
	event_recorder_record(agent->recorder, &kev);
}
