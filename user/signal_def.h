/*
 * A signal is one BPF object (bpf/<name>.bpf.c) and one user module
 * (user/<name>.c) that fills a struct signal_def. Adding a signal touches no
 * other signal: one line in the table in signals.c.
 */
#ifndef KSIGHT_SIGNAL_DEF_H
#define KSIGHT_SIGNAL_DEF_H

#include <stdbool.h>
#include <stddef.h>

#include "probe.h"

#define SIGNAL_MAX_POINTS 8

struct agent;
struct metrics_registry;
struct bpf_object;
struct bpf_object_open_opts;
struct bpf_link;
struct signal_runtime;

struct signal_def {
	const char *name;    /* "oom": CLI name, label value, file names */
	const char *summary; /* one line for --help and `ksight probes` */
	const struct probe_point *points;
	size_t n_points;
	const char *ringbuf_map; /* ring-buffer map name, or NULL */

	/* skeleton glue: open (not load), its bpf_object, destroy */
	void *(*open)(const struct bpf_object_open_opts *opts);
	struct bpf_object *(*object)(void *skel);
	void (*destroy)(void *skel);
	/* set rodata after open, before load */
	int (*configure)(struct signal_runtime *rt);

	/* user half: set up metrics and state once loaded; one record; tear down */
	int (*init)(struct signal_runtime *rt);
	int (*handle_event)(struct signal_runtime *rt, const void *data, size_t size);
	/* optional: slow preparation run once the agent is ready (records wait in the ring) */
	void (*warm_up)(struct signal_runtime *rt);
	/*
	 * optional: refresh the signal's metrics from its BPF maps, on the HTTP
	 * thread right before each scrape renders; only for a runtime that is
	 * running and published (its object and priv are complete and stay so
	 * until the call returns). Must not block.
	 */
	void (*collect)(struct signal_runtime *rt, struct metrics_registry *reg);
	/*
	 * optional: stop the signal's own threads (idempotent), once its probes
	 * are detached and before the Kubernetes clients (recorder, pod cache)
	 * they may use are stopped; fini comes later
	 */
	void (*stop)(struct signal_runtime *rt);
	void (*fini)(struct signal_runtime *rt);
};

struct signal_runtime {
	const struct signal_def *def;
	struct agent *agent;
	void *skel;
	struct bpf_object *obj;
	struct point_status status[SIGNAL_MAX_POINTS];
	struct bpf_link *links[SIGNAL_MAX_POINTS][PROBE_MAX_PROGRAMS];
	struct bpf_link *trial_links[PROBE_MAX_PROGRAMS]; /* a fallback attached only to test it */
	int attached_points;
	bool running;      /* at least one probe point attached */
	bool published;    /* seen by the scrape-time collectors (under agent->runtimes_lock) */
	char error[256];   /* why it is not running */
	void *priv;        /* the signal's own state (init sets it, fini frees it) */
};

/*
 * The skeleton glue of signal `name` (its bpftool skeleton <name>.skel.h
 * included): SIGNAL_SKELETON(name) defines it once, and
 * SIGNAL_SKELETON_FIELDS(name) fills .open, .object and .destroy with it.
 */
#define SIGNAL_SKELETON(name)                                                   \
	static void *name##_skel_open(const struct bpf_object_open_opts *opts)   \
	{                                                                       \
		return name##_bpf__open_opts(opts);                             \
	}                                                                       \
	static struct bpf_object *name##_skel_object(void *skel)                 \
	{                                                                       \
		return ((struct name##_bpf *)skel)->obj;                        \
	}                                                                       \
	static void name##_skel_destroy(void *skel)                              \
	{                                                                       \
		name##_bpf__destroy(skel);                                      \
	}
#define SIGNAL_SKELETON_FIELDS(name) \
	.open = name##_skel_open, .object = name##_skel_object, .destroy = name##_skel_destroy

/* The table of signals, NULL-terminated, in the order they are shown. */
extern const struct signal_def *const ksight_signals[];

const struct signal_def *signal_find(const char *name);

#endif
