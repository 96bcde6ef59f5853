/* mountinfo and /sys/dev/block: from a kernel dev_t to a device name and its mount points. */
#include "fserr_mounts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* mountinfo escapes space, tab, newline and backslash as \ooo; undo it in place */
static void unescape(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* Next space-separated field of *line (NUL-terminated in place), or NULL at the end. */
static char *next_field(char **line)
{
	char *s = *line, *start;

	while (*s == ' ')
		s++;
	if (!*s)
		return NULL;
	start = s;
	while (*s && *s != ' ')
		s++;
	if (*s)
		*s++ = '\0';
	*line = s;
	return start;
}

static int parse_devno(const char *s, unsigned int *major, unsigned int *minor)
{
	char *end;
	unsigned long ma, mi;

	errno = 0;
	ma = strtoul(s, &end, 10);
	if (end == s || *end != ':' || errno || ma > UINT_MAX)
		return -EINVAL;
	s = end + 1;
	mi = strtoul(s, &end, 10);
	if (end == s || *end || errno || mi > UINT_MAX)
		return -EINVAL;
	*major = (unsigned int)ma;
	*minor = (unsigned int)mi;
	return 0;
}

/*
 * "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue":
 * id, parent, MAJ:MIN, root, mount point, options, optional fields up to
 * "-", then fstype, source, super options.
 */
static int parse_line(char *line, struct fserr_mount *m)
{
	char *f[5], *field;
	int i;

	for (i = 0; i < 5; i++) {
		f[i] = next_field(&line);
		if (!f[i])
			return -EINVAL;
	}
	if (!next_field(&line)) /* mount options */
		return -EINVAL;
	while ((field = next_field(&line)) && strcmp(field, "-"))
		;
	if (!field)
		return -EINVAL;
	m->fstype = next_field(&line);
	m->source = next_field(&line);
	if (!m->fstype || !m->source)
		return -EINVAL;
	if (parse_devno(f[2], &m->major, &m->minor))
		return -EINVAL;
	m->id = (unsigned int)strtoul(f[0], NULL, 10);
	unescape(f[3]);
	unescape(f[4]);
	unescape((char *)m->source);
	m->root = f[3];
	m->mountpoint = f[4];
	return 0;
}

int fserr_mounts_parse(const char *text, size_t len, struct fserr_mounts *out)
{
	size_t lines = 0, i, cap;
	char *s, *end;

	memset(out, 0, sizeof(*out));
	if (len > FSERR_MOUNTINFO_MAX) {
		len = FSERR_MOUNTINFO_MAX;
		out->truncated = true;
	}
	for (i = 0; i < len; i++)
		if (text[i] == '\n')
			lines++;
	cap = lines + 1 < FSERR_MAX_MOUNTS ? lines + 1 : FSERR_MAX_MOUNTS;
	out->strings = malloc(len + 1);
	out->v = calloc(cap, sizeof(*out->v));
	if (!out->strings || !out->v) {
		fserr_mounts_free(out);
		return -ENOMEM;
	}
	memcpy(out->strings, text, len);
	out->strings[len] = '\0';
	for (s = out->strings; *s; s = end) {
		end = strchr(s, '\n');
		if (end)
			*end++ = '\0';
		else
			end = s + strlen(s);
		/* a NUL inside the text ends it: what follows is not mountinfo */
		if (!*s)
			continue;
		if (out->n == cap) {
			out->truncated = true;
			break;
		}
		if (parse_line(s, &out->v[out->n]))
			out->malformed++;
		else
			out->n++;
	}
	return 0;
}

void fserr_mounts_free(struct fserr_mounts *m)
{
	free(m->v);
	free(m->strings);
	memset(m, 0, sizeof(*m));
}

size_t fserr_mounts_find(const struct fserr_mounts *m, unsigned int major, unsigned int minor,
			 size_t *idx, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < m->n; i++) {
		if (m->v[i].major != major || m->v[i].minor != minor)
			continue;
		if (n < max)
			idx[n] = i;
		n++;
	}
	return n;
}

int fserr_uevent_devname(const char *text, size_t len, char *out, size_t outlen)
{
	size_t i = 0;

	while (i < len) {
		const char *line = text + i;
		const char *nl = memchr(line, '\n', len - i);
		size_t n = nl ? (size_t)(nl - line) : len - i;

		if (n > 8 && !memcmp(line, "DEVNAME=", 8)) {
			n -= 8;
			if (n >= outlen || memchr(line + 8, '\0', n))
				return -ENOENT;
			memcpy(out, line + 8, n);
			out[n] = '\0';
			return 0;
		}
		i += n + 1;
	}
	return -ENOENT;
}

int fserr_device_name(const char *sysfs_root, unsigned int major, unsigned int minor, char *out,
		      size_t outlen)
{
	char path[PATH_MAX], text[4096], link[PATH_MAX];
	const char *base;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/dev/block/%u:%u/uevent", sysfs_root, major, minor);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, text, sizeof(text));
		close(fd);
		if (n > 0 && !fserr_uevent_devname(text, (size_t)n, out, outlen) && out[0] && !strchr(out, '/'))
			return 0;
		/* DEVNAME may hold a path (dm, some drivers): the link's name is what /sys/class/block lists */
	}
	snprintf(path, sizeof(path), "%s/dev/block/%u:%u", sysfs_root, major, minor);
	n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		base = strrchr(link, '/');
		base = base ? base + 1 : link;
		if (*base && strlen(base) < outlen) {
			snprintf(out, outlen, "%s", base);
			return 0;
		}
	}
	snprintf(out, outlen, "%u:%u", major, minor);
	return -ENOENT;
}

/* The whole file from offset 0, at most FSERR_MOUNTINFO_MAX bytes. */
static int read_all(int fd, char **text, size_t *len)
{
	size_t cap = 64 * 1024, n = 0;
	char *buf = malloc(cap), *bigger;
	ssize_t r;

	if (!buf)
		return -ENOMEM;
	if (lseek(fd, 0, SEEK_SET) < 0) {
		free(buf);
		return -errno;
	}
	for (;;) {
		if (n == cap) {
			if (cap >= FSERR_MOUNTINFO_MAX)
				break;
			bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				return -ENOMEM;
			}
			buf = bigger;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return -errno;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*text = buf;
	*len = n;
	return 0;
}

static bool changed(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLPRI };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLPRI | POLLERR));
}

int fserr_mounts_watch_open(struct fserr_mounts_watch *w, const char *path)
{
	memset(w, 0, sizeof(*w));
	w->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (w->fd < 0)
		return -errno;
	return 0;
}

int fserr_mounts_watch_refresh(struct fserr_mounts_watch *w)
{
	struct fserr_mounts fresh;
	size_t len = 0;
	char *text = NULL;
	int tries, err;

	if (w->fd < 0)
		return -EBADF;
	/* poll() consumes the change it reports: check first, read, and again if it moved meanwhile */
	if (w->reads && !changed(w->fd))
		return 0;
	for (tries = 0; tries < 3; tries++) {
		err = read_all(w->fd, &text, &len);
		if (err)
			return err;
		w->reads++;
		if (!changed(w->fd) || tries == 2)
			break;
		free(text);
	}
	err = fserr_mounts_parse(text, len, &fresh);
	free(text);
	if (err)
		return err;
	fserr_mounts_free(&w->table);
	w->table = fresh;
	return 0;
}

void fserr_mounts_watch_close(struct fserr_mounts_watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	fserr_mounts_free(&w->table);
}
