/*
 * The signals' maps created ahead of their loads, on a thread of their own
 * while the main thread parses the kernel BTF and makes the CO-RE copy (the
 * loads cannot start before). Creating a map is paid at creation: a
 * preallocated (LRU, per-CPU) hash of thousands of entries takes
 * milliseconds. A load then takes the map that matches its definition
 * (after its configure) instead of creating one; a map that does not match,
 * or was not made, is created by libbpf as before.
 *
 * The maps are made without BTF (they hold no spin lock, timer or kptr, the
 * only fields that need it): a map dump shows bytes, not members.
 */
#ifndef KSIGHT_MAP_AHEAD_H
#define KSIGHT_MAP_AHEAD_H

#include "signal_def.h"

/*
 * Start making the maps of defs[0..n), in that order (the loads'), after
 * looking up their CO-RE copy in the per-boot cache in cache_dir (NULL:
 * none); 0, or -errno (then nothing is made ahead).
 */
int maps_ahead_start(const struct signal_def *const *defs, int n, const char *cache_dir);

/*
 * Before rt's object loads (opened and configured): hand it the maps made
 * for it that match (waits for the maker). Returns how many it took.
 */
int maps_ahead_take(struct signal_runtime *rt);

/*
 * For the CO-RE copy of defs[0..n) (core_btf.h), what the maker found
 * before it made any map, while the kernel BTF is parsed: the per-boot
 * cache's entry (cached->load 0: cached->raw is the caller's to free), else
 * what the objects name. Waits for it. Returns the names (NULL when there
 * is an entry, when the maker could not read them, or was not started for
 * that same set of signals and cache_dir: then cached->load is -ECANCELED),
 * valid until maps_ahead_finish().
 */
struct core_names;
struct core_cached {
	int load; /* core_cache_load()'s result */
	void *raw;
	size_t size;
};
const struct core_names *maps_ahead_core_names(const struct signal_def *const *defs, int n, const char *cache_dir,
					       struct core_cached *cached);

/* Once every load is done: close what no load took. */
void maps_ahead_finish(void);

#endif
