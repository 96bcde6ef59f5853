/*
 * Load several signals' BPF objects at once. Each object's load is mostly
 * libbpf reading BTF and the kernel verifying programs, on one CPU; with two
 * or more CPUs the objects load side by side, and the calling thread starts
 * (initialises, attaches) each loaded one while the others still load.
 */
#ifndef KSIGHT_LOAD_PARALLEL_H
#define KSIGHT_LOAD_PARALLEL_H

#include "loader.h"

/* Called on the calling thread once rts[i] is loaded (err: signal_load()'s result). */
typedef void (*signal_loaded_fn)(int i, int err, void *ctx);

/*
 * signal_load() every runtime of rts[0..n), taking them in the order of
 * order[0..n) (indexes into rts; NULL: 0..n-1), on up to `threads`
 * loader threads, while the calling thread calls `loaded` once per
 * runtime, in the order their loads ended (it loads itself only when no
 * loader thread could be started). Returns 0, or
 * -ENOMEM with nothing loaded (more than 64 runtimes, or no memory).
 */
int signal_load_many(struct signal_runtime *const *rts, const int *order, int n, const struct load_options *opts,
		     int threads, signal_loaded_fn loaded, void *ctx);

/* How many loader threads: KSIGHT_LOAD_THREADS if set (1..8), else the CPUs online, at most 4. */
int signal_load_threads(void);

#endif
