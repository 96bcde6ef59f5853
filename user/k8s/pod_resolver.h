/*
 * Which pod a kernel-side key belongs to: a cgroup id (what
 * bpf_get_current_cgroup_id() returns) or a network namespace inode (what
 * netdrop and apilat key their maps by).
 *
 * cgroup id -> cgroup path: the id is the kernfs node id of a directory in
 * the cgroup v2 hierarchy (its inode number on 64-bit), wherever that is
 * mounted: /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on a hybrid
 * one. open_by_handle_at() turns it into the directory in one call (needs
 * CAP_DAC_READ_SEARCH); without it, a bounded walk of the hierarchy.
 *
 * netns inode -> pod: a scan of PROC/<pid>/ns/net finds a process in that
 * namespace, and its PROC/<pid>/cgroup the pod (any hierarchy whose path
 * names one). The namespace of PROC/1 is the host's (ours when PID 1 is
 * out of reach). One scan maps every namespace at once.
 *
 * Then the path -> pod UID and container ID by cgroup_identity_parse().
 * Results are cached for ttl_s; a miss scans (or walks) again at most once
 * per rescan_ms, so the work per call is bounded: a lookup, or one scan of
 * at most max_scan entries. Processes that exit mid-scan are skipped.
 * Thread-safe: one lock around the cache and the scans.
 */
#ifndef KSIGHT_POD_RESOLVER_H
#define KSIGHT_POD_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup_identity.h"

#define POD_RESOLVER_TTL_S		30
#define POD_RESOLVER_RESCAN_MS		1000
#define POD_RESOLVER_MAX_SCAN		65536
#define POD_RESOLVER_PATH_MAX		512

struct pod_resolver_config {
	const char *proc_root;		/* NULL: "/proc" ("/host/proc" in a container with hostPID mounts) */
	const char *cgroup_root;	/* NULL: the cgroup2 mount, /sys/fs/cgroup or /sys/fs/cgroup/unified */
	int ttl_s;			/* 0: POD_RESOLVER_TTL_S */
	int rescan_ms;			/* 0: POD_RESOLVER_RESCAN_MS; < 0: every miss */
	unsigned int max_scan;		/* 0: POD_RESOLVER_MAX_SCAN */
	bool no_handles;		/* walk, never open_by_handle_at() (tests) */
};

struct pod_ref {
	bool host;			/* the host's netns, or the root cgroup */
	struct cgroup_identity id;	/* id.pod_uid "" when not in a pod */
	char cgroup[POD_RESOLVER_PATH_MAX];	/* relative to the hierarchy root, "/..." */
};

struct pod_resolver;

/*
 * Returns 0 and *out, -ENOMEM, -ENAMETOOLONG (proc_root over 255 bytes). A
 * missing cgroup2 mount only fails cgroup lookups.
 */
int pod_resolver_new(const struct pod_resolver_config *cfg, struct pod_resolver **out);
void pod_resolver_free(struct pod_resolver *r);	/* NULL-safe */

/*
 * 0 and *out (a pod or not: out->id.pod_uid says), -ENOENT when no such
 * cgroup (no process in that netns) is found now, -EAGAIN when it was not found
 * and a rescan is not due yet, -ENODEV without a cgroup2 mount, -EINVAL.
 */
int pod_resolver_cgroup(struct pod_resolver *r, uint64_t cgroup_id, struct pod_ref *out);
int pod_resolver_netns(struct pod_resolver *r, uint64_t netns_ino, struct pod_ref *out);

/*
 * The pure part: from the text of /proc/PID/cgroup ("ID:CONTROLLERS:PATH"
 * lines), the path of the first hierarchy that names a pod (0, identity in
 * *id), else the v2 ("0::") path or the first one (-ENOENT, *id zeroed).
 * -EINVAL when no line parses.
 */
int pod_resolver_parse_proc_cgroup(const char *text, size_t len, char *path, size_t cap,
				   struct cgroup_identity *id);

#endif
