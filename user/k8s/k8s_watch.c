/*
 * The list + watch thread (k8s_watch.h).
 *
 * The LIST goes through k8s_stream() too, decoded item by item as it
 * arrives: memory stays at one item however many pods the node runs, and
 * k8s_watch_stop() interrupts it within a second, which a blocking
 * k8s_request() against an unreachable server would not.
 */
#include "k8s_watch.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "k8s_client.h"
#include "k8s_json.h"
#include "log.h"
#include "metrics.h"
#include "strbuf.h"
#include "util.h"
#include "watch_decoder.h"

#ifndef KSIGHT_VERSION
#define KSIGHT_VERSION "unknown"
#endif

#define LIST_IDLE_TIMEOUT_S	60
#define WATCH_TIMEOUT_S		300
#define WATCH_TIMEOUT_JITTER_S	30
#define WATCH_IDLE_SLACK_S	30
/* A watch that ends this fast without a single line did not really work. */
#define WATCH_MIN_USEFUL_MS	1000
#define SLEEP_SLICE_MS		10000L
#define RV_MAX			256
#define SERVER_MSG_MAX		200
#define NAME_MAX_LEN		64

static const struct backoff_policy watch_backoff = {
	.min_ms = K8S_WATCH_BACKOFF_MIN_MS,
	.max_ms = K8S_WATCH_BACKOFF_MAX_MS,
	.retry_after_max_s = K8S_WATCH_RETRY_AFTER_MAX_S,
};

/* How a watch stream ended, and what to do next. */
struct stream_end {
	const char *reason;	/* ksight_k8s_watch_restarts_total label */
	bool relist;
	bool failed;		/* back off before the next request */
};

struct k8s_watch {
	pthread_t thread;
	volatile int stop;	/* __atomic; k8s_stream() polls it */
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* signalled on stop, for the sleeps */
	int synced;		/* __atomic */

	struct k8s_client *client;
	struct k8s_watch_handler handler;
	void *ctx;
	char resource[NAME_MAX_LEN];
	char *what;
	struct strbuf path;	/* the collection and its selectors: "...?fieldSelector=..." or no '?' */
	char source[PATH_MAX + 32];
	uint64_t rand_state;

	char rv[RV_MAX];
	bool list_consistent;	/* the last watch expired: no resourceVersion=0 */
	unsigned int attempt;	/* failures in a row, for the backoff */
	long retry_after_s;
	bool prev_unproductive;

	/* the request in flight */
	struct watch_decoder dec;
	struct list_decoder list;
	size_t list_bytes;
	bool list_too_big;
	struct stream_end end;
	bool end_set;
	unsigned long events;

	/* logging: the failure text last logged, the auth status last logged */
	char err[512];
	char logged_err[512];
	long logged_auth;

	struct metric_family *m_restarts;
	struct metric_family *m_api_errors;
	struct metric_family *m_lines_dropped;
	/* what went into m_lines_dropped so far: the families may be shared, so we add */
	uint64_t pub_too_long;
	uint64_t pub_malformed;
};

const char *k8s_watch_event_name(enum k8s_watch_event type)
{
	switch (type) {
	case K8S_WATCH_ADDED:
		return "ADDED";
	case K8S_WATCH_MODIFIED:
		return "MODIFIED";
	case K8S_WATCH_DELETED:
		return "DELETED";
	case K8S_WATCH_BOOKMARK:
		return "BOOKMARK";
	}
	return "";
}

void k8s_url_encode(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			strbuf_putc(sb, (char)c);
		else
			strbuf_printf(sb, "%%%02X", c);
	}
}

static bool stopping(struct k8s_watch *w)
{
	return __atomic_load_n(&w->stop, __ATOMIC_ACQUIRE) != 0;
}

static void publish(struct k8s_watch *w)
{
	static const char *const too_long[] = { "too_long" };
	static const char *const bad_json[] = { "malformed" };
	uint64_t tl = w->dec.too_long + w->list.too_long;
	uint64_t bad = w->dec.malformed + w->list.malformed;

	metrics_counter_add(w->m_lines_dropped, too_long, (double)(tl - w->pub_too_long));
	metrics_counter_add(w->m_lines_dropped, bad_json, (double)(bad - w->pub_malformed));
	w->pub_too_long = tl;
	w->pub_malformed = bad;
}

static void tick(struct k8s_watch *w, bool force)
{
	publish(w);
	if (w->handler.tick)
		w->handler.tick(w->ctx, force);
}

/* Sleep unless stopped; false when stopped. */
static bool watch_sleep(struct k8s_watch *w, long ms)
{
	while (ms > 0 && !stopping(w)) {
		long slice = ms < SLEEP_SLICE_MS ? ms : SLEEP_SLICE_MS;
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += slice / 1000;
		ts.tv_nsec += (slice % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&w->lock);
		while (!stopping(w) && pthread_cond_timedwait(&w->cond, &w->lock, &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&w->lock);
		ms -= slice;
		tick(w, false);
	}
	return !stopping(w);
}

static void count_api_error(struct k8s_watch *w, const char *op)
{
	const char *label[1] = { op };

	metrics_counter_add(w->m_api_errors, label, 1);
}

/* Server text into a log line: printable ASCII only, at most SERVER_MSG_MAX. */
static void printable_copy(char *out, size_t cap, const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; s && i < len && n + 1 < cap && n < SERVER_MSG_MAX; i++)
		out[n++] = (s[i] >= ' ' && s[i] < 0x7f) ? s[i] : ' ';
	if (cap)
		out[n] = '\0';
}

/* The API server's Status.message (or the body's start). */
static void server_message(const struct k8s_response *resp, char *out, size_t cap)
{
	const char *s = resp->body.buf ? resp->body.buf : "";
	size_t len = resp->body.len;
	json_object *st = NULL;

	if (len) {
		json_tokener *tok = json_tokener_new_ex(K8S_JSON_DEPTH);

		if (tok && len < INT_MAX)
			st = json_tokener_parse_ex(tok, s, (int)len);
		if (tok)
			json_tokener_free(tok);
		if (st) {
			const char *msg = k8s_json_string(st, "message", &len);

			s = msg ? msg : "";
			if (!msg)
				len = 0;
		}
	}
	printable_copy(out, cap, s, len);
	json_object_put(st);
}

/* Record a failed request; the caller logs it with the retry delay. */
static void fail(struct k8s_watch *w, const char *op, const struct k8s_response *resp,
		 int rc, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void fail(struct k8s_watch *w, const char *op, const struct k8s_response *resp,
		 int rc, const char *fmt, ...)
{
	char msg[SERVER_MSG_MAX + 1] = "", ebuf[128];
	const char *etext = "";
	va_list ap;

	count_api_error(w, op);
	if (rc < 0)
		etext = resp->error[0] ? resp->error : strerror_r(-rc, ebuf, sizeof(ebuf));
	w->retry_after_s = -1;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(w->err, sizeof(w->err), fmt, ap);
		va_end(ap);
		return;
	}
	if (rc < 0 && resp->status == 0) {
		snprintf(w->err, sizeof(w->err), "%s %s failed: %s", w->resource, op, etext);
		return;
	}
	if (rc < 0) {
		snprintf(w->err, sizeof(w->err), "%s %s broke off: %s", w->resource, op, etext);
		return;
	}
	w->retry_after_s = resp->retry_after_s;
	server_message(resp, msg, sizeof(msg));
	if (resp->status == 401 || resp->status == 403) {
		/* the fix is the operator's; say it once per status, not every minute */
		w->err[0] = '\0';
		if (w->logged_auth == resp->status)
			return;
		w->logged_auth = resp->status;
		if (resp->status == 403)
			log_warn("%s %s forbidden: the ServiceAccount needs get/list/watch on %s (deploy/rbac.yaml)%s%s",
				 w->resource, op, w->resource, msg[0] ? "; the API server said: " : "", msg);
		else
			log_warn("%s %s unauthorized (HTTP 401): the API server rejected our credentials from %s%s%s",
				 w->resource, op, w->source, msg[0] ? ": " : "", msg);
		return;
	}
	snprintf(w->err, sizeof(w->err), "%s %s: HTTP %ld%s%s", w->resource, op, resp->status,
		 msg[0] ? ": " : "", msg);
}

static void back_off(struct k8s_watch *w)
{
	long ms = backoff_ms(&watch_backoff, w->attempt + 1, w->retry_after_s,
			     jitter_random(&w->rand_state));

	if (w->attempt < 64)
		w->attempt++;
	if (w->err[0] && strcmp(w->err, w->logged_err)) {
		log_warn("%s; retrying in %.1f s", w->err, (double)ms / 1000);
		memcpy(w->logged_err, w->err, sizeof(w->logged_err));
	}
	w->err[0] = '\0';
	w->retry_after_s = -1;
	tick(w, true);
	watch_sleep(w, ms);
}

static void recovered(struct k8s_watch *w)
{
	if (w->logged_err[0] || w->logged_auth)
		log_info("list/watch of %s works again", w->what);
	w->logged_err[0] = '\0';
	w->logged_auth = 0;
}

/* path + one more query parameter, '?' or '&' as needed */
static void add_param(struct strbuf *sb, const char *param)
{
	strbuf_putc(sb, strchr(sb->buf ? sb->buf : "", '?') ? '&' : '?');
	strbuf_printf(sb, "%s", param);
}

/* ---- LIST ---- */

static int on_list_item(void *ctx, json_object *item)
{
	struct k8s_watch *w = ctx;

	if (w->handler.object)
		w->handler.object(w->ctx, K8S_WATCH_ADDED, item, true);
	return 0;
}

static int on_list_data(void *ctx, const char *data, size_t len)
{
	struct k8s_watch *w = ctx;
	int ret;

	w->list_bytes += len;
	if (w->list_bytes > K8S_WATCH_LIST_MAX_BODY) {
		w->list_too_big = true;
		return 1;
	}
	ret = list_decoder_feed(&w->list, data, len, on_list_item, w);
	tick(w, false);
	return ret ? 1 : 0;
}

/* LIST to the handler. 0, or -1 after fail() (or when stopped). */
static int do_list(struct k8s_watch *w)
{
	struct k8s_response resp = { 0 };
	struct strbuf path = STRBUF_INIT;
	const char *rv;
	size_t rv_len = 0;
	bool begun = false, complete = false;
	int rc, ret = -1;

	strbuf_append(&path, w->path.buf, w->path.len);
	if (!w->list_consistent)
		add_param(&path, "resourceVersion=0");
	list_decoder_init(&w->list, 0);
	w->list_bytes = 0;
	w->list_too_big = false;
	if (path.oom) {
		fail(w, "list", &resp, -ENOMEM, "%s list: out of memory", w->resource);
		goto out;
	}
	if (w->handler.list_begin)
		w->handler.list_begin(w->ctx);
	begun = true;
	rc = k8s_stream(w->client, path.buf, on_list_data, w, LIST_IDLE_TIMEOUT_S, &w->stop, &resp);
	if (stopping(w))
		goto out;
	if (w->list_too_big) {
		fail(w, "list", &resp, rc, "%s list: the response is over %zu MiB", w->resource,
		     K8S_WATCH_LIST_MAX_BODY >> 20);
		goto out;
	}
	if (!w->list.error && (rc < 0 || resp.status < 200 || resp.status > 299)) {
		fail(w, "list", &resp, rc, NULL);
		goto out;
	}
	if (list_decoder_finish(&w->list)) {
		fail(w, "list", &resp, rc, "%s list: %s", w->resource, w->list.error);
		goto out;
	}
	rv = k8s_json_string(list_decoder_metadata(&w->list), "resourceVersion", &rv_len);
	if (!rv || !rv_len || rv_len >= sizeof(w->rv)) {
		fail(w, "list", &resp, rc, "%s list: no usable metadata.resourceVersion", w->resource);
		goto out;
	}
	memcpy(w->rv, rv, rv_len + 1);
	w->list_consistent = false;
	complete = true;
	recovered(w);
	ret = 0;
out:
	if (begun && w->handler.list_end)
		w->handler.list_end(w->ctx, complete, (size_t)w->list.items);
	if (complete)
		__atomic_store_n(&w->synced, 1, __ATOMIC_RELEASE);
	tick(w, true);
	list_decoder_free(&w->list);
	k8s_response_free(&resp);
	strbuf_free(&path);
	return ret;
}

/* ---- WATCH ---- */

static void end_stream(struct k8s_watch *w, const char *reason, bool relist, bool failed)
{
	w->end = (struct stream_end){ .reason = reason, .relist = relist, .failed = failed };
	w->end_set = true;
}

static void update_rv(struct k8s_watch *w, json_object *obj)
{
	size_t len = 0;
	const char *rv = k8s_json_resource_version(obj, &len);

	/* without one we watch again from an older point: events repeat, harmlessly */
	if (rv && len && len < sizeof(w->rv))
		memcpy(w->rv, rv, len + 1);
}

static int on_watch_event(void *ctx, json_object *ev)
{
	static const char *const types[] = {
		[K8S_WATCH_ADDED] = "ADDED", [K8S_WATCH_MODIFIED] = "MODIFIED",
		[K8S_WATCH_DELETED] = "DELETED", [K8S_WATCH_BOOKMARK] = "BOOKMARK",
	};
	struct k8s_watch *w = ctx;
	json_object *obj = k8s_json_member(ev, "object", json_type_object), *code;
	char text[SERVER_MSG_MAX + 1];
	size_t len = 0, i;
	const char *type = k8s_json_string(ev, "type", &len), *msg;

	if (!type || !obj) {
		end_stream(w, "relist", true, false);
		log_warn("%s watch: an event without type or object; listing again", w->resource);
		return 1;
	}
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(type, types[i]))
			continue;
		/* a malformed object is the handler's to count; the watch goes on */
		if (w->handler.object)
			w->handler.object(w->ctx, (enum k8s_watch_event)i, obj, false);
		update_rv(w, obj);
		w->events++;
		return 0;
	}
	if (!strcmp(type, "ERROR")) {
		code = k8s_json_member(obj, "code", json_type_int);
		if (code && json_object_get_int64(code) == 410) {
			end_stream(w, "expired", true, false);
			return 1;
		}
		count_api_error(w, "watch");
		msg = k8s_json_string(obj, "message", &len);
		printable_copy(text, sizeof(text), msg, msg ? len : 0);
		snprintf(w->err, sizeof(w->err), "%s watch: the API server sent an error (code %ld): %s",
			 w->resource, code ? (long)json_object_get_int64(code) : 0L,
			 text[0] ? text : "no message");
		end_stream(w, "error", true, true);
		return 1;
	}
	/* an event type newer than us: nothing to apply */
	return 0;
}

static int on_watch_data(void *ctx, const char *data, size_t len)
{
	struct k8s_watch *w = ctx;
	uint64_t dropped = w->dec.too_long + w->dec.malformed;
	int ret;

	ret = watch_decoder_feed(&w->dec, data, len, on_watch_event, w);
	if (!ret && w->dec.too_long + w->dec.malformed != dropped) {
		/* an event we could not read is a change we missed */
		log_warn("%s watch: dropped an event line (over %u MiB or not JSON); listing again",
			 w->resource, WATCH_MAX_LINE >> 20);
		end_stream(w, "relist", true, false);
		ret = 1;
	}
	tick(w, false);	/* per chunk: API objects change at human rates */
	return ret;
}

/* One WATCH from w->rv until it ends; sets w->end. */
static void do_watch(struct k8s_watch *w)
{
	struct k8s_response resp = { 0 };
	struct strbuf path = STRBUF_INIT;
	long timeout_s = WATCH_TIMEOUT_S - WATCH_TIMEOUT_JITTER_S +
			 (long)(jitter_random(&w->rand_state) % (2 * WATCH_TIMEOUT_JITTER_S + 1));
	int64_t started = clock_ns(CLOCK_MONOTONIC) / NSEC_PER_MSEC;
	bool productive;
	int rc;

	strbuf_append(&path, w->path.buf, w->path.len);
	add_param(&path, "watch=1&allowWatchBookmarks=true&resourceVersion=");
	k8s_url_encode(&path, w->rv);	/* opaque: digits today, but nothing promises that */
	strbuf_printf(&path, "&timeoutSeconds=%ld", timeout_s);
	w->end_set = false;
	w->events = 0;
	if (path.oom) {
		fail(w, "watch", &resp, -ENOMEM, "%s watch: out of memory", w->resource);
		end_stream(w, "error", false, true);
		goto out;
	}
	rc = k8s_stream(w->client, path.buf, on_watch_data, w, timeout_s + WATCH_IDLE_SLACK_S,
			&w->stop, &resp);
	watch_decoder_reset(&w->dec);
	if (stopping(w))
		goto out;
	productive = resp.status >= 200 && resp.status <= 299 &&
		     (w->events > 0 ||
		      clock_ns(CLOCK_MONOTONIC) / NSEC_PER_MSEC - started >= WATCH_MIN_USEFUL_MS);
	if (productive) {
		w->attempt = 0;
		recovered(w);
	}
	if (w->end_set) {
		/* decided by an event */
	} else if (rc == 0 && resp.status == 410) {
		end_stream(w, "expired", true, false);
	} else if (rc < 0 || resp.status < 200 || resp.status > 299) {
		fail(w, "watch", &resp, rc, NULL);
		end_stream(w, "error", false, true);
	} else {
		end_stream(w, "closed", false, false);
	}
	/*
	 * One watch that ends at once with nothing in it happens (a 410 right
	 * after a list from a lagging cache); two in a row is a loop to slow down.
	 */
	if (!productive && !w->end.failed) {
		if (w->prev_unproductive) {
			w->end.failed = true;
			snprintf(w->err, sizeof(w->err),
				 "%s watch: the API server ends the watch at once (%s), again",
				 w->resource, w->end.reason);
		}
		w->prev_unproductive = true;
	} else if (productive) {
		w->prev_unproductive = false;
	}
out:
	k8s_response_free(&resp);
	strbuf_free(&path);
}

static void *watch_main(void *arg)
{
	struct k8s_watch *w = arg;
	bool need_list = true;

	while (!stopping(w)) {
		if (need_list) {
			if (do_list(w)) {
				if (!stopping(w))
					back_off(w);
				continue;
			}
			need_list = false;
		}
		do_watch(w);
		if (stopping(w))
			break;
		metrics_counter_add(w->m_restarts, &w->end.reason, 1);
		if (w->end.relist) {
			need_list = true;
			if (!strcmp(w->end.reason, "expired"))
				w->list_consistent = true;
		}
		if (w->end.failed)
			back_off(w);
		else
			tick(w, false);
	}
	return NULL;
}

/* ---- start, stop ---- */

static void watch_free(struct k8s_watch *w)
{
	if (w->client)
		k8s_client_free(w->client);
	watch_decoder_free(&w->dec);
	list_decoder_free(&w->list);
	strbuf_free(&w->path);
	free(w->what);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static void register_metrics(struct k8s_watch *w, struct metrics_registry *reg)
{
	static const char *const reason[] = { "reason" };
	static const char *const op[] = { "op" };
	static const char *const reasons[] = { "closed", "expired", "relist", "error" };
	static const char *const ops[] = { "list", "watch" };
	size_t i;

	if (!reg)
		return;
	w->m_restarts = metrics_family(reg, "ksight_k8s_watch_restarts_total",
				       "Watch streams (pods, and what else is watched) that ended, by why: closed by the server, expired (410, re-list), relist (an event was lost), error.",
				       METRIC_COUNTER, reason, 1, NULL, 0);
	w->m_api_errors = metrics_family(reg, "ksight_k8s_api_errors_total",
					 "Failed Kubernetes API list and watch requests, by operation.",
					 METRIC_COUNTER, op, 1, NULL, 0);
	w->m_lines_dropped = metrics_family(reg, "ksight_k8s_watch_lines_dropped_total",
					    "Watch lines and list items dropped: too_long (over 8 MiB) or malformed (not one JSON object).",
					    METRIC_COUNTER, reason, 1, NULL, 0);
	/* every series from the start, at zero: rate() needs the first sample */
	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		metrics_counter_add(w->m_restarts, &reasons[i], 0);
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		metrics_counter_add(w->m_api_errors, &ops[i], 0);
}

static void add_selector(struct strbuf *sb, const char *name, const char *sel)
{
	if (!sel || !sel[0])
		return;
	add_param(sb, name);
	strbuf_putc(sb, '=');
	k8s_url_encode(sb, sel);
}

int k8s_watch_start(const struct k8s_config *cfg, const struct k8s_watch_spec *spec,
		    const struct k8s_watch_handler *handler, void *ctx,
		    struct metrics_registry *reg, struct k8s_watch **out)
{
	struct k8s_watch *w;
	pthread_condattr_t ca;
	sigset_t all, old;
	int ret;

	if (out)
		*out = NULL;
	if (!cfg || !spec || !spec->resource || !spec->path || spec->path[0] != '/' ||
	    strchr(spec->path, '?') || strlen(spec->resource) >= NAME_MAX_LEN || !handler || !out)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(w->resource, sizeof(w->resource), "%s", spec->resource);
	snprintf(w->source, sizeof(w->source), "%s", cfg->source);
	w->what = strdup(spec->what ? spec->what : spec->resource);
	w->handler = *handler;
	w->ctx = ctx;
	w->retry_after_s = -1;
	w->rand_state = (uint64_t)clock_ns(CLOCK_MONOTONIC) ^ ((uint64_t)getpid() << 32) ^
			(uint64_t)(uintptr_t)w;
	watch_decoder_init(&w->dec, 0);
	list_decoder_init(&w->list, 0);
	strbuf_printf(&w->path, "%s", spec->path);
	add_selector(&w->path, "fieldSelector", spec->field_selector);
	add_selector(&w->path, "labelSelector", spec->label_selector);
	if (w->path.oom || !w->what) {
		watch_free(w);
		return -ENOMEM;
	}
	w->client = k8s_client_new(cfg, "ksight/" KSIGHT_VERSION);
	if (!w->client) {
		watch_free(w);
		return -ENOMEM;
	}
	register_metrics(w, reg);

	/* signals belong to the main thread (signalfd): block them all in ours */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = pthread_create(&w->thread, NULL, watch_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		watch_free(w);
		return -ret;
	}
	*out = w;
	return 0;
}

void k8s_watch_stop(struct k8s_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	watch_free(w);
}

bool k8s_watch_synced(struct k8s_watch *w)
{
	return w && __atomic_load_n(&w->synced, __ATOMIC_ACQUIRE);
}
