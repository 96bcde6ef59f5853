/*
 * XFS is a module: its tracepoints exist only while it is loaded, and the
 * loader plans once, at start-up. fserr retries its xfs points later, from
 * its scrape-time collector: once their tracepoints appear, their programs
 * are loaded into a second object that shares the first one's maps (ring
 * buffer, counts, buckets), so the records and counts go where the others do.
 */
#ifndef KSIGHT_FSERR_LATE_H
#define KSIGHT_FSERR_LATE_H

#include <stdint.h>

#include "signal_def.h"

#define FSERR_LATE_RETRY_NS (30ULL * 1000000000ULL)

struct fserr_late;

struct fserr_late *fserr_late_new(void);
/*
 * At most every FSERR_LATE_RETRY_NS: attach the first variant whose
 * tracepoints all exist of every point named "xfs_*" that has none attached,
 * and mark it attached in rt->status. Returns the points attached by this
 * call, 0 when none was due, or -errno.
 */
int fserr_late_attach(struct fserr_late *late, struct signal_runtime *rt, uint64_t now_ns);
void fserr_late_free(struct fserr_late *late);

#endif
