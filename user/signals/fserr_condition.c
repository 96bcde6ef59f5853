/*
 * The filesystems behind the Node condition (see fserr_condition.h): the
 * tracking first (pure), then the watch that feeds it mountinfo and hands
 * the result to the Kubernetes side.
 */
#include "fserr_condition.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/types.h>

#include "agent.h"
#include "fserr.h"
#include "fserr_signal.h"
#include "k8s.h"
#include "log.h"
#include "metrics.h"
#include "node_condition.h"

#define KIND_BIT(k) (1u << (k))

static bool marks(unsigned int kind)
{
	return kind == FSERR_KIND_CORRUPTION || kind == FSERR_KIND_SHUTDOWN;
}

static bool has_id(const struct fserr_condition_fs *fs, unsigned int id)
{
	size_t i;

	for (i = 0; i < fs->n_ids; i++)
		if (fs->ids[i] == id)
			return true;
	return false;
}

/* Add every mount of fs's device in t that it does not have yet; true when one was added. */
static bool add_mounts(struct fserr_condition_fs *fs, const struct fserr_mounts *t)
{
	bool added = false;
	size_t i;

	for (i = 0; i < t->n && fs->n_ids < FSERR_CONDITION_MAX_IDS; i++) {
		const struct fserr_mount *m = &t->v[i];

		if (m->major == fs->major && m->minor == fs->minor && !has_id(fs, m->id)) {
			fs->ids[fs->n_ids++] = m->id;
			added = true;
		}
	}
	return added;
}

static bool id_listed(const struct fserr_mounts *t, unsigned int major, unsigned int minor, unsigned int id)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].id == id && t->v[i].major == major && t->v[i].minor == minor)
			return true;
	return false;
}

int fserr_condition_report(struct fserr_condition *c, const struct fserr_mounts *t,
			   const struct fserr_condition_error *e)
{
	struct fserr_condition_fs *fs = NULL;
	size_t i, idx;
	unsigned int before;
	bool changed;

	if (!marks(e->kind))
		return -EINVAL;
	/* a device with no mount in the table: no filesystem of it to mark (raced an unmount) */
	if (!fserr_mounts_find(t, e->major, e->minor, &idx, 1))
		return -ENOENT;
	/* first: forget what was unmounted, so an old mark does not absorb this new mount */
	changed = fserr_condition_update(c, t);
	for (i = 0; i < c->n; i++)
		if (c->fs[i].major == e->major && c->fs[i].minor == e->minor) {
			fs = &c->fs[i];
			break;
		}
	if (!fs) {
		if (c->n == FSERR_CONDITION_MAX) {
			c->not_kept++;
			if (c->overflow)
				return changed;
			c->overflow = true;
			return 1;
		}
		fs = &c->fs[c->n++];
		memset(fs, 0, sizeof(*fs));
		fs->major = e->major;
		fs->minor = e->minor;
		snprintf(fs->device, sizeof(fs->device), "%s", e->device ? e->device : "");
		snprintf(fs->fstype, sizeof(fs->fstype), "%s",
			 e->fstype && e->fstype[0] ? e->fstype : t->v[idx].fstype);
		snprintf(fs->where, sizeof(fs->where), "%s", e->where ? e->where : "");
		add_mounts(fs, t);
	}
	fs->errors++;
	before = fs->kinds;
	fs->kinds |= KIND_BIT(e->kind);
	return changed || fs->errors == 1 || fs->kinds != before;
}

bool fserr_condition_update(struct fserr_condition *c, const struct fserr_mounts *t)
{
	bool changed = false;
	size_t i = 0, j, kept;

	while (i < c->n) {
		struct fserr_condition_fs *fs = &c->fs[i];

		for (j = 0, kept = 0; j < fs->n_ids; j++)
			if (id_listed(t, fs->major, fs->minor, fs->ids[j]))
				fs->ids[kept++] = fs->ids[j];
		if (kept != fs->n_ids)
			changed = true;
		fs->n_ids = kept;
		if (!kept) {
			/* every mount of that superblock is gone: the next mount of the device is a new filesystem */
			c->fs[i] = c->fs[--c->n];
			continue;
		}
		/* still mounted: mounts of the device that appeared meanwhile share its superblock */
		if (add_mounts(fs, t))
			changed = true;
		i++;
	}
	if (!c->n && c->overflow) {
		c->overflow = false;
		changed = true;
	}
	return changed;
}

bool fserr_condition_active(const struct fserr_condition *c)
{
	return c->n > 0 || c->overflow;
}

const char *fserr_condition_reason(const struct fserr_condition *c)
{
	size_t i;

	if (!fserr_condition_active(c))
		return FSERR_CONDITION_REASON_CLEAR;
	for (i = 0; i < c->n; i++)
		if (c->fs[i].kinds & KIND_BIT(FSERR_KIND_SHUTDOWN))
			return FSERR_REASON_SHUTDOWN;
	return FSERR_REASON_CORRUPTION;
}

static const char *kinds_text(unsigned int kinds)
{
	bool corrupt = kinds & KIND_BIT(FSERR_KIND_CORRUPTION), shut = kinds & KIND_BIT(FSERR_KIND_SHUTDOWN);

	return corrupt && shut ? "corruption and shutdown" : shut ? "shutdown" : "corruption";
}

/* "loop3 (ext4 at /mnt/a, /mnt/b): corruption, first in ext4_readdir:123" at out + len */
static size_t describe_fs(const struct fserr_condition_fs *fs, const struct fserr_mounts *t, char *out,
			  size_t len, size_t outlen)
{
	size_t i, listed = 0;

	len += (size_t)snprintf(out + len, outlen - len, "%s (%s at ", fs->device, fs->fstype[0] ? fs->fstype : "?");
	for (i = 0; i < t->n && len < outlen; i++) {
		const struct fserr_mount *m = &t->v[i];

		if (m->major != fs->major || m->minor != fs->minor || !has_id(fs, m->id))
			continue;
		len += (size_t)snprintf(out + len, outlen - len, "%s%s", listed++ ? ", " : "", m->mountpoint);
	}
	if (len < outlen)
		len += (size_t)snprintf(out + len, outlen - len, "%s): %s", listed ? "" : "?", kinds_text(fs->kinds));
	if (len < outlen && fs->where[0])
		len += (size_t)snprintf(out + len, outlen - len, ", first in %s", fs->where);
	return len;
}

void fserr_condition_message(const struct fserr_condition *c, const struct fserr_mounts *t, char *out,
			     size_t outlen)
{
	static const char more[] = "; and more";
	char one[FSERR_CONDITION_MESSAGE_MAX];
	size_t len, i, n;

	if (!outlen)
		return;
	if (!fserr_condition_active(c)) {
		snprintf(out, outlen, "%s", FSERR_CONDITION_MESSAGE_CLEAR);
		return;
	}
	len = (size_t)snprintf(out, outlen, "Filesystems that reported errors since they were mounted: ");
	for (i = 0; i < c->n && len < outlen; i++) {
		n = describe_fs(&c->fs[i], t, one, 0, sizeof(one));
		/* whole entries only, with room left to say that some were left out */
		if (len + 2 + n + sizeof(more) > outlen) {
			snprintf(out + len, outlen - len, "%s", i ? more : more + 2);
			return;
		}
		len += (size_t)snprintf(out + len, outlen - len, "%s%s", i ? "; " : "", one);
	}
	if (c->overflow && len < outlen)
		snprintf(out + len, outlen - len, "%s", c->n ? more : more + 2);
}

/* ---- the watch ---- */

struct fserr_condition_watch {
	struct agent *agent;
	pthread_mutex_t lock;       /* everything below */
	struct fserr_mounts_watch mounts;
	struct fserr_condition cond;
	struct metric_family *gauge;
	int wake_fd;                /* eventfd: stop */
	pthread_t thread;
	bool stop;
};

/* Hand the condition to the Kubernetes side and the gauge; lock held. */
static void publish(struct fserr_condition_watch *w)
{
	static const char *const type[] = { NODE_CONDITION_FS_TYPE };
	char message[FSERR_CONDITION_MESSAGE_MAX];
	bool active = fserr_condition_active(&w->cond);

	fserr_condition_message(&w->cond, &w->mounts.table, message, sizeof(message));
	if (w->gauge)
		metrics_gauge_set(w->gauge, type, active ? 1 : 0);
	k8s_node_condition_set(w->agent, NODE_CONDITION_FS_TYPE, active, fserr_condition_reason(&w->cond), message);
}

/* Re-read mountinfo (forced: the thread's poll() consumed the change) and follow it; lock held. */
static void follow(struct fserr_condition_watch *w, bool force)
{
	if (force)
		w->mounts.reads = 0;
	if (fserr_mounts_watch_refresh(&w->mounts))
		return;
	if (fserr_condition_update(&w->cond, &w->mounts.table))
		publish(w);
}

/*
 * Sleeps in poll() on mountinfo, which reports POLLPRI after any mount or
 * unmount: an unmounted filesystem clears the condition within a read of
 * mountinfo, without scrapes or events. The timeout is a safety net only.
 */
static void *watch_thread(void *arg)
{
	struct fserr_condition_watch *w = arg;
	struct pollfd p[2] = { { .fd = w->mounts.fd, .events = POLLPRI }, { .fd = w->wake_fd, .events = POLLIN } };

	for (;;) {
		int n = poll(p, 2, 10000);

		pthread_mutex_lock(&w->lock);
		if (w->stop) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		follow(w, n > 0 && (p[0].revents & (POLLPRI | POLLERR)));
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

struct fserr_condition_watch *fserr_condition_watch_start(struct agent *agent, const char *mountinfo)
{
	static const char *const labels[] = { "type" };
	struct fserr_condition_watch *w = calloc(1, sizeof(*w));
	int err;

	if (!w) {
		log_error("fserr: no Node condition: out of memory");
		return NULL;
	}
	w->agent = agent;
	w->wake_fd = -1;
	err = fserr_mounts_watch_open(&w->mounts, mountinfo);
	if (err) {
		log_error("fserr: no Node condition: cannot open %s: %s", mountinfo, strerror(-err));
		free(w);
		return NULL;
	}
	w->gauge = metrics_family(agent->metrics, "ksight_fs_node_condition",
				  "The Node condition ksight sets (--node-conditions): 1 while a mounted filesystem "
				  "has reported corruption or a shutdown since it was mounted.",
				  METRIC_GAUGE, labels, 1, NULL, 0);
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	err = w->wake_fd < 0 ? errno : pthread_mutex_init(&w->lock, NULL);
	if (err) {
		log_error("fserr: no Node condition: %s", strerror(err));
		goto fail;
	}
	fserr_mounts_watch_refresh(&w->mounts);
	publish(w);
	err = pthread_create(&w->thread, NULL, watch_thread, w);
	if (err) {
		log_error("fserr: no Node condition: cannot start its thread: %s", strerror(err));
		pthread_mutex_destroy(&w->lock);
		goto fail;
	}
	return w;
fail:
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	fserr_mounts_watch_close(&w->mounts);
	free(w);
	return NULL;
}

void fserr_condition_watch_report(struct fserr_condition_watch *w, const struct fserr_condition_error *e)
{
	bool changed;
	int ret;

	if (!w || !marks(e->kind))
		return;
	pthread_mutex_lock(&w->lock);
	/* the error's mount may be newer than this table: look again (a poll() when nothing changed) */
	fserr_mounts_watch_refresh(&w->mounts);
	changed = fserr_condition_update(&w->cond, &w->mounts.table);
	ret = fserr_condition_report(&w->cond, &w->mounts.table, e);
	if (ret == -ENOENT) {
		/* the thread's poll() may have taken the change this table lacks: read it for sure */
		w->mounts.reads = 0;
		fserr_mounts_watch_refresh(&w->mounts);
		changed |= fserr_condition_update(&w->cond, &w->mounts.table);
		ret = fserr_condition_report(&w->cond, &w->mounts.table, e);
	}
	if (changed || ret == 1)
		publish(w);
	pthread_mutex_unlock(&w->lock);
}

void fserr_condition_watch_stop(struct fserr_condition_watch *w)
{
	uint64_t one = 1;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_mutex_unlock(&w->lock);
	if (write(w->wake_fd, &one, sizeof(one)) < 0)
		log_warn("fserr: cannot wake the Node condition thread: %s", strerror(errno));
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	close(w->wake_fd);
	fserr_mounts_watch_close(&w->mounts);
	free(w);
}
