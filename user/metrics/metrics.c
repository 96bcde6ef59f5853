/*
 * Metrics registry and Prometheus text exposition (format 0.0.4): see metrics.h.
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
 * A second table, the fold table, remembers each folded label set by the
 * 64-bit hash of its key with its own last value, so that totals set from
 * elsewhere add their growth to "other" rather than overwrite it. It holds at
 * most max(series_cap, FOLD_MIN) entries; an entry not updated during the
 * last two renders can be reused, so label sets that stopped (deleted pods)
 * make room for new ones.
 */
#include "metrics.h"
#include "utf8.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SERIES_CAP 1000
#define OTHER_VALUE "other"
#define DROPPED_NAME "ksight_series_dropped_total"
#define DROPPED_HELP \
	"Label sets folded into an \"other\" series because a family reached its series cap."

/* Folded label sets a family tracks at least; and fold table slots scanned for a stale one. */
#define FOLD_MIN 64
#define FOLD_SCAN 64
/* Renders an entry must miss before it may be reused (a scrape-time set touches it every one). */
#define FOLD_STALE_RENDERS 2

/* Longest number fmt_double() writes is 24 characters ("-2.2250738585072014e-308"). */
#define NUM_LEN 32

struct series {
	uint64_t hash;
	size_t key_len;
	const char *key;	/* label values, each NUL-terminated, back to back */
	double value;		/* counter, gauge */
	double sum;		/* histogram */
	uint64_t count;		/* histogram: total observations */
	uint64_t buckets[];	/* histogram: n_buckets + 1 per-bucket counts, then the key */
};

struct metric_family {
	struct metrics_registry *reg;
	char *name;
	char *help;
	enum metric_type type;
	char **label_names;
	size_t n_labels;
	double *buckets;
	char (*le)[NUM_LEN];	/* bucket bounds preformatted for rendering */
	size_t n_buckets;

	struct series **series;	/* insertion order until a render sorts it */
	size_t n_series;
	size_t series_alloc;
	bool sorted;

	struct series **slots;	/* linear probing; NULL is an empty slot */
	size_t n_slots;		/* 0 or a power of two above twice n_series */

	/* The key every over-cap update folds into: n_labels times "other". */
	char *other_key;
	size_t other_len;
	uint64_t other_hash;
	struct series *other;	/* in series[] once something folded, never in slots[] */
	bool other_dirty;	/* gauge: other's value is to be summed from the fold table again */

	/* Folded label sets, linear probing on the key hash; entry hash 0 is an empty slot. */
	char *folds;
	size_t fold_stride;	/* sizeof(struct fold) plus the histogram buckets */
	size_t fold_slots;	/* 0 or a power of two, at least twice n_folds */
	size_t n_folds;
	size_t fold_max;
	size_t fold_hand;	/* where the search for a stale entry goes on */
};

/* What one folded label set has contributed to "other": its own value as a series would hold it. */
struct fold {
	uint64_t hash;		/* of the key, 0 mapped to 1 */
	uint64_t gen;		/* the registry's render count at its last update */
	/*
	 * Folded since the family was last cleared. A clear keeps the entries
	 * (zeroed), so a family rebuilt at each scrape does not count the same
	 * label sets as dropped again, but they may have a series if there is room.
	 */
	bool active;
	double value;		/* counter, gauge */
	double sum;		/* histogram */
	uint64_t buckets[];	/* histogram: n_buckets + 1 per-bucket counts */
};

struct collector {
	metrics_collector_fn fn;
	void *arg;
};

struct metrics_registry {
	pthread_mutex_t lock;
	size_t series_cap;
	struct metric_family **families;	/* declaration order */
	size_t n_families;
	size_t families_alloc;
	struct collector *collectors;
	size_t n_collectors;
	size_t collectors_alloc;
	uint64_t dropped;
	uint64_t gen;		/* renders so far */
};

/* A series key built on the caller's stack, spilling to the heap when long. */
struct key {
	char *buf;
	size_t len;
	uint64_t hash;
	char small[256];
};

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

/* ---- Names and numbers ------------------------------------------------ */

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

static int fmt_u64(char *buf, uint64_t v)
{
	char tmp[24];
	int n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}

/*
 * Round the 17 digits in d to prec of them; a carry out bumps *exp10.
 * Returns -1 when the dropped digits read 5000...: the 17 digits are
 * themselves rounded (maybe up, from 4999...), so only the exact value can
 * settle whether that is a tie.
 */
static int round_digits(char *d, int prec, int *exp10)
{
	int i;

	if (prec >= 17 || d[prec] < '5')
		return 0;
	for (i = prec + 1; i < 17 && d[i] == '0'; i++)
		;
	if (i == 17 && d[prec] == '5')
		return -1;
	for (i = prec - 1; i >= 0; i--) {
		if (d[i] != '9') {
			d[i]++;
			return 0;
		}
		d[i] = '0';
	}
	d[0] = '1';
	(*exp10)++;
	return 0;
}

/*
 * Lay out prec significant digits d (value d[0].d[1]... x 10^exp10) as
 * printf's %.<prec>g would: exponent form below 1e-4 or from 10^prec on,
 * trailing zeros dropped.
 */
static int layout_g(char *buf, bool neg, const char *d, int prec, int exp10)
{
	int nd = prec, n = 0, i;

	while (nd > 1 && d[nd - 1] == '0')
		nd--;
	if (neg)
		buf[n++] = '-';
	if (exp10 < -4 || exp10 >= prec) {
		buf[n++] = d[0];
		if (nd > 1) {
			buf[n++] = '.';
			memcpy(buf + n, d + 1, (size_t)nd - 1);
			n += nd - 1;
		}
		n += sprintf(buf + n, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
	} else if (exp10 >= 0) {
		for (i = 0; i <= exp10; i++)
			buf[n++] = i < nd ? d[i] : '0';
		if (nd > exp10 + 1) {
			buf[n++] = '.';
			memcpy(buf + n, d + exp10 + 1, (size_t)(nd - exp10 - 1));
			n += nd - exp10 - 1;
		}
	} else {
		buf[n++] = '0';
		buf[n++] = '.';
		for (i = -1; i > exp10; i--)
			buf[n++] = '0';
		memcpy(buf + n, d, (size_t)nd);
		n += nd;
	}
	buf[n] = '\0';
	return n;
}

/*
 * Prometheus spells the specials +Inf, -Inf and NaN. Integers print as plain
 * digits below 1e21 (as JavaScript does) so counters read naturally; the
 * rest get the shortest of 15, 16 or 17 significant digits that parses back
 * to the same double, exactly what trying %.15g, %.16g, %.17g would give.
 * snprintf is the cost (~0.2 us a call), so it runs once for all 17 digits
 * and the shorter candidates are rounded by hand, checked with strtod.
 */
static int fmt_double(char buf[NUM_LEN], double v)
{
	char e[NUM_LEN], d[17];
	int prec, exp10, n;

	if (isnan(v))
		return snprintf(buf, NUM_LEN, "NaN");
	if (isinf(v))
		return snprintf(buf, NUM_LEN, v > 0 ? "+Inf" : "-Inf");
	if (v > -9007199254740992.0 && v < 9007199254740992.0) {
		/* |v| < 2^53: the cast is defined and exact for integers */
		int64_t i = (int64_t)v;

		if ((double)i == v) {
			if (i >= 0)
				return fmt_u64(buf, (uint64_t)i);
			buf[0] = '-';
			return 1 + fmt_u64(buf + 1, (uint64_t)-i);
		}
	} else if (v > -1e21 && v < 1e21) {
		/* every double this large is an integer */
		return snprintf(buf, NUM_LEN, "%.0f", v);
	}

	/* "d.dddddddddddddddde[+-]XX": 17 significant digits always round-trip */
	snprintf(e, sizeof(e), "%.16e", v < 0 ? -v : v);
	for (prec = 15; prec <= 17; prec++) {
		d[0] = e[0];
		memcpy(d + 1, e + 2, 16);
		exp10 = atoi(e + 19);
		if (round_digits(d, prec, &exp10))
			n = snprintf(buf, NUM_LEN, "%.*g", prec, v);
		else
			n = layout_g(buf, v < 0, d, prec, exp10);
		if (prec == 17 || strtod(buf, NULL) == v)
			break;
	}
	return n;
}

static void put_double(struct strbuf *sb, double v)
{
	char buf[NUM_LEN];

	strbuf_append(sb, buf, (size_t)fmt_double(buf, v));
}

static void put_u64(struct strbuf *sb, uint64_t v)
{
	char buf[NUM_LEN];

	strbuf_append(sb, buf, (size_t)fmt_u64(buf, v));
}

/* HELP escapes \\ and newline; label values (UTF-8 by key_build) also escape ". Runs go in one append. */
static void put_escaped(struct strbuf *sb, const char *s, size_t n, bool quote)
{
	size_t start = 0, i;

	for (i = 0; i < n; i++) {
		const char *esc;

		if (s[i] == '\\')
			esc = "\\\\";
		else if (s[i] == '\n')
			esc = "\\n";
		else if (quote && s[i] == '"')
			esc = "\\\"";
		else
			continue;
		strbuf_append(sb, s + start, i - start);
		strbuf_append(sb, esc, 2);
		start = i + 1;
	}
	strbuf_append(sb, s + start, n - start);
}

/* ---- Series table ----------------------------------------------------- */

/* Join n label values, NUL-terminating each: the table key and sort key. */
static int key_build_n(struct key *k, size_t n_values, const char *const *values)
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

static int key_build(struct key *k, const struct metric_family *fam,
		     const char *const *values)
{
	return key_build_n(k, fam->n_labels, values);
}

static void key_release(struct key *k)
{
	if (k->buf != k->small)
		free(k->buf);
}

/*
 * Byte order on the joined keys is the lexicographic order on the tuples:
 * each value's terminating NUL sorts below any byte that could extend it.
 */
static int series_cmp(const void *a, const void *b)
{
	const struct series *x = *(const struct series *const *)a;
	const struct series *y = *(const struct series *const *)b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);

	if (c)
		return c;
	return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static struct series *table_find(const struct metric_family *fam, uint64_t hash,
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

static void table_remove(struct metric_family *fam, const struct series *s)
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
static int series_insert(struct metric_family *fam, uint64_t hash, const char *key,
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

static struct fold *fold_at(const struct metric_family *fam, size_t i)
{
	return (struct fold *)(fam->folds + i * fam->fold_stride);
}

/* Take series i out of the array (keeping the order) and the table, and free it. */
static void series_remove_at(struct metric_family *fam, size_t i)
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

static bool is_other_key(const struct metric_family *fam, const struct key *k)
{
	/* with no labels the one label set there is is never folded */
	return fam->n_labels && k->hash == fam->other_hash && k->len == fam->other_len &&
	       !memcmp(k->buf, fam->other_key, k->len);
}

/* ---- Fold table --------------------------------------------------------- */

/* Entries are known by the key's hash alone: 0 marks an empty slot. */
static uint64_t fold_hash(uint64_t hash)
{
	return hash ? hash : 1;
}

static struct fold *fold_find(const struct metric_family *fam, uint64_t hash)
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
static void other_refresh(struct metric_family *fam)
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

enum update_op {
	OP_ADD,
	OP_SET,
	OP_OBSERVE,
	OP_HIST_SET,
};

struct update {
	enum update_op op;
	double v;
	const uint64_t *counts;
};

/* The first bucket whose bound is >= v; n (the +Inf bucket) for larger or NaN. */
static size_t bucket_index(const double *b, size_t n, double v)
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
static int fold_update(struct metric_family *fam, const struct key *k, const struct update *u,
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

/* ---- Rendering -------------------------------------------------------- */

static const char *const type_names[] = {
	[METRIC_COUNTER] = "counter",
	[METRIC_GAUGE] = "gauge",
	[METRIC_HISTOGRAM] = "histogram",
};

static void render_header(struct strbuf *sb, const char *name, const char *help,
			  enum metric_type type)
{
	strbuf_puts(sb, "# HELP ");
	strbuf_puts(sb, name);
	strbuf_putc(sb, ' ');
	put_escaped(sb, help, strlen(help), false);
	strbuf_puts(sb, "\n# TYPE ");
	strbuf_puts(sb, name);
	strbuf_putc(sb, ' ');
	strbuf_puts(sb, type_names[type]);
	strbuf_putc(sb, '\n');
}

/* `{l1="v1",l2="v2"` without the closing brace, so a histogram can add le. */
static void render_labels(struct strbuf *sb, const struct metric_family *fam,
			  const struct series *s)
{
	const char *v = s->key;
	size_t i;

	for (i = 0; i < fam->n_labels; i++) {
		size_t n = strlen(v);

		strbuf_putc(sb, i ? ',' : '{');
		strbuf_puts(sb, fam->label_names[i]);
		strbuf_append(sb, "=\"", 2);
		put_escaped(sb, v, n, true);
		strbuf_putc(sb, '"');
		v += n + 1;
	}
}

/* One sample line; `labels` is render_labels() output, empty when there are none. */
static void render_line(struct strbuf *sb, const char *name, const char *suffix,
			const struct strbuf *labels, const char *le)
{
	strbuf_puts(sb, name);
	strbuf_puts(sb, suffix);
	if (labels->len)
		strbuf_append(sb, labels->buf, labels->len);
	if (le) {
		strbuf_append(sb, labels->len ? ",le=\"" : "{le=\"", 5);
		strbuf_puts(sb, le);
		strbuf_putc(sb, '"');
	}
	if (labels->len || le)
		strbuf_putc(sb, '}');
	strbuf_putc(sb, ' ');
}

static void render_family(struct strbuf *sb, struct strbuf *labels,
			  struct metric_family *fam)
{
	size_t i, b;

	render_header(sb, fam->name, fam->help, fam->type);
	if (fam->other && fam->type == METRIC_GAUGE)
		other_refresh(fam);
	if (!fam->sorted) {
		qsort(fam->series, fam->n_series, sizeof(*fam->series), series_cmp);
		fam->sorted = true;
	}
	for (i = 0; i < fam->n_series; i++) {
		const struct series *s = fam->series[i];
		uint64_t cum = 0;

		strbuf_reset(labels);
		render_labels(labels, fam, s);
		if (fam->type != METRIC_HISTOGRAM) {
			render_line(sb, fam->name, "", labels, NULL);
			put_double(sb, s->value);
			strbuf_putc(sb, '\n');
			continue;
		}
		for (b = 0; b <= fam->n_buckets; b++) {
			cum += s->buckets[b];
			render_line(sb, fam->name, "_bucket", labels,
				    b < fam->n_buckets ? fam->le[b] : "+Inf");
			put_u64(sb, cum);
			strbuf_putc(sb, '\n');
		}
		render_line(sb, fam->name, "_sum", labels, NULL);
		put_double(sb, s->sum);
		strbuf_putc(sb, '\n');
		render_line(sb, fam->name, "_count", labels, NULL);
		put_u64(sb, s->count);
		strbuf_putc(sb, '\n');
	}
}

int metrics_render(struct metrics_registry *reg, struct strbuf *out)
{
	struct strbuf labels = STRBUF_INIT;
	struct collector c;
	size_t i;
	int err = 0;

	if (!reg || !out)
		return -EINVAL;
	/*
	 * Collectors update through metrics_*(), which take the lock: fetch
	 * each one under it, call it without.
	 */
	for (i = 0;; i++) {
		pthread_mutex_lock(&reg->lock);
		if (i >= reg->n_collectors) {
			pthread_mutex_unlock(&reg->lock);
			break;
		}
		c = reg->collectors[i];
		pthread_mutex_unlock(&reg->lock);
		c.fn(reg, c.arg);
	}

	pthread_mutex_lock(&reg->lock);
	/* a scrape: fold entries untouched for some of these can be reused */
	reg->gen++;
	for (i = 0; i < reg->n_families; i++)
		render_family(out, &labels, reg->families[i]);
	render_header(out, DROPPED_NAME, DROPPED_HELP, METRIC_COUNTER);
	strbuf_puts(out, DROPPED_NAME " ");
	put_u64(out, reg->dropped);
	strbuf_putc(out, '\n');
	pthread_mutex_unlock(&reg->lock);

	if (out->oom || labels.oom)
		err = -ENOMEM;
	strbuf_free(&labels);
	return err;
}
