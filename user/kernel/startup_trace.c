#include "startup_trace.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

static int enabled;
static int64_t began;
static __thread int64_t last; /* per thread: the loaders run side by side */

void startup_trace_begin(void)
{
	const char *env = getenv("KSIGHT_STARTUP_TRACE");

	enabled = env && env[0] && strcmp(env, "0");
	began = last = clock_ns(CLOCK_MONOTONIC);
}

void startup_trace_thread(void)
{
	if (enabled)
		last = clock_ns(CLOCK_MONOTONIC);
}

/* VmRSS and VmHWM (the peak) from /proc/self/status, in KiB. */
static void read_rss(long *rss, long *peak)
{
	char line[128];
	FILE *f = fopen("/proc/self/status", "re");

	*rss = *peak = -1;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "VmRSS:", 6))
			*rss = strtol(line + 6, NULL, 10);
		else if (!strncmp(line, "VmHWM:", 6))
			*peak = strtol(line + 6, NULL, 10);
	}
	fclose(f);
}

void startup_mark(const char *fmt, ...)
{
	char phase[128];
	int64_t now;
	long rss, peak;
	va_list ap;

	if (!enabled)
		return;
	now = clock_ns(CLOCK_MONOTONIC);
	if (!last)
		last = began;
	va_start(ap, fmt);
	vsnprintf(phase, sizeof(phase), fmt, ap);
	va_end(ap);
	read_rss(&rss, &peak);
	log_info("startup: %-32s %7.2f ms (at %7.2f ms, process CPU %6.2f ms, rss %ld KiB, peak %ld KiB)", phase,
		 (double)(now - last) / 1e6, (double)(now - began) / 1e6,
		 (double)clock_ns(CLOCK_PROCESS_CPUTIME_ID) / 1e6, rss, peak);
	/* the status read is not the next phase's time */
	last = clock_ns(CLOCK_MONOTONIC);
}
