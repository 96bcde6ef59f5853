/*
 * memhog: allocate and touch memory until the OOM killer ends us.
 *
 *   memhog [--fork] [--fifo] [--hold-mib N] [--pidfile FILE] [--step-mib N]
 *
 * --fork: the process that was started stays small and a child does the
 * allocating, so the victim is not the cgroup's first process; the child's
 * pid goes to --pidfile (else our own pid). Exits 0 when the allocating
 * process was SIGKILLed (in --fork mode), else never returns normally.
 *
 * --hold-mib N: allocate and touch N MiB, write the pidfile, then sleep until
 * killed: the biggest process of its cgroup, a victim that is not the task
 * whose allocation ran out (that one is another memhog).
 *
 * --fifo: allocate as a SCHED_FIFO task. The OOM kill runs in the allocating
 * task, so on a CPU shared with the other victims of a memory.oom.group kill
 * none of them runs (and exits) before the kill has marked them all.
 */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void write_pidfile(const char *path, pid_t pid)
{
	FILE *f;

	if (!path)
		return;
	f = fopen(path, "w");
	if (!f) {
		perror("memhog: pidfile");
		exit(3);
	}
	fprintf(f, "%d\n", pid);
	fclose(f);
}

static void hog(size_t step)
{
	for (;;) {
		char *p = malloc(step);

		if (!p) {
			usleep(1000);
			continue;
		}
		memset(p, 0x5a, step);
	}
}

int main(int argc, char **argv)
{
	const char *pidfile = NULL;
	size_t step = 1 << 20;
	int do_fork = 0, do_fifo = 0, hold_mib = 0, i, status;
	pid_t child;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--fork"))
			do_fork = 1;
		else if (!strcmp(argv[i], "--fifo"))
			do_fifo = 1;
		else if (!strcmp(argv[i], "--hold-mib") && i + 1 < argc)
			hold_mib = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--pidfile") && i + 1 < argc)
			pidfile = argv[++i];
		else if (!strcmp(argv[i], "--step-mib") && i + 1 < argc)
			step = (size_t)atoi(argv[++i]) << 20;
		else {
			fprintf(stderr, "usage: memhog [--fork] [--fifo] [--hold-mib N] [--pidfile FILE] [--step-mib N]\n");
			return 2;
		}
	}
	if (do_fifo) {
		struct sched_param sp = { .sched_priority = 1 };

		if (sched_setscheduler(0, SCHED_FIFO, &sp)) {
			perror("memhog: SCHED_FIFO");
			return 3;
		}
	}
	if (hold_mib > 0) {
		size_t len = (size_t)hold_mib << 20, off;
		/* volatile: memory that is never read again must still be touched */
		volatile char *p = malloc(len);

		if (!p)
			return 3;
		for (off = 0; off < len; off += 4096)
			p[off] = 0x5a;
		write_pidfile(pidfile, getpid());
		for (;;)
			pause();
	}
	if (!do_fork) {
		write_pidfile(pidfile, getpid());
		hog(step);
	}
	child = fork();
	if (child < 0) {
		perror("memhog: fork");
		return 3;
	}
	if (child == 0) {
		/* a distinct comm, so the test can tell the victim from its parent */
		memcpy(argv[0], "memhog", 6);
		hog(step);
	}
	write_pidfile(pidfile, child);
	if (waitpid(child, &status, 0) < 0)
		return 3;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? 0 : 1;
}
