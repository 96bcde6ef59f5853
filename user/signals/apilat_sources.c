/*
 * apilat's endpoint set, the I/O half (apilat_sources.h): the sources are
 * read here, the union is apilat_slices.c's, and each change reaches the
 * BPF map as the difference it makes.
 *
 * Threads: the EndpointSlices informer calls back on its watch thread, the
 * re-resolver runs on its own; both take `lock`, which also covers the map
 * updates, so the map is always the union of the last known sources.
 */
#include "apilat_sources.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#include <bpf/bpf.h>
#include <netinet/in.h>

#include "agent.h"
#include "apilat_slices.h"
#include "k8s_client.h"
#include "k8s_informer.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define SLICE_KEY_MAX 512

struct slice {
	char key[SLICE_KEY_MAX];	/* namespace/name */
	struct apilat_endpoint eps[APILAT_MAX_ENDPOINTS];
	size_t n;
};

struct apilat_sources {
	struct agent *agent;
	int map_fd;
	__u64 *ports;			/* the kernel side's ports' bitmap (NULL: none), in: */
	void *ports_map;		/* the kernel's mapping of the map holding it */
	size_t ports_map_len;
	enum apilat_source src;		/* the source set_source is changing, for its map ops */
	pthread_mutex_t lock;
	struct apilat_epset set;
	bool full_logged, malformed_logged;

	/* default/kubernetes EndpointSlices, as last seen */
	struct slice *slices;
	size_t n_slices, cap_slices;

	/* the Kubernetes configuration of our own (the informer needs one that outlives it) */
	struct k8s_config k8s;
	bool have_k8s;
	struct k8s_informer *informer;
	struct k8s_subscription *sub;

	/* the configuration's server, when it is a host name: re-resolved */
	char server_host[256];
	uint16_t server_port;
	bool resolver_running, stopping;
	pthread_t resolver;
	pthread_cond_t wake;

	struct metric_family *m_count, *m_info;

	/* after a change that added an endpoint (apilat_sources_on_added) */
	void (*on_added)(void *ctx);
	void *on_added_ctx;
};

/* ---- the map and the metrics ---- */

static void publish(struct apilat_sources *s)
{
	size_t i, src;

	for (src = 0; src < APILAT_SOURCE_NR; src++) {
		const char *l[1] = { apilat_source_name((enum apilat_source)src) };

		metrics_gauge_set(s->m_count, l, (double)apilat_epset_count(&s->set, (enum apilat_source)src));
	}
	metrics_family_clear(s->m_info);
	for (i = 0; i < s->set.n; i++) {
		char text[64];
		const char *l[2] = { text, NULL };

		apilat_endpoint_format(&s->set.e[i].ep, text, sizeof(text));
		for (src = 0; src < APILAT_SOURCE_NR; src++) {
			if (!(s->set.e[i].sources & (1u << src)))
				continue;
			l[1] = apilat_source_name((enum apilat_source)src);
			metrics_gauge_set(s->m_info, l, 1);
		}
	}
}

static int map_del(void *ctx, const struct apilat_endpoint *ep)
{
	struct apilat_sources *s = ctx;
	char text[64];

	apilat_endpoint_format(ep, text, sizeof(text));
	if (bpf_map_delete_elem(s->map_fd, ep) && errno != ENOENT) {
		log_warn("apilat: cannot remove the API-server endpoint %s: %s", text, strerror(errno));
		return -errno;
	}
	log_info("apilat: no longer measuring %s (no source names it)", text);
	return 0;
}

static int map_add(void *ctx, const struct apilat_endpoint *ep)
{
	struct apilat_sources *s = ctx;
	char text[64];
	__u8 one = 1;

	apilat_endpoint_format(ep, text, sizeof(text));
	if (bpf_map_update_elem(s->map_fd, ep, &one, BPF_ANY)) {
		log_warn("apilat: cannot add the API-server endpoint %s: %s", text, strerror(errno));
		return -errno;
	}
	log_info("apilat: measuring %s (%s)", text, apilat_source_name(s->src));
	return 0;
}

/* Make `src` name exactly list[0..n): the map and the ports' bitmap follow. Called with the lock held. */
static int set_source(struct apilat_sources *s, enum apilat_source src, const struct apilat_endpoint *list, size_t n)
{
	static const struct apilat_map_ops ops = { .del = map_del, .add = map_add };
	struct apilat_endpoint added[APILAT_MAX_ENDPOINTS], removed[APILAT_MAX_ENDPOINTS], all[APILAT_MAX_ENDPOINTS];
	size_t na, nr, i;
	int err = apilat_epset_replace(&s->set, src, list, n, added, &na, removed, &nr);

	if (err == -ENOSPC && !s->full_logged) {
		log_warn("apilat: more than %d API-server endpoints: the ones beyond are not measured",
			 APILAT_MAX_ENDPOINTS);
		s->full_logged = true;
	}
	for (i = 0; i < s->set.n; i++)
		all[i] = s->set.e[i].ep;
	s->src = src;
	/* a map that refused one is logged and does not stop the others: as before, not an error */
	apilat_ports_apply(s->ports, all, s->set.n, removed, nr, added, na, &ops, s);
	publish(s);
	if (na && s->on_added)
		s->on_added(s->on_added_ctx);
	return err == -ENOSPC ? 0 : err;
}

/* ---- the sources known at start ---- */

static int static_sources(struct apilat_sources *s)
{
	const struct agent_config *cfg = s->agent->cfg;
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	struct apilat_endpoint list[AGENT_MAX_LIST], env;
	size_t i, n = 0;
	int err;

	for (i = 0; cfg && i < AGENT_MAX_LIST && cfg->apiservers[i]; i++)
		if (apilat_parse_endpoint(cfg->apiservers[i], &list[n++]))
			return -EINVAL; /* the CLI checked it */
	err = set_source(s, APILAT_SOURCE_FLAG, list, n);
	if (err || !host || !host[0])
		return err;
	if (apilat_endpoint_from(host, port ? port : "443", &env)) {
		log_warn("apilat: KUBERNETES_SERVICE_HOST/PORT (%s, %s) is not a numeric address and port: "
			 "not measured", host, port ? port : "");
		return 0;
	}
	return set_source(s, APILAT_SOURCE_SERVICE_ENV, &env, 1);
}

/* ---- the configuration's server ---- */

size_t apilat_resolve(const char *host, uint16_t port, struct apilat_endpoint *out, size_t cap, int *gai_err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
	char port_text[8];
	size_t n = 0, j;

	snprintf(port_text, sizeof(port_text), "%u", port);
	*gai_err = getaddrinfo(host, port_text, &hints, &res);
	if (*gai_err)
		return 0;
	for (ai = res; ai && n < cap; ai = ai->ai_next) {
		struct apilat_endpoint ep = { .port = port };
		bool dup = false;

		if (ai->ai_family == AF_INET) {
			ep.addr[10] = ep.addr[11] = 0xff;
			memcpy(&ep.addr[12], &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
		} else if (ai->ai_family == AF_INET6) {
			memcpy(ep.addr, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		for (j = 0; j < n && !dup; j++)
			dup = !memcmp(&out[j], &ep, sizeof(ep));
		if (!dup)
			out[n++] = ep;
	}
	freeaddrinfo(res);
	return n;
}

/* Resolve the server again; a failure keeps what the last answer said. */
static void refresh_server(struct apilat_sources *s, bool first)
{
	struct apilat_endpoint list[16];
	int gai_err;
	size_t n = apilat_resolve(s->server_host, s->server_port, list, 16, &gai_err);

	if (gai_err) {
		if (first)
			log_warn("apilat: cannot resolve the API server %s: %s; trying again every %d s",
				 s->server_host, gai_strerror(gai_err), APILAT_RESOLVE_EVERY_S);
		return;
	}
	pthread_mutex_lock(&s->lock);
	set_source(s, APILAT_SOURCE_KUBECONFIG, list, n);
	pthread_mutex_unlock(&s->lock);
}

static void *resolver_main(void *arg)
{
	struct apilat_sources *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		int64_t until = clock_ns(CLOCK_MONOTONIC) + (int64_t)APILAT_RESOLVE_EVERY_S * NSEC_PER_SEC;
		struct timespec ts = { .tv_sec = until / NSEC_PER_SEC, .tv_nsec = until % NSEC_PER_SEC };

		if (pthread_cond_timedwait(&s->wake, &s->lock, &ts) != ETIMEDOUT || s->stopping)
			continue;
		/* DNS may take seconds: not with the lock held */
		pthread_mutex_unlock(&s->lock);
		refresh_server(s, false);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* The same choice as the agent's own (k8s.c): --kubeconfig, else in-cluster when there is one. */
static int load_k8s(struct apilat_sources *s)
{
	const struct agent_config *cfg = s->agent->cfg;
	char err[512] = "";
	int ret;

	if (!cfg || cfg->no_k8s)
		return -ENOENT;
	ret = cfg->kubeconfig ? k8s_config_from_kubeconfig(&s->k8s, cfg->kubeconfig, err, sizeof(err)) :
				k8s_config_in_cluster(&s->k8s, NULL, err, sizeof(err));
	if (ret && ret != -ENOENT)
		log_warn("apilat: no API server from the Kubernetes configuration: %s", err);
	if (ret)
		k8s_config_free(&s->k8s);
	return ret;
}

static void watch_server(struct apilat_sources *s)
{
	struct in6_addr any;
	uint16_t port;

	if (apilat_server_url_split(s->k8s.server, s->server_host, sizeof(s->server_host), &port)) {
		log_warn("apilat: the Kubernetes configuration's server '%s' has no host and port we can read: "
			 "not measured", s->k8s.server);
		return;
	}
	s->server_port = port;
	refresh_server(s, true);
	/* a name may change its addresses; a numeric address never does */
	if (inet_pton(AF_INET6, s->server_host, &any) == 1 || inet_pton(AF_INET, s->server_host, &any) == 1)
		return;
	if (pthread_create(&s->resolver, NULL, resolver_main, s) == 0)
		s->resolver_running = true;
	else
		log_warn("apilat: cannot start the re-resolving of %s: its addresses stay the first ones",
			 s->server_host);
}

/* ---- the EndpointSlices ---- */

static struct slice *slice_find(struct apilat_sources *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->n_slices; i++)
		if (!strcmp(s->slices[i].key, key))
			return &s->slices[i];
	return NULL;
}

static void slices_apply(struct apilat_sources *s)
{
	struct apilat_endpoint all[APILAT_MAX_ENDPOINTS];
	size_t i, j, n = 0;

	for (i = 0; i < s->n_slices; i++)
		for (j = 0; j < s->slices[i].n && n < APILAT_MAX_ENDPOINTS; j++)
			all[n++] = s->slices[i].eps[j];
	set_source(s, APILAT_SOURCE_SLICES, all, n);
}

/* On the watch thread (or the subscribing one, for the replay), with the informer's lock held. */
static void on_slice(void *ctx, enum k8s_watch_event type, json_object *obj)
{
	struct apilat_sources *s = ctx;
	json_object *meta = json_object_object_get(obj, "metadata");
	const char *ns = json_object_get_string(json_object_object_get(meta, "namespace"));
	const char *name = json_object_get_string(json_object_object_get(meta, "name"));
	char key[SLICE_KEY_MAX];
	struct slice *sl;
	size_t n = 0;

	if (type == K8S_WATCH_BOOKMARK || !name)
		return;
	snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name);
	pthread_mutex_lock(&s->lock);
	sl = slice_find(s, key);
	if (type == K8S_WATCH_DELETED) {
		if (sl)
			*sl = s->slices[--s->n_slices];
		slices_apply(s);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (!sl) {
		if (s->n_slices == s->cap_slices) {
			size_t ncap = s->cap_slices ? s->cap_slices * 2 : 4;
			struct slice *nsl = realloc(s->slices, ncap * sizeof(*nsl));

			if (!nsl) {
				log_warn("apilat: out of memory for EndpointSlice %s", key);
				pthread_mutex_unlock(&s->lock);
				return;
			}
			s->slices = nsl;
			s->cap_slices = ncap;
		}
		sl = &s->slices[s->n_slices++];
		snprintf(sl->key, sizeof(sl->key), "%s", key);
	}
	/* a slice we cannot read names nothing: better unmeasured than measured wrong */
	if (apilat_slice_endpoints(obj, sl->eps, APILAT_MAX_ENDPOINTS, &n) && !s->malformed_logged) {
		log_warn("apilat: EndpointSlice %s is not one we can read: its endpoints are not measured", key);
		s->malformed_logged = true;
	}
	sl->n = n < APILAT_MAX_ENDPOINTS ? n : APILAT_MAX_ENDPOINTS;
	slices_apply(s);
	pthread_mutex_unlock(&s->lock);
}

static void watch_slices(struct apilat_sources *s)
{
	struct k8s_watch_spec spec = {
		.resource = "endpointslices",
		.path = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
		.label_selector = "kubernetes.io/service-name=kubernetes",
		.what = "the API server's EndpointSlices (default/kubernetes)",
	};
	int err = k8s_informer_start(&s->k8s, &spec, s->agent->metrics, &s->informer);

	if (!err)
		err = k8s_informer_subscribe(s->informer, on_slice, s, &s->sub);
	if (err) {
		log_warn("apilat: cannot watch the API server's EndpointSlices: %s", strerror(-err));
		k8s_informer_stop(s->informer);
		s->informer = NULL;
	}
}

/* ---- life cycle ---- */

/* The map's value shared with the kernel (mmap: libbpf does so only when a skeleton loads, not the object). */
static int map_ports(struct apilat_sources *s, int fd, size_t off)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	void *p;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (off + APILAT_PORT_WORDS * sizeof(__u64) > info.value_size || off % sizeof(__u64))
		return -EINVAL;
	s->ports_map_len = (size_t)info.value_size;
	p = mmap(NULL, s->ports_map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	s->ports_map = p;
	s->ports = (__u64 *)((char *)p + off);
	return 0;
}

int apilat_sources_new(struct agent *agent, int map_fd, int ports_fd, size_t ports_off, struct apilat_sources **out)
{
	static const char *const count_labels[] = { "source" };
	static const char *const info_labels[] = { "endpoint", "source" };
	struct apilat_sources *s = calloc(1, sizeof(*s));
	pthread_condattr_t attr;
	int err;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->agent = agent;
	s->map_fd = map_fd;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &attr);
	pthread_condattr_destroy(&attr);
	s->m_count = metrics_family(agent->metrics, "ksight_apiserver_endpoints",
		"API-server endpoints apilat measures, by the source that names them (one endpoint may have several).",
		METRIC_GAUGE, count_labels, 1, NULL, 0);
	s->m_info = metrics_family(agent->metrics, "ksight_apiserver_endpoint_info",
		"Each API-server endpoint apilat measures and each source that names it; always 1.",
		METRIC_GAUGE, info_labels, 2, NULL, 0);
	if (!s->m_count || !s->m_info) {
		apilat_sources_free(s);
		return -ENOMEM;
	}
	if (ports_fd >= 0) {
		err = map_ports(s, ports_fd, ports_off);
		if (err) {
			log_warn("apilat: cannot map the ports' bitmap: %s", strerror(-err));
			apilat_sources_free(s);
			return err;
		}
	}
	pthread_mutex_lock(&s->lock);
	err = static_sources(s);
	pthread_mutex_unlock(&s->lock);
	if (err) {
		apilat_sources_free(s);
		return err;
	}
	*out = s;
	return 0;
}

void apilat_sources_watch(struct apilat_sources *s)
{
	if (!s || s->have_k8s || load_k8s(s))
		return;
	s->have_k8s = true;
	watch_server(s);
	watch_slices(s);
}

void apilat_sources_on_added(struct apilat_sources *s, void (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&s->lock);
	s->on_added = fn;
	s->on_added_ctx = ctx;
	pthread_mutex_unlock(&s->lock);
}

void apilat_sources_stop(struct apilat_sources *s)
{
	if (!s)
		return;
	/* no callback runs after these return */
	k8s_informer_stop(s->informer);
	s->informer = NULL;
	s->sub = NULL;
	if (s->resolver_running) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->resolver, NULL);
		s->resolver_running = false;
	}
}

void apilat_sources_free(struct apilat_sources *s)
{
	if (!s)
		return;
	apilat_sources_stop(s);
	if (s->have_k8s)
		k8s_config_free(&s->k8s);
	free(s->slices);
	if (s->ports_map)
		munmap(s->ports_map, s->ports_map_len);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
