/*
 * Folding and retirement: see metrics.h.
 *
 * The fold table remembers each label set folded into "other" by the 64-bit
 * hash of its key with its own last value, so that totals set from
 * elsewhere add their growth to "other" rather than overwrite it. It holds at
 * most max(series_cap, FOLD_MIN) entries; an entry not updated during the
 * last two renders can be reused, so label sets that stopped (deleted pods)
 * make room for new ones.
 *
 * Retirement removes the series of what is gone (metrics_forget()) or one
 * series (metrics_family_remove_series()); "other", and what folded into it,
 * stays.
 */
#include "metrics_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Fold table slots scanned for a stale entry. */
#define FOLD_SCAN 64
/* Renders an entry must miss before it may be reused (a scrape-time set touches it every one). */
#define FOLD_STALE_RENDERS 2

/* ---- Fold table --------------------------------------------------------- */

struct fold *fold_find(const struct metric_family *fam, uint64_t hash)
{
	size_t mask, i;
	struct fold *f;

	if (!fam->fold_slots)
		return NULL;
	mask = fam->fold_slots - 1;
	for (i = hash & mask; (f = fold_at(fam, i))->hash; i = (i + 1) & mask)
		if (f->hash == hash)
			return f;
	return NULL;
}

static struct fold *fold_put(struct metric_family *fam, uint64_t hash)
{
	size_t mask = fam->fold_slots - 1, i;
	struct fold *f;

	for (i = hash & mask; (f = fold_at(fam, i))->hash; i = (i + 1) & mask)
		;
	memset(f, 0, fam->fold_stride);
	f->hash = hash;
	fam->n_folds++;
	return f;
}

/* As table_delete_slot(), for the fold table's inline entries. */
static void fold_delete(struct metric_family *fam, size_t i)
{
	size_t mask = fam->fold_slots - 1, j = i, home;
	struct fold *f;

	for (;;) {
		j = (j + 1) & mask;
		f = fold_at(fam, j);
		if (!f->hash)
			break;
		home = f->hash & mask;
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		memcpy(fold_at(fam, i), f, fam->fold_stride);
		i = j;
	}
	fold_at(fam, i)->hash = 0;
	fam->n_folds--;
}

/* Double the table: it grows with use, to at most 4 * fold_max slots. */
static int fold_grow(struct metric_family *fam)
{
	size_t old_slots = fam->fold_slots, i;
	char *old = fam->folds;
	char *slots;

	slots = calloc(old_slots ? old_slots * 2 : 16, fam->fold_stride);
	if (!slots)
		return -ENOMEM;
	fam->folds = slots;
	fam->fold_slots = old_slots ? old_slots * 2 : 16;
	fam->n_folds = 0;
	for (i = 0; i < old_slots; i++) {
		struct fold *f = (struct fold *)(old + i * fam->fold_stride);

		if (f->hash)
			memcpy(fold_put(fam, f->hash), f, fam->fold_stride);
	}
	free(old);
	return 0;
}

/*
 * Free the entry of a label set no update touched during the last
 * FOLD_STALE_RENDERS renders, searching on from where the last search
 * stopped, FOLD_SCAN slots at most. Its contribution to a counter or
 * histogram stays in "other" (which must not go down); a gauge's leaves it.
 */
static bool fold_evict_stale(struct metric_family *fam)
{
	size_t mask = fam->fold_slots - 1, i, at;
	uint64_t now = fam->reg->gen;

	for (i = 0; i < FOLD_SCAN && i < fam->fold_slots; i++) {
		struct fold *f;

		at = (fam->fold_hand + i) & mask;
		f = fold_at(fam, at);
		if (f->hash && f->gen + FOLD_STALE_RENDERS <= now) {
			fold_delete(fam, at);
			fam->fold_hand = at;
			if (fam->type == METRIC_GAUGE)
				fam->other_dirty = true;
			return true;
		}
	}
	fam->fold_hand = (fam->fold_hand + i) & mask;
	return false;
}

/* The entry of a folded label set, made if need be (*is_new); NULL when there is no room. */
static struct fold *fold_track(struct metric_family *fam, uint64_t hash, bool *is_new)
{
	struct fold *f;

	hash = fold_hash(hash);
	*is_new = false;
	f = fold_find(fam, hash);
	if (f)
		return f;
	if (fam->n_folds >= fam->fold_max) {
		if (!fold_evict_stale(fam))
			return NULL;
	} else if ((fam->n_folds + 1) * 2 > fam->fold_slots && fold_grow(fam)) {
		return NULL;
	}
	*is_new = true;
	return fold_put(fam, hash);
}

/* A gauge's "other" is the sum of the latest values of the folded label sets tracked. */
void other_refresh(struct metric_family *fam)
{
	double sum = 0;
	size_t i;

	if (!fam->other_dirty)
		return;
	for (i = 0; i < fam->fold_slots; i++)
		if (fold_at(fam, i)->active)
			sum += fold_at(fam, i)->value;
	fam->other->value = sum;
	fam->other_dirty = false;
}

/*
 * Fold an update of label set `k` into "other", counting it in
 * ksight_series_dropped_total the first time (`drop`: it lost its own
 * series). Totals (counter_set, histogram_set) add their growth since the
 * label set's previous total, or all of it after a reset (a total that went
 * back: its source was recreated), so "other" never goes down; a gauge's
 * "other" is the sum of the latest values. A label set the fold table has no
 * room for still adds what counter_add and observe add, but its totals and
 * gauge values are left out, and since nothing tells whether it was seen
 * before, each of its updates counts as dropped.
 */
int fold_update(struct metric_family *fam, const struct key *k, const struct update *u,
		bool drop)
{
	struct series *o = fam->other;
	bool is_new, reset = false;
	struct fold *f;
	size_t i, b;
	int err;

	if (!o) {
		err = series_insert(fam, fam->other_hash, fam->other_key, fam->other_len, false, &o);
		if (err)
			return err;
		fam->other = o;
	}
	f = fold_track(fam, k->hash, &is_new);
	if (drop && (!f || is_new))
		fam->reg->dropped++;
	if (f) {
		f->gen = fam->reg->gen;
		f->active = true;
	}

	switch (u->op) {
	case OP_ADD:
		o->value += u->v;
		if (f)
			f->value += u->v;
		break;
	case OP_SET:
		if (!f)
			break;
		if (fam->type == METRIC_GAUGE) {
			fam->other_dirty = true;
		} else {
			/* v >= 0, so the sum only grows; == first: +Inf - +Inf is NaN */
			if (u->v != f->value)
				o->value += u->v > f->value ? u->v - f->value : u->v;
		}
		f->value = u->v;
		break;
	case OP_OBSERVE:
		b = bucket_index(fam->buckets, fam->n_buckets, u->v);
		o->buckets[b]++;
		o->count++;
		o->sum += u->v;
		if (f) {
			f->buckets[b]++;
			f->sum += u->v;
		}
		break;
	case OP_HIST_SET:
		if (!f)
			break;
		for (i = 0; i <= fam->n_buckets; i++)
			reset |= u->counts[i] < f->buckets[i];
		for (i = 0; i <= fam->n_buckets; i++) {
			uint64_t d = reset ? u->counts[i] : u->counts[i] - f->buckets[i];

			o->buckets[i] += d;
			o->count += d;
			f->buckets[i] = u->counts[i];
		}
		if (reset)
			o->sum += u->v;
		else if (u->v != f->sum)
			o->sum += u->v - f->sum;
		f->sum = u->v;
		break;
	}
	return 0;
}

/* ---- Retirement ------------------------------------------------------- */

int metrics_family_remove_series(struct metric_family *fam, const char *const *label_values)
{
	struct series *s;
	struct key k;
	size_t i;
	int err;

	if (!fam)
		return -EINVAL;
	err = key_build(&k, fam, label_values);
	if (err)
		return err;
	pthread_mutex_lock(&fam->reg->lock);
	if (is_other_key(fam, &k)) {
		err = -EBUSY;
		goto out;
	}
	s = table_find(fam, k.hash, k.buf, k.len);
	err = -ENOENT;
	for (i = 0; s && i < fam->n_series; i++) {
		if (fam->series[i] == s) {
			series_remove_at(fam, i);
			err = 0;
			break;
		}
	}
out:
	pthread_mutex_unlock(&fam->reg->lock);
	key_release(&k);
	return err;
}

/* Whether series s has, at label index idx[j], the j-th of the n values joined in `want`. */
static bool series_matches(const struct series *s, const size_t *idx, size_t n,
			   const char *const *want, const size_t *want_len)
{
	size_t j, i;

	for (j = 0; j < n; j++) {
		const char *v = s->key;

		for (i = 0; i < idx[j]; i++)
			v += strlen(v) + 1;
		if (strlen(v) != want_len[j] || memcmp(v, want[j], want_len[j]))
			return false;
	}
	return true;
}

/* The index of each of the n label names in fam, false if it lacks one. */
static bool family_label_indexes(const struct metric_family *fam, const char *const *names,
				 size_t n, size_t *idx)
{
	size_t j, i;

	for (j = 0; j < n; j++) {
		for (i = 0; i < fam->n_labels; i++)
			if (!strcmp(fam->label_names[i], names[j]))
				break;
		if (i == fam->n_labels)
			return false;
		idx[j] = i;
	}
	return true;
}

/* Remove the matching series of one family in a single pass that keeps the array's order. */
static int family_forget(struct metric_family *fam, const size_t *idx, size_t n,
			 const char *const *want, const size_t *want_len)
{
	size_t i, kept = 0;
	int removed = 0;

	for (i = 0; i < fam->n_series; i++) {
		struct series *s = fam->series[i];

		if (s != fam->other && series_matches(s, idx, n, want, want_len)) {
			table_remove(fam, s);
			free(s);
			removed++;
			continue;
		}
		fam->series[kept++] = s;
	}
	fam->n_series = kept;
	return removed;
}

int metrics_forget(struct metrics_registry *reg, const char *const *label_names,
		   const char *const *values, size_t n)
{
	const char **want = NULL;
	size_t *idx = NULL, *want_len = NULL, i;
	const char *p;
	struct key k;
	int err, removed = 0;

	if (!reg || !n || !label_names || !values)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!label_names[i])
			return -EINVAL;
	/* the values as series keys hold them: invalid UTF-8 replaced */
	err = key_build_n(&k, n, values);
	if (err)
		return err;
	idx = calloc(n, sizeof(*idx));
	want = calloc(n, sizeof(*want));
	want_len = calloc(n, sizeof(*want_len));
	if (!idx || !want || !want_len) {
		removed = -ENOMEM;
		goto out;
	}
	for (i = 0, p = k.buf; i < n; i++) {
		want[i] = p;
		want_len[i] = strlen(p);
		p += want_len[i] + 1;
	}

	pthread_mutex_lock(&reg->lock);
	for (i = 0; i < reg->n_families; i++) {
		struct metric_family *fam = reg->families[i];

		if (family_label_indexes(fam, label_names, n, idx))
			removed += family_forget(fam, idx, n, want, want_len);
	}
	pthread_mutex_unlock(&reg->lock);
out:
	free(idx);
	free(want);
	free(want_len);
	key_release(&k);
	return removed;
}
