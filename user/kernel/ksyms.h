/* Address ranges of a few kernel functions, from /proc/kallsyms. */
#ifndef KSIGHT_KSYMS_H
#define KSIGHT_KSYMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ksym_range {
	uint64_t start; /* 0: not found, or addresses are hidden (kptr_restrict) */
	uint64_t end;   /* the next symbol's address */
};

/*
 * Look up `names` (exact, text symbols) in `path` (/proc/kallsyms format).
 * Returns how many were found, or -errno when the file cannot be read.
 */
int ksyms_find(const char *path, const char *const *names, size_t n, struct ksym_range *ranges);

static inline bool ksym_range_contains(const struct ksym_range *r, uint64_t addr)
{
	return r->start && addr >= r->start && addr < r->end;
}

#endif
