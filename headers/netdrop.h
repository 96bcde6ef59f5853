/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The netdrop signal's kernel/user ABI: drop counters keyed by (reason,
 * protocol class, network namespace), TCP retransmit/reset counters keyed by
 * (kind, network namespace), and the sampled trace record.
 */
#ifndef KSIGHT_NETDROP_H
#define KSIGHT_NETDROP_H

#include "common.h"

/*
 * The protocol class of a dropped packet, decided in the kernel so that one
 * key is one label set: the IANA L4 protocols we name, else the L3 kind.
 */
enum netdrop_proto {
	NETDROP_PROTO_OTHER = 0,   /* not IP, and no L3 we name (or no header to read) */
	NETDROP_PROTO_TCP,
	NETDROP_PROTO_UDP,
	NETDROP_PROTO_ICMP,
	NETDROP_PROTO_ICMPV6,
	NETDROP_PROTO_SCTP,
	NETDROP_PROTO_IP_OTHER,    /* IPv4/IPv6 with another L4 protocol */
	NETDROP_PROTO_ARP,
	NETDROP_PROTO_VLAN,        /* 802.1Q/802.1ad not yet untagged */
	NETDROP_PROTO_LLDP,
	NETDROP_PROTO_NR,
};

/* The reason of a drop on kernels whose kfree_skb has none (before 5.17). */
#define NETDROP_REASON_NONE 0xffffffffu

struct netdrop_key {
	__u32 reason;   /* raw enum skb_drop_reason value (subsystem in the high 16 bits) */
	__u32 netns;    /* network namespace inode; 0 when neither device nor socket says */
	__u32 proto;    /* enum netdrop_proto */
};

enum netdrop_tcp_kind {
	NETDROP_TCP_RETRANSMIT = 0,
	NETDROP_TCP_RESET_SENT,
	NETDROP_TCP_RESET_RECEIVED,
	NETDROP_TCP_NR,
};

struct netdrop_tcp_key {
	__u32 kind;     /* enum netdrop_tcp_kind */
	__u32 netns;
};

/* Slots of the netdrop_stats per-CPU array: to count what the LRU maps evicted. */
enum netdrop_stat {
	NETDROP_STAT_DROP_KEYS = 0, /* keys created in netdrop_counts */
	NETDROP_STAT_TCP_KEYS = 1,  /* keys created in netdrop_tcp_counts */
	NETDROP_STAT_NR = 2,
};

/*
 * Entries of the counter maps: LRU, so a storm of namespaces evicts instead of
 * failing (counted). A busy node (110 pods, a few reasons and protocols each)
 * uses well under a thousand drop keys and a few hundred TCP ones. Per-CPU LRU
 * maps allocate every entry's per-CPU value when they are made: 16,384 of them
 * took 10 ms of start-up on 2 CPUs and 128 KiB of kernel memory per CPU.
 * KSIGHT_NETDROP_MAX_KEYS sets the first.
 */
#define NETDROP_MAX_KEYS 4096
#define NETDROP_MAX_TCP_KEYS 2048

#define NETDROP_IFNAMSIZ 16

/* Where the probe fired: which variant produced the record. */
enum netdrop_source {
	NETDROP_SOURCE_TP_BTF = 1,
	NETDROP_SOURCE_TRACEPOINT = 2,
	NETDROP_SOURCE_KPROBE = 3,
};

/* One sampled drop (ksight trace netdrop), let through by the per-CPU token bucket. */
struct netdrop_event {
	__u64 boot_ns;
	__u64 location;     /* kernel address of the code that freed the skb */
	__u32 reason;       /* as in netdrop_key */
	__u32 netns;
	__u32 ifindex;
	__u32 proto;        /* enum netdrop_proto */
	__u16 l3proto;      /* ethertype, host order (0x0800, 0x86dd, ...) */
	__u8 l4proto;       /* IP protocol number when IP */
	__u8 family;        /* 4, 6 or 0 */
	__u16 sport;        /* host order; 0 when the packet has no ports */
	__u16 dport;
	__u8 has_ports;
	__u8 source;        /* enum netdrop_source */
	__u8 pad[2];
	__u8 saddr[16];     /* IPv4: the first 4 bytes */
	__u8 daddr[16];
	char ifname[NETDROP_IFNAMSIZ];
};

#endif /* KSIGHT_NETDROP_H */
