/* fserr's user half, the parts tests call: names, Event reasons and messages. */
#ifndef KSIGHT_FSERR_SIGNAL_H
#define KSIGHT_FSERR_SIGNAL_H

#include <stddef.h>

#include <linux/types.h>

#include "fserr.h"
#include "fserr_pods.h"

/*
 * Event reasons, ksight's own (node-problem-detector uses Ext4Error,
 * Ext4Warning, IOError, XfsHasShutdown, FilesystemIsReadOnly).
 */
#define FSERR_REASON_CORRUPTION "FilesystemCorruptionDetected"
#define FSERR_REASON_SHUTDOWN   "FilesystemShutDown"
#define FSERR_REASON_IO         "BlockDeviceIOError"

const char *fserr_kind_name(unsigned int kind);     /* "corruption", "io", "shutdown", "unknown" */
const char *fserr_source_name(unsigned int source); /* the hook: "ext4_error", ... */
const char *fserr_reason(unsigned int kind);

/* What an Event aggregates on: "corruption/ext4_readdir", "io/ENOSPC", "shutdown/xfs_fsops.c". */
void fserr_signature(const struct fserr_event *e, char *out, size_t outlen);

/* Where the device is: its name, filesystem type and mount points (n of them, some listed). */
struct fserr_place {
	const char *device;
	const char *fstype;              /* "" when not mounted */
	const char *const *mountpoints;
	size_t n_listed;
	size_t n_mounts;                 /* all of them, n_listed or more */
};

/* The Event message; `vol` (NULL on the Node) is the pod's volume on the device. */
void fserr_message(const struct fserr_event *e, const struct fserr_place *where, const struct fserr_volume *vol,
		   char *out, size_t outlen);

#endif
