/*
 * apilat's slow-response verdict, pure: a client's p99 response time over a
 * sliding window, from the growth of its in-kernel (cumulative) histogram
 * between ticks, and whether a Warning is due.
 *
 * The caller reads every client's response histogram once per tick
 * (apilat_p99_tick_ns(): the window / APILAT_P99_SLOTS) and hands it to
 * apilat_p99_observe(). Once a client has been seen for a whole window, the
 * window's counts are the newest snapshot minus the one APILAT_P99_SLOTS
 * ticks older; their p99, interpolated inside its bucket as Prometheus'
 * histogram_quantile does, is compared with the threshold. An Event is due
 * when it is above and the window holds at least min_responses responses
 * (below that "p99" is just the slowest one), and then at most once per
 * window while it stays above. A histogram that shrank (the kernel's entry
 * was deleted and made again) starts the client's window over.
 */
#ifndef KSIGHT_APILAT_P99_H
#define KSIGHT_APILAT_P99_H

#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "apilat.h"

#define APILAT_P99_SLOTS	 6
#define APILAT_P99_MIN_RESPONSES 20
/* clients followed at most (a kernel histogram map's worth) */
#define APILAT_P99_MAX_CLIENTS	 APILAT_MAX_HISTS

/*
 * histogram_quantile(q) over per-bucket (not cumulative) counts[0..n_finite]
 * of apilat's layout (counts[n_finite] the +Inf bucket), in ns: linear inside
 * the bucket, from 0 in the first one, the highest finite bound when the
 * rank falls in +Inf. -ENODATA without counts, -EINVAL for q outside [0, 1].
 */
int apilat_quantile_ns(const uint64_t *counts, size_t n_finite, uint32_t lo_exp, double q, double *out_ns);

struct apilat_p99_config {
	uint64_t threshold_ns;   /* > 0 */
	uint64_t window_ns;      /* >= APILAT_P99_SLOTS */
	uint64_t min_responses;  /* 0: APILAT_P99_MIN_RESPONSES */
	uint32_t lo_exp, hi_exp; /* the histograms' range */
};

struct apilat_p99_verdict {
	double p99_ns;
	uint64_t responses;      /* in the window */
};

struct apilat_p99;

/* NULL: out of memory or a config out of range. */
struct apilat_p99 *apilat_p99_new(const struct apilat_p99_config *cfg);
void apilat_p99_free(struct apilat_p99 *t);

uint64_t apilat_p99_tick_ns(const struct apilat_p99 *t);

/*
 * Client `key` (a NUL-terminated name: its label set) has the cumulative
 * per-bucket counts cumulative[0..n_finite] at `now_ns` (monotonic). 1 when
 * an Event is due (*v says why), 0 when not (*v still holds the window's
 * figures once it is full, else zeros), -ENOMEM, -ENOSPC (too many clients).
 */
int apilat_p99_observe(struct apilat_p99 *t, const char *key, const uint64_t *cumulative, uint64_t now_ns,
		       struct apilat_p99_verdict *v);

/* After a tick's observations: forget the clients this tick did not see (their histogram is gone). */
void apilat_p99_sweep(struct apilat_p99 *t, uint64_t now_ns);

/* Clients followed now. */
size_t apilat_p99_clients(const struct apilat_p99 *t);

#endif
