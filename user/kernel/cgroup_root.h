/*
 * The root of cgroup v2, where apilat's sockops programs attach: every
 * socket of the machine is created in a cgroup under it. In the DaemonSet it
 * is the host's /sys/fs/cgroup (a hostPath); a cgroup namespace's own mount
 * shows only the pod's subtree, which is not the root.
 */
#ifndef KSIGHT_CGROUP_ROOT_H
#define KSIGHT_CGROUP_ROOT_H

#include <stdbool.h>
#include <stddef.h>

/* Is directory `dir` a hierarchy's root? (the real test: no cgroup.events, which every other cgroup has) */
typedef bool (*cgroup_is_root_fn)(const char *dir);

/*
 * From mountinfo text: the mount point of the first cgroup2 mount that
 * is_root accepts, into out. 0, or -ENOENT (none: no cgroup2 mount, or only
 * namespaced views), -ENAMETOOLONG.
 */
int cgroup2_root_pick(const char *mountinfo, cgroup_is_root_fn is_root, char *out, size_t outlen);

/* The same for this process (/proc/self/mountinfo, read at the first call; the answer is kept). */
int cgroup2_root(char *out, size_t outlen);

#endif
