/*
 * apilat's endpoint set: EndpointSlice JSON -> endpoints (ready ones only,
 * the https port, IPv4 and IPv6, malformed input refused), a kubeconfig
 * server URL -> host and port, and the union of the sources with what
 * enters and leaves it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "apilat_slices.h"
#include "apilat_sources.h"

static struct apilat_endpoint ep(const char *text)
{
	struct apilat_endpoint e;

	assert_int_equal(apilat_parse_endpoint(text, &e), 0);
	return e;
}

static int slice(const char *json, struct apilat_endpoint *out, size_t cap, size_t *n)
{
	return apilat_slice_endpoints_text(json, strlen(json), out, cap, n);
}

static void assert_ep(const struct apilat_endpoint *got, const char *want)
{
	char text[64];

	apilat_endpoint_format(got, text, sizeof(text));
	assert_string_equal(text, want);
}

/* ---- slices ---- */

static void test_slice_ipv4_https(void **state)
{
	struct apilat_endpoint out[8];
	size_t n = 99;

	(void)state;
	assert_int_equal(slice("{\"kind\":\"EndpointSlice\",\"addressType\":\"IPv4\","
			       "\"metadata\":{\"name\":\"kubernetes\",\"namespace\":\"default\"},"
			       "\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":true}},"
			       "{\"addresses\":[\"10.0.0.2\",\"10.0.0.3\"]}],"
			       "\"ports\":[{\"name\":\"https\",\"port\":6443,\"protocol\":\"TCP\"}]}",
			       out, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_ep(&out[0], "10.0.0.1:6443");
	assert_ep(&out[1], "10.0.0.2:6443"); /* no conditions: unknown reads as ready */
	assert_ep(&out[2], "10.0.0.3:6443");
}

static void test_slice_ipv6(void **state)
{
	struct apilat_endpoint out[8], want = { .addr = { 0xfd, [15] = 1 }, .port = 443 };
	size_t n = 0;

	(void)state;
	assert_int_equal(slice("{\"addressType\":\"IPv6\",\"endpoints\":[{\"addresses\":[\"fd00::1\"],"
			       "\"conditions\":{\"ready\":true}}],\"ports\":[{\"name\":\"https\",\"port\":443}]}",
			       out, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_ep(&out[0], "[fd00::1]:443");
	assert_memory_equal(&out[0], &want, sizeof(want));
}

static void test_slice_not_ready(void **state)
{
	struct apilat_endpoint out[8];
	size_t n = 0;

	(void)state;
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":["
			       "{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":false,\"terminating\":true}},"
			       "{\"addresses\":[\"10.0.0.2\"],\"conditions\":{\"ready\":true}},"
			       "{\"addresses\":[\"10.0.0.3\"],\"conditions\":{\"ready\":false}}],"
			       "\"ports\":[{\"name\":\"https\",\"port\":6443}]}", out, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_ep(&out[0], "10.0.0.2:6443");
}

static void test_slice_ports(void **state)
{
	struct apilat_endpoint out[8];
	size_t n = 0;

	(void)state;
	/* the one named https among others */
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}],"
			       "\"ports\":[{\"name\":\"metrics\",\"port\":9000},{\"name\":\"https\",\"port\":6443}]}",
			       out, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_ep(&out[0], "10.0.0.1:6443");
	/* the slice's only port, unnamed */
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}],"
			       "\"ports\":[{\"port\":8443}]}", out, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_ep(&out[0], "10.0.0.1:8443");
	/* two ports and none named https: which is the API's is unknown */
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}],"
			       "\"ports\":[{\"name\":\"a\",\"port\":1},{\"name\":\"b\",\"port\":2}]}", out, 8, &n), 0);
	assert_int_equal(n, 0);
	/* no ports, ports null, a port without a number, out of range, UDP */
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}]}",
			       out, 8, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}],"
			       "\"ports\":null}", out, 8, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}],"
			       "\"ports\":[{\"name\":\"https\"}]}", out, 8, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}],"
			       "\"ports\":[{\"name\":\"https\",\"port\":70000}]}", out, 8, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}],"
			       "\"ports\":[{\"name\":\"https\",\"port\":\"6443\"}]}", out, 8, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}],"
			       "\"ports\":[{\"name\":\"https\",\"port\":53,\"protocol\":\"UDP\"}]}", out, 8, &n), 0);
	assert_int_equal(n, 0);
}

static void test_slice_odd_addresses(void **state)
{
	struct apilat_endpoint out[2];
	size_t n = 0;

	(void)state;
	/* FQDN slices name hosts, not addresses */
	assert_int_equal(slice("{\"addressType\":\"FQDN\",\"endpoints\":[{\"addresses\":[\"api.example\"]}],"
			       "\"ports\":[{\"name\":\"https\",\"port\":443}]}", out, 2, &n), 0);
	assert_int_equal(n, 0);
	/* a bad address, a non-string, and an IPv6 address in an IPv4 slice are skipped; the rest count */
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.300\",7,"
			       "\"fd00::1\",\"10.0.0.4\"]},{\"addresses\":\"10.0.0.5\"},{}],"
			       "\"ports\":[{\"name\":\"https\",\"port\":443}]}", out, 2, &n), 0);
	assert_int_equal(n, 1);
	assert_ep(&out[0], "10.0.0.4:443");
	/* more than the room: the first ones written, all counted */
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\",\"10.0.0.2\","
			       "\"10.0.0.3\"]}],\"ports\":[{\"name\":\"https\",\"port\":443}]}", out, 2, &n), 0);
	assert_int_equal(n, 3);
	assert_ep(&out[1], "10.0.0.2:443");
	/* endpoints null: an empty slice */
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":null,"
			       "\"ports\":[{\"name\":\"https\",\"port\":443}]}", out, 2, &n), 0);
	assert_int_equal(n, 0);
}

static void test_slice_malformed(void **state)
{
	struct apilat_endpoint out[2];
	size_t n = 7;

	(void)state;
	assert_int_equal(slice("{\"addressType\":\"IPv4\",\"endpoints\":[", out, 2, &n), -EINVAL);
	assert_int_equal(slice("", out, 2, &n), -EINVAL);
	assert_int_equal(slice("[1,2]", out, 2, &n), -EINVAL);
	assert_int_equal(slice("\"x\"", out, 2, &n), -EINVAL);
	assert_int_equal(slice("{\"endpoints\":{}}", out, 2, &n), -EINVAL);
	assert_int_equal(slice("{\"endpoints\":[],\"ports\":{}}", out, 2, &n), -EINVAL);
	assert_int_equal(apilat_slice_endpoints(NULL, out, 2, &n), -EINVAL);
	/* trailing garbage after the object */
	assert_int_equal(slice("{\"endpoints\":[]} x", out, 2, &n), -EINVAL);
}

/* ---- kubeconfig servers ---- */

static void test_server_url(void **state)
{
	char host[256];
	uint16_t port = 0;

	(void)state;
	assert_int_equal(apilat_server_url_split("https://10.1.2.3:6443", host, sizeof(host), &port), 0);
	assert_string_equal(host, "10.1.2.3");
	assert_int_equal(port, 6443);
	assert_int_equal(apilat_server_url_split("https://[fd00::1]:8443/", host, sizeof(host), &port), 0);
	assert_string_equal(host, "fd00::1");
	assert_int_equal(port, 8443);
	assert_int_equal(apilat_server_url_split("https://[::1]", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 443);
	assert_int_equal(apilat_server_url_split("https://api.example.com/k8s/clusters/c-1", host, sizeof(host),
						 &port), 0);
	assert_string_equal(host, "api.example.com");
	assert_int_equal(port, 443);
	assert_int_equal(apilat_server_url_split("HTTPS://Api.Example:7443", host, sizeof(host), &port), 0);
	assert_string_equal(host, "Api.Example");
	assert_int_equal(port, 7443);
	assert_int_equal(apilat_server_url_split("http://127.0.0.1:8080", host, sizeof(host), &port), 0);
	assert_int_equal(port, 8080);
	assert_int_equal(apilat_server_url_split("http://127.0.0.1", host, sizeof(host), &port), 0);
	assert_int_equal(port, 80);

	assert_int_equal(apilat_server_url_split("10.1.2.3:6443", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(apilat_server_url_split("https://", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(apilat_server_url_split("https://[fd00::1:6443", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(apilat_server_url_split("https://fd00::1:6443", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(apilat_server_url_split("https://h:0", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(apilat_server_url_split("https://h:65536", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(apilat_server_url_split("https://h:", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(apilat_server_url_split("https://h:44x", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(apilat_server_url_split("https://user@h:443", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(apilat_server_url_split("https://averyveryverylonghostname", host, 8, &port), -EINVAL);
	assert_int_equal(apilat_server_url_split(NULL, host, sizeof(host), &port), -EINVAL);
}

/* ---- the union ---- */

static void test_epset_union(void **state)
{
	struct apilat_epset s = { 0 };
	struct apilat_endpoint added[APILAT_MAX_ENDPOINTS], removed[APILAT_MAX_ENDPOINTS];
	struct apilat_endpoint flags[] = { ep("10.0.0.1:443"), ep("[::1]:6443") };
	struct apilat_endpoint kc[] = { ep("10.0.0.1:443") };
	struct apilat_endpoint sl[] = { ep("10.0.0.1:443"), ep("10.0.0.9:6443"), ep("10.0.0.9:6443") };
	size_t na, nr;

	(void)state;
	assert_int_equal(apilat_epset_replace(&s, APILAT_SOURCE_FLAG, flags, 2, added, &na, removed, &nr), 0);
	assert_int_equal(na, 2);
	assert_int_equal(nr, 0);
	/* the same endpoint from a second source: nothing enters */
	assert_int_equal(apilat_epset_replace(&s, APILAT_SOURCE_KUBECONFIG, kc, 1, added, &na, removed, &nr), 0);
	assert_int_equal(na, 0);
	assert_int_equal(nr, 0);
	/* slices: one new (named twice), one shared */
	assert_int_equal(apilat_epset_replace(&s, APILAT_SOURCE_SLICES, sl, 3, added, &na, removed, &nr), 0);
	assert_int_equal(na, 1);
	assert_ep(&added[0], "10.0.0.9:6443");
	assert_int_equal(s.n, 3);
	assert_int_equal(apilat_epset_count(&s, APILAT_SOURCE_SLICES), 2);
	assert_int_equal(apilat_epset_count(&s, APILAT_SOURCE_FLAG), 2);
	assert_int_equal(apilat_epset_count(&s, APILAT_SOURCE_SERVICE_ENV), 0);
	/* the slices go: their own endpoint leaves, the shared one stays */
	assert_int_equal(apilat_epset_replace(&s, APILAT_SOURCE_SLICES, NULL, 0, added, &na, removed, &nr), 0);
	assert_int_equal(na, 0);
	assert_int_equal(nr, 1);
	assert_ep(&removed[0], "10.0.0.9:6443");
	/* the kubeconfig's goes too: the flag still names it */
	assert_int_equal(apilat_epset_replace(&s, APILAT_SOURCE_KUBECONFIG, NULL, 0, added, &na, removed, &nr), 0);
	assert_int_equal(nr, 0);
	/* the flags change: ::1 leaves, 10.0.0.1 stays */
	assert_int_equal(apilat_epset_replace(&s, APILAT_SOURCE_FLAG, flags, 1, added, &na, removed, &nr), 0);
	assert_int_equal(na, 0);
	assert_int_equal(nr, 1);
	assert_ep(&removed[0], "[::1]:6443");
	assert_int_equal(s.n, 1);
	assert_ep(&s.e[0].ep, "10.0.0.1:443");
}

static void test_epset_full(void **state)
{
	static struct apilat_epset s;
	struct apilat_endpoint list[APILAT_MAX_ENDPOINTS + 2], added[APILAT_MAX_ENDPOINTS],
		removed[APILAT_MAX_ENDPOINTS];
	size_t na, nr, i;
	char text[32];

	(void)state;
	for (i = 0; i < APILAT_MAX_ENDPOINTS + 2; i++) {
		snprintf(text, sizeof(text), "10.0.%zu.%zu:443", i / 200, i % 200 + 1);
		list[i] = ep(text);
	}
	assert_int_equal(apilat_epset_replace(&s, APILAT_SOURCE_SLICES, list, APILAT_MAX_ENDPOINTS + 2, added, &na,
					      removed, &nr), -ENOSPC);
	assert_int_equal(na, APILAT_MAX_ENDPOINTS);
	assert_int_equal(s.n, APILAT_MAX_ENDPOINTS);
	/* room again once some leave */
	assert_int_equal(apilat_epset_replace(&s, APILAT_SOURCE_SLICES, list + 2, 4, added, &na, removed, &nr), 0);
	assert_int_equal(na, 0);
	assert_int_equal(nr, APILAT_MAX_ENDPOINTS - 4);
	assert_int_equal(s.n, 4);
	assert_int_equal(apilat_epset_replace(&s, APILAT_SOURCE_FLAG, list + APILAT_MAX_ENDPOINTS, 2, added, &na,
					      removed, &nr), 0);
	assert_int_equal(na, 2);
	assert_int_equal(s.n, 6);
}

/* ---- resolving the configuration's server (numeric, and the hosts file's localhost) ---- */

static bool has(const struct apilat_endpoint *list, size_t n, const char *want)
{
	char text[64];
	size_t i;

	for (i = 0; i < n; i++) {
		apilat_endpoint_format(&list[i], text, sizeof(text));
		if (!strcmp(text, want))
			return true;
	}
	return false;
}

static void test_resolve(void **state)
{
	struct apilat_endpoint out[16];
	int gai = 0;
	size_t n;

	(void)state;
	n = apilat_resolve("10.1.2.3", 6443, out, 16, &gai);
	assert_int_equal(gai, 0);
	assert_int_equal(n, 1);
	assert_ep(&out[0], "10.1.2.3:6443");
	n = apilat_resolve("fd00::1", 443, out, 16, &gai);
	assert_int_equal(n, 1);
	assert_ep(&out[0], "[fd00::1]:443");
	/* a name: every address once (getaddrinfo gives one per socket type otherwise) */
	n = apilat_resolve("localhost", 8443, out, 16, &gai);
	assert_int_equal(gai, 0);
	assert_true(n >= 1);
	assert_true(has(out, n, "127.0.0.1:8443") || has(out, n, "[::1]:8443"));
	/* (no unresolvable name here: that would ask a DNS server, which a test must not need) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slice_ipv4_https),
		cmocka_unit_test(test_slice_ipv6),
		cmocka_unit_test(test_slice_not_ready),
		cmocka_unit_test(test_slice_ports),
		cmocka_unit_test(test_slice_odd_addresses),
		cmocka_unit_test(test_slice_malformed),
		cmocka_unit_test(test_server_url),
		cmocka_unit_test(test_epset_union),
		cmocka_unit_test(test_epset_full),
		cmocka_unit_test(test_resolve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
