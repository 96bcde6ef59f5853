/* The oom signal's user half: decoding and classification, exposed for tests. */
#ifndef KSIGHT_OOM_SIGNAL_H
#define KSIGHT_OOM_SIGNAL_H

#include <stddef.h>
#include <linux/types.h>

#include "ksyms.h"

/* Kernel functions whose presence on the kill's call chain tells the constraint. */
enum oom_ksym {
	OOM_KSYM_MEMCG = 0, /* mem_cgroup_out_of_memory */
	OOM_KSYM_GLOBAL,    /* out_of_memory */
	OOM_KSYM_NR,
};

/*
 * memcg if mem_cgroup_out_of_memory is on the stack, global if only
 * out_of_memory is, unknown otherwise (no stack, or symbols hidden).
 * Returns an enum ksight_oom_constraint.
 */
int oom_classify_stack(const __u64 *stack, int frames, const struct ksym_range ranges[OOM_KSYM_NR]);

const char *oom_constraint_name(int constraint); /* "memcg", "global", "unknown" */

/*
 * An rss field of a record, in bytes. A counter read below zero (before 6.2
 * the atomics that per-task caches feed late; since, an approximate
 * percpu_counter sum) wraps to ~1.8e19 once multiplied by the page size;
 * the kernel reports such a counter as 0 (get_mm_counter), and so do we.
 */
__u64 oom_rss_bytes(__u64 raw);

/*
 * The Kubernetes Event reason for an OOM kill ksight saw. Distinct from
 * kubelet's OOMKilled/SystemOOM and node-problem-detector's OOMKilling, so
 * users can tell who said what: this one names the process, not the container.
 */
#define OOM_EVENT_REASON "ProcessOOMKilled"

struct oom_event;
struct event_common;

/* The Event message: what was killed, where, why, how big. */
void oom_event_message(const struct oom_event *e, const struct event_common *ev, int constraint,
		       char *out, size_t outlen);

#endif
