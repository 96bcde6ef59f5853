#include "prog_misses.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

uint64_t prog_info_misses(const struct bpf_prog_info *info, uint32_t len)
{
	if (len < offsetof(struct bpf_prog_info, recursion_misses) + sizeof(info->recursion_misses))
		return 0;
	return info->recursion_misses;
}

int prog_misses(int fd, uint64_t *misses)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	/* zeroed: the kernel refuses a non-zero tail it does not know, and fills no array we did not ask for */
	memset(&info, 0, sizeof(info));
	*misses = 0;
	/* libbpf 1.1: bpf_prog_get_info_by_fd is 1.2+ */
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*misses = prog_info_misses(&info, len);
	return 0;
}
