/*
 * The store and subscriptions of k8s_informer.h, fed by k8s_watch's
 * callbacks. One mutex covers the store, the subscriber list and every
 * callback, which is what makes replay and changes one ordered sequence.
 */
#include "k8s_informer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_json.h"
#include "log.h"

struct stored {
	char *key;		/* "namespace/name" ("/name" when cluster-scoped) */
	json_object *obj;	/* a reference of ours */
	unsigned int gen;	/* the list that last had it */
};

struct k8s_subscription {
	struct k8s_subscription *next;
	k8s_informer_fn fn;
	void *ctx;
};

struct k8s_informer {
	struct k8s_watch *watch;
	pthread_mutex_t lock;
	struct stored *objs;
	size_t n, cap;
	unsigned int gen;
	bool logged_full;
	struct k8s_subscription *subs;
	char resource[64];
};

static void notify(struct k8s_informer *inf, enum k8s_watch_event type, json_object *obj)
{
	struct k8s_subscription *s;

	for (s = inf->subs; s; s = s->next)
		s->fn(s->ctx, type, obj);
}

/* "ns/name" of an object, or NULL without a name. Caller frees. */
static char *object_key(json_object *obj)
{
	json_object *meta = k8s_json_member(obj, "metadata", json_type_object);
	size_t ns_len = 0, name_len = 0;
	const char *ns = k8s_json_string(meta, "namespace", &ns_len);
	const char *name = k8s_json_string(meta, "name", &name_len);
	char *key;

	if (!name || !name_len)
		return NULL;
	if (!ns)
		ns_len = 0;
	key = malloc(ns_len + name_len + 2);
	if (!key)
		return NULL;
	memcpy(key, ns, ns_len);
	key[ns_len] = '/';
	memcpy(key + ns_len + 1, name, name_len);
	key[ns_len + name_len + 1] = '\0';
	return key;
}

static struct stored *find(struct k8s_informer *inf, const char *key)
{
	size_t i;

	for (i = 0; i < inf->n; i++)
		if (!strcmp(inf->objs[i].key, key))
			return &inf->objs[i];
	return NULL;
}

static bool same_version(json_object *a, json_object *b)
{
	size_t la = 0, lb = 0;
	const char *ra = k8s_json_resource_version(a, &la);
	const char *rb = k8s_json_resource_version(b, &lb);

	return ra && rb && la == lb && !memcmp(ra, rb, la);
}

static void remove_at(struct k8s_informer *inf, size_t i, json_object *last)
{
	struct stored gone = inf->objs[i];

	inf->objs[i] = inf->objs[--inf->n];
	notify(inf, K8S_WATCH_DELETED, last ? last : gone.obj);
	json_object_put(gone.obj);
	free(gone.key);
}

/* Lock held. Consumes `key`. */
static void upsert(struct k8s_informer *inf, char *key, json_object *obj)
{
	struct stored *s = find(inf, key);

	if (s) {
		free(key);
		s->gen = inf->gen;
		/* a re-list, or a watch replaying from an older point, with nothing new */
		if (same_version(s->obj, obj))
			return;
		json_object_put(s->obj);
		s->obj = json_object_get(obj);
		notify(inf, K8S_WATCH_MODIFIED, obj);
		return;
	}
	if (inf->n == K8S_INFORMER_MAX_OBJECTS) {
		if (!inf->logged_full)
			log_warn("%s: more than %d objects; the rest are not watched",
				 inf->resource, K8S_INFORMER_MAX_OBJECTS);
		inf->logged_full = true;
		free(key);
		return;
	}
	if (inf->n == inf->cap) {
		size_t ncap = inf->cap ? inf->cap * 2 : 8;
		struct stored *n = realloc(inf->objs, ncap * sizeof(*n));

		if (!n) {
			free(key);
			return;
		}
		inf->objs = n;
		inf->cap = ncap;
	}
	inf->objs[inf->n++] = (struct stored){ .key = key, .obj = json_object_get(obj), .gen = inf->gen };
	notify(inf, K8S_WATCH_ADDED, obj);
}

static void on_list_begin(void *ctx)
{
	struct k8s_informer *inf = ctx;

	pthread_mutex_lock(&inf->lock);
	inf->gen++;
	pthread_mutex_unlock(&inf->lock);
}

static void on_object(void *ctx, enum k8s_watch_event type, json_object *obj, bool listing)
{
	/* listed or watched, an object is stored the same way; list_end sorts out the gone */
	struct k8s_informer *inf = ctx;
	struct stored *s;
	char *key;

	if (type == K8S_WATCH_BOOKMARK)
		return;
	key = object_key(obj);
	if (!key)
		return;
	pthread_mutex_lock(&inf->lock);
	if (type == K8S_WATCH_DELETED) {
		s = find(inf, key);
		if (s)
			remove_at(inf, (size_t)(s - inf->objs), obj);
		free(key);
	} else {
		upsert(inf, key, obj);
	}
	pthread_mutex_unlock(&inf->lock);
}

static void on_list_end(void *ctx, bool complete, size_t items)
{
	struct k8s_informer *inf = ctx;
	size_t i;

	pthread_mutex_lock(&inf->lock);
	/* what a complete list no longer has is gone; a broken list proves nothing */
	for (i = 0; complete && i < inf->n;) {
		if (inf->objs[i].gen != inf->gen)
			remove_at(inf, i, NULL);
		else
			i++;
	}
	pthread_mutex_unlock(&inf->lock);
	(void)items;
}

static void informer_free(struct k8s_informer *inf)
{
	size_t i;

	while (inf->subs) {
		struct k8s_subscription *s = inf->subs;

		inf->subs = s->next;
		free(s);
	}
	for (i = 0; i < inf->n; i++) {
		json_object_put(inf->objs[i].obj);
		free(inf->objs[i].key);
	}
	free(inf->objs);
	pthread_mutex_destroy(&inf->lock);
	free(inf);
}

int k8s_informer_start(const struct k8s_config *cfg, const struct k8s_watch_spec *spec,
		       struct metrics_registry *reg, struct k8s_informer **out)
{
	static const struct k8s_watch_handler handler = {
		.list_begin = on_list_begin,
		.object = on_object,
		.list_end = on_list_end,
	};
	struct k8s_informer *inf;
	int ret;

	if (out)
		*out = NULL;
	if (!spec || !spec->resource || !out)
		return -EINVAL;
	inf = calloc(1, sizeof(*inf));
	if (!inf)
		return -ENOMEM;
	pthread_mutex_init(&inf->lock, NULL);
	snprintf(inf->resource, sizeof(inf->resource), "%s", spec->resource);
	ret = k8s_watch_start(cfg, spec, &handler, inf, reg, &inf->watch);
	if (ret) {
		informer_free(inf);
		return ret;
	}
	*out = inf;
	return 0;
}

int k8s_informer_subscribe(struct k8s_informer *inf, k8s_informer_fn fn, void *ctx,
			   struct k8s_subscription **out)
{
	struct k8s_subscription *s, **pp;
	size_t i;

	if (out)
		*out = NULL;
	if (!inf || !fn)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fn = fn;
	s->ctx = ctx;
	pthread_mutex_lock(&inf->lock);
	for (i = 0; i < inf->n; i++)
		fn(ctx, K8S_WATCH_ADDED, inf->objs[i].obj);
	/* at the tail: earlier subscribers hear of changes first, in subscription order */
	for (pp = &inf->subs; *pp; pp = &(*pp)->next)
		;
	*pp = s;
	pthread_mutex_unlock(&inf->lock);
	if (out)
		*out = s;
	return 0;
}

void k8s_informer_unsubscribe(struct k8s_informer *inf, struct k8s_subscription *sub)
{
	struct k8s_subscription **pp;

	if (!inf || !sub)
		return;
	pthread_mutex_lock(&inf->lock);
	for (pp = &inf->subs; *pp; pp = &(*pp)->next) {
		if (*pp == sub) {
			*pp = sub->next;
			free(sub);
			break;
		}
	}
	pthread_mutex_unlock(&inf->lock);
}

void k8s_informer_stop(struct k8s_informer *inf)
{
	if (!inf)
		return;
	k8s_watch_stop(inf->watch);
	informer_free(inf);
}

bool k8s_informer_synced(struct k8s_informer *inf)
{
	return inf && k8s_watch_synced(inf->watch);
}

size_t k8s_informer_size(struct k8s_informer *inf)
{
	size_t n;

	if (!inf)
		return 0;
	pthread_mutex_lock(&inf->lock);
	n = inf->n;
	pthread_mutex_unlock(&inf->lock);
	return n;
}
