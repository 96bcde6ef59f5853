/* From (disk, sector) to the partition that holds it, through sysfs. */
#include "fserr_parts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A small sysfs attribute into buf (NUL-terminated); 0 or -errno. */
static int read_attr(const char *dir, const char *part, const char *attr, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s", dir, part, attr) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	return 0;
}

static int read_ull(const char *dir, const char *part, const char *attr, unsigned long long *v)
{
	char text[32];
	char *end;

	if (read_attr(dir, part, attr, text, sizeof(text)))
		return -ENOENT;
	errno = 0;
	*v = strtoull(text, &end, 10);
	if (end == text || errno || (*end && *end != '\n'))
		return -EINVAL;
	return 0;
}

int fserr_partition_of(const char *sysfs_root, unsigned int major, unsigned int minor,
		       unsigned long long sector, struct fserr_partition *out)
{
	char dir[PATH_MAX], text[32];
	unsigned long long start, size;
	struct dirent *de;
	int ret = -ENOENT;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/dev/block/%u:%u", sysfs_root, major, minor);
	d = opendir(dir);
	if (!d)
		return -ENOENT;
	while (ret && (de = readdir(d))) {
		/* the disk's other entries (queue, holders, ...) have no start: skipped */
		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(out->name))
			continue;
		if (read_ull(dir, de->d_name, "start", &start) || read_ull(dir, de->d_name, "size", &size))
			continue;
		if (sector < start || sector - start >= size)
			continue;
		if (read_attr(dir, de->d_name, "dev", text, sizeof(text)) ||
		    sscanf(text, "%u:%u", &out->major, &out->minor) != 2)
			continue;
		snprintf(out->name, sizeof(out->name), "%s", de->d_name);
		out->start = start;
		out->size = size;
		ret = 0;
	}
	closedir(d);
	return ret;
}
