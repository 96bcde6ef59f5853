// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * apilat: latency of the sockets this node's clients open to the Kubernetes
 * API server, per client (cgroup + comm at connect time).
 *
 * Probe point sock_state: tracepoint/sock/inet_sock_set_state (4.16).
 *   CLOSE -> SYN_SENT      the connect, in the connecting task's context: the
 *                          destination is looked up in apilat_endpoints (the
 *                          first and only check for every other socket); a hit
 *                          makes an apilat_conns entry with the client's
 *                          cgroup id and comm
 *   SYN_SENT -> ESTABLISHED  connect duration
 *   SYN_SENT -> CLOSE        connect failure, cause from sk_err
 *   any -> CLOSE             the entry goes
 * Probe points send, recv: tracepoint/sock/sock_{send,recv}_length (6.3+;
 * process context, after the protocol's sendmsg/recvmsg returned).
 *
 * A turn starts at the first send after the peer last sent data (or the
 * connection's first send) and ends at the first data received after it:
 * that delay is a request's time to its first response byte. Data received
 * with no send before it (watch events, server pushes) makes no sample but
 * is counted in bytes. The first handshake_turns turns of a connection are
 * its TLS handshake (TLS 1.3: ClientHello -> ServerHello..Finished; the
 * client's Finished then leaves with the first request): they go to the
 * handshake histogram, not to the response one nor to requests. On HTTP/2
 * a turn is "the client sent, then the server answered something": many
 * streams in flight make one turn, timed to the first frame back.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "apilat.h"
#include "ringbuf.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 lo_exp = APILAT_DEFAULT_LO_EXP;
const volatile __u32 hi_exp = APILAT_DEFAULT_HI_EXP;
const volatile __u32 handshake_turns = APILAT_DEFAULT_HANDSHAKE_TURNS;

#define TCP_ESTABLISHED_ 1
#define TCP_SYN_SENT_    2
#define TCP_CLOSE_       7
#define IPPROTO_TCP_     6
#define AF_INET_         2
#define AF_INET6_        10
#define MSG_PEEK_        2
#define ECONNREFUSED_    111
#define ETIMEDOUT_       110
#define ECONNRESET_      104
#define EHOSTUNREACH_    113
#define ENETUNREACH_     101
#define EHOSTDOWN_       112
#define ENETDOWN_        100

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, APILAT_MAX_ENDPOINTS);
	__type(key, struct apilat_endpoint);
	__type(value, __u8);
} apilat_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, APILAT_MAX_CONNS);
	__type(key, __u64);  /* the struct sock's address */
	__type(value, struct apilat_conn);
} apilat_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, APILAT_MAX_HISTS);
	__type(key, struct apilat_hist_key);
	__type(value, struct apilat_hist);
} apilat_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, APILAT_MAX_CLIENTS);
	__type(key, struct apilat_client);
	__type(value, struct apilat_counts);
} apilat_counts SEC(".maps");

/* Never written: the zeroed first value of a new histogram or counter (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct apilat_hist);
} apilat_zero SEC(".maps");

static __always_inline void *lookup_or_init(void *map, const void *key)
{
	__u32 zero = 0;
	void *v = bpf_map_lookup_elem(map, key), *init;

	if (v)
		return v;
	init = bpf_map_lookup_elem(&apilat_zero, &zero);
	if (!init)
		return NULL;
	bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

static __always_inline void observe(const struct apilat_client *client, __u32 kind, __u64 ns)
{
	struct apilat_hist_key key = { .client = *client, .kind = kind };
	struct apilat_hist *h = lookup_or_init(&apilat_hists, &key);
	__u32 b = apilat_bucket(ns, lo_exp, hi_exp);

	if (!h)
		return;
	if (b >= APILAT_MAX_BUCKETS)
		b = APILAT_MAX_BUCKETS - 1;
	h->buckets[b] += 1; /* per-CPU value: no atomics */
	h->sum_ns += ns;
}

static __always_inline struct apilat_counts *counts_of(const struct apilat_client *client)
{
	return lookup_or_init(&apilat_counts, client);
}

static __always_inline __u32 fail_cause(int err)
{
	switch (err) {
	case ECONNREFUSED_:
		return APILAT_FAIL_REFUSED;
	case ETIMEDOUT_:
		return APILAT_FAIL_TIMEOUT;
	case ECONNRESET_:
		return APILAT_FAIL_RESET;
	case EHOSTUNREACH_:
	case ENETUNREACH_:
	case EHOSTDOWN_:
	case ENETDOWN_:
		return APILAT_FAIL_UNREACHABLE;
	}
	return APILAT_FAIL_OTHER;
}

/*
 * ---- the trace: a block of its own; every hook returns at once unless tracing ----
 * The program's record/turn hooks below are one call each in the handlers.
 */
const volatile bool trace_enabled = false;
const volatile __u64 trace_slow_ns = APILAT_DEFAULT_TRACE_SLOW_NS;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, APILAT_TRACE_RING_BYTES);
} apilat_trace_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, APILAT_MAX_CONNS);
	__type(key, __u64);  /* the struct sock's address */
	__type(value, struct apilat_trace_turn);
} apilat_trace_turns SEC(".maps");

/* The socket's own addresses: the tracepoint's are not at hand in the send and recv hooks. */
static __always_inline void trace_addrs(struct apilat_trace_event *r, __u64 sk)
{
	struct sock *s = (struct sock *)sk;

	if (BPF_CORE_READ(s, __sk_common.skc_family) == AF_INET6_) {
		BPF_CORE_READ_INTO(&r->saddr, s, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&r->daddr, s, __sk_common.skc_v6_daddr);
		r->family = 6;
	} else {
		BPF_CORE_READ_INTO((__u32 *)r->saddr, s, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)r->daddr, s, __sk_common.skc_daddr);
		r->family = 4;
	}
	r->sport = BPF_CORE_READ(s, __sk_common.skc_num);
	r->dport = bpf_ntohs(BPF_CORE_READ(s, __sk_common.skc_dport));
}

static __always_inline void trace_emit(const struct apilat_client *client, __u64 sk, __u8 phase, __u8 cause,
				       __u64 boot_ns, __u64 duration_ns, const struct apilat_trace_turn *t)
{
	struct apilat_trace_event *r = ringbuf_reserve(&apilat_trace_events, struct apilat_trace_event);

	if (!r)
		return;
	__builtin_memset(r, 0, sizeof(*r));
	r->client = *client;
	r->boot_ns = boot_ns;
	r->duration_ns = duration_ns;
	r->phase = phase;
	r->cause = cause;
	if (t) {
		r->pid = t->pid;
		if (phase == APILAT_TRACE_HANDSHAKE || phase == APILAT_TRACE_RESPONSE) {
			r->sent_bytes = t->sent_bytes;
			r->received_bytes = t->received_bytes;
		}
	}
	if (t && t->family) {
		__builtin_memcpy(r->saddr, t->saddr, sizeof(r->saddr));
		__builtin_memcpy(r->daddr, t->daddr, sizeof(r->daddr));
		r->sport = t->sport;
		r->dport = t->dport;
		r->family = t->family;
	} else {
		trace_addrs(r, sk);
	}
	ringbuf_submit(r);
}

/* In the connecting task: who it is, for every record of the connection. */
static __always_inline void trace_connect_begin(__u64 sk)
{
	struct apilat_trace_turn t = { .pid = bpf_get_current_pid_tgid() >> 32 };

	if (trace_enabled)
		bpf_map_update_elem(&apilat_trace_turns, &sk, &t, BPF_ANY);
}

static __always_inline void trace_connected(const struct apilat_conn *c, __u64 sk)
{
	struct apilat_trace_turn *t;
	struct apilat_trace_event a = {};

	if (!trace_enabled)
		return;
	t = bpf_map_lookup_elem(&apilat_trace_turns, &sk);
	/* keep the addresses for the connection's later records */
	if (t) {
		trace_addrs(&a, sk);
		__builtin_memcpy(t->saddr, a.saddr, sizeof(t->saddr));
		__builtin_memcpy(t->daddr, a.daddr, sizeof(t->daddr));
		t->sport = a.sport;
		t->dport = a.dport;
		t->family = a.family;
	}
	trace_emit(&c->client, sk, APILAT_TRACE_CONNECT, 0, bpf_ktime_get_boot_ns(), bpf_ktime_get_ns() - c->syn_ns, t);
}

static __always_inline void trace_failed(const struct apilat_conn *c, __u64 sk, __u32 cause)
{
	if (trace_enabled)
		trace_emit(&c->client, sk, APILAT_TRACE_FAILURE, cause, bpf_ktime_get_boot_ns(),
			   bpf_ktime_get_ns() - c->syn_ns, bpf_map_lookup_elem(&apilat_trace_turns, &sk));
}

/* The turn is over: its record, if it was slow. */
static __always_inline void trace_flush(const struct apilat_conn *c, __u64 sk, struct apilat_trace_turn *t)
{
	if (t->pending)
		trace_emit(&c->client, sk, t->phase, 0, t->first_byte_boot_ns, t->duration_ns, t);
	t->pending = 0;
}

/* Before the handler's own turn logic: c->phase is still the one before this send. */
static __always_inline void trace_send(const struct apilat_conn *c, __u64 sk, __u64 bytes)
{
	struct apilat_trace_turn *t;

	if (!trace_enabled)
		return;
	t = bpf_map_lookup_elem(&apilat_trace_turns, &sk);
	if (!t)
		return;
	if (c->phase != APILAT_SENT) {
		trace_flush(c, sk, t);
		t->sent_bytes = 0;
		t->received_bytes = 0;
	}
	t->sent_bytes += bytes;
}

/* Before the handler's own turn logic: a first response byte when c->phase is APILAT_SENT. */
static __always_inline void trace_recv(const struct apilat_conn *c, __u64 sk, __u64 bytes)
{
	struct apilat_trace_turn *t;
	__u64 ns;

	if (!trace_enabled)
		return;
	t = bpf_map_lookup_elem(&apilat_trace_turns, &sk);
	if (!t)
		return;
	if (c->phase == APILAT_SENT) {
		ns = bpf_ktime_get_ns() - c->turn_ns;
		if (ns >= trace_slow_ns) {
			t->pending = 1;
			t->phase = c->turns > handshake_turns ? APILAT_TRACE_RESPONSE : APILAT_TRACE_HANDSHAKE;
			t->duration_ns = ns;
			t->first_byte_boot_ns = bpf_ktime_get_boot_ns();
		}
	}
	t->received_bytes += bytes;
}

static __always_inline void trace_close(const struct apilat_conn *c, __u64 sk)
{
	struct apilat_trace_turn *t;

	if (!trace_enabled)
		return;
	t = bpf_map_lookup_elem(&apilat_trace_turns, &sk);
	if (!t)
		return;
	trace_flush(c, sk, t);
	bpf_map_delete_elem(&apilat_trace_turns, &sk);
}

/* ---- the handlers ---- */

static __always_inline void on_connect(struct trace_event_raw_inet_sock_set_state *ctx, __u64 sk)
{
	struct apilat_endpoint ep = { .port = ctx->dport };
	struct apilat_conn conn = { .phase = APILAT_IDLE };

	/* helper reads: the verifier refuses loads through a ctx pointer plus an offset */
	if (ctx->family == AF_INET6_)
		bpf_probe_read_kernel(ep.addr, 16, ctx->daddr_v6);
	else {
		/* the v4-mapped form, whatever daddr_v6 holds on this kernel */
		ep.addr[10] = 0xff;
		ep.addr[11] = 0xff;
		bpf_probe_read_kernel(&ep.addr[12], 4, ctx->daddr);
	}
	if (!bpf_map_lookup_elem(&apilat_endpoints, &ep))
		return;
	conn.client.cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(conn.client.comm, sizeof(conn.client.comm));
	conn.syn_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&apilat_conns, &sk, &conn, BPF_ANY);
	trace_connect_begin(sk);
}

SEC("tracepoint/sock/inet_sock_set_state")
int apilat_sock_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 sk = (__u64)ctx->skaddr;
	int oldstate = ctx->oldstate, newstate = ctx->newstate;
	struct apilat_conn *c;
	struct apilat_counts *n;

	if (ctx->protocol != IPPROTO_TCP_)
		return 0;
	if (oldstate == TCP_CLOSE_ && newstate == TCP_SYN_SENT_) {
		on_connect(ctx, sk);
		return 0;
	}
	c = bpf_map_lookup_elem(&apilat_conns, &sk);
	if (!c)
		return 0;
	if (oldstate == TCP_SYN_SENT_ && newstate == TCP_ESTABLISHED_) {
		c->established = 1;
		observe(&c->client, APILAT_HIST_CONNECT, bpf_ktime_get_ns() - c->syn_ns);
		trace_connected(c, sk);
		return 0;
	}
	if (newstate != TCP_CLOSE_) {
		if (oldstate == TCP_ESTABLISHED_)
			c->established = 0; /* closing: no longer an open connection */
		return 0;
	}
	if (oldstate == TCP_SYN_SENT_) {
		int err = BPF_CORE_READ((struct sock *)sk, sk_err);

		n = counts_of(&c->client);
		if (n) {
			__u32 cause = fail_cause(err);

			if (cause < APILAT_FAIL_NR)
				n->failures[cause] += 1;
		}
		trace_failed(c, sk, fail_cause(err));
	}
	trace_close(c, sk);
	bpf_map_delete_elem(&apilat_conns, &sk);
	return 0;
}

SEC("tracepoint/sock/sock_send_length")
int apilat_send(struct trace_event_raw_sock_msg_length *ctx)
{
	__u64 sk = (__u64)ctx->sk;
	struct apilat_conn *c;
	struct apilat_counts *n;

	/* every socket's sends come here: the cheapest tests first, then the connection table */
	if (ctx->ret <= 0 || ctx->protocol != IPPROTO_TCP_)
		return 0;
	c = bpf_map_lookup_elem(&apilat_conns, &sk);
	if (!c)
		return 0;
	trace_send(c, sk, ctx->ret);
	if (c->phase != APILAT_SENT) {
		c->phase = APILAT_SENT;
		c->turn_ns = bpf_ktime_get_ns();
		c->turns += 1;
		if (c->turns > handshake_turns) {
			n = counts_of(&c->client);
			if (n)
				n->requests += 1;
		}
	}
	n = counts_of(&c->client);
	if (n)
		n->sent_bytes += ctx->ret;
	return 0;
}

SEC("tracepoint/sock/sock_recv_length")
int apilat_recv(struct trace_event_raw_sock_msg_length *ctx)
{
	__u64 sk = (__u64)ctx->sk;
	struct apilat_conn *c;
	struct apilat_counts *n;

	if (ctx->ret <= 0 || (ctx->flags & MSG_PEEK_) || ctx->protocol != IPPROTO_TCP_)
		return 0;
	c = bpf_map_lookup_elem(&apilat_conns, &sk);
	if (!c)
		return 0;
	trace_recv(c, sk, ctx->ret);
	if (c->phase == APILAT_SENT) {
		c->phase = APILAT_RECEIVING;
		observe(&c->client, c->turns > handshake_turns ? APILAT_HIST_RESPONSE : APILAT_HIST_HANDSHAKE,
			bpf_ktime_get_ns() - c->turn_ns);
	}
	n = counts_of(&c->client);
	if (n)
		n->received_bytes += ctx->ret;
	return 0;
}
