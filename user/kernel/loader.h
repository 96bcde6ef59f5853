/* Open, load and attach one signal's BPF object, variant by variant. */
#ifndef KSIGHT_LOADER_H
#define KSIGHT_LOADER_H

#include <stdbool.h>

#include "signal_def.h"

struct btf;

struct load_options {
	const char *btf_path;                /* NULL: the kernel's own BTF */
	const char *core_btf_path;           /* a small copy for CO-RE (core_btf.h), or NULL: btf_path */
	const struct kernel_features *kf;
	const char *const *probe_overrides;  /* "signal/point=variant", NULL-terminated, or NULL */
	/*
	 * Load only each point's preferred candidate (the daemon and the trace:
	 * they attach one variant per point, and the verifier's run over a
	 * standby variant is start-up time spent on nothing); false loads every
	 * candidate (`ksight probes`, which tries them all).
	 */
	bool preferred_only;
};

/*
 * Plan every probe point, then load the candidates; a program the kernel
 * refuses is ruled out (LOAD_FAILED, with the reason) and the rest loaded
 * again. An object that does not load against core_btf_path is loaded
 * against btf_path before any program is ruled out. Returns 0 when something
 * loaded, else -errno with rt->error set and nothing left open (rt->skel and
 * rt->obj NULL).
 */
int signal_load(struct signal_runtime *rt, const struct load_options *opts);

/*
 * After signal_attach with preferred_only: a point whose loaded variant did
 * not attach while a fallback was left unloaded (it stays a candidate).
 */
bool signal_wants_fallbacks(const struct signal_runtime *rt);

/*
 * Load the object again for signal_wants_fallbacks: the outcomes known so far
 * (refused, not attached) are kept, so each such point's next candidate is
 * the one loaded. The caller has undone its user half (init) and the
 * attachment; as signal_load otherwise.
 */
int signal_load_fallbacks(struct signal_runtime *rt, const struct load_options *opts);

/*
 * The small CO-RE copy (core_btf.h) of `kernel` for signals defs[0..n), as a
 * file: path set, returns its fd (close it when every load is done) or -errno.
 */
int signal_core_btf(const struct signal_def *const *defs, int n, const struct btf *kernel, char *path,
		    unsigned long pathlen);

/* What the per-boot cache (core_cache.h) did: 0, or -errno (-ECANCELED: not asked; -ENOENT: no entry yet). */
struct core_cache_use {
	int load, store;
};

/*
 * The same, taken from the per-boot cache in cache_dir when it has this
 * copy, else built and stored there (cache_dir NULL: neither).
 */
int signal_core_btf_cached(const struct signal_def *const *defs, int n, const struct btf *kernel,
			   const char *cache_dir, char *path, unsigned long pathlen, struct core_cache_use *use);

/*
 * Attach each point's candidates in preference order until one attaches;
 * each program on its own, so one failure never takes the others down.
 * With try_fallbacks, the variants after the chosen one are attached and
 * detached again to learn whether they would work (slow: a detach waits for
 * RCU). Returns the number of points attached; rt->running says if any did.
 */
int signal_attach(struct signal_runtime *rt, bool try_fallbacks);

/* Detach every program; the object and its maps stay (the ring can still be drained). */
void signal_detach(struct signal_runtime *rt);

/*
 * Detach and free everything (safe on a partly set up runtime, and twice).
 * The one teardown path: afterwards rt->skel and rt->obj are NULL.
 */
void signal_unload(struct signal_runtime *rt);

/* Is "signal/point=variant" (or "point=variant") well formed and known? 0 or -EINVAL with why. */
int probe_override_validate(const char *spec, char *why, size_t whylen);

#endif
