#include "map_ahead.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core_btf.h"
#include "core_cache.h"
#include "startup_trace.h"
#include "tp_btf.h"

#define AHEAD_MAX 64

struct made_map {
	const struct signal_def *def;
	char name[64];
	enum bpf_map_type type;
	__u32 key_size, value_size, max_entries, flags, numa_node;
	__u64 extra;
	int fd; /* -1 once taken or failed */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	pthread_t thread;
	bool started;
	int n_done; /* defs[0..n_done) have their maps made */
	const struct signal_def *defs[AHEAD_MAX];
	int n_defs;
	struct made_map maps[AHEAD_MAX];
	int n_maps;
	/*
	 * For the CO-RE copy, first (names_done): the per-boot cache's entry
	 * (cached, cache_load 0), else what the objects name (names; NULL if
	 * that failed).
	 */
	const char *cache_dir;
	int cache_load;
	void *cached;
	size_t cached_size;
	struct core_names *names;
	bool names_done;
} ahead = { .lock = PTHREAD_MUTEX_INITIALIZER, .done_cond = PTHREAD_COND_INITIALIZER };

/* Maps libbpf fills or links itself (.rodata/.bss, program arrays, maps of maps, pinned) are its own. */
static bool worth_making(const struct bpf_map *map)
{
	switch (bpf_map__type(map)) {
	case BPF_MAP_TYPE_PROG_ARRAY:
	case BPF_MAP_TYPE_ARRAY_OF_MAPS:
	case BPF_MAP_TYPE_HASH_OF_MAPS:
	case BPF_MAP_TYPE_STRUCT_OPS:
		return false;
	default:
		break;
	}
	return !bpf_map__is_internal(map) && !bpf_map__pin_path(map) && bpf_map__autocreate(map);
}

static void describe(struct made_map *m, const struct signal_def *def, const struct bpf_map *map)
{
	m->def = def;
	snprintf(m->name, sizeof(m->name), "%s", bpf_map__name(map));
	m->type = bpf_map__type(map);
	m->key_size = bpf_map__key_size(map);
	m->value_size = bpf_map__value_size(map);
	m->max_entries = bpf_map__max_entries(map);
	m->flags = bpf_map__map_flags(map);
	m->numa_node = bpf_map__numa_node(map);
	m->extra = bpf_map__map_extra(map);
}

static bool same_definition(const struct made_map *a, const struct made_map *b)
{
	return a->type == b->type && a->key_size == b->key_size && a->value_size == b->value_size &&
	       a->max_entries == b->max_entries && a->flags == b->flags && a->numa_node == b->numa_node &&
	       a->extra == b->extra;
}

static void make_maps(const struct signal_def *def, void *skel)
{
	struct bpf_map *map;

	if (!skel)
		return;
	bpf_object__for_each_map(map, def->object(skel)) {
		struct made_map m;
		int fd;

		if (!worth_making(map) || ahead.n_maps == AHEAD_MAX)
			continue;
		describe(&m, def, map);
		{
			LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = m.flags, .numa_node = m.numa_node,
				    .map_extra = m.extra);

			fd = bpf_map_create(m.type, m.name, m.key_size, m.value_size, m.max_entries, &mo);
		}
		if (fd < 0)
			continue; /* libbpf makes it at load, and says why if it cannot */
		m.fd = fd;
		pthread_mutex_lock(&ahead.lock);
		ahead.maps[ahead.n_maps++] = m;
		pthread_mutex_unlock(&ahead.lock);
	}
}

static void *maker(void *arg)
{
	const struct btf *locals[AHEAD_MAX] = { NULL };
	void *skels[AHEAD_MAX] = { NULL };
	struct core_names *names = NULL;
	int i;

	startup_trace_thread();
	/* the ELFs' definitions and BTF; nothing of the kernel's is read */
	for (i = 0; i < ahead.n_defs; i++) {
		skels[i] = ahead.defs[i]->open(NULL);
		locals[i] = skels[i] ? bpf_object__btf(ahead.defs[i]->object(skels[i])) : NULL;
	}
	ahead.cache_load = core_cache_lookup(ahead.cache_dir, ahead.defs, ahead.n_defs, &ahead.cached,
					     &ahead.cached_size);
	if (ahead.cache_load) {
		if (core_btf_names(locals, ahead.n_defs, &names))
			names = NULL;
		startup_mark("objects' names for the CO-RE copy");
	}
	pthread_mutex_lock(&ahead.lock);
	ahead.names = names;
	ahead.names_done = true;
	pthread_cond_broadcast(&ahead.done_cond);
	pthread_mutex_unlock(&ahead.lock);
	for (i = 0; i < ahead.n_defs; i++) {
		make_maps(ahead.defs[i], skels[i]);
		if (skels[i])
			ahead.defs[i]->destroy(skels[i]);
		startup_mark("%s: maps made ahead", ahead.defs[i]->name);
		/* its load may start now, while the next signal's maps are made */
		pthread_mutex_lock(&ahead.lock);
		ahead.n_done = i + 1;
		pthread_cond_broadcast(&ahead.done_cond);
		pthread_mutex_unlock(&ahead.lock);
	}
	return NULL;
}

int maps_ahead_start(const struct signal_def *const *defs, int n, const char *cache_dir)
{
	int err;

	if (ahead.started || n > AHEAD_MAX)
		return -EBUSY;
	memcpy(ahead.defs, defs, (size_t)n * sizeof(*defs));
	ahead.n_defs = n;
	ahead.n_maps = 0;
	ahead.n_done = 0;
	ahead.names = NULL;
	ahead.names_done = false;
	ahead.cache_dir = cache_dir;
	ahead.cache_load = -ECANCELED;
	ahead.cached = NULL;
	ahead.cached_size = 0;
	/*
	 * The maker opens objects while the loads register libbpf's section
	 * handler for tp_btf: libbpf's handler table is not locked, so it is
	 * registered before the thread exists.
	 */
	tp_btf_handler_register();
	err = pthread_create(&ahead.thread, NULL, maker, NULL);
	if (err)
		return -err;
	ahead.started = true;
	return 0;
}

int maps_ahead_take(struct signal_runtime *rt)
{
	struct bpf_map *map;
	int taken = 0, i, k;

	if (!ahead.started)
		return 0;
	for (k = 0; k < ahead.n_defs && ahead.defs[k] != rt->def; k++)
		;
	if (k == ahead.n_defs)
		return 0; /* none made for it */
	pthread_mutex_lock(&ahead.lock);
	while (ahead.n_done <= k)
		pthread_cond_wait(&ahead.done_cond, &ahead.lock);
	bpf_object__for_each_map(map, rt->obj) {
		struct made_map want;

		if (!worth_making(map))
			continue;
		describe(&want, rt->def, map);
		for (i = 0; i < ahead.n_maps; i++) {
			struct made_map *m = &ahead.maps[i];

			if (m->fd < 0 || m->def != rt->def || strcmp(m->name, want.name))
				continue;
			/* a configure that resized it: libbpf makes the map it asks for */
			if (same_definition(m, &want) && !bpf_map__reuse_fd(map, m->fd))
				taken++;
			close(m->fd); /* the object holds its own duplicate */
			m->fd = -1;
			break;
		}
	}
	pthread_mutex_unlock(&ahead.lock);
	return taken;
}

const struct core_names *maps_ahead_core_names(const struct signal_def *const *defs, int n, const char *cache_dir,
					       struct core_cached *cached)
{
	int i, k;

	cached->load = -ECANCELED;
	if (!ahead.started || n != ahead.n_defs || cache_dir != ahead.cache_dir)
		return NULL;
	for (i = 0; i < n; i++) {
		for (k = 0; k < ahead.n_defs && ahead.defs[k] != defs[i]; k++)
			;
		if (k == ahead.n_defs)
			return NULL; /* another set of objects */
	}
	pthread_mutex_lock(&ahead.lock);
	while (!ahead.names_done)
		pthread_cond_wait(&ahead.done_cond, &ahead.lock);
	cached->load = ahead.cache_load;
	cached->raw = ahead.cached;
	cached->size = ahead.cached_size;
	ahead.cached = NULL; /* the caller's now: a second caller looks the cache up itself */
	ahead.cache_load = -ECANCELED;
	pthread_mutex_unlock(&ahead.lock);
	return ahead.names;
}

void maps_ahead_finish(void)
{
	int i;

	if (!ahead.started)
		return;
	pthread_join(ahead.thread, NULL);
	for (i = 0; i < ahead.n_maps; i++)
		if (ahead.maps[i].fd >= 0)
			close(ahead.maps[i].fd);
	ahead.n_maps = 0;
	core_btf_names_free(ahead.names);
	ahead.names = NULL;
	free(ahead.cached);
	ahead.cached = NULL;
	ahead.started = false;
}
