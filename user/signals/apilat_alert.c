/* apilat's slow-response Event (apilat_alert.h): the thread, the map read, the Event. */
#include "apilat_alert.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/types.h>

#include "agent.h"
#include "apilat_client.h"
#include "apilat_p99.h"
#include "bpf_maps.h"
#include "k8s.h"
#include "log.h"
#include "pod_resolver.h"
#include "util.h"

#define KEY_MAX	 600
#define TEXT_MAX 600

struct row {
	char key[KEY_MAX];
	char text[TEXT_MAX];
	uint64_t *counts;        /* n_buckets, summed over CPUs and kernel keys */
};

struct apilat_alert {
	struct agent *agent;
	int hist_fd;
	size_t n_buckets;
	struct apilat_p99 *p99;
	uint64_t threshold_ns, window_ns;

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;

	/* one tick's rows (the thread's own) */
	struct row *rows;
	size_t n, cap;
	struct bpf_map_shape shape;
	uint64_t *sums;          /* 1 + APILAT_MAX_BUCKETS */
};

static void format_duration(uint64_t ns, char *out, size_t len)
{
	if (ns >= NSEC_PER_SEC)
		snprintf(out, len, "%g s", (double)ns / 1e9);
	else
		snprintf(out, len, "%g ms", (double)ns / 1e6);
}

static struct row *row_for(struct apilat_alert *a, const char *key, const char *text)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (!strcmp(a->rows[i].key, key))
			return &a->rows[i];
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 8, j;
		struct row *nr = realloc(a->rows, ncap * sizeof(*nr));

		if (!nr)
			return NULL;
		for (j = a->cap; j < ncap; j++)
			nr[j].counts = NULL;
		a->rows = nr;
		a->cap = ncap;
	}
	if (!a->rows[a->n].counts) {
		a->rows[a->n].counts = malloc(a->n_buckets * sizeof(uint64_t));
		if (!a->rows[a->n].counts)
			return NULL;
	}
	memset(a->rows[a->n].counts, 0, a->n_buckets * sizeof(uint64_t));
	snprintf(a->rows[a->n].key, KEY_MAX, "%s", key);
	snprintf(a->rows[a->n].text, TEXT_MAX, "%s", text);
	return &a->rows[a->n++];
}

static int visit(const void *key, const void *value, void *arg)
{
	const struct apilat_hist_key *k = key;
	struct apilat_alert *a = arg;
	struct event_common ev = { .signal = "apilat" };
	char comm[KSIGHT_COMM_LEN + 1], text[TEXT_MAX], ckey[KEY_MAX];
	struct pod_ref ref;
	struct row *r;
	size_t j;

	if (k->kind != APILAT_HIST_RESPONSE)
		return 0;
	bpf_percpu_sum_u64(&a->shape, value, 1 + a->n_buckets, a->sums);
	apilat_client_event(a->agent, &k->client, &ev, &ref, comm);
	apilat_client_describe(&ev, text, sizeof(text), ckey, sizeof(ckey));
	r = row_for(a, ckey, text);
	if (!r)
		return -ENOMEM;
	for (j = 0; j < a->n_buckets; j++)
		r->counts[j] += a->sums[1 + j];
	return 0;
}

static void post(struct apilat_alert *a, const struct row *r, const struct apilat_p99_verdict *v)
{
	char message[1024], p99[32], window[32], threshold[32];
	struct k8s_object_ref node;

	format_duration((uint64_t)v->p99_ns, p99, sizeof(p99));
	format_duration(a->window_ns, window, sizeof(window));
	format_duration(a->threshold_ns, threshold, sizeof(threshold));
	snprintf(message, sizeof(message),
		 "API server responses to %s are slow: p99 %s over the last %s (%" PRIu64 " responses), "
		 "above the threshold of %s (request to first response byte, measured on this node)",
		 r->text, p99, window, v->responses, threshold);
	k8s_node_ref(a->agent, &node);
	k8s_record_event(a->agent, &node, "Warning", APILAT_ALERT_REASON, message, r->key, 0);
}

static void tick(struct apilat_alert *a)
{
	uint64_t now = (uint64_t)clock_ns(CLOCK_MONOTONIC);
	struct apilat_p99_verdict v;
	size_t i;
	int err;

	a->n = 0;
	err = bpf_map_shape_of(a->hist_fd, &a->shape);
	if (!err)
		err = bpf_map_walk(a->hist_fd, visit, a);
	if (err) {
		/* a partial read would look like shrunk histograms: skip the tick */
		log_warn("apilat: cannot read the response histograms: %s", strerror(-err));
		return;
	}
	for (i = 0; i < a->n; i++)
		if (apilat_p99_observe(a->p99, a->rows[i].key, a->rows[i].counts, now, &v) == 1)
			post(a, &a->rows[i], &v);
	apilat_p99_sweep(a->p99, now);
}

static void *alert_main(void *arg)
{
	struct apilat_alert *a = arg;
	int64_t next = clock_ns(CLOCK_MONOTONIC);

	pthread_mutex_lock(&a->lock);
	while (!a->stop) {
		struct timespec ts;

		next += (int64_t)apilat_p99_tick_ns(a->p99);
		ts = (struct timespec){ .tv_sec = next / NSEC_PER_SEC, .tv_nsec = next % NSEC_PER_SEC };
		while (!a->stop && pthread_cond_timedwait(&a->wake, &a->lock, &ts) != ETIMEDOUT)
			;
		if (a->stop)
			break;
		pthread_mutex_unlock(&a->lock);
		tick(a);
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static void alert_free(struct apilat_alert *a)
{
	size_t i;

	for (i = 0; i < a->cap; i++)
		free(a->rows[i].counts);
	free(a->rows);
	free(a->sums);
	apilat_p99_free(a->p99);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int apilat_alert_start(struct agent *agent, int hist_fd, uint32_t lo_exp, uint32_t hi_exp,
		       struct apilat_alert **out)
{
	const struct agent_config *cfg = agent->cfg;
	struct apilat_p99_config pc;
	pthread_condattr_t attr;
	struct apilat_alert *a;
	char threshold[32], window[32];
	int err;

	*out = NULL;
	if (!cfg || !cfg->apilat_p99_threshold_ns)
		return 0;
	if (!agent->recorder) {
		log_info("apilat: --apilat-p99-threshold is set but no Events can be posted (no Kubernetes API)");
		return 0;
	}
	pc = (struct apilat_p99_config){ .threshold_ns = cfg->apilat_p99_threshold_ns,
					 .window_ns = cfg->apilat_window_ns, .lo_exp = lo_exp, .hi_exp = hi_exp };
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->agent = agent;
	a->hist_fd = hist_fd;
	a->threshold_ns = pc.threshold_ns;
	a->window_ns = pc.window_ns;
	a->n_buckets = apilat_n_finite(lo_exp, hi_exp) + 1;
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&a->wake, &attr);
	pthread_condattr_destroy(&attr);
	a->p99 = apilat_p99_new(&pc);
	a->sums = calloc(1 + APILAT_MAX_BUCKETS, sizeof(*a->sums));
	if (!a->p99 || !a->sums) {
		alert_free(a);
		return -ENOMEM;
	}
	err = pthread_create(&a->thread, NULL, alert_main, a);
	if (err) {
		alert_free(a);
		return -err;
	}
	format_duration(pc.threshold_ns, threshold, sizeof(threshold));
	format_duration(pc.window_ns, window, sizeof(window));
	log_info("apilat: a %s Event on the Node when a client's p99 response time over %s is above %s",
		 APILAT_ALERT_REASON, window, threshold);
	*out = a;
	return 0;
}

void apilat_alert_stop(struct apilat_alert *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	alert_free(a);
}
