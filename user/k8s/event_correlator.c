/*
 * Kubernetes Event correlation (see event_correlator.h): series and spam
 * buckets in two LRU-bounded hash tables. Keys are the fields joined with
 * NUL bytes; as no field can hold a NUL, different field lists never make
 * the same key. The spam key is a prefix of the series key, so one buffer
 * holds both.
 */
#include "event_correlator.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- LRU hash table: nodes are the first member of one allocation ---- */

struct lru_node {
	struct lru_node *hnext;       /* hash chain */
	struct lru_node *prev, *next; /* recency list; head.next is the newest */
	uint64_t hash;
	size_t klen;
	char *key;                    /* points into the same allocation */
};

struct lru_map {
	struct lru_node **buckets;
	size_t mask;                  /* bucket count - 1, a power of two */
	size_t len, cap;
	struct lru_node head;         /* sentinel of the recency list */
};

static int lru_init(struct lru_map *m, size_t cap)
{
	size_t n = 16;

	/* load factor <= 0.5 keeps chains short without resizing ever */
	while (n < cap * 2)
		n *= 2;
	m->buckets = calloc(n, sizeof(*m->buckets));
	if (!m->buckets)
		return -ENOMEM;
	m->mask = n - 1;
	m->len = 0;
	m->cap = cap;
	m->head.prev = m->head.next = &m->head;
	return 0;
}

static void lru_list_del(struct lru_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
}

static void lru_list_add_front(struct lru_map *m, struct lru_node *n)
{
	n->next = m->head.next;
	n->prev = &m->head;
	m->head.next->prev = n;
	m->head.next = n;
}

static void lru_unhash(struct lru_map *m, struct lru_node *n)
{
	struct lru_node **pp = &m->buckets[n->hash & m->mask];

	while (*pp != n)
		pp = &(*pp)->hnext;
	*pp = n->hnext;
}

static struct lru_node *lru_peek(const struct lru_map *m, const char *key, size_t klen, uint64_t hash)
{
	struct lru_node *n;

	for (n = m->buckets[hash & m->mask]; n; n = n->hnext)
		if (n->hash == hash && n->klen == klen && !memcmp(n->key, key, klen))
			return n;
	return NULL;
}

static struct lru_node *lru_get(struct lru_map *m, const char *key, size_t klen, uint64_t hash)
{
	struct lru_node *n = lru_peek(m, key, klen, hash);

	if (n) {
		lru_list_del(n);
		lru_list_add_front(m, n);
	}
	return n;
}

/*
 * Add a zeroed node of `size` bytes (node first) holding a copy of the key,
 * evicting the least recently used one when full. NULL on ENOMEM.
 */
static struct lru_node *lru_add(struct lru_map *m, size_t size, const char *key, size_t klen, uint64_t hash)
{
	struct lru_node *n = calloc(1, size + klen);

	if (!n)
		return NULL;
	n->key = (char *)n + size;
	memcpy(n->key, key, klen);
	n->klen = klen;
	n->hash = hash;
	if (m->len >= m->cap) {
		struct lru_node *old = m->head.prev;

		lru_list_del(old);
		lru_unhash(m, old);
		free(old);
		m->len--;
	}
	n->hnext = m->buckets[hash & m->mask];
	m->buckets[hash & m->mask] = n;
	lru_list_add_front(m, n);
	m->len++;
	return n;
}

static void lru_destroy(struct lru_map *m)
{
	struct lru_node *n, *next;

	if (!m->buckets)
		return;
	for (n = m->head.next; n != &m->head; n = next) {
		next = n->next;
		free(n);
	}
	free(m->buckets);
	m->buckets = NULL;
}

/* ---- correlator ---- */

struct ec_series {
	struct lru_node node;
	char name[EC_NAME_MAX];
	char rv[EC_RV_MAX];
	int32_t count;
	int64_t first_ns, last_ns;
	bool need_create;
};

struct ec_bucket {
	struct lru_node node;
	/*
	 * Tokens in nanoseconds of refill time: one token is EC_SPAM_PERIOD_NS,
	 * full is EC_SPAM_BURST of them. Integers keep "exactly one token after
	 * 300 s" exact.
	 */
	int64_t credit_ns;
	int64_t last_ns;
};

struct event_correlator {
	char *component, *host;
	struct lru_map series, buckets;
	int64_t last_name_ns;  /* names use strictly increasing times: no two series share one */
	char *kbuf;            /* key scratch */
	size_t kcap;
};

struct event_correlator *event_correlator_new(const char *component, const char *host, size_t lru_cap)
{
	struct event_correlator *ec = calloc(1, sizeof(*ec));

	if (!ec)
		return NULL;
	if (!lru_cap)
		lru_cap = EC_LRU_DEFAULT;
	ec->component = strdup(component ? component : "");
	ec->host = strdup(host ? host : "");
	if (!ec->component || !ec->host || lru_init(&ec->series, lru_cap) || lru_init(&ec->buckets, lru_cap)) {
		event_correlator_free(ec);
		return NULL;
	}
	return ec;
}

void event_correlator_free(struct event_correlator *ec)
{
	if (!ec)
		return;
	lru_destroy(&ec->series);
	lru_destroy(&ec->buckets);
	free(ec->component);
	free(ec->host);
	free(ec->kbuf);
	free(ec);
}

size_t event_correlator_len(const struct event_correlator *ec)
{
	return ec->series.len;
}

static bool alnum_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* RFC 1123 subdomain (s[0..n)): dot-separated labels of [a-z0-9-] that start and end alphanumeric. */
static bool dns_subdomain(const char *s, size_t n)
{
	size_t i, start = 0;

	if (!n || n > 253)
		return false;
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			if (!alnum_char(s[i]) && s[i] != '-')
				return false;
			continue;
		}
		if (i == start || !alnum_char(s[start]) || !alnum_char(s[i - 1]))
			return false;
		start = i + 1;
	}
	return true;
}

int ec_event_name(const char *obj_name, int64_t ns, char *buf, size_t len)
{
	/* room for ".%016x" within the 253 of a DNS subdomain */
	const size_t max_prefix = 253 - 17;
	size_t n = obj_name ? strlen(obj_name) : 0;

	if (len < EC_NAME_MAX)
		return -ENOSPC;
	if (n > max_prefix)
		n = max_prefix;
	/* a cut may leave a trailing '-' or '.', which a label may not end with */
	while (n && !alnum_char(obj_name[n - 1]))
		n--;
	if (!dns_subdomain(obj_name ? obj_name : "", n)) {
		obj_name = "event";
		n = 5;
	}
	snprintf(buf, len, "%.*s.%016" PRIx64, (int)n, obj_name, (uint64_t)ns);
	return 0;
}

/* A name time after every earlier one, so two series never collide. */
static int64_t name_time(struct event_correlator *ec, int64_t now_ns)
{
	if (now_ns <= ec->last_name_ns)
		now_ns = ec->last_name_ns + 1;
	ec->last_name_ns = now_ns;
	return now_ns;
}

static int key_put(struct event_correlator *ec, size_t *len, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (*len + n + 1 > ec->kcap) {
		size_t cap = ec->kcap ? ec->kcap : 256;
		char *nb;

		while (cap < *len + n + 1)
			cap *= 2;
		nb = realloc(ec->kbuf, cap);
		if (!nb)
			return -ENOMEM;
		ec->kbuf = nb;
		ec->kcap = cap;
	}
	if (n)
		memcpy(ec->kbuf + *len, s, n);
	ec->kbuf[*len + n] = '\0';
	*len += n + 1;
	return 0;
}

/* Build the series key in ec->kbuf; *spam_len is the length of its spam-key prefix. */
static int build_key(struct event_correlator *ec, const struct ec_event *ev, size_t *key_len, size_t *spam_len)
{
	/*
	 * reason is in the spam key although client-go's spam filter keys by
	 * source and object only. There one component's Events about an object
	 * are one stream; ours come from independent signals (an OOM kill, a
	 * disk error, ...) that happen to land on the same Pod or Node, and a
	 * crash-looping container's OOM kills must not use up the burst that a
	 * later, different problem on that object needs. The budget per object
	 * stays bounded: EC_SPAM_BURST times the (fixed, small) set of reasons.
	 */
	const char *spam_fields[] = {
		ec->component, ec->host, ev->object.kind, ev->object.namespace_, ev->object.name,
		ev->object.uid, ev->object.api_version, ev->type, ev->reason,
	};
	/*
	 * fieldPath is in the series key although client-go's aggregate key
	 * leaves it out: a PATCH cannot change it, so merging two containers'
	 * occurrences would show the first container's fieldPath for both.
	 */
	const char *series_fields[] = { ev->key, ev->object.field_path };
	size_t len = 0, i;

	for (i = 0; i < sizeof(spam_fields) / sizeof(spam_fields[0]); i++)
		if (key_put(ec, &len, spam_fields[i]))
			return -ENOMEM;
	*spam_len = len;
	for (i = 0; i < sizeof(series_fields) / sizeof(series_fields[0]); i++)
		if (key_put(ec, &len, series_fields[i]))
			return -ENOMEM;
	*key_len = len;
	return 0;
}

static bool nonempty(const char *s)
{
	return s && *s;
}

static int check_event(const struct ec_event *ev)
{
	if (!ev || !nonempty(ev->type) || !nonempty(ev->reason) || !nonempty(ev->object.kind) ||
	    !nonempty(ev->object.name))
		return -EINVAL;
	return 0;
}

/* Take a token from the object's bucket; 1 if allowed, 0 if not, -ENOMEM. */
static int spam_take(struct event_correlator *ec, size_t spam_len, int64_t now_ns)
{
	const int64_t full = EC_SPAM_BURST * EC_SPAM_PERIOD_NS;
	uint64_t h = hash_fnv1a(ec->kbuf, spam_len);
	struct lru_node *n = lru_get(&ec->buckets, ec->kbuf, spam_len, h);
	struct ec_bucket *b;

	if (!n) {
		n = lru_add(&ec->buckets, sizeof(*b), ec->kbuf, spam_len, h);
		if (!n)
			return -ENOMEM;
		b = (struct ec_bucket *)n;
		b->credit_ns = full;
		b->last_ns = now_ns;
	}
	b = (struct ec_bucket *)n;
	/* a clock step backwards refills nothing (and does not move last back) */
	if (now_ns > b->last_ns) {
		int64_t dt = now_ns - b->last_ns;

		b->credit_ns = dt >= full - b->credit_ns ? full : b->credit_ns + dt;
		b->last_ns = now_ns;
	}
	if (b->credit_ns < EC_SPAM_PERIOD_NS)
		return 0;
	b->credit_ns -= EC_SPAM_PERIOD_NS;
	return 1;
}

static void fill_decision(const struct ec_series *s, enum ec_action action, struct ec_decision *out)
{
	out->action = action;
	memcpy(out->name, s->name, sizeof(out->name));
	out->count = s->count;
	out->first_ns = s->first_ns;
	out->last_ns = s->last_ns;
}

int event_correlator_observe(struct event_correlator *ec, const struct ec_event *ev, int64_t now_ns,
			     struct ec_decision *out)
{
	size_t klen, spam_len;
	struct ec_series *s;
	struct lru_node *n;
	uint64_t h;
	int allowed;

	if (check_event(ev))
		return -EINVAL;
	if (build_key(ec, ev, &klen, &spam_len))
		return -ENOMEM;
	h = hash_fnv1a(ec->kbuf, klen);
	n = lru_get(&ec->series, ec->kbuf, klen, h);
	if (!n) {
		n = lru_add(&ec->series, sizeof(*s), ec->kbuf, klen, h);
		if (!n)
			return -ENOMEM;
		s = (struct ec_series *)n;
		s->last_ns = now_ns;  /* so the window test below starts a series */
		s->count = 0;
	}
	s = (struct ec_series *)n;
	/*
	 * The window slides: it is measured from the last occurrence, as in
	 * client-go's aggregator. A fresh node has count 0 and starts one too.
	 */
	if (!s->count || now_ns - s->last_ns > EC_WINDOW_NS) {
		ec_event_name(ev->object.name, name_time(ec, now_ns), s->name, sizeof(s->name));
		s->rv[0] = '\0';
		s->count = 1;
		s->first_ns = s->last_ns = now_ns;
		s->need_create = true;
	} else {
		if (s->count < INT32_MAX)
			s->count++;
		if (now_ns > s->last_ns)
			s->last_ns = now_ns;
	}

	/* counted above even when throttled: the next allowed send carries it */
	allowed = spam_take(ec, spam_len, now_ns);
	if (allowed <= 0) {
		fill_decision(s, EC_THROTTLED, out);
		return allowed < 0 ? allowed : 0;
	}
	fill_decision(s, s->need_create ? EC_CREATE : EC_PATCH, out);
	s->need_create = false;
	return 0;
}

/* The series `ev` belongs to if it still carries `name`; NULL if stale, evicted or invalid. */
static struct ec_series *find_series(struct event_correlator *ec, const struct ec_event *ev,
				     const char *name)
{
	size_t klen, spam_len;
	struct ec_series *s;

	if (check_event(ev) || build_key(ec, ev, &klen, &spam_len))
		return NULL;
	s = (struct ec_series *)lru_peek(&ec->series, ec->kbuf, klen, hash_fnv1a(ec->kbuf, klen));
	if (!s || (name && strcmp(s->name, name)))
		return NULL;
	return s;
}

int event_correlator_confirmed(struct event_correlator *ec, const struct ec_event *ev, const char *name,
			       const char *resource_version, int32_t server_count)
{
	struct ec_series *s = find_series(ec, ev, name);

	if (!s)
		return -ENOENT;
	snprintf(s->rv, sizeof(s->rv), "%s", resource_version ? resource_version : "");
	if (server_count > s->count)
		s->count = server_count;
	s->need_create = false;
	return 0;
}

int event_correlator_not_found(struct event_correlator *ec, const struct ec_event *ev, const char *name,
			       struct ec_decision *out)
{
	struct ec_series *s = find_series(ec, ev, name);

	if (!s)
		return -ENOENT;
	/* the caller POSTs right away; send_failed() if that does not work */
	s->rv[0] = '\0';
	s->need_create = false;
	fill_decision(s, EC_CREATE, out);
	return 0;
}

int event_correlator_send_failed(struct event_correlator *ec, const struct ec_event *ev, const char *name)
{
	struct ec_series *s = find_series(ec, ev, name);

	if (!s)
		return -ENOENT;
	s->need_create = true;
	return 0;
}

int event_correlator_renamed(struct event_correlator *ec, const struct ec_event *ev, const char *name,
			     int64_t now_ns, char *new_name, size_t len)
{
	/* look up first: `name` may be the caller's buffer that new_name overwrites */
	struct ec_series *s = find_series(ec, ev, name);
	char fresh[EC_NAME_MAX];
	int err;

	if (len < EC_NAME_MAX)
		return -ENOSPC;
	err = ec_event_name(ev && ev->object.name ? ev->object.name : "", name_time(ec, now_ns), fresh,
			    sizeof(fresh));
	if (err)
		return err;
	memcpy(new_name, fresh, sizeof(fresh));
	if (!s)
		return -ENOENT;
	memcpy(s->name, fresh, sizeof(s->name));
	s->rv[0] = '\0';
	return 0;
}

int event_correlator_get(struct event_correlator *ec, const struct ec_event *ev, struct ec_state *out)
{
	struct ec_series *s = find_series(ec, ev, NULL);

	if (!s)
		return -ENOENT;
	memcpy(out->name, s->name, sizeof(out->name));
	memcpy(out->resource_version, s->rv, sizeof(out->resource_version));
	out->count = s->count;
	out->first_ns = s->first_ns;
	out->last_ns = s->last_ns;
	out->need_create = s->need_create;
	return 0;
}
