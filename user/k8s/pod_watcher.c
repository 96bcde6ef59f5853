/*
 * The pod cache's feed (pod_watcher.h): k8s_watch's callbacks turned into
 * pod_cache calls, and the cache's gauges and counters.
 */
#include "pod_watcher.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s_client.h"
#include "log.h"
#include "metrics.h"

#define NODE_NAME_MAX		253
#define EXPIRE_EVERY_S		30

struct pod_watcher {
	struct k8s_watch *watch;
	struct pod_cache *cache;
	struct pod_relist relist;
	char node[NODE_NAME_MAX + 1];
	char source[PATH_MAX + 32];
	bool logged_sync;
	time_t last_expire;

	struct metric_family *m_pods;
	struct metric_family *m_pods_deleted;
	struct metric_family *m_rejected;
};

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void publish(struct pod_watcher *w)
{
	static const char *const malformed[] = { "malformed" };
	static const char *const full[] = { "cache_full" };
	struct pod_cache_stats st;

	pod_cache_get_stats(w->cache, &st);
	metrics_gauge_set(w->m_pods, NULL, (double)st.live);
	metrics_gauge_set(w->m_pods_deleted, NULL, (double)st.deleted);
	metrics_counter_set(w->m_rejected, malformed, (double)st.malformed);
	metrics_counter_set(w->m_rejected, full, (double)st.refused);
}

/* Expiry must go on during a long watch as well as between requests. */
static void on_tick(void *ctx, bool force)
{
	struct pod_watcher *w = ctx;
	time_t now = mono_s();

	if (force || now - w->last_expire >= EXPIRE_EVERY_S) {
		pod_cache_expire(w->cache, now, POD_WATCH_KEEP_DELETED_S);
		w->last_expire = now;
	}
	publish(w);	/* per chunk: pod events come at human rates */
}

static void on_list_begin(void *ctx)
{
	struct pod_watcher *w = ctx;

	pod_cache_relist_begin(w->cache, &w->relist);
}

static void on_object(void *ctx, enum k8s_watch_event type, json_object *pod, bool listing)
{
	struct pod_watcher *w = ctx;

	/* a malformed pod is counted by the cache; the list or watch goes on */
	if (listing)
		pod_cache_relist_add(w->cache, &w->relist, pod, mono_s());
	else if (type != K8S_WATCH_BOOKMARK)
		pod_cache_apply(w->cache, k8s_watch_event_name(type), pod, mono_s());
}

static void on_list_end(void *ctx, bool complete, size_t items)
{
	struct pod_watcher *w = ctx;

	if (!complete) {
		pod_cache_relist_abort(w->cache, &w->relist);
		return;
	}
	pod_cache_relist_end(w->cache, &w->relist, mono_s());
	if (!w->logged_sync)
		log_info("pod names from the Kubernetes API (%s): %zu pods on node %s",
			 w->source, items, w->node);
	w->logged_sync = true;
}

static void register_metrics(struct pod_watcher *w, struct metrics_registry *reg)
{
	static const char *const reason[] = { "reason" };

	if (!reg)
		return;
	w->m_pods = metrics_family(reg, "ksight_k8s_pods",
				   "Pods of this node in the pod-name cache (not deleted).",
				   METRIC_GAUGE, NULL, 0, NULL, 0);
	w->m_pods_deleted = metrics_family(reg, "ksight_k8s_pods_deleted",
					   "Deleted pods kept in the pod-name cache for late events.",
					   METRIC_GAUGE, NULL, 0, NULL, 0);
	w->m_rejected = metrics_family(reg, "ksight_k8s_pods_rejected_total",
				       "Pods not cached: malformed, or cache_full (10000 pods).",
				       METRIC_COUNTER, reason, 1, NULL, 0);
}

int pod_watcher_start(const struct k8s_config *cfg, const char *node, struct pod_cache *cache,
		      struct metrics_registry *reg, struct pod_watcher **out)
{
	static const struct k8s_watch_handler handler = {
		.list_begin = on_list_begin,
		.object = on_object,
		.list_end = on_list_end,
		.tick = on_tick,
	};
	char selector[NODE_NAME_MAX + 32], what[NODE_NAME_MAX + 32];
	struct k8s_watch_spec spec = {
		.resource = "pods",
		.path = "/api/v1/pods",
		.field_selector = selector,
		.what = what,
	};
	struct pod_watcher *w;
	size_t len;
	int ret;

	if (out)
		*out = NULL;
	if (!cfg || !node || !cache || !out)
		return -EINVAL;
	len = strlen(node);
	if (len == 0 || len > NODE_NAME_MAX)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	memcpy(w->node, node, len + 1);
	snprintf(w->source, sizeof(w->source), "%s", cfg->source);
	w->cache = cache;
	w->last_expire = mono_s();
	register_metrics(w, reg);
	snprintf(selector, sizeof(selector), "spec.nodeName=%s", node);
	snprintf(what, sizeof(what), "pods of node %s", node);
	ret = k8s_watch_start(cfg, &spec, &handler, w, reg, &w->watch);
	if (ret) {
		free(w);
		return ret;
	}
	*out = w;
	return 0;
}

void pod_watcher_stop(struct pod_watcher *w)
{
	if (!w)
		return;
	k8s_watch_stop(w->watch);
	/* a list the stop broke off is aborted by the watch; this is for safety */
	pod_cache_relist_abort(w->cache, &w->relist);
	free(w);
}

bool pod_watcher_synced(struct pod_watcher *w)
{
	return w && k8s_watch_synced(w->watch);
}
