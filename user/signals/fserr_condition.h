/*
 * fserr's side of the Node condition (--node-conditions): which mounted
 * filesystems have reported corruption or a shutdown since they were
 * mounted.
 *
 * A filesystem is a device's superblock, alive while any mount of it is:
 * an error on major:minor marks every mount the host's mountinfo lists for
 * it then (their mount IDs). A mount of the same device that appears while
 * one of those is still mounted shares the superblock, so it joins the set;
 * once none of the set is in mountinfo any more, the filesystem was
 * unmounted, and a later mount of the device (a new mount ID) is clean
 * until it reports an error itself. `mount -o remount` keeps the mount ID
 * and the superblock, and with them the mark: only unmounting clears it.
 * Block I/O errors never mark anything (the disk failed a request, the
 * filesystem did not say it is damaged).
 *
 * The tracking (fserr_condition_*) is pure; fserr_condition_watch_* is the
 * I/O: its own view of mountinfo, a thread that follows unmounts, and the
 * condition handed to the Kubernetes side (k8s_node_condition_set).
 */
#ifndef KSIGHT_FSERR_CONDITION_H
#define KSIGHT_FSERR_CONDITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fserr_mounts.h"

/* Filesystems marked at once (beyond: counted, the condition stays True), mount IDs of one, listed in a message. */
#define FSERR_CONDITION_MAX         64
#define FSERR_CONDITION_MAX_IDS     32
#define FSERR_CONDITION_MESSAGE_MAX 1024

/* The condition's reasons: the Events' ones while True (fserr_signal.h), this one while False. */
#define FSERR_CONDITION_REASON_CLEAR  "NoFilesystemCorruption"
#define FSERR_CONDITION_MESSAGE_CLEAR \
	"No mounted filesystem has reported corruption or a shutdown since it was mounted"

/* One error as fserr saw it. */
struct fserr_condition_error {
	unsigned int major, minor; /* the kernel's dev_t, decoded */
	unsigned int kind;         /* FSERR_KIND_*: only corruption and shutdown mark */
	const char *device;        /* "loop3" */
	const char *fstype;        /* "ext4"; "" when unknown */
	const char *where;         /* "ext4_readdir:123", or "" */
};

struct fserr_condition_fs {
	unsigned int major, minor;
	unsigned int kinds;        /* bit (1 << FSERR_KIND_*) of every kind reported */
	char device[64];
	char fstype[32];
	char where[96];            /* the first error's function:line, "" if it had none */
	unsigned int ids[FSERR_CONDITION_MAX_IDS];
	size_t n_ids;
	uint64_t errors;           /* reported since it was marked */
};

struct fserr_condition {
	struct fserr_condition_fs fs[FSERR_CONDITION_MAX];
	size_t n;
	uint64_t not_kept;         /* errors of filesystems beyond FSERR_CONDITION_MAX */
	bool overflow;             /* some of them are still mounted, as far as is known */
};

/*
 * An error against the mount table `t` as it is now. 1 when the condition's
 * description changed (a filesystem newly marked, or a new kind), 0 when
 * not, -ENOENT when no mount of the device is listed (nothing to mark), or
 * -EINVAL for an error that does not mark (block I/O).
 */
int fserr_condition_report(struct fserr_condition *c, const struct fserr_mounts *t,
			   const struct fserr_condition_error *e);

/* Follow mounts and unmounts in `t`; true when the description changed (a filesystem cleared, mounts added). */
bool fserr_condition_update(struct fserr_condition *c, const struct fserr_mounts *t);

bool fserr_condition_active(const struct fserr_condition *c);

/*
 * The condition's reason (FilesystemShutDown when any marked filesystem
 * shut down, else FilesystemCorruptionDetected; NoFilesystemCorruption when
 * none) and message: each filesystem's device, type, mount points (those of
 * `t` with a marked ID) and kinds.
 */
const char *fserr_condition_reason(const struct fserr_condition *c);
void fserr_condition_message(const struct fserr_condition *c, const struct fserr_mounts *t, char *out,
			     size_t outlen);

/* ---- the I/O half ---- */

struct agent;
struct fserr_condition_watch;

/*
 * Track from now on against `mountinfo` (the host's), publish False at
 * once, and follow unmounts on a thread of its own. NULL with a logged
 * reason when it cannot (the condition then stays as published last).
 */
struct fserr_condition_watch *fserr_condition_watch_start(struct agent *agent, const char *mountinfo);
/* From the event loop: a mutex, maybe a mountinfo read, never the network. */
void fserr_condition_watch_report(struct fserr_condition_watch *w, const struct fserr_condition_error *e);
void fserr_condition_watch_stop(struct fserr_condition_watch *w);

#endif
