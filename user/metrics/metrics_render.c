/*
 * The Prometheus text exposition (format 0.0.4) of the registry: see
 * metrics.h. Families render in the order declared, each family's series
 * sorted by label values; the numbers are formatted here too.
 */
#include "metrics_internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DROPPED_HELP \
	"Label sets folded into an \"other\" series because a family reached its series cap."

/* ---- Numbers ---------------------------------------------------------- */

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
int fmt_double(char buf[NUM_LEN], double v)
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
