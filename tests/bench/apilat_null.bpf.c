// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * apilat.py --null: a program that returns at once on the one hook every
 * received TCP segment of the machine goes through with apilat's default
 * variants (recv=segment; send and rtt are sockops callbacks only API-server
 * connections ask for). What it costs is the attachment's own, the floor
 * under any program there.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/tcp_probe")
int BPF_PROG(null_segment, struct sock *sk, const struct sk_buff *skb)
{
	return 0;
}
