/*
 * cgroup ids and netns inodes to pods (pod_resolver.h).
 *
 * The netns table is rebuilt whole by each /proc scan and searched by
 * bisection; cgroup ids go through a small direct-mapped cache. Both expire
 * after ttl_s: an inode number can be reused once its namespace or cgroup is
 * gone.
 */
#include "pod_resolver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC	0x63677270
#endif
/* include/linux/exportfs.h: the handle type kernfs (cgroupfs) file handles have */
#define FILEID_KERNFS		0xfe
/* A pod's namespace has few processes that are not the pod's: try this many. */
#define PIDS_PER_NETNS		8
#define CGROUP_SLOTS		256	/* power of two */
#define WALK_MAX_DEPTH		32
#define PROC_CGROUP_MAX		8192

struct netns_entry {
	uint64_t ino;
	struct pod_ref ref;
};

struct cgroup_slot {
	uint64_t id;
	int64_t at_ms;		/* 0: empty */
	struct pod_ref ref;
};

struct pod_resolver {
	pthread_mutex_t lock;
	char proc_root[256];
	char cgroup_root[PATH_MAX];	/* "" without a cgroup2 mount */
	int mount_fd;			/* cgroup_root, for open_by_handle_at(); -1 */
	bool handles;			/* open_by_handle_at() works */
	int64_t ttl_ms, rescan_ms;
	unsigned int max_scan;

	struct netns_entry *netns;
	size_t n_netns;
	int64_t netns_at_ms;		/* the last scan; 0: never */

	struct cgroup_slot cgroups[CGROUP_SLOTS];
	int64_t walk_at_ms;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- /proc/PID/cgroup ---- */

int pod_resolver_parse_proc_cgroup(const char *text, size_t len, char *path, size_t cap,
				   struct cgroup_identity *id)
{
	const char *p = text, *end = text + len;
	char first[POD_RESOLVER_PATH_MAX] = "", v2[POD_RESOLVER_PATH_MAX] = "";
	bool any = false, have_v2 = false;
	char line_path[POD_RESOLVER_PATH_MAX];

	memset(id, 0, sizeof(*id));
	if (cap)
		path[0] = '\0';
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *c1 = memchr(p, ':', (size_t)(le - p));
		const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(le - c1 - 1)) : NULL;
		size_t n;

		if (c2 && c2 + 1 < le && c2[1] == '/' && (size_t)(le - c2 - 1) < sizeof(line_path)) {
			n = (size_t)(le - c2 - 1);
			memcpy(line_path, c2 + 1, n);
			line_path[n] = '\0';
			if (!memchr(line_path, '\0', n)) {
				if (!any)
					memcpy(first, line_path, n + 1);
				any = true;
				if (c1 - p == 1 && p[0] == '0' && c2 == c1 + 1 && !have_v2) {
					memcpy(v2, line_path, n + 1);
					have_v2 = true;
				}
				if (!cgroup_identity_parse(line_path, id)) {
					snprintf(path, cap, "%s", line_path);
					return 0;
				}
			}
		}
		p = le + 1;
	}
	memset(id, 0, sizeof(*id));
	if (!any)
		return -EINVAL;
	snprintf(path, cap, "%s", have_v2 ? v2 : first);
	return -ENOENT;
}

/* Read a small file whole; -errno. */
static int read_small(const char *path, char *buf, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t r;

	if (fd < 0)
		return -errno;
	while (n < cap && (r = read(fd, buf + n, cap - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			close(fd);
			return (int)r;
		}
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return 0;
}

/* ---- netns ---- */

struct netns_pid {
	uint64_t ino;
	int pid;
};

static int cmp_netns_pid(const void *a, const void *b)
{
	const struct netns_pid *x = a, *y = b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* The pod of one namespace from its processes' cgroups; false if all of them exited. */
static bool netns_ref(struct pod_resolver *r, const struct netns_pid *pids, size_t n,
		      struct pod_ref *ref)
{
	char path[PATH_MAX], *text;
	bool any = false;
	size_t i, len = 0;

	text = malloc(PROC_CGROUP_MAX);
	if (!text)
		return false;
	for (i = 0; i < n && i < PIDS_PER_NETNS; i++) {
		struct pod_ref try = { 0 };
		int ret;

		snprintf(path, sizeof(path), "%s/%d/cgroup", r->proc_root, pids[i].pid);
		if (read_small(path, text, PROC_CGROUP_MAX, &len))
			continue;	/* exited since the stat */
		ret = pod_resolver_parse_proc_cgroup(text, len, try.cgroup, sizeof(try.cgroup), &try.id);
		if (ret == -EINVAL)
			continue;
		if (!any || !ret)
			*ref = try;
		any = true;
		if (!ret)
			break;
	}
	free(text);
	return any;
}

static uint64_t stat_ino(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_ino;
}

/* Rebuild the netns table from one pass over PROC. Lock held. */
static int scan_netns(struct pod_resolver *r)
{
	struct netns_pid *pids;
	struct netns_entry *table = NULL;
	size_t n = 0, n_table = 0, i, j;
	char path[PATH_MAX];
	uint64_t host;
	struct dirent *de;
	DIR *dir;

	r->netns_at_ms = now_ms();
	dir = opendir(r->proc_root);
	if (!dir)
		return -errno;
	pids = calloc(r->max_scan, sizeof(*pids));
	if (!pids) {
		closedir(dir);
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/1/ns/net", r->proc_root);
	host = stat_ino(path);
	if (!host) {
		/* PID 1 is out of reach (another user namespace owns it): ours stands in */
		snprintf(path, sizeof(path), "%s/self/ns/net", r->proc_root);
		host = stat_ino(path);
	}
	while (n < r->max_scan && (de = readdir(dir))) {
		char *endp;
		long pid = strtol(de->d_name, &endp, 10);

		if (*endp || pid <= 0 || pid > INT_MAX)
			continue;
		snprintf(path, sizeof(path), "%s/%ld/ns/net", r->proc_root, pid);
		pids[n].ino = stat_ino(path);	/* 0: exited, or a kernel thread we may not see */
		pids[n].pid = (int)pid;
		if (pids[n].ino)
			n++;
	}
	closedir(dir);
	qsort(pids, n, sizeof(*pids), cmp_netns_pid);
	for (i = 0; i < n; i = j) {
		struct pod_ref ref = { 0 };
		struct netns_entry *t;

		for (j = i; j < n && pids[j].ino == pids[i].ino; j++)
			;
		if (pids[i].ino == host) {
			ref.host = true;
			snprintf(ref.cgroup, sizeof(ref.cgroup), "/");
		} else if (!netns_ref(r, &pids[i], j - i, &ref)) {
			continue;
		}
		t = realloc(table, (n_table + 1) * sizeof(*t));
		if (!t)
			break;
		table = t;
		table[n_table].ino = pids[i].ino;
		table[n_table].ref = ref;
		n_table++;
	}
	free(pids);
	free(r->netns);
	r->netns = table;
	r->n_netns = n_table;
	return 0;
}

static const struct netns_entry *find_netns(const struct pod_resolver *r, uint64_t ino)
{
	size_t lo = 0, hi = r->n_netns;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->netns[mid].ino == ino)
			return &r->netns[mid];
		if (r->netns[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int pod_resolver_netns(struct pod_resolver *r, uint64_t netns_ino, struct pod_ref *out)
{
	const struct netns_entry *e;
	int64_t now = now_ms();
	bool scanned = false;
	int ret = 0;

	if (!r || !out || !netns_ino)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&r->lock);
	if (!r->netns_at_ms || now - r->netns_at_ms >= r->ttl_ms) {
		scanned = true;
		ret = scan_netns(r);
	}
	e = ret ? NULL : find_netns(r, netns_ino);
	if (!e && !ret && !scanned) {
		/* a namespace newer than the scan: look again, but not at every miss */
		if (now - r->netns_at_ms < r->rescan_ms)
			ret = -EAGAIN;
		else if (!(ret = scan_netns(r)))
			e = find_netns(r, netns_ino);
	}
	if (e)
		*out = e->ref;
	pthread_mutex_unlock(&r->lock);
	if (e)
		return 0;
	return ret ? ret : -ENOENT;
}

/* ---- cgroup ids ---- */

static void ref_from_path(struct pod_ref *ref, const char *rel)
{
	memset(ref, 0, sizeof(*ref));
	snprintf(ref->cgroup, sizeof(ref->cgroup), "%s", rel[0] ? rel : "/");
	ref->host = !strcmp(ref->cgroup, "/");
	if (cgroup_identity_parse(ref->cgroup, &ref->id))
		memset(&ref->id, 0, sizeof(ref->id));
}

/* One call: the directory by its kernfs id. 0, -ENOENT (gone), other -errno: no handles here. */
static int cgroup_by_handle(struct pod_resolver *r, uint64_t id, struct pod_ref *ref)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh = { .handle_bytes = sizeof(uint64_t), .handle_type = FILEID_KERNFS } };
	char link[64], target[PATH_MAX];
	size_t root_len = strlen(r->cgroup_root);
	ssize_t n;
	int fd;

	memcpy(h.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(r->mount_fd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ESTALE || errno == ENOENT ? -ENOENT : -errno;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	if (strncmp(target, r->cgroup_root, root_len) ||
	    (target[root_len] != '/' && target[root_len] != '\0'))
		return -EXDEV;	/* reached through another mount: walk instead */
	ref_from_path(ref, target + root_len);
	return 0;
}

struct walk {
	uint64_t id;
	unsigned int left;	/* directories we may still look at */
	char path[PATH_MAX];	/* relative to the root, "" for the root */
	bool found;
};

static void walk_dir(struct walk *w, int fd0, size_t path_len, int depth)
{
	struct dirent *de;
	DIR *dir = fdopendir(fd0);

	if (!dir) {
		close(fd0);
		return;
	}
	while (!w->found && w->left && (de = readdir(dir))) {
		struct stat st;
		size_t n = strlen(de->d_name);
		int fd;

		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode))
			continue;	/* removed meanwhile, or not a cgroup */
		w->left--;
		if (path_len + 1 + n >= sizeof(w->path))
			continue;
		w->path[path_len] = '/';
		memcpy(w->path + path_len + 1, de->d_name, n + 1);
		if ((uint64_t)st.st_ino == w->id) {
			w->found = true;
			break;
		}
		if (depth + 1 >= WALK_MAX_DEPTH)
			continue;
		fd = openat(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0)
			walk_dir(w, fd, path_len + 1 + n, depth + 1);
		if (!w->found)
			w->path[path_len] = '\0';
	}
	closedir(dir);
}

static int cgroup_by_walk(struct pod_resolver *r, uint64_t id, struct pod_ref *ref)
{
	struct walk *w;
	struct stat st;
	int fd, ret = -ENOENT;

	if (stat(r->cgroup_root, &st))
		return -errno;
	if ((uint64_t)st.st_ino == id) {
		ref_from_path(ref, "/");
		return 0;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->id = id;
	w->left = r->max_scan;
	fd = open(r->cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		walk_dir(w, fd, 0, 0);
	if (w->found) {
		ref_from_path(ref, w->path);
		ret = 0;
	}
	free(w);
	return ret;
}

int pod_resolver_cgroup(struct pod_resolver *r, uint64_t cgroup_id, struct pod_ref *out)
{
	struct cgroup_slot *slot;
	int64_t now = now_ms();
	int ret = -ENOENT;

	if (!r || !out || !cgroup_id)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!r->cgroup_root[0])
		return -ENODEV;
	slot = &r->cgroups[(cgroup_id * 0x9e3779b97f4a7c15ull) >> 56 & (CGROUP_SLOTS - 1)];
	pthread_mutex_lock(&r->lock);
	if (slot->at_ms && slot->id == cgroup_id && now - slot->at_ms < r->ttl_ms) {
		*out = slot->ref;
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	if (r->handles) {
		ret = cgroup_by_handle(r, cgroup_id, out);
		if (ret && ret != -ENOENT)
			r->handles = false;	/* not allowed or not supported: walk from now on */
	}
	if (!r->handles && ret) {
		if (r->walk_at_ms && now - r->walk_at_ms < r->rescan_ms) {
			ret = -EAGAIN;
		} else {
			r->walk_at_ms = now;
			ret = cgroup_by_walk(r, cgroup_id, out);
		}
	}
	if (!ret) {
		slot->id = cgroup_id;
		slot->at_ms = now;
		slot->ref = *out;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* ---- setup ---- */

static bool is_cgroup2(const char *path)
{
	struct statfs sf;

	return !statfs(path, &sf) && sf.f_type == CGROUP2_SUPER_MAGIC;
}

int pod_resolver_new(const struct pod_resolver_config *cfg, struct pod_resolver **out)
{
	static const struct pod_resolver_config defaults = { 0 };
	struct pod_resolver *r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg)
		cfg = &defaults;
	if ((cfg->proc_root && strlen(cfg->proc_root) >= sizeof(r->proc_root)) ||
	    (cfg->cgroup_root && strlen(cfg->cgroup_root) >= sizeof(r->cgroup_root)))
		return -ENAMETOOLONG;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	snprintf(r->proc_root, sizeof(r->proc_root), "%s", cfg->proc_root ? cfg->proc_root : "/proc");
	if (cfg->cgroup_root)
		snprintf(r->cgroup_root, sizeof(r->cgroup_root), "%s", cfg->cgroup_root);
	else if (is_cgroup2("/sys/fs/cgroup"))
		snprintf(r->cgroup_root, sizeof(r->cgroup_root), "/sys/fs/cgroup");
	else if (is_cgroup2("/sys/fs/cgroup/unified"))
		snprintf(r->cgroup_root, sizeof(r->cgroup_root), "/sys/fs/cgroup/unified");
	r->ttl_ms = (int64_t)(cfg->ttl_s > 0 ? cfg->ttl_s : POD_RESOLVER_TTL_S) * 1000;
	r->rescan_ms = cfg->rescan_ms > 0 ? cfg->rescan_ms : cfg->rescan_ms < 0 ? 0 : POD_RESOLVER_RESCAN_MS;
	r->max_scan = cfg->max_scan ? cfg->max_scan : POD_RESOLVER_MAX_SCAN;
	r->mount_fd = -1;
	if (r->cgroup_root[0] && !cfg->no_handles && is_cgroup2(r->cgroup_root)) {
		r->mount_fd = open(r->cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r->handles = r->mount_fd >= 0;
	}
	*out = r;
	return 0;
}

void pod_resolver_free(struct pod_resolver *r)
{
	if (!r)
		return;
	if (r->mount_fd >= 0)
		close(r->mount_fd);
	free(r->netns);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
