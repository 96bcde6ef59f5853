/*
 * apilat: how the Kubernetes API server looks from this node's clients, at
 * the socket level: connect duration and failures, TLS handshake and
 * request -> first response byte histograms, requests, bytes and open
 * connections, per client pod (namespace, pod, container) or host process
 * (comm). Counted in the kernel (bpf/apilat.bpf.c), read at scrape time.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "apilat.skel.h"

#include "agent.h"
#include "apilat_adopt.h"
#include "apilat_alert.h"
#include "apilat_client.h"
#include "apilat_rx.h"
#include "apilat_server.h"
#include "apilat_signal.h"
#include "apilat_sources.h"
#include "apilat_trace.h"
#include "bpf_maps.h"
#include "cgroup_root.h"
#include "event.h"
#include "k8s.h"
#include "log.h"
#include "metrics.h"
#include "pod_resolver.h"
#include "signal_def.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define N_LABELS 4 /* namespace, pod, container, comm */

/* The server side: families without client labels, and the listeners' drops. */
struct apilat_server_view {
	struct metric_family *hists[APILAT_HIST_NR]; /* no connect duration: NULL */
	struct metric_family *requests, *sent, *received, *connections, *retransmits, *resets, *listen_drops;
	struct apilat_listen_drops drops;
	bool warned;
};

struct apilat_state {
	struct agent *agent;
	uint32_t lo_exp, hi_exp;
	size_t n_finite;
	struct metric_family *hists[APILAT_HIST_NR];
	struct metric_family *failures, *requests, *sent, *received, *connections;
	struct apilat_sources *sources; /* the endpoint set */
	struct apilat_alert *alert;     /* NULL: no slow-response Event */
	struct apilat_adopt *adopt;     /* NULL: the adopt point did not attach */
	struct apilat_rx *rx;           /* NULL: recv is not ingress */
	bool rx_on;                     /* its thread runs */
	struct metric_family *rx_cgroups;
	struct metric_family *retransmits, *resets;
	struct apilat_server_view server;
};

/* ---- probe points ---- */

/*
 * sock_state and retransmit raw first: a classic tracepoint's program is
 * skipped while another classic tracepoint or kprobe program runs on that
 * CPU (a softirq interrupting one), a raw one is not.
 */
static const struct probe_variant state_variants[] = {
	{ .name = "tp_btf", .programs = { "apilat_sock_state_btf" },
	  .args = { { .program = "apilat_sock_state_btf", .index = 0, .kind = PROBE_ARG_STRUCT_PTR, .type = "sock",
		      .missing = "this kernel's inet_sock_set_state has no struct sock argument: the tracepoint variant" },
		    { .program = "apilat_sock_state_btf", .index = 1, .kind = PROBE_ARG_SCALAR, .type = NULL,
		      .missing = "this kernel's inet_sock_set_state has no old state argument: the tracepoint variant" },
		    { .program = "apilat_sock_state_btf", .index = 2, .kind = PROBE_ARG_SCALAR, .type = NULL,
		      .missing = "this kernel's inet_sock_set_state has no new state argument: the tracepoint variant" } } },
	{ .name = "tracepoint", .programs = { "apilat_sock_state" } },
};
/*
 * First the per-connection variants (bpf/apilat.bpf.c): only API-server
 * connections ask for sockops callbacks, so other sockets' sends and RTT
 * samples run nothing, and their received segments one tp_btf program
 * (recv=segment). Then sock_{send,recv}_length: 6.3+, raw (tp_btf: no record
 * to fill, the cheaper) or not; before, the TCP functions they stand for.
 */
static const struct probe_variant send_variants[] = {
	{ .name = "sockops", .programs = { "apilat_send_sockops" } },
	{ .name = "tp_btf", .programs = { "apilat_send_btf" } },
	{ .name = "tracepoint", .programs = { "apilat_send" } },
	{ .name = "kprobe", .programs = { "apilat_send_kp" } },
};
static const struct probe_variant recv_variants[] = {
	/*
	 * a cgroup_skb program on the cgroups of API-server connections only
	 * (apilat_rx.c attaches it): every other socket's segments run nothing.
	 * Its turns' ends are the first bytes of answers, like segment's.
	 */
	{ .name = "ingress", .programs = { "apilat_recv_ingress" }, .with_sockops = "goes with send=sockops",
	  .signal_attaches = true },
	/*
	 * turns end when the first byte reaches the socket, which can be before a
	 * send hook that runs at send()'s return saw the request: only with
	 * send=sockops (or kprobe, at send()'s entry)
	 */
	{ .name = "segment", .programs = { "apilat_recv_segment" },
	  .with_sockops = "goes with send=sockops" },
	{ .name = "tp_btf", .programs = { "apilat_recv_btf" } },
	{ .name = "tracepoint", .programs = { "apilat_recv" } },
	{ .name = "kprobe", .programs = { "apilat_recv_kp" } },
};
/* tcp_probe raw, or with skaddr (6.x), else the function it is the first statement of */
static const struct probe_variant rtt_variants[] = {
	{ .name = "sockops", .programs = { "apilat_rtt_sockops" } },
	{ .name = "tp_btf", .programs = { "apilat_rtt_btf" } },
	{ .name = "tracepoint", .programs = { "apilat_rtt" },
	  .args = { { "apilat_rtt", 0, PROBE_ARG_RECORD_FIELD, "trace_event_raw_tcp_probe",
		      "this kernel's tcp:tcp_probe record has no skaddr (older kernels): the tp_btf or kprobe "
		      "variant reads the socket", "skaddr" } } },
	{ .name = "kprobe", .programs = { "apilat_rtt_kp" } },
};
/* tcp_retransmit_skb: (sk, skb, err) after 6.12, (sk, skb) up to it; the old form cannot tell a failed one */
static const struct probe_variant retransmit_variants[] = {
	{ .name = "tp_btf", .programs = { "apilat_retransmit_btf" },
	  .args = { { .program = "apilat_retransmit_btf", .index = 0, .kind = PROBE_ARG_STRUCT_PTR, .type = "sock",
		      .missing = "this kernel's tcp_retransmit_skb has no struct sock argument: the tracepoint variant" },
		    { .program = "apilat_retransmit_btf", .index = 1, .kind = PROBE_ARG_STRUCT_PTR, .type = "sk_buff",
		      .missing = "this kernel's tcp_retransmit_skb has no struct sk_buff argument: the tracepoint variant" },
		    { .program = "apilat_retransmit_btf", .index = 2, .kind = PROBE_ARG_SCALAR, .type = NULL,
		      .missing = "this kernel's tcp_retransmit_skb has no err argument (6.12 and older): the tp_btf_old variant" } } },
	{ .name = "tp_btf_old", .programs = { "apilat_retransmit_btf_old" },
	  .args = { { .program = "apilat_retransmit_btf_old", .index = 0, .kind = PROBE_ARG_STRUCT_PTR, .type = "sock",
		      .missing = "this kernel's tcp_retransmit_skb has no struct sock argument: the tracepoint variant" },
		    { .program = "apilat_retransmit_btf_old", .index = 1, .kind = PROBE_ARG_STRUCT_PTR, .type = "sk_buff",
		      .missing = "this kernel's tcp_retransmit_skb has no struct sk_buff argument: the tracepoint variant" },
		    { .program = "apilat_retransmit_btf_old", .index = 2, .kind = PROBE_ARG_ABSENT, .type = NULL,
		      .missing = "this kernel's tcp_retransmit_skb has an err argument: this variant, which cannot tell a "
		      "failed retransmit, is for the older (sk, skb) form" } } },
	{ .name = "tracepoint", .programs = { "apilat_retransmit" } },
};

/*
 * Connections open before ksight started: two iterators user space runs
 * (apilat_adopt.c), no hook. Asking an open connection for sockops callbacks
 * takes 6.12+ (the run says so where the kernel refuses); bpf_setsockopt in
 * a tcp iterator 5.15+ (on 5.11-5.14 the kernel refuses to load it).
 */
static const struct probe_variant adopt_variants[] = {
	{ .name = "iter", .programs = { "apilat_owners_of", "apilat_adopt" },
	  .args = { { .program = "apilat_owners_of", .kind = PROBE_ARG_FUNCTION, .type = "bpf_sock_from_file",
		      .missing = "this kernel has no bpf_sock_from_file helper (5.11+): connections open before "
		      "ksight started are followed once they reconnect" } } },
};

enum { POINT_SEND = 1, POINT_RECV = 2, POINT_RTT = 3, POINT_ADOPT = 5 }; /* indexes in apilat_points */

static const struct probe_point apilat_points[] = {
	{ .name = "sock_state", .variants = state_variants, .n_variants = N(state_variants) },
	{ .name = "send", .variants = send_variants, .n_variants = N(send_variants) },
	{ .name = "recv", .variants = recv_variants, .n_variants = N(recv_variants) },
	{ .name = "rtt", .variants = rtt_variants, .n_variants = N(rtt_variants) },
	{ .name = "retransmit", .variants = retransmit_variants, .n_variants = N(retransmit_variants) },
	{ .name = "adopt", .variants = adopt_variants, .n_variants = N(adopt_variants) },
};

/* ---- labels ---- */

struct client_labels {
	char v[N_LABELS][256];
};

/*
 * A pod's client by its cgroup (names from the pod cache; the UID from the
 * cgroup until they are known), a host process by the comm it connected as.
 */
static void client_labels(const struct apilat_state *st, const struct apilat_client *c, struct client_labels *out)
{
	struct event_common ev = { 0 };
	char comm[KSIGHT_COMM_LEN + 1];
	struct pod_ref ref;

	memset(out, 0, sizeof(*out));
	apilat_client_event(st->agent, c, &ev, &ref, comm);
	if (ev.id.pod_uid[0]) {
		snprintf(out->v[0], sizeof(out->v[0]), "%s", ev.namespace_);
		snprintf(out->v[1], sizeof(out->v[1]), "%s", ev.pod[0] ? ev.pod : ev.id.pod_uid);
		snprintf(out->v[2], sizeof(out->v[2]), "%s", ev.container);
		return;
	}
	snprintf(out->v[3], sizeof(out->v[3]), "%s", comm);
}

/* ---- rows: kernel keys merged by label set ---- */

struct row {
	struct client_labels labels;
	uint32_t kind;
	uint64_t sum;
	uint64_t values[APILAT_MAX_BUCKETS]; /* buckets, or the counts' fields */
};

#define ROW_SERVER 0x100 /* or'ed into a row's kind: the server side's */

struct walk {
	const struct apilat_state *st;
	struct bpf_map_shape shape;
	struct row *rows;
	size_t n, cap;
	int err;
};

static struct row *row_for(struct walk *w, const struct client_labels *l, uint32_t kind)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		if (w->rows[i].kind == kind && !memcmp(&w->rows[i].labels, l, sizeof(*l)))
			return &w->rows[i];
	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 16;
		struct row *nr = realloc(w->rows, ncap * sizeof(*nr));

		if (!nr)
			return NULL;
		w->rows = nr;
		w->cap = ncap;
	}
	memset(&w->rows[w->n], 0, sizeof(w->rows[0]));
	w->rows[w->n].labels = *l;
	w->rows[w->n].kind = kind;
	return &w->rows[w->n++];
}

static int visit_hist(const void *key, const void *value, void *arg)
{
	const struct apilat_hist_key *k = key;
	struct walk *w = arg;
	struct client_labels l;
	uint64_t sums[1 + APILAT_MAX_BUCKETS];
	struct row *r;
	size_t i;

	if (k->kind >= APILAT_HIST_NR)
		return 0;
	bpf_percpu_sum_u64(&w->shape, value, N(sums), sums);
	if (k->server)
		memset(&l, 0, sizeof(l));
	else
		client_labels(w->st, &k->client, &l);
	r = row_for(w, &l, k->kind | (k->server ? ROW_SERVER : 0));
	if (!r)
		return -ENOMEM;
	r->sum += sums[0];
	for (i = 0; i < APILAT_MAX_BUCKETS; i++)
		r->values[i] += sums[1 + i];
	return 0;
}

static int visit_counts(const void *key, const void *value, void *arg)
{
	struct walk *w = arg;
	struct client_labels l;
	uint64_t sums[APILAT_COUNT_FIELDS];
	struct row *r;
	size_t i;

	bpf_percpu_sum_u64(&w->shape, value, N(sums), sums);
	client_labels(w->st, key, &l);
	r = row_for(w, &l, 0);
	if (!r)
		return -ENOMEM;
	for (i = 0; i < N(sums); i++)
		r->values[i] += sums[i];
	return 0;
}

static int visit_conn(const void *key, const void *value, void *arg)
{
	const struct apilat_conn *c = value;
	struct walk *w = arg;
	struct client_labels l;
	struct row *r;

	if (c->server)
		memset(&l, 0, sizeof(l));
	else
		client_labels(w->st, &c->client, &l);
	r = row_for(w, &l, c->server ? ROW_SERVER : 0);
	if (!r)
		return -ENOMEM;
	r->values[0] += c->established;
	return 0;
}

static int walk_map(struct bpf_map *map, bpf_map_visit_fn fn, struct walk *w)
{
	int fd = bpf_map__fd(map), err;

	err = bpf_map_shape_of(fd, &w->shape);
	return err ? err : bpf_map_walk(fd, fn, w);
}

static const char *const cause_names[APILAT_FAIL_NR] = {
	[APILAT_FAIL_REFUSED] = "refused", [APILAT_FAIL_TIMEOUT] = "timeout", [APILAT_FAIL_RESET] = "reset",
	[APILAT_FAIL_UNREACHABLE] = "unreachable", [APILAT_FAIL_OTHER] = "other",
};

/* ---- TCP counters and the server side ---- */

static void collect_tcp_counts(struct apilat_state *st, const char *const *l, const uint64_t *v)
{
	metrics_counter_set(st->retransmits, l, (double)v[APILAT_COUNT_IDX(retransmits)]);
	metrics_counter_set(st->resets, l, (double)v[APILAT_COUNT_IDX(resets)]);
}

struct endpoint_set {
	struct apilat_endpoint eps[APILAT_MAX_ENDPOINTS];
	size_t n;
};

static int visit_endpoint(const void *key, const void *value, void *arg)
{
	struct endpoint_set *set = arg;

	(void)value;
	if (set->n < APILAT_MAX_ENDPOINTS)
		memcpy(&set->eps[set->n++], key, sizeof(set->eps[0]));
	return 0;
}

/* The listeners on the endpoint set's addresses, whoever filled it (flags, env, EndpointSlices). */
static void collect_listen_drops(struct apilat_state *st, struct apilat_bpf *skel)
{
	struct endpoint_set set = { .n = 0 };
	int err;

	err = bpf_map_walk(bpf_map__fd(skel->maps.apilat_endpoints), visit_endpoint, &set);
	if (!err)
		err = apilat_listen_drops_read(&st->server.drops, set.eps, set.n);
	if (err && !st->server.warned) {
		log_warn("apilat: the listeners' drops cannot be read (sock_diag): %s", strerror(-err));
		st->server.warned = true;
	}
	metrics_counter_set(st->server.listen_drops, NULL, (double)st->server.drops.total);
}

static void collect_server(struct apilat_state *st, struct apilat_bpf *skel)
{
	struct apilat_server_view *sv = &st->server;
	uint64_t v[APILAT_COUNT_FIELDS];
	__u32 zero = 0;

	if (bpf_map_sum_u64(bpf_map__fd(skel->maps.apilat_server_counts), &zero, N(v), v) == 0) {
		metrics_counter_set(sv->requests, NULL, (double)v[APILAT_COUNT_IDX(requests)]);
		metrics_counter_set(sv->sent, NULL, (double)v[APILAT_COUNT_IDX(sent_bytes)]);
		metrics_counter_set(sv->received, NULL, (double)v[APILAT_COUNT_IDX(received_bytes)]);
		metrics_counter_set(sv->retransmits, NULL, (double)v[APILAT_COUNT_IDX(retransmits)]);
		metrics_counter_set(sv->resets, NULL, (double)v[APILAT_COUNT_IDX(resets)]);
	}
	collect_listen_drops(st, skel);
}

static int init_tcp_families(struct apilat_state *st, struct metrics_registry *reg, const double *bounds)
{
	static const char *const names[] = { "namespace", "pod", "container", "comm" };
	struct apilat_server_view *sv = &st->server;

	st->hists[APILAT_HIST_RTT] = metrics_family(reg, "ksight_apiserver_rtt_seconds",
		"Smoothed round-trip time (the kernel's srtt) of connections to the API server, at most one sample "
		"per connection per 100 ms.", METRIC_HISTOGRAM, names, N_LABELS, bounds, st->n_finite);
	st->retransmits = metrics_family(reg, "ksight_apiserver_retransmits_total",
		"TCP segments clients retransmitted on their connections to the API server.",
		METRIC_COUNTER, names, N_LABELS, NULL, 0);
	st->resets = metrics_family(reg, "ksight_apiserver_connection_resets_total",
		"Established connections to the API server that a reset from the server ended.",
		METRIC_COUNTER, names, N_LABELS, NULL, 0);
	sv->hists[APILAT_HIST_HANDSHAKE] = metrics_family(reg, "ksight_apiserver_server_tls_handshake_duration_seconds",
		"On a node serving the API server: time from a connection's first data received (the TLS ClientHello) "
		"to the server's first send.", METRIC_HISTOGRAM, NULL, 0, bounds, st->n_finite);
	sv->hists[APILAT_HIST_RESPONSE] = metrics_family(reg, "ksight_apiserver_server_response_duration_seconds",
		"On a node serving the API server: time from a request's first byte received to the first byte of the "
		"response sent.", METRIC_HISTOGRAM, NULL, 0, bounds, st->n_finite);
	sv->hists[APILAT_HIST_RTT] = metrics_family(reg, "ksight_apiserver_server_rtt_seconds",
		"On a node serving the API server: smoothed round-trip time of its accepted connections, at most one "
		"sample per connection per 100 ms.", METRIC_HISTOGRAM, NULL, 0, bounds, st->n_finite);
	sv->requests = metrics_family(reg, "ksight_apiserver_server_requests_total",
		"On a node serving the API server: requests (turns after the TLS handshake) it received.",
		METRIC_COUNTER, NULL, 0, NULL, 0);
	sv->sent = metrics_family(reg, "ksight_apiserver_server_sent_bytes_total",
		"On a node serving the API server: bytes it sent to its clients.", METRIC_COUNTER, NULL, 0, NULL, 0);
	sv->received = metrics_family(reg, "ksight_apiserver_server_received_bytes_total",
		"On a node serving the API server: bytes it received from its clients.",
		METRIC_COUNTER, NULL, 0, NULL, 0);
	sv->connections = metrics_family(reg, "ksight_apiserver_server_connections",
		"On a node serving the API server: established connections it accepted, now.",
		METRIC_GAUGE, NULL, 0, NULL, 0);
	sv->retransmits = metrics_family(reg, "ksight_apiserver_server_retransmits_total",
		"On a node serving the API server: TCP segments it retransmitted to its clients.",
		METRIC_COUNTER, NULL, 0, NULL, 0);
	sv->resets = metrics_family(reg, "ksight_apiserver_server_connection_resets_total",
		"On a node serving the API server: established connections a reset from the client ended.",
		METRIC_COUNTER, NULL, 0, NULL, 0);
	sv->listen_drops = metrics_family(reg, "ksight_apiserver_server_listen_drops_total",
		"On a node serving the API server: connection attempts the kernel dropped at its listeners (accept "
		"or SYN queue full), counted by each listener: their share of TcpExtListenDrops.",
		METRIC_COUNTER, NULL, 0, NULL, 0);
	if (!st->hists[APILAT_HIST_RTT] || !st->retransmits || !st->resets || !sv->hists[APILAT_HIST_HANDSHAKE] ||
	    !sv->hists[APILAT_HIST_RESPONSE] || !sv->hists[APILAT_HIST_RTT] || !sv->requests || !sv->sent ||
	    !sv->received || !sv->connections || !sv->retransmits || !sv->resets || !sv->listen_drops)
		return -ENOMEM;
	return 0;
}

static void apilat_collect(struct signal_runtime *rt, struct metrics_registry *reg)
{
	struct apilat_state *st = rt->priv;
	struct apilat_bpf *skel = rt->skel;
	struct walk w = { .st = st };
	size_t i, c;

	if (st->rx) {
		const char *attached[] = { "attached" }, *refused[] = { "refused" };
		uint64_t a, r;

		apilat_rx_counts(st->rx, &a, &r);
		metrics_gauge_set(st->rx_cgroups, attached, (double)a);
		metrics_gauge_set(st->rx_cgroups, refused, (double)r);
	}
	if (walk_map(skel->maps.apilat_hists, visit_hist, &w) == 0) {
		for (i = 0; i < w.n; i++) {
			const char *l[N_LABELS];
			struct row *r = &w.rows[i];

			for (c = 0; c < N_LABELS; c++)
				l[c] = r->labels.v[c];
			/* the kernel keeps +Inf right after the finite buckets, as metrics wants it */
			if (!(r->kind & ROW_SERVER))
				metrics_histogram_set(st->hists[r->kind], l, r->values, (double)r->sum / 1e9);
			else if (st->server.hists[r->kind & ~ROW_SERVER])
				metrics_histogram_set(st->server.hists[r->kind & ~ROW_SERVER], NULL, r->values,
						      (double)r->sum / 1e9);
		}
	}
	free(w.rows);

	w = (struct walk){ .st = st };
	if (walk_map(skel->maps.apilat_counts, visit_counts, &w) == 0) {
		for (i = 0; i < w.n; i++) {
			const char *l[N_LABELS + 1];
			const uint64_t *v = w.rows[i].values;

			for (c = 0; c < N_LABELS; c++)
				l[c] = w.rows[i].labels.v[c];
			metrics_counter_set(st->requests, l, (double)v[APILAT_COUNT_IDX(requests)]);
			metrics_counter_set(st->sent, l, (double)v[APILAT_COUNT_IDX(sent_bytes)]);
			metrics_counter_set(st->received, l, (double)v[APILAT_COUNT_IDX(received_bytes)]);
			collect_tcp_counts(st, l, v);
			for (c = 0; c < APILAT_FAIL_NR; c++) {
				if (!v[APILAT_COUNT_IDX(failures) + c])
					continue;
				l[N_LABELS] = cause_names[c];
				metrics_counter_set(st->failures, l, (double)v[APILAT_COUNT_IDX(failures) + c]);
			}
		}
	}
	free(w.rows);

	w = (struct walk){ .st = st };
	if (walk_map(skel->maps.apilat_conns, visit_conn, &w) == 0) {
		double server_conns = 0;

		/* a gauge of what is open now: rebuilt at each scrape */
		metrics_family_clear(st->connections);
		for (i = 0; i < w.n; i++) {
			const char *l[N_LABELS];

			if (w.rows[i].kind & ROW_SERVER) {
				server_conns += (double)w.rows[i].values[0];
				continue;
			}
			for (c = 0; c < N_LABELS; c++)
				l[c] = w.rows[i].labels.v[c];
			if (w.rows[i].values[0])
				metrics_gauge_set(st->connections, l, (double)w.rows[i].values[0]);
		}
		metrics_gauge_set(st->server.connections, NULL, server_conns);
	}
	free(w.rows);
	collect_server(st, skel);
	(void)reg;
}

/* ---- life cycle ---- */

SIGNAL_SKELETON(apilat)

static int range_of(uint32_t *lo, uint32_t *hi)
{
	const char *env = getenv("KSIGHT_APILAT_BUCKETS");

	*lo = APILAT_DEFAULT_LO_EXP;
	*hi = APILAT_DEFAULT_HI_EXP;
	if (env && apilat_parse_range(env, lo, hi)) {
		log_error("apilat: KSIGHT_APILAT_BUCKETS must be LO:HI, powers of two of nanoseconds "
			  "(%d <= LO < HI <= 40, at most %d apart), not '%s'", APILAT_MIN_EXP, APILAT_MAX_OCTAVES, env);
		return -EINVAL;
	}
	return 0;
}

static int apilat_configure(struct signal_runtime *rt)
{
	struct apilat_bpf *skel = rt->skel;
	uint32_t lo, hi;
	int err = range_of(&lo, &hi);

	if (err)
		return err;
	skel->rodata->lo_exp = lo;
	skel->rodata->hi_exp = hi;
	/* only `ksight trace` reads records: in `run` the kernel side skips the trace block entirely */
	skel->rodata->trace_enabled = rt->agent->trace;
	skel->rodata->trace_slow_ns = rt->agent->cfg ? rt->agent->cfg->apilat_slow_ns : APILAT_DEFAULT_TRACE_SLOW_NS;
	/* the trace's per-connection addresses: a preallocated map, so sized only when there is a trace */
	if (rt->agent->trace)
		return bpf_map__set_max_entries(skel->maps.apilat_trace_turns, APILAT_MAX_CONNS);
	return 0;
}

/*
 * recv=ingress, planned and loaded with the sockops send it goes with: its
 * thread starts before the programs attach, so that every connection from
 * the first asks for its cgroup (apilat_rx.h). The warm-up stops it if the
 * variant did not attach after all.
 */
static void set_rx(struct apilat_bpf *skel, __u32 on)
{
	__u32 zero = 0;

	if (bpf_map_update_elem(bpf_map__fd(skel->maps.apilat_rx_on), &zero, &on, BPF_ANY))
		log_warn("apilat: cannot turn the receive hook's asks %s: %s", on ? "on" : "off", strerror(errno));
}

static void start_rx(struct signal_runtime *rt)
{
	struct apilat_state *st = rt->priv;
	struct apilat_bpf *skel = rt->skel;
	char root[4096];
	int err;

	if (bpf_program__fd(skel->progs.apilat_recv_ingress) < 0 || bpf_program__fd(skel->progs.apilat_send_sockops) < 0)
		return;
	err = cgroup2_root(root, sizeof(root));
	if (!err)
		err = apilat_rx_start(skel->progs.apilat_recv_ingress, bpf_map__fd(skel->maps.apilat_rx_cgroups),
				      bpf_map__fd(skel->maps.apilat_rx_asks), root, rt->agent->cfg && rt->agent->cfg->verbose, &st->rx);
	/* without the thread the kernel side still counts requests and bytes: only the answers go untimed */
	if (err)
		log_warn("apilat: cannot start the receive hook's thread: %s; API-server requests and bytes are "
			 "counted, responses not timed", strerror(-err));
	st->rx_on = true;
	set_rx(skel, 1);
}

static void stop_rx(struct signal_runtime *rt)
{
	struct apilat_state *st = rt->priv;

	if (!st->rx_on)
		return; /* never started, or stopped before the object went */
	st->rx_on = false;
	set_rx(rt->skel, 0);
	apilat_rx_stop(st->rx); /* kept until fini: a scrape may read its counts meanwhile */
}

static const char *const client_label_names[] = { "namespace", "pod", "container", "comm" };
static const char *const rx_label_names[] = { "state" };
static const char *const failure_label_names[] = { "namespace", "pod", "container", "comm", "cause" };

static int apilat_init(struct signal_runtime *rt)
{
	struct metrics_registry *reg = rt->agent->metrics;
	struct apilat_state *st = calloc(1, sizeof(*st));
	double bounds[APILAT_MAX_BUCKETS];
	int err;

	if (!st)
		return -ENOMEM;
	st->agent = rt->agent;
	err = range_of(&st->lo_exp, &st->hi_exp);
	if (!err)
		err = apilat_sources_new(rt->agent, bpf_map__fd(((struct apilat_bpf *)rt->skel)->maps.apilat_endpoints),
					 bpf_map__fd(((struct apilat_bpf *)rt->skel)->maps.bss),
					 offsetof(struct apilat_bpf__bss, apilat_ports), &st->sources);
	if (err) {
		free(st);
		return err;
	}
	st->n_finite = apilat_bounds_seconds(st->lo_exp, st->hi_exp, bounds, APILAT_MAX_BUCKETS - 1);
	st->hists[APILAT_HIST_CONNECT] = metrics_family(reg, "ksight_apiserver_connect_duration_seconds",
		"Time from a client's SYN to the API server to the connection being established.",
		METRIC_HISTOGRAM, client_label_names, N_LABELS, bounds, st->n_finite);
	st->hists[APILAT_HIST_HANDSHAKE] = metrics_family(reg, "ksight_apiserver_tls_handshake_duration_seconds",
		"Time from a connection's first send (the TLS ClientHello) to the first byte of the server's answer.",
		METRIC_HISTOGRAM, client_label_names, N_LABELS, bounds, st->n_finite);
	st->hists[APILAT_HIST_RESPONSE] = metrics_family(reg, "ksight_apiserver_response_duration_seconds",
		"Time from a request's first sent byte to the first byte of the response, on connections to the API server.",
		METRIC_HISTOGRAM, client_label_names, N_LABELS, bounds, st->n_finite);
	st->failures = metrics_family(reg, "ksight_apiserver_connect_failures_total",
		"Connections to the API server that closed before being established, by cause.",
		METRIC_COUNTER, failure_label_names, N_LABELS + 1, NULL, 0);
	st->requests = metrics_family(reg, "ksight_apiserver_requests_total",
		"Requests (turns after the TLS handshake) clients sent to the API server.",
		METRIC_COUNTER, client_label_names, N_LABELS, NULL, 0);
	st->sent = metrics_family(reg, "ksight_apiserver_sent_bytes_total",
		"Bytes clients sent to the API server (TLS records included).",
		METRIC_COUNTER, client_label_names, N_LABELS, NULL, 0);
	st->received = metrics_family(reg, "ksight_apiserver_received_bytes_total",
		"Bytes clients received from the API server (watch streams included).",
		METRIC_COUNTER, client_label_names, N_LABELS, NULL, 0);
	st->rx_cgroups = metrics_family(reg, "ksight_apiserver_receive_hook_cgroups",
		"recv=ingress: cgroups whose sockets' received segments run apilat's receive hook (attached), and "
		"those where the attach was refused (their API-server requests are counted, not timed).",
		METRIC_GAUGE, rx_label_names, 1, NULL, 0);
	st->connections = metrics_family(reg, "ksight_apiserver_connections",
		"Established connections to the API server now.",
		METRIC_GAUGE, client_label_names, N_LABELS, NULL, 0);
	if (!st->hists[0] || !st->hists[1] || !st->hists[2] || !st->failures || !st->requests || !st->sent ||
	    !st->received || !st->connections || !st->rx_cgroups || init_tcp_families(st, reg, bounds)) {
		apilat_sources_free(st->sources);
		free(st);
		return -ENOMEM;
	}
	rt->priv = st;
	start_rx(rt);
	return 0;
}

static int apilat_handle_event(struct signal_runtime *rt, const void *data, size_t size)
{
	return apilat_trace_handle(rt->agent, data, size);
}

static bool attached_as(const struct signal_runtime *rt, size_t point, const char *variant)
{
	int v = rt->status[point].attached;

	return v >= 0 && !strcmp(apilat_points[point].variants[v].name, variant);
}

static void adopt_again(void *ctx)
{
	apilat_adopt_run(ctx);
}

/*
 * The connections open before ksight started, now and whenever an endpoint
 * enters the set; they ask for the callbacks of the sockops variants attached.
 */
static void start_adoption(struct signal_runtime *rt)
{
	struct apilat_state *st = rt->priv;
	struct apilat_bpf *skel = rt->skel;
	bool by_acks = attached_as(rt, POINT_SEND, "sockops");
	uint32_t flags = (by_acks ? APILAT_SEND_CB_FLAGS : 0) |
			 (attached_as(rt, POINT_RTT, "sockops") ? APILAT_RTT_CB_FLAGS : 0);
	int err;

	if (rt->status[POINT_ADOPT].attached < 0)
		return;
	err = apilat_adopt_new(rt->links[POINT_ADOPT][0], rt->links[POINT_ADOPT][1],
			       bpf_map__fd(skel->maps.apilat_adopt_ctl), bpf_map__fd(skel->maps.apilat_owners), flags,
			       by_acks, &st->adopt);
	if (err) {
		log_warn("apilat: cannot look for API-server connections open before ksight started: %s", strerror(-err));
		return;
	}
	apilat_adopt_run(st->adopt);
	apilat_sources_on_added(st->sources, adopt_again, st->adopt);
}

/* Once the agent is ready: the open connections, the sources that need the API or DNS, and the slow-response Event. */
static void apilat_warm_up(struct signal_runtime *rt)
{
	struct apilat_state *st = rt->priv;
	int err;

	if (st->rx_on && !attached_as(rt, POINT_RECV, "ingress"))
		stop_rx(rt);
	start_adoption(rt);
	apilat_sources_watch(st->sources);
	err = apilat_alert_start(rt->agent, bpf_map__fd(((struct apilat_bpf *)rt->skel)->maps.apilat_hists),
				 st->lo_exp, st->hi_exp, &st->alert);
	if (err)
		log_warn("apilat: cannot start the slow-response Event: %s", strerror(-err));
}

/* Before the Kubernetes clients go: the threads that use them and the map. */
static void apilat_stop(struct signal_runtime *rt)
{
	struct apilat_state *st = rt->priv;

	if (!st)
		return;
	apilat_alert_stop(st->alert);
	st->alert = NULL;
	apilat_sources_stop(st->sources);
	stop_rx(rt);
}

static void apilat_fini(struct signal_runtime *rt)
{
	struct apilat_state *st = rt->priv;

	if (!st)
		return;
	apilat_stop(rt);
	apilat_sources_free(st->sources);
	apilat_adopt_free(st->adopt);
	apilat_rx_free(st->rx);
	free(st);
	rt->priv = NULL;
}

const struct signal_def apilat_signal = {
	.name = "apilat",
	.summary = "API-server latency per client pod/process: connect, TLS handshake, request to first byte",
	.points = apilat_points,
	.n_points = N(apilat_points),
	.ringbuf_map = "apilat_trace_events",
	SIGNAL_SKELETON_FIELDS(apilat),
	.configure = apilat_configure,
	.init = apilat_init,
	.handle_event = apilat_handle_event,
	.warm_up = apilat_warm_up,
	.stop = apilat_stop,
	.collect = apilat_collect,
	.fini = apilat_fini,
};
