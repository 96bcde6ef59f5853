/* The agent: the signals, their ring buffers, the metrics and the outputs of one process. */
#ifndef KSIGHT_AGENT_H
#define KSIGHT_AGENT_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "probe.h"
#include "signal_def.h"

#define AGENT_MAX_LIST    16
#define AGENT_MAX_SIGNALS 16

enum agent_mode {
	MODE_RUN,
	MODE_TRACE,
	MODE_PROBES,
};

enum output_format {
	OUTPUT_TEXT,
	OUTPUT_JSON,
};

struct agent_config {
	enum agent_mode mode;
	const char *listen;                          /* run: ADDR:PORT */
	const char *signals[AGENT_MAX_LIST + 1];     /* NULL-terminated; empty: all */
	const char *probe_overrides[AGENT_MAX_LIST + 1];
	enum output_format format;                   /* trace, probes */
	const char *btf_path;
	const char *node_name;
	const char *kubelet_root;                    /* NULL: /var/lib/kubelet */
	const char *cache_dir;                       /* NULL: /run/ksight; "none": no per-boot cache */
	const char *kubeconfig;                      /* run, trace: NULL = in-cluster */
	bool no_k8s;                                 /* run, trace: never talk to the API */
	bool node_conditions;                        /* run: write fserr's Node condition (node_condition.h) */
	unsigned int trace_rate;                     /* trace: sampled drops per second per CPU; 0: default */
	const char *trace_reason;                    /* trace netdrop: only this drop reason */
	const char *trace_namespace;                 /* trace netdrop: only this pod namespace */
	const char *trace_pod;                       /* trace netdrop: only this pod */
	const char *apiservers[AGENT_MAX_LIST + 1]; /* apilat: --apiserver HOST:PORT, NULL-terminated */
	const char *events_log;                      /* run: --events-log FILE, "-" for stdout; NULL: none */
	uint64_t apilat_slow_ns;                     /* trace apilat: --slow (cli_parse sets the default) */
	uint64_t apilat_p99_threshold_ns;            /* run: --apilat-p99-threshold; 0: no such Event */
	uint64_t apilat_window_ns;                   /* run: --apilat-window */
	bool verbose;
};

struct metrics_registry;
struct metric_family;
struct http_server;
struct ring_buffer;
struct pod_cache;
struct pod_watcher;
struct event_recorder;
struct event_log;
struct pod_resolver;
struct btf;

struct agent {
	const struct agent_config *cfg;
	char node[256];
	/* CLOCK_REALTIME - CLOCK_BOOTTIME; NULL: read both clocks at each event (follows clock steps) */
	int64_t (*boot_to_wall_ns)(void);
	struct metrics_registry *metrics;
	/*
	 * The kernel's BTF, parsed once: probe planning and the signals'
	 * configure/init/warm_up read it; freed once the agent is ready (NULL
	 * after), since a parsed vmlinux BTF is megabytes of RSS.
	 */
	const struct btf *btf;
	struct kernel_features kf;
	/*
	 * Runtimes are built and torn down by the main thread; the HTTP thread's
	 * collectors read only published ones, under this lock.
	 */
	pthread_mutex_t runtimes_lock;
	struct signal_runtime runtimes[AGENT_MAX_SIGNALS];
	int n_runtimes;
	struct ring_buffer *ringbuf;
	struct http_server *http;
	struct pod_cache *pods;          /* NULL without the Kubernetes API */
	struct pod_resolver *resolver;   /* netns inode / cgroup id -> pod; NULL if it could not start */
	struct pod_watcher *pod_watcher;
	struct event_recorder *recorder; /* NULL without the API, and in trace/probes */
	struct event_log *event_log;     /* --events-log; NULL without */
	bool trace;               /* print events (ksight trace) */
	bool header_printed;
	struct metric_family *ringbuf_lost, *ringbuf_records, *probe_info, *build_info, *events_total;
	struct metric_family *trace_suppressed;
	struct metric_family *prog_misses; /* ksight_bpf_program_misses_total */
};

/* Make a complete runtime visible to the scrape-time collectors, or hide it again. */
void agent_publish(struct agent *agent, struct signal_runtime *rt, bool published);

/*
 * Sleep until a ring buffer has records (consume them) or one of
 * `stop_signals` (blocked in every thread) arrives; 0 then, or -errno. With
 * no ring (map-only signals) only the stop signals wake it.
 */
int agent_loop(struct agent *agent, const sigset_t *stop_signals);

/* The collector of every published runtime's metrics (registered by the agent; exposed for tests). */
void agent_collect_signals(struct metrics_registry *reg, void *arg);

/* `ksight run` and `ksight trace`: returns the process exit code. */
int agent_main(const struct agent_config *cfg);
/* `ksight probes`: returns the process exit code. */
int probes_main(const struct agent_config *cfg);

#endif
