#include "env.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/magic.h>

#include "kernel_features.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static char warnings[512];

const char *env_warnings(void)
{
	return warnings;
}

static bool has_cap(const struct __user_cap_data_struct *data, int cap)
{
	return data[cap / 32].effective & (1u << (cap % 32));
}

static int check_privileges(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	if (has_cap(data, CAP_SYS_ADMIN) || (has_cap(data, CAP_BPF) && has_cap(data, CAP_PERFMON)))
		return 0;
	snprintf(err, errlen, "ksight needs root: it loads BPF programs (CAP_BPF and CAP_PERFMON, "
		 "or CAP_SYS_ADMIN); run it with sudo, or as the privileged DaemonSet in deploy/");
	return -EPERM;
}

static int check_btf(const char *btf_path, char *err, size_t errlen)
{
	const char *path = btf_path ? btf_path : "/sys/kernel/btf/vmlinux";

	if (access(path, R_OK) == 0)
		return 0;
	if (btf_path)
		snprintf(err, errlen, "cannot read BTF file %s (--btf): %s", path, strerror(errno));
	else
		snprintf(err, errlen, "this kernel has no BTF (%s is missing): it was built without "
			 "CONFIG_DEBUG_INFO_BTF; use a kernel with BTF, or pass --btf FILE with this "
			 "kernel's BTF (e.g. from BTFHub)", path);
	return -ENOENT;
}

static bool is_fs(const char *path, long magic)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == magic;
}

/* Mount a pseudo filesystem if it is not there; a failure is only a warning. */
static void ensure_mounted(const char *path, const char *type, long magic, const char *why)
{
	size_t used = strlen(warnings);

	if (is_fs(path, magic))
		return;
	if (mount(type, path, type, 0, NULL) == 0)
		return;
	snprintf(warnings + used, sizeof(warnings) - used,
		 "%s%s is not mounted at %s and mounting it failed (%s): %s; run `mount -t %s %s %s`",
		 used ? "\n" : "", type, path, strerror(errno), why, type, type, path);
}

int env_preflight(const char *btf_path, char *err, size_t errlen)
{
	int ret;

	warnings[0] = '\0';
	ret = check_privileges(err, errlen);
	if (ret)
		return ret;
	ret = check_btf(btf_path, err, errlen);
	if (ret)
		return ret;
	if (!is_fs("/sys/kernel/debug/tracing", TRACEFS_MAGIC))
		ensure_mounted("/sys/kernel/tracing", "tracefs", TRACEFS_MAGIC,
			       "classic tracepoint variants cannot be used");
	ensure_mounted("/sys/fs/bpf", "bpf", BPF_FS_MAGIC, "nothing is lost today, but pinning will fail");
	return 0;
}
