/*
 * Name lookups in the kernel's BTF without libbpf's linear scan.
 * btf__find_by_name_kind() walks every type for each call: ~0.1 ms per call
 * on a 126k-type kernel BTF, and start-up made 56 of them (probe planning,
 * tp_btf attach targets, drop-reason enums), 5 ms of CPU. Here one walk per
 * kind, at its second lookup (functions: their 13th, btf_index.c), fills a
 * hash table of that kind's names; every lookup after it is a probe or two.
 */
#ifndef KSIGHT_BTF_INDEX_H
#define KSIGHT_BTF_INDEX_H

#include <linux/types.h>

struct btf;

/*
 * btf__find_by_name_kind()'s contract (the lowest id of that name and kind,
 * else -ENOENT). The BTF named by btf_index_use() is indexed; any other is
 * searched the linear way. Thread-safe: the loader threads plan side by side.
 */
int btf_find(const struct btf *btf, const char *name, __u32 kind);

/*
 * Index `btf` (the kernel's, parsed once) from now on, in place of any other;
 * a BTF smaller than BTF_INDEX_MIN_TYPES types is not worth it. Its owner
 * calls btf_index_forget() before freeing it.
 */
#define BTF_INDEX_MIN_TYPES 4096
void btf_index_use(const struct btf *btf);
void btf_index_forget(const struct btf *btf);

#endif
