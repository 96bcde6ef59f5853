/*
 * fserr_storm DIR N: read directory DIR N times, as fast as possible. On an
 * ext4 directory whose block is corrupted, each read is one ext4 error:
 * an error storm far beyond what the kernel log prints.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static char buf[65536];
	long n, i, failed = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: fserr_storm DIR N\n");
		return 2;
	}
	n = atol(argv[2]);
	for (i = 0; i < n; i++) {
		int fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0) {
			fprintf(stderr, "fserr_storm: %s: %s\n", argv[1], strerror(errno));
			return 1;
		}
		if (syscall(SYS_getdents64, fd, buf, sizeof(buf)) < 0)
			failed++;
		close(fd);
	}
	printf("%ld\n", failed);
	return 0;
}
