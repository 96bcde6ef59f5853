// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * apilat: latency of the sockets this node's clients open to the Kubernetes
 * API server, per client (cgroup + comm at connect time).
 *
 * Probe point sock_state: tp_btf/ or tracepoint/sock/inet_sock_set_state (4.16).
 *   CLOSE -> SYN_SENT      the connect, in the connecting task's context: the
 *                          destination is looked up in apilat_endpoints (the
 *                          first and only check for every other socket); a hit
 *                          makes an apilat_conns entry with the client's
 *                          cgroup id and comm
 *   SYN_SENT -> ESTABLISHED  connect duration
 *   SYN_SENT -> CLOSE        connect failure, cause from sk_err
 *   any -> CLOSE             the entry goes
 *   LISTEN -> SYN_RECV       a child socket accepted by a listener (softirq): its
 *                          local address and port are looked up in the same set;
 *                          a hit makes a server-side entry (no client identity)
 *   any -> CLOSE with sk_err ECONNRESET (EPIPE after a FIN): a connection reset
 * Probe points send, recv: tp_btf/ or tracepoint/sock/sock_{send,recv}_length
 * (6.3+; process context, after the protocol's sendmsg/recvmsg returned); on older
 * kernels kprobe/tcp_sendmsg (its entry: the bytes asked to be sent, not the
 * bytes accepted) and kprobe/tcp_cleanup_rbuf (the bytes tcp_recvmsg copied,
 * MSG_PEEK included).
 * Probe point rtt: tp_btf/tcp_probe, or tracepoint/tcp/tcp_probe (its skaddr field, 6.x; the
 * kprobe/tcp_rcv_established variant elsewhere: the same place, the first
 * statement of tcp_rcv_established), one sample per connection per
 * APILAT_RTT_INTERVAL_NS of the smoothed RTT (srtt_us >> 3, before this
 * segment's ACK is processed).
 * Probe point retransmit: tp_btf/tcp_retransmit_skb, its (sk, skb, err) form
 * (after 6.12) or its older (sk, skb) one, else tracepoint/tcp/tcp_retransmit_skb
 * (4.16). The tp_btf variants are preferred for sock_state and retransmit
 * since a classic tracepoint's program is skipped while another classic
 * tracepoint or kprobe program runs on that CPU (trace_call_bpf's
 * bpf_prog_active): a softirq interrupting one loses its event.
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
 * On the server side the roles swap: a turn opens at the first data received
 * after the server last sent and closes at the server's first send after it
 * (request received -> first response byte sent), the first handshake_turns
 * of them being the TLS handshake again.
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
#define TCP_SYN_RECV_    3
#define TCP_CLOSE_       7
#define TCP_CLOSE_WAIT_  8
#define TCP_FIN_WAIT1_   4
#define TCP_FIN_WAIT2_   5
#define TCP_LAST_ACK_    9
#define TCP_CLOSING_     11
#define TCP_LISTEN_      10
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
#define EPIPE_           32

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
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, APILAT_MAX_HISTS);
	__type(key, struct apilat_hist_key);
	__type(value, struct apilat_hist);
} apilat_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, APILAT_MAX_CLIENTS);
	__type(key, struct apilat_client);
	__type(value, struct apilat_counts);
} apilat_counts SEC(".maps");

/* The server side's totals: one entry. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct apilat_counts);
} apilat_server_counts SEC(".maps");

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

static __always_inline void observe(const struct apilat_conn *c, __u32 kind, __u64 ns)
{
	struct apilat_hist_key key = { .client = c->client, .kind = kind, .server = c->server };
	struct apilat_hist *h = lookup_or_init(&apilat_hists, &key);
	/*
	 * 64-bit: a __u32 index is zero-extended once for the bounds check and once
	 * for the access, and verifiers before 6.12 do not carry the check's bounds
	 * over to the other copy ("unbounded memory access" on 5.10 and 6.1)
	 */
	__u64 b = apilat_bucket(ns, lo_exp, hi_exp);

	if (!h)
		return;
	if (b >= APILAT_MAX_BUCKETS)
		b = APILAT_MAX_BUCKETS - 1;
	/* one value for every CPU (a per-CPU map costs an allocation per entry and CPU at start-up) */
	__sync_fetch_and_add(&h->buckets[b], 1);
	__sync_fetch_and_add(&h->sum_ns, ns);
}

static __always_inline struct apilat_counts *counts_of(const struct apilat_conn *c)
{
	__u32 zero = 0;

	if (c->server)
		return bpf_map_lookup_elem(&apilat_server_counts, &zero);
	return lookup_or_init(&apilat_counts, &c->client);
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

/* one entry unless `ksight trace` runs (configure sizes it): a preallocated 16k-entry hash is 2.5 MiB */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
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

/*
 * probe_reads: false in a sockops program (5.10 does not give it the helper):
 * the turn's addresses are in t already (trace_connected)
 */
static __always_inline void trace_emit(const struct apilat_client *client, __u64 sk, __u8 phase, __u8 cause,
				       __u64 boot_ns, __u64 duration_ns, const struct apilat_trace_turn *t,
				       bool probe_reads)
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
	} else if (probe_reads) {
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
	trace_emit(&c->client, sk, APILAT_TRACE_CONNECT, 0, bpf_ktime_get_boot_ns(), bpf_ktime_get_ns() - c->syn_ns, t, true);
}

static __always_inline void trace_failed(const struct apilat_conn *c, __u64 sk, __u32 cause)
{
	if (trace_enabled)
		trace_emit(&c->client, sk, APILAT_TRACE_FAILURE, cause, bpf_ktime_get_boot_ns(),
			   bpf_ktime_get_ns() - c->syn_ns, bpf_map_lookup_elem(&apilat_trace_turns, &sk), true);
}

/* The turn is over: its record, if it was slow. */
static __always_inline void trace_flush(const struct apilat_conn *c, __u64 sk, struct apilat_trace_turn *t,
					bool probe_reads)
{
	if (t->pending)
		trace_emit(&c->client, sk, t->phase, 0, t->first_byte_boot_ns, t->duration_ns, t, probe_reads);
	t->pending = 0;
}

/* Before the handler's own turn logic: c->phase is still the one before this send. */
static __always_inline void trace_send(const struct apilat_conn *c, __u64 sk, __u64 bytes, bool probe_reads)
{
	struct apilat_trace_turn *t;

	if (!trace_enabled)
		return;
	t = bpf_map_lookup_elem(&apilat_trace_turns, &sk);
	if (!t)
		return;
	if (c->phase != APILAT_SENT) {
		trace_flush(c, sk, t, probe_reads);
		t->sent_bytes = 0;
		t->received_bytes = 0;
	}
	t->sent_bytes += bytes;
}

/* Before the handler's own turn logic: a first response byte when c->phase is APILAT_SENT. */
static __always_inline void trace_first_byte(const struct apilat_conn *c, __u64 sk)
{
	struct apilat_trace_turn *t;
	__u64 ns;

	if (!trace_enabled || c->phase != APILAT_SENT)
		return;
	t = bpf_map_lookup_elem(&apilat_trace_turns, &sk);
	if (!t)
		return;
	ns = bpf_ktime_get_ns() - c->turn_ns;
	if (ns >= trace_slow_ns) {
		t->pending = 1;
		t->phase = c->turns > handshake_turns ? APILAT_TRACE_RESPONSE : APILAT_TRACE_HANDSHAKE;
		t->duration_ns = ns;
		t->first_byte_boot_ns = bpf_ktime_get_boot_ns();
	}
}

/* The open turn's received bytes. */
static __always_inline void trace_received(__u64 sk, __u64 bytes)
{
	struct apilat_trace_turn *t;

	if (!trace_enabled)
		return;
	t = bpf_map_lookup_elem(&apilat_trace_turns, &sk);
	if (t)
		t->received_bytes += bytes;
}

static __always_inline void trace_recv(const struct apilat_conn *c, __u64 sk, __u64 bytes)
{
	trace_first_byte(c, sk);
	trace_received(sk, bytes);
}

static __always_inline void trace_close(const struct apilat_conn *c, __u64 sk)
{
	struct apilat_trace_turn *t;

	if (!trace_enabled)
		return;
	t = bpf_map_lookup_elem(&apilat_trace_turns, &sk);
	if (!t)
		return;
	trace_flush(c, sk, t, true);
	bpf_map_delete_elem(&apilat_trace_turns, &sk);
}

/*
 * ---- recv=ingress: a receive hook on the cgroups of API-server connections only ----
 * Every hook on TCP's receive path runs for every socket of the machine
 * (tcp_probe: a program per received segment, ~2% of a same-CPU loopback
 * request/response loop, however empty the program). A cgroup_skb/ingress
 * program runs only for the sockets of the cgroups it is attached to: user
 * space attaches apilat_recv_ingress to the cgroup of each API-server
 * connection (the socket's own cgroup v2, where the kernel looks), asked here
 * once per cgroup, and to no other; the sockets of every other cgroup pay a
 * test of an empty program array. A connection made in a cgroup not attached
 * yet (the first one of a new pod, for the few hundred microseconds the
 * attach takes) can get data before the hook sees it: the next send sees
 * rcv_nxt past the end of what the hook saw (seen_end) and ends that turn
 * without a sample, so turns and requests are counted all the same. In
 * sequence numbers, not bytes_received: a segment the hook saw can still wait
 * in the socket's backlog, untaken, while a send opens a turn.
 */
/* entry 0: 1 while user space attaches where asked (recv=ingress) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} apilat_rx_on SEC(".maps");

static __always_inline bool rx_asks(void)
{
	__u32 zero = 0, *on = bpf_map_lookup_elem(&apilat_rx_on, &zero);

	return on && *on;
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, APILAT_MAX_RX_CGROUPS);
	__type(key, __u64);   /* cgroup v2 id */
	__type(value, __u32); /* enum apilat_rx_state */
} apilat_rx_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, APILAT_RX_RING_BYTES);
} apilat_rx_asks SEC(".maps");

/*
 * The socket's own cgroup v2 (a server-side child's is its listener's): 5.15+
 * keeps a pointer to it; before, the pointer is a word whose two low bits
 * mark net_prio or net_cls data in its place (set once either is written to:
 * every socket is the root's from then on), and the kernel takes the root
 * then.
 */
struct sock_cgroup_data___apilat {
	struct cgroup *cgroup;
} __attribute__((preserve_access_index));

struct sock_cgroup_data___apilat_old {
	__u64 val;
} __attribute__((preserve_access_index));

#define ROOT_CGROUP_ID 1

static __always_inline __u64 sk_cgroup_id(const struct sock *sk)
{
	struct sock_cgroup_data___apilat *d = (void *)&sk->sk_cgrp_data;
	struct sock_cgroup_data___apilat_old *old = (void *)&sk->sk_cgrp_data;
	__u64 v;

	if (!bpf_core_field_exists(sk->sk_cgrp_data))
		return 0; /* no CONFIG_SOCK_CGROUP_DATA */
	if (bpf_core_field_exists(d->cgroup))
		return BPF_CORE_READ(d, cgroup, kn, id);
	if (!bpf_core_field_exists(old->val))
		return 0;
	v = BPF_CORE_READ(old, val);
	if (!v || (v & 3))
		return ROOT_CGROUP_ID;
	return BPF_CORE_READ((struct cgroup *)v, kn, id);
}

/* A new connection's cgroup: asked for once (a full map or ring: its turns are counted, not timed). */
static __always_inline void rx_ask(__u64 sk)
{
	struct apilat_rx_ask *r;
	__u32 asked = APILAT_RX_ASKED;
	__u64 cg;

	cg = sk_cgroup_id((const struct sock *)sk);
	if (!cg || bpf_map_lookup_elem(&apilat_rx_cgroups, &cg))
		return;
	if (bpf_map_update_elem(&apilat_rx_cgroups, &cg, &asked, BPF_NOEXIST))
		return;
	r = bpf_ringbuf_reserve(&apilat_rx_asks, sizeof(*r), 0);
	if (!r) {
		bpf_map_delete_elem(&apilat_rx_cgroups, &cg); /* asked again by the next connection */
		return;
	}
	r->cgroup_id = cg;
	r->ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(r, 0);
}

/* ---- the handlers ---- */

/*
 * The connect (remote address) of a client, or the accept (local address) of
 * a server-side child, as `ep`: is that address an API-server endpoint?
 */
static __always_inline void on_open(const struct apilat_endpoint *ep, __u64 sk, bool server)
{
	struct apilat_conn conn = { .phase = APILAT_IDLE, .server = server };

	if (!bpf_map_lookup_elem(&apilat_endpoints, ep))
		return;
	if (!server) {
		/* process context: the connecting task */
		conn.client.cgroup_id = bpf_get_current_cgroup_id();
		bpf_get_current_comm(conn.client.comm, sizeof(conn.client.comm));
	}
	conn.syn_ns = bpf_ktime_get_ns();
	/* recv=ingress: received bytes counted at each callback, from tcp_sock.bytes_received */
	conn.by_received = rx_asks();
	if (bpf_map_update_elem(&apilat_conns, &sk, &conn, BPF_ANY))
		return;
	if (conn.by_received)
		rx_ask(sk);
	if (!server)
		trace_connect_begin(sk);
}

/*
 * send=sockops: what the last data segment did to the turn stands (any
 * later event of the connection but its RETRANS_CB): its request is
 * counted, its answer observed.
 */
static __always_inline void settle_turn(struct apilat_conn *c)
{
	struct apilat_counts *n;

	if (!c->tx_pending)
		return;
	c->tx_pending = 0;
	if (c->request_due) {
		c->request_due = 0;
		n = counts_of(c);
		if (n)
			__sync_fetch_and_add(&n->requests, 1);
	}
	if (c->answer_due) {
		c->answer_due = 0;
		observe(c, c->answer_kind, c->answer_dur_ns);
	}
}

/*
 * send=sockops's retransmits: what tcp_sock.total_retrans grew by, the
 * kernel's own count (tcpi_total_retrans; TcpRetransSegs adds the same):
 * every retransmit tried, one that failed on the way out too, which the
 * tracepoint variants cannot all see. Counted at RETRANS_CB and at the close.
 */
static __always_inline void count_retrans(struct apilat_conn *c, __u32 total)
{
	struct apilat_counts *n;

	if (total == c->retrans)
		return;
	n = counts_of(c);
	if (n)
		__sync_fetch_and_add(&n->retransmits, total - c->retrans);
	c->retrans = total;
}

/* The data segment going out moved the turn: settled or undone by what comes next. */
static __always_inline void so_moved(struct apilat_conn *c, __u32 snd_nxt)
{
	c->tx_pending = 1;
	c->open_nxt = snd_nxt;
}

/*
 * RETRANS_CB, right after a retransmit was tried: if the segment that moved
 * the turn sent no new data (snd_nxt has not moved since), it was this
 * retransmit (data the peer lost, resent after the peer sent on its own:
 * HTTP/2 PINGs, watch events, the next request) and what it did is undone.
 */
static __always_inline void so_retransmitted(struct apilat_conn *c, __u32 snd_nxt)
{
	if (!c->tx_pending)
		return;
	if (snd_nxt != c->open_nxt) {
		settle_turn(c);
		return;
	}
	c->tx_pending = 0;
	if (c->answer_due) {
		c->answer_due = 0;
		c->phase = APILAT_SENT; /* the request is still unanswered */
	} else {
		c->request_due = 0;
		c->phase = c->phase_before;
		c->turns -= 1;
	}
}

/*
 * The sockops send variant's sent bytes: what the peer acknowledged since
 * last counted (each byte once, retransmits not again), at each of the
 * connection's callbacks while it has sent no FIN, and at its close.
 */
static __always_inline void count_acked(struct apilat_conn *c, __u64 acked)
{
	struct apilat_counts *n;

	if (acked <= c->acked)
		return;
	n = counts_of(c);
	if (n)
		__sync_fetch_and_add(&n->sent_bytes, acked - c->acked);
	c->acked = acked;
}

/*
 * recv=segment's received bytes: what tcp_sock.bytes_received grew by since
 * last counted (it moves with rcv_nxt: in-order data TCP accepted, each byte
 * once), at each segment and callback of the connection while no FIN came
 * from the peer, and at its close.
 */
static __always_inline void count_received(struct apilat_conn *c, __u64 sk, __u64 received)
{
	struct apilat_counts *n;
	__u64 d;

	if (received <= c->received)
		return;
	d = received - c->received;
	c->received = received;
	n = counts_of(c);
	if (n)
		__sync_fetch_and_add(&n->received_bytes, d);
	if (!c->server)
		trace_received(sk, d);
}

/*
 * At the close, from the state it leaves: bytes_acked counts our FIN's
 * sequence number too once it is acknowledged (sent: the states after a
 * close or shutdown sent it; acknowledged: nothing past snd_una is left). A
 * close that resets (unread data, SO_LINGER 0) sent no FIN.
 */
static __always_inline __u64 acked_data(const struct sock *sk, int oldstate)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u64 acked = BPF_CORE_READ(tp, bytes_acked);
	bool fin_sent = oldstate == TCP_FIN_WAIT1_ || oldstate == TCP_FIN_WAIT2_ || oldstate == TCP_CLOSING_ ||
			oldstate == TCP_LAST_ACK_;

	if (fin_sent && acked && BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, write_seq))
		acked -= 1;
	return acked;
}

/* bytes_received counts the peer's FIN too: tcp_fin() marks the socket SOCK_DONE (nothing else does). */
static __always_inline __u64 received_data(const struct sock *sk)
{
	__u64 received = BPF_CORE_READ((const struct tcp_sock *)sk, bytes_received);
	unsigned long flags = BPF_CORE_READ(sk, __sk_common.skc_flags);

	if (received && (flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))))
		received -= 1;
	return received;
}

/* Every other transition of a TCP socket: the connection table's entry, if it has one. */
static __always_inline void on_state(__u64 sk, int oldstate, int newstate)
{
	struct apilat_conn *c;
	struct apilat_counts *n;

	c = bpf_map_lookup_elem(&apilat_conns, &sk);
	if (!c)
		return;
	if (oldstate == TCP_SYN_SENT_ && newstate == TCP_ESTABLISHED_) {
		c->established = 1;
		observe(c, APILAT_HIST_CONNECT, bpf_ktime_get_ns() - c->syn_ns);
		trace_connected(c, sk);
		return;
	}
	if (oldstate == TCP_SYN_RECV_ && newstate == TCP_ESTABLISHED_) {
		c->established = 1;
		return;
	}
	if (newstate != TCP_CLOSE_) {
		if (oldstate == TCP_ESTABLISHED_)
			c->established = 0; /* closing: no longer an open connection */
		return;
	}
	if (oldstate == TCP_SYN_SENT_) {
		int err = BPF_CORE_READ((struct sock *)sk, sk_err);

		n = counts_of(c);
		if (n) {
			__u32 cause = fail_cause(err);

			if (cause < APILAT_FAIL_NR)
				__sync_fetch_and_add(&n->failures[cause], 1);
		}
		trace_failed(c, sk, fail_cause(err));
	} else if (oldstate != TCP_SYN_RECV_) {
		/* tcp_reset() sets sk_err before tcp_done() closes: ECONNRESET, EPIPE in CLOSE_WAIT */
		int err = BPF_CORE_READ((struct sock *)sk, sk_err);

		if (err == ECONNRESET_ || err == EPIPE_) {
			n = counts_of(c);
			if (n)
				__sync_fetch_and_add(&n->resets, 1);
		}
	}
	settle_turn(c);
	if (c->by_acks) {
		count_acked(c, acked_data((const struct sock *)sk, oldstate));
		count_retrans(c, BPF_CORE_READ((const struct tcp_sock *)sk, total_retrans));
	}
	if (c->by_received)
		count_received(c, sk, received_data((const struct sock *)sk));
	trace_close(c, sk);
	bpf_map_delete_elem(&apilat_conns, &sk);
}

/*
 * The endpoint of the record's connect (remote address) or accept (local
 * address). `server` a constant at each call: the verifier refuses loads
 * through a ctx pointer plus a variable offset, and the arrays are read by helper.
 */
static __always_inline void tp_open(struct trace_event_raw_inet_sock_set_state *ctx, __u64 sk, bool server)
{
	struct apilat_endpoint ep = { .port = server ? ctx->sport : ctx->dport };

	if (ctx->family == AF_INET6_) {
		bpf_probe_read_kernel(ep.addr, 16, server ? ctx->saddr_v6 : ctx->daddr_v6);
	} else {
		/* the v4-mapped form, whatever daddr_v6 holds on this kernel */
		ep.addr[10] = 0xff;
		ep.addr[11] = 0xff;
		bpf_probe_read_kernel(&ep.addr[12], 4, server ? ctx->saddr : ctx->daddr);
	}
	on_open(&ep, sk, server);
}

SEC("tracepoint/sock/inet_sock_set_state")
int apilat_sock_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 sk = (__u64)ctx->skaddr;
	int oldstate = ctx->oldstate, newstate = ctx->newstate;

	if (ctx->protocol != IPPROTO_TCP_)
		return 0;
	if (oldstate == TCP_CLOSE_ && newstate == TCP_SYN_SENT_)
		tp_open(ctx, sk, false);
	else if (oldstate == TCP_LISTEN_ && newstate == TCP_SYN_RECV_)
		tp_open(ctx, sk, true);
	else
		on_state(sk, oldstate, newstate);
	return 0;
}

/*
 * The same tracepoint raw: TP_PROTO(const struct sock *sk, const int oldstate,
 * const int newstate). Its record's fields, from where the tracepoint takes
 * them: sport and saddr are inet_sock's inet_sport and inet_saddr (a listener's
 * child has the listener's until tcp_v4_syn_recv_sock sets its own, after this
 * transition), dport and daddr the socket's skc_dport and skc_daddr, the IPv6
 * pair skc_v6_rcv_saddr and skc_v6_daddr.
 */
static __always_inline void btf_open(const struct sock *sk, bool server)
{
	const struct inet_sock *inet = (const struct inet_sock *)sk;
	struct apilat_endpoint ep = {};
	__u32 a;

	/* inet_sock's fields are past struct sock: helper reads */
	ep.port = bpf_ntohs(server ? BPF_CORE_READ(inet, inet_sport) : sk->__sk_common.skc_dport);
	if (sk->__sk_common.skc_family == AF_INET6_) {
		if (server)
			BPF_CORE_READ_INTO(&ep.addr, sk, __sk_common.skc_v6_rcv_saddr);
		else
			BPF_CORE_READ_INTO(&ep.addr, sk, __sk_common.skc_v6_daddr);
	} else {
		a = server ? BPF_CORE_READ(inet, inet_saddr) : sk->__sk_common.skc_daddr;
		ep.addr[10] = 0xff;
		ep.addr[11] = 0xff;
		__builtin_memcpy(&ep.addr[12], &a, 4);
	}
	on_open(&ep, (__u64)sk, server);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(apilat_sock_state_btf, const struct sock *sk, int oldstate, int newstate)
{
	/* a bitfield before 5.6 */
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP_)
		return 0;
	if (oldstate == TCP_CLOSE_ && newstate == TCP_SYN_SENT_)
		btf_open(sk, false);
	else if (oldstate == TCP_LISTEN_ && newstate == TCP_SYN_RECV_)
		btf_open(sk, true);
	else
		on_state((__u64)sk, oldstate, newstate);
	return 0;
}

/*
 * ---- the hot path's first test ----
 * The endpoint set's ports, a bit each (APILAT_PORT_WORDS): user space keeps
 * them the union of the ports in apilat_endpoints, grown before an endpoint
 * enters the map and shrunk after one leaves it (apilat_endpoint.c). Every
 * TCP send, receive and received segment of the machine comes through the
 * hooks below; this plain load is all an unrelated socket costs them. A
 * client's connection to an endpoint has the endpoint's port as its remote
 * port, a server-side child as its local one: a socket with neither is not
 * in apilat_conns and needs no lookup there. Ports other sockets share with
 * an endpoint only cost them that lookup.
 */
__u64 apilat_ports[APILAT_PORT_WORDS];

static __always_inline bool port_in_set(__u16 port)
{
	return apilat_ports[port >> 6] & (1ULL << (port & 63));
}

/* remote and local port, host order */
static __always_inline bool ports_in_set(__u16 remote, __u16 local)
{
	return port_in_set(remote) || port_in_set(local);
}

/* A socket the verifier knows (tp_btf): two plain loads of the port pair. */
static __always_inline bool btf_sk_may_follow(const struct sock *sk)
{
	return ports_in_set(bpf_ntohs(sk->__sk_common.skc_dport), sk->__sk_common.skc_num);
}

/* A socket pointer the verifier does not know (kprobes, tracepoint records): one helper read of the pair. */
static __always_inline bool sk_may_follow(const struct sock *sk)
{
	struct {
		__be16 dport; /* skc_dport, then skc_num: skc_portpair's halves */
		__u16 num;
	} pp;

	if (bpf_core_read(&pp, sizeof(pp), &sk->__sk_common.skc_dport))
		return true; /* unreadable: the connection table decides */
	return ports_in_set(bpf_ntohs(pp.dport), pp.num);
}

/*
 * Stores before it are not moved after it by the compiler (recv=ingress
 * reads the phase outside the socket's lock). The hardware keeps that order
 * on x86; on arm64 the hook can, rarely, pair a turn it reads with the
 * previous turn's time.
 */
#define store_order() __asm__ __volatile__("" ::: "memory")

/* The receive hooks' mark starts at rcv_nxt, once (the established callback, adoption). */
static __always_inline void seen_start(struct apilat_conn *c, __u32 rcv_nxt)
{
	if (c->seen_set)
		return;
	c->seen_end = rcv_nxt;
	c->seen_set = 1;
}

/* The side that asks: opens a turn unless one is open; the phase last. */
static __always_inline void turn_ask(struct apilat_conn *c, struct apilat_counts *n)
{
	if (c->phase == APILAT_SENT)
		return;
	c->turn_ns = bpf_ktime_get_ns();
	c->turns += 1;
	if (c->turns > handshake_turns && n)
		__sync_fetch_and_add(&n->requests, 1);
	store_order();
	c->phase = APILAT_SENT;
}

/* The side that answers: its first data closes the open turn. */
static __always_inline void turn_answer(struct apilat_conn *c)
{
	if (c->phase != APILAT_SENT)
		return;
	c->phase = APILAT_RECEIVING;
	observe(c, c->turns > handshake_turns ? APILAT_HIST_RESPONSE : APILAT_HIST_HANDSHAKE,
		bpf_ktime_get_ns() - c->turn_ns);
}

/* len bytes sent on the socket sk (any socket: the connection table is the filter). */
static __always_inline void on_send(__u64 sk, __u64 len)
{
	struct apilat_conn *c = bpf_map_lookup_elem(&apilat_conns, &sk);
	struct apilat_counts *n;

	if (!c)
		return;
	n = counts_of(c);
	if (c->server) {
		turn_answer(c);
	} else {
		trace_send(c, sk, len, true); /* before the turn logic: it needs the phase before this send */
		turn_ask(c, n);
	}
	if (n)
		__sync_fetch_and_add(&n->sent_bytes, len);
}

static __always_inline void on_recv_conn(struct apilat_conn *c, __u64 sk, __u64 len)
{
	struct apilat_counts *n = counts_of(c);

	if (c->server) {
		turn_ask(c, n);
	} else {
		trace_recv(c, sk, len);
		turn_answer(c);
	}
	if (n)
		__sync_fetch_and_add(&n->received_bytes, len);
}

static __always_inline void on_recv(__u64 sk, __u64 len)
{
	struct apilat_conn *c = bpf_map_lookup_elem(&apilat_conns, &sk);

	if (c)
		on_recv_conn(c, sk, len);
}

SEC("tracepoint/sock/sock_send_length")
int apilat_send(struct trace_event_raw_sock_msg_length *ctx)
{
	/* every socket's sends come here: the cheapest tests first, then the ports, then the connection table */
	if (ctx->ret <= 0 || ctx->protocol != IPPROTO_TCP_ || !sk_may_follow(ctx->sk))
		return 0;
	on_send((__u64)ctx->sk, ctx->ret);
	return 0;
}

SEC("tracepoint/sock/sock_recv_length")
int apilat_recv(struct trace_event_raw_sock_msg_length *ctx)
{
	if (ctx->ret <= 0 || (ctx->flags & MSG_PEEK_) || ctx->protocol != IPPROTO_TCP_ || !sk_may_follow(ctx->sk))
		return 0;
	on_recv((__u64)ctx->sk, ctx->ret);
	return 0;
}

/*
 * The same tracepoints raw (BTF): their arguments, without the record a
 * tracepoint/ program gets filled for it (that filling, paid on every socket
 * of the machine, costs more than the program).
 */
SEC("tp_btf/sock_send_length")
int BPF_PROG(apilat_send_btf, struct sock *sk, int ret, int flags)
{
	/* no protocol test: the connection table only holds TCP sockets */
	if (ret > 0 && btf_sk_may_follow(sk))
		on_send((__u64)sk, ret);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(apilat_recv_btf, struct sock *sk, int ret, int flags)
{
	if (ret > 0 && !(flags & MSG_PEEK_) && btf_sk_may_follow(sk))
		on_recv((__u64)sk, ret);
	return 0;
}

/* Before 6.3: tcp_sendmsg(sk, msg, size) at entry, TCP sockets only. */
SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(apilat_send_kp, struct sock *sk, void *msg, __u64 size)
{
	if (size && sk_may_follow(sk))
		on_send((__u64)sk, size);
	return 0;
}

/*
 * Before 6.3: tcp_cleanup_rbuf(sk, copied), called by tcp_recvmsg once it
 * copied. A receive that must wait for more (MSG_WAITALL, SO_RCVLOWAT) calls
 * it before waiting too, with what it has so far: those bytes count twice.
 */
SEC("kprobe/tcp_cleanup_rbuf")
int BPF_KPROBE(apilat_recv_kp, struct sock *sk, int copied)
{
	if (copied > 0 && sk_may_follow(sk))
		on_recv((__u64)sk, copied);
	return 0;
}

static __always_inline void on_rtt_conn(struct apilat_conn *c, __u32 srtt_us)
{
	__u64 now;

	if (!srtt_us)
		return;
	now = bpf_ktime_get_ns();
	if (c->rtt_ns && now - c->rtt_ns < APILAT_RTT_INTERVAL_NS)
		return;
	c->rtt_ns = now;
	observe(c, APILAT_HIST_RTT, (__u64)srtt_us * 1000);
}

static __always_inline void on_rtt(__u64 sk, __u32 srtt_us)
{
	struct apilat_conn *c = bpf_map_lookup_elem(&apilat_conns, &sk);

	if (c)
		on_rtt_conn(c, srtt_us);
}

/*
 * Every segment an established socket receives: the ports' test for the
 * others (the record's own sport and dport, host order). skaddr is a 6.x field: where it is missing this fails to load and
 * the kprobe variant is used.
 */
SEC("tracepoint/tcp/tcp_probe")
int apilat_rtt(struct trace_event_raw_tcp_probe *ctx)
{
	if (ports_in_set(ctx->dport, ctx->sport))
		on_rtt((__u64)ctx->skaddr, ctx->srtt);
	return 0;
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(apilat_rtt_btf, struct sock *sk, const struct sk_buff *skb)
{
	/* srtt_us is beyond struct sock: a helper read, for the few sockets past the ports */
	if (btf_sk_may_follow(sk))
		on_rtt((__u64)sk, BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3);
	return 0;
}

SEC("kprobe/tcp_rcv_established")
int BPF_KPROBE(apilat_rtt_kp, struct sock *sk)
{
	if (sk_may_follow(sk))
		on_rtt((__u64)sk, BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3);
	return 0;
}

/*
 * ---- the per-connection variants: send=sockops, rtt=sockops, recv=segment ----
 * A sockops program, attached to the root of cgroup v2, runs for a TCP
 * socket's connect, accept and established callbacks, and for the callbacks
 * that socket asked for (tcp_sock.bpf_sock_ops_cb_flags). Only an API-server
 * connection (in apilat_conns when it becomes established) asks: its every
 * transmitted segment (HDR_OPT_LEN_CB, 5.10; no option is written) and RTT
 * sample (RTT_CB, 5.3). Every other socket's segments run nothing: the only
 * hook left on them is tcp_probe (recv=segment), one per received segment.
 *   send=sockops: a turn is asked (client) or answered (server) at the first
 *     data segment transmitted, not at send(): Nagle or a full window can
 *     hold data back after send() returned. That segment may be a retransmit
 *     (RETRANS_CB, 4.16, comes right after it): what it did stands only once
 *     another event of the connection comes first, or snd_nxt moved
 *     (settle_turn, so_retransmitted). Sent bytes are what the peer
 *     acknowledged (tcp_sock.bytes_acked), counted at each callback and at
 *     the close: retransmits are not counted again.
 *   recv=segment: at tcp_probe (the first statement of tcp_rcv_established,
 *     in softirq or from the socket's backlog), a segment with data past
 *     rcv_nxt: the first response byte, timed when it reached the socket, not
 *     when the client read it. Bytes are what tcp_sock.bytes_received grew
 *     by (in-order data TCP took), counted at the next segment or callback
 *     and at the close.
 * Connections established before ksight started are adopted (probe point
 * adopt, at the end of this file).
 */
static __always_inline bool so_may_follow(const struct bpf_sock_ops *skops)
{
	/* remote_port: network order in the upper half on little-endian; local_port: host order */
	return ports_in_set(bpf_ntohl(skops->remote_port), skops->local_port);
}

static __always_inline struct apilat_conn *so_conn(struct bpf_sock_ops *skops, __u64 *sk)
{
	struct bpf_sock *s = skops->sk;

	if (!s || !so_may_follow(skops))
		return NULL;
	*sk = (__u64)s;
	return bpf_map_lookup_elem(&apilat_conns, sk);
}

/* Established: an API-server connection asks for the callbacks `flag`. */
static __always_inline void so_follow(struct bpf_sock_ops *skops, __u32 flag, bool by_acks)
{
	struct apilat_conn *c;
	__u64 sk;

	c = so_conn(skops, &sk);
	if (!c)
		return;
	if (by_acks) {
		c->by_acks = 1;
		c->acked = skops->bytes_acked;
		c->retrans = skops->total_retrans; /* the SYN's retransmits: counted by the retransmit point */
		seen_start(c, skops->rcv_nxt); /* no data yet */
	}
	/* other programs' flags kept */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | flag);
}

static __always_inline bool so_established(__u32 op)
{
	return op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB || op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB;
}

/*
 * Has TCP taken data since the open turn was asked (client) or last
 * answered (server) that no receive hook saw? Only while established: the
 * peer's FIN moves rcv_nxt too.
 */
static __always_inline bool unseen_data(const struct apilat_conn *c, const struct bpf_sock_ops *skops)
{
	return c->by_received && c->seen_set && skops->state == TCP_ESTABLISHED_ &&
	       (__s32)(skops->rcv_nxt - c->seen_end) > 0;
}

/*
 * What came before this turn, seen or not, is behind it. Written only when
 * rcv_nxt is past seen_end: while the hook sees everything it is not, and a
 * concurrent run of the hook that raises seen_end is not undone.
 */
static __always_inline void catch_up(struct apilat_conn *c, const struct bpf_sock_ops *skops)
{
	if (c->seen_set && (__s32)(skops->rcv_nxt - c->seen_end) > 0)
		c->seen_end = skops->rcv_nxt;
}

/*
 * At an ACK we send: data TCP took that no receive hook saw ends the turn it
 * answered (client) or is a request (server) now, counted, not timed, and
 * seen_end follows rcv_nxt: without a hook that raises it (a cgroup whose
 * attach was refused), 2 GiB received without a send in between would wrap
 * the comparisons.
 */
static __always_inline void unseen_by_ack(struct apilat_conn *c, const struct bpf_sock_ops *skops)
{
	if (!unseen_data(c, skops))
		return;
	catch_up(c, skops);
	if (!c->server) {
		if (c->phase == APILAT_SENT)
			c->phase = APILAT_RECEIVING;
		return;
	}
	if (c->phase != APILAT_SENT) {
		turn_ask(c, counts_of(c));
		c->phase = APILAT_RECEIVING;
	}
}

SEC("sockops")
int apilat_send_sockops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op, len, state;
	struct apilat_conn *c;
	__u64 sk;

	if (so_established(op)) {
		so_follow(skops, APILAT_SEND_CB_FLAGS, true);
		return 1;
	}
	if (op != BPF_SOCK_OPS_HDR_OPT_LEN_CB && op != BPF_SOCK_OPS_RTT_CB && op != BPF_SOCK_OPS_RETRANS_CB)
		return 1;
	c = so_conn(skops, &sk);
	if (!c)
		return 1;
	if (op == BPF_SOCK_OPS_RETRANS_CB) {
		count_retrans(c, skops->total_retrans);
		so_retransmitted(c, skops->snd_nxt);
		return 1;
	}
	settle_turn(c);
	/*
	 * bytes_acked counts our FIN once acknowledged, bytes_received the
	 * peer's: in the states where either may be in, the close counts the
	 * rest (tcp_fin() in FIN_WAIT1/2 sends its ACK before the state moves)
	 */
	state = skops->state;
	if (state == TCP_ESTABLISHED_ || state == TCP_CLOSE_WAIT_)
		count_acked(c, skops->bytes_acked);
	if (c->by_received && state == TCP_ESTABLISHED_)
		count_received(c, sk, skops->bytes_received);
	/* the segment's payload; 0 for an ACK, a FIN, or the MSS computation's call without a segment */
	len = op == BPF_SOCK_OPS_HDR_OPT_LEN_CB ? skops->skb_len : 0;
	if (!len) {
		unseen_by_ack(c, skops);
		return 1;
	}
	/* a retransmit comes here too: so_retransmitted undoes what it did */
	if (c->server) {
		if (c->phase != APILAT_SENT && unseen_data(c, skops)) {
			/* a request no receive hook saw (recv=ingress not attached yet): counted, not timed */
			catch_up(c, skops);
			turn_ask(c, counts_of(c));
			c->phase = APILAT_RECEIVING;
			return 1;
		}
		if (c->phase == APILAT_SENT) {
			/*
			 * all of it before the phase: recv=ingress opens the next turn
			 * (turn_ns, turns) once it reads RECEIVING, maybe before this
			 * one settles
			 */
			c->answer_dur_ns = bpf_ktime_get_ns() - c->turn_ns;
			c->answer_kind = c->turns > handshake_turns ? APILAT_HIST_RESPONSE : APILAT_HIST_HANDSHAKE;
			c->answer_due = 1;
			catch_up(c, skops);
			so_moved(c, skops->snd_nxt);
			store_order();
			c->phase = APILAT_RECEIVING;
		}
		return 1;
	}
	if (c->phase == APILAT_SENT && unseen_data(c, skops))
		c->phase = APILAT_RECEIVING; /* answered before a receive hook saw it: no sample */
	trace_send(c, sk, len, false); /* no probe reads: trace_connected kept the turn's addresses */
	if (c->phase != APILAT_SENT) {
		c->phase_before = c->phase;
		catch_up(c, skops);
		turn_ask(c, NULL);
		c->request_due = c->turns > handshake_turns;
		so_moved(c, skops->snd_nxt);
	}
	return 1;
}

SEC("sockops")
int apilat_rtt_sockops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op, srtt, next;
	struct apilat_conn *c;
	__u64 sk;

	if (so_established(op)) {
		so_follow(skops, APILAT_RTT_CB_FLAGS, false);
		return 1;
	}
	if (op != BPF_SOCK_OPS_RTT_CB)
		return 1;
	/*
	 * srtt_us is the value before this sample; kernels that pass the new one
	 * have it in args[1] (both scaled by 8), older ones pass 0 there
	 */
	srtt = skops->srtt_us; /* both read: a ctx field chosen by a branch is a pointer the verifier refuses */
	next = skops->args[1];
	c = so_conn(skops, &sk);
	if (c)
		on_rtt_conn(c, (next ? next : srtt) >> 3);
	return 1;
}

/*
 * A received segment of a followed socket. Its bytes are counted once TCP
 * has taken them in order (bytes_received, at the next segment or callback,
 * or at the close): this runs before TCP checks it. If it carries new data
 * (past rcv_nxt), it is the first byte of an answer (client) or of a
 * request (server).
 */
static __always_inline void on_segment(__u64 sk, const struct sk_buff *skb)
{
	struct apilat_conn *c = bpf_map_lookup_elem(&apilat_conns, &sk);
	struct tcp_skb_cb *cb;
	__u32 len, hl, seq, end, nxt;
	unsigned char *th;
	__u8 doff;

	if (!c)
		return;
	settle_turn(c);
	c->by_received = 1;
	count_received(c, sk, BPF_CORE_READ((struct tcp_sock *)sk, bytes_received));
	/* helper reads: a pointer loaded from a tp_btf argument costs the verifier BTF searches at every start */
	len = BPF_CORE_READ(skb, len);
	th = BPF_CORE_READ(skb, data); /* the TCP header, here */
	if (bpf_probe_read_kernel(&doff, 1, th + 12))
		return;
	hl = (doff >> 4) * 4;
	if (len <= hl)
		return; /* no data: an ACK, a window update */
	cb = (struct tcp_skb_cb *)((void *)skb + bpf_core_field_offset(struct sk_buff, cb));
	seq = BPF_CORE_READ(cb, seq);
	nxt = BPF_CORE_READ((struct tcp_sock *)sk, rcv_nxt);
	end = seq + (len - hl);
	if ((__s32)(end - nxt) <= 0)
		return; /* received before: a retransmit */
	if (c->seen_set && (__s32)(end - c->seen_end) > 0)
		c->seen_end = end;
	if (c->server) {
		turn_ask(c, counts_of(c));
	} else {
		trace_first_byte(c, sk);
		turn_answer(c);
	}
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(apilat_recv_segment, struct sock *sk, const struct sk_buff *skb)
{
	if (btf_sk_may_follow(sk))
		on_segment((__u64)sk, skb);
	return 0;
}

#define ETH_P_IP_   0x0800
#define ETH_P_IPV6_ 0x86DD

/*
 * recv=ingress: a segment reaching a socket of an attached cgroup, at
 * tcp_filter(), before TCP takes it and outside the socket's lock: the
 * sockops callbacks can run on another CPU meanwhile. So this only raises
 * seen_end and moves the phase, and every field it reads is written before
 * the phase that makes it read (turn_ns, seen_end, then phase); bytes are
 * counted by the callbacks (by_received). A segment with data past rcv_nxt
 * is the first byte of an answer (client: timed unless TCP took data since
 * the turn was asked that this hook never saw) or of a request (server).
 */
SEC("cgroup_skb/ingress")
int apilat_recv_ingress(struct __sk_buff *skb)
{
	struct bpf_tcp_sock *tp;
	struct apilat_conn *c;
	struct bpf_sock *s;
	__u32 off, end, len, nxt, phase;
	bool unseen;
	__u8 b[16];
	__u64 sk;

	/* remote_port: network order in the upper half on little-endian; local_port: host order */
	if (!ports_in_set(bpf_ntohl(skb->remote_port), skb->local_port))
		return 1;
	s = skb->sk;
	if (!s)
		return 1;
	sk = (__u64)s;
	c = bpf_map_lookup_elem(&apilat_conns, &sk);
	if (!c)
		return 1;
	tp = bpf_tcp_sock(s);
	if (!tp)
		return 1;
	/* the skb starts at its IP header here */
	if (skb->protocol == bpf_htons(ETH_P_IP_)) {
		if (bpf_skb_load_bytes(skb, 0, b, 1))
			return 1;
		off = (b[0] & 0xf) * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6_)) {
		if (bpf_skb_load_bytes(skb, 6, b, 1) || b[0] != IPPROTO_TCP_)
			return 1; /* extension headers: no timing */
		off = 40;
	} else {
		return 1;
	}
	if (off > 60 || bpf_skb_load_bytes(skb, off, b, 16))
		return 1;
	off += (b[12] >> 4) * 4;
	len = skb->len;
	if (len <= off)
		return 1; /* no data: an ACK, a window update */
	/* the phase first: its writers store seen_end before it */
	phase = c->phase;
	store_order();
	nxt = tp->rcv_nxt;
	end = bpf_ntohl(*(__u32 *)&b[4]) + (len - off);
	/*
	 * data before rcv_nxt, or before what this hook saw already (a segment it
	 * saw may still wait in the backlog): a retransmit, a duplicate
	 */
	if ((__s32)(end - nxt) <= 0 || (c->seen_set && (__s32)(end - c->seen_end) <= 0))
		return 1;
	/* TCP took data since the turn was asked that this hook never saw: its first byte is unknown */
	unseen = c->seen_set && (__s32)(nxt - c->seen_end) > 0;
	if (c->seen_set)
		c->seen_end = end;
	store_order();
	if (c->server) {
		if (phase != APILAT_SENT)
			turn_ask(c, counts_of(c)); /* the counters looked up only when a turn opens */
		return 1;
	}
	if (phase != APILAT_SENT)
		return 1;
	if (!unseen) {
		trace_first_byte(c, sk);
		observe(c, c->turns > handshake_turns ? APILAT_HIST_RESPONSE : APILAT_HIST_HANDSHAKE,
			bpf_ktime_get_ns() - c->turn_ns);
	}
	c->phase = APILAT_RECEIVING;
	return 1;
}

/* Before tcp_retransmit_skb got its own class it was DEFINE_EVENT(tcp_event_sk_skb, ...). */
struct trace_event_raw_tcp_event_sk_skb___apilat {
	const void *skbaddr;
	const void *skaddr;
} __attribute__((preserve_access_index));

/* Through a helper: two direct loads of two layouts become one ctx pointer computation the verifier refuses. */
#define CTX_READ(dst, c, field) bpf_core_read(&(dst), sizeof(dst), &(c)->field)

/*
 * A retransmitted skb of socket sk: as many segments as tcp_skb_pcount()
 * (what TcpRetransSegs and tcpi_total_retrans add).
 */
static __always_inline void on_retransmit(__u64 sk, const struct sk_buff *skb)
{
	struct apilat_counts *n;
	struct apilat_conn *c;
	struct tcp_skb_cb *cb;
	__u16 segs;

	c = bpf_map_lookup_elem(&apilat_conns, &sk);
	/* a connection send=sockops follows: its RETRANS_CB counts, the kernel's own way */
	if (!c || c->by_acks)
		return;
	cb = (struct tcp_skb_cb *)((void *)skb + bpf_core_field_offset(struct sk_buff, cb));
	segs = BPF_CORE_READ(cb, tcp_gso_segs);
	n = counts_of(c);
	if (n)
		__sync_fetch_and_add(&n->retransmits, segs ? segs : 1);
}

/* After 6.12 it also fires for a retransmit that failed (err != 0), which was not sent: not counted. */
SEC("tracepoint/tcp/tcp_retransmit_skb")
int apilat_retransmit(void *ctx)
{
	const struct sk_buff *skb;
	__u64 sk;

	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb)) {
		struct trace_event_raw_tcp_retransmit_skb *t = ctx;

		if (bpf_core_field_exists(t->err) && t->err)
			return 0;
		CTX_READ(sk, t, skaddr);
		CTX_READ(skb, t, skbaddr);
	} else {
		struct trace_event_raw_tcp_event_sk_skb___apilat *t = ctx;

		CTX_READ(sk, t, skaddr);
		CTX_READ(skb, t, skbaddr);
	}
	on_retransmit(sk, skb);
	return 0;
}

/*
 * Raw, not skipped while another classic tracepoint or kprobe program runs on
 * the CPU (the retransmit timer's softirq may interrupt one). Two programs
 * for the two prototypes: a tp_btf program cannot read an argument its hook
 * does not have; the planner picks the one that fits.
 */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(apilat_retransmit_btf, const struct sock *sk, const struct sk_buff *skb, int err)
{
	if (!err)
		on_retransmit((__u64)sk, skb);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(apilat_retransmit_btf_old, const struct sock *sk, const struct sk_buff *skb)
{
	on_retransmit((__u64)sk, skb);
	return 0;
}

/*
 * ---- adoption: connections open before ksight started (probe point adopt) ----
 * The tracepoints above see a connection from its connect or accept on; one
 * already open when they attached has no apilat_conns entry, and its turns
 * would be missed until it reconnects (client-go keeps one for hours). User
 * space runs two iterators once the agent is ready and whenever an endpoint
 * enters the set:
 *   iter/task_file: every open file of every process; a socket that is an
 *     established TCP connection to (client) or on (server side) an endpoint
 *     gets its network namespace and owner's pid in apilat_owners, and a
 *     client's its owner's comm and cgroup (the task's, as
 *     bpf_get_current_cgroup_id() gives them at a connect);
 *   iter/tcp: every TCP socket of the namespace the iterator was made in
 *     (user space makes one in its own and in each namespace the first pass
 *     found: a pod's connections are in the pod's), locked; an established
 *     one to (client) or on (server side) an endpoint that has no entry asks
 *     for the sockops callbacks the attached variants need (bpf_setsockopt's
 *     TCP_BPF_SOCK_OPS_CB_FLAGS, 6.12+; refused before: not adopted) and gets
 *     one, with the byte counts it has now as its baseline and its TLS
 *     handshake taken as done (turns = handshake_turns: its next turn is a
 *     request). One that has an entry but became established between the
 *     attaches of sock_state and of the sockops programs asks for them now.
 * A turn already open at adoption has no start: its answer makes no sample.
 * A connection no process has a file of (a child still in its listener's
 * queue, a kernel socket, one in flight over a unix socket) has no comm; its
 * cgroup is the socket's own. The comm is the process's (task_file visits a
 * file table once, with its thread-group leader), a connect's the thread's.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct apilat_adopt_ctl);
} apilat_adopt_ctl SEC(".maps");

/* emptied by user space after each run */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, APILAT_MAX_CONNS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);  /* the struct sock's address */
	__type(value, struct apilat_owner);
} apilat_owners SEC(".maps");

#define SOL_TCP_ 6

/*
 * An established TCP socket with an endpoint as its remote address (a
 * client's connection) or, failing that, its local one (server side): 1
 * client, 2 server, 0 neither.
 */
static __always_inline int adoptable(const struct sock *sk)
{
	struct apilat_endpoint ep = {};
	__u16 family;
	__u32 a;

	if (BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_ESTABLISHED_ ||
	    BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP_)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET_ && family != AF_INET6_)
		return 0;
	if (family == AF_INET6_) {
		BPF_CORE_READ_INTO(&ep.addr, sk, __sk_common.skc_v6_daddr);
	} else {
		a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		ep.addr[10] = 0xff;
		ep.addr[11] = 0xff;
		__builtin_memcpy(&ep.addr[12], &a, 4);
	}
	ep.port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (bpf_map_lookup_elem(&apilat_endpoints, &ep))
		return 1;
	if (family == AF_INET6_) {
		BPF_CORE_READ_INTO(&ep.addr, sk, __sk_common.skc_v6_rcv_saddr);
	} else {
		a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(&ep.addr[12], &a, 4);
	}
	ep.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	return bpf_map_lookup_elem(&apilat_endpoints, &ep) ? 2 : 0;
}

SEC("iter/task_file")
int apilat_owners_of(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct apilat_owner o = {};
	struct socket *sock;
	struct sock *sk;
	__u64 key;
	int side;

	if (!task || !file)
		return 0;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	side = sk ? adoptable(sk) : 0;
	if (!side)
		return 0;
	key = (__u64)sk;
	o.pid = BPF_CORE_READ(task, tgid);
	o.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (side == 1) {
		o.client.cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
		BPF_CORE_READ_STR_INTO(&o.client.comm, task, comm);
	}
	/* the first holder found: a socket passed on keeps the comm of the one listed first */
	bpf_map_update_elem(&apilat_owners, &key, &o, BPF_NOEXIST);
	return 0;
}

/* Ask for the callbacks the attached sockops variants need (other programs' flags kept): 0 or the refusal. */
static __always_inline long ask_callbacks(struct tcp_sock *tp, __u32 cb_flags)
{
	int flags = BPF_CORE_READ(tp, bpf_sock_ops_cb_flags) | cb_flags;

	return bpf_setsockopt(tp, SOL_TCP_, TCP_BPF_SOCK_OPS_CB_FLAGS, &flags, sizeof(flags));
}

/*
 * An entry made by sock_state for a connection that became established
 * while apilat's programs were being attached, before its sockops ones: it
 * never asked for the callbacks, and no send of it was seen. It does now; its
 * sent bytes count from here, and a connection that has sent data (past the
 * SYN) is past its handshake. A kernel that refuses: the entry goes (half of
 * a connection's turns would be no measure).
 */
static __always_inline void complete(struct apilat_conn *c, struct tcp_sock *tp, struct apilat_adopt_ctl *ctl,
				     __u64 key)
{
	if (c->established)
		seen_start(c, BPF_CORE_READ(tp, rcv_nxt));
	if (!c->established || !ctl->cb_flags ||
	    (BPF_CORE_READ(tp, bpf_sock_ops_cb_flags) & ctl->cb_flags) == ctl->cb_flags)
		return;
	if (ask_callbacks(tp, ctl->cb_flags)) {
		bpf_map_delete_elem(&apilat_conns, &key);
		__sync_fetch_and_add(&ctl->complete_refused, 1);
		return;
	}
	if (ctl->by_acks && !c->by_acks) {
		c->acked = BPF_CORE_READ(tp, bytes_acked);
		c->retrans = BPF_CORE_READ(tp, total_retrans);
		c->by_acks = 1;
		if (c->turns < handshake_turns && c->acked > 1)
			c->turns = handshake_turns;
	}
	__sync_fetch_and_add(&ctl->completed, 1);
}

SEC("iter/tcp")
int apilat_adopt(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct apilat_conn conn = { .phase = APILAT_IDLE, .established = 1, .turns = handshake_turns };
	struct apilat_trace_turn t = {};
	struct apilat_trace_event a = {};
	struct apilat_adopt_ctl *ctl;
	struct apilat_owner *o;
	struct apilat_conn *c;
	struct tcp_sock *tp;
	struct sock *sk;
	__u32 zero = 0;
	__u64 key;
	int side, old_flags;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	ctl = bpf_map_lookup_elem(&apilat_adopt_ctl, &zero);
	if (!tp || !ctl)
		return 0;
	sk = (struct sock *)tp;
	key = (__u64)sk;
	side = adoptable(sk);
	if (!side)
		return 0; /* not an API-server connection */
	c = bpf_map_lookup_elem(&apilat_conns, &key);
	if (c) {
		complete(c, tp, ctl, key); /* followed since its connect */
		return 0;
	}
	conn.server = side == 2;
	conn.by_acks = ctl->by_acks;
	conn.acked = BPF_CORE_READ(tp, bytes_acked);
	conn.received = BPF_CORE_READ(tp, bytes_received);
	seen_start(&conn, BPF_CORE_READ(tp, rcv_nxt));
	conn.by_received = rx_asks();
	conn.retrans = BPF_CORE_READ(tp, total_retrans);
	if (!conn.server) {
		o = bpf_map_lookup_elem(&apilat_owners, &key);
		if (o) {
			conn.client = o->client;
			t.pid = o->pid;
		} else {
			conn.client.cgroup_id = sk_cgroup_id(sk);
		}
	}
	/*
	 * The callbacks first: the send and recv length tracepoints and the
	 * tcp_sendmsg kprobe run outside the socket's lock and would count into
	 * an entry a refusal then removed. Without the entry the socket would
	 * pay its callbacks for nothing: its old flags back.
	 */
	old_flags = BPF_CORE_READ(tp, bpf_sock_ops_cb_flags);
	if (ctl->cb_flags && ask_callbacks(tp, ctl->cb_flags)) {
		__sync_fetch_and_add(&ctl->refused, 1);
		return 0;
	}
	if (bpf_map_update_elem(&apilat_conns, &key, &conn, BPF_NOEXIST)) {
		if (ctl->cb_flags)
			bpf_setsockopt(tp, SOL_TCP_, TCP_BPF_SOCK_OPS_CB_FLAGS, &old_flags, sizeof(old_flags));
		return 0;
	}
	__sync_fetch_and_add(&ctl->adopted, 1);
	if (conn.by_received)
		rx_ask(key);
	if (trace_enabled && !conn.server) {
		trace_addrs(&a, key);
		__builtin_memcpy(t.saddr, a.saddr, sizeof(t.saddr));
		__builtin_memcpy(t.daddr, a.daddr, sizeof(t.daddr));
		t.sport = a.sport;
		t.dport = a.dport;
		t.family = a.family;
		bpf_map_update_elem(&apilat_trace_turns, &key, &t, BPF_ANY);
	}
	return 0;
}
