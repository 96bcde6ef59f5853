#include "netdrop_reasons.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>

#include "btf_index.h"

/* Enums of subsystems' own drop reasons (in their modules' BTF when modular). */
static const char *const subsys_enums[] = { "mac80211_drop_reason", "ovs_drop_reason" };

struct enum_member {
	const char *name;
	uint64_t value;
};

/* Member i of an ENUM or ENUM64 type (values as the kernel's u32/u64 bit pattern). */
static struct enum_member member_of(const struct btf *btf, const struct btf_type *t, int i)
{
	struct enum_member m;

	if (btf_is_enum64(t)) {
		const struct btf_enum64 *e = btf_enum64(t) + i;

		m.name = btf__name_by_offset(btf, e->name_off);
		m.value = btf_enum64_value(e);
	} else {
		const struct btf_enum *e = btf_enum(t) + i;

		m.name = btf__name_by_offset(btf, e->name_off);
		m.value = (uint32_t)e->val;
	}
	return m;
}

static const struct btf_type *find_enum(const struct btf *btf, const char *name)
{
	int id = btf_find(btf, name, BTF_KIND_ENUM);

	if (id <= 0)
		id = btf_find(btf, name, BTF_KIND_ENUM64);
	return id > 0 ? btf__type_by_id(btf, id) : NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *strip_prefix(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(name, prefix, n) == 0 && name[n] ? name + n : name;
}

/* Append to a table; sorted and deduplicated later. */
static int table_add(struct netdrop_reason **v, size_t *n, size_t *cap, uint32_t value, const char *name)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct netdrop_reason *nv = realloc(*v, ncap * sizeof(**v));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	(*v)[*n].value = value;
	snprintf((*v)[*n].name, sizeof((*v)[*n].name), "%s", name);
	(*n)++;
	return 0;
}

struct sort_entry {
	struct netdrop_reason r;
	size_t pos; /* order of addition: qsort is not stable */
};

static int by_value_then_pos(const void *a, const void *b)
{
	const struct sort_entry *x = a, *y = b;

	if (x->r.value != y->r.value)
		return x->r.value < y->r.value ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sort by value; the first-added name of a value stays, aliases go. -ENOMEM leaves it as it was. */
static int table_settle(struct netdrop_reason *v, size_t *n)
{
	struct sort_entry *tmp;
	size_t i, out = 0;

	if (*n == 0)
		return 0;
	tmp = malloc(*n * sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	for (i = 0; i < *n; i++) {
		tmp[i].r = v[i];
		tmp[i].pos = i;
	}
	qsort(tmp, *n, sizeof(*tmp), by_value_then_pos);
	for (i = 0; i < *n; i++)
		if (out == 0 || v[out - 1].value != tmp[i].r.value)
			v[out++] = tmp[i].r;
	free(tmp);
	*n = out;
	return 0;
}

static const struct netdrop_reason *table_find(const struct netdrop_reason *v, size_t n, uint32_t value)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].value == value)
			return &v[mid];
		if (v[mid].value < value)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Members of a subsystem's enum that carry subsystem bits; markers (..._MAX) are not reasons. */
static int add_subsys_enum(struct netdrop_reasons *r, const struct btf *btf, const struct btf_type *t)
{
	int i, err;

	for (i = 0; i < btf_vlen(t); i++) {
		struct enum_member m = member_of(btf, t, i);

		if (m.value > UINT32_MAX || (m.value >> NETDROP_SUBSYS_SHIFT) == 0 || ends_with(m.name, "_MAX"))
			continue;
		err = table_add(&r->v, &r->n, &r->cap, (uint32_t)m.value, m.name);
		if (err)
			return err;
	}
	return 0;
}

int netdrop_reasons_add_subsys_enums(struct netdrop_reasons *r, const struct btf *btf)
{
	size_t i;
	int err;

	for (i = 0; i < sizeof(subsys_enums) / sizeof(subsys_enums[0]); i++) {
		const struct btf_type *t = find_enum(btf, subsys_enums[i]);

		if (!t)
			continue;
		err = add_subsys_enum(r, btf, t);
		if (err)
			return err;
	}
	return table_settle(r->v, &r->n);
}

int netdrop_reasons_load(struct netdrop_reasons *r, const struct btf *btf)
{
	const struct btf_type *t;
	int i, err;

	netdrop_reasons_free(r);
	t = find_enum(btf, "skb_drop_reason");
	if (t) {
		r->have_reasons = true;
		for (i = 0; i < btf_vlen(t); i++) {
			struct enum_member m = member_of(btf, t, i);
			const char *name;

			/* SKB_DROP_REASON_MAX and the subsystem mask are markers, not reasons */
			if (m.value > UINT32_MAX || !strcmp(m.name, "SKB_DROP_REASON_MAX") ||
			    !strcmp(m.name, "SKB_DROP_REASON_SUBSYS_MASK"))
				continue;
			name = strip_prefix(strip_prefix(m.name, "SKB_DROP_REASON_"), "SKB_");
			err = table_add(&r->v, &r->n, &r->cap, (uint32_t)m.value, name);
			if (err)
				return err;
		}
	}
	t = find_enum(btf, "skb_drop_reason_subsys");
	for (i = 0; t && i < btf_vlen(t); i++) {
		struct enum_member m = member_of(btf, t, i);

		if (m.value == 0 || m.value > 0xffff || ends_with(m.name, "_NUM"))
			continue;
		err = table_add(&r->subsys, &r->n_subsys, &r->cap_subsys, (uint32_t)m.value,
				strip_prefix(m.name, "SKB_DROP_REASON_SUBSYS_"));
		if (err)
			return err;
	}
	err = table_settle(r->subsys, &r->n_subsys);
	if (err)
		return err;
	return netdrop_reasons_add_subsys_enums(r, btf);
}

void netdrop_reason_name(const struct netdrop_reasons *r, uint32_t value, char *out, size_t outlen)
{
	const struct netdrop_reason *hit = table_find(r->v, r->n, value);
	const struct netdrop_reason *sub;

	if (!outlen)
		return;
	if (hit) {
		snprintf(out, outlen, "%s", hit->name);
		return;
	}
	sub = value >> NETDROP_SUBSYS_SHIFT ?
	      table_find(r->subsys, r->n_subsys, value >> NETDROP_SUBSYS_SHIFT) : NULL;
	if (sub)
		snprintf(out, outlen, "%s_unknown_%" PRIu32, sub->name, value & 0xffff);
	else
		snprintf(out, outlen, "unknown_%" PRIu32, value);
}

int netdrop_reason_value(const struct netdrop_reasons *r, const char *name, uint32_t *value)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->v[i].name, name) == 0) {
			*value = r->v[i].value;
			return 0;
		}
	return -ENOENT;
}

void netdrop_reasons_free(struct netdrop_reasons *r)
{
	free(r->v);
	free(r->subsys);
	memset(r, 0, sizeof(*r));
}
