/*
 * process_* metrics from /proc/self, as the Prometheus client libraries
 * export them (same names, types and help), refreshed by a collector.
 */
#include "process_metrics.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

enum {
	PM_CPU,
	PM_RSS,
	PM_VSIZE,
	PM_START,
	PM_OPEN_FDS,
	PM_MAX_FDS,
	PM_NR,
};

static const struct {
	const char *name;
	const char *help;
	enum metric_type type;
} pm_defs[PM_NR] = {
	[PM_CPU] = { "process_cpu_seconds_total",
		     "Total user and system CPU time spent in seconds.", METRIC_COUNTER },
	[PM_RSS] = { "process_resident_memory_bytes",
		     "Resident memory size in bytes.", METRIC_GAUGE },
	[PM_VSIZE] = { "process_virtual_memory_bytes",
		       "Virtual memory size in bytes.", METRIC_GAUGE },
	[PM_START] = { "process_start_time_seconds",
		       "Start time of the process since unix epoch in seconds.", METRIC_GAUGE },
	[PM_OPEN_FDS] = { "process_open_fds",
			  "Number of open file descriptors.", METRIC_GAUGE },
	[PM_MAX_FDS] = { "process_max_fds",
			 "Maximum number of open file descriptors.", METRIC_GAUGE },
};

/*
 * Serialises collector runs (two renders at once must not both add the same
 * CPU delta) and guards the cached start time. Static, so the collector
 * needs no per-registry state that the registry would have to free.
 */
static pthread_mutex_t pm_lock = PTHREAD_MUTEX_INITIALIZER;
static double pm_start_time = NAN;

/* The families, found again by redeclaration: it returns the existing ones. */
static int pm_families(struct metrics_registry *reg, struct metric_family **fams)
{
	int i;

	for (i = 0; i < PM_NR; i++) {
		fams[i] = metrics_family(reg, pm_defs[i].name, pm_defs[i].help,
					 pm_defs[i].type, NULL, 0, NULL, 0);
		if (!fams[i])
			return -EINVAL;
	}
	return 0;
}

struct proc_stat {
	unsigned long long utime, stime; /* clock ticks */
	unsigned long long starttime;    /* clock ticks after boot */
	unsigned long long vsize;        /* bytes */
	long long rss;                   /* pages */
};

static int read_self_stat(struct proc_stat *st)
{
	char buf[4096], *p;
	size_t n;
	FILE *f;

	f = fopen("/proc/self/stat", "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: the fields start after the last ')' */
	p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu"
		   " %*d %*d %*d %*d %*d %*d %llu %llu %lld",
		   &st->utime, &st->stime, &st->starttime, &st->vsize, &st->rss) != 5)
		return -EINVAL;
	return 0;
}

/* Boot time, seconds since the epoch, from the btime line of /proc/stat. */
static int read_btime(unsigned long long *btime)
{
	char *line = NULL;
	size_t cap = 0;
	int err = -ENOENT;
	FILE *f;

	f = fopen("/proc/stat", "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (sscanf(line, "btime %llu", btime) == 1) {
			err = 0;
			break;
		}
	}
	free(line);
	fclose(f);
	return err;
}

/* Entries of /proc/self/fd, not counting the one reading it. */
static int count_open_fds(void)
{
	struct dirent *de;
	int n = 0, self;
	DIR *d;

	d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	self = dirfd(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (atoi(de->d_name) != self)
			n++;
	}
	closedir(d);
	return n;
}

static void pm_collect(struct metrics_registry *reg, void *arg)
{
	struct metric_family *fams[PM_NR];
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long long btime;
	struct proc_stat st;
	struct rlimit rl;
	int nfds;

	if (pm_families(reg, fams) || tck <= 0 || page <= 0)
		return;

	pthread_mutex_lock(&pm_lock);
	if (!read_self_stat(&st)) {
		double cpu = (double)(st.utime + st.stime) / (double)tck;
		double prev = metrics_value(fams[PM_CPU], NULL);

		/*
		 * The registry's counter only adds: add what it is short of. The
		 * first add happens even at 0, so the sample always exists.
		 */
		if (isnan(prev))
			metrics_counter_add(fams[PM_CPU], NULL, cpu);
		else if (cpu > prev)
			metrics_counter_add(fams[PM_CPU], NULL, cpu - prev);
		metrics_gauge_set(fams[PM_RSS], NULL, (double)st.rss * (double)page);
		metrics_gauge_set(fams[PM_VSIZE], NULL, (double)st.vsize);
		/* constant for the life of the process, and /proc/stat is long on big hosts */
		if (isnan(pm_start_time) && !read_btime(&btime))
			pm_start_time = (double)btime + (double)st.starttime / (double)tck;
		if (!isnan(pm_start_time))
			metrics_gauge_set(fams[PM_START], NULL, pm_start_time);
	}
	pthread_mutex_unlock(&pm_lock);

	nfds = count_open_fds();
	if (nfds >= 0)
		metrics_gauge_set(fams[PM_OPEN_FDS], NULL, nfds);
	if (!getrlimit(RLIMIT_NOFILE, &rl))
		metrics_gauge_set(fams[PM_MAX_FDS], NULL,
				  rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur);
}

int process_metrics_register(struct metrics_registry *reg)
{
	struct metric_family *fams[PM_NR];
	int err;

	if (!reg)
		return -EINVAL;
	/* declared now, so they render in this order among the others */
	err = pm_families(reg, fams);
	if (err)
		return err;
	return metrics_add_collector(reg, pm_collect, NULL);
}
