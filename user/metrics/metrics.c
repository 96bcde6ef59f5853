/*
 * Metrics registry, families and series: see metrics.h. The fold table and
 * retirement are in metrics_fold.c, the text exposition in metrics_render.c.
 *
 * Each family keeps its series in an array (the render order, sorted lazily)
 * and in an open-addressing hash table keyed by the label values, so an
 * update from the event loop costs one hash and a probe or two however many
 * series the family has.
 *
 * Beyond the cap, label sets fold into the family's "other" series, which is
 * in the array (it renders in order) but not in the table: no label set finds
 * it by lookup, and one whose values are all "other" takes the fold path like
 * any folded label set (so there is never a second line with those labels).
 */
#include "metrics_internal.h"
#include "utf8.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SERIES_CAP 1000
#define OTHER_VALUE "other"

/* Folded label sets a family tracks at least. */
#define FOLD_MIN 64

/* `p` with room for n + 1 elements of `size` (reallocated if needed), or NULL. */
static void *grow_array(void *p, size_t *alloc, size_t n, size_t size)
{
	size_t want;
	void *nb;

	if (n < *alloc)
		return p;
	want = *alloc ? *alloc * 2 : 8;
	nb = reallocarray(p, want, size);
	if (nb)
		*alloc = want;
	return nb;
}

/* ---- Names ------------------------------------------------------------ */

static bool name_char(char c, bool first, bool colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (colon && c == ':')
		return true;
	return !first && c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metrics; labels the same without ':'. */
static bool valid_name(const char *s, bool colon)
{
	const char *p;

	if (!s || !*s)
		return false;
	for (p = s; *p; p++)
		if (!name_char(*p, p == s, colon))
			return false;
	return true;
}

/* ---- Series table ----------------------------------------------------- */

/* Join n label values, NUL-terminating each: the table key and sort key. */
int key_build_n(struct key *k, size_t n_values, const char *const *values)
{
	size_t i, len = 0, n, o;
	char *p;

	if (n_values && !values)
		return -EINVAL;
	/* an invalid byte may become U+FFFD: up to 3 bytes each */
	for (i = 0; i < n_values; i++)
		len += 3 * strlen(values[i] ? values[i] : "") + 1;
	k->buf = len <= sizeof(k->small) ? k->small : malloc(len);
	if (!k->buf)
		return -ENOMEM;
	p = k->buf;
	/*
	 * The exposition is UTF-8 and label values are kernel bytes (cgroup
	 * names, comm). Replace invalid bytes here, not when rendering, so two
	 * values that differ only there are one series, not two identical lines.
	 */
	for (i = 0; i < n_values; i++) {
		const unsigned char *v = (const unsigned char *)(values[i] ? values[i] : "");

		for (n = strlen((const char *)v), o = 0; o < n;) {
			size_t cl = utf8_valid_len(v + o, n - o);

			if (cl) {
				memcpy(p, v + o, cl);
				p += cl;
				o += cl;
			} else {
				memcpy(p, "\xef\xbf\xbd", 3);
				p += 3;
				o++;
			}
		}
		*p++ = '\0';
	}
	k->len = (size_t)(p - k->buf);
	k->hash = hash_fnv1a(k->buf, k->len);
	return 0;
}

int key_build(struct key *k, const struct metric_family *fam,
	      const char *const *values)
{
	return key_build_n(k, fam->n_labels, values);
}

void key_release(struct key *k)
{
	if (k->buf != k->small)
		free(k->buf);
}

/*
 * Byte order on the joined keys is the lexicographic order on the tuples:
 * each value's terminating NUL sorts below any byte that could extend it.
 */
int series_cmp(const void *a, const void *b)
{
	const struct series *x = *(const struct series *const *)a;
	const struct series *y = *(const struct series *const *)b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);

	if (c)
		return c;
	return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

struct series *table_find(const struct metric_family *fam, uint64_t hash,
			  const char *key, size_t len)
{
	size_t mask, i;
	struct series *s;

	if (!fam->n_slots)
		return NULL;
	mask = fam->n_slots - 1;
	for (i = hash & mask; (s = fam->slots[i]); i = (i + 1) & mask)
		if (s->hash == hash && s->key_len == len && !memcmp(s->key, key, len))
			return s;
	return NULL;
}

static void table_put(struct series **slots, size_t n_slots, struct series *s)
{
	size_t mask = n_slots - 1, i;

	for (i = s->hash & mask; slots[i]; i = (i + 1) & mask)
		;
	slots[i] = s;
}

/* Keep the load at most one half, so probe runs stay short. */
static int table_reserve(struct metric_family *fam, size_t n)
{
	struct series **slots;
	size_t n_slots, i;

	if (n * 2 <= fam->n_slots)
		return 0;
	n_slots = fam->n_slots ? fam->n_slots * 2 : 16;
	while (n * 2 > n_slots)
		n_slots *= 2;
	slots = calloc(n_slots, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (i = 0; i < fam->n_series; i++)
		if (fam->series[i] != fam->other)
			table_put(slots, n_slots, fam->series[i]);
	free(fam->slots);
	fam->slots = slots;
	fam->n_slots = n_slots;
	return 0;
}

/* Empty slot i, shifting later members of its probe run back (no tombstones needed). */
static void table_delete_slot(struct series **slots, size_t n_slots, size_t i)
{
	size_t mask = n_slots - 1, j = i, home;

	for (;;) {
		j = (j + 1) & mask;
		if (!slots[j])
			break;
		home = slots[j]->hash & mask;
		/* slots[j] stays unless i lies between its home and j */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		slots[i] = slots[j];
		i = j;
	}
	slots[i] = NULL;
}

void table_remove(struct metric_family *fam, const struct series *s)
{
	size_t mask = fam->n_slots - 1, i;

	for (i = s->hash & mask; fam->slots[i]; i = (i + 1) & mask) {
		if (fam->slots[i] == s) {
			table_delete_slot(fam->slots, fam->n_slots, i);
			return;
		}
	}
}

/* A new series, in the render array and (unless it is the "other" series) in the table. */
int series_insert(struct metric_family *fam, uint64_t hash, const char *key,
		  size_t len, bool in_table, struct series **out)
{
	size_t nb = fam->type == METRIC_HISTOGRAM ? fam->n_buckets + 1 : 0;
	struct series *s, **arr;
	char *kp;
	int err;

	/* Make room first, so a failed allocation leaves the family unchanged. */
	err = table_reserve(fam, fam->n_series + 1);
	if (err)
		return err;
	arr = grow_array(fam->series, &fam->series_alloc, fam->n_series, sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	fam->series = arr;
	s = calloc(1, sizeof(*s) + nb * sizeof(s->buckets[0]) + len);
	if (!s)
		return -ENOMEM;
	kp = (char *)(s->buckets + nb);
	memcpy(kp, key, len);
	s->key = kp;
	s->key_len = len;
	s->hash = hash;

	if (in_table)
		table_put(fam->slots, fam->n_slots, s);
	/* Appending in key order (the usual case) keeps the array sorted. */
	if (fam->n_series && series_cmp(&fam->series[fam->n_series - 1], &s) > 0)
		fam->sorted = false;
	fam->series[fam->n_series++] = s;
	*out = s;
	return 0;
}

/* Take series i out of the array (keeping the order) and the table, and free it. */
void series_remove_at(struct metric_family *fam, size_t i)
{
	struct series *s = fam->series[i];

	table_remove(fam, s);
	memmove(fam->series + i, fam->series + i + 1,
		(fam->n_series - i - 1) * sizeof(*fam->series));
	fam->n_series--;
	free(s);
}

static void series_free_all(struct metric_family *fam)
{
	size_t i;

	for (i = 0; i < fam->n_series; i++)
		free(fam->series[i]);
	fam->n_series = 0;
	fam->sorted = true;
	fam->other = NULL;
	fam->other_dirty = false;
	if (fam->slots)
		memset(fam->slots, 0, fam->n_slots * sizeof(*fam->slots));
	for (i = 0; i < fam->fold_slots; i++) {
		struct fold *f = fold_at(fam, i);

		if (f->hash)
			memset(&f->active, 0, fam->fold_stride - offsetof(struct fold, active));
	}
}

/* The series that count against the cap: all but "other". */
static size_t real_series(const struct metric_family *fam)
{
	return fam->n_series - (fam->other ? 1 : 0);
}

bool is_other_key(const struct metric_family *fam, const struct key *k)
{
	/* with no labels the one label set there is is never folded */
	return fam->n_labels && k->hash == fam->other_hash && k->len == fam->other_len &&
	       !memcmp(k->buf, fam->other_key, k->len);
}

/* ---- Registry and families -------------------------------------------- */

struct metrics_registry *metrics_registry_new(size_t series_cap)
{
	struct metrics_registry *reg = calloc(1, sizeof(*reg));

	if (!reg)
		return NULL;
	if (pthread_mutex_init(&reg->lock, NULL)) {
		free(reg);
		return NULL;
	}
	reg->series_cap = series_cap ? series_cap : DEFAULT_SERIES_CAP;
	return reg;
}

static void family_free(struct metric_family *fam)
{
	size_t i;

	if (!fam)
		return;
	series_free_all(fam);
	free(fam->series);
	free(fam->slots);
	free(fam->folds);
	for (i = 0; i < fam->n_labels; i++)
		free(fam->label_names[i]);
	free(fam->label_names);
	free(fam->buckets);
	free(fam->le);
	free(fam->other_key);
	free(fam->name);
	free(fam->help);
	free(fam);
}

void metrics_registry_free(struct metrics_registry *reg)
{
	size_t i;

	if (!reg)
		return;
	for (i = 0; i < reg->n_families; i++)
		family_free(reg->families[i]);
	free(reg->families);
	free(reg->collectors);
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

static bool valid_family(const char *name, enum metric_type type,
			 const char *const *label_names, size_t n_labels,
			 const double *buckets, size_t n_buckets)
{
	size_t i, j;

	if (!valid_name(name, true) || !strcmp(name, DROPPED_NAME))
		return false;
	if (type != METRIC_COUNTER && type != METRIC_GAUGE && type != METRIC_HISTOGRAM)
		return false;
	if (n_labels && !label_names)
		return false;
	for (i = 0; i < n_labels; i++) {
		const char *l = label_names[i];

		/* __-prefixed names are reserved for Prometheus itself */
		if (!valid_name(l, false) || !strncmp(l, "__", 2))
			return false;
		/* le is the bucket bound the histogram renders itself */
		if (type == METRIC_HISTOGRAM && !strcmp(l, "le"))
			return false;
		for (j = 0; j < i; j++)
			if (!strcmp(l, label_names[j]))
				return false;
	}
	if (type != METRIC_HISTOGRAM)
		return !buckets && !n_buckets;
	if (n_buckets && !buckets)
		return false;
	for (i = 0; i < n_buckets; i++) {
		/* +Inf is implicit; NaN or an unordered bound would misfile values */
		if (!isfinite(buckets[i]) || (i && !(buckets[i] > buckets[i - 1])))
			return false;
	}
	return true;
}

static bool same_family(const struct metric_family *fam, enum metric_type type,
			const char *const *label_names, size_t n_labels,
			const double *buckets, size_t n_buckets)
{
	size_t i;

	if (fam->type != type || fam->n_labels != n_labels || fam->n_buckets != n_buckets)
		return false;
	for (i = 0; i < n_labels; i++)
		if (strcmp(fam->label_names[i], label_names[i]))
			return false;
	for (i = 0; i < n_buckets; i++)
		if (fam->buckets[i] != buckets[i])
			return false;
	return true;
}

static struct metric_family *family_new(struct metrics_registry *reg, const char *name,
					const char *help, enum metric_type type,
					const char *const *label_names, size_t n_labels,
					const double *buckets, size_t n_buckets)
{
	struct metric_family *fam = calloc(1, sizeof(*fam));
	size_t i, olen = sizeof(OTHER_VALUE);

	if (!fam)
		return NULL;
	fam->reg = reg;
	fam->type = type;
	fam->sorted = true;
	fam->name = strdup(name);
	fam->help = strdup(help ? help : "");
	if (!fam->name || !fam->help)
		goto fail;

	if (n_labels) {
		fam->label_names = calloc(n_labels, sizeof(*fam->label_names));
		if (!fam->label_names)
			goto fail;
		fam->n_labels = n_labels;
		for (i = 0; i < n_labels; i++) {
			fam->label_names[i] = strdup(label_names[i]);
			if (!fam->label_names[i])
				goto fail;
		}
	}

	if (n_buckets) {
		fam->buckets = calloc(n_buckets, sizeof(*fam->buckets));
		fam->le = calloc(n_buckets, sizeof(*fam->le));
		if (!fam->buckets || !fam->le)
			goto fail;
		fam->n_buckets = n_buckets;
		for (i = 0; i < n_buckets; i++) {
			fam->buckets[i] = buckets[i];
			fmt_double(fam->le[i], buckets[i]);
		}
	}

	fam->other_len = n_labels * olen;
	fam->other_key = malloc(fam->other_len ? fam->other_len : 1);
	if (!fam->other_key)
		goto fail;
	for (i = 0; i < n_labels; i++)
		memcpy(fam->other_key + i * olen, OTHER_VALUE, olen);
	fam->other_hash = hash_fnv1a(fam->other_key, fam->other_len);

	fam->fold_max = reg->series_cap > FOLD_MIN ? reg->series_cap : FOLD_MIN;
	fam->fold_stride = sizeof(struct fold) +
			   (type == METRIC_HISTOGRAM ? (n_buckets + 1) * sizeof(uint64_t) : 0);
	return fam;

fail:
	family_free(fam);
	return NULL;
}

struct metric_family *metrics_family(struct metrics_registry *reg, const char *name,
				     const char *help, enum metric_type type,
				     const char *const *label_names, size_t n_labels,
				     const double *buckets, size_t n_buckets)
{
	struct metric_family *fam = NULL, **arr;
	size_t i;

	if (!reg || !valid_family(name, type, label_names, n_labels, buckets, n_buckets))
		return NULL;

	pthread_mutex_lock(&reg->lock);
	for (i = 0; i < reg->n_families; i++) {
		if (strcmp(reg->families[i]->name, name))
			continue;
		if (same_family(reg->families[i], type, label_names, n_labels,
				buckets, n_buckets))
			fam = reg->families[i];
		goto out;
	}
	arr = grow_array(reg->families, &reg->families_alloc, reg->n_families, sizeof(*arr));
	if (!arr)
		goto out;
	reg->families = arr;
	fam = family_new(reg, name, help, type, label_names, n_labels, buckets, n_buckets);
	if (fam)
		reg->families[reg->n_families++] = fam;
out:
	pthread_mutex_unlock(&reg->lock);
	return fam;
}

/* ---- Updates ---------------------------------------------------------- */

/* The first bucket whose bound is >= v; n (the +Inf bucket) for larger or NaN. */
size_t bucket_index(const double *b, size_t n, double v)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v <= b[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void apply(const struct metric_family *fam, struct series *s, const struct update *u)
{
	size_t i;

	switch (u->op) {
	case OP_ADD:
		s->value += u->v;
		break;
	case OP_SET:
		s->value = u->v;
		break;
	case OP_OBSERVE:
		s->buckets[bucket_index(fam->buckets, fam->n_buckets, u->v)]++;
		s->count++;
		s->sum += u->v;
		break;
	case OP_HIST_SET:
		s->count = 0;
		for (i = 0; i <= fam->n_buckets; i++) {
			s->buckets[i] = u->counts[i];
			s->count += u->counts[i];
		}
		s->sum = u->v;
		break;
	}
}

/*
 * Under the lock: apply `u` to the series of `k`, a new one while the
 * family is under its cap, else fold it. A label set folded once stays
 * folded while the fold table knows it (until a clear), even when retiring
 * series made room: its total lives in one place. Returns 0, 1 when folded,
 * or -errno.
 */
static int update_locked(struct metric_family *fam, const struct key *k, const struct update *u)
{
	struct series *s;
	struct fold *f;
	int err;

	s = table_find(fam, k->hash, k->buf, k->len);
	if (s) {
		apply(fam, s, u);
		return 0;
	}
	if (is_other_key(fam, k))
		return fold_update(fam, k, u, false);
	f = fold_find(fam, fold_hash(k->hash));
	if (real_series(fam) < fam->reg->series_cap && !(f && f->active)) {
		err = series_insert(fam, k->hash, k->buf, k->len, true, &s);
		if (err)
			return err;
		apply(fam, s, u);
		return 0;
	}
	err = fold_update(fam, k, u, true);
	return err ? err : 1;
}

/* Build the key outside the lock; only the lookup and the write hold it. */
static int update(struct metric_family *fam, const char *const *label_values,
		  const struct update *u)
{
	struct key k;
	int ret;

	ret = key_build(&k, fam, label_values);
	if (ret)
		return ret;
	pthread_mutex_lock(&fam->reg->lock);
	ret = update_locked(fam, &k, u);
	pthread_mutex_unlock(&fam->reg->lock);
	key_release(&k);
	return ret;
}

int metrics_counter_add(struct metric_family *fam, const char *const *label_values, double v)
{
	struct update u = { .op = OP_ADD, .v = v };

	/* a counter only goes up; NaN would poison it for good */
	if (!fam || fam->type != METRIC_COUNTER || !(v >= 0))
		return -EINVAL;
	return update(fam, label_values, &u);
}

int metrics_gauge_set(struct metric_family *fam, const char *const *label_values, double v)
{
	struct update u = { .op = OP_SET, .v = v };

	if (!fam || fam->type != METRIC_GAUGE)
		return -EINVAL;
	return update(fam, label_values, &u);
}

int metrics_counter_set(struct metric_family *fam, const char *const *label_values, double v)
{
	struct update u = { .op = OP_SET, .v = v };

	if (!fam || fam->type != METRIC_COUNTER || !(v >= 0))
		return -EINVAL;
	return update(fam, label_values, &u);
}

int metrics_histogram_observe(struct metric_family *fam, const char *const *label_values,
			      double v)
{
	struct update u = { .op = OP_OBSERVE, .v = v };

	if (!fam || fam->type != METRIC_HISTOGRAM)
		return -EINVAL;
	return update(fam, label_values, &u);
}

int metrics_histogram_set(struct metric_family *fam, const char *const *label_values,
			  const uint64_t *counts, double sum)
{
	struct update u = { .op = OP_HIST_SET, .v = sum, .counts = counts };

	if (!fam || fam->type != METRIC_HISTOGRAM || !counts)
		return -EINVAL;
	return update(fam, label_values, &u);
}

void metrics_family_clear(struct metric_family *fam)
{
	if (!fam)
		return;
	pthread_mutex_lock(&fam->reg->lock);
	/* keep the table and array: a collector rebuilds about as many series */
	series_free_all(fam);
	pthread_mutex_unlock(&fam->reg->lock);
}

int metrics_add_collector(struct metrics_registry *reg, metrics_collector_fn fn, void *arg)
{
	struct collector *arr;
	int err = -ENOMEM;

	if (!reg || !fn)
		return -EINVAL;
	pthread_mutex_lock(&reg->lock);
	arr = grow_array(reg->collectors, &reg->collectors_alloc, reg->n_collectors,
			 sizeof(*arr));
	if (arr) {
		reg->collectors = arr;
		reg->collectors[reg->n_collectors++] = (struct collector){ fn, arg };
		err = 0;
	}
	pthread_mutex_unlock(&reg->lock);
	return err;
}

double metrics_value(struct metric_family *fam, const char *const *label_values)
{
	struct series *s;
	struct key k;
	double v = NAN;

	if (!fam || fam->type == METRIC_HISTOGRAM || key_build(&k, fam, label_values))
		return NAN;
	pthread_mutex_lock(&fam->reg->lock);
	if (is_other_key(fam, &k)) {
		s = fam->other;
		if (s && fam->type == METRIC_GAUGE)
			other_refresh(fam);
	} else {
		s = table_find(fam, k.hash, k.buf, k.len);
	}
	if (s)
		v = s->value;
	pthread_mutex_unlock(&fam->reg->lock);
	key_release(&k);
	return v;
}
