/*
 * netdrop: packet drops by kernel drop reason, protocol and network
 * namespace, counted in the kernel and read at scrape time
 * (ksight_net_drops_total); TCP retransmits and resets per namespace; a
 * sampled live trace of drops (ksight trace netdrop).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "netdrop.skel.h"

#include "agent.h"
#include "bpf_maps.h"
#include "event.h"
#include "log.h"
#include "k8s.h"
#include "metrics.h"
#include "pod_resolver.h"
#include "netdrop.h"
#include "netdrop_reasons.h"
#include "netdrop_signal.h"
#include "netdrop_syms.h"
#include "signal_def.h"

#define DEFAULT_TRACE_RATE 100

struct netdrop_state {
	struct agent *agent;
	struct netdrop_reasons reasons;
	uint32_t host_netns;   /* inode of /proc/1/ns/net: ksight runs with hostPID */
	struct netdrop_syms syms;
	bool syms_loaded;
	int rb_stats_fd;       /* ksight_ringbuf_stats, kept open to report at exit (the object goes first) */
	struct metric_family *drops, *retransmits, *resets, *evicted;
	/*
	 * What the last scrape exported (collect only, the HTTP thread): its
	 * rows, to remove the series a namespace no longer has (its labels
	 * changed, or it is gone), and the namespaces it found a pod in.
	 */
	struct netdrop_row *drop_rows, *tcp_rows;
	size_t n_drop_rows, n_tcp_rows;
	struct netdrop_named pod_netns;
	uint64_t deleted[NETDROP_STAT_NR];  /* keys of gone pods' namespaces we deleted, by stats slot */
	bool said_full[NETDROP_STAT_NR];    /* the log line about evictions, once per map */
};

/* ---- probe points ---- */

static const struct probe_variant kfree_skb_variants[] = {
	{ .name = "tp_btf", .programs = { "netdrop_kfree_skb_btf" },
	  /* 5.17: kfree_skb got its reason argument (c504e5c2f964) */
	  .args = { { .program = "netdrop_kfree_skb_btf", .index = 2, .kind = PROBE_ARG_ENUM,
		      .type = "skb_drop_reason",
		      .missing = "this kernel's kfree_skb has no drop reason (before 5.17): the tracepoint "
				 "variant counts drops with reason=\"unknown\"" } } },
	{ .name = "tracepoint", .programs = { "netdrop_kfree_skb_tp" } },
	{ .name = "kprobe", .programs = { "netdrop_sk_skb_reason_drop_kp" } },
	{ .name = "kprobe_5.17", .programs = { "netdrop_kfree_skb_reason_kp" } },
	{ .name = "kprobe_old", .programs = { "netdrop_kfree_skb_kp" } },
};

/*
 * The TCP points raw first: a classic tracepoint's program is skipped while
 * another classic tracepoint or kprobe program runs on that CPU (a
 * retransmit timer's softirq interrupting one), a raw one is not.
 * tcp_retransmit_skb has had two prototypes, (sk, skb) and (sk, skb, err):
 * a program for each, and the argument checks keep the one that fits (the
 * old one on a kernel with err would count failed retransmits too).
 */
#define ARG_SOCK(prog, i) { .program = prog, .index = i, .kind = PROBE_ARG_STRUCT_PTR, .type = "sock", \
			    .missing = "this kernel's hook has no struct sock argument " #i ": the tracepoint variant" }
#define ARG_SKB(prog, i) { .program = prog, .index = i, .kind = PROBE_ARG_STRUCT_PTR, .type = "sk_buff", \
			   .missing = "this kernel's hook has no struct sk_buff argument " #i ": the tracepoint variant" }

static const struct probe_variant retransmit_variants[] = {
	{ .name = "tp_btf", .programs = { "netdrop_tcp_retransmit_btf" },
	  .args = { ARG_SOCK("netdrop_tcp_retransmit_btf", 0), ARG_SKB("netdrop_tcp_retransmit_btf", 1),
		    { .program = "netdrop_tcp_retransmit_btf", .index = 2, .kind = PROBE_ARG_SCALAR,
		      .missing = "this kernel's tcp_retransmit_skb has no err argument (6.12 and older): the "
				 "tp_btf_old variant" } } },
	{ .name = "tp_btf_old", .programs = { "netdrop_tcp_retransmit_btf_old" },
	  .args = { ARG_SOCK("netdrop_tcp_retransmit_btf_old", 0), ARG_SKB("netdrop_tcp_retransmit_btf_old", 1),
		    { .program = "netdrop_tcp_retransmit_btf_old", .index = 2, .kind = PROBE_ARG_ABSENT,
		      .missing = "this kernel's tcp_retransmit_skb has an err argument: this variant, which "
				 "cannot tell a failed retransmit, is for the older (sk, skb) form" } } },
	{ .name = "tracepoint", .programs = { "netdrop_tcp_retransmit_tp" } },
};

/* (sk, skb), and (sk, skb, reason) since 6.10: the program reads the first two */
static const struct probe_variant send_reset_variants[] = {
	{ .name = "tp_btf", .programs = { "netdrop_tcp_send_reset_btf" },
	  .args = { ARG_SOCK("netdrop_tcp_send_reset_btf", 0), ARG_SKB("netdrop_tcp_send_reset_btf", 1) } },
	{ .name = "tracepoint", .programs = { "netdrop_tcp_send_reset_tp" } },
};

static const struct probe_variant receive_reset_variants[] = {
	{ .name = "tp_btf", .programs = { "netdrop_tcp_receive_reset_btf" },
	  .args = { ARG_SOCK("netdrop_tcp_receive_reset_btf", 0) } },
	{ .name = "tracepoint", .programs = { "netdrop_tcp_receive_reset_tp" } },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct probe_point netdrop_points[] = {
	{ .name = "kfree_skb", .variants = kfree_skb_variants, .n_variants = N(kfree_skb_variants) },
	{ .name = "tcp_retransmit", .variants = retransmit_variants, .n_variants = N(retransmit_variants) },
	{ .name = "tcp_reset_out", .variants = send_reset_variants, .n_variants = N(send_reset_variants) },
	{ .name = "tcp_reset_in", .variants = receive_reset_variants, .n_variants = N(receive_reset_variants) },
};

/* ---- labels ---- */

const char *netdrop_proto_name(uint32_t proto)
{
	static const char *const names[NETDROP_PROTO_NR] = {
		[NETDROP_PROTO_OTHER] = "other",   [NETDROP_PROTO_TCP] = "tcp",
		[NETDROP_PROTO_UDP] = "udp",       [NETDROP_PROTO_ICMP] = "icmp",
		[NETDROP_PROTO_ICMPV6] = "icmpv6", [NETDROP_PROTO_SCTP] = "sctp",
		[NETDROP_PROTO_IP_OTHER] = "other", [NETDROP_PROTO_ARP] = "arp",
		[NETDROP_PROTO_VLAN] = "vlan",     [NETDROP_PROTO_LLDP] = "lldp",
	};

	return proto < NETDROP_PROTO_NR ? names[proto] : "other";
}

void netdrop_netns_labels(uint32_t host_ino, uint32_t ino, const char *namespace_, const char *pod,
			  struct netns_labels *out)
{
	out->namespace_ = "";
	out->pod = "";
	if (ino && ino != host_ino && pod && pod[0]) {
		snprintf(out->names[0], sizeof(out->names[0]), "%s", namespace_ ? namespace_ : "");
		snprintf(out->names[1], sizeof(out->names[1]), "%s", pod);
		out->namespace_ = out->names[0];
		out->pod = out->names[1];
		out->netns[0] = '\0';
	} else if (!ino)
		snprintf(out->netns, sizeof(out->netns), "unknown");
	else if (ino == host_ino)
		snprintf(out->netns, sizeof(out->netns), "host");
	else
		snprintf(out->netns, sizeof(out->netns), "net:[%" PRIu32 "]", ino);
}

/*
 * The one place a namespace becomes labels: the pod whose processes live in
 * it (the resolver scans /proc at most once a second on a miss and caches
 * for 30 s, so a scrape's work is bounded), named by the pod cache. Called
 * from the HTTP thread (collect) and the event loop: both are thread-safe.
 */
static int netns_labels(const struct netdrop_state *st, uint32_t netns_ino, struct netns_labels *out)
{
	struct event_common ev = { .namespace_ = "", .pod = "" };
	struct pod_ref ref;
	int ret = -ENODEV;

	if (netns_ino && netns_ino != st->host_netns && st->agent->resolver) {
		ret = pod_resolver_netns(st->agent->resolver, netns_ino, &ref);
		if (ret == 0 && ref.id.pod_uid[0]) {
			ev.id = ref.id;
			k8s_resolve(st->agent, &ev);
		} else if (ret == 0) {
			ret = -ENODATA; /* processes, no pod */
		}
	}
	netdrop_netns_labels(st->host_netns, netns_ino, ev.namespace_, ev.pod, out);
	return ret;
}

static void reason_name(const struct netdrop_state *st, uint32_t reason, char *out, size_t outlen)
{
	if (reason == NETDROP_REASON_NONE)
		snprintf(out, outlen, "unknown");
	else
		netdrop_reason_name(&st->reasons, reason, out, outlen);
}

/* A --reason value: a name of this kernel, "unknown" (no reasons), or unknown_<n>. 0 or -ENOENT. */
static int reason_value(const struct netdrop_reasons *r, const char *name, uint32_t *value)
{
	char *end;
	unsigned long long n;

	if (!strcmp(name, "unknown")) {
		*value = NETDROP_REASON_NONE;
		return 0;
	}
	if (!strncmp(name, "unknown_", 8) && name[8] >= '0' && name[8] <= '9') {
		n = strtoull(name + 8, &end, 10);
		if (!*end && n <= UINT32_MAX) {
			*value = (uint32_t)n;
			return 0;
		}
	}
	return netdrop_reason_value(r, name, value);
}

/* ---- rows: kernel keys -> label sets ---- */

static int row_cmp(const void *a, const void *b, void *arg)
{
	const struct netdrop_row *x = a, *y = b;
	size_t n = *(const size_t *)arg, i;
	int c;

	for (i = 0; i < n; i++) {
		c = strcmp(x->labels[i], y->labels[i]);
		if (c)
			return c;
	}
	return 0;
}

size_t netdrop_rows_merge(struct netdrop_row *rows, size_t n, size_t n_labels)
{
	size_t i, out = 0, l;

	if (!n)
		return 0;
	qsort_r(rows, n, sizeof(*rows), row_cmp, &n_labels);
	for (i = 0; i < n; i++) {
		if (out && row_cmp(&rows[out - 1], &rows[i], &n_labels) == 0) {
			rows[out - 1].value += rows[i].value;
			for (l = 0; l < n_labels; l++)
				free(rows[i].labels[l]);
			continue;
		}
		rows[out++] = rows[i];
	}
	return out;
}

void netdrop_rows_free(struct netdrop_row *rows, size_t n, size_t n_labels)
{
	size_t i, l;

	for (i = 0; i < n; i++)
		for (l = 0; l < n_labels; l++)
			free(rows[i].labels[l]);
	free(rows);
}

size_t netdrop_rows_sweep(const struct netdrop_row *prev, size_t n_prev, const struct netdrop_row *cur,
			  size_t n_cur, size_t n_labels, netdrop_row_fn gone, void *arg)
{
	size_t i = 0, j = 0, removed = 0;
	int c;

	while (i < n_prev) {
		c = j < n_cur ? row_cmp(&prev[i], &cur[j], &n_labels) : -1;
		if (c < 0) {
			gone(&prev[i++], arg);
			removed++;
		} else {
			if (c == 0)
				i++;
			j++;
		}
	}
	return removed;
}

/* Open addressing on the inode, at most half full: a scrape looks each of its keys' namespaces up. */
static struct netdrop_named_ns *named_slot(const struct netdrop_named *set, uint32_t ino)
{
	size_t i = (size_t)(ino * 2654435761u) & (set->cap - 1);

	while (set->v[i].used && set->v[i].ino != ino)
		i = (i + 1) & (set->cap - 1);
	return &set->v[i];
}

int netdrop_named_add(struct netdrop_named *set, uint32_t ino, const char *namespace_, const char *pod)
{
	struct netdrop_named_ns *e;
	char *ns, *p;

	if (2 * (set->n + 1) > set->cap) {
		struct netdrop_named bigger = { .cap = set->cap ? 2 * set->cap : 64, .n = set->n };
		size_t i;

		bigger.v = calloc(bigger.cap, sizeof(*bigger.v));
		if (!bigger.v)
			return -ENOMEM;
		for (i = 0; i < set->cap; i++)
			if (set->v[i].used)
				*named_slot(&bigger, set->v[i].ino) = set->v[i];
		free(set->v);
		*set = bigger;
	}
	ns = strdup(namespace_);
	p = strdup(pod);
	if (!ns || !p) {
		free(ns);
		free(p);
		return -ENOMEM;
	}
	e = named_slot(set, ino);
	if (e->used) {
		free(e->namespace_);
		free(e->pod);
	} else {
		set->n++;
	}
	*e = (struct netdrop_named_ns){ .ino = ino, .namespace_ = ns, .pod = p, .used = true };
	return 0;
}

const struct netdrop_named_ns *netdrop_named_find(const struct netdrop_named *set, uint32_t ino)
{
	const struct netdrop_named_ns *e;

	if (!set->n)
		return NULL;
	e = named_slot(set, ino);
	return e->used ? e : NULL;
}

void netdrop_named_free(struct netdrop_named *set)
{
	size_t i;

	for (i = 0; i < set->cap; i++) {
		free(set->v[i].namespace_);
		free(set->v[i].pod);
	}
	free(set->v);
	memset(set, 0, sizeof(*set));
}

struct walk_ctx {
	struct netdrop_state *st;
	struct bpf_map_shape shape;
	struct netdrop_row *rows;
	size_t n, cap;
	size_t entries;
	bool tcp;
	int err;
	struct netdrop_named pod_netns;  /* namespaces this walk found a pod in */
	struct netdrop_named gone;       /* and those it found gone */
	/* keys of namespaces whose pod is gone: deleted after the walk */
	void *dead;
	size_t n_dead, cap_dead, key_size;
};

static int add_row(struct walk_ctx *w, const char *const *labels, size_t n_labels, uint64_t value)
{
	struct netdrop_row *row;
	size_t l;

	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 256;
		struct netdrop_row *nr = realloc(w->rows, ncap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		w->rows = nr;
		w->cap = ncap;
	}
	row = &w->rows[w->n];
	memset(row, 0, sizeof(*row));
	row->value = value;
	for (l = 0; l < n_labels; l++) {
		row->labels[l] = strdup(labels[l]);
		if (!row->labels[l]) {
			while (l-- > 0)
				free(row->labels[l]);
			return -ENOMEM;
		}
	}
	w->n++;
	return 0;
}

/*
 * Where namespace `ino`'s counts go in this scrape; false when nowhere.
 * A namespace the last scrape found a pod in keeps that pod's labels while
 * the answer is unsure (a rescan not due yet, the pod's names not known
 * now), so its series does not flap to net:[INODE] and back. When no
 * process lives there any more, or none of a pod, the pod is gone and so is
 * its namespace: its counts cannot grow. Its keys are then deleted, so the
 * series removed with the pod is not made again under net:[INODE] (with a
 * full count, the inode reused by the next namespace).
 */
static bool place_namespace(struct walk_ctx *w, const void *key, uint32_t ino, struct netns_labels *nl)
{
	const struct netdrop_named_ns *was;
	int ret;

	if (netdrop_named_find(&w->gone, ino))
		goto gone; /* another key of a namespace this scrape found gone */
	was = netdrop_named_find(&w->pod_netns, ino);
	if (was) {
		/* another key of a namespace this scrape placed with a pod: the same labels */
		netdrop_netns_labels(w->st->host_netns, ino, was->namespace_, was->pod, nl);
		return true;
	}
	ret = netns_labels(w->st, ino, nl);
	if (nl->pod[0]) {
		if (netdrop_named_add(&w->pod_netns, ino, nl->namespace_, nl->pod))
			w->err = -ENOMEM;
		return true;
	}
	was = netdrop_named_find(&w->st->pod_netns, ino);
	if (!was)
		return true;
	if (ret != -ENOENT && ret != -ENODATA) {
		netdrop_netns_labels(w->st->host_netns, ino, was->namespace_, was->pod, nl);
		if (netdrop_named_add(&w->pod_netns, ino, was->namespace_, was->pod))
			w->err = -ENOMEM;
		return true;
	}
	if (netdrop_named_add(&w->gone, ino, "", ""))
		return true; /* counted under net:[INODE] for now, deleted next time */
gone:
	if (w->n_dead == w->cap_dead) {
		size_t cap = w->cap_dead ? 2 * w->cap_dead : 16;
		void *d = realloc(w->dead, cap * w->key_size);

		if (!d)
			return true; /* counted under net:[INODE] for now, deleted next time */
		w->dead = d;
		w->cap_dead = cap;
	}
	memcpy((char *)w->dead + w->n_dead++ * w->key_size, key, w->key_size);
	return false;
}

static int visit_drop(const void *key, const void *value, void *arg)
{
	const struct netdrop_key *k = key;
	struct walk_ctx *w = arg;
	struct netns_labels nl;
	char reason[NETDROP_REASON_NAME_LEN];
	uint64_t sum;

	bpf_percpu_sum_u64(&w->shape, value, 1, &sum);
	w->entries++;
	reason_name(w->st, k->reason, reason, sizeof(reason));
	if (!place_namespace(w, key, k->netns, &nl))
		return 0;
	{
		const char *labels[5] = { reason, netdrop_proto_name(k->proto), nl.namespace_, nl.pod, nl.netns };

		return add_row(w, labels, 5, sum);
	}
}

static const char *const direction_names[] = { [NETDROP_TCP_RESET_SENT] = "sent",
					       [NETDROP_TCP_RESET_RECEIVED] = "received" };

static int visit_tcp(const void *key, const void *value, void *arg)
{
	const struct netdrop_tcp_key *k = key;
	struct walk_ctx *w = arg;
	struct netns_labels nl;
	uint64_t sum;

	bpf_percpu_sum_u64(&w->shape, value, 1, &sum);
	w->entries++;
	if (k->kind >= NETDROP_TCP_NR)
		return 0;
	if (!place_namespace(w, key, k->netns, &nl))
		return 0;
	{
		/* the kind goes first so one merge keeps retransmits and resets apart */
		const char *labels[4] = { k->kind == NETDROP_TCP_RETRANSMIT ? "" : direction_names[k->kind],
					  nl.namespace_, nl.pod, nl.netns };

		return add_row(w, labels, 4, sum);
	}
}

/* Walk one counter map into merged rows; w->entries says how many keys it holds. */
static int walk_map(struct bpf_map *map, bpf_map_visit_fn fn, size_t n_labels, struct walk_ctx *w)
{
	int fd = bpf_map__fd(map), err;

	err = bpf_map_shape_of(fd, &w->shape);
	if (!err)
		err = bpf_map_walk(fd, fn, w);
	w->n = netdrop_rows_merge(w->rows, w->n, n_labels);
	return err;
}

static uint64_t stat_sum(struct netdrop_bpf *skel, uint32_t slot)
{
	uint64_t sum = 0;

	bpf_map_sum_u64(bpf_map__fd(skel->maps.netdrop_stats), &slot, 1, &sum);
	return sum;
}

static void collect_evicted(struct netdrop_state *st, struct netdrop_bpf *skel, uint32_t slot, const char *map,
			    size_t present)
{
	uint64_t created = stat_sum(skel, slot), gone = present + st->deleted[slot];
	const char *labels[1] = { map };

	/* every key created that is neither here nor deleted by us (a gone pod's) was evicted */
	metrics_counter_set(st->evicted, labels, created > gone ? (double)(created - gone) : 0);
	if (created > gone && !st->said_full[slot]) {
		st->said_full[slot] = true;
		log_warn("netdrop: the %s map is full: the kernel evicts its oldest keys (their counts start again), "
			 "see ksight_net_drop_keys_evicted_total; more keys: %s", map,
			 slot == NETDROP_STAT_DROP_KEYS ? "KSIGHT_NETDROP_MAX_KEYS=N" : "fewer namespaces");
	}
}

static void remove_drop_series(const struct netdrop_row *row, void *arg)
{
	metrics_family_remove_series(((struct netdrop_state *)arg)->drops, (const char *const *)row->labels);
}

static void remove_tcp_series(const struct netdrop_row *row, void *arg)
{
	struct netdrop_state *st = arg;
	const char *const *l = (const char *const *)row->labels;

	if (l[0][0])
		metrics_family_remove_series(st->resets, l);
	else
		metrics_family_remove_series(st->retransmits, l + 1);
}

/* Delete the keys of namespaces that are gone from `map`, counted in *deleted. */
static void walk_done(struct walk_ctx *w, struct bpf_map *map, uint64_t *deleted)
{
	size_t i;

	for (i = 0; i < w->n_dead; i++)
		if (bpf_map_delete_elem(bpf_map__fd(map), (char *)w->dead + i * w->key_size) == 0)
			(*deleted)++;
	free(w->dead);
}

/*
 * This scrape's rows become what the next one compares with, and the series
 * of the last one's rows that are not among them go. Only after a whole
 * walk: rows of a walk that broke off say nothing of what is gone.
 */
static void keep_rows(struct netdrop_row **rows, size_t *n, struct walk_ctx *w, bool walked, size_t n_labels,
		      netdrop_row_fn gone)
{
	if (!walked) {
		netdrop_rows_free(w->rows, w->n, n_labels);
		return;
	}
	netdrop_rows_sweep(*rows, *n, w->rows, w->n, n_labels, gone, w->st);
	netdrop_rows_free(*rows, *n, n_labels);
	*rows = w->rows;
	*n = w->n;
}

static void netdrop_collect(struct signal_runtime *rt, struct metrics_registry *reg)
{
	struct netdrop_state *st = rt->priv;
	struct netdrop_bpf *skel = rt->skel;
	struct walk_ctx w = { .st = st, .key_size = sizeof(struct netdrop_key) };
	struct netdrop_named found, gone;
	bool walked;
	size_t i;

	walked = walk_map(skel->maps.netdrop_counts, visit_drop, 5, &w) == 0;
	if (walked)
		collect_evicted(st, skel, NETDROP_STAT_DROP_KEYS, "drops", w.entries);
	for (i = 0; i < w.n; i++)
		metrics_counter_set(st->drops, (const char *const *)w.rows[i].labels, (double)w.rows[i].value);
	keep_rows(&st->drop_rows, &st->n_drop_rows, &w, walked, 5, remove_drop_series);
	walk_done(&w, skel->maps.netdrop_counts, &st->deleted[NETDROP_STAT_DROP_KEYS]);
	found = w.pod_netns;
	gone = w.gone;

	w = (struct walk_ctx){ .st = st, .tcp = true, .key_size = sizeof(struct netdrop_tcp_key), .pod_netns = found,
			       .gone = gone };
	walked = walk_map(skel->maps.netdrop_tcp_counts, visit_tcp, 4, &w) == 0;
	if (walked)
		collect_evicted(st, skel, NETDROP_STAT_TCP_KEYS, "tcp", w.entries);
	for (i = 0; i < w.n; i++) {
		const char *const *l = (const char *const *)w.rows[i].labels;

		if (l[0][0])
			metrics_counter_set(st->resets, l, (double)w.rows[i].value);
		else
			metrics_counter_set(st->retransmits, l + 1, (double)w.rows[i].value);
	}
	keep_rows(&st->tcp_rows, &st->n_tcp_rows, &w, walked, 4, remove_tcp_series);
	walk_done(&w, skel->maps.netdrop_tcp_counts, &st->deleted[NETDROP_STAT_TCP_KEYS]);
	netdrop_named_free(&st->pod_netns);
	st->pod_netns = w.pod_netns;
	netdrop_named_free(&w.gone);
}

/* ---- life cycle ---- */

SIGNAL_SKELETON(netdrop)

static int netdrop_configure(struct signal_runtime *rt)
{
	const struct agent_config *cfg = rt->agent->cfg;
	struct netdrop_bpf *skel = rt->skel;
	uint64_t rate = cfg && cfg->trace_rate ? cfg->trace_rate : DEFAULT_TRACE_RATE;

	/* only `ksight trace` reads records: `ksight run` pays for counting alone */
	skel->rodata->trace_enabled = rt->agent->trace;
	skel->rodata->trace_rate = rate;
	skel->rodata->trace_burst = rate;
	skel->rodata->trace_fill_ns = 1000000000ULL * skel->rodata->trace_burst / rate;
	/* the drop map's size: a deployment with very many namespaces may want more, a test fewer */
	if (getenv("KSIGHT_NETDROP_MAX_KEYS")) {
		char *end;
		unsigned long n = strtoul(getenv("KSIGHT_NETDROP_MAX_KEYS"), &end, 10);

		if (*end || n < 1 || n > (1UL << 24)) {
			log_error("netdrop: KSIGHT_NETDROP_MAX_KEYS must be a number of entries from 1 to 16777216");
			return -EINVAL;
		}
		bpf_map__set_max_entries(skel->maps.netdrop_counts, (__u32)n);
	}
	if (cfg && cfg->trace_reason) {
		struct netdrop_reasons r = { 0 };
		uint32_t value;
		int err = 0;

		if (rt->agent->btf)
			err = netdrop_reasons_load(&r, rt->agent->btf);
		if (!err)
			err = reason_value(&r, cfg->trace_reason, &value);
		netdrop_reasons_free(&r);
		if (err) {
			log_error("netdrop: --reason %s: this kernel has no such drop reason (names as in "
				  "ksight_net_drops_total, e.g. NETFILTER_DROP, NO_SOCKET)", cfg->trace_reason);
			return -EINVAL;
		}
		skel->rodata->filter_reason_set = true;
		skel->rodata->filter_reason = value;
	}
	return 0;
}

static const char *const drop_labels[] = { "reason", "protocol", "namespace", "pod", "netns" };
static const char *const retransmit_labels[] = { "namespace", "pod", "netns" };
static const char *const reset_labels[] = { "direction", "namespace", "pod", "netns" };
static const char *const evicted_labels[] = { "map" };

/* Subsystems whose drop reasons live in their module's BTF. */
static void add_module_reasons(struct netdrop_state *st, const struct btf *vmlinux)
{
	static const char *const modules[] = { "mac80211", "openvswitch" };
	char path[64];
	size_t i;

	for (i = 0; i < N(modules); i++) {
		struct btf *mod;

		snprintf(path, sizeof(path), "/sys/kernel/btf/%s", modules[i]);
		if (access(path, R_OK))
			continue;
		mod = btf__load_module_btf(modules[i], (struct btf *)vmlinux);
		if (!mod)
			continue;
		if (netdrop_reasons_add_subsys_enums(&st->reasons, mod))
			log_warn("netdrop: cannot read %s's drop reasons: out of memory", modules[i]);
		btf__free(mod);
	}
}

static int netdrop_init(struct signal_runtime *rt)
{
	struct netdrop_state *st = calloc(1, sizeof(*st));
	struct metrics_registry *reg = rt->agent->metrics;
	struct stat sb;
	int err = 0;

	if (!st)
		return -ENOMEM;
	st->agent = rt->agent;
	if (rt->agent->btf) {
		err = netdrop_reasons_load(&st->reasons, rt->agent->btf);
		if (!err)
			add_module_reasons(st, rt->agent->btf);
	}
	if (!err && !st->reasons.have_reasons)
		log_warn("netdrop: this kernel's BTF has no enum skb_drop_reason (drop reasons came with 5.17): "
			 "every drop is counted with reason=\"unknown\"");
	/* init's namespace is the host's (hostPID); without access to it, assume ours is (hostNetwork) */
	if (stat("/proc/1/ns/net", &sb) == 0) {
		st->host_netns = (uint32_t)sb.st_ino;
	} else if (stat("/proc/self/ns/net", &sb) == 0) {
		st->host_netns = (uint32_t)sb.st_ino;
		log_info("netdrop: cannot read /proc/1/ns/net (%s): taking ksight's own network namespace as "
			 "the host's", strerror(errno));
	}
	st->drops = metrics_family(reg, "ksight_net_drops_total",
				   "Packets the kernel dropped, by drop reason, protocol and the pod (or network "
				   "namespace) they were dropped in.",
				   METRIC_COUNTER, drop_labels, 5, NULL, 0);
	st->retransmits = metrics_family(reg, "ksight_tcp_retransmits_total",
					 "TCP segments retransmitted, by the pod (or network namespace) of the sender.",
					 METRIC_COUNTER, retransmit_labels, 3, NULL, 0);
	st->resets = metrics_family(reg, "ksight_tcp_resets_total",
				    "TCP resets sent and received, by the pod (or network namespace).",
				    METRIC_COUNTER, reset_labels, 4, NULL, 0);
	st->evicted = metrics_family(reg, "ksight_net_drop_keys_evicted_total",
				     "Counter keys the kernel's LRU maps evicted to make room (their counts were lost).",
				     METRIC_COUNTER, evicted_labels, 1, NULL, 0);
	if (err || !st->drops || !st->retransmits || !st->resets || !st->evicted) {
		netdrop_reasons_free(&st->reasons);
		free(st);
		return err ? err : -ENOMEM;
	}
	st->rb_stats_fd = -1;
	if (rt->agent->trace && rt->obj) {
		struct bpf_map *map = bpf_object__find_map_by_name(rt->obj, "ksight_ringbuf_stats");

		if (map)
			st->rb_stats_fd = fcntl(bpf_map__fd(map), F_DUPFD_CLOEXEC, 0);
	}
	rt->priv = st;
	return 0;
}

/* /proc/kallsyms is megabytes: read it only when records are printed, once the agent is ready. */
static void netdrop_warm_up(struct signal_runtime *rt)
{
	struct netdrop_state *st = rt->priv;
	int err;

	if (!rt->agent->trace || st->syms_loaded)
		return;
	st->syms_loaded = true;
	err = netdrop_syms_load(&st->syms, "/proc/kallsyms");
	if (err)
		log_warn("netdrop: cannot read /proc/kallsyms (%s): locations are shown as addresses", strerror(-err));
	else if (!st->syms.n)
		log_warn("netdrop: /proc/kallsyms hides addresses (kptr_restrict): locations are shown as addresses");
}

static void netdrop_fini(struct signal_runtime *rt)
{
	struct netdrop_state *st = rt->priv;

	if (!st)
		return;
	/* the trace's user must know it saw a sample: say how much the kernel held back */
	if (st->rb_stats_fd >= 0) {
		uint64_t shown = 0, suppressed = 0, lost = 0;
		__u32 slot;

		slot = KSIGHT_RB_SUBMITTED;
		bpf_map_sum_u64(st->rb_stats_fd, &slot, 1, &shown);
		slot = KSIGHT_RB_SUPPRESSED;
		bpf_map_sum_u64(st->rb_stats_fd, &slot, 1, &suppressed);
		slot = KSIGHT_RB_LOST;
		bpf_map_sum_u64(st->rb_stats_fd, &slot, 1, &lost);
		log_info("netdrop: %" PRIu64 " drops sampled, %" PRIu64 " held back by the rate limit, %" PRIu64
			 " lost to a full ring buffer", shown, suppressed, lost);
		close(st->rb_stats_fd);
	}
	netdrop_reasons_free(&st->reasons);
	netdrop_syms_free(&st->syms);
	netdrop_rows_free(st->drop_rows, st->n_drop_rows, 5);
	netdrop_rows_free(st->tcp_rows, st->n_tcp_rows, 4);
	netdrop_named_free(&st->pod_netns);
	free(st);
	rt->priv = NULL;
}

/* ---- the trace ---- */

static bool filtered_out(const struct agent_config *cfg, const char *reason, const struct netns_labels *nl)
{
	if (!cfg)
		return false;
	if (cfg->trace_reason && strcmp(cfg->trace_reason, reason))
		return true;
	if (cfg->trace_namespace && strcmp(cfg->trace_namespace, nl->namespace_))
		return true;
	return cfg->trace_pod && strcmp(cfg->trace_pod, nl->pod);
}

static void format_addr(const struct netdrop_event *e, const __u8 *addr, char *out, size_t outlen)
{
	out[0] = '\0';
	if (e->family == 4)
		inet_ntop(AF_INET, addr, out, (socklen_t)outlen);
	else if (e->family == 6)
		inet_ntop(AF_INET6, addr, out, (socklen_t)outlen);
}

static void format_endpoint(const struct netdrop_event *e, const char *addr, uint16_t port, char *out,
			    size_t outlen)
{
	if (!addr[0])
		snprintf(out, outlen, "-");
	else if (!e->has_ports)
		snprintf(out, outlen, "%s", addr);
	else if (e->family == 6)
		snprintf(out, outlen, "[%s]:%u", addr, port);
	else
		snprintf(out, outlen, "%s:%u", addr, port);
}

static int netdrop_handle_event(struct signal_runtime *rt, const void *data, size_t size)
{
	const struct netdrop_event *e = data;
	struct netdrop_state *st = rt->priv;
	struct event_common ev = { .signal = "netdrop", .comm = "", .cgroup = "", .container = "" };
	char reason[NETDROP_REASON_NAME_LEN], saddr[INET6_ADDRSTRLEN], daddr[INET6_ADDRSTRLEN];
	char ifname[NETDROP_IFNAMSIZ + 1], location[160], src[64], dst[64], details[512];
	struct netns_labels nl;
	json_object *obj;

	if (size < sizeof(*e))
		return -EINVAL;
	reason_name(st, e->reason, reason, sizeof(reason));
	netns_labels(st, e->netns, &nl);
	if (filtered_out(rt->agent->cfg, reason, &nl))
		return 0;
	format_addr(e, e->saddr, saddr, sizeof(saddr));
	format_addr(e, e->daddr, daddr, sizeof(daddr));
	snprintf(ifname, sizeof(ifname), "%.*s", NETDROP_IFNAMSIZ, e->ifname);
	netdrop_syms_format(&st->syms, e->location, location, sizeof(location));

	ev.boot_ns = e->boot_ns;
	ev.namespace_ = nl.namespace_;
	ev.pod = nl.pod;
	obj = event_json(rt->agent, &ev);
	event_json_add_string(obj, "reason", reason);
	event_json_add_string(obj, "protocol", netdrop_proto_name(e->proto));
	event_json_add_string(obj, "family", e->family == 4 ? "ipv4" : e->family == 6 ? "ipv6" : "");
	event_json_add_string(obj, "saddr", saddr);
	event_json_add_string(obj, "daddr", daddr);
	json_object_object_add(obj, "sport", e->has_ports ? json_object_new_int(e->sport) : NULL);
	json_object_object_add(obj, "dport", e->has_ports ? json_object_new_int(e->dport) : NULL);
	event_json_add_string(obj, "ifname", ifname);
	event_json_add_string(obj, "location", location);
	event_json_add_string(obj, "netns", nl.netns);

	format_endpoint(e, saddr, e->sport, src, sizeof(src));
	format_endpoint(e, daddr, e->dport, dst, sizeof(dst));
	snprintf(details, sizeof(details), "%s %s %s > %s dev=%s at=%s netns=%s", reason,
		 netdrop_proto_name(e->proto), src, dst, ifname[0] ? ifname : "-", location[0] ? location : "-",
		 nl.netns[0] ? nl.netns : "-");
	event_emit(rt->agent, &ev, obj, details);
	return 0;
}

const struct signal_def netdrop_signal = {
	.name = "netdrop",
	.summary = "packets the kernel dropped (every drop reason, per pod), TCP retransmits and resets",
	.points = netdrop_points,
	.n_points = N(netdrop_points),
	.ringbuf_map = "netdrop_events",
	SIGNAL_SKELETON_FIELDS(netdrop),
	.configure = netdrop_configure,
	.init = netdrop_init,
	.handle_event = netdrop_handle_event,
	.warm_up = netdrop_warm_up,
	.collect = netdrop_collect,
	.fini = netdrop_fini,
};
