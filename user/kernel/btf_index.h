/*
 * Name lookups in the kernel's BTF without libbpf's linear scan.
 * btf__find_by_name_kind() walks every type for each call: ~0.1 ms per call
 * on a 126k-type kernel BTF, and start-up made 56 of them (probe planning,
 * tp_btf attach targets, drop-reason enums), 5 ms of CPU. Here one walk per
 * kind, at its second lookup, fills a hash table of that kind's names; every
 * lookup after it is a probe or two.
 */
#ifndef KSIGHT_BTF_INDEX_H
#define KSIGHT_BTF_INDEX_H

#include <linux/types.h>

struct btf;

/*
 * btf__find_by_name_kind()'s contract (the lowest id of that name and kind,
 * else -ENOENT). A BTF of at least BTF_INDEX_MIN_TYPES types is indexed; one
 * such BTF at a time (the kernel's), others are searched the linear way.
 * Thread-safe: the loader threads plan side by side.
 */
#define BTF_INDEX_MIN_TYPES 4096
int btf_find(const struct btf *btf, const char *name, __u32 kind);

/* Before `btf` is freed: its index goes too. */
void btf_index_forget(const struct btf *btf);

#endif
