/*
 * fserr: filesystem corruption, shutdowns and block I/O errors ->
 * ksight_fs_errors_total (exact, from the kernel's counting map), trace
 * lines, and Events on the Node and on the Pods whose volumes are on the
 * device.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "fserr.skel.h"

#include "agent.h"
#include "bpf_maps.h"
#include "event.h"
#include "fserr.h"
#include "fserr_condition.h"
#include "fserr_late.h"
#include "fserr_mounts.h"
#include "fserr_parts.h"
#include "fserr_pv.h"
#include "fserr_pods.h"
#include "fserr_signal.h"
#include "k8s.h"
#include "log.h"
#include "metrics.h"
#include "signal_def.h"

#define FSERR_SYSFS         "/sys"
#define FSERR_MOUNTINFO     "/proc/1/mountinfo" /* the host's, through hostPID */
#define FSERR_EXT4_SYSFS    "/sys/fs/ext4"
#define FSERR_RATE_PER_SEC  10 /* records per second and device, after a burst of */
#define FSERR_RATE_BURST    20
/* per record: mount points listed, pod volumes looked at */
#define FSERR_MAX_LISTED    8
#define FSERR_MAX_VOLUMES   32

/*
 * Events per signature: the first at once, then at most one per interval.
 * The recorder's spam filter allows an object 25 Events, then one per 5
 * minutes: a storm of one error must not use up the Node's budget and hide
 * the next, different error (an xfs shutdown after ext4 corruption).
 */
#define FSERR_EVENT_INTERVAL_NS (60ULL * 1000000000ULL)
#define FSERR_MAX_SIGNATURES    256

struct fserr_signature_seen {
	char key[192];      /* device/kind/function-or-errno, and the pod for pod Events */
	uint64_t last_sent; /* CLOCK_BOOTTIME of the last k8s_record, 0: never */
	uint64_t seen;      /* records of this signature */
	uint64_t used;      /* for replacing the least recently used entry */
};

/* What a dev_t is, cached so that a device gone (loop detached) keeps its name. */
struct fserr_devinfo {
	__u32 dev;
	char name[64];
	char fstype[32];
};

struct fserr_state {
	/* the mount table and device cache: events (main thread) and scrapes (HTTP thread) */
	pthread_mutex_t lock;
	struct fserr_mounts_watch mounts;
	bool have_mounts;
	struct fserr_devinfo devs[FSERR_MAX_DEVICES];
	size_t n_devs;
	const char *kubelet_root;
	/* the main thread's alone (handle_event) */
	struct fserr_signature_seen sigs[FSERR_MAX_SIGNATURES];
	uint64_t sig_clock;
	/* the HTTP thread's alone (collect): xfs points attached after start-up */
	struct fserr_late *late;
	struct fserr_condition_watch *condition; /* --node-conditions; its own lock */
	/* PV -> claim over the API (NULL without one): its own thread and lock */
	struct fserr_pvs *pvs;
	struct metric_family *errors, *recorded, *first_error, *last_error, *suppressed, *uncounted;
};

static const struct probe_variant ext4_error_variants[] = {
	{ .name = "tracepoint", .programs = { "fserr_ext4_error_tp" } },
	{ .name = "kprobe", .programs = { "fserr_ext4_error_kp", "fserr_ext4_error_inode_kp",
					  "fserr_ext4_error_file_kp" } },
};

static const struct probe_variant ext4_shutdown_variants[] = {
	{ .name = "tracepoint", .programs = { "fserr_ext4_shutdown_tp" } },
};

static const struct probe_variant block_error_variants[] = {
	{ .name = "tracepoint", .programs = { "fserr_block_rq_error_tp" } },
	{ .name = "complete", .programs = { "fserr_block_rq_complete_tp" } },
};

/* every xfs variant reads xfs's own types (see probe_variant.module_btf) */
static const struct probe_variant xfs_shutdown_variants[] = {
	{ .name = "tracepoint", .programs = { "fserr_xfs_force_shutdown_tp" }, .module_btf = "xfs" },
	{ .name = "kprobe", .programs = { "fserr_xfs_do_force_shutdown_kp" }, .module_btf = "xfs" },
};

static const struct probe_variant xfs_fs_health_variants[] = {
	{ .name = "tracepoint", .programs = { "fserr_xfs_fs_mark_corrupt_tp", "fserr_xfs_fs_mark_sick_tp",
					      "fserr_xfs_fs_unfixed_corruption_tp" }, .module_btf = "xfs" },
	{ .name = "sick", .programs = { "fserr_xfs_fs_sick_only_tp" }, .module_btf = "xfs" },
};

static const struct probe_variant xfs_group_health_variants[] = {
	{ .name = "tracepoint", .programs = { "fserr_xfs_group_mark_corrupt_tp", "fserr_xfs_group_mark_sick_tp",
					      "fserr_xfs_group_unfixed_corruption_tp" }, .module_btf = "xfs" },
	{ .name = "ag", .programs = { "fserr_xfs_ag_mark_corrupt_tp", "fserr_xfs_ag_mark_sick_tp",
				      "fserr_xfs_ag_unfixed_corruption_tp" }, .module_btf = "xfs" },
	{ .name = "ag_sick", .programs = { "fserr_xfs_ag_sick_only_tp" }, .module_btf = "xfs" },
};

static const struct probe_variant xfs_inode_health_variants[] = {
	{ .name = "tracepoint", .programs = { "fserr_xfs_inode_mark_corrupt_tp", "fserr_xfs_inode_mark_sick_tp",
					      "fserr_xfs_inode_unfixed_corruption_tp" }, .module_btf = "xfs" },
	{ .name = "sick", .programs = { "fserr_xfs_inode_sick_only_tp" }, .module_btf = "xfs" },
};

static const struct probe_variant xfs_btree_variants[] = {
	{ .name = "tracepoint", .programs = { "fserr_xfs_btree_corrupt_tp" }, .module_btf = "xfs" },
};

#define POINT(n, v) { .name = n, .variants = v, .n_variants = sizeof(v) / sizeof(v[0]) }

/* The xfs points are their own: while xfs (a module) is absent they fail alone. */
static const struct probe_point fserr_points[] = {
	POINT("ext4_error", ext4_error_variants),
	POINT("ext4_shutdown", ext4_shutdown_variants),
	POINT("block_error", block_error_variants),
	POINT("xfs_shutdown", xfs_shutdown_variants),
	POINT("xfs_fs", xfs_fs_health_variants),
	POINT("xfs_group", xfs_group_health_variants),
	POINT("xfs_inode", xfs_inode_health_variants),
	POINT("xfs_btree", xfs_btree_variants),
};

const char *fserr_kind_name(unsigned int kind)
{
	switch (kind) {
	case FSERR_KIND_CORRUPTION: return "corruption";
	case FSERR_KIND_IO: return "io";
	case FSERR_KIND_SHUTDOWN: return "shutdown";
	}
	return "unknown";
}

const char *fserr_source_name(unsigned int source)
{
	static const char *const names[FSERR_SRC_MAX] = {
		[FSERR_SRC_EXT4_ERROR] = "ext4_error",
		[FSERR_SRC_EXT4_SHUTDOWN] = "ext4_shutdown",
		[FSERR_SRC_BLOCK_RQ_ERROR] = "block_rq_error",
		[FSERR_SRC_BLOCK_RQ_COMPLETE] = "block_rq_complete",
		[FSERR_SRC_XFS_FORCE_SHUTDOWN] = "xfs_force_shutdown",
		[FSERR_SRC_XFS_FS_MARK_CORRUPT] = "xfs_fs_mark_corrupt",
		[FSERR_SRC_XFS_FS_MARK_SICK] = "xfs_fs_mark_sick",
		[FSERR_SRC_XFS_FS_UNFIXED] = "xfs_fs_unfixed_corruption",
		[FSERR_SRC_XFS_GROUP_MARK_CORRUPT] = "xfs_group_mark_corrupt",
		[FSERR_SRC_XFS_GROUP_MARK_SICK] = "xfs_group_mark_sick",
		[FSERR_SRC_XFS_GROUP_UNFIXED] = "xfs_group_unfixed_corruption",
		[FSERR_SRC_XFS_INODE_MARK_CORRUPT] = "xfs_inode_mark_corrupt",
		[FSERR_SRC_XFS_INODE_MARK_SICK] = "xfs_inode_mark_sick",
		[FSERR_SRC_XFS_INODE_UNFIXED] = "xfs_inode_unfixed_corruption",
		[FSERR_SRC_XFS_BTREE_CORRUPT] = "xfs_btree_corrupt",
	};

	return source < FSERR_SRC_MAX && names[source] ? names[source] : "unknown";
}

const char *fserr_reason(unsigned int kind)
{
	switch (kind) {
	case FSERR_KIND_IO: return FSERR_REASON_IO;
	case FSERR_KIND_SHUTDOWN: return FSERR_REASON_SHUTDOWN;
	}
	return FSERR_REASON_CORRUPTION;
}

/* "ENOSPC" for -28; NULL when the record has no errno or it has no name */
static const char *errno_name(const struct fserr_event *e)
{
	if (!(e->has & FSERR_HAS_ERRNO) || e->error >= 0)
		return NULL;
	return strerrorname_np(-e->error);
}

/* The record's kernel strings are bytes of a fixed field: bounded copy */
static void record_function(const struct fserr_event *e, char *out, size_t outlen)
{
	if (e->has & FSERR_HAS_FUNCTION)
		snprintf(out, outlen, "%.*s", FSERR_FUNC_LEN, e->function);
	else
		out[0] = '\0';
}

void fserr_signature(const struct fserr_event *e, char *out, size_t outlen)
{
	char function[FSERR_FUNC_LEN + 1];
	const char *err = errno_name(e);

	record_function(e, function, sizeof(function));
	if (function[0])
		snprintf(out, outlen, "%s/%s", fserr_kind_name(e->kind), function);
	else if (err)
		snprintf(out, outlen, "%s/%s", fserr_kind_name(e->kind), err);
	else
		snprintf(out, outlen, "%s/%s", fserr_kind_name(e->kind), fserr_source_name(e->source));
}

/* "loop3 (ext4 at /mnt/a, /mnt/b and 2 more)" */
static void describe_place(const struct fserr_place *w, char *out, size_t outlen)
{
	size_t len, i;

	if (!w->n_listed) {
		snprintf(out, outlen, "%s (not mounted)", w->device);
		return;
	}
	len = (size_t)snprintf(out, outlen, "%s (%s at ", w->device, w->fstype[0] ? w->fstype : "?");
	for (i = 0; i < w->n_listed && len < outlen; i++)
		len += (size_t)snprintf(out + len, outlen - len, "%s%s", i ? ", " : "", w->mountpoints[i]);
	if (len < outlen && w->n_mounts > w->n_listed)
		len += (size_t)snprintf(out + len, outlen - len, " and %zu more", w->n_mounts - w->n_listed);
	if (len < outlen)
		snprintf(out + len, outlen - len, ")");
}

void fserr_message(const struct fserr_event *e, const struct fserr_place *where, const struct fserr_volume *vol,
		   char *out, size_t outlen)
{
	char place[1024], function[FSERR_FUNC_LEN + 1];
	const char *err = errno_name(e);
	size_t len = 0;

	describe_place(where, place, sizeof(place));
	record_function(e, function, sizeof(function));
	if (vol) {
		const char *pv = fserr_volume_pv(vol);

		len = (size_t)snprintf(out, outlen, "Volume %s%s%s%s%s%s of this pod is on %s: ", vol->name,
				       pv ? " (PersistentVolume " : "", pv ? pv : "",
				       pv && vol->pvc[0] ? ", PersistentVolumeClaim " : "", pv ? vol->pvc : "",
				       pv ? ")" : "", where->device);
	}
	if (len >= outlen)
		return;
	switch (e->kind) {
	case FSERR_KIND_IO:
		len += (size_t)snprintf(out + len, outlen - len, "%s error %s on %s", vol ? "I/O" : "Block I/O",
					err ? err : "(no errno)", place);
		if (len < outlen && (e->has & FSERR_HAS_SECTOR))
			len += (size_t)snprintf(out + len, outlen - len, ", %.*s request of %u sectors at sector %llu",
						FSERR_RWBS_LEN, e->rwbs, e->nr_sector, (unsigned long long)e->sector);
		break;
	case FSERR_KIND_SHUTDOWN:
		len += (size_t)snprintf(out + len, outlen - len, "%cilesystem shut down on %s", vol ? 'f' : 'F', place);
		break;
	default:
		len += (size_t)snprintf(out + len, outlen - len, "%cilesystem corruption on %s", vol ? 'f' : 'F', place);
		break;
	}
	if (len < outlen && function[0])
		len += (size_t)snprintf(out + len, outlen - len, " in %s:%u", function, e->line);
	if (len < outlen)
		snprintf(out + len, outlen - len, " (kernel hook %s%s)", fserr_source_name(e->source),
			 e->source == FSERR_SRC_EXT4_ERROR ? "; ext4 reports no errno" : "");
}

SIGNAL_SKELETON(fserr)

static int fserr_configure(struct signal_runtime *rt)
{
	struct fserr_bpf *skel = rt->skel;

	skel->rodata->records_per_sec = FSERR_RATE_PER_SEC;
	skel->rodata->records_burst = FSERR_RATE_BURST;
	return 0;
}

/*
 * Ask for the claims of the CSI volumes mounted now, without waiting, so a
 * record finds them answered. Bounded: a node with more of them than the
 * cache holds asks for the rest when their errors come.
 */
static void prefetch_claims(struct fserr_state *st)
{
	const struct fserr_mounts *t = &st->mounts.table;
	struct fserr_volume v;
	size_t i, asked = 0;
	char claim[FSERR_PVC_LEN];

	for (i = 0; i < t->n && asked < FSERR_PV_CACHE / 2; i++) {
		if (fserr_volume_of(st->kubelet_root, t->v[i].mountpoint, &v) || !fserr_volume_pv(&v))
			continue;
		fserr_pvs_claim(st->pvs, fserr_volume_pv(&v), claim, sizeof(claim), 0);
		asked++;
	}
}

/* Refresh the mount table when it changed; called with st->lock held. */
static void refresh_mounts(struct fserr_state *st)
{
	unsigned long reads = st->mounts.reads;

	if (fserr_mounts_watch_refresh(&st->mounts) == 0)
		st->have_mounts = true;
	if (st->pvs && st->mounts.reads != reads)
		prefetch_claims(st);
}

/* The first mount's fstype of major:minor, or "". */
static const char *mounted_fstype(const struct fserr_state *st, unsigned int major, unsigned int minor)
{
	size_t idx;

	if (st->have_mounts && fserr_mounts_find(&st->mounts.table, major, minor, &idx, 1))
		return st->mounts.table.v[idx].fstype;
	return "";
}

/*
 * Name and fstype of dev, cached once known (the labels of a series must not
 * change, and a detached loop device has no sysfs entry left). With the cache
 * full, *tmp is filled and returned instead. Called with st->lock held.
 */
static const struct fserr_devinfo *devinfo(struct fserr_state *st, __u32 dev, struct fserr_devinfo *tmp)
{
	unsigned int major = FSERR_DEV_MAJOR(dev), minor = FSERR_DEV_MINOR(dev);
	struct fserr_devinfo *d = NULL;
	size_t i;

	for (i = 0; i < st->n_devs; i++)
		if (st->devs[i].dev == dev) {
			d = &st->devs[i];
			break;
		}
	if (!d) {
		d = st->n_devs < FSERR_MAX_DEVICES ? &st->devs[st->n_devs++] : tmp;
		memset(d, 0, sizeof(*d));
		d->dev = dev;
		fserr_device_name(FSERR_SYSFS, major, minor, d->name, sizeof(d->name));
	}
	if (!d->fstype[0])
		snprintf(d->fstype, sizeof(d->fstype), "%s", mounted_fstype(st, major, minor));
	return d;
}

/*
 * The fstype label of a series: the filesystem's own hooks say which driver
 * it is, whatever the device held before (loop and dm devices are reused);
 * block errors take the device's fstype from the first time it was seen.
 */
static const char *series_fstype(unsigned int source, const struct fserr_devinfo *d)
{
	if (source == FSERR_SRC_EXT4_ERROR || source == FSERR_SRC_EXT4_SHUTDOWN)
		return "ext4";
	if (source >= FSERR_SRC_XFS_FORCE_SHUTDOWN && source < FSERR_SRC_MAX)
		return "xfs";
	return d->fstype;
}

struct count_walk {
	struct fserr_state *st;
	struct bpf_map_shape shape;
};

static int count_visit(const void *key, const void *value, void *ctx)
{
	const struct fserr_key *k = key;
	struct count_walk *cw = ctx;
	struct fserr_devinfo tmp;
	const struct fserr_devinfo *d = devinfo(cw->st, k->dev, &tmp);
	uint64_t sum = 0;
	const char *labels[4] = { d->name, series_fstype(k->source, d), fserr_kind_name(k->kind),
				  fserr_source_name(k->source) };

	bpf_percpu_sum_u64(&cw->shape, value, 1, &sum);
	metrics_counter_set(cw->st->errors, labels, (double)sum);
	return 0;
}

static int bucket_visit(const void *key, const void *value, void *ctx)
{
	const struct fserr_bucket *b = value;
	struct fserr_state *st = ctx;
	struct fserr_devinfo tmp;
	const struct fserr_devinfo *d;
	const char *labels[1];

	if (!*(const __u32 *)key) {
		labels[0] = "other"; /* devices beyond FSERR_MAX_DEVICES share one bucket */
	} else {
		d = devinfo(st, *(const __u32 *)key, &tmp);
		labels[0] = d->name;
	}
	metrics_counter_set(st->suppressed, labels, (double)b->suppressed);
	return 0;
}

static void fserr_collect(struct signal_runtime *rt, struct metrics_registry *reg)
{
	struct fserr_bpf *skel = rt->skel;
	struct fserr_state *st = rt->priv;
	struct count_walk cw = { .st = st };
	__u32 slot = FSERR_STAT_UNCOUNTED;
	uint64_t uncounted = 0;
	int fd = bpf_map__fd(skel->maps.fserr_counts);

	struct timespec now;
	int err;

	clock_gettime(CLOCK_MONOTONIC, &now);
	err = fserr_late_attach(st->late, rt, (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec);
	if (err < 0)
		log_warn("fserr: cannot attach the xfs probe points now that xfs is loaded: %s", strerror(-err));
	pthread_mutex_lock(&st->lock);
	refresh_mounts(st);
	if (!bpf_map_shape_of(fd, &cw.shape))
		bpf_map_walk(fd, count_visit, &cw);
	bpf_map_walk(bpf_map__fd(skel->maps.fserr_buckets), bucket_visit, st);
	pthread_mutex_unlock(&st->lock);
	if (!bpf_map_sum_u64(bpf_map__fd(skel->maps.fserr_stats), &slot, 1, &uncounted))
		metrics_counter_set(st->uncounted, NULL, (double)uncounted);
}

static int read_u64_file(const char *path, unsigned long long *v)
{
	char text[64];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	text[n] = '\0';
	return sscanf(text, "%llu", v) == 1 ? 0 : -EINVAL;
}

/*
 * ext4 keeps a count of its errors in the superblock (errors_count, with the
 * first and last error's time): a disk that failed while no agent ran still
 * shows. Read once at start-up, for every ext4 filesystem mounted then.
 */
static void export_recorded_errors(struct fserr_state *st)
{
	DIR *d = opendir(FSERR_EXT4_SYSFS);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[512];
		unsigned long long count, first, last;
		const char *labels[2] = { de->d_name, "ext4" };

		if (de->d_name[0] == '.' || !strcmp(de->d_name, "features"))
			continue;
		snprintf(path, sizeof(path), "%s/%s/errors_count", FSERR_EXT4_SYSFS, de->d_name);
		if (read_u64_file(path, &count))
			continue;
		metrics_gauge_set(st->recorded, labels, (double)count);
		snprintf(path, sizeof(path), "%s/%s/first_error_time", FSERR_EXT4_SYSFS, de->d_name);
		if (!read_u64_file(path, &first) && first)
			metrics_gauge_set(st->first_error, labels, (double)first);
		snprintf(path, sizeof(path), "%s/%s/last_error_time", FSERR_EXT4_SYSFS, de->d_name);
		if (!read_u64_file(path, &last) && last)
			metrics_gauge_set(st->last_error, labels, (double)last);
	}
	closedir(d);
}

static const char *const error_labels[] = { "device", "fstype", "kind", "source" };
static const char *const recorded_labels[] = { "device", "fstype" };
static const char *const device_label[] = { "device" };

static int fserr_init(struct signal_runtime *rt)
{
	struct metrics_registry *reg = rt->agent->metrics;
	struct fserr_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->lock, NULL);
	st->kubelet_root = rt->agent->cfg && rt->agent->cfg->kubelet_root ? rt->agent->cfg->kubelet_root :
			   FSERR_DEFAULT_KUBELET_ROOT;
	st->errors = metrics_family(reg, "ksight_fs_errors_total",
				    "Filesystem and block device errors seen at the kernel's hooks, every one "
				    "(kind: corruption, io, shutdown; source: the hook).",
				    METRIC_COUNTER, error_labels, 4, NULL, 0);
	st->recorded = metrics_family(reg, "ksight_fs_recorded_errors",
				      "Errors ext4 had recorded in the superblock when ksight started (errors_count).",
				      METRIC_GAUGE, recorded_labels, 2, NULL, 0);
	st->first_error = metrics_family(reg, "ksight_fs_recorded_first_error_timestamp_seconds",
					 "Time of the first error ext4 had recorded when ksight started.",
					 METRIC_GAUGE, recorded_labels, 2, NULL, 0);
	st->last_error = metrics_family(reg, "ksight_fs_recorded_last_error_timestamp_seconds",
					"Time of the last error ext4 had recorded when ksight started.",
					METRIC_GAUGE, recorded_labels, 2, NULL, 0);
	st->suppressed = metrics_family(reg, "ksight_fs_records_suppressed_total",
					"fserr records the per-device rate limit kept from the trace and Events "
					"(the counts above include them).",
					METRIC_COUNTER, device_label, 1, NULL, 0);
	st->uncounted = metrics_family(reg, "ksight_fs_errors_uncounted_total",
				       "Errors of more (device, kind, source) combinations than the kernel map holds.",
				       METRIC_COUNTER, NULL, 0, NULL, 0);
	st->late = fserr_late_new();
	if (!st->late || !st->errors || !st->recorded || !st->first_error || !st->last_error || !st->suppressed ||
	    !st->uncounted) {
		fserr_late_free(st->late);
		pthread_mutex_destroy(&st->lock);
		free(st);
		return -ENOMEM;
	}
	/* before the first mount table: its CSI volumes' claims are asked for at once */
	st->pvs = fserr_pvs_new(k8s_api_config(rt->agent));
	/* without the host's mountinfo, records still name the device */
	if (fserr_mounts_watch_open(&st->mounts, FSERR_MOUNTINFO) == 0) {
		refresh_mounts(st);
	}
	export_recorded_errors(st);
	if (rt->agent->cfg && rt->agent->cfg->mode == MODE_RUN && rt->agent->cfg->node_conditions)
		st->condition = fserr_condition_watch_start(rt->agent, FSERR_MOUNTINFO);
	rt->priv = st;
	return 0;
}

static void fserr_fini(struct signal_runtime *rt)
{
	struct fserr_state *st = rt->priv;

	if (!st)
		return;
	fserr_condition_watch_stop(st->condition);
	fserr_pvs_free(st->pvs);
	fserr_late_free(st->late);
	fserr_mounts_watch_close(&st->mounts);
	pthread_mutex_destroy(&st->lock);
	free(st);
	rt->priv = NULL;
}

/* Everything a record is enriched with, copied out of the shared table. */
struct fserr_where {
	struct fserr_devinfo dev;     /* the partition's when the failed request was on one */
	unsigned int major, minor;    /* of dev */
	char disk[64];                /* the whole disk's name when dev is its partition, else "" */
	char mountpoints[FSERR_MAX_LISTED][256];
	const char *mp_ptrs[FSERR_MAX_LISTED];
	size_t n_listed, n_mounts;
	struct fserr_volume vols[FSERR_MAX_VOLUMES];
	size_t n_vols;
};

static void locate(struct fserr_state *st, const struct fserr_event *e, struct fserr_where *w)
{
	unsigned int major = FSERR_DEV_MAJOR(e->dev), minor = FSERR_DEV_MINOR(e->dev);
	struct fserr_partition part;
	struct fserr_devinfo tmp;
	size_t idx[FSERR_MAX_LISTED], i;
	const struct fserr_mounts *t = &st->mounts.table;

	pthread_mutex_lock(&st->lock);
	refresh_mounts(st);
	w->dev = *devinfo(st, e->dev, &tmp);
	/*
	 * A failed request names the whole disk: the record is about the
	 * partition holding the sector (its name, its mounts). A disk gone
	 * (loop detached) has no partitions left: the record stays the disk's.
	 */
	if (e->kind == FSERR_KIND_IO && (e->has & FSERR_HAS_SECTOR) &&
	    !fserr_partition_of(FSERR_SYSFS, major, minor, e->sector, &part)) {
		snprintf(w->disk, sizeof(w->disk), "%s", w->dev.name);
		snprintf(w->dev.name, sizeof(w->dev.name), "%s", part.name);
		major = part.major;
		minor = part.minor;
		w->dev.dev = (__u32)(major << FSERR_MINOR_BITS | minor);
		snprintf(w->dev.fstype, sizeof(w->dev.fstype), "%s", mounted_fstype(st, major, minor));
	}
	w->major = major;
	w->minor = minor;
	if (st->have_mounts) {
		w->n_mounts = fserr_mounts_find(t, major, minor, idx, FSERR_MAX_LISTED);
		/* a record says what is mounted now; the cache may remember the device's previous life */
		if (w->n_mounts)
			snprintf(w->dev.fstype, sizeof(w->dev.fstype), "%s", t->v[idx[0]].fstype);
		w->n_listed = w->n_mounts < FSERR_MAX_LISTED ? w->n_mounts : FSERR_MAX_LISTED;
		for (i = 0; i < w->n_listed; i++) {
			snprintf(w->mountpoints[i], sizeof(w->mountpoints[i]), "%s", t->v[idx[i]].mountpoint);
			w->mp_ptrs[i] = w->mountpoints[i];
		}
		/* every mount of the device, not only the listed ones, may be a pod's volume */
		for (i = 0; i < t->n; i++) {
			struct fserr_volume v;

			if (t->v[i].major != major || t->v[i].minor != minor)
				continue;
			if (!fserr_volume_of(st->kubelet_root, t->v[i].mountpoint, &v))
				fserr_volume_add(w->vols, &w->n_vols, FSERR_MAX_VOLUMES, &v);
		}
	}
	pthread_mutex_unlock(&st->lock);
}

/*
 * The claims of the record's CSI volumes. The first PV not answered yet may
 * hold the record FSERR_PV_WAIT_MS (once per PV and cache lifetime: the
 * answer, or its failure, is kept); the others of the record do not wait.
 */
#define FSERR_PV_WAIT_MS 1000

static void claims(struct fserr_state *st, struct fserr_where *w)
{
	int wait_ms = FSERR_PV_WAIT_MS;
	size_t i;

	for (i = 0; st->pvs && i < w->n_vols; i++) {
		const char *pv = fserr_volume_pv(&w->vols[i]);
		int err;

		if (!pv)
			continue;
		err = fserr_pvs_claim(st->pvs, pv, w->vols[i].pvc, sizeof(w->vols[i].pvc), wait_ms);
		if (err)
			w->vols[i].pvc[0] = '\0';
		if (err == -EAGAIN)
			wait_ms = 0;
	}
}

/* A pod's names from the API's cache; false when unknown (no API, or not yet listed). */
static bool pod_names(struct agent *agent, const struct fserr_volume *v, struct event_common *ev)
{
	snprintf(ev->id.pod_uid, sizeof(ev->id.pod_uid), "%s", v->pod_uid);
	ev->id.container_id[0] = '\0';
	k8s_resolve(agent, ev);
	return ev->pod && ev->pod[0];
}

/* Whether an Event for `key` is due at `now`; *seen: records of it so far (this one included). */
static bool event_due(struct fserr_state *st, const char *key, uint64_t now, uint64_t *seen)
{
	struct fserr_signature_seen *s = NULL, *oldest = &st->sigs[0];
	size_t i;

	for (i = 0; i < FSERR_MAX_SIGNATURES; i++) {
		if (!strcmp(st->sigs[i].key, key)) {
			s = &st->sigs[i];
			break;
		}
		if (st->sigs[i].used < oldest->used)
			oldest = &st->sigs[i];
	}
	if (!s) {
		s = oldest;
		memset(s, 0, sizeof(*s));
		snprintf(s->key, sizeof(s->key), "%s", key);
	}
	s->used = ++st->sig_clock;
	*seen = ++s->seen;
	if (s->last_sent && now - s->last_sent < FSERR_EVENT_INTERVAL_NS)
		return false;
	s->last_sent = now ? now : 1;
	return true;
}

static void append_seen(char *message, size_t len, uint64_t seen)
{
	size_t n = strlen(message);

	if (seen > 1 && n < len)
		snprintf(message + n, len - n, "; %llu such errors recorded by ksight so far "
			 "(ksight_fs_errors_total has the exact count)", (unsigned long long)seen);
}

/*
 * The Events of one record: on the Node, and on each pod with a volume on
 * the device, aggregated by signature (device + kind + function or errno).
 * Kept in one place: the recorder's object kinds are being widened.
 */
static void post_events(struct fserr_state *st, struct agent *agent, const struct fserr_event *e,
			const struct fserr_where *w, struct event_common *pods, const bool *known, const char *comm)
{
	const struct fserr_place place = { .device = w->dev.name, .fstype = w->dev.fstype,
					   .mountpoints = w->mp_ptrs, .n_listed = w->n_listed,
					   .n_mounts = w->n_mounts };
	struct event_common node = { .signal = "fserr", .boot_ns = e->boot_ns, .pid = e->pid, .comm = comm,
				     .cgroup = "", .namespace_ = "", .pod = "", .container = "" };
	char key[192], pod_key[192 + 80], signature[96], message[2048];
	uint64_t seen;
	size_t i;

	fserr_signature(e, signature, sizeof(signature));
	snprintf(key, sizeof(key), "%s/%s", w->dev.name, signature);
	if (event_due(st, key, e->boot_ns, &seen)) {
		fserr_message(e, &place, NULL, message, sizeof(message));
		append_seen(message, sizeof(message), seen);
		k8s_record(agent, &node, fserr_reason(e->kind), message, key);
	}
	for (i = 0; i < w->n_vols; i++) {
		if (!known[i])
			continue;
		snprintf(pod_key, sizeof(pod_key), "%s@%s", key, w->vols[i].pod_uid);
		if (!event_due(st, pod_key, e->boot_ns, &seen))
			continue;
		fserr_message(e, &place, &w->vols[i], message, sizeof(message));
		append_seen(message, sizeof(message), seen);
		pods[i].container = "";
		k8s_record(agent, &pods[i], fserr_reason(e->kind), message, key);
	}
}

static int fserr_handle_event(struct signal_runtime *rt, const void *data, size_t size)
{
	const struct fserr_event *e = data;
	struct fserr_state *st = rt->priv;
	struct event_common ev = { .signal = "fserr", .cgroup = "", .namespace_ = "", .pod = "", .container = "" };
	struct fserr_where *w;
	struct event_common *pods;
	bool known[FSERR_MAX_VOLUMES] = { false };
	char comm[KSIGHT_COMM_LEN + 1], function[FSERR_FUNC_LEN + 1], at[FSERR_FUNC_LEN + 16];
	char podlist[512], details[1024];
	const char *err;
	json_object *obj, *arr, *vols;
	size_t i, plen = 0;

	if (size < sizeof(*e))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	pods = calloc(FSERR_MAX_VOLUMES, sizeof(*pods));
	if (!w || !pods) {
		free(w);
		free(pods);
		return -ENOMEM;
	}
	locate(st, e, w);
	claims(st, w);
	snprintf(comm, sizeof(comm), "%.*s", KSIGHT_COMM_LEN, e->comm);
	record_function(e, function, sizeof(function));
	err = errno_name(e);

	ev.boot_ns = e->boot_ns;
	ev.pid = e->pid;
	ev.comm = comm;
	obj = event_json(rt->agent, &ev);
	event_json_add_string(obj, "device", w->dev.name);
	json_object_object_add(obj, "major", json_object_new_int64(w->major));
	json_object_object_add(obj, "minor", json_object_new_int64(w->minor));
	json_object_object_add(obj, "disk", w->disk[0] ? json_object_new_string(w->disk) : NULL);
	event_json_add_string(obj, "fstype", w->dev.fstype);
	arr = json_object_new_array();
	for (i = 0; i < w->n_listed; i++)
		json_object_array_add(arr, json_object_new_string(w->mountpoints[i]));
	json_object_object_add(obj, "mountpoints", arr);
	json_object_object_add(obj, "mounts_total", json_object_new_int64((int64_t)w->n_mounts));
	event_json_add_string(obj, "kind", fserr_kind_name(e->kind));
	event_json_add_string(obj, "source", fserr_source_name(e->source));
	if (function[0])
		event_json_add_string(obj, "function", function);
	else
		json_object_object_add(obj, "function", NULL);
	json_object_object_add(obj, "line", function[0] ? json_object_new_int64(e->line) : NULL);
	json_object_object_add(obj, "errno", err ? json_object_new_string(err) : NULL);
	if (e->has & FSERR_HAS_SECTOR) {
		json_object_object_add(obj, "sector", json_object_new_int64((int64_t)e->sector));
		json_object_object_add(obj, "nr_sector", json_object_new_int64(e->nr_sector));
	}
	if (e->has & FSERR_HAS_FLAGS)
		json_object_object_add(obj, "flags", json_object_new_int64(e->flags));

	arr = json_object_new_array();
	vols = json_object_new_array();
	podlist[0] = '\0';
	for (i = 0; i < w->n_vols; i++) {
		json_object *v = json_object_new_object();
		const char *pv = fserr_volume_pv(&w->vols[i]);
		char name[330];

		known[i] = pod_names(rt->agent, &w->vols[i], &pods[i]);
		if (known[i])
			snprintf(name, sizeof(name), "%s/%s", pods[i].namespace_, pods[i].pod);
		else
			snprintf(name, sizeof(name), "uid:%s", w->vols[i].pod_uid);
		if (known[i])
			json_object_array_add(arr, json_object_new_string(name));
		if (plen < sizeof(podlist))
			plen += (size_t)snprintf(podlist + plen, sizeof(podlist) - plen, "%s%s", plen ? "," : "", name);
		event_json_add_string(v, "pod_uid", w->vols[i].pod_uid);
		json_object_object_add(v, "pod", known[i] ? json_object_new_string(name) : NULL);
		event_json_add_string(v, "plugin", w->vols[i].plugin);
		event_json_add_string(v, "volume", w->vols[i].name);
		json_object_object_add(v, "pv", pv ? json_object_new_string(pv) : NULL);
		json_object_object_add(v, "pvc", w->vols[i].pvc[0] ? json_object_new_string(w->vols[i].pvc) : NULL);
		json_object_array_add(vols, v);
	}
	json_object_object_add(obj, "pods", arr);
	json_object_object_add(obj, "volumes", vols);

	if (function[0])
		snprintf(at, sizeof(at), "%s:%u", function, e->line);
	else
		snprintf(at, sizeof(at), "-");
	snprintf(details, sizeof(details), "%-10s %-6s %-28s %-10s %-22s %-30s %-8s %s", w->dev.name,
		 w->dev.fstype[0] ? w->dev.fstype : "-", w->n_listed ? w->mountpoints[0] : "-",
		 fserr_kind_name(e->kind), fserr_source_name(e->source), at, err ? err : "-",
		 podlist[0] ? podlist : "-");
	event_emit(rt->agent, &ev, obj, details);

	post_events(st, rt->agent, e, w, pods, known, comm);
	fserr_condition_watch_report(st->condition, &(struct fserr_condition_error){
		.major = FSERR_DEV_MAJOR(e->dev), .minor = FSERR_DEV_MINOR(e->dev), .kind = e->kind,
		.device = w->dev.name, .fstype = w->dev.fstype, .where = function[0] ? at : "" });
	free(pods);
	free(w);
	return 0;
}

const struct signal_def fserr_signal = {
	.name = "fserr",
	.summary = "filesystem corruption, shutdowns and block I/O errors, per device, mount and pod volume",
	.points = fserr_points,
	.n_points = sizeof(fserr_points) / sizeof(fserr_points[0]),
	.ringbuf_map = "fserr_events",
	SIGNAL_SKELETON_FIELDS(fserr),
	.configure = fserr_configure,
	.init = fserr_init,
	.handle_event = fserr_handle_event,
	.collect = fserr_collect,
	.fini = fserr_fini,
};
