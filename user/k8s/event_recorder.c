/*
 * Kubernetes Event recorder (see event_recorder.h).
 *
 * record() copies the occurrence onto an input list under a mutex and wakes
 * the worker. The worker runs each occurrence through the correlator and
 * turns it into an "item": one Event object to bring up to date on the
 * server (POST or PATCH). A later occurrence of the same series while its
 * item is still queued (or waiting for a retry) is folded into that item, so
 * there is at most one item per Event object and requests for one object
 * never overtake each other. Items waiting for a retry keep their place but
 * do not hold up the others: the worker sends the first item that is due.
 *
 * The queue bound covers both lists: occurrences not yet correlated plus
 * items not yet delivered.
 *
 * Trade-off: retries are per item. While the API server is down, each
 * queued item retries on its own schedule (at most one request per item per
 * 60 s once backed off, and one request at a time), rather than the whole
 * queue pausing behind one probe.
 *
 * In order below: the queued occurrence and item, correlating one
 * occurrence into an item, sending one item (and what an answer means for
 * it), the worker loop, then the public entry points.
 */
#include "event_recorder.h"
#include "event_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "backoff.h"
#include "event_correlator.h"
#include "k8s_event_body.h"
#include "log.h"
#include "util.h"

#ifndef KSIGHT_VERSION
#define KSIGHT_VERSION "dev"
#endif

#define MAX_RESPONSE   (64 * 1024)
#define REJECT_LOG_MAX 64

static const struct backoff_policy event_backoff = {
	.min_ms = K8S_EVENT_BACKOFF_MIN_MS,
	.max_ms = K8S_EVENT_BACKOFF_MAX_MS,
	.retry_after_max_s = K8S_EVENT_RETRY_AFTER_MAX_S,
};

/* One occurrence as record() copied it: `ev` points into `data`. */
struct rec_event {
	struct rec_event *next;
	struct k8s_event ev;
	char data[];
};

/* One Event object to bring up to date on the server. */
struct rec_item {
	struct rec_item *next;
	struct rec_event *e;     /* the newest occurrence: its message is sent */
	enum ec_action action;   /* EC_CREATE or EC_PATCH */
	char name[EC_NAME_MAX];
	int32_t count;
	int64_t first_ns, last_ns;
	unsigned int failures;   /* attempts that failed with a retryable error */
	int64_t due_ns;          /* CLOCK_MONOTONIC; 0: now */
	bool recreate;           /* a PATCH found it gone: a successful POST counts as recreated */
	bool renamed;            /* a 409 was already answered with a new name */
};

struct rec_seen {
	long status;
	char ns[64];
};

struct event_recorder {
	pthread_mutex_t lock;
	pthread_cond_t wake;     /* worker: input or stop */
	pthread_cond_t drained;  /* flush: nothing left */
	pthread_t thread;

	/* under lock */
	bool stop;
	struct rec_event *in_head, **in_tail;
	size_t in_len;           /* occurrences not yet correlated (incl. the batch being correlated) */
	size_t pending_len;      /* the worker's n_items, published */
	size_t cap;

	/* read-only after start */
	char *component, *host;
	char server[512];
	struct metric_family *results;
	struct event_log *log;   /* --events-log; NULL: none */

	/* worker only */
	struct k8s_client *client;
	struct event_correlator *ec;
	struct rec_item *items, **items_tail;
	size_t n_items;
	uint64_t rnd;
	bool failing;            /* since the last success, something failed: logged once */
	bool gave_up_logged;
	struct rec_seen seen[REJECT_LOG_MAX];
	size_t n_seen;

	int invalid_logged;      /* atomic */
};

static const char *const rec_results[] = {
	"created", "patched", "recreated", "throttled", "queue_full", "retried", "failed", "rejected",
};

static void rec_count(struct event_recorder *r, const char *result)
{
	if (r->results)
		metrics_counter_add(r->results, &result, 1);
}

/* --events-log: what became of an occurrence (name NULL) or an Event object */
static void rec_log(struct event_recorder *r, const struct k8s_event *ev, const char *name, int32_t count,
		    int64_t time_ns, const char *outcome)
{
	if (r->log)
		event_log_write(r->log, &(struct event_log_entry){
			.ev = ev, .time_ns = time_ns ? time_ns : clock_ns(CLOCK_REALTIME), .count = count,
			.node = r->host, .outcome = outcome, .event_name = name });
}

static struct timespec ns_to_ts(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / NSEC_PER_SEC, .tv_nsec = ns % NSEC_PER_SEC };

	return ts;
}

static struct rec_event *rec_event_copy(const struct k8s_event *src, int64_t now_ns)
{
	const char *in[] = {
		src->type, src->reason, src->message, src->key, src->object.kind,
		src->object.namespace_, src->object.name, src->object.uid, src->object.field_path,
	};
	enum { N = sizeof(in) / sizeof(in[0]) };
	size_t len[N], total = 0, i;
	const char *out[N];
	struct rec_event *e;
	char *p;

	for (i = 0; i < N; i++) {
		len[i] = in[i] ? strlen(in[i]) : 0;
		total += len[i] + 1;
	}
	/* only what can be sent is kept */
	len[2] = k8s_utf8_prefix(in[2], len[2], K8S_EVENT_MESSAGE_MAX);
	e = malloc(sizeof(*e) + total);
	if (!e)
		return NULL;
	p = e->data;
	for (i = 0; i < N; i++) {
		if (len[i])
			memcpy(p, in[i], len[i]);
		p[len[i]] = '\0';
		out[i] = p;
		p += len[i] + 1;
	}
	e->next = NULL;
	e->ev = (struct k8s_event){
		.type = out[0], .reason = out[1], .message = out[2], .key = out[3],
		.object = { .kind = out[4], .namespace_ = out[5], .name = out[6], .uid = out[7],
			    .field_path = out[8] },
		.time_ns = src->time_ns ? src->time_ns : now_ns,
	};
	return e;
}

static void rec_to_ec(const struct k8s_event *ev, struct ec_event *out)
{
	*out = (struct ec_event){
		.type = ev->type, .reason = ev->reason, .key = ev->key,
		.object = { .kind = ev->object.kind, .namespace_ = ev->object.namespace_,
			    .name = ev->object.name, .uid = ev->object.uid, .api_version = "v1",
			    .field_path = ev->object.field_path },
	};
}

static void rec_item_remove(struct event_recorder *r, struct rec_item *it)
{
	struct rec_item **pp = &r->items;

	while (*pp != it)
		pp = &(*pp)->next;
	*pp = it->next;
	if (r->items_tail == &it->next)
		r->items_tail = pp;
	r->n_items--;
	free(it->e);
	free(it);
}

/* Correlate one occurrence into the item list; takes ownership of `e`. */
static void rec_correlate(struct event_recorder *r, struct rec_event *e)
{
	struct ec_decision d;
	struct ec_event ce;
	struct rec_item *it;
	int err;

	rec_to_ec(&e->ev, &ce);
	err = event_correlator_observe(r->ec, &ce, e->ev.time_ns, &d);
	if (err || d.action == EC_THROTTLED) {
		rec_count(r, err == -EINVAL ? "rejected" : err ? "failed" : "throttled");
		rec_log(r, &e->ev, NULL, 1, e->ev.time_ns, err == -EINVAL ? "rejected" : err ? "failed" : "throttled");
		free(e);
		return;
	}
	/* one item per Event object: fold into the queued one, keep its place and retry time */
	for (it = r->items; it; it = it->next) {
		if (strcmp(it->name, d.name))
			continue;
		if (d.action == EC_CREATE)
			it->action = EC_CREATE;
		if (d.count > it->count)
			it->count = d.count;
		if (d.last_ns > it->last_ns)
			it->last_ns = d.last_ns;
		free(it->e);
		it->e = e;
		return;
	}
	it = calloc(1, sizeof(*it));
	if (!it) {
		rec_count(r, "failed");
		rec_log(r, &e->ev, NULL, 1, e->ev.time_ns, "failed");
		free(e);
		return;
	}
	it->e = e;
	it->action = d.action;
	memcpy(it->name, d.name, sizeof(it->name));
	it->count = d.count;
	it->first_ns = d.first_ns;
	it->last_ns = d.last_ns;
	*r->items_tail = it;
	r->items_tail = &it->next;
	r->n_items++;
}

/* The first item due at `now`; *next_due gets the earliest due time of the rest (INT64_MAX if none). */
static struct rec_item *rec_first_due(struct event_recorder *r, int64_t now, int64_t *next_due)
{
	struct rec_item *it;

	*next_due = INT64_MAX;
	for (it = r->items; it; it = it->next) {
		if (it->due_ns <= now)
			return it;
		if (it->due_ns < *next_due)
			*next_due = it->due_ns;
	}
	return NULL;
}

/* Status.message of an API error body, or "". */
static void rec_status_message(const struct k8s_response *resp, char *buf, size_t len)
{
	struct json_object *root, *msg;

	buf[0] = '\0';
	if (!resp->body.buf || resp->truncated)
		return;
	root = json_tokener_parse(resp->body.buf);
	if (root && json_object_object_get_ex(root, "message", &msg) && json_object_is_type(msg, json_type_string))
		snprintf(buf, len, ": %s", json_object_get_string(msg));
	json_object_put(root);
}

static void rec_reject(struct event_recorder *r, struct rec_item *it, const char *verb,
		       const struct k8s_response *resp)
{
	const char *ns = k8s_event_namespace(&it->e->ev);
	char msg[512];
	size_t i;

	rec_count(r, "rejected");
	/* once per status and namespace: a missing RBAC rule would otherwise log every event */
	for (i = 0; i < r->n_seen; i++)
		if (r->seen[i].status == resp->status && !strcmp(r->seen[i].ns, ns))
			return;
	if (r->n_seen == REJECT_LOG_MAX)
		return;
	r->seen[r->n_seen].status = resp->status;
	snprintf(r->seen[r->n_seen].ns, sizeof(r->seen[r->n_seen].ns), "%s", ns);
	r->n_seen++;
	rec_status_message(resp, msg, sizeof(msg));
	log_warn("the API server rejected %s of Event %s/%s (%s on %s %s): HTTP %ld%s; such events are dropped "
		 "(logged once per status and namespace, counted in ksight_k8s_events_total{result=\"rejected\"})",
		 verb, ns, it->name, it->e->ev.reason, it->e->ev.object.kind, it->e->ev.object.name,
		 resp->status, msg);
}

/* The server has the object: remember its resourceVersion and count. */
static void rec_confirm(struct event_recorder *r, struct rec_item *it, const struct k8s_response *resp)
{
	struct json_object *root = NULL, *meta, *v;
	const char *rv = NULL;
	int32_t count = 0;
	struct ec_event ce;

	if (resp->body.buf && !resp->truncated)
		root = json_tokener_parse(resp->body.buf);
	if (root) {
		if (json_object_object_get_ex(root, "metadata", &meta) &&
		    json_object_object_get_ex(meta, "resourceVersion", &v) && json_object_is_type(v, json_type_string))
			rv = json_object_get_string(v);
		if (json_object_object_get_ex(root, "count", &v) && json_object_is_type(v, json_type_int))
			count = json_object_get_int(v);
	}
	rec_to_ec(&it->e->ev, &ce);
	event_correlator_confirmed(r->ec, &ce, it->name, rv, count);
	json_object_put(root);
	if (r->failing) {
		log_info("Kubernetes Events reach %s again", r->server);
		r->failing = false;
		r->gave_up_logged = false;
	}
}

/* One request for `it`. The verdict, or -errno when the request cannot even be built. */
static int rec_request(struct event_recorder *r, struct rec_item *it, bool patch, struct k8s_response *resp)
{
	const char *ns = k8s_event_namespace(&it->e->ev);
	struct strbuf body = STRBUF_INIT;
	char path[512];
	int err;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after_s = -1;
	if (patch) {
		err = k8s_event_patch_body(it->count, it->last_ns, it->e->ev.message, &body);
	} else {
		struct k8s_event_object o = {
			.ev = &it->e->ev, .name = it->name, .component = r->component, .host = r->host,
			.count = it->count, .first_ns = it->first_ns, .last_ns = it->last_ns,
		};

		err = k8s_event_post_body(&o, &body);
	}
	if (!err)
		err = k8s_event_path(ns, patch ? it->name : NULL, path, sizeof(path));
	if (err) {
		strbuf_free(&body);
		return err;
	}
	err = k8s_request(r->client, patch ? "PATCH" : "POST", path,
			  patch ? "application/strategic-merge-patch+json" : "application/json",
			  body.buf, MAX_RESPONSE, K8S_EVENT_TIMEOUT_MS, resp);
	strbuf_free(&body);
	return (int)k8s_event_verdict(patch, err, resp->status);
}

/* A retryable failure: back off, or give up after K8S_EVENT_MAX_TRIES attempts. True when given up. */
static bool rec_retry_later(struct event_recorder *r, struct rec_item *it, const struct k8s_response *resp)
{
	char what[300];

	if (resp->status)
		snprintf(what, sizeof(what), "HTTP %ld", resp->status);
	else
		snprintf(what, sizeof(what), "%s", resp->error[0] ? resp->error : "no answer");
	if (!r->failing) {
		log_warn("cannot deliver Kubernetes Events to %s: %s; retrying with backoff, up to %d tries each",
			 r->server, what, K8S_EVENT_MAX_TRIES);
		r->failing = true;
	}
	if (++it->failures < K8S_EVENT_MAX_TRIES) {
		rec_count(r, "retried");
		it->due_ns = clock_ns(CLOCK_MONOTONIC) +
			     backoff_ms(&event_backoff, it->failures, resp->retry_after_s, jitter_random(&r->rnd)) * NSEC_PER_MSEC;
		return false;
	}
	rec_count(r, "failed");
	if (!r->gave_up_logged) {
		log_warn("gave up on Kubernetes Event %s/%s after %d tries (last: %s); further ones are counted in "
			 "ksight_k8s_events_total{result=\"failed\"}",
			 k8s_event_namespace(&it->e->ev), it->name, K8S_EVENT_MAX_TRIES, what);
		r->gave_up_logged = true;
	}
	return true;
}

/* A POST that will not happen: the next occurrence of the series POSTs instead of PATCHing. */
static void rec_create_failed(struct event_recorder *r, struct rec_item *it)
{
	struct ec_event ce;

	rec_to_ec(&it->e->ev, &ce);
	event_correlator_send_failed(r->ec, &ce, it->name);
}

static void rec_build_failed(struct event_recorder *r, struct rec_item *it, int err)
{
	rec_count(r, "failed");
	log_warn("cannot build the request for Kubernetes Event %s/%s: %s", k8s_event_namespace(&it->e->ev),
		 it->name, strerror(-err));
}

/* Send one item; removes it when done, else schedules its retry. */
static void rec_send(struct event_recorder *r, struct rec_item *it)
{
	struct k8s_response resp;
	struct ec_decision d;
	struct ec_event ce;
	const char *outcome = "failed";
	int v;

	if (it->action == EC_PATCH) {
		v = rec_request(r, it, true, &resp);
		switch (v) {
		case KEV_DONE:
			rec_count(r, "patched");
			outcome = "patched";
			rec_confirm(r, it, &resp);
			goto done;
		case KEV_RETRY:
			if (rec_retry_later(r, it, &resp))
				goto done;
			k8s_response_free(&resp);
			return;
		case KEV_RECREATE:
			/* expired (event TTL) or deleted: POST it again, same name, count, firstTimestamp */
			rec_to_ec(&it->e->ev, &ce);
			if (!event_correlator_not_found(r->ec, &ce, it->name, &d) && d.count > it->count)
				it->count = d.count;
			it->action = EC_CREATE;
			it->recreate = true;
			k8s_response_free(&resp);
			break;
		default:
			if (v < 0) {
				rec_build_failed(r, it, v);
				goto done;
			}
			rec_reject(r, it, "PATCH", &resp);
			outcome = "rejected";
			goto done;
		}
	}

	for (;;) {
		v = rec_request(r, it, false, &resp);
		switch (v) {
		case KEV_DONE:
			outcome = it->recreate ? "recreated" : "created";
			rec_count(r, outcome);
			rec_confirm(r, it, &resp);
			goto done;
		case KEV_RETRY:
			if (rec_retry_later(r, it, &resp)) {
				rec_create_failed(r, it);
				goto done;
			}
			k8s_response_free(&resp);
			return;
		case KEV_RENAME:
			if (!it->renamed) {
				/* a name taken, e.g. by a series before a restart: a fresh one, once */
				rec_to_ec(&it->e->ev, &ce);
				event_correlator_renamed(r->ec, &ce, it->name, clock_ns(CLOCK_REALTIME), it->name,
							 sizeof(it->name));
				it->renamed = true;
				rec_count(r, "retried");
				k8s_response_free(&resp);
				continue;
			}
			/* fall through */
		default:
			if (v < 0) {
				rec_build_failed(r, it, v);
			} else {
				rec_reject(r, it, "POST", &resp);
				outcome = "rejected";
			}
			rec_create_failed(r, it);
			goto done;
		}
	}
done:
	rec_log(r, &it->e->ev, it->name, it->count, it->last_ns, outcome);
	k8s_response_free(&resp);
	rec_item_remove(r, it);
}

static void *rec_worker(void *arg)
{
	struct event_recorder *r = arg;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct rec_event *batch, *e;
		struct rec_item *it;
		int64_t next_due;
		size_t n;

		if (r->stop)
			break;
		it = rec_first_due(r, clock_ns(CLOCK_MONOTONIC), &next_due);
		if (!r->in_head && !it) {
			if (next_due == INT64_MAX) {
				pthread_cond_wait(&r->wake, &r->lock);
			} else {
				struct timespec ts = ns_to_ts(next_due);

				pthread_cond_timedwait(&r->wake, &r->lock, &ts);
			}
			continue;
		}
		/* in_len keeps counting the batch until it is in the item list */
		batch = r->in_head;
		n = r->in_len;
		r->in_head = NULL;
		r->in_tail = &r->in_head;
		pthread_mutex_unlock(&r->lock);

		while ((e = batch)) {
			batch = e->next;
			e->next = NULL;
			rec_correlate(r, e);
		}
		/* new items go to the back: an older item that is due goes first */
		it = rec_first_due(r, clock_ns(CLOCK_MONOTONIC), &next_due);
		if (it)
			rec_send(r, it);

		pthread_mutex_lock(&r->lock);
		r->in_len -= n;
		r->pending_len = r->n_items;
		if (!r->in_len && !r->pending_len)
			pthread_cond_broadcast(&r->drained);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static int cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t attr;
	int err;

	err = pthread_condattr_init(&attr);
	if (err)
		return -err;
	err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!err)
		err = pthread_cond_init(c, &attr);
	pthread_condattr_destroy(&attr);
	return -err;
}

static void rec_free(struct event_recorder *r)
{
	struct rec_event *e;

	while (r->items)
		rec_item_remove(r, r->items);
	while ((e = r->in_head)) {
		r->in_head = e->next;
		free(e);
	}
	event_correlator_free(r->ec);
	if (r->client)
		k8s_client_free(r->client);
	free(r->component);
	free(r->host);
	free(r);
}

struct event_recorder *event_recorder_start(const struct k8s_config *cfg, const char *component,
					    const char *host, struct metrics_registry *reg, size_t queue_cap)
{
	static const char *const labels[] = { "result" };
	struct event_recorder *r = calloc(1, sizeof(*r));
	size_t i;
	int err;

	if (!r) {
		log_warn("Kubernetes Events disabled: out of memory");
		return NULL;
	}
	r->cap = queue_cap ? queue_cap : K8S_EVENT_QUEUE_CAP;
	r->in_tail = &r->in_head;
	r->items_tail = &r->items;
	r->component = strdup(component ? component : "ksight");
	r->host = strdup(host ? host : "");
	snprintf(r->server, sizeof(r->server), "%s", cfg->server);
	r->rnd = (uint64_t)clock_ns(CLOCK_REALTIME) ^ (uint64_t)(uintptr_t)r;
	if (reg) {
		r->results = metrics_family(reg, "ksight_k8s_events_total",
					    "Kubernetes Event occurrences and requests by outcome: created, patched, "
					    "recreated (after a 404), throttled (spam filter), queue_full, retried, "
					    "failed (gave up), rejected (4xx or invalid).",
					    METRIC_COUNTER, labels, 1, NULL, 0);
		/* every result from zero, so rate() and alerts see the series before the first one */
		for (i = 0; r->results && i < sizeof(rec_results) / sizeof(rec_results[0]); i++)
			metrics_counter_add(r->results, &rec_results[i], 0);
	}
	r->ec = event_correlator_new(r->component, r->host, 0);
	r->client = k8s_client_new(cfg, "ksight/" KSIGHT_VERSION);
	if (!r->client) {
		log_warn("Kubernetes Events disabled: cannot create an API client for %s", r->server);
		goto fail;
	}
	if (!r->component || !r->host || !r->ec || (reg && !r->results)) {
		log_warn("Kubernetes Events disabled: cannot set up the recorder (out of memory)");
		goto fail;
	}
	err = pthread_mutex_init(&r->lock, NULL);
	if (err)
		goto fail_err;
	err = -cond_init_monotonic(&r->wake);
	if (err) {
		pthread_mutex_destroy(&r->lock);
		goto fail_err;
	}
	err = -cond_init_monotonic(&r->drained);
	if (err) {
		pthread_cond_destroy(&r->wake);
		pthread_mutex_destroy(&r->lock);
		goto fail_err;
	}
	err = pthread_create(&r->thread, NULL, rec_worker, r);
	if (err) {
		pthread_cond_destroy(&r->drained);
		pthread_cond_destroy(&r->wake);
		pthread_mutex_destroy(&r->lock);
		goto fail_err;
	}
	return r;
fail_err:
	log_warn("Kubernetes Events disabled: cannot start the recorder thread: %s", strerror(err));
fail:
	rec_free(r);
	return NULL;
}

void event_recorder_record(struct event_recorder *r, const struct k8s_event *ev)
{
	struct rec_event *e;
	bool full;

	if (!r || !ev)
		return;
	if (k8s_event_check(ev)) {
		rec_count(r, "rejected");
		rec_log(r, ev, NULL, 1, ev->time_ns, "rejected");
		if (!__atomic_exchange_n(&r->invalid_logged, 1, __ATOMIC_RELAXED))
			log_warn("dropping a Kubernetes Event without type, reason, object kind or name, or with an "
				 "invalid namespace (reason \"%s\"); this is a bug (logged once)",
				 ev->reason ? ev->reason : "");
		return;
	}
	/* copied before taking the lock: the worker and other callers never wait on malloc */
	e = rec_event_copy(ev, clock_ns(CLOCK_REALTIME));
	if (!e) {
		rec_count(r, "failed");
		rec_log(r, ev, NULL, 1, ev->time_ns, "failed");
		return;
	}
	pthread_mutex_lock(&r->lock);
	full = r->in_len + r->pending_len >= r->cap;
	if (!full) {
		*r->in_tail = e;
		r->in_tail = &e->next;
		r->in_len++;
		pthread_cond_signal(&r->wake);
	}
	pthread_mutex_unlock(&r->lock);
	if (full) {
		rec_log(r, &e->ev, NULL, 1, e->ev.time_ns, "queue_full");
		free(e);
		rec_count(r, "queue_full");
	}
}

void event_recorder_set_log(struct event_recorder *r, struct event_log *log)
{
	if (r)
		r->log = log;
}

int event_recorder_flush(struct event_recorder *r, int timeout_ms)
{
	struct timespec deadline = ns_to_ts(clock_ns(CLOCK_MONOTONIC) + (int64_t)timeout_ms * NSEC_PER_MSEC);
	int err = 0;

	if (!r)
		return 0;
	pthread_mutex_lock(&r->lock);
	while (r->in_len || r->pending_len) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&r->drained, &r->lock);
		} else if (pthread_cond_timedwait(&r->drained, &r->lock, &deadline) == ETIMEDOUT &&
			   (r->in_len || r->pending_len)) {
			err = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return err;
}

void event_recorder_stop(struct event_recorder *r)
{
	struct rec_event *e;
	struct rec_item *it;
	size_t left = 0;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);

	for (e = r->in_head; e; e = e->next) {
		rec_log(r, &e->ev, NULL, 1, e->ev.time_ns, "failed");
		left++;
	}
	for (it = r->items; it; it = it->next) {
		rec_log(r, &it->e->ev, it->name, it->count, it->last_ns, "failed");
		left++;
	}
	if (left) {
		log_info("%zu Kubernetes Event(s) not delivered at shutdown", left);
		if (r->results)
			metrics_counter_add(r->results, &(const char *){ "failed" }, (double)left);
	}
	pthread_cond_destroy(&r->drained);
	pthread_cond_destroy(&r->wake);
	pthread_mutex_destroy(&r->lock);
	rec_free(r);
}
