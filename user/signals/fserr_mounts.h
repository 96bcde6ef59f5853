/*
 * fserr's view of the host's block devices: which mounts sit on a kernel
 * dev_t (mountinfo, bind mounts included) and the device's name in
 * /sys/class/block. The parsers are pure; fserr_mounts_watch_* do the I/O.
 */
#ifndef KSIGHT_FSERR_MOUNTS_H
#define KSIGHT_FSERR_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>

/* Bounds: a node with more mounts or a bigger mountinfo keeps the first ones. */
#define FSERR_MAX_MOUNTS    20000
#define FSERR_MOUNTINFO_MAX (16u << 20)

struct fserr_mount {
	unsigned int id;           /* the mount ID (first field): a new one for every new mount */
	unsigned int major, minor; /* from the "MAJ:MIN" field: plain numbers, no encoding */
	const char *root;          /* the mount's root inside its filesystem ("/" unless a bind) */
	const char *mountpoint;    /* unescaped (\040 -> ' ') */
	const char *fstype;
	const char *source;
};

struct fserr_mounts {
	struct fserr_mount *v;
	size_t n;
	size_t malformed; /* lines skipped */
	bool truncated;   /* more than FSERR_MAX_MOUNTS lines (or the input was cut) */
	char *strings;    /* one copy of the text the entries point into */
};

/* Parse mountinfo text into *out (replacing nothing: free it first). 0 or -ENOMEM. */
int fserr_mounts_parse(const char *text, size_t len, struct fserr_mounts *out);
void fserr_mounts_free(struct fserr_mounts *m);

/* Indexes of the mounts of major:minor into idx[0..max); returns how many there are. */
size_t fserr_mounts_find(const struct fserr_mounts *m, unsigned int major, unsigned int minor,
			 size_t *idx, size_t max);

/* DEVNAME= of a uevent file's text into out; 0 or -ENOENT. */
int fserr_uevent_devname(const char *text, size_t len, char *out, size_t outlen);

/*
 * The name /sys/class/block gives major:minor ("loop0", "nvme0n1p1", "dm-3"):
 * DEVNAME from <sysfs>/dev/block/MAJ:MIN/uevent, else the link's last
 * component; "MAJ:MIN" when the device is gone or unknown. Returns 0 when
 * sysfs named it, -ENOENT when out is the number.
 */
int fserr_device_name(const char *sysfs_root, unsigned int major, unsigned int minor, char *out,
		      size_t outlen);

/*
 * A mountinfo file kept open: poll() reports POLLPRI|POLLERR on it after a
 * mount or unmount in its namespace, so a read is needed only then.
 */
struct fserr_mounts_watch {
	int fd;
	struct fserr_mounts table;
	unsigned long reads; /* how many times the file was read */
};

int fserr_mounts_watch_open(struct fserr_mounts_watch *w, const char *path);
/* Re-read if the mounts changed since the last read (or never read); 0 or -errno (table kept). */
int fserr_mounts_watch_refresh(struct fserr_mounts_watch *w);
void fserr_mounts_watch_close(struct fserr_mounts_watch *w);

#endif
