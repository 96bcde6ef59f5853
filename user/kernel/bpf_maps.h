/*
 * Reading BPF maps from user space, for signals that count in the kernel and
 * are read when scraped: per-CPU sums and whole-map walks with batch lookups.
 */
#ifndef KSIGHT_BPF_MAPS_H
#define KSIGHT_BPF_MAPS_H

#include <stddef.h>
#include <stdint.h>

/* What the kernel says about a map: its sizes and whether each CPU has its own value. */
struct bpf_map_shape {
	uint32_t key_size;
	uint32_t value_size;  /* of one CPU's value */
	uint32_t max_entries;
	int ncpu;             /* copies per value: 1, or the possible CPUs of a per-CPU map */
	size_t stride;        /* bytes from one CPU's value to the next (value_size rounded to 8) */
};

int bpf_map_shape_of(int fd, struct bpf_map_shape *shape);

/*
 * Sum a per-CPU value field by field: `n` u64 counters at the start of each
 * CPU's value, summed into sums[0..n). `values` is what a lookup of a per-CPU
 * map returned (shape->ncpu copies, shape->stride apart).
 */
void bpf_percpu_sum_u64(const struct bpf_map_shape *shape, const void *values, size_t n, uint64_t *sums);

/* Look up one key of a per-CPU (or plain) map and sum its first n u64 fields. 0, -ENOENT or -errno. */
int bpf_map_sum_u64(int fd, const void *key, size_t n, uint64_t *sums);

/*
 * Call fn(key, value, ctx) for every entry (value: shape->ncpu copies for a
 * per-CPU map). Batch lookups (Linux 5.6) where the map and kernel take them,
 * else key by key; an entry deleted during the walk is skipped, not an error.
 * fn returns 0 to go on, anything else stops the walk and is returned.
 * Returns 0, fn's value or -errno.
 */
typedef int (*bpf_map_visit_fn)(const void *key, const void *value, void *ctx);
int bpf_map_walk(int fd, bpf_map_visit_fn fn, void *ctx);

#endif
