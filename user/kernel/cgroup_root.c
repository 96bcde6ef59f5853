#include "cgroup_root.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* mountinfo's octal escapes (\040 a space, \011 a tab, \012, \134) undone; false if it does not fit */
static bool unescape(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			c = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		}
		if (o + 1 >= outlen)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

/* Field `k` (from 0) of a line, as start and length; false if the line is shorter. */
static bool field(const char *line, const char *end, int k, const char **start, size_t *len)
{
	const char *p = line;

	for (;;) {
		const char *q;

		while (p < end && *p == ' ')
			p++;
		if (p == end)
			return false;
		q = p;
		while (q < end && *q != ' ')
			q++;
		if (k-- == 0) {
			*start = p;
			*len = (size_t)(q - p);
			return true;
		}
		p = q;
	}
}

/*
 * The " - " after the optional fields (the fields before it have their
 * spaces escaped, so the first one is it), or NULL.
 */
static const char *separator(const char *line, const char *end)
{
	return memmem(line, (size_t)(end - line), " - ", 3);
}

/* Is the filesystem type, right after the separator, cgroup2? */
static bool is_cgroup2(const char *sep, const char *end)
{
	const char *t = sep + 3;

	return (size_t)(end - t) >= 7 && !memcmp(t, "cgroup2", 7) && (t + 7 == end || t[7] == ' ');
}

int cgroup2_root_pick(const char *mountinfo, cgroup_is_root_fn is_root, char *out, size_t outlen)
{
	const char *line = mountinfo;
	bool too_long = false;

	while (line && *line) {
		const char *end = strchr(line, '\n'), *mp, *sep;
		size_t mplen;

		if (!end)
			end = line + strlen(line);
		sep = separator(line, end);
		/* the mount point is field 4, before the separator */
		if (sep && is_cgroup2(sep, end) && field(line, sep, 4, &mp, &mplen)) {
			if (!unescape(mp, mplen, out, outlen))
				too_long = true;
			else if (is_root(out))
				return 0;
		}
		line = *end ? end + 1 : NULL;
	}
	if (outlen)
		out[0] = '\0';
	return too_long ? -ENAMETOOLONG : -ENOENT;
}

static bool dir_is_root(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if (access(path, F_OK))
		return false;
	snprintf(path, sizeof(path), "%s/cgroup.events", dir);
	return access(path, F_OK) != 0;
}

/* Read mountinfo once per process: planning asks for each sockops variant, attaching for each program. */
static int find_root(char *out, size_t outlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *text = NULL;
	size_t cap = 0;
	int err;

	if (!f)
		return neg_errno();
	/* the whole file: mountinfo is one read's worth per mount, a few KiB */
	err = getdelim(&text, &cap, '\0', f) < 0 ? -ENOENT : 0;
	fclose(f);
	if (!err)
		err = cgroup2_root_pick(text, dir_is_root, out, outlen);
	free(text);
	return err;
}

int cgroup2_root(char *out, size_t outlen)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char root[PATH_MAX];
	static int err = 1; /* 1: not looked up yet */
	int ret;

	pthread_mutex_lock(&lock);
	if (err == 1)
		err = find_root(root, sizeof(root));
	ret = err;
	if (!ret && snprintf(out, outlen, "%s", root) >= (int)outlen)
		ret = -ENAMETOOLONG;
	pthread_mutex_unlock(&lock);
	return ret;
}
