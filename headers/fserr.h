/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The fserr signal's kernel/user ABI: filesystem corruption, shutdowns and
 * block I/O errors. Every error is counted in fserr_counts (exact); each is
 * also a record in fserr_events unless the per-device rate limit holds it back.
 */
#ifndef KSIGHT_FSERR_H
#define KSIGHT_FSERR_H

#include "common.h"

/* dev_t as the kernel encodes it (include/linux/kdev_t.h), not glibc's */
#define FSERR_MINOR_BITS 20
#define FSERR_MINOR_MASK ((1u << FSERR_MINOR_BITS) - 1)
#define FSERR_DEV_MAJOR(dev) ((unsigned int)((dev) >> FSERR_MINOR_BITS))
#define FSERR_DEV_MINOR(dev) ((unsigned int)((dev) & FSERR_MINOR_MASK))

enum fserr_kind {
	FSERR_KIND_CORRUPTION = 1, /* the filesystem found its metadata inconsistent */
	FSERR_KIND_IO = 2,         /* a block request failed */
	FSERR_KIND_SHUTDOWN = 3,   /* the filesystem stopped (xfs shutdown, ext4 goingdown) */
	FSERR_KIND_MAX = 4,
};

/* The hook that saw the error: the metrics' `source` label. */
enum fserr_source {
	FSERR_SRC_EXT4_ERROR = 1,             /* ext4:ext4_error or its kprobes */
	FSERR_SRC_EXT4_SHUTDOWN = 2,          /* ext4:ext4_shutdown */
	FSERR_SRC_BLOCK_RQ_ERROR = 3,         /* block:block_rq_error */
	FSERR_SRC_BLOCK_RQ_COMPLETE = 4,      /* block:block_rq_complete with an error */
	FSERR_SRC_XFS_FORCE_SHUTDOWN = 5,     /* xfs:xfs_force_shutdown or xfs_do_force_shutdown() */
	FSERR_SRC_XFS_FS_MARK_CORRUPT = 6,
	FSERR_SRC_XFS_FS_MARK_SICK = 7,
	FSERR_SRC_XFS_FS_UNFIXED = 8,         /* reported at unmount: still unrepaired */
	FSERR_SRC_XFS_GROUP_MARK_CORRUPT = 9, /* allocation group (xfs_ag_* before the rename) */
	FSERR_SRC_XFS_GROUP_MARK_SICK = 10,
	FSERR_SRC_XFS_GROUP_UNFIXED = 11,
	FSERR_SRC_XFS_INODE_MARK_CORRUPT = 12,
	FSERR_SRC_XFS_INODE_MARK_SICK = 13,
	FSERR_SRC_XFS_INODE_UNFIXED = 14,
	FSERR_SRC_XFS_BTREE_CORRUPT = 15,
	FSERR_SRC_MAX = 16,
};

/* Key of fserr_counts (a per-CPU hash: one u64 per CPU, summed when scraped). */
struct fserr_key {
	__u32 dev;    /* kernel dev_t */
	__u8 kind;    /* enum fserr_kind */
	__u8 source;  /* enum fserr_source */
	__u16 pad;
};

/* fserr_counts holds this many (dev, kind, source); beyond, errors go to fserr_stats */
#define FSERR_MAX_KEYS 4096
/* devices with a rate-limit bucket; a device beyond it is limited as a whole (dev 0) */
#define FSERR_MAX_DEVICES 1024

/* Slots of the per-CPU fserr_stats array. */
enum fserr_stat {
	FSERR_STAT_UNCOUNTED = 0, /* fserr_counts was full: counted here only */
	FSERR_STAT_NR = 1,
};

/* Per-device token bucket, in milli-tokens so the refill keeps sub-token precision. */
struct fserr_bucket {
	__u64 last_ns;      /* last refill, bpf_ktime_get_ns() */
	__s64 tokens_milli; /* may dip below 0 for a moment under races; refunded */
	__u64 suppressed;   /* records not sent for this device */
};

#define FSERR_FUNC_LEN 48
#define FSERR_RWBS_LEN 10

#define FSERR_HAS_FUNCTION (1u << 0) /* function and line are filled */
#define FSERR_HAS_ERRNO    (1u << 1) /* error is a -errno from the kernel */
#define FSERR_HAS_SECTOR   (1u << 2) /* sector, nr_sector and rwbs (block requests) */
#define FSERR_HAS_FLAGS    (1u << 3) /* flags: ext4 shutdown flags, xfs shutdown/sick flags */

struct fserr_event {
	__u64 boot_ns;   /* bpf_ktime_get_boot_ns() */
	__u64 sector;
	__u32 dev;       /* kernel dev_t: MAJOR = dev >> 20, MINOR = dev & 0xfffff */
	__s32 error;     /* -errno when FSERR_HAS_ERRNO */
	__u32 line;
	__u32 nr_sector;
	__u32 flags;     /* the hook's own flags (FSERR_HAS_FLAGS) */
	__u32 aux;       /* xfs: shutdown tag, group index; 0 otherwise */
	__u64 ino;       /* xfs inode events */
	__u32 pid;       /* current task at the hook (often a kworker for I/O) */
	__u8 kind;       /* enum fserr_kind */
	__u8 source;     /* enum fserr_source */
	__u16 has;       /* FSERR_HAS_* */
	char comm[KSIGHT_COMM_LEN];
	char function[FSERR_FUNC_LEN]; /* ext4: the C function; xfs shutdown: the source file */
	char rwbs[FSERR_RWBS_LEN];
	char pad[6];
};

#endif /* KSIGHT_FSERR_H */
