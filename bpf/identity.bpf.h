/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Capture who a task is while it still exists: its cgroup's id and the names
 * on the path to it. A killed process is gone by the time user space looks,
 * so this must happen in the kernel at event time.
 */
#ifndef KSIGHT_IDENTITY_BPF_H
#define KSIGHT_IDENTITY_BPF_H

#include "common.h"

/* Before kernfs parents became RCU-protected (6.14/6.15) the field was "parent". */
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kernfs_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

/* The css of a cgroup controller (memory, ...) of a task, or NULL. */
static __always_inline struct cgroup_subsys_state *task_css(struct task_struct *task, int subsys_id)
{
	return BPF_CORE_READ(task, cgroups, subsys[subsys_id]);
}

/* Fill @out with @cgrp's kernfs id and up to KSIGHT_CGROUP_DEPTH names, leaf first. */
static __always_inline void capture_cgroup(struct cgroup *cgrp, struct ksight_cgroup *out)
{
	struct kernfs_node *kn = BPF_CORE_READ(cgrp, kn);
	const char *name;
	int i;

	out->id = BPF_CORE_READ(kn, id);
	out->depth = 0;
	out->truncated = 0;
	for (i = 0; i < KSIGHT_CGROUP_DEPTH; i++) {
		/* the root's kernfs node has no parent: stop before its empty name */
		struct kernfs_node *parent = kernfs_parent(kn);

		if (!kn || !parent)
			return;
		name = BPF_CORE_READ(kn, name);
		bpf_probe_read_kernel_str(out->names[i], KSIGHT_CGROUP_NAME_LEN, name);
		out->depth = i + 1;
		kn = parent;
	}
	if (kn && kernfs_parent(kn))
		out->truncated = 1;
}

#endif
