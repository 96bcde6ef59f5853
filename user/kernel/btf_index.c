#include "btf_index.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>

#include "util.h"

#define N_KINDS 32 /* above BTF_KIND_MAX */

struct kind_table {
	bool built;
	bool failed; /* no memory for it: linear from then on */
	unsigned lookups; /* before it is built: see linear_lookups() */
	uint32_t mask; /* slots - 1 (a power of two, at least twice the names) */
	uint32_t *ids; /* 0: an empty slot */
};

static struct {
	pthread_mutex_t lock;
	const struct btf *btf; /* the indexed one, or NULL */
	struct kind_table kinds[N_KINDS];
} ix = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint32_t slot_of(const char *name)
{
	return (uint32_t)hash_fnv1a(name, strlen(name));
}

static const char *name_of(const struct btf *btf, uint32_t id)
{
	return btf__name_by_offset(btf, btf__type_by_id(btf, id)->name_off);
}

/* One walk over the types: every named type of `kind`, the lowest id of each name kept. */
static int build(const struct btf *btf, __u32 kind, struct kind_table *t)
{
	uint32_t n = btf__type_cnt(btf), id, count = 0, slots = 16;

	for (id = 1; id < n; id++) {
		const struct btf_type *bt = btf__type_by_id(btf, id);

		count += btf_kind(bt) == kind && bt->name_off;
	}
	while (slots < 2 * count)
		slots <<= 1;
	t->ids = calloc(slots, sizeof(*t->ids));
	if (!t->ids)
		return -ENOMEM;
	t->mask = slots - 1;
	for (id = 1; id < n; id++) {
		const struct btf_type *bt = btf__type_by_id(btf, id);
		const char *name;
		uint32_t s;

		if (btf_kind(bt) != kind || !bt->name_off)
			continue;
		name = btf__name_by_offset(btf, bt->name_off);
		for (s = slot_of(name) & t->mask; t->ids[s]; s = (s + 1) & t->mask)
			if (!strcmp(name_of(btf, t->ids[s]), name))
				break; /* a later type of the same name: the first stays */
		if (!t->ids[s])
			t->ids[s] = id;
	}
	t->built = true;
	return 0;
}

/*
 * How many lookups of `kind` go the linear way before its table is built: a
 * build walks every type and hashes every name of the kind. For most kinds
 * that costs what a lookup or two does, so the second builds it; functions
 * are ~56k of the 126k types of a 6.18 kernel, and their table (3.5-4 ms)
 * costs what ~12 linear lookups (0.2-0.5 ms each) do, more than start-up
 * makes (fentry targets, helpers a program needs).
 */
static unsigned linear_lookups(__u32 kind)
{
	return kind == BTF_KIND_FUNC ? 12 : 1;
}

static void drop_all(void)
{
	size_t k;

	for (k = 0; k < N_KINDS; k++) {
		free(ix.kinds[k].ids);
		ix.kinds[k] = (struct kind_table){ 0 };
	}
	ix.btf = NULL;
}

int btf_find(const struct btf *btf, const char *name, __u32 kind)
{
	struct kind_table *t;
	int id = -ENOENT;
	uint32_t s;

	/* "" (anonymous types), "void" and kind 0 are libbpf's special cases: its answer */
	if (!btf || !name || !name[0] || !strcmp(name, "void") || kind == BTF_KIND_UNKN || kind >= N_KINDS)
		return btf__find_by_name_kind(btf, name, kind);
	pthread_mutex_lock(&ix.lock);
	t = &ix.kinds[kind];
	if (ix.btf != btf || t->failed ||
	    (!t->built && (t->lookups++ < linear_lookups(kind) || (t->failed = build(btf, kind, t) < 0)))) {
		pthread_mutex_unlock(&ix.lock);
		/* another big BTF, a kind's first lookups (cheaper than its table), or no memory */
		return btf__find_by_name_kind(btf, name, kind);
	}
	for (s = slot_of(name) & t->mask; t->ids[s]; s = (s + 1) & t->mask)
		if (!strcmp(name_of(btf, t->ids[s]), name)) {
			id = (int)t->ids[s];
			break;
		}
	pthread_mutex_unlock(&ix.lock);
	return id;
}

void btf_index_use(const struct btf *btf)
{
	pthread_mutex_lock(&ix.lock);
	if (ix.btf != btf && btf && btf__type_cnt(btf) >= BTF_INDEX_MIN_TYPES) {
		drop_all();
		ix.btf = btf;
	}
	pthread_mutex_unlock(&ix.lock);
}

void btf_index_forget(const struct btf *btf)
{
	pthread_mutex_lock(&ix.lock);
	if (ix.btf == btf)
		drop_all();
	pthread_mutex_unlock(&ix.lock);
}
