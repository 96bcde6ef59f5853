/*
 * apilat's ports' bitmap, the BPF side's first test (bpf/apilat.bpf.c): it
 * follows the endpoint map through additions, removals and EndpointSlice
 * changes, no endpoint is ever in the map without its port's bit (checked at
 * each map operation, as the kernel could see it), and a port stays once it
 * was in the set: connections already followed on it are followed until they
 * close, also while every endpoint on it is gone (an EndpointSlice with no
 * ready endpoint during an outage, exactly when the latency matters).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apilat_signal.h"
#include "apilat_slices.h"

/* ---- a map that checks the bitmap whenever it changes ---- */

struct fake_map {
	struct apilat_endpoint e[APILAT_MAX_ENDPOINTS];
	size_t n;
	const __u64 *live;
	int fail_add_port; /* an add of this port fails (0: none) */
	unsigned adds, dels;
};

static bool same(const struct apilat_endpoint *a, const struct apilat_endpoint *b)
{
	return !memcmp(a, b, sizeof(*a));
}

/* every endpoint the map holds has its bit */
static void assert_covered(const struct fake_map *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		assert_true(apilat_ports_has(m->live, m->e[i].port));
}

static int map_del(void *ctx, const struct apilat_endpoint *ep)
{
	struct fake_map *m = ctx;
	size_t i;

	assert_covered(m);
	m->dels++;
	for (i = 0; i < m->n; i++)
		if (same(&m->e[i], ep)) {
			m->e[i] = m->e[--m->n];
			return 0;
		}
	return -ENOENT;
}

static int map_add(void *ctx, const struct apilat_endpoint *ep)
{
	struct fake_map *m = ctx;

	m->adds++;
	/* the port's bit is there before the endpoint is */
	assert_true(apilat_ports_has(m->live, ep->port));
	assert_covered(m);
	if (ep->port == m->fail_add_port)
		return -ENOMEM;
	assert_true(m->n < APILAT_MAX_ENDPOINTS);
	m->e[m->n++] = *ep;
	return 0;
}

static const struct apilat_map_ops ops = { .del = map_del, .add = map_add };

/* What the agent's set_source does: the union, then the map and the bitmap. */
static int change(struct apilat_epset *s, struct fake_map *m, __u64 *live, enum apilat_source src,
		  const char *const *texts, size_t n)
{
	struct apilat_endpoint list[APILAT_MAX_ENDPOINTS], added[APILAT_MAX_ENDPOINTS], removed[APILAT_MAX_ENDPOINTS];
	struct apilat_endpoint all[APILAT_MAX_ENDPOINTS];
	size_t na, nr, i;

	for (i = 0; i < n; i++)
		assert_int_equal(apilat_parse_endpoint(texts[i], &list[i]), 0);
	apilat_epset_replace(s, src, list, n, added, &na, removed, &nr);
	for (i = 0; i < s->n; i++)
		all[i] = s->e[i].ep;
	return apilat_ports_apply(live, all, s->n, removed, nr, added, na, &ops, m);
}

static size_t bits(const __u64 *p)
{
	size_t i, n = 0;

	for (i = 0; i < APILAT_PORT_WORDS; i++)
		n += (size_t)__builtin_popcountll(p[i]);
	return n;
}

/* ---- tests ---- */

static void test_bits(void **state)
{
	static __u64 p[APILAT_PORT_WORDS];
	static const __u16 ports[] = { 1, 63, 64, 443, 6443, 65535 };
	size_t i;

	for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		assert_false(apilat_ports_has(p, ports[i]));
		apilat_ports_set(p, ports[i]);
		assert_true(apilat_ports_has(p, ports[i]));
	}
	assert_int_equal(bits(p), 6);
	assert_false(apilat_ports_has(p, 0));
	assert_false(apilat_ports_has(p, 62));
	assert_false(apilat_ports_has(p, 65));
	assert_false(apilat_ports_has(p, 65534));
	/* the layout the BPF side reads: word port / 64, bit port % 64 */
	assert_true(p[6443 / 64] & (1ULL << (6443 % 64)));
	assert_true(p[1023] & (1ULL << 63));
}

static void test_follows_the_map(void **state)
{
	static struct apilat_epset s;
	static struct fake_map m;
	static __u64 live[APILAT_PORT_WORDS];
	const char *flags[] = { "127.0.0.1:6443", "[::1]:6443" };
	const char *env[] = { "10.96.0.1:443" };
	const char *slices[] = { "192.168.1.10:6443", "192.168.1.11:8443" };
	const char *slices2[] = { "192.168.1.11:8443" };
	const char *slices3[] = { "192.168.1.12:9443" };

	m.live = live;
	assert_int_equal(change(&s, &m, live, APILAT_SOURCE_FLAG, flags, 2), 0);
	assert_int_equal(m.n, 2);
	assert_covered(&m);
	assert_int_equal(bits(live), 1);
	assert_int_equal(change(&s, &m, live, APILAT_SOURCE_SERVICE_ENV, env, 1), 0);
	assert_covered(&m);
	assert_true(apilat_ports_has(live, 443));

	/* slices add a new port and one the flags have */
	assert_int_equal(change(&s, &m, live, APILAT_SOURCE_SLICES, slices, 2), 0);
	assert_int_equal(m.n, 5);
	assert_covered(&m);
	assert_true(apilat_ports_has(live, 8443));
	/* 6443 leaves the slices but the flags keep it */
	assert_int_equal(change(&s, &m, live, APILAT_SOURCE_SLICES, slices2, 1), 0);
	assert_covered(&m);
	assert_true(apilat_ports_has(live, 6443));
	/* the slice's endpoint replaced by one on another port: the old port stays (its
	 * connections are followed until they close) */
	assert_int_equal(change(&s, &m, live, APILAT_SOURCE_SLICES, slices3, 1), 0);
	assert_covered(&m);
	assert_true(apilat_ports_has(live, 8443));
	assert_true(apilat_ports_has(live, 9443));
	/* the slices deleted, then the flags gone: the map keeps the environment's endpoint,
	 * the bitmap every port it had */
	assert_int_equal(change(&s, &m, live, APILAT_SOURCE_SLICES, NULL, 0), 0);
	assert_int_equal(change(&s, &m, live, APILAT_SOURCE_FLAG, NULL, 0), 0);
	assert_int_equal(m.n, 1);
	assert_covered(&m);
	assert_int_equal(bits(live), 4);
	assert_true(apilat_ports_has(live, 443));
	assert_true(apilat_ports_has(live, 6443));
	assert_int_equal(change(&s, &m, live, APILAT_SOURCE_SERVICE_ENV, NULL, 0), 0);
	assert_int_equal(m.n, 0);
	assert_int_equal(bits(live), 4);
	assert_int_equal(m.adds, 6);
	assert_int_equal(m.dels, 6);
}

/* An endpoint the map refused: the error comes back, the others are still made, the bit does no harm. */
static void test_failed_add(void **state)
{
	static struct apilat_epset s;
	static struct fake_map m;
	static __u64 live[APILAT_PORT_WORDS];
	const char *flags[] = { "127.0.0.1:7000", "127.0.0.1:7001" };

	m.live = live;
	m.fail_add_port = 7000;
	assert_int_equal(change(&s, &m, live, APILAT_SOURCE_FLAG, flags, 2), -ENOMEM);
	assert_int_equal(m.n, 1);
	assert_int_equal(m.e[0].port, 7001);
	assert_true(apilat_ports_has(live, 7000)); /* the set names it: a lookup too many, never one too few */
	assert_true(apilat_ports_has(live, 7001));
}

/* No bitmap (a kernel side without one): the map alone changes. */
static void test_no_bitmap(void **state)
{
	static struct fake_map m;
	static __u64 never[APILAT_PORT_WORDS];
	struct apilat_endpoint ep;

	assert_int_equal(apilat_parse_endpoint("127.0.0.1:1", &ep), 0);
	apilat_ports_set(never, 1);
	m.live = never; /* for the checks in map_add */
	assert_int_equal(apilat_ports_apply(NULL, &ep, 1, NULL, 0, &ep, 1, &ops, &m), 0);
	assert_int_equal(m.n, 1);
	assert_int_equal(m.adds, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bits),
		cmocka_unit_test(test_follows_the_map),
		cmocka_unit_test(test_failed_add),
		cmocka_unit_test(test_no_bitmap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
