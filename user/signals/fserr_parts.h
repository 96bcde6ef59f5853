/*
 * Block requests fail on the whole disk (block_rq_error names the disk's
 * dev_t and a sector counted from the disk's start), filesystems sit on its
 * partitions: which partition holds the sector, from the start, size and
 * dev files sysfs has for each partition under the disk's directory.
 */
#ifndef KSIGHT_FSERR_PARTS_H
#define KSIGHT_FSERR_PARTS_H

struct fserr_partition {
	unsigned int major, minor;      /* the partition's own */
	char name[64];                  /* as /sys/class/block lists it: "loop5p2", "nvme0n1p1", "sda2" */
	unsigned long long start, size; /* in 512-byte sectors, as sysfs gives them */
};

/*
 * The partition of disk major:minor holding `sector` (512-byte units), read
 * from <sysfs_root>/dev/block/MAJ:MIN/<part>/{start,size,dev}. 0 with *out
 * filled; -ENOENT when the disk is unknown (gone: a detached loop device),
 * has no partitions, or none holds the sector.
 */
int fserr_partition_of(const char *sysfs_root, unsigned int major, unsigned int minor,
		       unsigned long long sector, struct fserr_partition *out);

#endif
