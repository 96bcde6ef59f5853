/* apilat's slow-response verdict (apilat_p99.h): windowed p99 from histogram deltas. */
#include "apilat_p99.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct snapshot {
	uint64_t *counts;        /* cumulative, n_buckets */
};

struct client {
	char *key;
	uint64_t seen_ns;        /* the last tick that observed it */
	uint64_t fired_ns;
	bool fired;
	/* a ring of the last APILAT_P99_SLOTS + 1 snapshots; `n` of them filled, `head` the next to write */
	uint64_t *ring;          /* (APILAT_P99_SLOTS + 1) * n_buckets */
	unsigned int n, head;
};

struct apilat_p99 {
	struct apilat_p99_config cfg;
	size_t n_finite, n_buckets;
	uint64_t *delta;         /* scratch, n_buckets */
	struct client *clients;
	size_t n, cap;
};

#define RING (APILAT_P99_SLOTS + 1)

int apilat_quantile_ns(const uint64_t *counts, size_t n_finite, uint32_t lo_exp, double q, double *out_ns)
{
	uint64_t total = 0, below = 0;
	double rank, lower;
	size_t j;

	if (!(q >= 0.0 && q <= 1.0))
		return -EINVAL;
	for (j = 0; j <= n_finite; j++)
		total += counts[j];
	if (!total)
		return -ENODATA;
	rank = q * (double)total;
	/* the first bucket whose cumulative count reaches the rank, as histogram_quantile searches */
	for (j = 0; j < n_finite; j++) {
		if ((double)(below + counts[j]) >= rank && counts[j])
			break;
		below += counts[j];
	}
	if (j == n_finite) {
		*out_ns = n_finite ? (double)apilat_bucket_upper_ns((__u32)(n_finite - 1), lo_exp) : 0.0;
		return 0;
	}
	lower = j ? (double)apilat_bucket_upper_ns((__u32)(j - 1), lo_exp) : 0.0;
	*out_ns = lower + ((double)apilat_bucket_upper_ns((__u32)j, lo_exp) - lower) *
		  (rank - (double)below) / (double)counts[j];
	return 0;
}

struct apilat_p99 *apilat_p99_new(const struct apilat_p99_config *cfg)
{
	struct apilat_p99 *t;

	if (!cfg || !cfg->threshold_ns || cfg->window_ns < APILAT_P99_SLOTS || cfg->lo_exp < APILAT_MIN_EXP ||
	    cfg->hi_exp <= cfg->lo_exp || cfg->hi_exp - cfg->lo_exp > APILAT_MAX_OCTAVES)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cfg = *cfg;
	if (!t->cfg.min_responses)
		t->cfg.min_responses = APILAT_P99_MIN_RESPONSES;
	t->n_finite = apilat_n_finite(cfg->lo_exp, cfg->hi_exp);
	t->n_buckets = t->n_finite + 1;
	t->delta = calloc(t->n_buckets, sizeof(*t->delta));
	if (!t->delta) {
		free(t);
		return NULL;
	}
	return t;
}

static void client_free(struct client *c)
{
	free(c->key);
	free(c->ring);
}

void apilat_p99_free(struct apilat_p99 *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n; i++)
		client_free(&t->clients[i]);
	free(t->clients);
	free(t->delta);
	free(t);
}

uint64_t apilat_p99_tick_ns(const struct apilat_p99 *t)
{
	return t->cfg.window_ns / APILAT_P99_SLOTS;
}

size_t apilat_p99_clients(const struct apilat_p99 *t)
{
	return t->n;
}

static struct client *client_of(struct apilat_p99 *t, const char *key, int *err)
{
	struct client *c;
	size_t i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->clients[i].key, key))
			return &t->clients[i];
	if (t->n == APILAT_P99_MAX_CLIENTS) {
		*err = -ENOSPC;
		return NULL;
	}
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 8;
		struct client *nc = realloc(t->clients, ncap * sizeof(*nc));

		if (!nc) {
			*err = -ENOMEM;
			return NULL;
		}
		t->clients = nc;
		t->cap = ncap;
	}
	c = &t->clients[t->n];
	memset(c, 0, sizeof(*c));
	c->key = strdup(key);
	c->ring = calloc(RING * t->n_buckets, sizeof(*c->ring));
	if (!c->key || !c->ring) {
		client_free(c);
		*err = -ENOMEM;
		return NULL;
	}
	t->n++;
	return c;
}

static uint64_t *slot(const struct apilat_p99 *t, const struct client *c, unsigned int i)
{
	return &c->ring[(size_t)(i % RING) * t->n_buckets];
}

int apilat_p99_observe(struct apilat_p99 *t, const char *key, const uint64_t *cumulative, uint64_t now_ns,
		       struct apilat_p99_verdict *v)
{
	struct client *c;
	const uint64_t *newest;
	uint64_t *oldest;
	int err = 0;
	size_t j;

	memset(v, 0, sizeof(*v));
	c = client_of(t, key, &err);
	if (!c)
		return err;
	c->seen_ns = now_ns;
	/* a count below the last one: the kernel's entry is new, the old snapshots mean nothing */
	if (c->n) {
		newest = slot(t, c, c->head + RING - 1);
		for (j = 0; j < t->n_buckets; j++)
			if (cumulative[j] < newest[j]) {
				c->n = 0;
				break;
			}
	}
	memcpy(slot(t, c, c->head), cumulative, t->n_buckets * sizeof(*cumulative));
	c->head = (c->head + 1) % RING;
	if (c->n < RING)
		c->n++;
	if (c->n < RING)
		return 0;
	/* full: the slot after the newest is the oldest, APILAT_P99_SLOTS ticks back */
	oldest = slot(t, c, c->head);
	for (j = 0; j < t->n_buckets; j++) {
		t->delta[j] = cumulative[j] - oldest[j];
		v->responses += t->delta[j];
	}
	if (apilat_quantile_ns(t->delta, t->n_finite, t->cfg.lo_exp, 0.99, &v->p99_ns))
		return 0;
	if (v->responses < t->cfg.min_responses || v->p99_ns <= (double)t->cfg.threshold_ns)
		return 0;
	/* once per window while it stays above: the recorder counts the repeats on one Event */
	if (c->fired && now_ns - c->fired_ns < t->cfg.window_ns)
		return 0;
	c->fired = true;
	c->fired_ns = now_ns;
	return 1;
}

void apilat_p99_sweep(struct apilat_p99 *t, uint64_t now_ns)
{
	size_t i = 0;

	while (i < t->n) {
		if (t->clients[i].seen_ns == now_ns) {
			i++;
			continue;
		}
		client_free(&t->clients[i]);
		t->clients[i] = t->clients[--t->n];
	}
}
