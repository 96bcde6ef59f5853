/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The apilat signal's kernel/user ABI: the API-server endpoint set, the
 * per-connection state, the per-client histograms and counters, and the
 * log-linear bucket math both sides share.
 *
 * Buckets. A latency in nanoseconds v > 0 falls in the bucket whose upper
 * bound is the smallest bound >= v (Prometheus' `le`). Bounds are
 * log-linear: each power of two [2^e, 2^(e+1)] is cut into
 * APILAT_SUB_BUCKETS equal parts, so bound k of octave e is
 * (APILAT_SUB_BUCKETS + k + 1) * 2^e / APILAT_SUB_BUCKETS and consecutive
 * bounds are at most (S+1)/S = x1.125 apart: a quantile interpolated linearly
 * inside a bucket (histogram_quantile) is off by less than 12.5%. The finite
 * bounds run from just above 2^lo_exp to exactly 2^hi_exp; the first bucket
 * also takes every v <= its bound, the last (+Inf) every v > 2^hi_exp.
 */
#ifndef KSIGHT_APILAT_H
#define KSIGHT_APILAT_H

#include "common.h"

#define APILAT_SUB_BITS 3
#define APILAT_SUB_BUCKETS (1 << APILAT_SUB_BITS)
#define APILAT_MAX_OCTAVES 24
/* finite buckets at most, +1 for +Inf */
#define APILAT_MAX_BUCKETS (APILAT_MAX_OCTAVES * APILAT_SUB_BUCKETS + 1)
/* default range: 2^13 ns (8.2 us) to 2^35 ns (34.4 s), 176 finite buckets */
#define APILAT_DEFAULT_LO_EXP 13
#define APILAT_DEFAULT_HI_EXP 35
#define APILAT_MIN_EXP APILAT_SUB_BITS /* below it an octave has fewer than S integers */

/*
 * Index of the highest set bit of v (v > 0), without loops or branches: every
 * bit below the highest set, then their number (a SWAR popcount) less one.
 * Branches would each fork the verifier's state and the bucket index is used
 * as a map offset, so no two forks prune: six of them made every program that
 * observes a latency 64 paths long (10,000 instructions verified for 250).
 */
static inline __u32 apilat_fls64(__u64 v)
{
	v |= v >> 1;
	v |= v >> 2;
	v |= v >> 4;
	v |= v >> 8;
	v |= v >> 16;
	v |= v >> 32;
	v -= (v >> 1) & 0x5555555555555555ULL;
	v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
	v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (__u32)((v * 0x0101010101010101ULL) >> 56) - 1;
}

/* Number of finite buckets of the range [lo_exp, hi_exp). */
static inline __u32 apilat_n_finite(__u32 lo_exp, __u32 hi_exp)
{
	return (hi_exp - lo_exp) * APILAT_SUB_BUCKETS;
}

/*
 * The bucket of v ns: 0 .. n_finite-1, or n_finite for +Inf. Bucket j's
 * half-open range [lower, upper) holds v - 1, so that v == upper lands in j.
 */
static inline __u32 apilat_bucket(__u64 v, __u32 lo_exp, __u32 hi_exp)
{
	__u64 u = v ? v - 1 : 0;
	__u32 e, sub;

	if (u < (1ULL << lo_exp))
		return 0;
	e = apilat_fls64(u);
	if (e >= hi_exp)
		return apilat_n_finite(lo_exp, hi_exp);
	sub = (__u32)(u >> (e - APILAT_SUB_BITS)) & (APILAT_SUB_BUCKETS - 1);
	return (e - lo_exp) * APILAT_SUB_BUCKETS + sub;
}

/* The upper bound of finite bucket j, in ns. */
static inline __u64 apilat_bucket_upper_ns(__u32 j, __u32 lo_exp)
{
	__u32 e = lo_exp + j / APILAT_SUB_BUCKETS, sub = j % APILAT_SUB_BUCKETS;

	return (__u64)(APILAT_SUB_BUCKETS + sub + 1) << (e - APILAT_SUB_BITS);
}

/* ---- endpoints and connections ---- */

/* An API-server endpoint: IPv6 address (IPv4 as ::ffff:a.b.c.d, as the tracepoint gives it), port host order. */
struct apilat_endpoint {
	__u8 addr[16];
	__u16 port;
	__u16 pad;
};
#define APILAT_MAX_ENDPOINTS 64

/*
 * The ports of the endpoint set, one bit each (word port / 64, bit port % 64),
 * in the BPF side's .bss: the hot path's first test, a plain load, before any
 * map lookup. A socket neither of whose ports has its bit is not followed.
 */
#define APILAT_PORT_WORDS (65536 / 64)

/*
 * A turn is opened by the side that asks (a client's send, a server's
 * receive) and closed by the first data of the side that answers.
 */
enum apilat_phase {
	APILAT_IDLE = 0,      /* nothing asked since the last answer */
	APILAT_SENT,          /* a turn is open: waiting for the first byte of the answer */
	APILAT_RECEIVING,     /* the answer is coming */
};

/* Who a connection belongs to: captured when it sends its SYN (process context). */
struct apilat_client {
	__u64 cgroup_id;
	char comm[KSIGHT_COMM_LEN];
};

/*
 * A connection to the API server (client side: its client as captured at
 * connect) or, on a node that serves it, one accepted by a listener on an
 * API-server address (server side: client zeroed, server 1).
 */
struct apilat_conn {
	struct apilat_client client;
	__u64 syn_ns;
	__u64 turn_ns;        /* when the open turn was asked */
	__u64 rtt_ns;         /* when the last RTT sample was taken (0: none yet) */
	__u32 turns;          /* turns started so far */
	__u8 phase;           /* enum apilat_phase */
	__u8 established;
	__u8 server;          /* accepted here (server side), not connected from here */
	__u8 by_acks;         /* sent bytes counted from tcp_sock.bytes_acked (the sockops send variant) */
	__u8 by_received;     /* received bytes counted from tcp_sock.bytes_received (recv=segment) */
	/*
	 * send=sockops: the last data segment transmitted moved the turn (asked
	 * or answered it); settled at the connection's next event, undone if it
	 * turns out to be a retransmit (RETRANS_CB with snd_nxt unmoved)
	 */
	__u8 tx_pending;
	__u8 phase_before;    /* the phase that segment found (client) */
	__u8 request_due;     /* its turn is a request: counted when settled */
	__u8 answer_due;      /* it answered the open turn (server): observed when settled */
	__u8 answer_kind;     /* into which histogram (enum apilat_hist_kind), decided when it answered */
	__u8 seen_set;        /* seen_end is started (at the established callback, or adoption) */
	__u32 open_nxt;       /* snd_nxt when it went */
	__u32 retrans;        /* send=sockops: tcp_sock.total_retrans when last counted */
	/*
	 * recv=ingress and segment: the end (sequence number) of the data the
	 * receive hook saw, caught up to rcv_nxt when a turn is asked (client)
	 * or answered (server). rcv_nxt past it at a send: TCP took data the hook
	 * never saw (recv=ingress before its cgroup's program was attached), and
	 * the turn it answered ends there, counted, with no sample.
	 */
	__u32 seen_end;
	__u64 answer_dur_ns;  /* how long after the request it answered (server) */
	__u64 acked;          /* bytes_acked when last counted */
	__u64 received;       /* bytes_received when last counted */
};
#define APILAT_MAX_CONNS 16384

/*
 * recv=ingress: the cgroups whose sockets' received segments run
 * apilat_recv_ingress (a cgroup_skb program user space attaches to each
 * cgroup an API-server connection is made in or accepted in, and to none
 * other). The kernel side asks once per cgroup (APILAT_RX_ASKED, a record
 * in apilat_rx_asks); user space says what it did.
 */
enum apilat_rx_state {
	APILAT_RX_ASKED = 1,
	APILAT_RX_ATTACHED,
	APILAT_RX_REFUSED,    /* the attach failed, or the cap was reached: turns counted, not timed */
};
/* cgroups the hook is attached to at most; twice as many known (attached or refused) */
#define APILAT_MAX_RX_ATTACHED 1024
#define APILAT_MAX_RX_CGROUPS (2 * APILAT_MAX_RX_ATTACHED)
#define APILAT_RX_RING_BYTES 4096

struct apilat_rx_ask {
	__u64 cgroup_id;      /* the socket's cgroup v2 */
	__u64 ns;             /* CLOCK_MONOTONIC of the ask */
};

/*
 * The sockops callbacks an API-server connection asks for, per variant
 * (bpf/apilat.bpf.c): send=sockops each transmitted segment and retransmit,
 * rtt=sockops each RTT sample. The enumerators are the kernel's UAPI ones.
 */
#define APILAT_SEND_CB_FLAGS (BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG | BPF_SOCK_OPS_RETRANS_CB_FLAG)
#define APILAT_RTT_CB_FLAGS BPF_SOCK_OPS_RTT_CB_FLAG

/*
 * Adoption: the API-server connections that were open before ksight
 * started, found by two BPF iterators (bpf/apilat.bpf.c) when the agent is
 * ready and again whenever an endpoint enters the set. One entry of the
 * array apilat_adopt_ctl: user space sets what to ask for, the kernel side
 * counts what it did.
 */
struct apilat_adopt_ctl {
	__u32 cb_flags;       /* the sockops callbacks an adopted connection asks for (0: no sockops variant attached) */
	__u32 by_acks;        /* send=sockops is attached: sent bytes come from tcp_sock.bytes_acked */
	__u32 adopted;        /* connections adopted, all runs told */
	__u32 refused;        /* ones the kernel would not let ask for callbacks (before 6.12), all runs told */
	__u32 completed;      /* followed ones that had not asked for them (established while attaching) */
	__u32 complete_refused; /* such ones the kernel would not let ask: no longer followed */
};

/*
 * A socket found open by the task_file pass, for the tcp pass: who holds it
 * (a client's) and the network namespace it is in (the tcp iterator walks the
 * sockets of the namespace it was made in: user space makes one in each).
 */
struct apilat_owner {
	struct apilat_client client; /* zero on the server side */
	__u32 pid;
	__u32 netns;          /* the namespace's inode number */
};

/*
 * RTT samples: at most one per connection per this interval (tcp_probe fires
 * on every segment received; the smoothed RTT barely moves between them).
 */
#define APILAT_RTT_INTERVAL_NS 100000000ULL

enum apilat_hist_kind {
	APILAT_HIST_CONNECT = 0,
	APILAT_HIST_HANDSHAKE,
	APILAT_HIST_RESPONSE,
	APILAT_HIST_RTT,      /* smoothed RTT (tcp_probe's srtt) */
	APILAT_HIST_NR,
};

struct apilat_hist_key {
	struct apilat_client client; /* zero on the server side */
	__u32 kind;           /* enum apilat_hist_kind */
	__u32 server;         /* 1: the server side's histogram */
};

/* Per-bucket counts (not cumulative) and the sum, in ns. */
struct apilat_hist {
	__u64 sum_ns;
	__u64 buckets[APILAT_MAX_BUCKETS];
};
#define APILAT_MAX_HISTS 512

enum apilat_fail {
	APILAT_FAIL_REFUSED = 0,
	APILAT_FAIL_TIMEOUT,
	APILAT_FAIL_RESET,
	APILAT_FAIL_UNREACHABLE,
	APILAT_FAIL_OTHER,    /* closed before established for another reason (e.g. by the client) */
	APILAT_FAIL_NR,
};

/*
 * Totals per client, or of the server side (apilat_server_counts); all u64,
 * added atomically (the server side's per-CPU copies summed by
 * bpf_percpu_sum_u64). Bytes are those this end sent and
 * received; resets are established connections ended by a RST from the peer
 * (sk_err ECONNRESET, or EPIPE after the peer's FIN).
 */
struct apilat_counts {
	__u64 requests;
	__u64 sent_bytes;
	__u64 received_bytes;
	__u64 retransmits;    /* segments retransmitted by this end (tcp_retransmit_skb) */
	__u64 resets;
	__u64 failures[APILAT_FAIL_NR];
};
#define APILAT_COUNT_FIELDS (sizeof(struct apilat_counts) / sizeof(__u64))
/* the index of a field among the u64s, for the summed copy */
#define APILAT_COUNT_IDX(field) (__builtin_offsetof(struct apilat_counts, field) / sizeof(__u64))
#define APILAT_MAX_CLIENTS 1024

/* The first turns of a connection that are its TLS handshake, not requests (see bpf/apilat.bpf.c). */
#define APILAT_DEFAULT_HANDSHAKE_TURNS 1

/*
 * ---- the trace (ksight trace apilat) ----
 * One ring record per connect, connect failure, and handshake or response
 * turn at least trace_slow_ns long; nothing at all unless tracing (the BPF
 * side's trace_enabled). A turn's record leaves when the turn is over (the
 * connection's next send or its close), so that it carries the turn's bytes.
 */
enum apilat_trace_phase {
	APILAT_TRACE_CONNECT = 0,
	APILAT_TRACE_HANDSHAKE,
	APILAT_TRACE_RESPONSE,
	APILAT_TRACE_FAILURE,
	APILAT_TRACE_NR,
};

struct apilat_trace_event {
	struct apilat_client client;
	__u64 boot_ns;        /* CLOCK_BOOTTIME of it (a turn: its first response byte) */
	__u64 duration_ns;    /* connect: SYN -> established or failed; turn: first send -> first byte */
	__u64 sent_bytes;     /* a turn's */
	__u64 received_bytes;
	__u8 saddr[16];       /* family 4: the first 4 bytes */
	__u8 daddr[16];
	__u16 sport;          /* host order */
	__u16 dport;
	__u32 pid;            /* the process that connected (tgid); 0 if unknown */
	__u8 phase;           /* enum apilat_trace_phase */
	__u8 cause;           /* failures: enum apilat_fail */
	__u8 family;          /* 4 or 6 */
	__u8 pad[5];
};

/* A traced connection's current turn (BPF side only; in a map of its own). */
struct apilat_trace_turn {
	__u64 first_byte_boot_ns;
	__u64 duration_ns;
	__u64 sent_bytes;
	__u64 received_bytes;
	/* the addresses once established: at the close the socket no longer has its port */
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u32 pid;
	__u8 phase;           /* of the record to send at the turn's end */
	__u8 pending;         /* the turn was slow: send it when it ends */
	__u8 family;          /* 0 until the addresses are kept */
	__u8 pad[5];
};
/*
 * Only `ksight trace apilat` writes the ring, a record per slow turn (--slow):
 * 64 KiB holds 585 records of 112 bytes before user space reads any; beyond,
 * one is counted lost. User space maps it twice over: 128 KiB of RSS.
 */
#define APILAT_TRACE_RING_BYTES (64 * 1024)
/* --slow's default, in ns */
#define APILAT_DEFAULT_TRACE_SLOW_NS 100000000ULL

#endif /* KSIGHT_APILAT_H */
