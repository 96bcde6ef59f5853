/*
 * The metrics registry and its Prometheus text exposition (user/metrics/metrics*.c)
 * driven by a program decoded from the input: families with any names,
 * help texts, label names and histogram buckets; updates with label values
 * of arbitrary bytes and any doubles (NaN, infinities, -0, subnormals);
 * clears, series removals (metrics_family_remove_series, metrics_forget)
 * and renders. A small series cap (1..8) makes updates fold into the "other"
 * series.
 *
 * The harness keeps its own model of every series (label values, value or
 * histogram buckets/sum/count) and parses each render with a checker of
 * the text format 0.0.4:
 *   - every line is "# HELP name text", "# TYPE name type", or a sample
 *     name{label="value",...} value, and the output ends with '\n';
 *   - help text escapes only \\ and \n, label values only \\, \" and \n;
 *   - names are valid, labels are the family's in order (plus le on
 *     _bucket lines), values parse as Go's ParseFloat would (+Inf, -Inf,
 *     NaN spelled so);
 *   - unescaped, every line says exactly what the model says: the same set
 *     of series per family, in byte order of their label values, with the
 *     same values (the number printed reads back as the same double), the
 *     help text given, cumulative buckets ending in _count. Label values
 *     and help texts read back as given; bytes that are not UTF-8 may come
 *     back as U+FFFD each (metrics.c's replacement), nothing else changes;
 *   - label values and help texts are valid UTF-8 when the bytes given were.
 * With KSIGHT_FUZZ_STRICT=1, also what known bugs break (see
 * tests/fuzz/crashes/exposition/): label values must be valid UTF-8 whatever
 * was given, as Prometheus requires (it rejects the whole scrape
 * otherwise), and no two series of a family may render with the same label
 * set (which lossy replacement can cause: Prometheus then keeps one sample
 * and counts the other as a duplicate).
 *
 * Program (all from the input; it ends when the input does):
 *   byte 0: series cap - 1 (mod 8); then ops, one byte each (op % 8):
 *   0 family: flags, name, help, labels, buckets   1 counter_add
 *   2 gauge_set   3 histogram_observe   4 counter_set   5 histogram_set
 *   6 family index byte b, and b >> 6 says: 0 or 3 family_clear,
 *     1 remove_series (then label values), 2 forget (then a count byte %
 *     3, and per label a name byte (< 128: the family's label of that index,
 *     else a string follows) and a value)
 *   7 render (and check) now
 *   updates: family index byte, n_labels label values (length byte +
 *   bytes), a value (mode byte + payload).
 *
 * Folding is modelled as metrics.h specifies it: "other" sums the folded
 * label sets' totals (counter_set, histogram_set: growth since the previous
 * total, all of it after a reset) and latest gauge values, each folded label
 * set counts once in ksight_series_dropped_total (a clear forgets what
 * they put in, not them), and one folded stays folded until a clear. That
 * is exact while a family has folded at most FOLD_TRACKED label
 * sets (the registry's table then holds them all; a gauge's sum is checked to
 * a rounding tolerance, the order of its terms being the registry's); past
 * that the registry may forget and reuse entries, so the harness takes its
 * word on what folded and only checks that a counter's "other" and the
 * dropped counter never go down.
 */
#include <errno.h>
#include <math.h>

#include "metrics.h"
#include "fuzz.h"

#define MAX_FAMILIES	8
#define MAX_LABELS	5
#define MAX_BUCKETS	5
#define MAX_SERIES	64	/* per family in the model; the cap keeps real ones far below */
#define MAX_OPS		200
#define FOLD_TRACKED	64	/* metrics.c: max(cap, 64) folded label sets tracked; the cap is <= 8 */

enum check {
	CHECK_EXACT,
	CHECK_SUM,		/* a gauge's "other": a sum, to rounding */
	CHECK_LOOSE,		/* "other" of a family past FOLD_TRACKED: a counter never goes down */
};

struct mseries {
	char *key;		/* label values, each NUL-terminated */
	size_t key_len;
	char *rkey;		/* the same with bytes that are not UTF-8 as U+FFFD */
	size_t rkey_len;
	double value;
	double sum;
	uint64_t count;
	uint64_t buckets[MAX_BUCKETS + 1];
	bool seen;		/* in the render being checked */
	bool is_other;
	enum check check;
	double tol;		/* CHECK_SUM */
};

/* A folded label set: what it has put into "other". */
struct mfold {
	char *key;
	size_t key_len;
	bool active;		/* folded since the last clear (which zeroes the rest) */
	double value;
	double sum;
	uint64_t buckets[MAX_BUCKETS + 1];
};

struct mfamily {
	struct metric_family *fam;
	char *name;
	char *help;
	enum metric_type type;
	char *labels[MAX_LABELS];
	size_t n_labels;
	double buckets[MAX_BUCKETS];
	size_t n_buckets;
	struct mseries series[MAX_SERIES + 1];
	size_t n_series;
	struct mfold folds[FOLD_TRACKED];
	size_t n_folds;
	bool exact;		/* folded at most FOLD_TRACKED label sets so far */
	bool help_utf8;
	bool rendered;		/* in the render being checked */
};

struct model {
	struct mfamily fam[MAX_FAMILIES];
	size_t n;
	size_t cap;
	uint64_t dropped;
	bool dropped_exact;
	double last_dropped;
};

static const char metric_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:0123456789";

/* A name: raw bytes, or mapped onto the valid alphabet (no ':' for labels). */
static char *gen_name(struct fuzz_in *in, bool raw, bool label)
{
	char *s = fuzz_str(in, 24), *p;

	if (!raw)
		for (p = s; *p; p++)
			*p = metric_chars[(unsigned char)*p % (label ? 53 + 10 : 64)];
	if (label && !raw)
		for (p = s; *p; p++)
			if (*p == ':')
				*p = '_';
	return s;
}

static double gen_value(struct fuzz_in *in)
{
	static const double special[] = {
		0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 2.5, 1e-5, 1e-4, 123456.789, 1e15, 1e16, 1e17,
		9007199254740991.0, 9007199254740992.0, 9007199254740993.0, 1e21, 1e22, 1.7976931348623157e308,
		2.2250738585072014e-308, 4.9406564584124654e-324, 0.30000000000000004, 100.0, 1e100,
	};
	uint8_t mode = fuzz_u8(in);
	uint64_t bits;
	double d;

	switch (mode % 5) {
	case 0:
		return (double)fuzz_u8(in);
	case 1:
		bits = fuzz_u64(in, 8);
		memcpy(&d, &bits, sizeof(d));
		return d;
	case 2:
		return (double)(int16_t)fuzz_u64(in, 2) / 8.0;
	case 3:
		d = special[fuzz_u8(in) % (sizeof(special) / sizeof(special[0]))];
		return (mode & 0x80) ? -d : d;
	default:
		switch (fuzz_u8(in) % 3) {
		case 0:
			return NAN;
		case 1:
			return INFINITY;
		default:
			return -INFINITY;
		}
	}
}

static bool same_double(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

/* The registry's order: bytes of the joined label values. */
static int key_cmp(const struct mseries *a, const struct mseries *b)
{
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
	int c = memcmp(a->key, b->key, n);

	return c ? c : (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static struct mseries *model_find(struct mfamily *f, const char *key, size_t len)
{
	size_t i;

	for (i = 0; i < f->n_series; i++)
		if (f->series[i].key_len == len && !memcmp(f->series[i].key, key, len))
			return &f->series[i];
	return NULL;
}

/*
 * The registry keys a series by its label values with every byte that is not
 * UTF-8 replaced by U+FFFD (so values differing only there are one series):
 * the model does the same.
 */
static struct mseries *model_get(struct mfamily *f, const char *raw, size_t raw_len)
{
	char *key = malloc(raw_len ? 3 * raw_len : 1);
	struct mseries *s;
	size_t len;

	if (!key)
		abort();
	len = fuzz_utf8_replace(raw, raw_len, key);	/* NUL is valid: per value */
	s = model_find(f, key, len);
	if (s) {
		free(key);
		return s;
	}
	FUZZ_CHECK(f->n_series <= MAX_SERIES, "model overflow: the series cap is not kept");
	s = &f->series[f->n_series++];
	memset(s, 0, sizeof(*s));
	s->rkey = malloc(len ? len : 1);
	if (!s->rkey)
		abort();
	memcpy(s->rkey, key, len);
	s->key = key;
	s->key_len = len;
	s->rkey_len = len;
	return s;
}

/*
 * The series a rendered label set (unescaped, joined) stands for: given
 * as-is or with U+FFFD replacements. Lines come in the registry's order of
 * the given bytes, so of several candidates the first unseen one is it.
 */
static struct mseries *model_match(struct mfamily *f, const char *key, size_t len)
{
	struct mseries *best = NULL, *s;
	size_t i;

	for (i = 0; i < f->n_series; i++) {
		s = &f->series[i];
		if (s->seen || !((s->key_len == len && !memcmp(s->key, key, len)) ||
				 (s->rkey_len == len && !memcmp(s->rkey, key, len))))
			continue;
		if (!best || key_cmp(s, best) < 0)
			best = s;
	}
	return best;
}

static void model_clear(struct mfamily *f)
{
	size_t i;

	for (i = 0; i < f->n_series; i++) {
		free(f->series[i].key);
		free(f->series[i].rkey);
	}
	f->n_series = 0;
	/* the registry keeps knowing the label sets that folded, not what they put in */
	for (i = 0; i < f->n_folds; i++) {
		struct mfold *e = &f->folds[i];

		e->active = false;
		e->value = e->sum = 0;
		memset(e->buckets, 0, sizeof(e->buckets));
	}
}

static void model_remove(struct mfamily *f, struct mseries *s)
{
	size_t i = (size_t)(s - f->series);

	free(s->key);
	free(s->rkey);
	memmove(s, s + 1, (f->n_series - i - 1) * sizeof(*s));
	f->n_series--;
}

static struct mseries *model_other(struct mfamily *f)
{
	size_t i;

	for (i = 0; i < f->n_series; i++)
		if (f->series[i].is_other)
			return &f->series[i];
	return NULL;
}

static size_t model_real(struct mfamily *f)
{
	return f->n_series - (model_other(f) ? 1 : 0);
}

static struct mfold *fold_find(struct mfamily *f, const char *key, size_t len)
{
	size_t i;

	for (i = 0; i < f->n_folds; i++)
		if (f->folds[i].key_len == len && !memcmp(f->folds[i].key, key, len))
			return &f->folds[i];
	return NULL;
}

static void family_free(struct mfamily *f)
{
	size_t i;

	model_clear(f);
	for (i = 0; i < f->n_folds; i++)
		free(f->folds[i].key);
	free(f->name);
	free(f->help);
	for (i = 0; i < f->n_labels; i++)
		free(f->labels[i]);
}

/* ---- the checker ------------------------------------------------------- */

struct line {
	const char *s;
	size_t len;
	size_t pos;
};

static bool valid_name(const char *s, size_t n, bool colon)
{
	size_t i;

	if (!n)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
		      (i && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* Unescape text whose escapes are `allowed` (after the backslash); false on a bad escape. */
static bool unescape(const char *s, size_t n, const char *allowed, char *out, size_t *out_len)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (s[i] != '\\') {
			out[k++] = s[i];
			continue;
		}
		if (i + 1 == n || !strchr(allowed, s[i + 1]) || !s[i + 1])
			return false;
		i++;
		out[k++] = s[i] == 'n' ? '\n' : s[i];
	}
	*out_len = k;
	return true;
}

/* A sample value as Go's strconv.ParseFloat (and so Prometheus) reads it. */
static bool parse_value(const char *s, size_t n, double *out)
{
	char buf[64], *end;
	size_t i;

	if (n == 3 && !memcmp(s, "NaN", 3)) {
		*out = NAN;
		return true;
	}
	if (n == 4 && !memcmp(s, "+Inf", 4)) {
		*out = INFINITY;
		return true;
	}
	if (n == 4 && !memcmp(s, "-Inf", 4)) {
		*out = -INFINITY;
		return true;
	}
	if (!n || n >= sizeof(buf))
		return false;
	for (i = 0; i < n; i++)
		if (!strchr("0123456789+-.eE", s[i]))
			return false;	/* no hex floats, no "inf"/"nan" spellings */
	memcpy(buf, s, n);
	buf[n] = '\0';
	*out = strtod(buf, &end);
	return end == buf + n;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!n || n > 20)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

struct render_state {
	struct model *m;
	struct mfamily *cur;		/* NULL: the registry's own dropped counter */
	bool in_dropped;
	const char *type_name;
	char help_name[256];
	/* the series being read (histograms span several lines) */
	struct mseries *series;
	size_t bucket;			/* next _bucket line's index */
	uint64_t cum;
	struct mseries *prev;		/* the previous series of the family, for the order */
	char cur_key[4096];		/* the series' rendered labels (histogram lines agree) */
	size_t cur_len;
	/* rendered label sets of the family so far: strict mode wants no repeats */
	char *keys[MAX_SERIES + 1];
	size_t key_lens[MAX_SERIES + 1];
	size_t n_keys;
};

static void forget_keys(struct render_state *st)
{
	while (st->n_keys)
		free(st->keys[--st->n_keys]);
	st->prev = NULL;
}

static void finish_series(struct render_state *st)
{
	if (st->series && st->cur && st->cur->type == METRIC_HISTOGRAM)
		FUZZ_CHECK(st->bucket == (size_t)-1, "histogram series without its _count line");
	st->series = NULL;
}

static void finish_family(struct render_state *st)
{
	size_t i;

	finish_series(st);
	forget_keys(st);
	if (!st->cur)
		return;
	for (i = 0; i < st->cur->n_series; i++)
		FUZZ_CHECK(st->cur->series[i].seen, "family %s: series %zu of the model was not rendered",
			   st->cur->name, i);
}

static struct mfamily *family_named(struct model *m, const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (strlen(m->fam[i].name) == n && !memcmp(m->fam[i].name, name, n))
			return &m->fam[i];
	return NULL;
}

/* One sample line. */
static void check_sample(struct render_state *st, const char *s, size_t n, const char *whole)
{
	static char key[8192], val[4096];
	const char *p = s, *end = s + n, *name = s, *suffix = "";
	size_t name_len, key_len = 0, li = 0, vlen;
	struct mfamily *f = st->cur;
	bool bucket = false, is_count = false, is_sum = false;
	char le[64] = "";
	double value;

	while (p < end && *p != '{' && *p != ' ')
		p++;
	name_len = (size_t)(p - name);
	FUZZ_CHECK(valid_name(name, name_len, true), "bad metric name in \"%s\"", whole);
	if (st->in_dropped) {
		FUZZ_CHECK(name_len == 27 && !memcmp(name, "ksight_series_dropped_total", 27), "\"%s\"", whole);
	} else {
		FUZZ_CHECK(f, "a sample before any TYPE line: \"%s\"", whole);
		if (f->type == METRIC_HISTOGRAM) {
			size_t fl = strlen(f->name);

			FUZZ_CHECK(name_len > fl && !memcmp(name, f->name, fl), "\"%s\" in family %s", whole, f->name);
			suffix = name + fl;
			bucket = name_len - fl == 7 && !memcmp(suffix, "_bucket", 7);
			is_sum = name_len - fl == 4 && !memcmp(suffix, "_sum", 4);
			is_count = name_len - fl == 6 && !memcmp(suffix, "_count", 6);
			FUZZ_CHECK(bucket || is_sum || is_count, "\"%s\" in histogram %s", whole, f->name);
		} else {
			FUZZ_CHECK(name_len == strlen(f->name) && !memcmp(name, f->name, name_len),
				   "\"%s\" in family %s", whole, f->name);
		}
	}

	/* labels */
	if (p < end && *p == '{') {
		p++;
		for (;;) {
			const char *ln = p, *vs;
			size_t ln_len;

			while (p < end && *p != '=')
				p++;
			ln_len = (size_t)(p - ln);
			FUZZ_CHECK(p < end && valid_name(ln, ln_len, false), "bad label name in \"%s\"", whole);
			p++;
			FUZZ_CHECK(p < end && *p == '"', "label value not quoted in \"%s\"", whole);
			vs = ++p;
			while (p < end && *p != '"') {
				if (*p == '\\')
					p++;
				p++;
			}
			FUZZ_CHECK(p < end, "unterminated label value in \"%s\"", whole);
			FUZZ_CHECK(unescape(vs, (size_t)(p - vs), "\\\"n", val, &vlen),
				   "bad escape in a label value of \"%s\"", whole);
			p++;
			if (!st->in_dropped && li < f->n_labels) {
				FUZZ_CHECK(ln_len == strlen(f->labels[li]) && !memcmp(ln, f->labels[li], ln_len),
					   "label %zu of \"%s\" is not %s", li, whole, f->labels[li]);
				FUZZ_CHECK(!memchr(val, '\0', vlen), "a NUL in a label value");
				if (fuzz_strict())
					FUZZ_CHECK(fuzz_utf8_valid(val, vlen),
						   "label %s of family %s is not valid UTF-8: Prometheus rejects the "
						   "whole scrape (\"invalid label value\"): %s",
						   f->labels[li], f->name, whole);
				memcpy(key + key_len, val, vlen);
				key_len += vlen;
				key[key_len++] = '\0';
			} else {
				FUZZ_CHECK(bucket && li == f->n_labels && ln_len == 2 && !memcmp(ln, "le", 2) &&
						   vlen < sizeof(le),
					   "unexpected label in \"%s\"", whole);
				memcpy(le, val, vlen);
				le[vlen] = '\0';
			}
			li++;
			FUZZ_CHECK(p < end, "unterminated label set in \"%s\"", whole);
			if (*p == '}') {
				p++;
				break;
			}
			FUZZ_CHECK(*p == ',', "expected ',' or '}' in \"%s\"", whole);
			p++;
		}
	}
	if (!st->in_dropped)
		FUZZ_CHECK(li == f->n_labels + (bucket ? 1 : 0), "%zu labels in \"%s\"", li, whole);
	FUZZ_CHECK(p < end && *p == ' ', "no space before the value in \"%s\"", whole);
	p++;
	FUZZ_CHECK(parse_value(p, (size_t)(end - p), &value), "bad value in \"%s\"", whole);
	if (st->in_dropped) {
		if (st->m->dropped_exact)
			FUZZ_CHECK(value == (double)st->m->dropped, "dropped %s, model %llu", p,
				   (unsigned long long)st->m->dropped);
		else
			FUZZ_CHECK(value >= st->m->last_dropped, "dropped went down to %s", p);
		st->m->last_dropped = value;
		return;
	}

	/* one series: a counter/gauge line, or a histogram's buckets, _sum, _count */
	if (!st->series) {
		struct mseries *ms = model_match(f, key, key_len);
		size_t k;

		FUZZ_CHECK(ms, "family %s: a rendered series the model does not have (or has rendered "
			   "already): %s", f->name, whole);
		ms->seen = true;
		FUZZ_CHECK(!st->prev || key_cmp(st->prev, ms) < 0, "family %s: series out of order at %s",
			   f->name, whole);
		st->prev = ms;
		if (fuzz_strict()) {
			for (k = 0; k < st->n_keys; k++)
				FUZZ_CHECK(st->key_lens[k] != key_len || memcmp(st->keys[k], key, key_len),
					   "family %s: two series render with the same labels (label values that "
					   "differ only in bytes that are not UTF-8): %s", f->name, whole);
		}
		FUZZ_CHECK(st->n_keys <= MAX_SERIES, "more series than the model");
		st->keys[st->n_keys] = fuzz_dup((const uint8_t *)key, key_len);
		st->key_lens[st->n_keys++] = key_len;
		FUZZ_CHECK(key_len <= sizeof(st->cur_key), "key too long for the checker");
		memcpy(st->cur_key, key, key_len);
		st->cur_len = key_len;
		st->series = ms;
		st->bucket = 0;
		st->cum = 0;
	} else {
		FUZZ_CHECK(st->cur_len == key_len && !memcmp(st->cur_key, key, key_len),
			   "histogram lines of one series disagree on labels: %s", whole);
	}
	if (f->type != METRIC_HISTOGRAM) {
		struct mseries *ms = st->series;

		if (ms->check == CHECK_SUM) {
			/* NaN tolerance: infinities or NaN among the terms, whose sum depends on their order */
			if (!isnan(ms->tol))
				FUZZ_CHECK(fabs(value - ms->value) <= ms->tol,
					   "family %s: other %.17g rendered, the folded values sum to %.17g: %s",
					   f->name, value, ms->value, whole);
		} else if (ms->check == CHECK_LOOSE) {
			if (f->type == METRIC_COUNTER)
				FUZZ_CHECK(value >= ms->value, "family %s: other went down from %.17g: %s",
					   f->name, ms->value, whole);
			ms->value = value;
		} else {
			FUZZ_CHECK(same_double(value, ms->value), "family %s: value %.17g rendered, model %.17g: %s",
				   f->name, value, ms->value, whole);
		}
		st->series = NULL;
		return;
	}
	if (bucket) {
		uint64_t v;
		double bound;

		FUZZ_CHECK(st->bucket <= f->n_buckets, "too many buckets: %s", whole);
		FUZZ_CHECK(parse_u64(p, (size_t)(end - p), &v), "bucket count not an integer: %s", whole);
		if (st->series->check == CHECK_LOOSE) {
			/* bucket counts unknown: still cumulative */
			FUZZ_CHECK(v >= st->cum, "bucket %zu below the one before: %s", st->bucket, whole);
			st->cum = v;
		} else {
			st->cum += st->series->buckets[st->bucket];
			FUZZ_CHECK(v == st->cum, "bucket %zu is %llu, model %llu: %s", st->bucket,
				   (unsigned long long)v, (unsigned long long)st->cum, whole);
		}
		FUZZ_CHECK(parse_value(le, strlen(le), &bound), "le \"%s\"", le);
		if (st->bucket < f->n_buckets)
			FUZZ_CHECK(bound == f->buckets[st->bucket], "le \"%s\" is not %.17g", le,
				   f->buckets[st->bucket]);
		else
			FUZZ_CHECK(!strcmp(le, "+Inf"), "last le is \"%s\"", le);
		st->bucket++;
	} else if (is_sum) {
		FUZZ_CHECK(st->bucket == f->n_buckets + 1, "_sum before the buckets: %s", whole);
		if (st->series->check != CHECK_LOOSE)
			FUZZ_CHECK(same_double(value, st->series->sum), "sum %.17g, model %.17g", value,
				   st->series->sum);
		st->bucket++;
	} else {
		uint64_t v;

		FUZZ_CHECK(st->bucket == f->n_buckets + 2, "_count out of place: %s", whole);
		if (st->series->check == CHECK_LOOSE)
			st->series->count = st->cum;
		FUZZ_CHECK(parse_u64(p, (size_t)(end - p), &v) && v == st->series->count,
			   "count %s, model %llu", p, (unsigned long long)st->series->count);
		FUZZ_CHECK(st->cum == st->series->count, "+Inf bucket %llu but count %llu",
			   (unsigned long long)st->cum, (unsigned long long)st->series->count);
		st->bucket = (size_t)-1;
		st->series = NULL;
	}
}

/* What the render must say of a family's "other" series. */
static void other_expect(struct mfamily *f)
{
	struct mseries *o = model_other(f);
	double sum = 0, abs_sum = 0;
	bool finite = true;
	size_t i;

	if (!o)
		return;
	if (!f->exact) {
		o->check = CHECK_LOOSE;
		return;
	}
	if (f->type != METRIC_GAUGE) {
		o->check = CHECK_EXACT;
		return;
	}
	for (i = 0; i < f->n_folds; i++) {
		if (!f->folds[i].active)
			continue;
		sum += f->folds[i].value;
		abs_sum += fabs(f->folds[i].value);
		finite &= isfinite(f->folds[i].value);
	}
	o->check = CHECK_SUM;
	o->value = sum;
	/* recursive summation errs by at most (n - 1) ulp-halves of the sum of magnitudes */
	o->tol = finite && isfinite(abs_sum) && abs_sum < 1e300 ?
		 (double)(f->n_folds + 1) * 2.2204460492503131e-16 * abs_sum : NAN;
}

static void check_render(struct model *m, const struct strbuf *sb)
{
	static char help[65536];
	struct render_state st = { .m = m };
	const char *s = sb->buf, *end;
	size_t i, j, n;

	FUZZ_CHECK(!sb->oom && s && sb->len == strlen(s), "render output missing or has a NUL");
	FUZZ_CHECK(sb->len && s[sb->len - 1] == '\n', "output does not end with a newline");
	for (i = 0; i < m->n; i++) {
		m->fam[i].rendered = false;
		for (j = 0; j < m->fam[i].n_series; j++)
			m->fam[i].series[j].seen = false;
		other_expect(&m->fam[i]);
	}

	for (; *s; s = end + 1) {
		end = strchr(s, '\n');
		n = (size_t)(end - s);
		if (n >= 7 && !memcmp(s, "# HELP ", 7)) {
			const char *name = s + 7, *sp = memchr(name, ' ', (size_t)(end - name));
			size_t hl;

			FUZZ_CHECK(sp, "HELP without text");
			finish_family(&st);
			FUZZ_CHECK(valid_name(name, (size_t)(sp - name), true), "bad HELP name");
			FUZZ_CHECK((size_t)(sp - name) < sizeof(st.help_name), "name too long");
			memcpy(st.help_name, name, (size_t)(sp - name));
			st.help_name[sp - name] = '\0';
			st.cur = family_named(m, name, (size_t)(sp - name));
			st.in_dropped = !strcmp(st.help_name, "ksight_series_dropped_total");
			FUZZ_CHECK(st.cur || st.in_dropped, "HELP for an unknown family %s", st.help_name);
			if (st.cur) {
				FUZZ_CHECK(!st.cur->rendered, "family %s rendered twice", st.cur->name);
				st.cur->rendered = true;
			}
			FUZZ_CHECK((size_t)(end - sp - 1) < sizeof(help), "help too long");
			FUZZ_CHECK(unescape(sp + 1, (size_t)(end - sp - 1), "\\n", help, &hl),
				   "bad escape in the HELP of %s", st.help_name);
			if (st.cur) {
				size_t given = strlen(st.cur->help);
				char *repl = malloc(3 * given + 1);

				if (!repl)
					abort();
				FUZZ_CHECK((hl == given && !memcmp(help, st.cur->help, hl)) ||
						   (hl == fuzz_utf8_replace(st.cur->help, given, repl) &&
						    !memcmp(help, repl, hl)),
					   "HELP of %s does not read back as given", st.cur->name);
				if (st.cur->help_utf8)
					FUZZ_CHECK(fuzz_utf8_valid(help, hl), "HELP of %s: UTF-8 broken", st.cur->name);
				free(repl);
			}
			continue;
		}
		if (n >= 7 && !memcmp(s, "# TYPE ", 7)) {
			const char *name = s + 7, *sp = memchr(name, ' ', (size_t)(end - name));
			const char *want;

			FUZZ_CHECK(sp && (size_t)(sp - name) == strlen(st.help_name) &&
					   !memcmp(name, st.help_name, (size_t)(sp - name)),
				   "TYPE does not follow its HELP");
			want = st.in_dropped ? "counter" :
			       st.cur->type == METRIC_COUNTER ? "counter" :
			       st.cur->type == METRIC_GAUGE ? "gauge" : "histogram";
			FUZZ_CHECK((size_t)(end - sp - 1) == strlen(want) && !memcmp(sp + 1, want, strlen(want)),
				   "TYPE of %s is not %s", st.help_name, want);
			continue;
		}
		FUZZ_CHECK(n && s[0] != '#', "an empty line or an unknown comment");
		{
			char *line = fuzz_dup((const uint8_t *)s, n);

			check_sample(&st, s, n, line);
			free(line);
		}
	}
	finish_family(&st);
	for (i = 0; i < m->n; i++)
		FUZZ_CHECK(m->fam[i].rendered, "family %s was not rendered", m->fam[i].name);
}

/* ---- the program ------------------------------------------------------- */

static const enum metric_type types[] = { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static void op_family(struct model *m, struct metrics_registry *reg, struct fuzz_in *in)
{
	uint8_t flags = fuzz_u8(in);
	enum metric_type type = types[(flags & 0x0f) % 3];
	char *name = gen_name(in, flags & 0x10, false);
	char *help = fuzz_str(in, 64);
	char *labels[MAX_LABELS];
	double buckets[MAX_BUCKETS];
	size_t n_labels = (size_t)(flags >> 5) % (MAX_LABELS + 1), n_buckets = 0, i;
	struct metric_family *fam;
	struct mfamily *f;

	for (i = 0; i < n_labels; i++)
		labels[i] = gen_name(in, fuzz_u8(in) & 1, true);
	if (type == METRIC_HISTOGRAM) {
		n_buckets = fuzz_u8(in) % (MAX_BUCKETS + 1);
		for (i = 0; i < n_buckets; i++)
			buckets[i] = gen_value(in);
	}
	/* the model has room for MAX_FAMILIES: no more after that */
	fam = m->n == MAX_FAMILIES ? NULL :
	      metrics_family(reg, name, help, type, (const char *const *)labels, n_labels,
			     n_buckets ? buckets : NULL, n_buckets);
	for (i = 0; fam && i < m->n; i++)
		if (m->fam[i].fam == fam)
			break;
	if (!fam || i < m->n) {
		/* invalid, or a re-declaration (the same family back) */
		for (i = 0; fam && i < m->n; i++)
			if (m->fam[i].fam == fam)
				FUZZ_CHECK(!strcmp(m->fam[i].name, name), "a different family came back");
		for (i = 0; i < n_labels; i++)
			free(labels[i]);
		free(name);
		free(help);
		return;
	}
	f = &m->fam[m->n++];
	f->fam = fam;
	f->exact = true;
	f->name = name;
	f->help = help;
	f->help_utf8 = fuzz_utf8_valid(help, strlen(help));
	f->type = type;
	f->n_labels = n_labels;
	for (i = 0; i < n_labels; i++)
		f->labels[i] = labels[i];
	f->n_buckets = n_buckets;
	memcpy(f->buckets, buckets, n_buckets * sizeof(double));
}

static size_t bucket_of(const struct mfamily *f, double v)
{
	size_t i;

	for (i = 0; i < f->n_buckets; i++)
		if (v <= f->buckets[i])
			return i;
	return f->n_buckets;
}

/* The registry's key of the given label values: each value's bytes that are not UTF-8 as U+FFFD. */
static size_t sanitized_key(const char *raw, size_t raw_len, char *out)
{
	return fuzz_utf8_replace(raw, raw_len, out);	/* NUL is valid: per value */
}

static bool is_other_key(const struct mfamily *f, const char *key, size_t len)
{
	size_t i;

	if (!f->n_labels || len != f->n_labels * 6)
		return false;
	for (i = 0; i < f->n_labels; i++)
		if (memcmp(key + 6 * i, "other", 6))
			return false;
	return true;
}

/* Fold an update of label set `key` into "other" as metrics.c documents it. */
static void model_fold(struct model *m, struct mfamily *f, const char *key, size_t len,
		       uint8_t op, double v, const uint64_t *counts, bool drop)
{
	char other[MAX_LABELS * 6];
	struct mseries *o;
	struct mfold *e;
	bool reset = false;
	size_t i, b;

	for (i = 0; i < f->n_labels; i++)
		memcpy(other + 6 * i, "other", 6);
	o = model_get(f, other, 6 * f->n_labels);
	o->is_other = true;
	e = fold_find(f, key, len);
	if (!e && f->exact && f->n_folds < FOLD_TRACKED) {
		e = &f->folds[f->n_folds++];
		memset(e, 0, sizeof(*e));
		e->key = fuzz_dup((const uint8_t *)key, len);
		e->key_len = len;
		if (drop)
			m->dropped++;
	} else if (!e) {
		/* the registry may evict, reuse or not track: its "other" is no longer known */
		f->exact = false;
		m->dropped_exact = false;
	}
	if (!f->exact)
		return;
	e->active = true;

	switch (op) {
	case 1:
		o->value += v;
		e->value += v;
		break;
	case 2:
		e->value = v;
		break;
	case 4:
		if (v != e->value)
			o->value += v > e->value ? v - e->value : v;
		e->value = v;
		break;
	case 3:
		b = bucket_of(f, v);
		o->buckets[b]++;
		o->count++;
		o->sum += v;
		e->buckets[b]++;
		e->sum += v;
		break;
	default:
		for (i = 0; i <= f->n_buckets; i++)
			reset |= counts[i] < e->buckets[i];
		for (i = 0; i <= f->n_buckets; i++) {
			uint64_t d = reset ? counts[i] : counts[i] - e->buckets[i];

			o->buckets[i] += d;
			o->count += d;
			e->buckets[i] = counts[i];
		}
		if (reset)
			o->sum += v;
		else if (v != e->sum)
			o->sum += v - e->sum;
		e->sum = v;
		break;
	}
}

static void model_apply(struct mfamily *f, struct mseries *s, uint8_t op, double v,
			const uint64_t *counts)
{
	size_t i;

	switch (op) {
	case 1:
		s->value += v;
		break;
	case 2:
	case 4:
		s->value = v;
		break;
	case 3:
		s->buckets[bucket_of(f, v)]++;
		s->count++;
		s->sum += v;
		break;
	default:
		s->count = 0;
		for (i = 0; i <= f->n_buckets; i++) {
			s->buckets[i] = counts[i];
			s->count += counts[i];
		}
		s->sum = v;
		break;
	}
}

static void op_update(struct model *m, struct fuzz_in *in, uint8_t op)
{
	static char skey[3 * MAX_LABELS * 65];
	struct mfamily *f;
	char *values[MAX_LABELS], key[MAX_LABELS * 65];
	size_t i, len = 0, slen;
	uint64_t counts[MAX_BUCKETS + 1];
	struct mseries *s;
	struct mfold *e;
	double v;
	int rc, want;

	if (!m->n) {
		fuzz_u8(in);
		return;
	}
	f = &m->fam[fuzz_u8(in) % m->n];
	for (i = 0; i < f->n_labels; i++) {
		values[i] = fuzz_str(in, 64);
		memcpy(key + len, values[i], strlen(values[i]) + 1);
		len += strlen(values[i]) + 1;
	}
	v = gen_value(in);
	switch (op) {
	case 1:
		rc = metrics_counter_add(f->fam, (const char *const *)values, v);
		break;
	case 2:
		rc = metrics_gauge_set(f->fam, (const char *const *)values, v);
		break;
	case 3:
		rc = metrics_histogram_observe(f->fam, (const char *const *)values, v);
		break;
	case 4:
		rc = metrics_counter_set(f->fam, (const char *const *)values, v);
		break;
	default:
		for (i = 0; i <= f->n_buckets; i++)
			counts[i] = fuzz_u64(in, 1 + (fuzz_u8(in) & 3));
		rc = metrics_histogram_set(f->fam, (const char *const *)values, counts, v);
		break;
	}

	/* the documented contract */
	if ((op == 1 || op == 4) && (f->type != METRIC_COUNTER || !(v >= 0)))
		FUZZ_CHECK(rc == -EINVAL, "counter update with %g on a type %d family gave %d", v, f->type, rc);
	else if (op == 2 && f->type != METRIC_GAUGE)
		FUZZ_CHECK(rc == -EINVAL, "gauge_set on type %d gave %d", f->type, rc);
	else if ((op == 3 || op == 5) && f->type != METRIC_HISTOGRAM)
		FUZZ_CHECK(rc == -EINVAL, "histogram update on type %d gave %d", f->type, rc);
	else
		FUZZ_CHECK(rc == 0 || rc == 1, "update gave %d", rc);

	if (rc == 0 || rc == 1) {
		bool other = false, fold;

		slen = sanitized_key(key, len, skey);
		other = is_other_key(f, skey, slen);
		s = other ? NULL : model_find(f, skey, slen);
		/* an existing series; the fold target; folded before; room under the cap */
		e = fold_find(f, skey, slen);
		want = s || other ? 0 : e && e->active ? 1 : model_real(f) < m->cap ? 0 : 1;
		if (f->exact)
			FUZZ_CHECK(rc == want, "family %s: update gave %d, want %d (%zu series, cap %zu)",
				   f->name, rc, want, model_real(f), m->cap);
		fold = other || (!s && rc == 1);
		if (fold) {
			model_fold(m, f, skey, slen, op, v, counts, !other);
		} else {
			s = model_get(f, key, len);
			model_apply(f, s, op, v, counts);
			if (f->type != METRIC_HISTOGRAM)
				FUZZ_CHECK(same_double(metrics_value(f->fam, (const char *const *)values), s->value),
					   "metrics_value disagrees with the model");
		}
	}
	for (i = 0; i < f->n_labels; i++)
		free(values[i]);
}

/* metrics_family_remove_series() of one label set. */
static void op_remove(struct fuzz_in *in, struct mfamily *f)
{
	static char skey[3 * MAX_LABELS * 65];
	char *values[MAX_LABELS], key[MAX_LABELS * 65];
	size_t i, len = 0, slen;
	struct mseries *s;
	int rc, want;

	for (i = 0; i < f->n_labels; i++) {
		values[i] = fuzz_str(in, 64);
		memcpy(key + len, values[i], strlen(values[i]) + 1);
		len += strlen(values[i]) + 1;
	}
	rc = metrics_family_remove_series(f->fam, (const char *const *)values);
	slen = sanitized_key(key, len, skey);
	s = model_find(f, skey, slen);
	want = is_other_key(f, skey, slen) ? -EBUSY : s ? 0 : -ENOENT;
	FUZZ_CHECK(rc == want, "remove_series on %s gave %d, want %d", f->name, rc, want);
	if (rc == 0)
		model_remove(f, s);
	for (i = 0; i < f->n_labels; i++)
		free(values[i]);
}

/* Whether series s of f has value `want` at each label of `names` (all f has). */
static bool model_matches(const struct mfamily *f, const struct mseries *s, char *const *names,
			  char *const *want, size_t n)
{
	size_t j, i;

	for (j = 0; j < n; j++) {
		const char *v = s->key;

		for (i = 0; strcmp(f->labels[i], names[j]); i++)
			v += strlen(v) + 1;
		if (strcmp(v, want[j]))
			return false;
	}
	return true;
}

/* metrics_forget() with 0..2 labels, named after the family's or anything. */
static void op_forget(struct model *m, struct metrics_registry *reg, struct fuzz_in *in,
		      struct mfamily *f)
{
	char *names[2], *values[2], *want[2];
	size_t n = fuzz_u8(in) % 3, i, j, k;
	int rc, removed = 0;

	for (i = 0; i < n; i++) {
		uint8_t b = fuzz_u8(in);

		if (b < 128 && f->n_labels)
			names[i] = strdup(f->labels[b % f->n_labels]);
		else
			names[i] = gen_name(in, b & 1, true);
		if (!names[i])
			abort();
		values[i] = fuzz_str(in, 64);
		want[i] = malloc(3 * strlen(values[i]) + 1);
		if (!want[i])
			abort();
		sanitized_key(values[i], strlen(values[i]) + 1, want[i]);
	}
	rc = metrics_forget(reg, (const char *const *)names, (const char *const *)values, n);
	if (!n) {
		FUZZ_CHECK(rc == -EINVAL, "forget with no labels gave %d", rc);
	} else {
		for (k = 0; k < m->n; k++) {
			struct mfamily *g = &m->fam[k];

			for (i = 0; i < n; i++) {
				for (j = 0; j < g->n_labels; j++)
					if (!strcmp(g->labels[j], names[i]))
						break;
				if (j == g->n_labels)
					break;
			}
			if (i < n)
				continue;	/* lacks a label */
			for (j = 0; j < g->n_series;) {
				if (!g->series[j].is_other &&
				    model_matches(g, &g->series[j], names, want, n)) {
					model_remove(g, &g->series[j]);
					removed++;
				} else {
					j++;
				}
			}
		}
		FUZZ_CHECK(rc == removed, "forget removed %d series, the model %d", rc, removed);
	}
	for (i = 0; i < n; i++) {
		free(names[i]);
		free(values[i]);
		free(want[i]);
	}
}

static void render(struct model *m, struct metrics_registry *reg)
{
	struct strbuf sb = STRBUF_INIT;

	FUZZ_CHECK(metrics_render(reg, &sb) == 0, "render failed");
	if (fuzz_verbose())
		fprintf(stderr, "---- render\n%s", sb.buf);
	check_render(m, &sb);
	strbuf_free(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct model *m = calloc(1, sizeof(*m));
	struct metrics_registry *reg;
	size_t i, ops = 0;

	if (!m)
		abort();
	m->cap = 1 + fuzz_u8(&in) % 8;
	m->dropped_exact = true;
	reg = metrics_registry_new(m->cap);
	FUZZ_CHECK(reg, "metrics_registry_new");
	while (in.n && ops++ < MAX_OPS) {
		uint8_t op = fuzz_u8(&in) % 8;

		switch (op) {
		case 0:
			op_family(m, reg, &in);
			break;
		case 6:
			if (m->n) {
				uint8_t b = fuzz_u8(&in);
				struct mfamily *f = &m->fam[(b & 0x3f) % m->n];

				if (b >> 6 == 1) {
					op_remove(&in, f);
				} else if (b >> 6 == 2) {
					op_forget(m, reg, &in, f);
				} else {
					metrics_family_clear(f->fam);
					model_clear(f);
				}
			}
			break;
		case 7:
			render(m, reg);
			break;
		default:
			op_update(m, &in, op);
			break;
		}
	}
	render(m, reg);

	metrics_registry_free(reg);
	for (i = 0; i < m->n; i++)
		family_free(&m->fam[i]);
	free(m);
	return 0;
}
