// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * netdrop: every packet the kernel drops, counted in the kernel by (drop
 * reason, protocol class, network namespace); TCP retransmits and resets by
 * network namespace; and, for `ksight trace`, a sample of individual drops let
 * through by a per-CPU token bucket.
 *
 * Probe point kfree_skb, variants best first (the loader attaches the first
 * that works):
 *   tp_btf              tp_btf/kfree_skb (skb, location, reason[, rx_sk]): no
 *                       trace record is built, fields are plain loads
 *   tracepoint          tracepoint/skb/kfree_skb: every field layout it has had
 *                       (rx_sk sits in the middle since ~6.11), by CO-RE
 *   kprobe              kprobe/sk_skb_reason_drop (6.11+)
 *   kprobe_5.17         kprobe/kfree_skb_reason (5.17 to 6.10)
 *   kprobe_old          kprobe/kfree_skb (before 5.17: no reasons)
 * The kprobes fire before the skb's last reference is dropped, so an skb
 * freed by a holder that is not the last counts too: a fallback only.
 *
 * Probe points tcp_retransmit, tcp_reset_out, tcp_reset_in, variants best first:
 *   tp_btf              tp_btf/ (raw): run under a guard of their own. Classic
 *                       tracepoints run through trace_call_bpf, which skips a
 *                       program while another classic tracepoint or kprobe
 *                       program runs on that CPU (bpf_prog_active): a
 *                       retransmit timer's softirq interrupting one is lost
 *                       (since 6.7 counted in the program's recursion_misses)
 *   tp_btf_old          tcp_retransmit only: tcp_retransmit_skb before it had err
 *   tracepoint          tracepoint/tcp/: every record layout they have had
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "netdrop.h"
#include "ringbuf.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Set by user space before load. The defaults keep every path in (the
 * verifier suite loads objects as they are); `ksight run` turns the trace off.
 */
const volatile bool trace_enabled = true;   /* ksight trace: emit sampled records */
const volatile __u64 trace_rate = 100;      /* records per second per CPU */
const volatile __u64 trace_burst = 100;     /* bucket size, records */
const volatile __u64 trace_fill_ns = 1000000000ULL; /* time to fill an empty bucket: burst/rate s */
const volatile bool filter_reason_set = false;      /* trace only drops of filter_reason */
const volatile __u32 filter_reason = 0;

#define NSEC_PER_SEC 1000000000ULL
#define ETH_P_IP_    0x0800
#define ETH_P_IPV6_  0x86DD
#define ETH_P_ARP_   0x0806
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define ETH_P_LLDP_  0x88CC
#define IPPROTO_ICMP_   1
#define IPPROTO_TCP_    6
#define IPPROTO_UDP_    17
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_SCTP_   132

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, NETDROP_MAX_KEYS);
	__type(key, struct netdrop_key);
	__type(value, __u64);
} netdrop_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, NETDROP_MAX_TCP_KEYS);
	__type(key, struct netdrop_tcp_key);
	__type(value, __u64);
} netdrop_tcp_counts SEC(".maps");

/* keys created, per map: created - present = evicted by the LRU (we never delete) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NETDROP_STAT_NR);
	__type(key, __u32);
	__type(value, __u64);
} netdrop_stats SEC(".maps");

/* One CPU's bucket, in nano-tokens (1 record = NSEC_PER_SEC): refills are integer. */
struct netdrop_bucket {
	__u64 tokens_ns;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct netdrop_bucket);
} netdrop_bucket SEC(".maps");

/*
 * Only `ksight trace` writes here. 64 KiB: 630 records of 104 bytes, the
 * default burst (100 per CPU) of 6 CPUs at once before user space reads any;
 * beyond, a record is counted lost. Mapped twice over by user space: 128 KiB
 * of RSS.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} netdrop_events SEC(".maps");

static __always_inline void stat_inc(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&netdrop_stats, &slot);

	if (v)
		*v += 1;
}

/* Add n to a per-CPU LRU counter, creating the key (and counting it) when new. */
static __always_inline void counter_add(void *map, const void *key, __u64 n, __u32 created_stat)
{
	__u64 *v = bpf_map_lookup_elem(map, key);

	if (v) {
		*v += n; /* per-CPU value: no atomic needed */
		return;
	}
	if (bpf_map_update_elem(map, key, &n, BPF_NOEXIST) == 0) {
		stat_inc(created_stat);
		return;
	}
	/* another CPU created it in between: ours is a different per-CPU slot */
	v = bpf_map_lookup_elem(map, key);
	if (v)
		*v += n;
}

/* ---- network namespace and protocol of an skb ---- */

static __always_inline __u32 sock_netns(const struct sock *sk)
{
	return sk ? BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) : 0;
}

static __always_inline __u32 dev_netns(const struct net_device *dev)
{
	return dev ? BPF_CORE_READ(dev, nd_net.net, ns.inum) : 0;
}

/*
 * The namespace the drop happened in. An skb owned by a socket takes the
 * socket's: on socket queues skb->dev shares a union with dev_scratch (UDP)
 * and the rbtree links (TCP), so it is not a device there. Otherwise the
 * device's, else the receiving socket the tracepoint passes (6.11+ rx_sk).
 */
static __always_inline __u32 skb_netns(struct sock *sk, struct net_device *dev, struct sock *rx_sk)
{
	__u32 ino = sock_netns(sk);

	if (!ino)
		ino = dev_netns(dev);
	if (!ino)
		ino = sock_netns(rx_sk);
	return ino;
}

struct skb_facts {
	__u32 netns;       /* filled by facts_btf; 0: count_drop looks it up */
	struct sock *sk;
	struct net_device *dev;
	unsigned char *head;
	__u16 protocol;    /* ethertype, host order */
	__u16 nh;          /* network header offset; 0xffff: not set */
	__u16 th;          /* transport header offset; 0xffff: not set */
};

/*
 * tp_btf: the skb is a BTF pointer, its fields (and the structs they point
 * to) are plain fault-safe loads, no helper calls: the hot path of every drop.
 */
static __always_inline void facts_btf(struct sk_buff *skb, struct skb_facts *f)
{
	f->sk = skb->sk;
	f->dev = skb->dev;
	f->netns = 0;
	/* as skb_netns(): the socket's namespace first, then the device's */
	if (f->sk)
		f->netns = f->sk->__sk_common.skc_net.net->ns.inum;
	if (!f->netns && f->dev)
		f->netns = f->dev->nd_net.net->ns.inum;
	f->head = skb->head;
	f->protocol = bpf_ntohs(skb->protocol);
	f->nh = skb->network_header;
	f->th = skb->transport_header;
}

static __always_inline void facts_probe(struct sk_buff *skb, struct skb_facts *f)
{
	__be16 proto = BPF_CORE_READ(skb, protocol);

	f->netns = 0;
	f->sk = BPF_CORE_READ(skb, sk);
	f->dev = BPF_CORE_READ(skb, dev);
	f->head = BPF_CORE_READ(skb, head);
	f->protocol = bpf_ntohs(proto);
	f->nh = BPF_CORE_READ(skb, network_header);
	f->th = BPF_CORE_READ(skb, transport_header);
}

static __always_inline __u32 l4_class(__u8 l4)
{
	switch (l4) {
	case IPPROTO_TCP_: return NETDROP_PROTO_TCP;
	case IPPROTO_UDP_: return NETDROP_PROTO_UDP;
	case IPPROTO_ICMP_: return NETDROP_PROTO_ICMP;
	case IPPROTO_ICMPV6_: return NETDROP_PROTO_ICMPV6;
	case IPPROTO_SCTP_: return NETDROP_PROTO_SCTP;
	}
	return NETDROP_PROTO_IP_OTHER;
}

/*
 * The IP version of a packet: skb->protocol, or when that is not set yet
 * (some local output paths) the header's version nibble.
 */
static __always_inline __u8 ip_family(const struct skb_facts *f)
{
	__u8 first = 0;

	if (f->protocol == ETH_P_IP_)
		return 4;
	if (f->protocol == ETH_P_IPV6_)
		return 6;
	if (f->protocol || f->nh == 0xffff || !f->head)
		return 0;
	if (bpf_probe_read_kernel(&first, 1, f->head + f->nh))
		return 0;
	return first >> 4 == 4 ? 4 : first >> 4 == 6 ? 6 : 0;
}

/*
 * The L4 protocol: IPv4's protocol field, IPv6's next header (extension
 * headers are not walked: a packet with one counts as ip "other").
 */
static __always_inline __u32 proto_class(const struct skb_facts *f, __u8 family, __u8 *l4)
{
	*l4 = 0;
	if (family) {
		if (f->nh == 0xffff || !f->head)
			return NETDROP_PROTO_IP_OTHER;
		if (bpf_probe_read_kernel(l4, 1, f->head + f->nh + (family == 4 ? 9 : 6)))
			return NETDROP_PROTO_IP_OTHER;
		return l4_class(*l4);
	}
	switch (f->protocol) {
	case ETH_P_ARP_: return NETDROP_PROTO_ARP;
	case ETH_P_8021Q_:
	case ETH_P_8021AD_: return NETDROP_PROTO_VLAN;
	case ETH_P_LLDP_: return NETDROP_PROTO_LLDP;
	}
	return NETDROP_PROTO_OTHER;
}

/* ---- the sampled trace ---- */

/* Take one token from this CPU's bucket; false when it is empty. */
static __always_inline bool bucket_take(void)
{
	__u32 zero = 0;
	struct netdrop_bucket *b = bpf_map_lookup_elem(&netdrop_bucket, &zero);
	__u64 now = bpf_ktime_get_ns(), full = trace_burst * NSEC_PER_SEC, elapsed;

	if (!b || !trace_rate)
		return false;
	elapsed = now - b->last_ns;
	b->last_ns = now;
	/* capping elapsed first keeps elapsed * rate far from overflowing */
	if (elapsed >= trace_fill_ns)
		b->tokens_ns = full;
	else
		b->tokens_ns += elapsed * trace_rate;
	if (b->tokens_ns > full)
		b->tokens_ns = full;
	if (b->tokens_ns < NSEC_PER_SEC)
		return false;
	b->tokens_ns -= NSEC_PER_SEC;
	return true;
}

static __always_inline void fill_addresses(struct netdrop_event *e, const struct skb_facts *f)
{
	const unsigned char *nh = f->head + f->nh;
	__u16 ports[2];
	__u32 l4_off = 0;
	__u8 vihl = 0;
	__be16 frag = 0;

	if (!e->family || f->nh == 0xffff || !f->head)
		return;
	if (e->family == 4) {
		bpf_probe_read_kernel(e->saddr, 4, nh + 12);
		bpf_probe_read_kernel(e->daddr, 4, nh + 16);
		bpf_probe_read_kernel(&vihl, 1, nh);
		bpf_probe_read_kernel(&frag, 2, nh + 6);
		/* a non-first fragment carries no L4 header */
		if (bpf_ntohs(frag) & 0x1fff)
			return;
		l4_off = (vihl & 0xf) * 4;
	} else {
		bpf_probe_read_kernel(e->saddr, 16, nh + 8);
		bpf_probe_read_kernel(e->daddr, 16, nh + 24);
		l4_off = 40;
	}
	if (e->l4proto != IPPROTO_TCP_ && e->l4proto != IPPROTO_UDP_ && e->l4proto != IPPROTO_SCTP_)
		return;
	if (bpf_probe_read_kernel(ports, sizeof(ports), nh + l4_off))
		return;
	e->sport = bpf_ntohs(ports[0]);
	e->dport = bpf_ntohs(ports[1]);
	e->has_ports = 1;
}

static __always_inline void trace_drop(const struct skb_facts *f, const struct netdrop_key *key, __u8 family,
				       __u8 l4, void *location, __u8 source)
{
	struct net_device *dev;
	struct netdrop_event *e;

	if (filter_reason_set && key->reason != filter_reason)
		return;
	if (!bucket_take()) {
		ringbuf_count(KSIGHT_RB_SUPPRESSED);
		return;
	}
	e = ringbuf_reserve(&netdrop_events, struct netdrop_event);
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->boot_ns = bpf_ktime_get_boot_ns();
	e->location = (__u64)location;
	e->reason = key->reason;
	e->netns = key->netns;
	e->proto = key->proto;
	e->l3proto = f->protocol;
	e->l4proto = l4;
	e->family = family;
	e->source = source;
	fill_addresses(e, f);
	/* a device whose namespace is not the drop's is a union member reused by a socket queue */
	dev = f->dev;
	if (dev && dev_netns(dev) == key->netns) {
		e->ifindex = BPF_CORE_READ(dev, ifindex);
		bpf_probe_read_kernel_str(e->ifname, sizeof(e->ifname), dev->name);
	}
	ringbuf_submit(e);
}

/* ---- the drop path, shared by every variant ---- */

/* SKB_CONSUMED (6.0+) and SKB_NOT_DROPPED_YET (5.19+) are frees, not drops. */
static __always_inline bool not_a_drop(__u32 reason)
{
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return true;
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_NOT_DROPPED_YET) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_NOT_DROPPED_YET))
		return true;
	return false;
}

static __always_inline void count_drop(struct skb_facts *f, struct sock *rx_sk, void *location, __u32 reason,
				       __u8 source)
{
	struct netdrop_key key = { .reason = reason };
	__u8 family, l4;

	if (not_a_drop(reason))
		return;
	key.netns = f->netns ? f->netns : skb_netns(f->sk, f->dev, rx_sk);
	family = ip_family(f);
	key.proto = proto_class(f, family, &l4);
	counter_add(&netdrop_counts, &key, 1, NETDROP_STAT_DROP_KEYS);
	if (trace_enabled)
		trace_drop(f, &key, family, l4, location, source);
}

/*
 * TRACE_EVENT(kfree_skb, TP_PROTO(struct sk_buff *skb, void *location,
 *	enum skb_drop_reason reason, struct sock *rx_sk))
 * 5.17 added reason (c504e5c2f964), ~6.11 rx_sk; only the first three are
 * read, so both forms fit. Before 5.17 the planner rules this variant out.
 */
SEC("tp_btf/kfree_skb")
int BPF_PROG(netdrop_kfree_skb_btf, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	struct skb_facts f;

	facts_btf(skb, &f);
	count_drop(&f, NULL, location, (__u32)reason, NETDROP_SOURCE_TP_BTF);
	return 0;
}

/*
 * struct trace_event_raw_kfree_skb { ent; void *skbaddr; void *location;
 * [~6.11: void *rx_sk;] unsigned short protocol; [5.17: enum skb_drop_reason reason;] }
 */
SEC("tracepoint/skb/kfree_skb")
int netdrop_kfree_skb_tp(struct trace_event_raw_kfree_skb *ctx)
{
	__u32 reason = NETDROP_REASON_NONE;
	struct sock *rx_sk = NULL;
	struct skb_facts f;

	if (bpf_core_field_exists(ctx->reason))
		reason = ctx->reason;
	if (bpf_core_field_exists(ctx->rx_sk))
		rx_sk = ctx->rx_sk;
	facts_probe(ctx->skbaddr, &f);
	count_drop(&f, rx_sk, ctx->location, reason, NETDROP_SOURCE_TRACEPOINT);
	return 0;
}

/* 6.11+ (ba8de796baf4): void sk_skb_reason_drop(struct sock *sk, struct sk_buff *skb, enum skb_drop_reason reason) */
SEC("kprobe/sk_skb_reason_drop")
int BPF_KPROBE(netdrop_sk_skb_reason_drop_kp, struct sock *sk, struct sk_buff *skb, int reason)
{
	struct skb_facts f;
	__u64 ret = 0;

	BPF_KPROBE_READ_RET_IP(ret, ctx);
	facts_probe(skb, &f);
	count_drop(&f, sk, (void *)ret, (__u32)reason, NETDROP_SOURCE_KPROBE);
	return 0;
}

/* 5.17 to 6.10 (c504e5c2f964): void kfree_skb_reason(struct sk_buff *skb, enum skb_drop_reason reason) */
SEC("kprobe/kfree_skb_reason")
int BPF_KPROBE(netdrop_kfree_skb_reason_kp, struct sk_buff *skb, int reason)
{
	struct skb_facts f;
	__u64 ret = 0;

	BPF_KPROBE_READ_RET_IP(ret, ctx);
	facts_probe(skb, &f);
	count_drop(&f, NULL, (void *)ret, (__u32)reason, NETDROP_SOURCE_KPROBE);
	return 0;
}

/* before 5.17: void kfree_skb(struct sk_buff *skb), no reason (an inline wrapper since) */
SEC("kprobe/kfree_skb")
int BPF_KPROBE(netdrop_kfree_skb_kp, struct sk_buff *skb)
{
	struct skb_facts f;
	__u64 ret = 0;

	BPF_KPROBE_READ_RET_IP(ret, ctx);
	facts_probe(skb, &f);
	count_drop(&f, NULL, (void *)ret, NETDROP_REASON_NONE, NETDROP_SOURCE_KPROBE);
	return 0;
}

/* ---- TCP retransmits and resets ---- */

/* Before the tracepoints got their own classes both were DEFINE_EVENT(tcp_event_sk_skb, ...). */
struct trace_event_raw_tcp_event_sk_skb___ksight {
	const void *skbaddr;
	const void *skaddr;
} __attribute__((preserve_access_index));

/*
 * A field of one of two layouts of a tracepoint's record: read through a
 * helper, since clang merges two direct loads into one ctx pointer
 * computation, which the verifier refuses.
 */
#define CTX_READ(dst, c, field) bpf_core_read(&(dst), sizeof(dst), &(c)->field)

static __always_inline void count_tcp(__u32 kind, __u32 netns, __u64 n)
{
	struct netdrop_tcp_key key = { .kind = kind, .netns = netns };

	counter_add(&netdrop_tcp_counts, &key, n, NETDROP_STAT_TCP_KEYS);
}

/* Segments in a retransmitted skb: TcpRetransSegs adds tcp_skb_pcount(), not 1. */
static __always_inline __u64 tcp_segs(const struct sk_buff *skb)
{
	struct tcp_skb_cb *cb = (struct tcp_skb_cb *)((void *)skb + bpf_core_field_offset(struct sk_buff, cb));
	__u16 segs = BPF_CORE_READ(cb, tcp_gso_segs);

	return segs ? segs : 1;
}

/*
 * After 6.12 (6.18 has it): TRACE_EVENT(tcp_retransmit_skb, TP_PROTO(const struct sock *sk,
 *	const struct sk_buff *skb, int err)): also fired for a retransmit that
 * failed (err != 0), which was not sent and is not in TcpRetransSegs.
 * Before: DEFINE_EVENT(tcp_event_sk_skb, tcp_retransmit_skb, (sk, skb)), sent only.
 */
SEC("tracepoint/tcp/tcp_retransmit_skb")
int netdrop_tcp_retransmit_tp(void *ctx)
{
	const struct sk_buff *skb;
	const struct sock *sk;

	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb)) {
		struct trace_event_raw_tcp_retransmit_skb *c = ctx;

		if (bpf_core_field_exists(c->err) && c->err)
			return 0;
		CTX_READ(sk, c, skaddr);
		CTX_READ(skb, c, skbaddr);
	} else {
		struct trace_event_raw_tcp_event_sk_skb___ksight *c = ctx;

		CTX_READ(sk, c, skaddr);
		CTX_READ(skb, c, skbaddr);
	}
	count_tcp(NETDROP_TCP_RETRANSMIT, sock_netns(sk), tcp_segs(skb));
	return 0;
}

/*
 * The same hooks raw. tcp_retransmit_skb's two prototypes are two programs:
 * a tp_btf program may not read an argument its hook lacks (the verifier
 * checks each one against the BTF prototype), and the planner rules out the
 * one that does not fit (PROBE_ARG_SCALAR / PROBE_ARG_ABSENT on err).
 */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(netdrop_tcp_retransmit_btf, const struct sock *sk, const struct sk_buff *skb, int err)
{
	if (!err) /* a failed retransmit was not sent: not in TcpRetransSegs */
		count_tcp(NETDROP_TCP_RETRANSMIT, sock_netns(sk), tcp_segs(skb));
	return 0;
}

/* before err was added: fired for sent retransmits only */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(netdrop_tcp_retransmit_btf_old, const struct sock *sk, const struct sk_buff *skb)
{
	count_tcp(NETDROP_TCP_RETRANSMIT, sock_netns(sk), tcp_segs(skb));
	return 0;
}

/* Where the reset was sent: the socket's namespace, else (no socket wanted the packet) its device's. */
static __always_inline __u32 reset_netns(const struct sock *sk, const struct sk_buff *skb)
{
	__u32 netns = sock_netns(sk);

	if (!netns && skb)
		netns = skb_netns(BPF_CORE_READ(skb, sk), BPF_CORE_READ(skb, dev), NULL);
	return netns;
}

/* (sk, skb), and since 6.10 (sk, skb, reason): only the first two are read, so one program fits both */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(netdrop_tcp_send_reset_btf, const struct sock *sk, const struct sk_buff *skb)
{
	count_tcp(NETDROP_TCP_RESET_SENT, reset_netns(sk, skb), 1);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(netdrop_tcp_receive_reset_btf, struct sock *sk)
{
	count_tcp(NETDROP_TCP_RESET_RECEIVED, sock_netns(sk), 1);
	return 0;
}

/*
 * 6.10+: TRACE_EVENT(tcp_send_reset, TP_PROTO(const struct sock *sk,
 *	const struct sk_buff *skb, const enum sk_rst_reason reason)); sk is NULL
 * for a reset answering a packet no socket wanted: then the packet's device.
 */
SEC("tracepoint/tcp/tcp_send_reset")
int netdrop_tcp_send_reset_tp(void *ctx)
{
	const struct sk_buff *skb;
	const struct sock *sk;

	if (bpf_core_type_exists(struct trace_event_raw_tcp_send_reset)) {
		struct trace_event_raw_tcp_send_reset *c = ctx;

		CTX_READ(sk, c, skaddr);
		CTX_READ(skb, c, skbaddr);
	} else {
		struct trace_event_raw_tcp_event_sk_skb___ksight *c = ctx;

		CTX_READ(sk, c, skaddr);
		CTX_READ(skb, c, skbaddr);
	}
	count_tcp(NETDROP_TCP_RESET_SENT, reset_netns(sk, skb), 1);
	return 0;
}

/* DEFINE_EVENT(tcp_event_sk, tcp_receive_reset, TP_PROTO(struct sock *sk)) */
SEC("tracepoint/tcp/tcp_receive_reset")
int netdrop_tcp_receive_reset_tp(struct trace_event_raw_tcp_event_sk *ctx)
{
	count_tcp(NETDROP_TCP_RESET_RECEIVED, sock_netns(ctx->skaddr), 1);
	return 0;
}
