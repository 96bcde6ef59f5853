/*
 * apilat's server side, the pure parts: which listeners serve an API-server
 * endpoint (exact binds, wildcards on a local address, IPv4 and IPv6), and
 * listen drops summed across scrapes (growth, new and closed listeners, a
 * reused inode).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apilat_server.h"
#include "apilat_signal.h"

static struct apilat_endpoint ep(const char *text)
{
	struct apilat_endpoint e;

	assert_int_equal(apilat_parse_endpoint(text, &e), 0);
	return e;
}

/* a bare address, port 0 (this node's addresses) */
static struct apilat_endpoint addr(const char *text)
{
	char buf[80];
	struct apilat_endpoint e;

	snprintf(buf, sizeof(buf), strchr(text, ':') ? "[%s]:1" : "%s:1", text);
	e = ep(buf);
	e.port = 0;
	return e;
}

static void test_exact_bind(void **state)
{
	struct apilat_endpoint eps[] = { ep("10.0.0.1:6443"), ep("[fd00::1]:6443") };
	struct apilat_endpoint l;

	(void)state;
	l = ep("10.0.0.1:6443");
	assert_true(apilat_listener_serves(&l, eps, 2, NULL, 0));
	l = ep("[fd00::1]:6443");
	assert_true(apilat_listener_serves(&l, eps, 2, NULL, 0));
	l = ep("10.0.0.1:6444");
	assert_false(apilat_listener_serves(&l, eps, 2, NULL, 0));
	l = ep("10.0.0.2:6443");
	assert_false(apilat_listener_serves(&l, eps, 2, NULL, 0));
}

static void test_wildcard_needs_a_local_endpoint(void **state)
{
	/* the ClusterIP is not this node's; the endpoint 10.0.0.1 is, 10.0.0.9 is another node */
	struct apilat_endpoint eps[] = { ep("10.96.0.1:443"), ep("10.0.0.1:6443"), ep("10.0.0.9:7443"),
					 ep("[fd00::1]:8443") };
	struct apilat_endpoint local[] = { addr("127.0.0.1"), addr("10.0.0.1"), addr("fd00::1") };
	struct apilat_endpoint l;

	(void)state;
	l = ep("0.0.0.0:6443");
	assert_true(apilat_listener_serves(&l, eps, 4, local, 3));
	/* an ingress on 0.0.0.0:443 is not the API server behind the ClusterIP */
	l = ep("0.0.0.0:443");
	assert_false(apilat_listener_serves(&l, eps, 4, local, 3));
	l = ep("0.0.0.0:7443");
	assert_false(apilat_listener_serves(&l, eps, 4, local, 3));
	/* :: takes IPv4 too; 0.0.0.0 no IPv6 */
	l = ep("[::]:6443");
	assert_true(apilat_listener_serves(&l, eps, 4, local, 3));
	l = ep("[::]:8443");
	assert_true(apilat_listener_serves(&l, eps, 4, local, 3));
	l = ep("0.0.0.0:8443");
	assert_false(apilat_listener_serves(&l, eps, 4, local, 3));
	/* no local addresses known: only exact binds */
	l = ep("0.0.0.0:6443");
	assert_false(apilat_listener_serves(&l, eps, 4, NULL, 0));
}

static void test_drops_add_up(void **state)
{
	struct apilat_listen_drops t = { .n = 0 };
	uint64_t ino[] = { 100, 200 }, d[] = { 5, 0 };

	(void)state;
	/* first sight: all a listener dropped so far */
	apilat_listen_drops_update(&t, ino, d, 2);
	assert_int_equal(t.total, 5);
	/* growth only */
	d[0] = 7;
	d[1] = 3;
	apilat_listen_drops_update(&t, ino, d, 2);
	assert_int_equal(t.total, 10);
	apilat_listen_drops_update(&t, ino, d, 2);
	assert_int_equal(t.total, 10);
	/* 200 closes: its drops stay counted */
	apilat_listen_drops_update(&t, ino, d, 1);
	assert_int_equal(t.total, 10);
	assert_int_equal(t.n, 1);
	/* a new listener on the inode of 200 counts from scratch */
	ino[0] = 200;
	d[0] = 2;
	apilat_listen_drops_update(&t, ino, d, 1);
	assert_int_equal(t.total, 12);
	/* and a new socket on 200's inode again, with fewer drops than the old one had */
	d[0] = 1;
	apilat_listen_drops_update(&t, ino, d, 1);
	assert_int_equal(t.total, 13);
	/* nothing listening: nothing added, nothing kept */
	apilat_listen_drops_update(&t, NULL, NULL, 0);
	assert_int_equal(t.total, 13);
	assert_int_equal(t.n, 0);
}

static void test_drops_table_is_bounded(void **state)
{
	struct apilat_listen_drops t = { .n = 0 };
	uint64_t ino[APILAT_MAX_LISTENERS + 4], d[APILAT_MAX_LISTENERS + 4];
	size_t i;

	(void)state;
	for (i = 0; i < APILAT_MAX_LISTENERS + 4; i++) {
		ino[i] = i + 1;
		d[i] = 1;
	}
	apilat_listen_drops_update(&t, ino, d, APILAT_MAX_LISTENERS + 4);
	assert_int_equal(t.n, APILAT_MAX_LISTENERS);
	assert_int_equal(t.total, APILAT_MAX_LISTENERS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_bind),
		cmocka_unit_test(test_wildcard_needs_a_local_endpoint),
		cmocka_unit_test(test_drops_add_up),
		cmocka_unit_test(test_drops_table_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
