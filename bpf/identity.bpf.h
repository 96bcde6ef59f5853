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

/* Read up to KSIGHT_CGROUP_DEPTH names from @kn towards the root, leaf first. */
static __always_inline void capture_names(struct kernfs_node *kn, struct ksight_cgroup *out)
{
	const char *name;
	int i;

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
}

/*
 * Fill @out with @cgrp's kernfs id and up to KSIGHT_CGROUP_DEPTH names. A
 * deeper path keeps its root end (see KSIGHT_CGROUP_LEAF_ELIDED): the pod
 * and container are near the root, and the leaf end is what a container
 * with a writable cgroupfs can shape as it likes, a fake pod's layout
 * included. Only beyond KSIGHT_CGROUP_MAX_LEVEL are the leaf-most names
 * kept, marked so that they are never read as a pod.
 */
static __always_inline void capture_cgroup(struct cgroup *cgrp, struct ksight_cgroup *out)
{
	struct kernfs_node *kn = BPF_CORE_READ(cgrp, kn);
	int level = BPF_CORE_READ(cgrp, level);
	int skip, i;

	out->id = BPF_CORE_READ(kn, id);
	out->depth = 0;
	out->truncated = KSIGHT_CGROUP_COMPLETE;
	if (level > KSIGHT_CGROUP_MAX_LEVEL) {
		capture_names(kn, out);
		out->truncated = KSIGHT_CGROUP_ROOT_ELIDED;
		return;
	}
	skip = level - KSIGHT_CGROUP_DEPTH;
	/* level is the number of names below the root: skip all but the top ones */
	for (i = 0; i < KSIGHT_CGROUP_MAX_LEVEL - KSIGHT_CGROUP_DEPTH && i < skip; i++)
		kn = kernfs_parent(kn);
	capture_names(kn, out);
	if (skip > 0)
		out->truncated = KSIGHT_CGROUP_LEAF_ELIDED;
}

#endif
