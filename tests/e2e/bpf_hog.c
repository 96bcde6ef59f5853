/*
 * Keeps every CPU inside a classic tracepoint's BPF program most of the time,
 * so that a softirq (a TCP retransmit timer) arriving on it runs nested in
 * one: trace_call_bpf then skips every other classic tracepoint or kprobe
 * program on that CPU (bpf_prog_active), and since 6.7 counts each skip in
 * the skipped program's recursion_misses. Raw tracepoint (tp_btf) programs
 * are not skipped.
 *
 * The program is a long straight run of additions (no helper, no map: raw
 * instructions, no BPF toolchain needed) attached to the tracepoint
 * syscalls/sys_enter_getppid; one child per CPU, pinned there, calls getppid()
 * in a loop for SECONDS. Prints "hogging N CPUs" once the children run.
 *
 * usage: bpf_hog SECONDS [INSNS]   (INSNS: the program's length, default 200000)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EVENT "syscalls/sys_enter_getppid"

static int tracepoint_id(void)
{
	const char *roots[] = { "/sys/kernel/tracing/events/", "/sys/kernel/debug/tracing/events/" };
	char path[256];
	size_t i;
	int id = -1;

	for (i = 0; i < sizeof(roots) / sizeof(roots[0]) && id < 0; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s%s/id", roots[i], EVENT);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%d", &id) != 1)
			id = -1;
		fclose(f);
	}
	return id;
}

static int load_program(unsigned int n)
{
	struct bpf_insn *insns = calloc(n + 2, sizeof(*insns));
	union bpf_attr attr;
	unsigned int i;
	int fd;

	if (!insns)
		return -1;
	for (i = 0; i < n; i++) /* r0 += 1 */
		insns[i] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 };
	insns[0] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 };
	insns[n] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 };
	insns[n + 1] = (struct bpf_insn){ .code = BPF_JMP | BPF_EXIT };
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_TRACEPOINT;
	attr.insns = (unsigned long)insns;
	attr.insn_cnt = n + 2;
	attr.license = (unsigned long)"GPL";
	strncpy(attr.prog_name, "ksight_e2e_hog", sizeof(attr.prog_name) - 1);
	fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (fd < 0)
		fprintf(stderr, "bpf_hog: BPF_PROG_LOAD: %s\n", strerror(errno));
	free(insns);
	return fd;
}

static int attach(int prog, int id)
{
	struct perf_event_attr pa;
	int fd;

	memset(&pa, 0, sizeof(pa));
	pa.type = PERF_TYPE_TRACEPOINT;
	pa.size = sizeof(pa);
	pa.config = (unsigned long long)id;
	pa.sample_period = 1;
	pa.wakeup_events = 1;
	/* one event is enough: the tracepoint runs its programs for every task on every CPU */
	fd = (int)syscall(SYS_perf_event_open, &pa, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0) {
		perror("bpf_hog: perf_event_open");
		return -1;
	}
	if (ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog) || ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)) {
		perror("bpf_hog: attach");
		return -1;
	}
	return fd;
}

static void spin(int cpu, double seconds)
{
	struct timespec t0, t;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		int i;

		for (i = 0; i < 100; i++)
			syscall(SYS_getppid);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
	_exit(0);
}

int main(int argc, char **argv)
{
	unsigned int insns = argc > 2 ? (unsigned int)atoi(argv[2]) : 200000;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN), c;
	double seconds;
	int prog, id, ev;

	if (argc < 2 || insns < 2) {
		fprintf(stderr, "usage: bpf_hog SECONDS [INSNS]\n");
		return 2;
	}
	seconds = atof(argv[1]);
	id = tracepoint_id();
	if (id < 0) {
		fprintf(stderr, "bpf_hog: no tracepoint %s\n", EVENT);
		return 1;
	}
	prog = load_program(insns);
	if (prog < 0)
		return 1;
	ev = attach(prog, id);
	if (ev < 0)
		return 1;
	for (c = 0; c < ncpu; c++) {
		pid_t pid = fork();

		if (pid == 0)
			spin((int)c, seconds);
		if (pid < 0) {
			perror("bpf_hog: fork");
			return 1;
		}
	}
	printf("hogging %ld CPUs\n", ncpu);
	fflush(stdout);
	while (wait(NULL) > 0)
		;
	close(ev);
	close(prog);
	return 0;
}
