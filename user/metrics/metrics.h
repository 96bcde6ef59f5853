/*
 * Metrics registry and Prometheus text exposition (format 0.0.4).
 *
 * A family is a metric name with a fixed list of label names; a series is one
 * set of label values. Signals create families once at start-up and update
 * series from the event loop; collectors registered with
 * metrics_add_collector() refresh values from BPF maps or /proc right before
 * each render. All calls are thread-safe (one registry-wide mutex): the HTTP
 * thread renders while the event loop updates.
 *
 * Cardinality: each family holds at most `series_cap` series (plus one
 * "other"). An update for a new label set beyond the cap folds into one
 * series whose label values are all "other" (a label set that is itself all
 * "other" always lands there, without counting as dropped), so that:
 *   - counters: "other" is the sum of the folded label sets' totals, and
 *     never goes down. counter_add adds; counter_set (a total kept
 *     elsewhere) adds the growth since that label set's previous total, or
 *     the whole total if it went back (a reset: its source was recreated);
 *   - histograms: the same per bucket (histogram_set: a reset if any bucket
 *     went back), and _sum alike;
 *   - gauges: "other" is the sum of the latest value of each folded label set.
 * ksight_series_dropped_total (rendered by the registry itself) counts label
 * sets, once each: the first update that folds one.
 *
 * To know a label set's previous total, a family remembers each folded one
 * by the 64-bit hash of its label values (two label sets whose hashes
 * collide would share one), in a table of max(series_cap, 64) entries, made
 * only once something folds: at most 4 slots an entry, of 40 bytes plus 8
 * per histogram bucket (80 KiB for a counter family with the default cap),
 * whatever the number of label sets beyond the cap. When it is full, an
 * entry that no update touched during the last two renders (scrapes) makes
 * room; failing that,
 * the label set is not tracked: its counter_add and observe still add to
 * "other", but its counter_set, histogram_set and gauge_set are left out
 * (other under-counts rather than over-counts), and each of its updates
 * counts as dropped. A gauge value leaves "other" when its entry is reused.
 * A label set once folded stays folded while its entry lasts, even when
 * retired series made room (its total stays in one place), until
 * metrics_family_clear().
 *
 * Retirement: metrics_forget() removes the series of an object that is gone
 * (a deleted pod) so that its room serves new label sets. A counter's series
 * may disappear; Prometheus handles that (the series goes stale). The
 * "other" series is never removed but by metrics_family_clear(), and what
 * was folded into it stays.
 */
#ifndef KSIGHT_METRICS_H
#define KSIGHT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
};

struct metrics_registry;
struct metric_family;

typedef void (*metrics_collector_fn)(struct metrics_registry *reg, void *arg);

/* series_cap: the most series a family may hold (0: a default of 1000). */
struct metrics_registry *metrics_registry_new(size_t series_cap);
void metrics_registry_free(struct metrics_registry *reg);

/*
 * Declare a family. `name` must be a valid metric name, label names valid
 * label names (copied). For METRIC_HISTOGRAM, `buckets` are the finite upper
 * bounds in increasing order (the +Inf bucket is implicit), else NULL/0.
 * Returns NULL on invalid input or allocation failure. Declaring the same
 * name twice returns the existing family if it has the same type and labels.
 */
struct metric_family *metrics_family(struct metrics_registry *reg, const char *name,
				     const char *help, enum metric_type type,
				     const char *const *label_names, size_t n_labels,
				     const double *buckets, size_t n_buckets);

/*
 * Update the series with `label_values` (n_labels strings, NULL taken as "").
 * Return 0, 1 when the update was folded into the "other" series, or -errno.
 * An update of an existing series costs one hash lookup (O(1)).
 */
int metrics_counter_add(struct metric_family *fam, const char *const *label_values, double v);
/* Set a counter to a total kept elsewhere (a BPF map), which only goes up. */
int metrics_counter_set(struct metric_family *fam, const char *const *label_values, double v);
int metrics_gauge_set(struct metric_family *fam, const char *const *label_values, double v);
/* Observe one value into a histogram (value <= bucket bound counts in that bucket). */
int metrics_histogram_observe(struct metric_family *fam, const char *const *label_values, double v);
/*
 * Replace a histogram series wholesale, e.g. from a BPF map: `counts` are the
 * per-bucket (not cumulative) counts, n_buckets + 1 of them (the last one is
 * the +Inf overflow bucket), `sum` the sum of observed values.
 */
int metrics_histogram_set(struct metric_family *fam, const char *const *label_values,
			  const uint64_t *counts, double sum);

/*
 * Remove every series of a family, "other" included (for collectors that
 * rebuild a gauge at each scrape). What folded is forgotten but for the
 * label sets themselves: the same ones folding again after the rebuild are
 * not counted as dropped again, and with room they get a series.
 */
void metrics_family_clear(struct metric_family *fam);

/*
 * Remove every series, in every family that has all the n labels
 * `label_names` (in any position), whose value of label_names[i] is values[i]
 * for each i (NULL taken as ""), e.g. namespace and pod of a deleted pod.
 * Families without one of those labels are left alone, and so is every
 * "other" series. Thread-safe; costs a pass over each such family's series.
 * Returns the number of series removed, -EINVAL (n == 0: clear a family with
 * metrics_family_clear() instead) or -ENOMEM.
 */
int metrics_forget(struct metrics_registry *reg, const char *const *label_names,
		   const char *const *values, size_t n);
/*
 * Remove the one series with `label_values`: 0, -ENOENT if there is none,
 * -EBUSY for the "other" series (which stays), -EINVAL.
 */
int metrics_family_remove_series(struct metric_family *fam, const char *const *label_values);

/* Run before every render, in registration order, with the lock not held. */
int metrics_add_collector(struct metrics_registry *reg, metrics_collector_fn fn, void *arg);

/*
 * Run the collectors, then render every family in the order declared, series
 * sorted by label values; families with no series still get HELP and TYPE.
 * Appends to `out`; returns 0 or -ENOMEM.
 */
int metrics_render(struct metrics_registry *reg, struct strbuf *out);

/* Read back one series' value (counter/gauge, "other" too), for tests; NAN if absent. */
double metrics_value(struct metric_family *fam, const char *const *label_values);

#endif
