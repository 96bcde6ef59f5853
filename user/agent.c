/* The agent's life: preflight, load and attach every signal, poll, detach. */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>
#include <linux/types.h>

#include "common.h"
#include "core_cache.h"
#include "env.h"
#include "http.h"
#include "k8s.h"
#include "kernel_features.h"
#include "lazy_mhd.h"
#include "load_parallel.h"
#include "loader.h"
#include "map_ahead.h"
#include "log.h"
#include "metrics.h"
#include "pod_resolver.h"
#include "process_metrics.h"
#include "prog_misses.h"
#include "startup_trace.h"
#include "bpf_maps.h"
#include "util.h"

static bool verbose_libbpf;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!verbose_libbpf)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void agent_identify(struct agent *agent, const struct agent_config *cfg)
{
	const char *node = cfg->node_name ? cfg->node_name : getenv("NODE_NAME");

	agent->cfg = cfg;
	if (node && node[0])
		snprintf(agent->node, sizeof(agent->node), "%s", node);
	else if (gethostname(agent->node, sizeof(agent->node)))
		snprintf(agent->node, sizeof(agent->node), "unknown");
}

static bool signal_selected(const struct agent_config *cfg, const char *name)
{
	int i;

	if (!cfg->signals[0])
		return true;
	for (i = 0; cfg->signals[i]; i++)
		if (strcmp(cfg->signals[i], name) == 0)
			return true;
	return false;
}

/* Sum a per-CPU ringbuf stats slot of one signal; 0 if it has none. */
static uint64_t ringbuf_stat(const struct signal_runtime *rt, __u32 slot)
{
	struct bpf_map *map = bpf_object__find_map_by_name(rt->obj, "ksight_ringbuf_stats");
	uint64_t sum = 0;

	if (map)
		bpf_map_sum_u64(bpf_map__fd(map), &slot, 1, &sum);
	return sum;
}

void agent_publish(struct agent *agent, struct signal_runtime *rt, bool published)
{
	int index = (int)(rt - agent->runtimes);

	pthread_mutex_lock(&agent->runtimes_lock);
	rt->published = published;
	/* the table grows only here, so the collectors never see a slot being filled */
	if (published && index >= agent->n_runtimes)
		agent->n_runtimes = index + 1;
	pthread_mutex_unlock(&agent->runtimes_lock);
}

static void collect_probe_info(struct agent *agent, const struct signal_runtime *rt)
{
	struct bpf_program *prog;
	size_t p, v;

	for (p = 0; p < rt->def->n_points; p++)
		for (v = 0; v < rt->def->points[p].n_variants; v++) {
			const char *labels[4] = { rt->def->name, rt->def->points[p].name,
						  rt->def->points[p].variants[v].name,
						  variant_state_name(rt->status[p].variants[v].state) };

			metrics_gauge_set(agent->probe_info, labels, 1);
		}
	if (!rt->obj)
		return;
	/* every loaded program, attached or standby: a skipped run is an event no metric has */
	bpf_object__for_each_program(prog, rt->obj) {
		const char *labels[2] = { rt->def->name, bpf_program__name(prog) };
		uint64_t misses;
		int fd = bpf_program__fd(prog);

		if (fd >= 0 && prog_misses(fd, &misses) == 0)
			metrics_counter_set(agent->prog_misses, labels, (double)misses);
	}
}

/*
 * On the HTTP thread, before each render. A runtime is published once it is
 * complete (running, or failed and torn down) and unpublished before it is
 * freed, so nothing here reads a runtime that is changing.
 */
void agent_collect_signals(struct metrics_registry *reg, void *arg)
{
	struct agent *agent = arg;
	int r;

	pthread_mutex_lock(&agent->runtimes_lock);
	metrics_family_clear(agent->probe_info);
	metrics_family_clear(agent->prog_misses); /* the programs loaded now only */
	for (r = 0; r < agent->n_runtimes; r++) {
		struct signal_runtime *rt = &agent->runtimes[r];
		const char *sig[1] = { rt->def->name };

		if (!rt->published)
			continue;
		collect_probe_info(agent, rt);
		if (!rt->obj)
			continue;
		metrics_counter_set(agent->ringbuf_lost, sig, (double)ringbuf_stat(rt, KSIGHT_RB_LOST));
		metrics_counter_set(agent->ringbuf_records, sig, (double)ringbuf_stat(rt, KSIGHT_RB_SUBMITTED));
		metrics_counter_set(agent->trace_suppressed, sig, (double)ringbuf_stat(rt, KSIGHT_RB_SUPPRESSED));
		if (rt->running && rt->def->collect)
			rt->def->collect(rt, reg);
	}
	pthread_mutex_unlock(&agent->runtimes_lock);
}

static int agent_metrics_init(struct agent *agent)
{
	static const char *const signal_label[] = { "signal" };
	static const char *const probe_labels[] = { "signal", "probe", "variant", "state" };
	static const char *const prog_labels[] = { "signal", "program" };
	static const char *const build_labels[] = { "version", "commit", "kernel" };
	struct utsname uts;
	const char *build[3] = { KSIGHT_VERSION, KSIGHT_COMMIT, "" };

	agent->metrics = metrics_registry_new(0);
	if (!agent->metrics)
		return -ENOMEM;
	agent->build_info = metrics_family(agent->metrics, "ksight_build_info",
					   "ksight's version and commit, and the running kernel; always 1.",
					   METRIC_GAUGE, build_labels, 3, NULL, 0);
	agent->probe_info = metrics_family(agent->metrics, "ksight_probe_info",
					   "Every probe variant of every signal and its state on this kernel; always 1.",
					   METRIC_GAUGE, probe_labels, 4, NULL, 0);
	agent->prog_misses = metrics_family(agent->metrics, "ksight_bpf_program_misses_total",
					    "Runs of a loaded BPF program the kernel skipped (bpf_prog_info recursion_misses; "
					    "6.7+ also counts a classic tracepoint or kprobe program skipped while another ran "
					    "on its CPU): events no other metric counted. 0 on kernels without the field.",
					    METRIC_COUNTER, prog_labels, 2, NULL, 0);
	agent->ringbuf_records = metrics_family(agent->metrics, "ksight_ringbuf_records_total",
						"Records the BPF programs handed to user space through the ring buffer.",
						METRIC_COUNTER, signal_label, 1, NULL, 0);
	agent->ringbuf_lost = metrics_family(agent->metrics, "ksight_ringbuf_lost_total",
					     "Records lost before user space read them: ring buffer full, or (oom, tracepoint variant) more victims waiting for their exit than the kernel side holds.",
					     METRIC_COUNTER, signal_label, 1, NULL, 0);
	agent->trace_suppressed = metrics_family(agent->metrics, "ksight_trace_suppressed_total",
						 "Records the in-kernel rate limit held back (the signal's metrics still count them).",
						 METRIC_COUNTER, signal_label, 1, NULL, 0);
	agent->events_total = metrics_family(agent->metrics, "ksight_events_total",
					     "Events decoded by user space, by signal.",
					     METRIC_COUNTER, signal_label, 1, NULL, 0);
	if (!agent->build_info || !agent->probe_info || !agent->ringbuf_records || !agent->ringbuf_lost ||
	    !agent->events_total || !agent->trace_suppressed || !agent->prog_misses)
		return -ENOMEM;
	if (uname(&uts) == 0)
		build[2] = uts.release;
	metrics_gauge_set(agent->build_info, build, 1);
	metrics_add_collector(agent->metrics, agent_collect_signals, agent);
	return process_metrics_register(agent->metrics);
}

static int handle_record(void *ctx, void *data, size_t size)
{
	struct signal_runtime *rt = ctx;
	const char *sig[1] = { rt->def->name };

	metrics_counter_add(rt->agent->events_total, sig, 1);
	if (!rt->def->handle_event || rt->def->handle_event(rt, data, size))
		log_warn("%s: dropped a malformed record of %zu bytes", rt->def->name, size);
	return 0;
}

static int add_ringbuf(struct agent *agent, struct signal_runtime *rt)
{
	struct bpf_map *map = bpf_object__find_map_by_name(rt->obj, rt->def->ringbuf_map);
	int fd;

	if (!map)
		return -ENOENT;
	fd = bpf_map__fd(map);
	if (!agent->ringbuf) {
		agent->ringbuf = ring_buffer__new(fd, handle_record, rt, NULL);
		return agent->ringbuf ? 0 : neg_errno_or(ENOMEM); /* libbpf may leave errno 0 */
	}
	return ring_buffer__add(agent->ringbuf, fd, handle_record, rt);
}

/* A runtime that cannot run: nothing of it stays loaded, its status stays for `probes` and probe_info. */
static void runtime_failed(struct signal_runtime *rt)
{
	if (rt->def->stop && rt->priv)
		rt->def->stop(rt);
	signal_unload(rt);
	if (rt->def->fini && rt->priv)
		rt->def->fini(rt);
	rt->priv = NULL;
}

/* Initialise and attach one loaded signal; 0 when it runs, else rt->error says why. */
static int runtime_start(struct agent *agent, struct signal_runtime *rt, bool with_user_half,
			 const struct load_options *lo)
{
	int err, tries;

	/* each round rules out the variant that loaded and did not attach: at most one per variant */
	for (tries = 0; tries <= SIGNAL_MAX_POINTS * PROBE_MAX_VARIANTS; tries++) {
		if (with_user_half && rt->def->init) {
			err = rt->def->init(rt);
			if (err) {
				snprintf(rt->error, sizeof(rt->error), "cannot start: %s",
					 strerror(err < 0 ? -err : EINVAL));
				return err < 0 ? err : -EINVAL;
			}
			startup_mark("%s: init", rt->def->name);
		}
		signal_attach(rt, !with_user_half);
		startup_mark("%s: attach", rt->def->name);
		if (!lo->preferred_only || !signal_wants_fallbacks(rt))
			break;
		/* a preferred variant loaded and did not attach: undo, load again with its fallback */
		runtime_failed(rt);
		err = signal_load_fallbacks(rt, lo);
		startup_mark("%s: load with a fallback", rt->def->name);
		if (err)
			return err;
	}
	if (!rt->running)
		return -ENOENT;
	if (with_user_half && rt->def->ringbuf_map) {
		err = add_ringbuf(agent, rt);
		if (err) {
			snprintf(rt->error, sizeof(rt->error), "cannot read its ring buffer: %s", strerror(-err));
			return err;
		}
	}
	return 0;
}

struct start_ctx {
	struct agent *agent;
	const struct load_options *lo;
	struct signal_runtime **todo;
	bool with_user_half;
	int running;
};

/* On the starting thread, as each object is loaded: its user half, its probes (others may still load). */
static void start_loaded(int i, int err, void *arg)
{
	struct start_ctx *c = arg;
	struct signal_runtime *rt = c->todo[i];

	if (err || runtime_start(c->agent, rt, c->with_user_half, c->lo)) {
		if (c->with_user_half) {
			log_warn("%s: %s", rt->def->name, rt->error);
			runtime_failed(rt);
		}
	} else {
		c->running++;
	}
	agent_publish(c->agent, rt, true);
}

/*
 * What orders the loads: each signal is attached on the main thread as soon as
 * its object is loaded, and attaching is the slow part now (every tracepoint a
 * program attaches to is enabled by patching kernel text: fserr's eight took
 * 3-5 ms, its load 2.4). The signals with the most probe points go first, so
 * their attachments overlap the others' loads (measured: ready 1.5 ms sooner
 * than with the BTF-typed programs first, once apilat's verifier runs got short).
 */
static int attach_weight(const struct signal_def *def)
{
	return (int)def->n_points;
}

/* order[0..n): indexes of defs[], the most probe points first (stable: table order among equals). */
static void most_points_first(const struct signal_def *const *defs, int n, int *order)
{
	int i, j, k;

	for (i = 0; i < n; i++) {
		k = i;
		while (k > 0 && attach_weight(defs[order[k - 1]]) < attach_weight(defs[i]))
			k--;
		for (j = i; j > k; j--)
			order[j] = order[j - 1];
		order[k] = i;
	}
}

/*
 * Load every selected signal's object, side by side (that is most of the
 * start-up), the long loads first; each is initialised and attached as soon
 * as it is loaded. A signal that fails is reported and skipped.
 */
static int agent_start_signals(struct agent *agent, const struct load_options *lo, bool with_user_half)
{
	struct signal_runtime *todo[AGENT_MAX_SIGNALS];
	const struct signal_def *defs[AGENT_MAX_SIGNALS];
	int order[AGENT_MAX_SIGNALS];
	struct start_ctx c = { .agent = agent, .lo = lo, .todo = todo, .with_user_half = with_user_half };
	int n = 0, i;

	for (i = 0; ksight_signals[i]; i++) {
		struct signal_runtime *rt;

		if (!signal_selected(agent->cfg, ksight_signals[i]->name))
			continue;
		if (agent->n_runtimes + n == AGENT_MAX_SIGNALS) {
			log_warn("%s: not started: more than %d signals", ksight_signals[i]->name, AGENT_MAX_SIGNALS);
			continue;
		}
		rt = &agent->runtimes[agent->n_runtimes + n]; /* counted once published */
		rt->def = ksight_signals[i];
		rt->agent = agent;
		todo[n++] = rt;
	}
	for (i = 0; i < n; i++)
		defs[i] = todo[i]->def;
	most_points_first(defs, n, order);
	if (signal_load_many(todo, order, n, lo, signal_load_threads(), start_loaded, &c))
		log_error("cannot load the signals: out of memory");
	startup_mark("all signals loaded and started");
	return c.running;
}

/*
 * Stop in the order that loses nothing: detach every probe (no new records),
 * drain what the rings hold, let the Event recorder deliver (bounded), then
 * stop serving, hide the runtimes from the collectors and free them.
 */
static void agent_stop(struct agent *agent)
{
	int i;

	pthread_mutex_lock(&agent->runtimes_lock);
	for (i = 0; i < agent->n_runtimes; i++)
		signal_detach(&agent->runtimes[i]);
	pthread_mutex_unlock(&agent->runtimes_lock);
	/* the signals' own threads may post Events and read the pod cache: stop them before those go */
	for (i = 0; i < agent->n_runtimes; i++)
		if (agent->runtimes[i].def->stop && agent->runtimes[i].priv)
			agent->runtimes[i].def->stop(&agent->runtimes[i]);
	if (agent->ringbuf)
		ring_buffer__consume(agent->ringbuf);
	k8s_stop(agent);
	http_server_stop(agent->http);
	agent->http = NULL;
	for (i = 0; i < agent->n_runtimes; i++)
		agent_publish(agent, &agent->runtimes[i], false);
	ring_buffer__free(agent->ringbuf);
	agent->ringbuf = NULL;
	for (i = agent->n_runtimes - 1; i >= 0; i--)
		runtime_failed(&agent->runtimes[i]);
	if (agent->metrics)
		metrics_registry_free(agent->metrics);
	agent->metrics = NULL;
	maps_ahead_finish(); /* a start that failed before the loads */
	kernel_features_close(&agent->kf);
	agent->btf = NULL;
	pod_resolver_free(agent->resolver);
	agent->resolver = NULL;
}

static void describe_attached(const struct agent *agent)
{
	char line[512];
	size_t len;
	int r;
	size_t p;

	for (r = 0; r < agent->n_runtimes; r++) {
		const struct signal_runtime *rt = &agent->runtimes[r];

		if (!rt->running)
			continue;
		len = 0;
		line[0] = '\0';
		for (p = 0; p < rt->def->n_points; p++) {
			int a = rt->status[p].attached;

			len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s=%s", p ? ", " : "",
						rt->def->points[p].name,
						a >= 0 ? rt->def->points[p].variants[a].name : "none");
			if (len >= sizeof(line))
				break;
		}
		log_info("%s: attached (%s)", rt->def->name, line);
	}
}

/* The signals this agent starts, in table order; returns how many. */
static int selected_defs(const struct agent *agent, const struct signal_def **defs)
{
	int n = 0, i;

	for (i = 0; ksight_signals[i] && n < AGENT_MAX_SIGNALS; i++)
		if (signal_selected(agent->cfg, ksight_signals[i]->name))
			defs[n++] = ksight_signals[i];
	return n;
}

/* The per-boot cache's directory (core_cache.h), or NULL: none asked for, or another kernel's BTF (--btf). */
static const char *agent_cache_dir(const struct agent *agent)
{
	const struct agent_config *cfg = agent->cfg;

	if (!cfg || cfg->btf_path)
		return NULL;
	if (!cfg->cache_dir)
		return CORE_CACHE_DEFAULT_DIR;
	return strcmp(cfg->cache_dir, "none") ? cfg->cache_dir : NULL;
}

static int agent_prepare(struct agent *agent, const struct agent_config *cfg)
{
	const struct signal_def *defs[AGENT_MAX_SIGNALS], *ordered[AGENT_MAX_SIGNALS];
	int order[AGENT_MAX_SIGNALS], n, i;
	struct kernel_features *kf = &agent->kf;

	char err[512];
	int ret;

	agent_identify(agent, cfg);
	verbose_libbpf = cfg->verbose;
	libbpf_set_print(libbpf_print);
	ret = env_preflight(cfg->btf_path, err, sizeof(err));
	if (ret) {
		log_error("%s", err);
		return ret;
	}
	if (env_warnings()[0])
		log_warn("%s", env_warnings());
	startup_mark("preflight");
	/* the maps on the other CPU while this one parses the kernel BTF (map_ahead.h), in load order */
	n = selected_defs(agent, defs);
	most_points_first(defs, n, order);
	for (i = 0; i < n; i++)
		ordered[i] = defs[order[i]];
	if (maps_ahead_start(ordered, n, agent_cache_dir(agent)))
		log_warn("cannot create the maps ahead: the loads create them, slower");
	ret = kernel_features_open(kf, cfg->btf_path);
	if (ret) {
		char why[128];

		libbpf_strerror(ret, why, sizeof(why));
		log_error("cannot read kernel BTF%s%s: %s", cfg->btf_path ? " " : "",
			  cfg->btf_path ? cfg->btf_path : "", why);
		return ret;
	}
	agent->btf = kernel_features_btf(kf);
	if (cfg->verbose)
		log_info("kernel BTF: %u types, parsed once for every signal", btf__type_cnt(agent->btf));
	startup_mark("kernel BTF parse");
	return 0;
}

/*
 * The small CO-RE copy of the kernel BTF for the selected signals (loader.h):
 * its fd, or -errno to load against the whole BTF (KSIGHT_CORE_BTF=0 asks
 * for that, to compare).
 */
static int agent_core_btf(struct agent *agent, char *path, size_t pathlen)
{
	const struct signal_def *defs[AGENT_MAX_SIGNALS];
	const char *env = getenv("KSIGHT_CORE_BTF"), *dir = agent_cache_dir(agent);
	struct core_cache_use use;
	int fd;

	if (env && !strcmp(env, "0"))
		return -ECANCELED;
	fd = signal_core_btf_cached(defs, selected_defs(agent, defs), agent->btf, dir, path, pathlen, &use);
	if (fd < 0)
		log_warn("cannot make a small copy of the kernel BTF (%s): the signals load against the whole one, slower",
			 strerror(-fd));
	else if (use.load == -EPERM || use.load == -EBADMSG)
		log_warn("per-boot cache: ignored %s/core-btf-*: %s; built the copy again", dir,
			 use.load == -EPERM ? "not private to ksight's user (another user's, writable by others, or a link)" :
					      "not a whole entry");
	if (fd >= 0 && agent->cfg->verbose) {
		if (!use.load)
			log_info("CO-RE copy of the kernel BTF: taken from the per-boot cache in %s", dir);
		else if (!use.store)
			log_info("CO-RE copy of the kernel BTF: built, stored in the per-boot cache in %s", dir);
		else
			log_info("CO-RE copy of the kernel BTF: built");
		if (use.load && use.store && use.store != -ECANCELED)
			log_info("per-boot cache %s not written (%s): the next start builds the copy again", dir,
				 strerror(-use.store));
	}
	startup_mark(use.load ? "CO-RE BTF copy" : "CO-RE BTF copy from the per-boot cache");
	return fd;
}

/* Load and attach every selected signal, CO-RE against the small copy when there is one. */
static int agent_start_all(struct agent *agent, const struct load_options *base, bool with_user_half)
{
	struct load_options lo = *base;
	char path[64];
	int fd = agent_core_btf(agent, path, sizeof(path)), running;

	lo.core_btf_path = fd >= 0 ? path : NULL;
	/* run and trace attach one variant per point; `probes` (no user half) tries them all */
	lo.preferred_only = with_user_half;
	running = agent_start_signals(agent, &lo, with_user_half);
	maps_ahead_finish();
	if (fd >= 0)
		close(fd);
	return running;
}

/* Once every signal has read what it needs (their init): the parsed BTF is megabytes of RSS. */
static void agent_release_btf(struct agent *agent)
{
	kernel_features_close(&agent->kf);
	agent->btf = NULL;
}

static struct agent *agent_new(void)
{
	struct agent *agent = calloc(1, sizeof(*agent));

	if (agent)
		pthread_mutex_init(&agent->runtimes_lock, NULL);
	return agent;
}

static void agent_free(struct agent *agent)
{
	agent_stop(agent);
	pthread_mutex_destroy(&agent->runtimes_lock);
	free(agent);
}

/*
 * Sleep until a ring buffer has records or SIGINT/SIGTERM arrives: no timer,
 * so an idle agent never wakes up. ring_buffer's own epoll fd nests in ours.
 */
int agent_loop(struct agent *agent, const sigset_t *stop_signals)
{
	struct epoll_event ev = { .events = EPOLLIN }, ready[2];
	int ep, sfd, n, i, ret = 0;
	bool stop = false;

	ep = epoll_create1(EPOLL_CLOEXEC);
	sfd = signalfd(-1, stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
	if (ep < 0 || sfd < 0) {
		ret = -errno;
		goto out;
	}
	ev.data.fd = sfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev)) {
		ret = -errno;
		goto out;
	}
	/* map-only signals have no ring: then only the stop signals wake us */
	if (agent->ringbuf) {
		ev.data.fd = ring_buffer__epoll_fd(agent->ringbuf);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev)) {
			ret = -errno;
			goto out;
		}
	}
	while (!stop) {
		n = epoll_wait(ep, ready, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		for (i = 0; i < n; i++) {
			int consumed;

			if (ready[i].data.fd == sfd) {
				stop = true;
				continue;
			}
			consumed = ring_buffer__consume(agent->ringbuf);
			if (consumed < 0 && consumed != -EINTR) {
				ret = consumed;
				stop = true;
			}
		}
	}
out:
	if (sfd >= 0)
		close(sfd);
	if (ep >= 0)
		close(ep);
	return ret;
}

int agent_main(const struct agent_config *cfg)
{
	struct agent *agent = agent_new();
	sigset_t stop_signals;
	struct load_options lo;
	int64_t started = clock_ns(CLOCK_MONOTONIC);
	int exit_code = 1, ret, i;
	char err[512];

	if (!agent)
		return 1;
	startup_trace_begin();
	/* before any thread starts, so every thread inherits the mask: signalfd gets them */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (cfg->mode == MODE_RUN)
		lazy_mhd_prefetch(); /* the endpoint's library, opened on the side while the BPF work goes on */
	if (agent_prepare(agent, cfg))
		goto out;
	agent->trace = cfg->mode == MODE_TRACE;
	if (agent_metrics_init(agent)) {
		log_error("cannot set up metrics: out of memory");
		goto out;
	}
	if (k8s_start(agent))
		goto out;
	ret = pod_resolver_new(NULL, &agent->resolver);
	if (ret)
		log_warn("cannot map network namespaces to pods: %s; netns labels stay inodes", strerror(-ret));
	startup_mark("metrics, k8s, pod resolver");
	/*
	 * Bind first: a taken port should fail before the slow BPF work. Serve
	 * once ready: what connects meanwhile waits in the kernel's queue and is
	 * answered then, and no answering takes CPU from the start.
	 */
	if (cfg->mode == MODE_RUN) {
		ret = http_server_bind(cfg->listen, agent->metrics, NULL, &agent->http, err, sizeof(err));
		if (ret) {
			log_error("%s", err);
			goto out;
		}
		startup_mark("HTTP listen");
	}
	lo = (struct load_options){ .btf_path = cfg->btf_path, .kf = &agent->kf,
				    .probe_overrides = cfg->probe_overrides };
	if (agent_start_all(agent, &lo, true) == 0) {
		log_error("no signal could be started on this kernel (see the lines above, or `ksight probes`)");
		goto out;
	}
	describe_attached(agent);
	/*
	 * Every signal has read what it needs from the kernel BTF (the warm-ups
	 * do not): give its megabytes back before saying ready, and what the
	 * loads freed with them (the loader threads' heaps too).
	 */
	agent_release_btf(agent);
	malloc_trim(0);
	startup_mark("signals started, BTF released, heap trimmed");
	if (agent->http) {
		http_server_set_ready(agent->http, 1);
		ret = http_server_serve(agent->http, err, sizeof(err));
		if (ret) {
			log_error("%s", err);
			goto out;
		}
		log_info("ready in %" PRId64 " ms; metrics on http://%s/metrics", (clock_ns(CLOCK_MONOTONIC) - started) / 1000000,
			 cfg->listen);
	} else {
		log_info("ready in %" PRId64 " ms; tracing until interrupted", (clock_ns(CLOCK_MONOTONIC) - started) / 1000000);
	}

	for (i = 0; i < agent->n_runtimes; i++)
		if (agent->runtimes[i].running && agent->runtimes[i].def->warm_up) {
			agent->runtimes[i].def->warm_up(&agent->runtimes[i]);
			startup_mark("%s: warm-up", agent->runtimes[i].def->name);
		}
	malloc_trim(0); /* what the warm-ups freed */
	startup_mark("warm-ups done, heap trimmed");

	ret = agent_loop(agent, &stop_signals);
	if (ret) {
		log_error("the event loop failed: %s", strerror(-ret));
		goto out;
	}
	log_info("stopping: detaching every probe");
	exit_code = 0;
out:
	agent_free(agent);
	return exit_code;
}

static void print_probes_text(const struct agent *agent)
{
	int r;
	size_t p, v;

	printf("%-8s %-14s %-11s %-14s %s\n", "SIGNAL", "PROBE", "VARIANT", "STATE", "WHY");
	for (r = 0; r < agent->n_runtimes; r++) {
		const struct signal_runtime *rt = &agent->runtimes[r];

		for (p = 0; p < rt->def->n_points; p++)
			for (v = 0; v < rt->def->points[p].n_variants; v++) {
				const struct variant_status *vs = &rt->status[p].variants[v];

				printf("%-8s %-14s %-11s %-14s %s\n", p == 0 && v == 0 ? rt->def->name : "",
				       v == 0 ? rt->def->points[p].name : "", rt->def->points[p].variants[v].name,
				       variant_state_name(vs->state), vs->reason);
			}
		if (!rt->running)
			printf("%-8s %s\n", "", rt->error);
	}
}

static void print_probes_json(const struct agent *agent)
{
	json_object *root = json_object_new_object(), *signals = json_object_new_array();
	struct utsname uts;
	int r;
	size_t p, v;

	if (uname(&uts) == 0)
		json_object_object_add(root, "kernel", json_object_new_string(uts.release));
	for (r = 0; r < agent->n_runtimes; r++) {
		const struct signal_runtime *rt = &agent->runtimes[r];
		json_object *sig = json_object_new_object(), *points = json_object_new_array();

		json_object_object_add(sig, "signal", json_object_new_string(rt->def->name));
		json_object_object_add(sig, "summary", json_object_new_string(rt->def->summary));
		json_object_object_add(sig, "running", json_object_new_boolean(rt->running));
		json_object_object_add(sig, "error", rt->running ? NULL : json_object_new_string(rt->error));
		for (p = 0; p < rt->def->n_points; p++) {
			const struct probe_point *pt = &rt->def->points[p];
			json_object *point = json_object_new_object(), *variants = json_object_new_array();
			int a = rt->status[p].attached;

			json_object_object_add(point, "probe", json_object_new_string(pt->name));
			json_object_object_add(point, "attached",
					       a >= 0 ? json_object_new_string(pt->variants[a].name) : NULL);
			for (v = 0; v < pt->n_variants; v++) {
				json_object *var = json_object_new_object();

				json_object_object_add(var, "variant", json_object_new_string(pt->variants[v].name));
				json_object_object_add(var, "state", json_object_new_string(
					variant_state_name(rt->status[p].variants[v].state)));
				json_object_object_add(var, "reason", json_object_new_string(
					rt->status[p].variants[v].reason));
				json_object_array_add(variants, var);
			}
			json_object_object_add(point, "variants", variants);
			json_object_array_add(points, point);
		}
		json_object_object_add(sig, "probes", points);
		json_object_array_add(signals, sig);
	}
	json_object_object_add(root, "signals", signals);
	puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

int probes_main(const struct agent_config *cfg)
{
	struct agent *agent = agent_new();
	struct load_options lo;
	int exit_code = 1;

	if (!agent)
		return 1;
	if (agent_prepare(agent, cfg))
		goto out;
	lo = (struct load_options){ .btf_path = cfg->btf_path, .kf = &agent->kf,
				    .probe_overrides = cfg->probe_overrides };
	agent_start_all(agent, &lo, false);
	if (cfg->format == OUTPUT_JSON)
		print_probes_json(agent);
	else
		print_probes_text(agent);
	exit_code = 0;
out:
	agent_free(agent);
	return exit_code;
}
