/*
 * fuse_eio MOUNTPOINT SIZE_MIB [FUSE OPTIONS...]: a FUSE filesystem of two
 * files, for a loop device whose backing file fails reads.
 *
 *   /disk     SIZE_MIB MiB held in memory, read and written like any file;
 *             a read that overlaps the armed byte range fails with EIO.
 *   /control  write "arm START END" (bytes, END excluded) or "disarm";
 *             read "range START END eio_reads N": N is how many reads this
 *             server failed, the exact count of the I/O errors it caused.
 *
 * Both are opened direct_io: the kernel keeps none of their pages, so every
 * read of the loop device reaches this server (with a page cache, a block
 * cached before the range was armed would never fail).
 *
 * Runs in the foreground, single-threaded (-f -s are added); unmount it
 * (fusermount3 -u, umount) or kill it to stop.
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fuse.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *disk;
static size_t disk_size;
/* armed range [bad_start, bad_end); empty when equal */
static unsigned long long bad_start, bad_end;
static atomic_ullong eio_reads;

static int eio_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	memset(st, 0, sizeof(*st));
	if (!strcmp(path, "/")) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (!strcmp(path, "/disk")) {
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = (off_t)disk_size;
		return 0;
	}
	if (!strcmp(path, "/control")) {
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = 0;
		return 0;
	}
	return -ENOENT;
}

static int eio_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
		       enum fuse_readdir_flags flags)
{
	if (strcmp(path, "/"))
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, "disk", NULL, 0, 0);
	fill(buf, "control", NULL, 0, 0);
	return 0;
}

static int eio_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/disk") && strcmp(path, "/control"))
		return -ENOENT;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	return 0;
}

static int eio_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	unsigned long long start = (unsigned long long)off, end;

	if (!strcmp(path, "/control")) {
		char text[128];
		int n = snprintf(text, sizeof(text), "range %llu %llu eio_reads %llu\n", bad_start, bad_end,
				 (unsigned long long)atomic_load(&eio_reads));

		if (off >= n)
			return 0;
		if (size > (size_t)(n - off))
			size = (size_t)(n - off);
		memcpy(buf, text + off, size);
		return (int)size;
	}
	if (strcmp(path, "/disk"))
		return -ENOENT;
	if (start >= disk_size)
		return 0;
	if (size > disk_size - start)
		size = disk_size - start;
	end = start + size;
	if (start < bad_end && end > bad_start) {
		atomic_fetch_add(&eio_reads, 1);
		return -EIO;
	}
	memcpy(buf, disk + start, size);
	return (int)size;
}

static int control(const char *buf, size_t size)
{
	char text[128];
	unsigned long long a, b;

	if (size >= sizeof(text))
		return -EINVAL;
	memcpy(text, buf, size);
	text[size] = '\0';
	if (!strncmp(text, "disarm", 6)) {
		bad_start = bad_end = 0;
		return 0;
	}
	if (sscanf(text, "arm %llu %llu", &a, &b) != 2 || a > b)
		return -EINVAL;
	bad_start = a;
	bad_end = b;
	return 0;
}

static int eio_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	unsigned long long start = (unsigned long long)off;

	if (!strcmp(path, "/control")) {
		int err = control(buf, size);

		return err ? err : (int)size;
	}
	if (strcmp(path, "/disk"))
		return -ENOENT;
	/* a fixed-size disk: writes past its end fail as a full one does */
	if (start >= disk_size)
		return -ENOSPC;
	if (size > disk_size - start)
		size = disk_size - start;
	memcpy(disk + start, buf, size);
	return (int)size;
}

static int eio_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	/* echo > control truncates first; the disk keeps its size */
	return strcmp(path, "/control") && strcmp(path, "/disk") ? -ENOENT : 0;
}

static const struct fuse_operations eio_ops = {
	.getattr = eio_getattr,
	.readdir = eio_readdir,
	.open = eio_open,
	.read = eio_read,
	.write = eio_write,
	.truncate = eio_truncate,
};

int main(int argc, char **argv)
{
	char *fargv[64];
	int fargc = 0, i;
	long mib;

	if (argc < 3 || argc > 50) {
		fprintf(stderr, "usage: fuse_eio MOUNTPOINT SIZE_MIB [FUSE OPTIONS...]\n");
		return 2;
	}
	mib = atol(argv[2]);
	if (mib <= 0 || mib > 4096) {
		fprintf(stderr, "fuse_eio: SIZE_MIB must be 1..4096\n");
		return 2;
	}
	disk_size = (size_t)mib << 20;
	disk = calloc(1, disk_size);
	if (!disk) {
		fprintf(stderr, "fuse_eio: cannot allocate %ld MiB\n", mib);
		return 1;
	}
	/*
	 * A server left behind must not hold what its caller had open: the
	 * e2e lock's descriptor, inherited from flock, would block every other
	 * test for as long as this process lives.
	 */
	close_range(3, ~0U, 0);
	fargv[fargc++] = argv[0];
	fargv[fargc++] = "-f";
	fargv[fargc++] = "-s";
	for (i = 3; i < argc; i++)
		fargv[fargc++] = argv[i];
	fargv[fargc++] = argv[1];
	fargv[fargc] = NULL;
	return fuse_main(fargc, fargv, &eio_ops, NULL);
}
