/*
 * Load several signals' BPF objects at once. Each object's load is mostly
 * libbpf reading BTF and the kernel verifying programs, on one CPU; with two
 * or more CPUs the objects load side by side.
 */
#ifndef KSIGHT_LOAD_PARALLEL_H
#define KSIGHT_LOAD_PARALLEL_H

#include "loader.h"

/*
 * signal_load() every runtime of rts[0..n), results in each rts[i] (and
 * errs[i]) as if loaded one after the other. `threads` <= 1 loads them in
 * this thread, in order; this thread is always one of the loaders, so a
 * thread that cannot be started only makes it slower. Returns 0.
 */
int signal_load_many(struct signal_runtime *const *rts, int *errs, int n, const struct load_options *opts,
		     int threads);

/* How many loader threads: KSIGHT_LOAD_THREADS if set (1..8), else the CPUs online, at most 4. */
int signal_load_threads(void);

#endif
