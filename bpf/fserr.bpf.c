// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fserr: filesystem corruption, filesystem shutdowns and failed block
 * requests, at the kernel's own hooks.
 *
 * Every error is counted in fserr_counts, keyed by (dev, kind, source): the
 * metric is exact whatever the kernel log's rate limit printed. Each error is
 * also a ring-buffer record (function, line, errno) unless its device's token
 * bucket is empty; those are counted as suppressed, per device and in
 * ksight_ringbuf_stats.
 *
 * Probe points and their variants (best first) are listed in
 * user/signals/fserr.c. The XFS ones are points of their own: xfs is a module
 * on most kernels and its tracepoints exist only while it is loaded.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "fserr.h"
#include "ringbuf.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Records per second and burst per device; set by the loader before load. */
const volatile __u64 records_per_sec = 10;
const volatile __u64 records_burst = 20;

/*
 * 64 KiB: 450 records of 144 bytes, the full burst of 22 devices at once
 * before user space reads any (it reads as they come); beyond, a record is
 * counted lost. User space maps the ring twice over: 128 KiB of RSS.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} fserr_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH); /* errors are rare: a per-CPU map's start-up allocations would buy nothing */
	__uint(max_entries, FSERR_MAX_KEYS);
	__type(key, struct fserr_key);
	__type(value, __u64);
} fserr_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FSERR_MAX_DEVICES);
	__type(key, __u32);
	__type(value, struct fserr_bucket);
} fserr_buckets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FSERR_STAT_NR);
	__type(key, __u32);
	__type(value, __u64);
} fserr_stats SEC(".maps");

/* Count one error; true when it is the first of its (dev, kind, source). */
static __always_inline bool count_error(__u32 dev, __u8 kind, __u8 source)
{
	struct fserr_key key = { .dev = dev, .kind = kind, .source = source };
	__u64 one = 1, *v;
	__u32 slot = FSERR_STAT_UNCOUNTED;

	v = bpf_map_lookup_elem(&fserr_counts, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return false;
	}
	/* -EEXIST: another CPU created it just now */
	if (!bpf_map_update_elem(&fserr_counts, &key, &one, BPF_NOEXIST))
		return true;
	v = bpf_map_lookup_elem(&fserr_counts, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return false;
	}
	v = bpf_map_lookup_elem(&fserr_stats, &slot);
	if (v)
		*v += 1;
	return false;
}

static __always_inline struct fserr_bucket *bucket_of(__u32 dev, __u64 now)
{
	struct fserr_bucket fresh = { .last_ns = now, .tokens_milli = (__s64)records_burst * 1000 };
	struct fserr_bucket *b = bpf_map_lookup_elem(&fserr_buckets, &dev);
	__u32 shared = 0;

	if (b)
		return b;
	bpf_map_update_elem(&fserr_buckets, &dev, &fresh, BPF_NOEXIST);
	b = bpf_map_lookup_elem(&fserr_buckets, &dev);
	if (b)
		return b;
	/* more devices than buckets: the rest share dev 0's (no real device is 0:0) */
	bpf_map_update_elem(&fserr_buckets, &shared, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&fserr_buckets, &shared);
}

/*
 * Token bucket per device. Tracing programs cannot take bpf_spin_lock, and
 * atomics that return a value (fetch-add, compare-and-swap: 5.12) are refused
 * by older kernels in any instruction of a program, reached or not (5.10's
 * verifier checks every one before it runs), so the bucket is updated with
 * plain loads and stores: two CPUs at the same instant may both take the last
 * token, at most one extra record per CPU. The counts are exact regardless
 * (fserr_counts), and every error not recorded is counted as suppressed.
 */
static __always_inline bool record_allowed(__u32 dev)
{
	__s64 cap = (__s64)records_burst * 1000, tokens;
	__u64 now = bpf_ktime_get_ns(), last, delta;
	struct fserr_bucket *b = bucket_of(dev, now);

	if (!b)
		return true;
	last = b->last_ns;
	tokens = b->tokens_milli;
	if (now > last) {
		delta = now - last;
		if (delta > 1000000000000ULL) /* 1000 s: more than refills any bucket, no overflow */
			delta = 1000000000000ULL;
		/* milli-tokens; last_ns moves only when one is added, so slow trickles add up */
		if (delta * records_per_sec / 1000000 > 0) {
			tokens += (__s64)(delta * records_per_sec / 1000000);
			if (tokens > cap)
				tokens = cap;
			b->last_ns = now;
		}
	}
	if (tokens >= 1000) {
		b->tokens_milli = tokens - 1000;
		return true;
	}
	b->tokens_milli = tokens;
	__sync_fetch_and_add(&b->suppressed, 1); /* result unused: a plain atomic add, any kernel */
	return false;
}

/*
 * Count the error; a zeroed record to fill and submit, or NULL (limited, or
 * the ring is full). The first error of a (dev, kind, source) always gets a
 * record: an xfs shutdown must not be lost behind a storm of corruption.
 */
static __always_inline struct fserr_event *fserr_begin(__u32 dev, __u8 kind, __u8 source)
{
	struct fserr_event *e;
	bool first = count_error(dev, kind, source);

	if (!first && !record_allowed(dev)) {
		ringbuf_count(KSIGHT_RB_SUPPRESSED);
		return NULL;
	}
	e = ringbuf_reserve(&fserr_events, struct fserr_event);
	if (!e)
		return NULL;
	__builtin_memset(e, 0, sizeof(*e));
	e->boot_ns = bpf_ktime_get_boot_ns();
	e->dev = dev;
	e->kind = kind;
	e->source = source;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	return e;
}

static __always_inline void ext4_error_common(__u32 dev, const char *function, __u32 line)
{
	struct fserr_event *e = fserr_begin(dev, FSERR_KIND_CORRUPTION, FSERR_SRC_EXT4_ERROR);

	if (!e)
		return;
	bpf_probe_read_kernel_str(e->function, sizeof(e->function), function);
	e->line = line;
	e->has = FSERR_HAS_FUNCTION; /* ext4_error carries no errno */
	ringbuf_submit(e);
}

/*
 * TRACE_EVENT(ext4_error, TP_PROTO(struct super_block *sb, const char *function,
 * unsigned int line)): from __ext4_error, __ext4_error_inode and
 * __ext4_error_file, before the message's rate limit is applied.
 */
SEC("tracepoint/ext4/ext4_error")
int fserr_ext4_error_tp(struct trace_event_raw_ext4_error *ctx)
{
	ext4_error_common(ctx->dev, ctx->function, ctx->line);
	return 0;
}

/* kprobe fallback: kernels before the ext4_error tracepoint (absent in 4.15, present by 4.18). */
SEC("kprobe/__ext4_error")
int BPF_KPROBE(fserr_ext4_error_kp, struct super_block *sb, const char *function, unsigned int line)
{
	ext4_error_common(BPF_CORE_READ(sb, s_dev), function, line);
	return 0;
}

SEC("kprobe/__ext4_error_inode")
int BPF_KPROBE(fserr_ext4_error_inode_kp, struct inode *inode, const char *function, unsigned int line)
{
	ext4_error_common(BPF_CORE_READ(inode, i_sb, s_dev), function, line);
	return 0;
}

SEC("kprobe/__ext4_error_file")
int BPF_KPROBE(fserr_ext4_error_file_kp, struct file *file, const char *function, unsigned int line)
{
	ext4_error_common(BPF_CORE_READ(file, f_inode, i_sb, s_dev), function, line);
	return 0;
}

/*
 * TRACE_EVENT(ext4_shutdown, TP_PROTO(struct super_block *sb, unsigned long flags)):
 * came with the shutdown ioctl itself (4.11), so no fallback is needed.
 */
SEC("tracepoint/ext4/ext4_shutdown")
int fserr_ext4_shutdown_tp(struct trace_event_raw_ext4_shutdown *ctx)
{
	struct fserr_event *e = fserr_begin(ctx->dev, FSERR_KIND_SHUTDOWN, FSERR_SRC_EXT4_SHUTDOWN);

	if (!e)
		return 0;
	e->flags = ctx->flags;
	e->has = FSERR_HAS_FLAGS;
	ringbuf_submit(e);
	return 0;
}

/* The block_rq_complete layout before the class was renamed block_rq_completion. */
struct trace_event_raw_block_rq_complete___old {
	struct trace_entry ent;
	dev_t dev;
	sector_t sector;
	unsigned int nr_sector;
	int error;
	char rwbs[8];
} __attribute__((preserve_access_index));

static __always_inline void block_error(__u32 dev, __u64 sector, __u32 nr_sector, int error,
					const void *rwbs, __u8 source)
{
	struct fserr_event *e = fserr_begin(dev, FSERR_KIND_IO, source);

	if (!e)
		return;
	e->sector = sector;
	e->nr_sector = nr_sector;
	e->error = error; /* blk_status_to_errno() of the request's status */
	bpf_probe_read_kernel(e->rwbs, 8, rwbs);
	e->has = FSERR_HAS_ERRNO | FSERR_HAS_SECTOR;
	ringbuf_submit(e);
}

/*
 * block_rq_error(struct request *rq, blk_status_t error, unsigned int nr_bytes):
 * from blk_update_request() for a failed non-passthrough request, the same
 * place the "I/O error, dev ..." line is printed (rate-limited).
 */
SEC("tracepoint/block/block_rq_error")
int fserr_block_rq_error_tp(struct trace_event_raw_block_rq_completion *ctx)
{
	block_error(ctx->dev, ctx->sector, ctx->nr_sector, ctx->error, &ctx->rwbs,
		    FSERR_SRC_BLOCK_RQ_ERROR);
	return 0;
}

/* Fallback: kernels before block_rq_error (d5869fdc189f, ~5.18) see every completion here. */
SEC("tracepoint/block/block_rq_complete")
int fserr_block_rq_complete_tp(void *ctx)
{
	if (bpf_core_type_exists(struct trace_event_raw_block_rq_completion)) {
		struct trace_event_raw_block_rq_completion *c = ctx;

		if (c->error)
			block_error(c->dev, c->sector, c->nr_sector, c->error, &c->rwbs,
				    FSERR_SRC_BLOCK_RQ_COMPLETE);
	} else {
		struct trace_event_raw_block_rq_complete___old *c = ctx;

		if (c->error)
			block_error(c->dev, c->sector, c->nr_sector, c->error, &c->rwbs,
				    FSERR_SRC_BLOCK_RQ_COMPLETE);
	}
	return 0;
}

/*
 * XFS types, from module BTF when xfs is a module: declared here (not taken
 * from vmlinux.h, which lacks them then) and guarded by bpf_core_type_exists()
 * so every program loads even while xfs is absent.
 */
struct trace_event_raw_xfs_force_shutdown___fserr {
	struct trace_entry ent;
	dev_t dev;
	int ptag;
	int flags;
	u32 __data_loc_fname;
	int line_num;
} __attribute__((preserve_access_index));

struct trace_event_raw_xfs_fs_corrupt_class___fserr {
	struct trace_entry ent;
	dev_t dev;
	unsigned int flags;
} __attribute__((preserve_access_index));

struct trace_event_raw_xfs_group_corrupt_class___fserr {
	struct trace_entry ent;
	dev_t dev;
	uint32_t index;
	unsigned int flags;
} __attribute__((preserve_access_index));

/* the allocation-group class before xfs_ag_* became xfs_group_* */
struct trace_event_raw_xfs_ag_corrupt_class___fserr {
	struct trace_entry ent;
	dev_t dev;
	uint32_t agno;
	unsigned int flags;
} __attribute__((preserve_access_index));

struct trace_event_raw_xfs_inode_corrupt_class___fserr {
	struct trace_entry ent;
	dev_t dev;
	u64 ino;
	unsigned int flags;
} __attribute__((preserve_access_index));

struct trace_event_raw_xfs_buf_class___fserr {
	struct trace_entry ent;
	dev_t dev;
} __attribute__((preserve_access_index));

struct xfs_mount___fserr {
	struct super_block *m_super;
} __attribute__((preserve_access_index));

static __always_inline void xfs_shutdown(__u32 dev, int ptag, int flags, __u8 source, const char *fname,
					 __u32 line)
{
	struct fserr_event *e = fserr_begin(dev, FSERR_KIND_SHUTDOWN, source);

	if (!e)
		return;
	e->flags = (__u32)flags;
	e->aux = (__u32)ptag;
	e->line = line;
	e->has = FSERR_HAS_FLAGS | FSERR_HAS_FUNCTION;
	bpf_probe_read_kernel_str(e->function, sizeof(e->function), fname);
	ringbuf_submit(e);
}

/*
 * xfs_force_shutdown(struct xfs_mount *mp, int ptag, int flags, const char *fname,
 * int line_num): fname is the source file that shut the filesystem down.
 */
SEC("tracepoint/xfs/xfs_force_shutdown")
int fserr_xfs_force_shutdown_tp(void *ctx)
{
	struct trace_event_raw_xfs_force_shutdown___fserr *c = ctx;
	__u32 off;

	if (!bpf_core_type_exists(struct trace_event_raw_xfs_force_shutdown___fserr))
		return 0;
	off = c->__data_loc_fname & 0xffff;
	xfs_shutdown(c->dev, c->ptag, c->flags, FSERR_SRC_XFS_FORCE_SHUTDOWN, (const char *)ctx + off,
		     (__u32)c->line_num);
	return 0;
}

/* kprobe fallback: kernels before the xfs_force_shutdown tracepoint (5.17/5.18 era). */
SEC("kprobe/xfs_do_force_shutdown")
int BPF_KPROBE(fserr_xfs_do_force_shutdown_kp, void *mp, u32 flags, const char *fname, int line)
{
	struct super_block *sb;

	if (!bpf_core_type_exists(struct xfs_mount___fserr))
		return 0;
	sb = BPF_CORE_READ((struct xfs_mount___fserr *)mp, m_super);
	xfs_shutdown(BPF_CORE_READ(sb, s_dev), 0, (int)flags, FSERR_SRC_XFS_FORCE_SHUTDOWN, fname,
		     (__u32)line);
	return 0;
}

static __always_inline void xfs_health(__u32 dev, __u32 flags, __u32 aux, __u64 ino, __u8 source)
{
	struct fserr_event *e = fserr_begin(dev, FSERR_KIND_CORRUPTION, source);

	if (!e)
		return;
	e->flags = flags; /* XFS_SICK_* of the structure */
	e->aux = aux;
	e->ino = ino;
	e->has = FSERR_HAS_FLAGS;
	ringbuf_submit(e);
}

#define XFS_FS_HEALTH(prog, event, src)                                                          \
	SEC("tracepoint/xfs/" #event)                                                      \
	int prog(void *ctx)                                                  \
	{                                                                                  \
		struct trace_event_raw_xfs_fs_corrupt_class___fserr *c = ctx;              \
		if (!bpf_core_type_exists(struct trace_event_raw_xfs_fs_corrupt_class___fserr)) \
			return 0;                                                          \
		xfs_health(c->dev, c->flags, 0, 0, src);                                   \
		return 0;                                                                  \
	}

#define XFS_GROUP_HEALTH(prog, event, src)                                                       \
	SEC("tracepoint/xfs/" #event)                                                      \
	int prog(void *ctx)                                                  \
	{                                                                                  \
		struct trace_event_raw_xfs_group_corrupt_class___fserr *c = ctx;           \
		if (!bpf_core_type_exists(struct trace_event_raw_xfs_group_corrupt_class___fserr)) \
			return 0;                                                          \
		xfs_health(c->dev, c->flags, c->index, 0, src);                            \
		return 0;                                                                  \
	}

#define XFS_AG_HEALTH(prog, event, src)                                                          \
	SEC("tracepoint/xfs/" #event)                                                      \
	int prog(void *ctx)                                                  \
	{                                                                                  \
		struct trace_event_raw_xfs_ag_corrupt_class___fserr *c = ctx;              \
		if (!bpf_core_type_exists(struct trace_event_raw_xfs_ag_corrupt_class___fserr)) \
			return 0;                                                          \
		xfs_health(c->dev, c->flags, c->agno, 0, src);                             \
		return 0;                                                                  \
	}

#define XFS_INODE_HEALTH(prog, event, src)                                                       \
	SEC("tracepoint/xfs/" #event)                                                      \
	int prog(void *ctx)                                                  \
	{                                                                                  \
		struct trace_event_raw_xfs_inode_corrupt_class___fserr *c = ctx;           \
		if (!bpf_core_type_exists(struct trace_event_raw_xfs_inode_corrupt_class___fserr)) \
			return 0;                                                          \
		xfs_health(c->dev, c->flags, 0, c->ino, src);                              \
		return 0;                                                                  \
	}

/* *_mark_corrupt and *_unfixed_corruption came with 6.9's health rework; *_mark_sick is older (5.2+) */
XFS_FS_HEALTH(fserr_xfs_fs_mark_corrupt_tp, xfs_fs_mark_corrupt, FSERR_SRC_XFS_FS_MARK_CORRUPT)
XFS_FS_HEALTH(fserr_xfs_fs_mark_sick_tp, xfs_fs_mark_sick, FSERR_SRC_XFS_FS_MARK_SICK)
XFS_FS_HEALTH(fserr_xfs_fs_unfixed_corruption_tp, xfs_fs_unfixed_corruption, FSERR_SRC_XFS_FS_UNFIXED)
XFS_GROUP_HEALTH(fserr_xfs_group_mark_corrupt_tp, xfs_group_mark_corrupt, FSERR_SRC_XFS_GROUP_MARK_CORRUPT)
XFS_GROUP_HEALTH(fserr_xfs_group_mark_sick_tp, xfs_group_mark_sick, FSERR_SRC_XFS_GROUP_MARK_SICK)
XFS_GROUP_HEALTH(fserr_xfs_group_unfixed_corruption_tp, xfs_group_unfixed_corruption, FSERR_SRC_XFS_GROUP_UNFIXED)
/* before the xfs_group rework (6.14) the same events were per allocation group */
XFS_AG_HEALTH(fserr_xfs_ag_mark_corrupt_tp, xfs_ag_mark_corrupt, FSERR_SRC_XFS_GROUP_MARK_CORRUPT)
XFS_AG_HEALTH(fserr_xfs_ag_mark_sick_tp, xfs_ag_mark_sick, FSERR_SRC_XFS_GROUP_MARK_SICK)
XFS_AG_HEALTH(fserr_xfs_ag_unfixed_corruption_tp, xfs_ag_unfixed_corruption, FSERR_SRC_XFS_GROUP_UNFIXED)
XFS_INODE_HEALTH(fserr_xfs_inode_mark_corrupt_tp, xfs_inode_mark_corrupt, FSERR_SRC_XFS_INODE_MARK_CORRUPT)
XFS_INODE_HEALTH(fserr_xfs_inode_mark_sick_tp, xfs_inode_mark_sick, FSERR_SRC_XFS_INODE_MARK_SICK)
XFS_INODE_HEALTH(fserr_xfs_inode_unfixed_corruption_tp, xfs_inode_unfixed_corruption, FSERR_SRC_XFS_INODE_UNFIXED)
/* the same hooks once more for the older kernels' sick-only variants: a program attaches once */
XFS_FS_HEALTH(fserr_xfs_fs_sick_only_tp, xfs_fs_mark_sick, FSERR_SRC_XFS_FS_MARK_SICK)
XFS_INODE_HEALTH(fserr_xfs_inode_sick_only_tp, xfs_inode_mark_sick, FSERR_SRC_XFS_INODE_MARK_SICK)
XFS_AG_HEALTH(fserr_xfs_ag_sick_only_tp, xfs_ag_mark_sick, FSERR_SRC_XFS_GROUP_MARK_SICK)

/* DEFINE_BUF_EVENT(xfs_btree_corrupt): a btree block failed its checks. */
SEC("tracepoint/xfs/xfs_btree_corrupt")
int fserr_xfs_btree_corrupt_tp(void *ctx)
{
	struct trace_event_raw_xfs_buf_class___fserr *c = ctx;

	if (!bpf_core_type_exists(struct trace_event_raw_xfs_buf_class___fserr))
		return 0;
	xfs_health(c->dev, 0, 0, 0, FSERR_SRC_XFS_BTREE_CORRUPT);
	return 0;
}
