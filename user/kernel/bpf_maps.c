#include "bpf_maps.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "util.h"

/* entries fetched per batch call: a few syscalls for thousands of series */
#define WALK_BATCH 256

static int is_percpu(uint32_t type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

int bpf_map_shape_of(int fd, struct bpf_map_shape *shape)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return neg_errno();
	shape->key_size = info.key_size;
	shape->value_size = info.value_size;
	shape->max_entries = info.max_entries;
	shape->ncpu = 1;
	shape->stride = info.value_size;
	if (is_percpu(info.type)) {
		shape->ncpu = libbpf_num_possible_cpus();
		if (shape->ncpu <= 0)
			return shape->ncpu ? shape->ncpu : -EINVAL;
		/* the kernel lays per-CPU values out 8-byte aligned */
		shape->stride = ((size_t)info.value_size + 7) & ~(size_t)7;
	}
	return 0;
}

void bpf_percpu_sum_u64(const struct bpf_map_shape *shape, const void *values, size_t n, uint64_t *sums)
{
	const unsigned char *base = values;
	size_t i;
	int cpu;

	if (n > shape->value_size / sizeof(uint64_t))
		n = shape->value_size / sizeof(uint64_t);
	memset(sums, 0, n * sizeof(*sums));
	for (cpu = 0; cpu < shape->ncpu; cpu++)
		for (i = 0; i < n; i++) {
			uint64_t v;

			memcpy(&v, base + (size_t)cpu * shape->stride + i * sizeof(v), sizeof(v));
			sums[i] += v;
		}
}

int bpf_map_sum_u64(int fd, const void *key, size_t n, uint64_t *sums)
{
	struct bpf_map_shape shape;
	void *values;
	int err;

	err = bpf_map_shape_of(fd, &shape);
	if (err)
		return err;
	values = calloc((size_t)shape.ncpu, shape.stride);
	if (!values)
		return -ENOMEM;
	err = bpf_map_lookup_elem(fd, key, values) ? neg_errno() : 0;
	if (!err)
		bpf_percpu_sum_u64(&shape, values, n, sums);
	free(values);
	return err;
}

/* Key by key, for kernels or map types without batch lookups. */
static int walk_keys(int fd, const struct bpf_map_shape *shape, void *key, void *next, void *value,
		     bpf_map_visit_fn fn, void *ctx)
{
	const void *prev = NULL;
	int ret;

	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, shape->key_size);
		prev = key;
		if (bpf_map_lookup_elem(fd, key, value))
			continue; /* deleted since get_next_key: not an error */
		ret = fn(key, value, ctx);
		if (ret)
			return ret;
	}
	return errno == ENOENT ? 0 : neg_errno();
}

/*
 * Batches; -EOPNOTSUPP-like answers before the first entry mean "not on this
 * kernel or map type", and the caller walks key by key instead.
 */
static int walk_batches(int fd, const struct bpf_map_shape *shape, void *keys, void *values,
			bpf_map_visit_fn fn, void *ctx, int *unsupported)
{
	size_t value_len = (size_t)shape->ncpu * shape->stride;
	__u64 in_batch = 0, out_batch = 0;
	int first = 1, ret, err;
	__u32 count, i;

	*unsupported = 0;
	/* batch tokens of hash maps are u32 bucket numbers; a u64 slot fits every map type */
	for (;;) {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);

		count = WALK_BATCH;
		err = bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch, keys, values, &count, &opts);
		err = err ? neg_errno() : 0;
		if (err && err != -ENOENT) {
			if (first && (err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP || err == -ENOSYS)) {
				*unsupported = 1;
				return 0;
			}
			return err;
		}
		for (i = 0; i < count; i++) {
			ret = fn((const unsigned char *)keys + (size_t)i * shape->key_size,
				 (const unsigned char *)values + (size_t)i * value_len, ctx);
			if (ret)
				return ret;
		}
		if (err == -ENOENT)
			return 0; /* that was the last batch */
		in_batch = out_batch;
		first = 0;
	}
}

int bpf_map_walk(int fd, bpf_map_visit_fn fn, void *ctx)
{
	struct bpf_map_shape shape;
	size_t value_len;
	void *keys = NULL, *values = NULL, *next = NULL;
	int err, unsupported;

	err = bpf_map_shape_of(fd, &shape);
	if (err)
		return err;
	value_len = (size_t)shape.ncpu * shape.stride;
	keys = calloc(WALK_BATCH, shape.key_size ? shape.key_size : 1);
	values = calloc(WALK_BATCH, value_len ? value_len : 1);
	next = calloc(1, shape.key_size ? shape.key_size : 1);
	if (!keys || !values || !next) {
		err = -ENOMEM;
		goto out;
	}
	err = walk_batches(fd, &shape, keys, values, fn, ctx, &unsupported);
	if (!err && unsupported)
		err = walk_keys(fd, &shape, keys, next, values, fn, ctx);
out:
	free(keys);
	free(values);
	free(next);
	return err;
}
