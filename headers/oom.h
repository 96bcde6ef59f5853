/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The oom signal's kernel/user ABI: one record per OOM-killed task. */
#ifndef KSIGHT_OOM_H
#define KSIGHT_OOM_H

#include "common.h"

enum ksight_oom_constraint {
	OOM_CONSTRAINT_UNKNOWN = 0, /* this kernel/variant cannot tell */
	OOM_CONSTRAINT_MEMCG = 1,   /* a memory cgroup hit its limit */
	OOM_CONSTRAINT_GLOBAL = 2,  /* the whole system ran out of memory */
};

/* Which program produced the record (the probe variant that is attached). */
enum ksight_oom_source {
	OOM_SOURCE_TP_BTF = 1,     /* tp_btf/mark_victim, the task is passed (6.9+) */
	OOM_SOURCE_TRACEPOINT = 2, /* tracepoint/oom/mark_victim + sched_process_exit */
	OOM_SOURCE_KPROBE = 3,     /* kprobe/oom_kill_process */
};

/*
 * tracepoint variant: OOM victims that can wait for their exit at once (the
 * oom_pending map; one struct oom_event each). A memory.oom.group kill marks
 * every process of the group in one go; beyond this many, records are lost
 * and counted (KSIGHT_RB_LOST).
 */
#define OOM_PENDING_MAX 1024

/* Field flags: what the variant could fill in. */
#define OOM_HAS_RSS       (1u << 0) /* total_vm and the three rss fields */
#define OOM_HAS_UID       (1u << 1)
#define OOM_HAS_SCORE_ADJ (1u << 2)
#define OOM_HAS_MEMCG     (1u << 3) /* memcg_limit_bytes (0: unlimited) */
#define OOM_HAS_CGROUP    (1u << 4)
#define OOM_HAS_USAGE     (1u << 5) /* memcg_usage_bytes read at kill time */

struct oom_event {
	__u64 boot_ns;        /* bpf_ktime_get_boot_ns() at kill time */
	__u32 pid;            /* victim thread group id */
	__u32 tid;            /* victim thread the kernel marked */
	__u32 uid;
	__u32 trigger_pid;    /* the task whose allocation ran into the OOM */
	__u64 total_vm_bytes;
	__u64 anon_rss_bytes;
	__u64 file_rss_bytes;
	__u64 shmem_rss_bytes;
	__u64 memcg_limit_bytes; /* tightest limit on the victim's memcg path; 0: none */
	__u64 memcg_usage_bytes; /* usage of the memcg that has that limit */
	__s16 oom_score_adj;
	__u8 constraint;      /* enum ksight_oom_constraint, as far as the kernel side knows */
	__u8 source;          /* enum ksight_oom_source */
	__u32 flags;          /* OOM_HAS_* */
	__s32 stack_size;     /* bytes of kstack filled, or -errno */
	char comm[KSIGHT_COMM_LEN];
	char trigger_comm[KSIGHT_COMM_LEN];
	__u64 kstack[KSIGHT_STACK_DEPTH];
	struct ksight_cgroup cgroup; /* the victim's memory cgroup */
};

#endif /* KSIGHT_OOM_H */
