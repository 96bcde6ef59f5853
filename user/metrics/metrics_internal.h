/*
 * What the three parts of the metrics registry share: metrics.c (the
 * registry, families and series), metrics_fold.c (the fold table and
 * retirement) and metrics_render.c (the text exposition). Not an interface:
 * that is metrics.h, and nothing outside these files includes this one.
 */
#ifndef KSIGHT_METRICS_INTERNAL_H
#define KSIGHT_METRICS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

#define DROPPED_NAME "ksight_series_dropped_total"

/* Longest number fmt_double() writes is 24 characters ("-2.2250738585072014e-308"). */
#define NUM_LEN 32

struct series {
	uint64_t hash;
	size_t key_len;
	const char *key;	/* label values, each NUL-terminated, back to back */
	double value;		/* counter, gauge */
	double sum;		/* histogram */
	uint64_t count;		/* histogram: total observations */
	uint64_t buckets[];	/* histogram: n_buckets + 1 per-bucket counts, then the key */
};

struct metric_family {
	struct metrics_registry *reg;
	char *name;
	char *help;
	enum metric_type type;
	char **label_names;
	size_t n_labels;
	double *buckets;
	char (*le)[NUM_LEN];	/* bucket bounds preformatted for rendering */
	size_t n_buckets;

	struct series **series;	/* insertion order until a render sorts it */
	size_t n_series;
	size_t series_alloc;
	bool sorted;

	struct series **slots;	/* linear probing; NULL is an empty slot */
	size_t n_slots;		/* 0 or a power of two above twice n_series */

	/* The key every over-cap update folds into: n_labels times "other". */
	char *other_key;
	size_t other_len;
	uint64_t other_hash;
	struct series *other;	/* in series[] once something folded, never in slots[] */
	bool other_dirty;	/* gauge: other's value is to be summed from the fold table again */

	/* Folded label sets, linear probing on the key hash; entry hash 0 is an empty slot. */
	char *folds;
	size_t fold_stride;	/* sizeof(struct fold) plus the histogram buckets */
	size_t fold_slots;	/* 0 or a power of two, at least twice n_folds */
	size_t n_folds;
	size_t fold_max;
	size_t fold_hand;	/* where the search for a stale entry goes on */
};

/* What one folded label set has contributed to "other": its own value as a series would hold it. */
struct fold {
	uint64_t hash;		/* of the key, 0 mapped to 1 */
	uint64_t gen;		/* the registry's render count at its last update */
	/*
	 * Folded since the family was last cleared. A clear keeps the entries
	 * (zeroed), so a family rebuilt at each scrape does not count the same
	 * label sets as dropped again, but they may have a series if there is room.
	 */
	bool active;
	double value;		/* counter, gauge */
	double sum;		/* histogram */
	uint64_t buckets[];	/* histogram: n_buckets + 1 per-bucket counts */
};

struct collector {
	metrics_collector_fn fn;
	void *arg;
};

struct metrics_registry {
	pthread_mutex_t lock;
	size_t series_cap;
	struct metric_family **families;	/* declaration order */
	size_t n_families;
	size_t families_alloc;
	struct collector *collectors;
	size_t n_collectors;
	size_t collectors_alloc;
	uint64_t dropped;
	uint64_t gen;		/* renders so far */
};

/* A series key built on the caller's stack, spilling to the heap when long. */
struct key {
	char *buf;
	size_t len;
	uint64_t hash;
	char small[256];
};

/* One update of a series: applied to it (metrics.c) or folded into "other" (metrics_fold.c). */
enum update_op {
	OP_ADD,
	OP_SET,
	OP_OBSERVE,
	OP_HIST_SET,
};

struct update {
	enum update_op op;
	double v;
	const uint64_t *counts;
};

static inline struct fold *fold_at(const struct metric_family *fam, size_t i)
{
	return (struct fold *)(fam->folds + i * fam->fold_stride);
}

/* Fold entries are known by the key's hash alone: 0 marks an empty slot. */
static inline uint64_t fold_hash(uint64_t hash)
{
	return hash ? hash : 1;
}

/* metrics.c: keys and the series table, with the lock held but for the keys */
int key_build_n(struct key *k, size_t n_values, const char *const *values);
int key_build(struct key *k, const struct metric_family *fam, const char *const *values);
void key_release(struct key *k);
int series_cmp(const void *a, const void *b);
struct series *table_find(const struct metric_family *fam, uint64_t hash,
			  const char *key, size_t len);
void table_remove(struct metric_family *fam, const struct series *s);
int series_insert(struct metric_family *fam, uint64_t hash, const char *key,
		  size_t len, bool in_table, struct series **out);
void series_remove_at(struct metric_family *fam, size_t i);
bool is_other_key(const struct metric_family *fam, const struct key *k);
size_t bucket_index(const double *b, size_t n, double v);

/* metrics_fold.c: the fold table, lock held */
struct fold *fold_find(const struct metric_family *fam, uint64_t hash);
int fold_update(struct metric_family *fam, const struct key *k, const struct update *u,
		bool drop);
void other_refresh(struct metric_family *fam);

/* metrics_render.c */
int fmt_double(char buf[NUM_LEN], double v);

#endif
