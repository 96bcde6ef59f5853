/*
 * For the planner's unit tests: the sections of the BPF programs they plan
 * (as in bpf/netdrop.bpf.c and bpf/apilat.bpf.c), and a tracefs that has
 * every event.
 */
#ifndef KSIGHT_TEST_BPF_SECTIONS_H
#define KSIGHT_TEST_BPF_SECTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static inline const char *section_of(void *ctx, const char *program)
{
	static const char *const table[][2] = {
		{ "netdrop_kfree_skb_btf", "tp_btf/kfree_skb" },
		{ "netdrop_kfree_skb_tp", "tracepoint/skb/kfree_skb" },
		{ "netdrop_sk_skb_reason_drop_kp", "kprobe/sk_skb_reason_drop" },
		{ "netdrop_kfree_skb_reason_kp", "kprobe/kfree_skb_reason" },
		{ "netdrop_kfree_skb_kp", "kprobe/kfree_skb" },
		{ "netdrop_tcp_retransmit_tp", "tracepoint/tcp/tcp_retransmit_skb" },
		{ "netdrop_tcp_send_reset_tp", "tracepoint/tcp/tcp_send_reset" },
		{ "netdrop_tcp_receive_reset_tp", "tracepoint/tcp/tcp_receive_reset" },
		{ "netdrop_tcp_retransmit_btf", "tp_btf/tcp_retransmit_skb" },
		{ "netdrop_tcp_retransmit_btf_old", "tp_btf/tcp_retransmit_skb" },
		{ "netdrop_tcp_send_reset_btf", "tp_btf/tcp_send_reset" },
		{ "netdrop_tcp_receive_reset_btf", "tp_btf/tcp_receive_reset" },
		{ "apilat_retransmit_btf", "tp_btf/tcp_retransmit_skb" },
		{ "apilat_retransmit_btf_old", "tp_btf/tcp_retransmit_skb" },
		{ "apilat_retransmit", "tracepoint/tcp/tcp_retransmit_skb" },
		{ "apilat_sock_state_btf", "tp_btf/inet_sock_set_state" },
		{ "apilat_sock_state", "tracepoint/sock/inet_sock_set_state" },
	};
	size_t i;

	(void)ctx;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (!strcmp(table[i][0], program))
			return table[i][1];
	return NULL;
}

static inline bool every_tracepoint(void *ctx, const char *category, const char *name)
{
	(void)ctx;
	(void)category;
	(void)name;
	return true;
}

#endif
