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

/* Start making the maps of defs[0..n), in that order (the loads'); 0, or -errno (then nothing is made ahead). */
int maps_ahead_start(const struct signal_def *const *defs, int n);

/*
 * Before rt's object loads (opened and configured): hand it the maps made
 * for it that match (waits for the maker). Returns how many it took.
 */
int maps_ahead_take(struct signal_runtime *rt);

/*
 * What the objects of defs[0..n) name, for the CO-RE copy (core_btf.h):
 * the maker reads it from their BTF before it makes any map, while the
 * kernel BTF is parsed. Waits for it; NULL when the maker was not started
 * for that same set of signals, or could not read it. Valid until
 * maps_ahead_finish().
 */
struct core_names;
const struct core_names *maps_ahead_core_names(const struct signal_def *const *defs, int n);

/* Once every load is done: close what no load took. */
void maps_ahead_finish(void);

#endif
