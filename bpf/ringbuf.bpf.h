/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Ring-buffer accounting every signal object shares: a per-CPU array of
 * {submitted, lost} that user space sums into ksight_ringbuf_lost_total.
 * Count the drop before anything else: loss is data.
 */
#ifndef KSIGHT_RINGBUF_BPF_H
#define KSIGHT_RINGBUF_BPF_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KSIGHT_RB_NR_STATS);
	__type(key, __u32);
	__type(value, __u64);
} ksight_ringbuf_stats SEC(".maps");

static __always_inline void ringbuf_count(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&ksight_ringbuf_stats, &stat);

	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
}

/* Reserve a record, counting a full ring buffer as a lost event. */
#define ringbuf_reserve(rb, type)                                             \
	({                                                                     \
		type *__rec = bpf_ringbuf_reserve(rb, sizeof(type), 0);        \
		if (!__rec)                                                    \
			ringbuf_count(KSIGHT_RB_LOST);                         \
		__rec;                                                         \
	})

static __always_inline void ringbuf_submit(void *rec)
{
	ringbuf_count(KSIGHT_RB_SUBMITTED);
	bpf_ringbuf_submit(rec, 0);
}

#endif
