/* The running kernel's facts for probe selection, read from BTF and tracefs. */
#ifndef KSIGHT_KERNEL_FEATURES_H
#define KSIGHT_KERNEL_FEATURES_H

#include "probe.h"

struct btf;

/*
 * Load the kernel BTF (btf_path, or /sys/kernel/btf/vmlinux when NULL) and
 * fill `kf`. Returns 0 or -errno (no BTF: -ENOENT).
 */
int kernel_features_open(struct kernel_features *kf, const char *btf_path);
/* The same from a BTF already parsed (tests build small ones); kf owns it after. */
void kernel_features_from_btf(struct kernel_features *kf, struct btf *btf);
void kernel_features_close(struct kernel_features *kf);
/* The kernel BTF kernel_features_open() loaded (shared, do not free). */
const struct btf *kernel_features_btf(const struct kernel_features *kf);

/* The tracefs mount point in use ("/sys/kernel/tracing" or the debugfs one). */
const char *tracefs_root(void);

#endif
