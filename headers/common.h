/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel/user ABI shared by every signal: the identity of the task an
 * event is about, captured in the kernel at event time, and the layout of the
 * per-signal ring-buffer accounting.
 *
 * Plain C with fixed-width types only: included by bpf/ (after vmlinux.h) and
 * by user/ (after <linux/types.h>).
 */
#ifndef KSIGHT_COMMON_H
#define KSIGHT_COMMON_H

#define KSIGHT_COMM_LEN 16

/*
 * A cgroup path is captured as its last KSIGHT_CGROUP_DEPTH component names,
 * leaf first. Kubelet's deepest layout is
 *   kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope
 * (4 levels, 85 bytes at most per name), so 8 levels of 96 bytes hold it even
 * under a nesting prefix (kind, systemd-nspawn, ...).
 */
#define KSIGHT_CGROUP_DEPTH 8
#define KSIGHT_CGROUP_NAME_LEN 96

/* Kernel stack frames kept with rare events, to tell how they came about. */
#define KSIGHT_STACK_DEPTH 32

struct ksight_cgroup {
	__u64 id;       /* kernfs node id: what bpf_get_current_cgroup_id() returns */
	__u32 depth;    /* names filled in names[0..depth-1] */
	__u32 truncated;/* 1 when the path is deeper than KSIGHT_CGROUP_DEPTH */
	char names[KSIGHT_CGROUP_DEPTH][KSIGHT_CGROUP_NAME_LEN]; /* leaf first */
};

/* Index of the per-CPU ring-buffer accounting array every signal object has. */
enum ksight_ringbuf_stat {
	KSIGHT_RB_SUBMITTED = 0, /* records handed to user space */
	KSIGHT_RB_LOST = 1,      /* reserve failed: ring buffer full */
	KSIGHT_RB_SUPPRESSED = 2,/* not sent on purpose: the signal's rate limit */
	KSIGHT_RB_NR_STATS = 3,
};

#endif /* KSIGHT_COMMON_H */
