/*
 * The Node condition (see node_condition.h): the PATCH body and reading a
 * condition back (pure), then the sender thread.
 */
#include "node_condition.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "backoff.h"
#include "k8s_client.h"
#include "k8s_event_body.h"
#include "log.h"
#include "metrics.h"
#include "utf8.h"
#include "util.h"

#ifndef KSIGHT_VERSION
#define KSIGHT_VERSION "dev"
#endif

#define MAX_RESPONSE (1024 * 1024) /* a Node object with many images and volumes */

static int jadd(json_object *o, const char *key, json_object *v)
{
	if (!v)
		return -ENOMEM;
	json_object_object_add(o, key, v);
	return 0;
}

static int jadd_time(json_object *o, const char *key, int64_t ns)
{
	char ts[32];

	if (k8s_event_time(ns, ts, sizeof(ts)))
		return -EINVAL;
	return jadd(o, key, json_object_new_string(ts));
}

int node_condition_patch_body(const struct node_condition *c, struct strbuf *out)
{
	char message[3 * NODE_CONDITION_MESSAGE_MAX + 1];
	json_object *root, *status, *conds, *cond;
	const char *text;
	int err = 0;

	if (!c->type || !c->type[0] || !c->reason || !c->reason[0])
		return -EINVAL;
	/* valid UTF-8 (the API rejects other bytes), cut on a character boundary */
	utf8_sanitize(c->message ? c->message : "", message, sizeof(message));
	message[k8s_utf8_prefix(message, strlen(message), NODE_CONDITION_MESSAGE_MAX)] = '\0';
	root = json_object_new_object();
	status = json_object_new_object();
	conds = json_object_new_array();
	cond = json_object_new_object();
	if (!root || !status || !conds || !cond) {
		json_object_put(root);
		json_object_put(status);
		json_object_put(conds);
		json_object_put(cond);
		return -ENOMEM;
	}
	json_object_object_add(root, "status", status);
	json_object_object_add(status, "conditions", conds);
	json_object_array_add(conds, cond);
	err = err ?: jadd(cond, "type", json_object_new_string(c->type));
	err = err ?: jadd(cond, "status", json_object_new_string(c->status ? "True" : "False"));
	err = err ?: jadd(cond, "reason", json_object_new_string(c->reason));
	err = err ?: jadd(cond, "message", json_object_new_string(message));
	err = err ?: jadd_time(cond, "lastHeartbeatTime", c->heartbeat_ns);
	err = err ?: jadd_time(cond, "lastTransitionTime", c->transition_ns);
	if (!err) {
		text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (text)
			strbuf_puts(out, text);
		err = !text || out->oom ? -ENOMEM : 0;
	}
	json_object_put(root);
	return err;
}

int node_condition_path(const char *node, char *out, size_t len)
{
	size_t i;

	if (!node || !node[0])
		return -EINVAL;
	/* a Node name is a DNS subdomain: nothing that would need escaping in a path */
	for (i = 0; node[i]; i++)
		if (!((node[i] >= 'a' && node[i] <= 'z') || (node[i] >= 'A' && node[i] <= 'Z') ||
		      (node[i] >= '0' && node[i] <= '9') || node[i] == '-' || node[i] == '.' || node[i] == '_'))
			return -EINVAL;
	if ((size_t)snprintf(out, len, "/api/v1/nodes/%s/status", node) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* "2025-12-01T12:00:00Z" (fractions and offsets as the API may write them) to ns; 0 when it is not one. */
static int64_t parse_time(const char *s)
{
	struct tm tm = { 0 };
	const char *rest;
	long off = 0;
	int oh, om;

	if (!s)
		return 0;
	rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return 0;
	if (*rest == '.')
		for (rest++; *rest >= '0' && *rest <= '9'; rest++)
			;
	if (*rest == '+' || *rest == '-') {
		if (sscanf(rest + 1, "%2d:%2d", &oh, &om) != 2)
			return 0;
		off = (oh * 3600L + om * 60L) * (*rest == '+' ? 1 : -1);
		rest += 6;
	} else if (*rest == 'Z') {
		rest++;
	} else {
		return 0;
	}
	if (*rest)
		return 0;
	return ((int64_t)timegm(&tm) - off) * NSEC_PER_SEC;
}

int node_condition_find(const char *json, size_t len, const char *type, bool *status, int64_t *transition_ns)
{
	json_tokener *tok = json_tokener_new();
	json_object *root, *st, *conds, *c, *v;
	size_t i, n;
	int ret = -ENOENT;

	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, json, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(root, json_type_object)) {
		json_tokener_free(tok);
		json_object_put(root);
		return -EINVAL;
	}
	json_tokener_free(tok);
	if (json_object_object_get_ex(root, "status", &st) && json_object_object_get_ex(st, "conditions", &conds) &&
	    json_object_is_type(conds, json_type_array)) {
		n = json_object_array_length(conds);
		for (i = 0; i < n && ret; i++) {
			c = json_object_array_get_idx(conds, i);
			if (!json_object_object_get_ex(c, "type", &v) || strcmp(json_object_get_string(v), type))
				continue;
			*status = json_object_object_get_ex(c, "status", &v) &&
				  !strcmp(json_object_get_string(v), "True");
			*transition_ns = json_object_object_get_ex(c, "lastTransitionTime", &v) ?
					 parse_time(json_object_get_string(v)) : 0;
			ret = 0;
		}
	}
	json_object_put(root);
	return ret;
}

/* ---- the sender ---- */

static const struct backoff_policy condition_backoff = {
	.min_ms = NODE_CONDITION_BACKOFF_MIN_MS,
	.max_ms = NODE_CONDITION_BACKOFF_MAX_MS,
	.retry_after_max_s = 300,
};

static const char *const results[] = { "success", "failed", "rejected" };

struct node_condition_sender {
	pthread_mutex_t lock;
	pthread_cond_t wake;         /* CLOCK_MONOTONIC */
	pthread_t thread;

	/* under lock */
	bool stop;
	bool status;                 /* wanted */
	char reason[128];
	char message[NODE_CONDITION_MESSAGE_MAX + 1];
	int64_t transition_ns;       /* CLOCK_REALTIME of the last flip of `status` */
	bool flipped;                /* since start: a server's older time no longer applies */
	uint64_t generation;         /* bumped by every change; 0: nothing wanted yet */
	bool prior_known;            /* the Node had our condition when we started: */
	bool prior_status;           /* its status */
	int64_t prior_transition_ns; /* and lastTransitionTime */

	/* read-only after start */
	char type[64];
	char path[300];
	char server[512];
	struct metric_family *results;

	/* the thread's */
	struct k8s_client *client;
	uint64_t sent_generation;    /* what the Node has, when sent_ok */
	bool sent_ok;
	unsigned int failures;
	bool failing_logged;
	uint64_t rnd;
};

static void count(struct node_condition_sender *s, const char *result)
{
	if (s->results)
		metrics_counter_add(s->results, &result, 1);
}

/*
 * Before the first write: a condition of ours the Node already has (an
 * agent restarted) with the status we want keeps its lastTransitionTime.
 * Failing that, now stands.
 */
static void adopt_server_time(struct node_condition_sender *s)
{
	struct k8s_response resp = { .retry_after_s = -1 };
	int64_t t = 0;
	bool status = false;

	if (!k8s_request(s->client, "GET", s->path, NULL, NULL, MAX_RESPONSE, NODE_CONDITION_TIMEOUT_MS, &resp) &&
	    resp.status == 200 && resp.body.buf &&
	    !node_condition_find(resp.body.buf, resp.body.len, s->type, &status, &t) && t > 0) {
		pthread_mutex_lock(&s->lock);
		s->prior_known = true;
		s->prior_status = status;
		s->prior_transition_ns = t;
		/* the first state may have been set meanwhile */
		if (s->generation && !s->flipped && status == s->status)
			s->transition_ns = t;
		pthread_mutex_unlock(&s->lock);
	}
	k8s_response_free(&resp);
}

/* One PATCH of the wanted state (copied under the lock); 0, or the delay before the next try in ms. */
static long send_once(struct node_condition_sender *s, const struct node_condition *c)
{
	struct k8s_response resp = { .retry_after_s = -1 };
	struct strbuf body = STRBUF_INIT;
	char what[300];
	const char *result;
	long delay = 0;
	int err;

	err = node_condition_patch_body(c, &body);
	if (!err)
		err = k8s_request(s->client, "PATCH", s->path, "application/strategic-merge-patch+json", body.buf,
				  MAX_RESPONSE, NODE_CONDITION_TIMEOUT_MS, &resp);
	strbuf_free(&body);
	if (!err && resp.status >= 200 && resp.status < 300) {
		count(s, "success");
		if (s->failing_logged)
			log_info("Node condition %s written again (%s)", s->type, c->status ? "True" : "False");
		s->failures = 0;
		s->failing_logged = false;
		k8s_response_free(&resp);
		return 0;
	}
	/* 4xx other than 429 (RBAC without nodes/status patch, an unknown Node) is a rejection; both are retried */
	result = !err && resp.status >= 400 && resp.status < 500 && resp.status != 429 ? "rejected" : "failed";
	count(s, result);
	if (err && !resp.error[0])
		snprintf(what, sizeof(what), "%s", strerror(-err));
	else if (resp.status)
		snprintf(what, sizeof(what), "HTTP %ld", resp.status);
	else
		snprintf(what, sizeof(what), "%s", resp.error[0] ? resp.error : "no answer");
	if (!s->failing_logged) {
		log_warn("cannot write Node condition %s to %s%s: %s%s; retrying with backoff", s->type, s->server,
			 s->path, what, !strcmp(result, "rejected") && resp.status == 403 ?
			 " (the ClusterRole needs patch on nodes/status)" : "");
		s->failing_logged = true;
	}
	delay = backoff_ms(&condition_backoff, ++s->failures, resp.retry_after_s, jitter_random(&s->rnd));
	k8s_response_free(&resp);
	return delay > 0 ? delay : 1;
}

static void *sender_thread(void *arg)
{
	struct node_condition_sender *s = arg;
	char reason[sizeof(s->reason)], message[sizeof(s->message)];
	int64_t due = 0, last_ok = 0;  /* CLOCK_MONOTONIC */

	adopt_server_time(s);
	pthread_mutex_lock(&s->lock);
	for (;;) {
		int64_t now = clock_ns(CLOCK_MONOTONIC), wait_until;
		struct node_condition c;
		struct timespec ts;
		uint64_t gen;
		long delay;

		if (s->stop)
			break;
		if (!s->generation) {
			pthread_cond_wait(&s->wake, &s->lock);
			continue;
		}
		/* a change goes out now, unless a failure's backoff runs; else the periodic heartbeat */
		wait_until = s->sent_ok && s->sent_generation == s->generation ?
			     last_ok + NODE_CONDITION_RESYNC_S * NSEC_PER_SEC : due;
		if (now < wait_until) {
			ts = (struct timespec){ .tv_sec = wait_until / NSEC_PER_SEC, .tv_nsec = wait_until % NSEC_PER_SEC };
			pthread_cond_timedwait(&s->wake, &s->lock, &ts);
			continue;
		}
		memcpy(reason, s->reason, sizeof(reason));
		memcpy(message, s->message, sizeof(message));
		c = (struct node_condition){ .type = s->type, .status = s->status, .reason = reason,
					     .message = message, .heartbeat_ns = clock_ns(CLOCK_REALTIME),
					     .transition_ns = s->transition_ns };
		gen = s->generation;
		pthread_mutex_unlock(&s->lock);
		delay = send_once(s, &c);
		pthread_mutex_lock(&s->lock);
		now = clock_ns(CLOCK_MONOTONIC);
		if (!delay) {
			s->sent_ok = true;
			s->sent_generation = gen;
			last_ok = now;
			due = 0;
		} else {
			s->sent_ok = false;
			due = now + delay * NSEC_PER_MSEC;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void set_locked(struct node_condition_sender *s, bool status, const char *reason, const char *message)
{
	if (!s->generation) {
		s->transition_ns = s->prior_known && s->prior_status == status ? s->prior_transition_ns :
				   clock_ns(CLOCK_REALTIME);
	} else if (status != s->status) {
		s->transition_ns = clock_ns(CLOCK_REALTIME);
		s->flipped = true;
	}
	s->status = status;
	snprintf(s->reason, sizeof(s->reason), "%s", reason ? reason : "");
	snprintf(s->message, sizeof(s->message), "%s", message ? message : "");
}

struct node_condition_sender *node_condition_start(const struct k8s_config *cfg, const char *node,
						   const char *type, struct metrics_registry *reg)
{
	static const char *const labels[] = { "result" };
	struct node_condition_sender *s = calloc(1, sizeof(*s));
	pthread_condattr_t attr;
	size_t i;
	int err;

	if (!s) {
		log_error("no Node condition: out of memory");
		return NULL;
	}
	if (node_condition_path(node, s->path, sizeof(s->path))) {
		log_error("no Node condition: '%s' is not a Node name", node);
		free(s);
		return NULL;
	}
	snprintf(s->type, sizeof(s->type), "%s", type);
	snprintf(s->server, sizeof(s->server), "%s", cfg->server);
	s->rnd = (uint64_t)clock_ns(CLOCK_REALTIME) ^ (uint64_t)(uintptr_t)s;
	if (reg) {
		s->results = metrics_family(reg, "ksight_k8s_node_condition_updates_total",
					    "Writes of ksight's Node condition (--node-conditions) by outcome: success, "
					    "failed (no answer, 5xx, 429) or rejected (other 4xx); both are retried with backoff.",
					    METRIC_COUNTER, labels, 1, NULL, 0);
		for (i = 0; s->results && i < sizeof(results) / sizeof(results[0]); i++)
			metrics_counter_add(s->results, &results[i], 0);
	}
	s->client = k8s_client_new(cfg, "ksight/" KSIGHT_VERSION);
	if (!s->client) {
		log_error("no Node condition: cannot create an API client for %s", cfg->server);
		free(s);
		return NULL;
	}
	err = pthread_condattr_init(&attr);
	if (!err) {
		err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		if (!err)
			err = pthread_cond_init(&s->wake, &attr);
		pthread_condattr_destroy(&attr);
	}
	if (!err) {
		err = pthread_mutex_init(&s->lock, NULL);
		if (err)
			pthread_cond_destroy(&s->wake);
	}
	if (!err) {
		err = pthread_create(&s->thread, NULL, sender_thread, s);
		if (err) {
			pthread_mutex_destroy(&s->lock);
			pthread_cond_destroy(&s->wake);
		}
	}
	if (err) {
		log_error("no Node condition: cannot start its thread: %s", strerror(err));
		k8s_client_free(s->client);
		free(s);
		return NULL;
	}
	return s;
}

void node_condition_set(struct node_condition_sender *s, bool status, const char *reason, const char *message)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	if (!s->generation || status != s->status || strcmp(reason ? reason : "", s->reason) ||
	    strcmp(message ? message : "", s->message)) {
		set_locked(s, status, reason, message);
		s->generation++;
		pthread_cond_signal(&s->wake);
	}
	pthread_mutex_unlock(&s->lock);
}

void node_condition_stop(struct node_condition_sender *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	k8s_client_free(s->client);
	free(s);
}
