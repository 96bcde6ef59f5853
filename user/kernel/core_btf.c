#include "core_btf.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

/*
 * A set of strings (open addressing, at most a quarter full); "name" for a
 * type, "name.member" for a member. Each slot keeps its string's hash: most
 * lookups are kernel names the objects do not have, and a probe then costs
 * one compare of hashes, not of strings.
 */
struct name_set {
	char **slot;
	uint64_t *hash;
	size_t cap, len;
	uint64_t prefix[1024]; /* a bit per hash of the first three bytes: most kernel names miss here */
};

static unsigned int prefix_bit(const char *s, size_t n)
{
	uint32_t k = 0;

	memcpy(&k, s, n < 3 ? n : 3);
	return (unsigned int)((k * 0x9E3779B1u) >> 16);
}

/* Eight bytes a step: this runs for every struct, enum and typedef name of the kernel. */
static uint64_t hash_of(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ULL ^ n, w;

	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 1099511628211ULL;
		h ^= h >> 29;
	}
	w = 0;
	memcpy(&w, s, n);
	h = (h ^ w) * 1099511628211ULL;
	/* the multiplications leave the low bits (the slot index) weak: mix the high ones in */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 33);
}

/* The slot of s (hash h), or the empty slot where it would go. */
static size_t find_slot(const struct name_set *set, const char *s, size_t n, uint64_t h)
{
	size_t i = (size_t)h & (set->cap - 1);

	while (set->slot[i] && (set->hash[i] != h || strncmp(set->slot[i], s, n) || set->slot[i][n]))
		i = (i + 1) & (set->cap - 1);
	return i;
}

/* The stored copy of s, or NULL. */
static const char *set_get(const struct name_set *set, const char *s, size_t n)
{
	unsigned int bit = prefix_bit(s, n);

	if (!set->cap || !(set->prefix[bit / 64] & (1ULL << (bit % 64))))
		return NULL;
	return set->slot[find_slot(set, s, n, hash_of(s, n))];
}

static bool set_has(const struct name_set *set, const char *s, size_t n)
{
	return set_get(set, s, n) != NULL;
}

static int set_grow(struct name_set *set)
{
	size_t cap = set->cap ? 2 * set->cap : 1024, i, j;
	char **slot = calloc(cap, sizeof(*slot));
	uint64_t *hash = calloc(cap, sizeof(*hash));

	if (!slot || !hash) {
		free(slot);
		free(hash);
		return -ENOMEM;
	}
	for (i = 0; i < set->cap; i++) {
		if (!set->slot[i])
			continue;
		for (j = set->hash[i] & (cap - 1); slot[j]; j = (j + 1) & (cap - 1))
			;
		slot[j] = set->slot[i];
		hash[j] = set->hash[i];
	}
	free(set->slot);
	free(set->hash);
	set->slot = slot;
	set->hash = hash;
	set->cap = cap;
	return 0;
}

static int set_add(struct name_set *set, const char *s, size_t n)
{
	uint64_t h = hash_of(s, n);
	size_t i;

	if (4 * (set->len + 1) > set->cap && set_grow(set))
		return -ENOMEM;
	i = find_slot(set, s, n, h);
	if (set->slot[i])
		return 0;
	set->slot[i] = strndup(s, n);
	if (!set->slot[i])
		return -ENOMEM;
	set->hash[i] = h;
	set->len++;
	i = prefix_bit(s, n);
	set->prefix[i / 64] |= 1ULL << (i % 64);
	return 0;
}

static void set_free(struct name_set *set)
{
	size_t i;

	for (i = 0; i < set->cap; i++)
		free(set->slot[i]);
	free(set->slot);
	free(set->hash);
	memset(set, 0, sizeof(*set));
}

/* libbpf matches "task_struct___old" to the kernel's "task_struct": the name before "___". */
static size_t essential_len(const char *name)
{
	const char *flavor = strstr(name, "___");

	return flavor ? (size_t)(flavor - name) : strlen(name);
}

/* "owner.member": the key of a member; *klen its length, 0 when too long to be asked for. */
static const char *member_key(char *key, size_t size, const char *owner, size_t owner_len, const char *member,
			      size_t *klen)
{
	size_t mlen = strlen(member);

	*klen = 0;
	if (owner_len + 1 + mlen >= size)
		return key;
	memcpy(key, owner, owner_len);
	key[owner_len] = '.';
	memcpy(key + owner_len + 1, member, mlen + 1);
	*klen = owner_len + 1 + mlen;
	return key;
}

/* A member's type without modifiers and arrays (with typedefs too when `typedefs`). */
static const struct btf_type *member_type(const struct btf *btf, __u32 id, bool typedefs)
{
	const struct btf_type *t = btf__type_by_id(btf, id);
	int depth = 0;

	while (t && depth++ < 32) {
		if (btf_is_mod(t) || (typedefs && btf_is_typedef(t)))
			t = btf__type_by_id(btf, t->type);
		else if (btf_is_array(t))
			t = btf__type_by_id(btf, btf_array(t)->type);
		else
			break;
	}
	return t;
}

/*
 * The members of composite `t` under `owner`: an anonymous member's own
 * members under the same owner (C reads them as the owner's), a named
 * member of an anonymous struct type ("struct { ... } x") its members under
 * "owner.x".
 */
static int collect_members(const struct btf *btf, const struct btf_type *t, const char *owner, size_t owner_len,
			   struct name_set *members, int depth)
{
	const struct btf_member *m = btf_members(t);
	int i, err = 0;

	if (depth > 32)
		return 0;
	for (i = 0; i < btf_vlen(t) && !err; i++, m++) {
		const char *name = btf__name_by_offset(btf, m->name_off);
		const struct btf_type *mt;
		char key[512];
		size_t klen;

		if (!name || !name[0]) {
			mt = member_type(btf, m->type, true);
			if (mt && btf_is_composite(mt))
				err = collect_members(btf, mt, owner, owner_len, members, depth + 1);
			continue;
		}
		member_key(key, sizeof(key), owner, owner_len, name, &klen);
		if (!klen)
			continue;
		err = set_add(members, key, klen);
		mt = member_type(btf, m->type, false);
		if (!err && mt && btf_is_composite(mt) && !mt->name_off)
			err = collect_members(btf, mt, key, klen, members, depth + 1);
	}
	return err;
}

/* Every type name and every member name the object's BTF has. */
static int collect_local(const struct btf *btf, struct name_set *types, struct name_set *members)
{
	__u32 id, n = btf__type_cnt(btf);
	int err = 0;

	for (id = 1; id < n && !err; id++) {
		const struct btf_type *t = btf__type_by_id(btf, id);
		const char *name = btf__name_by_offset(btf, t->name_off);
		size_t len;

		if (!name || !name[0])
			continue;
		if (!btf_is_composite(t) && !btf_is_any_enum(t) && !btf_is_typedef(t) && !btf_is_fwd(t))
			continue;
		len = essential_len(name);
		err = set_add(types, name, len);
		if (!err && btf_is_composite(t))
			err = collect_members(btf, t, name, len, members, 0);
		if (!err && btf_is_typedef(t)) {
			/* typedef struct { ... } name: the members go by the typedef's name */
			const struct btf_type *target = btf__type_by_id(btf, t->type);

			if (target && btf_is_composite(target) && !target->name_off)
				err = collect_members(btf, target, name, len, members, 0);
		}
	}
	return err;
}

struct builder {
	const struct btf *kernel;
	const struct name_set *types, *members;
	__u32 *new_id;        /* kernel id -> id in the copy, 0: not copied */
	__u32 *order;         /* id in the copy -> kernel id */
	const char **owner;   /* id in the copy of a composite -> whose members it keeps */
	__u32 next, cap;      /* ids given in the copy; room in order and owner */
	__u32 n;              /* the kernel's type count: ids below it only (a --btf file may be broken) */
};

/* The stored key of owner's member when the objects have it (it outlives the build), else NULL. */
static const char *member_kept(const struct builder *b, const char *owner, const char *member)
{
	char key[512];
	size_t klen;

	if (!owner || !b->members->cap)
		return NULL;
	member_key(key, sizeof(key), owner, strlen(owner), member, &klen);
	return klen ? set_get(b->members, key, klen) : NULL;
}

static const char *name_of(const struct builder *b, const struct btf_type *t)
{
	const char *name = btf__name_by_offset(b->kernel, t->name_off);

	return name && name[0] ? name : NULL;
}

/* A pointer keeps its target only when the objects name what is at the end of it. */
static bool pointee_named(const struct builder *b, __u32 id)
{
	const struct btf_type *t = btf__type_by_id(b->kernel, id);
	int depth = 0;

	while (t && btf_is_mod(t) && depth++ < 32)
		t = btf__type_by_id(b->kernel, t->type);
	if (!t || !(btf_is_composite(t) || btf_is_any_enum(t) || btf_is_typedef(t) || btf_is_fwd(t) ||
		    btf_is_int(t) || btf_is_float(t)))
		return false;
	return btf_is_int(t) || btf_is_float(t) ||
	       (name_of(b, t) && set_has(b->types, name_of(b, t), strlen(name_of(b, t))));
}

/* The id in the copy of kernel type `id`; 0 (void) when not copied. */
static __u32 copy_of(const struct builder *b, __u32 id)
{
	return id < b->n ? b->new_id[id] : 0;
}

/* Mark kernel type `id` (and what it needs) for the copy; `owner` names an anonymous composite's keeper. */
static int mark(struct builder *b, __u32 id, const char *owner, int depth)
{
	const struct btf_type *t;
	int i, err = 0;

	if (id >= b->n)
		return -EINVAL;
	if (!id || b->new_id[id])
		return 0;
	if (depth > 256)
		return -ELOOP;
	t = btf__type_by_id(b->kernel, id);
	if (!t)
		return -EINVAL;
	switch (btf_kind(t)) {
	case BTF_KIND_FUNC_PROTO:
	case BTF_KIND_FUNC:
	case BTF_KIND_VAR:
	case BTF_KIND_DATASEC:
	case BTF_KIND_DECL_TAG:
		return 0; /* never read through CO-RE: references to them become void */
	default:
		break;
	}
	if (b->next + 1 >= b->cap) {
		__u32 cap = b->cap ? 2 * b->cap : 1024;
		__u32 *order = realloc(b->order, cap * sizeof(*order));
		const char **owners;

		if (!order)
			return -ENOMEM;
		b->order = order;
		owners = realloc(b->owner, cap * sizeof(*owners));
		if (!owners)
			return -ENOMEM;
		b->owner = owners;
		b->cap = cap;
	}
	b->new_id[id] = ++b->next;
	b->order[b->next] = id;
	b->owner[b->next] = NULL;
	switch (btf_kind(t)) {
	case BTF_KIND_PTR:
		if (pointee_named(b, t->type))
			err = mark(b, t->type, NULL, depth + 1);
		break;
	case BTF_KIND_ARRAY:
		err = mark(b, btf_array(t)->type, owner, depth + 1);
		if (!err)
			err = mark(b, btf_array(t)->index_type, NULL, depth + 1);
		break;
	case BTF_KIND_TYPEDEF:
		err = mark(b, t->type, name_of(b, t), depth + 1);
		break;
	case BTF_KIND_CONST:
	case BTF_KIND_VOLATILE:
	case BTF_KIND_RESTRICT:
	case BTF_KIND_TYPE_TAG:
		err = mark(b, t->type, owner, depth + 1);
		break;
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION: {
		const struct btf_member *m = btf_members(t);

		if (name_of(b, t))
			owner = name_of(b, t);
		b->owner[b->new_id[id]] = owner;
		for (i = 0; i < btf_vlen(t) && !err; i++, m++) {
			const char *member = btf__name_by_offset(b->kernel, m->name_off);

			const char *key;

			if (!member || !member[0])
				err = mark(b, m->type, owner, depth + 1);
			else if ((key = member_kept(b, owner, member)))
				err = mark(b, m->type, key, depth + 1);
		}
		break;
	}
	default:
		break;
	}
	return err;
}

static int emit_composite(struct btf *out, const struct builder *b, __u32 id, const struct btf_type *t)
{
	const struct btf_member *m = btf_members(t);
	const char *owner = b->owner[b->new_id[id]];
	int i, err;

	err = btf_is_struct(t) ? btf__add_struct(out, name_of(b, t), t->size) :
				 btf__add_union(out, name_of(b, t), t->size);
	for (i = 0; err >= 0 && i < btf_vlen(t); i++, m++) {
		const char *member = btf__name_by_offset(b->kernel, m->name_off);
		bool anon = !member || !member[0];

		if (!copy_of(b, m->type) || (!anon && !member_kept(b, owner, member)))
			continue;
		err = btf__add_field(out, anon ? NULL : member, (int)copy_of(b, m->type),
				     btf_member_bit_offset(t, i), btf_member_bitfield_size(t, i));
	}
	return err < 0 ? err : 0;
}

static int emit_enum(struct btf *out, const struct builder *b, const struct btf_type *t)
{
	int i, err;

	if (btf_is_enum(t)) {
		const struct btf_enum *e = btf_enum(t);

		err = btf__add_enum(out, name_of(b, t), t->size);
		for (i = 0; err >= 0 && i < btf_vlen(t); i++, e++)
			err = btf__add_enum_value(out, btf__name_by_offset(b->kernel, e->name_off),
						  btf_kflag(t) ? (__s64)(__s32)e->val : (__s64)(__u32)e->val);
	} else {
		const struct btf_enum64 *e = btf_enum64(t);

		err = btf__add_enum64(out, name_of(b, t), t->size, btf_kflag(t));
		for (i = 0; err >= 0 && i < btf_vlen(t); i++, e++)
			err = btf__add_enum64_value(out, btf__name_by_offset(b->kernel, e->name_off),
						    btf_enum64_value(e));
	}
	return err < 0 ? err : 0;
}

/* Append kernel type `id` to `out`; its references through new_id (0: void). */
static int emit(struct btf *out, const struct builder *b, __u32 id)
{
	const struct btf_type *t = btf__type_by_id(b->kernel, id);
	/* t->type is a type only for these kinds: for a struct or an enum the same word is its size */
	bool refers = btf_is_ptr(t) || btf_is_typedef(t) || btf_is_mod(t);
	int ref = refers ? (int)copy_of(b, t->type) : 0, err;

	switch (btf_kind(t)) {
	case BTF_KIND_INT:
		err = btf__add_int(out, name_of(b, t), t->size, btf_int_encoding(t));
		break;
	case BTF_KIND_FLOAT:
		err = btf__add_float(out, name_of(b, t), t->size);
		break;
	case BTF_KIND_PTR:
		err = btf__add_ptr(out, ref);
		break;
	case BTF_KIND_ARRAY:
		err = btf__add_array(out, (int)copy_of(b, btf_array(t)->index_type), (int)copy_of(b, btf_array(t)->type),
				     btf_array(t)->nelems);
		break;
	case BTF_KIND_TYPEDEF:
		err = btf__add_typedef(out, name_of(b, t), ref);
		break;
	case BTF_KIND_CONST:
		err = btf__add_const(out, ref);
		break;
	case BTF_KIND_VOLATILE:
		err = btf__add_volatile(out, ref);
		break;
	case BTF_KIND_RESTRICT:
		err = btf__add_restrict(out, ref);
		break;
	case BTF_KIND_TYPE_TAG:
		err = btf__add_type_tag(out, btf__name_by_offset(b->kernel, t->name_off), ref);
		break;
	case BTF_KIND_FWD:
		err = btf__add_fwd(out, name_of(b, t), btf_kflag(t) ? BTF_FWD_UNION : BTF_FWD_STRUCT);
		break;
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		err = emit_composite(out, b, id, t);
		break;
	case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64:
		err = emit_enum(out, b, t);
		break;
	default:
		err = -EINVAL; /* mark() never takes another kind */
		break;
	}
	return err < 0 ? err : 0;
}

/* The kernel types in [from, to) whose names the objects have: where the copy starts from. */
struct scan {
	const struct btf *kernel;
	const struct name_set *types;
	__u32 from, to;
	__u32 *roots;
	size_t n, cap;
	int err;
};

static void *scan_range(void *arg)
{
	struct scan *s = arg;
	__u32 id;

	for (id = s->from; id < s->to && !s->err; id++) {
		const struct btf_type *t = btf__type_by_id(s->kernel, id);
		const char *name;

		/* the kind first: most kernel types are functions and pointers */
		if (!btf_is_composite(t) && !btf_is_any_enum(t) && !btf_is_typedef(t) && !btf_is_fwd(t))
			continue;
		name = btf__name_by_offset(s->kernel, t->name_off);
		/* kernel names have no ___flavor: only the objects' are cut */
		if (!name || !name[0] || !set_has(s->types, name, strlen(name)))
			continue;
		if (s->n == s->cap) {
			size_t cap = s->cap ? 2 * s->cap : 256;
			__u32 *roots = realloc(s->roots, cap * sizeof(*roots));

			if (!roots) {
				s->err = -ENOMEM;
				break;
			}
			s->roots = roots;
			s->cap = cap;
		}
		s->roots[s->n++] = id;
	}
	return NULL;
}

static int build(const struct btf *kernel, const struct name_set *types, const struct name_set *members,
		 struct btf **out)
{
	__u32 n = btf__type_cnt(kernel), k;
	struct builder b = { .kernel = kernel, .types = types, .members = members, .n = n };
	/* the upper half on a second thread: the scan is most of the work, and read-only */
	struct scan half[2] = { { .kernel = kernel, .types = types, .from = 1, .to = n / 2 + 1 },
				{ .kernel = kernel, .types = types, .from = n / 2 + 1, .to = n } };
	struct btf *copy = NULL;
	pthread_t upper;
	bool threaded;
	size_t r;
	int err = -ENOMEM, h;

	b.new_id = calloc(n, sizeof(*b.new_id));
	if (!b.new_id)
		goto out;
	threaded = pthread_create(&upper, NULL, scan_range, &half[1]) == 0;
	scan_range(&half[0]);
	if (threaded)
		pthread_join(upper, NULL);
	else
		scan_range(&half[1]);
	err = half[0].err ? half[0].err : half[1].err;
	/* in id order, as one scan would have marked them */
	for (h = 0; h < 2 && !err; h++)
		for (r = 0; r < half[h].n && !err; r++)
			err = mark(&b, half[h].roots[r], NULL, 0);
	free(half[0].roots);
	free(half[1].roots);
	if (err)
		goto out;
	copy = btf__new_empty();
	if (!copy) {
		err = -ENOMEM;
		goto out;
	}
	for (k = 1; k <= b.next && !err; k++)
		err = emit(copy, &b, b.order[k]);
	if (!err && btf__type_cnt(copy) != b.next + 1)
		err = -EINVAL;
out:
	if (err)
		btf__free(copy);
	else
		*out = copy;
	free(b.new_id);
	free(b.order);
	free(b.owner);
	return err;
}

struct core_names {
	struct name_set types, members;
};

int core_btf_names(const struct btf *const *locals, int n, struct core_names **out)
{
	struct core_names *names = calloc(1, sizeof(*names));
	int i, err = names ? 0 : -ENOMEM;

	for (i = 0; i < n && !err; i++)
		if (locals[i])
			err = collect_local(locals[i], &names->types, &names->members);
	if (err) {
		core_btf_names_free(names);
		return err;
	}
	*out = names;
	return 0;
}

void core_btf_names_free(struct core_names *names)
{
	if (!names)
		return;
	set_free(&names->types);
	set_free(&names->members);
	free(names);
}

int core_btf_build_names(const struct btf *kernel, const struct core_names *names, struct btf **out)
{
	return build(kernel, &names->types, &names->members, out);
}

int core_btf_build(const struct btf *kernel, const struct btf *const *locals, int n, struct btf **out)
{
	struct core_names *names;
	int err = core_btf_names(locals, n, &names);

	if (err)
		return err;
	err = core_btf_build_names(kernel, names, out);
	core_btf_names_free(names);
	return err;
}

int core_btf_to_file(const struct btf *btf, char *path, unsigned long pathlen)
{
	__u32 size;
	const void *raw = btf__raw_data(btf, &size);

	if (!raw)
		return -ENOMEM;
	return core_btf_raw_to_file(raw, size, path, pathlen);
}

int core_btf_raw_to_file(const void *raw, size_t size, char *path, unsigned long pathlen)
{
	const char *p;
	ssize_t w;
	int fd;

	fd = memfd_create("ksight-core-btf", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (p = raw; p < (const char *)raw + size; p += w) {
		w = write(fd, p, (size_t)((const char *)raw + size - p));
		if (w <= 0) {
			int err = w < 0 ? -errno : -EIO;

			close(fd);
			return err;
		}
	}
	snprintf(path, pathlen, "/proc/self/fd/%d", fd);
	return fd;
}
