/*
 * Pod names for this node: a cache fed by list + watch of the API's pods.
 *
 * Cache. Pods are keyed by UID with case, '-' and '_' ignored, so a UUID in
 * any spelling and a static pod's 32-hex config hash (its cgroup UID) meet
 * the same key space; a dashless UUID and a config hash colliding would take
 * an md5 preimage. Two chained hash tables point into the same entries: one
 * by API UID, one by config hash. A mirror pod that is deleted and recreated
 * keeps its hash, so several entries may share an alias; a lookup prefers the
 * live one, then the most recently deleted.
 *
 * Each pod keeps the container IDs of its current status plus those that
 * left it (a restarted container's previous instance drops out of lastState
 * after the next restart) until pod_cache_expire() ages them out like
 * tombstones: the kernel's report of a kill can trail the status update.
 *
 * Decoding happens outside the lock; only the hash-table work holds it.
 *
 * Watcher. One thread: LIST (served from the API server's watch cache with
 * resourceVersion=0, so a DaemonSet rollout does not send every node's list
 * to etcd; after a 410 the list is a consistent read, since a cache that
 * lagged once may lag again), then WATCH from the list's resourceVersion.
 * The LIST goes through k8s_stream() too, parsed incrementally as it
 * arrives: that way pod_watcher_stop() interrupts it within a second, which
 * a blocking k8s_request() against an unreachable server would not.
 */
#include "k8s_pods.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "k8s_client.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "backoff.h"

#ifndef KSIGHT_VERSION
#define KSIGHT_VERSION "unknown"
#endif

#define UID_KEY_MAX		64	/* a UUID is 32 hex digits without dashes */
#define CONFIG_HASH_LEN		32	/* md5 in hex */
#define CONTAINER_ID_MAX	64
#define NAMESPACE_MAX		63
#define POD_NAME_MAX		253
#define CONTAINER_NAME_MAX	63
#define CACHE_BUCKETS		8192	/* power of two; chains stay short at 10,000 pods */
/* Pod JSON nests about 13 deep (managedFields); the default 32 is close enough to worry. */
#define JSON_DEPTH		64

#define LIST_MAX_BODY		((size_t)256 << 20)
#define LIST_IDLE_TIMEOUT_S	60
#define WATCH_TIMEOUT_S		300
#define WATCH_TIMEOUT_JITTER_S	30
#define WATCH_IDLE_SLACK_S	30
#define EXPIRE_EVERY_S		30
/* A watch that ends this fast without a single line did not really work. */
#define WATCH_MIN_USEFUL_MS	1000
#define SLEEP_SLICE_MS		10000L
#define RV_MAX			256
#define SERVER_MSG_MAX		200

/* ---- JSON helpers: every accessor tolerates NULL and wrong types ---- */

static json_object *get_member(json_object *obj, const char *key, enum json_type type)
{
	json_object *v;

	if (!obj || !json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

/* A string member without NUL bytes (which C strings would silently cut). */
static const char *get_str(json_object *obj, const char *key, size_t *len)
{
	json_object *v = get_member(obj, key, json_type_string);
	const char *s;
	int n;

	if (!v)
		return NULL;
	s = json_object_get_string(v);
	n = json_object_get_string_len(v);
	if (!s || n < 0 || memchr(s, '\0', (size_t)n))
		return NULL;
	*len = (size_t)n;
	return s;
}

static bool copy_name(char *dst, size_t max, const char *s, size_t len)
{
	if (!s || len == 0 || len > max)
		return false;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return true;
}

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_hex(char c)
{
	c = ascii_lower(c);
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ---- keys ---- */

/*
 * The UID key: lowercase, '-' and '_' dropped (systemd spells the UID with
 * '_'). Only printable ASCII; false when empty or over UID_KEY_MAX.
 */
static bool uid_key(const char *s, size_t len, char out[UID_KEY_MAX + 1])
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '-' || c == '_')
			continue;
		if (c <= ' ' || c >= 0x7f || n == UID_KEY_MAX)
			return false;
		out[n++] = ascii_lower(c);
	}
	out[n] = '\0';
	return n > 0;
}

/* "containerd://<hex>" or bare hex -> lowercase hex, 1..64 digits. */
static bool container_id_key(const char *s, size_t len, char out[CONTAINER_ID_MAX + 1])
{
	const char *p = memmem(s, len, "://", 3);
	size_t i;

	if (p) {
		len -= (size_t)(p + 3 - s);
		s = p + 3;
	}
	if (len == 0 || len > CONTAINER_ID_MAX)
		return false;
	for (i = 0; i < len; i++) {
		if (!is_hex(s[i]))
			return false;
		out[i] = ascii_lower(s[i]);
	}
	out[len] = '\0';
	return true;
}

static uint32_t key_hash(const char *s)
{
	return (uint32_t)hash_fnv1a(s, strlen(s)) & (CACHE_BUCKETS - 1);
}

/* ---- cache ---- */

struct ctr_map {
	char id[CONTAINER_ID_MAX + 1];
	char name[CONTAINER_NAME_MAX + 1];
	bool current;		/* in the latest status we saw */
	time_t retired_at;	/* when it left the status, if !current */
};

struct pod_entry {
	struct pod_entry *next_uid;
	struct pod_entry *next_alias;
	/* tombstones, in the order they were deleted: eviction takes the first */
	struct pod_entry *tomb_prev;
	struct pod_entry *tomb_next;
	char uid[UID_KEY_MAX + 1];
	char api_uid[UID_KEY_MAX + 1];		/* metadata.uid as the API spells it */
	char alias[CONFIG_HASH_LEN + 1];	/* static pod config hash, or "" */
	char namespace_[NAMESPACE_MAX + 1];
	char name[POD_NAME_MAX + 1];
	struct ctr_map *ctrs;
	size_t n_ctrs;
	bool deleted;
	time_t deleted_at;
	unsigned int gen;	/* replace_all: seen in this list */
};

struct pod_cache {
	pthread_rwlock_t lock;
	struct pod_entry *by_uid[CACHE_BUCKETS];
	struct pod_entry *by_alias[CACHE_BUCKETS];
	struct pod_entry *tomb_head;
	struct pod_entry *tomb_tail;
	size_t n_live;
	size_t n_deleted;
	unsigned int gen;
	/* __atomic: bumped while decoding, outside the lock */
	uint64_t malformed;
	uint64_t refused;
	uint64_t evicted;
};

static void entry_free(struct pod_entry *e)
{
	if (e) {
		free(e->ctrs);
		free(e);
	}
}

static void count(uint64_t *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

/* Add one container ID; bad IDs or names are left out, not the pod. */
static int add_ctr(struct pod_entry *e, size_t *cap, const char *id, size_t id_len,
		   const char *name, size_t name_len)
{
	struct ctr_map m = { .current = true };
	size_t i;

	if (!id || !name || !container_id_key(id, id_len, m.id) ||
	    !copy_name(m.name, CONTAINER_NAME_MAX, name, name_len))
		return 0;
	for (i = 0; i < e->n_ctrs; i++)
		if (!strcmp(e->ctrs[i].id, m.id))
			return 0;
	if (e->n_ctrs == POD_CACHE_MAX_CONTAINERS)
		return 0;
	if (e->n_ctrs == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		struct ctr_map *n = realloc(e->ctrs, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		e->ctrs = n;
		*cap = ncap;
	}
	e->ctrs[e->n_ctrs++] = m;
	return 0;
}

static int decode_statuses(struct pod_entry *e, size_t *cap, json_object *status, const char *key)
{
	json_object *list = get_member(status, key, json_type_array);
	size_t i, n = list ? json_object_array_length(list) : 0;

	for (i = 0; i < n; i++) {
		json_object *cs = json_object_array_get_idx(list, i);
		json_object *last, *state;
		const char *name, *id;
		size_t name_len = 0, id_len = 0;
		int ret;

		name = get_str(cs, "name", &name_len);
		if (!name)
			continue;
		id = get_str(cs, "containerID", &id_len);
		ret = add_ctr(e, cap, id, id_len, name, name_len);
		/* the previous instance of a restarted container, e.g. the OOM-killed one */
		last = get_member(get_member(cs, "lastState", json_type_object), "terminated",
				  json_type_object);
		id = get_str(last, "containerID", &id_len);
		if (!ret)
			ret = add_ctr(e, cap, id, id_len, name, name_len);
		state = get_member(get_member(cs, "state", json_type_object), "terminated",
				   json_type_object);
		id = get_str(state, "containerID", &id_len);
		if (!ret)
			ret = add_ctr(e, cap, id, id_len, name, name_len);
		if (ret)
			return ret;
	}
	return 0;
}

/* A Pod object -> a fresh entry. -EBADMSG when it cannot name a pod. */
static int decode_pod(json_object *pod, struct pod_entry **out)
{
	static const char *const lists[] = {
		"containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses",
	};
	json_object *meta = get_member(pod, "metadata", json_type_object);
	json_object *status = get_member(pod, "status", json_type_object);
	const char *uid, *name, *ns, *hash;
	size_t uid_len = 0, name_len = 0, ns_len = 0, hash_len = 0, cap = 0, i;
	struct pod_entry *e;
	int ret;

	*out = NULL;
	uid = get_str(meta, "uid", &uid_len);
	name = get_str(meta, "name", &name_len);
	ns = get_str(meta, "namespace", &ns_len);
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	if (!uid || !uid_key(uid, uid_len, e->uid) ||
	    !copy_name(e->api_uid, UID_KEY_MAX, uid, uid_len) ||
	    !copy_name(e->name, POD_NAME_MAX, name, name_len) ||
	    !copy_name(e->namespace_, NAMESPACE_MAX, ns, ns_len)) {
		free(e);
		return -EBADMSG;
	}
	hash = get_str(get_member(meta, "annotations", json_type_object),
		       "kubernetes.io/config.hash", &hash_len);
	if (hash && hash_len == CONFIG_HASH_LEN) {
		/* not a hash after all: no alias, but the pod is fine */
		for (i = 0; i < hash_len && is_hex(hash[i]); i++)
			e->alias[i] = ascii_lower(hash[i]);
		e->alias[i == hash_len ? i : 0] = '\0';
	}
	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		ret = decode_statuses(e, &cap, status, lists[i]);
		if (ret) {
			entry_free(e);
			return ret;
		}
	}
	*out = e;
	return 0;
}

static struct pod_entry *find_uid(struct pod_cache *c, const char *key)
{
	struct pod_entry *e;

	for (e = c->by_uid[key_hash(key)]; e; e = e->next_uid)
		if (!strcmp(e->uid, key))
			return e;
	return NULL;
}

/* Live first, then the most recently deleted. */
static struct pod_entry *find_alias(struct pod_cache *c, const char *key)
{
	struct pod_entry *e, *best = NULL;

	for (e = c->by_alias[key_hash(key)]; e; e = e->next_alias) {
		if (strcmp(e->alias, key))
			continue;
		if (!e->deleted)
			return e;
		if (!best || e->deleted_at > best->deleted_at)
			best = e;
	}
	return best;
}

static void alias_link(struct pod_cache *c, struct pod_entry *e)
{
	uint32_t h;

	if (!e->alias[0])
		return;
	h = key_hash(e->alias);
	e->next_alias = c->by_alias[h];
	c->by_alias[h] = e;
}

static void alias_unlink(struct pod_cache *c, struct pod_entry *e)
{
	struct pod_entry **pp;

	if (!e->alias[0])
		return;
	for (pp = &c->by_alias[key_hash(e->alias)]; *pp; pp = &(*pp)->next_alias) {
		if (*pp == e) {
			*pp = e->next_alias;
			e->next_alias = NULL;
			return;
		}
	}
}

static void tomb_add(struct pod_cache *c, struct pod_entry *e, time_t now)
{
	e->deleted = true;
	e->deleted_at = now;
	e->tomb_next = NULL;
	e->tomb_prev = c->tomb_tail;
	if (c->tomb_tail)
		c->tomb_tail->tomb_next = e;
	else
		c->tomb_head = e;
	c->tomb_tail = e;
	c->n_deleted++;
}

static void tomb_del(struct pod_cache *c, struct pod_entry *e)
{
	if (e->tomb_prev)
		e->tomb_prev->tomb_next = e->tomb_next;
	else
		c->tomb_head = e->tomb_next;
	if (e->tomb_next)
		e->tomb_next->tomb_prev = e->tomb_prev;
	else
		c->tomb_tail = e->tomb_prev;
	e->tomb_prev = e->tomb_next = NULL;
	e->deleted = false;
	c->n_deleted--;
}

/* *pp is the uid-chain link that points at the entry. */
static void entry_unlink_free(struct pod_cache *c, struct pod_entry **pp)
{
	struct pod_entry *e = *pp;

	*pp = e->next_uid;
	alias_unlink(c, e);
	if (e->deleted)
		tomb_del(c, e);
	else
		c->n_live--;
	entry_free(e);
}

/* Room for one more entry: evict the first-deleted tombstone if need be. */
static bool make_room(struct pod_cache *c)
{
	struct pod_entry **pp;

	if (c->n_live + c->n_deleted < POD_CACHE_MAX_PODS)
		return true;
	if (!c->tomb_head)
		return false;
	for (pp = &c->by_uid[key_hash(c->tomb_head->uid)]; *pp != c->tomb_head; pp = &(*pp)->next_uid)
		;
	entry_unlink_free(c, pp);
	count(&c->evicted);
	return true;
}

/*
 * Take the fresh entry's names and current IDs into `old`; IDs that left
 * the status stay on as retired ones, oldest dropped first beyond the cap.
 */
static void merge(struct pod_cache *c, struct pod_entry *old, struct pod_entry *fresh, time_t now)
{
	struct ctr_map *m;
	size_t i, j, n;

	if (strcmp(old->alias, fresh->alias)) {
		alias_unlink(c, old);
		memcpy(old->alias, fresh->alias, sizeof(old->alias));
		alias_link(c, old);
	}
	memcpy(old->namespace_, fresh->namespace_, sizeof(old->namespace_));
	memcpy(old->name, fresh->name, sizeof(old->name));

	m = realloc(fresh->ctrs, (fresh->n_ctrs + old->n_ctrs + 1) * sizeof(*m));
	if (!m) {
		/* keep what we had rather than lose the retired IDs */
		entry_free(fresh);
		return;
	}
	n = fresh->n_ctrs;
	for (i = 0; i < old->n_ctrs; i++) {
		struct ctr_map *o = &old->ctrs[i];

		for (j = 0; j < fresh->n_ctrs; j++)
			if (!strcmp(m[j].id, o->id))
				break;
		if (j < fresh->n_ctrs)
			continue;
		if (o->current) {
			o->current = false;
			o->retired_at = now;
		}
		m[n++] = *o;
	}
	while (n > POD_CACHE_MAX_CONTAINERS) {
		size_t drop = n;

		for (i = 0; i < n; i++)
			if (!m[i].current && (drop == n || m[i].retired_at < m[drop].retired_at))
				drop = i;
		if (drop == n)
			break;	/* cannot happen: only retired IDs come on top of the cap */
		memmove(&m[drop], &m[drop + 1], (n - drop - 1) * sizeof(*m));
		n--;
	}
	free(old->ctrs);
	old->ctrs = m;
	old->n_ctrs = n;
	fresh->ctrs = NULL;
	entry_free(fresh);
}

/* Insert or update; consumes `fresh`. Write lock held. */
static int upsert(struct pod_cache *c, struct pod_entry *fresh, bool deleted, time_t now)
{
	struct pod_entry *e = find_uid(c, fresh->uid);
	uint32_t h;

	if (e) {
		merge(c, e, fresh, now);
		if (deleted && !e->deleted) {
			c->n_live--;
			tomb_add(c, e, now);
		} else if (!deleted && e->deleted) {
			/* back in a list after we tombstoned it: it was never gone */
			tomb_del(c, e);
			c->n_live++;
		}
		e->gen = c->gen;
		return 0;
	}
	if (!make_room(c)) {
		count(&c->refused);
		entry_free(fresh);
		return -ENOSPC;
	}
	fresh->gen = c->gen;
	h = key_hash(fresh->uid);
	fresh->next_uid = c->by_uid[h];
	c->by_uid[h] = fresh;
	alias_link(c, fresh);
	if (deleted)
		tomb_add(c, fresh, now);
	else
		c->n_live++;
	return 0;
}

struct pod_cache *pod_cache_new(void)
{
	struct pod_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (pthread_rwlock_init(&c->lock, NULL)) {
		free(c);
		return NULL;
	}
	return c;
}

void pod_cache_free(struct pod_cache *c)
{
	size_t b;

	if (!c)
		return;
	for (b = 0; b < CACHE_BUCKETS; b++) {
		while (c->by_uid[b]) {
			struct pod_entry *e = c->by_uid[b];

			c->by_uid[b] = e->next_uid;
			entry_free(e);
		}
	}
	pthread_rwlock_destroy(&c->lock);
	free(c);
}

int pod_cache_apply(struct pod_cache *c, const char *type, json_object *pod, time_t now)
{
	struct pod_entry *fresh;
	bool deleted;
	int ret;

	if (!c || !type || !pod)
		return -EINVAL;
	if (!strcmp(type, "DELETED"))
		deleted = true;
	else if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED"))
		deleted = false;
	else
		return -EINVAL;
	ret = decode_pod(pod, &fresh);
	if (ret == -EBADMSG)
		count(&c->malformed);
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&c->lock);
	ret = upsert(c, fresh, deleted, now);
	pthread_rwlock_unlock(&c->lock);
	return ret;
}

void pod_cache_replace_all(struct pod_cache *c, json_object *items, time_t now)
{
	struct pod_entry **fresh = NULL;
	size_t i, b, n = 0, total;

	if (!c)
		return;
	total = (items && json_object_is_type(items, json_type_array)) ?
		json_object_array_length(items) : 0;
	if (total) {
		fresh = calloc(total, sizeof(*fresh));
		if (!fresh)
			return;	/* nothing changes: better stale than emptied */
	}
	for (i = 0; i < total; i++) {
		int ret = decode_pod(json_object_array_get_idx(items, i), &fresh[n]);

		if (ret == -EBADMSG)
			count(&c->malformed);
		if (ret == -ENOMEM) {
			while (n)
				entry_free(fresh[--n]);
			free(fresh);
			return;
		}
		if (!ret)
			n++;
	}

	pthread_rwlock_wrlock(&c->lock);
	c->gen++;
	/* known pods first, so the tombstoning below sees them as present */
	for (i = 0; i < n; i++) {
		if (find_uid(c, fresh[i]->uid)) {
			upsert(c, fresh[i], false, now);
			fresh[i] = NULL;
		}
	}
	for (b = 0; b < CACHE_BUCKETS; b++) {
		struct pod_entry *e;

		for (e = c->by_uid[b]; e; e = e->next_uid) {
			if (!e->deleted && e->gen != c->gen) {
				c->n_live--;
				tomb_add(c, e, now);
			}
		}
	}
	/* new pods last: a full cache can now make room from fresh tombstones */
	for (i = 0; i < n; i++)
		if (fresh[i])
			upsert(c, fresh[i], false, now);
	pthread_rwlock_unlock(&c->lock);
	free(fresh);
}

bool pod_cache_lookup(struct pod_cache *c, const char *pod_uid, const char *container_id,
		      struct pod_names *out)
{
	char key[UID_KEY_MAX + 1], cid[CONTAINER_ID_MAX + 1];
	bool have_cid = false;
	struct pod_entry *e;
	size_t i;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!c || !pod_uid || !out || !uid_key(pod_uid, strlen(pod_uid), key))
		return false;
	if (container_id && container_id[0])
		have_cid = container_id_key(container_id, strlen(container_id), cid);

	pthread_rwlock_rdlock(&c->lock);
	e = find_uid(c, key);
	if (!e && strlen(key) == CONFIG_HASH_LEN)
		e = find_alias(c, key);
	if (e) {
		memcpy(out->namespace_, e->namespace_, sizeof(out->namespace_));
		memcpy(out->pod, e->name, sizeof(out->pod));
		memcpy(out->uid, e->api_uid, sizeof(out->uid));
		for (i = 0; have_cid && i < e->n_ctrs; i++) {
			if (!strcmp(e->ctrs[i].id, cid)) {
				memcpy(out->container, e->ctrs[i].name, sizeof(out->container));
				break;
			}
		}
	}
	pthread_rwlock_unlock(&c->lock);
	return e != NULL;
}

void pod_cache_expire(struct pod_cache *c, time_t now, int keep_deleted_s)
{
	time_t keep = keep_deleted_s > 0 ? keep_deleted_s : 0;
	struct pod_entry **pp;
	size_t b;

	if (!c)
		return;
	pthread_rwlock_wrlock(&c->lock);
	for (b = 0; b < CACHE_BUCKETS; b++) {
		pp = &c->by_uid[b];
		while (*pp) {
			struct pod_entry *e = *pp;
			size_t i, n = 0;

			if (e->deleted && now - e->deleted_at >= keep) {
				entry_unlink_free(c, pp);
				continue;
			}
			/* a tombstone keeps all its IDs until it goes itself */
			for (i = 0; i < e->n_ctrs; i++) {
				if (!e->deleted && !e->ctrs[i].current &&
				    now - e->ctrs[i].retired_at >= keep)
					continue;
				e->ctrs[n++] = e->ctrs[i];
			}
			e->n_ctrs = n;
			pp = &e->next_uid;
		}
	}
	pthread_rwlock_unlock(&c->lock);
}

void pod_cache_get_stats(struct pod_cache *c, struct pod_cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!c)
		return;
	pthread_rwlock_rdlock(&c->lock);
	out->live = c->n_live;
	out->deleted = c->n_deleted;
	pthread_rwlock_unlock(&c->lock);
	out->malformed = __atomic_load_n(&c->malformed, __ATOMIC_RELAXED);
	out->refused = __atomic_load_n(&c->refused, __ATOMIC_RELAXED);
	out->evicted = __atomic_load_n(&c->evicted, __ATOMIC_RELAXED);
}

/* ---- watch stream decoder ---- */

void watch_decoder_init(struct watch_decoder *dec, size_t max_line)
{
	memset(dec, 0, sizeof(*dec));
	dec->max_line = max_line;
}

static size_t decoder_max(const struct watch_decoder *dec)
{
	size_t max = dec->max_line ? dec->max_line : WATCH_MAX_LINE;

	/* json_tokener_parse_ex() takes an int */
	return max < INT_MAX ? max : INT_MAX;
}

/* Let go of a big line's buffer; keep a small one for the next line. */
static void partial_clear(struct watch_decoder *dec)
{
	if (dec->partial.cap > (64u << 10))
		strbuf_free(&dec->partial);
	else
		strbuf_reset(&dec->partial);
}

/* One line without its '\n'. */
static int decode_line(struct watch_decoder *dec, const char *s, size_t len,
		       watch_line_fn cb, void *ctx)
{
	json_object *obj;
	size_t i, end;
	int ret;

	for (i = 0; i < len && is_space(s[i]); i++)
		;
	if (i == len)
		return 0;	/* blank: keep-alive or a stray CR */
	if (!dec->tok) {
		dec->tok = json_tokener_new_ex(JSON_DEPTH);
		if (!dec->tok) {
			dec->too_long++;
			return 0;
		}
	}
	json_tokener_reset(dec->tok);
	obj = json_tokener_parse_ex(dec->tok, s, (int)len);
	if (!obj) {
		/* json_tokener_continue here means the line ended mid-object */
		dec->malformed++;
		return 0;
	}
	for (end = json_tokener_get_parse_end(dec->tok); end < len && is_space(s[end]); end++)
		;
	if (end < len || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		dec->malformed++;
		return 0;
	}
	dec->lines++;
	ret = cb(ctx, obj);
	json_object_put(obj);
	return ret;
}

int watch_decoder_feed(struct watch_decoder *dec, const char *data, size_t len,
		       watch_line_fn cb, void *ctx)
{
	size_t max = decoder_max(dec);

	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t seg = nl ? (size_t)(nl - data) : len;
		int ret = 0;

		if (dec->skipping) {
			if (!nl)
				return 0;
			dec->skipping = false;
		} else if (!nl) {
			/* an unfinished line: keep it, unless it is already too long */
			if (dec->partial.len + seg > max) {
				dec->too_long++;
				dec->skipping = true;
				partial_clear(dec);
				return 0;
			}
			strbuf_append(&dec->partial, data, seg);
			if (dec->partial.oom) {
				dec->too_long++;
				dec->skipping = true;
				strbuf_free(&dec->partial);
			}
			return 0;
		} else if (dec->partial.len) {
			if (dec->partial.len + seg > max) {
				dec->too_long++;
			} else {
				strbuf_append(&dec->partial, data, seg);
				if (dec->partial.oom)
					dec->too_long++;
				else
					ret = decode_line(dec, dec->partial.buf, dec->partial.len, cb, ctx);
			}
			partial_clear(dec);
		} else if (seg > max) {
			dec->too_long++;
		} else {
			/* the common case: a whole line inside the chunk, no copy */
			ret = decode_line(dec, data, seg, cb, ctx);
		}
		data += seg + 1;
		len -= seg + 1;
		if (ret)
			return ret;
	}
	return 0;
}

void watch_decoder_reset(struct watch_decoder *dec)
{
	strbuf_free(&dec->partial);
	dec->skipping = false;
}

void watch_decoder_free(struct watch_decoder *dec)
{
	if (!dec)
		return;
	strbuf_free(&dec->partial);
	if (dec->tok)
		json_tokener_free(dec->tok);
	dec->tok = NULL;
	dec->skipping = false;
}

/* ---- watcher thread ---- */

static const struct backoff_policy pod_watch_backoff = {
	.min_ms = POD_WATCH_BACKOFF_MIN_MS,
	.max_ms = POD_WATCH_BACKOFF_MAX_MS,
	.retry_after_max_s = POD_WATCH_RETRY_AFTER_MAX_S,
};

/* How a watch stream ended, and what to do next. */
struct stream_end {
	const char *reason;	/* ksight_k8s_watch_restarts_total label */
	bool relist;
	bool failed;		/* back off before the next request */
};

struct pod_watcher {
	pthread_t thread;
	volatile int stop;	/* __atomic; k8s_stream() polls it */
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* signalled on stop, for the sleeps */
	int synced;		/* __atomic */

	struct k8s_client *client;
	struct pod_cache *cache;
	char node[POD_NAME_MAX + 1];
	struct strbuf node_enc;
	char source[PATH_MAX + 32];
	uint64_t rand_state;

	char rv[RV_MAX];
	bool list_consistent;	/* the last watch expired: no resourceVersion=0 */
	unsigned int attempt;	/* failures in a row, for the backoff */
	long retry_after_s;
	bool prev_unproductive;
	time_t last_expire;

	/* the request in flight */
	struct watch_decoder dec;
	struct stream_end end;
	bool end_set;
	unsigned long events;
	json_tokener *list_tok;
	json_object *list_obj;
	size_t list_bytes;
	bool list_too_big;
	bool list_bad_json;

	/* logging: the failure text last logged, the auth status last logged */
	char err[512];
	char logged_err[512];
	long logged_auth;

	struct metric_family *m_pods;
	struct metric_family *m_pods_deleted;
	struct metric_family *m_restarts;
	struct metric_family *m_api_errors;
	struct metric_family *m_rejected;
	struct metric_family *m_lines_dropped;
};

static bool stopping(struct pod_watcher *w)
{
	return __atomic_load_n(&w->stop, __ATOMIC_ACQUIRE) != 0;
}

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void publish(struct pod_watcher *w)
{
	static const char *const malformed[] = { "malformed" };
	static const char *const full[] = { "cache_full" };
	static const char *const too_long[] = { "too_long" };
	static const char *const bad_json[] = { "malformed" };
	struct pod_cache_stats st;

	pod_cache_get_stats(w->cache, &st);
	metrics_gauge_set(w->m_pods, NULL, (double)st.live);
	metrics_gauge_set(w->m_pods_deleted, NULL, (double)st.deleted);
	metrics_counter_set(w->m_rejected, malformed, (double)st.malformed);
	metrics_counter_set(w->m_rejected, full, (double)st.refused);
	metrics_counter_set(w->m_lines_dropped, too_long, (double)w->dec.too_long);
	metrics_counter_set(w->m_lines_dropped, bad_json, (double)w->dec.malformed);
}

/* Periodic work that must go on during a long watch as well as between requests. */
static void tick(struct pod_watcher *w, bool force)
{
	time_t now = mono_s();

	if (!force && now - w->last_expire < EXPIRE_EVERY_S)
		return;
	pod_cache_expire(w->cache, now, POD_WATCH_KEEP_DELETED_S);
	w->last_expire = now;
	publish(w);
}

/* Sleep unless stopped; false when stopped. */
static bool watcher_sleep(struct pod_watcher *w, long ms)
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

static void count_api_error(struct pod_watcher *w, const char *op)
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
		json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);

		if (tok && len < INT_MAX)
			st = json_tokener_parse_ex(tok, s, (int)len);
		if (tok)
			json_tokener_free(tok);
		if (st) {
			const char *msg = get_str(st, "message", &len);

			s = msg ? msg : "";
			if (!msg)
				len = 0;
		}
	}
	printable_copy(out, cap, s, len);
	json_object_put(st);
}

/* Record a failed request; the caller logs it with the retry delay. */
static void fail(struct pod_watcher *w, const char *op, const struct k8s_response *resp,
		 int rc, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void fail(struct pod_watcher *w, const char *op, const struct k8s_response *resp,
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
		snprintf(w->err, sizeof(w->err), "pods %s failed: %s", op, etext);
		return;
	}
	if (rc < 0) {
		snprintf(w->err, sizeof(w->err), "pods %s broke off: %s", op, etext);
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
			log_warn("pods %s forbidden: the ServiceAccount needs get/list/watch on pods (deploy/rbac.yaml)%s%s",
				 op, msg[0] ? "; the API server said: " : "", msg);
		else
			log_warn("pods %s unauthorized (HTTP 401): the API server rejected our credentials from %s%s%s",
				 op, w->source, msg[0] ? ": " : "", msg);
		return;
	}
	snprintf(w->err, sizeof(w->err), "pods %s: HTTP %ld%s%s", op, resp->status,
		 msg[0] ? ": " : "", msg);
}

static void back_off(struct pod_watcher *w)
{
	long ms = backoff_ms(&pod_watch_backoff, w->attempt + 1, w->retry_after_s, jitter_random(&w->rand_state));

	if (w->attempt < 64)
		w->attempt++;
	if (w->err[0] && strcmp(w->err, w->logged_err)) {
		log_warn("%s; retrying in %.1f s", w->err, (double)ms / 1000);
		memcpy(w->logged_err, w->err, sizeof(w->logged_err));
	}
	w->err[0] = '\0';
	w->retry_after_s = -1;
	tick(w, true);
	watcher_sleep(w, ms);
}

static void recovered(struct pod_watcher *w)
{
	if (w->logged_err[0] || w->logged_auth)
		log_info("pods list/watch of node %s works again", w->node);
	w->logged_err[0] = '\0';
	w->logged_auth = 0;
}

static void url_encode(struct strbuf *sb, const char *s)
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

static int on_list_data(void *ctx, const char *data, size_t len)
{
	struct pod_watcher *w = ctx;

	w->list_bytes += len;
	if (w->list_bytes > LIST_MAX_BODY) {
		w->list_too_big = true;
		return 1;
	}
	if (w->list_obj)
		return 0;	/* after the object: whitespace, if anything */
	while (len) {
		int n = len < INT_MAX ? (int)len : INT_MAX;

		w->list_obj = json_tokener_parse_ex(w->list_tok, data, n);
		if (w->list_obj)
			return 0;
		if (json_tokener_get_error(w->list_tok) != json_tokener_continue) {
			w->list_bad_json = true;
			return 1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* LIST into the cache. 0, or -1 after fail() (or when stopped). */
static int do_list(struct pod_watcher *w)
{
	struct k8s_response resp = { 0 };
	struct strbuf path = STRBUF_INIT;
	json_object *items = NULL, *meta;
	const char *rv;
	size_t rv_len = 0;
	int rc, ret = -1;

	strbuf_printf(&path, "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s%s",
		      w->node_enc.buf, w->list_consistent ? "" : "&resourceVersion=0");
	w->list_tok = json_tokener_new_ex(JSON_DEPTH);
	if (path.oom || !w->list_tok) {
		fail(w, "list", &resp, -ENOMEM, "pods list: out of memory");
		goto out;
	}
	w->list_obj = NULL;
	w->list_bytes = 0;
	w->list_too_big = false;
	w->list_bad_json = false;
	rc = k8s_stream(w->client, path.buf, on_list_data, w, LIST_IDLE_TIMEOUT_S, &w->stop, &resp);
	if (stopping(w))
		goto out;
	if (w->list_too_big) {
		fail(w, "list", &resp, rc, "pods list: the response is over %zu MiB",
		     LIST_MAX_BODY >> 20);
		goto out;
	}
	if (!w->list_bad_json && (rc < 0 || resp.status < 200 || resp.status > 299)) {
		fail(w, "list", &resp, rc, NULL);
		goto out;
	}
	if (!w->list_obj || !json_object_is_type(w->list_obj, json_type_object)) {
		fail(w, "list", &resp, rc, "pods list: the response is not a JSON object%s",
		     w->list_bad_json ? "" : " (cut short?)");
		goto out;
	}
	if (json_object_object_get_ex(w->list_obj, "items", &items) && items &&
	    !json_object_is_type(items, json_type_array)) {
		fail(w, "list", &resp, rc, "pods list: \"items\" is not an array");
		goto out;
	}
	meta = get_member(w->list_obj, "metadata", json_type_object);
	rv = get_str(meta, "resourceVersion", &rv_len);
	if (!rv || !rv_len || rv_len >= sizeof(w->rv)) {
		fail(w, "list", &resp, rc, "pods list: no usable metadata.resourceVersion");
		goto out;
	}
	pod_cache_replace_all(w->cache, items, mono_s());
	memcpy(w->rv, rv, rv_len + 1);
	w->list_consistent = false;
	if (!__atomic_exchange_n(&w->synced, 1, __ATOMIC_RELEASE))
		log_info("pod names from the Kubernetes API (%s): %zu pods on node %s",
			 w->source, items ? json_object_array_length(items) : 0, w->node);
	recovered(w);
	tick(w, true);
	ret = 0;
out:
	json_object_put(w->list_obj);
	w->list_obj = NULL;
	if (w->list_tok)
		json_tokener_free(w->list_tok);
	w->list_tok = NULL;
	k8s_response_free(&resp);
	strbuf_free(&path);
	return ret;
}

static void end_stream(struct pod_watcher *w, const char *reason, bool relist, bool failed)
{
	w->end = (struct stream_end){ .reason = reason, .relist = relist, .failed = failed };
	w->end_set = true;
}

static void update_rv(struct pod_watcher *w, json_object *obj)
{
	size_t len = 0;
	const char *rv = get_str(get_member(obj, "metadata", json_type_object),
				 "resourceVersion", &len);

	/* without one we watch again from an older point: events repeat, harmlessly */
	if (rv && len && len < sizeof(w->rv))
		memcpy(w->rv, rv, len + 1);
}

static int on_watch_event(void *ctx, json_object *ev)
{
	struct pod_watcher *w = ctx;
	json_object *obj = get_member(ev, "object", json_type_object), *code;
	char text[SERVER_MSG_MAX + 1];
	size_t len = 0;
	const char *type = get_str(ev, "type", &len), *msg;

	if (!type || !obj) {
		end_stream(w, "relist", true, false);
		log_warn("pods watch: an event without type or object; listing again");
		return 1;
	}
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED") || !strcmp(type, "DELETED")) {
		/* a malformed pod is counted by the cache; the watch goes on */
		pod_cache_apply(w->cache, type, obj, mono_s());
		update_rv(w, obj);
		w->events++;
		return 0;
	}
	if (!strcmp(type, "BOOKMARK")) {
		update_rv(w, obj);
		w->events++;
		return 0;
	}
	if (!strcmp(type, "ERROR")) {
		code = get_member(obj, "code", json_type_int);
		if (code && json_object_get_int64(code) == 410) {
			end_stream(w, "expired", true, false);
			return 1;
		}
		count_api_error(w, "watch");
		msg = get_str(obj, "message", &len);
		printable_copy(text, sizeof(text), msg, msg ? len : 0);
		snprintf(w->err, sizeof(w->err), "pods watch: the API server sent an error (code %ld): %s",
			 code ? (long)json_object_get_int64(code) : 0L, text[0] ? text : "no message");
		end_stream(w, "error", true, true);
		return 1;
	}
	/* an event type newer than us: nothing to apply */
	return 0;
}

static int on_watch_data(void *ctx, const char *data, size_t len)
{
	struct pod_watcher *w = ctx;
	uint64_t dropped = w->dec.too_long + w->dec.malformed;
	int ret;

	ret = watch_decoder_feed(&w->dec, data, len, on_watch_event, w);
	if (!ret && w->dec.too_long + w->dec.malformed != dropped) {
		/* an event we could not read is a change we missed */
		log_warn("pods watch: dropped an event line (over %u MiB or not JSON); listing again",
			 WATCH_MAX_LINE >> 20);
		end_stream(w, "relist", true, false);
		ret = 1;
	}
	tick(w, false);
	publish(w);	/* per chunk: pod events come at human rates */
	return ret;
}

/* One WATCH from w->rv until it ends; sets w->end. */
static void do_watch(struct pod_watcher *w)
{
	struct k8s_response resp = { 0 };
	struct strbuf path = STRBUF_INIT;
	long timeout_s = WATCH_TIMEOUT_S - WATCH_TIMEOUT_JITTER_S +
			 (long)(jitter_random(&w->rand_state) % (2 * WATCH_TIMEOUT_JITTER_S + 1));
	int64_t started = clock_ns(CLOCK_MONOTONIC) / NSEC_PER_MSEC;
	bool productive;
	int rc;

	strbuf_printf(&path, "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s"
		      "&watch=1&allowWatchBookmarks=true&resourceVersion=", w->node_enc.buf);
	url_encode(&path, w->rv);	/* opaque: digits today, but nothing promises that */
	strbuf_printf(&path, "&timeoutSeconds=%ld", timeout_s);
	w->end_set = false;
	w->events = 0;
	if (path.oom) {
		fail(w, "watch", &resp, -ENOMEM, "pods watch: out of memory");
		end_stream(w, "error", false, true);
		goto out;
	}
	rc = k8s_stream(w->client, path.buf, on_watch_data, w, timeout_s + WATCH_IDLE_SLACK_S,
			&w->stop, &resp);
	watch_decoder_reset(&w->dec);
	if (stopping(w))
		goto out;
	productive = resp.status >= 200 && resp.status <= 299 &&
		     (w->events > 0 || clock_ns(CLOCK_MONOTONIC) / NSEC_PER_MSEC - started >= WATCH_MIN_USEFUL_MS);
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
				 "pods watch: the API server ends the watch at once (%s), again", w->end.reason);
		}
		w->prev_unproductive = true;
	} else if (productive) {
		w->prev_unproductive = false;
	}
out:
	k8s_response_free(&resp);
	strbuf_free(&path);
}

static void *watcher_main(void *arg)
{
	struct pod_watcher *w = arg;
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

static void watcher_free(struct pod_watcher *w)
{
	if (w->client)
		k8s_client_free(w->client);
	watch_decoder_free(&w->dec);
	strbuf_free(&w->node_enc);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static void register_metrics(struct pod_watcher *w, struct metrics_registry *reg)
{
	static const char *const reason[] = { "reason" };
	static const char *const op[] = { "op" };
	static const char *const reasons[] = { "closed", "expired", "relist", "error" };
	static const char *const ops[] = { "list", "watch" };
	size_t i;

	if (!reg)
		return;
	w->m_pods = metrics_family(reg, "ksight_k8s_pods",
				   "Pods of this node in the pod-name cache (not deleted).",
				   METRIC_GAUGE, NULL, 0, NULL, 0);
	w->m_pods_deleted = metrics_family(reg, "ksight_k8s_pods_deleted",
					   "Deleted pods kept in the pod-name cache for late events.",
					   METRIC_GAUGE, NULL, 0, NULL, 0);
	w->m_restarts = metrics_family(reg, "ksight_k8s_watch_restarts_total",
				       "Pod watch streams that ended, by why: closed by the server, expired (410, re-list), relist (an event was lost), error.",
				       METRIC_COUNTER, reason, 1, NULL, 0);
	w->m_api_errors = metrics_family(reg, "ksight_k8s_api_errors_total",
					 "Failed Kubernetes API requests of the pod watcher, by operation.",
					 METRIC_COUNTER, op, 1, NULL, 0);
	w->m_rejected = metrics_family(reg, "ksight_k8s_pods_rejected_total",
				       "Pods not cached: malformed, or cache_full (10000 pods).",
				       METRIC_COUNTER, reason, 1, NULL, 0);
	w->m_lines_dropped = metrics_family(reg, "ksight_k8s_watch_lines_dropped_total",
					    "Pod watch lines dropped: too_long (over 8 MiB) or malformed (not one JSON object).",
					    METRIC_COUNTER, reason, 1, NULL, 0);
	/* every series from the start, at zero: rate() needs the first sample */
	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		metrics_counter_add(w->m_restarts, &reasons[i], 0);
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		metrics_counter_add(w->m_api_errors, &ops[i], 0);
}

int pod_watcher_start(const struct k8s_config *cfg, const char *node, struct pod_cache *cache,
		      struct metrics_registry *reg, struct pod_watcher **out)
{
	struct pod_watcher *w;
	pthread_condattr_t ca;
	sigset_t all, old;
	size_t len;
	int ret;

	if (out)
		*out = NULL;
	if (!cfg || !node || !cache || !out)
		return -EINVAL;
	len = strlen(node);
	if (len == 0 || len > POD_NAME_MAX)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	memcpy(w->node, node, len + 1);
	snprintf(w->source, sizeof(w->source), "%s", cfg->source);
	w->cache = cache;
	w->retry_after_s = -1;
	w->last_expire = mono_s();
	w->rand_state = (uint64_t)clock_ns(CLOCK_MONOTONIC) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)w;
	watch_decoder_init(&w->dec, 0);
	url_encode(&w->node_enc, node);
	if (w->node_enc.oom) {
		watcher_free(w);
		return -ENOMEM;
	}
	w->client = k8s_client_new(cfg, "ksight/" KSIGHT_VERSION);
	if (!w->client) {
		watcher_free(w);
		return -ENOMEM;
	}
	register_metrics(w, reg);

	/* signals belong to the main thread (signalfd): block them all in ours */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = pthread_create(&w->thread, NULL, watcher_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		watcher_free(w);
		return -ret;
	}
	*out = w;
	return 0;
}

void pod_watcher_stop(struct pod_watcher *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	watcher_free(w);
}

bool pod_watcher_synced(struct pod_watcher *w)
{
	return w && __atomic_load_n(&w->synced, __ATOMIC_ACQUIRE);
}
