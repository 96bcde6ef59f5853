/*
 * Pod names for this node: a cache of the pods the API lists for it.
 *
 * Pods are keyed by UID with case, '-' and '_' ignored, so a UUID in any
 * spelling and a static pod's 32-hex config hash (its cgroup UID) meet the
 * same key space; a dashless UUID and a config hash colliding would take an
 * md5 preimage. Two chained hash tables point into the same entries: one by
 * API UID, one by config hash. A mirror pod that is deleted and recreated
 * keeps its hash, so several entries may share an alias; a lookup prefers the
 * live one, then the most recently deleted.
 *
 * Each pod keeps the container IDs of its current status plus those that
 * left it (a restarted container's previous instance drops out of lastState
 * after the next restart) until pod_cache_expire() ages them out like
 * tombstones: the kernel's report of a kill can trail the status update.
 *
 * Decoding happens outside the lock; only the hash-table work holds it. A
 * re-list arrives item by item (the LIST body is streamed, never held whole):
 * pods already known are updated as they come, new ones wait as decoded
 * entries until the list is complete.
 */
#include "pod_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_json.h"
#include "metrics.h"
#include "util.h"

#define UID_KEY_MAX		64	/* a UUID is 32 hex digits without dashes */
#define CONFIG_HASH_LEN		32	/* md5 in hex */
#define CONTAINER_ID_MAX	64
#define NAMESPACE_MAX		63
#define POD_NAME_MAX		253
#define CONTAINER_NAME_MAX	63
#define CACHE_BUCKETS		8192	/* power of two; chains stay short at 10,000 pods */

/* ---- helpers ---- */

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
	unsigned int gen;	/* a re-list: seen in this one */
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
	pod_retired_fn on_retire;
	void *on_retire_arg;
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
	json_object *list = k8s_json_member(status, key, json_type_array);
	size_t i, n = list ? json_object_array_length(list) : 0;

	for (i = 0; i < n; i++) {
		json_object *cs = json_object_array_get_idx(list, i);
		json_object *last, *state;
		const char *name, *id;
		size_t name_len = 0, id_len = 0;
		int ret;

		name = k8s_json_string(cs, "name", &name_len);
		if (!name)
			continue;
		id = k8s_json_string(cs, "containerID", &id_len);
		ret = add_ctr(e, cap, id, id_len, name, name_len);
		/* the previous instance of a restarted container, e.g. the OOM-killed one */
		last = k8s_json_member(k8s_json_member(cs, "lastState", json_type_object), "terminated",
				  json_type_object);
		id = k8s_json_string(last, "containerID", &id_len);
		if (!ret)
			ret = add_ctr(e, cap, id, id_len, name, name_len);
		state = k8s_json_member(k8s_json_member(cs, "state", json_type_object), "terminated",
				   json_type_object);
		id = k8s_json_string(state, "containerID", &id_len);
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
	json_object *meta = k8s_json_member(pod, "metadata", json_type_object);
	json_object *status = k8s_json_member(pod, "status", json_type_object);
	const char *uid, *name, *ns, *hash;
	size_t uid_len = 0, name_len = 0, ns_len = 0, hash_len = 0, cap = 0, i;
	struct pod_entry *e;
	int ret;

	*out = NULL;
	uid = k8s_json_string(meta, "uid", &uid_len);
	name = k8s_json_string(meta, "name", &name_len);
	ns = k8s_json_string(meta, "namespace", &ns_len);
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
	hash = k8s_json_string(k8s_json_member(meta, "annotations", json_type_object),
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

void pod_cache_relist_begin(struct pod_cache *c, struct pod_relist *rl)
{
	memset(rl, 0, sizeof(*rl));
	if (!c)
		return;
	pthread_rwlock_wrlock(&c->lock);
	rl->gen = ++c->gen;
	pthread_rwlock_unlock(&c->lock);
	rl->active = true;
}

/* A new pod waits for pod_cache_relist_end(); at most as many as the cache holds. */
static int relist_hold(struct pod_cache *c, struct pod_relist *rl, struct pod_entry *e)
{
	if (rl->n == POD_CACHE_MAX_PODS) {
		count(&c->refused);
		entry_free(e);
		return -ENOSPC;
	}
	if (rl->n == rl->cap) {
		size_t ncap = rl->cap ? rl->cap * 2 : 64;
		struct pod_entry **n = realloc(rl->fresh, ncap * sizeof(*n));

		if (!n) {
			entry_free(e);
			return -ENOMEM;
		}
		rl->fresh = n;
		rl->cap = ncap;
	}
	rl->fresh[rl->n++] = e;
	return 0;
}

int pod_cache_relist_add(struct pod_cache *c, struct pod_relist *rl, json_object *pod, time_t now)
{
	struct pod_entry *fresh;
	int ret;

	if (!c || !rl || !rl->active)
		return -EINVAL;
	/* a NULL item is a malformed one, as in pod_cache_replace_all() */
	ret = decode_pod(pod, &fresh);
	if (ret == -EBADMSG)
		count(&c->malformed);
	if (ret == -ENOMEM)
		rl->incomplete = true;
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&c->lock);
	/* known pods at once, so the tombstoning at the end sees them as present */
	if (find_uid(c, fresh->uid)) {
		ret = upsert(c, fresh, false, now);
		fresh = NULL;
	}
	pthread_rwlock_unlock(&c->lock);
	if (fresh)
		ret = relist_hold(c, rl, fresh);
	if (ret == -ENOMEM)
		rl->incomplete = true;
	return ret;
}

static void relist_clear(struct pod_relist *rl)
{
	free(rl->fresh);
	memset(rl, 0, sizeof(*rl));
}

void pod_cache_relist_end(struct pod_cache *c, struct pod_relist *rl, time_t now)
{
	size_t i, b;

	if (!c || !rl || !rl->active)
		return;
	pthread_rwlock_wrlock(&c->lock);
	/* out of memory on the way: better stale than emptied */
	for (b = 0; !rl->incomplete && b < CACHE_BUCKETS; b++) {
		struct pod_entry *e;

		for (e = c->by_uid[b]; e; e = e->next_uid) {
			if (!e->deleted && e->gen != rl->gen) {
				c->n_live--;
				tomb_add(c, e, now);
			}
		}
	}
	/* new pods last: a full cache can now make room from fresh tombstones */
	for (i = 0; i < rl->n; i++)
		upsert(c, rl->fresh[i], false, now);
	pthread_rwlock_unlock(&c->lock);
	rl->n = 0;
	relist_clear(rl);
}

void pod_cache_relist_abort(struct pod_cache *c, struct pod_relist *rl)
{
	if (!rl)
		return;
	while (rl->n)
		entry_free(rl->fresh[--rl->n]);
	relist_clear(rl);
}

void pod_cache_replace_all(struct pod_cache *c, json_object *items, time_t now)
{
	struct pod_relist rl;
	size_t i, total;

	if (!c)
		return;
	total = (items && json_object_is_type(items, json_type_array)) ?
		json_object_array_length(items) : 0;
	pod_cache_relist_begin(c, &rl);
	for (i = 0; i < total; i++)
		pod_cache_relist_add(c, &rl, json_object_array_get_idx(items, i), now);
	pod_cache_relist_end(c, &rl, now);
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

bool pod_cache_has(struct pod_cache *c, const char *pod_uid)
{
	char key[UID_KEY_MAX + 1];
	bool found;

	if (!c || !pod_uid || !uid_key(pod_uid, strlen(pod_uid), key))
		return false;
	pthread_rwlock_rdlock(&c->lock);
	found = find_uid(c, key) || (strlen(key) == CONFIG_HASH_LEN && find_alias(c, key));
	pthread_rwlock_unlock(&c->lock);
	return found;
}

void pod_cache_on_retire(struct pod_cache *c, pod_retired_fn fn, void *arg)
{
	pthread_rwlock_wrlock(&c->lock);
	c->on_retire = fn;
	c->on_retire_arg = arg;
	pthread_rwlock_unlock(&c->lock);
}

void pod_cache_forget_metrics(void *registry, const char *namespace_, const char *name)
{
	static const char *const labels[] = { "namespace", "pod" };
	const char *values[] = { namespace_, name };

	metrics_forget(registry, labels, values, 2);
}

struct retired_name {
	char namespace_[NAMESPACE_MAX + 1];
	char name[POD_NAME_MAX + 1];
};

/* Caller holds the lock. */
static bool live_namesake(const struct pod_cache *c, const struct retired_name *r)
{
	const struct pod_entry *e;
	size_t b;

	for (b = 0; b < CACHE_BUCKETS; b++)
		for (e = c->by_uid[b]; e; e = e->next_uid)
			if (!e->deleted && !strcmp(e->name, r->name) && !strcmp(e->namespace_, r->namespace_))
				return true;
	return false;
}

void pod_cache_expire(struct pod_cache *c, time_t now, int keep_deleted_s)
{
	time_t keep = keep_deleted_s > 0 ? keep_deleted_s : 0;
	struct retired_name *retired = NULL;
	size_t n_retired = 0, cap = 0, i;
	struct pod_entry **pp;
	pod_retired_fn on_retire;
	void *arg;
	size_t b;

	if (!c)
		return;
	pthread_rwlock_wrlock(&c->lock);
	on_retire = c->on_retire;
	arg = c->on_retire_arg;
	for (b = 0; b < CACHE_BUCKETS; b++) {
		pp = &c->by_uid[b];
		while (*pp) {
			struct pod_entry *e = *pp;
			size_t n = 0;

			if (e->deleted && now - e->deleted_at >= keep) {
				if (on_retire && n_retired == cap) {
					struct retired_name *more = realloc(retired, (cap ? 2 * cap : 16) * sizeof(*more));

					/* without memory the series stay: a leak of labels, not of correctness */
					if (more) {
						retired = more;
						cap = cap ? 2 * cap : 16;
					}
				}
				if (on_retire && n_retired < cap) {
					snprintf(retired[n_retired].namespace_, sizeof(retired->namespace_), "%s", e->namespace_);
					snprintf(retired[n_retired].name, sizeof(retired->name), "%s", e->name);
					n_retired++;
				}
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
	/* a namesake (live, or a later tombstone of it) still owns the names */
	for (i = 0; i < n_retired; i++)
		if (live_namesake(c, &retired[i]))
			retired[i].name[0] = '\0';
	pthread_rwlock_unlock(&c->lock);
	for (i = 0; i < n_retired; i++)
		if (retired[i].name[0])
			on_retire(arg, retired[i].namespace_, retired[i].name);
	free(retired);
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
