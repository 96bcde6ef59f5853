// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * apilat.py --null: a program that returns at once on the hook every
 * received TCP segment of the machine goes through with recv=segment
 * (apilat's fallback; the default, recv=ingress, is attached to the cgroups
 * of API-server connections only). What it costs is the attachment's own,
 * the floor under any program there.
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
