// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * apilat.py --null: programs that return at once, on the three hooks every
 * TCP send, receive and received segment of the machine goes through with
 * apilat (its tp_btf variants). What they cost is the attachment's own, the
 * floor under any program there.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sock_send_length")
int BPF_PROG(null_send, struct sock *sk, int ret, int flags)
{
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(null_recv, struct sock *sk, int ret, int flags)
{
	return 0;
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(null_rtt, struct sock *sk, const struct sk_buff *skb)
{
	return 0;
}
