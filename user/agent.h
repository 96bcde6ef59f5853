/* The agent: the signals, their ring buffers, the metrics and the outputs of one process. */
#ifndef KSIGHT_AGENT_H
#define KSIGHT_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "signal_def.h"

#define AGENT_MAX_LIST 16

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
	const char *kubeconfig;                      /* run, trace: NULL = in-cluster */
	bool no_k8s;                                 /* run, trace: never talk to the API */
	bool verbose;
};

struct metrics_registry;
struct metric_family;
struct http_server;
struct ring_buffer;
struct pod_cache;
struct pod_watcher;
struct event_recorder;

struct agent {
	const struct agent_config *cfg;
	char node[256];
	/* CLOCK_REALTIME - CLOCK_BOOTTIME; NULL: read both clocks at each event (follows clock steps) */
	int64_t (*boot_to_wall_ns)(void);
	struct metrics_registry *metrics;
	struct signal_runtime runtimes[SIGNAL_MAX_POINTS];
	int n_runtimes;
	struct ring_buffer *ringbuf;
	struct http_server *http;
	struct pod_cache *pods;          /* NULL without the Kubernetes API */
	struct pod_watcher *pod_watcher;
	struct event_recorder *recorder; /* NULL without the API, and in trace/probes */
	bool trace;               /* print events (ksight trace) */
	bool header_printed;
	struct metric_family *ringbuf_lost, *ringbuf_records, *probe_info, *build_info, *events_total;
};

/* `ksight run` and `ksight trace`: returns the process exit code. */
int agent_main(const struct agent_config *cfg);
/* `ksight probes`: returns the process exit code. */
int probes_main(const struct agent_config *cfg);

#endif
